//! ORDER BY … LIMIT / OFFSET as a maintained top-k, per group of rows equal on `group`.
//!
//! Hierarchical: rows are first reduced to the top `offset + limit` within small buckets
//! (chosen by a hash of the row), then buckets are merged sixteen at a time, so one change
//! re-examines O(16·k) rows per level over O(log n) levels — never the whole group.

use crate::delta::Diff;
use crate::render::Coll;
use sluice_planner::expr::sql_cmp;
use sluice_planner::row::Values;
use sluice_planner::{Row, SortKey, Value};
use std::cmp::Ordering;
use std::hash::{Hash, Hasher};

/// Bucket bits at each level; the last level (0 bits) is the whole group.
pub const LEVELS: [u32; 4] = [16, 12, 8, 4];

/// Compares two rows by the sort keys, then by the whole row (a total, deterministic order).
pub fn compare(order: &[SortKey], a: &Row, b: &Row) -> Ordering {
    if order.is_empty() {
        return a.cmp(b);
    }
    compare_values(order, &a.values(), &b.values()).then_with(|| a.cmp(b))
}

/// Compares decoded rows by the sort keys only.
fn compare_values(order: &[SortKey], av: &[Value], bv: &[Value]) -> Ordering {
    for k in order {
        let (x, y) = (&av[k.column], &bv[k.column]);
        let o = match (x.is_null(), y.is_null()) {
            (true, true) => Ordering::Equal,
            (true, false) => {
                if k.nulls_first {
                    Ordering::Less
                } else {
                    Ordering::Greater
                }
            }
            (false, true) => {
                if k.nulls_first {
                    Ordering::Greater
                } else {
                    Ordering::Less
                }
            }
            (false, false) => {
                let o = sql_cmp(x, y).unwrap_or_else(|| x.cmp(y));
                if k.desc {
                    o.reverse()
                } else {
                    o
                }
            }
        };
        if o != Ordering::Equal {
            return o;
        }
    }
    Ordering::Equal
}

fn row_hash(r: &Row) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    r.hash(&mut h);
    h.finish()
}

/// Keeps rows `skip..skip+keep` (by multiplicity) of a sorted group.
fn take(order: &[SortKey], vals: &[(&Row, Diff)], skip: u64, keep: Option<u64>, out: &mut Vec<(Row, Diff)>) {
    // Decode each row once, then sort by the keys and the row bytes.
    let mut sorted: Vec<(Values, &Row, Diff)> = vals.iter().map(|(r, d)| (r.values(), *r, *d)).collect();
    sorted.sort_by(|a, b| compare_values(order, &a.0, &b.0).then_with(|| a.1.cmp(b.1)));
    let mut pos: u64 = 0;
    let end = keep.map(|k| skip.saturating_add(k));
    for (_, row, d) in sorted {
        let d = d.max(0) as u64;
        let (lo, hi) = (pos, pos + d);
        pos = hi;
        let from = lo.max(skip);
        let to = end.map_or(hi, |e| hi.min(e));
        if to > from {
            out.push((row.clone(), (to - from) as Diff));
        }
        if end.is_some_and(|e| pos >= e) {
            break;
        }
    }
}

/// Renders a top-k over `input`.
pub fn render_topk<'s>(
    input: Coll<'s>,
    group: &[usize],
    order: &[SortKey],
    limit: Option<u64>,
    offset: u64,
) -> Coll<'s> {
    let group = group.to_vec();
    let order = order.to_vec();
    let mut current = input;
    if let Some(limit) = limit {
        // Pre-reduce within hash buckets: each keeps its own top `offset + limit`.
        let keep = offset.saturating_add(limit);
        for bits in LEVELS {
            let (g, o) = (group.clone(), order.clone());
            current = current
                .map(move |r| {
                    let mut k = r.project(&g).values().to_vec();
                    k.push(Value::UInt(row_hash(&r) & ((1u64 << bits) - 1)));
                    (Row::new(k), r)
                })
                .reduce(move |_k, vals: &[(&Row, Diff)], out: &mut Vec<(Row, Diff)>| take(&o, vals, 0, Some(keep), out))
                .map(|(_, r)| r);
        }
    }
    let (g, o) = (group, order);
    current
        .map(move |r| (r.project(&g), r))
        .reduce(move |_k, vals: &[(&Row, Diff)], out: &mut Vec<(Row, Diff)>| take(&o, vals, offset, limit, out))
        .map(|(_, r)| r)
}
