//! `ChainState`: the block index in memory, the active chain, and the rules that move it.
//!
//! Fork choice is "most cumulative work, first seen wins ties". A block is fully validated
//! (UTXO spends, signatures) only when it is about to join the active chain; blocks on a
//! lighter branch are stored after the checks that need no UTXO set, so a heavier branch
//! can be switched to later without asking for them again.
//!
//! Accepting a block, a run of blocks (a sync answer) or a batch of headers is one
//! transition: the chain decides in memory and collects everything that changes into one
//! [`ChainWrite`], which the store applies in one write transaction. Blocks connected in
//! the same transition see each other's UTXO changes through a [`PendingUtxos`] overlay;
//! the block just received is used from memory, never read back.
//!
//! Initial sync runs close to signature speed by keeping both cores busy:
//! - the blocks of a run are checked on their own (structure, Merkle root, proof of work)
//!   in parallel;
//! - connecting is a pipeline: block N's signatures are verified while block N+1 is checked
//!   against the UTXO set plus N's changes; N joins the chain only if they pass;
//! - while catching up, transitions are held in memory (reads see them through the same
//!   overlays) and written as one durable write every [`FLUSH_EVERY_SECS`], on a writer
//!   thread while the next run is verified. A crash loses at most what was held: the
//!   store always holds a complete earlier state, and the node fetches the rest again.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, OnceLock};

use rayon::prelude::*;
use ruint::aliases::U256;

use super::error::ChainError;
use super::orphans::OrphanPool;
use super::utxo::{ConnectError, Prepared, SigMode, disconnect_diff, prepare_block};
use super::verified::VerifiedTxs;
use crate::consensus::asert::next_bits;
use crate::consensus::block::check_block;
use crate::consensus::genesis::genesis_block;
use crate::consensus::header::{HeaderContext, check_header, check_header_in_context, median_time};
use crate::consensus::params::MEDIAN_TIME_SPAN;
use crate::consensus::pow::work_from_bits;
use crate::consensus::{BlockError, Params};
use crate::primitives::encode::serialize;
use crate::primitives::{Block, BlockHash, BlockHeader, Coin, OutPoint, Transaction, Txid, Wtxid};
use crate::storage::{
    BlockUndo, ChainStore, ChainWrite, FAILED, HAVE_DATA, IndexEntry, PendingUtxos, Step,
    StorageError, UtxoView,
};

/// What happened to a block handed to [`ChainState::accept_block`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockStatus {
    /// Already stored.
    Duplicate,
    /// Parent unknown: held in the orphan pool; `missing` is the ancestor to fetch.
    Orphan {
        /// The first ancestor we do not have.
        missing: BlockHash,
    },
    /// Stored; see the outcome's tip update for whether it joined the active chain.
    Stored,
}

/// How the active chain moved, in order: first `disconnected` (tip first), then
/// `connected` (lowest first). A failed reorg that fell back may list both directions.
#[derive(Debug, Default)]
pub struct TipUpdate {
    /// Blocks taken off the active chain.
    pub disconnected: Vec<Arc<Block>>,
    /// Blocks added to the active chain.
    pub connected: Vec<Arc<Block>>,
}

impl TipUpdate {
    /// True if the tip did not move.
    pub fn is_empty(&self) -> bool {
        self.disconnected.is_empty() && self.connected.is_empty()
    }
}

/// The full result of accepting a block.
#[derive(Debug)]
pub struct AcceptOutcome {
    /// What happened to the block itself.
    pub status: BlockStatus,
    /// How the active chain moved (possibly through orphans the block unlocked).
    pub update: TipUpdate,
    /// Blocks found invalid while connecting, with the reason.
    pub invalid: Vec<(BlockHash, ChainError)>,
}

impl AcceptOutcome {
    pub(super) fn new(status: BlockStatus) -> Self {
        Self { status, update: TipUpdate::default(), invalid: Vec::new() }
    }

    /// The error of `hash` if it was found invalid while connecting.
    pub fn error_for(&self, hash: &BlockHash) -> Option<&ChainError> {
        self.invalid.iter().find(|(h, _)| h == hash).map(|(_, e)| e)
    }
}

/// What happened to a run of blocks handed to [`ChainState::accept_blocks`].
#[derive(Debug)]
pub struct BatchOutcome {
    /// Per block, in the order given: what happened to it, or why it was refused before
    /// it was stored.
    pub statuses: Vec<Result<BlockStatus, ChainError>>,
    /// How the active chain moved.
    pub update: TipUpdate,
    /// Blocks found invalid while connecting, with the reason.
    pub invalid: Vec<(BlockHash, ChainError)>,
}

/// A block on its way to the active chain: checked against the UTXO set, its signatures
/// still being verified. `layer` holds its UTXO changes, so the next block can be
/// prepared on top of it meanwhile.
pub(super) struct Held {
    pub(super) hash: BlockHash,
    pub(super) height: u32,
    pub(super) block: Arc<Block>,
    pub(super) prepared: Prepared,
    pub(super) layer: PendingUtxos,
}

/// An index entry with the in-memory facts derived from it.
#[derive(Debug, Clone, Copy)]
pub(super) struct Node {
    pub(super) entry: IndexEntry,
    /// Arrival order, for "first seen wins ties".
    pub(super) seq: u64,
    /// The block and all its ancestors have data: it could become the tip.
    pub(super) in_data_chain: bool,
    /// Time of block 1 of this block's chain, where its difficulty schedule is anchored
    /// (inherited from the parent, so no walk back to height 1 per header).
    pub(super) anchor_time: u32,
}

/// Ordering key of blocks that could become the tip: most work, then earliest seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct Candidate(pub(super) U256, pub(super) Reverse<u64>, pub(super) BlockHash);

/// One transition being built, or several held in memory while catching up: what will
/// be written, and what it already changed in memory that later steps must see.
#[derive(Default)]
pub(super) struct Transition {
    pub(super) write: ChainWrite,
    /// Blocks of this transition by hash (not in the store yet).
    pub(super) blocks: HashMap<BlockHash, Arc<Block>>,
    /// UTXO changes of the steps so far.
    pub(super) utxos: PendingUtxos,
    /// Encoded size of `blocks`.
    pub(super) bytes: usize,
}

impl Transition {
    pub(super) fn add_block(&mut self, block: Arc<Block>) {
        self.bytes += block.size();
        self.blocks.insert(block.block_hash(), block.clone());
        self.write.blocks.push(block);
    }

    /// Undo data of `hash` if this transition connected it.
    pub(super) fn undo_of(&self, hash: &BlockHash) -> Option<&BlockUndo> {
        self.write.steps.iter().rev().find_map(|step| match step {
            Step::Connect { hash: h, undo, .. } if h == hash => Some(undo),
            _ => None,
        })
    }
}

/// The chain state: the block index and the active chain in memory, over a store it
/// reads from and hands one [`ChainWrite`] per transition.
pub struct ChainState {
    pub(super) params: &'static Params,
    pub(super) store: Arc<dyn ChainStore>,
    pub(super) index: HashMap<BlockHash, Node>,
    pub(super) children: HashMap<BlockHash, Vec<BlockHash>>,
    pub(super) active: Vec<BlockHash>,
    pub(super) candidates: BTreeSet<Candidate>,
    pub(super) best_header: BlockHash,
    pub(super) orphans: OrphanPool,
    pub(super) next_seq: u64,
    pub(super) sig_mode: SigMode,
    /// Transactions whose signatures the mempool verified: a block carrying them skips
    /// those checks.
    pub(super) verified: VerifiedTxs,
    /// Transitions made while catching up and not written yet: the store sees them all
    /// at once, in one durable write, every [`FLUSH_EVERY_SECS`].
    pub(super) unwritten: Transition,
    /// Held transitions being written on another thread during [`Self::accept_blocks`]
    /// (read through, like `unwritten`, until the write is done).
    pub(super) writing: Option<Arc<Transition>>,
    /// When the last durable write was made (Unix seconds).
    pub(super) last_flush: u64,
}

/// While catching up, what the chain connects is kept in memory and written (durably, in
/// one transaction, while the next blocks are verified) about this often, in seconds; a
/// crash resumes from the last write and fetches the rest again.
pub const FLUSH_EVERY_SECS: u64 = 2;

/// ... or as soon as the blocks held add up to this many bytes, which bounds the memory
/// they take (about three times their encoded size with undo data and UTXO changes).
pub const FLUSH_AT_BYTES: usize = 4 << 20;

impl ChainState {
    /// Loads the chain from `store`, writing the genesis block into a fresh one. Moves to
    /// a heavier branch whose blocks are all stored, if one is waiting.
    ///
    /// # Errors
    /// [`ChainError::Storage`] if the store fails or contradicts itself.
    pub fn open(store: impl ChainStore + 'static) -> Result<Self, ChainError> {
        let store: Arc<dyn ChainStore> = Arc::new(store);
        let params = store.network().params();
        let genesis = genesis_block(params.network);
        let genesis_hash = genesis.block_hash();
        if store.tip()?.is_none() {
            let entry = IndexEntry {
                header: genesis.header,
                height: 0,
                chain_work: work_from_bits(genesis.header.bits),
                status: HAVE_DATA,
            };
            store.apply(&ChainWrite {
                blocks: vec![Arc::new(genesis)],
                index: vec![entry],
                steps: vec![Step::Connect {
                    hash: genesis_hash,
                    height: 0,
                    diff: Default::default(),
                    undo: Default::default(),
                    txids: Vec::new(),
                }],
                tip: Some(genesis_hash),
                durable: true,
            })?;
        }
        if store.hash_at(0)? != Some(genesis_hash) {
            return Err(inconsistent("stored genesis differs from this network's genesis"));
        }
        let mut chain = Self::load(store, params)?;
        let mut outcome = AcceptOutcome::new(BlockStatus::Stored);
        let mut tx = Transition::default();
        chain.activate_best_chain(&mut outcome, &mut tx)?;
        chain.commit(tx, None)?;
        Ok(chain)
    }

    /// Builds the in-memory index and active chain from what `store` holds.
    pub(super) fn load(
        store: Arc<dyn ChainStore>,
        params: &'static Params,
    ) -> Result<Self, ChainError> {
        let genesis_hash = genesis_block(params.network).block_hash();
        let mut entries = store.load_index()?;
        entries.sort_by_key(|e| e.height);
        let mut chain = Self {
            params,
            store,
            index: HashMap::with_capacity(entries.len()),
            children: HashMap::new(),
            active: Vec::new(),
            candidates: BTreeSet::new(),
            best_header: genesis_hash,
            orphans: OrphanPool::default(),
            next_seq: 0,
            sig_mode: SigMode::Parallel,
            verified: VerifiedTxs::default(),
            unwritten: Transition::default(),
            writing: None,
            last_flush: 0,
        };
        for entry in entries {
            let hash = entry.hash();
            let parent_in_chain =
                chain.index.get(&entry.header.prev_blockhash).map(|p| p.in_data_chain);
            let in_data_chain =
                entry.has_data() && (entry.height == 0 || parent_in_chain == Some(true));
            chain.insert_node(hash, entry, in_data_chain);
        }
        let tip = chain.store.tip()?.ok_or_else(|| inconsistent("no tip"))?;
        chain.active = chain.path_from_genesis(tip)?;
        let tip_work = chain.tip_entry().chain_work;
        chain.candidates.retain(|c| c.0 >= tip_work);
        Ok(chain)
    }

    /// Ends a transition (which carries on the unwritten ones before it, if any). While
    /// catching up (headers known beyond the tip) a transition that moved the tip is held
    /// in memory, for [`Self::accept_blocks`] or [`Self::flush`] to write later; otherwise
    /// (or with `now` `None`) it goes to the store at once, in one write, durable if it
    /// moves the tip. If the store fails, the in-memory state is rebuilt from it.
    pub(super) fn commit(
        &mut self,
        mut tx: Transition,
        now: Option<u64>,
    ) -> Result<(), ChainError> {
        if tx.write.is_empty() {
            return Ok(());
        }
        let catching_up = self.best_header().height > self.height();
        if tx.write.tip.is_some() && catching_up && now.is_some() {
            self.unwritten = tx;
            return Ok(());
        }
        tx.write.durable = tx.write.tip.is_some();
        if let Err(e) = self.store.apply(&tx.write) {
            return Err(self.recover(e.into()));
        }
        if tx.write.durable {
            self.last_flush = now.unwrap_or(self.last_flush);
        }
        Ok(())
    }

    /// After a store failure in the middle of a transition, rebuilds the in-memory state
    /// (already moved) from the store, so memory never runs ahead of what the store holds.
    /// Returns `error`.
    pub(super) fn recover(&mut self, error: ChainError) -> ChainError {
        let (store, params, mode) = (self.store.clone(), self.params, self.sig_mode);
        match Self::load(store, params) {
            Ok(reloaded) => {
                *self = reloaded;
                self.sig_mode = mode;
            }
            Err(reload) => tracing::error!(error = %reload, "cannot reload the chain"),
        }
        error
    }

    pub(super) fn flush_due(&self, now: u64) -> bool {
        now.saturating_sub(self.last_flush) >= FLUSH_EVERY_SECS
    }

    /// Writes what catching up holds in memory, if the last durable write is twice
    /// [`FLUSH_EVERY_SECS`] old at `now` (while blocks keep arriving, [`Self::accept_blocks`]
    /// writes it sooner, in the background; this catches a sync that stalled), or at once
    /// with `now` `None` (shutdown). Returns whether it wrote.
    ///
    /// # Errors
    /// [`ChainError::Storage`] if the store fails.
    pub fn flush(&mut self, now: Option<u64>) -> Result<bool, ChainError> {
        let stalled = |now: u64| now.saturating_sub(self.last_flush) >= 2 * FLUSH_EVERY_SECS;
        if self.unwritten.write.is_empty() || now.is_some_and(|now| !stalled(now)) {
            return Ok(false);
        }
        let held = std::mem::take(&mut self.unwritten);
        self.commit(held, None)?;
        self.last_flush = now.unwrap_or(self.last_flush);
        Ok(true)
    }

    pub(super) fn insert_node(&mut self, hash: BlockHash, entry: IndexEntry, in_data_chain: bool) {
        let seq = self.next_seq;
        self.next_seq += 1;
        if entry.height > 0 {
            self.children.entry(entry.header.prev_blockhash).or_default().push(hash);
        }
        if in_data_chain && !entry.is_failed() {
            self.candidates.insert(Candidate(entry.chain_work, Reverse(seq), hash));
        }
        let best = self.index.get(&self.best_header).map_or(U256::ZERO, |n| n.entry.chain_work);
        if !entry.is_failed() && entry.chain_work > best {
            self.best_header = hash;
        }
        let anchor_time = match entry.height {
            0 => 0,
            1 => entry.header.time,
            _ => self.index.get(&entry.header.prev_blockhash).map_or(0, |p| p.anchor_time),
        };
        self.index.insert(hash, Node { entry, seq, in_data_chain, anchor_time });
    }

    pub(super) fn path_from_genesis(&self, tip: BlockHash) -> Result<Vec<BlockHash>, ChainError> {
        let mut path = Vec::new();
        let mut cur = tip;
        loop {
            let node = self.index.get(&cur).ok_or_else(|| inconsistent("tip not in index"))?;
            path.push(cur);
            if node.entry.height == 0 {
                break;
            }
            cur = node.entry.header.prev_blockhash;
        }
        path.reverse();
        Ok(path)
    }

    /// Chooses sequential or parallel signature checks.
    pub fn set_sig_mode(&mut self, mode: SigMode) {
        self.sig_mode = mode;
    }

    /// Remembers that every signature of the transaction `wtxid` was verified against the
    /// coins it spends (the mempool accepted it): a block carrying it skips those checks.
    pub fn note_verified(&mut self, wtxid: Wtxid) {
        self.verified.insert(wtxid);
    }

    /// The consensus parameters.
    pub fn params(&self) -> &'static Params {
        self.params
    }

    /// Calls `f` for every coin in the stored UTXO set, in outpoint order.
    ///
    /// # Errors
    /// [`StorageError`] on read failure.
    pub fn for_each_coin(&self, mut f: impl FnMut(OutPoint, Coin)) -> Result<(), StorageError> {
        let pending = &self.unwritten.utxos;
        if pending.is_empty() {
            return self.store.for_each_coin(&mut f);
        }
        // Catching up holds changes in memory: merge them in, keeping outpoint order.
        let mut coins = BTreeMap::new();
        self.store.for_each_coin(&mut |op, coin| {
            if !pending.shadows(&op) {
                coins.insert(op.to_bytes(), (op, coin));
            }
        })?;
        coins.extend(pending.created().map(|(op, coin)| (op.to_bytes(), (*op, *coin))));
        coins.into_values().for_each(|(op, coin)| f(op, coin));
        Ok(())
    }

    /// A read view of the UTXO set at the active tip (the store plus what catching up
    /// holds in memory).
    ///
    /// # Errors
    /// [`StorageError`] if no read can be started.
    pub fn utxos(&self) -> Result<Box<dyn UtxoView + '_>, StorageError> {
        Ok(Box::new(self.unwritten.utxos.over(self.store.utxos()?)))
    }

    /// Hash of the active tip.
    pub fn tip(&self) -> BlockHash {
        // `active` always holds at least genesis (established in `open`).
        self.active[self.active.len() - 1]
    }

    /// Height of the active tip.
    pub fn height(&self) -> u32 {
        (self.active.len() - 1) as u32
    }

    /// Index entry of the active tip.
    pub fn tip_entry(&self) -> &IndexEntry {
        &self.index[&self.tip()].entry
    }

    /// The index entry of `hash`.
    pub fn entry(&self, hash: &BlockHash) -> Option<&IndexEntry> {
        self.index.get(hash).map(|n| &n.entry)
    }

    /// The active-chain block hash at `height`.
    pub fn hash_at(&self, height: u32) -> Option<BlockHash> {
        self.active.get(height as usize).copied()
    }

    /// Whether `hash` is on the active chain.
    pub fn is_active(&self, hash: &BlockHash) -> bool {
        self.index.get(hash).is_some_and(|n| self.hash_at(n.entry.height) == Some(*hash))
    }

    /// The header with the most work known (possibly without data yet).
    pub fn best_header(&self) -> &IndexEntry {
        &self.index[&self.best_header].entry
    }

    /// Orphan blocks held.
    pub fn orphan_count(&self) -> usize {
        self.orphans.len()
    }

    /// A stored block.
    ///
    /// # Errors
    /// [`ChainError::Storage`] on read failure.
    pub fn block(&self, hash: &BlockHash) -> Result<Option<Block>, ChainError> {
        match self.unwritten.blocks.get(hash) {
            Some(block) => Ok(Some(Block::clone(block))),
            None => Ok(self.store.block(hash)?),
        }
    }

    /// A stored block in its wire encoding (what peers are sent), read as stored.
    ///
    /// # Errors
    /// [`ChainError::Storage`] on read failure.
    pub fn block_bytes(&self, hash: &BlockHash) -> Result<Option<Vec<u8>>, ChainError> {
        match self.unwritten.blocks.get(hash) {
            Some(block) => Ok(Some(serialize(block.as_ref()))),
            None => Ok(self.store.block_bytes(hash)?),
        }
    }

    /// A block locator from `from` back to genesis: the last 10 blocks one by one, then
    /// exponentially sparser, always ending at genesis.
    pub fn locator(&self, from: &BlockHash) -> Vec<BlockHash> {
        let mut out = Vec::new();
        let mut step = 1u32;
        let mut cur = self.index.get(from).map(|n| n.entry);
        while let Some(entry) = cur {
            out.push(entry.hash());
            if entry.height == 0 {
                return out;
            }
            if out.len() >= 10 {
                step = step.saturating_mul(2);
            }
            let target = entry.height.saturating_sub(step);
            cur = self.ancestor(&entry, target);
        }
        out
    }

    /// The ancestor of `entry` at `height` (walks the active chain when it can).
    fn ancestor(&self, entry: &IndexEntry, height: u32) -> Option<IndexEntry> {
        if self.is_active(&entry.hash()) {
            return self.hash_at(height).map(|h| self.index[&h].entry);
        }
        let mut cur = *entry;
        while cur.height > height {
            cur = self.index.get(&cur.header.prev_blockhash)?.entry;
        }
        Some(cur)
    }

    /// The height of `hash` if it is on the best header chain (an ancestor of, or equal
    /// to, the best header); `None` if unknown or on another branch. Walks back from the
    /// best header, so it costs the distance between the two.
    pub fn on_best_header_chain(&self, hash: &BlockHash) -> Option<u32> {
        let entry = self.index.get(hash)?.entry;
        let best = self.index.get(&self.best_header)?.entry;
        let mut cur = best;
        while cur.height > entry.height {
            cur = self.index.get(&cur.header.prev_blockhash)?.entry;
        }
        (cur.header == entry.header).then_some(entry.height)
    }

    /// Up to `max` active-chain headers after the first locator hash on our active chain
    /// (after genesis if none is).
    pub fn headers_after(&self, locator: &[BlockHash], max: usize) -> Vec<BlockHeader> {
        let start =
            locator.iter().find(|h| self.is_active(h)).map_or(0, |h| self.index[h].entry.height)
                + 1;
        (start..=self.height())
            .take(max)
            .filter_map(|height| self.hash_at(height).map(|h| self.index[&h].entry.header))
            .collect()
    }

    /// Blocks on the best header chain that we lack, lowest first, at most `limit`.
    pub fn missing_blocks(&self, limit: usize) -> Vec<(BlockHash, u32)> {
        let mut path = Vec::new();
        let mut cur = self.index.get(&self.best_header).map(|n| n.entry);
        while let Some(entry) = cur {
            let hash = entry.hash();
            if entry.height == 0 || self.is_active(&hash) {
                break;
            }
            if !entry.has_data() {
                path.push((hash, entry.height));
            }
            cur = self.index.get(&entry.header.prev_blockhash).map(|n| n.entry);
        }
        path.reverse();
        path.truncate(limit);
        path
    }

    /// Median time of `hash` and its 10 ancestors.
    pub fn median_time_past(&self, hash: &BlockHash) -> u32 {
        let mut times = Vec::with_capacity(MEDIAN_TIME_SPAN);
        let mut cur = self.index.get(hash);
        while let Some(node) = cur {
            times.push(node.entry.header.time);
            if times.len() == MEDIAN_TIME_SPAN || node.entry.height == 0 {
                break;
            }
            cur = self.index.get(&node.entry.header.prev_blockhash);
        }
        median_time(&mut times)
    }

    /// What a child of `parent` is checked against. `None` if `parent` is unknown.
    pub fn child_context(&self, parent: &BlockHash, now: u64) -> Option<HeaderContext> {
        let node = self.index.get(parent)?;
        let p = &node.entry;
        // The difficulty schedule starts at block 1 of the parent's chain.
        let anchor_time = node.anchor_time;
        Some(HeaderContext {
            expected_bits: next_bits(self.params, p.height, p.header.time, anchor_time),
            median_time_past: self.median_time_past(parent),
            now,
        })
    }

    /// Validates a header in context and adds it to the index (headers-first sync).
    /// Returns its hash; known headers are accepted again without work.
    ///
    /// # Errors
    /// [`ChainError::InvalidHeader`], [`ChainError::KnownInvalid`],
    /// [`ChainError::UnknownParent`] or a store failure.
    pub fn accept_header(
        &mut self,
        header: &BlockHeader,
        now: u64,
    ) -> Result<BlockHash, ChainError> {
        let (mut hashes, error) = self.accept_headers(std::slice::from_ref(header), now);
        match (hashes.pop(), error) {
            (_, Some(e)) => Err(e),
            (Some(hash), None) => Ok(hash),
            (None, None) => Err(inconsistent("header neither accepted nor refused")),
        }
    }

    /// [`Self::accept_header`] for a run of headers in chain order, written in one
    /// transaction. Stops at the first refused header: returns the hashes accepted before
    /// it and why it was refused.
    pub fn accept_headers(
        &mut self,
        headers: &[BlockHeader],
        now: u64,
    ) -> (Vec<BlockHash>, Option<ChainError>) {
        let mut hashes = Vec::with_capacity(headers.len());
        let mut new = Vec::new();
        let mut error = None;
        for header in headers {
            let known = self.index.contains_key(&header.block_hash());
            match self.add_header(header, now) {
                Ok(hash) => {
                    if !known {
                        new.push(self.index[&hash].entry);
                    }
                    hashes.push(hash);
                }
                Err(e) => {
                    error = Some(e);
                    break;
                }
            }
        }
        let write = ChainWrite { index: new, ..ChainWrite::default() };
        if let Err(e) = self.store.apply(&write) {
            return (Vec::new(), Some(e.into()));
        }
        (hashes, error)
    }

    pub(super) fn add_header(
        &mut self,
        header: &BlockHeader,
        now: u64,
    ) -> Result<BlockHash, ChainError> {
        let hash = header.block_hash();
        if let Some(node) = self.index.get(&hash) {
            return if node.entry.is_failed() {
                Err(ChainError::KnownInvalid(hash))
            } else {
                Ok(hash)
            };
        }
        check_header(header, self.params)
            .map_err(|error| ChainError::InvalidHeader { hash, error })?;
        let parent_hash = header.prev_blockhash;
        let parent = match self.index.get(&parent_hash) {
            Some(p) => p.entry,
            None => return Err(ChainError::UnknownParent { hash, parent: parent_hash }),
        };
        if parent.is_failed() {
            return Err(ChainError::KnownInvalid(hash));
        }
        let ctx =
            self.child_context(&parent_hash, now).ok_or_else(|| inconsistent("parent vanished"))?;
        check_header_in_context(header, &ctx, self.params)
            .map_err(|error| ChainError::InvalidHeader { hash, error })?;
        let entry = IndexEntry {
            header: *header,
            height: parent.height + 1,
            chain_work: parent.chain_work + work_from_bits(header.bits),
            status: 0,
        };
        self.insert_node(hash, entry, false);
        Ok(hash)
    }

    /// Validates and stores a block, then moves the active chain to the most-work branch,
    /// all in one store write.
    ///
    /// Returns `Err` only when the block itself is refused before it is stored (bad PoW,
    /// structure, header context) or the store fails. Blocks found invalid while being
    /// connected are listed in the outcome's `invalid`.
    ///
    /// # Errors
    /// [`ChainError`] as above.
    pub fn accept_block(&mut self, block: Block, now: u64) -> Result<AcceptOutcome, ChainError> {
        let BatchOutcome { mut statuses, update, invalid } =
            self.accept_blocks(vec![block], now)?;
        let status = statuses.pop().ok_or_else(|| inconsistent("a block without a status"))??;
        Ok(AcceptOutcome { status, update, invalid })
    }

    /// [`Self::accept_block`] for a run of blocks (a sync answer), in one transition: each
    /// block is checked on its own (on every core), stored, and then the active chain
    /// moves once, preparing each block against the UTXO set while the previous one's
    /// signatures are verified. While catching up, what earlier calls held in memory is
    /// written meanwhile, on another thread, once it is due.
    ///
    /// # Errors
    /// [`ChainError::Storage`] if the store fails; what each block's refusal was is in the
    /// outcome's `statuses`.
    pub fn accept_blocks(
        &mut self,
        blocks: Vec<Block>,
        now: u64,
    ) -> Result<BatchOutcome, ChainError> {
        let params = self.params;
        let check = |block: &Block| check_block(block, params);
        let checked: Vec<Result<(), BlockError>> = match blocks.as_slice() {
            [block] => vec![check(block)],
            _ => blocks.par_iter().map(check).collect(),
        };
        let due = self.flush_due(now) || self.unwritten.bytes >= FLUSH_AT_BYTES;
        let writing = (due && !self.unwritten.write.is_empty()).then(|| {
            let mut held = std::mem::take(&mut self.unwritten);
            held.write.durable = true;
            Arc::new(held)
        });
        self.writing = writing.clone();
        let store = self.store.clone();
        let mut written = None;
        let moved = match (&writing, writer()) {
            (Some(held), Some(pool)) => pool.in_place_scope(|scope| {
                scope.spawn(|_| written = Some(store.apply(&held.write)));
                self.transition(blocks, checked, now)
            }),
            (Some(held), None) => {
                written = Some(store.apply(&held.write));
                self.transition(blocks, checked, now)
            }
            (None, _) => self.transition(blocks, checked, now),
        };
        self.writing = None;
        match written {
            Some(Err(e)) => return Err(self.recover(e.into())),
            Some(Ok(())) => self.last_flush = now,
            None => {}
        }
        let (tx, outcome) = moved.map_err(|e| self.recover(e))?;
        self.commit(tx, Some(now))?;
        Ok(outcome)
    }

    /// Stores `blocks` (checked as `checked` says) and moves the active chain, in memory:
    /// the transition to commit and what it did.
    fn transition(
        &mut self,
        blocks: Vec<Block>,
        checked: Vec<Result<(), BlockError>>,
        now: u64,
    ) -> Result<(Transition, BatchOutcome), ChainError> {
        let mut tx = std::mem::take(&mut self.unwritten);
        let mut statuses = Vec::with_capacity(blocks.len());
        let mut stored = Vec::new();
        for (block, checked) in blocks.into_iter().zip(checked) {
            let hash = block.block_hash();
            match self.store_checked(block, checked, now, &mut tx) {
                Err(e @ ChainError::Storage(_)) => return Err(e),
                Ok(BlockStatus::Stored) => {
                    stored.push(hash);
                    statuses.push(Ok(BlockStatus::Stored));
                }
                status => statuses.push(status),
            }
        }
        let mut outcome = AcceptOutcome::new(BlockStatus::Stored);
        self.activate_best_chain(&mut outcome, &mut tx)?;
        for hash in stored {
            self.process_orphans(hash, now, &mut outcome, &mut tx)?;
        }
        Ok((tx, BatchOutcome { statuses, update: outcome.update, invalid: outcome.invalid }))
    }

    /// Stores a block that went through [`check_block`] with result `checked`, unless it is
    /// known, an orphan, or refused.
    fn store_checked(
        &mut self,
        block: Block,
        checked: Result<(), BlockError>,
        now: u64,
        tx: &mut Transition,
    ) -> Result<BlockStatus, ChainError> {
        let hash = block.block_hash();
        if let Some(node) = self.index.get(&hash) {
            if node.entry.is_failed() {
                return Err(ChainError::KnownInvalid(hash));
            }
            if node.entry.has_data() {
                return Ok(BlockStatus::Duplicate);
            }
        }
        if self.orphans.contains(&hash) {
            let missing = self.orphans.missing_ancestor(hash);
            return Ok(BlockStatus::Orphan { missing });
        }
        checked.map_err(|error| ChainError::InvalidBlock { hash, error })?;
        if !self.index.contains_key(&block.header.prev_blockhash) {
            self.orphans.insert(block);
            let missing = self.orphans.missing_ancestor(hash);
            return Ok(BlockStatus::Orphan { missing });
        }
        self.store_block(Arc::new(block), now, tx)?;
        Ok(BlockStatus::Stored)
    }

    fn process_orphans(
        &mut self,
        parent: BlockHash,
        now: u64,
        outcome: &mut AcceptOutcome,
        tx: &mut Transition,
    ) -> Result<(), ChainError> {
        let mut queue = vec![parent];
        while let Some(parent) = queue.pop() {
            for child in self.orphans.take_children(&parent) {
                let hash = child.block_hash();
                match self.store_block(Arc::new(child), now, tx) {
                    Ok(()) => queue.push(hash),
                    Err(e) if e.is_peer_fault() => outcome.invalid.push((hash, e)),
                    // A header too far in the future now may be fine later; drop it.
                    Err(ChainError::Storage(e)) => return Err(e.into()),
                    Err(_) => {}
                }
            }
            self.activate_best_chain(outcome, tx)?;
        }
        Ok(())
    }

    /// Adds the header if new, records the data, and makes it (and any stored descendants)
    /// tip candidates if all its ancestors have data.
    fn store_block(
        &mut self,
        block: Arc<Block>,
        now: u64,
        tx: &mut Transition,
    ) -> Result<(), ChainError> {
        let hash = self.add_header(&block.header, now)?;
        let node = self.index.get_mut(&hash).ok_or_else(|| inconsistent("header vanished"))?;
        node.entry.status |= HAVE_DATA;
        tx.write.index.push(node.entry);
        let parent_in_chain =
            self.index.get(&block.header.prev_blockhash).is_some_and(|p| p.in_data_chain);
        tx.add_block(block);
        if parent_in_chain {
            let mut stack = vec![hash];
            while let Some(h) = stack.pop() {
                let Some(node) = self.index.get_mut(&h) else { continue };
                if !node.entry.has_data() || node.in_data_chain {
                    continue;
                }
                node.in_data_chain = true;
                if !node.entry.is_failed() {
                    self.candidates.insert(Candidate(node.entry.chain_work, Reverse(node.seq), h));
                }
                stack.extend(self.children.get(&h).into_iter().flatten().copied());
            }
        }
        Ok(())
    }

    /// Switches the active chain to the best candidate. A block that fails is marked
    /// invalid with its descendants, and the next best candidate is tried.
    pub(super) fn activate_best_chain(
        &mut self,
        outcome: &mut AcceptOutcome,
        tx: &mut Transition,
    ) -> Result<(), ChainError> {
        while let Some(&Candidate(best_work, _, best)) = self.candidates.last() {
            if best_work <= self.tip_entry().chain_work {
                break;
            }
            let mut path = Vec::new();
            let mut cur = best;
            while !self.is_active(&cur) {
                path.push(cur);
                cur = self.index[&cur].entry.header.prev_blockhash;
            }
            while self.tip() != cur {
                let block = self.disconnect_tip(tx)?;
                outcome.update.disconnected.push(block);
            }
            self.connect_path(path, outcome, tx)?;
        }
        let tip_work = self.tip_entry().chain_work;
        self.candidates.retain(|c| c.0 >= tip_work);
        Ok(())
    }

    /// A block's data: from this transition if it came with it, else from the store.
    fn block_data(&self, hash: BlockHash, tx: &Transition) -> Result<Arc<Block>, StorageError> {
        let held = self.writing.as_ref().and_then(|w| w.blocks.get(&hash));
        match tx.blocks.get(&hash).or(held) {
            Some(block) => Ok(block.clone()),
            None => self.store.block(&hash)?.map(Arc::new).ok_or(StorageError::MissingBlock(hash)),
        }
    }

    /// Connects `path` (tip first) in a pipeline: block N's signatures are verified while
    /// block N+1 is prepared against the UTXO set plus N's changes, so both cores stay
    /// busy. N joins the chain only once its signatures pass; if they fail, N and its
    /// descendants are marked invalid and N+1's preparation is dropped.
    fn connect_path(
        &mut self,
        path: Vec<BlockHash>,
        outcome: &mut AcceptOutcome,
        tx: &mut Transition,
    ) -> Result<(), ChainError> {
        let mode = self.sig_mode;
        let verify = |held: Option<&Held>| held.map_or(Ok(()), |h| h.prepared.verify(mode));
        let mut held: Option<Held> = None;
        for hash in path.into_iter().rev() {
            // Nothing to overlap for the first block (a gossiped block is alone): no
            // hand-over to other threads, whose wake-ups a block's latency would feel.
            let (next, verdict) = match (mode, &held) {
                (SigMode::Parallel, Some(_)) => {
                    rayon::join(|| self.prepare(hash, tx, held.as_ref()), || verify(held.as_ref()))
                }
                _ => (self.prepare(hash, tx, held.as_ref()), verify(held.as_ref())),
            };
            if let Some(done) = held.take() {
                match verdict {
                    Ok(()) => outcome.update.connected.push(self.connect(done, tx)),
                    Err(error) => {
                        self.fail(done.hash, error, outcome, tx);
                        return Ok(());
                    }
                }
            }
            match next {
                Ok(next) => held = Some(next),
                Err(ConnectError::Invalid(error)) => {
                    self.fail(hash, error, outcome, tx);
                    return Ok(());
                }
                Err(ConnectError::Storage(e)) => return Err(e.into()),
            }
        }
        if let Some(last) = held {
            match verify(Some(&last)) {
                Ok(()) => outcome.update.connected.push(self.connect(last, tx)),
                Err(error) => self.fail(last.hash, error, outcome, tx),
            }
        }
        Ok(())
    }

    /// Checks `hash` against the UTXO set as this transition left it, plus the changes of
    /// `after` (the block before it, still being verified).
    fn prepare(
        &self,
        hash: BlockHash,
        tx: &Transition,
        after: Option<&Held>,
    ) -> Result<Held, ConnectError> {
        let block = self.block_data(hash, tx)?;
        let height = self.index[&hash].entry.height;
        let base = self.store.utxos()?;
        let none = PendingUtxos::default();
        let writing = self.writing.as_ref().map_or(&none, |w| &w.utxos);
        let pending = tx.utxos.over(writing.over(base));
        let mut prepared = match after {
            Some(after) => prepare_block(&block, height, &after.layer.over(&pending), self.params),
            None => prepare_block(&block, height, &pending, self.params),
        }?;
        if !self.verified.is_empty() {
            // One wtxid per transaction, not one per input (the closure is asked per check).
            let known: Vec<bool> =
                block.txs.iter().map(|tx| self.verified.contains(&tx.wtxid())).collect();
            prepared.skip_verified(|i| known.get(i).copied().unwrap_or(false));
        }
        let mut layer = PendingUtxos::default();
        layer.apply(&prepared.diff);
        Ok(Held { hash, height, block, prepared, layer })
    }

    /// Puts a prepared, verified block on the active chain.
    fn connect(&mut self, held: Held, tx: &mut Transition) -> Arc<Block> {
        let Held { hash, height, block, prepared, .. } = held;
        tx.utxos.apply(&prepared.diff);
        let Prepared { diff, undo, txids, .. } = prepared;
        tx.write.steps.push(Step::Connect { hash, height, diff, undo, txids });
        tx.write.tip = Some(hash);
        self.active.push(hash);
        block
    }

    /// Records that `hash` broke `error` while connecting: it and its descendants are
    /// marked invalid.
    fn fail(
        &mut self,
        hash: BlockHash,
        error: BlockError,
        outcome: &mut AcceptOutcome,
        tx: &mut Transition,
    ) {
        self.mark_failed(hash, tx);
        outcome.invalid.push((hash, ChainError::InvalidBlock { hash, error }));
    }

    fn disconnect_tip(&mut self, tx: &mut Transition) -> Result<Arc<Block>, ChainError> {
        let hash = self.tip();
        let node = self.index[&hash];
        if node.entry.height == 0 {
            return Err(inconsistent("asked to disconnect genesis"));
        }
        let height = node.entry.height;
        let block = self.block_data(hash, tx)?;
        let held = self.writing.as_ref().and_then(|w| w.undo_of(&hash));
        let diff = match tx.undo_of(&hash).or(held) {
            Some(undo) => disconnect_diff(&block, height, undo),
            None => {
                let undo = self.store.undo(&hash)?.ok_or(StorageError::MissingUndo(hash))?;
                disconnect_diff(&block, height, &undo)
            }
        };
        tx.utxos.apply(&diff);
        let txids: Vec<Txid> = block.txs.iter().map(Transaction::txid).collect();
        tx.write.steps.push(Step::Disconnect { hash, height, diff, txids });
        let parent = node.entry.header.prev_blockhash;
        tx.write.tip = Some(parent);
        self.active.pop();
        self.candidates.insert(Candidate(node.entry.chain_work, Reverse(node.seq), hash));
        Ok(block)
    }

    /// Marks `hash` and all its descendants invalid, in memory and in the transition.
    fn mark_failed(&mut self, hash: BlockHash, tx: &mut Transition) {
        let mut stack = vec![hash];
        while let Some(h) = stack.pop() {
            let Some(node) = self.index.get_mut(&h) else { continue };
            node.entry.status |= FAILED;
            self.candidates.remove(&Candidate(node.entry.chain_work, Reverse(node.seq), h));
            tx.write.index.push(node.entry);
            stack.extend(self.children.get(&h).into_iter().flatten().copied());
        }
        if self.index[&self.best_header].entry.is_failed() {
            let best = self
                .index
                .iter()
                .filter(|(_, n)| !n.entry.is_failed())
                .max_by_key(|(_, n)| (n.entry.chain_work, Reverse(n.seq)));
            self.best_header = best.map_or(self.tip(), |(h, _)| *h);
        }
    }
}

impl UtxoView for ChainState {
    fn coin(&self, outpoint: &OutPoint) -> Result<Option<Coin>, StorageError> {
        self.utxos()?.coin(outpoint)
    }
}

/// The thread that writes held transitions while the next blocks are verified: one for
/// the whole process (whatever the number of chains), so that its allocations keep reusing
/// one malloc arena instead of a fresh thread's each time. `None` if it cannot be started:
/// writes are then made in line.
pub(super) fn writer() -> Option<&'static rayon::ThreadPool> {
    static WRITER: OnceLock<Option<rayon::ThreadPool>> = OnceLock::new();
    WRITER
        .get_or_init(|| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(1)
                .thread_name(|_| "minichain-writer".into())
                .build();
            pool.map_err(|e| tracing::warn!(error = %e, "no writer thread; writing in line")).ok()
        })
        .as_ref()
}

pub(super) fn inconsistent(what: &'static str) -> ChainError {
    ChainError::Storage(StorageError::Inconsistent(what))
}

/// Convenience for callers that need the rule broken by a block they submitted.
pub fn block_error(outcome: &AcceptOutcome, hash: &BlockHash) -> Option<BlockError> {
    match outcome.error_for(hash) {
        Some(ChainError::InvalidBlock { error, .. }) => Some(error.clone()),
        _ => None,
    }
}
