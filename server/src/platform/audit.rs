//! The audit log: every change made through the platform, with who made it. The provider sees
//! all of it; a tenant admin, its own tenant's.

use super::{Result, Service};
use crate::store::audit::Change;
use app::model::*;
use app::platform::{Audit, AuditQuery, PlatformError};
use async_trait::async_trait;

impl Service {
    /// Records a change by `caller` to something of tenant `org` (`None`: the platform). A
    /// failure to record is logged, never the change's failure.
    pub(super) async fn audit(&self, caller: &Caller, org: Option<&str>, action: &str, target: &str, detail: impl Into<String>) {
        let actor = format!("{}/{}", caller.org, caller.username);
        let change = Change { actor: &actor, org, action, target, detail: detail.into() };
        if let Err(e) = self.store.record_change(change).await {
            tracing::warn!(error = %e, action, target, "cannot write the audit log");
        }
    }
}

#[async_trait]
impl Audit for Service {
    async fn list_audit(&self, caller: &Caller, query: AuditQuery) -> Result<Vec<AuditEntry>> {
        let org = match caller.role {
            Role::Provider => query.org.clone(),
            Role::Admin => {
                if query.org.as_ref().is_some_and(|org| *org != caller.org) {
                    return Err(PlatformError::not_found(format!("no org {:?}", query.org.unwrap_or_default())));
                }
                Some(caller.org.clone())
            }
            Role::Developer => return Err(PlatformError::Forbidden("only admins may read the audit log".into())),
        };
        let limit = query.limit.unwrap_or(100);
        if !(1..=500).contains(&limit) {
            return Err(PlatformError::invalid("limit", format!("limit must be between 1 and 500 (got {limit})")));
        }
        Ok(self.store.list_changes(org.as_deref(), query.before, limit).await?)
    }
}
