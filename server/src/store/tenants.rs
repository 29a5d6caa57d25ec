//! Tenants: a provider's customers and their limits.

use super::{now_ms, DbResult, Store, StoreError};
use sqlx::FromRow;

#[derive(Clone, Debug, FromRow)]
pub struct TenantRow {
    pub id: i64,
    pub slug: String,
    pub display_name: String,
    pub max_functions: i64,
    pub max_memory_mb: i64,
    pub max_timeout_ms: i64,
    pub max_instances: i64,
    pub vcd_org_id: Option<String>,
    /// The allowlist of outbound destinations, a JSON array (empty: no network).
    pub egress: String,
    #[sqlx(try_from = "String")]
    pub sandbox: app::model::Sandbox,
}

impl TenantRow {
    /// The allowlist's entries as written.
    pub fn egress_entries(&self) -> Vec<String> {
        serde_json::from_str(&self.egress).unwrap_or_default()
    }
}

const COLUMNS: &str = "id, slug, display_name, max_functions, max_memory_mb, max_timeout_ms, max_instances, vcd_org_id, egress, sandbox";

impl Store {
    pub async fn insert_tenant(&self, t: &TenantRow) -> DbResult<i64> {
        sqlx::query_scalar(
            "INSERT INTO tenants (slug, display_name, max_functions, max_memory_mb, max_timeout_ms, vcd_org_id, created_at, max_instances, egress, sandbox) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id",
        )
        .bind(&t.slug)
        .bind(&t.display_name)
        .bind(t.max_functions)
        .bind(t.max_memory_mb)
        .bind(t.max_timeout_ms)
        .bind(&t.vcd_org_id)
        .bind(now_ms())
        .bind(t.max_instances)
        .bind(&t.egress)
        .bind(t.sandbox.as_str())
        .fetch_one(&self.pool)
        .await.map_err(StoreError::from)
    }

    pub async fn update_tenant(&self, t: &TenantRow) -> DbResult<()> {
        sqlx::query(
            "UPDATE tenants SET display_name = $1, max_functions = $2, max_memory_mb = $3, max_timeout_ms = $4, \
             vcd_org_id = $5, max_instances = $6, egress = $7, sandbox = $8 WHERE id = $9",
        )
        .bind(&t.display_name)
        .bind(t.max_functions)
        .bind(t.max_memory_mb)
        .bind(t.max_timeout_ms)
        .bind(&t.vcd_org_id)
        .bind(t.max_instances)
        .bind(&t.egress)
        .bind(t.sandbox.as_str())
        .bind(t.id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn tenant_by_slug(&self, slug: &str) -> DbResult<Option<TenantRow>> {
        sqlx::query_as(
            &format!("SELECT {COLUMNS} FROM tenants WHERE slug = $1"),
        )
        .bind(slug)
        .fetch_optional(&self.pool)
        .await.map_err(StoreError::from)
    }

    /// The tenant that a vCD organisation (`urn:vcloud:org:<uuid>`, any case) belongs to.
    pub async fn tenant_by_vcd_org(&self, org_uuid: &str) -> DbResult<Option<TenantRow>> {
        sqlx::query_as(
            &format!("SELECT {COLUMNS} FROM tenants WHERE LOWER(vcd_org_id) = $1"),
        )
        .bind(format!("urn:vcloud:org:{}", org_uuid.to_ascii_lowercase()))
        .fetch_optional(&self.pool)
        .await.map_err(StoreError::from)
    }

    pub async fn tenant_by_id(&self, id: i64) -> DbResult<Option<TenantRow>> {
        sqlx::query_as(
            &format!("SELECT {COLUMNS} FROM tenants WHERE id = $1"),
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await.map_err(StoreError::from)
    }

    pub async fn list_tenants(&self) -> DbResult<Vec<(TenantRow, i64, i64)>> {
        let tenants: Vec<TenantRow> = sqlx::query_as(
            &format!("SELECT {COLUMNS} FROM tenants ORDER BY slug"),
        )
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::with_capacity(tenants.len());
        for t in tenants {
            let functions = self.count_functions(t.id).await?;
            let users: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users WHERE tenant_id = $1")
                .bind(t.id)
                .fetch_one(&self.pool)
                .await?;
            out.push((t, functions, users));
        }
        Ok(out)
    }
}

impl Store {
    /// Deletes a tenant's row; its users, their tokens and whatever functions are left go with
    /// it. Returns how many users it had.
    pub async fn delete_tenant_row(&self, id: i64) -> DbResult<u64> {
        let users: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users WHERE tenant_id = $1").bind(id).fetch_one(&self.pool).await?;
        sqlx::query("DELETE FROM tenants WHERE id = $1").bind(id).execute(&self.pool).await?;
        Ok(users as u64)
    }
}
