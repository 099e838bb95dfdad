//! Orphan transactions: a child that arrives before its parent (gossip has no order) is
//! held here, bounded in number and age, and tried again when a transaction it spends
//! enters the mempool, as Bitcoin Core's orphan pool does.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::primitives::{Time, Transaction, Txid};

/// Most orphans held; the oldest goes first.
pub const MAX_ORPHANS: usize = 100;
/// How long an orphan waits for its parent.
pub const ORPHAN_TTL: Duration = Duration::from_secs(20 * 60);

/// Transactions waiting for a parent.
#[derive(Debug, Default)]
pub struct Orphans {
    /// txid -> (the transaction, when it came).
    held: BTreeMap<Txid, (Transaction, Time)>,
}

impl Orphans {
    /// Holds `tx` (an input's parent is unknown) at `now`, evicting expired orphans and,
    /// at the cap, the oldest.
    pub fn hold(&mut self, tx: Transaction, now: Time) {
        self.held.retain(|_, (_, at)| now.since(*at) < ORPHAN_TTL);
        while self.held.len() >= MAX_ORPHANS {
            let oldest = self.held.iter().min_by_key(|(_, (_, at))| *at).map(|(t, _)| *t);
            if let Some(t) = oldest {
                self.held.remove(&t);
            }
        }
        self.held.insert(tx.txid(), (tx, now));
    }

    /// Takes out the orphans that spend an output of `parent`, oldest first.
    pub fn children_of(&mut self, parent: &Txid) -> Vec<Transaction> {
        let mut ids: Vec<(Time, Txid)> = self
            .held
            .iter()
            .filter(|(_, (tx, _))| tx.inputs.iter().any(|i| i.prevout.txid == *parent))
            .map(|(t, (_, at))| (*at, *t))
            .collect();
        ids.sort();
        ids.into_iter().filter_map(|(_, t)| self.held.remove(&t)).map(|(tx, _)| tx).collect()
    }

    /// The orphans held.
    pub fn iter(&self) -> impl Iterator<Item = &Transaction> {
        self.held.values().map(|(tx, _)| tx)
    }

    /// Orphans held.
    pub fn len(&self) -> usize {
        self.held.len()
    }

    /// Whether none is held.
    pub fn is_empty(&self) -> bool {
        self.held.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::primitives::{OutPoint, TxIn, TxOut};

    fn child_of(parent: Txid, n: u8) -> Transaction {
        Transaction {
            version: 1,
            inputs: vec![TxIn { prevout: OutPoint { txid: parent, vout: 0 }, signature: [n; 64] }],
            outputs: vec![TxOut { value: u64::from(n), pubkey: [n; 32] }],
            lock_time: 0,
        }
    }

    const T0: Time = Time::from_secs(1_700_000_000);

    #[test]
    fn an_orphan_waits_for_its_parent_bounded_in_number_and_age() {
        let mut orphans = Orphans::default();
        let parent = Txid([1; 32]);
        orphans.hold(child_of(parent, 1), T0);
        assert!(orphans.children_of(&Txid([2; 32])).is_empty());
        assert_eq!(orphans.children_of(&parent).len(), 1);
        assert!(orphans.is_empty(), "taken out once its parent came");
        for n in 0..=MAX_ORPHANS as u8 {
            orphans.hold(child_of(Txid([n; 32]), n), T0 + Duration::from_secs(u64::from(n)));
        }
        assert_eq!(orphans.len(), MAX_ORPHANS);
        assert!(orphans.children_of(&Txid([0; 32])).is_empty(), "the oldest went first");
        orphans.hold(child_of(parent, 7), T0 + ORPHAN_TTL + Duration::from_secs(200));
        assert_eq!(orphans.len(), 1, "expired orphans are dropped");
    }
}
