//! Faults are not crimes: real node processes with a server frozen by SIGSTOP mid-sync, a
//! data dir on a small tmpfs that fills up, and a clock skewed by libfaketime. Each checks
//! what an operator would see: the log lines, `/status`, the bans (none), the exit code.
//!
//! The tmpfs test needs root (to mount) and the clock test Debian's `faketime`; CI has
//! both. Without them a test fails, unless the run opts out with
//! `MINICHAIN_SKIP_MULTIHOST=1` (then it says that it skipped).

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::harness::{LoggingNode, addrs_of, log_line, logging_node, node_process};

fn minichain() -> Command {
    Command::new(env!("CARGO_BIN_EXE_minichain"))
}

/// `GET http://{rpc}{path}` as JSON.
fn get(rpc: &str, path: &str) -> Value {
    reqwest::blocking::get(format!("http://{rpc}{path}"))
        .and_then(reqwest::blocking::Response::json)
        .unwrap_or_else(|e| panic!("GET {path} on {rpc}: {e}"))
}

/// Polls `done` every 100 ms until it holds; panics naming `what` after `limit`.
fn wait_until(limit: Duration, what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !done() {
        assert!(Instant::now() < deadline, "{what}: not within {} s", limit.as_secs());
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn signal(node: &LoggingNode, sig: libc::c_int) {
    let pid = libc::pid_t::try_from(node.child.id()).unwrap();
    // SAFETY: kill has no memory preconditions; the pid is our own child's.
    assert_eq!(unsafe { libc::kill(pid, sig) }, 0, "kill({pid}, {sig})");
}

/// A regtest chain of `blocks` blocks, each with `txs` signed transactions, in `dir`.
fn chain_in(dir: &Path, blocks: u32, txs: u32) {
    let out = minichain()
        .args(["bench-chain", "--blocks", &blocks.to_string()])
        .args(["--txs-per-block", &txs.to_string(), "--data-dir"])
        .arg(dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "bench-chain: {}", String::from_utf8_lossy(&out.stderr));
}

fn height(rpc: &str) -> u64 {
    get(rpc, "/status")["height"].as_u64().unwrap_or(0)
}

fn no_bans(rpc: &str) -> bool {
    get(rpc, "/bans").as_array().is_some_and(Vec::is_empty)
}

/// Fails the test with `why`, or skips it if the run opted out of root-only tests.
fn cannot_run(why: &str) -> bool {
    if std::env::var("MINICHAIN_SKIP_MULTIHOST").is_ok_and(|v| v == "1") {
        eprintln!("SKIPPED (MINICHAIN_SKIP_MULTIHOST=1): {why}");
        return true;
    }
    panic!("cannot run: {why} (set MINICHAIN_SKIP_MULTIHOST=1 to skip)");
}

#[test]
fn a_server_frozen_mid_sync_is_not_banned_and_gossips_again_once_resumed() {
    let (a_dir, b_dir, c_dir) =
        (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    chain_in(a_dir.path(), 1_500, 1);
    std::fs::copy(a_dir.path().join("chain.redb"), b_dir.path().join("chain.redb")).unwrap();
    let a = logging_node(&mut node_process(a_dir.path()));
    let b = logging_node(&mut node_process(b_dir.path()));
    let ((a_p2p, a_rpc), (b_p2p, _)) = (addrs_of(&a), addrs_of(&b));
    let tip = height(&a_rpc);
    let c = logging_node(node_process(c_dir.path()).args([
        "--bootstrap",
        &a_p2p,
        "--bootstrap",
        &b_p2p,
    ]));
    let (_, c_rpc) = addrs_of(&c);
    log_line(&c, "headers");
    signal(&a, libc::SIGSTOP);
    let frozen = Instant::now();
    wait_until(Duration::from_secs(120), "sync from the other server", || height(&c_rpc) == tip);
    let synced_after = frozen.elapsed();
    assert!(no_bans(&c_rpc), "the frozen server was banned: {}", get(&c_rpc, "/bans"));
    signal(&a, libc::SIGCONT);
    let resumed = Instant::now();
    // Resumed, it is a peer again: what it mines reaches the syncing node.
    let a_conn = ["--network", "regtest", "--rpc", &a_rpc, "--data-dir"];
    let out = minichain().args(["mine"]).args(a_conn).arg(a_dir.path()).output().unwrap();
    assert!(out.status.success(), "mine: {}", String::from_utf8_lossy(&out.stderr));
    wait_until(Duration::from_secs(30), "the resumed server's block", || height(&c_rpc) == tip + 1);
    assert!(no_bans(&c_rpc) && no_bans(&a_rpc), "a ban after the resume");
    eprintln!(
        "frozen server: synced from the other {:.1} s after the freeze; the resumed server's block arrived {:.1} s after SIGCONT",
        synced_after.as_secs_f64(),
        resumed.elapsed().as_secs_f64()
    );
}

/// A tmpfs of `size` mounted on a fresh directory; unmounted when dropped.
struct Tmpfs(tempfile::TempDir);

impl Tmpfs {
    fn mount(size: &str) -> Option<Self> {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            cannot_run("mounting a tmpfs needs root");
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .output()
            .unwrap();
        if !out.status.success() {
            cannot_run(&format!("mount tmpfs: {}", String::from_utf8_lossy(&out.stderr)));
            return None;
        }
        Some(Tmpfs(dir))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(self.0.path()).status();
    }
}

/// CPU seconds a process has used (user + system), from /proc.
fn cpu_secs(node: &LoggingNode) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{}/stat", node.child.id())).unwrap();
    let fields: Vec<&str> = stat.rsplit(')').next().unwrap().split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line: 12 and 13 after the ')'.
    let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
    // SAFETY: sysconf has no preconditions.
    ticks / unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64
}

#[test]
fn a_full_disk_stops_writes_with_one_error_no_spin_and_a_sound_store_that_resumes() {
    let Some(small) = Tmpfs::mount("3m") else { return };
    let a_dir = tempfile::tempdir().unwrap();
    chain_in(a_dir.path(), 300, 100);
    let a = logging_node(&mut node_process(a_dir.path()));
    let (a_p2p, a_rpc) = addrs_of(&a);
    let tip = height(&a_rpc);
    let c = logging_node(node_process(small.0.path()).args(["--bootstrap", &a_p2p]));
    let (_, c_rpc) = addrs_of(&c);
    let error = log_line(&c, "cannot write");
    assert_eq!(error["level"], "ERROR", "{error}");
    let message = error["message"].as_str().unwrap();
    assert!(message.contains("chain.redb") && message.contains("free space"), "{error}");
    // From now on: no loop, no CPU burnt, no more than a handful of lines.
    let cpu = cpu_secs(&c);
    let quiet = Instant::now();
    let mut lines = Vec::new();
    while quiet.elapsed() < Duration::from_secs(5) {
        if let Ok(v) = c.log.recv_timeout(Duration::from_millis(100))
            && matches!(v["level"].as_str(), Some("WARN" | "ERROR"))
        {
            lines.push(v);
        }
    }
    let busy = (cpu_secs(&c) - cpu) / quiet.elapsed().as_secs_f64();
    assert!(lines.len() <= 2, "it keeps complaining: {lines:?}");
    assert!(busy < 0.3, "it spins at {:.0}% of a core", busy * 100.0);
    let status = get(&c_rpc, "/status");
    let degraded = status["degraded"].as_str().unwrap_or_else(|| panic!("{status}"));
    assert!(degraded.starts_with("disk full"), "{status}");
    let warnings = status["warnings"].to_string();
    assert!(warnings.contains("free on the data directory's disk"), "{status}");
    assert!(status["height"].as_u64().unwrap() < tip, "{status}");
    assert!(no_bans(&c_rpc) && no_bans(&a_rpc), "somebody was blamed for our disk");
    // Told to stop, it says why it is not sound with a non-zero exit.
    let stored = status["height"].as_u64().unwrap();
    signal(&c, libc::SIGTERM);
    let mut c = c;
    let code = c.child.wait().unwrap();
    assert!(!code.success(), "a degraded node exited 0");
    // The store is sound, holds at least what /status said, and resumes where there is room.
    let roomy = tempfile::tempdir().unwrap();
    std::fs::copy(small.0.path().join("chain.redb"), roomy.path().join("chain.redb")).unwrap();
    let out = minichain().args(["verify", "--data-dir"]).arg(roomy.path()).output().unwrap();
    assert!(out.status.success(), "verify: {}", String::from_utf8_lossy(&out.stderr));
    let again = logging_node(node_process(roomy.path()).args(["--bootstrap", &a_p2p]));
    let (_, again_rpc) = addrs_of(&again);
    assert!(height(&again_rpc) >= stored, "the restart lost durable blocks");
    wait_until(Duration::from_secs(120), "the sync after the restart", || {
        height(&again_rpc) == tip
    });
}

/// A regtest node process whose clock is off by `offset` (libfaketime's `-f` syntax),
/// bootstrapped to `peer`.
fn skewed(offset: &str, dir: &Path, peer: &str) -> Command {
    let node = node_process(dir);
    let mut cmd = Command::new("faketime");
    cmd.arg("-f").arg(offset).arg(node.get_program()).args(node.get_args());
    cmd.args(["--bootstrap", peer]).env_remove("RUST_LOG");
    cmd
}

#[test]
fn a_clock_three_hours_fast_is_named_when_the_network_refuses_its_blocks_and_costs_no_ban() {
    if Command::new("faketime").arg("--version").output().is_err() {
        cannot_run("needs Debian's faketime (libfaketime)");
        return;
    }
    let (a_dir, b_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    chain_in(a_dir.path(), 5, 1);
    let a = logging_node(&mut node_process(a_dir.path()));
    let (a_p2p, a_rpc) = addrs_of(&a);
    let b = logging_node(&mut skewed("+3h", b_dir.path(), &a_p2p));
    let (_, b_rpc) = addrs_of(&b);
    let tip = height(&a_rpc);
    wait_until(Duration::from_secs(60), "the fast node to sync", || height(&b_rpc) == tip);
    // It mines a block three hours ahead of everyone: the peer refuses it, quietly.
    let b_conn = ["--network", "regtest", "--rpc", &b_rpc, "--data-dir"];
    let out = minichain().args(["mine"]).args(b_conn).arg(b_dir.path()).output().unwrap();
    assert!(out.status.success(), "mine: {}", String::from_utf8_lossy(&out.stderr));
    let warning = log_line(&b, "the local clock seems");
    assert_eq!(warning["level"], "WARN", "{warning}");
    assert!(warning["message"].as_str().unwrap().contains("ahead of the network's"), "{warning}");
    let offset = warning["offset_secs"].as_i64().unwrap();
    assert!((-3 * 3600 - 900..=-3 * 3600 + 900).contains(&offset), "{warning}");
    assert_eq!(height(&a_rpc), tip, "the peer took a block from its future");
    assert!(no_bans(&a_rpc) && no_bans(&b_rpc), "a ban over a clock");
}

#[test]
fn a_clock_three_hours_slow_is_named_in_one_warning_and_costs_no_ban() {
    if Command::new("faketime").arg("--version").output().is_err() {
        cannot_run("needs Debian's faketime (libfaketime)");
        return;
    }
    let (a_dir, b_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    chain_in(a_dir.path(), 5, 1);
    let a = logging_node(&mut node_process(a_dir.path()));
    let (a_p2p, a_rpc) = addrs_of(&a);
    let a_conn = ["--network", "regtest", "--rpc", &a_rpc, "--data-dir"];
    // Blocks mined now, by a right clock.
    let out = minichain().args(["mine", "--blocks", "3"]).args(a_conn).arg(a_dir.path()).output();
    assert!(out.unwrap().status.success());
    let b = logging_node(&mut skewed("-3h", b_dir.path(), &a_p2p));
    let (_, b_rpc) = addrs_of(&b);
    let warning = log_line(&b, "the local clock seems");
    assert_eq!(warning["level"], "WARN", "{warning}");
    let message = warning["message"].as_str().unwrap();
    assert!(message.contains("behind the network's: check the system time"), "{warning}");
    let offset = warning["offset_secs"].as_i64().unwrap();
    assert!((3 * 3600 - 600..=3 * 3600 + 600).contains(&offset), "{warning}");
    // The status is published once the core's input that logged it is done, a moment
    // later.
    wait_until(Duration::from_secs(10), "the status to show the clock offset", || {
        !get(&b_rpc, "/status")["clock_offset_secs"].is_null()
    });
    let status = get(&b_rpc, "/status");
    assert_eq!(status["clock_offset_secs"], offset, "{status}");
    assert!(status["warnings"][0].as_str().unwrap().contains("clock"), "{status}");
    // It does not hammer its peer for headers it cannot take: nobody bans anybody.
    let quiet = Instant::now();
    let mut asked = 0;
    while quiet.elapsed() < Duration::from_secs(3) {
        if let Ok(v) = b.log.recv_timeout(Duration::from_millis(100))
            && v["message"].as_str().is_some_and(|m| m.starts_with("header"))
        {
            asked += 1;
        }
    }
    assert!(asked <= 1, "{asked} header lines in 3 s: it re-asks in a loop");
    assert!(no_bans(&a_rpc) && no_bans(&b_rpc), "a ban over a clock");
    let peers = get(&a_rpc, "/peers");
    assert_eq!(peers.as_array().map(Vec::len), Some(1), "the slow node was dropped: {peers}");
}
