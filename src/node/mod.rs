//! Wiring: the only place that knows every module. [`start`] opens the store, loads the
//! node key, binds the swarm, then runs three kinds of workers joined by bounded channels:
//!
//! ```text
//!  net task (tokio, owns the Swarm) ──NetEvent──▶ core thread (Core::handle) ──NetCommand──▶ net task
//!  miner threads ──Input::Mined──▶ core thread ──MinerJob──▶ miner threads
//!  HTTP API (tokio) ──Input::Rpc──▶ core thread; reads Snapshot / NetInfo directly
//! ```
//!
//! Validation and redb writes run on the core thread, never on the runtime, so the swarm
//! keeps answering pings and gossip while a block is being connected.

pub mod core;
mod miner;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::AtomicU64;
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, sync_channel};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use libp2p::{Multiaddr, PeerId};
use tokio::sync::{mpsc, oneshot};
use tracing::{info, warn};

pub use self::core::{
    Core, Input, MempoolView, MiningConfig, NodeEvent, Output, Pending, RpcCommand, Snapshot,
};
use crate::chain::{ChainError, ChainState};
use crate::config::db_path;
use crate::consensus::Network;
use crate::mempool::{Mempool, MempoolConfig};
use crate::net::identity::{IdentityError, load_or_create};
use crate::net::service::{COMMAND_CAPACITY, NetError};
use crate::net::{NetCommand, NetConfig, NetInfo};
use crate::primitives::{BlockHash, Transaction, Txid};
use crate::store::{Store, StoreError};

/// Capacity of the core's input channel.
pub const INPUT_CAPACITY: usize = 8_192;
/// Events buffered per `/events` subscriber before a slow one starts missing them.
pub const EVENT_CAPACITY: usize = 1_024;
/// How often the core gets a tick when nothing else happens.
const TICK: Duration = Duration::from_millis(250);

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
    /// HTTP API address (`None` = no API).
    pub rpc: Option<SocketAddr>,
    /// How long misbehaving peers are banned.
    pub ban_duration: Duration,
    /// Mempool limits.
    pub mempool: MempoolConfig,
}

/// Why a node could not start.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// The data dir could not be created.
    #[error("cannot create data dir {path}: {error}")]
    DataDir {
        /// The directory.
        path: String,
        /// Why.
        error: std::io::Error,
    },
    /// The database could not be opened.
    #[error("cannot open the database: {0}")]
    Store(#[from] StoreError),
    /// The chain could not be loaded.
    #[error("cannot load the chain: {0}")]
    Chain(#[from] ChainError),
    /// The node key could not be loaded.
    #[error(transparent)]
    Identity(#[from] IdentityError),
    /// The network could not start.
    #[error(transparent)]
    Net(#[from] NetError),
    /// The HTTP API could not bind.
    #[error("cannot serve the HTTP API on {addr}: {error}")]
    Rpc {
        /// The address.
        addr: SocketAddr,
        /// Why.
        error: std::io::Error,
    },
}

/// A running node.
pub struct NodeHandle {
    network: Network,
    store: Store,
    events: tokio::sync::broadcast::Sender<NodeEvent>,
    cookie: crate::rpc::auth::Cookie,
    inputs: SyncSender<Input>,
    commands: mpsc::Sender<NetCommand>,
    info: Arc<RwLock<NetInfo>>,
    snapshot: Arc<RwLock<Snapshot>>,
    peer_id: PeerId,
    rpc_addr: Option<SocketAddr>,
    core_thread: Option<std::thread::JoinHandle<()>>,
    net_task: Option<tokio::task::JoinHandle<()>>,
    rpc_task: Option<tokio::task::JoinHandle<()>>,
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// Starts a node on the current tokio runtime.
///
/// # Errors
/// [`NodeError`] if the data dir, database, key, listen address or API address fails.
pub async fn start(config: NodeConfig) -> Result<NodeHandle, NodeError> {
    std::fs::create_dir_all(&config.data_dir).map_err(|error| NodeError::DataDir {
        path: config.data_dir.display().to_string(),
        error,
    })?;
    let store = Store::open(&db_path(&config.data_dir), config.network)?;
    let chain = ChainState::open(store.clone())?;
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
    let net_config = NetConfig {
        network: config.network,
        listen: config.listen.clone(),
        bootstrap: config.bootstrap.clone(),
        external: config.external.clone(),
        ban_duration: config.ban_duration,
    };
    let swarm = crate::net::service::start(key, &net_config, &info).await?;

    let (inputs, input_rx) = sync_channel::<Input>(INPUT_CAPACITY);
    let (commands, command_rx) = mpsc::channel::<NetCommand>(COMMAND_CAPACITY);
    let snapshot = Arc::new(RwLock::new(Snapshot::default()));
    let hashes = Arc::new(AtomicU64::new(0));
    let mining = MiningConfig { enabled: config.mine_threads > 0, payout: config.payout };
    let (events, _) = tokio::sync::broadcast::channel(EVENT_CAPACITY);
    let core = Core::new(
        chain,
        Mempool::new(config.mempool),
        mining,
        hashes.clone(),
        snapshot.clone(),
        events.clone(),
    );
    let jobs = (config.mine_threads > 0)
        .then(|| miner::spawn(config.mine_threads, inputs.clone(), hashes.clone()));
    let net_task = tokio::spawn(crate::net::service::run(
        swarm,
        net_config,
        command_rx,
        inputs.clone(),
        info.clone(),
    ));
    let core_commands = commands.clone();
    let core_thread = std::thread::Builder::new()
        .name("minichain-core".into())
        .spawn(move || run_core(core, input_rx, core_commands, jobs))
        .map_err(|error| NodeError::DataDir { path: "core thread".into(), error })?;

    let cookie = crate::rpc::auth::Cookie::create(&config.data_dir).map_err(|error| {
        NodeError::DataDir { path: config.data_dir.display().to_string(), error }
    })?;
    let mut handle = NodeHandle {
        network: config.network,
        store,
        events,
        cookie,
        inputs,
        commands,
        info,
        snapshot,
        peer_id,
        rpc_addr: None,
        core_thread: Some(core_thread),
        net_task: Some(net_task),
        rpc_task: None,
    };
    if let Some(addr) = config.rpc {
        let (bound, task) = crate::rpc::serve(addr, handle.api())
            .await
            .map_err(|error| NodeError::Rpc { addr, error })?;
        info!(addr = %bound, "HTTP API listening");
        handle.rpc_addr = Some(bound);
        handle.rpc_task = Some(task);
    }
    Ok(handle)
}

/// The core thread: one input at a time, a tick when idle, outputs carried out.
fn run_core(
    mut core: Core,
    inputs: Receiver<Input>,
    commands: mpsc::Sender<NetCommand>,
    jobs: Option<std::sync::mpsc::Sender<core::MinerJob>>,
) {
    let mut last_tick = Instant::now();
    loop {
        let input = match inputs.recv_timeout(TICK) {
            Ok(input) => input,
            Err(RecvTimeoutError::Timeout) => Input::Tick,
            Err(RecvTimeoutError::Disconnected) => break,
        };
        let stop = matches!(input, Input::Shutdown);
        let mut outputs = core.handle(input, unix_now(), Instant::now());
        if last_tick.elapsed() >= TICK {
            last_tick = Instant::now();
            outputs.extend(core.handle(Input::Tick, unix_now(), last_tick));
        }
        for output in outputs {
            match output {
                Output::Net(cmd) => {
                    if commands.blocking_send(cmd).is_err() {
                        break;
                    }
                }
                Output::Job(job) => {
                    if let Some(jobs) = &jobs {
                        let _ = jobs.send(job);
                    }
                }
            }
        }
        if stop {
            break;
        }
    }
    info!(height = core.chain().height(), tip = %core.chain().tip(), "node core stopped, database closed");
}

/// What the HTTP API needs of a node.
#[derive(Clone)]
pub struct Api {
    /// Network.
    pub network: Network,
    /// Read-only access to the chain database (redb snapshots; never blocks the core).
    pub store: Store,
    /// Events for `/events`.
    pub events: tokio::sync::broadcast::Sender<NodeEvent>,
    /// Token state-changing calls must present.
    pub token: String,
    /// Commands into the core.
    pub inputs: SyncSender<Input>,
    /// Network state.
    pub info: Arc<RwLock<NetInfo>>,
    /// Chain state summary.
    pub snapshot: Arc<RwLock<Snapshot>>,
}

/// The `GET /status` document.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, PartialEq)]
pub struct Status {
    /// Network name.
    pub network: String,
    /// Active tip height.
    pub height: u32,
    /// Active tip hash (hex).
    pub tip: String,
    /// Best header height.
    pub headers: u32,
    /// Our peer id.
    pub peer_id: String,
    /// Dialable listen addresses with `/p2p/<id>`.
    pub listen_addrs: Vec<String>,
    /// Connected peers.
    pub peer_count: usize,
    /// Transactions in the mempool.
    pub mempool_size: usize,
    /// Whether the node is catching up.
    pub syncing: bool,
    /// Mining nonces per second (0 when not mining).
    pub hashrate: f64,
}

impl Api {
    /// The current status.
    pub fn status(&self) -> Status {
        let snap = self.snapshot.read().map(|s| s.clone()).unwrap_or_default();
        let info = self.info.read().map(|i| i.clone()).unwrap_or_default();
        Status {
            network: self.network.to_string(),
            height: snap.height,
            tip: snap.tip.to_string(),
            headers: snap.headers,
            peer_id: info.peer_id.map(|p| p.to_string()).unwrap_or_default(),
            listen_addrs: info.listen_addrs.iter().map(ToString::to_string).collect(),
            peer_count: info.peers.len(),
            mempool_size: snap.mempool_size,
            syncing: snap.syncing,
            hashrate: snap.hashrate,
        }
    }

    /// Sends a command to the core and waits for its answer.
    ///
    /// # Errors
    /// A message if the node is shutting down or overloaded.
    pub async fn ask<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<T>) -> RpcCommand,
    ) -> Result<T, String> {
        let (tx, rx) = oneshot::channel();
        self.inputs
            .try_send(Input::Rpc(make(tx)))
            .map_err(|_| "node is busy or shutting down".to_string())?;
        rx.await.map_err(|_| "node is shutting down".to_string())
    }
}

impl NodeHandle {
    /// The API view of this node.
    pub fn api(&self) -> Api {
        Api {
            network: self.network,
            store: self.store.clone(),
            events: self.events.clone(),
            token: self.cookie.token().to_owned(),
            inputs: self.inputs.clone(),
            info: self.info.clone(),
            snapshot: self.snapshot.clone(),
        }
    }

    /// Our peer id.
    pub fn peer_id(&self) -> PeerId {
        self.peer_id
    }

    /// Where the HTTP API listens.
    pub fn rpc_addr(&self) -> Option<SocketAddr> {
        self.rpc_addr
    }

    /// Current status.
    pub fn status(&self) -> Status {
        self.api().status()
    }

    /// Listen addresses with `/p2p/<id>`.
    pub fn listen_addrs(&self) -> Vec<Multiaddr> {
        self.info.read().map(|i| i.listen_addrs.clone()).unwrap_or_default()
    }

    /// Connected peer ids.
    pub fn peers(&self) -> Vec<PeerId> {
        self.info.read().map(|i| i.peers.keys().copied().collect()).unwrap_or_default()
    }

    /// Banned peers and why.
    pub fn bans(&self) -> Vec<(PeerId, String)> {
        self.info
            .read()
            .map(|i| i.bans.iter().map(|(p, b)| (*p, b.reason.clone())).collect())
            .unwrap_or_default()
    }

    /// Submits a transaction as `POST /tx` would.
    ///
    /// # Errors
    /// The mempool's reason for refusing it.
    pub async fn submit_tx(&self, tx: Transaction) -> Result<Txid, String> {
        self.api().ask(|reply| RpcCommand::SubmitTx(tx, reply)).await?.map_err(|e| e.to_string())
    }

    /// Mines `blocks` blocks at once (regtest).
    ///
    /// # Errors
    /// If not on regtest or a block is not accepted.
    pub async fn mine(&self, blocks: u32) -> Result<Vec<BlockHash>, String> {
        self.api().ask(|reply| RpcCommand::Mine { blocks, to: None, reply }).await?
    }

    /// Txids in the mempool.
    ///
    /// # Errors
    /// If the node is shutting down.
    pub async fn mempool(&self) -> Result<Vec<Txid>, String> {
        let entries = self.api().ask(RpcCommand::Mempool).await?;
        Ok(entries.iter().filter_map(|e| e.txid.parse().ok()).collect())
    }

    /// Disconnects `peer` and refuses it for the configured ban duration.
    pub async fn ban(&self, peer: PeerId, reason: &str) {
        let _ = self.commands.send(NetCommand::Ban { peer, reason: reason.to_owned() }).await;
    }

    /// Lifts a ban.
    pub async fn unban(&self, peer: PeerId) {
        let _ = self.commands.send(NetCommand::Unban(peer)).await;
    }

    /// Dials `addr`.
    pub async fn dial(&self, addr: Multiaddr) {
        let _ = self.commands.send(NetCommand::Dial(addr)).await;
    }

    /// Stops the node: the API, the network, the miner, and the core, which closes the
    /// database cleanly. Returns when everything has stopped.
    pub async fn shutdown(mut self) {
        info!("shutting down");
        if let Some(task) = self.rpc_task.take() {
            task.abort();
        }
        self.cookie.remove();
        let _ = self.inputs.send(Input::Shutdown);
        let _ = self.commands.send(NetCommand::Shutdown).await;
        if let Some(task) = self.net_task.take() {
            let _ = task.await;
        }
        if let Some(thread) = self.core_thread.take()
            && tokio::task::spawn_blocking(move || thread.join()).await.is_err()
        {
            warn!("core thread did not stop cleanly");
        }
    }
}
