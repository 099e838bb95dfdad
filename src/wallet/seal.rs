//! Sealing a wallet's seed with a passphrase: argon2id stretches the passphrase into a
//! key (memory-hard, so guessing costs memory as well as time), ChaCha20-Poly1305 encrypts
//! and authenticates the seed under it, with the wallet's public parts as associated data
//! (a changed network or account key fails like a wrong passphrase).

use argon2::{Algorithm, Argon2, Params, Version};
use chacha20poly1305::aead::{Aead, Payload};
use chacha20poly1305::{ChaCha20Poly1305, KeyInit, Nonce};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

/// How hard the passphrase is stretched. The default costs ~64 MiB and a few hundred
/// milliseconds on a 2020s server core (`cargo bench --bench wallet` measures it here).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct KdfCost {
    /// Memory, KiB.
    pub memory_kib: u32,
    /// Passes over it.
    pub iterations: u32,
    /// Lanes.
    pub parallelism: u32,
}

impl KdfCost {
    /// What new wallets are sealed with: 64 MiB, 3 passes, 1 lane (RFC 9106's second
    /// recommended setting, for memory-constrained hosts).
    pub const DEFAULT: Self = Self { memory_kib: 64 * 1024, iterations: 3, parallelism: 1 };
    /// The most a wallet file may ask for (4 GiB): a file cannot make `open` exhaust memory.
    const MAX_MEMORY_KIB: u32 = 4 * 1024 * 1024;
}

/// A sealed secret as the wallet file stores it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sealed {
    /// Always `argon2id`.
    pub kdf: String,
    /// Its cost.
    #[serde(flatten)]
    pub cost: KdfCost,
    /// Salt, hex (16 bytes).
    pub salt: String,
    /// Always `chacha20poly1305`.
    pub cipher: String,
    /// Nonce, hex (12 bytes).
    pub nonce: String,
    /// Ciphertext and tag, hex.
    pub ciphertext: String,
}

/// Why a sealed secret could not be opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    /// The AEAD refused: the passphrase is wrong, or the file was changed.
    #[error("wrong passphrase (or the wallet file was altered)")]
    WrongPassphrase,
    /// The sealed record is malformed or asks for something unsupported.
    #[error("the sealed seed is malformed: {0}")]
    Malformed(String),
}

fn stretch(passphrase: &str, salt: &[u8], cost: KdfCost) -> Result<Zeroizing<[u8; 32]>, SealError> {
    if cost.memory_kib > KdfCost::MAX_MEMORY_KIB {
        return Err(SealError::Malformed(format!("argon2id memory {} KiB", cost.memory_kib)));
    }
    let params = Params::new(cost.memory_kib, cost.iterations, cost.parallelism, Some(32))
        .map_err(|e| SealError::Malformed(format!("argon2id cost: {e}")))?;
    let mut key = Zeroizing::new([0u8; 32]);
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password_into(passphrase.as_bytes(), salt, key.as_mut())
        .map_err(|e| SealError::Malformed(format!("argon2id: {e}")))?;
    Ok(key)
}

/// Seals `secret` under `passphrase`, binding `aad` (authenticated, not encrypted).
///
/// # Errors
/// [`SealError::Malformed`] only for a cost argon2 refuses.
pub fn seal(
    secret: &[u8],
    passphrase: &str,
    aad: &[u8],
    cost: KdfCost,
) -> Result<Sealed, SealError> {
    let mut salt = [0u8; 16];
    let mut nonce = [0u8; 12];
    rand::rng().fill_bytes(&mut salt);
    rand::rng().fill_bytes(&mut nonce);
    let key = stretch(passphrase, &salt, cost)?;
    let cipher = ChaCha20Poly1305::new(key.as_ref().into());
    let ciphertext = cipher
        .encrypt(Nonce::from_slice(&nonce), Payload { msg: secret, aad })
        // Encryption fails only for messages of more than 256 GiB.
        .map_err(|_| SealError::Malformed("the secret is too long".into()))?;
    Ok(Sealed {
        kdf: "argon2id".into(),
        cost,
        salt: hex::encode(salt),
        cipher: "chacha20poly1305".into(),
        nonce: hex::encode(nonce),
        ciphertext: hex::encode(ciphertext),
    })
}

/// Opens `sealed` with `passphrase`; `aad` must be what it was sealed with.
///
/// # Errors
/// [`SealError::WrongPassphrase`] if the passphrase or anything authenticated differs,
/// [`SealError::Malformed`] for a record this build cannot read.
pub fn open(
    sealed: &Sealed,
    passphrase: &str,
    aad: &[u8],
) -> Result<Zeroizing<Vec<u8>>, SealError> {
    if sealed.kdf != "argon2id" || sealed.cipher != "chacha20poly1305" {
        return Err(SealError::Malformed(format!(
            "unknown kdf or cipher ({}, {})",
            sealed.kdf, sealed.cipher
        )));
    }
    let bytes = |name: &str, hex_str: &str, len: Option<usize>| {
        let v =
            hex::decode(hex_str).map_err(|_| SealError::Malformed(format!("{name} is not hex")))?;
        match len {
            Some(n) if v.len() != n => {
                Err(SealError::Malformed(format!("{name} is not {n} bytes")))
            }
            _ => Ok(v),
        }
    };
    let salt = bytes("salt", &sealed.salt, Some(16))?;
    let nonce = bytes("nonce", &sealed.nonce, Some(12))?;
    let ciphertext = bytes("ciphertext", &sealed.ciphertext, None)?;
    let key = stretch(passphrase, &salt, sealed.cost)?;
    let cipher = ChaCha20Poly1305::new(key.as_ref().into());
    cipher
        .decrypt(Nonce::from_slice(&nonce), Payload { msg: &ciphertext, aad })
        .map(Zeroizing::new)
        .map_err(|_| SealError::WrongPassphrase)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Cheap enough for tests; the default's cost is a benchmark.
    const CHEAP: KdfCost = KdfCost { memory_kib: 64, iterations: 1, parallelism: 1 };

    #[test]
    fn a_sealed_secret_opens_only_with_its_passphrase_and_associated_data() {
        let sealed = seal(b"sixteen byte key", "correct horse", b"regtest", CHEAP).unwrap();
        assert_eq!(
            open(&sealed, "correct horse", b"regtest").unwrap().as_slice(),
            b"sixteen byte key"
        );
        assert_eq!(open(&sealed, "correct hors", b"regtest"), Err(SealError::WrongPassphrase));
        assert_eq!(open(&sealed, "correct horse", b"devnet"), Err(SealError::WrongPassphrase));
        // Two seals of the same secret share neither salt nor nonce.
        let again = seal(b"sixteen byte key", "correct horse", b"regtest", CHEAP).unwrap();
        assert_ne!((&again.salt, &again.nonce), (&sealed.salt, &sealed.nonce));
    }

    #[test]
    fn a_tampered_record_is_refused_not_misread() {
        let sealed = seal(b"sixteen byte key", "pw", b"", CHEAP).unwrap();
        let mut flipped = sealed.clone();
        let mut ct = hex::decode(&flipped.ciphertext).unwrap();
        ct[3] ^= 1;
        flipped.ciphertext = hex::encode(ct);
        assert_eq!(open(&flipped, "pw", b""), Err(SealError::WrongPassphrase));
        let cheaper = Sealed { cost: KdfCost { iterations: 2, ..CHEAP }, ..sealed.clone() };
        assert_eq!(open(&cheaper, "pw", b""), Err(SealError::WrongPassphrase));
        let short = Sealed { nonce: "00".into(), ..sealed.clone() };
        assert!(matches!(open(&short, "pw", b""), Err(SealError::Malformed(_))));
        let huge = Sealed { cost: KdfCost { memory_kib: u32::MAX, ..CHEAP }, ..sealed.clone() };
        assert!(matches!(open(&huge, "pw", b""), Err(SealError::Malformed(_))));
        let other = Sealed { kdf: "scrypt".into(), ..sealed };
        assert!(matches!(open(&other, "pw", b""), Err(SealError::Malformed(_))));
    }
}
