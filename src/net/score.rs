//! Misbehaviour scores and the inbound request rate limit, sans-IO.
//!
//! Every offence a peer can commit has a price in points. A connected peer's points decay
//! by [`DECAY_PER_MINUTE`] and when they reach [`BAN_THRESHOLD`] the peer is banned (the
//! caller disconnects it and refuses it for `--ban-secs`). Provable attacks (invalid
//! blocks, garbage frames) cost the whole threshold at once; things an honest peer could do
//! by accident or in a race (a truncated frame when it crashes, an orphan block, a burst
//! of requests) cost a fraction, so only repetition bans.
//!
//! Scores are forgotten when the peer disconnects: an attacker with fresh peer ids cannot
//! grow the table beyond the connected peers, and a banned peer is refused anyway.

use std::collections::HashMap;
use std::fmt;
use std::time::{Duration, Instant};

use libp2p::PeerId;

use super::codec::FrameError;

/// Points at which a peer is banned.
pub const BAN_THRESHOLD: u32 = 100;
/// Points forgiven per minute of good behaviour.
pub const DECAY_PER_MINUTE: u32 = 1;
/// Inbound sync requests a peer may burst.
pub const REQUEST_BURST: u32 = 500;
/// Inbound sync requests per second a peer may sustain. An honest peer keeps at most six
/// in flight (status, headers, four block batches) and syncing at 1,000 blocks/s asks ~60.
pub const REQUESTS_PER_SECOND: u32 = 250;

/// Something a peer did wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Offence {
    /// A sync frame that does not decode, or announces more bytes than the cap.
    MalformedFrame(String),
    /// A sync frame cut off before its announced length.
    TruncatedFrame,
    /// A sync request beyond the rate limit (refused).
    RequestFlood,
    /// A gossip message that is not one block or transaction.
    UndecodableGossip(&'static str),
    /// A block or header that breaks a consensus rule.
    InvalidBlock(String),
    /// Headers that break a rule, do not connect, or a malformed sync answer.
    BadSyncData(String),
    /// Blocks that are ancestors of the tip the peer announced, left out of its answer.
    WithheldBlocks(usize),
    /// A transaction that breaks a consensus rule (bad signature, overspend, ...).
    InvalidTx(String),
    /// A gossiped block whose parent its sender's headers did not lead to.
    OrphanBlock,
    /// A gossiped transaction spending outputs we do not know, while we are not catching
    /// up (an honest peer sends one only in a rare race).
    UnknownInputs,
    /// A status or headers request (small, quick to answer), or blocks it provably has,
    /// left to time out.
    Stalled,
}

impl Offence {
    /// What the offence costs.
    pub fn points(&self) -> u32 {
        match self {
            Offence::MalformedFrame(_)
            | Offence::UndecodableGossip(_)
            | Offence::InvalidBlock(_)
            | Offence::BadSyncData(_)
            | Offence::WithheldBlocks(_) => BAN_THRESHOLD,
            Offence::TruncatedFrame | Offence::Stalled => 50,
            Offence::InvalidTx(_) => 25,
            Offence::RequestFlood => 20,
            Offence::OrphanBlock => 10,
            Offence::UnknownInputs => 1,
        }
    }
}

impl fmt::Display for Offence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Offence::MalformedFrame(why) => write!(f, "malformed sync frame: {why}"),
            Offence::TruncatedFrame => write!(f, "truncated sync frame"),
            Offence::RequestFlood => {
                write!(f, "sync requests over {REQUESTS_PER_SECOND}/s (burst {REQUEST_BURST})")
            }
            Offence::UndecodableGossip(kind) => write!(f, "undecodable {kind} gossiped"),
            Offence::InvalidBlock(why) => write!(f, "invalid block: {why}"),
            Offence::BadSyncData(why) => write!(f, "bad sync data: {why}"),
            Offence::WithheldBlocks(n) => {
                write!(f, "withheld {n} blocks of the chain it announced")
            }
            Offence::InvalidTx(why) => write!(f, "invalid transaction: {why}"),
            Offence::OrphanBlock => {
                write!(f, "gossiped a block with an unknown parent its headers did not reach")
            }
            Offence::Stalled => write!(f, "let a request it could answer time out"),
            Offence::UnknownInputs => write!(f, "relayed transactions spending unknown outputs"),
        }
    }
}

impl From<FrameError> for Offence {
    fn from(e: FrameError) -> Self {
        match e {
            FrameError::Truncated => Offence::TruncatedFrame,
            e => Offence::MalformedFrame(e.to_string()),
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Score {
    points: u32,
    since: Instant,
}

/// Misbehaviour points of connected peers.
#[derive(Debug, Default)]
pub struct PeerScores {
    scores: HashMap<PeerId, Score>,
}

impl PeerScores {
    /// Charges `offence` to `peer`. Returns its points after the charge and whether they
    /// reached the ban threshold (the caller bans; the score is then forgotten).
    pub fn penalize(&mut self, peer: PeerId, offence: &Offence, now: Instant) -> (u32, bool) {
        let score = self.scores.entry(peer).or_insert(Score { points: 0, since: now });
        let minutes = now.saturating_duration_since(score.since).as_secs() / 60;
        if minutes > 0 {
            let forgiven =
                u32::try_from(minutes).unwrap_or(u32::MAX).saturating_mul(DECAY_PER_MINUTE);
            score.points = score.points.saturating_sub(forgiven);
            score.since += Duration::from_secs(minutes * 60);
        }
        score.points = score.points.saturating_add(offence.points());
        let points = score.points;
        let ban = points >= BAN_THRESHOLD;
        if ban {
            self.scores.remove(&peer);
        }
        (points, ban)
    }

    /// Forgets a peer (it disconnected).
    pub fn forget(&mut self, peer: &PeerId) {
        self.scores.remove(peer);
    }

    /// Current points of `peer` (before decay), 0 if none.
    pub fn points(&self, peer: &PeerId) -> u32 {
        self.scores.get(peer).map_or(0, |s| s.points)
    }

    /// Whether no peer has a score.
    pub fn is_empty(&self) -> bool {
        self.scores.is_empty()
    }
}

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
    use super::*;

    #[test]
    fn provable_attacks_ban_at_once_accidents_only_when_repeated() {
        let mut scores = PeerScores::default();
        let now = Instant::now();
        let (a, b) = (PeerId::random(), PeerId::random());
        assert_eq!(scores.penalize(a, &Offence::InvalidBlock("bad pow".into()), now), (100, true));
        assert_eq!(scores.points(&a), 0, "a banned peer's score is dropped");
        assert_eq!(scores.penalize(b, &Offence::TruncatedFrame, now), (50, false));
        assert_eq!(scores.penalize(b, &Offence::TruncatedFrame, now), (100, true));
        assert!(scores.is_empty());
    }

    #[test]
    fn points_decay_so_rare_accidents_never_add_up() {
        let mut scores = PeerScores::default();
        let peer = PeerId::random();
        let start = Instant::now();
        // An orphan block every 15 minutes for a day: never banned.
        for i in 0..96u64 {
            let (_, ban) =
                scores.penalize(peer, &Offence::OrphanBlock, start + Duration::from_secs(i * 900));
            assert!(!ban, "banned after {i} orphans");
        }
        // Ten in a row are a flood.
        let later = start + Duration::from_secs(96 * 900);
        let banned = (0..10).any(|_| scores.penalize(peer, &Offence::OrphanBlock, later).1);
        assert!(banned);
    }

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
