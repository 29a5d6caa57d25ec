//! The subset of vCD's REST API that an extension service's client uses: versions, login (cloudapi
//! and legacy), the extension-service registry and its API filters, and the adminService query.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use base64::Engine;
use serde_json::json;
use uuid::Uuid;

use crate::state::{Caller, RegistryError, SessionError, SimState, SYSTEM_ORG};
use crate::xml;

const SERVICE_TYPE: &str = "application/vnd.vmware.admin.service+xml";
const FILTER_TYPE: &str = "application/vnd.vmware.admin.apiFilter+xml";
const RECORDS_TYPE: &str = "application/vnd.vmware.vcloud.query.records+xml";

pub fn router() -> Router<SimState> {
    Router::new()
        .route("/api/versions", get(versions))
        .route("/cloudapi/1.0.0/sessions/provider", post(login_provider))
        .route("/cloudapi/1.0.0/sessions", post(login_tenant))
        .route("/api/sessions", post(login_legacy))
        .route("/api/session", get(current_session).delete(logout))
        .route("/api/query", get(query))
        .route("/api/admin/extension/service", post(create_service))
        .route("/api/admin/extension/service/query", get(service_query))
        .route("/api/admin/extension/service/{id}", get(get_service).put(put_service).delete(delete_service))
        .route("/api/admin/extension/service/{id}/apifilters", get(list_filters).post(add_filter))
        .route("/api/admin/extension/service/apifilter/{id}", get(get_filter).delete(delete_filter))
}

/// A vCD error: XML `Error` on /api, JSON on /cloudapi.
#[derive(Debug)]
pub struct VcdError {
    pub status: StatusCode,
    pub message: String,
    pub json: bool,
}

impl VcdError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        VcdError { status, message: message.into(), json: false }
    }
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }
    pub fn json(mut self) -> Self {
        self.json = true;
        self
    }
    fn minor(&self) -> &'static str {
        match self.status.as_u16() {
            400 => "BAD_REQUEST",
            401 => "UNAUTHORIZED",
            403 => "ACCESS_TO_RESOURCE_IS_FORBIDDEN",
            404 => "RESOURCE_NOT_FOUND",
            405 => "METHOD_NOT_ALLOWED",
            406 => "NOT_ACCEPTABLE",
            415 => "UNSUPPORTED_MEDIA_TYPE",
            502 => "BAD_GATEWAY",
            503 => "SERVICE_UNAVAILABLE",
            504 => "GATEWAY_TIMEOUT",
            _ => "INTERNAL_SERVER_ERROR",
        }
    }
}

impl IntoResponse for VcdError {
    fn into_response(self) -> Response {
        let code = self.status.as_u16();
        if self.json {
            let body = json!({"majorErrorCode": code, "minorErrorCode": self.minor(), "message": self.message});
            (self.status, [(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response()
        } else {
            let body = xml::error_xml(code, self.minor(), &self.message);
            (self.status, [(header::CONTENT_TYPE, "application/vnd.vmware.vcloud.error+xml")], body).into_response()
        }
    }
}

impl From<RegistryError> for VcdError {
    fn from(e: RegistryError) -> Self {
        match e {
            RegistryError::NotFound(m) => VcdError::new(StatusCode::NOT_FOUND, m),
            RegistryError::Invalid(m) => VcdError::bad_request(m),
        }
    }
}

/// The API version a request asks for in `Accept: …;version=X`, if the sim supports it.
pub fn api_version(state: &SimState, headers: &HeaderMap) -> Result<String, VcdError> {
    let accept = headers.get_all(header::ACCEPT).iter().filter_map(|v| v.to_str().ok()).collect::<Vec<_>>().join(",");
    let supported = &state.settings.api_versions;
    let asked: Vec<&str> = accept
        .split([',', ';'])
        .filter_map(|p| p.trim().strip_prefix("version="))
        .map(|v| v.trim_matches('"'))
        .collect();
    if let Some(v) = asked.iter().find(|v| supported.iter().any(|s| s == *v)) {
        return Ok(v.to_string());
    }
    let why = if asked.is_empty() {
        format!("the Accept header ('{accept}') must name an API version, e.g. 'application/*+xml;version={}'", supported.last().unwrap())
    } else {
        format!("API version {} is not supported; supported versions: {}", asked.join(", "), supported.join(", "))
    };
    Err(VcdError::new(StatusCode::NOT_ACCEPTABLE, why))
}

/// `http://<Host>`: hrefs point back at whatever address the client used.
pub fn base_url(state: &SimState, headers: &HeaderMap) -> String {
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).map(str::to_string);
    format!("http://{}", host.unwrap_or_else(|| state.local_addr.to_string()))
}

/// Reads `Authorization: Basic base64(user@org:password)`.
fn basic_credentials(headers: &HeaderMap) -> Result<(String, String, String), String> {
    let value = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).ok_or("missing Authorization header")?;
    let encoded = value.strip_prefix("Basic ").ok_or("the Authorization header must be 'Basic base64(user@org:password)'")?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or("the Basic credentials are not valid base64 UTF-8")?;
    let (login, password) = decoded.split_once(':').ok_or("the Basic credentials need 'user@org:password'")?;
    let (user, org) = login.rsplit_once('@').ok_or("the user name must be 'user@org'")?;
    Ok((user.to_string(), org.to_string(), password.to_string()))
}

fn unauthorized(message: impl Into<String>) -> VcdError {
    VcdError::new(StatusCode::UNAUTHORIZED, message)
}

/// The session token a request carries (Bearer or legacy header).
pub fn session_token(headers: &HeaderMap) -> Option<String> {
    if let Some(t) = headers.get("x-vcloud-authorization").and_then(|v| v.to_str().ok()) {
        return Some(t.trim().to_string());
    }
    let auth = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok())?;
    auth.strip_prefix("Bearer ").map(|t| t.trim().to_string())
}

/// Who is calling. `allow_basic` lets the front door accept Basic credentials directly (curl).
pub fn authenticate(state: &SimState, headers: &HeaderMap, allow_basic: bool) -> Result<Caller, VcdError> {
    if let Some(token) = session_token(headers) {
        return state.touch_session(&token).map_err(|e| match e {
            SessionError::Unknown => unauthorized("unknown session token; log in again"),
            SessionError::Expired => unauthorized("the session has expired; log in again"),
        });
    }
    let is_basic = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).is_some_and(|v| v.starts_with("Basic "));
    if allow_basic && is_basic {
        let (user, org, password) = basic_credentials(headers).map_err(unauthorized)?;
        return state.check_credentials(&user, &org, &password).map_err(unauthorized);
    }
    Err(unauthorized("this request needs a session: send 'Authorization: Bearer <token>' or 'x-vcloud-authorization: <token>'"))
}

/// Version, session and System-org checks of every extension-admin call.
pub fn admin(state: &SimState, headers: &HeaderMap) -> Result<(String, String), VcdError> {
    let version = api_version(state, headers)?;
    let caller = authenticate(state, headers, false)?;
    if !caller.is_system() {
        return Err(VcdError::new(
            StatusCode::FORBIDDEN,
            format!("{}@{} may not manage extension services: a System administrator session is needed", caller.user, caller.org),
        ));
    }
    Ok((version, base_url(state, headers)))
}

fn require_content_type(headers: &HeaderMap, expected: &str) -> Result<(), VcdError> {
    let ct = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let media = ct.split(';').next().unwrap_or("").trim();
    if !media.eq_ignore_ascii_case(expected) {
        return Err(VcdError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("Content-Type must be '{expected}' (got '{ct}')"),
        ));
    }
    Ok(())
}

fn utf8(body: &Bytes) -> Result<&str, VcdError> {
    std::str::from_utf8(body).map_err(|_| VcdError::bad_request("the request body is not UTF-8"))
}

fn typed(status: StatusCode, media: &str, version: &str, body: String) -> Response {
    (status, [(header::CONTENT_TYPE, format!("{media};version={version}"))], body).into_response()
}

fn parse_id(id: &str, what: &str) -> Result<Uuid, VcdError> {
    // Accept both the bare UUID of the href and the URN.
    let bare = id.rsplit(':').next().unwrap_or(id);
    Uuid::parse_str(bare).map_err(|_| VcdError::new(StatusCode::NOT_FOUND, format!("no {what} with id '{id}'")))
}

async fn versions(State(state): State<SimState>, headers: HeaderMap) -> Response {
    let body = xml::versions_xml(&base_url(&state, &headers), &state.settings.api_versions);
    ([(header::CONTENT_TYPE, "application/vnd.vmware.vcloud.versions+xml")], body).into_response()
}

fn with_token_headers(mut response: Response, token: &str, legacy_header: bool, bearer_headers: bool) -> Response {
    let h = response.headers_mut();
    let value = HeaderValue::from_str(token).expect("tokens are hex");
    if legacy_header {
        h.insert(HeaderName::from_static("x-vcloud-authorization"), value.clone());
    }
    if bearer_headers {
        h.insert(HeaderName::from_static("x-vmware-vcloud-access-token"), value);
        h.insert(HeaderName::from_static("x-vmware-vcloud-token-type"), HeaderValue::from_static("Bearer"));
    }
    response
}

/// The cloudapi logins (API ≥ 33.0); `provider` selects /sessions/provider.
async fn cloudapi_login(state: &SimState, headers: &HeaderMap, provider: bool) -> Result<Response, VcdError> {
    if state.settings.legacy_only {
        return Err(VcdError::new(StatusCode::NOT_FOUND, "this vCD (API < 33.0) has no /cloudapi login; use POST /api/sessions").json());
    }
    let version = api_version(state, headers).map_err(VcdError::json)?;
    let (user, org, password) = basic_credentials(headers).map_err(|m| unauthorized(m).json())?;
    if provider && org != SYSTEM_ORG {
        return Err(unauthorized(format!("/sessions/provider is for the System org, not '{org}'; tenants use /cloudapi/1.0.0/sessions")).json());
    }
    if !provider && org == SYSTEM_ORG {
        return Err(unauthorized("System org users log in at /cloudapi/1.0.0/sessions/provider").json());
    }
    let caller = state.check_credentials(&user, &org, &password).map_err(|m| unauthorized(m).json())?;
    let body = json!({
        "id": format!("urn:vcloud:session:{}", Uuid::new_v4()),
        "user": {"name": caller.user, "id": caller.user_urn()},
        "org": {"name": caller.org, "id": caller.org_urn()},
        "location": format!("{}@{}", caller.user, caller.org),
        "roles": [if caller.is_system() { "System Administrator" } else { "Organization Administrator" }],
        "sessionIdleTimeoutMinutes": state.settings.session_ttl.as_secs() / 60,
    });
    let token = state.new_session(caller);
    let response = typed(StatusCode::OK, "application/json", &version, body.to_string());
    Ok(with_token_headers(response, &token, false, true))
}

async fn login_provider(State(state): State<SimState>, headers: HeaderMap) -> Result<Response, VcdError> {
    cloudapi_login(&state, &headers, true).await
}

async fn login_tenant(State(state): State<SimState>, headers: HeaderMap) -> Result<Response, VcdError> {
    cloudapi_login(&state, &headers, false).await
}

async fn login_legacy(State(state): State<SimState>, headers: HeaderMap) -> Result<Response, VcdError> {
    let version = api_version(&state, &headers)?;
    let (user, org, password) = basic_credentials(&headers).map_err(unauthorized)?;
    let caller = state.check_credentials(&user, &org, &password).map_err(unauthorized)?;
    let base = base_url(&state, &headers);
    let body = xml::session_xml(&base, &caller.user, &caller.org, &caller.user_urn(), &caller.org_urn());
    let token = state.new_session(caller);
    let response = typed(StatusCode::OK, "application/vnd.vmware.vcloud.session+xml", &version, body);
    // Newer cells also hand out the Bearer form on the legacy login.
    Ok(with_token_headers(response, &token, true, !state.settings.legacy_only))
}

async fn current_session(State(state): State<SimState>, headers: HeaderMap) -> Result<Response, VcdError> {
    let version = api_version(&state, &headers)?;
    let caller = authenticate(&state, &headers, false)?;
    let body = xml::session_xml(&base_url(&state, &headers), &caller.user, &caller.org, &caller.user_urn(), &caller.org_urn());
    Ok(typed(StatusCode::OK, "application/vnd.vmware.vcloud.session+xml", &version, body))
}

async fn logout(State(state): State<SimState>, headers: HeaderMap) -> Result<StatusCode, VcdError> {
    api_version(&state, &headers)?;
    authenticate(&state, &headers, false)?;
    if let Some(token) = session_token(&headers) {
        state.end_session(&token);
    }
    Ok(StatusCode::NO_CONTENT)
}

/// `filter=a==x;b==y` (AND only, which is what extension clients send).
fn parse_filter(filter: Option<&String>, allowed: &[&str]) -> Result<Vec<(String, String)>, VcdError> {
    let Some(filter) = filter.filter(|f| !f.is_empty()) else { return Ok(vec![]) };
    filter
        .split(';')
        .map(|term| {
            let (k, v) = term
                .split_once("==")
                .ok_or_else(|| VcdError::bad_request(format!("filter term '{term}' must look like attribute==value")))?;
            if !allowed.contains(&k) {
                return Err(VcdError::bad_request(format!("cannot filter on '{k}'; known attributes: {}", allowed.join(", "))));
            }
            Ok((k.to_string(), v.to_string()))
        })
        .collect()
}

fn service_records(state: &SimState, base: &str, version: &str, href: &str, params: &HashMap<String, String>) -> Result<Response, VcdError> {
    let attrs = ["name", "namespace", "enabled", "exchange", "routingKey", "priority", "isAuthorizationEnabled", "id"];
    let terms = parse_filter(params.get("filter"), &attrs)?;
    let records: Vec<String> = state
        .services()
        .iter()
        .filter(|s| {
            terms.iter().all(|(k, v)| {
                let actual = match k.as_str() {
                    "name" => s.spec.name.clone(),
                    "namespace" => s.spec.namespace.clone(),
                    "enabled" => s.spec.enabled.to_string(),
                    "exchange" => s.spec.exchange.clone(),
                    "routingKey" => s.spec.routing_key.clone(),
                    "priority" => s.spec.priority.to_string(),
                    "isAuthorizationEnabled" => s.spec.authorization_enabled.to_string(),
                    _ => xml::service_urn(s),
                };
                actual == *v
            })
        })
        .map(|s| xml::admin_service_record(base, s))
        .collect();
    Ok(typed(StatusCode::OK, RECORDS_TYPE, version, xml::query_records(href, "adminService", &records)))
}

fn filter_records(state: &SimState, base: &str, version: &str, href: &str, service: Option<Uuid>) -> Response {
    let filters = match service {
        Some(id) => state.filters_of(id),
        None => state.all_filters(),
    };
    let records: Vec<String> = filters.iter().map(|f| xml::api_filter_record(base, f)).collect();
    typed(StatusCode::OK, RECORDS_TYPE, version, xml::query_records(href, "apiFilter", &records))
}

async fn query(
    State(state): State<SimState>,
    headers: HeaderMap,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, VcdError> {
    let (version, base) = admin(&state, &headers)?;
    let href = format!("{base}/api/query");
    match params.get("type").map(String::as_str) {
        Some("adminService") => service_records(&state, &base, &version, &href, &params),
        Some("apiFilter") => {
            let terms = parse_filter(params.get("filter"), &["service"])?;
            let service = terms.first().map(|(_, v)| parse_id(v, "extension service")).transpose()?;
            Ok(filter_records(&state, &base, &version, &href, service))
        }
        other => Err(VcdError::bad_request(format!(
            "vcd-sim answers queries of type adminService and apiFilter, not {other:?}"
        ))),
    }
}

async fn service_query(
    State(state): State<SimState>,
    headers: HeaderMap,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, VcdError> {
    let (version, base) = admin(&state, &headers)?;
    let href = format!("{base}/api/admin/extension/service/query");
    service_records(&state, &base, &version, &href, &params)
}

async fn create_service(State(state): State<SimState>, headers: HeaderMap, body: Bytes) -> Result<Response, VcdError> {
    let (version, base) = admin(&state, &headers)?;
    require_content_type(&headers, SERVICE_TYPE)?;
    let (spec, patterns) = xml::parse_service(utf8(&body)?).map_err(VcdError::bad_request)?;
    let service = state.create_service(spec, patterns, None)?;
    tracing::info!(name = %service.spec.name, id = %service.uuid, "extension service registered");
    let filters = state.filters_of(service.uuid);
    let mut response = typed(StatusCode::CREATED, SERVICE_TYPE, &version, xml::service_xml(&base, &service, &filters));
    if let Ok(loc) = HeaderValue::from_str(&xml::service_href(&base, &service)) {
        response.headers_mut().insert(header::LOCATION, loc);
    }
    Ok(response)
}

async fn get_service(State(state): State<SimState>, headers: HeaderMap, Path(id): Path<String>) -> Result<Response, VcdError> {
    let (version, base) = admin(&state, &headers)?;
    let id = parse_id(&id, "extension service")?;
    let service = state.service(id).ok_or_else(|| RegistryError::NotFound(format!("no extension service with id {id}")))?;
    let filters = state.filters_of(id);
    Ok(typed(StatusCode::OK, SERVICE_TYPE, &version, xml::service_xml(&base, &service, &filters)))
}

async fn put_service(
    State(state): State<SimState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, VcdError> {
    let (version, base) = admin(&state, &headers)?;
    let id = parse_id(&id, "extension service")?;
    require_content_type(&headers, SERVICE_TYPE)?;
    // Filters in a PUT body are ignored: they are managed through /apifilters.
    let (spec, _filters) = xml::parse_service(utf8(&body)?).map_err(VcdError::bad_request)?;
    let service = state.update_service(id, spec)?;
    tracing::info!(name = %service.spec.name, enabled = service.spec.enabled, "extension service updated");
    let filters = state.filters_of(id);
    Ok(typed(StatusCode::OK, SERVICE_TYPE, &version, xml::service_xml(&base, &service, &filters)))
}

async fn delete_service(State(state): State<SimState>, headers: HeaderMap, Path(id): Path<String>) -> Result<StatusCode, VcdError> {
    admin(&state, &headers)?;
    let id = parse_id(&id, "extension service")?;
    state.delete_service(id)?;
    tracing::info!(%id, "extension service deleted");
    Ok(StatusCode::NO_CONTENT)
}

async fn list_filters(State(state): State<SimState>, headers: HeaderMap, Path(id): Path<String>) -> Result<Response, VcdError> {
    let (version, base) = admin(&state, &headers)?;
    let id = parse_id(&id, "extension service")?;
    if state.service(id).is_none() {
        return Err(RegistryError::NotFound(format!("no extension service with id {id}")).into());
    }
    let href = format!("{base}/api/admin/extension/service/{id}/apifilters");
    Ok(filter_records(&state, &base, &version, &href, Some(id)))
}

async fn add_filter(
    State(state): State<SimState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, VcdError> {
    let (version, base) = admin(&state, &headers)?;
    let id = parse_id(&id, "extension service")?;
    require_content_type(&headers, FILTER_TYPE)?;
    let pattern = xml::parse_api_filter(utf8(&body)?).map_err(VcdError::bad_request)?;
    let filter = state.add_filter(id, pattern)?;
    let mut response = typed(StatusCode::CREATED, FILTER_TYPE, &version, xml::api_filter_xml(&base, &filter));
    if let Ok(loc) = HeaderValue::from_str(&xml::filter_href(&base, &filter)) {
        response.headers_mut().insert(header::LOCATION, loc);
    }
    Ok(response)
}

async fn get_filter(State(state): State<SimState>, headers: HeaderMap, Path(id): Path<String>) -> Result<Response, VcdError> {
    let (version, base) = admin(&state, &headers)?;
    let id = parse_id(&id, "API filter")?;
    let filter = state.filter(id).ok_or_else(|| RegistryError::NotFound(format!("no API filter with id {id}")))?;
    Ok(typed(StatusCode::OK, FILTER_TYPE, &version, xml::api_filter_xml(&base, &filter)))
}

async fn delete_filter(State(state): State<SimState>, headers: HeaderMap, Path(id): Path<String>) -> Result<StatusCode, VcdError> {
    admin(&state, &headers)?;
    state.delete_filter(parse_id(&id, "API filter")?)?;
    Ok(StatusCode::NO_CONTENT)
}
