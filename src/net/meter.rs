//! Bytes the node sends and receives, by protocol: `minichain_p2p_bytes_total{direction,
//! protocol}`. The sync protocol counts every frame its codec reads and writes (those of
//! compact block relay apart, as `sync_compact`); gossip
//! counts, per topic, the payload of each message gossipsub delivers to the node (the
//! first copy) and of each the node publishes (once, whatever the number of peers it goes
//! to). Gossipsub's own wire counters per topic, duplicates and IDONTWANT included, are
//! `libp2p_gossipsub_*`.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;

/// `direction="sent"|"received"`,
/// `protocol="sync"|"sync_compact"|"gossip_block"|"gossip_header"|"gossip_tx"`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BytesLabels {
    /// Sent or received.
    pub direction: String,
    /// The protocol, or gossip and its topic.
    pub protocol: String,
}

/// Which way bytes went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// From us.
    Sent,
    /// To us.
    Received,
}

/// The byte counters; clones count into the same family.
#[derive(Debug, Clone, Default)]
pub struct P2pBytes(Family<BytesLabels, Counter>);

impl P2pBytes {
    /// Adds `bytes` to `protocol`'s counter in `direction`.
    pub fn add(&self, direction: Direction, protocol: &str, bytes: usize) {
        let direction = match direction {
            Direction::Sent => "sent",
            Direction::Received => "received",
        };
        let labels = BytesLabels { direction: direction.into(), protocol: protocol.into() };
        self.0.get_or_create(&labels).inc_by(bytes as u64);
    }

    /// The family, to register.
    pub fn family(&self) -> Family<BytesLabels, Counter> {
        self.0.clone()
    }
}
