//! The front door for MQTT API extensions (docs vcd-mqtt.md §M1.5–§M1.7): a matching request
//! becomes an `API_REQUEST` on the extension's monitor topic (`httpRequest` is base64 of the
//! JSON payload, whose body is base64 again), and the `API_RESPONSE` with its request id on the
//! respond topic becomes the HTTP response; none within the timeout is a 504.

use axum::http::StatusCode;
use axum::response::Response;
use base64::Engine;
use serde_json::{json, Map, Value};
use uuid::Uuid;

use crate::forwarded::{canonical_name, fmt_secs, reply_to_response, rights_of, version_name, Incoming};
use crate::rest::VcdError;
use crate::state::{Caller, Service, SimState};

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// The `API_REQUEST` message for one front-door request.
fn message(state: &SimState, req: &Incoming, request_id: &str, caller: &Caller) -> Value {
    let mut headers = Map::new();
    for (name, value) in &req.headers {
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        headers.insert(canonical_name(name.as_str()), Value::String(value));
    }
    // A token for calling vCD back as the caller (§M1.5); the sim's is a stand-in.
    let context = json!({"apiAccessToken": format!("sim-access-{}", Uuid::new_v4().simple()), "user": caller.user_urn(),
                         "org": caller.org_urn(), "rights": rights_of(caller), "parameters": null});
    let payload = json!({
        "message": {
            "request": true, "id": request_id, "method": req.method.as_str(), "requestUri": req.uri.path(),
            "queryString": req.uri.query(), "protocol": version_name(req.version), "scheme": "http",
            "remoteAddr": req.remote.ip().to_string(), "remotePort": req.remote.port(),
            "localAddr": state.local_addr.ip().to_string(), "localPort": state.local_addr.port(),
            "headers": headers, "formData": null, "formDataEncoding": null, "body": b64(&req.body), "statusCode": 0,
        },
        "securityContext": context,
        "context": {},
    });
    json!({
        "type": "API_REQUEST",
        "headers": {"requestId": request_id, "context": context},
        "httpRequest": b64(payload.to_string().as_bytes()),
        "linkApiBaseUrl": format!("http://{}/api", state.local_addr),
    })
}

pub async fn forward(state: &SimState, req: &Incoming, caller: &Caller, service: &Service) -> Result<Response, VcdError> {
    let mqtt = state.mqtt.as_ref().ok_or_else(|| {
        VcdError::new(StatusCode::SERVICE_UNAVAILABLE, format!("'{}' is an MQTT extension but vcd-sim runs without --mqtt-url", service.spec.name))
    })?;
    let (monitor, _) = service.topics().expect("an MQTT extension");
    let request_id = Uuid::new_v4().to_string();
    let body = serde_json::to_vec(&message(state, req, &request_id, caller)).expect("JSON values serialize");
    let rx = mqtt
        .request(&monitor, &request_id, body)
        .await
        .map_err(|e| VcdError::new(StatusCode::SERVICE_UNAVAILABLE, format!("cannot forward to API extension '{}': {e}", service.spec.name)))?;
    let timeout = state.settings.reply_timeout;
    let answer = match tokio::time::timeout(timeout, rx).await {
        Ok(Ok(answer)) => answer,
        Ok(Err(_)) => return Err(VcdError::new(StatusCode::BAD_GATEWAY, "the answer channel closed")),
        Err(_) => {
            mqtt.forget(&request_id);
            let why = format!("API extension '{}' did not answer within {}", service.spec.name, fmt_secs(timeout));
            return Err(VcdError::new(StatusCode::GATEWAY_TIMEOUT, why));
        }
    };
    if answer["type"] != "API_RESPONSE" {
        return Err(VcdError::new(StatusCode::BAD_GATEWAY, format!("the extension answered with type {}, not API_RESPONSE", answer["type"])));
    }
    let response = serde_json::to_vec(&answer["httpResponse"]).expect("JSON values serialize");
    reply_to_response(&request_id, &response).map_err(|why| {
        tracing::warn!(service = %service.spec.name, "bad answer: {why}");
        VcdError::new(StatusCode::BAD_GATEWAY, why)
    })
}
