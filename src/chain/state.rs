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
//! the same transition see each other's UTXO changes through a
//! [`PendingUtxos`](crate::storage::PendingUtxos) overlay; the block just received is used
//! from memory, never read back.
//!
//! Initial sync runs close to signature speed by keeping both cores busy:
//! - the blocks of a run are checked on their own (structure, Merkle root, proof of work)
//!   in parallel;
//! - connecting is a pipeline: block N's signatures are verified while block N+1 is checked
//!   against the UTXO set plus N's changes; N joins the chain only if they pass;
//! - while catching up, transitions are held in memory (reads see them through the same
//!   overlays) and written as one durable write every
//!   [`FLUSH_EVERY_SECS`](super::write::FLUSH_EVERY_SECS), on a writer thread while the
//!   next run is verified. A crash loses at most what was held: the store always holds a
//!   complete earlier state, and the node fetches the rest again.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use super::assume::AssumeValid;
use super::error::ChainError;
use super::index::{Candidate, Node};
use super::orphans::OrphanPool;
use super::outcome::{AcceptOutcome, BlockStatus};
use super::utxo::SigMode;
use super::verified::VerifiedTxs;
use super::write::Transition;
use crate::consensus::Params;
use crate::consensus::genesis::genesis_block;
use crate::consensus::pow::work_from_bits;
use crate::primitives::encode::serialize;
use crate::primitives::{Block, BlockHash, Coin, OutPoint, Wtxid};
use crate::storage::{
    ChainStore, ChainWrite, HAVE_DATA, IndexEntry, SnapshotBase, Step, StorageError, UtxoView,
};

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
    /// The best header's chain by height, genesis first (`best_chain[h]` is the hash at
    /// height `h`), so that "what do we lack below the best header" and "is this block
    /// on the best header chain" cost the answer, not a walk of the whole gap.
    pub(super) best_chain: Vec<BlockHash>,
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
    /// The block whose ancestors' signatures are trusted (`--assume-valid`), if any.
    pub(super) assume_valid: Option<AssumeValid>,
    /// The snapshot the chain started from, if it did (see `chain/snapshot.rs`).
    pub(super) snapshot: Option<SnapshotBase>,
}

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
                    owners: Vec::new(),
                }],
                tip: Some(genesis_hash),
                heights: Vec::new(),
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
        let snapshot = store.snapshot_base()?;
        entries.sort_by_key(|e| e.height);
        let mut chain = Self {
            params,
            store,
            index: HashMap::with_capacity(entries.len()),
            children: HashMap::new(),
            active: Vec::new(),
            candidates: BTreeSet::new(),
            best_header: genesis_hash,
            best_chain: Vec::new(),
            orphans: OrphanPool::default(),
            next_seq: 0,
            sig_mode: SigMode::Parallel,
            verified: VerifiedTxs::default(),
            unwritten: Transition::default(),
            writing: None,
            last_flush: 0,
            assume_valid: None,
            snapshot,
        };
        for entry in entries {
            let hash = entry.hash();
            let parent_in_chain =
                chain.index.get(&entry.header.prev_blockhash).map(|p| p.in_data_chain);
            // A snapshot's base has its coins, not its ancestors' data: it roots a data
            // chain of its own.
            let root = entry.height == 0 || entry.is_snapshot_base();
            let in_data_chain = (entry.has_data() || entry.is_snapshot_base())
                && (root || parent_in_chain == Some(true));
            chain.insert_node(hash, entry, in_data_chain);
        }
        let tip = chain.store.tip()?.ok_or_else(|| inconsistent("no tip"))?;
        chain.active = chain.path_from_genesis(tip)?;
        let tip_work = chain.tip_entry().chain_work;
        chain.candidates.retain(|c| c.0 >= tip_work);
        Ok(chain)
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

    /// Where the chain is stored, for messages (a path, or `memory`).
    pub fn location(&self) -> String {
        self.store.location()
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
}

impl UtxoView for ChainState {
    fn coin(&self, outpoint: &OutPoint) -> Result<Option<Coin>, StorageError> {
        self.utxos()?.coin(outpoint)
    }
}

pub(super) fn inconsistent(what: &'static str) -> ChainError {
    ChainError::Storage(StorageError::Inconsistent(what))
}
