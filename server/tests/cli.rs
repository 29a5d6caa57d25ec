//! The developer CLI (`vcd-faas fn …`) end to end: the real binary as a subprocess against a
//! real server (SQLite, the real Docker engine), with its login file in a temporary folder.
//! Each test asserts what a user sees: stdout, stderr and the exit code.

mod common;

use common::mirrors::{PythonIndex, Wheel};
use common::{binary::free_port, Db, TestApp};
use reqwest::StatusCode;
use serde_json::Value;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use tokio::io::AsyncWriteExt;

const PASSWORD: &str = "password-123";

/// One user's shell: a working folder and a login file of its own.
struct Shell {
    dir: tempfile::TempDir,
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl std::fmt::Display for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "exit {}\n--- stdout\n{}--- stderr\n{}", self.code, self.stdout, self.stderr)
    }
}

impl Shell {
    fn new() -> Shell {
        Shell { dir: tempfile::tempdir().unwrap() }
    }

    fn config(&self) -> PathBuf {
        self.dir.path().join("config").join("cli.json")
    }

    fn path(&self, relative: &str) -> PathBuf {
        self.dir.path().join(relative)
    }

    /// `vcd-faas fn <args>` in the shell's folder, with `stdin` piped in (or none).
    async fn run_with_stdin(&self, args: &[&str], stdin: Option<&str>) -> Run {
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_vcd-faas"));
        command
            .arg("fn")
            .args(args)
            .current_dir(self.dir.path())
            .env("VCD_FAAS_CLI_CONFIG", self.config())
            // Loopback only, whatever proxy the machine's environment names.
            .env("NO_PROXY", "*")
            .env("no_proxy", "*")
            .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command.spawn().expect("the CLI starts");
        if let Some(text) = stdin {
            let mut pipe = child.stdin.take().unwrap();
            pipe.write_all(text.as_bytes()).await.unwrap();
            drop(pipe);
        }
        let output = tokio::time::timeout(std::time::Duration::from_secs(300), child.wait_with_output()).await.expect("the CLI ends").unwrap();
        Run {
            code: output.status.code().expect("the CLI exits, not killed"),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    async fn run(&self, args: &[&str]) -> Run {
        self.run_with_stdin(args, None).await
    }

    /// Runs a command that must succeed.
    async fn ok(&self, args: &[&str]) -> Run {
        let run = self.run(args).await;
        assert_eq!(run.code, 0, "vcd-faas fn {}:\n{run}", args.join(" "));
        run
    }

    async fn login(&self, app: &TestApp, org: &str) {
        let run = self.run_with_stdin(&["login", "--url", &app.base, "--org", org, "--user", "dev", "--password-stdin"], Some(&format!("{PASSWORD}\n"))).await;
        assert_eq!(run.code, 0, "login:\n{run}");
    }

    fn write(&self, relative: &str, content: &str) {
        let path = self.path(relative);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
    }
}

/// The token the login file holds.
fn saved_token(config: &Path) -> String {
    let saved: Value = serde_json::from_str(&std::fs::read_to_string(config).unwrap()).unwrap();
    saved["token"].as_str().unwrap().to_string()
}

/// The only line of a command's stdout (a URL, say).
fn single_line(run: &Run) -> String {
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines.len(), 1, "one line on stdout:\n{run}");
    lines[0].to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_keeps_a_private_token_and_logout_revokes_it() {
    let app = TestApp::spawn(Db::Sqlite).await;
    let tenant = app.tenant().await;
    let shell = Shell::new();

    let wrong = shell
        .run_with_stdin(&["login", "--url", &app.base, "--org", &tenant.org, "--user", "dev", "--password-stdin"], Some("not-the-password\n"))
        .await;
    assert_eq!(wrong.code, 3, "{wrong}");
    assert!(wrong.stderr.contains("sign-in refused") && wrong.stderr.contains("wrong org, username or password"), "{wrong}");
    assert!(!shell.config().exists(), "a refused sign-in saves nothing");

    let no_password = shell.run_with_stdin(&["login", "--url", &app.base, "--org", &tenant.org, "--user", "dev", "--password-stdin"], Some("")).await;
    assert_eq!(no_password.code, 2, "{no_password}");
    assert!(no_password.stderr.contains("stdin gave no password"), "{no_password}");

    let bad_url = shell.run_with_stdin(&["login", "--url", "faas.example.com", "--org", &tenant.org, "--user", "dev", "--password-stdin"], Some("x\n")).await;
    assert_eq!(bad_url.code, 2, "{bad_url}");
    assert!(bad_url.stderr.contains("http://"), "{bad_url}");

    shell.login(&app, &tenant.org).await;
    let config = shell.config();
    let mode = std::fs::metadata(&config).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the login file is the owner's only");
    let text = std::fs::read_to_string(&config).unwrap();
    assert!(!text.contains(PASSWORD), "no password in the login file: {text}");
    let token = saved_token(&config);
    assert_eq!(app.get(&token, "/api/v1/functions").await.status(), StatusCode::OK, "the saved token works");

    let me = shell.ok(&["whoami"]).await;
    assert_eq!(single_line(&me), format!("dev in org {} at {}", tenant.org, app.base));

    // Asked on the terminal, the password is not echoed (`script` gives the CLI a terminal).
    let command = format!(
        "{} fn login --url {} --org {} --user dev",
        env!("CARGO_BIN_EXE_vcd-faas"),
        app.base,
        tenant.org
    );
    let mut terminal = tokio::process::Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .env("VCD_FAAS_CLI_CONFIG", shell.path("prompted.json"))
        .env("NO_PROXY", "*")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("script(1) from util-linux");
    let mut keys = terminal.stdin.take().unwrap();
    let mut output = terminal.stdout.take().unwrap();
    // Typed once the prompt is up: the terminal's echo is off by then.
    let mut screen = Vec::new();
    let prompt = format!("Password for dev in {}: ", tenant.org);
    tokio::time::timeout(std::time::Duration::from_secs(30), async {
        use tokio::io::AsyncReadExt;
        while !String::from_utf8_lossy(&screen).contains(&prompt) {
            let mut piece = [0u8; 256];
            let n = output.read(&mut piece).await.unwrap();
            assert!(n > 0, "the CLI ended before asking: {}", String::from_utf8_lossy(&screen));
            screen.extend_from_slice(&piece[..n]);
        }
    })
    .await
    .expect("the password prompt shows");
    keys.write_all(format!("{PASSWORD}\n").as_bytes()).await.unwrap();
    let status = terminal.wait().await.unwrap();
    tokio::io::AsyncReadExt::read_to_end(&mut output, &mut screen).await.unwrap();
    let screen = String::from_utf8_lossy(&screen);
    assert!(status.success(), "login at a prompt: {screen}");
    assert!(screen.contains("signed in to"), "{screen}");
    assert!(!screen.contains(PASSWORD), "the password is not echoed: {screen}");
    assert!(shell.path("prompted.json").exists());

    let out = shell.ok(&["logout"]).await;
    assert!(out.stderr.contains("token is revoked"), "{out}");
    assert!(!config.exists());
    assert_eq!(app.get(&token, "/api/v1/functions").await.status(), StatusCode::UNAUTHORIZED, "logout revoked the token");
    let again = shell.ok(&["logout"]).await;
    assert!(again.stderr.contains("not signed in"), "{again}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_without_a_usable_login_say_what_to_do() {
    let app = TestApp::spawn(Db::Sqlite).await;
    let shell = Shell::new();

    for args in [vec!["list"], vec!["deploy", "."], vec!["invoke", "hello"], vec!["delete", "hello"], vec!["logs", "hello"], vec!["whoami"]] {
        let run = shell.run(&args).await;
        assert_eq!(run.code, 3, "{args:?} without login:\n{run}");
        assert!(run.stderr.contains("not signed in") && run.stderr.contains("vcd-faas fn login"), "{args:?}:\n{run}");
    }

    // The CLI reads none of the server's settings: broken ones, a database and a Docker engine
    // that are not there change nothing, and no data folder appears.
    let run = tokio::process::Command::new(env!("CARGO_BIN_EXE_vcd-faas"))
        .args(["fn", "list"])
        .current_dir(shell.dir.path())
        .env("VCD_FAAS_CLI_CONFIG", shell.config())
        .env("VCD_FAAS_TOKEN_DAYS", "not-a-number")
        .env("LEPTOS_SITE_ADDR", "not-an-address")
        .env("DATABASE_URL", "postgres://nobody@127.0.0.1:1/none")
        .env("DOCKER_HOST", "unix:///nonexistent.sock")
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("not signed in"), "{stderr}");
    assert!(!shell.path("data").exists(), "no data folder is made");

    // A token the server does not (or no longer) accept.
    shell.write("config/cli.json", &format!(r#"{{"url": "{}", "org": "x", "username": "dev", "token": "vf_bogus", "token_id": 1}}"#, app.base));
    let refused = shell.run(&["list"]).await;
    assert_eq!(refused.code, 3, "{refused}");
    assert!(refused.stderr.contains("refused the saved token") && refused.stderr.contains("vcd-faas fn login"), "{refused}");

    // Nobody listens there.
    let nowhere = format!("http://127.0.0.1:{}", free_port());
    let unreachable = shell.run_with_stdin(&["login", "--url", &nowhere, "--org", "x", "--user", "dev", "--password-stdin"], Some("secret-123\n")).await;
    assert_eq!(unreachable.code, 4, "{unreachable}");
    assert!(unreachable.stderr.contains(&format!("cannot reach the server at {nowhere}")), "{unreachable}");
    shell.write("config/cli.json", &format!(r#"{{"url": "{nowhere}", "org": "x", "username": "dev", "token": "vf_x", "token_id": 1}}"#));
    let listed = shell.run(&["list"]).await;
    assert_eq!(listed.code, 4, "{listed}");
    // Following retries a stream that was open; one that never opened fails at once.
    let started = std::time::Instant::now();
    let followed = shell.run(&["logs", "hello", "--follow"]).await;
    assert_eq!(followed.code, 4, "{followed}");
    assert!(started.elapsed() < std::time::Duration::from_secs(10), "{followed}");

    // Usage errors: clap's and the CLI's own.
    let unknown = shell.run(&["lsit"]).await;
    assert_eq!(unknown.code, 2, "{unknown}");
    let missing = shell.run(&["init", "hello"]).await;
    assert_eq!(missing.code, 2, "{missing}");
    assert!(missing.stderr.contains("--language"), "{missing}");
    let bad_name = shell.run(&["init", "Hello_World", "--language", "python"]).await;
    assert_eq!(bad_name.code, 2, "{bad_name}");
    assert!(bad_name.stderr.contains("function name"), "{bad_name}");

    let help = shell.ok(&["--help"]).await;
    for word in ["login", "init", "deploy", "invoke", "logs", "list", "delete", "Exit codes"] {
        assert!(help.stdout.contains(word), "help lists {word}:\n{help}");
    }
    for command in ["login", "logout", "whoami", "init", "deploy", "invoke", "logs", "list", "delete"] {
        let help = shell.ok(&[command, "--help"]).await;
        assert!(help.stdout.contains("Usage: vcd-faas fn") && help.stdout.contains("Exit codes"), "{command} --help:\n{help}");
    }
}

/// `fn init` makes a folder that deploys as it is; its URL answers; `fn invoke` prints the body.
async fn init_deploy_and_invoke(language: &str) {
    let app = TestApp::spawn(Db::Sqlite).await;
    let tenant = app.tenant().await;
    let shell = Shell::new();
    shell.login(&app, &tenant.org).await;
    let name = format!("hello-{language}");

    shell.ok(&["init", &name, "--language", language]).await;
    let refused = shell.run(&["init", &name, "--language", language]).await;
    assert_eq!(refused.code, 2, "init over a folder with files:\n{refused}");
    assert!(refused.stderr.contains("not empty"), "{refused}");

    let deployed = shell.ok(&["deploy", &name]).await;
    let url = single_line(&deployed);
    assert_eq!(url, format!("{}/api/org/{}/{name}", app.base, tenant.org));
    assert!(deployed.stderr.contains(&format!("creating {name}")) && deployed.stderr.contains("version 1 is ready"), "{deployed}");
    let answer = app.client.get(format!("{url}?name=curl")).bearer_auth(&tenant.dev).send().await.unwrap();
    assert_eq!(answer.status(), StatusCode::OK);
    let body: Value = answer.json().await.unwrap();
    assert_eq!(body["message"], "Hello, curl!", "{body}");

    let invoked = shell.ok(&["invoke", &name, "--path", "?name=cli"]).await;
    let body: Value = serde_json::from_str(&invoked.stdout).unwrap_or_else(|_| panic!("JSON on stdout:\n{invoked}"));
    assert_eq!(body["message"], "Hello, cli!");
    assert_eq!(body["function"], name.as_str());
    assert!(invoked.stderr.starts_with("200 OK") && invoked.stderr.contains("version 1"), "{invoked}");

    // A second deploy is version 2.
    let again = shell.ok(&["deploy", &name]).await;
    assert!(again.stderr.contains(&format!("updating {name}")) && again.stderr.contains("version 2 is ready"), "{again}");
    let f = app.function(&tenant.dev, &name).await;
    assert_eq!(f["version"], 2);
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_then_deploy_a_nodejs_function() {
    init_deploy_and_invoke("nodejs").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_then_deploy_a_python_function() {
    init_deploy_and_invoke("python").await;
}

const ECHO: &str = r#"const util = require('./lib/util');
module.exports = async (event) => {
  if (event.path === '/fail') return { statusCode: 500, body: 'it broke on purpose' };
  if (event.path === '/throw') throw new Error('thrown on purpose');
  console.log(`echo ${event.method} ${event.body}`);
  return { method: event.method, body: event.body, header: event.headers['x-test'] || null,
           greeting: process.env.GREETING, shout: util.shout(event.body || '') };
};
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deploy_sends_the_folder_with_its_manifest_and_invoke_reports_statuses() {
    let app = TestApp::spawn(Db::Sqlite).await;
    let tenant = app.tenant().await;
    let shell = Shell::new();
    shell.login(&app, &tenant.org).await;

    shell.write("echo/handler.js", ECHO);
    shell.write("echo/lib/util.js", "exports.shout = (s) => s.toUpperCase();\n");
    shell.write("echo/vcd-faas.json", r#"{"name": "echo", "memory_mb": 192, "timeout_ms": 4000, "env": {"GREETING": "hi"}, "public": true}"#);
    // None of these may reach the server.
    shell.write("echo/node_modules/left/index.js", "module.exports = 1;\n");
    shell.write("echo/.git/config", "[core]\n");
    shell.write("echo/notes/draft.md", "not for the server\n");
    shell.write("echo/.vcdfaasignore", "# local only\nnotes/\n*.bin\n");
    std::fs::write(shell.path("echo/logo.bin"), [0u8, 159, 146, 150]).unwrap();

    let deployed = shell.ok(&["deploy", "echo"]).await;
    let url = single_line(&deployed);
    let f = app.function(&tenant.dev, "echo").await;
    let files: Vec<&str> = f["files"].as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(files, ["handler.js", "lib/util.js"], "only the function's own files are sent");
    assert_eq!((f["memory_mb"].as_i64(), f["timeout_ms"].as_i64(), f["public"].as_bool()), (Some(192), Some(4000), Some(true)));
    // Public: the URL answers without a token.
    assert_eq!(app.client.get(&url).send().await.unwrap().status(), StatusCode::OK);

    // A binary file not ignored is refused before anything is sent, naming it.
    std::fs::write(shell.path("echo/logo.png"), [0u8, 159, 146, 150]).unwrap();
    let binary = shell.run(&["deploy", "echo"]).await;
    assert_eq!(binary.code, 2, "{binary}");
    assert!(binary.stderr.contains("logo.png is not UTF-8 text") && binary.stderr.contains(".vcdfaasignore"), "{binary}");
    std::fs::remove_file(shell.path("echo/logo.png")).unwrap();

    // Data as text, from a file and from stdin; method, path and headers.
    let posted = shell.ok(&["invoke", "echo", "--data", "ping", "--header", "X-Test: one"]).await;
    let body: Value = serde_json::from_str(&posted.stdout).unwrap();
    assert_eq!((body["method"].as_str(), body["body"].as_str(), body["header"].as_str()), (Some("POST"), Some("ping"), Some("one")));
    assert_eq!((body["greeting"].as_str(), body["shout"].as_str()), (Some("hi"), Some("PING")));
    shell.write("payload.txt", "from a file");
    let from_file = shell.ok(&["invoke", "echo", "-X", "put", "--data", "@payload.txt"]).await;
    let body: Value = serde_json::from_str(&from_file.stdout).unwrap();
    assert_eq!((body["method"].as_str(), body["body"].as_str()), (Some("PUT"), Some("from a file")));
    let from_stdin = shell.run_with_stdin(&["invoke", "echo", "--data", "@-"], Some("from stdin")).await;
    assert_eq!(from_stdin.code, 0, "{from_stdin}");
    assert_eq!(serde_json::from_str::<Value>(&from_stdin.stdout).unwrap()["body"], "from stdin");
    let missing_file = shell.run(&["invoke", "echo", "--data", "@no-such-file"]).await;
    assert_eq!(missing_file.code, 2, "{missing_file}");
    let bad_header = shell.run(&["invoke", "echo", "--header", "no colon"]).await;
    assert_eq!(bad_header.code, 2, "{bad_header}");

    // Statuses of 400 and more: the body still on stdout, exit 1.
    let failed = shell.run(&["invoke", "echo", "--path", "/fail"]).await;
    assert_eq!(failed.code, 1, "{failed}");
    assert_eq!(failed.stdout, "it broke on purpose");
    assert!(failed.stderr.starts_with("500 Internal Server Error"), "{failed}");
    let thrown = shell.run(&["invoke", "echo", "--path", "throw"]).await;
    assert_eq!(thrown.code, 1, "{thrown}");
    assert!(thrown.stdout.contains("thrown on purpose"), "{thrown}");
    let absent = shell.run(&["invoke", "no-such-function"]).await;
    assert_eq!(absent.code, 1, "{absent}");
    assert!(absent.stderr.starts_with("404 Not Found"), "{absent}");
    assert!(absent.stderr.contains("vcd-faas: "), "the platform's reason on stderr:\n{absent}");

    // Asynchronous: the invocation's id at once.
    let queued = shell.ok(&["invoke", "echo", "--async", "--data", "later"]).await;
    assert!(queued.stderr.starts_with("202 Accepted"), "{queued}");
    let id = serde_json::from_str::<Value>(&queued.stdout).unwrap()["invocation_id"].as_str().unwrap().to_string();
    app.wait_for_state(&tenant.dev, &id, &["done"]).await;

    // Manifest mistakes are usage errors that name the field.
    shell.write("echo/vcd-faas.json", r#"{"name": "echo", "memroy_mb": 128}"#);
    let typo = shell.run(&["deploy", "echo"]).await;
    assert_eq!(typo.code, 2, "{typo}");
    assert!(typo.stderr.contains("vcd-faas.json") && typo.stderr.contains("memroy_mb"), "{typo}");
    // Limits are the server's: its field error, one per line.
    shell.write("echo/vcd-faas.json", r#"{"name": "echo", "memory_mb": 100000}"#);
    let over = shell.run(&["deploy", "echo"]).await;
    assert_eq!(over.code, 1, "{over}");
    assert!(over.stderr.lines().any(|l| l.trim_start().starts_with("memory_mb: ")), "{over}");
    let empty = shell.path("empty");
    std::fs::create_dir(&empty).unwrap();
    let no_handler = shell.run(&["deploy", "empty"]).await;
    assert_eq!(no_handler.code, 2, "{no_handler}");
    assert!(no_handler.stderr.contains("no handler.js or handler.py"), "{no_handler}");
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_build_error_fails_the_deploy_and_shows_the_error() {
    let app = TestApp::spawn(Db::Sqlite).await;
    let tenant = app.tenant().await;
    let shell = Shell::new();
    shell.login(&app, &tenant.org).await;

    shell.write("broken/handler.py", "def handle(event, context):\n    return {'ok': True\n");
    let first = shell.run(&["deploy", "broken"]).await;
    assert_eq!(first.code, 1, "{first}");
    assert!(first.stdout.is_empty(), "no URL for a function that does not serve:\n{first}");
    assert!(first.stderr.contains("the build of broken version 1 failed") && first.stderr.contains("SyntaxError"), "{first}");
    assert!(first.stderr.contains("handler.py"), "the file is named:\n{first}");

    // Fixed, it serves; broken again, the previous version keeps serving.
    shell.write("broken/handler.py", "def handle(event, context):\n    return {'ok': True}\n");
    shell.ok(&["deploy", "broken"]).await;
    shell.write("broken/lib/helper.py", "def helper(:\n    pass\n");
    let again = shell.run(&["deploy", "broken"]).await;
    assert_eq!(again.code, 1, "{again}");
    assert!(again.stderr.contains("version 3 failed") && again.stderr.contains("lib/helper.py") && again.stderr.contains("version 2 keeps serving"), "{again}");
    let still = shell.ok(&["invoke", "broken"]).await;
    assert_eq!(serde_json::from_str::<Value>(&still.stdout).unwrap()["ok"], true);
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_shows_the_functions_and_delete_removes_one() {
    let app = TestApp::spawn(Db::Sqlite).await;
    let tenant = app.tenant().await;
    let shell = Shell::new();
    shell.login(&app, &tenant.org).await;

    let empty = shell.ok(&["list"]).await;
    assert!(empty.stdout.is_empty() && empty.stderr.contains("no functions yet"), "{empty}");
    let empty_json = shell.ok(&["list", "--json"]).await;
    assert_eq!(serde_json::from_str::<Value>(&empty_json.stdout).unwrap(), serde_json::json!([]));

    shell.ok(&["init", "first", "--language", "nodejs"]).await;
    shell.ok(&["init", "second", "--language", "python"]).await;
    let first_url = single_line(&shell.ok(&["deploy", "first"]).await);
    let second_url = single_line(&shell.ok(&["deploy", "second"]).await);
    shell.ok(&["deploy", "second"]).await;

    let table = shell.ok(&["list"]).await;
    let lines: Vec<Vec<&str>> = table.stdout.lines().map(|l| l.split_whitespace().collect()).collect();
    assert_eq!(lines[0], ["NAME", "LANGUAGE", "STATUS", "VERSION", "URL"], "{table}");
    assert!(lines.contains(&vec!["first", "nodejs", "ready", "1", first_url.as_str()]), "{table}");
    assert!(lines.contains(&vec!["second", "python", "ready", "2", second_url.as_str()]), "{table}");
    assert_eq!(lines.len(), 3, "{table}");

    let listed = shell.ok(&["list", "--json"]).await;
    let rows: Vec<Value> = serde_json::from_str(&listed.stdout).unwrap();
    let second = rows.iter().find(|r| r["name"] == "second").expect("second listed");
    assert_eq!((second["version"].as_i64(), second["status"].as_str(), second["url"].as_str()), (Some(2), Some("ready"), Some(second_url.as_str())));
    assert_eq!(rows.len(), 2);

    // The function's route refuses a token the platform does not know: sign in again.
    let stranger = Shell::new();
    stranger.write("config/cli.json", &format!(r#"{{"url": "{}", "org": "{}", "username": "dev", "token": "vf_bogus", "token_id": 1}}"#, app.base, tenant.org));
    let refused = stranger.run(&["invoke", "first"]).await;
    assert_eq!(refused.code, 3, "{refused}");
    assert!(refused.stderr.starts_with("401 Unauthorized") && refused.stderr.contains("vcd-faas fn login"), "{refused}");

    let deleted = shell.ok(&["delete", "first"]).await;
    assert!(deleted.stderr.contains("deleted first"), "{deleted}");
    // Until its containers and images are gone, a deleted function is listed as deleting.
    let after: Vec<Value> = serde_json::from_str(&shell.ok(&["list", "--json"]).await.stdout).unwrap();
    assert!(after.iter().all(|r| r["name"] != "first" || r["status"] == "deleting"), "{after:?}");
    assert!(after.iter().any(|r| r["name"] == "second" && r["status"] == "ready"), "{after:?}");
    assert_eq!(app.client.get(&first_url).bearer_auth(&tenant.dev).send().await.unwrap().status(), StatusCode::NOT_FOUND);
    let twice = shell.run(&["delete", "first"]).await;
    assert_eq!(twice.code, 1, "{twice}");
    assert!(twice.stderr.contains("no function \"first\""), "{twice}");
    app.finish().await;
}

/// The platform installs what `requirements.txt` names, from the test's own package index;
/// a package it cannot find fails the deploy with pip's own message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deploy_installs_the_folders_dependencies() {
    let index = PythonIndex::start(&[Wheel {
        name: "greetpy",
        version: "2.0.1",
        files: &[("greetpy/__init__.py", "def greet(name):\n    return f'Hello, {name}, from greetpy'\n")],
    }]);
    let url = index.url.clone();
    let app = TestApp::spawn_with(Db::Sqlite, move |c| c.pip_index_url = Some(url)).await;
    let tenant = app.tenant().await;
    let shell = Shell::new();
    shell.login(&app, &tenant.org).await;

    shell.ok(&["init", "greeter", "--language", "python"]).await;
    shell.write("greeter/handler.py", "import greetpy\n\ndef handle(event, context):\n    return greetpy.greet(event['body'])\n");
    let requirements = std::fs::read_to_string(shell.path("greeter/requirements.txt")).unwrap();
    shell.write("greeter/requirements.txt", &format!("{requirements}greetpy==2.0.1\n"));
    shell.ok(&["deploy", "greeter"]).await;
    let greeted = shell.ok(&["invoke", "greeter", "--data", "Ada"]).await;
    assert_eq!(greeted.stdout, "Hello, Ada, from greetpy", "{greeted}");

    shell.write("greeter/requirements.txt", "greetpy==2.0.1\nno-such-package-here==1.0\n");
    let failed = shell.run(&["deploy", "greeter"]).await;
    assert_eq!(failed.code, 1, "{failed}");
    assert!(failed.stderr.contains("version 2 failed") && failed.stderr.contains("no-such-package-here"), "{failed}");
    assert!(failed.stderr.contains("version 1 keeps serving"), "{failed}");
    app.finish().await;
}

/// `fn logs` on the live log stream (`GET /api/v1/functions/{name}/logs`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_show_recent_calls_and_follow_new_ones() {
    let app = TestApp::spawn(Db::Sqlite).await;
    let tenant = app.tenant().await;
    let shell = Shell::new();
    shell.login(&app, &tenant.org).await;
    shell.write("echo/handler.js", ECHO);
    shell.write("echo/lib/util.js", "exports.shout = (s) => s.toUpperCase();\n");
    shell.ok(&["deploy", "echo"]).await;
    shell.ok(&["invoke", "echo", "--data", "first-call"]).await;
    shell.ok(&["invoke", "echo", "--data", "second-call"]).await;

    let recent = shell.ok(&["logs", "echo"]).await;
    let first = recent.stdout.find("| echo POST first-call").unwrap_or_else(|| panic!("first call's log:\n{recent}"));
    let second = recent.stdout.find("| echo POST second-call").unwrap_or_else(|| panic!("second call's log:\n{recent}"));
    assert!(first < second, "oldest first:\n{recent}");
    let one = shell.ok(&["logs", "echo", "--tail", "1", "--json"]).await;
    let calls: Vec<Value> = one.stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(calls.len(), 1, "{one}");
    assert!(calls[0]["logs"].as_str().unwrap().contains("second-call"));
    let absent = shell.run(&["logs", "no-such-function"]).await;
    assert_eq!(absent.code, 1, "{absent}");

    // Following: a call made after the stream opened shows up on it.
    let mut follow = tokio::process::Command::new(env!("CARGO_BIN_EXE_vcd-faas"))
        .args(["fn", "logs", "echo", "--follow", "--tail", "0"])
        .env("VCD_FAAS_CLI_CONFIG", shell.config())
        .env("NO_PROXY", "*")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stdout = tokio::io::BufReader::new(follow.stdout.take().unwrap());
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    shell.ok(&["invoke", "echo", "--data", "third-call"]).await;
    let mut seen = String::new();
    tokio::time::timeout(std::time::Duration::from_secs(30), async {
        use tokio::io::AsyncBufReadExt;
        while !seen.contains("third-call") {
            let mut line = String::new();
            assert!(stdout.read_line(&mut line).await.unwrap() > 0, "the stream ended:\n{seen}");
            seen.push_str(&line);
        }
    })
    .await
    .unwrap_or_else(|_| panic!("the followed call did not show:\n{seen}"));
    assert!(!seen.contains("first-call"), "--tail 0 shows no older call:\n{seen}");
    follow.kill().await.unwrap();
    app.finish().await;
}
