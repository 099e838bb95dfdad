//! db: the redb database behind `storage::ChainStore`, and the only module that imports
//! redb.
//!
//! Every state transition is one write transaction: the UTXO changes of a block, its undo
//! data, the height index and the tip move together, so the stored tip never points past
//! the stored UTXO set. A crash at any moment leaves the last committed tip and its UTXO
//! set; a restart resumes there without replaying anything.

mod error;
mod snapshot;
pub mod tables;

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use redb::backends::InMemoryBackend;
use redb::{
    Database, ReadTransaction, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableHandle,
};

use tables::*;

use crate::consensus::Network;
use crate::primitives::encode::{Decode, deserialize, serialize};
use crate::primitives::{Block, BlockHash, Coin, FastMap, OutPoint, Txid};
use crate::storage::{
    BlockUndo, ChainStore, ChainWrite, IndexEntry, SnapshotBase, Step, StorageError, UtxoView,
    owners_touched,
};

/// redb's page cache. Its 1 GiB default made a syncing node's memory grow with the chain
/// it writes; the working set (UTXO set, index pages, recent blocks) fits in far less.
pub const CACHE_BYTES: usize = 64 * 1024 * 1024;
/// redb's page cache over an in-memory backend (tests, the simulator).
const IN_MEMORY_CACHE_BYTES: usize = 1024 * 1024;

/// The redb database of one network. Clones share the database: readers see consistent
/// snapshots and never block the writer.
#[derive(Clone)]
pub struct Store {
    db: Arc<Db>,
    network: Network,
    /// The file, for messages (`None` in memory).
    path: Option<Arc<Path>>,
}

/// The redb database behind a [`Store`]: writable (the node), or read-only (`verify`,
/// which must work on a backup and leave its bytes alone).
enum Db {
    Writable(Database),
    ReadOnly(redb::ReadOnlyDatabase, Arc<Path>),
}

impl Db {
    fn begin_read(&self) -> Result<ReadTransaction, redb::TransactionError> {
        use redb::ReadableDatabase;
        match self {
            Db::Writable(db) => db.begin_read(),
            Db::ReadOnly(db, _) => db.begin_read(),
        }
    }

    fn begin_write(&self) -> Result<redb::WriteTransaction, StorageError> {
        match self {
            Db::Writable(db) => Ok(db.begin_write()?),
            Db::ReadOnly(_, path) => Err(StorageError::ReadOnly(path.to_path_buf())),
        }
    }
}

/// Opens an existing database file without ever changing a damaged one. A read-only open
/// first tells the three cases apart: a clean file opens normally; a file that needs
/// crash recovery (redb's repair rewrites it) is repaired with a copy kept beside it until
/// the repair succeeds, so a failed repair puts the original bytes back; anything else
/// (truncated, garbage, locked by another node) is refused untouched.
fn open_file(path: &Path, network: Option<Network>) -> Result<Database, StorageError> {
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
            let io = |error| StorageError::Io { path: backup.clone(), error };
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

/// What a database's recorded network and schema call for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Schema {
    /// Nothing recorded yet: a new database, to be stamped.
    New,
    /// This build's schema.
    Current,
    /// Schema 2: its transaction index is rebuilt in schema 3's compact form on opening,
    /// then it gets schema 4's address history.
    V2,
    /// Schema 3: the address history is built from the stored blocks on opening.
    V3,
}

/// Checks a database's recorded network and schema against `network`.
fn check_meta(
    stored_network: Option<&[u8]>,
    stored_schema: Option<&[u8]>,
    network: Network,
) -> Result<Schema, StorageError> {
    match stored_network {
        None => Ok(Schema::New),
        Some(found) if found != network.as_str().as_bytes() => Err(StorageError::WrongNetwork {
            found: String::from_utf8_lossy(found).into_owned(),
            expected: network,
        }),
        Some(_) => {
            let found = stored_schema.and_then(|v| v.try_into().ok()).map_or(0, u32::from_le_bytes);
            match found {
                SCHEMA_VERSION => Ok(Schema::Current),
                2 => Ok(Schema::V2),
                3 => Ok(Schema::V3),
                _ => Err(StorageError::SchemaVersion { found, expected: SCHEMA_VERSION }),
            }
        }
    }
}

/// Key of the transaction index (see [`TX_INDEX`]).
fn tx_key(txid: &Txid, height: u32, pos: u32) -> [u8; 16] {
    let mut key = [0u8; 16];
    key[..8].copy_from_slice(&txid.0[..8]);
    key[8..12].copy_from_slice(&height.to_be_bytes());
    key[12..].copy_from_slice(&pos.to_be_bytes());
    key
}

/// Rebuilds schema 2's transaction index in schema 3's form, within `txn`; returns the
/// number of transactions indexed.
fn upgrade_tx_index(txn: &redb::WriteTransaction) -> Result<u64, StorageError> {
    let mut height_of = HashMap::new();
    for item in txn.open_table(HEIGHTS)?.iter()? {
        let (height, hash) = item?;
        height_of.insert(*hash.value(), height.value());
    }
    let mut count = 0;
    {
        let old = txn.open_table(TX_INDEX_V2)?;
        let mut new = txn.open_table(TX_INDEX)?;
        for item in old.iter()? {
            let (txid, loc) = item?;
            let (txid, loc) = (Txid(*txid.value()), loc.value());
            let mut hash = [0u8; 32];
            hash.copy_from_slice(&loc[..32]);
            let pos = u32::from_le_bytes([loc[32], loc[33], loc[34], loc[35]]);
            let height = *height_of
                .get(&hash)
                .ok_or(StorageError::Inconsistent("a transaction of a block off the chain"))?;
            new.insert(&tx_key(&txid, height, pos), ())?;
            count += 1;
        }
    }
    txn.delete_table(TX_INDEX_V2)?;
    Ok(count)
}

/// Key of the address history (see [`ADDR_HISTORY`]).
fn history_key(pubkey: &[u8; 32], height: u32, pos: u32) -> [u8; 40] {
    let mut key = [0u8; 40];
    key[..32].copy_from_slice(pubkey);
    key[32..36].copy_from_slice(&height.to_be_bytes());
    key[36..].copy_from_slice(&pos.to_be_bytes());
    key
}

/// Builds schema 4's address history from the active chain's stored blocks and undo data,
/// within `txn`; returns the number of entries. Blocks a snapshot stands in for (no data
/// stored) have none.
fn build_addr_history(txn: &redb::WriteTransaction) -> Result<u64, StorageError> {
    let heights = txn.open_table(HEIGHTS)?;
    let blocks = txn.open_table(BLOCKS)?;
    let undos = txn.open_table(UNDO)?;
    let mut history = txn.open_table(ADDR_HISTORY)?;
    let mut count = 0;
    for item in heights.iter()? {
        let (height, hash) = item?;
        let (height, hash) = (height.value(), *hash.value());
        let Some(bytes) = blocks.get(&hash)? else { continue };
        let block: Block = decode("blocks", bytes.value())?;
        let undo: BlockUndo = match undos.get(&hash)? {
            Some(v) => decode("undo", v.value())?,
            None => BlockUndo::default(),
        };
        for (owner, pos) in owners_touched(&block, &undo.spent) {
            history.insert(&history_key(&owner, height, pos), ())?;
            count += 1;
        }
    }
    Ok(count)
}

impl Store {
    /// Opens (or creates) the database at `path` for `network`.
    ///
    /// # Errors
    /// [`StorageError::WrongNetwork`] / [`StorageError::SchemaVersion`] for a foreign file,
    /// [`StorageError::Backend`] for I/O errors, a corrupt file or a file locked by another node.
    pub fn open(path: &Path, network: Network) -> Result<Self, StorageError> {
        if path.exists() {
            return Self::init(open_file(path, Some(network))?, network, Some(path));
        }
        // Made whole beside it and renamed into place: a node killed while creating its
        // database leaves no half-written file that the next start would refuse.
        let fresh = path.with_extension("redb.new");
        let io = |error| StorageError::Io { path: fresh.clone(), error };
        match std::fs::remove_file(&fresh) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io(e)),
            _ => {}
        }
        let db = Database::builder().set_cache_size(CACHE_BYTES).create(&fresh)?;
        let store = Self::init(db, network, Some(path))?;
        std::fs::rename(&fresh, path).map_err(io)?;
        Ok(store)
    }

    /// Opens an existing database, whatever its network; never creates one.
    ///
    /// # Errors
    /// [`StorageError::NotFound`] if there is no database at `path`,
    /// [`StorageError::Backend`] if it cannot be read,
    /// [`StorageError::UnknownNetwork`] if it records no known network.
    pub fn open_existing(path: &Path) -> Result<Self, StorageError> {
        if !path.is_file() {
            return Err(StorageError::NotFound(path.to_path_buf()));
        }
        let db = open_file(path, None)?;
        let name = {
            let txn = db.begin_read()?;
            let meta = txn.open_table(META)?;
            let value = meta.get(META_NETWORK)?.map(|v| v.value().to_vec());
            String::from_utf8_lossy(&value.unwrap_or_default()).into_owned()
        };
        let network =
            name.parse::<Network>().map_err(|_| StorageError::UnknownNetwork(name.clone()))?;
        Self::init(db, network, Some(path))
    }

    /// A database in memory, for tests.
    ///
    /// # Errors
    /// [`StorageError::Backend`] if redb cannot initialise it.
    pub fn in_memory(network: Network) -> Result<Self, StorageError> {
        // The backend is memory already: a page cache on top of it holds pages twice
        // (with redb's 1 GiB default a simulated node took ~22 MiB after one
        // 2,000-transaction block, ~16 with this; a thousand of them must fit in RAM).
        let db = Database::builder()
            .set_cache_size(IN_MEMORY_CACHE_BYTES)
            .create_with_backend(InMemoryBackend::new())?;
        Self::init(db, network, None)
    }

    fn init(db: Database, network: Network, path: Option<&Path>) -> Result<Self, StorageError> {
        let txn = db.begin_write()?;
        {
            let mut meta = txn.open_table(META)?;
            let stored_network = meta.get(META_NETWORK)?.map(|v| v.value().to_vec());
            let stored_schema = meta.get(META_SCHEMA)?.map(|v| v.value().to_vec());
            let found_schema =
                check_meta(stored_network.as_deref(), stored_schema.as_deref(), network)?;
            match found_schema {
                Schema::Current => {}
                Schema::New => {
                    meta.insert(META_NETWORK, network.as_str().as_bytes())?;
                    meta.insert(META_SCHEMA, SCHEMA_VERSION.to_le_bytes().as_slice())?;
                }
                Schema::V2 | Schema::V3 => {
                    tracing::info!("upgrading the database to schema {SCHEMA_VERSION}");
                    if found_schema == Schema::V2 {
                        let txs = upgrade_tx_index(&txn)?;
                        tracing::info!(txs, "transaction index rebuilt in the compact form");
                    }
                    let entries = build_addr_history(&txn)?;
                    meta.insert(META_SCHEMA, SCHEMA_VERSION.to_le_bytes().as_slice())?;
                    tracing::info!(entries, "address history built from the stored blocks");
                }
            }
            // Create every table so readers never meet a missing one.
            txn.open_table(BLOCK_INDEX)?;
            txn.open_table(BLOCKS)?;
            txn.open_table(HEIGHTS)?;
            txn.open_table(UTXOS)?;
            txn.open_table(UNDO)?;
            txn.open_table(TX_INDEX)?;
            txn.open_table(ADDR_INDEX)?;
            txn.open_table(ADDR_HISTORY)?;
        }
        txn.commit()?;
        Ok(Self { db: Arc::new(Db::Writable(db)), network, path: path.map(Arc::from) })
    }

    /// Opens an existing database read-only, whatever its network: nothing is written,
    /// not even a crash recovery, so it works on a backup or a read-only copy.
    ///
    /// # Errors
    /// [`StorageError::NotFound`] if there is no database at `path`,
    /// [`StorageError::Backend`] if it cannot be read (a file that needs crash recovery
    /// included: the node repairs it at start), [`StorageError::UnknownNetwork`] if it
    /// records no known network, [`StorageError::SchemaVersion`] for another schema.
    pub fn open_read_only(path: &Path) -> Result<Self, StorageError> {
        if !path.is_file() {
            return Err(StorageError::NotFound(path.to_path_buf()));
        }
        let db = match redb::ReadOnlyDatabase::open(path) {
            Err(redb::DatabaseError::RepairAborted) => {
                return Err(StorageError::NeedsRecovery(path.to_path_buf()));
            }
            other => other?,
        };
        let (name, schema) = {
            use redb::ReadableDatabase;
            let txn = db.begin_read()?;
            let meta = txn.open_table(META)?;
            let network = meta.get(META_NETWORK)?.map(|v| v.value().to_vec());
            let schema = meta.get(META_SCHEMA)?.map(|v| v.value().to_vec());
            (String::from_utf8_lossy(&network.unwrap_or_default()).into_owned(), schema)
        };
        let network =
            name.parse::<Network>().map_err(|_| StorageError::UnknownNetwork(name.clone()))?;
        if check_meta(Some(name.as_bytes()), schema.as_deref(), network)? != Schema::Current {
            let found =
                schema.as_deref().and_then(|b| b.try_into().ok()).map_or(0, u32::from_le_bytes);
            return Err(StorageError::SchemaVersion { found, expected: SCHEMA_VERSION });
        }
        let path: Arc<Path> = Arc::from(path);
        Ok(Self { db: Arc::new(Db::ReadOnly(db, path.clone())), network, path: Some(path) })
    }

    fn read(&self) -> Result<ReadTransaction, StorageError> {
        Ok(self.db.begin_read()?)
    }

    fn get_decoded<T: Decode>(
        &self,
        def: redb::TableDefinition<'static, &'static [u8; 32], &'static [u8]>,
        name: &'static str,
        key: &[u8; 32],
    ) -> Result<Option<T>, StorageError> {
        let txn = self.read()?;
        let table = txn.open_table(def)?;
        let value = table.get(key)?;
        value.map(|v| decode(name, v.value())).transpose()
    }

    /// The index entry of `hash`.
    ///
    /// # Errors
    /// [`StorageError`] on read failure or a corrupt entry.
    pub fn index_entry(&self, hash: &BlockHash) -> Result<Option<IndexEntry>, StorageError> {
        let txn = self.read()?;
        let table = txn.open_table(BLOCK_INDEX)?;
        let value = table.get(&hash.0)?;
        value.map(|v| decode("block_index", v.value())).transpose()
    }

    /// An active-chain transaction's block and its position in it, from one read
    /// transaction. The index knows txids by their first 8 bytes: each entry of the prefix
    /// is checked against its block, so a txid sharing a prefix with another (however
    /// rare, or made on purpose) is never mistaken for it.
    ///
    /// # Errors
    /// [`StorageError`] on read failure or a corrupt entry.
    pub fn find_tx(&self, txid: &Txid) -> Result<Option<(BlockHash, Block, u32)>, StorageError> {
        let txn = self.read()?;
        let index = txn.open_table(TX_INDEX)?;
        let heights = txn.open_table(HEIGHTS)?;
        let blocks = txn.open_table(BLOCKS)?;
        let (low, high) = (tx_key(txid, 0, 0), tx_key(txid, u32::MAX, u32::MAX));
        for item in index.range::<&[u8; 16]>(&low..=&high)? {
            let (key, _) = item?;
            let key = key.value();
            let height = u32::from_be_bytes([key[8], key[9], key[10], key[11]]);
            let pos = u32::from_be_bytes([key[12], key[13], key[14], key[15]]);
            let hash = heights
                .get(height)?
                .map(|h| BlockHash(*h.value()))
                .ok_or(StorageError::Inconsistent("a transaction at a height off the chain"))?;
            let bytes =
                blocks.get(&hash.0)?.ok_or(StorageError::Inconsistent("an indexed block"))?;
            let block: Block = decode("blocks", bytes.value())?;
            if block.txs.get(pos as usize).is_some_and(|tx| tx.txid() == *txid) {
                return Ok(Some((hash, block, pos)));
            }
        }
        Ok(None)
    }

    /// Every unspent coin locked to `pubkey`, in outpoint order.
    ///
    /// # Errors
    /// [`StorageError`] on read failure or a corrupt entry.
    pub fn coins_of(&self, pubkey: &[u8; 32]) -> Result<Vec<(OutPoint, Coin)>, StorageError> {
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

    /// The active-chain transactions that paid `pubkey` or spent its coins, as (height,
    /// position in the block), oldest first.
    ///
    /// # Errors
    /// [`StorageError`] on read failure.
    pub fn history_of(&self, pubkey: &[u8; 32]) -> Result<Vec<(u32, u32)>, StorageError> {
        let txn = self.read()?;
        let table = txn.open_table(ADDR_HISTORY)?;
        let (low, high) = (history_key(pubkey, 0, 0), history_key(pubkey, u32::MAX, u32::MAX));
        let mut out = Vec::new();
        for item in table.range::<&[u8; 40]>(&low..=&high)? {
            let (key, _) = item?;
            let key = key.value();
            let height = u32::from_be_bytes([key[32], key[33], key[34], key[35]]);
            let pos = u32::from_be_bytes([key[36], key[37], key[38], key[39]]);
            out.push((height, pos));
        }
        Ok(out)
    }

    /// Checks that the address index holds exactly the UTXO set. Returns the first
    /// discrepancy found, if any.
    ///
    /// # Errors
    /// [`StorageError`] on read failure.
    pub fn check_addr_index(&self) -> Result<Option<AddrIndexMismatch>, StorageError> {
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
    /// [`StorageError`] on read failure.
    pub fn utxo_count(&self) -> Result<u64, StorageError> {
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

/// The changes of all `steps` to a key-only table, written together in key order (the keys
/// lead with random bytes: in step order each insert would land on another page of a large
/// tree). `keys` adds a step's keys with whether they are present after it (a connect) or
/// not (a disconnect); the last word on a key decides (a block disconnected and connected
/// again).
fn apply_keys<const N: usize>(
    table: &mut redb::Table<'_, &'static [u8; N], ()>,
    steps: &[Step],
    keys: impl Fn(&Step, u32, bool, &mut FastMap<[u8; N], bool>),
) -> Result<(), StorageError> {
    let mut net: FastMap<[u8; N], bool> = FastMap::default();
    for step in steps {
        let (Step::Connect { height, .. } | Step::Disconnect { height, .. }) = step;
        keys(step, *height, matches!(step, Step::Connect { .. }), &mut net);
    }
    let mut net: Vec<([u8; N], bool)> = net.into_iter().collect();
    net.sort_unstable();
    for (key, present) in &net {
        if *present {
            table.insert(key, ())?;
        } else {
            table.remove(key)?;
        }
    }
    Ok(())
}

/// The tables a connect or disconnect touches, open in one write transaction.
struct StepTables<'t> {
    utxos: redb::Table<'t, &'static [u8; 36], &'static [u8]>,
    by_owner: redb::Table<'t, &'static [u8; 68], &'static [u8]>,
    undo: redb::Table<'t, &'static [u8; 32], &'static [u8]>,
    heights: redb::Table<'t, u32, &'static [u8; 32]>,
    txs: redb::Table<'t, &'static [u8; 16], ()>,
    history: redb::Table<'t, &'static [u8; 40], ()>,
}

impl StepTables<'_> {
    /// Everything of a step but its UTXO changes (see [`Self::apply_utxos`]).
    fn apply(&mut self, step: &Step) -> Result<(), StorageError> {
        match step {
            Step::Connect { hash, height, undo, .. } => {
                self.undo.insert(&hash.0, serialize(undo).as_slice())?;
                self.heights.insert(*height, &hash.0)?;
            }
            Step::Disconnect { hash, height, .. } => {
                self.undo.remove(&hash.0)?;
                self.heights.remove(*height)?;
            }
        }
        Ok(())
    }

    /// The transaction index changes of all `steps` together (see [`apply_keys`]).
    fn apply_txs(&mut self, steps: &[Step]) -> Result<(), StorageError> {
        apply_keys(&mut self.txs, steps, |step, height, present, net| {
            let (Step::Connect { txids, .. } | Step::Disconnect { txids, .. }) = step;
            net.extend(txids.iter().zip(0u32..).map(|(t, pos)| (tx_key(t, height, pos), present)));
        })
    }

    /// The address history changes of all `steps` together (see [`apply_keys`]).
    fn apply_history(&mut self, steps: &[Step]) -> Result<(), StorageError> {
        apply_keys(&mut self.history, steps, |step, height, present, net| {
            let (Step::Connect { owners, .. } | Step::Disconnect { owners, .. }) = step;
            net.extend(owners.iter().map(|(o, pos)| (history_key(o, height, *pos), present)));
        })
    }

    /// The UTXO changes of all `steps` together: a coin created and spent within them
    /// (common while catching up, where one write carries a run of blocks) never reaches
    /// the tables, and what does is written in key order.
    fn apply_utxos(&mut self, steps: &[Step]) -> Result<(), StorageError> {
        // Outpoint -> (its coin, whether it is unspent after the steps). An outpoint
        // always holds the same coin (its txid commits to the output), so the last word
        // on it decides.
        let mut net: FastMap<OutPoint, (Coin, bool)> = FastMap::default();
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

    fn location(&self) -> String {
        self.path.as_ref().map_or_else(|| "memory".to_owned(), |p| p.display().to_string())
    }

    fn tip(&self) -> Result<Option<BlockHash>, StorageError> {
        let txn = self.read()?;
        let meta = txn.open_table(META)?;
        let tip = meta.get(META_TIP)?.map(|v| v.value().to_vec());
        match tip {
            None => Ok(None),
            Some(bytes) => bytes
                .try_into()
                .map(|b| Some(BlockHash(b)))
                .map_err(|_| StorageError::Inconsistent("tip is not 32 bytes")),
        }
    }

    fn load_index(&self) -> Result<Vec<IndexEntry>, StorageError> {
        let txn = self.read()?;
        let table = txn.open_table(BLOCK_INDEX)?;
        let mut out = Vec::with_capacity(table.len()? as usize);
        for item in table.iter()? {
            let (_, value) = item?;
            out.push(decode(BLOCK_INDEX.name(), value.value())?);
        }
        Ok(out)
    }

    fn hash_at(&self, height: u32) -> Result<Option<BlockHash>, StorageError> {
        let txn = self.read()?;
        let table = txn.open_table(HEIGHTS)?;
        Ok(table.get(height)?.map(|v| BlockHash(*v.value())))
    }

    fn block(&self, hash: &BlockHash) -> Result<Option<Block>, StorageError> {
        self.get_decoded(BLOCKS, "blocks", &hash.0)
    }

    fn block_bytes(&self, hash: &BlockHash) -> Result<Option<Vec<u8>>, StorageError> {
        let txn = self.read()?;
        let table = txn.open_table(BLOCKS)?;
        Ok(table.get(&hash.0)?.map(|v| v.value().to_vec()))
    }

    fn undo(&self, hash: &BlockHash) -> Result<Option<BlockUndo>, StorageError> {
        self.get_decoded(UNDO, "undo", &hash.0)
    }

    fn utxos(&self) -> Result<Box<dyn UtxoView + '_>, StorageError> {
        let txn = self.read()?;
        Ok(Box::new(UtxoReader { table: txn.open_table(UTXOS)? }))
    }

    fn for_each_coin(&self, f: &mut dyn FnMut(OutPoint, Coin)) -> Result<(), StorageError> {
        let txn = self.read()?;
        let table = txn.open_table(UTXOS)?;
        for item in table.iter()? {
            let (key, value) = item?;
            f(OutPoint::from_bytes(key.value()), decode(UTXOS.name(), value.value())?);
        }
        Ok(())
    }

    fn snapshot_base(&self) -> Result<Option<SnapshotBase>, StorageError> {
        let txn = self.read()?;
        let meta = txn.open_table(META)?;
        let value = meta.get(META_SNAPSHOT)?;
        match value {
            None => Ok(None),
            Some(v) => SnapshotBase::from_bytes(v.value())
                .map(Some)
                .ok_or(StorageError::Inconsistent("the snapshot record is not 69 bytes")),
        }
    }

    fn mark_snapshot_validated(&self) -> Result<(), StorageError> {
        let Some(base) = self.snapshot_base()? else { return Ok(()) };
        let txn = self.db.begin_write()?;
        let validated = SnapshotBase { validated: true, ..base };
        txn.open_table(META)?.insert(META_SNAPSHOT, validated.to_bytes().as_slice())?;
        Ok(txn.commit()?)
    }

    /// One write transaction: block data, index entries, every connect and disconnect
    /// (UTXO set, address index, undo data, heights, tx index) and the tip. Durable
    /// (fsync) when the write says so.
    fn apply(&self, write: &ChainWrite) -> Result<(), StorageError> {
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
                history: txn.open_table(ADDR_HISTORY)?,
            };
            for step in &write.steps {
                tables.apply(step)?;
            }
            tables.apply_utxos(&write.steps)?;
            tables.apply_txs(&write.steps)?;
            tables.apply_history(&write.steps)?;
            for (height, hash) in &write.heights {
                tables.heights.insert(*height, &hash.0)?;
            }
            if let Some(tip) = write.tip {
                txn.open_table(META)?.insert(META_TIP, tip.0.as_slice())?;
            }
        }
        Ok(txn.commit()?)
    }
}

/// A read transaction over the UTXO table.
struct UtxoReader {
    table: redb::ReadOnlyTable<&'static [u8; 36], &'static [u8]>,
}

impl UtxoView for UtxoReader {
    fn coin(&self, outpoint: &OutPoint) -> Result<Option<Coin>, StorageError> {
        let value = self.table.get(&outpoint.to_bytes())?;
        value.map(|v| decode(UTXOS.name(), v.value())).transpose()
    }
}

fn decode<T: Decode>(table: &'static str, bytes: &[u8]) -> Result<T, StorageError> {
    deserialize(bytes).map_err(|error| StorageError::Corrupt { table, error })
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
            Err(StorageError::WrongNetwork { found, expected }) => {
                assert_eq!(found, "regtest");
                assert_eq!(expected, Network::Devnet);
            }
            Err(other) => panic!("unexpected error {other}"),
            Ok(_) => panic!("opened a regtest database as devnet"),
        }
        assert!(Store::open(&path, Network::Regtest).is_ok());
    }

    use crate::chain::ChainState;
    use crate::testkit::{CLOCK, block_on, extend};

    /// A regtest chain of `blocks` blocks (coinbases only, each paying another key) on
    /// `store`; returns the chain and the blocks from height 1.
    fn chain_of(store: &Store, blocks: u8) -> (ChainState, Vec<Block>) {
        let mut chain = ChainState::open(store.clone()).unwrap();
        let mined = (1..=blocks).map(|i| extend(&mut chain, vec![], [i; 32])).collect();
        (chain, mined)
    }

    #[test]
    fn the_transaction_index_follows_the_active_chain_through_a_reorg() {
        let store = Store::in_memory(Network::Regtest).unwrap();
        let (mut chain, old) = chain_of(&store, 3);
        let coinbase = |b: &Block| b.txs[0].txid();
        let (hash, block, pos) = store.find_tx(&coinbase(&old[2])).unwrap().unwrap();
        assert_eq!((hash, pos), (old[2].block_hash(), 0));
        assert_eq!(block, old[2]);
        // A heavier branch from block 1 replaces blocks 2 and 3.
        let mut parent = old[0].block_hash();
        let mut new = Vec::new();
        for i in 0..3 {
            let block = block_on(&chain, parent, vec![], [0x80 + i; 32]);
            parent = block.block_hash();
            chain.accept_block(block.clone(), CLOCK).unwrap();
            new.push(block);
        }
        assert_eq!(chain.tip(), parent);
        for gone in &old[1..] {
            assert_eq!(store.find_tx(&coinbase(gone)).unwrap(), None);
        }
        for (block, height) in new.iter().zip(2..) {
            let (hash, _, _) = store.find_tx(&coinbase(block)).unwrap().unwrap();
            assert_eq!(hash, block.block_hash());
            assert_eq!(chain.hash_at(height), Some(hash));
        }
        assert!(store.find_tx(&coinbase(&old[0])).unwrap().is_some());
    }

    #[test]
    fn a_txid_sharing_an_indexed_prefix_is_never_mistaken_for_it() {
        let store = Store::in_memory(Network::Regtest).unwrap();
        let (_chain, blocks) = chain_of(&store, 3);
        let target = blocks[2].txs[0].txid();
        // An entry with the target's prefix pointing at another transaction, sorting first.
        let txn = store.db.begin_write().unwrap();
        txn.open_table(TX_INDEX).unwrap().insert(&tx_key(&target, 1, 0), ()).unwrap();
        txn.commit().unwrap();
        let (hash, _, pos) = store.find_tx(&target).unwrap().unwrap();
        assert_eq!((hash, pos), (blocks[2].block_hash(), 0));
        let mut lookalike = target;
        lookalike.0[31] ^= 1;
        assert_eq!(store.find_tx(&lookalike).unwrap(), None);
    }

    #[test]
    fn a_schema_2_database_gets_the_compact_transaction_index_when_opened() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("chain.redb");
        let blocks = {
            let store = Store::open(&path, Network::Regtest).unwrap();
            chain_of(&store, 4).1
        };
        // Rewrite it as schema 2 left it: txid -> block hash ‖ position (LE).
        {
            let db = Database::open(&path).unwrap();
            let txn = db.begin_write().unwrap();
            txn.delete_table(TX_INDEX).unwrap();
            {
                let mut old = txn.open_table(TX_INDEX_V2).unwrap();
                for block in &blocks {
                    let mut loc = [0u8; 36];
                    loc[..32].copy_from_slice(&block.block_hash().0);
                    old.insert(&block.txs[0].txid().0, &loc).unwrap();
                }
                let mut meta = txn.open_table(META).unwrap();
                meta.insert(META_SCHEMA, 2u32.to_le_bytes().as_slice()).unwrap();
            }
            txn.commit().unwrap();
        }
        let store = Store::open(&path, Network::Regtest).unwrap();
        for block in &blocks {
            let (hash, _, pos) = store.find_tx(&block.txs[0].txid()).unwrap().unwrap();
            assert_eq!((hash, pos), (block.block_hash(), 0));
        }
        let txn = store.db.begin_read().unwrap();
        assert!(matches!(txn.open_table(TX_INDEX_V2), Err(redb::TableError::TableDoesNotExist(_))));
        let schema =
            txn.open_table(META).unwrap().get(META_SCHEMA).unwrap().unwrap().value().to_vec();
        assert_eq!(schema, SCHEMA_VERSION.to_le_bytes());
        // A schema this build does not know is still refused.
        drop(txn);
        drop(store);
        let db = Database::open(&path).unwrap();
        let txn = db.begin_write().unwrap();
        txn.open_table(META).unwrap().insert(META_SCHEMA, 9u32.to_le_bytes().as_slice()).unwrap();
        txn.commit().unwrap();
        drop(db);
        assert!(matches!(
            Store::open(&path, Network::Regtest),
            Err(StorageError::SchemaVersion { found: 9, expected: SCHEMA_VERSION })
        ));
    }

    #[test]
    fn the_address_history_records_payments_and_spends_and_follows_reorgs() {
        use crate::primitives::TxOut;
        use crate::testkit::{coinbase_input, key, pubkey, spend};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("chain.redb");
        let (alice, bob) = (key(1), key(2));
        let store = Store::open(&path, Network::Regtest).unwrap();
        let mut chain = ChainState::open(store.clone()).unwrap();
        let first = extend(&mut chain, vec![], pubkey(&alice));
        for _ in 0..100 {
            extend(&mut chain, vec![], [7; 32]);
        }
        // Height 102: alice pays bob from her coinbase of height 1.
        let pay = spend(
            &[coinbase_input(&first)],
            vec![TxOut { value: 1_000, pubkey: pubkey(&bob) }],
            &[&alice],
        );
        let paid = extend(&mut chain, vec![pay], [7; 32]);
        assert_eq!(store.history_of(&pubkey(&alice)).unwrap(), vec![(1, 0), (102, 1)]);
        assert_eq!(store.history_of(&pubkey(&bob)).unwrap(), vec![(102, 1)]);
        assert!(store.history_of(&[9; 32]).unwrap().is_empty());
        // A heavier branch without the payment takes it off the history.
        let mut parent = paid.header.prev_blockhash;
        for i in 0..2 {
            let block = block_on(&chain, parent, vec![], [0x80 + i; 32]);
            parent = block.block_hash();
            chain.accept_block(block, CLOCK).unwrap();
        }
        assert_eq!(chain.tip(), parent);
        assert_eq!(store.history_of(&pubkey(&alice)).unwrap(), vec![(1, 0)]);
        assert!(store.history_of(&pubkey(&bob)).unwrap().is_empty());
        // A schema 3 database gets the same history built from its blocks when opened.
        let before: Vec<_> = (1..=3u8).map(|i| store.history_of(&[i; 32]).unwrap()).collect();
        let (alice_before, miner_before) =
            (store.history_of(&pubkey(&alice)).unwrap(), store.history_of(&[7; 32]).unwrap());
        drop(chain);
        drop(store);
        {
            let db = Database::open(&path).unwrap();
            let txn = db.begin_write().unwrap();
            txn.delete_table(ADDR_HISTORY).unwrap();
            txn.open_table(META)
                .unwrap()
                .insert(META_SCHEMA, 3u32.to_le_bytes().as_slice())
                .unwrap();
            txn.commit().unwrap();
        }
        let store = Store::open(&path, Network::Regtest).unwrap();
        assert_eq!(store.history_of(&pubkey(&alice)).unwrap(), alice_before);
        assert_eq!(store.history_of(&[7; 32]).unwrap(), miner_before);
        assert_eq!(miner_before.len(), 100);
        let after: Vec<_> = (1..=3u8).map(|i| store.history_of(&[i; 32]).unwrap()).collect();
        assert_eq!(after, before);
    }

    #[test]
    fn a_garbage_file_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("chain.redb");
        std::fs::write(&path, vec![0x5a; 10_000]).unwrap();
        assert!(matches!(Store::open(&path, Network::Regtest), Err(StorageError::Backend { .. })));
        assert_eq!(std::fs::read(&path).unwrap(), vec![0x5a; 10_000], "file was modified");
    }
}
