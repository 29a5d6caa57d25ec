//! Live logs over the API: `GET /api/v1/functions/{name}/logs` gives the last calls, then with
//! `follow=true` each call as it ends, as server-sent events, to the function's tenant only.
//! Runs on SQLite and on PostgreSQL.

mod common;

use common::{json_of, Db, TestApp};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::time::Duration;

/// Logs a line with the path it was called on.
const LOUD: &str = r#"module.exports = async (event) => { console.log("seen " + event.path); return "ok " + event.path; };"#;

/// Reads server-sent events from a response until `count` calls came or `within` passed.
struct Events {
    response: reqwest::Response,
    buffer: String,
}

impl Events {
    async fn open(app: &TestApp, token: &str, query: &str) -> Events {
        let response = app.get(token, &format!("/api/v1/functions/loud/logs?{query}")).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["content-type"], "text/event-stream");
        Events { response, buffer: String::new() }
    }

    /// The next call event; `None` when the stream ended or nothing came in time.
    async fn next_call(&mut self, within: Duration) -> Option<Value> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let event: String = self.buffer.drain(..end + 2).collect();
                let data = event.lines().find_map(|l| l.strip_prefix("data: ").or_else(|| l.strip_prefix("data:")));
                if event.lines().any(|l| l == "event: call") {
                    return Some(serde_json::from_str(data.expect("a call event has data")).unwrap());
                }
                continue; // a keep-alive comment
            }
            let chunk = tokio::time::timeout_at(deadline, self.response.chunk()).await.ok()?.unwrap()?;
            self.buffer.push_str(std::str::from_utf8(&chunk).unwrap());
        }
    }
}

async fn live_logs_give_the_tail_then_each_call_as_it_ends(db: Db) {
    let app = TestApp::spawn(db).await;
    let t = app.tenant().await;
    let other = app.tenant().await;
    app.deploy(&t.dev, "loud", "nodejs", LOUD).await;
    for path in ["one", "two", "three"] {
        assert_eq!(app.call(Some(&t.dev), &t.org, &format!("loud/{path}")).await.status(), StatusCode::OK);
    }

    // The tail: the last two, oldest first, then the stream ends.
    let mut events = Events::open(&app, &t.dev, "tail=2").await;
    let first = events.next_call(Duration::from_secs(10)).await.expect("a first call");
    let second = events.next_call(Duration::from_secs(10)).await.expect("a second call");
    assert_eq!((first["path"].as_str(), second["path"].as_str()), (Some("/two"), Some("/three")));
    assert!(second["logs"].as_str().unwrap().contains("seen /three"), "{second}");
    assert_eq!(second["status_code"], 200);
    assert!(events.next_call(Duration::from_secs(5)).await.is_none(), "without follow the stream ends");

    // Following: nothing old, then a call made by someone else (another token) as it ends.
    let mut live = Events::open(&app, &t.dev, "tail=0&follow=true").await;
    let (_, caller) = json_of(app.post(&t.admin, "/api/v1/tokens", json!({"name": "caller", "scope": "invoke"})).await).await;
    let r = app.call(Some(caller["token"].as_str().unwrap()), &t.org, "loud/four").await;
    assert_eq!(r.status(), StatusCode::OK);
    let request_id = r.headers()["x-vcd-faas-request-id"].to_str().unwrap().to_string();
    let call = live.next_call(Duration::from_secs(10)).await.expect("the new call arrives");
    assert_eq!(call["path"], "/four");
    assert_eq!(call["id"], request_id.as_str());
    assert!(call["logs"].as_str().unwrap().contains("seen /four"), "{call}");
    app.call(Some(&t.dev), &t.org, "loud/five").await;
    let call = live.next_call(Duration::from_secs(10)).await.expect("the next call arrives");
    assert_eq!(call["path"], "/five");
    assert!(live.next_call(Duration::from_secs(2)).await.is_none(), "each call once");

    // Only its tenant (or the provider) follows it; bad input is told what to fix.
    let r = app.get(&other.dev, "/api/v1/functions/loud/logs").await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let r = app.get(&app.admin_token, &format!("/api/v1/functions/loud/logs?org={}&tail=1", t.org)).await;
    assert_eq!(r.status(), StatusCode::OK, "the provider names the org");
    let r = app.client.get(app.url("/api/v1/functions/loud/logs")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    for bad in ["tail=101", "tail=-1", "follow=maybe", "tails=2"] {
        let (status, body) = json_of(app.get(&t.dev, &format!("/api/v1/functions/loud/logs?{bad}")).await).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
        assert!(body["error"].is_string(), "{bad}: {body}");
    }
}

on_both_databases!(live_logs_give_the_tail_then_each_call_as_it_ends);
