//! Protocol ids, gossip topics, the sync protocol's messages, and their size limits.
//!
//! Every name carries the network, so nodes of different networks never exchange data:
//! `/minichain/<network>/kad/1.0.0`, `/minichain/<network>/sync/1`, and the gossipsub
//! topics `minichain/<network>/blocks` and `minichain/<network>/txs`. Blocks, headers and
//! transactions travel in their consensus encoding; the sync envelopes are bincode.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::consensus::Network;

/// Most headers in one `Headers` response.
pub const MAX_HEADERS: usize = 2_000;
/// Most blocks asked for in one `Blocks` request. Small blocks travel 128 to a request
/// (a chain of one-transaction blocks would otherwise pay a round trip per 16 of them);
/// large ones are bounded by [`BLOCKS_RESPONSE_BUDGET`] instead.
pub const MAX_BLOCKS_PER_REQUEST: usize = 128;
/// What nodes before 128-block requests accept: a peer that refuses a larger request is
/// asked 16 at a time from then on.
pub const LEGACY_BLOCKS_PER_REQUEST: usize = 16;
/// Largest block a node sends or takes (the consensus limit of every network).
pub const MAX_BLOCK_BYTES: usize = 1_000_000;
/// Block bytes in one `Blocks` answer, at most: the server stops before the block that
/// would pass it, and the asker takes the blocks after the last one sent as not answered
/// (asked again), not as withheld. Sixteen maximum-size blocks, as before.
pub const BLOCKS_RESPONSE_BUDGET: usize = LEGACY_BLOCKS_PER_REQUEST * MAX_BLOCK_BYTES;
/// Block bytes in an answer to a request of more than [`LEGACY_BLOCKS_PER_REQUEST`]
/// blocks, at most. Only nodes that know answers may end early ask that many, and they ask
/// that many only for small blocks: when the blocks grow, the requests already out stay
/// bounded in memory (2 MiB each, not 16 MB).
pub const LARGE_REQUEST_BUDGET: usize = 2 * 1024 * 1024;

/// The block bytes an answer to a request of `asked` blocks may hold.
pub fn blocks_budget(asked: usize) -> usize {
    if asked > LEGACY_BLOCKS_PER_REQUEST { LARGE_REQUEST_BUDGET } else { BLOCKS_RESPONSE_BUDGET }
}
/// Most txids in one `Txids` answer (a mempool's worth; 32 bytes each).
pub const MAX_MEMPOOL_TXIDS: usize = 10_000;
/// Most transactions asked for in one `Txs` request.
pub const MAX_TXS_PER_REQUEST: usize = 256;
/// Most transaction indexes in one `BlockTxs` request (every transaction of a block).
pub const MAX_BLOCK_TXS_INDEXES: usize = 16_000;
/// Largest request frame: a locator or a list of block hashes fits many times over.
pub const MAX_REQUEST_BYTES: usize = 64 * 1024;
/// Largest response frame: a blocks answer's budget plus framing (a length per block).
pub const MAX_RESPONSE_BYTES: usize = BLOCKS_RESPONSE_BUDGET + 64 * 1024;
/// Largest gossip message: a maximum-size block plus gossipsub's framing (~155 bytes).
pub const MAX_GOSSIP_BYTES: usize = MAX_BLOCK_BYTES + 4 * 1024;

/// Kademlia protocol id of `network`.
pub fn kad_protocol(network: Network) -> String {
    format!("/minichain/{network}/kad/1.0.0")
}

/// Identify protocol version of `network`: what a peer shows of its network at the
/// handshake.
pub fn identify_protocol(network: Network) -> String {
    format!("/minichain/{network}/1.0.0")
}

/// The network a peer's identify protocol version names (`regtest` of
/// `/minichain/regtest/1.0.0`), or the whole string when it is not ours at all.
pub fn network_of_identify(version: &str) -> &str {
    version.strip_prefix("/minichain/").and_then(|rest| rest.split('/').next()).unwrap_or(version)
}

/// Sync request-response protocol id of `network`.
pub fn sync_protocol(network: Network) -> String {
    format!("/minichain/{network}/sync/1")
}

/// Gossipsub topic for blocks.
pub fn blocks_topic(network: Network) -> String {
    format!("minichain/{network}/blocks")
}

/// Gossipsub topic for new blocks' headers, announced to be fetched compact (nodes that do
/// not speak compact blocks subscribe only to [`blocks_topic`]).
pub fn headers_topic(network: Network) -> String {
    format!("minichain/{network}/headers")
}

/// Gossipsub topic for transactions.
pub fn txs_topic(network: Network) -> String {
    format!("minichain/{network}/txs")
}

/// A node's view of its own chain, exchanged on connect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainTip {
    /// Genesis hash: peers on another chain are dropped.
    pub genesis: [u8; 32],
    /// Active tip hash.
    pub tip: [u8; 32],
    /// Active tip height.
    pub height: u32,
    /// Cumulative work of the tip, little-endian.
    pub work: [u8; 32],
}

/// A request on the sync protocol.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SyncRequest {
    /// "What is your tip?"
    Status,
    /// Headers after the first locator hash we share, at most `max`.
    Headers {
        /// Block locator: hashes from our tip back to genesis, densest near the tip.
        locator: Vec<[u8; 32]>,
        /// Most headers wanted (capped at [`MAX_HEADERS`]).
        max: u32,
    },
    /// Blocks by hash (at most [`MAX_BLOCKS_PER_REQUEST`]; answered in order, as many as
    /// fit in [`BLOCKS_RESPONSE_BUDGET`]).
    Blocks(Vec<[u8; 32]>),
    /// "Which transactions are in your mempool?" (asked once per connection, when caught
    /// up: mempools reconcile, as Bitcoin's BIP35 `mempool` message does).
    Mempool,
    /// Mempool transactions by txid (at most [`MAX_TXS_PER_REQUEST`]).
    Txs(Vec<[u8; 32]>),
    /// Transactions of a block by index, increasing: those a compact block's receiver
    /// could not find in its mempool (asked only of the peer that announced it).
    BlockTxs {
        /// The block.
        block: [u8; 32],
        /// Indexes of the transactions wanted (at most [`MAX_BLOCK_TXS_INDEXES`]).
        indexes: Vec<u32>,
    },
    /// The compact form of a block whose header the peer announced (asked only of a peer
    /// that announced it; answered once the peer has taken the block).
    CompactBlock([u8; 32]),
}

/// One line for logs: what is asked, with hashes shortened.
impl std::fmt::Display for SyncRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Status => write!(f, "status"),
            Self::Headers { locator, max } => match locator.first() {
                Some(first) => write!(
                    f,
                    "up to {max} headers after {} ({} locator hashes)",
                    short(first),
                    locator.len()
                ),
                None => write!(f, "up to {max} headers (empty locator)"),
            },
            Self::Blocks(hashes) => match (hashes.first(), hashes.last()) {
                (Some(first), Some(last)) if hashes.len() > 1 => {
                    write!(f, "{} blocks {}..{}", hashes.len(), short(first), short(last))
                }
                (Some(first), _) => write!(f, "block {}", short(first)),
                _ => write!(f, "no blocks"),
            },
            Self::Mempool => write!(f, "mempool txids"),
            Self::Txs(txids) => write!(f, "{} mempool transactions", txids.len()),
            Self::BlockTxs { block, indexes } => {
                write!(f, "{} transactions of block {}", indexes.len(), short(block))
            }
            Self::CompactBlock(block) => write!(f, "compact block {}", short(block)),
        }
    }
}

/// The first 8 hex digits of a block hash as the node shows it everywhere.
fn short(hash: &[u8; 32]) -> String {
    let mut hex = crate::primitives::BlockHash(*hash).to_string();
    hex.truncate(8);
    hex
}

/// A response on the sync protocol.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SyncResponse {
    /// Our tip.
    Status(ChainTip),
    /// Concatenated 80-byte headers, in chain order.
    Headers(Vec<u8>),
    /// Consensus-encoded blocks we have, in the order asked (unknown ones left out).
    Blocks(Vec<Vec<u8>>),
    /// The request was malformed or over a limit.
    Refused(String),
    /// Txids in the mempool, parents before children (at most [`MAX_MEMPOOL_TXIDS`]).
    Txids(Vec<[u8; 32]>),
    /// Consensus-encoded transactions we have, in the order asked (gone ones left out).
    Txs(Vec<Vec<u8>>),
    /// The transactions of a block asked by index, all of them, in the order asked.
    BlockTxs(Vec<Vec<u8>>),
    /// An encoded [`crate::compact::CompactBlock`] of the block asked.
    CompactBlock(Vec<u8>),
}

/// The gossip topics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GossipKind {
    /// `minichain/<network>/blocks`: whole blocks.
    Block,
    /// `minichain/<network>/txs`.
    Tx,
    /// `minichain/<network>/headers`: a new block's header; the block itself is asked
    /// compact ([`crate::compact`]) of the peer that announced it.
    Header,
}

impl GossipKind {
    /// The topic's last word, for metrics labels: `block` or `tx`.
    pub fn label(self) -> &'static str {
        match self {
            GossipKind::Block => "block",
            GossipKind::Tx => "tx",
            GossipKind::Header => "header",
        }
    }

    /// What travels on the topic, for messages.
    pub fn noun(self) -> &'static str {
        match self {
            GossipKind::Block => "block",
            GossipKind::Tx => "transaction",
            GossipKind::Header => "block header",
        }
    }
}

/// Why a sync frame was refused: the sender is at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The length prefix is over the cap; the body is never read.
    #[error("frame of {len} bytes over the {cap}-byte cap")]
    Oversized {
        /// Announced length.
        len: usize,
        /// The cap.
        cap: usize,
    },
    /// The stream ended inside the frame.
    #[error("stream ended inside a frame")]
    Truncated,
    /// The body is not one message.
    #[error("undecodable frame: {0}")]
    Undecodable(DecodeFailure),
}

/// Why a frame body did not decode.
#[derive(Debug, Clone, thiserror::Error)]
pub enum DecodeFailure {
    /// The decoder refused the bytes.
    #[error("{0}")]
    Malformed(Arc<bincode::error::DecodeError>),
    /// One message decoded and bytes were left over.
    #[error("trailing bytes after the message")]
    TrailingBytes,
}

impl PartialEq for DecodeFailure {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::Malformed(a), Self::Malformed(b)) => a.to_string() == b.to_string(),
            (Self::TrailingBytes, Self::TrailingBytes) => true,
            _ => false,
        }
    }
}

impl Eq for DecodeFailure {}
