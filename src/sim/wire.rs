//! The simulated wire: message sizes, a latency per link, each node's uplink and downlink
//! as queues of a set bandwidth (so a message waits behind those sent before it), and
//! the bytes sent, counted by what they carried.
//!
//! A message of `s` bytes from `a` to `b` leaves once `a`'s uplink has sent what was
//! queued before it and then `s / up` seconds more, crosses the link's latency, and is
//! read once `b`'s downlink has read what came before it (and `s / down` seconds of its
//! own): store-and-forward at both ends, which is how a block's size turns into delay
//! on a 20 Mbit/s link.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use super::Msg;
use crate::primitives::Time;
use crate::protocol::{SyncRequest, SyncResponse};

/// Bytes a gossipsub message carries besides its payload: the protobuf frame with the
/// author's peer id, sequence number, topic and signature.
pub const GOSSIP_OVERHEAD: usize = 140;
/// Bytes of an IDONTWANT control message (one message id, framed).
pub const IDONTWANT_BYTES: usize = 40;
/// Bytes a sync frame carries besides its bincode body: the length prefix, and the yamux
/// and noise framing of its substream.
pub const FRAME_OVERHEAD: usize = 40;
/// Gossip messages at least this large make their receiver send IDONTWANT to its mesh
/// (gossipsub 1.2's default threshold).
pub const IDONTWANT_THRESHOLD: usize = 1_000;

/// A node's link to the internet, both ways, in bits per second.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bandwidth {
    /// Sending.
    pub up: u64,
    /// Receiving.
    pub down: u64,
}

impl Bandwidth {
    /// The same rate both ways, in megabits per second.
    pub fn mbit(mbit: u64) -> Self {
        Self { up: mbit * 1_000_000, down: mbit * 1_000_000 }
    }
}

/// The queues and counters of the simulated links.
#[derive(Debug, Default)]
pub(super) struct Wire {
    /// When each peer's uplink has sent everything queued on it.
    up_free: Vec<Time>,
    /// When each peer's downlink has read everything queued on it.
    down_free: Vec<Time>,
    /// Each link's one-way latency, when links keep theirs.
    latency: HashMap<(usize, usize), Duration>,
    /// Bytes sent, by what they carried.
    pub(super) bytes: BTreeMap<&'static str, u64>,
}

fn transfer(bytes: usize, bits_per_sec: u64) -> Duration {
    Duration::from_secs_f64(bytes as f64 * 8.0 / bits_per_sec.max(1) as f64)
}

impl Wire {
    /// The latency of the link `pair`, `draw` giving it the first time it is asked.
    pub(super) fn link_latency(
        &mut self,
        pair: (usize, usize),
        draw: impl FnOnce() -> Duration,
    ) -> Duration {
        *self.latency.entry(pair).or_insert_with(draw)
    }

    /// When a message of `size` bytes sent at `now` from `from` to `to` over a link of
    /// `latency` arrives, with the queues at both ends (none without `bandwidth`).
    pub(super) fn arrival(
        &mut self,
        from: usize,
        to: usize,
        size: usize,
        now: Time,
        latency: Duration,
        bandwidth: Option<Bandwidth>,
    ) -> Time {
        let Some(bw) = bandwidth else { return now + latency };
        let len = from.max(to) + 1;
        if self.up_free.len() < len {
            self.up_free.resize(len, Time::from_secs(0));
            self.down_free.resize(len, Time::from_secs(0));
        }
        let sent = self.up_free[from].max(now) + transfer(size, bw.up);
        self.up_free[from] = sent;
        let read = (self.down_free[to] + transfer(size, bw.down)).max(sent + latency);
        self.down_free[to] = read;
        read
    }

    /// Counts `size` bytes of `class`.
    pub(super) fn count(&mut self, class: &'static str, size: usize) {
        *self.bytes.entry(class).or_default() += size as u64;
    }
}

/// What a message carries, for the byte counts: `gossip_block`, `gossip_header`,
/// `gossip_tx`, `idontwant`, `sync_blocks`, `sync_compact`, `sync_blocktxs`, `sync_other`,
/// `garbage`.
pub(super) fn class(msg: &Msg) -> &'static str {
    match msg {
        Msg::Gossip(kind, ..) => match kind {
            crate::protocol::GossipKind::Block => "gossip_block",
            crate::protocol::GossipKind::Header => "gossip_header",
            crate::protocol::GossipKind::Tx => "gossip_tx",
        },
        Msg::IDontWant(_) => "idontwant",
        Msg::Request { req: SyncRequest::Blocks(_), .. }
        | Msg::Response { resp: SyncResponse::Blocks(_), .. } => "sync_blocks",
        Msg::Request { req: SyncRequest::BlockTxs { .. }, .. }
        | Msg::Response { resp: SyncResponse::BlockTxs(_), .. } => "sync_blocktxs",
        Msg::Request { req: SyncRequest::CompactBlock(_), .. }
        | Msg::Response { resp: SyncResponse::CompactBlock(_), .. } => "sync_compact",
        Msg::Request { .. } | Msg::Response { .. } => "sync_other",
        Msg::Garbage => "garbage",
    }
}

/// Bytes `msg` takes on the wire.
pub(super) fn size(msg: &Msg) -> usize {
    match msg {
        Msg::Gossip(_, data, _) => data.len() + GOSSIP_OVERHEAD,
        Msg::IDontWant(_) => IDONTWANT_BYTES,
        Msg::Request { req, .. } => bincode_len(req) + FRAME_OVERHEAD,
        Msg::Response { resp, .. } => bincode_len(resp) + FRAME_OVERHEAD,
        Msg::Garbage => FRAME_OVERHEAD,
    }
}

/// The bincode length of a sync message, as the codec frames it.
fn bincode_len<T: serde::Serialize>(value: &T) -> usize {
    bincode::serde::encode_to_vec(value, bincode::config::standard()).map_or(0, |v| v.len())
}
