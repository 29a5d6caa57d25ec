//! What the front door forwards and gets back, whichever broker carries it: the incoming
//! request, the caller's rights, header names as a servlet container shows them, and an
//! extension's answer (`{statusCode, headers, body}`, body in base64) as the HTTP response.

use std::net::SocketAddr;
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri, Version};
use axum::response::Response;
use base64::Engine;
use serde::Deserialize;
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::state::Caller;

const HOP_BY_HOP: &[&str] =
    &["connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer", "transfer-encoding", "upgrade", "content-length"];

/// The rights the security context lists; vCD sends the caller's rights, their exact form is not
/// documented (see the protocol doc), so the sim sends right URNs derived from right names.
pub fn rights_of(caller: &Caller) -> Vec<Value> {
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
pub fn canonical_name(name: &str) -> String {
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

pub fn version_name(v: Version) -> &'static str {
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

pub fn reply_to_response(request_id: &str, data: &[u8]) -> Result<Response, String> {
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

pub fn fmt_secs(d: Duration) -> String {
    format!("{} s", d.as_secs_f64())
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
