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
