//! Hands out containers for calls, per function:
//! - `warm` (the default): a released container stays up for the idle time and takes the next
//!   call of the same version, so warm calls cost no Docker round trip;
//! - `per-call`: the seed's gateway flow, a container started for one call and then removed.
//! At most `max_instances` containers serve a function at once, one call each; a call beyond
//! that waits for a free one until its deadline. The pool knows every container it owns, so
//! the reconciler removes only strangers.

use crate::engine::Engine;
use crate::runner::{self, CallError, Instance, Sandbox};
use crate::store::Target;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;
use tokio::time::Instant;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PoolMode {
    Warm,
    PerCall,
}

impl PoolMode {
    pub fn parse(s: &str) -> Option<PoolMode> {
        match s {
            "warm" => Some(PoolMode::Warm),
            "per-call" => Some(PoolMode::PerCall),
            _ => None,
        }
    }
}

pub struct Lease {
    pub instance: Instance,
    /// True when the container was started for this call.
    pub cold: bool,
    function_id: i64,
    version: i64,
    mode: PoolMode,
}

struct Idle {
    instance: Instance,
    since: Instant,
}

/// The containers of one function.
#[derive(Default)]
struct Slot {
    /// Tenant and function name, for metrics.
    name: (String, String),
    /// The newest version seen; idle containers of older versions are retired.
    version: i64,
    idle: Vec<Idle>,
    /// Containers serving a call or starting for one.
    busy: usize,
    /// Calls waiting for a container.
    waiting: usize,
    freed: Arc<Notify>,
}

pub struct Pool {
    engine: Engine,
    sandbox: Sandbox,
    idle_timeout: Duration,
    /// Calls that may wait per instance of a function before more are turned away.
    queue_per_instance: usize,
    owned: Arc<Mutex<HashSet<String>>>,
    slots: Mutex<HashMap<i64, Slot>>,
}

enum Decision {
    Reuse(Instance),
    Start,
    Wait(Arc<Notify>),
    Full,
}

impl Pool {
    pub fn new(engine: Engine, sandbox: Sandbox, idle_timeout: Duration, queue_per_instance: usize) -> Pool {
        Pool { engine, sandbox, idle_timeout, queue_per_instance, owned: Arc::default(), slots: Mutex::default() }
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// A container for one call of the target's version, waiting for a free one until
    /// `deadline` when the function is at its `max_instances`.
    pub async fn acquire(&self, target: &Target, deadline: Instant) -> Result<Lease, CallError> {
        let f = &target.function;
        let mode = PoolMode::parse(&f.pool_mode).unwrap_or(PoolMode::Warm);
        let version = target.version.version;
        let max = f.max_instances.max(1) as usize;
        loop {
            let (decision, retired) = {
                let mut slots = self.slots.lock().unwrap();
                let slot = slots.entry(f.id).or_insert_with(|| Slot { name: (f.org.clone(), f.name.clone()), ..Slot::default() });
                let retired = if version > slot.version {
                    slot.version = version;
                    std::mem::take(&mut slot.idle)
                } else {
                    Vec::new()
                };
                let decision = if version < slot.version {
                    // A call that resolved the old version just before the switch.
                    slot.busy += 1;
                    Decision::Start
                } else if let Some(idle) = slot.idle.pop() {
                    slot.busy += 1;
                    Decision::Reuse(idle.instance)
                } else if slot.busy < max {
                    slot.busy += 1;
                    Decision::Start
                } else if slot.waiting < max * self.queue_per_instance {
                    slot.waiting += 1;
                    Decision::Wait(slot.freed.clone())
                } else {
                    Decision::Full
                };
                (decision, retired)
            };
            for idle in retired {
                self.discard(idle.instance);
            }
            let lease = |instance, cold| Lease { instance, cold, function_id: f.id, version, mode };
            match decision {
                Decision::Reuse(instance) => return Ok(lease(instance, false)),
                Decision::Start => {
                    return match runner::start(&self.engine, &self.sandbox, target).await {
                        Ok(instance) => {
                            self.owned.lock().unwrap().insert(instance.id.clone());
                            Ok(lease(instance, true))
                        }
                        Err(e) => {
                            self.free_slot(f.id);
                            Err(e)
                        }
                    };
                }
                Decision::Full => return Err(CallError::AtCapacity(max)),
                Decision::Wait(freed) => {
                    let woken = tokio::time::timeout_at(deadline, freed.notified()).await.is_ok();
                    if let Some(slot) = self.slots.lock().unwrap().get_mut(&f.id) {
                        slot.waiting -= 1;
                    }
                    if !woken {
                        return Err(CallError::AtCapacity(max));
                    }
                }
            }
        }
    }

    /// Gives a container back after its call. `healthy` is false when the call broke it
    /// (deadline, crash, out of memory): such a container is never handed out again.
    pub fn release(&self, lease: Lease, healthy: bool) {
        let keep = {
            let mut slots = self.slots.lock().unwrap();
            // No slot: the function was deleted during the call.
            match slots.get_mut(&lease.function_id) {
                Some(slot) => {
                    slot.busy = slot.busy.saturating_sub(1);
                    slot.freed.notify_one();
                    if healthy && lease.mode == PoolMode::Warm && lease.version == slot.version {
                        slot.idle.push(Idle { instance: lease.instance, since: Instant::now() });
                        None
                    } else {
                        Some(lease.instance)
                    }
                }
                None => Some(lease.instance),
            }
        };
        if let Some(instance) = keep {
            self.discard(instance);
        }
    }

    /// Replaces a warm container found dead: frees its place without keeping it.
    pub fn replace(&self, lease: Lease) {
        self.release(lease, false);
    }

    fn free_slot(&self, function_id: i64) {
        let mut slots = self.slots.lock().unwrap();
        if let Some(slot) = slots.get_mut(&function_id) {
            slot.busy = slot.busy.saturating_sub(1);
            slot.freed.notify_one();
        }
    }

    /// Removes a container in the background; the caller does not wait for Docker.
    pub fn discard(&self, instance: Instance) {
        let engine = self.engine.clone();
        let owned = self.owned.clone();
        tokio::spawn(async move {
            runner::destroy(&engine, &instance).await;
            owned.lock().unwrap().remove(&instance.id);
        });
    }

    /// Drops every idle container of a function (it is being deleted).
    pub fn forget(&self, function_id: i64) {
        let idle = self.slots.lock().unwrap().remove(&function_id).map(|s| s.idle).unwrap_or_default();
        for i in idle {
            self.discard(i.instance);
        }
    }

    /// Removes containers idle for longer than the idle time (scale to zero).
    pub fn reap_idle(&self) -> usize {
        let expired: Vec<Instance> = {
            let mut slots = self.slots.lock().unwrap();
            let mut expired = Vec::new();
            for slot in slots.values_mut() {
                let (old, fresh): (Vec<Idle>, Vec<Idle>) =
                    std::mem::take(&mut slot.idle).into_iter().partition(|i| i.since.elapsed() >= self.idle_timeout);
                slot.idle = fresh;
                expired.extend(old.into_iter().map(|i| i.instance));
            }
            expired
        };
        let count = expired.len();
        for instance in expired {
            self.discard(instance);
        }
        count
    }

    /// Runs the idle reaper until the process ends.
    pub fn spawn_reaper(self: &Arc<Self>) {
        let pool = Arc::downgrade(self);
        let every = (self.idle_timeout / 4).clamp(Duration::from_millis(200), Duration::from_secs(5));
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                let Some(pool) = pool.upgrade() else { return };
                pool.reap_idle();
            }
        });
    }

    /// Removes every idle container now (at shutdown).
    pub async fn drain(&self) {
        let idle: Vec<Instance> = {
            let mut slots = self.slots.lock().unwrap();
            slots.values_mut().flat_map(|s| std::mem::take(&mut s.idle)).map(|i| i.instance).collect()
        };
        for instance in idle {
            runner::destroy(&self.engine, &instance).await;
            self.owned.lock().unwrap().remove(&instance.id);
        }
    }

    /// Containers and waiting calls of every function, for metrics.
    pub fn gauges(&self) -> Vec<crate::metrics::PoolGauge> {
        let slots = self.slots.lock().unwrap();
        slots
            .values()
            .map(|s| crate::metrics::PoolGauge {
                tenant: s.name.0.clone(),
                function: s.name.1.clone(),
                busy: s.busy,
                idle: s.idle.len(),
                waiting: s.waiting,
            })
            .collect()
    }

    /// Whether a container id belongs to this pool (serving, starting or idle).
    pub fn owns(&self, container_id: &str) -> bool {
        self.owned.lock().unwrap().contains(container_id)
    }

}
