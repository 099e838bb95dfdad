//! Validation of a block with 1,000 signed transactions (2 inputs, 2 outputs each), with
//! signatures checked on one thread and in parallel, against bare Schnorr verification of
//! the same 2,000 signatures in the same run.

use std::collections::HashMap;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use minichain::chain::SigMode;
use minichain::chain::utxo::connect_block;
use minichain::consensus::Network;
use minichain::consensus::block::check_block;
use minichain::consensus::tx::{SigCheck, signature_checks};
use minichain::primitives::{Block, BlockHeader, Coin, OutPoint, Transaction, TxOut, Txid};
use minichain::testkit::{key, pubkey, resolve, spend};
use rayon::prelude::*;

const TXS: usize = 1_000;

fn setup() -> (Block, HashMap<OutPoint, Coin>) {
    let params = Network::Regtest.params();
    let owner = key(1);
    let mut view = HashMap::new();
    let mut txs = vec![Transaction::coinbase(1, vec![TxOut { value: 0, pubkey: [1; 32] }], 0)];
    for i in 0..TXS {
        let inputs: Vec<(OutPoint, TxOut)> = (0..2u32)
            .map(|v| {
                let op =
                    OutPoint { txid: Txid([(i % 251) as u8 + 1; 32]), vout: (i as u32) * 2 + v };
                let out = TxOut { value: 10_000, pubkey: pubkey(&owner) };
                view.insert(op, Coin { output: out, height: 0, is_coinbase: false });
                (op, out)
            })
            .collect();
        let outputs =
            vec![TxOut { value: 9_000, pubkey: [2; 32] }, TxOut { value: 9_000, pubkey: [3; 32] }];
        txs.push(spend(&inputs, outputs, &[&owner]));
    }
    let fees = TXS as u64 * 2_000;
    txs[0].outputs[0].value = params.subsidy(1) + fees;
    let mut block = Block {
        header: BlockHeader {
            version: 1,
            prev_blockhash: Default::default(),
            merkle_root: Default::default(),
            time: params.genesis_time + 1,
            bits: params.pow_limit_bits,
            nonce: 0,
        },
        txs,
    };
    resolve(&mut block);
    (block, view)
}

fn bench(c: &mut Criterion) {
    let params = Network::Regtest.params();
    let (block, view) = setup();
    if let Err(e) = check_block(&block, params) {
        panic!("bench block is invalid: {e}");
    }
    let checks: Vec<SigCheck> = block.txs[1..]
        .iter()
        .flat_map(|tx| {
            let coins: Vec<Coin> = tx.inputs.iter().map(|i| view[&i.prevout]).collect();
            signature_checks(tx, tx.txid(), &coins)
        })
        .collect();

    let mut group = c.benchmark_group("validation_1000_txs");
    group.sample_size(10);
    group.throughput(Throughput::Elements(TXS as u64));
    group.bench_function("block_sequential_sigs", |b| {
        b.iter(|| {
            check_block(&block, params).unwrap();
            connect_block(&block, 1, &view, params, SigMode::Sequential).unwrap()
        })
    });
    group.bench_function("block_parallel_sigs", |b| {
        b.iter(|| {
            check_block(&block, params).unwrap();
            connect_block(&block, 1, &view, params, SigMode::Parallel).unwrap()
        })
    });
    // References: the 2,000 bare signature checks alone.
    group.bench_function("schnorr_verify_2000_1_thread", |b| {
        b.iter(|| assert!(checks.iter().all(SigCheck::verify)))
    });
    // In pieces of 8, as blocks are verified: with rayon's default split a thread the
    // machine preempts leaves the other idle at the end, which would slow the reference.
    group.bench_function("schnorr_verify_2000_parallel", |b| {
        b.iter(|| assert!(checks.par_iter().with_max_len(8).all(SigCheck::verify)))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
