//! The wallet file: a seed phrase (sealed with a passphrase, or in the clear when the user
//! asks), the account's public key, how many receive and change addresses were handed
//! out, and the network. JSON, written atomically with mode 0600.
//!
//! ```json
//! {"version": 2, "network": "regtest", "account": "tpub…", "receive": 3, "change": 1,
//!  "seed": {"sealed": {"kdf": "argon2id", …, "ciphertext": "…"}}}
//! ```
//!
//! `seed` is `{"mnemonic": "…"}` in an unencrypted wallet. The public part (`account`,
//! the counts) is readable without the passphrase, so addresses and balances never ask for
//! it; the network and account key are the sealed seed's associated data, and unlocking
//! checks that the seed derives that account, so an edited file cannot redirect payments
//! without the passphrase failing. Older files hold one key (`{"network", "secret"}`), and
//! a node's `miner.key` is a bare hex key: both load as single-key wallets with one address.

use std::path::{Path, PathBuf};

use bip39::Mnemonic;
use secp256k1::Keypair;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::hd::{Account, AccountSecret, HdError, KeyChain, account_of};
use super::seal::{KdfCost, SealError, Sealed, open, seal};
use super::sign::pubkey_of;
use crate::consensus::Network;
use crate::primitives::address::encode_address;

/// Addresses past the last used one that a restore looks at before it stops (BIP44's 20).
pub const GAP_LIMIT: u32 = 20;

/// Why a wallet file could not be created or used.
#[derive(Debug, thiserror::Error)]
pub enum WalletError {
    /// `wallet new` and `wallet restore` never overwrite.
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
    /// The passphrase did not open the seed.
    #[error("wallet file {path}: {error}")]
    Locked {
        /// The file.
        path: PathBuf,
        /// Why.
        error: SealError,
    },
    /// Key derivation failed.
    #[error(transparent)]
    Hd(#[from] HdError),
}

/// The seed as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
enum StoredSeed {
    /// In the clear (an unencrypted wallet).
    Mnemonic(String),
    /// The phrase's entropy, sealed.
    Sealed(Sealed),
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileV2 {
    version: u32,
    network: String,
    account: String,
    receive: u32,
    change: u32,
    seed: StoredSeed,
}

/// Version 1: one key.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileV1 {
    network: String,
    secret: String,
}

enum Keys {
    /// A seed phrase's account.
    Hd { account: Account, seed: StoredSeed },
    /// One key (a version-1 file or a `miner.key`): never rewritten.
    Single(Keypair),
}

/// A loaded wallet: what it can show without its passphrase.
pub struct Wallet {
    path: PathBuf,
    network: Network,
    keys: Keys,
    receive: u32,
    change: u32,
    mode: Option<u32>,
}

/// An unlocked wallet: what signs.
pub enum Signer {
    /// The account's private key.
    Hd(AccountSecret),
    /// The one key.
    Single(Keypair),
}

impl Signer {
    /// The key of `chain`/`index` (a single-key wallet has only its key).
    ///
    /// # Errors
    /// [`HdError`] if derivation fails.
    pub fn keypair(&self, chain: KeyChain, index: u32) -> Result<Keypair, HdError> {
        match self {
            Signer::Hd(secret) => secret.keypair(chain, index),
            Signer::Single(key) => Ok(*key),
        }
    }
}

/// One address of a wallet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WalletAddress {
    /// Receive or change.
    pub chain: KeyChain,
    /// Index on its chain.
    pub index: u32,
    /// The x-only key outputs lock to.
    pub pubkey: [u8; 32],
}

fn aad(network: Network, account: &str) -> Vec<u8> {
    format!("minichain wallet v2\n{network}\n{account}").into_bytes()
}

impl Wallet {
    /// A new wallet at `path` with a fresh seed phrase of `words` words, sealed with
    /// `passphrase` (`None`: stored in the clear). Returns the phrase to show once.
    ///
    /// # Errors
    /// [`WalletError::Exists`], an I/O error, or a bad word count.
    pub fn create(
        path: &Path,
        network: Network,
        words: usize,
        passphrase: Option<&str>,
        cost: KdfCost,
    ) -> Result<(Self, Mnemonic), WalletError> {
        let mnemonic = super::hd::new_mnemonic(words)?;
        let wallet = Self::restore(path, network, &mnemonic, passphrase, cost)?;
        Ok((wallet, mnemonic))
    }

    /// A wallet at `path` from an existing seed phrase, with one receive address handed
    /// out ([`Self::set_counts`] records what a scan found).
    ///
    /// # Errors
    /// [`WalletError::Exists`] or an I/O error.
    pub fn restore(
        path: &Path,
        network: Network,
        mnemonic: &Mnemonic,
        passphrase: Option<&str>,
        cost: KdfCost,
    ) -> Result<Self, WalletError> {
        if path.exists() {
            return Err(WalletError::Exists(path.to_path_buf()));
        }
        let (account, _) = account_of(mnemonic)?;
        let seed = match passphrase {
            None => StoredSeed::Mnemonic(mnemonic.to_string()),
            Some(pass) => {
                let entropy = Zeroizing::new(mnemonic.to_entropy());
                let sealed = seal(&entropy, pass, &aad(network, &account.to_tpub()), cost)
                    .map_err(|error| WalletError::Locked { path: path.to_path_buf(), error })?;
                StoredSeed::Sealed(sealed)
            }
        };
        let wallet = Self {
            path: path.to_path_buf(),
            network,
            keys: Keys::Hd { account, seed },
            receive: 1,
            change: 0,
            mode: Some(0o600),
        };
        wallet.save()?;
        Ok(wallet)
    }

    /// Loads the wallet at `path` and checks it belongs to `network`. Never asks for the
    /// passphrase.
    ///
    /// # Errors
    /// [`WalletError`] for a missing, unreadable, malformed or foreign file.
    pub fn load(path: &Path, network: Network) -> Result<Self, WalletError> {
        let invalid = |reason: String| WalletError::Invalid { path: path.to_path_buf(), reason };
        let bytes = std::fs::read(path)
            .map_err(|error| WalletError::Io { path: path.to_path_buf(), error })?;
        let mode = file_mode(path);
        let single = |keypair| Self {
            path: path.to_path_buf(),
            network,
            keys: Keys::Single(keypair),
            receive: 1,
            change: 0,
            mode,
        };
        let text = String::from_utf8_lossy(&bytes);
        if let Some(key) = parse_secret(text.trim()) {
            // A bare key: a node's miner.key (it records no network).
            return Ok(single(key));
        }
        let value: serde_json::Value =
            serde_json::from_slice(&bytes).map_err(|e| invalid(e.to_string()))?;
        let found = value.get("network").and_then(|n| n.as_str()).unwrap_or_default().to_owned();
        let found_network: Network = found
            .parse()
            .map_err(|e: crate::consensus::params::UnknownNetwork| invalid(e.to_string()))?;
        if found_network != network {
            return Err(WalletError::WrongNetwork {
                path: path.to_path_buf(),
                found,
                expected: network,
            });
        }
        if value.get("version").is_none() {
            let file: FileV1 = serde_json::from_value(value).map_err(|e| invalid(e.to_string()))?;
            let mut secret = [0u8; 32];
            hex::decode_to_slice(file.secret.trim(), &mut secret)
                .map_err(|_| invalid("secret is not 64 hex digits".into()))?;
            let key = Keypair::from_secret_bytes(secret)
                .map_err(|_| invalid("secret is not a valid key".into()))?;
            return Ok(single(key));
        }
        let file: FileV2 = serde_json::from_value(value).map_err(|e| invalid(e.to_string()))?;
        if file.version != 2 {
            return Err(invalid(format!("version {} (this build reads 1 and 2)", file.version)));
        }
        let account = Account::from_tpub(&file.account).map_err(|e| invalid(e.to_string()))?;
        Ok(Self {
            path: path.to_path_buf(),
            network,
            keys: Keys::Hd { account, seed: file.seed },
            receive: file.receive.max(1),
            change: file.change,
            mode,
        })
    }

    /// Whether the seed is sealed with a passphrase.
    pub fn is_encrypted(&self) -> bool {
        matches!(&self.keys, Keys::Hd { seed: StoredSeed::Sealed(_), .. })
    }

    /// Whether it is a seed-phrase wallet (not a single key).
    pub fn is_hd(&self) -> bool {
        matches!(self.keys, Keys::Hd { .. })
    }

    /// The file's permission bits when others may read or write it (a warning for the
    /// user), `None` when only the owner may.
    pub fn loose_mode(&self) -> Option<u32> {
        self.mode.filter(|m| m & 0o077 != 0)
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Opens the seed: `passphrase` for a sealed one (ignored otherwise).
    ///
    /// # Errors
    /// [`WalletError::Locked`] for a wrong passphrase, a missing one or an altered file.
    pub fn unlock(&self, passphrase: Option<&str>) -> Result<Signer, WalletError> {
        match &self.keys {
            Keys::Single(key) => Ok(Signer::Single(*key)),
            Keys::Hd { .. } => Ok(Signer::Hd(self.open_seed(passphrase)?.1)),
        }
    }

    /// The seed phrase, for a user who wants to see it again (`None` for a single key).
    ///
    /// # Errors
    /// As [`Self::unlock`].
    pub fn mnemonic(&self, passphrase: Option<&str>) -> Result<Option<Mnemonic>, WalletError> {
        match &self.keys {
            Keys::Single(_) => Ok(None),
            Keys::Hd { .. } => Ok(Some(self.open_seed(passphrase)?.0)),
        }
    }

    /// The phrase and the account's private key, checked against the recorded account.
    fn open_seed(
        &self,
        passphrase: Option<&str>,
    ) -> Result<(Mnemonic, AccountSecret), WalletError> {
        let locked = |error| WalletError::Locked { path: self.path.clone(), error };
        let Keys::Hd { account, seed } = &self.keys else {
            return Err(locked(SealError::Malformed("a single key has no seed phrase".into())));
        };
        let mnemonic = match seed {
            StoredSeed::Mnemonic(words) => super::hd::parse_mnemonic(words)?,
            StoredSeed::Sealed(sealed) => {
                let pass = passphrase.ok_or_else(|| {
                    locked(SealError::Malformed(
                        "it is encrypted and no passphrase was given".into(),
                    ))
                })?;
                let entropy =
                    open(sealed, pass, &aad(self.network, &account.to_tpub())).map_err(locked)?;
                Mnemonic::from_entropy(&entropy)
                    .map_err(|e| locked(SealError::Malformed(e.to_string())))?
            }
        };
        let (derived, secret) = account_of(&mnemonic)?;
        if derived != *account {
            return Err(locked(SealError::Malformed(
                "its seed does not derive the account key it records (the file was altered)".into(),
            )));
        }
        Ok((mnemonic, secret))
    }

    /// The key of `chain`/`index`.
    ///
    /// # Errors
    /// [`HdError`] for an index of 2^31 or more.
    pub fn pubkey(&self, chain: KeyChain, index: u32) -> Result<[u8; 32], HdError> {
        match &self.keys {
            Keys::Hd { account, .. } => account.pubkey(chain, index),
            Keys::Single(key) => Ok(pubkey_of(key)),
        }
    }

    /// An address as text.
    pub fn encode(&self, pubkey: &[u8; 32]) -> String {
        encode_address(self.network.params().address_hrp, pubkey)
    }

    /// The first receive address (what `wallet new` printed; a single key's only one).
    pub fn address(&self) -> String {
        // Index 0 is below 2^31.
        self.encode(&self.pubkey(KeyChain::Receive, 0).unwrap_or_default())
    }

    /// Every address handed out: receive addresses, then change addresses.
    ///
    /// # Errors
    /// [`HdError`] if derivation fails.
    pub fn addresses(&self) -> Result<Vec<WalletAddress>, HdError> {
        let chains = [(KeyChain::Receive, self.receive), (KeyChain::Change, self.change)];
        let mut out = Vec::new();
        for (chain, count) in chains {
            for index in 0..count {
                out.push(WalletAddress { chain, index, pubkey: self.pubkey(chain, index)? });
            }
        }
        if !self.is_hd() {
            out.truncate(1);
        }
        Ok(out)
    }

    /// The address `chain`/`count` past the last handed out, and records it as handed out
    /// (saved to the file). A single-key wallet has only its one address.
    ///
    /// # Errors
    /// An I/O error saving the file, or [`HdError`].
    pub fn hand_out(&mut self, chain: KeyChain) -> Result<WalletAddress, WalletError> {
        if !self.is_hd() {
            let pubkey = self.pubkey(chain, 0)?;
            return Ok(WalletAddress { chain: KeyChain::Receive, index: 0, pubkey });
        }
        let count = match chain {
            KeyChain::Receive => &mut self.receive,
            KeyChain::Change => &mut self.change,
        };
        let index = *count;
        *count += 1;
        let address = WalletAddress { chain, index, pubkey: self.pubkey(chain, index)? };
        self.save()?;
        Ok(address)
    }

    /// The next change address without handing it out (see [`Self::hand_out`]).
    ///
    /// # Errors
    /// [`HdError`].
    pub fn next_change(&self) -> Result<WalletAddress, HdError> {
        if !self.is_hd() {
            return Ok(WalletAddress {
                chain: KeyChain::Receive,
                index: 0,
                pubkey: self.pubkey(KeyChain::Receive, 0)?,
            });
        }
        let index = self.change;
        Ok(WalletAddress {
            chain: KeyChain::Change,
            index,
            pubkey: self.pubkey(KeyChain::Change, index)?,
        })
    }

    /// Records how many addresses of each chain are in use (a restore's scan), saved.
    ///
    /// # Errors
    /// An I/O error saving the file.
    pub fn set_counts(&mut self, receive: u32, change: u32) -> Result<(), WalletError> {
        if !self.is_hd() {
            return Ok(());
        }
        self.receive = receive.max(1);
        self.change = change;
        self.save()
    }

    /// Writes the file (mode 0600, atomically). Single-key files are never rewritten.
    fn save(&self) -> Result<(), WalletError> {
        let Keys::Hd { account, seed } = &self.keys else { return Ok(()) };
        let file = FileV2 {
            version: 2,
            network: self.network.to_string(),
            account: account.to_tpub(),
            receive: self.receive,
            change: self.change,
            seed: seed.clone(),
        };
        let io = |error| WalletError::Io { path: self.path.clone(), error };
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        // Strings and numbers serialize.
        let json = serde_json::to_vec_pretty(&file).unwrap_or_default();
        crate::config::write_private(&self.path, &json).map_err(io)
    }
}

/// Scans `chain` from index 0 until [`GAP_LIMIT`] addresses in a row are unused, asking
/// `used` about each; returns how many addresses are in use (the last used index + 1).
///
/// # Errors
/// The first error of `used` or of derivation.
pub fn scan<E: From<HdError>>(
    wallet: &Wallet,
    chain: KeyChain,
    mut used: impl FnMut(&[[u8; 32]]) -> Result<Vec<bool>, E>,
) -> Result<u32, E> {
    let mut in_use = 0u32;
    let mut next = 0u32;
    while next < in_use + GAP_LIMIT {
        let batch: Vec<[u8; 32]> = (next..in_use + GAP_LIMIT)
            .map(|i| wallet.pubkey(chain, i))
            .collect::<Result<_, HdError>>()?;
        let answers = used(&batch)?;
        for (i, was_used) in (next..).zip(answers) {
            if was_used {
                in_use = i + 1;
            }
        }
        next += batch.len() as u32;
        if !wallet.is_hd() {
            break;
        }
    }
    Ok(in_use)
}

fn parse_secret(text: &str) -> Option<Keypair> {
    let mut secret = [0u8; 32];
    hex::decode_to_slice(text, &mut secret).ok()?;
    Keypair::from_secret_bytes(secret).ok()
}

fn file_mode(path: &Path) -> Option<u32> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(path).ok().map(|m| m.permissions().mode() & 0o777)
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHEAP: KdfCost = KdfCost { memory_kib: 64, iterations: 1, parallelism: 1 };

    #[test]
    fn create_load_unlock_and_refuse_to_overwrite_or_misuse() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.json");
        let (w, words) = Wallet::create(&path, Network::Regtest, 24, Some("pw"), CHEAP).unwrap();
        assert_eq!(words.word_count(), 24);
        let before = std::fs::read(&path).unwrap();
        assert!(!String::from_utf8_lossy(&before).contains(&words.to_string()), "sealed");
        assert!(matches!(
            Wallet::create(&path, Network::Regtest, 12, None, CHEAP),
            Err(WalletError::Exists(_))
        ));
        assert_eq!(std::fs::read(&path).unwrap(), before, "existing wallet untouched");
        let loaded = Wallet::load(&path, Network::Regtest).unwrap();
        assert_eq!(loaded.address(), w.address());
        assert!(loaded.is_encrypted() && loaded.loose_mode().is_none());
        assert!(matches!(
            loaded.unlock(Some("wrong")),
            Err(WalletError::Locked { error: SealError::WrongPassphrase, .. })
        ));
        assert!(matches!(loaded.unlock(None), Err(WalletError::Locked { .. })));
        let signer = loaded.unlock(Some("pw")).unwrap();
        let key = signer.keypair(KeyChain::Receive, 0).unwrap();
        assert_eq!(pubkey_of(&key), loaded.pubkey(KeyChain::Receive, 0).unwrap());
        assert_eq!(loaded.mnemonic(Some("pw")).unwrap(), Some(words));
        assert!(matches!(
            Wallet::load(&path, Network::Devnet),
            Err(WalletError::WrongNetwork { .. })
        ));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
            assert_eq!(Wallet::load(&path, Network::Regtest).unwrap().loose_mode(), Some(0o644));
        }
        std::fs::write(&path, b"garbage").unwrap();
        assert!(matches!(Wallet::load(&path, Network::Regtest), Err(WalletError::Invalid { .. })));
    }

    #[test]
    fn an_altered_account_key_fails_to_unlock_instead_of_redirecting_payments() {
        let dir = tempfile::tempdir().unwrap();
        let (path, other) = (dir.path().join("w.json"), dir.path().join("o.json"));
        Wallet::create(&path, Network::Regtest, 12, Some("pw"), CHEAP).unwrap();
        Wallet::create(&other, Network::Regtest, 12, None, CHEAP).unwrap();
        let mut file: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        let theirs: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&other).unwrap()).unwrap();
        file["account"] = theirs["account"].clone();
        std::fs::write(&path, serde_json::to_vec(&file).unwrap()).unwrap();
        let w = Wallet::load(&path, Network::Regtest).unwrap();
        assert!(matches!(
            w.unlock(Some("pw")),
            Err(WalletError::Locked { error: SealError::WrongPassphrase, .. })
        ));
        // In an unencrypted wallet the seed itself tells.
        let mut plain: serde_json::Value = theirs.clone();
        file["seed"] = serde_json::json!({"mnemonic": "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about"});
        plain["seed"] = file["seed"].clone();
        std::fs::write(&other, serde_json::to_vec(&plain).unwrap()).unwrap();
        let w = Wallet::load(&other, Network::Regtest).unwrap();
        assert!(matches!(w.unlock(None), Err(WalletError::Locked { .. })));
    }

    #[test]
    fn addresses_are_handed_out_in_order_and_survive_a_reload() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.json");
        let (mut w, _) = Wallet::create(&path, Network::Regtest, 12, None, CHEAP).unwrap();
        assert!(!w.is_encrypted());
        assert_eq!(w.addresses().unwrap().len(), 1);
        let r1 = w.hand_out(KeyChain::Receive).unwrap();
        assert_eq!((r1.chain, r1.index), (KeyChain::Receive, 1));
        let c0 = w.next_change().unwrap();
        assert_eq!(w.hand_out(KeyChain::Change).unwrap(), c0);
        let again = Wallet::load(&path, Network::Regtest).unwrap();
        let all = again.addresses().unwrap();
        assert_eq!(all.len(), 3);
        assert_eq!(all[1], r1);
        assert_eq!(all[2], c0);
    }

    #[test]
    fn old_single_key_files_and_a_miner_key_load_as_one_address() {
        let dir = tempfile::tempdir().unwrap();
        let key = crate::testkit::key(3);
        let secret = hex::encode(key.to_secret_bytes());
        let v1 = dir.path().join("v1.json");
        std::fs::write(&v1, format!("{{\"network\":\"regtest\",\"secret\":\"{secret}\"}}"))
            .unwrap();
        let miner = dir.path().join("miner.key");
        std::fs::write(&miner, format!("{secret}\n")).unwrap();
        for path in [&v1, &miner] {
            let mut w = Wallet::load(path, Network::Regtest).unwrap();
            assert!(!w.is_hd());
            assert_eq!(w.addresses().unwrap().len(), 1);
            assert_eq!(w.addresses().unwrap()[0].pubkey, pubkey_of(&key));
            assert_eq!(w.hand_out(KeyChain::Receive).unwrap().pubkey, pubkey_of(&key));
            assert_eq!(w.next_change().unwrap().pubkey, pubkey_of(&key));
            let signer = w.unlock(None).unwrap();
            assert_eq!(pubkey_of(&signer.keypair(KeyChain::Change, 7).unwrap()), pubkey_of(&key));
        }
        assert_eq!(
            std::fs::read_to_string(&miner).unwrap(),
            format!("{secret}\n"),
            "never rewritten"
        );
        std::fs::write(&v1, b"{\"network\":\"regtest\",\"secret\":\"zz\"}").unwrap();
        assert!(matches!(Wallet::load(&v1, Network::Regtest), Err(WalletError::Invalid { .. })));
    }

    #[test]
    fn a_scan_stops_after_the_gap_limit_and_finds_addresses_behind_used_ones() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.json");
        let (w, _) = Wallet::create(&path, Network::Regtest, 12, None, CHEAP).unwrap();
        let used: Vec<[u8; 32]> =
            [0, 5, 24, 43].iter().map(|i| w.pubkey(KeyChain::Receive, *i).unwrap()).collect();
        let mut asked = 0;
        let found = scan::<HdError>(&w, KeyChain::Receive, |batch| {
            asked += batch.len();
            Ok(batch.iter().map(|k| used.contains(k)).collect())
        })
        .unwrap();
        assert_eq!(found, 44, "43 is 19 past 24, within the gap");
        assert_eq!(asked, 44 + GAP_LIMIT as usize);
        let none = scan::<HdError>(&w, KeyChain::Change, |b| Ok(vec![false; b.len()])).unwrap();
        assert_eq!(none, 0);
    }
}
