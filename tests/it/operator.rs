//! The rough edges an operator hits on day two, each driven with the exact input that
//! found it: out-of-range flags, fatal errors that must reach the log, and the like.

use std::process::Command;

fn minichain() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_minichain"));
    cmd.env_remove("RUST_LOG");
    cmd
}

#[test]
fn a_ban_longer_than_a_century_is_refused_at_the_command_line() {
    // Adding this to the clock once panicked the network task at the first ban.
    let dir = tempfile::tempdir().unwrap();
    let out = minichain()
        .args(["node", "--network", "regtest", "--ban-secs", "18446744073709551615", "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "a usage error");
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("--ban-secs") && said.contains("0..=3153600000"), "{said}");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "nothing was started");
}

#[test]
fn a_fatal_error_reaches_the_json_log_file_and_the_exit_code() {
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = busy.local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("node.log");
    let out = crate::harness::node_process(dir.path())
        .args(["--listen", &format!("/ip4/127.0.0.1/tcp/{port}"), "--log-format", "json"])
        .arg("--log-file")
        .arg(&log)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    let text = std::fs::read_to_string(&log).unwrap();
    let last: serde_json::Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    assert_eq!(last["level"], "ERROR", "{last}");
    let error = last["error"].as_str().unwrap();
    assert!(error.contains(&format!("tcp/{port}")) && error.contains("in use"), "{last}");
    // Standard error carries the same JSON line, not a plain-text one beside it.
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.lines().all(|l| l.starts_with('{')), "{stderr}");
}

#[test]
fn the_pid_file_names_this_node_while_it_runs_and_goes_with_it() {
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("minichain.pid");
    let mut node = crate::harness::logging_node(
        crate::harness::node_process(dir.path()).arg("--pid-file").arg(&pid_file),
    );
    let (_, rpc) = crate::harness::addrs_of(&node);
    let pid = std::fs::read_to_string(&pid_file).unwrap();
    assert_eq!(pid.trim(), node.child.id().to_string(), "{pid:?}");
    let stop = minichain()
        .args(["stop", "--network", "regtest", "--rpc", &rpc, "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(stop.status.success(), "{}", String::from_utf8_lossy(&stop.stderr));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let status = loop {
        if let Some(status) = node.child.try_wait().unwrap() {
            break status;
        }
        assert!(std::time::Instant::now() < deadline, "the node did not stop within a minute");
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert!(status.success(), "{status}");
    assert!(!pid_file.exists(), "a clean stop removes the pid file");
}

#[test]
fn a_peer_of_another_network_is_refused_with_one_warning_naming_both() {
    use crate::harness::{addrs_of, log_line, logging_node, node_process, node_process_on};
    let (a_dir, b_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = logging_node(&mut node_process(a_dir.path()));
    let (a_addr, _) = addrs_of(&a);
    // A devnet node bootstrapped to a regtest one: once this counted as a synced peer.
    let b = logging_node(node_process_on("devnet", b_dir.path()).args(["--bootstrap", &a_addr]));
    let (_, b_rpc) = addrs_of(&b);
    let refused = log_line(&b, "refusing a peer of another network");
    assert_eq!(refused["level"], "WARN", "{refused}");
    assert_eq!(
        (&refused["their_network"], &refused["our_network"]),
        (&"regtest".into(), &"devnet".into())
    );
    assert!(refused["message"].as_str().unwrap().contains("it runs regtest, we run devnet"));
    let get = |path: &str| {
        let r = reqwest::blocking::get(format!("http://{b_rpc}{path}")).unwrap();
        (r.status().as_u16(), r.json::<serde_json::Value>().unwrap())
    };
    let (code, ready) = get("/ready");
    assert_eq!(code, 503, "{ready}");
    let (_, status) = get("/status");
    assert_eq!(
        (&status["state"], &status["sync_peers"]),
        (&"no peers".into(), &0.into()),
        "{status}"
    );
}
