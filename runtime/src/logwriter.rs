//! Group commit: a writer thread appends framed records to the commit log's current segment
//! and makes each batch durable with one fsync, so many transactions share its cost. The
//! executor hands records over and carries on; whoever must not answer before a transaction
//! is durable waits for the durable offset to pass it.

use crate::commitlog::{frame_into, header, segment_name, LogEnd, LogError, HEADER};
use crate::record::TxRecord;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;

/// When a committed transaction counts as durable.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Durability {
    /// Once its record is fsynced (group commit): the default.
    #[default]
    Full,
    /// Once its record is written to the operating system, without waiting for fsync: a crash
    /// of the machine (not of the process) may lose the last transactions.
    Relaxed,
}

/// Commit-log settings.
#[derive(Clone, Debug)]
pub struct LogConfig {
    pub durability: Durability,
    /// A segment is closed and a new one started once it passes this many bytes (between
    /// batches, so it may pass it by one batch).
    pub segment_bytes: u64,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig { durability: Durability::Full, segment_bytes: 64 << 20 }
    }
}

/// How long the writer lets records gather between batches when it does not fsync.
const RELAXED_GATHER: std::time::Duration = std::time::Duration::from_micros(200);

#[derive(Default)]
struct State {
    /// Records up to this offset are durable.
    durable: u64,
    /// The writer stopped on this error: nothing after `durable` will become durable.
    failed: Option<String>,
    /// Framed records handed over and not yet taken by the writer, and the offsets of the
    /// first and last of them.
    pending: Vec<u8>,
    first: u64,
    last: u64,
    /// The writer is waiting for records (so an append must wake it).
    idle: bool,
    /// No more records will come.
    closed: bool,
}

#[derive(Default)]
struct Shared {
    state: Mutex<State>,
    /// Signalled when the durable offset moves or the writer fails.
    changed: Condvar,
    /// Signalled when records arrive for an idle writer, or at close.
    work: Condvar,
}

/// Waits for the durable offset, from any thread.
pub struct Waiter(Arc<Shared>);

impl Waiter {
    /// Waits until the record at `offset` is durable; an error if the writer has failed.
    pub fn wait(&self, offset: u64) -> Result<(), String> {
        let mut state = self.0.state.lock().expect("log state");
        loop {
            if state.durable >= offset {
                return Ok(());
            }
            if let Some(e) = &state.failed {
                return Err(e.clone());
            }
            state = self.0.changed.wait(state).expect("log state");
        }
    }
}

/// The commit log's appending end. Records are framed into a buffer the writer thread takes
/// whole: while it writes and fsyncs one batch the next accumulates, and waking it costs one
/// signal per batch, not one per record.
pub struct LogWriter {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
    /// Offset of the last record handed over.
    appended: u64,
}

impl LogWriter {
    /// Opens the log in `dir` for appending after the valid records `end` describes: a torn
    /// tail is cut off first (it was never acknowledged).
    pub fn open(dir: &Path, end: &LogEnd, config: LogConfig) -> Result<LogWriter, LogError> {
        std::fs::create_dir_all(dir).map_err(|e| LogError::io(dir, e))?;
        let next = end.last_offset + 1;
        let segment = match &end.segment {
            Some((path, valid)) if *valid >= HEADER => {
                let file = OpenOptions::new().write(true).open(path).map_err(|e| LogError::io(path, e))?;
                if end.torn.is_some() {
                    file.set_len(*valid).map_err(|e| LogError::io(path, e))?;
                    file.sync_all().map_err(|e| LogError::io(path, e))?;
                }
                drop(file);
                let file = OpenOptions::new().append(true).open(path).map_err(|e| LogError::io(path, e))?;
                Segment { path: path.clone(), file, len: *valid }
            }
            // No segment yet, or one whose header was never completed: start afresh.
            other => {
                if let Some((path, _)) = other {
                    std::fs::remove_file(path).map_err(|e| LogError::io(path, e))?;
                }
                Segment::create(dir, next)?
            }
        };
        let shared = Arc::new(Shared::default());
        shared.state.lock().expect("log state").durable = end.last_offset;
        let writer = Writer { dir: dir.to_path_buf(), config, segment, shared: Arc::clone(&shared) };
        let thread = std::thread::Builder::new()
            .name("sluice-log".into())
            .spawn(move || writer.run())
            .map_err(|e| LogError::io(dir, e))?;
        Ok(LogWriter { shared, thread: Some(thread), appended: end.last_offset })
    }

    /// Hands a committed transaction's record to the writer; returns at once.
    pub fn append(&mut self, record: &TxRecord) {
        debug_assert_eq!(record.offset, self.appended + 1, "records come in offset order");
        self.appended = record.offset;
        let mut state = self.shared.state.lock().expect("log state");
        if state.pending.is_empty() {
            state.first = record.offset;
        }
        // Framed straight into the buffer the writer takes: no copy per record.
        frame_into(record, &mut state.pending);
        state.last = record.offset;
        if state.idle {
            state.idle = false;
            self.shared.work.notify_one();
        }
    }

    /// Records up to this offset are durable.
    pub fn durable(&self) -> u64 {
        self.shared.state.lock().expect("log state").durable
    }

    /// Waits until the record at `offset` is durable; an error if the writer has failed.
    pub fn wait(&self, offset: u64) -> Result<(), String> {
        self.waiter().wait(offset)
    }

    /// A handle another thread can wait on.
    pub fn waiter(&self) -> Waiter {
        Waiter(Arc::clone(&self.shared))
    }

    /// Makes everything appended durable, then stops the writer.
    pub fn close(mut self) -> Result<(), String> {
        let last = self.appended;
        self.stop();
        self.wait(last)
    }

    fn stop(&mut self) {
        self.shared.state.lock().expect("log state").closed = true;
        self.shared.work.notify_one();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for LogWriter {
    fn drop(&mut self) {
        self.stop();
    }
}

struct Segment {
    path: PathBuf,
    file: File,
    /// Bytes written in full (and, but for the batch being written, durable).
    len: u64,
}

impl Segment {
    /// Creates the segment starting at `first`, header written and made durable with its name.
    fn create(dir: &Path, first: u64) -> Result<Segment, LogError> {
        let path = dir.join(segment_name(first));
        let mut file =
            OpenOptions::new().create_new(true).append(true).open(&path).map_err(|e| LogError::io(&path, e))?;
        if let Err(e) = file.write_all(&header(first)).and_then(|_| file.sync_all()) {
            // A segment never begun is not left behind (its header cut short, say by a full disk).
            let _ = std::fs::remove_file(&path);
            return Err(LogError::io(&path, e));
        }
        sync_dir(dir)?;
        Ok(Segment { path, file, len: HEADER })
    }
}

/// Room a log must have before writes resume after a failed write (see `probe`).
pub const PROBE_BYTES: usize = 1 << 20;

/// Whether the log in `dir` can take writes again after one failed: writes `PROBE_BYTES` to
/// a scratch file, fsyncs it and removes it. Cheap enough to try once a second; a write that
/// fails again after a probe succeeded costs another failure, not a wrong answer.
pub fn probe(dir: &Path) -> Result<(), LogError> {
    let path = dir.join(".probe.tmp");
    let written = File::create(&path).and_then(|mut f| f.write_all(&vec![0; PROBE_BYTES]).and_then(|()| f.sync_all()));
    let removed = std::fs::remove_file(&path);
    written.and(removed).map_err(|e| LogError::io(&path, e))
}

/// Makes a directory's entries (new or renamed files) durable.
pub fn sync_dir(dir: &Path) -> Result<(), LogError> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(|e| LogError::io(dir, e))
}

struct Writer {
    dir: PathBuf,
    config: LogConfig,
    segment: Segment,
    shared: Arc<Shared>,
}

impl Writer {
    fn run(mut self) {
        let mut batch: Vec<u8> = Vec::new();
        loop {
            let (first, last) = {
                let mut state = self.shared.state.lock().expect("log state");
                while state.pending.is_empty() && !state.closed {
                    state.idle = true;
                    state = self.shared.work.wait(state).expect("log state");
                }
                if state.pending.is_empty() {
                    return; // closed, everything written
                }
                std::mem::swap(&mut batch, &mut state.pending);
                (state.first, state.last)
            };
            if let Err(e) = self.write(first, &batch) {
                // The log keeps exactly what became durable: a partly written batch is cut
                // off, so whoever reopens it finds neither this batch nor a torn tail.
                let cut = self.cut_back();
                let mut state = self.shared.state.lock().expect("log state");
                state.failed = Some(match cut {
                    Ok(()) => format!("write failed: {e}"),
                    Err(c) => format!("write failed: {e}; cutting the batch off failed too: {c}"),
                });
                self.shared.changed.notify_all();
                return;
            }
            batch.clear();
            self.shared.state.lock().expect("log state").durable = last;
            self.shared.changed.notify_all();
            if self.config.durability == Durability::Relaxed {
                // With no fsync to wait on, records would be taken one by one, each append
                // waking the writer: a short pause lets the next batch gather.
                std::thread::sleep(RELAXED_GATHER);
            }
        }
    }

    /// Appends a batch of framed records, the first at offset `first`: to a new segment if
    /// the current one has passed its size.
    fn write(&mut self, first: u64, batch: &[u8]) -> Result<(), LogError> {
        if self.segment.len >= self.config.segment_bytes && self.segment.len > HEADER {
            self.segment.file.sync_data().map_err(|e| LogError::io(&self.segment.path, e))?;
            self.segment = Segment::create(&self.dir, first)?;
        }
        self.segment.file.write_all(batch).map_err(|e| LogError::io(&self.segment.path, e))?;
        self.segment.len += batch.len() as u64;
        if self.config.durability == Durability::Full {
            self.segment.file.sync_data().map_err(|e| LogError::io(&self.segment.path, e))?;
        }
        Ok(())
    }

    /// Cuts the current segment back to what was written before the failed batch, durably.
    fn cut_back(&mut self) -> Result<(), LogError> {
        let Segment { path, file, len } = &self.segment;
        file.set_len(*len).and_then(|()| file.sync_all()).map_err(|e| LogError::io(path, e))
    }
}
