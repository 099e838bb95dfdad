//! The libp2p edge: TCP + noise + yamux, identify, ping, Kademlia, gossipsub and the
//! request-response sync protocol. It carries messages; the node core decides.

pub mod addr;
pub mod behaviour;
pub mod codec;
pub mod identity;
pub mod protocol;
pub mod score;
pub mod service;

pub use service::{BanInfo, GossipKind, NetCommand, NetConfig, NetEvent, NetInfo, PeerInfo};
