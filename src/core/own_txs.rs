//! Our own API's transactions: announced again until they confirm, and the mempool kept
//! across a restart ([`crate::mempool::saved`]), ours marked so they are announced again.

use tracing::debug;

use super::{Core, NetAction, Output, REBROADCAST};
use crate::mempool::FeeEstimator;
use crate::mempool::saved::SavedTx;
use crate::primitives::Time;
use crate::protocol::GossipKind;

impl Core {
    /// The mempool as [`crate::mempool::saved`] keeps it across a restart: arrival order
    /// (parents first), our own API's transactions marked.
    pub fn saved_mempool(&self) -> Vec<SavedTx> {
        let pool = self.ledger.mempool();
        pool.txids_in_order(usize::MAX)
            .filter_map(|txid| pool.get(&txid))
            .map(|e| SavedTx { tx: e.tx.clone(), own: self.own_txs.contains_key(&e.txid) })
            .collect()
    }

    /// The fee estimator's statistics, saved beside the mempool.
    pub fn saved_fees(&self) -> &FeeEstimator {
        self.ledger.mempool().fee_estimator()
    }

    /// Takes saved fee statistics back; false when they count from another relay minimum.
    pub fn restore_fees(&mut self, fees: FeeEstimator) -> bool {
        self.ledger.restore_fee_estimator(fees)
    }

    /// Loads a saved mempool: each transaction validated again against the chain as it is
    /// now (those it confirmed or made invalid are dropped), ours announced again once
    /// peers have had time to connect (at the next [`REBROADCAST`] round). Returns how many
    /// were taken.
    pub fn restore_mempool(&mut self, saved: Vec<SavedTx>, now: Time) -> usize {
        let mut taken = 0;
        for SavedTx { tx, own } in saved {
            // What the chain confirmed or conflicts with is refused here, as it should be.
            let Ok(txid) = self.ledger.accept_tx(tx, &mut self.out) else { continue };
            taken += 1;
            if own {
                self.own_txs.insert(txid, now);
            }
        }
        // Nothing to gossip yet: no peer is connected before the node starts.
        self.out.retain(|o| !matches!(o, Output::Net(NetAction::Publish { .. })));
        taken
    }

    /// Announces again our own API's transactions still waiting in the mempool, every
    /// [`REBROADCAST`]; forgets those that left it (confirmed, or evicted).
    pub(super) fn rebroadcast(&mut self, now: Time) {
        let pool = self.ledger.mempool();
        self.own_txs.retain(|txid, _| pool.contains(txid));
        for (txid, last) in &mut self.own_txs {
            if now.since(*last) < REBROADCAST {
                continue;
            }
            *last = now;
            if let Some(e) = pool.get(txid) {
                debug!(%txid, "announcing our own unconfirmed transaction again");
                let data = crate::primitives::encode::serialize(&e.tx);
                self.out.push(Output::Net(NetAction::Publish { kind: GossipKind::Tx, data }));
            }
        }
    }
}
