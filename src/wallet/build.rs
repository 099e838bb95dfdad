//! Amounts as people type them, coin selection, change, and signing a payment.

use secp256k1::Keypair;

use super::sign::signed_transaction;
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

/// The most fee a payment may pay without `--force` (Bitcoin Core's `-maxtxfee`
/// default, 0.1 coin).
pub const MAX_FEE: u64 = COIN / 10;

/// A fee that looks like a typing mistake.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FeeError {
    /// More than the payment itself.
    #[error("a fee of {} coins is more than the {} coins sent; pass --force if you mean it", format_coins(*.fee), format_coins(*.amount))]
    OverAmount {
        /// The fee.
        fee: u64,
        /// The amount.
        amount: u64,
    },
    /// More than [`MAX_FEE`].
    #[error("a fee of {} coins is over the {}-coin ceiling; pass --force if you mean it", format_coins(*.0), format_coins(MAX_FEE))]
    OverCeiling(u64),
}

/// Refuses a fee above the amount or above [`MAX_FEE`] (what `send` checks unless
/// `--force`).
///
/// # Errors
/// [`FeeError`] naming which.
pub fn check_fee(amount: u64, fee: u64) -> Result<(), FeeError> {
    if fee > amount {
        Err(FeeError::OverAmount { fee, amount })
    } else if fee > MAX_FEE {
        Err(FeeError::OverCeiling(fee))
    } else {
        Ok(())
    }
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
    /// The key it is locked to.
    pub owner: [u8; 32],
}

/// A signed payment and what it returns to the wallet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payment {
    /// The transaction.
    pub tx: Transaction,
    /// The change output's value, if it has one (output 1).
    pub change: Option<u64>,
    /// What output 0 pays.
    pub amount: u64,
    /// The fee.
    pub fee: u64,
}

/// How a payment's fee is set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FeeChoice {
    /// Exactly this many base units.
    Fixed(u64),
    /// At least this many base units per 1,000 bytes of the signed transaction.
    Rate(u64),
}

/// The fee that pays `rate` base units per 1,000 bytes for `size` bytes, rounded up (so
/// the mempool's rate, rounded down, is at least `rate`).
pub fn fee_for(rate: u64, size: usize) -> u64 {
    rate.saturating_mul(size as u64).div_ceil(1000)
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
    /// A sweep whose fee takes every coin.
    #[error("nothing to sweep: {} coins spendable, the fee is {}", format_coins(*.available), format_coins(*.fee))]
    NothingToSweep {
        /// Spendable total.
        available: u64,
        /// The fee.
        fee: u64,
    },
    /// Signing failed (a bug: all inputs are the wallet's).
    #[error("signing failed: {0}")]
    Sign(#[from] crate::wallet::sign::SignError),
}

/// Builds and signs a payment of `amount` to `to` with `fee`, spending `coins`
/// (confirmed first, largest first), with any change to `change`; `key_for` gives the
/// key of each coin's owner.
///
/// # Errors
/// [`BuildError::InsufficientFunds`] when the coins do not cover amount plus fee,
/// [`BuildError::Sign`] when `key_for` lacks a key.
pub fn build_payment<'k>(
    coins: &[Spendable],
    to: [u8; 32],
    amount: u64,
    fee: u64,
    change: [u8; 32],
    key_for: impl Fn(&[u8; 32]) -> Option<&'k Keypair>,
) -> Result<Payment, BuildError> {
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
    let mut outputs = vec![TxOut { value: amount, pubkey: to }];
    let change_value = (total > needed).then(|| total - needed);
    if let Some(value) = change_value {
        outputs.push(TxOut { value, pubkey: change });
    }
    let inputs: Vec<(OutPoint, TxOut)> =
        chosen.iter().map(|c| (c.outpoint, TxOut { value: c.value, pubkey: c.owner })).collect();
    let tx = signed_transaction(&inputs, outputs, key_for)?;
    Ok(Payment { tx, change: change_value, amount, fee })
}

/// Builds and signs a payment of `amount` to `to` (`None`: everything in `coins` less
/// the fee, a sweep with no change), its fee set by `fee`. A rate's fee depends on the
/// size, and the size on the coins the fee makes it spend: it starts from no fee and
/// rebuilds until the fee covers the signed size. The fee only rises, and each rise adds
/// coins or drops the change, so it settles within a round per coin.
///
/// # Errors
/// As [`build_payment`], and [`BuildError::NothingToSweep`] when a sweep's fee takes it all.
pub fn build_paying<'k>(
    coins: &[Spendable],
    to: [u8; 32],
    amount: Option<u64>,
    fee: FeeChoice,
    change: [u8; 32],
    key_for: impl Fn(&[u8; 32]) -> Option<&'k Keypair>,
) -> Result<Payment, BuildError> {
    let available: u64 = coins.iter().map(|c| c.value).sum();
    let build = |fee: u64| {
        let amount = match amount {
            Some(a) => a,
            None => available
                .checked_sub(fee)
                .filter(|a| *a > 0)
                .ok_or(BuildError::NothingToSweep { available, fee })?,
        };
        build_payment(coins, to, amount, fee, change, &key_for)
    };
    let rate = match fee {
        FeeChoice::Fixed(fee) => return build(fee),
        FeeChoice::Rate(rate) => rate,
    };
    let mut payment = build(0)?;
    for _ in 0..=coins.len() + 1 {
        let needed = fee_for(rate, payment.tx.size());
        if payment.fee >= needed {
            return Ok(payment);
        }
        payment = build(needed)?;
    }
    // Not reached (see above); the last build pays at least the rate of the one before.
    Ok(payment)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::primitives::Txid;
    use crate::wallet::sign::pubkey_of;

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
    fn a_fee_over_the_amount_or_the_ceiling_is_refused() {
        assert_eq!(check_fee(COIN, 10_000), Ok(()));
        assert_eq!(check_fee(COIN, MAX_FEE), Ok(()));
        assert_eq!(
            check_fee(COIN / 10, 50 * COIN),
            Err(FeeError::OverAmount { fee: 50 * COIN, amount: COIN / 10 })
        );
        assert_eq!(check_fee(10 * COIN, MAX_FEE + 1), Err(FeeError::OverCeiling(MAX_FEE + 1)));
        assert!(FeeError::OverCeiling(MAX_FEE + 1).to_string().contains("--force"));
    }

    #[test]
    fn payment_selects_coins_adds_change_and_signs() {
        // Coins of two keys; change to a third.
        let (key, other) = (crate::testkit::key(5), crate::testkit::key(6));
        let keys = [key, other];
        let key_for = |pk: &[u8; 32]| keys.iter().find(|k| pubkey_of(k) == *pk);
        let coin = |v, n, k: &Keypair| Spendable {
            outpoint: OutPoint { txid: Txid([n; 32]), vout: 0 },
            value: v,
            confirmed: true,
            owner: pubkey_of(k),
        };
        let coins = [coin(3 * COIN, 1, &other), coin(5 * COIN, 2, &key), coin(COIN, 3, &key)];
        let paid = build_payment(&coins, [9; 32], 6 * COIN, 1_000, [8; 32], key_for).unwrap();
        assert_eq!(paid.change, Some(2 * COIN - 1_000));
        let tx = paid.tx;
        assert_eq!(tx.inputs.len(), 2, "5 + 3 coins cover 6 + fee");
        assert_eq!(tx.outputs[0], TxOut { value: 6 * COIN, pubkey: [9; 32] });
        assert_eq!(tx.outputs[1], TxOut { value: 2 * COIN - 1_000, pubkey: [8; 32] });
        let spent: Vec<_> = tx
            .inputs
            .iter()
            .map(|i| {
                let c = coins.iter().find(|c| c.outpoint == i.prevout).unwrap();
                crate::primitives::Coin {
                    output: TxOut { value: c.value, pubkey: c.owner },
                    height: 1,
                    is_coinbase: false,
                }
            })
            .collect();
        assert_eq!(crate::consensus::tx::verify_signatures(&tx, &spent), Ok(()));
        assert!(matches!(
            build_payment(&coins, [9; 32], 9 * COIN, 1, [8; 32], key_for),
            Err(BuildError::InsufficientFunds { available, .. }) if available == 9 * COIN
        ));
        // Exactly amount plus fee: no change output.
        let exact = build_payment(&coins, [9; 32], 9 * COIN - 1, 1, [8; 32], key_for).unwrap();
        assert_eq!((exact.change, exact.tx.outputs.len()), (None, 1));
        // A coin whose key the wallet lacks cannot be signed.
        let stranger = [coin(COIN, 4, &crate::testkit::key(7))];
        assert!(matches!(
            build_payment(&stranger, [9; 32], 1_000, 1, [8; 32], key_for),
            Err(BuildError::Sign(_))
        ));
    }

    #[test]
    fn a_fee_rate_pays_for_the_signed_size_and_a_sweep_leaves_no_change() {
        let key = crate::testkit::key(5);
        let key_for = |pk: &[u8; 32]| (pubkey_of(&key) == *pk).then_some(&key);
        let coins: Vec<Spendable> = (1..=4u8)
            .map(|n| Spendable {
                outpoint: OutPoint { txid: Txid([n; 32]), vout: 0 },
                value: COIN,
                confirmed: true,
                owner: pubkey_of(&key),
            })
            .collect();
        let rate = 50_000;
        // 3.5 coins need four inputs; the fee is then for four inputs, not one.
        let paid = build_paying(
            &coins,
            [9; 32],
            Some(COIN * 7 / 2),
            FeeChoice::Rate(rate),
            [8; 32],
            key_for,
        )
        .unwrap();
        assert_eq!(paid.tx.inputs.len(), 4);
        assert_eq!(paid.fee, fee_for(rate, paid.tx.size()));
        assert_eq!(paid.change, Some(COIN / 2 - paid.fee));
        let sweep =
            build_paying(&coins, [9; 32], None, FeeChoice::Rate(rate), [8; 32], key_for).unwrap();
        assert_eq!((sweep.tx.inputs.len(), sweep.tx.outputs.len(), sweep.change), (4, 1, None));
        assert_eq!(sweep.amount + sweep.fee, 4 * COIN);
        assert!(sweep.fee >= fee_for(rate, sweep.tx.size()));
        let fixed =
            build_paying(&coins, [9; 32], None, FeeChoice::Fixed(1_234), [8; 32], key_for).unwrap();
        assert_eq!((fixed.fee, fixed.amount), (1_234, 4 * COIN - 1_234));
        assert_eq!(
            build_paying(&coins, [9; 32], None, FeeChoice::Fixed(4 * COIN), [8; 32], key_for),
            Err(BuildError::NothingToSweep { available: 4 * COIN, fee: 4 * COIN })
        );
    }
}
