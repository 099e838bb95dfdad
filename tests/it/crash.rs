//! kill -9 at random moments: while mining and while syncing, a node process is killed
//! 20 times; after each kill `minichain verify` must pass and the committed tip must never
//! go backwards (the node carries on from its last committed tip, no replay, no loss).

use std::process::{Command, Stdio};
use std::time::Duration;

use minichain::node::start;

use crate::harness::{config, node_process, spawn, wait_until};

const BIN: &str = env!("CARGO_BIN_EXE_minichain");

/// Height `minichain verify` reports for `dir`; panics with its message if it fails.
fn verified_height(dir: &std::path::Path) -> u32 {
    let out = Command::new(BIN).args(["verify", "--data-dir"]).arg(dir).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "verify failed after a kill: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let h = stdout.split("at height ").nth(1).and_then(|r| r.split_whitespace().next()).unwrap();
    h.parse().unwrap()
}

/// A deterministic spread of kill moments, 50–450 ms after start.
fn moment(i: u64) -> Duration {
    Duration::from_millis(50 + (i.wrapping_mul(2_654_435_761) % 400))
}

fn run_and_kill(dir: &std::path::Path, extra: &[String], after: Duration) {
    let mut child =
        node_process(dir).args(extra).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
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
        let after = moment(i);
        tokio::task::spawn_blocking(move || run_and_kill(&dir, &["--mine".into()], after))
            .await
            .unwrap();
        let h = verified_height(mining.path());
        eprintln!("mining kill {i}: verified at height {h}");
        assert!(h >= last, "tip went back from {last} to {h} after kill {i}");
        last = h;
    }
    assert!(last > 0, "nothing was mined between the kills");

    // While syncing: a peer serves 1,500 blocks; the node is killed mid-sync, restarted.
    let source = spawn(vec![]).await;
    source.handle.mine(1_500, None).await.unwrap();
    let boot = source.addr().to_string();
    let syncing = tempfile::tempdir().unwrap();
    let mut last = 0;
    for i in 10..20 {
        let dir = syncing.path().to_path_buf();
        let extra = vec!["--bootstrap".to_string(), boot.clone()];
        let after = moment(i);
        tokio::task::spawn_blocking(move || run_and_kill(&dir, &extra, after)).await.unwrap();
        let h = verified_height(syncing.path());
        eprintln!("syncing kill {i}: verified at height {h}");
        assert!(h >= last, "tip went back from {last} to {h} after kill {i}");
        last = h;
    }
    assert!(last > 0, "the node never synced anything between the kills");
    // After all that, started once more, it finishes the sync from where it stood.
    let node = start(config(syncing.path(), vec![source.addr()])).await.unwrap();
    assert!(node.status().height >= last, "restarted below its last verified height");
    wait_until("the restarted node to finish syncing", Duration::from_secs(120), || {
        node.status().height == 1_500
    })
    .await;
    node.shutdown().await;
    assert_eq!(verified_height(syncing.path()), 1_500);
    source.handle.shutdown().await;
}
