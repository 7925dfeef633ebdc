//! Per-group totals of an aggregate's contributions, kept in a hash table.
//!
//! Each input record contributes a difference to its group (`contribute`, scaled by the
//! record's multiplicity change). The contributions of one offset are summed per group as
//! they arrive. Once the input frontier has passed that offset, the sums are applied to the
//! groups' current totals, offset by offset in order. Each touched group's old total is
//! retracted and its new one inserted, through `finish`.
//!
//! This is what differential's `count_total` computes (and then keeps of it the totals that
//! are `present`), without its arrangement. Offsets are totally ordered and applied in order,
//! so the current totals are all the operator keeps. A change costs two hash probes instead
//! of a batcher's sort and merge, a trace walk and the trace's own merging. A total that
//! sums to zero is removed, so memory follows the groups that exist.
//!
//! A total is kept even while it is not `present`: a query built over compacted shared
//! arrangements can receive an update at an offset below the compaction frontier that was
//! not yet merged away (say, a changed sum at offset 8) before the group's rows, which
//! compaction moved to a later offset (say, 10). Only the totals at offsets the frontier has
//! reached are meaningful, and they are exact: the group's total at 8 is kept, hidden, and
//! completed at 10.

use crate::delta::{Diff, Offset};
use crate::topk::row_hash;
use differential_dataflow::difference::{Multiply, Semigroup};
use differential_dataflow::{AsCollection, ExchangeData, VecCollection};
use hashbrown::hash_map::Entry;
use hashbrown::HashMap;
use sluice_planner::Row;
use std::collections::BTreeMap;
use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::generic::Operator;
use timely::dataflow::operators::Capability;

/// Sum tables kept for reuse between offsets; a bulk load's larger ones go.
const KEEP: usize = 4096;

/// The total of each group of `input`, as `finish(group, total)` records for the totals that
/// are `present`: per offset, the old total of every group it changed retracted and the new
/// one inserted. Records are exchanged by group, so each group's total lives on one worker.
pub fn group_totals<'s, D, R, O>(
    input: VecCollection<'s, Offset, D, Diff>,
    contribute: impl Fn(&D) -> (Row, R) + Clone + 'static,
    present: fn(&R) -> bool,
    finish: impl Fn(&Row, &R) -> O + 'static,
) -> VecCollection<'s, Offset, O, Diff>
where
    D: ExchangeData,
    R: Semigroup + Multiply<Diff, Output = R> + 'static,
    O: ExchangeData,
{
    let route = contribute.clone();
    let exchange = Exchange::new(move |u: &(D, Offset, Diff)| row_hash(&route(&u.0).0));
    input
        .inner
        .unary_frontier::<CapacityContainerBuilder<Vec<(O, Offset, Diff)>>, _, _, _>(
            exchange,
            "GroupTotals",
            move |_cap, _info| {
                let mut totals: HashMap<Row, R> = HashMap::new();
                // Each offset's contributions not yet applied, summed per group.
                let mut pending: BTreeMap<Offset, HashMap<Row, R>> = BTreeMap::new();
                let mut spare: Vec<HashMap<Row, R>> = Vec::new();
                // The least offset pending (total order: one capability suffices).
                let mut cap: Option<Capability<Offset>> = None;
                move |(input, frontier), output| {
                    input.for_each(|c, data| {
                        if let Some(c) = c.retain_least(0) {
                            if cap.as_ref().is_none_or(|held| c.time() < held.time()) {
                                cap = Some(c);
                            }
                        }
                        for (d, t, diff) in data.drain(..) {
                            let (group, mut r) = contribute(&d);
                            if diff != 1 {
                                r = r.multiply(&diff);
                            }
                            let sums = pending.entry(t).or_insert_with(|| spare.pop().unwrap_or_default());
                            match sums.entry(group) {
                                Entry::Occupied(mut e) => e.get_mut().plus_equals(&r),
                                Entry::Vacant(e) => {
                                    e.insert(r);
                                }
                            }
                        }
                    });
                    let Some(held) = cap.as_ref() else { return };
                    while let Some(entry) = pending.first_entry() {
                        if frontier.less_equal(entry.key()) {
                            break;
                        }
                        let (time, mut sums) = entry.remove_entry();
                        let c = held.delayed(&time);
                        let mut session = output.session(&c);
                        for (group, d) in sums.drain() {
                            if d.is_zero() {
                                continue;
                            }
                            match totals.entry(group) {
                                Entry::Occupied(mut e) => {
                                    if present(e.get()) {
                                        session.give((finish(e.key(), e.get()), time, -1));
                                    }
                                    e.get_mut().plus_equals(&d);
                                    if e.get().is_zero() {
                                        e.remove();
                                    } else if present(e.get()) {
                                        session.give((finish(e.key(), e.get()), time, 1));
                                    }
                                }
                                Entry::Vacant(e) => {
                                    if present(&d) {
                                        session.give((finish(e.key(), &d), time, 1));
                                    }
                                    e.insert(d);
                                }
                            }
                        }
                        if sums.capacity() <= KEEP {
                            spare.push(sums);
                        }
                    }
                    cap = pending.keys().next().map(|t| held.delayed(t));
                }
            },
        )
        .as_collection()
}

#[cfg(test)]
mod tests {
    use super::*;
    use differential_dataflow::input::Input;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};
    use sluice_planner::Value;
    use std::cell::RefCell;
    use std::collections::BTreeMap;
    use std::rc::Rc;
    use timely::dataflow::operators::{Inspect, Probe};

    /// Updates (group, offset, diff) fed together, and the offset the input then advances to.
    type Round = (Vec<(i64, Offset, Diff)>, Offset);
    /// (group, count) records and their multiplicity change, per offset.
    type PerOffset = BTreeMap<Offset, BTreeMap<(i64, Diff), Diff>>;

    /// Feeds `rounds` of (group, offset, diff) updates, each round's offsets at or after the
    /// previous round's frontier, advancing the input to the round's given offset after it;
    /// returns the outputs (group, count) consolidated per offset. Only positive counts are
    /// present, as only a group with rows is.
    fn run(rounds: Vec<Round>) -> PerOffset {
        timely::execute_directly(move |worker| {
            let out = Rc::new(RefCell::new(Vec::new()));
            let sink = Rc::clone(&out);
            let (mut input, probe) = worker.dataflow::<Offset, _, _>(|scope| {
                let (input, c) = scope.new_collection::<i64, Diff>();
                let totals = group_totals(
                    c,
                    |g: &i64| (Row::new(vec![Value::Int(*g)]), 1 as Diff),
                    |n| *n > 0,
                    |g, n| match g.values()[0] {
                        Value::Int(g) => (g, *n),
                        _ => unreachable!("integer groups"),
                    },
                );
                let probe =
                    totals.inner.inspect(move |x: &((i64, Diff), Offset, Diff)| sink.borrow_mut().push(*x)).probe().0;
                (input, probe)
            });
            for (updates, advance) in rounds {
                for (g, t, d) in updates {
                    input.update_at(g, t, d);
                }
                input.advance_to(advance);
                input.flush();
                while probe.less_than(&advance) {
                    worker.step();
                }
            }
            let mut per = PerOffset::new();
            for &(rec, t, d) in out.borrow().iter() {
                *per.entry(t).or_default().entry(rec).or_default() += d;
            }
            for changes in per.values_mut() {
                changes.retain(|_, d| *d != 0);
            }
            per.retain(|_, changes| !changes.is_empty());
            per
        })
    }

    /// The same, from the groups' counts before and after each offset.
    fn expected(rounds: &[Round]) -> PerOffset {
        let mut by_time: BTreeMap<Offset, Vec<(i64, Diff)>> = BTreeMap::new();
        for (updates, _) in rounds {
            for &(g, t, d) in updates {
                by_time.entry(t).or_default().push((g, d));
            }
        }
        let mut counts: BTreeMap<i64, Diff> = BTreeMap::new();
        let mut want = PerOffset::new();
        for (t, changes) in by_time {
            let before = counts.clone();
            for (g, d) in changes {
                *counts.entry(g).or_default() += d;
            }
            counts.retain(|_, n| *n != 0);
            let mut delta: BTreeMap<(i64, Diff), Diff> = BTreeMap::new();
            for (g, n) in before.iter().filter(|(_, n)| **n > 0) {
                *delta.entry((*g, *n)).or_default() -= 1;
            }
            for (g, n) in counts.iter().filter(|(_, n)| **n > 0) {
                *delta.entry((*g, *n)).or_default() += 1;
            }
            delta.retain(|_, d| *d != 0);
            if !delta.is_empty() {
                want.insert(t, delta);
            }
        }
        want
    }

    #[test]
    fn groups_come_and_go_and_offsets_apply_in_order() {
        // Offset 3 arrives before offset 2 in the same round; group 1 empties at offset 2
        // and comes back at offset 3; group 2's changes at offset 4 cancel. Group 4's count
        // is -1 at offset 5, as compaction can leave a row's deletion before its insertion:
        // hidden until offset 6 makes it 1.
        let rounds = vec![
            (vec![(1, 1, 2), (2, 1, 1), (1, 3, 1), (1, 2, -2)], 3),
            (vec![(2, 4, 1), (2, 4, -1), (3, 4, 1), (4, 5, -1)], 6),
            (vec![(4, 6, 2)], 10),
        ];
        let got = run(rounds.clone());
        assert_eq!(got, expected(&rounds));
        assert_eq!(got[&2], BTreeMap::from([((1, 2), -1)]), "group 1 leaves");
        assert_eq!(got[&3], BTreeMap::from([((1, 1), 1)]), "and comes back with one row");
        assert_eq!(got[&4], BTreeMap::from([((3, 1), 1)]), "a cancelled change is not sent");
        assert!(!got.contains_key(&5), "a total that is not present is not sent");
        assert_eq!(got[&6], BTreeMap::from([((4, 1), 1)]));
    }

    #[test]
    fn totals_match_counts_applied_offset_by_offset() {
        let mut rng = StdRng::seed_from_u64(7);
        for _ in 0..64 {
            // Round i holds offsets 4i .. 4i + 4, in any order, and closes them all.
            let rounds: Vec<_> = (0..rng.random_range(1..6u64))
                .map(|i| {
                    let updates = (0..rng.random_range(0..40))
                        .map(|_| {
                            (rng.random_range(0..6), 4 * i + rng.random_range(0..4), [1, -1, 2][rng.random_range(0..3)])
                        })
                        .collect::<Vec<_>>();
                    (updates, 4 * i + 4)
                })
                .collect();
            assert_eq!(run(rounds.clone()), expected(&rounds), "{rounds:?}");
        }
    }
}
