//! The driver: the thread that owns the [`Core`], feeds it inputs with the time, and
//! carries its outputs out (network actions, events, miner jobs, replies). It decides
//! nothing itself.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::sync::{broadcast, mpsc, oneshot};
use tracing::{info, warn};

use super::miner::Miners;
use crate::core::{
    Command, Core, Input, NetEvent, NodeEvent, Output, Reply, ReplyId, Snapshot, TICK,
};
use crate::net::NetCommand;
use crate::primitives::{Block, Time};

/// How often the hash rate is recomputed.
const RATE_WINDOW: Duration = Duration::from_secs(2);
/// How often a mining node says its hash rate, difficulty and expected time to a block.
const MINING_REPORT: Duration = Duration::from_secs(30);

/// What reaches the driver thread.
#[derive(Debug)]
pub enum DriverInput {
    /// An input for the core as it is.
    Core(Input),
    /// A command whose reply goes to `reply`.
    Ask(Command, oneshot::Sender<Reply>),
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
    replies: HashMap<ReplyId, oneshot::Sender<Reply>>,
    next_reply: ReplyId,
    clock: Clock,
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
    ) -> Self {
        Self {
            core,
            commands,
            events,
            shared,
            miners,
            hashes,
            rate: (Instant::now(), 0, 0.0),
            reported: Instant::now(),
            replies: HashMap::new(),
            next_reply: 0,
            clock: Clock::new(),
        }
    }

    /// Runs until [`Input::Shutdown`] or until every sender is gone: one input at a time,
    /// a tick when idle, outputs carried out in order.
    pub fn run(mut self, inputs: Receiver<DriverInput>) {
        let mut last_tick = Instant::now();
        loop {
            let input = match inputs.recv_timeout(TICK) {
                Ok(input) => self.core_input(input),
                Err(RecvTimeoutError::Timeout) => Input::Tick,
                Err(RecvTimeoutError::Disconnected) => break,
            };
            let stop = matches!(input, Input::Shutdown);
            let mut outputs = self.core.handle(input, self.clock.now());
            if last_tick.elapsed() >= TICK {
                last_tick = Instant::now();
                outputs.extend(self.core.handle(Input::Tick, self.clock.now()));
                self.update_rate();
            }
            // Readers see the effect of a command before its reply arrives.
            self.publish();
            if !self.carry(outputs) || stop {
                break;
            }
        }
        let chain = self.core.chain();
        info!(height = chain.height(), tip = %chain.tip(), "node core stopped, database closed");
    }

    fn core_input(&mut self, input: DriverInput) -> Input {
        match input {
            DriverInput::Core(input) => input,
            DriverInput::Ask(command, reply) => {
                self.next_reply += 1;
                self.replies.insert(self.next_reply, reply);
                Input::Command(self.next_reply, command)
            }
            DriverInput::Found(block) => Input::Mined { block, hashrate: self.rate.2 },
            DriverInput::Solved(block) => Input::Solved(block),
        }
    }

    fn update_rate(&mut self) {
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
            let hashes_per_block = f64::from(crate::consensus::pow::work_from_bits(bits));
            let rate = self.rate.2;
            let expected_secs = if rate > 0.0 { hashes_per_block / rate } else { f64::INFINITY };
            info!(
                hashrate = rate,
                difficulty = hashes_per_block,
                expected_secs,
                "mining at {}, difficulty {:.3e} hashes per block: a block every {expected_secs:.1} s expected at this rate",
                human_rate(rate),
                hashes_per_block,
            );
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
                Output::Reply(id, reply) => {
                    if let Some(tx) = self.replies.remove(&id) {
                        // The asker may have given up; nothing to do then.
                        let _ = tx.send(reply);
                    }
                }
            }
        }
        true
    }
}

/// A hash rate with its unit: `812 H/s`, `25.10 MH/s`.
fn human_rate(rate: f64) -> String {
    const UNITS: [&str; 5] = ["H/s", "kH/s", "MH/s", "GH/s", "TH/s"];
    let mut value = rate;
    let mut unit = 0;
    while value >= 1000.0 && unit < UNITS.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{value:.0} {}", UNITS[0])
    } else {
        format!("{value:.2} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn hash_rates_read_with_their_unit() {
        assert_eq!(super::human_rate(812.4), "812 H/s");
        assert_eq!(super::human_rate(25_104_000.0), "25.10 MH/s");
        assert_eq!(super::human_rate(1.5e12), "1.50 TH/s");
    }
}
