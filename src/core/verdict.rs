//! Blame, decided in one place: for anything a peer sent that the node refused, or a
//! request of ours that came to nothing, whether to ignore it, count it as a [`Fault`], or
//! penalize the sender, and for which typed [`Offence`].
//!
//! The rule of thumb (Bitcoin Core's): only data that proves its sender broke a rule is
//! penalized. Data that is merely early (a block from the future), late (already known), a
//! race (an orphan, a transaction whose parent we have not seen while catching up) or
//! possibly damaged in transit (a body that does not match its header) is ignored. What an
//! honest peer suffers (a timeout, a connection that dies mid-frame, a slow batch) is a
//! fault: its work goes elsewhere and repeated faults disconnect it, never ban it. A local
//! failure (the store, a full queue) is never the peer's fault.

use super::score::{Fault, Offence};
use crate::chain::ChainError;
use crate::consensus::{BlockError, HeaderError, TxError};
use crate::mempool::MempoolError;
use crate::protocol::FrameError;
use crate::sync::SyncFault;

/// What the node does about a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Judgement {
    /// Good: use it and relay it.
    Accept,
    /// Drop it; nobody is at fault.
    Ignore,
    /// Drop it and charge the sender.
    Penalize(Offence),
    /// Nobody broke a rule, but the peer failed us: count it (never a ban).
    Fault(Fault),
}

/// Gossipsub's verdict on a message, in the core's terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Valid: forward it.
    Accept,
    /// Do not forward; do not count it against the sender.
    Ignore,
    /// Invalid: do not forward, and let gossipsub's score count it against the sender.
    Reject,
}

impl Verdict {
    /// `accept`, `ignore` or `reject` (a metrics label).
    pub fn label(self) -> &'static str {
        match self {
            Verdict::Accept => "accept",
            Verdict::Ignore => "ignore",
            Verdict::Reject => "reject",
        }
    }
}

impl Judgement {
    /// The gossip verdict for the message judged.
    pub fn verdict(&self) -> Verdict {
        match self {
            Judgement::Accept => Verdict::Accept,
            Judgement::Ignore => Verdict::Ignore,
            Judgement::Penalize(o) if o.rejects_message() => Verdict::Reject,
            Judgement::Penalize(_) | Judgement::Fault(_) => Verdict::Ignore,
        }
    }
}

/// Something a peer sent that the node refused.
#[derive(Debug)]
pub enum Rejection<'a> {
    /// A block refused before it was stored (its header, structure or PoW).
    Block(&'a ChainError),
    /// A stored block found invalid while being connected: its header committed to the
    /// body that broke the rule, so the sender relayed a provably invalid block. Or an
    /// orphan refused when its parent came (its header checked in context only then).
    Connect(&'a ChainError),
    /// A header of a headers answer.
    Header(&'a ChainError),
    /// A transaction the mempool refused; `syncing` while we catch up.
    Tx {
        /// Why.
        error: &'a MempoolError,
        /// Whether we are behind the network (unknown inputs are expected then).
        syncing: bool,
    },
    /// A sync answer that breaks the protocol.
    Sync(SyncFault),
    /// One of our requests timed out.
    TimedOut,
    /// A peer's blocks request held up the download past the stall timeout.
    Stalled,
    /// A sync frame that broke the framing: cut off, oversized, or undecodable.
    Frame(&'a FrameError),
    /// An orphan the peer gossiped whose parent its last headers answer still left
    /// unknown.
    UnresolvedOrphan,
    /// An offence established where its evidence was found: by the network layer
    /// (`NetEvent::Misbehaved`: request floods) or by the core (undecodable gossip,
    /// withheld blocks).
    Offence(Offence),
}

/// Decides what a rejection means for its sender.
pub fn judge(rejection: Rejection<'_>) -> Judgement {
    use crate::core::score::Fault::{Stalled, TimedOut, TruncatedFrame};
    use Judgement::{Ignore, Penalize};
    match rejection {
        Rejection::Block(e) | Rejection::Header(e) | Rejection::Connect(e) => {
            let header = matches!(rejection, Rejection::Header(_));
            let connect = matches!(rejection, Rejection::Connect(_));
            match e {
                ChainError::InvalidHeader { error: HeaderError::TimeTooNew { .. }, .. } => Ignore,
                ChainError::InvalidHeader { hash, error } if header => {
                    Penalize(Offence::InvalidHeader { hash: *hash, error: error.clone() })
                }
                // A block whose header breaks a rule is an invalid block.
                ChainError::InvalidHeader { hash, error } => Penalize(Offence::InvalidBlock {
                    hash: *hash,
                    error: BlockError::Header(error.clone()),
                }),
                ChainError::InvalidBlock { hash, error } if connect || error.condemns_header() => {
                    Penalize(Offence::InvalidBlock { hash: *hash, error: error.clone() })
                }
                // A body that does not match its header may have been damaged in transit.
                ChainError::InvalidBlock { .. } => Ignore,
                ChainError::KnownInvalid(hash) => Penalize(Offence::KnownInvalid(*hash)),
                ChainError::UnknownParent { .. } if header => {
                    Penalize(Offence::BadSyncData(SyncFault::HeadersDoNotConnect))
                }
                ChainError::UnknownParent { .. } | ChainError::Storage(_) => Ignore,
            }
        }
        Rejection::Tx { error, syncing } => match error {
            // Behind the network, honest peers relay what we cannot place yet.
            MempoolError::Invalid(TxError::InputMissingOrSpent(_)) if syncing => Ignore,
            MempoolError::Invalid(TxError::InputMissingOrSpent(_)) => {
                Penalize(Offence::UnknownInputs)
            }
            MempoolError::Invalid(e) => Penalize(Offence::InvalidTx(e.clone())),
            MempoolError::Coinbase => Penalize(Offence::LooseCoinbase),
            MempoolError::AlreadyKnown(_)
            | MempoolError::Conflict { .. }
            | MempoolError::FeeTooLow { .. }
            | MempoolError::PoolFull
            | MempoolError::Storage(_) => Ignore,
        },
        Rejection::Sync(fault) => Penalize(Offence::BadSyncData(fault)),
        // A frozen peer, a dropped link, a partition: nothing proves a rule broken.
        Rejection::TimedOut => Judgement::Fault(TimedOut),
        Rejection::Stalled => Judgement::Fault(Stalled),
        // A connection that dies mid-frame cuts it off; garbage is another matter.
        Rejection::Frame(FrameError::Truncated) => Judgement::Fault(TruncatedFrame),
        Rejection::Frame(e) => Penalize(Offence::MalformedFrame(e.clone())),
        Rejection::UnresolvedOrphan => Penalize(Offence::OrphanBlock),
        Rejection::Offence(offence) => Penalize(offence),
    }
}

#[cfg(test)]
mod tests {
    use super::Judgement::{Ignore, Penalize};
    use super::*;
    use crate::primitives::{BlockHash, OutPoint, Txid};
    use crate::storage::StorageError;

    const H: BlockHash = BlockHash([3; 32]);

    fn invalid(error: BlockError) -> ChainError {
        ChainError::InvalidBlock { hash: H, error }
    }

    #[test]
    fn provable_rule_breaks_are_penalized_with_their_rule() {
        let pow = ChainError::InvalidHeader { hash: H, error: HeaderError::BadProofOfWork };
        assert_eq!(
            judge(Rejection::Header(&pow)),
            Penalize(Offence::InvalidHeader { hash: H, error: HeaderError::BadProofOfWork })
        );
        let bad_block = BlockError::Header(HeaderError::BadProofOfWork);
        assert_eq!(
            judge(Rejection::Block(&pow)),
            Penalize(Offence::InvalidBlock { hash: H, error: bad_block })
        );
        let overpay = invalid(BlockError::CoinbaseOverpay { paid: 2, allowed: 1 });
        assert!(matches!(
            judge(Rejection::Connect(&overpay)),
            Penalize(Offence::InvalidBlock { error: BlockError::CoinbaseOverpay { .. }, .. })
        ));
        assert_eq!(
            judge(Rejection::Block(&ChainError::KnownInvalid(H))).verdict(),
            Verdict::Reject
        );
    }

    #[test]
    fn early_damaged_or_local_failures_penalize_nobody() {
        let future = ChainError::InvalidHeader {
            hash: H,
            error: HeaderError::TimeTooNew { time: 9, max_allowed: 1 },
        };
        assert_eq!(judge(Rejection::Block(&future)), Ignore);
        assert_eq!(judge(Rejection::Header(&future)), Ignore);
        assert_eq!(
            judge(Rejection::Connect(&future)),
            Ignore,
            "an orphan early when its parent came"
        );
        // A body that does not match its header: maybe damaged in transit, unless it was
        // stored already (then the header committed to it).
        assert_eq!(judge(Rejection::Block(&invalid(BlockError::BadMerkleRoot))), Ignore);
        let store = ChainError::Storage(StorageError::Inconsistent("disk"));
        assert_eq!(judge(Rejection::Block(&store)), Ignore);
        assert_eq!(judge(Rejection::Connect(&store)), Ignore);
        let tx_store = MempoolError::Storage(StorageError::Inconsistent("disk"));
        assert_eq!(judge(Rejection::Tx { error: &tx_store, syncing: false }), Ignore);
        assert_eq!(judge(Rejection::Tx { error: &MempoolError::PoolFull, syncing: false }), Ignore);
    }

    #[test]
    fn unknown_inputs_cost_a_point_only_when_we_are_not_catching_up() {
        let op = OutPoint { txid: Txid([1; 32]), vout: 0 };
        let e = MempoolError::Invalid(TxError::InputMissingOrSpent(op));
        assert_eq!(judge(Rejection::Tx { error: &e, syncing: true }), Ignore);
        let j = judge(Rejection::Tx { error: &e, syncing: false });
        assert_eq!(j, Penalize(Offence::UnknownInputs));
        assert_eq!(j.verdict(), Verdict::Ignore, "a race, not an invalid message");
    }

    #[test]
    fn an_orphan_refused_when_its_parent_came_is_judged_like_the_block_it_is() {
        let pow = ChainError::InvalidHeader { hash: H, error: HeaderError::BadProofOfWork };
        let bad_block = BlockError::Header(HeaderError::BadProofOfWork);
        assert_eq!(
            judge(Rejection::Connect(&pow)),
            Penalize(Offence::InvalidBlock { hash: H, error: bad_block })
        );
        let known = ChainError::KnownInvalid(H);
        assert_eq!(judge(Rejection::Connect(&known)), Penalize(Offence::KnownInvalid(H)));
    }

    #[test]
    fn timeouts_stalls_and_cut_off_frames_are_faults_never_offences() {
        assert_eq!(judge(Rejection::TimedOut), Judgement::Fault(Fault::TimedOut));
        assert_eq!(judge(Rejection::Stalled), Judgement::Fault(Fault::Stalled));
        let cut = judge(Rejection::Frame(&FrameError::Truncated));
        assert_eq!(cut, Judgement::Fault(Fault::TruncatedFrame));
        assert_eq!(cut.verdict(), Verdict::Ignore);
        let oversized = FrameError::Oversized { len: 1 << 31, cap: 65_536 };
        assert_eq!(
            judge(Rejection::Frame(&oversized)),
            Penalize(Offence::MalformedFrame(oversized.clone())),
            "garbage is no accident"
        );
    }

    #[test]
    fn an_orphan_left_unresolved_costs_its_sender_but_is_a_race_for_gossip() {
        let j = judge(Rejection::UnresolvedOrphan);
        assert_eq!(j, Penalize(Offence::OrphanBlock));
        assert_eq!(j.verdict(), Verdict::Ignore);
    }

    #[test]
    fn an_offence_the_network_established_is_charged_as_it_is() {
        let j = judge(Rejection::Offence(Offence::RequestFlood));
        assert_eq!(j, Penalize(Offence::RequestFlood));
    }

    #[test]
    fn headers_that_do_not_connect_are_bad_sync_data_but_orphan_blocks_are_not() {
        let e = ChainError::UnknownParent { hash: H, parent: BlockHash([4; 32]) };
        assert_eq!(
            judge(Rejection::Header(&e)),
            Penalize(Offence::BadSyncData(SyncFault::HeadersDoNotConnect))
        );
        assert_eq!(judge(Rejection::Block(&e)), Ignore);
    }
}
