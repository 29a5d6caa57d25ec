//! Asynchronous calls: accepted at once, run in the background, read later; a function that
//! always fails ends in the dead letters. Here without AMQP_URL: the database is the queue.
//! (The restart case is in crash.rs; RabbitMQ as the queue in async_amqp*.rs.)

mod common;

use common::{json_of, Db, TestApp};
use reqwest::StatusCode;
use serde_json::Value;
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_calls_answer_at_once_and_keep_their_result() {
    let app = TestApp::spawn(Db::Sqlite).await;
    let t = app.tenant().await;
    let other = app.tenant().await;
    app.deploy(&t.dev, "later", "nodejs", "module.exports = async (e) => { await new Promise(r => setTimeout(r, 1000)); return { got: e.body, path: e.path }; };").await;

    let started = Instant::now();
    let id = app.call_async(&t.dev, &t.org, "later/jobs").await;
    assert!(started.elapsed() < Duration::from_millis(900), "accepted without waiting for the function");
    let (status, _) = json_of(app.get(&other.dev, &format!("/api/v1/invocations/{id}")).await).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "another tenant cannot read it");

    let inv = app.wait_for_state(&t.dev, &id, &["done"]).await;
    assert_eq!(inv["status_code"], 200);
    assert_eq!(inv["trigger"], "async");
    assert_eq!(inv["attempts"], 1);
    assert_eq!(inv["response"]["statusCode"], 200);
    let body: Value = serde_json::from_str(inv["response"]["body"].as_str().unwrap()).unwrap();
    assert_eq!(body, serde_json::json!({"got": "payload", "path": "/jobs"}));
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_function_that_always_fails_ends_in_the_dead_letters() {
    let app = TestApp::spawn(Db::Sqlite).await;
    let t = app.tenant().await;
    app.deploy(&t.dev, "doomed", "python", "def handle(e, c):\n    raise RuntimeError('always')\n").await;
    let accepted = Instant::now();
    let id = app.call_async(&t.dev, &t.org, "doomed").await;
    // Between two attempts the call waits, queued, and says until when.
    let waiting = app.wait_for_invocation(&t.dev, &id, |inv| inv["attempts"] == 1 && inv["state"] != "running").await;
    assert_eq!(waiting["state"], "queued", "{waiting}");
    let next = waiting["next_attempt_at"].as_i64().unwrap_or_else(|| panic!("no next_attempt_at: {waiting}"));
    let first_delay = server::calls::async_worker::retry_delay(1).as_millis() as i64;
    assert!(next >= waiting["started_at"].as_i64().unwrap() + first_delay, "the retry waits after the first attempt: {waiting}");

    let inv = app.wait_for_state(&t.dev, &id, &["dead-letter"]).await;
    assert_eq!(inv["attempts"], server::calls::async_worker::MAX_ATTEMPTS);
    let backoff = server::calls::async_worker::retry_delay(1) + server::calls::async_worker::retry_delay(2);
    assert!(accepted.elapsed() >= backoff, "three attempts took {:?}, less than the {backoff:?} of back-off", accepted.elapsed());
    assert_eq!(inv["next_attempt_at"], Value::Null, "a dead letter waits for nothing");
    assert_eq!(inv["status_code"], 500);
    assert!(inv["error"].as_str().unwrap().contains("RuntimeError: always"), "{inv}");
    app.finish().await;
}
