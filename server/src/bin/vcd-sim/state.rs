//! What the emulated vCD cell knows: orgs, sessions, extension services and their API filters,
//! plus a short history of front-door calls and notifications for the page and `/sim/state`.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use regex::Regex;
use serde::Serialize;
use uuid::Uuid;

use crate::amqp::Amqp;

pub const SYSTEM_ORG: &str = "System";
const HISTORY: usize = 50;

/// Settings fixed at start (from the CLI).
#[derive(Clone, Debug)]
pub struct Settings {
    pub api_versions: Vec<String>,
    pub legacy_only: bool,
    pub admin_user: String,
    pub admin_password: String,
    pub session_ttl: Duration,
    pub reply_timeout: Duration,
    /// Lifetime of extension tokens; `None`: long-lived (`expirationTimeUtc: null`).
    pub token_ttl: Option<Duration>,
}

/// Deterministic ids, so a README can tell a person which org URN to paste into the portal.
pub fn org_uuid(name: &str) -> Uuid {
    Uuid::new_v5(&Uuid::NAMESPACE_URL, format!("vcd-sim:org:{name}").as_bytes())
}

pub fn user_uuid(user: &str, org: &str) -> Uuid {
    Uuid::new_v5(&Uuid::NAMESPACE_URL, format!("vcd-sim:user:{user}@{org}").as_bytes())
}

pub fn org_urn(name: &str) -> String {
    format!("urn:vcloud:org:{}", org_uuid(name))
}

pub fn user_urn(user: &str, org: &str) -> String {
    format!("urn:vcloud:user:{}", user_uuid(user, org))
}

#[derive(Clone, Debug, Serialize)]
pub struct Org {
    pub name: String,
    pub id: String,
}

/// Who a request runs as: what the front door puts in the security context.
#[derive(Clone, Debug)]
pub struct Caller {
    pub user: String,
    pub org: String,
}

impl Caller {
    pub fn is_system(&self) -> bool {
        self.org == SYSTEM_ORG
    }
    pub fn user_urn(&self) -> String {
        user_urn(&self.user, &self.org)
    }
    pub fn org_urn(&self) -> String {
        org_urn(&self.org)
    }
}

struct Session {
    caller: Caller,
    last_used: Instant,
    expired: bool,
}

/// The fields of a `vmext:Service` that the sim keeps.
#[derive(Clone, Debug)]
pub struct ServiceSpec {
    pub name: String,
    pub description: Option<String>,
    pub namespace: String,
    pub enabled: bool,
    pub authorization_enabled: bool,
    pub routing_key: String,
    pub priority: i32,
    pub exchange: String,
    pub vendor: Option<String>,
}

#[derive(Clone, Debug)]
pub struct Service {
    pub uuid: Uuid,
    pub spec: ServiceSpec,
    /// Creation order, to break Priority ties deterministically.
    pub seq: u64,
    /// Set for an MQTT API extension (`/cloudapi/extensions/api`): its vendor and version.
    pub mqtt: Option<MqttIdentity>,
}

#[derive(Clone, Debug)]
pub struct MqttIdentity {
    pub vendor: String,
    pub version: String,
}

impl Service {
    /// `vendor/name/version` of an MQTT extension.
    pub fn triple(&self) -> Option<String> {
        self.mqtt.as_ref().map(|m| format!("{}/{}/{}", m.vendor, self.spec.name, m.version))
    }

    /// `urn:vcloud:extension-api:vendor:name:version` of an MQTT extension.
    pub fn extension_urn(&self) -> Option<String> {
        self.mqtt.as_ref().map(|m| format!("urn:vcloud:extension-api:{}:{}:{}", m.vendor, self.spec.name, m.version))
    }

    /// (monitor, respond): vCD → extension and extension → vCD.
    pub fn topics(&self) -> Option<(String, String)> {
        let base = format!("topic/extension/{}", self.triple()?);
        Some((format!("{base}/ext"), format!("{base}/vcd")))
    }
}

/// An extension token (`/cloudapi/1.0.0/tokens`): the MQTT password of its extension.
#[derive(Clone, Debug)]
pub struct ExtensionToken {
    pub id: Uuid,
    pub name: String,
    pub token: String,
    /// The extension's `vendor/name/version`.
    pub owner: String,
    pub service: Uuid,
    pub expires_at: Option<time::OffsetDateTime>,
    pub seq: u64,
}

#[derive(Clone, Debug)]
pub struct Filter {
    pub id: Uuid,
    pub service: Uuid,
    pub url_pattern: String,
    pub regex: Regex,
}

#[derive(Clone, Debug, Serialize)]
pub struct CallRecord {
    pub method: String,
    pub path: String,
    pub org: String,
    pub service: Option<String>,
    pub status: u16,
    pub ms: u128,
}

#[derive(Clone, Debug, Serialize)]
pub struct NotificationRecord {
    pub event_id: String,
    pub r#type: String,
    pub org: String,
    pub routing_key: String,
}

#[derive(Default)]
struct Inner {
    orgs: BTreeMap<String, Org>,
    sessions: HashMap<String, Session>,
    services: BTreeMap<Uuid, Service>,
    filters: BTreeMap<Uuid, Filter>,
    calls: VecDeque<CallRecord>,
    notifications: VecDeque<NotificationRecord>,
    next_seq: u64,
    tokens: BTreeMap<Uuid, ExtensionToken>,
    tokens_issued: u64,
    /// Connections to `/messaging/mqtt`, by number: how each logged in, and how to end it.
    mqtt_links: HashMap<u64, (MqttLogin, Arc<tokio::sync::Notify>)>,
    next_link: u64,
    logins_ended: u64,
}

/// How a connection to `/messaging/mqtt` logged in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MqttLogin {
    /// An extension with one of its tokens.
    Extension { token: Uuid },
    /// A user with a session's token.
    Session { token: String },
}

#[derive(Clone)]
pub struct SimState {
    pub settings: Arc<Settings>,
    inner: Arc<Mutex<Inner>>,
    pub amqp: Amqp,
    /// vCD's MQTT broker, when the sim plays one.
    pub mqtt: Option<crate::mqtt::Mqtt>,
    /// The address the listener is bound to (the front door's localAddr/localPort).
    pub local_addr: std::net::SocketAddr,
}

/// Why a token was refused; both answer 401, the message differs.
pub enum SessionError {
    Unknown,
    Expired,
}

/// A rule of the service registry was broken; the REST layer turns it into a 400/404.
#[derive(Debug)]
pub enum RegistryError {
    NotFound(String),
    Invalid(String),
}

fn push_bounded<T>(q: &mut VecDeque<T>, item: T) {
    if q.len() == HISTORY {
        q.pop_front();
    }
    q.push_back(item);
}

impl SimState {
    pub fn new(settings: Settings, orgs: &[String], amqp: Amqp, mqtt: Option<crate::mqtt::Mqtt>, local_addr: std::net::SocketAddr) -> Self {
        let mut inner = Inner::default();
        for name in std::iter::once(SYSTEM_ORG).chain(orgs.iter().map(String::as_str)) {
            inner.orgs.insert(name.to_string(), Org { name: name.to_string(), id: org_urn(name) });
        }
        SimState { settings: Arc::new(settings), inner: Arc::new(Mutex::new(inner)), amqp, mqtt, local_addr }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves plain data behind; keep serving.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn orgs(&self) -> Vec<Org> {
        self.lock().orgs.values().cloned().collect()
    }

    /// Finds an org by name or by its URN.
    pub fn find_org(&self, name_or_urn: &str) -> Option<Org> {
        self.lock().orgs.values().find(|o| o.name == name_or_urn || o.id == name_or_urn).cloned()
    }

    /// Checks `user@org:password`. Provider logins need the admin credentials; a tenant user of an
    /// existing org may use any non-empty password (the sim has no user directory).
    pub fn check_credentials(&self, user: &str, org: &str, password: &str) -> Result<Caller, String> {
        if user.is_empty() {
            return Err("empty user name".into());
        }
        if org == SYSTEM_ORG {
            if user != self.settings.admin_user || password != self.settings.admin_password {
                return Err("wrong user name or password for the System org".into());
            }
        } else {
            if !self.lock().orgs.contains_key(org) {
                return Err(format!("org '{org}' does not exist"));
            }
            if password.is_empty() {
                return Err("empty password".into());
            }
        }
        Ok(Caller { user: user.to_string(), org: org.to_string() })
    }

    pub fn new_session(&self, caller: Caller) -> String {
        let token = Uuid::new_v4().simple().to_string();
        let session = Session { caller, last_used: Instant::now(), expired: false };
        self.lock().sessions.insert(token.clone(), session);
        token
    }

    /// Looks a token up and, if it is alive, counts this as use (sliding expiry).
    pub fn touch_session(&self, token: &str) -> Result<Caller, SessionError> {
        let ttl = self.settings.session_ttl;
        let mut inner = self.lock();
        let Some(session) = inner.sessions.get_mut(token) else { return Err(SessionError::Unknown) };
        if session.expired || session.last_used.elapsed() > ttl {
            inner.sessions.remove(token);
            return Err(SessionError::Expired);
        }
        session.last_used = Instant::now();
        Ok(session.caller.clone())
    }

    pub fn end_session(&self, token: &str) {
        self.lock().sessions.remove(token);
    }

    pub fn expire_sessions(&self) -> usize {
        let count = {
            let mut inner = self.lock();
            inner.sessions.values_mut().for_each(|s| s.expired = true);
            inner.sessions.len()
        };
        // A session's MQTT connections die with it (vcd-mqtt.md §M3).
        self.end_mqtt_links(|login| matches!(login, MqttLogin::Session { .. }));
        count
    }

    pub fn services(&self) -> Vec<Service> {
        let mut all: Vec<Service> = self.lock().services.values().cloned().collect();
        all.sort_by_key(|s| s.seq);
        all
    }

    pub fn service(&self, id: Uuid) -> Option<Service> {
        self.lock().services.get(&id).cloned()
    }

    pub fn filters_of(&self, service: Uuid) -> Vec<Filter> {
        self.lock().filters.values().filter(|f| f.service == service).cloned().collect()
    }

    pub fn all_filters(&self) -> Vec<Filter> {
        self.lock().filters.values().cloned().collect()
    }

    pub fn filter(&self, id: Uuid) -> Option<Filter> {
        self.lock().filters.get(&id).cloned()
    }

    /// Registers a service with its initial filters, all or nothing.
    pub fn create_service(&self, spec: ServiceSpec, patterns: Vec<String>, mqtt: Option<MqttIdentity>) -> Result<Service, RegistryError> {
        let compiled = patterns.iter().map(|p| compile_pattern(p)).collect::<Result<Vec<_>, _>>()?;
        let mut inner = self.lock();
        if let Some(other) = inner.services.values().find(|s| s.spec.namespace == spec.namespace) {
            return Err(RegistryError::Invalid(format!(
                "namespace '{}' is already used by service '{}'; namespaces must be unique",
                spec.namespace, other.spec.name
            )));
        }
        inner.next_seq += 1;
        let service = Service { uuid: Uuid::new_v4(), spec, seq: inner.next_seq, mqtt };
        for (pattern, regex) in patterns.into_iter().zip(compiled) {
            let id = Uuid::new_v4();
            inner.filters.insert(id, Filter { id, service: service.uuid, url_pattern: pattern, regex });
        }
        inner.services.insert(service.uuid, service.clone());
        Ok(service)
    }

    pub fn update_service(&self, id: Uuid, spec: ServiceSpec) -> Result<Service, RegistryError> {
        let mut inner = self.lock();
        let Some(service) = inner.services.get_mut(&id) else {
            return Err(RegistryError::NotFound(format!("no extension service with id {id}")));
        };
        if service.spec.namespace != spec.namespace {
            return Err(RegistryError::Invalid(format!(
                "Namespace cannot be changed (it is '{}', the request says '{}')",
                service.spec.namespace, spec.namespace
            )));
        }
        // The name attribute and the Namespace are fixed at creation.
        let name = service.spec.name.clone();
        service.spec = ServiceSpec { name, ..spec };
        Ok(service.clone())
    }

    pub fn delete_service(&self, id: Uuid) -> Result<(), RegistryError> {
        let mut inner = self.lock();
        let Some(service) = inner.services.get(&id) else {
            return Err(RegistryError::NotFound(format!("no extension service with id {id}")));
        };
        if service.spec.enabled {
            return Err(RegistryError::Invalid(format!(
                "service '{}' is enabled: disable the service first, then delete it",
                service.spec.name
            )));
        }
        inner.services.remove(&id);
        inner.filters.retain(|_, f| f.service != id);
        // An MQTT extension's tokens go with it.
        inner.tokens.retain(|_, t| t.service != id);
        Ok(())
    }

    /// The MQTT extension with this URN.
    pub fn mqtt_extension(&self, urn: &str) -> Option<Service> {
        self.lock().services.values().find(|s| s.extension_urn().as_deref() == Some(urn)).cloned()
    }

    pub fn add_token(&self, mut token: ExtensionToken) -> ExtensionToken {
        let mut inner = self.lock();
        inner.tokens_issued += 1;
        token.seq = inner.tokens_issued;
        inner.tokens.insert(token.id, token.clone());
        token
    }

    pub fn tokens(&self) -> Vec<ExtensionToken> {
        self.lock().tokens.values().cloned().collect()
    }

    pub fn tokens_issued(&self) -> u64 {
        self.lock().tokens_issued
    }

    pub fn remove_token(&self, id: Uuid) -> Option<ExtensionToken> {
        self.lock().tokens.remove(&id)
    }

    /// The unexpired token `password` of the extension `vendor/name/version`.
    pub fn check_token(&self, owner: &str, password: &str) -> Option<Uuid> {
        let now = time::OffsetDateTime::now_utc();
        let inner = self.lock();
        let token = inner.tokens.values().find(|t| t.owner == owner && t.token == password)?;
        token.expires_at.is_none_or(|e| e > now).then_some(token.id)
    }

    /// Registers a live `/messaging/mqtt` connection; `end` is notified to close it.
    pub fn add_mqtt_link(&self, login: MqttLogin, end: Arc<tokio::sync::Notify>) -> u64 {
        let mut inner = self.lock();
        inner.next_link += 1;
        let id = inner.next_link;
        inner.mqtt_links.insert(id, (login, end));
        id
    }

    pub fn remove_mqtt_link(&self, id: u64) {
        self.lock().mqtt_links.remove(&id);
    }

    /// Closes the connections whose login is no longer valid; returns how many.
    pub fn end_mqtt_links(&self, invalid: impl Fn(&MqttLogin) -> bool) -> usize {
        let mut inner = self.lock();
        let ended: Vec<u64> = inner.mqtt_links.iter().filter(|(_, (login, _))| invalid(login)).map(|(id, _)| *id).collect();
        for id in &ended {
            if let Some((_, end)) = inner.mqtt_links.remove(id) {
                end.notify_one();
            }
        }
        inner.logins_ended += ended.len() as u64;
        ended.len()
    }

    /// Connections closed because their login ran out.
    pub fn logins_ended(&self) -> u64 {
        self.lock().logins_ended
    }

    /// Removes and returns the tokens whose time is up.
    pub fn take_expired_tokens(&self) -> Vec<ExtensionToken> {
        let now = time::OffsetDateTime::now_utc();
        let mut inner = self.lock();
        let expired: Vec<Uuid> = inner.tokens.values().filter(|t| t.expires_at.is_some_and(|e| e <= now)).map(|t| t.id).collect();
        expired.iter().filter_map(|id| inner.tokens.remove(id)).collect()
    }

    pub fn add_filter(&self, service: Uuid, pattern: String) -> Result<Filter, RegistryError> {
        let regex = compile_pattern(&pattern)?;
        let mut inner = self.lock();
        if !inner.services.contains_key(&service) {
            return Err(RegistryError::NotFound(format!("no extension service with id {service}")));
        }
        let filter = Filter { id: Uuid::new_v4(), service, url_pattern: pattern, regex };
        inner.filters.insert(filter.id, filter.clone());
        Ok(filter)
    }

    pub fn delete_filter(&self, id: Uuid) -> Result<(), RegistryError> {
        match self.lock().filters.remove(&id) {
            Some(_) => Ok(()),
            None => Err(RegistryError::NotFound(format!("no API filter with id {id}"))),
        }
    }

    /// The enabled service whose filter fully matches `path`; the highest Priority wins, then the
    /// oldest service.
    pub fn route(&self, path: &str) -> Option<Service> {
        let inner = self.lock();
        inner
            .filters
            .values()
            .filter(|f| f.regex.is_match(path))
            .filter_map(|f| inner.services.get(&f.service))
            .filter(|s| s.spec.enabled)
            .max_by(|a, b| a.spec.priority.cmp(&b.spec.priority).then(b.seq.cmp(&a.seq)))
            .cloned()
    }

    pub fn record_call(&self, call: CallRecord) {
        push_bounded(&mut self.lock().calls, call);
    }

    pub fn calls(&self) -> Vec<CallRecord> {
        self.lock().calls.iter().rev().cloned().collect()
    }

    pub fn record_notification(&self, n: NotificationRecord) {
        push_bounded(&mut self.lock().notifications, n);
    }

    pub fn notifications(&self) -> Vec<NotificationRecord> {
        self.lock().notifications.iter().rev().cloned().collect()
    }
}

/// vCD uses Java's `Pattern.matches()`: the whole path must match, so anchor the pattern.
pub fn compile_pattern(pattern: &str) -> Result<Regex, RegistryError> {
    if pattern.is_empty() {
        return Err(RegistryError::Invalid("UrlPattern is empty".into()));
    }
    if pattern.chars().count() > 1024 {
        return Err(RegistryError::Invalid(format!(
            "UrlPattern is {} characters long; at most 1024 are allowed",
            pattern.chars().count()
        )));
    }
    Regex::new(&format!("^(?:{pattern})$"))
        .map_err(|e| RegistryError::Invalid(format!("UrlPattern '{pattern}' is not a valid regular expression: {e}")))
}
