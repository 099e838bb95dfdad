//! The composed libp2p behaviour: one field per protocol, polled in declaration order.

use std::error::Error;
use std::time::Duration;

use libp2p::gossipsub::{self, IdentTopic, MessageAuthenticity, MessageId, ValidationMode};
use libp2p::identity::Keypair;
use libp2p::swarm::NetworkBehaviour;
use libp2p::{
    StreamProtocol, allow_block_list, autonat, connection_limits, dcutr, identify, kad, ping,
    relay, request_response,
};
use sha2::{Digest, Sha256};

use super::codec::SyncCodec;
use super::inbound::{EVICTION_HEADROOM, MAX_PENDING_INBOUND};
use crate::consensus::Network;
use crate::protocol::{
    MAX_GOSSIP_BYTES, blocks_topic, headers_topic, identify_protocol, kad_protocol, sync_protocol,
    txs_topic,
};

/// Most established connections; gossipsub keeps every connection it touches alive, so
/// this (not the idle timeout) bounds the peer count.
pub const MAX_CONNECTIONS: u32 = 125;
/// Relay slots a reachable node offers (libp2p circuit relay v2), and their bounds: a
/// circuit carries the hole punch and a little traffic, not a peer's whole sync.
pub const RELAY_MAX_RESERVATIONS: usize = 64;
/// Reservations one peer may hold with us.
pub const RELAY_MAX_RESERVATIONS_PER_PEER: usize = 2;
/// How long a reservation lasts before the client must renew it.
pub const RELAY_RESERVATION_DURATION: Duration = Duration::from_secs(60 * 60);
/// Circuits relayed at once, in all.
pub const RELAY_MAX_CIRCUITS: usize = 16;
/// Circuits relayed at once for one peer.
pub const RELAY_MAX_CIRCUITS_PER_PEER: usize = 4;
/// A circuit is closed after this long...
pub const RELAY_MAX_CIRCUIT_DURATION: Duration = Duration::from_secs(2 * 60);
/// ... or once this many bytes crossed it (each way).
pub const RELAY_MAX_CIRCUIT_BYTES: u64 = 1 << 20;

/// Whole sync exchange timeout, sized for a batch of full blocks from a slow peer.
pub const SYNC_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Every protocol a minichain node speaks.
#[derive(NetworkBehaviour)]
pub struct Behaviour {
    /// Banned peers: their connections are refused.
    pub blocked: allow_block_list::Behaviour<allow_block_list::BlockedPeers>,
    /// Connection caps.
    pub limits: connection_limits::Behaviour,
    /// Inbound caps per source address and network.
    pub inbound: super::inbound::slots::InboundLimits,
    /// Agent, listen addresses and protocols of each peer (feeds Kademlia).
    pub identify: identify::Behaviour,
    /// Liveness; a failed ping closes the connection.
    pub ping: ping::Behaviour,
    /// Reachability: asks peers to dial us back, and dials others back when asked.
    pub autonat: autonat::Behaviour,
    /// Circuit relay v2 server: serves reservations only while we have a confirmed external
    /// address (libp2p enables it then), within the `RELAY_*` bounds.
    pub relay: relay::Behaviour,
    /// Circuit relay v2 client: reservations on relays when we are not reachable, and dials
    /// to relayed addresses.
    pub relay_client: relay::client::Behaviour,
    /// Hole punching: upgrades a relayed connection to a direct one.
    pub dcutr: dcutr::Behaviour,
    /// Peer discovery.
    pub kad: kad::Behaviour<kad::store::MemoryStore>,
    /// Block and transaction relay.
    pub gossipsub: gossipsub::Behaviour,
    /// Chain sync.
    pub sync: request_response::Behaviour<SyncCodec>,
}

/// Builds the behaviour for `network` with the node's key.
///
/// # Errors
/// If a protocol's configuration is refused (a bug in the constants here).
pub fn build(
    key: &Keypair,
    relay_client: relay::client::Behaviour,
    network: Network,
    config: &super::NetConfig,
    registry: &mut prometheus_client::registry::Registry,
) -> Result<Behaviour, Box<dyn Error + Send + Sync>> {
    let max_inbound = config.max_inbound;
    let peer_id = key.public().to_peer_id();
    let limits = connection_limits::ConnectionLimits::default()
        .with_max_established(Some(MAX_CONNECTIONS))
        // Room above the inbound slots: a newcomer is established first, then the network
        // task evicts an inbound peer to make room (net/inbound).
        .with_max_established_incoming(Some(
            u32::try_from(max_inbound).unwrap_or(u32::MAX).saturating_add(EVICTION_HEADROOM),
        ))
        .with_max_pending_incoming(Some(MAX_PENDING_INBOUND))
        // A relayed connection, the direct one a hole punch makes, and an AutoNAT dial-back
        // (closed as soon as it is up).
        .with_max_established_per_peer(Some(3));
    let identify = identify::Behaviour::new(
        identify::Config::new(identify_protocol(network), key.public())
            .with_agent_version(format!("minichain/{}", env!("CARGO_PKG_VERSION")))
            .with_push_listen_addr_updates(true)
            // Advertise only confirmed (AutoNAT, relay reservation) or configured
            // (`--external-addr`) addresses: never a listen address nobody outside can dial.
            .with_hide_listen_addrs(true),
    );
    let mut kad_config = kad::Config::new(StreamProtocol::try_from_owned(kad_protocol(network))?);
    kad_config.set_query_timeout(Duration::from_secs(30));
    kad_config.set_periodic_bootstrap_interval(Some(Duration::from_secs(60)));
    let mut kad =
        kad::Behaviour::with_config(peer_id, kad::store::MemoryStore::new(peer_id), kad_config);
    // Automatic mode: a server (answering queries, in others' tables) exactly while the
    // swarm has a confirmed external address; a client otherwise.
    kad.set_mode(None);
    let sync = request_response::Behaviour::with_codec(
        SyncCodec::counting(config.bytes.clone()),
        [(
            StreamProtocol::try_from_owned(sync_protocol(network))?,
            request_response::ProtocolSupport::Full,
        )],
        request_response::Config::default()
            .with_request_timeout(SYNC_REQUEST_TIMEOUT)
            .with_max_concurrent_streams(64),
    );
    Ok(Behaviour {
        blocked: Default::default(),
        limits: connection_limits::Behaviour::new(limits),
        inbound: Default::default(),
        identify,
        ping: ping::Behaviour::new(ping::Config::new()),
        autonat: autonat::Behaviour::new(peer_id, autonat_config()),
        relay: relay::Behaviour::new(peer_id, relay_config()),
        relay_client,
        dcutr: dcutr::Behaviour::new(peer_id),
        kad,
        gossipsub: gossip(key, network, config.compact_blocks)?.with_metrics(
            registry.sub_registry_with_prefix("libp2p_gossipsub"),
            gossipsub::MetricsConfig::default(),
        ),
        sync,
    })
}

/// AutoNAT v1, tuned for a small network: the first probe a second after start, then one
/// every 5 s (each to a different peer) until three agree, then every 10 minutes.
fn autonat_config() -> autonat::Config {
    autonat::Config {
        boot_delay: Duration::from_secs(1),
        retry_interval: Duration::from_secs(5),
        refresh_interval: Duration::from_secs(10 * 60),
        throttle_server_period: Duration::from_secs(15),
        timeout: Duration::from_secs(15),
        // A server dials back only the IP it sees the request come from, so a peer on the
        // same LAN (or loopback) may be confirmed at its private address, and only to
        // itself; libp2p's default would refuse every private network outright.
        only_global_ips: false,
        ..autonat::Config::default()
    }
}

/// The relay server's bounds (see the `RELAY_*` constants and docs/security.md).
fn relay_config() -> relay::Config {
    relay::Config {
        max_reservations: RELAY_MAX_RESERVATIONS,
        max_reservations_per_peer: RELAY_MAX_RESERVATIONS_PER_PEER,
        reservation_duration: RELAY_RESERVATION_DURATION,
        max_circuits: RELAY_MAX_CIRCUITS,
        max_circuits_per_peer: RELAY_MAX_CIRCUITS_PER_PEER,
        max_circuit_duration: RELAY_MAX_CIRCUIT_DURATION,
        max_circuit_bytes: RELAY_MAX_CIRCUIT_BYTES,
        ..relay::Config::default()
    }
}

/// Gossipsub as every node configures it: signed messages, content-hash ids, the topics
/// subscribed (new blocks' headers unless `compact_blocks` is off), invalid deliveries scored.
/// IDONTWANT is gossipsub 1.2's default: a peer that received a message over 1,000
/// bytes tells its mesh, so they do not send it a copy too. (Public so test peers speak
/// exactly our gossip.)
///
/// # Errors
/// If gossipsub refuses the configuration (a bug in the constants here).
pub fn gossip(
    key: &Keypair,
    network: Network,
    compact_blocks: bool,
) -> Result<gossipsub::Behaviour, Box<dyn Error + Send + Sync>> {
    // Content-addressed ids: the same block relayed by two peers is one message.
    let message_id = |m: &gossipsub::Message| {
        let digest = Sha256::new().chain_update(m.topic.as_str()).chain_update(&m.data).finalize();
        MessageId::from(digest[..20].to_vec())
    };
    let config = gossipsub::ConfigBuilder::default()
        .validation_mode(ValidationMode::Strict)
        .validate_messages()
        .message_id_fn(message_id)
        .max_transmit_size(MAX_GOSSIP_BYTES)
        // Our own blocks too: the mesh is told before the block goes out, so nobody
        // sends it back to us.
        .idontwant_on_publish(true)
        .heartbeat_interval(Duration::from_millis(500))
        .heartbeat_initial_delay(Duration::from_millis(100))
        .build()?;
    let mut gossipsub =
        gossipsub::Behaviour::new(MessageAuthenticity::Signed(key.clone()), config)?;
    let mut params =
        gossipsub::PeerScoreParams { ip_colocation_factor_weight: 0.0, ..Default::default() };
    let mut topics = vec![blocks_topic(network), txs_topic(network)];
    if compact_blocks {
        topics.push(headers_topic(network));
    }
    for topic in topics {
        let topic = IdentTopic::new(topic);
        // Our topics are slow: punishing missing mesh deliveries would hit honest peers.
        // Only invalid messages cost score: -1 × count², so gossipsub graylists a peer
        // (below -80) after 9, a backstop behind the node's own scores, which ban earlier
        // and say why. A heavier weight would graylist first and hide the peer's messages
        // from the node before it could ban (seen with -10: graylisted after 3).
        let tp = gossipsub::TopicScoreParams {
            topic_weight: 1.0,
            time_in_mesh_weight: 0.0,
            first_message_deliveries_weight: 1.0,
            mesh_message_deliveries_weight: 0.0,
            mesh_failure_penalty_weight: 0.0,
            invalid_message_deliveries_weight: -1.0,
            ..Default::default()
        };
        params.topics.insert(topic.hash(), tp);
        gossipsub.subscribe(&topic)?;
    }
    gossipsub.with_peer_score(params, gossipsub::PeerScoreThresholds::default())?;
    Ok(gossipsub)
}
