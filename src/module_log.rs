//! A database's module log: the lines its reducers logged (`sluice_sdk::info!`, panics), kept
//! in a ring of the latest [`CAPACITY`] for the owner to read (`GET …/logs`, `sluice logs
//! --module`) and printed by the server as they come. Bounded in lines here and in bytes a
//! line by the host (`host::MAX_LOG_LINE_BYTES`), so a module that logs in a loop costs a
//! fixed amount of memory.

use serde::Serialize;
use sluice_runtime::LogLine;
use std::collections::VecDeque;

/// Lines kept per database; older ones are dropped.
pub const CAPACITY: usize = 1000;

/// Lines a reader gets at most at once.
pub const MAX_PAGE: usize = 1000;

/// One kept line, numbered in the order logged (from 1).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Entry {
    pub seq: u64,
    pub timestamp_micros: u64,
    pub level: &'static str,
    pub reducer: String,
    pub message: String,
}

/// The ring of a database's latest module log lines.
#[derive(Debug, Default)]
pub struct ModuleLog {
    lines: VecDeque<Entry>,
    /// The last number given (0: none yet).
    last: u64,
}

/// A level's name (levels as the SDK writes them: 0 a panic, 1 error … 5 trace).
fn level_name(level: u32) -> &'static str {
    match level {
        0 => "panic",
        1 => "error",
        2 => "warn",
        3 => "info",
        4 => "debug",
        _ => "trace",
    }
}

impl ModuleLog {
    /// Keeps a line (dropping the oldest past [`CAPACITY`]) and returns it as kept.
    pub fn push(&mut self, line: LogLine, timestamp_micros: u64) -> &Entry {
        self.last += 1;
        if self.lines.len() == CAPACITY {
            self.lines.pop_front();
        }
        let (level, reducer, message) = (level_name(line.level), line.reducer, line.message);
        let entry = Entry { seq: self.last, timestamp_micros, level, reducer, message };
        self.lines.push_back(entry);
        self.lines.back().expect("just pushed")
    }

    /// The kept lines numbered after `after`, oldest first, at most [`MAX_PAGE`] of them.
    pub fn after(&self, after: u64) -> Vec<Entry> {
        // Numbers are consecutive, so the first wanted line's place is arithmetic.
        let first = self.lines.front().map_or(0, |e| e.seq);
        let skip = after.saturating_add(1).saturating_sub(first).min(self.lines.len() as u64) as usize;
        self.lines.iter().skip(skip).take(MAX_PAGE).cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(i: usize) -> LogLine {
        LogLine { level: 3, reducer: "r".into(), message: format!("line {i}") }
    }

    #[test]
    fn the_ring_keeps_the_latest_lines_in_pages() {
        let mut log = ModuleLog::default();
        for i in 1..=CAPACITY + 500 {
            log.push(line(i), i as u64);
        }
        let page = log.after(0);
        assert_eq!(page.len(), MAX_PAGE);
        assert_eq!(page[0].seq, 501, "the oldest 500 were dropped");
        assert_eq!(page[0].message, "line 501");
        let tail = log.after(1400);
        assert_eq!(tail.iter().map(|e| e.seq).collect::<Vec<_>>(), (1401..=1500).collect::<Vec<_>>());
        assert!(log.after(1500).is_empty());
        assert!(log.after(u64::MAX).is_empty());
        let kept = log.push(LogLine { level: 1, reducer: "r".into(), message: "bad".into() }, 0);
        assert_eq!((kept.seq, kept.level), (1501, "error"));
    }
}
