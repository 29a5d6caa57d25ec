//! Scale out, with real engines: a front without a worker (it builds and runs nothing) and
//! three worker nodes, each `vcd-faas node` beside its own `dockerd` in its own network
//! namespace, all on one PostgreSQL database. The nodes build the functions; calls are placed
//! on them, spread, moved off a drained node, and kept going when a node is killed; the warm
//! minimum moves to the nodes left; a node that joins takes load.
mod common;

use common::binary::{self, free_port, setup_tenant, shared_settings, Server};
use common::cluster::{front_settings, start_front, Host, NodeProcess, NODE_PORT, SECRET};
use common::{fresh_database, Db, ADMIN_PASSWORD};
use reqwest::Client;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

const NODEJS_IMAGE: &str = "vcd-faas/runtime-nodejs:bookworm";

struct Front {
    server: Server,
    client: Client,
    admin: String,
}

impl Front {
    async fn nodes(&self) -> Vec<Value> {
        let r = self.client.get(format!("{}/api/v1/nodes", self.server.base)).bearer_auth(&self.admin).send().await.unwrap();
        assert_eq!(r.status(), 200);
        r.json().await.unwrap()
    }

    /// Waits until the named nodes have the state.
    async fn wait_for_state(&self, names: &[&str], state: &str, within: Duration) -> Duration {
        let start = Instant::now();
        loop {
            let nodes = self.nodes().await;
            let all = names.iter().all(|n| nodes.iter().any(|v| v["name"] == *n && v["state"] == state));
            if all {
                return start.elapsed();
            }
            assert!(start.elapsed() < within, "nodes {names:?} not {state} within {within:?}: {nodes:#?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn post(&self, path: &str, token: &str) -> reqwest::Response {
        self.client.post(format!("{}{path}", self.server.base)).bearer_auth(token).send().await.unwrap()
    }
}

/// One call of the function: its status and the node that ran it.
async fn call(client: &Client, url: &str, token: &str) -> (u16, String) {
    match client.post(url).bearer_auth(token).body("{}").timeout(Duration::from_secs(30)).send().await {
        Ok(r) => {
            let node = r.headers().get("x-vcd-faas-node").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
            let status = r.status().as_u16();
            if status != 200 {
                println!("call answered {status} (node {node:?}): {}", r.text().await.unwrap_or_default());
            }
            (status, node)
        }
        Err(e) => panic!("the front did not answer: {e}"),
    }
}

/// Calls from `clients` callers at once, `each` times each: how many each node ran, and the
/// statuses other than 200.
async fn load(client: &Client, url: &str, token: &str, clients: usize, each: usize) -> (HashMap<String, usize>, Vec<u16>) {
    let calls = (0..clients).map(|_| async {
        let mut ran = Vec::new();
        for _ in 0..each {
            ran.push(call(client, url, token).await);
        }
        ran
    });
    let mut per_node = HashMap::new();
    let mut failed = Vec::new();
    for (status, node) in futures_util::future::join_all(calls).await.into_iter().flatten() {
        if status == 200 {
            *per_node.entry(node).or_insert(0) += 1;
        } else {
            failed.push(status);
        }
    }
    (per_node, failed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn calls_are_placed_on_nodes_spread_drained_and_kept_going_when_a_node_dies() {
    let began = Instant::now();
    let phase = |what: &str| println!("{:>6} ms  {what}", began.elapsed().as_millis());
    let root = tempfile::tempdir().unwrap();
    let database = fresh_database(Db::Postgres, root.path()).await;
    let mut hosts = futures_util::future::join_all((1..=3).map(Host::start)).await;
    for host in &mut hosts {
        host.seed_images(&[NODEJS_IMAGE]).await;
        host.forward(5432);
    }
    phase("3 hosts started, the Node.js base image seeded on each");
    let mut envs = front_settings(&database);
    envs.push(("RUST_LOG".into(), "info,server::cluster=debug".into()));
    let (server, admin) = start_front(root.path(), "front", &envs).await;
    let client = Client::new();
    let front = Front { server, client: client.clone(), admin };

    let log = |name: &str| root.path().join(format!("{name}.log"));
    let mut nodes = vec![
        Some(NodeProcess::start(&hosts[0], "node-1", &database, &log("node-1"))),
        Some(NodeProcess::start(&hosts[1], "node-2", &database, &log("node-2"))),
    ];
    front.wait_for_state(&["node-1", "node-2"], "up", Duration::from_secs(60)).await;
    phase("both nodes up");
    let links: Value = front.client.get(format!("{}/api/v1/links", front.server.base)).bearer_auth(&front.admin).send().await.unwrap().json().await.unwrap();
    let docker = links.as_array().unwrap().iter().find(|l| l["name"] == "Docker engine").unwrap();
    assert_eq!(docker["state"], "off", "{links}");
    let listed = front.nodes().await;
    assert_eq!(listed[0]["address"], format!("{}:{NODE_PORT}", hosts[0].node_addr));
    assert_eq!((listed[0]["memory_mb"].as_i64(), listed[0]["cpus"].as_f64()), (Some(2048), Some(2.0)));

    // A function that takes a moment, so calls at once need containers of their own.
    let (org, token) = setup_tenant(&client, &front.server.base, json!({"max_instances": 20})).await;
    let code = "exports.handler = async () => { await new Promise(r => setTimeout(r, 300)); return { statusCode: 200, body: 'ok' }; };";
    let created = front.client.post(format!("{}/api/v1/functions", front.server.base)).bearer_auth(&token)
        .json(&json!({"name": "spread", "language": "nodejs", "code": code, "max_instances": 20})).send().await.unwrap();
    assert_eq!(created.status(), 202, "{}", created.text().await.unwrap());
    // Kept warm: two containers at all times, wherever they are.
    let created = front.client.post(format!("{}/api/v1/functions", front.server.base)).bearer_auth(&token)
        .json(&json!({"name": "kept", "language": "nodejs", "code": code, "min_instances": 2, "max_instances": 4})).send().await.unwrap();
    assert_eq!(created.status(), 202, "{}", created.text().await.unwrap());
    let built = wait_ready(&front, &token, "spread").await;
    let url = format!("{}/api/org/{org}/spread", front.server.base);
    phase("function built by a node");
    let build_log = built["build_log"].as_str().unwrap();
    assert!(build_log.contains("on node node-1") || build_log.contains("on node node-2"), "a node built it (the front has no worker): {build_log}");
    wait_ready(&front, &token, "kept").await;
    let engines = [hosts[0].docker().await, hosts[1].docker().await, hosts[2].docker().await];
    let kept = wait_for_running(&engines, "kept", |n| n[..2] == [1, 1], Duration::from_secs(20)).await;
    phase(&format!("the warm minimum of 2 is one container on each node: {kept:?}"));

    // The first call on a node makes the image there from the stored files.
    let (per_node, failed) = load(&client, &url, &token, 4, 3).await;
    phase("12 calls from 4 callers: each node made the image, then ran its calls");
    assert!(failed.is_empty(), "calls failed: {failed:?}; front log:\n{}", tail(&root.path().join("front.log")));
    assert_eq!(per_node.len(), 2, "both nodes ran calls: {per_node:?}");
    assert!(!per_node.contains_key(""), "every call ran on a node (the front has no local worker): {per_node:?}");
    let containers: i64 = front.nodes().await.iter().map(|n| n["containers"].as_i64().unwrap()).sum();
    assert!(containers >= 3, "warm containers on the nodes: {containers}");

    // The record says which node ran a call.
    let records: Value = front.client.get(format!("{}/api/v1/functions/spread/invocations?limit=20", front.server.base)).bearer_auth(&token)
        .send().await.unwrap().json().await.unwrap();
    let record_nodes: std::collections::HashSet<&str> = records.as_array().unwrap().iter().filter_map(|r| r["node"].as_str()).collect();
    assert_eq!(record_nodes, ["node-1", "node-2"].into_iter().collect());

    // A node takes forwarded calls only with the cluster secret.
    let node_url = format!("http://{}:{NODE_PORT}/cluster/v1/calls", hosts[0].node_addr);
    for auth in [None, Some("Bearer wrong-secret")] {
        let mut request = client.post(&node_url).body(format!("{}\n", json!({"id": "x", "org": org, "name": "spread", "version": 1, "trigger": "http", "method": "POST", "path": "/", "query": "", "headers": []})));
        if let Some(auth) = auth {
            request = request.header("authorization", auth);
        }
        assert_eq!(request.send().await.unwrap().status(), 401, "{auth:?}");
    }

    // Only the provider sees and steers nodes.
    assert_eq!(front.client.get(format!("{}/api/v1/nodes", front.server.base)).bearer_auth(&token).send().await.unwrap().status(), 403);
    assert_eq!(front.post("/api/v1/nodes/node-1/drain", &token).await.status(), 403);
    assert_eq!(front.post("/api/v1/nodes/no-such-node/drain", &front.admin).await.status(), 404);

    // Drained, node-1 takes no new call; none fails.
    let drained: Value = front.post("/api/v1/nodes/node-1/drain", &front.admin).await.json().await.unwrap();
    assert_eq!(drained["state"], "draining");
    tokio::time::sleep(Duration::from_millis(700)).await; // the front reads the nodes twice a second
    let (per_node, failed) = load(&client, &url, &token, 3, 3).await;
    assert!(failed.is_empty(), "calls failed while draining: {failed:?}");
    assert_eq!(per_node.keys().collect::<Vec<_>>(), ["node-2"], "{per_node:?}");
    assert_eq!(front.post("/api/v1/nodes/node-1/undrain", &front.admin).await.status(), 200);
    front.wait_for_state(&["node-1"], "up", Duration::from_secs(5)).await;

    // node-2 is killed under steady load (sync and async calls): only calls in flight on it
    // fail, and they fail as lost; every async call is answered; full service is back soon.
    let steady = tokio::spawn({
        let (client, url, token) = (client.clone(), url.clone(), token.clone());
        async move {
            let mut outcomes = Vec::new();
            let started = Instant::now();
            while started.elapsed() < Duration::from_secs(12) {
                let calls = (0..3).map(|_| call(&client, &url, &token));
                for outcome in futures_util::future::join_all(calls).await {
                    outcomes.push((started.elapsed(), outcome));
                }
            }
            outcomes
        }
    });
    tokio::time::sleep(Duration::from_millis(1800)).await;
    // Some of these are running on node-2 when it dies.
    let async_ids = submit_async(&front, &url, &token, 6).await;
    nodes[1].take().unwrap().kill9();
    let killed_at = Instant::now();
    let marked_down = front.wait_for_state(&["node-2"], "down", Duration::from_secs(5)).await;
    println!("node-2 killed: marked down after {} ms", marked_down.as_millis());
    // Its warm container is replaced on node-1.
    wait_for_running(&engines[..1], "kept", |n| n[0] == 2, Duration::from_secs(10)).await;
    println!("node-2's share of the warm minimum running on node-1 {} ms after the kill", killed_at.elapsed().as_millis());
    let outcomes = steady.await.unwrap();
    // About 2 s after the load began.
    let kill_offset = Duration::from_secs(2);
    let failures: Vec<_> = outcomes.iter().filter(|(_, (status, _))| *status != 200).collect();
    println!("steady load: {} calls, {} failed: {:?}", outcomes.len(), failures.len(), failures);
    assert!(failures.iter().all(|(_, (status, _))| *status == 502), "only lost calls fail, as 502: {failures:?}");
    assert!(failures.len() <= 3, "at most the calls in flight on node-2 failed: {failures:?}");
    let last_failure = failures.iter().map(|(at, _)| *at).max().unwrap_or_default();
    assert!(last_failure < kill_offset + Duration::from_secs(10), "full service back within 10 s: last failure at {last_failure:?}");
    let after: Vec<_> = outcomes.iter().filter(|(at, _)| *at > kill_offset + Duration::from_secs(1)).collect();
    assert!(!after.is_empty() && after.iter().all(|(_, (status, node))| *status == 200 && node == "node-1"), "after the loss node-1 serves every call");
    for id in &async_ids {
        let answered = wait_async(&front, &token, id).await;
        assert_eq!(answered["status_code"], 200, "async call {id}: {answered}");
    }

    // node-2 comes back: it removes its predecessor's containers and takes load again.
    let all = || Some(bollard::query_parameters::ListContainersOptions { all: true, ..Default::default() });
    let ids = |list: Vec<bollard::models::ContainerSummary>| list.into_iter().filter_map(|c| c.id).collect::<std::collections::HashSet<_>>();
    let leftovers = ids(hosts[1].docker().await.list_containers(all()).await.unwrap());
    nodes[1] = Some(NodeProcess::start(&hosts[1], "node-2", &database, &log("node-2")));
    front.wait_for_state(&["node-2"], "up", Duration::from_secs(60)).await;
    phase("node-2 back");
    let now_there = ids(hosts[1].docker().await.list_containers(all()).await.unwrap());
    println!("node-2 back: {} leftover container(s) before, {} after its start (its own new ones)", leftovers.len(), now_there.len());
    assert!(!leftovers.is_empty(), "the killed node left containers behind");
    assert!(leftovers.is_disjoint(&now_there), "the returning node removed what it no longer owns");
    // More callers at once than node-1 has warm containers: the extra containers start on
    // the least loaded node, the one that just came back.
    // A third node joins. More callers at once than the warm containers of node-1: the extra
    // containers start on the least loaded nodes, the one that came back and the new one
    // (which first makes the image from the stored files).
    nodes.push(Some(NodeProcess::start(&hosts[2], "node-3", &database, &log("node-3"))));
    front.wait_for_state(&["node-3"], "up", Duration::from_secs(60)).await;
    tokio::time::sleep(Duration::from_millis(700)).await; // the front's next read of the nodes
    phase("node-3 joined");
    let warm_on_node_1 = front.nodes().await.iter().find(|n| n["name"] == "node-1").unwrap()["containers"].as_i64().unwrap() as usize;
    let (per_node, failed) = load(&client, &url, &token, warm_on_node_1 + 6, 2).await;
    println!("{} callers after node-3 joined: {per_node:?}", warm_on_node_1 + 6);
    assert!(failed.is_empty(), "{failed:?}");
    assert!(per_node.get("node-2").copied().unwrap_or(0) > 0, "the returning node takes load: {per_node:?}");
    assert!(per_node.get("node-3").copied().unwrap_or(0) > 0, "the new node takes load: {per_node:?}");

    // A function's max_instances holds across the nodes and across fronts: 2 containers at
    // most, on the three engines together, however many callers at two fronts that place
    // calls at the same moment; the others wait in line and are answered.
    let (front_b, _) = start_front(root.path(), "front-b", &envs).await;
    let created = front.client.post(format!("{}/api/v1/functions", front.server.base)).bearer_auth(&token)
        .json(&json!({"name": "capped", "language": "nodejs", "code": code, "max_instances": 2})).send().await.unwrap();
    assert_eq!(created.status(), 202);
    wait_ready(&front, &token, "capped").await;
    let capped_url = format!("{}/api/org/{org}/capped", front.server.base);
    let counting = async {
        let mut most = 0;
        // Function containers (the process's label), not the steps of a node making the image.
        let filters = HashMap::from([("label".to_string(), vec!["vcd-faas.function=capped".to_string(), "vcd-faas.process".to_string()])]);
        let mut seen = Vec::new();
        for _ in 0..60 {
            let mut now = Vec::new();
            for engine in &engines {
                // Running ones: the pool's spare is created ahead but not started.
                let options = bollard::query_parameters::ListContainersOptions { filters: Some(filters.clone()), ..Default::default() };
                now.push(engine.list_containers(Some(options)).await.unwrap().iter().map(|c| c.names.clone().unwrap_or_default().join(",")).collect::<Vec<_>>());
            }
            let count = now.iter().map(Vec::len).sum::<usize>();
            if count > most {
                (most, seen) = (count, now);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        (most, seen)
    };
    let capped_at_b = format!("{}/api/org/{org}/capped", front_b.base);
    let ((per_node, failed), (per_node_b, failed_b), (most, seen)) =
        tokio::join!(load(&client, &capped_url, &token, 6, 3), load(&client, &capped_at_b, &token, 6, 3), counting);
    println!("capped at 2, two fronts: {per_node:?} and {per_node_b:?}, at most {most} running container(s) on the three engines at once: {seen:?}");
    assert!(failed.is_empty() && failed_b.is_empty(), "callers beyond the limit wait in line: {failed:?} {failed_b:?}");
    assert!((1..=2).contains(&most), "at most max_instances containers across the nodes: {most}");

    // Deleted at the front, the functions' containers leave every node.
    for name in ["spread", "kept", "capped"] {
        let deleted = front.client.delete(format!("{}/api/v1/functions/{name}", front.server.base)).bearer_auth(&token).send().await.unwrap();
        assert!(deleted.status().is_success());
    }
    for name in ["spread", "kept", "capped"] {
        wait_for_running(&engines, name, |n| n.iter().all(|c| *c == 0), Duration::from_secs(10)).await;
        let gone = front.client.get(format!("{}/api/v1/functions/{name}", front.server.base)).bearer_auth(&token).send().await.unwrap();
        assert_eq!(gone.status(), 404);
    }
    for node in nodes.into_iter().flatten() {
        node.kill9();
    }
    front_b.terminate();
    front.server.terminate();
}

/// Waits until the function is ready; its view then.
async fn wait_ready(front: &Front, token: &str, name: &str) -> Value {
    let start = Instant::now();
    loop {
        let f: Value = front.client.get(format!("{}/api/v1/functions/{name}", front.server.base)).bearer_auth(token).send().await.unwrap().json().await.unwrap();
        if f["status"] == "ready" {
            return f;
        }
        assert!(f["status"] != "failed", "build failed: {f}");
        assert!(start.elapsed() < Duration::from_secs(180), "not ready: {f}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Waits until the running containers of the function on each engine satisfy `wanted`; the
/// counts then.
async fn wait_for_running(engines: &[bollard::Docker], function: &str, wanted: impl Fn(&[usize]) -> bool, within: Duration) -> Vec<usize> {
    let start = Instant::now();
    let filters = HashMap::from([("label".to_string(), vec![format!("vcd-faas.function={function}"), "vcd-faas.process".to_string()])]);
    loop {
        let mut counts = Vec::new();
        for engine in engines {
            let options = bollard::query_parameters::ListContainersOptions { filters: Some(filters.clone()), ..Default::default() };
            counts.push(engine.list_containers(Some(options)).await.map(|c| c.len()).unwrap_or(0));
        }
        if wanted(&counts) {
            return counts;
        }
        assert!(start.elapsed() < within, "running containers of {function} per engine not as wanted within {within:?}: {counts:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn submit_async(front: &Front, url: &str, token: &str, n: usize) -> Vec<String> {
    let mut ids = Vec::new();
    for _ in 0..n {
        let r = front.client.post(url).bearer_auth(token).header("x-invoke-type", "async").body("{}").send().await.unwrap();
        assert_eq!(r.status(), 202);
        let body: Value = r.json().await.unwrap();
        ids.push(body["invocation_id"].as_str().unwrap().to_string());
    }
    ids
}

async fn wait_async(front: &Front, token: &str, id: &str) -> Value {
    let start = Instant::now();
    loop {
        let r: Value = front.client.get(format!("{}/api/v1/invocations/{id}", front.server.base)).bearer_auth(token).send().await.unwrap().json().await.unwrap();
        if r["state"] == "done" || r["state"] == "failed" {
            return r;
        }
        assert!(start.elapsed() < Duration::from_secs(60), "async call {id} not answered: {r}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines().rev().take(40).collect::<Vec<_>>().into_iter().rev().collect::<Vec<_>>().join("\n")
}

/// The roles refuse what cannot work, saying what to set.
#[tokio::test]
async fn roles_refuse_settings_that_cannot_work() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str], envs: &[(&str, &str)]| {
        let mut command = binary::command(dir.path(), &[]);
        command.args(args).envs(envs.iter().copied()).env("LEPTOS_SITE_ADDR", format!("127.0.0.1:{}", free_port()));
        let out = command.stdout(Stdio::piped()).stderr(Stdio::piped()).output().unwrap();
        assert!(!out.status.success(), "{args:?} {envs:?} should not start");
        String::from_utf8_lossy(&out.stderr).to_string()
    };
    let no_secret = run(&["node"], &[("VCD_FAAS_NODE_ADDR", "127.0.0.1:7071")]);
    assert!(no_secret.contains("needs VCD_FAAS_CLUSTER_SECRET"), "{no_secret}");
    let no_addr = run(&["node"], &[("VCD_FAAS_CLUSTER_SECRET", "s")]);
    assert!(no_addr.contains("needs VCD_FAAS_NODE_ADDR"), "{no_addr}");
    let sqlite = run(&["node"], &[("VCD_FAAS_CLUSTER_SECRET", "s"), ("VCD_FAAS_NODE_ADDR", "127.0.0.1:7071")]);
    assert!(sqlite.contains("needs the installation's PostgreSQL database") && sqlite.contains("SQLite"), "{sqlite}");
    let bad_name = run(&["node"], &[("VCD_FAAS_CLUSTER_SECRET", "s"), ("VCD_FAAS_NODE_ADDR", "127.0.0.1:7071"), ("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/test"), ("VCD_FAAS_NODE_NAME", "no/slash")]);
    assert!(bad_name.contains("is not a node name"), "{bad_name}");
    let half_tls = run(&["node"], &[("VCD_FAAS_CLUSTER_SECRET", "s"), ("VCD_FAAS_NODE_ADDR", "127.0.0.1:7071"), ("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/test"), ("VCD_FAAS_NODE_TLS_CERT", "/etc/hostname")]);
    assert!(half_tls.contains("VCD_FAAS_NODE_TLS_CERT and VCD_FAAS_NODE_TLS_KEY go together"), "{half_tls}");
    let not_pem = run(&["node"], &[("VCD_FAAS_CLUSTER_SECRET", "s"), ("VCD_FAAS_NODE_ADDR", "127.0.0.1:7071"), ("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/test"), ("VCD_FAAS_NODE_TLS_CERT", "/etc/hostname"), ("VCD_FAAS_NODE_TLS_KEY", "/etc/hostname")]);
    assert!(not_pem.contains("VCD_FAAS_NODE_TLS_CERT /etc/hostname"), "{not_pem}");
    let front_alone = run(&[], &[("VCD_FAAS_LOCAL_WORKER", "false")]);
    assert!(front_alone.contains("VCD_FAAS_LOCAL_WORKER=false needs VCD_FAAS_CLUSTER_SECRET"), "{front_alone}");
    let front_sqlite = run(&[], &[("VCD_FAAS_CLUSTER_SECRET", "s")]);
    assert!(front_sqlite.contains("needs the installation's PostgreSQL database"), "{front_sqlite}");
}

/// The cluster benchmark (`scripts/bench-cluster.sh`, not part of the test suite): calls per
/// second and latency through a front with its local worker, then through a front without one
/// forwarding to 1, 2 and 3 nodes, and the front's CPU per call. Prints a table.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "a benchmark: run by scripts/bench-cluster.sh"]
async fn bench_forwarded_calls_against_local_ones() {
    let secs: u64 = std::env::var("BENCH_CLUSTER_SECS").ok().and_then(|v| v.parse().ok()).unwrap_or(10);
    let clients: usize = std::env::var("BENCH_CLUSTER_CLIENTS").ok().and_then(|v| v.parse().ok()).unwrap_or(16);
    let root = tempfile::tempdir().unwrap();
    let database = fresh_database(Db::Postgres, root.path()).await;
    let mut hosts = futures_util::future::join_all((1..=3).map(Host::start)).await;
    for host in &mut hosts {
        host.seed_images(&[NODEJS_IMAGE]).await;
        host.forward(5432);
    }
    // Front L runs calls itself; front C forwards every call to the nodes. One database.
    let start_front = |name: &str, extra: Vec<(String, String)>| {
        let mut envs = shared_settings(&database);
        envs.push(("VCD_FAAS_CPU_PRIORITY".into(), "normal".into()));
        envs.extend(extra);
        let dir = root.path().join(name);
        std::fs::create_dir_all(&dir).unwrap();
        async move { binary::start(&dir, free_port(), &envs).await }
    };
    let local = start_front("local", vec![]).await;
    let forwarding = start_front("forwarding", vec![("VCD_FAAS_CLUSTER_SECRET".into(), SECRET.into()), ("VCD_FAAS_LOCAL_WORKER".into(), "false".into())]).await;
    let client = Client::builder().pool_max_idle_per_host(clients).build().unwrap();
    let (org, token) = setup_tenant(&client, &local.base, json!({"max_instances": 20})).await;
    let code = "exports.handler = async () => ({ statusCode: 200, body: 'ok' });";
    let created = client.post(format!("{}/api/v1/functions", local.base)).bearer_auth(&token)
        .json(&json!({"name": "bench", "language": "nodejs", "code": code, "max_instances": 4})).send().await.unwrap();
    assert_eq!(created.status(), 202);
    let admin = binary::post(&client, format!("{}/api/v1/tokens", local.base), None, json!({"org": "provider", "username": "admin", "password": ADMIN_PASSWORD})).await;
    let front = Front { server: local, client: client.clone(), admin: admin["token"].as_str().unwrap().to_string() };
    wait_ready(&front, &token, "bench").await;

    println!("\n{clients} clients, {secs} s each; Node.js function answering 'ok'; 2 shared cores (load generator, fronts, nodes and containers all on them)");
    println!("{:<28} {:>10} {:>9} {:>9} {:>16}", "", "calls/s", "p50 ms", "p99 ms", "front CPU µs/call");
    let row = |label: &str, r: &Measured| println!("{label:<28} {:>10.0} {:>9.2} {:>9.2} {:>16.0}", r.per_sec, r.p50_ms, r.p99_ms, r.cpu_us_per_call);
    let url = |base: &str| format!("{base}/api/org/{org}/bench");
    measure(&client, &url(&front.server.base), &token, clients, 2, front.server.pid()).await; // warm-up
    let r = measure(&client, &url(&front.server.base), &token, clients, secs, front.server.pid()).await;
    row("local worker", &r);
    let mut nodes = Vec::new();
    for (i, host) in hosts.iter().enumerate() {
        let name = format!("node-{}", i + 1);
        nodes.push(NodeProcess::start(host, &name, &database, &root.path().join(format!("{name}.log"))));
        front.wait_for_state(&[name.as_str()], "up", Duration::from_secs(60)).await;
        tokio::time::sleep(Duration::from_secs(1)).await; // the forwarding front's next read of the nodes
        measure(&client, &url(&forwarding.base), &token, clients, 3, forwarding.pid()).await; // images, warm containers
        let r = measure(&client, &url(&forwarding.base), &token, clients, secs, forwarding.pid()).await;
        row(&format!("forwarded to {} node(s)", i + 1), &r);
    }
    let _ = client.delete(format!("{}/api/v1/functions/bench", front.server.base)).bearer_auth(&token).send().await;
    drop(nodes);
    // A clean stop removes each front's warm containers.
    front.server.terminate();
    forwarding.terminate();
}

struct Measured {
    per_sec: f64,
    p50_ms: f64,
    p99_ms: f64,
    cpu_us_per_call: f64,
}

/// `clients` callers for `secs` seconds; the front's CPU (user + system) from /proc.
async fn measure(client: &Client, url: &str, token: &str, clients: usize, secs: u64, front_pid: u32) -> Measured {
    let cpu_ticks = || {
        let stat = std::fs::read_to_string(format!("/proc/{front_pid}/stat")).unwrap();
        let fields: Vec<&str> = stat.rsplit_once(')').unwrap().1.split_whitespace().collect();
        fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
    };
    let ticks_per_sec = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    let cpu_before = cpu_ticks();
    let started = Instant::now();
    let until = started + Duration::from_secs(secs);
    let callers = (0..clients).map(|_| async move {
        let mut latencies = Vec::new();
        while Instant::now() < until {
            let at = Instant::now();
            let r = client.get(url).bearer_auth(token).send().await.unwrap();
            assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
            r.bytes().await.unwrap();
            latencies.push(at.elapsed().as_secs_f64() * 1000.0);
        }
        latencies
    });
    let mut latencies: Vec<f64> = futures_util::future::join_all(callers).await.into_iter().flatten().collect();
    let elapsed = started.elapsed().as_secs_f64();
    let cpu_secs = (cpu_ticks() - cpu_before) as f64 / ticks_per_sec;
    latencies.sort_by(f64::total_cmp);
    let at = |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)];
    Measured { per_sec: latencies.len() as f64 / elapsed, p50_ms: at(0.5), p99_ms: at(0.99), cpu_us_per_call: cpu_secs * 1e6 / latencies.len() as f64 }
}
