//! Mempool policy and its updates on connect, disconnect and reorg.

use super::*;
use crate::chain::ChainState;
use crate::primitives::{COIN, TxOut};
use crate::testkit::*;

/// A regtest chain where the coinbases of blocks 1..=n pay `key(1)` and are mature.
fn funded(n: u32) -> (ChainState, Vec<(OutPoint, TxOut)>) {
    let mut chain = regtest_chain();
    let alice = pubkey(&key(1));
    let coins = (0..n).map(|_| coinbase_input(&extend(&mut chain, vec![], alice))).collect();
    for _ in 0..100 {
        extend(&mut chain, vec![], [9; 32]);
    }
    (chain, coins)
}

fn pay(coin: (OutPoint, TxOut), fee: u64) -> Transaction {
    let out = TxOut { value: coin.1.value - fee, pubkey: pubkey(&key(1)) };
    spend(&[coin], vec![out], &[&key(1)])
}

fn accept(pool: &mut Mempool, chain: &ChainState, tx: Transaction) -> Result<Txid, MempoolError> {
    let reader = chain.utxos().unwrap();
    pool.accept(tx, &reader, chain.height(), chain.params())
}

#[test]
fn chains_of_unconfirmed_transactions_are_accepted() {
    let (chain, coins) = funded(1);
    let mut pool = Mempool::default();
    let parent = pay(coins[0], 1_000);
    let child = pay(crate::testkit::input_of(&parent, 0), 1_000);
    let p = accept(&mut pool, &chain, parent).unwrap();
    let c = accept(&mut pool, &chain, child).unwrap();
    assert_eq!(pool.get(&c).unwrap().parents, vec![p]);
    assert_eq!(pool.len(), 2);
}

#[test]
fn conflicts_duplicates_and_coinbases_are_rejected() {
    let (chain, coins) = funded(1);
    let mut pool = Mempool::default();
    let first = pay(coins[0], 1_000);
    let txid = accept(&mut pool, &chain, first.clone()).unwrap();
    assert!(matches!(accept(&mut pool, &chain, first), Err(MempoolError::AlreadyKnown(_))));
    // A rival that pays no more than the relay fee on top cannot replace it.
    let rival = pay(coins[0], 1_001);
    assert!(matches!(
        accept(&mut pool, &chain, rival),
        Err(MempoolError::Conflict { by, why: ReplaceError::FeeTooLow { .. }, .. }) if by == txid
    ));
    let cb = Transaction::coinbase(500, vec![TxOut { value: 1, pubkey: [1; 32] }], 0);
    assert!(matches!(accept(&mut pool, &chain, cb), Err(MempoolError::Coinbase)));
}

#[test]
fn consensus_failures_are_reported_with_their_rule() {
    let (chain, coins) = funded(1);
    let mut pool = Mempool::default();
    let mut bad = pay(coins[0], 1_000);
    bad.inputs[0].signature[3] ^= 1;
    assert!(matches!(
        accept(&mut pool, &chain, bad),
        Err(MempoolError::Invalid(TxError::BadSignature { index: 0 }))
    ));
    let ghost = (OutPoint { txid: unknown_txid(), vout: 1 }, coins[0].1);
    assert!(matches!(
        accept(&mut pool, &chain, pay(ghost, 1_000)),
        Err(MempoolError::Invalid(TxError::InputMissingOrSpent(_)))
    ));
}

#[test]
fn minimum_relay_fee_is_enforced() {
    let (chain, coins) = funded(1);
    let mut pool = Mempool::default();
    let tx = pay(coins[0], 10);
    assert!(matches!(accept(&mut pool, &chain, tx), Err(MempoolError::FeeTooLow { fee: 10, .. })));
}

#[test]
fn over_the_cap_the_lowest_fee_rate_is_evicted_with_its_descendants() {
    let (chain, coins) = funded(4);
    let size = pay(coins[0], 1_000).size();
    let mut pool = Mempool::new(MempoolConfig { max_bytes: size * 3, min_fee_per_kb: 1_000 });
    let cheap = pay(coins[0], 1_000);
    let cheap_child = pay(input_of(&cheap, 0), 2_000);
    let cheap_id = accept(&mut pool, &chain, cheap).unwrap();
    let child_id = accept(&mut pool, &chain, cheap_child).unwrap();
    let mid = accept(&mut pool, &chain, pay(coins[1], 5_000)).unwrap();
    // A fourth transaction overflows the cap: the cheapest goes, and its child with it.
    let rich = accept(&mut pool, &chain, pay(coins[2], 9_000)).unwrap();
    assert!(!pool.contains(&cheap_id));
    assert!(!pool.contains(&child_id));
    assert!(pool.contains(&mid) && pool.contains(&rich));
    assert!(pool.bytes() <= size * 3);
    // A newcomer paying less than everything left is refused outright.
    let mut small = Mempool::new(MempoolConfig { max_bytes: size, min_fee_per_kb: 1_000 });
    accept(&mut small, &chain, pay(coins[1], 9_000)).unwrap();
    assert!(matches!(
        accept(&mut small, &chain, pay(coins[3], 2_000)),
        Err(MempoolError::PoolFull)
    ));
}

#[test]
fn fee_rate_order_and_template_selection_put_parents_first() {
    let (chain, coins) = funded(3);
    let mut pool = Mempool::default();
    let low_parent = pay(coins[0], 1_000);
    let rich_child = pay(input_of(&low_parent, 0), 50_000);
    let mid = pay(coins[1], 10_000);
    let ids: Vec<Txid> = [low_parent, rich_child, mid]
        .into_iter()
        .map(|tx| accept(&mut pool, &chain, tx).unwrap())
        .collect();
    let order: Vec<Txid> = pool.iter_by_fee_rate().map(|e| e.txid).collect();
    assert_eq!(order, vec![ids[1], ids[2], ids[0]]);
    let selected: Vec<Txid> = pool.select(1_000_000, 1_000).iter().map(|e| e.txid).collect();
    // The richest child pulls its parent in ahead of it.
    assert_eq!(selected, vec![ids[0], ids[1], ids[2]]);
    let template = crate::miner::build_template(&chain, &pool, [5; 32], CLOCK);
    let in_block: Vec<Txid> = template.block.txs[1..].iter().map(Transaction::txid).collect();
    assert_eq!(in_block, selected);
    assert_eq!(template.fees, 61_000);
    assert_eq!(template.block.txs[0].outputs[0].value, 50 * COIN + 61_000);
}

#[test]
fn a_connected_block_removes_mined_and_conflicting_transactions() {
    let (mut chain, coins) = funded(2);
    let mut pool = Mempool::default();
    let a = pay(coins[0], 1_000);
    let a_child = pay(input_of(&a, 0), 1_000);
    let b = pay(coins[1], 1_000);
    let b_child = pay(input_of(&b, 0), 1_000);
    for tx in [a.clone(), a_child.clone(), b, b_child.clone()] {
        accept(&mut pool, &chain, tx).unwrap();
    }
    // The block confirms `a` and a rival spend of b's coin.
    let rival = pay(coins[1], 7_000);
    let block = extend(&mut chain, vec![a.clone(), rival], [3; 32]);
    pool.remove_for_block(&block);
    assert!(!pool.contains(&a.txid()));
    assert!(pool.contains(&a_child.txid()), "child of a mined parent stays");
    assert!(pool.get(&a_child.txid()).unwrap().parents.is_empty());
    assert!(!pool.contains(&b_child.txid()), "descendant of a conflict goes");
    assert_eq!(pool.len(), 1);
}

#[test]
fn after_a_reorg_the_losers_transactions_return_unless_the_winner_spent_their_coins() {
    let (mut chain, coins) = funded(2);
    let fork = chain.tip();
    let mut pool = Mempool::default();
    // The branch that will lose confirms X (coin 0) and Z (coin 1).
    let x = pay(coins[0], 1_000);
    let z = pay(coins[1], 2_000);
    let (x_id, z_id) = (x.txid(), z.txid());
    let mut side = Vec::new();
    let loser = block_on(&chain, fork, vec![x, z], [7; 32]);
    side.push(loser.clone());
    let outcome = chain.accept_block(loser, CLOCK).unwrap();
    pool.update_for_tip(&outcome.update, &chain.utxos().unwrap(), chain.height(), chain.params());
    // The winner spends coin 0 with Y, a conflict of X, over two blocks.
    let y = pay(coins[0], 5_000);
    let y_id = y.txid();
    let w1 = block_on(&chain, fork, vec![y], [8; 32]);
    chain.accept_block(w1.clone(), CLOCK).unwrap();
    let w2 = block_on(&chain, w1.block_hash(), vec![], [8; 32]);
    let outcome = chain.accept_block(w2, CLOCK).unwrap();
    assert_eq!((outcome.update.disconnected.len(), outcome.update.connected.len()), (1, 2));
    let back = pool.update_for_tip(
        &outcome.update,
        &chain.utxos().unwrap(),
        chain.height(),
        chain.params(),
    );
    assert_eq!(back, vec![z_id], "Z returns; X spends what Y confirmed");
    assert!(pool.contains(&z_id) && !pool.contains(&x_id) && !pool.contains(&y_id));
    // X is refused again as a double spend of the winner's Y.
    let again = accept(&mut pool, &chain, pay(coins[0], 1_000));
    assert!(
        matches!(again, Err(MempoolError::Invalid(TxError::InputMissingOrSpent(_)))),
        "{again:?}"
    );
}

#[test]
fn a_replacement_that_pays_more_evicts_its_conflicts_and_their_descendants() {
    let (chain, coins) = funded(2);
    let mut pool = Mempool::default();
    let first = pay(coins[0], 1_000);
    let child = pay(input_of(&first, 0), 1_000);
    let (f, c) = (
        accept(&mut pool, &chain, first.clone()).unwrap(),
        accept(&mut pool, &chain, child).unwrap(),
    );
    // It must pay both evicted fees plus its own relay (1 unit a byte): 2,000 + size.
    let size = pay(coins[0], 0).size() as u64;
    let short = pay(coins[0], 2_000 + size - 1);
    assert!(matches!(
        accept(&mut pool, &chain, short),
        Err(MempoolError::Conflict { why: ReplaceError::FeeTooLow { needed, .. }, .. }) if needed == 2_000 + size
    ));
    let bump = pay(coins[0], 2_000 + size);
    let b = accept(&mut pool, &chain, bump).unwrap();
    assert!(pool.contains(&b) && !pool.contains(&f) && !pool.contains(&c), "both evicted");
    assert_eq!(pool.len(), 1);
    assert_eq!(pool.spender(&coins[0].0), Some(b));
}

#[test]
fn replacements_are_refused_for_a_lower_rate_too_many_evictions_or_new_unconfirmed_inputs() {
    let (chain, coins) = funded(2);
    let mut pool = Mempool::default();
    // A small, high-rate transaction cannot be replaced by a big one paying more in all
    // but less per byte.
    let small = pay(coins[0], 10_000);
    accept(&mut pool, &chain, small.clone()).unwrap();
    let outs = (0..20)
        .map(|_| TxOut { value: (coins[0].1.value - 12_000) / 20, pubkey: pubkey(&key(1)) })
        .collect();
    let big = spend(&[coins[0]], outs, &[&key(1)]);
    assert!(big.size() > 3 * small.size());
    assert!(matches!(
        accept(&mut pool, &chain, big),
        Err(MempoolError::Conflict { why: ReplaceError::RateTooLow { .. }, .. })
    ));
    // A replacement may not bring in an unconfirmed input its conflicts did not spend.
    let other = pay(coins[1], 1_000);
    accept(&mut pool, &chain, other.clone()).unwrap();
    let out = TxOut {
        value: coins[0].1.value + other.outputs[0].value - 50_000,
        pubkey: pubkey(&key(1)),
    };
    let greedy = spend(&[coins[0], input_of(&other, 0)], vec![out], &[&key(1)]);
    assert!(matches!(
        accept(&mut pool, &chain, greedy),
        Err(MempoolError::Conflict { why: ReplaceError::NewUnconfirmedInput(op), .. }) if op.txid == other.txid()
    ));
    // More than MAX_REPLACED evicted: a chain of descendants under `other`.
    let mut tip = other.clone();
    for _ in 0..MAX_REPLACED {
        let next = pay(input_of(&tip, 0), 1_000);
        accept(&mut pool, &chain, next.clone()).unwrap();
        tip = next;
    }
    let rival = pay(coins[1], 500_000);
    assert!(matches!(
        accept(&mut pool, &chain, rival),
        Err(MempoolError::Conflict { why: ReplaceError::TooMany { max: MAX_REPLACED, .. }, .. })
    ));
    assert!(pool.contains(&other.txid()) && pool.contains(&tip.txid()), "nothing evicted");
}

#[test]
fn payments_a_block_confirms_teach_the_fee_estimator_what_their_rate_buys() {
    let (mut chain, coins) = funded(4);
    let mut pool = Mempool::default();
    let txs: Vec<Transaction> = coins.iter().map(|c| pay(*c, 20_000)).collect();
    for tx in &txs {
        accept(&mut pool, &chain, tx.clone()).unwrap();
    }
    let rate = pool.get(&txs[0].txid()).unwrap().fee_rate();
    let before = pool.fee_estimates(chain.height(), chain.params());
    assert_eq!(before[0].fee_rate, 1_000, "nothing learned yet: the relay minimum");
    let block = block_on(&chain, chain.tip(), txs, [7; 32]);
    let outcome = chain.accept_block(block, CLOCK).unwrap();
    pool.update_for_tip(&outcome.update, &chain.utxos().unwrap(), chain.height(), chain.params());
    assert!(pool.is_empty());
    let after = pool.fee_estimates(chain.height(), chain.params());
    assert_eq!((after[0].fee_rate, after[0].basis), (rate, fees::Basis::Blocks));
}
