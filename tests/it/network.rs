//! Real nodes over loopback TCP: discovery, propagation, late sync, partitions, restarts.

use std::collections::HashSet;
use std::time::Duration;

use minichain::node::start;

use crate::harness::{TestNode, config, pay_from_coinbase, spawn, wait_until, wait_until_async};

const LIMIT: Duration = Duration::from_secs(60);

async fn shutdown_all(nodes: Vec<TestNode>) {
    for n in nodes {
        n.handle.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_nodes_bootstrapped_from_one_discover_each_other_through_kademlia() {
    let first = spawn(vec![]).await;
    let boot = first.addr();
    let mut nodes = vec![first];
    for _ in 1..5 {
        nodes.push(spawn(vec![boot.clone()]).await);
    }
    let node0 = nodes[0].handle.peer_id();
    wait_until("every node to know a peer besides node 0", LIMIT, || {
        nodes[1..].iter().all(|n| n.handle.peer_ids().iter().any(|p| *p != node0))
    })
    .await;
    let distinct: HashSet<_> = nodes[1..].iter().flat_map(|n| n.handle.peer_ids()).collect();
    assert!(distinct.len() >= 4, "peers seen: {}", distinct.len());
    shutdown_all(nodes).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peers_dial_each_other_back_and_each_node_learns_where_it_is_reachable() {
    let a = spawn(vec![]).await;
    let alone = a.handle.status();
    assert_eq!(alone.reachability, "unknown", "nobody to ask yet");
    assert!(alone.external_addrs.is_empty(), "nothing advertised before a dial-back");
    let b = spawn(vec![a.addr()]).await;
    let both = [&a, &b];
    // What a peer dialled back is what the node advertises: its listen address.
    wait_until("both nodes found reachable at their address (AutoNAT)", LIMIT, || {
        both.iter().all(|n| {
            let status = n.handle.status();
            status.reachability == "public" && status.external_addrs == [n.addr().to_string()]
        })
    })
    .await;
    for n in both {
        let status = n.handle.status();
        assert!(status.relay_addrs.is_empty(), "no relay slot while reachable");
        assert!(n.handle.peers().iter().all(|p| !p.relayed), "loopback peers are direct");
        assert_eq!(n.handle.peers().len(), 1, "each sees the other, and only the other");
    }
    shutdown_all(vec![a, b]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mined_block_and_a_submitted_transaction_reach_every_node() {
    let first = spawn(vec![]).await;
    let boot = first.addr();
    let mut nodes = vec![first];
    for _ in 1..4 {
        nodes.push(spawn(vec![boot.clone()]).await);
    }
    wait_until("every node connected", LIMIT, || {
        nodes.iter().all(|n| !n.handle.peer_ids().is_empty())
    })
    .await;
    // 101 blocks so the first coinbase matures; mined on node 1, announced by gossip.
    nodes[1].handle.mine(101, None).await.unwrap();
    let tip = nodes[1].tip();
    wait_until("all nodes at the mined tip", LIMIT, || nodes.iter().all(|n| n.tip() == tip)).await;
    // A single new block propagates by gossip alone.
    let hash = nodes[2].handle.mine(1, None).await.unwrap()[0].to_string();
    wait_until("the new block everywhere", LIMIT, || nodes.iter().all(|n| n.tip() == hash)).await;

    let tx = pay_from_coinbase(1, 7);
    let txid = nodes[3].handle.submit_tx(tx).await.unwrap();
    for n in &nodes {
        wait_until_async("the transaction in every mempool", LIMIT, || async {
            n.handle.mempool().await.unwrap().txs.iter().any(|e| e.txid == txid.to_string())
        })
        .await;
    }
    // Mined on another node, it leaves every mempool.
    nodes[0].handle.mine(1, None).await.unwrap();
    for n in &nodes {
        wait_until_async("the mined transaction out of every mempool", LIMIT, || async {
            n.handle.mempool().await.unwrap().txs.is_empty()
        })
        .await;
    }
    shutdown_all(nodes).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_started_after_500_blocks_syncs_to_the_same_tip() {
    let miner = spawn(vec![]).await;
    miner.handle.mine(500, None).await.unwrap();
    assert_eq!(miner.height(), 500);
    let late = spawn(vec![miner.addr()]).await;
    // The last batches may still be in flight for a moment after the tip is reached.
    wait_until("the late joiner at the miner's tip, done syncing", LIMIT, || {
        late.tip() == miner.tip() && !late.handle.status().syncing
    })
    .await;
    assert_eq!(late.height(), 500);
    shutdown_all(vec![miner, late]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partitioned_groups_converge_on_the_most_work_tip_and_the_losers_transactions_return() {
    let a0 = spawn(vec![]).await;
    let boot = a0.addr();
    let a1 = spawn(vec![boot.clone()]).await;
    let b0 = spawn(vec![boot.clone()]).await;
    let b1 = spawn(vec![b0.addr()]).await;
    wait_until("each group connected inside", LIMIT, || {
        a1.handle.peer_ids().contains(&a0.handle.peer_id())
            && b1.handle.peer_ids().contains(&b0.handle.peer_id())
    })
    .await;
    a0.handle.mine(101, None).await.unwrap();
    let all = [&a0, &a1, &b0, &b1];
    let tip = a0.tip();
    wait_until("a shared prefix of 101 blocks", LIMIT, || all.iter().all(|n| n.tip() == tip)).await;

    // Partition: every A node bans every B node and the other way round.
    for a in [&a0, &a1] {
        for b in [&b0, &b1] {
            a.handle.ban(b.handle.peer_id(), "test partition").await.unwrap();
            b.handle.ban(a.handle.peer_id(), "test partition").await.unwrap();
        }
    }
    let (a_ids, b_ids) =
        ([a0.handle.peer_id(), a1.handle.peer_id()], [b0.handle.peer_id(), b1.handle.peer_id()]);
    wait_until("the groups apart", LIMIT, || {
        [&a0, &a1].iter().all(|n| n.handle.peer_ids().iter().all(|p| !b_ids.contains(p)))
            && [&b0, &b1].iter().all(|n| n.handle.peer_ids().iter().all(|p| !a_ids.contains(p)))
    })
    .await;

    // Group A: a transaction and 2 blocks. Group B: 4 blocks, more work.
    let txid = a1.handle.submit_tx(pay_from_coinbase(1, 9)).await.unwrap();
    wait_until_async("the tx at a0", LIMIT, || async {
        a0.handle.mempool().await.unwrap().txs.iter().any(|e| e.txid == txid.to_string())
    })
    .await;
    a0.handle.mine(2, None).await.unwrap();
    wait_until_async("the tx mined in A", LIMIT, || async {
        a1.handle.mempool().await.unwrap().txs.is_empty()
    })
    .await;
    b1.handle.mine(4, None).await.unwrap();
    let winner = b1.tip();
    assert_eq!(b1.height(), 105);
    wait_until("b0 on B's tip", LIMIT, || b0.tip() == winner).await;
    assert_eq!(a0.height(), 103);

    // Heal.
    for a in [&a0, &a1] {
        for b in [&b0, &b1] {
            a.handle.unban(b.handle.peer_id()).await.unwrap();
            b.handle.unban(a.handle.peer_id()).await.unwrap();
        }
    }
    a0.handle.dial(b0.addr()).await.unwrap();
    wait_until("every node on the most-work tip", LIMIT, || all.iter().all(|n| n.tip() == winner))
        .await;
    for n in [&a0, &a1] {
        wait_until_async("the loser's transaction back in the mempool", LIMIT, || async {
            n.handle.mempool().await.unwrap().txs.iter().any(|e| e.txid == txid.to_string())
        })
        .await;
    }
    shutdown_all(vec![a0, a1, b0, b1]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_node_keeps_its_identity_and_chain_and_catches_up() {
    let miner = spawn(vec![]).await;
    let node = spawn(vec![miner.addr()]).await;
    miner.handle.mine(20, None).await.unwrap();
    wait_until("the node at height 20", LIMIT, || node.height() == 20).await;
    let id = node.handle.peer_id();
    let TestNode { handle, dir } = node;
    handle.shutdown().await;

    miner.handle.mine(15, None).await.unwrap();
    let handle = start(config(dir.path(), vec![miner.addr()])).await.unwrap();
    let node = TestNode { handle, dir };
    assert_eq!(node.handle.peer_id(), id, "peer id survives a restart");
    assert!(node.height() >= 20, "chain survives a restart");
    wait_until("the restarted node caught up", LIMIT, || node.tip() == miner.tip()).await;
    assert_eq!(node.height(), 35);
    shutdown_all(vec![miner, node]).await;
}
