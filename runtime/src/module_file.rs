//! The modules a database has run, each kept in a file of its own (`modules/<offset>.wasm`,
//! the offset after which it took over), apart from the snapshots. Recovery runs the newest
//! one: a damaged snapshot then costs replaying more of the log, never the module's code
//! (an older snapshot holds an older module, and falling back to it would silently run code
//! its owner had replaced). A damaged newest module file refuses start-up, naming the file.
//!
//! File: the magic `SLUICEMD`, a format version (u32), the wasm's length (u64) and CRC32C
//! (u32), then the wasm. Written atomically, as snapshots are.

use crate::commitlog::{numbered_files, LogError};
use crate::snapshot::write_atomically;
use std::path::{Path, PathBuf};

const MAGIC: &[u8; 8] = b"SLUICEMD";
const VERSION: u32 = 1;
const HEADER: usize = 24;

/// Keeps `wasm` as the module that runs after `offset`.
pub fn write(dir: &Path, offset: u64, wasm: &[u8]) -> Result<PathBuf, LogError> {
    let mut bytes = Vec::with_capacity(HEADER + wasm.len());
    bytes.extend_from_slice(MAGIC);
    bytes.extend_from_slice(&VERSION.to_le_bytes());
    bytes.extend_from_slice(&(wasm.len() as u64).to_le_bytes());
    bytes.extend_from_slice(&crc32c::crc32c(wasm).to_le_bytes());
    bytes.extend_from_slice(wasm);
    write_atomically(dir, &format!("{offset:020}.wasm"), &bytes)
}

/// The newest module kept in `dir`, with the offset it took over after; `None` if there is
/// none (a database made before modules were kept apart).
pub fn newest(dir: &Path) -> Result<Option<(u64, Vec<u8>)>, LogError> {
    let Some((offset, path)) = numbered_files(dir, ".wasm")?.pop() else { return Ok(None) };
    read(&path).map(|wasm| Some((offset, wasm)))
}

/// Reads and checks a module file.
fn read(path: &Path) -> Result<Vec<u8>, LogError> {
    let mut bytes = std::fs::read(path).map_err(|e| LogError::io(path, e))?;
    let damaged = |at: u64, reason: &str| LogError::Damaged { path: path.to_path_buf(), at, reason: reason.into() };
    if bytes.len() < HEADER || &bytes[..8] != MAGIC {
        return Err(damaged(0, "not a module file (bad header)"));
    }
    if u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes")) != VERSION {
        return Err(damaged(8, "unsupported module file version"));
    }
    let len = u64::from_le_bytes(bytes[12..20].try_into().expect("8 bytes"));
    let crc = u32::from_le_bytes(bytes[20..24].try_into().expect("4 bytes"));
    if (bytes.len() - HEADER) as u64 != len {
        return Err(damaged(12, "module length does not match its header"));
    }
    if crc32c::crc32c(&bytes[HEADER..]) != crc {
        return Err(damaged(HEADER as u64, "module checksum does not match"));
    }
    bytes.drain(..HEADER);
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_newest_module_reads_back_and_damage_is_named() {
        let dir = std::env::temp_dir().join(format!("sluice-modules-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(newest(&dir).unwrap(), None);
        write(&dir, 0, b"first").unwrap();
        let path = write(&dir, 7, b"second").unwrap();
        assert_eq!(newest(&dir).unwrap(), Some((7, b"second".to_vec())));
        let mut bytes = std::fs::read(&path).unwrap();
        *bytes.last_mut().unwrap() ^= 1;
        std::fs::write(&path, bytes).unwrap();
        let e = newest(&dir).unwrap_err().to_string();
        assert!(e.contains("00000000000000000007.wasm") && e.contains("checksum"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
