//! Pre-aggregation: sums the differences of equal (record, time) updates among everything an
//! operator receives in one activation, before they reach an arrangement's batcher.
//!
//! An aggregate's input has one update per changed row, but only as many distinct
//! (group, offset) pairs as the changed groups of each transaction. The batcher would sort
//! and merge every one of those updates (each carrying its aggregate difference); summing them
//! in a hash table first hands it one update per pair instead. Nothing is held between
//! activations, so it adds no state and no latency.

use crate::delta::Offset;
use differential_dataflow::difference::Semigroup;
use differential_dataflow::{AsCollection, VecCollection};
use hashbrown::hash_map::Entry;
use hashbrown::HashMap;
use std::hash::Hash;
use timely::dataflow::channels::pact::Pipeline;
use timely::dataflow::operators::generic::operator::Operator;
use timely::dataflow::operators::Capability;

/// Entries the table keeps room for between activations; a bulk load's larger table goes.
const KEEP: usize = 4096;

/// `c` with the differences of equal (record, time) updates of each activation summed, and
/// the updates whose sum is zero left out.
pub fn pre_aggregate<'s, D, R>(c: VecCollection<'s, Offset, D, R>) -> VecCollection<'s, Offset, D, R>
where
    D: differential_dataflow::Data + Hash,
    R: Semigroup + 'static,
{
    c.inner
        .unary(Pipeline, "PreAggregate", |_cap, _info| {
            let mut sums: HashMap<(D, Offset), R> = HashMap::new();
            move |input, output| {
                // Times are totally ordered: the least time received covers every update. (A
                // message with an empty stamp would have no time to send under; the operators
                // upstream, differential's maps and joins, always send with one.)
                let mut least: Option<Capability<Offset>> = None;
                input.for_each(|cap, data| {
                    if let Some(c) = cap.retain_least(0) {
                        if least.as_ref().is_none_or(|held| c.time() < held.time()) {
                            least = Some(c);
                        }
                    }
                    for (d, t, r) in data.drain(..) {
                        match sums.entry((d, t)) {
                            Entry::Occupied(mut e) => e.get_mut().plus_equals(&r),
                            Entry::Vacant(e) => {
                                e.insert(r);
                            }
                        }
                    }
                });
                if let Some(cap) = least {
                    let mut session = output.session(&cap);
                    for ((d, t), r) in sums.drain() {
                        if !r.is_zero() {
                            session.give((d, t, r));
                        }
                    }
                }
                sums.shrink_to(KEEP);
            }
        })
        .as_collection()
}

#[cfg(test)]
mod tests {
    use super::*;
    use differential_dataflow::input::Input;
    use std::cell::RefCell;
    use std::rc::Rc;
    use timely::dataflow::operators::{Inspect, Probe};

    /// Feeds `updates` at their times (all sent before the operator runs) and returns what
    /// comes out, sorted.
    fn run(updates: Vec<(u32, Offset, i64)>) -> Vec<(u32, Offset, i64)> {
        timely::execute_directly(move |worker| {
            let out = Rc::new(RefCell::new(Vec::new()));
            let sink = Rc::clone(&out);
            let (mut input, probe) = worker.dataflow::<Offset, _, _>(|scope| {
                let (input, c) = scope.new_collection::<u32, i64>();
                let probe =
                    pre_aggregate(c).inner.inspect(move |x: &(u32, Offset, i64)| sink.borrow_mut().push(*x)).probe().0;
                (input, probe)
            });
            for (d, t, r) in updates {
                input.update_at(d, t, r);
            }
            input.advance_to(100);
            input.flush();
            while probe.less_than(&100) {
                worker.step();
            }
            let mut v = out.borrow().clone();
            v.sort();
            v
        })
    }

    #[test]
    fn sums_equal_record_and_time_and_drops_zeros() {
        let got = run(vec![(1, 5, 1), (2, 5, 1), (1, 5, 2), (1, 6, 1), (3, 7, 1), (3, 7, -1), (2, 5, -3)]);
        assert_eq!(got, vec![(1, 5, 3), (1, 6, 1), (2, 5, -2)]);
    }

    #[test]
    fn keeps_updates_that_differ_in_time() {
        let updates: Vec<(u32, Offset, i64)> = (0..10_000).map(|i| (i % 7, i as Offset % 3, 1)).collect();
        let mut want: Vec<(u32, Offset, i64)> = Vec::new();
        for d in 0..7 {
            for t in 0..3 {
                let n = (0..10_000u64).filter(|i| i % 7 == d as u64 && i % 3 == t).count() as i64;
                want.push((d, t, n));
            }
        }
        assert_eq!(run(updates), want);
    }
}
