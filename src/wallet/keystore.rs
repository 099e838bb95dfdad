//! The wallet file: one secp256k1 key and the network it belongs to, as JSON, readable by
//! the owner only (0600), never overwritten.

use std::io::Write;
use std::path::{Path, PathBuf};

use secp256k1::Keypair;
use serde::{Deserialize, Serialize};

use super::sign::pubkey_of;
use crate::consensus::Network;
use crate::primitives::address::encode_address;

/// Why a wallet file could not be created or used.
#[derive(Debug, thiserror::Error)]
pub enum WalletError {
    /// `wallet new` never overwrites.
    #[error("wallet file {0} already exists; it was not touched")]
    Exists(PathBuf),
    /// Reading or writing failed.
    #[error("wallet file {path}: {error}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        error: std::io::Error,
    },
    /// The file does not hold a wallet.
    #[error("wallet file {path} is not a minichain wallet: {reason}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A wallet of another network.
    #[error("wallet file {path} is for network {found}, not {expected}")]
    WrongNetwork {
        /// The file.
        path: PathBuf,
        /// Its network.
        found: String,
        /// The network asked for.
        expected: Network,
    },
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct WalletFile {
    network: String,
    secret: String,
}

/// A loaded wallet.
pub struct Wallet {
    network: Network,
    keypair: Keypair,
}

impl Wallet {
    /// Creates a new key in a new file at `path` (mode 0600); refuses an existing file.
    ///
    /// # Errors
    /// [`WalletError::Exists`] or an I/O error.
    pub fn create(path: &Path, network: Network) -> Result<Self, WalletError> {
        let keypair = Keypair::new(&mut rand::rng());
        let file = WalletFile {
            network: network.to_string(),
            secret: hex::encode(keypair.to_secret_bytes()),
        };
        let io = |error| WalletError::Io { path: path.to_path_buf(), error };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut f = options.open(path).map_err(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => WalletError::Exists(path.to_path_buf()),
            _ => io(e),
        })?;
        // Serializing two strings cannot fail.
        let json = serde_json::to_vec_pretty(&file).unwrap_or_default();
        f.write_all(&json).and_then(|()| f.sync_all()).map_err(io)?;
        Ok(Self { network, keypair })
    }

    /// Loads the wallet at `path` and checks it belongs to `network`.
    ///
    /// # Errors
    /// [`WalletError`] for a missing, unreadable, malformed or foreign file.
    pub fn load(path: &Path, network: Network) -> Result<Self, WalletError> {
        let invalid = |reason: String| WalletError::Invalid { path: path.to_path_buf(), reason };
        let bytes = std::fs::read(path)
            .map_err(|error| WalletError::Io { path: path.to_path_buf(), error })?;
        let file: WalletFile =
            serde_json::from_slice(&bytes).map_err(|e| invalid(e.to_string()))?;
        let found: Network = file
            .network
            .parse()
            .map_err(|e: crate::consensus::params::UnknownNetwork| invalid(e.to_string()))?;
        if found != network {
            return Err(WalletError::WrongNetwork {
                path: path.to_path_buf(),
                found: file.network,
                expected: network,
            });
        }
        let mut secret = [0u8; 32];
        hex::decode_to_slice(file.secret.trim(), &mut secret)
            .map_err(|_| invalid("secret is not 64 hex digits".into()))?;
        let keypair = Keypair::from_secret_bytes(secret)
            .map_err(|_| invalid("secret is not a valid key".into()))?;
        Ok(Self { network, keypair })
    }

    /// The key.
    pub fn keypair(&self) -> &Keypair {
        &self.keypair
    }

    /// The x-only public key outputs lock to.
    pub fn pubkey(&self) -> [u8; 32] {
        pubkey_of(&self.keypair)
    }

    /// The address.
    pub fn address(&self) -> String {
        encode_address(self.network.params().address_hrp, &self.pubkey())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_load_and_refuse_to_overwrite_or_misuse() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.json");
        let w = Wallet::create(&path, Network::Regtest).unwrap();
        let before = std::fs::read(&path).unwrap();
        assert!(matches!(Wallet::create(&path, Network::Regtest), Err(WalletError::Exists(_))));
        assert_eq!(std::fs::read(&path).unwrap(), before, "existing wallet untouched");
        assert_eq!(Wallet::load(&path, Network::Regtest).unwrap().address(), w.address());
        assert!(matches!(
            Wallet::load(&path, Network::Devnet),
            Err(WalletError::WrongNetwork { .. })
        ));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
        std::fs::write(&path, b"{\"network\":\"regtest\",\"secret\":\"zz\"}").unwrap();
        assert!(matches!(Wallet::load(&path, Network::Regtest), Err(WalletError::Invalid { .. })));
        std::fs::write(&path, b"garbage").unwrap();
        assert!(matches!(Wallet::load(&path, Network::Regtest), Err(WalletError::Invalid { .. })));
    }
}
