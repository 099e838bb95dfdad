//! The miner: block templates from the mempool and the nonce search.
//!
//! [`mine_template`] is the synchronous loop over a template from [`build_template`]:
//! search every nonce, roll the extra nonce when they run out, stop when `cancel` is raised
//! (new tip, shutdown).

pub mod lanes;
pub mod search;
pub mod template;

use std::sync::atomic::{AtomicBool, AtomicU64};

pub use search::{SearchOutcome, search};
pub use template::{Template, build_template};

use crate::primitives::Block;

/// Searches `template` on `threads` threads until a block is found or `cancel` is raised,
/// rolling the extra nonce each time the nonce space is exhausted.
pub fn mine_template(
    mut template: Template,
    threads: usize,
    cancel: &AtomicBool,
    hashes: &AtomicU64,
) -> Option<Block> {
    let mut extra_nonce = 0u64;
    loop {
        match search(&template.block.header, template.target, threads, cancel, hashes) {
            SearchOutcome::Found(nonce) => {
                template.block.header.nonce = nonce;
                return Some(template.block);
            }
            SearchOutcome::Cancelled => return None,
            SearchOutcome::Exhausted => {
                extra_nonce += 1;
                template.set_extra_nonce(extra_nonce);
            }
        }
    }
}
