//! Wallet subcommands: `wallet new|restore|address|receive|addresses|history|phrase`,
//! `balance --wallet` and `send`. The wallet file is read here; coins, histories and
//! submissions go through the node's API.

use std::collections::{HashMap, HashSet};
use std::io::{IsTerminal, Read};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use serde::Serialize;
use serde_json::{Value, json};

use super::client::{Client, Conn, print_json};
use crate::api::{
    AddressSummary, AddressesRequest, AddressesView, FeesView, SubmitTx, Submitted, TxLookup,
    UsedView,
};
use crate::config::default_data_dir;
use crate::consensus::Network;
use crate::primitives::encode::{deserialize, serialize};
use crate::primitives::{OutPoint, Transaction, TxOut, Txid};
use crate::wallet::{
    FeeChoice, KdfCost, KeyChain, Spendable, Wallet, WalletAddress, build_paying, check_fee,
    format_coins, parse_coins, scan, sign_transaction,
};

/// The environment variable a passphrase may come from.
pub const PASSPHRASE_ENV: &str = "MINICHAIN_PASSPHRASE";

/// Where the wallet file is.
#[derive(Debug, Clone, clap::Args)]
pub struct WalletFile {
    /// Wallet file [default: <data dir>/wallet.json, the node's own wallet].
    #[arg(long, value_name = "FILE")]
    pub wallet: Option<PathBuf>,
}

impl WalletFile {
    /// `--wallet`, else the wallet of the data dir (`--data-dir`, else the network's):
    /// the one that node's miner pays.
    fn path(&self, network: Network, data_dir: Option<&Path>) -> PathBuf {
        self.wallet.clone().unwrap_or_else(|| {
            let dir = data_dir.map_or_else(|| default_data_dir(network), Path::to_path_buf);
            dir.join(crate::config::WALLET_FILE)
        })
    }
}

/// The data dir an offline wallet command takes its default `--wallet` from.
#[derive(Debug, Clone, clap::Args)]
pub struct OfflineDir {
    /// Data dir whose wallet.json is the default --wallet [default: the network's].
    #[arg(long, env = "MINICHAIN_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
}

/// Where a passphrase comes from: a file, `MINICHAIN_PASSPHRASE`, or a prompt on the
/// terminal; never the command line, where other users and shell history would see it.
#[derive(Debug, Clone, clap::Args)]
pub struct Passphrase {
    /// Read the passphrase from the first line of FILE.
    #[arg(long, value_name = "FILE")]
    pub passphrase_file: Option<PathBuf>,
}

/// A new wallet's passphrase, or none.
#[derive(Debug, Clone, clap::Args)]
pub struct NewPassphrase {
    #[command(flatten)]
    pub from: Passphrase,
    /// Store the seed unencrypted (regtest, scripts): anyone who reads the file can spend.
    #[arg(long, conflicts_with = "passphrase_file")]
    pub no_passphrase: bool,
}

/// `wallet …`.
#[derive(Debug, clap::Subcommand)]
pub enum WalletCommand {
    /// Create a wallet: a new seed phrase (shown once), sealed with a passphrase.
    New {
        /// Network of the wallet.
        #[arg(long, default_value = "devnet", env = "MINICHAIN_NETWORK", value_parser = super::network_parser())]
        network: Network,
        #[command(flatten)]
        file: WalletFile,
        #[command(flatten)]
        dir: OfflineDir,
        /// Words in the seed phrase: 12 or 24.
        #[arg(long, default_value_t = 24, value_parser = word_count)]
        words: usize,
        #[command(flatten)]
        passphrase: NewPassphrase,
        /// Print JSON for scripts: {"mnemonic", "address"}.
        #[arg(long)]
        json: bool,
    },
    /// Rebuild a wallet from its seed phrase (read from standard input) and find its
    /// addresses in use on the node's chain.
    Restore {
        #[command(flatten)]
        file: WalletFile,
        #[command(flatten)]
        passphrase: NewPassphrase,
        #[command(flatten)]
        conn: Conn,
    },
    /// Show the wallet's first receive address (offline).
    Address {
        /// Network of the wallet.
        #[arg(long, default_value = "devnet", env = "MINICHAIN_NETWORK", value_parser = super::network_parser())]
        network: Network,
        #[command(flatten)]
        file: WalletFile,
        #[command(flatten)]
        dir: OfflineDir,
        /// Print JSON for scripts.
        #[arg(long)]
        json: bool,
    },
    /// An address to be paid at: the first receive address nothing has paid yet.
    Receive {
        #[command(flatten)]
        file: WalletFile,
        #[command(flatten)]
        conn: Conn,
    },
    /// Every address handed out, with its balance and number of transactions.
    Addresses {
        #[command(flatten)]
        file: WalletFile,
        #[command(flatten)]
        conn: Conn,
    },
    /// Every payment in and out, newest first, pending ones included.
    History {
        #[command(flatten)]
        file: WalletFile,
        #[command(flatten)]
        conn: Conn,
    },
    /// Replace a pending payment of ours with one paying a higher fee, taken from its
    /// change (Bitcoin Core's bumpfee); prints the new txid.
    Bumpfee {
        /// The pending payment.
        txid: String,
        /// The new fee in coins [default: twice the old one, and at least the old one plus
        /// one base unit per byte].
        #[arg(long)]
        fee: Option<String>,
        /// Pay a fee above the amount or above 0.1 coin.
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        file: WalletFile,
        #[command(flatten)]
        passphrase: Passphrase,
        #[command(flatten)]
        conn: Conn,
    },
    /// Show the seed phrase again (asks for the passphrase).
    Phrase {
        /// Network of the wallet.
        #[arg(long, default_value = "devnet", env = "MINICHAIN_NETWORK", value_parser = super::network_parser())]
        network: Network,
        #[command(flatten)]
        file: WalletFile,
        #[command(flatten)]
        dir: OfflineDir,
        #[command(flatten)]
        passphrase: Passphrase,
    },
}

/// Runs a wallet subcommand.
///
/// # Errors
/// A one-line reason.
pub fn run(cmd: WalletCommand) -> Result<()> {
    match cmd {
        WalletCommand::New { network, file, dir, words, passphrase, json } => {
            let path = file.path(network, dir.data_dir.as_deref());
            let pass = new_passphrase(&passphrase, &path)?;
            let (wallet, mnemonic) =
                Wallet::create(&path, network, words, pass.as_deref(), KdfCost::DEFAULT)?;
            warn_unencrypted(&wallet);
            if json {
                println!(
                    "{}",
                    json!({ "mnemonic": mnemonic.to_string(), "address": wallet.address() })
                );
            } else {
                eprintln!(
                    "Write these {words} words down, in order, and keep them offline: they restore \
                     this wallet (minichain wallet restore). They are shown only this once.\n"
                );
                for (i, word) in mnemonic.words().enumerate() {
                    eprint!("{:>4}. {word:<10}", i + 1);
                    if i % 6 == 5 {
                        eprintln!();
                    }
                }
                eprintln!();
                println!("{}", wallet.address());
            }
            Ok(())
        }
        WalletCommand::Restore { file, passphrase, conn } => restore(&file, &passphrase, conn),
        WalletCommand::Address { network, file, dir, json } => {
            let wallet = load(&file.path(network, dir.data_dir.as_deref()), network)?;
            if json {
                println!("{}", json!({ "address": wallet.address() }));
            } else {
                println!("{}", wallet.address());
            }
            Ok(())
        }
        WalletCommand::Receive { file, conn } => receive(&file, conn),
        WalletCommand::Addresses { file, conn } => addresses(&file, conn),
        WalletCommand::History { file, conn } => history(&file, conn),
        WalletCommand::Bumpfee { txid, fee, force, file, passphrase, conn } => {
            bumpfee(conn, &file, &passphrase, &txid, fee.as_deref(), force)
        }
        WalletCommand::Phrase { network, file, dir, passphrase } => {
            let wallet = load(&file.path(network, dir.data_dir.as_deref()), network)?;
            let pass = unlock_passphrase(&wallet, &passphrase)?;
            match wallet.mnemonic(pass.as_deref())? {
                Some(m) => println!("{m}"),
                None => bail!("{} holds a single key, not a seed phrase", wallet.path().display()),
            }
            Ok(())
        }
    }
}

fn word_count(s: &str) -> Result<usize, String> {
    match s {
        "12" => Ok(12),
        "24" => Ok(24),
        _ => Err(format!("'{s}' words: a seed phrase has 12 or 24")),
    }
}

fn load(path: &Path, network: Network) -> Result<Wallet> {
    let wallet = Wallet::load(path, network)?;
    if let Some(mode) = wallet.loose_mode() {
        eprintln!(
            "warning: wallet file {} has mode {mode:04o}: others may read it (chmod 600 {})",
            path.display(),
            path.display()
        );
    }
    Ok(wallet)
}

/// The wallet `file` names for a command that talks to the node at `conn`.
fn load_of(file: &WalletFile, conn: &Conn) -> Result<Wallet> {
    load(&file.path(conn.network, conn.data_dir.as_deref()), conn.network)
}

fn warn_unencrypted(wallet: &Wallet) {
    if wallet.is_hd() && !wallet.is_encrypted() {
        eprintln!(
            "warning: wallet file {} is not encrypted: anyone who can read it can spend its coins",
            wallet.path().display()
        );
    }
}

/// The passphrase from `--passphrase-file` or the environment, if either gives one.
fn given_passphrase(from: &Passphrase) -> Result<Option<String>> {
    if let Some(file) = &from.passphrase_file {
        let text = std::fs::read_to_string(file)
            .with_context(|| format!("cannot read --passphrase-file {}", file.display()))?;
        let line = text.lines().next().unwrap_or_default().to_owned();
        if line.is_empty() {
            bail!("--passphrase-file {} is empty", file.display());
        }
        return Ok(Some(line));
    }
    Ok(std::env::var(PASSPHRASE_ENV).ok().filter(|p| !p.is_empty()))
}

fn prompt(question: &str) -> Result<String> {
    rpassword::prompt_password(question)
        .map_err(|e| anyhow!("cannot prompt for it on a terminal ({e})"))
}

/// A new wallet's passphrase: given, typed twice, or none with `--no-passphrase`.
fn new_passphrase(args: &NewPassphrase, path: &Path) -> Result<Option<String>> {
    if args.no_passphrase {
        return Ok(None);
    }
    if let Some(pass) = given_passphrase(&args.from)? {
        return Ok(Some(pass));
    }
    let hint = "give --passphrase-file FILE or set MINICHAIN_PASSPHRASE, or --no-passphrase for an unencrypted wallet";
    let first = prompt(&format!("New passphrase for {}: ", path.display()))
        .with_context(|| format!("a wallet needs a passphrase: {hint}"))?;
    if first.is_empty() {
        bail!("an empty passphrase: {hint}");
    }
    if prompt("Same passphrase again: ")? != first {
        bail!("the two passphrases differ; nothing was written");
    }
    Ok(Some(first))
}

/// The passphrase that unlocks `wallet`, if it is encrypted.
fn unlock_passphrase(wallet: &Wallet, from: &Passphrase) -> Result<Option<String>> {
    if !wallet.is_encrypted() {
        return Ok(None);
    }
    if let Some(pass) = given_passphrase(from)? {
        return Ok(Some(pass));
    }
    let path = wallet.path().display();
    prompt(&format!("Passphrase for {path}: ")).map(Some).with_context(|| {
        format!(
            "wallet {path} is encrypted: give --passphrase-file FILE or set MINICHAIN_PASSPHRASE"
        )
    })
}

/// Addresses per batch request (the node takes up to 5,000).
const BATCH: usize = 1_000;

/// Which of `keys` the node's chain or mempool has a transaction for.
fn used(client: &Client, wallet: &Wallet, keys: &[[u8; 32]]) -> Result<Vec<bool>> {
    let mut used = Vec::with_capacity(keys.len());
    for chunk in keys.chunks(BATCH) {
        let addresses = chunk.iter().map(|k| wallet.encode(k)).collect();
        let v: UsedView =
            client.post("/addresses/used", &AddressesRequest { addresses, history: false })?;
        used.extend(v.used);
    }
    Ok(used)
}

/// The node's summary of each of the wallet's addresses (with the chain's history when
/// `history`), in the wallet's order.
fn summaries(
    client: &Client,
    wallet: &Wallet,
    history: bool,
) -> Result<Vec<(WalletAddress, AddressSummary)>> {
    let handed = wallet.addresses()?;
    let mut out = Vec::with_capacity(handed.len());
    for chunk in handed.chunks(BATCH) {
        let addresses = chunk.iter().map(|a| wallet.encode(&a.pubkey)).collect();
        let v: AddressesView =
            client.post("/addresses", &AddressesRequest { addresses, history })?;
        out.extend(chunk.iter().copied().zip(v.addresses));
    }
    Ok(out)
}

fn restore(file: &WalletFile, passphrase: &NewPassphrase, conn: Conn) -> Result<()> {
    let network = conn.network;
    let path = file.path(network, conn.data_dir.as_deref());
    if path.exists() {
        bail!("wallet file {} already exists; it was not touched", path.display());
    }
    let mut text = String::new();
    if std::io::stdin().is_terminal() {
        eprintln!("Type the seed phrase (12 or 24 words), then Enter:");
        std::io::stdin().read_line(&mut text).context("cannot read the seed phrase")?;
    } else {
        std::io::stdin().read_to_string(&mut text).context("cannot read the seed phrase")?;
    }
    let mnemonic = crate::wallet::hd::parse_mnemonic(&text)?;
    let client = Client::new(conn.clone())?;
    // Ask the node before writing anything: a restore that cannot scan leaves no file.
    client.get::<serde_json::Value>("/status")?;
    let pass = new_passphrase(passphrase, &path)?;
    let mut wallet = Wallet::restore(&path, network, &mnemonic, pass.as_deref(), KdfCost::DEFAULT)?;
    warn_unencrypted(&wallet);
    let receive = scan(&wallet, KeyChain::Receive, |keys| used(&client, &wallet, keys))?;
    let change = scan(&wallet, KeyChain::Change, |keys| used(&client, &wallet, keys))?;
    wallet.set_counts(receive, change)?;
    let total = wallet_totals(&client, &wallet)?;
    if conn.json {
        print_json(&json!({
            "address": wallet.address(), "receive": receive, "change": change,
            "confirmed": total.confirmed, "unconfirmed": total.unconfirmed,
        }));
    } else {
        println!(
            "restored {}: {receive} receive and {change} change addresses in use, {} coins confirmed",
            path.display(),
            format_coins(total.confirmed)
        );
    }
    Ok(())
}

fn receive(file: &WalletFile, conn: Conn) -> Result<()> {
    let mut wallet = load_of(file, &conn)?;
    let client = Client::new(conn.clone())?;
    let handed: Vec<WalletAddress> =
        wallet.addresses()?.into_iter().filter(|a| a.chain == KeyChain::Receive).collect();
    let keys: Vec<[u8; 32]> = handed.iter().map(|a| a.pubkey).collect();
    let unused =
        handed.iter().zip(used(&client, &wallet, &keys)?).find(|(_, u)| !u).map(|(a, _)| *a);
    let address = match unused {
        Some(a) => a,
        None => wallet.hand_out(KeyChain::Receive)?,
    };
    let text = wallet.encode(&address.pubkey);
    if conn.json {
        print_json(&json!({ "address": text, "index": address.index }));
    } else {
        println!("{text}");
    }
    Ok(())
}

/// A wallet's balance over all its addresses, as `balance --wallet` shows it.
#[derive(Debug, Default, Serialize)]
pub struct WalletBalance {
    /// The first receive address.
    pub address: String,
    /// Addresses handed out.
    pub addresses: usize,
    /// What `send` can spend now.
    pub spendable: u64,
    /// Coinbase outputs still maturing (part of `confirmed`).
    pub immature: u64,
    /// The mempool's net effect, may be negative.
    pub unconfirmed: i64,
    /// Every unspent output on the active chain.
    pub confirmed: u64,
}

/// Every coin of `wallet` that `send` may spend: confirmed and mature ones, and unconfirmed
/// outputs of the wallet's own pending payments (its change), never someone else's
/// unconfirmed payment.
fn spendable(client: &Client, wallet: &Wallet) -> Result<Vec<Spendable>> {
    spendable_of(&summaries(client, wallet, false)?)
}

fn spendable_of(summaries: &[(WalletAddress, AddressSummary)]) -> Result<Vec<Spendable>> {
    let ours: HashSet<&str> = summaries
        .iter()
        .flat_map(|(_, s)| s.pending.iter().filter(|t| t.sent > 0).map(|t| t.txid.as_str()))
        .collect();
    let mut coins = Vec::new();
    for (a, s) in summaries {
        for u in s.utxos.iter().filter(|u| u.spendable) {
            if u.confirmations == 0 && !ours.contains(u.txid.as_str()) {
                continue;
            }
            let txid: Txid = u.txid.parse().map_err(|_| anyhow!("the node sent a bad txid"))?;
            coins.push(Spendable {
                outpoint: OutPoint { txid, vout: u.vout },
                value: u.value,
                confirmed: u.confirmations > 0,
                owner: a.pubkey,
            });
        }
    }
    Ok(coins)
}

fn wallet_totals(client: &Client, wallet: &Wallet) -> Result<WalletBalance> {
    let summaries = summaries(client, wallet, false)?;
    let mut total = WalletBalance {
        address: wallet.address(),
        addresses: summaries.len(),
        ..WalletBalance::default()
    };
    for (_, s) in &summaries {
        total.confirmed += s.confirmed;
        total.immature += s.immature;
        total.unconfirmed += s.unconfirmed;
    }
    total.spendable = spendable_of(&summaries)?.iter().map(|c| c.value).sum();
    Ok(total)
}

/// `balance --wallet FILE`: the balance over every address of the wallet.
///
/// # Errors
/// A one-line reason (the wallet cannot be read, or the node's answer).
pub fn balance(conn: Conn, file: &Path) -> Result<()> {
    let wallet = load(file, conn.network)?;
    let client = Client::new(conn.clone())?;
    let b = wallet_totals(&client, &wallet)?;
    if conn.json {
        print_json(&b);
        return Ok(());
    }
    let sign = if b.unconfirmed < 0 { "-" } else { "" };
    println!("wallet       {} ({} addresses)", file.display(), b.addresses);
    println!("spendable    {} coins", format_coins(b.spendable));
    println!("immature     {} coins (coinbase, not spendable yet)", format_coins(b.immature));
    println!("unconfirmed  {sign}{} coins (mempool)", format_coins(b.unconfirmed.unsigned_abs()));
    println!("confirmed    {} coins", format_coins(b.confirmed));
    Ok(())
}

fn addresses(file: &WalletFile, conn: Conn) -> Result<()> {
    let wallet = load_of(file, &conn)?;
    let client = Client::new(conn.clone())?;
    let rows: Vec<Value> = summaries(&client, &wallet, false)?
        .into_iter()
        .map(|(a, s)| {
            json!({
                "address": s.address, "chain": a.chain.name(), "index": a.index,
                "confirmed": s.confirmed, "unconfirmed": s.unconfirmed, "txs": s.txs,
            })
        })
        .collect();
    if conn.json {
        print_json(&rows);
        return Ok(());
    }
    println!("{:<8} {:>5} {:<66} {:>20} {:>5}", "CHAIN", "INDEX", "ADDRESS", "CONFIRMED", "TXS");
    for r in &rows {
        println!(
            "{:<8} {:>5} {:<66} {:>20} {:>5}",
            r["chain"].as_str().unwrap_or_default(),
            r["index"],
            r["address"].as_str().unwrap_or_default(),
            format_coins(r["confirmed"].as_u64().unwrap_or_default()),
            r["txs"]
        );
    }
    Ok(())
}

/// One payment as the wallet sees it: the net over all its addresses.
#[derive(Debug, Serialize)]
struct Payment {
    txid: String,
    height: Option<u32>,
    confirmations: u32,
    /// Received minus sent, base units: negative for a payment out (its fee included).
    amount: i64,
    /// The fee, when the wallet paid it.
    fee: Option<u64>,
    coinbase: bool,
}

fn history(file: &WalletFile, conn: Conn) -> Result<()> {
    let wallet = load_of(file, &conn)?;
    let client = Client::new(conn.clone())?;
    let mut by_txid: HashMap<String, Payment> = HashMap::new();
    for (_, s) in summaries(&client, &wallet, true)? {
        for t in s.pending.into_iter().chain(s.history.unwrap_or_default()) {
            let p = by_txid.entry(t.txid.clone()).or_insert(Payment {
                txid: t.txid,
                height: t.height,
                confirmations: t.confirmations,
                amount: 0,
                fee: None,
                coinbase: t.coinbase,
            });
            let (received, sent) = (i64::try_from(t.received)?, i64::try_from(t.sent)?);
            p.amount += received - sent;
            if t.sent > 0 {
                p.fee = t.fee;
            }
        }
    }
    let mut payments: Vec<Payment> = by_txid.into_values().collect();
    // Pending first, then newest first.
    payments.sort_by_key(|p| (p.height.map_or(0, |h| u64::from(u32::MAX - h) + 1), p.txid.clone()));
    if conn.json {
        print_json(&payments);
        return Ok(());
    }
    println!("{:<64} {:>6} {:>21} {:>12}", "TXID", "CONF", "AMOUNT", "FEE");
    for p in &payments {
        let sign = if p.amount < 0 { "-" } else { "+" };
        let amount = format!("{sign}{}", format_coins(p.amount.unsigned_abs()));
        let fee = p.fee.map_or_else(|| "-".to_owned(), format_coins);
        let conf =
            if p.height.is_none() { "pending".to_owned() } else { p.confirmations.to_string() };
        println!("{:<64} {conf:>7} {amount:>21} {fee:>12}", p.txid);
    }
    println!("{} payments", payments.len());
    Ok(())
}

/// How `send` sets its fee.
#[derive(Debug, Clone, clap::Args)]
pub struct FeeArgs {
    /// Fee rate in base units per 1,000 bytes, or `auto`: the node's estimate for
    /// `--target` (`minichain fees`).
    #[arg(long, default_value = "auto", value_name = "auto|N")]
    fee_rate: String,
    /// Confirm within this many blocks (1 to 6; with `--fee-rate auto`).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=6), conflicts_with = "fee")]
    target: u32,
    /// An exact fee in coins instead of a rate.
    #[arg(long, allow_hyphen_values = true, conflicts_with = "fee_rate")]
    fee: Option<String>,
}

impl FeeArgs {
    /// The fee choice, asking the node for its estimate under `auto`.
    fn choice(&self, client: &Client) -> Result<FeeChoice> {
        if let Some(fee) = &self.fee {
            return Ok(FeeChoice::Fixed(parse_coins(fee).context("bad --fee")?));
        }
        if self.fee_rate != "auto" {
            let rate = self.fee_rate.parse::<u64>().ok().filter(|r| *r > 0).with_context(|| {
                format!(
                    "bad --fee-rate '{}': give `auto` or base units per 1000 bytes (a positive integer)",
                    self.fee_rate
                )
            })?;
            return Ok(FeeChoice::Rate(rate));
        }
        let fees: FeesView = client.get("/fees")?;
        // The longest estimated target within the one asked for (1, 3, 6: none is above).
        let rate = fees
            .estimates
            .iter()
            .filter(|e| e.target <= self.target)
            .min_by_key(|e| e.fee_rate)
            .map_or(fees.min_fee_rate, |e| e.fee_rate);
        Ok(FeeChoice::Rate(rate))
    }
}

/// What `send` pays.
pub struct Pay<'a> {
    /// Recipient address.
    pub to: &'a str,
    /// Coins, or `None` for everything spendable less the fee (`--all`).
    pub amount: Option<&'a str>,
    /// The fee, or how to set it.
    pub fee: FeeArgs,
    /// Past the fee cap.
    pub force: bool,
}

/// `send`.
///
/// # Errors
/// A one-line reason (bad amount, address, funds, passphrase, or the node's rejection).
pub fn send(conn: Conn, file: &WalletFile, passphrase: &Passphrase, pay: &Pay<'_>) -> Result<()> {
    let client = Client::new(conn.clone())?;
    let to = client.address(pay.to)?;
    let amount = pay.amount.map(parse_coins).transpose().context("bad --amount")?;
    let fee = pay.fee.choice(&client)?;
    let mut wallet = load_of(file, &conn)?;
    let coins = spendable(&client, &wallet)?;
    let pass = unlock_passphrase(&wallet, passphrase)?;
    let signer = wallet.unlock(pass.as_deref())?;
    let mut keys = HashMap::new();
    for a in wallet.addresses()? {
        keys.insert(a.pubkey, signer.keypair(a.chain, a.index)?);
    }
    let change = wallet.next_change()?;
    let payment = build_paying(&coins, to, amount, fee, change.pubkey, |pk| keys.get(pk))?;
    if !pay.force {
        check_fee(payment.amount, payment.fee)?;
    }
    let answer: Submitted =
        client.post("/tx", &SubmitTx { hex: hex::encode(serialize(&payment.tx)) })?;
    if payment.change.is_some() {
        // The change address is in use now: the next payment's change goes to a fresh one.
        wallet.hand_out(KeyChain::Change)?;
    }
    if conn.json {
        println!(
            "{}",
            json!({ "txid": answer.txid, "amount": payment.amount, "fee": payment.fee })
        );
    } else {
        println!("{}", answer.txid);
    }
    Ok(())
}

/// `wallet bumpfee TXID`.
///
/// # Errors
/// A one-line reason: not pending, not ours, no change to pay from, the fee cap, or the
/// node's refusal (a replacement that does not pay enough).
pub fn bumpfee(
    conn: Conn,
    file: &WalletFile,
    passphrase: &Passphrase,
    txid: &str,
    fee: Option<&str>,
    force: bool,
) -> Result<()> {
    let client = Client::new(conn.clone())?;
    let wallet = load_of(file, &conn)?;
    let found: TxLookup = client.get(&format!("/tx/{txid}"))?;
    if !found.in_mempool {
        bail!("transaction {txid} is confirmed already: there is nothing to bump");
    }
    let mut tx: Transaction = deserialize(&hex::decode(&found.tx.hex)?)
        .map_err(|e| anyhow!("the node sent a transaction that does not decode: {e}"))?;
    let ours: HashMap<[u8; 32], WalletAddress> =
        wallet.addresses()?.into_iter().map(|a| (a.pubkey, a)).collect();
    let mut spent = Vec::new();
    for prevout in &found.prevouts {
        let owner = prevout.as_ref().and_then(|o| client.address(&o.address).ok());
        match (prevout, owner) {
            (Some(o), Some(pk)) if ours.contains_key(&pk) => {
                spent.push(TxOut { value: o.value, pubkey: pk })
            }
            _ => bail!(
                "transaction {txid} spends coins that are not this wallet's: only its own payments can be bumped"
            ),
        }
    }
    let old = found.fee.context("the node does not know the payment's fee")?;
    let size = tx.size() as u64;
    let new = match fee {
        Some(f) => parse_coins(f).context("bad --fee")?,
        None => (2 * old).max(old + size),
    };
    if new <= old {
        bail!("the new fee must be above the old one ({} coins)", format_coins(old));
    }
    // Change: the last output to one of our change addresses (a one-key wallet's own).
    let is_change = |pk: &[u8; 32]| {
        ours.get(pk).is_some_and(|a| a.chain == KeyChain::Change || !wallet.is_hd())
    };
    let Some(at) = tx.outputs.iter().rposition(|o| is_change(&o.pubkey)) else {
        bail!("transaction {txid} has no change output to take a higher fee from");
    };
    let more = new - old;
    if tx.outputs[at].value < more {
        bail!(
            "its change ({} coins) cannot pay {} coins more fee",
            format_coins(tx.outputs[at].value),
            format_coins(more)
        );
    }
    let sent: u64 =
        tx.outputs.iter().filter(|o| !ours.contains_key(&o.pubkey)).map(|o| o.value).sum();
    if !force {
        check_fee(sent, new)?;
    }
    tx.outputs[at].value -= more;
    if tx.outputs[at].value == 0 {
        tx.outputs.remove(at);
    }
    let pass = unlock_passphrase(&wallet, passphrase)?;
    let signer = wallet.unlock(pass.as_deref())?;
    let mut keys = HashMap::new();
    for a in ours.values() {
        keys.insert(a.pubkey, signer.keypair(a.chain, a.index)?);
    }
    sign_transaction(&mut tx, &spent, |pk| keys.get(pk))?;
    let answer: Submitted = client.post("/tx", &SubmitTx { hex: hex::encode(serialize(&tx)) })?;
    // The wallet file is untouched: the same change address, the same counts.
    if conn.json {
        print_json(&json!({ "txid": answer.txid, "replaced": txid, "fee": new }));
    } else {
        println!("{}", answer.txid);
    }
    Ok(())
}
