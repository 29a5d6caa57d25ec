//! Hands out containers for calls. Today's mode is `per-call` (the seed's gateway flow: start,
//! call, stop); a warm mode keeps released instances for the next call of the same version.
//! The pool knows every container it owns, so the reconciler can remove only strangers.

use crate::engine::Engine;
use crate::runner::{self, CallError, Instance, Sandbox};
use crate::store::Target;
use std::collections::HashSet;
use std::sync::{Arc, Mutex};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PoolMode {
    PerCall,
}

pub struct Lease {
    pub instance: Instance,
    /// True when the container was started for this call.
    pub cold: bool,
}

pub struct Pool {
    engine: Engine,
    sandbox: Sandbox,
    mode: PoolMode,
    owned: Arc<Mutex<HashSet<String>>>,
}

impl Pool {
    pub fn new(engine: Engine, sandbox: Sandbox) -> Pool {
        Pool { engine, sandbox, mode: PoolMode::PerCall, owned: Arc::default() }
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    pub fn mode(&self) -> PoolMode {
        self.mode
    }

    pub async fn acquire(&self, target: &Target) -> Result<Lease, CallError> {
        let instance = runner::start(&self.engine, &self.sandbox, target).await?;
        self.owned.lock().unwrap().insert(instance.id.clone());
        Ok(Lease { instance, cold: true })
    }

    /// Gives a container back after its call. `healthy` is false when the call broke it.
    pub fn release(&self, lease: Lease, _healthy: bool) {
        match self.mode {
            PoolMode::PerCall => self.discard(lease.instance),
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

    /// Whether a container id belongs to a call in progress.
    pub fn owns(&self, container_id: &str) -> bool {
        self.owned.lock().unwrap().contains(container_id)
    }

    pub fn owned_count(&self) -> usize {
        self.owned.lock().unwrap().len()
    }
}
