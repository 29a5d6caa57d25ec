//! The tenant routes `/api/org/{org}/{name}[/{rest…}]` over HTTP: any method, turned into a
//! call for the dispatcher and its answer written back.
//!
//! `Front` is the server's outermost service: calls go straight to the dispatcher, everything
//! else to the portal's router. Route matching, the router's layers and the state it clones for
//! every request cost more than the gateway's own work on the warm path.

use super::api::bearer_token;
use crate::calls::dispatch::{Call, Credentials, Delivery, Dispatcher};
use crate::calls::request::{parse_route, CallRequest, CallResponse, CallTrigger, FunctionRef, Rejection};
use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::Response;
use axum::Router;
use futures_util::future::BoxFuture;
use std::convert::Infallible;
use std::task::{Context, Poll};
use tower::ServiceExt as _;

#[derive(Clone)]
pub struct Front {
    dispatcher: Dispatcher,
    max_body_bytes: usize,
    portal: Router,
}

impl Front {
    pub fn new(dispatcher: Dispatcher, max_body_bytes: usize, portal: Router) -> Front {
        Front { dispatcher, max_body_bytes, portal }
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
        let Some(route) = parse_route(request.uri().path()) else {
            return Box::pin(self.portal.clone().oneshot(request));
        };
        let front = self.clone();
        Box::pin(async move {
            let answer = match route {
                Ok((function, path)) => front.serve(function, path, request).await,
                Err(rejection) => rejection.into_response(),
            };
            Ok(http_response(answer))
        })
    }
}

impl Front {
    /// The HTTP wire format in and out; everything else is the dispatcher's.
    async fn serve(&self, function: FunctionRef, path: String, request: Request) -> CallResponse {
        let (parts, body) = request.into_parts();
        let limit = self.max_body_bytes;
        let Ok(body) = axum::body::to_bytes(body, limit).await else {
            return Rejection::new(413, format!("request body is over the {limit}-byte limit")).into_response();
        };
        let headers = parts
            .headers
            .iter()
            // Values with bytes beyond visible ASCII (UTF-8 names, say) reach the function too.
            .map(|(k, v)| (k.as_str().to_string(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
            .collect();
        let request = CallRequest {
            method: parts.method.as_str().to_string(),
            path,
            query: parts.uri.query().unwrap_or("").to_string(),
            headers,
            body,
            trigger: CallTrigger::Http,
        };
        let credentials = Credentials::Bearer(bearer_token(&parts).map(str::to_string));
        let call = Call { function, request, credentials, delivery: Delivery::AsAsked };
        match self.dispatcher.dispatch(call).await {
            Ok(dispatched) => dispatched.into_response(),
            Err(rejection) => rejection.into_response(),
        }
    }
}

fn http_response(answer: CallResponse) -> Response {
    let mut response = Response::new(Body::from(answer.body));
    *response.status_mut() = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::BAD_GATEWAY);
    for (k, v) in answer.headers {
        if let (Ok(k), Ok(v)) = (HeaderName::try_from(k), HeaderValue::try_from(v)) {
            response.headers_mut().append(k, v);
        }
    }
    response
}
