//! Mining decisions: when the miner threads get a new template, when they stop, and blocks
//! mined on demand (regtest's `POST /mine`), one template at a time. The nonce search
//! itself runs on the driver's threads, never here.

use std::collections::VecDeque;
use std::time::Duration;

use super::{Ledger, MiningConfig, Output, ReplyTo};
use crate::consensus::Network;
use crate::miner::build_template;
use crate::primitives::{BlockHash, Time};

/// How often the miner's template is rebuilt to pick up new transactions.
pub const TEMPLATE_REFRESH: Duration = Duration::from_secs(10);

/// Why blocks could not be mined on demand.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MineError {
    /// Only regtest mines on demand.
    #[error("mining on demand is only available on regtest")]
    NotRegtest,
    /// The next block's time would run too far ahead of the clock.
    #[error(
        "mined {mined} blocks, then stopped: block times must stay after the median of the \
         last 11 and would now run more than {max_future} s ahead of the clock; wait and retry"
    )]
    AheadOfClock {
        /// Blocks mined before stopping.
        mined: usize,
        /// The allowed drift, seconds.
        max_future: u32,
    },
    /// A mined block did not become the tip.
    #[error("mined block {0} was not accepted")]
    NotAccepted(BlockHash),
    /// The nonce search was abandoned (shutdown).
    #[error("nonce search was cancelled")]
    Cancelled,
}

/// Where the answer to a `POST /mine` goes.
type MineReply = ReplyTo<Result<Vec<BlockHash>, MineError>>;

/// One `POST /mine` being served.
#[derive(Debug)]
struct OnDemand {
    reply: MineReply,
    remaining: u32,
    payout: [u8; 32],
    mined: Vec<BlockHash>,
}

/// Miner job and on-demand state.
#[derive(Debug)]
pub struct Mining {
    config: MiningConfig,
    /// The current job's parent and when it was made.
    job: Option<(BlockHash, Time)>,
    queue: VecDeque<OnDemand>,
    solving: bool,
}

impl Mining {
    /// Mining with `config`.
    pub fn new(config: MiningConfig) -> Self {
        Self { config, job: None, queue: VecDeque::new(), solving: false }
    }

    /// Stops the miner threads for good.
    pub fn stop(&mut self, out: &mut Vec<Output>) {
        if self.job.take().is_some() {
            out.push(Output::Mine(None));
        }
        self.config.enabled = false;
    }

    /// Hands the miner a new template when the tip moved or the old one is stale. While
    /// catching up, or while blocks are mined on demand, the miner waits: blocks on an
    /// old tip would be wasted work.
    pub fn update(&mut self, ledger: &Ledger, syncing: bool, now: Time, out: &mut Vec<Output>) {
        if !self.config.enabled {
            return;
        }
        if syncing || self.solving {
            if self.job.take().is_some() {
                out.push(Output::Mine(None));
            }
            return;
        }
        let tip = ledger.chain().tip();
        let stale = self
            .job
            .is_none_or(|(parent, made)| parent != tip || now.since(made) >= TEMPLATE_REFRESH);
        if !stale {
            return;
        }
        let chain = ledger.chain();
        let template = build_template(chain, ledger.mempool(), self.config.payout, now.unix_secs());
        self.job = Some((tip, now));
        out.push(Output::Mine(Some(Box::new(template))));
    }

    /// A `POST /mine` for `blocks` blocks paying `to` (default: our payout key).
    pub fn on_demand(
        &mut self,
        reply: MineReply,
        blocks: u32,
        to: Option<[u8; 32]>,
        ledger: &Ledger,
        now: Time,
        out: &mut Vec<Output>,
    ) {
        if ledger.chain().params().network != Network::Regtest {
            out.push(Output::Reply(reply.with(Err(MineError::NotRegtest))));
            return;
        }
        let payout = to.unwrap_or(self.config.payout);
        self.queue.push_back(OnDemand { reply, remaining: blocks, payout, mined: Vec::new() });
        self.next(ledger, now, out);
    }

    /// The on-demand template came back solved (the block's hash once it is the tip) or
    /// not; the next one is started.
    pub fn solved(
        &mut self,
        result: Result<BlockHash, MineError>,
        ledger: &Ledger,
        now: Time,
        out: &mut Vec<Output>,
    ) {
        self.solving = false;
        match (result, self.queue.front_mut()) {
            (Ok(hash), Some(job)) => {
                job.mined.push(hash);
                job.remaining = job.remaining.saturating_sub(1);
            }
            (Err(e), Some(_)) => {
                if let Some(job) = self.queue.pop_front() {
                    out.push(Output::Reply(job.reply.with(Err(e))));
                }
            }
            (_, None) => {}
        }
        self.next(ledger, now, out);
    }

    /// Starts the next on-demand template, replying to requests that are done.
    fn next(&mut self, ledger: &Ledger, now: Time, out: &mut Vec<Output>) {
        if self.solving {
            return;
        }
        while let Some(job) = self.queue.front() {
            if job.remaining == 0 {
                if let Some(job) = self.queue.pop_front() {
                    out.push(Output::Reply(job.reply.with(Ok(job.mined))));
                }
                continue;
            }
            let chain = ledger.chain();
            let template = build_template(chain, ledger.mempool(), job.payout, now.unix_secs());
            let max_future = chain.params().max_future_block_time;
            if u64::from(template.block.header.time) > now.unix_secs() + u64::from(max_future) {
                if let Some(job) = self.queue.pop_front() {
                    let e = MineError::AheadOfClock { mined: job.mined.len(), max_future };
                    out.push(Output::Reply(job.reply.with(Err(e))));
                }
                continue;
            }
            if self.job.take().is_some() {
                out.push(Output::Mine(None));
            }
            self.solving = true;
            out.push(Output::Solve(Box::new(template)));
            return;
        }
    }
}
