//! Reachability: what AutoNAT says of us, and the relay slots a node holds while nobody
//! can dial it.
//!
//! AutoNAT asks a connected peer to dial us back at the addresses we listen on and the
//! addresses peers saw us at; the answers flip [`Reachability`]. A node that is not
//! reachable reserves a slot on up to [`MAX_RELAYS`] relays among its peers (peers that
//! offer libp2p's relay protocol, which a node does only while it is reachable) and is then
//! reachable *through* them at `/…/p2p/<relay>/p2p-circuit/p2p/<us>`. A peer that dials
//! that address gets a relayed connection, which DCUtR then tries to turn into a direct
//! one. This type only keeps the books; the network task carries out what it picks.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use libp2p::core::transport::ListenerId;
use libp2p::multiaddr::Protocol;
use libp2p::swarm::ConnectionId;
use libp2p::{Multiaddr, PeerId, Swarm, autonat};
use tracing::{debug, info};

use super::addr::with_peer_id;
use super::behaviour::Behaviour;
use super::service::Service;

/// Relays a node that cannot be dialled holds reservations on.
pub const MAX_RELAYS: usize = 2;
/// A relay that refused us or dropped our reservation is not asked again for this long.
pub const RELAY_RETRY: Duration = Duration::from_secs(60);

/// Whether other hosts can dial us, as AutoNAT last concluded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Reachability {
    /// No verdict yet (no peer has dialled us back either way).
    #[default]
    Unknown,
    /// A peer dialled us back at this address.
    Public(Multiaddr),
    /// Peers tried and could not dial us: we are behind NAT or a firewall.
    Private,
}

impl Reachability {
    /// `unknown`, `public` or `private`, as the API shows it.
    #[must_use]
    pub fn name(&self) -> &'static str {
        match self {
            Self::Unknown => "unknown",
            Self::Public(_) => "public",
            Self::Private => "private",
        }
    }
}

/// A reservation asked for or held.
#[derive(Debug, Clone)]
struct Slot {
    relay: PeerId,
    /// Our address through the relay (`…/p2p/<relay>/p2p-circuit`).
    circuit: Multiaddr,
    accepted: bool,
}

/// The relays we could use and the reservations we hold.
#[derive(Debug, Default)]
pub struct Relays {
    /// Connected peers that offer relaying, with the address they are reachable at.
    offers: BTreeMap<PeerId, Multiaddr>,
    /// Reservations, by the listener that holds each.
    slots: HashMap<ListenerId, Slot>,
    /// Relays that failed us, and since when.
    failed: HashMap<PeerId, Instant>,
}

impl Relays {
    /// `peer` offers relaying (its identify lists the hop protocol) at one of `addrs`, the
    /// addresses it advertises (confirmed or configured ones only). The first direct one
    /// we may dial is kept; `local_ok` allows loopback and private addresses.
    pub fn offer(&mut self, peer: PeerId, addrs: &[Multiaddr], local_ok: bool) {
        let usable = addrs.iter().find(|a| {
            !a.iter().any(|p| p == Protocol::P2pCircuit) && (local_ok || !super::addr::is_local(a))
        });
        match usable {
            Some(a) => {
                // Confirmed addresses come with the peer's `/p2p/<id>`; `wanted` adds it.
                self.offers.insert(peer, super::addr::without_peer_id(a));
            }
            None => {
                self.offers.remove(&peer);
            }
        }
    }

    /// `peer` disconnected: no longer a candidate (its listener closes by itself).
    pub fn gone(&mut self, peer: &PeerId) {
        self.offers.remove(peer);
    }

    /// Relays to ask for a slot now: offers we hold no slot with and that did not fail us
    /// lately, as many as are missing to [`MAX_RELAYS`], each with the address to listen
    /// on (`<relay addr>/p2p/<relay>/p2p-circuit`).
    #[must_use]
    pub fn wanted(&self, now: Instant) -> Vec<(PeerId, Multiaddr)> {
        let missing = MAX_RELAYS.saturating_sub(self.slots.len());
        self.offers
            .iter()
            .filter(|(p, _)| !self.slots.values().any(|s| s.relay == **p))
            .filter(|(p, _)| self.failed.get(*p).is_none_or(|t| now >= *t + RELAY_RETRY))
            .take(missing)
            .map(|(p, a)| (*p, a.clone().with(Protocol::P2p(*p)).with(Protocol::P2pCircuit)))
            .collect()
    }

    /// A reservation was asked of `relay` through `listener`.
    pub fn asked(&mut self, listener: ListenerId, relay: PeerId, circuit: Multiaddr) {
        self.slots.insert(listener, Slot { relay, circuit, accepted: false });
    }

    /// `relay` accepted: returns our address through it, the first time.
    pub fn accepted(&mut self, relay: &PeerId) -> Option<Multiaddr> {
        let slot = self.slots.values_mut().find(|s| s.relay == *relay && !s.accepted)?;
        slot.accepted = true;
        Some(slot.circuit.clone())
    }

    /// A listener closed: if it held a reservation, that relay is done with for
    /// [`RELAY_RETRY`]; returns it.
    pub fn closed(&mut self, listener: ListenerId, now: Instant) -> Option<PeerId> {
        let slot = self.slots.remove(&listener)?;
        self.failed.insert(slot.relay, now);
        Some(slot.relay)
    }

    /// Every listener holding or asking for a slot (to close them once we are reachable).
    #[must_use]
    pub fn listeners(&self) -> Vec<ListenerId> {
        self.slots.keys().copied().collect()
    }

    /// Our addresses through relays that accepted us.
    #[must_use]
    pub fn addrs(&self) -> Vec<Multiaddr> {
        let mut addrs: Vec<Multiaddr> =
            self.slots.values().filter(|s| s.accepted).map(|s| s.circuit.clone()).collect();
        addrs.sort();
        addrs
    }
}

/// What the network task knows of its own reachability: AutoNAT's verdict, the addresses
/// it advertises, the relay slots it holds or seeks, and relayed connections.
#[derive(Debug, Default)]
pub(super) struct Reach {
    /// AutoNAT's verdict.
    pub(super) reachability: Reachability,
    /// Addresses we advertise: confirmed by AutoNAT or a relay, or configured.
    pub(super) advertised: Vec<Multiaddr>,
    /// Relays we could use and the slots we hold.
    pub(super) relays: Relays,
    /// The relayed connection kept to each peer reached through a relay, and whether we
    /// dialled it.
    pub(super) relayed: HashMap<PeerId, (ConnectionId, bool)>,
    /// `--external-addr`: never withdrawn whatever AutoNAT says.
    configured: Vec<Multiaddr>,
}

impl Reach {
    pub(super) fn new(configured: Vec<Multiaddr>) -> Self {
        Reach { configured, ..Reach::default() }
    }
}

impl<E> Service<E> {
    /// Two NATed peers that find each other at once each dial the other's relayed address,
    /// and two hole punches on the same ports would spoil each other: both sides keep the
    /// relayed connection dialled by the smaller peer id, whichever came up first, and
    /// close the other. False if the new connection was the one closed.
    pub(super) fn one_relayed(
        &mut self,
        swarm: &mut Swarm<Behaviour>,
        peer: PeerId,
        new: ConnectionId,
        we_dialled: bool,
    ) -> bool {
        let local = *swarm.local_peer_id();
        let kept = |dialled_by_us: bool| dialled_by_us == (local < peer);
        let relayed = &mut self.reach.relayed;
        match relayed.get(&peer).copied() {
            None => {
                relayed.insert(peer, (new, we_dialled));
                true
            }
            Some((old, old_dialled)) if kept(we_dialled) && !kept(old_dialled) => {
                debug!(%peer, "closing the other relayed connection to a peer");
                swarm.close_connection(old);
                relayed.insert(peer, (new, we_dialled));
                true
            }
            Some(_) if !kept(we_dialled) => {
                debug!(%peer, "closing the second relayed connection to a peer");
                swarm.close_connection(new);
                false
            }
            Some(_) => true,
        }
    }

    /// One of several connections to `peer` closed: forget it if it was the relayed one.
    pub(super) fn relayed_closed(&mut self, peer: PeerId, connection: ConnectionId) {
        if self.reach.relayed.get(&peer).is_some_and(|(c, _)| *c == connection) {
            self.reach.relayed.remove(&peer);
        }
    }

    /// A second, direct connection to a peer we reached through a relay (a hole punch, or
    /// a dial that got through): the peer list shows the direct one.
    pub(super) fn upgraded(&mut self, peer: PeerId, addr: &Multiaddr, outbound: bool) {
        if let Some(p) = self.conns.peers.get_mut(&peer)
            && p.relayed
        {
            p.addr = addr.clone();
            p.outbound = outbound;
            p.relayed = false;
            self.dirty = true;
        }
    }

    /// AutoNAT changed its mind. Public: the address is confirmed (libp2p adds it), any
    /// relay slots are given up. Private: an address confirmed before is withdrawn (unless
    /// configured) and relay slots are sought.
    pub(super) fn reachability_changed(
        &mut self,
        swarm: &mut Swarm<Behaviour>,
        old: autonat::NatStatus,
        new: autonat::NatStatus,
    ) {
        let reach = match new {
            autonat::NatStatus::Public(addr) => {
                info!(addr = %addr, "reachable at {addr}");
                for listener in self.reach.relays.listeners() {
                    swarm.remove_listener(listener);
                }
                Reachability::Public(addr)
            }
            autonat::NatStatus::Private => {
                info!(
                    "not reachable from outside: peers cannot dial in; outbound connections still work; see docs/operations.md"
                );
                if let autonat::NatStatus::Public(addr) = old
                    && !self.reach.configured.contains(&addr)
                {
                    swarm.remove_external_address(&addr);
                }
                Reachability::Private
            }
            autonat::NatStatus::Unknown => {
                debug!("reachability unknown again");
                Reachability::Unknown
            }
        };
        self.reach.reachability = reach;
        self.dirty = true;
        self.reserve_relays(swarm);
    }

    /// A peer told us (identify) whether it relays: `Some(its addresses)` if it does.
    pub(super) fn relay_offered(
        &mut self,
        swarm: &mut Swarm<Behaviour>,
        peer: PeerId,
        addrs: Option<&[Multiaddr]>,
        local_ok: bool,
    ) {
        match addrs {
            Some(addrs) => {
                self.reach.relays.offer(peer, addrs, local_ok);
                self.reserve_relays(swarm);
            }
            None => self.reach.relays.gone(&peer),
        }
    }

    /// While we are not reachable, asks relays among our peers for slots, up to
    /// [`MAX_RELAYS`].
    pub(super) fn reserve_relays(&mut self, swarm: &mut Swarm<Behaviour>) {
        if self.reach.reachability != Reachability::Private {
            return;
        }
        for (relay, circuit) in self.reach.relays.wanted(Instant::now()) {
            match swarm.listen_on(circuit.clone()) {
                Ok(listener) => {
                    info!(relay = %relay, addr = %circuit, "asking a relay for a slot");
                    self.reach.relays.asked(listener, relay, circuit);
                }
                Err(e) => debug!(relay = %relay, error = %e, "cannot listen through relay"),
            }
        }
    }

    /// A relay granted us a slot: we are reachable through it.
    pub(super) fn relay_slot_reserved(&mut self, swarm: &Swarm<Behaviour>, relay: PeerId) {
        if let Some(addr) = self.reach.relays.accepted(&relay) {
            let full = with_peer_id(&addr, *swarm.local_peer_id());
            info!(relay = %relay, addr = %full, "relay slot reserved: reachable through {full}");
            self.dirty = true;
        }
    }

    /// A listener closed; a relay's means our slot there is gone.
    pub(super) fn listener_closed(
        &mut self,
        swarm: &mut Swarm<Behaviour>,
        listener: ListenerId,
        error: Option<String>,
    ) {
        if let Some(relay) = self.reach.relays.closed(listener, Instant::now()) {
            info!(relay = %relay, error = ?error, "relay slot lost");
            self.dirty = true;
            self.reserve_relays(swarm);
        } else {
            debug!(?listener, error = ?error, "listener closed");
        }
    }

    /// libp2p confirmed an external address (AutoNAT, a relay): advertise it.
    pub(super) fn external_confirmed(&mut self, swarm: &mut Swarm<Behaviour>, address: &Multiaddr) {
        if self.reach.advertised.contains(address) {
            debug!(addr = %address, "external address confirmed again");
        } else {
            info!(addr = %address, "advertising external address");
            self.external_changed(swarm);
        }
    }

    /// An external address expired: stop advertising it.
    pub(super) fn external_expired(&mut self, swarm: &mut Swarm<Behaviour>, address: &Multiaddr) {
        info!(addr = %address, "no longer advertising external address");
        self.external_changed(swarm);
    }

    /// Our advertised addresses changed: show them, and tell connected peers at once.
    fn external_changed(&mut self, swarm: &mut Swarm<Behaviour>) {
        self.reach.advertised = swarm.external_addresses().cloned().collect();
        self.dirty = true;
        let peers: Vec<PeerId> = swarm.connected_peers().copied().collect();
        swarm.behaviour_mut().identify.push(peers);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> Multiaddr {
        s.parse().unwrap()
    }

    #[test]
    fn at_most_two_relays_and_only_reachable_direct_addresses() {
        let mut r = Relays::default();
        let now = Instant::now();
        let (a, b, c, d) = (PeerId::random(), PeerId::random(), PeerId::random(), PeerId::random());
        r.offer(a, &[addr("/ip4/10.0.0.1/tcp/1")], false); // private: not for a public peer
        r.offer(b, &[addr("/ip4/8.8.8.8/tcp/1/p2p-circuit"), addr("/ip4/8.8.4.4/tcp/2")], false);
        r.offer(c, &[addr(&format!("/ip4/1.1.1.1/tcp/3/p2p/{c}"))], false);
        r.offer(d, &[addr("/ip4/9.9.9.9/tcp/4")], false);
        let wanted = r.wanted(now);
        assert_eq!(wanted.len(), MAX_RELAYS);
        assert!(wanted.iter().all(|(p, _)| *p != a));
        for (p, circuit) in &wanted {
            let text = circuit.to_string();
            assert!(text.ends_with(&format!("/p2p/{p}/p2p-circuit")), "{circuit}");
            assert_eq!(text.matches("/p2p/").count(), 1, "{circuit}");
            assert!(!circuit.to_string().starts_with("/ip4/8.8.8.8"), "relayed address used");
        }
    }

    #[test]
    fn a_relay_that_failed_waits_and_held_slots_are_not_asked_twice() {
        let mut r = Relays::default();
        let now = Instant::now();
        let (a, b) = (PeerId::random(), PeerId::random());
        r.offer(a, &[addr("/ip4/127.0.0.1/tcp/1")], true);
        r.offer(b, &[addr("/ip4/127.0.0.1/tcp/2")], true);
        let ids = [ListenerId::next(), ListenerId::next()];
        for (id, (p, circuit)) in ids.iter().zip(r.wanted(now)) {
            r.asked(*id, p, circuit);
        }
        assert!(r.wanted(now).is_empty(), "both slots asked for");
        let circuit = r.accepted(&a).expect("a's slot");
        assert_eq!(r.accepted(&a), None, "reported once");
        assert_eq!(r.addrs(), vec![circuit]);
        let failed = r.closed(ids[1], now).expect("a slot");
        assert!(r.wanted(now).is_empty(), "the failed relay is not asked again at once");
        let again = r.wanted(now + RELAY_RETRY);
        assert_eq!(again.len(), 1);
        assert_eq!(again[0].0, failed, "asked again after RELAY_RETRY");
        r.gone(&failed);
        assert!(r.wanted(now + RELAY_RETRY).is_empty(), "a relay gone is no candidate");
    }
}
