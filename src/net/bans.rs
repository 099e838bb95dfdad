//! Bans: peers refused for a while, and when each ban lifts. The core decides who is
//! banned (or the operator does); this file carries it out on the swarm: the peer is
//! disconnected, blocked, dropped from Kademlia and the peer book, and unblocked when the
//! ban expires or is lifted.

use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime};

use libp2p::{PeerId, Swarm};
use tracing::{debug, info, warn};

use super::behaviour::Behaviour;
use super::service::Service;
use super::snapshot::BanInfo;

/// The longest ban `--ban-secs` takes: 100 years, far inside what `Instant` and
/// `SystemTime` can add (they hold seconds in an i64).
pub const MAX_BAN: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// The peers banned now.
#[derive(Debug)]
pub(super) struct Bans {
    /// How long a ban lasts.
    duration: Duration,
    /// Each banned peer: when its ban lifts, and what the API shows of it.
    banned: BTreeMap<PeerId, (Instant, BanInfo)>,
}

impl Bans {
    pub(super) fn new(duration: Duration) -> Self {
        Bans { duration, banned: BTreeMap::new() }
    }

    /// Records a ban of `peer` from `now`; false if it is banned already, whose first
    /// reason stays (one batch can carry an invalid block and its descendants: the
    /// offence is the first, not the echoes after it).
    fn add(&mut self, peer: PeerId, reason: String, now: Instant) -> bool {
        if self.banned.get(&peer).is_some_and(|(until, _)| *until > now) {
            return false;
        }
        // `--ban-secs` is bounded, but a clock near its end must not panic here either:
        // past what the clock can hold, a ban lasts as far as it can.
        let until = SystemTime::now()
            .checked_add(self.duration)
            .unwrap_or(SystemTime::UNIX_EPOCH + MAX_BAN);
        let lifts = now.checked_add(self.duration).unwrap_or_else(|| now + MAX_BAN);
        let info = BanInfo { reason, until };
        self.banned.insert(peer, (lifts, info));
        true
    }

    /// Why our own ban list refuses a dial to `peer`, with the time left, if it does: a
    /// dial error alone only says "denied".
    pub(super) fn refusal(&self, peer: &PeerId, now: Instant) -> Option<String> {
        let (until, info) = self.banned.get(peer)?;
        let left = until.saturating_duration_since(now).as_secs();
        Some(format!("our own ban list refuses it for {left} s more: {}", info.reason))
    }

    /// The bans as the API shows them.
    pub(super) fn listed(&self) -> BTreeMap<PeerId, BanInfo> {
        self.banned.iter().map(|(p, (_, info))| (*p, info.clone())).collect()
    }
}

impl<E> Service<E> {
    /// Disconnects and refuses `peer` for the ban duration.
    pub(super) fn ban(&mut self, swarm: &mut Swarm<Behaviour>, peer: PeerId, reason: String) {
        let duration = self.bans.duration;
        if !self.bans.add(peer, reason.clone(), Instant::now()) {
            debug!(peer = %peer, %reason, "already banned");
            return;
        }
        let secs = duration.as_secs();
        warn!(peer = %peer, %reason, secs, "banning peer for {secs} s: {reason}");
        self.discovery.book.forget(&peer);
        let b = swarm.behaviour_mut();
        b.blocked.block_peer(peer);
        b.kad.remove_peer(&peer);
        self.dirty = true;
        let _ = swarm.disconnect_peer_id(peer);
    }

    /// Lifts a ban early (the operator's call).
    pub(super) fn unban(&mut self, swarm: &mut Swarm<Behaviour>, peer: PeerId) {
        swarm.behaviour_mut().blocked.unblock_peer(peer);
        self.bans.banned.remove(&peer);
        self.dirty = true;
        info!(peer = %peer, "ban lifted");
    }

    /// Lifts the bans whose time is up.
    pub(super) fn expire_bans(&mut self, swarm: &mut Swarm<Behaviour>) {
        let now = Instant::now();
        let expired: Vec<PeerId> =
            self.bans.banned.iter().filter(|(_, (t, _))| *t <= now).map(|(p, _)| *p).collect();
        for peer in expired {
            swarm.behaviour_mut().blocked.unblock_peer(peer);
            self.bans.banned.remove(&peer);
            self.dirty = true;
            info!(peer = %peer, "ban expired");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_dial_says_it_is_our_own_ban_with_the_reason_and_the_time_left() {
        let mut bans = Bans::new(Duration::from_secs(600));
        let (peer, other) = (PeerId::random(), PeerId::random());
        let t0 = Instant::now();
        bans.add(peer, "invalid block 00ab".into(), t0);
        let why = bans.refusal(&peer, t0 + Duration::from_secs(100)).expect("banned");
        assert_eq!(why, "our own ban list refuses it for 500 s more: invalid block 00ab");
        assert_eq!(bans.refusal(&other, t0), None, "a peer not banned is no refusal");
        assert_eq!(bans.listed().len(), 1);
    }

    #[test]
    fn a_second_offence_while_banned_keeps_the_first_reason() {
        let mut bans = Bans::new(Duration::from_secs(600));
        let peer = PeerId::random();
        let t0 = Instant::now();
        assert!(bans.add(peer, "bad signature".into(), t0));
        assert!(!bans.add(peer, "descends from an invalid block".into(), t0));
        assert_eq!(bans.listed()[&peer].reason, "bad signature");
        // Once the ban has run out, a new offence is a new ban.
        assert!(bans.add(peer, "garbage".into(), t0 + Duration::from_secs(601)));
        assert_eq!(bans.listed()[&peer].reason, "garbage");
    }
}
