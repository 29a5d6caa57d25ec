//! The extension in vCD and its API filters, kept equal to the functions that serve HTTP: one
//! filter `/api/org/{org}/{name}(/.*)?` per ready function. The extension is the AMQP extension
//! service or the MQTT API extension, as the transport says. Every pass finds (or creates and
//! enables) it, lists its filters, adds the missing and deletes the stale, so differences made
//! while the platform was down are repaired at start-up. Failures are retried with back-off;
//! functions stay callable locally meanwhile.

use super::api_filters::FilterHost;
use super::mqtt_extension::MqttExtension;
use super::rest::VcdClient;
use super::xml::{self, ServiceSpec};
use crate::config::VcdConfig;
use crate::store::{now_ms, FunctionRow, Store};
use app::model::{Registration, Trigger};
use reqwest::Method;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How often a healthy registration is checked against vCD.
const RECHECK: Duration = Duration::from_secs(60);
const LONGEST_PAUSE: Duration = Duration::from_secs(300);

const SERVICE_TYPE: &str = "application/vnd.vmware.admin.service+xml";

pub struct Registrar {
    extension: Extension,
    store: Store,
    /// Per function: its state in vCD as last seen.
    states: Mutex<HashMap<i64, Registration>>,
}

/// What the platform is registered as in vCD.
pub enum Extension {
    /// The AMQP extension service.
    Amqp(Box<ExtensionService>),
    /// The MQTT API extension.
    Mqtt(Arc<MqttExtension>),
}

impl Extension {
    fn client(&self) -> &VcdClient {
        match self {
            Extension::Amqp(service) => &service.client,
            Extension::Mqtt(extension) => &extension.client,
        }
    }

    /// Registers (or finds) the extension; says where its filters live.
    async fn ensure(&self) -> Result<FilterHost, String> {
        match self {
            Extension::Amqp(service) => {
                super::declare_extension_exchange(&service.settings).await?;
                Ok(FilterHost::Legacy { service_href: service.ensure().await? })
            }
            Extension::Mqtt(extension) => {
                let record = extension.ensure().await?;
                extension.filter_host(&record).await
            }
        }
    }
}

/// The platform's extension service record in vCD.
pub struct ExtensionService {
    client: VcdClient,
    settings: VcdConfig,
}

/// The API filter that sends a function's calls to the platform.
pub fn url_pattern(org: &str, name: &str) -> String {
    format!("/api/org/{}/{}(/.*)?", regex_escape(org), regex_escape(name))
}

fn regex_escape(text: &str) -> String {
    text.chars().fold(String::new(), |mut out, c| {
        if "\\.+*?()|[]{}^$".contains(c) {
            out.push('\\');
        }
        out.push(c);
        out
    })
}

/// Functions that get a filter: ready, called over HTTP (a scheduled function keeps its
/// route), not being deleted.
fn wants_filter(f: &FunctionRow) -> bool {
    f.current_version.is_some() && has_route_in_vcd(&f.trigger) && !f.is_deleting()
}

/// Event-triggered functions are reached through notifications, not through vCD's API.
fn has_route_in_vcd(trigger: &Trigger) -> bool {
    !matches!(trigger, Trigger::VcdEvent { .. })
}

impl Registrar {
    pub fn new(store: Store, extension: Extension) -> Registrar {
        Registrar { extension, store, states: Mutex::default() }
    }

    /// Keeps vCD in step: a pass at start, after every change of functions, every minute,
    /// and after a failure with a growing pause.
    pub fn spawn(self: Arc<Self>, mut changes: tokio::sync::watch::Receiver<u64>) {
        tokio::spawn(async move {
            let mut failures = 0u32;
            loop {
                let pause = match self.pass().await {
                    Ok(()) => {
                        failures = 0;
                        RECHECK
                    }
                    Err(e) => {
                        failures += 1;
                        let pause = (Duration::from_secs(1) * 2u32.saturating_pow(failures.min(9) - 1)).min(LONGEST_PAUSE);
                        tracing::warn!(error = e, retry_in_s = pause.as_secs(), "vCD registration failed");
                        self.mark_unregistered_failed(&e, now_ms() + pause.as_millis() as i64);
                        pause
                    }
                };
                tokio::select! {
                    _ = changes.changed() => {}
                    _ = tokio::time::sleep(pause) => {}
                }
            }
        });
    }

    /// What the portal shows for a function.
    pub fn state_of(&self, f: &FunctionRow) -> Registration {
        if !has_route_in_vcd(&f.trigger) {
            return Registration::new("local", "event-triggered: vCD calls it through notifications, not an API filter");
        }
        if let Some(state) = self.states.lock().unwrap().get(&f.id) {
            return state.clone();
        }
        if f.current_version.is_none() {
            Registration::new("pending", "registered in vCD once a version is ready")
        } else {
            Registration::new("pending", "registration in vCD under way")
        }
    }

    fn mark_unregistered_failed(&self, reason: &str, next_retry_at: i64) {
        let mut states = self.states.lock().unwrap();
        for state in states.values_mut().filter(|s| s.state != "registered") {
            state.state = "failed".into();
            state.detail = reason.to_string();
            state.next_retry_at = Some(next_retry_at);
        }
    }

    /// One reconcile pass: service present and enabled, filters equal to ready functions.
    pub async fn pass(&self) -> Result<(), String> {
        let functions = self.store.list_functions(None).await.map_err(|e| format!("database: {e}"))?;
        let wanted: BTreeMap<String, &FunctionRow> =
            functions.iter().filter(|f| wants_filter(f)).map(|f| (url_pattern(&f.org, &f.name), f)).collect();
        {
            // Functions waiting for this pass show as pending until it ends.
            let mut states = self.states.lock().unwrap();
            states.retain(|id, _| functions.iter().any(|f| f.id == *id));
            for f in wanted.values() {
                states.entry(f.id).or_insert_with(|| Registration::new("pending", "registration in vCD under way"));
            }
        }
        let host = self.extension.ensure().await?;
        let client = self.extension.client();
        let filters = host.list(client).await?;

        let mut errors = Vec::new();
        for (pattern, f) in &wanted {
            let result = if filters.contains_key(pattern) {
                Ok(())
            } else {
                host.add(client, pattern).await.map(|_| tracing::info!(pattern, "API filter added in vCD"))
            };
            let state = match result {
                Ok(()) => Registration::new("registered", &format!("vCD API filter {pattern}")),
                Err(e) => {
                    errors.push(format!("{}/{}: {e}", f.org, f.name));
                    Registration { state: "failed".into(), detail: e, next_retry_at: None }
                }
            };
            self.states.lock().unwrap().insert(f.id, state);
        }
        for (pattern, handle) in filters.iter().filter(|(p, _)| !wanted.contains_key(*p)) {
            match host.remove(client, handle).await {
                Ok(_) => tracing::info!(pattern, "stale API filter removed from vCD"),
                Err(e) => errors.push(format!("removing filter {pattern}: {e}")),
            }
        }
        if errors.is_empty() { Ok(()) } else { Err(errors.join("; ")) }
    }
}

impl ExtensionService {
    pub fn new(settings: VcdConfig) -> Result<ExtensionService, String> {
        Ok(ExtensionService { client: VcdClient::new(&settings)?, settings })
    }

    /// The service's record (`href`, `enabled`, …), if registered.
    async fn find(&self) -> Result<Option<HashMap<String, String>>, String> {
        let s = &self.settings;
        let filter = format!("name=={};namespace=={}", s.vcd_service_name, s.vcd_service_namespace);
        let query: String = form_urlencoded::Serializer::new(String::new())
            .append_pair("type", "adminService")
            .append_pair("filter", &filter)
            .finish();
        let answer = self.client.send(Method::GET, &format!("/api/query?{query}"), None).await?;
        let records = xml::records(&answer.body, "AdminServiceRecord")?;
        // vCD filters already; checking again keeps a lax filter from picking another service.
        Ok(records.into_iter().find(|r| {
            r.get("name") == Some(&s.vcd_service_name) && r.get("namespace") == Some(&s.vcd_service_namespace)
        }))
    }

    fn spec(&self, enabled: bool) -> String {
        let s = &self.settings;
        xml::service(&ServiceSpec {
            name: &s.vcd_service_name,
            namespace: &s.vcd_service_namespace,
            enabled,
            routing_key: &s.vcd_routing_key,
            exchange: &s.vcd_exchange,
        })
    }

    /// Finds the service, creating it when missing and enabling or correcting it; returns its href.
    async fn ensure(&self) -> Result<String, String> {
        let s = &self.settings;
        match self.find().await? {
            Some(record) => {
                let href = record.get("href").cloned().ok_or("vCD's service record has no href")?;
                let current = record.get("enabled").map(String::as_str) == Some("true")
                    && record.get("exchange") == Some(&s.vcd_exchange)
                    && record.get("routingKey") == Some(&s.vcd_routing_key);
                if !current {
                    self.client.send(Method::PUT, &href, Some((SERVICE_TYPE, self.spec(true)))).await?;
                    tracing::info!(href, "extension service enabled in vCD");
                }
                Ok(href)
            }
            None => {
                let answer =
                    self.client.send(Method::POST, "/api/admin/extension/service", Some((SERVICE_TYPE, self.spec(true)))).await?;
                let href = xml::records(&answer.body, "Service")?
                    .into_iter()
                    .find_map(|mut r| r.remove("href"))
                    .or(answer.location)
                    .ok_or("vCD created the service but did not say where")?;
                tracing::info!(href, "extension service registered in vCD");
                Ok(href)
            }
        }
    }

    /// Disables and deletes the service; false when there was none.
    pub async fn unregister(&self) -> Result<bool, String> {
        let Some(record) = self.find().await? else { return Ok(false) };
        let href = record.get("href").cloned().ok_or("vCD's service record has no href")?;
        if record.get("enabled").map(String::as_str) != Some("false") {
            self.client.send(Method::PUT, &href, Some((SERVICE_TYPE, self.spec(false)))).await?;
        }
        self.client.send(Method::DELETE, &href, None).await?;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_match_only_the_functions_route() {
        assert_eq!(url_pattern("acme", "hello-world"), "/api/org/acme/hello-world(/.*)?");
        assert_eq!(url_pattern("a.b", "x"), r"/api/org/a\.b/x(/.*)?");
    }
}
