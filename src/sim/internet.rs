//! Block relay at internet scale: many nodes on links of 50-150 ms and a set bandwidth,
//! mempools filled by a steady flow of payments, and blocks of thousands of
//! transactions, relayed compact or whole. [`run`] reports when blocks arrived across the
//! nodes and what their relay cost each node; `scripts/sim-net.sh` prints the table for
//! 1,000 nodes (the `#[ignore]`d report below), and a small network runs in the suite.
//!
//! The relay is the node's own: every node runs the real core, gossip goes over a mesh
//! of degree ~6 (a ring plus links each node dials at random), each message is forwarded
//! only after the node's own validation, compact blocks are rebuilt from the mempool and
//! what is missing is asked of the announcer, with IDONTWANT on (see [`super::wire`]).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::*;
use crate::core::ReplyTo;
use crate::primitives::{COIN, Transaction, TxOut, Txid};
use crate::testkit::{CLOCK, coinbase_input, extend, input_of, key, pubkey, regtest_chain, spend};

/// A network and a transaction flow to relay blocks over.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// Nodes.
    pub nodes: usize,
    /// Links each node dials at random, besides its two ring neighbours (degree ~2 + 2×).
    pub dial: usize,
    /// Nodes that mine (a block every interval, from one of them at random).
    pub miners: usize,
    /// Transactions per block interval (Poisson arrivals, each at a random node).
    pub txs_per_block: usize,
    /// Blocks measured.
    pub blocks: usize,
    /// Time between blocks.
    pub block_interval: Duration,
    /// One-way link latency range (each link keeps one).
    pub latency_ms: (u64, u64),
    /// Every node's uplink and downlink.
    pub bandwidth_mbit: u64,
    /// Whether the nodes speak compact blocks.
    pub compact: bool,
    /// Whether gossipsub's IDONTWANT is on.
    pub idontwant: bool,
    /// Time a node takes to validate a block before forwarding it, per transaction.
    pub validation_per_tx: Duration,
}

impl Scenario {
    /// The network: 1,000 nodes, 50-150 ms, 20 Mbit/s, blocks of ~2,000
    /// transactions every 10 minutes.
    pub fn internet(compact: bool) -> Self {
        Self {
            nodes: 1_000,
            dial: 2,
            miners: 20,
            txs_per_block: 2_000,
            blocks: 1,
            block_interval: Duration::from_secs(600),
            latency_ms: (50, 150),
            bandwidth_mbit: 20,
            compact,
            idontwant: true,
            validation_per_tx: Duration::ZERO,
        }
    }
}

/// What a run measured.
#[derive(Debug, Clone)]
pub struct Report {
    /// Blocks measured.
    pub blocks: usize,
    /// Their transactions, on average (coinbase included).
    pub txs_per_block: f64,
    /// Their size, on average.
    pub block_bytes: f64,
    /// Delay from a block's mining to its arrival, across every node but its miner and
    /// every block: 50th, 90th and 99th percentiles, and the slowest.
    pub arrival_ms: [u64; 4],
    /// (node, block) pairs that never saw the block.
    pub missed: usize,
    /// Block relay bytes (whole and compact blocks, IDONTWANT, block and missing
    /// transaction requests and answers) per node per block.
    pub relay_bytes_per_node: f64,
    /// Transaction gossip bytes per node over one block interval (the first).
    pub tx_bytes_per_node: f64,
    /// Compact blocks rebuilt from the mempool alone, after a request, fetched whole.
    pub compact: (u64, u64, u64),
    /// Virtual time simulated (the first interval, which fills the mempools, included).
    pub virtual_secs: f64,
    /// Wall time it took (the nodes' set-up left out).
    pub wall_secs: f64,
    /// The simulator's resident memory at the end (MiB).
    pub rss_mib: u64,
}

/// This process's resident memory (MiB), from /proc (0 where there is none).
fn rss_mib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kb = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok());
    kb.unwrap_or(0) / 1024
}

impl Report {
    /// Wall seconds per virtual hour.
    pub fn wall_per_virtual_hour(&self) -> f64 {
        self.wall_secs * 3600.0 / self.virtual_secs
    }
}

/// Coins of the payment flow: each payment spends one confirmed coin and makes two (the
/// payment and the change), which can be spent once a block confirms them.
struct Flow {
    confirmed: Vec<(OutPoint, TxOut)>,
    unconfirmed: BTreeMap<Txid, Vec<(OutPoint, TxOut)>>,
    key: secp256k1::Keypair,
}

impl Flow {
    fn payment(&mut self, rng: &mut Rng) -> Option<Transaction> {
        if self.confirmed.is_empty() {
            return None;
        }
        let at = rng.below(self.confirmed.len() as u64) as usize;
        let coin = self.confirmed.swap_remove(at);
        let half = coin.1.value / 2;
        let to = pubkey(&self.key);
        let outs =
            vec![TxOut { value: half, pubkey: to }, TxOut { value: half - 1_000, pubkey: to }];
        let tx = spend(&[coin], outs, &[&self.key]);
        self.unconfirmed.insert(tx.txid(), vec![input_of(&tx, 0), input_of(&tx, 1)]);
        Some(tx)
    }

    fn confirm(&mut self, block: &Block) {
        for tx in &block.txs {
            if let Some(coins) = self.unconfirmed.remove(&tx.txid()) {
                self.confirmed.extend(coins);
            }
        }
    }
}

/// The chain every node starts on: mature coinbases split into `coins` outputs of the
/// flow's key.
fn funded_prefix(coins: usize) -> (Vec<Block>, Flow) {
    let splits = coins.div_ceil(2_000).max(1);
    let per_split = coins.div_ceil(splits);
    let alice = key(1);
    let mut chain = regtest_chain();
    let mut blocks: Vec<Block> =
        (0..splits).map(|_| extend(&mut chain, vec![], pubkey(&alice))).collect();
    let firsts = blocks.clone();
    blocks.extend((0..100).map(|_| extend(&mut chain, vec![], pubkey(&key(99)))));
    let flow_key = key(3);
    let mut txs = Vec::new();
    let mut confirmed = Vec::new();
    for first in &firsts {
        let each = (first.txs[0].outputs[0].value - COIN) / per_split as u64;
        let outs =
            (0..per_split).map(|_| TxOut { value: each, pubkey: pubkey(&flow_key) }).collect();
        let split = spend(&[coinbase_input(first)], outs, &[&alice]);
        confirmed.extend((0..per_split as u32).map(|v| input_of(&split, v)));
        txs.push(split);
    }
    blocks.push(extend(&mut chain, txs, pubkey(&key(99))));
    (blocks, Flow { confirmed, unconfirmed: BTreeMap::new(), key: flow_key })
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let at = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[at.min(sorted.len() - 1)]
}

/// How long the run goes on after the last block: far longer than any block took to
/// reach every node, short of another block interval.
const SETTLE: Duration = Duration::from_secs(60);

const RELAY_CLASSES: [&str; 6] =
    ["gossip_block", "gossip_header", "idontwant", "sync_blocks", "sync_compact", "sync_blocktxs"];

/// The scenario's nodes, each on `prefix`, linked in a ring plus random links.
fn network(scenario: &Scenario, prefix: &[Block], seed: u64) -> (Sim, Vec<usize>) {
    let cfg = SimConfig {
        latency_ms: scenario.latency_ms,
        bandwidth: Some(Bandwidth::mbit(scenario.bandwidth_mbit)),
        fixed_latency: true,
        idontwant: scenario.idontwant,
        validation_per_tx: scenario.validation_per_tx,
        ..SimConfig::default()
    };
    let mut sim = Sim::new(seed, Time::from_secs(CLOCK), cfg);
    let nodes: Vec<usize> = (0..scenario.nodes)
        .map(|i| {
            let store = Store::in_memory(Network::Regtest).expect("store");
            let mut chain = ChainState::open(store.clone()).expect("chain");
            for b in prefix {
                chain.accept_block(b.clone(), CLOCK).expect("prefix block");
            }
            drop(chain);
            let miner = i < scenario.miners;
            let index = sim.add_node(store, miner.then_some(1.0));
            if miner {
                sim.set_mining(index, false);
            }
            if !scenario.compact {
                sim.set_compact(index, false);
            }
            index
        })
        .collect();
    let n = nodes.len();
    for i in 0..n {
        sim.connect(nodes[i], nodes[(i + 1) % n]);
        for _ in 0..scenario.dial {
            let other = sim.rng.below(n as u64) as usize;
            sim.connect(nodes[i], nodes[other]);
        }
    }
    (sim, nodes)
}

/// Runs `scenario` on `seed`.
pub fn run(scenario: &Scenario, seed: u64) -> Report {
    let (prefix, mut flow) = funded_prefix(scenario.txs_per_block * 4);
    let (mut sim, nodes) = network(scenario, &prefix, seed);
    let n = nodes.len();
    sim.run_for(Duration::from_secs(5));
    eprintln!("[sim-net] {n} nodes up: {} MiB resident", rss_mib());
    // Timed from here: the nodes' set-up (each imports the funded chain) is not the run.
    let (wall, virtual_start) = (Instant::now(), sim.now);
    let rate = scenario.txs_per_block as f64 / scenario.block_interval.as_secs_f64();
    let mut next_tx = sim.now + Duration::from_secs_f64(sim.rng.exponential(1.0 / rate));
    let mut bytes_at_start = BTreeMap::new();
    let tx_bytes_before = sim.bytes_sent().get("gossip_tx").copied().unwrap_or(0);
    let mut tx_bytes_interval = 0;
    let mut mined = Vec::new();
    let observer = nodes[n - 1];
    let mut confirmed_height = sim.node(observer).height();
    // Payments flow all along; a block ends every interval (the first fills the
    // mempools), and the run ends once the last block had time to reach everyone.
    for round in 0..=scenario.blocks {
        let last = round == scenario.blocks;
        let until = sim.now + if last { SETTLE } else { scenario.block_interval };
        while next_tx < until {
            sim.run_until(next_tx);
            if let Some(tx) = flow.payment(&mut sim.rng) {
                let at = nodes[sim.rng.below(n as u64) as usize];
                sim.command(at, Command::SubmitTx { tx, reply: ReplyTo::ignore() });
            }
            next_tx = next_tx + Duration::from_secs_f64(sim.rng.exponential(1.0 / rate));
        }
        sim.run_until(until);
        eprintln!("[sim-net] interval {round} done: {} MiB resident", rss_mib());
        if last {
            break;
        }
        for block in sim.active_chain(observer).iter().skip(confirmed_height as usize + 1) {
            flow.confirm(block);
        }
        confirmed_height = sim.node(observer).height();
        if round == 0 {
            bytes_at_start = sim.bytes_sent().clone();
            tx_bytes_interval =
                bytes_at_start.get("gossip_tx").copied().unwrap_or(0) - tx_bytes_before;
        }
        let miner = nodes[sim.rng.below(scenario.miners as u64) as usize];
        if let Some(hash) = sim.mine_now(miner) {
            mined.push((hash, miner));
        }
    }
    let chain = sim.active_chain(observer);
    let by_hash: BTreeMap<BlockHash, &Block> = chain.iter().map(|b| (b.block_hash(), b)).collect();
    let mut delays = Vec::new();
    let mut missed = 0;
    let (mut txs, mut size) = (0usize, 0usize);
    for (hash, miner) in &mined {
        if let Some(block) = by_hash.get(hash) {
            txs += block.txs.len();
            size += crate::primitives::encode::serialize(*block).len();
        }
        let Some((Some(at), arrivals)) = sim.blocks_seen.get(&hash.to_string()) else { continue };
        let seen: BTreeMap<usize, Time> = arrivals.iter().copied().collect();
        for node in nodes.iter().filter(|i| *i != miner) {
            match seen.get(node) {
                Some(t) => delays.push(t.since(*at).as_millis() as u64),
                None => missed += 1,
            }
        }
    }
    delays.sort_unstable();
    let sent = |class: &str, from: &BTreeMap<&'static str, u64>| {
        sim.bytes_sent().get(class).copied().unwrap_or(0) - from.get(class).copied().unwrap_or(0)
    };
    let blocks = mined.len().max(1);
    let per_node_block = (n * blocks) as f64;
    let relay: u64 = RELAY_CLASSES.iter().map(|c| sent(c, &bytes_at_start)).sum();
    let mut compact = (0, 0, 0);
    for &i in &nodes {
        if let Some(core) = sim.node(i).core() {
            let s = core.snapshot().compact;
            compact = (compact.0 + s.rebuilt, compact.1 + s.requested, compact.2 + s.fallback);
        }
    }
    Report {
        blocks: mined.len(),
        txs_per_block: txs as f64 / blocks as f64,
        block_bytes: size as f64 / blocks as f64,
        arrival_ms: [
            percentile(&delays, 0.5),
            percentile(&delays, 0.9),
            percentile(&delays, 0.99),
            delays.last().copied().unwrap_or(0),
        ],
        missed,
        relay_bytes_per_node: relay as f64 / per_node_block,
        tx_bytes_per_node: tx_bytes_interval as f64 / n as f64,
        compact,
        virtual_secs: sim.now.since(virtual_start).as_secs_f64(),
        wall_secs: wall.elapsed().as_secs_f64(),
        rss_mib: rss_mib(),
    }
}

/// The table's header and one row per report.
pub fn table(rows: &[(&str, &Report)]) -> String {
    let mut out = String::from(
        "| relay | blocks | txs/block | block KB | arrival p50 / p90 / p99 / max (ms) | missed | relay KB/node/block | relay / block size | tx KB/node/interval | rebuilt / requested / fetched whole | wall s per virtual hour | simulator RSS (MiB) |\n\
         | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n",
    );
    for (name, r) in rows {
        let [p50, p90, p99, max] = r.arrival_ms;
        let share = r.relay_bytes_per_node / r.block_bytes.max(1.0);
        out.push_str(&format!(
            "| {name} | {} | {:.0} | {:.0} | {p50} / {p90} / {p99} / {max} | {} | {:.1} | {share:.3} | {:.1} | {} / {} / {} | {:.0} | {} |\n",
            r.blocks,
            r.txs_per_block,
            r.block_bytes / 1e3,
            r.missed,
            r.relay_bytes_per_node / 1e3,
            r.tx_bytes_per_node / 1e3,
            r.compact.0,
            r.compact.1,
            r.compact.2,
            r.wall_per_virtual_hour(),
            r.rss_mib,
        ));
    }
    out
}

fn env(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

#[test]
fn sim_compact_relay_across_a_small_internet_costs_a_twentieth_of_the_block() {
    let seed = std::env::var("MINICHAIN_SIM_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(1);
    let small = |compact| Scenario {
        nodes: 40,
        miners: 4,
        txs_per_block: 400,
        blocks: 2,
        block_interval: Duration::from_secs(120),
        ..Scenario::internet(compact)
    };
    let whole = run(&small(false), seed);
    let compact = run(&small(true), seed);
    println!("{}", table(&[("whole", &whole), ("compact", &compact)]));
    for r in [&whole, &compact] {
        assert_eq!(r.blocks, 2, "seed {seed}");
        assert_eq!(r.missed, 0, "seed {seed}: every node got every block");
        assert!(r.txs_per_block > 300.0, "seed {seed}: blocks of {} transactions", r.txs_per_block);
    }
    // Each node receives one compact form per block (and a header from each neighbour).
    assert!(
        compact.relay_bytes_per_node * 20.0 < compact.block_bytes,
        "seed {seed}: compact {:.0} B per node per block of {:.0} B (whole: {:.0} B)",
        compact.relay_bytes_per_node,
        compact.block_bytes,
        whole.relay_bytes_per_node
    );
    // The compact form is asked after the header: at most a round trip of the longest
    // link later than a whole block pushed, on a network this small (on a large one
    // compact relay is far sooner: docs/benchmarks.md).
    let round_trip = 2 * small(true).latency_ms.1;
    assert!(
        compact.arrival_ms[2] < whole.arrival_ms[2] + round_trip,
        "seed {seed}: p99 {:?} vs {:?}",
        compact.arrival_ms,
        whole.arrival_ms
    );
    let (rebuilt, requested, fallback) = compact.compact;
    assert!(
        rebuilt >= 9 * (rebuilt + requested + fallback) / 10,
        "seed {seed}: {:?}",
        compact.compact
    );
    assert_eq!(whole.compact, (0, 0, 0));
}

/// The 1,000-node table (`scripts/sim-net.sh`): `MINICHAIN_SIM_NODES`,
/// `MINICHAIN_SIM_TXS`, `MINICHAIN_SIM_BLOCKS` change the network.
#[test]
#[ignore = "minutes of CPU: run by scripts/sim-net.sh"]
fn sim_internet_scale_report() {
    let seed = std::env::var("MINICHAIN_SIM_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(1);
    let scenario = |compact| Scenario {
        nodes: env("MINICHAIN_SIM_NODES", 1_000),
        txs_per_block: env("MINICHAIN_SIM_TXS", 2_000),
        blocks: env("MINICHAIN_SIM_BLOCKS", 1),
        validation_per_tx: Duration::from_micros(env("MINICHAIN_SIM_VALIDATION_US", 0) as u64),
        ..Scenario::internet(compact)
    };
    let mut rows = Vec::new();
    let mut runs = vec![("whole", scenario(false)), ("compact", scenario(true))];
    if std::env::var_os("MINICHAIN_SIM_NO_IDONTWANT").is_some() {
        runs.push(("compact, no IDONTWANT", Scenario { idontwant: false, ..scenario(true) }));
    }
    for (name, scenario) in runs {
        let report = run(&scenario, seed);
        eprintln!("[sim-net] {name}: {report:?}");
        rows.push((name, report));
    }
    let refs: Vec<(&str, &Report)> = rows.iter().map(|(n, r)| (*n, r)).collect();
    println!("\n{}", table(&refs));
}
