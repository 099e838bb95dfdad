//! kill -9 at random moments: while mining and while syncing, a node process is killed
//! 20 times; after each kill `minichain verify` must pass and the durable tip must never
//! go backwards (the node carries on from its last durable tip). While catching up a node
//! makes its tip durable only every few seconds (chain::write::FLUSH_EVERY_SECS), so the
//! syncing kills are spread over several such intervals: some land in a cached stretch.

use std::process::{Command, Stdio};
use std::time::Duration;

use minichain::node::start;

use crate::harness::{config, node_process, wait_until};

const BIN: &str = env!("CARGO_BIN_EXE_minichain");

/// Height `minichain verify` reports for `dir`; panics with its message if it fails.
fn verified_height(dir: &std::path::Path) -> u32 {
    let db = dir.join("chain.redb");
    let before = std::fs::read(&db).unwrap();
    let out = Command::new(BIN).args(["verify", "--data-dir"]).arg(dir).output().unwrap();
    // A crashed file is checked through a recovered copy: the file itself stays as found.
    assert!(std::fs::read(&db).unwrap() == before, "verify changed the database");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "verify failed after a kill: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let h = stdout.split("at height ").nth(1).and_then(|r| r.split_whitespace().next()).unwrap();
    h.parse().unwrap()
}

/// A deterministic spread of kill moments, `from` to `from + span` ms after start.
fn moment(i: u64, from: u64, span: u64) -> Duration {
    Duration::from_millis(from + (i.wrapping_mul(2_654_435_761) % span))
}

fn run_and_kill(dir: &std::path::Path, extra: &[String], after: Duration) {
    let mut child =
        node_process(dir).args(extra).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    // The moment counts from the database's creation: on a busy machine a start can take
    // longer than the moment, and a node killed before it has a database has none to verify.
    let db = dir.join("chain.redb");
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !db.exists() {
        assert!(std::time::Instant::now() < deadline, "no database within a minute");
        std::thread::sleep(Duration::from_millis(5));
    }
    std::thread::sleep(after); // the random moment is the point of this test
    child.kill().unwrap(); // SIGKILL: no shutdown code runs
    child.wait().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_killed_20_times_while_mining_and_syncing_keeps_a_consistent_database() {
    // While mining: regtest with --mine commits blocks as fast as it can.
    let mining = tempfile::tempdir().unwrap();
    let mut last = 0;
    for i in 0..10 {
        let dir = mining.path().to_path_buf();
        let after = moment(i, 50, 400);
        tokio::task::spawn_blocking(move || run_and_kill(&dir, &["--mine".into()], after))
            .await
            .unwrap();
        let h = verified_height(mining.path());
        eprintln!("mining kill {i}: verified at height {h}");
        assert!(h >= last, "tip went back from {last} to {h} after kill {i}");
        last = h;
    }
    assert!(last > 0, "nothing was mined between the kills");

    // While syncing: a peer serves a chain of 20 blocks of 1,000 transactions (each run
    // spends seconds catching up, past the first durable write); the node is killed
    // mid-sync and restarted.
    let chain_dir = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .args(["bench-chain", "--blocks", "20", "--txs-per-block", "1000", "--data-dir"])
        .arg(chain_dir.path())
        .stderr(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "bench-chain failed");
    let summary = String::from_utf8_lossy(&out.stdout);
    let tip = serde_json::from_str::<serde_json::Value>(&summary)
        .ok()
        .and_then(|v| v["height"].as_u64())
        .unwrap_or_else(|| panic!("no height in {summary}")) as u32;
    let source = start(config(chain_dir.path(), vec![])).await.unwrap();
    let boot = source.listen_addrs()[0].to_string();
    let syncing = tempfile::tempdir().unwrap();
    let mut last = 0;
    let mut mid_sync = 0;
    // 0.3-4.3 s: past the first durable write, into stretches synced but not yet durable,
    // and across later flushes. Shortest first: each restart carries on the catch-up, so
    // the early kills land inside it even when one run alone would finish it (a quiet,
    // fast machine syncs this chain in under 2 s), and the later ones after it.
    let mut moments: Vec<(u64, Duration)> = (10..20).map(|i| (i, moment(i, 300, 4_000))).collect();
    moments.sort_by_key(|(_, after)| *after);
    for (i, after) in moments {
        let dir = syncing.path().to_path_buf();
        let extra = vec!["--bootstrap".to_string(), boot.clone()];
        tokio::task::spawn_blocking(move || run_and_kill(&dir, &extra, after)).await.unwrap();
        let h = verified_height(syncing.path());
        eprintln!("syncing kill {i} after {after:?}: verified at height {h} of {tip}");
        assert!(h >= last, "tip went back from {last} to {h} after kill {i}");
        if h < tip {
            mid_sync += 1;
        }
        last = h;
    }
    assert!(last > 0, "the node never synced anything between the kills");
    assert!(mid_sync > 0, "no kill landed during the catch-up");
    // After all that, started once more, it finishes the sync from where it stood.
    let node = start(config(syncing.path(), vec![source.listen_addrs()[0].clone()])).await.unwrap();
    assert!(node.status().height >= last, "restarted below its last verified height");
    wait_until("the restarted node to finish syncing", Duration::from_secs(120), || {
        node.status().height == tip
    })
    .await;
    node.shutdown().await;
    assert_eq!(verified_height(syncing.path()), tip);
    source.shutdown().await;
}
