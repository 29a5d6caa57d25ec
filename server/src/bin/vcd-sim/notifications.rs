//! Notifications as vCD publishes them to `<prefix>.notifications20` (protocol doc §3): a JSON
//! body, `notification.*` headers and a routing key built from success, ids and the event type.

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Json;
use lapin::types::{AMQPValue, FieldTable, LongString};
use lapin::BasicProperties;
use serde::Deserialize;
use serde_json::json;
use time::format_description::well_known::Rfc3339;
use uuid::Uuid;

use crate::state::{user_urn, NotificationRecord, SimState, SYSTEM_ORG};

const TYPE_PREFIX: &str = "com/vmware/vcloud/event/";

#[derive(Deserialize)]
pub struct NotificationRequest {
    pub r#type: String,
    pub org: String,
    #[serde(rename = "operationSuccess", default = "yes")]
    pub operation_success: bool,
    #[serde(default)]
    pub entity: Option<String>,
    #[serde(default)]
    pub user: Option<String>,
}

fn yes() -> bool {
    true
}

#[derive(Debug)]
pub struct Published {
    pub event_id: String,
    pub routing_key: String,
}

/// Splits `urn:vcloud:<kind>:<uuid>` into kind and UUID.
fn parse_urn(urn: &str, what: &str) -> Result<(String, Uuid), String> {
    let rest = urn.strip_prefix("urn:vcloud:").ok_or_else(|| format!("{what} must be a URN like urn:vcloud:<kind>:<uuid>, not '{urn}'"))?;
    let (kind, id) = rest.split_once(':').ok_or_else(|| format!("{what} '{urn}' has no UUID"))?;
    let id = Uuid::parse_str(id).map_err(|_| format!("{what} '{urn}' does not end in a UUID"))?;
    Ok((kind.to_string(), id))
}

pub async fn publish(state: &SimState, req: NotificationRequest) -> Result<Published, (StatusCode, String)> {
    let bad = |m: String| (StatusCode::BAD_REQUEST, m);
    let object = req
        .r#type
        .strip_prefix(TYPE_PREFIX)
        .and_then(|rest| rest.split_once('/'))
        .filter(|(obj, ev)| !obj.is_empty() && !ev.is_empty() && !ev.contains('.') && !obj.contains('.'))
        .map(|(obj, _)| obj.to_string())
        .ok_or_else(|| bad(format!("type must look like {TYPE_PREFIX}<object>/<event>, e.g. {TYPE_PREFIX}vm/create; got '{}'", req.r#type)))?;
    let org = state.find_org(&req.org).ok_or_else(|| bad(format!("org '{}' does not exist (give its name or urn:vcloud:org:…)", req.org)))?;
    let entity = req.entity.unwrap_or_else(|| format!("urn:vcloud:{object}:{}", Uuid::new_v4()));
    let (entity_type, entity_uuid) = parse_urn(&entity, "entity").map_err(bad)?;
    // Default author: the System administrator (the sim has no tenant user directory).
    let user = req.user.unwrap_or_else(|| user_urn(&state.settings.admin_user, SYSTEM_ORG));
    let (_, user_uuid) = parse_urn(&user, "user").map_err(bad)?;
    let org_uuid = org.id.rsplit(':').next().expect("org URNs end in a UUID").to_string();
    let org_uuid = org_uuid.as_str();

    let event_id = Uuid::new_v4().to_string();
    let success = req.operation_success;
    let routing_key = format!("{success}.{entity_uuid}.{org_uuid}.{user_uuid}.{}", req.r#type.replace('/', "."));
    let timestamp = time::OffsetDateTime::now_utc().format(&Rfc3339).expect("now formats as RFC 3339");
    let body = json!({
        "eventId": event_id,
        "type": req.r#type,
        "timestamp": timestamp,
        "operationSuccess": success,
        "user": user,
        "org": org.id,
        "entity": entity,
    });
    let mut headers = FieldTable::default();
    for (k, v) in [
        ("notification.type", req.r#type.clone()),
        ("notification.entityType", entity_type),
        ("notification.entityUUID", entity_uuid.to_string()),
        ("notification.orgUUID", org_uuid.to_string()),
        ("notification.userUUID", user_uuid.to_string()),
        ("notification.operationSuccess", success.to_string()),
    ] {
        headers.insert(k.into(), AMQPValue::LongString(LongString::from(v)));
    }
    let props = BasicProperties::default()
        .with_content_type("application/json".into())
        .with_delivery_mode(2)
        .with_message_id(event_id.as_str().into())
        .with_headers(headers);
    let bytes = serde_json::to_vec(&body).expect("JSON values serialize");
    let over_amqp = state.amqp.publish_notification(&routing_key, &bytes, props).await.map_err(|e| {
        let status = match e {
            crate::amqp::PublishError::NoBroker => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::BAD_GATEWAY,
        };
        (status, e.to_string())
    });
    match &state.mqtt {
        // On MQTT too, for the org's subscribers (vcd-mqtt.md §M3); then AMQP may be absent.
        Some(mqtt) => {
            let topic = format!("publish/{org_uuid}/{user_uuid}");
            let message = json!({"type": "EVENT", "headers": {"eventId": event_id, "type": req.r#type}, "payload": body.to_string()});
            mqtt.publish(&topic, message.to_string().into_bytes()).await.map_err(|e| (StatusCode::SERVICE_UNAVAILABLE, e))?;
        }
        None => over_amqp?,
    }
    tracing::info!(%routing_key, "notification published");
    state.record_notification(NotificationRecord {
        event_id: event_id.clone(),
        r#type: req.r#type,
        org: org.name,
        routing_key: routing_key.clone(),
    });
    Ok(Published { event_id, routing_key })
}

/// `POST /sim/notifications`: JSON for scripts, a form for the page.
pub async fn post(State(state): State<SimState>, headers: HeaderMap, body: axum::body::Bytes) -> Response {
    let ct = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    if ct.starts_with("application/x-www-form-urlencoded") {
        let form: std::collections::HashMap<String, String> = form_urlencoded::parse(&body).into_owned().collect();
        let field = |k: &str| form.get(k).map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
        let (Some(r#type), Some(org)) = (field("type"), field("org")) else {
            return (StatusCode::BAD_REQUEST, "the form needs type and org").into_response();
        };
        let req = NotificationRequest {
            r#type,
            org,
            operation_success: field("failed").is_none(),
            entity: field("entity"),
            user: None,
        };
        return match publish(&state, req).await {
            Ok(_) => Redirect::to("/#notifications").into_response(),
            Err((status, message)) => (status, message).into_response(),
        };
    }
    let req: NotificationRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return (StatusCode::BAD_REQUEST, Json(json!({"message": format!("bad notification request: {e}")}))).into_response(),
    };
    match publish(&state, req).await {
        Ok(p) => (StatusCode::ACCEPTED, Json(json!({"eventId": p.event_id, "routingKey": p.routing_key}))).into_response(),
        Err((status, message)) => (status, Json(json!({"message": message}))).into_response(),
    }
}
