//! Parsing sqllogictest files: `statement ok|error`, `query <types> <sort> [label]` with
//! result values or `N values hashing to <md5>`, `hash-threshold`, `skipif` / `onlyif`, `halt`.

use anyhow::{bail, Result};

/// How a query's result rows are compared.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sort {
    None,
    Rows,
    Values,
}

/// A query's expected result.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Expected {
    /// Result lines (one value per line, or one row per line with space-separated values).
    Lines(Vec<String>),
    Hash {
        count: usize,
        md5: String,
    },
}

/// A condition on the engine running a record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Condition {
    SkipIf(String),
    OnlyIf(String),
}

/// What a record is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Kind {
    Statement { ok: bool },
    Query { types: String, sort: Sort, label: Option<String>, expected: Expected },
    HashThreshold(usize),
    Halt,
}

/// One record of a file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// 1-based line of the record's first line (after conditions).
    pub line: usize,
    pub conditions: Vec<Condition>,
    pub sql: String,
    pub kind: Kind,
}

impl Record {
    /// Whether an engine named `engine` runs this record.
    pub fn applies_to(&self, engine: &str) -> bool {
        self.conditions.iter().all(|c| match c {
            Condition::SkipIf(e) => !e.eq_ignore_ascii_case(engine),
            Condition::OnlyIf(e) => e.eq_ignore_ascii_case(engine),
        })
    }
}

/// Parses a whole file.
pub fn parse_file(text: &str) -> Result<Vec<Record>> {
    let lines: Vec<&str> = text.lines().collect();
    let mut i = 0;
    let mut out = Vec::new();
    let mut conditions = Vec::new();
    while i < lines.len() {
        let line = lines[i].trim_end();
        let words: Vec<&str> = line.split_whitespace().collect();
        if words.is_empty() || words[0].starts_with('#') {
            i += 1;
            continue;
        }
        let start = i + 1;
        i += 1;
        match words[0] {
            "skipif" | "onlyif" => {
                let Some(engine) = words.get(1) else { bail!("line {start}: {} needs an engine name", words[0]) };
                let c = if words[0] == "skipif" {
                    Condition::SkipIf(engine.to_string())
                } else {
                    Condition::OnlyIf(engine.to_string())
                };
                conditions.push(c);
                continue;
            }
            "hash-threshold" => {
                let n = words.get(1).and_then(|w| w.parse().ok());
                let Some(n) = n else { bail!("line {start}: hash-threshold needs a number") };
                out.push(Record {
                    line: start,
                    conditions: std::mem::take(&mut conditions),
                    sql: String::new(),
                    kind: Kind::HashThreshold(n),
                });
            }
            "halt" => {
                out.push(Record {
                    line: start,
                    conditions: std::mem::take(&mut conditions),
                    sql: String::new(),
                    kind: Kind::Halt,
                });
            }
            "statement" => {
                let ok = match words.get(1) {
                    Some(&"ok") | Some(&"count") => true,
                    Some(&"error") => false,
                    _ => bail!("line {start}: expected `statement ok` or `statement error`"),
                };
                let (sql, next) = take_sql(&lines, i);
                i = next;
                out.push(Record {
                    line: start,
                    conditions: std::mem::take(&mut conditions),
                    sql,
                    kind: Kind::Statement { ok },
                });
            }
            "query" => {
                let Some(types) = words.get(1) else { bail!("line {start}: query needs column types") };
                if *types == "error" {
                    let (sql, next) = take_sql(&lines, i);
                    i = skip_results(&lines, next);
                    out.push(Record {
                        line: start,
                        conditions: std::mem::take(&mut conditions),
                        sql,
                        kind: Kind::Statement { ok: false },
                    });
                    continue;
                }
                let sort = match words.get(2) {
                    None | Some(&"nosort") => Sort::None,
                    Some(&"rowsort") => Sort::Rows,
                    Some(&"valuesort") => Sort::Values,
                    Some(other) => bail!("line {start}: unknown sort mode {other}"),
                };
                let label = words.get(3).map(|s| s.to_string());
                let (sql, next) = take_sql(&lines, i);
                i = next;
                let mut results = Vec::new();
                if i < lines.len() && lines[i].trim() == "----" {
                    i += 1;
                    while i < lines.len() && !lines[i].trim().is_empty() {
                        results.push(lines[i].trim_end().to_string());
                        i += 1;
                    }
                }
                let expected = match parse_hash(&results) {
                    Some((count, md5)) => Expected::Hash { count, md5 },
                    None => Expected::Lines(results),
                };
                let kind = Kind::Query { types: types.to_string(), sort, label, expected };
                out.push(Record { line: start, conditions: std::mem::take(&mut conditions), sql, kind });
            }
            other => bail!("line {start}: unknown record type {other}"),
        }
    }
    Ok(out)
}

/// SQL lines from `i` up to a blank line or `----`; returns the SQL and the next line index.
fn take_sql(lines: &[&str], mut i: usize) -> (String, usize) {
    let mut sql = Vec::new();
    while i < lines.len() && !lines[i].trim().is_empty() && lines[i].trim() != "----" {
        sql.push(lines[i]);
        i += 1;
    }
    (sql.join("\n"), i)
}

fn skip_results(lines: &[&str], mut i: usize) -> usize {
    if i < lines.len() && lines[i].trim() == "----" {
        while i < lines.len() && !lines[i].trim().is_empty() {
            i += 1;
        }
    }
    i
}

/// Recognises `N values hashing to <md5>`.
fn parse_hash(results: &[String]) -> Option<(usize, String)> {
    let [line] = results else { return None };
    let w: Vec<&str> = line.split_whitespace().collect();
    match w.as_slice() {
        [n, "values", "hashing", "to", md5] => Some((n.parse().ok()?, md5.to_string())),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_records() {
        let text = "hash-threshold 8\n\nstatement ok\nCREATE TABLE t(a INTEGER)\n\nskipif mysql\nquery I rowsort label-1\nSELECT a\nFROM t\n----\n1\n2\n\nquery I nosort\nSELECT 1\n----\n30 values hashing to abc\n\nhalt\n";
        let r = parse_file(text).unwrap();
        assert_eq!(r.len(), 5);
        assert_eq!(r[0].kind, Kind::HashThreshold(8));
        assert_eq!(r[1].kind, Kind::Statement { ok: true });
        assert_eq!(r[2].sql, "SELECT a\nFROM t");
        assert_eq!(r[2].conditions, vec![Condition::SkipIf("mysql".into())]);
        assert!(
            matches!(&r[2].kind, Kind::Query { sort: Sort::Rows, label: Some(l), expected: Expected::Lines(v), .. } if l == "label-1" && v.len() == 2)
        );
        assert!(matches!(&r[3].kind, Kind::Query { expected: Expected::Hash { count: 30, .. }, .. }));
        assert_eq!(r[4].kind, Kind::Halt);
        assert!(r[2].applies_to("sluice"));
        assert!(!r[2].applies_to("mysql"));
    }

    #[test]
    fn rejects_unknown_records() {
        assert!(parse_file("frobnicate\n").is_err());
    }
}
