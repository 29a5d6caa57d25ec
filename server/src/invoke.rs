//! The tenant routes `/api/org/{org}/{name}[/{rest…}]`: any method, served by the gateway.
//!
//! `Front` is the server's outermost service: calls go straight to the gateway, everything else
//! to the portal's router. Route matching, the router's layers and the state it clones for
//! every request cost more than the gateway's own work on the warm path.

use crate::api::{bearer_token, ApiError};
use crate::gateway::CallRequest;
use crate::service::Service;
use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use futures_util::future::BoxFuture;
use std::borrow::Cow;
use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};
use tower::ServiceExt as _;

#[derive(Clone)]
pub struct Front {
    service: Arc<Service>,
    portal: Router,
}

impl Front {
    pub fn new(service: Service, portal: Router) -> Front {
        Front { service: Arc::new(service), portal }
    }
}

impl tower::Service<Request> for Front {
    type Response = Response;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Response, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let Some((org, name, rest)) = call_route(request.uri().path()) else {
            return Box::pin(self.portal.clone().oneshot(request));
        };
        let route = decoded(org).and_then(|org| Ok((org.into_owned(), decoded(name)?.into_owned(), decoded(rest)?.into_owned())));
        let service = self.service.clone();
        Box::pin(async move {
            let served = match route {
                Ok((org, name, rest)) => serve(&service, org, name, rest, request).await,
                Err(e) => Err(e),
            };
            Ok(served.unwrap_or_else(|e| e.into_response()))
        })
    }
}

/// `/api/org/{org}/{name}[/{rest…}]` split into org, name and what follows the name (from its
/// `/`, or empty), still percent-encoded; `None` for any other path.
pub fn call_route(path: &str) -> Option<(&str, &str, &str)> {
    let route = path.strip_prefix("/api/org/")?;
    let (org, route) = route.split_once('/')?;
    let (name, rest) = route.find('/').map_or((route, ""), |end| route.split_at(end));
    let rest = if rest == "/" { "" } else { rest };
    (!org.is_empty() && !name.is_empty()).then_some((org, name, rest))
}

fn decoded(part: &str) -> Result<Cow<'_, str>, ApiError> {
    percent_encoding::percent_decode_str(part)
        .decode_utf8()
        .map_err(|_| ApiError::new(StatusCode::BAD_REQUEST, format!("the path part {part:?} is not UTF-8 once decoded")))
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

#[cfg(test)]
mod tests {
    use super::call_route;

    #[test]
    fn only_function_routes_are_calls() {
        assert_eq!(call_route("/api/org/acme/hello"), Some(("acme", "hello", "")));
        assert_eq!(call_route("/api/org/acme/hello/"), Some(("acme", "hello", "")));
        assert_eq!(call_route("/api/org/acme/hello/a/b%20c"), Some(("acme", "hello", "/a/b%20c")));
        for other in ["/api/org/acme", "/api/org/acme/", "/api/org//hello", "/api/v1/functions", "/", "/api/orgs/acme/hello"] {
            assert_eq!(call_route(other), None, "{other}");
        }
    }
}
