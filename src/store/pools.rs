//! SQL of caller-number pools (`caller_numbers`, `attempts.from_number_id`)
//! and of the spend cap (`campaigns.max_cost`): the facts read as plain data
//! ([`PoolState`], [`SpendState`]); the choices made on them live in the
//! engine (`engine::limits`): the store only reads and writes.

use chrono::{DateTime, Utc};

use super::Store;
use crate::clock::to_db_text_ms;

/// A row of `caller_numbers`, with its placed calls in the last 24 h.
#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize)]
pub struct CallerNumber {
    /// The API's `from_number_id`.
    pub id: i64,
    /// The caller number, E.164.
    pub phone_number: String,
    /// The pool it belongs to.
    pub pool: String,
    /// Whether it is in rotation.
    pub active: bool,
    /// Its own cap of placed calls per rolling 24 h (`None`: no cap).
    pub max_calls_per_day: Option<i64>,
    /// When it was added.
    pub created_at: String,
    /// Calls placed (or in flight) from it in the last 24 h.
    pub calls_24h: i64,
}

/// One active number of a pool, as the pick sees it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct PoolNumber {
    /// The API's `from_number_id`.
    pub id: i64,
    /// The caller number as stored (E.164 when added through `numbers add`).
    pub phone_number: String,
    /// Its cap of calls per rolling 24 h; 0: none.
    pub max_calls_per_day: u32,
    /// Calls placed, or picked and not yet resolved, from it in the last 24 h.
    pub calls_24h: i64,
    /// The oldest of those, when its send time reads as a time.
    pub oldest_24h: Option<DateTime<Utc>>,
}

/// A pool at one instant: its active numbers and how used they are.
#[derive(Debug, Clone, PartialEq, Default, serde::Serialize)]
pub struct PoolState {
    /// The pool's name.
    pub pool: String,
    /// Its active numbers, by id.
    pub numbers: Vec<PoolNumber>,
    /// Its numbers taken out of rotation (`numbers disable`).
    pub disabled: usize,
    /// Attempts of campaigns using the pool that are claimed (`sending`)
    /// and have no number yet: the picks about to be made (read by
    /// [`Store::pool_state`] only).
    pub unpicked: u64,
}

/// What a pick at the instant of dialing found.
#[derive(Debug, Clone, PartialEq)]
pub enum PoolPick {
    /// The attempt carries this number (picked now, or by an earlier try).
    Picked(i64),
    /// The campaign has no caller pool (any more).
    NoPool,
    /// No number of the pool is free; the pool as it was.
    NoneFree(PoolState),
    /// The attempt is gone or no longer `sending`.
    Gone,
}

/// A campaign's spending, for the spend cap.
#[derive(Debug, Clone, Copy, PartialEq, Default, serde::Serialize)]
pub struct SpendState {
    /// `campaigns.max_cost` (`None`: no cap).
    pub max_cost: Option<f64>,
    /// `campaigns.cost_estimate`.
    pub cost_estimate: Option<f64>,
    /// Reconciled cost so far.
    pub spent: f64,
    /// Attempts with a reconciled cost (the mean's divisor).
    pub costed_calls: i64,
    /// Calls that may still cost: accepted without an outcome, or uncertain.
    pub awaiting: i64,
    /// Attempts claimed and `sending` (requests about to go out, or on the wire).
    pub sending: i64,
}

/// The placed-call count and oldest send time of each number, over the
/// rolling 24 h from ?2, leaving out attempt ?3; numbers of pool ?1.
const POOL_SQL: &str = concat!(
    "SELECT n.id, CAST(n.phone_number AS TEXT), n.active, \
        COALESCE(n.max_calls_per_day, 0), \
        (SELECT COUNT(*) FROM attempts a WHERE a.from_number_id = n.id AND a.sent_at > ?2 \
            AND a.id <> ?3 AND ",
    crate::store::placed_call!("a."),
    "), (SELECT MIN(a.sent_at) FROM attempts a WHERE a.from_number_id = n.id AND a.sent_at > ?2 \
            AND a.id <> ?3 AND ",
    crate::store::placed_call!("a."),
    ") FROM caller_numbers n WHERE n.pool = ?1 ORDER BY n.id"
);

type PoolRow = (i64, String, i64, i64, i64, Option<String>);

/// max_cost, cost_estimate, spent, costed, awaiting, sending.
type SpendRow = (Option<f64>, Option<f64>, f64, i64, i64, i64);

async fn pool_in(
    conn: &mut sqlx::SqliteConnection,
    pool: &str,
    now: DateTime<Utc>,
    exclude_attempt: i64,
) -> sqlx::Result<PoolState> {
    let rows: Vec<PoolRow> = sqlx::query_as(POOL_SQL)
        .bind(pool)
        .bind(to_db_text_ms(super::contacts::day_before(now)))
        .bind(exclude_attempt)
        .fetch_all(conn)
        .await?;
    let mut state = PoolState {
        pool: pool.to_string(),
        ..PoolState::default()
    };
    for (id, phone_number, active, cap, calls_24h, oldest) in rows {
        if active == 0 {
            state.disabled += 1;
            continue;
        }
        state.numbers.push(PoolNumber {
            id,
            phone_number,
            max_calls_per_day: u32::try_from(cap).unwrap_or(u32::MAX),
            calls_24h,
            oldest_24h: super::parse_time(oldest.as_deref()),
        });
    }
    Ok(state)
}

/// Why `numbers add` could not add a number.
#[derive(Debug, thiserror::Error)]
pub enum AddNumberError {
    /// The id is taken.
    #[error("caller number {id} already exists (pool {pool:?}, {phone_number})")]
    Exists {
        /// The id.
        id: i64,
        /// Its pool.
        pool: String,
        /// Its number.
        phone_number: String,
    },
    /// The database refused it.
    #[error(transparent)]
    Sql(#[from] sqlx::Error),
}

impl Store {
    /// Adds caller number `id` (the API's `from_number_id`) to `pool`.
    pub async fn add_caller_number(
        &self,
        id: i64,
        phone_number: &str,
        pool: &str,
        max_calls_per_day: Option<u32>,
    ) -> Result<(), AddNumberError> {
        let mut tx = self.begin_write().await?;
        let existing: Option<(String, String)> =
            sqlx::query_as("SELECT pool, phone_number FROM caller_numbers WHERE id = ?")
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?;
        if let Some((pool, phone_number)) = existing {
            return Err(AddNumberError::Exists {
                id,
                pool,
                phone_number,
            });
        }
        sqlx::query(
            "INSERT INTO caller_numbers (id, phone_number, pool, active, max_calls_per_day, created_at) \
             VALUES (?, ?, ?, 1, ?, ?)",
        )
        .bind(id)
        .bind(phone_number)
        .bind(pool.trim())
        .bind(max_calls_per_day.map(i64::from))
        .bind(self.now_text())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Every caller number, by pool and id, with its calls in the last 24 h.
    pub async fn caller_numbers(&self) -> sqlx::Result<Vec<CallerNumber>> {
        sqlx::query_as(concat!(
            "SELECT n.id, CAST(n.phone_number AS TEXT) AS phone_number, CAST(n.pool AS TEXT) AS pool, \
                    n.active <> 0 AS active, n.max_calls_per_day, CAST(n.created_at AS TEXT) AS created_at, \
                    (SELECT COUNT(*) FROM attempts a WHERE a.from_number_id = n.id AND a.sent_at > ? \
                       AND ",
            crate::store::placed_call!("a."),
            ") AS calls_24h FROM caller_numbers n ORDER BY n.pool, n.id",
        ))
        .bind(to_db_text_ms(super::contacts::day_before(self.clock.now())))
        .fetch_all(&self.pool)
        .await
    }

    /// Puts number `id` in or out of rotation; false when there is no such number.
    pub async fn set_caller_number_active(&self, id: i64, active: bool) -> sqlx::Result<bool> {
        let n = sqlx::query("UPDATE caller_numbers SET active = ? WHERE id = ?")
            .bind(i64::from(active))
            .bind(id)
            .execute(&self.pool)
            .await?
            .rows_affected();
        Ok(n > 0)
    }

    /// Pool `pool` at `now`: its active numbers with their calls in the
    /// rolling 24 h (in-flight picks included).
    pub async fn pool_state(&self, pool: &str, now: DateTime<Utc>) -> sqlx::Result<PoolState> {
        let mut conn = self.pool.acquire().await?;
        let mut state = pool_in(&mut conn, pool, now, 0).await?;
        let unpicked: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT COUNT(*) FROM attempts a WHERE {} AND a.state = 'sending' \
             AND a.from_number_id IS NULL \
             AND a.campaign_id IN (SELECT id FROM campaigns WHERE caller_pool = ?)",
            super::live_attempt!("a.")
        )))
        .bind(pool)
        .fetch_one(&mut *conn)
        .await?;
        state.unpicked = u64::try_from(unpicked).unwrap_or(0);
        Ok(state)
    }

    /// Picks the caller number of attempt `attempt_id` at `now`, in one
    /// write transaction so that two tries picking at once cannot both take
    /// a number's last call of the day: reads the campaign's pool as it is
    /// now, lets `choose` pick on it, and records the pick on the attempt
    /// (where the pool's daily caps count it from then on). An attempt that
    /// already carries a number (an earlier try) keeps it.
    pub async fn pick_caller_number(
        &self,
        attempt_id: i64,
        now: DateTime<Utc>,
        choose: impl FnOnce(&PoolState) -> Option<i64>,
    ) -> sqlx::Result<PoolPick> {
        let mut tx = self.begin_write().await?;
        let row: Option<(String, Option<i64>, Option<String>)> = sqlx::query_as(
            "SELECT a.state, a.from_number_id, CAST(cp.caller_pool AS TEXT) FROM attempts a \
             JOIN campaigns cp ON cp.id = a.campaign_id WHERE a.id = ?",
        )
        .bind(attempt_id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some((state, picked, pool)) = row else {
            return Ok(PoolPick::Gone);
        };
        if state != "sending" {
            return Ok(PoolPick::Gone);
        }
        if let Some(id) = picked {
            return Ok(PoolPick::Picked(id));
        }
        let Some(pool) = pool.filter(|p| !p.trim().is_empty()) else {
            return Ok(PoolPick::NoPool);
        };
        let state = pool_in(&mut tx, &pool, now, attempt_id).await?;
        let Some(id) = choose(&state) else {
            return Ok(PoolPick::NoneFree(state));
        };
        sqlx::query("UPDATE attempts SET from_number_id = ? WHERE id = ? AND state = 'sending'")
            .bind(id)
            .bind(attempt_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(PoolPick::Picked(id))
    }

    /// Campaign `campaign_id`'s spending now (the reconciled cost from
    /// `campaign_spend`, the open calls through `attempts_by_campaign`'s
    /// NULL outcomes: a few rows however large the campaign); `None` when
    /// it is gone.
    pub async fn spend_state(&self, campaign_id: i64) -> sqlx::Result<Option<SpendState>> {
        let row: Option<SpendRow> = sqlx::query_as(
            "SELECT CASE WHEN typeof(cp.max_cost) IN ('integer', 'real') THEN cp.max_cost END, \
                    CASE WHEN typeof(cp.cost_estimate) IN ('integer', 'real') THEN cp.cost_estimate END, \
                    CAST(COALESCE(s.spent, 0) AS REAL), COALESCE(s.costed, 0), \
                    (SELECT COUNT(*) FROM attempts a WHERE a.campaign_id = cp.id AND a.outcome IS NULL \
                        AND (a.state = 'accepted' OR a.state = 'uncertain')), \
                    (SELECT COUNT(*) FROM attempts a WHERE a.campaign_id = cp.id AND a.outcome IS NULL \
                        AND a.state = 'sending') \
             FROM campaigns cp LEFT JOIN campaign_spend s ON s.campaign_id = cp.id WHERE cp.id = ?",
        )
        .bind(campaign_id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(
            |(max_cost, cost_estimate, spent, costed_calls, awaiting, sending)| SpendState {
                max_cost,
                cost_estimate,
                spent,
                costed_calls,
                awaiting,
                sending,
            },
        ))
    }

    /// Active campaigns with a spend cap, by id.
    pub async fn spend_capped_campaigns(&self) -> sqlx::Result<Vec<(i64, String)>> {
        sqlx::query_as(
            "SELECT id, name FROM campaigns WHERE status = 'active' AND max_cost IS NOT NULL ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await
    }

    /// Sets campaign `id`'s spend cap (`None` removes it); false when there
    /// is no such campaign.
    pub async fn set_campaign_max_cost(
        &self,
        id: i64,
        max_cost: Option<f64>,
    ) -> sqlx::Result<bool> {
        let n = sqlx::query("UPDATE campaigns SET max_cost = ?, updated_at = ? WHERE id = ?")
            .bind(max_cost)
            .bind(self.now_text())
            .bind(id)
            .execute(&self.pool)
            .await?
            .rows_affected();
        Ok(n > 0)
    }
}
