//! The `minichain` binary as an operator runs it.

use std::process::Command;

use minichain::consensus::Network;
use minichain::db::Store;

use crate::harness::{LoggingNode, chain_in, log_line, log_lines_until, logging_node};

fn minichain() -> Command {
    Command::new(env!("CARGO_BIN_EXE_minichain"))
}

#[test]
fn verify_passes_on_a_consistent_store() {
    let dir = tempfile::tempdir().unwrap();
    chain_in(dir.path(), 20);
    let out = minichain().args(["verify", "--data-dir"]).arg(dir.path()).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("regtest chain at height 20"), "{stdout}");
    assert!(stdout.contains("20 unspent outputs match"), "{stdout}");
}

#[test]
fn verify_fails_clearly_on_a_missing_data_dir() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nothing-here");
    let out = minichain().args(["verify", "--data-dir"]).arg(&missing).output().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no database at"), "{stderr}");
    assert!(!missing.exists(), "verify must not create a data dir");
}

#[test]
fn verify_fails_on_a_garbage_database_without_touching_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("chain.redb");
    std::fs::write(&path, b"definitely not a redb file").unwrap();
    let out = minichain().args(["verify", "--data-dir"]).arg(dir.path()).output().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.starts_with("error: cannot open the database"), "{stderr}");
    assert_eq!(std::fs::read(&path).unwrap(), b"definitely not a redb file");
}

#[test]
fn verify_reports_a_tampered_utxo_set_and_exits_non_zero() {
    use minichain::primitives::{Coin, OutPoint, TxOut, Txid};
    use minichain::storage::{ChainStore, ChainWrite, Step, UtxoDiff};

    let dir = tempfile::tempdir().unwrap();
    chain_in(dir.path(), 5);
    {
        let store = Store::open(&dir.path().join("chain.redb"), Network::Regtest).unwrap();
        let tip = store.tip().unwrap().unwrap();
        let undo = store.undo(&tip).unwrap().unwrap();
        let forged =
            Coin { output: TxOut { value: 1_000, pubkey: [7; 32] }, height: 5, is_coinbase: false };
        let diff = UtxoDiff {
            spent: vec![],
            created: vec![(OutPoint { txid: Txid([9; 32]), vout: 0 }, forged)],
        };
        let step =
            Step::Connect { hash: tip, height: 5, diff, undo, txids: vec![], owners: vec![] };
        store
            .apply(&ChainWrite { steps: vec![step], tip: Some(tip), ..Default::default() })
            .unwrap();
    }
    let out = minichain().args(["verify", "--data-dir"]).arg(dir.path()).output().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("UTXO set differs"), "{stderr}");
    assert!(stderr.contains("1 extra"), "{stderr}");
}

/// Runs `minichain node` on `dir` and expects it to refuse with `message`, exit code 1,
/// and leave every file in the directory byte-for-byte as it was.
fn node_refuses(dir: &std::path::Path, network: &str, message: &str) {
    let before: Vec<(std::path::PathBuf, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .map(|p| (p.clone(), std::fs::read(&p).unwrap()))
        .collect();
    let out = crate::harness::node_process_on(network, dir).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "stderr: {stderr}");
    assert!(stderr.contains(message), "expected '{message}' in: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    for (path, bytes) in before {
        assert!(std::fs::read(&path).unwrap() == bytes, "{} was changed", path.display());
    }
}

#[test]
fn damaged_or_foreign_data_is_refused_clearly_and_left_untouched() {
    // A database cut off in the middle (a disk that filled up, a bad copy).
    let truncated = tempfile::tempdir().unwrap();
    chain_in(truncated.path(), 30);
    let db = truncated.path().join("chain.redb");
    let bytes = std::fs::read(&db).unwrap();
    std::fs::write(&db, &bytes[..bytes.len() / 2]).unwrap();
    node_refuses(truncated.path(), "regtest", "cannot open the database");

    // Garbage where the database should be.
    let garbage = tempfile::tempdir().unwrap();
    std::fs::write(garbage.path().join("chain.redb"), vec![0x5a; 4096]).unwrap();
    node_refuses(garbage.path(), "regtest", "cannot open the database");

    // The other network's data dir.
    let other = tempfile::tempdir().unwrap();
    chain_in(other.path(), 3);
    node_refuses(other.path(), "devnet", "regtest");

    // Wallet files with bad contents: clear one-line errors, files untouched.
    let dir = tempfile::tempdir().unwrap();
    let cases: [(&str, &[u8], &str); 3] = [
        ("not-json.json", b"\x00\x01garbage", "wallet"),
        ("bad-secret.json", br#"{"network":"regtest","secret":"zz"}"#, "secret is not 64 hex digits"),
        ("devnet.json", br#"{"network":"devnet","secret":"0101010101010101010101010101010101010101010101010101010101010101"}"#, "devnet"),
    ];
    for (name, contents, message) in cases {
        let path = dir.path().join(name);
        std::fs::write(&path, contents).unwrap();
        let out = minichain()
            .args(["wallet", "address", "--network", "regtest", "--wallet"])
            .arg(&path)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{name}: {stderr}");
        assert!(stderr.contains(message), "{name}: expected '{message}' in {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
        assert!(std::fs::read(&path).unwrap() == contents, "{name} was changed");
    }
}

#[test]
fn a_block_argument_is_a_height_or_a_hash_and_nothing_else() {
    // Checked before any request: no node needs to run (port 9 has none).
    for bad in ["-1", "1.5", "12a", " 1", "0x10", "99999999999"] {
        let out = minichain().args(["block", "--rpc", "127.0.0.1:9", "--", bad]).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{bad}: {stderr}");
        assert!(
            stderr.contains("neither a height nor a 64-hex-digit block hash")
                || stderr.contains("out of range"),
            "{bad}: {stderr}"
        );
        assert!(!stderr.contains("connect"), "{bad} reached the network: {stderr}");
    }
    // Without `--`, `-1` is still a height argument, not an unknown flag.
    let out = minichain().args(["block", "-1", "--rpc", "127.0.0.1:9"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("'-1' is neither a height"), "{stderr}");
}

#[test]
fn block_tip_shows_the_tip_as_blocks_tip_does() {
    let n = api_node(&[]);
    n.run(&["mine", "--blocks", "3"]);
    let tip = n.json(&["block", "tip"]);
    assert_eq!(tip["height"], 3, "{tip}");
    assert_eq!(n.json(&["block", "3"]), tip);
}

#[test]
fn help_lists_the_networks_and_hides_internal_commands() {
    let out = minichain().arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(help.contains("status") && help.contains("node"), "{help}");
    assert!(!help.contains("bench-chain") && !help.contains("bench-hash"), "{help}");
    // Hidden, not gone: scripts/bench.sh runs them.
    assert!(minichain().args(["bench-chain", "--help"]).output().unwrap().status.success());
    let out = minichain().args(["node", "--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(help.contains("possible values: regtest, devnet"), "{help}");
    let out = minichain().args(["status", "--network", "mainnet"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("mainnet") && stderr.contains("regtest, devnet"), "{stderr}");
}

#[test]
fn boolean_environment_variables_take_1_and_0_as_well_as_true_and_false() {
    let dir = tempfile::tempdir().unwrap();
    let node = || crate::harness::node_process(dir.path());
    let out = node().env("MINICHAIN_MINE", "perhaps").output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("perhaps"), "{stderr}");
    // `1` turns mining on: a regtest node mines its first block at once.
    let node = logging_node(node().env("MINICHAIN_MINE", "1"));
    log_line(&node, "mined block");
}

#[test]
fn version_names_the_commit_it_was_built_from() {
    let out = minichain().arg("--version").output().unwrap();
    let version = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert!(
        version.starts_with(concat!("minichain ", env!("CARGO_PKG_VERSION"), " (")),
        "{version}"
    );
    let head = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned());
    match head {
        Some(head) => assert!(version.ends_with(&format!("({head})")), "{version} vs {head}"),
        None => assert!(version.ends_with("(unknown commit)"), "{version}"),
    }
}

#[test]
fn wait_lets_a_client_command_outlast_a_node_that_is_still_starting() {
    use std::process::Stdio;
    use std::time::{Duration, Instant};
    // A port the kernel says is free now, for a node that starts after the client.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let rpc = format!("127.0.0.1:{port}");
    let started = Instant::now();
    let out = minichain()
        .args(["status", "--network", "regtest", "--rpc", &rpc, "--wait", "1"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("did not come up within 1 s"), "{stderr}");
    assert!(started.elapsed() < Duration::from_secs(30), "--wait 1 waited {:?}", started.elapsed());
    let client = minichain()
        .args(["status", "--network", "regtest", "--rpc", &rpc, "--json", "--wait", "60"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500)); // the client is waiting now
    let dir = tempfile::tempdir().unwrap();
    let mut node = Command::new(env!("CARGO_BIN_EXE_minichain"))
        .args(["node", "--network", "regtest", "--listen", "/ip4/127.0.0.1/tcp/0", "--rpc", &rpc])
        .arg("--data-dir")
        .arg(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let out = client.wait_with_output().unwrap();
    let _ = node.kill();
    let _ = node.wait();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("\"network\":\"regtest\""), "{stdout}");
}

#[test]
fn peer_lines_say_how_many_peers_remain_and_why_one_left_in_plain_text() {
    let (a_dir, b_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = logging_node(&mut crate::harness::node_process(a_dir.path()));
    let addr = log_line(&a, "listening")["addr"].as_str().unwrap().to_owned();
    let b = logging_node(crate::harness::node_process(b_dir.path()).args(["--bootstrap", &addr]));
    let joined = log_line(&b, "peer connected");
    assert_eq!(joined["peers"], 1, "{joined}");
    assert_eq!(joined["message"], "peer connected (1 connected)", "{joined}");
    drop(a);
    let left = log_line(&b, "peer disconnected");
    assert_eq!(left["peers"], 0, "{left}");
    let cause = left["cause"].as_str().unwrap_or_else(|| panic!("cause is not text: {left}"));
    // A peer that stops is no "Connection error: I/O error".
    assert_eq!(cause, "closed by the peer", "{left}");
    let message = left["message"].as_str().unwrap();
    assert!(message.starts_with("peer disconnected (0 left): "), "{left}");
}

/// A regtest node process with JSON logs, and the client arguments that reach its API.
struct ApiNode {
    node: LoggingNode,
    dir: tempfile::TempDir,
    conn: Vec<String>,
}

fn api_node(extra: &[&str]) -> ApiNode {
    let dir = tempfile::tempdir().unwrap();
    let node = logging_node(crate::harness::node_process(dir.path()).args(extra));
    let rpc = log_line(&node, "HTTP API listening")["addr"].as_str().unwrap().to_owned();
    let data_dir = dir.path().to_str().unwrap().to_owned();
    let conn = ["--network", "regtest", "--rpc", &rpc, "--data-dir", &data_dir].map(String::from);
    ApiNode { node, dir, conn: conn.to_vec() }
}

impl ApiNode {
    /// Runs `minichain <args>` against this node; panics with its stderr if it fails.
    fn run(&self, args: &[&str]) -> String {
        let out = self.try_run(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "minichain {args:?}: {stderr}");
        String::from_utf8(out.stdout).unwrap()
    }

    fn try_run(&self, args: &[&str]) -> std::process::Output {
        minichain().args(args).args(&self.conn).output().unwrap()
    }

    fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut args = args.to_vec();
        args.push("--json");
        serde_json::from_str(&self.run(&args)).unwrap()
    }
}

#[test]
fn status_summarises_chain_difficulty_work_peers_mempool_disk_and_uptime() {
    let n = api_node(&[]);
    n.run(&["mine", "--blocks", "3"]);
    let text = n.run(&["status"]);
    for line in [
        "height        3, no peers (headers 3)",
        "difficulty    2 hashes per block",
        "chain work    8 hashes",
        "hash rate     not mining",
        "peers         0 (0 in, 0 out, 0 syncing with us)",
        "mempool       0 transactions, 0 B",
    ] {
        assert!(text.lines().any(|l| l == line), "no line {line:?} in:\n{text}");
    }
    let version = format!("version       {}", env!("CARGO_PKG_VERSION"));
    assert!(text.lines().any(|l| l.starts_with(&version)), "no version in:\n{text}");
    assert!(
        text.lines().any(|l| l.starts_with("tip ") && l.ends_with("(mined just now)")),
        "{text}"
    );
    assert!(text.lines().any(|l| l.starts_with("WARNING       no peers")), "{text}");
    for label in ["disk size     ", "uptime        ", "reachability  ", "peer id       "] {
        assert!(text.lines().any(|l| l.starts_with(label)), "no {label:?} in:\n{text}");
    }
    let v = n.json(&["status"]);
    assert_eq!((v["height"].as_u64(), v["headers"].as_u64()), (Some(3), Some(3)), "{v}");
    assert_eq!(v["progress"].as_f64(), Some(1.0), "{v}");
    assert_eq!((v["difficulty"].as_f64(), v["chain_work"].as_f64()), (Some(2.0), Some(8.0)));
    assert!(v["disk_bytes"].as_u64().unwrap() > 0, "{v}");
    assert!(v["uptime_secs"].is_u64(), "{v}");
    assert_eq!((v["peers_in"].as_u64(), v["peers_out"].as_u64()), (Some(0), Some(0)), "{v}");
}

#[test]
fn stop_needs_the_token_then_shuts_the_node_down_cleanly() {
    let mut n = api_node(&[]);
    let refused = n.try_run(&["stop", "--rpc-token", "wrong"]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("wrong API token"));
    n.run(&["status"]); // still running
    assert_eq!(n.run(&["stop"]).trim(), "minichain stopping");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let status = loop {
        if let Some(status) = n.node.child.try_wait().unwrap() {
            break status;
        }
        assert!(std::time::Instant::now() < deadline, "the node did not stop within a minute");
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert!(status.success(), "the node exited with {status}");
    assert!(!n.dir.path().join(".cookie").exists(), "a clean stop removes the cookie");
}

#[test]
fn balance_of_a_wallet_splits_spendable_immature_and_unconfirmed() {
    let n = api_node(&[]);
    let wallet = n.dir.path().join("mine.json"); // wallet.json is the node's own
    let wallet = wallet.to_str().unwrap();
    let new_wallet = |path: &str| {
        let out = minichain()
            .args(["wallet", "new", "--network", "regtest", "--wallet", path, "--no-passphrase"])
            .output()
            .unwrap();
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    };
    let addr = &new_wallet(wallet);
    n.run(&["mine", "--blocks", "101", "--to", addr]);
    let before = n.json(&["balance", "--wallet", wallet]);
    assert_eq!(before["address"], addr.as_str());
    assert_eq!(before["confirmed"], 101 * 5_000_000_000_u64, "{before}");
    let (spendable, immature) =
        (before["spendable"].as_u64().unwrap(), before["immature"].as_u64().unwrap());
    assert!(spendable >= 5_000_000_000 && immature > 0, "{before}");
    assert_eq!(spendable + immature, 101 * 5_000_000_000, "{before}");
    let other = n.dir.path().join("other.json");
    let other = &new_wallet(other.to_str().unwrap());
    let sent = n.json(&["send", "--wallet", wallet, "--to", other, "--amount", "1"]);
    let fee = sent["fee"].as_i64().unwrap();
    assert!(fee > 0 && fee < 100_000, "the estimated fee of an empty regtest: {sent}");
    let after = n.json(&["balance", "--wallet", wallet]);
    let paid = 100_000_000 + fee; // 1 coin and the estimated fee
    assert_eq!(after["unconfirmed"].as_i64(), Some(-paid), "{after}");
    assert_eq!(after["spendable"].as_u64(), Some(spendable - paid as u64), "{after}");
    assert_eq!(after["immature"].as_u64(), Some(immature), "{after}");
    // The change went to a fresh change address: the first address alone shows its coin
    // spent, the wallet the payment.
    let first = n.json(&["balance", addr]);
    assert_eq!(first["immature"], after["immature"], "{first}");
    assert_eq!(first["unconfirmed"].as_i64(), Some(-5_000_000_000), "{first}");
    assert_eq!(after["addresses"], 2, "{after}");
    let text = n.run(&["balance", "--wallet", wallet]);
    assert!(
        text.contains("spendable")
            && text.contains("immature")
            && text.contains(&format!("unconfirmed  -1.{fee:08} coins")),
        "{text}"
    );
    let neither = n.try_run(&["balance"]);
    assert!(!neither.status.success());
    assert!(String::from_utf8_lossy(&neither.stderr).contains("--wallet"));
}

#[test]
fn completions_are_printed_for_bash_zsh_and_fish() {
    for shell in ["bash", "zsh", "fish"] {
        let out = minichain().args(["completions", shell]).output().unwrap();
        assert!(out.status.success(), "{shell}");
        let script = String::from_utf8(out.stdout).unwrap();
        // fish spells options `-l wallet`; the others `--wallet`.
        for word in ["minichain", "status", "balance", "wallet", "network", "regtest"] {
            assert!(script.contains(word), "{shell} completions lack {word}");
        }
    }
    let out = minichain().args(["completions", "tcsh"]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("possible values: bash"));
}

#[test]
fn the_log_file_gets_every_line_and_is_reopened_on_sighup() {
    let logs = tempfile::tempdir().unwrap();
    let file = logs.path().join("node.log");
    let n = api_node(&["--log-file", file.to_str().unwrap()]);
    n.run(&["mine"]);
    log_line(&n.node, "block connected");
    let read = |p: &std::path::Path| std::fs::read_to_string(p).unwrap_or_default();
    let lines = |p: &std::path::Path| -> Vec<serde_json::Value> {
        read(p).lines().map(|l| serde_json::from_str(l).unwrap()).collect()
    };
    let has = |p: &std::path::Path, message: &str, height: u64| {
        lines(p).iter().any(|v| v["message"] == message && v["height"] == height)
    };
    assert!(lines(&file).iter().any(|v| v["message"] == "HTTP API listening"), "{}", read(&file));
    assert!(has(&file, "block connected", 1), "{}", read(&file));
    // logrotate moves the file away and signals the node.
    let rotated = logs.path().join("node.log.1");
    std::fs::rename(&file, &rotated).unwrap();
    let pid = n.node.child.id().to_string();
    assert!(Command::new("kill").args(["-HUP", &pid]).status().unwrap().success());
    log_line(&n.node, "SIGHUP: log file reopened");
    n.run(&["mine"]);
    log_line(&n.node, "block connected");
    assert!(has(&file, "block connected", 2), "the new file: {}", read(&file));
    assert!(!has(&rotated, "block connected", 2), "the rotated file got a new line");
    assert!(has(&rotated, "block connected", 1));
    n.run(&["status"]); // a hangup does not stop the node
}

#[test]
fn debug_logs_are_one_line_protocol_messages_without_libp2p_dumps() {
    let a = api_node(&[]);
    a.run(&["mine", "--blocks", "40"]);
    let addr = a.json(&["status"])["listen_addrs"][0].as_str().unwrap().to_owned();
    let b = api_node(&["--debug", "--bootstrap", &addr]);
    let lines = log_lines_until(&b.node, "sync complete");
    // The closing line says how much, how long and how fast on average.
    let done = lines.last().unwrap();
    assert_eq!(done["blocks"], 40, "{done}");
    assert!(done["duration_secs"].is_number() && done["blocks_per_s"].is_number(), "{done}");
    assert!(done["message"].as_str().unwrap().contains("blocks/s"), "{done}");
    let messages: Vec<&str> = lines.iter().filter_map(|v| v["message"].as_str()).collect();
    assert!(
        messages.iter().any(|m| m.starts_with("sync request out: ") && m.contains(" blocks ")),
        "no one-line block request among {messages:#?}"
    );
    for v in &lines {
        let raw = v.to_string();
        assert!(
            !raw.contains("PeerId(") && !raw.contains("[[") && !raw.contains("\\n"),
            "a raw dump in the --debug log: {raw}"
        );
    }
}

#[test]
fn snapshot_create_writes_the_utxo_set_at_the_tip_with_its_hash() {
    use minichain::primitives::BlockHash;
    let n = api_node(&[]);
    n.run(&["mine", "--blocks", "4"]);
    let status = n.json(&["status"]);
    let file = n.dir.path().join("utxo.snap");
    let out = file.to_str().unwrap();
    let v = n.json(&["snapshot", "create", "--out", out]);
    assert_eq!((&v["block"], v["height"].as_u64()), (&status["tip"], Some(4)), "{v}");
    // The file is whole and is the snapshot of that hash: four coinbases' coins.
    let hash: BlockHash = v["hash"].as_str().unwrap().parse().unwrap();
    let bytes = std::fs::read(&file).unwrap();
    let mut coins = 0;
    let (info, _) =
        minichain::snapshot::read(&bytes[..], Network::Regtest, Some(&hash), |_, _| coins += 1)
            .unwrap();
    assert_eq!((info.height, info.coins, coins), (4, v["coins"].as_u64().unwrap(), info.coins));
    assert!(coins >= 4, "{coins} coins");
    // Asked again, the same set gives the same hash, in words this time.
    let text = n.run(&["snapshot", "create", "--out", out]);
    assert!(text.lines().any(|l| l == format!("hash    {hash}")), "{text}");
    // A place it cannot be written: one line that says where, and no stray file.
    let bad = n.try_run(&["snapshot", "create", "--out", "/nonexistent/dir/utxo.snap"]);
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(!bad.status.success());
    assert!(stderr.starts_with("error: cannot write /nonexistent/dir/utxo.snap"), "{stderr}");
}
