//! `minichain node`: run a node until Ctrl-C or SIGTERM.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use libp2p::Multiaddr;
use tracing::{error, info, warn};

use crate::config::default_data_dir;
use crate::consensus::Network;
use crate::logging::{LogFile, LogFormat};
use crate::mempool::MempoolConfig;
use crate::net::addr::parse_peer_addr;
use crate::node::{NodeConfig, start};
use crate::primitives::BlockHash;
use crate::primitives::address::{decode_address, encode_address};
use crate::wallet::{KdfCost, KeyChain, Wallet};

/// Arguments of `minichain node`.
#[derive(Debug, clap::Args)]
pub struct NodeArgs {
    /// Network to join.
    #[arg(long, default_value = "devnet", env = "MINICHAIN_NETWORK", value_parser = super::network_parser())]
    pub network: Network,
    /// Data directory [default: ~/.local/share/minichain/<network>].
    #[arg(long, env = "MINICHAIN_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Configuration file (TOML; keys are these flags' long names).
    #[arg(long, env = "MINICHAIN_CONFIG")]
    pub config: Option<PathBuf>,
    /// P2P listen multiaddr (repeatable) [default: /ip4/0.0.0.0/tcp/<network port>].
    #[arg(long, env = "MINICHAIN_LISTEN", value_delimiter = ',', value_parser = parse_multiaddr)]
    pub listen: Vec<Multiaddr>,
    /// Peer to bootstrap from: full multiaddr (/ip4/1.2.3.4/tcp/9000/p2p/<id>) or HOST:PORT.
    #[arg(long, env = "MINICHAIN_BOOTSTRAP", value_delimiter = ',', value_parser = parse_bootstrap)]
    pub bootstrap: Vec<Multiaddr>,
    /// Address other hosts can reach this node at (repeatable).
    #[arg(long = "external-addr", env = "MINICHAIN_EXTERNAL_ADDR", value_delimiter = ',', value_parser = parse_multiaddr)]
    pub external_addr: Vec<Multiaddr>,
    /// Mine blocks.
    #[arg(long, env = "MINICHAIN_MINE", value_parser = super::boolish())]
    pub mine: bool,
    /// Mining threads.
    #[arg(long, env = "MINICHAIN_THREADS", default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub threads: u16,
    /// Address mined coins go to [default: the node's wallet, data-dir/wallet.json,
    /// created unencrypted if missing; or an older node's data-dir/miner.key].
    #[arg(long, env = "MINICHAIN_MINER_ADDRESS")]
    pub miner_address: Option<String>,
    /// HTTP API address [default: 127.0.0.1:<network rpc port>]; port 0 picks one.
    #[arg(long, env = "MINICHAIN_RPC")]
    pub rpc: Option<SocketAddr>,
    /// A host name the HTTP API answers to besides IP addresses and localhost (repeat it,
    /// or separate with commas; `*` for any): any other `Host` gets 403, so a web page
    /// cannot reach the API by pointing its own name at this host (DNS rebinding).
    #[arg(
        long = "rpc-allow-host",
        env = "MINICHAIN_RPC_ALLOW_HOST",
        value_delimiter = ',',
        value_name = "NAME"
    )]
    pub rpc_allow_host: Vec<String>,
    /// Show protocol messages (debug level for minichain).
    #[arg(long, env = "MINICHAIN_DEBUG", value_parser = super::boolish())]
    pub debug: bool,
    /// Log format.
    #[arg(long, env = "MINICHAIN_LOG_FORMAT", value_enum, default_value = "text")]
    pub log_format: LogFormat,
    /// Also append the log to this file (reopened on SIGHUP, for logrotate).
    #[arg(long, env = "MINICHAIN_LOG_FILE", value_name = "PATH")]
    pub log_file: Option<PathBuf>,
    /// Write the process id here while the node runs (for logrotate and init scripts:
    /// `kill -HUP "$(cat FILE)"` signals this node and no other).
    #[arg(long, env = "MINICHAIN_PID_FILE", value_name = "PATH")]
    pub pid_file: Option<PathBuf>,
    /// Seconds a misbehaving peer stays banned (at most 100 years).
    #[arg(long, env = "MINICHAIN_BAN_SECS", default_value_t = 600,
          value_parser = clap::value_parser!(u64).range(0..=crate::net::MAX_BAN.as_secs()))]
    pub ban_secs: u64,
    /// Ban peers named with --bootstrap or `peers add` like any other. By default an
    /// offence that would ban one of them only disconnects it (it is redialled later).
    #[arg(long, env = "MINICHAIN_BAN_KEPT_PEERS")]
    pub ban_kept_peers: bool,
    /// Relay blocks whole only, as nodes before compact blocks did: do not take or
    /// announce compact blocks (header + short transaction ids, rebuilt from the mempool).
    #[arg(long, env = "MINICHAIN_NO_COMPACT_BLOCKS")]
    pub no_compact_blocks: bool,
    /// Skip the signature checks of this block's ancestors once they are buried deep
    /// enough under the best header chain (Bitcoin Core's -assumevalid); 0 checks every
    /// signature [default: the network's pinned block, none on devnet and regtest].
    #[arg(long, env = "MINICHAIN_ASSUME_VALID", value_name = "HASH", value_parser = parse_assume_valid)]
    pub assume_valid: Option<AssumeValid>,
    /// Start from this UTXO snapshot (`minichain snapshot create`, or `GET /snapshot` of
    /// a node): loaded into an empty data dir, at the tip once its block's header
    /// arrives, history validated in the background. Needs --snapshot-hash.
    #[arg(long, env = "MINICHAIN_SNAPSHOT", value_name = "FILE", requires = "snapshot_hash")]
    pub snapshot: Option<PathBuf>,
    /// The snapshot hash to trust, from a source you trust: a file of another hash is
    /// refused.
    #[arg(long, env = "MINICHAIN_SNAPSHOT_HASH", value_name = "HASH", requires = "snapshot", value_parser = parse_hash)]
    pub snapshot_hash: Option<BlockHash>,
}

fn parse_hash(s: &str) -> Result<BlockHash, String> {
    s.parse().map_err(|_| format!("'{s}' is not a hash (64 hex digits)"))
}

/// `--assume-valid`: a block hash, or none (`0`).
#[derive(Debug, Clone, Copy)]
pub struct AssumeValid(Option<BlockHash>);

fn parse_assume_valid(s: &str) -> Result<AssumeValid, String> {
    if s == "0" {
        return Ok(AssumeValid(None));
    }
    s.parse().map(|h| AssumeValid(Some(h))).map_err(|_| {
        format!("'{s}' is not a block hash (64 hex digits, as `minichain block` shows) or 0")
    })
}

fn parse_multiaddr(s: &str) -> Result<Multiaddr, String> {
    s.parse().map_err(|_| format!("'{s}' is not a multiaddr (e.g. /ip4/0.0.0.0/tcp/9000)"))
}

fn parse_bootstrap(s: &str) -> Result<Multiaddr, String> {
    parse_peer_addr(s).map_err(|e| e.to_string())
}

/// The key mined coins pay to: `--miner-address`; else the first receive address of the
/// node's own wallet (`<data dir>/wallet.json`, so mined coins are spent with the same
/// commands as any); else the `miner.key` of a node that mined before wallets existed;
/// else a new wallet, created unencrypted as `miner.key` was (mode 0600), with a WARN.
fn payout(args: &NodeArgs, data_dir: &Path) -> Result<[u8; 32]> {
    let hrp = args.network.params().address_hrp;
    if let Some(addr) = &args.miner_address {
        return decode_address(hrp, addr).with_context(|| format!("bad --miner-address '{addr}'"));
    }
    let wallet_path = data_dir.join(crate::config::WALLET_FILE);
    let key_path = data_dir.join("miner.key");
    let wallet = if wallet_path.exists() {
        Wallet::load(&wallet_path, args.network)?
    } else if key_path.exists() {
        let wallet = Wallet::load(&key_path, args.network)?;
        info!(
            path = %key_path.display(),
            address = %wallet.address(),
            "mined coins pay {} (spend them with --wallet {})",
            wallet.address(),
            key_path.display()
        );
        return Ok(wallet.pubkey(KeyChain::Receive, 0)?);
    } else {
        let (wallet, _) = Wallet::create(&wallet_path, args.network, 24, None, KdfCost::DEFAULT)?;
        warn!(
            path = %wallet_path.display(),
            "created the node's wallet {} for mined coins, NOT encrypted: show its seed phrase with `minichain wallet phrase --wallet {}` and keep it offline, or mine to a wallet of your own with --miner-address",
            wallet_path.display(),
            wallet_path.display()
        );
        wallet
    };
    info!(
        path = %wallet_path.display(),
        address = %wallet.address(),
        "mined coins pay the node's wallet {} ({})",
        wallet_path.display(),
        wallet.address()
    );
    Ok(wallet.pubkey(KeyChain::Receive, 0)?)
}

/// Runs the node until a signal.
///
/// # Errors
/// A one-line reason the node could not start.
pub fn run(args: NodeArgs) -> Result<()> {
    let log_file = match &args.log_file {
        Some(path) => Some(
            LogFile::open(path)
                .with_context(|| format!("cannot open --log-file {}", path.display()))?,
        ),
        None => None,
    };
    crate::logging::init(args.debug, args.log_format, log_file.as_ref());
    die_on_panic();
    let pid_file = match &args.pid_file {
        Some(path) => Some(PidFile::write(path)?),
        None => None,
    };
    let result = serve(args, log_file);
    drop(pid_file);
    result.map_err(|e| {
        let why = super::one_line(&e);
        error!(error = %why, "the node stopped: {why}");
        super::Logged(why).into()
    })
}

/// The `--pid-file` of a running node: written at start, removed when the node stops
/// (if it still holds our pid: another node may have taken the path since).
struct PidFile(PathBuf);

impl PidFile {
    fn write(path: &Path) -> Result<Self> {
        let pid = std::process::id().to_string();
        // Written whole under a temporary name, then renamed: a reader never sees half.
        let tmp = path.with_extension("pid.tmp");
        std::fs::write(&tmp, format!("{pid}\n"))
            .and_then(|()| std::fs::rename(&tmp, path))
            .with_context(|| format!("cannot write --pid-file {}", path.display()))?;
        Ok(PidFile(path.to_owned()))
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        let ours = std::fs::read_to_string(&self.0)
            .is_ok_and(|text| text.trim() == std::process::id().to_string());
        if ours {
            let _ = std::fs::remove_file(&self.0);
        }
    }
}

/// A panic anywhere (the network task, the core thread, a handler) ends the process with
/// one ERROR line in the log and exit code 101, instead of leaving a node whose API
/// answers while its network or core is gone. The database is crash-safe (redb's commit
/// protocol), so stopping here loses nothing committed.
fn die_on_panic() {
    std::panic::set_hook(Box::new(|info| {
        let thread = std::thread::current().name().unwrap_or("unnamed").to_owned();
        // redb panics on some damaged pages instead of returning an error.
        if let Some(at) = info.location().filter(|l| l.file().contains("/redb-")) {
            let what = info.payload_as_str().unwrap_or("a panic").replace('\n', " ");
            let why = super::damaged(std::path::Path::new(crate::config::DB_FILE), &what);
            error!(thread, location = %at, "{why} (exit 101)");
        } else {
            error!(thread, panic = %info, "a part of the node failed, stopping it (exit 101): {info}");
        }
        std::process::exit(101);
    }));
}

/// Starts the node and the API, and runs until a signal or `stop`.
fn serve(args: NodeArgs, log_file: Option<LogFile>) -> Result<()> {
    let params = args.network.params();
    let data_dir = args.data_dir.clone().unwrap_or_else(|| default_data_dir(args.network));
    std::fs::create_dir_all(&data_dir)
        .with_context(|| format!("cannot create {}", data_dir.display()))?;
    let payout = payout(&args, &data_dir)?;
    let listen = if args.listen.is_empty() {
        vec![
            parse_multiaddr(&format!("/ip4/0.0.0.0/tcp/{}", params.default_p2p_port))
                .map_err(anyhow::Error::msg)?,
        ]
    } else {
        args.listen.clone()
    };
    let rpc =
        args.rpc.unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], params.default_rpc_port)));
    let config = NodeConfig {
        network: args.network,
        data_dir: data_dir.clone(),
        listen,
        bootstrap: args.bootstrap.clone(),
        external: args.external_addr.clone(),
        mine_threads: if args.mine { usize::from(args.threads) } else { 0 },
        payout,
        ban_duration: Duration::from_secs(args.ban_secs),
        max_inbound: crate::net::inbound::evict::MAX_INBOUND,
        ban_kept_peers: args.ban_kept_peers,
        compact_blocks: !args.no_compact_blocks,
        mempool: MempoolConfig::default(),
        assume_valid: match args.assume_valid {
            Some(AssumeValid(hash)) => hash,
            None => params.assume_valid.map(BlockHash::from_byte_array),
        },
        snapshot: args.snapshot.clone().zip(args.snapshot_hash),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let node = start(config).await?;
        let hosts = crate::rpc::auth::AllowedHosts::new(&args.rpc_allow_host);
        let api = crate::rpc::serve_for(rpc, node.clone(), &data_dir, hosts)
            .await
            .with_context(|| format!("cannot serve the HTTP API on {rpc}"))?;
        if args.mine {
            info!(address = %encode_address(params.address_hrp, &payout), threads = args.threads, "mining");
        }
        join_hint(&node, &args.external_addr);
        reopen_on_hangup(log_file);
        tokio::select! {
            () = wait_for_signal() => {}
            () = node.stop_requested() => {}
        }
        let degraded = node.status().degraded;
        api.shutdown().await;
        node.shutdown().await;
        match degraded {
            // The operator (or a supervisor) must see that this node did not stop sound.
            Some(why) => anyhow::bail!("stopped after a local failure: {why}"),
            None => Ok(()),
        }
    })
}

/// On every SIGHUP, reopens the log file (logrotate moved it away) — and otherwise only
/// says so: a hangup never stops the node, as with bitcoind.
fn reopen_on_hangup(log_file: Option<LogFile>) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let Ok(mut hangups) = signal(SignalKind::hangup()) else {
            warn!("cannot listen for SIGHUP: the log file will not be reopened");
            return;
        };
        tokio::spawn(async move {
            while hangups.recv().await.is_some() {
                match &log_file {
                    Some(f) => match f.reopen() {
                        Ok(()) => info!(path = %f.path().display(), "SIGHUP: log file reopened"),
                        Err(e) => {
                            warn!(path = %f.path().display(), error = %e, "SIGHUP: cannot reopen the log file, still writing to the old one")
                        }
                    },
                    None => info!("SIGHUP: no --log-file to reopen"),
                }
            }
        });
    }
    #[cfg(not(unix))]
    drop(log_file);
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Tells the operator what other hosts give `--bootstrap`: the `--external-addr`
/// addresses when there are any (what peers learn of us), else the listen addresses
/// that are not loopback.
fn join_hint(node: &crate::node::NodeHandle, external: &[Multiaddr]) {
    use crate::net::addr::{is_loopback, with_peer_id};
    let id = node.peer_id();
    for addr in external.iter().map(|a| with_peer_id(a, id)) {
        info!(addr = %addr, "advertising --external-addr {addr}: other hosts can join with --bootstrap {addr}");
    }
    if external.is_empty() {
        for addr in node.listen_addrs().into_iter().filter(|a| !is_loopback(a)) {
            info!(addr = %addr, "other hosts can join with --bootstrap {addr}");
        }
    }
}
