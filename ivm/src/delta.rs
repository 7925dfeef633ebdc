//! The engine's inputs and outputs: committed transactions in, per-query deltas out.

use serde::{Deserialize, Serialize};
use sluice_planner::Row;
pub use sluice_planner::TableChange;

/// A transaction's offset in the commit stream; also the dataflow timestamp.
pub type Offset = u64;
/// Multiplicity change of a row.
pub type Diff = isize;

/// One committed transaction.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transaction {
    pub offset: Offset,
    pub changes: Vec<TableChange>,
}

/// Identifies one maintained query (one dataflow, shared by identical subscriptions).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct QueryId(pub u64);

/// The rows that entered and left one query's result in one transaction, consolidated:
/// a row appears in `inserts` (or `deletes`) as many times as its multiplicity changed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueryDelta {
    pub query: QueryId,
    pub offset: Offset,
    pub inserts: Vec<Row>,
    pub deletes: Vec<Row>,
}

/// Sorts and merges `(row, diff)` pairs, dropping those that cancel.
pub fn consolidate(updates: &mut Vec<(Row, Diff)>) {
    updates.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    let mut out: Vec<(Row, Diff)> = Vec::with_capacity(updates.len());
    for (row, d) in updates.drain(..) {
        match out.last_mut() {
            Some((r, acc)) if *r == row => *acc += d,
            _ => out.push((row, d)),
        }
    }
    out.retain(|(_, d)| *d != 0);
    *updates = out;
}

/// Sorts and merges `(row, offset, diff)` updates into each offset's consolidated changes,
/// offsets ascending.
pub fn consolidate_per_offset(mut updates: Vec<(Row, Offset, Diff)>) -> Vec<(Offset, Vec<(Row, Diff)>)> {
    updates.sort_unstable_by(|a, b| a.1.cmp(&b.1).then_with(|| a.0.cmp(&b.0)));
    let mut out: Vec<(Offset, Vec<(Row, Diff)>)> = Vec::new();
    for (row, t, d) in updates {
        match out.last_mut() {
            Some((last, changes)) if *last == t => match changes.last_mut() {
                Some((r, acc)) if *r == row => *acc += d,
                _ => changes.push((row, d)),
            },
            _ => out.push((t, vec![(row, d)])),
        }
    }
    for (_, changes) in &mut out {
        changes.retain(|(_, d)| *d != 0);
    }
    out.retain(|(_, changes)| !changes.is_empty());
    out
}

/// Splits consolidated updates into inserted and deleted rows, repeating by multiplicity.
pub fn split(updates: Vec<(Row, Diff)>) -> (Vec<Row>, Vec<Row>) {
    let mut inserts = Vec::new();
    let mut deletes = Vec::new();
    for (row, d) in updates {
        let target = if d > 0 { &mut inserts } else { &mut deletes };
        // The row itself goes in last; only repeats are copies.
        for _ in 1..d.unsigned_abs() {
            target.push(row.clone());
        }
        target.push(row);
    }
    (inserts, deletes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_planner::Value;

    fn row(x: i64) -> Row {
        Row::new(vec![Value::Int(x)])
    }

    #[test]
    fn updates_consolidate_per_offset_in_offset_order() {
        let updates = vec![
            (row(2), 5, 1),
            (row(1), 4, 1),
            (row(2), 5, -1),
            (row(3), 4, 2),
            (row(1), 4, 1),
            (row(9), 6, 1),
            (row(9), 6, -1),
            (row(3), 5, -1),
        ];
        let got = consolidate_per_offset(updates);
        // Offset 5's row 2 cancels; offset 6 cancels entirely and is absent.
        assert_eq!(got, vec![(4, vec![(row(1), 2), (row(3), 2)]), (5, vec![(row(3), -1)])]);
        assert_eq!(consolidate_per_offset(vec![(row(1), 1, 1), (row(1), 1, -1)]), vec![]);
    }

    #[test]
    fn split_repeats_rows_by_multiplicity() {
        let (inserts, deletes) = split(vec![(row(1), 2), (row(2), -1), (row(3), 1), (row(4), -3)]);
        assert_eq!(inserts, vec![row(1), row(1), row(3)]);
        assert_eq!(deletes, vec![row(2), row(4), row(4), row(4)]);
    }
}
