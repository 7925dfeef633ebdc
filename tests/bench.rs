//! `sluice bench` as a user runs it. `transfer`: against a given server, whose books it must
//! leave balanced (every transfer moves money, none makes or loses it) with as many committed
//! transfers in the log as it reports at least; and with a server of its own, whose CPU and
//! memory it reports. `queries`: every class and size asked for, each beside its three
//! baselines, and the plot. `scaling`: a dataflow per distinct subscription at each count.

mod common;

use serde_json::Value;
use sluice_client::{Http, Value as Wire};
use std::sync::{Mutex, MutexGuard};

/// The benchmarks run one at a time: the transfer workload measures a server that the others
/// would otherwise starve of CPU on a two-core machine.
fn alone() -> MutexGuard<'static, ()> {
    static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
    ONE_AT_A_TIME.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// `sluice ARGS`, which must succeed: the JSON it printed.
fn sluice_json(args: &[&str]) -> Value {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sluice")).args(args).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// `sluice ARGS`, which must fail: what it said on stderr.
fn sluice_refused(args: &[&str]) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sluice")).args(args).output().unwrap();
    assert!(!out.status.success(), "{args:?} succeeded");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn bench(args: &[&str]) -> Value {
    let fixed = ["bench", "transfer", "--json", "--seconds", "1", "--warmup", "0.3", "--connections", "2"];
    sluice_json(&[&fixed[..], args].concat())
}

#[test]
fn the_transfer_benchmark_measures_a_given_server_and_its_own() {
    let _alone = alone();
    let data = std::env::temp_dir().join(format!("sluice-bench-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&data);
    let (mut child, base) = common::start_server(&data);
    let report = bench(&["--server", &base, "--accounts", "3000", "--alpha", "1.5", "--subscribers", "3"]);
    let committed = report["committed"].as_u64().unwrap();
    assert!(committed > 100 && report["tps"].as_f64().unwrap() > 0.0, "{report}");
    assert!(report["reducer_p50_ms"].as_f64() <= report["reducer_p99_ms"].as_f64(), "{report}");
    assert!(report["delta_updates"].as_u64().unwrap() > 0 && report["delta_p99_ms"].is_number(), "{report}");
    // Each transaction update names at least its six fields: 60 bytes or more.
    let (updates, bytes) = (report["delta_updates"].as_u64().unwrap(), report["delta_bytes"].as_u64().unwrap());
    assert!(bytes >= 60 * updates, "{report}");
    assert!(report["server_cpu_cores"].is_null(), "a given server's CPU is not the benchmark's to read");

    let http = Http::new(&base, None);
    let books = http.query("bench", "SELECT COUNT(*), SUM(balance) FROM account", None).unwrap();
    assert_eq!(books.rows, vec![vec![Wire::Int(3000), Wire::Int(3_000_000)]], "money is neither made nor lost");
    let transfers = http.query("bench", "SELECT COUNT(*) FROM account WHERE balance <> 1000", None).unwrap();
    assert!(transfers.rows[0][0] != Wire::Int(0), "transfers changed balances");
    // The log comes a page at a time.
    let (mut logged, mut after) = (0, 0);
    loop {
        let page = http.logs("bench", after, 1000).unwrap();
        let Some(last) = page.last() else { break };
        after = last["offset"].as_u64().unwrap();
        logged += page.iter().filter(|t| t["reducer"] == "transfer").count();
    }
    assert!(logged as u64 >= committed, "{logged} transfers logged, {committed} reported");
    child.kill().unwrap();
    child.wait().unwrap();
    let _ = std::fs::remove_dir_all(&data);

    let own = bench(&["--accounts", "1000", "--pipeline", "4"]);
    assert!(own["committed"].as_u64().unwrap() > 0, "{own}");
    assert!(own["server_cpu_cores"].as_f64().unwrap() > 0.0, "{own}");
    assert!(own["server_peak_rss_bytes"].as_u64().unwrap() > 1 << 20, "{own}");
    assert!(own["delta_p99_ms"].is_null(), "no subscribers, no delta latency");
}

#[test]
fn the_query_benchmark_measures_each_class_beside_its_baselines_and_plots_them() {
    let _alone = alone();
    let plot = std::env::temp_dir().join(format!("sluice-queries-{}.svg", std::process::id()));
    let plot_path = plot.to_str().unwrap();
    let report = sluice_json(&[
        "bench",
        "queries",
        "--json",
        "--rows",
        "500,2000",
        "--classes",
        "filter,join3,exists,top10",
        "--transactions",
        "30",
        "--budget",
        "0.01",
        "--plot",
        plot_path,
    ]);
    let results = report["results"].as_array().unwrap();
    let measured: Vec<(&str, u64)> =
        results.iter().map(|m| (m["class"].as_str().unwrap(), m["rows"].as_u64().unwrap())).collect();
    let expected: Vec<(&str, u64)> =
        [500, 2000].into_iter().flat_map(|n| ["filter", "join3", "exists", "top10"].map(|c| (c, n))).collect();
    assert_eq!(measured, expected);
    for m in results {
        for system in ["sluice", "handwritten", "recompute", "sqlite"] {
            let s = &m[system];
            assert!(s["runs"].as_u64().unwrap() >= 1, "{m}");
            assert!(s["median_us"].as_f64().unwrap() > 0.0, "{m}");
            assert!(s["median_us"].as_f64() <= s["p99_us"].as_f64(), "{m}");
        }
        assert_eq!(m["sluice"]["runs"], 30, "{m}");
    }
    let svg = std::fs::read_to_string(&plot).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("join3") && svg.contains("SQLite polling"), "{svg:.200}");
    let _ = std::fs::remove_file(&plot);

    // A saved report is printed and plotted again without measuring.
    let saved = plot.with_extension("json");
    std::fs::write(&saved, serde_json::to_vec(&report).unwrap()).unwrap();
    let replayed = sluice_json(&["bench", "queries", "--json", "--plot", plot_path, "--from", saved.to_str().unwrap()]);
    assert_eq!(replayed["results"], report["results"]);
    assert!(std::fs::read_to_string(&plot).unwrap().contains("exists"));
    let _ = std::fs::remove_file(&plot);
    let _ = std::fs::remove_file(&saved);

    let err = sluice_refused(&["bench", "queries", "--rows", "100", "--classes", "filter,nope"]);
    assert!(err.contains("unknown query class \"nope\"") && err.contains("join3"), "{err}");
    let err = sluice_refused(&["bench", "queries", "--rows", "100", "--budget", "inf"]);
    assert!(err.contains("--budget"), "{err}");

    // Batched: 40 transactions, 10 per step, timed per transaction (4 samples each).
    let batched = sluice_json(&[
        "bench",
        "queries",
        "--json",
        "--rows",
        "500",
        "--classes",
        "top10",
        "--transactions",
        "40",
        "--batch",
        "10",
        "--budget",
        "0.01",
    ]);
    let m = &batched["results"][0];
    assert_eq!((m["sluice"]["runs"].as_u64(), m["handwritten"]["runs"].as_u64()), (Some(4), Some(4)), "{m}");
    assert_eq!(batched["options"]["batch"], 10);
    let err = sluice_refused(&["bench", "queries", "--rows", "100", "--transactions", "5", "--batch", "10"]);
    assert!(err.contains("--batch"), "{err}");
}

#[test]
fn the_scaling_benchmark_adds_distinct_subscriptions_each_with_its_own_dataflow() {
    let _alone = alone();
    let plot = std::env::temp_dir().join(format!("sluice-scaling-{}.svg", std::process::id()));
    let report = sluice_json(&[
        "bench",
        "scaling",
        "--json",
        "--rows",
        "1000",
        "--counts",
        "1,5,20",
        "--transactions",
        "20",
        "--plot",
        plot.to_str().unwrap(),
    ]);
    let points = report["points"].as_array().unwrap();
    let counts: Vec<u64> = points.iter().map(|p| p["subscriptions"].as_u64().unwrap()).collect();
    assert_eq!(counts, vec![1, 5, 20]);
    for p in points {
        assert_eq!(p["dataflows"], p["subscriptions"], "distinct queries share nothing: {p}");
        assert_eq!(p["transaction"]["runs"], 20, "{p}");
        assert!(p["transaction"]["median_us"].as_f64().unwrap() > 0.0, "{p}");
        assert!(p["subscribe_us"].as_f64().unwrap() > 0.0, "{p}");
    }
    let svg = std::fs::read_to_string(&plot).unwrap();
    assert!(svg.contains("distinct live subscriptions") && svg.contains("p99"), "{svg:.200}");
    let _ = std::fs::remove_file(&plot);
    let err = sluice_refused(&["bench", "scaling", "--counts", "10,5"]);
    assert!(err.contains("ascending"), "{err}");
}
