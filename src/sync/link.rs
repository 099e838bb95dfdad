//! How many blocks to keep in flight to one peer and how many to ask per request: the
//! link's bandwidth times its round trip, bounded.
//!
//! A request costs a round trip, so a fixed number of blocks in flight caps the download
//! at that number per round trip: 64 blocks across a 100 ms link is 640 blocks/s however
//! fast both ends are. Each peer's [`Link`] measures the smallest round trip seen (its
//! status and blocks answers, the way TCP BBR takes the minimum RTT as the path's delay)
//! and the blocks it delivers per second, and allows twice their product in flight: while
//! the window is the limit, every window's worth of answers measures a rate the window
//! itself set, so the window doubles per round trip (a slow start) until the peer, the link
//! or our own validation stops delivering faster. A link that slows down shrinks it again
//! within a few measurements.
//!
//! The window counts requests ([`MIN_BATCHES`]..=[`MAX_BATCHES`], the upper bound under the
//! inbound limit a peer applies to us, [`crate::core::limit::MAX_IN_FLIGHT`]); how many
//! blocks fit in one request follows the blocks' size ([`batch_size`]), so that a chain of
//! small blocks does not pay a request per 16 of them.

use std::time::Duration;

use crate::primitives::Time;
use crate::protocol::{LEGACY_BLOCKS_PER_REQUEST, MAX_BLOCKS_PER_REQUEST};

/// Block requests one peer may have in flight, at least: what an unmeasured link gets.
pub const MIN_BATCHES: usize = 4;
/// Block requests one peer may have in flight, at most. A peer keeps at most
/// [`crate::core::limit::MAX_IN_FLIGHT`] of our requests open: this leaves room for a
/// status, a headers and the mempool requests.
pub const MAX_BATCHES: usize = 10;
/// Bytes one blocks request aims at: a request holds this much of blocks of the size seen
/// so far, within [`LEGACY_BLOCKS_PER_REQUEST`]..=[`MAX_BLOCKS_PER_REQUEST`].
pub const BATCH_BYTES: f64 = 1024.0 * 1024.0;
/// Delivery is measured over at least this long (and at least a round trip).
const RATE_INTERVAL: Duration = Duration::from_millis(20);
/// Blocks requests per second to one peer, at most: half what a peer serves before it
/// refuses ([`crate::core::limit::REQUESTS_PER_SECOND`]), leaving room for our other
/// requests. Only a peer asked 16 blocks at a time (an older version) ever nears it: at
/// 128 a request it is 16,000 blocks/s.
pub const MAX_REQUESTS_PER_SECOND: f64 = 125.0;
/// Blocks requests one peer may be sent at once after a pause: more than a tick's worth
/// ([`crate::core::TICK`], 250 ms) of [`MAX_REQUESTS_PER_SECOND`], so that pacing never
/// waits for the clock.
const REQUEST_BURST: f64 = 40.0;

/// One peer's link, as its answers show it.
#[derive(Debug, Clone, Default)]
pub struct Link {
    /// The smallest round trip of an answer seen on this connection.
    min_rtt: Option<Duration>,
    /// Blocks per second it delivered, smoothed over measurement intervals.
    rate: f64,
    /// The measurement interval under way: when it started and the blocks since.
    interval: Option<(Time, usize)>,
    /// Requests that may still be sent, as of when (a token bucket; full at first).
    tokens: Option<(f64, Time)>,
}

impl Link {
    /// An answer to a request sent at `sent` arrived at `now`.
    pub fn answered(&mut self, sent: Time, now: Time) {
        let rtt = now.since(sent);
        self.min_rtt = Some(self.min_rtt.map_or(rtt, |m| m.min(rtt)));
    }

    /// `blocks` blocks arrived at `now`.
    pub fn delivered(&mut self, blocks: usize, now: Time) {
        let Some((start, count)) = self.interval else {
            // Blocks of the first answer were in flight before the interval: only what
            // follows is counted against its time.
            self.interval = Some((now, 0));
            return;
        };
        let count = count + blocks;
        let elapsed = now.since(start);
        if elapsed < RATE_INTERVAL.max(self.min_rtt.unwrap_or_default()) {
            self.interval = Some((start, count));
            return;
        }
        let sample = count as f64 / elapsed.as_secs_f64();
        self.rate = if self.rate == 0.0 { sample } else { (self.rate + sample) / 2.0 };
        self.interval = Some((now, 0));
    }

    /// Whether a blocks request may be sent at `now` within [`MAX_REQUESTS_PER_SECOND`].
    pub fn may_send(&self, now: Time) -> bool {
        self.tokens(now) >= 1.0
    }

    /// A blocks request was sent at `now`.
    pub fn sent(&mut self, now: Time) {
        self.tokens = Some((self.tokens(now) - 1.0, now));
    }

    fn tokens(&self, now: Time) -> f64 {
        self.tokens.map_or(REQUEST_BURST, |(tokens, at)| {
            (tokens + now.since(at).as_secs_f64() * MAX_REQUESTS_PER_SECOND).min(REQUEST_BURST)
        })
    }

    /// Block requests that may be in flight to this peer, each of `batch` blocks: twice
    /// the blocks it delivers per round trip, within [`MIN_BATCHES`]..=[`MAX_BATCHES`].
    pub fn batches(&self, batch: usize) -> usize {
        let Some(rtt) = self.min_rtt else { return MIN_BATCHES };
        let blocks = 2.0 * self.rate * rtt.as_secs_f64();
        let batches = (blocks / batch.max(1) as f64).ceil() as usize;
        batches.clamp(MIN_BATCHES, MAX_BATCHES)
    }

    /// The smallest round trip seen, if any answer came yet.
    pub fn min_rtt(&self) -> Option<Duration> {
        self.min_rtt
    }

    /// Blocks per second delivered, as last measured (0 before a measurement).
    pub fn rate(&self) -> f64 {
        self.rate
    }
}

/// Blocks per request for blocks of `avg_bytes` on average (unknown before the first
/// answer: then the legacy 16, which fit any blocks), at most `peer_max` (what the peer
/// accepts).
pub fn batch_size(avg_bytes: Option<f64>, peer_max: usize) -> usize {
    let Some(avg) = avg_bytes else { return LEGACY_BLOCKS_PER_REQUEST.min(peer_max) };
    let fit = (BATCH_BYTES / avg.max(1.0)) as usize;
    fit.clamp(LEGACY_BLOCKS_PER_REQUEST, MAX_BLOCKS_PER_REQUEST).min(peer_max)
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: Time = Time::from_secs(1_000);

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// A peer answering every request after `rtt`, delivering its window's blocks (at
    /// most `cap` a second) per round trip for `rounds` round trips from `now`: the window
    /// it is then allowed.
    fn run(
        link: &mut Link,
        now: &mut Time,
        rtt: u64,
        rounds: u64,
        batch: usize,
        cap: f64,
    ) -> usize {
        link.answered(*now, *now + ms(rtt));
        for _ in 0..rounds {
            *now = *now + ms(rtt);
            // What was in flight arrives, unless the peer (or we) cannot go faster.
            let window = link.batches(batch) * batch;
            let blocks = window.min((cap * rtt as f64 / 1000.0) as usize);
            link.delivered(blocks, *now);
        }
        link.batches(batch)
    }

    #[test]
    fn an_unmeasured_link_gets_the_minimum() {
        assert_eq!(Link::default().batches(16), MIN_BATCHES);
    }

    #[test]
    fn a_long_fast_link_opens_the_window_to_its_bound() {
        // 100 ms away, delivering whatever is asked: the window grows to the bound.
        let mut link = Link::default();
        let mut now = T0;
        assert_eq!(run(&mut link, &mut now, 100, 20, 128, f64::INFINITY), MAX_BATCHES);
    }

    #[test]
    fn the_window_is_twice_what_the_link_delivers_per_round_trip() {
        // 100 ms away, but only 2,000 blocks/s get through: 200 per round trip, 400 in
        // flight, which is 4 requests of 128 (rounded up).
        let mut link = Link::default();
        let mut now = T0;
        assert_eq!(run(&mut link, &mut now, 100, 20, 128, 2_000.0), 4);
        assert!((link.rate() - 2_000.0).abs() < 50.0, "rate {}", link.rate());
        // Twice as fast, twice the window: 800 blocks, 7 requests of 128.
        let mut link = Link::default();
        let mut now = T0;
        assert_eq!(run(&mut link, &mut now, 100, 20, 128, 4_000.0), 7);
    }

    #[test]
    fn a_near_peer_needs_no_more_than_the_minimum() {
        // 1 ms away at 5,000 blocks/s: 10 blocks in flight would do.
        let mut link = Link::default();
        let mut now = T0;
        assert_eq!(run(&mut link, &mut now, 1, 200, 128, 5_000.0), MIN_BATCHES);
        assert_eq!(link.min_rtt(), Some(ms(1)));
    }

    #[test]
    fn a_link_that_slows_down_shrinks_the_window() {
        let mut link = Link::default();
        let mut now = T0;
        assert_eq!(run(&mut link, &mut now, 100, 20, 128, f64::INFINITY), MAX_BATCHES);
        assert_eq!(run(&mut link, &mut now, 100, 20, 128, 1_000.0), MIN_BATCHES);
    }

    #[test]
    fn requests_are_paced_below_what_a_peer_serves() {
        let mut link = Link::default();
        let mut sent = 0;
        // One second of asking as fast as answers allow, every millisecond.
        for ms_ in 0..1_000 {
            let now = T0 + ms(ms_);
            while link.may_send(now) {
                link.sent(now);
                sent += 1;
            }
        }
        // The burst, then the rate: well under the 250/s a peer serves.
        let most = REQUEST_BURST as usize + MAX_REQUESTS_PER_SECOND as usize;
        assert!((most - 2..=most).contains(&sent), "{sent}");
        assert!(sent < crate::core::limit::REQUESTS_PER_SECOND as usize);
    }

    #[test]
    fn requests_hold_a_mebibyte_of_blocks_within_the_bounds() {
        assert_eq!(batch_size(None, MAX_BLOCKS_PER_REQUEST), LEGACY_BLOCKS_PER_REQUEST);
        assert_eq!(batch_size(Some(300.0), MAX_BLOCKS_PER_REQUEST), MAX_BLOCKS_PER_REQUEST);
        assert_eq!(batch_size(Some(32_768.0), MAX_BLOCKS_PER_REQUEST), 32);
        assert_eq!(batch_size(Some(900_000.0), MAX_BLOCKS_PER_REQUEST), 16);
        // A peer of an older version takes 16 at most.
        assert_eq!(batch_size(Some(300.0), LEGACY_BLOCKS_PER_REQUEST), 16);
    }
}
