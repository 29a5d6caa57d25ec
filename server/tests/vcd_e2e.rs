//! The whole vCD path with vcd-sim playing vCD: registration of the extension service and its
//! API filters, calls through vCD's front door → RabbitMQ → platform → container → reply,
//! notifications running the right tenant's function, session renewal, repair of filters
//! across a restart of the real server binary, and `vcd-faas vcd unregister`.

mod common;

use common::amqp::{wait_for_queue, Names};
use common::sim::Sim;
use common::binary::{free_port, post, setup_tenant, Server};
use common::{unique, Db, TestApp};
use reqwest::{Client, Method, StatusCode};
use serde_json::{json, Value};
use std::process::Stdio;
use std::time::{Duration, Instant};

const HELLO: &str = r#"module.exports = async (e) => ({ greeting: "hello " + JSON.parse(e.body || "{}").name, path: e.path, org: e.headers["x-vcd-org"] });"#;

fn pattern(org: &str, name: &str) -> String {
    format!("/api/org/{org}/{name}(/.*)?")
}

/// Polls `check` every 200 ms until it holds; panics with `what` after `within`.
async fn eventually<F: std::future::Future<Output = bool>>(within: Duration, what: &str, mut check: impl FnMut() -> F) {
    let start = Instant::now();
    while !check().await {
        assert!(start.elapsed() < within, "{what} (waited {within:?})");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_and_events_flow_through_vcd() {
    common::amqp::sweep_earlier_test_objects().await;
    let names = Names::new();
    let (org_a, org_b) = (unique("acme"), unique("globex"));
    let sim = Sim::start(&names, &[&org_a, &org_b]).await;
    let app = TestApp::spawn_with(Db::Sqlite, |config| {
        names.apply(config);
        sim.apply(config);
    })
    .await;
    wait_for_queue(&names.api_queue).await;
    let a = app.tenant_with(json!({"vcd_org_id": sim.org_id(&org_a).await})).await;
    let b = app.tenant_with(json!({"vcd_org_id": sim.org_id(&org_b).await})).await;

    // A ready function is registered in vCD as one API filter.
    app.deploy(&a.dev, "hello", "nodejs", HELLO).await;
    let f = app.wait_until(&a.dev, "hello", Duration::from_secs(30), |f| f["registration"]["state"] == "registered").await;
    assert!(f["registration"]["detail"].as_str().unwrap().contains(&pattern(&a.org, "hello")), "{f}");
    assert_eq!(sim.filters("vcd-faas").await, Some(vec![pattern(&a.org, "hello")]));

    // Through vCD's front door, as a user of the tenant's org.
    let route = format!("/api/org/{}/hello/greet", a.org);
    let r = sim.call(&format!("alice@{org_a}"), Method::POST, &route, r#"{"name":"vcd"}"#).await;
    assert_eq!(r.status(), StatusCode::OK);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["greeting"], "hello vcd");
    assert_eq!(body["path"], "/greet");
    assert_eq!(body["org"], sim.org_id(&org_a).await);
    // A user of another org reaches nothing, as if the function did not exist.
    let r = sim.call(&format!("bob@{org_b}"), Method::POST, &route, "{}").await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let r = sim.call(&format!("bob@{org_b}"), Method::GET, &format!("/api/org/{}/nothing", a.org), "").await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND, "no filter matches an unknown function");

    // "VM created" in org A runs A's event function, and B's (same trigger) does not run.
    let code = r#"module.exports = async (e) => { console.log("vm created: " + JSON.parse(e.body).entity); return "ok"; };"#;
    let trigger = json!({"type": "vcd-event", "event": "com/vmware/vcloud/event/vm/create"});
    for t in [&a, &b] {
        app.create_with(&t.dev, json!({"name": "on-vm", "language": "nodejs", "code": code, "trigger": trigger})).await;
        assert_eq!(app.wait_built(&t.dev, "on-vm").await["status"], "ready");
    }
    let events_of = |token: String| {
        let app = &app;
        async move {
            let calls: Value = app.get(&token, "/api/v1/functions/on-vm/invocations").await.json().await.unwrap();
            calls.as_array().unwrap().iter().filter(|c| c["trigger"] == "event" && c["status_code"] == 200).cloned().collect::<Vec<_>>()
        }
    };
    // The events queue binds the trigger's key shortly after the functions appear: send until one runs.
    let started = Instant::now();
    let entity = loop {
        if let Some(run) = events_of(a.dev.clone()).await.first() {
            break run["logs"].as_str().unwrap().to_string();
        }
        assert!(started.elapsed() < Duration::from_secs(30), "a VM-created notification never ran A's function");
        sim.notify("com/vmware/vcloud/event/vm/create", &org_a).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert!(entity.contains("vm created: urn:vcloud:vm:"), "{entity}");
    assert!(events_of(b.dev.clone()).await.is_empty(), "tenant B's function ran for org A's event");
    let on_vm = app.function(&a.dev, "on-vm").await;
    assert_eq!(on_vm["registration"]["state"], "local", "event functions get no API filter");

    // vCD ends the platform's session: it logs in again and goes on registering.
    sim.expire_sessions().await;
    app.deploy(&a.dev, "second", "nodejs", HELLO).await;
    app.wait_until(&a.dev, "second", Duration::from_secs(30), |f| f["registration"]["state"] == "registered").await;
    let mut both = vec![pattern(&a.org, "hello"), pattern(&a.org, "second")];
    both.sort();
    assert_eq!(sim.filters("vcd-faas").await, Some(both));

    // A deleted function's filter goes away.
    assert!(app.delete(&a.dev, "/api/v1/functions/hello").await.status().is_success());
    eventually(Duration::from_secs(20), "the deleted function's filter stayed in vCD", || {
        let (sim, want) = (&sim, vec![pattern(&a.org, "second")]);
        async move { sim.filters("vcd-faas").await == Some(want) }
    })
    .await;
    app.finish().await;
}

async fn start_platform(dir: &std::path::Path, sim: &Sim, names: &Names) -> Server {
    common::binary::start(dir, free_port(), &sim.env(names)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registration_is_repaired_after_a_restart_and_unregister_removes_it() {
    common::amqp::sweep_earlier_test_objects().await;
    let names = Names::new();
    let sim_org = unique("initech");
    let sim = Sim::start(&names, &[&sim_org]).await;
    let dir = tempfile::tempdir().unwrap();
    let client = Client::new();
    let server = start_platform(dir.path(), &sim, &names).await;
    let base = server.base.clone();
    let (org, dev) = setup_tenant(&client, &base, json!({"vcd_org_id": sim.org_id(&sim_org).await})).await;
    post(&client, format!("{base}/api/v1/functions"), Some(&dev), json!({"name": "kept", "language": "nodejs", "code": HELLO})).await;
    let want = vec![pattern(&org, "kept")];
    eventually(Duration::from_secs(120), "the function was never registered", || {
        let (sim, want) = (&sim, want.clone());
        async move { sim.filters("vcd-faas").await == Some(want) }
    })
    .await;
    drop(server);

    // While the platform is down, someone removes its filter and adds one it never made.
    let state = sim.state().await;
    let service = &state["services"].as_array().unwrap().iter().find(|s| s["name"] == "vcd-faas").unwrap().clone();
    let service_uuid = service["id"].as_str().unwrap().rsplit(':').next().unwrap().to_string();
    let filter_uuid = service["filters"][0]["id"].as_str().unwrap().rsplit(':').next().unwrap().to_string();
    let token = sim.admin_token().await;
    let r = client
        .delete(format!("{}/api/admin/extension/service/apifilter/{filter_uuid}", sim.base))
        .bearer_auth(&token)
        .header("Accept", "application/*+xml;version=37.0")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let stale = server::vcd::xml::api_filter("/api/org/gone/away(/.*)?");
    let r = client
        .post(format!("{}/api/admin/extension/service/{service_uuid}/apifilters", sim.base))
        .bearer_auth(&token)
        .header("Accept", "application/*+xml;version=37.0")
        .header("Content-Type", "application/vnd.vmware.admin.apiFilter+xml")
        .body(stale)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(sim.filters("vcd-faas").await, Some(vec!["/api/org/gone/away(/.*)?".to_string()]));

    // At start-up the platform puts vCD back in step with its functions.
    let server = start_platform(dir.path(), &sim, &names).await;
    eventually(Duration::from_secs(30), "the filters were not repaired after the restart", || {
        let (sim, want) = (&sim, want.clone());
        async move { sim.filters("vcd-faas").await == Some(want) }
    })
    .await;
    // And the function answers through vCD.
    let r = sim.call(&format!("carol@{sim_org}"), Method::POST, &format!("/api/org/{org}/kept"), r#"{"name":"again"}"#).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.json::<Value>().await.unwrap()["greeting"], "hello again");
    drop(server);

    // `vcd-faas vcd unregister` disables and deletes the service.
    let out = common::binary::command(dir.path(), &sim.env(&names)).args(["vcd", "unregister"]).stdout(Stdio::piped()).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("disabled and deleted"));
    assert_eq!(sim.filters("vcd-faas").await, None);
    let r = sim.call(&format!("carol@{sim_org}"), Method::GET, &format!("/api/org/{org}/kept"), "").await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);

    // Leave no function images behind: start once more without vCD and delete the function.
    let server = start_platform(dir.path(), &sim, &names).await;
    let r = client.delete(format!("{}/api/v1/functions/kept", server.base)).bearer_auth(&dev).send().await.unwrap();
    assert!(r.status().is_success());
    tokio::time::sleep(Duration::from_secs(2)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_older_vcd_is_reached_through_the_legacy_login() {
    common::amqp::sweep_earlier_test_objects().await;
    let names = Names::new();
    let org_name = unique("legacy");
    let sim = Sim::start_with(&names, &[&org_name], &["--legacy-only"]).await;
    let app = TestApp::spawn_with(Db::Sqlite, |config| {
        names.apply(config);
        sim.apply(config);
    })
    .await;
    let t = app.tenant_with(json!({"vcd_org_id": sim.org_id(&org_name).await})).await;
    app.deploy(&t.dev, "old", "nodejs", HELLO).await;
    app.wait_until(&t.dev, "old", Duration::from_secs(30), |f| f["registration"]["state"] == "registered").await;
    assert_eq!(sim.filters("vcd-faas").await, Some(vec![pattern(&t.org, "old")]));
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_vcd_is_retried_and_the_function_still_serves_locally() {
    let names = Names::new();
    let app = TestApp::spawn_with(Db::Sqlite, |config| {
        names.apply(config);
        // A port nothing listens on.
        config.vcd.vcd_url = Some(format!("http://127.0.0.1:{}", free_port()));
        config.vcd.vcd_password = Some(server::config::Secret("pw".into()));
    })
    .await;
    let t = app.tenant().await;
    app.deploy(&t.dev, "alone", "nodejs", "module.exports = async () => 'still here';").await;
    let f = app.wait_until(&t.dev, "alone", Duration::from_secs(30), |f| f["registration"]["state"] == "failed").await;
    let registration = &f["registration"];
    assert!(registration["detail"].as_str().unwrap().contains("cannot reach vCD"), "{registration}");
    assert!(registration["next_retry_at"].as_i64().unwrap() > server::store::now_ms() - 1000, "{registration}");
    let r = app.call(Some(&t.dev), &t.org, "alone").await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.text().await.unwrap(), "still here");
    app.finish().await;
}
