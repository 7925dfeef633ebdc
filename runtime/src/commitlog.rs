//! The commit log's on-disk format and its reader: append-only segment files of
//! length-prefixed, CRC32C-checked records, one per committed transaction.
//!
//! A segment is named by the offset of its first record (`00000000000000000001.log`) and
//! starts with a header: the magic `SLUICELG`, a format version (u32) and that first offset
//! (u64). Each record is its payload's length (u32), the payload's CRC32C (u32), then the
//! payload: the `TxRecord` in postcard encoding. All integers are little-endian.
//!
//! Reading checks every record. Damage at the very end of the last segment — a record cut
//! short, a last record whose checksum fails, or zeros (blocks a file system had allocated
//! for an append but not written) — is what a crash during an append leaves: it was never
//! acknowledged, so it is reported as a torn tail for the caller to cut off. Damage
//! anywhere else (a bad checksum with records after it, a gap in the offsets, a bad header)
//! is an error naming the file and byte offset: nothing is silently dropped.

use crate::record::TxRecord;
use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

pub const MAGIC: &[u8; 8] = b"SLUICELG";
pub const VERSION: u32 = 1;
/// Bytes of a segment's header.
pub const HEADER: u64 = 20;
/// Bytes of a record's frame before its payload.
pub const FRAME: u64 = 8;
/// Largest payload accepted (a larger length is damage, not a record).
pub const MAX_RECORD: u32 = 1 << 30;

/// Problems reading a commit log.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// The I/O error is part of the message, not a source, so it is shown once.
    #[error("{}: {error}", path.display())]
    Io { path: PathBuf, error: io::Error },
    #[error("{}, byte {at}: {reason}", path.display())]
    Damaged { path: PathBuf, at: u64, reason: String },
}

impl LogError {
    pub fn io(path: &Path, source: io::Error) -> LogError {
        LogError::Io { path: path.to_path_buf(), error: source }
    }
    fn damaged(path: &Path, at: u64, reason: impl Into<String>) -> LogError {
        LogError::Damaged { path: path.to_path_buf(), at, reason: reason.into() }
    }
}

/// File name of the segment whose first record has `offset`.
pub fn segment_name(offset: u64) -> String {
    format!("{offset:020}.log")
}

/// A segment's header bytes.
pub fn header(first: u64) -> Vec<u8> {
    let mut h = Vec::with_capacity(HEADER as usize);
    h.extend_from_slice(MAGIC);
    h.extend_from_slice(&VERSION.to_le_bytes());
    h.extend_from_slice(&first.to_le_bytes());
    h
}

/// Appends a record framed for the log to `out`: length, checksum, payload.
pub fn frame_into(record: &TxRecord, out: &mut Vec<u8>) {
    let start = out.len();
    out.extend_from_slice(&[0; FRAME as usize]);
    *out = postcard::to_extend(record, std::mem::take(out)).expect("records serialize");
    let payload = &out[start + FRAME as usize..];
    let (len, crc) = ((payload.len() as u32).to_le_bytes(), crc32c::crc32c(payload).to_le_bytes());
    out[start..start + 4].copy_from_slice(&len);
    out[start + 4..start + 8].copy_from_slice(&crc);
}

/// The segments in `dir`, by first offset.
pub fn segments(dir: &Path) -> Result<Vec<(u64, PathBuf)>, LogError> {
    numbered_files(dir, ".log")
}

/// The files in `dir` named `<number><suffix>`, by number (none if `dir` does not exist).
pub fn numbered_files(dir: &Path, suffix: &str) -> Result<Vec<(u64, PathBuf)>, LogError> {
    let mut out = Vec::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(LogError::io(dir, e)),
    };
    for entry in entries {
        let path = entry.map_err(|e| LogError::io(dir, e))?.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else { continue };
        if let Some(n) = name.strip_suffix(suffix).and_then(|s| s.parse::<u64>().ok()) {
            out.push((n, path));
        }
    }
    out.sort();
    Ok(out)
}

/// Where a log's valid records end: the last segment and the length to keep. `torn` says
/// what was found past it (to cut off), if anything.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct LogEnd {
    /// Offset of the last valid record (0 if none).
    pub last_offset: u64,
    /// The last segment and its valid length, if there is a segment.
    pub segment: Option<(PathBuf, u64)>,
    /// A torn tail after the valid records: its byte position and what was wrong.
    pub torn: Option<(u64, String)>,
}

/// Reads every record of the log in `dir` in order, handing those after `after` to `each`
/// (which may stop the scan by returning false). Returns where the valid log ends. Records
/// up to `after` are checked by checksum and offset but not decoded (`verify` reads from 0).
///
/// Records are read from the file one at a time, so memory holds one record, whatever the
/// size of the segments (a reader of the last page of a large log does not hold the log).
pub fn read(dir: &Path, after: u64, mut each: impl FnMut(TxRecord) -> bool) -> Result<LogEnd, LogError> {
    let segs = segments(dir)?;
    let mut end = LogEnd::default();
    // Segments wholly before `after` are skipped unread (the next one starts at or before it).
    let start = segs.iter().rposition(|(first, _)| *first <= after + 1).unwrap_or(0);
    for (i, (first, path)) in segs.iter().enumerate().skip(start) {
        let last_segment = i + 1 == segs.len();
        let mut stopped = false;
        let read = read_segment(path, *first, last_segment, after, &mut |r| {
            end.last_offset = r.offset;
            if !each(r) {
                stopped = true;
            }
            !stopped
        })?;
        if stopped {
            return Ok(end);
        }
        let next = first + read.records;
        if let Some((following, next_path)) = segs.get(i + 1) {
            if *following != next {
                return Err(LogError::damaged(next_path, 0, format!("segment should start at offset {next}")));
            }
        }
        end.last_offset = next.saturating_sub(1);
        end.segment = Some((path.clone(), read.valid));
        end.torn = read.torn;
    }
    Ok(end)
}

/// What reading one segment found.
struct SegmentRead {
    /// Records read (all of them, unless the reader stopped early).
    records: u64,
    /// Length of the segment's valid part.
    valid: u64,
    /// A torn tail after it: its byte position and what was wrong.
    torn: Option<(u64, String)>,
}

/// Reads a segment's records in order to `each` (which may stop the read by returning false),
/// checking each (those at or before `skip_through` only by checksum and offset, and not
/// handed over); a torn tail is reported (only the last segment may have one; elsewhere
/// damage is an error).
fn read_segment(
    path: &Path,
    first: u64,
    last: bool,
    skip_through: u64,
    each: &mut dyn FnMut(TxRecord) -> bool,
) -> Result<SegmentRead, LogError> {
    let io = |e| LogError::io(path, e);
    let file = File::open(path).map_err(io)?;
    let len = file.metadata().map_err(io)?.len();
    let mut file = BufReader::with_capacity(1 << 16, file);
    if len < HEADER {
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).map_err(io)?;
        if last && header(first).starts_with(&bytes) {
            // Created, never written past its header: nothing in it was acknowledged.
            return Ok(SegmentRead { records: 0, valid: 0, torn: Some((0, "segment header cut short".into())) });
        }
        return Err(LogError::damaged(path, 0, "segment header cut short"));
    }
    let mut head = [0u8; HEADER as usize];
    file.read_exact(&mut head).map_err(io)?;
    if &head[..8] != MAGIC {
        return Err(LogError::damaged(path, 0, "not a commit-log segment (bad magic)"));
    }
    let version = u32::from_le_bytes(head[8..12].try_into().expect("4 bytes"));
    if version != VERSION {
        return Err(LogError::damaged(path, 8, format!("unsupported format version {version}")));
    }
    let header_first = u64::from_le_bytes(head[12..20].try_into().expect("8 bytes"));
    if header_first != first {
        return Err(LogError::damaged(path, 12, format!("header says first offset {header_first}, name says {first}")));
    }
    let (mut records, mut pos, mut frame) = (0u64, HEADER, Vec::new());
    while pos < len {
        // The frame (length, checksum, payload), as much of it as the file holds.
        let mut prefix = [0u8; FRAME as usize];
        let have = (len - pos).min(FRAME) as usize;
        file.read_exact(&mut prefix[..have]).map_err(io)?;
        frame.clear();
        frame.extend_from_slice(&prefix[..have]);
        if have == FRAME as usize {
            let claimed = u32::from_le_bytes(prefix[..4].try_into().expect("4 bytes")) as u64;
            let payload = claimed.min(len - pos - FRAME);
            if claimed <= MAX_RECORD as u64 {
                (&mut file).take(payload).read_to_end(&mut frame).map_err(io)?;
            }
        }
        let problem = match check_frame(&frame) {
            Ok(payload) => {
                let at = pos;
                let undecodable =
                    |e: postcard::Error| LogError::damaged(path, at, format!("record does not decode: {e}"));
                // The offset comes first in a record: one before those wanted is checked and
                // passed over without decoding the rest, so a page late in a segment costs
                // reading the bytes before it, not building every record before it.
                let (offset, _) = postcard::take_from_bytes::<u64>(payload).map_err(undecodable)?;
                let want = first + records;
                if offset != want {
                    return Err(LogError::damaged(path, pos, format!("record has offset {offset}, expected {want}")));
                }
                records += 1;
                pos += FRAME + payload.len() as u64;
                if offset <= skip_through {
                    continue;
                }
                let record: TxRecord = postcard::from_bytes(payload).map_err(undecodable)?;
                if !each(record) {
                    return Ok(SegmentRead { records, valid: pos, torn: None });
                }
                continue;
            }
            Err(problem) => problem,
        };
        // What a crash during an append leaves is the end of the file; a good record after
        // the bad one means damage in the middle. Only damage reads the rest at once.
        // Only up to the length seen at the start: a writer may be appending meanwhile.
        let mut rest = Vec::new();
        File::open(path)
            .and_then(|mut f| {
                f.seek(SeekFrom::Start(pos))?;
                f.take(len - pos).read_to_end(&mut rest)
            })
            .map_err(io)?;
        if !last || (1..rest.len()).any(|p| check_frame(&rest[p..]).is_ok()) {
            return Err(LogError::damaged(path, pos, format!("{problem}, with data after it")));
        }
        return Ok(SegmentRead { records, valid: pos, torn: Some((pos, problem.to_string())) });
    }
    Ok(SegmentRead { records, valid: pos, torn: None })
}

/// The payload of the record framed at the start of `bytes`, or what is wrong with it.
fn check_frame(bytes: &[u8]) -> Result<&[u8], &'static str> {
    if bytes.len() < FRAME as usize {
        return Err("record frame cut short");
    }
    let len = u32::from_le_bytes(bytes[..4].try_into().expect("4 bytes"));
    let crc = u32::from_le_bytes(bytes[4..8].try_into().expect("4 bytes"));
    if len == 0 {
        // No record is empty: zeros are what a file system leaves in the blocks an append
        // had claimed but not written when the machine stopped.
        return Err("zero-length record (zero-filled)");
    }
    if len > MAX_RECORD {
        return Err("implausible record length");
    }
    let end = FRAME as usize + len as usize;
    if end > bytes.len() {
        return Err("record cut short");
    }
    let payload = &bytes[FRAME as usize..end];
    if crc32c::crc32c(payload) != crc {
        return Err("record checksum does not match");
    }
    Ok(payload)
}
