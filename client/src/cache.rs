//! A subscribed query's rows as the client holds them, kept exactly in step with the server:
//! a multiset of rows, changed by each transaction's inserts and deletes, with callbacks on
//! insert, delete and update (a delete and an insert of the same primary key in one
//! transaction, where the server named the query's key columns).

use crate::protocol::{ColumnInfo, Row};
use std::collections::HashMap;

/// Called with a row that entered or left a query's result.
pub type RowCallback = Box<dyn FnMut(&Row) + Send>;
/// Called with a row's old and new values.
pub type UpdateCallback = Box<dyn FnMut(&Row, &Row) + Send>;

/// One query's local copy.
pub struct QueryCache {
    pub sql: String,
    pub columns: Vec<ColumnInfo>,
    /// Columns holding the primary key, when the query keeps one row per key of a table.
    pub primary_key: Option<Vec<usize>>,
    /// Rows by their canonical encoding (values as JSON), with multiplicities.
    rows: HashMap<String, (Row, usize)>,
    pub(crate) on_insert: Vec<RowCallback>,
    pub(crate) on_delete: Vec<RowCallback>,
    pub(crate) on_update: Vec<UpdateCallback>,
}

fn canonical(row: &Row) -> String {
    serde_json::to_string(row).expect("rows are JSON")
}

impl QueryCache {
    pub fn new(sql: String, columns: Vec<ColumnInfo>, primary_key: Option<Vec<usize>>) -> QueryCache {
        QueryCache {
            sql,
            columns,
            primary_key,
            rows: HashMap::new(),
            on_insert: Vec::new(),
            on_delete: Vec::new(),
            on_update: Vec::new(),
        }
    }

    /// Every row, repeated by multiplicity, in no particular order.
    pub fn rows(&self) -> Vec<Row> {
        let mut out = Vec::new();
        for (row, n) in self.rows.values() {
            out.extend(std::iter::repeat_n(row, *n).cloned());
        }
        out
    }

    pub fn len(&self) -> usize {
        self.rows.values().map(|(_, n)| n).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Replaces the rows with a freshly applied result; callbacks see only what differs.
    pub fn reset(&mut self, rows: Vec<Row>) {
        let mut fresh: HashMap<String, (Row, usize)> = HashMap::new();
        for row in rows {
            fresh.entry(canonical(&row)).or_insert_with(|| (row, 0)).1 += 1;
        }
        let surplus = |a: &HashMap<String, (Row, usize)>, b: &HashMap<String, (Row, usize)>| {
            let mut out = Vec::new();
            for (key, (row, n)) in a {
                let m = b.get(key).map_or(0, |(_, m)| *m);
                out.extend(std::iter::repeat_n(row, n.saturating_sub(m)).cloned());
            }
            out
        };
        let (inserts, deletes) = (surplus(&fresh, &self.rows), surplus(&self.rows, &fresh));
        self.rows = fresh;
        self.notify(inserts, deletes);
    }

    /// Applies one transaction's change: deletes first (each must be held), then inserts.
    pub fn apply(&mut self, inserts: Vec<Row>, deletes: Vec<Row>) -> Result<(), String> {
        for row in &deletes {
            let key = canonical(row);
            match self.rows.get_mut(&key) {
                Some((_, n)) if *n > 1 => *n -= 1,
                Some(_) => drop(self.rows.remove(&key)),
                None => return Err(format!("the server deleted a row the cache does not hold: {key}")),
            }
        }
        for row in &inserts {
            self.rows.entry(canonical(row)).or_insert_with(|| (row.clone(), 0)).1 += 1;
        }
        self.notify(inserts, deletes);
        Ok(())
    }

    /// Runs the callbacks, pairing a delete and an insert of one key as an update.
    fn notify(&mut self, inserts: Vec<Row>, deletes: Vec<Row>) {
        let (mut deleted, mut inserted): (Vec<Option<Row>>, Vec<Option<Row>>) =
            (deletes.into_iter().map(Some).collect(), inserts.into_iter().map(Some).collect());
        if let Some(key) = &self.primary_key {
            let key_of = |r: &Row| canonical(&key.iter().map(|&k| r[k].clone()).collect());
            let mut by_key: HashMap<String, usize> = HashMap::new();
            for (i, d) in deleted.iter().enumerate() {
                by_key.insert(key_of(d.as_ref().expect("all present")), i);
            }
            for slot in inserted.iter_mut() {
                let new = slot.as_ref().expect("all present");
                if let Some(i) = by_key.remove(&key_of(new)) {
                    let old = deleted[i].take().expect("paired once");
                    let new = slot.take().expect("present");
                    for f in &mut self.on_update {
                        f(&old, &new);
                    }
                }
            }
        }
        for row in deleted.into_iter().flatten() {
            for f in &mut self.on_delete {
                f(&row);
            }
        }
        for row in inserted.into_iter().flatten() {
            for f in &mut self.on_insert {
                f(&row);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::Value;
    use std::sync::{Arc, Mutex};

    fn row(id: i64, v: &str) -> Row {
        vec![Value::Int(id), Value::Text(v.into())]
    }

    /// A cache keyed on column 0 that records its callbacks.
    fn cache(events: &Arc<Mutex<Vec<String>>>) -> QueryCache {
        let mut c = QueryCache::new("q".into(), Vec::new(), Some(vec![0]));
        let (a, b, d) = (Arc::clone(events), Arc::clone(events), Arc::clone(events));
        c.on_insert.push(Box::new(move |r| a.lock().unwrap().push(format!("+{}", r[1]))));
        c.on_delete.push(Box::new(move |r| b.lock().unwrap().push(format!("-{}", r[1]))));
        c.on_update.push(Box::new(move |o, n| d.lock().unwrap().push(format!("{}>{}", o[1], n[1]))));
        c
    }

    #[test]
    fn a_delete_and_insert_of_one_key_is_an_update_and_multiplicities_are_kept() {
        let events = Arc::default();
        let mut c = cache(&events);
        c.apply(vec![row(1, "a"), row(2, "b"), row(2, "b")], vec![]).unwrap();
        c.apply(vec![row(1, "A"), row(3, "c")], vec![row(1, "a"), row(2, "b")]).unwrap();
        assert_eq!(*events.lock().unwrap(), ["+a", "+b", "+b", "a>A", "-b", "+c"]);
        assert_eq!(c.len(), 3);
        let err = c.apply(vec![], vec![row(9, "z")]).unwrap_err();
        assert!(err.contains("does not hold"), "{err}");
    }

    #[test]
    fn reset_reports_only_what_differs() {
        let events = Arc::default();
        let mut c = cache(&events);
        c.apply(vec![row(1, "a"), row(2, "b")], vec![]).unwrap();
        events.lock().unwrap().clear();
        c.reset(vec![row(1, "a"), row(2, "B"), row(4, "d")]);
        let mut seen = events.lock().unwrap().clone();
        seen.sort();
        assert_eq!(seen, ["+d", "b>B"]);
        let mut rows = c.rows();
        rows.sort_by(|a, b| a.partial_cmp(b).unwrap());
        assert_eq!(rows, [row(1, "a"), row(2, "B"), row(4, "d")]);
    }
}
