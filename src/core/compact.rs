//! Compact block relay, the core's side (after BIP152's low-bandwidth mode). A new block is
//! announced by its header on gossip, forwarded as soon as its proof of work and context
//! check out. Each node asks the peer whose announcement reached it first for the block's
//! [`CompactBlock`] (short ids and the coinbase), rebuilds the block from its mempool (and
//! the orphan pool), asks that peer for what it lacks by index, and fetches the whole
//! block instead when the rebuilt block does not match its header or the peer does not
//! answer in time.
//!
//! ```text
//!  header ─▶ PoW, difficulty, time ─▶ forwarded; CompactBlock asked ─▶ rebuild from mempool
//!                                                     ├─ all found, root matches ─▶ validate
//!                                                     ├─ some missing ─▶ BlockTxs ─▶ fill ─▶ (same)
//!                                                     └─ root differs, no answer ─▶ fallback:
//!                                 header indexed, block fetched by sync ─▶ judged when stored
//! ```
//!
//! Headers run ahead of blocks: a peer asked for the compact form of a block it announced
//! but has not taken yet holds the request until it has (parked, at most [`PARK_WAIT`]),
//! so a block follows its header hop by hop without a round trip more per hop. A node
//! serves the compact form only of a block it has taken, built from the block itself: a
//! false one is never passed on. So each node receives one compact block per block,
//! however many peers announce it, where pushing it would send one across most links.
//!
//! Blame follows [`judge`]: a compact block no block could have, one of another block than
//! the one asked, or one the block shows to be false, is an offence; a rebuilt block that
//! does not match its root is not (a short id may collide with another transaction of our
//! mempool), and neither is a slow answer; the rebuilt block's own validation blames as a
//! whole block's would.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use tracing::debug;

use super::verdict::{Judgement, Rejection, Verdict, judge};
use super::{Core, NetAction, Offence, Output};
use crate::chain::ChainError;
use crate::compact::{CompactBlock, Partial, ShortIdKey};
use crate::consensus::HeaderError;
use crate::primitives::encode::{deserialize, serialize};
use crate::primitives::header::HEADER_SIZE;
use crate::primitives::{Block, BlockHash, BlockHeader, PeerKey, Time, Transaction, Wtxid};
use crate::protocol::{GossipKind, SyncResponse};
use crate::sync::SyncFault;

/// How long the announcer has to send a block's compact form, or the transactions we
/// lack, before the whole block is fetched instead (several round trips of a long link).
pub const ANSWER_WAIT: Duration = Duration::from_secs(2);
/// How long a request for the compact form of a block we announced but have not taken
/// yet is held before it is refused (the asker stops waiting as long).
pub const PARK_WAIT: Duration = ANSWER_WAIT;
/// How long a block being fetched whole after its compact form failed is waited for
/// before its announcement is forgotten (the download goes on without it).
pub const FALLBACK_WAIT: Duration = Duration::from_secs(60);
/// Compact forms of the latest blocks taken, kept to serve.
const FORMS: usize = 8;
/// Requests held per block not taken yet, and blocks with held requests: beyond, refused.
const PARKED_PER_BLOCK: usize = 64;
const PARKED_BLOCKS: usize = 32;
/// Compact forms asked of one peer at a time: the blocks announced after wait their turn
/// (a burst of blocks, as `mine --blocks 110` makes, would pass the peer's limit on open
/// requests, `core::limit::MAX_IN_FLIGHT`).
const FORMS_IN_FLIGHT: usize = 4;
/// Announced headers held until their parent's comes (headers overtake one another).
const ORPHAN_HEADERS: usize = 64;

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
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// The compact form is to be asked once fewer are open with the announcer.
    Queued,
    /// The compact form was asked with this request id.
    Form(u64),
    /// The missing transactions were asked with this request id.
    Missing(u64),
    /// The whole block is being fetched.
    Whole,
    /// The block is stored, waiting for its parent to connect.
    Taken,
}

/// The compact form the announcer sent, and what the mempool made of it.
#[derive(Debug)]
struct Body {
    compact: CompactBlock,
    partial: Partial,
    /// The transactions the announcer sent for the missing slots: checked against the
    /// block if it has to be fetched whole.
    sent: Vec<(u32, Wtxid)>,
}

/// An announced block not settled yet.
#[derive(Debug)]
struct Rebuild {
    /// The peer whose announcement came first: asked for the compact form and for what
    /// the mempool lacks.
    peer: PeerKey,
    header: BlockHeader,
    /// When the stage began.
    since: Time,
    stage: Stage,
    body: Option<Body>,
}

/// An announced header held for its parent's, its gossip verdict with it.
#[derive(Debug)]
struct HeldHeader {
    /// The gossip message's id.
    id: u64,
    peer: PeerKey,
    header: BlockHeader,
    since: Time,
}

/// The announced blocks being rebuilt, and the compact forms served.
#[derive(Debug)]
pub struct CompactRelay {
    /// Whether this node speaks compact blocks (announces them, takes them).
    enabled: bool,
    pending: HashMap<BlockHash, Rebuild>,
    /// Our requests for compact forms and missing transactions -> the block.
    asks: HashMap<u64, BlockHash>,
    /// Compact forms of the latest blocks taken, newest last.
    forms: VecDeque<(BlockHash, Vec<u8>)>,
    /// Requests for the compact form of a pending block: (request id, when).
    parked: HashMap<BlockHash, Vec<(u64, Time)>>,
    /// Announced headers whose parent was not here, oldest first.
    orphans: VecDeque<HeldHeader>,
    stats: CompactStats,
}

impl CompactRelay {
    pub(super) fn new(enabled: bool) -> Self {
        Self {
            enabled,
            pending: HashMap::new(),
            asks: HashMap::new(),
            forms: VecDeque::new(),
            parked: HashMap::new(),
            orphans: VecDeque::new(),
            stats: CompactStats::default(),
        }
    }

    pub(super) fn enabled(&self) -> bool {
        self.enabled
    }

    pub(super) fn stats(&self) -> CompactStats {
        self.stats
    }

    fn form(&self, hash: &BlockHash) -> Option<&Vec<u8>> {
        self.forms.iter().find(|(h, _)| h == hash).map(|(_, form)| form)
    }

    /// Holds request `id` for the compact form of pending block `hash`, if there is room.
    fn park(&mut self, hash: BlockHash, id: u64, now: Time) -> bool {
        if !self.pending.contains_key(&hash)
            || (!self.parked.contains_key(&hash) && self.parked.len() >= PARKED_BLOCKS)
        {
            return false;
        }
        let held = self.parked.entry(hash).or_default();
        if held.len() >= PARKED_PER_BLOCK {
            return false;
        }
        held.push((id, now));
        true
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
    /// A block's header announced on gossip by `peer` (message `id`): forwarded (accepted)
    /// once its proof of work and context check out, and its compact form asked of `peer`.
    /// `None`: the verdict comes once its parent's header does.
    pub(super) fn on_gossip_header(
        &mut self,
        id: u64,
        peer: PeerKey,
        data: &[u8],
        now: Time,
    ) -> Option<Verdict> {
        let Ok(bytes) = <&[u8; HEADER_SIZE]>::try_from(data) else {
            let offence = Offence::UndecodableGossip(GossipKind::Header);
            return Some(self.apply(peer, judge(Rejection::Offence(offence)), now).verdict());
        };
        let verdict = self.take_header(id, peer, BlockHeader::from_bytes(bytes), now);
        if verdict == Some(Verdict::Accept) {
            self.adopt_headers(now);
        }
        verdict
    }

    /// An announced `header` from `peer` (message `id`): checked, indexed and its compact
    /// form queued to be asked; one whose parent is not here yet waits for it (`None`).
    fn take_header(
        &mut self,
        id: u64,
        peer: PeerKey,
        header: BlockHeader,
        now: Time,
    ) -> Option<Verdict> {
        let hash = header.block_hash();
        if self.relay.pending.contains_key(&hash) {
            return Some(Verdict::Ignore);
        }
        if self.ledger.chain().entry(&hash).is_some_and(|e| e.has_data()) {
            // We have the block (mined, or fetched another way) but not this message:
            // passed on, or the peers behind us would hear of the next block before it.
            return Some(Verdict::Accept);
        }
        match self.ledger.chain().check_header(&header, now.unix_secs()) {
            Ok(_) => {}
            Err(ChainError::UnknownParent { parent, .. }) => {
                debug!(peer = %self.who(peer), %hash, %parent, "announced header's parent unknown: held for it");
                // Headers from several peers overtake one another: the parent's is most
                // likely on its way, and this one is held for it, its verdict too (so it
                // is forwarded then). The sender may not serve the parent yet either (it
                // serves its active chain, and forwards headers before it has their
                // blocks), so this is no offence, unlike an orphan block.
                if self.relay.orphans.len() >= ORPHAN_HEADERS
                    && let Some(old) = self.relay.orphans.pop_front()
                {
                    self.validate(old.id, Verdict::Ignore);
                }
                self.relay.orphans.push_back(HeldHeader { id, peer, header, since: now });
                let asks = self.sync.catch_up_from(peer, self.ledger.chain(), now);
                self.ask(asks);
                return None;
            }
            Err(error) => {
                if let ChainError::InvalidHeader {
                    error: HeaderError::TimeTooNew { time, .. },
                    ..
                } = &error
                {
                    self.clock.future(*time, now);
                }
                debug!(peer = %self.who(peer), %hash, reason = %error, "announced header refused");
                return Some(self.apply(peer, judge(Rejection::Block(&error)), now).verdict());
            }
        }
        // Indexed now, so that the next block's header, which may come before this block,
        // checks against it; sync leaves the block to compact relay meanwhile.
        let (_, error) = self.ledger.accept_headers(&[header], now);
        if let Some(error) = error {
            // A store failure: nobody's fault; the block comes with the next headers.
            debug!(%hash, reason = %error, "announced header not indexed");
            return Some(Verdict::Ignore);
        }
        if let Some(entry) = self.ledger.chain().entry(&hash) {
            self.sync.peer_has(peer, entry);
        }
        self.sync.relay(hash);
        let stage = Stage::Queued;
        self.relay.pending.insert(hash, Rebuild { peer, header, since: now, stage, body: None });
        self.ask_forms(peer, now);
        Some(Verdict::Accept)
    }

    /// Takes the held headers whose parent is now indexed (and theirs, in turn), and
    /// gives their verdicts; those held longer than [`ANSWER_WAIT`] are given up.
    fn adopt_headers(&mut self, now: Time) {
        loop {
            let chain = self.ledger.chain();
            let ready = |h: &HeldHeader| {
                let parent = chain.entry(&h.header.prev_blockhash).is_some();
                parent || now.since(h.since) >= ANSWER_WAIT
            };
            let Some(i) = self.relay.orphans.iter().position(ready) else { return };
            let Some(held) = self.relay.orphans.remove(i) else { return };
            let verdict = if now.since(held.since) >= ANSWER_WAIT {
                Some(Verdict::Ignore)
            } else {
                self.take_header(held.id, held.peer, held.header, now)
            };
            self.validate(held.id, verdict.unwrap_or(Verdict::Ignore));
        }
    }

    fn validate(&mut self, id: u64, verdict: Verdict) {
        self.out.push(Output::Net(NetAction::Validate { id, verdict }));
    }

    /// Asks `peer` for the compact forms of the blocks it announced that wait their turn,
    /// lowest first, as far as [`FORMS_IN_FLIGHT`] allows.
    fn ask_forms(&mut self, peer: PeerKey, now: Time) {
        let mine = |r: &&Rebuild| r.peer == peer;
        let open = self.relay.pending.values().filter(mine);
        let room = FORMS_IN_FLIGHT
            .saturating_sub(open.filter(|r| matches!(r.stage, Stage::Form(_))).count());
        let chain = self.ledger.chain();
        let mut queued: Vec<(u32, BlockHash)> = self
            .relay
            .pending
            .iter()
            .filter(|(_, r)| r.peer == peer && r.stage == Stage::Queued)
            .map(|(h, _)| (chain.entry(h).map_or(u32::MAX, |e| e.height), *h))
            .collect();
        queued.sort();
        for (_, hash) in queued.into_iter().take(room) {
            let ask = self.sync.ask_compact(peer, hash, now);
            self.relay.asks.insert(ask.id, hash);
            if let Some(r) = self.relay.pending.get_mut(&hash) {
                (r.stage, r.since) = (Stage::Form(ask.id), now);
            }
            self.ask(vec![ask]);
        }
    }

    /// `peer` did not send a compact form it was asked: the blocks it announced that
    /// wait their turn are fetched whole too.
    fn give_up_queued(&mut self, peer: PeerKey, now: Time) {
        let mut queued: Vec<BlockHash> = (self.relay.pending.iter())
            .filter(|(_, r)| r.peer == peer && r.stage == Stage::Queued)
            .map(|(h, _)| *h)
            .collect();
        queued.sort();
        for hash in queued {
            self.fetch_whole(hash, now);
        }
    }

    /// The compact form `peer` sent for an announced block (our request `id`); the next
    /// one it announced is asked.
    pub(super) fn on_compact(&mut self, id: u64, peer: PeerKey, data: &[u8], now: Time) {
        self.take_compact(id, peer, data, now);
        self.ask_forms(peer, now);
    }

    fn take_compact(&mut self, id: u64, peer: PeerKey, data: &[u8], now: Time) {
        self.relay.asks.remove(&id);
        let Some(hash) = self.sync.on_compact(id) else {
            self.apply(peer, judge(Rejection::Sync(SyncFault::UnaskedAnswer)), now);
            return;
        };
        // Settled meanwhile (the block came another way), or being fetched whole already.
        let Some(mut rebuild) = self.relay.pending.remove(&hash) else { return };
        if rebuild.stage != Stage::Form(id) {
            self.relay.pending.insert(hash, rebuild);
            return;
        }
        let compact = match deserialize::<CompactBlock>(data) {
            Ok(compact) => compact,
            Err(e) => {
                self.apply(peer, judge(Rejection::Sync(SyncFault::UndecodableCompact(e))), now);
                return self.give_up_form(rebuild, now);
            }
        };
        if compact.block_hash() != hash {
            let offence = Offence::FalseCompact(hash);
            self.apply(peer, judge(Rejection::Offence(offence)), now);
            return self.give_up_form(rebuild, now);
        }
        if let Err(error) = compact.check() {
            let offence = Offence::MalformedCompact(error);
            self.apply(peer, judge(Rejection::Offence(offence)), now);
            return self.give_up_form(rebuild, now);
        }
        let partial = self.ledger.rebuild(&compact);
        let missing = partial.missing();
        if missing.is_empty() {
            match partial.finish() {
                Ok(block) => {
                    self.relay.stats.rebuilt += 1;
                    let form = serialize(&compact);
                    rebuild.body = Some(Body { compact, partial, sent: Vec::new() });
                    self.accept_rebuilt(block, form, false, rebuild, now);
                    return;
                }
                Err(error) => {
                    debug!(peer = %self.who(peer), %hash, reason = %error, "compact block not rebuilt: fetching it whole");
                    rebuild.body = Some(Body { compact, partial, sent: Vec::new() });
                    self.relay.pending.insert(hash, rebuild);
                    return self.fetch_whole(hash, now);
                }
            }
        }
        debug!(peer = %self.who(peer), %hash, missing = missing.len(), "compact block: asking the transactions the mempool lacks");
        let ask = self.sync.ask_block_txs(peer, hash, missing, now);
        self.relay.asks.insert(ask.id, hash);
        rebuild.stage = Stage::Missing(ask.id);
        rebuild.since = now;
        rebuild.body = Some(Body { compact, partial, sent: Vec::new() });
        self.relay.pending.insert(hash, rebuild);
        self.ask(vec![ask]);
    }

    /// The compact form `rebuild`'s announcer sent was no use: the block is fetched whole.
    fn give_up_form(&mut self, rebuild: Rebuild, now: Time) {
        let hash = rebuild.header.block_hash();
        self.relay.pending.insert(hash, rebuild);
        self.fetch_whole(hash, now);
    }

    /// Validates the block `rebuild` made as if it had come whole, and passes on a valid
    /// one once connected: whole to peers that do not take compact blocks, and in compact
    /// `form` to those that ask. `lied`: the compact block its announcer sent was not the
    /// block's. A block stored until its parent connects is passed on then.
    fn accept_rebuilt(
        &mut self,
        block: Block,
        form: Vec<u8>,
        lied: bool,
        mut rebuild: Rebuild,
        now: Time,
    ) {
        // Encoded before the block moves into the chain.
        let (hash, data) = (block.block_hash(), serialize(&block));
        let form = if lied { serialize(&CompactBlock::from_block(&block)) } else { form };
        let peer = rebuild.peer;
        self.sync.unrelay(&hash);
        if self.accept_block(block, Some(peer), now) != Judgement::Accept {
            self.unpark(hash, None);
        } else if self.ledger.chain().is_active(&hash) {
            self.pass_on(hash, data, form, lied, peer, now);
        } else {
            (rebuild.stage, rebuild.since) = (Stage::Taken, now);
            self.relay.pending.insert(hash, rebuild);
        }
    }

    /// Passes on block `hash` (encoded as `data`, its compact form `form`), which a
    /// compact block from `peer` stood for, once the chain took it: whole, for peers that
    /// do not take compact blocks, and compact to those that asked or will; if that
    /// compact block `lied`, its sender is charged.
    fn pass_on(
        &mut self,
        hash: BlockHash,
        data: Vec<u8>,
        form: Vec<u8>,
        lied: bool,
        peer: PeerKey,
        now: Time,
    ) {
        self.out.push(Output::Net(NetAction::Publish { kind: GossipKind::Block, data }));
        self.took(hash, form);
        if lied {
            let offence = Offence::FalseCompact(hash);
            self.apply(peer, judge(Rejection::Offence(offence)), now);
        }
    }

    /// Block `hash` was taken: its compact `form` is kept to serve, and the requests held
    /// for it are answered.
    pub(super) fn took(&mut self, hash: BlockHash, form: Vec<u8>) {
        if self.relay.form(&hash).is_none() {
            if self.relay.forms.len() >= FORMS {
                self.relay.forms.pop_front();
            }
            self.relay.forms.push_back((hash, form));
        }
        let form = self.relay.form(&hash).cloned();
        self.unpark(hash, form);
    }

    /// Answers the requests held for the compact form of `hash`: with `form`, or refused.
    fn unpark(&mut self, hash: BlockHash, form: Option<Vec<u8>>) {
        for (id, _) in self.relay.parked.remove(&hash).unwrap_or_default() {
            let resp = match &form {
                Some(form) => SyncResponse::CompactBlock(form.clone()),
                None => SyncResponse::Refused(format!("block {hash} not taken")),
            };
            self.out.push(Output::Net(NetAction::Respond { id, resp }));
        }
    }

    /// Announces block `hash`, which we mined or took whole, by its `header`, and keeps
    /// its compact `form` for the peers that ask.
    pub(super) fn announce(&mut self, hash: BlockHash, header: &BlockHeader, form: Vec<u8>) {
        let data = header.to_bytes().to_vec();
        self.out.push(Output::Net(NetAction::Publish { kind: GossipKind::Header, data }));
        self.took(hash, form);
    }

    /// A peer asks for the compact form of block `hash` (request `id`): answered now if
    /// we have taken the block, held if we are getting it (we announced it), refused if
    /// neither.
    pub(super) fn serve_compact(&mut self, id: u64, hash: BlockHash, now: Time) {
        let resp = if let Some(form) = self.relay.form(&hash) {
            SyncResponse::CompactBlock(form.clone())
        } else if self.relay.park(hash, id, now) {
            return;
        } else {
            super::serve::compact_block(self.ledger.chain(), hash)
        };
        self.out.push(Output::Net(NetAction::Respond { id, resp }));
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
        if rebuild.stage != Stage::Missing(id) {
            self.relay.pending.insert(hash, rebuild);
            return;
        }
        let Some(mut body) = rebuild.body.take() else { return };
        let filled = self.fill_missing(&mut body, peer, txs, now);
        let (lied, form) = match &filled {
            // The block matches its root: a short id that is not its transaction's was
            // false.
            Some(block) => (!tells_truth(&body.compact, &[], block), serialize(&body.compact)),
            None => (false, Vec::new()),
        };
        rebuild.body = Some(body);
        match filled {
            Some(block) => {
                self.relay.stats.requested += 1;
                self.accept_rebuilt(block, form, lied, rebuild, now);
            }
            None => {
                self.relay.pending.insert(hash, rebuild);
                self.fetch_whole(hash, now);
            }
        }
    }

    /// Fills `body`'s missing slots with the transactions `peer` sent: the block, or
    /// `None` if they do not decode, do not count one per slot (both charged), or do not
    /// make the block its header commits to.
    fn fill_missing(
        &mut self,
        body: &mut Body,
        peer: PeerKey,
        txs: Vec<Vec<u8>>,
        now: Time,
    ) -> Option<Block> {
        let wanted = body.partial.missing();
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
        if body.partial.fill(decoded).is_err() {
            let fault = SyncFault::BlockTxsCount { got: txs.len(), wanted: wanted.len() };
            self.apply(peer, judge(Rejection::Sync(fault)), now);
            return None;
        }
        body.sent = sent;
        match body.partial.finish() {
            Ok(block) => Some(block),
            Err(error) => {
                let hash = body.compact.block_hash();
                debug!(peer = %self.who(peer), %hash, reason = %error, "compact block not rebuilt with the transactions sent: fetching it whole");
                None
            }
        }
    }

    /// Our request `id` for a compact form or missing transactions failed or was
    /// refused: the block is fetched whole.
    pub(super) fn compact_failed(&mut self, id: u64, now: Time) {
        let Some(hash) = self.relay.asks.remove(&id) else { return };
        let form = self.relay.pending.get(&hash).filter(|r| r.stage == Stage::Form(id));
        let peer = form.map(|r| r.peer);
        self.fetch_whole(hash, now);
        if let Some(peer) = peer {
            self.give_up_queued(peer, now);
        }
    }

    /// The rebuild of `hash` gives up: sync fetches the block (its header is indexed)
    /// from the announcer and any peer that has it, with its usual timeouts and blame. An announcer that sent the compact form has
    /// taken the block; one that did not may still be fetching it, and leaving it out of
    /// an answer is then no offence.
    fn fetch_whole(&mut self, hash: BlockHash, now: Time) {
        let Some(rebuild) = self.relay.pending.get_mut(&hash) else { return };
        if let Stage::Form(id) | Stage::Missing(id) = rebuild.stage {
            self.relay.asks.remove(&id);
        }
        rebuild.stage = Stage::Whole;
        rebuild.since = now;
        self.relay.stats.fallback += 1;
        let (peer, sent_form) = (rebuild.peer, rebuild.body.is_some());
        self.sync.unrelay(&hash);
        let chain = self.ledger.chain();
        let asks = if sent_form {
            self.sync.has_taken(peer, hash, chain, now)
        } else {
            self.sync.claims(peer, hash, chain, now)
        };
        self.ask(asks);
    }

    /// Settles the announced blocks the chain has now taken (or found invalid), judging
    /// each announcer's compact form by the block itself. Called after blocks are
    /// accepted.
    pub(super) fn settle_compacts(&mut self, now: Time) {
        let chain = self.ledger.chain();
        let done: Vec<BlockHash> = self
            .relay
            .pending
            .keys()
            .filter(|h| chain.is_active(h) || chain.entry(h).is_some_and(|e| e.is_failed()))
            .copied()
            .collect();
        for hash in done {
            let Some(rebuild) = self.relay.pending.remove(&hash) else { continue };
            if let Stage::Form(id) | Stage::Missing(id) = rebuild.stage {
                self.relay.asks.remove(&id);
            }
            self.sync.unrelay(&hash);
            let block = match self.ledger.chain().block(&hash) {
                Ok(Some(block)) if self.ledger.chain().is_active(&hash) => block,
                // Known invalid (no data kept), or unreadable: not passed on.
                _ => {
                    self.unpark(hash, None);
                    continue;
                }
            };
            let lied = rebuild.body.is_some_and(|b| !tells_truth(&b.compact, &b.sent, &block));
            let form = serialize(&CompactBlock::from_block(&block));
            self.pass_on(hash, serialize(&block), form, lied, rebuild.peer, now);
        }
    }

    /// Rebuilds whose announcer did not answer in time are fetched whole; those whose
    /// block did not come are forgotten; held requests that waited too long are refused.
    /// A disconnected announcer (`gone`) has no answer coming.
    pub(super) fn compact_tick(&mut self, gone: Option<PeerKey>, now: Time) {
        // A held header's parent may have come another way (sync, a whole block).
        self.adopt_headers(now);
        let mut late = Vec::new();
        let mut expired = Vec::new();
        let mut silent = Vec::new();
        for (hash, r) in &self.relay.pending {
            match r.stage {
                Stage::Queued if gone == Some(r.peer) => late.push(*hash),
                Stage::Form(_) | Stage::Missing(_)
                    if gone == Some(r.peer) || now.since(r.since) >= ANSWER_WAIT =>
                {
                    late.push(*hash);
                    if matches!(r.stage, Stage::Form(_)) {
                        silent.push(r.peer);
                    }
                }
                Stage::Whole | Stage::Taken if now.since(r.since) >= FALLBACK_WAIT => {
                    expired.push(*hash)
                }
                _ => {}
            }
        }
        late.sort();
        expired.sort();
        for hash in late {
            debug!(%hash, "announcer did not send a block's compact form or missing transactions in time: fetching it whole");
            self.fetch_whole(hash, now);
        }
        silent.sort();
        silent.dedup();
        for peer in silent {
            self.give_up_queued(peer, now);
        }
        for hash in expired {
            debug!(%hash, "announced block did not come, or did not connect");
            self.relay.pending.remove(&hash);
            self.sync.unrelay(&hash);
            self.unpark(hash, None);
        }
        let mut stale: Vec<(BlockHash, u64)> = Vec::new();
        for (hash, held) in &mut self.relay.parked {
            held.retain(|(id, since)| {
                let keep = now.since(*since) < PARK_WAIT;
                if !keep {
                    stale.push((*hash, *id));
                }
                keep
            });
        }
        self.relay.parked.retain(|_, held| !held.is_empty());
        stale.sort();
        for (hash, id) in stale {
            let resp = SyncResponse::Refused(format!("block {hash} not taken in time"));
            self.out.push(Output::Net(NetAction::Respond { id, resp }));
        }
    }
}
