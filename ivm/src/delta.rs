//! The engine's inputs and outputs: committed transactions in, per-query deltas out.

use foldhash::fast::FixedState;
use serde::{Deserialize, Serialize};
use sluice_planner::Row;
pub use sluice_planner::TableChange;
use std::hash::BuildHasher;

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

/// Merges `(row, offset, diff)` updates into each offset's consolidated changes, offsets
/// ascending. Within an offset the rows come in an arbitrary but fixed order: sorted by a
/// hash of their bytes, which costs a word comparison where sorting by the rows would
/// compare rows (most of the time of turning a query's output into its deltas).
pub fn consolidate_per_offset(updates: Vec<(Row, Offset, Diff)>) -> Vec<(Offset, Vec<(Row, Diff)>)> {
    let hasher = FixedState::with_seed(0);
    let keyed = updates.into_iter().map(|(row, t, d)| (t, hasher.hash_one(row.as_bytes()), row, d)).collect();
    consolidate_hashed(keyed)
}

/// `consolidate_per_offset` on updates with their rows' hashes: equal rows are in one run of
/// equal (offset, hash) once sorted, and a run's distinct rows (hashes that collide) are kept
/// apart by comparing them.
fn consolidate_hashed(mut keyed: Vec<(Offset, u64, Row, Diff)>) -> Vec<(Offset, Vec<(Row, Diff)>)> {
    keyed.sort_unstable_by_key(|u| (u.0, u.1));
    let mut out: Vec<(Offset, Vec<(Row, Diff)>)> = Vec::new();
    // Where the current run of equal hashes starts in its offset's changes.
    let (mut run, mut run_hash) = (0, 0);
    for (t, h, row, d) in keyed {
        let changes = match out.last_mut() {
            Some((last, changes)) if *last == t => changes,
            _ => {
                out.push((t, Vec::new()));
                run_hash = !h;
                &mut out.last_mut().expect("just pushed").1
            }
        };
        if h != run_hash {
            (run, run_hash) = (changes.len(), h);
        }
        match changes[run..].iter_mut().find(|(r, _)| *r == row) {
            Some((_, acc)) => *acc += d,
            None => changes.push((row, d)),
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

    /// Each offset's changes sorted by row, to compare with what is expected.
    fn sorted(mut per_offset: Vec<(Offset, Vec<(Row, Diff)>)>) -> Vec<(Offset, Vec<(Row, Diff)>)> {
        for (_, changes) in &mut per_offset {
            changes.sort();
        }
        per_offset
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
        let got = consolidate_per_offset(updates.clone());
        // Offset 5's row 2 cancels; offset 6 cancels entirely and is absent.
        let want = vec![(4, vec![(row(1), 2), (row(3), 2)]), (5, vec![(row(3), -1)])];
        assert_eq!(sorted(got), want);
        assert_eq!(consolidate_per_offset(vec![(row(1), 1, 1), (row(1), 1, -1)]), vec![]);
        // Every hash colliding: rows are still told apart and merged only with their equals.
        let collide = updates.into_iter().map(|(r, t, d)| (t, 7, r, d)).collect();
        assert_eq!(sorted(consolidate_hashed(collide)), want);
        let two = vec![(1, 3, row(1), 1), (1, 4, row(5), 1), (1, 3, row(2), 1), (1, 3, row(1), 1), (2, 3, row(2), -1)];
        let want = vec![(1, vec![(row(1), 2), (row(2), 1), (row(5), 1)]), (2, vec![(row(2), -1)])];
        assert_eq!(sorted(consolidate_hashed(two)), want);
    }

    #[test]
    fn an_offsets_rows_come_in_the_same_order_every_time() {
        let updates: Vec<(Row, Offset, Diff)> = (0..500).map(|i| (row(i * 7919 % 1000), 1, 1)).collect();
        let first = consolidate_per_offset(updates.clone());
        assert_eq!(first[0].1.len(), 500);
        let mut reversed = updates;
        reversed.reverse();
        assert_eq!(consolidate_per_offset(reversed), first);
    }

    #[test]
    fn split_repeats_rows_by_multiplicity() {
        let (inserts, deletes) = split(vec![(row(1), 2), (row(2), -1), (row(3), 1), (row(4), -3)]);
        assert_eq!(inserts, vec![row(1), row(1), row(3)]);
        assert_eq!(deletes, vec![row(2), row(4), row(4), row(4)]);
    }
}
