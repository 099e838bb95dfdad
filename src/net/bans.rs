//! Bans: peers refused for a while, and when each ban lifts. The core decides who is
//! banned (or the operator does); this file carries it out on the swarm: the peer is
//! disconnected, blocked, dropped from Kademlia and the peer book, and unblocked when the
//! ban expires or is lifted.

use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime};

use libp2p::{PeerId, Swarm};
use tracing::{info, warn};

use super::behaviour::Behaviour;
use super::service::Service;
use super::snapshot::BanInfo;

/// The peers banned now.
#[derive(Debug)]
pub(super) struct Bans {
    /// How long a ban lasts.
    duration: Duration,
    /// Each banned peer: when its ban lifts, and what the API shows of it.
    banned: BTreeMap<PeerId, (Instant, BanInfo)>,
}

impl Bans {
    pub(super) fn new(duration: Duration) -> Self {
        Bans { duration, banned: BTreeMap::new() }
    }

    /// The bans as the API shows them.
    pub(super) fn listed(&self) -> BTreeMap<PeerId, BanInfo> {
        self.banned.iter().map(|(p, (_, info))| (*p, info.clone())).collect()
    }
}

impl<E> Service<E> {
    /// Disconnects and refuses `peer` for the ban duration.
    pub(super) fn ban(&mut self, swarm: &mut Swarm<Behaviour>, peer: PeerId, reason: String) {
        let duration = self.bans.duration;
        warn!(peer = %peer, %reason, secs = duration.as_secs(), "banning peer");
        self.discovery.book.forget(&peer);
        let b = swarm.behaviour_mut();
        b.blocked.block_peer(peer);
        b.kad.remove_peer(&peer);
        let info = BanInfo { reason, until: SystemTime::now() + duration };
        self.bans.banned.insert(peer, (Instant::now() + duration, info));
        self.dirty = true;
        let _ = swarm.disconnect_peer_id(peer);
    }

    /// Lifts a ban early (the operator's call).
    pub(super) fn unban(&mut self, swarm: &mut Swarm<Behaviour>, peer: PeerId) {
        swarm.behaviour_mut().blocked.unblock_peer(peer);
        self.bans.banned.remove(&peer);
        self.dirty = true;
        info!(peer = %peer, "ban lifted");
    }

    /// Lifts the bans whose time is up.
    pub(super) fn expire_bans(&mut self, swarm: &mut Swarm<Behaviour>) {
        let now = Instant::now();
        let expired: Vec<PeerId> =
            self.bans.banned.iter().filter(|(_, (t, _))| *t <= now).map(|(p, _)| *p).collect();
        for peer in expired {
            swarm.behaviour_mut().blocked.unblock_peer(peer);
            self.bans.banned.remove(&peer);
            self.dirty = true;
            info!(peer = %peer, "ban expired");
        }
    }
}
