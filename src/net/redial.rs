//! Peers the operator named (`--bootstrap`, `POST /peers`, `minichain peers add`) are kept
//! for as long as the node runs: a dial that fails, or a connection that drops, is retried
//! after a backoff that starts at [`FIRST_RETRY`] and doubles up to [`MAX_RETRY`], as
//! bitcoind does with `-addnode`. A node started before its bootstrap peer is up therefore
//! joins as soon as that peer is.

use std::time::{Duration, Instant};

use libp2p::multiaddr::Protocol;
use libp2p::{Multiaddr, PeerId};

use super::book::Source;

/// First retry delay.
pub const FIRST_RETRY: Duration = Duration::from_secs(1);
/// Longest retry delay.
pub const MAX_RETRY: Duration = Duration::from_secs(60);

/// One kept peer.
#[derive(Debug, Clone)]
pub struct Kept {
    /// The address as given (with or without `/p2p`).
    pub addr: Multiaddr,
    /// Its peer id, once known (given in the address or learned on connecting).
    pub peer: Option<PeerId>,
    /// `Bootstrap` or `Operator`.
    pub source: Source,
    backoff: Duration,
    /// When to dial next; `None` while a dial is in flight or while connected.
    next: Option<Instant>,
    connected: bool,
    /// Connections in a row we closed for its faults (each doubles the wait after it).
    strikes: u32,
    /// The current connection is being closed for its faults.
    struck: bool,
    /// The operator removed it: no longer dialled nor listed. Kept in place, since dials
    /// in flight name kept peers by index.
    removed: bool,
}

/// The kept peers and when each is due.
#[derive(Debug, Default)]
pub struct Redial {
    kept: Vec<Kept>,
}

impl Redial {
    /// Keeps `addr`, due at once. False if it is kept already.
    pub fn add(&mut self, addr: Multiaddr, source: Source, now: Instant) -> bool {
        if self.live().any(|k| k.addr == addr) {
            return false;
        }
        let peer = addr.iter().find_map(|p| match p {
            Protocol::P2p(id) => Some(id),
            _ => None,
        });
        let fresh = Kept {
            addr,
            peer,
            source,
            backoff: FIRST_RETRY,
            next: Some(now),
            connected: false,
            strikes: 0,
            struck: false,
            removed: false,
        };
        match self.kept.iter_mut().find(|k| k.removed && k.addr == fresh.addr) {
            Some(slot) => *slot = fresh,
            None => self.kept.push(fresh),
        }
        true
    }

    /// Stops keeping the peers at `addr` (as given, or the same without `/p2p`) or with
    /// id `peer`; returns what was removed.
    pub fn remove(&mut self, addr: Option<&Multiaddr>, peer: Option<PeerId>) -> Vec<Kept> {
        let mut out = Vec::new();
        for k in self.kept.iter_mut().filter(|k| !k.removed) {
            let same_addr =
                addr.is_some_and(|a| k.addr == *a || super::addr::without_peer_id(&k.addr) == *a);
            if same_addr || (peer.is_some() && k.peer == peer) {
                k.removed = true;
                k.next = None;
                out.push(k.clone());
            }
        }
        out
    }

    fn live(&self) -> impl Iterator<Item = &Kept> {
        self.kept.iter().filter(|k| !k.removed)
    }

    /// The kept peers as the API shows them, as of `now`.
    pub fn listed(&self, now: Instant) -> Vec<super::snapshot::KeptInfo> {
        let wall = std::time::SystemTime::now();
        self.live()
            .map(|k| super::snapshot::KeptInfo {
                addr: k.addr.clone(),
                peer: k.peer,
                source: k.source,
                connected: k.connected,
                next_dial: k.next.map(|t| wall + t.saturating_duration_since(now)),
            })
            .collect()
    }

    /// We are closing `peer`'s connection for its faults: if it is kept, the redial after
    /// it waits longer.
    pub fn strike(&mut self, peer: &PeerId) {
        if let Some(k) = self.kept.iter_mut().find(|k| !k.removed && k.peer.as_ref() == Some(peer))
        {
            k.strikes = k.strikes.saturating_add(1);
            k.struck = true;
        }
    }

    /// The kept peer `i` (`None` once removed).
    pub fn get(&self, i: usize) -> Option<&Kept> {
        self.kept.get(i).filter(|k| !k.removed)
    }

    /// Whether `peer` is a kept peer.
    pub fn is_kept(&self, peer: &PeerId) -> bool {
        self.live().any(|k| k.peer.as_ref() == Some(peer))
    }

    /// The kept peers due for a dial at `now`; each is marked in flight.
    pub fn due(&mut self, now: Instant) -> Vec<usize> {
        let mut out = Vec::new();
        for (i, k) in self.kept.iter_mut().enumerate() {
            if !k.removed && !k.connected && k.next.is_some_and(|t| t <= now) {
                k.next = None;
                out.push(i);
            }
        }
        out
    }

    /// The dial of kept peer `i` failed at `now`; returns the delay until the next try.
    pub fn failed(&mut self, i: usize, now: Instant) -> Duration {
        let Some(k) = self.kept.get_mut(i).filter(|k| !k.removed) else { return MAX_RETRY };
        let wait = k.backoff;
        k.next = Some(now + wait);
        k.backoff = (k.backoff * 2).min(MAX_RETRY);
        wait
    }

    /// Kept peer `i` could not be dialled because a dial to it is already under way:
    /// due again after [`FIRST_RETRY`], its backoff unchanged.
    pub fn retry_soon(&mut self, i: usize, now: Instant) {
        if let Some(k) = self.kept.get_mut(i).filter(|k| !k.removed) {
            k.next = Some(now + FIRST_RETRY);
        }
    }

    /// Kept peer `i` is connected as `peer`.
    pub fn connected(&mut self, i: usize, peer: PeerId) {
        if let Some(k) = self.kept.get_mut(i).filter(|k| !k.removed) {
            k.peer = Some(peer);
            k.connected = true;
            k.next = None;
            k.backoff = FIRST_RETRY;
        }
    }

    /// `peer` disconnected at `now`: if it is kept, it is due again after the first
    /// backoff, or, if we closed it for its faults, after a backoff doubled for each such
    /// close in a row. Returns its index and the wait if so.
    pub fn disconnected(&mut self, peer: &PeerId, now: Instant) -> Option<(usize, Duration)> {
        let i = self
            .kept
            .iter()
            .position(|k| !k.removed && k.peer.as_ref() == Some(peer) && k.connected)?;
        let k = &mut self.kept[i];
        k.connected = false;
        let wait = if std::mem::take(&mut k.struck) {
            FIRST_RETRY.saturating_mul(1 << k.strikes.min(6)).min(MAX_RETRY)
        } else {
            k.strikes = 0;
            k.backoff
        };
        k.next = Some(now + wait);
        Some((i, wait))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr() -> Multiaddr {
        "/ip4/127.0.0.1/tcp/24050".parse().unwrap()
    }

    #[test]
    fn a_kept_peer_is_retried_with_a_doubling_capped_backoff_for_ever() {
        let t0 = Instant::now();
        let mut r = Redial::default();
        assert!(r.add(addr(), Source::Bootstrap, t0));
        assert!(!r.add(addr(), Source::Operator, t0), "kept once");
        assert_eq!(r.due(t0), [0]);
        assert!(r.due(t0).is_empty(), "in flight: not due twice");
        let mut waits = Vec::new();
        let mut now = t0;
        for _ in 0..9 {
            let wait = r.failed(0, now);
            assert!(r.due(now + wait - Duration::from_millis(1)).is_empty());
            now += wait;
            assert_eq!(r.due(now), [0]);
            waits.push(wait.as_secs());
        }
        assert_eq!(waits, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
    }

    #[test]
    fn a_kept_peer_that_drops_is_redialled_and_its_backoff_starts_over() {
        let t0 = Instant::now();
        let mut r = Redial::default();
        r.add(addr(), Source::Operator, t0);
        r.due(t0);
        r.failed(0, t0);
        r.failed(0, t0);
        let peer = PeerId::random();
        r.connected(0, peer);
        assert!(r.is_kept(&peer));
        assert!(r.due(t0 + Duration::from_secs(3_600)).is_empty(), "connected: nothing due");
        assert_eq!(r.disconnected(&peer, t0), Some((0, FIRST_RETRY)));
        assert!(r.due(t0).is_empty());
        assert_eq!(r.due(t0 + FIRST_RETRY), [0]);
        assert_eq!(r.disconnected(&PeerId::random(), t0), None, "others are not kept");
    }

    #[test]
    fn a_kept_peer_closed_for_its_faults_waits_longer_each_time_until_it_behaves() {
        let t0 = Instant::now();
        let mut r = Redial::default();
        r.add(addr(), Source::Bootstrap, t0);
        let peer = PeerId::random();
        let mut waits = Vec::new();
        for _ in 0..3 {
            r.due(t0);
            r.connected(0, peer);
            r.strike(&peer);
            waits.push(r.disconnected(&peer, t0).map(|(_, w)| w.as_secs()));
        }
        assert_eq!(waits, [Some(2), Some(4), Some(8)]);
        let listed = r.listed(t0);
        assert!(!listed[0].connected && listed[0].next_dial.is_some(), "its next dial is shown");
        // A connection that ends without a fault starts the count over.
        r.connected(0, peer);
        assert_eq!(r.disconnected(&peer, t0), Some((0, FIRST_RETRY)));
        r.connected(0, peer);
        r.strike(&peer);
        assert_eq!(r.disconnected(&peer, t0), Some((0, 2 * FIRST_RETRY)));
    }

    #[test]
    fn a_removed_peer_is_neither_dialled_nor_listed_and_can_be_added_again() {
        let t0 = Instant::now();
        let mut r = Redial::default();
        let peer = PeerId::random();
        let with_id = addr().with(Protocol::P2p(peer));
        r.add(with_id.clone(), Source::Bootstrap, t0);
        r.add("/ip4/127.0.0.1/tcp/24051".parse().unwrap(), Source::Operator, t0);
        r.due(t0);
        r.failed(0, t0);
        // By id, or by the address without its /p2p part.
        assert_eq!(r.remove(None, Some(peer)).len(), 1);
        assert!(r.remove(Some(&addr()), None).is_empty(), "removed once");
        assert!(!r.is_kept(&peer));
        assert_eq!(r.listed(t0).len(), 1);
        assert!(r.due(t0 + MAX_RETRY).iter().all(|&i| i != 0), "a removed peer is dialled");
        assert!(r.get(0).is_none());
        assert!(r.add(with_id, Source::Operator, t0), "added again");
        assert_eq!(r.listed(t0).len(), 2);
        assert_eq!(r.due(t0), [0]);
    }
}
