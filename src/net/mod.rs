//! The libp2p edge: TCP + noise + yamux, identify, ping, AutoNAT, circuit relay v2, DCUtR,
//! Kademlia, gossipsub and the request-response sync protocol. It carries messages; the
//! node core decides. Peers reach the core as `PeerKey`s ([`keys`]); the core's
//! `NetAction`s come back as [`NetCommand::Core`]. [`service`] is the task's loop and names
//! the file of each concern it dispatches to.

pub mod addr;
mod bans;
pub mod behaviour;
pub mod book;
pub mod codec;
mod connections;
mod discovery;
mod gossip;
pub mod meter;
pub mod identity;
pub mod inbound;
pub mod keys;
pub mod reach;
pub mod redial;
mod requests;
pub mod service;
mod snapshot;
pub mod swarm;
pub mod traffic;

pub use bans::MAX_BAN;
pub use meter::{Direction, P2pBytes};
pub use reach::Reachability;
pub use service::{NetCommand, NetConfig};
pub use snapshot::{BanInfo, KeptInfo, NetInfo, PeerInfo};
pub use swarm::NetError;
