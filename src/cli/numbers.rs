//! `dialerd numbers add|list|disable|enable`: the caller numbers (the API's
//! `from_number_id`s) a campaign with a `caller_pool` rotates through.
//! Numbers are normalised to E.164 at the edge; a running daemon sees a
//! change at its next pick, without being signalled.

use anyhow::Context;

use super::NumbersCmd;
use super::status::{Table, clean};
use crate::config::{Settings, parse_region};
use crate::error::{CliError, Exit};
use crate::phone::PhoneNumber;
use crate::store::{AddNumberError, Store};

/// Runs a `numbers` subcommand.
pub async fn run(store: &Store, settings: &Settings, cmd: NumbersCmd) -> Result<(), CliError> {
    match cmd {
        NumbersCmd::Add {
            id,
            number,
            pool,
            max_per_day,
            region,
        } => add(store, settings, id, &number, &pool, max_per_day, region).await,
        NumbersCmd::List { json } => list(store, json).await,
        NumbersCmd::Disable { id } => set_active(store, id, false).await,
        NumbersCmd::Enable { id } => set_active(store, id, true).await,
    }
}

/// `numbers add ID NUMBER --pool NAME [--max-per-day N]`.
async fn add(
    store: &Store,
    settings: &Settings,
    id: i64,
    number: &str,
    pool: &str,
    max_per_day: Option<u32>,
    region: Option<String>,
) -> Result<(), CliError> {
    let usage = |m: String| CliError::msg(Exit::Usage, m);
    if id <= 0 {
        return Err(usage(format!(
            "ID {id}: a from_number_id is a positive whole number"
        )));
    }
    let pool = pool.trim();
    if pool.is_empty() {
        return Err(usage("--pool: the pool name must not be empty".into()));
    }
    let region = match region {
        Some(r) => Some(parse_region(&r).map_err(|m| usage(format!("--region: {m}")))?),
        None => settings.campaign_defaults.region,
    };
    let phone = PhoneNumber::parse(number, region)
        .map_err(|e| CliError::msg(Exit::DataErr, format!("NUMBER {number:?}: {e}")))?;
    match store
        .add_caller_number(id, phone.as_str(), pool, max_per_day)
        .await
    {
        Ok(()) => {}
        Err(e @ AddNumberError::Exists { .. }) => {
            return Err(CliError::msg(Exit::Failure, clean(&e.to_string())));
        }
        Err(AddNumberError::Sql(e)) => {
            return Err(CliError::new(
                Exit::Failure,
                anyhow::Error::new(e).context("adding the caller number"),
            ));
        }
    }
    let cap = max_per_day.map_or_else(
        || "no daily cap".to_string(),
        |n| format!("at most {n} calls per 24 h"),
    );
    outln!(
        "caller number {id} ({}) added to pool {:?}, {cap}",
        phone.as_str(),
        clean(pool)
    );
    Ok(())
}

/// `numbers list [--json]`.
async fn list(store: &Store, json: bool) -> Result<(), CliError> {
    let rows = store
        .caller_numbers()
        .await
        .context("reading caller_numbers")?;
    if json {
        let out = serde_json::to_string(&rows).context("writing JSON")?;
        outln!("{out}");
        return Ok(());
    }
    if rows.is_empty() {
        outln!("no caller numbers yet (add one with: dialerd numbers add ID NUMBER --pool NAME)");
        return Ok(());
    }
    let mut table = Table::new(&[
        "ID",
        "NUMBER",
        "POOL",
        "ACTIVE",
        "MAX/DAY",
        "CALLS 24H",
        "ADDED",
    ]);
    for n in &rows {
        table.push(vec![
            n.id.to_string(),
            clean(&n.phone_number),
            clean(&n.pool),
            if n.active { "yes" } else { "no" }.to_string(),
            n.max_calls_per_day
                .filter(|m| *m > 0)
                .map_or_else(|| "-".to_string(), |m| m.to_string()),
            n.calls_24h.to_string(),
            clean(&n.created_at),
        ]);
    }
    out!("{}", table.render());
    Ok(())
}

/// `numbers disable|enable ID`.
async fn set_active(store: &Store, id: i64, active: bool) -> Result<(), CliError> {
    let found = store
        .set_caller_number_active(id, active)
        .await
        .context("changing the caller number")?;
    if !found {
        return Err(CliError::msg(
            Exit::Failure,
            format!("no caller number {id} (see: dialerd numbers list)"),
        ));
    }
    let what = if active {
        "enabled: back in rotation"
    } else {
        "disabled: no call goes out from it until it is enabled"
    };
    outln!("caller number {id} {what}");
    Ok(())
}
