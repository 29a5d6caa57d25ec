//! `kill -9` of the real server binary mid-build and mid-call, then a restart: the function
//! ends `ready` and no container is left behind.

mod common;

use common::binary::{free_port, post, Server};
use reqwest::{Client, StatusCode};
use serde_json::{json, Value};
use server::run::engine::Engine;
use server::store::Store;
use std::path::Path;
use std::time::{Duration, Instant};

async fn start(dir: &Path, port: u16) -> Server {
    common::binary::start(dir, port, &[]).await
}

async fn setup_tenant(client: &Client, base: &str) -> (String, String) {
    common::binary::setup_tenant(client, base, json!({})).await
}

async fn status(client: &Client, base: &str, token: &str, name: &str) -> Value {
    client.get(format!("{base}/api/v1/functions/{name}")).bearer_auth(token).send().await.unwrap().json().await.unwrap()
}

/// The engine as this installation sees it, to count what it left behind.
async fn engine_of(dir: &Path) -> Engine {
    let store = Store::connect(&format!("sqlite://{}/vcd-faas.db", dir.display())).await.unwrap();
    let installation = store.installation_id().await.unwrap();
    Engine::connect(None, &installation).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_during_build_and_call_then_restart_converges() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let client = Client::builder().timeout(Duration::from_secs(60)).build().unwrap();

    // 1. Killed while building: the restart resumes the build.
    let server = start(dir.path(), port).await;
    let (org, dev) = setup_tenant(&client, &server.base).await;
    let code = "module.exports = async (e) => { await new Promise(r => setTimeout(r, Number(e.query.wait || 0))); return 'survived'; };";
    post(&client, format!("{}/api/v1/functions", server.base), Some(&dev), json!({"name": "sturdy", "language": "nodejs", "code": code, "timeout_ms": 30000})).await;
    let start_wait = Instant::now();
    while status(&client, &server.base, &dev, "sturdy").await["build_status"] == "queued" {
        assert!(start_wait.elapsed() < Duration::from_secs(60));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    server.kill9();

    let server = start(dir.path(), port).await;
    let start_wait = Instant::now();
    let f = loop {
        let f = status(&client, &server.base, &dev, "sturdy").await;
        if f["status"] == "ready" || f["status"] == "failed" {
            break f;
        }
        assert!(start_wait.elapsed() < Duration::from_secs(180), "build not resumed: {f}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(f["status"], "ready", "{}", f["build_log"]);

    // 2. Killed during a call: the container outlives the server until the restart.
    let call_url = format!("{}/api/org/{org}/sturdy?wait=20000", server.base);
    let (call_client, call_token) = (client.clone(), dev.clone());
    let call = tokio::spawn(async move { call_client.get(call_url).bearer_auth(call_token).send().await });
    let engine = engine_of(dir.path()).await;
    let start_wait = Instant::now();
    while running(&engine).await == 0 {
        assert!(start_wait.elapsed() < Duration::from_secs(30), "call did not start a container");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Past the journal's half second, so the call is on record as running.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    server.kill9();
    assert!(call.await.unwrap().is_err(), "the caller sees the connection drop");
    let before: Vec<String> = engine.list_function_containers().await.unwrap().into_iter().map(|c| c.id).collect();
    assert_eq!(running(&engine).await, 1, "the orphan is there before the restart");

    let server = start(dir.path(), port).await;
    assert_eq!(running(&engine).await, 0, "the start-up reconcile removed the orphan");
    let after = engine.list_function_containers().await.unwrap();
    assert!(after.iter().all(|c| !before.contains(&c.id)), "the killed server's spare is removed too");
    let calls: Value = client
        .get(format!("{}/api/v1/functions/sturdy/invocations", server.base))
        .bearer_auth(&dev)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(calls[0]["error"].as_str().unwrap().contains("interrupted"), "{calls}");
    let r = client.get(format!("{}/api/org/{org}/sturdy", server.base)).bearer_auth(&dev).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.text().await.unwrap(), "survived");

    let r = client.delete(format!("{}/api/v1/functions/sturdy", server.base)).bearer_auth(&dev).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    wait_until_no_containers(&engine).await;
}

/// Function containers that run (not the spares created ahead of calls).
async fn running(engine: &Engine) -> usize {
    engine.list_function_containers().await.unwrap().iter().filter(|c| c.running).count()
}

/// The server is killed when the test ends: let the deletion finish first, leaving nothing.
async fn wait_until_no_containers(engine: &Engine) {
    let start = Instant::now();
    while !engine.list_function_containers().await.unwrap().is_empty() {
        assert!(start.elapsed() < Duration::from_secs(30), "containers left behind after delete");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accepted_async_calls_survive_a_kill() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let client = Client::builder().timeout(Duration::from_secs(60)).build().unwrap();
    let server = start(dir.path(), port).await;
    let (org, dev) = setup_tenant(&client, &server.base).await;
    let code = "module.exports = async () => { await new Promise(r => setTimeout(r, 1500)); return 'finished'; };";
    post(&client, format!("{}/api/v1/functions", server.base), Some(&dev), json!({"name": "job", "language": "nodejs", "code": code})).await;
    let start_wait = Instant::now();
    while status(&client, &server.base, &dev, "job").await["status"] != "ready" {
        assert!(start_wait.elapsed() < Duration::from_secs(180));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut ids = Vec::new();
    for _ in 0..3 {
        let r = client.post(format!("{}/api/org/{org}/job", server.base)).bearer_auth(&dev).header("x-invoke-type", "async").send().await.unwrap();
        assert_eq!(r.status(), StatusCode::ACCEPTED);
        ids.push(r.json::<Value>().await.unwrap()["invocation_id"].as_str().unwrap().to_string());
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    server.kill9();

    let server = start(dir.path(), port).await;
    for id in ids {
        let start_wait = Instant::now();
        loop {
            let inv: Value = client.get(format!("{}/api/v1/invocations/{id}", server.base)).bearer_auth(&dev).send().await.unwrap().json().await.unwrap();
            if inv["state"] == "done" {
                assert_eq!(inv["response"]["body"], "finished");
                break;
            }
            assert!(start_wait.elapsed() < Duration::from_secs(60), "async call lost: {inv}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    let r = client.delete(format!("{}/api/v1/functions/job", server.base)).bearer_auth(&dev).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    wait_until_no_containers(&engine_of(dir.path()).await).await;
}
