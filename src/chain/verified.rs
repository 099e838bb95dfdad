//! Transactions whose signatures this node has already verified (Bitcoin Core's signature
//! cache, per transaction): the mempool checks every transaction it accepts, so when a
//! block arrives carrying transactions we already hold, its signatures need not be
//! checked again. That is most of a new block's validation time, and so most of the
//! delay each hop adds to its propagation.
//!
//! Keyed by the wtxid, the hash of the transaction with its signatures: a transaction
//! that differs in any byte (another signature) is a different entry. Signatures commit
//! to the coins they spend and an outpoint names one coin, so a verdict once reached holds
//! for every block the same transaction appears in.

use std::collections::{HashSet, VecDeque};

use crate::primitives::Wtxid;

/// Entries kept: a few mempools' worth (at ~200 bytes a transaction, far more than the
/// mempool holds); the oldest go first. About 3 MiB.
pub const CAPACITY: usize = 100_000;

/// A bounded set of verified wtxids, oldest evicted first.
#[derive(Debug, Default)]
pub struct VerifiedTxs {
    set: HashSet<Wtxid>,
    order: VecDeque<Wtxid>,
}

impl VerifiedTxs {
    /// Remembers that every signature of `wtxid` was verified.
    pub fn insert(&mut self, wtxid: Wtxid) {
        if !self.set.insert(wtxid) {
            return;
        }
        self.order.push_back(wtxid);
        if self.order.len() > CAPACITY
            && let Some(oldest) = self.order.pop_front()
        {
            self.set.remove(&oldest);
        }
    }

    /// Whether the signatures of `wtxid` were verified.
    pub fn contains(&self, wtxid: &Wtxid) -> bool {
        self.set.contains(wtxid)
    }

    /// Nothing remembered (the common case while catching up: no mempool yet).
    pub fn is_empty(&self) -> bool {
        self.set.is_empty()
    }

    /// How many are remembered.
    pub fn len(&self) -> usize {
        self.set.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_oldest_entries_go_first_once_full() {
        let mut v = VerifiedTxs::default();
        let id = |i: usize| Wtxid(crate::primitives::hash::sha256d(&i.to_le_bytes()));
        for i in 0..=CAPACITY {
            v.insert(id(i));
        }
        v.insert(id(5)); // already there: no second entry
        assert_eq!(v.len(), CAPACITY);
        assert!(!v.contains(&id(0)), "the oldest was evicted");
        assert!(v.contains(&id(1)) && v.contains(&id(CAPACITY)));
    }
}
