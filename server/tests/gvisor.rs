//! gVisor as a tenant's sandbox, on an engine of the test's own (a `dockerd` in its own network
//! namespace) that starts without gVisor: the provider cannot choose it there, a call of a
//! runc tenant is warm while `scripts/register-gvisor.sh` adds runsc to that engine, and its
//! container keeps serving; then the other tenant's functions run under gVisor's own kernel.
mod common;

use common::cluster::Host;
use common::{json_of, Db, TestApp};
use reqwest::StatusCode;
use serde_json::json;
use std::collections::HashMap;
use std::process::Command;

const WHO: &str = "import os\n\ndef handle(event, context):\n    return {\"kernel\": os.uname().release, \"uid\": os.getuid()}\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gvisor_is_offered_once_registered_and_the_registration_leaves_runc_containers_alone() {
    let host = Host::start(9).await;
    host.seed_images(&["vcd-faas/runtime-python:bookworm"]).await;
    let docker_host = host.docker_host.clone();
    let app = TestApp::spawn_with(Db::Sqlite, |c| c.docker_host = Some(docker_host)).await;
    let plain = app.tenant().await;
    let strict = app.tenant().await;
    app.deploy(&plain.dev, "who", "python", WHO).await;
    app.deploy(&strict.dev, "who", "python", WHO).await;

    // A runc tenant's function is warm: this is the container the registration must not touch.
    let (status, before) = json_of(app.call(Some(&plain.dev), &plain.org, "who").await).await;
    assert_eq!(status, StatusCode::OK, "{before}");
    let host_kernel = before["kernel"].as_str().unwrap().to_string();
    let running = || async {
        let engine = host.docker().await;
        let filters = HashMap::from([("label".to_string(), vec![format!("vcd-faas.tenant={}", plain.org)])]);
        let options = bollard::query_parameters::ListContainersOptions { filters: Some(filters), ..Default::default() };
        engine.list_containers(Some(options)).await.unwrap().into_iter().filter_map(|c| c.id).collect::<Vec<_>>()
    };
    let warm = running().await;
    assert_eq!(warm.len(), 1, "one running container of the runc tenant: {warm:?}");

    // The engine has no runsc yet: the provider is told what to do, and nothing changes.
    let refused = app.put(&app.admin_token, &format!("/api/v1/tenants/{}", strict.org), json!({"sandbox": "gvisor"})).await;
    let (status, body) = json_of(refused).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let message = body.to_string();
    assert!(message.contains("sandbox") && message.contains("no runtime \\\"runsc\\\"") && message.contains("scripts/setup.sh"), "{message}");
    let bad = app.put(&app.admin_token, &format!("/api/v1/tenants/{}", strict.org), json!({"sandbox": "kata"})).await;
    let (status, body) = json_of(bad).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body.to_string().contains(r#"sandbox must be \"runc\" or \"gvisor\""#), "{body}");
    // Only the provider chooses it.
    let own = app.put(&strict.admin, &format!("/api/v1/tenants/{}", strict.org), json!({"sandbox": "runc"})).await;
    assert_eq!(own.status(), StatusCode::FORBIDDEN);

    // The provider registers gVisor with this engine, as scripts/setup.sh does with the main one.
    let out = Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/register-gvisor.sh"))
        .env("DOCKER_DAEMON_JSON", host.dir.join("daemon.json"))
        .env("DOCKER_PIDFILE", host.dir.join("docker.pid"))
        .env("DOCKER_HOST", &host.docker_host)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    let daemon_json = std::fs::read_to_string(host.dir.join("daemon.json")).unwrap();
    assert!(daemon_json.contains("deprecated-key-path") && daemon_json.contains("--host-uds=all"), "settings kept, runsc added: {daemon_json}");
    assert_eq!(running().await, warm, "the reload kept the runc container running");
    let (status, again) = json_of(app.call(Some(&plain.dev), &plain.org, "who").await).await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(running().await, warm, "and it still serves the runc tenant's calls");

    let chosen = app.put(&app.admin_token, &format!("/api/v1/tenants/{}", strict.org), json!({"sandbox": "gvisor"})).await;
    let (status, tenant) = json_of(chosen).await;
    assert_eq!(status, StatusCode::OK, "{tenant}");
    assert_eq!(tenant["sandbox"], "gvisor");
    let (status, inside) = json_of(app.call(Some(&strict.dev), &strict.org, "who").await).await;
    assert_eq!(status, StatusCode::OK, "{inside}");
    assert_eq!(inside["uid"], 10001);
    assert_ne!(inside["kernel"].as_str().unwrap(), host_kernel, "gVisor's kernel answers, not the host's: {inside}");
    let (_, still_runc) = json_of(app.call(Some(&plain.dev), &plain.org, "who").await).await;
    assert_eq!(still_runc["kernel"].as_str().unwrap(), host_kernel, "the other tenant stays on runc");

    // Back to runc: the next call runs on the host's kernel again, in a new container.
    let back = app.put(&app.admin_token, &format!("/api/v1/tenants/{}", strict.org), json!({"sandbox": "runc"})).await;
    assert_eq!(back.status(), StatusCode::OK);
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await; // the routes are read anew each second
    let (status, after) = json_of(app.call(Some(&strict.dev), &strict.org, "who").await).await;
    assert_eq!(status, StatusCode::OK, "{after}");
    assert_eq!(after["kernel"].as_str().unwrap(), host_kernel, "{after}");
    app.finish().await;
    drop(host);
}
