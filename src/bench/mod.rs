//! `sluice bench`: load generators that measure a running server end to end over real
//! sockets, beside what the machine spends serving them; and the engine's per-transaction
//! cost per query class beside its baselines.

pub mod queries;
pub mod server;
pub mod transfer;
