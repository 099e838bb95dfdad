//! The UTXO set written out as a snapshot ([`crate::snapshot`]), from one read transaction.

use std::io::Write;

use redb::{ReadableTable, ReadableTableMetadata, TableHandle};

use super::tables::{BLOCK_INDEX, META, META_TIP, UTXOS};
use super::{Store, decode};
use crate::primitives::{BlockHash, Coin, OutPoint};
use crate::snapshot::{SnapshotError, SnapshotInfo, SnapshotWriter};
use crate::storage::{IndexEntry, StorageError};

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

#[cfg(test)]
mod tests {
    use crate::chain::ChainState;
    use crate::consensus::Network;
    use crate::db::Store;
    use crate::primitives::{Coin, OutPoint};
    use crate::storage::ChainStore;
    use crate::testkit::extend;

    #[test]
    fn a_snapshot_holds_the_stored_utxo_set_at_the_stored_tip() {
        let store = Store::in_memory(Network::Regtest).unwrap();
        let mut chain = ChainState::open(store.clone()).unwrap();
        for i in 1..=5 {
            extend(&mut chain, vec![], [i; 32]);
        }
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
}
