//! Scenarios: many nodes in one thread on a virtual clock. Each runs on the seed in
//! `MINICHAIN_SIM_SEED` (default 1); a failing run prints its seed, and
//! `MINICHAIN_SIM_SEED=<seed> cargo test --lib sim::` replays it. `scripts/sim.sh --seeds N`
//! runs them all on N random seeds.

use std::collections::BTreeSet;
use std::time::Duration;

use super::*;
use crate::consensus::BlockError;
use crate::consensus::params::REGTEST;
use crate::core::{Offence, ReplyTo};
use crate::primitives::{COIN, Transaction, TxOut, Txid};
use crate::testkit::{
    CLOCK, coinbase_input, extend, input_of, key, pubkey, regtest_chain, solved_block, spend,
};

const T0: Time = Time::from_secs(CLOCK);

/// The scenario's seed: `MINICHAIN_SIM_SEED`, or 1.
fn seed() -> u64 {
    std::env::var("MINICHAIN_SIM_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(1)
}

/// Prints the seed if the scenario panics, so that the run can be replayed.
struct SeedGuard(&'static str, u64);

impl Drop for SeedGuard {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "sim scenario {} failed with seed {}: replay with MINICHAIN_SIM_SEED={} cargo test --lib sim::tests::{}",
                self.0, self.1, self.1, self.0
            );
        }
    }
}

fn guard(name: &'static str) -> (SeedGuard, u64) {
    let seed = seed();
    (SeedGuard(name, seed), seed)
}

/// A ring plus `extra` random links per node: connected whatever the seed.
fn mesh(sim: &mut Sim, nodes: &[usize], extra: usize) -> Vec<(usize, usize)> {
    for w in 0..nodes.len() {
        sim.connect(nodes[w], nodes[(w + 1) % nodes.len()]);
    }
    for &a in nodes {
        for _ in 0..extra {
            if let Some(b) = sim.rng.pick(nodes) {
                sim.connect(a, b);
            }
        }
    }
    let mut links = Vec::new();
    for &a in nodes {
        for b in sim.neighbours(a) {
            if a < b {
                links.push((a, b));
            }
        }
    }
    links
}

fn reconnect(sim: &mut Sim, links: &[(usize, usize)]) {
    for &(a, b) in links {
        sim.connect(a, b);
    }
}

/// Waits (virtual time) until miner `node` has a template, then mines it.
fn mine_one(sim: &mut Sim, node: usize) -> BlockHash {
    for _ in 0..30 {
        if let Some(hash) = sim.mine_now(node) {
            return hash;
        }
        sim.run_for(Duration::from_secs(1));
    }
    panic!("node {node} never got a template");
}

fn all_tips_equal(sim: &Sim, nodes: &[usize]) -> bool {
    let tips: BTreeSet<BlockHash> = nodes.iter().map(|i| sim.node(*i).tip()).collect();
    tips.len() == 1
}

/// The UTXO set of a fresh chain fed `blocks`.
fn replay(blocks: &[Block], now: Time) -> BTreeMap<OutPoint, Coin> {
    let mut chain = regtest_chain();
    for b in blocks {
        let outcome =
            chain.accept_block(b.clone(), now.unix_secs()).expect("winning chain replays");
        assert!(outcome.invalid.is_empty());
    }
    let mut set = BTreeMap::new();
    chain
        .for_each_coin(|op, coin| {
            set.insert(op, coin);
        })
        .expect("replay reads");
    set
}

/// `n` regtest blocks on genesis (coinbases to `payout`).
fn chain_of(n: usize, payout: [u8; 32]) -> Vec<Block> {
    let mut chain = regtest_chain();
    (0..n).map(|_| extend(&mut chain, vec![], payout)).collect()
}

#[test]
fn sim_fifty_nodes_through_random_partitions_converge_on_the_most_work_chain() {
    let (_g, seed) =
        guard("sim_fifty_nodes_through_random_partitions_converge_on_the_most_work_chain");
    let mut sim = Sim::new(seed, T0, SimConfig::default());
    let shares = [0.5, 0.3, 0.2];
    let nodes: Vec<usize> = (0..50).map(|i| sim.add_fresh_node(shares.get(i).copied())).collect();
    let links = mesh(&mut sim, &nodes, 3);
    let end = T0 + Duration::from_secs(600);
    let mut split = false;
    let mut partitions = 0;
    while sim.now < end {
        if split {
            sim.heal();
            reconnect(&mut sim, &links);
        } else {
            let groups = 2 + sim.rng.below(2) as usize;
            let of: Vec<usize> = (0..50).map(|_| sim.rng.below(groups as u64) as usize).collect();
            sim.partition(|i| of.get(i).copied().unwrap_or(0));
            partitions += 1;
        }
        split = !split;
        let hold = Duration::from_secs(60 + sim.rng.below(61));
        sim.run_for(hold);
    }
    sim.heal();
    reconnect(&mut sim, &links);
    sim.run_for(Duration::from_secs(60));
    for m in 0..3 {
        sim.set_mining(m, false);
    }
    sim.run_for(Duration::from_secs(30));
    // One more block from one miner breaks any tie left between equal branches.
    mine_one(&mut sim, 0);
    let converged = sim.run_until_true(Duration::from_secs(180), |s| all_tips_equal(s, &nodes));
    let heights: BTreeSet<u32> = nodes.iter().map(|i| sim.node(*i).height()).collect();
    assert!(converged, "tips differ after healing; heights {heights:?}");
    assert!(partitions >= 3, "only {partitions} partitions");
    let winner = sim.active_chain(0);
    assert!(winner.len() >= 40, "only {} blocks in 11 minutes", winner.len());
    let expected = replay(&winner, sim.now);
    for &i in &nodes {
        assert_eq!(sim.utxo_set(i), expected, "node {i}'s UTXO set is not the winning chain's");
    }
    assert!(sim.bans.is_empty(), "honest nodes banned each other: {:?}", sim.bans);
    eprintln!(
        "sim 50 nodes: {} blocks on the winning chain, {partitions} partitions, {} messages, {} virtual s",
        winner.len(),
        sim.delivered(),
        sim.now.since(T0).as_secs()
    );
}

#[test]
fn sim_initial_sync_of_2000_blocks_survives_stallers_and_a_liar() {
    let (_g, seed) = guard("sim_initial_sync_of_2000_blocks_survives_stallers_and_a_liar");
    let payout = pubkey(&key(3));
    let honest = chain_of(2_000, payout);
    // The liar's chain: the honest one up to 1,990, then a block whose coinbase pays too
    // much (valid proof of work: only its body is wrong), then 20 more: more work.
    let mut liar = honest[..1_990].to_vec();
    let bits = honest[0].header.bits;
    let mut parent = &honest[1_989];
    let mut blocks = Vec::new();
    for h in 1_991..=2_011u32 {
        let value = if h == 1_991 { 2 * REGTEST.subsidy(h) } else { REGTEST.subsidy(h) };
        let coinbase = Transaction::coinbase(h, vec![TxOut { value, pubkey: payout }], 0);
        let b = solved_block(parent.block_hash(), parent.header.time + 1, bits, coinbase, vec![]);
        blocks.push(b);
        parent = blocks.last().expect("just pushed");
    }
    let bad = blocks[0].block_hash();
    liar.extend(blocks);

    let mut sim = Sim::new(seed, T0, SimConfig::default());
    let node = sim.add_fresh_node(None);
    let mut peers = Vec::new();
    for behaviour in [
        Behaviour::Honest,
        Behaviour::Honest,
        Behaviour::Honest,
        Behaviour::Stall,
        Behaviour::Stall,
    ] {
        peers.push(sim.add_actor(Box::new(ChainServer::new(honest.clone(), behaviour))));
    }
    let liar_peer = sim.add_actor(Box::new(ChainServer::new(liar, Behaviour::Honest)));
    peers.push(liar_peer);
    let mut order = peers.clone();
    sim.rng.shuffle(&mut order);
    for p in order {
        sim.connect(node, p);
    }
    let tip = honest[1_999].block_hash();
    let synced = sim.run_until_true(Duration::from_secs(1_200), |s| {
        s.node(node).tip() == tip && !s.node(node).core().is_some_and(|c| c.snapshot().syncing)
    });
    assert!(synced, "stuck at height {}", sim.node(node).height());
    let liar_ban = sim.bans.iter().find(|b| b.peer == liar_peer).expect("the liar is banned");
    assert!(
        matches!(
            &liar_ban.offence,
            Offence::InvalidBlock { hash, error: BlockError::CoinbaseOverpay { .. } } if *hash == bad
        ),
        "liar banned for {:?}",
        liar_ban.offence
    );
    // A staller costs only its own work: its batches go to others, and stalling is a
    // fault, never a ban (it may be disconnected).
    for staller in [peers[3], peers[4]] {
        assert!(sim.bans.iter().all(|b| b.peer != staller), "staller banned: {:?}", sim.bans);
    }
    assert!(
        sim.bans.iter().all(|b| b.peer != peers[0] && b.peer != peers[1] && b.peer != peers[2]),
        "an honest server was banned: {:?}",
        sim.bans
    );
    assert_eq!(sim.utxo_set(node), replay(&honest, sim.now));
    eprintln!(
        "sim initial sync: 2,000 blocks in {} virtual s, bans {:?}",
        sim.now.since(T0).as_secs(),
        sim.bans.iter().map(|b| (b.peer, b.offence.to_string())).collect::<Vec<_>>()
    );
}

#[test]
fn sim_nodes_that_leave_and_rejoin_every_minute_catch_up() {
    let (_g, seed) = guard("sim_nodes_that_leave_and_rejoin_every_minute_catch_up");
    let mut sim = Sim::new(seed, T0, SimConfig::default());
    let nodes: Vec<usize> = (0..16)
        .map(|i| sim.add_fresh_node([Some(0.6), Some(0.4)].get(i).copied().flatten()))
        .collect();
    mesh(&mut sim, &nodes, 2);
    let catch_up = Duration::from_secs(90);
    // (node, rejoined at, network height then)
    let mut rejoined: Vec<(usize, Time, u32)> = Vec::new();
    let mut checked = 0;
    for _minute in 0..12 {
        sim.run_for(Duration::from_secs(60));
        let up: Vec<usize> = nodes.iter().copied().filter(|i| sim.node(*i).is_up()).collect();
        let down: Vec<usize> = nodes.iter().copied().filter(|i| !sim.node(*i).is_up()).collect();
        if let Some(back) = sim.rng.pick(&down) {
            let target = up.iter().map(|i| sim.node(*i).height()).max().unwrap_or(0);
            sim.restart(back);
            for _ in 0..3 {
                if let Some(p) = sim.rng.pick(&up) {
                    sim.connect(back, p);
                }
            }
            rejoined.push((back, sim.now, target));
        }
        // Miners stay; a node waiting for its catch-up check stays too.
        let candidates: Vec<usize> = up
            .iter()
            .copied()
            .filter(|i| *i >= 2 && rejoined.iter().all(|(n, _, _)| n != i))
            .collect();
        if let Some(leave) = sim.rng.pick(&candidates) {
            sim.crash(leave);
        }
        for (node, at, target) in &rejoined {
            if sim.now.since(*at) >= catch_up && sim.node(*node).is_up() {
                let h = sim.node(*node).height();
                assert!(
                    h >= *target,
                    "node {node} rejoined at height target {target}, has {h} after {catch_up:?}"
                );
                checked += 1;
            }
        }
        rejoined.retain(|(_, at, _)| sim.now.since(*at) < catch_up);
    }
    assert!(checked >= 6, "only {checked} rejoins were checked");
    eprintln!("sim churn: {checked} rejoins caught up within {catch_up:?}");
}

#[test]
fn sim_a_transaction_reaches_every_mempool_and_is_mined_exactly_once_across_a_reorg() {
    let (_g, seed) =
        guard("sim_a_transaction_reaches_every_mempool_and_is_mined_exactly_once_across_a_reorg");
    let alice = key(1);
    let mut prefix = regtest_chain();
    let first = extend(&mut prefix, vec![], pubkey(&alice));
    let mut blocks = vec![first.clone()];
    blocks.extend((0..100).map(|_| extend(&mut prefix, vec![], pubkey(&key(99)))));
    let mut sim = Sim::new(seed, T0, SimConfig::default());
    let nodes: Vec<usize> = (0..8)
        .map(|i| {
            let store = Store::in_memory(Network::Regtest).expect("store");
            let mut chain = ChainState::open(store.clone()).expect("chain");
            for b in &blocks {
                chain.accept_block(b.clone(), CLOCK).expect("prefix block");
            }
            drop(chain);
            sim.add_node(store, (i == 0 || i == 4).then_some(0.5))
        })
        .collect();
    sim.set_mining(0, false);
    sim.set_mining(4, false);
    let links = mesh(&mut sim, &nodes, 1);
    sim.run_for(Duration::from_secs(5));

    // Submitted anywhere, it reaches every mempool.
    let at = sim.rng.pick(&nodes).expect("nodes");
    let tx1 = spend(
        &[coinbase_input(&first)],
        vec![TxOut { value: 49 * COIN, pubkey: pubkey(&key(2)) }],
        &[&alice],
    );
    let txid1 = tx1.txid();
    sim.command(at, Command::SubmitTx { tx: tx1.clone(), reply: ReplyTo::ignore() });
    let in_pools = |s: &Sim, txid: Txid, among: &[usize]| {
        among.iter().all(|i| s.node(*i).core().is_some_and(|c| c.mempool().contains(&txid)))
    };
    assert!(sim.run_until_true(Duration::from_secs(10), |s| in_pools(s, txid1, &nodes)));

    // Partition; a child of it is mined on the lighter side only.
    let side = |i: usize| usize::from(i >= 4);
    sim.partition(side);
    let tx2 = spend(
        &[input_of(&tx1, 0)],
        vec![TxOut { value: 48 * COIN, pubkey: pubkey(&key(3)) }],
        &[&key(2)],
    );
    let txid2 = tx2.txid();
    sim.command(1, Command::SubmitTx { tx: tx2, reply: ReplyTo::ignore() });
    let a_side = [0, 1, 2, 3];
    assert!(sim.run_until_true(Duration::from_secs(10), |s| in_pools(s, txid2, &a_side)));
    assert!(!in_pools(&sim, txid2, &[5]), "crossed the partition");
    sim.run_for(Duration::from_secs(11));
    mine_one(&mut sim, 0); // side A: 1 block with tx1 and tx2
    let mut b_tip = BlockHash::default();
    for _ in 0..2 {
        sim.run_for(Duration::from_secs(11));
        b_tip = mine_one(&mut sim, 4); // side B: 2 blocks, tx1 only
    }
    sim.run_for(Duration::from_secs(5));
    let confirmed = |s: &Sim, i: usize, txid: Txid| {
        s.active_chain(i).iter().flat_map(|b| &b.txs).filter(|t| t.txid() == txid).count()
    };
    assert_eq!(confirmed(&sim, 0, txid2), 1, "side A confirmed tx2");
    assert_eq!(confirmed(&sim, 5, txid2), 0, "side B never saw tx2");
    sim.heal();
    reconnect(&mut sim, &links);
    assert!(sim.run_until_true(Duration::from_secs(60), |s| all_tips_equal(s, &nodes)));
    assert_eq!(sim.node(0).tip(), b_tip, "the heavier side won");
    assert_eq!(confirmed(&sim, 0, txid2), 0, "the reorg took tx2 out of the chain");
    // tx2 came back to side A's pools; the next block confirms it once more.
    assert!(in_pools(&sim, txid2, &[0]), "tx2 did not return to the miner's mempool");
    sim.run_for(Duration::from_secs(11));
    mine_one(&mut sim, 0);
    assert!(sim.run_until_true(Duration::from_secs(60), |s| all_tips_equal(s, &nodes)));
    for &i in &nodes {
        for txid in [txid1, txid2] {
            let count = confirmed(&sim, i, txid);
            assert_eq!(count, 1, "node {i} has {txid} {count} times in its chain");
        }
        let pool = sim.node(i).core().expect("up").mempool();
        assert!(!pool.contains(&txid1) && !pool.contains(&txid2));
    }
}

#[test]
fn sim_hostile_peers_are_banned_while_honest_sync_goes_on() {
    let (_g, seed) = guard("sim_hostile_peers_are_banned_while_honest_sync_goes_on");
    let honest = chain_of(300, pubkey(&key(5)));
    let mut sim = Sim::new(seed, T0, SimConfig::default());
    let node = sim.add_fresh_node(None);
    let server = |b| Box::new(ChainServer::new(honest.clone(), b));
    let good = [sim.add_actor(server(Behaviour::Honest)), sim.add_actor(server(Behaviour::Honest))];
    let garbage = sim.add_actor(server(Behaviour::Garbage));
    let flood = sim.add_actor(server(Behaviour::Flood(800)));
    let withhold = sim.add_actor(server(Behaviour::Withhold));
    let mut order = vec![good[0], good[1], garbage, flood, withhold];
    sim.rng.shuffle(&mut order);
    for p in order {
        sim.connect(node, p);
    }
    let tip = honest[299].block_hash();
    assert!(sim.run_until_true(Duration::from_secs(300), |s| s.node(node).tip() == tip));
    let offence_of = |peer| sim.bans.iter().find(|b| b.peer == peer).map(|b| b.offence.clone());
    assert!(
        matches!(offence_of(garbage), Some(Offence::MalformedFrame(_))),
        "{:?}",
        offence_of(garbage)
    );
    assert_eq!(offence_of(flood), Some(Offence::RequestFlood));
    assert!(
        matches!(offence_of(withhold), Some(Offence::WithheldBlocks(_))),
        "{:?}",
        offence_of(withhold)
    );
    assert!(good.iter().all(|g| offence_of(*g).is_none()));
    // Banned peers stay out.
    for bad in [garbage, flood, withhold] {
        assert!(!sim.connect(node, bad), "a banned peer got back in");
    }
}

/// A small scenario with partitions and mining, for the trace comparison.
fn small_run(seed: u64) -> ([u8; 32], u32) {
    let mut sim = Sim::new(seed, T0, SimConfig { loss: 0.02, ..SimConfig::default() });
    let nodes: Vec<usize> = (0..10).map(|i| sim.add_fresh_node((i < 2).then_some(0.5))).collect();
    let links = mesh(&mut sim, &nodes, 2);
    sim.run_for(Duration::from_secs(60));
    sim.partition(|i| i % 2);
    sim.run_for(Duration::from_secs(60));
    sim.heal();
    reconnect(&mut sim, &links);
    sim.crash(5);
    sim.run_for(Duration::from_secs(30));
    sim.restart(5);
    sim.connect(5, 6);
    sim.run_for(Duration::from_secs(60));
    (sim.trace_hash(), sim.node(0).height())
}

#[test]
fn sim_the_same_seed_gives_the_same_trace() {
    let (_g, seed) = guard("sim_the_same_seed_gives_the_same_trace");
    let (a, height) = small_run(seed);
    assert!(height > 0, "nothing was mined");
    assert_eq!(a, small_run(seed).0, "two runs of one seed diverged");
    assert_ne!(a, small_run(seed.wrapping_add(1)).0, "another seed gave the same run");
}

#[test]
fn sim_initial_sync_survives_a_peer_leaving_mid_batch_and_a_restart_mid_sync() {
    let (_g, seed) =
        guard("sim_initial_sync_survives_a_peer_leaving_mid_batch_and_a_restart_mid_sync");
    let honest = chain_of(600, pubkey(&key(6)));
    let mut sim = Sim::new(seed, T0, SimConfig::default());
    let node = sim.add_fresh_node(None);
    let servers: Vec<usize> = (0..3)
        .map(|_| sim.add_actor(Box::new(ChainServer::new(honest.clone(), Behaviour::Honest))))
        .collect();
    for &s in &servers {
        sim.connect(node, s);
    }
    // A server leaves while its batches are in flight.
    assert!(sim.run_until_true(Duration::from_secs(60), |s| s.node(node).height() >= 50));
    sim.disconnect(node, servers[0]);
    // The node crashes mid-sync and comes back on its store.
    assert!(sim.run_until_true(Duration::from_secs(60), |s| s.node(node).height() >= 250));
    sim.crash(node);
    let kept = sim.node(node).store.tip().expect("store reads").expect("a tip");
    sim.run_for(Duration::from_secs(5));
    sim.restart(node);
    assert_eq!(sim.node(node).tip(), kept, "restarted at its last committed tip");
    assert!(sim.node(node).height() >= 250);
    for &s in &servers[1..] {
        sim.connect(node, s);
    }
    let tip = honest[599].block_hash();
    assert!(sim.run_until_true(Duration::from_secs(120), |s| s.node(node).tip() == tip));
    assert_eq!(sim.utxo_set(node), replay(&honest, sim.now));
    assert!(sim.bans.is_empty(), "{:?}", sim.bans);
}

/// `nodes` on a fresh regtest chain, linked in a kept mesh (each node keeps its links as
/// `--bootstrap` peers, so they are redialled whenever they drop).
fn kept_mesh(sim: &mut Sim, nodes: &[usize], extra: usize) -> Vec<(usize, usize)> {
    let links = mesh(sim, nodes, extra);
    for &(a, b) in &links {
        sim.disconnect(a, b);
        sim.keep(a, b);
    }
    links
}

#[test]
fn sim_an_hour_of_links_dropping_at_random_bans_no_honest_peer_and_all_converge() {
    let (_g, seed) =
        guard("sim_an_hour_of_links_dropping_at_random_bans_no_honest_peer_and_all_converge");
    let mut sim = Sim::new(seed, T0, SimConfig::default());
    let nodes: Vec<usize> =
        (0..8).map(|i| sim.add_fresh_node((i % 3 == 0).then_some(1.0 / 3.0))).collect();
    let links = kept_mesh(&mut sim, &nodes, 1);
    let end = T0 + Duration::from_secs(3_600);
    let mut down: Vec<(Time, usize, usize)> = Vec::new();
    let mut drops = 0;
    while sim.now < end {
        sim.run_for(Duration::from_secs(5));
        let now = sim.now;
        for (_, a, b) in down.iter().filter(|(until, _, _)| *until <= now) {
            sim.mend(*a, *b);
        }
        down.retain(|(until, _, _)| *until > now);
        // About one link in ten drops every half minute, for 5 to 60 s.
        if sim.rng.below(6) == 0
            && let Some((a, b)) = sim.rng.pick(&links)
            && !down.iter().any(|(_, x, y)| (*x, *y) == (a, b))
        {
            let secs = 5 + sim.rng.below(56);
            sim.sever(a, b);
            down.push((now + Duration::from_secs(secs), a, b));
            drops += 1;
        }
    }
    for (_, a, b) in down.drain(..) {
        sim.mend(a, b);
    }
    for &m in &nodes {
        sim.set_mining(m, false);
    }
    // Two blocks of one height found on both sides of a drop stay a tie until the next
    // block: mine one if the network has not settled by itself.
    if !sim.run_until_true(Duration::from_secs(60), |s| all_tips_equal(s, &nodes)) {
        mine_one(&mut sim, nodes[0]);
    }
    assert!(
        sim.run_until_true(Duration::from_secs(300), |s| all_tips_equal(s, &nodes)),
        "no convergence after the drops: heights {:?}",
        nodes.iter().map(|n| sim.node(*n).height()).collect::<Vec<_>>()
    );
    assert!(sim.bans.is_empty(), "honest peers banned: {:?}", sim.bans);
    assert!(drops >= 60, "only {drops} link drops");
    let height = sim.node(0).height();
    assert!(height > 100, "the network mined only {height} blocks in an hour");
    eprintln!(
        "sim link drops: {drops} drops in an hour, height {height}, {} disconnects for faults, no bans",
        sim.disconnects.len()
    );
}

#[test]
fn sim_payments_on_both_sides_of_a_partition_reach_every_mempool_and_confirm_once() {
    let (_g, seed) =
        guard("sim_payments_on_both_sides_of_a_partition_reach_every_mempool_and_confirm_once");
    let (alice, bob) = (key(1), key(2));
    let mut prefix = regtest_chain();
    let a_coin = extend(&mut prefix, vec![], pubkey(&alice));
    let b_coin = extend(&mut prefix, vec![], pubkey(&bob));
    let mut blocks = vec![a_coin.clone(), b_coin.clone()];
    blocks.extend((0..100).map(|_| extend(&mut prefix, vec![], pubkey(&key(99)))));
    let mut sim = Sim::new(seed, T0, SimConfig::default());
    let nodes: Vec<usize> = (0..8)
        .map(|i| {
            let store = Store::in_memory(Network::Regtest).expect("store");
            let mut chain = ChainState::open(store.clone()).expect("chain");
            for b in &blocks {
                chain.accept_block(b.clone(), CLOCK).expect("prefix block");
            }
            drop(chain);
            sim.add_node(store, (i == 0 || i == 4).then_some(0.5))
        })
        .collect();
    sim.set_mining(0, false);
    sim.set_mining(4, false);
    kept_mesh(&mut sim, &nodes, 1);
    sim.run_for(Duration::from_secs(5));
    let side = |i: usize| usize::from(i >= 4);
    sim.partition(side);
    let pay = |coin: &Block, from: &secp256k1::Keypair, to: u64| {
        spend(
            &[coinbase_input(coin)],
            vec![TxOut { value: 49 * COIN, pubkey: pubkey(&key(to)) }],
            &[from],
        )
    };
    let (tx_a, tx_b) = (pay(&a_coin, &alice, 3), pay(&b_coin, &bob, 4));
    let (txid_a, txid_b) = (tx_a.txid(), tx_b.txid());
    sim.command(1, Command::SubmitTx { tx: tx_a, reply: ReplyTo::ignore() });
    sim.command(5, Command::SubmitTx { tx: tx_b, reply: ReplyTo::ignore() });
    let in_pools = |s: &Sim, txid: Txid, among: &[usize]| {
        among.iter().all(|i| s.node(*i).core().is_some_and(|c| c.mempool().contains(&txid)))
    };
    assert!(sim.run_until_true(Duration::from_secs(10), |s| in_pools(s, txid_a, &[0, 1, 2, 3])
        && in_pools(s, txid_b, &[4, 5, 6, 7])));
    // Each side confirms its own payment; side B mines more.
    sim.run_for(Duration::from_secs(11));
    mine_one(&mut sim, 0);
    for _ in 0..2 {
        sim.run_for(Duration::from_secs(11));
        mine_one(&mut sim, 4);
    }
    let confirmed = |s: &Sim, i: usize, txid: Txid| {
        s.active_chain(i).iter().flat_map(|b| &b.txs).filter(|t| t.txid() == txid).count()
    };
    sim.run_for(Duration::from_secs(5));
    assert_eq!(confirmed(&sim, 0, txid_a), 1);
    assert_eq!(confirmed(&sim, 4, txid_a), 0, "side B never saw side A's payment");
    // Heal: the kept links come back by themselves. Side A reorgs to side B's chain, and
    // its payment, back in its mempools, reaches side B's within seconds.
    sim.heal();
    assert!(sim.run_until_true(Duration::from_secs(120), |s| all_tips_equal(s, &nodes)
        && in_pools(s, txid_a, &nodes)));
    assert_eq!(confirmed(&sim, 0, txid_a), 0, "the reorg took it out of side A's chain");
    // Side B's miner confirms it: exactly once, everywhere.
    sim.run_for(Duration::from_secs(11));
    mine_one(&mut sim, 4);
    assert!(sim.run_until_true(Duration::from_secs(60), |s| all_tips_equal(s, &nodes)
        && nodes.iter().all(|i| confirmed(s, *i, txid_a) == 1)));
    for &i in &nodes {
        assert_eq!(confirmed(&sim, i, txid_b), 1, "node {i}");
        assert!(!sim.node(i).core().expect("up").mempool().contains(&txid_a));
    }
    assert!(sim.bans.is_empty(), "{:?}", sim.bans);
}

#[test]
fn sim_a_server_frozen_mid_sync_is_not_banned_and_gossips_again_once_resumed() {
    let (_g, seed) =
        guard("sim_a_server_frozen_mid_sync_is_not_banned_and_gossips_again_once_resumed");
    let blocks = chain_of(600, pubkey(&key(3)));
    let mut sim = Sim::new(seed, T0, SimConfig::default());
    let servers: Vec<usize> = (0..2)
        .map(|i| {
            let store = Store::in_memory(Network::Regtest).expect("store");
            let mut chain = ChainState::open(store.clone()).expect("chain");
            for b in &blocks {
                chain.accept_block(b.clone(), CLOCK).expect("server block");
            }
            drop(chain);
            sim.add_node(store, (i == 0).then_some(1.0))
        })
        .collect();
    sim.set_mining(servers[0], false);
    let node = sim.add_fresh_node(None);
    sim.keep(servers[0], servers[1]);
    sim.keep(node, servers[0]);
    sim.keep(node, servers[1]);
    assert!(sim.run_until_true(Duration::from_secs(60), |s| s.node(node).height() >= 50));
    sim.freeze(servers[0]);
    let frozen_at = sim.now;
    let tip = blocks[599].block_hash();
    assert!(
        sim.run_until_true(Duration::from_secs(300), |s| s.node(node).tip() == tip),
        "stuck at {} with the other server up",
        sim.node(node).height()
    );
    let took = sim.now.since(frozen_at).as_secs();
    sim.run_for(Duration::from_secs(120));
    sim.thaw(servers[0]);
    // Resumed, it is dialled again and what it mines reaches the node within 30 s.
    sim.run_for(Duration::from_secs(5));
    let mined = mine_one(&mut sim, servers[0]);
    assert!(
        sim.run_until_true(Duration::from_secs(30), |s| s.node(node).tip() == mined),
        "the resumed server's block did not reach the node"
    );
    assert!(sim.bans.is_empty(), "bans: {:?}", sim.bans);
    eprintln!(
        "sim frozen server: sync finished {took} s after the freeze; disconnects {:?}",
        sim.disconnects.iter().map(|d| (d.1, d.2, d.3.clone())).collect::<Vec<_>>()
    );
}
