//! A tenant's users and everyone's API tokens.

use super::{Result, Service};
use crate::auth;
use crate::store::{StoreError, Unique};
use app::model::*;
use app::platform::{PlatformError, UserInput, Users};
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
            .map(|u| UserView {
                role: u.role,
                username: u.username,
                org: u.org,
                created_at: u.created_at,
            })
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
            Ok(_) => Ok(UserView { username: input.username, org: tenant.slug, role, created_at: crate::store::now_ms() }),
            Err(StoreError::Duplicate(Unique::Username)) => {
                Err(PlatformError::taken("username", format!("org {:?} already has a user named {:?}", tenant.slug, input.username)))
            }
            Err(e) => Err(e.into()),
        }
    }

    async fn list_tokens(&self, caller: &Caller) -> Result<Vec<TokenView>> {
        let rows = self.store.list_tokens(caller.user_id).await?;
        Ok(rows
            .into_iter()
            .map(|t| TokenView { id: t.id, name: t.name, created_at: t.created_at, last_used_at: t.last_used_at })
            .collect())
    }

    async fn create_token(&self, caller: &Caller, name: &str) -> Result<(TokenView, String)> {
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 100 {
            return Err(PlatformError::invalid("name", "give the token a name of 1–100 characters, e.g. \"ci pipeline\""));
        }
        let token = auth::new_token();
        let id = self.store.insert_token(caller.user_id, name, &auth::token_hash(&token)).await?;
        Ok((TokenView { id, name: name.to_string(), created_at: crate::store::now_ms(), last_used_at: None }, token))
    }

    async fn revoke_token(&self, caller: &Caller, id: i64) -> Result<()> {
        if self.store.delete_token(caller.user_id, id).await? {
            self.calls.directory().callers_changed();
            Ok(())
        } else {
            Err(PlatformError::not_found(format!("no token {id}")))
        }
    }
}
