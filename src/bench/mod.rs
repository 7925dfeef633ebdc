//! `sluice bench`: load generators that measure a running server end to end over real
//! sockets, beside what the machine spends serving them; and the engine's per-transaction
//! cost per query class beside its baselines, and as distinct subscriptions grow.

pub mod queries;
pub mod server;
mod stamps;
pub mod transfer;

/// This process's resident memory, in bytes (0 where /proc cannot say).
pub fn resident_bytes() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: usize = statm.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    pages * 4096
}
