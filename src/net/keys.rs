//! The map between libp2p's `PeerId`s and the core's [`PeerKey`]s.
//!
//! A peer gets a fresh key when it connects. After it leaves, its key stays resolvable for
//! a while ([`RETIRED`] peers), so that actions the core decided about it just before it
//! left (a ban, most of all) still reach it; events about peers never seen are dropped.

use std::collections::{HashMap, VecDeque};

use libp2p::PeerId;

use crate::primitives::PeerKey;

/// Disconnected peers whose keys stay resolvable.
pub const RETIRED: usize = 1_024;

/// Keys of connected and recently disconnected peers.
#[derive(Debug, Default)]
pub struct PeerKeys {
    next: u64,
    live: HashMap<PeerId, PeerKey>,
    ids: HashMap<PeerKey, PeerId>,
    retired: VecDeque<(PeerId, PeerKey)>,
}

impl PeerKeys {
    /// A connected peer's new key.
    pub fn connect(&mut self, id: PeerId) -> PeerKey {
        self.next += 1;
        let key = PeerKey(self.next);
        self.live.insert(id, key);
        self.ids.insert(key, id);
        key
    }

    /// A peer left; its key is retired (still resolvable for a while).
    pub fn disconnect(&mut self, id: &PeerId) -> Option<PeerKey> {
        let key = self.live.remove(id)?;
        self.retired.push_back((*id, key));
        if self.retired.len() > RETIRED
            && let Some((_, old)) = self.retired.pop_front()
        {
            self.ids.remove(&old);
        }
        Some(key)
    }

    /// The key of a connected (or recently disconnected) peer.
    pub fn key(&self, id: &PeerId) -> Option<PeerKey> {
        self.live
            .get(id)
            .copied()
            .or_else(|| self.retired.iter().rev().find(|(p, _)| p == id).map(|(_, k)| *k))
    }

    /// The peer behind `key`.
    pub fn id(&self, key: PeerKey) -> Option<PeerId> {
        self.ids.get(&key).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_fresh_per_connection_and_outlive_it_for_a_while() {
        let mut keys = PeerKeys::default();
        let a = PeerId::random();
        let first = keys.connect(a);
        assert_eq!((keys.key(&a), keys.id(first)), (Some(first), Some(a)));
        assert_eq!(keys.disconnect(&a), Some(first));
        assert_eq!(keys.id(first), Some(a), "a late ban still finds the peer");
        let second = keys.connect(a);
        assert_ne!(first, second);
        assert_eq!(keys.key(&a), Some(second));
        for _ in 0..RETIRED {
            let p = PeerId::random();
            keys.connect(p);
            keys.disconnect(&p);
        }
        assert_eq!(keys.id(first), None, "the oldest retired keys are forgotten");
        assert_eq!(keys.id(second), Some(a), "connected peers are never forgotten");
    }
}
