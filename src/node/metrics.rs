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

/// `version="0.1.0"`, `commit="1a2b3c4"`: which build answers.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BuildLabels {
    /// The crate's version.
    pub version: String,
    /// The git commit it was built from (`unknown` outside a checkout).
    pub commit: String,
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
    /// Always 1, labelled with the version and commit.
    pub build_info: Family<BuildLabels, Gauge>,
    /// Seconds since the node started.
    pub uptime_seconds: Gauge,
    /// Size of the database file.
    pub database_bytes: Gauge,
    /// The process's resident memory (`process_resident_memory_bytes`, Linux).
    pub resident_memory_bytes: Gauge,
    /// CPU time the process used, user and system (`process_cpu_seconds_total`, Linux).
    pub cpu_seconds: Counter<f64, AtomicU64>,
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
            build_info: Family::default(),
            uptime_seconds: Gauge::default(),
            database_bytes: Gauge::default(),
            resident_memory_bytes: Gauge::default(),
            cpu_seconds: Counter::default(),
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
        // Every topic, verdict and offence from the start, so that rates begin at zero
        // and a dashboard's panel shows 0 rather than "no data".
        for offence in crate::core::Offence::LABELS {
            drop(m.bans.get_or_create(&OffenceLabels { offence: offence.into() }));
        }
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
        r.register(
            "build_info",
            "The version and commit of this build (always 1)",
            m.build_info.clone(),
        );
        let build = BuildLabels {
            version: env!("CARGO_PKG_VERSION").into(),
            commit: env!("MINICHAIN_COMMIT").into(),
        };
        m.build_info.get_or_create(&build).set(1);
        r.register("uptime_seconds", "Seconds since the node started", m.uptime_seconds.clone());
        r.register("database_bytes", "Size of the database file", m.database_bytes.clone());
        m
    }

    /// Registers the process's own metrics under their standard names, without the
    /// `minichain_` prefix (what dashboards for any Prometheus target expect).
    pub fn register_process(&self, root: &mut Registry) {
        root.register(
            "process_resident_memory_bytes",
            "Resident memory size in bytes",
            self.resident_memory_bytes.clone(),
        );
        root.register(
            "process_cpu_seconds",
            "Total user and system CPU time spent in seconds",
            self.cpu_seconds.clone(),
        );
    }

    /// Brings the process gauges up to date from `/proc/self` (Linux; elsewhere they
    /// stay at zero).
    pub fn set_process(&self) {
        let Some((rss, cpu)) = process_stats() else { return };
        self.resident_memory_bytes.set(i64::try_from(rss).unwrap_or(i64::MAX));
        let was = self.cpu_seconds.get();
        if cpu > was {
            self.cpu_seconds.inc_by(cpu - was);
        }
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

/// Resident bytes and CPU seconds of this process, from `/proc/self/status` and
/// `/proc/self/stat`.
fn process_stats() -> Option<(u64, f64)> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let rss_kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name (field 2) is in parentheses and may hold spaces: count fields
    // from after its closing one. utime and stime are fields 14 and 15.
    let after = &stat[stat.rfind(')')? + 2..];
    let mut fields = after.split(' ').skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    // Clock ticks are USER_HZ, 100 per second in Linux's user-space ABI on every
    // architecture.
    Some((rss_kib * 1024, (utime + stime) as f64 / 100.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_offence_label_is_counted_from_zero() {
        let mut registry = Registry::default();
        let m = NodeMetrics::register(&mut registry);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        for offence in crate::core::Offence::LABELS {
            assert!(text.contains(&format!("bans_total{{offence=\"{offence}\"}} 0")), "{offence}");
        }
        assert!(text.contains("build_info{version=\""), "{text}");
        drop(m);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn this_process_has_resident_memory_and_has_used_cpu() {
        let (rss, _) = process_stats().unwrap();
        let spin = std::time::Instant::now();
        let mut x = 0u64;
        while spin.elapsed() < std::time::Duration::from_millis(30) {
            x = std::hint::black_box(x.wrapping_add(1));
        }
        let (_, cpu) = process_stats().unwrap();
        assert!(rss > 1 << 20 && cpu > 0.0, "{rss} B, {cpu} s");
    }
}
