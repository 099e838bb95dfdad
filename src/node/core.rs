//! `Core`: the node's decisions, sans-IO. It owns the chain state, the mempool and the
//! sync manager; inputs are network events, mined blocks, API commands and clock ticks;
//! outputs are network commands and miner jobs. The service thread feeds it and carries
//! its outputs out.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use libp2p::PeerId;
use libp2p::gossipsub::MessageAcceptance;
use tokio::sync::oneshot;
use tracing::{debug, info, warn};

use crate::chain::{AcceptOutcome, BlockStatus, ChainError, ChainState, TipUpdate};
use crate::consensus::genesis::genesis_hash;
use crate::consensus::{BlockError, HeaderError, Network, TxError};
use crate::mempool::{Mempool, MempoolError};
use crate::miner::{Template, build_template, mine_template};
use crate::net::protocol::{
    ChainTip, MAX_BLOCKS_PER_REQUEST, MAX_HEADERS, SyncRequest, SyncResponse,
};
use crate::net::score::{Offence, PeerScores};
use crate::net::{GossipKind, NetCommand, NetEvent};
use crate::primitives::encode::{deserialize, serialize};
use crate::primitives::{Block, BlockHash, Transaction, Txid};
use crate::storage::UtxoView;
use crate::sync::SyncManager;

/// How often the miner's template is rebuilt to pick up new transactions.
const TEMPLATE_REFRESH: Duration = Duration::from_secs(10);

/// Commands from the HTTP API.
#[derive(Debug)]
pub enum RpcCommand {
    /// Validate, add to the mempool and gossip a transaction.
    SubmitTx(Transaction, oneshot::Sender<Result<Txid, MempoolError>>),
    /// Mine blocks at once (regtest only).
    Mine {
        /// How many.
        blocks: u32,
        /// Key the coinbases pay (default: the node's payout key).
        to: Option<[u8; 32]>,
        /// Block hashes, or why not.
        reply: oneshot::Sender<Result<Vec<BlockHash>, String>>,
    },
    /// Mempool entries, highest fee rate first.
    Mempool(oneshot::Sender<Vec<MempoolView>>),
    /// A mempool transaction and its fee.
    MempoolTx(Txid, oneshot::Sender<Option<(Transaction, u64)>>),
    /// What the mempool does to one owner's coins.
    Pending([u8; 32], oneshot::Sender<Pending>),
}

/// One mempool entry as the API shows it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct MempoolView {
    /// Txid.
    pub txid: String,
    /// Fee in base units.
    pub fee: u64,
    /// Size in bytes.
    pub size: usize,
    /// Fee per 1,000 bytes.
    pub fee_rate: u64,
}

/// Mempool effects on one owner's coins.
#[derive(Debug, Clone, Default)]
pub struct Pending {
    /// Unconfirmed outputs paying the owner that no other mempool transaction spends.
    pub incoming: Vec<(crate::primitives::OutPoint, crate::primitives::TxOut)>,
    /// The owner's confirmed coins that mempool transactions spend, with their values.
    pub spent: Vec<(crate::primitives::OutPoint, u64)>,
}

/// What subscribers of `/events` hear.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum NodeEvent {
    /// A block joined the active chain.
    Block {
        /// Hash.
        hash: String,
        /// Height.
        height: u32,
        /// Transactions in it.
        txs: usize,
    },
    /// The active chain switched branches.
    Reorg {
        /// Blocks disconnected.
        depth: usize,
        /// Tip before.
        old_tip: String,
        /// Tip after.
        new_tip: String,
        /// Height after.
        height: u32,
    },
    /// A transaction entered the mempool.
    Tx {
        /// Txid.
        txid: String,
    },
}

/// Everything the core reacts to.
#[derive(Debug)]
pub enum Input {
    /// From the network task.
    Net(NetEvent),
    /// The miner found a block.
    Mined(Block),
    /// From the HTTP API.
    Rpc(RpcCommand),
    /// Time passed.
    Tick,
    /// Stop.
    Shutdown,
}

impl From<NetEvent> for Input {
    fn from(e: NetEvent) -> Self {
        Input::Net(e)
    }
}

/// Work for the miner threads. Raising `cancel` abandons it.
#[derive(Debug)]
pub struct MinerJob {
    /// The block to solve.
    pub template: Template,
    /// Raised when the job is stale (new tip, refresh, shutdown).
    pub cancel: Arc<AtomicBool>,
}

/// What the core asks the outside to do.
#[derive(Debug)]
pub enum Output {
    /// A network command.
    Net(NetCommand),
    /// A new job for the miner threads.
    Job(MinerJob),
}

/// The chain facts the API shows, refreshed after every input.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// Active tip height.
    pub height: u32,
    /// Active tip.
    pub tip: BlockHash,
    /// Best known header height.
    pub headers: u32,
    /// Transactions in the mempool.
    pub mempool_size: usize,
    /// Whether we are catching up.
    pub syncing: bool,
    /// Nonces per second over the last few seconds, 0 when not mining.
    pub hashrate: f64,
    /// The last tip each peer showed: (height, hash).
    pub peer_tips: std::collections::HashMap<PeerId, (u32, BlockHash)>,
}

/// Mining settings.
#[derive(Debug, Clone, Copy)]
pub struct MiningConfig {
    /// Whether the miner threads run.
    pub enabled: bool,
    /// Key the coinbase pays.
    pub payout: [u8; 32],
}

/// The node's decision-making state.
pub struct Core {
    chain: ChainState,
    mempool: Mempool,
    sync: SyncManager,
    scores: PeerScores,
    mining: MiningConfig,
    job: Option<(Arc<AtomicBool>, BlockHash, Instant)>,
    hashes: Arc<AtomicU64>,
    rate: (Instant, u64, f64),
    snapshot: Arc<RwLock<Snapshot>>,
    events: tokio::sync::broadcast::Sender<NodeEvent>,
}

impl Core {
    /// A core over `chain`.
    pub fn new(
        chain: ChainState,
        mempool: Mempool,
        mining: MiningConfig,
        hashes: Arc<AtomicU64>,
        snapshot: Arc<RwLock<Snapshot>>,
        events: tokio::sync::broadcast::Sender<NodeEvent>,
    ) -> Self {
        let genesis = genesis_hash(chain.params().network);
        let mut core = Self {
            chain,
            mempool,
            sync: SyncManager::new(genesis),
            scores: PeerScores::default(),
            mining,
            job: None,
            hashes,
            rate: (Instant::now(), 0, 0.0),
            snapshot,
            events,
        };
        core.refresh_snapshot();
        core
    }

    /// The chain state.
    pub fn chain(&self) -> &ChainState {
        &self.chain
    }

    /// The mempool.
    pub fn mempool(&self) -> &Mempool {
        &self.mempool
    }

    fn network(&self) -> Network {
        self.chain.params().network
    }

    /// Handles one input. `now_unix` is the wall clock for block time rules.
    pub fn handle(&mut self, input: Input, now_unix: u64, now: Instant) -> Vec<Output> {
        let mut out = Vec::new();
        match input {
            Input::Net(event) => self.on_net(event, now_unix, now, &mut out),
            Input::Mined(block) => self.on_mined(block, now_unix, now, &mut out),
            Input::Rpc(cmd) => self.on_rpc(cmd, now_unix, now, &mut out),
            Input::Tick => self.on_tick(now_unix, now, &mut out),
            Input::Shutdown => self.stop_mining(),
        }
        self.sync.log_progress(&self.chain, now);
        self.update_job(now_unix, now, &mut out);
        self.refresh_snapshot();
        out
    }

    fn net(out: &mut Vec<Output>, cmds: Vec<NetCommand>) {
        out.extend(cmds.into_iter().map(Output::Net));
    }

    fn on_net(&mut self, event: NetEvent, now_unix: u64, now: Instant, out: &mut Vec<Output>) {
        match event {
            NetEvent::Connected { peer, .. } => Self::net(out, self.sync.connected(peer, now)),
            NetEvent::Disconnected { peer } => {
                self.scores.forget(&peer);
                Self::net(out, self.sync.disconnected(peer, &self.chain, now))
            }
            NetEvent::Misbehaved { peer, offence } => self.penalize(peer, offence, now, out),
            NetEvent::Gossip { id, peer, kind, data } => {
                let acceptance = match kind {
                    GossipKind::Block => self.on_gossip_block(peer, &data, now_unix, now, out),
                    GossipKind::Tx => self.on_gossip_tx(peer, &data, now, out),
                };
                out.push(Output::Net(NetCommand::Verdict { id, acceptance }));
            }
            NetEvent::Request { id, peer, req } => {
                let resp = self.serve(&req);
                debug!(peer = %peer, ?req, "sync request served");
                out.push(Output::Net(NetCommand::Respond { id, resp }));
            }
            NetEvent::Response { id, peer, resp } => {
                if let Err(offence) = self.on_response(id, peer, resp, now_unix, now, out) {
                    self.penalize(peer, offence, now, out);
                }
            }
            NetEvent::RequestFailed { id, peer, reason, timed_out } => {
                debug!(peer = %peer, %reason, "request failed");
                if timed_out && self.sync.stalled_on_proof(id) {
                    self.penalize(peer, Offence::Stalled, now, out);
                }
                Self::net(out, self.sync.failed(id, &self.chain, now));
            }
        }
    }

    /// Answers a peer's sync request from our chain.
    fn serve(&self, req: &SyncRequest) -> SyncResponse {
        match req {
            SyncRequest::Status => SyncResponse::Status(self.chain_tip()),
            SyncRequest::Headers { locator, max } => {
                let locator: Vec<BlockHash> =
                    locator.iter().take(64).map(|h| BlockHash(*h)).collect();
                let max = (*max as usize).min(MAX_HEADERS);
                let headers = self.chain.headers_after(&locator, max);
                SyncResponse::Headers(headers.iter().flat_map(|h| h.to_bytes()).collect())
            }
            SyncRequest::Blocks(hashes) => {
                if hashes.len() > MAX_BLOCKS_PER_REQUEST {
                    return SyncResponse::Refused(format!(
                        "at most {MAX_BLOCKS_PER_REQUEST} blocks per request"
                    ));
                }
                let blocks = hashes
                    .iter()
                    .filter_map(|h| self.chain.block(&BlockHash(*h)).ok().flatten())
                    .map(|b| serialize(&b))
                    .collect();
                SyncResponse::Blocks(blocks)
            }
        }
    }

    fn chain_tip(&self) -> ChainTip {
        let tip = self.chain.tip_entry();
        ChainTip {
            genesis: genesis_hash(self.network()).0,
            tip: tip.hash().0,
            height: tip.height,
            work: tip.chain_work.to_le_bytes::<32>(),
        }
    }

    /// Handles an answer to one of our sync requests. `Err` is the peer's offence.
    fn on_response(
        &mut self,
        id: u64,
        peer: PeerId,
        resp: SyncResponse,
        now_unix: u64,
        now: Instant,
        out: &mut Vec<Output>,
    ) -> Result<(), Offence> {
        if !self.sync.is_pending(id) {
            return Ok(());
        }
        let bad = |m: crate::sync::Misbehaviour| Offence::BadSyncData(m.0);
        let cmds = match resp {
            SyncResponse::Status(tip) => {
                self.sync.on_status(id, tip, &self.chain, now).map_err(bad)?
            }
            SyncResponse::Headers(bytes) => {
                let mut unresolved = 0;
                let cmds = self
                    .sync
                    .on_headers(id, &bytes, &mut self.chain, now_unix, now, &mut unresolved)
                    .map_err(bad)?;
                for _ in 0..unresolved {
                    self.penalize(peer, Offence::OrphanBlock, now, out);
                }
                cmds
            }
            SyncResponse::Blocks(blocks) => {
                let Some(asked) = self.sync.on_blocks(id) else {
                    return Err(Offence::BadSyncData("blocks in answer to another request".into()));
                };
                if blocks.len() > asked.hashes.len() {
                    return Err(Offence::BadSyncData("sent more blocks than asked".into()));
                }
                let mut received = Vec::with_capacity(blocks.len());
                for bytes in blocks {
                    let block = deserialize::<Block>(&bytes)
                        .map_err(|e| Offence::BadSyncData(format!("undecodable block: {e}")))?;
                    let hash = block.block_hash();
                    if !asked.hashes.contains(&hash) {
                        return Err(Offence::BadSyncData("sent a block not asked for".into()));
                    }
                    received.push(hash);
                    self.accept_block(block, Some(peer), now_unix, now, out);
                }
                let omitted: Vec<u32> = asked
                    .hashes
                    .iter()
                    .filter(|h| !received.contains(h))
                    .filter_map(|h| self.chain.entry(h).map(|e| e.height))
                    .collect();
                if let Some(lowest) = omitted.iter().min() {
                    if asked.provable {
                        return Err(Offence::WithheldBlocks(omitted.len()));
                    }
                    debug!(peer = %peer, from = lowest, "peer lacks blocks it might have had");
                    self.sync.cannot_serve(peer, *lowest);
                }
                self.sync.advance(&self.chain, now)
            }
            SyncResponse::Refused(reason) => {
                debug!(peer = %peer, %reason, "peer refused our request");
                self.sync.failed(id, &self.chain, now)
            }
        };
        Self::net(out, cmds);
        Ok(())
    }

    /// Charges `offence` to `peer` (logged), banning it at the threshold.
    fn penalize(&mut self, peer: PeerId, offence: Offence, now: Instant, out: &mut Vec<Output>) {
        let (points, ban) = self.scores.penalize(peer, &offence, now);
        if ban || offence.points() >= 10 {
            warn!(peer = %peer, points, reason = %offence, "peer misbehaved");
        } else {
            debug!(peer = %peer, points, reason = %offence, "peer misbehaved");
        }
        if ban {
            out.push(Output::Net(NetCommand::Ban { peer, reason: offence.to_string() }));
        }
    }

    fn on_gossip_block(
        &mut self,
        peer: PeerId,
        data: &[u8],
        now_unix: u64,
        now: Instant,
        out: &mut Vec<Output>,
    ) -> MessageAcceptance {
        let Ok(block) = deserialize::<Block>(data) else {
            self.penalize(peer, Offence::UndecodableGossip("block"), now, out);
            return MessageAcceptance::Reject;
        };
        let parent = block.header.prev_blockhash;
        match self.accept_block(block, Some(peer), now_unix, now, out) {
            Some(BlockStatus::Stored) => MessageAcceptance::Accept,
            Some(BlockStatus::Duplicate) => MessageAcceptance::Ignore,
            Some(BlockStatus::Orphan { .. }) => {
                self.sync.note_orphan(peer, parent);
                Self::net(out, self.sync.catch_up_from(peer, &self.chain, now));
                MessageAcceptance::Ignore
            }
            None => MessageAcceptance::Reject,
        }
    }

    fn on_gossip_tx(
        &mut self,
        peer: PeerId,
        data: &[u8],
        now: Instant,
        out: &mut Vec<Output>,
    ) -> MessageAcceptance {
        let Ok(tx) = deserialize::<Transaction>(data) else {
            self.penalize(peer, Offence::UndecodableGossip("transaction"), now, out);
            return MessageAcceptance::Reject;
        };
        match self.accept_tx(tx) {
            Ok(txid) => {
                debug!(peer = %peer, %txid, "transaction accepted from gossip");
                MessageAcceptance::Accept
            }
            Err(MempoolError::Invalid(TxError::InputMissingOrSpent(_))) => {
                // Behind the network, honest peers relay what we cannot place yet.
                if !self.sync.is_syncing(&self.chain) {
                    self.penalize(peer, Offence::UnknownInputs, now, out);
                }
                MessageAcceptance::Ignore
            }
            Err(MempoolError::AlreadyKnown(_)) => MessageAcceptance::Ignore,
            Err(e @ (MempoolError::Invalid(_) | MempoolError::Coinbase)) => {
                self.penalize(peer, Offence::InvalidTx(e.to_string()), now, out);
                MessageAcceptance::Reject
            }
            Err(e) => {
                debug!(peer = %peer, reason = %e, "transaction not taken");
                MessageAcceptance::Ignore
            }
        }
    }

    fn accept_tx(&mut self, tx: Transaction) -> Result<Txid, MempoolError> {
        let reader = self.chain.utxos()?;
        let txid = self.mempool.accept(tx, &reader, self.chain.height(), self.chain.params())?;
        // No subscribers is fine.
        let _ = self.events.send(NodeEvent::Tx { txid: txid.to_string() });
        Ok(txid)
    }

    /// Accepts a block from `peer` (or ourselves). Returns its status, `None` if invalid.
    fn accept_block(
        &mut self,
        block: Block,
        peer: Option<PeerId>,
        now_unix: u64,
        now: Instant,
        out: &mut Vec<Output>,
    ) -> Option<BlockStatus> {
        let hash = block.block_hash();
        match self.chain.accept_block(block, now_unix) {
            Ok(outcome) => {
                let own_error = outcome.error_for(&hash).is_some();
                self.after_accept(&outcome, peer, now, out);
                if own_error { None } else { Some(outcome.status) }
            }
            Err(ChainError::InvalidHeader { error: HeaderError::TimeTooNew { .. }, .. }) => {
                debug!(%hash, "block from the future, ignored for now");
                Some(BlockStatus::Duplicate)
            }
            Err(ChainError::UnknownParent { .. }) => Some(BlockStatus::Orphan { missing: hash }),
            Err(e) if e.is_peer_fault() => {
                warn!(%hash, peer = ?peer.map(|p| p.to_string()), reason = %e, "block rejected");
                if let Some(p) = peer
                    && is_provably_bad(&e)
                {
                    self.penalize(p, Offence::InvalidBlock(e.to_string()), now, out);
                }
                None
            }
            Err(e) => {
                warn!(%hash, error = %e, "block not stored");
                Some(BlockStatus::Duplicate)
            }
        }
    }

    fn after_accept(
        &mut self,
        outcome: &AcceptOutcome,
        peer: Option<PeerId>,
        now: Instant,
        out: &mut Vec<Output>,
    ) {
        for (hash, e) in &outcome.invalid {
            warn!(%hash, peer = ?peer.map(|p| p.to_string()), reason = %e, "block rejected while connecting");
            if let Some(p) = peer {
                self.penalize(p, Offence::InvalidBlock(e.to_string()), now, out);
            }
        }
        if outcome.update.is_empty() {
            return;
        }
        self.log_tip_update(&outcome.update);
        let reader = match self.chain.utxos() {
            Ok(r) => r,
            Err(e) => {
                warn!(error = %e, "cannot read the UTXO set to update the mempool");
                return;
            }
        };
        let back = self.mempool.update_for_tip(
            &outcome.update,
            &reader,
            self.chain.height(),
            self.chain.params(),
        );
        if !back.is_empty() {
            info!(
                count = back.len(),
                "transactions of disconnected blocks returned to the mempool"
            );
        }
    }

    fn log_tip_update(&self, update: &TipUpdate) {
        let syncing = self.sync.is_syncing(&self.chain);
        if !update.disconnected.is_empty() {
            let old = update.disconnected.first().map(|b| b.block_hash()).unwrap_or_default();
            let _ = self.events.send(NodeEvent::Reorg {
                depth: update.disconnected.len(),
                old_tip: old.to_string(),
                new_tip: self.chain.tip().to_string(),
                height: self.chain.height(),
            });
            info!(
                depth = update.disconnected.len(),
                old_tip = %old,
                new_tip = %self.chain.tip(),
                height = self.chain.height(),
                "reorg: {} blocks disconnected, {} connected",
                update.disconnected.len(),
                update.connected.len()
            );
        }
        for block in &update.connected {
            let height = self.chain.entry(&block.block_hash()).map_or(0, |e| e.height);
            let hash = block.block_hash().to_string();
            let _ = self.events.send(NodeEvent::Block { hash, height, txs: block.txs.len() });
            if syncing {
                debug!(height, hash = %block.block_hash(), txs = block.txs.len(), "block connected");
            } else {
                info!(
                    height,
                    hash = %block.block_hash(),
                    txs = block.txs.len(),
                    time = block.header.time,
                    "block connected"
                );
            }
        }
    }

    fn publish_block(block: &Block, out: &mut Vec<Output>) {
        out.push(Output::Net(NetCommand::Publish {
            kind: GossipKind::Block,
            data: serialize(block),
        }));
    }

    fn on_mined(&mut self, block: Block, now_unix: u64, now: Instant, out: &mut Vec<Output>) {
        let hash = block.block_hash();
        let txs = block.txs.len();
        let copy = block.clone();
        if let Some(BlockStatus::Stored) = self.accept_block(block, None, now_unix, now, out)
            && self.chain.tip() == hash
        {
            info!(height = self.chain.height(), %hash, txs, hashrate = format!("{:.0}", self.rate.2), "mined block");
            Self::publish_block(&copy, out);
        }
    }

    fn on_rpc(&mut self, cmd: RpcCommand, now_unix: u64, now: Instant, out: &mut Vec<Output>) {
        match cmd {
            // Replies go out after the snapshot is refreshed, so a client that reads
            // /status right after its call sees the effect of that call.
            RpcCommand::SubmitTx(tx, reply) => {
                let data = serialize(&tx);
                let result = self.accept_tx(tx);
                if let Ok(txid) = &result {
                    info!(%txid, "transaction submitted");
                    out.push(Output::Net(NetCommand::Publish { kind: GossipKind::Tx, data }));
                }
                self.refresh_snapshot();
                let _ = reply.send(result);
            }
            RpcCommand::Mine { blocks, to, reply } => {
                let result =
                    self.mine_now(blocks, to.unwrap_or(self.mining.payout), now_unix, now, out);
                self.refresh_snapshot();
                let _ = reply.send(result);
            }
            RpcCommand::Mempool(reply) => {
                let entries = self
                    .mempool
                    .iter_by_fee_rate()
                    .map(|e| MempoolView {
                        txid: e.txid.to_string(),
                        fee: e.fee,
                        size: e.size,
                        fee_rate: e.fee_rate(),
                    })
                    .collect();
                let _ = reply.send(entries);
            }
            RpcCommand::MempoolTx(txid, reply) => {
                let _ = reply.send(self.mempool.get(&txid).map(|e| (e.tx.clone(), e.fee)));
            }
            RpcCommand::Pending(owner, reply) => {
                let _ = reply.send(self.pending_for(&owner));
            }
        }
    }

    /// What the mempool does to the coins of `owner`.
    fn pending_for(&self, owner: &[u8; 32]) -> Pending {
        let mut pending = Pending::default();
        let reader = self.chain.utxos().ok();
        for entry in self.mempool.iter_by_fee_rate() {
            for input in &entry.tx.inputs {
                if self.mempool.contains(&input.prevout.txid) {
                    continue; // an unconfirmed parent: not a confirmed coin
                }
                let coin = reader.as_ref().and_then(|r| r.coin(&input.prevout).ok().flatten());
                if let Some(coin) = coin.filter(|c| c.output.pubkey == *owner) {
                    pending.spent.push((input.prevout, coin.output.value));
                }
            }
            for (vout, out) in entry.tx.outputs.iter().enumerate() {
                let op = crate::primitives::OutPoint { txid: entry.txid, vout: vout as u32 };
                if out.pubkey == *owner && self.mempool.spender(&op).is_none() {
                    pending.incoming.push((op, *out));
                }
            }
        }
        pending
    }

    /// Mines `n` blocks on the spot (regtest, where every other hash wins).
    fn mine_now(
        &mut self,
        n: u32,
        payout: [u8; 32],
        now_unix: u64,
        now: Instant,
        out: &mut Vec<Output>,
    ) -> Result<Vec<BlockHash>, String> {
        if self.network() != Network::Regtest {
            return Err("mining on demand is only available on regtest".into());
        }
        let mut hashes = Vec::new();
        let max_time = now_unix + u64::from(self.chain.params().max_future_block_time);
        for _ in 0..n {
            let template = build_template(&self.chain, &self.mempool, payout, now_unix);
            if u64::from(template.block.header.time) > max_time {
                return Err(format!(
                    "mined {} blocks, then stopped: block times must stay after the median of the \
                     last 11 and would now run more than {} s ahead of the clock; wait and retry",
                    hashes.len(),
                    self.chain.params().max_future_block_time
                ));
            }
            let block = mine_template(template, 1, &AtomicBool::new(false), &self.hashes)
                .ok_or("nonce search was cancelled")?;
            let hash = block.block_hash();
            let copy = block.clone();
            match self.accept_block(block, None, now_unix, now, out) {
                Some(BlockStatus::Stored) if self.chain.tip() == hash => {
                    Self::publish_block(&copy, out);
                    hashes.push(hash);
                }
                _ => return Err(format!("mined block {hash} was not accepted")),
            }
        }
        Ok(hashes)
    }

    fn on_tick(&mut self, _now_unix: u64, now: Instant, out: &mut Vec<Output>) {
        Self::net(out, self.sync.tick(&self.chain, now));
        let elapsed = now.duration_since(self.rate.0);
        if elapsed >= Duration::from_secs(2) {
            let total = self.hashes.load(Ordering::Relaxed);
            let rate = (total - self.rate.1) as f64 / elapsed.as_secs_f64();
            self.rate = (now, total, if self.mining.enabled { rate } else { 0.0 });
        }
    }

    fn stop_mining(&mut self) {
        if let Some((cancel, _, _)) = self.job.take() {
            cancel.store(true, Ordering::Relaxed);
        }
        self.mining.enabled = false;
    }

    /// Hands the miner a new template when the tip moved or the old one is stale. While
    /// catching up, mining waits: blocks on an old tip would be wasted work.
    fn update_job(&mut self, now_unix: u64, now: Instant, out: &mut Vec<Output>) {
        if !self.mining.enabled {
            return;
        }
        let tip = self.chain.tip();
        let stale = match &self.job {
            Some((_, parent, made)) => {
                *parent != tip || now.duration_since(*made) >= TEMPLATE_REFRESH
            }
            None => true,
        };
        let syncing = self.sync.is_syncing(&self.chain);
        if !stale || syncing {
            if syncing && let Some((cancel, _, _)) = self.job.take() {
                cancel.store(true, Ordering::Relaxed);
            }
            return;
        }
        if let Some((cancel, _, _)) = self.job.take() {
            cancel.store(true, Ordering::Relaxed);
        }
        let template = build_template(&self.chain, &self.mempool, self.mining.payout, now_unix);
        let cancel = Arc::new(AtomicBool::new(false));
        self.job = Some((cancel.clone(), tip, now));
        out.push(Output::Job(MinerJob { template, cancel }));
    }

    fn refresh_snapshot(&mut self) {
        let peer_tips =
            self.sync.peer_tips().map(|(p, t)| (p, (t.height, BlockHash(t.tip)))).collect();
        let snapshot = Snapshot {
            peer_tips,
            height: self.chain.height(),
            tip: self.chain.tip(),
            headers: self.chain.best_header().height,
            mempool_size: self.mempool.len(),
            syncing: self.sync.is_syncing(&self.chain),
            hashrate: self.rate.2,
        };
        if let Ok(mut s) = self.snapshot.write() {
            *s = snapshot;
        }
    }
}

/// Errors that prove the sender relayed invalid data (worth a ban), as opposed to data
/// that is merely early, late or mutated in transit.
fn is_provably_bad(e: &ChainError) -> bool {
    match e {
        ChainError::InvalidBlock { error, .. } => {
            error.condemns_header() || matches!(error, BlockError::Tx { .. })
        }
        ChainError::InvalidHeader { .. } | ChainError::KnownInvalid(_) => true,
        _ => false,
    }
}
