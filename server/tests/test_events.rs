//! Saved test events over the REST API: saved, listed, replaced, run as Test Function runs a
//! request, deleted; bad input told at its field; another tenant sees none. SQLite and
//! PostgreSQL.

mod common;

use common::{json_of, Db, TestApp};
use reqwest::StatusCode;
use serde_json::json;

const ECHO: &str = r#"module.exports = async (event) => ({ method: event.method, path: event.path, query: event.query, body: event.body, auth: event.headers["x-demo"] || null });"#;

async fn test_events_are_saved_run_and_deleted(db: Db) {
    let app = TestApp::spawn(db).await;
    let t = app.tenant().await;
    let other = app.tenant().await;
    app.deploy(&t.dev, "echo", "nodejs", ECHO).await;
    let order = json!({"method": "POST", "path": "/orders", "query": "dry=1", "headers": "X-Demo: yes", "body": "{\"id\": 7}"});

    let (status, saved) = json_of(app.put(&t.dev, "/api/v1/functions/echo/test-events/order created", order.clone()).await).await;
    assert_eq!(status, StatusCode::OK, "{saved}");
    assert_eq!(saved["name"], "order created");
    json_of(app.put(&t.dev, "/api/v1/functions/echo/test-events/ping", json!({"method": "GET"})).await).await;
    let (_, list) = json_of(app.get(&t.dev, "/api/v1/functions/echo/test-events").await).await;
    let names: Vec<&str> = list.as_array().unwrap().iter().map(|e| e["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["order created", "ping"]);
    assert_eq!(list[0]["request"], order);

    // Run: the function gets the saved request, and the call is recorded as a test.
    let (status, answer) = json_of(app.post(&t.dev, "/api/v1/functions/echo/test-events/order created/run", json!({})).await).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["status"], 200);
    let body: serde_json::Value = serde_json::from_str(answer["body"].as_str().unwrap()).unwrap();
    assert_eq!(body, json!({"method": "POST", "path": "/orders", "query": {"dry": "1"}, "body": "{\"id\": 7}", "auth": "yes"}));
    let (_, calls) = json_of(app.get(&t.dev, "/api/v1/functions/echo/invocations?trigger=test").await).await;
    assert_eq!(calls.as_array().unwrap().len(), 1);

    // Saved again under the same name: replaced, not added.
    app.put(&t.dev, "/api/v1/functions/echo/test-events/ping", json!({"method": "DELETE", "path": "/x"})).await;
    let (_, list) = json_of(app.get(&t.dev, "/api/v1/functions/echo/test-events").await).await;
    assert_eq!(list.as_array().unwrap().len(), 2);
    assert_eq!(list[1]["request"]["method"], "DELETE");

    // Bad input: at its field, nothing stored.
    for (name, body, field) in [
        ("bad/name", json!({"method": "GET"}), "name"),
        ("ok", json!({"method": "FETCH"}), "method"),
        ("ok", json!({"method": "GET", "body": "x".repeat(300 * 1024)}), "body"),
    ] {
        let (status, answer) = json_of(app.put(&t.dev, &format!("/api/v1/functions/echo/test-events/{}", name.replace('/', "%2F")), body).await).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{name}: {answer}");
        assert_eq!(answer["fields"][0]["field"], field, "{answer}");
    }
    let (status, answer) = json_of(app.put(&t.dev, "/api/v1/functions/echo/test-events/ok", json!({"verb": "GET"})).await).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    let (_, list) = json_of(app.get(&t.dev, "/api/v1/functions/echo/test-events").await).await;
    assert_eq!(list.as_array().unwrap().len(), 2, "nothing stored: {list}");

    // Another tenant: not found, as if the function did not exist.
    assert_eq!(app.get(&other.dev, "/api/v1/functions/echo/test-events").await.status(), StatusCode::NOT_FOUND);
    assert_eq!(app.put(&other.dev, "/api/v1/functions/echo/test-events/x", json!({"method": "GET"})).await.status(), StatusCode::NOT_FOUND);

    // Deleted, then gone; deleting again says there is none.
    assert_eq!(app.delete(&t.dev, "/api/v1/functions/echo/test-events/ping").await.status(), StatusCode::NO_CONTENT);
    let (status, answer) = json_of(app.delete(&t.dev, "/api/v1/functions/echo/test-events/ping").await).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{answer}");
    let (status, _) = json_of(app.post(&t.dev, "/api/v1/functions/echo/test-events/ping/run", json!({})).await).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

on_both_databases!(test_events_are_saved_run_and_deleted);
