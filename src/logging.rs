//! Logging: `tracing` to stderr, and with `--log-file` to a file as well, text or one JSON
//! object per line. `RUST_LOG` overrides the level chosen by `--debug`.
//!
//! The log file is opened for appending and reopened by [`LogFile::reopen`] (the node
//! calls it on SIGHUP), so logrotate can move it away and signal the node, as operators do
//! with bitcoind's debug.log.

use std::fs::{File, OpenOptions};
use std::io::{self, IsTerminal};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, Registry};

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line, fields as keys.
    Json,
}

/// The log file: every event is appended to it whole; [`LogFile::reopen`] swaps the file
/// under the same path.
#[derive(Debug, Clone)]
pub struct LogFile {
    path: PathBuf,
    file: Arc<Mutex<File>>,
}

impl LogFile {
    /// Opens `path` for appending, creating it if needed.
    ///
    /// # Errors
    /// The file cannot be opened.
    pub fn open(path: &Path) -> io::Result<Self> {
        let file = append(path)?;
        Ok(Self { path: path.to_path_buf(), file: Arc::new(Mutex::new(file)) })
    }

    /// Opens the path again, so lines go to a new file once the old one was moved away.
    ///
    /// # Errors
    /// The file cannot be opened; logging then goes on into the old one.
    pub fn reopen(&self) -> io::Result<()> {
        let file = append(&self.path)?;
        if let Ok(mut current) = self.file.lock() {
            *current = file;
        }
        Ok(())
    }

    /// Where it is.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

fn append(path: &Path) -> io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

/// Writes one formatted event into the current file.
struct LogFileWriter<'a>(std::sync::MutexGuard<'a, File>);

impl io::Write for LogFileWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

impl<'a> MakeWriter<'a> for LogFile {
    type Writer = Box<dyn io::Write + 'a>;

    fn make_writer(&'a self) -> Self::Writer {
        match self.file.lock() {
            Ok(guard) => Box::new(LogFileWriter(guard)),
            // A thread panicked while writing a line: drop lines rather than panic too.
            Err(_) => Box::new(io::sink()),
        }
    }
}

/// Installs the global subscriber: stderr, and `file` too when given. `debug` shows
/// minichain's protocol messages, one line each; libp2p's own chatter and the raw events
/// minichain passes over stay hidden unless `RUST_LOG` asks for them (e.g.
/// `RUST_LOG=info,minichain=trace`).
pub fn init(debug: bool, format: LogFormat, file: Option<&LogFile>) {
    // libp2p-kad warns "no known peers" on the first node of every network: noise.
    let default =
        if debug { "info,minichain=debug,libp2p_kad=error" } else { "info,libp2p_kad=error" };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    // Colour only on a terminal, and never when NO_COLOR is set (no-color.org).
    let ansi = std::io::stderr().is_terminal()
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let mut outputs = vec![layer(format, std::io::stderr, ansi)];
    outputs.extend(file.map(|f| layer(format, f.clone(), false)));
    // A second init (tests, embedding) keeps the first subscriber.
    let _ = tracing_subscriber::registry().with(outputs).with(filter).try_init();
}

type BoxedLayer = Box<dyn Layer<Registry> + Send + Sync>;

fn layer<W>(format: LogFormat, writer: W, ansi: bool) -> BoxedLayer
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    let fmt = tracing_subscriber::fmt::layer().with_writer(writer).with_ansi(ansi);
    match format {
        LogFormat::Text => fmt.boxed(),
        LogFormat::Json => fmt.json().flatten_event(true).boxed(),
    }
}
