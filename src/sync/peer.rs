//! What the sync knows of each peer: the tip it showed, what it can serve, what is in
//! flight to it and how fast its link is.

use super::link::{Link, batch_size};
use crate::primitives::{BlockHash, Time, Txid};
use crate::protocol::{ChainTip, LEGACY_BLOCKS_PER_REQUEST, MAX_BLOCKS_PER_REQUEST};

#[derive(Debug, Default)]
pub(super) struct PeerSync {
    pub(super) tip: Option<ChainTip>,
    pub(super) batches: usize,
    /// The last header this peer sent us: it has every block up to it.
    pub(super) sent_header: Option<BlockHash>,
    /// The last block whose header it announced on gossip: it claims the block, which it
    /// may still be fetching itself (so leaving it out is no offence).
    pub(super) announced: Option<BlockHash>,
    /// Lowest height it failed to serve without proof that it should have.
    pub(super) cannot_serve_from: Option<u32>,
    /// What it can serve on the best header chain, cached per best header.
    pub(super) reach: Option<(BlockHash, Reach)>,
    /// Parents of orphan blocks it gossiped, to be shown by its next headers.
    pub(super) orphan_parents: Vec<BlockHash>,
    /// Whether its mempool was asked for on this connection.
    pub(super) mempool_asked: bool,
    /// Mempool transactions it has that we lack, still to ask for.
    pub(super) txs_wanted: std::collections::VecDeque<Txid>,
    /// Transaction requests in flight to it.
    pub(super) tx_batches: usize,
    /// It stalled the download: no blocks are asked of it before this.
    pub(super) resting_until: Option<Time>,
    /// Its round trip and delivery rate, which set how many batches it gets.
    pub(super) link: Link,
    /// It refused a request of more than [`LEGACY_BLOCKS_PER_REQUEST`] blocks (a node of
    /// an older version): it is asked that many at a time.
    pub(super) legacy: bool,
}

impl PeerSync {
    /// Blocks per request to this peer, for blocks of `avg_bytes` on average.
    pub(super) fn batch_size(&self, avg_bytes: Option<f64>) -> usize {
        let max = if self.legacy { LEGACY_BLOCKS_PER_REQUEST } else { MAX_BLOCKS_PER_REQUEST };
        batch_size(avg_bytes, max)
    }

    /// Whether another blocks request may go to it now.
    pub(super) fn has_room(&self, avg_bytes: Option<f64>, now: Time) -> bool {
        self.batches < self.link.batches(self.batch_size(avg_bytes))
            && self.link.may_send(now)
            && self.resting_until.is_none_or(|t| now >= t)
    }
}

/// Orphan parents remembered per peer; older ones are dropped unjudged.
pub(super) const MAX_ORPHAN_CLAIMS: usize = 16;

/// How far along the best header chain a peer can serve blocks.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Reach {
    /// Highest height it claims (its tip height, unless it is on another branch).
    pub(super) claimed: u32,
    /// Highest height it provably has (its tip or a header it sent is on the chain).
    pub(super) proven: u32,
}
