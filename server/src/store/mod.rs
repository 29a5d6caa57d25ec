//! The database: desired state of tenants, users, functions and versions, and the call record.
//! One set of queries serves SQLite and PostgreSQL through sqlx's `Any` driver; both dialects
//! accept `$n` placeholders and `RETURNING`.

use sqlx::any::AnyPoolOptions;
use app::model::{BuildStatus, FunctionStatus, Language, PoolMode, Role, Trigger};
use sqlx::any::AnyRow;
use sqlx::{AnyPool, FromRow, Row};
use std::str::FromStr;
use std::time::{SystemTime, UNIX_EPOCH};

mod call_records;
mod error;
pub use call_records::{CallEnd, CallStart};
pub use error::{StoreError, Unique};

pub type DbResult<T> = Result<T, StoreError>;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

#[derive(Clone)]
pub struct Store {
    pub pool: AnyPool,
    pub dialect: Dialect,
    /// The same database through its own driver, for migrations and the session store.
    pub native: NativePool,
}

#[derive(Clone)]
pub enum NativePool {
    Sqlite(sqlx::SqlitePool),
    Postgres(sqlx::PgPool),
}

pub fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

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
}

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
}

impl From<UserRow> for app::model::Caller {
    fn from(user: UserRow) -> Self {
        app::model::Caller {
            user_id: user.id,
            role: user.role,
            tenant_id: user.tenant_id,
            org: user.org,
            username: user.username,
        }
    }
}

#[derive(Clone, Debug)]
pub struct FunctionRow {
    pub id: i64,
    pub tenant_id: i64,
    pub org: String,
    pub name: String,
    pub status: FunctionStatus,
    pub public: bool,
    pub trigger: Trigger,
    pub current_version: Option<i64>,
    pub latest_version: i64,
    pub pool_mode: PoolMode,
    pub max_instances: i64,
    /// Containers kept running while idle (warm mode).
    pub min_instances: i64,
    /// Calls one container serves at once.
    pub concurrency: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

impl FunctionRow {
    /// Being deleted: it serves nothing and takes no new version.
    pub fn is_deleting(&self) -> bool {
        self.status == FunctionStatus::Deleting
    }
}

/// The columns of `FUNCTION_COLUMNS` as typed values: the trigger from its three columns, the
/// 0/1 flags as booleans.
impl<'r> FromRow<'r, AnyRow> for FunctionRow {
    fn from_row(row: &'r AnyRow) -> Result<Self, sqlx::Error> {
        let event: Option<String> = row.try_get("trigger_event")?;
        let trigger = match (row.try_get::<String, _>("trigger_type")?.as_str(), event) {
            ("vcd-event", Some(event)) => Trigger::VcdEvent { event, successful_only: row.try_get::<i64, _>("trigger_successful_only")? != 0 },
            _ => Trigger::Http,
        };
        Ok(FunctionRow {
            id: row.try_get("id")?,
            tenant_id: row.try_get("tenant_id")?,
            org: row.try_get("org")?,
            name: row.try_get("name")?,
            status: typed(row, "status")?,
            public: row.try_get::<i64, _>("public")? != 0,
            trigger,
            current_version: row.try_get("current_version")?,
            latest_version: row.try_get("latest_version")?,
            pool_mode: typed(row, "pool_mode")?,
            max_instances: row.try_get("max_instances")?,
            min_instances: row.try_get("min_instances")?,
            concurrency: row.try_get("concurrency")?,
            created_at: row.try_get("created_at")?,
            updated_at: row.try_get("updated_at")?,
        })
    }
}

/// A text column read as one of the domain's string enums.
fn typed<T: TryFrom<String, Error = String>>(row: &AnyRow, column: &str) -> Result<T, sqlx::Error> {
    T::try_from(row.try_get::<String, _>(column)?).map_err(|e| sqlx::Error::ColumnDecode { index: column.into(), source: e.into() })
}

#[derive(Clone, Debug, FromRow)]
pub struct VersionRow {
    pub id: i64,
    pub function_id: i64,
    pub version: i64,
    #[sqlx(try_from = "String")]
    pub language: Language,
    pub code: String,
    pub memory_mb: i64,
    pub timeout_ms: i64,
    #[sqlx(try_from = "String")]
    pub build_status: BuildStatus,
    pub build_log: String,
    /// Why it did not build (see `builder.rs`).
    pub build_error: Option<String>,
    pub image: Option<String>,
    pub created_at: i64,
    pub built_at: Option<i64>,
}

#[derive(Clone, Debug, FromRow)]
pub struct InvocationRow {
    pub id: String,
    pub function_id: i64,
    pub function_name: String,
    pub version: i64,
    pub trigger_kind: String,
    pub method: String,
    pub path: String,
    pub state: String,
    pub status_code: Option<i64>,
    pub duration_us: Option<i64>,
    pub cold: i64,
    pub logs: String,
    pub error: Option<String>,
    pub started_at: i64,
    pub tenant_id: i64,
    pub response: Option<String>,
    pub attempts: i64,
    /// When a queued retry may run (unix ms; 0: at once).
    pub retry_at: i64,
}

#[derive(Clone, Debug, FromRow)]
pub struct TokenRow {
    pub id: i64,
    pub user_id: i64,
    pub name: String,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
}

/// The trigger as stored: type, event type, successful operations only.
fn trigger_columns(trigger: &Trigger) -> (&str, Option<&str>, bool) {
    match trigger {
        Trigger::Http => ("http", None, true),
        Trigger::VcdEvent { event, successful_only } => ("vcd-event", Some(event.as_str()), *successful_only),
    }
}

/// A queued call taken for running: its function's route, its stored request, and which
/// attempt this is (1 for the first).
#[derive(Clone, Debug, FromRow)]
pub struct Claimed {
    pub id: String,
    pub org: String,
    pub name: String,
    pub request: String,
    pub attempt: i64,
}

/// A function together with what it needs to run: its tenant and serving version.
#[derive(Clone, Debug)]
pub struct Target {
    pub function: FunctionRow,
    pub version: VersionRow,
}

/// Function-level settings that take effect at once, not with the next version.
pub struct Settings<'a> {
    pub public: bool,
    pub trigger: &'a Trigger,
    pub pool_mode: PoolMode,
    pub max_instances: i64,
    pub min_instances: i64,
    pub concurrency: i64,
}

pub struct NewVersion<'a> {
    pub language: Language,
    pub code: &'a str,
    pub memory_mb: i64,
    pub timeout_ms: i64,
}

const FUNCTION_COLUMNS: &str = "f.id, f.tenant_id, t.slug AS org, f.name, f.status, f.public, f.trigger_type, \
     f.trigger_event, f.trigger_successful_only, f.current_version, f.latest_version, f.pool_mode, f.max_instances, f.min_instances, f.concurrency, f.created_at, f.updated_at";
const VERSION_COLUMNS: &str = "id, function_id, version, language, code, memory_mb, timeout_ms, build_status, \
     build_log, build_error, image, created_at, built_at";
const USER_COLUMNS: &str = "u.id, u.tenant_id, u.username, u.password_hash, u.role, u.created_at, \
     COALESCE(t.slug, 'provider') AS org";
const INVOCATION_COLUMNS: &str = "i.id, i.function_id, f.name AS function_name, i.version, i.trigger_kind, i.method, \
     i.path, i.state, i.status_code, i.duration_us, i.cold, i.logs, i.error, i.started_at, i.tenant_id, i.response, i.attempts, i.retry_at";

impl Store {
    /// Connects, creating the SQLite file when needed, and applies the migrations.
    pub async fn connect(url: &str) -> DbResult<Store> {
        sqlx::any::install_default_drivers();
        let (dialect, native) = if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            let pool = sqlx::postgres::PgPoolOptions::new().max_connections(4).connect(url).await?;
            sqlx::migrate!("../migrations/postgres").run(&pool).await?;
            (Dialect::Postgres, NativePool::Postgres(pool))
        } else if url.starts_with("sqlite:") {
            let options = sqlx::sqlite::SqliteConnectOptions::from_str(url)?
                .create_if_missing(true)
                .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
                .busy_timeout(std::time::Duration::from_secs(10));
            let pool = sqlx::sqlite::SqlitePoolOptions::new().max_connections(2).connect_with(options).await?;
            sqlx::migrate!("../migrations/sqlite").run(&pool).await?;
            (Dialect::Sqlite, NativePool::Sqlite(pool))
        } else {
            return Err(StoreError::Database(sqlx::Error::Configuration(
                format!("DATABASE_URL must start with sqlite: or postgres: (got {url:?})").into(),
            )));
        };
        let max = if dialect == Dialect::Sqlite { 4 } else { 16 };
        let sqlite = dialect == Dialect::Sqlite;
        let pool = AnyPoolOptions::new()
            .max_connections(max)
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    // With the write-ahead log, NORMAL stays consistent through any crash and
                    // skips a disk flush per commit; only a power loss may undo the last commits.
                    if sqlite {
                        sqlx::query("PRAGMA synchronous = NORMAL").execute(conn).await?;
                    }
                    Ok(())
                })
            })
            .connect(url)
            .await?;
        Ok(Store { pool, dialect, native })
    }

    /// Whether the database answers a query.
    pub async fn ping(&self) -> DbResult<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// The id of this installation, made at first start; labels on Docker objects carry it so
    /// two installations sharing an engine never touch each other's containers.
    pub async fn installation_id(&self) -> DbResult<String> {
        let fresh = uuid::Uuid::new_v4().simple().to_string()[..12].to_string();
        sqlx::query("INSERT INTO settings (key, value) VALUES ('installation_id', $1) ON CONFLICT (key) DO NOTHING")
            .bind(&fresh)
            .execute(&self.pool)
            .await?;
        sqlx::query_scalar("SELECT value FROM settings WHERE key = 'installation_id'").fetch_one(&self.pool).await.map_err(StoreError::from)
    }

    // ---- tenants ----

    pub async fn insert_tenant(&self, t: &TenantRow) -> DbResult<i64> {
        sqlx::query_scalar(
            "INSERT INTO tenants (slug, display_name, max_functions, max_memory_mb, max_timeout_ms, vcd_org_id, created_at, max_instances) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
        )
        .bind(&t.slug)
        .bind(&t.display_name)
        .bind(t.max_functions)
        .bind(t.max_memory_mb)
        .bind(t.max_timeout_ms)
        .bind(&t.vcd_org_id)
        .bind(now_ms())
        .bind(t.max_instances)
        .fetch_one(&self.pool)
        .await.map_err(StoreError::from)
    }

    pub async fn update_tenant(&self, t: &TenantRow) -> DbResult<()> {
        sqlx::query(
            "UPDATE tenants SET display_name = $1, max_functions = $2, max_memory_mb = $3, max_timeout_ms = $4, \
             vcd_org_id = $5, max_instances = $6 WHERE id = $7",
        )
        .bind(&t.display_name)
        .bind(t.max_functions)
        .bind(t.max_memory_mb)
        .bind(t.max_timeout_ms)
        .bind(&t.vcd_org_id)
        .bind(t.max_instances)
        .bind(t.id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn tenant_by_slug(&self, slug: &str) -> DbResult<Option<TenantRow>> {
        sqlx::query_as(
            "SELECT id, slug, display_name, max_functions, max_memory_mb, max_timeout_ms, max_instances, vcd_org_id FROM tenants WHERE slug = $1",
        )
        .bind(slug)
        .fetch_optional(&self.pool)
        .await.map_err(StoreError::from)
    }

    /// The tenant that a vCD organisation (`urn:vcloud:org:<uuid>`, any case) belongs to.
    pub async fn tenant_by_vcd_org(&self, org_uuid: &str) -> DbResult<Option<TenantRow>> {
        sqlx::query_as(
            "SELECT id, slug, display_name, max_functions, max_memory_mb, max_timeout_ms, max_instances, vcd_org_id FROM tenants \
             WHERE LOWER(vcd_org_id) = $1",
        )
        .bind(format!("urn:vcloud:org:{}", org_uuid.to_ascii_lowercase()))
        .fetch_optional(&self.pool)
        .await.map_err(StoreError::from)
    }

    pub async fn tenant_by_id(&self, id: i64) -> DbResult<Option<TenantRow>> {
        sqlx::query_as(
            "SELECT id, slug, display_name, max_functions, max_memory_mb, max_timeout_ms, max_instances, vcd_org_id FROM tenants WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await.map_err(StoreError::from)
    }

    pub async fn list_tenants(&self) -> DbResult<Vec<(TenantRow, i64, i64)>> {
        let tenants: Vec<TenantRow> = sqlx::query_as(
            "SELECT id, slug, display_name, max_functions, max_memory_mb, max_timeout_ms, max_instances, vcd_org_id FROM tenants ORDER BY slug",
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

    // ---- users and tokens ----

    pub async fn insert_user(&self, tenant_id: Option<i64>, username: &str, password_hash: &str, role: Role) -> DbResult<i64> {
        sqlx::query_scalar(
            "INSERT INTO users (tenant_id, username, password_hash, role, created_at) VALUES ($1, $2, $3, $4, $5) RETURNING id",
        )
        .bind(tenant_id)
        .bind(username)
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

    pub async fn insert_token(&self, user_id: i64, name: &str, token_hash: &str) -> DbResult<i64> {
        sqlx::query_scalar(
            "INSERT INTO api_tokens (user_id, name, token_hash, created_at) VALUES ($1, $2, $3, $4) RETURNING id",
        )
        .bind(user_id)
        .bind(name)
        .bind(token_hash)
        .bind(now_ms())
        .fetch_one(&self.pool)
        .await.map_err(StoreError::from)
    }

    /// The user owning a token. Marks the token used, at most once a minute: every call
    /// presents a token, and a write per call would cost the call path more than the call.
    pub async fn user_by_token(&self, token_hash: &str) -> DbResult<Option<UserRow>> {
        let found: Option<(i64, Option<i64>)> =
            sqlx::query_as("SELECT user_id, last_used_at FROM api_tokens WHERE token_hash = $1")
                .bind(token_hash)
                .fetch_optional(&self.pool)
                .await?;
        let Some((user_id, last_used_at)) = found else { return Ok(None) };
        let now = now_ms();
        if last_used_at.is_none_or(|t| now - t > 60_000) {
            sqlx::query("UPDATE api_tokens SET last_used_at = $1 WHERE token_hash = $2")
                .bind(now)
                .bind(token_hash)
                .execute(&self.pool)
                .await?;
        }
        self.user_by_id(user_id).await.map_err(StoreError::from)
    }

    pub async fn list_tokens(&self, user_id: i64) -> DbResult<Vec<TokenRow>> {
        sqlx::query_as(
            "SELECT id, user_id, name, created_at, last_used_at FROM api_tokens WHERE user_id = $1 ORDER BY id DESC",
        )
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

    // ---- functions and versions ----

    pub async fn count_functions(&self, tenant_id: i64) -> DbResult<i64> {
        sqlx::query_scalar("SELECT COUNT(*) FROM functions WHERE tenant_id = $1")
            .bind(tenant_id)
            .fetch_one(&self.pool)
            .await.map_err(StoreError::from)
    }

    /// Creates a function with its first version, queued for building, in one transaction.
    pub async fn insert_function(
        &self,
        tenant_id: i64,
        name: &str,
        settings: &Settings<'_>,
        v: &NewVersion<'_>,
    ) -> DbResult<i64> {
        let now = now_ms();
        let (trigger_type, trigger_event, successful_only) = trigger_columns(settings.trigger);
        let mut tx = self.pool.begin().await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO functions (tenant_id, name, status, public, trigger_type, trigger_event, latest_version, created_at, updated_at, \
             pool_mode, max_instances, min_instances, concurrency, trigger_successful_only) \
             VALUES ($1, $2, 'initializing', $3, $4, $5, 1, $6, $6, $7, $8, $9, $10, $11) RETURNING id",
        )
        .bind(tenant_id)
        .bind(name)
        .bind(settings.public as i64)
        .bind(trigger_type)
        .bind(trigger_event)
        .bind(now)
        .bind(settings.pool_mode.as_str())
        .bind(settings.max_instances)
        .bind(settings.min_instances)
        .bind(settings.concurrency)
        .bind(successful_only as i64)
        .fetch_one(&mut *tx)
        .await?;
        insert_version(&mut tx, id, 1, v, now).await?;
        tx.commit().await?;
        Ok(id)
    }

    /// Adds the next version of a function, queued for building; returns its number.
    /// Adds version `based_on + 1`, or nothing (`None`) when the function's latest version is
    /// no longer `based_on`: the change was made from a version someone else has replaced.
    pub async fn add_version(
        &self,
        function_id: i64,
        based_on: i64,
        settings: &Settings<'_>,
        v: &NewVersion<'_>,
    ) -> DbResult<Option<i64>> {
        let now = now_ms();
        let (trigger_type, trigger_event, successful_only) = trigger_columns(settings.trigger);
        let mut tx = self.pool.begin().await?;
        let version: Option<i64> = sqlx::query_scalar(
            "UPDATE functions SET latest_version = latest_version + 1, public = $1, trigger_type = $2, trigger_event = $3, \
             updated_at = $4, status = CASE WHEN current_version IS NULL THEN 'initializing' ELSE status END, \
             pool_mode = $6, max_instances = $7, min_instances = $8, concurrency = $9, trigger_successful_only = $10 \
             WHERE id = $5 AND latest_version = $11 RETURNING latest_version",
        )
        .bind(settings.public as i64)
        .bind(trigger_type)
        .bind(trigger_event)
        .bind(now)
        .bind(function_id)
        .bind(settings.pool_mode.as_str())
        .bind(settings.max_instances)
        .bind(settings.min_instances)
        .bind(settings.concurrency)
        .bind(successful_only as i64)
        .bind(based_on)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(version) = version else { return Ok(None) };
        insert_version(&mut tx, function_id, version, v, now).await?;
        tx.commit().await?;
        Ok(Some(version))
    }

    pub async fn function_by_name(&self, tenant_id: i64, name: &str) -> DbResult<Option<FunctionRow>> {
        sqlx::query_as(&format!(
            "SELECT {FUNCTION_COLUMNS} FROM functions f JOIN tenants t ON t.id = f.tenant_id WHERE f.tenant_id = $1 AND f.name = $2"
        ))
        .bind(tenant_id)
        .bind(name)
        .fetch_optional(&self.pool)
        .await.map_err(StoreError::from)
    }

    pub async fn function_by_id(&self, id: i64) -> DbResult<Option<FunctionRow>> {
        sqlx::query_as(&format!(
            "SELECT {FUNCTION_COLUMNS} FROM functions f JOIN tenants t ON t.id = f.tenant_id WHERE f.id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await.map_err(StoreError::from)
    }

    /// Functions of one tenant, or of all tenants when `tenant_id` is `None`.
    pub async fn list_functions(&self, tenant_id: Option<i64>) -> DbResult<Vec<FunctionRow>> {
        sqlx::query_as(&format!(
            "SELECT {FUNCTION_COLUMNS} FROM functions f JOIN tenants t ON t.id = f.tenant_id \
             WHERE ($1 = 0 OR f.tenant_id = $1) ORDER BY t.slug, f.name"
        ))
        .bind(tenant_id.unwrap_or(0))
        .fetch_all(&self.pool)
        .await.map_err(StoreError::from)
    }

    /// Functions triggered by vCD events, of one tenant or of all when `tenant_id` is `None`.
    pub async fn event_functions(&self, tenant_id: Option<i64>) -> DbResult<Vec<FunctionRow>> {
        sqlx::query_as(&format!(
            "SELECT {FUNCTION_COLUMNS} FROM functions f JOIN tenants t ON t.id = f.tenant_id \
             WHERE f.trigger_type = 'vcd-event' AND ($1 = 0 OR f.tenant_id = $1) AND f.status <> 'deleting'"
        ))
        .bind(tenant_id.unwrap_or(0))
        .fetch_all(&self.pool)
        .await.map_err(StoreError::from)
    }

    /// A setting kept by the platform itself (see the `settings` table).
    pub async fn setting(&self, key: &str) -> DbResult<Option<String>> {
        sqlx::query_scalar("SELECT value FROM settings WHERE key = $1").bind(key).fetch_optional(&self.pool).await.map_err(StoreError::from)
    }

    pub async fn set_setting(&self, key: &str, value: &str) -> DbResult<()> {
        sqlx::query("INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value")
            .bind(key)
            .bind(value)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn functions_with_status(&self, status: FunctionStatus) -> DbResult<Vec<FunctionRow>> {
        sqlx::query_as(&format!(
            "SELECT {FUNCTION_COLUMNS} FROM functions f JOIN tenants t ON t.id = f.tenant_id WHERE f.status = $1"
        ))
        .bind(status.as_str())
        .fetch_all(&self.pool)
        .await.map_err(StoreError::from)
    }

    pub async fn set_function_status(&self, id: i64, status: FunctionStatus) -> DbResult<()> {
        sqlx::query("UPDATE functions SET status = $1, updated_at = $2 WHERE id = $3")
            .bind(status.as_str())
            .bind(now_ms())
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn delete_function_row(&self, id: i64) -> DbResult<()> {
        sqlx::query("DELETE FROM functions WHERE id = $1").bind(id).execute(&self.pool).await?;
        Ok(())
    }

    pub async fn version(&self, function_id: i64, version: i64) -> DbResult<Option<VersionRow>> {
        sqlx::query_as(&format!("SELECT {VERSION_COLUMNS} FROM function_versions WHERE function_id = $1 AND version = $2"))
            .bind(function_id)
            .bind(version)
            .fetch_optional(&self.pool)
            .await.map_err(StoreError::from)
    }

    pub async fn version_by_id(&self, id: i64) -> DbResult<Option<VersionRow>> {
        sqlx::query_as(&format!("SELECT {VERSION_COLUMNS} FROM function_versions WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await.map_err(StoreError::from)
    }

    pub async fn versions(&self, function_id: i64) -> DbResult<Vec<VersionRow>> {
        sqlx::query_as(&format!("SELECT {VERSION_COLUMNS} FROM function_versions WHERE function_id = $1 ORDER BY version DESC"))
            .bind(function_id)
            .fetch_all(&self.pool)
            .await.map_err(StoreError::from)
    }

    /// Versions waiting for a build or whose build was cut off (by a crash, say).
    pub async fn unfinished_builds(&self) -> DbResult<Vec<VersionRow>> {
        sqlx::query_as(&format!(
            "SELECT v.{} FROM function_versions v JOIN functions f ON f.id = v.function_id \
             WHERE v.build_status IN ('queued', 'building') AND f.status <> 'deleting' ORDER BY v.id",
            VERSION_COLUMNS.replace(", ", ", v.")
        ))
        .fetch_all(&self.pool)
        .await.map_err(StoreError::from)
    }

    pub async fn start_build(&self, version_id: i64, function_id: i64) -> DbResult<()> {
        sqlx::query("UPDATE function_versions SET build_status = 'building', build_log = '' WHERE id = $1")
            .bind(version_id)
            .execute(&self.pool)
            .await?;
        sqlx::query("UPDATE functions SET status = 'building' WHERE id = $1 AND current_version IS NULL AND status <> 'deleting'")
            .bind(function_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn append_build_log(&self, version_id: i64, text: &str) -> DbResult<()> {
        sqlx::query("UPDATE function_versions SET build_log = build_log || $1 WHERE id = $2")
            .bind(text)
            .bind(version_id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Marks a build done and, when it is the newest, makes it the serving version.
    pub async fn finish_build_ok(&self, v: &VersionRow, image: &str) -> DbResult<()> {
        let now = now_ms();
        let mut tx = self.pool.begin().await?;
        sqlx::query("UPDATE function_versions SET build_status = 'ready', image = $1, built_at = $2 WHERE id = $3")
            .bind(image)
            .bind(now)
            .bind(v.id)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "UPDATE functions SET current_version = $1, status = 'ready', updated_at = $2 \
             WHERE id = $3 AND status <> 'deleting' AND (current_version IS NULL OR current_version < $1)",
        )
        .bind(v.version)
        .bind(now)
        .bind(v.function_id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await.map_err(StoreError::from)
    }

    /// Marks a build failed; the function stays `ready` when an older version serves.
    pub async fn finish_build_failed(&self, v: &VersionRow, reason: &str) -> DbResult<()> {
        let now = now_ms();
        sqlx::query("UPDATE function_versions SET build_status = 'failed', build_error = $3, built_at = $1 WHERE id = $2")
            .bind(now)
            .bind(v.id)
            .bind(reason)
            .execute(&self.pool)
            .await?;
        sqlx::query(
            "UPDATE functions SET status = 'failed', updated_at = $1 WHERE id = $2 AND current_version IS NULL AND status <> 'deleting'",
        )
        .bind(now)
        .bind(v.function_id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The function behind a route with its serving version; `None` when it does not exist,
    /// is being deleted, or has never been built.
    pub async fn routable(&self, org: &str, name: &str) -> DbResult<Option<Result<Target, FunctionRow>>> {
        let function: Option<FunctionRow> = sqlx::query_as(&format!(
            "SELECT {FUNCTION_COLUMNS} FROM functions f JOIN tenants t ON t.id = f.tenant_id WHERE t.slug = $1 AND f.name = $2"
        ))
        .bind(org)
        .bind(name)
        .fetch_optional(&self.pool)
        .await?;
        let Some(function) = function else { return Ok(None) };
        if function.is_deleting() {
            return Ok(None);
        }
        let Some(current) = function.current_version else { return Ok(Some(Err(function))) };
        let Some(version) = self.version(function.id, current).await? else { return Ok(Some(Err(function))) };
        Ok(Some(Ok(Target { function, version })))
    }

    /// Every warm function that serves a version, with that version: what the pool keeps
    /// ready ahead of calls. Two queries whatever the number of functions.
    pub async fn warm_targets(&self) -> DbResult<Vec<Target>> {
        let functions: Vec<FunctionRow> = sqlx::query_as(&format!(
            "SELECT {FUNCTION_COLUMNS} FROM functions f JOIN tenants t ON t.id = f.tenant_id \
             WHERE f.pool_mode = 'warm' AND f.status <> 'deleting' AND f.current_version IS NOT NULL"
        ))
        .fetch_all(&self.pool)
        .await?;
        let versions: Vec<VersionRow> = sqlx::query_as(&format!(
            "SELECT {} FROM function_versions v JOIN functions f ON f.id = v.function_id AND f.current_version = v.version \
             WHERE f.pool_mode = 'warm' AND f.status <> 'deleting'",
            VERSION_COLUMNS.split(", ").map(|c| format!("v.{c}")).collect::<Vec<_>>().join(", ")
        ))
        .fetch_all(&self.pool)
        .await?;
        let mut by_function: std::collections::HashMap<i64, VersionRow> =
            versions.into_iter().map(|v| (v.function_id, v)).collect();
        Ok(functions
            .into_iter()
            .filter_map(|function| by_function.remove(&function.id).map(|version| Target { function, version }))
            .collect())
    }

    // ---- invocations ----

    /// Writes how a call ended (its start is recorded already; see `journal.rs`).
    pub async fn finish_invocation(&self, end: &CallEnd) -> DbResult<()> {
        sqlx::query(
            // An asynchronous call (it keeps its request) gets its final state together with its
            // stored answer (`set_async_outcome`), so a reader never sees `done` without one.
            "UPDATE invocations SET state = CASE WHEN request IS NULL THEN $1 ELSE state END, status_code = $2, \
             duration_us = $3, cold = $4, logs = $5, error = $6 WHERE id = $7",
        )
        .bind(end.state())
        .bind(end.status_code as i64)
        .bind(end.duration_us)
        .bind(end.cold as i64)
        .bind(end.logs.as_str())
        .bind(end.error.as_deref())
        .bind(end.id.as_str())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Accepts an asynchronous call: recorded with its request, `queued` until a worker runs it.
    pub async fn queue_invocation(&self, id: &str, target: &Target, trigger: &str, method: &str, path: &str, request: &str) -> DbResult<()> {
        sqlx::query(
            "INSERT INTO invocations (id, function_id, tenant_id, version, trigger_kind, method, path, state, started_at, request) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, 'queued', $8, $9)",
        )
        .bind(id)
        .bind(target.function.id)
        .bind(target.function.tenant_id)
        .bind(target.version.version)
        .bind(trigger)
        .bind(method)
        .bind(path)
        .bind(now_ms())
        .bind(request)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Takes up to `limit` queued calls for running.
    pub async fn claim_queued(&self, limit: i64) -> DbResult<Vec<Claimed>> {
        let queued: Vec<String> =
            sqlx::query_scalar("SELECT id FROM invocations WHERE state = 'queued' AND retry_at <= $1 ORDER BY started_at LIMIT $2")
                .bind(now_ms())
                .bind(limit)
                .fetch_all(&self.pool)
                .await?;
        let mut claimed = Vec::new();
        for id in queued {
            if let Some(call) = self.claim_invocation(&id).await? {
                claimed.push(call);
            }
        }
        Ok(claimed)
    }

    /// Takes one queued call for running (the broker delivered it). None when the call is not
    /// queued — done, running or unknown — so a redelivered message never runs a call twice;
    /// None too for a retry whose time has not come (the sweeper publishes it then).
    pub async fn claim_invocation(&self, id: &str) -> DbResult<Option<Claimed>> {
        let claimed = sqlx::query(
            "UPDATE invocations SET state = 'running', attempts = attempts + 1 WHERE id = $1 AND state = 'queued' AND retry_at <= $2",
        )
        .bind(id)
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        if claimed.rows_affected() != 1 {
            return Ok(None);
        }
        Ok(sqlx::query_as(
            "SELECT i.id, t.slug AS org, f.name, i.request, i.attempts AS attempt FROM invocations i \
             JOIN functions f ON f.id = i.function_id JOIN tenants t ON t.id = f.tenant_id WHERE i.id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// The broker confirmed the message of the call's attempt after `attempts`; unconfirmed
    /// queued calls are published again by the sweeper. A call claimed meanwhile (its attempts
    /// grew) is left alone: its outcome decides whether it is published again.
    pub async fn set_published(&self, id: &str, attempts: i64) -> DbResult<()> {
        sqlx::query("UPDATE invocations SET published = 1 WHERE id = $1 AND attempts = $2")
            .bind(id)
            .bind(attempts)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Queued calls whose message the broker never confirmed, of functions not being deleted
    /// (publishing would declare their queue again): retries once due, and first attempts
    /// accepted before `accepted_before` (a newer one may still be on its way to the broker
    /// from the request that accepted it; publishing it too would queue it twice).
    /// (id, tenant slug, function name, attempts so far).
    pub async fn unpublished_calls(&self, accepted_before: i64, limit: i64) -> DbResult<Vec<(String, String, String, i64)>> {
        sqlx::query_as(
            "SELECT i.id, t.slug, f.name, i.attempts FROM invocations i JOIN functions f ON f.id = i.function_id \
             JOIN tenants t ON t.id = f.tenant_id \
             WHERE i.state = 'queued' AND i.published = 0 AND i.request IS NOT NULL AND f.status <> 'deleting' \
             AND i.retry_at <= $1 AND (i.attempts > 0 OR i.started_at < $2) ORDER BY i.started_at LIMIT $3",
        )
        .bind(now_ms())
        .bind(accepted_before)
        .bind(limit)
        .fetch_all(&self.pool)
        .await.map_err(StoreError::from)
    }

    /// Ends the queued calls of a function whose queue is gone (the function was deleted).
    pub async fn fail_queued_of_function(&self, function_id: i64) -> DbResult<u64> {
        let done = sqlx::query(
            "UPDATE invocations SET state = 'failed', error = 'the function was deleted before the call ran' \
             WHERE function_id = $1 AND state = 'queued'",
        )
        .bind(function_id)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }

    /// Stores an asynchronous call's answer and its next state (`done`, `queued` for another
    /// attempt, `dead-letter`, or `failed`).
    pub async fn set_async_outcome(&self, id: &str, response: Option<&str>, state: &str) -> DbResult<()> {
        sqlx::query("UPDATE invocations SET response = $1, state = $2 WHERE id = $3")
            .bind(response)
            .bind(state)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Queues a call that answered 5xx again, with that answer, for another attempt at
    /// `retry_at` (unix ms). Unpublished: the sweeper publishes it when it is due.
    pub async fn retry_async_call(&self, id: &str, response: &str, retry_at: i64) -> DbResult<()> {
        sqlx::query("UPDATE invocations SET response = $1, state = 'queued', retry_at = $2, published = 0 WHERE id = $3")
            .bind(response)
            .bind(retry_at)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Ends a call that could not run at all.
    pub async fn fail_invocation(&self, id: &str, reason: &str) -> DbResult<()> {
        sqlx::query("UPDATE invocations SET state = 'failed', error = $1 WHERE id = $2")
            .bind(reason)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn invocation(&self, id: &str) -> DbResult<Option<InvocationRow>> {
        sqlx::query_as(&format!("SELECT {INVOCATION_COLUMNS} FROM invocations i JOIN functions f ON f.id = i.function_id WHERE i.id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await.map_err(StoreError::from)
    }

    pub async fn list_invocations(&self, function_id: i64, limit: i64) -> DbResult<Vec<InvocationRow>> {
        sqlx::query_as(&format!(
            "SELECT {INVOCATION_COLUMNS} FROM invocations i JOIN functions f ON f.id = i.function_id \
             WHERE i.function_id = $1 ORDER BY i.started_at DESC, i.id LIMIT $2"
        ))
        .bind(function_id)
        .bind(limit)
        .fetch_all(&self.pool)
        .await.map_err(StoreError::from)
    }

    /// Deletes the finished call records of a function started before `before` (ms) or older
    /// than its newest `keep`, a chunk at a time so that new records are not held up for
    /// long. Queued and running calls stay. Returns how many went.
    pub async fn prune_invocations(&self, function_id: i64, before: i64, keep: i64) -> DbResult<u64> {
        const CHUNK: i64 = 5000;
        let oldest_kept: Option<i64> =
            sqlx::query_scalar("SELECT started_at FROM invocations WHERE function_id = $1 ORDER BY started_at DESC LIMIT 1 OFFSET $2")
                .bind(function_id)
                .bind(keep.max(1) - 1)
                .fetch_optional(&self.pool)
                .await?;
        let cutoff = oldest_kept.map_or(before, |at| at.max(before));
        let mut pruned = 0;
        loop {
            let gone = sqlx::query(
                "DELETE FROM invocations WHERE id IN (SELECT id FROM invocations \
                 WHERE function_id = $1 AND started_at < $2 AND state NOT IN ('queued', 'running') LIMIT $3)",
            )
            .bind(function_id)
            .bind(cutoff)
            .bind(CHUNK)
            .execute(&self.pool)
            .await?
            .rows_affected();
            pruned += gone;
            if gone < CHUNK as u64 {
                return Ok(pruned);
            }
            tokio::task::yield_now().await;
        }
    }

    /// Calls left `running` by a server that stopped before they ended. Asynchronous ones
    /// (they keep their request) go back to the queue instead, to be published again: their
    /// message may have been acknowledged already (a duplicate is skipped by the claim).
    pub async fn fail_interrupted_invocations(&self, started_before: i64) -> DbResult<u64> {
        sqlx::query("UPDATE invocations SET state = 'queued', published = 0 WHERE state = 'running' AND request IS NOT NULL AND started_at < $1")
            .bind(started_before)
            .execute(&self.pool)
            .await?;
        let done = sqlx::query(
            "UPDATE invocations SET state = 'failed', error = 'interrupted: the server stopped during the call' \
             WHERE state = 'running' AND request IS NULL AND started_at < $1",
        )
        .bind(started_before)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }
}

async fn insert_version(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    function_id: i64,
    version: i64,
    v: &NewVersion<'_>,
    now: i64,
) -> DbResult<()> {
    sqlx::query(
        "INSERT INTO function_versions (function_id, version, language, code, memory_mb, timeout_ms, build_status, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, 'queued', $7)",
    )
    .bind(function_id)
    .bind(version)
    .bind(v.language.as_str())
    .bind(v.code)
    .bind(v.memory_mb)
    .bind(v.timeout_ms)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}
