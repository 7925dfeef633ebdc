//! One process owns a data directory: an exclusive lock on `DIR/LOCK`, taken before anything
//! in the directory is read or written and held for the owner's lifetime. Two servers
//! appending to the same logs would interleave their records and leave a log that no longer
//! recovers; the lock makes the second one stop first, naming the holder's pid.
//!
//! The lock is the operating system's (`flock` on Unix), so it goes with the process however
//! it ends, SIGKILL included: a stale `LOCK` file holds nothing.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// The lock file's name in a data directory.
pub const LOCK_FILE: &str = "LOCK";

/// A held lock on a data directory; dropping it releases the lock.
#[derive(Debug)]
pub struct DirLock {
    _file: File,
    path: PathBuf,
}

/// Why a data directory could not be locked.
#[derive(Debug, thiserror::Error)]
pub enum DirLockError {
    #[error(
        "the data directory {} is in use by another sluice process{}: stop it first, or give \
         another --data-dir",
        .dir.display(),
        .pid.map(|p| format!(" (pid {p})")).unwrap_or_default()
    )]
    Held { dir: PathBuf, pid: Option<u32> },
    #[error("cannot lock the data directory {}: {source}", .dir.display())]
    Io { dir: PathBuf, source: std::io::Error },
}

impl DirLock {
    /// Takes the lock on `dir` (created if missing) without waiting, and records this
    /// process's pid in it for whoever is refused next.
    pub fn acquire(dir: &Path) -> Result<DirLock, DirLockError> {
        let io = |source| DirLockError::Io { dir: dir.to_path_buf(), source };
        std::fs::create_dir_all(dir).map_err(io)?;
        let path = dir.join(LOCK_FILE);
        let mut file =
            OpenOptions::new().read(true).write(true).create(true).truncate(false).open(&path).map_err(io)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut text = String::new();
                let pid = file.read_to_string(&mut text).ok().and_then(|_| text.trim().parse().ok());
                return Err(DirLockError::Held { dir: dir.to_path_buf(), pid });
            }
            Err(TryLockError::Error(e)) => return Err(io(e)),
        }
        file.set_len(0).and_then(|()| file.seek(SeekFrom::Start(0))).map_err(io)?;
        writeln!(file, "{}", std::process::id()).and_then(|()| file.flush()).map_err(io)?;
        Ok(DirLock { _file: file, path })
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_is_refused_naming_the_holder_until_the_first_is_dropped() {
        let dir = std::env::temp_dir().join(format!("sluice-dirlock-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let first = DirLock::acquire(&dir).unwrap();
        let refused = DirLock::acquire(&dir).unwrap_err();
        let message = refused.to_string();
        assert!(message.contains(&format!("(pid {})", std::process::id())), "{message}");
        assert!(message.contains(&dir.display().to_string()), "{message}");
        drop(first);
        let again = DirLock::acquire(&dir).unwrap();
        assert_eq!(std::fs::read_to_string(again.path()).unwrap().trim(), std::process::id().to_string());
        drop(again);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
