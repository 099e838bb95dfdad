//! A deterministic network simulator: many nodes' [`Core`]s in one thread, on a virtual
//! clock and a virtual network, driven by a seeded random number generator. The same seed
//! gives the same run, event for event (the trace hash says so).
//!
//! What it models: per-link latency (uniform in a range, per message or fixed per link),
//! message sizes and each node's uplink and downlink bandwidth with their queues
//! ([`wire`], when set), message loss, partitions (links cut and later restored), node
//! crash and restart with the node's store kept, bans (the banning node refuses the peer
//! until the ban expires), gossip relay as gossipsub does it (to subscribed peers, after
//! validation, with duplicate suppression, not back to peers that sent a copy, IDONTWANT
//! for large messages), compact blocks and whole blocks for nodes without them, request
//! timeouts (libp2p's 30 s), the inbound request rate limit, and miners whose blocks
//! arrive as a Poisson process with a share of the hash power each. Scripted peers
//! ([`Actor`]s) stand in for servers, stallers, liars and attackers. [`internet`] runs
//! block relay across 1,000 nodes.
//!
//! What it does not model: Kademlia discovery (the topology is given), gossipsub's mesh
//! maintenance and peer scores (a node's links are its mesh), TCP, noise, CPU time
//! (validation is instantaneous in virtual time), and clock skew between nodes.
//!
//! ```text
//!  Sim::run_until(t)
//!    pop the earliest event (time, sequence number) ─▶ Deliver / Timeout / Find / Tick
//!    Core::handle(input, now) ─▶ outputs ─▶ new events after a link's latency
//! ```

mod actor;
mod rng;
mod wire;
#[cfg(test)]
mod compact_tests;
#[cfg(test)]
mod internet;
#[cfg(test)]
mod tests;

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, HashMap};
use std::time::Duration;

use sha2::{Digest, Sha256};

pub use self::actor::{Actor, ActorAct, Behaviour, ChainServer};
pub use self::rng::Rng;
pub use self::wire::Bandwidth;
use crate::chain::ChainState;
use crate::consensus::Network;
use crate::core::limit::RequestLimiter;
use crate::core::{
    Command, Core, Input, MiningConfig, NetAction, NetEvent, NodeEvent, Offence, Output, Verdict,
};
use crate::db::Store;
use crate::mempool::{Mempool, MempoolConfig};
use crate::miner::Template;
use crate::primitives::{Block, BlockHash, Coin, OutPoint, PeerKey, Time};
use crate::protocol::{FrameError, GossipKind, SyncRequest, SyncResponse};
use crate::storage::ChainStore;

/// How long an unanswered request waits before it fails (libp2p request-response's
/// timeout in `net::behaviour`).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// How often every core gets a tick.
pub const TICK: Duration = Duration::from_secs(1);

/// Network settings.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// One-way latency of a message, uniform in this range (milliseconds).
    pub latency_ms: (u64, u64),
    /// Probability that a message is lost.
    pub loss: f64,
    /// Mean time between blocks of the whole network (each miner finds blocks at its share
    /// of this rate).
    pub block_interval: Duration,
    /// How long a ban lasts.
    pub ban: Duration,
    /// Each node's bandwidth; `None`: messages take no time to send (only latency).
    pub bandwidth: Option<Bandwidth>,
    /// Whether each link keeps one latency (drawn once from the range) instead of one per
    /// message: messages on a link then arrive in order, as over TCP.
    pub fixed_latency: bool,
    /// Whether a node tells its peers IDONTWANT on first sight of a large gossip message
    /// (gossipsub 1.2): they do not send it a copy then.
    pub idontwant: bool,
    /// How long a node takes to validate a block, per transaction, before it forwards it
    /// (its own chain takes the block at once; zero: no time at all).
    pub validation_per_tx: Duration,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            latency_ms: (20, 120),
            loss: 0.0,
            block_interval: Duration::from_secs(10),
            ban: Duration::from_secs(600),
            bandwidth: None,
            fixed_latency: false,
            idontwant: true,
            validation_per_tx: Duration::ZERO,
        }
    }
}

/// A gossip message's content hash (its id, as gossipsub's message id is ours).
type MsgId = [u8; 32];

/// What travels between two peers.
#[derive(Debug, Clone)]
enum Msg {
    /// A gossip message: payload shared by every copy, and its digest.
    Gossip(GossipKind, std::sync::Arc<Vec<u8>>, MsgId),
    /// "I have this message; do not send it to me" (gossipsub 1.2).
    IDontWant(MsgId),
    Request {
        ask: u64,
        req: SyncRequest,
    },
    Response {
        ask: u64,
        resp: SyncResponse,
    },
    /// Bytes the receiving edge could not decode (it reports them as an offence).
    Garbage,
}

#[derive(Debug)]
enum Ev {
    Deliver {
        to: usize,
        from: usize,
        msg: Msg,
    },
    Timeout {
        node: usize,
        peer: usize,
        ask: u64,
    },
    Find {
        node: usize,
        epoch: u64,
    },
    Tick {
        node: usize,
    },
    /// Dial a kept link again (see [`Sim::keep`]).
    Redial {
        a: usize,
        b: usize,
    },
    /// Forward a block its node finished validating.
    Forward {
        node: usize,
        held: Held,
    },
    /// Send an answer its node held until it finished validating the block it carries.
    Answer {
        node: usize,
        to: usize,
        msg: Msg,
    },
}

/// How long gossipsub remembers a message it has seen (its default duplicate cache time).
const SEEN_FOR: Duration = Duration::from_secs(60);

/// How long a kept link waits before it is dialled again, and the longest wait.
const REDIAL: (Duration, Duration) = (Duration::from_secs(2), Duration::from_secs(60));

/// A miner's state.
#[derive(Debug)]
struct Miner {
    /// Share of the network's hash power.
    share: f64,
    /// Whether it is mining at all (scenarios switch miners on and off).
    on: bool,
    /// The newest template its core handed out.
    template: Option<Box<Template>>,
    /// Invalidates scheduled finds when the miner is switched off or crashes.
    epoch: u64,
}

/// A simulated full node.
pub struct SimNode {
    /// Its database; survives crashes.
    pub store: Store,
    core: Option<Core>,
    miner: Option<Miner>,
    payout: [u8; 32],
    /// Gossip seen (by content hash) and when, as gossipsub's duplicate cache: the same
    /// message is taken again once [`SEEN_FOR`] has passed.
    seen: HashMap<[u8; 32], Time>,
    /// Gossip handed to the core, waiting for its verdict.
    gossip: BTreeMap<u64, Held>,
    /// Large messages peers said they have (IDONTWANT): not sent to them.
    dont_want: std::collections::HashSet<(usize, MsgId)>,
    /// Requests handed to the core, waiting for its answer: id -> (asker, asker's id).
    inbound: BTreeMap<u64, (usize, u64)>,
    next_id: u64,
    /// Our requests waiting for an answer: our id -> peer asked.
    outstanding: BTreeMap<u64, usize>,
    /// Peers refused until then.
    banned: BTreeMap<usize, Time>,
    limiter: RequestLimiter<usize>,
    /// Whether it speaks compact blocks (subscribes to them; see [`Sim::set_compact`]).
    compact: bool,
    /// When it is done validating each block it took, where that takes time
    /// ([`SimConfig::validation_per_tx`]).
    validated: HashMap<String, Time>,
    /// Its mempool's limits.
    mempool: MempoolConfig,
}

/// When a block was mined (if in the simulation), and when each node connected it (its
/// `Block` event).
pub type BlockSeen = (Option<Time>, Vec<(usize, Time)>);

/// A gossip message waiting for its verdict.
#[derive(Debug)]
struct Held {
    kind: GossipKind,
    data: std::sync::Arc<Vec<u8>>,
    digest: MsgId,
    /// The peers that sent it (the first, then copies that came meanwhile): it is not
    /// forwarded back to them, as gossipsub does not.
    from: Vec<usize>,
}

impl SimNode {
    /// A core on its store, with its settings.
    fn new_core(&self) -> Core {
        let chain = ChainState::open(self.store.clone()).expect("a simulated store opens");
        let mining = MiningConfig { enabled: self.miner.is_some(), payout: self.payout };
        let mut core = Core::new(chain, Mempool::new(self.mempool), mining);
        core.set_compact_blocks(self.compact);
        core
    }

    /// Whether gossip with `digest` is new at `now` (not seen within [`SEEN_FOR`]); notes it.
    fn first_sight(&mut self, digest: [u8; 32], now: Time) -> bool {
        if self.seen.get(&digest).is_some_and(|t| now.since(*t) < SEEN_FOR) {
            return false;
        }
        self.seen.insert(digest, now);
        true
    }

    /// The node's core, `None` while it is down.
    pub fn core(&self) -> Option<&Core> {
        self.core.as_ref()
    }

    /// Whether it is up.
    pub fn is_up(&self) -> bool {
        self.core.is_some()
    }

    /// Active tip height (0 while down).
    pub fn height(&self) -> u32 {
        self.core.as_ref().map_or(0, |c| c.chain().height())
    }

    /// Active tip (default while down).
    pub fn tip(&self) -> BlockHash {
        self.core.as_ref().map_or_else(BlockHash::default, |c| c.chain().tip())
    }
}

/// One participant.
pub enum Peer {
    /// A node running the real core.
    Node(Box<SimNode>),
    /// A scripted peer.
    Actor(Box<dyn Actor>),
}

/// A ban some node issued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BanRecord {
    /// When.
    pub at: Time,
    /// Who banned.
    pub by: usize,
    /// Whom.
    pub peer: usize,
    /// Why.
    pub offence: Offence,
}

/// The simulation.
pub struct Sim {
    /// The virtual clock.
    pub now: Time,
    /// The seeded random source.
    pub rng: Rng,
    cfg: SimConfig,
    peers: Vec<Peer>,
    queue: BinaryHeap<Reverse<(Time, u64)>>,
    events: BTreeMap<u64, Ev>,
    seq: u64,
    /// Connected pairs (lower index first).
    links: BTreeSet<(usize, usize)>,
    /// Pairs that cannot talk (a partition).
    cut: BTreeSet<(usize, usize)>,
    /// Every ban issued, in order.
    pub bans: Vec<BanRecord>,
    /// Every disconnect a node asked for (faults, or an offence of a kept peer), in order:
    /// (when, by, peer, reason).
    pub disconnects: Vec<(Time, usize, usize, String)>,
    /// Links dialled again whenever they drop (the node's kept peers), with the wait.
    kept: BTreeMap<(usize, usize), Duration>,
    /// Nodes frozen (SIGSTOP): they neither run nor read; what reaches them waits.
    frozen: BTreeSet<usize>,
    held: Vec<(usize, usize, Msg)>,
    trace: Sha256,
    delivered: u64,
    /// Gossip messages delivered and their bytes, by topic.
    gossiped: BTreeMap<&'static str, (u64, u64)>,
    /// Each peer's links, lowest index first (the `links` set, by peer).
    adjacent: Vec<BTreeSet<usize>>,
    wire: wire::Wire,
    /// When each block was mined, and when each node connected it, by hash.
    pub blocks_seen: BTreeMap<String, BlockSeen>,
}

fn pair(a: usize, b: usize) -> (usize, usize) {
    (a.min(b), a.max(b))
}

/// How node `at` names peer `peer`.
pub fn key(peer: usize) -> PeerKey {
    PeerKey(peer as u64 + 1)
}

fn peer_of(key: PeerKey) -> usize {
    (key.0 - 1) as usize
}

impl Sim {
    /// An empty network starting at `start`, with randomness from `seed`.
    pub fn new(seed: u64, start: Time, cfg: SimConfig) -> Self {
        Self {
            now: start,
            rng: Rng::new(seed),
            cfg,
            peers: Vec::new(),
            queue: BinaryHeap::new(),
            events: BTreeMap::new(),
            seq: 0,
            links: BTreeSet::new(),
            cut: BTreeSet::new(),
            bans: Vec::new(),
            disconnects: Vec::new(),
            kept: BTreeMap::new(),
            frozen: BTreeSet::new(),
            held: Vec::new(),
            trace: Sha256::new(),
            delivered: 0,
            gossiped: BTreeMap::new(),
            adjacent: Vec::new(),
            wire: wire::Wire::default(),
            blocks_seen: BTreeMap::new(),
        }
    }

    /// Adds a regtest node on `store` (fresh or carried over); `miner` is its share of the
    /// hash power if it mines. Returns its index.
    pub fn add_node(&mut self, store: Store, miner: Option<f64>) -> usize {
        let index = self.peers.len();
        let payout = crate::testkit::pubkey(&crate::testkit::key(10_000 + index as u64));
        let miner = miner.map(|share| Miner { share, on: true, template: None, epoch: 0 });
        let node = SimNode {
            store,
            core: None,
            miner,
            payout,
            seen: HashMap::new(),
            gossip: BTreeMap::new(),
            dont_want: std::collections::HashSet::new(),
            inbound: BTreeMap::new(),
            next_id: 0,
            outstanding: BTreeMap::new(),
            banned: BTreeMap::new(),
            limiter: RequestLimiter::default(),
            compact: true,
            validated: HashMap::new(),
            mempool: MempoolConfig::default(),
        };
        self.peers.push(Peer::Node(Box::new(node)));
        self.start(index);
        index
    }

    /// Adds a fresh regtest node (an in-memory store).
    pub fn add_fresh_node(&mut self, miner: Option<f64>) -> usize {
        let store = Store::in_memory(Network::Regtest).expect("an in-memory store opens");
        self.add_node(store, miner)
    }

    /// Adds a scripted peer. Returns its index.
    pub fn add_actor(&mut self, actor: Box<dyn Actor>) -> usize {
        self.peers.push(Peer::Actor(actor));
        self.peers.len() - 1
    }

    /// The node at `index` (panics on an actor: a broken scenario).
    pub fn node(&self, index: usize) -> &SimNode {
        match &self.peers[index] {
            Peer::Node(n) => n,
            Peer::Actor(_) => panic!("peer {index} is an actor, not a node"),
        }
    }

    fn node_mut(&mut self, index: usize) -> Option<&mut SimNode> {
        match &mut self.peers[index] {
            Peer::Node(n) => Some(n),
            Peer::Actor(_) => None,
        }
    }

    /// Indices of the simulated full nodes.
    pub fn nodes(&self) -> Vec<usize> {
        (0..self.peers.len()).filter(|i| matches!(self.peers[*i], Peer::Node(_))).collect()
    }

    /// A hash of every event delivered so far: equal for runs with equal seeds.
    pub fn trace_hash(&self) -> [u8; 32] {
        self.trace.clone().finalize().into()
    }

    /// Gossip messages of `kind` delivered so far, and their bytes (duplicates included:
    /// what crossed the links).
    pub fn gossiped(&self, kind: GossipKind) -> (u64, u64) {
        self.gossiped.get(kind.label()).copied().unwrap_or_default()
    }

    /// Bytes sent so far, by what they carried (`wire::class`).
    pub fn bytes_sent(&self) -> &BTreeMap<&'static str, u64> {
        &self.wire.bytes
    }

    /// Messages delivered so far.
    pub fn delivered(&self) -> u64 {
        self.delivered
    }

    fn schedule(&mut self, at: Time, ev: Ev) {
        self.seq += 1;
        self.queue.push(Reverse((at, self.seq)));
        self.events.insert(self.seq, ev);
    }

    fn latency(&mut self) -> Duration {
        let (lo, hi) = self.cfg.latency_ms;
        Duration::from_millis(lo + self.rng.below(hi - lo + 1))
    }

    fn record(&mut self, parts: &[&[u8]]) {
        self.trace.update(self.now.as_millis().to_le_bytes());
        for p in parts {
            self.trace.update((p.len() as u64).to_le_bytes());
            self.trace.update(p);
        }
    }

    // ----- lifecycle -------------------------------------------------------------------

    /// Starts (or restarts) node `index` on its store.
    fn start(&mut self, index: usize) {
        let now = self.now;
        let Some(node) = self.node_mut(index) else { return };
        node.core = Some(node.new_core());
        node.seen.clear();
        node.gossip.clear();
        node.dont_want.clear();
        node.inbound.clear();
        node.outstanding.clear();
        if let Some(m) = &mut node.miner {
            m.template = None;
            m.epoch += 1;
        }
        self.schedule(now + TICK, Ev::Tick { node: index });
        self.handle(index, Input::Tick);
        self.schedule_find(index);
    }

    /// Makes node `index` speak compact blocks or not (a node of an older version): its
    /// core starts again on its store, as after an upgrade (set it before connecting).
    pub fn set_compact(&mut self, index: usize, on: bool) {
        if let Some(node) = self.node_mut(index) {
            node.compact = on;
            if node.core.is_some() {
                node.core = Some(node.new_core());
            }
        }
    }

    /// Gives node `index` a mempool with other limits; it restarts on its store (with an
    /// empty mempool, as a restarted node has).
    pub fn set_mempool(&mut self, index: usize, config: MempoolConfig) {
        if let Some(node) = self.node_mut(index) {
            node.mempool = config;
            if node.core.is_some() {
                node.core = Some(node.new_core());
            }
        }
    }

    /// Whether `index` takes gossip of `kind`: every node takes blocks and transactions,
    /// only nodes that speak compact blocks take those; scripted peers hear everything.
    fn subscribed(&self, index: usize, kind: GossipKind) -> bool {
        match &self.peers[index] {
            Peer::Node(n) => kind != GossipKind::Header || n.compact,
            Peer::Actor(_) => true,
        }
    }

    /// The neighbours of `index` a message of `kind` it publishes goes to, as gossipsub
    /// sends it to those subscribed: a whole block from a node that speaks compact blocks
    /// goes out only while one of them does not (the network layer's rule, `net::gossip`).
    fn gossip_targets(&self, index: usize, kind: GossipKind, digest: MsgId) -> Vec<usize> {
        let all: Vec<usize> = self
            .neighbours(index)
            .into_iter()
            .filter(|p| !self.unwanted(index, *p, &digest))
            .collect();
        let compact = matches!(&self.peers[index], Peer::Node(n) if n.compact);
        if compact
            && kind == GossipKind::Block
            && all.iter().all(|p| self.subscribed(*p, GossipKind::Header))
        {
            return Vec::new();
        }
        all.into_iter().filter(|p| self.subscribed(*p, kind)).collect()
    }

    /// How long validating `held` holds up its forwarding: whole blocks only, by their
    /// transactions ([`SimConfig::validation_per_tx`]); a header is forwarded at once.
    fn validation_time(&self, held: &Held) -> Duration {
        use crate::primitives::encode::deserialize;
        if self.cfg.validation_per_tx.is_zero() {
            return Duration::ZERO;
        }
        let txs = match held.kind {
            GossipKind::Block => deserialize::<Block>(&held.data).map_or(0, |b| b.txs.len()),
            GossipKind::Header | GossipKind::Tx => 0,
        };
        self.cfg.validation_per_tx * u32::try_from(txs).unwrap_or(u32::MAX)
    }

    /// Sends a validated message on to the subscribed peers that did not send it and did
    /// not say they have it.
    fn forward(&mut self, index: usize, held: Held) {
        let targets = self.neighbours(index).into_iter();
        let targets: Vec<usize> = targets
            .filter(|p| !held.from.contains(p) && self.subscribed(*p, held.kind))
            .filter(|p| !self.unwanted(index, *p, &held.digest))
            .collect();
        for peer in targets {
            let msg = Msg::Gossip(held.kind, held.data.clone(), held.digest);
            self.send(index, peer, msg);
        }
    }

    /// Whether `peer` told `index` it has the message `digest` (IDONTWANT).
    fn unwanted(&self, index: usize, peer: usize, digest: &MsgId) -> bool {
        matches!(&self.peers[index], Peer::Node(n) if n.dont_want.contains(&(peer, *digest)))
    }

    /// Crashes node `index`: its core is dropped, its store kept, its links closed.
    pub fn crash(&mut self, index: usize) {
        self.record(&[b"crash", &(index as u64).to_le_bytes()]);
        let links: Vec<(usize, usize)> =
            self.links.iter().filter(|(a, b)| *a == index || *b == index).copied().collect();
        for (a, b) in links {
            self.disconnect(a, b);
        }
        if let Some(node) = self.node_mut(index) {
            node.core = None;
            if let Some(m) = &mut node.miner {
                m.template = None;
                m.epoch += 1;
            }
        }
    }

    /// Restarts a crashed node on its store.
    pub fn restart(&mut self, index: usize) {
        self.record(&[b"restart", &(index as u64).to_le_bytes()]);
        self.start(index);
    }

    /// Connects `a` and `b` (both sides hear of it), unless either is down, banned by the
    /// other, cut off by a partition, or already connected.
    pub fn connect(&mut self, a: usize, b: usize) -> bool {
        if a == b || self.links.contains(&pair(a, b)) || self.cut.contains(&pair(a, b)) {
            return false;
        }
        if self.frozen.contains(&a) || self.frozen.contains(&b) {
            return false; // a frozen process never finishes the handshake
        }
        let now = self.now;
        let refused = |p: &Peer, other: usize| match p {
            Peer::Node(n) => n.core.is_none() || n.banned.get(&other).is_some_and(|t| *t > now),
            Peer::Actor(_) => false,
        };
        if refused(&self.peers[a], b) || refused(&self.peers[b], a) {
            return false;
        }
        self.links.insert(pair(a, b));
        let len = a.max(b) + 1;
        if self.adjacent.len() < len {
            self.adjacent.resize(len, BTreeSet::new());
        }
        self.adjacent[a].insert(b);
        self.adjacent[b].insert(a);
        self.record(&[b"connect", &(a as u64).to_le_bytes(), &(b as u64).to_le_bytes()]);
        for (me, other) in [(a, b), (b, a)] {
            match &mut self.peers[me] {
                Peer::Node(_) => {
                    let noban = self.kept.contains_key(&pair(a, b));
                    self.handle(me, Input::Net(NetEvent::Connected { peer: key(other), noban }))
                }
                Peer::Actor(actor) => {
                    let acts = actor.on_connect(other, now);
                    self.act(me, other, acts);
                }
            }
        }
        true
    }

    /// Closes the link between `a` and `b`; both sides hear of it.
    pub fn disconnect(&mut self, a: usize, b: usize) {
        if !self.links.remove(&pair(a, b)) {
            return;
        }
        self.adjacent[a].remove(&b);
        self.adjacent[b].remove(&a);
        self.record(&[b"disconnect", &(a as u64).to_le_bytes(), &(b as u64).to_le_bytes()]);
        for (me, other) in [(a, b), (b, a)] {
            if let Some(node) = self.node_mut(me) {
                node.outstanding.retain(|_, p| *p != other);
                node.limiter.forget(&other);
                if node.core.is_some() {
                    self.handle(me, Input::Net(NetEvent::Disconnected { peer: key(other) }));
                }
            }
        }
        if let Some(wait) = self.kept.get(&pair(a, b)).copied() {
            let at = self.now + wait;
            self.schedule(at, Ev::Redial { a, b });
        }
    }

    /// Whether `a` and `b` are connected.
    pub fn linked(&self, a: usize, b: usize) -> bool {
        self.links.contains(&pair(a, b))
    }

    /// The peers `index` is connected to.
    pub fn neighbours(&self, index: usize) -> Vec<usize> {
        self.adjacent.get(index).map(|s| s.iter().copied().collect()).unwrap_or_default()
    }

    /// Splits the network: every link between different groups is closed and refused
    /// until [`Sim::heal`]. `group_of(i)` names each peer's group.
    pub fn partition(&mut self, group_of: impl Fn(usize) -> usize) {
        let all: Vec<(usize, usize)> = self.links.iter().copied().collect();
        for (a, b) in all {
            if group_of(a) != group_of(b) {
                self.disconnect(a, b);
            }
        }
        for a in 0..self.peers.len() {
            for b in a + 1..self.peers.len() {
                if group_of(a) != group_of(b) {
                    self.cut.insert((a, b));
                }
            }
        }
        self.record(&[b"partition"]);
    }

    /// Keeps the link between `a` and `b`, as a node keeps its `--bootstrap` peers: it is
    /// connected now and dialled again whenever it drops (after a wait that doubles while
    /// dials fail). Both sides treat the other as an operator's peer (`noban`).
    pub fn keep(&mut self, a: usize, b: usize) {
        self.kept.insert(pair(a, b), REDIAL.0);
        self.connect(a, b);
    }

    /// Cuts the one link between `a` and `b` (a cable pulled): closed now, refused until
    /// [`Sim::mend`].
    pub fn sever(&mut self, a: usize, b: usize) {
        self.cut.insert(pair(a, b));
        self.disconnect(a, b);
    }

    /// Ends [`Sim::sever`]: the link may form again (a kept link is redialled).
    pub fn mend(&mut self, a: usize, b: usize) {
        self.cut.remove(&pair(a, b));
    }

    /// Freezes node `index` as SIGSTOP does: its links stay up, but it handles nothing
    /// (no ticks, no messages) until [`Sim::thaw`]; messages to it wait, in order.
    pub fn freeze(&mut self, index: usize) {
        self.frozen.insert(index);
        self.record(&[b"freeze", &(index as u64).to_le_bytes()]);
    }

    /// Resumes a frozen node: what reached it meanwhile is delivered now, in order.
    pub fn thaw(&mut self, index: usize) {
        if !self.frozen.remove(&index) {
            return;
        }
        self.record(&[b"thaw", &(index as u64).to_le_bytes()]);
        let (mine, rest): (Vec<_>, Vec<_>) =
            std::mem::take(&mut self.held).into_iter().partition(|(to, _, _)| *to == index);
        self.held = rest;
        let now = self.now;
        for (to, from, msg) in mine {
            self.schedule(now, Ev::Deliver { to, from, msg });
        }
    }

    /// Ends a partition: links may form again (kept links are redialled; the caller
    /// reconnects the others).
    pub fn heal(&mut self) {
        self.cut.clear();
        self.record(&[b"heal"]);
    }

    /// Switches mining on or off for node `index`.
    pub fn set_mining(&mut self, index: usize, on: bool) {
        if let Some(Some(m)) = self.node_mut(index).map(|n| n.miner.as_mut()) {
            m.on = on;
            m.epoch += 1;
        }
        if on {
            self.schedule_find(index);
        }
    }

    /// Makes miner `index` find a block at once (on its current template).
    pub fn mine_now(&mut self, index: usize) -> Option<BlockHash> {
        let block = self.solve(index)?;
        let hash = block.block_hash();
        self.blocks_seen.entry(hash.to_string()).or_default().0 = Some(self.now);
        self.handle(index, Input::Mined { block, hashrate: 0.0 });
        Some(hash)
    }

    /// Sends a command to node `index`; its answer goes to the command's `reply` as soon
    /// as the core gives it.
    pub fn command(&mut self, index: usize, command: Command) {
        self.handle(index, Input::Command(command));
    }

    // ----- the event loop ------------------------------------------------------------

    /// Runs events until the clock reaches `until`.
    pub fn run_until(&mut self, until: Time) {
        while let Some(Reverse((at, seq))) = self.queue.peek().copied() {
            if at > until {
                break;
            }
            self.queue.pop();
            let Some(ev) = self.events.remove(&seq) else { continue };
            self.now = at;
            self.dispatch(ev);
        }
        self.now = until;
    }

    /// Runs for `d` of virtual time.
    pub fn run_for(&mut self, d: Duration) {
        self.run_until(self.now + d);
    }

    /// Runs until `done` holds (checked every virtual second) or `limit` passes; returns
    /// whether it held.
    pub fn run_until_true(&mut self, limit: Duration, mut done: impl FnMut(&Sim) -> bool) -> bool {
        let deadline = self.now + limit;
        while self.now < deadline {
            if done(self) {
                return true;
            }
            self.run_for(Duration::from_secs(1));
        }
        done(self)
    }

    fn dispatch(&mut self, ev: Ev) {
        match ev {
            Ev::Deliver { to, .. } | Ev::Tick { node: to } if self.frozen.contains(&to) => match ev
            {
                Ev::Deliver { to, from, msg } => self.held.push((to, from, msg)),
                ev => {
                    let next = self.now + TICK;
                    self.schedule(next, ev);
                }
            },
            Ev::Deliver { to, from, msg } => self.deliver(to, from, msg),
            Ev::Forward { node, held } => {
                if self.node_mut(node).is_some_and(|n| n.core.is_some()) {
                    self.forward(node, held);
                }
            }
            Ev::Answer { node, to, msg } => {
                if self.node_mut(node).is_some_and(|n| n.core.is_some()) {
                    self.send(node, to, msg);
                }
            }
            Ev::Redial { a, b } => {
                let Some(wait) = self.kept.get(&pair(a, b)).copied() else { return };
                if self.linked(a, b) {
                    return;
                }
                if self.connect(a, b) {
                    self.kept.insert(pair(a, b), REDIAL.0);
                } else {
                    let wait = (wait * 2).min(REDIAL.1);
                    self.kept.insert(pair(a, b), wait);
                    let at = self.now + wait;
                    self.schedule(at, Ev::Redial { a, b });
                }
            }
            Ev::Timeout { node, peer, ask } => {
                let open =
                    self.node_mut(node).is_some_and(|n| n.outstanding.remove(&ask).is_some());
                if open {
                    self.record(&[b"timeout", &(node as u64).to_le_bytes(), &ask.to_le_bytes()]);
                    let failed =
                        NetEvent::RequestFailed { id: ask, peer: key(peer), timed_out: true };
                    self.handle(node, Input::Net(failed));
                }
            }
            Ev::Find { node, epoch } => {
                let current = self
                    .node_mut(node)
                    .and_then(|n| n.miner.as_ref())
                    .is_some_and(|m| m.epoch == epoch && m.on);
                if current {
                    self.mine_now(node);
                    self.schedule_find(node);
                }
            }
            Ev::Tick { node } => {
                if self.node_mut(node).is_some_and(|n| n.core.is_some()) {
                    self.handle(node, Input::Tick);
                    let next = self.now + TICK;
                    self.schedule(next, Ev::Tick { node });
                }
            }
        }
    }

    /// Schedules miner `index`'s next block: exponential with mean interval / share.
    fn schedule_find(&mut self, index: usize) {
        let interval = self.cfg.block_interval.as_secs_f64();
        let Some(Some((share, epoch, on))) =
            self.node_mut(index).map(|n| n.miner.as_ref().map(|m| (m.share, m.epoch, m.on)))
        else {
            return;
        };
        if !on || share <= 0.0 {
            return;
        }
        let wait = self.rng.exponential(interval / share);
        let at = self.now + Duration::from_secs_f64(wait);
        self.schedule(at, Ev::Find { node: index, epoch });
    }

    /// Solves miner `index`'s template (regtest: a few hashes).
    fn solve(&mut self, index: usize) -> Option<Block> {
        let node = self.node_mut(index)?;
        let template = node.miner.as_mut()?.template.take()?;
        let mut block = template.block;
        crate::testkit::solve(&mut block.header);
        Some(block)
    }

    /// Sends `msg` from `from` to `to` over their link, after its latency, unless lost.
    fn send(&mut self, from: usize, to: usize, msg: Msg) {
        if !self.linked(from, to) {
            return;
        }
        if self.cfg.loss > 0.0 && self.rng.chance(self.cfg.loss) {
            return;
        }
        let latency = if self.cfg.fixed_latency {
            let (lo, hi) = self.cfg.latency_ms;
            let rng = &mut self.rng;
            self.wire
                .link_latency(pair(from, to), || Duration::from_millis(lo + rng.below(hi - lo + 1)))
        } else {
            self.latency()
        };
        let size = wire::size(&msg);
        self.wire.count(wire::class(&msg), size);
        let at = self.wire.arrival(from, to, size, self.now, latency, self.cfg.bandwidth);
        self.schedule(at, Ev::Deliver { to, from, msg });
    }

    fn deliver(&mut self, to: usize, from: usize, msg: Msg) {
        if !self.linked(from, to) {
            return;
        }
        self.delivered += 1;
        match &msg {
            Msg::Gossip(kind, data, digest) => {
                let count = self.gossiped.entry(kind.label()).or_default();
                *count = (count.0 + 1, count.1 + data.len() as u64);
                self.record(&[b"gossip", &[*kind as u8], digest]);
            }
            Msg::IDontWant(digest) => self.record(&[b"idontwant", digest]),
            Msg::Request { ask, req } => {
                self.record(&[b"request", &ask.to_le_bytes(), format!("{req}").as_bytes()]);
            }
            Msg::Response { ask, .. } => {
                let class = wire::class(&msg);
                self.record(&[b"response", &ask.to_le_bytes(), class.as_bytes()]);
            }
            Msg::Garbage => self.record(&[b"garbage"]),
        }
        let now = self.now;
        match &mut self.peers[to] {
            Peer::Actor(actor) => {
                let acts = match msg {
                    Msg::Request { ask, req } => match actor.on_request(from, &req, now) {
                        Some(resp) => vec![ActorAct::Respond { ask, resp }],
                        None => Vec::new(),
                    },
                    _ => Vec::new(),
                };
                self.act(to, from, acts);
            }
            Peer::Node(node) => {
                if node.core.is_none() {
                    return;
                }
                let input = match msg {
                    Msg::IDontWant(digest) => {
                        node.dont_want.insert((from, digest));
                        return;
                    }
                    Msg::Gossip(kind, data, digest) => {
                        if !node.first_sight(digest, now) {
                            // A copy: its sender has it, and is not sent it back.
                            if let Some(held) =
                                node.gossip.values_mut().find(|h| h.digest == digest)
                                && !held.from.contains(&from)
                            {
                                held.from.push(from);
                            }
                            if data.len() >= wire::IDONTWANT_THRESHOLD {
                                node.dont_want.insert((from, digest));
                            }
                            return;
                        }
                        node.next_id += 1;
                        let id = node.next_id;
                        let payload = Vec::clone(&data);
                        node.gossip.insert(id, Held { kind, data, digest, from: vec![from] });
                        if self.cfg.idontwant && payload.len() >= wire::IDONTWANT_THRESHOLD {
                            for peer in self.neighbours(to).into_iter().filter(|p| *p != from) {
                                self.send(to, peer, Msg::IDontWant(digest));
                            }
                        }
                        NetEvent::Gossip { id, peer: key(from), kind, data: payload }
                    }
                    Msg::Request { ask, req } => {
                        if !node.limiter.allow(from, now) {
                            let offence = Offence::RequestFlood;
                            self.handle(
                                to,
                                Input::Net(NetEvent::Misbehaved { peer: key(from), offence }),
                            );
                            return;
                        }
                        node.next_id += 1;
                        let id = node.next_id;
                        node.inbound.insert(id, (from, ask));
                        NetEvent::Request { id, peer: key(from), req }
                    }
                    Msg::Response { ask, resp } => {
                        if node.outstanding.remove(&ask).is_none() {
                            return; // timed out already
                        }
                        NetEvent::Response { id: ask, peer: key(from), resp }
                    }
                    Msg::Garbage => {
                        let error =
                            FrameError::Undecodable(crate::protocol::DecodeFailure::TrailingBytes);
                        NetEvent::BadFrame { peer: key(from), error }
                    }
                };
                self.handle(to, Input::Net(input));
            }
        }
    }

    /// Carries out what actor `actor` does towards `peer`.
    fn act(&mut self, actor: usize, peer: usize, acts: Vec<ActorAct>) {
        for act in acts {
            match act {
                ActorAct::Respond { ask, resp } => {
                    self.send(actor, peer, Msg::Response { ask, resp })
                }
                ActorAct::Gossip(kind, data) => {
                    let digest = Sha256::digest(&data).into();
                    self.send(actor, peer, Msg::Gossip(kind, std::sync::Arc::new(data), digest))
                }
                ActorAct::Garbage => self.send(actor, peer, Msg::Garbage),
                ActorAct::Request(req) => {
                    self.seq += 1;
                    let ask = self.seq;
                    self.send(actor, peer, Msg::Request { ask, req });
                }
            }
        }
    }

    /// Feeds `input` to node `index`'s core and carries out its outputs.
    fn handle(&mut self, index: usize, input: Input) {
        let now = self.now;
        let outputs = match self.node_mut(index).and_then(|n| n.core.as_mut()) {
            Some(core) => core.handle(input, now),
            None => return,
        };
        for output in outputs {
            self.carry(index, output);
        }
    }

    fn carry(&mut self, index: usize, output: Output) {
        match output {
            Output::Net(action) => self.net_action(index, action),
            Output::Event(NodeEvent::Block { hash, txs, .. }) => {
                let now = self.now;
                let per_tx = self.cfg.validation_per_tx;
                if !per_tx.is_zero()
                    && let Some(node) = self.node_mut(index)
                {
                    let time = per_tx * u32::try_from(txs).unwrap_or(u32::MAX);
                    node.validated.insert(hash.clone(), now + time);
                }
                self.blocks_seen.entry(hash).or_default().1.push((index, now));
            }
            Output::Event(_) => {}
            Output::Mine(template) => {
                if let Some(Some(m)) = self.node_mut(index).map(|n| n.miner.as_mut()) {
                    m.template = template;
                }
            }
            Output::Solve(template) => {
                let mut block = template.block;
                crate::testkit::solve(&mut block.header);
                self.handle(index, Input::Solved(Some(block)));
            }
            Output::Reply(reply) => reply.deliver(),
        }
    }

    fn net_action(&mut self, index: usize, action: NetAction) {
        match action {
            NetAction::Publish { kind, data } => {
                let now = self.now;
                let digest: MsgId = Sha256::digest(&data).into();
                let Some(node) = self.node_mut(index) else { return };
                if !node.first_sight(digest, now) {
                    return; // gossipsub refuses to publish a duplicate
                }
                let big = self.cfg.idontwant && data.len() >= wire::IDONTWANT_THRESHOLD;
                let data = std::sync::Arc::new(data);
                for peer in self.gossip_targets(index, kind, digest) {
                    // Told first, so that it does not send the message back.
                    if big {
                        self.send(index, peer, Msg::IDontWant(digest));
                    }
                    self.send(index, peer, Msg::Gossip(kind, data.clone(), digest));
                }
            }
            NetAction::Request(ask) => {
                let peer = peer_of(ask.peer);
                if !self.linked(index, peer) {
                    let failed =
                        NetEvent::RequestFailed { id: ask.id, peer: ask.peer, timed_out: false };
                    self.handle(index, Input::Net(failed));
                    return;
                }
                if let Some(node) = self.node_mut(index) {
                    node.outstanding.insert(ask.id, peer);
                }
                let at = self.now + REQUEST_TIMEOUT;
                self.schedule(at, Ev::Timeout { node: index, peer, ask: ask.id });
                self.send(index, peer, Msg::Request { ask: ask.id, req: ask.req });
            }
            NetAction::Respond { id, resp } => {
                let now = self.now;
                let Some(node) = self.node_mut(index) else { return };
                let Some((asker, ask)) = node.inbound.remove(&id) else { return };
                node.limiter.answered(&asker);
                // A compact form goes out once the node is done validating its block.
                let ready = match &resp {
                    SyncResponse::CompactBlock(data) if !node.validated.is_empty() => {
                        crate::primitives::encode::deserialize::<crate::compact::CompactBlock>(data)
                            .ok()
                            .and_then(|c| node.validated.get(&c.block_hash().to_string()).copied())
                            .filter(|at| *at > now)
                    }
                    _ => None,
                };
                let msg = Msg::Response { ask, resp };
                match ready {
                    Some(at) => self.schedule(at, Ev::Answer { node: index, to: asker, msg }),
                    None => self.send(index, asker, msg),
                }
            }
            NetAction::Validate { id, verdict } => {
                let Some(held) = self.node_mut(index).and_then(|n| n.gossip.remove(&id)) else {
                    return;
                };
                if verdict == Verdict::Accept {
                    let delay = self.validation_time(&held);
                    if delay.is_zero() {
                        self.forward(index, held);
                    } else {
                        let at = self.now + delay;
                        self.schedule(at, Ev::Forward { node: index, held });
                    }
                }
            }
            NetAction::Ban { peer, offence } => {
                let peer = peer_of(peer);
                let until = self.now + self.cfg.ban;
                self.record(&[b"ban", &(index as u64).to_le_bytes(), &(peer as u64).to_le_bytes()]);
                self.bans.push(BanRecord { at: self.now, by: index, peer, offence });
                if let Some(node) = self.node_mut(index) {
                    node.banned.insert(peer, until);
                }
                self.disconnect(index, peer);
            }
            NetAction::Disconnect { peer, reason } => {
                let peer = peer_of(peer);
                self.record(&[
                    b"drop",
                    &(index as u64).to_le_bytes(),
                    &(peer as u64).to_le_bytes(),
                ]);
                self.disconnects.push((self.now, index, peer, reason));
                self.disconnect(index, peer);
            }
        }
    }

    // ----- checks ----------------------------------------------------------------------

    /// Every coin in node `index`'s UTXO set.
    pub fn utxo_set(&self, index: usize) -> BTreeMap<OutPoint, Coin> {
        let mut set = BTreeMap::new();
        self.node(index)
            .store
            .for_each_coin(&mut |op, coin| {
                set.insert(op, coin);
            })
            .expect("a simulated store reads");
        set
    }

    /// The blocks of node `index`'s active chain, genesis excluded.
    pub fn active_chain(&self, index: usize) -> Vec<Block> {
        let core = self.node(index).core().expect("node is up");
        let chain = core.chain();
        (1..=chain.height())
            .filter_map(|h| chain.hash_at(h))
            .map(|h| chain.block(&h).ok().flatten().expect("active blocks are stored"))
            .collect()
    }
}
