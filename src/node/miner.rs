//! The miner threads: take the newest job, search it, hand a found block to the core.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Sender, SyncSender, channel};

use super::core::{Input, MinerJob};
use crate::miner::mine_template;

/// Starts the mining thread (which fans each search out over `threads` threads) and
/// returns where to send jobs.
pub fn spawn(threads: usize, found: SyncSender<Input>, hashes: Arc<AtomicU64>) -> Sender<MinerJob> {
    let (jobs, rx) = channel::<MinerJob>();
    let spawned = std::thread::Builder::new().name("minichain-miner".into()).spawn(move || {
        while let Ok(mut job) = rx.recv() {
            // Only the newest job matters.
            while let Ok(newer) = rx.try_recv() {
                job = newer;
            }
            if job.cancel.load(Ordering::Relaxed) {
                continue;
            }
            if let Some(block) = mine_template(job.template, threads, &job.cancel, &hashes)
                && found.send(Input::Mined(block)).is_err()
            {
                break;
            }
        }
    });
    if let Err(e) = spawned {
        tracing::error!(error = %e, "cannot start the miner thread");
    }
    jobs
}
