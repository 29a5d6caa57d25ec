//! vCD's side played over the real broker: API calls arriving as vCD's AMQP messages, their
//! replies, tenant isolation by vCD org, malformed messages, redeliveries, and notifications
//! running event-triggered functions of the right tenant only.

mod common;

use common::amqp::{org_urn, reply_body, request, wait_for_queue, FakeCell, Names};
use common::{Db, TestApp};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

const ECHO: &str = r#"module.exports = async (e) => ({ method: e.method, path: e.path, query: e.query, body: e.body,
  org: e.headers["x-vcd-org"], auth: e.headers["authorization"] || e.headers["x-vcloud-authorization"] || null });"#;

async fn platform(db: Db, names: &Names) -> TestApp {
    common::amqp::sweep_earlier_test_objects().await;
    let app = TestApp::spawn_with(db, |config| names.apply(config)).await;
    wait_for_queue(&names.api_queue).await;
    app
}

/// A platform on SQLite with one tenant mapped to a vCD org, its `echo` function ready, and
/// vCD's side of the broker.
struct EchoInOneOrg {
    names: Names,
    app: TestApp,
    t: common::Tenant,
    org: String,
    cell: FakeCell,
}

async fn echo_in_one_org() -> EchoInOneOrg {
    let names = Names::new();
    let app = platform(Db::Sqlite, &names).await;
    let org = org_urn();
    let t = app.tenant_with(json!({"vcd_org_id": org})).await;
    app.deploy(&t.dev, "echo", "nodejs", ECHO).await;
    let cell = FakeCell::connect().await;
    EchoInOneOrg { names, app, t, org, cell }
}

async fn api_calls_arrive_over_amqp(db: Db) {
    let names = Names::new();
    let app = platform(db, &names).await;
    let (org_a, org_b) = (org_urn(), org_urn());
    let a = app.tenant_with(json!({"vcd_org_id": org_a.to_uppercase().replace("URN:VCLOUD:ORG:", "urn:vcloud:org:")})).await;
    let b = app.tenant_with(json!({"vcd_org_id": org_b})).await;
    app.deploy(&a.dev, "echo", "nodejs", ECHO).await;
    let cell = FakeCell::connect().await;

    // A call from the function's own org runs it and comes back as vCD's reply.
    let uri = format!("/api/org/{}/echo/items/7", a.org);
    let reply = cell.call(&names, &request("req-1", "POST", &uri, Some("x=1&y=two"), b"{\"n\":42}", &org_a)).await;
    assert_eq!(reply["id"], "req-1");
    assert_eq!(reply["statusCode"], 200, "{reply}");
    assert_eq!(reply["request"], false);
    let body: Value = serde_json::from_str(&reply_body(&reply)).unwrap();
    assert_eq!(body["method"], "POST");
    assert_eq!(body["path"], "/items/7");
    assert_eq!(body["query"], json!({"x": "1", "y": "two"}));
    assert_eq!(body["body"], "{\"n\":42}");
    assert_eq!(body["org"], org_a);
    assert_eq!(body["auth"], Value::Null, "vCD's session token must not reach the function");
    assert_eq!(reply["headers"]["Content-Length"], reply_body(&reply).len());

    // Another org, an org no tenant has, and a missing function all get the same 404.
    let unknown = cell.call(&names, &request("req-2", "GET", &format!("/api/org/{}/nothing", a.org), None, b"", &org_a)).await;
    assert_eq!(unknown["statusCode"], 404);
    for (id, org) in [("req-3", org_b.clone()), ("req-4", org_urn())] {
        let other = cell.call(&names, &request(id, "GET", &uri, None, b"", &org)).await;
        assert_eq!(other["statusCode"], 404, "{other}");
        assert_eq!(reply_body(&other).replace("echo", "nothing"), reply_body(&unknown));
    }
    // Tenant B calling its own route with A's function name: still nothing of A's.
    let b_route = cell.call(&names, &request("req-5", "GET", &format!("/api/org/{}/echo", b.org), None, b"", &org_b)).await;
    assert_eq!(b_route["statusCode"], 404);

    // The call is listed as coming through vCD.
    let calls: Value = app.get(&a.dev, "/api/v1/functions/echo/invocations").await.json().await.unwrap();
    assert_eq!(calls[0]["trigger"], "vcd");
    assert_eq!(calls[0]["path"], "/items/7");

    // The provider's metrics show the broker link.
    let metrics = app.get(&app.admin_token, "/metrics").await.text().await.unwrap();
    assert!(metrics.contains("vcdfaas_amqp_connected{consumer=\"api\"} 1"), "{metrics}");
    app.finish().await;
}

/// One pipeline: the same percent-encoded route reaches the function as the same call whether
/// it came over HTTP or from vCD.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_and_vcd_calls_reach_the_function_alike() {
    let EchoInOneOrg { names, app, t, org, cell } = echo_in_one_org().await;
    let rest = "/caf%C3%A9/a%20b/x%2Fy";

    let over_http: Value = app.call(Some(&t.dev), &t.org, &format!("echo{rest}?q=%C3%BC")).await.json().await.unwrap();
    let uri = format!("/api/org/{}/echo{rest}", t.org);
    let reply = cell.call(&names, &request("same-path", "GET", &uri, Some("q=%C3%BC"), b"", &org)).await;
    assert_eq!(reply["statusCode"], 200, "{reply}");
    let over_vcd: Value = serde_json::from_str(&reply_body(&reply)).unwrap();
    assert_eq!(over_http["path"], "/café/a b/x/y", "{over_http}");
    assert_eq!(over_vcd["path"], over_http["path"], "{over_vcd}");
    assert_eq!(over_vcd["query"], over_http["query"]);
    assert_eq!(over_http["query"], json!({"q": "ü"}));

    // A route part that is not UTF-8 once decoded is refused alike.
    let bad = cell.call(&names, &request("bad-path", "GET", &format!("/api/org/{}/echo/%FF", t.org), None, b"", &org)).await;
    assert_eq!(bad["statusCode"], 400, "{bad}");
    assert_eq!(app.call(Some(&t.dev), &t.org, "echo/%FF").await.status(), 400);
    app.finish().await;
}

async fn event_triggers_run_the_right_tenants_functions(db: Db) {
    let names = Names::new();
    let app = platform(db, &names).await;
    wait_for_queue(&names.events_queue).await;
    let (org_a, org_b) = (org_urn(), org_urn());
    let a = app.tenant_with(json!({"vcd_org_id": org_a})).await;
    let b = app.tenant_with(json!({"vcd_org_id": org_b})).await;
    let code = r#"module.exports = async (e) => { const n = JSON.parse(e.body); console.log("saw " + n.type + " in " + n.org + " ok=" + n.operationSuccess); return "ok"; };"#;
    let vm_created = json!({"type": "vcd-event", "event": "com/vmware/vcloud/event/vm/create"});
    for t in [&a, &b] {
        app.create_with(&t.dev, json!({"name": "on-vm", "language": "nodejs", "code": code, "trigger": vm_created})).await;
        assert_eq!(app.wait_built(&t.dev, "on-vm").await["status"], "ready");
    }
    let f = app.function(&a.dev, "on-vm").await;
    assert_eq!(f["trigger"], json!({"type": "vcd-event", "event": "com/vmware/vcloud/event/vm/create", "successful_only": true}));
    assert_eq!(f["registration"]["state"], "local");

    let cell = FakeCell::connect().await;
    // Bindings follow the triggers; give the consumer a moment to bind after the functions appeared.
    let events_of = |t: &common::Tenant| {
        let (app, token) = (&app, t.dev.clone());
        async move {
            let calls: Value = app.get(&token, "/api/v1/functions/on-vm/invocations").await.json().await.unwrap();
            calls.as_array().unwrap().iter().filter(|c| c["trigger"] == "event").cloned().collect::<Vec<_>>()
        }
    };
    let start = Instant::now();
    let mut event = 0;
    while events_of(&a).await.is_empty() {
        assert!(start.elapsed() < Duration::from_secs(30), "the event never ran tenant A's function");
        event += 1;
        cell.notify(&names, "com/vmware/vcloud/event/vm/create", &org_a, true, &format!("evt-{event}")).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // A failed operation, another event type, and a redelivered event run nothing more.
    cell.notify(&names, "com/vmware/vcloud/event/vm/create", &org_a, false, "evt-failed").await;
    cell.notify(&names, "com/vmware/vcloud/event/vm/delete", &org_a, true, "evt-delete").await;
    cell.notify(&names, "com/vmware/vcloud/event/vm/create", &org_a, true, &format!("evt-{event}")).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let runs = events_of(&a).await;
    let distinct: std::collections::BTreeSet<String> = (1..=event).map(|n| format!("evt-{n}")).collect();
    assert!(runs.len() <= distinct.len(), "{} runs for {} distinct events", runs.len(), distinct.len());
    let last = runs.iter().find(|r| r["status_code"] == 200).expect("a run that answered 200");
    assert!(last["logs"].as_str().unwrap().contains(&format!("saw com/vmware/vcloud/event/vm/create in {org_a} ok=true")), "{last}");
    assert!(runs.iter().all(|r| !r["logs"].as_str().unwrap().contains("ok=false")));
    // Tenant B's function with the same trigger never saw A's events.
    assert!(events_of(&b).await.is_empty(), "tenant B's function ran for tenant A's event");

    // A trigger for all operations, not only successful ones, gets failed ones too.
    let all = json!({"type": "vcd-event", "event": "com/vmware/vcloud/event/vm/create", "successful_only": false});
    let r = app.put(&b.dev, "/api/v1/functions/on-vm", json!({"language": "nodejs", "code": code, "trigger": all})).await;
    assert!(r.status().is_success());
    let start = Instant::now();
    while events_of(&b).await.is_empty() {
        assert!(start.elapsed() < Duration::from_secs(40), "a failed-operation event never ran B's all-operations function");
        cell.notify(&names, "com/vmware/vcloud/event/vm/create", &org_b, false, &uuid::Uuid::new_v4().to_string()).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    app.finish().await;
}

on_both_databases!(api_calls_arrive_over_amqp, event_triggers_run_the_right_tenants_functions);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_messages_are_answered_or_dead_lettered() {
    let EchoInOneOrg { names, app, t, org, cell } = echo_in_one_org().await;

    let cases: [(&str, &[u8], &str); 4] = [
        ("not-json", b"this is not json", "not JSON"),
        ("object", br#"{"id":"x","method":"GET"}"#, "[request, securityContext]"),
        ("no-org", br#"[{"id":"no-org","method":"GET","requestUri":"/api/org/a/b"},{"user":"u"}]"#, "[request, securityContext]"),
        ("bad-base64", br#"[{"id":"bad-base64","method":"POST","requestUri":"/api/org/a/b","body":"%%%"},{"org":"urn:vcloud:org:x"}]"#, "base64"),
    ];
    for (correlation, payload, says) in cases {
        cell.publish_raw(&names.exchange, &names.routing_key, payload, correlation, true).await;
        let (got, reply) = cell.next_reply(Duration::from_secs(30)).await.expect("every request gets a reply");
        assert_eq!(got, correlation);
        assert_eq!(reply["statusCode"], 400, "{reply}");
        assert!(reply_body(&reply).contains(says), "{correlation}: {}", reply_body(&reply));
    }
    // Without a reply address nobody can be answered: the message goes to the dead letters.
    cell.publish_raw(&names.exchange, &names.routing_key, b"[1,2]", "lost", false).await;
    let dead = format!("{}.dead-letter", names.api_queue);
    let start = Instant::now();
    let letter = loop {
        if let Some(m) = cell.channel.basic_get(dead.as_str().into(), lapin::options::BasicGetOptions { no_ack: true }).await.unwrap() {
            break m;
        }
        assert!(start.elapsed() < Duration::from_secs(20), "nothing reached {dead}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(letter.delivery.data, b"[1,2]");
    // The consumer keeps working after all that.
    let ok = cell.call(&names, &request("after", "GET", &format!("/api/org/{}/echo", t.org), None, b"", &org)).await;
    assert_eq!(ok["statusCode"], 200);
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redelivered_request_runs_once() {
    let names = Names::new();
    let app = platform(Db::Sqlite, &names).await;
    let org = org_urn();
    let t = app.tenant_with(json!({"vcd_org_id": org})).await;
    app.deploy(&t.dev, "slow", "nodejs", "module.exports = async () => { await new Promise(r => setTimeout(r, 300)); return 'done ' + Math.random(); };").await;
    let cell = FakeCell::connect().await;
    let message = request("same-id", "GET", &format!("/api/org/{}/slow", t.org), None, b"", &org);
    // Both copies arrive while the first still runs, then once more after it answered.
    cell.publish_raw(&names.exchange, &names.routing_key, message.to_string().as_bytes(), "first", true).await;
    cell.publish_raw(&names.exchange, &names.routing_key, message.to_string().as_bytes(), "second", true).await;
    let mut bodies = Vec::new();
    for _ in 0..2 {
        let (_, reply) = cell.next_reply(Duration::from_secs(30)).await.expect("a reply per copy");
        assert_eq!(reply["statusCode"], 200);
        bodies.push(reply_body(&reply));
    }
    let third = cell.call(&names, &message).await;
    bodies.push(reply_body(&third));
    assert!(bodies.iter().all(|b| b == &bodies[0] && b.starts_with("done ")), "{bodies:?}");
    let calls: Value = app.get(&t.dev, "/api/v1/functions/slow/invocations").await.json().await.unwrap();
    assert_eq!(calls.as_array().unwrap().len(), 1, "the function ran more than once: {calls}");
    app.finish().await;
}
