//! What the node knows of addresses: balances, coins and histories, one address at a
//! time (`GET /address/...`) or many in one request (`POST /addresses`, what a wallet of
//! a thousand addresses asks). The database answers for the chain, the core for the
//! mempool, in one round trip whatever the number of addresses.

use std::collections::HashMap;

use super::{NodeHandle, QueryError};
use crate::api::{AddressSummary, BalanceView, HistoryEntry, UtxoEntry};
use crate::consensus::tx::is_mature;
use crate::core::{Command, Pending};
use crate::db::Store;
use crate::primitives::{Block, BlockHash, Coin, OutPoint, TxOut};
use crate::storage::{ChainStore, StorageError};

/// Most addresses one `POST /addresses` or `POST /addresses/used` may name.
pub const MAX_ADDRESSES: usize = 5_000;

/// A block of the active chain and the outputs its transactions spent.
struct ReadBlock {
    block: Block,
    spent: HashMap<OutPoint, TxOut>,
}

impl NodeHandle {
    async fn pending(&self, owners: Vec<[u8; 32]>) -> Result<Vec<Pending>, QueryError> {
        Ok(self.ask(|reply| Command::Pending { owners, reply }).await?)
    }

    /// The balance of the coins locked to `owner` (shown as `address`).
    ///
    /// # Errors
    /// [`QueryError`] if the database fails or the core does not answer.
    pub async fn balance(
        &self,
        owner: [u8; 32],
        address: String,
    ) -> Result<BalanceView, QueryError> {
        let coins = self.store()?.coins_of(&owner)?;
        let pending = self.pending(vec![owner]).await?;
        Ok(self.balance_of(address, &coins, &pending[0]))
    }

    /// Confirmed coins of `owner` not spent in the mempool, then unconfirmed outputs to it.
    ///
    /// # Errors
    /// [`QueryError`] if the database fails or the core does not answer.
    pub async fn utxos(&self, owner: [u8; 32]) -> Result<Vec<UtxoEntry>, QueryError> {
        let coins = self.store()?.coins_of(&owner)?;
        let pending = self.pending(vec![owner]).await?;
        Ok(self.utxos_of(&coins, &pending[0]))
    }

    /// Every transaction that paid `owner` or spent its coins, newest first: the mempool's,
    /// then the active chain's (from the address history; each block read once).
    ///
    /// # Errors
    /// [`QueryError`] if the database fails or the core does not answer.
    pub async fn history(&self, owner: [u8; 32]) -> Result<Vec<HistoryEntry>, QueryError> {
        let pending = self.pending(vec![owner]).await?;
        let mut out = pending_history(&pending[0]);
        let store = self.store()?;
        let mut blocks = HashMap::new();
        out.extend(self.chain_history(&store, &owner, &mut blocks)?);
        Ok(out)
    }

    /// Whether each of `owners` has ever had a transaction, on the active chain or in the
    /// mempool: what a wallet restore scans with. Reads the address index, no block.
    ///
    /// # Errors
    /// [`QueryError`] if the database fails or the core does not answer.
    pub async fn used(&self, owners: Vec<[u8; 32]>) -> Result<Vec<bool>, QueryError> {
        let store = self.store()?;
        let mut used = Vec::with_capacity(owners.len());
        for owner in &owners {
            used.push(!store.history_of(owner)?.is_empty());
        }
        let pending = self.pending(owners).await?;
        Ok(used.into_iter().zip(pending).map(|(u, p)| u || !p.txs.is_empty()).collect())
    }

    /// Balance, coins, the mempool's transactions and (with `history`) the chain's, for
    /// each of `owners` (shown as its address): each block read once for all of them.
    ///
    /// # Errors
    /// [`QueryError`] if the database fails or the core does not answer.
    pub async fn summaries(
        &self,
        owners: Vec<([u8; 32], String)>,
        history: bool,
    ) -> Result<Vec<AddressSummary>, QueryError> {
        let store = self.store()?;
        let pending = self.pending(owners.iter().map(|(o, _)| *o).collect()).await?;
        let mut blocks = HashMap::new();
        let mut out = Vec::with_capacity(owners.len());
        for ((owner, address), pending) in owners.into_iter().zip(&pending) {
            let coins = store.coins_of(&owner)?;
            let chain =
                if history { Some(self.chain_history(&store, &owner, &mut blocks)?) } else { None };
            let txs = match &chain {
                Some(c) => c.len(),
                None => store.history_of(&owner)?.len(),
            } + pending.txs.len();
            let balance = self.balance_of(address, &coins, pending);
            out.push(AddressSummary {
                address: balance.address,
                confirmed: balance.confirmed,
                unconfirmed: balance.unconfirmed,
                immature: balance.immature,
                txs,
                utxos: self.utxos_of(&coins, pending),
                pending: pending_history(pending),
                history: chain,
            });
        }
        Ok(out)
    }

    fn balance_of(
        &self,
        address: String,
        coins: &[(OutPoint, Coin)],
        pending: &Pending,
    ) -> BalanceView {
        let params = self.inner.network.params();
        let tip = self.shared().snapshot.height;
        let confirmed: u64 = coins.iter().map(|(_, c)| c.output.value).sum();
        // What the next block (at tip + 1) could not spend yet.
        let immature: u64 = coins
            .iter()
            .filter(|(_, c)| !is_mature(c, tip.saturating_add(1), params))
            .map(|(_, c)| c.output.value)
            .sum();
        let incoming: u64 = pending.incoming.iter().map(|(_, o)| o.value).sum();
        let spent: u64 = pending.spent.iter().map(|(_, v)| v).sum();
        let unconfirmed =
            i64::try_from(incoming).unwrap_or(i64::MAX) - i64::try_from(spent).unwrap_or(i64::MAX);
        BalanceView { address, confirmed, unconfirmed, immature }
    }

    fn utxos_of(&self, coins: &[(OutPoint, Coin)], pending: &Pending) -> Vec<UtxoEntry> {
        let params = self.inner.network.params();
        let tip = self.shared().snapshot.height;
        let mut out: Vec<UtxoEntry> = coins
            .iter()
            .filter(|(op, _)| !pending.spent.iter().any(|(s, _)| s == op))
            .map(|(op, coin)| UtxoEntry {
                txid: op.txid.to_string(),
                vout: op.vout,
                value: coin.output.value,
                height: Some(coin.height),
                confirmations: tip.saturating_sub(coin.height) + 1,
                coinbase: coin.is_coinbase,
                spendable: is_mature(coin, tip.saturating_add(1), params),
            })
            .collect();
        out.extend(pending.incoming.iter().map(|(op, o)| UtxoEntry {
            txid: op.txid.to_string(),
            vout: op.vout,
            value: o.value,
            height: None,
            confirmations: 0,
            coinbase: false,
            spendable: true,
        }));
        out
    }

    /// The active chain's transactions of `owner`, newest first; `blocks` keeps the
    /// blocks read (by height) for the next owner's.
    fn chain_history(
        &self,
        store: &Store,
        owner: &[u8; 32],
        blocks: &mut HashMap<u32, ReadBlock>,
    ) -> Result<Vec<HistoryEntry>, QueryError> {
        let tip = self.shared().snapshot.height;
        let places = store.history_of(owner)?;
        let mut out = Vec::with_capacity(places.len());
        for &(height, pos) in places.iter().rev() {
            let read = match blocks.entry(height) {
                std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                std::collections::hash_map::Entry::Vacant(e) => {
                    // Reorged away since the index was read: the rest is older still.
                    let Some(hash) = store.hash_at(height)? else { break };
                    e.insert(read_block(store, &hash)?)
                }
            };
            let tx = read.block.txs.get(pos as usize).ok_or(StorageError::Inconsistent(
                "the address history points past a block's transactions",
            ))?;
            let ins: Vec<TxOut> =
                tx.inputs.iter().filter_map(|i| read.spent.get(&i.prevout).copied()).collect();
            let mine = |o: &&TxOut| o.pubkey == *owner;
            let coinbase = tx.is_coinbase();
            let value_out: u64 = tx.outputs.iter().map(|o| o.value).sum();
            out.push(HistoryEntry {
                txid: tx.txid().to_string(),
                height: Some(height),
                confirmations: tip.saturating_sub(height) + 1,
                received: tx.outputs.iter().filter(mine).map(|o| o.value).sum(),
                sent: ins.iter().filter(mine).map(|o| o.value).sum(),
                fee: (!coinbase && ins.len() == tx.inputs.len())
                    .then(|| ins.iter().map(|o| o.value).sum::<u64>().saturating_sub(value_out)),
                coinbase,
            });
        }
        Ok(out)
    }
}

fn read_block(store: &Store, hash: &BlockHash) -> Result<ReadBlock, StorageError> {
    let block = store
        .block(hash)?
        .ok_or(StorageError::Inconsistent("a block in the address history is not stored"))?;
    let spent = store
        .undo(hash)?
        .map(|undo| undo.spent.into_iter().map(|(op, coin)| (op, coin.output)).collect())
        .unwrap_or_default();
    Ok(ReadBlock { block, spent })
}

/// The mempool's transactions of one owner, newest first.
fn pending_history(pending: &Pending) -> Vec<HistoryEntry> {
    pending
        .txs
        .iter()
        .rev()
        .map(|p| HistoryEntry {
            txid: p.txid.to_string(),
            height: None,
            confirmations: 0,
            received: p.received,
            sent: p.sent,
            fee: Some(p.fee),
            coinbase: false,
        })
        .collect()
}
