//! Client subcommands: talk to a running node's HTTP API, or manage a wallet file.

use std::path::PathBuf;

use anyhow::{Context, Result, anyhow, bail};
use serde_json::{Value, json};

use crate::config::default_data_dir;
use crate::consensus::Network;
use crate::primitives::address::decode_address;
use crate::primitives::encode::serialize;
use crate::primitives::{OutPoint, Txid};
use crate::rpc::auth::read_cookie;
use crate::wallet::{Spendable, Wallet, build_payment, format_coins, parse_coins};

/// How to reach the node (shared by every client subcommand).
#[derive(Debug, Clone, clap::Args)]
pub struct Conn {
    /// Network (default port, address prefix, default data dir).
    #[arg(long, default_value = "devnet", env = "MINICHAIN_NETWORK")]
    pub network: Network,
    /// Node API address [default: 127.0.0.1:<network rpc port>].
    #[arg(long, env = "MINICHAIN_RPC")]
    pub rpc: Option<String>,
    /// The node's data dir, where its .cookie token is [default: the network's].
    #[arg(long, env = "MINICHAIN_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// API token (instead of reading <data-dir>/.cookie).
    #[arg(long, env = "MINICHAIN_RPC_TOKEN", hide_env_values = true)]
    pub rpc_token: Option<String>,
    /// Print JSON for scripts.
    #[arg(long)]
    pub json: bool,
}

/// Wallet file options.
#[derive(Debug, Clone, clap::Args)]
pub struct WalletArgs {
    /// Network of the wallet.
    #[arg(long, default_value = "devnet", env = "MINICHAIN_NETWORK")]
    pub network: Network,
    /// Wallet file [default: <network data dir>/wallet.json].
    #[arg(long)]
    pub wallet: Option<PathBuf>,
    /// Print JSON for scripts.
    #[arg(long)]
    pub json: bool,
}

impl WalletArgs {
    fn path(&self) -> PathBuf {
        self.wallet.clone().unwrap_or_else(|| default_data_dir(self.network).join("wallet.json"))
    }
}

/// `wallet new` / `wallet address`.
#[derive(Debug, clap::Subcommand)]
pub enum WalletCommand {
    /// Create a new key file (mode 0600; an existing file is never overwritten).
    New(WalletArgs),
    /// Show the wallet's address.
    Address(WalletArgs),
}

/// Runs a wallet subcommand.
///
/// # Errors
/// A one-line reason.
pub fn wallet(cmd: WalletCommand) -> Result<()> {
    let (args, wallet) = match cmd {
        WalletCommand::New(args) => {
            let w = Wallet::create(&args.path(), args.network)?;
            (args, w)
        }
        WalletCommand::Address(args) => {
            let w = Wallet::load(&args.path(), args.network)?;
            (args, w)
        }
    };
    if args.json {
        println!("{}", json!({ "address": wallet.address() }));
    } else {
        println!("{}", wallet.address());
    }
    Ok(())
}

/// A connection to a node's API.
pub struct Client {
    conn: Conn,
    base: String,
    http: reqwest::blocking::Client,
}

impl Client {
    /// A client for `conn`.
    ///
    /// # Errors
    /// If the HTTP client cannot be built.
    pub fn new(conn: Conn) -> Result<Self> {
        let addr = conn
            .rpc
            .clone()
            .unwrap_or_else(|| format!("127.0.0.1:{}", conn.network.params().default_rpc_port));
        let base = if addr.starts_with("http://") { addr } else { format!("http://{addr}") };
        let http = reqwest::blocking::Client::builder()
            .timeout(std::time::Duration::from_secs(120))
            .build()
            .context("cannot build the HTTP client")?;
        Ok(Self { conn, base, http })
    }

    fn token(&self) -> Result<String> {
        if let Some(t) = &self.conn.rpc_token {
            return Ok(t.clone());
        }
        let dir = self.conn.data_dir.clone().unwrap_or_else(|| default_data_dir(self.conn.network));
        read_cookie(&dir).with_context(|| {
            format!("cannot read the API token from {}/.cookie (pass --data-dir of the node or --rpc-token)", dir.display())
        })
    }

    fn answer(&self, resp: reqwest::Result<reqwest::blocking::Response>) -> Result<Value> {
        let resp = resp.map_err(|e| {
            if e.is_connect() {
                anyhow!("cannot reach the node at {}: is it running?", self.base)
            } else {
                anyhow!("request to {} failed: {e}", self.base)
            }
        })?;
        let status = resp.status();
        let body: Value = resp.json().unwrap_or(Value::Null);
        if status.is_success() {
            Ok(body)
        } else {
            let msg = body.get("error").and_then(Value::as_str).unwrap_or("no details");
            bail!("{msg} (HTTP {})", status.as_u16())
        }
    }

    /// GET `path`.
    ///
    /// # Errors
    /// The node's error message, or why it could not be reached.
    pub fn get(&self, path: &str) -> Result<Value> {
        self.answer(self.http.get(format!("{}{path}", self.base)).send())
    }

    /// POST `body` to `path` with the API token.
    ///
    /// # Errors
    /// The node's error message, or why it could not be reached.
    pub fn post(&self, path: &str, body: &Value) -> Result<Value> {
        let token = self.token()?;
        self.answer(
            self.http.post(format!("{}{path}", self.base)).bearer_auth(token).json(body).send(),
        )
    }

    fn address(&self, addr: &str) -> Result<[u8; 32]> {
        Ok(decode_address(self.conn.network.params().address_hrp, addr)?)
    }
}

fn print_json(v: &Value) {
    println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
}

fn s(v: &Value, k: &str) -> String {
    match v.get(k) {
        Some(Value::String(x)) => x.clone(),
        Some(Value::Null) | None => "-".into(),
        Some(other) => other.to_string(),
    }
}

fn coins(v: &Value, k: &str) -> String {
    v.get(k).and_then(Value::as_u64).map_or("-".into(), format_coins)
}

/// `status`.
///
/// # Errors
/// A one-line reason.
pub fn status(conn: Conn) -> Result<()> {
    let client = Client::new(conn.clone())?;
    let v = client.get("/status")?;
    if conn.json {
        print_json(&v);
        return Ok(());
    }
    for k in [
        "network",
        "height",
        "tip",
        "headers",
        "syncing",
        "peer_count",
        "mempool_size",
        "hashrate",
        "peer_id",
    ] {
        println!("{k:<13} {}", s(&v, k));
    }
    for a in v.get("listen_addrs").and_then(Value::as_array).into_iter().flatten() {
        println!("{:<13} {}", "listening", a.as_str().unwrap_or_default());
    }
    Ok(())
}

/// `peers`.
///
/// # Errors
/// A one-line reason.
pub fn peers(conn: Conn) -> Result<()> {
    let client = Client::new(conn.clone())?;
    let v = client.get("/peers")?;
    if conn.json {
        print_json(&v);
        return Ok(());
    }
    let peers = v.as_array().cloned().unwrap_or_default();
    println!("{:<54} {:<9} {:<8} {:<34} AGENT", "PEER ID", "DIR", "HEIGHT", "ADDRESS");
    for p in &peers {
        println!(
            "{:<54} {:<9} {:<8} {:<34} {}",
            s(p, "peer_id"),
            s(p, "direction"),
            s(p, "height"),
            s(p, "addr"),
            s(p, "agent")
        );
    }
    println!("{} peers", peers.len());
    Ok(())
}

/// `block <hash|height>`.
///
/// # Errors
/// A one-line reason.
pub fn block(conn: Conn, id: &str) -> Result<()> {
    let client = Client::new(conn.clone())?;
    let v = client.get(&format!("/blocks/{}", urlencode(id)))?;
    if conn.json {
        print_json(&v);
        return Ok(());
    }
    for k in [
        "hash",
        "height",
        "confirmations",
        "prev_hash",
        "merkle_root",
        "time",
        "bits",
        "nonce",
        "size",
        "tx_count",
    ] {
        println!("{k:<14} {}", s(&v, k));
    }
    for t in v.get("txids").and_then(Value::as_array).into_iter().flatten() {
        println!("{:<14} {}", "tx", t.as_str().unwrap_or_default());
    }
    Ok(())
}

/// `tx <txid>`.
///
/// # Errors
/// A one-line reason.
pub fn tx(conn: Conn, txid: &str) -> Result<()> {
    let _: Txid = txid.parse().map_err(|_| anyhow!("'{txid}' is not a 64-hex-digit txid"))?;
    let client = Client::new(conn.clone())?;
    let v = client.get(&format!("/tx/{txid}"))?;
    if conn.json {
        print_json(&v);
        return Ok(());
    }
    let t = &v["tx"];
    println!("txid           {}", s(t, "txid"));
    if v["in_mempool"].as_bool() == Some(true) {
        println!("status         in mempool, fee {}", coins(&v, "fee"));
    } else {
        println!(
            "status         {} confirmations, block {} (height {})",
            s(&v, "confirmations"),
            s(&v, "block"),
            s(&v, "height")
        );
    }
    println!("size           {} bytes", s(t, "size"));
    for i in t["inputs"].as_array().into_iter().flatten() {
        println!("input          {}:{}", s(i, "txid"), s(i, "vout"));
    }
    for o in t["outputs"].as_array().into_iter().flatten() {
        println!("output         {} coins to {}", coins(o, "value"), s(o, "address"));
    }
    Ok(())
}

/// `balance <address>`.
///
/// # Errors
/// A one-line reason.
pub fn balance(conn: Conn, addr: &str) -> Result<()> {
    let client = Client::new(conn.clone())?;
    client.address(addr)?;
    let v = client.get(&format!("/address/{addr}/balance"))?;
    if conn.json {
        println!(
            "{}",
            json!({ "address": v["address"], "confirmed": v["confirmed"], "unconfirmed": v["unconfirmed"] })
        );
        return Ok(());
    }
    let unconfirmed = v["unconfirmed"].as_i64().unwrap_or(0);
    let sign = if unconfirmed < 0 { "-" } else { "" };
    println!("address      {addr}");
    println!("confirmed    {} coins", coins(&v, "confirmed"));
    println!("unconfirmed  {sign}{} coins", format_coins(unconfirmed.unsigned_abs()));
    println!("immature     {} coins (coinbase, not spendable yet)", coins(&v, "immature"));
    Ok(())
}

/// `utxos <address>`.
///
/// # Errors
/// A one-line reason.
pub fn utxos(conn: Conn, addr: &str) -> Result<()> {
    let client = Client::new(conn.clone())?;
    client.address(addr)?;
    let v = client.get(&format!("/address/{addr}/utxos"))?;
    if conn.json {
        print_json(&v);
        return Ok(());
    }
    let list = v["utxos"].as_array().cloned().unwrap_or_default();
    println!("{:<70} {:>20} {:>6} SPENDABLE", "OUTPOINT", "COINS", "CONF");
    for u in &list {
        let op = format!("{}:{}", s(u, "txid"), s(u, "vout"));
        println!(
            "{op:<70} {:>20} {:>6} {}",
            coins(u, "value"),
            s(u, "confirmations"),
            s(u, "spendable")
        );
    }
    println!("{} outputs", list.len());
    Ok(())
}

/// `send`.
///
/// # Errors
/// A one-line reason (bad amount, address, funds, or the node's rejection).
pub fn send(conn: Conn, wallet: Option<PathBuf>, to: &str, amount: &str, fee: &str) -> Result<()> {
    let client = Client::new(conn.clone())?;
    let to = client.address(to)?;
    let amount = parse_coins(amount).context("bad --amount")?;
    let fee = parse_coins(fee).context("bad --fee")?;
    let path = wallet.unwrap_or_else(|| default_data_dir(conn.network).join("wallet.json"));
    let wallet = Wallet::load(&path, conn.network)?;
    let v = client.get(&format!("/address/{}/utxos", wallet.address()))?;
    let spendable: Vec<Spendable> = v["utxos"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|u| u["spendable"].as_bool() == Some(true))
        .filter_map(|u| {
            let txid: Txid = u["txid"].as_str()?.parse().ok()?;
            let vout = u32::try_from(u["vout"].as_u64()?).ok()?;
            let confirmed = u["confirmations"].as_u64()? > 0;
            Some(Spendable {
                outpoint: OutPoint { txid, vout },
                value: u["value"].as_u64()?,
                confirmed,
            })
        })
        .collect();
    let tx = build_payment(&spendable, to, amount, fee, wallet.keypair())?;
    let answer = client.post("/tx", &json!({ "hex": hex::encode(serialize(&tx)) }))?;
    let txid = s(&answer, "txid");
    if conn.json {
        println!("{}", json!({ "txid": txid }));
    } else {
        println!("{txid}");
    }
    Ok(())
}

/// `mine --blocks N [--to ADDR]` (regtest).
///
/// # Errors
/// A one-line reason.
pub fn mine(conn: Conn, blocks: u32, to: Option<&str>) -> Result<()> {
    let client = Client::new(conn.clone())?;
    if let Some(addr) = to {
        client.address(addr)?;
    }
    let v = client.post("/mine", &json!({ "blocks": blocks, "to": to }))?;
    if conn.json {
        print_json(&v);
    } else {
        for h in v["blocks"].as_array().into_iter().flatten() {
            println!("{}", h.as_str().unwrap_or_default());
        }
    }
    Ok(())
}

/// Keeps a path segment from being read as more than one segment.
fn urlencode(s: &str) -> String {
    s.chars().filter(char::is_ascii_alphanumeric).collect()
}
