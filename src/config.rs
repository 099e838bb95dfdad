//! The data directory: where a node keeps its database, key, cookie and logs.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::consensus::Network;

/// File name of the redb database inside a data dir.
pub const DB_FILE: &str = "chain.redb";
/// File name of the mempool saved at shutdown inside a data dir.
pub const MEMPOOL_FILE: &str = "mempool.dat";
/// The default wallet inside a data dir: `minichain wallet`'s, and the one the node's
/// miner pays.
pub const WALLET_FILE: &str = "wallet.json";
/// The fee estimator's statistics, saved beside the mempool.
pub const FEES_FILE: &str = "fee_estimates.dat";

/// The default data dir of `network`: `$XDG_DATA_HOME/minichain/<network>`, else
/// `$HOME/.local/share/minichain/<network>`, else `./minichain-data/<network>`.
pub fn default_data_dir(network: Network) -> PathBuf {
    let base = std::env::var_os("XDG_DATA_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".local/share")))
        .map_or_else(|| PathBuf::from("minichain-data"), |d| d.join("minichain"));
    base.join(network.as_str())
}

/// Path of the database in `data_dir`.
pub fn db_path(data_dir: &Path) -> PathBuf {
    data_dir.join(DB_FILE)
}

/// Writes `bytes` to `path` readable by the owner only (0600), atomically: a temporary
/// file beside it, synced, renamed over it, and the directory synced, so a crash leaves
/// the old file or the new one, never a torn one.
///
/// # Errors
/// The I/O error.
pub fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = options.open(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}
