//! `sluice bench transfer`: the standard transfer workload over real WebSocket connections.
//! Each of N connections keeps K `transfer` calls in flight (read-modify-write of two accounts
//! chosen with a Zipf distribution of exponent alpha: 0 is uniform, 1.5 is heavy contention),
//! while M dashboard clients subscribe to a GROUP BY aggregate, a 3-way join and a top-10 over
//! the same tables. It reports committed transactions per second, reducer latency (request
//! sent to result received), commit-to-subscriber latency (the transaction's timestamp, taken
//! when the server starts it, to its update's arrival: reducer, group commit and fsync
//! included), and the server's CPU and peak memory when it runs the server itself.
//!
//! Dashboards read only the timestamps of what they receive (`stamps`), and a frame equal to
//! one another dashboard just read is compared rather than read again. The load generator
//! runs on one thread (a current-thread tokio runtime), so on a 2-core machine the server
//! keeps the other core and whatever the generator leaves.

use super::server::Target;
use super::stamps::Recent;
use anyhow::{anyhow, bail, Context, Result};
use futures_util::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Zipf};
use serde::Serialize;
use sluice_client::protocol::{ClientMessage, Encoding, ServerMessage, Status};
use sluice_client::Http;
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;

/// What the dashboards subscribe to.
pub const DASHBOARD: [&str; 3] = [
    "SELECT branch_id, COUNT(*), SUM(balance) FROM account GROUP BY branch_id",
    "SELECT a.id, a.balance, r.name FROM account a JOIN branch b ON a.branch_id = b.id \
     JOIN region r ON b.region_id = r.id WHERE a.balance >= 1050",
    "SELECT id, balance FROM account ORDER BY balance DESC, id LIMIT 10",
];

/// Bytes each connection reads at most per call (see `connect`).
const READ_BUFFER: usize = 16 << 10;

/// Accounts created per seeding call.
const SEED_CHUNK: u64 = 10_000;

/// The workload's settings.
#[derive(Clone, Debug, Serialize, clap::Args)]
pub struct Options {
    /// Accounts seeded (1000 each).
    #[arg(long, default_value_t = 100_000)]
    pub accounts: u64,
    /// Zipf exponent of the account choice: 0 uniform, 1.5 heavy contention.
    #[arg(long, default_value_t = 0.0)]
    pub alpha: f64,
    /// Load connections.
    #[arg(long, default_value_t = 8)]
    pub connections: usize,
    /// Calls each connection keeps in flight, at most.
    #[arg(long, default_value_t = 128)]
    pub pipeline: usize,
    /// Offer this many calls per second in all (default: as many as complete).
    #[arg(long)]
    pub rate: Option<f64>,
    /// Seconds measured, after the warm-up.
    #[arg(long, default_value_t = 10.0)]
    pub seconds: f64,
    /// Seconds of load before measuring (not counted).
    #[arg(long, default_value_t = 2.0)]
    pub warmup: f64,
    /// Dashboard clients subscribed to a GROUP BY, a 3-way join and a top-10.
    #[arg(long, default_value_t = 0)]
    pub subscribers: usize,
    /// The database the bank is published as (replaced).
    #[arg(long, default_value = "bench")]
    pub database: String,
}

/// What a run measured.
#[derive(Debug, Serialize)]
pub struct Report {
    pub options: Options,
    pub server: String,
    pub committed: u64,
    /// Transfers refused by the reducer (insufficient funds): they commit nothing.
    pub failed: u64,
    pub tps: f64,
    pub reducer_p50_ms: f64,
    pub reducer_p99_ms: f64,
    pub delta_updates: u64,
    /// Transaction updates received per second over all subscribers.
    pub delta_updates_per_s: f64,
    /// Bytes of update frames (WebSocket payloads) received over all subscribers.
    pub delta_bytes: u64,
    pub delta_bytes_per_s: f64,
    pub delta_p50_ms: Option<f64>,
    pub delta_p99_ms: Option<f64>,
    /// Server CPU over the measured window, in cores (own server only).
    pub server_cpu_cores: Option<f64>,
    pub server_peak_rss_bytes: Option<u64>,
}

/// Counters the connections add to during the measured window.
struct Tally {
    measuring: bool,
    done: bool,
    committed: u64,
    failed: u64,
    reducer_micros: Histogram<u64>,
    delta_micros: Histogram<u64>,
    delta_updates: u64,
    delta_bytes: u64,
    /// First error that ends a connection.
    error: Option<String>,
}

type Shared = Rc<RefCell<Tally>>;

/// Runs the workload against `server` (or a server of its own); `progress` shows a bar.
pub fn run(server: Option<&str>, options: Options, progress: bool) -> Result<Report> {
    if options.accounts < 2 || options.connections == 0 || options.pipeline == 0 {
        bail!("the workload needs at least 2 accounts, 1 connection and a pipeline of 1");
    }
    if options.alpha.is_nan() || options.alpha < 0.0 {
        bail!("alpha must be 0 or more");
    }
    let seconds = |s: f64| s.is_finite() && (0.0..1e6).contains(&s);
    if !seconds(options.seconds) || options.seconds == 0.0 || !seconds(options.warmup) {
        bail!("--seconds must be positive and --warmup 0 or more (both under a million)");
    }
    if options.rate.is_some_and(|r| !(r.is_finite() && r >= 1.0)) {
        bail!("--rate must be at least 1 call per second");
    }
    let target = Target::new(server)?;
    let token = Some(prepare(&target.url, &options)?);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let local = tokio::task::LocalSet::new();
    let histogram = || Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("valid bounds");
    let tally = Rc::new(RefCell::new(Tally {
        measuring: false,
        done: false,
        committed: 0,
        failed: 0,
        reducer_micros: histogram(),
        delta_micros: histogram(),
        delta_updates: 0,
        delta_bytes: 0,
        error: None,
    }));
    let url = format!("{}/v1/database/{}/subscribe", target.url.replacen("http", "ws", 1), options.database);
    let (cpu, elapsed) = local.block_on(&runtime, async {
        let mut tasks = Vec::new();
        let recent = Rc::new(RefCell::new(Recent::default()));
        for i in 0..options.subscribers {
            let ready = subscribe(&url, token.as_deref()).await.with_context(|| format!("subscriber {i}"))?;
            tasks.push(tokio::task::spawn_local(watch(ready, Rc::clone(&tally), Rc::clone(&recent))));
        }
        let zipf = Zipf::new(options.accounts as f64, options.alpha).map_err(|e| anyhow!("{e}"))?;
        for i in 0..options.connections {
            let ws = connect(&url, token.as_deref()).await.with_context(|| format!("connection {i}"))?;
            let rng = SmallRng::seed_from_u64(i as u64 + 1);
            let interval = options.rate.map(|r| Duration::from_secs_f64(options.connections as f64 / r));
            let task = load(ws, options.pipeline, interval, zipf, rng, Rc::clone(&tally));
            tasks.push(tokio::task::spawn_local(task));
        }
        let bar = progress_bar(progress, &options);
        tokio::time::sleep(Duration::from_secs_f64(options.warmup)).await;
        tally.borrow_mut().measuring = true;
        let (started, cpu_before) = (Instant::now(), target.cpu_seconds());
        let window = Duration::from_secs_f64(options.seconds);
        while started.elapsed() < window {
            tokio::time::sleep(Duration::from_millis(200)).await;
            let committed = tally.borrow().committed;
            bar.set_position(started.elapsed().as_millis().min(window.as_millis()) as u64);
            bar.set_message(format!("{:.0} tx/s", committed as f64 / started.elapsed().as_secs_f64()));
            if let Some(e) = tally.borrow().error.clone() {
                bail!("{e}");
            }
        }
        let elapsed = started.elapsed();
        {
            let mut t = tally.borrow_mut();
            t.measuring = false;
            t.done = true;
        }
        let cpu = cpu_before.zip(target.cpu_seconds()).map(|(a, b)| (b - a) / elapsed.as_secs_f64());
        bar.finish_and_clear();
        for t in tasks {
            t.abort();
        }
        Ok::<_, anyhow::Error>((cpu, elapsed))
    })?;
    let t = tally.borrow();
    let ms = |h: &Histogram<u64>, q: f64| h.value_at_quantile(q) as f64 / 1000.0;
    let deltas = t.delta_updates > 0;
    Ok(Report {
        server: target.url.clone(),
        committed: t.committed,
        failed: t.failed,
        tps: t.committed as f64 / elapsed.as_secs_f64(),
        reducer_p50_ms: ms(&t.reducer_micros, 0.5),
        reducer_p99_ms: ms(&t.reducer_micros, 0.99),
        delta_updates: t.delta_updates,
        delta_updates_per_s: t.delta_updates as f64 / elapsed.as_secs_f64(),
        delta_bytes: t.delta_bytes,
        delta_bytes_per_s: t.delta_bytes as f64 / elapsed.as_secs_f64(),
        delta_p50_ms: deltas.then(|| ms(&t.delta_micros, 0.5)),
        delta_p99_ms: deltas.then(|| ms(&t.delta_micros, 0.99)),
        server_cpu_cores: cpu,
        server_peak_rss_bytes: target.peak_rss(),
        options,
    })
}

/// Publishes the bank as the benchmark's database (replacing it) and seeds its accounts; the
/// token of the identity that owns it.
fn prepare(server: &str, options: &Options) -> Result<String> {
    let (_, token) = Http::new(server, None).new_identity()?;
    let http = Http::new(server, Some(token.clone()));
    http.publish(&options.database, crate::demo::BANK_WASM, true)
        .with_context(|| format!("publishing the bank as {}", options.database))?;
    let mut first = 1;
    while first <= options.accounts {
        let n = SEED_CHUNK.min(options.accounts - first + 1);
        http.call(&options.database, "seed_range", &serde_json::json!([first, n]))?;
        first += n;
    }
    Ok(token)
}

type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A MessagePack connection, past its IdentityToken.
async fn connect(url: &str, token: Option<&str>) -> Result<Socket> {
    let mut request = url.into_client_request()?;
    let headers = request.headers_mut();
    headers.insert("Sec-WebSocket-Protocol", Encoding::MessagePack.protocol().parse()?);
    if let Some(token) = token {
        headers.insert("Authorization", format!("Bearer {token}").parse()?);
    }
    // TCP_NODELAY, as a latency-minded client sets it. tungstenite zeroes the free part of
    // its read buffer before every read: 128 KiB by default, a sixth of the generator's time
    // for frames of a few KiB.
    let config = WebSocketConfig::default().read_buffer_size(READ_BUFFER);
    let (mut ws, _) = tokio_tungstenite::connect_async_with_config(request, Some(config), true).await?;
    match next(&mut ws).await? {
        ServerMessage::IdentityToken { .. } => Ok(ws),
        other => bail!("expected IdentityToken, got {other:?}"),
    }
}

/// The next server message.
async fn next(ws: &mut Socket) -> Result<ServerMessage> {
    Encoding::MessagePack.decode(&next_frame(ws).await?).map_err(|e| anyhow!(e))
}

/// The next binary frame's bytes.
async fn next_frame(ws: &mut Socket) -> Result<tokio_tungstenite::tungstenite::Bytes> {
    loop {
        match ws.next().await.ok_or_else(|| anyhow!("the server closed the connection"))?? {
            Message::Binary(b) => return Ok(b),
            Message::Close(c) => bail!("the server closed the connection: {c:?}"),
            _ => continue,
        }
    }
}

/// A dashboard client, subscribed and its initial rows received.
async fn subscribe(url: &str, token: Option<&str>) -> Result<Socket> {
    let mut ws = connect(url, token).await?;
    let queries = DASHBOARD.iter().map(|q| q.to_string()).collect();
    let subscribe = ClientMessage::Subscribe { request_id: 1, queries };
    ws.send(Message::Binary(Encoding::MessagePack.encode(&subscribe).into())).await?;
    loop {
        match next(&mut ws).await? {
            ServerMessage::SubscribeApplied { .. } => return Ok(ws),
            ServerMessage::SubscriptionError { error, .. } => bail!("subscribing: {error}"),
            _ => continue,
        }
    }
}

/// Records how long each transaction's update took to arrive.
async fn watch(mut ws: Socket, tally: Shared, recent: Rc<RefCell<Recent>>) {
    let mut stamps = Vec::new();
    loop {
        stamps.clear();
        let message =
            next_frame(&mut ws).await.and_then(|b| recent.borrow_mut().read(&b, &mut stamps).map(|()| b.len()));
        let mut t = tally.borrow_mut();
        match message {
            Ok(bytes) if t.measuring => {
                t.delta_bytes += bytes as u64;
                let now = crate::demo::now_micros();
                for stamp in &stamps {
                    t.delta_micros.saturating_record(now.saturating_sub(*stamp).max(1));
                    t.delta_updates += 1;
                }
            }
            Ok(_) => {}
            Err(e) => {
                if !t.done {
                    t.error.get_or_insert(format!("a subscriber's connection ended: {e:#}"));
                }
                return;
            }
        }
    }
}

/// Keeps up to `pipeline` transfers in flight on one connection, sending as fast as results
/// come back or, with an `interval`, one call per interval (an offered load).
async fn load(
    mut ws: Socket,
    pipeline: usize,
    interval: Option<Duration>,
    zipf: Zipf<f64>,
    mut rng: SmallRng,
    tally: Shared,
) {
    let mut sent: HashMap<u64, (Instant, bool)> = HashMap::new();
    let mut next_id = 0u64;
    let mut due = tokio::time::Instant::now();
    let outcome: Result<()> = async {
        loop {
            // Send what is due, up to the window: frames are fed, then flushed once.
            while sent.len() < pipeline && interval.is_none_or(|_| due <= tokio::time::Instant::now()) {
                let from = zipf.sample(&mut rng) as u64;
                let mut to = zipf.sample(&mut rng) as u64;
                while to == from {
                    to = zipf.sample(&mut rng) as u64;
                }
                let args = serde_json::json!([from, to, rng.random_range(1..=10)]);
                let call = ClientMessage::CallReducer { request_id: next_id, reducer: "transfer".into(), args };
                ws.feed(Message::Binary(Encoding::MessagePack.encode(&call).into())).await?;
                sent.insert(next_id, (Instant::now(), tally.borrow().measuring));
                next_id += 1;
                if let Some(every) = interval {
                    due += every;
                }
            }
            ws.flush().await?;
            let paced = interval.is_some() && sent.len() < pipeline;
            let message = tokio::select! {
                m = next(&mut ws) => m?,
                () = tokio::time::sleep_until(due), if paced => continue,
            };
            if let ServerMessage::ReducerResult { request_id, status, .. } = message {
                let (at, counted) = sent.remove(&request_id).ok_or_else(|| anyhow!("an unknown request id"))?;
                let mut t = tally.borrow_mut();
                if counted && t.measuring {
                    t.reducer_micros.saturating_record(at.elapsed().as_micros().max(1) as u64);
                    match status {
                        Status::Committed => t.committed += 1,
                        Status::Failed => t.failed += 1,
                    }
                }
            }
        }
    }
    .await;
    if let Err(e) = outcome {
        let mut t = tally.borrow_mut();
        if !t.done {
            t.error.get_or_insert(format!("a load connection ended: {e}"));
        }
    }
}

fn progress_bar(show: bool, options: &Options) -> indicatif::ProgressBar {
    if !show {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new((options.seconds * 1000.0) as u64);
    let style = indicatif::ProgressStyle::with_template("{bar:40} {elapsed}/{duration} {msg}").expect("template");
    bar.set_style(style);
    bar
}

/// The report as a table.
pub fn print(report: &Report) {
    let o = &report.options;
    let opt = |v: Option<f64>, unit: &str| v.map_or("n/a".to_string(), |v| format!("{v:.2} {unit}"));
    let rows = [
        ("server", report.server.clone()),
        (
            "workload",
            format!(
                "{} accounts, alpha {}, {} connections × {} in flight{}, {} subscribers, {} s",
                o.accounts,
                o.alpha,
                o.connections,
                o.pipeline,
                o.rate.map_or(String::new(), |r| format!(" at {r} calls/s")),
                o.subscribers,
                o.seconds
            ),
        ),
        ("committed", format!("{} ({} refused for funds)", report.committed, report.failed)),
        ("throughput", format!("{:.0} tx/s", report.tps)),
        ("reducer latency p50 / p99", format!("{:.2} / {:.2} ms", report.reducer_p50_ms, report.reducer_p99_ms)),
        (
            "commit-to-subscriber p50 / p99",
            match (report.delta_p50_ms, report.delta_p99_ms) {
                (Some(a), Some(b)) => format!(
                    "{a:.2} / {b:.2} ms over {} updates ({:.0}/s)",
                    report.delta_updates, report.delta_updates_per_s
                ),
                _ => "n/a (no subscribers)".to_string(),
            },
        ),
        (
            "update bytes received",
            format!(
                "{:.1} MB/s, {:.0} per update",
                report.delta_bytes_per_s / 1e6,
                report.delta_bytes as f64 / report.delta_updates.max(1) as f64
            ),
        ),
        ("server CPU", opt(report.server_cpu_cores, "cores")),
        ("server peak RSS", opt(report.server_peak_rss_bytes.map(|b| b as f64 / (1 << 20) as f64), "MiB")),
    ];
    let width = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    for (k, v) in rows {
        println!("{k:<width$}  {v}");
    }
}
