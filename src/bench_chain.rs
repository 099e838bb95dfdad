//! `minichain bench-chain`: writes a valid regtest chain whose blocks carry real signed
//! transactions, for benchmarks (initial sync, start-up, memory) and tests.
//!
//! Layout: 101 blocks pay one key (the first coinbase matures), block 102 fans that coinbase
//! out into `2 * txs_per_block` outputs, then each of the `blocks` payload blocks holds
//! `txs_per_block` transactions that each spend two earlier outputs into two new ones.
//! The pool of coins therefore stays the same size, every input is a real signature
//! check, and every block goes through full validation as it is written.

use std::collections::VecDeque;

use rayon::prelude::*;
use secp256k1::Keypair;

use crate::chain::{ChainError, ChainState};
use crate::consensus::Network;
use crate::consensus::merkle::block_merkle_root;
use crate::consensus::pow::{hash_to_u256, target_from_compact};
use crate::primitives::{Block, BlockHeader, OutPoint, Transaction, TxOut};
use crate::wallet::sign::{pubkey_of, signed_transaction};

/// Most transactions per payload block: 2 inputs each must stay under the block's input
/// limit, and the block under its size limit.
pub const MAX_TXS_PER_BLOCK: usize = 3_000;
/// Fee of each payload transaction.
const FEE: u64 = 1_000;

/// What was written.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Summary {
    /// Payload blocks (each with `txs_per_block` transactions).
    pub blocks: u32,
    /// Non-coinbase transactions in the whole chain.
    pub txs: u64,
    /// Inputs (signature checks) in the whole chain.
    pub inputs: u64,
    /// Height of the tip.
    pub height: u32,
    /// Hash of the tip.
    pub tip: String,
}

/// Why the chain could not be written.
#[derive(Debug, thiserror::Error)]
pub enum BenchChainError {
    /// The target already holds blocks.
    #[error("the data dir already holds a chain at height {0}; bench-chain needs an empty one")]
    NotEmpty(u32),
    /// Not a regtest chain.
    #[error("bench-chain writes regtest chains only")]
    NotRegtest,
    /// Bad size.
    #[error("txs-per-block must be 1..={MAX_TXS_PER_BLOCK}, blocks at least 1")]
    BadSize,
    /// The chain refused a block (a bug here).
    #[error(transparent)]
    Chain(#[from] ChainError),
    /// A block built here did not connect.
    #[error("block at height {0} was not connected: {1}")]
    NotConnected(u32, String),
}

/// Writes the chain into `chain` (an empty regtest chain), `tail` empty blocks after the
/// payload, calling `progress(height)` after each block. `now` is the clock used for the
/// time rules.
///
/// # Errors
/// [`BenchChainError`] for a non-empty or non-regtest chain, or a bad size.
pub fn build(
    chain: &mut ChainState,
    blocks: u32,
    txs_per_block: usize,
    tail: u32,
    now: u64,
    mut progress: impl FnMut(u32),
) -> Result<Summary, BenchChainError> {
    if chain.params().network != Network::Regtest {
        return Err(BenchChainError::NotRegtest);
    }
    if chain.height() != 0 {
        return Err(BenchChainError::NotEmpty(chain.height()));
    }
    if blocks == 0 || txs_per_block == 0 || txs_per_block > MAX_TXS_PER_BLOCK {
        return Err(BenchChainError::BadSize);
    }
    let key = Keypair::new(&mut rand::rng());
    let owner = pubkey_of(&key);
    // Block times start far enough back that a long chain never runs ahead of the clock.
    let mut time = (now as u32).saturating_sub(blocks.saturating_add(tail).saturating_add(200));
    let first = add_block(chain, vec![], owner, &mut time, now)?;
    for _ in 1..101 {
        add_block(chain, vec![], owner, &mut time, now)?;
    }
    progress(chain.height());
    let coinbase = (OutPoint { txid: first.txs[0].txid(), vout: 0 }, first.txs[0].outputs[0]);
    let pieces = 2 * txs_per_block as u64;
    let each = (coinbase.1.value - FEE) / pieces;
    let fan =
        signed(vec![coinbase], vec![TxOut { value: each, pubkey: owner }; pieces as usize], &key);
    let fan_txid = fan.txid();
    add_block(chain, vec![fan], owner, &mut time, now)?;
    let mut pool: VecDeque<(OutPoint, u64)> =
        (0..pieces as u32).map(|vout| (OutPoint { txid: fan_txid, vout }, each)).collect();
    let (mut txs, mut inputs) = (1u64, 1u64);
    for _ in 0..blocks {
        let unsigned: Vec<Unsigned> = (0..txs_per_block)
            .map(|_| {
                let ins: Vec<(OutPoint, TxOut)> = (0..2)
                    .filter_map(|_| pool.pop_front())
                    .map(|(op, v)| (op, TxOut { value: v, pubkey: owner }))
                    .collect();
                let total: u64 = ins.iter().map(|(_, o)| o.value).sum();
                let half = (total - FEE) / 2;
                let outs = vec![
                    TxOut { value: half, pubkey: owner },
                    TxOut { value: total - FEE - half, pubkey: owner },
                ];
                (ins, outs)
            })
            .collect();
        let block_txs: Vec<Transaction> =
            unsigned.into_par_iter().map(|(ins, outs)| signed(ins, outs, &key)).collect();
        for tx in &block_txs {
            let txid = tx.txid();
            pool.extend(
                tx.outputs
                    .iter()
                    .enumerate()
                    .map(|(v, o)| (OutPoint { txid, vout: v as u32 }, o.value)),
            );
            inputs += tx.inputs.len() as u64;
        }
        txs += block_txs.len() as u64;
        add_block(chain, block_txs, owner, &mut time, now)?;
        progress(chain.height());
    }
    for _ in 0..tail {
        add_block(chain, vec![], owner, &mut time, now)?;
    }
    progress(chain.height());
    Ok(Summary { blocks, txs, inputs, height: chain.height(), tip: chain.tip().to_string() })
}

/// A transaction before signing: the outputs it spends and the ones it creates.
type Unsigned = (Vec<(OutPoint, TxOut)>, Vec<TxOut>);

fn signed(inputs: Vec<(OutPoint, TxOut)>, outputs: Vec<TxOut>, key: &Keypair) -> Transaction {
    // Every input spends an output of `key` and the closure always returns it, so
    // signing cannot fail.
    signed_transaction(&inputs, outputs, |_| Some(key)).expect("the one key signs every input")
}

/// Builds, solves and connects the next block; returns it.
fn add_block(
    chain: &mut ChainState,
    txs: Vec<Transaction>,
    owner: [u8; 32],
    time: &mut u32,
    now: u64,
) -> Result<Block, BenchChainError> {
    let height = chain.height() + 1;
    let tip = chain.tip();
    // The tip is always indexed.
    let ctx = chain
        .child_context(&tip, now)
        .ok_or(BenchChainError::NotConnected(height, "no tip".into()))?;
    *time = (*time + 1).max(ctx.median_time_past + 1);
    let fees = txs.len() as u64 * FEE;
    let reward = chain.params().subsidy(height) + fees;
    let mut all =
        vec![Transaction::coinbase(height, vec![TxOut { value: reward, pubkey: owner }], 0)];
    all.extend(txs);
    let mut header = BlockHeader {
        version: 1,
        prev_blockhash: tip,
        merkle_root: block_merkle_root(&all).0,
        time: *time,
        bits: ctx.expected_bits,
        nonce: 0,
    };
    let target = target_from_compact(header.bits).unwrap_or_default();
    while hash_to_u256(&header.block_hash()) > target {
        header.nonce += 1;
    }
    let block = Block { header, txs: all };
    let outcome = chain.accept_block(block.clone(), now)?;
    if let Some((_, e)) = outcome.invalid.first() {
        return Err(BenchChainError::NotConnected(height, e.to_string()));
    }
    if chain.tip() != block.block_hash() {
        return Err(BenchChainError::NotConnected(height, "did not become the tip".into()));
    }
    Ok(block)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verify::verify_store;

    #[test]
    fn writes_a_valid_chain_of_signed_transactions() {
        let (mut chain, store) = crate::testkit::regtest_chain_and_store();
        let summary = build(&mut chain, 3, 10, 4, crate::testkit::CLOCK, |_| {}).unwrap();
        assert_eq!((summary.blocks, summary.txs, summary.inputs, summary.height), (3, 31, 61, 109));
        assert_eq!(summary.tip, chain.tip().to_string());
        let report = verify_store(&store).unwrap();
        assert_eq!(report.height, 109);
        assert!(matches!(
            build(&mut chain, 1, 1, 0, crate::testkit::CLOCK, |_| {}),
            Err(BenchChainError::NotEmpty(109))
        ));
    }
}
