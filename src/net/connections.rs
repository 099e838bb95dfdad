//! Connections: kept peers dialled and redialled, connections opened and closed, and the
//! [`PeerKeys`] by which the core knows each connected peer.

use std::collections::{BTreeMap, HashMap};
use std::num::NonZeroU32;
use std::time::Instant;

use libp2p::core::ConnectedPoint;
use libp2p::core::transport::PortUse;
use libp2p::swarm::dial_opts::DialOpts;
use libp2p::swarm::{ConnectionError, ConnectionId, DialError};
use libp2p::{Multiaddr, PeerId, Swarm};
use tracing::{debug, info, warn};

use super::addr::{peer_id_of, without_peer_id};
use super::behaviour::Behaviour;
use super::book::Source;
use super::keys::PeerKeys;
use super::redial::Redial;
use super::service::Service;
use super::snapshot::PeerInfo;
use crate::core::NetEvent;

/// The connected peers and the peers we keep connected.
#[derive(Debug, Default)]
pub(super) struct Connections {
    /// The core's keys for connected peers (and recently gone ones).
    pub(super) keys: PeerKeys,
    /// Connected peers, as the API shows them.
    pub(super) peers: BTreeMap<PeerId, PeerInfo>,
    /// The kept peers (`--bootstrap`, `peers add`) and when each is due.
    redial: Redial,
    /// Dials of kept peers in flight: connection -> kept index.
    dials: HashMap<ConnectionId, usize>,
    /// Whether kept peers may be banned (`--ban-kept-peers`); by default they are `noban`.
    ban_kept: bool,
    /// Kept addresses whose `/p2p/` id turned out wrong: warned of once each.
    misnamed: std::collections::HashSet<Multiaddr>,
    /// Each connected peer's bytes; forgotten with its last connection.
    traffic: super::traffic::Traffic,
}

impl Connections {
    pub(super) fn new(ban_kept: bool, traffic: super::traffic::Traffic) -> Self {
        Connections { ban_kept, traffic, ..Connections::default() }
    }

    /// Whether `peer` is one the operator named (`--bootstrap`, `peers add`).
    pub(super) fn is_kept(&self, peer: &PeerId) -> bool {
        self.redial.is_kept(peer)
    }

    /// We close `peer` for cause: if it is kept, its next redial waits longer.
    pub(super) fn strike(&mut self, peer: &PeerId) {
        self.redial.strike(peer);
    }

    /// The kept peers as the API shows them.
    pub(super) fn kept(&self) -> Vec<super::snapshot::KeptInfo> {
        self.redial.listed(Instant::now())
    }
}

impl<E: From<NetEvent>> Service<E> {
    /// Keeps the `--bootstrap` peers (and tells Kademlia of those with a peer id).
    pub(super) fn keep_bootstrap(&mut self, swarm: &mut Swarm<Behaviour>, bootstrap: &[Multiaddr]) {
        let now = Instant::now();
        for addr in bootstrap {
            if let Some(peer) = peer_id_of(addr) {
                swarm.behaviour_mut().kad.add_address(&peer, without_peer_id(addr));
            }
            self.conns.redial.add(addr.clone(), Source::Bootstrap, now);
        }
        self.dial_kept(swarm);
    }

    /// Keeps a peer the operator added.
    pub(super) fn add_kept(&mut self, swarm: &mut Swarm<Behaviour>, addr: Multiaddr) {
        if self.conns.redial.add(addr.clone(), Source::Operator, Instant::now()) {
            info!(addr = %addr, "peer added: dialing it and keeping it connected");
            self.dial_kept(swarm);
        }
    }

    /// Stops keeping the peers the operator removed (by address or id) and closes their
    /// connections.
    pub(super) fn remove_kept(
        &mut self,
        swarm: &mut Swarm<Behaviour>,
        addr: Option<&Multiaddr>,
        peer: Option<PeerId>,
    ) {
        for k in self.conns.redial.remove(addr, peer) {
            info!(addr = %k.addr, "peer removed: no longer kept");
            self.dirty = true;
            if let Some(id) = k.peer {
                let _ = swarm.disconnect_peer_id(id);
            }
        }
        if let Some(id) = peer {
            let _ = swarm.disconnect_peer_id(id);
        }
    }

    /// A ping round trip to `peer`, shown in `peers`.
    pub(super) fn pinged(&mut self, peer: PeerId, rtt: std::time::Duration) {
        if let Some(p) = self.conns.peers.get_mut(&peer) {
            p.ping = Some(rtt);
            self.dirty = true;
        }
    }

    /// Dials the kept peers that are due.
    pub(super) fn dial_kept(&mut self, swarm: &mut Swarm<Behaviour>) {
        let now = Instant::now();
        let redial = &mut self.conns.redial;
        let due = redial.due(now);
        // The snapshot shows each kept peer's next dial.
        self.dirty |= !due.is_empty();
        for i in due {
            let Some(kept) = redial.get(i).cloned() else { continue };
            let opts = match kept.peer {
                Some(peer) => {
                    DialOpts::peer_id(peer).addresses(vec![without_peer_id(&kept.addr)]).build()
                }
                None => DialOpts::unknown_peer_id().address(kept.addr.clone()).build(),
            };
            let id = opts.connection_id();
            match swarm.dial(opts) {
                Ok(()) => {
                    debug!(addr = %kept.addr, "dialing kept peer");
                    self.conns.dials.insert(id, i);
                }
                // Another part of the node (Kademlia, the peer book) is dialling it now:
                // look again shortly, without counting a failure.
                Err(DialError::DialPeerConditionFalse(_)) => {
                    debug!(addr = %kept.addr, "a dial to the kept peer is already under way");
                    redial.retry_soon(i, now);
                }
                Err(e) => {
                    let wait = redial.failed(i, now);
                    match kept.peer.and_then(|p| self.bans.refusal(&p, now)) {
                        Some(why) => info!(
                            addr = %kept.addr,
                            retry_in_secs = wait.as_secs(),
                            "cannot dial {:?} peer {}: {why}; retrying in {} s",
                            kept.source,
                            kept.addr,
                            wait.as_secs()
                        ),
                        None => info!(
                            addr = %kept.addr,
                            error = %e,
                            retry_in_secs = wait.as_secs(),
                            "cannot dial {:?} peer, retrying",
                            kept.source
                        ),
                    }
                }
            }
        }
    }

    /// A connection is up. The first one to a peer makes it a connected peer; a second
    /// is an AutoNAT dial-back (closed), a direct connection replacing a relayed one, or a
    /// second relayed one (one of the two is closed).
    pub(super) fn on_established(
        &mut self,
        swarm: &mut Swarm<Behaviour>,
        peer: PeerId,
        endpoint: &ConnectedPoint,
        num_established: NonZeroU32,
        connection: ConnectionId,
    ) {
        let kept = self.conns.dials.remove(&connection);
        if let Some(i) = kept {
            self.conns.redial.connected(i, peer);
        }
        let relayed = endpoint.is_relayed();
        // Only AutoNAT dials from a fresh port (ours reuse the listen port, for hole
        // punching): a dial-back has served once established; a peer is not kept on a
        // second connection for it.
        if let ConnectedPoint::Dialer { port_use: PortUse::New, .. } = endpoint
            && num_established.get() > 1
        {
            debug!(peer = %peer, "closing the AutoNAT dial-back connection");
            swarm.close_connection(connection);
            return;
        }
        if num_established.get() > 1 && !relayed {
            self.upgraded(peer, endpoint.get_remote_address(), endpoint.is_dialer());
        }
        if relayed && !self.one_relayed(swarm, peer, connection, endpoint.is_dialer()) {
            return;
        }
        if num_established.get() > 1 {
            return;
        }
        let addr = endpoint.get_remote_address().clone();
        let outbound = endpoint.is_dialer();
        let source = match (kept.and_then(|i| self.conns.redial.get(i)), outbound) {
            (Some(k), _) => k.source,
            (None, true) => self.discovery.book.get(&peer).map_or(Source::Kademlia, |e| e.source),
            (None, false) => Source::Inbound,
        };
        let unix = crate::clock::unix_now();
        self.discovery.book.connected(peer, &addr, outbound, source, unix);
        let key = self.conns.keys.connect(peer);
        let info = PeerInfo {
            key,
            addr: addr.clone(),
            outbound,
            source,
            agent: None,
            relayed,
            since: std::time::SystemTime::now(),
            ping: None,
        };
        self.conns.peers.insert(peer, info);
        self.dirty = true;
        let peers = self.conns.peers.len();
        info!(
            peer = %peer,
            addr = %addr,
            outbound,
            relayed,
            peers,
            "peer connected ({peers} connected)"
        );
        let noban = !self.conns.ban_kept && (kept.is_some() || self.conns.redial.is_kept(&peer));
        self.emit(NetEvent::Connected { peer: key, noban });
        self.emit(NetEvent::Named { peer: key, name: peer.to_string() });
        if !outbound {
            self.make_room(swarm, peer);
        }
    }

    /// A connection closed; the last one to a peer makes it a disconnected peer.
    pub(super) fn on_closed(
        &mut self,
        peer: PeerId,
        connection: ConnectionId,
        num_established: u32,
        cause: Option<ConnectionError>,
    ) {
        if num_established > 0 {
            self.relayed_closed(peer, connection);
            return;
        }
        self.reach.relayed.remove(&peer);
        self.conns.peers.remove(&peer);
        self.conns.traffic.forget(&peer);
        self.identify_gone(&peer);
        self.dirty = true;
        let peers = self.conns.peers.len();
        let cause = close_cause(cause.as_ref());
        info!(peer = %peer, peers, cause, "peer disconnected ({peers} left): {cause}");
        if let Some((i, wait)) = self.conns.redial.disconnected(&peer, Instant::now())
            && let Some(k) = self.conns.redial.get(i)
        {
            let secs = wait.as_secs();
            info!(peer = %peer, addr = %k.addr, retry_in_secs = secs, "kept peer disconnected, redialing in {secs} s");
        }
        self.requests.gone(&peer);
        self.admission.gone(&peer);
        self.reach.relays.gone(&peer);
        if let Some(key) = self.conns.keys.disconnect(&peer) {
            self.emit(NetEvent::Disconnected { peer: key });
        }
    }

    /// Disconnects `peer` without a ban (faults, or an offence of a kept peer); a kept
    /// peer is redialled after a backoff that grows with each such disconnect.
    pub(super) fn disconnect(&mut self, swarm: &mut Swarm<Behaviour>, peer: PeerId, reason: &str) {
        info!(peer = %peer, %reason, "disconnecting peer: {reason}");
        self.conns.strike(&peer);
        let _ = swarm.disconnect_peer_id(peer);
    }

    /// A dial failed; a kept peer's is retried after its backoff.
    pub(super) fn on_dial_error(
        &mut self,
        peer: Option<PeerId>,
        error: &DialError,
        connection: ConnectionId,
    ) {
        if let Some(peer) = peer {
            self.discovery.book.failed(&peer);
        }
        let Some(i) = self.conns.dials.remove(&connection) else {
            let peer = peer.map(|p| p.to_string()).unwrap_or_default();
            debug!(%peer, error = %error, "outgoing connection failed");
            return;
        };
        let now = Instant::now();
        let wait = self.conns.redial.failed(i, now);
        self.dirty = true;
        if let Some(k) = self.conns.redial.get(i) {
            if let DialError::WrongPeerId { obtained, .. } = error {
                let expected = k.peer.map(|p| p.to_string()).unwrap_or_default();
                let secs = wait.as_secs();
                if self.conns.misnamed.insert(k.addr.clone()) {
                    warn!(
                        addr = %k.addr, %expected, %obtained,
                        "the peer at {} is {obtained}, not {expected}: fix the /p2p/ part of \
                         that address (retrying in {secs} s, quietly)",
                        without_peer_id(&k.addr)
                    );
                } else {
                    debug!(addr = %k.addr, %obtained, retry_in_secs = secs, "kept peer still of another id");
                }
                return;
            }
            let refused = peer.or(k.peer).and_then(|p| self.bans.refusal(&p, now));
            info!(
                addr = %k.addr,
                error = %refused.unwrap_or_else(|| one_line(error)),
                retry_in_secs = wait.as_secs(),
                "cannot reach {} peer {}, retrying in {} s",
                if k.source == Source::Bootstrap { "bootstrap" } else { "added" },
                k.addr,
                wait.as_secs()
            );
        }
    }
}

/// A dial error as the operator needs it: the root cause of each address's failure
/// ("Connection refused (os error 111)"), not libp2p's nested wrappers.
fn one_line(e: &DialError) -> String {
    fn root(mut e: &dyn std::error::Error) -> String {
        while let Some(source) = e.source() {
            e = source;
        }
        e.to_string()
    }
    match e {
        DialError::Transport(errors) => {
            let mut causes: Vec<String> = errors.iter().map(|(_, e)| root(e)).collect();
            causes.dedup();
            causes.join("; ")
        }
        e => root(e),
    }
}

/// Why a connection closed, as an operator reads it. No cause: we closed it on purpose (a
/// ban, an eviction, shutdown). The peer stopping or closing shows as an end of stream or
/// a reset (yamux says "connection is closed"): that is no error, whatever libp2p calls it.
fn close_cause(cause: Option<&ConnectionError>) -> String {
    match cause {
        None => "closed".to_owned(),
        Some(ConnectionError::KeepAliveTimeout) => "idle: nothing left to say".to_owned(),
        Some(ConnectionError::IO(e)) if peer_went_away(e) => "closed by the peer".to_owned(),
        Some(ConnectionError::IO(e)) => format!("I/O error: {e}"),
    }
}

/// Whether `e`, or an error it wraps (yamux wraps the socket's), is the other side
/// closing or resetting the connection.
fn peer_went_away(e: &std::io::Error) -> bool {
    use std::io::ErrorKind;
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            let gone = matches!(
                io.kind(),
                ErrorKind::UnexpectedEof
                    | ErrorKind::ConnectionReset
                    | ErrorKind::BrokenPipe
                    | ErrorKind::ConnectionAborted
            );
            if gone || io.to_string() == "connection is closed" {
                return true;
            }
            // A custom io::Error's source() skips the error it holds: look at that one.
            cur = io.get_ref().map(|inner| inner as &(dyn std::error::Error + 'static));
        } else if err.to_string() == "connection is closed" {
            return true;
        } else {
            cur = err.source();
        }
    }
    false
}

#[cfg(test)]
mod close_tests {
    use libp2p::swarm::ConnectionError;

    use super::close_cause;

    #[test]
    fn a_peer_that_stops_is_no_connection_error() {
        let io = |e: std::io::Error| close_cause(Some(&ConnectionError::IO(e)));
        // What yamux reports when the other side closes, and what TCP does.
        assert_eq!(io(std::io::Error::other("connection is closed")), "closed by the peer");
        assert_eq!(io(std::io::ErrorKind::ConnectionReset.into()), "closed by the peer");
        assert_eq!(io(std::io::ErrorKind::UnexpectedEof.into()), "closed by the peer");
        // A reset wrapped in a decode error, as a killed peer's shows.
        #[derive(Debug, thiserror::Error)]
        #[error("decode error: i/o error: {0}")]
        struct Decode(#[source] std::io::Error);
        let wrapped = std::io::Error::other(Decode(std::io::ErrorKind::ConnectionReset.into()));
        assert_eq!(io(wrapped), "closed by the peer");
        let odd = io(std::io::Error::other("no route to host"));
        assert_eq!(odd, "I/O error: no route to host");
        assert_eq!(close_cause(None), "closed");
    }
}
