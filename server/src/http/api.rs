//! The REST API under `/api/v1`, for scripts, CI pipelines and a CLI. Bearer-token auth; every
//! error is `{"error": "<what to fix>"}` (plus `fields` for input errors).

use crate::http::state::AppState;
use app::model::*;
use app::platform::parts::*;
use app::platform::{AuditQuery, PlatformError, TenantDeletion, TenantInput, TokenInput, UserChange, UserInput};
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request, State};
use axum::http::{request::Parts, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, patch, post, put};
use axum::{Json, Router};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::json;

/// Largest JSON body the API reads: a function's files at the provider's limit, escaped
/// (which may double them), or 2 MB, whichever is more.
fn max_json_bytes(state: &AppState) -> usize {
    (2 * state.service.config().max_files_bytes() + 1024 * 1024).max(2 * 1024 * 1024)
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/openapi.json", get(openapi))
        .route("/api/v1/tokens", get(list_tokens).post(create_token))
        .route("/api/v1/tokens/{id}", delete(revoke_token))
        .route("/api/v1/tenants", get(list_tenants).post(create_tenant))
        .route("/api/v1/tenants/{org}", put(update_tenant).delete(delete_tenant))
        .route("/api/v1/tenants/{org}/users", post(create_user))
        .route("/api/v1/tenants/{org}/users/{username}", patch(update_user).delete(delete_user))
        .route("/api/v1/audit", get(list_audit))
        .route("/api/v1/users", get(list_users))
        .route("/api/v1/functions", get(list_functions).post(create_function))
        .route("/api/v1/functions/{name}", get(get_function).put(update_function).delete(delete_function))
        .route("/api/v1/functions/{name}/code", put(upload_code))
        .route("/api/v1/functions/{name}/versions", get(list_versions))
        .route("/api/v1/functions/{name}/versions/{version}", get(get_version))
        .route("/api/v1/functions/{name}/versions/{version}/restore", post(restore_version))
        .route("/api/v1/functions/{name}/invocations", get(list_invocations))
        .route("/api/v1/functions/{name}/metrics", get(function_metrics))
        .route("/api/v1/functions/{name}/test-events", get(list_test_events))
        .route("/api/v1/functions/{name}/test-events/{event}", put(save_test_event).delete(delete_test_event))
        .route("/api/v1/functions/{name}/test-events/{event}/run", post(run_test_event))
        .route("/api/v1/invocations/{id}", get(get_invocation))
        .route("/api/v1/links", get(service_links))
        .route("/api/v1/nodes", get(list_nodes))
        .route("/api/v1/nodes/{name}/drain", post(drain_node))
        .route("/api/v1/nodes/{name}/undrain", post(undrain_node))
        .route("/api/v1/{*rest}", axum::routing::any(no_such_endpoint))
        .route("/metrics", get(metrics))
}

// ---- errors ----

pub struct ApiError {
    status: StatusCode,
    body: serde_json::Value,
    /// Seconds, for a 429.
    retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError { status, body: json!({ "error": message.into() }), retry_after: None }
    }
}

impl From<PlatformError> for ApiError {
    fn from(e: PlatformError) -> ApiError {
        let mut body = json!({ "error": e.to_string() });
        if !e.field_errors().is_empty() {
            body["fields"] = json!(e.field_errors());
        }
        let retry_after = match e {
            PlatformError::RateLimited { retry_after_secs, .. } => Some(retry_after_secs),
            _ => None,
        };
        ApiError { status: StatusCode::from_u16(e.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR), body, retry_after }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, Json(self.body)).into_response();
        if let Some(secs) = self.retry_after {
            response.headers_mut().insert(http::header::RETRY_AFTER, secs.into());
        }
        response
    }
}

type ApiResult<T> = Result<T, ApiError>;

// ---- extractors ----

/// The caller, from `Authorization: Bearer <token>`.
pub struct ApiCaller(pub Caller);

pub fn bearer_token(parts: &Parts) -> Option<&str> {
    let value = parts.headers.get(http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

impl FromRequestParts<AppState> for ApiCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let Some(token) = bearer_token(parts) else {
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "missing bearer token: send `Authorization: Bearer <token>` (POST /api/v1/tokens makes one)",
            ));
        };
        let caller = state.service.caller_by_token(token).await?.caller().map_err(|why| ApiError::new(StatusCode::UNAUTHORIZED, why))?;
        // Only a full token changes things; the others read (and call functions on their routes).
        let reads = parts.method == http::Method::GET || parts.method == http::Method::HEAD;
        if !reads && !caller.scope.may_change() {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                format!("this token's scope is {:?}: it may only read (GET); use a token with scope \"full\"", caller.scope.as_str()),
            ));
        }
        Ok(ApiCaller(caller))
    }
}

/// The address a request came from, when the server knows it.
pub fn client_address(parts: &Parts) -> Option<std::net::IpAddr> {
    parts.extensions.get::<axum::extract::ConnectInfo<std::net::SocketAddr>>().map(|info| info.0.ip())
}

/// A JSON body whose mistakes are reported as `{"error"}` with what to fix.
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let limit = max_json_bytes(state);
        let bytes = axum::body::to_bytes(req.into_body(), limit)
            .await
            .map_err(|_| ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, format!("request body is over {limit} bytes")))?;
        if bytes.is_empty() {
            return Err(ApiError::new(StatusCode::BAD_REQUEST, "request body is empty: send a JSON object"));
        }
        let mut unknown = Vec::new();
        let value = serde_ignored::deserialize(&mut serde_json::Deserializer::from_slice(&bytes), |path| {
            unknown.push(path.to_string())
        })
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, format!("malformed JSON body: {e}")))?;
        // A misspelt field would otherwise be dropped in silence and its default used.
        if !unknown.is_empty() {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                format!("unknown field(s) {}: see /api/v1/openapi.json for the fields this request takes", unknown.join(", ")),
            ));
        }
        Ok(JsonBody(value))
    }
}

/// A query string whose mistakes are answered as `{"error"}` with what to fix, like a body's
/// (axum's own `Query` answers them as plain text).
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        match Query::<T>::try_from_uri(&parts.uri) {
            Ok(Query(value)) => Ok(ApiQuery(value)),
            Err(e) => Err(ApiError::new(StatusCode::BAD_REQUEST, format!("query string: {}", e.body_text().trim_start_matches("Failed to deserialize query string: ")))),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrgQuery {
    /// The provider admin names the tenant; tenant users may leave it out.
    org: Option<String>,
    limit: Option<i64>,
    /// Invocation lists: only the calls of this trigger (`schedule`, `http`, …).
    trigger: Option<String>,
    /// Invocation searches (see `InvocationQuery`).
    status: Option<String>,
    version: Option<i64>,
    since: Option<i64>,
    until: Option<i64>,
    request_id: Option<String>,
    cursor: Option<String>,
    /// Metrics: `1h`, `24h` or `7d`.
    window: Option<String>,
}

impl OrgQuery {
    fn org<'a>(&'a self, caller: &'a Caller) -> &'a str {
        self.org.as_deref().unwrap_or(&caller.org)
    }
}

// ---- handlers ----

/// A new token: made with a password (`org`, `username`, `password`; how a CLI signs in) or
/// with a full bearer token of the same user.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenRequest {
    org: Option<String>,
    username: Option<String>,
    password: Option<String>,
    name: Option<String>,
    expires_in_days: Option<i64>,
    scope: Option<String>,
}

async fn create_token(State(state): State<AppState>, request: Request) -> ApiResult<Response> {
    let (mut parts, body) = request.into_parts();
    let from = client_address(&parts);
    let with_token = bearer_token(&parts).is_some();
    let signed_in = ApiCaller::from_request_parts(&mut parts, &state).await;
    let JsonBody(req) = JsonBody::<TokenRequest>::from_request(Request::from_parts(parts, body), &state).await?;
    // The token counts only when the body signs in with no password.
    let signed_in = match signed_in {
        Ok(ApiCaller(caller)) => Some(caller),
        Err(refused) if with_token && req.password.is_none() => return Err(refused),
        Err(_) => None,
    };
    // A password in the body signs in as its user, whatever token comes with it.
    let caller = match (signed_in, &req.org, &req.username, &req.password) {
        (_, Some(org), Some(username), Some(password)) => state.service.authenticate(org, username, password, from).await?,
        (Some(caller), None, None, None) => caller,
        _ => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "send `org`, `username` and `password` together, or none of them with `Authorization: Bearer <token>` of a full token",
            ))
        }
    };
    let input = TokenInput { name: req.name.unwrap_or_else(|| "api".to_string()), expires_in_days: req.expires_in_days, scope: req.scope };
    let (view, token) = state.service.create_token(&caller, input).await?;
    let answer = json!({
        "token": token, "id": view.id, "name": view.name, "org": caller.org,
        "scope": view.scope, "expires_at": view.expires_at,
    });
    Ok((StatusCode::CREATED, Json(answer)).into_response())
}

async fn list_tokens(State(state): State<AppState>, ApiCaller(caller): ApiCaller) -> ApiResult<Json<Vec<TokenView>>> {
    Ok(Json(state.service.list_tokens(&caller).await?))
}

async fn revoke_token(State(state): State<AppState>, ApiCaller(caller): ApiCaller, Path(id): Path<String>) -> ApiResult<StatusCode> {
    let id: i64 = id.parse().map_err(|_| ApiError::new(StatusCode::BAD_REQUEST, format!("token id must be a number (got {id:?})")))?;
    state.service.revoke_token(&caller, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn list_tenants(State(state): State<AppState>, ApiCaller(caller): ApiCaller) -> ApiResult<Json<Vec<TenantView>>> {
    Ok(Json(state.service.list_tenants(&caller).await?))
}

async fn create_tenant(
    State(state): State<AppState>,
    ApiCaller(caller): ApiCaller,
    JsonBody(input): JsonBody<TenantInput>,
) -> ApiResult<Response> {
    let view = state.service.create_tenant(&caller, input).await?;
    Ok((StatusCode::CREATED, Json(view)).into_response())
}

async fn update_tenant(
    State(state): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Path(org): Path<String>,
    JsonBody(input): JsonBody<TenantInput>,
) -> ApiResult<Json<TenantView>> {
    Ok(Json(state.service.update_tenant(&caller, &org, input).await?))
}

async fn create_user(
    State(state): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Path(org): Path<String>,
    JsonBody(input): JsonBody<UserInput>,
) -> ApiResult<Response> {
    let view = state.service.create_user(&caller, &org, input).await?;
    Ok((StatusCode::CREATED, Json(view)).into_response())
}

async fn update_user(
    State(state): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Path((org, username)): Path<(String, String)>,
    JsonBody(change): JsonBody<UserChange>,
) -> ApiResult<Json<UserView>> {
    Ok(Json(state.service.update_user(&caller, &org, &username, change).await?))
}

async fn delete_user(
    State(state): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Path((org, username)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    state.service.delete_user(&caller, &org, &username).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn delete_tenant(State(state): State<AppState>, ApiCaller(caller): ApiCaller, Path(org): Path<String>) -> ApiResult<Json<TenantDeletion>> {
    Ok(Json(state.service.delete_tenant(&caller, &org).await?))
}

async fn list_audit(State(state): State<AppState>, ApiCaller(caller): ApiCaller, ApiQuery(q): ApiQuery<AuditQuery>) -> ApiResult<Json<Vec<AuditEntry>>> {
    Ok(Json(state.service.list_audit(&caller, q).await?))
}

async fn list_test_events(
    State(state): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Path(name): Path<String>,
    ApiQuery(q): ApiQuery<OrgQuery>,
) -> ApiResult<Json<Vec<TestEvent>>> {
    Ok(Json(state.service.list_test_events(&caller, q.org(&caller), &name).await?))
}

async fn save_test_event(
    State(state): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Path((name, event)): Path<(String, String)>,
    ApiQuery(q): ApiQuery<OrgQuery>,
    JsonBody(request): JsonBody<TestRequest>,
) -> ApiResult<Json<TestEvent>> {
    Ok(Json(state.service.save_test_event(&caller, q.org(&caller), &name, &event, request).await?))
}

async fn delete_test_event(
    State(state): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Path((name, event)): Path<(String, String)>,
    ApiQuery(q): ApiQuery<OrgQuery>,
) -> ApiResult<StatusCode> {
    state.service.delete_test_event(&caller, q.org(&caller), &name, &event).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Calls the function with a saved event, as Test Function does (recorded with trigger `test`).
async fn run_test_event(
    State(state): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Path((name, event)): Path<(String, String)>,
    ApiQuery(q): ApiQuery<OrgQuery>,
) -> ApiResult<Json<TestResponse>> {
    let org = q.org(&caller);
    let events = state.service.list_test_events(&caller, org, &name).await?;
    let saved = events.into_iter().find(|e| e.name == event);
    let saved = saved.ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, format!("function {name:?} has no saved event {event:?}")))?;
    Ok(Json(state.service.test_function(&caller, org, &name, saved.request).await?))
}

async fn list_users(State(state): State<AppState>, ApiCaller(caller): ApiCaller) -> ApiResult<Json<Vec<UserView>>> {
    Ok(Json(state.service.list_users(&caller).await?))
}

async fn list_functions(State(state): State<AppState>, ApiCaller(caller): ApiCaller) -> ApiResult<Json<Vec<FunctionView>>> {
    Ok(Json(state.service.list_functions(&caller).await?))
}

async fn create_function(
    State(state): State<AppState>,
    ApiCaller(caller): ApiCaller,
    JsonBody(spec): JsonBody<FunctionSpec>,
) -> ApiResult<Response> {
    let view = state.service.create_function(&caller, spec).await?;
    Ok((StatusCode::ACCEPTED, Json(view)).into_response())
}

async fn get_function(
    State(state): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Path(name): Path<String>,
    ApiQuery(q): ApiQuery<OrgQuery>,
) -> ApiResult<Json<FunctionView>> {
    Ok(Json(state.service.get_function(&caller, q.org(&caller), &name).await?))
}

/// Fields of an update; whatever is left out keeps its current value.
#[derive(Deserialize)]
struct FunctionPatch {
    language: Option<String>,
    /// The entry file; the other files stay as they are.
    code: Option<String>,
    /// The whole tree, replacing the stored one.
    files: Option<FileTree>,
    /// All plain variables, replacing the stored ones.
    env: Option<EnvVars>,
    /// Secrets to set (a value) or remove (null); others stay.
    secrets: Option<SecretsChange>,
    #[serde(default, deserialize_with = "app::model::present")]
    egress: Option<Option<Vec<String>>>,
    memory_mb: Option<i64>,
    timeout_ms: Option<i64>,
    public: Option<bool>,
    trigger: Option<Trigger>,
    mode: Option<String>,
    max_instances: Option<i64>,
    min_instances: Option<i64>,
    concurrency: Option<i64>,
    /// The latest version the change was made from; a newer one makes the update 409.
    expected_version: Option<i64>,
}

async fn update_function(
    State(state): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Path(name): Path<String>,
    ApiQuery(q): ApiQuery<OrgQuery>,
    JsonBody(patch): JsonBody<FunctionPatch>,
) -> ApiResult<Response> {
    let org = q.org(&caller);
    let current = state.service.get_function(&caller, org, &name).await?;
    let spec = FunctionSpec {
        name: name.clone(),
        language: patch.language.unwrap_or_else(|| current.language.as_str().to_string()),
        code: patch.code.unwrap_or_default(),
        files: patch.files,
        env: patch.env,
        secrets: patch.secrets,
        egress: patch.egress,
        memory_mb: patch.memory_mb,
        timeout_ms: patch.timeout_ms,
        public: patch.public,
        trigger: patch.trigger,
        mode: patch.mode,
        max_instances: patch.max_instances,
        min_instances: patch.min_instances,
        concurrency: patch.concurrency,
        // What the patch leaves out comes from `current`: a newer version appearing meanwhile
        // must refuse the update, not be undone by it.
        expected_version: patch.expected_version.or(Some(current.latest_version)),
    };
    let view = state.service.update_function(&caller, org, &name, spec).await?;
    Ok((StatusCode::ACCEPTED, Json(view)).into_response())
}

/// A new version from a zip archive of the function's files; its other settings stay.
async fn upload_code(
    State(state): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Path(name): Path<String>,
    ApiQuery(q): ApiQuery<OrgQuery>,
    request: Request,
) -> ApiResult<Response> {
    let content_type = request.headers().get(axum::http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default();
    if !content_type.starts_with("application/zip") {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("send the files as a zip archive with content-type: application/zip (got {content_type:?}); JSON goes to PUT /api/v1/functions/{name}"),
        ));
    }
    let max = state.service.config().max_files_bytes();
    // A zip is at most a little larger than what it holds.
    let limit = max + max / 10 + 64 * 1024;
    let bytes = axum::body::to_bytes(request.into_body(), limit).await.map_err(|_| {
        ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, format!("the archive is over {} bytes; a function's files may be {} unpacked", limit, app::files::human_bytes(max)))
    })?;
    let files = crate::platform::archive::read_zip(&bytes, max).map_err(PlatformError::Invalid)?;
    let org = q.org(&caller);
    let current = state.service.get_function(&caller, org, &name).await?;
    let spec = FunctionSpec {
        name: name.clone(),
        language: current.language.as_str().to_string(),
        files: Some(files),
        expected_version: Some(current.latest_version),
        ..Default::default()
    };
    let view = state.service.update_function(&caller, org, &name, spec).await?;
    Ok((StatusCode::ACCEPTED, Json(view)).into_response())
}

async fn delete_function(
    State(state): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Path(name): Path<String>,
    ApiQuery(q): ApiQuery<OrgQuery>,
) -> ApiResult<StatusCode> {
    state.service.delete_function(&caller, q.org(&caller), &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn list_versions(
    State(state): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Path(name): Path<String>,
    ApiQuery(q): ApiQuery<OrgQuery>,
) -> ApiResult<Json<Vec<VersionView>>> {
    Ok(Json(state.service.list_versions(&caller, q.org(&caller), &name).await?))
}

fn version_number(text: &str) -> ApiResult<i64> {
    text.parse().map_err(|_| ApiError::new(StatusCode::BAD_REQUEST, format!("{text:?} is not a version number: use 1, 2, …")))
}

async fn get_version(
    State(state): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Path((name, version)): Path<(String, String)>,
    ApiQuery(q): ApiQuery<OrgQuery>,
) -> ApiResult<Json<VersionDetail>> {
    Ok(Json(state.service.get_version(&caller, q.org(&caller), &name, version_number(&version)?).await?))
}

async fn restore_version(
    State(state): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Path((name, version)): Path<(String, String)>,
    ApiQuery(q): ApiQuery<OrgQuery>,
) -> ApiResult<Response> {
    let view = state.service.restore_version(&caller, q.org(&caller), &name, version_number(&version)?).await?;
    Ok((StatusCode::ACCEPTED, Json(view)).into_response())
}

async fn list_invocations(
    State(state): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Path(name): Path<String>,
    ApiQuery(q): ApiQuery<OrgQuery>,
) -> ApiResult<Response> {
    let org = q.org(&caller).to_string();
    let query = InvocationQuery {
        status: q.status,
        trigger: q.trigger,
        version: q.version,
        since: q.since,
        until: q.until,
        request_id: q.request_id,
        cursor: q.cursor,
        limit: q.limit,
    };
    let page = state.service.search_invocations(&caller, &org, &name, query).await?;
    let mut response = Json(page.invocations).into_response();
    // The next page, as a header: the body stays the list it always was.
    if let Some(cursor) = page.next_cursor.and_then(|c| axum::http::HeaderValue::from_str(&c).ok()) {
        response.headers_mut().insert("x-next-cursor", cursor);
    }
    Ok(response)
}

async fn function_metrics(
    State(state): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Path(name): Path<String>,
    ApiQuery(q): ApiQuery<OrgQuery>,
) -> ApiResult<Json<MetricsView>> {
    let window = q.window.as_deref().unwrap_or("1h");
    Ok(Json(state.service.function_metrics(&caller, q.org(&caller), &name, window).await?))
}

async fn service_links(State(state): State<AppState>, ApiCaller(caller): ApiCaller) -> ApiResult<Json<Vec<ServiceLink>>> {
    Ok(Json(state.service.service_links(&caller).await?))
}

async fn list_nodes(State(state): State<AppState>, ApiCaller(caller): ApiCaller) -> ApiResult<Json<Vec<NodeView>>> {
    Ok(Json(state.service.list_nodes(&caller).await?))
}

async fn drain_node(State(state): State<AppState>, ApiCaller(caller): ApiCaller, Path(name): Path<String>) -> ApiResult<Json<NodeView>> {
    Ok(Json(state.service.set_node_draining(&caller, &name, true).await?))
}

async fn undrain_node(State(state): State<AppState>, ApiCaller(caller): ApiCaller, Path(name): Path<String>) -> ApiResult<Json<NodeView>> {
    Ok(Json(state.service.set_node_draining(&caller, &name, false).await?))
}

/// Prometheus text; for the provider (scrape with its bearer token).
async fn metrics(State(state): State<AppState>, ApiCaller(caller): ApiCaller) -> ApiResult<Response> {
    if !caller.is_provider() {
        return Err(ApiError::new(StatusCode::FORBIDDEN, "metrics are for the provider admin"));
    }
    let gateway = state.service.calls().gateway();
    let mut text = gateway.metrics().render(&gateway.pool().gauges());
    let stems = gateway.pool().stem_figures();
    text.push_str(&crate::metrics::render_stem_cells(stems.cells, stems.memory_mb));
    if let Some(vcd) = &state.vcd {
        text.push_str(&vcd.render_metrics());
    }
    if let Some(broker) = &state.async_calls.broker {
        let functions = state.service.store().list_functions(None).await.map_err(PlatformError::from)?;
        let served: Vec<(String, String)> =
            functions.into_iter().filter(|f| f.current_version.is_some() && !f.is_deleting()).map(|f| (f.org, f.name)).collect();
        text.push_str(&crate::metrics::render_async_depths(&broker.depths(&served).await));
    }
    Ok(([(http::header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response())
}

async fn no_such_endpoint() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "no such API endpoint; see /api/v1/openapi.json")
}

async fn get_invocation(
    State(state): State<AppState>,
    ApiCaller(caller): ApiCaller,
    Path(id): Path<String>,
) -> ApiResult<Json<serde_json::Value>> {
    Ok(Json(state.service.invocation_for(&caller, &id).await?))
}

async fn openapi(State(state): State<AppState>) -> Json<serde_json::Value> {
    let config = state.service.config();
    let limits = crate::http::openapi::DocumentedLimits {
        max_memory_mb: config.max_memory_mb,
        max_timeout_ms: config.max_timeout_ms,
        token_max_days: config.token_max_days,
    };
    Json(crate::http::openapi::document(limits))
}
