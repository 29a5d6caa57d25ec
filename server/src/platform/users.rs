//! A tenant's users and everyone's API tokens.

use super::{Result, Service};
use crate::auth;
use crate::store::{StoreError, Unique};
use app::model::*;
use app::platform::{PlatformError, TokenInput, UserChange, UserInput, Users};
use crate::store::UserRow;
use async_trait::async_trait;

#[async_trait]
impl Users for Service {
    async fn list_users(&self, caller: &Caller) -> Result<Vec<UserView>> {
        let scope = match caller.role {
            Role::Provider => None,
            Role::Admin => caller.tenant_id,
            Role::Developer => return Err(PlatformError::Forbidden("only admins may list users".into())),
        };
        let rows = self.store.list_users(scope).await?;
        Ok(rows
            .into_iter()
            .map(user_view)
            .collect())
    }

    async fn create_user(&self, caller: &Caller, org: &str, input: UserInput) -> Result<UserView> {
        let tenant = self.tenant_for(caller, org).await?;
        if !(caller.is_provider() || caller.is_tenant_admin()) {
            return Err(PlatformError::Forbidden("only the provider or a tenant admin may add users".into()));
        }
        let mut errors = Vec::new();
        let username = Username::parse(&input.username).map_err(|e| errors.push(FieldError::new("username", e))).ok();
        if let Err(e) = validate_password(&input.password) {
            errors.push(FieldError::new("password", e));
        }
        let role = match Role::parse(&input.role) {
            Some(role @ (Role::Admin | Role::Developer)) => Some(role),
            _ => {
                errors.push(FieldError::new("role", format!("role must be \"admin\" or \"developer\" (got {:?})", input.role)));
                None
            }
        };
        if !errors.is_empty() {
            return Err(PlatformError::Invalid(errors));
        }
        let (Some(role), Some(username)) = (role, username) else { unreachable!("errors were returned above") };
        match self.store.insert_user(Some(tenant.id), &username, &auth::hash_password_async(&input.password).await, role).await {
            Ok(_) => {
                self.audit(caller, Some(&tenant.slug), "user.create", username.as_str(), format!("role {role}")).await;
                Ok(UserView { username: input.username, org: tenant.slug, role, created_at: crate::store::now_ms(), disabled: false })
            }
            Err(StoreError::Duplicate(Unique::Username)) => {
                Err(PlatformError::taken("username", format!("org {:?} already has a user named {:?}", tenant.slug, input.username)))
            }
            Err(e) => Err(e.into()),
        }
    }

    async fn update_user(&self, caller: &Caller, org: &str, username: &str, change: UserChange) -> Result<UserView> {
        let user = self.managed_user(caller, org, username).await?;
        let mut errors = Vec::new();
        let role = match change.role.as_deref().map(|r| (r, Role::parse(r))) {
            None => None,
            Some((_, Some(role @ (Role::Admin | Role::Developer)))) => Some(role),
            Some((given, _)) => {
                errors.push(FieldError::new("role", format!("role must be \"admin\" or \"developer\" (got {given:?})")));
                None
            }
        };
        if let Some(Err(e)) = change.password.as_deref().map(validate_password) {
            errors.push(FieldError::new("password", e));
        }
        if !errors.is_empty() {
            return Err(PlatformError::Invalid(errors));
        }
        let own = user.id == caller.user_id;
        if own && (role.is_some_and(|r| r != user.role) || change.disabled == Some(true)) {
            return Err(PlatformError::Conflict("you cannot change your own role or disable yourself: ask another admin".into()));
        }
        let mut done = Vec::new();
        if let Some(role) = role.filter(|r| *r != user.role) {
            self.store.set_user_role(user.id, role).await?;
            done.push(format!("role {} → {role}", user.role));
        }
        if let Some(disabled) = change.disabled.filter(|d| *d != user.disabled_at.is_some()) {
            self.store.set_user_disabled(user.id, disabled).await?;
            done.push(if disabled { "disabled" } else { "enabled" }.to_string());
        }
        if let Some(password) = &change.password {
            self.store.set_user_password(user.id, &auth::hash_password_async(password).await).await?;
            done.push("password reset".to_string());
        }
        if !done.is_empty() {
            // Its tokens' cached callers carry the old role or state.
            self.calls.directory().callers_changed();
            self.audit(caller, Some(org), "user.update", username, done.join(", ")).await;
        }
        let user = self.store.user_by_id(user.id).await?.ok_or_else(|| PlatformError::not_found(format!("no user {username:?} in org {org:?}")))?;
        Ok(user_view(user))
    }

    async fn delete_user(&self, caller: &Caller, org: &str, username: &str) -> Result<()> {
        let user = self.managed_user(caller, org, username).await?;
        if user.id == caller.user_id {
            return Err(PlatformError::Conflict("you cannot delete yourself: ask another admin".into()));
        }
        self.store.delete_user(user.id).await?;
        self.calls.directory().callers_changed();
        self.audit(caller, Some(org), "user.delete", username, format!("role {}", user.role)).await;
        Ok(())
    }

    async fn list_tokens(&self, caller: &Caller) -> Result<Vec<TokenView>> {
        let rows = self.store.list_tokens(caller.user_id).await?;
        Ok(rows
            .into_iter()
            .map(|t| TokenView {
                id: t.id,
                name: t.name,
                created_at: t.created_at,
                last_used_at: t.last_used_at,
                expires_at: t.expires_at,
                scope: t.scope,
            })
            .collect())
    }

    async fn create_token(&self, caller: &Caller, input: TokenInput) -> Result<(TokenView, String)> {
        let name = input.name.trim();
        let mut errors = Vec::new();
        if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
            errors.push(FieldError::new("name", "give the token a name of 1–100 characters on one line, e.g. \"ci pipeline\""));
        }
        let max_days = self.config.token_max_days;
        let days = input.expires_in_days.unwrap_or(self.config.token_days.min(max_days));
        if !(1..=max_days).contains(&days) {
            errors.push(FieldError::new("expires_in_days", format!("expires_in_days must be between 1 and {max_days} (the provider's maximum)")));
        }
        let scope = match input.scope.as_deref().map(|s| (s, TokenScope::parse(s.trim()))) {
            None => Some(TokenScope::Full),
            Some((_, Some(scope))) => Some(scope),
            Some((given, None)) => {
                errors.push(FieldError::new("scope", format!("scope must be \"read\", \"invoke\" or \"full\" (got {given:?})")));
                None
            }
        };
        let Some(scope) = scope.filter(|_| errors.is_empty()) else { return Err(PlatformError::Invalid(errors)) };
        // A token cannot do more than the one that makes it.
        if !caller.scope.may_change() {
            return Err(PlatformError::Forbidden(format!("this token's scope is {:?}: only a full token or a signed-in user may make tokens", caller.scope.as_str())));
        }
        let token = auth::new_token();
        let expires_at = crate::store::now_ms() + days * 86_400_000;
        let id = self.store.insert_token(caller.user_id, name, &auth::token_hash(&token), Some(expires_at), scope).await?;
        self.audit(caller, caller.tenant_id.map(|_| caller.org.as_str()), "token.create", name, format!("scope {scope}, expires in {days} day(s)")).await;
        let view = TokenView { id, name: name.to_string(), created_at: crate::store::now_ms(), last_used_at: None, expires_at: Some(expires_at), scope };
        Ok((view, token))
    }

    async fn revoke_token(&self, caller: &Caller, id: i64) -> Result<()> {
        if self.store.delete_token(caller.user_id, id).await? {
            self.calls.directory().callers_changed();
            self.audit(caller, caller.tenant_id.map(|_| caller.org.as_str()), "token.revoke", &id.to_string(), "").await;
            Ok(())
        } else {
            Err(PlatformError::not_found(format!("no token {id}")))
        }
    }
}

fn user_view(u: UserRow) -> UserView {
    UserView { disabled: u.disabled_at.is_some(), role: u.role, username: u.username, org: u.org, created_at: u.created_at }
}

impl Service {
    /// A user of tenant `org` that the caller may manage: the provider any, a tenant admin its
    /// own tenant's. Anything else reads as "not found".
    async fn managed_user(&self, caller: &Caller, org: &str, username: &str) -> Result<UserRow> {
        let tenant = self.tenant_for(caller, org).await?;
        if !(caller.is_provider() || caller.is_tenant_admin()) {
            return Err(PlatformError::Forbidden("only the provider or a tenant admin may change users".into()));
        }
        self.store
            .user_by_login(Some(tenant.id), username)
            .await?
            .ok_or_else(|| PlatformError::not_found(format!("no user {username:?} in org {org:?}")))
    }
}
