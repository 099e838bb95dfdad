//! Replies to the API's questions about the mempool.

use std::collections::HashMap;

use super::Ledger;
use crate::primitives::{OutPoint, Transaction, TxOut, Txid};
use crate::storage::UtxoView;

/// One mempool entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MempoolEntry {
    /// Txid.
    pub txid: Txid,
    /// Fee in base units.
    pub fee: u64,
    /// Size in bytes.
    pub size: usize,
    /// Fee per 1,000 bytes.
    pub fee_rate: u64,
}

/// One mempool transaction with what it spends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MempoolTx {
    /// The transaction.
    pub tx: Transaction,
    /// Its fee in base units.
    pub fee: u64,
    /// The output each input spends, in input order.
    pub prevouts: Vec<Option<TxOut>>,
}

/// Mempool effects on one owner's coins.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pending {
    /// Unconfirmed outputs paying the owner that no other mempool transaction spends.
    pub incoming: Vec<(OutPoint, TxOut)>,
    /// The owner's confirmed coins that mempool transactions spend, with their values.
    pub spent: Vec<(OutPoint, u64)>,
    /// Every mempool transaction that pays the owner or spends its coins (confirmed or
    /// not), in the order they entered the pool.
    pub txs: Vec<PendingTx>,
}

/// A mempool transaction as one owner sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingTx {
    /// Txid.
    pub txid: Txid,
    /// What its outputs pay the owner.
    pub received: u64,
    /// What the owner's coins it spends held.
    pub sent: u64,
    /// Its fee.
    pub fee: u64,
    /// Encoded size, bytes.
    pub size: usize,
}

/// Every mempool entry, highest fee rate first.
pub fn mempool_entries(mempool: &crate::mempool::Mempool) -> Vec<MempoolEntry> {
    mempool
        .iter_by_fee_rate()
        .map(|e| MempoolEntry { txid: e.txid, fee: e.fee, size: e.size, fee_rate: e.fee_rate() })
        .collect()
}

/// A mempool transaction, its fee, and the output each of its inputs spends (from the
/// UTXO set or an unconfirmed parent; `None` only if neither has it any more).
pub fn mempool_tx(ledger: &Ledger, txid: &Txid) -> Option<MempoolTx> {
    let mempool = ledger.mempool();
    let entry = mempool.get(txid)?;
    let view = ledger.chain().utxos().ok();
    let prevouts = entry
        .tx
        .inputs
        .iter()
        .map(|input| {
            mempool
                .output(&input.prevout)
                .or_else(|| view.as_ref().and_then(|v| v.coin(&input.prevout).ok().flatten()))
        })
        .map(|coin| coin.map(|c| c.output))
        .collect();
    Some(MempoolTx { tx: entry.tx.clone(), fee: entry.fee, prevouts })
}

/// What the mempool does to the coins of each of `owners` (in their order): one walk
/// of the mempool, whatever their number.
pub fn pending_for(ledger: &Ledger, owners: &[[u8; 32]]) -> Vec<Pending> {
    let mempool = ledger.mempool();
    let at: HashMap<[u8; 32], usize> = owners.iter().enumerate().map(|(i, o)| (*o, i)).collect();
    let mut pending = vec![Pending::default(); owners.len()];
    let mut txs: Vec<Vec<(u64, PendingTx)>> = vec![Vec::new(); owners.len()];
    let view = ledger.chain().utxos().ok();
    // What one transaction sends and receives, by owner index.
    let mut moved: HashMap<usize, (u64, u64)> = HashMap::new();
    for entry in mempool.iter_by_fee_rate() {
        moved.clear();
        for input in &entry.tx.inputs {
            if let Some(parent) = mempool.output(&input.prevout) {
                // An unconfirmed parent: not a confirmed coin, but the owner's money.
                if let Some(&i) = at.get(&parent.output.pubkey) {
                    let sent = &mut moved.entry(i).or_default().0;
                    *sent = sent.saturating_add(parent.output.value);
                }
                continue;
            }
            let coin = view.as_ref().and_then(|v| v.coin(&input.prevout).ok().flatten());
            let Some(coin) = coin else { continue };
            if let Some(&i) = at.get(&coin.output.pubkey) {
                pending[i].spent.push((input.prevout, coin.output.value));
                let sent = &mut moved.entry(i).or_default().0;
                *sent = sent.saturating_add(coin.output.value);
            }
        }
        for (vout, out) in entry.tx.outputs.iter().enumerate() {
            let Some(&i) = at.get(&out.pubkey) else { continue };
            let received = &mut moved.entry(i).or_default().1;
            *received = received.saturating_add(out.value);
            let op = OutPoint { txid: entry.txid, vout: vout as u32 };
            if mempool.spender(&op).is_none() {
                pending[i].incoming.push((op, *out));
            }
        }
        for (&i, &(sent, received)) in &moved {
            let tx =
                PendingTx { txid: entry.txid, received, sent, fee: entry.fee, size: entry.size };
            txs[i].push((entry.seq(), tx));
        }
    }
    for (p, mut txs) in pending.iter_mut().zip(txs) {
        txs.sort_by_key(|(seq, _)| *seq);
        p.txs = txs.into_iter().map(|(_, tx)| tx).collect();
    }
    pending
}
