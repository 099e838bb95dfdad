//! The system clock, read only at the edges (the network task, the node's driver, the CLI
//! and tests): decision code takes the time as an argument instead.

/// Seconds since the Unix epoch, from the system clock.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}
