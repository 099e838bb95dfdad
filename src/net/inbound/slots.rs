//! Inbound slots that one host cannot monopolise.
//!
//! libp2p's connection limits count all inbound connections together: one host that opens
//! many TCP connections and never starts the handshake fills every pending slot, and honest
//! peers are shut out. So inbound connections are also capped per source: at most
//! [`MAX_PENDING_PER_IP`] handshakes in progress from one IP address, and at most
//! [`MAX_ESTABLISHED_PER_NET`] established connections from one /24 (IPv4) or /64 (IPv6)
//! network. A handshake that does not finish within the transport's connection timeout
//! (`net::inbound::HANDSHAKE_TIMEOUT`) is dropped. Outbound connections (bootstrap, book
//! and discovered peers) are never limited here, so they never depend on inbound slots.
//! Loopback is exempt: a devnet of several nodes on one machine is ordinary.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::IpAddr;
use std::task::{Context, Poll};

use libp2p::PeerId;
use libp2p::core::transport::PortUse;
use libp2p::core::{Endpoint, Multiaddr};
use libp2p::multiaddr::Protocol;
use libp2p::swarm::behaviour::ListenFailure;
use libp2p::swarm::{
    ConnectionClosed, ConnectionDenied, ConnectionId, FromSwarm, NetworkBehaviour, THandler,
    THandlerInEvent, THandlerOutEvent, ToSwarm, dummy,
};

/// Handshakes in progress from one IP address.
pub const MAX_PENDING_PER_IP: usize = 4;
/// Established inbound connections from one /24 or /64 network.
pub const MAX_ESTABLISHED_PER_NET: usize = 8;

/// Which network an address belongs to, for the established cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Net {
    V4([u8; 3]),
    V6([u8; 8]),
}

fn ip_of(addr: &Multiaddr) -> Option<IpAddr> {
    addr.iter().find_map(|p| match p {
        Protocol::Ip4(ip) => Some(IpAddr::V4(ip)),
        Protocol::Ip6(ip) => Some(IpAddr::V6(ip)),
        _ => None,
    })
}

fn net_of(ip: IpAddr) -> Net {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            Net::V4([o[0], o[1], o[2]])
        }
        IpAddr::V6(v6) => {
            let mut prefix = [0u8; 8];
            prefix.copy_from_slice(&v6.octets()[..8]);
            Net::V6(prefix)
        }
    }
}

/// Why an inbound connection was refused.
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    /// Too many handshakes in progress from this address.
    #[error("{0} has {MAX_PENDING_PER_IP} handshakes in progress already")]
    Pending(IpAddr),
    /// Too many connections from this network.
    #[error("{0}'s network has {MAX_ESTABLISHED_PER_NET} inbound connections already")]
    Established(IpAddr),
}

/// The counts, sans-IO: which inbound connections take which slots.
#[derive(Debug, Default)]
pub struct InboundSlots {
    pending: HashMap<ConnectionId, IpAddr>,
    pending_per_ip: HashMap<IpAddr, usize>,
    established: HashMap<ConnectionId, Net>,
    established_per_net: HashMap<Net, usize>,
}

impl InboundSlots {
    /// A handshake from `ip` starts; refused if that address has too many in progress.
    ///
    /// # Errors
    /// [`Refused::Pending`] over the cap.
    pub fn start(&mut self, id: ConnectionId, ip: IpAddr) -> Result<(), Refused> {
        if ip.is_loopback() {
            return Ok(());
        }
        if !take_slot(&mut self.pending_per_ip, ip, MAX_PENDING_PER_IP) {
            return Err(Refused::Pending(ip));
        }
        self.pending.insert(id, ip);
        Ok(())
    }

    /// The handshake of `id` ended (done or failed): its pending slot is free.
    pub fn end_handshake(&mut self, id: ConnectionId) {
        if let Some(ip) = self.pending.remove(&id) {
            free_slot(&mut self.pending_per_ip, ip);
        }
    }

    /// Connection `id` from `ip` is established; refused if its network has too many.
    ///
    /// # Errors
    /// [`Refused::Established`] over the cap.
    pub fn establish(&mut self, id: ConnectionId, ip: IpAddr) -> Result<(), Refused> {
        self.end_handshake(id);
        if ip.is_loopback() {
            return Ok(());
        }
        let net = net_of(ip);
        if !take_slot(&mut self.established_per_net, net, MAX_ESTABLISHED_PER_NET) {
            return Err(Refused::Established(ip));
        }
        self.established.insert(id, net);
        Ok(())
    }

    /// Connection `id` closed.
    pub fn closed(&mut self, id: ConnectionId) {
        self.end_handshake(id);
        if let Some(net) = self.established.remove(&id) {
            free_slot(&mut self.established_per_net, net);
        }
    }
}

/// Takes one of `cap` slots of `key`; false if they are all taken.
fn take_slot<K: std::hash::Hash + Eq>(counts: &mut HashMap<K, usize>, key: K, cap: usize) -> bool {
    let n = counts.entry(key).or_default();
    if *n >= cap {
        return false;
    }
    *n += 1;
    true
}

/// Gives back a slot of `key`.
fn free_slot<K: std::hash::Hash + Eq>(counts: &mut HashMap<K, usize>, key: K) {
    if let Some(n) = counts.get_mut(&key) {
        *n -= 1;
        if *n == 0 {
            counts.remove(&key);
        }
    }
}

/// The behaviour that applies [`InboundSlots`] to the swarm's inbound connections.
#[derive(Debug, Default)]
pub struct InboundLimits {
    slots: InboundSlots,
}

impl NetworkBehaviour for InboundLimits {
    type ConnectionHandler = dummy::ConnectionHandler;
    type ToSwarm = Infallible;

    fn handle_pending_inbound_connection(
        &mut self,
        id: ConnectionId,
        _local: &Multiaddr,
        remote: &Multiaddr,
    ) -> Result<(), ConnectionDenied> {
        match ip_of(remote) {
            Some(ip) => self.slots.start(id, ip).map_err(ConnectionDenied::new),
            None => Ok(()),
        }
    }

    fn handle_established_inbound_connection(
        &mut self,
        id: ConnectionId,
        _peer: PeerId,
        _local: &Multiaddr,
        remote: &Multiaddr,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        if let Some(ip) = ip_of(remote) {
            self.slots.establish(id, ip).map_err(ConnectionDenied::new)?;
        }
        Ok(dummy::ConnectionHandler)
    }

    fn handle_established_outbound_connection(
        &mut self,
        _id: ConnectionId,
        _peer: PeerId,
        _addr: &Multiaddr,
        _role: Endpoint,
        _port_use: PortUse,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        Ok(dummy::ConnectionHandler)
    }

    fn on_swarm_event(&mut self, event: FromSwarm) {
        match event {
            FromSwarm::ConnectionClosed(ConnectionClosed { connection_id, .. })
            | FromSwarm::ListenFailure(ListenFailure { connection_id, .. }) => {
                self.slots.closed(connection_id);
            }
            _ => {}
        }
    }

    fn on_connection_handler_event(
        &mut self,
        _peer: PeerId,
        _id: ConnectionId,
        event: THandlerOutEvent<Self>,
    ) {
        match event {}
    }

    fn poll(&mut self, _: &mut Context<'_>) -> Poll<ToSwarm<Self::ToSwarm, THandlerInEvent<Self>>> {
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn one_address_holds_at_most_a_few_handshakes_and_others_still_get_in() {
        let mut slots = InboundSlots::default();
        let mut n = 0;
        for i in 0..10 {
            if slots.start(ConnectionId::new_unchecked(i), ip("10.0.0.9")).is_ok() {
                n += 1;
            }
        }
        assert_eq!(n, MAX_PENDING_PER_IP);
        assert!(
            slots.start(ConnectionId::new_unchecked(100), ip("10.0.0.7")).is_ok(),
            "another host"
        );
        // A handshake that ends (timed out) frees its slot.
        slots.closed(ConnectionId::new_unchecked(0));
        assert!(slots.start(ConnectionId::new_unchecked(11), ip("10.0.0.9")).is_ok());
        assert!(slots.start(ConnectionId::new_unchecked(12), ip("127.0.0.1")).is_ok());
    }

    #[test]
    fn one_network_holds_at_most_a_few_established_connections() {
        let mut slots = InboundSlots::default();
        for i in 0..MAX_ESTABLISHED_PER_NET {
            let id = ConnectionId::new_unchecked(i);
            slots.start(id, ip(&format!("192.168.7.{}", i + 1))).unwrap();
            slots.establish(id, ip(&format!("192.168.7.{}", i + 1))).unwrap();
        }
        let extra = ConnectionId::new_unchecked(99);
        assert!(matches!(
            slots.establish(extra, ip("192.168.7.200")),
            Err(Refused::Established(_))
        ));
        assert!(slots.establish(ConnectionId::new_unchecked(98), ip("192.168.8.1")).is_ok());
        slots.closed(ConnectionId::new_unchecked(0));
        assert!(slots.establish(extra, ip("192.168.7.200")).is_ok(), "a closed one frees its slot");
        for i in 0..50 {
            assert!(slots.establish(ConnectionId::new_unchecked(200 + i), ip("127.0.0.1")).is_ok());
        }
    }
}
