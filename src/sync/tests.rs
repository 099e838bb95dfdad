//! The sync manager driven by hand with a fake clock: what it asks, of whom, and when it
//! gives up.

use std::time::Duration;

use super::*;
use crate::consensus::Network;
use crate::consensus::genesis::genesis_hash;
use crate::core::chain_tip;
use crate::core::score::{Charge, Offence, PeerScores};
use crate::primitives::Block;
use crate::testkit::{CLOCK, extend, regtest_chain};

const T0: Time = Time::from_secs(CLOCK);
const A: PeerKey = PeerKey(1);
const B: PeerKey = PeerKey(2);

/// A chain of `n` blocks elsewhere, and its blocks.
fn ahead(n: usize) -> (ChainState, Vec<Block>) {
    let mut chain = regtest_chain();
    let blocks = (0..n).map(|_| extend(&mut chain, vec![], [4; 32])).collect();
    (chain, blocks)
}

/// A fresh chain that has `blocks`' headers but none of their data.
fn headers_of(blocks: &[Block]) -> ChainState {
    let mut chain = regtest_chain();
    for b in blocks {
        chain.accept_header(&b.header, CLOCK).unwrap();
    }
    chain
}

/// A manager with peers `peers` connected, each showing `tip`, answered at T0.
fn with_peers(peers: &[PeerKey], tip: ChainTip, chain: &ChainState) -> (SyncManager, Vec<Ask>) {
    let mut sync = SyncManager::new(genesis_hash(Network::Regtest));
    let mut asks = Vec::new();
    for p in peers {
        let status = sync.connected(*p, T0);
        asks.extend(sync.on_status(status[0].id, tip, chain, T0).unwrap());
    }
    (sync, asks)
}

fn blocks_asks(asks: &[Ask]) -> Vec<(PeerKey, Vec<[u8; 32]>)> {
    asks.iter()
        .filter_map(|a| match &a.req {
            SyncRequest::Blocks(h) => Some((a.peer, h.clone())),
            _ => None,
        })
        .collect()
}

#[test]
fn headers_come_from_one_peer_then_blocks_are_spread_over_all() {
    let (source, blocks) = ahead(100);
    let mut chain = regtest_chain();
    let (mut sync, asks) = with_peers(&[A, B], chain_tip(&source), &chain);
    let headers: Vec<&Ask> =
        asks.iter().filter(|a| matches!(a.req, SyncRequest::Headers { .. })).collect();
    assert_eq!(headers.len(), 1, "headers from one peer at a time: {asks:?}");
    let from = headers[0].peer;
    assert!(sync.is_syncing(&chain));

    let bytes: Vec<u8> = blocks.iter().flat_map(|b| b.header.to_bytes()).collect();
    let answer = sync.on_headers(headers[0].id, &bytes).unwrap().unwrap();
    assert!(!answer.full);
    let (accepted, error) = chain.accept_headers(&answer.headers, CLOCK);
    assert!(error.is_none());
    let (asks, unresolved) =
        sync.headers_accepted(&answer, accepted.last().copied(), Stop::No, &chain, T0);
    assert_eq!(unresolved, 0);
    let batches = blocks_asks(&asks);
    // 100 blocks in batches of 16 (their size is unknown yet): 7 batches over both
    // peers, at most 4 each (neither link is measured yet).
    assert_eq!(batches.iter().map(|(_, h)| h.len()).sum::<usize>(), 100);
    assert!(batches.iter().all(|(_, h)| h.len() <= MAX_BLOCKS_PER_REQUEST));
    for peer in [A, B] {
        let n = batches.iter().filter(|(p, _)| *p == peer).count();
        assert!((1..=MIN_BATCHES).contains(&n), "{peer} has {n} batches");
    }
    assert!(batches.iter().any(|(p, _)| *p == from));
}

#[test]
fn a_batch_that_stalls_the_download_goes_to_another_peer_and_the_staller_is_named() {
    let (source, blocks) = ahead(16);
    let chain = headers_of(&blocks);
    let (mut sync, asks) = with_peers(&[A], chain_tip(&source), &chain);
    let batches = blocks_asks(&asks);
    assert_eq!(batches.len(), 1);
    let first = asks.iter().find(|a| matches!(a.req, SyncRequest::Blocks(_))).unwrap().id;

    // Alone, A keeps its batch past the stall timeout: nobody else could serve it.
    let (asks, staller) = sync.tick(&chain, T0 + STALL_TIMEOUT + Duration::from_secs(1));
    assert!(blocks_asks(&asks).is_empty() && staller.is_none());
    assert!(sync.is_pending(first));

    // B arrives; nothing is asked twice while A's request is young.
    let at = T0 + STALL_TIMEOUT + Duration::from_secs(2);
    let status = sync.connected(B, at);
    let asks = sync.on_status(status[0].id, chain_tip(&source), &chain, at).unwrap();
    assert!(blocks_asks(&asks).is_empty(), "{asks:?}");
    // The next tick hands A's batch to B and names A (a fault, not an offence).
    let (asks, staller) = sync.tick(&chain, at + Duration::from_millis(1));
    assert_eq!(staller, Some(A));
    assert!(!sync.is_pending(first));
    let again = blocks_asks(&asks);
    assert!(again.iter().all(|(p, _)| *p == B), "{again:?}");
    assert_eq!(again.iter().map(|(_, h)| h.len()).sum::<usize>(), 16);
    // The timeout doubled: B's batch is not taken from it as fast.
    let (_, staller) = sync.tick(&chain, at + STALL_TIMEOUT + Duration::from_secs(1));
    assert_eq!(staller, None, "A is free now, but B's batch is younger than twice the timeout");
}

#[test]
fn a_request_that_times_out_is_given_up_and_asked_again() {
    let (source, blocks) = ahead(16);
    let chain = headers_of(&blocks);
    let (mut sync, asks) = with_peers(&[A], chain_tip(&source), &chain);
    let first = asks.iter().find(|a| matches!(a.req, SyncRequest::Blocks(_))).unwrap().id;
    let (asks, _) = sync.tick(&chain, T0 + REQUEST_TIMEOUT);
    assert!(blocks_asks(&asks).is_empty());
    assert!(sync.is_pending(first));
    let (asks, _) = sync.tick(&chain, T0 + REQUEST_TIMEOUT + Duration::from_millis(1));
    assert!(!sync.is_pending(first));
    assert_eq!(blocks_asks(&asks).iter().map(|(_, h)| h.len()).sum::<usize>(), 16);
}

#[test]
fn headers_from_our_future_are_not_asked_again_before_the_retry_time() {
    let (source, blocks) = ahead(3);
    let chain = regtest_chain();
    let (mut sync, asks) = with_peers(&[A], chain_tip(&source), &chain);
    let headers = asks.iter().find(|a| matches!(a.req, SyncRequest::Headers { .. })).unwrap();
    let bytes: Vec<u8> = blocks.iter().flat_map(|b| b.header.to_bytes()).collect();
    let answer = sync.on_headers(headers.id, &bytes).unwrap().unwrap();
    // The chain refused the first header as too new: no headers asked, from anyone.
    let (asks, _) = sync.headers_accepted(&answer, None, Stop::Future, &chain, T0);
    assert!(asks.iter().all(|a| !matches!(a.req, SyncRequest::Headers { .. })), "{asks:?}");
    assert!(sync.advance(&chain, T0 + Duration::from_secs(30)).is_empty());
    let later = sync.advance(&chain, T0 + FUTURE_RETRY);
    assert!(later.iter().any(|a| matches!(a.req, SyncRequest::Headers { .. })), "{later:?}");
}

#[test]
fn a_peer_that_leaves_mid_batch_hands_its_blocks_to_the_others() {
    let (source, blocks) = ahead(64);
    let chain = headers_of(&blocks);
    let (mut sync, asks) = with_peers(&[A, B], chain_tip(&source), &chain);
    let of_a: usize =
        blocks_asks(&asks).iter().filter(|(p, _)| *p == A).map(|(_, h)| h.len()).sum();
    assert!(of_a > 0);
    let asks = sync.disconnected(A, &chain, T0 + Duration::from_secs(2));
    let to_b = blocks_asks(&asks);
    assert!(to_b.iter().all(|(p, _)| *p == B));
    assert!(!to_b.is_empty(), "A's blocks went nowhere");
}

#[test]
fn a_peer_missing_blocks_it_might_not_have_is_not_asked_again_until_the_chain_changes() {
    let (source, blocks) = ahead(16);
    let chain = headers_of(&blocks);
    // A claims a tip we do not know: it might be on another branch.
    let mut claim = chain_tip(&source);
    claim.tip = [9; 32];
    let (mut sync, asks) = with_peers(&[A], claim, &chain);
    let ask = asks.iter().find(|a| matches!(a.req, SyncRequest::Blocks(_))).unwrap();
    let asked = sync.on_blocks(ask.id, 0, 0, T0).unwrap();
    assert!(!asked.provable);
    sync.cannot_serve(A, 1);
    assert!(blocks_asks(&sync.advance(&chain, T0)).is_empty());
    assert!(!sync.is_syncing(&chain), "nobody can serve: not syncing for ever");
    sync.best_chain_rewound();
    assert!(!blocks_asks(&sync.advance(&chain, T0)).is_empty(), "asked again after a rewind");
}

#[test]
fn orphans_a_peer_gossiped_must_be_reached_by_its_last_headers_answer() {
    let (source, blocks) = ahead(3);
    let chain = regtest_chain();
    let (mut sync, _) = with_peers(&[A], chain_tip(&source), &chain);
    sync.note_orphan(A, blocks[1].block_hash()); // its headers will reach this parent
    sync.note_orphan(A, BlockHash([7; 32])); // and not this one
    let mut chain = chain;
    let ask = sync.catch_up_from(A, &chain, T0);
    // A headers request is already open from the status answer: no second one.
    assert!(ask.is_empty());
    let (asks, _) = sync.tick(&chain, T0 + REQUEST_TIMEOUT + Duration::from_secs(1));
    let headers = asks.iter().find(|a| matches!(a.req, SyncRequest::Headers { .. })).unwrap();
    let bytes: Vec<u8> = blocks.iter().flat_map(|b| b.header.to_bytes()).collect();
    let answer = sync.on_headers(headers.id, &bytes).unwrap().unwrap();
    let (accepted, _) = chain.accept_headers(&answer.headers, CLOCK);
    let (_, unresolved) =
        sync.headers_accepted(&answer, accepted.last().copied(), Stop::No, &chain, T0);
    assert_eq!(unresolved, 1, "one orphan's parent is still unknown");
    // Each costs the sender 10 points: ten such orphans get it banned.
    let mut scores = PeerScores::default();
    let banned = (0..10).any(|_| scores.penalize(A, &Offence::OrphanBlock, T0).1 == Charge::Ban);
    assert!(banned);
}

#[test]
fn a_headers_answer_that_is_not_whole_headers_is_a_fault() {
    let (source, _) = ahead(1);
    let chain = regtest_chain();
    let (mut sync, asks) = with_peers(&[A], chain_tip(&source), &chain);
    let id = asks.iter().find(|a| matches!(a.req, SyncRequest::Headers { .. })).unwrap().id;
    assert_eq!(sync.on_headers(id, &[0; 81]).unwrap_err(), SyncFault::HeadersLength(81));
    assert!(!sync.is_pending(id));
    assert_eq!(
        sync.on_headers(id, &[0; 80]).unwrap().map(|a| a.headers.len()),
        None,
        "answered once"
    );
}

#[test]
fn a_peer_on_another_genesis_is_a_fault() {
    let chain = regtest_chain();
    let mut sync = SyncManager::new(genesis_hash(Network::Regtest));
    let status = sync.connected(A, T0);
    let mut tip = chain_tip(&chain);
    tip.genesis = genesis_hash(Network::Devnet).0;
    assert_eq!(sync.on_status(status[0].id, tip, &chain, T0).unwrap_err(), SyncFault::WrongGenesis);
}

/// Answers every open blocks request in `asks` at `now` with all it asked, `size` bytes a
/// block (the chain is not given them: they stay missing and are asked again), and
/// returns the requests that follow.
fn answer_all(
    sync: &mut SyncManager,
    asks: &[Ask],
    size: usize,
    chain: &ChainState,
    now: Time,
) -> Vec<Ask> {
    for ask in asks {
        if let SyncRequest::Blocks(hashes) = &ask.req {
            sync.on_blocks(ask.id, hashes.len(), hashes.len() * size, now).unwrap();
        }
    }
    sync.advance(chain, now)
}

/// A peer `rtt` away whose tip is `source`'s, its status answered after a round trip.
fn peer_at(rtt: Duration, source: &ChainState, chain: &ChainState) -> (SyncManager, Vec<Ask>) {
    let mut sync = SyncManager::new(genesis_hash(Network::Regtest));
    let status = sync.connected(A, T0);
    let asks = sync.on_status(status[0].id, chain_tip(source), chain, T0 + rtt).unwrap();
    (sync, asks)
}

#[test]
fn small_blocks_travel_128_to_a_request_once_their_size_is_known() {
    let (source, blocks) = ahead(600);
    let chain = headers_of(&blocks);
    let (mut sync, asks) = peer_at(Duration::ZERO, &source, &chain);
    // Their size unknown, the first requests hold 16 (any blocks fit).
    let first = blocks_asks(&asks);
    assert_eq!(first.len(), MIN_BATCHES);
    assert!(first.iter().all(|(_, h)| h.len() == LEGACY_BLOCKS_PER_REQUEST), "{first:?}");
    // 300-byte blocks: a request holds the most the protocol allows.
    let next = answer_all(&mut sync, &asks[..1], 300, &chain, T0);
    let next = blocks_asks(&next);
    assert_eq!(next.len(), 1);
    assert_eq!(next[0].1.len(), MAX_BLOCKS_PER_REQUEST);
    // The blocks grow to 200 kB: the next request is back to 16 at once.
    let open: Vec<Ask> = asks[1..2].to_vec();
    let after = blocks_asks(&answer_all(&mut sync, &open, 200_000, &chain, T0));
    assert_eq!(after.len(), 1);
    assert_eq!(after[0].1.len(), LEGACY_BLOCKS_PER_REQUEST);
}

#[test]
fn a_peer_that_refuses_large_requests_is_asked_sixteen_at_a_time() {
    // An older node refuses more than 16 blocks: the request is asked again, smaller,
    // of the same peer, and nobody is punished.
    let (source, blocks) = ahead(600);
    let chain = headers_of(&blocks);
    let (mut sync, asks) = peer_at(Duration::ZERO, &source, &chain);
    let asks = answer_all(&mut sync, &asks, 300, &chain, T0);
    let big: Vec<&Ask> =
        asks.iter().filter(|a| matches!(&a.req, SyncRequest::Blocks(h) if h.len() > 16)).collect();
    assert_eq!(big.len(), MIN_BATCHES, "{asks:?}");
    let again = sync.refused(big[0].id, &chain, T0);
    let again = blocks_asks(&again);
    assert_eq!(again.len(), 1);
    assert_eq!((again[0].0, again[0].1.len()), (A, LEGACY_BLOCKS_PER_REQUEST));
    // From then on, 16 at a time.
    let rest: Vec<Ask> = big[1..].iter().map(|a| (*a).clone()).collect();
    let later = blocks_asks(&answer_all(&mut sync, &rest, 300, &chain, T0));
    assert!(!later.is_empty() && later.iter().all(|(_, h)| h.len() == 16), "{later:?}");
}

#[test]
fn a_peer_far_away_is_given_more_blocks_in_flight_as_its_answers_show_the_link() {
    let (source, blocks) = ahead(1_500);
    let chain = headers_of(&blocks);
    // Blocks in flight after each round trip to a peer 100 ms away that answers
    // everything at once.
    let far = {
        let rtt = Duration::from_millis(100);
        let (mut sync, mut open) = peer_at(rtt, &source, &chain);
        let mut now = T0 + rtt;
        let mut in_flight = Vec::new();
        for _ in 0..8 {
            now = now + rtt;
            open = answer_all(&mut sync, &open, 300, &chain, now);
            in_flight.push(blocks_asks(&open).iter().map(|(_, h)| h.len()).sum::<usize>());
        }
        in_flight
    };
    // 100 ms away: the window grows as answers come, up to its bound.
    assert!(far.windows(2).all(|w| w[0] <= w[1]), "{far:?}");
    assert_eq!(far[0], MIN_BATCHES * MAX_BLOCKS_PER_REQUEST, "{far:?}");
    assert_eq!(*far.last().unwrap(), MAX_BATCHES * MAX_BLOCKS_PER_REQUEST, "{far:?}");
}

#[test]
fn a_peer_that_refuses_blocks_of_its_own_chain_is_not_asked_them_until_its_tip_moves() {
    // A node started from a snapshot holds the chain but not yet the blocks below the
    // snapshot's base: it refuses them, and is not asked in a loop.
    let (source, blocks) = ahead(16);
    let chain = headers_of(&blocks);
    let (mut sync, asks) = with_peers(&[A], chain_tip(&source), &chain);
    let ask = asks.iter().find(|a| matches!(a.req, SyncRequest::Blocks(_))).unwrap();
    assert!(blocks_asks(&sync.refused(ask.id, &chain, T0)).is_empty());
    assert!(blocks_asks(&sync.advance(&chain, T0)).is_empty());
    // It shows a new tip: it may have them now.
    let later = T0 + STATUS_INTERVAL;
    let (asks, _) = sync.tick(&chain, later);
    let status = asks.iter().find(|a| a.req == SyncRequest::Status).unwrap();
    let mut moved = chain_tip(&source);
    moved.tip = [8; 32];
    moved.height += 1;
    let asks = sync.on_status(status.id, moved, &chain, later).unwrap();
    assert_eq!(blocks_asks(&asks).len(), 1, "{asks:?}");
}

#[test]
fn a_peer_that_relays_a_block_is_known_to_be_at_least_there() {
    // Once a peer's height moved only with the status rounds: 13 while the chain was at 35.
    let (mut chain, _) = ahead(3);
    let (mut sync, _) = with_peers(&[A], chain_tip(&chain), &chain);
    let shown = |sync: &SyncManager| sync.peer_tips().find(|(p, _)| *p == A).map(|(_, t)| t.height);
    assert_eq!(shown(&sync), Some(3));
    let block = extend(&mut chain, vec![], [5; 32]);
    let entry = *chain.entry(&block.block_hash()).unwrap();
    sync.peer_has(A, &entry);
    assert_eq!(shown(&sync), Some(4));
    // An older block it relays again does not move it back.
    let old = *chain.entry(&chain.hash_at(2).unwrap()).unwrap();
    sync.peer_has(A, &old);
    assert_eq!(shown(&sync), Some(4));
    // A peer that never showed its tip is not given one.
    sync.connected(B, T0);
    sync.peer_has(B, &entry);
    assert!(sync.peer_tips().all(|(p, _)| p != B));
}
