//! Inbound admission: who may connect to us, and who gives way when the slots are full.
//!
//! Three layers, outermost first, with their numbers named here or beside them:
//! - libp2p's connection limits ([`MAX_PENDING_INBOUND`] handshakes at once, established
//!   inbound connections up to the slots plus [`EVICTION_HEADROOM`]), set in
//!   `net/behaviour.rs` from these constants;
//! - per-source caps ([`slots`]): handshakes per IP address, established connections per
//!   /24 or /64 network, and the [`HANDSHAKE_TIMEOUT`] within which a handshake must end;
//! - eviction ([`evict`]): once a newcomer overfills the inbound slots
//!   ([`evict::MAX_INBOUND`] by default), the least useful inbound peer gives way.

pub mod evict;
pub mod slots;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use libp2p::{PeerId, Swarm};
use tracing::info;

use super::behaviour::Behaviour;
use super::service::Service;
use evict::{Candidate, victim};

/// How long a new connection may take to finish its handshake (noise, yamux) before it
/// is dropped: an idle socket holds a pending slot no longer than this.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
/// Inbound handshakes in progress at once, from all sources together.
pub const MAX_PENDING_INBOUND: u32 = 30;
/// Established inbound connections allowed above the inbound slots: a newcomer is
/// established first, then eviction makes room for it.
pub const EVICTION_HEADROOM: u32 = 8;

/// The inbound peers, and what eviction weighs of each.
#[derive(Debug)]
pub(super) struct Admission {
    /// Inbound slots.
    max: usize,
    /// Each connected inbound peer and when it connected.
    since: HashMap<PeerId, Instant>,
    /// When each peer last relayed something we accepted or answered our request.
    useful: HashMap<PeerId, Instant>,
}

impl Admission {
    pub(super) fn new(max: usize) -> Self {
        Admission { max, since: HashMap::new(), useful: HashMap::new() }
    }

    /// `peer` just did something for us (a gossip message we accepted, an answer).
    pub(super) fn was_useful(&mut self, peer: PeerId) {
        self.useful.insert(peer, Instant::now());
    }

    /// `peer` disconnected.
    pub(super) fn gone(&mut self, peer: &PeerId) {
        self.since.remove(peer);
        self.useful.remove(peer);
    }
}

impl<E> Service<E> {
    /// A new inbound peer arrived: if that overfills the inbound slots, the least useful
    /// inbound peer gives way (or the newcomer, if every other one is protected).
    pub(super) fn make_room(&mut self, swarm: &mut Swarm<Behaviour>, newcomer: PeerId) {
        let now = Instant::now();
        let a = &mut self.admission;
        a.since.insert(newcomer, now);
        if a.since.len() <= a.max {
            return;
        }
        let candidates: Vec<Candidate> = a
            .since
            .iter()
            .filter(|(p, _)| **p != newcomer)
            .map(|(p, since)| Candidate {
                peer: *p,
                since: *since,
                useful: a.useful.get(p).copied(),
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
