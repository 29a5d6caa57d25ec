//! The cloudapi of MQTT API extensions (docs vcd-mqtt.md §M1.1, §M1.2, §M1.4): the extension
//! records under `/cloudapi/extensions/api`, extension tokens (the MQTT passwords, short-lived
//! when `--token-ttl-secs` says so) and `/cloudapi/1.0.0/apiFilters`. Each endpoint answers only
//! from the API version vCD added it in, as an older cell would.

use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};
use time::format_description::well_known::Rfc3339;
use uuid::Uuid;

use crate::rest::{admin, VcdError};
use crate::state::{ExtensionToken, MqttIdentity, MqttLogin, RegistryError, Service, ServiceSpec, SimState};

/// (major, minor) from which each endpoint exists.
const EXTENSIONS_FROM: (u32, u32) = (35, 0);
const TOKENS_FROM: (u32, u32) = (36, 1);
const API_FILTERS_FROM: (u32, u32) = (38, 1);

pub fn router() -> Router<SimState> {
    Router::new()
        .route("/cloudapi/extensions/api", get(list_extensions).post(create_extension))
        .route("/cloudapi/extensions/api/{id}", get(get_extension).put(put_extension).delete(delete_extension))
        .route("/cloudapi/1.0.0/tokens", get(list_tokens).post(create_token))
        .route("/cloudapi/1.0.0/tokens/{id}", axum::routing::delete(delete_token))
        .route("/cloudapi/1.0.0/apiFilters", get(list_filters).post(create_filter))
        .route("/cloudapi/1.0.0/apiFilters/{id}", get(get_filter).delete(delete_filter))
}

fn version_number(version: &str) -> (u32, u32) {
    let (major, minor) = version.split_once('.').unwrap_or((version, "0"));
    (major.parse().unwrap_or(0), minor.parse().unwrap_or(0))
}

/// A System administrator speaking at least `from`.
fn admin_from(state: &SimState, headers: &HeaderMap, from: (u32, u32), what: &str) -> Result<String, VcdError> {
    let (version, _) = admin(state, headers).map_err(VcdError::json)?;
    if version_number(&version) < from {
        let message = format!("{what} needs API version {}.{} or later; the request speaks {version}", from.0, from.1);
        return Err(VcdError::new(StatusCode::NOT_FOUND, message).json());
    }
    Ok(version)
}

fn registry(e: RegistryError) -> VcdError {
    VcdError::from(e).json()
}

fn extension_json(service: &Service) -> Value {
    let (monitor, respond) = service.topics().unwrap_or_default();
    let m = service.mqtt.as_ref().expect("an MQTT extension");
    json!({
        "id": service.extension_urn(), "name": service.spec.name, "vendor": m.vendor, "version": m.version,
        "priority": service.spec.priority, "enabled": service.spec.enabled,
        "authorizationEnabled": service.spec.authorization_enabled, "description": service.spec.description,
        "mqttTopics": {"monitor": monitor, "respond": respond},
    })
}

fn find(state: &SimState, urn: &str) -> Result<Service, VcdError> {
    state.mqtt_extension(urn).ok_or_else(|| VcdError::new(StatusCode::NOT_FOUND, format!("no API extension {urn}")).json())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ExtensionBody {
    name: String,
    version: String,
    vendor: String,
    #[serde(default)]
    priority: Option<i32>,
    /// Booleans, or strings as CSE sends them.
    #[serde(default)]
    enabled: Option<Value>,
    #[serde(default)]
    authorization_enabled: Option<Value>,
    #[serde(default)]
    description: Option<String>,
}

fn flag(value: &Option<Value>) -> bool {
    matches!(value, Some(Value::Bool(true))) || matches!(value, Some(Value::String(s)) if s == "true")
}

fn spec_of(body: &ExtensionBody) -> Result<(ServiceSpec, MqttIdentity), VcdError> {
    for (what, value) in [("name", &body.name), ("vendor", &body.vendor), ("version", &body.version)] {
        if value.is_empty() || value.contains(['/', ':', '+', '#']) {
            return Err(VcdError::bad_request(format!("{what} {value:?} may not be empty or contain / : + #")).json());
        }
    }
    let priority = body.priority.unwrap_or(50);
    if !(0..=100).contains(&priority) {
        return Err(VcdError::bad_request(format!("priority {priority} must be between 0 and 100")).json());
    }
    let spec = ServiceSpec {
        name: body.name.clone(),
        description: body.description.clone(),
        namespace: format!("{}/{}/{}", body.vendor, body.name, body.version),
        enabled: flag(&body.enabled),
        authorization_enabled: flag(&body.authorization_enabled),
        routing_key: String::new(),
        priority,
        exchange: String::new(),
        vendor: Some(body.vendor.clone()),
    };
    Ok((spec, MqttIdentity { vendor: body.vendor.clone(), version: body.version.clone() }))
}

#[derive(Deserialize)]
struct ListQuery {
    #[serde(default)]
    filter: Option<String>,
}

/// `a==x;b==y` terms of a FIQL filter (AND only).
fn terms(filter: &Option<String>) -> Vec<(String, String)> {
    filter
        .iter()
        .flat_map(|f| f.split(';'))
        .filter_map(|t| t.split_once("==").map(|(k, v)| (k.to_string(), v.to_string())))
        .collect()
}

fn paged(values: Vec<Value>) -> Json<Value> {
    Json(json!({"resultTotal": values.len(), "pageCount": 1, "page": 1, "pageSize": values.len().max(1), "values": values}))
}

async fn list_extensions(State(state): State<SimState>, headers: HeaderMap, Query(q): Query<ListQuery>) -> Result<Json<Value>, VcdError> {
    admin_from(&state, &headers, EXTENSIONS_FROM, "/cloudapi/extensions/api")?;
    let wanted = terms(&q.filter);
    let values = state
        .services()
        .iter()
        .filter(|s| s.mqtt.is_some())
        .map(extension_json)
        .filter(|e| wanted.iter().all(|(k, v)| e[k.as_str()].as_str() == Some(v.as_str())))
        .collect();
    Ok(paged(values))
}

async fn create_extension(State(state): State<SimState>, headers: HeaderMap, Json(body): Json<ExtensionBody>) -> Result<Response, VcdError> {
    admin_from(&state, &headers, EXTENSIONS_FROM, "/cloudapi/extensions/api")?;
    let (spec, identity) = spec_of(&body)?;
    let service = state.create_service(spec, vec![], Some(identity)).map_err(registry)?;
    tracing::info!(id = ?service.extension_urn(), "MQTT API extension registered");
    Ok((StatusCode::CREATED, Json(extension_json(&service))).into_response())
}

async fn get_extension(State(state): State<SimState>, headers: HeaderMap, Path(id): Path<String>) -> Result<Response, VcdError> {
    admin_from(&state, &headers, EXTENSIONS_FROM, "/cloudapi/extensions/api")?;
    let service = find(&state, &id)?;
    let mut response = Json(extension_json(&service)).into_response();
    // The legacy service's sub-resources, where the legacy API filters live (§M1.1).
    let base = crate::rest::base_url(&state, &headers);
    for sub in ["apifilters", "rights", "resourceclasses"] {
        let link = format!("<{base}/api/admin/extension/service/{}/{sub}>;rel=\"down\"", service.uuid);
        response.headers_mut().append(header::LINK, HeaderValue::from_str(&link).expect("ascii"));
    }
    Ok(response)
}

async fn put_extension(
    State(state): State<SimState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Json(body): Json<ExtensionBody>,
) -> Result<Json<Value>, VcdError> {
    admin_from(&state, &headers, EXTENSIONS_FROM, "/cloudapi/extensions/api")?;
    let service = find(&state, &id)?;
    let (spec, identity) = spec_of(&body)?;
    if service.triple() != Some(spec.namespace.clone()) || service.mqtt.as_ref().map(|m| &m.vendor) != Some(&identity.vendor) {
        return Err(VcdError::bad_request("vendor, name and version of an API extension cannot be changed").json());
    }
    let updated = state.update_service(service.uuid, spec).map_err(registry)?;
    Ok(Json(extension_json(&updated)))
}

async fn delete_extension(State(state): State<SimState>, headers: HeaderMap, Path(id): Path<String>) -> Result<StatusCode, VcdError> {
    admin_from(&state, &headers, EXTENSIONS_FROM, "/cloudapi/extensions/api")?;
    let service = find(&state, &id)?;
    let tokens: Vec<Uuid> = state.tokens().iter().filter(|t| t.service == service.uuid).map(|t| t.id).collect();
    state.delete_service(service.uuid).map_err(registry)?;
    // Its tokens went with it, and so do the connections that logged in with them.
    state.end_mqtt_links(|login| matches!(login, MqttLogin::Extension { token } if tokens.contains(token)));
    tracing::info!(id, "MQTT API extension deleted");
    Ok(StatusCode::NO_CONTENT)
}

fn token_json(t: &ExtensionToken, shown: bool) -> Value {
    json!({
        "id": format!("urn:vcloud:token:{}", t.id), "name": t.name, "type": "EXTENSION",
        // Only the create answer shows the token (§M1.2).
        "token": if shown { Value::from(t.token.clone()) } else { Value::Null },
        "expirationTimeUtc": t.expires_at.map(|e| e.format(&Rfc3339).expect("formats")),
        "owner": {"name": t.owner, "id": format!("urn:vcloud:externalService:{}", t.service)},
        "org": {"name": "System", "id": crate::state::org_urn("System")},
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TokenBody {
    name: String,
    r#type: String,
    extension_id: String,
}

async fn create_token(State(state): State<SimState>, headers: HeaderMap, Json(body): Json<TokenBody>) -> Result<Response, VcdError> {
    admin_from(&state, &headers, TOKENS_FROM, "/cloudapi/1.0.0/tokens")?;
    if body.r#type != "EXTENSION" {
        return Err(VcdError::bad_request(format!("vcd-sim makes tokens of type EXTENSION only, not {:?}", body.r#type)).json());
    }
    let service = find(&state, &body.extension_id)?;
    let owner = service.triple().expect("an MQTT extension");
    let token = state.add_token(ExtensionToken {
        id: Uuid::new_v4(),
        name: body.name,
        token: format!("{}{}", Uuid::new_v4().simple(), Uuid::new_v4().simple()),
        owner: owner.clone(),
        service: service.uuid,
        expires_at: state.settings.token_ttl.map(|ttl| time::OffsetDateTime::now_utc() + ttl),
        seq: 0,
    });
    tracing::info!(owner, expires_at = ?token.expires_at, "extension token made");
    Ok((StatusCode::CREATED, Json(token_json(&token, true))).into_response())
}

async fn list_tokens(State(state): State<SimState>, headers: HeaderMap, Query(q): Query<ListQuery>) -> Result<Json<Value>, VcdError> {
    admin_from(&state, &headers, TOKENS_FROM, "/cloudapi/1.0.0/tokens")?;
    let wanted = terms(&q.filter);
    let values = state
        .tokens()
        .iter()
        .map(|t| token_json(t, false))
        .filter(|t| wanted.iter().all(|(k, v)| t[k.as_str()].as_str() == Some(v.as_str())))
        .collect();
    Ok(paged(values))
}

async fn delete_token(State(state): State<SimState>, headers: HeaderMap, Path(id): Path<String>) -> Result<StatusCode, VcdError> {
    admin_from(&state, &headers, TOKENS_FROM, "/cloudapi/1.0.0/tokens")?;
    let uuid = id.rsplit(':').next().and_then(|u| Uuid::parse_str(u).ok());
    let token = uuid.and_then(|u| state.remove_token(u)).ok_or_else(|| VcdError::new(StatusCode::NOT_FOUND, format!("no token {id}")).json())?;
    retire(&state, &token);
    Ok(StatusCode::NO_CONTENT)
}

/// A token is gone (deleted or expired): the connections that logged in with it are closed.
fn retire(state: &SimState, token: &ExtensionToken) {
    let ended = state.end_mqtt_links(|login| *login == MqttLogin::Extension { token: token.id });
    if ended > 0 {
        tracing::info!(owner = token.owner, ended, "connections of a token that is gone closed");
    }
}

/// Retires tokens as they expire.
pub fn spawn_token_expiry(state: SimState) {
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_millis(250)).await;
            for token in state.take_expired_tokens() {
                tracing::info!(owner = token.owner, "extension token expired");
                retire(&state, &token);
            }
        }
    });
}

fn filter_json(state: &SimState, f: &crate::state::Filter) -> Option<Value> {
    let service = state.service(f.service)?;
    Some(json!({
        "id": format!("urn:vcloud:apiFilter:{}", f.id),
        "externalSystem": {"id": service.extension_urn().unwrap_or_else(|| crate::xml::service_urn(&service)), "name": service.spec.name},
        "urlMatcher": {"urlPattern": f.url_pattern, "urlScope": "API"},
        "responseContentType": null,
    }))
}

async fn list_filters(State(state): State<SimState>, headers: HeaderMap, Query(q): Query<ListQuery>) -> Result<Json<Value>, VcdError> {
    admin_from(&state, &headers, API_FILTERS_FROM, "/cloudapi/1.0.0/apiFilters")?;
    let wanted = terms(&q.filter);
    let values = state
        .all_filters()
        .iter()
        .filter_map(|f| filter_json(&state, f))
        .filter(|f| {
            wanted.iter().all(|(k, v)| match k.as_str() {
                "externalSystem.id" => f.pointer("/externalSystem/id").and_then(Value::as_str) == Some(v.as_str()),
                _ => false,
            })
        })
        .collect();
    Ok(paged(values))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct FilterBody {
    external_system: Value,
    #[serde(default)]
    url_matcher: Option<Value>,
    #[serde(default)]
    response_content_type: Option<String>,
}

async fn create_filter(State(state): State<SimState>, headers: HeaderMap, Json(body): Json<FilterBody>) -> Result<Response, VcdError> {
    admin_from(&state, &headers, API_FILTERS_FROM, "/cloudapi/1.0.0/apiFilters")?;
    let id = body.external_system["id"].as_str().unwrap_or_default();
    let service = find(&state, id)?;
    let matcher = match (body.url_matcher, body.response_content_type) {
        (Some(m), None) => m,
        (Some(_), Some(_)) => return Err(VcdError::bad_request("urlMatcher and responseContentType exclude each other").json()),
        _ => return Err(VcdError::bad_request("vcd-sim takes urlMatcher filters only").json()),
    };
    if matcher["urlScope"] != "API" {
        return Err(VcdError::bad_request(format!("an MQTT extension's filters need urlScope API, not {}", matcher["urlScope"])).json());
    }
    let pattern = matcher["urlPattern"].as_str().unwrap_or_default().to_string();
    let filter = state.add_filter(service.uuid, pattern).map_err(registry)?;
    let json = filter_json(&state, &filter).expect("its service exists");
    Ok((StatusCode::CREATED, Json(json)).into_response())
}

fn filter_id(id: &str) -> Result<Uuid, VcdError> {
    id.rsplit(':').next().and_then(|u| Uuid::parse_str(u).ok()).ok_or_else(|| VcdError::new(StatusCode::NOT_FOUND, format!("no API filter {id}")).json())
}

async fn get_filter(State(state): State<SimState>, headers: HeaderMap, Path(id): Path<String>) -> Result<Json<Value>, VcdError> {
    admin_from(&state, &headers, API_FILTERS_FROM, "/cloudapi/1.0.0/apiFilters")?;
    let filter = state.filter(filter_id(&id)?).ok_or_else(|| VcdError::new(StatusCode::NOT_FOUND, format!("no API filter {id}")).json())?;
    Ok(Json(filter_json(&state, &filter).expect("its service exists")))
}

async fn delete_filter(State(state): State<SimState>, headers: HeaderMap, Path(id): Path<String>) -> Result<StatusCode, VcdError> {
    admin_from(&state, &headers, API_FILTERS_FROM, "/cloudapi/1.0.0/apiFilters")?;
    state.delete_filter(filter_id(&id)?).map_err(registry)?;
    Ok(StatusCode::NO_CONTENT)
}
