//! Several server processes on one database and one Docker engine: a process that starts, or
//! whose reconciler runs, leaves a live peer's warm containers and running calls alone, and
//! still removes those of a process that is gone; the calls a killed process was running are
//! recovered by another.

mod common;

use common::{amqp, binary};
use common::{fresh_database, Db};
use reqwest::Client;
use serde_json::json;
use std::time::Duration;

const SLOW: &str = "module.exports = async (event) => { await new Promise((r) => setTimeout(r, Number(event.query.ms || 0))); return 'done'; };\n";

async fn containers_of(org: &str) -> Vec<String> {
    let out = std::process::Command::new("docker")
        .args(["ps", "-q", "--filter", &format!("label=vcd-faas.tenant={org}")])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).lines().map(str::to_string).collect()
}

/// Removes the containers the killed process left (its peer would at its next reconcile, which
/// these tests set an hour away), so that no test run leaves containers on the engine.
fn remove_containers_left_by(org: &str) {
    let out = std::process::Command::new("docker").args(["ps", "-aq", "--filter", &format!("label=vcd-faas.tenant={org}")]).output().unwrap();
    let ids: Vec<String> = String::from_utf8_lossy(&out.stdout).lines().map(str::to_string).collect();
    if !ids.is_empty() {
        std::process::Command::new("docker").args(["rm", "-f"]).args(&ids).output().unwrap();
    }
}

/// Creates the function `slow` and waits until it is ready.
async fn create_slow(client: &Client, base: &str, dev: &str) {
    let spec = json!({"name": "slow", "language": "nodejs", "code": SLOW, "timeout_ms": 20000});
    let r = client.post(format!("{base}/api/v1/functions")).bearer_auth(dev).json(&spec).send().await.unwrap();
    assert!(r.status().is_success());
    for _ in 0..600 {
        let f: serde_json::Value = client.get(format!("{base}/api/v1/functions/slow")).bearer_auth(dev).send().await.unwrap().json().await.unwrap();
        if f["status"] == "ready" {
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("function slow not ready");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_starting_process_leaves_a_live_peers_containers_and_calls_alone() {
    let root = tempfile::tempdir().unwrap();
    let mut envs = binary::shared_settings(&fresh_database(Db::Postgres, root.path()).await);
    // Every second, so the periodic pass runs during the test too.
    envs.retain(|(k, _)| k != "VCD_FAAS_RECONCILE_SECS");
    envs.push(("VCD_FAAS_RECONCILE_SECS".into(), "1".into()));
    let client = Client::builder().timeout(Duration::from_secs(120)).build().unwrap();
    let a = binary::start_in(root.path(), "a", &envs).await;
    let (org, dev) = binary::setup_tenant(&client, &a.base, json!({})).await;
    create_slow(&client, &a.base, &dev).await;
    let route = format!("{}/api/org/{org}/slow", a.base);
    assert_eq!(client.get(&route).bearer_auth(&dev).send().await.unwrap().status(), 200);
    let warm = containers_of(&org).await;
    assert_eq!(warm.len(), 1, "one warm container of process a");

    // A call runs on a while a second process starts and reconciles.
    let running = tokio::spawn({
        let (client, route, dev) = (client.clone(), format!("{route}?ms=6000"), dev.clone());
        async move { client.get(&route).bearer_auth(&dev).send().await.unwrap().text().await.unwrap() }
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    let b = binary::start_in(root.path(), "b", &envs).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(running.await.unwrap(), "done", "the call in flight on process a ran to its end");
    let now = containers_of(&org).await;
    assert!(warm.iter().all(|id| now.contains(id)), "process b removed process a's warm container");
    let r = client.get(&route).bearer_auth(&dev).send().await.unwrap();
    assert_eq!(r.headers()["x-vcd-faas-cold"], "false", "process a's next call is warm");
    // Process a writes its records a moment after each call: read them once all have ended.
    let mut calls = serde_json::Value::Null;
    for _ in 0..100 {
        calls = client.get(format!("{}/api/v1/functions/slow/invocations", b.base)).bearer_auth(&dev).send().await.unwrap().json().await.unwrap();
        let list = calls.as_array().unwrap();
        if list.len() == 3 && list.iter().all(|c| c["status_code"].is_number()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let list = calls.as_array().unwrap();
    assert_eq!(list.len(), 3, "{calls}");
    assert!(list.iter().all(|c| c["status_code"] == 200 && c["error"].is_null()), "no call was failed as interrupted: {calls}");

    // Process a is killed: it is gone, and a new process removes what it left.
    a.kill9();
    let c = binary::start_in(root.path(), "c", &envs).await;
    let mut left = containers_of(&org).await;
    for _ in 0..100 {
        if left.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        left = containers_of(&org).await;
    }
    assert!(left.is_empty(), "the killed process's container is removed: {left:?}");
    b.terminate();
    c.terminate();
}

/// No call is lost with the process that took it: killed in the middle of its calls, process
/// a's running asynchronous calls go back to the queue and process b runs them; its running
/// synchronous call (whose caller lost the connection with it) is failed as interrupted rather
/// than left running for ever.
async fn calls_a_killed_process_was_running_are_recovered_by_another(broker: Option<amqp::Names>) {
    if broker.is_some() {
        amqp::sweep_earlier_test_objects().await;
    }
    let root = tempfile::tempdir().unwrap();
    let mut envs = binary::shared_settings(&fresh_database(Db::Postgres, root.path()).await);
    envs.extend(broker.iter().flat_map(amqp::Names::env));
    let client = Client::builder().timeout(Duration::from_secs(120)).build().unwrap();
    let a = binary::start_in(root.path(), "a", &envs).await;
    let (org, dev) = binary::setup_tenant(&client, &a.base, json!({})).await;
    create_slow(&client, &a.base, &dev).await;
    let read = |base: String, id: String| {
        let (client, dev) = (client.clone(), dev.clone());
        async move { client.get(format!("{base}/api/v1/invocations/{id}")).bearer_auth(&dev).send().await.ok()?.json::<serde_json::Value>().await.ok() }
    };
    let route = format!("{}/api/org/{org}/slow?ms=5000", a.base);
    let mut ids = Vec::new();
    for _ in 0..3 {
        let r = client.post(&route).bearer_auth(&dev).header("x-invoke-type", "async").body("{}").send().await.unwrap();
        assert_eq!(r.status(), 202);
        ids.push(r.json::<serde_json::Value>().await.unwrap()["invocation_id"].as_str().unwrap().to_string());
    }
    let synchronous = tokio::spawn({
        let (client, route, dev) = (client.clone(), route.clone(), dev.clone());
        async move { client.get(&route).bearer_auth(&dev).send().await }
    });
    // All three asynchronous calls running on process a (its worker claims them at once).
    for id in &ids {
        let mut running = false;
        for _ in 0..100 {
            running = read(a.base.clone(), id.clone()).await.is_some_and(|c| c["state"] == "running");
            if running {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(running, "async call {id} running on process a");
    }
    // The synchronous call is recorded as running (after half a second).
    let mut sync_id = None;
    for _ in 0..100 {
        let calls: serde_json::Value = client.get(format!("{}/api/v1/functions/slow/invocations", a.base)).bearer_auth(&dev).send().await.unwrap().json().await.unwrap();
        sync_id = calls.as_array().unwrap().iter().find(|c| c["trigger"] == "http" && c["status_code"].is_null()).map(|c| c["id"].as_str().unwrap().to_string());
        if sync_id.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let sync_id = sync_id.expect("the synchronous call recorded as running");

    let b = binary::start_in(root.path(), "b", &envs).await;
    a.kill9();
    let killed = std::time::Instant::now();
    assert!(synchronous.await.unwrap().is_err(), "the caller of the synchronous call lost its connection with process a");
    for id in &ids {
        let mut call = serde_json::Value::Null;
        for _ in 0..300 {
            call = read(b.base.clone(), id.clone()).await.unwrap_or_default();
            if call["state"] == "done" || call["state"] == "failed" {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!((call["state"].as_str(), call["status_code"].as_i64()), (Some("done"), Some(200)), "process b ran {id}: {call}");
    }
    println!("the 3 async calls process a was running answered by process b {} ms after the kill", killed.elapsed().as_millis());
    let mut call = serde_json::Value::Null;
    for _ in 0..300 {
        call = read(b.base.clone(), sync_id.clone()).await.unwrap_or_default();
        if call["state"] != "running" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        (call["state"].as_str(), call["error"].as_str()),
        (Some("failed"), Some("interrupted: the process that took the call stopped during it")),
        "the synchronous call process a was running: {call}"
    );
    b.terminate();
    remove_containers_left_by(&org);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_a_killed_process_was_running_are_recovered_by_another_with_the_database_queue() {
    calls_a_killed_process_was_running_are_recovered_by_another(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_a_killed_process_was_running_are_recovered_by_another_with_rabbitmq() {
    calls_a_killed_process_was_running_are_recovered_by_another(Some(amqp::Names::new())).await;
}
