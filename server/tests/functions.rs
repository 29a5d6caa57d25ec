//! Real functions in real containers: build, call, sandbox limits, update, delete.
//! Uses the local Docker engine; the database is SQLite (the store is covered on both in api.rs
//! and store.rs).

mod common;

use common::{json_of, Db, TestApp};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::time::Duration;

const NODE_ECHO: &str = r#"
module.exports = async (event, context) => {
  console.log("called", event.method, event.path);
  if (event.path === "/teapot") {
    return { statusCode: 418, headers: { "X-Kind": "teapot" }, body: { short: true, stout: true } };
  }
  return {
    method: event.method, path: event.path, query: event.query,
    header: event.headers["x-test"] || null, auth: event.headers["authorization"] || null,
    body: event.body, function: context.function, version: context.version, tenant: context.tenant,
  };
};
"#;

const PYTHON_ECHO: &str = r#"
import json

def handle(event, context):
    print("called", event["method"], event["path"])
    if event["path"] == "/text":
        return "plain words"
    data = json.loads(event["body"]) if event["body"] else None
    return {"method": event["method"], "path": event["path"], "query": event["query"],
            "data": data, "function": context["function"], "tenant": context["tenant"]}
"#;

async fn body_of(r: reqwest::Response) -> (StatusCode, Value) {
    json_of(r).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodejs_function_builds_and_answers() {
    let app = TestApp::spawn(Db::Sqlite).await;
    let t = app.tenant().await;
    let f = app.deploy(&t.dev, "echo", "nodejs", NODE_ECHO).await;
    assert_eq!(f["version"], 1);
    assert_eq!(f["build_status"], "ready");
    assert!(f["build_log"].as_str().unwrap().contains("Successfully built"));

    let r = app
        .client
        .post(app.url(&format!("/api/org/{}/echo/items/42?color=blue&n=1", t.org)))
        .bearer_auth(&t.dev)
        .header("x-test", "yes")
        .body("payload")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["x-vcd-faas-cold"], "true");
    assert_eq!(r.headers()["x-vcd-faas-version"], "1");
    let (status, body) = body_of(r).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["method"], "POST");
    assert_eq!(body["path"], "/items/42");
    assert_eq!(body["query"], json!({"color": "blue", "n": "1"}));
    assert_eq!(body["header"], "yes");
    assert_eq!(body["auth"], Value::Null, "the caller's token is not passed to the function");
    assert_eq!(body["body"], "payload");
    assert_eq!((body["function"].as_str(), body["version"].as_i64()), (Some("echo"), Some(1)));
    assert_eq!(body["tenant"], t.org.as_str());

    let r = app.call(Some(&t.dev), &t.org, "echo/teapot").await;
    assert_eq!(r.status(), StatusCode::IM_A_TEAPOT);
    assert_eq!(r.headers()["x-vcd-faas-cold"], "false", "warm: the second call reuses the container");
    assert_eq!(r.headers()["x-kind"], "teapot");
    assert_eq!(r.headers()["content-type"], "application/json");
    assert_eq!(r.json::<Value>().await.unwrap(), json!({"short": true, "stout": true}));

    let (_, calls) = body_of(app.get(&t.dev, "/api/v1/functions/echo/invocations").await).await;
    let calls = calls.as_array().unwrap();
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[0]["path"], "/teapot", "newest first");
    assert_eq!(calls[0]["status_code"], 418);
    assert_eq!(calls[1]["logs"], "called POST /items/42\n");
    assert_eq!((calls[1]["cold"].as_bool(), calls[0]["cold"].as_bool()), (Some(true), Some(false)));
    assert!(calls[1]["duration_ms"].as_f64().unwrap() > 0.0);
    assert_eq!(app.containers_of(&t.org, "echo").await, 1, "one warm container waits for the next call");

    // The provider sees the calls in /metrics and on the dashboard; tenants do not.
    assert_eq!(app.get(&t.dev, "/metrics").await.status(), StatusCode::FORBIDDEN);
    let metrics = app.get(&app.admin_token, "/metrics").await.text().await.unwrap();
    let org = &t.org;
    assert!(metrics.contains(&format!("vcdfaas_calls_total{{tenant=\"{org}\",function=\"echo\",status=\"418\",start=\"warm\"}} 1")), "{metrics}");
    assert!(metrics.contains(&format!("vcdfaas_cold_starts_total{{tenant=\"{org}\",function=\"echo\"}} 1")));
    assert!(metrics.contains(&format!("vcdfaas_pool_containers{{tenant=\"{org}\",function=\"echo\",state=\"idle\"}} 1")));
    assert!(metrics.contains("vcdfaas_build_duration_seconds_count{language=\"nodejs\",result=\"ready\"} 1"));
    let (_, tenants) = body_of(app.get(&app.admin_token, "/api/v1/tenants").await).await;
    let mine = tenants.as_array().unwrap().iter().find(|x| x["name"] == org.as_str()).unwrap().clone();
    assert_eq!((mine["calls"].as_u64(), mine["cold_starts"].as_u64(), mine["containers"].as_u64()), (Some(2), Some(1), Some(1)));
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_function_builds_and_answers() {
    let app = TestApp::spawn(Db::Sqlite).await;
    let t = app.tenant().await;
    app.deploy(&t.dev, "py", "python", PYTHON_ECHO).await;
    let r = app
        .client
        .put(app.url(&format!("/api/org/{}/py/orders?id=7", t.org)))
        .bearer_auth(&t.dev)
        .json(&json!({"qty": 3}))
        .send()
        .await
        .unwrap();
    let (status, body) = body_of(r).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, json!({"method": "PUT", "path": "/orders", "query": {"id": "7"}, "data": {"qty": 3}, "function": "py", "tenant": t.org}));
    let r = app.call(Some(&t.dev), &t.org, "py/text").await;
    assert_eq!(r.headers()["content-type"], "text/plain; charset=utf-8");
    assert_eq!(r.text().await.unwrap(), "plain words");
    let (_, calls) = body_of(app.get(&t.dev, "/api/v1/functions/py/invocations").await).await;
    assert_eq!(calls[1]["logs"], "called PUT /orders\n");
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn syntax_errors_fail_the_build_with_the_interpreters_message() {
    let app = TestApp::spawn(Db::Sqlite).await;
    let t = app.tenant().await;
    app.create(&t.dev, "broken-js", "nodejs", "module.exports = async (event => {\n  return 1;\n};\n").await;
    app.create(&t.dev, "broken-py", "python", "def handle(event, context)\n    return 1\n").await;
    // A mistake in another file of the tree is named at that file and line.
    let js_tree = json!({"handler.js": "module.exports = require('./lib/util');\n", "lib/util.js": "// helpers\nexports.x = (;\n"});
    app.create_with(&t.dev, json!({"name": "broken-lib-js", "language": "nodejs", "files": js_tree})).await;
    let py_tree = json!({"handler.py": "from lib import util\n", "lib/__init__.py": "", "lib/util.py": "X = 1\n\ndef f(:\n"});
    app.create_with(&t.dev, json!({"name": "broken-lib-py", "language": "python", "files": py_tree})).await;
    let cases = [("broken-js", "(handler.js, line "), ("broken-py", "(handler.py, line "), ("broken-lib-js", "(lib/util.js, line 2)"), ("broken-lib-py", "(lib/util.py, line 3)")];
    for (name, place) in cases {
        let f = app.wait_built(&t.dev, name).await;
        assert_eq!(f["status"], "failed");
        assert_eq!(f["build_status"], "failed");
        assert_eq!(f["version"], Value::Null);
        let log = f["build_log"].as_str().unwrap();
        // The last line names the error and where it is.
        let verdict = log.lines().last().unwrap();
        assert!(verdict.starts_with("BUILD FAILED: SyntaxError"), "{name} log: {log}");
        assert!(verdict.contains(place), "{verdict}");
        // The same reason is a field of its own, without the pointer into the log.
        let reason = f["build_error"].as_str().unwrap();
        assert!(reason.starts_with("SyntaxError") && reason.contains(place), "{f}");
        assert!(verdict.contains(reason), "{verdict} / {reason}");
        let (status, body) = body_of(app.call(Some(&t.dev), &t.org, name).await).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(body["error"].as_str().unwrap().contains("has no version that built: fix its code"), "{body}");
    }
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exceptions_give_500_with_the_message_in_the_log() {
    let app = TestApp::spawn(Db::Sqlite).await;
    let t = app.tenant().await;
    app.deploy(&t.dev, "throws", "nodejs", "module.exports = async () => { console.log('before'); throw new TypeError('bad input here'); };").await;
    app.deploy(&t.dev, "raises", "python", "def handle(event, context):\n    print('before')\n    raise ValueError('bad value here')\n").await;
    for (name, message) in [("throws", "TypeError: bad input here"), ("raises", "ValueError: bad value here")] {
        let (status, body) = body_of(app.call(Some(&t.dev), &t.org, name).await).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        let text = body.to_string();
        assert!(text.contains(message), "{text}");
        assert!(!text.contains("/app/") && !text.contains("shim"), "no host detail in the body: {text}");
        let (_, calls) = body_of(app.get(&t.dev, &format!("/api/v1/functions/{name}/invocations")).await).await;
        let logs = calls[0]["logs"].as_str().unwrap();
        assert!(logs.contains("before") && logs.contains(message.split(':').next().unwrap()), "{logs}");
        assert!(calls[0]["error"].as_str().unwrap().contains(message));
    }
    app.finish().await;
}

const SANDBOX_PROBE: &str = r#"
import os, socket

def handle(event, context):
    what = event["query"].get("probe")
    if what == "network":
        try:
            socket.create_connection(("127.0.0.1", 5432), timeout=2).close()
            reached = True
        except OSError as e:
            reached = str(e)
        return {"interfaces": sorted(os.listdir("/sys/class/net")), "host_postgres": reached}
    if what == "files":
        out = {}
        for path in ["/app/evil.txt", "/etc/evil.txt", "/tmp/ok.txt"]:
            try:
                with open(path, "w") as f:
                    f.write("x")
                out[path] = "written"
            except OSError as e:
                out[path] = e.strerror
        return out
    if what == "identity":
        import ctypes
        status = dict(line.split(":\t", 1) for line in open("/proc/self/status").read().splitlines() if ":\t" in line)
        PR_GET_NO_NEW_PRIVS = 39
        return {"uid": os.getuid(), "cap_eff": status["CapEff"].strip(), "no_new_privs": ctypes.CDLL(None).prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0)}
    if what == "fork":
        import time
        n = 0
        try:
            while n < 1000:
                if os.fork() == 0:
                    time.sleep(20)
                    os._exit(0)
                n += 1
        except OSError as e:
            return {"forked": n, "error": e.strerror}
        return {"forked": n}
    if what == "memory":
        hog = []
        while True:
            hog.append(bytearray(b"x" * (8 << 20)))
    if what == "loop":
        while True:
            pass
    if what == "host":
        # The kernel that answers, and whether any of the host's own files are in sight.
        host_paths = ["/var/lib/docker", "/work", "/etc/postgresql", "/proc/1/root/var/lib/docker", "/run/docker.sock", "/var/run/docker.sock", "/run/containerd"]
        return {"kernel": os.uname().release, "host_files": [p for p in host_paths if os.path.exists(p)]}
    return "unknown probe"
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_call_is_sandboxed_and_limited() {
    sandboxed_and_limited("runc").await;
}

/// The same sandbox under gVisor (`runsc`, registered by `scripts/setup.sh`), with its own
/// kernel between the function and the host's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_call_is_sandboxed_and_limited_under_gvisor() {
    sandboxed_and_limited("gvisor").await;
}

async fn sandboxed_and_limited(sandbox: &str) {
    let app = TestApp::spawn_with(Db::Sqlite, |c| c.pids_limit = 32).await;
    let t = app.tenant_with(json!({"sandbox": sandbox})).await;
    // Each process of a gVisor sandbox holds several MB of its memory (31 forks of the Python
    // runtime needed more than 256 MB here): with less, a fork bomb meets the memory limit
    // before the process limit (the call then answers 502, out of memory).
    let memory_mb = if sandbox == "gvisor" { 512 } else { 64 };
    app.create_with(&t.dev, json!({"name": "probe", "language": "python", "code": SANDBOX_PROBE, "memory_mb": memory_mb, "timeout_ms": 3000})).await;
    let f = app.wait_built(&t.dev, "probe").await;
    assert_eq!(f["status"], "ready", "{}", f["build_log"]);
    let probe = |what: &'static str| {
        let path = format!("probe?probe={what}");
        let (app, t) = (&app, &t);
        async move { app.call(Some(&t.dev), &t.org, &path).await }
    };

    let (status, net) = body_of(probe("network").await).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(net["interfaces"], json!(["lo"]), "no network but loopback");
    assert!(net["host_postgres"].is_string(), "the host's services are out of reach: {net}");

    let (_, files) = body_of(probe("files").await).await;
    // gVisor checks the user's permission before the read-only mount (root gets EROFS there).
    let refused = if sandbox == "gvisor" { ["Read-only file system", "Permission denied"].as_slice() } else { &["Read-only file system"] };
    assert!(refused.contains(&files["/app/evil.txt"].as_str().unwrap()), "{files}");
    assert!(refused.contains(&files["/etc/evil.txt"].as_str().unwrap()), "{files}");
    assert_eq!(files["/tmp/ok.txt"], "written");
    let running = app.all_containers_of(&t.org, "probe").await.into_iter().find(|c| c.running).expect("the probe's container");
    let inspect = std::process::Command::new("docker").args(["inspect", "-f", "{{.HostConfig.ReadonlyRootfs}} {{.HostConfig.Runtime}}", &running.id]).output().unwrap();
    let runtime = if sandbox == "gvisor" { "runsc" } else { "runc" };
    assert_eq!(String::from_utf8_lossy(&inspect.stdout).trim(), format!("true {runtime}"));

    let (_, who) = body_of(probe("identity").await).await;
    assert_eq!(who, json!({"uid": 10001, "cap_eff": "0000000000000000", "no_new_privs": 1}));

    let (_, host) = body_of(probe("host").await).await;
    assert_eq!(host["host_files"], json!([]), "none of the host's files: {host}");
    let host_kernel = String::from_utf8(std::process::Command::new("uname").arg("-r").output().unwrap().stdout).unwrap();
    assert_eq!(host["kernel"] == host_kernel.trim(), sandbox == "runc", "gVisor answers with its own kernel: {host}");

    let (status, fork) = body_of(probe("fork").await).await;
    assert_eq!(status, StatusCode::OK, "{fork}");
    assert!(fork["forked"].as_i64().unwrap() < 32, "the pids limit stops a fork bomb: {fork}");
    assert_eq!(fork["error"], "Resource temporarily unavailable");

    let started = std::time::Instant::now();
    let (status, body) = body_of(probe("loop").await).await;
    assert_eq!(status, StatusCode::GATEWAY_TIMEOUT, "{body}");
    assert!(body["error"].as_str().unwrap().contains("3000 ms"));
    assert!(started.elapsed() < Duration::from_secs(10));

    let (status, body) = body_of(probe("memory").await).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
    assert!(body["error"].as_str().unwrap().contains(&format!("exceeded its memory limit of {memory_mb} MB")), "{body}");

    let (_, calls) = body_of(app.get(&t.dev, "/api/v1/functions/probe/invocations").await).await;
    let statuses: Vec<_> = calls.as_array().unwrap().iter().map(|c| c["status_code"].as_i64().unwrap()).collect();
    assert_eq!(statuses, [502, 504, 200, 200, 200, 200, 200]);
    // The broken containers are gone; only the spare made ahead of the next call stays.
    app.assert_none_running(&t.org, "probe").await;
    app.finish().await;
}

/// Its start-up (loading the module) takes half a second, longer than its whole timeout.
const NODE_SLOW_START: &str = r#"
Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 500);
module.exports = async (event, context) => {
  await new Promise((r) => setTimeout(r, 10));
  return { left_ms: context.deadline - Date.now() };
};
"#;

const PYTHON_TALKER: &str = r#"
def handle(event, context):
    q = event["query"]
    if "say" in q:
        print(q["say"])
    if "bytes" in q:
        for _ in range(int(q["bytes"]) // 100):
            print("x" * 99)
    if "loop" in q:
        print("looping now")
        while True:
            pass
    return "ok"
"#;

const NODE_ESCAPES: &str = r#"
module.exports = async (event) => {
  if (event.query.later) {
    setTimeout(() => { throw new Error("thrown after the answer"); }, 20);
    return "scheduled";
  }
  if (event.query.inside) {
    console.log("waiting on a timer");
    await new Promise(() => setTimeout(() => { throw new Error("thrown by the call's own timer"); }, 20));
  }
  return "fine";
};
"#;

/// What a user reads in an answer and in the call's record: the function's whole timeout to
/// run in, even on a cold start; its own log, marked where it was cut; and calls that are not
/// harmed by what an earlier call left behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_get_their_own_time_and_their_own_logs() {
    let app = TestApp::spawn(Db::Sqlite).await;
    let t = app.tenant().await;
    app.create_with(&t.dev, json!({"name": "quick", "language": "nodejs", "code": NODE_SLOW_START, "timeout_ms": 300, "mode": "per-call"})).await;
    app.create_with(&t.dev, json!({"name": "talker", "language": "python", "code": PYTHON_TALKER, "timeout_ms": 1000})).await;
    app.create_with(&t.dev, json!({"name": "escapes", "language": "nodejs", "code": NODE_ESCAPES, "timeout_ms": 5000})).await;
    for name in ["quick", "talker", "escapes"] {
        let f = app.wait_built(&t.dev, name).await;
        assert_eq!(f["status"], "ready", "{}", f["build_log"]);
    }

    // Every call starts a container (per-call) whose start-up alone is longer than the 300 ms
    // timeout; the function still gets its 300 ms, counted from when the call reaches it.
    for _ in 0..3 {
        let r = app.call(Some(&t.dev), &t.org, "quick").await;
        assert_eq!(r.headers()["x-vcd-faas-cold"], "true");
        let (status, body) = body_of(r).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let left = body["left_ms"].as_i64().unwrap();
        assert!((0..300).contains(&left), "time left after 10 ms of work: {left} ms");
    }

    // A call that runs past its deadline has the output written since it began as its log,
    // not an earlier call's.
    assert_eq!(app.call(Some(&t.dev), &t.org, "talker?say=first-call-line").await.status(), StatusCode::OK);
    // Docker stamps a log line when its daemon reads it from the container: on a loaded
    // machine that can be a moment after the call that wrote it has answered.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let (status, body) = body_of(app.call(Some(&t.dev), &t.org, "talker?loop=1").await).await;
    assert_eq!(status, StatusCode::GATEWAY_TIMEOUT, "{body}");
    let (_, calls) = body_of(app.get(&t.dev, "/api/v1/functions/talker/invocations").await).await;
    let logs = calls[0]["logs"].as_str().unwrap();
    assert!(logs.contains("looping now") && !logs.contains("first-call-line"), "{logs}");

    // A log longer than the runtime keeps says so at its end.
    assert_eq!(app.call(Some(&t.dev), &t.org, "talker?bytes=100000").await.status(), StatusCode::OK);
    let (_, calls) = body_of(app.get(&t.dev, "/api/v1/functions/talker/invocations").await).await;
    let logs = calls[0]["logs"].as_str().unwrap();
    assert!(logs.len() > 60_000 && logs.len() < 70_000, "{} bytes kept", logs.len());
    assert!(logs.trim_end().ends_with("more characters of log not kept; the first 65536 are above]"), "{}", &logs[logs.len() - 200..]);

    // An exception a call's own timer throws fails that call at once, with its log.
    let (status, body) = body_of(app.call(Some(&t.dev), &t.org, "escapes?inside=1").await).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{body}");
    assert!(body["error"].as_str().unwrap().contains("thrown by the call's own timer"), "{body}");
    let (_, calls) = body_of(app.get(&t.dev, "/api/v1/functions/escapes/invocations").await).await;
    assert!(calls[0]["logs"].as_str().unwrap().contains("waiting on a timer"), "{}", calls[0]);
    // One thrown after a call answered retires its container; the calls after it are served.
    for round in 0..4 {
        let (status, body) = body_of(app.call(Some(&t.dev), &t.org, "escapes?later=1").await).await;
        assert_eq!((status, body.as_str()), (StatusCode::OK, Some("scheduled")), "round {round}");
        tokio::time::sleep(Duration::from_millis(if round % 2 == 0 { 5 } else { 200 })).await;
        let (status, body) = body_of(app.call(Some(&t.dev), &t.org, "escapes").await).await;
        assert_eq!((status, body.as_str()), (StatusCode::OK, Some("fine")), "round {round}");
    }
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_rules_and_body_limit_apply_to_routes() {
    let app = TestApp::spawn_with(Db::Sqlite, |c| c.max_body_bytes = 1024).await;
    let a = app.tenant().await;
    let b = app.tenant().await;
    app.create_with(&a.dev, json!({"name": "open", "language": "nodejs", "code": "module.exports = async (e) => e.body.length;", "public": true})).await;
    app.deploy(&a.dev, "closed", "nodejs", "module.exports = async () => 'inside';").await;
    app.wait_built(&a.dev, "open").await;

    assert_eq!(app.call(None, &a.org, "open").await.status(), StatusCode::OK, "public: no token needed");
    assert_eq!(app.call(None, &a.org, "closed").await.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(app.call(Some(&b.dev), &a.org, "closed").await.status(), StatusCode::NOT_FOUND);
    assert_eq!(app.call(Some(&a.dev), &a.org, "closed").await.text().await.unwrap(), "inside");
    assert_eq!(app.call(Some(&app.admin_token), &a.org, "closed").await.status(), StatusCode::OK);

    let send = |size: usize| app.client.post(app.url(&format!("/api/org/{}/open", a.org))).body("x".repeat(size)).send();
    let r = send(1024).await.unwrap();
    assert_eq!(r.text().await.unwrap(), "1024");
    let (status, body) = body_of(send(1025).await.unwrap()).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(body["error"].as_str().unwrap().contains("1024-byte limit"));
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn updates_switch_only_when_the_new_version_is_ready() {
    let app = TestApp::spawn(Db::Sqlite).await;
    let t = app.tenant().await;
    app.deploy(&t.dev, "greet", "nodejs", "module.exports = async () => 'v1 says hi';").await;

    // A broken update: v1 keeps serving and the failure is visible.
    let (status, f) = body_of(app.put(&t.dev, "/api/v1/functions/greet", json!({"code": "module.exports = async () => {"})).await).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(f["latest_version"], 2);
    let f = app.wait_until(&t.dev, "greet", Duration::from_secs(120), |f| f["build_status"] == "failed").await;
    assert_eq!((f["status"].as_str(), f["version"].as_i64()), (Some("ready"), Some(1)));
    assert!(f["build_log"].as_str().unwrap().contains("SyntaxError"));
    assert_eq!(app.call(Some(&t.dev), &t.org, "greet").await.text().await.unwrap(), "v1 says hi");

    // A good update, even to another language, takes over once built.
    let (status, _) = body_of(
        app.put(&t.dev, "/api/v1/functions/greet", json!({"language": "python", "code": "def handle(e, c):\n    return 'v3 from python'\n", "memory_mb": 96})).await,
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let f = app.wait_until(&t.dev, "greet", Duration::from_secs(120), |f| f["version"] == 3).await;
    assert_eq!((f["language"].as_str(), f["memory_mb"].as_i64()), (Some("python"), Some(96)));
    assert_eq!(app.call(Some(&t.dev), &t.org, "greet").await.text().await.unwrap(), "v3 from python");
    let (_, versions) = body_of(app.get(&t.dev, "/api/v1/functions/greet/versions").await).await;
    let states: Vec<_> = versions.as_array().unwrap().iter().map(|v| v["build_status"].as_str().unwrap()).collect();
    assert_eq!(states, ["ready", "failed", "ready"]);

    // Every version's code stays readable, and one that built can be brought back.
    let (status, v1) = body_of(app.get(&t.dev, "/api/v1/functions/greet/versions/1").await).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!((v1["code"].as_str(), v1["language"].as_str()), (Some("module.exports = async () => 'v1 says hi';"), Some("nodejs")));
    let (_, v2) = body_of(app.get(&t.dev, "/api/v1/functions/greet/versions/2").await).await;
    assert!(v2["build_log"].as_str().unwrap().contains("SyntaxError"), "{v2}");
    let (status, body) = body_of(app.post(&t.dev, "/api/v1/functions/greet/versions/2/restore", json!({})).await).await;
    assert_eq!(status, StatusCode::CONFLICT, "a version that did not build: {body}");
    for (path, want) in [("versions/9", StatusCode::NOT_FOUND), ("versions/first", StatusCode::BAD_REQUEST)] {
        let (status, body) = body_of(app.get(&t.dev, &format!("/api/v1/functions/greet/{path}")).await).await;
        assert_eq!(status, want, "{path}: {body}");
        assert!(body["error"].is_string(), "{body}");
    }
    let (status, f) = body_of(app.post(&t.dev, "/api/v1/functions/greet/versions/1/restore", json!({})).await).await;
    assert_eq!((status, f["latest_version"].as_i64()), (StatusCode::ACCEPTED, Some(4)), "{f}");
    app.wait_until(&t.dev, "greet", Duration::from_secs(120), |f| f["version"] == 4).await;
    assert_eq!(app.call(Some(&t.dev), &t.org, "greet").await.text().await.unwrap(), "v1 says hi");
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_removes_the_route_at_once_and_the_images_after() {
    let app = TestApp::spawn(Db::Sqlite).await;
    let t = app.tenant().await;
    app.deploy(&t.dev, "gone", "nodejs", "module.exports = async () => 'here';").await;
    assert_eq!(app.call(Some(&t.dev), &t.org, "gone").await.status(), StatusCode::OK);
    let images_before = app.engine.list_function_images().await.unwrap();
    assert!(images_before.iter().any(|i| i.labels.get("vcd-faas.tenant") == Some(&t.org)));

    assert_eq!(app.delete(&t.dev, "/api/v1/functions/gone").await.status(), StatusCode::NO_CONTENT);
    assert_eq!(app.call(Some(&t.dev), &t.org, "gone").await.status(), StatusCode::NOT_FOUND);
    assert_eq!(app.delete(&t.dev, "/api/v1/functions/gone").await.status(), StatusCode::NOT_FOUND);

    let start = std::time::Instant::now();
    loop {
        let images = app.engine.list_function_images().await.unwrap();
        let left = images.iter().filter(|i| i.labels.get("vcd-faas.tenant") == Some(&t.org)).count();
        let listed = app.get(&t.dev, "/api/v1/functions/gone").await.status();
        if left == 0 && listed == StatusCode::NOT_FOUND {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "deleted function remains: {left} images, GET {listed}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The name is free again.
    app.deploy(&t.dev, "gone", "nodejs", "module.exports = async () => 'back';").await;
    assert_eq!(app.call(Some(&t.dev), &t.org, "gone").await.text().await.unwrap(), "back");
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_portals_hello_templates_work_as_written() {
    let app = TestApp::spawn(Db::Sqlite).await;
    let t = app.tenant().await;
    for language in app::model::Language::ALL {
        let name = format!("hello-{}", language.as_str());
        app.create(&t.dev, &name, language.as_str(), language.hello_template()).await;
    }
    for language in app::model::Language::ALL {
        let name = format!("hello-{}", language.as_str());
        let f = app.wait_built(&t.dev, &name).await;
        assert_eq!(f["status"], "ready", "{}", f["build_log"]);
        let (status, body) = body_of(app.call(Some(&t.dev), &t.org, &format!("{name}?name=Ada")).await).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body, json!({"message": "Hello, Ada!", "function": name}));
        let (_, calls) = body_of(app.get(&t.dev, &format!("/api/v1/functions/{name}/invocations")).await).await;
        assert_eq!(calls[0]["logs"], "greeting Ada\n");
    }
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_of_settings_alone_serves_without_a_rebuild() {
    let app = TestApp::spawn(Db::Sqlite).await;
    let t = app.tenant().await;
    app.deploy(&t.dev, "steady", "python", "def handle(event, context):\n    return {'version': context['version']}\n").await;
    let r = app.put(&t.dev, "/api/v1/functions/steady", json!({"memory_mb": 96, "timeout_ms": 2000, "mode": "per-call"})).await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let f = app.wait_until(&t.dev, "steady", Duration::from_secs(60), |f| f["version"] == 2).await;
    let log = f["build_log"].as_str().unwrap();
    assert!(log.contains("files unchanged since v1: its image serves this version too (no rebuild)"), "{log}");
    assert!(!log.contains("Step 1/"), "nothing was built: {log}");
    assert_eq!(f["memory_mb"], 96);
    let (status, body) = body_of(app.call(Some(&t.dev), &t.org, "steady").await).await;
    assert_eq!((status, body), (StatusCode::OK, json!({"version": 2})));

    // The image v2 serves from is kept although v1, whose build made it, no longer serves:
    // per call, each call starts a container of it.
    server::ops::reconciler::reconcile(&app.service.reconciler(), 0, true).await.unwrap();
    let (status, body) = body_of(app.call(Some(&t.dev), &t.org, "steady").await).await;
    assert_eq!((status, body), (StatusCode::OK, json!({"version": 2})));
    app.finish().await;
}
