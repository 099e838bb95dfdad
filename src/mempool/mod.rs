//! The mempool: unconfirmed transactions validated against the UTXO set plus the pool
//! itself (so chains of unconfirmed transactions work), ordered by fee rate.
//!
//! Policy: a transaction must pay at least the minimum relay fee rate; one that spends
//! what pool transactions spend replaces them (and their descendants) when it pays more by
//! BIP125's rules ([`Mempool::accept`]), else it is refused; when the pool is over its
//! byte cap the lowest fee rate transactions are evicted together with their descendants.

mod error;
pub mod fees;
pub mod orphans;
pub mod saved;

use std::cmp::Reverse;
use std::collections::{BTreeSet, HashMap, HashSet};

pub use error::{MempoolError, ReplaceError};
pub use fees::{FeeEstimate, FeeEstimator};
pub use orphans::Orphans;

use crate::chain::TipUpdate;
use crate::consensus::tx::{check_transaction, check_tx_inputs, verify_signatures};
use crate::consensus::{Params, TxError};
use crate::primitives::{Block, Coin, OutPoint, Transaction, Txid, Wtxid};
use crate::storage::UtxoView;

/// Mempool limits.
#[derive(Debug, Clone, Copy)]
pub struct MempoolConfig {
    /// Most bytes of transactions held.
    pub max_bytes: usize,
    /// Minimum fee in base units per 1,000 bytes.
    pub min_fee_per_kb: u64,
}

impl Default for MempoolConfig {
    fn default() -> Self {
        // 32 MB holds ~30 full blocks; 1 base unit per byte keeps free spam out.
        Self { max_bytes: 32_000_000, min_fee_per_kb: 1_000 }
    }
}

/// A transaction in the pool.
#[derive(Debug, Clone)]
pub struct Entry {
    /// The transaction.
    pub tx: Transaction,
    /// Its txid.
    pub txid: Txid,
    /// Its wtxid (signatures included): what compact blocks name it by.
    pub wtxid: Wtxid,
    /// Fee paid.
    pub fee: u64,
    /// Encoded size.
    pub size: usize,
    /// In-pool transactions it spends from.
    pub parents: Vec<Txid>,
    /// The tip's height when it entered (the fee estimator counts the blocks it waited).
    pub height: u32,
    /// Arrival order (parents always arrive before children).
    seq: u64,
}

impl Entry {
    /// Its place in the arrival order (parents always come before their children).
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// Fee per 1,000 bytes.
    pub fn fee_rate(&self) -> u64 {
        fee_rate(self.fee, self.size)
    }
}

fn fee_rate(fee: u64, size: usize) -> u64 {
    fee.saturating_mul(1000) / size.max(1) as u64
}

/// Most transactions one replacement may evict, conflicts and descendants together
/// (BIP125's rule 5).
pub const MAX_REPLACED: usize = 100;

/// Ordering key: fee rate, then older first.
type RateKey = (u64, Reverse<u64>, Txid);

/// The pool.
#[derive(Default)]
pub struct Mempool {
    config: MempoolConfig,
    entries: HashMap<Txid, Entry>,
    spent_by: HashMap<OutPoint, Txid>,
    children: HashMap<Txid, HashSet<Txid>>,
    by_rate: BTreeSet<RateKey>,
    bytes: usize,
    next_seq: u64,
    /// How long transactions at each fee rate took to confirm.
    fees: FeeEstimator,
}

impl Mempool {
    /// An empty pool with `config`.
    pub fn new(config: MempoolConfig) -> Self {
        Self { config, fees: FeeEstimator::new(config.min_fee_per_kb), ..Self::default() }
    }

    /// The fee rates to confirm within [`fees::TARGETS`] blocks, the tip being at
    /// `tip_height` ([`fees`] says how).
    pub fn fee_estimates(&self, tip_height: u32, params: &Params) -> Vec<FeeEstimate> {
        self.fees.estimates(self.iter_by_fee_rate(), tip_height, params)
    }

    /// The fee estimator's statistics (saved at shutdown).
    pub fn fee_estimator(&self) -> &FeeEstimator {
        &self.fees
    }

    /// Takes saved statistics back; refused (false) when they count from another relay
    /// minimum, whose buckets are not ours.
    pub fn restore_fee_estimator(&mut self, fees: FeeEstimator) -> bool {
        if fees.min_rate() != self.fees.min_rate() {
            return false;
        }
        self.fees = fees;
        true
    }

    /// Its limits.
    pub fn config(&self) -> MempoolConfig {
        self.config
    }

    /// Number of transactions.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Bytes of transactions held.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// The entry of `txid`.
    pub fn get(&self, txid: &Txid) -> Option<&Entry> {
        self.entries.get(txid)
    }

    /// Every transaction in the pool with its wtxid, in no order (what a compact block is
    /// rebuilt from).
    pub fn wtxids(&self) -> impl Iterator<Item = (Wtxid, &Transaction)> {
        self.entries.values().map(|e| (e.wtxid, &e.tx))
    }

    /// Whether `txid` is in the pool.
    pub fn contains(&self, txid: &Txid) -> bool {
        self.entries.contains_key(txid)
    }

    /// The pool transaction spending `outpoint`, if any.
    pub fn spender(&self, outpoint: &OutPoint) -> Option<Txid> {
        self.spent_by.get(outpoint).copied()
    }

    /// Entries from the highest fee rate down.
    pub fn iter_by_fee_rate(&self) -> impl Iterator<Item = &Entry> + Clone {
        self.by_rate.iter().rev().map(|(_, _, txid)| &self.entries[txid])
    }

    /// An unconfirmed output created by a pool transaction.
    pub fn output(&self, outpoint: &OutPoint) -> Option<Coin> {
        let entry = self.entries.get(&outpoint.txid)?;
        let output = *entry.tx.outputs.get(outpoint.vout as usize)?;
        Some(Coin { output, height: u32::MAX, is_coinbase: false })
    }

    /// Validates `tx` against `view` (the UTXO set at `tip_height`) and the pool, then adds
    /// it, evicting lower fee rates if over the cap.
    ///
    /// # Errors
    /// [`MempoolError`] naming the reason it was refused.
    pub fn accept(
        &mut self,
        tx: Transaction,
        view: &impl UtxoView,
        tip_height: u32,
        params: &Params,
    ) -> Result<Txid, MempoolError> {
        let txid = tx.txid();
        if self.entries.contains_key(&txid) {
            return Err(MempoolError::AlreadyKnown(txid));
        }
        if tx.is_coinbase() {
            return Err(MempoolError::Coinbase);
        }
        check_transaction(&tx, params)?;
        let mut coins = Vec::with_capacity(tx.inputs.len());
        let mut unconfirmed = Vec::new();
        let mut conflicts: Vec<(OutPoint, Txid)> = Vec::new();
        for input in &tx.inputs {
            let op = input.prevout;
            if let Some(by) = self.spender(&op) {
                conflicts.push((op, by));
            }
            let coin = match self.output(&op) {
                Some(coin) => {
                    unconfirmed.push(op);
                    coin
                }
                None => view.coin(&op)?.ok_or(TxError::InputMissingOrSpent(op))?,
            };
            coins.push(coin);
        }
        let fee = check_tx_inputs(&tx, &coins, tip_height + 1, params)?;
        let size = tx.size();
        let min = self.min_fee(size);
        if fee < min {
            return Err(MempoolError::FeeTooLow { fee, min });
        }
        let mut parents: Vec<Txid> = unconfirmed.iter().map(|op| op.txid).collect();
        parents.sort_unstable();
        parents.dedup();
        let replaced = match conflicts.first() {
            None => Vec::new(),
            Some(&(outpoint, by)) => self
                .replaceable(&conflicts, &unconfirmed, fee, size)
                .map_err(|why| MempoolError::Conflict { outpoint, by, why })?,
        };
        verify_signatures(&tx, &coins)?;
        for txid in &replaced {
            self.remove_with_descendants(txid);
        }
        let wtxid = tx.wtxid();
        self.insert(Entry { tx, txid, wtxid, fee, size, parents, height: tip_height, seq: 0 });
        self.trim();
        if self.entries.contains_key(&txid) { Ok(txid) } else { Err(MempoolError::PoolFull) }
    }

    /// The relay fee of `size` bytes at the minimum rate (also the increment a
    /// replacement pays for its own relay).
    fn min_fee(&self, size: usize) -> u64 {
        self.config.min_fee_per_kb.saturating_mul(size as u64).div_ceil(1000)
    }

    /// Whether a transaction of `fee` and `size`, spending `unconfirmed` outputs of pool
    /// transactions, may replace the pool transactions it conflicts with (`conflicts`: each
    /// contested outpoint and its spender): BIP125's rules 2 to 6. Returns the direct
    /// conflicts to evict.
    fn replaceable(
        &self,
        conflicts: &[(OutPoint, Txid)],
        unconfirmed: &[OutPoint],
        fee: u64,
        size: usize,
    ) -> Result<Vec<Txid>, ReplaceError> {
        let mut direct: Vec<Txid> = conflicts.iter().map(|(_, by)| *by).collect();
        direct.sort_unstable();
        direct.dedup();
        // Everything that goes: the conflicts and all their descendants.
        let mut evicted: HashSet<Txid> = HashSet::new();
        let mut stack = direct.clone();
        while let Some(id) = stack.pop() {
            if evicted.insert(id) {
                if evicted.len() > MAX_REPLACED {
                    return Err(ReplaceError::TooMany { count: evicted.len(), max: MAX_REPLACED });
                }
                stack.extend(self.children.get(&id).into_iter().flatten().copied());
            }
        }
        if let Some(op) = unconfirmed.iter().find(|op| evicted.contains(&op.txid)) {
            return Err(ReplaceError::SpendsReplaced(op.txid));
        }
        // Rule 2: no unconfirmed input the replaced transactions did not have.
        let theirs: HashSet<&Txid> =
            direct.iter().filter_map(|t| self.entries.get(t)).flat_map(|e| &e.parents).collect();
        if let Some(op) = unconfirmed.iter().find(|op| !theirs.contains(&op.txid)) {
            return Err(ReplaceError::NewUnconfirmedInput(*op));
        }
        let rate = fee_rate(fee, size);
        let conflicting = direct
            .iter()
            .filter_map(|t| self.entries.get(t))
            .map(Entry::fee_rate)
            .max()
            .unwrap_or(0);
        if rate <= conflicting {
            return Err(ReplaceError::RateTooLow { rate, conflicting });
        }
        let paid: u64 = evicted.iter().filter_map(|t| self.entries.get(t)).map(|e| e.fee).sum();
        let needed = paid.saturating_add(self.min_fee(size));
        if fee < needed {
            return Err(ReplaceError::FeeTooLow { fee, needed });
        }
        Ok(direct)
    }

    fn insert(&mut self, mut entry: Entry) {
        entry.seq = self.next_seq;
        self.next_seq += 1;
        for input in &entry.tx.inputs {
            self.spent_by.insert(input.prevout, entry.txid);
        }
        for parent in &entry.parents {
            self.children.entry(*parent).or_default().insert(entry.txid);
        }
        self.by_rate.insert((entry.fee_rate(), Reverse(entry.seq), entry.txid));
        self.bytes += entry.size;
        self.entries.insert(entry.txid, entry);
    }

    /// Removes `txid` and every descendant; returns what was removed.
    pub fn remove_with_descendants(&mut self, txid: &Txid) -> Vec<Entry> {
        let mut removed = Vec::new();
        let mut stack = vec![*txid];
        while let Some(id) = stack.pop() {
            if let Some(kids) = self.children.remove(&id) {
                stack.extend(kids);
            }
            if let Some(entry) = self.remove_one(&id) {
                removed.push(entry);
            }
        }
        removed
    }

    fn remove_one(&mut self, txid: &Txid) -> Option<Entry> {
        let entry = self.entries.remove(txid)?;
        for input in &entry.tx.inputs {
            self.spent_by.remove(&input.prevout);
        }
        for parent in &entry.parents {
            if let Some(kids) = self.children.get_mut(parent) {
                kids.remove(txid);
            }
        }
        self.by_rate.remove(&(entry.fee_rate(), Reverse(entry.seq), entry.txid));
        self.bytes -= entry.size;
        Some(entry)
    }

    /// Evicts the lowest fee rates (with descendants) until under the byte cap.
    fn trim(&mut self) {
        while self.bytes > self.config.max_bytes {
            let Some(&(_, _, worst)) = self.by_rate.iter().next() else { break };
            self.remove_with_descendants(&worst);
        }
    }

    /// Drops transactions a newly connected block confirmed, and those it made invalid
    /// by spending the same outputs (with their descendants).
    pub fn remove_for_block(&mut self, block: &Block) {
        for tx in block.txs.iter().skip(1) {
            let txid = tx.txid();
            // A confirmed transaction's children stay: their parent is now in the UTXO set.
            if let Some(entry) = self.remove_one(&txid) {
                self.fees.confirmed(&entry);
                for kid in self.children.remove(&txid).unwrap_or_default() {
                    if let Some(entry) = self.entries.get_mut(&kid) {
                        entry.parents.retain(|p| *p != txid);
                    }
                }
            }
            for input in &tx.inputs {
                if let Some(conflict) = self.spender(&input.prevout) {
                    self.remove_with_descendants(&conflict);
                }
            }
        }
    }

    /// Brings the pool in line with a tip change. Plain extensions only drop confirmed and
    /// conflicting transactions; a reorg puts the disconnected blocks' transactions back
    /// and re-validates the whole pool against the new UTXO set, in arrival order so
    /// parents come before children. Returns the txids that came back from disconnected
    /// blocks and are in the pool again.
    pub fn update_for_tip(
        &mut self,
        update: &TipUpdate,
        view: &impl UtxoView,
        tip_height: u32,
        params: &Params,
    ) -> Vec<Txid> {
        if update.disconnected.is_empty() {
            let first = (tip_height + 1).saturating_sub(update.connected.len() as u32);
            for (height, block) in (first..).zip(&update.connected) {
                self.fees.begin_block(height, fees::is_full(block, params));
                self.remove_for_block(block);
            }
            return Vec::new();
        }
        let mut pool: Vec<Entry> = self.entries.drain().map(|(_, e)| e).collect();
        pool.sort_by_key(|e| e.seq);
        let fees = std::mem::take(&mut self.fees);
        *self = Self { fees, ..Self::new(self.config) };
        let returned: Vec<Transaction> = update
            .disconnected
            .iter()
            .rev()
            .flat_map(|block| block.txs.iter().skip(1).cloned())
            .collect();
        let mut back = Vec::new();
        for tx in returned {
            if let Ok(txid) = self.accept(tx, view, tip_height, params) {
                back.push(txid);
            }
        }
        for entry in pool {
            // Failures are transactions the new chain confirmed or invalidated.
            let (txid, entered) = (entry.txid, entry.height);
            if self.accept(entry.tx, view, tip_height, params).is_ok()
                && let Some(e) = self.entries.get_mut(&txid)
            {
                // It has waited since it first came, not since the reorg.
                e.height = entered;
            }
        }
        back
    }

    /// Up to `max` txids in the order they entered the pool, so parents come before their
    /// children (a child can only enter after its parent).
    pub fn txids_in_order(&self, max: usize) -> impl Iterator<Item = Txid> {
        let mut entries: Vec<(&Txid, &Entry)> = self.entries.iter().collect();
        entries.sort_by_key(|(_, e)| e.seq);
        entries.into_iter().take(max).map(|(t, _)| *t).collect::<Vec<_>>().into_iter()
    }

    /// Transactions for a block template: highest fee rate first, each preceded by any
    /// in-pool ancestors not yet taken, within `max_bytes` and `max_inputs`.
    pub fn select(&self, max_bytes: usize, max_inputs: usize) -> Vec<&Entry> {
        let mut taken: HashSet<Txid> = HashSet::new();
        let mut out = Vec::new();
        let (mut bytes, mut inputs) = (0usize, 0usize);
        for entry in self.iter_by_fee_rate() {
            if taken.contains(&entry.txid) {
                continue;
            }
            let package = self.ancestors_first(entry, &taken);
            let p_bytes: usize = package.iter().map(|e| e.size).sum();
            let p_inputs: usize = package.iter().map(|e| e.tx.inputs.len()).sum();
            if bytes + p_bytes > max_bytes || inputs + p_inputs > max_inputs {
                continue;
            }
            bytes += p_bytes;
            inputs += p_inputs;
            for e in package {
                taken.insert(e.txid);
                out.push(e);
            }
        }
        out
    }

    /// `entry` with its untaken in-pool ancestors, parents before children.
    fn ancestors_first<'a>(&'a self, entry: &'a Entry, taken: &HashSet<Txid>) -> Vec<&'a Entry> {
        let mut seen = HashSet::new();
        let mut stack = vec![entry];
        let mut all = Vec::new();
        while let Some(e) = stack.pop() {
            if taken.contains(&e.txid) || !seen.insert(e.txid) {
                continue;
            }
            all.push(e);
            stack.extend(e.parents.iter().filter_map(|p| self.entries.get(p)));
        }
        // Arrival order is a topological order: a child cannot arrive before its parent.
        all.sort_by_key(|e| e.seq);
        all
    }
}

#[cfg(test)]
mod tests;
