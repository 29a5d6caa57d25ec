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
