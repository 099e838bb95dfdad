//! Joining and rejoining: a bootstrap peer that comes up late, and a network whose nodes
//! all stopped and come back without any `--bootstrap` (the peer book).

use std::collections::BTreeSet;
use std::time::Duration;

use libp2p::{Multiaddr, PeerId};
use minichain::node::{NodeHandle, start};

use crate::harness::{config, wait_until};

/// A loopback port nothing listens on right now.
fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

fn on_port(port: u16) -> Multiaddr {
    format!("/ip4/127.0.0.1/tcp/{port}").parse().unwrap()
}

/// A regtest node in `dir` listening on `port`, bootstrapped from `bootstrap`.
async fn node_at(dir: &std::path::Path, port: u16, bootstrap: Vec<Multiaddr>) -> NodeHandle {
    let mut cfg = config(dir, bootstrap);
    cfg.listen = vec![on_port(port)];
    start(cfg).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bootstrap_peer_that_comes_up_late_is_joined_as_soon_as_it_is_up() {
    let (a_dir, b_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let port = free_port();
    // The README's HOST:PORT form, before anything listens there.
    let a = node_at(a_dir.path(), free_port(), vec![on_port(port)]).await;
    // The point of this test: the peer is not there for the first dials.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(a.peer_ids().is_empty());
    let b = node_at(b_dir.path(), port, vec![]).await;
    let b_id = b.peer_id();
    wait_until("the late bootstrap peer to be joined", Duration::from_secs(30), || {
        a.peer_ids().contains(&b_id)
    })
    .await;
    // It drops and comes back: the node reconnects by itself.
    b.shutdown().await;
    wait_until("the drop to be seen", Duration::from_secs(30), || a.peer_ids().is_empty()).await;
    let b = node_at(b_dir.path(), port, vec![]).await;
    wait_until("the bootstrap peer to be rejoined", Duration::from_secs(30), || {
        a.peer_ids().contains(&b_id)
    })
    .await;
    b.shutdown().await;
    a.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_nodes_that_all_stopped_find_each_other_again_without_bootstrap() {
    let dirs: Vec<tempfile::TempDir> = (0..4).map(|_| tempfile::tempdir().unwrap()).collect();
    let ports: Vec<u16> = (0..4).map(|_| free_port()).collect();
    let a = node_at(dirs[0].path(), ports[0], vec![]).await;
    let boot = vec![a.listen_addrs()[0].clone()];
    let mut others = Vec::new();
    for i in 1..4 {
        others.push(node_at(dirs[i].path(), ports[i], boot.clone()).await);
    }
    let ids: BTreeSet<PeerId> = others.iter().map(NodeHandle::peer_id).collect();
    // B, C and D learn of each other through A (Kademlia) and connect.
    wait_until("B, C and D to be connected to each other", Duration::from_secs(60), || {
        others.iter().all(|n| ids.iter().filter(|p| n.peer_ids().contains(p)).count() == 2)
    })
    .await;
    for n in others {
        n.shutdown().await;
    }
    a.shutdown().await;
    for dir in &dirs[1..] {
        assert!(dir.path().join("peers.json").is_file(), "the peer book was saved at shutdown");
    }
    // A stays down; B, C and D come back on their data dirs with no --bootstrap.
    let mut back = Vec::new();
    for i in 1..4 {
        back.push(node_at(dirs[i].path(), ports[i], vec![]).await);
    }
    wait_until("B, C and D to reconnect from their peer books", Duration::from_secs(15), || {
        back.iter().all(|n| ids.iter().filter(|p| n.peer_ids().contains(p)).count() == 2)
    })
    .await;
    for n in back {
        n.shutdown().await;
    }
}

/// `minichain node` on regtest in `dir` with fixed ports, bootstrapped from `boot`.
fn node_process_at(
    dir: &std::path::Path,
    p2p: u16,
    rpc: u16,
    boot: &Multiaddr,
) -> std::process::Child {
    std::process::Command::new(env!("CARGO_BIN_EXE_minichain"))
        .args(["node", "--network", "regtest", "--listen"])
        .arg(on_port(p2p).to_string())
        .args(["--rpc", &format!("127.0.0.1:{rpc}"), "--bootstrap"])
        .arg(boot.to_string())
        .arg("--data-dir")
        .arg(dir)
        .env_remove("RUST_LOG")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_killed_with_sigkill_and_restarted_at_once_keeps_gossiping_both_ways() {
    let b_dir = tempfile::tempdir().unwrap();
    let b = node_at(b_dir.path(), free_port(), vec![]).await;
    let boot = b.listen_addrs()[0].clone();
    let a_dir = tempfile::tempdir().unwrap();
    let (p2p, rpc) = (free_port(), free_port());
    let mut a = node_process_at(a_dir.path(), p2p, rpc, &boot);
    wait_until("A connected to B", Duration::from_secs(30), || b.peer_ids().len() == 1).await;
    let a_id = b.peer_ids()[0];
    a.kill().unwrap(); // SIGKILL: no clean shutdown, the key and data stay as they were
    a.wait().unwrap();
    let mut a = node_process_at(a_dir.path(), p2p, rpc, &boot);
    let http = reqwest::Client::new();
    let status = format!("http://127.0.0.1:{rpc}/status");
    let a_height = || async {
        let r = http.get(&status).send().await.ok()?;
        r.json::<serde_json::Value>().await.ok()?["height"].as_u64()
    };
    crate::harness::wait_until_async("A answering again", Duration::from_secs(30), || async {
        a_height().await.is_some()
    })
    .await;
    wait_until("B to see A again", Duration::from_secs(30), || b.peer_ids().contains(&a_id)).await;
    // B -> A: a block B mines reaches A.
    b.mine(1, None).await.unwrap();
    crate::harness::wait_until_async("B's block at A", Duration::from_secs(30), || async {
        a_height().await == Some(1)
    })
    .await;
    // A -> B: a block A mines reaches B.
    let token = minichain::rpc::auth::read_cookie(a_dir.path()).unwrap();
    let mined = http
        .post(format!("http://127.0.0.1:{rpc}/mine"))
        .bearer_auth(token)
        .json(&serde_json::json!({ "blocks": 1 }))
        .send()
        .await
        .unwrap();
    assert!(mined.status().is_success());
    wait_until("A's block at B", Duration::from_secs(30), || b.status().height == 2).await;
    a.kill().unwrap();
    a.wait().unwrap();
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_inbound_slots_are_full_the_least_useful_inbound_peer_gives_way() {
    if std::env::var_os("RUST_LOG").is_some() {
        minichain::logging::init(false, minichain::logging::LogFormat::Text, None);
    }
    let dirs: Vec<tempfile::TempDir> = (0..4).map(|_| tempfile::tempdir().unwrap()).collect();
    let mut cfg = config(dirs[0].path(), vec![]);
    cfg.max_inbound = 2;
    let a = start(cfg).await.unwrap();
    let a_addr = a.listen_addrs()[0].clone();
    let (useful, idle, newcomer) = (
        node_at(dirs[1].path(), free_port(), vec![]).await,
        node_at(dirs[2].path(), free_port(), vec![]).await,
        node_at(dirs[3].path(), free_port(), vec![]).await,
    );
    // The useful peer connects first and gives A a block.
    useful.dial(a_addr.clone()).await.unwrap();
    wait_until("useful connected", Duration::from_secs(30), || a.peer_ids().len() == 1).await;
    useful.mine(1, None).await.unwrap();
    wait_until("A to take the useful peer's block", Duration::from_secs(30), || {
        a.status().height == 1
    })
    .await;
    // An idle peer fills the second slot; a newcomer then needs one.
    idle.dial(a_addr.clone()).await.unwrap();
    wait_until("idle connected", Duration::from_secs(30), || a.peer_ids().len() == 2).await;
    newcomer.dial(a_addr).await.unwrap();
    let (u, i, n) = (useful.peer_id(), idle.peer_id(), newcomer.peer_id());
    wait_until("the idle peer to give way to the newcomer", Duration::from_secs(30), || {
        let peers = a.peer_ids();
        peers.contains(&u) && peers.contains(&n) && !peers.contains(&i)
    })
    .await;
    for node in [newcomer, idle, useful, a] {
        node.shutdown().await;
    }
}
