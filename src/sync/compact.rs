//! The sync side of compact block relay: the request for a compact block's missing
//! transactions, and what an announcement proves the announcer has. What to make of them
//! is the core's (`core::compact`).

use super::{Ask, Kind, SyncManager};
use crate::chain::ChainState;
use crate::primitives::{BlockHash, PeerKey, Time};
use crate::protocol::SyncRequest;

impl SyncManager {
    /// Asks `peer`, which announced a compact block, for the transactions of it at
    /// `indexes`.
    pub fn ask_block_txs(
        &mut self,
        peer: PeerKey,
        block: BlockHash,
        indexes: Vec<u32>,
        now: Time,
    ) -> Ask {
        let req = SyncRequest::BlockTxs { block: block.0, indexes };
        self.request(peer, Kind::BlockTxs(block), req, now)
    }

    /// Transactions of a block arrived: the block they were asked of, if they answer an
    /// open request of ours for them.
    pub fn on_block_txs(&mut self, id: u64) -> Option<BlockHash> {
        match self.release(id)?.kind {
            Kind::BlockTxs(block) => Some(block),
            _ => None,
        }
    }

    /// `peer` announced the block `hash` (a compact block whose header we took): it has
    /// every block up to it, and is asked for the block as it would be after a header it
    /// sent.
    pub fn announced(
        &mut self,
        peer: PeerKey,
        hash: BlockHash,
        chain: &ChainState,
        now: Time,
    ) -> Vec<Ask> {
        if let Some(p) = self.peers.get_mut(&peer) {
            p.sent_header = Some(hash);
            p.reach = None;
        }
        self.advance(chain, now)
    }
}
