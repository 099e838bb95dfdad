//! The command line: one binary that is node, miner, wallet and client.
//!
//! This is the binary's edge: errors become `anyhow` messages here, printed on one line
//! by `main` with a non-zero exit code.

pub mod node;

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};

use crate::chain::verify::verify_store;
use crate::config::{db_path, default_data_dir};
use crate::consensus::Network;
use crate::store::Store;

/// minichain: a peer-to-peer UTXO blockchain node.
#[derive(Debug, Parser)]
#[command(name = "minichain", version, about, propagate_version = true)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a node: join the network, sync, relay, and optionally mine.
    Node(node::NodeArgs),
    /// Rebuild the UTXO set from the stored blocks and compare it with the stored one.
    Verify(VerifyArgs),
}

/// Arguments of `minichain verify`.
#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    /// Network whose default data dir to check (ignored with --data-dir: the database
    /// records its own network).
    #[arg(long, default_value = "devnet", env = "MINICHAIN_NETWORK")]
    pub network: Network,
    /// Data directory holding chain.redb.
    #[arg(long, env = "MINICHAIN_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
}

/// Runs the parsed command.
///
/// # Errors
/// A one-line description of what failed.
pub fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Node(args) => node::run(args),
        Command::Verify(args) => verify(&args),
    }
}

fn verify(args: &VerifyArgs) -> Result<()> {
    let dir = args.data_dir.clone().unwrap_or_else(|| default_data_dir(args.network));
    let path = db_path(&dir);
    let store = Store::open_existing(&path)
        .with_context(|| format!("cannot open the database in {}", dir.display()))?;
    let network = store.network();
    let report = verify_store(&store).context("verification failed")?;
    println!(
        "ok: {network} chain at height {} (tip {}), {} unspent outputs match the blocks",
        report.height, report.tip, report.utxos
    );
    Ok(())
}
