//! The commit log and snapshots on disk: records written by the group-commit writer read back
//! in order across segments; a torn tail is reported and cut off; damage in the middle (a
//! flipped bit in a payload or a length, a missing segment) refuses to read, naming the file
//! and byte; snapshots round-trip and detect damage; replaying a datastore's records rebuilds
//! its state exactly.

use sluice_data::{Column, DataType, Row, TableSchema, Value};
use sluice_runtime::commitlog::{self, LogEnd, LogError, FRAME, HEADER};
use sluice_runtime::logwriter::{LogConfig, LogWriter};
use sluice_runtime::schema::TableDef;
use sluice_runtime::snapshot::{self, Snapshot, TableState};
use sluice_runtime::{CommitMeta, Datastore, Durability, TxRecord};
use std::path::{Path, PathBuf};

fn tempdir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sluice-storage-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A datastore with `account(id, balance)` and an auto-increment bag `note(n, text)`.
fn datastore() -> Datastore {
    let mut ds = Datastore::new();
    let col = |name: &str, ty| Column { name: name.into(), ty, nullable: false };
    ds.create_table(TableDef::new(TableSchema {
        name: "account".into(),
        columns: vec![col("id", DataType::Int), col("balance", DataType::Int)],
        primary_key: vec![0],
    }))
    .unwrap();
    let mut note = TableDef::new(TableSchema {
        name: "note".into(),
        columns: vec![col("n", DataType::Int), col("text", DataType::Text)],
        primary_key: vec![],
    });
    note.auto_inc = Some(0);
    ds.create_table(note).unwrap();
    ds
}

/// Runs `n` transactions on `ds` (inserts, updates, deletes, auto-increments), returning
/// their records.
fn run(ds: &mut Datastore, n: u64) -> Vec<TxRecord> {
    let (account, note) = (ds.table_id("account").unwrap(), ds.table_id("note").unwrap());
    (0..n)
        .map(|i| {
            ds.begin().unwrap();
            let id = (i % 7) as i64;
            let old = ds.find_by_pk(account, &[Value::Int(id)]).unwrap();
            match old {
                Some(_) if i % 5 == 0 => {
                    ds.delete_by(account, 0, &[Value::Int(id)]).unwrap();
                }
                Some(_) => {
                    ds.update(account, vec![Value::Int(id), Value::Int(i as i64)]).unwrap();
                }
                None => {
                    ds.insert(account, vec![Value::Int(id), Value::Int(100)]).unwrap();
                }
            }
            ds.insert(note, vec![Value::Int(0), Value::text(&format!("tx {i}"))]).unwrap();
            let meta = CommitMeta { timestamp_micros: 1_000 + i, reducer: "step".into(), ..CommitMeta::default() };
            ds.commit(meta).unwrap()
        })
        .collect()
}

/// A datastore's tables with their rows in order.
fn state(ds: &Datastore) -> Vec<TableState> {
    ds.tables_state().into_iter().map(TableState::sorted).collect()
}

fn write_log(dir: &Path, records: &[TxRecord], segment_bytes: u64) {
    let config = LogConfig { durability: Durability::Full, segment_bytes };
    let mut log = LogWriter::open(dir, &LogEnd::default(), config).unwrap();
    for (i, r) in records.iter().enumerate() {
        log.append(r);
        // Half the records wait to be durable, so segments roll over between batches of
        // one and of several records.
        if i % 2 == 0 {
            log.wait(r.offset).unwrap();
        }
    }
    log.close().unwrap();
}

fn read_all(dir: &Path) -> Result<(Vec<TxRecord>, LogEnd), LogError> {
    let mut out = Vec::new();
    let end = commitlog::read(dir, 0, |r| {
        out.push(r);
        true
    })?;
    Ok((out, end))
}

/// Byte positions of each record in a single-segment log.
fn record_starts(path: &Path) -> Vec<u64> {
    let bytes = std::fs::read(path).unwrap();
    let mut pos = HEADER as usize;
    let mut starts = Vec::new();
    while pos < bytes.len() {
        starts.push(pos as u64);
        pos += FRAME as usize + u32::from_le_bytes(bytes[pos..pos + 4].try_into().unwrap()) as usize;
    }
    starts
}

#[test]
fn records_come_back_in_order_across_segments_and_replay_rebuilds_the_state() {
    let dir = tempdir("roundtrip");
    let mut ds = datastore();
    let records = run(&mut ds, 200);
    write_log(&dir, &records, 1024);
    let (back, end) = read_all(&dir).unwrap();
    assert_eq!(back, records);
    assert_eq!(end.last_offset, 200);
    assert!(end.torn.is_none());
    assert!(commitlog::segments(&dir).unwrap().len() > 5, "small segments roll over");
    // Reading from the middle skips earlier segments but yields exactly the later records.
    let mut later = Vec::new();
    commitlog::read(&dir, 150, |r| {
        later.push(r.offset);
        true
    })
    .unwrap();
    assert_eq!(later, (151..=200).collect::<Vec<_>>());
    // Replaying into a fresh datastore gives the same tables, sequences included.
    let mut fresh = datastore();
    for r in &back {
        fresh.replay(r).unwrap();
    }
    assert_eq!(state(&fresh), state(&ds));
    assert_eq!(fresh.offset(), 200);
    // A record out of order, or one that does not fit the state, is refused.
    assert!(fresh.replay(&records[10]).is_err());
    let mut wrong = records[0].clone();
    wrong.offset = 201;
    wrong.changes[0].deletes = vec![Row::new(vec![Value::Int(99), Value::Int(0)])];
    assert!(fresh.replay(&wrong).unwrap_err().to_string().contains("no row"));
}

#[test]
fn a_torn_tail_is_reported_cut_off_and_appending_resumes() {
    let mut ds = datastore();
    let records = run(&mut ds, 10);
    for cut in [1u64, 4, FRAME, FRAME + 3] {
        let dir = tempdir(&format!("torn-{cut}"));
        write_log(&dir, &records, 1 << 20);
        let (_, path) = commitlog::segments(&dir).unwrap().pop().unwrap();
        let last_start = *record_starts(&path).last().unwrap();
        let len = std::fs::metadata(&path).unwrap().len();
        let keep = (len - cut).max(last_start);
        std::fs::OpenOptions::new().write(true).open(&path).unwrap().set_len(keep).unwrap();
        let (back, end) = read_all(&dir).unwrap();
        assert_eq!(back.len(), 9, "cut {cut}");
        assert_eq!(end.torn.as_ref().map(|t| t.0), Some(last_start), "cut {cut}: {end:?}");
        // Opening the writer cuts the tail off; the lost transaction can be written again.
        let mut log = LogWriter::open(&dir, &end, LogConfig::default()).unwrap();
        log.append(&records[9]);
        log.close().unwrap();
        let (back, end) = read_all(&dir).unwrap();
        assert_eq!(back, records);
        assert!(end.torn.is_none());
    }
}

#[test]
fn a_zero_filled_tail_is_a_torn_tail() {
    // A crash can leave the blocks an append had claimed as zeros: 8 zero bytes frame an
    // empty record with a matching checksum, and must not read as one.
    let mut ds = datastore();
    let records = run(&mut ds, 10);
    for zeros in [4usize, 8, 4096] {
        let dir = tempdir(&format!("zeros-{zeros}"));
        write_log(&dir, &records, 1 << 20);
        let (_, path) = commitlog::segments(&dir).unwrap().pop().unwrap();
        let end_of_records = std::fs::metadata(&path).unwrap().len();
        let mut bytes = std::fs::read(&path).unwrap();
        bytes.extend(std::iter::repeat_n(0u8, zeros));
        std::fs::write(&path, bytes).unwrap();
        let (back, end) = read_all(&dir).unwrap();
        assert_eq!(back, records, "{zeros} zeros");
        assert_eq!(end.torn.as_ref().map(|t| t.0), Some(end_of_records), "{zeros} zeros: {end:?}");
        let log = LogWriter::open(&dir, &end, LogConfig::default()).unwrap();
        log.close().unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().len(), end_of_records, "the zeros are cut off");
    }
}

#[test]
fn damage_in_the_middle_names_the_file_and_byte() {
    let mut ds = datastore();
    let records = run(&mut ds, 10);
    // (what to flip, which record): a payload bit and a length bit of record 3; a bit of the
    // last record is a torn tail instead (it ends the file).
    for (field, record) in [("payload", 3usize), ("length", 3), ("crc", 5), ("payload", 9)] {
        let dir = tempdir(&format!("flip-{field}-{record}"));
        write_log(&dir, &records, 1 << 20);
        let (_, path) = commitlog::segments(&dir).unwrap().pop().unwrap();
        let start = record_starts(&path)[record];
        let at = start
            + match field {
                "length" => 2,
                "crc" => 5,
                _ => FRAME + 2,
            };
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[at as usize] ^= 0x10;
        std::fs::write(&path, &bytes).unwrap();
        match read_all(&dir) {
            Err(LogError::Damaged { path: p, at: byte, reason }) => {
                assert_ne!(record, 9, "the last record's damage is a torn tail: {reason}");
                assert_eq!((p, byte), (path.clone(), start), "{field}: {reason}");
            }
            Ok((back, end)) => {
                assert_eq!(record, 9, "{field} of record {record} must not read as a torn tail");
                assert_eq!(back.len(), 9);
                assert_eq!(end.torn.map(|t| t.0), Some(start));
            }
            Err(e) => panic!("{e}"),
        }
    }
    // A missing segment is a gap in the offsets.
    let dir = tempdir("gap");
    write_log(&dir, &run(&mut datastore(), 40), 300);
    let segs = commitlog::segments(&dir).unwrap();
    assert!(segs.len() >= 3);
    std::fs::remove_file(&segs[1].1).unwrap();
    let err = read_all(&dir).unwrap_err().to_string();
    assert!(err.contains(&segs[2].1.display().to_string()) && err.contains("should start at offset"), "{err}");
}

#[test]
fn snapshots_round_trip_and_damage_is_detected() {
    let dir = tempdir("snapshot");
    let mut ds = datastore();
    run(&mut ds, 30);
    let snap = Snapshot { offset: 30, timestamp_micros: 1029, module: b"\0asm".to_vec(), tables: state(&ds) };
    let path = snapshot::write(&dir, snap.clone()).unwrap();
    assert_eq!(snapshot::list(&dir).unwrap(), vec![(30, path.clone())]);
    // What a crash mid-write leaves is not a snapshot, and is cleared away at the next start.
    let unfinished = dir.join(".00000000000000000031.snap.tmp");
    std::fs::write(&unfinished, b"partial").unwrap();
    assert_eq!(snapshot::list(&dir).unwrap().len(), 1);
    snapshot::remove_unfinished(&dir).unwrap();
    assert!(!unfinished.exists() && path.exists());
    assert_eq!(snapshot::read(&path).unwrap(), snap);
    let mut restored = datastore();
    restored.restore(snap.offset, snap.tables.clone()).unwrap();
    assert_eq!(state(&restored), state(&ds));
    assert_eq!(restored.offset(), 30);
    let mut bytes = std::fs::read(&path).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&path, &bytes).unwrap();
    let err = snapshot::read(&path).unwrap_err().to_string();
    assert!(err.contains("checksum") && err.contains(&path.display().to_string()), "{err}");
}

/// What reading a damaged copy of a log may do: refuse, naming damage, or give back the
/// records before the damage, each exactly as written, and report the rest as a torn tail
/// (a crash mid-append can leave a whole batch of records torn, or zeros). Never a record
/// that was not written, nor one lost unreported. A changed byte (`flip`) with good records
/// after it is damage in the middle, never a torn tail. (A cut exactly between records reads
/// as a shorter log: the file alone cannot tell, so `boundary` cuts need report nothing.)
fn check_damaged(original: &[TxRecord], last_start: u64, at: u64, flip: bool, boundary: bool, dir: &Path, what: &str) {
    match read_all(dir) {
        // A cut, or zeros after the header, is what a crash leaves: a torn tail, never damage.
        Err(e) => assert!(flip || (what.starts_with("zero") && at < HEADER), "{what}: refused: {e}"),
        Ok((back, end)) => {
            assert!(back.len() <= original.len(), "{what}: more records than written");
            assert_eq!(back[..], original[..back.len()], "{what}: a record changed");
            if back.len() < original.len() {
                assert!(boundary || end.torn.is_some(), "{what}: records lost without a torn tail reported");
                assert!(!flip || at >= last_start, "{what}: a record before the last cut off as torn");
            }
        }
    }
}

#[test]
fn damage_at_every_byte_of_a_log_is_refused_or_cut_off_never_read_as_data() {
    let mut ds = datastore();
    let records = run(&mut ds, 6);
    let dir = tempdir("every-byte");
    write_log(&dir, &records, 1 << 20);
    let (_, path) = commitlog::segments(&dir).unwrap().pop().unwrap();
    let good = std::fs::read(&path).unwrap();
    let starts = record_starts(&path);
    let last_start = *starts.last().unwrap();
    let mut tried = 0;
    for at in 0..good.len() {
        for (what, bytes) in [
            ("bit flip", {
                let mut b = good.clone();
                b[at] ^= 1 << (at % 8);
                b
            }),
            ("cut", good[..at].to_vec()),
            ("zero fill", {
                let mut b = good.clone();
                b[at..].fill(0);
                b
            }),
        ] {
            std::fs::write(&path, &bytes).unwrap();
            let boundary = what == "cut" && (at as u64 == HEADER || starts.contains(&(at as u64)));
            let what = format!("{what} at byte {at}");
            check_damaged(&records, last_start, at as u64, what.starts_with("bit flip"), boundary, &dir, &what);
            tried += 1;
        }
    }
    assert_eq!(tried, 3 * good.len());
}

#[test]
fn damage_at_every_byte_of_a_snapshot_is_refused_never_read_as_data() {
    let mut ds = datastore();
    run(&mut ds, 6);
    let dir = tempdir("every-byte-snapshot");
    let snap = Snapshot { offset: 6, timestamp_micros: 7, module: b"\0asm".to_vec(), tables: state(&ds) };
    let path = snapshot::write(&dir, snap.clone()).unwrap();
    let good = std::fs::read(&path).unwrap();
    assert_eq!(snapshot::read(&path).unwrap(), snap);
    for at in 0..good.len() {
        let mut bytes = good.clone();
        bytes[at] ^= 1 << (at % 8);
        std::fs::write(&path, &bytes).unwrap();
        assert!(snapshot::read(&path).is_err(), "a bit flipped at byte {at} read back");
        std::fs::write(&path, &good[..at]).unwrap();
        assert!(snapshot::read(&path).is_err(), "cut at byte {at} read back");
    }
}
