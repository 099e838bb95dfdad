//! The core's inputs and outputs: what the network layer, the miner and the API tell it,
//! and what it asks each of them to do. The driver (`node::service`) and the simulator
//! carry these; nothing here decides anything.

use super::reply::{Reply, ReplyTo};
use super::score::Offence;
use super::verdict::Verdict;
use super::{MempoolEntry, MempoolTx, MineError, Pending};
use crate::mempool::{FeeEstimate, MempoolError};
use crate::miner::Template;
use crate::primitives::{Block, BlockHash, PeerKey, Transaction, Txid};
use crate::protocol::{GossipKind, SyncRequest, SyncResponse};
use crate::sync::Ask;

/// What the network layer tells the core.
#[derive(Debug)]
pub enum NetEvent {
    /// First connection to a peer.
    Connected {
        /// The peer.
        peer: PeerKey,
        /// A peer the operator named (`--bootstrap`, `peers add`): an offence that would
        /// ban it disconnects it instead.
        noban: bool,
    },
    /// What logs call a connected peer (its peer id), told right after
    /// [`NetEvent::Connected`]; without it, logs show the key (`peer#3`).
    Named {
        /// The peer.
        peer: PeerKey,
        /// Its name in logs.
        name: String,
    },
    /// Last connection to a peer closed.
    Disconnected {
        /// The peer.
        peer: PeerKey,
    },
    /// A gossip message waiting for a verdict ([`NetAction::Validate`]).
    Gossip {
        /// Id to answer with.
        id: u64,
        /// Who relayed it.
        peer: PeerKey,
        /// Topic.
        kind: GossipKind,
        /// Payload.
        data: Vec<u8>,
    },
    /// A sync request ([`NetAction::Respond`] answers it).
    Request {
        /// Id to answer with.
        id: u64,
        /// Who asks.
        peer: PeerKey,
        /// The request.
        req: SyncRequest,
    },
    /// The answer to one of our requests.
    Response {
        /// The id we sent it with.
        id: u64,
        /// Who answered.
        peer: PeerKey,
        /// The answer.
        resp: SyncResponse,
    },
    /// One of our requests failed (timeout, disconnect, unsupported, bad frame).
    RequestFailed {
        /// The id we sent it with.
        id: u64,
        /// The peer asked.
        peer: PeerKey,
        /// Whether the peer let it time out.
        timed_out: bool,
    },
    /// A peer broke the protocol below the core's view (request floods).
    Misbehaved {
        /// The peer.
        peer: PeerKey,
        /// What it did.
        offence: Offence,
    },
    /// A sync frame from a peer broke the framing (cut off, oversized, undecodable);
    /// [`judge`] tells a dead connection from garbage.
    BadFrame {
        /// The peer.
        peer: PeerKey,
        /// How the frame broke.
        error: crate::protocol::FrameError,
    },
}

/// What the core asks the network layer to do.
#[derive(Debug, Clone, PartialEq)]
pub enum NetAction {
    /// Gossip `data` on a topic.
    Publish {
        /// Topic.
        kind: GossipKind,
        /// Payload.
        data: Vec<u8>,
    },
    /// Send a sync request; the answer comes back as [`NetEvent::Response`] with its id.
    Request(Ask),
    /// Answer an inbound request.
    Respond {
        /// The request's id.
        id: u64,
        /// The answer.
        resp: SyncResponse,
    },
    /// Verdict on a gossip message.
    Validate {
        /// The message's id.
        id: u64,
        /// Forward, drop, or drop and count against the sender.
        verdict: Verdict,
    },
    /// Disconnect and refuse a peer for the ban duration.
    Ban {
        /// The peer.
        peer: PeerKey,
        /// The offence that reached the threshold.
        offence: Offence,
    },
    /// Disconnect a peer without banning it (faults, or an offence of a `noban` peer); a
    /// kept peer is dialled again after its backoff.
    Disconnect {
        /// The peer.
        peer: PeerKey,
        /// Why, for the log.
        reason: String,
    },
}

/// A question or order from the API, with where its answer goes.
#[derive(Debug)]
pub enum Command {
    /// Validate, add to the mempool and gossip a transaction.
    SubmitTx {
        /// The transaction.
        tx: Transaction,
        /// Its txid, or why the mempool refused it.
        reply: ReplyTo<Result<Txid, MempoolError>>,
    },
    /// Mine blocks at once (regtest only), paying `to` (default: the node's payout key).
    Mine {
        /// How many.
        blocks: u32,
        /// Key the coinbases pay.
        to: Option<[u8; 32]>,
        /// The hashes of the blocks mined, or why mining stopped.
        reply: ReplyTo<Result<Vec<BlockHash>, MineError>>,
    },
    /// Mempool entries, highest fee rate first.
    Mempool {
        /// The entries.
        reply: ReplyTo<Vec<MempoolEntry>>,
    },
    /// A mempool transaction and its fee.
    MempoolTx {
        /// The transaction asked for.
        txid: Txid,
        /// The transaction, its fee and what it spends, if it is in the mempool.
        reply: ReplyTo<Option<MempoolTx>>,
    },
    /// What the mempool does to some owners' coins.
    Pending {
        /// The keys the coins are locked to.
        owners: Vec<[u8; 32]>,
        /// Their coins spent and received in the mempool, in the same order.
        reply: ReplyTo<Vec<Pending>>,
    },
    /// Fee rates for confirmation within each of [`crate::mempool::fees::TARGETS`] blocks.
    Fees {
        /// The estimates, and the relay minimum (base units per 1,000 bytes).
        reply: ReplyTo<(Vec<FeeEstimate>, u64)>,
    },
}

/// What subscribers of the event stream hear.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum NodeEvent {
    /// A block joined the active chain.
    Block {
        /// Hash.
        hash: String,
        /// Height.
        height: u32,
        /// Transactions in it.
        txs: usize,
    },
    /// The active chain switched branches.
    Reorg {
        /// Blocks disconnected.
        depth: usize,
        /// Tip before.
        old_tip: String,
        /// Tip after.
        new_tip: String,
        /// Height after.
        height: u32,
    },
    /// A transaction entered the mempool.
    Tx {
        /// Txid.
        txid: String,
    },
    /// A peer connected or disconnected.
    Peer {
        /// True for a new peer, false for one gone.
        connected: bool,
        /// Peers connected now.
        peers: usize,
    },
    /// The UTXO set validated from genesis did not match the snapshot the node started
    /// from: the chain validated from genesis replaced the snapshot's.
    SnapshotRejected {
        /// Height of the chain it goes on from.
        height: u32,
    },
}

/// Everything the core reacts to.
#[derive(Debug)]
pub enum Input {
    /// From the network layer.
    Net(NetEvent),
    /// The miner threads solved the current job; `hashrate` (nonces/s) is for the log.
    Mined {
        /// The block.
        block: Block,
        /// The miner's recent rate.
        hashrate: f64,
    },
    /// An on-demand job ([`Output::Solve`]) came back: the block, or `None` if the search
    /// was abandoned.
    Solved(Option<Block>),
    /// From the API; the answer comes out as an [`Output::Reply`] for its [`ReplyTo`].
    Command(Command),
    /// Time passed.
    Tick,
    /// Stop: mining stops, nothing else is started.
    Shutdown,
}

/// What the core asks its driver to do.
#[derive(Debug)]
pub enum Output {
    /// A network action.
    Net(NetAction),
    /// An event for subscribers.
    Event(NodeEvent),
    /// The newest job for the miner threads (replacing any older one), or `None` to stop.
    Mine(Option<Box<Template>>),
    /// Solve this template once and hand the block back as [`Input::Solved`] (regtest
    /// blocks on demand; the nonce search never runs inside the core).
    Solve(Box<Template>),
    /// The answer to a command, to deliver once the outputs before it are carried out.
    Reply(Reply),
}
