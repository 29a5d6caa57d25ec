//! The sim's own endpoints: a plain HTML page for a person, `/sim/state` (JSON for tests and
//! scripts) and `/sim/expire-sessions`.

use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use quick_xml::escape::escape;
use serde_json::json;

use crate::rest::base_url;
use crate::state::{SimState, SYSTEM_ORG};
use crate::{notifications, xml};

pub fn router() -> Router<SimState> {
    Router::new()
        .route("/", get(page))
        .route("/sim/state", get(sim_state))
        .route("/sim/expire-sessions", post(expire_sessions))
        .route("/sim/notifications", post(notifications::post))
}

async fn sim_state(State(state): State<SimState>) -> Json<serde_json::Value> {
    let services: Vec<_> = state
        .services()
        .into_iter()
        .map(|s| {
            let filters: Vec<_> = state
                .filters_of(s.uuid)
                .into_iter()
                .map(|f| json!({"id": xml::filter_urn(&f), "urlPattern": f.url_pattern}))
                .collect();
            json!({
                "id": xml::service_urn(&s), "name": s.spec.name, "namespace": s.spec.namespace,
                "enabled": s.spec.enabled, "exchange": s.spec.exchange, "routingKey": s.spec.routing_key,
                "priority": s.spec.priority, "filters": filters, "mqtt": s.extension_urn(),
            })
        })
        .collect();
    Json(json!({
        "amqpConnected": state.amqp.connected(),
        "mqttConnected": state.mqtt.as_ref().map(|m| m.connected()),
        "mqttAnswers": state.mqtt.as_ref().map(|m| { let (matched, unmatched) = m.answer_counts(); json!({"matched": matched, "unmatched": unmatched}) }),
        "tokensIssued": state.tokens_issued(),
        "tokensLive": state.tokens().len(),
        "loginsEnded": state.logins_ended(),
        "replyExchange": state.amqp.reply_exchange(),
        "notificationsExchange": state.amqp.notifications_exchange(),
        "orgs": state.orgs(),
        "services": services,
        "requests": state.calls(),
        "notifications": state.notifications(),
    }))
}

/// Every current session expires: clients must notice the 401 and log in again.
async fn expire_sessions(State(state): State<SimState>, headers: HeaderMap) -> Response {
    let n = state.expire_sessions();
    tracing::info!("{n} sessions expired on request");
    let from_form = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|c| c.starts_with("application/x-www-form-urlencoded"));
    if from_form {
        return Redirect::to("/").into_response();
    }
    Json(json!({"expired": n})).into_response()
}

fn e(s: &str) -> String {
    escape(s).into_owned()
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:70rem;margin:1.5rem auto;padding:0 1rem;color:#222}\
table{border-collapse:collapse;width:100%;margin-bottom:1rem}th,td{border-bottom:1px solid #ddd;padding:.3rem .5rem;text-align:left;vertical-align:top}\
code,pre{font-family:ui-monospace,monospace;font-size:.85rem}pre{background:#f4f4f4;padding:.7rem;overflow-x:auto}\
h2{margin-top:2rem;border-bottom:2px solid #36c}.muted{color:#777}.ok{color:#080}.bad{color:#b00}form label{margin-right:1rem}";

async fn page(State(state): State<SimState>, headers: HeaderMap) -> Html<String> {
    let base = base_url(&state, &headers);
    let version = state.settings.api_versions.last().cloned().unwrap_or_default();
    let mut h = String::new();
    h.push_str(&format!("<!doctype html><html><head><meta charset=\"utf-8\"><title>vcd-sim</title><style>{STYLE}</style></head><body>"));
    let broker = if state.amqp.connected() {
        "<span class=\"ok\">connected</span>".to_string()
    } else {
        "<span class=\"bad\">not connected (retrying)</span>".to_string()
    };
    h.push_str(&format!(
        "<h1>vcd-sim</h1><p>An emulated VMware Cloud Director cell at <code>{}</code>. API versions {}{}. AMQP broker: {broker}; \
         replies on exchange <code>{}</code>, notifications on <code>{}</code>.</p>",
        e(&base),
        e(&state.settings.api_versions.join(", ")),
        if state.settings.legacy_only { " (legacy login only)" } else { "" },
        e(state.amqp.reply_exchange()),
        e(state.amqp.notifications_exchange()),
    ));

    h.push_str("<h2>Organizations</h2><p class=\"muted\">The id is what a provider enters in the portal as a tenant's vCD org id.</p>\
                <table><tr><th>Name</th><th>Id</th></tr>");
    for org in state.orgs() {
        h.push_str(&format!("<tr><td>{}</td><td><code>{}</code></td></tr>", e(&org.name), e(&org.id)));
    }
    h.push_str("</table>");

    h.push_str("<h2>Extension services</h2>");
    let services = state.services();
    if services.is_empty() {
        h.push_str("<p class=\"muted\">None registered yet.</p>");
    } else {
        h.push_str("<table><tr><th>Name</th><th>Namespace</th><th>Enabled</th><th>Exchange / routing key, or MQTT topics</th><th>Priority</th><th>URL patterns</th></tr>");
        for s in &services {
            let patterns: Vec<String> = state.filters_of(s.uuid).iter().map(|f| format!("<code>{}</code>", e(&f.url_pattern))).collect();
            // An MQTT API extension has topics where an AMQP service has an exchange.
            let (first, second) = s.topics().unwrap_or_else(|| (s.spec.exchange.clone(), s.spec.routing_key.clone()));
            h.push_str(&format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td><td><code>{}</code> / <code>{}</code></td><td>{}</td><td>{}</td></tr>",
                e(&s.spec.name),
                e(&s.spec.namespace),
                if s.spec.enabled { "<span class=\"ok\">yes</span>" } else { "<span class=\"bad\">no</span>" },
                e(&first),
                e(&second),
                s.spec.priority,
                if patterns.is_empty() { "<span class=\"muted\">none</span>".to_string() } else { patterns.join("<br>") },
            ));
        }
        h.push_str("</table>");
    }

    h.push_str("<h2>Recent front-door calls</h2>");
    let calls = state.calls();
    if calls.is_empty() {
        h.push_str("<p class=\"muted\">None yet.</p>");
    } else {
        h.push_str("<table><tr><th>Method</th><th>Path</th><th>Org</th><th>Service</th><th>Status</th><th>ms</th></tr>");
        for c in calls {
            h.push_str(&format!(
                "<tr><td>{}</td><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                e(&c.method),
                e(&c.path),
                e(&c.org),
                e(c.service.as_deref().unwrap_or("-")),
                c.status,
                c.ms
            ));
        }
        h.push_str("</table>");
    }

    let tenant = state.orgs().into_iter().find(|o| o.name != SYSTEM_ORG);
    let org_name = tenant.map(|o| o.name).unwrap_or_else(|| "acme".into());
    h.push_str(&format!(
        "<h2 id=\"notifications\">Publish a notification</h2>\
         <form method=\"post\" action=\"/sim/notifications\">\
         <label>Type <input name=\"type\" size=\"40\" value=\"com/vmware/vcloud/event/vm/create\"></label>\
         <label>Org <select name=\"org\">{}</select></label>\
         <label>Entity URN <input name=\"entity\" size=\"30\" placeholder=\"new urn:vcloud:vm:…\"></label>\
         <label><input type=\"checkbox\" name=\"failed\"> operation failed</label>\
         <button>Publish</button></form>",
        state.orgs().iter().filter(|o| o.name != SYSTEM_ORG).map(|o| format!("<option>{}</option>", e(&o.name))).collect::<String>()
    ));
    let published = state.notifications();
    if !published.is_empty() {
        h.push_str("<table><tr><th>Type</th><th>Org</th><th>Routing key</th></tr>");
        for n in published {
            h.push_str(&format!("<tr><td>{}</td><td>{}</td><td><code>{}</code></td></tr>", e(&n.r#type), e(&n.org), e(&n.routing_key)));
        }
        h.push_str("</table>");
    }

    let example = format!(
        "# Call a function through the front door (any path an enabled service's URL pattern matches;\n\
         # vcd-faas registers /api/org/<tenant>/<function>, here for a tenant named like the org):\n\
         curl -i -u 'alice@{org_name}:any-password' -H 'Accept: application/json;version={version}' \\\n  \
         '{base}/api/org/{org_name}/hello'\n\n\
         # With a body, or with a session token instead of Basic credentials:\n\
         TOKEN=$(curl -s -o /dev/null -D - -u 'alice@{org_name}:pw' -X POST -H 'Accept: application/json;version={version}' \\\n  \
         {base}/cloudapi/1.0.0/sessions | tr -d '\\r' | awk 'tolower($1)==\"x-vmware-vcloud-access-token:\"{{print $2}}')\n\
         curl -i -H \"Authorization: Bearer $TOKEN\" -H 'Accept: application/json;version={version}' \\\n  \
         -H 'Content-Type: application/json' -d '{{\"name\":\"world\"}}' '{base}/api/org/{org_name}/hello'\n\n\
         # A \"VM created\" notification:\n\
         curl -i -X POST -H 'Content-Type: application/json' {base}/sim/notifications \\\n  \
         -d '{{\"type\":\"com/vmware/vcloud/event/vm/create\",\"org\":\"{org_name}\"}}'"
    );
    h.push_str(&format!("<h2>Try it with curl</h2><pre>{}</pre>", e(&example)));
    h.push_str(
        "<h2>Sim controls</h2><form method=\"post\" action=\"/sim/expire-sessions\" style=\"display:inline\">\
         <button>Expire all sessions</button></form> <a href=\"/sim/state\">/sim/state</a> (JSON)</body></html>",
    );
    Html(h)
}
