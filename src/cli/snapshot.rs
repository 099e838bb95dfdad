//! `minichain snapshot`: UTXO snapshots of a running node (see [`crate::snapshot`]).

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde_json::json;

use super::client::{Client, Conn, print_json};

/// Snapshot subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum SnapshotCommand {
    /// Ask the running node for its UTXO set at its tip and write it, with its hash, to
    /// FILE (Bitcoin Core's `dumptxoutset`); prints the block, height and snapshot hash.
    Create {
        /// Where to write the snapshot (replaced only once it is whole).
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        #[command(flatten)]
        conn: Conn,
    },
}

/// Runs a snapshot subcommand.
///
/// # Errors
/// A one-line reason.
pub fn run(cmd: SnapshotCommand) -> Result<()> {
    match cmd {
        SnapshotCommand::Create { out, conn } => create(conn, &out),
    }
}

fn create(conn: Conn, out: &Path) -> Result<()> {
    let client = Client::new(conn.clone())?;
    let bytes = client.get_bytes("/snapshot")?;
    // Checked as it will be when loaded: a snapshot damaged on the way is not written.
    let (info, hash) = crate::snapshot::read(&bytes[..], conn.network, None, |_, _| {})
        .context("the node's snapshot does not check out")?;
    write_atomically(out, &bytes).with_context(|| format!("cannot write {}", out.display()))?;
    if conn.json {
        print_json(&json!({
            "block": info.block.to_string(),
            "height": info.height,
            "hash": hash.to_string(),
            "coins": info.coins,
            "file": out.display().to_string(),
        }));
    } else {
        println!("block   {}", info.block);
        println!("height  {}", info.height);
        println!("hash    {hash}");
        println!("coins   {}", info.coins);
        println!("written to {} ({})", out.display(), crate::human::bytes(bytes.len() as u64));
    }
    Ok(())
}

/// Writes `bytes` to a file beside `path`, syncs it, then renames it over `path`: a crash
/// or a full disk leaves either the old file or the new one, never half of one.
fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut partial = path.as_os_str().to_owned();
    partial.push(".partial");
    let partial = PathBuf::from(partial);
    let result = (|| {
        let mut file = std::fs::File::create(&partial)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&partial, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&partial);
    }
    result
}
