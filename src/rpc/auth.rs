//! Cookie authentication, as Bitcoin Core does it: at start the node writes a fresh random
//! token to `<data-dir>/.cookie` (mode 0600); state-changing calls must present it as
//! `Authorization: Bearer <token>`. Anyone who can read the data dir may change state;
//! nobody else can. The file is removed on clean shutdown.

use std::path::{Path, PathBuf};

use rand::RngCore;

use crate::config::write_private;

/// File name of the cookie in the data dir.
pub const COOKIE_FILE: &str = ".cookie";

/// The node's API token and where it is written.
#[derive(Debug)]
pub struct Cookie {
    path: PathBuf,
    token: String,
}

impl Cookie {
    /// Writes a fresh 32-byte random token to `data_dir/.cookie`.
    ///
    /// # Errors
    /// The I/O error if the file cannot be written.
    pub fn create(data_dir: &Path) -> std::io::Result<Self> {
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        let token = hex::encode(bytes);
        let path = data_dir.join(COOKIE_FILE);
        write_private(&path, token.as_bytes())?;
        Ok(Self { path, token })
    }

    /// The token.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// Deletes the cookie file (clean shutdown).
    pub fn remove(&self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Reads the token a node wrote into `data_dir`.
///
/// # Errors
/// The I/O error (typically: no node has run with this data dir, or no permission).
pub fn read_cookie(data_dir: &Path) -> std::io::Result<String> {
    Ok(std::fs::read_to_string(data_dir.join(COOKIE_FILE))?.trim().to_owned())
}

/// Compares tokens in time independent of where they differ.
pub fn token_matches(expected: &str, given: &str) -> bool {
    expected.len() == given.len()
        && expected.bytes().zip(given.bytes()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
}

/// The `Host` names the API answers to, against DNS rebinding: a web page whose name
/// resolves to 127.0.0.1 reaches the API from the operator's browser, but its requests
/// carry its own name as `Host`. An IP address, `localhost` and the names the operator
/// lists (`--rpc-allow-host`; `*` for any) are served; any other name gets 403. As geth's
/// `--http.vhosts`.
#[derive(Debug, Clone, Default)]
pub struct AllowedHosts {
    names: Vec<String>,
    any: bool,
}

impl AllowedHosts {
    /// `localhost` and IP addresses, plus `names` (`*` allows every name).
    pub fn new(names: &[String]) -> Self {
        let any = names.iter().any(|n| n == "*");
        Self { names: names.iter().map(|n| n.to_ascii_lowercase()).collect(), any }
    }

    /// Whether a request with this `Host` header (absent: a client that is no browser)
    /// is served.
    pub fn allows(&self, host: Option<&str>) -> bool {
        let Some(host) = host else { return true };
        let name = host_name(host).to_ascii_lowercase();
        self.any
            || name == "localhost"
            || name.ends_with(".localhost")
            || name
                .trim_start_matches('[')
                .trim_end_matches(']')
                .parse::<std::net::IpAddr>()
                .is_ok()
            || self.names.contains(&name)
    }
}

/// The name of a `Host` header without its port (`[::1]:8332` -> `[::1]`).
fn host_name(host: &str) -> &str {
    let host = host.trim();
    if host.starts_with('[') {
        return host.find(']').map_or(host, |end| &host[..=end]);
    }
    host.rsplit_once(':').map_or(host, |(name, port)| {
        if port.bytes().all(|b| b.is_ascii_digit()) { name } else { host }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_other_than_ours_are_refused_and_addresses_are_served() {
        let hosts = AllowedHosts::new(&["node.lan".to_owned()]);
        for ok in [
            "127.0.0.1:8332",
            "localhost",
            "LOCALHOST:1",
            "[::1]:8332",
            "10.0.0.5",
            "node.lan:8332",
        ] {
            assert!(hosts.allows(Some(ok)), "{ok}");
        }
        for bad in ["evil.example.com", "evil.example.com:8332", "127.0.0.1.evil.com", "lan"] {
            assert!(!hosts.allows(Some(bad)), "{bad}");
        }
        assert!(hosts.allows(None), "curl --http1.0 sends none");
        assert!(AllowedHosts::new(&["*".to_owned()]).allows(Some("evil.example.com")));
    }
}
