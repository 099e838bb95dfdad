//! Header rules: proof of work in isolation; difficulty and time in context.

use super::error::HeaderError;
use super::params::Params;
use super::pow::{check_proof_of_work, target_from_compact};
use crate::primitives::BlockHeader;

/// What a header is checked against besides itself.
#[derive(Debug, Clone, Copy)]
pub struct HeaderContext {
    /// Bits the difficulty rule demands after the parent.
    pub expected_bits: u32,
    /// Median time of the parent and its 10 predecessors.
    pub median_time_past: u32,
    /// The local clock, seconds since the Unix epoch.
    pub now: u64,
}

/// Checks the proof of work of a header against its own bits and the network limit.
///
/// # Errors
/// [`HeaderError::InvalidBits`] or [`HeaderError::BadProofOfWork`].
pub fn check_header(header: &BlockHeader, params: &Params) -> Result<(), HeaderError> {
    let limit = target_from_compact(params.pow_limit_bits)
        .ok_or(HeaderError::InvalidBits { bits: params.pow_limit_bits })?;
    check_proof_of_work(&header.block_hash(), header.bits, limit)
}

/// Checks difficulty and time rules against the header's place in the chain.
///
/// # Errors
/// [`HeaderError::WrongBits`], [`HeaderError::TimeTooOld`] or [`HeaderError::TimeTooNew`].
pub fn check_header_in_context(
    header: &BlockHeader,
    ctx: &HeaderContext,
    params: &Params,
) -> Result<(), HeaderError> {
    if header.bits != ctx.expected_bits {
        return Err(HeaderError::WrongBits { expected: ctx.expected_bits, found: header.bits });
    }
    if header.time <= ctx.median_time_past {
        return Err(HeaderError::TimeTooOld {
            time: header.time,
            median_time_past: ctx.median_time_past,
        });
    }
    let max_allowed = ctx.now + u64::from(params.max_future_block_time);
    if u64::from(header.time) > max_allowed {
        return Err(HeaderError::TimeTooNew { time: header.time, max_allowed });
    }
    Ok(())
}

/// Median of up to 11 block times (the slice is reordered).
pub fn median_time(times: &mut [u32]) -> u32 {
    if times.is_empty() {
        return 0;
    }
    times.sort_unstable();
    times[times.len() / 2]
}
