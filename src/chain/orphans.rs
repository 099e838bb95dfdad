//! A bounded pool of blocks whose parent is not known yet, indexed by that parent.

use std::collections::{HashMap, VecDeque};

use crate::primitives::{Block, BlockHash};

/// Most orphan blocks held; the oldest is evicted first. Orphans are cheap to re-fetch, and
/// each had to carry valid proof of work to get here.
pub const MAX_ORPHANS: usize = 100;

/// Blocks waiting for their parent.
#[derive(Default)]
pub struct OrphanPool {
    blocks: HashMap<BlockHash, Block>,
    by_parent: HashMap<BlockHash, Vec<BlockHash>>,
    order: VecDeque<BlockHash>,
}

impl OrphanPool {
    /// Adds an orphan, evicting the oldest beyond [`MAX_ORPHANS`].
    pub fn insert(&mut self, block: Block) {
        let hash = block.block_hash();
        if self.blocks.contains_key(&hash) {
            return;
        }
        while self.blocks.len() >= MAX_ORPHANS {
            match self.order.pop_front() {
                Some(old) => self.remove(&old),
                None => break,
            }
        }
        self.by_parent.entry(block.header.prev_blockhash).or_default().push(hash);
        self.order.push_back(hash);
        self.blocks.insert(hash, block);
    }

    fn remove(&mut self, hash: &BlockHash) {
        if let Some(block) = self.blocks.remove(hash) {
            let parent = block.header.prev_blockhash;
            if let Some(children) = self.by_parent.get_mut(&parent) {
                children.retain(|h| h != hash);
                if children.is_empty() {
                    self.by_parent.remove(&parent);
                }
            }
        }
    }

    /// Removes and returns the orphans whose parent is `parent`.
    pub fn take_children(&mut self, parent: &BlockHash) -> Vec<Block> {
        let hashes = self.by_parent.remove(parent).unwrap_or_default();
        self.order.retain(|h| !hashes.contains(h));
        hashes.iter().filter_map(|h| self.blocks.remove(h)).collect()
    }

    /// Whether `hash` is held.
    pub fn contains(&self, hash: &BlockHash) -> bool {
        self.blocks.contains_key(hash)
    }

    /// Number of orphans held.
    pub fn len(&self) -> usize {
        self.blocks.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.blocks.is_empty()
    }

    /// The root of the orphan chain containing `hash`: the first ancestor we lack.
    pub fn missing_ancestor(&self, mut hash: BlockHash) -> BlockHash {
        while let Some(block) = self.blocks.get(&hash) {
            hash = block.header.prev_blockhash;
        }
        hash
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::primitives::BlockHeader;

    fn block(parent: u8, nonce: u32) -> Block {
        Block {
            header: BlockHeader {
                version: 1,
                prev_blockhash: BlockHash([parent; 32]),
                merkle_root: Default::default(),
                time: 0,
                bits: 0,
                nonce,
            },
            txs: vec![],
        }
    }

    #[test]
    fn pool_is_bounded_and_evicts_oldest() {
        let mut pool = OrphanPool::default();
        for n in 0..(MAX_ORPHANS as u32 + 10) {
            pool.insert(block(1, n));
        }
        assert_eq!(pool.len(), MAX_ORPHANS);
        assert!(!pool.contains(&block(1, 0).block_hash()));
        assert!(pool.contains(&block(1, MAX_ORPHANS as u32 + 9).block_hash()));
        assert_eq!(pool.take_children(&BlockHash([1; 32])).len(), MAX_ORPHANS);
        assert!(pool.is_empty());
    }
}
