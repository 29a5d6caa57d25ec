//! Who the caller is and what of a tenant it may see: sign-in, tokens, the provider admin,
//! and the rule that another tenant's things are "not found".

use super::{Result, Service};
use crate::auth;
use crate::store::{FunctionRow, StoreError, TenantRow};
use app::model::*;
use app::platform::{Access, PlatformError};
use async_trait::async_trait;

pub(super) fn function_not_found(org: &str, name: &str) -> PlatformError {
    PlatformError::not_found(format!("no function {name:?} in org {org:?}"))
}

impl Service {
    /// Creates the provider admin on first start; returns the generated password, if any.
    pub async fn bootstrap_admin(&self) -> std::result::Result<Option<String>, StoreError> {
        if self.store.user_by_login(None, "admin").await?.is_some() {
            return Ok(None);
        }
        let (password, generated) = match &self.config.admin_password {
            Some(secret) => (secret.0.clone(), false),
            None => (auth::new_secret(12), true),
        };
        let admin = Username::parse("admin").expect("a valid username");
        self.store.insert_user(None, &admin, &auth::hash_password_async(&password).await, Role::Provider).await?;
        Ok(generated.then_some(password))
    }

    /// The caller behind a bearer token, or why the token is refused.
    pub async fn caller_by_token(&self, token: &str) -> Result<crate::calls::directory::TokenCheck> {
        Ok(self.calls.directory().caller_by_token(token).await?)
    }

    /// The tenant `org` as seen by the caller: another tenant's is "not found", like a
    /// tenant that does not exist, so names of other tenants never leak.
    pub(super) async fn tenant_for(&self, caller: &Caller, org: &str) -> Result<TenantRow> {
        let visible = caller.is_provider() || caller.org == org;
        let tenant = if visible { self.store.tenant_by_slug(org).await? } else { None };
        tenant.ok_or_else(|| PlatformError::not_found(format!("no org {org:?}")))
    }

    pub(super) async fn function_for(&self, caller: &Caller, org: &str, name: &str) -> Result<FunctionRow> {
        let tenant = self.tenant_for(caller, org).await.map_err(|_| function_not_found(org, name))?;
        self.store
            .function_by_name(tenant.id, name)
            .await
            ?
            .ok_or_else(|| function_not_found(org, name))
    }

    pub(super) fn require_provider(caller: &Caller) -> Result<()> {
        if caller.is_provider() {
            Ok(())
        } else {
            Err(PlatformError::Forbidden("only the provider admin may do this".into()))
        }
    }
}

#[async_trait]
impl Access for Service {
    async fn authenticate(&self, org: &str, username: &str, password: &str, from: Option<std::net::IpAddr>) -> Result<Caller> {
        if let Err(retry_after_secs) = self.login_limits.check(org, username, from) {
            return Err(PlatformError::RateLimited {
                message: format!("too many failed sign-ins: try again in {} minute(s)", retry_after_secs.div_ceil(60)),
                retry_after_secs,
            });
        }
        let rejected = || PlatformError::Unauthorized("wrong org, username or password".into());
        let tenant_id = if org == "provider" {
            None
        } else {
            match self.store.tenant_by_slug(org).await? {
                Some(t) => Some(t.id),
                None => {
                    auth::verify_password_async(password, None).await;
                    self.login_limits.failed(org, username, from);
                    return Err(rejected());
                }
            }
        };
        let user = self.store.user_by_login(tenant_id, username).await?;
        let valid = auth::verify_password_async(password, user.as_ref().map(|u| u.password_hash.as_str())).await;
        match user {
            // Said only to whoever knows the password.
            Some(user) if valid && user.disabled_at.is_some() => {
                Err(PlatformError::Forbidden("this account is disabled: ask an admin of your org to enable it".into()))
            }
            Some(user) if valid => {
                self.login_limits.succeeded(org, username);
                Ok(Caller::from(user))
            }
            _ => {
                self.login_limits.failed(org, username, from);
                Err(rejected())
            }
        }
    }

    async fn caller_by_user_id(&self, user_id: i64) -> Result<Option<Caller>> {
        // A disabled user's session ends with its next request.
        Ok(self.store.user_by_id(user_id).await?.filter(|u| u.disabled_at.is_none()).map(Caller::from))
    }

    async fn limits(&self, caller: &Caller, org: &str) -> Result<Limits> {
        let tenant = self.tenant_for(caller, org).await?;
        Ok(self.limits_of(&tenant))
    }
}
