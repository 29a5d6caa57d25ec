//! Types shared by the portal, the REST API and the platform, plus the validation rules both
//! sides use, so the browser and the server can never disagree about what is valid.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A function version's files: relative path → content (rules in `files.rs`).
pub type FileTree = BTreeMap<String, String>;
/// Environment variables: name → value (rules in `env.rs`).
pub type EnvVars = BTreeMap<String, String>;
/// A secrets change: name → new value, or `None` to remove it. Names left out stay as they are.
pub type SecretsChange = BTreeMap<String, Option<String>>;

/// Who is asking. Built by the server from a session or a bearer token, never by the client.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Caller {
    pub user_id: i64,
    pub username: String,
    pub role: Role,
    /// `None` for the provider admin.
    pub tenant_id: Option<i64>,
    /// Tenant slug, or `provider`.
    pub org: String,
    /// What the caller may do: a signed-in user, everything its role allows; a token, its scope.
    #[serde(default = "full_scope")]
    pub scope: TokenScope,
}

fn full_scope() -> TokenScope {
    TokenScope::Full
}

impl Caller {
    pub fn is_provider(&self) -> bool {
        self.role == Role::Provider
    }
    pub fn is_tenant_admin(&self) -> bool {
        self.role == Role::Admin
    }
}

/// An enum stored and sent as fixed strings: `as_str`, `parse`, `ALL`, `Display`, serde and
/// `TryFrom<String>` (how the server reads it from a database column), all from one list.
macro_rules! string_enum {
    ($(#[$meta:meta])* pub enum $name:ident { $($(#[$vmeta:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum $name {
            $($(#[$vmeta])* #[serde(rename = $text)] $variant),+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }

            pub fn parse(s: &str) -> Option<$name> {
                match s {
                    $($text => Some($name::$variant),)+
                    _ => None,
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl TryFrom<String> for $name {
            type Error = String;
            fn try_from(s: String) -> Result<$name, String> {
                $name::parse(&s).ok_or_else(|| format!("{s:?} is not a {}", stringify!($name)))
            }
        }
    };
}

string_enum! {
    pub enum Role {
        Provider = "provider",
        Admin = "admin",
        Developer = "developer",
    }
}

string_enum! {
    /// What an API token may do: `read` only looks (GET), `invoke` also calls functions, `full`
    /// does everything its user's role allows.
    pub enum TokenScope {
        Read = "read",
        Invoke = "invoke",
        Full = "full",
    }
}

impl TokenScope {
    pub fn may_invoke(self) -> bool {
        self != TokenScope::Read
    }
    pub fn may_change(self) -> bool {
        self == TokenScope::Full
    }
}

string_enum! {
    pub enum Language {
        Nodejs = "nodejs",
        Python = "python",
    }
}

string_enum! {
    /// Lifecycle of a function as users see it.
    pub enum FunctionStatus {
        Initializing = "initializing",
        Building = "building",
        Ready = "ready",
        Failed = "failed",
        Deleting = "deleting",
    }
}

string_enum! {
    /// Where one version's build is.
    pub enum BuildStatus {
        Queued = "queued",
        Building = "building",
        Ready = "ready",
        Failed = "failed",
    }
}

impl BuildStatus {
    /// Still to finish: queued or building.
    pub fn is_pending(self) -> bool {
        matches!(self, BuildStatus::Queued | BuildStatus::Building)
    }
}

string_enum! {
    /// The container runtime a tenant's functions run under: the engine's default (runc), or
    /// gVisor's `runsc`, a kernel of its own between the function and the host's.
    pub enum Sandbox {
        Runc = "runc",
        Gvisor = "gvisor",
    }
}

string_enum! {
    /// How a function's containers live.
    pub enum PoolMode {
        /// Reused between calls, kept for an idle time.
        Warm = "warm",
        /// A fresh container for every call.
        PerCall = "per-call",
    }
}

impl Role {
    /// As people read it: the same words in the users list and in the picker.
    pub fn label(self) -> &'static str {
        match self {
            Role::Provider => "Provider admin",
            Role::Admin => "Tenant admin",
            Role::Developer => "Developer",
        }
    }
}

impl Language {
    pub fn label(self) -> &'static str {
        match self {
            Language::Nodejs => "Node.js",
            Language::Python => "Python",
        }
    }
    /// A working function to start from.
    pub fn hello_template(self) -> &'static str {
        match self {
            Language::Nodejs => {
                "// Called once per request.\n\
                 // event: {method, path, query, headers, body}\n\
                 // context: {function, version, tenant, requestId, deadline}\n\
                 module.exports = async (event, context) => {\n\
                 \x20 const name = event.query.name || \"world\";\n\
                 \x20 console.log(`greeting ${name}`);\n\
                 \x20 return { message: `Hello, ${name}!`, function: context.function };\n\
                 };\n"
            }
            Language::Python => {
                "# Called once per request.\n\
                 # event: {method, path, query, headers, body}\n\
                 # context: {function, version, tenant, requestId, deadline}\n\
                 def handle(event, context):\n\
                 \x20   name = event[\"query\"].get(\"name\", \"world\")\n\
                 \x20   print(f\"greeting {name}\")\n\
                 \x20   return {\"message\": f\"Hello, {name}!\", \"function\": context[\"function\"]}\n"
            }
        }
    }
}


#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FunctionView {
    pub name: String,
    pub org: String,
    pub language: Language,
    pub route: String,
    pub status: FunctionStatus,
    /// The serving version, if any.
    pub version: Option<i64>,
    pub latest_version: i64,
    /// The latest version's build.
    pub build_status: BuildStatus,
    /// Why the latest version did not build (the interpreter's error and its line), when it did not.
    pub build_error: Option<String>,
    pub build_log: String,
    pub memory_mb: i64,
    pub timeout_ms: i64,
    pub public: bool,
    pub trigger: Trigger,
    /// A scheduled function's next run, RFC 3339 in its time zone (`2026-12-02T10:05:00+02:00`).
    #[serde(default)]
    pub next_run: Option<String>,
    /// Its state in vCD.
    pub registration: Registration,
    pub mode: PoolMode,
    pub max_instances: i64,
    /// Containers kept running while idle (warm mode); 0 scales to zero.
    pub min_instances: i64,
    /// Calls one container serves at once.
    pub concurrency: i64,
    /// The latest version's entry file (`files` holds it too).
    pub code: String,
    /// The latest version's files by relative path.
    pub files: FileTree,
    /// Plain environment variables of the latest version.
    pub env: EnvVars,
    /// The names of the function's secrets; their values are never shown.
    pub secrets: Vec<String>,
    /// The function's own narrowing of its tenant's outbound allowlist; `None`: the tenant's.
    pub egress: Option<Vec<String>>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// Where a function stands in vCD: `local` (served by the platform only), `pending`,
/// `registered` or `failed` (with the reason and when it is tried again).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Registration {
    pub state: String,
    pub detail: String,
    /// Milliseconds since the epoch.
    pub next_retry_at: Option<i64>,
}

impl Registration {
    pub fn new(state: &str, detail: &str) -> Registration {
        Registration { state: state.into(), detail: detail.into(), next_retry_at: None }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum Trigger {
    Http,
    VcdEvent {
        event: String,
        /// Run only for operations that succeeded (vCD's `operationSuccess`).
        #[serde(default = "successful_only_default")]
        successful_only: bool,
    },
    /// Runs on a 5-field cron pattern (`*/5 * * * *`) read in an IANA time zone; the function
    /// keeps its HTTP route too.
    Schedule {
        cron: String,
        #[serde(default = "timezone_default")]
        timezone: String,
    },
}

fn timezone_default() -> String {
    "UTC".into()
}

fn successful_only_default() -> bool {
    true
}

impl Default for Trigger {
    fn default() -> Self {
        Trigger::Http
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VersionView {
    pub version: i64,
    pub language: Language,
    pub build_status: BuildStatus,
    pub memory_mb: i64,
    pub timeout_ms: i64,
    pub created_at: i64,
    pub built_at: Option<i64>,
}

/// One version with what it was built from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VersionDetail {
    #[serde(flatten)]
    pub version: VersionView,
    /// The entry file.
    pub code: String,
    pub files: FileTree,
    pub env: EnvVars,
    /// The secrets it had, by name.
    pub secrets: Vec<String>,
    pub egress: Option<Vec<String>>,
    pub build_log: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InvocationView {
    pub id: String,
    pub function: String,
    pub version: i64,
    pub trigger: String,
    pub method: String,
    pub path: String,
    pub status_code: Option<i64>,
    pub duration_ms: Option<f64>,
    pub cold: bool,
    pub logs: String,
    pub error: Option<String>,
    pub started_at: i64,
    /// The outbound connections the call opened, allowed or refused.
    #[serde(default)]
    pub connections: Vec<Connection>,
    /// The worker node that ran it; `None` when the server that took it did.
    #[serde(default)]
    pub node: Option<String>,
}

/// What a search of a function's calls asks for; `None`: any.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct InvocationQuery {
    /// A status code (`404`), a class (`2xx`, `4xx`, `5xx`), `success` (below 400), `error`
    /// (5xx, failed or dead-lettered) or `running` (queued or running still).
    pub status: Option<String>,
    pub trigger: Option<String>,
    pub version: Option<i64>,
    /// Started at or after (unix ms).
    pub since: Option<i64>,
    /// Started before (unix ms).
    pub until: Option<i64>,
    pub request_id: Option<String>,
    /// The `next_cursor` of the page before.
    pub cursor: Option<String>,
    pub limit: Option<i64>,
}

/// One page of a search.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct InvocationPage {
    pub invocations: Vec<InvocationView>,
    /// Where the next page starts; `None`: this is the last.
    pub next_cursor: Option<String>,
}

/// A function's call figures over a window, in buckets of equal length (oldest first).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct MetricsView {
    /// `1h`, `24h` or `7d`.
    pub window: String,
    pub bucket_ms: i64,
    /// Where the first bucket starts (unix ms).
    pub since: i64,
    pub buckets: Vec<MetricsBucket>,
    /// The whole window in one.
    pub total: MetricsBucket,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct MetricsBucket {
    /// Unix ms.
    pub start: i64,
    pub calls: u64,
    /// Answered 5xx, failed or dead-lettered.
    pub errors: u64,
    pub cold_starts: u64,
    /// Durations of the calls that ended; `None` when none did.
    pub p50_ms: Option<f64>,
    pub p95_ms: Option<f64>,
    pub p99_ms: Option<f64>,
}

/// One outbound connection a call asked for.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Connection {
    /// The name or address the function asked for.
    pub host: String,
    pub port: u16,
    pub allowed: bool,
    /// Why it was refused or failed; `None` when it was made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Bytes from the function to the destination, and back, by the end of the call.
    pub sent: u64,
    pub received: u64,
}

/// A worker node of the cluster, as the provider sees it (`GET /api/v1/nodes`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NodeView {
    pub name: String,
    /// Where it takes forwarded calls.
    pub address: String,
    /// `up`, `draining` (takes no new calls) or `down` (no heartbeat for 3 s).
    pub state: String,
    pub memory_mb: i64,
    pub used_memory_mb: i64,
    pub cpus: f64,
    pub used_cpus: f64,
    pub containers: i64,
    pub calls_in_flight: i64,
    /// Over the last ten seconds.
    pub calls_per_sec: f64,
    /// Unix ms of its start and of its last heartbeat.
    pub started_at: i64,
    pub heartbeat_at: i64,
}

/// A service the platform depends on, as the provider dashboard shows it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ServiceLink {
    pub name: String,
    /// `up`, `down` (reconnecting or not answering) or `off` (not configured).
    pub state: String,
    /// What it is, or why it is down or off.
    pub detail: String,
}

fn default_sandbox() -> Sandbox {
    Sandbox::Runc
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TenantView {
    pub name: String,
    pub display_name: String,
    pub max_functions: i64,
    pub max_memory_mb: i64,
    pub max_timeout_ms: i64,
    pub max_instances: i64,
    pub vcd_org_id: Option<String>,
    /// Outbound destinations its functions may connect to; empty: none.
    pub egress: Vec<String>,
    /// The runtime its functions' containers run under (set by the provider).
    #[serde(default = "default_sandbox")]
    pub sandbox: Sandbox,
    pub function_count: i64,
    pub user_count: i64,
    /// Since the server started.
    pub calls: u64,
    pub errors: u64,
    pub cold_starts: u64,
    pub mean_ms: f64,
    pub containers: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UserView {
    pub username: String,
    pub org: String,
    pub role: Role,
    pub created_at: i64,
    /// A disabled user cannot sign in; its tokens and sessions stop working.
    #[serde(default)]
    pub disabled: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TokenView {
    pub id: i64,
    pub name: String,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
    /// Unix ms; `None` for a token made before tokens expired.
    #[serde(default)]
    pub expires_at: Option<i64>,
    #[serde(default = "full_scope")]
    pub scope: TokenScope,
}

/// One change someone made: who, when, what.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub id: i64,
    /// Unix ms.
    pub at: i64,
    /// `org/username` of whoever made the change.
    pub actor: String,
    /// The tenant the change is about; `None` for the platform itself (nodes, the provider).
    pub org: Option<String>,
    /// What was done, e.g. `function.update`, `user.disable`, `token.create`.
    pub action: String,
    /// What it was done to: a function, user, token or node name.
    pub target: String,
    /// A short account of the change (never a secret).
    pub detail: String,
}

/// What the portal needs to draw a function form within the tenant's limits.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Limits {
    pub max_memory_mb: i64,
    pub max_timeout_ms: i64,
    pub max_instances: i64,
    pub default_memory_mb: i64,
    pub default_timeout_ms: i64,
    /// The most bytes a function's files may have, unpacked.
    pub max_files_bytes: usize,
}

/// A function as submitted by the create or edit form, or the REST API.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct FunctionSpec {
    pub name: String,
    pub language: String,
    /// The entry file alone: shorthand for `files` of one file.
    #[serde(default)]
    pub code: String,
    /// The whole tree; give this or `code`, not both.
    #[serde(default)]
    pub files: Option<FileTree>,
    /// Plain environment variables; on update, left out keeps them, given replaces them all.
    #[serde(default)]
    pub env: Option<EnvVars>,
    /// Secrets to set (name → value) or remove (name → null); names left out stay.
    #[serde(default)]
    pub secrets: Option<SecretsChange>,
    /// Outbound destinations, inside the tenant's allowlist: on update, left out keeps them,
    /// `null` goes back to the tenant's list, a list (empty: none) replaces them.
    #[serde(default, deserialize_with = "present")]
    pub egress: Option<Option<Vec<String>>>,
    pub memory_mb: Option<i64>,
    pub timeout_ms: Option<i64>,
    pub public: Option<bool>,
    pub trigger: Option<Trigger>,
    /// `warm` (default) or `per-call`.
    pub mode: Option<String>,
    pub max_instances: Option<i64>,
    /// Containers kept running while idle; warm mode only, at most `max_instances`.
    pub min_instances: Option<i64>,
    /// Calls one container serves at once, 1 to [`MAX_CONCURRENCY`].
    pub concurrency: Option<i64>,
    /// On update: the latest version the change was made from. When the function has a newer
    /// one, the update is refused (409) rather than undoing that version.
    #[serde(default)]
    pub expected_version: Option<i64>,
}

impl FunctionSpec {
    /// The files the spec gives: `files`, or `code` as the entry file alone.
    pub fn tree(&self, language: Language) -> FileTree {
        match &self.files {
            Some(files) => files.clone(),
            None => FileTree::from([(language.entry_file().to_string(), self.code.clone())]),
        }
    }
}

/// A field given, even as `null` (`Some(None)`), told apart from one left out (`None`).
pub fn present<'de, D: serde::Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}

/// Most calls one container may serve at once: beyond this a runtime's single process and
/// its memory limit make more containers the better answer.
pub const MAX_CONCURRENCY: i64 = 100;

/// An error tied to one input field, so the form can show it in place.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        FieldError { field: field.into(), message: message.into() }
    }
}

/// A request made with the portal's Test Function panel; what is left out is empty.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TestRequest {
    pub method: String,
    pub path: String,
    pub query: String,
    /// One `Name: value` per line.
    pub headers: String,
    pub body: String,
}

/// A saved test event: a named Test Function request of a function, like Lambda's.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TestEvent {
    pub name: String,
    pub request: TestRequest,
    /// Unix ms.
    pub updated_at: i64,
}

/// Most saved test events a function keeps.
pub const MAX_TEST_EVENTS: i64 = 50;

/// Whether a test event's name and request can be saved; the errors at their fields.
pub fn check_test_event(name: &str, request: &TestRequest) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let name_ok = (1..=64).contains(&name.chars().count())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, ' ' | '.' | '_' | '-'))
        && name.trim() == name;
    if !name_ok {
        errors.push(FieldError::new("name", "name the event with 1–64 letters, digits, spaces, '.', '_' or '-', e.g. \"order created\""));
    }
    const METHODS: [&str; 7] = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"];
    if !METHODS.contains(&request.method.as_str()) {
        errors.push(FieldError::new("method", format!("method must be one of {} (got {:?})", METHODS.join(", "), request.method)));
    }
    let sizes = [("path", &request.path, 2048), ("query", &request.query, 8192), ("headers", &request.headers, 16 * 1024), ("body", &request.body, 256 * 1024)];
    for (field, value, max) in sizes {
        if value.len() > max {
            errors.push(FieldError::new(field, format!("{field} is {} bytes; a saved event keeps at most {max}", value.len())));
        }
    }
    errors
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TestResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
    pub duration_ms: f64,
    pub cold: bool,
    pub logs: String,
}

pub const MAX_NAME_LEN: usize = 63;
pub const MAX_CODE_BYTES: usize = 256 * 1024;

/// Function names and tenant slugs: lowercase letters, digits and `-`, 1–63 characters,
/// starting with a letter and not ending with `-`, so they are safe in URLs, image tags and
/// container names.
pub fn validate_name(kind: &str, name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err(format!("{kind} is required"));
    }
    if name.len() > MAX_NAME_LEN {
        return Err(format!("{kind} must be at most {MAX_NAME_LEN} characters (got {})", name.len()));
    }
    if let Some(bad) = name.chars().find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-')) {
        return Err(format!(
            "{kind} may contain only lowercase letters, digits and '-' (found {bad:?})"
        ));
    }
    if !name.starts_with(|c: char| c.is_ascii_lowercase()) {
        return Err(format!("{kind} must start with a lowercase letter"));
    }
    if name.ends_with('-') {
        return Err(format!("{kind} must not end with '-'"));
    }
    Ok(())
}

/// A function's name or a tenant's name as it stands in routes (`/api/org/{tenant}/{function}`):
/// only `parse` makes one, so a `Name` is always valid.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Name(String);

impl Name {
    /// `kind` names it in the error, e.g. "function name".
    pub fn parse(kind: &str, text: &str) -> Result<Name, String> {
        validate_name(kind, text)?;
        Ok(Name(text.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A login name within an org: only `parse` makes one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Username(String);

impl Username {
    pub fn parse(text: &str) -> Result<Username, String> {
        validate_username(text)?;
        Ok(Username(text.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Usernames: 1–64 of letters, digits, `.`, `_`, `-`, `@`.
pub fn validate_username(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 64 {
        return Err("username must be 1–64 characters".into());
    }
    if !name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@')) {
        return Err("username may contain only letters, digits and . _ - @".into());
    }
    Ok(())
}

pub fn validate_password(password: &str) -> Result<(), String> {
    if password.chars().count() < 8 {
        return Err("password must be at least 8 characters".into());
    }
    if password.chars().count() > 256 {
        return Err("password must be at most 256 characters".into());
    }
    Ok(())
}

/// vCD event types look like `com/vmware/vcloud/event/vm/create`.
pub fn validate_event_type(event: &str) -> Result<(), String> {
    if event.is_empty() || event.len() > 200 {
        return Err("event type must be 1–200 characters, e.g. com/vmware/vcloud/event/vm/create".into());
    }
    if !event.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '-' | '_' | '.')) {
        return Err("event type may contain only letters, digits and / - _ .".into());
    }
    Ok(())
}

/// The pool settings that depend on each other, checked on the values a function will have
/// (on update, a field left out keeps its stored value).
pub fn validate_capacity(mode: &str, min_instances: i64, max_instances: i64) -> Option<FieldError> {
    if min_instances > 0 && mode == "per-call" {
        return Some(FieldError::new("min_instances", "min instances keep warm containers: use the warm mode, or set 0"));
    }
    if min_instances > max_instances {
        return Some(FieldError::new(
            "min_instances",
            format!("min instances ({min_instances}) must not exceed max instances ({max_instances})"),
        ));
    }
    None
}

pub fn route_of(org: &str, name: &str) -> String {
    format!("/api/org/{org}/{name}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_rules() {
        assert!(validate_name("name", "hello-2").is_ok());
        assert!(validate_name("name", "").unwrap_err().contains("required"));
        assert!(validate_name("name", "Hello").unwrap_err().contains("lowercase"));
        assert!(validate_name("name", "2abc").unwrap_err().contains("start with"));
        assert!(validate_name("name", "abc-").unwrap_err().contains("end with"));
        assert!(validate_name("name", "../etc").is_err());
        assert!(validate_name("name", &"a".repeat(64)).unwrap_err().contains("at most 63"));
        assert!(validate_name("name", &"a".repeat(63)).is_ok());
        assert_eq!(Name::parse("function name", "hello-2").unwrap().as_str(), "hello-2");
        assert!(Name::parse("function name", "Hello").unwrap_err().starts_with("function name may contain only lowercase"));
        assert!(Username::parse("ada.l@example").is_ok());
        assert!(Username::parse("").is_err());
    }

}
