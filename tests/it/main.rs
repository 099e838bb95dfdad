//! One integration-test binary (every extra `tests/*.rs` links the crate again).

mod adversary;
mod api;
mod chain;
mod compact;
mod cli;
mod crash;
mod e2e;
mod explorer;
mod faults;
mod harness;
mod multihost;
mod network;
mod operator;
mod rejoin;
mod snapshot;
mod support;
mod wallet;
