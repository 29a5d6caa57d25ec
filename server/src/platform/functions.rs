//! A function's lifecycle: create → build → serve → update → delete, its versions, and the
//! checks of a spec against the tenant's limits.

use super::access::function_not_found;
use super::{Result, Service};
use crate::store::{FunctionRow, NewVersion, Settings, StoreError, TenantRow, Unique, VersionRow};
use app::files::validate_tree;
use app::validation::validate_spec;
use app::model::*;
use app::platform::{Functions, PlatformError};
use async_trait::async_trait;

/// Containers a function may run at once when it does not say.
const DEFAULT_MAX_INSTANCES: i64 = 4;

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

/// The files of an update: `files` replace the tree; `code` alone replaces the entry file and
/// keeps the others; neither keeps the tree as it is.
fn updated_files(spec: &FunctionSpec, language: Language, latest: Option<&VersionRow>, limits: &Limits) -> Result<FileTree> {
    if let Some(files) = &spec.files {
        return Ok(files.clone());
    }
    let mut files = latest.map(VersionRow::files).unwrap_or_default();
    if latest.is_some_and(|v| v.language != language) {
        // Another language has another entry file: the old one would be left behind unused.
        files.remove(latest.map_or("", |v| v.language.entry_file()));
    }
    if !spec.code.trim().is_empty() {
        files.insert(language.entry_file().to_string(), spec.code.clone());
    }
    let errors = validate_tree(language, &files, limits.max_files_bytes);
    if !errors.is_empty() {
        return Err(PlatformError::Invalid(errors));
    }
    Ok(files)
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

impl Service {
    pub(super) async fn view(&self, f: FunctionRow) -> Result<FunctionView> {
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
            next_run: crate::schedules::next_run(&f.trigger, crate::store::now_ms()),
            registration: self.registration_of(&f),
            mode: f.pool_mode,
            max_instances: f.max_instances,
            min_instances: f.min_instances,
            concurrency: f.concurrency,
            files: latest.files(),
            env: latest.env(),
            secrets: latest.secret_names(),
            egress: latest.egress(),
            code: latest.code,
            created_at: f.created_at,
            updated_at: f.updated_at,
            status: f.status,
            name: f.name,
            org: f.org,
        })
    }

    pub(super) fn registration_of(&self, f: &FunctionRow) -> Registration {
        self.vcd.registration(f)
    }

    /// Checks a spec; limit violations are told apart so the API can answer 422.
    /// `stored` is the function being updated: fields the spec leaves out keep its values.
    pub(super) fn check_spec(&self, spec: &FunctionSpec, limits: &Limits, stored: Option<&FunctionRow>) -> Result<()> {
        let mut errors = validate_spec(spec, limits, stored.is_none());
        // The pattern and the zone are read here, not in the portal: the zone database stays
        // out of its wasm.
        if let Some(Trigger::Schedule { cron, timezone }) = &spec.trigger {
            if !errors.iter().any(|e| e.field.starts_with("trigger")) {
                errors.extend(crate::schedules::cron::Schedule::parse(cron, timezone).err().unwrap_or_default());
            }
        }
        if !errors.iter().any(|e| matches!(e.field.as_str(), "mode" | "min_instances" | "max_instances")) {
            let (mode, min, max) = capacity_of(spec, limits, stored);
            errors.extend(validate_capacity(mode, min, max));
        }
        if errors.is_empty() {
            return Ok(());
        }
        if errors.iter().all(|e| matches!(e.field.as_str(), "memory_mb" | "timeout_ms" | "max_instances" | "min_instances")) {
            Err(PlatformError::OverLimit(errors))
        } else if errors.iter().all(|e| e.field.starts_with("trigger.")) {
            Err(PlatformError::Unprocessable(errors))
        } else {
            Err(PlatformError::Invalid(errors))
        }
    }

    /// Removes every container and image of a function, then its rows (see `ops::purge`).
    pub async fn purge_function(&self, f: &FunctionRow) -> bool {
        crate::ops::purge::purge_function(&self.store, self.calls.gateway(), f, self.config.cluster.local_worker).await
    }

    /// Purges a deleted function; a container of its last call may still be on its way out,
    /// so it tries a few times. False when something is left (the reconciler tries later).
    pub(super) async fn purge_with_retries(&self, f: &FunctionRow) -> bool {
        for _ in 0..10 {
            if self.purge_function(f).await {
                return true;
            }
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        }
        false
    }
}

#[async_trait]
impl Functions for Service {
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
        Ok(VersionDetail { version: version_view(&v), files: v.files(), env: v.env(), secrets: v.secret_names(), egress: v.egress(), code: v.code, build_log: v.build_log })
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
            files: Some(earlier.files),
            env: Some(earlier.env),
            egress: Some(earlier.egress),
            memory_mb: Some(earlier.version.memory_mb),
            timeout_ms: Some(earlier.version.timeout_ms),
            expected_version: Some(f.latest_version),
            ..Default::default()
        };
        let f = self.save_version(caller, org, name, spec).await?;
        self.audit(caller, Some(org), "function.restore", name, format!("version {} made from version {version}", f.latest_version)).await;
        self.view(f).await
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
        let language = language_of(&spec)?;
        let files = spec.tree(language);
        let configuration = self.configuration(&format!("{}/{}", tenant.slug, spec.name), &spec, None)?;
        let egress = function_egress(spec.egress.clone().flatten(), &tenant)?;
        let version = NewVersion {
            language,
            files: &files,
            env: &configuration.env,
            secret_names: &configuration.secret_names,
            egress: egress.as_deref(),
            memory_mb: spec.memory_mb.unwrap_or(limits.default_memory_mb),
            timeout_ms: spec.timeout_ms.unwrap_or(limits.default_timeout_ms),
        };
        let trigger = spec.trigger.clone().unwrap_or_default();
        let settings = Settings {
            public: spec.public.unwrap_or(false),
            sealed_secrets: configuration.sealed_secrets.as_deref(),
            trigger: &trigger,
            pool_mode: mode_of(&spec)?.unwrap_or(PoolMode::Warm),
            max_instances: spec.max_instances.unwrap_or(DEFAULT_MAX_INSTANCES.min(limits.max_instances)),
            min_instances: spec.min_instances.unwrap_or(0),
            concurrency: spec.concurrency.unwrap_or(1),
        };
        let name = Name::parse("name", &spec.name).map_err(|e| PlatformError::invalid("name", e))?;
        let id = match self.store.insert_function(tenant.id, &name, &settings, &version).await
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
        self.calls.directory().routes_changed();
        self.audit(caller, Some(&tenant.slug), "function.create", name.as_str(), format!("version 1, {language}")).await;
        self.view(f).await
    }

    async fn update_function(&self, caller: &Caller, org: &str, name: &str, spec: FunctionSpec) -> Result<FunctionView> {
        let f = self.save_version(caller, org, name, spec).await?;
        self.audit(caller, Some(org), "function.update", name, format!("version {}", f.latest_version)).await;
        self.view(f).await
    }

    async fn delete_function(&self, caller: &Caller, org: &str, name: &str) -> Result<()> {
        let f = self.function_for(caller, org, name).await?;
        if f.is_deleting() {
            return Err(function_not_found(org, name));
        }
        // The route answers 404 from here on; containers and images go in the background.
        self.store.set_function_status(f.id, FunctionStatus::Deleting).await?;
        self.calls.directory().routes_changed();
        self.calls.gateway().pool().forget(f.id);
        self.audit(caller, Some(org), "function.delete", name, "").await;
        let this = self.clone();
        tokio::spawn(async move { this.purge_with_retries(&f).await });
        Ok(())
    }
}

/// A function's own outbound list as stored, each entry checked to lie inside its tenant's.
fn function_egress(given: Option<Vec<String>>, tenant: &TenantRow) -> Result<Option<Vec<String>>> {
    let Some(entries) = given else { return Ok(None) };
    let own = app::egress::parse_list("egress", &entries).map_err(PlatformError::Invalid)?;
    let tenant_rules = app::egress::parse_list("egress", &tenant.egress_entries()).unwrap_or_default();
    let outside = app::egress::check_narrowing("egress", &own, &tenant_rules);
    if !outside.is_empty() {
        // Well written but beyond what the provider allows, like a limit.
        return Err(PlatformError::OverLimit(outside));
    }
    Ok(Some(own.iter().map(ToString::to_string).collect()))
}

impl Service {
    /// Saves a new version of a function (an update or a restore) and starts its build.
    async fn save_version(&self, caller: &Caller, org: &str, name: &str, spec: FunctionSpec) -> Result<FunctionRow> {
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
        let language = language_of(&spec)?;
        let files = updated_files(&spec, language, latest.as_ref(), &limits)?;
        let kept_env = latest.as_ref().map(VersionRow::env).unwrap_or_default();
        let configuration = self.configuration(&f.secrets_context(), &spec, Some((&f, kept_env)))?;
        let egress = match spec.egress.clone() {
            Some(given) => function_egress(given, &tenant)?,
            None => latest.as_ref().and_then(VersionRow::egress),
        };
        let version = NewVersion {
            language,
            files: &files,
            env: &configuration.env,
            secret_names: &configuration.secret_names,
            egress: egress.as_deref(),
            memory_mb: spec.memory_mb.or(latest.as_ref().map(|v| v.memory_mb)).unwrap_or(limits.default_memory_mb),
            timeout_ms: spec.timeout_ms.or(latest.as_ref().map(|v| v.timeout_ms)).unwrap_or(limits.default_timeout_ms),
        };
        let trigger = spec.trigger.clone().unwrap_or_else(|| f.trigger.clone());
        let settings = Settings {
            public: spec.public.unwrap_or(f.public),
            sealed_secrets: configuration.sealed_secrets.as_deref(),
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
        self.calls.directory().routes_changed();
        self.store.function_by_id(f.id).await?.ok_or_else(|| function_not_found(org, name))
    }
}
