//! UTXO snapshots: the coin set at one block, as a file a node can start from (Bitcoin
//! Core's `dumptxoutset` / `assumeutxo`).
//!
//! The format, all integers little-endian:
//!
//! | field | bytes | |
//! | --- | --- | --- |
//! | magic | 8 | `MCUTXO` then the format version, `0x00 0x01` |
//! | network | 1 + n | the length of its name, then the name (`devnet`, `regtest`) |
//! | block | 32 | hash of the block whose UTXO set this is (internal byte order) |
//! | height | 4 | that block's height |
//! | count | 8 | coins that follow |
//! | coins | count × 81 | outpoint (txid 32 ‖ vout u32), then the coin (value u64, key 32, height u32, coinbase u8), in ascending order of the outpoint's 36 bytes, each once |
//! | hash | 32 | the snapshot hash: SHA-256d of every byte before it |
//!
//! The snapshot hash commits to the network, the block, its height and every coin, so
//! the one hash a user trusts (`--snapshot-hash`, given out of band like Core's pinned
//! `assumeutxo` hashes) decides whether a file is taken: a file whose coins do not match
//! its own last 32 bytes is damaged or tampered with; one whose hash is not the trusted
//! one is another snapshot. Both are refused before anything is stored.

use std::io::{self, Read, Write};

use sha2::{Digest, Sha256};

use crate::consensus::Network;
use crate::primitives::encode::{Encode, deserialize};
use crate::primitives::{BlockHash, Coin, OutPoint};

/// The first 8 bytes of every snapshot file (format version 1).
pub const MAGIC: [u8; 8] = *b"MCUTXO\x00\x01";
/// Bytes of one coin record: the outpoint (36) and the coin (45).
pub const COIN_RECORD: usize = 36 + 45;

/// What a snapshot is of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnapshotInfo {
    /// Its network.
    pub network: Network,
    /// The block whose UTXO set it holds.
    pub block: BlockHash,
    /// That block's height.
    pub height: u32,
    /// Coins in it.
    pub coins: u64,
}

/// Why a snapshot was not written or not taken.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// Reading or writing failed.
    #[error("{0}")]
    Io(#[from] io::Error),
    /// The database it is written from or loaded into failed.
    #[error(transparent)]
    Store(#[from] crate::storage::StorageError),
    /// It does not start like a snapshot.
    #[error("not a minichain UTXO snapshot (or a version this node does not read)")]
    BadMagic,
    /// It names a network we do not know.
    #[error("snapshot of unknown network {0:?}")]
    UnknownNetwork(String),
    /// It is of another network than ours.
    #[error("snapshot of {found}, this node is on {expected}")]
    WrongNetwork {
        /// Ours.
        expected: Network,
        /// The file's.
        found: Network,
    },
    /// It ends before its coins and hash do.
    #[error("snapshot ends early, after {coins} of its coins")]
    Truncated {
        /// Coins read whole.
        coins: u64,
    },
    /// A coin record that does not decode.
    #[error("coin {index} does not decode")]
    BadCoin {
        /// Its place in the file.
        index: u64,
    },
    /// Coins out of order or repeated (the set is sorted, each coin once).
    #[error("coin {index} is out of order or repeated")]
    Unsorted {
        /// Its place in the file.
        index: u64,
    },
    /// Bytes after the hash.
    #[error("bytes after the snapshot's end")]
    TrailingBytes,
    /// The coins do not hash to the file's own hash: damaged or tampered with.
    #[error(
        "snapshot content does not match its own hash (damaged or tampered with): content hashes to {computed}, the file says {stated}"
    )]
    Corrupt {
        /// What its content hashes to.
        computed: BlockHash,
        /// What its last 32 bytes say.
        stated: BlockHash,
    },
    /// An intact snapshot, but not the one trusted.
    #[error("snapshot hash is {found}, not the expected {expected}")]
    WrongHash {
        /// The hash given (`--snapshot-hash`).
        expected: BlockHash,
        /// The file's.
        found: BlockHash,
    },
    /// A snapshot is loaded only into a data dir that holds no chain yet.
    #[error("{0} already holds a chain: a snapshot is loaded only into an empty data dir")]
    NotEmpty(String),
    /// More or fewer coins given to the writer than its header said.
    #[error("snapshot writer was given {given} coins for a header of {stated}")]
    CountMismatch {
        /// Coins the header states.
        stated: u64,
        /// Coins given.
        given: u64,
    },
}

/// A double SHA-256 over everything written through it.
struct Hashing<W> {
    inner: W,
    hasher: Sha256,
}

impl<W: Write> Hashing<W> {
    fn put(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.hasher.update(bytes);
        self.inner.write_all(bytes)
    }

    fn digest(&self) -> BlockHash {
        let once = self.hasher.clone().finalize();
        BlockHash(Sha256::digest(once).into())
    }
}

/// Writes a snapshot: the header at [`SnapshotWriter::new`], then every coin in outpoint
/// order, then [`SnapshotWriter::finish`] appends the hash and returns it.
pub struct SnapshotWriter<W: Write> {
    out: Hashing<W>,
    info: SnapshotInfo,
    given: u64,
    last: Option<[u8; 36]>,
}

impl<W: Write> SnapshotWriter<W> {
    /// Starts a snapshot of `info` into `out`.
    ///
    /// # Errors
    /// [`SnapshotError::Io`] if writing fails.
    pub fn new(out: W, info: SnapshotInfo) -> Result<Self, SnapshotError> {
        let mut out = Hashing { inner: out, hasher: Sha256::new() };
        out.put(&MAGIC)?;
        let name = info.network.to_string();
        // A network's name is a short word: its length fits a byte.
        out.put(&[name.len() as u8])?;
        out.put(name.as_bytes())?;
        out.put(&info.block.0)?;
        out.put(&info.height.to_le_bytes())?;
        out.put(&info.coins.to_le_bytes())?;
        Ok(Self { out, info, given: 0, last: None })
    }

    /// The next coin; outpoints must ascend.
    ///
    /// # Errors
    /// [`SnapshotError::Unsorted`] if it does not come after the last one,
    /// [`SnapshotError::Io`] if writing fails.
    pub fn coin(&mut self, outpoint: &OutPoint, coin: &Coin) -> Result<(), SnapshotError> {
        let key = outpoint.to_bytes();
        if self.last.is_some_and(|last| last >= key) {
            return Err(SnapshotError::Unsorted { index: self.given });
        }
        let mut record = Vec::with_capacity(COIN_RECORD);
        record.extend_from_slice(&key);
        coin.encode(&mut record);
        self.out.put(&record)?;
        self.last = Some(key);
        self.given += 1;
        Ok(())
    }

    /// Appends the hash; returns it and the writer.
    ///
    /// # Errors
    /// [`SnapshotError::CountMismatch`] if the coins given are not the header's count,
    /// [`SnapshotError::Io`] if writing fails.
    pub fn finish(mut self) -> Result<(BlockHash, W), SnapshotError> {
        if self.given != self.info.coins {
            return Err(SnapshotError::CountMismatch {
                stated: self.info.coins,
                given: self.given,
            });
        }
        let hash = self.out.digest();
        self.out.inner.write_all(&hash.0)?;
        self.out.inner.flush()?;
        Ok((hash, self.out.inner))
    }
}

/// Reads a snapshot of `network` from `input`, handing each coin to `coin` as it goes
/// (the caller keeps nothing until this returns `Ok`: only then is the whole file known
/// to be intact), and returns what it is of and its hash. With `expected`, a snapshot
/// of another hash is refused.
///
/// # Errors
/// Every [`SnapshotError`] but `CountMismatch`, `NotEmpty` and `Store`: the file is not a snapshot, of another
/// network, cut short, out of order, damaged, or not the expected one.
pub fn read(
    input: impl Read,
    network: Network,
    expected: Option<&BlockHash>,
    mut coin: impl FnMut(OutPoint, Coin),
) -> Result<(SnapshotInfo, BlockHash), SnapshotError> {
    let mut input = io::BufReader::with_capacity(1 << 16, input);
    let mut hashed = Hashing { inner: io::sink(), hasher: Sha256::new() };
    let mut take = |buf: &mut [u8], coins: u64| -> Result<(), SnapshotError> {
        input.read_exact(buf).map_err(|e| match e.kind() {
            io::ErrorKind::UnexpectedEof => SnapshotError::Truncated { coins },
            _ => SnapshotError::Io(e),
        })?;
        hashed.put(buf)?;
        Ok(())
    };
    let mut magic = [0u8; 8];
    take(&mut magic, 0)?;
    if magic != MAGIC {
        return Err(SnapshotError::BadMagic);
    }
    let mut len = [0u8; 1];
    take(&mut len, 0)?;
    let mut name = vec![0u8; usize::from(len[0])];
    take(&mut name, 0)?;
    let name = String::from_utf8_lossy(&name).into_owned();
    let found: Network = name.parse().map_err(|_| SnapshotError::UnknownNetwork(name))?;
    if found != network {
        return Err(SnapshotError::WrongNetwork { expected: network, found });
    }
    let mut block = [0u8; 32];
    take(&mut block, 0)?;
    let mut height = [0u8; 4];
    take(&mut height, 0)?;
    let mut count = [0u8; 8];
    take(&mut count, 0)?;
    let info = SnapshotInfo {
        network,
        block: BlockHash(block),
        height: u32::from_le_bytes(height),
        coins: u64::from_le_bytes(count),
    };
    let mut record = [0u8; COIN_RECORD];
    let mut last: Option<[u8; 36]> = None;
    for index in 0..info.coins {
        take(&mut record, index)?;
        let mut key = [0u8; 36];
        key.copy_from_slice(&record[..36]);
        if last.is_some_and(|l| l >= key) {
            return Err(SnapshotError::Unsorted { index });
        }
        last = Some(key);
        let parsed: Coin =
            deserialize(&record[36..]).map_err(|_| SnapshotError::BadCoin { index })?;
        coin(OutPoint::from_bytes(&key), parsed);
    }
    let computed = hashed.digest();
    let mut stated = [0u8; 32];
    input.read_exact(&mut stated).map_err(|e| match e.kind() {
        io::ErrorKind::UnexpectedEof => SnapshotError::Truncated { coins: info.coins },
        _ => SnapshotError::Io(e),
    })?;
    let mut extra = [0u8; 1];
    if input.read(&mut extra)? != 0 {
        return Err(SnapshotError::TrailingBytes);
    }
    if computed.0 != stated {
        return Err(SnapshotError::Corrupt { computed, stated: BlockHash(stated) });
    }
    if let Some(expected) = expected
        && *expected != computed
    {
        return Err(SnapshotError::WrongHash { expected: *expected, found: computed });
    }
    Ok((info, computed))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::primitives::{TxOut, Txid};

    fn coins(n: u8) -> Vec<(OutPoint, Coin)> {
        (0..n)
            .map(|i| {
                let op = OutPoint { txid: Txid([i; 32]), vout: u32::from(i) };
                let output = TxOut { value: 1_000 + u64::from(i), pubkey: [i ^ 0x55; 32] };
                (op, Coin { output, height: u32::from(i), is_coinbase: i % 2 == 0 })
            })
            .collect()
    }

    fn snapshot(set: &[(OutPoint, Coin)]) -> (Vec<u8>, BlockHash) {
        let info = SnapshotInfo {
            network: Network::Regtest,
            block: BlockHash([7; 32]),
            height: 42,
            coins: set.len() as u64,
        };
        let mut w = SnapshotWriter::new(Vec::new(), info).unwrap();
        for (op, coin) in set {
            w.coin(op, coin).unwrap();
        }
        let (hash, bytes) = w.finish().unwrap();
        (bytes, hash)
    }

    fn read_all(
        bytes: &[u8],
        expected: Option<&BlockHash>,
    ) -> Result<Vec<(OutPoint, Coin)>, SnapshotError> {
        let mut out = Vec::new();
        read(bytes, Network::Regtest, expected, |op, c| out.push((op, c)))?;
        Ok(out)
    }

    #[test]
    fn a_snapshot_reads_back_as_written_and_its_hash_is_checked() {
        let set = coins(5);
        let (bytes, hash) = snapshot(&set);
        assert_eq!(bytes.len(), 8 + 1 + 7 + 32 + 4 + 8 + 5 * COIN_RECORD + 32);
        let (info, read_hash) = read(&bytes[..], Network::Regtest, Some(&hash), |_, _| {}).unwrap();
        assert_eq!(
            (info.height, info.coins, info.block, read_hash),
            (42, 5, BlockHash([7; 32]), hash)
        );
        assert_eq!(read_all(&bytes, Some(&hash)).unwrap(), set);
    }

    #[test]
    fn a_tampered_snapshot_is_refused_even_without_a_trusted_hash() {
        let (mut bytes, _) = snapshot(&coins(5));
        // One coin's value, one bit.
        let at = 8 + 1 + 7 + 32 + 4 + 8 + 2 * COIN_RECORD + 36;
        bytes[at] ^= 1;
        assert!(matches!(read_all(&bytes, None), Err(SnapshotError::Corrupt { .. })));
    }

    #[test]
    fn an_intact_snapshot_of_another_hash_is_refused() {
        let (bytes, hash) = snapshot(&coins(5));
        let other = BlockHash([1; 32]);
        let err = read_all(&bytes, Some(&other)).unwrap_err();
        assert!(
            matches!(err, SnapshotError::WrongHash { expected, found } if expected == other && found == hash)
        );
        assert!(err.to_string().contains(&hash.to_string()), "{err}");
    }

    #[test]
    fn cut_reordered_padded_or_foreign_files_are_refused() {
        let set = coins(4);
        let (bytes, _) = snapshot(&set);
        assert!(matches!(
            read_all(&bytes[..bytes.len() - 40], None),
            Err(SnapshotError::Truncated { coins: 3 })
        ));
        assert!(matches!(read_all(&bytes[..3], None), Err(SnapshotError::Truncated { coins: 0 })));
        let mut padded = bytes.clone();
        padded.push(0);
        assert!(matches!(read_all(&padded, None), Err(SnapshotError::TrailingBytes)));
        assert!(matches!(read_all(b"not a snapshot at all", None), Err(SnapshotError::BadMagic)));
        let err = read(&bytes[..], Network::Devnet, None, |_, _| {}).unwrap_err();
        assert!(matches!(err, SnapshotError::WrongNetwork { .. }), "{err}");
        // Out of order: the writer refuses it, and so does the reader.
        let mut swapped = set.clone();
        swapped.swap(1, 2);
        let info = SnapshotInfo {
            network: Network::Regtest,
            block: BlockHash([7; 32]),
            height: 1,
            coins: 4,
        };
        let mut w = SnapshotWriter::new(Vec::new(), info).unwrap();
        w.coin(&swapped[0].0, &swapped[0].1).unwrap();
        w.coin(&swapped[1].0, &swapped[1].1).unwrap();
        assert!(matches!(
            w.coin(&swapped[2].0, &swapped[2].1),
            Err(SnapshotError::Unsorted { index: 2 })
        ));
        let mut raw = bytes.clone();
        let start = 8 + 1 + 7 + 32 + 4 + 8;
        let (a, b) = (start + COIN_RECORD, start + 2 * COIN_RECORD);
        let first: Vec<u8> = raw[a..b].to_vec();
        raw.copy_within(b..b + COIN_RECORD, a);
        raw[b..b + COIN_RECORD].copy_from_slice(&first);
        assert!(matches!(read_all(&raw, None), Err(SnapshotError::Unsorted { index: 2 })));
    }
}
