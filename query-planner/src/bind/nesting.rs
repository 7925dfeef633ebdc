//! Bounds how deeply parsed SQL nests, so that every later walk over it — binding, cloning,
//! rendering, evaluating, dropping — is bounded too, whatever a client sends.
//!
//! sqlparser limits its own recursion, but builds a chain of infix operators (`a OR b OR …`,
//! `1 + 1 + …`) and of set operations (`… UNION … UNION …`) in a loop, so a statement of a few
//! kilobytes can hold a tree thousands of levels deep. Here one pass over the tree counts the
//! nesting of expressions, queries and set operations. Long `AND` / `OR` chains are rebuilt as
//! balanced trees first (both are associative and the terms keep their order, so the meaning is
//! unchanged), so generated SQL with thousands of alternatives still plans. A tree nested past
//! [`MAX_NESTING`] is refused, and taken apart piece by piece so that even dropping it does
//! not recurse past the bound.

use crate::error::{PlanError, Result};
use sqlparser::ast::{self, BinaryOperator, Expr, Query, SetExpr, VisitMut, VisitorMut};
use std::ops::ControlFlow;

/// How deeply expressions, subqueries and set operations may nest in one statement (SQLite's
/// own expression depth limit is 1000).
pub const MAX_NESTING: usize = 1000;

/// AND / OR chains longer than this are rebuilt balanced.
const BALANCE_FROM: usize = 16;

/// Balances long AND / OR chains in `statements` and refuses them when nested past
/// [`MAX_NESTING`]; a refused tree is taken apart here without deep recursion.
pub fn bound(statements: &mut Vec<ast::Statement>) -> Result<()> {
    let mut walk = Walk { depth: 0, added: Vec::new(), pieces: Vec::new(), balance: true };
    let _ = statements.visit(&mut walk);
    if walk.pieces.is_empty() {
        return Ok(());
    }
    walk.balance = false;
    // Whatever lies past the bound was cut out above; the rest is dropped by the caller and is
    // now shallow. The pieces are cut the same way until each one is shallow enough to drop.
    while let Some(piece) = walk.pieces.pop() {
        walk.depth = 0;
        match piece {
            Piece::Expr(mut e) => {
                let _ = e.visit(&mut walk);
            }
            Piece::Set(set) => {
                let mut sets = vec![set];
                while let Some(set) = sets.pop() {
                    match *set {
                        SetExpr::SetOperation { left, right, .. } => sets.extend([left, right]),
                        mut other => {
                            let _ = other.visit(&mut walk);
                        }
                    }
                }
            }
        }
    }
    Err(PlanError::new(format!(
        "the statement nests too deeply: more than {MAX_NESTING} levels of expressions, subqueries \
         and set operations"
    )))
}

/// A part of a tree cut out past the bound, to be taken apart on its own.
enum Piece {
    Expr(Box<Expr>),
    Set(Box<SetExpr>),
}

struct Walk {
    /// Levels of nesting above the node being visited.
    depth: usize,
    /// The levels each query being visited added, to take off again when it is left.
    added: Vec<usize>,
    pieces: Vec<Piece>,
    /// Whether AND / OR chains are balanced (not while taking a refused tree apart).
    balance: bool,
}

impl VisitorMut for Walk {
    type Break = ();

    fn pre_visit_expr(&mut self, e: &mut Expr) -> ControlFlow<()> {
        if self.balance {
            balance(e);
        }
        self.depth += 1;
        if self.depth > MAX_NESTING {
            let cut = std::mem::replace(e, leaf());
            self.pieces.push(Piece::Expr(Box::new(cut)));
        }
        ControlFlow::Continue(())
    }

    fn post_visit_expr(&mut self, _: &mut Expr) -> ControlFlow<()> {
        self.depth -= 1;
        ControlFlow::Continue(())
    }

    fn pre_visit_query(&mut self, q: &mut Query) -> ControlFlow<()> {
        let levels = 1 + set_operation_depth(&q.body);
        self.depth += levels;
        self.added.push(levels);
        if self.depth > MAX_NESTING {
            let empty = SetExpr::Values(ast::Values { explicit_row: false, value_keyword: false, rows: Vec::new() });
            let cut = std::mem::replace(&mut q.body, Box::new(empty));
            self.pieces.push(Piece::Set(cut));
        }
        ControlFlow::Continue(())
    }

    fn post_visit_query(&mut self, _: &mut Query) -> ControlFlow<()> {
        self.depth -= self.added.pop().unwrap_or(0);
        ControlFlow::Continue(())
    }
}

/// What a cut-out expression leaves in its place.
fn leaf() -> Expr {
    Expr::Value(ast::Value::Null.into())
}

/// How deeply set operations nest in a query body, counted without recursion.
fn set_operation_depth(body: &SetExpr) -> usize {
    let (mut deepest, mut stack) = (0, vec![(body, 0)]);
    while let Some((set, depth)) = stack.pop() {
        deepest = deepest.max(depth);
        if let SetExpr::SetOperation { left, right, .. } = set {
            stack.push((left, depth + 1));
            stack.push((right, depth + 1));
        }
    }
    deepest
}

/// Rebuilds a long left-deep `a AND b AND c …` (or OR) chain as a balanced tree of the same
/// terms in the same order.
fn balance(e: &mut Expr) {
    let op = match e {
        Expr::BinaryOp { op: op @ (BinaryOperator::And | BinaryOperator::Or), .. } => op.clone(),
        _ => return,
    };
    let mut length = 1;
    let mut at = &*e;
    while let Expr::BinaryOp { left, op: o, .. } = at {
        if *o != op {
            break;
        }
        length += 1;
        at = left;
    }
    if length < BALANCE_FROM {
        return;
    }
    let mut terms = Vec::with_capacity(length);
    let mut rest = std::mem::replace(e, leaf());
    loop {
        match rest {
            Expr::BinaryOp { left, op: o, right } if o == op => {
                terms.push(*right);
                rest = *left;
            }
            first => {
                terms.push(first);
                break;
            }
        }
    }
    terms.reverse();
    *e = balanced(terms, &op);
}

/// `terms` joined by `op` as a tree of depth log2 of their number.
fn balanced(mut terms: Vec<Expr>, op: &BinaryOperator) -> Expr {
    if terms.len() == 1 {
        return terms.pop().expect("one term");
    }
    let right = terms.split_off(terms.len() / 2);
    Expr::BinaryOp { left: Box::new(balanced(terms, op)), op: op.clone(), right: Box::new(balanced(right, op)) }
}
