//! The UTXO set written out as a snapshot ([`crate::snapshot`]), from one read transaction.

use std::io::{Read, Write};

use redb::{ReadableTable, ReadableTableMetadata, TableHandle};

use super::tables::{ADDR_INDEX, BLOCK_INDEX, META, META_SNAPSHOT, META_TIP, UTXOS};
use super::{Store, decode, owner_key};
use crate::consensus::genesis::genesis_hash;
use crate::primitives::encode::serialize;
use crate::primitives::{BlockHash, Coin, OutPoint};
use crate::snapshot::{SnapshotError, SnapshotInfo, SnapshotWriter};
use crate::storage::{ChainStore, IndexEntry, SnapshotBase, StorageError};

impl Store {
    /// Writes the UTXO set at the stored tip to `out` as a snapshot; returns what it is of
    /// and its hash. The tip and the coins are read in one transaction, so they agree
    /// even while the node goes on connecting blocks. While catching up, the stored tip
    /// is the last durable one, a little behind the chain in memory.
    ///
    /// # Errors
    /// [`SnapshotError::Store`] if the database fails, [`SnapshotError::Io`] if `out`
    /// does.
    pub fn write_snapshot<W: Write>(
        &self,
        out: W,
    ) -> Result<(SnapshotInfo, BlockHash, W), SnapshotError> {
        let txn = self.read()?;
        let meta = txn.open_table(META).map_err(StorageError::from)?;
        let tip = meta.get(META_TIP).map_err(StorageError::from)?;
        let tip = tip
            .and_then(|v| <[u8; 32]>::try_from(v.value()).ok())
            .map(BlockHash)
            .ok_or(StorageError::Inconsistent("no tip"))?;
        let index = txn.open_table(BLOCK_INDEX).map_err(StorageError::from)?;
        let entry = index.get(&tip.0).map_err(StorageError::from)?;
        let entry: IndexEntry = match entry {
            Some(v) => decode("block_index", v.value())?,
            None => return Err(StorageError::Inconsistent("tip not in the index").into()),
        };
        let utxos = txn.open_table(UTXOS).map_err(StorageError::from)?;
        let count = utxos.len().map_err(StorageError::from)?;
        let info =
            SnapshotInfo { network: self.network, block: tip, height: entry.height, coins: count };
        let mut writer = SnapshotWriter::new(out, info)?;
        for item in utxos.iter().map_err(StorageError::from)? {
            let (key, value) = item.map_err(StorageError::from)?;
            let coin: Coin = decode(UTXOS.name(), value.value())?;
            writer.coin(&OutPoint::from_bytes(key.value()), &coin)?;
        }
        let (hash, out) = writer.finish()?;
        Ok((info, hash, out))
    }
}

impl Store {
    /// Loads the snapshot read from `input` into this store, which holds nothing but the
    /// genesis block: its coins become the UTXO set (and the address index) and its base
    /// is recorded, in one durable write that commits only once the whole file checked
    /// out against `expected`; anything wrong leaves the store as it was. The tip stays
    /// at genesis until the chain adopts the base, when its header arrives.
    ///
    /// # Errors
    /// [`SnapshotError::NotEmpty`] if the store holds a chain already, the reader's errors
    /// for a file that is not the expected snapshot of this network, `Store` if the
    /// database fails.
    pub fn load_snapshot(
        &self,
        input: impl Read,
        expected: &BlockHash,
    ) -> Result<SnapshotInfo, SnapshotError> {
        let fresh = self.tip()? == Some(genesis_hash(self.network))
            && self.snapshot_base()?.is_none()
            && self.utxo_count()? == 0;
        if !fresh {
            return Err(SnapshotError::NotEmpty(self.location()));
        }
        let txn = self.db.begin_write()?;
        let info = {
            let mut utxos = txn.open_table(UTXOS).map_err(StorageError::from)?;
            let mut owners = txn.open_table(ADDR_INDEX).map_err(StorageError::from)?;
            let mut failed: Option<StorageError> = None;
            let read = crate::snapshot::read(input, self.network, Some(expected), |op, coin| {
                if failed.is_some() {
                    return;
                }
                let value = serialize(&coin);
                let put = utxos.insert(&op.to_bytes(), value.as_slice()).and_then(|_| {
                    owners.insert(&owner_key(&coin.output.pubkey, &op), value.as_slice())
                });
                if let Err(e) = put {
                    failed = Some(e.into());
                }
            });
            if let Some(e) = failed {
                return Err(e.into());
            }
            let (info, hash) = read?;
            let base =
                SnapshotBase { block: info.block, height: info.height, hash, validated: false };
            let mut meta = txn.open_table(META).map_err(StorageError::from)?;
            meta.insert(META_SNAPSHOT, base.to_bytes().as_slice()).map_err(StorageError::from)?;
            info
        };
        txn.commit().map_err(StorageError::from)?;
        Ok(info)
    }
}

#[cfg(test)]
mod tests {
    use crate::chain::ChainState;
    use crate::consensus::Network;
    use crate::db::Store;
    use crate::primitives::{BlockHash, Coin, OutPoint};
    use crate::storage::ChainStore;
    use crate::testkit::extend;

    /// A store holding a chain of 5 blocks, block `i` paying `[i; 32]`, and the chain.
    fn five_blocks() -> (Store, ChainState) {
        let store = Store::in_memory(Network::Regtest).unwrap();
        let mut chain = ChainState::open(store.clone()).unwrap();
        for i in 1..=5 {
            extend(&mut chain, vec![], [i; 32]);
        }
        (store, chain)
    }

    #[test]
    fn a_snapshot_holds_the_stored_utxo_set_at_the_stored_tip() {
        let (store, mut chain) = five_blocks();
        let (info, hash, bytes) = store.write_snapshot(Vec::new()).unwrap();
        assert_eq!((info.block, info.height), (chain.tip(), 5));
        let mut stored: Vec<(OutPoint, Coin)> = Vec::new();
        store.for_each_coin(&mut |op, c| stored.push((op, c))).unwrap();
        assert_eq!(info.coins, stored.len() as u64);
        let mut read = Vec::new();
        let (again, read_hash) =
            crate::snapshot::read(&bytes[..], Network::Regtest, Some(&hash), |op, c| {
                read.push((op, c))
            })
            .unwrap();
        assert_eq!((again, read_hash), (info, hash));
        assert_eq!(read, stored);
        // The same set makes the same file; one more block makes another.
        assert_eq!(store.write_snapshot(Vec::new()).unwrap().2, bytes);
        extend(&mut chain, vec![], [9; 32]);
        assert_ne!(store.write_snapshot(Vec::new()).unwrap().1, hash);
    }

    #[test]
    fn a_snapshot_loads_into_a_fresh_store_as_the_same_coins_and_address_index() {
        let (source, chain) = five_blocks();
        let (info, hash, bytes) = source.write_snapshot(Vec::new()).unwrap();
        let fresh = || {
            let store = Store::in_memory(Network::Regtest).unwrap();
            drop(ChainState::open(store.clone()).unwrap());
            store
        };
        // Another hash: refused, and nothing written.
        let other = fresh();
        let err = other.load_snapshot(&bytes[..], &BlockHash([1; 32])).unwrap_err();
        assert!(matches!(err, crate::snapshot::SnapshotError::WrongHash { .. }), "{err}");
        assert_eq!((other.utxo_count().unwrap(), other.snapshot_base().unwrap()), (0, None));
        // The trusted hash: the same coins, the same owners' index, the base recorded.
        let store = fresh();
        assert_eq!(store.load_snapshot(&bytes[..], &hash).unwrap(), info);
        let coins = |s: &Store| {
            let mut out: Vec<(OutPoint, Coin)> = Vec::new();
            s.for_each_coin(&mut |op, c| out.push((op, c))).unwrap();
            out
        };
        assert_eq!(coins(&store), coins(&source));
        assert_eq!(store.check_addr_index().unwrap(), None);
        assert_eq!(store.coins_of(&[3; 32]).unwrap(), source.coins_of(&[3; 32]).unwrap());
        let base = store.snapshot_base().unwrap().unwrap();
        assert_eq!(
            (base.block, base.height, base.hash, base.validated),
            (info.block, 5, hash, false)
        );
        // Only into an empty store: not twice, not over a chain.
        assert!(matches!(
            store.load_snapshot(&bytes[..], &hash),
            Err(crate::snapshot::SnapshotError::NotEmpty(_))
        ));
        assert!(matches!(
            source.load_snapshot(&bytes[..], &hash),
            Err(crate::snapshot::SnapshotError::NotEmpty(_))
        ));
        // A chain opened on it waits for the base's header, then stands on it.
        let mut from = ChainState::open(store).unwrap();
        assert!(from.awaiting_snapshot_base());
        assert!(from.missing_blocks(10).is_empty(), "nothing is fetched below the base");
        let headers: Vec<_> = (1..=5).filter_map(|h| chain.best_chain_header(h)).collect();
        let (accepted, refused) = from.accept_headers(&headers, crate::testkit::CLOCK);
        assert_eq!((accepted.len(), refused.map(|e| e.to_string())), (5, None));
        assert!(!from.awaiting_snapshot_base());
        assert_eq!((from.height(), from.tip()), (5, chain.tip()));
        // It goes on above the base like any chain.
        let next = crate::testkit::block_on(&chain, chain.tip(), vec![], [9; 32]);
        from.accept_block(next.clone(), crate::testkit::CLOCK).unwrap();
        assert_eq!(from.tip(), next.block_hash());
    }
}
