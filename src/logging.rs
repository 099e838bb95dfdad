//! Logging: `tracing` to stderr, text or one JSON object per line. `RUST_LOG` overrides
//! the level chosen by `--debug`.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line, fields as keys.
    Json,
}

/// Installs the global subscriber. `debug` shows minichain's protocol messages; libp2p's
/// own chatter stays at info unless `RUST_LOG` asks for it.
pub fn init(debug: bool, format: LogFormat) {
    // libp2p-kad warns "no known peers" on the first node of every network: noise.
    let default =
        if debug { "info,minichain=debug,libp2p_kad=error" } else { "info,libp2p_kad=error" };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    // Colour only on a terminal, and never when NO_COLOR is set (no-color.org).
    let ansi = std::io::stderr().is_terminal()
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi);
    // A second init (tests, embedding) keeps the first subscriber.
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}
