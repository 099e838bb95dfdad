//! Runs scripts/multihost.sh (network namespaces, one node per "host"), plain and with
//! `--nat`. They need root, iproute2 and (for NAT) nftables, which CI has: a machine
//! without them fails the tests, unless the run opts out with `MINICHAIN_SKIP_MULTIHOST=1`
//! (then they say that they skipped).

use std::process::Command;

/// Skips with `why` if the run opted out, else fails: a silent skip would hide the test.
fn cannot_run(why: &str) {
    if std::env::var("MINICHAIN_SKIP_MULTIHOST").is_ok_and(|v| v == "1") {
        eprintln!("SKIPPED multihost test (MINICHAIN_SKIP_MULTIHOST=1): {why}");
    } else {
        panic!("multihost test cannot run: {why} (set MINICHAIN_SKIP_MULTIHOST=1 to skip it)");
    }
}

/// Runs scripts/multihost.sh with `args`; its stdout if it passed, `None` if it could not
/// run here and the run opted out.
fn multihost(args: &[&str], needs: &[&str]) -> Option<String> {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let has = |tool: &str| {
        let flag = if tool == "nft" { "--version" } else { "-V" };
        Command::new(tool).arg(flag).output().is_ok_and(|o| o.status.success())
    };
    let missing: Vec<&str> = needs.iter().copied().filter(|t| !has(t)).collect();
    if !root || !missing.is_empty() {
        cannot_run(&format!("needs root and {needs:?} (root={root}, missing={missing:?})"));
        return None;
    }
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/multihost.sh");
    let out = Command::new("bash")
        .arg(script)
        .args(["--bin", env!("CARGO_BIN_EXE_minichain")])
        .args(args)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    if out.status.code() == Some(77) {
        cannot_run(stderr.trim());
        return None;
    }
    assert!(out.status.success(), "multihost.sh {args:?} failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains("all checks passed"), "{stdout}");
    Some(stdout)
}

#[test]
fn hosts_in_network_namespaces_converge_and_a_cut_off_host_catches_up() {
    let Some(stdout) = multihost(&[], &["ip"]) else { return };
    // Hosts started before their bootstrap peer join it once it is up.
    assert!(stdout.contains("ok: host 2 retries its bootstrap peer, not up yet"), "{stdout}");
    assert!(stdout.contains("ok: host 1, up late, joined by every other host"), "{stdout}");
    assert!(stdout.contains("ok: host 3 caught up to height 35"), "{stdout}");
    // One host holding 1,000 idle connections does not shut another out.
    assert!(stdout.contains("ok: host 3 joined host 1 during the flood"), "{stdout}");
    assert!(stdout.contains("ok: host 3 synced to height 35 during the flood"), "{stdout}");
    // SIGKILL and an immediate restart with the same key: gossip flows both ways.
    assert!(stdout.contains("ok: host 2's new block reached host 1"), "{stdout}");
    assert!(stdout.contains("ok: host 1's new block reached host 2"), "{stdout}");
    // Everyone stopped; without --bootstrap, the peer books bring the others together.
    assert!(stdout.contains("reconnected from their peer books"), "{stdout}");
}

#[test]
fn hosts_behind_nat_learn_it_take_relay_slots_and_punch_through_to_each_other() {
    let Some(stdout) = multihost(&["--nat"], &["ip", "nft"]) else { return };
    // AutoNAT's verdicts, in the logs and the status.
    assert!(stdout.contains("ok: host 1 reachable (AutoNAT)"), "{stdout}");
    assert!(stdout.contains("ok: host 3 not reachable from outside (AutoNAT)"), "{stdout}");
    assert!(stdout.contains("ok: host 4 reports private in its status"), "{stdout}");
    assert!(stdout.contains("ok: host 3 holds a relay slot"), "{stdout}");
    // Blocks mined behind NAT reach everyone; the NATed hosts end up directly connected
    // and keep exchanging blocks once their bootstrap host is gone.
    assert!(
        stdout.contains("ok: a block mined behind NAT (host 4) reached every host"),
        "{stdout}"
    );
    assert!(stdout.contains("ok: hosts 3 and 4 connected directly (hole punch)"), "{stdout}");
    assert!(stdout.contains("direct connection through hole punching (DCUtR)"), "{stdout}");
    assert!(stdout.contains("ok: host 4's block reached host 3 without host 1"), "{stdout}");
}
