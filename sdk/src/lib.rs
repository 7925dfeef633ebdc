//! The Sluice module SDK: what a module author depends on. `#[table]` on a struct makes it a
//! table (with `#[primary_key]`, `#[unique]`, `#[index(btree)]` and `#[auto_inc]` on fields,
//! `index(name = …, btree(columns = [a, b]))` for an index over several columns, and
//! `scheduled(reducer)` for a schedule table); `#[reducer]` on a function taking
//! `&ReducerContext` and typed arguments makes it a reducer, `#[reducer(init)]`,
//! `#[reducer(client_connected)]` and `#[reducer(client_disconnected)]` a lifecycle one.
//! Both export what the host's ABI (runtime/src/host.rs) expects; table handles turn typed
//! rows into host calls. Built for wasm32-unknown-unknown with `sluice build`; on other
//! targets it compiles (so its own tests run) but calling the host panics.

mod codec;
mod host;

pub use codec::{field, key, Column, IndexKey, Param, Reader};
pub use sluice_macros::{reducer, table};
use std::marker::PhantomData;
use std::ops::{Bound, RangeBounds};
use std::sync::atomic::{AtomicI32, Ordering};

/// A table row type, implemented by `#[table]`.
pub trait Table: Param {
    /// The table's name in the database.
    const NAME: &'static str;
    fn encode(&self) -> Vec<u8>;
    fn decode(bytes: &[u8]) -> Self {
        Self::decode_param(&mut Reader::new(bytes))
    }
}

/// The caller of a reducer: 32 bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Identity(pub [u8; 32]);

impl Identity {
    /// The sender of what the database runs itself: `init` and every scheduled run. No
    /// client can call as it (and clients may not call scheduled reducers at all).
    pub const SERVER: Identity = Identity([0xff; 32]);
    /// The sender of a request that presented no token.
    pub const ANONYMOUS: Identity = Identity([0; 32]);

    pub fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }
}

impl Column for Identity {
    const TYPE: &'static str = "bytes";
    fn encode(&self, out: &mut Vec<u8>) {
        self.0.to_vec().encode(out)
    }
    fn decode(r: &mut Reader<'_>) -> Self {
        let mut id = [0u8; 32];
        let bytes = Vec::<u8>::decode(r);
        let n = bytes.len().min(32);
        id[..n].copy_from_slice(&bytes[..n]);
        Identity(id)
    }
}

/// The database as a reducer sees it; `#[table]` adds an accessor per table.
pub struct Db(());

/// What a reducer gets besides its arguments.
pub struct ReducerContext {
    /// Who called the reducer.
    pub sender: Identity,
    /// When the transaction runs: microseconds since the Unix epoch.
    pub timestamp: u64,
    pub db: Db,
}

/// Bytes before a reducer's arguments: the caller's identity and the timestamp.
pub const ARGS_HEADER: usize = 40;

impl ReducerContext {
    /// Reads the header the host puts before a reducer's arguments.
    #[doc(hidden)]
    pub fn from_header(header: &[u8]) -> ReducerContext {
        let mut sender = [0u8; 32];
        sender.copy_from_slice(&header[..32]);
        let mut ts = [0u8; 8];
        ts.copy_from_slice(&header[32..40]);
        ReducerContext { sender: Identity(sender), timestamp: u64::from_le_bytes(ts), db: Db(()) }
    }
}

/// A table's rows.
pub struct TableHandle<T> {
    table: i32,
    row: PhantomData<T>,
}

/// A table or index id, looked up once per instance.
fn cached(slot: &AtomicI32, lookup: impl FnOnce() -> i32) -> i32 {
    match slot.load(Ordering::Relaxed) {
        id if id >= 0 => id,
        _ => {
            let id = lookup();
            slot.store(id, Ordering::Relaxed);
            id
        }
    }
}

/// Rows fetched from the host per page while iterating.
const PAGE: i32 = 256;

impl<T: Table> TableHandle<T> {
    /// The handle of `T`'s table, whose id `slot` caches.
    #[doc(hidden)]
    pub fn new(slot: &AtomicI32) -> TableHandle<T> {
        TableHandle { table: cached(slot, || host::table_id(T::NAME)), row: PhantomData }
    }

    /// Inserts a row; returns it with generated (auto-increment) values filled in.
    pub fn insert(&self, row: T) -> Result<T, String> {
        host::insert(self.table, &row.encode()).map(|bytes| T::decode(&bytes))
    }

    /// Every row, in no particular order, fetched from the host a page at a time: the rows as
    /// the iteration began, less those deleted before they are reached.
    pub fn iter(&self) -> RowIter<T> {
        RowIter::new(Source::Scan { table: self.table, iter: None })
    }

    pub fn count(&self) -> u64 {
        host::count(self.table)
    }

    /// An index by name (the primary key is `primary_key`), whose id `slot` caches;
    /// `#[table]` names them for you.
    #[doc(hidden)]
    pub fn index<K: IndexKey>(&self, name: &str, slot: &AtomicI32) -> Index<T, K> {
        Index { table: self.table, index: cached(slot, || host::index_id(self.table, name)), row: PhantomData }
    }
}

/// Where a `RowIter`'s rows come from.
enum Source {
    /// A table scan: the host's iterator, opened on the first `next`.
    Scan { table: i32, iter: Option<i32> },
    /// An index range, paged by resuming after the last row fetched (no host state).
    Range { table: i32, index: i32, lo: host::RangeBound, hi: host::RangeBound },
}

/// Rows of a table or of an index range, fetched from the host a page at a time.
pub struct RowIter<T> {
    source: Source,
    page: Vec<Vec<u8>>,
    pos: usize,
    done: bool,
    row: PhantomData<T>,
}

impl<T: Table> RowIter<T> {
    fn new(source: Source) -> RowIter<T> {
        RowIter { source, page: Vec::new(), pos: 0, done: false, row: PhantomData }
    }

    fn fetch(&mut self) -> Vec<Vec<u8>> {
        let bytes = match &mut self.source {
            Source::Scan { table, iter } => host::iter_next(*iter.get_or_insert_with(|| host::iter_open(*table)), PAGE),
            Source::Range { table, index, lo, hi } => {
                host::range(*table, *index, lo, hi, self.page.last().map(Vec::as_slice), PAGE)
            }
        };
        host::rows(bytes)
    }
}

impl<T: Table> Iterator for RowIter<T> {
    type Item = T;

    fn next(&mut self) -> Option<T> {
        if self.pos == self.page.len() {
            if self.done {
                return None;
            }
            self.page = self.fetch();
            self.pos = 0;
            self.done = self.page.len() < PAGE as usize;
            if self.page.is_empty() {
                return None;
            }
        }
        self.pos += 1;
        Some(T::decode(&self.page[self.pos - 1]))
    }
}

impl<T> Drop for RowIter<T> {
    fn drop(&mut self) {
        if let Source::Scan { iter: Some(id), .. } = self.source {
            host::iter_close(id);
        }
    }
}

/// A unique index, the primary key, or a btree index, keyed by `K`.
pub struct Index<T, K> {
    table: i32,
    index: i32,
    row: PhantomData<(T, K)>,
}

impl<T: Table, K: IndexKey> Index<T, K> {
    /// The row with this key (of a btree index: the first).
    pub fn find(&self, key: &K) -> Option<T> {
        let bytes = host::find(self.table, self.index, &codec::key(key));
        host::rows(bytes).first().map(|r| T::decode(r))
    }

    /// Deletes the row with this key; whether there was one.
    pub fn delete(&self, key: &K) -> bool {
        !host::rows(host::delete_by(self.table, self.index, &codec::key(key))).is_empty()
    }

    /// Replaces the row that has the same key as `row`; returns the stored row.
    pub fn update(&self, row: T) -> Result<T, String> {
        host::update_by(self.table, self.index, &row.encode()).map(|bytes| T::decode(&bytes))
    }

    /// Rows whose key lies in `range`, in key order, a page at a time. For an index over
    /// several columns the bounds are tuples of its columns' values.
    pub fn filter(&self, range: impl RangeBounds<K>) -> RowIter<T> {
        let bound = |b: Bound<&K>| match b {
            Bound::Included(k) => (codec::key(k), 0),
            Bound::Excluded(k) => (codec::key(k), 1),
            Bound::Unbounded => (Vec::new(), 2),
        };
        let (lo, hi) = (bound(range.start_bound()), bound(range.end_bound()));
        RowIter::new(Source::Range { table: self.table, index: self.index, lo, hi })
    }
}

/// What a reducer returns: `()` or `Result<(), E: Display>`.
pub trait ReducerResult {
    fn into_result(self) -> Result<(), String>;
}

impl ReducerResult for () {
    fn into_result(self) -> Result<(), String> {
        Ok(())
    }
}

impl<E: std::fmt::Display> ReducerResult for Result<(), E> {
    fn into_result(self) -> Result<(), String> {
        self.map_err(|e| e.to_string())
    }
}

/// Support for the macros' generated code.
#[doc(hidden)]
pub mod rt {
    pub use crate::host::{finish, free_args, install_panic_hook, packed_str};
}

/// Writes to the database's log at a level (1 error … 5 trace).
#[doc(hidden)]
pub fn log(level: u32, message: &str) {
    host::log(level, message)
}

/// Logs at info level: `log::info!("x = {}", x)`.
#[macro_export]
macro_rules! info {
    ($($t:tt)*) => { $crate::log(3, &format!($($t)*)) };
}

/// Logs at error level.
#[macro_export]
macro_rules! error {
    ($($t:tt)*) => { $crate::log(1, &format!($($t)*)) };
}
