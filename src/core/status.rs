//! The facts the API shows (`/status`, `/peers`, `/metrics`): a copy the driver takes
//! after each input, so that readers never wait on the core.

use std::collections::HashMap;

use super::{CompactStats, Core, SnapshotProgress};
use crate::primitives::{BlockHash, PeerKey};

/// The facts the API shows, as of the last input.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// Active tip height.
    pub height: u32,
    /// Active tip.
    pub tip: BlockHash,
    /// The active tip's header time (Unix seconds).
    pub tip_time: u32,
    /// Best known header height.
    pub headers: u32,
    /// Cumulative work of the active chain (expected hashes).
    pub chain_work: f64,
    /// Expected hashes to find a block at the tip's target.
    pub difficulty: f64,
    /// Transactions in the mempool.
    pub mempool_size: usize,
    /// Bytes of transactions in the mempool.
    pub mempool_bytes: usize,
    /// Whether we are catching up.
    pub syncing: bool,
    /// Connected peers.
    pub peers: usize,
    /// The last tip each peer showed: (height, hash).
    pub peer_tips: HashMap<PeerKey, (u32, BlockHash)>,
    /// Each connected peer's faults (timeouts, stalls, cut-off frames) and misbehaviour
    /// points, where it has any.
    pub peer_faults: HashMap<PeerKey, (u32, u32)>,
    /// The network's clock minus ours in seconds, when peers show it is off.
    pub clock_offset_secs: Option<i64>,
    /// Why the node stopped writing (a fatal local failure), and what to do.
    pub degraded: Option<String>,
    /// The assume-valid block and the blocks connected without signature checks.
    pub assume_valid: Option<(BlockHash, u64)>,
    /// The snapshot the node started from and how far its history is validated.
    pub snapshot: Option<SnapshotProgress>,
    /// Compact blocks by what it took to rebuild them.
    pub compact: CompactStats,
}

impl Core {
    /// The facts the API shows.
    pub fn snapshot(&self) -> Snapshot {
        let chain = self.ledger.chain();
        Snapshot {
            height: chain.height(),
            tip: chain.tip(),
            tip_time: chain.tip_entry().header.time,
            headers: chain.best_header().height,
            chain_work: f64::from(chain.tip_entry().chain_work),
            difficulty: crate::consensus::pow::difficulty(chain.tip_entry().header.bits),
            mempool_size: self.ledger.mempool().len(),
            mempool_bytes: self.ledger.mempool().bytes(),
            syncing: self.is_syncing(),
            peers: self.sync.peer_count(),
            peer_tips: self
                .sync
                .peer_tips()
                .map(|(p, t)| (p, (t.height, BlockHash(t.tip))))
                .collect(),
            peer_faults: self.scores.listed(),
            clock_offset_secs: self.clock.offset(self.now),
            degraded: self.ledger.halted().map(str::to_owned),
            assume_valid: chain.assume_valid(),
            snapshot: self.snapshot_progress(),
            compact: self.relay.stats(),
        }
    }
}
