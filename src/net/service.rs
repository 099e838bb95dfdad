//! The network task: owns the Swarm, turns swarm events into [`NetEvent`]s for the node
//! core, and carries out the core's [`NetCommand`]s. It carries; it never decides.
//!
//! Libp2p handles that must be used from this task (response channels, gossip message
//! ids) stay here in maps keyed by a plain `u64`, so the core only ever sees ids.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::mpsc::{SyncSender, TrySendError};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use futures::StreamExt;
use libp2p::core::transport::{ListenerId, PortUse};
use libp2p::gossipsub::{self, IdentTopic, MessageAcceptance, MessageId};
use libp2p::multiaddr::Protocol;
use libp2p::request_response::{self, OutboundRequestId, ResponseChannel};
use libp2p::swarm::dial_opts::DialOpts;
use libp2p::swarm::{ConnectionId, SwarmEvent};
use libp2p::{
    Multiaddr, PeerId, Swarm, autonat, dcutr, identify, kad, noise, ping, relay, tcp, yamux,
};
use tokio::sync::mpsc;
use tracing::{debug, info, trace, warn};

use super::addr::{is_local, peer_id_of, with_peer_id, without_peer_id};
use super::behaviour::{self, Behaviour, BehaviourEvent};
use super::book::{BookError, PeerBook, SAVE_EVERY, Source};
use super::codec::Inbound;
use super::evict::{Candidate, victim};
use super::keys::PeerKeys;
use super::reach::{Reachability, Relays};
use super::redial::Redial;
use crate::consensus::Network;
use crate::core::limit::RequestLimiter;
use crate::core::{NetAction, NetEvent, Offence, Verdict};
use crate::primitives::{PeerKey, Time};
use crate::protocol::{
    FrameError, GossipKind, SyncResponse, blocks_topic, kad_protocol, txs_topic,
};

/// How long a new connection may take to finish its handshake (noise, yamux) before it
/// is dropped: an idle socket holds a pending slot no longer than this.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
/// Peers we try to stay connected to; below this, discovered peers are dialled.
pub const TARGET_PEERS: usize = 8;
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
}

/// The network's state, shared read-only with the API.
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
    /// Whether others can dial us (AutoNAT's verdict).
    pub reachability: Reachability,
    /// Addresses we advertise: confirmed by AutoNAT or a relay, or configured.
    pub external_addrs: Vec<Multiaddr>,
    /// Our addresses through relays that hold a slot for us.
    pub relay_addrs: Vec<Multiaddr>,
}

/// A ban as the API shows it.
#[derive(Debug, Clone)]
pub struct BanInfo {
    /// The offence that reached the threshold (or the operator's reason).
    pub reason: String,
    /// When the ban lifts.
    pub until: std::time::SystemTime,
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

/// Why the network could not start.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// Building the transport or behaviour failed.
    #[error("cannot build the libp2p swarm: {0}")]
    Build(Box<dyn std::error::Error + Send + Sync>),
    /// The peer book could not be read.
    #[error(transparent)]
    Book(#[from] BookError),
    /// Listening failed (address in use, bad address).
    #[error("cannot listen on {addr}: {error}")]
    Listen {
        /// The address.
        addr: Multiaddr,
        /// Why.
        error: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// Builds the swarm and starts listening. Returns once every listen address is bound, so
/// the caller can print the addresses straight away.
///
/// # Errors
/// [`NetError`] if the swarm cannot be built or an address cannot be bound.
pub async fn start(
    key: libp2p::identity::Keypair,
    config: &NetConfig,
    info: &Arc<RwLock<NetInfo>>,
) -> Result<Swarm<Behaviour>, NetError> {
    let network = config.network;
    let mut swarm = libp2p::SwarmBuilder::with_existing_identity(key)
        .with_tokio()
        .with_tcp(tcp::Config::default(), noise::Config::new, yamux::Config::default)
        .map_err(|e| NetError::Build(e.into()))?
        .with_dns()
        .map_err(|e| NetError::Build(e.into()))?
        .with_relay_client(noise::Config::new, yamux::Config::default)
        .map_err(|e| NetError::Build(e.into()))?
        .with_behaviour(|key, relay| behaviour::build(key, relay, network, config.max_inbound))
        .map_err(|e| NetError::Build(e.into()))?
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(60)))
        .with_connection_timeout(HANDSHAKE_TIMEOUT)
        .build();
    let local = *swarm.local_peer_id();
    for addr in &config.listen {
        probe_port(addr)?;
        swarm
            .listen_on(addr.clone())
            .map_err(|e| NetError::Listen { addr: addr.clone(), error: e.into() })?;
    }
    let mut bound = 0;
    while bound < config.listen.len() {
        match swarm.select_next_some().await {
            SwarmEvent::NewListenAddr { address, .. } => {
                bound += 1;
                record_listen_addr(info, &address, local);
            }
            SwarmEvent::ListenerError { error, .. }
            | SwarmEvent::ListenerClosed { reason: Err(error), .. } => {
                return Err(NetError::Listen {
                    addr: config.listen[0].clone(),
                    error: error.into(),
                });
            }
            other => trace!(event = ?other, "swarm event before listening"),
        }
    }
    for addr in &config.external {
        swarm.add_external_address(addr.clone());
    }
    if let Ok(mut i) = info.write() {
        i.peer_id = Some(local);
    }
    Ok(swarm)
}

/// Fails if another process holds the TCP port of `addr`. libp2p listens with
/// SO_REUSEPORT, so a second node on the same port would otherwise start and silently
/// share incoming connections with the first; a plain bind without it detects that.
fn probe_port(addr: &Multiaddr) -> Result<(), NetError> {
    let mut ip = None;
    let mut port = None;
    for p in addr.iter() {
        match p {
            Protocol::Ip4(a) => ip = Some(std::net::IpAddr::V4(a)),
            Protocol::Ip6(a) => ip = Some(std::net::IpAddr::V6(a)),
            Protocol::Tcp(p) => port = Some(p),
            _ => {}
        }
    }
    match (ip, port) {
        (Some(ip), Some(port)) if port != 0 => std::net::TcpListener::bind((ip, port))
            .map(drop)
            .map_err(|e| NetError::Listen { addr: addr.clone(), error: e.into() }),
        _ => Ok(()),
    }
}

fn record_listen_addr(info: &Arc<RwLock<NetInfo>>, address: &Multiaddr, local: PeerId) {
    let full = with_peer_id(address, local);
    info!(addr = %full, "listening");
    if let Ok(mut i) = info.write() {
        i.listen_addrs.push(full);
    }
}

/// Pending libp2p handles, keyed by the ids the core sees.
#[derive(Default)]
struct Pending {
    next_id: u64,
    gossip: HashMap<u64, (MessageId, PeerId)>,
    inbound: HashMap<u64, (ResponseChannel<SyncResponse>, PeerId)>,
    outbound: HashMap<OutboundRequestId, u64>,
}

impl Pending {
    fn id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }
}

/// The task's state besides the swarm.
pub struct Service<E> {
    /// libp2p's own metrics (`libp2p_*`), fed with every swarm and protocol event.
    p2p_metrics: Option<libp2p::metrics::Metrics>,
    network: Network,
    events: SyncSender<E>,
    info: Arc<RwLock<NetInfo>>,
    pending: Pending,
    bans: Vec<(Instant, PeerId)>,
    ban_duration: Duration,
    keys: PeerKeys,
    limiter: RequestLimiter<PeerId>,
    /// When the task started: the limiter's clock.
    started: Instant,
    blocks: IdentTopic,
    txs: IdentTopic,
    book: PeerBook,
    last_save: Instant,
    redial: Redial,
    /// Dials of kept peers in flight: connection -> kept index.
    dials: HashMap<ConnectionId, usize>,
    max_inbound: usize,
    /// Inbound peers and when they connected.
    inbound: HashMap<PeerId, Instant>,
    /// When each peer last relayed something we accepted or answered our request.
    useful: HashMap<PeerId, Instant>,
    /// Relays we could use and the slots we hold.
    relays: Relays,
    /// The relayed connection kept to each peer reached through a relay, and whether we
    /// dialled it.
    relayed: HashMap<PeerId, (ConnectionId, bool)>,
    /// `--external-addr`: never withdrawn whatever AutoNAT says.
    configured: Vec<Multiaddr>,
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
    /// Dials the kept peers that are due.
    fn dial_kept(&mut self, swarm: &mut Swarm<Behaviour>) {
        let now = Instant::now();
        for i in self.redial.due(now) {
            let Some(kept) = self.redial.get(i).cloned() else { continue };
            let opts = match kept.peer {
                Some(peer) => {
                    DialOpts::peer_id(peer).addresses(vec![without_peer_id(&kept.addr)]).build()
                }
                None => DialOpts::unknown_peer_id().address(kept.addr.clone()).build(),
            };
            let id = opts.connection_id();
            match swarm.dial(opts) {
                Ok(()) => {
                    debug!(addr = %kept.addr, "dialing kept peer");
                    self.dials.insert(id, i);
                }
                Err(e) => {
                    let wait = self.redial.failed(i, now);
                    info!(addr = %kept.addr, error = %e, retry_in_secs = wait.as_secs(), "cannot dial {:?} peer, retrying", kept.source);
                }
            }
        }
    }

    /// A new inbound peer arrived: if that overfills the inbound slots, the least useful
    /// inbound peer gives way (or the newcomer, if every other one is protected).
    fn make_room(&mut self, swarm: &mut Swarm<Behaviour>, newcomer: PeerId) {
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

    /// Writes the peer book with the outbound peers as anchors.
    fn save_book(&mut self) {
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

    /// Hands an event to the core; false if it was dropped.
    fn emit(&self, event: NetEvent) -> bool {
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

    fn on_tick(&mut self, swarm: &mut Swarm<Behaviour>, ticks: u64) {
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

    fn on_command(&mut self, swarm: &mut Swarm<Behaviour>, command: NetCommand) {
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
    fn on_action(&mut self, swarm: &mut Swarm<Behaviour>, action: NetAction) {
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

    fn ban(&mut self, swarm: &mut Swarm<Behaviour>, peer: PeerId, reason: String) {
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

    fn on_swarm_event(&mut self, swarm: &mut Swarm<Behaviour>, event: SwarmEvent<BehaviourEvent>) {
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

    fn on_behaviour_event(&mut self, swarm: &mut Swarm<Behaviour>, event: BehaviourEvent) {
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

    /// An inbound sync request: malformed ones and those over the peer's rate are
    /// reported to the core (and never answered); the rest go to the core to answer.
    fn on_request(
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

    /// Two NATed peers that find each other at once each dial the other's relayed address,
    /// and two hole punches on the same ports would spoil each other: both sides keep the
    /// relayed connection dialled by the smaller peer id, whichever came up first, and
    /// close the other. False if the new connection was the one closed.
    fn one_relayed(
        &mut self,
        swarm: &mut Swarm<Behaviour>,
        peer: PeerId,
        new: ConnectionId,
        we_dialled: bool,
    ) -> bool {
        let local = *swarm.local_peer_id();
        let kept = |dialled_by_us: bool| dialled_by_us == (local < peer);
        match self.relayed.get(&peer).copied() {
            None => {
                self.relayed.insert(peer, (new, we_dialled));
                true
            }
            Some((old, old_dialled)) if kept(we_dialled) && !kept(old_dialled) => {
                debug!(%peer, "closing the other relayed connection to a peer");
                swarm.close_connection(old);
                self.relayed.insert(peer, (new, we_dialled));
                true
            }
            Some(_) if !kept(we_dialled) => {
                debug!(%peer, "closing the second relayed connection to a peer");
                swarm.close_connection(new);
                false
            }
            Some(_) => true,
        }
    }

    /// A second, direct connection to a peer we reached through a relay (a hole punch, or
    /// a dial that got through): the peer list shows the direct one.
    fn upgraded(&self, peer: PeerId, addr: &Multiaddr, outbound: bool) {
        if let Ok(mut i) = self.info.write()
            && let Some(p) = i.peers.get_mut(&peer)
            && p.relayed
        {
            p.addr = addr.clone();
            p.outbound = outbound;
            p.relayed = false;
        }
    }

    /// AutoNAT changed its mind. Public: the address is confirmed (libp2p adds it), any
    /// relay slots are given up. Private: an address confirmed before is withdrawn (unless
    /// configured) and relay slots are sought.
    fn reachability_changed(
        &mut self,
        swarm: &mut Swarm<Behaviour>,
        old: autonat::NatStatus,
        new: autonat::NatStatus,
    ) {
        let reach = match new {
            autonat::NatStatus::Public(addr) => {
                info!(addr = %addr, "reachable at {addr}");
                for listener in self.relays.listeners() {
                    swarm.remove_listener(listener);
                }
                Reachability::Public(addr)
            }
            autonat::NatStatus::Private => {
                info!(
                    "not reachable from outside: peers cannot dial in; outbound connections still work; see docs/operations.md"
                );
                if let autonat::NatStatus::Public(addr) = old
                    && !self.configured.contains(&addr)
                {
                    swarm.remove_external_address(&addr);
                }
                Reachability::Private
            }
            autonat::NatStatus::Unknown => {
                debug!("reachability unknown again");
                Reachability::Unknown
            }
        };
        if let Ok(mut i) = self.info.write() {
            i.reachability = reach;
        }
        self.reserve_relays(swarm);
    }

    /// While we are not reachable, asks relays among our peers for slots, up to
    /// [`super::reach::MAX_RELAYS`].
    fn reserve_relays(&mut self, swarm: &mut Swarm<Behaviour>) {
        let private = self.info.read().is_ok_and(|i| i.reachability == Reachability::Private);
        if !private {
            return;
        }
        for (relay, circuit) in self.relays.wanted(Instant::now()) {
            match swarm.listen_on(circuit.clone()) {
                Ok(listener) => {
                    info!(relay = %relay, addr = %circuit, "asking a relay for a slot");
                    self.relays.asked(listener, relay, circuit);
                }
                Err(e) => debug!(relay = %relay, error = %e, "cannot listen through relay"),
            }
        }
    }

    /// A listener closed; a relay's means our slot there is gone.
    fn listener_closed(
        &mut self,
        swarm: &mut Swarm<Behaviour>,
        listener: ListenerId,
        error: Option<String>,
    ) {
        if let Some(relay) = self.relays.closed(listener, Instant::now()) {
            info!(relay = %relay, error = ?error, "relay slot lost");
            self.publish_relays();
            self.reserve_relays(swarm);
        } else {
            debug!(?listener, error = ?error, "listener closed");
        }
    }

    fn publish_relays(&self) {
        if let Ok(mut i) = self.info.write() {
            i.relay_addrs = self.relays.addrs();
        }
    }

    /// Our advertised addresses changed: show them, and tell connected peers at once.
    fn external_changed(&self, swarm: &mut Swarm<Behaviour>) {
        let addrs: Vec<Multiaddr> = swarm.external_addresses().cloned().collect();
        if let Ok(mut i) = self.info.write() {
            i.external_addrs = addrs;
        }
        let peers: Vec<PeerId> = swarm.connected_peers().copied().collect();
        swarm.behaviour_mut().identify.push(peers);
    }

    /// Feeds a server-mode peer's listen addresses into Kademlia (it never learns the
    /// addresses of peers that dialled us), leaving out loopback and private addresses
    /// unless our connection to that peer is itself local.
    fn on_identify(&mut self, swarm: &mut Swarm<Behaviour>, peer: PeerId, info: identify::Info) {
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

/// A dial error as the operator needs it: the root cause of each address's failure
/// ("Connection refused (os error 111)"), not libp2p's nested wrappers.
fn one_line(e: &libp2p::swarm::DialError) -> String {
    fn root(mut e: &dyn std::error::Error) -> String {
        while let Some(source) = e.source() {
            e = source;
        }
        e.to_string()
    }
    match e {
        libp2p::swarm::DialError::Transport(errors) => {
            let mut causes: Vec<String> = errors.iter().map(|(_, e)| root(e)).collect();
            causes.dedup();
            causes.join("; ")
        }
        e => root(e),
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
