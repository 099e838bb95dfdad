//! The peer book: every peer this node has known, kept in `<data-dir>/peers.json` so that a
//! restarted node finds the network again without `--bootstrap`.
//!
//! For each peer: the addresses that worked (or that it told us it listens on), where we
//! learned of it, when a connection last succeeded, and how many dials failed since. The
//! book holds at most [`MAX_PEERS`] peers; when full, the stalest goes (never reached
//! first, then the most failures, then the oldest success). It is written atomically
//! (temporary file, fsync, rename) when it changed, at most every [`SAVE_EVERY`], and at
//! shutdown, with the peers we were connected to outbound as anchors: after a restart they
//! are dialled first, as Bitcoin Core does with its anchors, then the rest by last success.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use libp2p::{Multiaddr, PeerId};
use serde::{Deserialize, Serialize};

use super::addr::{with_peer_id, without_peer_id};

/// Peers kept.
pub const MAX_PEERS: usize = 1_000;
/// Addresses kept per peer (newest first).
pub const MAX_ADDRS: usize = 8;
/// Peers dialled at start.
pub const DIAL_AT_START: usize = 16;
/// How often a changed book is written.
pub const SAVE_EVERY: Duration = Duration::from_secs(10);
/// File name in the data dir.
pub const FILE: &str = "peers.json";

/// How we learned of a peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// A `--bootstrap` address.
    Bootstrap,
    /// Added by the operator at run time (`POST /peers`, `minichain peers add`).
    Operator,
    /// Found through Kademlia.
    Kademlia,
    /// It told us its listen addresses (identify).
    Identify,
    /// It dialled us.
    Inbound,
}

/// One peer's record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// Addresses to dial it at (without `/p2p`), most recently useful first.
    pub addrs: Vec<String>,
    /// How we learned of it first.
    pub source: Source,
    /// When a connection to it last succeeded (Unix seconds).
    pub last_success: Option<u64>,
    /// Dials that failed since the last success.
    pub failures: u32,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Stored {
    version: u32,
    /// Peers we were connected to outbound when the book was last written.
    anchors: Vec<String>,
    peers: BTreeMap<String, Entry>,
}

/// Why the book could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum BookError {
    /// I/O on the file.
    #[error("peer book {}: {error}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What failed.
        error: std::io::Error,
    },
}

/// The peer book in memory.
#[derive(Debug)]
pub struct PeerBook {
    path: PathBuf,
    peers: BTreeMap<PeerId, Entry>,
    anchors: Vec<PeerId>,
    dirty: bool,
}

impl PeerBook {
    /// Reads the book in `data_dir`. A missing file is an empty book; a file that does not
    /// parse is moved aside to `peers.json.corrupt` (kept for the operator) and the node
    /// starts with an empty book, since peers can be found again.
    ///
    /// # Errors
    /// [`BookError`] if the file exists but cannot be read or moved aside.
    pub fn load(data_dir: &Path) -> Result<Self, BookError> {
        let path = data_dir.join(FILE);
        let io = |error| BookError::Io { path: path.clone(), error };
        let mut book =
            Self { path: path.clone(), peers: BTreeMap::new(), anchors: Vec::new(), dirty: false };
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(book),
            Err(e) => return Err(io(e)),
        };
        let stored: Stored = match serde_json::from_slice(&bytes) {
            Ok(stored) => stored,
            Err(e) => {
                let aside = path.with_extension("json.corrupt");
                tracing::warn!(path = %path.display(), error = %e, aside = %aside.display(), "peer book unreadable, moved aside; starting with an empty one");
                std::fs::rename(&path, &aside).map_err(io)?;
                return Ok(book);
            }
        };
        for (id, mut entry) in stored.peers {
            let Ok(peer) = id.parse::<PeerId>() else { continue };
            entry.addrs.retain(|a| a.parse::<Multiaddr>().is_ok());
            entry.addrs.truncate(MAX_ADDRS);
            if !entry.addrs.is_empty() {
                book.peers.insert(peer, entry);
            }
        }
        book.anchors = stored.anchors.iter().filter_map(|a| a.parse().ok()).collect();
        book.evict();
        Ok(book)
    }

    /// Number of peers known.
    pub fn len(&self) -> usize {
        self.peers.len()
    }

    /// Whether no peer is known.
    pub fn is_empty(&self) -> bool {
        self.peers.is_empty()
    }

    /// The record of `peer`.
    pub fn get(&self, peer: &PeerId) -> Option<&Entry> {
        self.peers.get(peer)
    }

    /// Whether the book changed since it was last written.
    pub fn is_dirty(&self) -> bool {
        self.dirty
    }

    /// Notes addresses of `peer` learned from `source` (no connection yet).
    pub fn learned(
        &mut self,
        peer: PeerId,
        addrs: impl IntoIterator<Item = Multiaddr>,
        source: Source,
    ) {
        let entry = self.peers.entry(peer).or_insert_with(|| Entry {
            addrs: Vec::new(),
            source,
            last_success: None,
            failures: 0,
        });
        for addr in addrs {
            let addr = without_peer_id(&addr).to_string();
            if !entry.addrs.contains(&addr) {
                entry.addrs.push(addr);
                self.dirty = true;
            }
        }
        entry.addrs.truncate(MAX_ADDRS);
        self.evict();
    }

    /// A connection to `peer` at `addr` succeeded at `now` (Unix seconds). An inbound
    /// connection's address is the peer's outgoing port, not one to dial: it is kept only
    /// as a last resort.
    pub fn connected(
        &mut self,
        peer: PeerId,
        addr: &Multiaddr,
        outbound: bool,
        source: Source,
        now: u64,
    ) {
        let entry = self.peers.entry(peer).or_insert_with(|| Entry {
            addrs: Vec::new(),
            source,
            last_success: None,
            failures: 0,
        });
        let addr = without_peer_id(addr).to_string();
        entry.addrs.retain(|a| *a != addr);
        if outbound {
            entry.addrs.insert(0, addr);
        } else if entry.addrs.is_empty() {
            entry.addrs.push(addr);
        }
        entry.addrs.truncate(MAX_ADDRS);
        entry.last_success = Some(now);
        entry.failures = 0;
        self.dirty = true;
        self.evict();
    }

    /// A dial of `peer` failed.
    pub fn failed(&mut self, peer: &PeerId) {
        if let Some(entry) = self.peers.get_mut(peer) {
            entry.failures = entry.failures.saturating_add(1);
            self.dirty = true;
        }
    }

    /// Forgets `peer` (it was banned).
    pub fn forget(&mut self, peer: &PeerId) {
        if self.peers.remove(peer).is_some() {
            self.dirty = true;
        }
        self.anchors.retain(|a| a != peer);
    }

    /// Addresses to dial at start, with `/p2p/<id>`: anchors first, then by last success
    /// (peers never reached last), at most [`DIAL_AT_START`] peers, one address each.
    pub fn to_dial(&self, exclude: &PeerId) -> Vec<(PeerId, Multiaddr)> {
        let mut order: Vec<(&PeerId, &Entry)> =
            self.peers.iter().filter(|(p, _)| *p != exclude).collect();
        order.sort_by_key(|(p, e)| {
            (!self.anchors.contains(p), std::cmp::Reverse(e.last_success), e.failures)
        });
        order
            .into_iter()
            .take(DIAL_AT_START)
            .filter_map(|(p, e)| {
                let addr: Multiaddr = e.addrs.first()?.parse().ok()?;
                Some((*p, with_peer_id(&addr, *p)))
            })
            .collect()
    }

    /// Writes the book with `anchors` (the peers we are connected to outbound), atomically.
    ///
    /// # Errors
    /// [`BookError`] if the file cannot be written.
    pub fn save(&mut self, anchors: &[PeerId]) -> Result<(), BookError> {
        let io = |error| BookError::Io { path: self.path.clone(), error };
        let stored = Stored {
            version: 1,
            anchors: anchors.iter().map(ToString::to_string).collect(),
            peers: self.peers.iter().map(|(p, e)| (p.to_string(), e.clone())).collect(),
        };
        // Serializing plain strings and numbers cannot fail.
        let bytes = serde_json::to_vec_pretty(&stored).unwrap_or_default();
        let tmp = self.path.with_extension("json.tmp");
        {
            use std::io::Write;
            let mut file = std::fs::File::create(&tmp).map_err(io)?;
            file.write_all(&bytes).map_err(io)?;
            file.sync_all().map_err(io)?;
        }
        std::fs::rename(&tmp, &self.path).map_err(io)?;
        self.anchors = anchors.to_vec();
        self.dirty = false;
        Ok(())
    }

    /// Drops the stalest peers beyond [`MAX_PEERS`].
    fn evict(&mut self) {
        while self.peers.len() > MAX_PEERS {
            let stalest = self
                .peers
                .iter()
                .filter(|(p, _)| !self.anchors.contains(p))
                .min_by_key(|(_, e)| {
                    (e.last_success.is_some(), std::cmp::Reverse(e.failures), e.last_success)
                })
                .map(|(p, _)| *p);
            match stalest {
                Some(p) => drop(self.peers.remove(&p)),
                None => break,
            }
            self.dirty = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(port: u16) -> Multiaddr {
        format!("/ip4/127.0.0.1/tcp/{port}").parse().unwrap()
    }

    #[test]
    fn a_saved_book_comes_back_with_anchors_first() {
        let dir = tempfile::tempdir().unwrap();
        let mut book = PeerBook::load(dir.path()).unwrap();
        assert!(book.is_empty());
        let (a, b, c) = (PeerId::random(), PeerId::random(), PeerId::random());
        book.connected(a, &addr(1), true, Source::Bootstrap, 100);
        book.connected(b, &addr(2), true, Source::Kademlia, 300);
        book.learned(c, [addr(3)], Source::Identify);
        book.save(&[a]).unwrap();
        assert!(!book.is_dirty());
        let again = PeerBook::load(dir.path()).unwrap();
        assert_eq!(again.len(), 3);
        let order: Vec<PeerId> =
            again.to_dial(&PeerId::random()).into_iter().map(|(p, _)| p).collect();
        assert_eq!(order, [a, b, c], "anchor, then by last success, then never reached");
        let dial = &again.to_dial(&PeerId::random())[0].1;
        assert_eq!(dial.to_string(), format!("/ip4/127.0.0.1/tcp/1/p2p/{a}"));
        assert_eq!(again.get(&a).unwrap().source, Source::Bootstrap);
        assert!(again.to_dial(&a).iter().all(|(p, _)| *p != a), "never dial ourselves");
    }

    #[test]
    fn inbound_addresses_do_not_push_out_dialable_ones_and_failures_count() {
        let dir = tempfile::tempdir().unwrap();
        let mut book = PeerBook::load(dir.path()).unwrap();
        let p = PeerId::random();
        book.learned(p, [addr(9000)], Source::Identify);
        book.connected(p, &addr(54321), false, Source::Inbound, 5);
        assert_eq!(book.get(&p).unwrap().addrs, vec![addr(9000).to_string()]);
        book.failed(&p);
        book.failed(&p);
        assert_eq!(book.get(&p).unwrap().failures, 2);
        book.connected(p, &addr(9000), true, Source::Inbound, 6);
        assert_eq!(book.get(&p).unwrap().failures, 0);
        book.forget(&p);
        assert!(book.is_empty());
    }

    #[test]
    fn the_book_is_bounded_and_drops_the_stalest() {
        let dir = tempfile::tempdir().unwrap();
        let mut book = PeerBook::load(dir.path()).unwrap();
        let good = PeerId::random();
        book.connected(good, &addr(1), true, Source::Bootstrap, 1);
        for i in 0..MAX_PEERS + 50 {
            book.learned(PeerId::random(), [addr(2 + (i % 60_000) as u16)], Source::Kademlia);
        }
        assert_eq!(book.len(), MAX_PEERS);
        assert!(book.get(&good).is_some(), "a peer that worked outlives ones never reached");
    }

    #[test]
    fn a_damaged_file_is_moved_aside_not_lost() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(FILE), b"{ not json").unwrap();
        let book = PeerBook::load(dir.path()).unwrap();
        assert!(book.is_empty());
        assert_eq!(std::fs::read(dir.path().join("peers.json.corrupt")).unwrap(), b"{ not json");
    }
}
