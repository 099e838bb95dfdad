//! Sync progress lines: height, target, blocks and transactions per second, and the
//! time left at that pace.

use std::time::Duration;

use tracing::info;

use crate::primitives::Time;

/// Minimum time between two sync progress lines.
const PROGRESS_EVERY: Duration = Duration::from_secs(2);

/// Where the last progress line was.
#[derive(Debug, Default)]
pub(super) struct Progress {
    /// When this catch-up began, at what height and transaction count.
    started: Option<(Time, u32, u64)>,
    last_line: Option<Time>,
    height_at_last: u32,
    txs_at_last: u64,
}

impl Progress {
    /// Logs sync progress at most every two seconds while `height` is below `target`;
    /// `txs` counts the transactions connected since start, `peers` those connected.
    pub(super) fn log(&mut self, height: u32, target: u32, txs: u64, peers: usize, now: Time) {
        if height >= target {
            if let Some((start, from, txs_from)) = self.started.take() {
                complete(
                    height,
                    height.saturating_sub(from),
                    txs.saturating_sub(txs_from),
                    now.since(start),
                );
                self.last_line = None;
            }
            return;
        }
        let Some(last) = self.last_line else {
            self.started = Some((now, height, txs));
            self.last_line = Some(now);
            self.height_at_last = height;
            self.txs_at_last = txs;
            return;
        };
        let elapsed = now.since(last);
        if elapsed < PROGRESS_EVERY {
            return;
        }
        let secs = elapsed.as_secs_f64();
        let blocks = height.saturating_sub(self.height_at_last);
        let txs_done = txs.saturating_sub(self.txs_at_last);
        let Pace { rate, tx_rate, percent, eta_secs } =
            pace(height, target, blocks, txs_done, secs);
        let eta = eta_secs.map_or_else(|| "unknown".to_owned(), crate::human::duration);
        info!(
            height,
            target_height = target,
            percent = round1(percent),
            blocks_per_s = round1(rate),
            txs_per_s = round1(tx_rate),
            eta_secs,
            peers,
            "blocks {height}/{target} ({percent:.0}%) {rate:.1} blocks/s, {tx_rate:.0} tx/s, {eta} left"
        );
        self.last_line = Some(now);
        self.height_at_last = height;
        self.txs_at_last = txs;
    }
}

/// The line that ends a catch-up: how many blocks and transactions it connected, in how
/// long, and at what average pace.
fn complete(height: u32, blocks: u32, txs: u64, took: Duration) {
    let secs = took.as_secs_f64().max(0.001);
    let Pace { rate, tx_rate, .. } = pace(height, height, blocks, txs, secs);
    let took_text =
        if secs < 60.0 { format!("{secs:.1} s") } else { crate::human::duration(took.as_secs()) };
    info!(
        height,
        blocks,
        txs,
        duration_secs = round1(secs),
        blocks_per_s = round1(rate),
        txs_per_s = round1(tx_rate),
        "sync complete at height {height}: {blocks} blocks and {txs} transactions in \
         {took_text}, {rate:.1} blocks/s and {tx_rate:.0} tx/s on average"
    );
}

/// How fast the sync goes and how long it still takes.
#[derive(Debug, PartialEq)]
pub(super) struct Pace {
    /// Blocks per second.
    pub(super) rate: f64,
    /// Transactions per second.
    pub(super) tx_rate: f64,
    /// Height as a share of the target, in percent.
    pub(super) percent: f64,
    /// Seconds left at this rate (unknown while nothing connects).
    pub(super) eta_secs: Option<u64>,
}

/// The pace of a sync at `height` of `target` that connected `blocks` blocks holding `txs`
/// transactions in the last `secs` seconds.
pub(super) fn pace(height: u32, target: u32, blocks: u32, txs: u64, secs: f64) -> Pace {
    let rate = f64::from(blocks) / secs;
    Pace {
        rate,
        tx_rate: txs as f64 / secs,
        percent: f64::from(height) * 100.0 / f64::from(target.max(1)),
        eta_secs: (rate > 0.0)
            .then(|| (f64::from(target.saturating_sub(height)) / rate).ceil() as u64),
    }
}

/// `x` to one decimal, for log fields that stay numbers in JSON logs.
fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sync_progress_tells_blocks_and_transactions_per_second_and_the_time_left() {
        // 100 blocks of 500 transactions in 2 s, 500 of 1,000 still to go: 10 s left.
        let p = pace(500, 1_000, 100, 50_000, 2.0);
        assert_eq!(p, Pace { rate: 50.0, tx_rate: 25_000.0, percent: 50.0, eta_secs: Some(10) });
        // Nothing connected in the last interval: no guess.
        assert_eq!(pace(500, 1_000, 0, 0, 2.0).eta_secs, None);
        assert_eq!(crate::human::duration(10), "10 s");
    }
}
