//! In-process nodes on 127.0.0.1 with ephemeral ports, and waiting with deadlines.

use std::future::Future;
use std::process::Command;
use std::time::{Duration, Instant};

use minichain::consensus::Network;
use minichain::mempool::MempoolConfig;
use minichain::node::{NodeConfig, NodeHandle, start};
use minichain::primitives::{COIN, OutPoint, Transaction, TxOut};
use minichain::testkit::{key, pubkey, spend};

/// A node and the directory it keeps its data in.
pub struct TestNode {
    pub handle: NodeHandle,
    pub dir: tempfile::TempDir,
}

pub fn config(dir: &std::path::Path, bootstrap: Vec<libp2p::Multiaddr>) -> NodeConfig {
    NodeConfig {
        network: Network::Regtest,
        data_dir: dir.to_path_buf(),
        listen: vec!["/ip4/127.0.0.1/tcp/0".parse().unwrap()],
        bootstrap,
        external: vec![],
        mine_threads: 0,
        payout: pubkey(&key(1)),
        ban_duration: Duration::from_secs(3600),
        max_inbound: minichain::net::inbound::evict::MAX_INBOUND,
        ban_kept_peers: false,
        compact_blocks: true,
        mempool: MempoolConfig::default(),
        assume_valid: None,
        snapshot: None,
    }
}

/// Starts a regtest node bootstrapped from `bootstrap`.
pub async fn spawn(bootstrap: Vec<libp2p::Multiaddr>) -> TestNode {
    if std::env::var_os("RUST_LOG").is_some() {
        minichain::logging::init(false, minichain::logging::LogFormat::Text, None);
    }
    let dir = tempfile::tempdir().unwrap();
    let handle = start(config(dir.path(), bootstrap)).await.unwrap();
    TestNode { handle, dir }
}

impl TestNode {
    /// This node's dialable address.
    pub fn addr(&self) -> libp2p::Multiaddr {
        self.handle.listen_addrs()[0].clone()
    }

    pub fn height(&self) -> u32 {
        self.handle.status().height
    }

    pub fn tip(&self) -> String {
        self.handle.status().tip
    }
}

/// Polls `check` every 20 ms until it holds; panics with `what` after `limit`.
pub async fn wait_until(what: &str, limit: Duration, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !check() {
        assert!(Instant::now() < deadline, "timed out after {limit:?} waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// As [`wait_until`] with an async check.
pub async fn wait_until_async<F: Future<Output = bool>>(
    what: &str,
    limit: Duration,
    mut check: impl FnMut() -> F,
) {
    let deadline = Instant::now() + limit;
    while !check().await {
        assert!(Instant::now() < deadline, "timed out after {limit:?} waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The coinbase of block `height` mined by a test node (which pays `key(1)` the subsidy,
/// no fees, extra nonce 0: exactly reproducible).
pub fn coinbase_of(height: u32) -> (OutPoint, TxOut) {
    let out = TxOut { value: 50 * COIN, pubkey: pubkey(&key(1)) };
    let tx = Transaction::coinbase(height, vec![out], 0);
    (OutPoint { txid: tx.txid(), vout: 0 }, out)
}

/// A transaction spending the coinbase of `height` to `key(seed)` with a fee.
pub fn pay_from_coinbase(height: u32, seed: u64) -> Transaction {
    let coin = coinbase_of(height);
    let out = TxOut { value: coin.1.value - 10_000, pubkey: pubkey(&key(seed)) };
    spend(&[coin], vec![out], &[&key(1)])
}

/// `minichain node` on regtest with ephemeral P2P and API ports in `dir`: the base command
/// of the tests that run real node processes.
pub fn node_process(dir: &std::path::Path) -> std::process::Command {
    node_process_on("regtest", dir)
}

/// [`node_process`] on `network`.
pub fn node_process_on(network: &str, dir: &std::path::Path) -> std::process::Command {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_minichain"));
    cmd.args([
        "node",
        "--network",
        network,
        "--listen",
        "/ip4/127.0.0.1/tcp/0",
        "--rpc",
        "127.0.0.1:0",
        "--data-dir",
    ])
    .arg(dir)
    .env_remove("RUST_LOG");
    cmd
}

/// A node process with JSON logs and its log lines as they come; killed when dropped.
pub struct LoggingNode {
    /// The process.
    pub child: std::process::Child,
    /// Its JSON log lines as they come.
    pub log: std::sync::mpsc::Receiver<serde_json::Value>,
}

impl Drop for LoggingNode {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `node` (a [`crate::harness::node_process`]) with JSON logs read line by line.
pub fn logging_node(node: &mut Command) -> LoggingNode {
    use std::io::{BufRead, BufReader};
    let mut child = node
        .args(["--log-format", "json"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, log) = std::sync::mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Ok(v) = serde_json::from_str(&line) {
                let _ = tx.send(v);
            }
        }
    });
    LoggingNode { child, log }
}

/// The first log line of `node` whose message starts with `prefix`, within a minute.
pub fn log_line(node: &LoggingNode, prefix: &str) -> serde_json::Value {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let v = node
            .log
            .recv_timeout(deadline.saturating_duration_since(std::time::Instant::now()))
            .unwrap_or_else(|_| panic!("no log line '{prefix}…' within a minute"));
        if v["message"].as_str().is_some_and(|m| m.starts_with(prefix)) {
            return v;
        }
    }
}

/// Every log line of `node` up to and including the first whose message starts with
/// `prefix`, within a minute.
pub fn log_lines_until(node: &LoggingNode, prefix: &str) -> Vec<serde_json::Value> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let mut lines = Vec::new();
    loop {
        let v = node
            .log
            .recv_timeout(deadline.saturating_duration_since(std::time::Instant::now()))
            .unwrap_or_else(|_| panic!("no log line '{prefix}…' within a minute"));
        let done = v["message"].as_str().is_some_and(|m| m.starts_with(prefix));
        lines.push(v);
        if done {
            return lines;
        }
    }
}

/// The first log line for each of `prefixes`, in whatever order they come, within a minute.
pub fn log_lines_of(node: &LoggingNode, prefixes: &[&str]) -> Vec<serde_json::Value> {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut found: Vec<Option<serde_json::Value>> = vec![None; prefixes.len()];
    while found.iter().any(Option::is_none) {
        let v = node
            .log
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .unwrap_or_else(|_| panic!("not all of {prefixes:?} logged within a minute"));
        let message = v["message"].as_str().unwrap_or_default().to_owned();
        if let Some(i) = prefixes.iter().position(|p| message.starts_with(p)) {
            found[i].get_or_insert(v);
        }
    }
    found.into_iter().flatten().collect()
}

/// A node process's P2P address (with `/p2p/<id>`) and HTTP API address, from its log.
pub fn addrs_of(node: &LoggingNode) -> (String, String) {
    let lines = log_lines_of(node, &["listening", "HTTP API listening"]);
    let addr = |v: &serde_json::Value| v["addr"].as_str().unwrap_or_default().to_owned();
    (addr(&lines[0]), addr(&lines[1]))
}

/// A regtest chain of `blocks` blocks (coinbases only, block `i` paying `[i as u8; 32]`)
/// in the database at `path`; returns its tip. The blocks are reproducible: the same call
/// elsewhere makes the same chain.
pub fn chain_at(path: &std::path::Path, blocks: u32) -> minichain::primitives::BlockHash {
    let store = minichain::db::Store::open(path, Network::Regtest).unwrap();
    let mut chain = minichain::chain::ChainState::open(store).unwrap();
    for i in 0..blocks {
        minichain::testkit::extend(&mut chain, vec![], [i as u8; 32]);
    }
    chain.tip()
}

/// [`chain_at`] as a data dir's `chain.redb`.
pub fn chain_in(dir: &std::path::Path, blocks: u32) -> minichain::primitives::BlockHash {
    chain_at(&dir.join("chain.redb"), blocks)
}
