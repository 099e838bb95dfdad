//! Compact block relay, the core's side: a block announced as a [`CompactBlock`] is
//! rebuilt from the mempool (and the orphan pool), what is missing is asked of the
//! announcer by index, and the whole block is fetched instead when the rebuilt block does
//! not match its header or the announcer does not answer in time.
//!
//! ```text
//!  compact block ─▶ shape ─▶ header (PoW, difficulty, time) ─▶ rebuild from mempool
//!                                                     ├─ all found, root matches ─▶ validate ─▶ verdict
//!                                                     ├─ some missing ─▶ BlockTxs ─▶ fill ─▶ (same)
//!                                                     └─ root differs, no answer ─▶ fallback:
//!                                     header indexed, block fetched by sync ─▶ verdict when it is stored
//! ```
//!
//! The gossip verdict waits for the block: gossipsub forwards the compact block only once
//! the block it stands for passed full validation, as it forwards a whole block. Blame
//! follows [`judge`]: a compact block no block could have, or one the fetched block shows
//! to be false, is an offence; a rebuilt block that does not match its root is not (a
//! short id may collide with another transaction of our mempool), and neither is a slow
//! answer; the rebuilt block's own validation blames as a whole block's would.

use std::collections::HashMap;
use std::time::Duration;

use tracing::debug;

use super::verdict::{Judgement, Rejection, Verdict, judge};
use super::{Core, NetAction, Offence, Output};
use crate::chain::ChainError;
use crate::compact::{CompactBlock, Partial, ShortIdKey};
use crate::consensus::HeaderError;
use crate::primitives::encode::{deserialize, serialize};
use crate::primitives::{Block, BlockHash, PeerKey, Time, Transaction, Wtxid};
use crate::protocol::GossipKind;
use crate::sync::SyncFault;

/// How long the announcer has to send the transactions we lack before the whole block is
/// fetched instead (several round trips of a long link).
pub const MISSING_TXS_WAIT: Duration = Duration::from_secs(2);
/// How long a compact block whose block is being fetched whole waits for it before its
/// gossip verdict is given up (ignored; the download goes on without it).
pub const FALLBACK_WAIT: Duration = Duration::from_secs(60);

/// Compact blocks by what it took to rebuild them (`/metrics`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CompactStats {
    /// Rebuilt from the mempool alone.
    pub rebuilt: u64,
    /// Rebuilt after asking the announcer for missing transactions.
    pub requested: u64,
    /// Fetched whole (the rebuilt block did not match, or the announcer did not answer).
    pub fallback: u64,
}

/// Where a rebuild stands.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Stage {
    /// The missing transactions were asked with this request id.
    Asked(u64),
    /// The whole block is being fetched.
    Whole,
}

/// A compact block whose block is not settled yet.
#[derive(Debug)]
struct Rebuild {
    /// The gossip message's id, for its verdict.
    gossip: u64,
    /// Who announced it.
    peer: PeerKey,
    compact: CompactBlock,
    partial: Partial,
    /// When the stage began.
    since: Time,
    stage: Stage,
    /// The transactions the announcer sent for the missing slots: checked against the
    /// block if it has to be fetched whole.
    sent: Vec<(u32, Wtxid)>,
    /// Other peers that relayed it meanwhile: they have the block too.
    relays: Vec<PeerKey>,
}

/// The compact blocks being rebuilt.
#[derive(Debug)]
pub struct CompactRelay {
    /// Whether this node speaks compact blocks (announces them, takes them).
    enabled: bool,
    pending: HashMap<BlockHash, Rebuild>,
    /// Our requests for missing transactions -> the block.
    asks: HashMap<u64, BlockHash>,
    stats: CompactStats,
}

impl CompactRelay {
    pub(super) fn new(enabled: bool) -> Self {
        Self {
            enabled,
            pending: HashMap::new(),
            asks: HashMap::new(),
            stats: CompactStats::default(),
        }
    }

    pub(super) fn enabled(&self) -> bool {
        self.enabled
    }

    pub(super) fn stats(&self) -> CompactStats {
        self.stats
    }
}

/// Whether `compact` is the compact form of `block`, as far as it went: the prefilled
/// transactions are the block's, every short id is its transaction's, and so is every
/// transaction sent for a missing slot.
fn tells_truth(compact: &CompactBlock, sent: &[(u32, Wtxid)], block: &Block) -> bool {
    if compact.tx_count() != block.txs.len() {
        return false;
    }
    let key = ShortIdKey::of(&block.header);
    let mut prefilled = compact.prefilled.iter().peekable();
    let mut ids = compact.short_ids.iter();
    for (index, tx) in block.txs.iter().enumerate() {
        let honest = match prefilled.peek() {
            Some(p) if p.index as usize == index => prefilled.next().is_some_and(|p| p.tx == *tx),
            _ => ids.next().is_some_and(|id| *id == key.short_id(&tx.wtxid())),
        };
        if !honest {
            return false;
        }
    }
    sent.iter().all(|(i, w)| block.txs.get(*i as usize).is_some_and(|tx| tx.wtxid() == *w))
}

impl Core {
    /// A compact block gossiped by `peer`: the verdict now, or `None` when it comes later
    /// (once the block is rebuilt or fetched whole).
    pub(super) fn on_gossip_compact(
        &mut self,
        id: u64,
        peer: PeerKey,
        data: &[u8],
        now: Time,
    ) -> Option<Verdict> {
        let compact = match deserialize::<CompactBlock>(data) {
            Ok(compact) => compact,
            Err(_) => {
                let offence = Offence::UndecodableGossip(GossipKind::CompactBlock);
                return Some(self.apply(peer, judge(Rejection::Offence(offence)), now).verdict());
            }
        };
        if let Err(error) = compact.check() {
            let offence = Offence::MalformedCompact(error);
            return Some(self.apply(peer, judge(Rejection::Offence(offence)), now).verdict());
        }
        let hash = compact.block_hash();
        if let Some(rebuild) = self.relay.pending.get_mut(&hash) {
            // Another relay of it: that peer has the block too.
            if rebuild.stage == Stage::Whole {
                let asks = self.sync.announced(peer, hash, self.ledger.chain(), now);
                self.ask(asks);
            } else if rebuild.peer != peer && !rebuild.relays.contains(&peer) {
                rebuild.relays.push(peer);
            }
            return Some(Verdict::Ignore);
        }
        if self.ledger.chain().entry(&hash).is_some_and(|e| e.has_data()) {
            return Some(Verdict::Ignore);
        }
        match self.ledger.chain().check_header(&compact.header, now.unix_secs()) {
            Ok(_) => {}
            Err(ChainError::UnknownParent { parent, .. }) => {
                self.sync.note_orphan(peer, parent);
                let asks = self.sync.catch_up_from(peer, self.ledger.chain(), now);
                self.ask(asks);
                return Some(Verdict::Ignore);
            }
            Err(error) => {
                if let ChainError::InvalidHeader {
                    error: HeaderError::TimeTooNew { time, .. },
                    ..
                } = &error
                {
                    self.clock.future(*time, now);
                }
                debug!(%peer, %hash, reason = %error, "compact block's header refused");
                return Some(self.apply(peer, judge(Rejection::Block(&error)), now).verdict());
            }
        }
        let partial = self.ledger.rebuild(&compact);
        let missing = partial.missing();
        let mut rebuild = Rebuild {
            gossip: id,
            peer,
            compact,
            partial,
            since: now,
            stage: Stage::Whole,
            sent: Vec::new(),
            relays: Vec::new(),
        };
        if missing.is_empty() {
            match rebuild.partial.finish() {
                Ok(block) => {
                    self.relay.stats.rebuilt += 1;
                    return Some(self.accept_rebuilt(block, peer, true, now));
                }
                Err(error) => {
                    debug!(%peer, %hash, reason = %error, "compact block not rebuilt: fetching it whole");
                    self.relay.pending.insert(hash, rebuild);
                    self.fetch_whole(hash, now);
                    return None;
                }
            }
        }
        debug!(%peer, %hash, missing = missing.len(), "compact block: asking the transactions the mempool lacks");
        let ask = self.sync.ask_block_txs(peer, hash, missing, now);
        self.relay.asks.insert(ask.id, hash);
        rebuild.stage = Stage::Asked(ask.id);
        self.relay.pending.insert(hash, rebuild);
        self.ask(vec![ask]);
        None
    }

    /// Validates a rebuilt block as if it had come whole; a valid one is also published
    /// whole, for peers that do not take compact blocks (the network layer sends it only
    /// to those). A compact block that was not `truthful` (its short ids were not the
    /// block's) is not forwarded: the block's own compact form is published instead.
    fn accept_rebuilt(
        &mut self,
        block: Block,
        peer: PeerKey,
        truthful: bool,
        now: Time,
    ) -> Verdict {
        // Encoded before the block moves into the chain.
        let (hash, data) = (block.block_hash(), serialize(&block));
        let compact = (!truthful).then(|| serialize(&CompactBlock::from_block(&block)));
        let judgement = self.accept_block(block, Some(peer), now);
        if judgement != Judgement::Accept {
            return judgement.verdict();
        }
        self.pass_on(hash, data, compact, peer, now)
    }

    /// Passes on block `hash` (encoded as `data`), which a compact block from `peer`
    /// stood for, once the chain took it: whole, for peers that do not take compact
    /// blocks; and if that compact block was false, in the block's own compact form
    /// (`compact`), the false one's sender charged. Returns the verdict on the compact
    /// block.
    fn pass_on(
        &mut self,
        hash: BlockHash,
        data: Vec<u8>,
        compact: Option<Vec<u8>>,
        peer: PeerKey,
        now: Time,
    ) -> Verdict {
        self.out.push(Output::Net(NetAction::Publish { kind: GossipKind::Block, data }));
        let Some(data) = compact else { return Verdict::Accept };
        self.out.push(Output::Net(NetAction::Publish { kind: GossipKind::CompactBlock, data }));
        let offence = Offence::FalseCompact(hash);
        self.apply(peer, judge(Rejection::Offence(offence)), now).verdict()
    }

    /// The transactions `peer` sent for a compact block's missing slots.
    pub(super) fn on_block_txs(&mut self, id: u64, peer: PeerKey, txs: Vec<Vec<u8>>, now: Time) {
        self.relay.asks.remove(&id);
        let Some(hash) = self.sync.on_block_txs(id) else {
            self.apply(peer, judge(Rejection::Sync(SyncFault::UnaskedAnswer)), now);
            return;
        };
        // Settled meanwhile (the block came another way), or fetched whole already.
        let Some(mut rebuild) = self.relay.pending.remove(&hash) else { return };
        if rebuild.stage != Stage::Asked(id) {
            self.relay.pending.insert(hash, rebuild);
            return;
        }
        match self.fill_missing(&mut rebuild, peer, txs, now) {
            Some(block) => {
                // The block matches its root: a short id that is not its transaction's
                // was false.
                self.relay.stats.requested += 1;
                let truthful = tells_truth(&rebuild.compact, &[], &block);
                let verdict = self.accept_rebuilt(block, peer, truthful, now);
                self.validate(rebuild.gossip, verdict);
            }
            None => {
                self.relay.pending.insert(hash, rebuild);
                self.fetch_whole(hash, now);
            }
        }
    }

    /// Fills `rebuild`'s missing slots with the transactions `peer` sent: the block, or
    /// `None` if they do not decode, do not count one per slot (both charged), or do not
    /// make the block its header commits to.
    fn fill_missing(
        &mut self,
        rebuild: &mut Rebuild,
        peer: PeerKey,
        txs: Vec<Vec<u8>>,
        now: Time,
    ) -> Option<Block> {
        let wanted = rebuild.partial.missing();
        let mut decoded = Vec::with_capacity(txs.len());
        for data in &txs {
            match deserialize::<Transaction>(data) {
                Ok(tx) => decoded.push(tx),
                Err(e) => {
                    self.apply(peer, judge(Rejection::Sync(SyncFault::UndecodableTx(e))), now);
                    return None;
                }
            }
        }
        let sent = wanted.iter().copied().zip(decoded.iter().map(Transaction::wtxid)).collect();
        if rebuild.partial.fill(decoded).is_err() {
            let fault = SyncFault::BlockTxsCount { got: txs.len(), wanted: wanted.len() };
            self.apply(peer, judge(Rejection::Sync(fault)), now);
            return None;
        }
        rebuild.sent = sent;
        match rebuild.partial.finish() {
            Ok(block) => Some(block),
            Err(error) => {
                let hash = rebuild.compact.block_hash();
                debug!(%peer, %hash, reason = %error, "compact block not rebuilt with the transactions sent: fetching it whole");
                None
            }
        }
    }

    /// Our request for missing transactions `id` failed or was refused: the block is
    /// fetched whole.
    pub(super) fn block_txs_failed(&mut self, id: u64, now: Time) {
        if let Some(hash) = self.relay.asks.remove(&id) {
            self.fetch_whole(hash, now);
        }
    }

    /// The rebuild of `hash` gives up: its header goes into the index (it passed the
    /// checks) and sync fetches the block from the announcer (and any peer that has it),
    /// with its usual timeouts and blame. The verdict waits for the block.
    fn fetch_whole(&mut self, hash: BlockHash, now: Time) {
        let Some(rebuild) = self.relay.pending.get_mut(&hash) else { return };
        if let Stage::Asked(id) = rebuild.stage {
            self.relay.asks.remove(&id);
        }
        rebuild.stage = Stage::Whole;
        rebuild.since = now;
        self.relay.stats.fallback += 1;
        let (header, peer) = (rebuild.compact.header, rebuild.peer);
        let (_, error) = self.ledger.accept_headers(&[header], now);
        if let Some(error) = error {
            // A store failure: nobody's fault; the block comes with the next headers.
            debug!(%hash, reason = %error, "compact block's header not indexed");
            if let Some(r) = self.relay.pending.remove(&hash) {
                self.validate(r.gossip, Verdict::Ignore);
            }
            return;
        }
        let relays = std::mem::take(&mut rebuild.relays);
        for peer in std::iter::once(peer).chain(relays) {
            let asks = self.sync.announced(peer, hash, self.ledger.chain(), now);
            self.ask(asks);
        }
    }

    /// Gives the verdicts of the compact blocks whose block is now stored (or known
    /// invalid), judging each announcer by the block itself. Called after blocks are
    /// accepted.
    pub(super) fn settle_compacts(&mut self, now: Time) {
        let chain = self.ledger.chain();
        let done: Vec<BlockHash> = self
            .relay
            .pending
            .keys()
            .filter(|h| chain.entry(h).is_some_and(|e| e.has_data() || e.is_failed()))
            .copied()
            .collect();
        for hash in done {
            let Some(rebuild) = self.relay.pending.remove(&hash) else { continue };
            if let Stage::Asked(id) = rebuild.stage {
                self.relay.asks.remove(&id);
            }
            let block = match self.ledger.chain().block(&hash) {
                Ok(Some(block)) => block,
                // Known invalid (no data kept), or unreadable: not forwarded.
                _ => {
                    let failed = self.ledger.chain().entry(&hash).is_some_and(|e| e.is_failed());
                    self.validate(
                        rebuild.gossip,
                        if failed { Verdict::Reject } else { Verdict::Ignore },
                    );
                    continue;
                }
            };
            let truthful = tells_truth(&rebuild.compact, &rebuild.sent, &block);
            let compact = (!truthful).then(|| serialize(&CompactBlock::from_block(&block)));
            let verdict = self.pass_on(hash, serialize(&block), compact, rebuild.peer, now);
            self.validate(rebuild.gossip, verdict);
        }
    }

    /// Rebuilds whose announcer did not answer in time are fetched whole; those whose
    /// block did not come give up their verdict. A disconnected announcer (`gone`) has
    /// no answer coming.
    pub(super) fn compact_tick(&mut self, gone: Option<PeerKey>, now: Time) {
        let mut late = Vec::new();
        let mut expired = Vec::new();
        for (hash, r) in &self.relay.pending {
            match r.stage {
                Stage::Asked(_)
                    if gone == Some(r.peer) || now.since(r.since) >= MISSING_TXS_WAIT =>
                {
                    late.push(*hash)
                }
                Stage::Whole if now.since(r.since) >= FALLBACK_WAIT => expired.push(*hash),
                _ => {}
            }
        }
        late.sort();
        expired.sort();
        for hash in late {
            debug!(%hash, "announcer did not send a compact block's missing transactions in time: fetching it whole");
            self.fetch_whole(hash, now);
        }
        for hash in expired {
            if let Some(r) = self.relay.pending.remove(&hash) {
                debug!(%hash, "compact block's block did not come: verdict given up");
                self.validate(r.gossip, Verdict::Ignore);
            }
        }
    }

    fn validate(&mut self, id: u64, verdict: Verdict) {
        self.out.push(Output::Net(NetAction::Validate { id, verdict }));
    }
}
