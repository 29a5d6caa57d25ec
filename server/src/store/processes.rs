//! The server processes sharing the database, and their heartbeats.

use super::{now_ms, DbResult, Store};
use sqlx::FromRow;

#[derive(Clone, Debug, FromRow)]
pub struct ProcessRow {
    pub id: String,
    pub host: String,
    pub pid: i64,
    pub heartbeat_at: i64,
}

impl Store {
    pub async fn register_process(&self, id: &str, host: &str, pid: i64) -> DbResult<()> {
        let now = now_ms();
        sqlx::query("INSERT INTO processes (id, host, pid, started_at, heartbeat_at) VALUES ($1, $2, $3, $4, $4)")
            .bind(id)
            .bind(host)
            .bind(pid)
            .bind(now)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn process_heartbeat(&self, id: &str) -> DbResult<()> {
        sqlx::query("UPDATE processes SET heartbeat_at = $1 WHERE id = $2").bind(now_ms()).bind(id).execute(&self.pool).await?;
        Ok(())
    }

    pub async fn remove_process(&self, id: &str) -> DbResult<()> {
        sqlx::query("DELETE FROM processes WHERE id = $1").bind(id).execute(&self.pool).await?;
        Ok(())
    }

    /// Every registered process; rows silent since before `forget_before` are deleted first.
    pub async fn processes(&self, forget_before: i64) -> DbResult<Vec<ProcessRow>> {
        sqlx::query("DELETE FROM processes WHERE heartbeat_at < $1").bind(forget_before).execute(&self.pool).await?;
        let rows = sqlx::query_as("SELECT id, host, pid, heartbeat_at FROM processes").fetch_all(&self.pool).await?;
        Ok(rows)
    }
}
