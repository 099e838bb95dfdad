//! The local clock against the network's, sans-IO.
//!
//! The node never reads the clock here: it learns its offset from what peers send. A clock
//! that is behind refuses the network's newest headers as too far in the future; each such
//! header is a sample (the network's time is at least the header's). A clock that is ahead
//! mines blocks the network refuses: a peer that still shows its old tip a while after we
//! gossiped a block, with a tip time more than the future limit below our block's, is a
//! sample too. Either is evidence with proof of work behind it, so one sample makes the
//! offset known (the median of those inside [`WINDOW`]): one WARN names it
//! (Bitcoin Core's "Please check that your computer's date and time are correct"), and the
//! API shows it until samples stop coming.

use std::collections::VecDeque;
use std::time::Duration;

use tracing::{info, warn};

use crate::chain::ChainState;
use crate::primitives::{BlockHash, Time};
use crate::protocol::ChainTip;

/// How long a sample counts.
pub const WINDOW: Duration = Duration::from_secs(30 * 60);
/// Samples inside [`WINDOW`] that make an offset known.
const SAMPLES: usize = 1;
/// Most samples kept.
const MAX_SAMPLES: usize = 16;
/// How long after gossiping a block a peer must have taken it.
const ADOPT_WITHIN: Duration = Duration::from_secs(10);

/// A block we mined, to see whether peers take it.
#[derive(Debug, Clone, Copy)]
struct Mined {
    hash: BlockHash,
    height: u32,
    time: u32,
    at: Time,
}

/// What peers show of the network's clock.
#[derive(Debug, Default)]
pub struct ClockCheck {
    /// (when seen, network minus local in seconds), oldest first.
    samples: VecDeque<(Time, i64)>,
    mined: Option<Mined>,
    /// The offset last warned about (`None`: no warning standing).
    warned: Option<i64>,
}

impl ClockCheck {
    /// A header or block with `time` was refused at `now` as too far in our future.
    pub fn future(&mut self, time: u32, now: Time) {
        let offset = i64::from(time) - now.unix_secs() as i64;
        self.note(offset, now);
    }

    /// We mined (and gossiped) block `hash` at `height` with header time `time`.
    pub fn mined(&mut self, hash: BlockHash, height: u32, time: u32, now: Time) {
        self.mined = Some(Mined { hash, height, time, at: now });
    }

    /// A peer showed `tip` at `now`: if it still sits at or next to the height of the
    /// block we mined, well after we gossiped it, with a tip time further below our
    /// block's than the future limit, the network refused our block for its time.
    pub fn peer_tip(&mut self, tip: &ChainTip, chain: &ChainState, now: Time) {
        let Some(mined) = self.mined else { return };
        if now.since(mined.at) < ADOPT_WITHIN
            || tip.tip == mined.hash.0
            || tip.height.saturating_add(1) < mined.height
            || tip.height > mined.height
        {
            return;
        }
        let Some(entry) = chain.entry(&BlockHash(tip.tip)) else { return };
        let limit = chain.params().max_future_block_time;
        if entry.header.time.saturating_add(limit) < mined.time {
            self.note(i64::from(entry.header.time) - i64::from(mined.time), now);
        }
    }

    /// The network's clock minus ours, in seconds, once known (and while samples come).
    pub fn offset(&self, now: Time) -> Option<i64> {
        let recent: Vec<i64> =
            self.samples.iter().filter(|(t, _)| now.since(*t) < WINDOW).map(|(_, o)| *o).collect();
        if recent.len() < SAMPLES {
            return None;
        }
        let mut sorted = recent;
        sorted.sort_unstable();
        Some(sorted[sorted.len() / 2])
    }

    /// Records a sample; warns once when the offset becomes known.
    fn note(&mut self, offset: i64, now: Time) {
        if self.samples.len() == MAX_SAMPLES {
            self.samples.pop_front();
        }
        self.samples.push_back((now, offset));
        let Some(known) = self.offset(now) else { return };
        if self.warned.is_some() {
            return;
        }
        self.warned = Some(known);
        let side = if known > 0 { "behind" } else { "ahead of" };
        let size = crate::human::duration(known.unsigned_abs());
        warn!(
            offset_secs = known,
            "the local clock seems ~{size} {side} the network's: check the system time \
             (headers and blocks from the other side of it are refused)"
        );
    }

    /// Forgets a warning whose samples have stopped (the clock was fixed, or the peers
    /// that showed it left); logs that once.
    pub fn tick(&mut self, now: Time) {
        if self.warned.is_some() && self.offset(now).is_none() {
            self.warned = None;
            info!("the local clock agrees with the network's again");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: Time = Time::from_secs(1_700_000_000);

    #[test]
    fn headers_from_three_hours_ahead_make_a_slow_clock_known_and_warned_once() {
        let mut clock = ClockCheck::default();
        assert_eq!(clock.offset(T0), None);
        let ahead = (T0.unix_secs() + 3 * 3600) as u32;
        clock.future(ahead, T0);
        assert_eq!(clock.offset(T0), Some(3 * 3600));
        assert_eq!(clock.warned, Some(3 * 3600));
        clock.future(ahead + 10, T0 + Duration::from_secs(1));
        clock.future(ahead + 20, T0 + Duration::from_secs(2));
        assert_eq!(clock.offset(T0 + Duration::from_secs(2)), Some(3 * 3600 + 9), "the median");
        assert_eq!(clock.warned, Some(3 * 3600), "warned once, not per sample");
        // Samples age out, and the warning with them.
        let later = T0 + WINDOW + Duration::from_secs(2);
        assert_eq!(clock.offset(later), None);
        clock.tick(later);
        assert!(clock.warned.is_none());
    }
}
