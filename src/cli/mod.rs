//! The command line: one binary that is node, miner, wallet and client.
//!
//! This is the binary's edge: errors become `anyhow` messages here, printed on one line
//! by `main` with a non-zero exit code.

pub mod client;
pub mod config;
pub mod node;
pub mod snapshot;
pub mod wallet;

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};

use crate::config::{db_path, default_data_dir};
use crate::consensus::Network;
use crate::db::Store;
use crate::storage::{ChainStore, StorageError};
use crate::verify::verify_store;

/// `--network`: one of the networks, listed in `--help` and in the error for anything
/// else.
pub fn network_parser() -> impl clap::builder::TypedValueParser<Value = Network> {
    use clap::builder::TypedValueParser;
    clap::builder::PossibleValuesParser::new(Network::ALL.map(Network::as_str))
        .try_map(|name| name.parse::<Network>())
}

/// Boolean flags that also come from the environment (`MINICHAIN_MINE=1`): 1/0,
/// true/false, yes/no, on/off.
pub fn boolish() -> clap::builder::BoolishValueParser {
    clap::builder::BoolishValueParser::new()
}

/// minichain: a peer-to-peer UTXO blockchain node.
#[derive(Debug, Parser)]
#[command(name = "minichain", version = crate::VERSION, about, propagate_version = true)]
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
    /// Wallets: a seed phrase sealed with a passphrase, receive and change addresses,
    /// history (`wallet new`, `restore`, `receive`, `addresses`, `history`).
    #[command(subcommand)]
    Wallet(wallet::WalletCommand),
    /// Show a node's status.
    Status(client::Conn),
    /// UTXO snapshots: `snapshot create --out FILE` writes the node's UTXO set at its tip.
    #[command(subcommand)]
    Snapshot(snapshot::SnapshotCommand),
    /// List a node's peers; add one it keeps connected (`peers add ADDR`), remove one
    /// (`peers remove ADDR|ID`) or close its connection (`peers disconnect ID`).
    #[command(args_conflicts_with_subcommands = true)]
    Peers {
        /// `add ADDR`, `remove ADDR|ID`, `disconnect ID`; without it, list the peers.
        #[command(subcommand)]
        action: Option<client::PeersAction>,
        #[command(flatten)]
        conn: client::Conn,
    },
    /// List the banned peers: why, and for how long still.
    Bans(client::Conn),
    /// Lift a peer's ban before it runs out.
    Unban {
        /// The banned peer's id (`minichain bans` lists them).
        peer_id: String,
        #[command(flatten)]
        conn: client::Conn,
    },
    /// Show a block by hash or height.
    Block {
        /// Block hash, height, or `tip`.
        // Hyphen values reach the parser, which says why `-1` is no height (clap
        // would suggest `-- -1`, which fails anyway).
        #[arg(allow_hyphen_values = true)]
        id: String,
        #[command(flatten)]
        conn: client::Conn,
    },
    /// Show a transaction (confirmed or in the mempool).
    Tx {
        /// Txid.
        txid: String,
        #[command(flatten)]
        conn: client::Conn,
    },
    /// Show the balance of an address, or of a wallet (`--wallet FILE`): spendable,
    /// immature, unconfirmed.
    #[command(group(clap::ArgGroup::new("whose").required(true).args(["address", "wallet"])))]
    Balance {
        /// Address.
        address: Option<String>,
        /// Wallet file whose balance to show instead of an address's.
        #[arg(long, value_name = "FILE")]
        wallet: Option<PathBuf>,
        #[command(flatten)]
        conn: client::Conn,
    },
    /// List an address's unspent outputs.
    Utxos {
        /// Address.
        address: String,
        #[command(flatten)]
        conn: client::Conn,
    },
    /// Pay coins from a wallet: selects coins, adds change, signs, submits; prints the txid.
    Send {
        #[command(flatten)]
        wallet: wallet::WalletFile,
        #[command(flatten)]
        passphrase: wallet::Passphrase,
        /// Recipient address.
        #[arg(long)]
        to: String,
        /// Coins to send (up to 8 decimals).
        #[arg(long, allow_hyphen_values = true, required_unless_present = "all")]
        amount: Option<String>,
        /// Send everything spendable, less the fee (a sweep: no change).
        #[arg(long, conflicts_with = "amount")]
        all: bool,
        #[command(flatten)]
        fee: wallet::FeeArgs,
        /// Pay a fee above the amount or above 0.1 coin (refused otherwise, as a typo).
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        conn: client::Conn,
    },
    /// Estimate the fee rate that confirms a payment within 1, 3 and 6 blocks.
    Fees(client::Conn),
    /// Write a regtest chain of blocks full of signed transactions (for benchmarks).
    #[command(hide = true)]
    BenchChain {
        /// Data directory (must hold no chain yet).
        #[arg(long)]
        data_dir: PathBuf,
        /// Payload blocks.
        #[arg(long)]
        blocks: u32,
        /// Transactions per payload block (2 inputs, 2 outputs each).
        #[arg(long, default_value_t = 1000)]
        txs_per_block: usize,
        /// Empty blocks after the payload (they bury it, for `--assume-valid`).
        #[arg(long, default_value_t = 0)]
        tail: u32,
    },
    /// Measure the miner's nonces per second on N threads (for scripts/bench.sh).
    #[command(hide = true)]
    BenchHash {
        /// Threads.
        #[arg(long, default_value_t = 1)]
        threads: usize,
        /// Nonces to try in all.
        #[arg(long, default_value_t = 100_000_000)]
        nonces: u32,
        /// Search engine: `auto` (what the miner picks), `scalar`, `avx2` or `avx512`.
        #[arg(long, default_value = "auto")]
        engine: String,
    },
    /// Stop a running node (like `bitcoin-cli stop`): it answers, then shuts down cleanly.
    Stop(client::Conn),
    /// Print a completion script for your shell: `minichain completions bash >
    /// /etc/bash_completion.d/minichain` (zsh and fish likewise).
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Mine blocks at once (regtest).
    Mine {
        /// How many.
        #[arg(long, default_value_t = 1)]
        blocks: u32,
        /// Address the coinbases pay [default: the node's own wallet, or --miner-address].
        #[arg(long)]
        to: Option<String>,
        #[command(flatten)]
        conn: client::Conn,
    },
}

/// Arguments of `minichain verify`.
#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    /// Network whose default data dir to check (ignored with --data-dir: the database
    /// records its own network).
    #[arg(long, default_value = "devnet", env = "MINICHAIN_NETWORK", value_parser = network_parser())]
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
        Command::Wallet(cmd) => wallet::run(cmd),
        Command::Status(conn) => client::status(conn),
        Command::Snapshot(cmd) => snapshot::run(cmd),
        Command::Peers { action: None, conn } => client::peers(conn),
        Command::Peers { action: Some(action), .. } => client::peers_action(action),
        Command::Bans(conn) => client::bans(conn),
        Command::Unban { peer_id, conn } => {
            client::peer_order(conn, "/unban", &peer_id, "ban lifted")
        }
        Command::Block { id, conn } => client::block(conn, &id),
        Command::Tx { txid, conn } => client::tx(conn, &txid),
        Command::Balance { address, wallet, conn } => match (address, wallet) {
            (Some(address), _) => client::balance(conn, &address),
            (None, Some(file)) => wallet::balance(conn, &file),
            // clap demands one of the two.
            (None, None) => anyhow::bail!("give an address or --wallet FILE"),
        },
        Command::Stop(conn) => client::stop(conn),
        Command::Fees(conn) => client::fees(conn),
        Command::Completions { shell } => {
            use clap::CommandFactory;
            clap_complete::generate(
                shell,
                &mut Cli::command(),
                "minichain",
                &mut std::io::stdout(),
            );
            Ok(())
        }
        Command::Utxos { address, conn } => client::utxos(conn, &address),
        Command::Send { wallet, passphrase, to, amount, all: _, fee, force, conn } => {
            let pay = wallet::Pay { to: &to, amount: amount.as_deref(), fee, force };
            wallet::send(conn, &wallet, &passphrase, &pay)
        }
        Command::Mine { blocks, to, conn } => client::mine(conn, blocks, to.as_deref()),
        Command::BenchChain { data_dir, blocks, txs_per_block, tail } => {
            bench_chain(&data_dir, blocks, txs_per_block, tail)
        }
        Command::BenchHash { threads, nonces, engine } => {
            use crate::miner::lanes::Engine;
            let engine = match engine.as_str() {
                "auto" => Engine::detect(),
                name => {
                    *Engine::available().iter().find(|e| e.name() == name).with_context(|| {
                        format!(
                            "engine '{name}' is not available on this CPU (have: {})",
                            Engine::available()
                                .iter()
                                .map(|e| e.name())
                                .collect::<Vec<_>>()
                                .join(", ")
                        )
                    })?
                }
            };
            eprintln!("engine {}", engine.name());
            println!("{:.0}", crate::miner::search::measure_rate(engine, threads, nonces));
            Ok(())
        }
    }
}

fn bench_chain(dir: &std::path::Path, blocks: u32, txs_per_block: usize, tail: u32) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let store = Store::open(&db_path(dir), Network::Regtest)
        .with_context(|| format!("cannot open the database in {}", dir.display()))?;
    let mut chain = crate::chain::ChainState::open(store)?;
    let started = std::time::Instant::now();
    let total = blocks.saturating_add(102).saturating_add(tail);
    let summary = crate::bench_chain::build(
        &mut chain,
        blocks,
        txs_per_block,
        tail,
        crate::clock::unix_now(),
        |h| {
            if h % 50 == 0 || h == total {
                eprintln!(
                    "bench-chain: height {h}/{total} ({:.1} s)",
                    started.elapsed().as_secs_f64()
                );
            }
        },
    )?;
    println!("{}", serde_json::to_string(&summary)?);
    Ok(())
}

fn verify(args: &VerifyArgs) -> Result<()> {
    let dir = args.data_dir.clone().unwrap_or_else(|| default_data_dir(args.network));
    let path = db_path(&dir);
    // Read-only: a backup or a read-only copy is checked as it is, bytes untouched. A
    // damaged page can make redb panic rather than return an error: that is one line too.
    let checked = quietly_catching_panics(|| {
        let store = match Store::open_read_only(&path) {
            // Left by a crash: recover a copy, never the file itself.
            Err(StorageError::NeedsRecovery(_)) => return verify_recovered_copy(&path),
            other => other,
        };
        let store = store.map_err(|e| {
            // A lock held elsewhere: the one transient failure of an open.
            let in_use = e.failure() == crate::storage::Failure::Transient;
            let e = anyhow::Error::new(e)
                .context(format!("cannot open the database in {}", dir.display()));
            if in_use {
                e.context("a running node holds it: verify a copy of chain.redb, or stop the node")
            } else {
                e
            }
        })?;
        let report = verify_store(&store).context("verification failed")?;
        Ok::<_, anyhow::Error>((store.network(), report))
    });
    let (network, report) = checked.unwrap_or_else(|panic| Err(damaged(&path, &panic)))?;
    println!(
        "ok: {network} chain at height {} (tip {}), {} unspent outputs match the blocks",
        report.height, report.tip, report.utxos
    );
    Ok(())
}

/// `verify` of a database left by a crash: redb recovers it only in a writable open, so a
/// copy in the temporary directory is recovered and checked, and the file stays as found.
fn verify_recovered_copy(path: &std::path::Path) -> Result<(Network, crate::verify::VerifyReport)> {
    let copy = std::env::temp_dir().join(format!("minichain-verify-{}.redb", std::process::id()));
    eprintln!(
        "note: {} needs crash recovery (the node does it at start): checking a recovered copy",
        path.display()
    );
    std::fs::copy(path, &copy)
        .with_context(|| format!("cannot copy {} to {}", path.display(), copy.display()))?;
    let checked = Store::open_existing(&copy)
        .with_context(|| format!("cannot recover a copy of {}", path.display()))
        .and_then(|store| {
            let report = verify_store(&store).context("verification failed")?;
            Ok((store.network(), report))
        });
    let _ = std::fs::remove_file(&copy);
    checked
}

/// Runs `f`, turning a panic into `Err(its message)` without the panic's report on stderr.
fn quietly_catching_panics<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    std::panic::set_hook(hook);
    result.map_err(|payload| {
        payload
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_default()
    })
}

/// The one line for a database the storage library failed reading (a damaged page).
#[must_use]
pub fn damaged(path: &std::path::Path, detail: &str) -> anyhow::Error {
    anyhow::anyhow!(
        "{} is damaged (the database library failed reading it: {detail}): restore a backup, \
         or move it away and sync again (keep wallet.json and miner.key beside it)",
        path.display()
    )
}

/// An error the command has already written to its log, where the operator reads the
/// node's lines (a `--log-file`, JSON): the binary only sets the exit code.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Logged(pub String);

/// The error and its causes on one line, each cause once: library errors already quote
/// their source in their own message, so a cause that is already in the text is skipped.
#[must_use]
pub fn one_line(e: &anyhow::Error) -> String {
    let mut msg = e.to_string();
    for cause in e.chain().skip(1) {
        let c = cause.to_string();
        if !msg.contains(&c) {
            msg.push_str(": ");
            msg.push_str(&c);
        }
    }
    msg
}
