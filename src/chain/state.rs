//! `ChainState`: the block index in memory, the active chain, and the rules that move it.
//!
//! Fork choice is "most cumulative work, first seen wins ties". A block is fully validated
//! (UTXO spends, signatures) only when it is about to join the active chain; blocks on a
//! lighter branch are stored after the checks that need no UTXO set, so a heavier branch
//! can be switched to later without asking for them again.
//!
//! Accepting a block (or a batch of headers) is one transition: the chain decides in memory
//! and collects everything that changes into one [`ChainWrite`], which the store applies
//! in one write transaction. Blocks connected in the same transition see each other's
//! UTXO changes through a [`PendingUtxos`] overlay; the block just received is used from
//! memory, never read back.

use std::cmp::Reverse;
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use ruint::aliases::U256;

use super::error::ChainError;
use super::orphans::OrphanPool;
use super::utxo::{ConnectError, SigMode, connect_block, disconnect_diff};
use crate::consensus::asert::next_bits;
use crate::consensus::block::check_block;
use crate::consensus::genesis::genesis_block;
use crate::consensus::header::{HeaderContext, check_header, check_header_in_context, median_time};
use crate::consensus::params::MEDIAN_TIME_SPAN;
use crate::consensus::pow::work_from_bits;
use crate::consensus::{BlockError, Params};
use crate::primitives::{Block, BlockHash, BlockHeader, Coin, OutPoint, Transaction, Txid};
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
    fn new(status: BlockStatus) -> Self {
        Self { status, update: TipUpdate::default(), invalid: Vec::new() }
    }

    /// The error of `hash` if it was found invalid while connecting.
    pub fn error_for(&self, hash: &BlockHash) -> Option<&ChainError> {
        self.invalid.iter().find(|(h, _)| h == hash).map(|(_, e)| e)
    }
}

/// An index entry with the in-memory facts derived from it.
#[derive(Debug, Clone, Copy)]
struct Node {
    entry: IndexEntry,
    /// Arrival order, for "first seen wins ties".
    seq: u64,
    /// The block and all its ancestors have data: it could become the tip.
    in_data_chain: bool,
    /// Time of block 1 of this block's chain, where its difficulty schedule is anchored
    /// (inherited from the parent, so no walk back to height 1 per header).
    anchor_time: u32,
}

/// Ordering key of blocks that could become the tip: most work, then earliest seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Candidate(U256, Reverse<u64>, BlockHash);

/// One transition being built: what will be written, and what it already changed in
/// memory that later steps of the same transition must see.
#[derive(Default)]
struct Transition {
    write: ChainWrite,
    /// Blocks of this transition by hash (not in the store yet).
    blocks: HashMap<BlockHash, Arc<Block>>,
    /// UTXO changes of the steps so far.
    utxos: PendingUtxos,
}

impl Transition {
    fn add_block(&mut self, block: Arc<Block>) {
        self.blocks.insert(block.block_hash(), block.clone());
        self.write.blocks.push(block);
    }

    /// Undo data of `hash` if this transition connected it.
    fn undo_of(&self, hash: &BlockHash) -> Option<&BlockUndo> {
        self.write.steps.iter().rev().find_map(|step| match step {
            Step::Connect { hash: h, undo, .. } if h == hash => Some(undo),
            _ => None,
        })
    }
}

/// The chain state: the block index and the active chain in memory, over a store it
/// reads from and hands one [`ChainWrite`] per transition.
pub struct ChainState {
    params: &'static Params,
    store: Arc<dyn ChainStore>,
    index: HashMap<BlockHash, Node>,
    children: HashMap<BlockHash, Vec<BlockHash>>,
    active: Vec<BlockHash>,
    candidates: BTreeSet<Candidate>,
    best_header: BlockHash,
    orphans: OrphanPool,
    next_seq: u64,
    sig_mode: SigMode,
    /// Whether a write that moved the tip is not durable yet (catching up).
    unflushed: bool,
    /// When the last durable write was made (Unix seconds).
    last_flush: u64,
}

/// While catching up, the tip is made durable at most this often (seconds); a crash
/// resumes from there and fetches the rest again.
pub const FLUSH_EVERY_SECS: u64 = 2;

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
    fn load(store: Arc<dyn ChainStore>, params: &'static Params) -> Result<Self, ChainError> {
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
            unflushed: false,
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

    /// Hands the transition's write to the store. A write that moves the tip is durable
    /// unless the chain is catching up (headers known beyond the new tip) and the last
    /// durable write is less than [`FLUSH_EVERY_SECS`] old at `now` (`None`: durable
    /// whatever the time). If the store fails, the in-memory state (already moved) is
    /// rebuilt from the store, so memory never runs ahead of what the store holds.
    fn commit(&mut self, mut tx: Transition, now: Option<u64>) -> Result<(), ChainError> {
        if tx.write.is_empty() {
            return Ok(());
        }
        if tx.write.tip.is_some() {
            let catching_up = self.best_header().height > self.height();
            tx.write.durable = now.is_none_or(|now| !catching_up || self.flush_due(now));
        }
        if let Err(e) = self.store.apply(&tx.write) {
            let (store, params, mode) = (self.store.clone(), self.params, self.sig_mode);
            match Self::load(store, params) {
                Ok(reloaded) => {
                    *self = reloaded;
                    self.sig_mode = mode;
                }
                Err(reload) => tracing::error!(error = %reload, "cannot reload the chain"),
            }
            return Err(e.into());
        }
        if tx.write.durable {
            self.flushed(now);
        } else if tx.write.tip.is_some() {
            self.unflushed = true;
        }
        Ok(())
    }

    fn flush_due(&self, now: u64) -> bool {
        now.saturating_sub(self.last_flush) >= FLUSH_EVERY_SECS
    }

    /// Makes a tip moved while catching up durable, if the last durable write is
    /// [`FLUSH_EVERY_SECS`] old at `now` (`None`: at once, as at shutdown). Returns whether
    /// it wrote.
    ///
    /// # Errors
    /// [`ChainError::Storage`] if the store fails.
    pub fn flush(&mut self, now: Option<u64>) -> Result<bool, ChainError> {
        if !self.unflushed || now.is_some_and(|now| !self.flush_due(now)) {
            return Ok(false);
        }
        self.store.apply(&ChainWrite::flush())?;
        self.flushed(now);
        Ok(true)
    }

    /// A durable write went through at `now` (`None`: the clock is not moved).
    fn flushed(&mut self, now: Option<u64>) {
        self.unflushed = false;
        self.last_flush = now.unwrap_or(self.last_flush);
    }

    fn insert_node(&mut self, hash: BlockHash, entry: IndexEntry, in_data_chain: bool) {
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

    fn path_from_genesis(&self, tip: BlockHash) -> Result<Vec<BlockHash>, ChainError> {
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

    /// The consensus parameters.
    pub fn params(&self) -> &'static Params {
        self.params
    }

    /// Calls `f` for every coin in the stored UTXO set, in outpoint order.
    ///
    /// # Errors
    /// [`StorageError`] on read failure.
    pub fn for_each_coin(&self, mut f: impl FnMut(OutPoint, Coin)) -> Result<(), StorageError> {
        self.store.for_each_coin(&mut f)
    }

    /// A read view of the stored UTXO set (as of the last transition).
    ///
    /// # Errors
    /// [`StorageError`] if no read can be started.
    pub fn utxos(&self) -> Result<Box<dyn UtxoView + '_>, StorageError> {
        self.store.utxos()
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
        Ok(self.store.block(hash)?)
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

    fn add_header(&mut self, header: &BlockHeader, now: u64) -> Result<BlockHash, ChainError> {
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
        let hash = block.block_hash();
        if let Some(node) = self.index.get(&hash) {
            if node.entry.is_failed() {
                return Err(ChainError::KnownInvalid(hash));
            }
            if node.entry.has_data() {
                return Ok(AcceptOutcome::new(BlockStatus::Duplicate));
            }
        }
        if self.orphans.contains(&hash) {
            let missing = self.orphans.missing_ancestor(hash);
            return Ok(AcceptOutcome::new(BlockStatus::Orphan { missing }));
        }
        check_block(&block, self.params)
            .map_err(|error| ChainError::InvalidBlock { hash, error })?;
        if !self.index.contains_key(&block.header.prev_blockhash) {
            self.orphans.insert(block);
            let missing = self.orphans.missing_ancestor(hash);
            return Ok(AcceptOutcome::new(BlockStatus::Orphan { missing }));
        }
        let mut tx = Transition::default();
        self.store_block(Arc::new(block), now, &mut tx)?;
        let mut outcome = AcceptOutcome::new(BlockStatus::Stored);
        self.activate_best_chain(&mut outcome, &mut tx)?;
        self.process_orphans(hash, now, &mut outcome, &mut tx)?;
        self.commit(tx, Some(now))?;
        Ok(outcome)
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
    fn activate_best_chain(
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
            for hash in path.into_iter().rev() {
                match self.connect(hash, tx) {
                    Ok(block) => outcome.update.connected.push(block),
                    Err(ConnectError::Invalid(error)) => {
                        self.mark_failed(hash, tx);
                        outcome.invalid.push((hash, ChainError::InvalidBlock { hash, error }));
                        break;
                    }
                    Err(ConnectError::Storage(e)) => return Err(e.into()),
                }
            }
        }
        let tip_work = self.tip_entry().chain_work;
        self.candidates.retain(|c| c.0 >= tip_work);
        Ok(())
    }

    /// A block's data: from this transition if it came with it, else from the store.
    fn block_data(&self, hash: BlockHash, tx: &Transition) -> Result<Arc<Block>, StorageError> {
        match tx.blocks.get(&hash) {
            Some(block) => Ok(block.clone()),
            None => self.store.block(&hash)?.map(Arc::new).ok_or(StorageError::MissingBlock(hash)),
        }
    }

    fn connect(
        &mut self,
        hash: BlockHash,
        tx: &mut Transition,
    ) -> Result<Arc<Block>, ConnectError> {
        let block = self.block_data(hash, tx)?;
        let height = self.index[&hash].entry.height;
        let (diff, undo) = {
            let base = self.store.utxos()?;
            let view = tx.utxos.over(base.as_ref());
            connect_block(&block, height, &view, self.params, self.sig_mode)?
        };
        tx.utxos.apply(&diff);
        let txids: Vec<Txid> = block.txs.iter().map(Transaction::txid).collect();
        tx.write.steps.push(Step::Connect { hash, height, diff, undo, txids });
        tx.write.tip = Some(hash);
        self.active.push(hash);
        Ok(block)
    }

    fn disconnect_tip(&mut self, tx: &mut Transition) -> Result<Arc<Block>, ChainError> {
        let hash = self.tip();
        let node = self.index[&hash];
        if node.entry.height == 0 {
            return Err(inconsistent("asked to disconnect genesis"));
        }
        let height = node.entry.height;
        let block = self.block_data(hash, tx)?;
        let diff = match tx.undo_of(&hash) {
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
        self.store.utxos()?.coin(outpoint)
    }
}

fn inconsistent(what: &'static str) -> ChainError {
    ChainError::Storage(StorageError::Inconsistent(what))
}

/// Convenience for callers that need the rule broken by a block they submitted.
pub fn block_error(outcome: &AcceptOutcome, hash: &BlockHash) -> Option<BlockError> {
    match outcome.error_for(hash) {
        Some(ChainError::InvalidBlock { error, .. }) => Some(error.clone()),
        _ => None,
    }
}
