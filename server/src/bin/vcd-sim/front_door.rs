//! vCD's API-extension front door: a request under /api/ that no built-in endpoint handles is
//! matched against the URL patterns of enabled services, wrapped as the `[request,
//! securityContext]` JSON message, published to the service's exchange, and the extension's reply
//! becomes the HTTP response.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri, Version};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use lapin::types::{AMQPValue, FieldTable, LongString};
use lapin::BasicProperties;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use uuid::Uuid;

use crate::rest::{api_version, authenticate, VcdError};
use crate::state::{CallRecord, Caller, Service, SimState};

const HOP_BY_HOP: &[&str] =
    &["connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer", "transfer-encoding", "upgrade", "content-length"];

/// The rights the security context lists; vCD sends the caller's rights, their exact form is not
/// documented (see the protocol doc), so the sim sends right URNs derived from right names.
fn rights_of(caller: &Caller) -> Vec<Value> {
    let names: &[&str] = if caller.is_system() {
        &["General: Administrator View", "Extension: Manage", "Organization: View"]
    } else {
        &["General: View Error Details", "Organization: View"]
    };
    names
        .iter()
        .map(|n| Value::String(format!("urn:vcloud:right:{}", Uuid::new_v5(&Uuid::NAMESPACE_URL, format!("vcd-sim:right:{n}").as_bytes()))))
        .collect()
}

/// Header names as a Java servlet container would show them (`Content-Type`), so an extension
/// that compares names case-sensitively with lower case finds out here rather than in production.
fn canonical_name(name: &str) -> String {
    name.split('-')
        .map(|part| {
            let mut c = part.chars();
            match c.next() {
                Some(f) => f.to_ascii_uppercase().to_string() + &c.as_str().to_ascii_lowercase(),
                None => String::new(),
            }
        })
        .collect::<Vec<_>>()
        .join("-")
}

fn version_name(v: Version) -> &'static str {
    match v {
        Version::HTTP_10 => "HTTP/1.0",
        Version::HTTP_2 => "HTTP/2.0",
        _ => "HTTP/1.1",
    }
}

/// The extension's reply (protocol doc §2.4).
#[derive(Deserialize)]
struct Reply {
    id: Option<String>,
    #[serde(rename = "statusCode")]
    status_code: u16,
    #[serde(default)]
    headers: Option<Map<String, Value>>,
    #[serde(default)]
    body: Option<String>,
    #[serde(default)]
    request: Option<bool>,
}

fn reply_to_response(request_id: &str, data: &[u8]) -> Result<Response, String> {
    let reply: Reply = serde_json::from_slice(data).map_err(|e| format!("the extension's reply is not the expected JSON object: {e}"))?;
    if reply.request == Some(true) {
        return Err("the extension's reply says \"request\": true; a reply must say false".into());
    }
    if let Some(id) = &reply.id {
        if id != request_id {
            return Err(format!("the extension's reply has id '{id}', the request had id '{request_id}'"));
        }
    }
    let status = StatusCode::from_u16(reply.status_code)
        .ok()
        .filter(|s| (100..=599).contains(&s.as_u16()))
        .ok_or_else(|| format!("the extension's reply has an invalid statusCode {}", reply.status_code))?;
    let body = base64::engine::general_purpose::STANDARD
        .decode(reply.body.unwrap_or_default().trim())
        .map_err(|e| format!("the extension's reply body is not valid base64: {e}"))?;
    // Built by hand: `(status, bytes).into_response()` would add its own Content-Type.
    let mut response = Response::new(axum::body::Body::from(body));
    *response.status_mut() = status;
    for (name, value) in reply.headers.unwrap_or_default() {
        if HOP_BY_HOP.contains(&name.to_ascii_lowercase().as_str()) {
            continue;
        }
        let value = match value {
            Value::String(s) => s,
            Value::Null => continue,
            other => other.to_string(),
        };
        let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| format!("the extension's reply has an invalid header name '{name}'"))?;
        let value = HeaderValue::from_str(&value).map_err(|_| format!("the extension's reply header {name} has an invalid value"))?;
        response.headers_mut().append(name, value);
    }
    Ok(response)
}

pub struct Incoming {
    pub method: Method,
    pub uri: Uri,
    pub version: Version,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub remote: SocketAddr,
}

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

fn fmt_secs(d: Duration) -> String {
    format!("{} s", d.as_secs_f64())
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
        forward(state, &req, &caller, &service).await
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_names_look_like_a_servlet_container_shows_them() {
        assert_eq!(canonical_name("content-type"), "Content-Type");
        assert_eq!(canonical_name("x-vcloud-authorization"), "X-Vcloud-Authorization");
    }

    #[test]
    fn replies_map_to_responses() {
        let ok = reply_to_response("1", br#"{"id":"1","statusCode":201,"headers":{"Content-Length":2,"X-A":"b"},"body":"aGk=","request":false}"#).unwrap();
        assert_eq!(ok.status(), 201);
        assert_eq!(ok.headers()["x-a"], "b");
        assert!(ok.headers().get("content-length").is_none_or(|v| v == "2"));
        // Only the extension's own headers: no Content-Type made up by the sim.
        assert!(ok.headers().get("content-type").is_none());
        assert!(reply_to_response("1", b"[1]").unwrap_err().contains("not the expected JSON"));
        assert!(reply_to_response("1", br#"{"id":"2","statusCode":200}"#).unwrap_err().contains("id '2'"));
        assert!(reply_to_response("1", br#"{"statusCode":200,"body":"***"}"#).unwrap_err().contains("base64"));
    }
}
