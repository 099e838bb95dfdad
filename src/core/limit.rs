//! The inbound request rate limit: a token bucket per connected peer, applied at the edge
//! before a request reaches the core's queue. Going over it is reported to the core as
//! [`crate::core::Offence::RequestFlood`].

use std::collections::HashMap;
use std::time::Instant;

use libp2p::PeerId;

/// Inbound sync requests a peer may burst.
pub const REQUEST_BURST: u32 = 500;
/// Inbound sync requests per second a peer may sustain. An honest peer keeps at most six
/// in flight (status, headers, four block batches) and syncing at 1,000 blocks/s asks ~60.
pub const REQUESTS_PER_SECOND: u32 = 250;

/// A token bucket per connected peer for inbound sync requests.
#[derive(Debug, Default)]
pub struct RequestLimiter {
    buckets: HashMap<PeerId, (f64, Instant)>,
}

impl RequestLimiter {
    /// Takes one token for a request from `peer`; false if the peer is over the limit.
    pub fn allow(&mut self, peer: PeerId, now: Instant) -> bool {
        let burst = f64::from(REQUEST_BURST);
        let (tokens, last) = self.buckets.entry(peer).or_insert((burst, now));
        let refill =
            now.saturating_duration_since(*last).as_secs_f64() * f64::from(REQUESTS_PER_SECOND);
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
    pub fn forget(&mut self, peer: &PeerId) {
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
        let peer = PeerId::random();
        let now = Instant::now();
        let allowed = (0..REQUEST_BURST + 100).filter(|_| limiter.allow(peer, now)).count();
        assert_eq!(allowed, REQUEST_BURST as usize);
        assert!(!limiter.allow(peer, now));
        let later = now + Duration::from_millis(100);
        let refilled = (0..100).filter(|_| limiter.allow(peer, later)).count();
        assert_eq!(refilled, (REQUESTS_PER_SECOND / 10) as usize);
        assert!(limiter.allow(PeerId::random(), now), "buckets are per peer");
    }
}
