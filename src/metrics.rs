//! Per-database counters, written by the executor thread and read by `GET /metrics` in
//! Prometheus' text format: transactions, reducer calls and their latency, delta rows sent
//! to subscriptions, connected clients, live subscriptions, waiting requests and the bytes
//! waiting to be sent to clients.

use crate::module_db::Committed;
use std::fmt::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Upper bounds of the reducer latency histogram, in seconds.
const BUCKETS: [f64; 10] = [0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.1, 1.0];

#[derive(Default)]
pub struct Metrics {
    transactions: AtomicU64,
    delta_rows: AtomicU64,
    calls_committed: AtomicU64,
    calls_failed: AtomicU64,
    latency_buckets: [AtomicU64; BUCKETS.len()],
    latency_sum_nanos: AtomicU64,
    clients: AtomicUsize,
    subscriptions: AtomicUsize,
    /// Requests sent to the executor and not yet taken.
    pub queued: AtomicUsize,
    /// Bytes queued for WebSocket clients and not yet sent, over all of them.
    pub send_queued: Arc<AtomicUsize>,
    /// Transactions up to this offset are durable: what reads the log directly stops there.
    pub durable: AtomicU64,
    /// Writes are refused because the log cannot be written.
    pub refusing_writes: AtomicBool,
}

impl Metrics {
    pub fn committed(&self, (_, deltas): &Committed) {
        self.transactions.fetch_add(1, Ordering::Relaxed);
        let rows: usize = deltas.iter().map(|d| d.inserts.len() + d.deletes.len()).sum();
        self.delta_rows.fetch_add(rows as u64, Ordering::Relaxed);
    }

    pub fn reducer_ran(&self, took: Duration, committed: bool) {
        let counter = if committed { &self.calls_committed } else { &self.calls_failed };
        counter.fetch_add(1, Ordering::Relaxed);
        self.latency_sum_nanos.fetch_add(took.as_nanos() as u64, Ordering::Relaxed);
        if let Some(i) = BUCKETS.iter().position(|b| took.as_secs_f64() <= *b) {
            self.latency_buckets[i].fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn set_sessions(&self, clients: usize, subscriptions: usize) {
        self.clients.store(clients, Ordering::Relaxed);
        self.subscriptions.store(subscriptions, Ordering::Relaxed);
    }
}

/// Every database's metrics, in Prometheus' text exposition format.
pub fn render(databases: &[(String, &Metrics)]) -> String {
    let mut out = String::new();
    let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
    let mut family = |name: &str, kind: &str, help: &str, value: &dyn Fn(&Metrics) -> String| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for (db, m) in databases {
            let _ = writeln!(out, "{name}{{database=\"{db}\"}} {}", value(m));
        }
    };
    family("sluice_transactions_total", "counter", "Transactions committed.", &|m| load(&m.transactions).to_string());
    family(
        "sluice_delta_rows_total",
        "counter",
        "Rows inserted into or deleted from subscribed query results.",
        &|m| load(&m.delta_rows).to_string(),
    );
    family("sluice_clients", "gauge", "Connected WebSocket clients.", &|m| {
        m.clients.load(Ordering::Relaxed).to_string()
    });
    family("sluice_subscriptions", "gauge", "Live subscriptions.", &|m| {
        m.subscriptions.load(Ordering::Relaxed).to_string()
    });
    family("sluice_request_queue_depth", "gauge", "Requests waiting for the database's executor.", &|m| {
        m.queued.load(Ordering::Relaxed).to_string()
    });
    family("sluice_durable_offset", "gauge", "Offset of the last durable transaction.", &|m| {
        load(&m.durable).to_string()
    });
    family("sluice_refusing_writes", "gauge", "1 while writes are refused because the log cannot be written.", &|m| {
        (m.refusing_writes.load(Ordering::Relaxed) as u8).to_string()
    });
    family("sluice_send_queue_bytes", "gauge", "Bytes queued for WebSocket clients, not yet sent.", &|m| {
        m.send_queued.load(Ordering::Relaxed).to_string()
    });
    let _ = writeln!(out, "# HELP sluice_reducer_calls_total Reducer calls by clients, by outcome.");
    let _ = writeln!(out, "# TYPE sluice_reducer_calls_total counter");
    for (db, m) in databases {
        for (outcome, n) in [("committed", &m.calls_committed), ("failed", &m.calls_failed)] {
            let _ = writeln!(out, "sluice_reducer_calls_total{{database=\"{db}\",outcome=\"{outcome}\"}} {}", load(n));
        }
    }
    let _ = writeln!(out, "# HELP sluice_reducer_seconds Time to run and commit a client's reducer call.");
    let _ = writeln!(out, "# TYPE sluice_reducer_seconds histogram");
    for (db, m) in databases {
        let mut cumulative = 0;
        for (bound, n) in BUCKETS.iter().zip(&m.latency_buckets) {
            cumulative += load(n);
            let _ = writeln!(out, "sluice_reducer_seconds_bucket{{database=\"{db}\",le=\"{bound}\"}} {cumulative}");
        }
        let count = load(&m.calls_committed) + load(&m.calls_failed);
        let _ = writeln!(out, "sluice_reducer_seconds_bucket{{database=\"{db}\",le=\"+Inf\"}} {count}");
        let sum = load(&m.latency_sum_nanos) as f64 / 1e9;
        let _ = writeln!(out, "sluice_reducer_seconds_sum{{database=\"{db}\"}} {sum}");
        let _ = writeln!(out, "sluice_reducer_seconds_count{{database=\"{db}\"}} {count}");
    }
    out
}

/// The server-wide gauges, in the Prometheus text format.
pub fn render_server(send_queued: usize) -> String {
    format!(
        "# HELP sluice_server_send_queue_bytes Bytes queued for every WebSocket client of every database, not yet sent (held to --max-total-queued-bytes).\n\
         # TYPE sluice_server_send_queue_bytes gauge\nsluice_server_send_queue_bytes {send_queued}\n"
    )
}
