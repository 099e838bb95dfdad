//! Peer addresses as operators type them: a full multiaddr or plain `HOST:PORT`.

use libp2p::Multiaddr;
use libp2p::multiaddr::Protocol;

/// A peer address (`--bootstrap`, `peers add`, `POST /peers`) that cannot be dialled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddrError {
    /// Neither a multiaddr nor `HOST:PORT`.
    #[error("'{0}' is not a multiaddr (/ip4/1.2.3.4/tcp/9000/p2p/<id>) or HOST:PORT")]
    Malformed(String),
    /// Digits and dots that make no IPv4 address (no DNS name is all digits either).
    #[error("'{0}' is not an IPv4 address (four numbers of 0 to 255) nor a host name")]
    BadIp(String),
    /// Port 0 is what a listener asks for, not a port anything listens on.
    #[error("'{0}': port 0 cannot be dialled; give the port the peer listens on")]
    PortZero(String),
    /// QUIC, WebSocket or anything else without TCP: this node dials TCP only.
    #[error("'{0}': this node speaks TCP only (/ip4/…/tcp/PORT or HOST:PORT)")]
    NotTcp(String),
}

/// Parses `/ip4/.../tcp/...[/p2p/...]`, `IP:PORT`, `[IPv6]:PORT` or `name:PORT` into an
/// address this node can dial: TCP, a port other than 0.
///
/// # Errors
/// [`AddrError`] naming the input.
pub fn parse_peer_addr(s: &str) -> Result<Multiaddr, AddrError> {
    let s = s.trim();
    let addr = if s.starts_with('/') {
        s.parse().map_err(|_| AddrError::Malformed(s.into()))?
    } else {
        parse_host_port(s)?
    };
    let mut tcp = addr.iter().filter_map(|p| match p {
        Protocol::Tcp(port) => Some(port),
        _ => None,
    });
    let quic =
        addr.iter().any(|p| matches!(p, Protocol::Udp(_) | Protocol::QuicV1 | Protocol::Quic));
    match tcp.next() {
        _ if quic => Err(AddrError::NotTcp(s.into())),
        None => Err(AddrError::NotTcp(s.into())),
        Some(0) => Err(AddrError::PortZero(s.into())),
        Some(_) => Ok(addr),
    }
}

/// `IP:PORT`, `[IPv6]:PORT` or `name:PORT`.
fn parse_host_port(s: &str) -> Result<Multiaddr, AddrError> {
    let malformed = || AddrError::Malformed(s.into());
    let (host, port) = s.rsplit_once(':').ok_or_else(malformed)?;
    let port: u16 = port.parse().map_err(|_| malformed())?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let mut addr = Multiaddr::empty();
    match host.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V4(ip)) => addr.push(Protocol::Ip4(ip)),
        Ok(std::net::IpAddr::V6(ip)) => addr.push(Protocol::Ip6(ip)),
        Err(_) if host.chars().all(|c| c.is_ascii_digit() || c == '.') && !host.is_empty() => {
            return Err(AddrError::BadIp(s.into()));
        }
        Err(_) if !host.is_empty() && !host.contains(['/', ' ']) => {
            addr.push(Protocol::Dns(host.to_owned().into()));
        }
        Err(_) => return Err(malformed()),
    }
    addr.push(Protocol::Tcp(port));
    Ok(addr)
}

/// The peer id at the end of `addr`, if any.
pub fn peer_id_of(addr: &Multiaddr) -> Option<libp2p::PeerId> {
    addr.iter().find_map(|p| match p {
        Protocol::P2p(id) => Some(id),
        _ => None,
    })
}

/// `addr` without its `/p2p/<id>`.
pub fn without_peer_id(addr: &Multiaddr) -> Multiaddr {
    addr.iter().filter(|p| !matches!(p, Protocol::P2p(_))).collect()
}

/// `addr` ending in `/p2p/<peer>` (a relayed or confirmed address may already).
pub fn with_peer_id(addr: &Multiaddr, peer: libp2p::PeerId) -> Multiaddr {
    match addr.iter().last() {
        Some(Protocol::P2p(_)) => addr.clone(),
        _ => addr.clone().with(Protocol::P2p(peer)),
    }
}

/// Whether `addr` is loopback, private or link-local (fine to dial on one host or LAN).
pub fn is_local(addr: &Multiaddr) -> bool {
    addr.iter().any(|p| match p {
        Protocol::Ip4(ip) => {
            ip.is_loopback() || ip.is_private() || ip.is_link_local() || ip.is_unspecified()
        }
        Protocol::Ip6(ip) => ip.is_loopback() || ip.is_unspecified(),
        _ => false,
    })
}

/// Whether `addr` is a loopback address (useless to another host).
pub fn is_loopback(addr: &Multiaddr) -> bool {
    addr.iter().any(|p| match p {
        Protocol::Ip4(ip) => ip.is_loopback(),
        Protocol::Ip6(ip) => ip.is_loopback(),
        _ => false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_multiaddrs_and_host_port() {
        let full =
            "/ip4/10.0.0.2/tcp/9000/p2p/12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN";
        assert!(peer_id_of(&parse_peer_addr(full).unwrap()).is_some());
        assert_eq!(
            parse_peer_addr("127.0.0.1:9000").unwrap().to_string(),
            "/ip4/127.0.0.1/tcp/9000"
        );
        assert_eq!(parse_peer_addr("[::1]:9000").unwrap().to_string(), "/ip6/::1/tcp/9000");
        assert_eq!(
            parse_peer_addr("node1.lan:9000").unwrap().to_string(),
            "/dns/node1.lan/tcp/9000"
        );
    }

    #[test]
    fn rejects_nonsense_with_the_input_named() {
        for bad in ["", "9000", "host:", "host:99999", "/ip4/nope", ":9000"] {
            let err = parse_peer_addr(bad).unwrap_err();
            assert!(err.to_string().contains(bad.trim()), "{err}");
        }
    }

    #[test]
    fn refuses_what_cannot_be_dialled_with_the_reason() {
        // Once taken as a DNS name and retried for ever.
        let err = parse_peer_addr("127.0.0.1.5:32444").unwrap_err();
        assert_eq!(err, AddrError::BadIp("127.0.0.1.5:32444".into()));
        assert!(matches!(parse_peer_addr("127.0.0.1:0"), Err(AddrError::PortZero(_))));
        assert!(matches!(parse_peer_addr("/ip4/127.0.0.1/tcp/0"), Err(AddrError::PortZero(_))));
        for quic in ["/ip4/127.0.0.1/udp/9000/quic-v1", "/ip4/127.0.0.1/udp/9000"] {
            let err = parse_peer_addr(quic).unwrap_err();
            assert!(err.to_string().contains("TCP only"), "{err}");
        }
        assert!(parse_peer_addr("10.1.2.3:9000").is_ok() && parse_peer_addr("a1.lan:9").is_ok());
    }
}
