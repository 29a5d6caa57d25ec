//! The platform with no Docker engine behind it, called through its router with `oneshot`:
//! for the API's rules (validation, tenant scoping, roles, error shapes), which need none.

use super::{fresh_database, unique, Db, Tenant, ADMIN_PASSWORD};
use axum::body::Body;
use http_body_util::BodyExt as _;
use serde_json::{json, Value};
use server::config::Config;
use server::http::front::Front;
use server::http::state::AppState;
use server::startup::{assemble, Docker};
use tower::ServiceExt as _;

pub struct OfflineApp {
    pub front: Front,
    pub state: AppState,
    pub admin_token: String,
    _dir: tempfile::TempDir,
}

impl OfflineApp {
    pub async fn new(db: Db) -> OfflineApp {
        let dir = tempfile::tempdir().unwrap();
        let url = fresh_database(db, dir.path()).await;
        let mut config = Config::for_tests(dir.path().join("data"), url);
        // A plain file where the engine's socket would be: nothing answers there, so a test that
        // needed the engine would fail, not pass by chance.
        let socket = dir.path().join("no-docker.sock");
        std::fs::write(&socket, "").unwrap();
        config.docker_host = Some(format!("unix://{}", socket.display()));
        let assembled = assemble(config, Docker::Unconnected).await.expect("the platform assembles without an engine");
        assembled.state.service.bootstrap_admin().await.unwrap();
        let state = assembled.state.clone();
        let front = server::http::front(state.clone());
        let mut app = OfflineApp { front, state, admin_token: String::new(), _dir: dir };
        app.admin_token = app.token("provider", "admin", ADMIN_PASSWORD).await;
        app
    }

    /// One request; the answer's status and JSON body (`null` when it has none).
    pub async fn send(&self, method: &str, path: &str, token: Option<&str>, body: Option<Value>) -> (u16, Value) {
        let mut request = http::Request::builder().method(method).uri(path);
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        let request = match body {
            Some(body) => request.header("content-type", "application/json").body(Body::from(body.to_string())),
            None => request.body(Body::empty()),
        };
        let response = self.front.clone().oneshot(request.unwrap()).await.unwrap();
        let status = response.status().as_u16();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
    }

    /// One request with a body of the given content type.
    pub async fn send_bytes(&self, method: &str, path: &str, token: &str, content_type: &str, body: Vec<u8>) -> (u16, Value) {
        let request = http::Request::builder()
            .method(method)
            .uri(path)
            .header("authorization", format!("Bearer {token}"))
            .header("content-type", content_type)
            .body(Body::from(body))
            .unwrap();
        let response = self.front.clone().oneshot(request).await.unwrap();
        let status = response.status().as_u16();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
    }

    pub async fn token(&self, org: &str, username: &str, password: &str) -> String {
        let (status, body) =
            self.send("POST", "/api/v1/tokens", None, Some(json!({"org": org, "username": username, "password": password}))).await;
        assert_eq!(status, 201, "login of {org}/{username}: {body}");
        body["token"].as_str().unwrap().to_string()
    }

    /// A new tenant with a developer and a tenant admin, each with a token.
    pub async fn tenant(&self) -> Tenant {
        let org = unique("t");
        let (status, body) = self.send("POST", "/api/v1/tenants", Some(&self.admin_token), Some(json!({"name": org}))).await;
        assert_eq!(status, 201, "{body}");
        for (user, role) in [("dev", "developer"), ("boss", "admin")] {
            let body = json!({"username": user, "password": "password-123", "role": role});
            let (status, answer) = self.send("POST", &format!("/api/v1/tenants/{org}/users"), Some(&self.admin_token), Some(body)).await;
            assert_eq!(status, 201, "{answer}");
        }
        let dev = self.token(&org, "dev", "password-123").await;
        let admin = self.token(&org, "boss", "password-123").await;
        Tenant { org, dev, admin }
    }
}
