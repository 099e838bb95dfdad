//! Persistence on redb: the only module that imports redb.
//!
//! Every state transition is one write transaction: the UTXO changes of a block, its undo
//! data, the height index and the tip move together, so the stored tip never points past
//! the stored UTXO set. A crash at any moment leaves the last committed tip and its UTXO
//! set; a restart resumes there without replaying anything.

mod error;
pub mod tables;

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use redb::backends::InMemoryBackend;
use redb::{
    Database, ReadTransaction, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableHandle,
};

pub use error::StoreError;
use tables::*;

use crate::consensus::Network;
use crate::primitives::encode::{Decode, deserialize, serialize};
use crate::primitives::{Block, BlockHash, Coin, OutPoint, Txid};
use crate::storage::{BlockUndo, ChainStore, ChainWrite, IndexEntry, Step, StorageError, UtxoView};

/// redb's page cache. Its 1 GiB default made a syncing node's memory grow with the chain
/// it writes; the working set (UTXO set, index pages, recent blocks) fits in far less.
pub const CACHE_BYTES: usize = 64 * 1024 * 1024;

/// The redb database of one network. Clones share the database: readers see consistent
/// snapshots and never block the writer.
#[derive(Clone)]
pub struct Store {
    db: Arc<Database>,
    network: Network,
}

/// Opens an existing database file without ever changing a damaged one. A read-only open
/// first tells the three cases apart: a clean file opens normally; a file that needs
/// crash recovery (redb's repair rewrites it) is repaired with a copy kept beside it until
/// the repair succeeds, so a failed repair puts the original bytes back; anything else
/// (truncated, garbage, locked by another node) is refused untouched.
fn open_file(path: &Path, network: Option<Network>) -> Result<Database, StoreError> {
    let builder = || {
        let mut b = Database::builder();
        b.set_cache_size(CACHE_BYTES);
        b
    };
    match redb::ReadOnlyDatabase::open(path) {
        // A foreign file is refused here, before a writable open touches its header.
        Ok(db) => {
            if let Some(network) = network {
                let txn = db.begin_read()?;
                match txn.open_table(META) {
                    Ok(meta) => {
                        let stored = meta.get(META_NETWORK)?.map(|v| v.value().to_vec());
                        let schema = meta.get(META_SCHEMA)?.map(|v| v.value().to_vec());
                        check_meta(stored.as_deref(), schema.as_deref(), network)?;
                    }
                    Err(redb::TableError::TableDoesNotExist(_)) => {}
                    Err(e) => return Err(e.into()),
                }
            }
        }
        Err(redb::DatabaseError::RepairAborted) => {
            let backup = path.with_extension("redb.before-repair");
            let io = |error| StoreError::Io { path: backup.clone(), error };
            std::fs::copy(path, &backup).map_err(io)?;
            return match builder().open(path) {
                Ok(db) => {
                    // The repaired file is whole; the copy has served its purpose.
                    let _ = std::fs::remove_file(&backup);
                    Ok(db)
                }
                Err(e) => {
                    std::fs::rename(&backup, path).map_err(io)?;
                    Err(e.into())
                }
            };
        }
        Err(e) => return Err(e.into()),
    }
    Ok(builder().open(path)?)
}

/// Checks a database's recorded network and schema against `network`. Returns true if
/// none is recorded yet (a new database, to be stamped).
fn check_meta(
    stored_network: Option<&[u8]>,
    stored_schema: Option<&[u8]>,
    network: Network,
) -> Result<bool, StoreError> {
    match stored_network {
        None => Ok(true),
        Some(found) if found != network.as_str().as_bytes() => Err(StoreError::WrongNetwork {
            found: String::from_utf8_lossy(found).into_owned(),
            expected: network,
        }),
        Some(_) => {
            let found = stored_schema.and_then(|v| v.try_into().ok()).map_or(0, u32::from_le_bytes);
            if found == SCHEMA_VERSION {
                Ok(false)
            } else {
                Err(StoreError::SchemaVersion { found, expected: SCHEMA_VERSION })
            }
        }
    }
}

impl Store {
    /// Opens (or creates) the database at `path` for `network`.
    ///
    /// # Errors
    /// [`StoreError::WrongNetwork`] / [`StoreError::SchemaVersion`] for a foreign file,
    /// [`StoreError::Db`] for I/O errors, a corrupt file or a file locked by another node.
    pub fn open(path: &Path, network: Network) -> Result<Self, StoreError> {
        let db = if path.exists() {
            open_file(path, Some(network))?
        } else {
            Database::builder().set_cache_size(CACHE_BYTES).create(path)?
        };
        Self::init(db, network)
    }

    /// Opens an existing database, whatever its network; never creates one.
    ///
    /// # Errors
    /// [`StoreError::Db`] if there is no database at `path` or it cannot be read,
    /// [`StoreError::UnknownNetwork`] if it records no known network.
    pub fn open_existing(path: &Path) -> Result<Self, StoreError> {
        if !path.is_file() {
            return Err(StoreError::NotFound(path.to_path_buf()));
        }
        let db = open_file(path, None)?;
        let name = {
            let txn = db.begin_read()?;
            let meta = txn.open_table(META)?;
            let value = meta.get(META_NETWORK)?.map(|v| v.value().to_vec());
            String::from_utf8_lossy(&value.unwrap_or_default()).into_owned()
        };
        let network =
            name.parse::<Network>().map_err(|_| StoreError::UnknownNetwork(name.clone()))?;
        Self::init(db, network)
    }

    /// A database in memory, for tests.
    ///
    /// # Errors
    /// [`StoreError::Db`] if redb cannot initialise it.
    pub fn in_memory(network: Network) -> Result<Self, StoreError> {
        let db = Database::builder().create_with_backend(InMemoryBackend::new())?;
        Self::init(db, network)
    }

    fn init(db: Database, network: Network) -> Result<Self, StoreError> {
        let txn = db.begin_write()?;
        {
            let mut meta = txn.open_table(META)?;
            let stored_network = meta.get(META_NETWORK)?.map(|v| v.value().to_vec());
            let stored_schema = meta.get(META_SCHEMA)?.map(|v| v.value().to_vec());
            if check_meta(stored_network.as_deref(), stored_schema.as_deref(), network)? {
                meta.insert(META_NETWORK, network.as_str().as_bytes())?;
                meta.insert(META_SCHEMA, SCHEMA_VERSION.to_le_bytes().as_slice())?;
            }
            // Create every table so readers never meet a missing one.
            txn.open_table(BLOCK_INDEX)?;
            txn.open_table(BLOCKS)?;
            txn.open_table(HEIGHTS)?;
            txn.open_table(UTXOS)?;
            txn.open_table(UNDO)?;
            txn.open_table(TX_INDEX)?;
            txn.open_table(ADDR_INDEX)?;
        }
        txn.commit()?;
        Ok(Self { db: Arc::new(db), network })
    }

    /// The network this database belongs to.
    pub fn network(&self) -> Network {
        self.network
    }

    fn read(&self) -> Result<ReadTransaction, StoreError> {
        Ok(self.db.begin_read()?)
    }

    /// Hash of the stored active tip, `None` for a fresh database.
    ///
    /// # Errors
    /// [`StoreError`] on read failure.
    pub fn tip(&self) -> Result<Option<BlockHash>, StoreError> {
        let txn = self.read()?;
        let meta = txn.open_table(META)?;
        let tip = meta.get(META_TIP)?.map(|v| v.value().to_vec());
        match tip {
            None => Ok(None),
            Some(bytes) => bytes
                .try_into()
                .map(|b| Some(BlockHash(b)))
                .map_err(|_| StoreError::Inconsistent("tip is not 32 bytes")),
        }
    }

    /// Every block index entry.
    ///
    /// # Errors
    /// [`StoreError`] on read failure or a corrupt entry.
    pub fn load_index(&self) -> Result<Vec<IndexEntry>, StoreError> {
        let txn = self.read()?;
        let table = txn.open_table(BLOCK_INDEX)?;
        let mut out = Vec::with_capacity(table.len()? as usize);
        for item in table.iter()? {
            let (_, value) = item?;
            out.push(decode(BLOCK_INDEX.name(), value.value())?);
        }
        Ok(out)
    }

    /// The block with `hash`, if its data is stored.
    ///
    /// # Errors
    /// [`StoreError`] on read failure or a corrupt block.
    pub fn block(&self, hash: &BlockHash) -> Result<Option<Block>, StoreError> {
        self.get_decoded(BLOCKS, "blocks", &hash.0)
    }

    /// The undo data of an active-chain block.
    ///
    /// # Errors
    /// [`StoreError`] on read failure or corrupt data.
    pub fn undo(&self, hash: &BlockHash) -> Result<Option<BlockUndo>, StoreError> {
        self.get_decoded(UNDO, "undo", &hash.0)
    }

    fn get_decoded<T: Decode>(
        &self,
        def: redb::TableDefinition<'static, &'static [u8; 32], &'static [u8]>,
        name: &'static str,
        key: &[u8; 32],
    ) -> Result<Option<T>, StoreError> {
        let txn = self.read()?;
        let table = txn.open_table(def)?;
        let value = table.get(key)?;
        value.map(|v| decode(name, v.value())).transpose()
    }

    /// The active-chain block hash at `height`.
    ///
    /// # Errors
    /// [`StoreError`] on read failure.
    pub fn hash_at(&self, height: u32) -> Result<Option<BlockHash>, StoreError> {
        let txn = self.read()?;
        let table = txn.open_table(HEIGHTS)?;
        Ok(table.get(height)?.map(|v| BlockHash(*v.value())))
    }

    /// A consistent read view of the UTXO set.
    ///
    /// # Errors
    /// [`StoreError`] if no read transaction can be started.
    pub fn utxo_reader(&self) -> Result<UtxoReader, StoreError> {
        let txn = self.read()?;
        Ok(UtxoReader { table: txn.open_table(UTXOS)? })
    }

    /// Applies a state transition in ONE write transaction: block data, index entries,
    /// every connect and disconnect (UTXO set, address index, undo data, heights, tx
    /// index) and the tip. Durable (fsync) when the write says so.
    ///
    /// # Errors
    /// [`StoreError`] on write failure; nothing is written then.
    pub fn write(&self, write: &ChainWrite) -> Result<(), StoreError> {
        if write.is_empty() {
            return Ok(());
        }
        let mut txn = self.db.begin_write()?;
        if !write.durable {
            // What a crash loses (headers, side-branch blocks, blocks connected while
            // catching up) is fetched again, and redb makes the next durable commit cover
            // this one too.
            txn.set_durability(redb::Durability::None)?;
        }
        {
            let mut blocks = txn.open_table(BLOCKS)?;
            for block in &write.blocks {
                blocks.insert(&block.block_hash().0, serialize(block.as_ref()).as_slice())?;
            }
            let mut index = txn.open_table(BLOCK_INDEX)?;
            for entry in &write.index {
                index.insert(&entry.hash().0, serialize(entry).as_slice())?;
            }
            let mut tables = StepTables {
                utxos: txn.open_table(UTXOS)?,
                by_owner: txn.open_table(ADDR_INDEX)?,
                undo: txn.open_table(UNDO)?,
                heights: txn.open_table(HEIGHTS)?,
                txs: txn.open_table(TX_INDEX)?,
            };
            for step in &write.steps {
                tables.apply(step)?;
            }
            tables.apply_utxos(&write.steps)?;
            if let Some(tip) = write.tip {
                txn.open_table(META)?.insert(META_TIP, tip.0.as_slice())?;
            }
        }
        Ok(txn.commit()?)
    }

    /// Calls `f` for every coin in the UTXO set, in outpoint order.
    ///
    /// # Errors
    /// [`StoreError`] on read failure or a corrupt entry.
    pub fn for_each_coin(&self, mut f: impl FnMut(OutPoint, Coin)) -> Result<(), StoreError> {
        let txn = self.read()?;
        let table = txn.open_table(UTXOS)?;
        for item in table.iter()? {
            let (key, value) = item?;
            f(OutPoint::from_bytes(key.value()), decode(UTXOS.name(), value.value())?);
        }
        Ok(())
    }

    /// The index entry of `hash`.
    ///
    /// # Errors
    /// [`StoreError`] on read failure or a corrupt entry.
    pub fn index_entry(&self, hash: &BlockHash) -> Result<Option<IndexEntry>, StoreError> {
        let txn = self.read()?;
        let table = txn.open_table(BLOCK_INDEX)?;
        let value = table.get(&hash.0)?;
        value.map(|v| decode("block_index", v.value())).transpose()
    }

    /// Where an active-chain transaction is: its block and position.
    ///
    /// # Errors
    /// [`StoreError`] on read failure.
    pub fn tx_location(&self, txid: &Txid) -> Result<Option<(BlockHash, u32)>, StoreError> {
        let txn = self.read()?;
        let table = txn.open_table(TX_INDEX)?;
        Ok(table.get(&txid.0)?.map(|v| {
            let loc = v.value();
            let mut hash = [0u8; 32];
            hash.copy_from_slice(&loc[..32]);
            (BlockHash(hash), u32::from_le_bytes([loc[32], loc[33], loc[34], loc[35]]))
        }))
    }

    /// Every unspent coin locked to `pubkey`, in outpoint order.
    ///
    /// # Errors
    /// [`StoreError`] on read failure or a corrupt entry.
    pub fn coins_of(&self, pubkey: &[u8; 32]) -> Result<Vec<(OutPoint, Coin)>, StoreError> {
        let txn = self.read()?;
        let table = txn.open_table(ADDR_INDEX)?;
        let mut low = [0u8; 68];
        low[..32].copy_from_slice(pubkey);
        let mut high = [0xffu8; 68];
        high[..32].copy_from_slice(pubkey);
        let mut out = Vec::new();
        for item in table.range::<&[u8; 68]>(&low..=&high)? {
            let (key, value) = item?;
            let mut op = [0u8; 36];
            op.copy_from_slice(&key.value()[32..]);
            out.push((OutPoint::from_bytes(&op), decode("addr_index", value.value())?));
        }
        Ok(out)
    }

    /// Checks that the address index holds exactly the UTXO set. Returns the first
    /// discrepancy found, if any.
    ///
    /// # Errors
    /// [`StoreError`] on read failure.
    pub fn check_addr_index(&self) -> Result<Option<AddrIndexMismatch>, StoreError> {
        let txn = self.read()?;
        let utxos = txn.open_table(UTXOS)?;
        let index = txn.open_table(ADDR_INDEX)?;
        if utxos.len()? != index.len()? {
            return Ok(Some(AddrIndexMismatch::Count {
                coins: utxos.len()?,
                entries: index.len()?,
            }));
        }
        for item in index.iter()? {
            let (key, value) = item?;
            let mut op = [0u8; 36];
            op.copy_from_slice(&key.value()[32..]);
            let coin: Coin = decode("addr_index", value.value())?;
            let stored = utxos.get(&op)?.map(|v| v.value().to_vec());
            let owner_ok = key.value()[..32] == coin.output.pubkey;
            if !owner_ok || stored.as_deref() != Some(value.value()) {
                return Ok(Some(AddrIndexMismatch::Entry(OutPoint::from_bytes(&op))));
            }
        }
        Ok(None)
    }

    /// Number of coins in the UTXO set.
    ///
    /// # Errors
    /// [`StoreError`] on read failure.
    pub fn utxo_count(&self) -> Result<u64, StoreError> {
        Ok(self.read()?.open_table(UTXOS)?.len()?)
    }
}

/// How the address index disagrees with the UTXO set.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddrIndexMismatch {
    /// Different numbers of entries.
    #[error("{coins} coins but {entries} address index entries")]
    Count {
        /// Coins in the UTXO set.
        coins: u64,
        /// Entries in the address index.
        entries: u64,
    },
    /// An entry whose coin or owner differs from the UTXO set.
    #[error("address index entry {0} does not match the UTXO set")]
    Entry(OutPoint),
}

/// Key of the address index: the owner's key, then the outpoint.
fn owner_key(pubkey: &[u8; 32], op: &OutPoint) -> [u8; 68] {
    let mut key = [0u8; 68];
    key[..32].copy_from_slice(pubkey);
    key[32..].copy_from_slice(&op.to_bytes());
    key
}

/// The tables a connect or disconnect touches, open in one write transaction.
struct StepTables<'t> {
    utxos: redb::Table<'t, &'static [u8; 36], &'static [u8]>,
    by_owner: redb::Table<'t, &'static [u8; 68], &'static [u8]>,
    undo: redb::Table<'t, &'static [u8; 32], &'static [u8]>,
    heights: redb::Table<'t, u32, &'static [u8; 32]>,
    txs: redb::Table<'t, &'static [u8; 32], &'static [u8; 36]>,
}

impl StepTables<'_> {
    /// Everything of a step but its UTXO changes (see [`Self::apply_utxos`]).
    fn apply(&mut self, step: &Step) -> Result<(), StoreError> {
        match step {
            Step::Connect { hash, height, undo, txids, .. } => {
                self.undo.insert(&hash.0, serialize(undo).as_slice())?;
                self.heights.insert(*height, &hash.0)?;
                for (pos, txid) in txids.iter().enumerate() {
                    let mut loc = [0u8; 36];
                    loc[..32].copy_from_slice(&hash.0);
                    loc[32..].copy_from_slice(&(pos as u32).to_le_bytes());
                    self.txs.insert(&txid.0, &loc)?;
                }
            }
            Step::Disconnect { hash, height, txids, .. } => {
                self.undo.remove(&hash.0)?;
                self.heights.remove(*height)?;
                for txid in txids {
                    self.txs.remove(&txid.0)?;
                }
            }
        }
        Ok(())
    }

    /// The UTXO changes of all `steps` together: a coin created and spent within them
    /// (common while catching up, where one write carries a run of blocks) never reaches
    /// the tables, and what does is written in key order.
    fn apply_utxos(&mut self, steps: &[Step]) -> Result<(), StoreError> {
        // Outpoint -> (its coin, whether it is unspent after the steps). An outpoint
        // always holds the same coin (its txid commits to the output), so the last word
        // on it decides.
        let mut net: HashMap<OutPoint, (Coin, bool)> = HashMap::new();
        for step in steps {
            let (Step::Connect { diff, .. } | Step::Disconnect { diff, .. }) = step;
            net.extend(diff.spent.iter().map(|(op, coin)| (*op, (*coin, false))));
            net.extend(diff.created.iter().map(|(op, coin)| (*op, (*coin, true))));
        }
        let mut net: Vec<(OutPoint, Coin, bool)> =
            net.into_iter().map(|(op, (coin, unspent))| (op, coin, unspent)).collect();
        net.sort_by_cached_key(|(op, ..)| op.to_bytes());
        for (op, coin, unspent) in &net {
            if *unspent {
                self.utxos.insert(&op.to_bytes(), serialize(coin).as_slice())?;
            } else {
                self.utxos.remove(&op.to_bytes())?;
            }
        }
        net.sort_by_cached_key(|(op, coin, _)| owner_key(&coin.output.pubkey, op));
        for (op, coin, unspent) in &net {
            let key = owner_key(&coin.output.pubkey, op);
            if *unspent {
                self.by_owner.insert(&key, serialize(coin).as_slice())?;
            } else {
                self.by_owner.remove(&key)?;
            }
        }
        Ok(())
    }
}

impl ChainStore for Store {
    fn network(&self) -> Network {
        self.network
    }

    fn tip(&self) -> Result<Option<BlockHash>, StorageError> {
        Ok(Store::tip(self)?)
    }

    fn load_index(&self) -> Result<Vec<IndexEntry>, StorageError> {
        Ok(Store::load_index(self)?)
    }

    fn hash_at(&self, height: u32) -> Result<Option<BlockHash>, StorageError> {
        Ok(Store::hash_at(self, height)?)
    }

    fn block(&self, hash: &BlockHash) -> Result<Option<Block>, StorageError> {
        Ok(Store::block(self, hash)?)
    }

    fn undo(&self, hash: &BlockHash) -> Result<Option<BlockUndo>, StorageError> {
        Ok(Store::undo(self, hash)?)
    }

    fn utxos(&self) -> Result<Box<dyn UtxoView + '_>, StorageError> {
        Ok(Box::new(self.utxo_reader()?))
    }

    fn for_each_coin(&self, f: &mut dyn FnMut(OutPoint, Coin)) -> Result<(), StorageError> {
        Ok(Store::for_each_coin(self, f)?)
    }

    fn apply(&self, write: &ChainWrite) -> Result<(), StorageError> {
        Ok(self.write(write)?)
    }
}

/// A read transaction over the UTXO table.
pub struct UtxoReader {
    table: redb::ReadOnlyTable<&'static [u8; 36], &'static [u8]>,
}

impl UtxoView for UtxoReader {
    fn coin(&self, outpoint: &OutPoint) -> Result<Option<Coin>, StorageError> {
        let value = self.table.get(&outpoint.to_bytes()).map_err(StoreError::from)?;
        Ok(value.map(|v| decode(UTXOS.name(), v.value())).transpose()?)
    }
}

fn decode<T: Decode>(table: &'static str, bytes: &[u8]) -> Result<T, StoreError> {
    deserialize(bytes).map_err(|error| StoreError::Corrupt { table, error })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_database_of_another_network_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("chain.redb");
        drop(Store::open(&path, Network::Regtest).unwrap());
        match Store::open(&path, Network::Devnet) {
            Err(StoreError::WrongNetwork { found, expected }) => {
                assert_eq!(found, "regtest");
                assert_eq!(expected, Network::Devnet);
            }
            Err(other) => panic!("unexpected error {other}"),
            Ok(_) => panic!("opened a regtest database as devnet"),
        }
        assert!(Store::open(&path, Network::Regtest).is_ok());
    }

    #[test]
    fn a_garbage_file_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("chain.redb");
        std::fs::write(&path, vec![0x5a; 10_000]).unwrap();
        assert!(matches!(Store::open(&path, Network::Regtest), Err(StoreError::Db(_))));
        assert_eq!(std::fs::read(&path).unwrap(), vec![0x5a; 10_000], "file was modified");
    }
}
