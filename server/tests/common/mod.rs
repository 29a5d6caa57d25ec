//! A real platform for tests: real database (SQLite file or a fresh PostgreSQL database), the
//! real Docker engine, served over HTTP on a free loopback port.
#![allow(dead_code)]
pub mod amqp;
pub mod binary;
pub mod cluster;
pub mod mirrors;
pub mod mqtt;
pub mod offline;
pub mod sim;

use reqwest::{Client, Response, StatusCode};
use serde_json::{json, Value};
use server::config::Config;
use server::platform::Service;
use std::time::{Duration, Instant};

pub const ADMIN_PASSWORD: &str = "admin-password";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Db {
    Sqlite,
    Postgres,
}

pub fn postgres_admin_url() -> String {
    std::env::var("TEST_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// A database URL of the given kind, empty and new.
pub async fn fresh_database(db: Db, dir: &std::path::Path) -> String {
    match db {
        Db::Sqlite => format!("sqlite://{}/test.db", dir.display()),
        Db::Postgres => {
            use sqlx::Connection;
            let admin = postgres_admin_url();
            let name = format!("vcdfaas_{}", uuid::Uuid::new_v4().simple());
            let mut conn = sqlx::PgConnection::connect(&admin).await.expect("PostgreSQL at TEST_POSTGRES_URL");
            sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut conn).await.unwrap();
            let (base, _) = admin.rsplit_once('/').unwrap();
            format!("{base}/{name}")
        }
    }
}

pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", &uuid::Uuid::new_v4().simple().to_string()[..8])
}

pub struct TestApp {
    pub base: String,
    pub client: Client,
    pub service: Service,
    pub engine: server::run::engine::Engine,
    pub dir: tempfile::TempDir,
    pub admin_token: String,
    server: tokio::task::JoinHandle<()>,
}

/// A tenant made for one test, with a developer and an admin.
pub struct Tenant {
    pub org: String,
    pub dev: String,
    pub admin: String,
}

impl TestApp {
    pub async fn spawn(db: Db) -> TestApp {
        Self::spawn_with(db, |_| {}).await
    }

    pub async fn spawn_with(db: Db, adjust: impl FnOnce(&mut Config)) -> TestApp {
        let dir = tempfile::tempdir().unwrap();
        let url = fresh_database(db, dir.path()).await;
        let mut config = Config::for_tests(dir.path().join("data"), url);
        config.reconcile_secs = 3600;
        adjust(&mut config);
        let ready = server::startup::build(config).await.expect("platform starts");
        let base = format!("http://{}", ready.listener.local_addr().unwrap());
        let server = tokio::spawn(async move {
            // With the peer's address, as the server runs (sign-in attempts are counted per address).
            let front = axum::ServiceExt::<axum::extract::Request>::into_make_service_with_connect_info::<std::net::SocketAddr>(ready.front);
            axum::serve(ready.listener, front).await.unwrap();
        });
        let client = Client::builder().timeout(Duration::from_secs(120)).build().unwrap();
        let service = ready.state.service.clone();
        let engine = service.calls().gateway().pool().engine().clone();
        let mut app = TestApp { base, client, service, engine, dir, admin_token: String::new(), server };
        app.admin_token = app.token("provider", "admin", ADMIN_PASSWORD).await;
        app
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub async fn token(&self, org: &str, username: &str, password: &str) -> String {
        let r = self
            .client
            .post(self.url("/api/v1/tokens"))
            .json(&json!({"org": org, "username": username, "password": password}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::CREATED, "login of {org}/{username}");
        r.json::<Value>().await.unwrap()["token"].as_str().unwrap().to_string()
    }

    /// A new tenant with a developer and a tenant admin, each with a token.
    pub async fn tenant(&self) -> Tenant {
        self.tenant_with(json!({})).await
    }

    pub async fn tenant_with(&self, limits: Value) -> Tenant {
        let org = unique("t");
        let mut body = json!({"name": org, "display_name": "Test tenant"});
        body.as_object_mut().unwrap().extend(limits.as_object().unwrap().clone());
        let r = self.post(&self.admin_token, "/api/v1/tenants", body).await;
        assert_eq!(r.status(), StatusCode::CREATED);
        for (user, role) in [("dev", "developer"), ("boss", "admin")] {
            let r = self
                .post(&self.admin_token, &format!("/api/v1/tenants/{org}/users"), json!({"username": user, "password": "password-123", "role": role}))
                .await;
            assert_eq!(r.status(), StatusCode::CREATED);
        }
        let dev = self.token(&org, "dev", "password-123").await;
        let admin = self.token(&org, "boss", "password-123").await;
        Tenant { org, dev, admin }
    }

    pub async fn get(&self, token: &str, path: &str) -> Response {
        self.client.get(self.url(path)).bearer_auth(token).send().await.unwrap()
    }

    pub async fn post(&self, token: &str, path: &str, body: Value) -> Response {
        self.client.post(self.url(path)).bearer_auth(token).json(&body).send().await.unwrap()
    }

    pub async fn put(&self, token: &str, path: &str, body: Value) -> Response {
        self.client.put(self.url(path)).bearer_auth(token).json(&body).send().await.unwrap()
    }

    pub async fn delete(&self, token: &str, path: &str) -> Response {
        self.client.delete(self.url(path)).bearer_auth(token).send().await.unwrap()
    }

    pub async fn create(&self, token: &str, name: &str, language: &str, code: &str) -> Value {
        self.create_with(token, json!({"name": name, "language": language, "code": code})).await
    }

    pub async fn create_with(&self, token: &str, spec: Value) -> Value {
        let r = self.post(token, "/api/v1/functions", spec).await;
        let status = r.status();
        let body: Value = r.json().await.unwrap();
        assert_eq!(status, StatusCode::ACCEPTED, "create: {body}");
        body
    }

    pub async fn function(&self, token: &str, name: &str) -> Value {
        self.get(token, &format!("/api/v1/functions/{name}")).await.json().await.unwrap()
    }

    /// Polls a function until `check` holds; panics after `timeout` with the last state.
    pub async fn wait_until(&self, token: &str, name: &str, timeout: Duration, check: impl Fn(&Value) -> bool) -> Value {
        let start = Instant::now();
        loop {
            let f = self.function(token, name).await;
            if check(&f) {
                return f;
            }
            if start.elapsed() > timeout {
                panic!("function {name} did not reach the expected state in {timeout:?}: {f:#}");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Waits for the first build to end; returns the function.
    pub async fn wait_built(&self, token: &str, name: &str) -> Value {
        self.wait_until(token, name, Duration::from_secs(240), |f| f["status"] == "ready" || f["status"] == "failed").await
    }

    /// Waits for a build that must succeed; a failed one fails the test with its build log
    /// (a test that went on would fail later, at a call, for a reason it does not show).
    pub async fn wait_ready(&self, token: &str, name: &str) -> Value {
        let f = self.wait_built(token, name).await;
        assert_eq!(f["status"], "ready", "build of {name} failed: {}", f["build_log"]);
        f
    }

    pub async fn deploy(&self, token: &str, name: &str, language: &str, code: &str) -> Value {
        self.create(token, name, language, code).await;
        self.wait_ready(token, name).await
    }

    pub async fn call(&self, token: Option<&str>, org: &str, path: &str) -> Response {
        let mut request = self.client.get(self.url(&format!("/api/org/{org}/{path}")));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.unwrap()
    }

    /// Every container of this platform present for a function, running or only created.
    pub async fn all_containers_of(&self, org: &str, name: &str) -> Vec<server::run::engine::ContainerSummary> {
        let list = self.engine.list_function_containers().await.unwrap();
        list.into_iter()
            .filter(|c| c.labels.get("vcd-faas.tenant").map(String::as_str) == Some(org))
            .filter(|c| c.labels.get("vcd-faas.function").map(String::as_str) == Some(name))
            .collect()
    }

    /// Running containers of a function (serving or warm).
    pub async fn containers_of(&self, org: &str, name: &str) -> usize {
        self.all_containers_of(org, name).await.iter().filter(|c| c.running).count()
    }

    /// Ids of a function's containers created ahead of calls and not started (the spare).
    pub async fn spares_of(&self, org: &str, name: &str) -> Vec<String> {
        self.all_containers_of(org, name).await.into_iter().filter(|c| !c.running).map(|c| c.id).collect()
    }

    /// Waits until no container of the function is left, running or created (removal runs in
    /// the background).
    pub async fn assert_no_containers(&self, org: &str, name: &str) {
        let start = Instant::now();
        while !self.all_containers_of(org, name).await.is_empty() {
            assert!(start.elapsed() < Duration::from_secs(20), "containers of {org}/{name} were left behind");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Waits until no container of the function runs (a spare may stay created).
    pub async fn assert_none_running(&self, org: &str, name: &str) {
        let start = Instant::now();
        while self.containers_of(org, name).await > 0 {
            assert!(start.elapsed() < Duration::from_secs(20), "running containers of {org}/{name} were left behind");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Polls `probe` until it returns `Some`; panics with `what` after `timeout`.
    pub async fn eventually<T, F: std::future::Future<Output = Option<T>>>(
        &self,
        what: &str,
        timeout: Duration,
        mut probe: impl FnMut() -> F,
    ) -> T {
        let start = Instant::now();
        loop {
            if let Some(value) = probe().await {
                return value;
            }
            assert!(start.elapsed() < timeout, "not within {timeout:?}: {what}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.server.abort();
    }
}

pub async fn json_of(r: Response) -> (StatusCode, Value) {
    let status = r.status();
    let text = r.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

impl TestApp {
    /// Deletes every function this platform made, with their containers and images.
    pub async fn finish(self) {
        let store = self.service.store();
        for f in store.list_functions(None).await.unwrap() {
            // As a delete does: marked deleting, so the pool stops keeping containers ahead for it.
            store.set_function_status(f.id, app::model::FunctionStatus::Deleting).await.unwrap();
            self.service.calls().gateway().pool().forget(f.id);
            // A container of the last call may still be on its way out: try a few times.
            for _ in 0..10 {
                if self.service.purge_function(&f).await {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
        }
    }
}

impl TestApp {
    /// Calls a function with `X-Invoke-Type: async`; returns the invocation id of the 202.
    pub async fn call_async(&self, token: &str, org: &str, path: &str) -> String {
        let r = self
            .client
            .post(self.url(&format!("/api/org/{org}/{path}")))
            .bearer_auth(token)
            .header("X-Invoke-Type", "async")
            .body("payload")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::ACCEPTED);
        let location = r.headers()["location"].to_str().unwrap().to_string();
        let (_, body) = json_of(r).await;
        let id = body["invocation_id"].as_str().unwrap().to_string();
        assert_eq!(location, format!("/api/v1/invocations/{id}"));
        id
    }

    /// Polls an invocation until it is in one of `states`; panics after two minutes.
    pub async fn wait_for_state(&self, token: &str, id: &str, states: &[&str]) -> Value {
        self.wait_for_invocation(token, id, |inv| states.contains(&inv["state"].as_str().unwrap_or(""))).await
    }

    /// Reads the invocation until `wanted` holds for it; returns it then.
    pub async fn wait_for_invocation(&self, token: &str, id: &str, wanted: impl Fn(&Value) -> bool) -> Value {
        let start = Instant::now();
        loop {
            let (status, inv) = json_of(self.get(token, &format!("/api/v1/invocations/{id}")).await).await;
            assert_eq!(status, StatusCode::OK, "{inv}");
            if wanted(&inv) {
                return inv;
            }
            assert!(start.elapsed() < Duration::from_secs(120), "invocation stuck: {inv}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// Runs an async test body once on SQLite and once on PostgreSQL.
#[macro_export]
macro_rules! on_both_databases {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::common::Db::Sqlite).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::common::Db::Postgres).await
                }
            )*
        }
    };
}
