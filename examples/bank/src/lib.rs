//! The bank module: accounts with balances, each in a branch of a region, seeded in bulk, and
//! transfers that fail, changing nothing, on insufficient funds or an unknown account. It is
//! the workload of `sluice bench transfer`, whose dashboards join the three tables.

use sluice_sdk::{reducer, table, ReducerContext};

/// Branches, numbered from 0; account `id` is in branch `id % BRANCHES`.
pub const BRANCHES: u64 = 100;
/// Regions, numbered from 0; branch `b` is in region `b % REGIONS`.
pub const REGIONS: u64 = 10;

#[table(name = account, public)]
pub struct Account {
    #[primary_key]
    pub id: u64,
    pub branch_id: u64,
    pub balance: i64,
}

#[table(name = branch, public)]
pub struct Branch {
    #[primary_key]
    pub id: u64,
    pub region_id: u64,
}

#[table(name = region, public)]
pub struct Region {
    #[primary_key]
    pub id: u64,
    pub name: String,
}

/// Creates accounts 1..=n with a balance of 1000 each.
#[reducer]
pub fn seed(ctx: &ReducerContext, n: u64) -> Result<(), String> {
    seed_range(ctx, 1, n)
}

/// Creates accounts `first .. first + n` with a balance of 1000 each (and the branches and
/// regions, the first time).
#[reducer]
pub fn seed_range(ctx: &ReducerContext, first: u64, n: u64) -> Result<(), String> {
    if ctx.db.region().id().find(&0).is_none() {
        for id in 0..REGIONS {
            ctx.db.region().insert(Region { id, name: format!("region-{id}") })?;
        }
        for id in 0..BRANCHES {
            ctx.db.branch().insert(Branch { id, region_id: id % REGIONS })?;
        }
    }
    for id in first..first.saturating_add(n) {
        ctx.db.account().insert(Account { id, branch_id: id % BRANCHES, balance: 1000 })?;
    }
    Ok(())
}

/// Opens one account (the one-insert benchmark's reducer).
#[reducer]
pub fn open(ctx: &ReducerContext, id: u64, balance: i64) -> Result<(), String> {
    ctx.db.account().insert(Account { id, branch_id: id % BRANCHES, balance })?;
    Ok(())
}

/// Does nothing (the empty-reducer benchmark's reducer).
#[reducer]
pub fn noop(_ctx: &ReducerContext) {}

/// Moves `amount` from one account to another.
#[reducer]
pub fn transfer(ctx: &ReducerContext, from_id: u64, to_id: u64, amount: i64) -> Result<(), String> {
    if amount < 0 {
        return Err(format!("cannot transfer a negative amount ({amount})"));
    }
    let accounts = ctx.db.account();
    let mut from = accounts.id().find(&from_id).ok_or(format!("no account {from_id}"))?;
    let mut to = accounts.id().find(&to_id).ok_or(format!("no account {to_id}"))?;
    if from.balance < amount {
        return Err(format!("account {from_id} has {} but {amount} was asked", from.balance));
    }
    if from_id == to_id {
        return Ok(());
    }
    from.balance -= amount;
    to.balance += amount;
    accounts.id().update(from)?;
    accounts.id().update(to)?;
    Ok(())
}
