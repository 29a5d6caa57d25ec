//! The store's one error: a duplicate named by the uniqueness rule it broke, or the database's.

/// A uniqueness rule of the schema, by what it keeps unique.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unique {
    TenantName,
    VcdOrgId,
    /// A username within its org.
    Username,
    /// A function name within its tenant.
    FunctionName,
    TokenHash,
    /// A call record's id (a redelivered event queues its run once).
    InvocationId,
    /// A version number within its function.
    VersionNumber,
    Other,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("duplicate {0:?}")]
    Duplicate(Unique),
    #[error("database: {0}")]
    Database(sqlx::Error),
    #[error("database migration: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> StoreError {
        match &e {
            sqlx::Error::Database(db) if db.is_unique_violation() => {
                // PostgreSQL names the constraint; SQLite says "UNIQUE constraint failed:
                // table.column" or "index 'name'".
                let name = db.constraint().map(str::to_string).unwrap_or_else(|| db.message().to_string());
                StoreError::Duplicate(unique_of(&name))
            }
            _ => StoreError::Database(e),
        }
    }
}

fn unique_of(constraint: &str) -> Unique {
    let known = [
        ("vcd_org_id", Unique::VcdOrgId),
        ("tenants_slug", Unique::TenantName),
        ("tenants.slug", Unique::TenantName),
        ("users_org_username", Unique::Username),
        ("functions_tenant_name", Unique::FunctionName),
        ("functions.tenant_id", Unique::FunctionName),
        ("token_hash", Unique::TokenHash),
        ("invocations_pkey", Unique::InvocationId),
        ("invocations.id", Unique::InvocationId),
        ("function_versions", Unique::VersionNumber),
    ];
    known.iter().find(|(part, _)| constraint.contains(part)).map_or(Unique::Other, |(_, unique)| *unique)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_dialects_name_the_rule_broken() {
        assert_eq!(unique_of("tenants_vcd_org_id_key"), Unique::VcdOrgId);
        assert_eq!(unique_of("UNIQUE constraint failed: tenants.vcd_org_id"), Unique::VcdOrgId);
        assert_eq!(unique_of("tenants_slug_key"), Unique::TenantName);
        assert_eq!(unique_of("UNIQUE constraint failed: tenants.slug"), Unique::TenantName);
        assert_eq!(unique_of("UNIQUE constraint failed: index 'users_org_username'"), Unique::Username);
        assert_eq!(unique_of("UNIQUE constraint failed: functions.tenant_id, functions.name"), Unique::FunctionName);
        assert_eq!(unique_of("something_else"), Unique::Other);
    }
}
