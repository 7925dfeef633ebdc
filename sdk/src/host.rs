//! The host functions (module `sluice`) and the exports every module needs, wrapped safely.
//! A host call that produces data returns its length n and leaves it for `read_result`, or
//! returns -1 - n for an n-byte error message.

#[cfg(target_arch = "wasm32")]
mod sys {
    #[link(wasm_import_module = "sluice")]
    extern "C" {
        pub fn table_id(ptr: *const u8, len: i32) -> i32;
        pub fn index_id(table: i32, ptr: *const u8, len: i32) -> i32;
        pub fn insert(table: i32, ptr: *const u8, len: i32) -> i64;
        pub fn update_by(table: i32, index: i32, ptr: *const u8, len: i32) -> i64;
        pub fn delete_by(table: i32, index: i32, ptr: *const u8, len: i32) -> i64;
        pub fn find(table: i32, index: i32, ptr: *const u8, len: i32) -> i64;
        #[allow(clippy::too_many_arguments)]
        pub fn range(
            table: i32,
            index: i32,
            lo: *const u8,
            lo_len: i32,
            lo_kind: i32,
            hi: *const u8,
            hi_len: i32,
            hi_kind: i32,
            after: *const u8,
            after_len: i32,
            limit: i32,
        ) -> i64;
        pub fn iter_open(table: i32) -> i64;
        pub fn iter_next(iter: i32, limit: i32) -> i64;
        pub fn iter_close(iter: i32);
        pub fn count(table: i32) -> i64;
        pub fn read_result(ptr: *mut u8);
        pub fn log(level: i32, ptr: *const u8, len: i32);
    }

    /// Lets the host place a reducer's argument buffer in the module's memory; the reducer's
    /// entry point frees it (`super::free_args`).
    #[no_mangle]
    pub extern "C" fn sluice_alloc(len: i32) -> *mut u8 {
        match std::alloc::Layout::array::<u8>(len.max(1) as usize) {
            // SAFETY: the layout has a non-zero size.
            Ok(layout) => unsafe { std::alloc::alloc(layout) },
            Err(_) => std::ptr::null_mut(),
        }
    }
}

/// Outside wasm there is no host: the SDK compiles for its own tests, calls panic.
#[cfg(not(target_arch = "wasm32"))]
#[allow(clippy::missing_safety_doc)]
mod sys {
    fn no_host() -> ! {
        panic!("Sluice host functions exist only inside a module running in Sluice")
    }
    pub unsafe fn table_id(_: *const u8, _: i32) -> i32 {
        no_host()
    }
    pub unsafe fn index_id(_: i32, _: *const u8, _: i32) -> i32 {
        no_host()
    }
    pub unsafe fn insert(_: i32, _: *const u8, _: i32) -> i64 {
        no_host()
    }
    pub unsafe fn update_by(_: i32, _: i32, _: *const u8, _: i32) -> i64 {
        no_host()
    }
    pub unsafe fn delete_by(_: i32, _: i32, _: *const u8, _: i32) -> i64 {
        no_host()
    }
    pub unsafe fn find(_: i32, _: i32, _: *const u8, _: i32) -> i64 {
        no_host()
    }
    #[allow(clippy::too_many_arguments)]
    pub unsafe fn range(
        _: i32,
        _: i32,
        _: *const u8,
        _: i32,
        _: i32,
        _: *const u8,
        _: i32,
        _: i32,
        _: *const u8,
        _: i32,
        _: i32,
    ) -> i64 {
        no_host()
    }
    pub unsafe fn iter_open(_: i32) -> i64 {
        no_host()
    }
    pub unsafe fn iter_next(_: i32, _: i32) -> i64 {
        no_host()
    }
    pub unsafe fn iter_close(_: i32) {
        no_host()
    }
    pub unsafe fn count(_: i32) -> i64 {
        no_host()
    }
    pub unsafe fn read_result(_: *mut u8) {
        no_host()
    }
    pub unsafe fn log(_: i32, _: *const u8, _: i32) {
        no_host()
    }
}

/// Collects a host call's outcome: the data, or the error message.
fn result(r: i64) -> Result<Vec<u8>, String> {
    let len = if r < 0 { -1 - r } else { r } as usize;
    let mut buf = vec![0u8; len];
    // SAFETY: the host writes exactly `len` bytes, the length it just reported.
    unsafe { sys::read_result(buf.as_mut_ptr()) };
    if r < 0 {
        Err(String::from_utf8_lossy(&buf).into_owned())
    } else {
        Ok(buf)
    }
}

/// Data of a call that fails only on a programming error (unknown table or index).
fn data(r: i64) -> Vec<u8> {
    result(r).unwrap_or_else(|e| panic!("{e}"))
}

pub fn table_id(name: &str) -> i32 {
    let id = unsafe { sys::table_id(name.as_ptr(), name.len() as i32) };
    assert!(id >= 0, "no table named `{name}`");
    id
}

pub fn index_id(table: i32, name: &str) -> i32 {
    let id = unsafe { sys::index_id(table, name.as_ptr(), name.len() as i32) };
    assert!(id >= 0, "no index named `{name}`");
    id
}

pub fn insert(table: i32, row: &[u8]) -> Result<Vec<u8>, String> {
    result(unsafe { sys::insert(table, row.as_ptr(), row.len() as i32) })
}

pub fn update_by(table: i32, index: i32, row: &[u8]) -> Result<Vec<u8>, String> {
    result(unsafe { sys::update_by(table, index, row.as_ptr(), row.len() as i32) })
}

pub fn delete_by(table: i32, index: i32, key: &[u8]) -> Vec<u8> {
    data(unsafe { sys::delete_by(table, index, key.as_ptr(), key.len() as i32) })
}

pub fn find(table: i32, index: i32, key: &[u8]) -> Vec<u8> {
    data(unsafe { sys::find(table, index, key.as_ptr(), key.len() as i32) })
}

/// A bound of a range: its key and kind (0 included, 1 excluded, 2 unbounded).
pub type RangeBound = (Vec<u8>, i32);

/// The `after` argument of a page: the row to resume after, or from the start.
fn after_arg(after: Option<&[u8]>) -> (*const u8, i32) {
    after.map_or((std::ptr::null(), -1), |a| (a.as_ptr(), a.len() as i32))
}

/// Up to `limit` rows of an index range after the row `after`.
pub fn range(table: i32, index: i32, lo: &RangeBound, hi: &RangeBound, after: Option<&[u8]>, limit: i32) -> Vec<u8> {
    let (after, after_len) = after_arg(after);
    let r = unsafe {
        sys::range(
            table,
            index,
            lo.0.as_ptr(),
            lo.0.len() as i32,
            lo.1,
            hi.0.as_ptr(),
            hi.0.len() as i32,
            hi.1,
            after,
            after_len,
            limit,
        )
    };
    data(r)
}

/// Opens a scan of a table (the host snapshots its rows); returns the scan's id.
pub fn iter_open(table: i32) -> i32 {
    let id = data(unsafe { sys::iter_open(table) });
    i32::from_le_bytes([id[0], id[1], id[2], id[3]])
}

/// The next up to `limit` rows of an open scan (none: the scan is over).
pub fn iter_next(iter: i32, limit: i32) -> Vec<u8> {
    data(unsafe { sys::iter_next(iter, limit) })
}

pub fn iter_close(iter: i32) {
    unsafe { sys::iter_close(iter) }
}

pub fn count(table: i32) -> u64 {
    unsafe { sys::count(table) }.max(0) as u64
}

pub fn log(level: u32, message: &str) {
    unsafe { sys::log(level as i32, message.as_ptr(), message.len() as i32) }
}

/// Splits (u32 little-endian length, row) pairs.
pub fn rows(bytes: Vec<u8>) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos + 4 <= bytes.len() {
        let n = u32::from_le_bytes([bytes[pos], bytes[pos + 1], bytes[pos + 2], bytes[pos + 3]]) as usize;
        pos += 4;
        out.push(bytes[pos..(pos + n).min(bytes.len())].to_vec());
        pos += n;
    }
    out
}

/// A string the host may read for the rest of the instance's life, as pointer << 32 | length
/// (for descriptions, read once when the module loads).
pub fn packed_str(s: String) -> i64 {
    let bytes: &'static [u8] = Box::leak(s.into_bytes().into_boxed_slice());
    ((bytes.as_ptr() as usize as i64) << 32) | bytes.len() as i64
}

/// Frees a reducer's argument buffer, allocated by `sluice_alloc`.
///
/// # Safety
/// `ptr` and `len` must be exactly what the host passed to the reducer's entry point, and the
/// buffer must not be used afterwards.
pub unsafe fn free_args(ptr: *const u8, len: i32) {
    if let Ok(layout) = std::alloc::Layout::array::<u8>(len.max(1) as usize) {
        std::alloc::dealloc(ptr as *mut u8, layout);
    }
}

/// Level of the log line a panic writes just before the module traps; the host reports it as
/// the trap's reason.
const PANIC_LEVEL: u32 = 0;

/// Routes panic messages to the host (once per instance), so a reducer that panics fails
/// with its message instead of a bare `unreachable` trap.
pub fn install_panic_hook() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| std::panic::set_hook(Box::new(|info| log(PANIC_LEVEL, &info.to_string()))));
}

/// The last reducer error, kept until the next one so the host can read it.
static LAST_ERROR: std::sync::Mutex<String> = std::sync::Mutex::new(String::new());

/// A reducer's return value for the host: 0, or its error message.
pub fn finish(r: Result<(), String>) -> i64 {
    match r {
        Ok(()) => 0,
        Err(e) => {
            let mut last = LAST_ERROR.lock().unwrap_or_else(|p| p.into_inner());
            *last = e;
            ((last.as_ptr() as usize as i64) << 32) | last.len() as i64
        }
    }
}
