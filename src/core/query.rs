//! Replies to the API's questions about the mempool.

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

/// What the mempool does to the coins of `owner`.
pub fn pending_for(ledger: &Ledger, owner: &[u8; 32]) -> Pending {
    let mempool = ledger.mempool();
    let mut pending = Pending::default();
    let view = ledger.chain().utxos().ok();
    for entry in mempool.iter_by_fee_rate() {
        for input in &entry.tx.inputs {
            if mempool.contains(&input.prevout.txid) {
                continue; // an unconfirmed parent: not a confirmed coin
            }
            let coin = view.as_ref().and_then(|v| v.coin(&input.prevout).ok().flatten());
            if let Some(coin) = coin.filter(|c| c.output.pubkey == *owner) {
                pending.spent.push((input.prevout, coin.output.value));
            }
        }
        for (vout, out) in entry.tx.outputs.iter().enumerate() {
            let op = OutPoint { txid: entry.txid, vout: vout as u32 };
            if out.pubkey == *owner && mempool.spender(&op).is_none() {
                pending.incoming.push((op, *out));
            }
        }
    }
    pending
}
