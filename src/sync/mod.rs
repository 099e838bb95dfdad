//! Chain sync, sans-IO: which peer to ask for what, and what came back.
//!
//! On connect each side asks the other's tip (`Status`). When a peer shows more work than
//! our best header, we fetch headers from it with a block locator, 2,000 at a time, each
//! checked (PoW, difficulty, time) as it is added to the index. Then the blocks under the
//! best header are requested in batches of 16 from every peer whose tip covers them,
//! several batches per peer in flight, and connected in order as they arrive. A request
//! that times out or fails is handed to another peer.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use libp2p::PeerId;
use tracing::{debug, info};

use crate::chain::{ChainError, ChainState};
use crate::net::NetCommand;
use crate::net::protocol::{ChainTip, MAX_BLOCKS_PER_REQUEST, MAX_HEADERS, SyncRequest};
use crate::primitives::{BlockHash, BlockHeader};

/// Batches of blocks one peer may have in flight.
pub const MAX_BATCHES_PER_PEER: usize = 4;
/// Blocks above our tip considered for download at once.
pub const DOWNLOAD_WINDOW: usize = 1_024;
/// A request unanswered this long is given up and its blocks asked elsewhere.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(40);
/// How often connected peers are asked for their tip again.
pub const STATUS_INTERVAL: Duration = Duration::from_secs(30);
/// Minimum time between two sync progress lines.
const PROGRESS_EVERY: Duration = Duration::from_secs(2);

#[derive(Debug, Clone)]
enum Kind {
    Status,
    Headers,
    Blocks(Vec<BlockHash>),
}

#[derive(Debug)]
struct Pending {
    peer: PeerId,
    kind: Kind,
    sent: Instant,
}

#[derive(Debug, Default)]
struct PeerSync {
    tip: Option<ChainTip>,
    batches: usize,
}

/// A peer broke the protocol or consensus; the caller bans it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Misbehaviour(pub String);

/// Sync state for all peers.
pub struct SyncManager {
    genesis: BlockHash,
    peers: HashMap<PeerId, PeerSync>,
    pending: HashMap<u64, Pending>,
    requested: HashMap<BlockHash, u64>,
    headers_from: Option<PeerId>,
    next_id: u64,
    last_status_round: Option<Instant>,
    progress: Progress,
}

struct Progress {
    last_line: Option<Instant>,
    height_at_last: u32,
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
            progress: Progress { last_line: None, height_at_last: 0 },
        }
    }

    fn request(&mut self, peer: PeerId, kind: Kind, req: SyncRequest, now: Instant) -> NetCommand {
        self.next_id += 1;
        let id = self.next_id;
        if let Kind::Blocks(hashes) = &kind {
            for h in hashes {
                self.requested.insert(*h, id);
            }
            if let Some(p) = self.peers.get_mut(&peer) {
                p.batches += 1;
            }
        }
        self.pending.insert(id, Pending { peer, kind, sent: now });
        NetCommand::Request { id, peer, req }
    }

    /// Whether the request `id` is ours and still open.
    pub fn is_pending(&self, id: u64) -> bool {
        self.pending.contains_key(&id)
    }

    /// True while we know of headers or peers ahead of our tip.
    pub fn is_syncing(&self, chain: &ChainState) -> bool {
        self.headers_from.is_some() || chain.best_header().height > chain.height()
    }

    /// Connected peers.
    pub fn peer_count(&self) -> usize {
        self.peers.len()
    }

    /// The tip each peer showed us last, where known.
    pub fn peer_tips(&self) -> impl Iterator<Item = (PeerId, ChainTip)> + '_ {
        self.peers.iter().filter_map(|(id, p)| p.tip.map(|t| (*id, t)))
    }

    /// The best tip height any peer has shown.
    pub fn best_peer_height(&self) -> u32 {
        self.peers.values().filter_map(|p| p.tip.map(|t| t.height)).max().unwrap_or(0)
    }

    /// A new peer: ask its tip.
    pub fn connected(&mut self, peer: PeerId, now: Instant) -> Vec<NetCommand> {
        self.peers.insert(peer, PeerSync::default());
        vec![self.request(peer, Kind::Status, SyncRequest::Status, now)]
    }

    /// A peer left: its requests go to others.
    pub fn disconnected(
        &mut self,
        peer: PeerId,
        chain: &ChainState,
        now: Instant,
    ) -> Vec<NetCommand> {
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
            Kind::Blocks(hashes) => {
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
            Kind::Status => {}
        }
        Some(pending)
    }

    /// A request failed: retry elsewhere.
    pub fn failed(&mut self, id: u64, chain: &ChainState, now: Instant) -> Vec<NetCommand> {
        if let Some(p) = self.release(id) {
            debug!(peer = %p.peer, kind = ?p.kind, "sync request failed");
        }
        self.advance(chain, now)
    }

    /// A peer's tip arrived.
    ///
    /// # Errors
    /// [`Misbehaviour`] if it is on another chain.
    pub fn on_status(
        &mut self,
        id: u64,
        tip: ChainTip,
        chain: &ChainState,
        now: Instant,
    ) -> Result<Vec<NetCommand>, Misbehaviour> {
        let Some(pending) = self.release(id) else { return Ok(Vec::new()) };
        if tip.genesis != self.genesis.0 {
            return Err(Misbehaviour("peer is on a chain with another genesis".into()));
        }
        if let Some(p) = self.peers.get_mut(&pending.peer) {
            p.tip = Some(tip);
        }
        Ok(self.advance(chain, now))
    }

    /// Notes a tip a peer showed by gossiping a block we could not place, and fetches
    /// headers from it.
    pub fn catch_up_from(
        &mut self,
        peer: PeerId,
        chain: &ChainState,
        now: Instant,
    ) -> Vec<NetCommand> {
        if self.headers_from.is_some() || !self.peers.contains_key(&peer) {
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

    /// Headers arrived: add them to the index, ask for more or for the blocks.
    ///
    /// # Errors
    /// [`Misbehaviour`] if a header breaks a rule or the batch is malformed.
    pub fn on_headers(
        &mut self,
        id: u64,
        bytes: &[u8],
        chain: &mut ChainState,
        now_unix: u64,
        now: Instant,
    ) -> Result<Vec<NetCommand>, Misbehaviour> {
        let Some(pending) = self.release(id) else { return Ok(Vec::new()) };
        if !bytes.len().is_multiple_of(80) || bytes.len() / 80 > MAX_HEADERS {
            return Err(Misbehaviour(format!("headers response of {} bytes", bytes.len())));
        }
        let count = bytes.len() / 80;
        for chunk in bytes.chunks_exact(80) {
            let mut raw = [0u8; 80];
            raw.copy_from_slice(chunk);
            let header = BlockHeader::from_bytes(&raw);
            match chain.accept_header(&header, now_unix) {
                Ok(_) => {}
                Err(ChainError::UnknownParent { .. }) => {
                    return Err(Misbehaviour("headers do not connect to our chain".into()));
                }
                Err(e) if e.is_peer_fault() => return Err(Misbehaviour(e.to_string())),
                // Too far in the future or a store failure: stop here, retry later.
                Err(e) => {
                    debug!(error = %e, "header not accepted");
                    break;
                }
            }
        }
        let best = chain.best_header().height;
        let target = self.best_peer_height().max(best);
        info!(headers = best, target, "headers {best}/{target}");
        let mut out = Vec::new();
        if count == MAX_HEADERS {
            out.extend(self.catch_up_from(pending.peer, chain, now));
        }
        out.extend(self.advance(chain, now));
        Ok(out)
    }

    /// Blocks arrived: the caller hands them to the chain, then calls [`Self::advance`].
    /// Returns the hashes that were asked for (anything else is unsolicited).
    pub fn on_blocks(&mut self, id: u64) -> Option<Vec<BlockHash>> {
        match self.release(id)?.kind {
            Kind::Blocks(hashes) => Some(hashes),
            _ => None,
        }
    }

    /// Asks for headers from the best peer ahead of us and schedules block downloads.
    pub fn advance(&mut self, chain: &ChainState, now: Instant) -> Vec<NetCommand> {
        let mut out = Vec::new();
        let our_work = chain.best_header().chain_work;
        if self.headers_from.is_none() {
            let ahead = self
                .peers
                .iter()
                .filter_map(|(id, p)| {
                    p.tip.map(|t| (ruint::aliases::U256::from_le_bytes(t.work), *id))
                })
                .filter(|(work, _)| *work > our_work)
                .max();
            if let Some((_, peer)) = ahead {
                out.extend(self.catch_up_from(peer, chain, now));
            }
        }
        out.extend(self.schedule_blocks(chain, now));
        out
    }

    fn schedule_blocks(&mut self, chain: &ChainState, now: Instant) -> Vec<NetCommand> {
        let wanted: Vec<(BlockHash, u32)> = chain
            .missing_blocks(DOWNLOAD_WINDOW)
            .into_iter()
            .filter(|(h, _)| !self.requested.contains_key(h))
            .collect();
        let mut out = Vec::new();
        let mut queue = wanted.into_iter().peekable();
        let mut peers: Vec<PeerId> = self.peers.keys().copied().collect();
        peers.sort();
        'outer: while queue.peek().is_some() {
            let mut progressed = false;
            for peer in &peers {
                let Some(state) = self.peers.get(peer) else { continue };
                let Some(tip_height) = state.tip.map(|t| t.height) else { continue };
                if state.batches >= MAX_BATCHES_PER_PEER {
                    continue;
                }
                let mut batch = Vec::new();
                while batch.len() < MAX_BLOCKS_PER_REQUEST {
                    match queue.peek() {
                        Some((_, height)) if *height <= tip_height => {
                            if let Some((hash, _)) = queue.next() {
                                batch.push(hash);
                            }
                        }
                        _ => break,
                    }
                }
                if batch.is_empty() {
                    continue;
                }
                let req = SyncRequest::Blocks(batch.iter().map(|h| h.0).collect());
                out.push(self.request(*peer, Kind::Blocks(batch), req, now));
                progressed = true;
                if queue.peek().is_none() {
                    break 'outer;
                }
            }
            if !progressed {
                break;
            }
        }
        out
    }

    /// Gives up requests past their timeout, and periodically asks every peer its tip.
    pub fn tick(&mut self, chain: &ChainState, now: Instant) -> Vec<NetCommand> {
        let expired: Vec<u64> = self
            .pending
            .iter()
            .filter(|(_, p)| now.duration_since(p.sent) > REQUEST_TIMEOUT)
            .map(|(id, _)| *id)
            .collect();
        for id in expired {
            if let Some(p) = self.release(id) {
                debug!(peer = %p.peer, kind = ?p.kind, "sync request timed out");
            }
        }
        let mut out = Vec::new();
        if self.last_status_round.is_none_or(|t| now.duration_since(t) >= STATUS_INTERVAL) {
            self.last_status_round = Some(now);
            let peers: Vec<PeerId> = self.peers.keys().copied().collect();
            for peer in peers {
                out.push(self.request(peer, Kind::Status, SyncRequest::Status, now));
            }
        }
        out.extend(self.advance(chain, now));
        out
    }

    /// Logs sync progress at most every two seconds while behind.
    pub fn log_progress(&mut self, chain: &ChainState, now: Instant) {
        let height = chain.height();
        let target = chain.best_header().height.max(self.best_peer_height());
        if height >= target {
            if self.progress.last_line.is_some() {
                info!(height, "sync complete at height {height}");
                self.progress.last_line = None;
            }
            return;
        }
        let Some(last) = self.progress.last_line else {
            self.progress.last_line = Some(now);
            self.progress.height_at_last = height;
            return;
        };
        let elapsed = now.duration_since(last);
        if elapsed < PROGRESS_EVERY {
            return;
        }
        let rate =
            f64::from(height.saturating_sub(self.progress.height_at_last)) / elapsed.as_secs_f64();
        let percent = f64::from(height) * 100.0 / f64::from(target.max(1));
        info!(
            height,
            target,
            percent = format!("{percent:.1}"),
            blocks_per_s = format!("{rate:.1}"),
            peers = self.peers.len(),
            "blocks {height}/{target} ({percent:.0}%) {rate:.1} blocks/s"
        );
        self.progress.last_line = Some(now);
        self.progress.height_at_last = height;
    }
}
