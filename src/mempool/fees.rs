//! Fee estimation, in the spirit of Bitcoin Core's `estimatesmartfee`: the fee rate a
//! transaction needs to confirm within 1, 3 or 6 blocks. Three sources; the highest wins.
//!
//! - **What confirmed.** Each transaction of the mempool that a block confirms is a sample:
//!   its fee rate and the blocks it waited (from the tip it entered at to the block that
//!   took it). Samples are counted in fee rate buckets, each 20% above the last, and decay
//!   by 0.998 a block (a half-life of about 350 blocks). For a target of `t` blocks the
//!   buckets are walked from the highest rate down, gathered into ranges of at least
//!   [`ENOUGH`] samples; a range passes when 85% of its transactions confirmed within `t`
//!   blocks, counting as failures those still in the mempool that have waited `t` blocks
//!   already. The estimate is the average rate of the lowest range passing before the
//!   first one that fails.
//! - **Room.** When none of the last 6 blocks was nearly full (90% of the size or input
//!   limit), miners took everything that paid the relay minimum: the minimum is enough.
//! - **The backlog.** Miners take the highest rates first, so to be in the next `t` blocks a
//!   transaction must outbid the mempool transaction `t` blocks' worth of bytes deep.
//!
//! Everything here is decided from what the caller hands in: no clock, no I/O.

use std::collections::VecDeque;

use super::Entry;
use crate::consensus::Params;
use crate::primitives::Block;
use crate::primitives::encode::{DecodeError, Reader};

/// The confirmation targets estimated, in blocks.
pub const TARGETS: [u32; 3] = [1, 3, 6];

/// The largest target, and the blocks whose fullness decides the "room" rule.
const MAX_TARGET: usize = 6;
/// Fee rate buckets, each [`BUCKET_STEP`] times the last, from the relay minimum.
const BUCKETS: usize = 64;
const BUCKET_STEP: f64 = 1.2;
/// Per-block decay of every sample's weight.
const DECAY: f64 = 0.998;
/// The share of a range's transactions that must confirm in time.
const SUCCESS: f64 = 0.85;
/// The least (decayed) number of transactions a range is judged on.
pub const ENOUGH: f64 = 4.0;
/// A block this full (of its size or input limit) had no room to spare.
const FULL: f64 = 0.9;

/// Whether `block` is within 10% of its size or input limit: a block with room to spare
/// took every transaction that paid the relay minimum.
pub fn is_full(block: &Block, params: &Params) -> bool {
    let inputs: usize = block.txs.iter().map(|t| t.inputs.len()).sum();
    block.size() as f64 >= FULL * params.max_block_size as f64
        || inputs as f64 >= FULL * params.max_block_inputs as f64
}

/// Where an estimate comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Basis {
    /// How long transactions at each fee rate took to confirm in recent blocks.
    Blocks,
    /// Recent blocks had room: the relay minimum was enough.
    Room,
    /// The mempool's backlog, or the relay minimum when nothing else is known yet.
    Mempool,
}

impl Basis {
    /// Lower-case name (the API's `basis`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Blocks => "blocks",
            Self::Room => "room",
            Self::Mempool => "mempool",
        }
    }
}

/// The fee rate to confirm within `target` blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeeEstimate {
    /// Blocks.
    pub target: u32,
    /// Base units per 1,000 bytes.
    pub fee_rate: u64,
    /// How it was made.
    pub basis: Basis,
}

/// Confirmation statistics by fee rate (kept by the mempool, fed as blocks connect).
#[derive(Debug, Clone)]
pub struct FeeEstimator {
    /// The relay minimum, base units per 1,000 bytes: bucket 0 starts there.
    min_rate: u64,
    /// Decayed count of confirmed samples per bucket.
    confirmed: [f64; BUCKETS],
    /// The decayed sum of their fee rates (a range's average).
    rate_sum: [f64; BUCKETS],
    /// `within[t - 1][b]`: the samples of bucket `b` that confirmed within `t` blocks.
    within: [[f64; BUCKETS]; MAX_TARGET],
    /// Whether each of the last blocks was nearly full, newest last.
    full: VecDeque<bool>,
    /// The height of the block being counted.
    height: u32,
}

impl Default for FeeEstimator {
    fn default() -> Self {
        Self::new(super::MempoolConfig::default().min_fee_per_kb)
    }
}

impl FeeEstimator {
    /// No samples yet; `min_rate` is the relay minimum per 1,000 bytes.
    pub fn new(min_rate: u64) -> Self {
        Self {
            min_rate: min_rate.max(1),
            confirmed: [0.0; BUCKETS],
            rate_sum: [0.0; BUCKETS],
            within: [[0.0; BUCKETS]; MAX_TARGET],
            full: VecDeque::with_capacity(MAX_TARGET),
            height: 0,
        }
    }

    fn bucket(&self, rate: u64) -> usize {
        let ratio = rate as f64 / self.min_rate as f64;
        if ratio < BUCKET_STEP {
            return 0;
        }
        // A finite, positive logarithm: truncation to a bucket number is the point.
        ((ratio.ln() / BUCKET_STEP.ln()) as usize).min(BUCKETS - 1)
    }

    /// A block at `height` is being connected (`full`: it had no room to spare, see
    /// [`is_full`]): older samples weigh less. The mempool then reports each transaction
    /// it confirms.
    pub fn begin_block(&mut self, height: u32, full: bool) {
        for v in self.confirmed.iter_mut().chain(&mut self.rate_sum) {
            *v *= DECAY;
        }
        for v in self.within.iter_mut().flatten() {
            *v *= DECAY;
        }
        if self.full.len() == MAX_TARGET {
            self.full.pop_front();
        }
        self.full.push_back(full);
        self.height = height;
    }

    /// `entry` of the mempool was confirmed by the block being connected.
    pub fn confirmed(&mut self, entry: &Entry) {
        let rate = entry.fee_rate();
        let b = self.bucket(rate);
        let waited = self.height.saturating_sub(entry.height).max(1) as usize;
        self.confirmed[b] += 1.0;
        self.rate_sum[b] += rate as f64;
        for within in self.within.iter_mut().skip(waited - 1) {
            within[b] += 1.0;
        }
    }

    /// Appends its state: the relay minimum and height, the recent blocks' fullness, then
    /// every bucket's counts as IEEE 754 doubles (little-endian).
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.min_rate.to_le_bytes());
        out.extend_from_slice(&self.height.to_le_bytes());
        // At most MAX_TARGET entries: the cast is exact.
        out.push(self.full.len() as u8);
        out.extend(self.full.iter().map(|f| u8::from(*f)));
        let counts =
            self.confirmed.iter().chain(&self.rate_sum).chain(self.within.iter().flatten());
        for v in counts {
            out.extend_from_slice(&v.to_le_bytes());
        }
    }

    /// Reads [`FeeEstimator::encode`]'s bytes.
    ///
    /// # Errors
    /// [`DecodeError`] for a short read or a count no estimator holds (negative, not finite).
    pub fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let mut est = Self::new(r.u64()?);
        est.height = r.u32()?;
        let full = r.take(1)?[0] as usize;
        if full > MAX_TARGET {
            return Err(DecodeError::Invalid("more recent blocks than the estimator keeps"));
        }
        est.full = r.take(full)?.iter().map(|b| *b != 0).collect();
        let counts = est
            .confirmed
            .iter_mut()
            .chain(&mut est.rate_sum)
            .chain(est.within.iter_mut().flatten());
        for v in counts {
            let read = f64::from_le_bytes(r.array()?);
            if !read.is_finite() || read < 0.0 {
                return Err(DecodeError::Invalid("a fee statistic that is negative or not finite"));
            }
            *v = read;
        }
        Ok(est)
    }

    /// The relay minimum it counts from.
    pub fn min_rate(&self) -> u64 {
        self.min_rate
    }

    /// The history's rate for `target`, if the samples support one; `pool` is the mempool
    /// now, at `tip_height` (its transactions that waited `target` blocks count as failed).
    fn history_rate<'a>(
        &self,
        target: u32,
        tip_height: u32,
        pool: impl Iterator<Item = &'a Entry>,
    ) -> Option<u64> {
        let mut waiting = [0.0; BUCKETS];
        for e in pool.filter(|e| tip_height.saturating_sub(e.height) >= target) {
            waiting[self.bucket(e.fee_rate())] += 1.0;
        }
        let within = &self.within[(target as usize).clamp(1, MAX_TARGET) - 1];
        let mut best = None;
        let (mut seen, mut ok, mut sum, mut failed) = (0.0, 0.0, 0.0, 0.0);
        for b in (0..BUCKETS).rev() {
            seen += self.confirmed[b];
            ok += within[b];
            sum += self.rate_sum[b];
            failed += waiting[b];
            if seen + failed < ENOUGH {
                continue;
            }
            if ok / (seen + failed) < SUCCESS {
                break;
            }
            // ok <= seen, so seen > 0 here. Rates are far below 2^53: the cast is exact enough.
            best = Some((sum / seen).round() as u64);
            (seen, ok, sum, failed) = (0.0, 0.0, 0.0, 0.0);
        }
        best
    }

    /// The rate that outbids all but `target` blocks' worth of the mempool; `by_rate` is
    /// the pool, highest fee rate first.
    fn backlog_rate<'a>(
        &self,
        target: u32,
        max_block_size: usize,
        by_rate: impl Iterator<Item = &'a Entry>,
    ) -> u64 {
        let room = max_block_size.saturating_mul(target as usize);
        let mut bytes = 0usize;
        for e in by_rate {
            bytes += e.size;
            if bytes > room {
                return e.fee_rate().saturating_add(1).max(self.min_rate);
            }
        }
        self.min_rate
    }

    /// Estimates for [`TARGETS`], given the mempool (`by_rate`: highest fee rate first) at
    /// `tip_height`. A nearer target never gets a lower rate than a farther one.
    pub fn estimates<'a, I>(&self, by_rate: I, tip_height: u32, params: &Params) -> Vec<FeeEstimate>
    where
        I: Iterator<Item = &'a Entry> + Clone,
    {
        let room = self.full.len() == MAX_TARGET && !self.full.iter().any(|f| *f);
        let mut out: Vec<FeeEstimate> = TARGETS
            .iter()
            .map(|&target| {
                let (mut fee_rate, mut basis) = if room {
                    (self.min_rate, Basis::Room)
                } else {
                    match self.history_rate(target, tip_height, by_rate.clone()) {
                        Some(rate) => (rate.max(self.min_rate), Basis::Blocks),
                        None => (self.min_rate, Basis::Mempool),
                    }
                };
                let backlog = self.backlog_rate(target, params.max_block_size, by_rate.clone());
                if backlog > fee_rate {
                    (fee_rate, basis) = (backlog, Basis::Mempool);
                }
                FeeEstimate { target, fee_rate, basis }
            })
            .collect();
        for i in (0..out.len().saturating_sub(1)).rev() {
            if out[i + 1].fee_rate > out[i].fee_rate {
                let FeeEstimate { fee_rate, basis, .. } = out[i + 1];
                (out[i].fee_rate, out[i].basis) = (fee_rate, basis);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::consensus::Network;
    use crate::primitives::{Transaction, Txid};

    /// A pool entry of `size` bytes paying `rate` per 1,000 bytes, entered at `height`.
    fn entry(n: u32, rate: u64, size: usize, height: u32) -> Entry {
        let tx = Transaction { version: n, inputs: vec![], outputs: vec![], lock_time: 0 };
        let (txid, wtxid) = (tx.txid(), tx.wtxid());
        let fee = rate * size as u64 / 1000;
        Entry { tx, txid, wtxid, fee, size, parents: Vec::<Txid>::new(), height, seq: 0 }
    }

    fn rates(est: &FeeEstimator, pool: &[Entry], tip: u32) -> Vec<(u64, Basis)> {
        let mut by_rate: Vec<&Entry> = pool.iter().collect();
        by_rate.sort_by_key(|e| std::cmp::Reverse(e.fee_rate()));
        est.estimates(by_rate.into_iter(), tip, Network::Regtest.params())
            .into_iter()
            .map(|e| (e.fee_rate, e.basis))
            .collect()
    }

    #[test]
    fn a_new_node_with_an_empty_mempool_says_the_relay_minimum() {
        let est = FeeEstimator::new(1_000);
        assert_eq!(rates(&est, &[], 0), vec![(1_000, Basis::Mempool); 3]);
    }

    #[test]
    fn blocks_with_room_to_spare_mean_the_minimum_is_enough() {
        let mut est = FeeEstimator::new(1_000);
        for h in 1..=6 {
            est.begin_block(h, false);
        }
        assert_eq!(rates(&est, &[], 6), vec![(1_000, Basis::Room); 3]);
        // One full block among the last six, and the room rule no longer holds.
        est.begin_block(7, true);
        assert_eq!(rates(&est, &[], 7)[0].1, Basis::Mempool);
    }

    #[test]
    fn congested_blocks_price_a_fast_confirmation_above_a_slow_one() {
        let mut est = FeeEstimator::new(1_000);
        // Each full block takes ten payments at 8,000 that waited one block, and ten at
        // 2,000 that waited five.
        for h in 10..40 {
            est.begin_block(h, true);
            for i in 0..10 {
                est.confirmed(&entry(i, 8_000, 200, h - 1));
                est.confirmed(&entry(100 + i, 2_000, 200, h - 5));
            }
        }
        let got = rates(&est, &[], 39);
        assert_eq!(got[0], (8_000, Basis::Blocks), "within 1 block");
        assert_eq!(got[1], (8_000, Basis::Blocks), "within 3 blocks");
        assert_eq!(got[2], (2_000, Basis::Blocks), "within 6 blocks");
    }

    #[test]
    fn payments_stuck_in_the_mempool_count_as_failures() {
        let mut est = FeeEstimator::new(1_000);
        for h in 10..40 {
            est.begin_block(h, true);
            for i in 0..4 {
                est.confirmed(&entry(i, 3_000, 200, h - 1));
                est.confirmed(&entry(10 + i, 9_000, 200, h - 1));
            }
        }
        assert_eq!(rates(&est, &[], 39)[0], (3_000, Basis::Blocks));
        // Forty payments at 3,000 have waited ten blocks: 3,000 no longer confirms fast.
        let stuck: Vec<Entry> = (0..40).map(|i| entry(1_000 + i, 3_000, 200, 29)).collect();
        assert_eq!(rates(&est, &stuck, 39)[0], (9_000, Basis::Blocks));
    }

    #[test]
    fn a_backlog_deeper_than_the_target_must_be_outbid() {
        let mut est = FeeEstimator::new(1_000);
        for h in 1..=6 {
            est.begin_block(h, false);
        }
        // Two blocks' worth at 5,000, then two more at 3,000.
        let size = Network::Regtest.params().max_block_size / 10;
        let pool: Vec<Entry> = (0..20)
            .map(|i| entry(i, 5_000, size, 6))
            .chain((20..40).map(|i| entry(i, 3_000, size, 6)))
            .collect();
        let got = rates(&est, &pool, 6);
        assert_eq!(got[0], (5_001, Basis::Mempool), "the next block: outbid the 11th");
        assert_eq!(got[1], (3_001, Basis::Mempool), "within 3: outbid the 31st");
        assert_eq!(got[2], (1_000, Basis::Room), "within 6: it all fits");
    }

    #[test]
    fn old_samples_fade() {
        let mut est = FeeEstimator::new(1_000);
        est.begin_block(1, true);
        for i in 0..10 {
            est.confirmed(&entry(i, 50_000, 200, 0));
        }
        for h in 2..2_000 {
            est.begin_block(h, true);
        }
        // 10 × 0.998^1998 ≈ 0.2 samples: too few to judge on.
        assert_eq!(rates(&est, &[], 2_000)[0], (1_000, Basis::Mempool));
    }
}
