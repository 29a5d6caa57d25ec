//! Saved test events: named Test Function requests of a function.

use super::{now_ms, DbResult, Store, StoreError};
use app::model::TestRequest;

impl Store {
    /// A function's saved events by name, with their requests.
    pub async fn test_events(&self, function_id: i64) -> DbResult<Vec<(String, TestRequest, i64)>> {
        let rows: Vec<(String, String, i64)> =
            sqlx::query_as("SELECT name, request, updated_at FROM test_events WHERE function_id = $1 ORDER BY name")
                .bind(function_id)
                .fetch_all(&self.pool)
                .await?;
        // A request that does not read back (written by a newer version) is skipped.
        Ok(rows.into_iter().filter_map(|(name, json, at)| Some((name, serde_json::from_str(&json).ok()?, at))).collect())
    }

    pub async fn count_test_events(&self, function_id: i64) -> DbResult<i64> {
        sqlx::query_scalar("SELECT COUNT(*) FROM test_events WHERE function_id = $1").bind(function_id).fetch_one(&self.pool).await.map_err(StoreError::from)
    }

    /// Saves an event under its name, replacing one of the same name.
    pub async fn save_test_event(&self, function_id: i64, name: &str, request: &TestRequest) -> DbResult<()> {
        let json = serde_json::to_string(request).expect("a request serializes");
        sqlx::query(
            "INSERT INTO test_events (function_id, name, request, updated_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (function_id, name) DO UPDATE SET request = excluded.request, updated_at = excluded.updated_at",
        )
        .bind(function_id)
        .bind(name)
        .bind(json)
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Deletes a saved event; false when there was none.
    pub async fn delete_test_event(&self, function_id: i64, name: &str) -> DbResult<bool> {
        let done = sqlx::query("DELETE FROM test_events WHERE function_id = $1 AND name = $2").bind(function_id).bind(name).execute(&self.pool).await?;
        Ok(done.rows_affected() > 0)
    }
}
