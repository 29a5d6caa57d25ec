//! The REST API as a script or CI pipeline sees it: auth, tenants, users, functions, bad
//! input and tenant isolation. Runs on SQLite and on PostgreSQL.

mod common;

use common::{json_of, Db, TestApp};
use reqwest::StatusCode;
use serde_json::json;

const NODE_HELLO: &str = "module.exports = async () => 'hi';";

async fn tokens_need_the_right_password(db: Db) {
    let app = TestApp::spawn(db).await;
    let t = app.tenant().await;
    let (status, body) =
        json_of(app.post("", "/api/v1/tokens", json!({"org": t.org, "username": "dev", "password": "wrong-password"})).await).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"], "wrong org, username or password");
    // Same answer for an org that does not exist: nothing is revealed.
    let (status, body) =
        json_of(app.post("", "/api/v1/tokens", json!({"org": "nope", "username": "dev", "password": "x"})).await).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"], "wrong org, username or password");

    let r = app.client.get(app.url("/api/v1/functions")).send().await.unwrap();
    let (status, body) = json_of(r).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(body["error"].as_str().unwrap().contains("Bearer"));
    let (status, _) = json_of(app.get("vfs_forged", "/api/v1/functions").await).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

async fn malformed_requests_get_clear_errors(db: Db) {
    let app = TestApp::spawn(db).await;
    let t = app.tenant().await;
    let r = app
        .client
        .post(app.url("/api/v1/functions"))
        .bearer_auth(&t.dev)
        .header("content-type", "application/json")
        .body("{\"name\": \"x\",")
        .send()
        .await
        .unwrap();
    let (status, body) = json_of(r).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["error"].as_str().unwrap().starts_with("malformed JSON body"), "{body}");

    let r = app.client.post(app.url("/api/v1/functions")).bearer_auth(&t.dev).send().await.unwrap();
    let (status, body) = json_of(r).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["error"].as_str().unwrap().contains("empty"));

    // On its own connection: the server answers 413 before reading the body, then closes it.
    // Over twice the 10 MB of files a function may have (escaping may double JSON).
    let huge = "x".repeat(22 * 1024 * 1024);
    let one_off = reqwest::Client::new();
    let r = one_off.post(app.url("/api/v1/functions")).bearer_auth(&t.dev).json(&json!({"name": "big", "language": "nodejs", "code": huge})).send().await.unwrap();
    let (status, body) = json_of(r).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(body["error"].as_str().unwrap().contains("over"));

    let (status, body) = json_of(app.get(&t.dev, "/api/v1/nothing-here").await).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(body["error"].as_str().unwrap().contains("openapi"));

    // A misspelt field is refused, not dropped for its default, on every request.
    let spec = json!({"name": "typo", "language": "nodejs", "code": NODE_HELLO, "memory": 256, "trigger": {"type": "http"}});
    let (status, body) = json_of(app.post(&t.dev, "/api/v1/functions", spec).await).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["error"].as_str().unwrap().contains("unknown field(s) memory:"), "{body}");
    let (status, body) = json_of(app.post(&app.admin_token, "/api/v1/tenants", json!({"name": "typo-org", "maxmemory": 64})).await).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["error"].as_str().unwrap().contains("maxmemory"), "{body}");
    let (_, tenants) = json_of(app.get(&app.admin_token, "/api/v1/tenants").await).await;
    assert!(!tenants.to_string().contains("typo-org"), "nothing stored: {tenants}");
    let spec = json!({"name": "typo", "language": "nodejs", "code": NODE_HELLO, "trigger": {"type": "http"}});
    let (status, body) = json_of(app.post(&t.dev, "/api/v1/functions", spec).await).await;
    assert_eq!(status, StatusCode::ACCEPTED, "known fields only: {body}");
    let (status, body) = json_of(app.put(&t.dev, "/api/v1/functions/typo", json!({"timeout": 100})).await).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["error"].as_str().unwrap().contains("timeout"), "{body}");
}

async fn updates_never_undo_a_newer_version_nor_outgrow_lowered_limits(db: Db) {
    let app = TestApp::spawn(db).await;
    let t = app.tenant_with(json!({"max_memory_mb": 256, "max_instances": 4})).await;
    let spec = json!({"name": "f", "language": "nodejs", "code": NODE_HELLO, "memory_mb": 128, "max_instances": 4});
    app.create_with(&t.dev, spec).await;

    // Two editors start from version 1; the second to save is told, and v2 stays the latest.
    let (status, v2) = json_of(app.put(&t.dev, "/api/v1/functions/f", json!({"code": "module.exports = async () => 'v2';", "expected_version": 1})).await).await;
    assert_eq!((status, v2["latest_version"].as_i64()), (StatusCode::ACCEPTED, Some(2)), "{v2}");
    let (status, body) = json_of(app.put(&t.dev, "/api/v1/functions/f", json!({"timeout_ms": 1000, "expected_version": 1})).await).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(body["error"].as_str().unwrap().contains("latest version is now 2"), "{body}");
    let f = app.function(&t.dev, "f").await;
    assert_eq!((f["latest_version"].as_i64(), f["code"].as_str()), (Some(2), Some("module.exports = async () => 'v2';")));
    let (status, _) = json_of(app.put(&t.dev, "/api/v1/functions/f", json!({"timeout_ms": 1000, "expected_version": 2})).await).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let (status, body) = json_of(app.post(&t.dev, "/api/v1/functions", json!({"name": "g", "language": "nodejs", "code": NODE_HELLO, "expected_version": 1})).await).await;
    assert_eq!((status, body["fields"][0]["field"].as_str()), (StatusCode::BAD_REQUEST, Some("expected_version")), "{body}");

    // The provider lowers the limits: a change that keeps the old values is refused at those
    // fields, and goes through once it sets values within the new limits.
    let (status, _) = json_of(app.put(&app.admin_token, &format!("/api/v1/tenants/{}", t.org), json!({"max_memory_mb": 64, "max_instances": 2})).await).await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = json_of(app.put(&t.dev, "/api/v1/functions/f", json!({"code": "module.exports = async () => 'v4';"})).await).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let fields: Vec<&str> = body["fields"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
    assert_eq!(fields, ["memory_mb", "max_instances"], "{body}");
    assert!(body["fields"][0]["message"].as_str().unwrap().contains("128 (kept from version 3), over the tenant's limit of 64"), "{body}");
    assert_eq!(app.function(&t.dev, "f").await["latest_version"], 3, "nothing stored");
    let (status, f) = json_of(app.put(&t.dev, "/api/v1/functions/f", json!({"code": "module.exports = async () => 'v4';", "memory_mb": 64, "max_instances": 2})).await).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{f}");
    assert_eq!((f["latest_version"].as_i64(), f["memory_mb"].as_i64(), f["max_instances"].as_i64()), (Some(4), Some(64), Some(2)));
    app.finish().await;
}

async fn function_input_is_validated_field_by_field(db: Db) {
    let app = TestApp::spawn(db).await;
    let t = app.tenant_with(json!({"max_memory_mb": 256, "max_timeout_ms": 5000, "max_functions": 2})).await;
    let cases = [
        (json!({"name": "Bad_Name", "language": "nodejs", "code": NODE_HELLO}), StatusCode::BAD_REQUEST, "name"),
        (json!({"name": "", "language": "nodejs", "code": NODE_HELLO}), StatusCode::BAD_REQUEST, "name"),
        (json!({"name": "a".repeat(64), "language": "nodejs", "code": NODE_HELLO}), StatusCode::BAD_REQUEST, "name"),
        (json!({"name": "../etc", "language": "nodejs", "code": NODE_HELLO}), StatusCode::BAD_REQUEST, "name"),
        (json!({"name": "ok", "language": "cobol", "code": NODE_HELLO}), StatusCode::BAD_REQUEST, "language"),
        (json!({"name": "ok", "language": "nodejs", "code": "   "}), StatusCode::BAD_REQUEST, "code"),
        (json!({"name": "ok", "language": "nodejs", "code": "x".repeat(300 * 1024)}), StatusCode::BAD_REQUEST, "code"),
        (json!({"name": "ok", "language": "nodejs", "code": NODE_HELLO, "memory_mb": 1024}), StatusCode::UNPROCESSABLE_ENTITY, "memory_mb"),
        (json!({"name": "ok", "language": "nodejs", "code": NODE_HELLO, "timeout_ms": 60000}), StatusCode::UNPROCESSABLE_ENTITY, "timeout_ms"),
        (json!({"name": "ok", "language": "nodejs", "code": NODE_HELLO, "trigger": {"type": "vcd-event", "event": "bad event!"}}), StatusCode::BAD_REQUEST, "trigger"),
    ];
    for (spec, want_status, field) in cases {
        let (status, body) = json_of(app.post(&t.dev, "/api/v1/functions", spec.clone()).await).await;
        assert_eq!(status, want_status, "{spec}: {body}");
        assert_eq!(body["fields"][0]["field"], field, "{body}");
        assert!(!body["error"].as_str().unwrap().is_empty());
    }
    let (status, body) = json_of(app.post(&t.dev, "/api/v1/functions", json!({"name": "ok"})).await).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "missing fields: {body}");

    // Nothing invalid was stored.
    let (_, list) = json_of(app.get(&t.dev, "/api/v1/functions").await).await;
    assert_eq!(list.as_array().unwrap().len(), 0);

    let created = app.create(&t.dev, "first", "nodejs", NODE_HELLO).await;
    assert_eq!(created["status"], "initializing");
    assert_eq!(created["route"], format!("/api/org/{}/first", t.org));
    let (status, body) = json_of(app.post(&t.dev, "/api/v1/functions", json!({"name": "first", "language": "python", "code": "x"})).await).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(body["error"].as_str().unwrap().contains("already exists"));
    app.create(&t.dev, "second", "nodejs", NODE_HELLO).await;
    let (status, body) = json_of(app.post(&t.dev, "/api/v1/functions", json!({"name": "third", "language": "nodejs", "code": NODE_HELLO})).await).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(body["error"].as_str().unwrap().contains("limit of 2 functions"), "{body}");

    // A rejected update loses nothing.
    let (status, _) = json_of(app.put(&t.dev, "/api/v1/functions/first", json!({"memory_mb": 4096})).await).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (status, _) = json_of(app.put(&t.dev, "/api/v1/functions/first", json!({"name": "renamed"})).await).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "name cannot change");
    let f = app.function(&t.dev, "first").await;
    assert_eq!(f["code"], NODE_HELLO);
    assert_eq!(f["latest_version"], 1);
    app.finish().await;
}

async fn tenants_and_users_are_managed_by_the_right_people(db: Db) {
    let app = TestApp::spawn(db).await;
    let t = app.tenant().await;
    let other = app.tenant().await;

    // Only the provider manages tenants.
    let (status, _) = json_of(app.get(&t.admin, "/api/v1/tenants").await).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = json_of(app.post(&t.admin, "/api/v1/tenants", json!({"name": "sneaky"})).await).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, body) = json_of(app.post(&app.admin_token, "/api/v1/tenants", json!({"name": "Not Valid"})).await).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["fields"][0]["field"], "name");
    let (status, _) = json_of(app.post(&app.admin_token, "/api/v1/tenants", json!({"name": "provider"})).await).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = json_of(app.post(&app.admin_token, "/api/v1/tenants", json!({"name": t.org})).await).await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (status, body) = json_of(app.post(&app.admin_token, "/api/v1/tenants", json!({"name": "big", "max_memory_mb": 999_999})).await).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");

    let (status, list) = json_of(app.get(&app.admin_token, "/api/v1/tenants").await).await;
    assert_eq!(status, StatusCode::OK);
    let names: Vec<_> = list.as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap().to_string()).collect();
    assert!(names.contains(&t.org) && names.contains(&other.org));

    let (status, body) = json_of(
        app.put(&app.admin_token, &format!("/api/v1/tenants/{}", t.org), json!({"max_functions": 7, "vcd_org_id": "urn:vcloud:org:0b5c7e52-3a51-4bd5-9f1c-1a2b3c4d5e6f"})).await,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["max_functions"], 7);
    assert_eq!(body["vcd_org_id"], "urn:vcloud:org:0b5c7e52-3a51-4bd5-9f1c-1a2b3c4d5e6f");
    let (status, _) = json_of(
        app.put(&app.admin_token, &format!("/api/v1/tenants/{}", other.org), json!({"vcd_org_id": "urn:vcloud:org:0b5c7e52-3a51-4bd5-9f1c-1a2b3c4d5e6f"})).await,
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "one vCD org maps to one tenant");
    for bad in ["1234", "urn:vcloud:org:1234", "urn:vcloud:vdc:0b5c7e52-3a51-4bd5-9f1c-1a2b3c4d5e6f"] {
        let (status, body) = json_of(app.put(&app.admin_token, &format!("/api/v1/tenants/{}", other.org), json!({"vcd_org_id": bad})).await).await;
        assert_eq!((status, body["fields"][0]["field"].as_str()), (StatusCode::BAD_REQUEST, Some("vcd_org_id")), "{bad}: {body}");
    }

    // A tenant admin adds users to its own tenant only; a developer adds none.
    let user = |name: &str| json!({"username": name, "password": "long-enough-1", "role": "developer"});
    let (status, _) = json_of(app.post(&t.admin, &format!("/api/v1/tenants/{}/users", t.org), user("carol")).await).await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, _) = json_of(app.post(&t.admin, &format!("/api/v1/tenants/{}/users", other.org), user("mallory")).await).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = json_of(app.post(&t.dev, &format!("/api/v1/tenants/{}/users", t.org), user("dave")).await).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = json_of(app.post(&t.admin, &format!("/api/v1/tenants/{}/users", t.org), user("carol")).await).await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (status, body) = json_of(
        app.post(&t.admin, &format!("/api/v1/tenants/{}/users", t.org), json!({"username": "eve", "password": "short", "role": "root"})).await,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let fields: Vec<_> = body["fields"].as_array().unwrap().iter().map(|f| f["field"].as_str().unwrap()).collect();
    assert_eq!(fields, ["password", "role"]);

    // The new user can sign in; the same name in another tenant is another user.
    app.token(&t.org, "carol", "long-enough-1").await;
    let (status, _) = json_of(app.post(&app.admin_token, &format!("/api/v1/tenants/{}/users", other.org), user("carol")).await).await;
    assert_eq!(status, StatusCode::CREATED);

    let (_, users) = json_of(app.get(&t.admin, "/api/v1/users").await).await;
    assert!(users.as_array().unwrap().iter().all(|u| u["org"] == t.org.as_str()));
    let (status, _) = json_of(app.get(&t.dev, "/api/v1/users").await).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

async fn tenants_never_see_each_other(db: Db) {
    let app = TestApp::spawn(db).await;
    let a = app.tenant().await;
    let b = app.tenant().await;
    app.create(&a.dev, "secret", "nodejs", NODE_HELLO).await;

    let (_, list) = json_of(app.get(&b.dev, "/api/v1/functions").await).await;
    assert_eq!(list, json!([]));
    for path in ["/api/v1/functions/secret", "/api/v1/functions/secret/invocations", "/api/v1/functions/secret/versions"] {
        let (status, _) = json_of(app.get(&b.dev, path).await).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        let (status, _) = json_of(app.get(&b.dev, &format!("{path}?org={}", a.org)).await).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path} naming the other org");
    }
    let (status, _) = json_of(app.put(&b.dev, &format!("/api/v1/functions/secret?org={}", a.org), json!({"code": "x"})).await).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = json_of(app.delete(&b.admin, &format!("/api/v1/functions/secret?org={}", a.org)).await).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // B may use the same name for its own function.
    app.create(&b.dev, "secret", "python", "def handle(e, c):\n    return 1\n").await;
    let (_, mine) = json_of(app.get(&a.dev, "/api/v1/functions/secret").await).await;
    assert_eq!(mine["language"], "nodejs");

    // Routes: another tenant's token gets the same 404 as an unknown function.
    let (status, other) = json_of(app.call(Some(&b.dev), &a.org, "secret").await).await;
    let (status_unknown, unknown) = json_of(app.call(Some(&b.dev), &a.org, "no-such-function").await).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(status_unknown, StatusCode::NOT_FOUND);
    assert_eq!(other["error"].as_str().unwrap().replace("secret", "X"), unknown["error"].as_str().unwrap().replace("no-such-function", "X"));
    let (status, _) = json_of(app.call(None, &a.org, "secret").await).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // The provider sees every tenant's functions.
    let (_, all) = json_of(app.get(&app.admin_token, "/api/v1/functions").await).await;
    let orgs: Vec<_> = all.as_array().unwrap().iter().map(|f| f["org"].as_str().unwrap().to_string()).collect();
    assert!(orgs.contains(&a.org) && orgs.contains(&b.org));
    let (status, f) = json_of(app.get(&app.admin_token, &format!("/api/v1/functions/secret?org={}", a.org)).await).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(f["org"], a.org.as_str());
    let (status, _) = json_of(app.post(&app.admin_token, "/api/v1/functions", json!({"name": "p", "language": "nodejs", "code": NODE_HELLO})).await).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    app.finish().await;
}

async fn openapi_describes_the_api(db: Db) {
    let app = TestApp::spawn(db).await;
    let r = app.client.get(app.url("/api/v1/openapi.json")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let doc: serde_json::Value = r.json().await.unwrap();
    assert_eq!(doc["openapi"], "3.0.3");
    for path in ["/api/v1/tokens", "/api/v1/tenants", "/api/v1/functions", "/api/v1/functions/{name}", "/api/v1/functions/{name}/code", "/api/v1/functions/{name}/invocations"] {
        assert!(doc["paths"][path].is_object(), "{path} documented");
    }
    assert_eq!(doc["components"]["schemas"]["Function"]["properties"]["status"]["enum"], json!(["initializing", "building", "ready", "failed", "deleting"]));
    for schema in ["FunctionInput", "FunctionUpdate", "Function"] {
        for field in ["mode", "max_instances", "min_instances", "concurrency", "files", "env", "secrets"] {
            assert!(doc["components"]["schemas"][schema]["properties"][field].is_object(), "{schema}.{field} documented");
        }
    }
    let one_call = &doc["paths"]["/api/v1/invocations/{id}"]["get"]["responses"]["200"]["content"]["application/json"]["schema"];
    assert_eq!(one_call["allOf"][0]["$ref"], "#/components/schemas/Invocation");
    for field in ["state", "attempts", "next_attempt_at", "response"] {
        assert!(one_call["allOf"][1]["properties"][field].is_object(), "invocation {field} documented");
    }
}

async fn tokens_can_be_listed_and_revoked(db: Db) {
    use app::platform::parts::*;
    let app = TestApp::spawn(db).await;
    let t = app.tenant().await;
    let caller = app.service.caller_by_token(&t.dev).await.unwrap().caller().unwrap();
    let input = app::platform::TokenInput { name: "ci".into(), ..Default::default() };
    let (view, secret) = app.service.create_token(&caller, input).await.unwrap();
    assert_eq!(app.get(&secret, "/api/v1/functions").await.status(), StatusCode::OK);
    let tokens = app.service.list_tokens(&caller).await.unwrap();
    assert!(tokens.iter().any(|t| t.name == "ci" && t.last_used_at.is_some()));
    app.service.revoke_token(&caller, view.id).await.unwrap();
    assert_eq!(app.get(&secret, "/api/v1/functions").await.status(), StatusCode::UNAUTHORIZED);
    // Another user cannot revoke someone else's token.
    let other = app.service.caller_by_token(&t.admin).await.unwrap().caller().unwrap();
    let first = app.service.list_tokens(&caller).await.unwrap()[0].id;
    assert!(app.service.revoke_token(&other, first).await.is_err());
}

async fn the_provider_sees_which_services_answer(db: Db) {
    let app = TestApp::spawn(db).await;
    let t = app.tenant().await;
    let (status, links) = json_of(app.get(&app.admin_token, "/api/v1/links").await).await;
    assert_eq!(status, StatusCode::OK, "{links}");
    let state_of = |prefix: &str| {
        let link = links.as_array().unwrap().iter().find(|l| l["name"].as_str().unwrap().starts_with(prefix));
        link.unwrap_or_else(|| panic!("no {prefix} in {links}"))["state"].as_str().unwrap().to_string()
    };
    assert_eq!(state_of("Docker engine"), "up");
    let database = match db {
        Db::Sqlite => "Database (SQLite)",
        Db::Postgres => "Database (PostgreSQL)",
    };
    assert_eq!(state_of(database), "up");
    // Without AMQP_URL the brokers are off, and the detail says what that means.
    assert_eq!(state_of("RabbitMQ: async calls"), "off");
    assert!(links.to_string().contains("AMQP_URL is not set"), "{links}");

    let (status, body) = json_of(app.get(&t.dev, "/api/v1/links").await).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "tenants do not see the provider's services: {body}");
}

on_both_databases!(
    the_provider_sees_which_services_answer,
    tokens_need_the_right_password,
    malformed_requests_get_clear_errors,
    function_input_is_validated_field_by_field,
    updates_never_undo_a_newer_version_nor_outgrow_lowered_limits,
    tenants_and_users_are_managed_by_the_right_people,
    tenants_never_see_each_other,
    openapi_describes_the_api,
    tokens_can_be_listed_and_revoked,
);
