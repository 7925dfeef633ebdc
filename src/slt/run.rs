//! Running sqllogictest records against a `Database`.
//!
//! `oneshot` evaluates each query where it stands. `incremental` subscribes each query as soon
//! as the tables it reads exist, keeps a client-side cache of its rows from the initial rows
//! and every delta, and where the query stands checks that cache against a from-scratch
//! evaluation and the expected result.

use super::format::{format_rows, hash_values};
use super::parse::{parse_file, Expected, Kind, Record, Sort};
use crate::db::{Database, Outcome};
use anyhow::Result;
use sluice_ivm::{QueryDelta, QueryId, SubscriptionId};
use sluice_planner::{QueryPlan, Row};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

/// The engine name `skipif` / `onlyif` match.
pub const ENGINE_NAME: &str = "sluice";

/// How queries are evaluated.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    Oneshot,
    Incremental,
}

/// One failed record.
#[derive(Debug)]
pub struct Failure {
    pub file: String,
    pub line: usize,
    pub sql: String,
    pub message: String,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let sql: String = self.sql.split_whitespace().collect::<Vec<_>>().join(" ");
        write!(f, "{}:{}: {} -- {}", self.file, self.line, sql, self.message)
    }
}

/// Outcome of running files.
#[derive(Debug, Default)]
pub struct Summary {
    pub passed: usize,
    pub failures: Vec<Failure>,
}

/// A live subscription standing for a query record further down the file.
struct Live {
    sub: SubscriptionId,
    query: QueryId,
    plan: QueryPlan,
    /// The client's cache: rows with multiplicities, from initial rows and deltas.
    cache: BTreeMap<Row, i64>,
}

struct Runner<'a> {
    file: &'a str,
    mode: Mode,
    db: Database,
    records: Vec<Record>,
    hash_threshold: usize,
    labels: HashMap<String, String>,
    live: HashMap<usize, Live>,
    /// Query records not yet subscribed.
    pending: Vec<usize>,
    summary: Summary,
}

/// Runs one file.
pub fn run_file(path: &Path, mode: Mode, workers: usize) -> Result<Summary> {
    let text = std::fs::read_to_string(path)?;
    let file = path.display().to_string();
    let records = parse_file(&text).map_err(|e| anyhow::anyhow!("{file}: {e}"))?;
    let mut r = Runner {
        file: &file,
        mode,
        db: Database::new(workers),
        records,
        hash_threshold: 0,
        labels: HashMap::new(),
        live: HashMap::new(),
        pending: Vec::new(),
        summary: Summary::default(),
    };
    r.run();
    Ok(r.summary)
}

impl Runner<'_> {
    fn run(&mut self) {
        let mut active: Vec<usize> = Vec::new();
        for (i, rec) in self.records.iter().enumerate() {
            if !rec.applies_to(ENGINE_NAME) {
                continue;
            }
            if rec.kind == Kind::Halt {
                break;
            }
            active.push(i);
        }
        if self.mode == Mode::Incremental {
            self.pending =
                active.iter().copied().filter(|&i| matches!(self.records[i].kind, Kind::Query { .. })).collect();
        }
        for i in active {
            let rec = self.records[i].clone();
            match &rec.kind {
                Kind::HashThreshold(n) => self.hash_threshold = *n,
                Kind::Halt => {}
                Kind::Statement { ok } => self.statement(i, &rec, *ok),
                Kind::Query { types, sort, label, expected } => {
                    self.query(i, &rec, types, *sort, label.as_deref(), expected)
                }
            }
        }
    }

    fn fail(&mut self, rec: &Record, message: String) {
        self.summary.failures.push(Failure {
            file: self.file.to_string(),
            line: rec.line,
            sql: rec.sql.clone(),
            message,
        });
    }

    fn statement(&mut self, i: usize, rec: &Record, ok: bool) {
        let ddl = self.before_statement(&rec.sql);
        let result = self.db.execute(&rec.sql);
        match (&result, ok) {
            (Ok(_), true) | (Err(_), false) => self.summary.passed += 1,
            (Ok(_), false) => self.fail(rec, "expected an error, statement succeeded".into()),
            (Err(e), true) => self.fail(rec, format!("statement failed: {e}")),
        }
        if let Ok(Outcome::Changed { deltas, .. }) = result {
            self.absorb(rec, deltas);
        }
        if ddl {
            self.subscribe_pending(i);
        }
    }

    /// Before DDL: subscriptions reading a table about to be dropped go back to pending.
    /// Returns whether the statement is DDL (so pending queries should be planned again).
    fn before_statement(&mut self, sql: &str) -> bool {
        let upper = sql.trim_start().to_ascii_uppercase();
        let is_ddl = upper.starts_with("CREATE") || upper.starts_with("DROP");
        if self.mode == Mode::Incremental && upper.starts_with("DROP") {
            let names: Vec<String> =
                upper.split_whitespace().map(|w| w.trim_end_matches(';').to_ascii_lowercase()).collect();
            let hit: Vec<usize> = self
                .live
                .iter()
                .filter(|(_, l)| l.plan.plan.tables().iter().any(|t| names.contains(&t.to_ascii_lowercase())))
                .map(|(i, _)| *i)
                .collect();
            for i in hit {
                let l = self.live.remove(&i).expect("live");
                let _ = self.db.unsubscribe(l.sub);
                self.pending.push(i);
            }
            self.pending.sort_unstable();
        }
        is_ddl
    }

    /// Subscribes every pending query after record `pos` whose tables now exist.
    fn subscribe_pending(&mut self, pos: usize) {
        let mut still = Vec::new();
        for i in std::mem::take(&mut self.pending) {
            if i <= pos {
                continue;
            }
            let subscribed = self.db.plan(&self.records[i].sql).ok().and_then(|plan| {
                let s = self.db.subscribe(&plan).ok()?;
                let mut cache = BTreeMap::new();
                for r in s.initial {
                    *cache.entry(r).or_insert(0) += 1;
                }
                Some(Live { sub: s.id, query: s.query, plan, cache })
            });
            match subscribed {
                Some(l) => {
                    self.live.insert(i, l);
                }
                None => still.push(i),
            }
        }
        self.pending = still;
    }

    fn absorb(&mut self, rec: &Record, deltas: Vec<QueryDelta>) {
        let mut problems = Vec::new();
        for d in deltas {
            for l in self.live.values_mut().filter(|l| l.query == d.query) {
                for r in &d.deletes {
                    let e = l.cache.entry(r.clone()).or_insert(0);
                    *e -= 1;
                    if *e < 0 {
                        problems.push(format!(
                            "delta at offset {} deletes a row the subscriber does not hold: {r:?}",
                            d.offset
                        ));
                    }
                    if *e == 0 {
                        l.cache.remove(r);
                    }
                }
                for r in &d.inserts {
                    *l.cache.entry(r.clone()).or_insert(0) += 1;
                }
            }
        }
        for p in problems {
            self.fail(rec, p);
        }
    }

    fn query(&mut self, i: usize, rec: &Record, types: &str, sort: Sort, label: Option<&str>, expected: &Expected) {
        let rows = match self.live.remove(&i) {
            Some(l) => {
                // The maintained cache must equal the current result, as a multiset.
                let current = match self.db.evaluate(&l.plan) {
                    Ok(r) => r,
                    Err(e) => return self.fail(rec, format!("evaluation failed: {e}")),
                };
                let _ = self.db.unsubscribe(l.sub);
                let mut fresh: BTreeMap<Row, i64> = BTreeMap::new();
                for r in &current {
                    *fresh.entry(r.clone()).or_insert(0) += 1;
                }
                if fresh != l.cache {
                    let msg = format!(
                        "maintained result differs from evaluation: maintained {:?}, evaluated {:?}",
                        l.cache, fresh
                    );
                    return self.fail(rec, msg);
                }
                current
            }
            None => match self.db.execute(&rec.sql) {
                Ok(Outcome::Rows { rows, .. }) => rows,
                Ok(_) => return self.fail(rec, "not a query".into()),
                Err(e) => return self.fail(rec, format!("query failed: {e}")),
            },
        };
        if let Some(first) = rows.first() {
            if first.len() != types.len() {
                return self.fail(rec, format!("expected {} columns, got {}", types.len(), first.len()));
            }
        }
        let values = format_rows(&rows, types, sort);
        let hash = hash_values(&values);
        if let Some(label) = label {
            if let Some(prev) = self.labels.get(label) {
                if *prev != hash {
                    return self.fail(rec, format!("result differs from earlier result labelled {label}"));
                }
            }
            self.labels.insert(label.to_string(), hash.clone());
        }
        let ok = match expected {
            Expected::Hash { count, md5 } => values.len() == *count && hash == *md5,
            Expected::Lines(lines) => {
                let want: Vec<&str> = lines.iter().flat_map(|l| l.split_whitespace()).collect();
                let got: Vec<&str> = values.iter().flat_map(|v| v.split_whitespace()).collect();
                want == got
            }
        };
        if ok {
            self.summary.passed += 1;
        } else {
            let want = match expected {
                Expected::Hash { count, md5 } => format!("{count} values hashing to {md5}"),
                Expected::Lines(l) => l.join(" | "),
            };
            let got = if self.hash_threshold > 0 && values.len() > self.hash_threshold {
                format!("{} values hashing to {hash}", values.len())
            } else {
                values.join(" ")
            };
            self.fail(rec, format!("expected [{want}] got [{got}]"));
        }
    }
}
