//! Scripted peers: they answer the sync protocol from a fixed chain, honestly or not, and
//! can open with an attack. They stand in for servers, stallers, liars and attackers.

use std::collections::HashMap;

use ruint::aliases::U256;

use crate::compact::CompactBlock;
use crate::consensus::Network;
use crate::consensus::genesis::genesis_block;
use crate::consensus::pow::work_from_bits;
use crate::primitives::encode::serialize;
use crate::primitives::{Block, BlockHash, Time};
use crate::protocol::{ChainTip, GossipKind, MAX_HEADERS, SyncRequest, SyncResponse};

/// What an actor does.
#[derive(Debug, Clone)]
pub enum ActorAct {
    /// Answer request `ask` of the peer.
    Respond {
        /// The peer's request id.
        ask: u64,
        /// The answer.
        resp: SyncResponse,
    },
    /// Gossip a message to the peer.
    Gossip(GossipKind, Vec<u8>),
    /// Send bytes that are not a sync frame.
    Garbage,
    /// Send a sync request (its answer is dropped).
    Request(SyncRequest),
}

/// A scripted peer.
pub trait Actor {
    /// A connection to `peer` opened: what the actor sends at once.
    fn on_connect(&mut self, peer: usize, now: Time) -> Vec<ActorAct>;
    /// A request from `peer`: the answer, or `None` to leave it unanswered.
    fn on_request(&mut self, peer: usize, req: &SyncRequest, now: Time) -> Option<SyncResponse>;
}

/// How a [`ChainServer`] behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behaviour {
    /// Serves its chain.
    Honest,
    /// Answers status, headers and a compact form it was given to send, never blocks,
    /// compact forms of its own or their transactions (those requests time out).
    Stall,
    /// Answers blocks requests with no blocks, though its headers prove it has them.
    Withhold,
    /// Opens with a garbage frame, then serves honestly.
    Garbage,
    /// Opens with this many status requests at once, then serves honestly.
    Flood(u32),
}

/// A peer that serves a fixed chain (genesis first, then `blocks`).
pub struct ChainServer {
    chain: Vec<Block>,
    by_hash: HashMap<BlockHash, usize>,
    work: U256,
    behaviour: Behaviour,
    /// Gossip it sends every peer on connecting.
    announce: Vec<(GossipKind, Vec<u8>)>,
    /// Compact forms it sends in place of its blocks' own (a liar's).
    forms: HashMap<BlockHash, Vec<u8>>,
}

impl ChainServer {
    /// A regtest server of `blocks` (which must extend genesis in order).
    pub fn new(blocks: Vec<Block>, behaviour: Behaviour) -> Self {
        let mut chain = vec![genesis_block(Network::Regtest)];
        chain.extend(blocks);
        let by_hash = chain.iter().enumerate().map(|(i, b)| (b.block_hash(), i)).collect();
        let work =
            chain.iter().map(|b| work_from_bits(b.header.bits)).fold(U256::ZERO, |a, w| a + w);
        Self { chain, by_hash, work, behaviour, announce: Vec::new(), forms: HashMap::new() }
    }

    /// The same server, gossiping `data` on `kind` to every peer as it connects.
    pub fn announcing(mut self, kind: GossipKind, data: Vec<u8>) -> Self {
        self.announce.push((kind, data));
        self
    }

    /// The same server, answering requests for the compact form of block `hash` with
    /// `data` (whatever any behaviour does with blocks).
    pub fn serving_compact(mut self, hash: BlockHash, data: Vec<u8>) -> Self {
        self.forms.insert(hash, data);
        self
    }

    /// The compact form of block `hash`: the one it was given to send, or its own (none
    /// from a staller).
    fn compact_block(&self, hash: &[u8; 32]) -> Option<SyncResponse> {
        let hash = BlockHash(*hash);
        if let Some(data) = self.forms.get(&hash) {
            return Some(SyncResponse::CompactBlock(data.clone()));
        }
        if self.behaviour == Behaviour::Stall {
            return None;
        }
        Some(match self.by_hash.get(&hash) {
            Some(i) => {
                SyncResponse::CompactBlock(serialize(&CompactBlock::from_block(&self.chain[*i])))
            }
            None => SyncResponse::Refused("no such block".into()),
        })
    }

    /// The transactions of block `hash` at `indexes`, all of them, or a refusal.
    fn block_txs(&self, hash: &[u8; 32], indexes: &[u32]) -> SyncResponse {
        let block = self.by_hash.get(&BlockHash(*hash)).map(|i| &self.chain[*i]);
        let txs: Option<Vec<Vec<u8>>> = block
            .and_then(|b| indexes.iter().map(|i| b.txs.get(*i as usize).map(serialize)).collect());
        match txs {
            Some(txs) => SyncResponse::BlockTxs(txs),
            None => SyncResponse::Refused("no such block or transaction".into()),
        }
    }

    fn tip(&self) -> ChainTip {
        let tip = self.chain.last().map(Block::block_hash).unwrap_or_default();
        ChainTip {
            genesis: self.chain[0].block_hash().0,
            tip: tip.0,
            height: (self.chain.len() - 1) as u32,
            work: self.work.to_le_bytes::<32>(),
        }
    }

    fn headers(&self, locator: &[[u8; 32]], max: u32) -> Vec<u8> {
        let start =
            locator.iter().find_map(|h| self.by_hash.get(&BlockHash(*h)).copied()).unwrap_or(0) + 1;
        let max = (max as usize).min(MAX_HEADERS);
        self.chain.iter().skip(start).take(max).flat_map(|b| b.header.to_bytes()).collect()
    }

    fn blocks(&self, hashes: &[[u8; 32]]) -> Vec<Vec<u8>> {
        hashes
            .iter()
            .filter_map(|h| self.by_hash.get(&BlockHash(*h)))
            .map(|i| serialize(&self.chain[*i]))
            .collect()
    }
}

impl Actor for ChainServer {
    fn on_connect(&mut self, _peer: usize, _now: Time) -> Vec<ActorAct> {
        let announce = self.announce.iter().map(|(k, d)| ActorAct::Gossip(*k, d.clone()));
        let mut acts: Vec<ActorAct> = announce.collect();
        acts.extend(match self.behaviour {
            Behaviour::Garbage => vec![ActorAct::Garbage],
            Behaviour::Flood(n) => (0..n).map(|_| ActorAct::Request(SyncRequest::Status)).collect(),
            _ => Vec::new(),
        });
        acts
    }

    fn on_request(&mut self, _peer: usize, req: &SyncRequest, _now: Time) -> Option<SyncResponse> {
        Some(match req {
            SyncRequest::Status => SyncResponse::Status(self.tip()),
            SyncRequest::Headers { locator, max } => {
                SyncResponse::Headers(self.headers(locator, *max))
            }
            SyncRequest::Blocks(hashes) => match self.behaviour {
                Behaviour::Stall => return None,
                Behaviour::Withhold => SyncResponse::Blocks(Vec::new()),
                _ => SyncResponse::Blocks(self.blocks(hashes)),
            },
            SyncRequest::Mempool => SyncResponse::Txids(Vec::new()),
            SyncRequest::Txs(_) => SyncResponse::Txs(Vec::new()),
            SyncRequest::BlockTxs { .. } if self.behaviour == Behaviour::Stall => return None,
            SyncRequest::BlockTxs { block, indexes } => self.block_txs(block, indexes),
            SyncRequest::CompactBlock(block) => return self.compact_block(block),
        })
    }
}
