//! Server functions: the portal's calls into the platform. Each resolves the signed-in caller
//! from the session and goes through the same `Platform` as the REST API.

use crate::model::*;
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

/// The answer to a form: errors to show at their fields, or a message.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct FormOutcome {
    pub errors: Vec<FieldError>,
    /// What went well.
    pub message: Option<String>,
    /// What went wrong, when it is not about one field.
    pub error: Option<String>,
    /// A secret to show once (a new API token).
    pub secret: Option<String>,
    /// The version a save made: the edit form's next save is made from it.
    pub version: Option<i64>,
}

impl FormOutcome {
    pub fn error_for(&self, field: &str) -> Option<String> {
        self.errors.iter().find(|e| e.field == field).map(|e| e.message.clone())
    }

    /// The errors of a list field and of its entries (`field/<index>`), one per line.
    pub fn list_errors(&self, field: &str) -> Option<String> {
        let entry = format!("{field}/");
        let messages: Vec<&str> =
            self.errors.iter().filter(|e| e.field == field || e.field.starts_with(&entry)).map(|e| e.message.as_str()).collect();
        (!messages.is_empty()).then(|| messages.join("\n"))
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DetailsView {
    pub function: FunctionView,
    pub versions: Vec<VersionView>,
    /// A scheduled function's last runs (its calls with trigger `schedule`), newest first.
    #[serde(default)]
    pub scheduled_runs: Vec<InvocationView>,
}

#[cfg(feature = "ssr")]
mod backend {
    use super::FormOutcome;
    use crate::model::*;
    use crate::platform::{PlatformError, SharedPlatform};
    use leptos::prelude::*;
    use tower_sessions::Session;

    pub const USER_KEY: &str = "user_id";

    /// A platform error as the server function's answer, with the status of its kind (a wrong
    /// password is 401, not 500).
    pub fn fail(e: PlatformError) -> ServerFnError {
        if let (Some(response), Ok(status)) = (use_context::<leptos_axum::ResponseOptions>(), http::StatusCode::from_u16(e.status())) {
            response.set_status(status);
            if let PlatformError::RateLimited { retry_after_secs, .. } = &e {
                response.insert_header(http::header::RETRY_AFTER, (*retry_after_secs).into());
            }
        }
        ServerFnError::new(e.to_string())
    }

    /// The address the request came from, when the server knows it.
    pub async fn client_address() -> Option<std::net::IpAddr> {
        let info = leptos_axum::extract::<axum::extract::ConnectInfo<std::net::SocketAddr>>().await.ok()?;
        Some(info.0.ip())
    }

    pub async fn session() -> Result<Session, ServerFnError> {
        leptos_axum::extract::<Session>().await.map_err(|e| ServerFnError::new(format!("session unavailable: {e}")))
    }

    pub async fn signed_in() -> Result<Option<(SharedPlatform, Caller)>, ServerFnError> {
        let platform = expect_context::<SharedPlatform>();
        let user_id: Option<i64> = session().await?.get(USER_KEY).await.map_err(|e| ServerFnError::new(e.to_string()))?;
        let Some(user_id) = user_id else { return Ok(None) };
        let caller = platform.caller_by_user_id(user_id).await.map_err(fail)?;
        Ok(caller.map(|c| (platform, c)))
    }

    pub async fn caller() -> Result<(SharedPlatform, Caller), ServerFnError> {
        signed_in().await?.ok_or_else(|| ServerFnError::new("you are not signed in; sign in at /login"))
    }

    /// Field errors go back to the form; anything else is a message above it.
    pub fn outcome(e: PlatformError) -> FormOutcome {
        if e.field_errors().is_empty() {
            FormOutcome { error: Some(e.to_string()), ..Default::default() }
        } else {
            FormOutcome { errors: e.field_errors().to_vec(), ..Default::default() }
        }
    }

    /// A number typed into a form field; empty means "not given".
    pub fn number(field: &str, label: &str, text: &str, errors: &mut Vec<FieldError>) -> Option<i64> {
        let text = text.trim();
        if text.is_empty() {
            return None;
        }
        match text.parse() {
            Ok(n) => Some(n),
            Err(_) => {
                errors.push(FieldError::new(field, format!("{label} must be a whole number (got {text:?})")));
                None
            }
        }
    }
}

#[server]
pub async fn whoami() -> Result<Option<Caller>, ServerFnError> {
    Ok(backend::signed_in().await?.map(|(_, c)| c))
}

#[server]
pub async fn login(org: String, username: String, password: String) -> Result<(), ServerFnError> {
    let platform = expect_context::<crate::platform::SharedPlatform>();
    let from = backend::client_address().await;
    let caller = platform.authenticate(org.trim(), username.trim(), &password, from).await.map_err(backend::fail)?;
    let session = backend::session().await?;
    // A new id at login, so a session id planted before sign-in is worthless.
    session.cycle_id().await.map_err(|e| ServerFnError::new(e.to_string()))?;
    session.insert(backend::USER_KEY, caller.user_id).await.map_err(|e| ServerFnError::new(e.to_string()))?;
    leptos_axum::redirect("/");
    Ok(())
}

#[server]
pub async fn logout() -> Result<(), ServerFnError> {
    let session = backend::session().await?;
    session.flush().await.map_err(|e| ServerFnError::new(e.to_string()))?;
    leptos_axum::redirect("/login");
    Ok(())
}

#[server]
pub async fn list_functions() -> Result<Vec<FunctionView>, ServerFnError> {
    let (platform, caller) = backend::caller().await?;
    platform.list_functions(&caller).await.map_err(backend::fail)
}

/// The function's page; `None` when there is no such function (or the caller may not see it),
/// told apart from a failure to load it.
/// A function's figures over a window (`1h`, `24h`, `7d`), from the call records.
#[server]
pub async fn function_metrics(org: String, name: String, window: String) -> Result<crate::model::MetricsView, ServerFnError> {
    let (platform, caller) = backend::caller().await?;
    platform.function_metrics(&caller, &org, &name, &window).await.map_err(backend::fail)
}

/// A page of a function's calls that pass the query.
#[server]
pub async fn search_invocations(org: String, name: String, query: crate::model::InvocationQuery) -> Result<crate::model::InvocationPage, ServerFnError> {
    let (platform, caller) = backend::caller().await?;
    platform.search_invocations(&caller, &org, &name, query).await.map_err(backend::fail)
}

#[server]
pub async fn function_details(org: String, name: String) -> Result<Option<DetailsView>, ServerFnError> {
    let (platform, caller) = backend::caller().await?;
    let function = match platform.get_function(&caller, &org, &name).await {
        Ok(function) => function,
        Err(crate::platform::PlatformError::NotFound(_)) => return Ok(None),
        Err(e) => return Err(backend::fail(e)),
    };
    let versions = platform.list_versions(&caller, &org, &name).await.map_err(backend::fail)?;
    let scheduled_runs = match function.trigger {
        crate::model::Trigger::Schedule { .. } => {
            platform.list_invocations(&caller, &org, &name, 10, Some("schedule")).await.map_err(backend::fail)?
        }
        _ => Vec::new(),
    };
    Ok(Some(DetailsView { function, versions, scheduled_runs }))
}

/// The function as stored now, for the edit form.
#[server]
pub async fn get_function(org: String, name: String) -> Result<FunctionView, ServerFnError> {
    let (platform, caller) = backend::caller().await?;
    platform.get_function(&caller, &org, &name).await.map_err(backend::fail)
}

/// One version with its files, for the function page's file viewer and comparison.
#[server]
pub async fn version_files(org: String, name: String, version: i64) -> Result<VersionDetail, ServerFnError> {
    let (platform, caller) = backend::caller().await?;
    platform.get_version(&caller, &org, &name, version).await.map_err(backend::fail)
}

#[server]
pub async fn my_limits() -> Result<Limits, ServerFnError> {
    let (platform, caller) = backend::caller().await?;
    platform.limits(&caller, &caller.org).await.map_err(backend::fail)
}

/// Reads the function form's fields into a spec, noting fields that are not numbers.
#[cfg(feature = "ssr")]
fn spec_from_form(form: FunctionForm) -> (FunctionSpec, Vec<FieldError>) {
    let mut errors = Vec::new();
    let memory_mb = backend::number("memory_mb", "memory", &form.memory_mb, &mut errors);
    let timeout_ms = backend::number("timeout_ms", "timeout", &form.timeout_ms, &mut errors);
    let max_instances = backend::number("max_instances", "max instances", &form.max_instances, &mut errors);
    let min_instances = backend::number("min_instances", "min instances", &form.min_instances, &mut errors);
    let concurrency = backend::number("concurrency", "concurrency", &form.concurrency, &mut errors);
    let trigger = match form.trigger.as_str() {
        "vcd-event" => crate::model::Trigger::VcdEvent {
            event: form.event.trim().to_string(),
            successful_only: form.successful_only.is_some(),
        },
        "schedule" => crate::model::Trigger::Schedule { cron: form.cron.trim().to_string(), timezone: form.timezone.trim().to_string() },
        _ => crate::model::Trigger::Http,
    };
    let files = match form.files.trim() {
        "" => None,
        json => match serde_json::from_str::<FileTree>(json) {
            Ok(tree) => Some(tree),
            Err(e) => {
                errors.push(FieldError::new("files", format!("the files could not be read ({e}); reload the page")));
                None
            }
        },
    };
    let env = json_field::<EnvVars>(&form.env, "env", "the variables", &mut errors);
    let secrets = json_field::<SecretsChange>(&form.secrets, "secrets", "the secrets", &mut errors);
    let spec = FunctionSpec {
        name: form.name.trim().to_string(),
        language: form.language,
        // A textarea submits CRLF line endings (HTML forms do): files keep Unix ones.
        code: form.code.replace("\r\n", "\n"),
        files,
        env,
        secrets,
        egress: form.egress.map(|text| Some(crate::egress::entries_of_text(&text)).filter(|list| !list.is_empty())),
        memory_mb,
        timeout_ms,
        mode: Some(form.mode).filter(|m| !m.is_empty()),
        max_instances,
        min_instances,
        concurrency,
        public: Some(form.public.is_some()),
        trigger: Some(trigger),
        expected_version: backend::number("expected_version", "the version this edit was made from", &form.expected_version, &mut errors),
    };
    (spec, errors)
}

/// A form field the page fills with JSON; empty means "not given" (a page not yet hydrated
/// sends nothing, so nothing changes).
#[cfg(feature = "ssr")]
fn json_field<T: serde::de::DeserializeOwned>(text: &str, field: &str, what: &str, errors: &mut Vec<FieldError>) -> Option<T> {
    match text.trim() {
        "" => None,
        json => serde_json::from_str(json)
            .map_err(|e| errors.push(FieldError::new(field, format!("{what} could not be read ({e}); reload the page"))))
            .ok(),
    }
}

/// With a field that is not a number, the form shows every other field's error too, not only
/// that one (the platform checks nothing until the numbers parse).
#[cfg(feature = "ssr")]
async fn with_spec_errors(
    platform: &crate::platform::SharedPlatform,
    caller: &Caller,
    spec: &FunctionSpec,
    mut errors: Vec<FieldError>,
    creating: bool,
) -> FormOutcome {
    if let Ok(limits) = platform.limits(caller, &caller.org).await {
        for e in crate::validation::validate_spec(spec, &limits, creating) {
            if !errors.iter().any(|known| known.field == e.field) {
                errors.push(e);
            }
        }
    }
    FormOutcome { errors, ..Default::default() }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct FunctionForm {
    pub name: String,
    pub language: String,
    #[serde(default)]
    pub code: String,
    /// The whole tree as a JSON object of path → content (the editor's file tabs); when
    /// given, `code` is left empty.
    #[serde(default)]
    pub files: String,
    /// The variables as a JSON object of name → value (all of them); empty keeps them.
    #[serde(default)]
    pub env: String,
    /// Secret changes as a JSON object of name → value, or null to remove; empty changes none.
    #[serde(default)]
    pub secrets: String,
    #[serde(default)]
    pub memory_mb: String,
    #[serde(default)]
    pub timeout_ms: String,
    #[serde(default)]
    pub mode: String,
    #[serde(default)]
    pub max_instances: String,
    #[serde(default)]
    pub min_instances: String,
    #[serde(default)]
    pub concurrency: String,
    #[serde(default)]
    pub trigger: String,
    #[serde(default)]
    pub event: String,
    #[serde(default)]
    pub successful_only: Option<String>,
    /// Schedule triggers: the 5-field pattern and the IANA time zone.
    #[serde(default)]
    pub cron: String,
    #[serde(default)]
    pub timezone: String,
    #[serde(default)]
    pub public: Option<String>,
    /// Outbound destinations, one per line; empty: the tenant's list. Left out (a form without
    /// the field) keeps them.
    #[serde(default)]
    pub egress: Option<String>,
    /// The latest version when the edit form was loaded or last saved.
    #[serde(default)]
    pub expected_version: String,
}

#[server]
pub async fn create_function(form: FunctionForm) -> Result<FormOutcome, ServerFnError> {
    let (platform, caller) = backend::caller().await?;
    let (spec, errors) = spec_from_form(form);
    if !errors.is_empty() {
        return Ok(with_spec_errors(&platform, &caller, &spec, errors, true).await);
    }
    match platform.create_function(&caller, spec).await {
        Ok(f) => {
            leptos_axum::redirect(&format!("/functions/{}/{}", f.org, f.name));
            Ok(FormOutcome { message: Some(format!("{} created", f.name)), ..Default::default() })
        }
        Err(e) => Ok(backend::outcome(e)),
    }
}

#[server]
pub async fn update_function(org: String, form: FunctionForm) -> Result<FormOutcome, ServerFnError> {
    let (platform, caller) = backend::caller().await?;
    let name = form.name.clone();
    let (spec, errors) = spec_from_form(form);
    if !errors.is_empty() {
        return Ok(with_spec_errors(&platform, &caller, &spec, errors, false).await);
    }
    match platform.update_function(&caller, &org, &name, spec).await {
        Ok(f) => Ok(FormOutcome {
            message: Some(format!(
                "version {} is building; version {} keeps serving until it is ready",
                f.latest_version,
                f.version.map(|v| v.to_string()).unwrap_or_else(|| "–".into())
            )),
            version: Some(f.latest_version),
            ..Default::default()
        }),
        Err(e) => Ok(backend::outcome(e)),
    }
}

/// Builds a new version from an earlier one (after a broken update, say).
#[server]
pub async fn restore_version(org: String, name: String, version: i64) -> Result<FormOutcome, ServerFnError> {
    let (platform, caller) = backend::caller().await?;
    match platform.restore_version(&caller, &org, &name, version).await {
        Ok(f) => Ok(FormOutcome {
            message: Some(format!(
                "version {} is building from version {version}; the Edit form now holds its code",
                f.latest_version
            )),
            version: Some(f.latest_version),
            ..Default::default()
        }),
        Err(e) => Ok(backend::outcome(e)),
    }
}

#[server]
pub async fn delete_function(org: String, name: String, confirm: String) -> Result<FormOutcome, ServerFnError> {
    let (platform, caller) = backend::caller().await?;
    if confirm.trim() != name {
        return Ok(FormOutcome {
            errors: vec![FieldError::new("confirm", format!("type {name:?} to confirm"))],
            ..Default::default()
        });
    }
    match platform.delete_function(&caller, &org, &name).await {
        Ok(()) => {
            leptos_axum::redirect("/");
            Ok(FormOutcome { message: Some(format!("{name} deleted")), ..Default::default() })
        }
        Err(e) => Ok(backend::outcome(e)),
    }
}

#[server]
pub async fn test_function(org: String, name: String, request: TestRequest) -> Result<TestResponse, ServerFnError> {
    let (platform, caller) = backend::caller().await?;
    platform.test_function(&caller, &org, &name, request).await.map_err(backend::fail)
}

#[server]
pub async fn list_test_events(org: String, name: String) -> Result<Vec<TestEvent>, ServerFnError> {
    let (platform, caller) = backend::caller().await?;
    platform.list_test_events(&caller, &org, &name).await.map_err(backend::fail)
}

#[server]
pub async fn save_test_event(org: String, name: String, event: String, request: TestRequest) -> Result<FormOutcome, ServerFnError> {
    let (platform, caller) = backend::caller().await?;
    Ok(match platform.save_test_event(&caller, &org, &name, event.trim(), request).await {
        Ok(saved) => FormOutcome { message: Some(format!("event {:?} saved", saved.name)), ..Default::default() },
        Err(e) => backend::outcome(e),
    })
}

#[server]
pub async fn delete_test_event(org: String, name: String, event: String) -> Result<FormOutcome, ServerFnError> {
    let (platform, caller) = backend::caller().await?;
    Ok(match platform.delete_test_event(&caller, &org, &name, &event).await {
        Ok(()) => FormOutcome { message: Some(format!("event {event:?} deleted")), ..Default::default() },
        Err(e) => backend::outcome(e),
    })
}

#[server]
pub async fn list_tenants() -> Result<Vec<TenantView>, ServerFnError> {
    let (platform, caller) = backend::caller().await?;
    platform.list_tenants(&caller).await.map_err(backend::fail)
}

#[server]
pub async fn service_links() -> Result<Vec<ServiceLink>, ServerFnError> {
    let (platform, caller) = backend::caller().await?;
    platform.service_links(&caller).await.map_err(backend::fail)
}

#[server]
pub async fn list_nodes() -> Result<Vec<NodeView>, ServerFnError> {
    let (platform, caller) = backend::caller().await?;
    platform.list_nodes(&caller).await.map_err(backend::fail)
}

/// Drains a node (`draining`: true) or puts it back in service.
#[server]
pub async fn set_node_draining(name: String, draining: bool) -> Result<NodeView, ServerFnError> {
    let (platform, caller) = backend::caller().await?;
    platform.set_node_draining(&caller, &name, draining).await.map_err(backend::fail)
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TenantForm {
    pub name: String,
    #[serde(default)]
    pub display_name: String,
    #[serde(default)]
    pub max_functions: String,
    #[serde(default)]
    pub max_memory_mb: String,
    #[serde(default)]
    pub max_timeout_ms: String,
    #[serde(default)]
    pub max_instances: String,
    #[serde(default)]
    pub vcd_org_id: String,
    /// One destination per line; empty: no outbound network.
    #[serde(default)]
    pub egress: String,
    /// `runc` or `gvisor`; empty keeps it.
    #[serde(default)]
    pub sandbox: String,
}

#[cfg(feature = "ssr")]
fn tenant_input(form: TenantForm) -> (crate::platform::TenantInput, Vec<FieldError>) {
    let mut errors = Vec::new();
    let input = crate::platform::TenantInput {
        max_functions: backend::number("max_functions", "max functions", &form.max_functions, &mut errors),
        max_memory_mb: backend::number("max_memory_mb", "max memory", &form.max_memory_mb, &mut errors),
        max_timeout_ms: backend::number("max_timeout_ms", "max timeout", &form.max_timeout_ms, &mut errors),
        max_instances: backend::number("max_instances", "max instances", &form.max_instances, &mut errors),
        name: form.name.trim().to_string(),
        display_name: Some(form.display_name.trim().to_string()),
        vcd_org_id: Some(form.vcd_org_id.trim().to_string()),
        egress: Some(crate::egress::entries_of_text(&form.egress)),
        sandbox: Some(form.sandbox.trim().to_string()).filter(|s| !s.is_empty()),
    };
    (input, errors)
}

#[server]
pub async fn create_tenant(form: TenantForm) -> Result<FormOutcome, ServerFnError> {
    let (platform, caller) = backend::caller().await?;
    let (input, errors) = tenant_input(form);
    if !errors.is_empty() {
        return Ok(FormOutcome { errors, ..Default::default() });
    }
    Ok(match platform.create_tenant(&caller, input).await {
        Ok(t) => FormOutcome { message: Some(format!("tenant {} created", t.name)), ..Default::default() },
        Err(e) => backend::outcome(e),
    })
}

#[server]
pub async fn update_tenant(form: TenantForm) -> Result<FormOutcome, ServerFnError> {
    let (platform, caller) = backend::caller().await?;
    let org = form.name.clone();
    let (input, errors) = tenant_input(form);
    if !errors.is_empty() {
        return Ok(FormOutcome { errors, ..Default::default() });
    }
    Ok(match platform.update_tenant(&caller, &org, input).await {
        Ok(t) => FormOutcome { message: Some(format!("limits of {} saved", t.name)), ..Default::default() },
        Err(e) => backend::outcome(e),
    })
}

#[server]
pub async fn list_users() -> Result<Vec<UserView>, ServerFnError> {
    let (platform, caller) = backend::caller().await?;
    platform.list_users(&caller).await.map_err(backend::fail)
}

#[server]
pub async fn create_user(org: String, username: String, password: String, role: String) -> Result<FormOutcome, ServerFnError> {
    let (platform, caller) = backend::caller().await?;
    let input = crate::platform::UserInput { username: username.trim().to_string(), password, role };
    Ok(match platform.create_user(&caller, org.trim(), input).await {
        Ok(u) => FormOutcome { message: Some(format!("user {} added to {}", u.username, u.org)), ..Default::default() },
        Err(e) => backend::outcome(e),
    })
}

#[server]
pub async fn list_tokens() -> Result<Vec<TokenView>, ServerFnError> {
    let (platform, caller) = backend::caller().await?;
    platform.list_tokens(&caller).await.map_err(backend::fail)
}

#[server]
pub async fn create_token(name: String, expires_in_days: String, scope: String) -> Result<FormOutcome, ServerFnError> {
    let (platform, caller) = backend::caller().await?;
    let mut errors = Vec::new();
    let days = backend::number("expires_in_days", "Expires in (days)", &expires_in_days, &mut errors);
    if !errors.is_empty() {
        return Ok(FormOutcome { errors, ..Default::default() });
    }
    let input = crate::platform::TokenInput { name, expires_in_days: days, scope: Some(scope).filter(|s| !s.is_empty()) };
    Ok(match platform.create_token(&caller, input).await {
        Ok((view, secret)) => FormOutcome {
            message: Some(format!("token {:?} created; copy it now, it is shown only once", view.name)),
            secret: Some(secret),
            ..Default::default()
        },
        Err(e) => backend::outcome(e),
    })
}

/// Changes a user: `action` is `role`, `disable`, `enable`, `password` or `delete`.
#[server]
pub async fn change_user(org: String, username: String, action: String, value: String) -> Result<FormOutcome, ServerFnError> {
    let (platform, caller) = backend::caller().await?;
    let change = match action.as_str() {
        "role" => crate::platform::UserChange { role: Some(value), ..Default::default() },
        "disable" | "enable" => crate::platform::UserChange { disabled: Some(action == "disable"), ..Default::default() },
        "password" => crate::platform::UserChange { password: Some(value), ..Default::default() },
        "delete" => {
            return Ok(match platform.delete_user(&caller, &org, &username).await {
                Ok(()) => FormOutcome { message: Some(format!("user {username} of {org} deleted")), ..Default::default() },
                Err(e) => backend::outcome(e),
            })
        }
        other => return Ok(FormOutcome { error: Some(format!("unknown action {other:?}")), ..Default::default() }),
    };
    Ok(match platform.update_user(&caller, &org, &username, change).await {
        Ok(u) => {
            let what = match action.as_str() {
                "role" => format!("is now {}", u.role.label()),
                "password" => "has a new password".to_string(),
                _ if u.disabled => "is disabled".to_string(),
                _ => "is enabled".to_string(),
            };
            FormOutcome { message: Some(format!("{} of {} {what}", u.username, u.org)), ..Default::default() }
        }
        Err(e) => backend::outcome(e),
    })
}

/// Deletes a tenant once its name is typed again.
#[server]
pub async fn delete_tenant(org: String, confirm: String) -> Result<FormOutcome, ServerFnError> {
    let (platform, caller) = backend::caller().await?;
    if confirm.trim() != org {
        let message = format!("type the tenant's name {org:?} to confirm");
        return Ok(FormOutcome { errors: vec![FieldError::new("confirm", message)], ..Default::default() });
    }
    Ok(match platform.delete_tenant(&caller, &org).await {
        Ok(d) => FormOutcome {
            message: Some(format!("tenant {} deleted with its {} function(s) and {} user(s)", d.org, d.functions, d.users)),
            ..Default::default()
        },
        Err(e) => backend::outcome(e),
    })
}

#[server]
pub async fn list_audit(org: Option<String>, before: Option<i64>) -> Result<Vec<AuditEntry>, ServerFnError> {
    let (platform, caller) = backend::caller().await?;
    let query = crate::platform::AuditQuery { org: org.filter(|o| !o.is_empty()), before, limit: Some(100) };
    platform.list_audit(&caller, query).await.map_err(backend::fail)
}

#[server]
pub async fn revoke_token(id: i64) -> Result<(), ServerFnError> {
    let (platform, caller) = backend::caller().await?;
    platform.revoke_token(&caller, id).await.map_err(backend::fail)
}

#[cfg(all(test, feature = "ssr"))]
mod tests {
    use super::*;

    #[test]
    fn env_and_secrets_come_from_their_json_fields() {
        let form = FunctionForm {
            env: r#"{"GREETING":"hello"}"#.into(),
            secrets: r#"{"API_TOKEN":"t","OLD":null}"#.into(),
            ..Default::default()
        };
        let (spec, errors) = spec_from_form(form);
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(spec.env, Some(EnvVars::from([("GREETING".into(), "hello".into())])));
        assert_eq!(spec.secrets, Some(SecretsChange::from([("API_TOKEN".into(), Some("t".into())), ("OLD".into(), None)])));
        // Empty fields (a page not hydrated yet) change nothing; unreadable JSON is a field error.
        let (spec, _) = spec_from_form(FunctionForm::default());
        assert_eq!((spec.env, spec.secrets), (None, None));
        let (_, errors) = spec_from_form(FunctionForm { env: "{".into(), secrets: "[1]".into(), ..Default::default() });
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["env", "secrets"]);
    }
}
