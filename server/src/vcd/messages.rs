//! vCD's AMQP message formats, as the platform reads and writes them (vcd-protocol.md §2.3,
//! §2.4, §3): an API request `[request, securityContext]`, its reply, and a JSON notification.

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Element `[0]`: the HTTP request vCD forwards. Only `id`, `method`, `requestUri` are required;
/// the rest default, since vCD versions differ in what they send.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiRequest {
    pub id: String,
    pub method: String,
    pub request_uri: String,
    #[serde(default)]
    pub query_string: Option<String>,
    #[serde(default)]
    pub headers: BTreeMap<String, serde_json::Value>,
    /// Base64 of the body; empty when there is none.
    #[serde(default)]
    pub body: String,
}

/// Element `[1]`: who calls, as vCD authenticated them.
#[derive(Debug, Clone, Deserialize)]
pub struct SecurityContext {
    #[serde(default)]
    pub user: String,
    pub org: String,
    #[serde(default)]
    pub rights: Vec<serde_json::Value>,
}

/// The reply vCD turns into the caller's HTTP response.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiReply {
    pub id: String,
    pub headers: BTreeMap<String, serde_json::Value>,
    pub status_code: u16,
    /// Base64 of the response body.
    pub body: String,
    pub request: bool,
}

impl ApiReply {
    pub fn new(id: &str, status: u16, mut headers: BTreeMap<String, serde_json::Value>, body: &[u8]) -> ApiReply {
        headers.insert("Content-Length".into(), body.len().into());
        ApiReply {
            id: id.to_string(),
            headers,
            status_code: status,
            body: base64::engine::general_purpose::STANDARD.encode(body),
            request: false,
        }
    }

    /// An error answer with a JSON body `{"message": …}` (the form vCD extensions use).
    pub fn error(id: &str, status: u16, message: &str) -> ApiReply {
        let body = serde_json::to_vec(&serde_json::json!({ "message": message })).expect("json");
        let headers = BTreeMap::from([("Content-Type".to_string(), "application/json".into())]);
        ApiReply::new(id, status, headers, &body)
    }
}

/// A request that could not be read, with what the reply can still say.
#[derive(Debug)]
pub struct Unreadable {
    /// The request's `id` when it could be found.
    pub id: String,
    pub reason: String,
}

/// Parses vCD's two-element array; on failure tells why, keeping the id if one was readable.
pub fn parse_request(data: &[u8]) -> Result<(ApiRequest, SecurityContext, Vec<u8>), Unreadable> {
    let value: serde_json::Value = serde_json::from_slice(data)
        .map_err(|e| Unreadable { id: String::new(), reason: format!("the message is not JSON: {e}") })?;
    let id = value.get(0).and_then(|r| r.get("id")).and_then(|v| v.as_str()).unwrap_or("").to_string();
    let bad = |reason: String| Unreadable { id: id.clone(), reason };
    let (request, context): (ApiRequest, SecurityContext) = serde_json::from_value(value)
        .map_err(|e| bad(format!("the message is not vCD's [request, securityContext] array: {e}")))?;
    let body = base64::engine::general_purpose::STANDARD
        .decode(request.body.trim())
        .map_err(|e| bad(format!("the request body is not base64: {e}")))?;
    Ok((request, context, body))
}

impl ApiRequest {
    /// Header values as strings (vCD sends strings; numbers are tolerated).
    pub fn header_pairs(&self) -> Vec<(String, String)> {
        self.headers
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string())))
            .collect()
    }
}

/// A JSON notification from `<prefix>.notifications20` (vcd-protocol.md §3).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Notification {
    #[serde(default)]
    pub event_id: String,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub operation_success: Option<bool>,
    #[serde(default)]
    pub org: String,
}

/// `urn:vcloud:org:<uuid>` → `<uuid>`, lower-cased; a bare uuid is returned as it is.
pub fn org_uuid(urn: &str) -> String {
    urn.rsplit(':').next().unwrap_or(urn).to_ascii_lowercase()
}

/// The topic routing key vCD gives notifications of this event type that succeeded:
/// `true.<entity>.<org>.<user>.com.vmware.vcloud.event.vm.create`.
pub fn binding_key(event_type: &str, successful_only: bool) -> String {
    let subtypes = event_type.trim_matches('/').replace('/', ".");
    if successful_only {
        format!("true.#.{subtypes}")
    } else {
        format!("#.{subtypes}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_vcds_request_array() {
        let body = base64::engine::general_purpose::STANDARD.encode("{\"a\":1}");
        let msg = format!(
            r#"[{{"id":"r1","method":"POST","requestUri":"/api/org/acme/hello/x","queryString":"n=1",
               "headers":{{"Accept":"application/json","X-Num":5}},"body":"{body}","request":true,
               "remotePort":1234}},{{"user":"urn:vcloud:user:u","org":"urn:vcloud:org:ABC","rights":[]}}]"#
        );
        let (request, context, bytes) = parse_request(msg.as_bytes()).unwrap();
        assert_eq!(request.request_uri, "/api/org/acme/hello/x");
        assert_eq!(request.query_string.as_deref(), Some("n=1"));
        assert_eq!(bytes, b"{\"a\":1}");
        assert_eq!(org_uuid(&context.org), "abc");
        assert!(request.header_pairs().contains(&("X-Num".to_string(), "5".to_string())));
    }

    #[test]
    fn says_why_a_request_is_unreadable() {
        assert!(parse_request(b"nope").unwrap_err().reason.contains("not JSON"));
        let wrong = parse_request(br#"{"id":"x"}"#).unwrap_err();
        assert!(wrong.reason.contains("[request, securityContext]"), "{}", wrong.reason);
        let bad_body = parse_request(br#"[{"id":"r2","method":"GET","requestUri":"/x","body":"%%%"},{"org":"o"}]"#).unwrap_err();
        assert_eq!(bad_body.id, "r2");
        assert!(bad_body.reason.contains("base64"));
    }

    #[test]
    fn binding_keys_follow_vcds_routing_keys() {
        assert_eq!(binding_key("com/vmware/vcloud/event/vm/create", true), "true.#.com.vmware.vcloud.event.vm.create");
        assert_eq!(binding_key("com/vmware/vcloud/event/vm/create", false), "#.com.vmware.vcloud.event.vm.create");
    }
}
