//! Bans: peers refused for a while, and when each ban lifts.

use std::time::Instant;

use libp2p::{PeerId, Swarm};
use tracing::warn;

use super::behaviour::Behaviour;
use super::service::Service;
use super::snapshot::*;
use crate::core::NetEvent;

impl<E: From<NetEvent>> Service<E> {
    pub(super) fn ban(&mut self, swarm: &mut Swarm<Behaviour>, peer: PeerId, reason: String) {
        warn!(peer = %peer, %reason, secs = self.ban_duration.as_secs(), "banning peer");
        self.book.forget(&peer);
        let b = swarm.behaviour_mut();
        b.blocked.block_peer(peer);
        b.kad.remove_peer(&peer);
        self.bans.retain(|(_, p)| *p != peer);
        self.bans.push((Instant::now() + self.ban_duration, peer));
        if let Ok(mut i) = self.info.write() {
            let until = std::time::SystemTime::now() + self.ban_duration;
            i.bans.insert(peer, BanInfo { reason, until });
        }
        let _ = swarm.disconnect_peer_id(peer);
    }
}
