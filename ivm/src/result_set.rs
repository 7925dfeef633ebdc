//! A live query's current result (every output row with its multiplicity), kept so that a
//! later subscriber of the same dataflow gets its initial rows without the dataflow.
//!
//! Every transaction that changes the result adds its changes here, so this is on the path of
//! every commit. It is a few sorted runs of consolidated changes, merged as a log-structured
//! merge tree would, not a hash table: a transaction's changes land on random rows of the
//! result, and in a hash table of a large result each of them is a cache miss or two; here
//! they are sorted among themselves and then merged sequentially, each change moved a
//! logarithmic number of times.
//!
//! Each run is longer than twice all the runs after it together. So the later runs hold under
//! a third of the entries, and the first run's entries for rows no longer present are no more
//! than those (each is cancelled by one of them): what is held stays under three times the
//! rows present, however the result shrinks.

use crate::delta::Diff;
use sluice_planner::Row;
use std::cmp::Ordering;

/// Multiset of rows as sorted runs, oldest and longest first; each run is consolidated (a row
/// at most once, no zero multiplicity) and longer than twice the runs after it together.
#[derive(Default)]
pub struct ResultSet {
    runs: Vec<Vec<(Row, Diff)>>,
}

impl ResultSet {
    /// Adds changes (in any order, repeats allowed).
    pub fn add(&mut self, mut changes: Vec<(Row, Diff)>) {
        // The engine's changes come per offset in the order of their rows' hashes
        // (`consolidate_per_offset`), not sorted: this sorts them.
        changes.sort_by(|a, b| a.0.cmp(&b.0));
        consolidate_sorted(&mut changes);
        if changes.is_empty() {
            return;
        }
        self.runs.push(changes);
        while let Some(first) = self.first_too_short() {
            let mut merged = self.runs.pop().expect("a run after the first too short");
            while self.runs.len() > first {
                merged = merge(self.runs.pop().expect("a run"), merged);
            }
            if !merged.is_empty() {
                self.runs.push(merged);
            }
        }
    }

    /// The oldest run not longer than twice the runs after it, if one is.
    fn first_too_short(&self) -> Option<usize> {
        let mut after = 0;
        let mut first = None;
        for (i, run) in self.runs.iter().enumerate().rev() {
            if run.len() <= 2 * after {
                first = Some(i);
            }
            after += run.len();
        }
        first
    }

    /// The rows present (multiplicity above zero), each once with its multiplicity, in no
    /// particular order.
    pub fn rows(&self) -> Vec<(&Row, Diff)> {
        let mut all: Vec<(&Row, Diff)> = self.runs.iter().flatten().map(|(r, d)| (r, *d)).collect();
        if self.runs.len() > 1 {
            all.sort_by(|a, b| a.0.cmp(b.0));
            consolidate_sorted(&mut all);
        }
        all.retain(|(_, d)| *d > 0);
        all
    }
}

impl FromIterator<(Row, Diff)> for ResultSet {
    fn from_iter<I: IntoIterator<Item = (Row, Diff)>>(iter: I) -> ResultSet {
        let mut set = ResultSet::default();
        set.add(iter.into_iter().collect());
        set
    }
}

/// Sums the multiplicities of equal adjacent rows and drops those that come to zero.
fn consolidate_sorted<R: PartialEq>(changes: &mut Vec<(R, Diff)>) {
    let mut kept = 0;
    for i in 0..changes.len() {
        if kept > 0 && changes[kept - 1].0 == changes[i].0 {
            changes[kept - 1].1 += changes[i].1;
        } else {
            changes.swap(kept, i);
            kept += 1;
        }
    }
    changes.truncate(kept);
    changes.retain(|(_, d)| *d != 0);
}

/// Two sorted, consolidated runs merged into one, equal rows summed and zeros dropped.
fn merge(a: Vec<(Row, Diff)>, b: Vec<(Row, Diff)>) -> Vec<(Row, Diff)> {
    let (long, short) = if a.len() >= b.len() { (a, b) } else { (b, a) };
    if long.len() < GALLOP_RATIO * short.len() {
        merge_in_step(long, short)
    } else {
        merge_galloping(long, short)
    }
}

/// Runs this many times longer than the other are merged by galloping.
const GALLOP_RATIO: usize = 16;

/// Merges runs of similar lengths a row at a time, one comparison per row moved.
fn merge_in_step(a: Vec<(Row, Diff)>, b: Vec<(Row, Diff)>) -> Vec<(Row, Diff)> {
    let mut out = Vec::with_capacity(a.len() + b.len());
    let (mut a, mut b) = (a.into_iter(), b.into_iter());
    while let (Some((x, _)), Some((y, _))) = (a.as_slice().first(), b.as_slice().first()) {
        match x.cmp(y) {
            Ordering::Less => out.extend(a.next()),
            Ordering::Greater => out.extend(b.next()),
            Ordering::Equal => {
                let ((row, d), (_, e)) = (a.next().expect("looked at"), b.next().expect("looked at"));
                if d + e != 0 {
                    out.push((row, d + e));
                }
            }
        }
    }
    out.extend(a);
    out.extend(b);
    out
}

/// Merges a short run into a long one: each row of the short run finds its place in the long
/// one by galloping, and the stretch before it is moved over in one go, so merging a
/// transaction's few changes into a long run costs a few comparisons per change and a copy of
/// the run.
fn merge_galloping(long: Vec<(Row, Diff)>, short: Vec<(Row, Diff)>) -> Vec<(Row, Diff)> {
    let mut out = Vec::with_capacity(long.len() + short.len());
    let mut long = long.into_iter();
    for (row, d) in short {
        let before = gallop(long.as_slice(), &row);
        out.extend(long.by_ref().take(before));
        match long.as_slice().first() {
            Some((r, _)) if *r == row => {
                let (r, e) = long.next().expect("the row just looked at");
                if d + e != 0 {
                    out.push((r, d + e));
                }
            }
            _ => out.push((row, d)),
        }
    }
    out.extend(long);
    out
}

/// How many of the sorted `run`'s first rows are less than `row`: doubling steps from the
/// front, then a binary search within the last step.
fn gallop(run: &[(Row, Diff)], row: &Row) -> usize {
    let mut end = 1;
    while end <= run.len() && run[end - 1].0 < *row {
        end *= 2;
    }
    let start = end / 2;
    let end = end.min(run.len());
    start + run[start..end].partition_point(|(r, _)| r < row)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_planner::Value;
    use std::collections::BTreeMap;

    fn row(i: i64) -> Row {
        Row::new(vec![Value::Int(i)])
    }

    /// Changes held, over all runs.
    fn entries(set: &ResultSet) -> usize {
        set.runs.iter().map(Vec::len).sum()
    }

    /// Asserts that the set holds the model's rows of positive multiplicity, and only those.
    fn check(set: &ResultSet, model: &BTreeMap<i64, Diff>) {
        let mut got: Vec<(Row, Diff)> = set.rows().into_iter().map(|(r, d)| (r.clone(), d)).collect();
        got.sort();
        let mut want: Vec<(Row, Diff)> = model.iter().filter(|(_, d)| **d > 0).map(|(i, d)| (row(*i), *d)).collect();
        want.sort();
        assert!(got == want, "{} rows held, {} expected", got.len(), want.len());
    }

    #[test]
    fn holds_what_a_map_of_counts_holds_through_random_changes() {
        // A small deterministic generator: no dependency, the same sequence every run.
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move |n: u64| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state % n
        };
        let mut set = ResultSet::default();
        let mut model: BTreeMap<i64, Diff> = BTreeMap::new();
        for step in 0..2000 {
            let size = [1, 3, 50, 400][next(4) as usize];
            let mut changes = Vec::new();
            for _ in 0..size {
                let i = next(1000) as i64;
                let have = model.get(&i).copied().unwrap_or(0);
                // Deletes of present rows and inserts, as a result sees: the result grows
                // for the first half of the steps and shrinks to a few rows in the second.
                let d = match (have > 0, step < 1000) {
                    (true, true) if next(2) == 0 => -1,
                    (true, false) => -have,
                    (false, false) if next(50) != 0 => continue,
                    _ => 1 + next(2) as Diff,
                };
                *model.entry(i).or_default() += d;
                changes.push((row(i), d));
            }
            set.add(changes);
            if step % 97 == 0 {
                check(&set, &model);
            }
            assert_eq!(set.first_too_short(), None);
            let present = model.values().filter(|d| **d > 0).count();
            assert!(entries(&set) < 3 * present.max(1), "{} entries for {present} rows", entries(&set));
        }
        check(&set, &model);
    }

    #[test]
    fn gallop_counts_the_rows_before_a_row() {
        let mut run: Vec<(Row, Diff)> = (0..300).map(|i| (row(3 * i), 1)).collect();
        run.sort();
        for probe in -5..905 {
            let probe = row(probe);
            for len in [0, 1, 2, 3, 7, 64, 300] {
                let want = run[..len].iter().filter(|(r, _)| *r < probe).count();
                assert_eq!(gallop(&run[..len], &probe), want, "{probe:?} in {len} rows");
            }
        }
    }

    #[test]
    fn changes_that_cancel_leave_nothing() {
        let mut set: ResultSet = (0..100).map(|i| (row(i), 1)).collect();
        set.add((0..100).map(|i| (row(i), -1)).collect());
        assert!(set.rows().is_empty());
        assert_eq!(entries(&set), 0);
        set.add(vec![(row(5), 1), (row(5), 1), (row(6), 1), (row(6), -1)]);
        assert_eq!(set.rows(), vec![(&row(5), 2)]);
    }
}
