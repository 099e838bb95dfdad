//! Which inbound peer gives way when the inbound slots are full, as Bitcoin Core decides
//! it: peers that were useful lately (relayed a block or transaction we accepted, answered
//! our sync requests) and the longest connected are protected, and of the others the one
//! that connected last is dropped. A newcomer therefore gets a slot unless every inbound
//! peer is protected, and an attacker that fills the slots with idle connections loses
//! them to the next honest peer, while peers that serve us stay.

use std::time::{Duration, Instant};

use libp2p::PeerId;

/// Inbound slots (connections other peers opened to us).
pub const MAX_INBOUND: usize = 100;
/// Peers protected for being useful lately.
pub const PROTECT_USEFUL: usize = 4;
/// What "lately" means.
pub const USEFUL_WINDOW: Duration = Duration::from_secs(600);

/// An inbound peer, as eviction sees it.
#[derive(Debug, Clone, Copy)]
pub struct Candidate {
    /// The peer.
    pub peer: PeerId,
    /// When it connected.
    pub since: Instant,
    /// When it was last useful, if ever.
    pub useful: Option<Instant>,
}

/// The inbound peer to disconnect to make room, `None` if every one is protected: the
/// [`PROTECT_USEFUL`] most recently useful (within [`USEFUL_WINDOW`]) and the longest
/// connected quarter are kept; of the rest, the one that connected last goes.
pub fn victim(candidates: &[Candidate], now: Instant) -> Option<PeerId> {
    let mut rest: Vec<Candidate> = candidates.to_vec();
    rest.sort_by_key(|c| std::cmp::Reverse(c.useful));
    let useful = rest
        .iter()
        .take(PROTECT_USEFUL)
        .take_while(|c| c.useful.is_some_and(|t| now.saturating_duration_since(t) <= USEFUL_WINDOW))
        .count();
    rest.drain(..useful);
    rest.sort_by_key(|c| c.since);
    let oldest = candidates.len() / 4;
    rest.drain(..oldest.min(rest.len()));
    rest.iter().max_by_key(|c| c.since).map(|c| c.peer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_youngest_peer_that_did_nothing_for_us_gives_way() {
        let t0 = Instant::now();
        let at = |s| t0 + Duration::from_secs(s);
        let (old, useful, idle1, idle2) =
            (PeerId::random(), PeerId::random(), PeerId::random(), PeerId::random());
        let now = at(1_000);
        let cands = [
            Candidate { peer: old, since: at(0), useful: None },
            Candidate { peer: useful, since: at(900), useful: Some(at(990)) },
            Candidate { peer: idle1, since: at(500), useful: None },
            Candidate { peer: idle2, since: at(800), useful: None },
        ];
        // useful is protected, old is the longest connected quarter: idle2 is the youngest
        // of the rest.
        assert_eq!(victim(&cands, now), Some(idle2));
        // Usefulness wears off.
        let later = at(2_000);
        assert_eq!(victim(&cands, later), Some(useful), "no longer useful, and the youngest");
        assert_eq!(victim(&cands[1..2], now), None, "a lone useful peer is protected");
        assert_eq!(victim(&cands[..1], now), Some(old), "a quarter of one peer protects none");
    }
}
