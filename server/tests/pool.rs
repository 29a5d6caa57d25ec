//! Warm containers: reuse, scale to zero, the instance cap, updates under load, and dead
//! containers replaced. Functional checks, not timings (the benchmark measures speed).

mod common;

use common::{json_of, Db, TestApp};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::collections::HashSet;
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
    assert_eq!(app.wait_ready(&t.dev, "fresh").await["mode"], "per-call");
    for _ in 0..2 {
        let r = app.call(Some(&t.dev), &t.org, "fresh").await;
        let cold = r.headers().get("x-vcd-faas-cold").cloned();
        let (status, body) = json_of(r).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(cold.unwrap(), "true");
        assert_eq!(body["calls"], 1, "a new process every call");
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
    app.wait_ready(&t.dev, "slow").await;

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
async fn a_caller_that_hangs_up_frees_its_place_and_its_call_is_recorded() {
    let app = TestApp::spawn_with(Db::Sqlite, |c| c.queue_per_instance = 1).await;
    let t = app.tenant().await;
    app.create_with(&t.dev, json!({"name": "slow", "language": "nodejs", "code": COUNTER, "max_instances": 1, "timeout_ms": 5000})).await;
    app.wait_ready(&t.dev, "slow").await;
    assert_eq!(app.call(Some(&t.dev), &t.org, "slow").await.status(), StatusCode::OK);

    for _ in 0..2 {
        // A caller gives up long before its call ends, closing its connection.
        let impatient = app.client.get(app.url(&format!("/api/org/{}/slow?wait=1500", t.org))).bearer_auth(&t.dev);
        let gave_up = impatient.timeout(Duration::from_millis(300)).send().await;
        assert!(gave_up.is_err(), "the caller hung up before the answer");
        // The abandoned call ends on its own and frees the one place for the next.
        let r = app.call(Some(&t.dev), &t.org, "slow").await;
        assert_eq!(r.status(), StatusCode::OK, "the function is not left busy: {}", r.text().await.unwrap());
    }
    assert_eq!(app.containers_of(&t.org, "slow").await, 1, "the container the abandoned calls used serves on");
    let (_, calls) = json_of(app.get(&t.dev, "/api/v1/functions/slow/invocations").await).await;
    let done = calls.as_array().unwrap().iter().filter(|c| c["path"] == "/" && c["status_code"] == 200).count();
    assert_eq!(done, 5, "every call is recorded as ended, the abandoned ones too: {calls}");
    app.finish().await;
}

/// One answer seen by a client under load: status, version, whether it was cold.
type Answer = (StatusCode, String, bool);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_update_under_load_fails_no_call() {
    let app = TestApp::spawn(Db::Sqlite).await;
    let t = app.tenant().await;
    // Saturated: 6 clients for 2 containers, so calls wait in the queue when the update lands.
    app.create_with(&t.dev, json!({"name": "busy", "language": "nodejs", "code": COUNTER, "max_instances": 2})).await;
    app.wait_ready(&t.dev, "busy").await;

    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut clients = Vec::new();
    for _ in 0..6 {
        let (client, url, token, stop) = (app.client.clone(), app.url(&format!("/api/org/{}/busy?wait=20", t.org)), t.dev.clone(), stop.clone());
        clients.push(tokio::spawn(async move {
            let mut answers: Vec<Answer> = Vec::new();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let r = client.get(&url).bearer_auth(&token).send().await.unwrap();
                let (status, cold) = (r.status(), r.headers().get("x-vcd-faas-cold").is_some_and(|v| v == "true"));
                let body: Value = r.json().await.unwrap_or(Value::Null);
                answers.push((status, body["version"].as_str().unwrap_or("?").to_string(), cold));
            }
            answers
        }));
    }
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let (status, _) = json_of(app.put(&t.dev, "/api/v1/functions/busy", json!({"code": COUNTER.replace("\"v1\"", "\"v2\"")})).await).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let f = app.wait_until(&t.dev, "busy", Duration::from_secs(120), |f| f["version"] == 2).await;
    assert!(f["build_log"].as_str().unwrap().contains("2 container(s) of v2 started ahead"), "{}", f["build_log"]);
    tokio::time::sleep(Duration::from_millis(1000)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);

    let mut answers = Vec::new();
    for c in clients {
        answers.extend(c.await.unwrap());
    }
    let failed: Vec<_> = answers.iter().filter(|(s, _, _)| *s != StatusCode::OK).collect();
    assert!(failed.is_empty(), "{} of {} calls failed: {failed:?}", failed.len(), answers.len());
    let v2: Vec<_> = answers.iter().filter(|(_, v, _)| v == "v2").collect();
    assert!(answers.iter().any(|(_, v, _)| v == "v1") && !v2.is_empty(), "served by both versions");
    // The new version's containers were started before the switch: no call waited for one.
    assert!(v2.iter().all(|(_, _, cold)| !cold), "a call after the switch was cold: {v2:?}");
    // After the switch, the old version's containers are drained: every container left runs v2.
    let start = Instant::now();
    loop {
        let list = app.engine.list_function_containers().await.unwrap();
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
    let list = app.engine.list_function_containers().await.unwrap();
    let victim = list.iter().find(|c| c.labels.get("vcd-faas.tenant") == Some(&t.org) && c.running).expect("a warm container");
    app.engine.remove_container(&victim.id).await.unwrap();

    let r = app.call(Some(&t.dev), &t.org, "fragile").await;
    assert_eq!(r.status(), StatusCode::OK, "the pool never hands out a dead container");
    assert_eq!(r.headers()["x-vcd-faas-cold"], "true");
    assert_eq!(json_of(r).await.1["calls"], 1);
    app.finish().await;
}

/// Counts the calls it serves at once; the busiest moment it saw is `peak`.
const OVERLAP: &str = r#"
// The pid is 1 in every container: a random id tells the processes apart.
const instance = Math.random().toString(36).slice(2);
let running = 0, peak = 0;
module.exports = async (event) => {
  running += 1;
  peak = Math.max(peak, running);
  await new Promise((r) => setTimeout(r, Number(event.query.wait || 0)));
  running -= 1;
  return { instance, peak };
};
"#;

const OVERLAP_PY: &str = r#"
import threading, time, uuid
instance = uuid.uuid4().hex
lock = threading.Lock()
state = {"running": 0, "peak": 0}

def handle(event, context):
    with lock:
        state["running"] += 1
        state["peak"] = max(state["peak"], state["running"])
    print("call", context["requestId"])
    time.sleep(float(event["query"].get("wait", "0")) / 1000)
    with lock:
        state["running"] -= 1
    return {"instance": instance, "peak": state["peak"]}
"#;

/// Containers of a function idle in the pool with their runtime ready, as /metrics tells the
/// provider.
async fn ready_in_pool(app: &TestApp, org: &str, name: &str) -> i64 {
    in_pool(app, org, name, "idle").await
}

/// A function's containers in the pool in a state (`busy`, `idle`, `spare`), from /metrics.
async fn in_pool(app: &TestApp, org: &str, name: &str, state: &str) -> i64 {
    let metrics = app.get(&app.admin_token, "/metrics").await.text().await.unwrap();
    let line = format!("vcdfaas_pool_containers{{tenant=\"{org}\",function=\"{name}\",state=\"{state}\"}} ");
    metrics.lines().find_map(|l| l.strip_prefix(&line)).and_then(|n| n.parse().ok()).unwrap_or(0)
}

/// Ids of a function's running containers, sorted.
async fn running_ids(app: &TestApp, org: &str, name: &str) -> Vec<String> {
    let mut ids: Vec<String> = app.all_containers_of(org, name).await.into_iter().filter(|c| c.running).map(|c| c.id).collect();
    ids.sort();
    ids
}

/// Ids of the running containers of one version of a function.
async fn running_of_version(app: &TestApp, org: &str, name: &str, version: i64) -> usize {
    let all = app.all_containers_of(org, name).await;
    all.iter().filter(|c| c.running && c.labels["vcd-faas.version"] == version.to_string()).count()
}

/// `n` calls of `path` sent at once; their answers in order.
async fn at_once(app: &TestApp, token: &str, org: &str, path: &str, n: usize) -> Vec<(StatusCode, Value)> {
    let calls = (0..n).map(|_| async { json_of(app.call(Some(token), org, path).await).await });
    futures_util::future::join_all(calls).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn min_instances_run_before_the_first_call_outlive_the_idle_time_and_follow_updates() {
    let app = TestApp::spawn_with(Db::Sqlite, |c| c.idle_secs = 1).await;
    let t = app.tenant().await;
    app.create_with(&t.dev, json!({"name": "ready", "language": "nodejs", "code": COUNTER, "min_instances": 2, "max_instances": 3})).await;
    let f = app.wait_ready(&t.dev, "ready").await;
    assert_eq!((f["status"].as_str(), f["min_instances"].as_i64(), f["concurrency"].as_i64()), (Some("ready"), Some(2), Some(1)));

    app.eventually("two min instances ready before any call", Duration::from_secs(60), || async {
        (app.containers_of(&t.org, "ready").await == 2 && ready_in_pool(&app, &t.org, "ready").await == 2).then_some(())
    })
    .await;
    let before = running_ids(&app, &t.org, "ready").await;
    let r = app.call(Some(&t.dev), &t.org, "ready").await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["x-vcd-faas-cold"], "false", "the first call finds a min instance ready");

    // Three idle times later the same two containers still run.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(running_ids(&app, &t.org, "ready").await, before, "min instances are not reaped when idle");

    // A new version: its own two min instances replace the old ones.
    let (status, _) = json_of(app.put(&t.dev, "/api/v1/functions/ready", json!({"code": COUNTER.replace("\"v1\"", "\"v2\"")})).await).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    app.wait_until(&t.dev, "ready", Duration::from_secs(120), |f| f["version"] == 2).await;
    app.eventually("two min instances of v2 and none of v1", Duration::from_secs(60), || async {
        let v1 = running_of_version(&app, &t.org, "ready", 1).await;
        let v2 = running_of_version(&app, &t.org, "ready", 2).await;
        (v1 == 0 && v2 == 2).then_some(())
    })
    .await;

    // Deleting the function removes them all, the spare too.
    assert_eq!(app.delete(&t.dev, "/api/v1/functions/ready").await.status(), StatusCode::NO_CONTENT);
    app.assert_no_containers(&t.org, "ready").await;
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_min_instance_is_replaced() {
    let app = TestApp::spawn(Db::Sqlite).await;
    let t = app.tenant().await;
    app.create_with(&t.dev, json!({"name": "steady", "language": "nodejs", "code": COUNTER, "min_instances": 1})).await;
    app.wait_ready(&t.dev, "steady").await;
    let victim = app
        .eventually("a min instance running", Duration::from_secs(60), || async {
            running_ids(&app, &t.org, "steady").await.into_iter().next()
        })
        .await;
    app.engine.remove_container(&victim).await.unwrap();

    let replacement = app
        .eventually("another min instance running", Duration::from_secs(30), || async {
            running_ids(&app, &t.org, "steady").await.into_iter().find(|id| *id != victim)
        })
        .await;
    assert_ne!(replacement, victim);
    app.eventually("the replacement ready", Duration::from_secs(30), || async {
        (ready_in_pool(&app, &t.org, "steady").await == 1).then_some(())
    })
    .await;
    let r = app.call(Some(&t.dev), &t.org, "steady").await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["x-vcd-faas-cold"], "false", "the replacement was ready before the call");
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_cold_call_starts_the_container_created_ahead() {
    let app = TestApp::spawn(Db::Sqlite).await;
    let t = app.tenant().await;
    app.deploy(&t.dev, "ahead", "nodejs", COUNTER).await;
    let spare = app
        .eventually("a container created ahead of the first call", Duration::from_secs(30), || async {
            let spares = app.spares_of(&t.org, "ahead").await;
            let kept = in_pool(&app, &t.org, "ahead", "spare").await == 1;
            (spares.len() == 1 && kept).then(|| spares[0].clone())
        })
        .await;
    assert_eq!(app.containers_of(&t.org, "ahead").await, 0, "created, not started: it costs no memory");

    let started = std::time::Instant::now();
    let r = app.call(Some(&t.dev), &t.org, "ahead").await;
    let took = started.elapsed();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["x-vcd-faas-cold"], "true");
    assert_eq!(running_ids(&app, &t.org, "ahead").await, [spare.clone()], "the call ran in the container created ahead");
    println!("cold call with a container created ahead: {took:?}");

    // Another is created behind it for the next cold start.
    let next = app
        .eventually("a new spare behind the started one", Duration::from_secs(30), || async {
            app.spares_of(&t.org, "ahead").await.into_iter().find(|id| *id != spare)
        })
        .await;
    assert_ne!(next, spare);
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrency_lets_one_container_serve_calls_at_once() {
    let app = TestApp::spawn(Db::Sqlite).await;
    let t = app.tenant().await;
    app.create_with(&t.dev, json!({"name": "shared", "language": "nodejs", "code": OVERLAP, "max_instances": 3, "concurrency": 3, "timeout_ms": 10000})).await;
    app.create_with(&t.dev, json!({"name": "single", "language": "nodejs", "code": OVERLAP, "max_instances": 3, "timeout_ms": 10000})).await;
    assert_eq!(app.wait_ready(&t.dev, "shared").await["concurrency"], 3);
    assert_eq!(app.wait_ready(&t.dev, "single").await["concurrency"], 1);

    let shared = at_once(&app, &t.dev, &t.org, "shared?wait=1500", 3).await;
    assert!(shared.iter().all(|(s, _)| *s == StatusCode::OK), "{shared:?}");
    let pids: HashSet<_> = shared.iter().map(|(_, b)| b["instance"].to_string()).collect();
    assert_eq!(pids.len(), 1, "one container served the three calls: {shared:?}");
    assert_eq!(shared.iter().filter_map(|(_, b)| b["peak"].as_i64()).max(), Some(3), "all three ran at once: {shared:?}");
    assert_eq!(app.containers_of(&t.org, "shared").await, 1);

    // concurrency 1 (the default): one call per container, as before.
    let single = at_once(&app, &t.dev, &t.org, "single?wait=1500", 3).await;
    assert!(single.iter().all(|(s, b)| *s == StatusCode::OK && b["peak"] == 1), "{single:?}");
    let pids: HashSet<_> = single.iter().map(|(_, b)| b["instance"].to_string()).collect();
    assert_eq!(pids.len(), 3, "a container each: {single:?}");
    assert_eq!(app.containers_of(&t.org, "single").await, 3);
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_functions_serve_concurrent_calls_with_their_own_logs() {
    let app = TestApp::spawn(Db::Sqlite).await;
    let t = app.tenant().await;
    app.create_with(&t.dev, json!({"name": "threads", "language": "python", "code": OVERLAP_PY, "concurrency": 2, "timeout_ms": 10000})).await;
    let f = app.wait_ready(&t.dev, "threads").await;
    assert_eq!(f["status"], "ready", "{}", f["build_log"]);

    let answers = at_once(&app, &t.dev, &t.org, "threads?wait=1500", 2).await;
    assert!(answers.iter().all(|(s, _)| *s == StatusCode::OK), "{answers:?}");
    assert_eq!(answers.iter().filter_map(|(_, b)| b["peak"].as_i64()).max(), Some(2), "both ran at once: {answers:?}");
    assert_eq!(app.containers_of(&t.org, "threads").await, 1);
    // Each call's log holds its own line only, though both printed at the same time.
    let (_, calls) = json_of(app.get(&t.dev, "/api/v1/functions/threads/invocations").await).await;
    for call in calls.as_array().unwrap() {
        assert_eq!(call["logs"], format!("call {}\n", call["id"].as_str().unwrap()), "{call}");
    }
    app.finish().await;
}

async fn pool_settings_are_checked_and_kept(db: Db) {
    let app = TestApp::spawn(db).await;
    let t = app.tenant_with(json!({"max_instances": 4})).await;
    let field_of = |body: &Value| body["fields"][0]["field"].as_str().map(str::to_string);
    let bad = [
        (json!({"min_instances": 5}), StatusCode::UNPROCESSABLE_ENTITY, "min_instances"),
        (json!({"min_instances": 3, "max_instances": 2}), StatusCode::UNPROCESSABLE_ENTITY, "min_instances"),
        (json!({"min_instances": -1}), StatusCode::UNPROCESSABLE_ENTITY, "min_instances"),
        (json!({"min_instances": 1, "mode": "per-call"}), StatusCode::UNPROCESSABLE_ENTITY, "min_instances"),
        (json!({"concurrency": 0}), StatusCode::BAD_REQUEST, "concurrency"),
        (json!({"concurrency": 101}), StatusCode::BAD_REQUEST, "concurrency"),
    ];
    for (extra, status, field) in bad {
        let mut spec = json!({"name": "cap", "language": "nodejs", "code": COUNTER});
        spec.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        let (got, body) = json_of(app.post(&t.dev, "/api/v1/functions", spec.clone()).await).await;
        assert_eq!((got, field_of(&body).as_deref()), (status, Some(field)), "{spec} → {body}");
    }

    let f = app.create_with(&t.dev, json!({"name": "cap", "language": "nodejs", "code": COUNTER, "mode": "per-call"})).await;
    assert_eq!((f["min_instances"].as_i64(), f["concurrency"].as_i64()), (Some(0), Some(1)), "defaults: {f}");
    // On update the stored values count: min over the stored max, min in per-call mode.
    let (status, body) = json_of(app.put(&t.dev, "/api/v1/functions/cap", json!({"min_instances": 1})).await).await;
    assert_eq!((status, field_of(&body).as_deref()), (StatusCode::UNPROCESSABLE_ENTITY, Some("min_instances")), "{body}");
    let (status, f) = json_of(app.put(&t.dev, "/api/v1/functions/cap", json!({"mode": "warm", "min_instances": 1, "concurrency": 8})).await).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{f}");
    assert_eq!((f["min_instances"].as_i64(), f["concurrency"].as_i64(), f["max_instances"].as_i64()), (Some(1), Some(8), Some(4)));
    // A field left out keeps its value.
    let (_, f) = json_of(app.put(&t.dev, "/api/v1/functions/cap", json!({"max_instances": 2})).await).await;
    assert_eq!((f["min_instances"].as_i64(), f["concurrency"].as_i64(), f["max_instances"].as_i64()), (Some(1), Some(8), Some(2)));
    let f = app.function(&t.dev, "cap").await;
    assert_eq!((f["min_instances"].as_i64(), f["concurrency"].as_i64()), (Some(1), Some(8)));
    app.wait_until(&t.dev, "cap", Duration::from_secs(240), |f| f["build_status"] != "queued" && f["build_status"] != "building").await;
    app.finish().await;
}

on_both_databases!(pool_settings_are_checked_and_kept);

/// Ids of a function's containers in a Docker state (`paused`, `created`, `running`).
fn containers_in_state(org: &str, name: &str, state: &str) -> Vec<String> {
    let out = std::process::Command::new("docker")
        .args(["ps", "-aq", "--filter", &format!("label=vcd-faas.tenant={org}"), "--filter", &format!("label=vcd-faas.function={name}")])
        .args(["--filter", &format!("status={state}")])
        .output()
        .expect("docker CLI");
    String::from_utf8_lossy(&out.stdout).split_whitespace().map(str::to_string).collect()
}

/// Reports what the sandbox lets it see, so a pre-started container is checked to be as
/// strict as any other.
const SANDBOX_PROBE: &str = r#"
const fs = require("fs");
const os = require("os");
module.exports = async () => {
  let rootWritable = true;
  try { fs.writeFileSync("/probe", "x"); } catch (e) { rootWritable = false; }
  return { uid: process.getuid(), interfaces: Object.keys(os.networkInterfaces()), rootWritable };
};
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recently_called_function_keeps_its_next_container_pre_started_within_the_budget() {
    // Room for one pre-started spare of 128 MB, not two.
    let app = TestApp::spawn_with(Db::Sqlite, |c| {
        c.idle_secs = 4;
        c.prestarted_mb = 200;
    })
    .await;
    let t = app.tenant().await;
    app.deploy(&t.dev, "probe", "nodejs", SANDBOX_PROBE).await;
    let paused = app
        .eventually("a pre-started (paused) spare", Duration::from_secs(30), || async {
            let paused = containers_in_state(&t.org, "probe", "paused");
            (paused.len() == 1).then(|| paused[0].clone())
        })
        .await;
    let metrics = app.get(&app.admin_token, "/metrics").await.text().await.unwrap();
    assert!(metrics.contains(&format!("vcdfaas_pool_prestarted_memory_mb{{tenant=\"{}\",function=\"probe\"}} 128", t.org)), "{metrics}");

    // The first call unpauses it: a cold start, by the pre-started path, as strict a sandbox.
    let r = app.call(Some(&t.dev), &t.org, "probe").await;
    assert_eq!((r.headers()["x-vcd-faas-cold"].to_str().unwrap(), r.headers()["x-vcd-faas-path"].to_str().unwrap()), ("true", "pre-started"));
    let (status, body) = json_of(r).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, json!({"uid": 10001, "interfaces": ["lo"], "rootWritable": false}), "the sandbox of a pre-started container");
    let running = running_ids(&app, &t.org, "probe").await;
    assert!(running.len() == 1 && running[0].starts_with(&paused), "the call ran in the pre-started container {paused}: {running:?}");
    let r = app.call(Some(&t.dev), &t.org, "probe").await;
    assert_eq!((r.headers()["x-vcd-faas-cold"].to_str().unwrap(), r.headers()["x-vcd-faas-path"].to_str().unwrap()), ("false", "warm"));
    // Another is pre-started behind it.
    app.eventually("a new pre-started spare", Duration::from_secs(30), || async {
        containers_in_state(&t.org, "probe", "paused").into_iter().find(|id| *id != paused)
    })
    .await;

    // A second function finds the budget taken: its spare is created, not started.
    app.deploy(&t.dev, "second", "nodejs", SANDBOX_PROBE).await;
    app.eventually("a created spare of the second function", Duration::from_secs(30), || async {
        (containers_in_state(&t.org, "second", "created").len() == 1).then_some(())
    })
    .await;
    assert!(containers_in_state(&t.org, "second", "paused").is_empty(), "over the budget");
    let r = app.call(Some(&t.dev), &t.org, "second").await;
    assert_eq!(r.headers()["x-vcd-faas-path"], "started");

    // Not called for the idle time: scale to zero frees what it held, the pre-started spare
    // too; the next cold start starts a created spare.
    app.eventually("the idle function's containers gone, a created spare left", Duration::from_secs(30), || async {
        let held = containers_in_state(&t.org, "probe", "running").len() + containers_in_state(&t.org, "probe", "paused").len();
        (held == 0 && containers_in_state(&t.org, "probe", "created").len() == 1).then_some(())
    })
    .await;
    let r = app.call(Some(&t.dev), &t.org, "probe").await;
    assert_eq!((r.headers()["x-vcd-faas-cold"].to_str().unwrap(), r.headers()["x-vcd-faas-path"].to_str().unwrap()), ("true", "started"));
    app.finish().await;
}

/// Reads a file that came with it, and reports what the sandbox lets it see and write.
const STEM_PROBE: &str = r#"
const fs = require("fs");
const os = require("os");
const writable = (path) => { try { fs.writeFileSync(path, "x"); return true; } catch (e) { return false; } };
module.exports = async () => ({
  owner: require("./owner.json").owner,
  files: fs.readdirSync("/app").sort(),
  uid: process.getuid(),
  interfaces: Object.keys(os.networkInterfaces()),
  rootWritable: writable("/probe"),
  appWritable: writable("/app/added.js"),
});
"#;

/// The stem cells: `/metrics`' count of the cells kept, once it is `wanted`.
async fn stem_cells(app: &TestApp, wanted: usize) {
    let line = format!("vcdfaas_pool_stem_cells {wanted}");
    app.eventually(&format!("{wanted} stem cells kept"), Duration::from_secs(60), || async {
        let metrics = app.get(&app.admin_token, "/metrics").await.text().await.unwrap();
        metrics.lines().any(|l| l == line).then_some(())
    })
    .await;
}

/// Stem cells of this platform's engine in a state (`paused`: kept; `running`: specialized).
fn stem_containers(app: &TestApp, state: &str) -> usize {
    let installation = format!("label=vcd-faas.installation={}", app.engine.installation());
    let out = std::process::Command::new("docker")
        .args(["ps", "-aq", "--filter", "label=vcd-faas.stem", "--filter", &installation, "--filter", &format!("status={state}")])
        .output()
        .expect("docker CLI");
    String::from_utf8_lossy(&out.stdout).split_whitespace().count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_calls_at_once_take_stem_cells_each_made_one_functions_own() {
    // Three cells per language asked for, room for four of 128 MB: three Node.js, one Python.
    let app = TestApp::spawn_with(Db::Sqlite, |c| {
        c.prestarted_mb = 4 * 128;
        c.stem_cells = 3;
    })
    .await;
    stem_cells(&app, 4).await;
    assert_eq!(stem_containers(&app, "paused"), 4);
    let (a, b) = (app.tenant().await, app.tenant().await);
    for (t, name) in [(&a, "alpha"), (&b, "beta")] {
        let files = json!({"handler.js": STEM_PROBE, "owner.json": format!("{{\"owner\": \"{}/{name}\"}}", t.org)});
        app.create_with(&t.dev, json!({"name": name, "language": "nodejs", "files": files})).await;
        app.wait_ready(&t.dev, name).await;
    }

    // Two first calls of one function and one of another tenant's, at once: each unpauses a
    // cell that took its function's files, in the same sandbox as any container.
    let app_ref = &app;
    let calls = [(&a, "alpha"), (&a, "alpha"), (&b, "beta")].map(|(t, name)| async move {
        let app = app_ref;
        let r = app.call(Some(&t.dev), &t.org, name).await;
        let path = r.headers()["x-vcd-faas-path"].to_str().unwrap().to_string();
        let (status, body) = json_of(r).await;
        (format!("{}/{name}", t.org), status, path, body)
    });
    for (owner, status, path, body) in futures_util::future::join_all(calls).await {
        assert_eq!((status, path.as_str()), (StatusCode::OK, "specialized"), "{owner}: {body}");
        assert_eq!(
            body,
            json!({"owner": owner, "files": ["handler.js", "owner.json"], "uid": 10001, "interfaces": ["lo"], "rootWritable": false, "appWritable": false}),
            "a cell holds its one function's files, read-only, sandboxed as any container"
        );
    }
    // Once the keeper has paused the cells it made in their place, the running ones are those.
    stem_cells(&app, 4).await;
    assert_eq!(stem_containers(&app, "running"), 3, "the three cells now serve alpha (2) and beta (1)");
    // Warm from now on: the cells are those functions' containers.
    let r = app.call(Some(&b.dev), &b.org, "beta").await;
    assert_eq!(r.headers()["x-vcd-faas-path"], "warm");
    assert_eq!(json_of(r).await.1["owner"], format!("{}/beta", b.org));

    // Python's one cell; a version with other memory than the cells' starts its own container.
    app.deploy(&a.dev, "gamma", "python", "def handle(event, context):\n    return 'from a cell'\n").await;
    let r = app.call(Some(&a.dev), &a.org, "gamma").await;
    assert_eq!(r.headers()["x-vcd-faas-path"], "specialized");
    assert_eq!(r.text().await.unwrap(), "from a cell");
    app.create_with(&a.dev, json!({"name": "big", "language": "nodejs", "code": "module.exports = async () => 'own container';", "memory_mb": 256})).await;
    app.wait_ready(&a.dev, "big").await;
    let r = app.call(Some(&a.dev), &a.org, "big").await;
    assert_ne!(r.headers()["x-vcd-faas-path"], "specialized");

    // The keeper makes new cells in place of those taken; the dashboard shows what they hold.
    stem_cells(&app, 4).await;
    let (_, links) = json_of(app.get(&app.admin_token, "/api/v1/links").await).await;
    let paused = links.as_array().unwrap().iter().find(|l| l["name"] == "Paused containers").cloned().unwrap_or_default();
    assert!(paused["detail"].as_str().unwrap_or_default().contains("4 stem cell(s) hold 512 MB of the 512 MB"), "{links}");

    // A deleted function's cells go with its other containers; the kept ones at shutdown.
    for (t, name) in [(&a, "alpha"), (&b, "beta"), (&a, "gamma")] {
        assert_eq!(app.delete(&t.dev, &format!("/api/v1/functions/{name}")).await.status(), StatusCode::NO_CONTENT);
    }
    app.eventually("the specialized cells removed with their functions", Duration::from_secs(20), || async {
        (stem_containers(&app, "running") == 0).then_some(())
    })
    .await;
    app.service.calls().gateway().pool().drain().await;
    assert_eq!(stem_containers(&app, "paused"), 0, "no cell left behind");
    app.finish().await;
}
