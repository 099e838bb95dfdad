//! Bitcoin-style Merkle root: pairwise double SHA-256, the last node paired with itself on
//! odd levels.
//!
//! That duplication lets two different transaction lists share a root (`[a, b, c]` and
//! `[a, b, c, c]`, CVE-2012-2459). We detect it as Bitcoin Core does: a level holding two
//! equal adjacent nodes marks the tree as mutated, and such blocks are rejected.

use crate::primitives::hash::sha256d;
use crate::primitives::{MerkleRoot, Transaction};

/// Merkle root over `leaves`, and whether the tree is mutated.
pub fn merkle_root(mut level: Vec<[u8; 32]>) -> (MerkleRoot, bool) {
    if level.is_empty() {
        return (MerkleRoot::ZERO, false);
    }
    let mut mutated = false;
    let mut buf = [0u8; 64];
    while level.len() > 1 {
        mutated |= level.chunks_exact(2).any(|pair| pair[0] == pair[1]);
        if level.len() % 2 == 1 {
            level.push(level[level.len() - 1]);
        }
        level = level
            .chunks_exact(2)
            .map(|pair| {
                buf[..32].copy_from_slice(&pair[0]);
                buf[32..].copy_from_slice(&pair[1]);
                sha256d(&buf)
            })
            .collect();
    }
    (MerkleRoot(level[0]), mutated)
}

/// Merkle root over whole transactions (signatures included).
pub fn block_merkle_root(txs: &[Transaction]) -> (MerkleRoot, bool) {
    merkle_root(txs.iter().map(|tx| tx.wtxid().0).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_leaf_is_its_own_root() {
        assert_eq!(merkle_root(vec![[5; 32]]), (MerkleRoot([5; 32]), false));
    }

    #[test]
    fn duplicated_last_leaf_gives_same_root_but_is_flagged() {
        let (a, b, c) = ([1; 32], [2; 32], [3; 32]);
        let (root3, m3) = merkle_root(vec![a, b, c]);
        let (root4, m4) = merkle_root(vec![a, b, c, c]);
        assert_eq!(root3, root4);
        assert!(!m3);
        assert!(m4);
    }
}
