//! The data directory: where a node keeps its database, key, cookie and logs.

use std::path::{Path, PathBuf};

use crate::consensus::Network;

/// File name of the redb database inside a data dir.
pub const DB_FILE: &str = "chain.redb";

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
