//! `sluice build`: compiles a module crate to wasm32-unknown-unknown with whichever toolchain
//! the machine has — rustup's wasm32 target, or Debian's `rustc-web` packages (rebuilding std
//! from `rust-web-src`, linking with Debian's `wasm-ld`) — and says exactly what to install
//! where there is neither.

use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;

const TARGET: &str = "wasm32-unknown-unknown";

/// What to install when no toolchain is found.
pub const INSTALL_HINT: &str = "no WebAssembly toolchain found. Install one of:\n  \
    rustup target add wasm32-unknown-unknown\n  \
    apt-get install -y --no-install-recommends rustc-web cargo-web rust-web-src lld-19   (Debian)";

/// A way to compile for wasm32.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Toolchain {
    /// rustup's toolchain with the wasm32 target installed.
    Rustup,
    /// Debian's rustc-web / cargo-web with std sources, linking with this `wasm-ld`.
    Debian { linker: PathBuf },
}

/// Finds a toolchain: rustup's target first, then the Debian packages.
pub fn detect() -> Option<Toolchain> {
    if rustup_has_target() {
        return Some(Toolchain::Rustup);
    }
    let debian = Path::new("/usr/bin/rustc").exists()
        && Path::new("/usr/bin/cargo").exists()
        && Path::new("/usr/lib/rustlib/src/rust/library/std").exists();
    if debian {
        if let Some(linker) = wasm_linker() {
            return Some(Toolchain::Debian { linker });
        }
    }
    None
}

fn rustup_has_target() -> bool {
    let Ok(out) = Command::new("rustc").args(["--print", "sysroot"]).output() else { return false };
    let sysroot = String::from_utf8_lossy(&out.stdout).trim().to_string();
    out.status.success() && Path::new(&sysroot).join("lib/rustlib").join(TARGET).join("lib").exists()
}

/// `wasm-ld`, or the newest versioned `wasm-ld-N`, on PATH.
fn wasm_linker() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    let dirs: Vec<PathBuf> = std::env::split_paths(&path).collect();
    let names = std::iter::once("wasm-ld".to_string()).chain((14..=30).rev().map(|v| format!("wasm-ld-{v}")));
    for name in names {
        if let Some(p) = dirs.iter().map(|d| d.join(&name)).find(|p| p.exists()) {
            return Some(p);
        }
    }
    None
}

/// Builds the module crate in `dir` (release) and returns the path of its `.wasm` file.
pub fn build(dir: &Path) -> Result<PathBuf> {
    let manifest = dir.join("Cargo.toml");
    if !manifest.exists() {
        bail!("{} has no Cargo.toml: `sluice build` needs a module crate", dir.display());
    }
    let toolchain = detect().context(INSTALL_HINT)?;
    let target_dir = dir.join("target-wasm");
    let mut cmd = match &toolchain {
        Toolchain::Rustup => Command::new("cargo"),
        Toolchain::Debian { linker } => {
            let mut c = Command::new("/usr/bin/cargo");
            c.env("RUSTC", "/usr/bin/rustc")
                .env("RUSTC_BOOTSTRAP", "1")
                .env("CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_LINKER", linker)
                .env_remove("RUSTFLAGS");
            c
        }
    };
    cmd.arg("build").arg("--release").args(["--target", TARGET]).arg("--manifest-path").arg(&manifest);
    cmd.arg("--target-dir").arg(&target_dir);
    if matches!(toolchain, Toolchain::Debian { .. }) {
        cmd.arg("-Zbuild-std=std,panic_abort");
    }
    // A module crate is its own workspace root, not a member of an enclosing one.
    let status = cmd.status().with_context(|| format!("running cargo for {toolchain:?}"))?;
    if !status.success() {
        bail!("cargo build of {} failed ({status})", dir.display());
    }
    let out = target_dir.join(TARGET).join("release");
    let wasm = std::fs::read_dir(&out)
        .with_context(|| format!("reading {}", out.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "wasm"))
        .max_by_key(|p| p.metadata().and_then(|m| m.modified()).ok());
    wasm.with_context(|| format!("the build produced no .wasm in {} (is the crate a cdylib?)", out.display()))
}
