//! Column access for evaluating expressions: a row's decoded values, or its encoded bytes read
//! in place (`Row`, `RowRef`), so a predicate on one column decodes only that one. The planner's
//! expressions evaluate over any `Columns`.

use crate::types::Value;

/// Where an expression reads its input columns from.
pub trait Columns {
    /// The value of column `i`.
    fn column(&self, i: usize) -> Value;
}

impl Columns for [Value] {
    #[inline]
    fn column(&self, i: usize) -> Value {
        self[i].clone()
    }
}
