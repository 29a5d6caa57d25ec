//! The call record: calls as they start and end, async calls queued, claimed and retried.

use super::{now_ms, CallEnd, DbResult, Store, StoreError, Target};
use sqlx::FromRow;

#[derive(Clone, Debug, FromRow)]
pub struct InvocationRow {
    pub id: String,
    pub function_id: i64,
    pub function_name: String,
    pub version: i64,
    pub trigger_kind: String,
    pub method: String,
    pub path: String,
    pub state: String,
    pub status_code: Option<i64>,
    pub duration_us: Option<i64>,
    pub cold: i64,
    pub logs: String,
    pub error: Option<String>,
    /// See `CallEnd::connections`.
    pub connections: Option<String>,
    /// The worker node that ran it (`None`: the process that recorded it).
    pub node: Option<String>,
    pub started_at: i64,
    pub tenant_id: i64,
    pub response: Option<String>,
    pub attempts: i64,
    /// When a queued retry may run (unix ms; 0: at once).
    pub retry_at: i64,
}

/// Which calls of a function a search wants (see `Store::search_invocations`); `None`: any.
#[derive(Debug, Default)]
pub struct InvocationFilter<'a> {
    pub status: Option<StatusFilter>,
    pub trigger: Option<&'a str>,
    pub version: Option<i64>,
    /// Started at or after (unix ms).
    pub since: Option<i64>,
    /// Started before (unix ms).
    pub until: Option<i64>,
    pub request_id: Option<&'a str>,
    /// Only calls after this one in the order: (its start, its id).
    pub after: Option<(i64, String)>,
}

/// Calls by how they ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatusFilter {
    /// This status code.
    Code(i64),
    /// Codes of one hundred: 2 for 2xx.
    Class(i64),
    /// Answered below 400.
    Success,
    /// Answered 5xx, or failed, or dead-lettered.
    Errors,
    /// Queued or running still.
    Unfinished,
}

/// One call as the figures count it.
#[derive(Clone, Debug, FromRow)]
pub struct CallFigure {
    pub started_at: i64,
    pub duration_us: Option<i64>,
    pub status_code: Option<i64>,
    pub cold: i64,
    pub state: String,
}

/// A queued call taken for running: its function's route, its stored request, and which
/// attempt this is (1 for the first).
#[derive(Clone, Debug, FromRow)]
pub struct Claimed {
    pub id: String,
    pub org: String,
    pub name: String,
    pub request: String,
    pub attempt: i64,
}

pub(super) const INVOCATION_COLUMNS: &str = "i.id, i.function_id, f.name AS function_name, i.version, i.trigger_kind, i.method, \
     i.path, i.state, i.status_code, i.duration_us, i.cold, i.logs, i.error, i.connections, i.node, i.started_at, i.tenant_id, i.response, i.attempts, i.retry_at";

impl Store {
    /// Writes how a call ended (its start is recorded already; see `journal.rs`).
    pub async fn finish_invocation(&self, end: &CallEnd) -> DbResult<()> {
        sqlx::query(
            // An asynchronous call (it keeps its request) gets its final state together with its
            // stored answer (`set_async_outcome`), so a reader never sees `done` without one.
            "UPDATE invocations SET state = CASE WHEN request IS NULL THEN $1 ELSE state END, status_code = $2, \
             duration_us = $3, cold = $4, logs = $5, error = $6, connections = $7, node = $8 WHERE id = $9",
        )
        .bind(end.state())
        .bind(end.status_code as i64)
        .bind(end.duration_us)
        .bind(end.cold as i64)
        .bind(end.logs.as_str())
        .bind(end.error.as_deref())
        .bind(end.connections.as_deref())
        .bind(end.node.as_deref())
        .bind(end.id.as_str())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Accepts an asynchronous call: recorded with its request, `queued` until a worker runs it.
    pub async fn queue_invocation(&self, id: &str, target: &Target, trigger: &str, method: &str, path: &str, request: &str) -> DbResult<()> {
        sqlx::query(
            "INSERT INTO invocations (id, function_id, tenant_id, version, trigger_kind, method, path, state, started_at, request) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, 'queued', $8, $9)",
        )
        .bind(id)
        .bind(target.function.id)
        .bind(target.function.tenant_id)
        .bind(target.version.version)
        .bind(trigger)
        .bind(method)
        .bind(path)
        .bind(now_ms())
        .bind(request)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Takes up to `limit` queued calls for running by process `owner`.
    pub async fn claim_queued(&self, limit: i64, owner: &str) -> DbResult<Vec<Claimed>> {
        let queued: Vec<String> =
            sqlx::query_scalar("SELECT id FROM invocations WHERE state = 'queued' AND retry_at <= $1 ORDER BY started_at LIMIT $2")
                .bind(now_ms())
                .bind(limit)
                .fetch_all(&self.pool)
                .await?;
        let mut claimed = Vec::new();
        for id in queued {
            if let Some(call) = self.claim_invocation(&id, owner).await? {
                claimed.push(call);
            }
        }
        Ok(claimed)
    }

    /// Takes one queued call for running (the broker delivered it). None when the call is not
    /// queued — done, running or unknown — so a redelivered message never runs a call twice;
    /// None too for a retry whose time has not come (the sweeper publishes it then).
    pub async fn claim_invocation(&self, id: &str, owner: &str) -> DbResult<Option<Claimed>> {
        let claimed = sqlx::query(
            "UPDATE invocations SET state = 'running', attempts = attempts + 1, owner = $3 WHERE id = $1 AND state = 'queued' AND retry_at <= $2",
        )
        .bind(id)
        .bind(now_ms())
        .bind(owner)
        .execute(&self.pool)
        .await?;
        if claimed.rows_affected() != 1 {
            return Ok(None);
        }
        Ok(sqlx::query_as(
            "SELECT i.id, t.slug AS org, f.name, i.request, i.attempts AS attempt FROM invocations i \
             JOIN functions f ON f.id = i.function_id JOIN tenants t ON t.id = f.tenant_id WHERE i.id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// The broker confirmed the message of the call's attempt after `attempts`; unconfirmed
    /// queued calls are published again by the sweeper. A call claimed meanwhile (its attempts
    /// grew) is left alone: its outcome decides whether it is published again.
    pub async fn set_published(&self, id: &str, attempts: i64) -> DbResult<()> {
        sqlx::query("UPDATE invocations SET published = 1 WHERE id = $1 AND attempts = $2")
            .bind(id)
            .bind(attempts)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Queued calls whose message the broker never confirmed, of functions not being deleted
    /// (publishing would declare their queue again): retries once due, and first attempts
    /// accepted before `accepted_before` (a newer one may still be on its way to the broker
    /// from the request that accepted it; publishing it too would queue it twice).
    /// (id, tenant slug, function name, attempts so far).
    pub async fn unpublished_calls(&self, accepted_before: i64, limit: i64) -> DbResult<Vec<(String, String, String, i64)>> {
        sqlx::query_as(
            "SELECT i.id, t.slug, f.name, i.attempts FROM invocations i JOIN functions f ON f.id = i.function_id \
             JOIN tenants t ON t.id = f.tenant_id \
             WHERE i.state = 'queued' AND i.published = 0 AND i.request IS NOT NULL AND f.status <> 'deleting' \
             AND i.retry_at <= $1 AND (i.attempts > 0 OR i.started_at < $2) ORDER BY i.started_at LIMIT $3",
        )
        .bind(now_ms())
        .bind(accepted_before)
        .bind(limit)
        .fetch_all(&self.pool)
        .await.map_err(StoreError::from)
    }

    /// Ends the queued calls of a function whose queue is gone (the function was deleted).
    pub async fn fail_queued_of_function(&self, function_id: i64) -> DbResult<u64> {
        let done = sqlx::query(
            "UPDATE invocations SET state = 'failed', error = 'the function was deleted before the call ran' \
             WHERE function_id = $1 AND state = 'queued'",
        )
        .bind(function_id)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }

    /// Stores an asynchronous call's answer and its next state (`done`, `queued` for another
    /// attempt, `dead-letter`, or `failed`).
    pub async fn set_async_outcome(&self, id: &str, response: Option<&str>, state: &str) -> DbResult<()> {
        sqlx::query("UPDATE invocations SET response = $1, state = $2 WHERE id = $3")
            .bind(response)
            .bind(state)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Queues a call that answered 5xx again, with that answer, for another attempt at
    /// `retry_at` (unix ms). Unpublished: the sweeper publishes it when it is due.
    pub async fn retry_async_call(&self, id: &str, response: &str, retry_at: i64) -> DbResult<()> {
        sqlx::query("UPDATE invocations SET response = $1, state = 'queued', retry_at = $2, published = 0 WHERE id = $3")
            .bind(response)
            .bind(retry_at)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Ends a call that could not run at all.
    pub async fn fail_invocation(&self, id: &str, reason: &str) -> DbResult<()> {
        sqlx::query("UPDATE invocations SET state = 'failed', error = $1 WHERE id = $2")
            .bind(reason)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn invocation(&self, id: &str) -> DbResult<Option<InvocationRow>> {
        sqlx::query_as(&format!("SELECT {INVOCATION_COLUMNS} FROM invocations i JOIN functions f ON f.id = i.function_id WHERE i.id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await.map_err(StoreError::from)
    }

    pub async fn list_invocations(&self, function_id: i64, limit: i64) -> DbResult<Vec<InvocationRow>> {
        sqlx::query_as(&format!(
            "SELECT {INVOCATION_COLUMNS} FROM invocations i JOIN functions f ON f.id = i.function_id \
             WHERE i.function_id = $1 ORDER BY i.started_at DESC, i.id LIMIT $2"
        ))
        .bind(function_id)
        .bind(limit)
        .fetch_all(&self.pool)
        .await.map_err(StoreError::from)
    }

    /// A function's calls that pass `filter`, the newest first (by start, then id), at most
    /// `limit`: one page of a search; the next page starts after its last call.
    pub async fn search_invocations(&self, function_id: i64, filter: &InvocationFilter<'_>, limit: i64) -> DbResult<Vec<InvocationRow>> {
        enum Bind<'b> {
            Int(i64),
            Text(&'b str),
        }
        let mut binds = vec![Bind::Int(function_id)];
        let mut conditions = vec!["i.function_id = $1".to_string()];
        // Adds a bound value; its placeholder.
        macro_rules! bound {
            ($bind:expr) => {{
                binds.push($bind);
                format!("${}", binds.len())
            }};
        }
        match filter.status {
            Some(StatusFilter::Code(code)) => conditions.push(format!("i.status_code = {}", bound!(Bind::Int(code)))),
            Some(StatusFilter::Class(class)) => {
                let (low, high) = (bound!(Bind::Int(class * 100)), bound!(Bind::Int(class * 100 + 100)));
                conditions.push(format!("i.status_code >= {low} AND i.status_code < {high}"));
            }
            Some(StatusFilter::Success) => conditions.push("i.status_code < 400".into()),
            Some(StatusFilter::Errors) => conditions.push("(i.status_code >= 500 OR i.state IN ('failed', 'dead-letter'))".into()),
            Some(StatusFilter::Unfinished) => conditions.push("i.state IN ('queued', 'running')".into()),
            None => {}
        }
        if let Some(trigger) = filter.trigger {
            conditions.push(format!("i.trigger_kind = {}", bound!(Bind::Text(trigger))));
        }
        if let Some(version) = filter.version {
            conditions.push(format!("i.version = {}", bound!(Bind::Int(version))));
        }
        if let Some(since) = filter.since {
            conditions.push(format!("i.started_at >= {}", bound!(Bind::Int(since))));
        }
        if let Some(until) = filter.until {
            conditions.push(format!("i.started_at < {}", bound!(Bind::Int(until))));
        }
        if let Some(id) = filter.request_id {
            conditions.push(format!("i.id = {}", bound!(Bind::Text(id))));
        }
        if let Some((at, id)) = &filter.after {
            let (at_a, at_b, id_b) = (bound!(Bind::Int(*at)), bound!(Bind::Int(*at)), bound!(Bind::Text(id)));
            conditions.push(format!("(i.started_at < {at_a} OR (i.started_at = {at_b} AND i.id > {id_b}))"));
        }
        let limit_at = bound!(Bind::Int(limit));
        let sql = format!(
            "SELECT {INVOCATION_COLUMNS} FROM invocations i JOIN functions f ON f.id = i.function_id \
             WHERE {} ORDER BY i.started_at DESC, i.id LIMIT {limit_at}",
            conditions.join(" AND ")
        );
        let mut query = sqlx::query_as(&sql);
        for bind in binds {
            query = match bind {
                Bind::Int(v) => query.bind(v),
                Bind::Text(v) => query.bind(v),
            };
        }
        query.fetch_all(&self.pool).await.map_err(StoreError::from)
    }

    /// What the figures of a function's calls since `since` (ms) are made of, oldest first.
    pub async fn call_figures(&self, function_id: i64, since: i64) -> DbResult<Vec<CallFigure>> {
        sqlx::query_as(
            "SELECT started_at, duration_us, status_code, cold, state FROM invocations \
             WHERE function_id = $1 AND started_at >= $2 ORDER BY started_at",
        )
        .bind(function_id)
        .bind(since)
        .fetch_all(&self.pool)
        .await
        .map_err(StoreError::from)
    }

    /// The newest calls of a function that one trigger brought (`schedule`, say).
    pub async fn list_invocations_of_trigger(&self, function_id: i64, trigger: &str, limit: i64) -> DbResult<Vec<InvocationRow>> {
        sqlx::query_as(&format!(
            "SELECT {INVOCATION_COLUMNS} FROM invocations i JOIN functions f ON f.id = i.function_id \
             WHERE i.function_id = $1 AND i.trigger_kind = $3 ORDER BY i.started_at DESC, i.id LIMIT $2"
        ))
        .bind(function_id)
        .bind(limit)
        .bind(trigger)
        .fetch_all(&self.pool)
        .await.map_err(StoreError::from)
    }

    /// Deletes the finished call records of a function started before `before` (ms) or older
    /// than its newest `keep`, a chunk at a time so that new records are not held up for
    /// long. Queued and running calls stay. Returns how many went.
    pub async fn prune_invocations(&self, function_id: i64, before: i64, keep: i64) -> DbResult<u64> {
        const CHUNK: i64 = 5000;
        let oldest_kept: Option<i64> =
            sqlx::query_scalar("SELECT started_at FROM invocations WHERE function_id = $1 ORDER BY started_at DESC LIMIT 1 OFFSET $2")
                .bind(function_id)
                .bind(keep.max(1) - 1)
                .fetch_optional(&self.pool)
                .await?;
        let cutoff = oldest_kept.map_or(before, |at| at.max(before));
        let mut pruned = 0;
        loop {
            let gone = sqlx::query(
                "DELETE FROM invocations WHERE id IN (SELECT id FROM invocations \
                 WHERE function_id = $1 AND started_at < $2 AND state NOT IN ('queued', 'running') LIMIT $3)",
            )
            .bind(function_id)
            .bind(cutoff)
            .bind(CHUNK)
            .execute(&self.pool)
            .await?
            .rows_affected();
            pruned += gone;
            if gone < CHUNK as u64 {
                return Ok(pruned);
            }
            tokio::task::yield_now().await;
        }
    }

    /// Calls left running by a process not among the `live` ones (nor `me`): asynchronous ones
    /// go back to the queue, to be published again; synchronous ones (their caller's
    /// connection went with the process) are failed as interrupted.
    pub async fn recover_calls_of_gone(&self, me: &str, live: &std::collections::HashSet<String>) -> DbResult<Recovered> {
        let running: Vec<(String, String, i64)> = sqlx::query_as(
            "SELECT id, owner, CASE WHEN request IS NULL THEN 0 ELSE 1 END FROM invocations \
             WHERE state = 'running' AND owner IS NOT NULL",
        )
        .fetch_all(&self.pool)
        .await?;
        let mut recovered = Recovered::default();
        for (id, owner, asynchronous) in running.into_iter().filter(|(_, owner, _)| owner != me && !live.contains(owner)) {
            if asynchronous == 1 {
                recovered.requeued += sqlx::query(
                    "UPDATE invocations SET state = 'queued', published = 0 WHERE id = $1 AND state = 'running' AND owner = $2",
                )
                .bind(&id)
                .bind(&owner)
                .execute(&self.pool)
                .await?
                .rows_affected();
            } else {
                recovered.failed += sqlx::query("UPDATE invocations SET state = 'failed', error = $3 WHERE id = $1 AND state = 'running' AND owner = $2")
                    .bind(&id)
                    .bind(&owner)
                    .bind(INTERRUPTED)
                    .execute(&self.pool)
                    .await?
                    .rows_affected();
            }
        }
        Ok(recovered)
    }

    /// Calls left `running` by a server that stopped before they ended. Asynchronous ones
    /// (they keep their request) go back to the queue instead, to be published again: their
    /// message may have been acknowledged already (a duplicate is skipped by the claim).
    pub async fn fail_interrupted_invocations(&self, started_before: i64) -> DbResult<u64> {
        sqlx::query("UPDATE invocations SET state = 'queued', published = 0 WHERE state = 'running' AND request IS NOT NULL AND started_at < $1")
            .bind(started_before)
            .execute(&self.pool)
            .await?;
        let done = sqlx::query("UPDATE invocations SET state = 'failed', error = $2 WHERE state = 'running' AND request IS NULL AND started_at < $1")
        .bind(started_before)
        .bind(INTERRUPTED)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }
}

/// The error of a synchronous call whose process stopped while it ran (its caller lost the
/// connection with it), whichever process finds it.
const INTERRUPTED: &str = "interrupted: the process that took the call stopped during it";

/// What `Store::recover_calls_of_gone` did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Recovered {
    /// Asynchronous calls queued again.
    pub requeued: u64,
    /// Synchronous calls failed as interrupted.
    pub failed: u64,
}
