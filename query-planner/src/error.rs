//! Planning errors: what went wrong and where in the SQL text.

use std::fmt;

/// A 1-based line and column in the SQL text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Position {
    pub line: u64,
    pub column: u64,
}

/// An error found while parsing, binding or planning SQL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlanError {
    pub message: String,
    pub position: Option<Position>,
}

impl PlanError {
    pub fn new(message: impl Into<String>) -> PlanError {
        PlanError { message: message.into(), position: None }
    }

    /// An error at the start of `span` (ignored when the span is empty).
    pub fn at(message: impl Into<String>, span: sqlparser::tokenizer::Span) -> PlanError {
        let position = (span.start.line > 0).then_some(Position { line: span.start.line, column: span.start.column });
        PlanError { message: message.into(), position }
    }

    /// Adds a position if the error does not have one yet.
    pub fn or_at(mut self, span: sqlparser::tokenizer::Span) -> PlanError {
        if self.position.is_none() && span.start.line > 0 {
            self.position = Some(Position { line: span.start.line, column: span.start.column });
        }
        self
    }
}

impl fmt::Display for PlanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.position {
            Some(p) => write!(f, "{} at line {}, column {}", self.message, p.line, p.column),
            None => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for PlanError {}

pub type Result<T> = std::result::Result<T, PlanError>;

/// Returns early with a `PlanError` built from a format string.
#[macro_export]
macro_rules! bail {
    ($($arg:tt)*) => { return Err($crate::error::PlanError::new(format!($($arg)*))) };
}
