//! Users of the provider and of tenants, and their API tokens.

use super::{now_ms, DbResult, Store, StoreError};
use app::model::{Role, TokenScope, Username};
use sqlx::FromRow;

#[derive(Clone, Debug, FromRow)]
pub struct UserRow {
    pub id: i64,
    pub tenant_id: Option<i64>,
    pub username: String,
    pub password_hash: String,
    #[sqlx(try_from = "String")]
    pub role: Role,
    pub created_at: i64,
    /// Tenant slug, or `provider`.
    pub org: String,
    pub disabled_at: Option<i64>,
}

impl From<UserRow> for app::model::Caller {
    fn from(user: UserRow) -> Self {
        app::model::Caller {
            user_id: user.id,
            role: user.role,
            tenant_id: user.tenant_id,
            org: user.org,
            username: user.username,
            scope: TokenScope::Full,
        }
    }
}

#[derive(Clone, Debug, FromRow)]
pub struct TokenRow {
    pub id: i64,
    pub user_id: i64,
    pub name: String,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
    pub expires_at: Option<i64>,
    #[sqlx(try_from = "String")]
    pub scope: TokenScope,
}

/// A token's user with what the token allows.
#[derive(Clone, Debug)]
pub struct TokenGrant {
    pub user: UserRow,
    pub expires_at: Option<i64>,
    pub scope: TokenScope,
}

pub(super) const USER_COLUMNS: &str = "u.id, u.tenant_id, u.username, u.password_hash, u.role, u.created_at, \
     COALESCE(t.slug, 'provider') AS org, u.disabled_at";

const TOKEN_COLUMNS: &str = "id, user_id, name, created_at, last_used_at, expires_at, scope";

impl Store {
    pub async fn insert_user(&self, tenant_id: Option<i64>, username: &Username, password_hash: &str, role: Role) -> DbResult<i64> {
        sqlx::query_scalar(
            "INSERT INTO users (tenant_id, username, password_hash, role, created_at) VALUES ($1, $2, $3, $4, $5) RETURNING id",
        )
        .bind(tenant_id)
        .bind(username.as_str())
        .bind(password_hash)
        .bind(role.as_str())
        .bind(now_ms())
        .fetch_one(&self.pool)
        .await.map_err(StoreError::from)
    }

    pub async fn user_by_login(&self, tenant_id: Option<i64>, username: &str) -> DbResult<Option<UserRow>> {
        sqlx::query_as(&format!(
            "SELECT {USER_COLUMNS} FROM users u LEFT JOIN tenants t ON t.id = u.tenant_id \
             WHERE COALESCE(u.tenant_id, 0) = $1 AND u.username = $2"
        ))
        .bind(tenant_id.unwrap_or(0))
        .bind(username)
        .fetch_optional(&self.pool)
        .await.map_err(StoreError::from)
    }

    pub async fn user_by_id(&self, id: i64) -> DbResult<Option<UserRow>> {
        sqlx::query_as(&format!(
            "SELECT {USER_COLUMNS} FROM users u LEFT JOIN tenants t ON t.id = u.tenant_id WHERE u.id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await.map_err(StoreError::from)
    }

    /// Users of one tenant, or every user when `tenant_id` is `None`.
    pub async fn list_users(&self, tenant_id: Option<i64>) -> DbResult<Vec<UserRow>> {
        let sql = format!(
            "SELECT {USER_COLUMNS} FROM users u LEFT JOIN tenants t ON t.id = u.tenant_id \
             WHERE ($1 = 0 OR u.tenant_id = $1) ORDER BY org, u.username"
        );
        sqlx::query_as(&sql).bind(tenant_id.unwrap_or(0)).fetch_all(&self.pool).await.map_err(StoreError::from)
    }

    /// Changes a user's role.
    pub async fn set_user_role(&self, id: i64, role: Role) -> DbResult<()> {
        sqlx::query("UPDATE users SET role = $1 WHERE id = $2").bind(role.as_str()).bind(id).execute(&self.pool).await?;
        Ok(())
    }

    /// Disables a user (now) or enables it again.
    pub async fn set_user_disabled(&self, id: i64, disabled: bool) -> DbResult<()> {
        sqlx::query("UPDATE users SET disabled_at = $1 WHERE id = $2")
            .bind(disabled.then(now_ms))
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn set_user_password(&self, id: i64, password_hash: &str) -> DbResult<()> {
        sqlx::query("UPDATE users SET password_hash = $1 WHERE id = $2").bind(password_hash).bind(id).execute(&self.pool).await?;
        Ok(())
    }

    /// Deletes a user; its tokens go with it.
    pub async fn delete_user(&self, id: i64) -> DbResult<()> {
        sqlx::query("DELETE FROM users WHERE id = $1").bind(id).execute(&self.pool).await?;
        Ok(())
    }

    pub async fn insert_token(&self, user_id: i64, name: &str, token_hash: &str, expires_at: Option<i64>, scope: TokenScope) -> DbResult<i64> {
        sqlx::query_scalar(
            "INSERT INTO api_tokens (user_id, name, token_hash, created_at, expires_at, scope) \
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
        )
        .bind(user_id)
        .bind(name)
        .bind(token_hash)
        .bind(now_ms())
        .bind(expires_at)
        .bind(scope.as_str())
        .fetch_one(&self.pool)
        .await.map_err(StoreError::from)
    }

    /// The user owning a token, with what the token allows. Marks the token used, at most once
    /// a minute: every call presents a token, and a write per call would cost the call path
    /// more than the call.
    pub async fn token_grant(&self, token_hash: &str) -> DbResult<Option<TokenGrant>> {
        let found: Option<(i64, Option<i64>, Option<i64>, String)> =
            sqlx::query_as("SELECT user_id, last_used_at, expires_at, scope FROM api_tokens WHERE token_hash = $1")
                .bind(token_hash)
                .fetch_optional(&self.pool)
                .await?;
        let Some((user_id, last_used_at, expires_at, scope)) = found else { return Ok(None) };
        // A scope this version does not know is taken as the narrowest.
        let scope = TokenScope::parse(&scope).unwrap_or(TokenScope::Read);
        let now = now_ms();
        if last_used_at.is_none_or(|t| now - t > 60_000) {
            sqlx::query("UPDATE api_tokens SET last_used_at = $1 WHERE token_hash = $2")
                .bind(now)
                .bind(token_hash)
                .execute(&self.pool)
                .await?;
        }
        Ok(self.user_by_id(user_id).await?.map(|user| TokenGrant { user, expires_at, scope }))
    }

    pub async fn list_tokens(&self, user_id: i64) -> DbResult<Vec<TokenRow>> {
        sqlx::query_as(&format!("SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE user_id = $1 ORDER BY id DESC"))
        .bind(user_id)
        .fetch_all(&self.pool)
        .await.map_err(StoreError::from)
    }

    /// Deletes a token of this user; false when there is none.
    pub async fn delete_token(&self, user_id: i64, id: i64) -> DbResult<bool> {
        let done = sqlx::query("DELETE FROM api_tokens WHERE id = $1 AND user_id = $2")
            .bind(id)
            .bind(user_id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }
}
