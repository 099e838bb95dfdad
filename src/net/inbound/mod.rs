//! Inbound admission: caps per source, the handshake deadline, and eviction when full.

pub mod evict;
pub mod slots;

use std::time::{Duration, Instant};

use libp2p::{PeerId, Swarm};
use tracing::info;

use super::behaviour::Behaviour;
use super::service::Service;
use crate::core::NetEvent;
use evict::{Candidate, victim};

/// How long a new connection may take to finish its handshake (noise, yamux) before it
/// is dropped: an idle socket holds a pending slot no longer than this.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

impl<E: From<NetEvent>> Service<E> {
    /// A new inbound peer arrived: if that overfills the inbound slots, the least useful
    /// inbound peer gives way (or the newcomer, if every other one is protected).
    pub(super) fn make_room(&mut self, swarm: &mut Swarm<Behaviour>, newcomer: PeerId) {
        let now = Instant::now();
        self.inbound.insert(newcomer, now);
        if self.inbound.len() <= self.max_inbound {
            return;
        }
        let candidates: Vec<Candidate> = self
            .inbound
            .iter()
            .filter(|(p, _)| **p != newcomer)
            .map(|(p, since)| Candidate {
                peer: *p,
                since: *since,
                useful: self.useful.get(p).copied(),
            })
            .collect();
        match victim(&candidates, now) {
            Some(peer) => {
                info!(%peer, newcomer = %newcomer, "inbound slots full: disconnecting the least useful inbound peer");
                let _ = swarm.disconnect_peer_id(peer);
            }
            None => {
                info!(peer = %newcomer, "inbound slots full and every inbound peer is protected: refusing");
                let _ = swarm.disconnect_peer_id(newcomer);
            }
        }
    }
}
