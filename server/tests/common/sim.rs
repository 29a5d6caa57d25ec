//! A running `vcd-sim` for tests (killed on drop), and what a test asks of it.
#![allow(dead_code)]

use super::amqp::{Names, AMQP_URL};
use base64::Engine as _;
use reqwest::Client;
use serde_json::{json, Value};
use server::config::{Config, Secret};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};

pub const ADMIN_PASSWORD: &str = "sim-admin-pw";
pub const ACCEPT: &str = "application/json;version=37.0";

pub struct Sim {
    pub base: String,
    pub http: Client,
    _child: tokio::process::Child,
}

impl Sim {
    /// Starts vcd-sim on a free port, with the test's notification prefix and these orgs.
    pub async fn start(names: &Names, orgs: &[&str]) -> Sim {
        Sim::start_with(names, orgs, &[]).await
    }

    /// The same with more vcd-sim flags (e.g. `--legacy-only`).
    pub async fn start_with(names: &Names, orgs: &[&str], flags: &[&str]) -> Sim {
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_vcd-sim"));
        command
            .args(["--listen", "127.0.0.1:0", "--amqp-url", AMQP_URL, "--prefix", &names.prefix])
            .args(["--reply-exchange", &format!("{}.reply", names.prefix), "--admin-password", ADMIN_PASSWORD])
            .args(["--reply-timeout-secs", "20"])
            .env("RUST_LOG", "warn")
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true);
        for org in orgs {
            command.args(["--org", org]);
        }
        command.args(flags);
        let mut child = command.spawn().expect("vcd-sim starts");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let line = tokio::time::timeout(Duration::from_secs(20), lines.next_line()).await.expect("vcd-sim prints its address");
        let line = line.unwrap().expect("an address line");
        let base = line.strip_prefix("vcd-sim listening on ").expect("vcd-sim's address line").to_string();
        let sim = Sim { base, http: Client::new(), _child: child };
        let mqtt = flags.contains(&"--mqtt-url");
        for _ in 0..200 {
            let state = sim.state().await;
            if state["amqpConnected"] == true && (!mqtt || state["mqttConnected"] == true) {
                return sim;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("vcd-sim never reached RabbitMQ (or its MQTT broker)");
    }

    /// Points the platform at this vCD as its system administrator.
    pub fn apply(&self, config: &mut Config) {
        config.vcd.vcd_url = Some(self.base.clone());
        config.vcd.vcd_user = "administrator@System".into();
        config.vcd.vcd_password = Some(Secret(ADMIN_PASSWORD.into()));
    }

    /// Points the platform at this vCD over MQTT (its `/messaging/mqtt`, found from `VCD_URL`).
    pub fn apply_mqtt(&self, config: &mut Config) {
        self.apply(config);
        config.vcd.vcd_transport = server::config::VcdTransport::Mqtt;
    }

    /// The environment that does the same for the server binary.
    pub fn env(&self, names: &Names) -> Vec<(String, String)> {
        let mut env = names.env();
        env.extend([
            ("VCD_URL".to_string(), self.base.clone()),
            ("VCD_USER".to_string(), "administrator@System".to_string()),
            ("VCD_PASSWORD".to_string(), ADMIN_PASSWORD.to_string()),
        ]);
        env
    }

    pub async fn state(&self) -> Value {
        self.http.get(format!("{}/sim/state", self.base)).send().await.unwrap().json().await.unwrap()
    }

    /// The vCD org id of an org the sim knows.
    pub async fn org_id(&self, name: &str) -> String {
        let state = self.state().await;
        let org = state["orgs"].as_array().unwrap().iter().find(|o| o["name"] == name).expect("the org exists");
        org["id"].as_str().unwrap().to_string()
    }

    /// URL patterns of the named service's filters; `None` when there is no such service.
    pub async fn filters(&self, service: &str) -> Option<Vec<String>> {
        let state = self.state().await;
        let found = state["services"].as_array().unwrap().iter().find(|s| s["name"] == service)?.clone();
        let mut patterns: Vec<String> =
            found["filters"].as_array().unwrap().iter().map(|f| f["urlPattern"].as_str().unwrap().to_string()).collect();
        patterns.sort();
        Some(patterns)
    }

    /// Calls through vCD's front door as `user@org`.
    pub async fn call(&self, user_at_org: &str, method: reqwest::Method, path: &str, body: &str) -> reqwest::Response {
        let basic = base64::engine::general_purpose::STANDARD.encode(format!("{user_at_org}:pw"));
        self.http
            .request(method, format!("{}{path}", self.base))
            .header("Authorization", format!("Basic {basic}"))
            .header("Accept", ACCEPT)
            .header("Content-Type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .unwrap()
    }

    /// Publishes a notification as vCD would, for an org the sim knows.
    pub async fn notify(&self, event_type: &str, org: &str) -> Value {
        let r = self
            .http
            .post(format!("{}/sim/notifications", self.base))
            .json(&json!({"type": event_type, "org": org}))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{}", r.status());
        r.json().await.unwrap()
    }

    pub async fn expire_sessions(&self) {
        self.http.post(format!("{}/sim/expire-sessions", self.base)).send().await.unwrap();
    }

    /// A provider session token of the sim's own REST API, for changing things behind the platform's back.
    pub async fn admin_token(&self) -> String {
        let basic = base64::engine::general_purpose::STANDARD.encode(format!("administrator@System:{ADMIN_PASSWORD}"));
        let r = self
            .http
            .post(format!("{}/cloudapi/1.0.0/sessions/provider", self.base))
            .header("Authorization", format!("Basic {basic}"))
            .header("Accept", ACCEPT)
            .send()
            .await
            .unwrap();
        r.headers()["x-vmware-vcloud-access-token"].to_str().unwrap().to_string()
    }
}
