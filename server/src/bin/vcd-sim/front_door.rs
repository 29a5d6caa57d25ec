//! vCD's API-extension front door: a request under /api/ that no built-in endpoint handles is
//! matched against the URL patterns of enabled services, wrapped as the `[request,
//! securityContext]` JSON message, published to the service's exchange (an MQTT extension's goes
//! through `mqtt_front_door`), and the extension's reply
//! becomes the HTTP response.

use std::net::SocketAddr;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri, Version};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use lapin::types::{AMQPValue, FieldTable, LongString};
use lapin::BasicProperties;
use serde_json::{json, Map, Value};
use uuid::Uuid;

use crate::forwarded::{canonical_name, fmt_secs, reply_to_response, rights_of, version_name, Incoming};
use crate::rest::{api_version, authenticate, VcdError};
use crate::state::{CallRecord, Caller, Service, SimState};


/// The `[request, securityContext]` message body (protocol doc §2.3).
fn message(state: &SimState, req: &Incoming, id: &str, caller: &Caller) -> Value {
    let mut headers = Map::new();
    for (name, value) in &req.headers {
        let key = canonical_name(name.as_str());
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        match headers.get_mut(&key) {
            Some(Value::String(prev)) => {
                prev.push_str(", ");
                prev.push_str(&value);
            }
            _ => {
                headers.insert(key, Value::String(value));
            }
        }
    }
    let request = json!({
        "id": id,
        "method": req.method.as_str(),
        "scheme": "http",
        "protocol": version_name(req.version),
        "headers": headers,
        "queryString": req.uri.query(),
        "requestUri": req.uri.path(),
        "body": base64::engine::general_purpose::STANDARD.encode(&req.body),
        "localPort": state.local_addr.port(),
        "localAddr": state.local_addr.ip().to_string(),
        "remoteAddr": req.remote.ip().to_string(),
        "remotePort": req.remote.port(),
        "request": true,
    });
    let context = json!({"user": caller.user_urn(), "org": caller.org_urn(), "rights": rights_of(caller)});
    json!([request, context])
}

fn properties(state: &SimState, correlation_id: &str) -> BasicProperties {
    let mut headers = FieldTable::default();
    headers.insert("replyToExchange".into(), AMQPValue::LongString(LongString::from(state.amqp.reply_exchange())));
    headers.insert("messageType".into(), AMQPValue::LongString(LongString::from("ProcessHttpRequest")));
    BasicProperties::default()
        .with_correlation_id(correlation_id.into())
        .with_reply_to(state.amqp.reply_key().into())
        .with_content_type("application/json".into())
        .with_headers(headers)
}

async fn forward(state: &SimState, req: &Incoming, caller: &Caller, service: &Service) -> Result<Response, VcdError> {
    let id = Uuid::new_v4().to_string();
    let correlation_id = Uuid::new_v4().to_string();
    let body = serde_json::to_vec(&message(state, req, &id, caller)).expect("JSON values serialize");
    let rx = state
        .amqp
        .send_request(&service.spec.exchange, &service.spec.routing_key, &correlation_id, &body, properties(state, &correlation_id))
        .await
        .map_err(|e| {
            let status = match e {
                crate::amqp::PublishError::NoBroker => StatusCode::SERVICE_UNAVAILABLE,
                _ => StatusCode::BAD_GATEWAY,
            };
            VcdError::new(status, format!("cannot forward to extension service '{}': {e}", service.spec.name))
        })?;
    let timeout = state.settings.reply_timeout;
    match tokio::time::timeout(timeout, rx).await {
        Ok(Ok(data)) => reply_to_response(&id, &data).map_err(|why| {
            tracing::warn!(service = %service.spec.name, "bad reply: {why}");
            VcdError::new(StatusCode::BAD_GATEWAY, why)
        }),
        Ok(Err(_)) => Err(VcdError::new(StatusCode::BAD_GATEWAY, "the reply channel closed (broker connection lost)")),
        Err(_) => {
            state.amqp.forget(&correlation_id);
            Err(VcdError::new(
                StatusCode::GATEWAY_TIMEOUT,
                format!("extension service '{}' did not reply within {}", service.spec.name, fmt_secs(timeout)),
            ))
        }
    }
}


pub async fn handle(state: &SimState, req: Incoming) -> Response {
    let started = Instant::now();
    let mut org = "-".to_string();
    let mut service_name = None;
    let result = async {
        api_version(state, &req.headers)?;
        let caller = authenticate(state, &req.headers, true)?;
        org = caller.org.clone();
        let service = state.route(req.uri.path()).ok_or_else(|| {
            VcdError::new(StatusCode::NOT_FOUND, format!("no resource at {} (no API filter of an enabled extension service matches)", req.uri.path()))
        })?;
        service_name = Some(service.spec.name.clone());
        if service.mqtt.is_some() {
            crate::mqtt_front_door::forward(state, &req, &caller, &service).await
        } else {
            forward(state, &req, &caller, &service).await
        }
    }
    .await;
    let response = result.unwrap_or_else(IntoResponse::into_response);
    state.record_call(CallRecord {
        method: req.method.to_string(),
        path: req.uri.path().to_string(),
        org,
        service: service_name,
        status: response.status().as_u16(),
        ms: started.elapsed().as_millis(),
    });
    response
}

/// The router's fallback: /api/… goes through the front door, anything else is 404.
pub async fn fallback(
    State(state): State<SimState>,
    ConnectInfo(remote): ConnectInfo<SocketAddr>,
    method: Method,
    uri: Uri,
    version: Version,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path();
    if path.starts_with("/api/") {
        return handle(&state, Incoming { method, uri, version, headers, body, remote }).await;
    }
    let error = VcdError::new(StatusCode::NOT_FOUND, format!("vcd-sim has no resource at {path}"));
    if path.starts_with("/cloudapi/") { error.json() } else { error }.into_response()
}
