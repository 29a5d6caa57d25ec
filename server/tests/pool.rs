//! Warm containers: reuse, scale to zero, the instance cap, updates under load, and dead
//! containers replaced. Functional checks, not timings (the benchmark measures speed).

mod common;

use common::{json_of, Db, TestApp};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// Counts its calls in module state, so a reused container is visible from outside.
const COUNTER: &str = r#"
let calls = 0;
module.exports = async (event) => {
  calls += 1;
  const wait = Number(event.query.wait || 0);
  if (wait) await new Promise((r) => setTimeout(r, wait));
  return { pid: process.pid, calls, version: "v1" };
};
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn warm_containers_are_reused_then_removed_when_idle() {
    let app = TestApp::spawn_with(Db::Sqlite, |c| c.idle_secs = 2).await;
    let t = app.tenant().await;
    app.deploy(&t.dev, "counter", "nodejs", COUNTER).await;

    let first = app.call(Some(&t.dev), &t.org, "counter").await;
    assert_eq!(first.headers()["x-vcd-faas-cold"], "true");
    let (_, first) = json_of(first).await;
    let second = app.call(Some(&t.dev), &t.org, "counter").await;
    assert_eq!(second.headers()["x-vcd-faas-cold"], "false");
    let (_, second) = json_of(second).await;
    assert_eq!((first["calls"].as_i64(), second["calls"].as_i64()), (Some(1), Some(2)), "same process served both");
    assert_eq!(app.containers_of(&t.org, "counter").await, 1);

    // Scale to zero after the idle time, then a cold start again.
    let start = Instant::now();
    while app.containers_of(&t.org, "counter").await > 0 {
        assert!(start.elapsed() < Duration::from_secs(15), "idle container was not removed");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let again = app.call(Some(&t.dev), &t.org, "counter").await;
    assert_eq!(again.headers()["x-vcd-faas-cold"], "true");
    assert_eq!(json_of(again).await.1["calls"], 1);
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_call_mode_never_keeps_a_container() {
    let app = TestApp::spawn(Db::Sqlite).await;
    let t = app.tenant().await;
    app.create_with(&t.dev, json!({"name": "fresh", "language": "nodejs", "code": COUNTER, "mode": "per-call"})).await;
    assert_eq!(app.wait_built(&t.dev, "fresh").await["mode"], "per-call");
    for _ in 0..2 {
        let r = app.call(Some(&t.dev), &t.org, "fresh").await;
        assert_eq!(r.headers()["x-vcd-faas-cold"], "true");
        assert_eq!(json_of(r).await.1["calls"], 1, "a new process every call");
    }
    app.assert_no_containers(&t.org, "fresh").await;
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_instance_cap_queues_then_turns_calls_away_with_429() {
    let app = TestApp::spawn_with(Db::Sqlite, |c| c.queue_per_instance = 1).await;
    let t = app.tenant_with(json!({"max_instances": 3})).await;
    let (status, body) = json_of(
        app.post(&t.dev, "/api/v1/functions", json!({"name": "x", "language": "nodejs", "code": COUNTER, "max_instances": 4})).await,
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "over the tenant's instance limit: {body}");
    app.create_with(&t.dev, json!({"name": "slow", "language": "nodejs", "code": COUNTER, "max_instances": 1, "timeout_ms": 10000})).await;
    app.wait_built(&t.dev, "slow").await;

    let busy = {
        let (app, t) = (&app, &t);
        async move { app.call(Some(&t.dev), &t.org, "slow?wait=3000").await }
    };
    let queued = {
        let (app, t) = (&app, &t);
        async move {
            tokio::time::sleep(Duration::from_millis(800)).await;
            app.call(Some(&t.dev), &t.org, "slow").await
        }
    };
    let refused = {
        let (app, t) = (&app, &t);
        async move {
            tokio::time::sleep(Duration::from_millis(1600)).await;
            let r = app.call(Some(&t.dev), &t.org, "slow").await;
            let containers = app.containers_of(&t.org, "slow").await;
            (r, containers)
        }
    };
    let (busy, queued, (refused, containers)) = tokio::join!(busy, queued, refused);
    // Under load the first container may still be starting here: at most one, never two.
    assert!(containers <= 1, "never more than max_instances containers, saw {containers}");
    assert_eq!(busy.status(), StatusCode::OK);
    assert_eq!(queued.status(), StatusCode::OK, "a queued call waits for the free container");
    assert_eq!(queued.headers()["x-vcd-faas-cold"], "false");
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(refused.headers()["retry-after"], "1");
    let (_, body) = json_of(refused).await;
    assert!(body["error"].as_str().unwrap().contains("all 1 of its instances"), "{body}");
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_update_under_load_fails_no_call() {
    let app = TestApp::spawn(Db::Sqlite).await;
    let t = app.tenant().await;
    app.deploy(&t.dev, "busy", "nodejs", COUNTER).await;

    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut clients = Vec::new();
    for _ in 0..4 {
        let (client, url, token, stop) = (app.client.clone(), app.url(&format!("/api/org/{}/busy?wait=20", t.org)), t.dev.clone(), stop.clone());
        clients.push(tokio::spawn(async move {
            let mut answers: Vec<(StatusCode, String)> = Vec::new();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let r = client.get(&url).bearer_auth(&token).send().await.unwrap();
                let status = r.status();
                let body: Value = r.json().await.unwrap_or(Value::Null);
                answers.push((status, body["version"].as_str().unwrap_or("?").to_string()));
            }
            answers
        }));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (status, _) = json_of(app.put(&t.dev, "/api/v1/functions/busy", json!({"code": COUNTER.replace("\"v1\"", "\"v2\"")})).await).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    app.wait_until(&t.dev, "busy", Duration::from_secs(120), |f| f["version"] == 2).await;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);

    let mut answers = Vec::new();
    for c in clients {
        answers.extend(c.await.unwrap());
    }
    let failed: Vec<_> = answers.iter().filter(|(s, _)| *s != StatusCode::OK).collect();
    assert!(failed.is_empty(), "{} of {} calls failed: {failed:?}", failed.len(), answers.len());
    assert!(answers.iter().any(|(_, v)| v == "v1") && answers.iter().any(|(_, v)| v == "v2"), "served by both versions");
    // After the switch, the old version's containers are drained: every container left runs v2.
    let start = Instant::now();
    loop {
        let list = app.service.engine.list_function_containers().await.unwrap();
        let old = list.iter().filter(|c| c.labels.get("vcd-faas.tenant") == Some(&t.org) && c.labels["vcd-faas.version"] == "1").count();
        if old == 0 {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(20), "{old} containers of v1 remain");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_warm_container_is_replaced() {
    let app = TestApp::spawn(Db::Sqlite).await;
    let t = app.tenant().await;
    app.deploy(&t.dev, "fragile", "nodejs", COUNTER).await;
    assert_eq!(app.call(Some(&t.dev), &t.org, "fragile").await.status(), StatusCode::OK);
    let list = app.service.engine.list_function_containers().await.unwrap();
    let victim = list.iter().find(|c| c.labels.get("vcd-faas.tenant") == Some(&t.org)).expect("a warm container");
    app.service.engine.remove_container(&victim.id).await.unwrap();

    let r = app.call(Some(&t.dev), &t.org, "fragile").await;
    assert_eq!(r.status(), StatusCode::OK, "the pool never hands out a dead container");
    assert_eq!(r.headers()["x-vcd-faas-cold"], "true");
    assert_eq!(json_of(r).await.1["calls"], 1);
    app.finish().await;
}
