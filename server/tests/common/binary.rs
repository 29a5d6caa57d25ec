//! The real `vcd-faas` binary in a test: started on a data folder (SQLite), killed on drop.
#![allow(dead_code)]

use super::{unique, ADMIN_PASSWORD};
use reqwest::Client;
use serde_json::{json, Value};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Server {
    child: Child,
    pub base: String,
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// The binary with the data folder and admin password set, and `envs` on top.
pub fn command(dir: &Path, envs: &[(String, String)]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_vcd-faas"));
    command
        .env("VCD_FAAS_DATA_DIR", dir)
        .env("VCD_FAAS_ADMIN_PASSWORD", ADMIN_PASSWORD)
        .env_remove("DATABASE_URL")
        .env_remove("VCD_URL")
        .envs(envs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    command
}

/// Starts the server on `port` and waits until it answers.
pub async fn start(dir: &Path, port: u16, envs: &[(String, String)]) -> Server {
    started(command(dir, envs), port).await
}

/// Like `start`, with everything the server prints (stdout and stderr) written to `log`.
pub async fn start_logging_to(dir: &Path, port: u16, envs: &[(String, String)], log: &Path) -> Server {
    let out = std::fs::File::create(log).unwrap();
    let mut command = command(dir, envs);
    command.stdout(out.try_clone().unwrap()).stderr(out);
    started(command, port).await
}

async fn started(mut command: Command, port: u16) -> Server {
    let child = command.env("LEPTOS_SITE_ADDR", format!("127.0.0.1:{port}")).spawn().expect("server binary starts");
    let base = format!("http://127.0.0.1:{port}");
    let client = Client::new();
    let start = Instant::now();
    while client.get(format!("{base}/api/v1/openapi.json")).send().await.is_err() {
        assert!(start.elapsed() < Duration::from_secs(60), "server did not come up");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Server { child, base }
}

impl Server {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGTERM, as a service manager stops it, and waits until it has exited.
    pub fn terminate(mut self) {
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let start = Instant::now();
        while self.child.try_wait().unwrap().is_none() {
            assert!(start.elapsed() < Duration::from_secs(30), "server did not stop on SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGKILL: no shutdown code runs.
    pub fn kill9(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub async fn post(client: &Client, url: String, token: Option<&str>, body: Value) -> Value {
    let mut request = client.post(url).json(&body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let r = request.send().await.unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    r.json().await.unwrap()
}

/// A new tenant (with `extra` tenant fields) and a developer's token: (org, token).
pub async fn setup_tenant(client: &Client, base: &str, extra: Value) -> (String, String) {
    let org = unique("bin");
    let admin = post(client, format!("{base}/api/v1/tokens"), None, json!({"org": "provider", "username": "admin", "password": ADMIN_PASSWORD})).await;
    let admin = admin["token"].as_str().unwrap().to_string();
    let mut tenant = json!({"name": org});
    tenant.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    post(client, format!("{base}/api/v1/tenants"), Some(&admin), tenant).await;
    post(client, format!("{base}/api/v1/tenants/{org}/users"), Some(&admin), json!({"username": "dev", "password": "password-123", "role": "developer"})).await;
    let dev = post(client, format!("{base}/api/v1/tokens"), None, json!({"org": org, "username": "dev", "password": "password-123"})).await;
    (org, dev["token"].as_str().unwrap().to_string())
}

/// What every process of one installation shares: the database and the secrets key.
pub fn shared_settings(database_url: &str) -> Vec<(String, String)> {
    use base64::Engine as _;
    vec![
        ("DATABASE_URL".into(), database_url.into()),
        ("VCD_FAAS_SECRET_KEY".into(), base64::engine::general_purpose::STANDARD.encode([7u8; 32])),
        ("VCD_FAAS_RECONCILE_SECS".into(), "3600".into()),
    ]
}

/// A process with a data folder (its sockets) of its own, under `root`.
pub async fn start_in(root: &Path, name: &str, envs: &[(String, String)]) -> Server {
    let dir = root.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    start(&dir, free_port(), envs).await
}
