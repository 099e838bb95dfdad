//! Compact block relay between real node processes: a block of transactions both nodes
//! hold crosses as a compact block and is rebuilt from the mempool; a node that does not
//! speak compact blocks (`--no-compact-blocks`) still gets blocks whole.

use std::time::Duration;

use minichain::primitives::encode::serialize;
use minichain::testkit::{extend, key, pubkey};
use serde_json::{Value, json};

use crate::harness::{LoggingNode, addrs_of, logging_node, node_process, pay_from_coinbase};

/// 110 regtest blocks paying `key(1)` in `dir`'s database (the same chain everywhere, so
/// the first coinbases are spendable by [`pay_from_coinbase`]).
fn funded_chain_in(dir: &std::path::Path) {
    let store =
        minichain::db::Store::open(&dir.join("chain.redb"), minichain::consensus::Network::Regtest)
            .unwrap();
    let mut chain = minichain::chain::ChainState::open(store).unwrap();
    for _ in 0..110 {
        extend(&mut chain, vec![], pubkey(&key(1)));
    }
}

struct Proc {
    _node: LoggingNode,
    api: String,
    p2p: String,
    dir: tempfile::TempDir,
}

fn start(extra: &[&str]) -> Proc {
    let dir = tempfile::tempdir().unwrap();
    funded_chain_in(dir.path());
    let node = logging_node(node_process(dir.path()).args(extra));
    let (p2p, api) = addrs_of(&node);
    Proc { _node: node, api: format!("http://{api}"), p2p, dir }
}

async fn get(http: &reqwest::Client, url: String) -> Option<String> {
    http.get(url).send().await.ok()?.text().await.ok()
}

async fn status(http: &reqwest::Client, node: &Proc) -> Value {
    let body = get(http, format!("{}/status", node.api)).await.unwrap_or_default();
    serde_json::from_str(&body).unwrap_or(Value::Null)
}

/// The value of the metric line that starts with `series` (name and labels), 0 if absent.
async fn metric(http: &reqwest::Client, node: &Proc, series: &str) -> f64 {
    let text = get(http, format!("{}/metrics", node.api)).await.unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix(series).and_then(|v| v.trim().parse().ok()))
        .unwrap_or(0.0)
}

async fn until(what: &str, http: &reqwest::Client, node: &Proc, check: impl Fn(&Value) -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !check(&status(http, node).await) {
        assert!(std::time::Instant::now() < deadline, "{what}: not within a minute");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn post(http: &reqwest::Client, node: &Proc, path: &str, body: Value) -> Value {
    let token = minichain::rpc::auth::read_cookie(node.dir.path()).unwrap();
    let r = http.post(format!("{}{path}", node.api)).bearer_auth(token).json(&body);
    let r = r.send().await.unwrap();
    assert!(r.status().is_success(), "{path}: {}", r.status());
    r.json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_node_processes_relay_a_block_of_transactions_they_hold_as_a_compact_block() {
    let http = reqwest::Client::new();
    let a = start(&[]);
    let b = start(&["--bootstrap", &a.p2p]);
    until("A and B connected", &http, &a, |s| s["peer_count"] == 1).await;
    let txs: Vec<_> = (1..=10).map(|h| pay_from_coinbase(h, 50 + u64::from(h))).collect();
    for tx in &txs {
        post(&http, &a, "/tx", json!({ "hex": hex::encode(serialize(tx)) })).await;
    }
    until("B's mempool holds them", &http, &b, |s| s["mempool_size"] == 10).await;
    post(&http, &a, "/mine", json!({ "blocks": 1 })).await;
    until("the block at B", &http, &b, |s| s["height"] == 111 && s["mempool_size"] == 0).await;
    let rebuilt = r#"minichain_compact_blocks_total{outcome="rebuilt"}"#;
    assert_eq!(metric(&http, &b, rebuilt).await, 1.0, "rebuilt from the mempool");
    let fallback = r#"minichain_compact_blocks_total{outcome="fallback"}"#;
    assert_eq!(metric(&http, &b, fallback).await, 0.0);
    let received =
        |p: &str| format!(r#"minichain_p2p_bytes_total{{direction="received",protocol="{p}"}}"#);
    // The header came by gossip, the compact form by the sync protocol, asked of A.
    let header = metric(&http, &b, &received("gossip_header")).await;
    assert_eq!(header, 80.0, "one header announced");
    let compact = metric(&http, &b, &received("sync_compact")).await;
    let txs_bytes: usize = txs.iter().map(|t| serialize(t).len()).sum();
    assert!(
        compact > 0.0 && compact < txs_bytes as f64 / 3.0,
        "{compact} B for {txs_bytes} B of transactions"
    );
    let sent = r#"minichain_p2p_bytes_total{direction="sent",protocol="sync_compact"}"#;
    assert!(metric(&http, &a, sent).await >= compact, "A counts what it sent");
    assert_eq!(metric(&http, &b, &received("gossip_block")).await, 0.0, "no whole block gossiped");
    let judged = r#"minichain_gossip_messages_total{topic="header",verdict="accept"}"#;
    assert_eq!(metric(&http, &b, judged).await, 1.0, "the header's verdict is counted");

    // A node that does not speak compact blocks gets the next block whole.
    let old = start(&["--bootstrap", &a.p2p, "--no-compact-blocks"]);
    until("the older node caught up", &http, &old, |s| s["height"] == 111 && s["peer_count"] == 1)
        .await;
    post(&http, &a, "/mine", json!({ "blocks": 1 })).await;
    until("the next block at the older node", &http, &old, |s| s["height"] == 112).await;
    until("the next block at B", &http, &b, |s| s["height"] == 112).await;
    assert!(metric(&http, &old, &received("gossip_block")).await > 0.0, "it came by gossip, whole");
    assert_eq!(metric(&http, &old, &received("gossip_header")).await, 0.0);
    assert_eq!(metric(&http, &old, &received("sync_compact")).await, 0.0);
}
