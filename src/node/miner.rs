//! The miner threads: one that searches the newest job on `--threads` threads, and on
//! regtest one that solves on-demand templates. Found blocks go back to the driver.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Sender, SyncSender, channel};

use super::service::DriverInput;
use crate::miner::{Template, mine_template};

/// Work for the miner threads. Raising `cancel` abandons it.
struct MinerJob {
    template: Template,
    cancel: Arc<AtomicBool>,
}

/// Senders to the miner threads and the flag of the job in progress.
pub struct Miners {
    jobs: Option<Sender<MinerJob>>,
    current: Option<Arc<AtomicBool>>,
    /// Compact target of the job in progress.
    bits: Option<u32>,
    solver: Option<Sender<Box<Template>>>,
}

impl Miners {
    /// Starts the mining thread when `threads > 0` (it fans each search out over `threads`
    /// threads) and, if `on_demand`, the thread that solves regtest blocks on demand.
    ///
    /// # Errors
    /// If a thread cannot be started.
    pub fn spawn(
        threads: usize,
        on_demand: bool,
        found: SyncSender<DriverInput>,
        hashes: Arc<AtomicU64>,
    ) -> std::io::Result<Self> {
        let jobs = if threads > 0 {
            let (jobs, rx) = channel::<MinerJob>();
            let (found, hashes) = (found.clone(), hashes.clone());
            std::thread::Builder::new().name("minichain-miner".into()).spawn(move || {
                while let Ok(mut job) = rx.recv() {
                    // Only the newest job matters.
                    while let Ok(newer) = rx.try_recv() {
                        job = newer;
                    }
                    if job.cancel.load(Ordering::Relaxed) {
                        continue;
                    }
                    if let Some(block) = mine_template(job.template, threads, &job.cancel, &hashes)
                        && found.send(DriverInput::Found(block)).is_err()
                    {
                        break;
                    }
                }
            })?;
            Some(jobs)
        } else {
            None
        };
        let solver = if on_demand {
            let (solver, rx) = channel::<Box<Template>>();
            std::thread::Builder::new().name("minichain-solver".into()).spawn(move || {
                let never = AtomicBool::new(false);
                while let Ok(template) = rx.recv() {
                    let block = mine_template(*template, 1, &never, &hashes);
                    if found.send(DriverInput::Solved(block)).is_err() {
                        break;
                    }
                }
            })?;
            Some(solver)
        } else {
            None
        };
        Ok(Self { jobs, current: None, bits: None, solver })
    }

    /// Replaces the miner's job (cancelling the one in progress); `None` stops it.
    pub fn set_job(&mut self, template: Option<Box<Template>>) {
        if let Some(cancel) = self.current.take() {
            cancel.store(true, Ordering::Relaxed);
        }
        self.bits = None;
        if let (Some(template), Some(jobs)) = (template, &self.jobs) {
            self.bits = Some(template.block.header.bits);
            let cancel = Arc::new(AtomicBool::new(false));
            self.current = Some(cancel.clone());
            let _ = jobs.send(MinerJob { template: *template, cancel });
        }
    }

    /// Compact target of the job the miner threads are on, if any.
    pub fn job_bits(&self) -> Option<u32> {
        self.bits
    }

    /// Hands an on-demand template to the solver. Returns false if there is none.
    pub fn solve(&self, template: Box<Template>) -> bool {
        self.solver.as_ref().is_some_and(|s| s.send(template).is_ok())
    }
}
