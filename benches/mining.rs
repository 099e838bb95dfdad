//! Nonces per second on one thread: hashing the 80-byte header twice (3 compressions per
//! nonce), the scalar midstate loop (2 compressions), and each SIMD engine this CPU has
//! (8 or 16 nonces per call), with raw SHA-256 compressions in the same run as a reference.
//! scripts/bench.sh compares the miner with OpenSSL and C multi-lane loops instead.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use minichain::miner::lanes::{Engine, Prepared};
use minichain::miner::search::{midstate_search, naive_search};
use minichain::primitives::BlockHeader;
use ruint::aliases::U256;
use sha2::block_api::compress256;

const NONCES: u32 = 200_000;

fn header() -> BlockHeader {
    BlockHeader {
        version: 1,
        prev_blockhash: Default::default(),
        merkle_root: Default::default(),
        time: 1_763_683_200,
        bits: 0x1e02_0000,
        nonce: 0,
    }
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("mining_1_thread");
    group.throughput(Throughput::Elements(u64::from(NONCES)));
    // An impossible target makes every search scan the whole range.
    group.bench_function("naive_double_sha256", |b| {
        b.iter(|| naive_search(&header(), U256::ZERO, 0, NONCES))
    });
    group.bench_function("midstate", |b| {
        b.iter(|| midstate_search(&header(), U256::ZERO, 0, NONCES))
    });
    let prepared = Prepared::new(&header());
    for engine in Engine::available() {
        group.bench_function(format!("engine_{}", engine.name()), |b| {
            b.iter(|| {
                let mut hits = 0;
                for first in (0..NONCES).step_by(engine.lanes() as usize) {
                    hits |= engine.screen(&prepared, first, 0);
                }
                hits
            })
        });
    }
    // Reference: two bare compressions per nonce is what a perfect midstate loop costs.
    group.bench_function("two_compressions_reference", |b| {
        let block = [[0x5au8; 64]];
        b.iter(|| {
            let mut state = [0u32; 8];
            for _ in 0..NONCES * 2 {
                compress256(&mut state, std::hint::black_box(&block));
            }
            state
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
