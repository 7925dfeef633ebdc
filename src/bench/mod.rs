//! `sluice bench`: load generators that measure a running server end to end over real
//! sockets, beside what the machine spends serving them.

pub mod server;
pub mod transfer;
