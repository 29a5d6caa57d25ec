//! The tenant routes `/api/org/{org}/{name}[/{rest…}]`: any method, served by the gateway.

use crate::api::{bearer_token, ApiError};
use crate::gateway::CallRequest;
use crate::service::Service;
use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::Router;

/// Its state is the service alone: a call does not copy the portal's settings.
pub fn router() -> Router<Service> {
    Router::new()
        .route("/api/org/{org}/{name}", any(call_root))
        .route("/api/org/{org}/{name}/", any(call_root))
        .route("/api/org/{org}/{name}/{*rest}", any(call_path))
}

async fn call_root(State(service): State<Service>, Path((org, name)): Path<(String, String)>, request: Request) -> Response {
    call(service, org, name, String::new(), request).await
}

async fn call_path(
    State(service): State<Service>,
    Path((org, name, rest)): Path<(String, String, String)>,
    request: Request,
) -> Response {
    call(service, org, name, format!("/{rest}"), request).await
}

async fn call(service: Service, org: String, name: String, path: String, request: Request) -> Response {
    match serve(&service, org, name, path, request).await {
        Ok(response) => response,
        Err(e) => e.into_response(),
    }
}

async fn serve(service: &Service, org: String, name: String, path: String, request: Request) -> Result<Response, ApiError> {
    let not_found = || ApiError::new(StatusCode::NOT_FOUND, format!("no function {name:?} in org {org:?}"));
    let found = service.routable(&org, &name).await.map_err(|e| {
        tracing::error!(error = %e, "database error");
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
    })?;
    let Some(found) = found else { return Err(not_found()) };

    let (parts, body) = request.into_parts();
    let is_public = match &found {
        Ok(target) => target.function.public != 0,
        Err(f) => f.public != 0,
    };
    if !is_public {
        let Some(token) = bearer_token(&parts) else {
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                format!("calling this function needs `Authorization: Bearer <token>` of a user of org {org:?}"),
            ));
        };
        let caller = service
            .caller_by_token(token)
            .await?
            .ok_or_else(|| ApiError::new(StatusCode::UNAUTHORIZED, "invalid or revoked token"))?;
        // Another tenant's caller learns nothing: the same 404 as for a missing function.
        if !(caller.is_provider() || caller.org == org) {
            return Err(not_found());
        }
    }
    let target = found.map_err(|f| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, crate::service::not_servable(&f)))?;

    let limit = service.config.max_body_bytes;
    let body = axum::body::to_bytes(body, limit).await.map_err(|_| {
        ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, format!("request body is over the {limit}-byte limit"))
    })?;
    let headers = parts
        .headers
        .iter()
        // Values with bytes beyond visible ASCII (UTF-8 names, say) reach the function too.
        .map(|(k, v)| (k.as_str().to_string(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
        .collect();
    let call = CallRequest {
        method: parts.method.as_str().to_string(),
        path,
        query: parts.uri.query().unwrap_or("").to_string(),
        headers,
        body,
        trigger: "http",
    };
    let wants_async = parts
        .headers
        .get("x-invoke-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("async"));
    if wants_async {
        let id = service.async_calls.accept(&target, &call).await.map_err(|e| {
            tracing::error!(error = %e, "cannot queue async call");
            ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "the call could not be queued; try again")
        })?;
        let location = format!("/api/v1/invocations/{id}");
        let body = serde_json::json!({"invocation_id": id, "status": location});
        return Ok((StatusCode::ACCEPTED, [(http::header::LOCATION, location)], axum::Json(body)).into_response());
    }
    let answer = service.gateway.invoke(target, call).await;
    let mut response = Response::new(Body::from(answer.body));
    *response.status_mut() = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::BAD_GATEWAY);
    for (k, v) in answer.headers {
        if let (Ok(k), Ok(v)) = (HeaderName::try_from(k), HeaderValue::try_from(v)) {
            response.headers_mut().append(k, v);
        }
    }
    Ok(response)
}
