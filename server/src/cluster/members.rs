//! The nodes as a front sees them: every node's row, read from the database twice a second,
//! with its state worked out from its heartbeat. A node the front could not reach is left out
//! for a few seconds (its heartbeat may still look fresh).

use crate::store::{now_ms, NodeRow, Store};
use crate::run::pool::WarmVersion;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

/// A node silent this long is down: no call is placed there. Heartbeats come every second,
/// and the view is read twice a second, so a lost node is left out within 3.5 s.
pub const DOWN_AFTER_MS: i64 = 3_000;
/// How long a node the front could not connect to is left out.
const SUSPECT_FOR: Duration = Duration::from_secs(5);
const REFRESH: Duration = Duration::from_millis(500);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodeState {
    Up,
    Draining,
    Down,
}

impl NodeState {
    pub fn of(row: &NodeRow, now_ms: i64) -> NodeState {
        if now_ms - row.heartbeat_at > DOWN_AFTER_MS {
            NodeState::Down
        } else if row.is_draining() {
            NodeState::Draining
        } else {
            NodeState::Up
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            NodeState::Up => "up",
            NodeState::Draining => "draining",
            NodeState::Down => "down",
        }
    }
}

/// A node's containers per version, as its last heartbeat listed them.
pub fn listed_containers(row: &NodeRow) -> Vec<WarmVersion> {
    serde_json::from_str(&row.beat.warm).unwrap_or_default()
}

/// A node calls may be placed on.
#[derive(Debug)]
pub struct Member {
    pub row: NodeRow,
    warm: HashMap<(i64, i64), usize>,
}

impl Member {
    fn of(row: NodeRow) -> Member {
        let warm = listed_containers(&row).into_iter().map(|w| ((w.function_id, w.version), w.containers)).collect();
        Member { row, warm }
    }

    /// Its containers of function `function_id`, any version, at its last heartbeat.
    pub fn containers_of(&self, function_id: i64) -> usize {
        self.warm.iter().filter(|((f, _), _)| *f == function_id).map(|(_, n)| n).sum()
    }

    /// Its containers of `version` of function `function_id` at its last heartbeat.
    pub fn warm(&self, function_id: i64, version: i64) -> usize {
        self.warm.get(&(function_id, version)).copied().unwrap_or(0)
    }
}

pub struct Members {
    /// Nodes up and not draining, as last read.
    up: RwLock<Arc<Vec<Arc<Member>>>>,
    /// Every node registered, whatever its state.
    known: std::sync::atomic::AtomicUsize,
    unreachable: Mutex<HashMap<String, Instant>>,
}

impl Members {
    /// Reads the nodes now and then twice a second.
    pub async fn start(store: Store) -> Arc<Members> {
        let members = Arc::new(Members { up: RwLock::default(), known: Default::default(), unreachable: Mutex::default() });
        members.refresh(&store).await;
        let view = members.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(REFRESH).await;
                view.refresh(&store).await;
            }
        });
        members
    }

    async fn refresh(&self, store: &Store) {
        match store.nodes().await {
            Ok(rows) => {
                self.known.store(rows.len(), std::sync::atomic::Ordering::Relaxed);
                let now = now_ms();
                let up = rows.into_iter().filter(|r| NodeState::of(r, now) == NodeState::Up).map(|r| Arc::new(Member::of(r))).collect();
                *self.up.write().unwrap() = Arc::new(up);
            }
            Err(e) => tracing::warn!(error = %e, "cannot read the nodes; placing calls by the last view"),
        }
    }

    /// The nodes a call may go to now.
    pub fn placeable(&self) -> Vec<Arc<Member>> {
        let up = self.up.read().unwrap().clone();
        let mut unreachable = self.unreachable.lock().unwrap();
        unreachable.retain(|_, since| since.elapsed() < SUSPECT_FOR);
        up.iter().filter(|m| !unreachable.contains_key(&m.row.name)).cloned().collect()
    }

    /// How many nodes are registered, in any state.
    pub fn known(&self) -> usize {
        self.known.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// A node the front could not connect to: no calls go there for a while.
    pub fn unreachable(&self, name: &str) {
        self.unreachable.lock().unwrap().insert(name.to_string(), Instant::now());
    }
}
