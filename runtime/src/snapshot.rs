//! Snapshots: a database's whole state at one offset — every table's definition, rows and
//! auto-increment sequence, plus the module's wasm — in one file, written atomically
//! (temporary file, fsync, rename, fsync of the directory) and checked by CRC32C when read.
//!
//! File: the magic `SLUICESN`, a format version (u32), the offset (u64), the payload's length
//! (u64) and CRC32C (u32), then the payload (postcard). Named `<offset, 20 digits>.snap`.

use crate::commitlog::{numbered_files, LogError};
use crate::logwriter::sync_dir;
use crate::schema::TableDef;
use serde::{Deserialize, Serialize};
use sluice_data::Row;
use std::io::Write;
use std::path::{Path, PathBuf};

const MAGIC: &[u8; 8] = b"SLUICESN";
const VERSION: u32 = 1;
const HEADER: usize = 32;

/// One table's state.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TableState {
    pub def: TableDef,
    /// The next auto-increment value.
    pub seq: i128,
    /// Its rows, a row repeated as often as a bag holds it.
    pub rows: Vec<Row>,
}

impl TableState {
    /// The same state with its rows in order: equal states compare equal.
    pub fn sorted(mut self) -> TableState {
        self.rows.sort_unstable();
        self
    }
}

/// A database's state as of `offset`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    pub offset: u64,
    /// When the transaction at `offset` ran (µs since the Unix epoch; 0 for offset 0).
    pub timestamp_micros: u64,
    pub module: Vec<u8>,
    pub tables: Vec<TableState>,
}

fn file_name(offset: u64) -> String {
    format!("{offset:020}.snap")
}

/// The snapshots in `dir`, by offset.
pub fn list(dir: &Path) -> Result<Vec<(u64, PathBuf)>, LogError> {
    numbered_files(dir, ".snap")
}

/// Removes the temporary files of writes a crash interrupted (`write_atomically`'s).
pub fn remove_unfinished(dir: &Path) -> Result<(), LogError> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Ok(()) };
    for entry in entries.flatten() {
        let name = entry.file_name();
        if name.to_str().is_some_and(|n| n.starts_with('.') && n.ends_with(".tmp")) {
            std::fs::remove_file(entry.path()).map_err(|e| LogError::io(&entry.path(), e))?;
        }
    }
    Ok(())
}

/// Writes `bytes` as `dir/name` so that a crash leaves the old file or the new one, never
/// part of it: a temporary file, fsync, rename, fsync of the directory.
pub(crate) fn write_atomically(dir: &Path, name: &str, bytes: &[u8]) -> Result<PathBuf, LogError> {
    std::fs::create_dir_all(dir).map_err(|e| LogError::io(dir, e))?;
    let path = dir.join(name);
    let tmp = dir.join(format!(".{name}.tmp"));
    let written = std::fs::File::create(&tmp).and_then(|mut f| {
        f.write_all(bytes)?;
        f.sync_all()
    });
    written.map_err(|e| LogError::io(&tmp, e))?;
    std::fs::rename(&tmp, &path).map_err(|e| LogError::io(&path, e))?;
    sync_dir(dir)?;
    Ok(path)
}

/// Writes a snapshot into `dir` atomically (rows in order); returns its path.
pub fn write(dir: &Path, mut snapshot: Snapshot) -> Result<PathBuf, LogError> {
    snapshot.tables = std::mem::take(&mut snapshot.tables).into_iter().map(TableState::sorted).collect();
    let payload = postcard::to_allocvec(&snapshot).expect("snapshots serialize");
    let mut bytes = Vec::with_capacity(HEADER + payload.len());
    bytes.extend_from_slice(MAGIC);
    bytes.extend_from_slice(&VERSION.to_le_bytes());
    bytes.extend_from_slice(&snapshot.offset.to_le_bytes());
    bytes.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    bytes.extend_from_slice(&crc32c::crc32c(&payload).to_le_bytes());
    bytes.extend_from_slice(&payload);
    write_atomically(dir, &file_name(snapshot.offset), &bytes)
}

/// Reads and checks a snapshot.
pub fn read(path: &Path) -> Result<Snapshot, LogError> {
    let bytes = std::fs::read(path).map_err(|e| LogError::io(path, e))?;
    let damaged = |at: u64, reason: &str| LogError::Damaged { path: path.to_path_buf(), at, reason: reason.into() };
    if bytes.len() < HEADER || &bytes[..8] != MAGIC {
        return Err(damaged(0, "not a snapshot (bad header)"));
    }
    let word = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8 bytes"));
    if u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes")) != VERSION {
        return Err(damaged(8, "unsupported snapshot version"));
    }
    let (offset, len) = (word(12), word(20));
    let crc = u32::from_le_bytes(bytes[28..32].try_into().expect("4 bytes"));
    let payload = &bytes[HEADER..];
    if payload.len() as u64 != len {
        return Err(damaged(20, "snapshot length does not match its header"));
    }
    if crc32c::crc32c(payload) != crc {
        return Err(damaged(HEADER as u64, "snapshot checksum does not match"));
    }
    let snapshot: Snapshot =
        postcard::from_bytes(payload).map_err(|e| damaged(HEADER as u64, &format!("snapshot does not decode: {e}")))?;
    if snapshot.offset != offset {
        return Err(damaged(12, "snapshot offset does not match its header"));
    }
    Ok(snapshot)
}
