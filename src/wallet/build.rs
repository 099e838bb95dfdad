//! Amounts as people type them, coin selection, change, and signing a payment.

use secp256k1::Keypair;

use super::sign::{pubkey_of, signed_transaction};
use crate::consensus::MAX_MONEY;
use crate::primitives::{COIN, OutPoint, Transaction, TxOut};

/// An amount string that is not a valid number of coins.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "'{0}' is not an amount of coins (a positive number with at most 8 decimals, at most 21000000)"
)]
pub struct AmountError(pub String);

/// Parses coins with up to 8 decimals ("1", "0.5", "12.00000001") into base units.
///
/// # Errors
/// [`AmountError`] for anything else, including zero, negatives and over MAX_MONEY.
pub fn parse_coins(s: &str) -> Result<u64, AmountError> {
    let err = || AmountError(s.to_owned());
    let t = s.trim();
    let (whole, frac) = t.split_once('.').unwrap_or((t, ""));
    let digits = |d: &str| d.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() && frac.is_empty() || !digits(whole) || !digits(frac) || frac.len() > 8 {
        return Err(err());
    }
    let whole: u64 = if whole.is_empty() { 0 } else { whole.parse().map_err(|_| err())? };
    let frac: u64 = format!("{frac:0<8}").parse().map_err(|_| err())?;
    let units = whole.checked_mul(COIN).and_then(|w| w.checked_add(frac)).ok_or_else(err)?;
    if units == 0 || units > MAX_MONEY { Err(err()) } else { Ok(units) }
}

/// Base units as coins with 8 decimals.
pub fn format_coins(units: u64) -> String {
    format!("{}.{:08}", units / COIN, units % COIN)
}

/// An output the wallet may spend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Spendable {
    /// Where it is.
    pub outpoint: OutPoint,
    /// Its value.
    pub value: u64,
    /// Whether it is confirmed (preferred over own unconfirmed change).
    pub confirmed: bool,
}

/// Why a payment could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BuildError {
    /// Not enough spendable coins.
    #[error("insufficient funds: {} coins spendable, {} needed (amount plus fee)", format_coins(*.available), format_coins(*.needed))]
    InsufficientFunds {
        /// Spendable total.
        available: u64,
        /// Amount plus fee.
        needed: u64,
    },
    /// Signing failed (a bug: all inputs are the wallet's).
    #[error("signing failed: {0}")]
    Sign(#[from] crate::wallet::sign::SignError),
}

/// Builds and signs a payment of `amount` to `to` with `fee`, spending the wallet's
/// `coins` (confirmed first, largest first) and returning change to the wallet.
///
/// # Errors
/// [`BuildError::InsufficientFunds`] when the coins do not cover amount plus fee.
pub fn build_payment(
    coins: &[Spendable],
    to: [u8; 32],
    amount: u64,
    fee: u64,
    keypair: &Keypair,
) -> Result<Transaction, BuildError> {
    let needed = amount.saturating_add(fee);
    let mut sorted = coins.to_vec();
    sorted.sort_by_key(|c| (std::cmp::Reverse(c.confirmed), std::cmp::Reverse(c.value)));
    let mut chosen = Vec::new();
    let mut total = 0u64;
    for coin in sorted {
        if total >= needed {
            break;
        }
        total = total.saturating_add(coin.value);
        chosen.push(coin);
    }
    if total < needed {
        let available = coins.iter().map(|c| c.value).sum();
        return Err(BuildError::InsufficientFunds { available, needed });
    }
    let own = pubkey_of(keypair);
    let mut outputs = vec![TxOut { value: amount, pubkey: to }];
    if total > needed {
        outputs.push(TxOut { value: total - needed, pubkey: own });
    }
    let inputs: Vec<(OutPoint, TxOut)> =
        chosen.iter().map(|c| (c.outpoint, TxOut { value: c.value, pubkey: own })).collect();
    Ok(signed_transaction(&inputs, outputs, |_| Some(keypair))?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::primitives::Txid;

    #[test]
    fn amounts_parse_exactly_and_bad_ones_are_refused() {
        assert_eq!(parse_coins("1"), Ok(COIN));
        assert_eq!(parse_coins("0.5"), Ok(COIN / 2));
        assert_eq!(parse_coins("12.00000001"), Ok(12 * COIN + 1));
        assert_eq!(parse_coins(".25"), Ok(COIN / 4));
        for bad in ["", "0", "-1", "1.123456789", "abc", "1e3", "21000001", "1.2.3", "."] {
            assert!(parse_coins(bad).is_err(), "{bad}");
        }
        assert_eq!(format_coins(12 * COIN + 1), "12.00000001");
    }

    #[test]
    fn payment_selects_coins_adds_change_and_signs() {
        let key = crate::testkit::key(5);
        let coin = |v, n| Spendable {
            outpoint: OutPoint { txid: Txid([n; 32]), vout: 0 },
            value: v,
            confirmed: true,
        };
        let coins = [coin(3 * COIN, 1), coin(5 * COIN, 2), coin(COIN, 3)];
        let tx = build_payment(&coins, [9; 32], 6 * COIN, 1_000, &key).unwrap();
        assert_eq!(tx.inputs.len(), 2, "5 + 3 coins cover 6 + fee");
        assert_eq!(tx.outputs[0], TxOut { value: 6 * COIN, pubkey: [9; 32] });
        assert_eq!(tx.outputs[1].value, 2 * COIN - 1_000);
        let spent: Vec<_> = tx
            .inputs
            .iter()
            .map(|i| {
                let c = coins.iter().find(|c| c.outpoint == i.prevout).unwrap();
                crate::primitives::Coin {
                    output: TxOut { value: c.value, pubkey: pubkey_of(&key) },
                    height: 1,
                    is_coinbase: false,
                }
            })
            .collect();
        assert_eq!(crate::consensus::tx::verify_signatures(&tx, &spent), Ok(()));
        assert!(matches!(
            build_payment(&coins, [9; 32], 9 * COIN, 1, &key),
            Err(BuildError::InsufficientFunds { available, .. }) if available == 9 * COIN
        ));
    }
}
