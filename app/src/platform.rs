//! The port the portal needs from the server (implemented in the `server` crate), in parts by
//! area. Server functions and the REST API both go through it, so they share every rule.

use crate::model::*;
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// Who the caller is, and what it may use.
#[async_trait]
pub trait Access: Send + Sync {
    /// Checks a password; `from` is the address the attempt came from (attempts are limited
    /// per account and per address).
    async fn authenticate(&self, org: &str, username: &str, password: &str, from: Option<std::net::IpAddr>) -> Result<Caller, PlatformError>;
    async fn caller_by_user_id(&self, user_id: i64) -> Result<Option<Caller>, PlatformError>;
    async fn limits(&self, caller: &Caller, org: &str) -> Result<Limits, PlatformError>;
}

/// A tenant's functions and their versions.
#[async_trait]
pub trait Functions: Send + Sync {
    async fn list_functions(&self, caller: &Caller) -> Result<Vec<FunctionView>, PlatformError>;
    async fn get_function(&self, caller: &Caller, org: &str, name: &str) -> Result<FunctionView, PlatformError>;
    async fn list_versions(&self, caller: &Caller, org: &str, name: &str) -> Result<Vec<VersionView>, PlatformError>;
    async fn get_version(&self, caller: &Caller, org: &str, name: &str, version: i64) -> Result<VersionDetail, PlatformError>;
    /// Makes a new version from an earlier one's language, code and limits (the function's
    /// other settings stay as they are).
    async fn restore_version(&self, caller: &Caller, org: &str, name: &str, version: i64) -> Result<FunctionView, PlatformError>;
    async fn create_function(&self, caller: &Caller, spec: FunctionSpec) -> Result<FunctionView, PlatformError>;
    async fn update_function(&self, caller: &Caller, org: &str, name: &str, spec: FunctionSpec) -> Result<FunctionView, PlatformError>;
    async fn delete_function(&self, caller: &Caller, org: &str, name: &str) -> Result<(), PlatformError>;
}

/// A function's calls as its owner sees them.
#[async_trait]
pub trait Invocations: Send + Sync {
    /// The newest calls first; with `trigger`, only the calls it brought (`schedule`, say).
    async fn list_invocations(&self, caller: &Caller, org: &str, name: &str, limit: i64, trigger: Option<&str>) -> Result<Vec<InvocationView>, PlatformError>;
    async fn test_function(&self, caller: &Caller, org: &str, name: &str, request: TestRequest) -> Result<TestResponse, PlatformError>;
    /// A function's saved test events, by name.
    async fn list_test_events(&self, caller: &Caller, org: &str, name: &str) -> Result<Vec<TestEvent>, PlatformError>;
    /// Saves a test event under its name (replacing one of that name).
    async fn save_test_event(&self, caller: &Caller, org: &str, name: &str, event: &str, request: TestRequest) -> Result<TestEvent, PlatformError>;
    async fn delete_test_event(&self, caller: &Caller, org: &str, name: &str, event: &str) -> Result<(), PlatformError>;
    /// A page of the calls that pass the query, the newest first, and where the next page starts.
    async fn search_invocations(&self, caller: &Caller, org: &str, name: &str, query: InvocationQuery) -> Result<InvocationPage, PlatformError>;
    /// The function's calls, errors, cold starts and durations over a window (`1h`, `24h`,
    /// `7d`), in buckets, from the call records in the database.
    async fn function_metrics(&self, caller: &Caller, org: &str, name: &str, window: &str) -> Result<MetricsView, PlatformError>;
}


/// Tenants and the services behind the platform: the provider's.
#[async_trait]
pub trait Tenants: Send + Sync {
    async fn list_tenants(&self, caller: &Caller) -> Result<Vec<TenantView>, PlatformError>;
    /// The services the platform depends on and whether each answers (provider only).
    async fn service_links(&self, caller: &Caller) -> Result<Vec<ServiceLink>, PlatformError>;
    async fn create_tenant(&self, caller: &Caller, input: TenantInput) -> Result<TenantView, PlatformError>;
    async fn update_tenant(&self, caller: &Caller, org: &str, input: TenantInput) -> Result<TenantView, PlatformError>;
    /// Removes the tenant and everything of it: functions (their containers, images, queues and
    /// vCD filters), users, tokens.
    async fn delete_tenant(&self, caller: &Caller, org: &str) -> Result<TenantDeletion, PlatformError>;
}

/// Users of a tenant and their API tokens.
#[async_trait]
pub trait Users: Send + Sync {
    async fn list_users(&self, caller: &Caller) -> Result<Vec<UserView>, PlatformError>;
    async fn create_user(&self, caller: &Caller, org: &str, input: UserInput) -> Result<UserView, PlatformError>;
    /// Changes a user's role, disables or enables it, or sets a new password.
    async fn update_user(&self, caller: &Caller, org: &str, username: &str, change: UserChange) -> Result<UserView, PlatformError>;
    async fn delete_user(&self, caller: &Caller, org: &str, username: &str) -> Result<(), PlatformError>;
    async fn list_tokens(&self, caller: &Caller) -> Result<Vec<TokenView>, PlatformError>;
    /// Returns the token's secret, shown once.
    async fn create_token(&self, caller: &Caller, input: TokenInput) -> Result<(TokenView, String), PlatformError>;
    async fn revoke_token(&self, caller: &Caller, id: i64) -> Result<(), PlatformError>;
}

/// Who changed what: the provider sees every entry, a tenant admin its tenant's.
#[async_trait]
pub trait Audit: Send + Sync {
    async fn list_audit(&self, caller: &Caller, query: AuditQuery) -> Result<Vec<AuditEntry>, PlatformError>;
}

/// The worker nodes (provider only).
#[async_trait]
pub trait Nodes: Send + Sync {
    async fn list_nodes(&self, caller: &Caller) -> Result<Vec<NodeView>, PlatformError>;
    /// Draining: the node takes no new calls (its calls in flight end there); `false` undoes it.
    async fn set_node_draining(&self, caller: &Caller, name: &str, draining: bool) -> Result<NodeView, PlatformError>;
}

/// Everything the portal and the REST API need, in parts by area.
pub trait Platform: Access + Audit + Functions + Invocations + Nodes + Tenants + Users + 'static {}

impl<T: Access + Audit + Functions + Invocations + Nodes + Tenants + Users + 'static> Platform for T {}

/// The parts' traits, for calling the platform's methods: `use app::platform::parts::*`.
pub mod parts {
    pub use super::{Access, Audit, Functions, Invocations, Nodes, Tenants, Users};
}

pub type SharedPlatform = Arc<dyn Platform>;

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct TenantInput {
    /// Required when creating; ignored when updating (the org is in the path).
    #[serde(default)]
    pub name: String,
    pub display_name: Option<String>,
    pub max_functions: Option<i64>,
    pub max_memory_mb: Option<i64>,
    pub max_timeout_ms: Option<i64>,
    pub max_instances: Option<i64>,
    pub vcd_org_id: Option<String>,
    /// The outbound destinations its functions may connect to (see `egress`); left out keeps
    /// the list, empty allows none.
    pub egress: Option<Vec<String>>,
    /// `runc` or `gvisor`; left out keeps it (`runc` for a new tenant).
    #[serde(default)]
    pub sandbox: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct UserInput {
    pub username: String,
    pub password: String,
    pub role: String,
}

/// A change to a user; what is left out stays.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserChange {
    /// `admin` or `developer`.
    pub role: Option<String>,
    pub disabled: Option<bool>,
    /// A new password (a reset by an admin).
    pub password: Option<String>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct TokenInput {
    pub name: String,
    /// Days until it expires; default and maximum set by the provider.
    pub expires_in_days: Option<i64>,
    /// `read`, `invoke` or `full` (the default).
    pub scope: Option<String>,
}

/// What deleting a tenant removed.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TenantDeletion {
    pub org: String,
    pub functions: u64,
    pub users: u64,
}

/// Which audit entries to list, newest first.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    /// Only this tenant's (the provider's filter; a tenant admin always sees its own).
    pub org: Option<String>,
    /// Entries older than this id (the next page).
    pub before: Option<i64>,
    /// At most this many (default 100, at most 500).
    pub limit: Option<i64>,
}
/// Every failure a platform call can report, each with what the user should fix.
#[derive(Clone, Debug, PartialEq)]
pub enum PlatformError {
    /// Input fields that need fixing.
    Invalid(Vec<FieldError>),
    /// Input that exceeds a limit set by the provider.
    OverLimit(Vec<FieldError>),
    /// Well-formed input the platform cannot use: a schedule's cron pattern or time zone.
    Unprocessable(Vec<FieldError>),
    Unauthorized(String),
    Forbidden(String),
    NotFound(String),
    Conflict(String),
    /// A value another record has already (a name, a vCD org id), at its field.
    Taken(FieldError),
    Unavailable(String),
    /// Too many attempts: try again after this many seconds.
    RateLimited { message: String, retry_after_secs: u64 },
    Internal(String),
}

impl PlatformError {
    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        PlatformError::Invalid(vec![FieldError::new(field, message)])
    }
    pub fn not_found(what: impl Into<String>) -> Self {
        PlatformError::NotFound(what.into())
    }
    pub fn taken(field: &str, message: impl Into<String>) -> Self {
        PlatformError::Taken(FieldError::new(field, message))
    }
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        PlatformError::Internal(cause.to_string())
    }
    /// The HTTP status that tells this kind of failure: the REST API's and the portal's.
    pub fn status(&self) -> u16 {
        match self {
            PlatformError::Invalid(_) => 400,
            PlatformError::OverLimit(_) | PlatformError::Unprocessable(_) => 422,
            PlatformError::Unauthorized(_) => 401,
            PlatformError::Forbidden(_) => 403,
            PlatformError::NotFound(_) => 404,
            PlatformError::Conflict(_) | PlatformError::Taken(_) => 409,
            PlatformError::Unavailable(_) => 503,
            PlatformError::RateLimited { .. } => 429,
            PlatformError::Internal(_) => 500,
        }
    }
    pub fn field_errors(&self) -> &[FieldError] {
        match self {
            PlatformError::Invalid(e) | PlatformError::OverLimit(e) | PlatformError::Unprocessable(e) => e,
            PlatformError::Taken(e) => std::slice::from_ref(e),
            _ => &[],
        }
    }
}

impl std::fmt::Display for PlatformError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PlatformError::Invalid(errors) | PlatformError::OverLimit(errors) | PlatformError::Unprocessable(errors) => {
                let parts: Vec<String> = errors.iter().map(|e| format!("{}: {}", e.field, e.message)).collect();
                write!(f, "{}", parts.join("; "))
            }
            PlatformError::Taken(e) => write!(f, "{}", e.message),
            PlatformError::Unauthorized(m)
            | PlatformError::Forbidden(m)
            | PlatformError::NotFound(m)
            | PlatformError::Conflict(m)
            | PlatformError::Unavailable(m)
            | PlatformError::RateLimited { message: m, .. } => write!(f, "{m}"),
            // Internal causes are logged by the server, never shown to users.
            PlatformError::Internal(_) => write!(f, "internal error; the server log has the details"),
        }
    }
}

impl std::error::Error for PlatformError {}
