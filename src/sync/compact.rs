//! The sync side of compact block relay: the requests for an announced block's compact
//! form and for its missing transactions, and what an announcement proves the announcer
//! has. What to make of them
//! is the core's (`core::compact`).

use super::{Ask, Kind, SyncManager};
use crate::chain::ChainState;
use crate::primitives::{BlockHash, PeerKey, Time};
use crate::protocol::SyncRequest;

impl SyncManager {
    /// Asks `peer`, which announced the header of `block`, for its compact form.
    pub fn ask_compact(&mut self, peer: PeerKey, block: BlockHash, now: Time) -> Ask {
        self.request(peer, Kind::Compact(block), SyncRequest::CompactBlock(block.0), now)
    }

    /// Block `hash` comes by compact relay (its header was announced and indexed): it is
    /// not downloaded whole until [`Self::unrelay`].
    pub fn relay(&mut self, hash: BlockHash) {
        self.relayed.insert(hash);
    }

    /// Block `hash` no longer comes by compact relay: taken, or to be fetched whole.
    pub fn unrelay(&mut self, hash: &BlockHash) {
        self.relayed.remove(hash);
    }

    /// A compact block arrived: the block it was asked for, if it answers an open request
    /// of ours for one.
    pub fn on_compact(&mut self, id: u64) -> Option<BlockHash> {
        match self.release(id)?.kind {
            Kind::Compact(block) => Some(block),
            _ => None,
        }
    }

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

    /// `peer` sent the compact form of block `hash`, whose header we took: it has taken
    /// every block up to it (a node serves only those), and is asked for the block as it
    /// would be after a header it sent.
    pub fn has_taken(
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

    /// `peer` announced the header of block `hash` but did not send its compact form: it
    /// claims the block (it may be fetching it still), and may be asked for it.
    pub fn claims(
        &mut self,
        peer: PeerKey,
        hash: BlockHash,
        chain: &ChainState,
        now: Time,
    ) -> Vec<Ask> {
        if let Some(p) = self.peers.get_mut(&peer) {
            // It has moved on since it last could not serve us: asked again.
            p.announced = Some(hash);
            p.cannot_serve_from = None;
            p.reach = None;
        }
        self.advance(chain, now)
    }
}
