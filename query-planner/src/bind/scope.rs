//! Name resolution: the columns visible at a point of a query, and the chain of enclosing
//! queries' scopes that correlated subqueries may reference.

use crate::error::{PlanError, Result};
use crate::types::DataType;
use std::cell::RefCell;
use std::collections::BTreeSet;

/// One named column of a relation being bound.
#[derive(Clone, Debug)]
pub struct ScopeCol {
    pub qualifier: Option<String>,
    pub name: String,
    pub ty: DataType,
    /// A column carried in from an enclosing query (decorrelation); looked up only after the
    /// query's own columns, and never expanded by `*`.
    pub outer: bool,
    /// The right-hand copy of a `JOIN … USING` column: not expanded by `*` and not matched by
    /// an unqualified name.
    pub using_dup: bool,
}

impl ScopeCol {
    pub fn new(qualifier: Option<String>, name: impl Into<String>, ty: DataType) -> ScopeCol {
        ScopeCol { qualifier, name: name.into(), ty, outer: false, using_dup: false }
    }

    fn matches(&self, qualifier: Option<&str>, name: &str) -> bool {
        if !self.name.eq_ignore_ascii_case(name) {
            return false;
        }
        match qualifier {
            Some(q) => self.qualifier.as_deref().is_some_and(|mine| mine.eq_ignore_ascii_case(q)),
            None => !self.using_dup,
        }
    }
}

/// The columns of a relation, in output order.
#[derive(Clone, Debug, Default)]
pub struct Scope {
    pub cols: Vec<ScopeCol>,
}

impl Scope {
    pub fn new(cols: Vec<ScopeCol>) -> Scope {
        Scope { cols }
    }

    pub fn len(&self) -> usize {
        self.cols.len()
    }

    pub fn is_empty(&self) -> bool {
        self.cols.is_empty()
    }

    /// Finds a column: first among the query's own columns, then among carried-in outer ones.
    /// `Ok(None)` when absent; an error when ambiguous.
    pub fn resolve(&self, qualifier: Option<&str>, name: &str) -> Result<Option<usize>> {
        for outer in [false, true] {
            let hits: Vec<usize> = (0..self.cols.len())
                .filter(|&i| self.cols[i].outer == outer && self.cols[i].matches(qualifier, name))
                .collect();
            match hits.as_slice() {
                [] => continue,
                [one] => return Ok(Some(*one)),
                _ => {
                    let shown = qualifier.map_or(name.to_string(), |q| format!("{q}.{name}"));
                    return Err(PlanError::new(format!("column reference {shown} is ambiguous")));
                }
            }
        }
        Ok(None)
    }

    /// True if some column carries this qualifier.
    pub fn has_qualifier(&self, q: &str) -> bool {
        self.cols.iter().any(|c| c.qualifier.as_deref().is_some_and(|x| x.eq_ignore_ascii_case(q)))
    }

    pub fn concat(&self, other: &Scope) -> Scope {
        let mut cols = self.cols.clone();
        cols.extend(other.cols.iter().cloned());
        Scope { cols }
    }
}

/// An enclosing query's scope, as seen from a subquery being bound. References into it are
/// recorded in `used`, so the subquery can be decorrelated over exactly those columns.
pub struct Outer<'a> {
    pub scope: &'a Scope,
    pub used: RefCell<BTreeSet<usize>>,
    pub parent: Option<&'a Outer<'a>>,
}

impl<'a> Outer<'a> {
    pub fn new(scope: &'a Scope, parent: Option<&'a Outer<'a>>) -> Outer<'a> {
        Outer { scope, used: RefCell::new(BTreeSet::new()), parent }
    }

    /// Looks a column up through the chain of enclosing scopes, recording the use at the level
    /// where it is found. Returns the column's type.
    pub fn resolve(&self, qualifier: Option<&str>, name: &str) -> Result<Option<DataType>> {
        if let Some(i) = self.scope.resolve(qualifier, name)? {
            self.used.borrow_mut().insert(i);
            return Ok(Some(self.scope.cols[i].ty));
        }
        match self.parent {
            Some(p) => p.resolve(qualifier, name),
            None => Ok(None),
        }
    }
}
