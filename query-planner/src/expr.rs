//! Typed scalar expressions over a row's columns, and their evaluation with SQL semantics:
//! three-valued logic, numeric promotion, SQLite-compatible integer division and functions.

use crate::types::{DataType, Value};
use serde::{Deserialize, Serialize};
use std::cmp::Ordering;
use std::sync::Arc;

/// A binary operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum BinOp {
    And,
    Or,
    Eq,
    NotEq,
    Lt,
    LtEq,
    Gt,
    GtEq,
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Concat,
}

impl BinOp {
    pub fn is_comparison(self) -> bool {
        matches!(self, BinOp::Eq | BinOp::NotEq | BinOp::Lt | BinOp::LtEq | BinOp::Gt | BinOp::GtEq)
    }

    pub fn is_arithmetic(self) -> bool {
        matches!(self, BinOp::Add | BinOp::Sub | BinOp::Mul | BinOp::Div | BinOp::Mod)
    }
}

/// A scalar function.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Func {
    Coalesce,
    NullIf,
    Abs,
    Length,
    Upper,
    Lower,
    Substr,
    Round,
    Trim,
    LTrim,
    RTrim,
    Replace,
    Instr,
    /// Scalar `MIN(a, b, …)`: NULL if any argument is NULL (SQLite).
    Least,
    /// Scalar `MAX(a, b, …)`.
    Greatest,
    Sign,
}

pub use sluice_data::Columns;

/// Column reads up to which expressions are evaluated on a row's encoding in place: each read
/// skips the values before its column, so beyond a few reads decoding the row once is cheaper.
pub const IN_PLACE_READS: usize = 4;

/// Whether `exprs`, evaluated together on each row, should read it in place
/// (`Row::reader`) rather than decode it.
pub fn reads_in_place<'e>(exprs: impl IntoIterator<Item = &'e Expr>) -> bool {
    let mut reads = 0;
    for e in exprs {
        e.visit_columns(&mut |_| reads += 1);
    }
    reads <= IN_PLACE_READS
}

/// The columns `exprs` read, if every one of them is a plain column.
pub fn plain_columns(exprs: &[Expr]) -> Option<Vec<usize>> {
    exprs.iter().map(|e| if let Expr::Column(c) = e { Some(*c) } else { None }).collect()
}

/// A typed scalar expression; `Column(i)` is the i-th column of the input row.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Expr {
    Column(usize),
    Literal(Value),
    Not(Box<Expr>),
    Neg(Box<Expr>),
    Binary(BinOp, Box<Expr>, Box<Expr>),
    IsNull(Box<Expr>),
    /// `expr IN (list)` with SQL NULL semantics.
    InList(Box<Expr>, Vec<Expr>),
    /// `expr LIKE pattern`, ASCII case-insensitive as in SQLite.
    Like {
        expr: Box<Expr>,
        pattern: Box<Expr>,
        escape: Option<char>,
    },
    /// Searched CASE: the first true condition's result, else `else_`.
    Case {
        branches: Vec<(Expr, Expr)>,
        else_: Box<Expr>,
    },
    Func(Func, Vec<Expr>),
    Cast(Box<Expr>, DataType),
}

impl Expr {
    pub fn lit(v: Value) -> Expr {
        Expr::Literal(v)
    }

    pub fn binary(op: BinOp, a: Expr, b: Expr) -> Expr {
        Expr::Binary(op, Box::new(a), Box::new(b))
    }

    /// Conjunction of `parts` (TRUE when empty), as a balanced tree: a WHERE clause of
    /// thousands of conjuncts is as deep as their logarithm, not their number.
    pub fn and_all(mut parts: Vec<Expr>) -> Expr {
        match parts.len() {
            0 => Expr::Literal(Value::Bool(true)),
            1 => parts.pop().expect("one part"),
            n => {
                let right = parts.split_off(n / 2);
                Expr::binary(BinOp::And, Expr::and_all(parts), Expr::and_all(right))
            }
        }
    }

    /// How many nodes this expression has.
    pub fn size(&self) -> usize {
        let mut n = 1;
        self.visit_children(&mut |c| n += c.size());
        n
    }

    /// How many levels this expression has (1 for a column or a literal).
    pub fn depth(&self) -> usize {
        let mut deepest = 0;
        self.visit_children(&mut |c| deepest = deepest.max(c.depth()));
        1 + deepest
    }

    /// Calls `f` on each direct child.
    fn visit_children<'e>(&'e self, f: &mut impl FnMut(&'e Expr)) {
        match self {
            Expr::Column(_) | Expr::Literal(_) => {}
            Expr::Not(e) | Expr::Neg(e) | Expr::IsNull(e) | Expr::Cast(e, _) => f(e),
            Expr::Binary(_, a, b) => {
                f(a);
                f(b);
            }
            Expr::InList(e, list) => {
                f(e);
                list.iter().for_each(f);
            }
            Expr::Like { expr, pattern, .. } => {
                f(expr);
                f(pattern);
            }
            Expr::Case { branches, else_ } => {
                for (c, r) in branches {
                    f(c);
                    f(r);
                }
                f(else_);
            }
            Expr::Func(_, args) => args.iter().for_each(f),
        }
    }

    /// Splits a conjunction into its conjuncts.
    pub fn conjuncts(self) -> Vec<Expr> {
        match self {
            Expr::Binary(BinOp::And, a, b) => {
                let mut v = a.conjuncts();
                v.extend(b.conjuncts());
                v
            }
            Expr::Literal(Value::Bool(true)) => vec![],
            e => vec![e],
        }
    }

    /// Calls `f` on every column index this expression reads.
    pub fn visit_columns(&self, f: &mut impl FnMut(usize)) {
        match self {
            Expr::Column(c) => f(*c),
            _ => self.visit_children(&mut |e| e.visit_columns(f)),
        }
    }

    /// The sorted, deduplicated columns this expression reads.
    pub fn columns(&self) -> Vec<usize> {
        let mut v = Vec::new();
        self.visit_columns(&mut |c| v.push(c));
        v.sort_unstable();
        v.dedup();
        v
    }

    /// Rewrites every column index through `f`.
    pub fn map_columns(&self, f: &impl Fn(usize) -> usize) -> Expr {
        self.rewrite(&|e| match e {
            Expr::Column(c) => Some(Expr::Column(f(*c))),
            _ => None,
        })
    }

    /// Replaces each column `i` with `exprs[i]`.
    pub fn substitute(&self, exprs: &[Expr]) -> Expr {
        self.rewrite(&|e| match e {
            Expr::Column(c) => Some(exprs[*c].clone()),
            _ => None,
        })
    }

    /// Bottom-up-free rewrite: where `f` returns `Some`, that replaces the node; else recurse.
    pub fn rewrite(&self, f: &impl Fn(&Expr) -> Option<Expr>) -> Expr {
        if let Some(e) = f(self) {
            return e;
        }
        let r = |e: &Expr| Box::new(e.rewrite(f));
        match self {
            Expr::Column(_) | Expr::Literal(_) => self.clone(),
            Expr::Not(e) => Expr::Not(r(e)),
            Expr::Neg(e) => Expr::Neg(r(e)),
            Expr::IsNull(e) => Expr::IsNull(r(e)),
            Expr::Cast(e, t) => Expr::Cast(r(e), *t),
            Expr::Binary(op, a, b) => Expr::Binary(*op, r(a), r(b)),
            Expr::InList(e, list) => Expr::InList(r(e), list.iter().map(|x| x.rewrite(f)).collect()),
            Expr::Like { expr, pattern, escape } => Expr::Like { expr: r(expr), pattern: r(pattern), escape: *escape },
            Expr::Case { branches, else_ } => Expr::Case {
                branches: branches.iter().map(|(c, v)| (c.rewrite(f), v.rewrite(f))).collect(),
                else_: r(else_),
            },
            Expr::Func(func, args) => Expr::Func(*func, args.iter().map(|x| x.rewrite(f)).collect()),
        }
    }

    /// True if this expression is a literal.
    pub fn is_literal(&self) -> bool {
        matches!(self, Expr::Literal(_))
    }

    /// Evaluates the expression against a row's decoded values.
    pub fn eval(&self, row: &[Value]) -> Value {
        self.eval_on(row)
    }

    /// Evaluates the expression against any source of columns: decoded values, or an encoded
    /// row read in place, which decodes only the columns the expression reads.
    pub fn eval_on<C: Columns + ?Sized>(&self, row: &C) -> Value {
        match self {
            Expr::Column(c) => row.column(*c),
            Expr::Literal(v) => v.clone(),
            Expr::Not(e) => match truth(&e.eval_on(row)) {
                Some(b) => Value::Bool(!b),
                None => Value::Null,
            },
            Expr::Neg(e) => match e.eval_on(row) {
                Value::Int(i) => i.checked_neg().map_or(Value::Real(-(i as f64)), Value::Int),
                Value::UInt(u) => Value::Int((u as i64).wrapping_neg()),
                Value::Real(r) => Value::Real(-r),
                _ => Value::Null,
            },
            Expr::IsNull(e) => Value::Bool(e.eval_on(row).is_null()),
            Expr::Binary(BinOp::And, a, b) => {
                let x = truth(&a.eval_on(row));
                if x == Some(false) {
                    return Value::Bool(false);
                }
                match (x, truth(&b.eval_on(row))) {
                    (_, Some(false)) => Value::Bool(false),
                    (Some(true), Some(true)) => Value::Bool(true),
                    _ => Value::Null,
                }
            }
            Expr::Binary(BinOp::Or, a, b) => {
                let x = truth(&a.eval_on(row));
                if x == Some(true) {
                    return Value::Bool(true);
                }
                match (x, truth(&b.eval_on(row))) {
                    (_, Some(true)) => Value::Bool(true),
                    (Some(false), Some(false)) => Value::Bool(false),
                    _ => Value::Null,
                }
            }
            Expr::Binary(op, a, b) => binary(*op, &a.eval_on(row), &b.eval_on(row)),
            Expr::InList(e, list) => {
                let v = e.eval_on(row);
                if v.is_null() {
                    return Value::Null;
                }
                let mut saw_null = false;
                for item in list {
                    match sql_cmp(&v, &item.eval_on(row)) {
                        Some(Ordering::Equal) => return Value::Bool(true),
                        None => saw_null = true,
                        _ => {}
                    }
                }
                if saw_null {
                    Value::Null
                } else {
                    Value::Bool(false)
                }
            }
            Expr::Like { expr, pattern, escape } => match (expr.eval_on(row), pattern.eval_on(row)) {
                (Value::Text(s), Value::Text(p)) => Value::Bool(like(&s, &p, *escape)),
                _ => Value::Null,
            },
            Expr::Case { branches, else_ } => {
                for (cond, result) in branches {
                    if truth(&cond.eval_on(row)) == Some(true) {
                        return result.eval_on(row);
                    }
                }
                else_.eval_on(row)
            }
            Expr::Func(f, args) => func(*f, args, row),
            Expr::Cast(e, t) => cast(&e.eval_on(row), *t),
        }
    }
}

/// SQL truth of a value: `Some(bool)` or `None` for NULL / non-boolean.
pub fn truth(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::Int(i) => Some(*i != 0),
        Value::UInt(u) => Some(*u != 0),
        Value::Real(r) => Some(*r != 0.0),
        _ => None,
    }
}

/// SQL comparison: `None` if either side is NULL; numbers compare by value across types.
pub fn sql_cmp(a: &Value, b: &Value) -> Option<Ordering> {
    match (a, b) {
        (Value::Null, _) | (_, Value::Null) => None,
        // Booleans compare with numbers as 0 and 1.
        (Value::Bool(x), Value::Int(_) | Value::UInt(_) | Value::Real(_)) => sql_cmp(&Value::Int(*x as i64), b),
        (Value::Int(_) | Value::UInt(_) | Value::Real(_), Value::Bool(y)) => sql_cmp(a, &Value::Int(*y as i64)),
        (Value::Int(x), Value::UInt(y)) => Some((*x as i128).cmp(&(*y as i128))),
        (Value::UInt(x), Value::Int(y)) => Some((*x as i128).cmp(&(*y as i128))),
        (Value::Int(_) | Value::UInt(_), Value::Real(r)) => cmp_int_real(a.as_i128()?, *r),
        (Value::Real(r), Value::Int(_) | Value::UInt(_)) => cmp_int_real(b.as_i128()?, *r).map(Ordering::reverse),
        _ => Some(a.cmp(b)),
    }
}

/// Compares an integer with a real exactly (as SQLite does), also beyond 2^53 where the
/// integer has no exact `f64`; `None` for NaN.
fn cmp_int_real(i: i128, r: f64) -> Option<Ordering> {
    match (i as f64).partial_cmp(&r)? {
        // Equal as floats: `r` is integral and at most 2^64 in magnitude, so exact as i128.
        Ordering::Equal => Some(i.cmp(&(r as i128))),
        o => Some(o),
    }
}

/// The canonical form of a value used as an equality key when the two sides' types differ:
/// integral reals and in-range unsigned values become `Int`, so `1 = 1.0` joins.
pub fn canonical_key(v: Value) -> Value {
    match v {
        Value::UInt(u) if u <= i64::MAX as u64 => Value::Int(u as i64),
        Value::Real(r) if r.fract() == 0.0 && r >= i64::MIN as f64 && r < i64::MAX as f64 => Value::Int(r as i64),
        Value::Bool(b) => Value::Int(b as i64),
        v => v,
    }
}

fn binary(op: BinOp, a: &Value, b: &Value) -> Value {
    if a.is_null() || b.is_null() {
        return Value::Null;
    }
    if op.is_comparison() {
        let Some(o) = sql_cmp(a, b) else { return Value::Null };
        return Value::Bool(match op {
            BinOp::Eq => o == Ordering::Equal,
            BinOp::NotEq => o != Ordering::Equal,
            BinOp::Lt => o == Ordering::Less,
            BinOp::LtEq => o != Ordering::Greater,
            BinOp::Gt => o == Ordering::Greater,
            _ => o != Ordering::Less,
        });
    }
    if op == BinOp::Concat {
        return Value::Text(Arc::from(format!("{}{}", text_of(a), text_of(b))));
    }
    match (a, b) {
        (Value::Real(_), _) | (_, Value::Real(_)) => {
            let (Some(x), Some(y)) = (a.as_f64(), b.as_f64()) else { return Value::Null };
            real_arith(op, x, y)
        }
        (Value::UInt(x), Value::UInt(y)) => uint_arith(op, *x, *y),
        (Value::Int(x), Value::Int(y)) => int_arith(op, *x, *y),
        _ => {
            // UNSIGNED with INTEGER: exact in i128; UNSIGNED when not negative.
            let (Some(x), Some(y)) = (a.as_i128(), b.as_i128()) else { return Value::Null };
            wide_arith(op, x, y)
        }
    }
}

fn int_arith(op: BinOp, x: i64, y: i64) -> Value {
    let r = match op {
        BinOp::Add => x.checked_add(y),
        BinOp::Sub => x.checked_sub(y),
        BinOp::Mul => x.checked_mul(y),
        BinOp::Div if y == 0 => return Value::Null,
        BinOp::Div => x.checked_div(y),
        BinOp::Mod if y == 0 => return Value::Null,
        BinOp::Mod => Some(x.checked_rem(y).unwrap_or(0)),
        _ => return Value::Null,
    };
    // On overflow SQLite continues in floating point; so do we.
    r.map_or_else(|| real_arith(op, x as f64, y as f64), Value::Int)
}

fn wide_arith(op: BinOp, x: i128, y: i128) -> Value {
    let r = match op {
        BinOp::Add => x.checked_add(y),
        BinOp::Sub => x.checked_sub(y),
        BinOp::Mul => x.checked_mul(y),
        BinOp::Div | BinOp::Mod if y == 0 => return Value::Null,
        BinOp::Div => x.checked_div(y),
        BinOp::Mod => x.checked_rem(y),
        _ => return Value::Null,
    };
    match r {
        Some(v) if v >= 0 && v <= u64::MAX as i128 => Value::UInt(v as u64),
        Some(v) if v >= i64::MIN as i128 => Value::Int(v as i64),
        _ => real_arith(op, x as f64, y as f64),
    }
}

fn uint_arith(op: BinOp, x: u64, y: u64) -> Value {
    let r = match op {
        BinOp::Add => x.checked_add(y),
        BinOp::Sub => x.checked_sub(y),
        BinOp::Mul => x.checked_mul(y),
        BinOp::Div if y == 0 => return Value::Null,
        BinOp::Div => Some(x / y),
        BinOp::Mod if y == 0 => return Value::Null,
        BinOp::Mod => Some(x % y),
        _ => return Value::Null,
    };
    match r {
        Some(v) => Value::UInt(v),
        None => int_arith(op, x as i64, y as i64),
    }
}

fn real_arith(op: BinOp, x: f64, y: f64) -> Value {
    let r = match op {
        BinOp::Add => x + y,
        BinOp::Sub => x - y,
        BinOp::Mul => x * y,
        BinOp::Div if y == 0.0 => return Value::Null,
        BinOp::Div => x / y,
        // SQLite's % works on the integer parts of its operands.
        BinOp::Mod => {
            let (a, b) = (x as i64, y as i64);
            if b == 0 {
                return Value::Null;
            }
            return Value::Real(a.checked_rem(b).unwrap_or(0) as f64);
        }
        _ => return Value::Null,
    };
    if r.is_nan() {
        Value::Null
    } else {
        Value::Real(r)
    }
}

/// Text rendering of a value as SQLite's `CAST(x AS TEXT)` and `||` give it.
pub fn text_of(v: &Value) -> String {
    match v {
        Value::Real(r) => format_real(*r),
        Value::Bool(b) => (*b as i64).to_string(),
        Value::Bytes(b) => String::from_utf8_lossy(b).into_owned(),
        other => other.to_string(),
    }
}

/// Formats a float as SQLite prints it (`%!.15g`): 15 significant digits, at least one
/// decimal, exponent form below 1e-4 and from 1e15 up (`1.0e+20`, `1.0e-05`).
pub fn format_real(r: f64) -> String {
    if r == 0.0 {
        return "0.0".to_string();
    }
    if !r.is_finite() {
        return if r.is_nan() {
            "NaN".into()
        } else if r > 0.0 {
            "Inf".into()
        } else {
            "-Inf".into()
        };
    }
    let sci = format!("{r:.14e}");
    let (mantissa, exp) = sci.split_once('e').expect("exponent form");
    let exp: i32 = exp.parse().expect("exponent");
    let trim = |s: &str| -> String {
        let s = if s.contains('.') { s.trim_end_matches('0') } else { s };
        if let Some(stripped) = s.strip_suffix('.') {
            format!("{stripped}.0")
        } else if s.contains('.') {
            s.to_string()
        } else {
            format!("{s}.0")
        }
    };
    if !(-4..15).contains(&exp) {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{}e{sign}{:02}", trim(mantissa), exp.abs())
    } else {
        trim(&format!("{:.*}", (14 - exp) as usize, r))
    }
}

fn cast(v: &Value, t: DataType) -> Value {
    match (v, t) {
        (Value::Null, _) => Value::Null,
        (_, DataType::Text) => Value::Text(Arc::from(text_of(v))),
        (Value::Real(r), DataType::Int) => Value::Int(*r as i64),
        (Value::Real(r), DataType::UInt) => Value::UInt(r.max(0.0) as u64),
        (Value::Int(i), DataType::Real) => Value::Real(*i as f64),
        (Value::UInt(u), DataType::Real) => Value::Real(*u as f64),
        (Value::Int(i), DataType::UInt) => Value::UInt(*i as u64),
        (Value::UInt(u), DataType::Int) => Value::Int(*u as i64),
        (Value::Bool(b), DataType::Int) => Value::Int(*b as i64),
        (Value::Bool(b), DataType::Real) => Value::Real(*b as i64 as f64),
        (Value::Int(_) | Value::UInt(_) | Value::Real(_), DataType::Bool) => Value::Bool(truth(v) == Some(true)),
        (Value::Text(s), DataType::Int | DataType::UInt | DataType::Real) => parse_number_prefix(s, t),
        (Value::Text(s), DataType::Bytes) => Value::Bytes(Arc::from(s.as_bytes())),
        (Value::Bytes(b), DataType::Int | DataType::Real | DataType::UInt) => {
            parse_number_prefix(&String::from_utf8_lossy(b), t)
        }
        _ if v.data_type() == t => v.clone(),
        _ => Value::Null,
    }
}

/// SQLite-style lenient number parsing: the longest numeric prefix, else 0.
fn parse_number_prefix(s: &str, t: DataType) -> Value {
    let s = s.trim_start();
    let end = s
        .char_indices()
        .take_while(|(i, c)| {
            c.is_ascii_digit() || ((*c == '-' || *c == '+') && *i == 0) || *c == '.' || *c == 'e' || *c == 'E'
        })
        .map(|(i, c)| i + c.len_utf8())
        .last()
        .unwrap_or(0);
    let mut prefix = &s[..end];
    let real = loop {
        if prefix.is_empty() {
            break 0.0;
        }
        if let Ok(r) = prefix.parse::<f64>() {
            break r;
        }
        prefix = &prefix[..prefix.len() - 1];
    };
    match t {
        DataType::Int => prefix.parse::<i64>().map_or(Value::Int(real as i64), Value::Int),
        DataType::UInt => Value::UInt(real.max(0.0) as u64),
        _ => Value::Real(real),
    }
}

/// SQL LIKE with `%` and `_`, ASCII case-insensitive, optional escape character.
pub fn like(s: &str, p: &str, escape: Option<char>) -> bool {
    let s: Vec<char> = s.chars().collect();
    let p: Vec<char> = p.chars().collect();
    // Iterative matcher with backtracking to the last `%`.
    let (mut si, mut pi) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    let eq = |a: char, b: char| a.eq_ignore_ascii_case(&b);
    while si < s.len() {
        if pi < p.len() {
            let c = p[pi];
            if Some(c) == escape && pi + 1 < p.len() {
                if eq(p[pi + 1], s[si]) {
                    si += 1;
                    pi += 2;
                    continue;
                }
            } else if c == '%' {
                star = Some((pi, si));
                pi += 1;
                continue;
            } else if c == '_' || eq(c, s[si]) {
                si += 1;
                pi += 1;
                continue;
            }
        }
        match star {
            Some((sp, ss)) => {
                pi = sp + 1;
                si = ss + 1;
                star = Some((sp, ss + 1));
            }
            None => return false,
        }
    }
    while pi < p.len() && p[pi] == '%' {
        pi += 1;
    }
    pi == p.len()
}

fn func<C: Columns + ?Sized>(f: Func, args: &[Expr], row: &C) -> Value {
    let arg = |i: usize| args.get(i).map_or(Value::Null, |e| e.eval_on(row));
    match f {
        Func::Coalesce => args.iter().map(|a| a.eval_on(row)).find(|v| !v.is_null()).unwrap_or(Value::Null),
        Func::NullIf => {
            let (a, b) = (arg(0), arg(1));
            if sql_cmp(&a, &b) == Some(Ordering::Equal) {
                Value::Null
            } else {
                a
            }
        }
        Func::Abs => match arg(0) {
            Value::Int(i) => i.checked_abs().map_or(Value::Real((i as f64).abs()), Value::Int),
            Value::Real(r) => Value::Real(r.abs()),
            v => v,
        },
        Func::Sign => match arg(0) {
            Value::Int(i) => Value::Int(i.signum()),
            Value::UInt(u) => Value::Int((u > 0) as i64),
            Value::Real(r) => Value::Int(if r > 0.0 {
                1
            } else if r < 0.0 {
                -1
            } else {
                0
            }),
            _ => Value::Null,
        },
        Func::Length => match arg(0) {
            Value::Null => Value::Null,
            Value::Text(s) => Value::Int(s.chars().count() as i64),
            Value::Bytes(b) => Value::Int(b.len() as i64),
            v => Value::Int(text_of(&v).chars().count() as i64),
        },
        Func::Upper => map_text(arg(0), |s| s.to_ascii_uppercase()),
        Func::Lower => map_text(arg(0), |s| s.to_ascii_lowercase()),
        Func::Trim => map_text(arg(0), |s| s.trim_matches(' ').to_string()),
        Func::LTrim => map_text(arg(0), |s| s.trim_start_matches(' ').to_string()),
        Func::RTrim => map_text(arg(0), |s| s.trim_end_matches(' ').to_string()),
        Func::Replace => match (arg(0), arg(1), arg(2)) {
            (Value::Text(s), Value::Text(from), Value::Text(to)) => {
                if from.is_empty() {
                    Value::Text(s)
                } else {
                    Value::Text(Arc::from(s.replace(&*from, &to)))
                }
            }
            _ => Value::Null,
        },
        Func::Instr => match (arg(0), arg(1)) {
            (Value::Text(s), Value::Text(needle)) => {
                Value::Int(s.find(&*needle).map_or(0, |byte| s[..byte].chars().count() as i64 + 1))
            }
            _ => Value::Null,
        },
        Func::Substr => substr(arg(0), arg(1), args.get(2).map(|e| e.eval_on(row))),
        Func::Round => {
            let digits = match args.get(1).map(|e| e.eval_on(row)) {
                None => 0,
                Some(Value::Null) => return Value::Null,
                Some(v) => v.as_i128().unwrap_or(0).clamp(0, 30) as i32,
            };
            match arg(0).as_f64() {
                None => Value::Null,
                Some(x) => {
                    let scale = 10f64.powi(digits);
                    Value::Real((x * scale).round() / scale)
                }
            }
        }
        Func::Least | Func::Greatest => {
            let vals: Vec<Value> = args.iter().map(|a| a.eval_on(row)).collect();
            if vals.iter().any(Value::is_null) {
                return Value::Null;
            }
            let pick = |a: Value, b: Value| {
                let o = sql_cmp(&a, &b).unwrap_or(Ordering::Equal);
                let take_b = if f == Func::Least { o == Ordering::Greater } else { o == Ordering::Less };
                if take_b {
                    b
                } else {
                    a
                }
            };
            vals.into_iter().reduce(pick).unwrap_or(Value::Null)
        }
    }
}

fn map_text(v: Value, f: impl Fn(&str) -> String) -> Value {
    match v {
        Value::Null => Value::Null,
        Value::Text(s) => Value::Text(Arc::from(f(&s))),
        other => Value::Text(Arc::from(f(&text_of(&other)))),
    }
}

/// SQLite's `substr(s, start, len)`: 1-based, negative start counts from the end.
fn substr(s: Value, start: Value, len: Option<Value>) -> Value {
    let Value::Text(s) = s else { return Value::Null };
    let Some(start) = start.as_i128() else { return Value::Null };
    let chars: Vec<char> = s.chars().collect();
    let n = chars.len() as i128;
    let len = match len {
        None => None,
        Some(v) => match v.as_i128() {
            Some(l) => Some(l),
            None => return Value::Null,
        },
    };
    let mut begin = if start > 0 {
        start - 1
    } else if start < 0 {
        n + start
    } else {
        -1
    };
    let mut end = match len {
        None => n,
        Some(l) if l >= 0 => begin + l,
        Some(l) => {
            let e = begin;
            begin += l;
            e
        }
    };
    begin = begin.clamp(0, n);
    end = end.clamp(0, n);
    if begin >= end {
        return Value::Text(Arc::from(""));
    }
    Value::Text(Arc::from(chars[begin as usize..end as usize].iter().collect::<String>()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(e: Expr) -> Value {
        e.eval(&[])
    }

    #[test]
    fn an_expression_reads_a_row_in_place_as_its_decoded_values() {
        let values = vec![
            Value::Null,
            Value::Bool(true),
            Value::Int(-3),
            Value::Int(i64::MIN),
            Value::UInt(u64::MAX),
            Value::Real(2.5),
            Value::Bytes(Arc::from(&b"\x00\xff"[..])),
            Value::text("héllo"),
        ];
        let row = crate::Row::new(values.clone());
        let e = Expr::binary(
            BinOp::Or,
            Expr::binary(BinOp::Lt, Expr::Column(2), Expr::Column(3)),
            Expr::binary(BinOp::Eq, Expr::Column(7), Expr::Literal(Value::text("héllo"))),
        );
        assert_eq!(e.eval_on(&row), e.eval(&values));
        assert_eq!(e.eval_on(&row.as_row_ref().reader(true)), e.eval(&values));
        assert!(reads_in_place([&e]));
        let wide = Expr::Func(Func::Coalesce, (0..5).map(Expr::Column).collect());
        assert!(!reads_in_place([&wide]));
        assert_eq!(wide.eval_on(&row.reader(false)), Value::Bool(true));
    }
    fn lit(v: Value) -> Expr {
        Expr::Literal(v)
    }

    #[test]
    fn integer_division_truncates_and_by_zero_is_null() {
        assert_eq!(ev(Expr::binary(BinOp::Div, lit(Value::Int(-7)), lit(Value::Int(2)))), Value::Int(-3));
        assert_eq!(ev(Expr::binary(BinOp::Div, lit(Value::Int(7)), lit(Value::Int(0)))), Value::Null);
        assert_eq!(ev(Expr::binary(BinOp::Mod, lit(Value::Int(-7)), lit(Value::Int(3)))), Value::Int(-1));
        assert_eq!(ev(Expr::binary(BinOp::Div, lit(Value::Real(7.0)), lit(Value::Int(2)))), Value::Real(3.5));
    }

    #[test]
    fn integers_and_reals_compare_exactly() {
        use Ordering::*;
        let big = 1i64 << 53;
        // 2^53 + 1 has no f64: as a float it would equal 2^53.
        assert_eq!(sql_cmp(&Value::Int(big + 1), &Value::Real(big as f64)), Some(Greater));
        assert_eq!(sql_cmp(&Value::Real(big as f64), &Value::Int(big + 1)), Some(Less));
        assert_eq!(sql_cmp(&Value::Int(big), &Value::Real(big as f64)), Some(Equal));
        assert_eq!(sql_cmp(&Value::UInt(u64::MAX), &Value::Real(u64::MAX as f64)), Some(Less));
        assert_eq!(sql_cmp(&Value::Int(2), &Value::Real(2.5)), Some(Less));
        assert_eq!(sql_cmp(&Value::Int(-3), &Value::Real(-3.5)), Some(Greater));
        assert_eq!(sql_cmp(&Value::Int(1), &Value::Real(f64::NAN)), None);
    }

    #[test]
    fn three_valued_logic() {
        let null = || lit(Value::Null);
        let t = || lit(Value::Bool(true));
        let f = || lit(Value::Bool(false));
        assert_eq!(ev(Expr::binary(BinOp::And, null(), f())), Value::Bool(false));
        assert_eq!(ev(Expr::binary(BinOp::And, null(), t())), Value::Null);
        assert_eq!(ev(Expr::binary(BinOp::Or, null(), t())), Value::Bool(true));
        assert_eq!(ev(Expr::Not(Box::new(null()))), Value::Null);
        let in_list = Expr::InList(Box::new(lit(Value::Int(1))), vec![lit(Value::Int(2)), null()]);
        assert_eq!(ev(in_list), Value::Null);
    }

    #[test]
    fn like_matches_sqlite() {
        assert!(like("Hello", "h%o", None));
        assert!(like("abc", "a_c", None));
        assert!(!like("abc", "a_", None));
        assert!(like("a%c", "a\\%c", Some('\\')));
        assert!(!like("abc", "a\\%c", Some('\\')));
        assert!(like("", "%", None));
    }

    #[test]
    fn substr_follows_sqlite() {
        let s = |a: i64, b: Option<i64>| substr(Value::text("hello"), Value::Int(a), b.map(Value::Int));
        assert_eq!(s(2, Some(3)), Value::text("ell"));
        assert_eq!(s(-3, None), Value::text("llo"));
        assert_eq!(s(0, Some(2)), Value::text("h"));
        assert_eq!(s(10, None), Value::text(""));
    }

    #[test]
    fn real_formatting_matches_sqlite() {
        assert_eq!(format_real(3.0), "3.0");
        assert_eq!(format_real(0.1 + 0.2), "0.3");
        assert_eq!(format_real(2.5), "2.5");
        assert_eq!(format_real(-0.0), "0.0");
        assert_eq!(format_real(1e20), "1.0e+20");
        assert_eq!(format_real(1e-5), "1.0e-05");
        assert_eq!(format_real(123456789012345.6), "123456789012346.0");
        assert_eq!(format_real(-1.25e-7), "-1.25e-07");
        assert_eq!(format_real(0.0001), "0.0001");
    }

    #[test]
    fn numbers_as_conditions() {
        let not = |v| Expr::Not(Box::new(lit(v))).eval(&[]);
        assert_eq!(not(Value::Int(0)), Value::Bool(true));
        assert_eq!(not(Value::Int(3)), Value::Bool(false));
        assert_eq!(sql_cmp(&Value::Bool(true), &Value::Int(1)), Some(Ordering::Equal));
    }
}
