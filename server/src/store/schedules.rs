//! The leases on scheduled functions' ticks (`function_schedules`, migration 0014): one row per
//! scheduled function holding the latest tick claimed. Claiming moves it forward with a
//! compare-and-set, so however many processes share the database, one wins each tick, and the
//! claim is committed before the call starts.

use super::functions::{FunctionRow, FUNCTION_COLUMNS};
use super::{DbResult, Store, StoreError};
use sqlx::{FromRow, Row};

/// A scheduled function that serves a version, with its lease.
#[derive(Clone, Debug)]
pub struct Scheduled {
    pub function: FunctionRow,
    /// The schedule the lease counts for (see `functions::schedule_key`).
    pub key: String,
    /// The latest tick claimed, or when the schedule was set (Unix ms).
    pub last_due: i64,
}

impl Store {
    /// Scheduled functions that serve a version and are not being deleted, with their leases.
    pub async fn scheduled_functions(&self) -> DbResult<Vec<Scheduled>> {
        let rows = sqlx::query(&format!(
            "SELECT {FUNCTION_COLUMNS}, s.schedule, s.last_due FROM functions f JOIN tenants t ON t.id = f.tenant_id \
             JOIN function_schedules s ON s.function_id = f.id \
             WHERE f.trigger_type = 'schedule' AND f.status <> 'deleting' AND f.current_version IS NOT NULL"
        ))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(Scheduled { function: FunctionRow::from_row(row)?, key: row.try_get("schedule")?, last_due: row.try_get("last_due")? })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::from)
    }

    /// Claims tick `due` of a function for process `by`: true for exactly one caller, and only
    /// while the lease still counts for schedule `key` and has claimed nothing at or after `due`.
    /// One statement: PostgreSQL makes a second writer of the row wait and check the condition
    /// again on the row as the first one left it; SQLite runs one writer at a time.
    pub async fn claim_tick(&self, function_id: i64, key: &str, due: i64, by: &str) -> DbResult<bool> {
        let claimed = sqlx::query(
            "UPDATE function_schedules SET last_due = $1, claimed_by = $2, claimed_at = $3 \
             WHERE function_id = $4 AND schedule = $5 AND last_due < $1",
        )
        .bind(due)
        .bind(by)
        .bind(super::now_ms())
        .bind(function_id)
        .bind(key)
        .execute(&self.pool)
        .await?;
        Ok(claimed.rows_affected() == 1)
    }
}
