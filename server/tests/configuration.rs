//! A function's environment and secrets on the real Docker engine: the function reads them as
//! its environment (at module load too); a secret's value is sealed at rest and shows nowhere
//! else — not in the API, the build log, the call records, `docker inspect`, the database or the
//! log of a server process run at the most detailed level; a
//! change is a new version that serves at once, without a rebuild; the key is checked at start.

mod common;

use common::{json_of, Db, TestApp};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::time::Duration;

const SECRET: &str = "s3cr3t-Value-0451";

const NODE_READER: &str = "// Read when the module loads, as much code does.\nconst token = process.env.API_TOKEN;\n\
module.exports = async () => ({ greeting: process.env.GREETING || null, token: token || null, now: process.env.API_TOKEN || null });\n";

async fn call(app: &TestApp, token: &str, org: &str, name: &str) -> Value {
    let (status, body) = json_of(app.call(Some(token), org, name).await).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

/// Every place a tenant, the provider or a host user could read it from.
async fn assert_secret_nowhere(app: &TestApp, token: &str, name: &str, secret: &str) {
    for path in [
        format!("/api/v1/functions/{name}"),
        "/api/v1/functions".to_string(),
        format!("/api/v1/functions/{name}/versions"),
        format!("/api/v1/functions/{name}/versions/1"),
        format!("/api/v1/functions/{name}/invocations"),
    ] {
        let text = app.get(token, &path).await.text().await.unwrap();
        assert!(!text.contains(secret), "{path} shows the secret: {text}");
    }
    let provider_view = app.get(&app.admin_token, "/api/v1/functions").await.text().await.unwrap();
    assert!(!provider_view.contains(secret), "the provider's list shows it");
    for c in app.engine.list_function_containers().await.unwrap() {
        let inspect = std::process::Command::new("docker").args(["inspect", &c.id]).output().unwrap();
        assert!(!String::from_utf8_lossy(&inspect.stdout).contains(secret), "docker inspect {} shows it", c.name);
    }
    for image in app.engine.list_function_images().await.unwrap() {
        for args in [vec!["image", "inspect", &image.id], vec!["history", "--no-trunc", &image.id]] {
            let shown = std::process::Command::new("docker").args(&args).output().unwrap();
            assert!(!String::from_utf8_lossy(&shown.stdout).contains(secret), "docker {args:?} shows it");
        }
    }
    // At rest: the SQLite file holds it sealed only.
    let mut stored = Vec::new();
    for entry in walk(app.dir.path()) {
        stored.extend(std::fs::read(entry).unwrap_or_default());
    }
    assert!(!stored.windows(secret.len()).any(|w| w == secret.as_bytes()), "a file of the platform holds it in the clear");
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        match entry.file_type() {
            Ok(t) if t.is_dir() => out.extend(walk(&path)),
            Ok(t) if t.is_file() => out.push(path),
            _ => {}
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn functions_read_their_env_and_secrets_which_show_nowhere_else() {
    let app = TestApp::spawn(Db::Sqlite).await;
    let t = app.tenant().await;
    let spec = json!({"name": "reader", "language": "nodejs", "code": NODE_READER,
                      "env": {"GREETING": "hello"}, "secrets": {"API_TOKEN": SECRET}});
    let created = app.create_with(&t.dev, spec).await;
    assert_eq!((&created["env"], &created["secrets"]), (&json!({"GREETING": "hello"}), &json!(["API_TOKEN"])));
    app.wait_ready(&t.dev, "reader").await;
    assert_eq!(call(&app, &t.dev, &t.org, "reader").await, json!({"greeting": "hello", "token": SECRET, "now": SECRET}));
    assert_secret_nowhere(&app, &t.dev, "reader", SECRET).await;

    // A new value is a new version that serves at once, from the same image.
    let rotated = "rotated-Value-0452";
    let r = app.put(&t.dev, "/api/v1/functions/reader", json!({"secrets": {"API_TOKEN": rotated}})).await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let f = app.wait_until(&t.dev, "reader", Duration::from_secs(30), |f| f["version"] == 2).await;
    assert!(f["build_log"].as_str().unwrap().contains("no rebuild"), "{}", f["build_log"]);
    assert_eq!((&f["env"], &f["secrets"]), (&json!({"GREETING": "hello"}), &json!(["API_TOKEN"])), "left out, env stays");
    assert_eq!(call(&app, &t.dev, &t.org, "reader").await["token"], rotated);
    assert_secret_nowhere(&app, &t.dev, "reader", rotated).await;

    // New variables replace the old; a secret set to null goes.
    let r = app.put(&t.dev, "/api/v1/functions/reader", json!({"env": {"GREETING": "hej"}, "secrets": {"API_TOKEN": null}})).await;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let f = app.wait_until(&t.dev, "reader", Duration::from_secs(30), |f| f["version"] == 3).await;
    assert_eq!(f["secrets"], json!([]));
    assert_eq!(call(&app, &t.dev, &t.org, "reader").await, json!({"greeting": "hej", "token": null, "now": null}));
    // Each version keeps its own variables and secret names.
    let (_, v1) = json_of(app.get(&t.dev, "/api/v1/functions/reader/versions/1").await).await;
    assert_eq!((&v1["env"], &v1["secrets"]), (&json!({"GREETING": "hello"}), &json!(["API_TOKEN"])));

    // Another tenant cannot read or set them.
    let other = app.tenant().await;
    let r = app.put(&other.dev, &format!("/api/v1/functions/reader?org={}", t.org), json!({"secrets": {"X": "y"}})).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_functions_read_them_from_os_environ() {
    let app = TestApp::spawn(Db::Sqlite).await;
    let t = app.tenant().await;
    let code = "import os\nAT_LOAD = os.environ.get('DB_PASSWORD')\n\ndef handle(event, context):\n    \
                return {'mode': os.environ['MODE'], 'at_load': AT_LOAD, 'now': os.environ.get('DB_PASSWORD')}\n";
    let spec = json!({"name": "pyreader", "language": "python", "code": code, "env": {"MODE": "blue"}, "secrets": {"DB_PASSWORD": SECRET}});
    app.create_with(&t.dev, spec).await;
    app.wait_ready(&t.dev, "pyreader").await;
    assert_eq!(call(&app, &t.dev, &t.org, "pyreader").await, json!({"mode": "blue", "at_load": SECRET, "now": SECRET}));
    assert_secret_nowhere(&app, &t.dev, "pyreader", SECRET).await;
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_names_and_values_are_refused_at_the_name() {
    let app = TestApp::spawn(Db::Sqlite).await;
    let t = app.tenant().await;
    let cases = [
        (json!({"env": {"lower": "x"}}), "env/lower", "not a variable name"),
        (json!({"env": {"VCD_FAAS_TOKEN": "x"}}), "env/VCD_FAAS_TOKEN", "are the platform's"),
        (json!({"env": {"BIG": "x".repeat(4097)}}), "env/BIG", "the most is 4096"),
        (json!({"secrets": {"9LIVES": "x"}}), "secrets/9LIVES", "not a variable name"),
        (json!({"env": {"TOKEN": "a"}, "secrets": {"TOKEN": "b"}}), "env/TOKEN", "is also a secret"),
    ];
    for (extra, field, message) in cases {
        let mut spec = json!({"name": "bad", "language": "nodejs", "code": NODE_READER});
        spec.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        let (status, body) = json_of(app.post(&t.dev, "/api/v1/functions", spec).await).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{field}: {body}");
        assert_eq!(body["fields"][0]["field"], field, "{body}");
        assert!(body["fields"][0]["message"].as_str().unwrap().contains(message), "{body}");
    }
    let (status, _) = json_of(app.get(&t.dev, "/api/v1/functions/bad").await).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "nothing was made");
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_or_missing_key_stops_the_start() {
    use server::startup::{assemble, Docker};
    let dir = tempfile::tempdir().unwrap();
    let url = common::fresh_database(Db::Sqlite, dir.path()).await;
    let data = dir.path().join("data");
    let config = || server::config::Config::for_tests(data.clone(), url.clone());
    assemble(config(), Docker::Unconnected).await.expect("the first start makes the key");
    let key_file = data.join("secret.key");
    assert!(key_file.exists());
    let mut wrong = config();
    wrong.secret_key = Some(server::config::Secret("QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUE=".into()));
    let error = assemble(wrong, Docker::Unconnected).await.err().expect("another key is refused");
    assert!(error.contains("not the key that sealed them"), "{error}");
    let kept = std::fs::read(&key_file).unwrap();
    std::fs::remove_file(&key_file).unwrap();
    let error = assemble(config(), Docker::Unconnected).await.err().expect("a lost key file is not silently replaced");
    assert!(error.contains("restore") && error.contains("secret.key"), "{error}");
    assert!(!key_file.exists(), "no new key was made");
    std::fs::write(&key_file, kept).unwrap();
    assemble(config(), Docker::Unconnected).await.expect("the restored key opens it again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_never_reach_the_servers_own_log() {
    // The platform as an operator runs it, logging everything it can (RUST_LOG=trace).
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("server.log");
    let envs = [("RUST_LOG".to_string(), "trace".to_string())];
    let server = common::binary::start_logging_to(&dir.path().join("data"), common::binary::free_port(), &envs, &log).await;
    let client = reqwest::Client::builder().timeout(Duration::from_secs(120)).build().unwrap();
    let url = |path: &str| format!("{}{path}", server.base);
    let send = |request: reqwest::RequestBuilder, body: Value| async move {
        let r = request.json(&body).send().await.unwrap();
        json_of(r).await
    };
    let (org, dev) = common::binary::setup_tenant(&client, &server.base, json!({})).await;

    let (first, second) = ("log-Probe-first-8872", "log-Probe-second-1193");
    let spec = json!({"name": "reader", "language": "nodejs", "code": NODE_READER, "secrets": {"API_TOKEN": first}});
    let (status, body) = send(client.post(url("/api/v1/functions")).bearer_auth(&dev), spec).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let wait_version = |n: i64| {
        let (client, url, dev) = (client.clone(), url("/api/v1/functions/reader"), dev.clone());
        async move {
            for _ in 0..600 {
                let f: Value = client.get(&url).bearer_auth(&dev).send().await.unwrap().json().await.unwrap();
                if f["version"] == n {
                    return;
                }
                assert_ne!(f["build_status"], "failed", "{f}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            panic!("version {n} never served");
        }
    };
    wait_version(1).await;
    let call = |expected: &'static str| {
        let (client, url, dev) = (client.clone(), url(&format!("/api/org/{org}/reader")), dev.clone());
        async move {
            let answer: Value = client.get(&url).bearer_auth(&dev).send().await.unwrap().json().await.unwrap();
            assert_eq!(answer["now"], expected, "{answer}");
        }
    };
    call(first).await;
    let change = json!({"secrets": {"API_TOKEN": second}});
    let (status, body) = send(client.put(url("/api/v1/functions/reader")).bearer_auth(&dev), change).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    wait_version(2).await;
    call(second).await;

    // A clean stop (its warm containers go with it), then the whole log.
    server.terminate();
    let log = String::from_utf8_lossy(&std::fs::read(&log).unwrap()).into_owned();
    // The log is there and detailed: the grep below would find the value if it were written.
    assert!(log.contains("version ready") && log.contains("TRACE"), "the server logged little: {} bytes", log.len());
    for secret in [first, second] {
        assert!(!log.contains(secret), "the server's log holds a secret's value");
    }
}
