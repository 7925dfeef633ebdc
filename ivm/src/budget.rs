//! What building one query's dataflow may cost: a query that runs past its time or produces
//! more rows than allowed is stopped and dropped, and its caller told why. A build holds the
//! database's thread (reducers wait behind it), so an anonymous `SELECT * FROM a, b, c` must
//! not fill memory with its rows, nor `SELECT COUNT(*) FROM a, b, c` (one row out, all the
//! work inside) hold the thread for minutes: the time limit stops that one.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Bounds on one query build (a subscription's dataflow or a one-off evaluation).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QueryBudget {
    /// Time the build may take, from its start until its rows are complete.
    pub time: Duration,
    /// Output records (rows entering or leaving) the build may produce.
    pub rows: usize,
}

impl Default for QueryBudget {
    /// Generous: a million-row table reads whole in well under either bound.
    fn default() -> Self {
        QueryBudget { time: Duration::from_secs(5), rows: 5_000_000 }
    }
}

/// Why a build was stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Overrun {
    Time,
    Rows,
    /// Another worker stopped it (and knows which bound).
    Peer,
}

impl QueryBudget {
    /// What a build stopped for `overrun` tells its caller.
    pub fn explain(&self, overrun: Overrun) -> String {
        match overrun {
            Overrun::Time => format!(
                "the query was stopped after {:?}, its time limit: narrow it (a join on keys, a filter, a LIMIT)",
                self.time
            ),
            Overrun::Rows => format!(
                "the query was stopped after producing more than {} rows, its row limit: narrow it (a join \
                 on keys, a filter, a LIMIT)",
                self.rows
            ),
            Overrun::Peer => "the query was stopped: it ran past its time or row limit".to_string(),
        }
    }
}

/// A budget being spent: shared by every worker building the query, so that all of them
/// stop it once any of them has run past it.
#[derive(Clone, Debug)]
pub struct Limit {
    deadline: Instant,
    rows: usize,
    stopped: Arc<AtomicBool>,
}

impl Limit {
    /// The budget's bounds, starting now.
    pub fn start(budget: QueryBudget) -> Limit {
        let now = Instant::now();
        // A time too large to add is no bound at all: a year stands for it.
        let deadline = now.checked_add(budget.time).unwrap_or(now + Duration::from_secs(365 * 86_400));
        Limit { deadline, rows: budget.rows, stopped: Arc::new(AtomicBool::new(false)) }
    }

    /// Whether a build that has produced `rows` so far must stop, and why.
    pub fn check(&self, rows: usize) -> Option<Overrun> {
        let overrun = if self.stopped.load(Ordering::Relaxed) {
            Overrun::Peer
        } else if rows > self.rows {
            Overrun::Rows
        } else if Instant::now() >= self.deadline {
            Overrun::Time
        } else {
            return None;
        };
        self.stopped.store(true, Ordering::Relaxed);
        Some(overrun)
    }
}
