//! The network task's loop: commands in, events out, the tick. It owns the Swarm and hands
//! each swarm event to the concern that handles it; it carries, it never decides.
//!
//! | concern            | file                | state                                   |
//! |--------------------|---------------------|-----------------------------------------|
//! | connections        | `connections.rs`    | [`Connections`]: peers, keys, kept peers |
//! | requests, answers  | `requests.rs`       | [`Requests`]: ids, channels, rate limit  |
//! | gossip             | `gossip.rs`         | [`Gossip`]: topics, messages to validate |
//! | discovery          | `discovery.rs`      | [`Discovery`]: the peer book             |
//! | reachability       | `reach.rs`          | [`Reach`]: AutoNAT, relays, DCUtR        |
//! | bans               | `bans.rs`           | [`Bans`]                                 |
//! | inbound admission  | `inbound/`          | [`Admission`]: slots, eviction           |
//! | the API's view     | `snapshot.rs`       | [`NetInfo`], published after each change |
//!
//! Libp2p handles that must be used from this task (response channels, gossip message
//! ids) stay here in maps keyed by a plain `u64`, so the core only ever sees ids.

use std::sync::mpsc::{SyncSender, TrySendError};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use futures::StreamExt;
use libp2p::swarm::SwarmEvent;
use libp2p::{Multiaddr, PeerId, Swarm, autonat, dcutr, identify, kad, ping, relay};
use tokio::sync::mpsc;
use tracing::{debug, info, trace, warn};

use super::bans::Bans;
use super::behaviour::{Behaviour, BehaviourEvent};
use super::connections::Connections;
use super::discovery::Discovery;
use super::gossip::Gossip;
use super::inbound::Admission;
use super::reach::Reach;
use super::requests::Requests;
use super::snapshot::NetInfo;
use super::swarm::NetError;
use crate::consensus::Network;
use crate::core::{NetAction, NetEvent};

/// Capacity of the command channel into this task.
pub const COMMAND_CAPACITY: usize = 4_096;
/// The task's tick: bans expire, kept peers are redialled, the book is saved.
const TICK: Duration = Duration::from_secs(1);

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
    /// Stop keeping the peers at an address or with an id, and close their connections
    /// (the operator's `POST /peers/remove`).
    RemovePeer {
        /// The address as added (with or without `/p2p`).
        addr: Option<Multiaddr>,
        /// The peer id.
        peer: Option<PeerId>,
    },
    /// Close a peer's connections; a kept peer is redialled later, any other may come back
    /// (the operator's `POST /peers/disconnect`).
    Disconnect(PeerId),
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
    /// Inbound slots; when full, an inbound peer gives way to a newcomer
    /// (net/inbound/evict.rs).
    pub max_inbound: usize,
    /// Ban kept peers (`--bootstrap`, `peers add`) like any other; by default an offence
    /// that would ban one only disconnects it (`--ban-kept-peers`).
    pub ban_kept_peers: bool,
    /// Subscribe to compact blocks, and send whole blocks only to peers that do not.
    pub compact_blocks: bool,
    /// Where the bytes sent and received are counted.
    pub bytes: super::P2pBytes,
    /// Where each peer's bytes are counted (the TCP transport counts, `peers` shows).
    pub traffic: super::traffic::Traffic,
}

/// The task's state besides the swarm: one part per concern.
pub struct Service<E> {
    /// libp2p's own metrics (`libp2p_*`), fed with every swarm and protocol event.
    p2p_metrics: Option<libp2p::metrics::Metrics>,
    pub(super) network: Network,
    /// Where events for the core go.
    events: SyncSender<E>,
    /// The snapshot the API reads; written by [`Service::publish`] only.
    pub(super) info: Arc<RwLock<NetInfo>>,
    /// Something the snapshot shows changed since it was last published.
    pub(super) dirty: bool,
    /// Our listen addresses, with `/p2p/<id>`.
    pub(super) listen_addrs: Vec<Multiaddr>,
    /// The last id handed to the core for a request or gossip message.
    next_id: u64,
    pub(super) conns: Connections,
    pub(super) requests: Requests,
    pub(super) gossip: Gossip,
    pub(super) discovery: Discovery,
    pub(super) reach: Reach,
    pub(super) bans: Bans,
    pub(super) admission: Admission,
}

/// Prepares the network task's state; `info` is the snapshot [`super::swarm::start`]
/// began. Events go to `events` as whatever type the consumer wraps them in.
///
/// # Errors
/// [`NetError::Book`] if the peer book cannot be read.
pub fn service<E>(
    config: &NetConfig,
    events: SyncSender<E>,
    info: Arc<RwLock<NetInfo>>,
) -> Result<Service<E>, NetError> {
    let listen_addrs = info.read().map(|i| i.listen_addrs.clone()).unwrap_or_default();
    Ok(Service {
        p2p_metrics: None,
        network: config.network,
        events,
        info,
        dirty: false,
        listen_addrs,
        next_id: 0,
        conns: Connections::new(config.ban_kept_peers, config.traffic.clone()),
        requests: Requests::default(),
        gossip: Gossip::new(config.network, config.compact_blocks, config.bytes.clone()),
        discovery: Discovery::load(&config.data_dir)?,
        reach: Reach::new(config.external.clone()),
        bans: Bans::new(config.ban_duration),
        admission: Admission::new(config.max_inbound),
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
    svc.dial_book(&mut swarm);
    svc.keep_bootstrap(&mut swarm, &config.bootstrap);
    let mut tick = tokio::time::interval(TICK);
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
        svc.publish(&swarm);
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

    /// A fresh id for a request or gossip message the core is handed.
    pub(super) fn next_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    fn on_tick(&mut self, swarm: &mut Swarm<Behaviour>, ticks: u64) {
        self.expire_bans(swarm);
        self.random_walk(swarm, ticks);
        self.dial_kept(swarm);
        self.save_book_if_due();
    }

    fn on_command(&mut self, swarm: &mut Swarm<Behaviour>, command: NetCommand) {
        match command {
            NetCommand::Core(action) => self.on_action(swarm, action),
            NetCommand::Ban { peer, reason } => self.ban(swarm, peer, reason),
            NetCommand::Unban(peer) => self.unban(swarm, peer),
            NetCommand::Dial(addr) => {
                if let Err(e) = swarm.dial(addr.clone()) {
                    warn!(addr = %addr, error = %e, "dial failed");
                }
            }
            NetCommand::AddPeer(addr) => self.add_kept(swarm, addr),
            NetCommand::RemovePeer { addr, peer } => self.remove_kept(swarm, addr.as_ref(), peer),
            NetCommand::Disconnect(peer) => self.disconnect(swarm, peer, "the operator's call"),
            NetCommand::Shutdown => {}
        }
    }

    /// Carries out an action of the core.
    fn on_action(&mut self, swarm: &mut Swarm<Behaviour>, action: NetAction) {
        match action {
            NetAction::Publish { kind, data } => self.publish_gossip(swarm, kind, data),
            NetAction::Request(ask) => self.send_request(swarm, ask),
            NetAction::Respond { id, resp } => self.respond(swarm, id, resp),
            NetAction::Validate { id, verdict } => self.validate(swarm, id, verdict),
            NetAction::Ban { peer, offence } => match self.conns.keys.id(peer) {
                Some(id) => self.ban(swarm, id, offence.to_string()),
                None => debug!(%peer, reason = %offence, "ban for a peer long gone"),
            },
            NetAction::Disconnect { peer, reason } => match self.conns.keys.id(peer) {
                Some(id) => self.disconnect(swarm, id, &reason),
                None => debug!(%peer, %reason, "disconnect of a peer long gone"),
            },
        }
    }

    fn on_swarm_event(&mut self, swarm: &mut Swarm<Behaviour>, event: SwarmEvent<BehaviourEvent>) {
        if let Some(m) = &self.p2p_metrics {
            record(m, &event);
        }
        match event {
            SwarmEvent::NewListenAddr { address, .. } => self.listen_addr_added(swarm, &address),
            SwarmEvent::ExpiredListenAddr { address, .. } => {
                self.listen_addr_expired(swarm, &address);
            }
            SwarmEvent::ConnectionEstablished {
                peer_id,
                endpoint,
                num_established,
                connection_id,
                ..
            } => self.on_established(swarm, peer_id, &endpoint, num_established, connection_id),
            SwarmEvent::ConnectionClosed {
                peer_id, connection_id, num_established, cause, ..
            } => {
                self.on_closed(peer_id, connection_id, num_established, cause);
            }
            SwarmEvent::OutgoingConnectionError { peer_id, error, connection_id } => {
                self.on_dial_error(peer_id, &error, connection_id);
            }
            SwarmEvent::ExternalAddrConfirmed { address } => {
                self.external_confirmed(swarm, &address);
            }
            SwarmEvent::ExternalAddrExpired { address } => {
                self.external_expired(swarm, &address);
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

    fn on_behaviour_event(&mut self, swarm: &mut Swarm<Behaviour>, event: BehaviourEvent) {
        match event {
            BehaviourEvent::Identify(identify::Event::Received { peer_id, info, .. }) => {
                self.on_identify(swarm, peer_id, info);
            }
            BehaviourEvent::Identify(identify::Event::Sent { peer_id, .. }) => {
                self.identify_sent(swarm, peer_id);
            }
            BehaviourEvent::Kad(kad::Event::RoutingUpdated {
                peer,
                addresses,
                is_new_peer,
                ..
            }) => self.on_routing_updated(swarm, peer, &addresses, is_new_peer),
            BehaviourEvent::Gossipsub(event) => self.on_gossip(swarm, event),
            BehaviourEvent::Sync(event) => self.on_sync(swarm, event),
            BehaviourEvent::Autonat(autonat::Event::StatusChanged { old, new }) => {
                self.reachability_changed(swarm, old, new);
            }
            BehaviourEvent::RelayClient(relay::client::Event::ReservationReqAccepted {
                relay_peer_id,
                renewal: false,
                ..
            }) => self.relay_slot_reserved(swarm, relay_peer_id),
            BehaviourEvent::Dcutr(dcutr::Event { remote_peer_id, result }) => {
                hole_punched(remote_peer_id, &result);
            }
            BehaviourEvent::Ping(ping::Event { peer, result: Ok(rtt), .. }) => {
                self.pinged(peer, rtt);
            }
            BehaviourEvent::Ping(ping::Event { peer, connection, result: Err(error) }) => {
                debug!(peer = %peer, error = %error, "ping failed, closing connection");
                swarm.close_connection(connection);
            }
            other => trace!(event = ?other, "behaviour event"),
        }
    }
}

/// DCUtR's outcome for a relayed connection.
fn hole_punched(peer: PeerId, result: &Result<libp2p::swarm::ConnectionId, dcutr::Error>) {
    match result {
        Ok(_) => info!(peer = %peer, "direct connection through hole punching (DCUtR)"),
        Err(error) => {
            info!(peer = %peer, %error, "hole punch failed: the connection stays relayed")
        }
    }
}

/// A short description of an event for logs (without payloads).
fn short(e: &NetEvent) -> &'static str {
    match e {
        NetEvent::Connected { .. } => "connected",
        NetEvent::Named { .. } => "named",
        NetEvent::Disconnected { .. } => "disconnected",
        NetEvent::Gossip { .. } => "gossip",
        NetEvent::Request { .. } => "request",
        NetEvent::Response { .. } => "response",
        NetEvent::RequestFailed { .. } => "request-failed",
        NetEvent::Misbehaved { .. } => "misbehaved",
        NetEvent::BadFrame { .. } => "bad-frame",
    }
}
