//! Builders shared by unit tests, integration tests and benchmarks: deterministic keys,
//! signed transactions and solved regtest blocks. Compiled for unit tests, for `cargo fuzz`
//! (`--cfg fuzzing`) and with the `testkit` feature, which the package's dev-dependency on
//! itself turns on for integration tests and benches; never into the node binary.

use std::collections::HashMap;

use secp256k1::Keypair;
use sha2::{Digest, Sha256};

use crate::chain::ChainState;
use crate::consensus::merkle::block_merkle_root;
use crate::consensus::params::REGTEST;
use crate::consensus::pow::{hash_to_u256, target_from_compact};
use crate::consensus::{Network, Params};
use crate::db::Store;
use crate::primitives::{Block, BlockHash, BlockHeader, OutPoint, Transaction, TxOut, Txid};
use crate::storage::UtxoView;
use crate::wallet::sign::{pubkey_of, signed_transaction};

/// A "now" for regtest tests: late enough that no test block is in the future.
pub const CLOCK: u64 = REGTEST.genesis_time as u64 + 100_000_000;

/// A deterministic key from `seed`.
pub fn key(seed: u64) -> Keypair {
    let secret: [u8; 32] = Sha256::digest(seed.to_le_bytes()).into();
    // A SHA-256 output is a valid secret key except with negligible probability; the
    // seeds used in tests are fixed, so this is checked by every test run.
    Keypair::from_secret_bytes(secret).expect("hash is a valid secret key")
}

/// The x-only public key outputs lock to.
pub fn pubkey(keypair: &Keypair) -> [u8; 32] {
    pubkey_of(keypair)
}

/// A regtest chain on an in-memory store.
pub fn regtest_chain() -> ChainState {
    regtest_chain_and_store().0
}

/// A regtest chain on an in-memory store, with a handle on that store (for checks that
/// read the database itself, such as `verify_store`).
pub fn regtest_chain_and_store() -> (ChainState, Store) {
    let store = Store::in_memory(Network::Regtest).expect("in-memory store");
    (ChainState::open(store.clone()).expect("fresh chain opens"), store)
}

/// A transaction spending `inputs` (outpoint and the output it holds) to `outputs`, signed
/// with `keys` (matched to each spent output's key).
pub fn spend(inputs: &[(OutPoint, TxOut)], outputs: Vec<TxOut>, keys: &[&Keypair]) -> Transaction {
    let by_key: HashMap<[u8; 32], &Keypair> = keys.iter().map(|k| (pubkey(k), *k)).collect();
    // Tests pass the keys of what they spend; a missing one is a broken test.
    signed_transaction(inputs, outputs, |pk| by_key.get(pk).copied()).expect("keys given")
}

/// Finds a nonce that meets the header's bits (instant on regtest).
pub fn solve(header: &mut BlockHeader) {
    let target = target_from_compact(header.bits).expect("valid bits");
    while hash_to_u256(&header.block_hash()) > target {
        header.nonce = header.nonce.wrapping_add(1);
    }
}

/// Recomputes the Merkle root and solves the header again after `block` was edited.
pub fn resolve(block: &mut Block) {
    block.header.merkle_root = block_merkle_root(&block.txs).0;
    solve(&mut block.header);
}

/// Fee of each transaction in `txs` given the chain's UTXO set and earlier `txs`
/// (0 where an input cannot be found: tests of invalid blocks).
fn fees(view: &impl UtxoView, txs: &[Transaction]) -> u64 {
    let mut created: HashMap<OutPoint, u64> = HashMap::new();
    let mut total = 0u64;
    for tx in txs {
        let txid = tx.txid();
        let inputs: Option<u64> = tx
            .inputs
            .iter()
            .map(|i| {
                created
                    .get(&i.prevout)
                    .copied()
                    .or_else(|| view.coin(&i.prevout).ok().flatten().map(|c| c.output.value))
            })
            .sum();
        if let (Some(inputs), Some(outputs)) = (inputs, tx.total_out()) {
            total += inputs.saturating_sub(outputs);
        }
        for (vout, out) in tx.outputs.iter().enumerate() {
            created.insert(OutPoint { txid, vout: vout as u32 }, out.value);
        }
    }
    total
}

/// A valid, solved block on `parent` with `txs`, paying subsidy plus fees to `payout`.
pub fn block_on(
    chain: &ChainState,
    parent: BlockHash,
    txs: Vec<Transaction>,
    payout: [u8; 32],
) -> Block {
    let params: &Params = chain.params();
    let entry = chain.entry(&parent).expect("parent known");
    let ctx = chain.child_context(&parent, CLOCK).expect("parent known");
    let height = entry.height + 1;
    let reward = params.subsidy(height) + fees(chain, &txs);
    let time = entry.header.time.max(ctx.median_time_past) + 1;
    let coinbase = Transaction::coinbase(height, vec![TxOut { value: reward, pubkey: payout }], 0);
    solved_block(parent, time, ctx.expected_bits, coinbase, txs)
}

/// A solved block on `parent` (known or not) with `coinbase` then `txs`: the raw builder
/// for tests that need blocks no chain would build (orphans, invalid ones).
pub fn solved_block(
    parent: BlockHash,
    time: u32,
    bits: u32,
    coinbase: Transaction,
    txs: Vec<Transaction>,
) -> Block {
    let mut all = vec![coinbase];
    all.extend(txs);
    let header = BlockHeader {
        version: 1,
        prev_blockhash: parent,
        merkle_root: Default::default(),
        time,
        bits,
        nonce: 0,
    };
    let mut block = Block { header, txs: all };
    resolve(&mut block);
    block
}

/// Mines a block with `txs` on the tip, accepts it and asserts it became the tip.
pub fn extend(chain: &mut ChainState, txs: Vec<Transaction>, payout: [u8; 32]) -> Block {
    let block = block_on(chain, chain.tip(), txs, payout);
    let hash = block.block_hash();
    let outcome = chain.accept_block(block.clone(), CLOCK).expect("block accepted");
    assert!(outcome.invalid.is_empty(), "block invalid: {:?}", outcome.invalid);
    assert_eq!(chain.tip(), hash, "block did not become the tip");
    block
}

/// The coinbase output of `block` as a spendable input.
pub fn coinbase_input(block: &Block) -> (OutPoint, TxOut) {
    (OutPoint { txid: block.txs[0].txid(), vout: 0 }, block.txs[0].outputs[0])
}

/// Output `vout` of `tx` as a spendable input.
pub fn input_of(tx: &Transaction, vout: u32) -> (OutPoint, TxOut) {
    (OutPoint { txid: tx.txid(), vout }, tx.outputs[vout as usize])
}

/// A txid that no transaction has.
pub fn unknown_txid() -> Txid {
    Txid([0xee; 32])
}

/// A regtest chain from height 1 whose block 102 spends block 1's coinbase with a forged
/// signature, under `burial` empty blocks: what assume-valid lets through when the
/// forged block lies deep enough, and full validation refuses. Returns the blocks and the
/// forged block's height.
pub fn chain_with_a_forged_signature(burial: u32) -> (Vec<Block>, u32) {
    let mut chain = regtest_chain();
    let alice = key(1);
    let mut blocks = vec![extend(&mut chain, vec![], pubkey(&alice))];
    for _ in 0..100 {
        blocks.push(extend(&mut chain, vec![], pubkey(&key(99))));
    }
    let value = blocks[0].txs[0].outputs[0].value;
    let out = TxOut { value: value - 1_000, pubkey: pubkey(&key(2)) };
    let mut forged = spend(&[coinbase_input(&blocks[0])], vec![out], &[&alice]);
    forged.inputs[0].signature[10] ^= 1;
    let bad = block_on(&chain, chain.tip(), vec![forged], pubkey(&key(99)));
    let bits = bad.header.bits;
    let forged_height = chain.height() + 1;
    blocks.push(bad);
    for height in forged_height + 1..=forged_height + burial {
        let prev = &blocks[blocks.len() - 1].header;
        let out = TxOut { value: REGTEST.subsidy(height), pubkey: pubkey(&key(99)) };
        let coinbase = Transaction::coinbase(height, vec![out], 0);
        blocks.push(solved_block(prev.block_hash(), prev.time + 1, bits, coinbase, vec![]));
    }
    (blocks, forged_height)
}
