//! Running the platform as its provider and tenant admins do: tokens that expire and keep to
//! their scope, users disabled, reset and deleted, a tenant deleted with nothing left in
//! Docker, sign-in attempts limited, and the audit log. Runs on SQLite and on PostgreSQL.

mod common;

use common::{json_of, Db, TestApp};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::time::Duration;

const NODE_HELLO: &str = "module.exports = async () => 'hi';";

/// A new token of the user behind `token`, made with it.
async fn token_of(app: &TestApp, token: &str, body: Value) -> (StatusCode, Value) {
    json_of(app.post(token, "/api/v1/tokens", body).await).await
}

async fn patch(app: &TestApp, token: &str, path: &str, body: Value) -> (StatusCode, Value) {
    json_of(app.client.patch(app.url(path)).bearer_auth(token).json(&body).send().await.unwrap()).await
}

async fn login(app: &TestApp, org: &str, username: &str, password: &str) -> reqwest::Response {
    app.post("", "/api/v1/tokens", json!({"org": org, "username": username, "password": password})).await
}

fn error_of(body: &Value) -> &str {
    body["error"].as_str().unwrap_or_default()
}

async fn tokens_expire_and_keep_to_their_scope(db: Db) {
    let app = TestApp::spawn_with(db, |c| (c.token_days, c.token_max_days) = (90, 30)).await;
    let t = app.tenant().await;
    app.deploy(&t.dev, "hello", "nodejs", NODE_HELLO).await;
    let now = chrono_ms();

    // The default is the provider's default, held to its maximum.
    let (status, made) = token_of(&app, &t.dev, json!({"name": "default"})).await;
    assert_eq!(status, StatusCode::CREATED, "{made}");
    assert_eq!(made["scope"], "full");
    let days = (made["expires_at"].as_i64().unwrap() - now) as f64 / 86_400_000.0;
    assert!((29.9..30.1).contains(&days), "expires in {days} days");

    for (body, field, says) in [
        (json!({"name": "x", "expires_in_days": 0}), "expires_in_days", "between 1 and 30"),
        (json!({"name": "x", "expires_in_days": 31}), "expires_in_days", "between 1 and 30"),
        (json!({"name": "x", "scope": "admin"}), "scope", "\"read\", \"invoke\" or \"full\""),
        (json!({"name": ""}), "name", "1–100 characters"),
    ] {
        let (status, answer) = token_of(&app, &t.dev, body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body} → {answer}");
        assert_eq!(answer["fields"][0]["field"], field, "{answer}");
        assert!(answer["fields"][0]["message"].as_str().unwrap().contains(says), "{answer}");
    }
    let (status, answer) = token_of(&app, &t.dev, json!({"name": "x", "scope": "full", "org": t.org})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "a token and half a password: {answer}");

    // Read: looks, changes nothing, calls nothing, makes no tokens.
    let (_, read) = token_of(&app, &t.dev, json!({"name": "dashboards", "scope": "read", "expires_in_days": 1})).await;
    let read = read["token"].as_str().unwrap().to_string();
    assert_eq!(app.get(&read, "/api/v1/functions/hello").await.status(), StatusCode::OK);
    let (status, answer) = json_of(app.put(&read, "/api/v1/functions/hello", json!({"memory_mb": 256})).await).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{answer}");
    assert!(error_of(&answer).contains("scope is \"read\""), "{answer}");
    let (status, answer) = json_of(app.call(Some(&read), &t.org, "hello").await).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{answer}");
    assert!(answer.to_string().contains("may not call functions"), "{answer}");
    let (status, answer) = token_of(&app, &read, json!({"name": "wider", "scope": "full"})).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "a read token makes no token: {answer}");

    // Invoke: calls, but changes nothing.
    let (_, invoke) = token_of(&app, &t.dev, json!({"name": "caller", "scope": "invoke"})).await;
    let invoke = invoke["token"].as_str().unwrap().to_string();
    let r = app.call(Some(&invoke), &t.org, "hello").await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.text().await.unwrap(), "hi");
    assert_eq!(app.delete(&invoke, "/api/v1/functions/hello").await.status(), StatusCode::FORBIDDEN);
    assert_eq!(app.function(&t.dev, "hello").await["status"], "ready", "nothing was changed");

    // The list shows scope and expiry, never a secret.
    let (status, tokens) = json_of(app.get(&t.dev, "/api/v1/tokens").await).await;
    assert_eq!(status, StatusCode::OK);
    let listed = tokens.as_array().unwrap().iter().find(|t| t["name"] == "dashboards").unwrap().clone();
    assert_eq!(listed["scope"], "read");
    assert!(!tokens.to_string().contains(&read), "no secret in the list");

    // Expired: refused with 401 that says so, on the API and on the function's route.
    let id = listed["id"].as_i64().unwrap();
    sqlx::query("UPDATE api_tokens SET expires_at = $1 WHERE id = $2")
        .bind(now - 1000)
        .bind(id)
        .execute(&app.service.store().pool)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await; // the token cache lasts a second
    let (status, answer) = json_of(app.get(&read, "/api/v1/functions").await).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{answer}");
    assert!(error_of(&answer).starts_with("token expired at ") && error_of(&answer).contains("make a new one"), "{answer}");
    let (_, public_read) = token_of(&app, &t.dev, json!({"name": "r2", "scope": "read"})).await;
    app.put(&t.dev, "/api/v1/functions/hello", json!({"public": true})).await;
    let r = app.call(Some(&read), &t.org, "hello").await;
    assert_eq!(r.status(), StatusCode::OK, "a public function takes any caller, even one with an expired token");
    drop(public_read);

    // Revoked through the API.
    assert_eq!(app.delete(&t.dev, &format!("/api/v1/tokens/{id}")).await.status(), StatusCode::NO_CONTENT);
    assert_eq!(app.delete(&t.dev, &format!("/api/v1/tokens/{id}")).await.status(), StatusCode::NOT_FOUND);
    let (status, answer) = json_of(app.delete(&t.dev, "/api/v1/tokens/abc").await).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
}

fn chrono_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64
}

async fn users_are_disabled_reset_promoted_and_deleted(db: Db) {
    let app = TestApp::spawn(db).await;
    let t = app.tenant().await;
    let other = app.tenant().await;
    let dev_path = format!("/api/v1/tenants/{}/users/dev", t.org);

    // Only an admin of the tenant (or the provider) changes its users.
    let (status, _) = patch(&app, &t.dev, &dev_path, json!({"disabled": true})).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, answer) = patch(&app, &other.admin, &dev_path, json!({"disabled": true})).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "another tenant's admin is told nothing: {answer}");
    let (status, answer) = patch(&app, &t.admin, &format!("/api/v1/tenants/{}/users/boss", t.org), json!({"disabled": true})).await;
    assert_eq!(status, StatusCode::CONFLICT, "{answer}");
    let (status, answer) = patch(&app, &t.admin, &dev_path, json!({"role": "root", "password": "short"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    let fields: Vec<&str> = answer["fields"].as_array().unwrap().iter().map(|f| f["field"].as_str().unwrap()).collect();
    assert_eq!(fields, ["role", "password"], "{answer}");
    let (status, answer) = patch(&app, &t.admin, &dev_path, json!({"disable": true})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "a misspelt field: {answer}");

    // Disabled: its token, its sign-in and its sessions stop; enabled again, they work.
    let (status, user) = patch(&app, &t.admin, &dev_path, json!({"disabled": true})).await;
    assert_eq!((status, &user["disabled"]), (StatusCode::OK, &json!(true)), "{user}");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (status, answer) = json_of(app.get(&t.dev, "/api/v1/functions").await).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(error_of(&answer).contains("disabled"), "{answer}");
    let (status, answer) = json_of(login(&app, &t.org, "dev", "password-123").await).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{answer}");
    assert!(error_of(&answer).contains("disabled"), "{answer}");
    let (status, answer) = json_of(login(&app, &t.org, "dev", "wrong-password").await).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "a wrong password does not learn that the account is disabled: {answer}");
    let (status, _) = patch(&app, &t.admin, &dev_path, json!({"disabled": false})).await;
    assert_eq!(status, StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(app.get(&t.dev, "/api/v1/functions").await.status(), StatusCode::OK);

    // A developer made admin may list users; a reset password replaces the old one.
    assert_eq!(app.get(&t.dev, "/api/v1/users").await.status(), StatusCode::FORBIDDEN);
    let (status, user) = patch(&app, &t.admin, &dev_path, json!({"role": "admin", "password": "a-new-password"})).await;
    assert_eq!((status, &user["role"]), (StatusCode::OK, &json!("admin")), "{user}");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(app.get(&t.dev, "/api/v1/users").await.status(), StatusCode::OK);
    assert_eq!(login(&app, &t.org, "dev", "password-123").await.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(login(&app, &t.org, "dev", "a-new-password").await.status(), StatusCode::CREATED);

    // Deleted: gone from the list, its tokens refused, its name free again.
    assert_eq!(app.delete(&t.admin, &dev_path).await.status(), StatusCode::NO_CONTENT);
    assert_eq!(app.delete(&t.admin, &dev_path).await.status(), StatusCode::NOT_FOUND);
    let (status, answer) = json_of(app.delete(&t.admin, &format!("/api/v1/tenants/{}/users/boss", t.org)).await).await;
    assert_eq!(status, StatusCode::CONFLICT, "nobody deletes themselves: {answer}");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(app.get(&t.dev, "/api/v1/functions").await.status(), StatusCode::UNAUTHORIZED);
    let (_, users) = json_of(app.get(&t.admin, "/api/v1/users").await).await;
    assert!(!users.as_array().unwrap().iter().any(|u| u["username"] == "dev"), "{users}");
    let r = app.post(&t.admin, &format!("/api/v1/tenants/{}/users", t.org), json!({"username": "dev", "password": "password-456", "role": "developer"})).await;
    assert_eq!(r.status(), StatusCode::CREATED);
}

async fn a_deleted_tenant_leaves_nothing_behind(db: Db) {
    let app = TestApp::spawn(db).await;
    let t = app.tenant().await;
    let other = app.tenant().await;
    app.deploy(&t.dev, "hello", "nodejs", NODE_HELLO).await;
    app.deploy(&t.dev, "second", "python", "def handler(event, context):\n    return 'py'\n").await;
    app.deploy(&other.dev, "hello", "nodejs", NODE_HELLO).await;
    for name in ["hello", "second"] {
        assert_eq!(app.call(Some(&t.dev), &t.org, name).await.status(), StatusCode::OK);
    }
    assert_eq!(app.call(Some(&other.dev), &other.org, "hello").await.status(), StatusCode::OK);
    assert!(app.containers_of(&t.org, "hello").await > 0, "a warm container to remove");
    let owned_images = |images: &[server::run::engine::ImageSummary], org: &str| {
        images.iter().filter(|i| i.labels.get("vcd-faas.tenant").map(String::as_str) == Some(org)).count()
    };
    assert!(owned_images(&app.engine.list_function_images().await.unwrap(), &t.org) >= 2);

    let path = format!("/api/v1/tenants/{}", t.org);
    assert_eq!(app.delete(&t.admin, &path).await.status(), StatusCode::FORBIDDEN, "only the provider");
    assert_eq!(app.delete(&app.admin_token, "/api/v1/tenants/no-such-org").await.status(), StatusCode::NOT_FOUND);
    let (status, gone) = json_of(app.delete(&app.admin_token, &path).await).await;
    assert_eq!(status, StatusCode::OK, "{gone}");
    assert_eq!(gone, json!({"org": t.org, "functions": 2, "users": 2}));

    // Nothing of it is left in Docker, its routes and tokens are gone, the other tenant runs on.
    let containers = app.engine.list_function_containers().await.unwrap();
    let left: Vec<_> = containers.iter().filter(|c| c.labels.get("vcd-faas.tenant").map(String::as_str) == Some(&t.org)).collect();
    assert!(left.is_empty(), "{} container(s) left", left.len());
    assert_eq!(owned_images(&app.engine.list_function_images().await.unwrap(), &t.org), 0, "images left");
    assert_eq!(app.call(None, &t.org, "hello").await.status(), StatusCode::NOT_FOUND);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(app.get(&t.dev, "/api/v1/functions").await.status(), StatusCode::UNAUTHORIZED);
    let (_, tenants) = json_of(app.get(&app.admin_token, "/api/v1/tenants").await).await;
    assert!(!tenants.as_array().unwrap().iter().any(|x| x["name"] == t.org.as_str()), "{tenants}");
    let r = app.call(Some(&other.dev), &other.org, "hello").await;
    assert_eq!((r.status(), r.text().await.unwrap()), (StatusCode::OK, "hi".to_string()));
    assert!(owned_images(&app.engine.list_function_images().await.unwrap(), &other.org) >= 1, "the other tenant keeps its image");

    // The name is free again, for a tenant with nothing in it.
    let r = app.post(&app.admin_token, "/api/v1/tenants", json!({"name": t.org})).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let (_, functions) = json_of(app.get(&app.admin_token, "/api/v1/functions").await).await;
    assert!(!functions.as_array().unwrap().iter().any(|f| f["org"] == t.org.as_str()), "{functions}");
    // The audit log keeps who deleted it.
    let (_, entries) = json_of(app.get(&app.admin_token, &format!("/api/v1/audit?org={}", t.org)).await).await;
    let deletion = entries.as_array().unwrap().iter().find(|e| e["action"] == "tenant.delete").expect("a tenant.delete entry");
    assert_eq!(deletion["actor"], "provider/admin");
    assert_eq!(deletion["detail"], "2 function(s), 2 user(s)");
}

/// The portal's sign-in: its server function's URL, read from the login form as a browser does.
async fn portal_login(app: &TestApp, org: &str, username: &str, password: &str) -> reqwest::Response {
    let page = app.client.get(app.url("/login")).send().await.unwrap().text().await.unwrap();
    let action = page.split("action=\"").skip(1).map(|rest| &rest[..rest.find('"').unwrap()]).find(|a| a.starts_with("/api/login"));
    let action = action.unwrap_or_else(|| panic!("no sign-in form in {page}"));
    app.client
        .post(app.url(action))
        .form(&[("org", org), ("username", username), ("password", password)])
        .header("accept", "application/json")
        .send()
        .await
        .unwrap()
}

async fn sign_in_attempts_are_limited(db: Db) {
    let app = TestApp::spawn_with(db, |c| c.login_attempts = 3).await;
    let t = app.tenant().await;
    for _ in 0..3 {
        assert_eq!(login(&app, &t.org, "dev", "wrong-password").await.status(), StatusCode::UNAUTHORIZED);
    }
    // Held: even the right password waits, and the answer says how long.
    let r = login(&app, &t.org, "dev", "password-123").await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    let wait: u64 = r.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((800..=900).contains(&wait), "Retry-After {wait}");
    let (_, answer) = json_of(r).await;
    assert!(error_of(&answer).contains("too many failed sign-ins: try again in 15 minute(s)"), "{answer}");
    // Another account from the same address is not held (its own limit is 4× as many).
    assert_eq!(login(&app, &t.org, "boss", "password-123").await.status(), StatusCode::CREATED);
    // The portal's sign-in is held alike, with the same status.
    let r = portal_login(&app, &t.org, "dev", "password-123").await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS, "{}", r.text().await.unwrap());
}

async fn the_portal_sign_in_answers_401_for_a_wrong_password(db: Db) {
    let app = TestApp::spawn(db).await;
    let t = app.tenant().await;
    let r = portal_login(&app, &t.org, "dev", "wrong-password").await;
    let status = r.status();
    let text = r.text().await.unwrap();
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{text}");
    assert!(text.contains("wrong org, username or password"), "{text}");
}

async fn the_audit_log_tells_who_changed_what(db: Db) {
    let app = TestApp::spawn(db).await;
    let t = app.tenant().await;
    let other = app.tenant().await;
    let spec = json!({"name": "audited", "language": "nodejs", "code": NODE_HELLO, "secrets": {"API_KEY": "s3cr3t-value-42"}});
    app.create_with(&t.dev, spec).await;
    app.wait_ready(&t.dev, "audited").await;
    app.put(&t.dev, "/api/v1/functions/audited", json!({"memory_mb": 256})).await;
    let (_, made) = token_of(&app, &t.dev, json!({"name": "ci", "scope": "invoke"})).await;
    let secret = made["token"].as_str().unwrap().to_string();
    app.put(&app.admin_token, &format!("/api/v1/tenants/{}", t.org), json!({"max_functions": 7})).await;
    assert_eq!(app.delete(&t.dev, "/api/v1/functions/audited").await.status(), StatusCode::NO_CONTENT);
    app.deploy(&other.dev, "elsewhere", "nodejs", NODE_HELLO).await;

    let (status, entries) = json_of(app.get(&t.admin, "/api/v1/audit").await).await;
    assert_eq!(status, StatusCode::OK, "{entries}");
    let seen: Vec<(String, String, String)> = entries
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["actor"].as_str().unwrap().to_string(), e["action"].as_str().unwrap().to_string(), e["target"].as_str().unwrap().to_string()))
        .collect();
    let dev = format!("{}/dev", t.org);
    let expected = [
        (dev.clone(), "function.delete", "audited"),
        ("provider/admin".to_string(), "tenant.update", t.org.as_str()),
        (dev.clone(), "token.create", "ci"),
        (dev.clone(), "function.update", "audited"),
        (dev.clone(), "function.create", "audited"),
        ("provider/admin".to_string(), "user.create", "boss"),
        ("provider/admin".to_string(), "user.create", "dev"),
        ("provider/admin".to_string(), "tenant.create", t.org.as_str()),
    ];
    let expected: Vec<(String, String, String)> = expected.iter().map(|(a, b, c)| (a.clone(), b.to_string(), c.to_string())).collect();
    // The tokens `tenant()` made by signing in are changes too; the rest comes newest first.
    let without_sign_ins: Vec<_> = seen.iter().filter(|(_, action, target)| !(action == "token.create" && target == "api")).cloned().collect();
    assert_eq!(without_sign_ins, expected, "{entries:#}");
    let update = entries.as_array().unwrap().iter().find(|e| e["action"] == "tenant.update").unwrap();
    assert!(update["detail"].as_str().unwrap().contains("max functions 50") && update["detail"].as_str().unwrap().contains("max functions 7"), "{update}");
    let text = entries.to_string();
    assert!(!text.contains("s3cr3t-value-42") && !text.contains(&secret), "no secret in the audit log");
    assert!(!text.contains("elsewhere"), "a tenant admin sees only its tenant's entries");

    let (status, _) = json_of(app.get(&t.admin, &format!("/api/v1/audit?org={}", other.org)).await).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "not another tenant's");
    assert_eq!(app.get(&t.dev, "/api/v1/audit").await.status(), StatusCode::FORBIDDEN);
    let (status, all) = json_of(app.get(&app.admin_token, "/api/v1/audit?limit=500").await).await;
    assert_eq!(status, StatusCode::OK);
    assert!(all.to_string().contains("elsewhere") && all.to_string().contains("audited"), "the provider sees all");
    let (status, page) = json_of(app.get(&app.admin_token, &format!("/api/v1/audit?org={}&limit=2", t.org)).await).await;
    assert_eq!((status, page.as_array().unwrap().len()), (StatusCode::OK, 2));
    let before = page[1]["id"].as_i64().unwrap();
    let (_, next) = json_of(app.get(&app.admin_token, &format!("/api/v1/audit?org={}&limit=2&before={before}", t.org)).await).await;
    assert!(next[0]["id"].as_i64().unwrap() < before, "the next page is older");
    for bad in ["/api/v1/audit?limit=0", "/api/v1/audit?limit=501", "/api/v1/audit?limit=x", "/api/v1/audit?orgs=x"] {
        let (status, answer) = json_of(app.get(&app.admin_token, bad).await).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {answer}");
        assert!(answer["error"].is_string(), "{bad}: {answer}");
    }
}

on_both_databases!(
    tokens_expire_and_keep_to_their_scope,
    users_are_disabled_reset_promoted_and_deleted,
    a_deleted_tenant_leaves_nothing_behind,
    sign_in_attempts_are_limited,
    the_portal_sign_in_answers_401_for_a_wrong_password,
    the_audit_log_tells_who_changed_what,
);
