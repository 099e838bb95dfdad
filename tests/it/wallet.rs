//! The wallet as a user drives it: `wallet new` with a passphrase, receive and change
//! addresses, `wallet restore` from the words on a fresh node, history, and the errors a
//! wrong or missing passphrase gets.

use std::io::Write;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::harness::{LoggingNode, addrs_of, log_lines_of, logging_node, node_process};

fn minichain() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_minichain"));
    cmd.env_remove("MINICHAIN_PASSPHRASE");
    cmd
}

/// A regtest node and the client arguments that reach it.
struct Node {
    process: LoggingNode,
    conn: Vec<String>,
}

fn node(bootstrap: Option<&str>) -> (Node, String, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let (node, p2p) = node_in(dir.path(), bootstrap);
    (node, p2p, dir)
}

fn node_in(dir: &std::path::Path, bootstrap: Option<&str>) -> (Node, String) {
    let mut cmd = node_process(dir);
    if let Some(peer) = bootstrap {
        cmd.args(["--bootstrap", peer]);
    }
    let process = logging_node(&mut cmd);
    let (p2p, rpc) = addrs_of(&process);
    let data_dir = dir.to_str().unwrap().to_owned();
    let conn = ["--network", "regtest", "--rpc", &rpc, "--data-dir", &data_dir].map(String::from);
    (Node { process, conn: conn.to_vec() }, p2p)
}

impl Node {
    fn output(&self, args: &[&str], env: &[(&str, &str)], stdin: Option<&str>) -> Output {
        let mut cmd = minichain();
        cmd.args(args).args(&self.conn).envs(env.iter().copied());
        cmd.stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() });
        let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
        if let Some(text) = stdin {
            // A command that refuses before reading its input closes the pipe early.
            let written = child.stdin.take().unwrap().write_all(text.as_bytes());
            assert!(
                written.as_ref().is_ok()
                    || written.as_ref().is_err_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe),
                "{written:?}"
            );
        }
        child.wait_with_output().unwrap()
    }

    fn json(&self, args: &[&str], env: &[(&str, &str)]) -> Value {
        let mut args = args.to_vec();
        args.push("--json");
        let out = self.output(&args, env, None);
        assert!(
            out.status.success(),
            "minichain {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }

    fn height(&self) -> u64 {
        self.json(&["status"], &[])["height"].as_u64().unwrap()
    }

    /// `minichain stop`, then waits for the process to exit cleanly.
    fn stop(mut self) {
        self.json(&["stop"], &[]);
        let deadline = Instant::now() + Duration::from_secs(60);
        let status = loop {
            if let Some(status) = self.process.child.try_wait().unwrap() {
                break status;
            }
            assert!(Instant::now() < deadline, "the node did not stop within a minute");
            std::thread::sleep(Duration::from_millis(50));
        };
        assert!(status.success(), "the node exited with {status}");
    }
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done() {
        assert!(Instant::now() < deadline, "{what} within a minute");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn new_wallet(path: &str, extra: &[&str], env: &[(&str, &str)]) -> Output {
    minichain()
        .args(["wallet", "new", "--network", "regtest", "--wallet", path, "--json"])
        .args(extra)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

#[test]
fn a_restored_wallet_finds_mined_received_and_change_coins_on_a_fresh_node() {
    let (a, a_p2p, _a_dir) = node(None);
    let dir = tempfile::tempdir().unwrap();
    let pass_file = dir.path().join("pass");
    std::fs::write(&pass_file, "tr0ub4dor&3\n").unwrap();
    let pass_file = pass_file.to_str().unwrap();
    let (w, o) = (dir.path().join("w.json"), dir.path().join("o.json"));
    let (w, o) = (w.to_str().unwrap(), o.to_str().unwrap());
    let out = new_wallet(w, &["--words", "12", "--passphrase-file", pass_file], &[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let created: Value = serde_json::from_slice(&out.stdout).unwrap();
    let words = created["mnemonic"].as_str().unwrap().to_owned();
    assert_eq!(words.split(' ').count(), 12);
    let first = created["address"].as_str().unwrap().to_owned();
    assert!(!std::fs::read_to_string(w).unwrap().contains(&words), "the seed is sealed");
    let out = new_wallet(o, &["--no-passphrase"], &[]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("not encrypted"));
    let other = serde_json::from_slice::<Value>(&out.stdout).unwrap()["address"]
        .as_str()
        .unwrap()
        .to_owned();

    // Mined coins to the first address; then `receive` moves on to a fresh one.
    a.json(&["mine", "--blocks", "101", "--to", &first], &[]);
    a.json(&["mine", "--blocks", "101", "--to", &other], &[]);
    let second = a.json(&["wallet", "receive", "--wallet", w], &[]);
    assert_eq!(second["index"], 1, "{second}");
    let second = second["address"].as_str().unwrap().to_owned();
    assert_eq!(
        a.json(&["wallet", "receive", "--wallet", w], &[])["address"],
        second.as_str(),
        "unused: handed out again"
    );
    // Received from another wallet, and paid out with change.
    a.json(&["send", "--wallet", o, "--to", &second, "--amount", "3"], &[]);
    let no_pass = a.output(&["send", "--wallet", w, "--to", &other, "--amount", "1"], &[], None);
    assert!(!no_pass.status.success());
    let said = String::from_utf8_lossy(&no_pass.stderr);
    assert!(said.contains("is encrypted") && said.contains("--passphrase-file"), "{said}");
    let wrong = a.output(
        &["send", "--wallet", w, "--to", &other, "--amount", "1"],
        &[("MINICHAIN_PASSPHRASE", "guess")],
        None,
    );
    assert!(
        String::from_utf8_lossy(&wrong.stderr).contains("wrong passphrase"),
        "{}",
        String::from_utf8_lossy(&wrong.stderr)
    );
    let paid = a.json(
        &["send", "--wallet", w, "--to", &other, "--amount", "1", "--passphrase-file", pass_file],
        &[],
    );
    let fee = paid["fee"].as_i64().unwrap();
    let paid = paid["txid"].as_str().unwrap().to_owned();
    let history = a.json(&["wallet", "history", "--wallet", w], &[]);
    let pending: Vec<&Value> = history.as_array().unwrap().iter().take(2).collect();
    assert!(pending.iter().all(|p| p["confirmations"] == 0), "pending first: {history}");
    let out = pending.iter().find(|p| p["txid"] == paid.as_str()).expect("the payment out");
    assert_eq!((&out["amount"], &out["fee"]), (&(-(100_000_000 + fee)).into(), &fee.into()));
    let came = pending.iter().find(|p| p["txid"] != paid.as_str()).unwrap();
    assert_eq!(
        (&came["amount"], &came["fee"]),
        (&300_000_000.into(), &Value::Null),
        "not ours to pay"
    );
    a.json(&["mine", "--blocks", "1", "--to", &other], &[]);
    let before = a.json(&["balance", "--wallet", w], &[]);
    let expected = 101 * 5_000_000_000i64 + 300_000_000 - 100_000_000 - fee;
    assert_eq!(before["confirmed"], expected, "{before}");
    assert_eq!(before["addresses"], 3, "two receive, one change: {before}");
    let history = a.json(&["wallet", "history", "--wallet", w], &[]);
    assert_eq!(history.as_array().unwrap().len(), 103, "101 coinbases, one payment in, one out");
    assert_eq!(history[0]["confirmations"], 1, "{history}");

    // A fresh node syncs the chain; the words alone bring the wallet back there.
    let (b, _, _b_dir) = node(Some(&a_p2p));
    let tip = a.height();
    wait_for("the fresh node synced", || b.height() == tip);
    let restored = dir.path().join("restored.json");
    let restored = restored.to_str().unwrap();
    let out = b.output(
        &["wallet", "restore", "--wallet", restored, "--json"],
        &[("MINICHAIN_PASSPHRASE", "another one")],
        Some(&format!("{}\n", words.to_uppercase())),
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let found: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((&found["receive"], &found["change"]), (&2.into(), &1.into()), "{found}");
    assert_eq!(found["confirmed"], expected, "{found}");
    let after = b.json(&["balance", "--wallet", restored], &[]);
    assert_eq!(after, before, "the same wallet, seen from another node");
    // It signs: the restored copy spends, sealed with its own new passphrase.
    let env = [("MINICHAIN_PASSPHRASE", "another one")];
    b.json(&["send", "--wallet", restored, "--to", &other, "--amount", "2"], &env);
    // Restoring over an existing file is refused and leaves it alone.
    let kept = std::fs::read(restored).unwrap();
    let again = b.output(&["wallet", "restore", "--wallet", restored], &env, Some(&words));
    assert!(
        !again.status.success()
            && String::from_utf8_lossy(&again.stderr).contains("already exists")
    );
    assert_eq!(std::fs::read(restored).unwrap(), kept);
    // Bad words get the reason, and no file.
    let bad = dir.path().join("bad.json");
    let typo = words.replacen(words.split(' ').next().unwrap(), "bitcoinz", 1);
    let out = b.output(
        &["wallet", "restore", "--wallet", bad.to_str().unwrap(), "--no-passphrase"],
        &[],
        Some(&typo),
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not a BIP39 seed phrase"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!bad.exists());
}

#[test]
fn a_new_wallet_without_a_passphrase_source_is_refused_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("w.json");
    let out = new_wallet(path.to_str().unwrap(), &[], &[]);
    assert!(!out.status.success());
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("--passphrase-file") && said.contains("--no-passphrase"), "{said}");
    assert!(!path.exists());
    let out = new_wallet(path.to_str().unwrap(), &["--words", "15", "--no-passphrase"], &[]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("12 or 24"));
    // The environment gives it; the file is 0600 and a looser mode is warned about.
    let out = new_wallet(path.to_str().unwrap(), &[], &[("MINICHAIN_PASSPHRASE", "pw")]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let out = minichain()
            .args(["wallet", "address", "--network", "regtest", "--wallet", path.to_str().unwrap()])
            .output()
            .unwrap();
        assert!(out.status.success());
        assert!(String::from_utf8_lossy(&out.stderr).contains("mode 0644"));
    }
    let phrase = minichain()
        .args(["wallet", "phrase", "--network", "regtest", "--wallet", path.to_str().unwrap()])
        .env("MINICHAIN_PASSPHRASE", "pw")
        .output()
        .unwrap();
    let shown = String::from_utf8_lossy(&phrase.stdout);
    assert_eq!(shown.split_whitespace().count(), 24, "{shown}");
}

/// Two unencrypted wallets, `w` (which the tests fund) and `o` (which it pays).
struct Wallets {
    _dir: tempfile::TempDir,
    w: String,
    o: String,
    w_addr: String,
    o_addr: String,
}

impl Wallets {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let addr = |name: &str| {
            let path = dir.path().join(name);
            let out = new_wallet(path.to_str().unwrap(), &["--no-passphrase"], &[]);
            serde_json::from_slice::<Value>(&out.stdout).unwrap()["address"]
                .as_str()
                .unwrap()
                .to_owned()
        };
        let (w_addr, o_addr) = (addr("w.json"), addr("o.json"));
        let path = |name: &str| dir.path().join(name).to_str().unwrap().to_owned();
        Self { w: path("w.json"), o: path("o.json"), _dir: dir, w_addr, o_addr }
    }
}

#[test]
fn a_payment_survives_a_node_restart_and_then_confirms() {
    let dir = tempfile::tempdir().unwrap();
    let (n, _) = node_in(dir.path(), None);
    let wallets = Wallets::new();
    let (w, o) = (wallets.w.as_str(), wallets.o.as_str());
    let (mine_to, pay_to) = (wallets.w_addr.as_str(), wallets.o_addr.as_str());
    n.json(&["mine", "--blocks", "101", "--to", mine_to], &[]);
    let txid = n.json(&["send", "--wallet", w, "--to", pay_to, "--amount", "0.7"], &[])["txid"]
        .as_str()
        .unwrap()
        .to_owned();
    let before = n.json(&["balance", "--wallet", w], &[]);
    n.stop();
    assert!(dir.path().join("mempool.dat").exists(), "saved at shutdown");

    let (n, _) = node_in(dir.path(), None);
    let tx = n.json(&["tx", &txid], &[]);
    assert_eq!(tx["in_mempool"], true, "{tx}");
    assert_eq!(n.json(&["balance", "--wallet", w], &[]), before, "the payment still counts");
    let history = n.json(&["wallet", "history", "--wallet", w], &[]);
    assert_eq!(
        (history[0]["txid"].as_str(), &history[0]["confirmations"]),
        (Some(txid.as_str()), &0.into())
    );
    n.json(&["mine", "--blocks", "1", "--to", mine_to], &[]);
    assert_eq!(n.json(&["balance", "--wallet", o], &[])["confirmed"], 70_000_000);
    assert_eq!(n.json(&["tx", &txid], &[])["confirmations"], 1);
    // Blocks with room to spare: the relay minimum confirms in the next one.
    let fees = n.json(&["fees"], &[]);
    let targets: Vec<(u64, u64, &str)> = fees["estimates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["target"].as_u64().unwrap(),
                e["fee_rate"].as_u64().unwrap(),
                e["basis"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(targets, [(1, 1000, "room"), (3, 1000, "room"), (6, 1000, "room")], "{fees}");
    let table = n.output(&["fees"], &[], None);
    assert!(String::from_utf8_lossy(&table.stdout).contains("relay minimum 1000"));
    // A rate of our own: the fee pays it for the signed size.
    let paid = n.json(
        &["send", "--wallet", w, "--to", pay_to, "--amount", "0.1", "--fee-rate", "5000"],
        &[],
    );
    let tx = n.json(&["tx", paid["txid"].as_str().unwrap()], &[]);
    let size = tx["tx"]["size"].as_u64().unwrap();
    assert_eq!(tx["fee"].as_u64(), Some((5 * size).max(1)), "{tx}");
    for (bad, says) in
        [("--fee-rate=abc", "bad --fee-rate 'abc'"), ("--fee-rate=0", "bad --fee-rate '0'")]
    {
        let out =
            n.output(&["send", "--wallet", w, "--to", pay_to, "--amount", "0.1", bad], &[], None);
        let said = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && said.contains(says), "{said}");
    }
    let both = n.output(
        &[
            "send",
            "--wallet",
            w,
            "--to",
            pay_to,
            "--amount",
            "0.1",
            "--fee",
            "0.001",
            "--fee-rate",
            "5",
        ],
        &[],
        None,
    );
    assert!(String::from_utf8_lossy(&both.stderr).contains("cannot be used with"));
    // A fee 500 times the amount is a typo until --force says otherwise.
    let typo = n.output(
        &["send", "--wallet", w, "--to", pay_to, "--amount", "0.1", "--fee", "50"],
        &[],
        None,
    );
    let said = String::from_utf8_lossy(&typo.stderr);
    assert!(
        !typo.status.success()
            && said.contains("more than the 0.10000000 coins sent")
            && said.contains("--force"),
        "{said}"
    );
    let ceiling = n.output(
        &["send", "--wallet", w, "--to", pay_to, "--amount", "5", "--fee", "0.2"],
        &[],
        None,
    );
    assert!(String::from_utf8_lossy(&ceiling.stderr).contains("ceiling"));
    n.json(
        &["send", "--wallet", w, "--to", pay_to, "--amount", "0.1", "--fee", "0.2", "--force"],
        &[],
    );
    // A damaged file is moved aside and the node starts with an empty mempool.
    let txid2 = n.json(&["send", "--wallet", w, "--to", pay_to, "--amount", "0.1"], &[])["txid"]
        .as_str()
        .unwrap()
        .to_owned();
    n.stop();
    let saved = dir.path().join("mempool.dat");
    let mut bytes = std::fs::read(&saved).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&saved, bytes).unwrap();
    let process = logging_node(&mut node_process(dir.path()));
    let lines = log_lines_of(&process, &["the saved mempool is damaged", "HTTP API listening"]);
    assert!(lines[0]["error"].as_str().unwrap().contains("checksum"), "{}", lines[0]);
    assert!(dir.path().join("mempool.dat.bad").exists(), "moved aside, not deleted");
    let rpc = lines[1]["addr"].as_str().unwrap();
    let data_dir = dir.path().to_str().unwrap();
    let conn = ["--network", "regtest", "--rpc", rpc, "--data-dir", data_dir].map(String::from);
    let n = Node { process, conn: conn.to_vec() };
    assert_eq!(n.json(&["status"], &[])["mempool_size"], 0);
    assert!(!n.output(&["tx", &txid2], &[], None).status.success());
}

#[test]
fn a_bumped_payment_replaces_the_old_one_on_every_node() {
    let (a, a_p2p, _a_dir) = node(None);
    let (b, _, _b_dir) = node(Some(&a_p2p));
    let wallets = Wallets::new();
    let (w, o) = (wallets.w.as_str(), wallets.o.as_str());
    let (mine_to, pay_to) = (wallets.w_addr.as_str(), wallets.o_addr.as_str());
    a.json(&["mine", "--blocks", "101", "--to", mine_to], &[]);
    wait_for("B at height 101", || b.height() == 101);
    // An exact fee (--fee), where other payments pay the estimated rate.
    let sent =
        a.json(&["send", "--wallet", w, "--to", pay_to, "--amount", "1", "--fee", "0.0001"], &[]);
    assert_eq!(sent["fee"], 10_000, "{sent}");
    let old = sent["txid"].as_str().unwrap().to_owned();
    let pending = |n: &Node, txid: &str| {
        let out = n.output(&["tx", txid, "--json"], &[], None);
        out.status.success()
            && serde_json::from_slice::<Value>(&out.stdout).is_ok_and(|v| v["in_mempool"] == true)
    };
    wait_for("the payment in B's mempool", || pending(&b, &old));
    let bumped = a.json(&["wallet", "bumpfee", &old, "--wallet", w], &[]);
    assert_eq!(bumped["fee"], 20_000, "twice the old fee: {bumped}");
    let new = bumped["txid"].as_str().unwrap().to_owned();
    assert_ne!(new, old);
    let gone = |n: &Node, txid: &str| !n.output(&["tx", txid], &[], None).status.success();
    assert!(pending(&a, &new) && gone(&a, &old), "replaced at once where it was sent");
    wait_for("the replacement on B, the old payment gone", || pending(&b, &new) && gone(&b, &old));
    // A second bump below the relay increment is refused by the node, with the rule.
    let low =
        a.output(&["wallet", "bumpfee", &new, "--wallet", w, "--fee", "0.00020001"], &[], None);
    let said = String::from_utf8_lossy(&low.stderr);
    assert!(!low.status.success() && said.contains("replacement must pay at least"), "{said}");
    // Someone else's payment is not ours to bump.
    let theirs = a.output(&["wallet", "bumpfee", &new, "--wallet", o], &[], None);
    assert!(String::from_utf8_lossy(&theirs.stderr).contains("not this wallet's"));
    a.json(&["mine", "--blocks", "1", "--to", mine_to], &[]);
    wait_for("B at height 102", || b.height() == 102);
    assert_eq!(b.json(&["tx", &new], &[])["confirmations"], 1);
    assert_eq!(b.json(&["balance", "--wallet", o], &[])["confirmed"], 100_000_000);
    let history = b.json(&["wallet", "history", "--wallet", w], &[]);
    assert!(history.as_array().unwrap().iter().all(|p| p["txid"] != old.as_str()), "{history}");
    let bumped = history.as_array().unwrap().iter().find(|p| p["txid"] == new.as_str()).unwrap();
    assert_eq!(
        (&bumped["fee"], &bumped["confirmations"]),
        (&20_000.into(), &1.into()),
        "{history}"
    );
    let done = a.output(&["wallet", "bumpfee", &new, "--wallet", w], &[], None);
    assert!(String::from_utf8_lossy(&done.stderr).contains("confirmed already"));
    // A sweep sends everything less the fee, with no change, and leaves zero.
    // At the estimated rate: on a quiet chain, the relay minimum of 1 unit a byte.
    let sweep = a.json(&["send", "--wallet", o, "--to", mine_to, "--all"], &[]);
    let swept = sweep["txid"].as_str().unwrap().to_owned();
    let tx = a.json(&["tx", &swept], &[]);
    assert_eq!(tx["tx"]["outputs"].as_array().unwrap().len(), 1, "no change: {tx}");
    assert_eq!(tx["fee"], sweep["fee"], "{tx}");
    assert_eq!(tx["fee"], tx["tx"]["size"], "{tx}");
    let fee = sweep["fee"].as_u64().unwrap();
    assert_eq!(tx["tx"]["outputs"][0]["value"], 100_000_000 - fee, "{tx}");
    a.json(&["mine", "--blocks", "1", "--to", mine_to], &[]);
    let left = a.json(&["balance", "--wallet", o], &[]);
    assert_eq!(
        (&left["confirmed"], &left["spendable"], &left["unconfirmed"]),
        (&0.into(), &0.into(), &0.into()),
        "{left}"
    );
    let empty = a.output(&["send", "--wallet", o, "--to", mine_to, "--all"], &[], None);
    assert!(String::from_utf8_lossy(&empty.stderr).contains("nothing to sweep"));
}

/// Starts a regtest node in `dir` and returns it with what it said about its payout before
/// its API came up: the "mined coins pay" line, and whether it warned that it created an
/// unencrypted wallet.
fn node_paying(dir: &std::path::Path) -> (Node, Value, bool) {
    let process = logging_node(&mut node_process(dir));
    let deadline = Instant::now() + Duration::from_secs(60);
    let (mut payout, mut created) = (Value::Null, false);
    let rpc = loop {
        let v = process
            .log
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .expect("the node's API within a minute");
        let message = v["message"].as_str().unwrap_or_default();
        if message.starts_with("created the node's wallet") {
            created = v["level"] == "WARN" && message.contains("NOT encrypted");
        } else if message.starts_with("mined coins pay") {
            payout = v.clone();
        } else if message.starts_with("HTTP API listening") {
            break v["addr"].as_str().unwrap().to_owned();
        }
    };
    let data_dir = dir.to_str().unwrap().to_owned();
    let conn = ["--network", "regtest", "--rpc", &rpc, "--data-dir", &data_dir].map(String::from);
    (Node { process, conn: conn.to_vec() }, payout, created)
}

#[test]
fn a_node_mines_to_its_own_wallet_and_the_wallet_commands_spend_it() {
    let dir = tempfile::tempdir().unwrap();
    let (n, payout, created) = node_paying(dir.path());
    assert!(created, "the node created its wallet: {payout}");
    let wallet = dir.path().join("wallet.json");
    let mode = std::os::unix::fs::PermissionsExt::mode(&wallet.metadata().unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600, "the node's wallet is private");
    assert!(!dir.path().join("miner.key").exists(), "no bare key any more");
    let address = payout["address"].as_str().unwrap().to_owned();

    // No --to: the coinbases pay the node's wallet; no --wallet: the commands use it.
    n.json(&["mine", "--blocks", "101"], &[]);
    let balance = n.json(&["balance", "--wallet", wallet.to_str().unwrap()], &[]);
    assert_eq!(balance["confirmed"], 101 * 5_000_000_000_u64, "{balance}");
    let offline = minichain()
        .args(["wallet", "address", "--network", "regtest", "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&offline.stdout).trim(), address, "the same wallet");
    let wallets = Wallets::new();
    let sent = n.json(&["send", "--to", &wallets.o_addr, "--amount", "2"], &[]);
    n.json(&["mine", "--blocks", "1"], &[]);
    assert_eq!(n.json(&["balance", "--wallet", &wallets.o], &[])["confirmed"], 200_000_000);
    let history = n.json(&["wallet", "history"], &[]);
    let payment = history.as_array().unwrap().iter().find(|h| h["txid"] == sent["txid"]);
    assert_eq!(payment.map(|p| &p["confirmations"]), Some(&1.into()), "{history}");

    // A restart keeps paying the same wallet; it is not created again.
    n.stop();
    let (n, again, created) = node_paying(dir.path());
    assert_eq!(again["address"], address.as_str(), "{again}");
    assert!(!created, "the wallet was loaded, not made: {again}");
    n.stop();
}
