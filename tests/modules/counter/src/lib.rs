//! A counter module on the raw host ABI: table `counter(id u64 primary key, n i64)`, reducer
//! `bump(id)` (inserts the counter at 1 or adds 1) and `fail()` (returns an error).

const COUNTER: &str =
    r#"{"name":"counter","columns":[{"name":"id","type":"u64"},{"name":"n","type":"i64"}],"primary_key":["id"]}"#;
const BUMP: &str = r#"{"name":"bump","params":[{"name":"id","type":"u64"}]}"#;
const FAIL: &str = r#"{"name":"fail","params":[]}"#;
/// Bytes before the arguments: caller identity (32) and timestamp (8).
const HEADER: usize = 40;

#[link(wasm_import_module = "sluice")]
extern "C" {
    fn insert(table: i32, ptr: *const u8, len: i32) -> i64;
    fn update_by(table: i32, index: i32, ptr: *const u8, len: i32) -> i64;
    fn find(table: i32, index: i32, ptr: *const u8, len: i32) -> i64;
    fn read_result(ptr: *mut u8);
}

fn packed(bytes: &'static [u8]) -> i64 {
    ((bytes.as_ptr() as i64) << 32) | bytes.len() as i64
}

#[no_mangle]
pub extern "C" fn __sluice_table__counter() -> i64 {
    packed(COUNTER.as_bytes())
}

#[no_mangle]
pub extern "C" fn __sluice_describe_reducer__bump() -> i64 {
    packed(BUMP.as_bytes())
}

#[no_mangle]
pub extern "C" fn __sluice_describe_reducer__fail() -> i64 {
    packed(FAIL.as_bytes())
}

#[no_mangle]
pub extern "C" fn sluice_alloc(len: i32) -> *mut u8 {
    let mut buf = Vec::<u8>::with_capacity(len as usize);
    let ptr = buf.as_mut_ptr();
    std::mem::forget(buf);
    ptr
}

fn leb(mut x: u64, out: &mut Vec<u8>) {
    loop {
        let b = (x & 0x7f) as u8;
        x >>= 7;
        if x == 0 {
            out.push(b);
            return;
        }
        out.push(b | 0x80);
    }
}

fn read_leb(bytes: &[u8], pos: &mut usize) -> u64 {
    let (mut x, mut shift) = (0u64, 0);
    loop {
        let b = bytes[*pos];
        *pos += 1;
        x |= ((b & 0x7f) as u64) << shift;
        if b & 0x80 == 0 {
            return x;
        }
        shift += 7;
    }
}

/// The row (id, n) in the engine's encoding: UNSIGNED tag 4 + LEB128, INTEGER tag 3 + zigzag.
fn row(id: u64, n: i64) -> Vec<u8> {
    let mut out = vec![4];
    leb(id, &mut out);
    out.push(3);
    leb(((n << 1) ^ (n >> 63)) as u64, &mut out);
    out
}

fn result(len: i64) -> Vec<u8> {
    let mut buf = vec![0u8; len as usize];
    unsafe { read_result(buf.as_mut_ptr()) };
    buf
}

fn error(message: String) -> i64 {
    let bytes: &'static [u8] = Box::leak(message.into_bytes().into_boxed_slice());
    packed(bytes)
}

fn bump(args: &[u8]) -> i64 {
    // args: one UNSIGNED value, which is also the primary key.
    let mut pos = 1;
    let id = read_leb(args, &mut pos);
    let found = unsafe { find(0, 0, args.as_ptr(), args.len() as i32) };
    let n = if found > 0 {
        // (u32 length, row): skip the id, decode n.
        let bytes = result(found);
        let mut pos = 4 + 1;
        read_leb(&bytes, &mut pos);
        pos += 1;
        let z = read_leb(&bytes, &mut pos);
        ((z >> 1) as i64) ^ -((z & 1) as i64)
    } else {
        0
    };
    let new = row(id, n + 1);
    let r = unsafe {
        if n == 0 {
            insert(0, new.as_ptr(), new.len() as i32)
        } else {
            update_by(0, 0, new.as_ptr(), new.len() as i32)
        }
    };
    if r < 0 {
        return error(String::from_utf8_lossy(&result(-1 - r)).into_owned());
    }
    result(r);
    0
}

#[no_mangle]
pub extern "C" fn __sluice_reducer__bump(ptr: *const u8, len: i32) -> i64 {
    let buffer = unsafe { std::slice::from_raw_parts(ptr, len as usize) };
    bump(&buffer[HEADER..])
}

#[no_mangle]
pub extern "C" fn __sluice_reducer__fail(_ptr: *const u8, _len: i32) -> i64 {
    error("fail always fails".to_string())
}
