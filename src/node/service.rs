//! The driver: the thread that owns the [`Core`], feeds it inputs with the time, and
//! carries its outputs out (network actions, events, miner jobs, replies). It decides
//! nothing itself.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::sync::{broadcast, mpsc};
use tracing::{info, warn};

use super::metrics::{GossipLabels, NodeMetrics, OffenceLabels};
use super::miner::Miners;

mod saved;
use crate::core::NetAction;
use crate::core::{Core, Input, NetEvent, NodeEvent, Output, Snapshot, TICK};
use crate::net::NetCommand;
use crate::primitives::{Block, Time};
use crate::protocol::{GossipKind, SyncResponse};

/// How often the hash rate is recomputed.
const RATE_WINDOW: Duration = Duration::from_secs(2);
/// How often a mining node says its hash rate, difficulty and expected time to a block.
const MINING_REPORT: Duration = Duration::from_secs(30);

/// What reaches the driver thread.
#[derive(Debug)]
pub enum DriverInput {
    /// An input for the core as it is (commands carry where their answer goes).
    Core(Input),
    /// The miner threads found a block.
    Found(Block),
    /// The on-demand solver finished (or gave up on) a template.
    Solved(Option<Block>),
}

impl From<NetEvent> for DriverInput {
    fn from(e: NetEvent) -> Self {
        DriverInput::Core(Input::Net(e))
    }
}

/// What the driver publishes after every input for readers (the API, tests).
#[derive(Debug, Clone, Default)]
pub struct Shared {
    /// The core's facts.
    pub snapshot: Snapshot,
    /// Mining nonces per second over the last few seconds (0 when not mining).
    pub hashrate: f64,
}

impl From<Snapshot> for Shared {
    fn from(snapshot: Snapshot) -> Self {
        Self { snapshot, hashrate: 0.0 }
    }
}

/// The node's clock as the core sees it: wall time at start, advanced by a monotonic
/// clock, so it never runs backwards when the system clock is adjusted.
struct Clock {
    start: Instant,
    start_ms: u64,
}

impl Clock {
    fn new() -> Self {
        let start_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        Self { start: Instant::now(), start_ms }
    }

    fn now(&self) -> Time {
        Time::from_millis(self.start_ms) + self.start.elapsed()
    }
}

/// The driver's state.
pub struct Driver {
    core: Core,
    commands: mpsc::Sender<NetCommand>,
    events: broadcast::Sender<NodeEvent>,
    shared: Arc<RwLock<Shared>>,
    miners: Miners,
    hashes: Arc<AtomicU64>,
    /// When the rate was last computed, the hash count then, and the rate.
    rate: (Instant, u64, f64),
    /// When the mining report was last logged.
    reported: Instant,
    clock: Clock,
    metrics: NodeMetrics,
    /// When the sync rate was last computed, and the height then.
    synced: (Instant, u32),
    /// What to switch to if the snapshot the node started from is rejected.
    fallback: Option<super::snapshot::Fallback>,
    /// Gossip messages whose verdict comes with a later input (a header held until its
    /// parent's comes): their topic, for the metrics.
    awaiting: std::collections::HashMap<u64, GossipKind>,
    /// Where the mempool and fee statistics are saved at shutdown and loaded at start.
    saved_dir: Option<std::path::PathBuf>,
}

impl Driver {
    /// A driver for `core`.
    pub fn new(
        core: Core,
        commands: mpsc::Sender<NetCommand>,
        events: broadcast::Sender<NodeEvent>,
        shared: Arc<RwLock<Shared>>,
        miners: Miners,
        hashes: Arc<AtomicU64>,
        metrics: NodeMetrics,
    ) -> Self {
        let height = core.chain().height();
        Self {
            core,
            commands,
            events,
            shared,
            miners,
            hashes,
            rate: (Instant::now(), 0, 0.0),
            reported: Instant::now(),
            clock: Clock::new(),
            metrics,
            synced: (Instant::now(), height),
            fallback: None,
            awaiting: std::collections::HashMap::new(),
            saved_dir: None,
        }
    }

    /// Keeps the mempool and the fee statistics in `data_dir` across restarts (loaded
    /// when the driver starts, saved when it stops; [`saved`]).
    pub(super) fn with_saved_state(mut self, data_dir: std::path::PathBuf) -> Self {
        self.saved_dir = Some(data_dir);
        self
    }

    /// What to switch to if the snapshot the node started from is rejected.
    pub(super) fn with_fallback(mut self, fallback: Option<super::snapshot::Fallback>) -> Self {
        self.fallback = fallback;
        self
    }

    /// Runs until [`Input::Shutdown`] or until every sender is gone: one input at a time,
    /// a tick when idle, outputs carried out in order.
    pub fn run(mut self, inputs: Receiver<DriverInput>) {
        let mut last_tick = Instant::now();
        // A tick at once: what ticks start (the miner's first job above all) need not wait
        // a whole TICK after start-up.
        let mut first = Some(Input::Tick);
        self.load_saved();
        loop {
            let input = match first.take() {
                Some(tick) => tick,
                None => match inputs.recv_timeout(TICK) {
                    Ok(input) => self.core_input(input),
                    Err(RecvTimeoutError::Timeout) => Input::Tick,
                    Err(RecvTimeoutError::Disconnected) => break,
                },
            };
            let stop = matches!(input, Input::Shutdown);
            let seen = Seen::of(&input);
            let started = Instant::now();
            let mut outputs = self.core.handle(input, self.clock.now());
            self.count(&seen, started.elapsed(), &outputs);
            if last_tick.elapsed() >= TICK {
                last_tick = Instant::now();
                outputs.extend(self.core.handle(Input::Tick, self.clock.now()));
                self.update_rate();
            }
            // Readers see the effect of a command before its reply arrives, and a rejected
            // snapshot's fallback (the store they read) with the status that tells of it.
            let rejected = outputs
                .iter()
                .any(|o| matches!(o, Output::Event(NodeEvent::SnapshotRejected { .. })));
            if rejected && let Some(fallback) = self.fallback.take() {
                fallback.apply();
            }
            self.publish();
            if !self.carry(outputs) || stop {
                break;
            }
        }
        self.save_state();
        let chain = self.core.chain();
        info!(height = chain.height(), tip = %chain.tip(), "node core stopped, database closed");
    }

    fn core_input(&self, input: DriverInput) -> Input {
        match input {
            DriverInput::Core(input) => input,
            DriverInput::Found(block) => Input::Mined { block, hashrate: self.rate.2 },
            DriverInput::Solved(block) => Input::Solved(block),
        }
    }

    /// Counts what an input carried and what came out of it (metrics).
    fn count(&mut self, seen: &Seen, took: Duration, outputs: &[Output]) {
        // Clones share the values.
        let m = self.metrics.clone();
        if seen.blocks > 0 {
            let per_block = took.as_secs_f64() / f64::from(seen.blocks);
            for _ in 0..seen.blocks {
                m.block_validation_seconds.observe(per_block);
            }
        }
        for output in outputs {
            match output {
                Output::Event(NodeEvent::Block { .. }) => drop(m.blocks_connected.inc()),
                Output::Event(NodeEvent::Reorg { .. }) => drop(m.reorgs.inc()),
                Output::Net(NetAction::Ban { offence, .. }) => {
                    let offence = offence.label().to_owned();
                    m.bans.get_or_create(&OffenceLabels { offence }).inc();
                }
                Output::Net(NetAction::Validate { id, verdict }) => {
                    let kind = match seen.gossip {
                        Some((gossip, kind)) if gossip == *id => Some(kind),
                        _ => self.awaiting.remove(id),
                    };
                    if let Some(kind) = kind {
                        let labels = GossipLabels {
                            topic: kind.label().to_owned(),
                            verdict: verdict.label().to_owned(),
                        };
                        m.gossip_messages.get_or_create(&labels).inc();
                    }
                }
                Output::Net(NetAction::Publish { kind: GossipKind::Block, .. }) if seen.mined => {
                    m.blocks_mined.inc();
                }
                _ => {}
            }
        }
        // Its verdict comes later: remember the topic until then.
        if let Some((id, kind)) = seen.gossip {
            let judged = outputs
                .iter()
                .any(|o| matches!(o, Output::Net(NetAction::Validate { id: v, .. }) if *v == id));
            if !judged {
                self.awaiting.insert(id, kind);
            }
        }
    }

    fn update_rate(&mut self) {
        let snapshot = self.core.snapshot();
        let (since, from) = self.synced;
        if since.elapsed() >= RATE_WINDOW {
            let rate = if snapshot.syncing {
                f64::from(snapshot.height.saturating_sub(from)) / since.elapsed().as_secs_f64()
            } else {
                0.0
            };
            self.metrics.sync_blocks_per_second.set(rate);
            self.synced = (Instant::now(), snapshot.height);
        }
        let elapsed = self.rate.0.elapsed();
        if elapsed >= RATE_WINDOW {
            let total = self.hashes.load(Ordering::Relaxed);
            let rate = total.saturating_sub(self.rate.1) as f64 / elapsed.as_secs_f64();
            self.rate = (Instant::now(), total, rate);
        }
        if self.reported.elapsed() >= MINING_REPORT
            && let Some(bits) = self.miners.job_bits()
        {
            self.reported = Instant::now();
            let difficulty = crate::consensus::pow::difficulty(bits);
            let (rate, height, peers) = (self.rate.2, snapshot.height + 1, snapshot.peers);
            let (expected_secs, line) = mining_line(height, rate, difficulty, peers);
            info!(hashrate = rate, difficulty, expected_secs, height, peers, "{line}");
        }
    }

    fn publish(&self) {
        if let Ok(mut shared) = self.shared.write() {
            shared.snapshot = self.core.snapshot();
            shared.hashrate = self.rate.2;
        }
    }

    /// Carries out `outputs`; false once the network task is gone.
    fn carry(&mut self, outputs: Vec<Output>) -> bool {
        for output in outputs {
            match output {
                Output::Net(action) => {
                    if self.commands.blocking_send(NetCommand::Core(action)).is_err() {
                        return false;
                    }
                }
                // No subscribers is fine.
                Output::Event(event) => drop(self.events.send(event)),
                Output::Mine(job) => self.miners.set_job(job),
                Output::Solve(template) => {
                    if !self.miners.solve(template) {
                        warn!("no solver for an on-demand block");
                        let now = self.clock.now();
                        let more = self.core.handle(Input::Solved(None), now);
                        if !self.carry(more) {
                            return false;
                        }
                    }
                }
                Output::Reply(reply) => reply.deliver(),
            }
        }
        true
    }
}

/// What an input carries that the metrics count.
struct Seen {
    /// Blocks in it.
    blocks: u32,
    /// The topic, if it is a gossip message.
    gossip: Option<(u64, GossipKind)>,
    /// Whether it is a block this node mined.
    mined: bool,
}

impl Seen {
    fn of(input: &Input) -> Self {
        let (blocks, gossip, mined) = match input {
            Input::Net(NetEvent::Gossip { id, kind, .. }) => {
                (u32::from(*kind == GossipKind::Block), Some((*id, *kind)), false)
            }
            Input::Net(NetEvent::Response { resp: SyncResponse::Blocks(blocks), .. }) => {
                (u32::try_from(blocks.len()).unwrap_or(u32::MAX), None, false)
            }
            // A compact block, or its missing transactions: the block is taken now.
            Input::Net(NetEvent::Response {
                resp: SyncResponse::BlockTxs(_) | SyncResponse::CompactBlock(_),
                ..
            }) => (1, None, false),
            Input::Mined { .. } | Input::Solved(Some(_)) => (1, None, true),
            _ => (0, None, false),
        };
        Self { blocks, gossip, mined }
    }
}

/// The mining line logged every [`MINING_REPORT`]: the block being mined, the hash rate
/// with its unit, the difficulty, the expected time to a block at this rate (seconds,
/// unknown before the rate is measured) and the peers that would receive it.
fn mining_line(height: u32, rate: f64, difficulty: f64, peers: usize) -> (Option<u64>, String) {
    let expected_secs = (rate > 0.0).then(|| (difficulty / rate).round() as u64);
    let expected = expected_secs.map_or_else(|| "unknown".to_owned(), crate::human::duration);
    let line = format!(
        "mining block {height} at {}, difficulty {} hashes per block, a block every {expected} expected; {peers} {}",
        crate::human::rate(rate),
        crate::human::count(difficulty),
        if peers == 1 { "peer" } else { "peers" },
    );
    (expected_secs, line)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_mining_line_says_rate_difficulty_time_to_a_block_height_and_peers() {
        let (secs, line) = super::mining_line(1205, 2_420_000.0, 12_100_000.0, 3);
        assert_eq!(secs, Some(5));
        assert_eq!(
            line,
            "mining block 1205 at 2.42 MH/s, difficulty 1.21e7 hashes per block, a block every 5 s expected; 3 peers"
        );
        let (secs, line) = super::mining_line(1, 0.0, 2.0, 1);
        assert_eq!(secs, None);
        assert!(line.ends_with("a block every unknown expected; 1 peer"), "{line}");
    }
}
