//! The network task: owns the Swarm, turns swarm events into [`NetEvent`]s for the node
//! core, and carries out the core's [`NetCommand`]s. It carries; it never decides.
//!
//! Libp2p handles that must be used from this task (response channels, gossip message
//! ids) stay here in maps keyed by a plain `u64`, so the core only ever sees ids.

use std::collections::HashMap;
use std::sync::mpsc::{SyncSender, TrySendError};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use futures::StreamExt;
use libp2p::core::transport::PortUse;
use libp2p::gossipsub::{self, IdentTopic, MessageAcceptance};
use libp2p::request_response::{self};
use libp2p::swarm::{ConnectionId, SwarmEvent};
use libp2p::{Multiaddr, PeerId, Swarm, autonat, dcutr, identify, kad, ping, relay};
use tokio::sync::mpsc;
use tracing::{debug, info, trace, warn};

use super::addr::{peer_id_of, with_peer_id, without_peer_id};
use super::behaviour::{Behaviour, BehaviourEvent};
use super::book::{PeerBook, SAVE_EVERY, Source};
use super::codec::Inbound;

use super::connections::one_line;
use super::discovery::TARGET_PEERS;
use super::keys::PeerKeys;
use super::reach::Relays;
use super::redial::Redial;
use super::requests::Pending;
use super::snapshot::*;
use super::swarm::*;
use crate::consensus::Network;
use crate::core::limit::RequestLimiter;
use crate::core::{NetAction, NetEvent, Offence, Verdict};
use crate::protocol::{FrameError, GossipKind, SyncResponse, blocks_topic, txs_topic};

/// Capacity of the command channel into this task.
pub const COMMAND_CAPACITY: usize = 4_096;

/// What the node asks the network task to do: the core's actions, and the operator's.
#[derive(Debug)]
pub enum NetCommand {
    /// An action the core decided.
    Core(NetAction),
    /// Disconnect and refuse a peer for a while (the operator's call).
    Ban {
        /// The peer.
        peer: PeerId,
        /// Why (logged and listed).
        reason: String,
    },
    /// Lift a ban early.
    Unban(PeerId),
    /// Dial an address once.
    Dial(Multiaddr),
    /// Keep a peer: dial it now and again whenever it is not connected (the operator's
    /// `POST /peers`).
    AddPeer(Multiaddr),
    /// Stop the task.
    Shutdown,
}

/// Network settings.
#[derive(Debug, Clone)]
pub struct NetConfig {
    /// Network (protocol ids, topics).
    pub network: Network,
    /// Addresses to listen on.
    pub listen: Vec<Multiaddr>,
    /// Peers to dial at start (and add to Kademlia when they carry a peer id).
    pub bootstrap: Vec<Multiaddr>,
    /// Addresses other hosts can reach us at.
    pub external: Vec<Multiaddr>,
    /// How long a banned peer is refused.
    pub ban_duration: Duration,
    /// Where the peer book lives.
    pub data_dir: std::path::PathBuf,
    /// Inbound slots; when full, an inbound peer gives way to a newcomer (net/evict.rs).
    pub max_inbound: usize,
}

/// The task's state besides the swarm.
pub struct Service<E> {
    /// libp2p's own metrics (`libp2p_*`), fed with every swarm and protocol event.
    pub(super) p2p_metrics: Option<libp2p::metrics::Metrics>,
    pub(super) network: Network,
    pub(super) events: SyncSender<E>,
    pub(super) info: Arc<RwLock<NetInfo>>,
    pub(super) pending: Pending,
    pub(super) bans: Vec<(Instant, PeerId)>,
    pub(super) ban_duration: Duration,
    pub(super) keys: PeerKeys,
    pub(super) limiter: RequestLimiter<PeerId>,
    /// When the task started: the limiter's clock.
    pub(super) started: Instant,
    pub(super) blocks: IdentTopic,
    pub(super) txs: IdentTopic,
    pub(super) book: PeerBook,
    pub(super) last_save: Instant,
    pub(super) redial: Redial,
    /// Dials of kept peers in flight: connection -> kept index.
    pub(super) dials: HashMap<ConnectionId, usize>,
    pub(super) max_inbound: usize,
    /// Inbound peers and when they connected.
    pub(super) inbound: HashMap<PeerId, Instant>,
    /// When each peer last relayed something we accepted or answered our request.
    pub(super) useful: HashMap<PeerId, Instant>,
    /// Relays we could use and the slots we hold.
    pub(super) relays: Relays,
    /// The relayed connection kept to each peer reached through a relay, and whether we
    /// dialled it.
    pub(super) relayed: HashMap<PeerId, (ConnectionId, bool)>,
    /// `--external-addr`: never withdrawn whatever AutoNAT says.
    pub(super) configured: Vec<Multiaddr>,
}

/// Runs the network task until [`NetCommand::Shutdown`] or the command channel closes.
/// Events go to `events` as whatever type the consumer wraps them in.
///
/// # Errors
/// [`NetError::Book`] if the peer book cannot be read.
pub fn service<E>(
    config: &NetConfig,
    events: SyncSender<E>,
    info: Arc<RwLock<NetInfo>>,
) -> Result<Service<E>, NetError> {
    Ok(Service {
        p2p_metrics: None,
        network: config.network,
        events,
        info,
        pending: Pending::default(),
        bans: Vec::new(),
        ban_duration: config.ban_duration,
        keys: PeerKeys::default(),
        limiter: RequestLimiter::default(),
        started: Instant::now(),
        blocks: IdentTopic::new(blocks_topic(config.network)),
        txs: IdentTopic::new(txs_topic(config.network)),
        book: PeerBook::load(&config.data_dir)?,
        last_save: Instant::now(),
        redial: Redial::default(),
        dials: HashMap::new(),
        max_inbound: config.max_inbound,
        inbound: HashMap::new(),
        useful: HashMap::new(),
        relays: Relays::default(),
        relayed: HashMap::new(),
        configured: config.external.clone(),
    })
}

/// Runs the network task until [`NetCommand::Shutdown`] or the command channel closes:
/// dials the peer book (anchors first), then keeps the `--bootstrap` peers.
pub async fn run<E: From<NetEvent> + Send + 'static>(
    mut swarm: Swarm<Behaviour>,
    config: NetConfig,
    mut svc: Service<E>,
    mut commands: mpsc::Receiver<NetCommand>,
) {
    let local = *swarm.local_peer_id();
    let known = svc.book.to_dial(&local);
    if !known.is_empty() {
        info!(peers = known.len(), book = svc.book.len(), "dialing peers from the peer book");
    }
    for (peer, addr) in known {
        swarm.behaviour_mut().kad.add_address(&peer, without_peer_id(&addr));
        if let Err(e) = swarm.dial(addr.clone()) {
            debug!(addr = %addr, error = %e, "cannot dial a peer from the book");
        }
    }
    let now = Instant::now();
    for addr in &config.bootstrap {
        if let Some(peer) = peer_id_of(addr) {
            swarm.behaviour_mut().kad.add_address(&peer, without_peer_id(addr));
        }
        svc.redial.add(addr.clone(), Source::Bootstrap, now);
    }
    svc.dial_kept(&mut swarm);
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut ticks = 0u64;
    loop {
        tokio::select! {
            event = swarm.select_next_some() => svc.on_swarm_event(&mut swarm, event),
            command = commands.recv() => match command {
                Some(NetCommand::Shutdown) | None => break,
                Some(command) => svc.on_command(&mut swarm, command),
            },
            _ = tick.tick() => {
                ticks += 1;
                svc.on_tick(&mut swarm, ticks);
            }
        }
    }
    svc.save_book();
    info!("network stopped");
}

impl<E> Service<E> {
    /// Records libp2p's metrics (`libp2p_*`) into `metrics`.
    pub fn with_metrics(mut self, metrics: libp2p::metrics::Metrics) -> Self {
        self.p2p_metrics = Some(metrics);
        self
    }
}

/// Hands a swarm event, and the protocol event inside it, to libp2p's metrics.
fn record(m: &libp2p::metrics::Metrics, event: &SwarmEvent<BehaviourEvent>) {
    use libp2p::metrics::Recorder;
    m.record(event);
    if let SwarmEvent::Behaviour(inner) = event {
        match inner {
            BehaviourEvent::Gossipsub(e) => m.record(e),
            BehaviourEvent::Kad(e) => m.record(e),
            BehaviourEvent::Identify(e) => m.record(e),
            BehaviourEvent::Ping(e) => m.record(e),
            BehaviourEvent::Relay(e) => m.record(e),
            BehaviourEvent::Dcutr(e) => m.record(e),
            _ => {}
        }
    }
}

impl<E: From<NetEvent>> Service<E> {
    /// Hands an event to the core; false if it was dropped.
    pub(super) fn emit(&self, event: NetEvent) -> bool {
        let kind = short(&event);
        match self.events.try_send(event.into()) {
            Ok(()) => true,
            // The core is behind: drop rather than stall the swarm (the caller forgets
            // the event's handles). A dropped response is retried after its timeout.
            Err(TrySendError::Full(_)) => {
                warn!(event = kind, "node core busy, event dropped");
                false
            }
            Err(TrySendError::Disconnected(_)) => {
                debug!("node core gone");
                false
            }
        }
    }

    pub(super) fn on_tick(&mut self, swarm: &mut Swarm<Behaviour>, ticks: u64) {
        let now = Instant::now();
        let (expired, kept): (Vec<_>, Vec<_>) = self.bans.drain(..).partition(|(t, _)| *t <= now);
        self.bans = kept;
        for (_, peer) in expired {
            swarm.behaviour_mut().blocked.unblock_peer(peer);
            if let Ok(mut i) = self.info.write() {
                i.bans.remove(&peer);
            }
            info!(peer = %peer, "ban expired");
        }
        // A random walk every 10 s while short of peers keeps discovery going.
        if ticks.is_multiple_of(10) && swarm.connected_peers().count() < TARGET_PEERS {
            swarm.behaviour_mut().kad.get_closest_peers(PeerId::random());
        }
        self.dial_kept(swarm);
        if self.book.is_dirty() && self.last_save.elapsed() >= SAVE_EVERY {
            self.save_book();
        }
    }

    pub(super) fn on_command(&mut self, swarm: &mut Swarm<Behaviour>, command: NetCommand) {
        match command {
            NetCommand::Core(action) => self.on_action(swarm, action),
            NetCommand::Ban { peer, reason } => self.ban(swarm, peer, reason),
            NetCommand::Unban(peer) => {
                swarm.behaviour_mut().blocked.unblock_peer(peer);
                self.bans.retain(|(_, p)| *p != peer);
                if let Ok(mut i) = self.info.write() {
                    i.bans.remove(&peer);
                }
                info!(peer = %peer, "ban lifted");
            }
            NetCommand::Dial(addr) => {
                if let Err(e) = swarm.dial(addr.clone()) {
                    warn!(addr = %addr, error = %e, "dial failed");
                }
            }
            NetCommand::AddPeer(addr) => {
                if self.redial.add(addr.clone(), Source::Operator, Instant::now()) {
                    info!(addr = %addr, "peer added: dialing it and keeping it connected");
                    self.dial_kept(swarm);
                }
            }
            NetCommand::Shutdown => {}
        }
    }

    /// Carries out an action of the core.
    pub(super) fn on_action(&mut self, swarm: &mut Swarm<Behaviour>, action: NetAction) {
        let b = swarm.behaviour_mut();
        match action {
            NetAction::Publish { kind, data } => {
                let topic = match kind {
                    GossipKind::Block => self.blocks.clone(),
                    GossipKind::Tx => self.txs.clone(),
                };
                match b.gossipsub.publish(topic, data) {
                    Ok(_) | Err(gossipsub::PublishError::Duplicate) => {}
                    Err(gossipsub::PublishError::NoPeersSubscribedToTopic) => {
                        debug!(?kind, "no peers to gossip to")
                    }
                    Err(e) => warn!(?kind, error = %e, "gossip publish failed"),
                }
            }
            NetAction::Request(ask) => {
                let Some(peer) = self.keys.id(ask.peer) else {
                    // Gone for long: fail the request at once rather than at its timeout.
                    self.emit(NetEvent::RequestFailed {
                        id: ask.id,
                        peer: ask.peer,
                        timed_out: false,
                    });
                    return;
                };
                debug!(peer = %peer, req = %ask.req, "sync request out: {}", ask.req);
                let request_id = b.sync.send_request(&peer, Inbound::Request(ask.req));
                self.pending.outbound.insert(request_id, ask.id);
            }
            NetAction::Respond { id, resp } => {
                if let Some((channel, peer)) = self.pending.inbound.remove(&id) {
                    self.limiter.answered(&peer);
                    // Fails only if the peer is gone; nothing to do then.
                    let _ = b.sync.send_response(channel, resp);
                }
            }
            NetAction::Validate { id, verdict } => {
                if let Some((msg_id, source)) = self.pending.gossip.remove(&id) {
                    if verdict == Verdict::Accept {
                        self.useful.insert(source, Instant::now());
                    }
                    let acceptance = match verdict {
                        Verdict::Accept => MessageAcceptance::Accept,
                        Verdict::Ignore => MessageAcceptance::Ignore,
                        Verdict::Reject => MessageAcceptance::Reject,
                    };
                    b.gossipsub.report_message_validation_result(&msg_id, &source, acceptance);
                }
            }
            NetAction::Ban { peer, offence } => match self.keys.id(peer) {
                Some(id) => self.ban(swarm, id, offence.to_string()),
                None => debug!(%peer, reason = %offence, "ban for a peer long gone"),
            },
        }
    }

    pub(super) fn on_swarm_event(
        &mut self,
        swarm: &mut Swarm<Behaviour>,
        event: SwarmEvent<BehaviourEvent>,
    ) {
        if let Some(m) = &self.p2p_metrics {
            record(m, &event);
        }
        match event {
            SwarmEvent::NewListenAddr { address, .. } => {
                record_listen_addr(&self.info, &address, *swarm.local_peer_id());
            }
            SwarmEvent::ExpiredListenAddr { address, .. } => {
                let full = with_peer_id(&address, *swarm.local_peer_id());
                debug!(addr = %full, "listen address expired");
                if let Ok(mut i) = self.info.write() {
                    i.listen_addrs.retain(|a| *a != full);
                }
            }
            SwarmEvent::ConnectionEstablished {
                peer_id,
                endpoint,
                num_established,
                connection_id,
                ..
            } => {
                let kept = self.dials.remove(&connection_id);
                if let Some(i) = kept {
                    self.redial.connected(i, peer_id);
                }
                let relayed = endpoint.is_relayed();
                // Only AutoNAT dials from a fresh port (ours reuse the listen port, for
                // hole punching): a dial-back has served once established; a peer is not
                // kept on a second connection for it.
                if let libp2p::core::ConnectedPoint::Dialer { port_use: PortUse::New, .. } =
                    endpoint
                    && num_established.get() > 1
                {
                    debug!(peer = %peer_id, "closing the AutoNAT dial-back connection");
                    swarm.close_connection(connection_id);
                    return;
                }
                if num_established.get() > 1 && !relayed {
                    self.upgraded(peer_id, endpoint.get_remote_address(), endpoint.is_dialer());
                }
                if relayed && !self.one_relayed(swarm, peer_id, connection_id, endpoint.is_dialer())
                {
                    return;
                }
                if num_established.get() == 1 {
                    let addr = endpoint.get_remote_address().clone();
                    let outbound = endpoint.is_dialer();
                    let source = match (kept.and_then(|i| self.redial.get(i)), outbound) {
                        (Some(k), _) => k.source,
                        (None, true) => {
                            self.book.get(&peer_id).map_or(Source::Kademlia, |e| e.source)
                        }
                        (None, false) => Source::Inbound,
                    };
                    let unix = crate::node::unix_now();
                    self.book.connected(peer_id, &addr, outbound, source, unix);
                    let key = self.keys.connect(peer_id);
                    let mut peers = 0;
                    if let Ok(mut i) = self.info.write() {
                        let info = PeerInfo {
                            key,
                            addr: addr.clone(),
                            outbound,
                            source,
                            agent: None,
                            relayed,
                        };
                        i.peers.insert(peer_id, info);
                        peers = i.peers.len();
                    }
                    info!(
                        peer = %peer_id,
                        addr = %addr,
                        outbound,
                        relayed,
                        peers,
                        "peer connected ({peers} connected)"
                    );
                    self.emit(NetEvent::Connected { peer: key });
                    if !outbound {
                        self.make_room(swarm, peer_id);
                    }
                }
            }
            SwarmEvent::ConnectionClosed { peer_id, connection_id, num_established, .. }
                if num_established > 0 =>
            {
                if self.relayed.get(&peer_id).is_some_and(|(c, _)| *c == connection_id) {
                    self.relayed.remove(&peer_id);
                }
            }
            SwarmEvent::ConnectionClosed { peer_id, cause, .. } => {
                self.relayed.remove(&peer_id);
                let mut peers = 0;
                if let Ok(mut i) = self.info.write() {
                    i.peers.remove(&peer_id);
                    peers = i.peers.len();
                }
                // No cause: one side closed the connection on purpose (a ban, eviction,
                // shutdown, or the peer going away cleanly).
                let cause = cause.map_or_else(|| "closed".to_owned(), |c| c.to_string());
                info!(peer = %peer_id, peers, cause, "peer disconnected ({peers} left): {cause}");
                if let Some(i) = self.redial.disconnected(&peer_id, Instant::now())
                    && let Some(k) = self.redial.get(i)
                {
                    info!(peer = %peer_id, addr = %k.addr, "kept peer disconnected, redialing in 1 s");
                }
                self.limiter.forget(&peer_id);
                self.inbound.remove(&peer_id);
                self.useful.remove(&peer_id);
                self.relays.gone(&peer_id);
                if let Some(key) = self.keys.disconnect(&peer_id) {
                    self.emit(NetEvent::Disconnected { peer: key });
                }
            }
            SwarmEvent::OutgoingConnectionError { peer_id, error, connection_id } => {
                if let Some(peer) = peer_id {
                    self.book.failed(&peer);
                }
                match self.dials.remove(&connection_id) {
                    Some(i) => {
                        let wait = self.redial.failed(i, Instant::now());
                        if let Some(k) = self.redial.get(i) {
                            info!(
                                addr = %k.addr,
                                error = %one_line(&error),
                                retry_in_secs = wait.as_secs(),
                                "cannot reach {} peer {}, retrying in {} s",
                                if k.source == Source::Bootstrap { "bootstrap" } else { "added" },
                                k.addr,
                                wait.as_secs()
                            );
                        }
                    }
                    None => debug!(peer = ?peer_id, error = %error, "outgoing connection failed"),
                }
            }
            SwarmEvent::ExternalAddrConfirmed { address } => {
                let known = self.info.read().is_ok_and(|i| i.external_addrs.contains(&address));
                if known {
                    debug!(addr = %address, "external address confirmed again");
                } else {
                    info!(addr = %address, "advertising external address");
                    self.external_changed(swarm);
                }
            }
            SwarmEvent::ExternalAddrExpired { address } => {
                info!(addr = %address, "no longer advertising external address");
                self.external_changed(swarm);
            }
            SwarmEvent::ListenerClosed { listener_id, reason, .. } => {
                self.listener_closed(swarm, listener_id, reason.err().map(|e| e.to_string()));
            }
            SwarmEvent::ListenerError { listener_id, error } => {
                self.listener_closed(swarm, listener_id, Some(error.to_string()));
            }
            SwarmEvent::Behaviour(event) => self.on_behaviour_event(swarm, event),
            other => trace!(event = ?other, "swarm event"),
        }
    }

    pub(super) fn on_behaviour_event(
        &mut self,
        swarm: &mut Swarm<Behaviour>,
        event: BehaviourEvent,
    ) {
        match event {
            BehaviourEvent::Identify(identify::Event::Received { peer_id, info, .. }) => {
                self.on_identify(swarm, peer_id, info);
            }
            BehaviourEvent::Kad(kad::Event::RoutingUpdated {
                peer,
                addresses,
                is_new_peer,
                ..
            }) => {
                if is_new_peer {
                    debug!(peer = %peer, "discovered via kademlia");
                }
                self.book.learned(peer, addresses.iter().cloned(), Source::Kademlia);
                let connected = swarm.connected_peers().count();
                if !swarm.is_connected(&peer) && connected < TARGET_PEERS {
                    let addr = with_peer_id(addresses.first(), peer);
                    info!(peer = %peer, addr = %addr, "dialing peer found by kademlia");
                    let _ = swarm.dial(addr);
                }
            }
            BehaviourEvent::Gossipsub(gossipsub::Event::Message {
                propagation_source,
                message_id,
                message,
            }) => {
                let kind = if message.topic == self.blocks.hash() {
                    GossipKind::Block
                } else if message.topic == self.txs.hash() {
                    GossipKind::Tx
                } else {
                    return;
                };
                let id = self.pending.id();
                let Some(peer) = self.keys.key(&propagation_source) else {
                    swarm.behaviour_mut().gossipsub.report_message_validation_result(
                        &message_id,
                        &propagation_source,
                        MessageAcceptance::Ignore,
                    );
                    return;
                };
                self.pending.gossip.insert(id, (message_id.clone(), propagation_source));
                let event = NetEvent::Gossip { id, peer, kind, data: message.data };
                if !self.emit(event) {
                    self.pending.gossip.remove(&id);
                    swarm.behaviour_mut().gossipsub.report_message_validation_result(
                        &message_id,
                        &propagation_source,
                        MessageAcceptance::Ignore,
                    );
                }
            }
            BehaviourEvent::Sync(request_response::Event::Message { peer, message, .. }) => {
                match message {
                    request_response::Message::Request { request, channel, .. } => {
                        self.on_request(swarm, peer, request, channel);
                    }
                    request_response::Message::Response { request_id, response } => {
                        // Serving headers or blocks is useful; a status answer is not (every
                        // peer gives one on connect).
                        let served = match &response {
                            SyncResponse::Headers(h) => !h.is_empty(),
                            SyncResponse::Blocks(b) => !b.is_empty(),
                            _ => false,
                        };
                        if served {
                            self.useful.insert(peer, Instant::now());
                        }
                        if let Some(id) = self.pending.outbound.remove(&request_id)
                            && let Some(peer) = self.keys.key(&peer)
                        {
                            self.emit(NetEvent::Response { id, peer, resp: response });
                        }
                    }
                }
            }
            BehaviourEvent::Sync(request_response::Event::OutboundFailure {
                peer,
                request_id,
                error,
                ..
            }) => {
                // The codec's own errors carry a FrameError: the peer's fault. Other I/O
                // errors (reset, closed) are nobody's.
                let Some(key) = self.keys.key(&peer) else { return };
                if let request_response::OutboundFailure::Io(e) = &error
                    && let Some(frame) = e.get_ref().and_then(|e| e.downcast_ref::<FrameError>())
                {
                    let offence = Offence::from(frame.clone());
                    self.emit(NetEvent::Misbehaved { peer: key, offence });
                }
                if let Some(id) = self.pending.outbound.remove(&request_id) {
                    debug!(peer = %peer, %error, "sync request failed");
                    let timed_out = matches!(error, request_response::OutboundFailure::Timeout);
                    self.emit(NetEvent::RequestFailed { id, peer: key, timed_out });
                }
            }
            BehaviourEvent::Sync(request_response::Event::InboundFailure {
                peer, error, ..
            }) => {
                debug!(peer = %peer, error = %error, "inbound sync request failed");
            }
            BehaviourEvent::Autonat(autonat::Event::StatusChanged { old, new }) => {
                self.reachability_changed(swarm, old, new);
            }
            BehaviourEvent::RelayClient(relay::client::Event::ReservationReqAccepted {
                relay_peer_id,
                renewal: false,
                ..
            }) => {
                if let Some(addr) = self.relays.accepted(&relay_peer_id) {
                    let full = with_peer_id(&addr, *swarm.local_peer_id());
                    info!(relay = %relay_peer_id, addr = %full, "relay slot reserved: reachable through {full}");
                    self.publish_relays();
                }
            }
            BehaviourEvent::Dcutr(dcutr::Event { remote_peer_id, result }) => match result {
                Ok(_) => {
                    info!(peer = %remote_peer_id, "direct connection through hole punching (DCUtR)")
                }
                Err(error) => {
                    info!(peer = %remote_peer_id, %error, "hole punch failed: the connection stays relayed")
                }
            },
            BehaviourEvent::Ping(ping::Event { peer, connection, result: Err(error) }) => {
                debug!(peer = %peer, error = %error, "ping failed, closing connection");
                swarm.close_connection(connection);
            }
            other => trace!(event = ?other, "behaviour event"),
        }
    }
}

/// A short description of an event for logs (without payloads).
fn short(e: &NetEvent) -> &'static str {
    match e {
        NetEvent::Connected { .. } => "connected",
        NetEvent::Disconnected { .. } => "disconnected",
        NetEvent::Gossip { .. } => "gossip",
        NetEvent::Request { .. } => "request",
        NetEvent::Response { .. } => "response",
        NetEvent::RequestFailed { .. } => "request-failed",
        NetEvent::Misbehaved { .. } => "misbehaved",
    }
}
