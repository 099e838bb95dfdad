//! The nonce search, with the SHA-256 midstate trick.
//!
//! A header is 80 bytes: SHA-256 processes it as one 64-byte block plus a second block
//! holding the last 16 bytes (end of the Merkle root, time, bits, nonce) and padding. The
//! first block never changes while the nonce does, so its compression (the midstate) is
//! done once; each nonce then costs one compression for the second block and one for the
//! outer hash: 2 instead of 3.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use ruint::aliases::U256;
use sha2::block_api::compress256;

use super::lanes::{Engine, Prepared};
use crate::primitives::BlockHeader;

/// SHA-256 initial state.
pub(crate) const IV: [u32; 8] = [
    0x6a09_e667,
    0xbb67_ae85,
    0x3c6e_f372,
    0xa54f_f53a,
    0x510e_527f,
    0x9b05_688c,
    0x1f83_d9ab,
    0x5be0_cd19,
];

/// Nonces between checks of the stop flags.
const CHECK_EVERY: u32 = 1 << 14;

/// The header's first 64 bytes compressed, and the second block with padding.
#[derive(Clone, Copy)]
pub struct Midstate {
    state: [u32; 8],
    tail: [u8; 64],
}

impl Midstate {
    /// Precomputes the midstate of `header`.
    pub fn new(header: &BlockHeader) -> Self {
        let bytes = header.to_bytes();
        let mut state = IV;
        let mut first = [0u8; 64];
        first.copy_from_slice(&bytes[..64]);
        compress256(&mut state, &[first]);
        let mut tail = [0u8; 64];
        tail[..16].copy_from_slice(&bytes[64..]);
        tail[16] = 0x80;
        tail[56..].copy_from_slice(&(80u64 * 8).to_be_bytes());
        Self { state, tail }
    }

    /// The state after the header's first 64 bytes.
    #[must_use]
    pub fn state(&self) -> [u32; 8] {
        self.state
    }

    /// The second block: the header's last 16 bytes (nonce last) and the padding.
    #[must_use]
    pub fn tail(&self) -> &[u8; 64] {
        &self.tail
    }

    /// The header hash with `nonce`, as SHA-256 state words of the outer hash.
    #[inline]
    pub fn hash_words(&self, nonce: u32) -> [u32; 8] {
        let mut tail = self.tail;
        tail[12..16].copy_from_slice(&nonce.to_le_bytes());
        let mut inner = self.state;
        compress256(&mut inner, &[tail]);
        let mut second = [0u8; 64];
        for (chunk, word) in second[..32].chunks_exact_mut(4).zip(inner) {
            chunk.copy_from_slice(&word.to_be_bytes());
        }
        second[32] = 0x80;
        second[56..].copy_from_slice(&(32u64 * 8).to_be_bytes());
        let mut outer = IV;
        compress256(&mut outer, &[second]);
        outer
    }
}

/// The hash bytes (internal order) from the outer state words.
fn words_to_hash(words: &[u32; 8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    for (chunk, word) in out.chunks_exact_mut(4).zip(words) {
        chunk.copy_from_slice(&word.to_be_bytes());
    }
    out
}

/// Whether the hash in `words` meets `target`; `top` is the target's most significant
/// 32 bits, which settle almost every nonce without building a 256-bit number.
#[inline]
fn meets(words: &[u32; 8], target: &U256, top: u32) -> bool {
    // Byte 31 of the hash is the number's most significant byte: the top 32 bits of the
    // number are the last state word, byte-swapped.
    let hi = words[7].swap_bytes();
    if hi != top {
        return hi < top;
    }
    U256::from_le_bytes(words_to_hash(words)) <= *target
}

/// The most significant 32 bits of a 256-bit target.
fn target_top32(target: &U256) -> u32 {
    let shifted: U256 = *target >> 224usize;
    shifted.as_limbs()[0] as u32
}

/// How a search ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SearchOutcome {
    /// A nonce that meets the target.
    Found(u32),
    /// Every nonce was tried: roll the extra nonce.
    Exhausted,
    /// Stopped from outside (new tip, shutdown).
    Cancelled,
}

/// Searches all 2^32 nonces of `header` on `threads` threads with the fastest engine this
/// CPU has ([`Engine::detect`]). `cancel` stops the search early; `hashes` counts nonces
/// tried (for the hash rate).
pub fn search(
    header: &BlockHeader,
    target: U256,
    threads: usize,
    cancel: &AtomicBool,
    hashes: &AtomicU64,
) -> SearchOutcome {
    let found = AtomicBool::new(false);
    let results = on_threads(Engine::detect(), header, threads, 1 << 32, |job, start, end| {
        search_range(job, &target, start, end, cancel, &found, hashes)
    });
    match results.into_iter().flatten().next() {
        Some(nonce) => SearchOutcome::Found(nonce),
        None if cancel.load(Ordering::Relaxed) => SearchOutcome::Cancelled,
        None => SearchOutcome::Exhausted,
    }
}

/// What every search thread shares: the engine and the header's precomputed part.
struct Job {
    engine: Engine,
    prepared: Prepared,
}

/// Runs `work(job, start, end)` on `threads` threads over equal parts of `0..nonces`.
fn on_threads<F>(
    engine: Engine,
    header: &BlockHeader,
    threads: usize,
    nonces: u64,
    work: F,
) -> Vec<Option<u32>>
where
    F: Fn(&Job, u64, u64) -> Option<u32> + Sync,
{
    let threads = threads.clamp(1, 256) as u64;
    let job = Job { engine, prepared: Prepared::new(header) };
    let span = nonces.div_ceil(threads);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let (job, work) = (&job, &work);
                let (start, end) = (t * span, ((t + 1) * span).min(nonces));
                s.spawn(move || work(job, start, end))
            })
            .collect();
        handles.into_iter().map(|h| h.join().ok().flatten()).collect()
    })
}

/// Tries nonces `start..end` (`end` <= 2^32), the engine's lanes at a time. A lane's
/// candidate is rechecked on the scalar path before it is returned.
fn search_range(
    job: &Job,
    target: &U256,
    start: u64,
    end: u64,
    cancel: &AtomicBool,
    found: &AtomicBool,
    hashes: &AtomicU64,
) -> Option<u32> {
    let top = target_top32(target);
    let lanes = u64::from(job.engine.lanes());
    let mut nonce = start;
    while nonce < end {
        let batch_end = (nonce + u64::from(CHECK_EVERY)).min(end);
        let mut n = nonce;
        while n < batch_end {
            // n < 2^32 by construction of the ranges; lanes past `end` are ignored.
            let mut hits = job.engine.screen(&job.prepared, n as u32, top);
            while hits != 0 {
                let candidate = n + u64::from(hits.trailing_zeros());
                hits &= hits - 1;
                if candidate < end
                    && meets(&job.prepared.mid.hash_words(candidate as u32), target, top)
                {
                    hashes.fetch_add(candidate - nonce + 1, Ordering::Relaxed);
                    found.store(true, Ordering::Relaxed);
                    return Some(candidate as u32);
                }
            }
            n += lanes;
        }
        let n = n.min(end);
        hashes.fetch_add(n - nonce, Ordering::Relaxed);
        nonce = n;
        if cancel.load(Ordering::Relaxed) || found.load(Ordering::Relaxed) {
            return None;
        }
    }
    None
}

/// Runs the miner's search on `threads` threads with a target nothing meets until they
/// tried `nonces` in all, and returns nonces per second by wall clock: the miner's raw
/// speed with `engine` (the one it would pick: [`Engine::detect`]). Every thread runs
/// until the total is reached, as when mining, so a thread slowed by something else on
/// the machine lowers the figure only by what it did not hash.
pub fn measure_rate(engine: Engine, threads: usize, nonces: u32) -> f64 {
    let header = BlockHeader {
        version: 1,
        prev_blockhash: Default::default(),
        merkle_root: Default::default(),
        time: 0,
        bits: 0x1d00_ffff,
        nonce: 0,
    };
    let (stop, found, hashes) = (AtomicBool::new(false), AtomicBool::new(false), AtomicU64::new(0));
    let started = std::time::Instant::now();
    std::thread::scope(|s| {
        s.spawn(|| {
            while hashes.load(Ordering::Relaxed) < u64::from(nonces) {
                std::thread::sleep(std::time::Duration::from_millis(2));
            }
            stop.store(true, Ordering::Relaxed);
        });
        on_threads(engine, &header, threads, 1 << 32, |job, start, end| {
            search_range(job, &U256::ZERO, start, end, &stop, &found, &hashes)
        });
    });
    hashes.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64()
}

/// Tries nonces `start..start+count` the plain way (hash the 80 bytes twice): the baseline
/// the midstate loop is measured against. Returns the first nonce that meets `target`.
#[cfg(any(test, feature = "testkit"))]
pub fn naive_search(header: &BlockHeader, target: U256, start: u32, count: u32) -> Option<u32> {
    let mut h = *header;
    (start..start.saturating_add(count)).find(|&n| {
        h.nonce = n;
        crate::consensus::pow::hash_to_u256(&h.block_hash()) <= target
    })
}

/// Tries nonces `start..start+count` with the midstate: the single-thread inner loop.
#[cfg(any(test, feature = "testkit"))]
pub fn midstate_search(header: &BlockHeader, target: U256, start: u32, count: u32) -> Option<u32> {
    let mid = Midstate::new(header);
    let top = target_top32(&target);
    (start..start.saturating_add(count)).find(|&n| meets(&mid.hash_words(n), &target, top))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::consensus::pow::{hash_to_u256, target_from_compact};

    fn header() -> BlockHeader {
        BlockHeader {
            version: 1,
            prev_blockhash: Default::default(),
            merkle_root: Default::default(),
            time: 1_700_000_000,
            bits: 0x1f00_ffff,
            nonce: 0,
        }
    }

    #[test]
    fn midstate_hash_equals_the_plain_double_sha256() {
        let mut h = header();
        let mid = Midstate::new(&h);
        for nonce in [0u32, 1, 0xdead_beef, u32::MAX] {
            h.nonce = nonce;
            assert_eq!(words_to_hash(&mid.hash_words(nonce)), h.block_hash().0);
        }
    }

    #[test]
    fn naive_and_midstate_find_the_same_first_nonce() {
        let target = target_from_compact(0x1f00_ffff).unwrap();
        let a = naive_search(&header(), target, 0, 1 << 20);
        let b = midstate_search(&header(), target, 0, 1 << 20);
        assert!(a.is_some());
        assert_eq!(a, b);
    }

    #[test]
    fn threaded_search_finds_a_valid_nonce() {
        let target = target_from_compact(0x1f00_ffff).unwrap();
        let (cancel, hashes) = (AtomicBool::new(false), AtomicU64::new(0));
        let SearchOutcome::Found(nonce) = search(&header(), target, 2, &cancel, &hashes) else {
            panic!("no nonce found");
        };
        let mut h = header();
        h.nonce = nonce;
        assert!(hash_to_u256(&h.block_hash()) <= target);
        assert!(hashes.load(Ordering::Relaxed) > 0);
    }

    #[test]
    fn cancelled_search_stops() {
        let (cancel, hashes) = (AtomicBool::new(true), AtomicU64::new(0));
        let impossible = U256::ZERO;
        assert_eq!(search(&header(), impossible, 2, &cancel, &hashes), SearchOutcome::Cancelled);
    }

    #[test]
    fn impossible_target_exhausts_a_short_range() {
        assert_eq!(midstate_search(&header(), U256::ZERO, 0, 1000), None);
    }
}
