//! The game module: two teams, players who join as themselves and move around a wrapping
//! square world, and a tick — a scheduled reducer, ten times a second — that moves the bots
//! and scores every player standing in the goal. `init` creates the teams, the world, the
//! tick's schedule and a few bots, so something moves as soon as the module runs.

use sluice_sdk::{reducer, table, Identity, ReducerContext};

/// Side of the square world; positions wrap around.
pub const WORLD: i64 = 32;
/// Players in [0, GOAL) × [0, GOAL) score a point on every tick.
pub const GOAL: i64 = 8;
/// Time between ticks, in microseconds.
pub const TICK_MICROS: u64 = 100_000;
/// Bots `init` creates.
pub const BOTS: u64 = 12;
/// The largest step of a move, in each direction.
pub const MAX_STEP: i64 = 5;

#[table(name = team, public)]
pub struct Team {
    #[primary_key]
    pub id: u64,
    pub name: String,
}

#[table(name = player, public)]
pub struct Player {
    #[primary_key]
    #[auto_inc]
    pub id: u64,
    #[unique]
    pub identity: Identity,
    pub name: String,
    #[index(btree)]
    pub team_id: u64,
    pub score: i64,
    pub online: bool,
    pub bot: bool,
}

#[table(name = position, public, index(name = by_xy, btree(columns = [x, y])))]
pub struct Position {
    #[primary_key]
    pub player_id: u64,
    pub x: i64,
    pub y: i64,
}

/// The world's one row: how many ticks have run.
#[table(name = world, public)]
pub struct World {
    #[primary_key]
    pub id: u64,
    pub tick: u64,
}

/// The tick's schedule: one row, repeating every `TICK_MICROS`.
#[table(name = tick_timer, private, scheduled(tick))]
pub struct TickTimer {
    #[primary_key]
    #[auto_inc]
    pub scheduled_id: u64,
    pub scheduled_at: u64,
    pub repeat_micros: u64,
}

#[reducer(init)]
pub fn init(ctx: &ReducerContext) -> Result<(), String> {
    for (id, name) in [(1, "red"), (2, "blue")] {
        ctx.db.team().insert(Team { id, name: name.into() })?;
    }
    ctx.db.world().insert(World { id: 0, tick: 0 })?;
    let first = ctx.timestamp + TICK_MICROS;
    ctx.db.tick_timer().insert(TickTimer { scheduled_id: 0, scheduled_at: first, repeat_micros: TICK_MICROS })?;
    spawn_bots(ctx, BOTS)
}

/// Adds `n` bots, which the tick moves about.
#[reducer]
pub fn spawn_bots(ctx: &ReducerContext, n: u64) -> Result<(), String> {
    let first = ctx.db.player().iter().filter(|p| p.bot).count() as u64 + 1;
    for k in first..first + n {
        let mut identity = [0u8; 32];
        identity[0] = 0xb0;
        identity[24..].copy_from_slice(&k.to_be_bytes());
        spawn(ctx, Identity(identity), format!("bot-{k}"), 1 + k % 2, true, start(k))?;
    }
    Ok(())
}

/// Where bot `k` starts: spread over the world.
fn start(k: u64) -> (i64, i64) {
    let h = k.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    ((h >> 32) as i64 % WORLD, (h >> 16 & 0xffff) as i64 % WORLD)
}

/// A bot's step on tick `n`: each coordinate changes by -1, 0 or 1.
pub fn bot_step(n: u64, player_id: u64) -> (i64, i64) {
    let h = (n ^ player_id.wrapping_mul(0x9e37_79b9_7f4a_7c15)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    ((h >> 40) as i64 % 3 - 1, (h >> 20) as i64 % 3 - 1)
}

fn spawn(
    ctx: &ReducerContext,
    identity: Identity,
    name: String,
    team_id: u64,
    bot: bool,
    (x, y): (i64, i64),
) -> Result<(), String> {
    let p = Player { id: 0, identity, name, team_id, score: 0, online: true, bot };
    let p = ctx.db.player().insert(p)?;
    ctx.db.position().insert(Position { player_id: p.id, x, y })?;
    Ok(())
}

fn me(ctx: &ReducerContext) -> Result<Player, String> {
    ctx.db.player().identity().find(&ctx.sender).ok_or_else(|| "join the game first".to_string())
}

#[reducer(client_connected)]
pub fn connected(ctx: &ReducerContext) -> Result<(), String> {
    set_online(ctx, true)
}

#[reducer(client_disconnected)]
pub fn disconnected(ctx: &ReducerContext) -> Result<(), String> {
    set_online(ctx, false)
}

fn set_online(ctx: &ReducerContext, online: bool) -> Result<(), String> {
    if let Ok(mut p) = me(ctx) {
        p.online = online;
        ctx.db.player().id().update(p)?;
    }
    Ok(())
}

/// Joins the game as the caller, on a team, at the centre of the world.
#[reducer]
pub fn join(ctx: &ReducerContext, name: String, team_id: u64) -> Result<(), String> {
    if name.trim().is_empty() || name.len() > 32 {
        return Err("a name has 1 to 32 characters".into());
    }
    if ctx.db.team().id().find(&team_id).is_none() {
        return Err(format!("no team {team_id}"));
    }
    if me(ctx).is_ok() {
        return Err("already in the game".into());
    }
    spawn(ctx, ctx.sender, name, team_id, false, (WORLD / 2, WORLD / 2))
}

/// Moves the caller's player by (dx, dy), each at most `MAX_STEP`, wrapping around.
#[reducer]
pub fn move_by(ctx: &ReducerContext, dx: i64, dy: i64) -> Result<(), String> {
    if dx.abs() > MAX_STEP || dy.abs() > MAX_STEP {
        return Err(format!("a move is at most {MAX_STEP} in each direction"));
    }
    step(ctx, me(ctx)?.id, dx, dy)
}

fn step(ctx: &ReducerContext, player_id: u64, dx: i64, dy: i64) -> Result<(), String> {
    let mut pos = ctx.db.position().player_id().find(&player_id).ok_or("the player has no position")?;
    pos.x = (pos.x + dx).rem_euclid(WORLD);
    pos.y = (pos.y + dy).rem_euclid(WORLD);
    ctx.db.position().player_id().update(pos)?;
    Ok(())
}

/// Leaves the game: the caller's player and position go.
#[reducer]
pub fn leave(ctx: &ReducerContext) -> Result<(), String> {
    let p = me(ctx)?;
    ctx.db.position().player_id().delete(&p.id);
    ctx.db.player().id().delete(&p.id);
    Ok(())
}

/// One tick: counts it, moves every bot a pseudo-random step, then scores every player in
/// the goal.
#[reducer]
pub fn tick(ctx: &ReducerContext, _timer: TickTimer) -> Result<(), String> {
    let mut world = ctx.db.world().id().find(&0).ok_or("the world is missing")?;
    world.tick += 1;
    let n = world.tick;
    ctx.db.world().id().update(world)?;
    let bots: Vec<u64> = ctx.db.player().iter().filter(|p| p.bot).map(|p| p.id).collect();
    for id in bots {
        let (dx, dy) = bot_step(n, id);
        step(ctx, id, dx, dy)?;
    }
    // The goal's columns, then its rows: a range over the two-column index.
    let in_goal: Vec<Position> =
        ctx.db.position().by_xy().filter((0, 0)..(GOAL, 0)).filter(|p| (0..GOAL).contains(&p.y)).collect();
    for pos in in_goal {
        if let Some(mut p) = ctx.db.player().id().find(&pos.player_id) {
            p.score += 1;
            ctx.db.player().id().update(p)?;
        }
    }
    Ok(())
}
