//! Sync requests out and in, and their answers. The core asks (`NetAction::Request`) and
//! answers (`NetAction::Respond`) by plain ids; the libp2p handles behind them (request ids,
//! response channels) stay here. Inbound requests are rate-limited per peer before the core
//! sees them.

use std::collections::HashMap;
use std::time::Instant;

use libp2p::request_response::{self, OutboundRequestId, ResponseChannel};
use libp2p::{PeerId, Swarm};
use tracing::debug;

use super::behaviour::Behaviour;
use super::codec::Inbound;
use super::service::Service;
use crate::core::limit::RequestLimiter;
use crate::core::{NetEvent, Offence};
use crate::primitives::Time;
use crate::protocol::{FrameError, SyncResponse};
use crate::sync::Ask;

/// Requests in flight both ways.
pub(super) struct Requests {
    /// Requests of peers that the core is to answer: the id it was handed -> the channel.
    to_answer: HashMap<u64, (ResponseChannel<SyncResponse>, PeerId)>,
    /// Our requests out: libp2p's id -> the core's.
    asked: HashMap<OutboundRequestId, u64>,
    /// Inbound requests per peer and second.
    limiter: RequestLimiter<PeerId>,
    /// When the task started: the limiter's clock.
    started: Instant,
}

impl Default for Requests {
    fn default() -> Self {
        Requests {
            to_answer: HashMap::new(),
            asked: HashMap::new(),
            limiter: RequestLimiter::default(),
            started: Instant::now(),
        }
    }
}

impl Requests {
    /// `peer` disconnected: its rate resets.
    pub(super) fn gone(&mut self, peer: &PeerId) {
        self.limiter.forget(peer);
    }
}

impl<E: From<NetEvent>> Service<E> {
    /// Sends a request the core decided on.
    pub(super) fn send_request(&mut self, swarm: &mut Swarm<Behaviour>, ask: Ask) {
        let Some(peer) = self.conns.keys.id(ask.peer) else {
            // Gone for long: fail the request at once rather than at its timeout.
            self.emit(NetEvent::RequestFailed { id: ask.id, peer: ask.peer, timed_out: false });
            return;
        };
        debug!(peer = %peer, req = %ask.req, "sync request out: {}", ask.req);
        let request_id = swarm.behaviour_mut().sync.send_request(&peer, Inbound::Request(ask.req));
        self.requests.asked.insert(request_id, ask.id);
    }

    /// Sends the core's answer to request `id`.
    pub(super) fn respond(&mut self, swarm: &mut Swarm<Behaviour>, id: u64, resp: SyncResponse) {
        if let Some((channel, peer)) = self.requests.to_answer.remove(&id) {
            self.requests.limiter.answered(&peer);
            // Fails only if the peer is gone; nothing to do then.
            let _ = swarm.behaviour_mut().sync.send_response(channel, resp);
        }
    }

    /// An event of the sync protocol.
    pub(super) fn on_sync(
        &mut self,
        swarm: &mut Swarm<Behaviour>,
        event: request_response::Event<Inbound, SyncResponse>,
    ) {
        match event {
            request_response::Event::Message { peer, message, .. } => match message {
                request_response::Message::Request { request, channel, .. } => {
                    self.on_request(swarm, peer, request, channel);
                }
                request_response::Message::Response { request_id, response } => {
                    self.on_response(peer, request_id, response);
                }
            },
            request_response::Event::OutboundFailure { peer, request_id, error, .. } => {
                self.on_request_failed(peer, request_id, &error);
            }
            request_response::Event::InboundFailure { peer, error, .. } => {
                debug!(peer = %peer, error = %error, "inbound sync request failed");
            }
            request_response::Event::ResponseSent { .. } => {}
        }
    }

    /// An inbound sync request: malformed ones and those over the peer's rate are
    /// reported to the core (and never answered); the rest go to the core to answer.
    fn on_request(
        &mut self,
        swarm: &mut Swarm<Behaviour>,
        peer: PeerId,
        request: Inbound,
        channel: ResponseChannel<SyncResponse>,
    ) {
        let Some(key) = self.conns.keys.key(&peer) else { return };
        let req = match request {
            Inbound::Request(req) => req,
            Inbound::Malformed(e) => {
                debug!(peer = %peer, error = %e, "malformed sync request");
                self.emit(NetEvent::BadFrame { peer: key, error: e });
                return;
            }
        };
        let now = Time::from_millis(
            u64::try_from(self.requests.started.elapsed().as_millis()).unwrap_or(u64::MAX),
        );
        if !self.requests.limiter.allow(peer, now) {
            let refusal = SyncResponse::Refused("too many requests".into());
            let _ = swarm.behaviour_mut().sync.send_response(channel, refusal);
            self.emit(NetEvent::Misbehaved { peer: key, offence: Offence::RequestFlood });
            return;
        }
        let id = self.next_id();
        self.requests.to_answer.insert(id, (channel, peer));
        if !self.emit(NetEvent::Request { id, peer: key, req }) {
            self.requests.to_answer.remove(&id);
            self.requests.limiter.answered(&peer);
        }
    }

    /// A peer answered one of our requests.
    fn on_response(&mut self, peer: PeerId, request_id: OutboundRequestId, resp: SyncResponse) {
        // Serving headers or blocks is useful; a status answer is not (every peer gives
        // one on connect).
        let served = match &resp {
            SyncResponse::Headers(h) => !h.is_empty(),
            SyncResponse::Blocks(b) => !b.is_empty(),
            _ => false,
        };
        if served {
            self.admission.was_useful(peer);
        }
        if let Some(id) = self.requests.asked.remove(&request_id)
            && let Some(peer) = self.conns.keys.key(&peer)
        {
            self.emit(NetEvent::Response { id, peer, resp });
        }
    }

    /// One of our requests failed: the core hears why.
    fn on_request_failed(
        &mut self,
        peer: PeerId,
        request_id: OutboundRequestId,
        error: &request_response::OutboundFailure,
    ) {
        // The codec's own errors carry a FrameError, for the core to judge (a frame cut
        // off is a dead connection, garbage is the peer's fault). Other I/O errors (reset,
        // closed) are nobody's.
        let Some(key) = self.conns.keys.key(&peer) else { return };
        if let request_response::OutboundFailure::Io(e) = error
            && let Some(frame) = e.get_ref().and_then(|e| e.downcast_ref::<FrameError>())
        {
            self.emit(NetEvent::BadFrame { peer: key, error: frame.clone() });
        }
        if let Some(id) = self.requests.asked.remove(&request_id) {
            debug!(peer = %peer, %error, "sync request failed");
            let timed_out = matches!(error, request_response::OutboundFailure::Timeout);
            self.emit(NetEvent::RequestFailed { id, peer: key, timed_out });
        }
    }
}
