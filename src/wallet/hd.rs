//! Hierarchical keys: a BIP39 seed phrase, and BIP32 derivation from its seed along
//!
//! ```text
//!   m / 86' / 1' / 0' / chain / index        chain 0: receive, 1: change
//! ```
//!
//! The account key (`m/86'/1'/0'`, hardened) is the last private step; receive and change
//! keys derive from its public half, so a wallet can hand out addresses and watch them
//! without its seed. An output locks to the derived key's x-only public key as it is
//! (minichain has no BIP86 tweak), so other coins' wallets derive the same keys but not
//! the same outputs. The BIP39 passphrase (the "25th word") is empty: a wallet's own
//! passphrase seals the file, it does not change the keys.

use bip32::{ChildNumber, DerivationPath, ExtendedPrivateKey, ExtendedPublicKey, Prefix};
use bip39::Mnemonic;
use secp256k1::{Keypair, PublicKey, SecretKey};
use zeroize::Zeroizing;

/// The account's path, as documented above.
pub const ACCOUNT_PATH: &str = "m/86'/1'/0'";

/// Receive or change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum KeyChain {
    /// Addresses handed out to payers (`wallet receive`).
    Receive = 0,
    /// Where a payment's change goes.
    Change = 1,
}

impl KeyChain {
    /// Its name in output.
    pub fn name(self) -> &'static str {
        match self {
            KeyChain::Receive => "receive",
            KeyChain::Change => "change",
        }
    }
}

/// Why keys could not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HdError {
    /// The words are not a BIP39 phrase.
    #[error("not a BIP39 seed phrase: {0}")]
    Mnemonic(String),
    /// 12 or 24 words only.
    #[error("a seed phrase has 12 or 24 words, not {0}")]
    WordCount(usize),
    /// Derivation failed (an index past 2^31, or a key off the curve: odds ~2^-127).
    #[error("key derivation failed: {0}")]
    Derive(String),
}

/// A new random seed phrase of `words` words (12 or 24).
///
/// # Errors
/// [`HdError::WordCount`] for any other count.
pub fn new_mnemonic(words: usize) -> Result<Mnemonic, HdError> {
    let len = match words {
        12 => 16,
        24 => 32,
        n => return Err(HdError::WordCount(n)),
    };
    let mut entropy = Zeroizing::new([0u8; 32]);
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut entropy[..len]);
    Mnemonic::from_entropy(&entropy[..len]).map_err(|e| HdError::Mnemonic(e.to_string()))
}

/// Reads a seed phrase as people type it: any case, any whitespace between words.
///
/// # Errors
/// [`HdError`] for unknown words, a bad checksum or a count other than 12 or 24.
pub fn parse_mnemonic(text: &str) -> Result<Mnemonic, HdError> {
    let words: Vec<String> = text.split_whitespace().map(str::to_lowercase).collect();
    if words.len() != 12 && words.len() != 24 {
        return Err(HdError::WordCount(words.len()));
    }
    Mnemonic::parse_normalized(&words.join(" ")).map_err(|e| HdError::Mnemonic(e.to_string()))
}

/// The account's public key: every address of the wallet, no secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    xpub: ExtendedPublicKey<PublicKey>,
}

/// The account's private key: what signs.
pub struct AccountSecret {
    xprv: ExtendedPrivateKey<SecretKey>,
}

fn derive_err(e: bip32::Error) -> HdError {
    HdError::Derive(e.to_string())
}

fn child(n: u32) -> Result<ChildNumber, HdError> {
    ChildNumber::new(n, false).map_err(derive_err)
}

/// The account of a seed phrase.
///
/// # Errors
/// [`HdError::Derive`] in the 2^-127 case of an invalid key on the path.
pub fn account_of(mnemonic: &Mnemonic) -> Result<(Account, AccountSecret), HdError> {
    let seed = Zeroizing::new(mnemonic.to_seed(""));
    // The constant path parses.
    let path: DerivationPath = ACCOUNT_PATH.parse().map_err(derive_err)?;
    let xprv = ExtendedPrivateKey::<SecretKey>::derive_from_path(seed.as_ref(), &path)
        .map_err(derive_err)?;
    Ok((Account { xpub: xprv.public_key() }, AccountSecret { xprv }))
}

impl Account {
    /// The x-only public key outputs to `chain`/`index` lock to.
    ///
    /// # Errors
    /// [`HdError::Derive`] for an index of 2^31 or more (or the 2^-127 case).
    pub fn pubkey(&self, chain: KeyChain, index: u32) -> Result<[u8; 32], HdError> {
        let key = self
            .xpub
            .derive_child(child(chain as u32)?)
            .and_then(|c| c.derive_child(ChildNumber::new(index, false)?))
            .map_err(derive_err)?;
        Ok(key.public_key().x_only_public_key().0.to_byte_array())
    }

    /// As an extended public key (`tpub…`), for the wallet file.
    pub fn to_tpub(&self) -> String {
        self.xpub.to_string(Prefix::TPUB)
    }

    /// Reads [`Self::to_tpub`]'s form.
    ///
    /// # Errors
    /// [`HdError::Derive`] if it is not an extended public key at the account's depth.
    pub fn from_tpub(text: &str) -> Result<Self, HdError> {
        let xpub: ExtendedPublicKey<PublicKey> = text.parse().map_err(derive_err)?;
        if xpub.attrs().depth != 3 {
            return Err(HdError::Derive(format!(
                "account key at depth {}, not 3",
                xpub.attrs().depth
            )));
        }
        Ok(Self { xpub })
    }
}

impl AccountSecret {
    /// The key of `chain`/`index`.
    ///
    /// # Errors
    /// As [`Account::pubkey`].
    pub fn keypair(&self, chain: KeyChain, index: u32) -> Result<Keypair, HdError> {
        let key = self
            .xprv
            .derive_child(child(chain as u32)?)
            .and_then(|c| c.derive_child(ChildNumber::new(index, false)?))
            .map_err(derive_err)?;
        Ok(Keypair::from_secret_key(key.private_key()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bip39_vectors_give_their_phrases_and_seeds() {
        // From the BIP39 reference vectors (trezor/python-mnemonic vectors.json), passphrase
        // "TREZOR".
        let cases = [
            (
                "00000000000000000000000000000000",
                "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about",
                "c55257c360c07c72029aebc1b53c05ed0362ada38ead3e3e9efa3708e53495531f09a6987599d18264c1e1c92f2cf141630c7a3c4ab7c81b2f001698e7463b04",
            ),
            (
                "7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f",
                "legal winner thank year wave sausage worth useful legal winner thank year wave sausage worth useful legal winner thank year wave sausage worth title",
                "bc09fca1804f7e69da93c2f2028eb238c227f2e9dda30cd63699232578480a4021b146ad717fbb7e451ce9eb835f43620bf5c514db0f8add49f5d121449d3e87",
            ),
        ];
        for (entropy, words, seed) in cases {
            let m = Mnemonic::from_entropy(&hex::decode(entropy).unwrap()).unwrap();
            assert_eq!(m.to_string(), words);
            assert_eq!(hex::encode(m.to_seed("TREZOR")), seed);
            // Typed with capitals and extra spaces, it is the same phrase.
            let typed = format!("  {}\n", words.to_uppercase().replace(' ', "   "));
            assert_eq!(parse_mnemonic(&typed).unwrap(), m);
        }
    }

    #[test]
    fn bad_phrases_are_refused_with_the_reason() {
        let good = "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about";
        let bad_checksum = good.replace("about", "abandon");
        assert!(matches!(parse_mnemonic(&bad_checksum), Err(HdError::Mnemonic(_))));
        let unknown = good.replace("about", "bitcoin");
        assert!(matches!(parse_mnemonic(&unknown), Err(HdError::Mnemonic(_))));
        assert_eq!(parse_mnemonic("abandon about"), Err(HdError::WordCount(2)));
        assert_eq!(new_mnemonic(15).err(), Some(HdError::WordCount(15)));
        assert_eq!(new_mnemonic(12).unwrap().word_count(), 12);
        assert_eq!(new_mnemonic(24).unwrap().word_count(), 24);
        assert_ne!(new_mnemonic(24).unwrap(), new_mnemonic(24).unwrap());
    }

    #[test]
    fn bip32_vector_1_derives_through_this_crate_on_our_secp256k1() {
        // BIP32 test vector 1.
        let seed = hex::decode("000102030405060708090a0b0c0d0e0f").unwrap();
        let derive = |path: &str| {
            ExtendedPrivateKey::<SecretKey>::derive_from_path(&seed, &path.parse().unwrap())
                .unwrap()
        };
        let m = derive("m");
        assert_eq!(
            &*m.to_string(Prefix::XPRV),
            "xprv9s21ZrQH143K3QTDL4LXw2F7HEK3wJUD2nW2nRk4stbPy6cq3jPPqjiChkVvvNKmPGJxWUtg6LnF5kejMRNNU3TGtRBeJgk33yuGBxrMPHi"
        );
        assert_eq!(
            m.public_key().to_string(Prefix::XPUB),
            "xpub661MyMwAqRbcFtXgS5sYJABqqG9YLmC4Q1Rdap9gSE8NqtwybGhePY2gZ29ESFjqJoCu1Rupje8YtGqsefD265TMg7usUDFdp6W1EGMcet8"
        );
        let deep = derive("m/0'/1/2'/2/1000000000");
        assert_eq!(
            &*deep.to_string(Prefix::XPRV),
            "xprvA41z7zogVVwxVSgdKUHDy1SKmdb533PjDz7J6N6mV6uS3ze1ai8FHa8kmHScGpWmj4WggLyQjgPie1rFSruoUihUZREPSL39UNdE3BBDu76"
        );
        assert_eq!(
            deep.public_key().to_string(Prefix::XPUB),
            "xpub6H1LXWLaKsWFhvm6RVpEL9P4KfRZSW7abD2ttkWP3SSQvnyA8FSVqNTEcYFgJS2UaFcxupHiYkro49S8yGasTvXEYBVPamhGW6cFJodrTHy"
        );
    }

    #[test]
    fn public_and_private_derivation_agree_and_chains_differ() {
        let m = parse_mnemonic("abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about").unwrap();
        let (account, secret) = account_of(&m).unwrap();
        for chain in [KeyChain::Receive, KeyChain::Change] {
            for i in [0, 1, 1000] {
                let key = secret.keypair(chain, i).unwrap();
                assert_eq!(
                    account.pubkey(chain, i).unwrap(),
                    key.x_only_public_key().0.to_byte_array()
                );
            }
        }
        assert_ne!(account.pubkey(KeyChain::Receive, 0), account.pubkey(KeyChain::Change, 0));
        assert_ne!(account.pubkey(KeyChain::Receive, 0), account.pubkey(KeyChain::Receive, 1));
        assert!(account.pubkey(KeyChain::Receive, 1 << 31).is_err());
        let again = Account::from_tpub(&account.to_tpub()).unwrap();
        assert_eq!(again, account);
        assert!(account.to_tpub().starts_with("tpub"));
        assert!(Account::from_tpub("tpub").is_err());
    }
}
