//! Background validation of a snapshot's history (Bitcoin Core's second chainstate under
//! `assumeutxo`): a node started from a snapshot follows the tip at once on the snapshot's
//! UTXO set, while a second chain, on its own store, validates every block from genesis
//! to the snapshot's base. Reaching the base, it computes the snapshot hash of its own
//! UTXO set: the same hash as the snapshot's means the snapshot told the truth; another
//! is one ERROR, and the node falls back to this fully validated chain.

use tracing::{error, info, warn};

use super::verdict::{Rejection, judge};
use super::{NodeEvent, Output};
use crate::chain::{ChainError, ChainState};
use crate::primitives::{Block, BlockHash, BlockHeader, PeerKey, Time};
use crate::snapshot::{SnapshotInfo, SnapshotWriter};
use crate::storage::{SnapshotBase, StorageError};
use crate::sync::DOWNLOAD_WINDOW;

/// How often the history's progress is logged.
const PROGRESS_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

/// Headers handed to the history chain per call (it takes them from the main chain's
/// best header chain, already checked there).
const HEADERS_PER_FEED: u32 = 2_000;

/// How the history's check at the base came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// Still validating.
    Running,
    /// It reproduced the snapshot's hash.
    Agreed,
    /// It did not (or the history is invalid): the snapshot chain is not to be trusted.
    Disagreed,
}

/// The history chain and what it must reproduce.
pub struct History {
    chain: ChainState,
    base: SnapshotBase,
    check: Check,
    /// When progress was last logged, and the height then.
    logged: Option<(Time, u32)>,
    /// It refused a header of the main chain (said once; fed again each tick).
    refused_header: bool,
}

/// Where the two chains stand (`/status`'s `snapshot`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnapshotProgress {
    /// The snapshot's base height.
    pub height: u32,
    /// How far the history is validated from genesis.
    pub validated_height: u32,
    /// Whether it reached the base and agreed.
    pub done: bool,
}

impl History {
    /// Validation of the history below `base` on `chain` (its own store, from genesis).
    pub fn new(chain: ChainState, base: SnapshotBase) -> Self {
        let check = if base.validated { Check::Agreed } else { Check::Running };
        Self { chain, base, check, logged: None, refused_header: false }
    }

    /// The history chain (serving blocks below the base to peers).
    pub fn chain(&self) -> &ChainState {
        &self.chain
    }

    /// The history chain, taken to replace the main one (when they disagreed).
    pub fn into_chain(self) -> ChainState {
        self.chain
    }

    /// The snapshot's base.
    pub fn base(&self) -> SnapshotBase {
        self.base
    }

    /// How the check at the base came out so far.
    pub fn check(&self) -> Check {
        self.check
    }

    /// Where it stands.
    pub fn progress(&self) -> SnapshotProgress {
        SnapshotProgress {
            height: self.base.height,
            validated_height: self.chain.height(),
            done: self.check == Check::Agreed,
        }
    }

    /// Whether a block at `height` belongs to the history (and is still wanted).
    pub fn wants_height(&self, height: u32) -> bool {
        self.check == Check::Running && height <= self.base.height
    }

    /// Blocks it still lacks, lowest first (for the download).
    pub fn wanted(&self) -> Vec<(BlockHash, u32)> {
        if self.check != Check::Running {
            return Vec::new();
        }
        self.chain.missing_blocks(DOWNLOAD_WINDOW)
    }

    /// Hands it the headers of `main`'s best header chain it lacks, up to the base, once
    /// that chain leads through the base.
    pub fn feed_headers(&mut self, main: &ChainState, now: Time) {
        if self.check != Check::Running
            || main.best_chain_header(self.base.height).map(|h| h.block_hash())
                != Some(self.base.block)
        {
            return;
        }
        loop {
            let from = self.chain.best_header().height + 1;
            let to = self.base.height.min(from + HEADERS_PER_FEED - 1);
            if from > to {
                return;
            }
            let headers: Vec<BlockHeader> =
                (from..=to).filter_map(|h| main.best_chain_header(h)).collect();
            let (accepted, refused) = self.chain.accept_headers(&headers, now.unix_secs());
            if let Some(e) = refused {
                if !std::mem::replace(&mut self.refused_header, true) {
                    error!(error = %e, "the history chain refused a header of the main chain below the snapshot's base");
                }
                return;
            }
            if accepted.len() < headers.len() {
                return;
            }
        }
    }

    /// Makes what it connected durable if it was held a while (`None`: at once, as at
    /// shutdown); a failure is logged and the next write tries again.
    pub fn flush(&mut self, now: Option<Time>) {
        if let Err(e) = self.chain.flush(now.map(Time::unix_secs)) {
            error!(error = %e, "cannot make the history chain durable");
        }
    }

    /// Connects `blocks` of the history; returns those found invalid, with why. On
    /// reaching the base it checks the snapshot (see [`Self::check_base`]).
    pub fn accept(&mut self, blocks: Vec<Block>, now: Time) -> Vec<(BlockHash, ChainError)> {
        let invalid = match self.chain.accept_blocks(blocks, now.unix_secs()) {
            Ok(outcome) => outcome.invalid,
            Err(e) => {
                error!(error = %e, "history chain cannot store blocks; they will be asked again");
                Vec::new()
            }
        };
        self.log_progress(now);
        self.settle();
        invalid
    }

    /// Decides, once the history reached the base (or cannot: the base was found
    /// invalid). Also after a restart that came between reaching it and checking.
    pub fn settle(&mut self) {
        if self.check != Check::Running {
            return;
        }
        if self.chain.entry(&self.base.block).is_some_and(|e| e.is_failed()) {
            error!(height = self.base.height, hash = %self.base.block, "the snapshot's history holds an invalid block: the snapshot's chain is invalid; falling back to the fully validated chain");
            self.check = Check::Disagreed;
        } else if self.chain.tip() == self.base.block {
            self.check_base();
        }
    }

    fn log_progress(&mut self, now: Time) {
        let height = self.chain.height();
        let Some((at, from)) = self.logged else {
            self.logged = Some((now, height));
            return;
        };
        let elapsed = now.since(at);
        if elapsed < PROGRESS_EVERY || height >= self.base.height {
            return;
        }
        let rate = f64::from(height.saturating_sub(from)) / elapsed.as_secs_f64();
        let base = self.base.height;
        let percent = f64::from(height) * 100.0 / f64::from(base.max(1));
        info!(
            height,
            base,
            blocks_per_s = rate.round(),
            "snapshot history validated to {height} of {base} ({percent:.0}%), {rate:.0} blocks/s"
        );
        self.logged = Some((now, height));
    }

    /// At the base: its own UTXO set's snapshot hash against the snapshot's.
    fn check_base(&mut self) {
        self.flush(None);
        match utxo_hash(&self.chain, self.base) {
            Ok(hash) if hash == self.base.hash => {
                info!(height = self.base.height, hash = %self.base.block, snapshot = %hash, "history validated from genesis: its UTXO set matches the snapshot");
                self.check = Check::Agreed;
            }
            Ok(hash) => {
                error!(height = self.base.height, expected = %self.base.hash, found = %hash, "the UTXO set validated from genesis does not match the snapshot (hash {hash}, the snapshot's {}): the snapshot is wrong; falling back to the fully validated chain", self.base.hash);
                self.check = Check::Disagreed;
            }
            Err(e) => {
                error!(error = %e, "cannot read the history's UTXO set to check the snapshot")
            }
        }
    }
}

/// The snapshot hash of `chain`'s UTXO set at its tip, as a snapshot of `base` would be.
fn utxo_hash(chain: &ChainState, base: SnapshotBase) -> Result<BlockHash, StorageError> {
    let mut coins = 0u64;
    chain.for_each_coin(|_, _| coins += 1)?;
    let info = SnapshotInfo {
        network: chain.params().network,
        block: base.block,
        height: base.height,
        coins,
    };
    // Into a sink, with the coins in the order the store keeps (outpoint order): neither
    // can fail but by a count that changed in between, which no write can do here.
    let Ok(mut writer) = SnapshotWriter::new(std::io::sink(), info) else {
        return Err(StorageError::Inconsistent("cannot hash the UTXO set"));
    };
    let mut failed = false;
    chain.for_each_coin(|op, coin| failed |= writer.coin(&op, &coin).is_err())?;
    match writer.finish() {
        Ok((hash, _)) if !failed => Ok(hash),
        _ => Err(StorageError::Inconsistent("the UTXO set changed while it was hashed")),
    }
}

impl super::Core {
    /// Validates the history below the main chain's snapshot base on `chain` (a chain of
    /// its own store, from genesis), in the background. Nothing happens if the main
    /// chain did not start from a snapshot.
    pub fn set_history(&mut self, chain: ChainState) {
        if let Some(base) = self.ledger.chain().snapshot_base() {
            self.history = Some(History::new(chain, base));
        }
    }

    /// Where the snapshot's two chains stand, if the node started from one.
    pub fn snapshot_progress(&self) -> Option<SnapshotProgress> {
        self.history.as_ref().map(History::progress)
    }

    /// Hands the history chain the headers it lacks and the download what it wants (and
    /// decides, if it is at the base already: a restart between reaching and checking it).
    pub(super) fn feed_history(&mut self, now: Time) {
        let Some(history) = self.history.as_mut() else { return };
        history.flush(Some(now));
        history.feed_headers(self.ledger.chain(), now);
        if history.check() == Check::Running {
            history.settle();
            if history.check() != Check::Running {
                self.history_settled(now);
                return;
            }
        }
        self.sync.set_history(history.wanted());
    }

    /// Of a sync answer's blocks, those of the history (then the rest, for the main chain).
    pub(super) fn split_history(&self, blocks: Vec<Block>) -> (Vec<Block>, Vec<Block>) {
        let Some(history) = &self.history else { return (Vec::new(), blocks) };
        let chain = self.ledger.chain();
        blocks.into_iter().partition(|b| {
            chain.entry(&b.block_hash()).is_some_and(|e| history.wants_height(e.height))
        })
    }

    /// History blocks `peer` sent: connected on the history chain (an invalid one is
    /// judged as on the main chain); at the base, the verdict.
    pub(super) fn accept_history(&mut self, blocks: Vec<Block>, peer: PeerKey, now: Time) {
        let Some(history) = self.history.as_mut() else { return };
        let invalid = history.accept(blocks, now);
        for (_, error) in &invalid {
            self.apply(peer, judge(Rejection::Connect(error)), now);
        }
        self.history_settled(now);
    }

    /// Acts on the history's check: more blocks while it runs, the record when it agreed,
    /// the fallback when it did not.
    fn history_settled(&mut self, now: Time) {
        let Some(history) = self.history.as_ref() else { return };
        match history.check() {
            Check::Running => {
                let wanted = history.wanted();
                self.sync.set_history(wanted);
            }
            Check::Agreed => {
                self.sync.set_history(Vec::new());
                if self.ledger.chain().snapshot_base().is_some_and(|b| b.validated) {
                    return;
                }
                if let Err(e) = self.ledger.chain_mut().mark_snapshot_validated() {
                    error!(error = %e, "cannot record that the snapshot was validated; it is checked again after a restart");
                }
            }
            Check::Disagreed => self.fall_back(now),
        }
    }

    /// The snapshot was wrong: the history chain, validated from genesis, becomes the
    /// main chain and catches up from the base like any node.
    fn fall_back(&mut self, now: Time) {
        let Some(history) = self.history.take() else { return };
        let base = history.base();
        let dropped = self.ledger.replace_chain(history.into_chain());
        self.sync.set_history(Vec::new());
        self.sync.best_chain_rewound();
        let chain = self.ledger.chain();
        warn!(height = chain.height(), tip = %chain.tip(), dropped, snapshot = %base.hash, "dropped the chain built on the snapshot; going on from the chain validated from genesis at height {}", chain.height());
        self.out.push(Output::Event(NodeEvent::SnapshotRejected { height: chain.height() }));
        let asks = self.sync.advance(self.ledger.chain(), now);
        self.ask(asks);
    }
}
