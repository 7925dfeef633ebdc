//! One table's rows and indexes: constraint checks, point and range lookups. Knows nothing of
//! transactions; the datastore records every change it makes here so it can undo it.

use crate::error::{DatastoreError, Result};
use crate::schema::{IndexKind, TableDef};
use hashbrown::HashMap;
use sluice_data::{DataType, Row, Value};
use std::collections::BTreeSet;
use std::ops::Bound;

/// The values of an index's columns, ordered as the values order (numbers numerically).
pub type Key = Vec<Value>;

enum IndexData {
    /// Keyed by the key's encoding: equal keys encode identically, and hashing and moving
    /// a compact row is cheap (growing a table of millions of keys takes milliseconds).
    Unique(HashMap<Row, Row>),
    /// Ordered by the key's values (value order, which the encoding's byte order is not).
    BTree(BTreeSet<(Key, Row)>),
}

/// An index over some columns; the primary key is the first unique index of a keyed table.
struct Index {
    name: String,
    columns: Vec<usize>,
    data: IndexData,
}

impl Index {
    fn key(&self, row: &Row) -> Key {
        key_of(&self.columns, row)
    }
}

/// The values of `columns` in `row`.
fn key_of(columns: &[usize], row: &Row) -> Key {
    let vals = row.values();
    columns.iter().map(|&c| vals[c].clone()).collect()
}

/// A unique index's entry key for `row`: `None` if the key holds a NULL (NULLs are distinct
/// from each other, as in SQL, so such rows are not indexed).
fn unique_key(columns: &[usize], row: &Row) -> Option<Row> {
    let key = key_of(columns, row);
    (!key.iter().any(Value::is_null)).then(|| Row::from_values(&key))
}

pub struct Table {
    pub def: TableDef,
    /// A bag's rows (a table without primary key), each with its multiplicity. A keyed
    /// table's rows are its primary-key index (first of `indexes`), with no second copy.
    bag: Option<HashMap<Row, usize>>,
    len: usize,
    /// Primary key (if any) first, then the declared indexes in order.
    indexes: Vec<Index>,
    /// The next auto-increment value.
    pub seq: i128,
}

/// Name of the primary key's index.
pub const PRIMARY_KEY: &str = "primary_key";

impl Table {
    pub fn new(def: TableDef) -> Table {
        let mut indexes = Vec::new();
        if !def.schema.primary_key.is_empty() {
            indexes.push(Index {
                name: PRIMARY_KEY.into(),
                columns: def.schema.primary_key.clone(),
                data: IndexData::Unique(HashMap::new()),
            });
        }
        for ix in &def.indexes {
            let data = match ix.kind {
                IndexKind::Unique => IndexData::Unique(HashMap::new()),
                IndexKind::BTree => IndexData::BTree(BTreeSet::new()),
            };
            indexes.push(Index { name: ix.name.clone(), columns: ix.columns.clone(), data });
        }
        let bag = def.schema.primary_key.is_empty().then(HashMap::new);
        Table { def, bag, len: 0, indexes, seq: 1 }
    }

    fn name(&self) -> &str {
        &self.def.schema.name
    }

    pub fn len(&self) -> usize {
        self.len
    }

    /// Every row, duplicates repeated, in an arbitrary order (stable while the table is not
    /// changed).
    pub fn scan(&self) -> impl Iterator<Item = &Row> {
        let (bag, keyed) = match &self.bag {
            Some(bag) => (Some(bag.iter()), None),
            None => (None, Some(self.primary().values())),
        };
        let bag = bag.into_iter().flatten().flat_map(|(r, n)| std::iter::repeat_n(r, *n));
        bag.chain(keyed.into_iter().flatten())
    }

    /// A keyed table's primary-key index: its rows.
    fn primary(&self) -> &HashMap<Row, Row> {
        match &self.indexes[0].data {
            IndexData::Unique(map) => map,
            IndexData::BTree(_) => unreachable!("a keyed table's first index is its primary key"),
        }
    }

    /// How many copies of `row` the table holds.
    fn copies(&self, row: &Row) -> usize {
        match &self.bag {
            Some(bag) => bag.get(row).copied().unwrap_or(0),
            None => {
                let key = unique_key(&self.indexes[0].columns, row);
                key.and_then(|k| self.primary().get(&k)).is_some_and(|r| r == row) as usize
            }
        }
    }

    /// Records one copy more (`add`) or less of `row` in a bag; returns how many remain.
    /// A keyed table keeps no count: it holds one copy, in its indexes.
    fn count(&mut self, row: &Row, add: bool) -> usize {
        let Some(bag) = &mut self.bag else { return add as usize };
        if add {
            let n = bag.entry(row.clone()).or_default();
            *n += 1;
            return *n;
        }
        let n = bag.get_mut(row).expect("a counted row");
        *n -= 1;
        let left = *n;
        if left == 0 {
            bag.remove(row);
        }
        left
    }

    /// The position of the index named `name` (`primary_key` for the primary key).
    pub fn index_id(&self, name: &str) -> Result<usize> {
        self.indexes
            .iter()
            .position(|ix| ix.name == name)
            .ok_or_else(|| DatastoreError::NoSuchIndex { table: self.name().to_string(), index: name.to_string() })
    }

    /// The columns of an index.
    pub fn index_columns(&self, id: usize) -> Result<Vec<usize>> {
        Ok(self.index(id)?.columns.clone())
    }

    fn index(&self, id: usize) -> Result<&Index> {
        self.indexes
            .get(id)
            .ok_or_else(|| DatastoreError::NoSuchIndex { table: self.name().to_string(), index: format!("#{id}") })
    }

    /// Checks arity, types and NULLs, coercing integers where the column type asks for it.
    pub fn check(&self, values: &mut [Value]) -> Result<()> {
        let cols = &self.def.schema.columns;
        if values.len() != cols.len() {
            return Err(DatastoreError::Arity { table: self.name().into(), expected: cols.len(), got: values.len() });
        }
        for (v, c) in values.iter_mut().zip(cols) {
            let got = v.data_type();
            let ok = match (c.ty, &*v) {
                (_, Value::Null) => c.nullable,
                (DataType::Real, Value::Int(i)) => {
                    *v = Value::Real(*i as f64);
                    true
                }
                (DataType::UInt, Value::Int(i)) if *i >= 0 => {
                    *v = Value::UInt(*i as u64);
                    true
                }
                (DataType::Int, Value::UInt(u)) if *u <= i64::MAX as u64 => {
                    *v = Value::Int(*u as i64);
                    true
                }
                (ty, _) => ty == got,
            };
            if !ok {
                if v.is_null() {
                    return Err(DatastoreError::Null { table: self.name().into(), column: c.name.clone() });
                }
                return Err(DatastoreError::Type {
                    table: self.name().into(),
                    column: c.name.clone(),
                    expected: c.ty,
                    got,
                });
            }
        }
        Ok(())
    }

    /// Puts the next auto-increment value into a row that carries 0 or NULL there; returns
    /// the sequence's new next value if it moves (explicit values move it past themselves, so
    /// generated ones never collide with them).
    pub fn fill_auto_inc(&self, values: &mut [Value]) -> Result<Option<i128>> {
        let Some(c) = self.def.auto_inc else { return Ok(None) };
        let Some(slot) = values.get_mut(c) else { return Ok(None) };
        if !matches!(slot, Value::Null | Value::Int(0) | Value::UInt(0)) {
            return Ok(slot.as_i128().filter(|n| *n >= self.seq).map(|n| n + 1));
        }
        let column = &self.def.schema.columns[c];
        let max = if column.ty == DataType::UInt { u64::MAX as i128 } else { i64::MAX as i128 };
        if self.seq > max {
            return Err(DatastoreError::SequenceExhausted { table: self.name().into(), column: column.name.clone() });
        }
        *slot = if self.seq > i64::MAX as i128 { Value::UInt(self.seq as u64) } else { Value::Int(self.seq as i64) };
        Ok(Some(self.seq + 1))
    }

    /// Whether inserting `row` would break a unique index; the error names the index.
    pub fn check_unique(&self, row: &Row) -> Result<()> {
        self.check_unique_replacing(row, None)
    }

    /// Like `check_unique`, where `replacing` (if any) is about to leave the table, so its
    /// keys are free.
    fn check_unique_replacing(&self, row: &Row, replacing: Option<&Row>) -> Result<()> {
        for ix in &self.indexes {
            if let IndexData::Unique(map) = &ix.data {
                let holder = unique_key(&ix.columns, row).and_then(|k| map.get(&k));
                if holder.is_some_and(|h| Some(h) != replacing) {
                    let key = format_key(&ix.key(row));
                    if ix.name == PRIMARY_KEY {
                        return Err(DatastoreError::PrimaryKey { table: self.name().into(), key });
                    }
                    return Err(DatastoreError::Unique { table: self.name().into(), constraint: ix.name.clone(), key });
                }
            }
        }
        Ok(())
    }

    /// Replaces one copy of `old` (present) with `new` (type-checked), failing with nothing
    /// changed if `new` breaks a unique index. A unique index whose key the update keeps is
    /// updated in place.
    pub fn replace(&mut self, old: &Row, new: Row) -> Result<()> {
        self.check_unique_replacing(&new, Some(old))?;
        let last = self.count(old, false) == 0;
        self.count(&new, true);
        for ix in &mut self.indexes {
            match &mut ix.data {
                IndexData::Unique(map) => {
                    let (was, is) = (unique_key(&ix.columns, old), unique_key(&ix.columns, &new));
                    if last && was != is {
                        if let Some(k) = was {
                            map.remove(&k);
                        }
                    }
                    if let Some(k) = is {
                        map.insert(k, new.clone());
                    }
                }
                IndexData::BTree(set) => {
                    if last {
                        set.remove(&(key_of(&ix.columns, old), old.clone()));
                    }
                    set.insert((key_of(&ix.columns, &new), new.clone()));
                }
            }
        }
        Ok(())
    }

    /// Adds a row whose constraints were checked.
    pub fn insert_checked(&mut self, row: Row) {
        for ix in &mut self.indexes {
            match &mut ix.data {
                IndexData::Unique(map) => {
                    if let Some(key) = unique_key(&ix.columns, &row) {
                        map.insert(key, row.clone());
                    }
                }
                IndexData::BTree(set) => {
                    set.insert((key_of(&ix.columns, &row), row.clone()));
                }
            }
        }
        self.count(&row, true);
        self.len += 1;
    }

    /// Removes one copy of `row`; false if there is none.
    pub fn remove(&mut self, row: &Row) -> bool {
        if self.copies(row) == 0 {
            return false;
        }
        let last = self.count(row, false) == 0;
        self.len -= 1;
        if last {
            for ix in &mut self.indexes {
                match &mut ix.data {
                    IndexData::Unique(map) => {
                        if let Some(key) = unique_key(&ix.columns, row) {
                            map.remove(&key);
                        }
                    }
                    IndexData::BTree(set) => {
                        set.remove(&(key_of(&ix.columns, row), row.clone()));
                    }
                }
            }
        }
        true
    }

    fn key_arity(&self, ix: &Index, got: usize, prefix_ok: bool) -> Result<()> {
        let expected = ix.columns.len();
        if got == expected || (prefix_ok && got <= expected) {
            Ok(())
        } else {
            Err(DatastoreError::KeyArity { table: self.name().into(), expected, got })
        }
    }

    /// The row with `key` in a unique index (or the primary key).
    pub fn find(&self, index: usize, key: &[Value]) -> Result<Option<Row>> {
        let ix = self.index(index)?;
        self.key_arity(ix, key.len(), false)?;
        Ok(match &ix.data {
            IndexData::Unique(map) => map.get(&Row::from_values(key)).cloned(),
            IndexData::BTree(set) => {
                set.range((key.to_vec(), Row::empty())..).take_while(|(k, _)| k == key).map(|(_, r)| r.clone()).next()
            }
        })
    }

    /// Whether the table holds `row`.
    pub fn contains(&self, row: &Row) -> bool {
        self.copies(row) > 0
    }

    /// Rows whose index key (or a prefix of it, as long as the bounds) lies within the bounds,
    /// in key order (then row order), resuming after the row `after` and stopping at `limit`
    /// distinct rows (copies of a row in a bag come together): an iterator's pages.
    pub fn range(
        &self,
        index: usize,
        lo: Bound<&[Value]>,
        hi: Bound<&[Value]>,
        after: Option<&Row>,
        limit: usize,
    ) -> Result<Vec<Row>> {
        let ix = self.index(index)?;
        for b in [lo, hi] {
            if let Bound::Included(k) | Bound::Excluded(k) = b {
                self.key_arity(ix, k.len(), true)?;
            }
        }
        let within = |key: &Key| {
            let prefix = |b: &[Value]| &key[..b.len()];
            let above = match lo {
                Bound::Included(b) => prefix(b) >= b,
                Bound::Excluded(b) => prefix(b) > b,
                Bound::Unbounded => true,
            };
            let below = match hi {
                Bound::Included(b) => prefix(b) <= b,
                Bound::Excluded(b) => prefix(b) < b,
                Bound::Unbounded => true,
            };
            (above, below)
        };
        let resume = after.map(|r| (ix.key(r), r.clone()));
        Ok(match &ix.data {
            IndexData::BTree(set) => {
                let start = match (&resume, lo) {
                    (Some(entry), _) => Bound::Excluded(entry.clone()),
                    (None, Bound::Included(b) | Bound::Excluded(b)) => Bound::Included((b.to_vec(), Row::empty())),
                    (None, Bound::Unbounded) => Bound::Unbounded,
                };
                set.range((start, Bound::Unbounded))
                    .map(|(k, r)| (within(k), r))
                    .skip_while(|((above, _), _)| !above)
                    .take_while(|((_, below), _)| *below)
                    .take(limit)
                    // One entry stands for every copy of a row (only a bag has copies).
                    .flat_map(|(_, r)| std::iter::repeat_n(r, self.copies(r)).cloned())
                    .collect()
            }
            IndexData::Unique(map) => {
                let mut rows: Vec<(Key, &Row)> = map
                    .iter()
                    .map(|(k, r)| (k.values().to_vec(), r))
                    .filter(|(k, r)| {
                        within(k) == (true, true) && resume.as_ref().is_none_or(|(rk, rr)| (k, *r) > (rk, rr))
                    })
                    .collect();
                rows.sort();
                rows.into_iter().take(limit).map(|(_, r)| r.clone()).collect()
            }
        })
    }
}

/// A key as text for error messages: `(1, 'a')` (values as they display, text quoted).
pub fn format_key(key: &[Value]) -> String {
    let parts: Vec<String> = key
        .iter()
        .map(|v| match v {
            Value::Text(s) => format!("'{s}'"),
            other => other.to_string(),
        })
        .collect();
    format!("({})", parts.join(", "))
}
