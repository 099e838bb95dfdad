//! The HTTP API, endpoint by endpoint, with its errors and authentication.

use std::time::Duration;

use minichain::node::start;
use minichain::primitives::address::encode_address;
use minichain::primitives::encode::serialize;
use minichain::rpc::auth::read_cookie;
use minichain::rpc::{RpcServer, serve};
use minichain::testkit::{key, pubkey};
use serde_json::{Value, json};

use crate::harness::{TestNode, coinbase_of, config, pay_from_coinbase};

struct Api {
    node: TestNode,
    base: String,
    http: reqwest::Client,
    token: String,
    _server: RpcServer,
}

async fn api_node() -> Api {
    let dir = tempfile::tempdir().unwrap();
    let handle = start(config(dir.path(), vec![])).await.unwrap();
    let server = serve("127.0.0.1:0".parse().unwrap(), handle.clone(), dir.path()).await.unwrap();
    let base = format!("http://{}", server.addr());
    let token = read_cookie(dir.path()).unwrap();
    Api {
        node: TestNode { handle, dir },
        base,
        http: reqwest::Client::new(),
        token,
        _server: server,
    }
}

impl Api {
    async fn get(&self, path: &str) -> (u16, Value) {
        let r = self.http.get(format!("{}{path}", self.base)).send().await.unwrap();
        json_of(r).await
    }

    async fn post(&self, path: &str, body: Value, token: Option<&str>) -> (u16, Value) {
        let mut req = self.http.post(format!("{}{path}", self.base)).json(&body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let r = req.send().await.unwrap();
        json_of(r).await
    }

    async fn mine(&self, blocks: u32) -> Vec<String> {
        let (code, v) =
            self.post("/mine", json!({ "blocks": blocks }), Some(&self.token.clone())).await;
        assert_eq!(code, 200, "{v}");
        v["blocks"].as_array().unwrap().iter().map(|h| h.as_str().unwrap().to_owned()).collect()
    }
}

/// The status and the JSON body: every answer of the API, errors included, is JSON.
async fn json_of(r: reqwest::Response) -> (u16, Value) {
    let status = r.status().as_u16();
    let body = r.bytes().await.unwrap();
    let value = serde_json::from_slice(&body).unwrap_or_else(|e| {
        panic!("HTTP {status} answered non-JSON ({e}): {}", String::from_utf8_lossy(&body))
    });
    (status, value)
}

fn error_of(v: &Value) -> &str {
    v["error"].as_str().unwrap_or_else(|| panic!("no error message in {v}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_changing_calls_need_the_cookie_token_and_reads_do_not() {
    let api = api_node().await;
    let cookie = api.node.dir.path().join(".cookie");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&cookie).unwrap().permissions().mode() & 0o777, 0o600);
    }
    let (code, v) = api.post("/mine", json!({ "blocks": 1 }), None).await;
    assert_eq!(code, 401);
    assert!(error_of(&v).contains(".cookie"));
    let (code, _) = api.post("/mine", json!({ "blocks": 1 }), Some("0000")).await;
    assert_eq!(code, 401);
    let (code, _) = api.post("/tx", json!({ "hex": "00" }), None).await;
    assert_eq!(code, 401);
    let (code, _) = api.post("/stop", json!({}), None).await;
    assert_eq!(code, 401, "anyone could stop the node");
    assert_eq!(api.get("/status").await.0, 200);
    assert_eq!(api.mine(2).await.len(), 2);
    // What `minichain node` does on Ctrl-C: stop serving, then stop the node.
    let Api { node, _server: server, .. } = api;
    server.shutdown().await;
    node.handle.shutdown().await;
    assert!(!cookie.exists(), "the cookie is removed on clean shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_blocks_and_mining_endpoints() {
    let api = api_node().await;
    let hashes = api.mine(3).await;
    let (code, status) = api.get("/status").await;
    assert_eq!(code, 200);
    assert_eq!(status["network"], "regtest");
    assert_eq!(status["height"], 3);
    assert_eq!(status["tip"], hashes[2]);
    for field in ["peer_id", "listen_addrs", "peer_count", "mempool_size", "syncing", "hashrate"] {
        assert!(status.get(field).is_some(), "status lacks {field}");
    }
    let (code, tip) = api.get("/blocks/tip").await;
    assert_eq!((code, tip["hash"].as_str()), (200, Some(hashes[2].as_str())));
    let (_, by_height) = api.get("/blocks/1").await;
    assert_eq!(by_height["hash"], hashes[0]);
    assert_eq!(by_height["confirmations"], 3);
    assert_eq!(by_height["tx_count"], 1);
    let (_, by_hash) = api.get(&format!("/blocks/{}", hashes[1])).await;
    assert_eq!(by_hash["height"], 2);
    assert_eq!(by_hash["prev_hash"], hashes[0]);
    assert_eq!(api.get("/blocks/99999").await.0, 404);
    let (code, v) = api.get("/blocks/not-a-hash").await;
    assert_eq!(code, 400);
    assert!(error_of(&v).contains("neither a height nor"));
    assert_eq!(api.get(&format!("/blocks/{}", "ab".repeat(32))).await.0, 404);
    // Bad /mine bodies.
    let token = api.token.clone();
    assert_eq!(api.post("/mine", json!({ "blocks": 0 }), Some(&token)).await.0, 400);
    assert_eq!(api.post("/mine", json!({ "blocks": "x" }), Some(&token)).await.0, 422);
    assert_eq!(api.post("/mine", json!({ "blocks": 1, "extra": 1 }), Some(&token)).await.0, 422);
    let (code, v) = api.post("/mine", json!({ "blocks": 1, "to": "mc1qqq" }), Some(&token)).await;
    assert_eq!(code, 400, "{v}");
    let r = api
        .http
        .post(format!("{}/mine", api.base))
        .bearer_auth(&token)
        .body("{oops")
        .header("content-type", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    let (code, v) = api.get("/no/such/thing").await;
    assert_eq!(code, 404);
    assert!(error_of(&v).contains("no such endpoint"));
    let huge = "a".repeat(3 * 1024 * 1024);
    let r = api
        .http
        .post(format!("{}/tx", api.base))
        .bearer_auth(&token)
        .json(&json!({ "hex": huge }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 413, "bodies are capped");
    api.node.handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transactions_balances_utxos_mempool_and_double_spends() {
    let api = api_node().await;
    let token = api.token.clone();
    api.mine(101).await;
    let alice = encode_address("mcrt", &pubkey(&key(1)));
    let bob = encode_address("mcrt", &pubkey(&key(7)));
    let (code, bal) = api.get(&format!("/address/{alice}/balance")).await;
    assert_eq!(code, 200);
    assert_eq!(bal["confirmed"], 101 * 50 * 100_000_000u64);
    // At tip 101 the coinbases of blocks 1 and 2 can be spent in block 102 (maturity 100).
    assert_eq!(bal["immature"], 99 * 50 * 100_000_000u64);
    assert_eq!(bal["unconfirmed"], 0);
    let (_, utxos) = api.get(&format!("/address/{alice}/utxos")).await;
    let list = utxos["utxos"].as_array().unwrap();
    assert_eq!(list.len(), 101);
    assert_eq!(list.iter().filter(|u| u["spendable"] == true).count(), 2);
    let (code, v) = api.get(&format!("/address/{}/balance", encode_address("mc", &[1; 32]))).await;
    assert_eq!(code, 400);
    assert!(error_of(&v).contains("expected 'mcrt'"));

    // Confirmed transaction lookup.
    let coinbase_txid = coinbase_of(1).0.txid.to_string();
    let (code, t) = api.get(&format!("/tx/{coinbase_txid}")).await;
    assert_eq!(code, 200);
    assert_eq!(t["height"], 1);
    assert_eq!(t["confirmations"], 101);
    assert_eq!((t["coinbase"].as_bool(), &t["fee"]), (Some(true), &Value::Null), "{t}");
    assert_eq!(t["prevouts"], json!([null]), "a coinbase spends nothing");
    assert_eq!(api.get(&format!("/tx/{}", "cd".repeat(32))).await.0, 404);
    assert_eq!(api.get("/tx/xyz").await.0, 400);

    // Submit, see it in the mempool and the balances, refuse the double spend.
    let tx = pay_from_coinbase(1, 7);
    let (code, v) =
        api.post("/tx", json!({ "hex": hex::encode(serialize(&tx)) }), Some(&token)).await;
    assert_eq!(code, 200, "{v}");
    let txid = v["txid"].as_str().unwrap().to_owned();
    let (_, t) = api.get(&format!("/tx/{txid}")).await;
    assert_eq!((t["in_mempool"].as_bool(), t["confirmations"].as_u64()), (Some(true), Some(0)));
    assert_eq!(t["fee"], 10_000);
    let spent = json!([{ "value": 50 * 100_000_000u64, "address": alice }]);
    assert_eq!((&t["prevouts"], t["coinbase"].as_bool()), (&spent, Some(false)), "{t}");
    let (_, pool) = api.get("/mempool").await;
    assert_eq!(pool["size"], 1);
    assert_eq!(pool["txs"][0]["txid"], txid);
    let (_, bob_bal) = api.get(&format!("/address/{bob}/balance")).await;
    assert_eq!(
        (bob_bal["confirmed"].as_u64(), bob_bal["unconfirmed"].as_i64()),
        (Some(0), Some(50 * 100_000_000 - 10_000))
    );
    let (_, alice_bal) = api.get(&format!("/address/{alice}/balance")).await;
    assert_eq!(alice_bal["unconfirmed"], -(50 * 100_000_000i64));

    let double = pay_from_coinbase(1, 8);
    let (code, v) =
        api.post("/tx", json!({ "hex": hex::encode(serialize(&double)) }), Some(&token)).await;
    assert_eq!(code, 409);
    assert!(error_of(&v).contains("already spent by mempool transaction"), "{v}");
    let mut forged = pay_from_coinbase(2, 8);
    forged.inputs[0].signature[0] ^= 1;
    let (code, v) =
        api.post("/tx", json!({ "hex": hex::encode(serialize(&forged)) }), Some(&token)).await;
    assert_eq!(code, 400);
    assert!(error_of(&v).contains("bad signature"), "{v}");
    let (code, v) = api.post("/tx", json!({ "hex": "zz" }), Some(&token)).await;
    assert_eq!(code, 400);
    assert!(error_of(&v).contains("not hex"));
    let (code, _) = api.post("/tx", json!({ "hex": "00ff" }), Some(&token)).await;
    assert_eq!(code, 400);

    // Mined: out of the mempool, confirmed for bob, double spend now against the chain.
    api.mine(1).await;
    let (_, t) = api.get(&format!("/tx/{txid}")).await;
    assert_eq!((t["in_mempool"].as_bool(), t["height"].as_u64()), (Some(false), Some(102)));
    // Once mined, the undo data still tells what it spent, and so its fee.
    assert_eq!((&t["prevouts"], &t["fee"]), (&spent, &json!(10_000)), "{t}");
    let (_, bob_bal) = api.get(&format!("/address/{bob}/balance")).await;
    assert_eq!(
        (bob_bal["confirmed"].as_u64(), bob_bal["unconfirmed"].as_i64()),
        (Some(50 * 100_000_000 - 10_000), Some(0))
    );
    let (code, v) =
        api.post("/tx", json!({ "hex": hex::encode(serialize(&double)) }), Some(&token)).await;
    assert_eq!(code, 409);
    assert!(error_of(&v).contains("missing or already spent"), "{v}");
    assert_eq!(api.get("/mempool").await.1["size"], 0);
    let (_, peers) = api.get("/peers").await;
    assert_eq!(peers, json!([]));
    api.node.handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_event_stream_reports_blocks_transactions_and_peers() {
    let api = api_node().await;
    let mut stream = api.http.get(format!("{}/events", api.base)).send().await.unwrap();
    assert_eq!(stream.status().as_u16(), 200);
    let hashes = api.mine(101).await;
    let (code, v) = api
        .post(
            "/tx",
            json!({ "hex": hex::encode(serialize(&pay_from_coinbase(1, 5))) }),
            Some(&api.token),
        )
        .await;
    assert_eq!(code, 200, "{v}");
    let txid = v["txid"].as_str().unwrap().to_owned();
    let mut seen = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !seen.contains(&hashes[0]) || !seen.contains(&txid) {
        let chunk = tokio::time::timeout_at(deadline, stream.chunk())
            .await
            .expect("event in time")
            .unwrap()
            .unwrap();
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(seen.contains("event: block"), "{seen}");
    assert!(seen.contains(&format!("\"hash\":\"{}\",\"height\":1", hashes[0])), "{seen}");
    assert!(
        seen.contains(&format!("event: tx\ndata: {{\"type\":\"tx\",\"txid\":\"{txid}\"}}")),
        "{seen}"
    );
    // A peer coming and going is told with the count left (the explorer's peer display).
    let peer = crate::harness::spawn(vec![api.node.addr()]).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let mut read_until = async |want: &str| {
        while !seen.contains(want) {
            let chunk = tokio::time::timeout_at(deadline, stream.chunk())
                .await
                .unwrap_or_else(|_| panic!("no {want} in time: {seen}"))
                .unwrap()
                .unwrap();
            seen.push_str(&String::from_utf8_lossy(&chunk));
        }
    };
    read_until("event: peer\ndata: {\"type\":\"peer\",\"connected\":true,\"peers\":1}").await;
    peer.handle.shutdown().await;
    read_until("event: peer\ndata: {\"type\":\"peer\",\"connected\":false,\"peers\":0}").await;
    api.node.handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bans_are_listed_with_their_reason_until_lifted() {
    let api = api_node().await;
    let (code, v) = api.get("/bans").await;
    assert_eq!((code, v), (200, json!([])));
    let peer = libp2p::PeerId::random();
    api.node.handle.ban(peer, "invalid block: test").await.unwrap();
    crate::harness::wait_until_async("the ban listed", Duration::from_secs(10), || async {
        api.get("/bans").await.1.as_array().is_some_and(|a| !a.is_empty())
    })
    .await;
    let (_, v) = api.get("/bans").await;
    assert_eq!(v[0]["peer_id"], peer.to_string());
    assert_eq!(v[0]["reason"], "invalid block: test");
    let left = v[0]["expires_in_secs"].as_u64().unwrap();
    assert!(left > 3_500 && left <= 3_600, "{left}");
    let who = json!({ "peer": peer.to_string() });
    assert_eq!(api.post("/unban", who.clone(), None).await.0, 401);
    let (code, v) = api.post("/unban", who.clone(), Some(&api.token)).await;
    assert_eq!((code, &v["done"]), (200, &json!("unbanned")), "{v}");
    crate::harness::wait_until_async("the ban lifted", Duration::from_secs(10), || async {
        api.get("/bans").await.1 == json!([])
    })
    .await;
    let (code, v) = api.post("/unban", who, Some(&api.token)).await;
    assert!(code == 404 && error_of(&v).contains("not banned"), "{v}");
    api.node.handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn post_peers_adds_a_peer_the_node_dials_and_keeps() {
    let api = api_node().await;
    let other = crate::harness::spawn(vec![]).await;
    let addr = other.addr().to_string();
    let (code, v) = api.post("/peers", json!({ "addr": addr }), None).await;
    assert_eq!(code, 401, "{v}");
    let (code, v) = api.post("/peers", json!({ "addr": "not an address" }), Some(&api.token)).await;
    assert_eq!(code, 400, "{v}");
    assert!(error_of(&v).contains("not an address"), "{v}");
    // What cannot be dialled is refused with why, not accepted and retried for ever.
    let own = api.node.addr().to_string();
    for (bad, why) in [
        ("127.0.0.1:0", "port 0"),
        ("/ip4/127.0.0.1/udp/9000/quic-v1", "TCP only"),
        ("127.0.0.1.5:32444", "not an IPv4 address"),
        (own.as_str(), "this node itself"),
    ] {
        let (code, v) = api.post("/peers", json!({ "addr": bad }), Some(&api.token)).await;
        assert_eq!(code, 400, "{bad}: {v}");
        assert!(error_of(&v).contains(why), "{bad}: {v}");
    }
    assert_eq!(api.get("/peers/kept").await.1, json!([]), "nothing refused was kept");
    let (code, v) = api.post("/peers", json!({ "addr": addr }), Some(&api.token)).await;
    assert_eq!((code, v["addr"].as_str()), (200, Some(addr.as_str())));
    let id = other.handle.peer_id();
    crate::harness::wait_until("the added peer to be connected", Duration::from_secs(30), || {
        api.node.handle.peer_ids().contains(&id)
    })
    .await;
    let (_, peers) = api.get("/peers").await;
    let entry = peers.as_array().unwrap().iter().find(|p| p["peer_id"] == id.to_string()).cloned();
    let entry = entry.unwrap_or_else(|| panic!("{peers}"));
    assert_eq!(
        (entry["direction"].as_str(), entry["source"].as_str()),
        (Some("outbound"), Some("operator"))
    );
    assert!(entry["connected_secs"].is_u64(), "{entry}");
    crate::harness::wait_until_async("a ping round trip", Duration::from_secs(30), || async {
        let (_, peers) = api.get("/peers").await;
        peers[0]["ping_ms"].as_f64().is_some_and(|ms| ms >= 0.0)
    })
    .await;
    // Identify, the status exchange and pings have crossed the connection both ways.
    let (_, peers) = api.get("/peers").await;
    let (sent, received) = (peers[0]["bytes_sent"].as_u64(), peers[0]["bytes_received"].as_u64());
    assert!(sent > Some(100) && received > Some(100), "{peers}");
    // Disconnected, a kept peer comes back; removed, it stays away and is no longer kept.
    let by_id = json!({ "peer": id.to_string() });
    let (code, v) = api.post("/peers/disconnect", by_id.clone(), Some(&api.token)).await;
    assert_eq!((code, &v["done"]), (200, &json!("disconnected")), "{v}");
    let (code, v) = api.post("/peers/remove", json!({ "peer": addr }), Some(&api.token)).await;
    assert_eq!((code, &v["done"]), (200, &json!("removed")), "{v}");
    // The network task carries the order out after the answer.
    crate::harness::wait_until_async("no longer kept", Duration::from_secs(30), || async {
        api.get("/peers/kept").await.1 == json!([])
    })
    .await;
    crate::harness::wait_until("the removed peer gone", Duration::from_secs(30), || {
        !api.node.handle.peer_ids().contains(&id)
    })
    .await;
    let (code, v) = api.post("/peers/disconnect", by_id.clone(), Some(&api.token)).await;
    assert_eq!(code, 404, "{v}");
    let (code, v) = api.post("/peers/remove", by_id, Some(&api.token)).await;
    assert_eq!(code, 404, "{v}");
    let (code, v) =
        api.post("/peers/disconnect", json!({ "peer": "nobody" }), Some(&api.token)).await;
    assert!(code == 400 && error_of(&v).contains("not a peer id"), "{v}");
    let (code, _) = api.post("/peers/remove", json!({ "peer": addr }), None).await;
    assert_eq!(code, 401, "the token guards removal");
    other.handle.shutdown().await;
    api.node.handle.shutdown().await;
}

/// Every sample of an OpenMetrics exposition: `name{labels}` to its value.
fn samples(text: &str) -> std::collections::HashMap<String, f64> {
    let mut out = std::collections::HashMap::new();
    for line in text.lines().filter(|l| !l.is_empty() && !l.starts_with('#')) {
        let (key, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("no value: {line}"));
        let value: f64 = value.parse().unwrap_or_else(|_| panic!("not a number: {line}"));
        assert!(out.insert(key.to_owned(), value).is_none(), "sample twice: {line}");
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_are_served_in_the_prometheus_text_format() {
    let api = api_node().await;
    api.mine(101).await; // the first coinbase matures: a transaction can spend it
    let r = api.http.get(format!("{}/metrics", api.base)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let content_type = r.headers()[reqwest::header::CONTENT_TYPE].to_str().unwrap().to_owned();
    assert!(content_type.starts_with("application/openmetrics-text"), "{content_type}");
    let text = r.text().await.unwrap();
    assert!(text.trim_end().ends_with("# EOF"), "{text}");
    let s = samples(&text);
    assert_eq!(s["minichain_chain_height"], 101.0);
    assert_eq!(s["minichain_headers_height"], 101.0);
    assert!(s["minichain_chain_work"] >= 102.0, "genesis and 101 blocks of work");
    assert_eq!(s["minichain_blocks_connected_total"], 101.0);
    assert_eq!(s["minichain_blocks_mined_total"], 101.0);
    assert_eq!(s["minichain_block_validation_seconds_count"], 101.0);
    assert_eq!(s["minichain_reorgs_total"], 0.0);
    assert_eq!(s["minichain_mempool_transactions"], 0.0);
    assert_eq!(s[r#"minichain_peers{direction="inbound"}"#], 0.0);
    assert_eq!(s[r#"minichain_peers{direction="outbound"}"#], 0.0);
    for name in [
        "minichain_mempool_bytes",
        "minichain_sync_blocks_per_second",
        "minichain_hashrate",
        "minichain_gossip_messages",
    ] {
        assert!(text.contains(&format!("# TYPE {name} ")), "{name} missing:\n{text}");
    }
    assert_eq!(s[r#"minichain_gossip_messages_total{topic="block",verdict="accept"}"#], 0.0);
    // Every offence from zero, so a dashboard shows 0 rather than "no data".
    assert_eq!(s[r#"minichain_bans_total{offence="invalid_block"}"#], 0.0);
    assert_eq!(s[r#"minichain_bans_total{offence="request_flood"}"#], 0.0);
    let version = env!("CARGO_PKG_VERSION");
    let build = text.lines().find(|l| l.starts_with("minichain_build_info{")).unwrap_or("");
    assert!(build.contains(&format!("version=\"{version}\"")) && build.ends_with(" 1"), "{build}");
    assert!(build.contains("commit=\""), "{build}");
    assert!(s["minichain_database_bytes"] > 4096.0, "the chain.redb of 101 blocks");
    assert!(s.contains_key("minichain_uptime_seconds"));
    assert!(s["process_resident_memory_bytes"] > 1_048_576.0);
    assert!(s["process_cpu_seconds_total"] > 0.0, "101 blocks were mined");
    assert!(text.lines().any(|l| l.starts_with("# TYPE libp2p_")), "no libp2p metrics:\n{text}");
    // A transaction shows in the mempool gauges at the next scrape.
    let tx = pay_from_coinbase(1, 7);
    let hex = hex::encode(serialize(&tx));
    let (code, v) = api.post("/tx", json!({ "hex": hex }), Some(&api.token.clone())).await;
    assert_eq!(code, 200, "{v}");
    let r = api.http.get(format!("{}/metrics", api.base)).send().await.unwrap();
    let s = samples(&r.text().await.unwrap());
    assert_eq!(s["minichain_mempool_transactions"], 1.0);
    assert!(s["minichain_mempool_bytes"] > 100.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_error_is_json_even_for_an_unknown_path_method_or_content_type() {
    let api = api_node().await;
    let url = |p: &str| format!("{}{p}", api.base);
    let (code, v) = json_of(api.http.delete(url("/status")).send().await.unwrap()).await;
    assert_eq!(code, 405);
    assert!(error_of(&v).contains("method"), "{v}");
    let (code, v) = json_of(api.http.get(url("/mine")).send().await.unwrap()).await;
    assert_eq!(code, 405, "{v}");
    let (code, v) = json_of(api.http.get(url("/no/such/thing")).send().await.unwrap()).await;
    assert_eq!(code, 404);
    assert!(error_of(&v).contains("no such endpoint"), "{v}");
    // A body without `Content-Type: application/json`.
    let r = api.http.post(url("/tx")).bearer_auth(&api.token).body("{\"hex\":\"00\"}");
    let (code, v) = json_of(r.send().await.unwrap()).await;
    assert_eq!(code, 415);
    assert!(error_of(&v).contains("Content-Type"), "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wallet_asks_about_many_addresses_in_one_request() {
    let api = api_node().await;
    let token = api.token.clone();
    api.mine(101).await;
    let alice = encode_address("mcrt", &pubkey(&key(1)));
    let bob = encode_address("mcrt", &pubkey(&key(7)));
    let nobody = encode_address("mcrt", &pubkey(&key(9)));
    let tx = pay_from_coinbase(1, 7);
    let (code, v) =
        api.post("/tx", json!({ "hex": hex::encode(serialize(&tx)) }), Some(&token)).await;
    assert_eq!(code, 200, "{v}");
    let txid = v["txid"].as_str().unwrap().to_owned();
    // Used: alice on the chain, bob only in the mempool, nobody at all. No token needed.
    let asked = json!({ "addresses": [alice, bob, nobody] });
    let (code, v) = api.post("/addresses/used", asked.clone(), None).await;
    assert_eq!((code, &v["used"]), (200, &json!([true, true, false])), "{v}");
    // The summaries agree with the one-address endpoints, in the order asked.
    let (code, v) = api.post("/addresses", asked.clone(), None).await;
    assert_eq!(code, 200, "{v}");
    let sums = v["addresses"].as_array().unwrap();
    for (sum, addr) in sums.iter().zip([&alice, &bob, &nobody]) {
        let (_, bal) = api.get(&format!("/address/{addr}/balance")).await;
        let (_, utxos) = api.get(&format!("/address/{addr}/utxos")).await;
        assert_eq!(sum["address"], bal["address"]);
        for field in ["confirmed", "unconfirmed", "immature"] {
            assert_eq!(sum[field], bal[field], "{field} of {addr}");
        }
        assert_eq!(sum["utxos"], utxos["utxos"], "{addr}");
        assert!(sum.get("history").is_none(), "history only when asked");
    }
    assert_eq!(
        (&sums[0]["txs"], &sums[1]["txs"], &sums[2]["txs"]),
        (&102.into(), &1.into(), &0.into())
    );
    assert_eq!(sums[1]["pending"][0]["txid"], txid.as_str());
    // With the history: each address's, as GET /address/{addr}/history lists it.
    let (_, v) =
        api.post("/addresses", json!({ "addresses": [alice, bob], "history": true }), None).await;
    for (sum, addr) in v["addresses"].as_array().unwrap().iter().zip([&alice, &bob]) {
        let (_, h) = api.get(&format!("/address/{addr}/history")).await;
        let mut all = sum["pending"].as_array().unwrap().clone();
        all.extend(sum["history"].as_array().unwrap().iter().cloned());
        assert_eq!(Value::Array(all), h["txs"], "{addr}");
    }
    // One bad address refuses the whole request, as do too many and unknown fields.
    let (code, v) = api.post("/addresses", json!({ "addresses": [alice, "mc1xyz"] }), None).await;
    assert_eq!(code, 400, "{v}");
    let many: Vec<String> = (0..5_001).map(|_| nobody.clone()).collect();
    let (code, v) = api.post("/addresses/used", json!({ "addresses": many }), None).await;
    assert!(code == 400 && error_of(&v).contains("at most 5000"), "{v}");
    let (code, _) = api.post("/addresses", json!({ "addresses": [], "histroy": true }), None).await;
    assert_eq!(code, 422);
    // Fee estimates: the relay minimum while nothing is known, for every target.
    let (code, v) = api.get("/fees").await;
    assert_eq!(code, 200, "{v}");
    let rates: Vec<(u64, u64)> = v["estimates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["target"].as_u64().unwrap(), e["fee_rate"].as_u64().unwrap()))
        .collect();
    assert_eq!(rates, [(1, 1000), (3, 1000), (6, 1000)], "{v}");
    assert_eq!(v["min_fee_rate"], 1000);
    api.node.handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lower_case_bearer_an_upper_case_address_and_a_wrong_body_are_understood() {
    let api = api_node().await;
    let url = |p: &str| format!("{}{p}", api.base);
    // RFC 7235: the scheme's name is case-insensitive.
    for scheme in ["bearer", "BEARER", "Bearer"] {
        let auth = format!("{scheme} {}", api.token);
        let r =
            api.http.post(url("/mine")).header("Authorization", auth).json(&json!({"blocks": 1}));
        let (code, v) = json_of(r.send().await.unwrap()).await;
        assert_eq!(code, 200, "{scheme}: {v}");
    }
    let r =
        api.http.post(url("/mine")).header("Authorization", "Basic x").json(&json!({"blocks": 1}));
    assert_eq!(json_of(r.send().await.unwrap()).await.0, 401, "another scheme is no token");
    // BIP173: an address in capitals (as QR codes carry it) is the same address.
    let alice = encode_address("mcrt", &pubkey(&key(1)));
    let (code, lower) = api.get(&format!("/address/{alice}/balance")).await;
    assert_eq!(code, 200, "{lower}");
    let (code, upper) = api.get(&format!("/address/{}/balance", alice.to_uppercase())).await;
    assert_eq!((code, &upper["confirmed"]), (200, &lower["confirmed"]), "{upper}");
    // A body of the wrong shape is described in JSON's terms, not our Rust types'.
    for body in [json!([]), json!("00")] {
        let (code, v) = api.post("/tx", body, Some(&api.token)).await;
        assert_eq!(code, 422, "{v}");
        let error = error_of(&v);
        assert!(error.contains("expected a JSON object") && !error.contains("SubmitTx"), "{v}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_holds_alone_and_ready_waits_for_a_peer_and_the_sync() {
    let a = api_node().await;
    a.mine(5).await;
    assert_eq!(a.get("/health").await, (200, json!({ "ok": true, "reasons": [] })));
    assert_eq!(a.get("/ready").await, (503, json!({ "ok": false, "reasons": ["no peers"] })));
    let (_, status) = a.get("/status").await;
    assert_eq!((&status["state"], &status["sync_peers"]), (&json!("no peers"), &json!(0)));
    assert!(status["warnings"].to_string().contains("no peers"), "{status}");
    assert!(status["version"].as_str().is_some_and(|v| v.contains(env!("CARGO_PKG_VERSION"))));
    let age = status["tip_age_secs"].as_i64().unwrap();
    assert!((-5..600).contains(&age), "a tip just mined is {age} s old");

    // A node joining: not ready until it has a peer and the peer's 5 blocks.
    let b = crate::harness::spawn(vec![a.node.addr()]).await;
    let b_api =
        serve("127.0.0.1:0".parse().unwrap(), b.handle.clone(), b.dir.path()).await.unwrap();
    let b_ready = format!("http://{}/ready", b_api.addr());
    let http = reqwest::Client::new();
    crate::harness::wait_until_async("b ready", Duration::from_secs(60), || async {
        let (code, v) = json_of(http.get(&b_ready).send().await.unwrap()).await;
        assert!(code == 200 || v["reasons"].as_array().is_some_and(|r| !r.is_empty()), "{v}");
        code == 200
    })
    .await;
    assert_eq!(b.height(), 5, "ready means synced");
    let b_status: serde_json::Value = http
        .get(format!("http://{}/status", b_api.addr()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!((&b_status["state"], &b_status["sync_peers"]), (&json!("synced"), &json!(1)));
    assert!(!b_status["warnings"].to_string().contains("no peers"), "{b_status}");
    crate::harness::wait_until_async("a ready", Duration::from_secs(30), || async {
        a.get("/ready").await.0 == 200
    })
    .await;
}
