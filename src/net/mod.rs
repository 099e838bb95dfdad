//! The libp2p edge: TCP + noise + yamux, identify, ping, AutoNAT, circuit relay v2, DCUtR,
//! Kademlia, gossipsub and the request-response sync protocol. It carries messages; the node core decides.
//! Peers reach the core as `PeerKey`s ([`keys`]); the core's `NetAction`s come back as
//! [`NetCommand::Core`].

pub mod addr;
pub mod behaviour;
pub mod book;
pub mod codec;
pub mod evict;
pub mod identity;
pub mod inbound;
pub mod keys;
pub mod reach;
pub mod redial;
pub mod service;

pub use reach::Reachability;
pub use service::{BanInfo, NetCommand, NetConfig, NetInfo, PeerInfo};
