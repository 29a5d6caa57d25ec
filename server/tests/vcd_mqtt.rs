//! vCD over MQTT, played by vcd-sim on a private Mosquitto (WebSocket, logins managed by the
//! broker's dynamic-security plugin): the platform registers its API extension, keeps its API
//! filters equal to its functions, answers each API call once, for its own org only, answers
//! what it cannot read, renews its token, runs event-triggered functions of the event's tenant
//! only, and `vcd-faas vcd unregister` removes the extension.

mod common;

use common::amqp::Names;
use common::mqtt::{Broker, Watcher};
use common::sim::Sim;
use common::{Db, TestApp};
use reqwest::Method;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

const ECHO: &str = r#"module.exports = async (e) => ({ method: e.method, path: e.path, query: e.query, body: e.body,
  org: e.headers["x-vcd-org"], auth: e.headers["authorization"] || e.headers["x-vcloud-authorization"] || null });"#;
const SERVICE: &str = "vcd-faas";
const MONITOR: &str = "topic/extension/vcd-faas/vcd-faas/1.0.0/ext";
const RESPOND: &str = "topic/extension/vcd-faas/vcd-faas/1.0.0/vcd";

struct OnMqtt {
    broker: Broker,
    sim: Sim,
    app: TestApp,
}

/// A broker, vcd-sim on it with these orgs and flags, and the platform on SQLite speaking MQTT.
async fn platform_on_mqtt(orgs: &[&str], sim_flags: &[&str]) -> OnMqtt {
    platform_on_mqtt_with(orgs, sim_flags, |_| {}).await
}

async fn platform_on_mqtt_with(orgs: &[&str], sim_flags: &[&str], adjust: impl FnOnce(&mut server::config::Config)) -> OnMqtt {
    let names = Names::new();
    let broker = Broker::start();
    let mut flags = broker.sim_flags();
    flags.extend(sim_flags.iter().map(|f| f.to_string()));
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let sim = Sim::start_with(&names, orgs, &flags).await;
    let app = TestApp::spawn_with(Db::Sqlite, |config| {
        sim.apply_mqtt(config);
        adjust(config);
    })
    .await;
    OnMqtt { broker, sim, app }
}

/// A tenant whose vCD org is the sim's org `org`.
async fn tenant_of(on: &OnMqtt, org: &str) -> common::Tenant {
    on.app.tenant_with(json!({"vcd_org_id": on.sim.org_id(org).await})).await
}

async fn wait_for_filters(sim: &Sim, check: impl Fn(&[String]) -> bool) -> Vec<String> {
    let start = Instant::now();
    loop {
        let filters = sim.filters(SERVICE).await.unwrap_or_default();
        if check(&filters) {
            return filters;
        }
        assert!(start.elapsed() < Duration::from_secs(60), "the filters never got there: {filters:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Calls through the sim until the extension answers (its link may still be connecting).
async fn call_until_answered(sim: &Sim, user: &str, path: &str) -> reqwest::Response {
    let start = Instant::now();
    loop {
        let r = sim.call(user, Method::GET, path, "").await;
        if r.status() != 503 && r.status() != 504 {
            return r;
        }
        assert!(start.elapsed() < Duration::from_secs(60), "the extension never answered: {}", r.status());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn vcd_calls(app: &TestApp, token: &str, function: &str) -> Vec<Value> {
    let calls: Value = app.get(token, &format!("/api/v1/functions/{function}/invocations?trigger=vcd&limit=500")).await.json().await.unwrap();
    calls.as_array().cloned().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_calls_over_mqtt_answer_once_for_their_own_org() {
    let on = platform_on_mqtt(&["acme", "umbrella"], &["--api-versions", "37.0,38.0,38.1"]).await;
    let (a, b) = (tenant_of(&on, "acme").await, tenant_of(&on, "umbrella").await);
    on.app.deploy(&a.dev, "echo", "nodejs", ECHO).await;
    let echo_filter = format!("/api/org/{}/echo(/.*)?", a.org);
    wait_for_filters(&on.sim, |f| f.contains(&echo_filter)).await;

    // A call from the function's own org runs it and comes back as vCD's response.
    let path = format!("/api/org/{}/echo/items/7", a.org);
    let first = call_until_answered(&on.sim, "dev@acme", &path).await;
    assert_eq!(first.status(), 200);
    let r = on.sim.call("dev@acme", Method::POST, &format!("{path}?x=1&y=two"), "{\"n\":42}").await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!((body["method"].as_str(), body["path"].as_str()), (Some("POST"), Some("/items/7")));
    assert_eq!(body["query"], json!({"x": "1", "y": "two"}));
    assert_eq!(body["body"], "{\"n\":42}");
    assert_eq!(body["org"], on.sim.org_id("acme").await);
    assert_eq!(body["auth"], Value::Null, "vCD's session token must not reach the function");

    // Another org calling A's route gets the 404 of a missing function, and nothing runs.
    let other = on.sim.call("dev@umbrella", Method::GET, &path, "").await;
    assert_eq!(other.status(), 404);
    assert_eq!(other.text().await.unwrap(), format!("{{\"error\":\"no function \\\"echo\\\" in org \\\"{}\\\"\"}}", a.org));
    let calls = vcd_calls(&on.app, &a.dev, "echo").await;
    assert_eq!(calls.len(), 2, "only the two calls of A's own org ran: {calls:?}");
    assert!(calls.iter().all(|c| c["trigger"] == "vcd"));

    // Every request got exactly one answer.
    let answers = on.sim.state().await["mqttAnswers"].clone();
    assert_eq!(answers["unmatched"], 0, "{answers}");

    // The filters follow the functions: a new one gets its filter, a deleted one loses it.
    on.app.deploy(&b.dev, "other", "nodejs", "module.exports = async () => 'b';").await;
    let other_filter = format!("/api/org/{}/other(/.*)?", b.org);
    wait_for_filters(&on.sim, |f| f.contains(&other_filter)).await;
    assert_eq!(on.app.function(&b.dev, "other").await["registration"]["state"], "registered");
    assert_eq!(on.app.delete(&a.dev, "/api/v1/functions/echo").await.status(), 204);
    let filters = wait_for_filters(&on.sim, |f| !f.contains(&echo_filter)).await;
    assert_eq!(filters, vec![other_filter]);
    assert_eq!(on.sim.call("dev@umbrella", Method::GET, &format!("/api/org/{}/other", b.org), "").await.text().await.unwrap(), "b");

    // The provider sees the links.
    let metrics = on.app.get(&on.app.admin_token, "/metrics").await.text().await.unwrap();
    assert!(metrics.contains("vcdfaas_mqtt_connected{link=\"api\"} 1"), "{metrics}");
    let links: Value = on.app.get(&on.app.admin_token, "/api/v1/links").await.json().await.unwrap();
    let api_link = links.as_array().unwrap().iter().find(|l| l["name"] == "MQTT: vCD API calls").expect("the MQTT link is listed").clone();
    assert_eq!(api_link["state"], "up", "{api_link}");

    // `vcd-faas vcd unregister` removes the extension, its filters and its token.
    let env = [
        ("VCD_URL".to_string(), on.sim.base.clone()),
        ("VCD_USER".to_string(), "administrator@System".to_string()),
        ("VCD_PASSWORD".to_string(), common::sim::ADMIN_PASSWORD.to_string()),
    ];
    let dir = tempfile::tempdir().unwrap();
    let out = common::binary::command(dir.path(), &env).args(["vcd", "unregister"]).stdout(std::process::Stdio::piped()).output().unwrap();
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{printed}");
    assert!(printed.contains("MQTT API extension urn:vcloud:extension-api:vcd-faas:vcd-faas:1.0.0 disabled and deleted"), "{printed}");
    assert!(on.sim.filters(SERVICE).await.is_none(), "the extension is still there");
    on.app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_picks_mqtt_on_a_vcd_that_offers_it_with_the_legacy_filters_before_38_1() {
    let names = Names::new();
    let broker = Broker::start();
    let flags = broker.sim_flags();
    let sim = Sim::start_with(&names, &["acme"], &flags.iter().map(String::as_str).collect::<Vec<_>>()).await;
    let app = TestApp::spawn_with(Db::Sqlite, |config| {
        sim.apply_mqtt(config);
        config.vcd.vcd_transport = server::config::VcdTransport::Auto;
    })
    .await;
    let on = OnMqtt { broker, sim, app };
    let a = tenant_of(&on, "acme").await;
    on.app.deploy(&a.dev, "hello", "python", "def handle(event, context):\n    return 'hi ' + context['tenant']\n").await;
    // API 37.0: the filter goes through the legacy XML endpoint of the extension's service.
    wait_for_filters(&on.sim, |f| f.contains(&format!("/api/org/{}/hello(/.*)?", a.org))).await;
    let r = call_until_answered(&on.sim, "dev@acme", &format!("/api/org/{}/hello", a.org)).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), format!("hi {}", a.org));
    on.app.finish().await;

    // A vCD too old for MQTT extensions: auto takes AMQP, which then needs its broker.
    let old = Sim::start_with(&names, &["acme"], &["--api-versions", "33.0,34.0,35.0"]).await;
    let dir = tempfile::tempdir().unwrap();
    let mut config = server::config::Config::for_tests(dir.path().join("data"), format!("sqlite://{}/t.db", dir.path().display()));
    old.apply(&mut config);
    config.vcd.vcd_transport = server::config::VcdTransport::Auto;
    let error = server::startup::build(config).await.err().expect("no AMQP_URL for the AMQP that auto chose");
    assert!(error.to_string().contains("AMQP_URL"), "{error}");

    // A transport that does not exist stops the binary at once, naming the ones that do.
    let out = common::binary::command(dir.path(), &[("VCD_TRANSPORT".to_string(), "foo".to_string())])
        .stderr(std::process::Stdio::piped())
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(said.contains("foo") && said.contains("amqp") && said.contains("mqtt") && said.contains("auto"), "{said}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_slow_and_repeated_requests_are_answered_once() {
    // vCD waits 3 s here.
    let on = platform_on_mqtt_with(&["acme"], &[], |config| config.vcd.vcd_extensibility_timeout_secs = 3).await;
    let a = tenant_of(&on, "acme").await;
    let slow = "module.exports = async () => { await new Promise(r => setTimeout(r, 300)); return 'done ' + Math.random(); };";
    on.app.deploy(&a.dev, "slow", "nodejs", slow).await;
    let org = on.sim.org_id("acme").await;
    let watcher = Watcher::connect(&on.broker, &[RESPOND]).await;
    let b64 = |text: &str| {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(text)
    };
    let request = |id: &str, uri: &str, org: &str| {
        let payload = json!({"message": {"request": true, "id": id, "method": "GET", "requestUri": uri, "queryString": null,
            "headers": {"Accept": "application/json"}, "body": ""},
            "securityContext": {"user": "urn:vcloud:user:1", "org": org, "apiAccessToken": "t", "rights": null}, "context": {}});
        json!({"type": "API_REQUEST", "headers": {"requestId": id, "context": {"org": org}}, "httpRequest": b64(&payload.to_string())}).to_string()
    };
    let answer_to = |id: String| {
        let watcher = &watcher;
        async move {
            loop {
                let (_, answer) = watcher.next(Duration::from_secs(30)).await.expect("an answer");
                if answer["headers"]["requestId"] == id.as_str() {
                    return answer;
                }
            }
        }
    };
    let route = format!("/api/org/{}/slow", a.org);
    // Wait for the platform's subscription: ask until answered.
    let start = Instant::now();
    let warm = loop {
        let id = uuid::Uuid::new_v4().to_string();
        watcher.publish(MONITOR, request(&id, &route, &org)).await;
        if let Some((_, answer)) = watcher.next(Duration::from_secs(2)).await {
            break answer;
        }
        assert!(start.elapsed() < Duration::from_secs(60), "the extension never answered");
    };
    assert_eq!(warm["type"], "API_RESPONSE");
    assert_eq!(warm["httpResponse"]["statusCode"], 200, "{warm}");
    while watcher.next(Duration::from_secs(2)).await.is_some() {} // answers of the earlier tries

    let cases = [
        ("no-type", json!({"headers": {"requestId": "no-type"}}).to_string(), "\"type\""),
        ("no-http", json!({"type": "API_REQUEST", "headers": {"requestId": "no-http"}}).to_string(), "httpRequest"),
        ("bad-b64", json!({"type": "API_REQUEST", "headers": {"requestId": "bad-b64"}, "httpRequest": "%%%"}).to_string(), "base64"),
        ("not-payload", json!({"type": "API_REQUEST", "headers": {"requestId": "not-payload"}, "httpRequest": b64("[1]")}).to_string(), "payload"),
        ("no-org", request("no-org", &route, ""), "org"),
    ];
    // Not JSON at all carries no request id: nobody can be answered, and nothing breaks.
    watcher.publish(MONITOR, "this is not json").await;
    for (id, message, says) in &cases {
        watcher.publish(MONITOR, message.clone()).await;
        let answer = answer_to(id.to_string()).await;
        assert_eq!(answer["httpResponse"]["statusCode"], 400, "{answer}");
        use base64::Engine as _;
        let body = base64::engine::general_purpose::STANDARD.decode(answer["httpResponse"]["body"].as_str().unwrap()).unwrap();
        let message = serde_json::from_slice::<Value>(&body).unwrap()["message"].as_str().unwrap().to_string();
        assert!(message.contains(says), "{id}: {message}");
    }

    // An unknown org is answered 404 and runs nothing.
    watcher.publish(MONITOR, request("stranger", &route, "urn:vcloud:org:00000000-0000-0000-0000-000000000001")).await;
    assert_eq!(answer_to("stranger".into()).await["httpResponse"]["statusCode"], 404);

    // The same request id twice, the second while the first runs: one run, one answer.
    let before = vcd_calls(&on.app, &a.dev, "slow").await.len();
    watcher.publish(MONITOR, request("twice", &route, &org)).await;
    watcher.publish(MONITOR, request("twice", &route, &org)).await;
    assert_eq!(answer_to("twice".into()).await["httpResponse"]["statusCode"], 200);
    if let Some((_, extra)) = watcher.next(Duration::from_secs(3)).await {
        panic!("a second answer arrived: {extra}");
    }
    assert_eq!(vcd_calls(&on.app, &a.dev, "slow").await.len(), before + 1, "the repeated request ran twice");

    // A call that outlasts vCD's wait is answered 504, in time, saying why; once.
    on.app.deploy(&a.dev, "sleepy", "nodejs", "module.exports = async () => { await new Promise(r => setTimeout(r, 6000)); return 'late'; };").await;
    let sent = Instant::now();
    watcher.publish(MONITOR, request("sleepy", &format!("/api/org/{}/sleepy", a.org), &org)).await;
    let answer = answer_to("sleepy".into()).await;
    assert!(sent.elapsed() < Duration::from_secs(3), "answered after {:?}, when vCD stopped waiting", sent.elapsed());
    assert_eq!(answer["httpResponse"]["statusCode"], 504, "{answer}");
    if let Some((_, extra)) = watcher.next(Duration::from_secs(5)).await {
        panic!("the function's late answer was sent too: {extra}");
    }
    on.app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mqtt_events_run_only_their_tenants_functions() {
    let on = platform_on_mqtt(&["acme", "umbrella"], &[]).await;
    let (a, b) = (tenant_of(&on, "acme").await, tenant_of(&on, "umbrella").await);
    let code = r#"module.exports = async (e) => { const n = JSON.parse(e.body); console.log("saw " + n.type + " in " + n.org); return "ok"; };"#;
    let vm_created = json!({"type": "vcd-event", "event": "com/vmware/vcloud/event/vm/create"});
    for t in [&a, &b] {
        on.app.create_with(&t.dev, json!({"name": "on-vm", "language": "nodejs", "code": code, "trigger": vm_created})).await;
        assert_eq!(on.app.wait_built(&t.dev, "on-vm").await["status"], "ready");
    }
    let events_of = |t: &common::Tenant| {
        let (app, token) = (&on.app, t.dev.clone());
        async move {
            let calls: Value = app.get(&token, "/api/v1/functions/on-vm/invocations?trigger=event").await.json().await.unwrap();
            calls.as_array().cloned().unwrap_or_default()
        }
    };
    // The subscription follows the triggers: notify until A's function ran.
    let start = Instant::now();
    while events_of(&a).await.iter().all(|r| r["status_code"] != 200) {
        assert!(start.elapsed() < Duration::from_secs(60), "an acme event never ran tenant A's function");
        on.sim.notify("com/vmware/vcloud/event/vm/create", "acme").await;
        tokio::time::sleep(Duration::from_millis(700)).await;
    }
    let acme = on.sim.org_id("acme").await;
    let run = events_of(&a).await.into_iter().find(|r| r["status_code"] == 200).unwrap();
    assert!(run["logs"].as_str().unwrap().contains(&format!("saw com/vmware/vcloud/event/vm/create in {acme}")), "{run}");
    // Another event type runs nothing; tenant B's function never saw A's events.
    let a_runs = events_of(&a).await.len();
    on.sim.notify("com/vmware/vcloud/event/vm/delete", "acme").await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(events_of(&b).await.is_empty(), "tenant B's function ran for tenant A's event");
    // B's own event runs B's function only.
    on.sim.notify("com/vmware/vcloud/event/vm/create", "umbrella").await;
    let start = Instant::now();
    while events_of(&b).await.iter().all(|r| r["status_code"] != 200) {
        assert!(start.elapsed() < Duration::from_secs(30), "an umbrella event never ran tenant B's function");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert_eq!(events_of(&a).await.len(), a_runs, "an umbrella event (or the vm/delete one) ran tenant A's function");

    // vCD ends the sessions, and with them the events connection: the platform logs in again
    // and listens again.
    on.sim.expire_sessions().await;
    let start = Instant::now();
    while events_of(&a).await.len() == a_runs {
        assert!(start.elapsed() < Duration::from_secs(60), "no event ran after vCD ended the sessions");
        on.sim.notify("com/vmware/vcloud/event/vm/create", "acme").await;
        tokio::time::sleep(Duration::from_millis(700)).await;
    }
    assert!(on.sim.state().await["loginsEnded"].as_u64().unwrap() >= 1, "the sim closed no connection");
    let metrics = on.app.get(&on.app.admin_token, "/metrics").await.text().await.unwrap();
    assert!(metrics.contains("vcdfaas_mqtt_connected{link=\"events\"} 1"), "{metrics}");
    on.app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_extension_token_is_renewed_before_it_expires() {
    let mut on = platform_on_mqtt(&["acme"], &["--token-ttl-secs", "6"]).await;
    let a = tenant_of(&on, "acme").await;
    on.app.deploy(&a.dev, "echo", "nodejs", ECHO).await;
    let path = format!("/api/org/{}/echo", a.org);
    assert_eq!(call_until_answered(&on.sim, "dev@acme", &path).await.status(), 200);
    let issued_before = on.sim.state().await["tokensIssued"].as_u64().unwrap();

    // Over two lifetimes of a token: every call is answered, and no login ever ran out.
    let start = Instant::now();
    let mut calls = 0;
    while start.elapsed() < Duration::from_secs(14) {
        let r = on.sim.call("dev@acme", Method::GET, &path, "").await;
        if r.status() != 200 {
            panic!("call {calls} after {:?}: {} {}\nbroker log:\n{}", start.elapsed(), r.status(), r.text().await.unwrap(), on.broker.log());
        }
        calls += 1;
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let state = on.sim.state().await;
    let issued = state["tokensIssued"].as_u64().unwrap();
    assert!(issued >= issued_before + 2, "{issued_before} tokens before, {issued} after 14 s of 6 s tokens");
    assert_eq!(state["loginsEnded"], 0, "an extension login ran out: its token was not renewed in time");

    // A new connection (the broker restarted) logs in with the current token.
    tokio::task::block_in_place(|| on.broker.restart(Duration::from_millis(500)));
    assert_eq!(call_until_answered(&on.sim, "dev@acme", &path).await.status(), 200);
    on.app.finish().await;
}

/// The real binary, killed and started again: it takes up its extension (a new token, the
/// dead process's one deleted), and calls through vCD go on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_platform_takes_up_its_extension_and_leaves_no_token_behind() {
    let names = Names::new();
    let broker = Broker::start();
    let flags = broker.sim_flags();
    let sim = Sim::start_with(&names, &["acme"], &flags.iter().map(String::as_str).collect::<Vec<_>>()).await;
    // RabbitMQ here carries only the asynchronous calls.
    let mut env = sim.env(&names);
    env.push(("VCD_TRANSPORT".into(), "mqtt".into()));
    let dir = tempfile::tempdir().unwrap();
    let client = reqwest::Client::new();
    let server = common::binary::start(dir.path(), common::binary::free_port(), &env).await;
    let (org, dev) = common::binary::setup_tenant(&client, &server.base, json!({"vcd_org_id": sim.org_id("acme").await})).await;
    let hello = json!({"name": "kept", "language": "nodejs", "code": "module.exports = async () => 'still here';"});
    common::binary::post(&client, format!("{}/api/v1/functions", server.base), Some(&dev), hello).await;
    let path = format!("/api/org/{org}/kept");
    wait_for_filters(&sim, |f| f.contains(&format!("{path}(/.*)?"))).await;
    let r = call_until_answered(&sim, "dev@acme", &path).await;
    assert_eq!(r.text().await.unwrap(), "still here");
    assert_eq!(sim.state().await["tokensLive"], 1);

    server.kill9();
    let server = common::binary::start(dir.path(), common::binary::free_port(), &env).await;
    let r = call_until_answered(&sim, "dev@acme", &path).await;
    assert_eq!((r.status().as_u16(), r.text().await.unwrap()), (200, "still here".to_string()));
    let state = sim.state().await;
    assert_eq!(state["tokensLive"], 1, "the killed process's token was left in vCD: {state}");
    assert_eq!(state["tokensIssued"], 2);
    server.terminate();
}

/// Two fronts of one installation (PostgreSQL): one consumes vCD's API calls, so each is
/// answered and run once; when it dies (the real binary, killed), the other takes over.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn of_two_fronts_one_answers_and_the_other_takes_over() {
    let names = Names::new();
    let broker = Broker::start();
    let flags = broker.sim_flags();
    let sim = Sim::start_with(&names, &["acme"], &flags.iter().map(String::as_str).collect::<Vec<_>>()).await;
    let shared = tempfile::tempdir().unwrap();
    let database = common::fresh_database(Db::Postgres, shared.path()).await;
    let mut env = sim.env(&names);
    env.extend(common::binary::shared_settings(&database));
    env.push(("VCD_TRANSPORT".into(), "mqtt".into()));
    let client = reqwest::Client::new();
    let first = common::binary::start_in(shared.path(), "first", &env).await;
    let (org, dev) = common::binary::setup_tenant(&client, &first.base, json!({"vcd_org_id": sim.org_id("acme").await})).await;
    let code = json!({"name": "count", "language": "nodejs", "code": "module.exports = async () => 'one';"});
    common::binary::post(&client, format!("{}/api/v1/functions", first.base), Some(&dev), code).await;
    let path = format!("/api/org/{org}/count");
    wait_for_filters(&sim, |f| f.contains(&format!("{path}(/.*)?"))).await;
    assert_eq!(call_until_answered(&sim, "dev@acme", &path).await.status(), 200);

    let key = env.iter().find(|(k, _)| k == "VCD_FAAS_SECRET_KEY").map(|(_, v)| v.clone());
    let second = TestApp::spawn_with(Db::Postgres, |config| {
        sim.apply_mqtt(config);
        config.database_url = Some(database.clone());
        config.secret_key = key.map(server::config::Secret);
    })
    .await;
    // The second front stands by.
    let start = Instant::now();
    loop {
        let links: Value = second.get(&second.admin_token, "/api/v1/links").await.json().await.unwrap();
        let api = links.as_array().unwrap().iter().find(|l| l["name"] == "MQTT: vCD API calls").cloned().unwrap();
        if api["detail"].as_str().unwrap_or_default().contains("standing by") {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "the second front does not stand by: {api}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    for _ in 0..10 {
        assert_eq!(sim.call("dev@acme", Method::GET, &path, "").await.status(), 200);
    }
    assert_eq!(sim.state().await["mqttAnswers"]["unmatched"], 0, "a call was answered twice");
    // The first front writes its call records a moment later.
    let start = Instant::now();
    let mut ran = 0;
    while start.elapsed() < Duration::from_secs(15) {
        ran = vcd_calls(&second, &dev, "count").await.len();
        if ran >= 11 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!((ran, vcd_calls(&second, &dev, "count").await.len()), (11, 11), "11 calls, each run once");

    // The first front dies: the second answers.
    first.kill9();
    let r = call_until_answered(&sim, "dev@acme", &path).await;
    assert_eq!((r.status().as_u16(), r.text().await.unwrap()), (200, "one".to_string()));
    second.finish().await;
}

/// Not a check, a measurement (`cargo test -p server --test vcd_mqtt -- --ignored --nocapture`):
/// the same warm function called 200 times in a row through vcd-sim's front door, with the
/// platform on vCD's MQTT broker, then on RabbitMQ.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn measure_call_latency_over_mqtt_and_amqp() {
    common::amqp::sweep_earlier_test_objects().await;
    let names = Names::new();
    let broker = Broker::start();
    let flags = broker.sim_flags();
    let sim = Sim::start_with(&names, &["acme"], &flags.iter().map(String::as_str).collect::<Vec<_>>()).await;
    for transport in ["mqtt", "amqp"] {
        let app = TestApp::spawn_with(Db::Sqlite, |config| match transport {
            "mqtt" => sim.apply_mqtt(config),
            _ => {
                sim.apply(config);
                names.apply(config);
            }
        })
        .await;
        let t = app.tenant_with(json!({"vcd_org_id": sim.org_id("acme").await})).await;
        app.deploy(&t.dev, "ping", "nodejs", "module.exports = async () => 'pong';").await;
        let path = format!("/api/org/{}/ping", t.org);
        for _ in 0..20 {
            call_until_answered(&sim, "dev@acme", &path).await;
        }
        let mut took: Vec<Duration> = Vec::new();
        for _ in 0..200 {
            let start = Instant::now();
            let r = sim.call("dev@acme", Method::GET, &path, "").await;
            assert_eq!(r.status(), 200);
            took.push(start.elapsed());
        }
        took.sort();
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        println!("{transport}: 200 calls through vcd-sim, median {:.1} ms, p90 {:.1} ms, max {:.1} ms", ms(took[100]), ms(took[180]), ms(took[199]));
        app.finish().await;
    }
}
