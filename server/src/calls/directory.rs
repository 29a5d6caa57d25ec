//! What the call path looks up on every call — a route's function and serving version, a
//! token's user — kept for a second (see `cache.rs`), and the signal that functions changed.

use crate::cache::TtlCache;
use crate::store::{FunctionRow, Store, StoreError, Target};
use app::model::Caller;
use std::sync::Arc;

/// A route's function: `Ok` with its serving version, `Err` when it serves none yet.
pub type Found = Result<Arc<Target>, FunctionRow>;

/// A token's user as the cache keeps it.
#[derive(Clone)]
struct Grant {
    caller: Caller,
    expires_at: Option<i64>,
    disabled: bool,
}

/// What a bearer token stands for.
#[derive(Clone, Debug)]
pub enum TokenCheck {
    Valid(Caller),
    Expired { at: i64 },
    UserDisabled,
    Unknown,
}

impl TokenCheck {
    /// The caller, or what a 401 answer says.
    pub fn caller(self) -> Result<Caller, String> {
        match self {
            TokenCheck::Valid(caller) => Ok(caller),
            TokenCheck::Expired { at } => Err(format!(
                "token expired at {}: make a new one (POST /api/v1/tokens or the portal's API tokens page)",
                app::components::format_time(at)
            )),
            TokenCheck::UserDisabled => Err("the user of this token is disabled: ask an admin of its org".into()),
            TokenCheck::Unknown => Err("invalid or revoked token".into()),
        }
    }
}

pub struct Directory {
    store: Store,
    /// Shared, not copied per call: a version carries its code and build log.
    routes: TtlCache<(String, String), Option<Found>>,
    callers: TtlCache<String, Option<Grant>>,
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

    /// The user behind a bearer token, with the token's scope, or why the token is refused.
    pub async fn caller_by_token(&self, token: &str) -> Result<TokenCheck, StoreError> {
        let hash = crate::auth::token_hash(token);
        let grant = match self.callers.get(&hash) {
            Some(grant) => grant,
            None => {
                let grant = self.store.token_grant(&hash).await?.map(|g| Grant {
                    disabled: g.user.disabled_at.is_some(),
                    caller: Caller { scope: g.scope, ..Caller::from(g.user) },
                    expires_at: g.expires_at,
                });
                self.callers.put(hash, grant.clone());
                grant
            }
        };
        // Expiry is checked on every use, cached or not.
        Ok(match grant {
            None => TokenCheck::Unknown,
            Some(g) if g.disabled => TokenCheck::UserDisabled,
            Some(Grant { expires_at: Some(at), .. }) if at <= crate::store::now_ms() => TokenCheck::Expired { at },
            Some(g) => TokenCheck::Valid(g.caller),
        })
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

    /// Forgets every token's user, after a token was revoked or a user changed.
    pub fn callers_changed(&self) {
        self.callers.clear();
    }

    /// Tells of every later change to functions.
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.changes.subscribe()
    }
}
