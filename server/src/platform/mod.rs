//! The platform's rules, behind the `Platform` port that the portal and the REST API share:
//! who may see and do what, validation against the tenant's limits, and the lifecycle of
//! functions (create → build → serve → update → delete).

use crate::auth;
use crate::build::builder::Builder;
use crate::calls::dispatch::{Call, Credentials, Delivery, Dispatcher};
use crate::calls::directory::Directory;
use crate::calls::request::{CallRequest, CallTrigger, FunctionRef};
use crate::config::Config;
use crate::ops::links::Links;
use crate::store::{FunctionRow, NewVersion, Settings, Store, StoreError, TenantRow, Unique, VersionRow};
use app::model::*;
use app::platform::{Platform, PlatformError, TenantInput, UserInput};
use async_trait::async_trait;
use bytes::Bytes;
use std::sync::Arc;

/// Containers a function may run at once when it does not say.
const DEFAULT_MAX_INSTANCES: i64 = 4;

/// What the platform shows of vCD: each function's state there. The vCD integration provides
/// it when it runs (`vcd::Vcd`); without one, every function is served locally.
pub trait VcdStatus: Send + Sync {
    fn registration(&self, f: &FunctionRow) -> Registration;
}

/// No vCD is configured.
pub struct LocalOnly;

impl VcdStatus for LocalOnly {
    fn registration(&self, _: &FunctionRow) -> Registration {
        Registration::new("local", "served by the platform's own route; no vCD is configured (VCD_URL)")
    }
}

#[derive(Clone)]
pub struct Service {
    store: Store,
    config: Arc<Config>,
    builder: Builder,
    /// The call pipeline: Test Function calls go through it like every other call.
    calls: Dispatcher,
    directory: Arc<Directory>,
    links: Arc<Links>,
    vcd: Arc<dyn VcdStatus>,
}

type Result<T> = std::result::Result<T, PlatformError>;

impl From<StoreError> for PlatformError {
    fn from(e: StoreError) -> PlatformError {
        tracing::error!(error = %e, "database error");
        PlatformError::internal(e)
    }
}

/// The mode and instance bounds a function will have once the spec is applied.
fn capacity_of<'a>(spec: &'a FunctionSpec, limits: &Limits, stored: Option<&'a FunctionRow>) -> (&'a str, i64, i64) {
    let mode = spec.mode.as_deref().or(stored.map(|f| f.pool_mode.as_str())).unwrap_or(PoolMode::Warm.as_str());
    let min = spec.min_instances.or(stored.map(|f| f.min_instances)).unwrap_or(0);
    let max = spec
        .max_instances
        .or(stored.map(|f| f.max_instances))
        .unwrap_or(DEFAULT_MAX_INSTANCES.min(limits.max_instances));
    (mode, min, max)
}

/// An update made from a version that is no longer the latest would undo the newer one.
fn changed_since(name: &str, based_on: i64, latest: i64) -> PlatformError {
    PlatformError::Conflict(format!(
        "function {name:?} changed since version {based_on} that this update was made from (its latest \
         version is now {latest}); load version {latest}, apply your change to it and save again"
    ))
}

/// Settings an update leaves out keep their stored values, which must still fit the tenant's
/// limits: the provider may have lowered them since.
fn kept_over_limits(spec: &FunctionSpec, limits: &Limits, f: &FunctionRow, latest: Option<&VersionRow>) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let mut check = |field: &str, given: Option<i64>, kept: Option<i64>, max: i64, what: &str| {
        if let (None, Some(kept)) = (given, kept) {
            if kept > max {
                errors.push(FieldError::new(
                    field,
                    format!("{what} is {kept} (kept from version {}), over the tenant's limit of {max}: set {field} to at most {max}", f.latest_version),
                ));
            }
        }
    };
    check("memory_mb", spec.memory_mb, latest.map(|v| v.memory_mb), limits.max_memory_mb, "memory (MB)");
    check("timeout_ms", spec.timeout_ms, latest.map(|v| v.timeout_ms), limits.max_timeout_ms, "timeout (ms)");
    check("max_instances", spec.max_instances, Some(f.max_instances), limits.max_instances, "max instances");
    check("min_instances", spec.min_instances, Some(f.min_instances), limits.max_instances, "min instances");
    errors
}

/// The language of a spec that passed validation.
fn language_of(spec: &FunctionSpec) -> Result<Language> {
    Language::parse(&spec.language).ok_or_else(|| PlatformError::invalid("language", format!("unknown language {:?}", spec.language)))
}

/// The mode of a spec that passed validation, if it gives one.
fn mode_of(spec: &FunctionSpec) -> Result<Option<PoolMode>> {
    spec.mode.as_deref().map(|m| PoolMode::parse(m).ok_or_else(|| PlatformError::invalid("mode", format!("unknown mode {m:?}")))).transpose()
}

fn vcd_org_taken() -> PlatformError {
    PlatformError::taken("vcd_org_id", "another tenant already has that vCD org id: each vCD org maps to one tenant")
}

fn function_not_found(org: &str, name: &str) -> PlatformError {
    PlatformError::not_found(format!("no function {name:?} in org {org:?}"))
}

fn version_view(v: &VersionRow) -> VersionView {
    VersionView {
        version: v.version,
        language: v.language,
        build_status: v.build_status,
        memory_mb: v.memory_mb,
        timeout_ms: v.timeout_ms,
        created_at: v.created_at,
        built_at: v.built_at,
    }
}

fn tenant_view(t: TenantRow, function_count: i64, user_count: i64) -> TenantView {
    TenantView {
        name: t.slug,
        display_name: t.display_name,
        max_functions: t.max_functions,
        max_memory_mb: t.max_memory_mb,
        max_timeout_ms: t.max_timeout_ms,
        max_instances: t.max_instances,
        vcd_org_id: t.vcd_org_id,
        function_count,
        user_count,
        calls: 0,
        errors: 0,
        cold_starts: 0,
        mean_ms: 0.0,
        containers: 0,
    }
}

impl Service {
    pub fn new(
        store: Store,
        config: Arc<Config>,
        builder: Builder,
        calls: Dispatcher,
        directory: Arc<Directory>,
        links: Arc<Links>,
        vcd: Arc<dyn VcdStatus>,
    ) -> Service {
        Service { store, config, builder, calls, directory, links, vcd }
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn config(&self) -> &Arc<Config> {
        &self.config
    }

    /// The call pipeline.
    pub fn calls(&self) -> &Dispatcher {
        &self.calls
    }

    /// Creates the provider admin on first start; returns the generated password, if any.
    pub async fn bootstrap_admin(&self) -> std::result::Result<Option<String>, StoreError> {
        if self.store.user_by_login(None, "admin").await?.is_some() {
            return Ok(None);
        }
        let (password, generated) = match &self.config.admin_password {
            Some(secret) => (secret.0.clone(), false),
            None => (auth::new_secret(12), true),
        };
        self.store.insert_user(None, "admin", &auth::hash_password_async(&password).await, Role::Provider).await?;
        Ok(generated.then_some(password))
    }

    /// The caller behind a bearer token.
    pub async fn caller_by_token(&self, token: &str) -> Result<Option<Caller>> {
        Ok(self.directory.caller_by_token(token).await?)
    }

    /// The tenant `org` as seen by the caller: another tenant's is "not found", like a
    /// tenant that does not exist, so names of other tenants never leak.
    async fn tenant_for(&self, caller: &Caller, org: &str) -> Result<TenantRow> {
        let visible = caller.is_provider() || caller.org == org;
        let tenant = if visible { self.store.tenant_by_slug(org).await? } else { None };
        tenant.ok_or_else(|| PlatformError::not_found(format!("no org {org:?}")))
    }

    async fn function_for(&self, caller: &Caller, org: &str, name: &str) -> Result<FunctionRow> {
        let tenant = self.tenant_for(caller, org).await.map_err(|_| function_not_found(org, name))?;
        self.store
            .function_by_name(tenant.id, name)
            .await
            ?
            .ok_or_else(|| function_not_found(org, name))
    }

    async fn view(&self, f: FunctionRow) -> Result<FunctionView> {
        let latest = self.store.version(f.id, f.latest_version).await?.ok_or_else(|| {
            PlatformError::internal(format!("function {} has no version {}", f.id, f.latest_version))
        })?;
        Ok(FunctionView {
            route: route_of(&f.org, &f.name),
            language: latest.language,
            version: f.current_version,
            latest_version: f.latest_version,
            build_status: latest.build_status,
            build_error: latest.build_error.clone(),
            build_log: latest.build_log.clone(),
            memory_mb: latest.memory_mb,
            timeout_ms: latest.timeout_ms,
            public: f.public,
            trigger: f.trigger.clone(),
            registration: self.registration_of(&f),
            mode: f.pool_mode,
            max_instances: f.max_instances,
            min_instances: f.min_instances,
            concurrency: f.concurrency,
            code: latest.code,
            created_at: f.created_at,
            updated_at: f.updated_at,
            status: f.status,
            name: f.name,
            org: f.org,
        })
    }

    fn registration_of(&self, f: &FunctionRow) -> Registration {
        self.vcd.registration(f)
    }

    fn limits_of(&self, tenant: &TenantRow) -> Limits {
        Limits {
            max_memory_mb: tenant.max_memory_mb,
            max_timeout_ms: tenant.max_timeout_ms,
            max_instances: tenant.max_instances,
            default_memory_mb: self.config.default_memory_mb.min(tenant.max_memory_mb),
            default_timeout_ms: self.config.default_timeout_ms.min(tenant.max_timeout_ms),
        }
    }

    /// Checks a spec; limit violations are told apart so the API can answer 422.
    /// `stored` is the function being updated: fields the spec leaves out keep its values.
    fn check_spec(&self, spec: &FunctionSpec, limits: &Limits, stored: Option<&FunctionRow>) -> Result<()> {
        let mut errors = validate_spec(spec, limits, stored.is_none());
        if !errors.iter().any(|e| matches!(e.field.as_str(), "mode" | "min_instances" | "max_instances")) {
            let (mode, min, max) = capacity_of(spec, limits, stored);
            errors.extend(validate_capacity(mode, min, max));
        }
        if errors.is_empty() {
            return Ok(());
        }
        if errors.iter().all(|e| matches!(e.field.as_str(), "memory_mb" | "timeout_ms" | "max_instances" | "min_instances")) {
            Err(PlatformError::OverLimit(errors))
        } else {
            Err(PlatformError::Invalid(errors))
        }
    }

    /// Removes every container and image of a function, then its rows (see `ops::purge`).
    pub async fn purge_function(&self, f: &FunctionRow) -> bool {
        crate::ops::purge::purge_function(&self.store, self.calls.gateway(), f).await
    }

    async fn validate_tenant_input(&self, input: &TenantInput, creating: bool) -> Result<()> {
        let mut errors = Vec::new();
        if creating {
            if let Err(e) = validate_name("tenant name", &input.name) {
                errors.push(FieldError::new("name", e));
            } else if input.name == "provider" {
                errors.push(FieldError::new("name", "\"provider\" is reserved for the provider admin"));
            }
        }
        if let Some(d) = &input.display_name {
            if d.chars().count() > 200 {
                errors.push(FieldError::new("display_name", "display name must be at most 200 characters"));
            } else if d.chars().any(char::is_control) {
                errors.push(FieldError::new("display_name", "display name must be one line of text, without control characters"));
            }
        }
        let checks = [
            ("max_functions", input.max_functions, 1, 10_000),
            ("max_memory_mb", input.max_memory_mb, 64, self.config.max_memory_mb),
            ("max_timeout_ms", input.max_timeout_ms, 100, self.config.max_timeout_ms),
            ("max_instances", input.max_instances, 1, 1000),
        ];
        for (field, value, min, max) in checks {
            if let Some(v) = value {
                if v < min || v > max {
                    errors.push(FieldError::new(field, format!("{field} must be between {min} and {max}")));
                }
            }
        }
        // Empty clears it; anything else is the org's id as vCD writes it in its messages.
        if let Some(id) = input.vcd_org_id.as_deref().filter(|id| !id.is_empty()) {
            let uuid = id.strip_prefix("urn:vcloud:org:").map(uuid::Uuid::parse_str);
            if !matches!(uuid, Some(Ok(_))) {
                errors.push(FieldError::new(
                    "vcd_org_id",
                    format!("vCD org id must be urn:vcloud:org:<uuid>, e.g. urn:vcloud:org:0b5c7e52-3a51-4bd5-9f1c-1a2b3c4d5e6f (got {id:?})"),
                ));
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(PlatformError::Invalid(errors))
        }
    }

    fn require_provider(caller: &Caller) -> Result<()> {
        if caller.is_provider() {
            Ok(())
        } else {
            Err(PlatformError::Forbidden("only the provider admin may do this".into()))
        }
    }

    /// An invocation of the caller's tenant, with its answer when it has one.
    pub async fn invocation_for(&self, caller: &Caller, id: &str) -> Result<serde_json::Value> {
        self.calls.gateway().flush_records().await;
        let row = self.store.invocation(id).await?;
        let row = row
            .filter(|r| caller.is_provider() || caller.tenant_id == Some(r.tenant_id))
            .ok_or_else(|| PlatformError::not_found(format!("no invocation {id:?}")))?;
        let response: Option<serde_json::Value> = row.response.as_deref().and_then(|r| serde_json::from_str(r).ok());
        Ok(serde_json::json!({
            "id": row.id,
            "function": row.function_name,
            "version": row.version,
            "trigger": row.trigger_kind,
            "state": row.state,
            "status_code": row.status_code,
            "response": response,
            "duration_ms": row.duration_us.map(|us| us as f64 / 1000.0),
            "cold": row.cold != 0,
            "logs": row.logs,
            "error": row.error,
            "attempts": row.attempts,
            // A queued retry says when it runs.
            "next_attempt_at": (row.state == "queued" && row.retry_at > 0).then_some(row.retry_at),
            "started_at": row.started_at,
        }))
    }

}

#[async_trait]
impl Platform for Service {
    async fn authenticate(&self, org: &str, username: &str, password: &str) -> Result<Caller> {
        let rejected = || PlatformError::Unauthorized("wrong org, username or password".into());
        let tenant_id = if org == "provider" {
            None
        } else {
            match self.store.tenant_by_slug(org).await? {
                Some(t) => Some(t.id),
                None => {
                    auth::verify_password_async(password, None).await;
                    return Err(rejected());
                }
            }
        };
        let user = self.store.user_by_login(tenant_id, username).await?;
        let valid = auth::verify_password_async(password, user.as_ref().map(|u| u.password_hash.as_str())).await;
        match user {
            Some(user) if valid => Ok(Caller::from(user)),
            _ => Err(rejected()),
        }
    }

    async fn caller_by_user_id(&self, user_id: i64) -> Result<Option<Caller>> {
        Ok(self.store.user_by_id(user_id).await?.map(Caller::from))
    }

    async fn limits(&self, caller: &Caller, org: &str) -> Result<Limits> {
        let tenant = self.tenant_for(caller, org).await?;
        Ok(self.limits_of(&tenant))
    }

    async fn list_functions(&self, caller: &Caller) -> Result<Vec<FunctionView>> {
        let scope = if caller.is_provider() { None } else { caller.tenant_id };
        let rows = self.store.list_functions(scope).await?;
        let mut out = Vec::with_capacity(rows.len());
        for f in rows {
            out.push(self.view(f).await?);
        }
        Ok(out)
    }

    async fn get_function(&self, caller: &Caller, org: &str, name: &str) -> Result<FunctionView> {
        let f = self.function_for(caller, org, name).await?;
        self.view(f).await
    }

    async fn list_versions(&self, caller: &Caller, org: &str, name: &str) -> Result<Vec<VersionView>> {
        let f = self.function_for(caller, org, name).await?;
        Ok(self.store.versions(f.id).await?.iter().map(version_view).collect())
    }

    async fn get_version(&self, caller: &Caller, org: &str, name: &str, version: i64) -> Result<VersionDetail> {
        let f = self.function_for(caller, org, name).await?;
        let v = self.store.version(f.id, version).await?;
        let v = v.ok_or_else(|| PlatformError::not_found(format!("function {name:?} has no version {version}")))?;
        Ok(VersionDetail { version: version_view(&v), code: v.code, build_log: v.build_log })
    }

    async fn restore_version(&self, caller: &Caller, org: &str, name: &str, version: i64) -> Result<FunctionView> {
        let earlier = self.get_version(caller, org, name, version).await?;
        if earlier.version.build_status != BuildStatus::Ready {
            return Err(PlatformError::Conflict(format!(
                "version {version} did not build ({}); restore a version that built",
                earlier.version.build_status
            )));
        }
        let f = self.function_for(caller, org, name).await?;
        let spec = FunctionSpec {
            name: name.to_string(),
            language: earlier.version.language.as_str().to_string(),
            code: earlier.code,
            memory_mb: Some(earlier.version.memory_mb),
            timeout_ms: Some(earlier.version.timeout_ms),
            expected_version: Some(f.latest_version),
            ..Default::default()
        };
        self.update_function(caller, org, name, spec).await
    }

    async fn create_function(&self, caller: &Caller, spec: FunctionSpec) -> Result<FunctionView> {
        if caller.is_provider() {
            return Err(PlatformError::Forbidden(
                "the provider admin has no functions of its own; sign in as a user of a tenant".into(),
            ));
        }
        if spec.expected_version.is_some() {
            return Err(PlatformError::invalid("expected_version", "expected_version is for updates; leave it out when creating"));
        }
        let tenant = self.tenant_for(caller, &caller.org).await?;
        let limits = self.limits_of(&tenant);
        self.check_spec(&spec, &limits, None)?;
        if let Some(existing) = self.store.function_by_name(tenant.id, &spec.name).await? {
            return Err(if existing.is_deleting() {
                PlatformError::Conflict(format!("function {:?} is still being deleted; try again in a moment", spec.name))
            } else {
                PlatformError::taken("name", format!("a function named {:?} already exists in org {:?}", spec.name, tenant.slug))
            });
        }
        if self.store.count_functions(tenant.id).await? >= tenant.max_functions {
            return Err(PlatformError::OverLimit(vec![FieldError::new(
                "name",
                format!("org {:?} has reached its limit of {} functions", tenant.slug, tenant.max_functions),
            )]));
        }
        let version = NewVersion {
            language: language_of(&spec)?,
            code: &spec.code,
            memory_mb: spec.memory_mb.unwrap_or(limits.default_memory_mb),
            timeout_ms: spec.timeout_ms.unwrap_or(limits.default_timeout_ms),
        };
        let trigger = spec.trigger.clone().unwrap_or_default();
        let settings = Settings {
            public: spec.public.unwrap_or(false),
            trigger: &trigger,
            pool_mode: mode_of(&spec)?.unwrap_or(PoolMode::Warm),
            max_instances: spec.max_instances.unwrap_or(DEFAULT_MAX_INSTANCES.min(limits.max_instances)),
            min_instances: spec.min_instances.unwrap_or(0),
            concurrency: spec.concurrency.unwrap_or(1),
        };
        let id = match self.store.insert_function(tenant.id, &spec.name, &settings, &version).await
        {
            Ok(id) => id,
            Err(StoreError::Duplicate(Unique::FunctionName)) => {
                return Err(PlatformError::taken("name", format!("a function named {:?} already exists in org {:?}", spec.name, tenant.slug)))
            }
            Err(e) => return Err(e.into()),
        };
        let f = self.store.function_by_id(id).await?.ok_or_else(|| PlatformError::internal("vanished"))?;
        let v = self.store.version(id, 1).await?.ok_or_else(|| PlatformError::internal("no v1"))?;
        self.builder.enqueue(v.id);
        self.directory.routes_changed();
        self.view(f).await
    }

    async fn update_function(&self, caller: &Caller, org: &str, name: &str, spec: FunctionSpec) -> Result<FunctionView> {
        let f = self.function_for(caller, org, name).await?;
        if f.is_deleting() {
            return Err(function_not_found(org, name));
        }
        if let Some(expected) = spec.expected_version {
            if expected != f.latest_version {
                return Err(changed_since(name, expected, f.latest_version));
            }
        }
        let tenant = self.tenant_for(caller, org).await?;
        let limits = self.limits_of(&tenant);
        self.check_spec(&spec, &limits, Some(&f))?;
        let latest = self.store.version(f.id, f.latest_version).await?;
        let kept = kept_over_limits(&spec, &limits, &f, latest.as_ref());
        if !kept.is_empty() {
            return Err(PlatformError::OverLimit(kept));
        }
        let version = NewVersion {
            language: language_of(&spec)?,
            code: &spec.code,
            memory_mb: spec.memory_mb.or(latest.as_ref().map(|v| v.memory_mb)).unwrap_or(limits.default_memory_mb),
            timeout_ms: spec.timeout_ms.or(latest.as_ref().map(|v| v.timeout_ms)).unwrap_or(limits.default_timeout_ms),
        };
        let trigger = spec.trigger.clone().unwrap_or_else(|| f.trigger.clone());
        let settings = Settings {
            public: spec.public.unwrap_or(f.public),
            trigger: &trigger,
            pool_mode: mode_of(&spec)?.unwrap_or(f.pool_mode),
            max_instances: spec.max_instances.unwrap_or(f.max_instances),
            min_instances: spec.min_instances.unwrap_or(f.min_instances),
            concurrency: spec.concurrency.unwrap_or(f.concurrency),
        };
        let Some(number) = self.store.add_version(f.id, f.latest_version, &settings, &version).await? else {
            let now = self.store.function_by_id(f.id).await?.map_or(f.latest_version, |f| f.latest_version);
            return Err(changed_since(name, f.latest_version, now));
        };
        if let Some(v) = self.store.version(f.id, number).await? {
            self.builder.enqueue(v.id);
        }
        self.directory.routes_changed();
        let f = self.store.function_by_id(f.id).await?.ok_or_else(|| function_not_found(org, name))?;
        self.view(f).await
    }

    async fn delete_function(&self, caller: &Caller, org: &str, name: &str) -> Result<()> {
        let f = self.function_for(caller, org, name).await?;
        if f.is_deleting() {
            return Err(function_not_found(org, name));
        }
        // The route answers 404 from here on; containers and images go in the background.
        self.store.set_function_status(f.id, FunctionStatus::Deleting).await?;
        self.directory.routes_changed();
        self.calls.gateway().pool().forget(f.id);
        let this = self.clone();
        tokio::spawn(async move {
            // A container of the last call may still be on its way out: try a few times.
            for _ in 0..10 {
                if this.purge_function(&f).await {
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            }
        });
        Ok(())
    }

    async fn list_invocations(&self, caller: &Caller, org: &str, name: &str, limit: i64) -> Result<Vec<InvocationView>> {
        let f = self.function_for(caller, org, name).await?;
        self.calls.gateway().flush_records().await;
        let rows = self.store.list_invocations(f.id, limit.clamp(1, 500)).await?;
        Ok(rows
            .into_iter()
            .map(|i| InvocationView {
                id: i.id,
                function: i.function_name,
                version: i.version,
                trigger: i.trigger_kind,
                method: i.method,
                path: i.path,
                status_code: i.status_code,
                duration_ms: i.duration_us.map(|us| us as f64 / 1000.0),
                cold: i.cold != 0,
                logs: i.logs,
                error: i.error.or_else(|| (i.state == "running").then(|| "running".to_string())),
                started_at: i.started_at,
            })
            .collect())
    }

    async fn test_function(&self, caller: &Caller, org: &str, name: &str, request: TestRequest) -> Result<TestResponse> {
        let f = self.function_for(caller, org, name).await?;
        let method = request.method.trim().to_ascii_uppercase();
        let method = if method.is_empty() { "GET".to_string() } else { method };
        if http::Method::from_bytes(method.as_bytes()).is_err() {
            return Err(PlatformError::invalid("method", format!("{method:?} is not an HTTP method")));
        }
        if request.body.len() > self.config.max_body_bytes {
            return Err(PlatformError::invalid("body", format!("the body is over {} bytes", self.config.max_body_bytes)));
        }
        let mut headers = Vec::new();
        for line in request.headers.lines().map(str::trim).filter(|l| !l.is_empty()) {
            match line.split_once(':') {
                Some((k, v)) if !k.trim().is_empty() => headers.push((k.trim().to_string(), v.trim().to_string())),
                _ => return Err(PlatformError::invalid("headers", format!("{line:?} is not a `Name: value` header"))),
            }
        }
        let path = request.path.trim();
        let path = if path.is_empty() || path.starts_with('/') { path.to_string() } else { format!("/{path}") };
        let call = Call {
            function: FunctionRef::new(f.org, f.name),
            request: CallRequest {
                method,
                path,
                query: request.query.trim().trim_start_matches('?').to_string(),
                headers,
                body: Bytes::from(request.body),
                trigger: CallTrigger::Test,
            },
            credentials: Credentials::User(caller.clone()),
            // The panel shows the answer: the test runs now whatever its headers ask.
            delivery: Delivery::Now,
        };
        let response = match self.calls.dispatch(call).await {
            Ok(dispatched) => dispatched.into_response(),
            Err(rejection) if rejection.status == 404 => return Err(PlatformError::not_found(rejection.message)),
            Err(rejection) if rejection.status == 503 && !rejection.platform_fault => return Err(PlatformError::Unavailable(rejection.message)),
            Err(rejection) => rejection.into_response(),
        };
        // The panel shows text; binary answers are described rather than shown garbled.
        let body = match String::from_utf8(response.body.to_vec()) {
            Ok(text) => text,
            Err(_) => format!("({} bytes of binary data; call the route to get them)", response.body.len()),
        };
        Ok(TestResponse {
            status: response.status,
            headers: response.headers,
            body,
            duration_ms: response.duration.as_secs_f64() * 1000.0,
            cold: response.cold,
            logs: response.logs,
        })
    }

    async fn list_tenants(&self, caller: &Caller) -> Result<Vec<TenantView>> {
        Self::require_provider(caller)?;
        let rows = self.store.list_tenants().await?;
        let figures = self.calls.gateway().metrics().tenant_figures();
        let gauges = self.calls.gateway().pool().gauges();
        Ok(rows
            .into_iter()
            .map(|(t, f, u)| {
                let mut view = tenant_view(t, f, u);
                if let Some(fig) = figures.get(&view.name) {
                    (view.calls, view.errors, view.cold_starts, view.mean_ms) = (fig.calls, fig.errors, fig.cold_starts, fig.mean_ms);
                }
                view.containers = gauges.iter().filter(|g| g.tenant == view.name).map(|g| (g.busy + g.idle) as u64).sum();
                view
            })
            .collect())
    }

    async fn service_links(&self, caller: &Caller) -> Result<Vec<ServiceLink>> {
        Self::require_provider(caller)?;
        Ok(self.links.check().await)
    }

    async fn create_tenant(&self, caller: &Caller, input: TenantInput) -> Result<TenantView> {
        Self::require_provider(caller)?;
        self.validate_tenant_input(&input, true).await?;
        let row = TenantRow {
            id: 0,
            slug: input.name.clone(),
            display_name: input.display_name.clone().filter(|d| !d.trim().is_empty()).unwrap_or_else(|| input.name.clone()),
            max_functions: input.max_functions.unwrap_or(self.config.default_max_functions),
            max_memory_mb: input.max_memory_mb.unwrap_or(self.config.max_memory_mb),
            max_timeout_ms: input.max_timeout_ms.unwrap_or(self.config.max_timeout_ms),
            max_instances: input.max_instances.unwrap_or(self.config.default_max_instances),
            vcd_org_id: input.vcd_org_id.clone().filter(|v| !v.is_empty()),
        };
        match self.store.insert_tenant(&row).await {
            Ok(id) => Ok(tenant_view(TenantRow { id, ..row }, 0, 0)),
            Err(StoreError::Duplicate(Unique::TenantName)) => {
                Err(PlatformError::taken("name", format!("a tenant named {:?} already exists", input.name)))
            }
            Err(StoreError::Duplicate(Unique::VcdOrgId)) => Err(vcd_org_taken()),
            Err(e) => Err(e.into()),
        }
    }

    async fn update_tenant(&self, caller: &Caller, org: &str, input: TenantInput) -> Result<TenantView> {
        Self::require_provider(caller)?;
        self.validate_tenant_input(&input, false).await?;
        let mut t = self.tenant_for(caller, org).await?;
        if let Some(d) = input.display_name.filter(|d| !d.trim().is_empty()) {
            t.display_name = d;
        }
        t.max_functions = input.max_functions.unwrap_or(t.max_functions);
        t.max_memory_mb = input.max_memory_mb.unwrap_or(t.max_memory_mb);
        t.max_timeout_ms = input.max_timeout_ms.unwrap_or(t.max_timeout_ms);
        t.max_instances = input.max_instances.unwrap_or(t.max_instances);
        if let Some(v) = input.vcd_org_id {
            t.vcd_org_id = (!v.is_empty()).then_some(v);
        }
        match self.store.update_tenant(&t).await {
            Ok(()) => {}
            Err(StoreError::Duplicate(Unique::VcdOrgId)) => return Err(vcd_org_taken()),
            Err(e) => return Err(e.into()),
        }
        let functions = self.store.count_functions(t.id).await?;
        let users = self.store.list_users(Some(t.id)).await?.len() as i64;
        Ok(tenant_view(t, functions, users))
    }

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
        if let Err(e) = validate_username(&input.username) {
            errors.push(FieldError::new("username", e));
        }
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
        let role = role.expect("checked above");
        match self.store.insert_user(Some(tenant.id), &input.username, &auth::hash_password_async(&input.password).await, role).await {
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
            self.directory.callers_changed();
            Ok(())
        } else {
            Err(PlatformError::not_found(format!("no token {id}")))
        }
    }
}
