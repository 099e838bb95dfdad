//! Chain sync, sans-IO: which peer to ask for what, and what came back.
//!
//! On connect each side asks the other's tip (`Status`). When a peer shows more work than
//! our best header, we fetch headers from it with a block locator, 2,000 at a time, each
//! checked (PoW, difficulty, time) as it is added to the index. Then the blocks under the
//! best header are requested from every peer whose tip covers them, in batches of 16 to
//! 128 by the blocks' size, with as many batches in flight per peer as its link's
//! bandwidth times round trip asks for ([`link`]), and connected in order as they arrive.
//! A request that times out or fails is handed to another peer.
//!
//! Against peers that lie: headers are fetched at most [`MAX_HEADERS_AHEAD`] beyond our
//! tip (a long cheap header chain cannot fill memory), blocks are asked only from peers
//! whose chain holds them, and a peer that leaves out blocks of a chain it announced (its
//! tip or headers it sent us) is reported, since it provably has them.

use std::collections::HashMap;
use std::time::Duration;

use tracing::{debug, info};

use crate::chain::ChainState;
use crate::primitives::encode::DecodeError;
use crate::primitives::{BlockHash, BlockHeader, PeerKey, Time, Txid};
use crate::protocol::{
    ChainTip, LEGACY_BLOCKS_PER_REQUEST, MAX_BLOCKS_PER_REQUEST, MAX_HEADERS, SyncRequest,
};

mod compact;
pub mod link;
mod mempool;
mod peer;
mod progress;

pub use link::{MAX_BATCHES, MIN_BATCHES};
pub use mempool::MAX_TX_BATCHES_PER_PEER;
use peer::{MAX_ORPHAN_CLAIMS, PeerSync, Reach};
use progress::Progress;

/// Blocks above our tip considered for download at once: room for two peers' widest
/// windows of small blocks ([`MAX_BATCHES`] requests of [`MAX_BLOCKS_PER_REQUEST`]).
pub const DOWNLOAD_WINDOW: usize = 2 * MAX_BATCHES * MAX_BLOCKS_PER_REQUEST;
/// A request unanswered this long is given up and its blocks asked elsewhere.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(40);
/// How often connected peers are asked for their tip again.
pub const STATUS_INTERVAL: Duration = Duration::from_secs(30);
/// Headers fetched beyond our active tip before blocks must catch up; bounds the memory
/// one header chain can take (about 250 bytes each in the index).
pub const MAX_HEADERS_AHEAD: u32 = 8 * 1_024;
/// A blocks request holding the lowest missing block this long, while another peer could
/// serve it, is handed to that peer (and the slow one charged a fault). Doubles each time
/// it fires, up to [`REQUEST_TIMEOUT`], and shrinks back as batches arrive in time, as
/// Bitcoin Core's block-stalling timeout does.
pub const STALL_TIMEOUT: Duration = Duration::from_secs(5);
/// After headers were refused as too far in the future, headers are not asked again for
/// this long (the chain's time limit moves with our clock, so they may fit later).
pub const FUTURE_RETRY: Duration = Duration::from_secs(60);

#[derive(Debug, Clone)]
enum Kind {
    Status,
    Headers,
    /// Blocks, whether the peer provably has them all, and whether they are a
    /// snapshot's history (validated in the background: they do not make us "syncing").
    Blocks(Vec<BlockHash>, bool, bool),
    /// The peer's mempool txids.
    Mempool,
    /// Mempool transactions.
    Txs(Vec<Txid>),
    /// Transactions of a compact block being rebuilt (the core's `compact` module
    /// decides about them; sync only carries the request).
    BlockTxs(BlockHash),
    /// The compact form of an announced block (the same).
    Compact(BlockHash),
}

#[derive(Debug)]
struct Pending {
    peer: PeerKey,
    kind: Kind,
    sent: Time,
}

/// What a `Blocks` answer was for.
#[derive(Debug, Clone)]
pub struct BlocksAsked {
    /// The hashes asked, in order.
    pub hashes: Vec<BlockHash>,
    /// Whether the peer provably has them (leaving one out is then misbehaviour).
    pub provable: bool,
}

/// How a sync answer broke the protocol (the sender is at fault).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SyncFault {
    /// Its chain starts at another genesis.
    #[error("peer is on a chain with another genesis")]
    WrongGenesis,
    /// A headers answer that is not whole 80-byte headers, or too many.
    #[error("headers response of {0} bytes")]
    HeadersLength(usize),
    /// Headers whose first one does not connect to any header we know.
    #[error("headers do not connect to our chain")]
    HeadersDoNotConnect,
    /// Blocks in answer to a request that was not for blocks.
    #[error("blocks in answer to another request")]
    UnaskedAnswer,
    /// More blocks than asked.
    #[error("sent more blocks than asked")]
    TooManyBlocks,
    /// A block that was not asked for.
    #[error("sent a block not asked for")]
    UnaskedBlock,
    /// A block that does not decode.
    #[error("undecodable block: {0}")]
    UndecodableBlock(DecodeError),
    /// More mempool txids than the protocol allows.
    #[error("{0} mempool txids, over the limit")]
    TooManyTxids(usize),
    /// A transaction that does not decode.
    #[error("undecodable transaction: {0}")]
    UndecodableTx(DecodeError),
    /// A transaction that was not asked for, or more of them than asked.
    #[error("sent a transaction not asked for")]
    UnaskedTx,
    /// A compact block that does not decode.
    #[error("undecodable compact block: {0}")]
    UndecodableCompact(DecodeError),
    /// Not one transaction per index asked of a block the peer announced.
    #[error("sent {got} transactions of a block for {wanted} asked")]
    BlockTxsCount {
        /// Sent.
        got: usize,
        /// Asked.
        wanted: usize,
    },
}

/// A request for the network layer to send; the answer comes back with `id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ask {
    /// Our id for it.
    pub id: u64,
    /// To whom.
    pub peer: PeerKey,
    /// The request.
    pub req: SyncRequest,
}

/// Why the chain stopped taking a headers answer short of its end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// It took them all.
    No,
    /// A header's time is too far in our future: set aside, asked again later.
    Future,
    /// Another reason nobody is blamed for (a store failure).
    Other,
}

/// A headers answer, checked for shape, ready for the chain.
#[derive(Debug)]
pub struct HeadersAnswer {
    /// Who sent it.
    pub peer: PeerKey,
    /// The headers, in the order sent.
    pub headers: Vec<BlockHeader>,
    /// Whether it was a full batch (the peer has more).
    pub full: bool,
}

/// Sync state for all peers.
pub struct SyncManager {
    genesis: BlockHash,
    peers: HashMap<PeerKey, PeerSync>,
    pending: HashMap<u64, Pending>,
    requested: HashMap<BlockHash, u64>,
    headers_from: Option<PeerKey>,
    next_id: u64,
    last_status_round: Option<Time>,
    progress: Progress,
    /// The stall timeout now (see [`STALL_TIMEOUT`]).
    stall_timeout: Duration,
    /// No headers requests before this (headers from our future were refused).
    headers_not_before: Option<Time>,
    /// Size of the blocks downloaded, on average (smoothed), once any came.
    avg_block_bytes: Option<f64>,
    /// A snapshot's history blocks still wanted, lowest first (after the main chain's).
    history: Vec<(BlockHash, u32)>,
    /// Blocks whose header was announced and whose compact form is on its way: not
    /// downloaded whole meanwhile (the core's `compact` module says when to).
    relayed: std::collections::HashSet<BlockHash>,
}

impl SyncManager {
    /// A manager for the chain with `genesis`.
    pub fn new(genesis: BlockHash) -> Self {
        Self {
            genesis,
            peers: HashMap::new(),
            pending: HashMap::new(),
            requested: HashMap::new(),
            headers_from: None,
            next_id: 0,
            last_status_round: None,
            progress: Progress::default(),
            stall_timeout: STALL_TIMEOUT,
            headers_not_before: None,
            avg_block_bytes: None,
            history: Vec::new(),
            relayed: std::collections::HashSet::new(),
        }
    }

    fn request(&mut self, peer: PeerKey, kind: Kind, req: SyncRequest, now: Time) -> Ask {
        self.next_id += 1;
        let id = self.next_id;
        if let Kind::Blocks(hashes, ..) = &kind {
            for h in hashes {
                self.requested.insert(*h, id);
            }
            if let Some(p) = self.peers.get_mut(&peer) {
                p.batches += 1;
                p.link.sent(now);
            }
        }
        self.pending.insert(id, Pending { peer, kind, sent: now });
        Ask { id, peer, req }
    }

    /// Whether the request `id` is ours and still open.
    pub fn is_pending(&self, id: u64) -> bool {
        self.pending.contains_key(&id)
    }

    /// True while headers are coming, or blocks we lack are coming or can be asked from a
    /// peer. Headers nobody can serve (a liar's chain) do not keep us syncing forever.
    pub fn is_syncing(&self, chain: &ChainState) -> bool {
        let height = chain.height();
        self.headers_from.is_some()
            || self.pending.values().any(|p| matches!(p.kind, Kind::Blocks(_, _, false)))
            || (chain.best_header().height > height
                && self.peers.values().any(|p| {
                    p.tip.is_some_and(|t| t.height > height)
                        && p.cannot_serve_from.is_none_or(|h| h > height + 1)
                }))
    }

    /// Connected peers.
    pub fn peer_count(&self) -> usize {
        self.peers.len()
    }

    /// The tip each peer showed us last, where known.
    pub fn peer_tips(&self) -> impl Iterator<Item = (PeerKey, ChainTip)> + '_ {
        self.peers.iter().filter_map(|(id, p)| p.tip.map(|t| (*id, t)))
    }

    /// The best tip height any peer has shown.
    pub fn best_peer_height(&self) -> u32 {
        self.peers.values().filter_map(|p| p.tip.map(|t| t.height)).max().unwrap_or(0)
    }

    /// A new peer: ask its tip.
    pub fn connected(&mut self, peer: PeerKey, now: Time) -> Vec<Ask> {
        self.peers.insert(peer, PeerSync::default());
        vec![self.request(peer, Kind::Status, SyncRequest::Status, now)]
    }

    /// A peer left: its requests go to others.
    pub fn disconnected(&mut self, peer: PeerKey, chain: &ChainState, now: Time) -> Vec<Ask> {
        self.peers.remove(&peer);
        let ids: Vec<u64> =
            self.pending.iter().filter(|(_, p)| p.peer == peer).map(|(id, _)| *id).collect();
        for id in ids {
            self.release(id);
        }
        self.advance(chain, now)
    }

    /// Forgets request `id`, freeing its blocks for other peers.
    fn release(&mut self, id: u64) -> Option<Pending> {
        let pending = self.pending.remove(&id)?;
        match &pending.kind {
            Kind::Blocks(hashes, ..) => {
                for h in hashes {
                    if self.requested.get(h) == Some(&id) {
                        self.requested.remove(h);
                    }
                }
                if let Some(p) = self.peers.get_mut(&pending.peer) {
                    p.batches = p.batches.saturating_sub(1);
                }
            }
            Kind::Headers => {
                if self.headers_from == Some(pending.peer) {
                    self.headers_from = None;
                }
            }
            Kind::Txs(_) => {
                if let Some(p) = self.peers.get_mut(&pending.peer) {
                    p.tx_batches = p.tx_batches.saturating_sub(1);
                }
            }
            Kind::Status | Kind::Mempool | Kind::BlockTxs(_) | Kind::Compact(_) => {}
        }
        Some(pending)
    }

    /// A request failed: retry elsewhere.
    pub fn failed(&mut self, id: u64, chain: &ChainState, now: Time) -> Vec<Ask> {
        if let Some(p) = self.release(id) {
            debug!(peer = %p.peer, kind = ?p.kind, "sync request failed");
        }
        self.advance(chain, now)
    }

    /// A peer refused a request. A node of an older version refuses more than
    /// [`LEGACY_BLOCKS_PER_REQUEST`] blocks: it is asked that many from then on. A peer
    /// that refuses blocks of its own chain lacks them (it started from a snapshot and its
    /// history has not arrived): it is not asked for them again until it shows a new tip.
    /// Either way the request is retried, elsewhere or smaller.
    pub fn refused(&mut self, id: u64, chain: &ChainState, now: Time) -> Vec<Ask> {
        if let Some(p) = self.release(id) {
            debug!(peer = %p.peer, kind = ?p.kind, "sync request refused");
            if let Kind::Blocks(hashes, ..) = &p.kind
                && let Some(state) = self.peers.get_mut(&p.peer)
            {
                if hashes.len() > LEGACY_BLOCKS_PER_REQUEST && !state.legacy {
                    state.legacy = true;
                    info!(peer = %p.peer, "peer takes {LEGACY_BLOCKS_PER_REQUEST} blocks per request (an older version): asking it that many");
                } else if let Some(lowest) =
                    hashes.iter().filter_map(|h| chain.entry(h)).map(|e| e.height).min()
                {
                    self.cannot_serve(p.peer, lowest);
                }
            }
        }
        self.advance(chain, now)
    }

    /// A peer's tip arrived.
    ///
    /// # Errors
    /// [`SyncFault::WrongGenesis`] if it is on another chain.
    pub fn on_status(
        &mut self,
        id: u64,
        tip: ChainTip,
        chain: &ChainState,
        now: Time,
    ) -> Result<Vec<Ask>, SyncFault> {
        let Some(pending) = self.release(id) else { return Ok(Vec::new()) };
        if tip.genesis != self.genesis.0 {
            return Err(SyncFault::WrongGenesis);
        }
        if let Some(p) = self.peers.get_mut(&pending.peer) {
            p.link.answered(pending.sent, now);
            if p.tip.is_none_or(|t| t.tip != tip.tip) {
                p.cannot_serve_from = None;
                p.reach = None;
            }
            p.tip = Some(tip);
        }
        Ok(self.advance(chain, now))
    }

    /// `peer` relayed the block `entry` (a block or a header we took): its tip is at
    /// least there, so a tip it showed earlier at less work is moved up to it. Peers'
    /// heights stay current between the status rounds.
    pub fn peer_has(&mut self, peer: PeerKey, entry: &crate::storage::IndexEntry) {
        let Some(p) = self.peers.get_mut(&peer) else { return };
        let Some(tip) = p.tip else { return };
        let work = entry.chain_work.to_le_bytes::<32>();
        if ruint::aliases::U256::from_le_bytes(tip.work) >= entry.chain_work {
            return;
        }
        p.tip = Some(ChainTip { tip: entry.hash().0, height: entry.height, work, ..tip });
        p.cannot_serve_from = None;
        p.reach = None;
    }

    /// A peer gossiped a block whose parent we lack: it must show how that block connects.
    /// Its next complete headers answer is checked for `parent`; a parent still unknown
    /// then counts against it (see [`Self::on_headers`]).
    pub fn note_orphan(&mut self, peer: PeerKey, parent: BlockHash) {
        if let Some(p) = self.peers.get_mut(&peer) {
            if p.orphan_parents.len() >= MAX_ORPHAN_CLAIMS {
                p.orphan_parents.remove(0);
            }
            p.orphan_parents.push(parent);
        }
    }

    /// Notes a tip a peer showed by gossiping a block we could not place, and fetches
    /// headers from it.
    pub fn catch_up_from(&mut self, peer: PeerKey, chain: &ChainState, now: Time) -> Vec<Ask> {
        if self.headers_from.is_some()
            || !self.peers.contains_key(&peer)
            || self.headers_not_before.is_some_and(|t| now < t)
        {
            return Vec::new();
        }
        self.headers_from = Some(peer);
        let locator = chain.locator(&chain.best_header().hash()).into_iter().map(|h| h.0).collect();
        vec![self.request(
            peer,
            Kind::Headers,
            SyncRequest::Headers { locator, max: MAX_HEADERS as u32 },
            now,
        )]
    }

    /// Headers arrived: checks the answer's shape and returns the headers for the chain
    /// to judge. `None` if the answer is not for an open request of ours.
    ///
    /// # Errors
    /// [`SyncFault::HeadersLength`] if the bytes are not whole headers or too many.
    pub fn on_headers(
        &mut self,
        id: u64,
        bytes: &[u8],
    ) -> Result<Option<HeadersAnswer>, SyncFault> {
        let Some(pending) = self.release(id) else { return Ok(None) };
        if !bytes.len().is_multiple_of(80) || bytes.len() / 80 > MAX_HEADERS {
            return Err(SyncFault::HeadersLength(bytes.len()));
        }
        let headers: Vec<BlockHeader> = bytes
            .chunks_exact(80)
            .map(|chunk| {
                let mut raw = [0u8; 80];
                raw.copy_from_slice(chunk);
                BlockHeader::from_bytes(&raw)
            })
            .collect();
        let full = headers.len() == MAX_HEADERS;
        Ok(Some(HeadersAnswer { peer: pending.peer, headers, full }))
    }

    /// The chain took `answer`'s headers up to `last_accepted` (all of them unless
    /// `stopped`): note what the peer proved it has, log progress, and ask for more
    /// headers or for blocks. When the answer was the peer's last (not a full batch), the
    /// orphans it gossiped must connect by now: the count of those whose parent is still
    /// unknown comes back with the requests, each an offence. Headers `stopped` by a time
    /// from our future are not asked again, from anyone, for [`FUTURE_RETRY`].
    pub fn headers_accepted(
        &mut self,
        answer: &HeadersAnswer,
        last_accepted: Option<BlockHash>,
        stopped: Stop,
        chain: &ChainState,
        now: Time,
    ) -> (Vec<Ask>, usize) {
        if stopped == Stop::Future {
            self.headers_not_before = Some(now + FUTURE_RETRY);
        }
        let stopped = stopped != Stop::No;
        if let Some(last) = last_accepted
            && let Some(p) = self.peers.get_mut(&answer.peer)
        {
            p.sent_header = Some(last);
            p.reach = None;
        }
        let best = chain.best_header().height;
        let target = self.best_peer_height().max(best);
        info!(headers = best, target_height = target, "headers {best}/{target}");
        let mut out = Vec::new();
        let mut unresolved = 0;
        if answer.full && !stopped && Self::room_for_headers(chain) {
            out.extend(self.catch_up_from(answer.peer, chain, now));
        } else if !answer.full
            && let Some(p) = self.peers.get_mut(&answer.peer)
        {
            unresolved = p.orphan_parents.drain(..).filter(|h| chain.entry(h).is_none()).count();
        }
        out.extend(self.advance(chain, now));
        (out, unresolved)
    }

    /// Whether headers may still be fetched: up to [`MAX_HEADERS_AHEAD`] beyond our tip,
    /// or beyond the base of the snapshot we started from until its header arrives (the
    /// trusted snapshot vouches for the chain up to there).
    fn room_for_headers(chain: &ChainState) -> bool {
        let floor = match chain.snapshot_base() {
            Some(base) if chain.awaiting_snapshot_base() => base.height,
            _ => chain.height(),
        };
        chain.best_header().height < floor.saturating_add(MAX_HEADERS_AHEAD)
    }

    /// `count` blocks of `bytes` in all arrived: the caller hands them to the chain, then
    /// calls [`Self::advance`]. Returns what was asked (anything else is unsolicited).
    pub fn on_blocks(
        &mut self,
        id: u64,
        count: usize,
        bytes: usize,
        now: Time,
    ) -> Option<BlocksAsked> {
        let pending = self.release(id)?;
        let Kind::Blocks(hashes, provable, _) = pending.kind else { return None };
        // A batch in time: the stall timeout shrinks back towards its floor.
        self.stall_timeout = (self.stall_timeout * 7 / 8).max(STALL_TIMEOUT);
        if count > 0 {
            // Larger blocks count at once, smaller ones little by little: a chain whose
            // blocks grow must not go on asking 128 at a time while the average catches up.
            let size = bytes as f64 / count as f64;
            self.avg_block_bytes = Some(
                self.avg_block_bytes
                    .map_or(size, |a| if size > a { size } else { 0.75 * a + 0.25 * size }),
            );
        }
        if let Some(p) = self.peers.get_mut(&pending.peer) {
            let size = p.batch_size(self.avg_block_bytes);
            let before = p.link.batches(size);
            p.link.answered(pending.sent, now);
            p.link.delivered(count, now);
            let window = p.link.batches(size);
            if window != before {
                let rtt_ms = p.link.min_rtt().map_or(0.0, |d| d.as_secs_f64() * 1e3);
                let rate = p.link.rate().round();
                debug!(peer = %pending.peer, rtt_ms, blocks_per_s = rate, window, batch = size, "blocks in flight to the peer: {window} requests of {size}");
            }
        }
        Some(BlocksAsked { hashes, provable })
    }

    /// A peer left out blocks from `height` up without proof that it has them: stop
    /// asking it for those until it shows a new tip.
    pub fn cannot_serve(&mut self, peer: PeerKey, height: u32) {
        if let Some(p) = self.peers.get_mut(&peer) {
            p.cannot_serve_from = Some(p.cannot_serve_from.map_or(height, |h| h.min(height)));
        }
    }

    /// The best header chain was cut back (a block on it turned out invalid): what peers
    /// could not serve of the abandoned branch says nothing about the new best chain, so
    /// every peer may be asked again.
    pub fn best_chain_rewound(&mut self) {
        for p in self.peers.values_mut() {
            p.cannot_serve_from = None;
            p.reach = None;
        }
    }

    /// What `peer` can serve on the best header chain, from its tip and the headers it
    /// sent; `lowest` is the lowest missing height (peers below it cannot help).
    fn reach(&mut self, peer: &PeerKey, chain: &ChainState, lowest: u32) -> Option<Reach> {
        let best = chain.best_header().hash();
        let state = self.peers.get_mut(peer)?;
        let tip = state.tip?;
        if let Some((at, reach)) = state.reach
            && at == best
        {
            return Some(reach);
        }
        let on_chain = |h: &BlockHash| {
            chain
                .entry(h)
                .filter(|e| e.height >= lowest)
                .and_then(|_| chain.on_best_header_chain(h))
        };
        let tip_hash = BlockHash(tip.tip);
        let tip_on_chain = on_chain(&tip_hash);
        let proven = tip_on_chain.max(state.sent_header.as_ref().and_then(on_chain)).unwrap_or(0);
        // A known tip off the best header chain: that peer is on another branch.
        let claimed =
            if chain.entry(&tip_hash).is_some() { tip_on_chain.unwrap_or(0) } else { tip.height };
        let announced = state.announced.as_ref().and_then(on_chain).unwrap_or(0);
        let reach = Reach { claimed: claimed.max(proven).max(announced), proven };
        state.reach = Some((best, reach));
        Some(reach)
    }

    /// Asks for headers from the best peer ahead of us and schedules block downloads.
    pub fn advance(&mut self, chain: &ChainState, now: Time) -> Vec<Ask> {
        let mut out = Vec::new();
        if self.headers_from.is_none()
            && Self::room_for_headers(chain)
            && let Some(peer) = self.headers_peer_ahead(chain)
        {
            out.extend(self.catch_up_from(peer, chain, now));
        }
        out.extend(self.schedule_blocks(chain, now));
        out
    }

    fn headers_peer_ahead(&self, chain: &ChainState) -> Option<PeerKey> {
        let our_work = chain.best_header().chain_work;
        self.peers
            .iter()
            .filter_map(|(id, p)| p.tip.map(|t| (ruint::aliases::U256::from_le_bytes(t.work), *id)))
            .filter(|(work, _)| *work > our_work)
            .max()
            .map(|(_, id)| id)
    }

    /// The history blocks of a snapshot the background validation still lacks, lowest
    /// first: asked after the main chain's, from the same peers.
    pub fn set_history(&mut self, wanted: Vec<(BlockHash, u32)>) {
        self.history = wanted;
    }

    fn schedule_blocks(&mut self, chain: &ChainState, now: Time) -> Vec<Ask> {
        let unasked = |wanted: &[(BlockHash, u32)], requested: &HashMap<BlockHash, u64>| {
            let fresh = wanted.iter().filter(|(h, _)| !requested.contains_key(h));
            fresh.copied().collect::<Vec<_>>()
        };
        let mut main = unasked(&chain.missing_blocks(DOWNLOAD_WINDOW), &self.requested);
        main.retain(|(h, _)| !self.relayed.contains(h));
        let history = unasked(&self.history, &self.requested);
        let mut out = Vec::new();
        let lowest = main.iter().chain(&history).map(|(_, h)| *h).min();
        let Some(lowest) = lowest else { return out };
        let mut peers: Vec<PeerKey> = self.peers.keys().copied().collect();
        peers.sort();
        let reach: HashMap<PeerKey, Reach> =
            peers.iter().filter_map(|p| Some((*p, self.reach(p, chain, lowest)?))).collect();
        for (queue, is_history) in [(main, false), (history, true)] {
            self.fill(queue, is_history, &peers, &reach, now, &mut out);
        }
        out
    }

    /// Spreads `wanted` over `peers` in batches, as far as each can serve and has room.
    fn fill(
        &mut self,
        wanted: Vec<(BlockHash, u32)>,
        history: bool,
        peers: &[PeerKey],
        reach: &HashMap<PeerKey, Reach>,
        now: Time,
        out: &mut Vec<Ask>,
    ) {
        let mut queue = wanted.into_iter().peekable();
        'outer: while queue.peek().is_some() {
            let mut progressed = false;
            for peer in peers {
                let Some(state) = self.peers.get(peer) else { continue };
                let Some(reach) = reach.get(peer) else { continue };
                let limit = state
                    .cannot_serve_from
                    .map_or(reach.claimed, |h| reach.claimed.min(h.saturating_sub(1)));
                if !state.has_room(self.avg_block_bytes, now) {
                    continue;
                }
                let size = state.batch_size(self.avg_block_bytes);
                let mut batch = Vec::new();
                let mut top = 0;
                while batch.len() < size {
                    match queue.peek() {
                        Some((_, height)) if *height <= limit => {
                            if let Some((hash, height)) = queue.next() {
                                batch.push(hash);
                                top = height;
                            }
                        }
                        _ => break,
                    }
                }
                if batch.is_empty() {
                    continue;
                }
                let provable = top <= reach.proven;
                let req = SyncRequest::Blocks(batch.iter().map(|h| h.0).collect());
                out.push(self.request(*peer, Kind::Blocks(batch, provable, history), req, now));
                progressed = true;
                if queue.peek().is_none() {
                    break 'outer;
                }
            }
            if !progressed {
                break;
            }
        }
    }

    /// The peer whose blocks request has held the lowest missing block for longer than
    /// the stall timeout, if another peer could serve that block: the request is released
    /// (its blocks go to the other peer at once) and the staller returned, to be charged a
    /// fault. One staller per call, so that one slow moment costs one peer one fault.
    fn release_staller(&mut self, chain: &ChainState, now: Time) -> Option<PeerKey> {
        let (hash, height) = chain.missing_blocks(1).into_iter().next()?;
        let id = *self.requested.get(&hash)?;
        let pending = self.pending.get(&id)?;
        if now.since(pending.sent) < self.stall_timeout {
            return None;
        }
        let staller = pending.peer;
        let mut others: Vec<PeerKey> =
            self.peers.keys().copied().filter(|p| *p != staller).collect();
        others.sort();
        let mut can_serve = false;
        for p in &others {
            let free = self.peers.get(p).is_some_and(|s| s.has_room(self.avg_block_bytes, now));
            if free && self.reach(p, chain, height).is_some_and(|r| r.claimed >= height) {
                can_serve = true;
                break;
            }
        }
        if !can_serve {
            return None;
        }
        self.release(id);
        if let Some(state) = self.peers.get_mut(&staller) {
            state.resting_until = Some(now + self.stall_timeout);
        }
        debug!(peer = %staller, height, timeout_ms = self.stall_timeout.as_millis() as u64, "blocks request stalled the download; asking another peer");
        self.stall_timeout = (self.stall_timeout * 2).min(REQUEST_TIMEOUT);
        Some(staller)
    }

    /// Gives up requests past their timeout, hands a stalled batch to another peer, and
    /// periodically asks every peer its tip. Returns the requests to send and the peer
    /// that stalled the download, if one did.
    pub fn tick(&mut self, chain: &ChainState, now: Time) -> (Vec<Ask>, Option<PeerKey>) {
        let staller = self.release_staller(chain, now);
        let expired: Vec<u64> = self
            .pending
            .iter()
            .filter(|(_, p)| now.since(p.sent) > REQUEST_TIMEOUT)
            .map(|(id, _)| *id)
            .collect();
        for id in expired {
            if let Some(p) = self.release(id) {
                debug!(peer = %p.peer, kind = ?p.kind, "sync request timed out");
            }
        }
        let mut out = Vec::new();
        if self.last_status_round.is_none_or(|t| now.since(t) >= STATUS_INTERVAL) {
            self.last_status_round = Some(now);
            // In key order, so that the same state always asks in the same order.
            let mut peers: Vec<PeerKey> = self.peers.keys().copied().collect();
            peers.sort();
            for peer in peers {
                out.push(self.request(peer, Kind::Status, SyncRequest::Status, now));
            }
        }
        out.extend(self.advance(chain, now));
        (out, staller)
    }

    /// Logs sync progress at most every two seconds while behind (see [`Progress`]).
    /// `txs` counts the transactions connected since start.
    pub fn log_progress(&mut self, chain: &ChainState, txs: u64, now: Time) {
        let target = chain.best_header().height.max(self.best_peer_height());
        self.progress.log(chain.height(), target, txs, self.peers.len(), now);
    }
}

#[cfg(test)]
mod tests;
