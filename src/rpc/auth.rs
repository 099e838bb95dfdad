//! Cookie authentication, as Bitcoin Core does it: at start the node writes a fresh random
//! token to `<data-dir>/.cookie` (mode 0600); state-changing calls must present it as
//! `Authorization: Bearer <token>`. Anyone who can read the data dir may change state;
//! nobody else can. The file is removed on clean shutdown.

use std::path::{Path, PathBuf};

use rand::RngCore;

use crate::config::write_private;

/// File name of the cookie in the data dir.
pub const COOKIE_FILE: &str = ".cookie";

/// The node's API token and where it is written.
#[derive(Debug)]
pub struct Cookie {
    path: PathBuf,
    token: String,
}

impl Cookie {
    /// Writes a fresh 32-byte random token to `data_dir/.cookie`.
    ///
    /// # Errors
    /// The I/O error if the file cannot be written.
    pub fn create(data_dir: &Path) -> std::io::Result<Self> {
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        let token = hex::encode(bytes);
        let path = data_dir.join(COOKIE_FILE);
        write_private(&path, token.as_bytes())?;
        Ok(Self { path, token })
    }

    /// The token.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// Deletes the cookie file (clean shutdown).
    pub fn remove(&self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Reads the token a node wrote into `data_dir`.
///
/// # Errors
/// The I/O error (typically: no node has run with this data dir, or no permission).
pub fn read_cookie(data_dir: &Path) -> std::io::Result<String> {
    Ok(std::fs::read_to_string(data_dir.join(COOKIE_FILE))?.trim().to_owned())
}

/// Compares tokens in time independent of where they differ.
pub fn token_matches(expected: &str, given: &str) -> bool {
    expected.len() == given.len()
        && expected.bytes().zip(given.bytes()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
}
