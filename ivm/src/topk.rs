//! ORDER BY … LIMIT / OFFSET as a maintained top-k, per group of rows equal on `group`.
//!
//! A stateful operator keeps each group's rows in a B-tree ordered by their sort keys,
//! encoded as bytes (`sort_key`), and then the row bytes (a total, deterministic order).
//! Updates wait until the input frontier has passed their offset and are then applied
//! offset by offset; for each group an offset touched, the visible window (`offset ..
//! offset + limit`, by multiplicity) is compared before and after and only the difference is
//! emitted. A change that lands behind a full window is recognised from the window's last
//! key and costs one B-tree update: O(log n), plus O(offset + limit) to read the window —
//! never a rescan of the group.

use crate::delta::{Diff, Offset};
use crate::render::Coll;
use crate::sort_key::{self, SortBytes};
use differential_dataflow::consolidation::consolidate;
use differential_dataflow::AsCollection;
use sluice_planner::expr::IN_PLACE_READS;
use sluice_planner::{Row, RowRef, SortKey};
use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, HashMap};
use std::hash::{Hash, Hasher};
use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::{Exchange, ParallelizationContract};
use timely::dataflow::operators::generic::Operator;
use timely::dataflow::operators::Capability;

type Update = (Row, Offset, Diff);

/// A row's sort key followed by the row's bytes, in one buffer (inline for most rows): the
/// key is self-delimiting, so the bytes order as the key (ORDER BY's order) and then the row.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Ranked(SortBytes);

impl Ranked {
    fn new(order: &[SortKey], row: &Row) -> Ranked {
        let mut bytes = sort_key::encode(order, &row.reader(order.len() <= IN_PLACE_READS));
        bytes.extend_from_slice(row.as_bytes());
        Ranked(bytes)
    }

    /// The row, after the key.
    fn row(&self, order: &[SortKey]) -> Row {
        RowRef::from_row_bytes(&self.0[sort_key::len(order, &self.0)..]).to_row()
    }
}

/// What orders rows by the sort keys, then by the whole row (the order top-k maintains):
/// computed once per row, to sort many.
pub fn rank(order: &[SortKey], row: &Row) -> impl Ord {
    Ranked::new(order, row)
}

/// The rows of one group with their multiplicities, in order.
type Group = BTreeMap<Ranked, Diff>;

/// Rows at positions `skip .. skip + keep` (by multiplicity) of a group.
fn window(group: &Group, skip: u64, keep: u64) -> Vec<(&Ranked, Diff)> {
    let end = skip.saturating_add(keep);
    let mut out = Vec::new();
    let mut pos: u64 = 0;
    for (r, d) in group {
        if pos >= end {
            break;
        }
        let (lo, hi) = (pos, pos.saturating_add((*d).max(0) as u64));
        pos = hi;
        let (from, to) = (lo.max(skip), hi.min(end));
        if to > from {
            out.push((r, (to - from) as Diff));
        }
    }
    out
}

/// Applies one offset's changes to a group and appends the change of its window to `out`.
fn apply(
    group: &mut Group,
    changes: Vec<(Ranked, Diff)>,
    order: &[SortKey],
    (skip, keep): (u64, u64),
    out: &mut Vec<(Row, Diff)>,
) {
    let before = window(group, skip, keep);
    let full = before.iter().map(|(_, d)| *d as u64).sum::<u64>() == keep;
    // A full window that ends before every changed row stays as it is.
    let last = before.last().map(|(r, _)| *r);
    if full && last.is_some_and(|last| changes.iter().all(|(r, _)| r > last)) {
        for (r, d) in changes {
            add(group, r, d);
        }
        return;
    }
    let mut delta: Vec<(Row, Diff)> = before.into_iter().map(|(r, d)| (r.row(order), -d)).collect();
    for (r, d) in changes {
        add(group, r, d);
    }
    delta.extend(window(group, skip, keep).into_iter().map(|(r, d)| (r.row(order), d)));
    consolidate(&mut delta);
    out.append(&mut delta);
}

/// Adds `d` to a row's multiplicity, removing it at zero.
fn add(group: &mut Group, r: Ranked, d: Diff) {
    match group.entry(r) {
        Entry::Occupied(mut e) => {
            *e.get_mut() += d;
            if *e.get() == 0 {
                e.remove();
            }
        }
        Entry::Vacant(e) => {
            e.insert(d);
        }
    }
}

/// Which worker a row is exchanged to, by a fixed hash of its bytes (also what routes an
/// aggregate's group, `group_totals`).
pub(crate) fn row_hash(row: &Row) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    row.hash(&mut h);
    h.finish()
}

/// One top-k stage: keeps, per group, rows `skip .. skip + keep` of its input.
fn stage<'s, P>(input: Coll<'s>, pact: P, group: &[usize], order: &[SortKey], skip: u64, keep: u64) -> Coll<'s>
where
    P: ParallelizationContract<Offset, Vec<Update>>,
{
    let (group, order) = (group.to_vec(), order.to_vec());
    input
        .inner
        .unary_frontier::<CapacityContainerBuilder<Vec<Update>>, _, _, _>(pact, "TopK", move |_cap, _info| {
            let mut groups: HashMap<Row, Group> = HashMap::new();
            let mut pending: Vec<Update> = Vec::new();
            // The least time of pending updates (total order: one capability suffices).
            let mut cap: Option<Capability<Offset>> = None;
            let mut out: Vec<(Row, Diff)> = Vec::new();
            move |(input, frontier), output| {
                input.for_each(|c, data| {
                    if let Some(c) = c.retain_least(0) {
                        if cap.as_ref().is_none_or(|held| c.time() < held.time()) {
                            cap = Some(c);
                        }
                    }
                    pending.append(data);
                });
                let Some(held) = cap.as_ref() else { return };
                if frontier.less_equal(held.time()) {
                    return;
                }
                // Updates at times the frontier has passed are complete: apply them in order.
                pending.sort_by_key(|u| u.1);
                let ready = pending.partition_point(|u| !frontier.less_equal(&u.1));
                let mut rest = pending.split_off(ready);
                std::mem::swap(&mut rest, &mut pending);
                let mut updates = rest.into_iter().peekable();
                while let Some(&(_, time, _)) = updates.peek() {
                    let mut by_group: HashMap<Row, Vec<(Ranked, Diff)>> = HashMap::new();
                    while let Some((row, _, d)) = updates.next_if(|u| u.1 == time) {
                        by_group.entry(row.project(&group)).or_default().push((Ranked::new(&order, &row), d));
                    }
                    for (key, mut changes) in by_group {
                        consolidate(&mut changes);
                        if changes.is_empty() {
                            continue;
                        }
                        let g = groups.entry(key.clone()).or_default();
                        apply(g, changes, &order, (skip, keep), &mut out);
                        if g.is_empty() {
                            groups.remove(&key);
                        }
                    }
                    if !out.is_empty() {
                        let c = held.delayed(&time);
                        let mut session = output.session(&c);
                        for (r, d) in out.drain(..) {
                            session.give((r, time, d));
                        }
                    }
                }
                cap = pending.iter().map(|u| u.1).min().map(|t| held.delayed(&t));
            }
        })
        .as_collection()
}

/// Renders a top-k over `input`: rows `offset .. offset + limit` of each group.
pub fn render_topk<'s>(
    input: Coll<'s>,
    group: &[usize],
    order: &[SortKey],
    limit: Option<u64>,
    offset: u64,
    peers: usize,
) -> Coll<'s> {
    let Some(limit) = limit else {
        // OFFSET alone: every row but the first `offset` of each group.
        if offset == 0 {
            return input;
        }
        let first = render_topk(input.clone(), group, order, Some(offset), 0, peers);
        return input.concat(first.negate());
    };
    let keep = offset.saturating_add(limit);
    let mut input = input;
    if peers > 1 {
        // Each worker first keeps the top `offset + limit` rows per group among the rows it
        // owns, so the exchange by group moves only candidates. Rows are owned by their hash:
        // a worker's share of an unconsolidated stream may hold a row's retraction without
        // its insertion, never a share partitioned by the row itself.
        let exchange = Exchange::new(|u: &Update| row_hash(&u.0));
        input = stage(input, exchange, group, order, 0, keep);
    }
    let g = group.to_vec();
    let exchange = Exchange::new(move |u: &Update| row_hash(&u.0.project(&g)));
    stage(input, exchange, group, order, offset, limit)
}
