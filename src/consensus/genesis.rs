//! The hard-coded genesis block of each network.

use super::merkle::block_merkle_root;
use super::params::Network;
use crate::primitives::{Block, BlockHash, BlockHeader, OutPoint, Transaction, TxIn, TxOut, Txid};

/// The genesis block of `network`. Its coinbase pays nothing and is never spendable.
pub fn genesis_block(network: Network) -> Block {
    let params = network.params();
    let mut note = [0u8; 64];
    let text = format!("minichain {} genesis, 2025-11-21", params.name);
    note[..text.len()].copy_from_slice(text.as_bytes());
    let coinbase = Transaction {
        version: 1,
        inputs: vec![TxIn { prevout: OutPoint { txid: Txid::ZERO, vout: 0 }, signature: note }],
        outputs: vec![TxOut { value: 0, pubkey: [0; 32] }],
        lock_time: 0,
    };
    let txs = vec![coinbase];
    let header = BlockHeader {
        version: 1,
        prev_blockhash: BlockHash::ZERO,
        merkle_root: block_merkle_root(&txs).0,
        time: params.genesis_time,
        bits: params.genesis_bits,
        nonce: params.genesis_nonce,
    };
    Block { header, txs }
}

/// The genesis block hash of `network`.
pub fn genesis_hash(network: Network) -> BlockHash {
    genesis_block(network).block_hash()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::consensus::block::check_block;

    #[test]
    fn genesis_hashes_are_pinned() {
        assert_eq!(
            genesis_hash(Network::Regtest).to_string(),
            "5c7fcbe3b46ea949e0af592d9e4f5fe6639e13c44f7f90d5d8abeb5343bb9198"
        );
        assert_eq!(
            genesis_hash(Network::Devnet).to_string(),
            "0000016da56f208e5bb0db6265f803aee3280076e8422e38494ec8edab29bce5"
        );
    }

    #[test]
    fn genesis_blocks_pass_their_own_checks() {
        for n in Network::ALL {
            assert_eq!(check_block(&genesis_block(n), n.params()), Ok(()), "{n}");
        }
    }

    #[test]
    fn networks_have_distinct_genesis() {
        assert_ne!(genesis_hash(Network::Regtest), genesis_hash(Network::Devnet));
    }
}
