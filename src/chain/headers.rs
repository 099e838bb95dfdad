//! Header acceptance: headers checked in context and added to the index
//! (headers-first sync), a run of them in one write.

use super::error::ChainError;
use super::state::{ChainState, inconsistent};
use crate::consensus::header::{check_header, check_header_in_context};
use crate::consensus::pow::work_from_bits;
use crate::primitives::{BlockHash, BlockHeader};
use crate::storage::{ChainWrite, IndexEntry};

impl ChainState {
    /// Validates a header in context and adds it to the index (headers-first sync).
    /// Returns its hash; known headers are accepted again without work.
    ///
    /// # Errors
    /// [`ChainError::InvalidHeader`], [`ChainError::KnownInvalid`],
    /// [`ChainError::UnknownParent`] or a store failure.
    pub fn accept_header(
        &mut self,
        header: &BlockHeader,
        now: u64,
    ) -> Result<BlockHash, ChainError> {
        let (mut hashes, error) = self.accept_headers(std::slice::from_ref(header), now);
        match (hashes.pop(), error) {
            (_, Some(e)) => Err(e),
            (Some(hash), None) => Ok(hash),
            (None, None) => Err(inconsistent("header neither accepted nor refused")),
        }
    }

    /// [`Self::accept_header`] for a run of headers in chain order, written in one
    /// transaction. Stops at the first refused header: returns the hashes accepted before
    /// it and why it was refused.
    pub fn accept_headers(
        &mut self,
        headers: &[BlockHeader],
        now: u64,
    ) -> (Vec<BlockHash>, Option<ChainError>) {
        let mut hashes = Vec::with_capacity(headers.len());
        let mut new = Vec::new();
        let mut error = None;
        for header in headers {
            let known = self.index.contains_key(&header.block_hash());
            match self.add_header(header, now) {
                Ok(hash) => {
                    if !known {
                        new.push(self.index[&hash].entry);
                    }
                    hashes.push(hash);
                }
                Err(e) => {
                    error = Some(e);
                    break;
                }
            }
        }
        let write = ChainWrite { index: new, ..ChainWrite::default() };
        if let Err(e) = self.store.apply(&write) {
            return (Vec::new(), Some(e.into()));
        }
        if let Err(e) = self.adopt_snapshot_base() {
            return (hashes, Some(e));
        }
        (hashes, error)
    }

    /// Checks a header as [`Self::accept_header`] would, without adding it: its proof of
    /// work, and its difficulty and time against its parent (a compact block's header is
    /// checked before anything is done about its body). A known header passes unless it
    /// is known invalid.
    ///
    /// # Errors
    /// [`ChainError::InvalidHeader`], [`ChainError::KnownInvalid`] or
    /// [`ChainError::UnknownParent`].
    pub fn check_header(&self, header: &BlockHeader, now: u64) -> Result<BlockHash, ChainError> {
        let hash = header.block_hash();
        if let Some(node) = self.index.get(&hash) {
            return if node.entry.is_failed() {
                Err(ChainError::KnownInvalid(hash))
            } else {
                Ok(hash)
            };
        }
        check_header(header, self.params)
            .map_err(|error| ChainError::InvalidHeader { hash, error })?;
        let parent_hash = header.prev_blockhash;
        let parent = match self.index.get(&parent_hash) {
            Some(p) => p.entry,
            None => return Err(ChainError::UnknownParent { hash, parent: parent_hash }),
        };
        if parent.is_failed() {
            return Err(ChainError::KnownInvalid(hash));
        }
        let ctx =
            self.child_context(&parent_hash, now).ok_or_else(|| inconsistent("parent vanished"))?;
        check_header_in_context(header, &ctx, self.params)
            .map_err(|error| ChainError::InvalidHeader { hash, error })?;
        Ok(hash)
    }

    pub(super) fn add_header(
        &mut self,
        header: &BlockHeader,
        now: u64,
    ) -> Result<BlockHash, ChainError> {
        let hash = self.check_header(header, now)?;
        if self.index.contains_key(&hash) {
            return Ok(hash);
        }
        let parent = self
            .index
            .get(&header.prev_blockhash)
            .ok_or_else(|| inconsistent("parent vanished"))?
            .entry;
        let entry = IndexEntry {
            header: *header,
            height: parent.height + 1,
            chain_work: parent.chain_work + work_from_bits(header.bits),
            status: 0,
        };
        self.insert_node(hash, entry, false);
        Ok(hash)
    }
}
