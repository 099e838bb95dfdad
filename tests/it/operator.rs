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

#[test]
fn the_api_answers_only_to_addresses_localhost_and_the_names_allowed() {
    use crate::harness::{addrs_of, logging_node, node_process};
    let dir = tempfile::tempdir().unwrap();
    let node = logging_node(node_process(dir.path()).args(["--rpc-allow-host", "node.lan"]));
    let (_, rpc) = addrs_of(&node);
    let port = rpc.rsplit_once(':').unwrap().1;
    let http = reqwest::blocking::Client::new();
    let with_host = |host: &str, path: &str| {
        let r = http.get(format!("http://{rpc}{path}")).header("Host", host).send().unwrap();
        (r.status().as_u16(), r.text().unwrap())
    };
    // A page whose name was rebound to 127.0.0.1 sends its own name: refused, API and
    // explorer alike.
    for path in ["/status", "/"] {
        let (code, body) = with_host(&format!("evil.example.com:{port}"), path);
        assert_eq!(code, 403, "{path}: {body}");
        assert!(body.contains("--rpc-allow-host"), "{body}");
    }
    for host in [rpc.clone(), format!("localhost:{port}"), format!("NODE.lan:{port}")] {
        assert_eq!(with_host(&host, "/status").0, 200, "{host}");
    }
}

#[test]
fn an_rpc_host_without_a_port_is_asked_on_the_networks_api_port() {
    // Once `--rpc 127.0.0.1` talked to port 80.
    let out = minichain()
        .args(["status", "--network", "regtest", "--rpc", "127.0.0.1", "--rpc-token", "x"])
        .env_remove("MINICHAIN_RPC")
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    if out.status.success() {
        return; // a regtest node happens to run on this host's default port: it answered
    }
    assert!(said.contains("127.0.0.1:18443"), "{said}");
}

#[test]
fn the_external_address_is_logged_at_start_as_the_address_to_join() {
    use crate::harness::{log_line, logging_node, node_process};
    let dir = tempfile::tempdir().unwrap();
    let node = logging_node(
        node_process(dir.path()).args(["--external-addr", "/ip4/203.0.113.7/tcp/9000"]),
    );
    let line = log_line(&node, "advertising --external-addr");
    let addr = line["addr"].as_str().unwrap();
    assert!(addr.starts_with("/ip4/203.0.113.7/tcp/9000/p2p/12D3KooW"), "{line}");
    assert!(line["message"].as_str().unwrap().contains(&format!("--bootstrap {addr}")), "{line}");
}

#[test]
fn a_bootstrap_address_with_the_wrong_peer_id_is_named_once_and_not_dialled_by_kademlia() {
    use crate::harness::{addrs_of, logging_node, node_process};
    let (a_dir, b_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = logging_node(&mut node_process(a_dir.path()));
    let (a_addr, _) = addrs_of(&a);
    let (bare, real) = a_addr.split_once("/p2p/").unwrap();
    let wrong = libp2p::PeerId::random().to_string();
    let b = logging_node(
        node_process(b_dir.path()).args(["--bootstrap", &format!("{bare}/p2p/{wrong}")]),
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let mut warned = None;
    let mut after = Vec::new();
    // The first warning, then the lines of the two retries after it (1 s and 2 s).
    while std::time::Instant::now() < deadline {
        let Ok(v) = b.log.recv_timeout(std::time::Duration::from_millis(100)) else {
            if warned
                .as_ref()
                .is_some_and(|(t, _): &(std::time::Instant, _)| t.elapsed().as_secs() >= 4)
            {
                break;
            }
            continue;
        };
        let message = v["message"].as_str().unwrap_or_default().to_owned();
        match &warned {
            None if message.starts_with("the peer at ") => {
                warned = Some((std::time::Instant::now(), v))
            }
            None => assert!(!message.starts_with("dialing peer found by kademlia"), "{v}"),
            Some(_) => after.push(v),
        }
    }
    let (_, line) = warned.expect("no warning about the wrong peer id within a minute");
    assert_eq!(line["level"], "WARN", "{line}");
    assert_eq!(
        (line["expected"].as_str(), line["obtained"].as_str()),
        (Some(wrong.as_str()), Some(real))
    );
    for v in &after {
        let noisy = matches!(v["level"].as_str(), Some("WARN" | "INFO" | "ERROR"))
            && v.to_string().contains(&wrong);
        assert!(!noisy, "retried loudly: {v}");
    }
}

/// The bytes of a file, to see that a command left them alone.
fn bytes(path: &std::path::Path) -> Vec<u8> {
    std::fs::read(path).unwrap()
}

#[test]
fn verify_reads_a_backup_without_writing_and_a_damaged_one_is_one_line() {
    let dir = tempfile::tempdir().unwrap();
    crate::harness::chain_in(dir.path(), 60);
    let db = dir.path().join("chain.redb");
    let verify = || {
        let out = minichain()
            .args(["verify", "--network", "regtest", "--data-dir"])
            .arg(dir.path())
            .output()
            .unwrap();
        (
            out.status.code(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    };
    // Once verify opened the file for writing: its bytes changed under a backup.
    let before = bytes(&db);
    let (code, said) = verify();
    assert_eq!(code, Some(0), "{said}");
    assert!(said.starts_with("ok: regtest chain at height 60"), "{said}");
    assert!(bytes(&db) == before, "verify wrote to the database");
    // Damaged pages: once a backtrace from inside redb, now one line and the bytes as found.
    let mut damaged = before.clone();
    let half = damaged.len() / 2;
    damaged[8192..half].fill(0xff);
    std::fs::write(&db, &damaged).unwrap();
    let (code, said) = verify();
    assert_eq!(code, Some(1), "{said}");
    assert_eq!(said.lines().count(), 1, "{said}");
    assert!(said.contains("chain.redb is damaged") && said.contains("restore a backup"), "{said}");
    assert!(!said.contains("panicked") && !said.contains("RUST_BACKTRACE"), "{said}");
    assert!(bytes(&db) == damaged, "verify changed a damaged file");
    // The node on it: one ERROR line in its log, exit 101, the file untouched.
    let log = dir.path().join("node.log");
    let out = crate::harness::node_process(dir.path())
        .args(["--log-format", "json", "--log-file"])
        .arg(&log)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(101), "{}", String::from_utf8_lossy(&out.stderr));
    let text = std::fs::read_to_string(&log).unwrap();
    let errors: Vec<&str> = text.lines().filter(|l| l.contains("\"ERROR\"")).collect();
    assert_eq!(errors.len(), 1, "{text}");
    assert!(errors[0].contains("chain.redb is damaged"), "{text}");
}
