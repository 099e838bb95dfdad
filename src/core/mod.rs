//! `Core`: the node's decisions as a state machine. `handle(input, now) -> outputs`.
//!
//! It is synchronous and pure: no sockets, no runtime, no clock, no threads. The time comes
//! in as an argument; peers are [`PeerKey`]s that the network layer maps to its own
//! identities; everything the node must do comes back as an [`Output`] for the driver
//! (`node::service`) to carry out. So one thread can drive many cores (tests, a
//! simulator) deterministically.
//!
//! `Core` only dispatches, to one manager per concern:
//!
//! ```text
//!  Input ─▶ Core::handle ─┬─ ledger   chain state + mempool: accept blocks and transactions
//!                         ├─ sync     which peer to ask for what (headers first, blocks)
//!                         ├─ serve    answers to peers' sync requests
//!                         ├─ verdict  blame: ignore, a fault, or a typed offence
//!                         ├─ scores   misbehaviour points and bans, fault counts
//!                         ├─ skew     the local clock against the network's
//!                         ├─ mining   miner jobs and blocks mined on demand (regtest)
//!                         └─ query    replies to the API's questions
//!        ◀─ Vec<Output>: network actions, events, miner jobs, replies
//! ```
//!
//! The inputs and outputs themselves are in [`messages`].

mod compact;
mod ledger;
pub mod limit;
mod messages;
mod mining;
mod own_txs;
mod query;
mod reply;
pub mod score;
mod history;
mod serve;
mod status;
pub mod skew;
pub mod verdict;

use std::collections::HashMap;
use std::time::Duration;

use tracing::{debug, warn};

pub use self::compact::CompactStats;
pub use self::history::{History, SnapshotProgress};
pub use self::ledger::Ledger;
pub use self::messages::{Command, Input, NetAction, NetEvent, NodeEvent, Output};
pub use self::mining::{MineError, Mining, TEMPLATE_REFRESH};
pub use self::query::{MempoolEntry, MempoolTx, Pending};
pub use self::reply::{Reply, ReplyTo};
pub use self::score::{BAN_THRESHOLD, Charge, Fault, Offence, PeerScores};
pub use self::serve::chain_tip;
pub use self::status::Snapshot;
pub use self::verdict::{Judgement, Rejection, Verdict, judge};
use crate::chain::{BlockStatus, ChainError, ChainState};
use crate::consensus::HeaderError;
use crate::consensus::genesis::genesis_hash;
use crate::mempool::Mempool;
use crate::primitives::encode::{deserialize, serialize};
use crate::primitives::{Block, BlockHash, PeerKey, Time, Transaction, Txid};
use crate::protocol::{GossipKind, SyncRequest, SyncResponse};
use crate::sync::{Ask, Stop, SyncManager};

/// How often transactions submitted through our own API are announced again while they
/// wait in the mempool (Bitcoin Core's wallet rebroadcast): a peer that missed the first
/// announcement, or joined since, hears of them. Longer than gossipsub's duplicate cache.
pub const REBROADCAST: Duration = Duration::from_secs(120);
/// How often the core wants a [`Input::Tick`] when nothing else happens.
pub const TICK: Duration = Duration::from_millis(250);
/// Stored blocks whose sender is remembered until they connect (for blame): the download
/// window twice over; the oldest are forgotten first.
const MAX_SOURCES: usize = 2 * crate::sync::DOWNLOAD_WINDOW;

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
    ledger: Ledger,
    /// Who sent each stored block that has not connected yet: a block found invalid when
    /// a later block lets the chain try it is blamed on its sender, not on the later one's.
    sources: HashMap<BlockHash, PeerKey>,
    source_order: std::collections::VecDeque<BlockHash>,
    /// Connected peers' names in logs (their peer ids, from [`NetEvent::Named`]).
    names: HashMap<PeerKey, String>,
    sync: SyncManager,
    scores: PeerScores,
    clock: skew::ClockCheck,
    /// Transactions submitted through our API, still unconfirmed: when each was last
    /// announced.
    own_txs: std::collections::BTreeMap<Txid, Time>,
    mining: Mining,
    /// The history of the snapshot the node started from, validated in the background.
    history: Option<History>,
    /// Compact blocks being rebuilt.
    relay: compact::CompactRelay,
    out: Vec<Output>,
    /// The time of the last input, for the snapshot.
    now: Time,
}

impl Core {
    /// A core over `chain` and `mempool`.
    pub fn new(chain: ChainState, mempool: Mempool, mining: MiningConfig) -> Self {
        let genesis = genesis_hash(chain.params().network);
        Self {
            ledger: Ledger::new(chain, mempool),
            sources: HashMap::new(),
            names: HashMap::new(),
            source_order: std::collections::VecDeque::new(),
            sync: SyncManager::new(genesis),
            scores: PeerScores::default(),
            clock: skew::ClockCheck::default(),
            own_txs: std::collections::BTreeMap::new(),
            mining: Mining::new(mining),
            history: None,
            relay: compact::CompactRelay::new(true),
            out: Vec::new(),
            now: Time::from_secs(0),
        }
    }

    /// Whether the node speaks compact blocks (on by default): off, it announces and
    /// relays blocks whole only, as nodes before compact blocks did.
    pub fn set_compact_blocks(&mut self, on: bool) {
        self.relay = compact::CompactRelay::new(on);
    }

    /// The chain state.
    pub fn chain(&self) -> &ChainState {
        self.ledger.chain()
    }

    /// The mempool.
    pub fn mempool(&self) -> &Mempool {
        self.ledger.mempool()
    }

    /// Handles one input at time `now`; returns what to do.
    pub fn handle(&mut self, input: Input, now: Time) -> Vec<Output> {
        self.now = now;
        match input {
            Input::Net(event) => self.on_net(event, now),
            Input::Mined { block, hashrate } => self.on_mined(block, hashrate, now),
            Input::Solved(block) => self.on_solved(block, now),
            Input::Command(command) => self.on_command(command, now),
            Input::Tick => {
                self.ledger.flush(Some(now));
                self.feed_history(now);
                self.clock.tick(now);
                self.rebroadcast(now);
                self.compact_tick(None, now);
                let (asks, staller) = self.sync.tick(self.ledger.chain(), now);
                // Nothing is sent while the store is halted: nobody stalls then.
                if let Some(peer) = staller
                    && self.ledger.halted().is_none()
                {
                    self.apply(peer, judge(Rejection::Stalled), now);
                }
                self.ask(asks);
            }
            Input::Shutdown => {
                self.ledger.flush(None);
                if let Some(history) = self.history.as_mut() {
                    history.flush(None);
                }
                self.mining.stop(&mut self.out);
            }
        }
        // A node that cannot store blocks mines none either.
        let syncing = self.is_syncing() || self.ledger.halted().is_some();
        self.sync.log_progress(self.ledger.chain(), self.ledger.connected_txs(), now);
        self.mining.update(&self.ledger, syncing, now, &mut self.out);
        std::mem::take(&mut self.out)
    }

    fn is_syncing(&self) -> bool {
        self.sync.is_syncing(self.ledger.chain())
    }

    /// Sends sync requests; once the store cannot be written, only tip requests (what is
    /// fetched could not be stored: no loop, no CPU burnt, no peer blamed).
    fn ask(&mut self, asks: Vec<Ask>) {
        let halted = self.ledger.halted().is_some();
        let asks = asks.into_iter().filter(|a| !halted || a.req == SyncRequest::Status);
        self.out.extend(asks.map(|a| Output::Net(NetAction::Request(a))));
    }

    fn on_net(&mut self, event: NetEvent, now: Time) {
        match event {
            NetEvent::Connected { peer, noban } => {
                self.scores.connected(peer, noban, now);
                let asks = self.sync.connected(peer, now);
                self.ask(asks);
                let peers = self.sync.peer_count();
                self.out.push(Output::Event(NodeEvent::Peer { connected: true, peers }));
            }
            NetEvent::Named { peer, name } => {
                self.names.insert(peer, name);
            }
            NetEvent::Disconnected { peer } => {
                self.names.remove(&peer);
                self.scores.forget(&peer);
                let asks = self.sync.disconnected(peer, self.ledger.chain(), now);
                self.ask(asks);
                self.compact_tick(Some(peer), now);
                let peers = self.sync.peer_count();
                self.out.push(Output::Event(NodeEvent::Peer { connected: false, peers }));
            }
            NetEvent::Misbehaved { peer, offence } => {
                self.apply(peer, judge(Rejection::Offence(offence)), now);
            }
            NetEvent::BadFrame { peer, error } => {
                self.apply(peer, judge(Rejection::Frame(&error)), now);
            }
            NetEvent::Gossip { id, peer, kind, data } => {
                let verdict = match kind {
                    GossipKind::Block => Some(self.on_gossip_block(peer, &data, now)),
                    GossipKind::Tx => Some(self.on_gossip_tx(peer, &data, now)),
                    GossipKind::Header if self.relay.enabled() => {
                        self.on_gossip_header(id, peer, &data, now)
                    }
                    GossipKind::Header => Some(Verdict::Ignore),
                };
                if let Some(verdict) = verdict {
                    self.out.push(Output::Net(NetAction::Validate { id, verdict }));
                }
            }
            NetEvent::Request { id, req: SyncRequest::CompactBlock(hash), .. } => {
                self.serve_compact(id, BlockHash(hash), now);
            }
            NetEvent::Request { id, peer, req } => {
                let history = self.history.as_ref().map(History::chain);
                let resp = serve::answer(self.ledger.chain(), history, self.ledger.mempool(), &req);
                debug!(peer = %self.who(peer), %req, "sync request served: {req}");
                self.out.push(Output::Net(NetAction::Respond { id, resp }));
            }
            NetEvent::Response { id, peer, resp } => self.on_response(id, peer, resp, now),
            NetEvent::RequestFailed { id, peer, timed_out } => {
                if timed_out && self.sync.is_pending(id) {
                    self.apply(peer, judge(Rejection::TimedOut), now);
                }
                let asks = self.sync.failed(id, self.ledger.chain(), now);
                self.ask(asks);
                self.compact_failed(id, now);
            }
        }
    }

    fn remember_source(&mut self, hash: BlockHash, peer: PeerKey) {
        if self.sources.insert(hash, peer).is_none() {
            self.source_order.push_back(hash);
        }
        while self.source_order.len() > MAX_SOURCES {
            if let Some(old) = self.source_order.pop_front() {
                self.sources.remove(&old);
            }
        }
    }

    /// What logs call `peer`: its peer id while connected, else its key (`peer#3`).
    fn who(&self, peer: PeerKey) -> String {
        self.names.get(&peer).cloned().unwrap_or_else(|| peer.to_string())
    }

    /// [`Core::who`] of a peer that may be unknown (`-`: a block of our own).
    fn who_of(&self, peer: Option<PeerKey>) -> String {
        peer.map_or_else(|| "-".to_owned(), |p| self.who(p))
    }

    /// Applies `judge`'s judgement to `peer`: a penalty is charged (logged), banning it at
    /// the threshold (a `noban` peer is disconnected instead); a fault is counted, and
    /// enough of them disconnect it. The only place the core charges a peer. Returns the
    /// judgement for the gossip verdict.
    fn apply(&mut self, peer: PeerKey, judgement: Judgement, now: Time) -> Judgement {
        match &judgement {
            Judgement::Penalize(offence) => {
                let (points, charge) = self.scores.penalize(peer, offence, now);
                // A ban or a disconnect is logged once, by the network edge, as it
                // carries it out; what only adds points is logged here.
                let who = self.who(peer);
                if charge == Charge::Noted && offence.points() >= 10 {
                    warn!(peer = %who, points, reason = %offence, "peer misbehaved: {offence}");
                } else {
                    debug!(peer = %who, points, reason = %offence, "peer misbehaved: {offence}");
                }
                let action = match charge {
                    Charge::Noted => None,
                    Charge::Ban => Some(NetAction::Ban { peer, offence: offence.clone() }),
                    Charge::Disconnect => Some(NetAction::Disconnect {
                        peer,
                        reason: format!(
                            "{offence} (a peer the operator named: disconnected, not banned)"
                        ),
                    }),
                };
                self.out.extend(action.map(Output::Net));
            }
            Judgement::Fault(fault) => {
                let (faults, disconnect) = self.scores.fault(peer, now);
                debug!(peer = %self.who(peer), faults, reason = %fault, "peer fault: {fault}");
                if disconnect {
                    let window = score::FAULT_WINDOW.as_secs() / 60;
                    let reason =
                        format!("{faults} faults in {window} min, the last: {fault} (not a ban)");
                    self.out.push(Output::Net(NetAction::Disconnect { peer, reason }));
                }
            }
            Judgement::Accept | Judgement::Ignore => {}
        }
        judgement
    }

    /// Accepts a block from `peer` (or ourselves) and judges whatever it refused.
    fn accept_block(&mut self, block: Block, peer: Option<PeerKey>, now: Time) -> Judgement {
        self.accept_blocks(vec![block], peer, now).pop().unwrap_or(Judgement::Ignore)
    }

    /// Accepts a run of blocks from `peer` (or ourselves) in one transition, and judges
    /// whatever it refused. Returns each block's own judgement, in order (none if the store
    /// failed: nobody is to blame and the blocks are fetched again).
    fn accept_blocks(
        &mut self,
        blocks: Vec<Block>,
        peer: Option<PeerKey>,
        now: Time,
    ) -> Vec<Judgement> {
        let syncing = self.is_syncing();
        let hashes: Vec<BlockHash> = blocks.iter().map(Block::block_hash).collect();
        if let Some(p) = peer {
            for hash in &hashes {
                self.remember_source(*hash, p);
            }
        }
        let result = self.ledger.accept_blocks(blocks, syncing, now, &mut self.out);
        if result.statuses.is_empty() {
            for hash in &hashes {
                self.sources.remove(hash);
            }
            return Vec::new();
        }
        for connected in &result.connected {
            self.sources.remove(connected);
        }
        let mut invalid = HashMap::new();
        let mut condemned = false;
        for (bad, error) in &result.invalid {
            let sender = self.sources.remove(bad);
            let judgement = judge(Rejection::Connect(error));
            if judgement == Judgement::Ignore {
                // Early (a time too far ahead) or otherwise nobody's fault: dropped.
                debug!(hash = %bad, peer = %self.who_of(sender), reason = %error, "block not taken");
            } else {
                warn!(hash = %bad, peer = %self.who_of(sender), reason = %error, "block rejected while connecting");
                condemned = true;
            }
            if let Some(p) = sender {
                self.apply(p, judgement.clone(), now);
            }
            invalid.insert(*bad, judgement);
        }
        if condemned {
            self.sync.best_chain_rewound();
        }
        self.settle_compacts(now);
        let mut judgements = Vec::with_capacity(result.statuses.len());
        for (hash, parent, status) in result.statuses {
            // Stored blocks and orphans may still be found invalid later, on their
            // sender's account; duplicates and refused blocks are settled now.
            if matches!(status, Ok(BlockStatus::Duplicate) | Err(_)) {
                self.sources.remove(&hash);
            }
            judgements.push(match status {
                Ok(BlockStatus::Stored) => invalid.remove(&hash).unwrap_or(Judgement::Accept),
                Ok(BlockStatus::Duplicate) => Judgement::Ignore,
                Ok(BlockStatus::Orphan { .. }) => {
                    if let Some(p) = peer {
                        self.sync.note_orphan(p, parent);
                        let asks = self.sync.catch_up_from(p, self.ledger.chain(), now);
                        self.ask(asks);
                    }
                    Judgement::Ignore
                }
                Err(error) => {
                    if let ChainError::InvalidHeader {
                        error: HeaderError::TimeTooNew { time, .. },
                        ..
                    } = &error
                    {
                        self.clock.future(*time, now);
                    }
                    let judgement = judge(Rejection::Block(&error));
                    match &judgement {
                        Judgement::Penalize(_) => {
                            warn!(%hash, peer = %self.who_of(peer), reason = %error, "block rejected")
                        }
                        _ => debug!(%hash, reason = %error, "block not taken"),
                    }
                    match peer {
                        Some(p) => self.apply(p, judgement, now),
                        None => judgement,
                    }
                }
            });
        }
        judgements
    }

    fn on_gossip_block(&mut self, peer: PeerKey, data: &[u8], now: Time) -> Verdict {
        let judgement = match deserialize::<Block>(data) {
            Ok(block) => {
                // A new block from a node that does not speak compact blocks: announced
                // to those that do, once valid.
                let hash = block.block_hash();
                let known = self.ledger.chain().entry(&hash).is_some_and(|e| e.has_data());
                let form = (self.relay.enabled() && !known)
                    .then(|| serialize(&crate::compact::CompactBlock::from_block(&block)));
                let header = block.header;
                let judgement = self.accept_block(block, Some(peer), now);
                if judgement == Judgement::Accept
                    && let Some(entry) = self.ledger.chain().entry(&hash)
                {
                    self.sync.peer_has(peer, entry);
                }
                if let Some(form) = form.filter(|_| judgement == Judgement::Accept) {
                    self.announce(hash, &header, form);
                }
                judgement
            }
            Err(_) => {
                let offence = Offence::UndecodableGossip(GossipKind::Block);
                self.apply(peer, judge(Rejection::Offence(offence)), now)
            }
        };
        judgement.verdict()
    }

    fn on_gossip_tx(&mut self, peer: PeerKey, data: &[u8], now: Time) -> Verdict {
        let Ok(tx) = deserialize::<Transaction>(data) else {
            let offence = Offence::UndecodableGossip(GossipKind::Tx);
            return self.apply(peer, judge(Rejection::Offence(offence)), now).verdict();
        };
        let judgement = match self.ledger.accept_relayed(tx, now, &mut self.out) {
            Ok(txid) => {
                debug!(peer = %self.who(peer), %txid, "transaction accepted from gossip");
                Judgement::Accept
            }
            Err(error) => {
                let syncing = self.is_syncing();
                let judgement = judge(Rejection::Tx { error: &error, syncing });
                if judgement == Judgement::Ignore {
                    debug!(peer = %self.who(peer), reason = %error, "transaction not taken");
                }
                self.apply(peer, judgement, now)
            }
        };
        judgement.verdict()
    }

    /// Handles an answer to one of our sync requests.
    fn on_response(&mut self, id: u64, peer: PeerKey, resp: SyncResponse, now: Time) {
        if !self.sync.is_pending(id) {
            return;
        }
        match resp {
            SyncResponse::Status(tip) => {
                self.clock.peer_tip(&tip, self.ledger.chain(), now);
                match self.sync.on_status(id, tip, self.ledger.chain(), now) {
                    Ok(asks) => {
                        self.ask(asks);
                        // Caught up with it: reconcile mempools (once per connection).
                        if !self.is_syncing() {
                            let ask = self.sync.ask_mempool(peer, now);
                            self.ask(ask.into_iter().collect());
                        }
                    }
                    Err(fault) => {
                        self.apply(peer, judge(Rejection::Sync(fault)), now);
                    }
                }
            }
            SyncResponse::Headers(bytes) => self.on_headers(id, peer, &bytes, now),
            SyncResponse::Blocks(blocks) => self.on_blocks(id, peer, blocks, now),
            SyncResponse::Refused(reason) => {
                debug!(peer = %self.who(peer), %reason, "peer refused our request");
                let asks = self.sync.refused(id, self.ledger.chain(), now);
                self.ask(asks);
                self.compact_failed(id, now);
            }
            SyncResponse::Txids(txids) => {
                let pool = self.ledger.mempool();
                match self.sync.on_txids(id, &txids, |t| !pool.contains(t), now) {
                    Ok(asks) => self.ask(asks),
                    Err(fault) => drop(self.apply(peer, judge(Rejection::Sync(fault)), now)),
                }
            }
            SyncResponse::Txs(txs) => self.on_txs(id, peer, txs, now),
            SyncResponse::BlockTxs(txs) => self.on_block_txs(id, peer, txs, now),
            SyncResponse::CompactBlock(data) => self.on_compact(id, peer, &data, now),
        }
    }

    /// Mempool transactions a peer sent while reconciling: each is taken as if gossiped
    /// (and gossiped on, so that our other peers hear of it too).
    fn on_txs(&mut self, id: u64, peer: PeerKey, txs: Vec<Vec<u8>>, now: Time) {
        use crate::sync::SyncFault;
        let Some(asked) = self.sync.on_txs(id) else {
            self.apply(peer, judge(Rejection::Sync(SyncFault::UnaskedAnswer)), now);
            return;
        };
        if txs.len() > asked.len() {
            self.apply(peer, judge(Rejection::Sync(SyncFault::UnaskedTx)), now);
            return;
        }
        let mut accepted = 0;
        for data in txs {
            let tx = match deserialize::<Transaction>(&data) {
                Ok(tx) => tx,
                Err(e) => {
                    self.apply(peer, judge(Rejection::Sync(SyncFault::UndecodableTx(e))), now);
                    return;
                }
            };
            if !asked.contains(&tx.txid()) {
                self.apply(peer, judge(Rejection::Sync(SyncFault::UnaskedTx)), now);
                return;
            }
            match self.ledger.accept_relayed(tx, now, &mut self.out) {
                Ok(_) => {
                    accepted += 1;
                    self.out.push(Output::Net(NetAction::Publish { kind: GossipKind::Tx, data }));
                }
                Err(error) => {
                    let syncing = self.is_syncing();
                    self.apply(peer, judge(Rejection::Tx { error: &error, syncing }), now);
                }
            }
        }
        if accepted > 0 {
            tracing::info!(peer = %self.who(peer), accepted, "mempool reconciled: {accepted} transactions from a peer's mempool");
        }
        let asks = self.sync.next_tx_asks(peer, now);
        self.ask(asks);
    }

    fn on_headers(&mut self, id: u64, peer: PeerKey, bytes: &[u8], now: Time) {
        let answer = match self.sync.on_headers(id, bytes) {
            Ok(Some(answer)) => answer,
            Ok(None) => return,
            Err(fault) => {
                self.apply(peer, judge(Rejection::Sync(fault)), now);
                return;
            }
        };
        let (accepted, error) = self.ledger.accept_headers(&answer.headers, now);
        if let Some(error) = &error {
            let judgement = judge(Rejection::Header(error));
            if judgement != Judgement::Ignore {
                self.apply(peer, judgement, now);
                return;
            }
        }
        let stop = match &error {
            None => Stop::No,
            Some(ChainError::InvalidHeader {
                hash,
                error: HeaderError::TimeTooNew { time, max_allowed },
            }) => {
                // Nobody's fault: kept out of the chain, asked again later.
                let ahead = crate::human::duration(u64::from(*time).saturating_sub(*max_allowed));
                let retry = crate::sync::FUTURE_RETRY.as_secs();
                tracing::info!(peer = %self.who(peer), %hash, time, max_allowed, "header {hash} is {ahead} beyond the future limit of our clock: set aside, headers asked again in {retry} s");
                self.clock.future(*time, now);
                Stop::Future
            }
            Some(error) => {
                // A store failure: stop here, retry later.
                debug!(peer = %self.who(peer), reason = %error, "header not accepted");
                Stop::Other
            }
        };
        self.feed_history(now);
        let chain = self.ledger.chain();
        let (asks, unresolved) =
            self.sync.headers_accepted(&answer, accepted.last().copied(), stop, chain, now);
        for _ in 0..unresolved {
            self.apply(peer, judge(Rejection::UnresolvedOrphan), now);
        }
        self.ask(asks);
    }

    fn on_blocks(&mut self, id: u64, peer: PeerKey, blocks: Vec<Vec<u8>>, now: Time) {
        use crate::sync::SyncFault;
        let bytes: usize = blocks.iter().map(Vec::len).sum();
        let Some(asked) = self.sync.on_blocks(id, blocks.len(), bytes, now) else {
            self.apply(peer, judge(Rejection::Sync(SyncFault::UnaskedAnswer)), now);
            return;
        };
        if blocks.len() > asked.hashes.len() {
            self.apply(peer, judge(Rejection::Sync(SyncFault::TooManyBlocks)), now);
            return;
        }
        let wanted: HashMap<BlockHash, usize> =
            asked.hashes.iter().enumerate().map(|(i, h)| (*h, i)).collect();
        let mut received = vec![false; asked.hashes.len()];
        let mut decoded = Vec::with_capacity(blocks.len());
        for bytes in blocks {
            let block = match deserialize::<Block>(&bytes) {
                Ok(block) => block,
                Err(e) => {
                    self.apply(peer, judge(Rejection::Sync(SyncFault::UndecodableBlock(e))), now);
                    return;
                }
            };
            let Some(&at) = wanted.get(&block.block_hash()) else {
                self.apply(peer, judge(Rejection::Sync(SyncFault::UnaskedBlock)), now);
                return;
            };
            received[at] = true;
            decoded.push(block);
        }
        let (history, decoded) = self.split_history(decoded);
        if !decoded.is_empty() || history.is_empty() {
            self.accept_blocks(decoded, Some(peer), now);
        }
        if !history.is_empty() {
            self.accept_history(history, peer, now);
        }
        // An answer the budget cut short says nothing of the blocks after its last one:
        // they are asked again, not counted as left out.
        let covered = serve::covered(&received, bytes);
        let chain = self.ledger.chain();
        let omitted: Vec<u32> = asked.hashes[..covered]
            .iter()
            .zip(&received)
            .filter(|(_, r)| !**r)
            .filter_map(|(h, _)| chain.entry(h).map(|e| e.height))
            .collect();
        if let Some(lowest) = omitted.iter().min() {
            if asked.provable {
                let offence = Offence::WithheldBlocks(omitted.len());
                self.apply(peer, judge(Rejection::Offence(offence)), now);
                return;
            }
            debug!(peer = %self.who(peer), from = lowest, "peer lacks blocks it might have had");
            self.sync.cannot_serve(peer, *lowest);
        }
        let asks = self.sync.advance(self.ledger.chain(), now);
        self.ask(asks);
    }

    fn on_mined(&mut self, block: Block, hashrate: f64, now: Time) {
        let txs = block.txs.len();
        if let Some(hash) = self.accept_own(block, now) {
            let height = self.ledger.chain().height();
            let hashrate = hashrate.round();
            tracing::info!(height, %hash, txs, hashrate, "mined block");
        }
    }

    /// Accepts a block we mined; if it became the tip, gossips it and returns its hash.
    fn accept_own(&mut self, block: Block, now: Time) -> Option<BlockHash> {
        let hash = block.block_hash();
        // Encoded before the block moves into the chain: no copy of it is kept.
        let data = serialize(&block);
        let form = self
            .relay
            .enabled()
            .then(|| serialize(&crate::compact::CompactBlock::from_block(&block)));
        let header = block.header;
        let tip = self.accept_block(block, None, now) == Judgement::Accept
            && self.ledger.chain().tip() == hash;
        if tip {
            self.clock.mined(hash, self.ledger.chain().height(), header.time, now);
            if let Some(form) = form {
                self.announce(hash, &header, form);
            }
            // Sent by the network layer only to peers that do not take compact blocks.
            self.out.push(Output::Net(NetAction::Publish { kind: GossipKind::Block, data }));
        }
        tip.then_some(hash)
    }

    fn on_solved(&mut self, block: Option<Block>, now: Time) {
        let result = match block {
            None => Err(MineError::Cancelled),
            Some(block) => {
                let hash = block.block_hash();
                self.accept_own(block, now).ok_or(MineError::NotAccepted(hash))
            }
        };
        self.mining.solved(result, &self.ledger, now, &mut self.out);
    }

    fn on_command(&mut self, command: Command, now: Time) {
        match command {
            Command::SubmitTx { tx, reply } => {
                let data = crate::primitives::encode::serialize(&tx);
                let result = self.ledger.accept_tx(tx, &mut self.out);
                if let Ok(txid) = &result {
                    tracing::debug!(%txid, "submitted through the API: gossiping it");
                    self.own_txs.insert(*txid, now);
                    self.out.push(Output::Net(NetAction::Publish { kind: GossipKind::Tx, data }));
                }
                self.out.push(Output::Reply(reply.with(result)));
            }
            Command::Mine { blocks, to, reply } => {
                self.mining.on_demand(reply, blocks, to, &self.ledger, now, &mut self.out);
            }
            Command::Mempool { reply } => {
                let entries = query::mempool_entries(self.ledger.mempool());
                self.out.push(Output::Reply(reply.with(entries)));
            }
            Command::MempoolTx { txid, reply } => {
                let found = query::mempool_tx(&self.ledger, &txid);
                self.out.push(Output::Reply(reply.with(found)));
            }
            Command::Pending { owners, reply } => {
                let pending = query::pending_for(&self.ledger, &owners);
                self.out.push(Output::Reply(reply.with(pending)));
            }
            Command::Fees { reply } => {
                let (chain, mempool) = (self.ledger.chain(), self.ledger.mempool());
                let estimates = mempool.fee_estimates(chain.height(), chain.params());
                let min = mempool.config().min_fee_per_kb;
                self.out.push(Output::Reply(reply.with((estimates, min))));
            }
        }
    }
}

#[cfg(test)]
mod tests;
