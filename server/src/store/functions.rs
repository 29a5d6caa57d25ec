//! Functions, their versions and builds, and the platform's settings.

use super::{now_ms, typed, DbResult, Store, StoreError};
use app::model::{BuildStatus, EnvVars, FileTree, FunctionStatus, Language, Name, PoolMode, Sandbox, Trigger};
use sqlx::any::AnyRow;
use sqlx::{FromRow, Row};

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
    /// The secrets, sealed (see `secrets.rs`): a JSON object of name → value inside.
    pub sealed_secrets: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    /// Its tenant's container runtime.
    pub sandbox: Sandbox,
}

impl FunctionRow {
    /// What its sealed secrets are bound to: they open for this function only.
    pub fn secrets_context(&self) -> String {
        format!("{}/{}", self.org, self.name)
    }

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
        let cron: Option<String> = row.try_get("trigger_cron")?;
        let trigger = match (row.try_get::<String, _>("trigger_type")?.as_str(), event, cron) {
            ("vcd-event", Some(event), _) => Trigger::VcdEvent { event, successful_only: row.try_get::<i64, _>("trigger_successful_only")? != 0 },
            ("schedule", _, Some(cron)) => {
                Trigger::Schedule { cron, timezone: row.try_get::<Option<String>, _>("trigger_timezone")?.unwrap_or_else(|| "UTC".into()) }
            }
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
            sealed_secrets: row.try_get("secrets")?,
            created_at: row.try_get("created_at")?,
            updated_at: row.try_get("updated_at")?,
            sandbox: typed(row, "sandbox")?,
        })
    }
}

#[derive(Clone, Debug, FromRow)]
pub struct VersionRow {
    pub id: i64,
    pub function_id: i64,
    pub version: i64,
    #[sqlx(try_from = "String")]
    pub language: Language,
    /// The entry file.
    pub code: String,
    /// All files as a JSON object; `None` for versions from before functions had several files.
    #[sqlx(rename = "files")]
    pub files_json: Option<String>,
    /// Plain environment variables as a JSON object.
    #[sqlx(rename = "env")]
    pub env_json: Option<String>,
    /// The names of the secrets it was made with, as a JSON array (never their values).
    #[sqlx(rename = "secret_names")]
    pub secret_names_json: Option<String>,
    /// Its own narrowing of the tenant's outbound allowlist, a JSON array; `None`: the tenant's.
    #[sqlx(rename = "egress")]
    pub egress_json: Option<String>,
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

impl VersionRow {
    /// The version's files by relative path (a version from before several files: its entry file).
    pub fn files(&self) -> FileTree {
        self.files_json
            .as_deref()
            .and_then(|json| serde_json::from_str(json).ok())
            .unwrap_or_else(|| FileTree::from([(self.language.entry_file().to_string(), self.code.clone())]))
    }

    pub fn env(&self) -> EnvVars {
        self.env_json.as_deref().and_then(|json| serde_json::from_str(json).ok()).unwrap_or_default()
    }

    /// Whether its runtime gets variables or secrets with each call.
    pub fn has_configuration(&self) -> bool {
        !self.env().is_empty() || !self.secret_names().is_empty()
    }

    pub fn secret_names(&self) -> Vec<String> {
        self.secret_names_json.as_deref().and_then(|json| serde_json::from_str(json).ok()).unwrap_or_default()
    }

    pub fn egress(&self) -> Option<Vec<String>> {
        self.egress_json.as_deref().and_then(|json| serde_json::from_str(json).ok())
    }
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
    /// The function's secrets, sealed.
    pub sealed_secrets: Option<&'a str>,
    pub trigger: &'a Trigger,
    pub pool_mode: PoolMode,
    pub max_instances: i64,
    pub min_instances: i64,
    pub concurrency: i64,
}

pub struct NewVersion<'a> {
    pub language: Language,
    pub files: &'a FileTree,
    pub env: &'a EnvVars,
    pub secret_names: &'a [String],
    pub egress: Option<&'a [String]>,
    pub memory_mb: i64,
    pub timeout_ms: i64,
}

/// The trigger as stored: type, event type, successful operations only, cron and time zone.
struct TriggerColumns<'a> {
    kind: &'a str,
    event: Option<&'a str>,
    successful_only: bool,
    cron: Option<&'a str>,
    timezone: Option<&'a str>,
}

fn trigger_columns(trigger: &Trigger) -> TriggerColumns<'_> {
    let none = TriggerColumns { kind: "http", event: None, successful_only: true, cron: None, timezone: None };
    match trigger {
        Trigger::Http => none,
        Trigger::VcdEvent { event, successful_only } => {
            TriggerColumns { kind: "vcd-event", event: Some(event.as_str()), successful_only: *successful_only, ..none }
        }
        Trigger::Schedule { cron, timezone } => {
            TriggerColumns { kind: "schedule", cron: Some(cron.trim()), timezone: Some(timezone.trim()), ..none }
        }
    }
}

pub(super) const FUNCTION_COLUMNS: &str = "f.id, f.tenant_id, t.slug AS org, f.name, f.status, f.public, f.trigger_type, \
     f.trigger_event, f.trigger_successful_only, f.trigger_cron, f.trigger_timezone, f.current_version, f.latest_version, f.pool_mode, \
     f.max_instances, f.min_instances, f.concurrency, f.secrets, f.created_at, f.updated_at, t.sandbox";

pub(super) const VERSION_COLUMNS: &str = "id, function_id, version, language, code, files, env, secret_names, egress, memory_mb, timeout_ms, build_status, \
     build_log, build_error, image, created_at, built_at";

impl Store {
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
        name: &Name,
        settings: &Settings<'_>,
        v: &NewVersion<'_>,
    ) -> DbResult<i64> {
        let now = now_ms();
        let trigger = trigger_columns(settings.trigger);
        let mut tx = self.pool.begin().await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO functions (tenant_id, name, status, public, trigger_type, trigger_event, latest_version, created_at, updated_at, \
             pool_mode, max_instances, min_instances, concurrency, trigger_successful_only, secrets, trigger_cron, trigger_timezone) \
             VALUES ($1, $2, 'initializing', $3, $4, $5, 1, $6, $6, $7, $8, $9, $10, $11, $12, $13, $14) RETURNING id",
        )
        .bind(tenant_id)
        .bind(name.as_str())
        .bind(settings.public as i64)
        .bind(trigger.kind)
        .bind(trigger.event)
        .bind(now)
        .bind(settings.pool_mode.as_str())
        .bind(settings.max_instances)
        .bind(settings.min_instances)
        .bind(settings.concurrency)
        .bind(trigger.successful_only as i64)
        .bind(settings.sealed_secrets)
        .bind(trigger.cron)
        .bind(trigger.timezone)
        .fetch_one(&mut *tx)
        .await?;
        insert_version(&mut tx, id, 1, v, now).await?;
        keep_lease(&mut tx, id, settings.trigger, now).await?;
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
        let trigger = trigger_columns(settings.trigger);
        let mut tx = self.pool.begin().await?;
        let version: Option<i64> = sqlx::query_scalar(
            "UPDATE functions SET latest_version = latest_version + 1, public = $1, trigger_type = $2, trigger_event = $3, \
             updated_at = $4, status = CASE WHEN current_version IS NULL THEN 'initializing' ELSE status END, \
             pool_mode = $6, max_instances = $7, min_instances = $8, concurrency = $9, trigger_successful_only = $10, secrets = $12, \
             trigger_cron = $13, trigger_timezone = $14 \
             WHERE id = $5 AND latest_version = $11 RETURNING latest_version",
        )
        .bind(settings.public as i64)
        .bind(trigger.kind)
        .bind(trigger.event)
        .bind(now)
        .bind(function_id)
        .bind(settings.pool_mode.as_str())
        .bind(settings.max_instances)
        .bind(settings.min_instances)
        .bind(settings.concurrency)
        .bind(trigger.successful_only as i64)
        .bind(based_on)
        .bind(settings.sealed_secrets)
        .bind(trigger.cron)
        .bind(trigger.timezone)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(version) = version else { return Ok(None) };
        insert_version(&mut tx, function_id, version, v, now).await?;
        keep_lease(&mut tx, function_id, settings.trigger, now).await?;
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

    /// What changes whenever a function is added, removed or changed (by any process): how
    /// many there are and the latest change.
    pub async fn functions_fingerprint(&self) -> DbResult<(i64, i64)> {
        sqlx::query_as("SELECT COUNT(*), COALESCE(MAX(updated_at), 0) FROM functions").fetch_one(&self.pool).await.map_err(StoreError::from)
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

    /// The unfinished builds as the builders look for them every second: id, state, owner
    /// (see `build_claimable`).
    pub async fn unfinished_build_owners(&self) -> DbResult<Vec<(i64, String, String)>> {
        sqlx::query_as(
            "SELECT v.id, v.build_status, COALESCE(v.build_owner, '') FROM function_versions v JOIN functions f ON f.id = v.function_id \
             WHERE v.build_status IN ('queued', 'building') AND f.status <> 'deleting' ORDER BY v.id",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(StoreError::from)
    }

    /// Claims a version's build for process `owner`: a queued one, or one whose builder is not
    /// among the `live` processes any more. A compare-and-set on what was read, so of several
    /// builders racing for it exactly one wins; `false` when another has it.
    pub async fn claim_build(&self, version_id: i64, function_id: i64, owner: &str, live: &std::collections::HashSet<String>) -> DbResult<bool> {
        let found: Option<(String, String)> =
            sqlx::query_as("SELECT build_status, COALESCE(build_owner, '') FROM function_versions WHERE id = $1")
                .bind(version_id)
                .fetch_optional(&self.pool)
                .await?;
        let Some((status, current)) = found else { return Ok(false) };
        if !build_claimable(&status, &current, owner, live) {
            return Ok(false);
        }
        let claimed = sqlx::query(
            "UPDATE function_versions SET build_status = 'building', build_log = '', build_owner = $1 \
             WHERE id = $2 AND build_status = $3 AND COALESCE(build_owner, '') = $4",
        )
        .bind(owner)
        .bind(version_id)
        .bind(&status)
        .bind(&current)
        .execute(&self.pool)
        .await?
        .rows_affected()
            == 1;
        if !claimed {
            return Ok(false);
        }
        sqlx::query("UPDATE functions SET status = 'building' WHERE id = $1 AND current_version IS NULL AND status <> 'deleting'")
            .bind(function_id)
            .execute(&self.pool)
            .await?;
        Ok(true)
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
}

/// What a lease counts ticks of: the pattern and the zone. Another schedule starts anew.
fn schedule_key(cron: &str, timezone: &str) -> String {
    format!("{} {}", cron.trim(), timezone.trim())
}

/// Keeps a function's lease in step with its trigger, inside the transaction that stores it:
/// a new or changed schedule counts from `now` (ticks from before it never run), an unchanged
/// one keeps its count, and a function without a schedule has no lease.
async fn keep_lease(tx: &mut sqlx::Transaction<'_, sqlx::Any>, function_id: i64, trigger: &Trigger, now: i64) -> DbResult<()> {
    match trigger {
        Trigger::Schedule { cron, timezone } => {
            sqlx::query(
                "INSERT INTO function_schedules (function_id, schedule, last_due) VALUES ($1, $2, $3) \
                 ON CONFLICT (function_id) DO UPDATE SET schedule = excluded.schedule, \
                 last_due = CASE WHEN function_schedules.schedule = excluded.schedule THEN function_schedules.last_due ELSE excluded.last_due END",
            )
            .bind(function_id)
            .bind(schedule_key(cron, timezone))
            .bind(now)
            .execute(&mut **tx)
            .await?;
        }
        Trigger::Http | Trigger::VcdEvent { .. } => {
            sqlx::query("DELETE FROM function_schedules WHERE function_id = $1").bind(function_id).execute(&mut **tx).await?;
        }
    }
    Ok(())
}

async fn insert_version(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    function_id: i64,
    version: i64,
    v: &NewVersion<'_>,
    now: i64,
) -> DbResult<()> {
    sqlx::query(
        "INSERT INTO function_versions (function_id, version, language, code, files, memory_mb, timeout_ms, build_status, created_at, env, secret_names, egress) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, 'queued', $8, $9, $10, $11)",
    )
    .bind(function_id)
    .bind(version)
    .bind(v.language.as_str())
    .bind(v.files.get(v.language.entry_file()).map(String::as_str).unwrap_or_default())
    .bind(serde_json::to_string(v.files).expect("a map of strings serializes"))
    .bind(v.memory_mb)
    .bind(v.timeout_ms)
    .bind(now)
    .bind(serde_json::to_string(v.env).expect("a map of strings serializes"))
    .bind(serde_json::to_string(v.secret_names).expect("a list of strings serializes"))
    .bind(v.egress.map(|list| serde_json::to_string(list).expect("a list of strings serializes")))
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Whether process `me` may claim a build in `status` owned by `owner`: a queued one, or one
/// being built by a process not among the `live` ones (nor `me`).
pub fn build_claimable(status: &str, owner: &str, me: &str, live: &std::collections::HashSet<String>) -> bool {
    status == "queued" || (status == "building" && owner != me && !live.contains(owner))
}
