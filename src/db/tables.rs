//! Every redb table, declared in one place, and the schema version.

use redb::TableDefinition;

/// Bumped whenever a table's key or value layout changes.
pub const SCHEMA_VERSION: u32 = 4;

/// Metadata: `network`, `schema_version`, `tip`.
pub const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
/// Block hash → encoded `IndexEntry` (header, height, chain work, status).
pub const BLOCK_INDEX: TableDefinition<&[u8; 32], &[u8]> = TableDefinition::new("block_index");
/// Block hash → encoded block.
pub const BLOCKS: TableDefinition<&[u8; 32], &[u8]> = TableDefinition::new("blocks");
/// Height → block hash, for the active chain only.
pub const HEIGHTS: TableDefinition<u32, &[u8; 32]> = TableDefinition::new("heights");
/// Outpoint (txid ‖ vout) → encoded `Coin`.
pub const UTXOS: TableDefinition<&[u8; 36], &[u8]> = TableDefinition::new("utxos");
/// Block hash → encoded `BlockUndo`, for blocks on the active chain.
pub const UNDO: TableDefinition<&[u8; 32], &[u8]> = TableDefinition::new("undo");

/// The transactions of the active chain: the txid's first 8 bytes ‖ height (u32 BE) ‖
/// position in the block (u32 BE), no value. 16 bytes an entry where a full txid and
/// block hash took 68: the writer rewrites the pages each commit touches, and random txids
/// touch most of them. A lookup checks each entry of the prefix against its block.
pub const TX_INDEX: TableDefinition<&[u8; 16], ()> = TableDefinition::new("tx_by_prefix");
/// Schema 2's transaction index (txid → block hash ‖ position, u32 LE), replaced by
/// [`TX_INDEX`] when such a database is opened.
pub const TX_INDEX_V2: TableDefinition<&[u8; 32], &[u8; 36]> = TableDefinition::new("tx_index");
/// Public key ‖ outpoint → encoded `Coin`: the UTXO set by owner, for balances.
pub const ADDR_INDEX: TableDefinition<&[u8; 68], &[u8]> = TableDefinition::new("addr_index");

/// Public key ‖ height (u32 BE) ‖ position in the block (u32 BE), no value: every
/// active-chain transaction that paid the key or spent one of its coins, for address
/// histories and for wallets finding their used addresses. Added in schema 4 (built from
/// the stored blocks when an older database is opened).
pub const ADDR_HISTORY: TableDefinition<&[u8; 40], ()> = TableDefinition::new("addr_history");

/// Meta key: network name.
pub const META_NETWORK: &str = "network";
/// Meta key: schema version (u32 LE).
pub const META_SCHEMA: &str = "schema_version";
/// Meta key: hash of the active tip.
pub const META_TIP: &str = "tip";
/// Meta key: the snapshot the chain was started from (`SnapshotBase::to_bytes`), if any.
pub const META_SNAPSHOT: &str = "snapshot";
