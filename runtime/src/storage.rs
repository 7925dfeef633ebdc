//! A database's files in its directory: `snapshots/`, `log/` and `modules/`. Creating a
//! database writes a snapshot at offset 0 (empty tables and the module) and keeps the module
//! in `modules/` (as every later republish does, `module_file`); every committed transaction
//! is appended to the log; a snapshot is taken every N transactions and at clean shutdown.
//! A database counts as one only once its creation finished (`init` durable, the caller's
//! files written): until then a `CREATING` marker lies in its directory, and a creation cut
//! off by a crash is no database at all but a leftover that the next creation replaces.
//! Opening one recovers it: the newest valid snapshot, then the log's records after it (a torn
//! tail cut off, damage refused), running the newest module. The log is kept whole, so any past
//! offset can be rebuilt (`as_of`) from the snapshot before it and the records up to it,
//! unless `keep_snapshots` says to keep only the latest snapshots and the log after them.

use crate::commitlog::{self, LogEnd, LogError};
use crate::datastore::Datastore;
use crate::error::DatastoreError;
use crate::host::{Host, HostConfig, LoadError};
use crate::logwriter::{sync_dir, LogConfig, LogWriter};
use crate::module_file;
use crate::record::TxRecord;
use crate::snapshot::{self, Snapshot};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;

/// Storage settings.
#[derive(Clone, Debug)]
pub struct StorageConfig {
    pub log: LogConfig,
    /// A snapshot is taken after this many transactions (0: only at clean shutdown).
    pub snapshot_every: u64,
    /// `None` keeps every snapshot and the whole log (any past offset reads back); `Some(k)`
    /// keeps the newest `k` snapshots (at least 2, so a damaged newest one has one to fall
    /// back on) and the log from the oldest of them on: what is older cannot be read back.
    pub keep_snapshots: Option<usize>,
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig { log: LogConfig::default(), snapshot_every: 100_000, keep_snapshots: None }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error(transparent)]
    Log(#[from] LogError),
    #[error("{}: a database already exists there", .0.display())]
    Exists(PathBuf),
    #[error("{}: its creation was cut off before it finished, so it is no database", .0.display())]
    CutOff(PathBuf),
    #[error("{}: no usable snapshot ({reason})", dir.display())]
    NoSnapshot { dir: PathBuf, reason: String },
    #[error(transparent)]
    Module(#[from] LoadError),
    #[error("recovery failed: {0}")]
    Replay(#[from] DatastoreError),
    #[error("offset {asked} is past the last transaction ({last})")]
    Future { asked: u64, last: u64 },
    #[error("no transaction at or before time {0}")]
    BeforeTime(u64),
    #[error("that point is before the history this database keeps: its oldest snapshot is at offset {oldest}")]
    BeforeRetained { oldest: u64 },
    #[error("commit log: {0}")]
    Writer(String),
}

/// What recovery found.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct RecoveryReport {
    /// Offset of the snapshot recovery started from.
    pub snapshot: u64,
    /// Log records replayed after it.
    pub replayed: u64,
    /// A torn tail cut off the log: file, byte position, what was wrong.
    pub torn: Option<(PathBuf, u64, String)>,
    /// Snapshots passed over because they are damaged (newest first), with the reason.
    pub skipped: Vec<String>,
}

/// An open database's storage: the log's writer and the snapshot schedule.
pub struct Storage {
    dir: PathBuf,
    log: LogWriter,
    config: StorageConfig,
    module: Arc<[u8]>,
    /// Offset of the last snapshot taken (or being written).
    last_snapshot: u64,
    /// A snapshot being written in the background.
    writing: Option<JoinHandle<Result<PathBuf, StorageError>>>,
}

fn log_dir(dir: &Path) -> PathBuf {
    dir.join("log")
}

fn snapshot_dir(dir: &Path) -> PathBuf {
    dir.join("snapshots")
}

fn module_dir(dir: &Path) -> PathBuf {
    dir.join("modules")
}

/// The file marking a database whose creation has not finished.
const CREATING: &str = "CREATING";

/// Whether `dir` holds a database (one whose creation finished).
pub fn exists(dir: &Path) -> bool {
    snapshot_dir(dir).is_dir() && !cut_off(dir)
}

/// Whether `dir` is what a creation cut off before it finished left behind.
pub fn cut_off(dir: &Path) -> bool {
    dir.join(CREATING).exists()
}

/// Where a database being deleted is moved first (database names never start with `.`).
const DELETED_PREFIX: &str = ".deleted-";

/// Deletes the database in `dir` atomically: it is renamed aside (one step, made durable),
/// then its files are removed, so a crash in between leaves no half of it under its name;
/// `remove_deleted` clears what such a crash left.
pub fn delete(dir: &Path) -> Result<(), StorageError> {
    let (Some(parent), Some(name)) = (dir.parent(), dir.file_name()) else {
        return Err(LogError::io(dir, std::io::Error::other("not a database directory")).into());
    };
    let aside = parent.join(format!("{DELETED_PREFIX}{}", name.to_string_lossy()));
    if aside.exists() {
        std::fs::remove_dir_all(&aside).map_err(|e| LogError::io(&aside, e))?;
    }
    std::fs::rename(dir, &aside).map_err(|e| LogError::io(dir, e))?;
    sync_dir(parent)?;
    std::fs::remove_dir_all(&aside).map_err(|e| LogError::io(&aside, e))?;
    Ok(())
}

/// Removes what deletions cut off by a crash left in a data directory; returns their names.
pub fn remove_deleted(data_dir: &Path) -> Result<Vec<String>, StorageError> {
    let mut removed = Vec::new();
    let entries = std::fs::read_dir(data_dir).map_err(|e| LogError::io(data_dir, e))?;
    for path in entries.filter_map(|e| e.ok().map(|e| e.path())) {
        let Some(name) = path.file_name().and_then(|n| n.to_str()).and_then(|n| n.strip_prefix(DELETED_PREFIX)) else {
            continue;
        };
        removed.push(name.to_string());
        std::fs::remove_dir_all(&path).map_err(|e| LogError::io(&path, e))?;
    }
    Ok(removed)
}

/// The databases in a data directory: each subdirectory holding one, with its name, by name.
pub fn databases(data_dir: &Path) -> Result<Vec<(String, PathBuf)>, StorageError> {
    subdirectories(data_dir, exists)
}

/// The leftovers of creations cut off in a data directory, with their names, by name.
pub fn cut_off_creations(data_dir: &Path) -> Result<Vec<(String, PathBuf)>, StorageError> {
    subdirectories(data_dir, cut_off)
}

fn subdirectories(data_dir: &Path, keep: fn(&Path) -> bool) -> Result<Vec<(String, PathBuf)>, StorageError> {
    let entries = std::fs::read_dir(data_dir).map_err(|e| LogError::io(data_dir, e))?;
    let mut out: Vec<(String, PathBuf)> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| keep(p))
        .filter_map(|p| Some((p.file_name()?.to_str()?.to_string(), p)))
        .collect();
    out.sort();
    Ok(out)
}

impl Storage {
    /// Starts creating a database for a module in `dir` (which must not hold one; a creation
    /// cut off there before is cleared first). The host is fresh: its caller runs `init`, logs
    /// it like any transaction and then calls `finish_creation`; until then the directory is
    /// no database.
    pub fn create(
        dir: &Path,
        wasm: &[u8],
        host: HostConfig,
        config: StorageConfig,
    ) -> Result<(Host, Storage), StorageError> {
        if exists(dir) {
            return Err(StorageError::Exists(dir.to_path_buf()));
        }
        if cut_off(dir) {
            std::fs::remove_dir_all(dir).map_err(|e| LogError::io(dir, e))?;
        }
        let host = Host::load(wasm, host)?;
        std::fs::create_dir_all(dir).map_err(|e| LogError::io(dir, e))?;
        let marker = dir.join(CREATING);
        std::fs::File::create(&marker).and_then(|f| f.sync_all()).map_err(|e| LogError::io(&marker, e))?;
        sync_dir(dir)?;
        if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
            sync_dir(parent)?;
        }
        let state =
            Snapshot { offset: 0, timestamp_micros: 0, module: wasm.to_vec(), tables: host.datastore().tables_state() };
        snapshot::write(&snapshot_dir(dir), state)?;
        module_file::write(&module_dir(dir), 0, wasm)?;
        let log = LogWriter::open(&log_dir(dir), &LogEnd::default(), config.log.clone())?;
        let storage =
            Storage { dir: dir.to_path_buf(), log, config, module: wasm.into(), last_snapshot: 0, writing: None };
        Ok((host, storage))
    }

    /// Finishes a creation begun by `create` once `init` is durable: writes the caller's
    /// `files` (name, contents) into the database's directory, then removes the marker: from
    /// then on the directory is a database.
    pub fn finish_creation(&self, files: &[(&str, &[u8])]) -> Result<(), StorageError> {
        for (name, contents) in files {
            let path = self.dir.join(name);
            std::fs::File::create(&path)
                .and_then(|mut f| f.write_all(contents).and_then(|()| f.sync_all()))
                .map_err(|e| LogError::io(&path, e))?;
        }
        let marker = self.dir.join(CREATING);
        std::fs::remove_file(&marker).map_err(|e| LogError::io(&marker, e))?;
        Ok(sync_dir(&self.dir)?)
    }

    /// Recovers the database in `dir`.
    pub fn open(
        dir: &Path,
        host: HostConfig,
        config: StorageConfig,
    ) -> Result<(Host, Storage, RecoveryReport), StorageError> {
        if cut_off(dir) {
            return Err(StorageError::CutOff(dir.to_path_buf()));
        }
        snapshot::remove_unfinished(&snapshot_dir(dir))?;
        snapshot::remove_unfinished(&module_dir(dir))?;
        let mut report = RecoveryReport::default();
        let (snap, skipped) = newest_snapshot(dir, u64::MAX)?;
        report.skipped = skipped;
        report.snapshot = snap.offset;
        // The newest module runs, whichever snapshot the state comes from (replaying the log
        // runs no module code).
        let module = match module_file::newest(&module_dir(dir))? {
            Some((_, wasm)) => wasm,
            None => snap.module,
        };
        let mut host = Host::load(&module, host)?;
        host.restore(snap.offset, snap.tables)?;
        let mut failure = None;
        let end = commitlog::read(&log_dir(dir), snap.offset, |record| {
            if let Err(e) = host.replay(&record) {
                failure = Some(e);
                return false;
            }
            report.replayed += 1;
            true
        })?;
        if let Some(e) = failure {
            return Err(e.into());
        }
        if end.last_offset < snap.offset {
            return Err(StorageError::Log(LogError::Damaged {
                path: log_dir(dir),
                at: 0,
                reason: format!("the log ends at offset {}, before the snapshot at {}", end.last_offset, snap.offset),
            }));
        }
        if let (Some((path, _)), Some((at, reason))) = (&end.segment, &end.torn) {
            report.torn = Some((path.clone(), *at, reason.clone()));
        }
        let log = LogWriter::open(&log_dir(dir), &end, config.log.clone())?;
        let storage = Storage {
            dir: dir.to_path_buf(),
            log,
            config,
            module: module.into(),
            last_snapshot: snap.offset,
            writing: None,
        };
        Ok((host, storage, report))
    }

    /// Hands a committed transaction to the log; it is durable once `durable()` reaches it.
    /// Starts a snapshot when one is due; reports a background snapshot that failed.
    pub fn append(&mut self, record: &TxRecord, host: &Host) -> Result<(), StorageError> {
        self.log.append(record);
        let every = self.config.snapshot_every;
        if every > 0 && record.offset - self.last_snapshot >= every {
            // One at a time: while one is still being written, the next waits.
            if self.writing.as_ref().is_some_and(|w| !w.is_finished()) {
                return Ok(());
            }
            self.finish_snapshot()?;
            self.start_snapshot(host, record.meta.timestamp_micros);
        }
        Ok(())
    }

    /// Transactions up to this offset are durable.
    pub fn durable(&self) -> u64 {
        self.log.durable()
    }

    /// Waits until the transaction at `offset` is durable.
    pub fn wait(&self, offset: u64) -> Result<(), StorageError> {
        self.log.wait(offset).map_err(StorageError::Writer)
    }

    /// Copies the host's tables (the executor's only cost) and writes them on a thread of its
    /// own, once the log holds everything before them (so the log has no gap behind a
    /// snapshot).
    fn start_snapshot(&mut self, host: &Host, timestamp_micros: u64) {
        let offset = host.datastore().offset();
        let state = Snapshot {
            offset,
            timestamp_micros,
            module: self.module.to_vec(),
            tables: host.datastore().tables_state(),
        };
        let (dir, durable) = (self.dir.clone(), self.log.waiter());
        let keep = self.config.keep_snapshots;
        self.last_snapshot = offset;
        self.writing = Some(std::thread::spawn(move || {
            durable.wait(offset).map_err(StorageError::Writer)?;
            let path = snapshot::write(&snapshot_dir(&dir), state)?;
            if let Some(keep) = keep {
                prune(&dir, keep.max(2))?;
            }
            Ok(path)
        }));
    }

    /// Waits for the snapshot being written, if any; its path, or why it failed.
    fn finish_snapshot(&mut self) -> Result<Option<PathBuf>, StorageError> {
        match self.writing.take() {
            Some(w) => w.join().map_err(|_| StorageError::Writer("the snapshot thread panicked".into()))?.map(Some),
            None => Ok(None),
        }
    }

    /// Replaces the module (its tables unchanged): the module is kept in a file of its own,
    /// so recovery from here on runs the new code whatever becomes of the snapshots, and a
    /// snapshot with it is written at once.
    pub fn replace_module(&mut self, wasm: &[u8], host: &Host, timestamp_micros: u64) -> Result<(), StorageError> {
        let file = module_file::write(&module_dir(&self.dir), host.datastore().offset(), wasm)?;
        let old = std::mem::replace(&mut self.module, wasm.into());
        self.snapshot(host, timestamp_micros).map(drop).inspect_err(|_| {
            // The old module goes on running, so recovery must run it too.
            let _ = std::fs::remove_file(&file);
            self.module = old;
        })
    }

    /// The module's wasm, as recovery would run it.
    pub fn module(&self) -> &[u8] {
        &self.module
    }

    /// Writes a snapshot of the host's state now; returns its path.
    pub fn snapshot(&mut self, host: &Host, timestamp_micros: u64) -> Result<PathBuf, StorageError> {
        self.finish_snapshot()?;
        self.start_snapshot(host, timestamp_micros);
        Ok(self.finish_snapshot()?.expect("just started"))
    }

    /// After the log failed a write (`wait` answered an error): the database as the disk holds
    /// it, recovered afresh, so what never became durable is gone from memory too. The failed
    /// batch was cut off the log by its writer; a snapshot being written finishes first.
    pub fn reopen(mut self, host: HostConfig) -> Result<(Host, Storage, RecoveryReport), StorageError> {
        drop(self.finish_snapshot());
        let (dir, config) = (self.dir.clone(), self.config.clone());
        drop(self);
        Storage::open(&dir, host, config)
    }

    /// Whether the log can take writes again (see `logwriter::probe`).
    pub fn probe(&self) -> Result<(), StorageError> {
        Ok(crate::logwriter::probe(&log_dir(&self.dir))?)
    }

    /// Clean shutdown: everything durable, and a snapshot so the next start replays nothing.
    pub fn close(mut self, host: &Host, timestamp_micros: u64) -> Result<(), StorageError> {
        self.finish_snapshot()?;
        if host.datastore().offset() > self.last_snapshot {
            self.snapshot(host, timestamp_micros)?;
        }
        let log = self.log;
        log.close().map_err(StorageError::Writer)
    }
}

/// Keeps the newest `keep` snapshots and the log segments holding records after the oldest
/// of them; removes the rest (the segment being written is always after it).
fn prune(dir: &Path, keep: usize) -> Result<(), StorageError> {
    let snapshots = snapshot::list(&snapshot_dir(dir))?;
    let Some(cut) = snapshots.len().checked_sub(keep) else { return Ok(()) };
    for (_, path) in &snapshots[..cut] {
        std::fs::remove_file(path).map_err(|e| LogError::io(path, e))?;
    }
    let oldest = snapshots[cut].0;
    let segments = commitlog::segments(&log_dir(dir))?;
    // A segment is wholly before the oldest kept snapshot when the next one starts at or
    // before the first offset recovery from it would read.
    for pair in segments.windows(2) {
        let ((_, path), (next_first, _)) = (&pair[0], &pair[1]);
        if *next_first <= oldest + 1 {
            std::fs::remove_file(path).map_err(|e| LogError::io(path, e))?;
        }
    }
    sync_dir(&log_dir(dir))?;
    Ok(())
}

/// The newest snapshot at or before `offset` that reads back intact, and the damaged ones
/// passed over.
fn newest_snapshot(dir: &Path, offset: u64) -> Result<(Snapshot, Vec<String>), StorageError> {
    let mut skipped = Vec::new();
    for (at, path) in snapshot::list(&snapshot_dir(dir))?.into_iter().rev() {
        if at > offset {
            continue;
        }
        match snapshot::read(&path) {
            Ok(s) => return Ok((s, skipped)),
            Err(e) => skipped.push(e.to_string()),
        }
    }
    let why = if skipped.is_empty() { "none found".to_string() } else { skipped.join("; ") };
    Err(StorageError::NoSnapshot { dir: dir.to_path_buf(), reason: why })
}

/// A past point of a database: an offset, or the last transaction at or before a time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AsOf {
    Offset(u64),
    /// Microseconds since the Unix epoch.
    Time(u64),
}

/// The database's tables as they were at a past point, rebuilt from the snapshot before it
/// and the log records up to it (no module is loaded: the tables come from the snapshot).
pub fn as_of(dir: &Path, point: AsOf) -> Result<Datastore, StorageError> {
    let (limit, time) = match point {
        AsOf::Offset(n) => (n, u64::MAX),
        AsOf::Time(t) => (u64::MAX, t),
    };
    // The newest snapshot no later than the point (a snapshot's time is its last
    // transaction's).
    let mut skipped = Vec::new();
    let mut chosen = None;
    for (at, path) in snapshot::list(&snapshot_dir(dir))?.into_iter().rev() {
        if at > limit {
            continue;
        }
        match snapshot::read(&path) {
            Ok(s) if s.timestamp_micros <= time => {
                chosen = Some(s);
                break;
            }
            Ok(_) => {}
            Err(e) => skipped.push(e.to_string()),
        }
    }
    let snap = match chosen {
        Some(snap) => snap,
        // Nothing that early is kept (`keep_snapshots`), rather than nothing readable.
        None if skipped.is_empty() => {
            let oldest = snapshot::list(&snapshot_dir(dir))?.first().map(|(at, _)| *at);
            return Err(match oldest {
                Some(oldest) => StorageError::BeforeRetained { oldest },
                None => StorageError::NoSnapshot { dir: dir.to_path_buf(), reason: "none found".into() },
            });
        }
        None => return Err(StorageError::NoSnapshot { dir: dir.to_path_buf(), reason: skipped.join("; ") }),
    };
    let mut ds = Datastore::new();
    for t in &snap.tables {
        ds.create_table(t.def.clone())?;
    }
    ds.restore(snap.offset, snap.tables)?;
    let mut failure = None;
    let end = commitlog::read(&log_dir(dir), snap.offset, |record| {
        if record.offset > limit || record.meta.timestamp_micros > time {
            return false;
        }
        if let Err(e) = ds.replay(&record) {
            failure = Some(e);
            return false;
        }
        true
    })?;
    if let Some(e) = failure {
        return Err(e.into());
    }
    match point {
        AsOf::Offset(n) if ds.offset() < n => Err(StorageError::Future { asked: n, last: end.last_offset }),
        AsOf::Time(t) if ds.offset() == 0 && snap.timestamp_micros == 0 && end.last_offset > 0 => {
            Err(StorageError::BeforeTime(t))
        }
        _ => Ok(ds),
    }
}

/// Every transaction's record in the log after `after`, in order, to `each` (which may stop
/// by returning false).
pub fn history(dir: &Path, after: u64, each: impl FnMut(TxRecord) -> bool) -> Result<LogEnd, StorageError> {
    Ok(commitlog::read(&log_dir(dir), after, each)?)
}

/// What `verify` found in a database directory.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct VerifyReport {
    /// Snapshots that read back intact, by offset.
    pub snapshots: Vec<u64>,
    /// Damaged snapshots, with the reason.
    pub bad_snapshots: Vec<String>,
    /// Log segments and records read.
    pub segments: usize,
    pub records: u64,
    pub last_offset: u64,
    /// A torn tail (recovery would cut it off): file, byte, reason.
    pub torn: Option<(PathBuf, u64, String)>,
    /// Damage that refuses start-up.
    pub damage: Option<String>,
}

impl VerifyReport {
    /// Whether the database would start (a torn tail is expected after a crash).
    pub fn ok(&self) -> bool {
        self.damage.is_none() && !self.snapshots.is_empty()
    }
}

/// Checks a database directory without changing it: every snapshot and the whole log.
pub fn verify(dir: &Path) -> Result<VerifyReport, StorageError> {
    let mut report = VerifyReport::default();
    for (at, path) in snapshot::list(&snapshot_dir(dir))? {
        match snapshot::read(&path) {
            Ok(_) => report.snapshots.push(at),
            Err(e) => report.bad_snapshots.push(e.to_string()),
        }
    }
    report.segments = commitlog::segments(&log_dir(dir))?.len();
    let mut records = 0;
    match commitlog::read(&log_dir(dir), 0, |_| {
        records += 1;
        true
    }) {
        Ok(end) => {
            report.last_offset = end.last_offset;
            if let (Some((path, _)), Some((at, reason))) = (end.segment, end.torn) {
                report.torn = Some((path, at, reason));
            }
        }
        Err(e) => report.damage = Some(e.to_string()),
    }
    report.records = records;
    if let Err(e) = module_file::newest(&module_dir(dir)) {
        report.damage.get_or_insert(e.to_string());
    }
    if report.damage.is_none() && report.snapshots.last().is_some_and(|s| *s > report.last_offset) {
        report.damage = Some(format!("the log ends at offset {}, before the newest snapshot", report.last_offset));
    }
    Ok(report)
}

/// What `repair` did: where it kept a copy of the damaged files, and what it cut.
#[derive(Debug, Clone, PartialEq)]
pub struct RepairReport {
    /// The copy of the database's files as they were, inside its directory (`None`: there
    /// was nothing to repair, so nothing was copied).
    pub kept: Option<PathBuf>,
    /// What was cut, and what that loses.
    pub cut: Vec<String>,
}

/// Makes a damaged database start again, losing what it must, after copying its files as they
/// were into `damaged-<seconds>/` inside its directory: the log is cut at damage in a record
/// (every transaction from there on is lost, acknowledged ones too), and a damaged newest
/// module file is moved into the copy (the module before it runs; republish to run it
/// again). Damage of any other kind is refused, saying what it is.
pub fn repair(dir: &Path) -> Result<RepairReport, StorageError> {
    let seconds = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let kept = dir.join(format!("damaged-{seconds}"));
    let mut cut = Vec::new();
    let log_damage = match commitlog::read(&log_dir(dir), 0, |_| true) {
        Ok(_) => None,
        Err(LogError::Damaged { path, at, reason }) => Some((path, at, reason)),
        Err(e) => return Err(e.into()),
    };
    let module_damage = module_file::newest(&module_dir(dir)).err();
    if log_damage.is_none() && module_damage.is_none() {
        if let Some(other) = verify(dir)?.damage {
            return Err(LogError::io(dir, std::io::Error::other(format!("cannot repair this damage: {other}"))).into());
        }
        return Ok(RepairReport { kept: None, cut });
    }
    // A new directory: a second repair never writes over the first one's copy.
    std::fs::create_dir(&kept).map_err(|e| LogError::io(&kept, e))?;
    for sub in ["log", "snapshots", "modules"] {
        copy_dir(&dir.join(sub), &kept.join(sub))?;
    }
    if let Some((path, at, reason)) = log_damage {
        let segments = commitlog::segments(&log_dir(dir))?;
        let damaged = segments.iter().position(|(_, p)| *p == path);
        let Some(damaged) = damaged else {
            return Err(LogError::io(&path, std::io::Error::other(format!("cannot repair: {reason}"))).into());
        };
        if at == 0 {
            // A segment that is wrong from its first byte (misnamed after a gap): it goes.
            std::fs::remove_file(&path).map_err(|e| LogError::io(&path, e))?;
        } else {
            let file = std::fs::OpenOptions::new().write(true).open(&path).map_err(|e| LogError::io(&path, e))?;
            file.set_len(at).and_then(|()| file.sync_all()).map_err(|e| LogError::io(&path, e))?;
        }
        for (_, later) in &segments[damaged + 1..] {
            std::fs::remove_file(later).map_err(|e| LogError::io(later, e))?;
        }
        sync_dir(&log_dir(dir))?;
        let end = commitlog::read(&log_dir(dir), 0, |_| true)?;
        cut.push(format!(
            "the log was cut at {}, byte {at} ({reason}), and {} later segments removed: every transaction \
             after offset {} is lost",
            path.display(),
            segments.len() - damaged - 1,
            end.last_offset
        ));
        // Snapshots past the new end of the log would refuse start-up: they go to the copy.
        for (offset, snap) in snapshot::list(&snapshot_dir(dir))? {
            if offset > end.last_offset {
                std::fs::remove_file(&snap).map_err(|e| LogError::io(&snap, e))?;
                cut.push(format!("the snapshot at offset {offset}, past the log's new end, was removed"));
            }
        }
    }
    if let Some(e) = module_damage {
        if let Some((_, newest)) = commitlog::numbered_files(&module_dir(dir), ".wasm")?.pop() {
            std::fs::remove_file(&newest).map_err(|e| LogError::io(&newest, e))?;
            cut.push(format!("the newest module was damaged ({e}) and removed: the one before it runs; republish"));
        }
    }
    Ok(RepairReport { kept: Some(kept), cut })
}

/// Copies a directory's files (one level, as a database's subdirectories hold them).
fn copy_dir(from: &Path, to: &Path) -> Result<(), StorageError> {
    let Ok(entries) = std::fs::read_dir(from) else { return Ok(()) };
    std::fs::create_dir_all(to).map_err(|e| LogError::io(to, e))?;
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_file() {
            let target = to.join(entry.file_name());
            std::fs::copy(&path, &target).map_err(|e| LogError::io(&path, e))?;
        }
    }
    sync_dir(to)?;
    Ok(())
}
