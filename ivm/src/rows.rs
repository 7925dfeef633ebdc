//! A table's current rows with their multiplicities, as `TableRows` keeps them for an engine
//! used without a datastore.
//!
//! Nothing reads these rows as changes come, so a hash table (one probe per change) serves
//! where an arrangement would sort every change. Rows are hashed by the table's primary key
//! (the whole row for a table without one): an update, which deletes a row and inserts one
//! with the same key, finds the second in the cache lines the first brought in.

use crate::delta::Diff;
use hashbrown::{DefaultHashBuilder, HashTable};
use sluice_planner::Row;
use std::hash::BuildHasher;

pub struct Rows {
    /// Primary-key columns; empty hashes the whole row.
    key: Vec<usize>,
    table: HashTable<(Row, Diff)>,
    hasher: DefaultHashBuilder,
}

impl Rows {
    pub fn new(key: Vec<usize>) -> Rows {
        Rows { key, table: HashTable::new(), hasher: DefaultHashBuilder::default() }
    }

    fn hash(key: &[usize], hasher: &DefaultHashBuilder, row: &Row) -> u64 {
        hasher.hash_one(row.columns_bytes(key))
    }

    /// Adds `diff` to the row's multiplicity; a row whose multiplicity reaches zero goes.
    pub fn add(&mut self, row: &Row, diff: Diff) {
        let Rows { key, table, hasher } = self;
        let h = Rows::hash(key, hasher, row);
        match table.find_entry(h, |(r, _)| r == row) {
            Ok(mut entry) => {
                entry.get_mut().1 += diff;
                if entry.get().1 == 0 {
                    entry.remove();
                }
            }
            Err(_) => {
                table.insert_unique(h, (row.clone(), diff), |(r, _)| Rows::hash(key, hasher, r));
            }
        }
    }

    /// Each row with its multiplicity, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&Row, Diff)> {
        self.table.iter().map(|(r, d)| (r, *d))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_planner::Value;

    fn row(v: &[i64]) -> Row {
        Row::new(v.iter().map(|&x| Value::Int(x)).collect())
    }

    fn sorted(rows: &Rows) -> Vec<(Row, Diff)> {
        let mut v: Vec<(Row, Diff)> = rows.iter().map(|(r, d)| (r.clone(), d)).collect();
        v.sort();
        v
    }

    #[test]
    fn multiplicities_add_up_and_rows_go_at_zero() {
        for key in [vec![], vec![0], vec![1, 0]] {
            let mut rows = Rows::new(key.clone());
            rows.add(&row(&[1, 10]), 1);
            rows.add(&row(&[2, 20]), 1);
            // An update: same key, new values; both rows share a key while it happens.
            rows.add(&row(&[1, 11]), 1);
            rows.add(&row(&[1, 10]), -1);
            assert_eq!(sorted(&rows), vec![(row(&[1, 11]), 1), (row(&[2, 20]), 1)], "key {key:?}");
            rows.add(&row(&[2, 20]), 2);
            rows.add(&row(&[2, 20]), -3);
            assert_eq!(sorted(&rows), vec![(row(&[1, 11]), 1)], "key {key:?}");
        }
    }
}
