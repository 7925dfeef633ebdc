//! Group commit: a writer thread appends framed records to the commit log's current segment
//! and makes each batch durable with one fsync, so many transactions share its cost. The
//! executor hands records over and carries on; whoever must not answer before a transaction
//! is durable waits for the durable offset to pass it.

use crate::commitlog::{frame, header, segment_name, LogEnd, LogError, HEADER};
use crate::record::TxRecord;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{channel, Receiver, Sender};
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
    /// A segment is closed and a new one started once it passes this many bytes.
    pub segment_bytes: u64,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig { durability: Durability::Full, segment_bytes: 64 << 20 }
    }
}

/// Bytes written per batch at most, so one write stays bounded.
const BATCH_BYTES: usize = 8 << 20;

#[derive(Default)]
struct State {
    /// Records up to this offset are durable.
    durable: u64,
    /// The writer stopped on this error: nothing after `durable` will become durable.
    failed: Option<String>,
}

#[derive(Default)]
struct Shared {
    state: Mutex<State>,
    changed: Condvar,
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

/// The commit log's appending end.
pub struct LogWriter {
    sender: Option<Sender<(u64, Vec<u8>)>>,
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
        let (sender, receiver) = channel();
        let writer = Writer { dir: dir.to_path_buf(), config, segment, shared: Arc::clone(&shared) };
        let thread = std::thread::Builder::new()
            .name("sluice-log".into())
            .spawn(move || writer.run(receiver))
            .map_err(|e| LogError::io(dir, e))?;
        Ok(LogWriter { sender: Some(sender), shared, thread: Some(thread), appended: end.last_offset })
    }

    /// Hands a committed transaction's record to the writer; returns at once.
    pub fn append(&mut self, record: &TxRecord) {
        debug_assert_eq!(record.offset, self.appended + 1, "records come in offset order");
        self.appended = record.offset;
        if let Some(s) = &self.sender {
            // A writer that has stopped has recorded why; waiters learn it from `wait`.
            let _ = s.send((record.offset, frame(record)));
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
        self.sender = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.wait(last)
    }
}

impl Drop for LogWriter {
    fn drop(&mut self) {
        self.sender = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

struct Segment {
    path: PathBuf,
    file: File,
    len: u64,
}

impl Segment {
    /// Creates the segment starting at `first`, header written and made durable with its name.
    fn create(dir: &Path, first: u64) -> Result<Segment, LogError> {
        let path = dir.join(segment_name(first));
        let mut file =
            OpenOptions::new().create_new(true).append(true).open(&path).map_err(|e| LogError::io(&path, e))?;
        file.write_all(&header(first)).and_then(|_| file.sync_all()).map_err(|e| LogError::io(&path, e))?;
        sync_dir(dir)?;
        Ok(Segment { path, file, len: HEADER })
    }
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
    fn run(mut self, receiver: Receiver<(u64, Vec<u8>)>) {
        let mut buf: Vec<u8> = Vec::new();
        while let Ok(first) = receiver.recv() {
            // Everything queued meanwhile joins the batch.
            let mut batch = vec![first];
            let mut bytes = batch[0].1.len();
            while bytes < BATCH_BYTES {
                match receiver.try_recv() {
                    Ok(m) => {
                        bytes += m.1.len();
                        batch.push(m);
                    }
                    Err(_) => break,
                }
            }
            let last = batch.last().expect("a batch has records").0;
            if let Err(e) = self.write(&batch, &mut buf) {
                let mut state = self.shared.state.lock().expect("log state");
                state.failed = Some(format!("commit log write failed: {e}"));
                self.shared.changed.notify_all();
                return;
            }
            self.shared.state.lock().expect("log state").durable = last;
            self.shared.changed.notify_all();
        }
    }

    fn write(&mut self, batch: &[(u64, Vec<u8>)], buf: &mut Vec<u8>) -> Result<(), LogError> {
        buf.clear();
        for (offset, framed) in batch {
            if self.segment.len + (buf.len() + framed.len()) as u64 > self.config.segment_bytes
                && self.segment.len + buf.len() as u64 > HEADER
            {
                self.flush(buf)?;
                self.segment.file.sync_data().map_err(|e| LogError::io(&self.segment.path, e))?;
                self.segment = Segment::create(&self.dir, *offset)?;
            }
            buf.extend_from_slice(framed);
        }
        self.flush(buf)?;
        if self.config.durability == Durability::Full {
            self.segment.file.sync_data().map_err(|e| LogError::io(&self.segment.path, e))?;
        }
        Ok(())
    }

    fn flush(&mut self, buf: &mut Vec<u8>) -> Result<(), LogError> {
        self.segment.file.write_all(buf).map_err(|e| LogError::io(&self.segment.path, e))?;
        self.segment.len += buf.len() as u64;
        buf.clear();
        Ok(())
    }
}
