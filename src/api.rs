//! The API's JSON shapes, shared by the server (`rpc`), the node handle that builds them
//! (`node`) and the client (`cli`), which deserializes into the same types. Hashes are
//! byte-reversed hex, amounts are base units (1 coin = 100,000,000), addresses are bech32m.

use serde::{Deserialize, Serialize};

use crate::primitives::address::encode_address;
use crate::primitives::{Block, BlockHash, Transaction, TxOut};
use crate::storage::IndexEntry;

/// A block header with its place in the chain and its txids.
#[derive(Debug, Serialize, Deserialize)]
pub struct BlockView {
    /// Block hash.
    pub hash: String,
    /// Height.
    pub height: u32,
    /// Blocks on top of it plus one; 0 if not on the active chain.
    pub confirmations: u32,
    /// Whether it is on the active chain.
    pub in_active_chain: bool,
    /// Header version.
    pub version: u32,
    /// Parent hash.
    pub prev_hash: String,
    /// Merkle root.
    pub merkle_root: String,
    /// Block time (Unix seconds).
    pub time: u32,
    /// Compact target, hex.
    pub bits: String,
    /// Expected hashes to find a block at this target (its work).
    pub difficulty: f64,
    /// Nonce.
    pub nonce: u32,
    /// Encoded size in bytes.
    pub size: usize,
    /// Number of transactions.
    pub tx_count: usize,
    /// Txids, coinbase first.
    pub txids: Vec<String>,
}

impl BlockView {
    /// Builds the view; `tip_height` and `active` place it in the chain.
    pub fn new(block: &Block, entry: &IndexEntry, tip_height: u32, active: bool) -> Self {
        let h = &block.header;
        Self {
            hash: block.block_hash().to_string(),
            height: entry.height,
            confirmations: if active { tip_height.saturating_sub(entry.height) + 1 } else { 0 },
            in_active_chain: active,
            version: h.version,
            prev_hash: h.prev_blockhash.to_string(),
            merkle_root: crate::primitives::BlockHash(h.merkle_root.0).to_string(),
            time: h.time,
            bits: format!("{:08x}", h.bits),
            difficulty: crate::consensus::pow::difficulty(h.bits),
            nonce: h.nonce,
            size: block.size(),
            tx_count: block.txs.len(),
            txids: block.txs.iter().map(|tx| tx.txid().to_string()).collect(),
        }
    }
}

/// A transaction input.
#[derive(Debug, Serialize, Deserialize)]
pub struct InputView {
    /// Spent txid (all zeros for a coinbase).
    pub txid: String,
    /// Spent output index (the height for a coinbase).
    pub vout: u32,
    /// Signature, hex.
    pub signature: String,
}

/// A transaction output.
#[derive(Debug, Serialize, Deserialize)]
pub struct OutputView {
    /// Amount, base units.
    pub value: u64,
    /// Owner's address.
    pub address: String,
}

impl OutputView {
    /// The view of `out` with an address of network prefix `hrp`.
    pub fn new(out: &TxOut, hrp: &'static str) -> Self {
        Self { value: out.value, address: encode_address(hrp, &out.pubkey) }
    }
}

/// A transaction.
#[derive(Debug, Serialize, Deserialize)]
pub struct TxView {
    /// Txid.
    pub txid: String,
    /// Version.
    pub version: u32,
    /// Inputs.
    pub inputs: Vec<InputView>,
    /// Outputs.
    pub outputs: Vec<OutputView>,
    /// Lock time.
    pub lock_time: u32,
    /// Encoded size, bytes.
    pub size: usize,
    /// The consensus encoding, hex (what `POST /tx` takes).
    pub hex: String,
}

impl TxView {
    /// Builds the view with addresses of network prefix `hrp`.
    pub fn new(tx: &Transaction, hrp: &'static str) -> Self {
        Self {
            txid: tx.txid().to_string(),
            version: tx.version,
            inputs: tx
                .inputs
                .iter()
                .map(|i| InputView {
                    txid: i.prevout.txid.to_string(),
                    vout: i.prevout.vout,
                    signature: hex::encode(i.signature),
                })
                .collect(),
            outputs: tx.outputs.iter().map(|o| OutputView::new(o, hrp)).collect(),
            lock_time: tx.lock_time,
            size: tx.size(),
            hex: hex::encode(crate::primitives::encode::serialize(tx)),
        }
    }
}

/// `GET /tx/{txid}`.
#[derive(Debug, Serialize, Deserialize)]
pub struct TxLookup {
    /// The transaction.
    pub tx: TxView,
    /// Confirmations (0 in the mempool).
    pub confirmations: u32,
    /// Containing block, if confirmed.
    pub block: Option<String>,
    /// Height of that block.
    pub height: Option<u32>,
    /// Fee: inputs minus outputs (null for a coinbase).
    pub fee: Option<u64>,
    /// Whether it waits in the mempool.
    pub in_mempool: bool,
    /// Whether it is a block's coinbase (its one input spends nothing).
    pub coinbase: bool,
    /// The output each input spends, in input order (null for a coinbase's input).
    pub prevouts: Vec<Option<OutputView>>,
}

impl TxLookup {
    /// The view of `tx`, spending `prevouts` (in input order, `None` where unknown), with
    /// `confirmations` and, once confirmed, its block's hash and height. The fee is known
    /// when every spent output is.
    pub fn new(
        tx: &Transaction,
        prevouts: &[Option<TxOut>],
        confirmations: u32,
        block: Option<(BlockHash, u32)>,
        hrp: &'static str,
    ) -> Self {
        let coinbase = tx.is_coinbase();
        let spent: Option<u64> = prevouts.iter().map(|p| p.map(|o| o.value)).sum();
        let paid: u64 = tx.outputs.iter().map(|o| o.value).sum();
        Self {
            tx: TxView::new(tx, hrp),
            confirmations,
            block: block.map(|(hash, _)| hash.to_string()),
            height: block.map(|(_, height)| height),
            fee: if coinbase { None } else { spent.and_then(|s| s.checked_sub(paid)) },
            in_mempool: block.is_none(),
            coinbase,
            prevouts: prevouts
                .iter()
                .map(|p| p.as_ref().map(|o| OutputView::new(o, hrp)))
                .collect(),
        }
    }
}

/// `GET /address/{addr}/balance`.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct BalanceView {
    /// The address.
    pub address: String,
    /// Sum of confirmed unspent outputs.
    pub confirmed: u64,
    /// Net effect of mempool transactions (incoming minus spent), may be negative.
    pub unconfirmed: i64,
    /// Part of `confirmed` in coinbase outputs that are not mature yet.
    pub immature: u64,
}

/// One spendable output of an address.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct UtxoEntry {
    /// Txid.
    pub txid: String,
    /// Output index.
    pub vout: u32,
    /// Amount, base units.
    pub value: u64,
    /// Height of the block that created it (absent while unconfirmed).
    pub height: Option<u32>,
    /// Confirmations (0 while unconfirmed).
    pub confirmations: u32,
    /// Whether a coinbase created it.
    pub coinbase: bool,
    /// Whether it can be spent in the next block (mature coinbase or any other output).
    pub spendable: bool,
}

/// `GET /address/{addr}/utxos`.
#[derive(Debug, Serialize, Deserialize)]
pub struct UtxosView {
    /// The address.
    pub address: String,
    /// Its spendable outputs, confirmed first.
    pub utxos: Vec<UtxoEntry>,
}

/// `GET /address/{addr}/history`: every transaction that paid the address or spent
/// its coins, newest first (the mempool's before the chain's).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct HistoryView {
    /// The address.
    pub address: String,
    /// The transactions.
    pub txs: Vec<HistoryEntry>,
}

/// One transaction of an address's history.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct HistoryEntry {
    /// Txid.
    pub txid: String,
    /// Height of its block (absent while in the mempool).
    pub height: Option<u32>,
    /// Confirmations (0 while in the mempool).
    pub confirmations: u32,
    /// What its outputs paid the address, base units.
    pub received: u64,
    /// What the address's coins it spent held, base units.
    pub sent: u64,
    /// Its fee (absent for a coinbase).
    pub fee: Option<u64>,
    /// Whether it is a coinbase.
    pub coinbase: bool,
}

/// The body of `POST /addresses/used` and `POST /addresses`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct AddressesRequest {
    /// The addresses asked about (at most 5,000).
    pub addresses: Vec<String>,
    /// `POST /addresses`: include each address's confirmed history (reads blocks).
    #[serde(default)]
    pub history: bool,
}

/// Answer to `POST /addresses/used`: whether each address (in the order asked) has ever
/// had a transaction, on the active chain or in the mempool.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct UsedView {
    /// One per address asked.
    pub used: Vec<bool>,
}

/// Answer to `POST /addresses`: one summary per address, in the order asked.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct AddressesView {
    /// The summaries.
    pub addresses: Vec<AddressSummary>,
}

/// What a wallet needs of one address: [`BalanceView`]'s fields, its coins, its
/// transactions in the mempool and, when asked, on the chain.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct AddressSummary {
    /// The address.
    pub address: String,
    /// Sum of confirmed unspent outputs.
    pub confirmed: u64,
    /// Net effect of mempool transactions, may be negative.
    pub unconfirmed: i64,
    /// Part of `confirmed` in coinbase outputs that are not mature yet.
    pub immature: u64,
    /// Transactions in its history, the chain's and the mempool's.
    pub txs: usize,
    /// As `GET /address/{addr}/utxos`.
    pub utxos: Vec<UtxoEntry>,
    /// Its mempool transactions, newest first.
    pub pending: Vec<HistoryEntry>,
    /// Its active chain transactions, newest first (only with `"history": true`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub history: Option<Vec<HistoryEntry>>,
}

/// `GET /fees`: the fee rate to pay for confirmation within 1, 3 and 6 blocks.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct FeesView {
    /// One estimate per target, the shortest first; never rising with the target.
    pub estimates: Vec<FeeEstimateView>,
    /// The relay minimum: no estimate is below it.
    pub min_fee_rate: u64,
    /// What the rates count: `"base units per 1000 bytes"`.
    pub unit: String,
}

/// One fee estimate.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct FeeEstimateView {
    /// Blocks to confirm within.
    pub target: u32,
    /// Base units per 1,000 bytes.
    pub fee_rate: u64,
    /// What it rests on: `blocks` (how fast recent payments at each rate confirmed),
    /// `room` (recent blocks had room: the minimum is enough) or `mempool` (the backlog
    /// to outbid, or the minimum while nothing else is known).
    pub basis: String,
}

/// The `GET /status` document.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Status {
    /// This build: version and commit.
    #[serde(default)]
    pub version: String,
    /// Network name.
    pub network: String,
    /// `no peers` (no peer of our network has shown its tip), `syncing` or `synced`.
    #[serde(default)]
    pub state: String,
    /// Active tip height.
    pub height: u32,
    /// Active tip hash (hex).
    pub tip: String,
    /// Best header height.
    pub headers: u32,
    /// Our peer id.
    pub peer_id: String,
    /// Dialable listen addresses with `/p2p/<id>`.
    pub listen_addrs: Vec<String>,
    /// Connected peers.
    pub peer_count: usize,
    /// Connected peers that have shown us their tip: peers of our network that sync with
    /// us (a peer of another network, or one still shaking hands, is not among them).
    #[serde(default)]
    pub sync_peers: usize,
    /// Seconds since the active tip's header time (negative when it is ahead of our clock).
    #[serde(default)]
    pub tip_age_secs: i64,
    /// Transactions in the mempool.
    pub mempool_size: usize,
    /// Whether the node is catching up.
    pub syncing: bool,
    /// Mining nonces per second (0 when not mining).
    pub hashrate: f64,
    /// Expected hashes to find a block at the tip's target.
    pub difficulty: f64,
    /// Cumulative work of the active chain (expected hashes).
    pub chain_work: f64,
    /// Active height over best header height, 0 to 1.
    pub progress: f64,
    /// Connected peers that dialled us.
    pub peers_in: usize,
    /// Connected peers we dialled.
    pub peers_out: usize,
    /// Bytes of transactions in the mempool.
    pub mempool_bytes: usize,
    /// Bytes the data directory's files take (the database, keys, peer book).
    pub disk_bytes: u64,
    /// Seconds since the node started.
    pub uptime_secs: u64,
    /// Whether other hosts can dial us, as AutoNAT last found: `unknown`, `public` or
    /// `private`.
    pub reachability: String,
    /// Addresses we advertise to peers: confirmed (AutoNAT, a relay slot) or configured
    /// (`--external-addr`).
    pub external_addrs: Vec<String>,
    /// Our addresses through relays, while we are not reachable.
    pub relay_addrs: Vec<String>,
    /// The network's clock minus ours in seconds, when peers show it is off by more than
    /// the future limit (absent otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clock_offset_secs: Option<i64>,
    /// Set when a local failure (a full disk, an I/O error, a damaged database) stopped
    /// the node from storing blocks: what happened and what to do. `height` is then what
    /// the store holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub degraded: Option<String>,
    /// What the operator should know about (the clock, a degraded store), one line each.
    #[serde(default)]
    pub warnings: Vec<String>,
    /// Present when signatures below a trusted block are not checked (`--assume-valid`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assume_valid: Option<AssumeValidView>,
    /// Present when the node started from a UTXO snapshot (`--snapshot`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<SnapshotView>,
}

/// `GET /health` and `GET /ready`: whether the node is, and if not, why (one line each).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Readiness {
    /// Healthy (for `/health`) or ready (for `/ready`); the HTTP status says it too.
    pub ok: bool,
    /// Why not: empty when `ok`.
    pub reasons: Vec<String>,
}

impl Readiness {
    /// Healthy: the process answers and a local failure (a full disk, an I/O error, a
    /// damaged database) has not stopped it from storing blocks.
    #[must_use]
    pub fn health(status: &Status) -> Self {
        Self::of(status.degraded.iter().cloned().collect())
    }

    /// Ready to serve as a synced node: healthy, with at least one peer, and at the best
    /// header it knows of.
    #[must_use]
    pub fn ready(status: &Status) -> Self {
        let mut reasons = Self::health(status).reasons;
        match (status.peer_count, status.sync_peers) {
            (0, _) => reasons.push("no peers".to_owned()),
            (n, 0) => reasons.push(format!("no peers of our network yet ({n} connected)")),
            _ => {}
        }
        if status.syncing || status.height < status.headers {
            reasons
                .push(format!("syncing: height {} of {} headers", status.height, status.headers));
        }
        Self::of(reasons)
    }

    /// `/status`'s `state`: `syncing` while catching up, else `no peers` while no peer of
    /// our network syncs with us, else `synced`.
    #[must_use]
    pub fn state(syncing: bool, sync_peers: usize) -> &'static str {
        match (syncing, sync_peers) {
            (true, _) => "syncing",
            (false, 0) => "no peers",
            (false, _) => "synced",
        }
    }

    fn of(reasons: Vec<String>) -> Self {
        Readiness { ok: reasons.is_empty(), reasons }
    }
}

/// `/status`'s `snapshot`: the snapshot's base and how far its history is validated.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct SnapshotView {
    /// Height of the snapshot's block.
    pub height: u32,
    /// How far the chain validating its history from genesis has come.
    pub validated_height: u32,
    /// Whether that chain reached the snapshot's block and its UTXO set matched.
    pub done: bool,
}

/// `/status`'s `assume_valid`: the block whose ancestors' signatures are trusted.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct AssumeValidView {
    /// The trusted block's hash.
    pub hash: String,
    /// Blocks connected since start without their signature checks (ancestors of `hash`
    /// buried under enough work).
    pub skipped_blocks: u64,
}

/// One `GET /mempool` entry.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct MempoolEntry {
    /// Txid.
    pub txid: String,
    /// Fee in base units.
    pub fee: u64,
    /// Size in bytes.
    pub size: usize,
    /// Fee per 1,000 bytes.
    pub fee_rate: u64,
}

/// `GET /mempool`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct MempoolView {
    /// Transactions.
    pub size: usize,
    /// Their bytes.
    pub bytes: usize,
    /// Entries, highest fee rate first.
    pub txs: Vec<MempoolEntry>,
}

/// Answer to `POST /tx`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Submitted {
    /// The transaction's id.
    pub txid: String,
}

/// Answer to `POST /mine`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Mined {
    /// Hashes of the blocks mined, in order.
    pub blocks: Vec<String>,
}

/// Every error answer.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ErrorBody {
    /// What went wrong.
    pub error: String,
}

/// `POST /tx`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubmitTx {
    /// The consensus-encoded transaction, hex.
    pub hex: String,
}

/// `POST /mine`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MineRequest {
    /// Blocks to mine.
    pub blocks: u32,
    /// Address the coinbases pay (default: the node's payout: its wallet or `--miner-address`).
    #[serde(default)]
    pub to: Option<String>,
}

/// `POST /peers`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct AddPeer {
    /// A full multiaddr or `HOST:PORT`.
    pub addr: String,
}

/// Answer to `POST /peers`: the address as the node will dial it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct PeerAdded {
    /// The multiaddr kept.
    pub addr: String,
}

/// `POST /peers/remove`, `POST /peers/disconnect` and `POST /unban`: which peer.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct PeerRef {
    /// A peer id (`12D3KooW…`), or for `/peers/remove` also the address as it was added.
    pub peer: String,
}

/// Answer to `POST /peers/remove`, `POST /peers/disconnect` and `POST /unban`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct PeerDone {
    /// The peer as given.
    pub peer: String,
    /// What was done: `removed`, `disconnected` or `unbanned`.
    pub done: String,
}

/// `GET /bans` entry.
#[derive(Debug, Serialize, Deserialize)]
pub struct BanView {
    /// Peer id.
    pub peer_id: String,
    /// The offence that got it banned.
    pub reason: String,
    /// Seconds until the ban lifts.
    pub expires_in_secs: u64,
}

/// `GET /peers` entry.
#[derive(Debug, Serialize, Deserialize)]
pub struct PeerView {
    /// Peer id.
    pub peer_id: String,
    /// Remote address of the connection.
    pub addr: String,
    /// `inbound` or `outbound`.
    pub direction: String,
    /// How the connection came about: `bootstrap`, `operator` (added at run time),
    /// `kademlia`, `identify` or `inbound`.
    pub source: String,
    /// Identify agent.
    pub agent: Option<String>,
    /// True while the connection goes through a relay (no direct one yet).
    pub relayed: bool,
    /// Height of the peer's tip, as it last told us.
    pub height: Option<u32>,
    /// The peer's tip.
    pub tip: Option<String>,
    /// Faults since it connected: requests it let time out, batches that stalled the
    /// download, frames cut off (three in ten minutes disconnect it; never a ban).
    #[serde(default)]
    pub faults: u32,
    /// Misbehaviour points now (banned at 100; decaying by one a minute).
    #[serde(default)]
    pub points: u32,
    /// Seconds since it connected.
    #[serde(default)]
    pub connected_secs: u64,
    /// The last ping round trip in milliseconds, once one came back.
    #[serde(default)]
    pub ping_ms: Option<f64>,
    /// Protocol bytes sent to it over its current direct connections (not counted
    /// through a relay).
    #[serde(default)]
    pub bytes_sent: u64,
    /// Protocol bytes received from it likewise.
    #[serde(default)]
    pub bytes_received: u64,
}

/// `GET /peers/kept` entry: a peer the operator named (`--bootstrap`, `peers add`), kept
/// connected for as long as the node runs.
#[derive(Debug, Serialize, Deserialize)]
pub struct KeptPeerView {
    /// The address as given.
    pub addr: String,
    /// Its peer id, once known.
    pub peer_id: Option<String>,
    /// `bootstrap` or `operator`.
    pub source: String,
    /// Whether it is connected now.
    pub connected: bool,
    /// Seconds until the next dial, while it is disconnected and no dial is in flight.
    pub next_dial_in_secs: Option<u64>,
}
