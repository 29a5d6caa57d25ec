//! The platform's rules, behind the `Platform` port that the portal and the REST API share,
//! one file per part of it: `access` (who the caller is, what it may see), `functions` (the
//! lifecycle and its checks), `invocations` (Test Function, call records), `nodes` (the cluster's workers), `tenants`,
//! `users`, `audit` (who changed what).

use crate::build::builder::Builder;
use crate::calls::dispatch::Dispatcher;
use crate::config::Config;
use crate::ops::links::Links;
use crate::ops::reconciler::Reconciler;
use crate::secrets::SecretKey;
use crate::store::{FunctionRow, Store, StoreError};
use app::model::*;
use app::platform::PlatformError;
use std::sync::Arc;

mod access;
pub mod archive;
mod audit;
mod configuration;
mod functions;
mod invocations;
mod login_limits;
mod monitor;
mod nodes;
mod tenants;
mod users;

pub use invocations::CallFeed;

/// What the platform shows of vCD: each function's state there. The vCD integration provides
/// it when it runs (`vcd::Vcd`); without one, every function is served locally.
pub trait VcdStatus: Send + Sync {
    fn registration(&self, f: &FunctionRow) -> Registration;
}

/// No vCD is configured.
pub struct LocalOnly;

impl VcdStatus for LocalOnly {
    fn registration(&self, _: &FunctionRow) -> Registration {
        Registration::new("local", "served by the platform's own route; no vCD is configured (VCD_URL)")
    }
}

#[derive(Clone)]
pub struct Service {
    store: Store,
    config: Arc<Config>,
    builder: Builder,
    /// The call pipeline: Test Function calls go through it like every other call.
    calls: Dispatcher,
    links: Arc<Links>,
    vcd: Arc<dyn VcdStatus>,
    /// Seals functions' secrets before they are stored.
    secret_key: SecretKey,
    login_limits: Arc<login_limits::LoginLimits>,
}

type Result<T> = std::result::Result<T, PlatformError>;

impl From<StoreError> for PlatformError {
    fn from(e: StoreError) -> PlatformError {
        tracing::error!(error = %e, "database error");
        PlatformError::internal(e)
    }
}

impl Service {
    pub fn new(
        store: Store,
        config: Arc<Config>,
        builder: Builder,
        calls: Dispatcher,
        links: Arc<Links>,
        vcd: Arc<dyn VcdStatus>,
        secret_key: SecretKey,
    ) -> Service {
        let login_limits = Arc::new(login_limits::LoginLimits::new(config.login_attempts));
        Service { store, config, builder, calls, links, vcd, secret_key, login_limits }
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn config(&self) -> &Arc<Config> {
        &self.config
    }

    /// The call pipeline.
    pub fn calls(&self) -> &Dispatcher {
        &self.calls
    }

    /// What a reconciler pass works on (the one started at start-up is made from the same parts).
    pub fn reconciler(&self) -> Reconciler {
        Reconciler { store: self.store.clone(), builder: self.builder.clone(), gateway: self.calls.gateway().clone(), config: self.config.clone() }
    }
}
