//! Reducers that misbehave in each way a module can — panicking, looping forever, allocating
//! without bound, failing after writing — beside one that works, to show the database keeps
//! serving.

use sluice_sdk::{reducer, table, ReducerContext};

#[table(name = note, public)]
pub struct Note {
    #[primary_key]
    pub id: u64,
    pub text: String,
}

#[reducer]
pub fn add(ctx: &ReducerContext, id: u64, text: String) -> Result<(), String> {
    ctx.db.note().insert(Note { id, text })?;
    Ok(())
}

/// Writes, then panics on a missing row.
#[reducer]
pub fn panics(ctx: &ReducerContext, id: u64) {
    ctx.db.note().insert(Note { id, text: "half".into() }).unwrap();
    let missing = ctx.db.note().id().find(&(id + 1_000_000));
    let _ = missing.expect("note not found");
}

/// Writes, then spins.
#[reducer]
pub fn spins(ctx: &ReducerContext, id: u64) {
    ctx.db.note().insert(Note { id, text: "half".into() }).unwrap();
    let mut x = id;
    loop {
        x = std::hint::black_box(x.wrapping_mul(3));
    }
}

/// Allocates until the memory limit refuses.
#[reducer]
pub fn hogs(_ctx: &ReducerContext) {
    let mut keep: Vec<Vec<u8>> = Vec::new();
    loop {
        keep.push(vec![1u8; 1 << 20]);
        std::hint::black_box(&keep);
    }
}

/// Writes, then fails.
#[reducer]
pub fn fails(ctx: &ReducerContext, id: u64) -> Result<(), String> {
    ctx.db.note().insert(Note { id, text: "half".into() })?;
    Err(format!("note {id} was not wanted"))
}
