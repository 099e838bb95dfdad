//! Prometheus metrics, served as `GET /metrics`: the node's own (`minichain_*`) and
//! libp2p's (`libp2p_*`, recorded by the network task from swarm and protocol events).
//!
//! The core decides nothing here and knows nothing of them: the driver counts what comes
//! out of it (blocks connected, reorgs, bans, gossip verdicts, blocks mined) and times the
//! inputs that carry blocks; gauges that mirror state (heights, mempool, peers, hash rate)
//! are read from the driver's snapshot and the network's peer table when scraped.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;

/// `direction="inbound"|"outbound"`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DirectionLabels {
    /// Who dialled.
    pub direction: String,
}

/// `offence="…"`: the offence that reached the ban threshold.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OffenceLabels {
    /// [`crate::core::Offence::label`].
    pub offence: String,
}

/// `topic="block"|"tx"`, `verdict="accept"|"ignore"|"reject"`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct GossipLabels {
    /// What the message carried.
    pub topic: String,
    /// What the node made of it.
    pub verdict: String,
}

/// `outcome="rebuilt"|"requested"|"fallback"`: what it took to rebuild a compact block.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    /// From the mempool alone, after asking for missing transactions, or fetched whole.
    pub outcome: String,
}

/// The node's metrics. Clones share the same values.
#[derive(Clone, Debug)]
pub struct NodeMetrics {
    /// Active tip height.
    pub chain_height: Gauge,
    /// Best header height.
    pub headers_height: Gauge,
    /// Cumulative work of the active chain (expected hashes).
    pub chain_work: Gauge<f64, AtomicU64>,
    /// Connected peers by direction.
    pub peers: Family<DirectionLabels, Gauge>,
    /// Transactions in the mempool.
    pub mempool_transactions: Gauge,
    /// Bytes of transactions in the mempool.
    pub mempool_bytes: Gauge,
    /// Blocks that joined the active chain.
    pub blocks_connected: Counter,
    /// Reorganisations (at least one block disconnected).
    pub reorgs: Counter,
    /// Time the core took to handle an input carrying blocks, per block.
    pub block_validation_seconds: Histogram,
    /// Blocks connected per second while catching up (0 otherwise).
    pub sync_blocks_per_second: Gauge<f64, AtomicU64>,
    /// Peers banned, by offence.
    pub bans: Family<OffenceLabels, Counter>,
    /// Gossip messages judged, by topic and verdict.
    pub gossip_messages: Family<GossipLabels, Counter>,
    /// Mining nonces per second (0 when not mining).
    pub hashrate: Gauge<f64, AtomicU64>,
    /// Blocks this node mined that joined the active chain.
    pub blocks_mined: Counter,
    /// Compact blocks by what it took to rebuild them (mirrors the core's counts).
    pub compact_blocks: Family<OutcomeLabels, Counter>,
}

impl NodeMetrics {
    /// The metrics, registered in `registry` (which gives them their `minichain_` prefix).
    pub fn register(registry: &mut Registry) -> Self {
        let m = Self {
            chain_height: Gauge::default(),
            headers_height: Gauge::default(),
            chain_work: Gauge::default(),
            peers: Family::default(),
            mempool_transactions: Gauge::default(),
            mempool_bytes: Gauge::default(),
            blocks_connected: Counter::default(),
            reorgs: Counter::default(),
            // 100 µs to ~1.6 s.
            block_validation_seconds: Histogram::new(exponential_buckets(1e-4, 2.0, 15)),
            sync_blocks_per_second: Gauge::default(),
            bans: Family::default(),
            gossip_messages: Family::default(),
            hashrate: Gauge::default(),
            blocks_mined: Counter::default(),
            compact_blocks: Family::default(),
        };
        let r = registry;
        r.register("chain_height", "Height of the active tip", m.chain_height.clone());
        r.register("headers_height", "Height of the best known header", m.headers_height.clone());
        r.register("chain_work", "Cumulative work of the active chain", m.chain_work.clone());
        r.register("peers", "Connected peers by direction", m.peers.clone());
        r.register(
            "mempool_transactions",
            "Transactions in the mempool",
            m.mempool_transactions.clone(),
        );
        r.register(
            "mempool_bytes",
            "Bytes of transactions in the mempool",
            m.mempool_bytes.clone(),
        );
        r.register(
            "blocks_connected",
            "Blocks that joined the active chain",
            m.blocks_connected.clone(),
        );
        r.register("reorgs", "Reorganisations of the active chain", m.reorgs.clone());
        r.register(
            "block_validation_seconds",
            "Time to accept a block (validation and storage), per block",
            m.block_validation_seconds.clone(),
        );
        r.register(
            "sync_blocks_per_second",
            "Blocks connected per second while catching up",
            m.sync_blocks_per_second.clone(),
        );
        r.register("bans", "Peers banned, by offence", m.bans.clone());
        r.register(
            "gossip_messages",
            "Gossip messages judged, by topic and verdict",
            m.gossip_messages.clone(),
        );
        // Every topic and verdict from the start, so that rates begin at zero; bans appear
        // with the first of each offence.
        for topic in ["block", "tx", "header"] {
            for verdict in ["accept", "ignore", "reject"] {
                let labels = GossipLabels { topic: topic.into(), verdict: verdict.into() };
                drop(m.gossip_messages.get_or_create(&labels));
            }
        }
        r.register("hashrate", "Mining nonces per second", m.hashrate.clone());
        r.register(
            "blocks_mined",
            "Blocks mined here that joined the chain",
            m.blocks_mined.clone(),
        );
        r.register(
            "compact_blocks",
            "Compact blocks by what it took to rebuild them",
            m.compact_blocks.clone(),
        );
        m.set_compact(crate::core::CompactStats::default());
        m
    }

    /// Registers the network's byte counters as `p2p_bytes`.
    pub fn register_p2p_bytes(&self, registry: &mut Registry, bytes: &crate::net::P2pBytes) {
        registry.register(
            "p2p_bytes",
            "Bytes sent and received, by protocol (sync frames; gossip payloads per topic)",
            bytes.family(),
        );
    }

    /// Brings the compact block counters up to the core's counts.
    pub fn set_compact(&self, stats: crate::core::CompactStats) {
        for (outcome, count) in [
            ("rebuilt", stats.rebuilt),
            ("requested", stats.requested),
            ("fallback", stats.fallback),
        ] {
            let counter =
                self.compact_blocks.get_or_create(&OutcomeLabels { outcome: outcome.into() });
            counter.inc_by(count.saturating_sub(counter.get()));
        }
    }
}
