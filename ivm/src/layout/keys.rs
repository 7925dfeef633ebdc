//! The keys of a by-key arrangement's batch as one 8-byte slot each (`KeyContainer`): a key
//! of up to 7 encoded bytes (one integer of magnitude below 2^41, the usual join key) lives
//! in its slot, a longer one in a slab the slot points into. A join looks each of its keys up
//! by galloping over a batch's keys, reading one key per step: from an array of slots that is
//! one memory access, where a slab of bytes with an end per key (`RowContainer`, the values'
//! layout) makes it two, far apart. A short key takes 8 bytes in either layout.

use super::RowContainer;
use differential_dataflow::trace::implementations::BatchContainer;
use sluice_planner::{Row, RowRef};
use timely::container::PushInto;

/// Bytes a key may have and still live in its slot.
const INLINE: usize = 7;

/// The first byte of a slot whose key is in the slab: the others are the key's index in it
/// (a slot's length byte is otherwise at most `INLINE`).
const SPILLED: u8 = u8::MAX;

/// Keys, each in an 8-byte slot: its length and bytes, or `SPILLED` and its index in `long`.
pub struct KeyContainer {
    slots: Vec<[u8; 8]>,
    /// The keys too long for a slot, as a slab with an end each.
    long: RowContainer,
}

impl KeyContainer {
    /// Room for `keys` keys, `long_keys` of them too long for a slot and `long_bytes` long.
    pub fn exact(keys: usize, long_keys: usize, long_bytes: usize) -> KeyContainer {
        KeyContainer { slots: Vec::with_capacity(keys), long: RowContainer::exact(long_keys, long_bytes) }
    }

    /// Whether a key of `len` bytes goes to the slab.
    pub fn is_long(len: usize) -> bool {
        len > INLINE
    }

    fn push_bytes(&mut self, key: &[u8]) {
        let mut slot = [0u8; 8];
        if key.len() <= INLINE {
            slot[0] = key.len() as u8;
            slot[1..=key.len()].copy_from_slice(key);
        } else {
            let n = self.long.len() as u64;
            self.long.push_bytes(key);
            slot = (n << 8 | SPILLED as u64).to_le_bytes();
        }
        self.slots.push(slot);
    }
}

rows_as_bytes!(KeyContainer);

impl BatchContainer for KeyContainer {
    rows_as_bytes!();

    fn clear(&mut self) {
        self.slots.clear();
        self.long.clear();
    }

    fn with_capacity(size: usize) -> Self {
        KeyContainer::exact(size, 0, 0)
    }

    fn merge_capacity(a: &Self, b: &Self) -> Self {
        KeyContainer {
            slots: Vec::with_capacity(a.len() + b.len()),
            long: RowContainer::merge_capacity(&a.long, &b.long),
        }
    }

    #[inline]
    fn index(&self, index: usize) -> RowRef<'_> {
        let slot = &self.slots[index];
        let len = slot[0];
        if len != SPILLED {
            return RowRef::from_row_bytes(&slot[1..=len as usize]);
        }
        self.long.index((u64::from_le_bytes(*slot) >> 8) as usize)
    }

    fn len(&self) -> usize {
        self.slots.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_planner::Value;

    #[test]
    fn keys_short_and_long_read_back_in_order() {
        let keys: Vec<Row> = [
            vec![Value::Int(7)],
            vec![Value::Text("".into())],
            vec![Value::Int(i64::MAX)],
            vec![Value::Int(1 << 40)],
            vec![Value::Text("a key well past seven bytes".into())],
            vec![Value::Null, Value::Int(-3)],
            vec![],
            vec![Value::Int(1), Value::Int(2), Value::Int(300_000)],
        ]
        .into_iter()
        .map(Row::new)
        .collect();
        let mut c = KeyContainer::with_capacity(0);
        for k in &keys {
            c.push_own(k);
        }
        let copy = {
            let mut m = KeyContainer::merge_capacity(&c, &c);
            (0..c.len()).for_each(|i| m.push_ref(c.index(i)));
            m
        };
        assert_eq!(c.len(), keys.len());
        assert_eq!(c.long.len(), 3, "i64::MAX, the text and the three integers spill");
        for (i, k) in keys.iter().enumerate() {
            assert_eq!(c.index(i).as_bytes(), k.as_bytes(), "key {i}");
            assert_eq!(copy.index(i).as_bytes(), k.as_bytes(), "copied key {i}");
            assert_eq!(KeyContainer::into_owned(c.index(i)), *k);
        }
        c.clear();
        assert_eq!(c.len(), 0);
        c.push_into(keys[4].clone());
        assert_eq!(c.index(0).as_bytes(), keys[4].as_bytes());
    }
}
