//! The ledger: chain state and mempool kept in step. Blocks and transactions go in; what
//! changed comes out as events, and what was refused comes back to the caller to judge.

use std::sync::Arc;

use tracing::{debug, info, warn};

use super::{NetAction, NodeEvent, Output};
use crate::chain::{BatchOutcome, BlockStatus, ChainError, ChainState, TipUpdate};
use crate::consensus::TxError;
use crate::mempool::{Mempool, MempoolError, Orphans};
use crate::primitives::{Block, BlockHash, BlockHeader, Time, Transaction, Txid};

/// What became of blocks handed to [`Ledger::accept_blocks`].
#[derive(Debug)]
pub struct BlocksResult {
    /// Per block, in the order given: its hash, its parent (the ancestor to fetch when it
    /// is an orphan), and its own status or why the chain refused it before storing it.
    /// Empty if the store failed (logged here; the blocks are fetched again).
    pub statuses: Vec<(BlockHash, BlockHash, Result<BlockStatus, ChainError>)>,
    /// Blocks refused after they were handed in: found invalid while connecting, or
    /// orphans refused when their parent came (these, blocks they unlocked, or blocks
    /// stored earlier that they let the chain try), with the reason.
    pub invalid: Vec<(BlockHash, ChainError)>,
    /// Blocks that joined the active chain.
    pub connected: Vec<BlockHash>,
}

/// Chain state plus mempool.
pub struct Ledger {
    chain: ChainState,
    mempool: Mempool,
    /// Transactions in the blocks connected since start (sync progress counts them).
    connected_txs: u64,
    /// A fatal local failure stopped all writes: what happened and what to do.
    halted: Option<String>,
    /// Relayed transactions waiting for a parent.
    orphans: Orphans,
}

impl Ledger {
    /// A ledger over `chain` and `mempool`.
    pub fn new(chain: ChainState, mempool: Mempool) -> Self {
        Self { chain, mempool, connected_txs: 0, halted: None, orphans: Orphans::default() }
    }

    /// Why the store can no longer be written, once a fatal local failure happened: the
    /// node then stops fetching, storing and mining blocks, and serves what it has.
    pub fn halted(&self) -> Option<&str> {
        self.halted.as_deref()
    }

    /// A write failed: a fatal failure (a full disk, an I/O error, a damaged store) stops
    /// every later write, with one ERROR that says where, why and what to do; a transient
    /// one is logged and retried. Nobody else is to blame either way.
    fn store_failed(&mut self, error: &ChainError, what: &str) {
        let ChainError::Storage(e) = error else {
            warn!(%error, "{what}");
            return;
        };
        let failure = e.failure();
        if !failure.is_fatal() {
            warn!(%error, "{what}; retrying");
            return;
        }
        if self.halted.is_some() {
            return;
        }
        let (location, height) = (self.chain.location(), self.chain.height());
        let remedy = failure.remedy();
        tracing::error!(
            path = %location,
            %error,
            failure = failure.name(),
            height,
            "cannot write {location}: {e}. The node stopped fetching, storing and mining blocks and keeps serving what it stored (height {height}); {remedy}"
        );
        self.halted = Some(format!("{}: cannot write {location} ({e}); {remedy}", failure.name()));
    }

    /// Transactions in the blocks connected since start.
    pub fn connected_txs(&self) -> u64 {
        self.connected_txs
    }

    /// The chain state.
    pub fn chain(&self) -> &ChainState {
        &self.chain
    }

    /// The mempool.
    pub fn mempool(&self) -> &Mempool {
        &self.mempool
    }

    /// Gives the mempool saved fee statistics back ([`Mempool::restore_fee_estimator`]).
    pub fn restore_fee_estimator(&mut self, fees: crate::mempool::FeeEstimator) -> bool {
        self.mempool.restore_fee_estimator(fees)
    }

    /// The chain state, to record what happened to it outside a transition.
    pub fn chain_mut(&mut self) -> &mut ChainState {
        &mut self.chain
    }

    /// Goes on from `chain` instead (a snapshot's chain turned out wrong: the history
    /// validated from genesis replaces it). The mempool was checked against the old
    /// chain's coins: it is emptied (peers offer their transactions again). Returns how
    /// many transactions it held.
    pub fn replace_chain(&mut self, chain: ChainState) -> usize {
        let dropped = self.mempool.len();
        self.mempool = Mempool::new(self.mempool.config());
        self.orphans = Orphans::default();
        self.chain = chain;
        dropped
    }

    /// Hands a run of blocks to the chain (one transition); on a tip change updates the
    /// mempool and emits events. `syncing` lowers the per-block log line to debug for
    /// blocks with known headers beyond them (the sync's progress line covers those).
    pub fn accept_blocks(
        &mut self,
        blocks: Vec<Block>,
        syncing: bool,
        now: Time,
        out: &mut Vec<Output>,
    ) -> BlocksResult {
        if self.halted.is_some() {
            return BlocksResult {
                statuses: Vec::new(),
                invalid: Vec::new(),
                connected: Vec::new(),
            };
        }
        let ids: Vec<(BlockHash, BlockHash)> =
            blocks.iter().map(|b| (b.block_hash(), b.header.prev_blockhash)).collect();
        match self.chain.accept_blocks(blocks, now.unix_secs()) {
            Ok(BatchOutcome { statuses, update, invalid }) => {
                if !update.is_empty() {
                    self.on_tip_update(&update, syncing, out);
                }
                let connected = update.connected.iter().map(|b| b.block_hash()).collect();
                let statuses =
                    ids.into_iter().zip(statuses).map(|((hash, parent), s)| (hash, parent, s));
                BlocksResult { statuses: statuses.collect(), invalid, connected }
            }
            Err(e) => {
                self.store_failed(&e, "cannot store blocks; they will be asked again");
                BlocksResult { statuses: Vec::new(), invalid: Vec::new(), connected: Vec::new() }
            }
        }
    }

    /// Makes the tip durable if catching up left it unflushed for a while (`None`: at
    /// once, as at shutdown). A store failure is logged: the next write tries again.
    pub fn flush(&mut self, now: Option<Time>) {
        if self.halted.is_some() {
            return;
        }
        match self.chain.flush(now.map(Time::unix_secs)) {
            Ok(true) => debug!(height = self.chain.height(), "tip made durable"),
            Ok(false) => {}
            Err(e) => self.store_failed(&e, "cannot make the tip durable"),
        }
    }

    /// Hands a run of headers to the chain (headers-first sync).
    pub fn accept_headers(
        &mut self,
        headers: &[BlockHeader],
        now: Time,
    ) -> (Vec<BlockHash>, Option<ChainError>) {
        self.chain.accept_headers(headers, now.unix_secs())
    }

    /// A compact block rebuilt as far as the mempool and the orphan pool allow.
    pub fn rebuild(&self, compact: &crate::compact::CompactBlock) -> crate::compact::Partial {
        let orphans = self.orphans.iter().map(|tx| (tx.wtxid(), tx));
        compact.rebuild(self.mempool.wtxids().chain(orphans))
    }

    /// Like [`Self::accept_tx`], for a transaction a peer relayed: one whose inputs are
    /// unknown is held as an orphan (it may have come before its parent) and taken once
    /// its parent comes. The error still says why it was not taken now.
    ///
    /// # Errors
    /// [`MempoolError`] naming why it was refused.
    pub fn accept_relayed(
        &mut self,
        tx: Transaction,
        now: Time,
        out: &mut Vec<Output>,
    ) -> Result<Txid, MempoolError> {
        let spare = tx.clone();
        let result = self.accept_tx(tx, out);
        if let Err(MempoolError::Invalid(TxError::InputMissingOrSpent(_))) = &result {
            debug!(txid = %spare.txid(), "transaction held as an orphan until its parent comes");
            self.orphans.hold(spare, now);
        }
        result
    }

    /// Validates `tx` against the UTXO set and the pool and adds it; emits an event.
    /// Orphans waiting for it are taken too (and gossiped: they were not relayed before).
    ///
    /// # Errors
    /// [`MempoolError`] naming why it was refused.
    pub fn accept_tx(
        &mut self,
        tx: Transaction,
        out: &mut Vec<Output>,
    ) -> Result<Txid, MempoolError> {
        let txid = self.accept_one(tx, out)?;
        let mut parents = vec![txid];
        while let Some(parent) = parents.pop() {
            for child in self.orphans.children_of(&parent) {
                let data = crate::primitives::encode::serialize(&child);
                if let Ok(id) = self.accept_one(child, out) {
                    debug!(txid = %id, %parent, "orphan taken: its parent came");
                    let kind = crate::protocol::GossipKind::Tx;
                    out.push(Output::Net(NetAction::Publish { kind, data }));
                    parents.push(id);
                }
            }
        }
        Ok(txid)
    }

    fn accept_one(&mut self, tx: Transaction, out: &mut Vec<Output>) -> Result<Txid, MempoolError> {
        let view = self.chain.utxos()?;
        let txid = self.mempool.accept(tx, &view, self.chain.height(), self.chain.params())?;
        drop(view);
        if let Some(e) = self.mempool.get(&txid) {
            // Its signatures were just verified: a block carrying it need not again.
            self.chain.note_verified(e.wtxid);
            let (fee, size, pool) = (e.fee, e.size, self.mempool.len());
            info!(%txid, fee, size, mempool = pool, "transaction accepted ({size} B, fee {fee}; {pool} in the mempool)");
        }
        out.push(Output::Event(NodeEvent::Tx { txid: txid.to_string() }));
        Ok(txid)
    }

    fn on_tip_update(&mut self, update: &TipUpdate, syncing: bool, out: &mut Vec<Output>) {
        self.report_tip_update(update, syncing, out);
        let view = match self.chain.utxos() {
            Ok(view) => view,
            Err(e) => {
                warn!(error = %e, "cannot read the UTXO set to update the mempool");
                return;
            }
        };
        let back =
            self.mempool.update_for_tip(update, &view, self.chain.height(), self.chain.params());
        if !back.is_empty() {
            info!(
                count = back.len(),
                "transactions of disconnected blocks returned to the mempool; announcing them again"
            );
        }
        // Peers that never saw them (the other side of a partition) learn of them now.
        for txid in &back {
            if let Some(e) = self.mempool.get(txid) {
                let data = crate::primitives::encode::serialize(&e.tx);
                out.push(Output::Net(NetAction::Publish {
                    kind: crate::protocol::GossipKind::Tx,
                    data,
                }));
            }
        }
    }

    fn report_tip_update(&mut self, update: &TipUpdate, syncing: bool, out: &mut Vec<Output>) {
        let chain = &self.chain;
        if let Some(old) = update.disconnected.first().map(|b| b.block_hash()) {
            let depth = update.disconnected.len();
            out.push(Output::Event(NodeEvent::Reorg {
                depth,
                old_tip: old.to_string(),
                new_tip: chain.tip().to_string(),
                height: chain.height(),
            }));
            info!(
                depth,
                old_tip = %old,
                new_tip = %chain.tip(),
                height = chain.height(),
                "reorg: {depth} blocks disconnected, {} connected",
                update.connected.len()
            );
        }
        for block in &update.connected {
            let block: &Arc<Block> = block;
            let hash = block.block_hash();
            let height = chain.entry(&hash).map_or(0, |e| e.height);
            let txs = block.txs.len();
            self.connected_txs += txs as u64;
            out.push(Output::Event(NodeEvent::Block { hash: hash.to_string(), height, txs }));
            // A block that reaches the best header is news whatever brought it (gossip,
            // or a request while one block behind); the ones before it while catching
            // up are not.
            if syncing && chain.best_header().height > height {
                debug!(height, %hash, txs, "block connected");
            } else {
                info!(height, %hash, txs, time = block.header.time, "block connected");
            }
        }
    }
}
