//! Wiring: the only place that knows the core, the network and the store together.
//! [`start`] opens the store, loads the node key, binds the swarm, then runs three kinds of
//! workers joined by bounded channels, and returns a typed [`NodeHandle`]:
//!
//! ```text
//!  net task (tokio, owns the Swarm) ──NetEvent──▶ driver thread ──NetAction──▶ net task
//!                                                 (Core::handle(input, now))
//!  miner threads ──Input::Mined/Solved──▶ driver thread ──jobs──▶ miner threads
//!  NodeHandle (API, CLI, tests) ──Command──▶ driver thread ──Reply──▶ NodeHandle
//!                                reads the snapshot, NetInfo and redb snapshots directly
//! ```
//!
//! Validation and redb writes run on the driver thread, never on the runtime, so the swarm
//! keeps answering pings and gossip while a block is being connected. The HTTP server
//! (`rpc`) is wired to a handle by whoever starts the node; the node knows nothing of it.

pub mod handle;
pub mod metrics;
mod miner;
mod service;
pub mod snapshot;

use std::path::PathBuf;
use std::sync::atomic::AtomicU64;
use std::sync::mpsc::sync_channel;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use libp2p::Multiaddr;
use tokio::sync::mpsc;
use tracing::info;

pub use self::handle::{BlockId, BlockIdError, NodeHandle, QueryError, RequestError, Unavailable};
use self::metrics::NodeMetrics;
use self::service::{Driver, DriverInput, Shared};
use crate::chain::{ChainError, ChainState};
use crate::config::db_path;
use crate::consensus::Network;
use crate::core::{Core, MiningConfig, NodeEvent};
use crate::db::Store;
use crate::mempool::{Mempool, MempoolConfig};
use crate::net::NetError;
use crate::net::identity::{IdentityError, load_or_create};
use crate::net::service::COMMAND_CAPACITY;
use crate::net::{NetCommand, NetConfig, NetInfo};
use crate::primitives::BlockHash;
use crate::storage::StorageError;

/// Capacity of the driver's input channel.
pub const INPUT_CAPACITY: usize = 8_192;
/// Events buffered per `/events` subscriber before a slow one starts missing them.
pub const EVENT_CAPACITY: usize = 1_024;

/// Everything a node needs to start.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// Network.
    pub network: Network,
    /// Data directory (database, node key).
    pub data_dir: PathBuf,
    /// P2P listen addresses.
    pub listen: Vec<Multiaddr>,
    /// Peers to dial at start.
    pub bootstrap: Vec<Multiaddr>,
    /// Addresses to advertise to other hosts.
    pub external: Vec<Multiaddr>,
    /// Mine with this many threads (0 = do not mine).
    pub mine_threads: usize,
    /// Key coinbases pay (mined blocks and regtest `/mine`).
    pub payout: [u8; 32],
    /// How long misbehaving peers are banned.
    pub ban_duration: Duration,
    /// Mempool limits.
    pub mempool: MempoolConfig,
    /// Inbound connection slots (default [`crate::net::inbound::evict::MAX_INBOUND`]).
    pub max_inbound: usize,
    /// Ban kept peers like any other (`--ban-kept-peers`).
    pub ban_kept_peers: bool,
    /// Relay blocks as compact blocks to the peers that take them (on unless
    /// `--no-compact-blocks`; off, the node relays whole blocks only, as nodes before
    /// compact blocks did).
    pub compact_blocks: bool,
    /// Skip the signature checks of this block's ancestors when buried deep enough
    /// (`--assume-valid`; `chain::assume` has the conditions).
    pub assume_valid: Option<BlockHash>,
    /// Start from this UTXO snapshot file, trusting this snapshot hash (`--snapshot`).
    pub snapshot: Option<(PathBuf, BlockHash)>,
}

/// Why a node could not start.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// The data dir could not be created.
    #[error("cannot create data dir {}: {error}", path.display())]
    DataDir {
        /// The directory.
        path: PathBuf,
        /// Why.
        error: std::io::Error,
    },
    /// The database could not be opened.
    #[error("cannot open the database: {0}")]
    Store(#[from] StorageError),
    /// The chain could not be loaded.
    #[error("cannot load the chain: {0}")]
    Chain(#[from] ChainError),
    /// The snapshot could not be loaded.
    #[error("cannot load the snapshot {}: {error}", path.display())]
    Snapshot {
        /// The file.
        path: PathBuf,
        /// Why.
        error: crate::snapshot::SnapshotError,
    },
    /// The node key could not be loaded.
    #[error(transparent)]
    Identity(#[from] IdentityError),
    /// The network could not start.
    #[error(transparent)]
    Net(#[from] NetError),
    /// A worker thread could not be started.
    #[error("cannot start the {name} thread: {error}")]
    Thread {
        /// Which.
        name: &'static str,
        /// Why.
        error: std::io::Error,
    },
}

/// Starts a node on the current tokio runtime.
///
/// # Errors
/// [`NodeError`] if the data dir, database, key or listen address fails.
pub async fn start(config: NodeConfig) -> Result<NodeHandle, NodeError> {
    std::fs::create_dir_all(&config.data_dir)
        .map_err(|error| NodeError::DataDir { path: config.data_dir.clone(), error })?;
    if let Some((file, hash)) = &config.snapshot {
        snapshot::load(&config, file, hash)?;
    }
    let store = Store::open(&db_path(&config.data_dir), config.network)?;
    let mut chain = ChainState::open(store.clone())?;
    let history = match chain.snapshot_base() {
        Some(base) => Some(snapshot::open_history(&config, base)?),
        None => None,
    };
    chain.set_assume_valid(config.assume_valid);
    if let Some(hash) = config.assume_valid {
        let burial = config.network.params().assume_valid_burial;
        info!(
            hash = %hash,
            burial,
            "assume-valid: the signatures of this block's ancestors are not checked once {burial} blocks' worth of work lies on them"
        );
    }
    info!(
        network = %config.network,
        data_dir = %config.data_dir.display(),
        height = chain.height(),
        tip = %chain.tip(),
        "chain loaded"
    );
    let key = load_or_create(&config.data_dir)?;
    let peer_id = key.public().to_peer_id();
    info!(peer_id = %peer_id, "local peer id");
    let info = Arc::new(RwLock::new(NetInfo::default()));
    let net_config = net_config(&config);
    let mut registry = prometheus_client::registry::Registry::default();
    let swarm = crate::net::swarm::start(key, &net_config, &info, &mut registry).await?;

    let (inputs, input_rx) = sync_channel::<DriverInput>(INPUT_CAPACITY);
    let (commands, command_rx) = mpsc::channel::<NetCommand>(COMMAND_CAPACITY);
    let (events, _) = tokio::sync::broadcast::channel::<NodeEvent>(EVENT_CAPACITY);
    let hashes = Arc::new(AtomicU64::new(0));
    let mining = MiningConfig { enabled: config.mine_threads > 0, payout: config.payout };
    let mut core = Core::new(chain, Mempool::new(config.mempool), mining);
    core.set_compact_blocks(config.compact_blocks);
    let slot = Arc::new(RwLock::new(Some(store.clone())));
    let fallback = history.map(|(chain, history)| {
        core.set_history(chain);
        snapshot::Fallback { data_dir: config.data_dir.clone(), history, slot: slot.clone() }
    });
    let shared = Arc::new(RwLock::new(Shared::from(core.snapshot())));
    let miners = miner::Miners::spawn(
        config.mine_threads,
        config.network == Network::Regtest,
        inputs.clone(),
        hashes.clone(),
    )
    .map_err(|error| NodeError::Thread { name: "miner", error })?;
    let metrics = NodeMetrics::register(registry.sub_registry_with_prefix("minichain"));
    metrics.register_process(&mut registry);
    metrics.register_p2p_bytes(registry.sub_registry_with_prefix("minichain"), &net_config.bytes);
    let p2p_metrics = libp2p::metrics::Metrics::new(&mut registry);
    let net = crate::net::service::service(&net_config, inputs.clone(), info.clone())?
        .with_metrics(p2p_metrics);
    let traffic = net_config.traffic.clone();
    let net_task = tokio::spawn(crate::net::service::run(swarm, net_config, net, command_rx));
    let driver = Driver::new(
        core,
        commands.clone(),
        events.clone(),
        shared.clone(),
        miners,
        hashes,
        metrics.clone(),
    )
    .with_fallback(fallback)
    .with_saved_state(config.data_dir.clone());
    let driver_thread = std::thread::Builder::new()
        .name("minichain-core".into())
        .spawn(move || driver.run(input_rx))
        .map_err(|error| NodeError::Thread { name: "core", error })?;
    Ok(NodeHandle::new(handle::Parts {
        traffic,
        network: config.network,
        store: slot,
        events,
        inputs,
        commands,
        info,
        shared,
        peer_id,
        driver_thread,
        net_task,
        registry,
        metrics,
        data_dir: config.data_dir.clone(),
    }))
}

/// The network task's settings from the node's.
fn net_config(config: &NodeConfig) -> NetConfig {
    NetConfig {
        network: config.network,
        listen: config.listen.clone(),
        bootstrap: config.bootstrap.clone(),
        external: config.external.clone(),
        ban_duration: config.ban_duration,
        data_dir: config.data_dir.clone(),
        max_inbound: config.max_inbound,
        ban_kept_peers: config.ban_kept_peers,
        compact_blocks: config.compact_blocks,
        bytes: crate::net::P2pBytes::default(),
        traffic: crate::net::traffic::Traffic::default(),
    }
}
