//! Discovery: identify feeds Kademlia, Kademlia finds peers (and a random walk keeps it
//! looking while we are short of them), the peer book remembers them across restarts.

use std::collections::HashSet;
use std::path::Path;
use std::time::Instant;

use libp2p::{Multiaddr, PeerId, Swarm, identify, relay};
use tracing::{debug, info, warn};

use super::addr::{is_local, with_peer_id, without_peer_id};
use super::behaviour::Behaviour;
use super::book::{BookError, PeerBook, SAVE_EVERY, Source};
use super::service::Service;
use crate::core::NetEvent;
use crate::protocol::{identify_protocol, kad_protocol, network_of_identify};

/// Peers we try to stay connected to; below this, discovered peers are dialled.
pub const TARGET_PEERS: usize = 8;
/// While short of peers, a Kademlia random walk every this many ticks (seconds).
pub const RANDOM_WALK_TICKS: u64 = 10;

/// The peer book and when it was last written.
#[derive(Debug)]
pub(super) struct Discovery {
    pub(super) book: PeerBook,
    last_save: Instant,
    /// Peers refused for being of another network: warned of once each.
    foreign: HashSet<PeerId>,
    /// Connected peers we have answered identify: they know our network.
    answered: HashSet<PeerId>,
    /// Peers of another network to close once they have our answer, so that their side
    /// can name the mismatch too (closing first would leave it none to read).
    closing: HashSet<PeerId>,
}

impl Discovery {
    /// Reads the peer book in `data_dir`.
    pub(super) fn load(data_dir: &Path) -> Result<Self, BookError> {
        Ok(Discovery {
            book: PeerBook::load(data_dir)?,
            last_save: Instant::now(),
            foreign: HashSet::new(),
            answered: HashSet::new(),
            closing: HashSet::new(),
        })
    }
}

impl<E: From<NetEvent>> Service<E> {
    /// At start: dials the peers of the book (anchors first) and tells Kademlia of them.
    pub(super) fn dial_book(&mut self, swarm: &mut Swarm<Behaviour>) {
        let book = &self.discovery.book;
        let known = book.to_dial(swarm.local_peer_id());
        if !known.is_empty() {
            info!(peers = known.len(), book = book.len(), "dialing peers from the peer book");
        }
        for (peer, addr) in known {
            swarm.behaviour_mut().kad.add_address(&peer, without_peer_id(&addr));
            if let Err(e) = swarm.dial(addr.clone()) {
                debug!(addr = %addr, error = %e, "cannot dial a peer from the book");
            }
        }
    }

    /// A random walk every [`RANDOM_WALK_TICKS`] while short of peers keeps discovery
    /// going.
    pub(super) fn random_walk(&mut self, swarm: &mut Swarm<Behaviour>, ticks: u64) {
        if ticks.is_multiple_of(RANDOM_WALK_TICKS) && swarm.connected_peers().count() < TARGET_PEERS
        {
            swarm.behaviour_mut().kad.get_closest_peers(PeerId::random());
        }
    }

    /// Writes the peer book if it changed and was not written for [`SAVE_EVERY`].
    pub(super) fn save_book_if_due(&mut self) {
        if self.discovery.book.is_dirty() && self.discovery.last_save.elapsed() >= SAVE_EVERY {
            self.save_book();
        }
    }

    /// Writes the peer book with the outbound peers as anchors.
    pub(super) fn save_book(&mut self) {
        let anchors: Vec<PeerId> =
            self.conns.peers.iter().filter(|(_, p)| p.outbound).map(|(id, _)| *id).collect();
        let book = &mut self.discovery.book;
        match book.save(&anchors) {
            Ok(()) => debug!(peers = book.len(), anchors = anchors.len(), "peer book saved"),
            Err(e) => warn!(error = %e, "cannot save the peer book"),
        }
        self.discovery.last_save = Instant::now();
    }

    /// Kademlia learned a peer's addresses: remember them, and dial the peer while we are
    /// short of peers.
    pub(super) fn on_routing_updated(
        &mut self,
        swarm: &mut Swarm<Behaviour>,
        peer: PeerId,
        addresses: &libp2p::kad::Addresses,
        is_new_peer: bool,
    ) {
        if is_new_peer {
            debug!(peer = %peer, "discovered via kademlia");
        }
        self.discovery.book.learned(peer, addresses.iter().cloned(), Source::Kademlia);
        let connected = swarm.connected_peers().count();
        // A kept peer is dialled by the redialer (with its backoff), never twice.
        if !swarm.is_connected(&peer) && connected < TARGET_PEERS && !self.conns.is_kept(&peer) {
            let addr = with_peer_id(addresses.first(), peer);
            info!(peer = %peer, addr = %addr, "dialing peer found by kademlia");
            let _ = swarm.dial(addr);
        }
    }

    /// A peer of another network (its identify version names another): one WARN line per
    /// peer naming both networks, then it is closed and forgotten (the peer book and
    /// Kademlia), and a kept one is redialled only after a longer wait.
    fn refuse_foreign(&mut self, swarm: &mut Swarm<Behaviour>, peer: PeerId, version: &str) {
        let theirs = network_of_identify(version);
        let ours = self.network;
        if self.discovery.foreign.insert(peer) {
            warn!(
                peer = %peer,
                their_network = theirs,
                our_network = %ours,
                "refusing a peer of another network: it runs {theirs}, we run {ours}"
            );
        } else {
            debug!(peer = %peer, their_network = theirs, "peer of another network again");
        }
        self.discovery.book.forget(&peer);
        swarm.behaviour_mut().kad.remove_peer(&peer);
        self.conns.strike(&peer);
        if self.discovery.answered.contains(&peer) {
            let _ = swarm.disconnect_peer_id(peer);
        } else {
            self.discovery.closing.insert(peer);
        }
    }

    /// We answered `peer`'s identify request; a peer of another network waiting for it is
    /// closed now.
    pub(super) fn identify_sent(&mut self, swarm: &mut Swarm<Behaviour>, peer: PeerId) {
        self.discovery.answered.insert(peer);
        if self.discovery.closing.remove(&peer) {
            let _ = swarm.disconnect_peer_id(peer);
        }
    }

    /// `peer`'s last connection closed: nothing of its identify exchange is kept.
    pub(super) fn identify_gone(&mut self, peer: &PeerId) {
        self.discovery.answered.remove(peer);
        self.discovery.closing.remove(peer);
    }

    /// Feeds a server-mode peer's listen addresses into Kademlia (it never learns the
    /// addresses of peers that dialled us), leaving out loopback and private addresses
    /// unless our connection to that peer is itself local; notes its agent, and whether it
    /// offers to relay.
    pub(super) fn on_identify(
        &mut self,
        swarm: &mut Swarm<Behaviour>,
        peer: PeerId,
        info: identify::Info,
    ) {
        if info.protocol_version != identify_protocol(self.network) {
            self.refuse_foreign(swarm, peer, &info.protocol_version);
            return;
        }
        let kad = kad_protocol(self.network);
        let mut conn_addr = None;
        if let Some(p) = self.conns.peers.get_mut(&peer) {
            p.agent = Some(info.agent_version.clone());
            conn_addr = Some(p.addr.clone());
            self.dirty = true;
        }
        let local_ok = conn_addr.as_ref().is_none_or(is_local);
        let offers_relay = info.protocols.contains(&relay::HOP_PROTOCOL_NAME);
        self.relay_offered(swarm, peer, offers_relay.then_some(&info.listen_addrs[..]), local_ok);
        if !info.protocols.iter().any(|p| p.as_ref() == kad) {
            // A Kademlia client: not reachable yet (or of another network).
            debug!(peer = %peer, "peer is no kademlia server of our network");
            return;
        }
        let unique: HashSet<Multiaddr> = info.listen_addrs.into_iter().collect();
        let usable: Vec<Multiaddr> =
            unique.into_iter().filter(|a| local_ok || !is_local(a)).collect();
        self.discovery.book.learned(peer, usable.iter().cloned(), Source::Identify);
        for addr in usable {
            swarm.behaviour_mut().kad.add_address(&peer, addr);
        }
    }
}
