//! Functions with dependencies, built on the real Docker engine from package sources of the
//! test's own on 127.0.0.1 (verdaccio for npm, a PEP 503 index for pip): packages install and
//! answer through the platform, failures name the package manager's error, a code-only change
//! reuses the install, and an install script stays in its folder and reaches only the mirror.

mod common;

use common::mirrors::{NpmPackage, NpmRegistry, PythonIndex, Wheel};
use common::{json_of, Db, TestApp};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

const GREET_LIB: NpmPackage = NpmPackage {
    files: &[
        ("package.json", r#"{"name": "greet-lib", "version": "1.2.0", "main": "index.js"}"#),
        ("index.js", "exports.greet = (name) => `Hello, ${name}, from greet-lib`;\n"),
    ],
};

const NODE_HANDLER: &str = "const { shout } = require('./lib/util');\nconst table = require('./data/table.json');\n\
module.exports = async (event) => ({ message: shout(event.query.name || 'world'), rows: table.rows });\n";
const NODE_UTIL: &str = "const { greet } = require('greet-lib');\nexports.shout = (name) => greet(name).toUpperCase();\n";

fn node_files(handler: &str) -> Value {
    json!({
        "handler.js": handler,
        "lib/util.js": NODE_UTIL,
        "data/table.json": "{\"rows\": 3}",
        "package.json": "{\"name\": \"f\", \"version\": \"1.0.0\", \"dependencies\": {\"greet-lib\": \"^1.2.0\"}}",
    })
}

async fn answer(app: &TestApp, token: &str, org: &str, path: &str) -> Value {
    let (status, body) = json_of(app.call(Some(token), org, path).await).await;
    assert_eq!(status, 200, "{body}");
    body
}

/// Submits a change and waits for its version to be ready; how long that took.
async fn update_and_time(app: &TestApp, token: &str, name: &str, change: Value) -> (Value, Duration) {
    let started = Instant::now();
    let r = app.put(token, &format!("/api/v1/functions/{name}"), change).await;
    let (status, body) = json_of(r).await;
    assert_eq!(status, 202, "{body}");
    let wanted = body["latest_version"].clone();
    let f = app
        .wait_until(token, name, Duration::from_secs(240), |f| f["version"] == wanted || f["build_status"] == "failed")
        .await;
    assert_eq!(f["version"], wanted, "the change did not build: {}", f["build_log"]);
    (f, started.elapsed())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_packages_install_from_the_registry_and_code_only_changes_reuse_them() {
    let registry = NpmRegistry::start(&[GREET_LIB]);
    let url = registry.url.clone();
    let app = TestApp::spawn_with(Db::Sqlite, move |c| c.npm_registry = Some(url)).await;
    let t = app.tenant().await;
    let started = Instant::now();
    app.create_with(&t.dev, json!({"name": "greeter", "language": "nodejs", "files": node_files(NODE_HANDLER)})).await;
    let f = app.wait_ready(&t.dev, "greeter").await;
    println!("first build with a dependency install: {} ms", started.elapsed().as_millis());
    assert!(f["build_log"].as_str().unwrap().contains("dependencies: installing with npm install --no-package-lock from 127.0.0.1:"), "{}", f["build_log"]);
    let body = answer(&app, &t.dev, &t.org, "greeter?name=ada").await;
    assert_eq!(body, json!({"message": "HELLO, ADA, FROM GREET-LIB", "rows": 3}));

    // A code-only change reuses the installed packages.
    let changed = NODE_HANDLER.replace("rows: table.rows", "rows: table.rows + 1");
    let (f, took) = update_and_time(&app, &t.dev, "greeter", json!({"files": node_files(&changed)})).await;
    println!("code-only change after a dependency build, submit to ready: {} ms", took.as_millis());
    assert!(f["build_log"].as_str().unwrap().contains("reusing vcd-faas/deps-nodejs:"), "{}", f["build_log"]);
    assert_eq!(answer(&app, &t.dev, &t.org, "greeter?name=bo").await["rows"], 4);
    // The same change to a function without dependencies, for comparison.
    app.create_with(&t.dev, json!({"name": "plain", "language": "nodejs", "code": "module.exports = async () => 1;"})).await;
    app.wait_ready(&t.dev, "plain").await;
    let (_, plain) = update_and_time(&app, &t.dev, "plain", json!({"code": "module.exports = async () => 2;"})).await;
    println!("the same change to a function without dependencies: {} ms", plain.as_millis());

    // Another function, another tenant even, with the same manifest shares the install.
    let other = app.tenant().await;
    app.create_with(&other.dev, json!({"name": "twin", "language": "nodejs", "files": node_files(NODE_HANDLER)})).await;
    let twin = app.wait_ready(&other.dev, "twin").await;
    assert!(twin["build_log"].as_str().unwrap().contains("reusing vcd-faas/deps-nodejs:"), "{}", twin["build_log"]);
    assert_eq!(answer(&app, &other.dev, &other.org, "twin?name=cy").await["message"], "HELLO, CY, FROM GREET-LIB");

    // The installed packages stay while a version uses them, and go with the last one.
    let deps_image = deps_image_of(&twin);
    let reconcile = || async { server::ops::reconciler::reconcile(&app.service.reconciler(), 0, true).await.unwrap() };
    reconcile().await;
    assert!(app.engine.image_exists(&deps_image).await.unwrap(), "{deps_image} is in use");
    for (token, name) in [(&t.dev, "greeter"), (&other.dev, "twin")] {
        assert_eq!(app.delete(token, &format!("/api/v1/functions/{name}")).await.status(), 204);
    }
    let function_images_left = || async {
        let images = app.engine.list_function_images().await.unwrap();
        images.iter().all(|i| !["greeter", "twin"].contains(&i.labels.get("vcd-faas.function").map_or("", String::as_str))).then_some(())
    };
    app.eventually("the deleted functions' images are gone", Duration::from_secs(60), function_images_left).await;
    reconcile().await;
    assert!(!app.engine.image_exists(&deps_image).await.unwrap(), "{deps_image} outlived the functions that used it");
    app.finish().await;
}

/// The dependency image a build used, as its log names it.
fn deps_image_of(f: &Value) -> String {
    let log = f["build_log"].as_str().unwrap();
    let at = log.find("vcd-faas/deps-").expect("the log names the dependency image");
    log[at..].split_whitespace().next().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lock_file_installs_exactly_what_it_pins() {
    let newer = NpmPackage {
        files: &[
            ("package.json", r#"{"name": "greet-lib", "version": "1.3.0", "main": "index.js"}"#),
            ("index.js", "exports.greet = (name) => `Hi ${name}, from 1.3.0`;\n"),
        ],
    };
    let registry = NpmRegistry::start(&[GREET_LIB]);
    // The lock is made as a developer makes one, while 1.2.0 is the newest; 1.3.0 comes after.
    let manifest = "{\"name\": \"f\", \"version\": \"1.0.0\", \"dependencies\": {\"greet-lib\": \"^1.2.0\"}}";
    let lock = common::mirrors::lock_file(&registry, manifest);
    common::mirrors::publish(&registry, &newer);
    let url = registry.url.clone();
    let app = TestApp::spawn_with(Db::Sqlite, move |c| c.npm_registry = Some(url)).await;
    let t = app.tenant().await;
    let mut files = node_files(NODE_HANDLER);
    files["package-lock.json"] = json!(lock);
    app.create_with(&t.dev, json!({"name": "locked", "language": "nodejs", "files": files})).await;
    let f = app.wait_ready(&t.dev, "locked").await;
    assert!(f["build_log"].as_str().unwrap().contains("installing with npm ci from"), "{}", f["build_log"]);
    assert_eq!(answer(&app, &t.dev, &t.org, "locked?name=ada").await["message"], "HELLO, ADA, FROM GREET-LIB", "1.2.0 as locked, not 1.3.0");
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_packages_install_from_the_index() {
    let index = PythonIndex::start(&[Wheel {
        name: "greetpy",
        version: "2.0.1",
        files: &[("greetpy/__init__.py", "def greet(name):\n    return f'Hello, {name}, from greetpy'\n")],
    }]);
    let url = index.url.clone();
    let app = TestApp::spawn_with(Db::Sqlite, move |c| c.pip_index_url = Some(url)).await;
    let t = app.tenant().await;
    let files = json!({
        "handler.py": "import json\nfrom lib import util\n\ndef handle(event, context):\n    \
                       rows = json.load(open('data/table.json'))['rows']\n    return {'message': util.shout('ada'), 'rows': rows}\n",
        "lib/__init__.py": "",
        "lib/util.py": "import greetpy\n\ndef shout(name):\n    return greetpy.greet(name).upper()\n",
        "data/table.json": "{\"rows\": 5}",
        "requirements.txt": "# what the function needs\ngreetpy==2.0.1\n",
    });
    app.create_with(&t.dev, json!({"name": "pygreeter", "language": "python", "files": files})).await;
    let f = app.wait_ready(&t.dev, "pygreeter").await;
    assert!(f["build_log"].as_str().unwrap().contains("Successfully installed greetpy-2.0.1"), "{}", f["build_log"]);
    assert_eq!(answer(&app, &t.dev, &t.org, "pygreeter").await, json!({"message": "HELLO, ADA, FROM GREETPY", "rows": 5}));
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_packages_fail_with_the_package_managers_message_and_the_serving_version_stays() {
    let registry = NpmRegistry::start(&[GREET_LIB]);
    let index = PythonIndex::start(&[]);
    let (npm, pip) = (registry.url.clone(), index.url.clone());
    let app = TestApp::spawn_with(Db::Sqlite, move |c| {
        c.npm_registry = Some(npm);
        c.pip_index_url = Some(pip);
    })
    .await;
    let t = app.tenant().await;
    app.create_with(&t.dev, json!({"name": "steady", "language": "nodejs", "files": node_files(NODE_HANDLER)})).await;
    app.wait_ready(&t.dev, "steady").await;

    // A version that does not exist, then a package that does not exist: v1 keeps serving.
    for (manifest, wanted) in [
        (r#"{"dependencies": {"greet-lib": "9.9.9"}}"#, "greet-lib"),
        (r#"{"dependencies": {"no-such-package-here": "1.0.0"}}"#, "no-such-package-here"),
    ] {
        let mut files = node_files(NODE_HANDLER);
        files["package.json"] = json!(manifest);
        app.put(&t.dev, "/api/v1/functions/steady", json!({"files": files})).await;
        let f = app.wait_until(&t.dev, "steady", Duration::from_secs(240), |f| f["build_status"] == "failed").await;
        let error = f["build_error"].as_str().unwrap();
        assert!(error.starts_with("npm: ") && error.contains(wanted), "{error}");
        assert!(f["build_log"].as_str().unwrap().contains("npm ERR!"), "the whole log is kept: {}", f["build_log"]);
        assert_eq!(f["version"], 1, "the serving version stays");
        assert_eq!(answer(&app, &t.dev, &t.org, "steady?name=x").await["rows"], 3);
    }

    let python = json!({"handler.py": "def handle(e, c):\n    return 1\n", "requirements.txt": "nosuchthing==1.0\n"});
    app.create_with(&t.dev, json!({"name": "pyfail", "language": "python", "files": python})).await;
    let f = app.wait_built(&t.dev, "pyfail").await;
    assert_eq!(f["status"], "failed");
    let error = f["build_error"].as_str().unwrap();
    assert!(error.starts_with("pip: ") && error.contains("nosuchthing==1.0"), "{error}");
    app.finish().await;
}

/// What an install script tries: writes outside its folder, connections to anything but the
/// registry, directly and through the package proxy. It leaves its findings in its own folder,
/// where the function can read them.
fn probe_script(registry: &str, host_port: u16) -> String {
    format!(
        r#"const fs = require("fs"), net = require("net"), dns = require("dns");
const report = {{ writes: {{}}, direct: {{}}, proxied: {{}} }};
for (const path of ["/etc/probe", "/usr/lib/probe", "/app/probe", "/build/../probe", "/run/relay/probe", "/root/probe", "/var/tmp/probe", "/opt/probe"]) {{
  try {{ fs.writeFileSync(path, "x"); report.writes[path] = "written"; }} catch (e) {{ report.writes[path] = e.code; }}
}}
try {{ fs.writeFileSync("inside.txt", "x"); report.writes.own = "written"; }} catch (e) {{ report.writes.own = e.code; }}
const direct = (port) => new Promise((done) => {{
  const s = net.connect(port, "127.0.0.1");
  s.on("connect", () => {{ s.destroy(); done("connected"); }});
  s.on("error", (e) => done(e.code));
}});
const proxied = (target) => new Promise((done) => {{
  const s = net.connect(3128, "127.0.0.1", () => s.write(`CONNECT ${{target}} HTTP/1.1\r\nHost: ${{target}}\r\n\r\n`));
  let got = "";
  s.on("data", (d) => {{ got += d; if (got.includes("\r\n")) {{ s.destroy(); done(got.split("\r\n")[0]); }} }});
  s.on("error", (e) => done(e.code));
}});
(async () => {{
  report.direct.host = await direct({host_port});
  report.direct.postgres = await direct(5432);
  report.proxied.host = await proxied("127.0.0.1:{host_port}");
  report.proxied.registry = await proxied("{registry}");
  report.proxied.registry_by_another_name = await proxied("localhost:{registry_port}");
  report.dns = await new Promise((done) => dns.lookup("example.com", (e, a) => done(e ? e.code : a)));
  fs.writeFileSync("report.json", JSON.stringify(report));
}})();
"#,
        registry_port = registry.rsplit(':').next().unwrap()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn install_scripts_stay_in_their_folder_and_reach_only_the_registry() {
    // A service on the host's loopback that nothing from a build may reach: it counts who came.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let host_port = listener.local_addr().unwrap().port();
    let visits = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = visits.clone();
    std::thread::spawn(move || {
        for _ in listener.incoming() {
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    });
    // The registry's address is known only once it runs; the probe is published after.
    let registry = NpmRegistry::start(&[]);
    let authority = registry.url.trim_start_matches("http://").trim_end_matches('/').to_string();
    let probe = probe_script(&authority, host_port);
    let package_json = r#"{"name": "sneaky", "version": "1.0.0", "scripts": {"install": "node probe.js"}}"#;
    common::mirrors::publish(&registry, &NpmPackage { files: &[("package.json", package_json), ("probe.js", &probe)] });

    let url = registry.url.clone();
    let app = TestApp::spawn_with(Db::Sqlite, move |c| c.npm_registry = Some(url)).await;
    let t = app.tenant().await;
    let files = json!({
        "handler.js": "module.exports = async () => require('sneaky/report.json');\n",
        "package.json": "{\"dependencies\": {\"sneaky\": \"1.0.0\"}}",
    });
    app.create_with(&t.dev, json!({"name": "probe", "language": "nodejs", "files": files})).await;
    let f = app.wait_ready(&t.dev, "probe").await;
    let report = answer(&app, &t.dev, &t.org, "probe").await;
    println!("what the install script could do: {report}");

    for (path, outcome) in report["writes"].as_object().unwrap() {
        if path == "own" {
            assert_eq!(outcome, "written", "an install script may write in its own folder");
        } else {
            assert!(outcome == "EROFS" || outcome == "EACCES" || outcome == "ENOENT", "{path}: {outcome} — {report}");
        }
    }
    assert_eq!(report["direct"], json!({"host": "ECONNREFUSED", "postgres": "ECONNREFUSED"}), "{report}");
    assert_eq!(report["proxied"]["host"], "HTTP/1.1 403 Forbidden", "{report}");
    assert_eq!(report["proxied"]["registry_by_another_name"], "HTTP/1.1 403 Forbidden", "{report}");
    assert_eq!(report["proxied"]["registry"], "HTTP/1.1 200 Connection established", "the probe's way out works for the registry: {report}");
    assert_ne!(report["dns"].as_str().unwrap_or_default().split('.').count(), 4, "no name resolves in a build: {report}");
    assert_eq!(visits.load(std::sync::atomic::Ordering::SeqCst), 0, "nothing reached the host's service");
    let log = f["build_log"].as_str().unwrap();
    assert!(log.contains(&format!("package relay refused a connection: 127.0.0.1:{host_port} is not a package source")), "{log}");
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn native_addons_fail_saying_they_need_a_compiler() {
    let native = NpmPackage {
        files: &[
            ("package.json", r#"{"name": "native-thing", "version": "1.0.0", "main": "index.js"}"#),
            ("binding.gyp", r#"{"targets": [{"target_name": "thing", "sources": ["thing.cc"]}]}"#),
            ("thing.cc", "#include <node.h>\n"),
            ("index.js", "module.exports = require('./build/Release/thing.node');\n"),
        ],
    };
    let registry = NpmRegistry::start(&[native]);
    let url = registry.url.clone();
    let app = TestApp::spawn_with(Db::Sqlite, move |c| c.npm_registry = Some(url)).await;
    let t = app.tenant().await;
    let files = json!({"handler.js": "module.exports = async () => 1;\n", "package.json": "{\"dependencies\": {\"native-thing\": \"1.0.0\"}}"});
    app.create_with(&t.dev, json!({"name": "native", "language": "nodejs", "files": files})).await;
    let f = app.wait_built(&t.dev, "native").await;
    assert_eq!(f["status"], "failed", "{}", f["build_log"]);
    let error = f["build_error"].as_str().unwrap();
    println!("native addon: {error}");
    assert!(error.contains("native-thing") && error.contains("needs a C/C++ compiler"), "{error}\n{}", f["build_log"]);
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn installs_are_held_to_the_providers_time_and_size_limits() {
    let slow = NpmPackage {
        files: &[("package.json", r#"{"name": "slow-thing", "version": "1.0.0", "scripts": {"install": "sleep 120"}}"#)],
    };
    let big = NpmPackage {
        files: &[(
            "package.json",
            r#"{"name": "big-thing", "version": "1.0.0", "scripts": {"install": "head -c 3000000 /dev/zero > blob"}}"#,
        )],
    };
    let registry = NpmRegistry::start(&[slow, big]);
    let url = registry.url.clone();
    let app = TestApp::spawn_with(Db::Sqlite, move |c| {
        c.npm_registry = Some(url);
        c.build_timeout_secs = 10;
        c.build_output_mb = 2;
    })
    .await;
    let t = app.tenant().await;
    for (name, package) in [("slow", "slow-thing"), ("big", "big-thing")] {
        let files = json!({"handler.js": "module.exports = async () => 1;\n", "package.json": format!("{{\"dependencies\": {{\"{package}\": \"1.0.0\"}}}}")});
        app.create_with(&t.dev, json!({"name": name, "language": "nodejs", "files": files})).await;
    }
    for (name, wanted) in [
        ("slow", "took longer than 10 s, the provider's limit (VCD_FAAS_BUILD_TIMEOUT_SECS)"),
        ("big", "the provider allows 2.0 MB (VCD_FAAS_BUILD_OUTPUT_MB)"),
    ] {
        let f = app.wait_built(&t.dev, name).await;
        assert_eq!(f["status"], "failed", "{}", f["build_log"]);
        assert!(f["build_error"].as_str().unwrap().contains(wanted), "{name}: {}", f["build_error"]);
    }
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_install_over_the_memory_limit_says_so() {
    let hungry = NpmPackage {
        files: &[(
            "package.json",
            r#"{"name": "hungry-thing", "version": "1.0.0", "scripts": {"install": "node -e \"const kept = []; for (;;) kept.push(Buffer.alloc(16e6, 1))\""}}"#,
        )],
    };
    let registry = NpmRegistry::start(&[hungry]);
    let url = registry.url.clone();
    let app = TestApp::spawn_with(Db::Sqlite, move |c| {
        c.npm_registry = Some(url);
        c.build_memory_mb = 256;
    })
    .await;
    let t = app.tenant().await;
    let files = json!({"handler.js": "module.exports = async () => 1;\n", "package.json": "{\"dependencies\": {\"hungry-thing\": \"1.0.0\"}}"});
    app.create_with(&t.dev, json!({"name": "hungry", "language": "nodejs", "files": files})).await;
    let f = app.wait_built(&t.dev, "hungry").await;
    assert_eq!(f["status"], "failed", "{}", f["build_log"]);
    let error = f["build_error"].as_str().unwrap();
    assert!(error.contains("needed more than 256 MB of memory, the provider's limit (VCD_FAAS_BUILD_MEMORY_MB)"), "{error}\n{}", f["build_log"]);
    app.finish().await;
}
