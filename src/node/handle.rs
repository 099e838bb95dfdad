//! [`NodeHandle`]: what the HTTP server, the binary and the tests hold of a running node.
//! Typed methods; answers in the shared `api` types. Reads come from the published
//! snapshot, the network's info and redb read snapshots (never blocking the core);
//! questions about the mempool and orders go to the core as commands, each carrying a
//! reply typed for its answer; orders for the network go to the network task. A full queue
//! is [`Unavailable::Busy`] and a closed one [`Unavailable::ShuttingDown`], for every call.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::mpsc::SyncSender;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

use libp2p::{Multiaddr, PeerId};
use tokio::sync::{broadcast, mpsc, oneshot};
use tracing::{info, warn};

mod addresses;

pub use addresses::MAX_ADDRESSES;

use super::metrics::{DirectionLabels, NodeMetrics};
use super::service::{DriverInput, Shared};
use crate::api::{
    AssumeValidView, BanView, BlockView, FeeEstimateView, FeesView, KeptPeerView, MempoolEntry,
    MempoolView, PeerView, Readiness, SnapshotView, Status, TxLookup,
};
use crate::consensus::Network;
use crate::core::{Command, Input, MineError, NodeEvent, ReplyTo};
use crate::db::Store;
use crate::mempool::MempoolError;
use crate::net::{NetCommand, NetInfo};
use crate::primitives::{BlockHash, OutPoint, Transaction, TxOut, Txid};
use crate::snapshot::{SnapshotError, SnapshotInfo};
use crate::storage::{ChainStore, StorageError};

/// A read the node could not answer.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StorageError),
    /// The core is overloaded or stopping.
    #[error(transparent)]
    Unavailable(#[from] Unavailable),
}

/// The core did not take or answer a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Unavailable {
    /// Its queue is full.
    #[error("node is busy")]
    Busy,
    /// It is stopping.
    #[error("node is shutting down")]
    ShuttingDown,
}

/// An order the node refused or could not carry out.
#[derive(Debug, thiserror::Error)]
pub enum RequestError<E> {
    /// Refused, with the reason.
    #[error(transparent)]
    Refused(E),
    /// The core is overloaded or stopping.
    #[error(transparent)]
    Unavailable(#[from] Unavailable),
}

/// A block by height on the active chain, or by hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockId {
    /// Active-chain height.
    Height(u32),
    /// Hash.
    Hash(BlockHash),
}

/// A block argument that is neither a height nor a block hash.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BlockIdError {
    /// Digits only, but more than a height can be.
    #[error("height {0} is out of range")]
    HeightOutOfRange(String),
    /// Anything else.
    #[error("'{0}' is neither a height nor a 64-hex-digit block hash")]
    Malformed(String),
}

impl std::str::FromStr for BlockId {
    type Err = BlockIdError;

    /// A height (decimal digits, nothing else: no sign, point or space) or a
    /// 64-hex-digit hash.
    fn from_str(id: &str) -> Result<Self, Self::Err> {
        if !id.is_empty() && id.len() <= 10 && id.bytes().all(|b| b.is_ascii_digit()) {
            return id
                .parse()
                .map(BlockId::Height)
                .map_err(|_| BlockIdError::HeightOutOfRange(id.to_owned()));
        }
        id.parse().map(BlockId::Hash).map_err(|_| BlockIdError::Malformed(id.to_owned()))
    }
}

impl std::fmt::Display for BlockId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BlockId::Height(height) => write!(f, "{height}"),
            BlockId::Hash(hash) => write!(f, "{hash}"),
        }
    }
}

/// What `start` hands over to build a handle.
pub(super) struct Parts {
    pub network: Network,
    /// The database the API reads (the driver swaps it if a snapshot is rejected).
    pub store: Arc<RwLock<Option<Store>>>,
    pub events: broadcast::Sender<NodeEvent>,
    pub inputs: SyncSender<DriverInput>,
    pub commands: mpsc::Sender<NetCommand>,
    pub info: Arc<RwLock<NetInfo>>,
    pub shared: Arc<RwLock<Shared>>,
    pub peer_id: PeerId,
    pub driver_thread: std::thread::JoinHandle<()>,
    pub net_task: tokio::task::JoinHandle<()>,
    pub registry: prometheus_client::registry::Registry,
    pub metrics: NodeMetrics,
    pub data_dir: PathBuf,
    pub traffic: crate::net::traffic::Traffic,
}

struct Inner {
    network: Network,
    /// Released at shutdown so that the database file can be opened again.
    store: Arc<RwLock<Option<Store>>>,
    events: broadcast::Sender<NodeEvent>,
    inputs: SyncSender<DriverInput>,
    commands: mpsc::Sender<NetCommand>,
    info: Arc<RwLock<NetInfo>>,
    shared: Arc<RwLock<Shared>>,
    peer_id: PeerId,
    workers: Mutex<Option<(std::thread::JoinHandle<()>, tokio::task::JoinHandle<()>)>>,
    registry: prometheus_client::registry::Registry,
    metrics: NodeMetrics,
    data_dir: PathBuf,
    traffic: crate::net::traffic::Traffic,
    started: Instant,
    /// Set once someone asked the node to stop (`POST /stop`).
    stop: tokio::sync::watch::Sender<bool>,
    /// Held while a snapshot is written: one at a time (each reads the whole UTXO set).
    snapshots: tokio::sync::Mutex<()>,
}

/// A running node. Clones share it; [`NodeHandle::shutdown`] stops it for all.
#[derive(Clone)]
pub struct NodeHandle {
    inner: Arc<Inner>,
}

impl NodeHandle {
    pub(super) fn new(p: Parts) -> Self {
        let inner = Inner {
            network: p.network,
            store: p.store,
            events: p.events,
            inputs: p.inputs,
            commands: p.commands,
            info: p.info,
            shared: p.shared,
            peer_id: p.peer_id,
            workers: Mutex::new(Some((p.driver_thread, p.net_task))),
            registry: p.registry,
            metrics: p.metrics,
            data_dir: p.data_dir,
            traffic: p.traffic,
            started: Instant::now(),
            stop: tokio::sync::watch::Sender::new(false),
            snapshots: tokio::sync::Mutex::new(()),
        };
        Self { inner: Arc::new(inner) }
    }

    /// The network.
    pub fn network(&self) -> Network {
        self.inner.network
    }

    /// Our peer id.
    pub fn peer_id(&self) -> PeerId {
        self.inner.peer_id
    }

    fn shared(&self) -> Shared {
        self.inner.shared.read().map(|s| s.clone()).unwrap_or_default()
    }

    /// The database, until shutdown.
    fn store(&self) -> Result<Store, QueryError> {
        let store = self.inner.store.read().ok().and_then(|s| s.clone());
        store.ok_or(QueryError::Unavailable(Unavailable::ShuttingDown))
    }

    fn net_info(&self) -> NetInfo {
        self.inner.info.read().map(|i| i.clone()).unwrap_or_default()
    }

    /// The current status.
    pub fn status(&self) -> Status {
        let shared = self.shared();
        let snap = shared.snapshot;
        let info = self.net_info();
        let peers_out = info.peers.values().filter(|p| p.outbound).count();
        let now = i64::try_from(crate::clock::unix_now()).unwrap_or(i64::MAX);
        let sync_peers = snap.peer_tips.len();
        Status {
            version: crate::VERSION.to_owned(),
            network: self.inner.network.to_string(),
            state: Readiness::state(snap.syncing, sync_peers).to_owned(),
            height: snap.height,
            tip: snap.tip.to_string(),
            headers: snap.headers,
            peer_id: self.inner.peer_id.to_string(),
            listen_addrs: info.listen_addrs.iter().map(ToString::to_string).collect(),
            peer_count: info.peers.len(),
            sync_peers,
            tip_age_secs: now - i64::from(snap.tip_time),
            mempool_size: snap.mempool_size,
            syncing: snap.syncing,
            hashrate: shared.hashrate,
            difficulty: snap.difficulty,
            chain_work: snap.chain_work,
            progress: if snap.headers == 0 {
                1.0
            } else {
                f64::from(snap.height) / f64::from(snap.headers.max(snap.height))
            },
            peers_in: info.peers.len() - peers_out,
            peers_out,
            mempool_bytes: snap.mempool_bytes,
            disk_bytes: dir_bytes(&self.inner.data_dir),
            uptime_secs: self.inner.started.elapsed().as_secs(),
            reachability: info.reachability.name().into(),
            external_addrs: info.external_addrs.iter().map(ToString::to_string).collect(),
            relay_addrs: info.relay_addrs.iter().map(ToString::to_string).collect(),
            warnings: warnings(&snap, &self.inner.data_dir),
            clock_offset_secs: snap.clock_offset_secs,
            degraded: snap.degraded.clone(),
            assume_valid: snap.assume_valid.map(|(hash, skipped)| AssumeValidView {
                hash: hash.to_string(),
                skipped_blocks: skipped,
            }),
            snapshot: snap.snapshot.map(|p| SnapshotView {
                height: p.height,
                validated_height: p.validated_height,
                done: p.done,
            }),
        }
    }

    /// Listen addresses with `/p2p/<id>`.
    pub fn listen_addrs(&self) -> Vec<Multiaddr> {
        self.net_info().listen_addrs
    }

    /// Connected peers with the tip each last showed, and their faults and points.
    pub fn peers(&self) -> Vec<PeerView> {
        let snapshot = self.shared().snapshot;
        let (tips, faults) = (snapshot.peer_tips, snapshot.peer_faults);
        let now = std::time::SystemTime::now();
        self.net_info()
            .peers
            .iter()
            .map(|(id, p)| {
                let tip = tips.get(&p.key);
                let (faults, points) = faults.get(&p.key).copied().unwrap_or_default();
                let (bytes_sent, bytes_received) = self.inner.traffic.totals(id);
                PeerView {
                    peer_id: id.to_string(),
                    addr: p.addr.to_string(),
                    direction: if p.outbound { "outbound" } else { "inbound" }.into(),
                    source: source_name(p.source),
                    agent: p.agent.clone(),
                    relayed: p.relayed,
                    height: tip.map(|t| t.0),
                    tip: tip.map(|t| t.1.to_string()),
                    connected_secs: now.duration_since(p.since).map_or(0, |d| d.as_secs()),
                    bytes_sent,
                    bytes_received,
                    ping_ms: p.ping.map(|d| (d.as_secs_f64() * 10_000.0).round() / 10.0),
                    faults,
                    points,
                }
            })
            .collect()
    }

    /// The kept peers: connected or not, and when each is dialled next.
    pub fn kept_peers(&self) -> Vec<KeptPeerView> {
        let now = std::time::SystemTime::now();
        self.net_info()
            .kept
            .iter()
            .map(|k| KeptPeerView {
                addr: k.addr.to_string(),
                peer_id: k.peer.map(|p| p.to_string()),
                source: source_name(k.source),
                connected: k.connected,
                next_dial_in_secs: k
                    .next_dial
                    .map(|t| t.duration_since(now).unwrap_or_default().as_secs()),
            })
            .collect()
    }

    /// Connected peer ids.
    pub fn peer_ids(&self) -> Vec<PeerId> {
        self.net_info().peers.keys().copied().collect()
    }

    /// Banned peers, why, and for how long still.
    pub fn bans(&self) -> Vec<BanView> {
        let now = std::time::SystemTime::now();
        self.net_info()
            .bans
            .iter()
            .map(|(id, b)| BanView {
                peer_id: id.to_string(),
                reason: b.reason.clone(),
                expires_in_secs: b.until.duration_since(now).map_or(0, |d| d.as_secs()),
            })
            .collect()
    }

    /// Every metric in the Prometheus (OpenMetrics) text format: the node's own, with the
    /// gauges that mirror state read now, and libp2p's.
    pub fn metrics(&self) -> String {
        let m = &self.inner.metrics;
        let Shared { snapshot, hashrate } = self.shared();
        m.chain_height.set(i64::from(snapshot.height));
        m.headers_height.set(i64::from(snapshot.headers));
        m.chain_work.set(snapshot.chain_work);
        m.mempool_transactions.set(i64::try_from(snapshot.mempool_size).unwrap_or(i64::MAX));
        m.mempool_bytes.set(i64::try_from(snapshot.mempool_bytes).unwrap_or(i64::MAX));
        m.hashrate.set(hashrate);
        m.set_compact(snapshot.compact);
        m.set_process();
        m.uptime_seconds
            .set(i64::try_from(self.inner.started.elapsed().as_secs()).unwrap_or(i64::MAX));
        let db = std::fs::metadata(self.inner.data_dir.join(crate::config::DB_FILE));
        m.database_bytes.set(db.map_or(0, |d| i64::try_from(d.len()).unwrap_or(i64::MAX)));
        let info = self.net_info();
        let outbound = info.peers.values().filter(|p| p.outbound).count();
        for (direction, count) in [("outbound", outbound), ("inbound", info.peers.len() - outbound)]
        {
            let labels = DirectionLabels { direction: direction.to_owned() };
            m.peers.get_or_create(&labels).set(i64::try_from(count).unwrap_or(i64::MAX));
        }
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.inner.registry);
        out
    }

    /// Events as they happen (a slow subscriber misses some and is told so).
    pub fn subscribe(&self) -> broadcast::Receiver<NodeEvent> {
        self.inner.events.subscribe()
    }

    /// Sends the command `command` builds around its reply to the core and waits for the
    /// answer. The core drops the reply unanswered only when it stops.
    async fn ask<T: Send + 'static>(
        &self,
        command: impl FnOnce(ReplyTo<T>) -> Command,
    ) -> Result<T, Unavailable> {
        let (tx, rx) = oneshot::channel();
        // The asker may have given up (its future dropped); nothing to do then.
        let reply = ReplyTo::new(move |answer| drop(tx.send(answer)));
        let input = DriverInput::Core(Input::Command(command(reply)));
        self.inner.inputs.try_send(input).map_err(|e| match e {
            std::sync::mpsc::TrySendError::Full(_) => Unavailable::Busy,
            std::sync::mpsc::TrySendError::Disconnected(_) => Unavailable::ShuttingDown,
        })?;
        rx.await.map_err(|_| Unavailable::ShuttingDown)
    }

    /// Hands `command` to the network task without waiting for room in its queue.
    fn tell_net(&self, command: NetCommand) -> Result<(), Unavailable> {
        self.inner.commands.try_send(command).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => Unavailable::Busy,
            mpsc::error::TrySendError::Closed(_) => Unavailable::ShuttingDown,
        })
    }

    /// A block by height or hash, `None` if unknown.
    ///
    /// # Errors
    /// [`QueryError`] if the database fails.
    pub fn block(&self, id: BlockId) -> Result<Option<BlockView>, QueryError> {
        let store = &self.store()?;
        let hash = match id {
            BlockId::Hash(hash) => hash,
            BlockId::Height(height) => match store.hash_at(height)? {
                Some(hash) => hash,
                None => return Ok(None),
            },
        };
        let (Some(block), Some(entry)) = (store.block(&hash)?, store.index_entry(&hash)?) else {
            return Ok(None);
        };
        let active = store.hash_at(entry.height)? == Some(hash);
        Ok(Some(BlockView::new(&block, &entry, self.shared().snapshot.height, active)))
    }

    /// The tip block.
    ///
    /// # Errors
    /// [`QueryError`] if the database fails.
    pub fn tip_block(&self) -> Result<Option<BlockView>, QueryError> {
        match self.store()?.tip()? {
            Some(tip) => self.block(BlockId::Hash(tip)),
            None => Ok(None),
        }
    }

    /// A transaction on the active chain or in the mempool, `None` if neither.
    ///
    /// # Errors
    /// [`QueryError`] if the database fails or the core does not answer.
    pub async fn tx(&self, txid: Txid) -> Result<Option<TxLookup>, QueryError> {
        let store = &self.store()?;
        let hrp = self.inner.network.params().address_hrp;
        if let Some((hash, block, pos)) = store.find_tx(&txid)?
            && let Some(entry) = store.index_entry(&hash)?
            && let Some(tx) = block.txs.get(pos as usize)
        {
            // The block's undo data holds every coin its transactions spent.
            let spent: HashMap<OutPoint, TxOut> = store
                .undo(&hash)?
                .map(|undo| undo.spent.into_iter().map(|(op, coin)| (op, coin.output)).collect())
                .unwrap_or_default();
            let prevouts = if tx.is_coinbase() {
                vec![None]
            } else {
                tx.inputs.iter().map(|i| spent.get(&i.prevout).copied()).collect()
            };
            let tip = self.shared().snapshot.height;
            return Ok(Some(TxLookup::new(
                tx,
                &prevouts,
                tip.saturating_sub(entry.height) + 1,
                Some((hash, entry.height)),
                hrp,
            )));
        }
        let found = self.ask(|reply| Command::MempoolTx { txid, reply }).await?;
        Ok(found.map(|m| TxLookup::new(&m.tx, &m.prevouts, 0, None, hrp)))
    }

    /// The UTXO set at the stored tip as a snapshot file ([`crate::snapshot`]): what it is
    /// of, its hash and its bytes. Written on a blocking thread, one at a time.
    ///
    /// # Errors
    /// [`QueryError`] if the database fails or the node is stopping.
    pub async fn snapshot(&self) -> Result<(SnapshotInfo, BlockHash, Vec<u8>), QueryError> {
        let store = self.store()?;
        let _one = self.inner.snapshots.lock().await;
        let written = tokio::task::spawn_blocking(move || store.write_snapshot(Vec::new()))
            .await
            .map_err(|_| Unavailable::ShuttingDown)?;
        match written {
            Ok((info, hash, bytes)) => Ok((info, hash, bytes)),
            Err(SnapshotError::Store(e)) => Err(QueryError::Store(e)),
            // Into memory, from a table redb keeps sorted and counts in the same read:
            // nothing else can fail.
            Err(_) => Err(QueryError::Store(StorageError::Inconsistent(
                "the stored UTXO set does not make a snapshot",
            ))),
        }
    }

    /// The mempool, highest fee rate first.
    ///
    /// # Errors
    /// [`Unavailable`] if the core does not answer.
    pub async fn mempool(&self) -> Result<MempoolView, Unavailable> {
        let entries = self.ask(|reply| Command::Mempool { reply }).await?;
        let txs: Vec<MempoolEntry> = entries
            .into_iter()
            .map(|e| MempoolEntry {
                txid: e.txid.to_string(),
                fee: e.fee,
                size: e.size,
                fee_rate: e.fee_rate,
            })
            .collect();
        let bytes = txs.iter().map(|e| e.size).sum();
        Ok(MempoolView { size: txs.len(), bytes, txs })
    }

    /// Fee rates for confirmation within 1, 3 and 6 blocks ([`crate::mempool::fees`]).
    ///
    /// # Errors
    /// [`Unavailable`] if the core does not answer.
    pub async fn fees(&self) -> Result<FeesView, Unavailable> {
        let (estimates, min_fee_rate) = self.ask(|reply| Command::Fees { reply }).await?;
        let estimates = estimates
            .into_iter()
            .map(|e| FeeEstimateView {
                target: e.target,
                fee_rate: e.fee_rate,
                basis: e.basis.as_str().to_owned(),
            })
            .collect();
        Ok(FeesView { estimates, min_fee_rate, unit: "base units per 1000 bytes".to_owned() })
    }

    /// Validates a transaction, adds it to the mempool and gossips it.
    ///
    /// # Errors
    /// The mempool's reason for refusing it, or [`Unavailable`].
    pub async fn submit_tx(&self, tx: Transaction) -> Result<Txid, RequestError<MempoolError>> {
        let result = self.ask(|reply| Command::SubmitTx { tx, reply }).await?;
        result.map_err(RequestError::Refused)
    }

    /// Mines `blocks` blocks at once (regtest), paying `to` (default: the node's key).
    ///
    /// # Errors
    /// [`MineError`] (not regtest, a block not accepted, ...) or [`Unavailable`].
    pub async fn mine(
        &self,
        blocks: u32,
        to: Option<[u8; 32]>,
    ) -> Result<Vec<BlockHash>, RequestError<MineError>> {
        let result = self.ask(|reply| Command::Mine { blocks, to, reply }).await?;
        result.map_err(RequestError::Refused)
    }

    /// Disconnects `peer` and refuses it for the configured ban duration.
    ///
    /// # Errors
    /// [`Unavailable`] if the network task's queue is full or it is stopping.
    pub async fn ban(&self, peer: PeerId, reason: &str) -> Result<(), Unavailable> {
        self.tell_net(NetCommand::Ban { peer, reason: reason.to_owned() })
    }

    /// Lifts a ban. False if `peer` is not banned.
    ///
    /// # Errors
    /// [`Unavailable`] if the network task's queue is full or it is stopping.
    pub async fn unban(&self, peer: PeerId) -> Result<bool, Unavailable> {
        let banned = self.net_info().bans.contains_key(&peer);
        self.tell_net(NetCommand::Unban(peer))?;
        Ok(banned)
    }

    /// Dials `addr`.
    ///
    /// # Errors
    /// [`Unavailable`] if the network task's queue is full or it is stopping.
    pub async fn dial(&self, addr: Multiaddr) -> Result<(), Unavailable> {
        self.tell_net(NetCommand::Dial(addr))
    }

    /// Dials `addr` and keeps that peer connected (redialled with backoff) for as long as
    /// the node runs.
    ///
    /// # Errors
    /// [`Unavailable`] if the network task's queue is full or it is stopping.
    pub async fn add_peer(&self, addr: Multiaddr) -> Result<(), Unavailable> {
        self.tell_net(NetCommand::AddPeer(addr))
    }

    /// Whether `addr` is this node: our peer id, or one of our listen or advertised
    /// addresses.
    pub fn is_own(&self, addr: &Multiaddr) -> bool {
        use crate::net::addr::{peer_id_of, without_peer_id};
        let info = self.net_info();
        let bare = without_peer_id(addr);
        peer_id_of(addr) == Some(self.inner.peer_id)
            || info
                .listen_addrs
                .iter()
                .chain(&info.external_addrs)
                .any(|a| without_peer_id(a) == bare)
    }

    /// Stops keeping the peer `target` (a kept address, or a peer id: kept or only
    /// connected) and closes its connections. False if no such peer is kept or connected.
    ///
    /// # Errors
    /// [`Unavailable`] if the network task's queue is full or it is stopping.
    pub async fn remove_peer(&self, target: &str) -> Result<bool, Unavailable> {
        use crate::net::addr::{parse_peer_addr, without_peer_id};
        let info = self.net_info();
        let peer: Option<PeerId> = target.trim().parse().ok();
        let addr = parse_peer_addr(target).ok();
        let known = info.kept.iter().any(|k| {
            (peer.is_some() && k.peer == peer)
                || addr.as_ref().is_some_and(|a| k.addr == *a || without_peer_id(&k.addr) == *a)
        }) || peer.is_some_and(|p| info.peers.contains_key(&p));
        self.tell_net(NetCommand::RemovePeer { addr, peer })?;
        Ok(known)
    }

    /// Closes the connections of `peer`. False if it is not connected.
    ///
    /// # Errors
    /// [`Unavailable`] if the network task's queue is full or it is stopping.
    pub async fn disconnect(&self, peer: PeerId) -> Result<bool, Unavailable> {
        let connected = self.net_info().peers.contains_key(&peer);
        self.tell_net(NetCommand::Disconnect(peer))?;
        Ok(connected)
    }

    /// Asks whoever runs the node to stop it (`POST /stop`, `minichain stop`): wakes
    /// [`NodeHandle::stop_requested`]. The node itself goes on until
    /// [`NodeHandle::shutdown`].
    pub fn request_stop(&self) {
        info!("stop requested through the API");
        self.inner.stop.send_replace(true);
    }

    /// Returns once [`NodeHandle::request_stop`] has been called (at once if it was).
    pub async fn stop_requested(&self) {
        let mut asked = self.inner.stop.subscribe();
        // The sender lives as long as `self`: waiting cannot fail while we hold it.
        let _ = asked.wait_for(|asked| *asked).await;
    }

    /// Stops the node: the miner, the network, and the core, which closes the database
    /// cleanly. Returns when everything has stopped; later calls return at once.
    pub async fn shutdown(&self) {
        let Some((driver, net)) = self.inner.workers.lock().ok().and_then(|mut w| w.take()) else {
            return;
        };
        info!("shutting down");
        let _ = self.inner.inputs.send(DriverInput::Core(Input::Shutdown));
        let _ = self.inner.commands.send(NetCommand::Shutdown).await;
        let _ = net.await;
        if tokio::task::spawn_blocking(move || driver.join()).await.is_err() {
            warn!("core thread did not stop cleanly");
        }
        if let Ok(mut store) = self.inner.store.write() {
            *store = None;
        }
    }
}

/// What `/status` warns of.
fn warnings(snap: &crate::core::Snapshot, data_dir: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(offset) = snap.clock_offset_secs {
        let side = if offset > 0 { "behind" } else { "ahead of" };
        let size = crate::human::duration(offset.unsigned_abs());
        out.push(format!(
            "the local clock seems ~{size} {side} the network's: check the system time"
        ));
    }
    if let Some(why) = &snap.degraded {
        out.push(why.clone());
    }
    if snap.peer_tips.is_empty() {
        out.push(
            "no peers: blocks and payments neither reach this node nor leave it \
             (add one with `minichain peers add` or --bootstrap)"
                .to_owned(),
        );
    }
    if let Some(free) = free_bytes(data_dir).filter(|&b| b < LOW_DISK) {
        out.push(format!(
            "only {} free on the data directory's disk: free some space before it fills",
            crate::human::bytes(free)
        ));
    }
    out
}

/// Free space under which `/status` warns (Bitcoin Core warns at 50 MB; a block here is
/// at most 1 MB, the database grows in larger steps).
const LOW_DISK: u64 = 200 << 20;

/// Bytes free to us on the file system holding `dir` (`None` when it cannot be told).
fn free_bytes(dir: &std::path::Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    let mut st = std::mem::MaybeUninit::<libc::statvfs>::zeroed();
    // SAFETY: `path` is a NUL-terminated string and `st` a writable statvfs that the
    // call fills in; it is read only when the call succeeded.
    let st = unsafe {
        if libc::statvfs(path.as_ptr(), st.as_mut_ptr()) != 0 {
            return None;
        }
        st.assume_init()
    };
    Some(st.f_bavail.saturating_mul(st.f_frsize))
}

/// A peer's source as the API spells it (`bootstrap`, `operator`, `kademlia`, ...).
fn source_name(source: crate::net::book::Source) -> String {
    serde_json::to_value(source)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// Bytes the files directly in `dir` take (the database, keys, peer book); 0 for what
/// cannot be read.
fn dir_bytes(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir).map_or(0, |entries| {
        entries
            .flatten()
            .filter_map(|e| e.metadata().ok())
            .filter(|m| m.is_file())
            .map(|m| m.len())
            .sum()
    })
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc::{Receiver, sync_channel};

    use super::*;
    use crate::core::Command;

    /// A handle on no node: its core queue and network queue are the given ends, so a test
    /// can close them, fill them or answer from them.
    fn handle(
        inputs: SyncSender<DriverInput>,
        commands: mpsc::Sender<NetCommand>,
    ) -> Result<NodeHandle, StorageError> {
        let mut registry = prometheus_client::registry::Registry::default();
        let metrics = NodeMetrics::register(&mut registry);
        Ok(NodeHandle::new(Parts {
            network: Network::Regtest,
            store: Arc::new(RwLock::new(Some(Store::in_memory(Network::Regtest)?))),
            events: broadcast::channel(1).0,
            inputs,
            commands,
            info: Arc::default(),
            shared: Arc::default(),
            peer_id: PeerId::random(),
            driver_thread: std::thread::spawn(|| {}),
            net_task: tokio::spawn(async {}),
            registry,
            metrics,
            data_dir: PathBuf::new(),
            traffic: crate::net::traffic::Traffic::default(),
        }))
    }

    /// Every network order the handle has, each to the same queue.
    async fn net_orders(h: &NodeHandle) -> [Result<(), Unavailable>; 6] {
        let (peer, addr) = (PeerId::random(), Multiaddr::empty());
        [
            h.ban(peer, "test").await,
            h.unban(peer).await.map(drop),
            h.disconnect(peer).await.map(drop),
            h.remove_peer("/ip4/127.0.0.1/tcp/1").await.map(drop),
            h.dial(addr.clone()).await,
            h.add_peer(addr).await,
        ]
    }

    #[tokio::test]
    async fn a_closed_network_queue_is_shutting_down_for_ban_unban_dial_and_add_peer() {
        let (inputs, _core) = sync_channel(1);
        let (commands, net) = mpsc::channel(1);
        drop(net);
        let h = handle(inputs, commands).expect("in-memory store");
        assert_eq!(net_orders(&h).await, [Err(Unavailable::ShuttingDown); 6]);
    }

    #[tokio::test]
    async fn a_full_network_queue_is_busy_for_ban_unban_dial_and_add_peer() {
        let (inputs, _core) = sync_channel(1);
        let (commands, mut net) = mpsc::channel(1);
        let h = handle(inputs, commands).expect("in-memory store");
        assert_eq!(h.dial(Multiaddr::empty()).await, Ok(()));
        assert_eq!(net_orders(&h).await, [Err(Unavailable::Busy); 6]);
        assert!(matches!(net.try_recv(), Ok(NetCommand::Dial(_))));
    }

    /// Runs a stand-in core on `inputs`: answers the mempool question with no entries and
    /// drops every other command unanswered, as a core that stops does.
    fn stand_in_core(inputs: Receiver<DriverInput>) -> std::thread::JoinHandle<()> {
        std::thread::spawn(move || {
            while let Ok(input) = inputs.recv() {
                if let DriverInput::Core(Input::Command(Command::Mempool { reply })) = input {
                    reply.with(Vec::new()).deliver();
                }
            }
        })
    }

    #[tokio::test]
    async fn each_command_gets_its_own_answer_and_an_unanswered_one_is_shutting_down() {
        let (inputs, rx) = sync_channel(4);
        let core = stand_in_core(rx);
        let h = handle(inputs, mpsc::channel(1).0).expect("in-memory store");
        let view = h.mempool().await.expect("answered");
        assert_eq!((view.size, view.bytes), (0, 0));
        let mined = h.mine(1, None).await;
        assert!(matches!(mined, Err(RequestError::Unavailable(Unavailable::ShuttingDown))));
        drop(h);
        assert!(core.join().is_ok());
    }

    #[tokio::test]
    async fn a_full_core_queue_is_busy_and_a_closed_one_shutting_down() {
        let (inputs, rx) = sync_channel(1);
        let h = handle(inputs.clone(), mpsc::channel(1).0).expect("in-memory store");
        assert!(inputs.try_send(DriverInput::Solved(None)).is_ok(), "the one slot");
        assert!(matches!(h.mempool().await, Err(Unavailable::Busy)));
        drop(rx);
        assert!(matches!(h.mempool().await, Err(Unavailable::ShuttingDown)));
    }
}
