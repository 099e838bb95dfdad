//! The checks behind the fuzz targets in `fuzz/`, one function per decoder of untrusted
//! bytes. Each feeds arbitrary bytes to the decoder the node uses and asserts what must
//! hold for anything it accepts: re-encoding gives the same bytes (or the same value), and
//! the consensus checks run to a verdict. A panic is a finding.
//!
//! They live in the library, not in the fuzz crate, so the inputs a fuzzer once crashed
//! on (kept in `fuzz/regressions/<target>/`) replay in `cargo test` on stable Rust.

use std::str::FromStr;

use libp2p::request_response::Codec;

use crate::api::{MineRequest, SubmitTx};
use crate::compact::CompactBlock;
use crate::consensus::{Network, block::check_block, tx::check_transaction};
use crate::net::codec::{self, SyncCodec};
use crate::primitives::address::decode_address;
use crate::primitives::encode::{Decode, Encode, deserialize, serialize};
use crate::primitives::{Block, BlockHash, BlockHeader, Coin, OutPoint, Transaction, Txid};
use crate::protocol::{MAX_REQUEST_BYTES, MAX_RESPONSE_BYTES, SyncRequest, SyncResponse};
use crate::storage::{BlockUndo, IndexEntry};

/// A fuzz target's check.
pub type Check = fn(&[u8]);

/// Every fuzz target by name, for the regression replay.
pub const TARGETS: [(&str, Check); 7] = [
    ("block", block),
    ("compact_block", compact_block),
    ("transaction", transaction),
    ("sync_request", sync_request),
    ("sync_response", sync_response),
    ("http_body", http_body),
    ("stored", stored),
];

/// Decodes `data` as `T`; if it is accepted, re-encoding must give back `data` exactly
/// (the consensus encoding has one form per value, or hashes would be malleable).
fn round_trip<T: Encode + Decode>(data: &[u8]) -> Option<T> {
    let value = deserialize::<T>(data).ok()?;
    assert_eq!(serialize(&value), data, "re-encoding differs from the accepted bytes");
    Some(value)
}

fn check_block_everywhere(block: &Block) {
    let _ = block.block_hash();
    for network in Network::ALL {
        let _ = check_block(block, network.params());
    }
}

/// A gossiped or synced block: the consensus decoder, then the context-free block rules.
pub fn block(data: &[u8]) {
    if let Some(block) = round_trip::<Block>(data) {
        check_block_everywhere(&block);
    }
}

/// A compact block as a peer sends it: the decoder, the shape check, and for a shape that
/// passes, a rebuild from its own prefilled transactions, its missing slots filled with
/// copies of one, and the Merkle check: never a panic, whatever the ids and indexes.
pub fn compact_block(data: &[u8]) {
    let Some(compact) = round_trip::<CompactBlock>(data) else { return };
    let _ = compact.block_hash();
    if compact.check().is_err() {
        return;
    }
    let candidates = compact.prefilled.iter().map(|p| (p.tx.wtxid(), &p.tx));
    let mut partial = compact.rebuild(candidates);
    let missing = partial.missing();
    assert!(missing.len() <= compact.tx_count());
    if let Some(filler) = compact.prefilled.first() {
        let txs = vec![filler.tx.clone(); missing.len()];
        assert!(partial.fill(txs).is_ok(), "one transaction per missing slot fills them");
        let _ = partial.finish();
    }
}

/// A gossiped transaction: the consensus decoder, then the context-free transaction rules.
pub fn transaction(data: &[u8]) {
    if let Some(tx) = round_trip::<Transaction>(data) {
        let _ = (tx.txid(), tx.wtxid());
        for network in Network::ALL {
            let _ = check_transaction(&tx, network.params());
        }
    }
}

/// Reads one request frame with the sync codec exactly as an inbound stream would.
fn read_request(data: &[u8]) -> Option<SyncRequest> {
    let mut io = futures::io::Cursor::new(data);
    let protocol = libp2p::StreamProtocol::new("/fuzz");
    match futures::executor::block_on(SyncCodec::default().read_request(&protocol, &mut io)).ok()? {
        codec::Inbound::Request(req) => Some(req),
        codec::Inbound::Malformed(_) => None,
    }
}

/// Reads one response frame with the sync codec exactly as an outbound stream would.
fn read_response(data: &[u8]) -> Option<SyncResponse> {
    let mut io = futures::io::Cursor::new(data);
    let protocol = libp2p::StreamProtocol::new("/fuzz");
    futures::executor::block_on(SyncCodec::default().read_response(&protocol, &mut io)).ok()
}

/// A sync request frame (length prefix and body) as a peer sends it.
pub fn sync_request(data: &[u8]) {
    if let Some(req) = read_request(data) {
        let body = codec::encode(&req, MAX_REQUEST_BYTES).expect("a decoded request re-encodes");
        assert_eq!(codec::decode::<SyncRequest>(&body, MAX_REQUEST_BYTES).ok(), Some(req));
    }
}

/// A sync response frame, then what the sync manager does with its contents: headers
/// cut into 80-byte records, blocks decoded and checked.
pub fn sync_response(data: &[u8]) {
    let Some(resp) = read_response(data) else { return };
    let body = codec::encode(&resp, MAX_RESPONSE_BYTES).expect("a decoded response re-encodes");
    assert_eq!(codec::decode::<SyncResponse>(&body, MAX_RESPONSE_BYTES).ok().as_ref(), Some(&resp));
    match resp {
        SyncResponse::Headers(bytes) => {
            for chunk in bytes.chunks_exact(80) {
                if let Some(header) = round_trip::<BlockHeader>(chunk) {
                    let _ = header.block_hash();
                }
            }
        }
        SyncResponse::Blocks(blocks) => {
            for bytes in blocks {
                block(&bytes);
            }
        }
        SyncResponse::Txs(txs) | SyncResponse::BlockTxs(txs) => {
            for bytes in txs {
                let _ = round_trip::<crate::primitives::Transaction>(&bytes);
            }
        }
        SyncResponse::CompactBlock(bytes) => compact_block(&bytes),
        SyncResponse::Status(_) | SyncResponse::Refused(_) | SyncResponse::Txids(_) => {}
    }
}

/// Bodies and path segments of the HTTP API: `POST /tx` and `POST /mine` JSON, the
/// transaction hex inside, addresses and block/transaction ids.
pub fn http_body(data: &[u8]) {
    if let Ok(req) = serde_json::from_slice::<SubmitTx>(data)
        && let Ok(tx) = crate::rpc::tx_from_hex(&req.hex)
    {
        transaction(&serialize(&tx));
    }
    if let Ok(req) = serde_json::from_slice::<MineRequest>(data)
        && let Some(to) = req.to
    {
        let _ = decode_address("mcrt", &to);
    }
    if let Ok(s) = std::str::from_utf8(data) {
        for hrp in ["mc", "mcrt"] {
            let _ = decode_address(hrp, s);
        }
        if let Ok(hash) = BlockHash::from_str(s) {
            assert_eq!(BlockHash::from_str(&hash.to_string()).ok(), Some(hash));
        }
        let _ = Txid::from_str(s);
    }
}

/// Records read back from the database (a damaged file must give errors, not panics).
pub fn stored(data: &[u8]) {
    let Some((&tag, rest)) = data.split_first() else { return };
    match tag % 4 {
        0 => drop(round_trip::<Coin>(rest)),
        1 => drop(round_trip::<(OutPoint, Coin)>(rest)),
        2 => drop(round_trip::<BlockUndo>(rest)),
        _ => drop(round_trip::<IndexEntry>(rest)),
    }
}

/// Well-formed inputs for each target (the fuzzers' starting corpus): a regtest chain's
/// blocks and a signed transaction, sync frames, API bodies and stored records.
pub fn seeds() -> Vec<(&'static str, Vec<u8>)> {
    use crate::testkit::{coinbase_input, extend, key, pubkey, regtest_chain, spend};
    let mut chain = regtest_chain();
    let alice = key(1);
    let mut blocks: Vec<Block> =
        (0..101).map(|_| extend(&mut chain, Vec::new(), pubkey(&alice))).collect();
    let (outpoint, out) = coinbase_input(&blocks[0]);
    let tx = spend(
        &[(outpoint, out)],
        vec![crate::primitives::TxOut { value: out.value - 1_000, pubkey: pubkey(&key(2)) }],
        &[&alice],
    );
    blocks.push(extend(&mut chain, vec![tx.clone()], pubkey(&alice)));
    let last = blocks.last().map(|b| b.block_hash()).unwrap_or_default();
    let mut seeds = vec![
        ("block", serialize(&blocks[0])),
        ("block", serialize(&blocks[101])),
        ("transaction", serialize(&tx)),
        ("transaction", serialize(&blocks[0].txs[0])),
        ("compact_block", serialize(&CompactBlock::from_block(&blocks[101]))),
    ];
    let requests = [
        SyncRequest::Status,
        SyncRequest::Headers { locator: vec![last.0, [0; 32]], max: 2_000 },
        SyncRequest::Blocks(vec![last.0]),
        SyncRequest::CompactBlock(last.0),
    ];
    for req in requests {
        if let Ok(frame) = codec::encode_frame(&req, MAX_REQUEST_BYTES) {
            seeds.push(("sync_request", frame));
        }
    }
    let headers = blocks.iter().take(3).flat_map(|b| b.header.to_bytes()).collect();
    let responses = [
        SyncResponse::Headers(headers),
        SyncResponse::Blocks(vec![serialize(&blocks[101])]),
        SyncResponse::CompactBlock(serialize(&CompactBlock::from_block(&blocks[101]))),
        SyncResponse::Refused("no".into()),
        SyncResponse::Status(crate::protocol::ChainTip {
            genesis: [1; 32],
            tip: last.0,
            height: 102,
            work: [2; 32],
        }),
    ];
    for resp in responses {
        if let Ok(frame) = codec::encode_frame(&resp, MAX_RESPONSE_BYTES) {
            seeds.push(("sync_response", frame));
        }
    }
    let address = crate::primitives::address::encode_address("mcrt", &pubkey(&alice));
    let bodies = [
        format!("{{\"hex\":\"{}\"}}", hex::encode(serialize(&tx))),
        format!("{{\"blocks\":3,\"to\":\"{address}\"}}"),
        address,
        last.to_string(),
    ];
    seeds.extend(bodies.into_iter().map(|b| ("http_body", b.into_bytes())));
    let coin = Coin { output: tx.outputs[0], height: 102, is_coinbase: false };
    let undo = BlockUndo { spent: vec![(outpoint, coin)] };
    let entry = chain.entry(&last).copied();
    let mut stored_seeds = vec![[&[0u8][..], &serialize(&coin)].concat()];
    stored_seeds.push([&[1u8][..], &serialize(&(outpoint, coin))].concat());
    stored_seeds.push([&[2u8][..], &serialize(&undo)].concat());
    if let Some(entry) = entry {
        stored_seeds.push([&[3u8][..], &serialize(&entry)].concat());
    }
    seeds.extend(stored_seeds.into_iter().map(|s| ("stored", s)));
    seeds
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    fn regressions_dir() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fuzz/regressions")
    }

    /// The saved crash inputs of `target` (its folder may not exist: no crash yet).
    fn regressions(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
        let Ok(entries) = std::fs::read_dir(regressions_dir().join(target)) else {
            return Vec::new();
        };
        entries
            .map(|e| e.expect("a readable regressions folder").path())
            .map(|p| {
                let bytes = std::fs::read(&p).expect("a readable crash input");
                (p, bytes)
            })
            .collect()
    }

    /// A misnamed folder would replay nothing and say nothing: every folder must be named
    /// after a target, and the crash found so far must be there.
    #[test]
    fn every_regression_folder_names_a_target_and_none_is_lost() {
        let names: Vec<String> = std::fs::read_dir(regressions_dir())
            .expect("fuzz/regressions exists")
            .map(|e| e.expect("readable").file_name().to_string_lossy().into_owned())
            .collect();
        for name in &names {
            assert!(TARGETS.iter().any(|(t, _)| t == name), "fuzz/regressions/{name} is no target");
        }
        let total: usize = TARGETS.iter().map(|(t, _)| regressions(t).len()).sum();
        assert!(total >= 1, "the sync_response crash input is gone");
        assert!(!regressions("sync_response").is_empty());
    }

    /// Every input a fuzzer once crashed on, and the seeds, pass every target's checks.
    #[test]
    fn fuzz_regressions_and_seeds_replay_cleanly() {
        let seeds = seeds();
        for (name, check) in TARGETS {
            assert!(seeds.iter().any(|(t, _)| *t == name), "no seed for {name}");
            for (_, bytes) in seeds.iter().filter(|(t, _)| *t == name) {
                check(bytes);
            }
            for (path, bytes) in regressions(name) {
                eprintln!("replaying {}", path.display());
                check(&bytes);
            }
        }
    }

    /// Seeds decode: a target that rejects its own seeds would fuzz nothing.
    #[test]
    fn seeds_are_accepted_by_their_decoders() {
        for (name, bytes) in seeds() {
            let accepted = match name {
                "block" => deserialize::<Block>(&bytes).is_ok(),
                "compact_block" => deserialize::<CompactBlock>(&bytes).is_ok(),
                "transaction" => deserialize::<Transaction>(&bytes).is_ok(),
                "sync_request" => read_request(&bytes).is_some(),
                "sync_response" => read_response(&bytes).is_some(),
                "http_body" => http_seed_decodes(&bytes),
                "stored" => stored_seed_decodes(&bytes),
                other => panic!("a seed for an unknown target {other}"),
            };
            assert!(accepted, "{name} seed refused");
        }
    }

    /// An HTTP seed is a whole `POST /tx` or `POST /mine` body, an address or a hash.
    fn http_seed_decodes(bytes: &[u8]) -> bool {
        let tx = serde_json::from_slice::<SubmitTx>(bytes)
            .ok()
            .is_some_and(|r| crate::rpc::tx_from_hex(&r.hex).is_ok());
        let mine = serde_json::from_slice::<MineRequest>(bytes)
            .ok()
            .is_some_and(|r| r.to.is_some_and(|to| decode_address("mcrt", &to).is_ok()));
        let text = std::str::from_utf8(bytes).unwrap_or_default();
        tx || mine || decode_address("mcrt", text).is_ok() || BlockHash::from_str(text).is_ok()
    }

    /// A stored seed is a tag byte and one whole record of the type it names.
    fn stored_seed_decodes(bytes: &[u8]) -> bool {
        let Some((&tag, rest)) = bytes.split_first() else { return false };
        match tag {
            0 => deserialize::<Coin>(rest).is_ok(),
            1 => deserialize::<(OutPoint, Coin)>(rest).is_ok(),
            2 => deserialize::<BlockUndo>(rest).is_ok(),
            3 => deserialize::<IndexEntry>(rest).is_ok(),
            _ => false,
        }
    }

    /// `scripts/fuzz.sh` writes the starting corpus with this.
    #[test]
    #[ignore = "run by scripts/fuzz.sh"]
    fn write_seed_corpus() {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus");
        for (i, (name, bytes)) in seeds().into_iter().enumerate() {
            let dir = root.join(name);
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join(format!("seed-{i}")), bytes).unwrap();
        }
    }
}
