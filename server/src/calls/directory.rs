//! What the call path looks up on every call — a route's function and serving version, a
//! token's user — kept for a second (see `cache.rs`), and the signal that functions changed.

use crate::cache::TtlCache;
use crate::store::{FunctionRow, Store, StoreError, Target};
use app::model::Caller;
use std::sync::Arc;

/// A route's function: `Ok` with its serving version, `Err` when it serves none yet.
pub type Found = Result<Arc<Target>, FunctionRow>;

pub struct Directory {
    store: Store,
    /// Shared, not copied per call: a version carries its code and build log.
    routes: TtlCache<(String, String), Option<Found>>,
    callers: TtlCache<String, Option<Caller>>,
    /// Counts changes to functions, for whoever follows them (vCD filters, event bindings,
    /// async queues).
    changes: tokio::sync::watch::Sender<u64>,
}

impl Directory {
    pub fn new(store: Store) -> Directory {
        let ttl = std::time::Duration::from_secs(1);
        Directory { store, routes: TtlCache::new(ttl), callers: TtlCache::new(ttl), changes: tokio::sync::watch::Sender::new(0) }
    }

    /// The function behind a route with its serving version (see `Store::routable`).
    pub async fn routable(&self, org: &str, name: &str) -> Result<Option<Found>, StoreError> {
        let key = (org.to_string(), name.to_string());
        if let Some(found) = self.routes.get(&key) {
            return Ok(found);
        }
        let found = self.store.routable(org, name).await?.map(|found| found.map(Arc::new));
        self.routes.put(key, found.clone());
        Ok(found)
    }

    /// The user behind a bearer token.
    pub async fn caller_by_token(&self, token: &str) -> Result<Option<Caller>, StoreError> {
        let hash = crate::auth::token_hash(token);
        if let Some(caller) = self.callers.get(&hash) {
            return Ok(caller);
        }
        let caller = self.store.user_by_token(&hash).await?.map(Caller::from);
        self.callers.put(hash, caller.clone());
        Ok(caller)
    }

    /// Forgets every route, after any change to a function (new version, delete, settings).
    pub fn routes_changed(&self) {
        self.routes.clear();
        self.changes.send_modify(|n| *n += 1);
    }

    /// Follows changes other processes make (a version a node built, a function another front
    /// removed) by looking at the functions every second, and tells of them as of our own.
    pub fn spawn_follower(self: &Arc<Self>) {
        let directory = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut seen = None;
            loop {
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                let Some(directory) = directory.upgrade() else { return };
                match directory.store.functions_fingerprint().await {
                    Ok(now) if seen.is_some_and(|seen| seen != now) => {
                        seen = Some(now);
                        directory.routes_changed();
                    }
                    Ok(now) => seen = Some(now),
                    Err(e) => tracing::debug!(error = %e, "cannot look at the functions"),
                }
            }
        });
    }

    /// Forgets every token's user, after a token was revoked.
    pub fn callers_changed(&self) {
        self.callers.clear();
    }

    /// Tells of every later change to functions.
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.changes.subscribe()
    }
}
