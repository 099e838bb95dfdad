//! Chain-level tests: every consensus rule rejected with its own variant, fork choice,
//! reorgs and orphans, on an in-memory regtest chain.

use super::outcome::block_error;
use super::*;
use crate::consensus::params::MAX_MONEY;
use crate::consensus::{BlockError, HeaderError, TxError};
use crate::primitives::encode::serialize;
use crate::primitives::{Block, BlockHash, BlockHeader, COIN, OutPoint, Transaction, TxOut};
use crate::storage::{BlockUndo, ChainStore, IndexEntry, UtxoView};
use crate::testkit::*;

/// A chain of 101 blocks whose first coinbase (to `key(1)`) is mature, plus that coinbase.
fn funded() -> (ChainState, (OutPoint, TxOut), secp256k1::Keypair) {
    let mut chain = regtest_chain();
    let alice = key(1);
    let first = extend(&mut chain, vec![], pubkey(&alice));
    for _ in 0..100 {
        extend(&mut chain, vec![], pubkey(&key(99)));
    }
    (chain, coinbase_input(&first), alice)
}

fn out(value: u64, seed: u64) -> TxOut {
    TxOut { value, pubkey: pubkey(&key(seed)) }
}

/// Submits `block` on the tip and returns the rule it broke.
fn reject(chain: &mut ChainState, block: Block) -> BlockError {
    let hash = block.block_hash();
    match chain.accept_block(block, CLOCK) {
        Err(ChainError::InvalidBlock { error, .. }) => error,
        Err(ChainError::InvalidHeader { error, .. }) => BlockError::Header(error),
        Err(other) => panic!("unexpected error {other}"),
        Ok(outcome) => block_error(&outcome, &hash).expect("block was accepted"),
    }
}

fn tx_error(e: BlockError) -> TxError {
    match e {
        BlockError::Tx { error, .. } => error,
        other => panic!("expected a transaction error, got {other}"),
    }
}

/// The rule a block on the tip carrying `txs` breaks.
fn rejected_with(chain: &mut ChainState, txs: Vec<Transaction>) -> BlockError {
    let block = on_tip(chain, txs);
    reject(chain, block)
}

/// The transaction rule a block on the tip carrying `txs` breaks.
fn tx_rejected(chain: &mut ChainState, txs: Vec<Transaction>) -> TxError {
    tx_error(rejected_with(chain, txs))
}

fn on_tip(chain: &ChainState, txs: Vec<Transaction>) -> Block {
    block_on(chain, chain.tip(), txs, pubkey(&key(99)))
}

#[test]
fn bad_proof_of_work_is_rejected() {
    let mut chain = regtest_chain();
    let mut block = on_tip(&chain, vec![]);
    // Regtest accepts about half of all hashes: find a nonce that fails.
    let limit = crate::consensus::pow::target_from_compact(block.header.bits).unwrap();
    while crate::consensus::pow::hash_to_u256(&block.block_hash()) <= limit {
        block.header.nonce += 1;
    }
    assert_eq!(reject(&mut chain, block), BlockError::Header(HeaderError::BadProofOfWork));
}

#[test]
fn wrong_bits_are_rejected() {
    let mut chain = regtest_chain();
    let mut block = on_tip(&chain, vec![]);
    block.header.bits = 0x2000_ffff;
    solve(&mut block.header);
    assert!(matches!(reject(&mut chain, block), BlockError::Header(HeaderError::WrongBits { .. })));
}

#[test]
fn bits_easier_than_the_limit_are_invalid() {
    let mut chain = regtest_chain();
    let mut block = on_tip(&chain, vec![]);
    block.header.bits = 0x2100_ffff;
    assert!(matches!(
        reject(&mut chain, block),
        BlockError::Header(HeaderError::InvalidBits { .. })
    ));
}

#[test]
fn time_at_or_before_median_time_past_is_rejected() {
    let mut chain = regtest_chain();
    for _ in 0..11 {
        extend(&mut chain, vec![], [1; 32]);
    }
    let mut block = on_tip(&chain, vec![]);
    block.header.time = chain.median_time_past(&chain.tip());
    solve(&mut block.header);
    assert!(matches!(
        reject(&mut chain, block),
        BlockError::Header(HeaderError::TimeTooOld { .. })
    ));
}

#[test]
fn time_too_far_in_the_future_is_rejected_but_not_condemned() {
    let mut chain = regtest_chain();
    let mut block = on_tip(&chain, vec![]);
    let drift = u64::from(chain.params().max_future_block_time);
    block.header.time = (CLOCK + drift + 1) as u32;
    solve(&mut block.header);
    let hash = block.block_hash();
    let err = reject(&mut chain, block.clone());
    assert!(matches!(err, BlockError::Header(HeaderError::TimeTooNew { .. })));
    // Later, when the clock has caught up, the same block is fine.
    let outcome = chain.accept_block(block, CLOCK + drift + 10).unwrap();
    assert!(outcome.invalid.is_empty());
    assert_eq!(chain.tip(), hash);
}

#[test]
fn bad_merkle_root_is_rejected_without_condemning_the_header() {
    let mut chain = regtest_chain();
    let good = on_tip(&chain, vec![]);
    let mut bad = good.clone();
    bad.txs[0].outputs[0].value -= 1; // body changed, header kept
    assert_eq!(reject(&mut chain, bad), BlockError::BadMerkleRoot);
    chain.accept_block(good.clone(), CLOCK).unwrap();
    assert_eq!(chain.tip(), good.block_hash());
}

#[test]
fn mutated_merkle_tree_is_rejected() {
    let (mut chain, coin, alice) = funded();
    let a = spend(&[coin], vec![out(COIN, 2)], &[&alice]);
    let b = spend(&[input_of(&a, 0)], vec![out(COIN / 2, 3)], &[&key(2)]);
    let good = on_tip(&chain, vec![a, b.clone()]);
    let mut mutated = good.clone();
    mutated.txs.push(b); // [cb, a, b, b] has the same root as [cb, a, b]
    assert_eq!(
        mutated.header.merkle_root,
        crate::consensus::merkle::block_merkle_root(&mutated.txs).0
    );
    assert_eq!(reject(&mut chain, mutated), BlockError::MutatedMerkle);
    chain.accept_block(good.clone(), CLOCK).unwrap();
    assert_eq!(chain.tip(), good.block_hash(), "the header stayed usable");
}

#[test]
fn duplicate_txid_is_rejected() {
    let (mut chain, coin, alice) = funded();
    let a = spend(&[coin], vec![out(COIN, 2)], &[&alice]);
    let mut resigned = a.clone();
    resigned.inputs[0].signature =
        spend(&[coin], vec![out(COIN, 2)], &[&alice]).inputs[0].signature;
    assert_eq!(a.txid(), resigned.txid());
    let mut block = on_tip(&chain, vec![a]);
    block.txs.push(resigned);
    resolve(&mut block);
    assert!(matches!(reject(&mut chain, block), BlockError::DuplicateTxid(_)));
}

#[test]
fn block_without_coinbase_is_rejected() {
    let (mut chain, coin, alice) = funded();
    let mut block = on_tip(&chain, vec![spend(&[coin], vec![out(COIN, 2)], &[&alice])]);
    block.txs.remove(0);
    resolve(&mut block);
    assert_eq!(reject(&mut chain, block), BlockError::MissingCoinbase);
}

#[test]
fn block_without_transactions_is_rejected() {
    let mut chain = regtest_chain();
    let mut block = on_tip(&chain, vec![]);
    block.txs.clear();
    resolve(&mut block);
    assert_eq!(reject(&mut chain, block), BlockError::NoTransactions);
}

#[test]
fn second_coinbase_is_rejected() {
    let mut chain = regtest_chain();
    let mut block = on_tip(&chain, vec![]);
    block.txs.push(Transaction::coinbase(7, vec![out(1, 2)], 0));
    resolve(&mut block);
    assert_eq!(reject(&mut chain, block), BlockError::SecondCoinbase { index: 1 });
}

#[test]
fn coinbase_with_wrong_height_is_rejected() {
    let mut chain = regtest_chain();
    let mut block = on_tip(&chain, vec![]);
    block.txs[0] = Transaction::coinbase(5, block.txs[0].outputs.clone(), 0);
    resolve(&mut block);
    assert_eq!(reject(&mut chain, block), BlockError::BadCoinbaseHeight { expected: 1, found: 5 });
}

#[test]
fn coinbase_overpay_is_rejected() {
    let mut chain = regtest_chain();
    let mut block = on_tip(&chain, vec![]);
    block.txs[0].outputs[0].value += 1;
    resolve(&mut block);
    assert!(matches!(reject(&mut chain, block), BlockError::CoinbaseOverpay { .. }));
}

#[test]
fn immature_coinbase_spend_is_rejected() {
    let mut chain = regtest_chain();
    let alice = key(1);
    let first = extend(&mut chain, vec![], pubkey(&alice));
    for _ in 0..98 {
        extend(&mut chain, vec![], [9; 32]);
    }
    // Next block is height 100: only 99 confirmations on top of height 1.
    let tx = spend(&[coinbase_input(&first)], vec![out(COIN, 2)], &[&alice]);
    let err = tx_rejected(&mut chain, vec![tx.clone()]);
    assert!(matches!(err, TxError::ImmatureCoinbaseSpend { coinbase_height: 1, .. }));
    extend(&mut chain, vec![], [9; 32]);
    extend(&mut chain, vec![tx], [9; 32]); // at height 101 it is mature
}

#[test]
fn missing_input_is_rejected() {
    let (mut chain, coin, alice) = funded();
    let mut tx = spend(&[coin], vec![out(COIN, 2)], &[&alice]);
    let ghost = OutPoint { txid: unknown_txid(), vout: 0 };
    tx = spend(&[(ghost, coin.1)], tx.outputs, &[&alice]);
    let err = tx_rejected(&mut chain, vec![tx]);
    assert_eq!(err, TxError::InputMissingOrSpent(ghost));
}

#[test]
fn double_spend_against_the_utxo_set_is_rejected() {
    let (mut chain, coin, alice) = funded();
    extend(&mut chain, vec![spend(&[coin], vec![out(COIN, 2)], &[&alice])], [9; 32]);
    let again = spend(&[coin], vec![out(2 * COIN, 3)], &[&alice]);
    let err = tx_rejected(&mut chain, vec![again]);
    assert_eq!(err, TxError::InputMissingOrSpent(coin.0));
}

#[test]
fn double_spend_within_a_block_is_rejected() {
    let (mut chain, coin, alice) = funded();
    let a = spend(&[coin], vec![out(COIN, 2)], &[&alice]);
    let b = spend(&[coin], vec![out(2 * COIN, 3)], &[&alice]);
    assert_eq!(rejected_with(&mut chain, vec![a, b]), BlockError::DoubleSpendInBlock(coin.0));
}

#[test]
fn duplicate_input_is_rejected() {
    let (mut chain, coin, alice) = funded();
    let tx = spend(&[coin, coin], vec![out(COIN, 2)], &[&alice]);
    assert_eq!(tx_rejected(&mut chain, vec![tx]), TxError::DuplicateInput(coin.0));
}

#[test]
fn bad_signature_is_rejected() {
    let (mut chain, coin, alice) = funded();
    let mut tx = spend(&[coin], vec![out(COIN, 2)], &[&alice]);
    tx.inputs[0].signature[10] ^= 1;
    assert_eq!(tx_rejected(&mut chain, vec![tx]), TxError::BadSignature { index: 0 });
}

#[test]
fn signature_by_the_wrong_key_is_rejected() {
    let (mut chain, coin, _alice) = funded();
    let mallory = key(666);
    let mut tx = spend(&[(coin.0, out(coin.1.value, 666))], vec![out(COIN, 2)], &[&mallory]);
    tx.outputs[0].value = COIN; // signed over a different spent key than the real one
    let tx = Transaction { inputs: tx.inputs.clone(), ..tx };
    assert_eq!(tx_rejected(&mut chain, vec![tx]), TxError::BadSignature { index: 0 });
}

#[test]
fn outputs_above_inputs_are_rejected() {
    let (mut chain, coin, alice) = funded();
    let tx = spend(&[coin], vec![out(coin.1.value + 1, 2)], &[&alice]);
    assert!(matches!(tx_rejected(&mut chain, vec![tx]), TxError::OutputsExceedInputs { .. }));
}

#[test]
fn value_above_max_money_is_rejected() {
    let (mut chain, coin, alice) = funded();
    let tx = spend(&[coin], vec![out(MAX_MONEY + 1, 2)], &[&alice]);
    assert_eq!(tx_rejected(&mut chain, vec![tx]), TxError::OutputValueTooLarge);
    let tx = spend(&[coin], vec![out(MAX_MONEY, 2), out(MAX_MONEY, 3)], &[&alice]);
    assert_eq!(tx_rejected(&mut chain, vec![tx]), TxError::OutputValueTooLarge);
}

#[test]
fn oversize_transaction_is_rejected() {
    let (mut chain, coin, alice) = funded();
    let outputs = vec![out(1, 2); chain.params().max_tx_size / 40 + 1];
    let tx = spend(&[coin], outputs, &[&alice]);
    assert!(matches!(tx_rejected(&mut chain, vec![tx]), TxError::Oversize { .. }));
}

#[test]
fn oversize_block_is_rejected() {
    let mut chain = regtest_chain();
    let mut block = on_tip(&chain, vec![]);
    // Many small transactions: each alone is fine, together over the block limit.
    let filler = Transaction {
        version: 1,
        inputs: vec![crate::primitives::TxIn {
            prevout: OutPoint { txid: unknown_txid(), vout: 0 },
            signature: [0; 64],
        }],
        outputs: vec![out(1, 2); 2_000],
        lock_time: 0,
    };
    for i in 0..13u32 {
        let mut tx = filler.clone();
        tx.lock_time = i;
        block.txs.push(tx);
    }
    resolve(&mut block);
    assert!(matches!(reject(&mut chain, block), BlockError::Oversize { .. }));
}

#[test]
fn too_many_inputs_are_rejected() {
    let mut chain = regtest_chain();
    let mut block = on_tip(&chain, vec![]);
    let max = chain.params().max_block_inputs;
    for i in 0..=(max / 900) as u32 {
        let inputs = (0..900u32)
            .map(|v| crate::primitives::TxIn {
                prevout: OutPoint { txid: unknown_txid(), vout: i * 1000 + v },
                signature: [0; 64],
            })
            .collect();
        block.txs.push(Transaction { version: 1, inputs, outputs: vec![out(1, 2)], lock_time: 0 });
    }
    resolve(&mut block);
    assert!(matches!(reject(&mut chain, block), BlockError::TooManyInputs { .. }));
}

#[test]
fn transaction_without_inputs_or_outputs_is_rejected() {
    let (mut chain, coin, alice) = funded();
    let no_outputs = spend(&[coin], vec![], &[&alice]);
    assert_eq!(tx_rejected(&mut chain, vec![no_outputs]), TxError::NoOutputs);
    let no_inputs =
        Transaction { version: 1, inputs: vec![], outputs: vec![out(1, 2)], lock_time: 0 };
    assert_eq!(tx_rejected(&mut chain, vec![no_inputs]), TxError::NoInputs);
}

#[test]
fn non_coinbase_spending_the_null_outpoint_is_rejected() {
    let mut chain = regtest_chain();
    let null = (OutPoint { txid: crate::primitives::Txid::ZERO, vout: 3 }, out(1, 1));
    let extra = (OutPoint { txid: unknown_txid(), vout: 0 }, out(1, 1));
    let tx = spend(&[extra, null], vec![out(1, 2)], &[&key(1)]);
    assert_eq!(tx_rejected(&mut chain, vec![tx]), TxError::NullPrevout);
}

#[test]
fn invalid_block_and_its_descendants_are_remembered() {
    let (mut chain, coin, alice) = funded();
    let mut tx = spend(&[coin], vec![out(COIN, 2)], &[&alice]);
    tx.inputs[0].signature[0] ^= 1;
    let bad = on_tip(&chain, vec![tx]);
    let bad_hash = bad.block_hash();
    reject(&mut chain, bad.clone());
    assert!(
        matches!(chain.accept_block(bad, CLOCK), Err(ChainError::KnownInvalid(h)) if h == bad_hash)
    );
    let child = block_on(&chain, bad_hash, vec![], [1; 32]);
    assert!(matches!(chain.accept_block(child, CLOCK), Err(ChainError::KnownInvalid(_))));
}

#[test]
fn equal_work_keeps_the_first_seen_tip() {
    let mut chain = regtest_chain();
    let a = block_on(&chain, chain.tip(), vec![], [1; 32]);
    let b = block_on(&chain, chain.tip(), vec![], [2; 32]);
    chain.accept_block(a.clone(), CLOCK).unwrap();
    let outcome = chain.accept_block(b.clone(), CLOCK).unwrap();
    assert!(outcome.update.is_empty());
    assert_eq!(chain.tip(), a.block_hash());
    // One more block on b makes it heavier: reorg.
    let c = block_on(&chain, b.block_hash(), vec![], [3; 32]);
    let outcome = chain.accept_block(c.clone(), CLOCK).unwrap();
    assert_eq!(outcome.update.disconnected.len(), 1);
    assert_eq!(outcome.update.connected.len(), 2);
    assert_eq!(chain.tip(), c.block_hash());
}

#[test]
fn orphans_wait_for_their_parent_and_then_connect() {
    let mut source = regtest_chain();
    let blocks: Vec<Block> = (0..5).map(|_| extend(&mut source, vec![], [4; 32])).collect();
    let mut chain = regtest_chain();
    for block in &blocks[1..] {
        let outcome = chain.accept_block(block.clone(), CLOCK).unwrap();
        assert_eq!(outcome.status, BlockStatus::Orphan { missing: blocks[0].block_hash() });
    }
    assert_eq!(chain.orphan_count(), 4);
    let outcome = chain.accept_block(blocks[0].clone(), CLOCK).unwrap();
    assert_eq!(outcome.update.connected.len(), 5);
    assert_eq!(chain.tip(), blocks[4].block_hash());
    assert_eq!(chain.orphan_count(), 0);
}

#[test]
fn a_heavier_branch_with_an_invalid_block_is_abandoned_for_the_valid_tip() {
    let (mut chain, coin, alice) = funded();
    let fork_point = chain.tip();
    let main_tip = extend(&mut chain, vec![], [5; 32]).block_hash();
    // Side branch: valid first block, then a block with a bad signature, then one more.
    let s1 = block_on(&chain, fork_point, vec![], [6; 32]);
    chain.accept_block(s1.clone(), CLOCK).unwrap();
    let mut tx = spend(&[coin], vec![out(COIN, 2)], &[&alice]);
    tx.inputs[0].signature[5] ^= 1;
    let s2 = block_on(&chain, s1.block_hash(), vec![tx], [6; 32]);
    // s1+s2 outweigh main: the switch is tried, s2 fails, and the chain falls back.
    let outcome = chain.accept_block(s2.clone(), CLOCK).unwrap();
    assert!(matches!(
        block_error(&outcome, &s2.block_hash()),
        Some(BlockError::Tx { error: TxError::BadSignature { .. }, .. })
    ));
    assert_eq!(outcome.update.disconnected.len(), 1, "main tip was taken off for the switch");
    // s1 has the same work as main_tip, so whichever is tip now, it is valid and not s2.
    assert!(chain.tip() == main_tip || chain.tip() == s1.block_hash());
    assert!(chain.entry(&s2.block_hash()).unwrap().is_failed());
    let s3 = block_on(&chain, s2.block_hash(), vec![], [6; 32]);
    assert!(matches!(chain.accept_block(s3, CLOCK), Err(ChainError::KnownInvalid(_))));
}

#[test]
fn headers_first_then_blocks_connect() {
    let mut source = regtest_chain();
    let blocks: Vec<Block> = (0..3).map(|_| extend(&mut source, vec![], [4; 32])).collect();
    let mut chain = regtest_chain();
    for b in &blocks {
        chain.accept_header(&b.header, CLOCK).unwrap();
    }
    assert_eq!(chain.best_header().height, 3);
    assert_eq!(chain.height(), 0);
    // Blocks may arrive out of order; they connect once the gap is filled.
    chain.accept_block(blocks[2].clone(), CLOCK).unwrap();
    chain.accept_block(blocks[1].clone(), CLOCK).unwrap();
    assert_eq!(chain.height(), 0);
    chain.accept_block(blocks[0].clone(), CLOCK).unwrap();
    assert_eq!(chain.tip(), blocks[2].block_hash());
    let mut unknown =
        crate::primitives::BlockHeader { prev_blockhash: BlockHash([7; 32]), ..blocks[0].header };
    solve(&mut unknown);
    assert!(matches!(chain.accept_header(&unknown, CLOCK), Err(ChainError::UnknownParent { .. })));
}

/// A store that counts what the chain asks of it, and can be told to fail its writes.
struct Counting {
    inner: crate::db::Store,
    applies: std::sync::Arc<std::sync::Mutex<Vec<crate::storage::ChainWrite>>>,
    block_reads: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    fail: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl crate::storage::ChainStore for Counting {
    fn network(&self) -> crate::consensus::Network {
        self.inner.network()
    }
    fn tip(&self) -> Result<Option<BlockHash>, crate::storage::StorageError> {
        crate::storage::ChainStore::tip(&self.inner)
    }
    fn load_index(&self) -> Result<Vec<IndexEntry>, crate::storage::StorageError> {
        crate::storage::ChainStore::load_index(&self.inner)
    }
    fn hash_at(&self, height: u32) -> Result<Option<BlockHash>, crate::storage::StorageError> {
        crate::storage::ChainStore::hash_at(&self.inner, height)
    }
    fn block(&self, hash: &BlockHash) -> Result<Option<Block>, crate::storage::StorageError> {
        self.block_reads.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        crate::storage::ChainStore::block(&self.inner, hash)
    }
    fn block_bytes(
        &self,
        hash: &BlockHash,
    ) -> Result<Option<Vec<u8>>, crate::storage::StorageError> {
        crate::storage::ChainStore::block_bytes(&self.inner, hash)
    }
    fn undo(&self, hash: &BlockHash) -> Result<Option<BlockUndo>, crate::storage::StorageError> {
        crate::storage::ChainStore::undo(&self.inner, hash)
    }
    fn utxos(&self) -> Result<Box<dyn UtxoView + '_>, crate::storage::StorageError> {
        crate::storage::ChainStore::utxos(&self.inner)
    }
    fn for_each_coin(
        &self,
        f: &mut dyn FnMut(OutPoint, crate::primitives::Coin),
    ) -> Result<(), crate::storage::StorageError> {
        crate::storage::ChainStore::for_each_coin(&self.inner, f)
    }
    fn snapshot_base(
        &self,
    ) -> Result<Option<crate::storage::SnapshotBase>, crate::storage::StorageError> {
        crate::storage::ChainStore::snapshot_base(&self.inner)
    }
    fn mark_snapshot_validated(&self) -> Result<(), crate::storage::StorageError> {
        crate::storage::ChainStore::mark_snapshot_validated(&self.inner)
    }
    fn apply(
        &self,
        write: &crate::storage::ChainWrite,
    ) -> Result<(), crate::storage::StorageError> {
        if self.fail.load(std::sync::atomic::Ordering::Relaxed) {
            return Err(crate::storage::StorageError::Inconsistent("disk full (test)"));
        }
        self.applies.lock().unwrap().push(write.clone());
        crate::storage::ChainStore::apply(&self.inner, write)
    }
}

fn counting_chain() -> (ChainState, Counting) {
    let inner = crate::db::Store::in_memory(crate::consensus::Network::Regtest).unwrap();
    let counting = Counting {
        inner,
        applies: Default::default(),
        block_reads: Default::default(),
        fail: Default::default(),
    };
    let probe = Counting {
        inner: counting.inner.clone(),
        applies: counting.applies.clone(),
        block_reads: counting.block_reads.clone(),
        fail: counting.fail.clone(),
    };
    (ChainState::open(counting).unwrap(), probe)
}

#[test]
fn a_block_costs_one_write_and_is_never_read_back() {
    let (mut chain, probe) = counting_chain();
    probe.applies.lock().unwrap().clear();
    let a = extend(&mut chain, vec![], [1; 32]);
    let writes = std::mem::take(&mut *probe.applies.lock().unwrap());
    assert_eq!(writes.len(), 1, "one write for one block");
    let w = &writes[0];
    assert_eq!(w.blocks.len(), 1);
    assert_eq!(w.blocks[0].block_hash(), a.block_hash());
    assert!(matches!(w.steps.as_slice(), [crate::storage::Step::Connect { height: 1, .. }]));
    assert_eq!(w.tip, Some(a.block_hash()));
    assert!(w.durable, "a block at the best header is durable at once");
    assert_eq!(probe.block_reads.load(std::sync::atomic::Ordering::Relaxed), 0, "no read-back");

    // A reorg by two blocks arriving as one (orphan first, then its parent): still one
    // write, with the disconnect and both connects in order.
    let b1 = block_on(&chain, a.header.prev_blockhash, vec![], [2; 32]);
    let mut side = regtest_chain();
    side.accept_block(b1.clone(), CLOCK).unwrap();
    let b2 = block_on(&side, b1.block_hash(), vec![], [2; 32]);
    assert!(matches!(
        chain.accept_block(b2.clone(), CLOCK).unwrap().status,
        BlockStatus::Orphan { .. }
    ));
    assert!(probe.applies.lock().unwrap().is_empty(), "orphans are held in memory");
    let outcome = chain.accept_block(b1, CLOCK).unwrap();
    assert_eq!((outcome.update.disconnected.len(), outcome.update.connected.len()), (1, 2));
    let writes = std::mem::take(&mut *probe.applies.lock().unwrap());
    assert_eq!(writes.len(), 1);
    let kinds: Vec<&str> = writes[0]
        .steps
        .iter()
        .map(|s| match s {
            crate::storage::Step::Connect { .. } => "connect",
            crate::storage::Step::Disconnect { .. } => "disconnect",
        })
        .collect();
    assert_eq!(kinds, ["disconnect", "connect", "connect"]);
    assert_eq!(writes[0].tip, Some(b2.block_hash()));
    assert_eq!(chain.tip(), b2.block_hash());

    // Headers only: one write, not durable.
    let mut source = regtest_chain();
    let next = extend(&mut source, vec![], [3; 32]);
    let mut fresh = counting_chain();
    fresh.1.applies.lock().unwrap().clear();
    fresh.0.accept_header(&next.header, CLOCK).unwrap();
    let writes = fresh.1.applies.lock().unwrap();
    assert_eq!(writes.len(), 1);
    assert!(!writes[0].durable && writes[0].blocks.is_empty());
}

/// A counting chain that knows the headers of `n` blocks of `source` but none of their
/// data: it is catching up. Its write log starts empty.
fn catching_up(source: &mut ChainState, n: u8) -> (ChainState, Counting, Vec<Block>) {
    let blocks: Vec<Block> = (0..n).map(|i| extend(source, vec![], [i; 32])).collect();
    let (mut chain, probe) = counting_chain();
    let headers: Vec<BlockHeader> = blocks.iter().map(|b| b.header).collect();
    assert!(chain.accept_headers(&headers, CLOCK).1.is_none());
    probe.applies.lock().unwrap().clear();
    (chain, probe, blocks)
}

#[test]
fn catching_up_holds_blocks_in_memory_and_writes_them_every_few_seconds_and_at_the_end() {
    use crate::chain::write::FLUSH_EVERY_SECS;
    let (mut chain, probe, blocks) = catching_up(&mut regtest_chain(), 6);
    // Headers are known up to block 6: blocks 1-5 arrive while catching up, 4 and 5
    // one flush interval after 1-3, then block 6 reaches the best header.
    let mut writes = Vec::new();
    for (i, block) in blocks.iter().enumerate() {
        let now = CLOCK + if i < 3 { 0 } else { FLUSH_EVERY_SECS };
        chain.accept_block(block.clone(), now).unwrap();
        assert_eq!(chain.tip(), block.block_hash());
        let applied = std::mem::take(&mut *probe.applies.lock().unwrap());
        assert!(applied.iter().all(|w| w.durable), "every write is durable");
        writes.push(applied.iter().map(|w| w.steps.len()).collect::<Vec<_>>());
    }
    // Block 1 is held; block 2 finds it due (nothing durable since open) and it is written
    // meanwhile; 2 and 3 are held until 4 comes FLUSH_EVERY_SECS later; 4 and 5 are held
    // until 6, at the best header, takes them to the store with it.
    let expected: [&[usize]; 6] = [&[], &[1], &[], &[2], &[], &[3]];
    assert_eq!(writes, expected);
    assert!(!chain.flush(None).unwrap(), "nothing left once caught up");
}

/// Every coin of `chain`'s UTXO set, in outpoint order.
fn coins(chain: &ChainState) -> Vec<(OutPoint, crate::primitives::Coin)> {
    let mut v = Vec::new();
    chain.for_each_coin(|op, coin| v.push((op, coin))).unwrap();
    v
}

/// Blocks 1 to `tip` of `chain`'s active chain, as a peer would send them.
fn active_blocks(chain: &ChainState, tip: u32) -> Vec<Block> {
    (1..=tip).map(|h| chain.block(&chain.hash_at(h).unwrap()).unwrap().unwrap()).collect()
}

#[test]
fn what_catching_up_holds_in_memory_is_read_as_if_it_were_stored() {
    let (mut chain, coin, alice) = funded();
    // A second chain that syncs this one, headers first, and has not written block 102.
    let (mut syncing, probe, _) = catching_up(&mut regtest_chain(), 0);
    let mut blocks = active_blocks(&chain, 101);
    let paid = spend(&[coin], vec![out(COIN, 2)], &[&alice]);
    blocks.push(extend(&mut chain, vec![paid.clone()], pubkey(&key(99))));
    blocks.push(extend(&mut chain, vec![], pubkey(&key(99))));
    let headers: Vec<BlockHeader> = blocks.iter().map(|b| b.header).collect();
    assert!(syncing.accept_headers(&headers, CLOCK).1.is_none());
    let last = blocks.pop().unwrap();
    syncing.accept_blocks(blocks, CLOCK).unwrap();
    assert_eq!(syncing.height(), 102);
    let held = syncing.hash_at(102).unwrap();
    assert!(probe.inner.block(&held).unwrap().is_none(), "block 102 is not in the store yet");
    let block = syncing.block(&held).unwrap().expect("but the chain serves it");
    let wire = serialize(&block);
    assert_eq!(syncing.block_bytes(&held).unwrap(), Some(wire.clone()), "in its wire form too");
    let created = OutPoint { txid: paid.txid(), vout: 0 };
    assert!(syncing.utxos().unwrap().coin(&created).unwrap().is_some());
    assert!(syncing.utxos().unwrap().coin(&coin.0).unwrap().is_none(), "spent in block 102");
    let all = coins(&syncing);
    assert!(all.iter().any(|(op, _)| *op == created) && !all.iter().any(|(op, _)| *op == coin.0));
    // Once caught up, everything is in the store and reads the same.
    syncing.accept_block(last, CLOCK).unwrap();
    assert!(probe.inner.block(&held).unwrap().is_some());
    assert_eq!(syncing.block_bytes(&held).unwrap(), Some(wire), "as stored, byte for byte");
    assert_eq!(coins(&syncing), coins(&chain));
}

#[test]
fn a_bad_signature_in_a_run_of_blocks_stops_the_chain_before_it() {
    let (mut chain, coin, alice) = funded();
    let (mut syncing, _probe, _) = catching_up(&mut regtest_chain(), 0);
    let mut blocks = active_blocks(&chain, 101);
    // Block 102 spends the coin, block 103 has a bad signature on a spend of 102's output,
    // block 104 builds on it: the pipeline verifies 103 while it prepares 104.
    let first = spend(&[coin], vec![out(COIN, 2)], &[&alice]);
    blocks.push(extend(&mut chain, vec![first.clone()], pubkey(&key(99))));
    let mut second = spend(
        &[(OutPoint { txid: first.txid(), vout: 0 }, out(COIN, 2))],
        vec![out(COIN / 2, 3)],
        &[&key(2)],
    );
    second.inputs[0].signature[5] ^= 1;
    let bad = on_tip(&chain, vec![second]);
    reject(&mut chain, bad.clone()); // known to `chain`, so that a child can be built on it
    blocks.push(bad.clone());
    blocks.push(block_on(&chain, bad.block_hash(), vec![], pubkey(&key(99))));
    let good_tip = blocks[101].block_hash();
    let child = blocks[103].block_hash();
    let outcome = syncing.accept_blocks(blocks, CLOCK).unwrap();
    assert!(outcome.statuses.iter().all(|s| matches!(s, Ok(BlockStatus::Stored))));
    assert_eq!(syncing.tip(), good_tip);
    assert_eq!(outcome.update.connected.len(), 102);
    let [(hash, ChainError::InvalidBlock { error, .. })] = outcome.invalid.as_slice() else {
        panic!("expected one invalid block, got {:?}", outcome.invalid);
    };
    assert_eq!(*hash, bad.block_hash());
    assert_eq!(tx_error(error.clone()), TxError::BadSignature { index: 0 });
    assert!(syncing.entry(&child).unwrap().is_failed(), "its descendant is condemned too");
    // The UTXO set is the one of block 102: the spend in 103 left nothing behind.
    let view = syncing.utxos().unwrap();
    assert!(view.coin(&OutPoint { txid: first.txid(), vout: 0 }).unwrap().is_some());
}

#[test]
fn held_blocks_are_written_on_a_tick_once_the_sync_stalls_and_at_shutdown() {
    use crate::chain::write::FLUSH_EVERY_SECS;
    let mut source = regtest_chain();
    let (mut chain, probe, blocks) = catching_up(&mut source, 3);
    chain.accept_block(blocks[0].clone(), CLOCK).unwrap(); // held
    chain.accept_block(blocks[1].clone(), CLOCK).unwrap(); // writes 1 meanwhile, holds 2
    probe.applies.lock().unwrap().clear();
    // While blocks keep coming the next one writes what is held; a tick waits longer.
    assert!(!chain.flush(Some(CLOCK + FLUSH_EVERY_SECS)).unwrap(), "not stalled yet");
    assert!(chain.flush(Some(CLOCK + 2 * FLUSH_EVERY_SECS)).unwrap(), "stalled");
    assert!(!chain.flush(None).unwrap(), "nothing left");
    let writes = std::mem::take(&mut *probe.applies.lock().unwrap());
    assert!(writes.len() == 1 && writes[0].durable && writes[0].steps.len() == 1);
    assert_eq!(probe.inner.tip().unwrap(), Some(blocks[1].block_hash()));
    // At shutdown (`None`) what is held is written whatever the time.
    let more: Vec<Block> = (3..5).map(|i| extend(&mut source, vec![], [i; 32])).collect();
    let headers: Vec<BlockHeader> = more.iter().map(|b| b.header).collect();
    assert!(chain.accept_headers(&headers, CLOCK).1.is_none());
    chain.accept_block(blocks[2].clone(), CLOCK + 2 * FLUSH_EVERY_SECS).unwrap();
    assert_eq!(probe.inner.tip().unwrap(), Some(blocks[1].block_hash()), "held");
    assert!(chain.flush(None).unwrap());
    assert_eq!(probe.inner.tip().unwrap(), Some(blocks[2].block_hash()));
}

#[test]
fn a_failed_write_leaves_memory_as_the_store_has_it() {
    let (mut chain, probe) = counting_chain();
    let a = extend(&mut chain, vec![], [1; 32]);
    probe.fail.store(true, std::sync::atomic::Ordering::Relaxed);
    let b = block_on(&chain, a.block_hash(), vec![], [1; 32]);
    assert!(matches!(chain.accept_block(b.clone(), CLOCK), Err(ChainError::Storage(_))));
    assert_eq!(chain.tip(), a.block_hash(), "memory did not run ahead of the store");
    assert!(chain.entry(&b.block_hash()).is_none_or(|e| !e.has_data()));
    probe.fail.store(false, std::sync::atomic::Ordering::Relaxed);
    let outcome = chain.accept_block(b.clone(), CLOCK).unwrap();
    assert_eq!(outcome.status, BlockStatus::Stored);
    assert_eq!(chain.tip(), b.block_hash());
}

#[test]
fn a_fifty_block_reorg_is_one_write_and_leaves_the_utxo_set_of_a_replay() {
    let (mut chain, probe) = counting_chain();
    let mut other = regtest_chain();
    let mut shared = Vec::new();
    for _ in 0..5 {
        let b = extend(&mut other, vec![], [1; 32]);
        chain.accept_block(b.clone(), CLOCK).unwrap();
        shared.push(b);
    }
    // 50 blocks on our side, 51 on the other: the 51st moves everything at once.
    for _ in 0..50 {
        extend(&mut chain, vec![], [2; 32]);
    }
    let theirs: Vec<Block> = (0..51).map(|_| extend(&mut other, vec![], [3; 32])).collect();
    probe.applies.lock().unwrap().clear();
    let mut last = None;
    for b in &theirs {
        last = Some(chain.accept_block(b.clone(), CLOCK).unwrap());
    }
    let outcome = last.unwrap();
    assert_eq!((outcome.update.disconnected.len(), outcome.update.connected.len()), (50, 51));
    let writes = probe.applies.lock().unwrap();
    assert_eq!(writes.len(), 51, "one write per block received");
    assert_eq!(writes[50].steps.len(), 101, "the reorg: 50 disconnects and 51 connects");
    drop(writes);
    assert_eq!(chain.tip(), other.tip());
    assert_eq!(coins(&chain), coins(&other), "same UTXO set as a node that only saw the winner");
}

#[test]
fn signatures_the_mempool_verified_are_not_checked_again_but_other_bytes_are() {
    let (mut chain, coin, alice) = funded();
    let good = spend(&[coin], vec![out(COIN, 2)], &[&alice]);
    let mut forged = good.clone();
    forged.inputs[0].signature[5] ^= 1;
    // Same txid, another signature: not what was verified, so checked and refused.
    chain.note_verified(good.wtxid());
    assert_eq!(tx_rejected(&mut chain, vec![forged.clone()]), TxError::BadSignature { index: 0 });
    // The note is taken at its word: the exact bytes the mempool verified get no second
    // check (shown with a forged signature, which the mempool itself never notes).
    let (mut chain, _, _) = funded();
    chain.note_verified(forged.wtxid());
    let block = on_tip(&chain, vec![forged]);
    let hash = block.block_hash();
    chain.accept_block(block, CLOCK).unwrap();
    assert_eq!(chain.tip(), hash, "the noted transaction's signature was not checked");
}
