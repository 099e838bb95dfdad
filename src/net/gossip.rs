//! Gossip: blocks and transactions published on their topics, and each received message
//! held until the core's verdict tells gossipsub whether to forward it.
//!
//! Between nodes that speak compact blocks a new block is announced by its header
//! (`headers`), and its compact form asked of the announcer over the sync protocol; to
//! and from nodes that do not, blocks travel whole (`blocks`). A node that speaks compact
//! blocks subscribes to both, and publishes a block whole only while a peer subscribed to
//! `blocks` alone (an older node) is connected. Among nodes that all speak compact blocks
//! no whole block is gossiped.

use std::collections::HashMap;

use libp2p::gossipsub::{self, IdentTopic, MessageAcceptance, MessageId};
use libp2p::{PeerId, Swarm};
use tracing::{debug, trace, warn};

use super::behaviour::Behaviour;
use super::service::Service;
use crate::consensus::Network;
use crate::core::{NetEvent, Verdict};
use crate::protocol::{GossipKind, blocks_topic, headers_topic, txs_topic};

/// The topics, and the messages waiting for a verdict.
pub(super) struct Gossip {
    blocks: IdentTopic,
    txs: IdentTopic,
    /// The headers topic, if we speak compact blocks.
    headers: Option<IdentTopic>,
    /// Messages handed to the core: its id -> gossipsub's id and the peer it came from.
    to_validate: HashMap<u64, (MessageId, PeerId)>,
    /// Payload bytes published and received, per topic.
    bytes: super::P2pBytes,
}

/// The `protocol` label of a topic's bytes.
fn protocol_label(kind: GossipKind) -> String {
    format!("gossip_{}", kind.label())
}

impl Gossip {
    pub(super) fn new(network: Network, compact_blocks: bool, bytes: super::P2pBytes) -> Self {
        Gossip {
            blocks: IdentTopic::new(blocks_topic(network)),
            txs: IdentTopic::new(txs_topic(network)),
            headers: compact_blocks.then(|| IdentTopic::new(headers_topic(network))),
            to_validate: HashMap::new(),
            bytes,
        }
    }
}

impl<E: From<NetEvent>> Service<E> {
    /// Publishes a block or transaction the core relays.
    pub(super) fn publish_gossip(
        &mut self,
        swarm: &mut Swarm<Behaviour>,
        kind: GossipKind,
        data: Vec<u8>,
    ) {
        let topic = match (kind, &self.gossip.headers) {
            (GossipKind::Block, Some(headers)) => {
                if !self.has_legacy_peer(swarm, headers) {
                    trace!("every peer takes compact blocks: the whole block is not gossiped");
                    return;
                }
                self.gossip.blocks.clone()
            }
            (GossipKind::Block, None) => self.gossip.blocks.clone(),
            (GossipKind::Tx, _) => self.gossip.txs.clone(),
            (GossipKind::Header, Some(headers)) => headers.clone(),
            (GossipKind::Header, None) => return,
        };
        let len = data.len();
        match swarm.behaviour_mut().gossipsub.publish(topic, data) {
            Ok(_) => self.gossip.bytes.add(super::Direction::Sent, &protocol_label(kind), len),
            Err(gossipsub::PublishError::Duplicate) => {}
            Err(gossipsub::PublishError::NoPeersSubscribedToTopic) => {
                debug!(?kind, "no peers to gossip to")
            }
            Err(e) => warn!(?kind, error = %e, "gossip publish failed"),
        }
    }

    /// Whether a connected peer takes whole blocks but not compact ones (an older node).
    fn has_legacy_peer(&self, swarm: &Swarm<Behaviour>, headers: &IdentTopic) -> bool {
        let (blocks, headers) = (self.gossip.blocks.hash(), headers.hash());
        swarm
            .behaviour()
            .gossipsub
            .all_peers()
            .any(|(_, topics)| topics.contains(&&blocks) && !topics.contains(&&headers))
    }

    /// Tells gossipsub the core's verdict on message `id`.
    pub(super) fn validate(&mut self, swarm: &mut Swarm<Behaviour>, id: u64, verdict: Verdict) {
        let Some((msg_id, source)) = self.gossip.to_validate.remove(&id) else { return };
        if verdict == Verdict::Accept {
            self.admission.was_useful(source);
        }
        let acceptance = match verdict {
            Verdict::Accept => MessageAcceptance::Accept,
            Verdict::Ignore => MessageAcceptance::Ignore,
            Verdict::Reject => MessageAcceptance::Reject,
        };
        swarm
            .behaviour_mut()
            .gossipsub
            .report_message_validation_result(&msg_id, &source, acceptance);
    }

    /// An event of gossipsub: a message goes to the core, held until its verdict.
    pub(super) fn on_gossip(&mut self, swarm: &mut Swarm<Behaviour>, event: gossipsub::Event) {
        let gossipsub::Event::Message { propagation_source, message_id, message } = event else {
            trace!(event = ?event, "behaviour event");
            return;
        };
        let kind = if message.topic == self.gossip.blocks.hash() {
            GossipKind::Block
        } else if message.topic == self.gossip.txs.hash() {
            GossipKind::Tx
        } else if self.gossip.headers.as_ref().is_some_and(|h| message.topic == h.hash()) {
            GossipKind::Header
        } else {
            return;
        };
        self.gossip.bytes.add(
            super::Direction::Received,
            &protocol_label(kind),
            message.data.len(),
        );
        let id = self.next_id();
        let ignore = |swarm: &mut Swarm<Behaviour>| {
            swarm.behaviour_mut().gossipsub.report_message_validation_result(
                &message_id,
                &propagation_source,
                MessageAcceptance::Ignore,
            );
        };
        let Some(peer) = self.conns.keys.key(&propagation_source) else {
            ignore(swarm);
            return;
        };
        self.gossip.to_validate.insert(id, (message_id.clone(), propagation_source));
        if !self.emit(NetEvent::Gossip { id, peer, kind, data: message.data }) {
            self.gossip.to_validate.remove(&id);
            ignore(swarm);
        }
    }
}
