//! This process among the others that share the database: it registers itself, beats, and
//! tells which others are alive, so that its reconciler removes only the containers of
//! processes that are gone (a restarted one's predecessor, a crashed peer), never a live
//! peer's warm containers or running calls.

use crate::store::{now_ms, Store};
use std::collections::HashSet;
use std::time::Duration;

/// How often a process says it is alive.
const HEARTBEAT: Duration = Duration::from_secs(3);
/// Silent for longer than this, a process is gone.
const SILENCE_MS: i64 = 15_000;
/// Rows silent this long are deleted.
const FORGET_MS: i64 = 24 * 3600 * 1000;

fn this_host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname").map(|h| h.trim().to_string()).unwrap_or_default()
}

/// Registers process `id` (the label its containers carry) and keeps its heartbeat.
pub async fn join(store: &Store, id: &str) -> Result<(), String> {
    store.register_process(id, &this_host(), std::process::id() as i64).await.map_err(|e| format!("database: {e}"))?;
    let (store, id) = (store.clone(), id.to_string());
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(HEARTBEAT).await;
            if let Err(e) = store.process_heartbeat(&id).await {
                tracing::warn!(error = %e, "cannot write this process's heartbeat");
            }
        }
    });
    Ok(())
}

/// A clean stop: the others need not wait for the silence.
pub async fn leave(store: &Store, id: &str) {
    let _ = store.remove_process(id).await;
}

/// The processes other than `id` alive now: a recent heartbeat and, on this host, a running
/// pid (a process killed a moment ago still has a recent heartbeat).
pub async fn live_others(store: &Store, id: &str) -> Result<HashSet<String>, String> {
    let now = now_ms();
    let host = this_host();
    let rows = store.processes(now - FORGET_MS).await.map_err(|e| e.to_string())?;
    Ok(rows
        .into_iter()
        .filter(|p| p.id != id && now - p.heartbeat_at < SILENCE_MS)
        .filter(|p| p.host != host || std::path::Path::new(&format!("/proc/{}", p.pid)).exists())
        .map(|p| p.id)
        .collect())
}
