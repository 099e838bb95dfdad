//! The inbound request rate limit: a token bucket per peer, sans-IO. The network layer
//! applies it before a request reaches the core's queue (and the simulator does the same),
//! reporting a request over the limit as [`super::Offence::RequestFlood`].

use std::collections::HashMap;
use std::hash::Hash;

use crate::primitives::Time;

/// Inbound sync requests a peer may burst.
pub const REQUEST_BURST: u32 = 500;
/// Inbound sync requests per second a peer may sustain. An honest peer keeps at most six
/// in flight (status, headers, four block batches) and syncing at 1,000 blocks/s asks ~60.
pub const REQUESTS_PER_SECOND: u32 = 250;

/// A token bucket per peer (keyed by whatever names peers where it is used).
#[derive(Debug)]
pub struct RequestLimiter<K> {
    buckets: HashMap<K, (f64, Time)>,
}

impl<K> Default for RequestLimiter<K> {
    fn default() -> Self {
        Self { buckets: HashMap::new() }
    }
}

impl<K: Hash + Eq> RequestLimiter<K> {
    /// Takes one token for a request from `peer` at `now`; false if it is over the limit.
    pub fn allow(&mut self, peer: K, now: Time) -> bool {
        let burst = f64::from(REQUEST_BURST);
        let (tokens, last) = self.buckets.entry(peer).or_insert((burst, now));
        let refill = now.since(*last).as_secs_f64() * f64::from(REQUESTS_PER_SECOND);
        *tokens = (*tokens + refill).min(burst);
        *last = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Forgets a peer (it disconnected).
    pub fn forget(&mut self, peer: &K) {
        self.buckets.remove(peer);
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn request_limiter_allows_bursts_and_refills() {
        let mut limiter = RequestLimiter::default();
        let now = Time::from_secs(1_000);
        let allowed = (0..REQUEST_BURST + 100).filter(|_| limiter.allow(1u8, now)).count();
        assert_eq!(allowed, REQUEST_BURST as usize);
        assert!(!limiter.allow(1, now));
        let later = now + Duration::from_millis(100);
        let refilled = (0..100).filter(|_| limiter.allow(1, later)).count();
        assert_eq!(refilled, (REQUESTS_PER_SECOND / 10) as usize);
        assert!(limiter.allow(2, now), "buckets are per peer");
        limiter.forget(&1);
        assert!(limiter.allow(1, later), "a forgotten peer starts with a full bucket");
    }
}
