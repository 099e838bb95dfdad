//! Compact block relay across simulated nodes: a block announced by its header and rebuilt
//! from the mempool, rebuilt after asking for what the mempool lacked, fetched whole when
//! the announcer went silent, and a peer lying in its short ids. Seeds as in `tests.rs`
//! (`MINICHAIN_SIM_SEED`).

use std::time::Duration;

use super::*;
use crate::compact::{CompactBlock, ShortId, ShortIdKey};
use crate::core::{Offence, ReplyTo};
use crate::primitives::encode::serialize;
use crate::primitives::{COIN, Transaction, TxOut};
use crate::testkit::{
    CLOCK, block_on, coinbase_input, extend, input_of, key, pubkey, regtest_chain, spend,
};

const T0: Time = Time::from_secs(CLOCK);
/// Transactions the scenarios' blocks carry besides the coinbase.
const TXS: usize = 21;

fn seed() -> u64 {
    std::env::var("MINICHAIN_SIM_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(1)
}

/// 101 regtest blocks whose first two coinbases pay `key(1)` and `key(2)` (spendable
/// now), and [`TXS`] transactions on the first: one splitting it into 20 outputs, then
/// one spending each output.
fn funded() -> (Vec<Block>, Vec<Transaction>) {
    let mut chain = regtest_chain();
    let first = extend(&mut chain, vec![], pubkey(&key(1)));
    let mut blocks = vec![first.clone(), extend(&mut chain, vec![], pubkey(&key(2)))];
    blocks.extend((0..99).map(|_| extend(&mut chain, vec![], pubkey(&key(99)))));
    let each = (first.txs[0].outputs[0].value - COIN) / 20;
    let outputs = (0..20).map(|_| TxOut { value: each, pubkey: pubkey(&key(3)) }).collect();
    let split = spend(&[coinbase_input(&first)], outputs, &[&key(1)]);
    let mut txs = vec![split.clone()];
    for vout in 0..20 {
        let out = TxOut { value: each - 10_000, pubkey: pubkey(&key(4)) };
        txs.push(spend(&[input_of(&split, vout)], vec![out], &[&key(3)]));
    }
    (blocks, txs)
}

/// A transaction no scenario block carries (it spends the second coinbase).
fn stray(blocks: &[Block]) -> Transaction {
    let out = TxOut { value: 10 * COIN, pubkey: pubkey(&key(5)) };
    spend(&[coinbase_input(&blocks[1])], vec![out], &[&key(2)])
}

/// A node whose store holds `blocks`.
fn node_on(sim: &mut Sim, blocks: &[Block], miner: bool) -> usize {
    let store = Store::in_memory(Network::Regtest).expect("store");
    let mut chain = ChainState::open(store.clone()).expect("chain");
    for b in blocks {
        chain.accept_block(b.clone(), CLOCK).expect("prefix block");
    }
    drop(chain);
    let index = sim.add_node(store, miner.then_some(1.0));
    if miner {
        sim.set_mining(index, false);
    }
    index
}

fn submit(sim: &mut Sim, node: usize, txs: &[Transaction]) {
    for tx in txs {
        sim.command(node, Command::SubmitTx { tx: tx.clone(), reply: ReplyTo::ignore() });
    }
}

fn pool_len(sim: &Sim, node: usize) -> usize {
    sim.node(node).core().map_or(0, |c| c.mempool().len())
}

fn stats(sim: &Sim, node: usize) -> crate::core::CompactStats {
    sim.node(node).core().expect("up").snapshot().compact
}

/// Mines at `miner` once its template holds `txs` transactions besides the coinbase
/// (templates are made again every [`crate::core::TEMPLATE_REFRESH`]).
fn mine_full(sim: &mut Sim, miner: usize, txs: usize) -> BlockHash {
    let ready = |s: &Sim| s.node(miner).core().is_some_and(|c| c.mempool().len() >= txs);
    assert!(sim.run_until_true(Duration::from_secs(30), ready), "node {miner} lacks transactions");
    sim.run_for(crate::core::TEMPLATE_REFRESH + Duration::from_secs(1));
    let hash = sim.mine_now(miner).expect("a template");
    let block = sim.active_chain(miner).pop().expect("mined");
    assert_eq!(block.block_hash(), hash);
    assert_eq!(block.txs.len(), txs + 1, "the block carries the whole mempool");
    hash
}

#[test]
fn sim_a_compact_block_is_rebuilt_from_the_mempool_without_a_round_trip_or_a_whole_block() {
    let seed = seed();
    let (blocks, txs) = funded();
    let mut sim = Sim::new(seed, T0, SimConfig::default());
    let nodes: Vec<usize> = (0..4).map(|i| node_on(&mut sim, &blocks, i == 0)).collect();
    for i in 0..4 {
        sim.connect(nodes[i], nodes[(i + 1) % 4]);
    }
    submit(&mut sim, nodes[2], &txs);
    assert!(sim.run_until_true(Duration::from_secs(10), |s| {
        nodes.iter().all(|n| pool_len(s, *n) == TXS)
    }));
    let hash = mine_full(&mut sim, nodes[0], TXS);
    assert!(
        sim.run_until_true(Duration::from_secs(10), |s| {
            nodes.iter().all(|n| s.node(*n).tip() == hash)
        }),
        "seed {seed}: the block did not reach every node"
    );
    for &n in &nodes[1..] {
        let s = stats(&sim, n);
        assert_eq!((s.rebuilt, s.requested, s.fallback), (1, 0, 0), "seed {seed}: node {n}");
        assert_eq!(pool_len(&sim, n), 0, "the block's transactions left the mempool");
    }
    let (whole, _) = sim.gossiped(GossipKind::Block);
    assert_eq!(whole, 0, "no whole block crossed a link");
    // Every link carries the header; each of the 3 receivers asks one compact form.
    let (headers, _) = sim.gossiped(GossipKind::Header);
    assert!(headers >= 3, "{headers} header announcements");
    let compact = sim.bytes_sent().get("sync_compact").copied().unwrap_or(0);
    let block_bytes = serialize(&sim.active_chain(nodes[0]).pop().expect("tip")).len() as u64;
    assert!(
        compact > 0 && compact < 3 * block_bytes / 5,
        "{compact} B of compact forms for 3 receivers of a {block_bytes} B block"
    );
    assert!(sim.bans.is_empty(), "seed {seed}: {:?}", sim.bans);
}

#[test]
fn sim_two_blocks_in_quick_succession_follow_their_headers_down_a_line_of_nodes() {
    let seed = seed();
    let (blocks, txs) = funded();
    // Every message draws its own latency, so the second header may overtake the first.
    let mut sim = Sim::new(seed, T0, SimConfig::default());
    // miner ── a ── b ── c: each header runs ahead of its block, and the second header
    // reaches a node before the first block does (or before the first header).
    let nodes: Vec<usize> = (0..4).map(|i| node_on(&mut sim, &blocks, i == 0)).collect();
    for pair in nodes.windows(2) {
        sim.connect(pair[0], pair[1]);
    }
    // Every node is handed the transactions (a line relays orphans slowly: see the note
    // on issue 25), so each block is rebuilt from the mempool.
    for n in &nodes {
        submit(&mut sim, *n, &txs);
    }
    assert!(
        sim.run_until_true(Duration::from_secs(10), |s| {
            nodes.iter().all(|n| pool_len(s, *n) == TXS)
        }),
        "{:?}",
        nodes.iter().map(|n| pool_len(&sim, *n)).collect::<Vec<_>>()
    );
    mine_full(&mut sim, nodes[0], TXS);
    let second = sim.mine_now(nodes[0]).expect("a second block");
    assert!(
        sim.run_until_true(Duration::from_secs(10), |s| {
            nodes.iter().all(|n| s.node(*n).tip() == second)
        }),
        "seed {seed}: both blocks did not reach every node: {:?} {:?}",
        nodes.iter().map(|n| (sim.node(*n).height(), stats(&sim, *n))).collect::<Vec<_>>(),
        sim.bytes_sent()
    );
    for &n in &nodes[1..] {
        let s = stats(&sim, n);
        assert_eq!((s.rebuilt, s.requested, s.fallback), (2, 0, 0), "seed {seed}: node {n}");
    }
    assert_eq!(sim.gossiped(GossipKind::Block).0, 0, "no whole block crossed a link");
    assert_eq!(sim.bytes_sent().get("sync_blocks"), None, "nor was one fetched");
    assert!(sim.bans.is_empty() && sim.disconnects.is_empty(), "seed {seed}");
}

#[test]
fn sim_a_burst_of_blocks_mined_at_once_reaches_every_node() {
    let seed = seed();
    let (blocks, _) = funded();
    let mut sim = Sim::new(seed, T0, SimConfig::default());
    let nodes: Vec<usize> = (0..6).map(|i| node_on(&mut sim, &blocks, i == 0)).collect();
    for i in 0..6 {
        sim.connect(nodes[i], nodes[(i + 1) % 6]);
    }
    sim.connect(nodes[0], nodes[3]);
    sim.run_for(Duration::from_secs(2));
    // `mine --blocks 110` on regtest: every header goes out while the blocks before it
    // are still on their way, and headers from different peers overtake one another.
    sim.command(nodes[0], Command::Mine { blocks: 110, to: None, reply: ReplyTo::ignore() });
    sim.run_for(Duration::from_millis(100));
    let (tip, height) = (sim.node(nodes[0]).tip(), sim.node(nodes[0]).height());
    assert_eq!(height, 101 + 110, "mined at once");
    assert!(
        sim.run_until_true(Duration::from_secs(60), |s| {
            nodes.iter().all(|n| s.node(*n).tip() == tip)
        }),
        "seed {seed}: {:?}",
        nodes.iter().map(|n| (sim.node(*n).height(), stats(&sim, *n))).collect::<Vec<_>>()
    );
    assert!(sim.bans.is_empty(), "seed {seed}: {:?}", sim.bans);
}

/// A mempool that holds the split and only some of its children.
fn small_pool() -> MempoolConfig {
    MempoolConfig { max_bytes: 2_000, ..MempoolConfig::default() }
}

#[test]
fn sim_what_the_mempool_lacks_is_asked_of_the_announcer_and_the_block_rebuilt() {
    let seed = seed();
    let (blocks, txs) = funded();
    let mut sim = Sim::new(seed, T0, SimConfig::default());
    let miner = node_on(&mut sim, &blocks, true);
    let short = node_on(&mut sim, &blocks, false);
    sim.set_mempool(short, small_pool());
    sim.connect(miner, short);
    submit(&mut sim, miner, &txs);
    assert!(sim.run_until_true(Duration::from_secs(10), |s| pool_len(s, miner) == TXS));
    sim.run_for(Duration::from_secs(2));
    let held = pool_len(&sim, short);
    assert!(held > 0 && held < TXS, "the small pool holds {held}");
    let hash = mine_full(&mut sim, miner, TXS);
    assert!(sim.run_until_true(Duration::from_secs(10), |s| s.node(short).tip() == hash));
    let s = stats(&sim, short);
    assert_eq!((s.rebuilt, s.requested, s.fallback), (0, 1, 0), "seed {seed}");
    assert_eq!(sim.gossiped(GossipKind::Block).0, 0, "no whole block crossed the link");
    assert!(sim.bans.is_empty() && sim.disconnects.is_empty(), "seed {seed}");
}

#[test]
fn sim_a_block_whose_announcer_goes_silent_is_fetched_whole_from_another_relay() {
    let seed = seed();
    let (blocks, txs) = funded();
    let block = block_of(&blocks, &txs);
    let hash = block.block_hash();
    let mut chain = blocks.clone();
    chain.push(block.clone());
    let mut sim = Sim::new(seed, T0, SimConfig::default());
    let full = node_on(&mut sim, &blocks, false);
    let short = node_on(&mut sim, &blocks, false);
    // `short` hears the header from a peer that then answers nothing about the block,
    // neither its compact form nor the block itself.
    let header = block.header.to_bytes().to_vec();
    let silent = sim.add_actor(Box::new(
        ChainServer::new(chain.clone(), Behaviour::Stall)
            .announcing(GossipKind::Header, header.clone()),
    ));
    sim.connect(silent, short);
    // `full` hears it from an honest peer, and rebuilds it from its mempool.
    submit(&mut sim, full, &txs);
    let honest = sim.add_actor(Box::new(
        ChainServer::new(chain, Behaviour::Honest).announcing(GossipKind::Header, header),
    ));
    sim.connect(honest, full);
    assert!(sim.run_until_true(Duration::from_secs(10), |s| s.node(full).tip() == hash));
    assert_eq!(stats(&sim, full).rebuilt, 1, "seed {seed}");
    sim.connect(full, short);
    assert!(
        sim.run_until_true(Duration::from_secs(60), |s| s.node(short).tip() == hash),
        "seed {seed}: the block never reached the node whose announcer went silent"
    );
    let s = stats(&sim, short);
    assert_eq!((s.rebuilt, s.requested, s.fallback), (0, 0, 1), "seed {seed}: fetched whole");
    sim.run_for(Duration::from_secs(40));
    assert!(
        sim.bans.is_empty(),
        "seed {seed}: a silent announcer is nobody's enemy: {:?}",
        sim.bans
    );
}

/// How a liar picks the false short id.
type LieFn<'a> = dyn Fn(&ShortIdKey) -> ShortId + 'a;

/// The block on `blocks` carrying `txs`, mined outside the simulation.
fn block_of(blocks: &[Block], txs: &[Transaction]) -> Block {
    let mut chain = regtest_chain();
    for b in blocks {
        chain.accept_block(b.clone(), CLOCK).expect("prefix");
    }
    block_on(&chain, chain.tip(), txs.to_vec(), pubkey(&key(98)))
}

/// A server of `blocks` and `block` that announces `block`'s header as it connects, and
/// answers for its compact form with `compact`.
fn announcer(
    blocks: &[Block],
    block: &Block,
    compact: Vec<u8>,
    behaviour: Behaviour,
) -> ChainServer {
    let mut chain = blocks.to_vec();
    chain.push(block.clone());
    let header = block.header.to_bytes().to_vec();
    ChainServer::new(chain, behaviour)
        .announcing(GossipKind::Header, header)
        .serving_compact(block.block_hash(), compact)
}

/// The block on `blocks` carrying `txs`, as a lying peer sends its compact form: the
/// short id of its second transaction replaced by `id`.
fn lie(
    blocks: &[Block],
    txs: &[Transaction],
    id: impl Fn(&ShortIdKey) -> ShortId,
) -> (Block, Vec<u8>) {
    let block = block_of(blocks, txs);
    let mut compact = CompactBlock::from_block(&block);
    compact.short_ids[1] = id(&ShortIdKey::of(&block.header));
    (block, serialize(&compact))
}

#[test]
fn sim_a_peer_lying_in_its_short_ids_is_banned_once_the_block_shows_it_and_nobody_else_is() {
    let seed = seed();
    let (blocks, txs) = funded();
    let decoy = stray(&blocks);
    let cases: [(&str, Box<LieFn<'_>>); 2] = [
        // An id that names another transaction of the pool: the rebuilt block does not
        // match its root, so the block is fetched whole, and it shows the lie.
        ("a decoy's id", Box::new(|k: &ShortIdKey| k.short_id(&decoy.wtxid()))),
        // An id of nothing: the slot is asked for, the answer fits the root, and the
        // block shows the id was not its transaction's.
        ("an id of nothing", Box::new(|_: &ShortIdKey| ShortId(0x1234_5678))),
    ];
    for (what, id) in cases {
        let mut sim = Sim::new(seed, T0, SimConfig::default());
        let victim = node_on(&mut sim, &blocks, false);
        let behind = node_on(&mut sim, &blocks, false);
        sim.connect(victim, behind);
        submit(&mut sim, victim, &txs);
        submit(&mut sim, victim, std::slice::from_ref(&decoy));
        assert!(sim.run_until_true(Duration::from_secs(10), |s| pool_len(s, behind) == TXS + 1));
        let (block, data) = lie(&blocks, &txs, &id);
        let liar = sim.add_actor(Box::new(announcer(&blocks, &block, data, Behaviour::Honest)));
        sim.connect(liar, victim);
        let hash = block.block_hash();
        assert!(
            sim.run_until_true(Duration::from_secs(30), |s| s.node(victim).tip() == hash),
            "seed {seed}, {what}: the block itself was valid and taken"
        );
        assert!(sim.run_until_true(Duration::from_secs(10), |s| s.node(behind).tip() == hash));
        let banned: Vec<_> = sim.bans.iter().map(|b| (b.by, b.peer, b.offence.clone())).collect();
        assert_eq!(banned, [(victim, liar, Offence::FalseCompact(hash))], "seed {seed}, {what}");
        // The lie was not passed on: the node behind got the block's own compact form.
        assert_eq!(stats(&sim, behind).rebuilt, 1, "seed {seed}, {what}");
    }
}

#[test]
fn sim_short_ids_that_do_not_add_up_cost_nothing_until_the_block_shows_a_lie() {
    let seed = seed();
    let (blocks, txs) = funded();
    let decoy = stray(&blocks);
    let mut sim = Sim::new(seed, T0, SimConfig::default());
    let victim = node_on(&mut sim, &blocks, false);
    submit(&mut sim, victim, &txs);
    submit(&mut sim, victim, std::slice::from_ref(&decoy));
    let (block, data) = lie(&blocks, &txs, |k| k.short_id(&decoy.wtxid()));
    // It never serves the block: nothing proves its ids false (a collision looks the same).
    let staller = sim.add_actor(Box::new(announcer(&blocks, &block, data, Behaviour::Stall)));
    sim.connect(staller, victim);
    sim.run_for(Duration::from_secs(90));
    assert_eq!(stats(&sim, victim).fallback, 1, "seed {seed}");
    assert!(sim.bans.is_empty(), "seed {seed}: {:?}", sim.bans);
}

#[test]
fn sim_a_node_that_does_not_speak_compact_blocks_gets_and_relays_them_whole() {
    let seed = seed();
    let (blocks, txs) = funded();
    let mut sim = Sim::new(seed, T0, SimConfig::default());
    let miner = node_on(&mut sim, &blocks, true);
    let old = node_on(&mut sim, &blocks, false);
    let behind = node_on(&mut sim, &blocks, false);
    sim.set_compact(old, false);
    // miner ── old ── behind: every block crosses the older node.
    sim.connect(miner, old);
    sim.connect(old, behind);
    submit(&mut sim, miner, &txs);
    let hash = mine_full(&mut sim, miner, TXS);
    assert!(
        sim.run_until_true(Duration::from_secs(10), |s| s.node(behind).tip() == hash),
        "seed {seed}: the block did not cross the older node"
    );
    assert_eq!(stats(&sim, old), crate::core::CompactStats::default());
    assert_eq!(stats(&sim, behind).rebuilt, 0, "it came whole");
    assert_eq!(sim.gossiped(GossipKind::Header).0, 0, "the older node hears no header");
    assert_eq!(sim.bytes_sent().get("sync_compact"), None, "nor is asked a compact form");
    assert!(sim.gossiped(GossipKind::Block).0 >= 2);
    assert!(sim.bans.is_empty(), "seed {seed}: {:?}", sim.bans);
}
