//! Mempool reconciliation: once caught up with a peer, its mempool's txids are asked for
//! (once per connection) and what we lack is fetched, a few batches at a time.

use tracing::debug;

use super::{Ask, Kind, SyncFault, SyncManager};
use crate::primitives::{PeerKey, Time, Txid};
use crate::protocol::{MAX_MEMPOOL_TXIDS, MAX_TXS_PER_REQUEST, SyncRequest};

/// Mempool transaction requests one peer may have in flight while mempools reconcile.
pub const MAX_TX_BATCHES_PER_PEER: usize = 2;

impl SyncManager {
    /// Asks `peer` for its mempool's txids, once per connection (the caller asks when we
    /// are caught up: before that, its transactions could not be placed).
    pub fn ask_mempool(&mut self, peer: PeerKey, now: Time) -> Option<Ask> {
        let state = self.peers.get_mut(&peer)?;
        if std::mem::replace(&mut state.mempool_asked, true) {
            return None;
        }
        Some(self.request(peer, Kind::Mempool, SyncRequest::Mempool, now))
    }

    /// A peer's mempool txids arrived: those `missing` says we lack are asked for, a few
    /// batches at a time.
    ///
    /// # Errors
    /// [`SyncFault::TooManyTxids`] if the answer is over the limit,
    /// [`SyncFault::UnaskedAnswer`] if the request was not for txids.
    pub fn on_txids(
        &mut self,
        id: u64,
        txids: &[[u8; 32]],
        missing: impl Fn(&Txid) -> bool,
        now: Time,
    ) -> Result<Vec<Ask>, SyncFault> {
        let Some(pending) = self.release(id) else { return Ok(Vec::new()) };
        if !matches!(pending.kind, Kind::Mempool) {
            return Err(SyncFault::UnaskedAnswer);
        }
        if txids.len() > MAX_MEMPOOL_TXIDS {
            return Err(SyncFault::TooManyTxids(txids.len()));
        }
        let peer = pending.peer;
        if let Some(state) = self.peers.get_mut(&peer) {
            let wanted: Vec<Txid> = txids.iter().map(|t| Txid(*t)).filter(|t| missing(t)).collect();
            debug!(%peer, offered = txids.len(), wanted = wanted.len(), "peer's mempool");
            state.txs_wanted.extend(wanted);
        }
        Ok(self.next_tx_asks(peer, now))
    }

    /// Mempool transactions arrived: returns the txids asked (anything else is
    /// unsolicited). The caller hands them to the mempool, then calls
    /// [`Self::next_tx_asks`].
    pub fn on_txs(&mut self, id: u64) -> Option<Vec<Txid>> {
        match self.release(id)?.kind {
            Kind::Txs(txids) => Some(txids),
            _ => None,
        }
    }

    /// The next transaction requests to `peer`, while it has what we lack.
    pub fn next_tx_asks(&mut self, peer: PeerKey, now: Time) -> Vec<Ask> {
        let mut out = Vec::new();
        while let Some(state) = self.peers.get_mut(&peer)
            && state.tx_batches < MAX_TX_BATCHES_PER_PEER
            && !state.txs_wanted.is_empty()
        {
            let take = state.txs_wanted.len().min(MAX_TXS_PER_REQUEST);
            let batch: Vec<Txid> = state.txs_wanted.drain(..take).collect();
            state.tx_batches += 1;
            let req = SyncRequest::Txs(batch.iter().map(|t| t.0).collect());
            out.push(self.request(peer, Kind::Txs(batch), req, now));
        }
        out
    }
}
