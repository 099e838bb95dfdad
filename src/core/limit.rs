//! The inbound request rate limit, sans-IO: a token bucket per peer, and a cap on the
//! requests of one peer still waiting for their answer. The network layer applies it
//! before a request reaches the core's queue (and the simulator does the same), reporting
//! a request over either limit as [`super::Offence::RequestFlood`].
//!
//! The in-flight cap makes a flood visible however fast the node answers: a peer that
//! keeps dozens of requests open is flooding even when the node serves them slower than
//! the bucket refills (a busy machine).

use std::collections::HashMap;
use std::hash::Hash;

use crate::primitives::Time;

/// Inbound sync requests a peer may burst.
pub const REQUEST_BURST: u32 = 500;
/// Inbound sync requests per second a peer may sustain. An honest peer asks blocks at
/// most half as often ([`crate::sync::link::MAX_REQUESTS_PER_SECOND`]); syncing 5,000
/// small blocks a second, 128 a request, it asks ~40.
pub const REQUESTS_PER_SECOND: u32 = 250;

/// Requests of one peer that may wait for their answer at once. An honest peer keeps at
/// most fifteen open (status, headers, mempool, two transaction batches and at most
/// [`crate::sync::MAX_BATCHES`] block batches).
pub const MAX_IN_FLIGHT: u32 = 16;

/// A token bucket and an in-flight count per peer (keyed by whatever names peers where it
/// is used).
#[derive(Debug)]
pub struct RequestLimiter<K> {
    buckets: HashMap<K, (f64, Time)>,
    in_flight: HashMap<K, u32>,
}

impl<K> Default for RequestLimiter<K> {
    fn default() -> Self {
        Self { buckets: HashMap::new(), in_flight: HashMap::new() }
    }
}

impl<K: Hash + Eq> RequestLimiter<K> {
    /// Takes one token for a request from `peer` at `now` and counts it in flight until
    /// [`Self::answered`]; false if the peer is over either limit.
    pub fn allow(&mut self, peer: K, now: Time) -> bool
    where
        K: Clone,
    {
        let full = self.in_flight.get(&peer).is_some_and(|open| *open >= MAX_IN_FLIGHT);
        if full || !self.take_token(peer.clone(), now) {
            return false;
        }
        *self.in_flight.entry(peer).or_default() += 1;
        true
    }

    /// A request of `peer` was answered.
    pub fn answered(&mut self, peer: &K) {
        if let Some(open) = self.in_flight.get_mut(peer) {
            *open = open.saturating_sub(1);
        }
    }

    fn take_token(&mut self, peer: K, now: Time) -> bool {
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
        self.in_flight.remove(peer);
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// A request allowed and answered at once (the in-flight cap stays out of the way).
    fn served(limiter: &mut RequestLimiter<u8>, peer: u8, now: Time) -> bool {
        let allowed = limiter.allow(peer, now);
        if allowed {
            limiter.answered(&peer);
        }
        allowed
    }

    #[test]
    fn request_limiter_allows_bursts_and_refills() {
        let mut limiter = RequestLimiter::default();
        let now = Time::from_secs(1_000);
        let allowed = (0..REQUEST_BURST + 100).filter(|_| served(&mut limiter, 1, now)).count();
        assert_eq!(allowed, REQUEST_BURST as usize);
        assert!(!limiter.allow(1, now));
        let later = now + Duration::from_millis(100);
        let refilled = (0..100).filter(|_| served(&mut limiter, 1, later)).count();
        assert_eq!(refilled, (REQUESTS_PER_SECOND / 10) as usize);
        assert!(limiter.allow(2, now), "buckets are per peer");
        limiter.forget(&1);
        assert!(limiter.allow(1, later), "a forgotten peer starts with a full bucket");
    }

    #[test]
    fn a_peer_keeping_too_many_requests_open_is_refused_until_they_are_answered() {
        let mut limiter = RequestLimiter::default();
        let now = Time::from_secs(1_000);
        let open = (0..100).filter(|_| limiter.allow(7u8, now)).count();
        assert_eq!(open, MAX_IN_FLIGHT as usize, "plenty of tokens, but only so many open");
        limiter.answered(&7);
        assert!(limiter.allow(7, now), "an answer frees a place");
        assert!(!limiter.allow(7, now));
        assert!(limiter.allow(8, now), "other peers are not affected");
    }
}
