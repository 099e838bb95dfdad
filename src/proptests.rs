//! Property tests: every wire and stored encoding round-trips; connecting then
//! disconnecting any valid block restores the UTXO set exactly; and any sequence of
//! competing branches leaves the same UTXO set as replaying the chosen chain from scratch.

use std::collections::BTreeMap;

use proptest::collection::vec;
use proptest::prelude::*;
use ruint::aliases::U256;

use crate::chain::utxo::{connect_block, disconnect_diff};
use crate::chain::{ChainState, SigMode};
use crate::consensus::params::REGTEST;
use crate::net::codec;
use crate::primitives::encode::{Decode, Encode, deserialize, serialize};
use crate::primitives::{
    Block, BlockHash, BlockHeader, Coin, MerkleRoot, OutPoint, Transaction, TxIn, TxOut, Txid,
};
use crate::protocol::{ChainTip, MAX_REQUEST_BYTES, MAX_RESPONSE_BYTES, SyncRequest, SyncResponse};
use crate::storage::StorageError;
use crate::storage::{BlockUndo, IndexEntry, UtxoDiff, UtxoView};
use crate::testkit::{block_on, coinbase_input, extend, key, pubkey, regtest_chain, spend};

fn bytes32() -> impl Strategy<Value = [u8; 32]> {
    prop::array::uniform32(any::<u8>())
}

fn outpoint() -> impl Strategy<Value = OutPoint> {
    (bytes32(), any::<u32>()).prop_map(|(t, vout)| OutPoint { txid: Txid(t), vout })
}

fn txout() -> impl Strategy<Value = TxOut> {
    (any::<u64>(), bytes32()).prop_map(|(value, pubkey)| TxOut { value, pubkey })
}

fn tx() -> impl Strategy<Value = Transaction> {
    let input = (outpoint(), bytes32(), bytes32()).prop_map(|(prevout, a, b)| {
        let mut signature = [0u8; 64];
        signature[..32].copy_from_slice(&a);
        signature[32..].copy_from_slice(&b);
        TxIn { prevout, signature }
    });
    (any::<u32>(), vec(input, 0..4), vec(txout(), 0..4), any::<u32>()).prop_map(
        |(version, inputs, outputs, lock_time)| Transaction { version, inputs, outputs, lock_time },
    )
}

fn header() -> impl Strategy<Value = BlockHeader> {
    (any::<u32>(), bytes32(), bytes32(), any::<u32>(), any::<u32>(), any::<u32>()).prop_map(
        |(version, prev, root, time, bits, nonce)| BlockHeader {
            version,
            prev_blockhash: BlockHash(prev),
            merkle_root: MerkleRoot(root),
            time,
            bits,
            nonce,
        },
    )
}

fn coin() -> impl Strategy<Value = Coin> {
    (txout(), any::<u32>(), any::<bool>()).prop_map(|(output, height, is_coinbase)| Coin {
        output,
        height,
        is_coinbase,
    })
}

fn request() -> impl Strategy<Value = SyncRequest> {
    prop_oneof![
        Just(SyncRequest::Status),
        (vec(bytes32(), 0..40), any::<u32>())
            .prop_map(|(locator, max)| SyncRequest::Headers { locator, max }),
        vec(bytes32(), 0..17).prop_map(SyncRequest::Blocks),
    ]
}

fn response() -> impl Strategy<Value = SyncResponse> {
    let tip = (bytes32(), bytes32(), any::<u32>(), bytes32())
        .prop_map(|(genesis, tip, height, work)| ChainTip { genesis, tip, height, work });
    prop_oneof![
        tip.prop_map(SyncResponse::Status),
        vec(any::<u8>(), 0..400).prop_map(SyncResponse::Headers),
        vec(vec(any::<u8>(), 0..200), 0..4).prop_map(SyncResponse::Blocks),
        ".{0,80}".prop_map(SyncResponse::Refused),
    ]
}

fn round_trips<T: Encode + Decode + PartialEq + std::fmt::Debug>(value: &T) {
    let bytes = serialize(value);
    assert_eq!(bytes.len(), value.encoded_len(), "encoded_len disagrees");
    assert_eq!(&deserialize::<T>(&bytes).unwrap(), value);
    // Any strict prefix is refused, never misread.
    if !bytes.is_empty() {
        assert!(deserialize::<T>(&bytes[..bytes.len() - 1]).is_err());
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn consensus_and_stored_encodings_round_trip(
        tx in tx(),
        header in header(),
        txs in vec(tx(), 0..4),
        coin in coin(),
        op in outpoint(),
        spent in vec((outpoint(), coin()), 0..4),
        height in any::<u32>(),
        work in bytes32(),
        status in any::<u8>(),
    ) {
        round_trips(&tx);
        round_trips(&header);
        round_trips(&Block { header, txs });
        round_trips(&coin);
        round_trips(&(op, coin));
        round_trips(&BlockUndo { spent });
        round_trips(&IndexEntry { header, height, chain_work: U256::from_le_bytes(work), status });
    }

    #[test]
    fn sync_messages_round_trip(req in request(), resp in response()) {
        let body = codec::encode(&req, MAX_REQUEST_BYTES).unwrap();
        prop_assert_eq!(codec::decode::<SyncRequest>(&body, MAX_REQUEST_BYTES).unwrap(), req);
        let body = codec::encode(&resp, MAX_RESPONSE_BYTES).unwrap();
        prop_assert_eq!(codec::decode::<SyncResponse>(&body, MAX_RESPONSE_BYTES).unwrap(), resp);
    }
}

/// A UTXO set in a map.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Utxos(BTreeMap<OutPoint, Coin>);

impl UtxoView for Utxos {
    fn coin(&self, outpoint: &OutPoint) -> Result<Option<Coin>, StorageError> {
        Ok(self.0.get(outpoint).copied())
    }
}

impl Utxos {
    fn apply(&mut self, diff: &UtxoDiff) {
        for (op, _) in &diff.spent {
            self.0.remove(op);
        }
        for (op, coin) in &diff.created {
            self.0.insert(*op, *coin);
        }
    }
}

/// What a random block spends: for each transaction, which available coins (by index into
/// what is spendable at that point) and how many outputs.
type BlockPlan = Vec<(Vec<prop::sample::Index>, usize)>;

fn plan() -> impl Strategy<Value = BlockPlan> {
    vec((vec(any::<prop::sample::Index>(), 1..4), 1usize..4), 0..6)
}

/// Builds a valid block at `height` on a UTXO set of coins owned by `keys`, following
/// `plan`: transactions spend set coins and outputs of earlier transactions in the block.
fn planned_block(utxos: &Utxos, height: u32, plan: &BlockPlan) -> Block {
    let keys: Vec<_> = (0..4).map(key).collect();
    let mut spendable: Vec<(OutPoint, TxOut)> = utxos
        .0
        .iter()
        .filter(|(_, c)| !c.is_coinbase || height - c.height >= REGTEST.coinbase_maturity)
        .map(|(op, c)| (*op, c.output))
        .collect();
    let mut txs = Vec::new();
    for (picks, n_out) in plan {
        if spendable.is_empty() {
            break;
        }
        let mut inputs: Vec<(OutPoint, TxOut)> = Vec::new();
        for pick in picks {
            if spendable.is_empty() {
                break;
            }
            inputs.push(spendable.swap_remove(pick.index(spendable.len())));
        }
        let total: u64 = inputs.iter().map(|(_, o)| o.value).sum();
        let fee = total.min(500);
        let share = (total - fee) / *n_out as u64;
        let outputs =
            (0..*n_out).map(|i| TxOut { value: share, pubkey: pubkey(&keys[i % 4]) }).collect();
        let tx = spend(&inputs, outputs, &keys.iter().collect::<Vec<_>>());
        let txid = tx.txid();
        spendable.extend(
            tx.outputs.iter().enumerate().map(|(v, o)| (OutPoint { txid, vout: v as u32 }, *o)),
        );
        txs.push(tx);
    }
    let fees: u64 = txs.len() as u64 * 500;
    let reward = REGTEST.subsidy(height) + fees;
    let mut all =
        vec![Transaction::coinbase(height, vec![TxOut { value: reward, pubkey: [9; 32] }], 0)];
    all.extend(txs);
    let header = BlockHeader {
        version: 1,
        prev_blockhash: BlockHash::default(),
        merkle_root: MerkleRoot::default(),
        time: 0,
        bits: REGTEST.genesis_bits,
        nonce: 0,
    };
    let mut block = Block { header, txs: all };
    block.header.merkle_root = crate::consensus::merkle::block_merkle_root(&block.txs).0;
    block
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn connecting_then_disconnecting_a_block_restores_the_utxo_set(
        values in vec(1_000u64..1_000_000_000, 1..12),
        coinbase in vec(any::<bool>(), 12),
        plan in plan(),
    ) {
        let height = 500;
        let utxos = Utxos(
            values
                .iter()
                .enumerate()
                .map(|(i, value)| {
                    let op = OutPoint { txid: Txid([i as u8 + 1; 32]), vout: i as u32 };
                    // Coinbases from both sides of maturity.
                    let coin_height = if coinbase[i] { height - 99 - (i as u32 % 3) } else { 7 };
                    let output = TxOut { value: *value, pubkey: pubkey(&key(i as u64 % 4)) };
                    (op, Coin { output, height: coin_height, is_coinbase: coinbase[i] })
                })
                .collect(),
        );
        let block = planned_block(&utxos, height, &plan);
        let (diff, undo) = connect_block(&block, height, &utxos, &REGTEST, SigMode::Sequential)
            .expect("planned blocks are valid");
        let mut after = utxos.clone();
        after.apply(&diff);
        let spent_txs = block.txs.len() - 1;
        prop_assert!(spent_txs == 0 || after != utxos);
        after.apply(&disconnect_diff(&block, height, &undo));
        prop_assert_eq!(after, utxos);
    }
}

/// Every coin in the chain's store.
fn utxo_set(chain: &ChainState) -> BTreeMap<OutPoint, Coin> {
    let mut set = BTreeMap::new();
    chain
        .for_each_coin(|op, coin| {
            set.insert(op, coin);
        })
        .unwrap();
    set
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(16))]

    /// Blocks arrive on random branches (each may spend shared coins the others spend
    /// too); whatever the order, the UTXO set is that of a fresh node fed the chosen chain,
    /// and the chosen chain is the longest (all regtest blocks weigh the same).
    #[test]
    fn competing_branches_leave_the_utxo_set_of_a_replay(
        steps in vec((any::<prop::sample::Index>(), prop::option::of(0usize..6)), 4..14),
    ) {
        let alice = key(1);
        let mut chain = regtest_chain();
        let prefix: Vec<Block> = (0..106).map(|_| extend(&mut chain, Vec::new(), pubkey(&alice))).collect();
        let fork = chain.tip();
        // Branch tips we can build on, with the prefix coinbases each has spent.
        let mut blocks: Vec<(BlockHash, u32, Vec<usize>)> = vec![(fork, 106, Vec::new())];
        for (n, (parent, spend_coin)) in steps.iter().enumerate() {
            let (parent, height, spent) = blocks[parent.index(blocks.len())].clone();
            let mut spent = spent.clone();
            let mut txs = Vec::new();
            if let Some(k) = spend_coin && !spent.contains(k) {
                let (op, out) = coinbase_input(&prefix[*k]);
                let to = TxOut { value: out.value - 1_000, pubkey: pubkey(&key(n as u64 + 10)) };
                txs.push(spend(&[(op, out)], vec![to], &[&alice]));
                spent.push(*k);
            }
            // Distinct payouts keep sibling blocks distinct.
            let block = block_on(&chain, parent, txs, pubkey(&key(100 + n as u64)));
            let hash = block.block_hash();
            let outcome = chain.accept_block(block, crate::testkit::CLOCK).unwrap();
            prop_assert!(outcome.invalid.is_empty(), "{:?}", outcome.invalid);
            blocks.push((hash, height + 1, spent));
        }
        let longest = blocks.iter().map(|b| b.1).max().unwrap();
        prop_assert_eq!(chain.height(), longest);

        let mut replay = regtest_chain();
        for h in 1..=chain.height() {
            let hash = chain.hash_at(h).unwrap();
            let block = chain.block(&hash).unwrap().unwrap();
            replay.accept_block(block, crate::testkit::CLOCK).unwrap();
        }
        prop_assert_eq!(replay.tip(), chain.tip());
        prop_assert_eq!(utxo_set(&replay), utxo_set(&chain));
    }
}
