//! Worker nodes: each one's row, written by its heartbeat, read by the fronts that place calls
//! and by the Nodes view. The drain flag is the provider's and survives the node's restarts.

use super::{now_ms, DbResult, Store};
use sqlx::FromRow;

/// A node as its last heartbeat described it.
#[derive(Clone, Debug, FromRow)]
pub struct NodeRow {
    pub name: String,
    /// The process serving as this node now (its containers carry this label).
    pub process: String,
    /// Where it takes forwarded calls, `host:port`.
    pub address: String,
    pub draining: i64,
    pub memory_mb: i64,
    pub millicpus: i64,
    /// What its last heartbeat said.
    #[sqlx(flatten)]
    pub beat: NodeBeat,
    pub started_at: i64,
    pub heartbeat_at: i64,
}

impl NodeRow {
    pub fn is_draining(&self) -> bool {
        self.draining != 0
    }
}

/// What a node says of itself in each heartbeat.
#[derive(Clone, Debug, Default, FromRow)]
pub struct NodeBeat {
    pub used_memory_mb: i64,
    pub used_millicpus: i64,
    pub containers: i64,
    pub calls_in_flight: i64,
    pub calls_last_10s: i64,
    /// Its containers by version, a JSON array of `WarmVersion`.
    pub warm: String,
}

const COLUMNS: &str = "name, process, address, draining, memory_mb, millicpus, used_memory_mb, used_millicpus, \
     containers, calls_in_flight, calls_last_10s, warm, started_at, heartbeat_at";

impl Store {
    /// Registers the node `name` as served by `process` at `address`; a node that comes back
    /// keeps its row's drain flag.
    pub async fn register_node(&self, name: &str, process: &str, address: &str, memory_mb: i64, millicpus: i64) -> DbResult<()> {
        let now = now_ms();
        sqlx::query(
            "INSERT INTO nodes (name, process, address, memory_mb, millicpus, started_at, heartbeat_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $6) \
             ON CONFLICT (name) DO UPDATE SET process = $2, address = $3, memory_mb = $4, millicpus = $5, \
             used_memory_mb = 0, used_millicpus = 0, containers = 0, calls_in_flight = 0, calls_last_10s = 0, \
             warm = '[]', started_at = $6, heartbeat_at = $6",
        )
        .bind(name)
        .bind(process)
        .bind(address)
        .bind(memory_mb)
        .bind(millicpus)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// One heartbeat of the node, from the process that registered it (a newer process under
    /// the same name has taken over when this writes nothing: the answer is false).
    pub async fn node_heartbeat(&self, name: &str, process: &str, beat: &NodeBeat) -> DbResult<bool> {
        let done = sqlx::query(
            "UPDATE nodes SET used_memory_mb = $1, used_millicpus = $2, containers = $3, calls_in_flight = $4, \
             calls_last_10s = $5, warm = $6, heartbeat_at = $7 WHERE name = $8 AND process = $9",
        )
        .bind(beat.used_memory_mb)
        .bind(beat.used_millicpus)
        .bind(beat.containers)
        .bind(beat.calls_in_flight)
        .bind(beat.calls_last_10s)
        .bind(&beat.warm)
        .bind(now_ms())
        .bind(name)
        .bind(process)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// A clean stop: the row stays (with its drain flag), silent from now on.
    pub async fn node_left(&self, name: &str, process: &str) -> DbResult<()> {
        sqlx::query("UPDATE nodes SET heartbeat_at = 0, containers = 0, calls_in_flight = 0, warm = '[]' WHERE name = $1 AND process = $2")
            .bind(name)
            .bind(process)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn nodes(&self) -> DbResult<Vec<NodeRow>> {
        let rows = sqlx::query_as(&format!("SELECT {COLUMNS} FROM nodes ORDER BY name")).fetch_all(&self.pool).await?;
        Ok(rows)
    }

    /// Sets the drain flag; false when no node has that name.
    pub async fn set_node_draining(&self, name: &str, draining: bool) -> DbResult<bool> {
        let done = sqlx::query("UPDATE nodes SET draining = $1 WHERE name = $2").bind(draining as i64).bind(name).execute(&self.pool).await?;
        Ok(done.rows_affected() > 0)
    }
}

/// How long a container start is counted from its row: until the node's heartbeats have surely
/// listed it (a heartbeat reads the pool a moment before it is written, so a margin of one).
const START_COUNTED_AFTER_HEARTBEAT_MS: i64 = 1_000;
/// Start rows older than this are deleted by the node that wrote them.
const START_ROWS_KEPT_MS: i64 = 10_000;

/// Whether a node may start one more container of a function (see `Store::admit_container`).
#[derive(Debug, PartialEq, Eq)]
pub enum Admission {
    Admitted,
    /// The function holds its `max_instances` already: the other nodes' containers of it.
    Full(Vec<(String, usize)>),
}

impl Store {
    /// Lets node `me`, which holds `here` containers of the function, start one more only while
    /// the function's containers on every node that is up (a heartbeat within `down_after_ms`)
    /// stay within `max_instances`: the others' as their heartbeats list them, plus the starts
    /// they wrote since. One node at a time per function (an advisory lock held to the
    /// commit), so two nodes starting at once cannot both take the last place. PostgreSQL
    /// only, as nodes are.
    pub async fn admit_container(&self, me: &str, function_id: i64, here: usize, max_instances: usize, down_after_ms: i64) -> DbResult<Admission> {
        let now = now_ms();
        let mut tx = self.pool.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(function_id).execute(&mut *tx).await?;
        let others: Vec<(String, i64)> = sqlx::query_as(
            "SELECT n.name, \
             (SELECT COALESCE(SUM((w ->> 'containers')::bigint), 0)::bigint FROM jsonb_array_elements(n.warm::jsonb) w \
              WHERE (w ->> 'function_id')::bigint = $1) \
             + (SELECT COUNT(*) FROM container_starts s \
              WHERE s.function_id = $1 AND s.node = n.name AND s.started_at > n.heartbeat_at - $2) \
             FROM nodes n WHERE n.name <> $3 AND n.heartbeat_at > $4 ORDER BY n.name",
        )
        .bind(function_id)
        .bind(START_COUNTED_AFTER_HEARTBEAT_MS)
        .bind(me)
        .bind(now - down_after_ms)
        .fetch_all(&mut *tx)
        .await?;
        let elsewhere: Vec<(String, usize)> = others.into_iter().filter(|(_, n)| *n > 0).map(|(name, n)| (name, n as usize)).collect();
        let held = here + elsewhere.iter().map(|(_, n)| n).sum::<usize>();
        if held >= max_instances.max(1) {
            tx.commit().await?;
            return Ok(Admission::Full(elsewhere));
        }
        sqlx::query("DELETE FROM container_starts WHERE node = $1 AND started_at < $2").bind(me).bind(now - START_ROWS_KEPT_MS).execute(&mut *tx).await?;
        sqlx::query("INSERT INTO container_starts (node, function_id, started_at) VALUES ($1, $2, $3)")
            .bind(me)
            .bind(function_id)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Admission::Admitted)
    }
}
