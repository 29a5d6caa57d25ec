//! The audit log: who changed what, kept by names so entries outlive what they are about.

use super::{now_ms, DbResult, Store, StoreError};
use app::model::AuditEntry;

/// A change to record; `org` is the tenant it is about (`None`: the platform).
pub struct Change<'a> {
    pub actor: &'a str,
    pub org: Option<&'a str>,
    pub action: &'a str,
    pub target: &'a str,
    pub detail: String,
}

type AuditRow = (i64, i64, String, Option<String>, String, String, String);

impl Store {
    pub async fn record_change(&self, change: Change<'_>) -> DbResult<()> {
        sqlx::query("INSERT INTO audit_log (at, actor, org, action, target, detail) VALUES ($1, $2, $3, $4, $5, $6)")
            .bind(now_ms())
            .bind(change.actor)
            .bind(change.org)
            .bind(change.action)
            .bind(change.target)
            .bind(change.detail)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Newest first; only `org`'s when given; only entries older than `before` when given.
    pub async fn list_changes(&self, org: Option<&str>, before: Option<i64>, limit: i64) -> DbResult<Vec<AuditEntry>> {
        let rows: Vec<AuditRow> = sqlx::query_as(
            "SELECT id, at, actor, org, action, target, detail FROM audit_log \
             WHERE ($1 = '' OR org = $1) AND ($2 = 0 OR id < $2) ORDER BY id DESC LIMIT $3",
        )
        .bind(org.unwrap_or(""))
        .bind(before.unwrap_or(0))
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .map_err(StoreError::from)?;
        Ok(rows
            .into_iter()
            .map(|(id, at, actor, org, action, target, detail)| AuditEntry { id, at, actor, org, action, target, detail })
            .collect())
    }
}
