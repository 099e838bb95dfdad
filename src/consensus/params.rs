//! Per-network consensus parameters: constants, never configuration.

use std::fmt;
use std::str::FromStr;

use ruint::aliases::U256;

use crate::primitives::COIN;

/// The most base units that can ever exist: 21 million coins.
pub const MAX_MONEY: u64 = 21_000_000 * COIN;

/// Blocks whose median time gives the "median time past".
pub const MEDIAN_TIME_SPAN: usize = 11;

/// The networks a node can run. Nodes of different networks never mix: each has its own
/// genesis, protocol ids, topics, address prefix and default ports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Network {
    /// Private test chain: near-trivial proof of work, blocks on demand.
    Regtest,
    /// Default: a CPU core finds a block every few seconds.
    #[default]
    Devnet,
}

impl Network {
    /// Every network.
    pub const ALL: [Network; 2] = [Network::Regtest, Network::Devnet];

    /// The consensus parameters of this network.
    pub fn params(self) -> &'static Params {
        match self {
            Network::Regtest => &REGTEST,
            Network::Devnet => &DEVNET,
        }
    }

    /// Lower-case name used in protocol ids, topics and data dirs.
    pub fn as_str(self) -> &'static str {
        self.params().name
    }
}

impl fmt::Display for Network {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A network name that is not known.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown network '{0}' (expected regtest or devnet)")]
pub struct UnknownNetwork(pub String);

impl FromStr for Network {
    type Err = UnknownNetwork;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Network::ALL.into_iter().find(|n| n.as_str() == s).ok_or_else(|| UnknownNetwork(s.into()))
    }
}

/// Consensus parameters of one network.
#[derive(Debug)]
pub struct Params {
    /// The network these belong to.
    pub network: Network,
    /// Lower-case name.
    pub name: &'static str,
    /// Address human-readable prefix.
    pub address_hrp: &'static str,
    /// The easiest target allowed, in compact form.
    pub pow_limit_bits: u32,
    /// If true, every block uses `pow_limit_bits` (regtest).
    pub no_retarget: bool,
    /// Wanted seconds between blocks.
    pub target_spacing: u32,
    /// ASERT half-life in seconds: being this far behind schedule halves the difficulty.
    pub asert_half_life: u32,
    /// Genesis block time.
    pub genesis_time: u32,
    /// Genesis compact target (also the ASERT anchor target).
    pub genesis_bits: u32,
    /// Genesis nonce (found once, pinned by a test).
    pub genesis_nonce: u32,
    /// Subsidy of the first blocks, in base units.
    pub initial_subsidy: u64,
    /// Blocks between subsidy halvings.
    pub halving_interval: u32,
    /// Confirmations before a coinbase output may be spent.
    pub coinbase_maturity: u32,
    /// Largest encoded block, bytes.
    pub max_block_size: usize,
    /// Largest encoded transaction, bytes.
    pub max_tx_size: usize,
    /// Most inputs (signature checks) in one block.
    pub max_block_inputs: usize,
    /// How far ahead of the local clock a block time may be, seconds.
    pub max_future_block_time: u32,
    /// Default TCP port for peer-to-peer connections.
    pub default_p2p_port: u16,
    /// Default port of the HTTP API.
    pub default_rpc_port: u16,
    /// The block whose ancestors' signatures are trusted by default (`--assume-valid`
    /// overrides it; `chain::assume` says when it applies). `None` on every network so
    /// far: no devnet or regtest chain is canonical enough to pin one.
    pub assume_valid: Option<[u8; 32]>,
    /// The least work a best header needs before assume-valid applies (Core's
    /// `nMinimumChainWork`): a node fed a short fake chain checks everything.
    pub min_chain_work: U256,
    /// Blocks' worth of work (at the best header's difficulty) a block must lie under
    /// before its signatures may be assumed valid.
    pub assume_valid_burial: u32,
}

impl Params {
    /// Block subsidy at `height`: halves every `halving_interval` blocks, zero after 64.
    pub fn subsidy(&self, height: u32) -> u64 {
        let halvings = height / self.halving_interval;
        if halvings >= 64 { 0 } else { self.initial_subsidy >> halvings }
    }
}

/// Regtest: every nonce has a one-in-two chance, no retargeting.
pub static REGTEST: Params = Params {
    network: Network::Regtest,
    name: "regtest",
    address_hrp: "mcrt",
    pow_limit_bits: 0x207f_ffff,
    no_retarget: true,
    target_spacing: 5,
    asert_half_life: 300,
    genesis_time: 1_763_683_200,
    genesis_bits: 0x207f_ffff,
    genesis_nonce: 0,
    initial_subsidy: 50 * COIN,
    halving_interval: 150,
    coinbase_maturity: 100,
    max_block_size: 1_000_000,
    max_tx_size: 100_000,
    max_block_inputs: 8_000,
    // Bitcoin's two hours: blocks mined in a burst get MTP+1 times that run ahead of the
    // clock, and with no retargeting there is nothing to gain by lying about time.
    max_future_block_time: 7_200,
    default_p2p_port: 18_444,
    default_rpc_port: 18_443,
    assume_valid: None,
    min_chain_work: U256::ZERO,
    // At most 100, so a test can bury a block with a few seconds of mining.
    assume_valid_burial: 100,
};

/// Devnet: about 2^23 hashes per block at genesis (seconds on one core without any SHA
/// instructions, a fraction of a second with AVX-512 lanes), then ASERT with a 1-minute
/// half-life steers the spacing to 5 s whatever hash power joins: a lone one-thread miner
/// is near 5 s per block within 3-4 minutes on CPUs from 1.4 to 50 M nonces/s
/// (simulated and measured; docs/consensus.md).
pub static DEVNET: Params = Params {
    network: Network::Devnet,
    name: "devnet",
    address_hrp: "mc",
    pow_limit_bits: 0x1f00_ffff,
    no_retarget: false,
    target_spacing: 5,
    asert_half_life: 60,
    genesis_time: 1_763_683_200,
    genesis_bits: 0x1e02_0000,
    genesis_nonce: 29_247_051,
    initial_subsidy: 50 * COIN,
    halving_interval: 210_000,
    coinbase_maturity: 100,
    max_block_size: 1_000_000,
    max_tx_size: 100_000,
    max_block_inputs: 8_000,
    // Short: with ASERT every second of claimed lateness eases the difficulty.
    max_future_block_time: 120,
    default_p2p_port: 9_000,
    default_rpc_port: 8_332,
    assume_valid: None,
    min_chain_work: U256::ZERO,
    // One day of blocks at the 5 s spacing (Core asks two weeks at 10 minutes, 2,016
    // blocks): a chain made to slip an invalid block past a node would need a day of the
    // whole network's hash power on top of it, while a month-old devnet still skips the
    // signatures of nearly all its history.
    assume_valid_burial: 17_280,
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subsidy_halves_and_ends() {
        let p = &REGTEST;
        assert_eq!(p.subsidy(0), 50 * COIN);
        assert_eq!(p.subsidy(149), 50 * COIN);
        assert_eq!(p.subsidy(150), 25 * COIN);
        assert_eq!(p.subsidy(150 * 64), 0);
    }

    #[test]
    fn network_names_parse_back() {
        for n in Network::ALL {
            assert_eq!(n.as_str().parse::<Network>(), Ok(n));
            let _ = crate::primitives::address::encode_address(n.params().address_hrp, &[1; 32]);
        }
        assert!("mainnet".parse::<Network>().is_err());
    }
}
