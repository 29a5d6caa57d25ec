//! Asynchronous calls with AMQP_URL set: queued in the function's durable queue on RabbitMQ,
//! surviving a `kill -9` of the server, and dead-lettered on the broker after MAX_ATTEMPTS.
//! (A broker restart is in async_amqp_broker_restart.rs, alone: it restarts the shared broker.)

mod common;

use common::amqp::{self, Names};
use common::binary::{post, Server};
use common::{json_of, Db, TestApp};
use reqwest::{Client, StatusCode};
use serde_json::{json, Value};
use server::run::engine::Engine;
use server::store::Store;
use std::path::Path;
use std::time::{Duration, Instant};

async fn spawn_on_broker(db: Db, names: &Names) -> TestApp {
    amqp::sweep_earlier_test_objects().await;
    TestApp::spawn_with(db, |config| names.apply(config)).await
}

async fn calls_wait_their_turn_in_the_functions_queue(db: Db) {
    let names = Names::new();
    let app = spawn_on_broker(db, &names).await;
    let t = app.tenant().await;
    let code = "module.exports = async (e) => { await new Promise(r => setTimeout(r, 3000)); return { got: e.body }; };";
    app.create_with(&t.dev, json!({"name": "slow", "language": "nodejs", "code": code, "max_instances": 1})).await;
    app.wait_ready(&t.dev, "slow").await;
    let queue = names.async_queue(&t.org, "slow");
    amqp::wait_for_queue(&queue).await;

    let first = app.call_async(&t.dev, &t.org, "slow").await;
    app.wait_for_state(&t.dev, &first, &["running"]).await;
    let second = app.call_async(&t.dev, &t.org, "slow").await;
    // One instance, so a prefetch of one: the second call waits on the broker.
    amqp::wait_for_messages(&queue, 1).await;

    for id in [&first, &second] {
        let inv = app.wait_for_state(&t.dev, id, &["done", "dead-letter", "failed"]).await;
        assert_eq!(inv["state"], "done", "{inv}");
        assert_eq!(inv["attempts"], 1);
        let body: Value = serde_json::from_str(inv["response"]["body"].as_str().unwrap()).unwrap();
        assert_eq!(body, json!({"got": "payload"}));
    }
    assert_eq!(amqp::queue_counts(&queue).await, Some((0, 1)), "the queue is empty and still consumed");
    let metrics = app.get(&app.admin_token, "/metrics").await.text().await.unwrap();
    let depth = format!("vcdfaas_async_queue_depth{{tenant=\"{}\",function=\"slow\"}} 0", t.org);
    assert!(metrics.lines().any(|line| line == depth), "{metrics}");
    let (_, links) = json_of(app.get(&app.admin_token, "/api/v1/links").await).await;
    let async_link = links.as_array().unwrap().iter().find(|l| l["name"] == "RabbitMQ: async calls").cloned();
    assert_eq!(async_link.map(|l| l["state"].clone()), Some(json!("up")), "the dashboard shows the consumers' link: {links}");

    // A deleted function's queues go with it.
    assert_eq!(app.delete(&t.dev, "/api/v1/functions/slow").await.status(), StatusCode::NO_CONTENT);
    let start = Instant::now();
    while amqp::queue_counts(&queue).await.is_some() {
        assert!(start.elapsed() < Duration::from_secs(60), "the queue of a deleted function was left");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(amqp::queue_counts(&names.async_dead_letter_queue(&t.org, "slow")).await, None);
    app.finish().await;
}

on_both_databases!(calls_wait_their_turn_in_the_functions_queue);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_function_that_always_fails_is_dead_lettered_on_the_broker() {
    let names = Names::new();
    let app = spawn_on_broker(Db::Sqlite, &names).await;
    let t = app.tenant().await;
    app.deploy(&t.dev, "doomed", "python", "def handle(e, c):\n    raise RuntimeError('always')\n").await;
    amqp::wait_for_queue(&names.async_queue(&t.org, "doomed")).await;

    let accepted = Instant::now();
    let id = app.call_async(&t.dev, &t.org, "doomed").await;
    let inv = app.wait_for_state(&t.dev, &id, &["dead-letter", "done", "failed"]).await;
    assert_eq!(inv["state"], "dead-letter", "{inv}");
    assert_eq!(inv["attempts"], server::calls::async_worker::MAX_ATTEMPTS);
    let backoff = server::calls::async_worker::retry_delay(1) + server::calls::async_worker::retry_delay(2);
    assert!(accepted.elapsed() >= backoff, "three attempts took {:?}, less than the {backoff:?} of back-off", accepted.elapsed());
    assert_eq!(inv["status_code"], 500);
    assert!(inv["error"].as_str().unwrap().contains("RuntimeError: always"), "{inv}");

    let dead_letters = names.async_dead_letter_queue(&t.org, "doomed");
    amqp::wait_for_messages(&dead_letters, 1).await;
    assert_eq!(amqp::take_message(&dead_letters).await.as_deref(), Some(id.as_str()), "operators see the call's id");
    assert_eq!(amqp::queue_counts(&names.async_queue(&t.org, "doomed")).await.map(|c| c.0), Some(0));
    app.finish().await;
}

// ---- the real binary, killed and started again ----

async fn start_binary(dir: &Path, port: u16, names: &Names) -> Server {
    common::binary::start(dir, port, &names.env()).await
}

async fn tenant(client: &Client, base: &str) -> (String, String) {
    common::binary::setup_tenant(client, base, json!({})).await
}

async fn get(client: &Client, url: String, token: &str) -> Value {
    client.get(url).bearer_auth(token).send().await.unwrap().json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accepted_calls_survive_a_kill_of_the_server() {
    amqp::sweep_earlier_test_objects().await;
    let names = Names::new();
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let client = Client::builder().timeout(Duration::from_secs(60)).build().unwrap();
    let server = start_binary(dir.path(), port, &names).await;
    let (org, dev) = tenant(&client, &server.base).await;
    let code = "module.exports = async () => { await new Promise(r => setTimeout(r, 1500)); return 'finished'; };";
    post(&client, format!("{}/api/v1/functions", server.base), Some(&dev), json!({"name": "job", "language": "nodejs", "code": code, "max_instances": 1})).await;
    let start = Instant::now();
    while get(&client, format!("{}/api/v1/functions/job", server.base), &dev).await["status"] != "ready" {
        assert!(start.elapsed() < Duration::from_secs(240), "the function was not built");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    amqp::wait_for_queue(&names.async_queue(&org, "job")).await;

    let mut ids = Vec::new();
    for _ in 0..4 {
        let r = client.post(format!("{}/api/org/{org}/job", server.base)).bearer_auth(&dev).header("x-invoke-type", "async").send().await.unwrap();
        assert_eq!(r.status(), StatusCode::ACCEPTED);
        ids.push(r.json::<Value>().await.unwrap()["invocation_id"].as_str().unwrap().to_string());
    }
    // Killed while the first call runs and the others wait on the broker.
    let start = Instant::now();
    while get(&client, format!("{}/api/v1/invocations/{}", server.base, ids[0]), &dev).await["state"] != "running" {
        assert!(start.elapsed() < Duration::from_secs(60), "the first call never ran");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop(server);

    let server = start_binary(dir.path(), port, &names).await;
    for id in &ids {
        let start = Instant::now();
        loop {
            let inv = get(&client, format!("{}/api/v1/invocations/{id}", server.base), &dev).await;
            if inv["state"] == "done" {
                assert_eq!(inv["response"]["body"], "finished");
                break;
            }
            assert!(start.elapsed() < Duration::from_secs(120), "async call lost: {inv}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    let r = client.delete(format!("{}/api/v1/functions/job", server.base)).bearer_auth(&dev).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let store = Store::connect(&format!("sqlite://{}/vcd-faas.db", dir.path().display())).await.unwrap();
    let engine = Engine::connect(None, &store.installation_id().await.unwrap()).await.unwrap();
    let start = Instant::now();
    while !engine.list_function_containers().await.unwrap().is_empty() {
        assert!(start.elapsed() < Duration::from_secs(30), "containers left behind after delete");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
