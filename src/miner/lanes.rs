//! Many nonces per instruction: SHA-256 of a header in 8 (AVX2) or 16 (AVX-512) lanes.
//!
//! Each lane hashes the same header with its own nonce. What does not depend on the nonce
//! is done once per header ([`Prepared`]): the midstate of the first 64 bytes, the first
//! three rounds of the second block (its words 0-2 are the end of the Merkle root, the
//! time and the bits), and the constant message words. The outer hash stops after round
//! 60: the word the target check looks at first (state word 7) is final by then.
//!
//! A lane only *screens*: it returns the nonces whose hash might meet the target by its top
//! 32 bits; the caller rechecks each with the scalar path before using it. The engine is
//! picked at run time ([`Engine::detect`]): whichever of the available ones hashes fastest
//! in a short calibration, the scalar `sha2` path (SHA-NI where the CPU has it) included.

use std::sync::OnceLock;

use super::search::{IV, Midstate};
use crate::primitives::BlockHeader;

/// SHA-256 round constants.
const K: [u32; 64] = [
    0x428a_2f98,
    0x7137_4491,
    0xb5c0_fbcf,
    0xe9b5_dba5,
    0x3956_c25b,
    0x59f1_11f1,
    0x923f_82a4,
    0xab1c_5ed5,
    0xd807_aa98,
    0x1283_5b01,
    0x2431_85be,
    0x550c_7dc3,
    0x72be_5d74,
    0x80de_b1fe,
    0x9bdc_06a7,
    0xc19b_f174,
    0xe49b_69c1,
    0xefbe_4786,
    0x0fc1_9dc6,
    0x240c_a1cc,
    0x2de9_2c6f,
    0x4a74_84aa,
    0x5cb0_a9dc,
    0x76f9_88da,
    0x983e_5152,
    0xa831_c66d,
    0xb003_27c8,
    0xbf59_7fc7,
    0xc6e0_0bf3,
    0xd5a7_9147,
    0x06ca_6351,
    0x1429_2967,
    0x27b7_0a85,
    0x2e1b_2138,
    0x4d2c_6dfc,
    0x5338_0d13,
    0x650a_7354,
    0x766a_0abb,
    0x81c2_c92e,
    0x9272_2c85,
    0xa2bf_e8a1,
    0xa81a_664b,
    0xc24b_8b70,
    0xc76c_51a3,
    0xd192_e819,
    0xd699_0624,
    0xf40e_3585,
    0x106a_a070,
    0x19a4_c116,
    0x1e37_6c08,
    0x2748_774c,
    0x34b0_bcb5,
    0x391c_0cb3,
    0x4ed8_aa4a,
    0x5b9c_ca4f,
    0x682e_6ff3,
    0x748f_82ee,
    0x78a5_636f,
    0x84c8_7814,
    0x8cc7_0208,
    0x90be_fffa,
    0xa450_6ceb,
    0xbef9_a3f7,
    0xc671_78f2,
];

/// A nonce-search engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    /// One nonce at a time through `sha2` (which uses SHA-NI where the CPU has it).
    Scalar,
    /// 8 nonces at a time, AVX2.
    Avx2,
    /// 16 nonces at a time, AVX-512F.
    Avx512,
}

impl Engine {
    /// Nonces one call of [`Engine::screen`] hashes.
    #[must_use]
    pub fn lanes(self) -> u32 {
        match self {
            Self::Scalar => 1,
            Self::Avx2 => 8,
            Self::Avx512 => 16,
        }
    }

    /// `scalar`, `avx2` or `avx512`.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Scalar => "scalar",
            Self::Avx2 => "avx2",
            Self::Avx512 => "avx512",
        }
    }

    /// The engines this CPU can run, the scalar one first.
    #[must_use]
    pub fn available() -> Vec<Engine> {
        let mut engines = vec![Self::Scalar];
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx2") {
                engines.push(Self::Avx2);
            }
            if std::arch::is_x86_feature_detected!("avx512f") {
                engines.push(Self::Avx512);
            }
        }
        engines
    }

    /// The fastest engine on this CPU, measured once per process (a few milliseconds
    /// each) and remembered.
    #[must_use]
    pub fn detect() -> Engine {
        static BEST: OnceLock<Engine> = OnceLock::new();
        *BEST.get_or_init(|| {
            let header = BlockHeader {
                version: 1,
                prev_blockhash: Default::default(),
                merkle_root: Default::default(),
                time: 0,
                bits: 0,
                nonce: 0,
            };
            let p = Prepared::new(&header);
            let mut best = (Engine::Scalar, 0.0f64);
            for engine in Engine::available() {
                // Warm up, then count nonces in about 20 ms.
                let _ = engine.screen(&p, 0, u32::MAX);
                let started = std::time::Instant::now();
                let mut nonces = 0u64;
                while started.elapsed() < std::time::Duration::from_millis(20) {
                    for _ in 0..64 {
                        let _ = std::hint::black_box(engine.screen(&p, nonces as u32, 0));
                        nonces += u64::from(engine.lanes());
                    }
                }
                let rate = nonces as f64 / started.elapsed().as_secs_f64();
                tracing::debug!(?engine, nonces_per_s = rate, "nonce search calibration");
                if rate > best.1 {
                    best = (engine, rate);
                }
            }
            best.0
        })
    }

    /// Hashes the [`Engine::lanes`] nonces from `first` (wrapping past `u32::MAX`) and
    /// returns a bit per lane whose hash's top 32 bits are at most `top`: candidates for
    /// the caller to recheck with the scalar path.
    #[must_use]
    pub fn screen(self, p: &Prepared, first: u32, top: u32) -> u32 {
        match self {
            Self::Scalar => u32::from(p.mid.hash_words(first)[7].swap_bytes() <= top),
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `Engine::Avx2` is only ever built by `available`, after
            // `is_x86_feature_detected!("avx2")` said this CPU has AVX2 (and the tests,
            // which take their engines from `available` too).
            Self::Avx2 => unsafe { avx2::screen(p, first, top) },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: as above, with `is_x86_feature_detected!("avx512f")`.
            Self::Avx512 => unsafe { avx512::screen(p, first, top) },
            #[cfg(not(target_arch = "x86_64"))]
            _ => unreachable!("SIMD engines exist only on x86_64"),
        }
    }
}

impl Engine {
    /// Word 7 of the outer state for each of the [`Engine::lanes`] nonces from `first`:
    /// what [`Engine::screen`] compares, exposed to test every lane against `sha2`.
    #[doc(hidden)]
    #[must_use]
    pub fn words7(self, p: &Prepared, first: u32) -> Vec<u32> {
        match self {
            Self::Scalar => vec![p.mid.hash_words(first)[7]],
            #[cfg(target_arch = "x86_64")]
            // SAFETY: see `screen`: the engine exists only if `available` detected AVX2.
            Self::Avx2 => unsafe { avx2::h7(p, first) }.to_vec(),
            #[cfg(target_arch = "x86_64")]
            // SAFETY: see `screen`: the engine exists only if `available` detected AVX-512F.
            Self::Avx512 => unsafe { avx512::h7(p, first) }.to_vec(),
            #[cfg(not(target_arch = "x86_64"))]
            _ => unreachable!("SIMD engines exist only on x86_64"),
        }
    }
}

/// What the lanes share for one header.
#[derive(Clone, Copy)]
pub struct Prepared {
    /// The scalar path's midstate (for the scalar engine and rechecks).
    pub mid: Midstate,
    /// The midstate: the state the second block's compression starts from and adds to.
    start: [u32; 8],
    /// The state after the second block's first three rounds (words 0-2 are fixed).
    after3: [u32; 8],
    /// The second block's constant message words 0-2.
    w: [u32; 3],
}

impl Prepared {
    /// Everything about `header` that does not depend on the nonce.
    #[must_use]
    pub fn new(header: &BlockHeader) -> Self {
        let mid = Midstate::new(header);
        let start = mid.state();
        let tail = mid.tail();
        let w = [0, 1, 2].map(|i| {
            u32::from_be_bytes([tail[4 * i], tail[4 * i + 1], tail[4 * i + 2], tail[4 * i + 3]])
        });
        let mut s = start;
        for (t, wt) in w.iter().enumerate() {
            s = round(s, K[t].wrapping_add(*wt));
        }
        Self { mid, start, after3: s, w }
    }
}

/// One scalar SHA-256 round with `kw` = K[t] + W[t].
fn round(s: [u32; 8], kw: u32) -> [u32; 8] {
    let [a, b, c, d, e, f, g, h] = s;
    let t1 = h
        .wrapping_add(e.rotate_right(6) ^ e.rotate_right(11) ^ e.rotate_right(25))
        .wrapping_add((e & f) ^ (!e & g))
        .wrapping_add(kw);
    let t2 = (a.rotate_right(2) ^ a.rotate_right(13) ^ a.rotate_right(22))
        .wrapping_add((a & b) ^ (a & c) ^ (b & c));
    [t1.wrapping_add(t2), a, b, c, d.wrapping_add(t1), e, f, g]
}

/// The body every SIMD engine shares, written against the module's vector type `V`, its
/// `LANES` and its primitive operations; `$feat` is the target feature they need.
macro_rules! lanes_body {
    ($feat:literal) => {
        use super::{IV, K, Prepared};

        #[inline]
        #[target_feature(enable = $feat)]
        fn bsig0(x: V) -> V {
            xor3(ror::<2, 30>(x), ror::<13, 19>(x), ror::<22, 10>(x))
        }
        #[inline]
        #[target_feature(enable = $feat)]
        fn bsig1(x: V) -> V {
            xor3(ror::<6, 26>(x), ror::<11, 21>(x), ror::<25, 7>(x))
        }
        #[inline]
        #[target_feature(enable = $feat)]
        fn ssig0(x: V) -> V {
            xor3(ror::<7, 25>(x), ror::<18, 14>(x), shr::<3>(x))
        }
        #[inline]
        #[target_feature(enable = $feat)]
        fn ssig1(x: V) -> V {
            xor3(ror::<17, 15>(x), ror::<19, 13>(x), shr::<10>(x))
        }

        // `ror::<R, L>`: rotate right by R (L = 32 - R, for engines that shift both ways).

        /// Rounds `from..to` over the state `s`, with message words `w` (a rolling window
        /// of 16 extended in place from round 16 on).
        #[inline]
        #[target_feature(enable = $feat)]
        fn rounds<const FROM: usize, const TO: usize>(s: &mut [V; 8], w: &mut [V; 16]) {
            let [mut a, mut b, mut c, mut d, mut e, mut f, mut g, mut h] = *s;
            for t in FROM..TO {
                if t >= 16 {
                    let i = t % 16;
                    w[i] = add(
                        add(ssig1(w[(t - 2) % 16]), w[(t - 7) % 16]),
                        add(ssig0(w[(t - 15) % 16]), w[i]),
                    );
                }
                let t1 = add(add(h, bsig1(e)), add(ch(e, f, g), add(splat(K[t]), w[t % 16])));
                let t2 = add(bsig0(a), maj(a, b, c));
                h = g;
                g = f;
                f = e;
                e = add(d, t1);
                d = c;
                c = b;
                b = a;
                a = add(t1, t2);
            }
            *s = [a, b, c, d, e, f, g, h];
        }

        /// See [`super::Engine::screen`].
        #[target_feature(enable = $feat)]
        pub fn screen(p: &Prepared, first: u32, top: u32) -> u32 {
            let mut hits = 0u32;
            for (i, word) in h7(p, first).iter().enumerate() {
                if word.swap_bytes() <= top {
                    hits |= 1 << i;
                }
            }
            hits
        }

        /// Word 7 of the outer state for the `LANES` nonces from `first`.
        #[target_feature(enable = $feat)]
        pub fn h7(p: &Prepared, first: u32) -> [u32; LANES] {
            let mut nonces = [0u32; LANES];
            for (i, n) in nonces.iter_mut().enumerate() {
                // The header stores the nonce little-endian; SHA-256 reads words big-endian.
                *n = first.wrapping_add(i as u32).swap_bytes();
            }
            // The second block: [w0 w1 w2 nonce 0x80000000 0 … 0 640].
            let zero = splat(0);
            let mut w = [zero; 16];
            w[0] = splat(p.w[0]);
            w[1] = splat(p.w[1]);
            w[2] = splat(p.w[2]);
            w[3] = from_lanes(nonces);
            w[4] = splat(0x8000_0000);
            w[15] = splat(640);
            let mut s = [zero; 8];
            for i in 0..8 {
                s[i] = splat(p.after3[i]);
            }
            rounds::<3, 64>(&mut s, &mut w);
            let mut inner = [zero; 8];
            for i in 0..8 {
                inner[i] = add(s[i], splat(p.start[i]));
            }
            // The outer hash of the 32-byte inner hash: [inner 0x80000000 0 … 0 256].
            let mut w = [zero; 16];
            w[..8].copy_from_slice(&inner);
            w[8] = splat(0x8000_0000);
            w[15] = splat(256);
            let mut s = [zero; 8];
            for i in 0..8 {
                s[i] = splat(IV[i]);
            }
            rounds::<0, 61>(&mut s, &mut w);
            // After round 60, `e` is what rounds 61-63 shift into `h`: the final word 7.
            to_lanes(add(s[4], splat(IV[7])))
        }
    };
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::{
        __m256i, _mm256_add_epi32, _mm256_and_si256, _mm256_andnot_si256, _mm256_or_si256,
        _mm256_set1_epi32, _mm256_slli_epi32, _mm256_srli_epi32, _mm256_xor_si256,
    };

    type V = __m256i;
    const LANES: usize = 8;

    #[inline]
    #[target_feature(enable = "avx2")]
    fn splat(x: u32) -> V {
        _mm256_set1_epi32(x.cast_signed())
    }
    #[inline]
    #[target_feature(enable = "avx2")]
    fn add(a: V, b: V) -> V {
        _mm256_add_epi32(a, b)
    }
    #[inline]
    #[target_feature(enable = "avx2")]
    fn ror<const R: i32, const L: i32>(x: V) -> V {
        _mm256_or_si256(_mm256_srli_epi32::<R>(x), _mm256_slli_epi32::<L>(x))
    }
    #[inline]
    #[target_feature(enable = "avx2")]
    fn shr<const N: i32>(x: V) -> V {
        _mm256_srli_epi32::<N>(x)
    }
    #[inline]
    #[target_feature(enable = "avx2")]
    fn xor3(a: V, b: V, c: V) -> V {
        _mm256_xor_si256(_mm256_xor_si256(a, b), c)
    }
    #[inline]
    #[target_feature(enable = "avx2")]
    fn ch(e: V, f: V, g: V) -> V {
        _mm256_xor_si256(_mm256_and_si256(e, f), _mm256_andnot_si256(e, g))
    }
    #[inline]
    #[target_feature(enable = "avx2")]
    fn maj(a: V, b: V, c: V) -> V {
        // (a & b) | (c & (a | b))
        _mm256_or_si256(_mm256_and_si256(a, b), _mm256_and_si256(c, _mm256_or_si256(a, b)))
    }
    fn from_lanes(x: [u32; LANES]) -> V {
        // SAFETY: [u32; 8] and __m256i have the same size and every bit pattern is valid
        // for both.
        unsafe { std::mem::transmute::<[u32; LANES], V>(x) }
    }
    fn to_lanes(x: V) -> [u32; LANES] {
        // SAFETY: as in `from_lanes`.
        unsafe { std::mem::transmute::<V, [u32; LANES]>(x) }
    }

    lanes_body!("avx2");
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::{
        __m512i, _mm512_add_epi32, _mm512_ror_epi32, _mm512_set1_epi32, _mm512_srli_epi32,
        _mm512_ternarylogic_epi32,
    };

    type V = __m512i;
    const LANES: usize = 16;

    #[inline]
    #[target_feature(enable = "avx512f")]
    fn splat(x: u32) -> V {
        _mm512_set1_epi32(x.cast_signed())
    }
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn add(a: V, b: V) -> V {
        _mm512_add_epi32(a, b)
    }
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn ror<const R: i32, const L: i32>(x: V) -> V {
        _mm512_ror_epi32::<R>(x)
    }
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn shr<const N: u32>(x: V) -> V {
        _mm512_srli_epi32::<N>(x)
    }
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn xor3(a: V, b: V, c: V) -> V {
        _mm512_ternarylogic_epi32::<0x96>(a, b, c)
    }
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn ch(e: V, f: V, g: V) -> V {
        _mm512_ternarylogic_epi32::<0xca>(e, f, g)
    }
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn maj(a: V, b: V, c: V) -> V {
        _mm512_ternarylogic_epi32::<0xe8>(a, b, c)
    }
    fn from_lanes(x: [u32; LANES]) -> V {
        // SAFETY: [u32; 16] and __m512i have the same size and every bit pattern is valid
        // for both.
        unsafe { std::mem::transmute::<[u32; LANES], V>(x) }
    }
    fn to_lanes(x: V) -> [u32; LANES] {
        // SAFETY: as in `from_lanes`.
        unsafe { std::mem::transmute::<V, [u32; LANES]>(x) }
    }

    lanes_body!("avx512f");
}

#[cfg(test)]
mod tests {
    use rand::{Rng, SeedableRng};

    use super::*;
    use crate::mempool::Mempool;
    use crate::miner::build_template;
    use crate::primitives::{BlockHash, MerkleRoot};
    use crate::testkit::{CLOCK, regtest_chain};

    fn random_header(rng: &mut impl Rng) -> BlockHeader {
        BlockHeader {
            version: rng.random(),
            prev_blockhash: BlockHash(rng.random()),
            merkle_root: MerkleRoot(rng.random()),
            time: rng.random(),
            bits: rng.random(),
            nonce: 0,
        }
    }

    /// Every lane of every engine this CPU has against the double SHA-256 of `sha2`.
    fn check_lanes(header: &BlockHeader, first: u32) {
        let p = Prepared::new(header);
        for engine in Engine::available() {
            let words = engine.words7(&p, first);
            assert_eq!(words.len(), engine.lanes() as usize);
            for (i, word) in words.iter().enumerate() {
                let mut h = *header;
                h.nonce = first.wrapping_add(i as u32);
                let hash = h.block_hash().0;
                let expected = u32::from_be_bytes([hash[28], hash[29], hash[30], hash[31]]);
                assert_eq!(*word, expected, "{engine:?} lane {i}, nonce {}", h.nonce);
            }
        }
    }

    #[test]
    fn every_lane_of_every_engine_matches_sha2_on_random_headers_and_nonces() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(14);
        for _ in 0..200 {
            let header = random_header(&mut rng);
            check_lanes(&header, rng.random());
        }
        // The last nonces of the space: lanes past u32::MAX wrap to 0.
        let header = random_header(&mut rng);
        for first in [u32::MAX - 15, u32::MAX - 7, u32::MAX - 3, u32::MAX] {
            check_lanes(&header, first);
        }
    }

    #[test]
    fn lanes_follow_the_extra_nonce_roll() {
        let mut template = build_template(&regtest_chain(), &Mempool::default(), [4; 32], CLOCK);
        for extra in 0..4 {
            template.set_extra_nonce(extra);
            check_lanes(&template.block.header, 12_345);
        }
    }

    #[test]
    fn screen_flags_exactly_the_lanes_at_or_below_the_top_word() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let header = random_header(&mut rng);
        let p = Prepared::new(&header);
        for engine in Engine::available() {
            let words = engine.words7(&p, 1_000);
            for (k, pivot) in words.iter().enumerate() {
                let top = pivot.swap_bytes();
                let expected = words
                    .iter()
                    .enumerate()
                    .filter(|(_, w)| w.swap_bytes() <= top)
                    .fold(0u32, |m, (i, _)| m | 1 << i);
                assert_eq!(engine.screen(&p, 1_000, top), expected, "{engine:?} pivot lane {k}");
            }
        }
    }

    #[test]
    fn the_detected_engine_is_one_this_cpu_has() {
        assert!(Engine::available().contains(&Engine::detect()));
    }
}
