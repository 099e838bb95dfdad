//! What the API shows of the network: a snapshot the network task publishes.

use std::collections::BTreeMap;

use libp2p::{Multiaddr, PeerId, Swarm};

use super::behaviour::Behaviour;
use super::book::Source;
use super::reach::Reachability;
use super::service::Service;
use crate::primitives::PeerKey;

/// A connected peer as the API shows it.
#[derive(Debug, Clone)]
pub struct PeerInfo {
    /// The core's key for it.
    pub key: PeerKey,
    /// Remote address of the connection.
    pub addr: Multiaddr,
    /// True if we dialled it.
    pub outbound: bool,
    /// How we came to be connected (bootstrap, operator, kademlia, inbound, ...).
    pub source: Source,
    /// Identify agent, once known.
    pub agent: Option<String>,
    /// True while our only connection to it goes through a relay.
    pub relayed: bool,
    /// When it connected.
    pub since: std::time::SystemTime,
    /// The last ping round trip, once one came back.
    pub ping: Option<std::time::Duration>,
}

/// The network's state as the API sees it: a snapshot the network task publishes after
/// each change (never its working state).
#[derive(Debug, Clone, Default)]
pub struct NetInfo {
    /// Our peer id.
    pub peer_id: Option<PeerId>,
    /// Addresses we listen on, with `/p2p/<id>`.
    pub listen_addrs: Vec<Multiaddr>,
    /// Connected peers.
    pub peers: BTreeMap<PeerId, PeerInfo>,
    /// Banned peers: why, and until when.
    pub bans: BTreeMap<PeerId, BanInfo>,
    /// The kept peers and their state.
    pub kept: Vec<KeptInfo>,
    /// Whether others can dial us (AutoNAT's verdict).
    pub reachability: Reachability,
    /// Addresses we advertise: confirmed by AutoNAT or a relay, or configured.
    pub external_addrs: Vec<Multiaddr>,
    /// Our addresses through relays that hold a slot for us.
    pub relay_addrs: Vec<Multiaddr>,
}

/// A kept peer (`--bootstrap`, `peers add`) as the API shows it.
#[derive(Debug, Clone)]
pub struct KeptInfo {
    /// The address as given.
    pub addr: Multiaddr,
    /// Its peer id, once known.
    pub peer: Option<PeerId>,
    /// `Bootstrap` or `Operator`.
    pub source: Source,
    /// Whether it is connected.
    pub connected: bool,
    /// When it is dialled next, while it is not connected and no dial is in flight.
    pub next_dial: Option<std::time::SystemTime>,
}

/// A ban as the API shows it.
#[derive(Debug, Clone)]
pub struct BanInfo {
    /// The offence that reached the threshold (or the operator's reason).
    pub reason: String,
    /// When the ban lifts.
    pub until: std::time::SystemTime,
}

impl<E> Service<E> {
    /// Writes the snapshot the API reads, if anything it shows changed. Called by the loop
    /// after every event, command and tick; the working state stays with each concern.
    pub(super) fn publish(&mut self, swarm: &Swarm<Behaviour>) {
        if !std::mem::take(&mut self.dirty) {
            return;
        }
        let snapshot = NetInfo {
            peer_id: Some(*swarm.local_peer_id()),
            listen_addrs: self.listen_addrs.clone(),
            peers: self.conns.peers.clone(),
            bans: self.bans.listed(),
            kept: self.conns.kept(),
            reachability: self.reach.reachability.clone(),
            external_addrs: self.reach.advertised.clone(),
            relay_addrs: self.reach.relays.addrs(),
        };
        if let Ok(mut i) = self.info.write() {
            *i = snapshot;
        }
    }
}
