//! The node's persistent libp2p key: a stable peer id across restarts.

use std::path::Path;

use libp2p::identity::Keypair;

use crate::config::write_private;

/// File name of the node key in the data dir.
pub const NODE_KEY_FILE: &str = "node_key";

/// Why the node key could not be loaded or created.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// Reading or writing the key file failed.
    #[error("node key file {path}: {error}")]
    Io {
        /// The file.
        path: String,
        /// The I/O error.
        error: std::io::Error,
    },
    /// The file exists but does not hold a key; it is left untouched.
    #[error("node key file {0} is not a valid key (move it away to create a new identity)")]
    Invalid(String),
}

/// Loads the key from `data_dir`, or creates one (mode 0600, written to a temporary file
/// and renamed so a crash never leaves half a key).
///
/// # Errors
/// [`IdentityError`] on I/O failure or a file that holds no key.
pub fn load_or_create(data_dir: &Path) -> Result<Keypair, IdentityError> {
    let path = data_dir.join(NODE_KEY_FILE);
    let io_err = |error| IdentityError::Io { path: path.display().to_string(), error };
    match std::fs::read(&path) {
        Ok(bytes) => Keypair::from_protobuf_encoding(&bytes)
            .map_err(|_| IdentityError::Invalid(path.display().to_string())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = Keypair::generate_ed25519();
            // Encoding an ed25519 key cannot fail.
            let bytes = key
                .to_protobuf_encoding()
                .map_err(|_| IdentityError::Invalid(path.display().to_string()))?;
            write_private(&path, &bytes).map_err(io_err)?;
            Ok(key)
        }
        Err(e) => Err(io_err(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_survives_a_reload_and_garbage_is_refused_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let a = load_or_create(dir.path()).unwrap();
        let b = load_or_create(dir.path()).unwrap();
        assert_eq!(a.public().to_peer_id(), b.public().to_peer_id());
        let path = dir.path().join(NODE_KEY_FILE);
        std::fs::write(&path, b"garbage").unwrap();
        assert!(matches!(load_or_create(dir.path()), Err(IdentityError::Invalid(_))));
        assert_eq!(std::fs::read(&path).unwrap(), b"garbage");
    }
}
