//! The block index in memory: its nodes, tip candidates, the active chain's queries,
//! locators, ancestors, median time and the context a child header is checked in.

use std::cmp::Reverse;

use ruint::aliases::U256;

use super::error::ChainError;
use super::state::{ChainState, inconsistent};
use crate::consensus::asert::next_bits;
use crate::consensus::header::{HeaderContext, median_time};
use crate::consensus::params::MEDIAN_TIME_SPAN;
use crate::primitives::{BlockHash, BlockHeader};
use crate::storage::IndexEntry;

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

impl ChainState {
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
        let anchor_time = match entry.height {
            0 => 0,
            1 => entry.header.time,
            _ => self.index.get(&entry.header.prev_blockhash).map_or(0, |p| p.anchor_time),
        };
        self.index.insert(hash, Node { entry, seq, in_data_chain, anchor_time });
        if !entry.is_failed() && entry.chain_work > best {
            self.set_best_header(hash);
        }
    }

    /// Makes `hash` (in the index) the best header and brings [`ChainState::best_chain`]
    /// to its chain: a push when it extends the old best header, else a walk back to
    /// where the two chains meet.
    pub(super) fn set_best_header(&mut self, hash: BlockHash) {
        self.best_header = hash;
        let mut fresh = Vec::new();
        let mut cur = hash;
        while let Some(node) = self.index.get(&cur) {
            let height = node.entry.height as usize;
            if self.best_chain.get(height) == Some(&cur) {
                self.best_chain.truncate(height + 1);
                break;
            }
            fresh.push(cur);
            if height == 0 {
                self.best_chain.clear();
                break;
            }
            cur = node.entry.header.prev_blockhash;
        }
        self.best_chain.extend(fresh.into_iter().rev());
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
    /// to, the best header); `None` if unknown or on another branch.
    pub fn on_best_header_chain(&self, hash: &BlockHash) -> Option<u32> {
        let height = self.index.get(hash)?.entry.height;
        (self.best_chain.get(height as usize) == Some(hash)).then_some(height)
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
        if self.awaiting_snapshot_base() {
            return Vec::new();
        }
        // Where the active chain leaves the best header chain (usually the tip itself).
        let mut fork = self.active.len().min(self.best_chain.len()).saturating_sub(1);
        while fork > 0 && self.active[fork] != self.best_chain[fork] {
            fork -= 1;
        }
        let above = self.best_chain.iter().enumerate().skip(fork + 1);
        above
            .filter(|(_, hash)| self.index.get(*hash).is_some_and(|n| !n.entry.has_data()))
            .map(|(height, hash)| (*hash, height as u32))
            .take(limit)
            .collect()
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
}
