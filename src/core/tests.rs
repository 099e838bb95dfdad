//! The core driven by hand: inputs in, outputs checked, time passed as a value. No
//! sockets, no threads, no clock.

use std::time::Duration;

use super::*;
use crate::consensus::HeaderError;
use crate::primitives::encode::serialize;
use crate::protocol::ChainTip;
use crate::sync::{REQUEST_TIMEOUT, SyncFault};
use crate::testkit::{CLOCK, extend, regtest_chain, solve};

const T0: Time = Time::from_secs(CLOCK);
const ALICE: PeerKey = PeerKey(1);
const BOB: PeerKey = PeerKey(2);

fn core() -> Core {
    let mining = MiningConfig { enabled: false, payout: [9; 32] };
    Core::new(regtest_chain(), Mempool::default(), mining)
}

/// A regtest chain of `n` blocks elsewhere, and its blocks.
fn source(n: usize) -> (ChainState, Vec<Block>) {
    let mut chain = regtest_chain();
    let blocks = (0..n).map(|_| extend(&mut chain, vec![], [4; 32])).collect();
    (chain, blocks)
}

/// What `f` returns, and the log lines it wrote (debug and up, without colours or time).
fn logged<R>(f: impl FnOnce() -> R) -> (R, String) {
    #[derive(Clone, Default)]
    struct Buffer(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);
    impl std::io::Write for Buffer {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let buffer = Buffer::default();
    let writer = buffer.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_ansi(false)
        .without_time()
        .with_writer(move || writer.clone())
        .finish();
    let result = tracing::subscriber::with_default(subscriber, f);
    let text = String::from_utf8_lossy(&buffer.0.lock().unwrap()).into_owned();
    (result, text)
}

fn gossip(id: u64, peer: PeerKey, kind: GossipKind, data: Vec<u8>) -> Input {
    Input::Net(NetEvent::Gossip { id, peer, kind, data })
}

fn asks(out: &[Output]) -> Vec<Ask> {
    out.iter()
        .filter_map(|o| match o {
            Output::Net(NetAction::Request(ask)) => Some(ask.clone()),
            _ => None,
        })
        .collect()
}

fn bans(out: &[Output]) -> Vec<(PeerKey, Offence)> {
    out.iter()
        .filter_map(|o| match o {
            Output::Net(NetAction::Ban { peer, offence }) => Some((*peer, offence.clone())),
            _ => None,
        })
        .collect()
}

fn disconnects(out: &[Output]) -> Vec<(PeerKey, String)> {
    out.iter()
        .filter_map(|o| match o {
            Output::Net(NetAction::Disconnect { peer, reason }) => Some((*peer, reason.clone())),
            _ => None,
        })
        .collect()
}

fn verdict(out: &[Output], id: u64) -> Option<Verdict> {
    out.iter().find_map(|o| match o {
        Output::Net(NetAction::Validate { id: i, verdict }) if *i == id => Some(*verdict),
        _ => None,
    })
}

#[test]
fn a_gossiped_block_extends_the_chain_and_is_announced() {
    let (_, blocks) = source(1);
    let mut core = core();
    let out = core.handle(gossip(1, ALICE, GossipKind::Block, serialize(&blocks[0])), T0);
    assert_eq!(verdict(&out, 1), Some(Verdict::Accept));
    assert!(out.iter().any(|o| matches!(o, Output::Event(NodeEvent::Block { height: 1, .. }))));
    assert_eq!(core.chain().tip(), blocks[0].block_hash());
    assert!(bans(&out).is_empty());
    // The same block again: ignored, nobody blamed.
    let out = core.handle(gossip(2, BOB, GossipKind::Block, serialize(&blocks[0])), T0);
    assert_eq!(verdict(&out, 2), Some(Verdict::Ignore));
    assert!(bans(&out).is_empty());
}

#[test]
fn a_block_failing_proof_of_work_gets_its_sender_banned_with_the_rule() {
    let (_, blocks) = source(1);
    let mut bad = blocks[0].clone();
    let target = crate::consensus::pow::target_from_compact(bad.header.bits).unwrap();
    while crate::consensus::pow::hash_to_u256(&bad.block_hash()) <= target {
        bad.header.nonce += 1;
    }
    let mut core = core();
    let out = core.handle(gossip(1, ALICE, GossipKind::Block, serialize(&bad)), T0);
    assert_eq!(verdict(&out, 1), Some(Verdict::Reject));
    assert_eq!(
        bans(&out),
        [(
            ALICE,
            Offence::InvalidBlock {
                hash: bad.block_hash(),
                error: crate::consensus::BlockError::Header(HeaderError::BadProofOfWork)
            }
        )]
    );
    assert_eq!(core.chain().height(), 0);
}

#[test]
fn undecodable_gossip_is_a_ban_and_undecodable_transactions_too() {
    let mut core = core();
    let out = core.handle(gossip(1, ALICE, GossipKind::Block, vec![0xff; 10]), T0);
    assert_eq!(verdict(&out, 1), Some(Verdict::Reject));
    assert_eq!(bans(&out), [(ALICE, Offence::UndecodableGossip(GossipKind::Block))]);
    let out = core.handle(gossip(2, BOB, GossipKind::Tx, vec![1, 2, 3]), T0);
    assert_eq!(bans(&out), [(BOB, Offence::UndecodableGossip(GossipKind::Tx))]);
}

#[test]
fn a_peer_ahead_is_synced_headers_first_then_blocks() {
    let (ahead, blocks) = source(3);
    let mut core = core();
    let out = core.handle(Input::Net(NetEvent::Connected { peer: ALICE, noban: false }), T0);
    let status = asks(&out);
    assert_eq!(status.len(), 1);
    assert_eq!((status[0].peer, &status[0].req), (ALICE, &SyncRequest::Status));

    let tip: ChainTip = serve::chain_tip(&ahead);
    let resp = SyncResponse::Status(tip);
    let out =
        core.handle(Input::Net(NetEvent::Response { id: status[0].id, peer: ALICE, resp }), T0);
    let headers = asks(&out);
    assert!(matches!(headers.as_slice(), [Ask { req: SyncRequest::Headers { .. }, .. }]));
    assert!(core.snapshot().syncing);

    let bytes = blocks.iter().flat_map(|b| b.header.to_bytes()).collect();
    let resp = SyncResponse::Headers(bytes);
    let out =
        core.handle(Input::Net(NetEvent::Response { id: headers[0].id, peer: ALICE, resp }), T0);
    assert_eq!(core.chain().best_header().height, 3);
    let wanted = asks(&out);
    let [Ask { id, req: SyncRequest::Blocks(hashes), .. }] = wanted.as_slice() else {
        panic!("expected one blocks request, got {wanted:?}");
    };
    assert_eq!(hashes.len(), 3);

    let resp = SyncResponse::Blocks(blocks.iter().map(serialize).collect());
    let (out, log) =
        logged(|| core.handle(Input::Net(NetEvent::Response { id: *id, peer: ALICE, resp }), T0));
    // The operator sees the block that reaches the best header; the ones before it are
    // covered by the progress line.
    let connected: Vec<&str> = log.lines().filter(|l| l.contains("block connected")).collect();
    assert_eq!(connected.len(), 3, "{log}");
    assert!(connected[..2].iter().all(|l| l.contains("DEBUG")), "{log}");
    assert!(connected[2].contains("INFO") && connected[2].contains("height=3"), "{log}");
    assert_eq!(core.chain().tip(), blocks[2].block_hash());
    assert!(!core.snapshot().syncing);
    assert_eq!(
        out.iter().filter(|o| matches!(o, Output::Event(NodeEvent::Block { .. }))).count(),
        3
    );
}

#[test]
fn a_peer_on_another_genesis_is_banned() {
    let mut core = core();
    let out = core.handle(Input::Net(NetEvent::Connected { peer: ALICE, noban: false }), T0);
    let id = asks(&out)[0].id;
    let resp =
        SyncResponse::Status(ChainTip { genesis: [0; 32], tip: [1; 32], height: 5, work: [1; 32] });
    let out = core.handle(Input::Net(NetEvent::Response { id, peer: ALICE, resp }), T0);
    assert_eq!(bans(&out), [(ALICE, Offence::BadSyncData(SyncFault::WrongGenesis))]);
}

#[test]
fn peers_are_asked_their_tip_on_the_clock_and_timeouts_disconnect_never_ban() {
    let mut core = core();
    let out = core.handle(Input::Net(NetEvent::Connected { peer: ALICE, noban: false }), T0);
    let mut ids = vec![asks(&out)[0].id];
    // The status round asks every peer again, then not before STATUS_INTERVAL.
    let second = asks(&core.handle(Input::Tick, T0 + Duration::from_secs(1)));
    assert!(matches!(second.as_slice(), [Ask { peer: ALICE, req: SyncRequest::Status, .. }]));
    ids.push(second[0].id);
    assert!(asks(&core.handle(Input::Tick, T0 + Duration::from_secs(30))).is_empty());
    let third = asks(&core.handle(Input::Tick, T0 + Duration::from_secs(31)));
    assert_eq!(third.len(), 1);
    ids.push(third[0].id);
    // A frozen peer lets them all time out: two faults are counted, the third
    // disconnects it; no ban, no points.
    let failed = |id| Input::Net(NetEvent::RequestFailed { id, peer: ALICE, timed_out: true });
    let at = T0 + REQUEST_TIMEOUT;
    for id in &ids[..2] {
        let out = core.handle(failed(*id), at);
        assert!(bans(&out).is_empty() && disconnects(&out).is_empty(), "{out:?}");
    }
    assert_eq!(core.snapshot().peer_faults.get(&ALICE), Some(&(2, 0)));
    let out = core.handle(failed(ids[2]), at);
    assert!(bans(&out).is_empty());
    assert_eq!(disconnects(&out).len(), 1, "{out:?}");
    assert!(disconnects(&out)[0].1.contains("not a ban"), "{out:?}");
    assert_eq!(core.scores.points(&ALICE), 0);
}

#[test]
fn a_kept_peer_that_would_be_banned_is_disconnected_instead() {
    let mut core = core();
    core.handle(Input::Net(NetEvent::Connected { peer: ALICE, noban: true }), T0);
    let out = core.handle(gossip(1, ALICE, GossipKind::Block, vec![0xff; 10]), T0);
    assert_eq!(verdict(&out, 1), Some(Verdict::Reject), "the message is still refused");
    assert!(bans(&out).is_empty());
    let gone = disconnects(&out);
    assert_eq!(gone.len(), 1);
    assert!(
        gone[0].1.contains("undecodable block") && gone[0].1.contains("not banned"),
        "{gone:?}"
    );
}

#[test]
fn blocks_we_do_not_have_are_left_out_of_the_answer() {
    let core_ = core();
    let resp =
        serve::answer(core_.chain(), None, core_.mempool(), &SyncRequest::Blocks(vec![[7; 32]]));
    assert_eq!(resp, SyncResponse::Blocks(vec![]));
}

#[test]
fn regtest_mines_on_demand_through_the_solver_and_replies_once() {
    let mut core = core();
    let (tx, rx) = std::sync::mpsc::channel();
    let reply = ReplyTo::new(move |mined| drop(tx.send(mined)));
    let out = core.handle(Input::Command(Command::Mine { blocks: 2, to: None, reply }), T0);
    let solve_next = |out: Vec<Output>, core: &mut Core| -> Vec<Output> {
        let template = out
            .into_iter()
            .find_map(|o| match o {
                Output::Solve(t) => Some(t),
                _ => None,
            })
            .expect("a template to solve");
        let mut block = template.block;
        solve(&mut block.header);
        core.handle(Input::Solved(Some(block)), T0)
    };
    let out = solve_next(out, &mut core);
    assert!(!out.iter().any(|o| matches!(o, Output::Reply(..))), "one block to go");
    let out = solve_next(out, &mut core);
    let published = out
        .iter()
        .filter(|o| matches!(o, Output::Net(NetAction::Publish { kind: GossipKind::Block, .. })))
        .count();
    let mut replies = out.into_iter().filter_map(|o| match o {
        Output::Reply(reply) => Some(reply),
        _ => None,
    });
    let (Some(reply), None) = (replies.next(), replies.next()) else {
        panic!("expected one reply");
    };
    assert!(rx.try_recv().is_err(), "the answer waits for the driver to deliver it");
    reply.deliver();
    let Ok(Ok(hashes)) = rx.try_recv() else { panic!("expected the mined hashes") };
    assert_eq!(hashes.len(), 2);
    assert_eq!(core.chain().tip(), hashes[1]);
    assert_eq!(published, 1, "each mined block is gossiped as it is accepted");
}

#[test]
fn the_same_inputs_at_the_same_times_give_the_same_outputs() {
    let (ahead, blocks) = source(2);
    let run = || {
        let mut core = core();
        let mut trace = Vec::new();
        let mut out =
            core.handle(Input::Net(NetEvent::Connected { peer: ALICE, noban: false }), T0);
        trace.push(format!("{out:?}"));
        let id = asks(&out)[0].id;
        let resp = SyncResponse::Status(serve::chain_tip(&ahead));
        out = core.handle(Input::Net(NetEvent::Response { id, peer: ALICE, resp }), T0);
        trace.push(format!("{out:?}"));
        for (i, b) in blocks.iter().enumerate() {
            let t = T0 + Duration::from_millis(100 * i as u64);
            out = core.handle(gossip(i as u64, BOB, GossipKind::Block, serialize(b)), t);
            trace.push(format!("{out:?}"));
        }
        out = core.handle(Input::Tick, T0 + Duration::from_secs(60));
        trace.push(format!("{out:?}"));
        trace
    };
    assert_eq!(run(), run());
}

#[test]
fn a_gossiped_orphan_is_held_and_its_sender_asked_how_it_connects() {
    let (_, blocks) = source(3);
    let mut core = core();
    core.handle(Input::Net(NetEvent::Connected { peer: ALICE, noban: false }), T0);
    // Block 3 first: its parent is unknown.
    let out = core.handle(gossip(1, ALICE, GossipKind::Block, serialize(&blocks[2])), T0);
    assert_eq!(verdict(&out, 1), Some(Verdict::Ignore), "an orphan is not forwarded");
    assert!(bans(&out).is_empty(), "an orphan is a race, not an offence (yet)");
    let headers: Vec<Ask> =
        asks(&out).into_iter().filter(|a| matches!(a.req, SyncRequest::Headers { .. })).collect();
    assert_eq!(headers.len(), 1);
    assert_eq!(headers[0].peer, ALICE, "the sender is asked for the headers that lead to it");
    // Its ancestors arrive: all three connect.
    for (i, b) in blocks[..2].iter().enumerate() {
        core.handle(gossip(2 + i as u64, BOB, GossipKind::Block, serialize(b)), T0);
    }
    assert_eq!(core.chain().tip(), blocks[2].block_hash());
}

#[test]
fn an_invalid_orphan_is_blamed_on_its_sender_not_on_whoever_sent_its_parent() {
    let (chain, blocks) = source(1);
    // Block 2 on block 1, with a coinbase paying twice the subsidy: valid proof of work,
    // invalid only once it is connected.
    let parent = &blocks[0];
    let height = 2;
    let value = 2 * chain.params().subsidy(height);
    let coinbase =
        Transaction::coinbase(height, vec![crate::primitives::TxOut { value, pubkey: [1; 32] }], 0);
    let bits = parent.header.bits;
    let bad = crate::testkit::solved_block(
        parent.block_hash(),
        parent.header.time + 1,
        bits,
        coinbase,
        vec![],
    );
    let mut core = core();
    let out = core.handle(gossip(1, ALICE, GossipKind::Block, serialize(&bad)), T0);
    assert!(bans(&out).is_empty(), "an orphan is not judged yet");
    let out = core.handle(gossip(2, BOB, GossipKind::Block, serialize(parent)), T0);
    assert_eq!(verdict(&out, 2), Some(Verdict::Accept), "Bob's block is fine");
    let banned = bans(&out);
    assert_eq!(banned.len(), 1, "{banned:?}");
    assert_eq!(banned[0].0, ALICE, "the orphan's sender is charged");
    assert!(matches!(
        banned[0].1,
        Offence::InvalidBlock { error: crate::consensus::BlockError::CoinbaseOverpay { .. }, .. }
    ));
    assert_eq!(core.chain().tip(), parent.block_hash());
}

#[test]
fn an_offence_the_network_reports_is_judged_and_charged() {
    let mut core = core();
    let flood = || Input::Net(NetEvent::Misbehaved { peer: ALICE, offence: Offence::RequestFlood });
    for _ in 0..4 {
        assert!(bans(&core.handle(flood(), T0)).is_empty());
    }
    assert_eq!(core.scores.points(&ALICE), 4 * Offence::RequestFlood.points());
    assert_eq!(bans(&core.handle(flood(), T0)), [(ALICE, Offence::RequestFlood)]);
}

#[test]
fn a_frame_cut_off_is_a_fault_and_garbage_an_offence() {
    use crate::protocol::FrameError;
    let mut core = core();
    let cut = || Input::Net(NetEvent::BadFrame { peer: ALICE, error: FrameError::Truncated });
    for _ in 0..2 {
        let out = core.handle(cut(), T0);
        assert!(bans(&out).is_empty() && disconnects(&out).is_empty());
    }
    assert_eq!(core.scores.points(&ALICE), 0, "a dead connection costs no points");
    let error = FrameError::Oversized { len: 1 << 30, cap: 1 << 16 };
    let out = core.handle(Input::Net(NetEvent::BadFrame { peer: BOB, error: error.clone() }), T0);
    assert_eq!(bans(&out), [(BOB, Offence::MalformedFrame(error))]);
}

#[test]
fn a_gossiped_orphan_its_sender_never_connects_costs_it_an_orphan_offence() {
    let (_, blocks) = source(3);
    let mut core = core();
    core.handle(Input::Net(NetEvent::Connected { peer: ALICE, noban: false }), T0);
    let out = core.handle(gossip(1, ALICE, GossipKind::Block, serialize(&blocks[2])), T0);
    let headers = asks(&out)
        .into_iter()
        .find(|a| matches!(a.req, SyncRequest::Headers { .. }))
        .expect("the sender is asked for the headers that lead to the orphan");
    assert_eq!(core.scores.points(&ALICE), 0, "an orphan is a race until its sender answers");
    // Its last headers answer (not a full batch) leaves the orphan's parent unknown.
    let resp = SyncResponse::Headers(Vec::new());
    let out = core.handle(Input::Net(NetEvent::Response { id: headers.id, peer: ALICE, resp }), T0);
    assert!(bans(&out).is_empty());
    assert_eq!(core.scores.points(&ALICE), Offence::OrphanBlock.points());
}

#[test]
fn an_orphan_whose_time_is_too_new_when_its_parent_arrives_is_dropped_not_condemned() {
    let (chain, blocks) = source(1);
    let parent = &blocks[0];
    let drift = u64::from(chain.params().max_future_block_time);
    let output = crate::primitives::TxOut { value: chain.params().subsidy(2), pubkey: [1; 32] };
    let early = crate::testkit::solved_block(
        parent.block_hash(),
        (CLOCK + drift + 60) as u32,
        parent.header.bits,
        Transaction::coinbase(2, vec![output], 0),
        vec![],
    );
    let mut core = core();
    core.handle(gossip(1, ALICE, GossipKind::Block, serialize(&early)), T0);
    let (out, log) =
        logged(|| core.handle(gossip(2, BOB, GossipKind::Block, serialize(parent)), T0));
    assert_eq!(verdict(&out, 2), Some(Verdict::Accept));
    assert!(bans(&out).is_empty());
    assert_eq!(core.scores.points(&ALICE), 0, "early is not the sender's fault");
    assert!(!log.contains("block rejected while connecting"), "not invalid, only early: {log}");
    assert_eq!(core.chain().tip(), parent.block_hash());
    // Once its time has come, the same block is taken.
    let later = T0 + Duration::from_secs(drift + 60);
    let out = core.handle(gossip(3, ALICE, GossipKind::Block, serialize(&early)), later);
    assert_eq!(verdict(&out, 3), Some(Verdict::Accept));
    assert_eq!(core.chain().tip(), early.block_hash());
}

/// A core whose chain has a mature coin of `key(1)`, and two transactions: `key(1)` pays
/// `key(2)`, which pays `key(3)` (a parent and its child).
fn core_with_payments() -> (Core, Transaction, Transaction) {
    use crate::primitives::{COIN, TxOut};
    use crate::testkit::{coinbase_input, input_of, key, pubkey, spend};
    let mut chain = regtest_chain();
    let first = extend(&mut chain, vec![], pubkey(&key(1)));
    for _ in 0..100 {
        extend(&mut chain, vec![], [4; 32]);
    }
    let parent = spend(
        &[coinbase_input(&first)],
        vec![TxOut { value: 49 * COIN, pubkey: pubkey(&key(2)) }],
        &[&key(1)],
    );
    let child = spend(
        &[input_of(&parent, 0)],
        vec![TxOut { value: 48 * COIN, pubkey: pubkey(&key(3)) }],
        &[&key(2)],
    );
    let mining = MiningConfig { enabled: false, payout: [9; 32] };
    (Core::new(chain, Mempool::default(), mining), parent, child)
}

fn published_txs(out: &[Output]) -> Vec<Txid> {
    out.iter()
        .filter_map(|o| match o {
            Output::Net(NetAction::Publish { kind: GossipKind::Tx, data }) => {
                deserialize::<Transaction>(data).ok().map(|t| t.txid())
            }
            _ => None,
        })
        .collect()
}

#[test]
fn a_child_gossiped_before_its_parent_waits_as_an_orphan_and_is_taken_with_it() {
    let (mut core, parent, child) = core_with_payments();
    core.handle(Input::Net(NetEvent::Connected { peer: ALICE, noban: false }), T0);
    let out = core.handle(gossip(1, ALICE, GossipKind::Tx, serialize(&child)), T0);
    assert_eq!(verdict(&out, 1), Some(Verdict::Ignore));
    assert!(!core.mempool().contains(&child.txid()));
    let out = core.handle(gossip(2, ALICE, GossipKind::Tx, serialize(&parent)), T0);
    assert_eq!(verdict(&out, 2), Some(Verdict::Accept));
    assert!(core.mempool().contains(&parent.txid()) && core.mempool().contains(&child.txid()));
    assert_eq!(published_txs(&out), [child.txid()], "the orphan is relayed once taken");
}

#[test]
fn peers_in_step_reconcile_their_mempools_once_per_connection() {
    let (mut core, parent, child) = core_with_payments();
    let out = core.handle(Input::Net(NetEvent::Connected { peer: ALICE, noban: false }), T0);
    let status = asks(&out)[0].id;
    // Alice is at our tip: we are in step, so we ask for her mempool.
    let resp = SyncResponse::Status(serve::chain_tip(core.chain()));
    let out = core.handle(Input::Net(NetEvent::Response { id: status, peer: ALICE, resp }), T0);
    let mempool_ask = asks(&out);
    let [Ask { id, req: SyncRequest::Mempool, .. }] = mempool_ask.as_slice() else {
        panic!("no mempool request: {out:?}");
    };
    let resp = SyncResponse::Txids(vec![parent.txid().0, child.txid().0]);
    let out = core.handle(Input::Net(NetEvent::Response { id: *id, peer: ALICE, resp }), T0);
    let txs_ask = asks(&out);
    let [Ask { id, req: SyncRequest::Txs(wanted), .. }] = txs_ask.as_slice() else {
        panic!("no transactions request: {out:?}");
    };
    assert_eq!(wanted, &vec![parent.txid().0, child.txid().0]);
    let resp = SyncResponse::Txs(vec![serialize(&parent), serialize(&child)]);
    let out = core.handle(Input::Net(NetEvent::Response { id: *id, peer: ALICE, resp }), T0);
    assert!(core.mempool().contains(&parent.txid()) && core.mempool().contains(&child.txid()));
    assert_eq!(published_txs(&out), [parent.txid(), child.txid()], "passed on to our peers");
    // The next status round does not ask again.
    let tick = core.handle(Input::Tick, T0 + Duration::from_secs(31));
    let status = asks(&tick)[0].id;
    let resp = SyncResponse::Status(serve::chain_tip(core.chain()));
    let out = core.handle(Input::Net(NetEvent::Response { id: status, peer: ALICE, resp }), T0);
    assert!(asks(&out).is_empty(), "{out:?}");
}

#[test]
fn our_own_transactions_are_announced_again_until_they_confirm() {
    let (mut core, parent, _) = core_with_payments();
    let reply = ReplyTo::ignore();
    let out = core.handle(Input::Command(Command::SubmitTx { tx: parent.clone(), reply }), T0);
    assert_eq!(published_txs(&out), [parent.txid()]);
    let out = core.handle(Input::Tick, T0 + Duration::from_secs(60));
    assert!(published_txs(&out).is_empty(), "not inside the gossip duplicate window");
    let out = core.handle(Input::Tick, T0 + REBROADCAST + Duration::from_secs(1));
    assert_eq!(published_txs(&out), [parent.txid()]);
}

#[test]
fn a_saved_mempool_comes_back_revalidated_and_our_payments_are_announced_again() {
    use crate::mempool::saved::{decode_saved, encode_saved};
    let (mut core, parent, child) = core_with_payments();
    let reply = ReplyTo::ignore();
    core.handle(Input::Command(Command::SubmitTx { tx: parent.clone(), reply }), T0);
    let mut out = Vec::new();
    core.ledger.accept_tx(child.clone(), &mut out).unwrap();
    let saved = core.saved_mempool();
    assert_eq!(
        saved.iter().map(|s| (s.tx.txid(), s.own)).collect::<Vec<_>>(),
        [(parent.txid(), true), (child.txid(), false)],
        "arrival order, ours marked"
    );
    // Through the file format, plus a transaction spending a coin that does not exist.
    let mut saved = decode_saved(&encode_saved(&saved)).unwrap();
    let mut forged = child.clone();
    forged.inputs[0].prevout.vout = 7;
    saved.push(crate::mempool::saved::SavedTx { tx: forged, own: true });
    let (mut fresh, _, _) = core_with_payments();
    assert_eq!(fresh.restore_mempool(saved, T0), 2, "the forged one is refused");
    assert!(fresh.mempool().contains(&parent.txid()) && fresh.mempool().contains(&child.txid()));
    let out = fresh.handle(Input::Tick, T0 + Duration::from_secs(1));
    assert!(published_txs(&out).is_empty(), "nothing gossiped before peers connect: {out:?}");
    let out = fresh.handle(Input::Tick, T0 + REBROADCAST + Duration::from_secs(1));
    assert_eq!(published_txs(&out), [parent.txid()], "ours announced again, not the child");
}

#[test]
fn misbehaviour_is_logged_by_peer_id_and_a_ban_once_by_the_edge_that_carries_it_out() {
    // Once: `peer misbehaved peer=peer#1` at WARN, then the edge's `banning peer`: the
    // internal key, and two lines for one event.
    let mut core = core();
    core.handle(Input::Net(NetEvent::Connected { peer: ALICE, noban: false }), T0);
    core.handle(Input::Net(NetEvent::Named { peer: ALICE, name: "12D3KooWAlice".into() }), T0);
    let (out, log) = logged(|| core.handle(gossip(1, ALICE, GossipKind::Block, vec![1, 2, 3]), T0));
    assert_eq!(bans(&out).len(), 1, "{out:?}");
    let line =
        log.lines().find(|l| l.contains("peer misbehaved")).unwrap_or_else(|| panic!("{log}"));
    assert!(line.contains("peer=12D3KooWAlice") && !line.contains("peer#"), "{line}");
    assert!(!log.contains("WARN"), "the network edge logs the ban it carries out: {log}");
}
