//! Inner-join planning over FROM units and a pool of conjuncts: single-unit conjuncts are
//! pushed down as filters, equi-join keys are found wherever the predicate puts them, and
//! units are joined greedily along equi-join edges so no cross product is formed where an
//! equi-join exists.

use crate::expr::{BinOp, Expr};
use crate::plan::{JoinKey, JoinKind, Plan};

/// A relation taking part in an inner join, and where its columns sit in the global layout.
pub struct Unit {
    pub plan: Plan,
    pub offset: usize,
    pub width: usize,
}

/// Joins `units` (whose columns are laid out consecutively from `units[0].offset`) under
/// `conjuncts` (over the global layout). The result's columns are in the global layout order
/// starting at `units[0].offset`.
pub fn join_units(units: Vec<Unit>, conjuncts: Vec<Expr>) -> Plan {
    let base = units.first().map_or(0, |u| u.offset);
    let unit_of = |col: usize| units.iter().position(|u| col >= u.offset && col < u.offset + u.width);
    let touches = |e: &Expr| -> Vec<usize> {
        let mut v: Vec<usize> = e.columns().into_iter().filter_map(unit_of).collect();
        v.dedup();
        v.sort_unstable();
        v.dedup();
        v
    };
    // Push single-unit conjuncts into their unit.
    let mut plans: Vec<Option<Plan>> = Vec::new();
    let mut pending: Vec<(Expr, Vec<usize>)> = Vec::new();
    let mut local: Vec<Vec<Expr>> = vec![Vec::new(); units.len()];
    for c in conjuncts {
        let t = touches(&c);
        if t.len() == 1 {
            local[t[0]].push(c);
        } else {
            pending.push((c, t));
        }
    }
    for (i, u) in units.iter().enumerate() {
        let off = u.offset;
        let preds: Vec<Expr> = local[i].iter().map(|c| c.map_columns(&|g| g - off)).collect();
        plans.push(Some(u.plan.clone().filter(Expr::and_all(preds))));
    }
    if units.is_empty() {
        return Plan::Constant { rows: vec![crate::row::Row::empty()], arity: 0 }
            .filter(Expr::and_all(pending.into_iter().map(|(c, _)| c).collect()));
    }
    // Greedy left-deep join order, starting from the first unit.
    let mut joined = vec![false; units.len()];
    joined[0] = true;
    let mut layout: Vec<usize> = (units[0].offset..units[0].offset + units[0].width).collect();
    let mut current = plans[0].take().expect("first unit");
    for _ in 1..units.len() {
        let available = |u: usize, joined: &[bool]| joined[u];
        let connects = |u: usize| {
            pending.iter().any(|(c, t)| {
                t.contains(&u)
                    && t.iter().all(|&x| x == u || available(x, &joined))
                    && split_equi(c, &|col| unit_of(col) == Some(u)).is_some()
            })
        };
        let next = (0..units.len())
            .filter(|&u| !joined[u])
            .find(|&u| connects(u))
            .unwrap_or_else(|| (0..units.len()).find(|&u| !joined[u]).expect("a unit remains"));
        joined[next] = true;
        let u = &units[next];
        let pos = |g: usize, layout: &[usize]| layout.iter().position(|&x| x == g).expect("column in layout");
        let mut keys = Vec::new();
        let mut residual = Vec::new();
        let mut rest = Vec::new();
        for (c, t) in pending.drain(..) {
            if !t.iter().all(|&x| joined[x]) {
                rest.push((c, t));
                continue;
            }
            match t.contains(&next).then(|| split_equi(&c, &|col| unit_of(col) == Some(next))).flatten() {
                Some((l, r)) => keys.push(JoinKey {
                    left: l.map_columns(&|g| pos(g, &layout)),
                    right: r.map_columns(&|g| g - u.offset),
                    null_safe: false,
                }),
                None => residual.push(c),
            }
        }
        pending = rest;
        let right = plans[next].take().expect("unit joined once");
        let mut new_layout = layout.clone();
        new_layout.extend(u.offset..u.offset + u.width);
        let residual = Expr::and_all(residual.into_iter().map(|c| c.map_columns(&|g| pos(g, &new_layout))).collect());
        current =
            Plan::Join { left: Box::new(current), right: Box::new(right), kind: JoinKind::Inner, keys, residual: None }
                .filter(residual);
        layout = new_layout;
    }
    let leftover = Expr::and_all(
        pending
            .into_iter()
            .map(|(c, _)| c.map_columns(&|g| layout.iter().position(|&x| x == g).expect("in layout")))
            .collect(),
    );
    current = current.filter(leftover);
    // Restore the global column order.
    let order: Vec<usize> =
        (0..layout.len()).map(|i| layout.iter().position(|&x| x == base + i).expect("in layout")).collect();
    current.select_columns(&order)
}

/// If `c` is `a = b` with one side only over the unit (`in_unit`) and the other side over
/// none of it, returns (other side, unit side).
pub fn split_equi(c: &Expr, in_unit: &dyn Fn(usize) -> bool) -> Option<(Expr, Expr)> {
    let Expr::Binary(BinOp::Eq, a, b) = c else { return None };
    let side = |e: &Expr| {
        let cols = e.columns();
        if cols.is_empty() {
            None
        } else if cols.iter().all(|&x| in_unit(x)) {
            Some(true)
        } else if cols.iter().all(|&x| !in_unit(x)) {
            Some(false)
        } else {
            None
        }
    };
    match (side(a), side(b)) {
        (Some(false), Some(true)) => Some(((**a).clone(), (**b).clone())),
        (Some(true), Some(false)) => Some(((**b).clone(), (**a).clone())),
        _ => None,
    }
}
