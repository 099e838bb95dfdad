//! The composed libp2p behaviour: one field per protocol, polled in declaration order.

use std::error::Error;
use std::time::Duration;

use libp2p::gossipsub::{self, IdentTopic, MessageAuthenticity, MessageId, ValidationMode};
use libp2p::identity::Keypair;
use libp2p::swarm::NetworkBehaviour;
use libp2p::{
    StreamProtocol, allow_block_list, connection_limits, identify, kad, ping, request_response,
};
use sha2::{Digest, Sha256};

use super::codec::SyncCodec;
use crate::consensus::Network;
use crate::protocol::{MAX_GOSSIP_BYTES, blocks_topic, kad_protocol, sync_protocol, txs_topic};

/// Most established connections; gossipsub keeps every connection it touches alive, so
/// this (not the idle timeout) bounds the peer count.
pub const MAX_CONNECTIONS: u32 = 125;
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
    pub inbound: super::inbound::InboundLimits,
    /// Agent, listen addresses and protocols of each peer (feeds Kademlia).
    pub identify: identify::Behaviour,
    /// Liveness; a failed ping closes the connection.
    pub ping: ping::Behaviour,
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
    network: Network,
    max_inbound: usize,
) -> Result<Behaviour, Box<dyn Error + Send + Sync>> {
    let peer_id = key.public().to_peer_id();
    let limits = connection_limits::ConnectionLimits::default()
        .with_max_established(Some(MAX_CONNECTIONS))
        // Room above the inbound slots: a newcomer is established first, then the network
        // task evicts an inbound peer to make room (net/evict.rs).
        .with_max_established_incoming(Some(
            u32::try_from(max_inbound).unwrap_or(u32::MAX).saturating_add(8),
        ))
        .with_max_pending_incoming(Some(30))
        .with_max_established_per_peer(Some(2));
    let identify = identify::Behaviour::new(
        identify::Config::new(format!("/minichain/{network}/1.0.0"), key.public())
            .with_agent_version(format!("minichain/{}", env!("CARGO_PKG_VERSION")))
            .with_push_listen_addr_updates(true),
    );
    let mut kad_config = kad::Config::new(StreamProtocol::try_from_owned(kad_protocol(network))?);
    kad_config.set_query_timeout(Duration::from_secs(30));
    kad_config.set_periodic_bootstrap_interval(Some(Duration::from_secs(60)));
    let mut kad =
        kad::Behaviour::with_config(peer_id, kad::store::MemoryStore::new(peer_id), kad_config);
    kad.set_mode(Some(kad::Mode::Server));
    let sync = request_response::Behaviour::with_codec(
        SyncCodec,
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
        kad,
        gossipsub: gossip(key, network)?,
        sync,
    })
}

/// Gossipsub as every node configures it: signed messages, content-hash ids, both topics
/// subscribed, invalid deliveries scored. (Public so test peers speak exactly our gossip.)
///
/// # Errors
/// If gossipsub refuses the configuration (a bug in the constants here).
pub fn gossip(
    key: &Keypair,
    network: Network,
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
        .heartbeat_interval(Duration::from_millis(500))
        .heartbeat_initial_delay(Duration::from_millis(100))
        .build()?;
    let mut gossipsub =
        gossipsub::Behaviour::new(MessageAuthenticity::Signed(key.clone()), config)?;
    let mut params =
        gossipsub::PeerScoreParams { ip_colocation_factor_weight: 0.0, ..Default::default() };
    for topic in [blocks_topic(network), txs_topic(network)] {
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
