//! The bank module: accounts with balances, seeded in bulk, and transfers that fail, changing
//! nothing, on insufficient funds or an unknown account.

use sluice_sdk::{reducer, table, ReducerContext};

#[table(name = account, public)]
pub struct Account {
    #[primary_key]
    pub id: u64,
    pub balance: i64,
}

/// Creates accounts 1..=n with a balance of 1000 each.
#[reducer]
pub fn seed(ctx: &ReducerContext, n: u64) -> Result<(), String> {
    for id in 1..=n {
        ctx.db.account().insert(Account { id, balance: 1000 })?;
    }
    Ok(())
}

/// Opens one account (the one-insert benchmark's reducer).
#[reducer]
pub fn open(ctx: &ReducerContext, id: u64, balance: i64) -> Result<(), String> {
    ctx.db.account().insert(Account { id, balance })?;
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
