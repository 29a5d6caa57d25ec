//! Scale out with RabbitMQ: a front without a worker consumes the broker's queues (async calls,
//! vCD's API requests, vCD's notifications) and places each call on one of two worker nodes,
//! each `vcd-faas node` beside its own `dockerd` in its own network namespace. A node killed
//! while async calls run on it loses none of them.
mod common;

use common::amqp::{org_urn, reply_body, request, sweep_earlier_test_objects, wait_for_queue, FakeCell, Names};
use common::binary::setup_tenant;
use common::cluster::{front_settings, start_front, Host, NodeProcess};
use common::{fresh_database, Db};
use reqwest::Client;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::time::{Duration, Instant};

const NODEJS_IMAGE: &str = "vcd-faas/runtime-nodejs:bookworm";
/// Takes a moment, so calls at once need containers of their own and some are in flight when
/// a node dies.
const SLOW: &str = "exports.handler = async () => { await new Promise(r => setTimeout(r, 400)); return { statusCode: 200, body: 'ok' }; };";

struct Front {
    base: String,
    client: Client,
    admin: String,
    token: String,
}

impl Front {
    async fn get(&self, path: &str, token: &str) -> Value {
        let r = self.client.get(format!("{}{path}", self.base)).bearer_auth(token).send().await.unwrap();
        assert_eq!(r.status(), 200, "GET {path}");
        r.json().await.unwrap()
    }

    async fn wait_for_node_state(&self, names: &[&str], state: &str, within: Duration) {
        let start = Instant::now();
        loop {
            let nodes = self.get("/api/v1/nodes", &self.admin).await;
            let listed = nodes.as_array().unwrap();
            if names.iter().all(|n| listed.iter().any(|v| v["name"] == *n && v["state"] == state)) {
                return;
            }
            assert!(start.elapsed() < within, "nodes {names:?} not {state} within {within:?}: {nodes:#?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn create(&self, spec: Value) {
        let r = self.client.post(format!("{}/api/v1/functions", self.base)).bearer_auth(&self.token).json(&spec).send().await.unwrap();
        assert_eq!(r.status(), 202, "{}", r.text().await.unwrap());
        let name = spec["name"].as_str().unwrap();
        let start = Instant::now();
        loop {
            let f = self.get(&format!("/api/v1/functions/{name}"), &self.token).await;
            if f["status"] == "ready" {
                return;
            }
            assert!(f["status"] != "failed" && start.elapsed() < Duration::from_secs(180), "{name} not ready: {f}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// The function's call records (the newest first).
    async fn calls(&self, function: &str) -> Vec<Value> {
        self.get(&format!("/api/v1/functions/{function}/invocations?limit=100"), &self.token).await.as_array().unwrap().clone()
    }

    async fn wait_answered(&self, id: &str) -> Value {
        let start = Instant::now();
        loop {
            let r = self.get(&format!("/api/v1/invocations/{id}"), &self.token).await;
            if r["state"] == "done" || r["state"] == "failed" {
                return r;
            }
            assert!(start.elapsed() < Duration::from_secs(90), "async call {id} not answered: {r}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_broker_queues_are_placed_on_nodes_and_a_killed_node_loses_no_async_call() {
    let began = Instant::now();
    let phase = |what: &str| println!("{:>6} ms  {what}", began.elapsed().as_millis());
    sweep_earlier_test_objects().await;
    let names = Names::new();
    let root = tempfile::tempdir().unwrap();
    let database = fresh_database(Db::Postgres, root.path()).await;
    let mut hosts = futures_util::future::join_all((1..=2).map(Host::start)).await;
    for host in &mut hosts {
        host.seed_images(&[NODEJS_IMAGE]).await;
        host.forward(5432);
    }
    phase("2 hosts started");
    let mut envs = front_settings(&database);
    envs.extend(names.env());
    envs.push(("RUST_LOG".into(), "info,server::cluster=debug".into()));
    let (server, admin) = start_front(root.path(), "front", &envs).await;
    wait_for_queue(&names.api_queue).await;
    let log = |name: &str| root.path().join(format!("{name}.log"));
    let mut nodes = vec![
        Some(NodeProcess::start(&hosts[0], "node-1", &database, &log("node-1"))),
        Some(NodeProcess::start(&hosts[1], "node-2", &database, &log("node-2"))),
    ];
    let client = Client::new();
    let vcd_org = org_urn();
    let (org, token) = setup_tenant(&client, &server.base, json!({"vcd_org_id": vcd_org, "max_instances": 20})).await;
    let front = Front { base: server.base.clone(), client: client.clone(), admin, token };
    front.wait_for_node_state(&["node-1", "node-2"], "up", Duration::from_secs(60)).await;
    phase("front consuming the broker, both nodes up");

    let vm_created = json!({"type": "vcd-event", "event": "com/vmware/vcloud/event/vm/create", "successful_only": true});
    front.create(json!({"name": "slow", "language": "nodejs", "code": SLOW, "max_instances": 20})).await;
    front.create(json!({"name": "on-vm", "language": "nodejs", "code": SLOW, "trigger": vm_created})).await;
    phase("functions built on the nodes");

    // vCD's API request, consumed by the front from vCD's queue, runs on a node and is answered
    // on vCD's reply queue.
    let cell = FakeCell::connect().await;
    let uri = format!("/api/org/{org}/slow");
    let reply = cell.call(&names, &request("req-1", "POST", &uri, None, b"{}", &vcd_org)).await;
    assert_eq!((reply["id"].as_str(), reply["statusCode"].as_i64()), (Some("req-1"), Some(200)), "{reply}");
    assert_eq!(reply_body(&reply), "ok");
    let calls = front.calls("slow").await;
    assert_eq!(calls[0]["trigger"], "vcd", "{calls:?}");
    assert!(matches!(calls[0]["node"].as_str(), Some("node-1" | "node-2")), "a node ran vCD's request: {}", calls[0]);

    // vCD's notification, consumed by the front, runs the event's function on a node.
    // Bindings follow the triggers; notify until the first one lands.
    let start = Instant::now();
    let event_call = loop {
        cell.notify(&names, "com/vmware/vcloud/event/vm/create", &vcd_org, true, &uuid::Uuid::new_v4().to_string()).await;
        tokio::time::sleep(Duration::from_millis(1500)).await;
        if let Some(call) = front.calls("on-vm").await.into_iter().find(|c| c["trigger"] == "event" && c["status_code"] == 200) {
            break call;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "no notification ran on-vm; front log:\n{}", tail(&log("front")));
    };
    assert!(matches!(event_call["node"].as_str(), Some("node-1" | "node-2")), "a node ran the event's call: {event_call}");
    phase("a vCD API request and a vCD notification ran on nodes");

    // Async calls queue in RabbitMQ; the front places them on both nodes.
    let submit = |n: usize| {
        let (client, url, token) = (client.clone(), format!("{}/api/org/{org}/slow", front.base), front.token.clone());
        async move {
            let mut ids = Vec::new();
            for _ in 0..n {
                let r = client.post(&url).bearer_auth(&token).header("x-invoke-type", "async").body("{}").send().await.unwrap();
                assert_eq!(r.status(), 202);
                ids.push(r.json::<Value>().await.unwrap()["invocation_id"].as_str().unwrap().to_string());
            }
            ids
        }
    };
    let ids = submit(12).await;
    let mut per_node: HashMap<String, usize> = HashMap::new();
    for id in &ids {
        let answered = front.wait_answered(id).await;
        assert_eq!(answered["status_code"], 200, "async call {id}: {answered}");
        *per_node.entry(answered["node"].as_str().unwrap_or_default().to_string()).or_default() += 1;
    }
    println!("12 async calls from RabbitMQ ran on {per_node:?}");
    assert_eq!(per_node.keys().filter(|n| n.starts_with("node-")).count(), 2, "both nodes ran async calls: {per_node:?}");

    // node-2 is killed while async calls run on it: every one of them is still answered,
    // those it held by node-1, and nothing is left in the queue.
    let ids = submit(16).await;
    // The calls of the batch start as they arrive, about half of them on node-2 (warm there).
    tokio::time::sleep(Duration::from_millis(150)).await;
    nodes[1].take().unwrap().kill9();
    phase("node-2 killed with async calls running on it");
    front.wait_for_node_state(&["node-2"], "down", Duration::from_secs(5)).await;
    let (mut after_kill, mut retried): (HashMap<String, usize>, usize) = (HashMap::new(), 0);
    for id in &ids {
        let answered = front.wait_answered(id).await;
        assert_eq!(answered["status_code"], 200, "async call {id} lost with node-2: {answered}");
        *after_kill.entry(answered["node"].as_str().unwrap_or_default().to_string()).or_default() += 1;
        retried += usize::from(answered["attempts"].as_i64().unwrap() > 1);
    }
    println!("16 async calls with node-2 killed under them: answered by {after_kill:?}, {retried} after a second attempt");
    assert!(retried > 0, "some calls were in flight on node-2 and ran again: {after_kill:?}");
    assert!(after_kill.keys().all(|n| n == "node-1" || n == "node-2"), "{after_kill:?}");
    let queue = names.async_queue(&org, "slow");
    let left = common::amqp::queue_counts(&queue).await;
    assert_eq!(left.map(|(messages, _)| messages), Some(0), "messages left in {queue}");

    // vCD's requests keep being answered, by the node left.
    let reply = cell.call(&names, &request("req-2", "GET", &uri, None, b"", &vcd_org)).await;
    assert_eq!(reply["statusCode"], 200, "{reply}");
    let calls = front.calls("slow").await;
    let record = calls.iter().find(|c| c["trigger"] == "vcd" && c["method"] == "GET").expect("req-2's record");
    assert_eq!(record["node"], "node-1");
    phase("vCD's request after the loss answered on node-1");

    for node in nodes.into_iter().flatten() {
        node.kill9();
    }
    server.terminate();
    drop(hosts);
}

fn tail(path: &std::path::Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines().rev().take(40).collect::<Vec<_>>().into_iter().rev().collect::<Vec<_>>().join("\n")
}
