//! How arrangements of rows lay out their batches: every key and value of a batch as one slab
//! of encoded row bytes with an end offset each (`RowContainer`), instead of a vector of
//! fixed-size `Row`s. A four-integer row encodes in 8 to 16 bytes where a `Row` takes 32
//! inline, so a by-key arrangement of a table costs about the rows' encoded size plus two
//! 4-byte offsets per row (after compaction each row's single (time, diff) is shared with its
//! neighbour by differential's singleton encoding). Cursors hand out `RowRef`s into the slab.
//! The keys of a by-key arrangement are one 8-byte slot each instead (`KeyContainer`).

use crate::delta::{Diff, Offset};
use differential_dataflow::batcher::merge::chunker::ContainerChunker;
use differential_dataflow::batcher::merge::vec::VecMerger;
use differential_dataflow::batcher::merge::{MergeBatcher, Sealer};
use differential_dataflow::operators::arrange::{Arranged, TraceAgent};
use differential_dataflow::trace::implementations::ord_neu::{OrdKeyBatch, OrdKeyBuilder, OrdValBatch, OrdValBuilder};
use differential_dataflow::trace::implementations::spine_fueled::Spine;
use differential_dataflow::trace::implementations::{BatchContainer, OffsetList};
use differential_dataflow::trace::Builder;
use differential_dataflow::VecCollection;
use sluice_planner::{Row, RowRef};
use std::rc::Rc;
use timely::container::PushInto;

/// The parts of `BatchContainer` (and `PushInto<Row>`) shared by containers that hold rows as
/// encoded bytes and have a `push_bytes`: rows go in as their bytes and come out as `RowRef`s.
macro_rules! rows_as_bytes {
    ($container:ty) => {
        impl PushInto<Row> for $container {
            fn push_into(&mut self, row: Row) {
                self.push_bytes(row.as_bytes());
            }
        }
    };
    () => {
        type Owned = Row;
        type ReadItem<'a> = RowRef<'a>;

        #[inline(always)]
        fn into_owned(item: RowRef<'_>) -> Row {
            item.to_row()
        }

        #[inline(always)]
        fn reborrow<'b, 'a: 'b>(item: RowRef<'a>) -> RowRef<'b> {
            item
        }

        fn push_ref(&mut self, item: RowRef<'_>) {
            self.push_bytes(item.as_bytes());
        }

        fn push_own(&mut self, item: &Row) {
            self.push_bytes(item.as_bytes());
        }
    };
}

mod keys;
use keys::KeyContainer;

/// Rows as one byte slab and the end of each row in it.
pub struct RowContainer {
    bytes: Vec<u8>,
    ends: OffsetList,
}

impl RowContainer {
    fn start(&self, index: usize) -> usize {
        if index == 0 {
            0
        } else {
            self.ends.index(index - 1)
        }
    }

    fn push_bytes(&mut self, row: &[u8]) {
        self.bytes.extend_from_slice(row);
        self.ends.push(self.bytes.len());
    }
}

impl RowContainer {
    /// Room for `rows` rows of `bytes` encoded bytes in all.
    fn exact(rows: usize, bytes: usize) -> Self {
        RowContainer { bytes: Vec::with_capacity(bytes), ends: OffsetList::with_capacity(rows) }
    }
}

rows_as_bytes!(RowContainer);

impl BatchContainer for RowContainer {
    rows_as_bytes!();

    fn clear(&mut self) {
        self.bytes.clear();
        self.ends.clear();
    }

    fn with_capacity(size: usize) -> Self {
        // The bytes are not known from a count; `RowValSealer` sizes the slab exactly.
        RowContainer { bytes: Vec::new(), ends: OffsetList::with_capacity(size) }
    }

    fn merge_capacity(a: &Self, b: &Self) -> Self {
        RowContainer {
            bytes: Vec::with_capacity(a.bytes.len() + b.bytes.len()),
            ends: OffsetList::with_capacity(a.len() + b.len()),
        }
    }

    #[inline]
    fn index(&self, index: usize) -> RowRef<'_> {
        RowRef::from_row_bytes(&self.bytes[self.start(index)..self.ends.index(index)])
    }

    fn len(&self) -> usize {
        self.ends.len()
    }
}

/// Batches of (key row, value row) updates stored as slabs.
type RowValLayout = (KeyContainer, RowContainer, Vec<Offset>, Vec<Diff>, OffsetList);
/// Batches of key-row updates stored as a slab.
type RowKeyLayout = (RowContainer, Vec<()>, Vec<Offset>, Vec<Diff>, OffsetList);

/// A trace of rows by a key row.
pub type RowValSpine = Spine<Rc<OrdValBatch<RowValLayout>>>;
/// A trace of key rows.
pub type RowKeySpine = Spine<Rc<OrdKeyBatch<RowKeyLayout>>>;

type ValUpdates = Vec<((Row, Row), Offset, Diff)>;
type KeyUpdates = Vec<((Row, ()), Offset, Diff)>;
type RowValBatcher = MergeBatcher<ContainerChunker<ValUpdates>, VecMerger<(Row, Row), Offset, Diff>, RowValSealer>;
type RowKeyBatcher = MergeBatcher<
    ContainerChunker<KeyUpdates>,
    VecMerger<(Row, ()), Offset, Diff>,
    OrdKeyBuilder<RowKeyLayout, KeyUpdates>,
>;

/// Seals a sorted chain of updates into a batch whose slabs are allocated at their exact
/// size, and whose (time, diff) lists grow as needed: differential's builder would reserve a
/// time and a diff per update, though after compaction nearly all of them are the singleton
/// encoding's shared one.
pub struct RowValSealer;

impl Sealer<ValUpdates> for RowValSealer {
    type Output = OrdValBatch<RowValLayout>;

    fn seal(chain: &mut Vec<ValUpdates>) -> Option<Self::Output> {
        let (mut keys, mut vals, mut long_keys, mut long_key_bytes, mut val_bytes) = (0, 0, 0, 0, 0);
        let mut prev: Option<(&Row, &Row)> = None;
        for ((k, v), _, _) in chain.iter().flatten() {
            let new_key = prev.is_none_or(|(pk, _)| pk != k);
            if new_key {
                keys += 1;
                let len = k.as_bytes().len();
                if KeyContainer::is_long(len) {
                    long_keys += 1;
                    long_key_bytes += len;
                }
            }
            if new_key || prev.is_some_and(|(_, pv)| pv != v) {
                vals += 1;
                val_bytes += v.as_bytes().len();
            }
            prev = Some((k, v));
        }
        let mut builder = OrdValBuilder::<RowValLayout, ValUpdates>::with_capacity(keys, vals, 0);
        builder.result.keys = KeyContainer::exact(keys, long_keys, long_key_bytes);
        builder.result.vals.vals = RowContainer::exact(vals, val_bytes);
        for mut chunk in chain.drain(..) {
            builder.push(&mut chunk);
        }
        builder.done()
    }
}

/// Arranges (key, row) pairs by key.
pub fn arrange_by_key<'s>(c: VecCollection<'s, Offset, (Row, Row), Diff>) -> Arranged<'s, TraceAgent<RowValSpine>> {
    c.arrange::<RowValBatcher, RowValSpine>(RowValBatcher::new)
}

/// Arranges rows by themselves.
pub fn arrange_by_self<'s>(c: VecCollection<'s, Offset, Row, Diff>) -> Arranged<'s, TraceAgent<RowKeySpine>> {
    c.map(|k| (k, ())).arrange::<RowKeyBatcher, RowKeySpine>(RowKeyBatcher::new)
}
