//! A node killed in the middle of a build: the build is not lost with it. Node 1 claims the
//! build while its engine is frozen (SIGSTOP), so the build hangs in the engine; a second node
//! leaves it alone while node 1 lives, and builds the version itself once node 1 is killed. Real
//! engines in their own network namespaces, as in `cluster.rs`.
mod common;

use common::binary::setup_tenant;
use common::cluster::{front_settings, start_front, Host, NodeProcess};
use common::{fresh_database, Db};
use reqwest::Client;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

const NODEJS_IMAGE: &str = "vcd-faas/runtime-nodejs:bookworm";

/// Keeps an engine frozen while it lives; thaws it when dropped, also when the test fails, so
/// the host can be stopped.
struct Frozen(i32);

impl Frozen {
    fn engine_of(host: &Host) -> Frozen {
        let pid = host.engine_pid().expect("the host's engine runs");
        assert_eq!(unsafe { libc::kill(pid, libc::SIGSTOP) }, 0, "SIGSTOP dockerd {pid}");
        Frozen(pid)
    }
}

impl Drop for Frozen {
    fn drop(&mut self) {
        unsafe { libc::kill(self.0, libc::SIGCONT) };
    }
}

async fn wait_until_up(client: &Client, base: &str, admin: &str, name: &str) {
    let started = Instant::now();
    loop {
        let nodes: Value = client.get(format!("{base}/api/v1/nodes")).bearer_auth(admin).send().await.unwrap().json().await.unwrap();
        if nodes.as_array().is_some_and(|n| n.iter().any(|n| n["name"] == name && n["state"] == "up")) {
            return;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "{name} did not come up: {nodes}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_build_whose_node_is_killed_is_finished_by_another_node() {
    let root = tempfile::tempdir().unwrap();
    let database = fresh_database(Db::Postgres, root.path()).await;
    let mut hosts = futures_util::future::join_all([5, 6].map(Host::start)).await;
    for host in &mut hosts {
        host.seed_images(&[NODEJS_IMAGE]).await;
        host.forward(5432);
    }
    let (front, admin) = start_front(root.path(), "front", &front_settings(&database)).await;
    let client = Client::new();
    let log = |name: &str| root.path().join(format!("{name}.log"));
    let node_1 = NodeProcess::start(&hosts[0], "node-1", &database, &log("node-1"));
    wait_until_up(&client, &front.base, &admin, "node-1").await;

    // Node 1's engine answers nothing now: the build it claims hangs there.
    let frozen = Frozen::engine_of(&hosts[0]);
    let (org, token) = setup_tenant(&client, &front.base, json!({})).await;
    let code = "exports.handler = async () => ({ statusCode: 200, body: 'built after all' });";
    let created = client.post(format!("{}/api/v1/functions", front.base)).bearer_auth(&token).json(&json!({"name": "orphaned", "language": "nodejs", "code": code})).send().await.unwrap();
    assert_eq!(created.status(), 202, "{}", created.text().await.unwrap());
    let function = || async {
        client.get(format!("{}/api/v1/functions/orphaned", front.base)).bearer_auth(&token).send().await.unwrap().json::<Value>().await.unwrap()
    };
    let started = Instant::now();
    while !function().await["build_log"].as_str().is_some_and(|l| l.contains("on node node-1")) {
        assert!(started.elapsed() < Duration::from_secs(30), "node-1 did not claim the build: {}", function().await);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // While node 1 lives, node 2 leaves its build alone.
    let _node_2 = NodeProcess::start(&hosts[1], "node-2", &database, &log("node-2"));
    wait_until_up(&client, &front.base, &admin, "node-2").await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let stuck = function().await;
    assert_eq!(stuck["status"], "building", "{stuck}");
    assert!(stuck["build_log"].as_str().unwrap().contains("on node node-1") && !stuck["build_log"].as_str().unwrap().contains("node-2"), "{stuck}");

    node_1.kill9();
    let killed = Instant::now();
    let built = loop {
        let f = function().await;
        if f["status"] == "ready" {
            break f;
        }
        assert!(f["status"] != "failed", "the build failed: {f}");
        assert!(killed.elapsed() < Duration::from_secs(180), "no node finished the build: {f}\nnode-2's log:\n{}", std::fs::read_to_string(log("node-2")).unwrap_or_default());
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    println!("the build node-1 was killed in: ready on node-2 {} ms after the kill", killed.elapsed().as_millis());
    assert!(built["build_log"].as_str().unwrap().contains("on node node-2"), "node-2 built it: {built}");
    drop(frozen);

    let answer = client.post(format!("{}/api/org/{org}/orphaned", front.base)).bearer_auth(&token).body("{}").send().await.unwrap();
    assert_eq!(answer.headers().get("x-vcd-faas-node").map(|v| v.to_str().unwrap().to_string()).as_deref(), Some("node-2"));
    assert_eq!((answer.status().as_u16(), answer.text().await.unwrap()), (200, "built after all".to_string()));
    front.terminate();
}
