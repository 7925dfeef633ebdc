//! How the CLI prints query results: a psql-style table, or one JSON object per row with
//! typed values (numbers, booleans, null, text, bytes as hex).

use serde_json::Value as Json;
use sluice_client::{ColumnInfo, Row};

/// A row as a JSON object, column name to value.
pub fn row_json(columns: &[ColumnInfo], row: &Row) -> Json {
    Json::Object(columns.iter().zip(row).map(|(c, v)| (c.name.clone(), v.to_json())).collect())
}

/// Rows as a table, or as JSON lines with `json`.
pub fn print_rows(columns: &[ColumnInfo], rows: &[Row], json: bool) {
    if json {
        for r in rows {
            println!("{}", row_json(columns, r));
        }
        return;
    }
    let cells: Vec<Vec<String>> = rows.iter().map(|r| r.iter().map(|v| v.to_string()).collect()).collect();
    let widths: Vec<usize> = columns
        .iter()
        .enumerate()
        .map(|(i, c)| {
            cells.iter().map(|r| r.get(i).map_or(0, |s| s.chars().count())).max().unwrap_or(0).max(c.name.len())
        })
        .collect();
    let line = |vals: &[String]| {
        let padded: Vec<String> = vals.iter().zip(&widths).map(|(v, w)| format!(" {v:<w$} ")).collect();
        println!("{}", padded.join("|").trim_end());
    };
    line(&columns.iter().map(|c| c.name.clone()).collect::<Vec<_>>());
    println!("{}", widths.iter().map(|w| "-".repeat(w + 2)).collect::<Vec<_>>().join("+"));
    for c in &cells {
        line(c);
    }
}
