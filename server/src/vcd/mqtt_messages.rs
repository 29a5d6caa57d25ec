//! vCD's MQTT message formats, as the platform reads and writes them (vcd-mqtt.md §M1.5,
//! §M1.6, §M3): an `API_REQUEST` (its `httpRequest` is base64 of a JSON payload whose body is
//! base64 again), its `API_RESPONSE`, and the envelope of a notification.

use super::api_core::{VcdAnswer, VcdApiCall};
use super::messages::Notification;
use base64::Engine as _;
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// What arrived on the extension's monitor topic.
#[derive(Debug)]
pub enum Monitored {
    /// An API call, with the request id its answer must carry.
    ApiRequest { request_id: String, call: VcdApiCall },
    /// A message of another type (e.g. `BEHAVIOR_INVOCATION`), named.
    Other(String),
}

/// A message that could not be read, with its request id when one was found (then it can
/// still be answered).
#[derive(Debug)]
pub struct Unreadable {
    pub request_id: Option<String>,
    pub reason: String,
}

/// The decoded `httpRequest`: `{message, securityContext, context}`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Payload {
    message: HttpMessage,
    #[serde(default)]
    security_context: Option<SecurityContext>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct HttpMessage {
    method: String,
    request_uri: String,
    #[serde(default)]
    query_string: Option<String>,
    #[serde(default)]
    headers: BTreeMap<String, Value>,
    /// Base64 of the body (inside the base64 payload: encoded twice); null or empty when none.
    #[serde(default)]
    body: Option<String>,
}

#[derive(Deserialize, Clone)]
struct SecurityContext {
    #[serde(default)]
    user: String,
    #[serde(default)]
    org: String,
}

/// Reads a message of the monitor topic.
pub fn parse_monitored(data: &[u8]) -> Result<Monitored, Unreadable> {
    let value: Value = serde_json::from_slice(data)
        .map_err(|e| Unreadable { request_id: None, reason: format!("the message is not JSON: {e}") })?;
    let request_id = value.pointer("/headers/requestId").and_then(Value::as_str).map(str::to_string);
    let bad = |reason: String| Unreadable { request_id: request_id.clone(), reason };
    match value.get("type").and_then(Value::as_str) {
        Some("API_REQUEST") => {}
        Some(other) => return Ok(Monitored::Other(other.to_string())),
        None => return Err(bad("the message has no \"type\" (API_REQUEST, BEHAVIOR_INVOCATION, …)".into())),
    }
    let Some(id) = request_id.clone() else { return Err(bad("the API_REQUEST has no headers.requestId".into())) };
    let payload_bytes = match value.get("httpRequest") {
        Some(Value::String(text)) => base64::engine::general_purpose::STANDARD
            .decode(text.trim())
            .map_err(|e| bad(format!("httpRequest is not base64: {e}")))?,
        // Jackson may also write a byte[] as numbers.
        Some(Value::Array(numbers)) => numbers
            .iter()
            .map(|n| n.as_u64().filter(|n| *n < 256).map(|n| n as u8))
            .collect::<Option<Vec<u8>>>()
            .ok_or_else(|| bad("httpRequest is an array but not of bytes".into()))?,
        _ => return Err(bad("the API_REQUEST has no httpRequest (base64 of the HTTP request)".into())),
    };
    let payload: Payload = serde_json::from_slice(&payload_bytes)
        .map_err(|e| bad(format!("httpRequest is not vCD's {{message, securityContext}} payload: {e}")))?;
    // The payload's security context, else the one in the headers: vCD sends both alike.
    let context = payload
        .security_context
        .filter(|c| !c.org.is_empty())
        .or_else(|| value.pointer("/headers/context").and_then(|c| serde_json::from_value::<SecurityContext>(c.clone()).ok()))
        .filter(|c| !c.org.is_empty())
        .ok_or_else(|| bad("the API_REQUEST names no caller org (securityContext.org)".into()))?;
    let message = payload.message;
    let body = base64::engine::general_purpose::STANDARD
        .decode(message.body.as_deref().unwrap_or("").trim())
        .map_err(|e| bad(format!("the request body is not base64: {e}")))?;
    let headers = message
        .headers
        .into_iter()
        .map(|(k, v)| {
            let v = v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string());
            (k, v)
        })
        .collect();
    let call = VcdApiCall {
        method: message.method,
        request_uri: message.request_uri,
        query: message.query_string,
        headers,
        body,
        org: context.org,
        user: context.user,
    };
    Ok(Monitored::ApiRequest { request_id: id, call })
}

/// The `API_RESPONSE` for request `request_id` (headers as strings, as vCD's model types them).
pub fn api_response(request_id: &str, answer: &VcdAnswer) -> Vec<u8> {
    let mut headers: BTreeMap<String, String> = answer.headers.iter().cloned().collect();
    headers.insert("Content-Length".into(), answer.body.len().to_string());
    let message = json!({
        "type": "API_RESPONSE",
        "headers": {"requestId": request_id},
        "httpResponse": {
            "statusCode": answer.status,
            "headers": headers,
            "body": base64::engine::general_purpose::STANDARD.encode(&answer.body),
        },
    });
    serde_json::to_vec(&message).expect("json")
}

/// A notification of a `publish/{org}/{user}` topic: `{"type":"EVENT", "headers", "payload"}`
/// whose payload (a JSON string) is read like vCD's JSON notification over AMQP. `None` for
/// other types (`TASK`, …), which trigger nothing.
pub fn parse_notification(data: &[u8]) -> Result<Option<(Notification, Vec<u8>)>, String> {
    let value: Value = serde_json::from_slice(data).map_err(|e| format!("not JSON: {e}"))?;
    if value.get("type").and_then(Value::as_str) != Some("EVENT") {
        return Ok(None);
    }
    let payload = match value.get("payload") {
        Some(Value::String(text)) => text.as_bytes().to_vec(),
        Some(object @ Value::Object(_)) => serde_json::to_vec(object).expect("json"),
        _ => return Err("the EVENT has no payload".into()),
    };
    let notification: Notification =
        serde_json::from_slice(&payload).map_err(|e| format!("the EVENT's payload is not a vCD notification with a \"type\": {e}"))?;
    Ok(Some((notification, payload)))
}

/// The org uuid of a notification topic `publish/{org}/{user}`.
pub fn topic_org(topic: &str) -> Option<&str> {
    let mut parts = topic.split('/');
    match (parts.next(), parts.next()) {
        (Some("publish"), Some(org)) if !org.is_empty() => Some(org),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(text: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(text)
    }

    fn request(payload: &str) -> Vec<u8> {
        json!({"type": "API_REQUEST",
            "headers": {"requestId": "r1", "context": {"user": "urn:vcloud:user:u", "org": "urn:vcloud:org:ctx"}},
            "httpRequest": encode(payload)})
        .to_string()
        .into_bytes()
    }

    #[test]
    fn reads_an_api_request_with_its_body_encoded_twice() {
        let payload = json!({"message": {"request": true, "id": "r1", "method": "POST", "requestUri": "/api/org/acme/hello/x",
            "queryString": "n=1", "headers": {"Accept": "application/json", "X-Num": 5}, "body": encode("{\"a\":1}")},
            "securityContext": {"user": "urn:vcloud:user:u", "org": "urn:vcloud:org:ABC", "apiAccessToken": "secret"}, "context": {}});
        let Monitored::ApiRequest { request_id, call } = parse_monitored(&request(&payload.to_string())).unwrap() else { panic!() };
        assert_eq!(request_id, "r1");
        assert_eq!(call.request_uri, "/api/org/acme/hello/x");
        assert_eq!(call.query.as_deref(), Some("n=1"));
        assert_eq!(call.body, b"{\"a\":1}");
        assert_eq!(call.org, "urn:vcloud:org:ABC");
        assert!(call.headers.contains(&("X-Num".to_string(), "5".to_string())));
    }

    #[test]
    fn says_why_a_message_is_unreadable_and_keeps_the_request_id() {
        assert!(parse_monitored(b"nope").unwrap_err().reason.contains("not JSON"));
        let no_payload = parse_monitored(&request("not json")).unwrap_err();
        assert_eq!(no_payload.request_id.as_deref(), Some("r1"));
        assert!(no_payload.reason.contains("payload"), "{}", no_payload.reason);
        let bad_body = json!({"message": {"method": "GET", "requestUri": "/x", "body": "%%%"}, "securityContext": {"org": "o"}});
        assert!(parse_monitored(&request(&bad_body.to_string())).unwrap_err().reason.contains("base64"));
        let behavior = br#"{"type":"BEHAVIOR_INVOCATION","headers":{"taskId":"t"}}"#;
        assert!(matches!(parse_monitored(behavior).unwrap(), Monitored::Other(kind) if kind == "BEHAVIOR_INVOCATION"));
    }

    #[test]
    fn answers_in_vcds_response_shape() {
        let answer = VcdAnswer { status: 201, headers: vec![("Content-Type".into(), "text/plain".into())], body: "hi".into() };
        let reply: Value = serde_json::from_slice(&api_response("r9", &answer)).unwrap();
        assert_eq!(reply["type"], "API_RESPONSE");
        assert_eq!(reply["headers"]["requestId"], "r9");
        assert_eq!(reply["httpResponse"]["statusCode"], 201);
        assert_eq!(reply["httpResponse"]["headers"]["Content-Length"], "2");
        assert_eq!(reply["httpResponse"]["body"], encode("hi"));
    }

    #[test]
    fn reads_events_and_their_topics_org() {
        let inner = json!({"eventId": "e1", "type": "com/vmware/vcloud/event/vm/create", "operationSuccess": true, "org": "urn:vcloud:org:o"});
        let message = json!({"type": "EVENT", "headers": {}, "payload": inner.to_string()}).to_string();
        let (n, _) = parse_notification(message.as_bytes()).unwrap().unwrap();
        assert_eq!(n.kind, "com/vmware/vcloud/event/vm/create");
        assert!(parse_notification(br#"{"type":"TASK","payload":"{}"}"#).unwrap().is_none());
        assert_eq!(topic_org("publish/abc/def"), Some("abc"));
        assert_eq!(topic_org("topic/extension/x"), None);
    }
}
