//! Runs scripts/multihost.sh (network namespaces, one node per "host") when the machine
//! allows it: root and iproute2. Otherwise it says that it skipped.

use std::process::Command;

#[test]
fn hosts_in_network_namespaces_converge_and_a_cut_off_host_catches_up() {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let has_ip = Command::new("ip").arg("-V").output().is_ok_and(|o| o.status.success());
    if !root || !has_ip {
        eprintln!("SKIPPED multihost test: needs root and iproute2 (root={root}, ip={has_ip})");
        return;
    }
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/multihost.sh");
    let out = Command::new("bash")
        .arg(script)
        .args(["--bin", env!("CARGO_BIN_EXE_minichain")])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if out.status.code() == Some(77) {
        eprintln!("SKIPPED multihost test: {}", stderr.trim());
        return;
    }
    assert!(out.status.success(), "multihost.sh failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains("all checks passed"), "{stdout}");
    assert!(stdout.contains("host 3 caught up to height 35"), "{stdout}");
}
