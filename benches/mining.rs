//! Nonces per second on one thread: hashing the 80-byte header twice (3 compressions per
//! nonce) against the midstate loop (2 compressions), with raw SHA-256 compressions in the
//! same run as the machine's reference.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
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
        bits: 0x1d40_0000,
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
