//! Human-readable addresses: bech32m of the 32-byte x-only public key, with a
//! network-specific prefix, so a typo or an address of another network is caught.

use bech32::{Bech32m, Hrp};

/// Why a string is not an address of the expected network.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddressError {
    /// Not valid bech32m (bad characters or checksum).
    #[error("not a valid address: {0}")]
    Invalid(bech32::primitives::decode::CheckedHrpstringError),
    /// A valid address of another network.
    #[error("address is for network prefix '{found}', expected '{expected}'")]
    WrongNetwork {
        /// The prefix found.
        found: String,
        /// The prefix of this network.
        expected: &'static str,
    },
    /// The payload is not a 32-byte key.
    #[error("address payload is {0} bytes, expected 32")]
    BadLength(usize),
}

/// Encodes `pubkey` with the human-readable part `hrp`.
pub fn encode_address(hrp: &'static str, pubkey: &[u8; 32]) -> String {
    // The HRPs are compile-time constants of valid form; a failure here would be a bug
    // in `consensus::params`, caught by the params tests.
    let hrp = Hrp::parse(hrp).expect("network HRPs are valid");
    bech32::encode::<Bech32m>(hrp, pubkey).expect("32-byte payload always fits")
}

/// Decodes an address and checks that it belongs to the network with prefix `hrp`.
///
/// # Errors
/// [`AddressError`] for malformed strings, other networks' addresses and bad lengths.
pub fn decode_address(hrp: &'static str, s: &str) -> Result<[u8; 32], AddressError> {
    let checked = bech32::primitives::decode::CheckedHrpstring::new::<Bech32m>(s)
        .map_err(AddressError::Invalid)?;
    // BIP173: all upper case is as valid as all lower case (QR codes use it); the
    // decoder refuses mixed case.
    let found = checked.hrp().to_lowercase();
    if found != hrp {
        return Err(AddressError::WrongNetwork { found, expected: hrp });
    }
    let data: Vec<u8> = checked.byte_iter().collect();
    data.clone().try_into().map_err(|_| AddressError::BadLength(data.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn address_round_trips_and_rejects_other_networks_and_typos() {
        let key = [0x42; 32];
        let a = encode_address("mcrt", &key);
        assert!(a.starts_with("mcrt1"));
        assert_eq!(decode_address("mcrt", &a), Ok(key));
        assert!(matches!(decode_address("mc", &a), Err(AddressError::WrongNetwork { .. })));
        assert_eq!(decode_address("mcrt", &a.to_uppercase()), Ok(key), "all caps is the same");
        let mixed = format!("{}{}", &a[..6].to_uppercase(), &a[6..]);
        assert!(matches!(decode_address("mcrt", &mixed), Err(AddressError::Invalid(_))));
        let mut typo = a.clone();
        let last = typo.pop().unwrap();
        typo.push(if last == 'q' { 'p' } else { 'q' });
        assert!(matches!(decode_address("mcrt", &typo), Err(AddressError::Invalid(_))));
    }
}
