//! Connections: kept peers dialled and redialled, connections opened and closed.

use std::time::Instant;

use libp2p::Swarm;
use libp2p::swarm::dial_opts::DialOpts;
use tracing::{debug, info};

use super::addr::without_peer_id;
use super::behaviour::Behaviour;
use super::service::Service;
use crate::core::NetEvent;

/// A dial error as the operator needs it: the root cause of each address's failure
/// ("Connection refused (os error 111)"), not libp2p's nested wrappers.
pub(super) fn one_line(e: &libp2p::swarm::DialError) -> String {
    pub(super) fn root(mut e: &dyn std::error::Error) -> String {
        while let Some(source) = e.source() {
            e = source;
        }
        e.to_string()
    }
    match e {
        libp2p::swarm::DialError::Transport(errors) => {
            let mut causes: Vec<String> = errors.iter().map(|(_, e)| root(e)).collect();
            causes.dedup();
            causes.join("; ")
        }
        e => root(e),
    }
}

impl<E: From<NetEvent>> Service<E> {
    /// Dials the kept peers that are due.
    pub(super) fn dial_kept(&mut self, swarm: &mut Swarm<Behaviour>) {
        let now = Instant::now();
        for i in self.redial.due(now) {
            let Some(kept) = self.redial.get(i).cloned() else { continue };
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
                    self.dials.insert(id, i);
                }
                Err(e) => {
                    let wait = self.redial.failed(i, now);
                    info!(addr = %kept.addr, error = %e, retry_in_secs = wait.as_secs(), "cannot dial {:?} peer, retrying", kept.source);
                }
            }
        }
    }
}
