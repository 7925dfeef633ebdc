//! The server a benchmark measures: one it starts itself (a `sluice start` child process on
//! an ephemeral 127.0.0.1 port with a fresh data directory, stopped and removed afterwards),
//! or one given by URL. For its own server it reads the process's CPU time and peak resident
//! memory from /proc.

use anyhow::{bail, Context, Result};
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

/// A server under test.
pub struct Target {
    pub url: String,
    own: Option<(Child, PathBuf)>,
}

impl Target {
    /// The server at `url`, or, without one, a server of our own.
    pub fn new(url: Option<&str>) -> Result<Target> {
        match url {
            Some(url) => Ok(Target { url: url.trim_end_matches('/').to_string(), own: None }),
            None => Target::start(),
        }
    }

    fn start() -> Result<Target> {
        let dir = std::env::temp_dir().join(format!("sluice-bench-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let mut child = Command::new(std::env::current_exe()?)
            .args(["start", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(&dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .context("starting a server")?;
        let mut lines = BufReader::new(child.stdout.take().expect("piped")).lines();
        let first = lines.next().transpose()?.unwrap_or_default();
        let Some(url) = first.strip_prefix("listening on ") else {
            let _ = child.kill();
            bail!("the server did not start: {first:?}");
        };
        let url = url.to_string();
        std::thread::spawn(move || lines.for_each(drop));
        Ok(Target { url, own: Some((child, dir)) })
    }

    /// The server's CPU time so far, if it is our own.
    pub fn cpu_seconds(&self) -> Option<f64> {
        let (child, _) = self.own.as_ref()?;
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", child.id())).ok()?;
        // Fields after the command name (which may hold spaces): utime and stime are 14 and 15.
        let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
        let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
        // SAFETY: sysconf only reads a configuration value.
        let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
        Some(ticks / per_second)
    }

    /// The server's peak resident memory in bytes, if it is our own.
    pub fn peak_rss(&self) -> Option<u64> {
        let (child, _) = self.own.as_ref()?;
        let status = std::fs::read_to_string(format!("/proc/{}/status", child.id())).ok()?;
        let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
        Some(line.split_whitespace().nth(1)?.parse::<u64>().ok()? * 1024)
    }
}

impl Drop for Target {
    fn drop(&mut self) {
        if let Some((mut child, dir)) = self.own.take() {
            let _ = child.kill();
            let _ = child.wait();
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}
