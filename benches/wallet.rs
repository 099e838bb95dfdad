//! The wallet's costs: sealing and opening a seed at the default argon2id cost (the goal
//! is >= 100 ms, so guessing passphrases is slow), and deriving addresses from the
//! account's public key (what a restore's scan and `wallet addresses` do per address).

use criterion::{Criterion, criterion_group, criterion_main};
use minichain::wallet::hd::{account_of, parse_mnemonic};
use minichain::wallet::seal::{open, seal};
use minichain::wallet::{KdfCost, KeyChain};

const WORDS: &str = "legal winner thank year wave sausage worth useful legal winner thank year \
                     wave sausage worth useful legal winner thank year wave sausage worth title";

fn kdf(c: &mut Criterion) {
    let mut g = c.benchmark_group("wallet");
    g.sample_size(10);
    let sealed = seal(&[7; 32], "a passphrase", b"regtest", KdfCost::DEFAULT).unwrap();
    g.bench_function("open a sealed seed (argon2id 64 MiB, 3 passes)", |b| {
        b.iter(|| open(&sealed, "a passphrase", b"regtest").unwrap())
    });
    let (account, _) = account_of(&parse_mnemonic(WORDS).unwrap()).unwrap();
    g.sample_size(20);
    g.bench_function("derive 1,000 receive addresses from the account key", |b| {
        b.iter(|| {
            (0..1_000).map(|i| account.pubkey(KeyChain::Receive, i).unwrap()).collect::<Vec<_>>()
        })
    });
    g.finish();
}

criterion_group!(benches, kdf);
criterion_main!(benches);
