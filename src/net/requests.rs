//! Sync requests out and in, and their answers.

use std::collections::HashMap;

use libp2p::gossipsub::MessageId;
use libp2p::request_response::{OutboundRequestId, ResponseChannel};
use libp2p::{PeerId, Swarm};
use tracing::debug;

use super::behaviour::Behaviour;
use super::codec::Inbound;
use super::service::Service;
use crate::core::{NetEvent, Offence};
use crate::primitives::Time;
use crate::protocol::SyncResponse;

/// Pending libp2p handles, keyed by the ids the core sees.
#[derive(Default)]
pub(super) struct Pending {
    pub(super) next_id: u64,
    pub(super) gossip: HashMap<u64, (MessageId, PeerId)>,
    pub(super) inbound: HashMap<u64, (ResponseChannel<SyncResponse>, PeerId)>,
    pub(super) outbound: HashMap<OutboundRequestId, u64>,
}

impl Pending {
    pub(super) fn id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }
}

impl<E: From<NetEvent>> Service<E> {
    /// An inbound sync request: malformed ones and those over the peer's rate are
    /// reported to the core (and never answered); the rest go to the core to answer.
    pub(super) fn on_request(
        &mut self,
        swarm: &mut Swarm<Behaviour>,
        peer: PeerId,
        request: Inbound,
        channel: ResponseChannel<SyncResponse>,
    ) {
        let Some(key) = self.keys.key(&peer) else { return };
        let req = match request {
            Inbound::Request(req) => req,
            Inbound::Malformed(e) => {
                debug!(peer = %peer, error = %e, "malformed sync request");
                self.emit(NetEvent::Misbehaved { peer: key, offence: e.into() });
                return;
            }
        };
        let now = Time::from_millis(
            u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX),
        );
        if !self.limiter.allow(peer, now) {
            let refusal = SyncResponse::Refused("too many requests".into());
            let _ = swarm.behaviour_mut().sync.send_response(channel, refusal);
            self.emit(NetEvent::Misbehaved { peer: key, offence: Offence::RequestFlood });
            return;
        }
        let id = self.pending.id();
        self.pending.inbound.insert(id, (channel, peer));
        if !self.emit(NetEvent::Request { id, peer: key, req }) {
            self.pending.inbound.remove(&id);
            self.limiter.answered(&peer);
        }
    }
}
