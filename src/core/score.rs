//! Misbehaviour scores and fault counts, sans-IO: the price of every offence, the points
//! of each peer, and the faults it has had.
//!
//! An [`Offence`] is something only a peer that breaks the rules does, or does so often
//! that it is a flood. A connected peer's points decay by [`DECAY_PER_MINUTE`] and when
//! they reach [`BAN_THRESHOLD`] the peer is banned (the network layer disconnects it and
//! refuses it for `--ban-secs`). Provable attacks (invalid blocks, garbage frames) cost
//! the whole threshold at once; what an honest peer does in a race (an orphan block, a
//! burst of requests) costs a fraction, so only repetition bans.
//!
//! A [`Fault`] is what an honest peer suffers: a request it let time out (it froze, its
//! link dropped, it sits across a partition), a frame cut off when its connection died, a
//! batch that held up the download. Faults never ban (Bitcoin Core's rule: disconnect for
//! faults, discourage only for provable misbehaviour): the work goes elsewhere at once, and
//! a peer with [`MAX_FAULTS`] faults inside [`FAULT_WINDOW`] is disconnected, to be dialled
//! again later with a backoff if it is a kept peer.
//!
//! Peers the operator named (`--bootstrap`, `peers add`) are `noban` (Core's permission of
//! that name): an offence that would ban one disconnects it instead.
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
/// Faults inside [`FAULT_WINDOW`] at which a peer is disconnected (never banned).
pub const MAX_FAULTS: u32 = 3;
/// How long a fault counts towards [`MAX_FAULTS`].
pub const FAULT_WINDOW: Duration = Duration::from_secs(10 * 60);

/// Something a peer did wrong, with the evidence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Offence {
    /// A sync frame that does not decode, or announces more bytes than the cap.
    MalformedFrame(FrameError),
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
    /// A compact block no block could have (no coinbase, prefilled indexes out of
    /// order, too many transactions).
    MalformedCompact(crate::compact::CompactError),
    /// A compact block, or the transactions sent for one, that the block itself
    /// (fetched whole once its rebuild failed) shows to be false: its short ids or
    /// transactions are not the block's. An honest relay rebuilt and validated the
    /// block from exactly these bytes before forwarding them.
    FalseCompact(BlockHash),
}

/// Something that went wrong with a peer that an honest peer can suffer: never banned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// It let one of our requests time out (frozen, overloaded, or cut off).
    TimedOut,
    /// A sync frame from it ended inside (its connection died mid-frame).
    TruncatedFrame,
    /// Its batch held up the download for longer than the stall timeout while another
    /// peer could serve it; the batch went to that peer.
    Stalled,
}

impl Fault {
    /// A short, stable name for the fault (a metrics label).
    pub fn label(self) -> &'static str {
        match self {
            Fault::TimedOut => "timed_out",
            Fault::TruncatedFrame => "truncated_frame",
            Fault::Stalled => "stalled",
        }
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fault::TimedOut => write!(f, "let a request time out"),
            Fault::TruncatedFrame => write!(f, "a sync frame ended inside (connection lost)"),
            Fault::Stalled => write!(f, "held up the block download"),
        }
    }
}

impl Offence {
    /// Every [`Offence::label`], in the order of the variants, so that the metrics can
    /// start each at zero: a new offence goes into both.
    pub const LABELS: [&'static str; 14] = [
        "malformed_frame",
        "request_flood",
        "undecodable_gossip",
        "invalid_header",
        "invalid_block",
        "known_invalid",
        "bad_sync_data",
        "withheld_blocks",
        "invalid_tx",
        "loose_coinbase",
        "orphan_block",
        "unknown_inputs",
        "malformed_compact",
        "false_compact",
    ];

    /// A short, stable name for the offence's kind (a metrics label).
    pub fn label(&self) -> &'static str {
        match self {
            Offence::MalformedFrame(_) => "malformed_frame",
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
            Offence::MalformedCompact(_) => "malformed_compact",
            Offence::FalseCompact(_) => "false_compact",
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
            | Offence::WithheldBlocks(_)
            | Offence::MalformedCompact(_)
            | Offence::FalseCompact(_) => BAN_THRESHOLD,
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
            Offence::UnknownInputs => write!(f, "relayed transactions spending unknown outputs"),
            Offence::MalformedCompact(error) => write!(f, "malformed compact block: {error}"),
            Offence::FalseCompact(hash) => {
                write!(
                    f,
                    "false compact block: its short ids or transactions are not block {hash}'s"
                )
            }
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Score {
    points: u32,
    since: Time,
    /// When each fault still inside [`FAULT_WINDOW`] happened, oldest first.
    faults: [Option<Time>; MAX_FAULTS as usize],
    /// Faults since it connected (for the operator).
    total_faults: u32,
    /// Operator's peer: disconnected instead of banned.
    noban: bool,
}

impl Score {
    fn new(now: Time) -> Self {
        Score {
            points: 0,
            since: now,
            faults: [None; MAX_FAULTS as usize],
            total_faults: 0,
            noban: false,
        }
    }
}

/// What charging an offence comes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Charge {
    /// Below the threshold: nothing more to do.
    Noted,
    /// The threshold is reached: ban it (its score is forgotten).
    Ban,
    /// The threshold is reached by a `noban` peer: disconnect it (its score is forgotten).
    Disconnect,
}

/// Misbehaviour points and faults of connected peers.
#[derive(Debug, Default)]
pub struct PeerScores {
    scores: HashMap<PeerKey, Score>,
}

impl PeerScores {
    /// A peer connected; `noban` if the operator named it.
    pub fn connected(&mut self, peer: PeerKey, noban: bool, now: Time) {
        self.scores.insert(peer, Score { noban, ..Score::new(now) });
    }

    /// Charges `offence` to `peer`. Returns its points after the charge and what they
    /// come to (the caller bans or disconnects at the threshold).
    pub fn penalize(&mut self, peer: PeerKey, offence: &Offence, now: Time) -> (u32, Charge) {
        let score = self.scores.entry(peer).or_insert_with(|| Score::new(now));
        let minutes = now.since(score.since).as_secs() / 60;
        if minutes > 0 {
            let forgiven =
                u32::try_from(minutes).unwrap_or(u32::MAX).saturating_mul(DECAY_PER_MINUTE);
            score.points = score.points.saturating_sub(forgiven);
            score.since = score.since + Duration::from_secs(minutes * 60);
        }
        score.points = score.points.saturating_add(offence.points());
        let points = score.points;
        if points < BAN_THRESHOLD {
            return (points, Charge::Noted);
        }
        let noban = score.noban;
        // Forgotten either way: the peer is leaving.
        self.scores.remove(&peer);
        (points, if noban { Charge::Disconnect } else { Charge::Ban })
    }

    /// Counts a fault of `peer` at `now`. Returns its faults inside [`FAULT_WINDOW`] and
    /// whether they reached [`MAX_FAULTS`] (the caller disconnects it).
    pub fn fault(&mut self, peer: PeerKey, now: Time) -> (u32, bool) {
        let score = self.scores.entry(peer).or_insert_with(|| Score::new(now));
        score.total_faults = score.total_faults.saturating_add(1);
        let recent = |t: &Option<Time>| t.is_some_and(|t| now.since(t) < FAULT_WINDOW);
        let mut kept: Vec<Time> =
            score.faults.iter().filter(|t| recent(t)).flatten().copied().collect();
        kept.push(now);
        if kept.len() > MAX_FAULTS as usize {
            kept.remove(0);
        }
        let count = kept.len() as u32;
        score.faults = [None; MAX_FAULTS as usize];
        for (slot, t) in score.faults.iter_mut().zip(kept) {
            *slot = Some(t);
        }
        let disconnect = count >= MAX_FAULTS;
        if disconnect {
            score.faults = [None; MAX_FAULTS as usize];
        }
        (count, disconnect)
    }

    /// Each peer with faults or points: (faults since it connected, points).
    pub fn listed(&self) -> HashMap<PeerKey, (u32, u32)> {
        self.scores
            .iter()
            .filter(|(_, s)| s.total_faults > 0 || s.points > 0)
            .map(|(p, s)| (*p, (s.total_faults, s.points)))
            .collect()
    }

    /// Faults of `peer` since it connected.
    pub fn faults(&self, peer: &PeerKey) -> u32 {
        self.scores.get(peer).map_or(0, |s| s.total_faults)
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
    fn offence_labels_are_distinct_and_listed() {
        let distinct: std::collections::HashSet<_> = Offence::LABELS.iter().collect();
        assert_eq!(distinct.len(), Offence::LABELS.len());
        for offence in [
            bad_pow(),
            Offence::RequestFlood,
            Offence::KnownInvalid(BlockHash([2; 32])),
            Offence::WithheldBlocks(3),
            Offence::InvalidTx(TxError::BadSignature { index: 0 }),
            Offence::LooseCoinbase,
            Offence::OrphanBlock,
            Offence::UnknownInputs,
            Offence::FalseCompact(BlockHash([3; 32])),
        ] {
            assert!(Offence::LABELS.contains(&offence.label()), "{}", offence.label());
        }
    }

    #[test]
    fn provable_attacks_ban_at_once_accidents_only_when_repeated() {
        let mut scores = PeerScores::default();
        let (a, b) = (PeerKey(1), PeerKey(2));
        assert_eq!(scores.penalize(a, &bad_pow(), T0), (100, Charge::Ban));
        assert_eq!(scores.points(&a), 0, "a banned peer's score is dropped");
        let bad_tx = Offence::InvalidTx(TxError::BadSignature { index: 0 });
        for points in [25, 50, 75] {
            assert_eq!(scores.penalize(b, &bad_tx, T0), (points, Charge::Noted));
        }
        assert_eq!(scores.penalize(b, &bad_tx, T0), (100, Charge::Ban));
        assert!(scores.is_empty());
    }

    #[test]
    fn an_operators_peer_is_disconnected_where_another_is_banned() {
        let mut scores = PeerScores::default();
        let kept = PeerKey(4);
        scores.connected(kept, true, T0);
        assert_eq!(scores.penalize(kept, &bad_pow(), T0), (100, Charge::Disconnect));
        assert!(scores.is_empty(), "its score goes with it");
    }

    #[test]
    fn faults_never_ban_and_three_in_ten_minutes_disconnect() {
        let mut scores = PeerScores::default();
        let peer = PeerKey(5);
        scores.connected(peer, false, T0);
        // A fault every six minutes for a day: never more than two in the window.
        for i in 0..240u64 {
            let (count, disconnect) = scores.fault(peer, T0 + Duration::from_secs(i * 360));
            assert!(count <= 2 && !disconnect, "fault {i}: {count} in the window");
        }
        assert_eq!(scores.points(&peer), 0, "faults cost no points");
        assert_eq!(scores.faults(&peer), 240);
        let later = T0 + Duration::from_secs(240 * 360);
        assert_eq!(scores.fault(peer, later), (2, false));
        assert_eq!(scores.fault(peer, later), (3, true));
        assert_eq!(scores.fault(peer, later), (1, false), "the count starts again");
    }

    #[test]
    fn points_decay_so_rare_accidents_never_add_up() {
        let mut scores = PeerScores::default();
        let peer = PeerKey(7);
        // An orphan block every 15 minutes for a day: never banned.
        for i in 0..96u64 {
            let at = T0 + Duration::from_secs(i * 900);
            let (_, charge) = scores.penalize(peer, &Offence::OrphanBlock, at);
            assert_eq!(charge, Charge::Noted, "banned after {i} orphans");
        }
        // Ten in a row are a flood.
        let later = T0 + Duration::from_secs(96 * 900);
        let banned =
            (0..10).any(|_| scores.penalize(peer, &Offence::OrphanBlock, later).1 == Charge::Ban);
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
        let frame = Offence::MalformedFrame(FrameError::Oversized { len: 1 << 31, cap: 65_536 });
        assert!(frame.to_string().contains("over the 65536-byte cap"), "{frame}");
        assert!(Fault::TruncatedFrame.to_string().contains("connection lost"));
        assert!(!Offence::UnknownInputs.rejects_message() && bad_pow().rejects_message());
    }
}
