//! Tenants and their limits: the provider's side.

use super::{Result, Service};
use crate::cluster::members::{listed_containers, NodeState};
use crate::store::{now_ms, StoreError, TenantRow, Unique};
use std::collections::HashMap;
use app::model::*;
use app::platform::{PlatformError, TenantDeletion, TenantInput, Tenants};
use async_trait::async_trait;

impl Service {
    /// Containers per tenant on the worker nodes that are not down, as their heartbeats list
    /// them (none on a single host).
    async fn containers_on_nodes(&self) -> Result<HashMap<String, u64>> {
        let now = now_ms();
        let mut per_function: HashMap<i64, u64> = HashMap::new();
        for node in self.store.nodes().await? {
            if NodeState::of(&node, now) == NodeState::Down {
                continue;
            }
            for warm in listed_containers(&node) {
                *per_function.entry(warm.function_id).or_default() += warm.containers as u64;
            }
        }
        let mut per_tenant = HashMap::new();
        if !per_function.is_empty() {
            for f in self.store.list_functions(None).await? {
                if let Some(n) = per_function.get(&f.id) {
                    *per_tenant.entry(f.org).or_default() += n;
                }
            }
        }
        Ok(per_tenant)
    }
}

fn vcd_org_taken() -> PlatformError {
    PlatformError::taken("vcd_org_id", "another tenant already has that vCD org id: each vCD org maps to one tenant")
}

fn tenant_view(t: TenantRow, function_count: i64, user_count: i64) -> TenantView {
    TenantView {
        egress: t.egress_entries(),
        name: t.slug,
        display_name: t.display_name,
        max_functions: t.max_functions,
        max_memory_mb: t.max_memory_mb,
        max_timeout_ms: t.max_timeout_ms,
        max_instances: t.max_instances,
        vcd_org_id: t.vcd_org_id,
        sandbox: t.sandbox,
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
    pub(super) fn limits_of(&self, tenant: &TenantRow) -> Limits {
        Limits {
            max_memory_mb: tenant.max_memory_mb,
            max_timeout_ms: tenant.max_timeout_ms,
            max_instances: tenant.max_instances,
            default_memory_mb: self.config.default_memory_mb.min(tenant.max_memory_mb),
            default_timeout_ms: self.config.default_timeout_ms.min(tenant.max_timeout_ms),
            max_files_bytes: self.config.max_files_bytes(),
        }
    }

    pub(super) async fn validate_tenant_input(&self, input: &TenantInput, creating: bool) -> Result<()> {
        let mut errors = Vec::new();
        if creating {
            if let Err(e) = Name::parse("tenant name", &input.name) {
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
        if let Some(entries) = &input.egress {
            if let Err(wrong) = app::egress::parse_list("egress", entries) {
                errors.extend(wrong);
            }
        }
        if let Some(sandbox) = &input.sandbox {
            if let Err(e) = self.check_sandbox(sandbox).await {
                errors.push(FieldError::new("sandbox", e));
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(PlatformError::Invalid(errors))
        }
    }
}

impl Service {
    /// Whether a tenant may be given this sandbox here: a known one, and for gVisor an engine
    /// that has its runtime. A front without an engine of its own cannot tell and lets the
    /// nodes say so at the first call.
    async fn check_sandbox(&self, sandbox: &str) -> std::result::Result<Sandbox, String> {
        let kind = Sandbox::parse(sandbox).ok_or_else(|| format!("sandbox must be \"runc\" or \"gvisor\" (got {sandbox:?})"))?;
        if kind == Sandbox::Gvisor && self.config.cluster.local_worker {
            let runtime = &self.config.gvisor_runtime;
            let engine = self.calls.gateway().pool().engine();
            match engine.runtimes().await {
                Ok(runtimes) if !runtimes.contains(runtime) => {
                    return Err(format!(
                        "gVisor is not available: the Docker engine has no runtime {runtime:?} (it has {}); \
                         install Debian's runsc and register it with the engine (scripts/setup.sh does both)",
                        runtimes.join(", ")
                    ))
                }
                _ => {}
            }
        }
        Ok(kind)
    }
}

impl Service {
    /// What the paused containers (pre-started spares, stem cells) of this process hold
    /// against the provider's budget for them, as a line of the dashboard.
    fn paused_containers(&self) -> ServiceLink {
        let pool = self.calls.gateway().pool();
        let gauges = pool.gauges();
        let spares: usize = gauges.iter().map(|g| g.prestarted).sum();
        let spares_mb: i64 = gauges.iter().map(|g| g.prestarted_mb).sum();
        let stems = pool.stem_figures();
        let budget = self.config.prestarted_mb;
        let state = if budget > 0 { "up" } else { "off" };
        let detail = if budget > 0 {
            format!(
                "{spares} pre-started spare(s) and {} stem cell(s) hold {} MB of the {budget} MB that VCD_FAAS_PRESTARTED_MB allows",
                stems.cells,
                spares_mb + stems.memory_mb
            )
        } else {
            "VCD_FAAS_PRESTARTED_MB is 0: cold starts start a container (no pre-started spares or stem cells)".to_string()
        };
        ServiceLink { name: "Paused containers".into(), state: state.into(), detail }
    }
}

/// The list as stored: each entry written back in its one spelling.
fn stored_egress(entries: &[String]) -> String {
    let rules = app::egress::parse_list("egress", entries).unwrap_or_default();
    serde_json::to_string(&rules.iter().map(|r| r.to_string()).collect::<Vec<_>>()).expect("strings serialize")
}

#[async_trait]
impl Tenants for Service {
    async fn list_tenants(&self, caller: &Caller) -> Result<Vec<TenantView>> {
        Self::require_provider(caller)?;
        let rows = self.store.list_tenants().await?;
        let figures = self.calls.gateway().metrics().tenant_figures();
        let gauges = self.calls.gateway().pool().gauges();
        let on_nodes = self.containers_on_nodes().await?;
        Ok(rows
            .into_iter()
            .map(|(t, f, u)| {
                let mut view = tenant_view(t, f, u);
                if let Some(fig) = figures.get(&view.name) {
                    (view.calls, view.errors, view.cold_starts, view.mean_ms) = (fig.calls, fig.errors, fig.cold_starts, fig.mean_ms);
                }
                let here: u64 = gauges.iter().filter(|g| g.tenant == view.name).map(|g| (g.busy + g.idle) as u64).sum();
                view.containers = here + on_nodes.get(&view.name).copied().unwrap_or(0);
                view
            })
            .collect())
    }

    async fn service_links(&self, caller: &Caller) -> Result<Vec<ServiceLink>> {
        Self::require_provider(caller)?;
        let mut links = self.links.check().await;
        if self.config.cluster.local_worker {
            links.push(self.paused_containers());
        }
        Ok(links)
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
            egress: stored_egress(input.egress.as_deref().unwrap_or_default()),
            sandbox: input.sandbox.as_deref().and_then(Sandbox::parse).unwrap_or(Sandbox::Runc),
        };
        match self.store.insert_tenant(&row).await {
            Ok(id) => {
                self.audit(caller, Some(&row.slug), "tenant.create", &row.slug, tenant_facts(&row)).await;
                Ok(tenant_view(TenantRow { id, ..row }, 0, 0))
            }
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
        let before = tenant_facts(&t);
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
        if let Some(entries) = &input.egress {
            t.egress = stored_egress(entries);
        }
        if let Some(sandbox) = input.sandbox.as_deref().and_then(Sandbox::parse) {
            t.sandbox = sandbox;
        }
        match self.store.update_tenant(&t).await {
            Ok(()) => {}
            Err(StoreError::Duplicate(Unique::VcdOrgId)) => return Err(vcd_org_taken()),
            Err(e) => return Err(e.into()),
        }
        let after = tenant_facts(&t);
        if after != before {
            self.audit(caller, Some(&t.slug), "tenant.update", &t.slug, format!("{before} → {after}")).await;
        }
        let functions = self.store.count_functions(t.id).await?;
        let users = self.store.list_users(Some(t.id)).await?.len() as i64;
        Ok(tenant_view(t, functions, users))
    }

    async fn delete_tenant(&self, caller: &Caller, org: &str) -> Result<TenantDeletion> {
        Self::require_provider(caller)?;
        let tenant = self.tenant_for(caller, org).await?;
        let functions = self.store.list_functions(Some(tenant.id)).await?;
        // Every route of the tenant answers 404 from here on.
        for f in &functions {
            self.store.set_function_status(f.id, FunctionStatus::Deleting).await?;
            self.calls.gateway().pool().forget(f.id);
        }
        self.calls.directory().routes_changed();
        let mut left = Vec::new();
        for f in &functions {
            if !self.purge_with_retries(f).await {
                left.push(f.name.clone());
            }
        }
        if !left.is_empty() {
            return Err(PlatformError::Unavailable(format!(
                "the containers or images of {} could not be removed yet (the server log says why); the tenant is kept: delete it again",
                left.join(", ")
            )));
        }
        let users = self.store.delete_tenant_row(tenant.id).await?;
        self.calls.directory().callers_changed();
        self.calls.directory().routes_changed();
        let detail = format!("{} function(s), {users} user(s)", functions.len());
        self.audit(caller, Some(org), "tenant.delete", org, detail).await;
        Ok(TenantDeletion { org: org.to_string(), functions: functions.len() as u64, users })
    }
}

/// A tenant's settings in one line, for the audit log.
fn tenant_facts(t: &TenantRow) -> String {
    format!(
        "display name {:?}, max functions {}, memory {} MB, timeout {} ms, instances {}, vCD org {}, sandbox {}, egress {}",
        t.display_name,
        t.max_functions,
        t.max_memory_mb,
        t.max_timeout_ms,
        t.max_instances,
        t.vcd_org_id.as_deref().unwrap_or("none"),
        t.sandbox,
        t.egress
    )
}
