//! Three `minichain node` processes driven only through the CLI and the HTTP API.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use minichain::consensus::Network;
use minichain::primitives::encode::serialize;
use minichain::primitives::{OutPoint, Transaction, TxIn, TxOut};
use minichain::wallet::{KeyChain, Wallet, sign_transaction};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_minichain");
const LIMIT: Duration = Duration::from_secs(60);

/// A node process on ephemeral ports; killed when dropped.
struct Proc {
    child: Child,
    rpc: String,
    p2p: String,
    dir: tempfile::TempDir,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn_node(bootstrap: Option<&str>) -> Proc {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = crate::harness::node_process(dir.path());
    cmd.args(["--log-format", "json"]).stdout(Stdio::null()).stderr(Stdio::piped());
    if let Some(b) = bootstrap {
        cmd.args(["--bootstrap", b]);
    }
    let mut child = cmd.spawn().unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    // Reads the log for the bound addresses, then keeps draining it.
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Ok(v) = serde_json::from_str::<Value>(&line) {
                let _ = tx.send(v);
            }
        }
    });
    let (mut rpc, mut p2p) = (None, None);
    let deadline = Instant::now() + LIMIT;
    while rpc.is_none() || p2p.is_none() {
        let v = rx
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .expect("node start-up log");
        match v["message"].as_str() {
            Some("HTTP API listening") => rpc = v["addr"].as_str().map(str::to_owned),
            Some("listening") => p2p = v["addr"].as_str().map(str::to_owned),
            _ => {}
        }
    }
    Proc { child, rpc: rpc.unwrap(), p2p: p2p.unwrap(), dir }
}

/// Runs the CLI; returns stdout, panics with stderr on failure.
fn cli(args: &[&str]) -> String {
    let out = Command::new(BIN).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "minichain {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn json(args: &[&str]) -> Value {
    let out = cli(args);
    assert_eq!(out.lines().count(), 1, "--json prints one compact line: {out}");
    serde_json::from_str(&out).unwrap()
}

fn conn<'a>(node: &'a Proc, more: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec![
        "--network",
        "regtest",
        "--rpc",
        node.rpc.as_str(),
        "--data-dir",
        node.dir.path().to_str().unwrap(),
        "--json",
    ];
    v.extend_from_slice(more);
    v
}

fn wait_for(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + LIMIT;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn height(node: &Proc) -> u64 {
    let mut args = vec!["status"];
    args.extend(conn(node, &[]));
    json(&args)["height"].as_u64().unwrap()
}

#[test]
fn coins_mined_on_a_are_sent_through_b_and_c_reports_the_balances() {
    let a = spawn_node(None);
    let b = spawn_node(Some(&a.p2p));
    let c = spawn_node(Some(&a.p2p));
    let wallets = tempfile::tempdir().unwrap();
    let w1 = wallets.path().join("w1.json");
    let w2 = wallets.path().join("w2.json");
    let addr1 = json(&[
        "wallet",
        "new",
        "--network",
        "regtest",
        "--wallet",
        w1.to_str().unwrap(),
        "--no-passphrase",
        "--json",
    ])["address"]
        .as_str()
        .unwrap()
        .to_owned();
    let addr2 = json(&[
        "wallet",
        "new",
        "--network",
        "regtest",
        "--wallet",
        w2.to_str().unwrap(),
        "--no-passphrase",
        "--json",
    ])["address"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        json(&[
            "wallet",
            "address",
            "--network",
            "regtest",
            "--wallet",
            w1.to_str().unwrap(),
            "--json"
        ])["address"],
        addr1
    );

    let mut mine = vec!["mine", "--blocks", "101", "--to", addr1.as_str()];
    mine.extend(conn(&a, &[]));
    assert_eq!(json(&mine)["blocks"].as_array().unwrap().len(), 101);
    wait_for("B and C at height 101", || height(&b) == 101 && height(&c) == 101);

    let mut send = vec![
        "send",
        "--wallet",
        w1.to_str().unwrap(),
        "--to",
        addr2.as_str(),
        "--amount",
        "12.5",
        "--fee",
        "0.001",
    ];
    send.extend(conn(&b, &[]));
    let txid = json(&send)["txid"].as_str().unwrap().to_owned();
    wait_for("the transaction in A's mempool", || {
        let mut args = vec!["tx", txid.as_str()];
        args.extend(conn(&a, &[]));
        let out = Command::new(BIN).args(&args).output().unwrap();
        out.status.success()
            && serde_json::from_slice::<Value>(&out.stdout).is_ok_and(|v| v["in_mempool"] == true)
    });
    let mut mine_one = vec!["mine", "--blocks", "1"];
    mine_one.extend(conn(&a, &[]));
    json(&mine_one);
    wait_for("C at height 102", || height(&c) == 102);

    let balance = |addr: &str| {
        let mut args = vec!["balance", addr];
        args.extend(conn(&c, &[]));
        json(&args)
    };
    let b2 = balance(&addr2);
    assert_eq!(
        (b2["confirmed"].as_u64(), b2["unconfirmed"].as_i64()),
        (Some(1_250_000_000), Some(0))
    );
    assert_eq!(
        b2,
        serde_json::json!({ "address": addr2, "spendable": 1_250_000_000u64, "immature": 0,
                            "unconfirmed": 0, "confirmed": 1_250_000_000u64 }),
        "balance --json prints address, spendable, immature, unconfirmed, confirmed"
    );
    // The change went to the wallet's first change address: the wallet holds it all.
    let mut whole = vec!["balance", "--wallet", w1.to_str().unwrap()];
    whole.extend(conn(&c, &[]));
    let b1 = json(&whole);
    assert_eq!(b1["confirmed"].as_u64(), Some(101 * 5_000_000_000 - 1_250_000_000 - 100_000));
    assert_eq!(b1["addresses"], 2, "{b1}");
    assert_eq!(balance(&addr1)["confirmed"].as_u64(), Some(100 * 5_000_000_000), "one coin spent");

    // A double spend of the same coin, straight to B's API, is refused with its reason.
    let mut show = vec!["tx", txid.as_str()];
    show.extend(conn(&c, &[]));
    let input = json(&show)["tx"]["inputs"][0].clone();
    let spent = OutPoint {
        txid: input["txid"].as_str().unwrap().parse().unwrap(),
        vout: input["vout"].as_u64().unwrap() as u32,
    };
    let wallet = Wallet::load(&w1, Network::Regtest).unwrap();
    let key = wallet.unlock(None).unwrap().keypair(KeyChain::Receive, 0).unwrap();
    let own = wallet.pubkey(KeyChain::Receive, 0).unwrap();
    let mut double = Transaction {
        version: 1,
        inputs: vec![TxIn { prevout: spent, signature: [0; 64] }],
        outputs: vec![TxOut { value: 1_000_000_000, pubkey: own }],
        lock_time: 0,
    };
    let coin = TxOut { value: 5_000_000_000, pubkey: own };
    sign_transaction(&mut double, &[coin], |_| Some(&key)).unwrap();
    let token = std::fs::read_to_string(b.dir.path().join(".cookie")).unwrap();
    let resp = reqwest::blocking::Client::new()
        .post(format!("http://{}/tx", b.rpc))
        .bearer_auth(token.trim())
        .json(&serde_json::json!({ "hex": hex::encode(serialize(&double)) }))
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 409);
    let body: Value = resp.json().unwrap();
    assert!(body["error"].as_str().unwrap().contains("missing or already spent"), "{body}");

    // Bad input to the CLI: one clear line, non-zero exit.
    let mut bad = vec!["balance", "mc1qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqq"];
    bad.extend(conn(&c, &[]));
    let out = Command::new(BIN).args(&bad).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("error: "), "{err}");
    let mut bad_amount =
        vec!["send", "--wallet", w1.to_str().unwrap(), "--to", addr2.as_str(), "--amount", "-3"];
    bad_amount.extend(conn(&b, &[]));
    let out = Command::new(BIN).args(&bad_amount).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not an amount of coins"));
}

#[test]
fn peers_add_makes_a_node_dial_and_keep_a_peer() {
    let a = spawn_node(None);
    let b = spawn_node(None);
    let mut list = vec!["peers"];
    list.extend(conn(&a, &[]));
    assert_eq!(json(&list), serde_json::json!([]));
    let mut add = vec!["peers", "add", b.p2p.as_str()];
    add.extend(conn(&a, &[]));
    assert_eq!(json(&add)["addr"], b.p2p.as_str());
    wait_for("b among a's peers", || json(&list).as_array().is_some_and(|p| p.len() == 1));
    // A bad address is refused before the node is asked.
    let out = Command::new(BIN).args(["peers", "add", "nowhere"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.starts_with("error:") && stderr.contains("nowhere"), "{stderr}");

    // Removed, b is no longer kept nor connected; and it stays so.
    let b_id = json(&list)[0]["peer_id"].as_str().unwrap().to_owned();
    let mut remove = vec!["peers", "remove", b.p2p.as_str()];
    remove.extend(conn(&a, &[]));
    assert_eq!(json(&remove)["done"], "removed");
    wait_for("b gone from a's peers", || json(&list) == serde_json::json!([]));
    let mut kept = vec!["peers"];
    kept.extend(conn(&a, &[]));
    let text = cli(&kept[..kept.len() - 1]);
    assert!(text.contains("0 peers") && !text.contains("not connected"), "{text}");
    // What is not there is one clear line each.
    for order in [["peers", "disconnect", &b_id], ["peers", "remove", &b_id], ["unban", "", &b_id]]
    {
        let mut args: Vec<&str> = order.iter().copied().filter(|s| !s.is_empty()).collect();
        args.extend(conn(&a, &[]));
        let out = Command::new(BIN).args(&args).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(stderr.starts_with("error:") && stderr.contains(&b_id), "{stderr}");
    }
    let mut bans = vec!["bans"];
    bans.extend(conn(&a, &[]));
    assert_eq!(json(&bans), serde_json::json!([]));
}
