//! The cluster's worker nodes as the provider sees and steers them.

use super::{Result, Service};
use crate::cluster::members::NodeState;
use crate::store::{now_ms, NodeRow};
use app::model::*;
use app::platform::{Nodes, PlatformError};
use async_trait::async_trait;

#[async_trait]
impl Nodes for Service {
    async fn list_nodes(&self, caller: &Caller) -> Result<Vec<NodeView>> {
        Self::require_provider(caller)?;
        let now = now_ms();
        Ok(self.store.nodes().await?.iter().map(|row| view(row, now)).collect())
    }

    async fn set_node_draining(&self, caller: &Caller, name: &str, draining: bool) -> Result<NodeView> {
        Self::require_provider(caller)?;
        if !self.store.set_node_draining(name, draining).await? {
            return Err(PlatformError::not_found(format!("no node {name:?}; GET /api/v1/nodes lists them")));
        }
        self.audit(caller, None, if draining { "node.drain" } else { "node.undrain" }, name, "").await;
        let row = self.store.nodes().await?.into_iter().find(|n| n.name == name);
        row.map(|row| view(&row, now_ms())).ok_or_else(|| PlatformError::not_found(format!("no node {name:?}")))
    }
}

fn view(row: &NodeRow, now: i64) -> NodeView {
    NodeView {
        name: row.name.clone(),
        address: row.address.clone(),
        state: NodeState::of(row, now).as_str().to_string(),
        memory_mb: row.memory_mb,
        used_memory_mb: row.beat.used_memory_mb,
        cpus: row.millicpus as f64 / 1000.0,
        used_cpus: row.beat.used_millicpus as f64 / 1000.0,
        containers: row.beat.containers,
        calls_in_flight: row.beat.calls_in_flight,
        calls_per_sec: row.beat.calls_last_10s as f64 / 10.0,
        started_at: row.started_at,
        heartbeat_at: row.heartbeat_at,
    }
}
