//! Per-block difficulty with an absolutely scheduled exponential rule (Bitcoin Cash's
//! aserti3-2d, anchored at genesis).
//!
//! The anchor is block 1, not genesis: genesis is hard-coded long before anyone mines, so
//! a schedule starting there would leave every new network years behind it and pinned at
//! the easiest target. Block 1 is mined at genesis difficulty and fixes the start time.
//! The target of a later block depends only on how far its parent is ahead of or behind
//! the ideal schedule `block1_time + (height - 1) * spacing`: every `half_life` seconds behind
//! doubles the target (halves difficulty), every `half_life` ahead halves it. Because the
//! schedule is absolute, errors never accumulate, and a network whose hash power jumps by
//! 10x settles back to its spacing within a few half-lives.
//!
//! `2^x` for the fractional part is the cubic approximation of aserti3-2d, computed in
//! integers so every node gets the same bits.

use ruint::aliases::U256;

use super::params::Params;
use super::pow::{target_from_compact, target_to_compact};

/// Target for the block after a parent at `parent_height` (>= 1) with time `parent_time`,
/// on a chain whose block 1 has time `anchor_time`.
///
/// `anchor_target` is the genesis target; `pow_limit` caps the result.
pub fn next_target(
    anchor_target: U256,
    pow_limit: U256,
    params: &Params,
    parent_height: u32,
    parent_time: u32,
    anchor_time: u32,
) -> U256 {
    let time_delta = i128::from(parent_time) - i128::from(anchor_time);
    let ideal = i128::from(params.target_spacing) * (i128::from(parent_height) - 1);
    // Fixed point with 16 fractional bits; i128 cannot overflow for u32 inputs.
    let exponent = ((time_delta - ideal) * 65_536) / i128::from(params.asert_half_life);
    let shifts = exponent >> 16; // floor, also for negative exponents
    let frac = (exponent & 0xffff) as u128;
    let factor = 65_536
        + ((195_766_423_245_049 * frac
            + 971_821_376 * frac * frac
            + 5_127 * frac * frac * frac
            + (1u128 << 47))
            >> 48);
    // anchor * factor < 2^256 because anchor <= pow_limit < 2^239 and factor < 2^17.
    let scaled = anchor_target.saturating_mul(U256::from(factor));
    let total_shift = shifts - 16;
    let next = if total_shift < 0 {
        if total_shift <= -256 { U256::ZERO } else { scaled >> (-total_shift) as usize }
    } else if total_shift >= 256 || scaled.leading_zeros() < total_shift as usize {
        pow_limit
    } else {
        scaled << total_shift as usize
    };
    next.clamp(U256::from(1u8), pow_limit)
}

/// Compact bits demanded for the block after `(parent_height, parent_time)` on a chain
/// whose block 1 has time `anchor_time` (ignored while the parent is genesis: block 1
/// itself is mined at the genesis target).
pub fn next_bits(params: &Params, parent_height: u32, parent_time: u32, anchor_time: u32) -> u32 {
    if params.no_retarget {
        return params.pow_limit_bits;
    }
    if parent_height == 0 {
        return params.genesis_bits;
    }
    // Both are compile-time constants checked by the params tests.
    let anchor = target_from_compact(params.genesis_bits).unwrap_or(U256::from(1u8));
    let limit = target_from_compact(params.pow_limit_bits).unwrap_or(U256::from(1u8));
    target_to_compact(next_target(anchor, limit, params, parent_height, parent_time, anchor_time))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::consensus::params::{DEVNET, REGTEST};
    use crate::consensus::pow::work_from_bits;

    /// Block 1 of the simulated chains: mined long after genesis, as on any real network.
    const ANCHOR: u32 = DEVNET.genesis_time + 365 * 86_400;

    #[test]
    fn on_schedule_keeps_the_anchor_target() {
        let p = &DEVNET;
        assert_eq!(next_bits(p, 0, p.genesis_time, 0), p.genesis_bits);
        assert_eq!(next_bits(p, 1, ANCHOR, ANCHOR), p.genesis_bits);
        assert_eq!(next_bits(p, 101, ANCHOR + 500, ANCHOR), p.genesis_bits);
    }

    #[test]
    fn a_genesis_far_in_the_past_does_not_pin_difficulty_at_the_limit() {
        let p = &DEVNET;
        // A year after genesis, the second block still gets the genesis target.
        assert_ne!(next_bits(p, 1, ANCHOR, ANCHOR), p.pow_limit_bits);
    }

    #[test]
    fn one_half_life_behind_doubles_the_target() {
        let p = &DEVNET;
        let anchor = target_from_compact(p.genesis_bits).unwrap();
        let half = p.asert_half_life;
        let behind = target_from_compact(next_bits(p, 11, ANCHOR + 50 + half, ANCHOR)).unwrap();
        assert_eq!(behind, anchor * U256::from(2u8));
        let ahead = target_from_compact(next_bits(p, 71, ANCHOR + 350 - half, ANCHOR)).unwrap();
        assert_eq!(ahead, anchor / U256::from(2u8));
    }

    #[test]
    fn extremes_clamp_to_the_limit_and_stay_positive() {
        let p = &DEVNET;
        assert_eq!(next_bits(p, 1, u32::MAX, ANCHOR), p.pow_limit_bits);
        let hardest = target_from_compact(next_bits(p, u32::MAX / 8, ANCHOR, ANCHOR)).unwrap();
        assert!(hardest >= U256::from(1u8));
    }

    #[test]
    fn regtest_never_retargets() {
        assert_eq!(next_bits(&REGTEST, 500, REGTEST.genesis_time, 0), REGTEST.pow_limit_bits);
    }

    /// Simulates a miner with `speed` times the hash rate the genesis target was made for:
    /// each block takes `expected_hashes / (rate)` seconds (the mean of the exponential
    /// distribution, so the test is deterministic). Returns the mean spacing of the last
    /// `tail` blocks.
    fn simulate(speed: f64, blocks: u32, tail: u32) -> f64 {
        let p = &DEVNET;
        let genesis_work = work_from_bits(p.genesis_bits);
        // Hash rate that finds genesis-difficulty blocks exactly every target_spacing.
        let base_rate = u256_to_f64(genesis_work) / f64::from(p.target_spacing);
        let rate = base_rate * speed;
        let mut time = f64::from(ANCHOR);
        let mut times = Vec::new();
        for height in 1..blocks {
            let bits = next_bits(p, height, time as u32, ANCHOR);
            time += u256_to_f64(work_from_bits(bits)) / rate;
            times.push(time);
        }
        let n = times.len();
        (times[n - 1] - times[n - 1 - tail as usize]) / f64::from(tail)
    }

    fn u256_to_f64(v: U256) -> f64 {
        v.to_string().parse().unwrap()
    }

    /// A lone miner of `rate` nonces/s starting a fresh devnet: seconds to block 1, and
    /// seconds until the mean spacing over 24 blocks is within 3.5-7.5 s (mean block
    /// times, so deterministic).
    fn fresh_devnet(rate: f64) -> (f64, f64) {
        let p = &DEVNET;
        let first = u256_to_f64(work_from_bits(p.genesis_bits)) / rate;
        let mut times = vec![first];
        for height in 1..10_000u32 {
            let parent = times[times.len() - 1];
            let bits = next_bits(p, height, ANCHOR + (parent - first) as u32, ANCHOR);
            times.push(parent + u256_to_f64(work_from_bits(bits)) / rate);
            if let Some(start) = times.len().checked_sub(25) {
                let mean = (times[times.len() - 1] - times[start]) / 24.0;
                if (3.5..=7.5).contains(&mean) {
                    return (first, times[start]);
                }
            }
        }
        panic!("never settled at {rate} nonces/s");
    }

    #[test]
    fn a_fresh_devnet_mines_at_once_and_settles_within_minutes_on_any_cpu() {
        // From a CPU without SHA instructions (sha2 in software) to AVX-512 lanes on two
        // threads.
        for rate in [1.4e6, 8.4e6, 25e6, 50e6] {
            let (first, settled) = fresh_devnet(rate);
            assert!(first <= 15.0, "first block after {first:.1} s at {rate} nonces/s");
            assert!(settled <= 300.0, "settled after {settled:.0} s at {rate} nonces/s");
        }
    }

    #[test]
    fn a_miner_ten_times_faster_is_brought_back_to_the_target_spacing() {
        let spacing = simulate(10.0, 2_000, 200);
        assert!((4.0..6.0).contains(&spacing), "spacing {spacing}");
    }

    #[test]
    fn a_miner_ten_times_slower_is_brought_back_to_the_target_spacing() {
        let spacing = simulate(0.1, 2_000, 200);
        assert!((4.0..6.0).contains(&spacing), "spacing {spacing}");
    }
}
