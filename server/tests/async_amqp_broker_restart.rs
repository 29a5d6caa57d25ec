//! Asynchronous calls across a restart of RabbitMQ: every call answered 202 ends `done`, also
//! those accepted while the broker was away. Alone in its binary: it stops the shared broker.

mod common;

use common::amqp::{self, Names};
use common::{Db, TestApp};
use reqwest::StatusCode;
use std::process::Command;

fn rabbitmqctl(args: &[&str]) {
    let out = Command::new("rabbitmqctl").args(args).output().expect("rabbitmqctl runs");
    assert!(out.status.success(), "rabbitmqctl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// Starts the broker again even when the test fails half-way.
struct BrokerStopped;

impl Drop for BrokerStopped {
    fn drop(&mut self) {
        let _ = Command::new("rabbitmqctl").arg("start_app").output();
        let _ = Command::new("rabbitmqctl").args(["await_startup"]).output();
    }
}

/// An async call: Some(invocation id) on 202, None on a clear 503 refusal.
async fn try_call_async(app: &TestApp, token: &str, org: &str) -> Option<String> {
    let r = app.client.post(app.url(&format!("/api/org/{org}/job"))).bearer_auth(token).header("X-Invoke-Type", "async").send().await.unwrap();
    match r.status() {
        StatusCode::ACCEPTED => Some(r.json::<serde_json::Value>().await.unwrap()["invocation_id"].as_str().unwrap().to_string()),
        StatusCode::SERVICE_UNAVAILABLE => None,
        other => panic!("an async call was answered {other}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accepted_calls_survive_a_broker_restart() {
    amqp::sweep_earlier_test_objects().await;
    let names = Names::new();
    let app = TestApp::spawn_with(Db::Sqlite, |config| names.apply(config)).await;
    let t = app.tenant().await;
    app.deploy(&t.dev, "job", "nodejs", "module.exports = async () => { await new Promise(r => setTimeout(r, 500)); return 'finished'; };").await;
    amqp::wait_for_queue(&names.async_queue(&t.org, "job")).await;

    let mut accepted = Vec::new();
    for _ in 0..3 {
        accepted.push(try_call_async(&app, &t.dev, &t.org).await.expect("accepted while the broker is up"));
    }
    let stopped = BrokerStopped;
    rabbitmqctl(&["stop_app"]);
    for _ in 0..3 {
        accepted.extend(try_call_async(&app, &t.dev, &t.org).await);
    }
    // The database records them; they reach the broker once it is back.
    assert_eq!(accepted.len(), 6, "calls are still accepted while the broker is away");
    rabbitmqctl(&["start_app"]);
    rabbitmqctl(&["await_startup"]);
    drop(stopped);

    for id in &accepted {
        let inv = app.wait_for_state(&t.dev, id, &["done", "dead-letter", "failed"]).await;
        assert_eq!(inv["state"], "done", "{inv}");
        assert_eq!(inv["response"]["body"], "finished");
    }
    app.finish().await;
}
