//! Chain state end to end: persistence across restarts and deep reorgs with the mempool.

use minichain::chain::ChainState;
use minichain::consensus::Network;
use minichain::db::Store;
use minichain::mempool::{Mempool, MempoolConfig};
use minichain::miner::build_template;
use minichain::primitives::{Block, Transaction};
use minichain::testkit::{CLOCK, extend, regtest_chain, regtest_chain_and_store, resolve};
use minichain::verify::verify_store;

use crate::support::{Spender, utxo_set};

/// Mines `n` blocks on `chain`'s tip carrying up to `txs_per_block` transactions of `spender`.
fn mine_with_spender(
    chain: &mut ChainState,
    spender: &mut Spender,
    n: u32,
    txs_per_block: usize,
) -> usize {
    let maturity = chain.params().coinbase_maturity;
    let mut total = 0;
    for _ in 0..n {
        let height = chain.height() + 1;
        let txs = spender.make_txs(txs_per_block, height, 1_000);
        total += txs.len();
        let payout = spender.next_payout().1;
        let block = extend(chain, txs, payout);
        spender.learn(&block, height, maturity);
    }
    total
}

#[test]
fn three_hundred_blocks_with_signed_transactions_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("chain.redb");
    let mut spender = Spender::new(0);
    let (tip, height, utxos, txs) = {
        let mut chain = ChainState::open(Store::open(&path, Network::Regtest).unwrap()).unwrap();
        let txs = mine_with_spender(&mut chain, &mut spender, 300, 4);
        (chain.tip(), chain.height(), utxo_set(&chain), txs)
    };
    assert_eq!(height, 300);
    assert!(txs >= 300, "only {txs} transactions were mined");
    let store = Store::open(&path, Network::Regtest).unwrap();
    let chain = ChainState::open(store.clone()).unwrap();
    assert_eq!(chain.tip(), tip);
    assert_eq!(chain.height(), 300);
    assert_eq!(utxo_set(&chain), utxos);
    let report = verify_store(&store).unwrap();
    assert_eq!((report.height, report.tip, report.utxos), (300, tip, utxos.len() as u64));
}

/// Mines a block on the tip from `mempool` with the miner's own template code.
fn mine_from_mempool(chain: &mut ChainState, mempool: &mut Mempool, payout: [u8; 32]) -> Block {
    let mut template = build_template(chain, mempool, payout, CLOCK);
    resolve(&mut template.block);
    let block = template.block;
    let outcome = chain.accept_block(block.clone(), CLOCK).unwrap();
    assert!(outcome.invalid.is_empty());
    let reader = chain.utxos().unwrap();
    mempool.update_for_tip(&outcome.update, &reader, chain.height(), chain.params());
    block
}

#[test]
fn a_longer_branch_replaces_ten_blocks_and_the_losers_transactions_return() {
    // Coinbases alternate between two spenders: the loser's and the winner's.
    let (mut spender, mut winner_spender) = (Spender::new(0), Spender::new(1_000_000));
    let (mut node, node_store) = regtest_chain_and_store();
    let mut prefix = Vec::new();
    let maturity = node.params().coinbase_maturity;
    for i in 0..120 {
        let height = node.height() + 1;
        let payout =
            if i % 2 == 0 { spender.next_payout().1 } else { winner_spender.next_payout().1 };
        let block = extend(&mut node, vec![], payout);
        spender.learn(&block, height, maturity);
        winner_spender.learn(&block, height, maturity);
        prefix.push(block);
    }
    let fork = node.tip();

    // Loser: 10 blocks mined from the mempool, with chains of unconfirmed transactions.
    let mut mempool = Mempool::new(MempoolConfig::default());
    let mut loser_txids = Vec::new();
    for _ in 0..10 {
        let height = node.height() + 1;
        for tx in spender.make_txs(3, height, 2_000) {
            let reader = node.utxos().unwrap();
            loser_txids.push(mempool.accept(tx, &reader, node.height(), node.params()).unwrap());
        }
        let block = mine_from_mempool(&mut node, &mut mempool, [0x11; 32]);
        spender.learn(&block, height, maturity);
        assert!(mempool.is_empty(), "every mempool transaction was mined");
    }
    assert_eq!(node.height(), 130);
    assert!(loser_txids.len() >= 20);

    // Winner: 11 blocks on the fork point, built on a second node from the same prefix,
    // spending coins the loser did not touch.
    let mut other = regtest_chain();
    for block in &prefix {
        other.accept_block(block.clone(), CLOCK).unwrap();
    }
    let mut winner: Vec<Block> = Vec::new();
    for _ in 0..11 {
        let height = other.height() + 1;
        let txs: Vec<Transaction> = winner_spender.make_txs(2, height, 3_000);
        let block = extend(&mut other, txs, [0x22; 32]);
        winner_spender.learn(&block, height, maturity);
        winner.push(block);
    }
    assert!(winner.iter().map(|b| b.txs.len() - 1).sum::<usize>() >= 11);
    assert_eq!(other.tip(), winner.last().unwrap().block_hash());

    // The loser node sees the winning branch: 10 disconnected, 11 connected.
    let mut update_seen = None;
    for block in &winner {
        let outcome = node.accept_block(block.clone(), CLOCK).unwrap();
        assert!(outcome.invalid.is_empty());
        if !outcome.update.is_empty() {
            let reader = node.utxos().unwrap();
            mempool.update_for_tip(&outcome.update, &reader, node.height(), node.params());
            update_seen = Some((outcome.update.disconnected.len(), outcome.update.connected.len()));
        }
    }
    assert_eq!(update_seen, Some((10, 11)));
    assert_eq!(node.tip(), other.tip());
    assert_eq!(node.hash_at(120), Some(fork));

    // Same UTXO set as a node that only ever saw the winning chain.
    assert_eq!(utxo_set(&node), utxo_set(&other));
    verify_store(&node_store).unwrap();
    // Every transaction of the losing branch is back in the mempool.
    for txid in &loser_txids {
        assert!(mempool.contains(txid), "{txid} did not return to the mempool");
    }
    assert_eq!(mempool.len(), loser_txids.len());
    // And they can be mined again on the new chain.
    let block = mine_from_mempool(&mut node, &mut mempool, [0x33; 32]);
    assert_eq!(block.txs.len(), loser_txids.len() + 1);
}
