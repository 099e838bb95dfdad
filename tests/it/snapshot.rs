//! Starting from a UTXO snapshot: at the tip at once, the history validated in the
//! background and checked against the snapshot, served to late joiners, resumed after a
//! kill -9; files that are not the trusted snapshot refused.

use std::path::Path;
use std::time::Duration;

use minichain::api::Status;
use minichain::consensus::Network;
use minichain::node::start;
use minichain::primitives::BlockHash;

use crate::harness::{
    TestNode, addrs_of, chain_at, chain_in, config, log_line, logging_node, node_process,
    wait_until,
};

/// A node serving a chain of `blocks` blocks, and its snapshot written to a file.
async fn source(blocks: u32) -> (TestNode, std::path::PathBuf, BlockHash) {
    let dir = tempfile::tempdir().unwrap();
    chain_in(dir.path(), blocks);
    let handle = start(config(dir.path(), vec![])).await.unwrap();
    let (info, hash, bytes) = handle.snapshot().await.unwrap();
    assert_eq!(info.height, blocks);
    let file = dir.path().join("utxo.snap");
    std::fs::write(&file, bytes).unwrap();
    (TestNode { handle, dir }, file, hash)
}

fn snapshot_of(status: &Status) -> (u32, u32, bool) {
    let s = status.snapshot.expect("a node started from a snapshot says so");
    (s.height, s.validated_height, s.done)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_from_a_snapshot_is_at_the_tip_validates_the_history_and_serves_a_late_joiner() {
    let (a, file, hash) = source(300).await;
    let tip = a.tip();
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path(), vec![a.addr()]);
    cfg.snapshot = Some((file.clone(), hash));
    let b = TestNode { handle: start(cfg).await.unwrap(), dir };
    let limit = Duration::from_secs(60);
    wait_until("the snapshot node at the tip", limit, || b.tip() == tip).await;
    // Balances come from the snapshot's coins: the same as the source's.
    let addr = minichain::primitives::address::encode_address("mcrt", &[7; 32]);
    let (want, got) =
        (a.handle.balance([7; 32], addr.clone()).await, b.handle.balance([7; 32], addr).await);
    assert_eq!(want.unwrap(), got.unwrap());
    wait_until("the history validated", limit, || snapshot_of(&b.handle.status()).2).await;
    assert_eq!(snapshot_of(&b.handle.status()), (300, 300, true));

    // A late joiner that only knows the snapshot node gets the whole chain from it,
    // history included.
    a.handle.shutdown().await;
    let c = crate::harness::spawn(vec![b.addr()]).await;
    wait_until("the late joiner at the tip", limit, || c.tip() == tip).await;
    assert!(c.handle.status().snapshot.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_joiner_from_the_same_snapshot_needs_only_the_blocks_above_it() {
    let (a, file, hash) = source(40).await;
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path(), vec![a.addr()]);
    cfg.snapshot = Some((file.clone(), hash));
    let b = TestNode { handle: start(cfg).await.unwrap(), dir };
    let limit = Duration::from_secs(60);
    wait_until("the snapshot node at the tip", limit, || b.height() == 40).await;
    // Mined on the snapshot node: blocks above the base, which it has whole.
    b.handle.mine(3, None).await.unwrap();
    a.handle.shutdown().await;
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path(), vec![b.addr()]);
    cfg.snapshot = Some((file, hash));
    let c = TestNode { handle: start(cfg).await.unwrap(), dir };
    wait_until("the second snapshot node at the tip", limit, || c.tip() == b.tip()).await;
    assert_eq!(c.height(), 43);
}

/// `minichain node --snapshot FILE --snapshot-hash HASH` in a fresh data dir: its stderr.
fn refused(file: &Path, hash: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let out = node_process(dir.path())
        .arg("--snapshot")
        .arg(file)
        .args(["--snapshot-hash", hash])
        .output()
        .unwrap();
    assert!(!out.status.success(), "a node started from a snapshot it should refuse");
    assert!(!dir.path().join("chain.redb").exists(), "a refused snapshot leaves no database");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tampered_snapshot_or_one_of_another_hash_is_refused_and_nothing_is_stored() {
    let (_a, file, hash) = source(5).await;
    // Another hash: the file is whole, but not the one trusted.
    let other = BlockHash([3; 32]).to_string();
    let stderr = refused(&file, &other);
    assert!(
        stderr.contains(&format!("snapshot hash is {hash}, not the expected {other}")),
        "{stderr}"
    );
    // One byte of one coin changed: the file no longer matches its own hash.
    let mut bytes = std::fs::read(&file).unwrap();
    let at = bytes.len() - 32 - 10;
    bytes[at] ^= 0x40;
    let tampered = file.with_extension("tampered");
    std::fs::write(&tampered, &bytes).unwrap();
    let stderr = refused(&tampered, &hash.to_string());
    assert!(stderr.contains("does not match its own hash (damaged or tampered with)"), "{stderr}");
    // Not a snapshot at all, or no file.
    assert!(
        refused(&tampered.with_extension("missing"), &hash.to_string()).contains("No such file")
    );
}

/// `GET /status` of a node process's API.
fn status(rpc: &str) -> Option<serde_json::Value> {
    let body = reqwest::blocking::get(format!("http://{rpc}/status")).ok()?.text().ok()?;
    serde_json::from_str(&body).ok()
}

#[test]
fn a_node_killed_during_background_validation_resumes_it_after_a_restart() {
    let dir_a = tempfile::tempdir().unwrap();
    let tip = chain_in(dir_a.path(), 2_000);
    let a = logging_node(&mut node_process(dir_a.path()));
    let (boot, rpc_a) = addrs_of(&a);
    let file = dir_a.path().join("utxo.snap");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_minichain"))
        .args(["snapshot", "create", "--json", "--network", "regtest", "--rpc", &rpc_a, "--out"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let created: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let hash = created["hash"].as_str().unwrap().to_owned();
    let dir_b = tempfile::tempdir().unwrap();
    let start_b = || {
        let mut cmd = node_process(dir_b.path());
        cmd.args(["--bootstrap", &boot, "--snapshot"]).arg(&file).args(["--snapshot-hash", &hash]);
        logging_node(&mut cmd)
    };
    let validated = |s: &serde_json::Value| s["snapshot"]["validated_height"].as_u64().unwrap_or(0);
    let mut b = start_b();
    let (_, rpc_b) = addrs_of(&b);
    // Killed while the history is half validated.
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    let at_kill = loop {
        assert!(std::time::Instant::now() < deadline, "the history never got going");
        if let Some(s) = status(&rpc_b)
            && s["height"] == 2_000
            && validated(&s) >= 500
        {
            assert_eq!(s["snapshot"]["done"], false, "validated too fast to be killed midway");
            break validated(&s);
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    b.child.kill().unwrap();
    b.child.wait().unwrap();
    // Restarted with the same flags: the snapshot is not loaded again, the history goes on
    // from what it had made durable, and agrees.
    let b = start_b();
    let resumed = log_line(&b, "validating the snapshot's history in the background");
    let from = resumed["height"].as_u64().unwrap();
    assert!(from <= at_kill, "resumed at {from}, beyond the {at_kill} validated at the kill");
    let (_, rpc_b) = addrs_of(&b);
    let agreed = log_line(&b, "history validated from genesis: its UTXO set matches the snapshot");
    assert_eq!(agreed["height"], 2_000);
    // The status follows the log line once the core's input is done.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let s = loop {
        let s = status(&rpc_b).unwrap();
        if s["snapshot"]["done"] == true || std::time::Instant::now() > deadline {
            break s;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(
        (s["tip"].as_str(), &s["snapshot"]["done"]),
        (Some(tip.to_string().as_str()), &serde_json::json!(true))
    );
    eprintln!("killed at {at_kill} of 2,000 validated, resumed from {from}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_the_history_contradicts_is_one_error_and_the_validated_chain_takes_over() {
    use minichain::snapshot::{SnapshotWriter, read};
    let (a, file, _) = source(60).await;
    // A snapshot whose file is intact (it matches its own hash, which the user trusts)
    // but whose coins lie: one coin is worth more than the chain says.
    let mut coins = Vec::new();
    let bytes = std::fs::read(&file).unwrap();
    let (info, _) = read(&bytes[..], Network::Regtest, None, |op, c| coins.push((op, c))).unwrap();
    coins[0].1.output.value += 1;
    let mut writer = SnapshotWriter::new(Vec::new(), info).unwrap();
    for (op, c) in &coins {
        writer.coin(op, c).unwrap();
    }
    let (lie, lying) = writer.finish().unwrap();
    let lying_file = file.with_extension("lie");
    std::fs::write(&lying_file, lying).unwrap();

    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path(), vec![a.addr()]);
    cfg.snapshot = Some((lying_file, lie));
    let b = TestNode { handle: start(cfg).await.unwrap(), dir };
    let limit = Duration::from_secs(60);
    // The history reaches the base and disagrees: the node goes on from the chain it
    // validated itself, catches up with the source again, and no longer claims a
    // snapshot; the snapshot's database is kept aside, the validated one is the chain.
    wait_until("the fallback", limit, || b.handle.status().snapshot.is_none()).await;
    wait_until("the validated chain at the tip", limit, || b.tip() == a.tip()).await;
    assert!(b.dir.path().join("chain.redb.rejected-snapshot").exists());
    assert!(!b.dir.path().join("history.redb").exists());
    let addr = minichain::primitives::address::encode_address("mcrt", &coins[0].1.output.pubkey);
    let owner = coins[0].1.output.pubkey;
    let (want, got) =
        (a.handle.balance(owner, addr.clone()).await, b.handle.balance(owner, addr).await);
    assert_eq!(want.unwrap(), got.unwrap(), "balances come from the validated chain");
    // Restarted with the same flags (a service unit keeps them): the validated chain
    // goes on, the rejected snapshot is not loaded again.
    let tip = b.tip();
    let TestNode { handle, dir } = b;
    handle.shutdown().await;
    let mut cfg = config(dir.path(), vec![a.addr()]);
    cfg.snapshot = Some((file.with_extension("lie"), lie));
    let again = TestNode { handle: start(cfg).await.unwrap(), dir };
    assert_eq!((again.tip(), again.handle.status().snapshot), (tip, None));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_history_that_reached_the_base_before_a_restart_is_checked_after_it() {
    // As after a crash between the history reaching the snapshot's block and checking
    // it: history.redb already holds the whole chain up to there.
    let (a, file, hash) = source(30).await;
    let dir = tempfile::tempdir().unwrap();
    chain_at(&dir.path().join("history.redb"), 30);
    let mut cfg = config(dir.path(), vec![a.addr()]);
    cfg.snapshot = Some((file, hash));
    let b = TestNode { handle: start(cfg).await.unwrap(), dir };
    let limit = Duration::from_secs(60);
    wait_until("the check at the base", limit, || {
        b.handle.status().snapshot.is_some_and(|s| s.done)
    })
    .await;
    wait_until("the snapshot node at the tip", limit, || b.tip() == a.tip()).await;
}
