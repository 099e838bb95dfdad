//! Starting from a UTXO snapshot (`--snapshot FILE --snapshot-hash HASH`): loading it into
//! a fresh data dir, opening the chain that validates its history (`history.redb`), and
//! falling back to that chain when the snapshot turns out wrong.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use tracing::{error, info, warn};

use super::{NodeConfig, NodeError, db_path};
use crate::chain::ChainState;
use crate::db::Store;
use crate::primitives::BlockHash;
use crate::storage::{ChainStore, SnapshotBase};

/// The history chain's database, beside `chain.redb`.
pub fn history_path(data_dir: &Path) -> PathBuf {
    data_dir.join("history.redb")
}

/// Where the database of a rejected snapshot's chain is kept.
fn rejected_path(data_dir: &Path) -> PathBuf {
    data_dir.join("chain.redb.rejected-snapshot")
}

/// Loads the snapshot in `file` into the data dir's database, which must hold no chain
/// yet; one that started from this very snapshot is left as it is (the flags may stay
/// on for restarts). A file that is not the snapshot of `hash` is refused and the data
/// dir left as it was.
pub(super) fn load(config: &NodeConfig, file: &Path, hash: &BlockHash) -> Result<(), NodeError> {
    let path = db_path(&config.data_dir);
    let existed = path.exists();
    let store = Store::open(&path, config.network)?;
    if store.snapshot_base()?.is_some_and(|base| base.hash == *hash) {
        return Ok(());
    }
    if existed && rejected_path(&config.data_dir).exists() {
        // The flags stayed on after the snapshot was rejected: the chain validated from
        // genesis replaced it, and is what goes on.
        warn!(snapshot = %hash, kept = %rejected_path(&config.data_dir).display(), "a snapshot was rejected in this data dir earlier: --snapshot is ignored, the chain validated from genesis goes on");
        return Ok(());
    }
    // A fresh store gets its genesis block.
    drop(ChainState::open(store.clone())?);
    let refused = |error| NodeError::Snapshot { path: file.to_owned(), error };
    let loaded = std::fs::File::open(file)
        .map_err(|e| refused(e.into()))
        .and_then(|input| store.load_snapshot(input, hash).map_err(refused));
    match loaded {
        Ok(info) => {
            info!(
                block = %info.block,
                height = info.height,
                coins = info.coins,
                snapshot = %hash,
                "snapshot loaded: {} coins at height {}; the chain goes on from there once that block's header arrives",
                info.coins,
                info.height
            );
            Ok(())
        }
        Err(e) => {
            drop(store);
            if !existed {
                // Nothing of ours is left behind: the data dir is as it was.
                let _ = std::fs::remove_file(&path);
            }
            Err(e)
        }
    }
}

/// The chain validating `base`'s history from genesis, on its own database.
pub(super) fn open_history(
    config: &NodeConfig,
    base: SnapshotBase,
) -> Result<(ChainState, Store), NodeError> {
    let store = Store::open(&history_path(&config.data_dir), config.network)?;
    let chain = ChainState::open(store.clone())?;
    if base.validated {
        info!(
            height = base.height,
            "snapshot at height {} validated from genesis earlier; its history is served from history.redb",
            base.height
        );
    } else {
        info!(
            height = chain.height(),
            base = base.height,
            "validating the snapshot's history in the background: {} of {} blocks",
            chain.height(),
            base.height
        );
    }
    Ok((chain, store))
}

/// What the node switches to when the snapshot is rejected.
pub(super) struct Fallback {
    pub data_dir: PathBuf,
    /// The history chain's database.
    pub history: Store,
    /// The database the API reads (shared with the node's handle).
    pub slot: Arc<RwLock<Option<Store>>>,
}

impl Fallback {
    /// The history chain replaced the snapshot's: the API reads its database from now on,
    /// and the files change places so that a restart opens it as the chain (the
    /// snapshot's is kept beside it as `chain.redb.rejected-snapshot`).
    pub(super) fn apply(&self) {
        if let Ok(mut slot) = self.slot.write()
            && slot.is_some()
        {
            *slot = Some(self.history.clone());
        }
        let chain = db_path(&self.data_dir);
        let rejected = rejected_path(&self.data_dir);
        let moved = std::fs::rename(&chain, &rejected)
            .and_then(|()| std::fs::rename(history_path(&self.data_dir), &chain));
        match moved {
            Ok(()) => {
                info!(path = %chain.display(), kept = %rejected.display(), "the chain validated from genesis is now {}; the snapshot's is kept as {}", chain.display(), rejected.display())
            }
            Err(e) => {
                error!(error = %e, "cannot move history.redb to chain.redb: start the node again from an empty data dir")
            }
        }
    }
}
