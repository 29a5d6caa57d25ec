//! Outbound network on the real Docker engine. Function containers have no network; the
//! platform's gate connects for them to what their tenant's allowlist names. With nothing
//! allowed a connection fails at once, naming the destination; allowed ones answer the
//! runtimes' ordinary clients (Node `fetch` and `http`, Python `urllib` and `http.client`), TLS
//! end to end; another port, a literal address, a name not on the list, the platform's own
//! port are refused; the call record and /metrics list the connections.

mod common;

use common::{json_of, Db, TestApp};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A plain HTTP server on 127.0.0.1 that answers `hello <path>` and counts connections.
struct TestServer {
    port: u16,
    connections: Arc<AtomicUsize>,
}

async fn test_server() -> TestServer {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let connections = Arc::new(AtomicUsize::new(0));
    let counted = connections.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            counted.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buffer = [0u8; 4096];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buffer).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buffer[..n]),
                    }
                }
                let text = String::from_utf8_lossy(&request);
                let path = text.split_whitespace().nth(1).unwrap_or("?").to_string();
                let body = format!("hello {path}");
                let answer = format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}", body.len());
                let _ = stream.write_all(answer.as_bytes()).await;
            });
        }
    });
    TestServer { port, connections }
}

const NODE_CLIENT: &str = r#"const http = require("http");
const viaHttp = (url) => new Promise((resolve) => {
  http.get(url, (r) => { let b = ""; r.on("data", (d) => (b += d)); r.on("end", () => resolve(b)); })
    .on("error", (e) => resolve("error: " + e.message));
});
const viaFetch = async (url) => {
  try { return await (await fetch(url)).text(); }
  catch (e) { return "error: " + ((e.cause && e.cause.message) || e.message); }
};
module.exports = async (event) => {
  const { allowed, other } = event.query;
  return {
    fetch: await viaFetch(`http://127.0.0.1:${allowed}/fetch`),
    http: await viaHttp(`http://127.0.0.1:${allowed}/http`),
    otherPort: await viaFetch(`http://127.0.0.1:${other}/x`),
    literal: await viaHttp(`http://127.0.0.2:${allowed}/x`),
    name: await viaFetch(`http://localhost:${allowed}/x`),
    mapped: await viaFetch(`http://[::ffff:127.0.0.1]:${allowed}/mapped`),
  };
};
"#;

const PYTHON_CLIENT: &str = r#"import http.client
import urllib.request


def fetch(url):
    try:
        return urllib.request.urlopen(url, timeout=5).read().decode()
    except Exception as e:
        return f"error: {e}"


def handle(event, context):
    allowed, other = event["query"]["allowed"], event["query"]["other"]
    connection = http.client.HTTPConnection("127.0.0.1", int(allowed), timeout=5)
    connection.request("GET", "/client")
    return {
        "urllib": fetch(f"http://127.0.0.1:{allowed}/urllib"),
        "client": connection.getresponse().read().decode(),
        "otherPort": fetch(f"http://127.0.0.1:{other}/x"),
        "name": fetch(f"http://localhost:{allowed}/x"),
    }
"#;

async fn call_with(app: &TestApp, token: &str, org: &str, name: &str, query: &str) -> Value {
    let r = app.client.get(app.url(&format!("/api/org/{org}/{name}?{query}"))).bearer_auth(token).send().await.unwrap();
    let (status, body) = json_of(r).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

async fn set_tenant_egress(app: &TestApp, org: &str, egress: Value) -> (StatusCode, Value) {
    json_of(app.put(&app.admin_token, &format!("/api/v1/tenants/{org}"), json!({ "egress": egress })).await).await
}

/// The connections of the function's latest call, as its record lists them.
async fn last_call_connections(app: &TestApp, token: &str, name: &str) -> Vec<Value> {
    let (status, calls) = json_of(app.get(token, &format!("/api/v1/functions/{name}/invocations")).await).await;
    assert_eq!(status, StatusCode::OK);
    calls[0]["connections"].as_array().cloned().unwrap_or_default()
}

fn refused(text: &Value, destination: &str, why: &str) {
    let text = text.as_str().unwrap_or_default();
    assert!(text.starts_with("error: ") || text.contains("urlopen error"), "not refused: {text}");
    assert!(text.contains(&format!("egress to {destination} refused")), "does not name {destination}: {text}");
    assert!(text.contains(why), "does not say {why:?}: {text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_nothing_allowed_a_connection_fails_at_once_naming_the_destination() {
    let app = TestApp::spawn(Db::Sqlite).await;
    let t = app.tenant().await;
    let server = test_server().await;
    app.deploy(&t.dev, "closed", "nodejs", NODE_CLIENT).await;
    let query = format!("allowed={}&other={}", server.port, server.port);
    let started = std::time::Instant::now();
    let answer = call_with(&app, &t.dev, &t.org, "closed", &query).await;
    println!("five refused connections in one call: {:?}", started.elapsed());
    let destination = format!("127.0.0.1:{}", server.port);
    for client in ["fetch", "http", "otherPort"] {
        refused(&answer[client], &destination, "allows no outbound network");
    }
    assert_eq!(server.connections.load(Ordering::SeqCst), 0, "nothing reached the server");

    let connections = last_call_connections(&app, &t.dev, "closed").await;
    assert_eq!(connections.len(), 6, "{connections:?}");
    assert!(connections.iter().all(|c| c["allowed"] == false && c["sent"] == 0), "{connections:?}");
    assert_eq!(connections[0]["host"], "127.0.0.1");
    assert_eq!(connections[0]["port"], server.port);
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allowed_destinations_answer_the_runtimes_own_clients_and_nothing_else_does() {
    let app = TestApp::spawn(Db::Postgres).await;
    let t = app.tenant().await;
    let (allowed, other) = (test_server().await, test_server().await);
    let (status, tenant) = set_tenant_egress(&app, &t.org, json!([format!("127.0.0.1:{}", allowed.port)])).await;
    assert_eq!(status, StatusCode::OK, "{tenant}");
    assert_eq!(tenant["egress"], json!([format!("127.0.0.1:{}", allowed.port)]));
    app.deploy(&t.dev, "node-out", "nodejs", NODE_CLIENT).await;
    app.deploy(&t.dev, "py-out", "python", PYTHON_CLIENT).await;
    let query = format!("allowed={}&other={}", allowed.port, other.port);
    let (on_list, off_port) = (format!("127.0.0.1:{}", allowed.port), format!("127.0.0.1:{}", other.port));

    let node = call_with(&app, &t.dev, &t.org, "node-out", &query).await;
    assert_eq!(node["fetch"], "hello /fetch", "{node}");
    assert_eq!(node["http"], "hello /http", "{node}");
    refused(&node["otherPort"], &off_port, "not on tenant");
    refused(&node["literal"], &format!("127.0.0.2:{}", allowed.port), "the address and port are not on tenant");
    refused(&node["name"], &format!("localhost:{}", allowed.port), "the name and port are not on tenant");
    assert_eq!(node["mapped"], "hello /mapped", "an IPv4 address written as IPv6 is that address: {node}");

    let python = call_with(&app, &t.dev, &t.org, "py-out", &query).await;
    assert_eq!(python["urllib"], "hello /urllib", "{python}");
    assert_eq!(python["client"], "hello /client", "{python}");
    refused(&python["otherPort"], &off_port, "not on tenant");
    refused(&python["name"], &format!("localhost:{}", allowed.port), "the name and port are not on tenant");
    assert_eq!(other.connections.load(Ordering::SeqCst), 0, "the port not on the list was never reached");
    assert_eq!(allowed.connections.load(Ordering::SeqCst), 5);

    // The record: each connection by destination, allowed or not, with its bytes.
    let connections = last_call_connections(&app, &t.dev, "py-out").await;
    let made: Vec<&Value> = connections.iter().filter(|c| c["allowed"] == true).collect();
    assert_eq!(made.len(), 2, "{connections:?}");
    for c in &made {
        assert_eq!((c["host"].as_str(), c["port"].as_u64()), (Some("127.0.0.1"), Some(allowed.port as u64)));
        assert!(c["sent"].as_u64().unwrap() > 20 && c["received"].as_u64().unwrap() > 20, "{c}");
        assert!(c.get("error").is_none(), "{c}");
    }
    let refusals: Vec<&str> = connections.iter().filter(|c| c["allowed"] == false).map(|c| c["host"].as_str().unwrap()).collect();
    assert_eq!(refusals.len(), 2);
    assert!(refusals.contains(&"localhost"));
    assert!(connections.iter().any(|c| c["port"] == other.port && c["allowed"] == false));

    let metrics = app.get(&app.admin_token, "/metrics").await.text().await.unwrap();
    let line = |function: &str, result: &str| {
        format!("vcdfaas_egress_connections_total{{tenant=\"{}\",function=\"{function}\",result=\"{result}\"}}", t.org)
    };
    assert!(metrics.contains(&format!("{} 3", line("node-out", "refused"))), "{metrics}");
    assert!(metrics.contains(&format!("{} 2", line("py-out", "refused"))), "{metrics}");
    assert!(metrics.contains(&format!("vcdfaas_egress_bytes_total{{tenant=\"{}\",function=\"py-out\",direction=\"received\"}}", t.org)));

    // The provider takes the permission back: running containers are refused at once.
    let (status, _) = set_tenant_egress(&app, &t.org, json!([])).await;
    assert_eq!(status, StatusCode::OK);
    let node = call_with(&app, &t.dev, &t.org, "node-out", &query).await;
    refused(&node["fetch"], &on_list, "allows no outbound network");
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_function_only_narrows_its_tenants_list_and_never_reaches_the_platform() {
    let app = TestApp::spawn(Db::Sqlite).await;
    let t = app.tenant().await;
    let (first, second) = (test_server().await, test_server().await);
    // Before the tenant allows anything, a function's own list cannot.
    let spec = json!({"name": "narrow", "language": "nodejs", "code": NODE_CLIENT, "egress": [format!("127.0.0.1:{}", first.port)]});
    let (status, body) = json_of(app.post(&t.dev, "/api/v1/functions", spec.clone()).await).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["fields"][0]["field"], "egress/0", "{body}");

    assert_eq!(set_tenant_egress(&app, &t.org, json!(["127.0.0.1:*"])).await.0, StatusCode::OK);
    let (status, body) = json_of(app.post(&t.dev, "/api/v1/functions", spec).await).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["egress"], json!([format!("127.0.0.1:{}", first.port)]));
    app.wait_ready(&t.dev, "narrow").await;
    let query = format!("allowed={}&other={}", first.port, second.port);
    let answer = call_with(&app, &t.dev, &t.org, "narrow", &query).await;
    assert_eq!(answer["fetch"], "hello /fetch", "{answer}");
    refused(&answer["otherPort"], &format!("127.0.0.1:{}", second.port), "not on function narrow's own allowlist");
    assert_eq!(second.connections.load(Ordering::SeqCst), 0);

    // Outside the tenant's list: refused at the entry; null goes back to the tenant's list.
    let (status, body) = json_of(app.put(&t.dev, "/api/v1/functions/narrow", json!({"egress": ["10.0.0.1:443"]})).await).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body["fields"][0]["message"].as_str().unwrap().contains("not inside the tenant's allowlist"), "{body}");
    let (status, body) = json_of(app.put(&t.dev, "/api/v1/functions/narrow", json!({"egress": null})).await).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["egress"], Value::Null);
    app.wait_until(&t.dev, "narrow", std::time::Duration::from_secs(60), |f| f["version"] == 2).await;
    let answer = call_with(&app, &t.dev, &t.org, "narrow", &query).await;
    assert_eq!(answer["otherPort"], "hello /x", "the tenant's whole list applies again: {answer}");

    // Even with all of 127.0.0.1 allowed, the platform's own port is not reachable.
    let own_port = app.base.rsplit(':').next().unwrap().to_string();
    let answer = call_with(&app, &t.dev, &t.org, "narrow", &format!("allowed={own_port}&other={own_port}")).await;
    refused(&answer["fetch"], &format!("127.0.0.1:{own_port}"), "the platform's own port is never reachable");
    // (Node writes the address back as ::ffff:7f00:1.)
    let mapped = answer["mapped"].as_str().unwrap();
    assert!(mapped.contains(&format!(":{own_port} refused: the platform's own port is never reachable")), "{answer}");
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allowlists_are_checked_at_each_entry() {
    let app = TestApp::spawn(Db::Sqlite).await;
    let t = app.tenant().await;
    let (status, body) =
        set_tenant_egress(&app, &t.org, json!(["api.example.com:443", "api.example.com", "*.corp.example:*", "10.1.0.1/16:5432", "a b:1"])).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let fields: Vec<&str> = body["fields"].as_array().unwrap().iter().map(|f| f["field"].as_str().unwrap()).collect();
    assert_eq!(fields, ["egress/1", "egress/3", "egress/4"], "{body}");
    assert!(body["fields"][0]["message"].as_str().unwrap().contains("has no port"), "{body}");
    // Nothing was stored.
    let (_, tenants) = json_of(app.get(&app.admin_token, "/api/v1/tenants").await).await;
    let stored = tenants.as_array().unwrap().iter().find(|x| x["name"] == t.org.as_str()).unwrap();
    assert_eq!(stored["egress"], json!([]));
    // Written back in one spelling; a tenant cannot set its own.
    let (status, body) = set_tenant_egress(&app, &t.org, json!(["API.Example.com:443", "[2001:DB8::/32]:*"])).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["egress"], json!(["api.example.com:443", "[2001:db8::/32]:*"]));
    let r = app.put(&t.admin, &format!("/api/v1/tenants/{}", t.org), json!({"egress": ["0.0.0.0/0:*"]})).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    app.finish().await;
}

const NODE_TLS: &str = r#"const https = require("https");
const fs = require("fs");
module.exports = async (event) => new Promise((resolve) => {
  const options = { host: "localhost", port: Number(event.query.port), path: "/node", ca: fs.readFileSync("ca.pem") };
  https.get(options, (r) => {
    let b = "";
    r.on("data", (d) => (b += d));
    r.on("end", () => resolve({ body: b, authorized: r.socket.authorized, protocol: r.socket.getProtocol() }));
  }).on("error", (e) => resolve({ error: e.message }));
});
"#;

const PYTHON_TLS: &str = r#"import ssl
import urllib.request


def handle(event, context):
    context = ssl.create_default_context(cafile="ca.pem")
    url = f"https://localhost:{event['query']['port']}/python"
    return {"body": urllib.request.urlopen(url, context=context, timeout=5).read().decode()}
"#;

/// An HTTPS server on 127.0.0.1 with a certificate for `localhost` made now; its CA certificate.
fn tls_server(dir: &std::path::Path) -> (tokio::process::Child, u16, String) {
    let (key, cert) = (dir.join("key.pem"), dir.join("cert.pem"));
    let made = std::process::Command::new("openssl")
        .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost"])
        .args(["-addext", "subjectAltName=DNS:localhost", "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl runs");
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    let script = r#"import http.server, ssl, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        b = ("secure " + self.path).encode()
        self.send_response(200)
        self.send_header("content-length", str(len(b)))
        self.end_headers()
        self.wfile.write(b)
    def log_message(self, *a):
        pass
s = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
c = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
c.load_cert_chain(sys.argv[1], sys.argv[2])
s.socket = c.wrap_socket(s.socket, server_side=True)
print(s.server_address[1], flush=True)
s.serve_forever()
"#;
    let mut child = tokio::process::Command::new("python3")
        .args(["-c", script])
        .arg(&cert)
        .arg(&key)
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("python3 runs");
    let mut out = std::io::BufReader::new(std::fs::File::from(std::os::fd::OwnedFd::from(child.stdout.take().unwrap().into_owned_fd().unwrap())));
    let mut line = String::new();
    std::io::BufRead::read_line(&mut out, &mut line).unwrap();
    (child, line.trim().parse().expect("the server prints its port"), std::fs::read_to_string(&cert).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_stays_end_to_end_and_names_resolve_at_the_gate() {
    let app = TestApp::spawn(Db::Sqlite).await;
    let t = app.tenant().await;
    let certs = tempfile::tempdir().unwrap();
    let (_server, port, ca) = tls_server(certs.path());
    // Allowed by name: the gate resolves localhost; the function never does.
    assert_eq!(set_tenant_egress(&app, &t.org, json!([format!("localhost:{port}")])).await.0, StatusCode::OK);
    for (name, language, handler, entry) in [("node-tls", "nodejs", NODE_TLS, "handler.js"), ("py-tls", "python", PYTHON_TLS, "handler.py")] {
        let spec = json!({"name": name, "language": language, "files": {entry: handler, "ca.pem": ca}});
        app.create_with(&t.dev, spec).await;
        app.wait_ready(&t.dev, name).await;
    }
    let node = call_with(&app, &t.dev, &t.org, "node-tls", &format!("port={port}")).await;
    // The function checked the server's certificate for "localhost" against its own CA: the
    // gate relayed the TLS session, it did not end it.
    assert_eq!(node["body"], "secure /node", "{node}");
    assert_eq!(node["authorized"], true, "{node}");
    assert!(node["protocol"].as_str().unwrap_or_default().starts_with("TLSv1."), "{node}");
    let python = call_with(&app, &t.dev, &t.org, "py-tls", &format!("port={port}")).await;
    assert_eq!(python["body"], "secure /python", "{python}");
    let connections = last_call_connections(&app, &t.dev, "py-tls").await;
    assert_eq!(connections.len(), 1, "{connections:?}");
    assert_eq!((connections[0]["host"].as_str(), connections[0]["allowed"].as_bool()), (Some("localhost"), Some(true)));
    app.finish().await;
}

/// Code that goes around the shim's routing: the C socket module, the gate spoken to badly.
const PYTHON_BYPASS: &str = r#"import _socket
import socket


def attempt(family, address):
    s = _socket.socket(family, _socket.SOCK_STREAM)
    s.settimeout(3)
    try:
        s.connect(address)
        return "connected"
    except OSError as e:
        return f"{type(e).__name__}: {e}"
    finally:
        s.close()


def gate(request):
    s = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    s.connect("/run/faas/egress")
    s.sendall(request)
    answer = s.recv(4096).decode()
    s.close()
    return answer


def handle(event, context):
    port = int(event["query"]["port"])
    return {
        "loopback": attempt(_socket.AF_INET, ("127.0.0.1", port)),
        "bridge": attempt(_socket.AF_INET, ("172.17.0.1", port)),
        "ipv6": attempt(_socket.AF_INET6, ("::1", port)),
        "malformed": gate(b"GET / HTTP/1.1\r\n\r\n"),
        "huge": gate(b"CONNECT " + b"a" * 5000 + b" 80 x\n"),
        "through_the_gate": attempt_patched(port),
    }


def attempt_patched(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=3).close()
        return "connected"
    except OSError as e:
        return str(e)
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn code_that_goes_around_the_shim_reaches_nothing() {
    let app = TestApp::spawn(Db::Sqlite).await;
    let t = app.tenant().await;
    let server = test_server().await;
    assert_eq!(set_tenant_egress(&app, &t.org, json!([format!("127.0.0.1:{}", server.port)])).await.0, StatusCode::OK);
    app.deploy(&t.dev, "bypass", "python", PYTHON_BYPASS).await;
    let answer = call_with(&app, &t.dev, &t.org, "bypass", &format!("port={}", server.port)).await;
    // Even to an allowed destination, a socket of its own gets nowhere: the container has no
    // network, only the gate does.
    assert!(answer["loopback"].as_str().unwrap().starts_with("ConnectionRefusedError"), "{answer}");
    assert!(answer["bridge"].as_str().unwrap().contains("unreachable"), "{answer}");
    assert_ne!(answer["ipv6"], "connected", "{answer}");
    assert!(answer["malformed"].as_str().unwrap().starts_with("ERR the runtime sent a malformed request"), "{answer}");
    assert!(answer["huge"].as_str().unwrap().starts_with("ERR"), "{answer}");
    assert_eq!(answer["through_the_gate"], "connected", "{answer}");
    assert_eq!(server.connections.load(Ordering::SeqCst), 1, "only the connection through the gate arrived");
    app.finish().await;
}

const PYTHON_REQUESTS: &str = r#"import requests


def handle(event, context):
    allowed, other = event["query"]["allowed"], event["query"]["other"]
    try:
        requests.get(f"http://127.0.0.1:{other}/x", timeout=5)
        refused = "connected"
    except requests.exceptions.ConnectionError as e:
        refused = str(e)
    return {"body": requests.get(f"http://127.0.0.1:{allowed}/requests", timeout=5).text, "refused": refused}
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_function_that_installs_requests_uses_it_unchanged() {
    // The real requests (and urllib3 under it) from PyPI, served by an index of the test's own.
    let index = common::mirrors::PythonIndex::of_downloaded_wheels();
    let url = index.url.clone();
    let app = TestApp::spawn_with(Db::Sqlite, move |c| c.pip_index_url = Some(url)).await;
    let t = app.tenant().await;
    let (allowed, other) = (test_server().await, test_server().await);
    assert_eq!(set_tenant_egress(&app, &t.org, json!([format!("127.0.0.1:{}", allowed.port)])).await.0, StatusCode::OK);
    let spec = json!({"name": "requester", "language": "python",
                      "files": {"handler.py": PYTHON_REQUESTS, "requirements.txt": "requests==2.32.3\n"}});
    app.create_with(&t.dev, spec).await;
    app.wait_ready(&t.dev, "requester").await;
    let answer = call_with(&app, &t.dev, &t.org, "requester", &format!("allowed={}&other={}", allowed.port, other.port)).await;
    assert_eq!(answer["body"], "hello /requests", "{answer}");
    let refused = answer["refused"].as_str().unwrap();
    assert!(refused.contains(&format!("egress to 127.0.0.1:{} refused", other.port)), "{answer}");
    assert_eq!(other.connections.load(Ordering::SeqCst), 0);
    app.finish().await;
}
