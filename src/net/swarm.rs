//! Building the swarm and binding its listen addresses.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use futures::StreamExt;
use libp2p::multiaddr::Protocol;
use libp2p::swarm::SwarmEvent;
use libp2p::{Multiaddr, PeerId, Swarm, noise, tcp, yamux};
use tracing::{debug, info, trace};

use super::addr::with_peer_id;
use super::behaviour::{self, Behaviour};
use super::book::BookError;
use super::inbound::HANDSHAKE_TIMEOUT;
use super::service::NetConfig;
use super::service::Service;
use super::snapshot::NetInfo;

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
    registry: &mut prometheus_client::registry::Registry,
) -> Result<Swarm<Behaviour>, NetError> {
    let network = config.network;
    let traffic = config.traffic.clone();
    let mut swarm = libp2p::SwarmBuilder::with_existing_identity(key)
        .with_tokio()
        // TCP with noise and yamux, as `with_tcp` builds it, each connection's substreams
        // counting their bytes into its peer's counter (net/traffic.rs).
        .with_other_transport(|key| -> Result<_, Box<dyn std::error::Error + Send + Sync>> {
            use libp2p::Transport;
            Ok(tcp::tokio::Transport::new(tcp::Config::default())
                .upgrade(libp2p::core::upgrade::Version::V1Lazy)
                .authenticate(noise::Config::new(key)?)
                .multiplex(yamux::Config::default())
                .map(move |(peer, muxer), _| {
                    (peer, super::traffic::Counted::new(muxer, traffic.counter(peer)))
                }))
        })
        .map_err(|e| NetError::Build(e.into()))?
        .with_dns()
        .map_err(|e| NetError::Build(e.into()))?
        .with_relay_client(noise::Config::new, yamux::Config::default)
        .map_err(|e| NetError::Build(e.into()))?
        .with_behaviour(|key, relay| behaviour::build(key, relay, network, config, registry))
        .map_err(|e| NetError::Build(e.into()))?
        .with_swarm_config(|c| {
            c.with_idle_connection_timeout(Duration::from_secs(60))
                .with_substream_upgrade_protocol_override(libp2p::core::upgrade::Version::V1Lazy)
        })
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

/// Before the task runs: a bound address goes straight into the first snapshot.
fn record_listen_addr(info: &Arc<RwLock<NetInfo>>, address: &Multiaddr, local: PeerId) {
    let full = with_peer_id(address, local);
    info!(addr = %full, "listening");
    if let Ok(mut i) = info.write() {
        i.listen_addrs.push(full);
    }
}

impl<E> Service<E> {
    /// A listener bound a new address (an interface came up, a port was given).
    pub(super) fn listen_addr_added(&mut self, swarm: &Swarm<Behaviour>, address: &Multiaddr) {
        let full = with_peer_id(address, *swarm.local_peer_id());
        info!(addr = %full, "listening");
        self.listen_addrs.push(full);
        self.dirty = true;
    }

    /// A listen address went away.
    pub(super) fn listen_addr_expired(&mut self, swarm: &Swarm<Behaviour>, address: &Multiaddr) {
        let full = with_peer_id(address, *swarm.local_peer_id());
        debug!(addr = %full, "listen address expired");
        self.listen_addrs.retain(|a| *a != full);
        self.dirty = true;
    }
}
