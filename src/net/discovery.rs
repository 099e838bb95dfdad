//! Discovery: identify feeds Kademlia, Kademlia finds peers, the peer book remembers them.

use std::collections::HashSet;
use std::time::Instant;

use libp2p::{Multiaddr, PeerId, Swarm, identify, relay};
use tracing::{debug, warn};

use super::addr::is_local;
use super::behaviour::Behaviour;
use super::book::Source;
use super::service::Service;
use crate::core::NetEvent;
use crate::protocol::kad_protocol;

/// Peers we try to stay connected to; below this, discovered peers are dialled.
pub const TARGET_PEERS: usize = 8;

impl<E: From<NetEvent>> Service<E> {
    /// Writes the peer book with the outbound peers as anchors.
    pub(super) fn save_book(&mut self) {
        let anchors: Vec<PeerId> = self
            .info
            .read()
            .map(|i| i.peers.iter().filter(|(_, p)| p.outbound).map(|(id, _)| *id).collect())
            .unwrap_or_default();
        match self.book.save(&anchors) {
            Ok(()) => debug!(peers = self.book.len(), anchors = anchors.len(), "peer book saved"),
            Err(e) => warn!(error = %e, "cannot save the peer book"),
        }
        self.last_save = Instant::now();
    }

    /// Feeds a server-mode peer's listen addresses into Kademlia (it never learns the
    /// addresses of peers that dialled us), leaving out loopback and private addresses
    /// unless our connection to that peer is itself local.
    pub(super) fn on_identify(
        &mut self,
        swarm: &mut Swarm<Behaviour>,
        peer: PeerId,
        info: identify::Info,
    ) {
        let kad = kad_protocol(self.network);
        let conn_addr =
            self.info.read().ok().and_then(|i| i.peers.get(&peer).map(|p| p.addr.clone()));
        if let Ok(mut i) = self.info.write()
            && let Some(p) = i.peers.get_mut(&peer)
        {
            p.agent = Some(info.agent_version.clone());
        }
        let local_ok = conn_addr.as_ref().is_none_or(is_local);
        if info.protocols.contains(&relay::HOP_PROTOCOL_NAME) {
            self.relays.offer(peer, &info.listen_addrs, local_ok);
            self.reserve_relays(swarm);
        } else {
            self.relays.gone(&peer);
        }
        if !info.protocols.iter().any(|p| p.as_ref() == kad) {
            // A Kademlia client: not reachable yet (or of another network).
            debug!(peer = %peer, "peer is no kademlia server of our network");
            return;
        }
        let unique: HashSet<Multiaddr> = info.listen_addrs.into_iter().collect();
        let usable: Vec<Multiaddr> =
            unique.into_iter().filter(|a| local_ok || !is_local(a)).collect();
        self.book.learned(peer, usable.iter().cloned(), Source::Identify);
        for addr in usable {
            swarm.behaviour_mut().kad.add_address(&peer, addr);
        }
    }
}
