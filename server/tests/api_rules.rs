//! The API's rules through `router(state)`, with no Docker engine behind it: who may do what,
//! what one tenant can see of another, how bad input is answered, and the call pipeline's
//! checks before any container is needed. Runs on SQLite and on PostgreSQL.

mod common;

use common::offline::OfflineApp;
use common::Db;
use serde_json::json;

const CODE: &str = "module.exports = async () => 'hi';";

async fn roles_decide_who_manages_tenants_users_and_functions(db: Db) {
    let app = OfflineApp::new(db).await;
    let t = app.tenant().await;
    let other = app.tenant().await;

    let (status, body) = app.send("POST", "/api/v1/tenants", Some(&t.dev), Some(json!({"name": "mine"}))).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"], "only the provider admin may do this");
    let (status, _) = app.send("GET", "/api/v1/tenants", Some(&t.admin), None).await;
    assert_eq!(status, 403);
    let (status, body) = app.send("GET", "/api/v1/users", Some(&t.dev), None).await;
    assert_eq!(status, 403, "{body}");

    // A tenant admin adds users to its own org only, and sees only its own.
    let user = json!({"username": "carol", "password": "password-123", "role": "developer"});
    let (status, body) = app.send("POST", &format!("/api/v1/tenants/{}/users", t.org), Some(&t.admin), Some(user.clone())).await;
    assert_eq!(status, 201, "{body}");
    let (status, _) = app.send("POST", &format!("/api/v1/tenants/{}/users", other.org), Some(&t.admin), Some(user.clone())).await;
    assert_eq!(status, 404, "another org is not found, as if it did not exist");
    let (status, body) = app.send("POST", &format!("/api/v1/tenants/{}/users", t.org), Some(&t.dev), Some(user)).await;
    assert_eq!(status, 403, "{body}");
    let (_, users) = app.send("GET", "/api/v1/users", Some(&t.admin), None).await;
    let orgs: Vec<&str> = users.as_array().unwrap().iter().map(|u| u["org"].as_str().unwrap()).collect();
    assert_eq!(orgs.len(), 3, "{users}");
    assert!(orgs.iter().all(|o| *o == t.org), "{users}");

    let function = json!({"name": "hello", "language": "nodejs", "code": CODE});
    let (status, body) = app.send("POST", "/api/v1/functions", Some(&app.admin_token), Some(function)).await;
    assert_eq!(status, 403, "{body}");
    assert!(body["error"].as_str().unwrap().contains("sign in as a user of a tenant"), "{body}");
}

async fn a_duplicate_is_named_at_its_own_field(db: Db) {
    let app = OfflineApp::new(db).await;
    let org_id = format!("urn:vcloud:org:{}", uuid::Uuid::new_v4());
    let t = app.tenant().await;
    let (status, body) =
        app.send("PUT", &format!("/api/v1/tenants/{}", t.org), Some(&app.admin_token), Some(json!({"vcd_org_id": org_id}))).await;
    assert_eq!(status, 200, "{body}");

    let (status, by_name) = app.send("POST", "/api/v1/tenants", Some(&app.admin_token), Some(json!({"name": t.org}))).await;
    assert_eq!(status, 409, "{by_name}");
    assert_eq!(by_name["fields"][0]["field"], "name", "{by_name}");
    assert!(by_name["error"].as_str().unwrap().contains("already exists"), "{by_name}");

    let fresh = common::unique("t");
    let (status, by_org) =
        app.send("POST", "/api/v1/tenants", Some(&app.admin_token), Some(json!({"name": fresh, "vcd_org_id": org_id}))).await;
    assert_eq!(status, 409, "{by_org}");
    assert_eq!(by_org["fields"][0]["field"], "vcd_org_id", "{by_org}");
    assert!(by_org["error"].as_str().unwrap().contains("vCD org id"), "{by_org}");
    // Nothing was stored by the refused request.
    let (_, tenants) = app.send("GET", "/api/v1/tenants", Some(&app.admin_token), None).await;
    assert!(!tenants.to_string().contains(&fresh), "{tenants}");

    // A user twice in one org, a function twice in one tenant.
    let user = json!({"username": "dev", "password": "password-123", "role": "developer"});
    let (status, body) = app.send("POST", &format!("/api/v1/tenants/{}/users", t.org), Some(&app.admin_token), Some(user)).await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["fields"][0]["field"], "username", "{body}");
    let function = json!({"name": "twice", "language": "nodejs", "code": CODE});
    let (status, _) = app.send("POST", "/api/v1/functions", Some(&t.dev), Some(function.clone())).await;
    assert_eq!(status, 202);
    let (status, body) = app.send("POST", "/api/v1/functions", Some(&t.dev), Some(function)).await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["fields"][0]["field"], "name", "{body}");
}

async fn bad_input_is_answered_at_its_field(db: Db) {
    let app = OfflineApp::new(db).await;
    let t = app.tenant().await;
    let (status, body) =
        app.send("POST", "/api/v1/functions", Some(&t.dev), Some(json!({"name": "Bad Name!", "language": "cobol", "code": ""}))).await;
    assert_eq!(status, 400, "{body}");
    let fields: Vec<&str> = body["fields"].as_array().unwrap().iter().map(|f| f["field"].as_str().unwrap()).collect();
    for field in ["name", "language", "code"] {
        assert!(fields.contains(&field), "{field} missing in {body}");
    }
    let (status, body) =
        app.send("POST", "/api/v1/functions", Some(&t.dev), Some(json!({"name": "x1", "language": "nodejs", "code": CODE, "memroy": 1}))).await;
    assert_eq!(status, 400);
    assert!(body["error"].as_str().unwrap().contains("unknown field(s) memroy"), "{body}");
    let (status, body) = app.send("POST", "/api/v1/tenants", Some(&app.admin_token), Some(json!({"name": "provider"}))).await;
    assert_eq!(status, 400);
    assert_eq!(body["fields"][0]["field"], "name", "{body}");
    let (status, body) =
        app.send("POST", "/api/v1/tenants", Some(&app.admin_token), Some(json!({"name": common::unique("t"), "vcd_org_id": "acme"}))).await;
    assert_eq!(status, 400);
    assert_eq!(body["fields"][0]["field"], "vcd_org_id", "{body}");
    let (status, body) = app.send("GET", "/api/v1/nothing-here", Some(&t.dev), None).await;
    assert_eq!(status, 404);
    assert!(body["error"].as_str().unwrap().contains("openapi"), "{body}");
}

async fn another_tenants_functions_are_not_there(db: Db) {
    let app = OfflineApp::new(db).await;
    let a = app.tenant().await;
    let b = app.tenant().await;
    let (status, _) =
        app.send("POST", "/api/v1/functions", Some(&a.dev), Some(json!({"name": "secret", "language": "python", "code": "def handle(e, c):\n    return 1\n"}))).await;
    assert_eq!(status, 202);

    let (status, missing) = app.send("GET", &format!("/api/v1/functions/nothing?org={}", a.org), Some(&b.dev), None).await;
    assert_eq!(status, 404);
    let (status, hidden) = app.send("GET", &format!("/api/v1/functions/secret?org={}", a.org), Some(&b.dev), None).await;
    assert_eq!(status, 404);
    assert_eq!(hidden["error"].as_str().unwrap().replace("secret", "X"), missing["error"].as_str().unwrap().replace("nothing", "X"));
    let (_, listed) = app.send("GET", "/api/v1/functions", Some(&b.dev), None).await;
    assert_eq!(listed, json!([]));
    let (status, _) = app.send("DELETE", &format!("/api/v1/functions/secret?org={}", a.org), Some(&b.admin), None).await;
    assert_eq!(status, 404);
    let (status, _) = app.send("GET", &format!("/api/v1/functions/secret?org={}", a.org), Some(&app.admin_token), None).await;
    assert_eq!(status, 200, "the provider sees every tenant's functions");
}

/// The pipeline's own checks come before any container: who may call, what exists.
async fn calls_are_authorized_before_anything_runs(db: Db) {
    let app = OfflineApp::new(db).await;
    let a = app.tenant().await;
    let b = app.tenant().await;
    let (status, _) = app.send("POST", "/api/v1/functions", Some(&a.dev), Some(json!({"name": "private", "language": "nodejs", "code": CODE}))).await;
    assert_eq!(status, 202);
    let route = format!("/api/org/{}/private/some/path", a.org);

    let (status, body) = app.send("GET", &route, None, None).await;
    assert_eq!(status, 401, "{body}");
    assert!(body["error"].as_str().unwrap().contains("Authorization: Bearer"), "{body}");
    let (status, body) = app.send("GET", &route, Some("vfs_forged"), None).await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["error"], "invalid or revoked token");

    let (status, hidden) = app.send("POST", &route, Some(&b.dev), None).await;
    let (missing_status, missing) = app.send("POST", &format!("/api/org/{}/nothing", a.org), Some(&b.dev), None).await;
    assert_eq!((status, missing_status), (404, 404));
    assert_eq!(hidden["error"].as_str().unwrap().replace("private", "X"), missing["error"].as_str().unwrap().replace("nothing", "X"));

    // Its own tenant gets through to the function, which has no version that serves yet.
    let (status, body) = app.send("GET", &route, Some(&a.dev), None).await;
    assert_eq!(status, 503, "{body}");
    assert!(body["error"].as_str().unwrap().contains("\"private\" has no"), "{body}");
    // Async calls are checked the same way before anything is queued.
    let request = http::Request::builder().uri(&route).header("x-invoke-type", "async").body(axum::body::Body::empty()).unwrap();
    let response = tower::ServiceExt::oneshot(app.front.clone(), request).await.unwrap();
    assert_eq!(response.status(), 401);

    let (status, body) = app.send("GET", &format!("/api/org/{}/%FF", a.org), Some(&a.dev), None).await;
    assert_eq!(status, 400, "{body}");
    assert!(body["error"].as_str().unwrap().contains("not UTF-8"), "{body}");
}

on_both_databases!(
    roles_decide_who_manages_tenants_users_and_functions,
    a_duplicate_is_named_at_its_own_field,
    bad_input_is_answered_at_its_field,
    another_tenants_functions_are_not_there,
    calls_are_authorized_before_anything_runs,
);
