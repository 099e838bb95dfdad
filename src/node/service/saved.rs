//! What the driver keeps across a restart beside the database: the mempool
//! (`mempool.dat`) and the fee estimator's statistics (`fee_estimates.dat`), both in
//! [`crate::mempool::saved`]'s framing. A file that cannot be read is moved aside (never
//! deleted) and the node starts without it, saying so; a failed save is a warning.

use std::path::{Path, PathBuf};

use tracing::{info, warn};

use super::Driver;
use crate::config::{FEES_FILE, MEMPOOL_FILE, write_private};
use crate::mempool::saved::{decode_fees, decode_saved, encode_fees, encode_saved};

/// The bytes of `path`, or `None` when there is none or it cannot be read (`what` names
/// it in the warning).
fn read(path: &Path, what: &str) -> Option<Vec<u8>> {
    match std::fs::read(path) {
        Ok(bytes) => Some(bytes),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => {
            warn!(file = %path.display(), error = %e, "cannot read the saved {what}: starting without it");
            None
        }
    }
}

/// Moves a damaged `path` to `path.bad` and says so.
fn set_aside(path: &Path, what: &str, error: &dyn std::fmt::Display) {
    let mut aside = path.to_path_buf().into_os_string();
    aside.push(".bad");
    let aside = PathBuf::from(aside);
    let moved = match std::fs::rename(path, &aside) {
        Ok(()) => format!(" (moved to {})", aside.display()),
        Err(_) => String::new(),
    };
    warn!(file = %path.display(), %error, "the saved {what} is damaged: starting without it{moved}");
}

fn write(path: &Path, bytes: &[u8], what: &str, lost: &str) -> bool {
    match write_private(path, bytes) {
        Ok(()) => true,
        Err(e) => {
            warn!(file = %path.display(), error = %e, "cannot save the {what}: {lost}");
            false
        }
    }
}

impl Driver {
    /// Loads the saved fee statistics, then the saved mempool (each transaction
    /// validated again against the chain as it is now).
    pub(super) fn load_saved(&mut self) {
        let Some(dir) = self.saved_dir.clone() else { return };
        let path = dir.join(FEES_FILE);
        if let Some(bytes) = read(&path, "fee statistics") {
            match decode_fees(&bytes) {
                Ok(fees) => {
                    if self.core.restore_fees(fees) {
                        info!("fee statistics loaded");
                    } else {
                        info!(
                            "the saved fee statistics count from another relay minimum: starting afresh"
                        );
                    }
                }
                Err(e) => set_aside(&path, "fee statistics", &e),
            }
        }
        let path = dir.join(MEMPOOL_FILE);
        let Some(bytes) = read(&path, "mempool") else { return };
        match decode_saved(&bytes) {
            Ok(saved) => {
                let count = saved.len();
                let taken = self.core.restore_mempool(saved, self.clock.now());
                info!(
                    taken,
                    saved = count,
                    "mempool loaded: {taken} of {count} saved transactions still valid"
                );
            }
            Err(e) => set_aside(&path, "mempool", &e),
        }
    }

    /// Saves the mempool and the fee statistics for the next start (each atomically: a
    /// crash while writing leaves the previous file).
    pub(super) fn save_state(&self) {
        let Some(dir) = &self.saved_dir else { return };
        let saved = self.core.saved_mempool();
        let lost = "its transactions are lost at this stop";
        if write(&dir.join(MEMPOOL_FILE), &encode_saved(&saved), "mempool", lost) {
            info!(txs = saved.len(), "mempool saved: {} transactions", saved.len());
        }
        let fees = encode_fees(self.core.saved_fees());
        write(&dir.join(FEES_FILE), &fees, "fee statistics", "the next start estimates afresh");
    }
}
