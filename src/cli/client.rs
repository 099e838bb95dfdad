//! Client subcommands: talk to a running node's HTTP API, or manage a wallet file.

use std::path::PathBuf;

use anyhow::{Context, Result, anyhow, bail};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::json;

use crate::api::{
    AddPeer, BalanceView, BlockView, ErrorBody, MineRequest, Mined, PeerAdded, PeerDone, PeerRef,
    PeerView, Status, TxLookup, UtxosView,
};
use crate::config::default_data_dir;
use crate::consensus::Network;
use crate::primitives::Txid;
use crate::primitives::address::decode_address;
use crate::rpc::auth::read_cookie;
use crate::wallet::format_coins;

/// How to reach the node (shared by every client subcommand).
#[derive(Debug, Clone, clap::Args)]
pub struct Conn {
    /// Network (default port, address prefix, default data dir).
    #[arg(long, default_value = "devnet", env = "MINICHAIN_NETWORK", value_parser = super::network_parser())]
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
    /// Wait up to SECS for the node's API to come up before giving up (a node just
    /// started, a script's first call).
    #[arg(long, value_name = "SECS")]
    pub wait: Option<u64>,
}

/// The API's base URL for `--rpc` (`HOST`, `HOST:PORT` or `http://HOST[:PORT]`): a host
/// without a port gets the network's API port, not HTTP's 80.
fn api_base(rpc: Option<&str>, default_port: u16) -> Result<String> {
    let Some(rpc) = rpc.map(str::trim) else {
        return Ok(format!("http://127.0.0.1:{default_port}"));
    };
    let rest = rpc.strip_prefix("http://").unwrap_or(rpc);
    let bad = || anyhow!("--rpc '{rpc}' is not HOST, HOST:PORT or http://HOST:PORT");
    if rest.contains("://") || rest.is_empty() {
        return Err(bad());
    }
    let mut url = reqwest::Url::parse(&format!("http://{rest}")).map_err(|_| bad())?;
    if url.path() != "/" || url.query().is_some() {
        return Err(bad());
    }
    if url.port().is_none() && !rest.trim_end_matches('/').ends_with(":80") {
        url.set_port(Some(default_port)).map_err(|()| bad())?;
    }
    Ok(url.as_str().trim_end_matches('/').to_owned())
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
        let base = api_base(conn.rpc.as_deref(), conn.network.params().default_rpc_port)?;
        let http = reqwest::blocking::Client::builder()
            .timeout(std::time::Duration::from_secs(120))
            .build()
            .context("cannot build the HTTP client")?;
        let client = Self { conn, base, http };
        if let Some(secs) = client.conn.wait {
            client.wait_for_node(std::time::Duration::from_secs(secs))?;
        }
        Ok(client)
    }

    /// Polls `/status` until the node answers or `limit` has passed (`--wait`).
    fn wait_for_node(&self, limit: std::time::Duration) -> Result<()> {
        let deadline = std::time::Instant::now() + limit;
        loop {
            match self.http.get(format!("{}/status", self.base)).send() {
                Ok(_) => return Ok(()),
                Err(e) if e.is_connect() && std::time::Instant::now() < deadline => {
                    std::thread::sleep(std::time::Duration::from_millis(200));
                }
                Err(e) if e.is_connect() => {
                    bail!("the node at {} did not come up within {} s", self.base, limit.as_secs())
                }
                Err(e) => bail!("request to {} failed: {e}", self.base),
            }
        }
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

    /// The node's answer as `T`, or its error message.
    fn answer<T: DeserializeOwned>(
        &self,
        resp: reqwest::Result<reqwest::blocking::Response>,
    ) -> Result<T> {
        let body = self.body(resp)?;
        serde_json::from_slice(&body)
            .map_err(|e| anyhow!("unexpected answer from the node at {}: {e}", self.base))
    }

    /// The body of the node's answer, or its error message.
    fn body(&self, resp: reqwest::Result<reqwest::blocking::Response>) -> Result<Vec<u8>> {
        let resp = resp.map_err(|e| {
            if e.is_connect() {
                anyhow!("cannot reach the node at {}: is it running?", self.base)
            } else {
                anyhow!("request to {} failed: {e}", self.base)
            }
        })?;
        let status = resp.status();
        let body = resp.bytes().map_err(|e| anyhow!("reading the answer of {}: {e}", self.base))?;
        if !status.is_success() {
            let msg = serde_json::from_slice::<ErrorBody>(&body)
                .map_or_else(|_| "no details".to_owned(), |b| b.error);
            bail!("{msg} (HTTP {})", status.as_u16());
        }
        Ok(body.to_vec())
    }

    /// GET `path`.
    ///
    /// # Errors
    /// The node's error message, or why it could not be reached or understood.
    pub fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T> {
        self.answer(self.http.get(format!("{}{path}", self.base)).send())
    }

    /// GET `path`'s bytes.
    ///
    /// # Errors
    /// The node's error message, or why it could not be reached.
    pub fn get_bytes(&self, path: &str) -> Result<Vec<u8>> {
        self.body(self.http.get(format!("{}{path}", self.base)).send())
    }

    /// POST `body` to `path` with the API token.
    ///
    /// # Errors
    /// The node's error message, or why it could not be reached or understood.
    pub fn post<B: Serialize, T: DeserializeOwned>(&self, path: &str, body: &B) -> Result<T> {
        let token = self.token()?;
        self.answer(
            self.http.post(format!("{}{path}", self.base)).bearer_auth(token).json(body).send(),
        )
    }

    pub(super) fn address(&self, addr: &str) -> Result<[u8; 32]> {
        Ok(decode_address(self.conn.network.params().address_hrp, addr)?)
    }
}

/// `--json`: one compact line, like the API's answers, for `jq` and line-based scripts.
pub(super) fn print_json(v: &impl Serialize) {
    println!("{}", serde_json::to_string(v).unwrap_or_default());
}

/// An optional value, or "-".
fn opt(v: Option<impl std::fmt::Display>) -> String {
    v.map_or_else(|| "-".to_owned(), |v| v.to_string())
}

/// `status`.
///
/// # Errors
/// A one-line reason.
pub fn status(conn: Conn) -> Result<()> {
    let client = Client::new(conn.clone())?;
    let v: Status = client.get("/status")?;
    if conn.json {
        print_json(&v);
        return Ok(());
    }
    let progress = if v.syncing {
        format!("syncing, {:.1}% of headers {}", v.progress * 100.0, v.headers)
    } else {
        format!("{} (headers {})", v.state, v.headers)
    };
    // Blocks mined a moment ago may carry a time a little ahead (above the median).
    let tip_age = match v.tip_age_secs {
        -59..=0 => "just now".to_owned(),
        secs if secs > 0 => format!("{} ago", crate::human::duration(secs.unsigned_abs())),
        secs => format!("{} ahead of our clock", crate::human::duration(secs.unsigned_abs())),
    };
    let mining = if v.hashrate > 0.0 {
        let expected = crate::human::duration((v.difficulty / v.hashrate).round() as u64);
        format!("{} (a block every {expected} expected)", crate::human::rate(v.hashrate))
    } else {
        "not mining".to_owned()
    };
    let rows = [
        ("version", v.version),
        ("network", v.network),
        ("height", format!("{}, {progress}", v.height)),
        ("tip", format!("{} (mined {tip_age})", v.tip)),
        ("difficulty", format!("{} hashes per block", crate::human::count(v.difficulty))),
        ("chain work", format!("{} hashes", crate::human::count(v.chain_work))),
        ("hash rate", mining),
        (
            "peers",
            format!(
                "{} ({} in, {} out, {} syncing with us)",
                v.peer_count, v.peers_in, v.peers_out, v.sync_peers
            ),
        ),
        (
            "mempool",
            format!(
                "{} transactions, {}",
                v.mempool_size,
                crate::human::bytes(v.mempool_bytes as u64)
            ),
        ),
        ("disk size", crate::human::bytes(v.disk_bytes)),
        ("uptime", crate::human::duration(v.uptime_secs)),
        ("reachability", v.reachability),
        ("peer id", v.peer_id),
    ];
    for (k, value) in rows {
        println!("{k:<13} {value}");
    }
    if let Some(av) = &v.assume_valid {
        let skipped = av.skipped_blocks;
        println!("{:<13} {} ({skipped} blocks without signature checks)", "assume-valid", av.hash);
    }
    if let Some(s) = &v.snapshot {
        let history = if s.done {
            "history validated from genesis and matching".to_owned()
        } else {
            format!("history validated to {} of {}", s.validated_height, s.height)
        };
        println!("{:<13} started at height {}, {history}", "snapshot", s.height);
    }
    for w in &v.warnings {
        println!("{:<13} {w}", "WARNING");
    }
    for a in &v.listen_addrs {
        println!("{:<13} {a}", "listening");
    }
    for a in &v.external_addrs {
        println!("{:<13} {a}", "advertising");
    }
    for a in &v.relay_addrs {
        println!("{:<13} {a}", "relayed at");
    }
    Ok(())
}

/// `peers`.
///
/// # Errors
/// A one-line reason.
pub fn peers(conn: Conn) -> Result<()> {
    let client = Client::new(conn.clone())?;
    let peers: Vec<PeerView> = client.get("/peers")?;
    if conn.json {
        print_json(&peers);
        return Ok(());
    }
    println!(
        "{:<54} {:<9} {:<8} {:<10} {:<8} {:<9} {:<14} {:<10} {:<10} {:<7} {:<34} AGENT",
        "PEER ID",
        "DIR",
        "LINK",
        "SOURCE",
        "HEIGHT",
        "PING",
        "CONNECTED",
        "IN",
        "OUT",
        "FAULTS",
        "ADDRESS"
    );
    for p in &peers {
        println!(
            "{:<54} {:<9} {:<8} {:<10} {:<8} {:<9} {:<14} {:<10} {:<10} {:<7} {:<34} {}",
            p.peer_id,
            p.direction,
            if p.relayed { "relayed" } else { "direct" },
            p.source,
            opt(p.height),
            opt(p.ping_ms.map(|ms| format!("{ms} ms"))),
            crate::human::duration(p.connected_secs),
            crate::human::bytes(p.bytes_received),
            crate::human::bytes(p.bytes_sent),
            if p.points > 0 {
                format!("{} ({} pts)", p.faults, p.points)
            } else {
                p.faults.to_string()
            },
            p.addr,
            opt(p.agent.as_ref())
        );
    }
    println!("{} peers", peers.len());
    // Kept peers that are not connected: when each is dialled next. An older node without
    // the endpoint simply shows none.
    let kept: Vec<crate::api::KeptPeerView> = client.get("/peers/kept").unwrap_or_default();
    for k in kept.iter().filter(|k| !k.connected) {
        let next = k
            .next_dial_in_secs
            .map_or_else(|| "dialling now".to_owned(), |s| format!("next dial in {s} s"));
        println!("{} peer {} not connected: {next}", k.source, k.addr);
    }
    Ok(())
}

/// `peers add|remove|disconnect`.
#[derive(Debug, clap::Subcommand)]
pub enum PeersAction {
    /// Dial a peer and keep it connected for as long as the node runs (like bitcoind's
    /// addnode): a full multiaddr or HOST:PORT.
    Add {
        /// `/ip4/1.2.3.4/tcp/9000/p2p/12D3KooW…` or `HOST:PORT`.
        addr: String,
        #[command(flatten)]
        conn: Conn,
    },
    /// Stop keeping a peer (`--bootstrap`, `peers add`) and close its connection.
    Remove {
        /// The address as it was added, or the peer id.
        peer: String,
        #[command(flatten)]
        conn: Conn,
    },
    /// Close a peer's connection now (a kept peer is redialled later; use `remove` to
    /// drop it for good, or `ban` through the API to refuse it).
    Disconnect {
        /// The peer id (`minichain peers` lists them).
        peer_id: String,
        #[command(flatten)]
        conn: Conn,
    },
}

/// `peers add|remove|disconnect`.
///
/// # Errors
/// A one-line reason (a bad address, or the node's answer).
pub fn peers_action(action: PeersAction) -> Result<()> {
    match action {
        PeersAction::Add { addr, conn } => add_peer(conn, &addr),
        PeersAction::Remove { peer, conn } => {
            peer_order(conn, "/peers/remove", &peer, "no longer kept, disconnected")
        }
        PeersAction::Disconnect { peer_id, conn } => {
            peer_order(conn, "/peers/disconnect", &peer_id, "disconnected")
        }
    }
}

/// `POST path {"peer": peer}`: prints `peer: what` (or the answer with `--json`).
///
/// # Errors
/// A one-line reason (the node's answer: no such peer, not a peer id).
pub fn peer_order(conn: Conn, path: &str, peer: &str, what: &str) -> Result<()> {
    let client = Client::new(conn.clone())?;
    let v: PeerDone = client.post(path, &PeerRef { peer: peer.to_owned() })?;
    if conn.json {
        print_json(&v);
    } else {
        println!("{}: {what}", v.peer);
    }
    Ok(())
}

/// `bans`.
///
/// # Errors
/// A one-line reason.
pub fn bans(conn: Conn) -> Result<()> {
    let client = Client::new(conn.clone())?;
    let bans: Vec<crate::api::BanView> = client.get("/bans")?;
    if conn.json {
        print_json(&bans);
        return Ok(());
    }
    println!("{:<54} {:<12} REASON", "PEER ID", "LIFTS IN");
    for b in &bans {
        println!(
            "{:<54} {:<12} {}",
            b.peer_id,
            crate::human::duration(b.expires_in_secs),
            b.reason
        );
    }
    println!("{} banned", bans.len());
    Ok(())
}

/// `peers add ADDR`.
///
/// # Errors
/// A one-line reason (a bad address, or the node's answer).
pub fn add_peer(conn: Conn, addr: &str) -> Result<()> {
    crate::net::addr::parse_peer_addr(addr).map_err(|e| anyhow!("{e}"))?;
    let client = Client::new(conn.clone())?;
    let v: PeerAdded = client.post("/peers", &AddPeer { addr: addr.to_owned() })?;
    if conn.json {
        println!("{}", json!({ "addr": v.addr }));
    } else {
        println!("added {}: the node dials it and keeps it connected", v.addr);
    }
    Ok(())
}

/// `block <hash|height>`.
///
/// # Errors
/// A one-line reason.
pub fn block(conn: Conn, id: &str) -> Result<()> {
    // Checked here, so that only a height, a hash or `tip` ever reaches the URL.
    let path = if id.eq_ignore_ascii_case("tip") {
        "/blocks/tip".to_owned()
    } else {
        format!("/blocks/{}", id.parse::<crate::node::BlockId>()?)
    };
    let client = Client::new(conn.clone())?;
    let v: BlockView = client.get(&path)?;
    if conn.json {
        print_json(&v);
        return Ok(());
    }
    let rows: [(&str, String); 10] = [
        ("hash", v.hash),
        ("height", v.height.to_string()),
        ("confirmations", v.confirmations.to_string()),
        ("prev_hash", v.prev_hash),
        ("merkle_root", v.merkle_root),
        ("time", v.time.to_string()),
        ("bits", v.bits),
        ("nonce", v.nonce.to_string()),
        ("size", v.size.to_string()),
        ("tx_count", v.tx_count.to_string()),
    ];
    for (k, value) in rows {
        println!("{k:<14} {value}");
    }
    for t in &v.txids {
        println!("{:<14} {t}", "tx");
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
    let v: TxLookup = client.get(&format!("/tx/{txid}"))?;
    if conn.json {
        print_json(&v);
        return Ok(());
    }
    let t = &v.tx;
    println!("txid           {}", t.txid);
    if v.in_mempool {
        println!("status         in mempool, fee {}", opt(v.fee.map(format_coins)));
    } else {
        println!(
            "status         {} confirmations, block {} (height {})",
            v.confirmations,
            opt(v.block.as_ref()),
            opt(v.height)
        );
    }
    println!("size           {} bytes", t.size);
    for i in &t.inputs {
        println!("input          {}:{}", i.txid, i.vout);
    }
    for o in &t.outputs {
        println!("output         {} coins to {}", format_coins(o.value), o.address);
    }
    Ok(())
}

/// What `balance` shows, for an address or a wallet; `--json` prints it as is.
#[derive(Debug, Serialize)]
struct Balance {
    address: String,
    /// What `send` can spend now: confirmed outputs that are mature and not spent by a
    /// mempool transaction, plus unconfirmed change that nothing spends.
    spendable: u64,
    /// Coinbase outputs still maturing (part of `confirmed`).
    immature: u64,
    /// The mempool's net effect, may be negative.
    unconfirmed: i64,
    /// Every unspent output on the active chain.
    confirmed: u64,
}

/// `balance <address>`.
///
/// # Errors
/// A one-line reason.
pub fn balance(conn: Conn, addr: &str) -> Result<()> {
    let client = Client::new(conn.clone())?;
    client.address(addr)?;
    show_balance(&conn, &client, addr)
}

fn show_balance(conn: &Conn, client: &Client, addr: &str) -> Result<()> {
    let v: BalanceView = client.get(&format!("/address/{addr}/balance"))?;
    let u: UtxosView = client.get(&format!("/address/{addr}/utxos"))?;
    let b = Balance {
        address: v.address,
        spendable: u.utxos.iter().filter(|o| o.spendable).map(|o| o.value).sum(),
        immature: v.immature,
        unconfirmed: v.unconfirmed,
        confirmed: v.confirmed,
    };
    if conn.json {
        print_json(&b);
        return Ok(());
    }
    let sign = if b.unconfirmed < 0 { "-" } else { "" };
    println!("address      {}", b.address);
    println!("spendable    {} coins", format_coins(b.spendable));
    println!("immature     {} coins (coinbase, not spendable yet)", format_coins(b.immature));
    println!("unconfirmed  {sign}{} coins (mempool)", format_coins(b.unconfirmed.unsigned_abs()));
    println!("confirmed    {} coins", format_coins(b.confirmed));
    Ok(())
}

/// `stop`: asks the node to shut down.
///
/// # Errors
/// A one-line reason (no node, wrong token).
pub fn stop(conn: Conn) -> Result<()> {
    let client = Client::new(conn.clone())?;
    let v: serde_json::Value = client.post("/stop", &json!({}))?;
    if conn.json {
        print_json(&v);
    } else {
        println!("minichain stopping");
    }
    Ok(())
}

/// `utxos <address>`.
///
/// # Errors
/// A one-line reason.
pub fn utxos(conn: Conn, addr: &str) -> Result<()> {
    let client = Client::new(conn.clone())?;
    client.address(addr)?;
    let v: UtxosView = client.get(&format!("/address/{addr}/utxos"))?;
    if conn.json {
        print_json(&v);
        return Ok(());
    }
    println!("{:<70} {:>20} {:>6} SPENDABLE", "OUTPOINT", "COINS", "CONF");
    for u in &v.utxos {
        let op = format!("{}:{}", u.txid, u.vout);
        println!("{op:<70} {:>20} {:>6} {}", format_coins(u.value), u.confirmations, u.spendable);
    }
    println!("{} outputs", v.utxos.len());
    Ok(())
}

/// `fees`: the fee rates for confirmation within 1, 3 and 6 blocks.
///
/// # Errors
/// A one-line reason.
pub fn fees(conn: Conn) -> Result<()> {
    let client = Client::new(conn.clone())?;
    let v: crate::api::FeesView = client.get("/fees")?;
    if conn.json {
        print_json(&v);
        return Ok(());
    }
    println!("{:>6} {:>12} BASIS", "TARGET", "RATE");
    for e in &v.estimates {
        println!("{:>6} {:>12} {}", e.target, e.fee_rate, e.basis);
    }
    println!("rates in {} (relay minimum {})", v.unit, v.min_fee_rate);
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
    let v: Mined = client.post("/mine", &MineRequest { blocks, to: to.map(str::to_owned) })?;
    if conn.json {
        print_json(&v);
    } else {
        for h in &v.blocks {
            println!("{h}");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_rpc_host_without_a_port_gets_the_networks_api_port() {
        // `--rpc 10.0.0.1` once went to port 80.
        assert_eq!(api_base(Some("10.0.0.1"), 8332).unwrap(), "http://10.0.0.1:8332");
        assert_eq!(api_base(Some("node.lan"), 18443).unwrap(), "http://node.lan:18443");
        assert_eq!(api_base(Some("10.0.0.1:9"), 8332).unwrap(), "http://10.0.0.1:9");
        assert_eq!(api_base(Some("http://[::1]:7/"), 8332).unwrap(), "http://[::1]:7");
        assert_eq!(api_base(Some("http://h:80"), 8332).unwrap(), "http://h", "80 when given");
        assert_eq!(api_base(None, 18443).unwrap(), "http://127.0.0.1:18443");
        for bad in ["https://h", "h:port", "h/x", ""] {
            assert!(api_base(Some(bad), 1).unwrap_err().to_string().contains("--rpc"), "{bad}");
        }
    }
}
