//! Runs the project's sqllogictest corpus (tests/slt/*.slt) in both modes, and the `sluice slt`
//! command as a user runs it.

use sluice::slt::{run_file, Mode};
use std::path::{Path, PathBuf};
use std::process::Command;

fn corpus() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/slt");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("tests/slt exists")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "slt"))
        .collect();
    files.sort();
    assert!(files.len() >= 10, "corpus is missing files: {files:?}");
    files
}

fn run_corpus(mode: Mode, workers: usize) {
    let mut passed = 0;
    let mut failures = Vec::new();
    for f in corpus() {
        let s = run_file(&f, mode, workers).expect("file parses");
        passed += s.passed;
        failures.extend(s.failures.iter().map(|x| x.to_string()));
    }
    assert!(failures.is_empty(), "{} failures:\n{}", failures.len(), failures.join("\n"));
    assert!(passed > 500, "only {passed} records ran");
}

#[test]
fn corpus_oneshot() {
    run_corpus(Mode::Oneshot, 1);
}

#[test]
fn corpus_incremental() {
    run_corpus(Mode::Incremental, 1);
}

#[test]
fn corpus_incremental_two_workers() {
    run_corpus(Mode::Incremental, 2);
}

#[test]
fn cli_reports_failures_with_file_line_and_exit_status() {
    let dir = std::env::temp_dir().join(format!("sluice-slt-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("bad.slt");
    std::fs::write(
        &file,
        "statement ok\nCREATE TABLE t (a INTEGER)\n\nstatement ok\nINSERT INTO t VALUES (1), (2)\n\n\
         query I rowsort\nSELECT a FROM t\n----\n1\n2\n\nquery I rowsort\nSELECT a + 1 FROM t\n----\n5\n7\n",
    )
    .unwrap();
    for mode in ["oneshot", "incremental"] {
        let out = Command::new(env!("CARGO_BIN_EXE_sluice")).args(["slt", "--mode", mode]).arg(&file).output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(!out.status.success(), "a failing file must exit non-zero");
        assert!(stdout.contains("bad.slt:13:"), "failure names file:line: {stdout}");
        assert!(stdout.contains("expected [5 | 7] got [2 3]"), "failure shows expected and got: {stdout}");
        assert!(stdout.trim_end().ends_with("3 passed, 1 failed"), "{stdout}");
    }
    let ok = Command::new(env!("CARGO_BIN_EXE_sluice")).args(["slt"]).arg(corpus()[0].clone()).output().unwrap();
    assert!(ok.status.success());
    std::fs::remove_dir_all(&dir).ok();
}
