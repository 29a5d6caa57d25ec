//! TLS between a front and a node: a node with a certificate for its address takes forwarded
//! calls over TLS only, and a front with the cluster's CA reaches it through TLS alone. A real
//! CA and node certificate are made with `openssl` for the test; the node runs beside its own
//! engine in its own network namespace, as in `cluster.rs`.
mod common;

use common::binary::setup_tenant;
use common::cluster::{front_settings, start_front, Host, NodeProcess, NODE_PORT, SECRET};
use common::{fresh_database, Db};
use reqwest::Client;
use serde_json::{json, Value};
use std::path::Path;
use std::time::{Duration, Instant};

const NODEJS_IMAGE: &str = "vcd-faas/runtime-nodejs:bookworm";

fn openssl(args: &[&str], dir: &Path) {
    let out = std::process::Command::new("openssl").args(args).current_dir(dir).output().expect("openssl runs");
    assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// A CA, and a certificate it signed for the IP address `ip`: (ca.pem, node.pem, node.key).
fn certificates(dir: &Path, ip: &str) -> (String, String, String) {
    openssl(&["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=vcd-faas test cluster CA",
        "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign", "-keyout", "ca.key", "-out", "ca.pem"], dir);
    openssl(&["req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=tls-node", "-keyout", "node.key", "-out", "node.csr"], dir);
    std::fs::write(dir.join("node.ext"), format!("subjectAltName=IP:{ip}\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n")).unwrap();
    openssl(&["x509", "-req", "-in", "node.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-days", "1", "-extfile", "node.ext", "-out", "node.pem"], dir);
    let path = |name: &str| dir.join(name).display().to_string();
    (path("ca.pem"), path("node.pem"), path("node.key"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarded_calls_go_over_tls_to_a_node_with_a_certificate() {
    let root = tempfile::tempdir().unwrap();
    let database = fresh_database(Db::Postgres, root.path()).await;
    let mut host = Host::start(4).await;
    host.seed_images(&[NODEJS_IMAGE]).await;
    host.forward(5432);
    let (ca, cert, key) = certificates(root.path(), &host.node_addr.to_string());
    let tls = [("VCD_FAAS_NODE_TLS_CERT", cert), ("VCD_FAAS_NODE_TLS_KEY", key)];
    let _node = NodeProcess::start_with(&host, "tls-node", &database, &root.path().join("node.log"), &tls);

    let mut envs = front_settings(&database);
    envs.push(("VCD_FAAS_CLUSTER_CA".into(), ca.clone()));
    let (front, admin) = start_front(root.path(), "front", &envs).await;
    let client = Client::new();
    let started = Instant::now();
    loop {
        let nodes: Value = client.get(format!("{}/api/v1/nodes", front.base)).bearer_auth(&admin).send().await.unwrap().json().await.unwrap();
        if nodes.as_array().is_some_and(|n| n.iter().any(|n| n["name"] == "tls-node" && n["state"] == "up")) {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "the node did not come up: {nodes}\n{}", std::fs::read_to_string(root.path().join("node.log")).unwrap_or_default());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let (org, token) = setup_tenant(&client, &front.base, json!({})).await;
    let code = "exports.handler = async () => ({ statusCode: 200, body: 'over tls' });";
    let created = client.post(format!("{}/api/v1/functions", front.base)).bearer_auth(&token).json(&json!({"name": "secure", "language": "nodejs", "code": code})).send().await.unwrap();
    assert_eq!(created.status(), 202);
    let started = Instant::now();
    loop {
        let f: Value = client.get(format!("{}/api/v1/functions/secure", front.base)).bearer_auth(&token).send().await.unwrap().json().await.unwrap();
        if f["status"] == "ready" {
            break;
        }
        assert!(f["status"] != "failed" && started.elapsed() < Duration::from_secs(180), "not ready: {f}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let answer = client.post(format!("{}/api/org/{org}/secure", front.base)).bearer_auth(&token).body("{}").send().await.unwrap();
    assert_eq!(answer.headers().get("x-vcd-faas-node").map(|v| v.to_str().unwrap().to_string()).as_deref(), Some("tls-node"));
    assert_eq!((answer.status().as_u16(), answer.text().await.unwrap()), (200, "over tls".to_string()), "the call went to the node over TLS");

    // The node's port speaks only TLS: a plain HTTP request gets no answer at all.
    let calls = format!("{}:{NODE_PORT}/cluster/v1/calls", host.node_addr);
    let plain = client.post(format!("http://{calls}")).header("authorization", format!("Bearer {SECRET}")).body("{}\n").send().await;
    assert!(plain.is_err(), "plain HTTP answered: {:?}", plain.map(|r| r.status()));
    // A client that does not trust the cluster's CA is refused at the handshake.
    let untrusting = Client::builder().build().unwrap().post(format!("https://{calls}")).body("{}\n").send().await;
    let refused = untrusting.expect_err("a certificate from an unknown CA is refused");
    assert!(format!("{refused:?}").to_lowercase().contains("certificate"), "{refused:?}");
    // Over TLS the cluster secret is still asked for.
    let ca_pem = reqwest::Certificate::from_pem(&std::fs::read(&ca).unwrap()).unwrap();
    let trusting = Client::builder().tls_built_in_root_certs(false).add_root_certificate(ca_pem).build().unwrap();
    let no_secret = trusting.post(format!("https://{calls}")).body("{}\n").send().await.unwrap();
    assert_eq!(no_secret.status(), 401);
    front.terminate();
}
