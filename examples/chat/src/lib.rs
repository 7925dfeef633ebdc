//! The chat module: users keyed by their identity, created when they first connect, with a
//! name they choose and whether they are online; their messages; and messages sent later,
//! through a schedule table whose one-off rows deliver them when due.

use sluice_sdk::{reducer, table, Identity, ReducerContext};

#[table(name = user, public)]
pub struct User {
    #[primary_key]
    pub identity: Identity,
    pub name: Option<String>,
    pub online: bool,
}

#[table(name = message, public)]
pub struct Message {
    #[primary_key]
    #[auto_inc]
    pub id: u64,
    #[index(btree)]
    pub sender: Identity,
    /// Microseconds since the Unix epoch.
    pub sent: u64,
    pub text: String,
}

/// Messages waiting to be sent: each row runs `deliver` once, at `scheduled_at`.
#[table(name = outbox, private, scheduled(deliver))]
pub struct Outbox {
    #[primary_key]
    #[auto_inc]
    pub scheduled_id: u64,
    pub scheduled_at: u64,
    pub repeat_micros: u64,
    pub sender: Identity,
    pub text: String,
}

#[reducer(client_connected)]
pub fn client_connected(ctx: &ReducerContext) -> Result<(), String> {
    match ctx.db.user().identity().find(&ctx.sender) {
        Some(mut u) => {
            u.online = true;
            ctx.db.user().identity().update(u)?;
        }
        None => {
            ctx.db.user().insert(User { identity: ctx.sender, name: None, online: true })?;
        }
    }
    Ok(())
}

#[reducer(client_disconnected)]
pub fn client_disconnected(ctx: &ReducerContext) -> Result<(), String> {
    if let Some(mut u) = ctx.db.user().identity().find(&ctx.sender) {
        u.online = false;
        ctx.db.user().identity().update(u)?;
    }
    Ok(())
}

/// Sets the caller's name: 1 to 32 characters, not blank.
#[reducer]
pub fn set_name(ctx: &ReducerContext, name: String) -> Result<(), String> {
    if name.trim().is_empty() || name.chars().count() > 32 {
        return Err("a name has 1 to 32 characters and is not blank".into());
    }
    let mut u = ctx.db.user().identity().find(&ctx.sender).ok_or("connect before setting a name")?;
    sluice_sdk::info!("{} is now called {name}", &ctx.sender.to_hex()[..8]);
    u.name = Some(name);
    ctx.db.user().identity().update(u)?;
    Ok(())
}

/// Sends a message as the caller.
#[reducer]
pub fn send_message(ctx: &ReducerContext, text: String) -> Result<(), String> {
    post(ctx, ctx.sender, text)
}

/// Sends a message as the caller `delay_micros` from now (unchecked until then).
#[reducer]
pub fn send_later(ctx: &ReducerContext, text: String, delay_micros: u64) -> Result<(), String> {
    let at = ctx.timestamp.saturating_add(delay_micros);
    let row = Outbox { scheduled_id: 0, scheduled_at: at, repeat_micros: 0, sender: ctx.sender, text };
    ctx.db.outbox().insert(row)?;
    Ok(())
}

/// Delivers a message from the outbox. The host runs it only from its schedule (clients may
/// not call a scheduled reducer), and the schedule runs it as `Identity::SERVER`; the check
/// says so in the module too, since the row it trusts names whom the message is from.
#[reducer]
pub fn deliver(ctx: &ReducerContext, mail: Outbox) -> Result<(), String> {
    if ctx.sender != Identity::SERVER {
        return Err("only the outbox's schedule delivers messages".into());
    }
    post(ctx, mail.sender, mail.text)
}

fn post(ctx: &ReducerContext, sender: Identity, text: String) -> Result<(), String> {
    if text.trim().is_empty() || text.chars().count() > 1024 {
        return Err("a message has 1 to 1024 characters and is not blank".into());
    }
    if ctx.db.user().identity().find(&sender).is_none() {
        return Err("only connected users send messages".into());
    }
    ctx.db.message().insert(Message { id: 0, sender, sent: ctx.timestamp, text })?;
    Ok(())
}
