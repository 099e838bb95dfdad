//! Shared helpers: a tiny test wallet that keeps spending its coins with real signatures.

use std::collections::{BTreeMap, HashMap};

use minichain::chain::ChainState;
use minichain::primitives::{Block, Coin, OutPoint, Transaction, TxOut};
use minichain::testkit::{key, pubkey, spend};

/// Coins owned by the test keys, spent round-robin into new outputs to other test keys.
pub struct Spender {
    /// Spendable coins: outpoint → (output, key seed, height it became spendable).
    coins: BTreeMap<OutPoint, (TxOut, u64, u32)>,
    /// Our public keys and the seeds they come from.
    owned: HashMap<[u8; 32], u64>,
    next_key: u64,
}

impl Spender {
    /// A spender whose keys are seeds `base + 1, base + 2, ...` (disjoint bases give
    /// spenders that never touch each other's coins).
    pub fn new(base: u64) -> Self {
        Self { coins: BTreeMap::new(), owned: HashMap::new(), next_key: base }
    }

    /// A fresh key of ours to pay to.
    pub fn next_payout(&mut self) -> (u64, [u8; 32]) {
        self.next_key += 1;
        let pk = pubkey(&key(self.next_key));
        self.owned.insert(pk, self.next_key);
        (self.next_key, pk)
    }

    /// Records the outputs of `block` at `height` paid to our keys.
    pub fn learn(&mut self, block: &Block, height: u32, maturity: u32) {
        for (i, tx) in block.txs.iter().enumerate() {
            let txid = tx.txid();
            for input in &tx.inputs {
                self.coins.remove(&input.prevout);
            }
            for (vout, out) in tx.outputs.iter().enumerate() {
                if let Some(&seed) = self.owned.get(&out.pubkey) {
                    let ready = if i == 0 { height + maturity } else { height + 1 };
                    self.coins.insert(OutPoint { txid, vout: vout as u32 }, (*out, seed, ready));
                }
            }
        }
    }

    /// Up to `n` transactions spendable in a block at `height`: each spends one or two
    /// coins into two outputs to fresh keys, paying `fee`.
    pub fn make_txs(&mut self, n: usize, height: u32, fee: u64) -> Vec<Transaction> {
        let ready: Vec<(OutPoint, (TxOut, u64, u32))> =
            self.coins.iter().filter(|(_, c)| c.2 <= height).map(|(o, c)| (*o, *c)).collect();
        let mut txs = Vec::new();
        for group in ready.chunks(2).take(n) {
            let inputs: Vec<(OutPoint, TxOut)> = group.iter().map(|(o, c)| (*o, c.0)).collect();
            let keys: Vec<_> = group.iter().map(|(_, c)| key(c.1)).collect();
            let total: u64 = inputs.iter().map(|(_, o)| o.value).sum();
            if total <= fee + 2 {
                continue;
            }
            let half = (total - fee) / 2;
            let (a, b) = (self.next_payout().1, self.next_payout().1);
            let outputs = vec![
                TxOut { value: half, pubkey: a },
                TxOut { value: total - fee - half, pubkey: b },
            ];
            let key_refs: Vec<_> = keys.iter().collect();
            txs.push(spend(&inputs, outputs, &key_refs));
            for (o, _) in group {
                self.coins.remove(o);
            }
        }
        txs
    }
}

/// The whole UTXO set of a chain, sorted.
pub fn utxo_set(chain: &ChainState) -> Vec<(OutPoint, Coin)> {
    let mut out = Vec::new();
    chain.for_each_coin(|op, coin| out.push((op, coin))).expect("utxo read");
    out
}
