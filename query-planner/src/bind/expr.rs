//! Binding SQL expressions to typed `Expr`s: name resolution, type checking, aggregate calls
//! and subqueries (recorded as pending, to be attached to the relation by the select binder).

use super::scope::{Outer, Scope};
use crate::error::{PlanError, Result};
use crate::expr::{BinOp, Expr, Func};
use crate::plan::{AggCall, AggFunc};
use crate::types::{DataType, Value};
use sqlparser::ast::{self, Spanned};
use std::cell::RefCell;
use std::sync::Arc;

/// Column index standing for the i-th aggregate call until the aggregate is planned.
pub const AGG_BASE: usize = 1 << 48;
/// Column index standing for the i-th pending subquery until it is attached.
pub const SUBQUERY_BASE: usize = 1 << 50;

/// What a pending subquery computes.
#[derive(Clone, Debug)]
pub enum SubqueryKind {
    Exists,
    /// `expr IN (subquery)`, with `expr` bound in the enclosing scope.
    In(Expr),
    Scalar,
}

/// A subquery met inside an expression, to be planned and joined to the enclosing relation.
#[derive(Clone, Debug)]
pub struct PendingSubquery {
    pub kind: SubqueryKind,
    pub query: ast::Query,
}

/// What an expression may contain where it is being bound.
pub struct ExprCtx<'a> {
    pub scope: &'a Scope,
    pub outer: Option<&'a Outer<'a>>,
    /// Where aggregate calls are allowed, they are collected here.
    pub aggs: Option<&'a RefCell<Vec<AggCall>>>,
    /// Where subqueries are allowed, they are collected here.
    pub subqueries: Option<&'a RefCell<Vec<PendingSubquery>>>,
    /// The planner, to type scalar subqueries.
    pub planner: &'a super::Planner<'a>,
    /// Name of the clause, for error messages ("WHERE", "ON", …).
    pub clause: &'static str,
}

impl ExprCtx<'_> {
    /// Binds an expression, returning it with its type.
    #[recursive::recursive]
    pub fn bind(&self, e: &ast::Expr) -> Result<(Expr, DataType)> {
        self.bind_inner(e).map_err(|err| err.or_at(e.span()))
    }

    /// A second copy of a bound operand (BETWEEN, IS DISTINCT FROM and a simple CASE read
    /// theirs more than once), counted against the planner's budget: nested, such copies
    /// would otherwise grow exponentially with the SQL's length.
    fn copy(&self, x: &Expr) -> Result<Expr> {
        self.planner.count_copied(x.size())?;
        Ok(x.clone())
    }

    /// Binds a boolean-valued expression (a condition).
    pub fn bind_condition(&self, e: &ast::Expr) -> Result<Expr> {
        let (x, t) = self.bind(e)?;
        if !matches!(t, DataType::Bool | DataType::Null) && !t.is_numeric() {
            return Err(PlanError::at(format!("{} condition must be boolean, found {t}", self.clause), e.span()));
        }
        Ok(x)
    }

    fn bind_inner(&self, e: &ast::Expr) -> Result<(Expr, DataType)> {
        use ast::Expr as A;
        match e {
            A::Identifier(id) => self.column(None, &id.value, e),
            A::CompoundIdentifier(parts) => match parts.as_slice() {
                [q, c] => self.column(Some(&q.value), &c.value, e),
                _ => Err(PlanError::at(format!("unsupported column reference {e}"), e.span())),
            },
            A::Nested(inner) => self.bind(inner),
            A::Value(v) => match &v.value {
                ast::Value::Placeholder(p) if let Some(value) = self.planner.param(p) => {
                    Ok((Expr::Literal(value.clone()), value.data_type()))
                }
                other => literal(other).map_err(|m| PlanError::at(m, e.span())),
            },
            A::UnaryOp { op, expr } => {
                let (x, t) = self.bind(expr)?;
                match op {
                    ast::UnaryOperator::Not => {
                        check_bool(t, "NOT", e)?;
                        Ok((Expr::Not(Box::new(x)), DataType::Bool))
                    }
                    ast::UnaryOperator::Minus => {
                        check_numeric(t, "unary -", e)?;
                        if let Expr::Literal(v) = &x {
                            let neg = Expr::Neg(Box::new(Expr::Literal(v.clone()))).eval(&[]);
                            return Ok((
                                Expr::Literal(neg.clone()),
                                if t == DataType::UInt { neg.data_type() } else { t },
                            ));
                        }
                        Ok((Expr::Neg(Box::new(x)), if t == DataType::UInt { DataType::Int } else { t }))
                    }
                    ast::UnaryOperator::Plus => {
                        check_numeric(t, "unary +", e)?;
                        Ok((x, t))
                    }
                    other => Err(PlanError::at(format!("unsupported operator {other}"), e.span())),
                }
            }
            A::BinaryOp { left, op, right } => self.binary(left, op, right, e),
            A::IsNull(x) => Ok((Expr::IsNull(Box::new(self.bind(x)?.0)), DataType::Bool)),
            A::IsNotNull(x) => Ok((Expr::Not(Box::new(Expr::IsNull(Box::new(self.bind(x)?.0)))), DataType::Bool)),
            A::IsTrue(x) | A::IsFalse(x) | A::IsNotTrue(x) | A::IsNotFalse(x) => {
                let (b, t) = self.bind(x)?;
                check_bool(t, "IS TRUE / IS FALSE", e)?;
                let want = matches!(e, A::IsTrue(_) | A::IsNotTrue(_));
                let is = Expr::Func(
                    Func::Coalesce,
                    vec![
                        Expr::binary(
                            BinOp::Eq,
                            Expr::Cast(Box::new(b), DataType::Bool),
                            Expr::Literal(Value::Bool(want)),
                        ),
                        Expr::Literal(Value::Bool(false)),
                    ],
                );
                let negate = matches!(e, A::IsNotTrue(_) | A::IsNotFalse(_));
                Ok((if negate { Expr::Not(Box::new(is)) } else { is }, DataType::Bool))
            }
            A::IsDistinctFrom(a, b) | A::IsNotDistinctFrom(a, b) => {
                let (x, tx) = self.bind(a)?;
                let (y, ty) = self.bind(b)?;
                comparable(tx, ty, e)?;
                let both_null = Expr::binary(
                    BinOp::And,
                    Expr::IsNull(Box::new(self.copy(&x)?)),
                    Expr::IsNull(Box::new(self.copy(&y)?)),
                );
                let equal =
                    Expr::Func(Func::Coalesce, vec![Expr::binary(BinOp::Eq, x, y), Expr::Literal(Value::Bool(false))]);
                let same = Expr::binary(BinOp::Or, both_null, equal);
                let out = if matches!(e, A::IsDistinctFrom(..)) { Expr::Not(Box::new(same)) } else { same };
                Ok((out, DataType::Bool))
            }
            A::Between { expr, negated, low, high } => {
                let (x, tx) = self.bind(expr)?;
                let (lo, tl) = self.bind(low)?;
                let (hi, th) = self.bind(high)?;
                comparable(tx, tl, e)?;
                comparable(tx, th, e)?;
                let b = Expr::binary(
                    BinOp::And,
                    Expr::binary(BinOp::GtEq, self.copy(&x)?, lo),
                    Expr::binary(BinOp::LtEq, x, hi),
                );
                Ok((if *negated { Expr::Not(Box::new(b)) } else { b }, DataType::Bool))
            }
            A::In { expr, target, negated, .. } => {
                let (x, tx) = self.bind(expr)?;
                let bound = match target {
                    ast::InTarget::List(list) => {
                        let mut items = Vec::with_capacity(list.len());
                        for item in list {
                            let (y, ty) = self.bind(item)?;
                            comparable(tx, ty, item)?;
                            items.push(y);
                        }
                        Expr::InList(Box::new(x), items)
                    }
                    ast::InTarget::Subquery(q) => self.subquery(SubqueryKind::In(x), q, e)?,
                    _ => return Err(PlanError::at("unsupported IN target", e.span())),
                };
                Ok((if *negated { Expr::Not(Box::new(bound)) } else { bound }, DataType::Bool))
            }
            A::Exists { subquery, negated } => {
                let x = self.subquery(SubqueryKind::Exists, subquery, e)?;
                Ok((if *negated { Expr::Not(Box::new(x)) } else { x }, DataType::Bool))
            }
            A::Subquery(q) => {
                let ty = self.planner.scalar_subquery_type(q, self.scope, self.outer)?;
                Ok((self.subquery(SubqueryKind::Scalar, q, e)?, ty))
            }
            A::Like { negated, any: false, expr, pattern, escape_char } => {
                self.like(*negated, expr, pattern, escape_char.as_deref(), e)
            }
            A::Case { operand, conditions, else_result, .. } => {
                self.case(operand.as_deref(), conditions, else_result.as_deref())
            }
            A::Cast { expr, data_type, .. } => {
                let (x, _) = self.bind(expr)?;
                let t = crate::catalog::sql_type(data_type).map_err(|err| err.or_at(e.span()))?;
                Ok((Expr::Cast(Box::new(x), t), t))
            }
            A::Function(f) => self.function(f, e),
            A::Substring { expr, substring_from, substring_for, .. } => {
                let mut args = vec![self.bind(expr)?.0];
                args.push(match substring_from {
                    Some(f) => self.bind(f)?.0,
                    None => Expr::Literal(Value::Int(1)),
                });
                if let Some(f) = substring_for {
                    args.push(self.bind(f)?.0);
                }
                Ok((Expr::Func(Func::Substr, args), DataType::Text))
            }
            A::Trim { expr, trim_where, trim_what: None, trim_characters: None } => {
                let x = self.bind(expr)?.0;
                let f = match trim_where {
                    Some(ast::TrimWhereField::Leading) => Func::LTrim,
                    Some(ast::TrimWhereField::Trailing) => Func::RTrim,
                    _ => Func::Trim,
                };
                Ok((Expr::Func(f, vec![x]), DataType::Text))
            }
            other => Err(PlanError::at(format!("unsupported expression {other}"), e.span())),
        }
    }

    fn column(&self, qualifier: Option<&str>, name: &str, e: &ast::Expr) -> Result<(Expr, DataType)> {
        if let Some(i) = self.scope.resolve(qualifier, name).map_err(|err| err.or_at(e.span()))? {
            return Ok((Expr::Column(i), self.scope.cols[i].ty));
        }
        if let Some(outer) = self.outer {
            // A reference into an enclosing query: recorded by `outer`, and bound as a typed
            // NULL here. This only happens in the first, discovery pass over a correlated
            // subquery, whose plan is discarded; the real pass reads the decorrelation prefix.
            if let Some(t) = outer.resolve(qualifier, name).map_err(|err| err.or_at(e.span()))? {
                return Ok((Expr::Literal(Value::Null), t));
            }
        }
        let shown = qualifier.map_or(name.to_string(), |q| format!("{q}.{name}"));
        if let Some(q) = qualifier {
            if !self.scope.has_qualifier(q) {
                return Err(PlanError::at(format!("unknown table or alias {q} in {shown}"), e.span()));
            }
        }
        Err(PlanError::at(format!("unknown column {shown}"), e.span()))
    }

    fn subquery(&self, kind: SubqueryKind, q: &ast::Query, e: &ast::Expr) -> Result<Expr> {
        let Some(subs) = self.subqueries else {
            return Err(PlanError::at(format!("subqueries are not supported in {}", self.clause), e.span()));
        };
        let mut subs = subs.borrow_mut();
        subs.push(PendingSubquery { kind, query: q.clone() });
        Ok(Expr::Column(SUBQUERY_BASE + subs.len() - 1))
    }

    fn binary(
        &self,
        left: &ast::Expr,
        op: &ast::BinaryOperator,
        right: &ast::Expr,
        e: &ast::Expr,
    ) -> Result<(Expr, DataType)> {
        use ast::BinaryOperator as O;
        let (a, ta) = self.bind(left)?;
        let (b, tb) = self.bind(right)?;
        let op = match op {
            O::And => BinOp::And,
            O::Or => BinOp::Or,
            O::Eq => BinOp::Eq,
            O::NotEq => BinOp::NotEq,
            O::Lt => BinOp::Lt,
            O::LtEq => BinOp::LtEq,
            O::Gt => BinOp::Gt,
            O::GtEq => BinOp::GtEq,
            O::Plus => BinOp::Add,
            O::Minus => BinOp::Sub,
            O::Multiply => BinOp::Mul,
            O::Divide => BinOp::Div,
            O::Modulo => BinOp::Mod,
            O::StringConcat => BinOp::Concat,
            other => return Err(PlanError::at(format!("unsupported operator {other}"), e.span())),
        };
        let ty = match op {
            BinOp::And | BinOp::Or => {
                check_bool(ta, "AND / OR", left)?;
                check_bool(tb, "AND / OR", right)?;
                DataType::Bool
            }
            BinOp::Concat => DataType::Text,
            _ if op.is_comparison() => {
                comparable(ta, tb, e)?;
                DataType::Bool
            }
            _ => {
                check_numeric(ta, "arithmetic", left)?;
                check_numeric(tb, "arithmetic", right)?;
                numeric_result(ta, tb)
            }
        };
        let x = Expr::binary(op, a, b);
        // Fold constant arithmetic so that e.g. `-1 * 2` is a literal.
        if let Expr::Binary(_, l, r) = &x {
            if l.is_literal() && r.is_literal() && op.is_arithmetic() {
                return Ok((Expr::Literal(x.eval(&[])), ty));
            }
        }
        Ok((x, ty))
    }

    fn like(
        &self,
        negated: bool,
        expr: &ast::Expr,
        pattern: &ast::Expr,
        escape: Option<&ast::Expr>,
        e: &ast::Expr,
    ) -> Result<(Expr, DataType)> {
        let (x, tx) = self.bind(expr)?;
        let (p, tp) = self.bind(pattern)?;
        for t in [tx, tp] {
            if !matches!(t, DataType::Text | DataType::Null) {
                return Err(PlanError::at(format!("LIKE needs TEXT operands, found {t}"), e.span()));
            }
        }
        let escape = match escape {
            None => None,
            Some(ast::Expr::Value(v)) => match &v.value {
                ast::Value::SingleQuotedString(s) if s.chars().count() == 1 => s.chars().next(),
                _ => return Err(PlanError::at("ESCAPE must be a single character", e.span())),
            },
            Some(_) => return Err(PlanError::at("ESCAPE must be a single character", e.span())),
        };
        let l = Expr::Like { expr: Box::new(x), pattern: Box::new(p), escape };
        Ok((if negated { Expr::Not(Box::new(l)) } else { l }, DataType::Bool))
    }

    fn case(
        &self,
        operand: Option<&ast::Expr>,
        conditions: &[ast::CaseWhen],
        else_result: Option<&ast::Expr>,
    ) -> Result<(Expr, DataType)> {
        let operand = operand.map(|o| self.bind(o)).transpose()?;
        let mut branches = Vec::new();
        let mut ty = DataType::Null;
        for w in conditions {
            let cond = match &operand {
                Some((x, tx)) => {
                    let (v, tv) = self.bind(&w.condition)?;
                    comparable(*tx, tv, &w.condition)?;
                    Expr::binary(BinOp::Eq, self.copy(x)?, v)
                }
                None => self.bind_condition(&w.condition)?,
            };
            let (r, tr) = self.bind(&w.result)?;
            ty = unify(ty, tr).map_err(|m| PlanError::at(m, w.result.span()))?;
            branches.push((cond, r));
        }
        let else_ = match else_result {
            Some(x) => {
                let (r, tr) = self.bind(x)?;
                ty = unify(ty, tr).map_err(|m| PlanError::at(m, x.span()))?;
                r
            }
            None => Expr::Literal(Value::Null),
        };
        Ok((Expr::Case { branches, else_: Box::new(else_) }, ty))
    }

    fn function(&self, f: &ast::Function, e: &ast::Expr) -> Result<(Expr, DataType)> {
        let name = f.name.to_string().to_ascii_lowercase();
        if f.over.is_some() {
            return Err(PlanError::at(format!("window function {name} is not supported"), e.span()));
        }
        let (args, distinct, star) = match &f.args {
            ast::FunctionArguments::None => (vec![], false, false),
            ast::FunctionArguments::List(list) => {
                let distinct = matches!(list.duplicate_treatment, Some(ast::DuplicateTreatment::Distinct));
                let mut args = Vec::new();
                let mut star = false;
                for a in &list.args {
                    match a {
                        ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(x)) => args.push(x.clone()),
                        ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Wildcard) => star = true,
                        _ => return Err(PlanError::at(format!("unsupported argument in {name}"), e.span())),
                    }
                }
                (args, distinct, star)
            }
            ast::FunctionArguments::Subquery(_) => {
                return Err(PlanError::at(format!("unsupported subquery argument in {name}"), e.span()));
            }
        };
        let agg = match name.as_str() {
            "count" if star => Some(AggFunc::CountStar),
            "count" => Some(AggFunc::Count),
            "sum" => Some(AggFunc::Sum),
            "avg" => Some(AggFunc::Avg),
            "min" | "max" if args.len() == 1 => Some(if name == "min" { AggFunc::Min } else { AggFunc::Max }),
            _ => None,
        };
        if let Some(func) = agg {
            return self.aggregate(func, &args, distinct, &name, e);
        }
        if star || distinct {
            return Err(PlanError::at(format!("unsupported use of * or DISTINCT in {name}"), e.span()));
        }
        let bound: Vec<(Expr, DataType)> = args.iter().map(|a| self.bind(a)).collect::<Result<_>>()?;
        let arity = |lo: usize, hi: usize| -> Result<()> {
            if bound.len() < lo || bound.len() > hi {
                return Err(PlanError::at(format!("wrong number of arguments to {name}"), e.span()));
            }
            Ok(())
        };
        let exprs: Vec<Expr> = bound.iter().map(|(x, _)| x.clone()).collect();
        let (func, ty) = match name.as_str() {
            "coalesce" | "ifnull" => {
                arity(if name == "ifnull" { 2 } else { 1 }, if name == "ifnull" { 2 } else { usize::MAX })?;
                let mut ty = DataType::Null;
                for (_, t) in &bound {
                    ty = unify(ty, *t).map_err(|m| PlanError::at(m, e.span()))?;
                }
                (Func::Coalesce, ty)
            }
            "nullif" => {
                arity(2, 2)?;
                comparable(bound[0].1, bound[1].1, e)?;
                (Func::NullIf, bound[0].1)
            }
            "abs" => {
                arity(1, 1)?;
                check_numeric(bound[0].1, "abs", e)?;
                (Func::Abs, bound[0].1)
            }
            "sign" => {
                arity(1, 1)?;
                check_numeric(bound[0].1, "sign", e)?;
                (Func::Sign, DataType::Int)
            }
            "length" | "char_length" => {
                arity(1, 1)?;
                (Func::Length, DataType::Int)
            }
            "upper" => (arity(1, 1).map(|_| Func::Upper)?, DataType::Text),
            "lower" => (arity(1, 1).map(|_| Func::Lower)?, DataType::Text),
            "trim" => (arity(1, 1).map(|_| Func::Trim)?, DataType::Text),
            "ltrim" => (arity(1, 1).map(|_| Func::LTrim)?, DataType::Text),
            "rtrim" => (arity(1, 1).map(|_| Func::RTrim)?, DataType::Text),
            "replace" => (arity(3, 3).map(|_| Func::Replace)?, DataType::Text),
            "instr" => (arity(2, 2).map(|_| Func::Instr)?, DataType::Int),
            "substr" | "substring" => {
                arity(2, 3)?;
                (Func::Substr, DataType::Text)
            }
            "round" => {
                arity(1, 2)?;
                check_numeric(bound[0].1, "round", e)?;
                (Func::Round, DataType::Real)
            }
            "min" | "max" => {
                arity(2, usize::MAX)?;
                let mut ty = DataType::Null;
                for (_, t) in &bound {
                    ty = unify(ty, *t).map_err(|m| PlanError::at(m, e.span()))?;
                }
                (if name == "min" { Func::Least } else { Func::Greatest }, ty)
            }
            _ => return Err(PlanError::at(format!("unknown function {name}"), e.span())),
        };
        Ok((Expr::Func(func, exprs), ty))
    }

    fn aggregate(
        &self,
        func: AggFunc,
        args: &[ast::Expr],
        distinct: bool,
        name: &str,
        e: &ast::Expr,
    ) -> Result<(Expr, DataType)> {
        let Some(aggs) = self.aggs else {
            return Err(PlanError::at(
                format!("aggregate function {name} is not allowed in {}", self.clause),
                e.span(),
            ));
        };
        let (arg, arg_ty) = match (func, args) {
            (AggFunc::CountStar, []) => (Expr::Literal(Value::Null), DataType::Null),
            (_, [a]) => {
                // Aggregate arguments may not themselves contain aggregates or subqueries.
                let inner = ExprCtx { aggs: None, subqueries: None, clause: "aggregate arguments", ..*self };
                inner.bind(a)?
            }
            _ => return Err(PlanError::at(format!("wrong number of arguments to {name}"), e.span())),
        };
        let ty = match func {
            AggFunc::CountStar | AggFunc::Count => DataType::Int,
            AggFunc::Sum => {
                check_numeric(arg_ty, name, e)?;
                if arg_ty == DataType::Real {
                    DataType::Real
                } else {
                    DataType::Int
                }
            }
            AggFunc::Avg => {
                check_numeric(arg_ty, name, e)?;
                DataType::Real
            }
            AggFunc::Min | AggFunc::Max => arg_ty,
        };
        let call = AggCall { func, arg, distinct: distinct && func != AggFunc::CountStar, ty };
        let mut aggs = aggs.borrow_mut();
        let idx = match aggs.iter().position(|c| *c == call) {
            Some(i) => i,
            None => {
                aggs.push(call);
                aggs.len() - 1
            }
        };
        Ok((Expr::Column(AGG_BASE + idx), ty))
    }
}

/// The typed value of a SQL literal.
pub fn literal(v: &ast::Value) -> std::result::Result<(Expr, DataType), String> {
    let value = match v {
        ast::Value::Number(s, _) => parse_number(s)?,
        ast::Value::SingleQuotedString(s) => Value::Text(Arc::from(s.as_str())),
        ast::Value::Boolean(b) => Value::Bool(*b),
        ast::Value::Null => Value::Null,
        ast::Value::HexStringLiteral(h) => {
            let bytes = (0..h.len())
                .step_by(2)
                .map(|i| h.get(i..i + 2).and_then(|x| u8::from_str_radix(x, 16).ok()))
                .collect::<Option<Vec<u8>>>()
                .ok_or_else(|| format!("bad hex literal X'{h}'"))?;
            Value::Bytes(Arc::from(bytes))
        }
        ast::Value::Placeholder(p) => return Err(format!("unbound parameter {p}")),
        other => return Err(format!("unsupported literal {other}")),
    };
    let ty = value.data_type();
    Ok((Expr::Literal(value), ty))
}

/// Parses a numeric literal: integers as INTEGER (or UNSIGNED past i64), others as REAL.
fn parse_number(s: &str) -> std::result::Result<Value, String> {
    if let Ok(i) = s.parse::<i64>() {
        return Ok(Value::Int(i));
    }
    if let Ok(u) = s.parse::<u64>() {
        return Ok(Value::UInt(u));
    }
    s.parse::<f64>().map(Value::Real).map_err(|_| format!("bad number {s}"))
}

fn check_bool(t: DataType, what: &str, e: &ast::Expr) -> Result<()> {
    if matches!(t, DataType::Bool | DataType::Null) || t.is_numeric() {
        Ok(())
    } else {
        Err(PlanError::at(format!("{what} needs a boolean operand, found {t}"), e.span()))
    }
}

fn check_numeric(t: DataType, what: &str, e: &ast::Expr) -> Result<()> {
    if t.is_numeric() || t == DataType::Null {
        Ok(())
    } else {
        Err(PlanError::at(format!("{what} needs a numeric operand, found {t}"), e.span()))
    }
}

fn comparable(a: DataType, b: DataType, e: &ast::Expr) -> Result<()> {
    let ok = a == b
        || a == DataType::Null
        || b == DataType::Null
        || (a.is_numeric() && b.is_numeric())
        || (a == DataType::Bool && b.is_numeric())
        || (b == DataType::Bool && a.is_numeric());
    if ok {
        Ok(())
    } else {
        Err(PlanError::at(format!("cannot compare {a} with {b}"), e.span()))
    }
}

/// Result type of arithmetic on two numeric types.
pub fn numeric_result(a: DataType, b: DataType) -> DataType {
    match (a, b) {
        (DataType::Real, _) | (_, DataType::Real) => DataType::Real,
        (DataType::UInt, DataType::UInt) => DataType::UInt,
        (DataType::Null, DataType::Null) => DataType::Null,
        (DataType::UInt, DataType::Null) | (DataType::Null, DataType::UInt) => DataType::UInt,
        _ => DataType::Int,
    }
}

/// The common type of two branches (CASE, COALESCE, UNION columns).
pub fn unify(a: DataType, b: DataType) -> std::result::Result<DataType, String> {
    Ok(match (a, b) {
        (x, y) if x == y => x,
        (DataType::Null, y) => y,
        (x, DataType::Null) => x,
        (x, y) if x.is_numeric() && y.is_numeric() => numeric_result(x, y),
        (x, y) => return Err(format!("mismatched types {x} and {y}")),
    })
}
