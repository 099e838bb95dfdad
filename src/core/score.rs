//! Misbehaviour scores, sans-IO: the price of every offence and the points of each peer.
//!
//! A connected peer's points decay by [`DECAY_PER_MINUTE`] and when they reach
//! [`BAN_THRESHOLD`] the peer is banned (the network layer disconnects it and refuses it for
//! `--ban-secs`). Provable attacks (invalid blocks, garbage frames) cost the whole threshold
//! at once; things an honest peer could do by accident or in a race (a truncated frame when
//! it crashes, an orphan block, a burst of requests) cost a fraction, so only repetition
//! bans.
//!
//! Scores are forgotten when the peer disconnects: an attacker with fresh peer ids cannot
//! grow the table beyond the connected peers, and a banned peer is refused anyway.

use std::collections::HashMap;
use std::fmt;
use std::time::Duration;

use crate::consensus::{BlockError, HeaderError, TxError};
use crate::primitives::{BlockHash, PeerKey, Time};
use crate::protocol::{FrameError, GossipKind};
use crate::sync::SyncFault;

/// Points at which a peer is banned.
pub const BAN_THRESHOLD: u32 = 100;
/// Points forgiven per minute of good behaviour.
pub const DECAY_PER_MINUTE: u32 = 1;

/// Something a peer did wrong, with the evidence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Offence {
    /// A sync frame that does not decode, or announces more bytes than the cap.
    MalformedFrame(FrameError),
    /// A sync frame cut off before its announced length.
    TruncatedFrame,
    /// Sync requests beyond the rate limit (refused at the edge).
    RequestFlood,
    /// A gossip message that is not one block or transaction.
    UndecodableGossip(GossipKind),
    /// A header that breaks a consensus rule.
    InvalidHeader {
        /// The header's hash.
        hash: BlockHash,
        /// The rule broken.
        error: HeaderError,
    },
    /// A block that breaks a consensus rule.
    InvalidBlock {
        /// The block's hash.
        hash: BlockHash,
        /// The rule broken.
        error: BlockError,
    },
    /// A block or header already known to be invalid (or descending from one).
    KnownInvalid(BlockHash),
    /// A sync answer that breaks the protocol.
    BadSyncData(SyncFault),
    /// Blocks that are ancestors of the tip the peer announced, left out of its answer.
    WithheldBlocks(usize),
    /// A transaction that breaks a consensus rule (bad signature, overspend, ...).
    InvalidTx(TxError),
    /// A coinbase relayed as a loose transaction.
    LooseCoinbase,
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
    /// A short, stable name for the offence's kind (a metrics label).
    pub fn label(&self) -> &'static str {
        match self {
            Offence::MalformedFrame(_) => "malformed_frame",
            Offence::TruncatedFrame => "truncated_frame",
            Offence::RequestFlood => "request_flood",
            Offence::UndecodableGossip(_) => "undecodable_gossip",
            Offence::InvalidHeader { .. } => "invalid_header",
            Offence::InvalidBlock { .. } => "invalid_block",
            Offence::KnownInvalid(_) => "known_invalid",
            Offence::BadSyncData(_) => "bad_sync_data",
            Offence::WithheldBlocks(_) => "withheld_blocks",
            Offence::InvalidTx(_) => "invalid_tx",
            Offence::LooseCoinbase => "loose_coinbase",
            Offence::OrphanBlock => "orphan_block",
            Offence::UnknownInputs => "unknown_inputs",
            Offence::Stalled => "stalled",
        }
    }

    /// What the offence costs.
    pub fn points(&self) -> u32 {
        match self {
            Offence::MalformedFrame(_)
            | Offence::UndecodableGossip(_)
            | Offence::InvalidHeader { .. }
            | Offence::InvalidBlock { .. }
            | Offence::KnownInvalid(_)
            | Offence::BadSyncData(_)
            | Offence::WithheldBlocks(_) => BAN_THRESHOLD,
            Offence::TruncatedFrame | Offence::Stalled => 50,
            Offence::InvalidTx(_) | Offence::LooseCoinbase => 25,
            Offence::RequestFlood => 20,
            Offence::OrphanBlock => 10,
            Offence::UnknownInputs => 1,
        }
    }

    /// Whether the message that showed the offence is itself invalid, so gossipsub should
    /// drop it and count it against the sender too; offences that honest peers commit in
    /// races (orphans, unknown inputs) only stop the message.
    pub fn rejects_message(&self) -> bool {
        !matches!(self, Offence::OrphanBlock | Offence::UnknownInputs)
    }
}

impl fmt::Display for Offence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Offence::MalformedFrame(why) => write!(f, "malformed sync frame: {why}"),
            Offence::TruncatedFrame => write!(f, "truncated sync frame"),
            Offence::RequestFlood => write!(f, "sync requests over the rate limit"),
            Offence::UndecodableGossip(kind) => write!(f, "undecodable {} gossiped", kind.noun()),
            Offence::InvalidHeader { hash, error } => {
                write!(f, "invalid header: header {hash} rejected: {error}")
            }
            Offence::InvalidBlock { hash, error } => {
                write!(f, "invalid block: block {hash} rejected: {error}")
            }
            Offence::KnownInvalid(hash) => {
                write!(f, "invalid block: {hash} is known to be invalid or descends from one")
            }
            Offence::BadSyncData(fault) => write!(f, "bad sync data: {fault}"),
            Offence::WithheldBlocks(n) => {
                write!(f, "withheld {n} blocks of the chain it announced")
            }
            Offence::InvalidTx(error) => write!(f, "invalid transaction: {error}"),
            Offence::LooseCoinbase => write!(f, "invalid transaction: a coinbase outside a block"),
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
            e => Offence::MalformedFrame(e),
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Score {
    points: u32,
    since: Time,
}

/// Misbehaviour points of connected peers.
#[derive(Debug, Default)]
pub struct PeerScores {
    scores: HashMap<PeerKey, Score>,
}

impl PeerScores {
    /// Charges `offence` to `peer`. Returns its points after the charge and whether they
    /// reached the ban threshold (the caller bans; the score is then forgotten).
    pub fn penalize(&mut self, peer: PeerKey, offence: &Offence, now: Time) -> (u32, bool) {
        let score = self.scores.entry(peer).or_insert(Score { points: 0, since: now });
        let minutes = now.since(score.since).as_secs() / 60;
        if minutes > 0 {
            let forgiven =
                u32::try_from(minutes).unwrap_or(u32::MAX).saturating_mul(DECAY_PER_MINUTE);
            score.points = score.points.saturating_sub(forgiven);
            score.since = score.since + Duration::from_secs(minutes * 60);
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
    pub fn forget(&mut self, peer: &PeerKey) {
        self.scores.remove(peer);
    }

    /// Current points of `peer` (before decay), 0 if none.
    pub fn points(&self, peer: &PeerKey) -> u32 {
        self.scores.get(peer).map_or(0, |s| s.points)
    }

    /// Whether no peer has a score.
    pub fn is_empty(&self) -> bool {
        self.scores.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: Time = Time::from_secs(1_700_000_000);

    fn bad_pow() -> Offence {
        Offence::InvalidHeader { hash: BlockHash([1; 32]), error: HeaderError::BadProofOfWork }
    }

    #[test]
    fn provable_attacks_ban_at_once_accidents_only_when_repeated() {
        let mut scores = PeerScores::default();
        let (a, b) = (PeerKey(1), PeerKey(2));
        assert_eq!(scores.penalize(a, &bad_pow(), T0), (100, true));
        assert_eq!(scores.points(&a), 0, "a banned peer's score is dropped");
        assert_eq!(scores.penalize(b, &Offence::TruncatedFrame, T0), (50, false));
        assert_eq!(scores.penalize(b, &Offence::TruncatedFrame, T0), (100, true));
        assert!(scores.is_empty());
    }

    #[test]
    fn points_decay_so_rare_accidents_never_add_up() {
        let mut scores = PeerScores::default();
        let peer = PeerKey(7);
        // An orphan block every 15 minutes for a day: never banned.
        for i in 0..96u64 {
            let at = T0 + Duration::from_secs(i * 900);
            let (_, ban) = scores.penalize(peer, &Offence::OrphanBlock, at);
            assert!(!ban, "banned after {i} orphans");
        }
        // Ten in a row are a flood.
        let later = T0 + Duration::from_secs(96 * 900);
        let banned = (0..10).any(|_| scores.penalize(peer, &Offence::OrphanBlock, later).1);
        assert!(banned);
    }

    #[test]
    fn decay_counts_whole_minutes_only() {
        let mut scores = PeerScores::default();
        let peer = PeerKey(3);
        scores.penalize(peer, &Offence::RequestFlood, T0);
        // 59 s later nothing is forgiven; at 60 s one point is.
        assert_eq!(
            scores.penalize(peer, &Offence::UnknownInputs, T0 + Duration::from_secs(59)).0,
            21
        );
        assert_eq!(
            scores.penalize(peer, &Offence::UnknownInputs, T0 + Duration::from_secs(60)).0,
            21
        );
        scores.forget(&peer);
        assert_eq!(scores.points(&peer), 0);
    }

    #[test]
    fn the_reason_on_record_names_the_rule() {
        assert!(bad_pow().to_string().contains("proof of work"), "{}", bad_pow());
        let frame = Offence::from(FrameError::Oversized { len: 1 << 31, cap: 65_536 });
        assert!(frame.to_string().contains("over the 65536-byte cap"), "{frame}");
        assert_eq!(Offence::from(FrameError::Truncated), Offence::TruncatedFrame);
        assert!(!Offence::UnknownInputs.rejects_message() && bad_pow().rejects_message());
    }
}
