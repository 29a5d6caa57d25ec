//! The REST API's schema, served at `/api/v1/openapi.json`.

use serde_json::{json, Value};

fn error_responses(codes: &[&str]) -> Value {
    let mut map = serde_json::Map::new();
    for code in codes {
        map.insert(
            code.to_string(),
            json!({"description": "error", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}),
        );
    }
    Value::Object(map)
}

fn with_errors(mut responses: Value, codes: &[&str]) -> Value {
    if let (Some(map), Value::Object(errors)) = (responses.as_object_mut(), error_responses(codes)) {
        map.extend(errors);
    }
    responses
}

fn ok(code: &str, schema: Value) -> Value {
    json!({ code: {"description": "success", "content": {"application/json": {"schema": schema}}}})
}

fn schema(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{name}")})
}

fn array(name: &str) -> Value {
    json!({"type": "array", "items": schema(name)})
}

fn body(name: &str) -> Value {
    json!({"required": true, "content": {"application/json": {"schema": schema(name)}}})
}

/// The map of a `json!` object literal.
fn object(literal: Value) -> serde_json::Map<String, Value> {
    match literal {
        Value::Object(map) => map,
        _ => unreachable!("an object literal"),
    }
}

/// What `GET /api/v1/invocations/{id}` adds to an invocation of the list.
fn single_invocation_properties() -> serde_json::Map<String, Value> {
    let properties = json!({
        "state": {"type": "string", "enum": ["queued", "running", "done", "dead-letter", "failed"]},
        "attempts": {"type": "integer", "format": "int64", "description": "attempts made (an async call answering 5xx is tried up to 3 times)"},
        "next_attempt_at": {"type": "integer", "format": "int64", "nullable": true, "description": "unix ms when a queued retry runs"},
        "response": {"type": "object", "nullable": true, "description": "an async call's answer: statusCode, headers, body, isBase64Encoded"},
    });
    object(properties)
}

/// How a function's containers are kept; in the function's input, update and view alike.
fn pool_properties() -> serde_json::Map<String, Value> {
    let properties = json!({
        "mode": {"type": "string", "enum": app::model::PoolMode::ALL,
                 "description": "warm (default): containers are reused and kept for an idle time; per-call: a fresh container every call"},
        "max_instances": {"type": "integer", "format": "int64", "minimum": 1, "description": "containers serving the function at once (up to the tenant's limit)"},
        "min_instances": {"type": "integer", "format": "int64", "minimum": 0,
                          "description": "warm containers kept running while idle (warm mode only; at most max_instances; default 0)"},
        "concurrency": {"type": "integer", "format": "int64", "minimum": 1, "maximum": app::model::MAX_CONCURRENCY,
                        "description": "calls one container serves at once (default 1)"},
    });
    object(properties)
}

/// Names of tenants and functions (see `app::model::Name`).
const NAME_PATTERN: &str = "^[a-z][a-z0-9-]{0,62}$";

/// Input schemas refuse fields they do not name, as the API does.
const CLOSED_INPUTS: [&str; 5] = ["TenantInput", "UserInput", "FunctionInput", "FunctionUpdate", "TokenRequest"];

/// The provider's settings the schema states as ranges.
pub struct DocumentedLimits {
    pub max_memory_mb: i64,
    pub max_timeout_ms: i64,
    pub token_max_days: i64,
}

/// Egress entries as the schema states them (the IPv4 and name forms; `app::egress` reads more).
const EGRESS_PATTERN: &str = concat!(
    r"^((\*\.)?([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z]([a-z0-9-]{0,61}[a-z0-9])?",
    r"|((25[0-5]|2[0-4][0-9]|1?[0-9]?[0-9])\.){3}(25[0-5]|2[0-4][0-9]|1?[0-9]?[0-9])(/([0-9]|[12][0-9]|3[0-2]))?)",
    r":([1-9][0-9]{0,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5]|\*)$"
);

pub fn document(limits: DocumentedLimits) -> Value {
    let name_param = json!({"name": "name", "in": "path", "required": true, "schema": {"type": "string", "pattern": NAME_PATTERN}});
    let org_query = json!({"name": "org", "in": "query", "required": false,
        "description": "tenant of the function (the provider admin must give it)", "schema": {"type": "string"}});
    let org_path = json!({"name": "org", "in": "path", "required": true, "schema": {"type": "string", "pattern": NAME_PATTERN}});
    let mut doc = json!({
        "openapi": "3.0.3",
        "info": {"title": "vcd-faas API", "version": env!("CARGO_PKG_VERSION"),
                 "description": "Functions as a Service for VMware Cloud Director. Errors are {\"error\": \"<what to fix>\"}."},
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}],
        "paths": {
            "/api/v1/tokens": {
                "get": {"summary": "The caller's own tokens (never their secrets)", "responses": with_errors(ok("200", array("TokenInfo")), &["401"])},
                "post": {
                "summary": "Make a bearer token: sign in with org, username and password (org `provider` for the provider admin), or send a full token of the same user",
                "security": [{}, {"bearer": []}],
                "requestBody": body("TokenRequest"),
                "responses": with_errors(ok("201", schema("Token")), &["400", "401", "403", "429"])}},
            "/api/v1/tenants": {
                "get": {"summary": "List tenants (provider)", "responses": with_errors(ok("200", array("Tenant")), &["401", "403"])},
                "post": {"summary": "Create a tenant (provider)", "requestBody": body("TenantInput"),
                         "responses": with_errors(ok("201", schema("Tenant")), &["400", "401", "403", "409"])}},
            "/api/v1/tenants/{org}": {"put": {"summary": "Change a tenant's limits (provider)", "parameters": [org_path.clone()],
                "requestBody": body("TenantUpdate"), "responses": with_errors(ok("200", schema("Tenant")), &["400", "401", "403", "404", "409"])}},
            "/api/v1/tenants/{org}/users": {"post": {"summary": "Add a user to a tenant (provider or tenant admin)",
                "parameters": [org_path], "requestBody": body("UserInput"),
                "responses": with_errors(ok("201", schema("User")), &["400", "401", "403", "404", "409"])}},
            "/api/v1/users": {"get": {"summary": "List users (provider: all; tenant admin: own tenant)",
                "responses": with_errors(ok("200", array("User")), &["401", "403"])}},
            "/api/v1/functions": {
                "get": {"summary": "List functions (provider: every tenant's)", "responses": with_errors(ok("200", array("Function")), &["401"])},
                "post": {"summary": "Create a function; it builds in the background", "requestBody": body("FunctionInput"),
                         "responses": with_errors(ok("202", schema("Function")), &["400", "401", "403", "409", "413", "422"])}},
            "/api/v1/functions/{name}": {
                "get": {"summary": "A function with its status and newest build", "parameters": [name_param.clone(), org_query.clone()],
                        "responses": with_errors(ok("200", schema("Function")), &["401", "404"])},
                "put": {"summary": "Update a function (new version; the old one serves until it is ready)",
                        "parameters": [name_param.clone(), org_query.clone()], "requestBody": body("FunctionUpdate"),
                        "responses": with_errors(ok("202", schema("Function")), &["400", "401", "404", "409", "413", "422"])},
                "delete": {"summary": "Delete a function, its containers and images", "parameters": [name_param.clone(), org_query.clone()],
                           "responses": with_errors(json!({"204": {"description": "deleted"}}), &["401", "404"])}},
            "/api/v1/functions/{name}/versions": {"get": {"summary": "Versions of a function, newest first",
                "parameters": [name_param.clone(), org_query.clone()], "responses": with_errors(ok("200", array("Version")), &["401", "404"])}},
            "/api/v1/functions/{name}/invocations": {"get": {"summary": "A function's calls, newest first, searched; the next page's cursor is in the x-next-cursor header",
                "parameters": [name_param.clone(), org_query.clone(),
                    {"name": "limit", "in": "query", "schema": {"type": "integer", "format": "int64", "minimum": 1, "maximum": 500, "default": 50}},
                    {"name": "trigger", "in": "query", "description": "only calls of this trigger", "schema": {"type": "string", "enum": ["http", "test", "event", "vcd", "async", "schedule"]}},
                    {"name": "status", "in": "query", "description": "a status code (404), a class (2xx, 4xx, 5xx), success, error or running", "schema": {"type": "string"}},
                    {"name": "version", "in": "query", "schema": {"type": "integer", "format": "int64"}},
                    {"name": "since", "in": "query", "description": "started at or after (unix ms)", "schema": {"type": "integer", "format": "int64"}},
                    {"name": "until", "in": "query", "description": "started before (unix ms)", "schema": {"type": "integer", "format": "int64"}},
                    {"name": "request_id", "in": "query", "schema": {"type": "string"}},
                    {"name": "cursor", "in": "query", "description": "a page's x-next-cursor, as given", "schema": {"type": "string"}}],
                "responses": with_errors(ok("200", array("Invocation")), &["400", "401", "404"])}},
            "/api/v1/functions/{name}/metrics": {"get": {"summary": "Calls, errors, cold starts and p50/p95/p99 duration per bucket over a window, from the call records",
                "parameters": [name_param.clone(), org_query.clone(),
                    {"name": "window", "in": "query", "schema": {"type": "string", "enum": ["1h", "24h", "7d"], "default": "1h"}}],
                "responses": with_errors(ok("200", json!({"type": "object", "properties": {
                    "window": {"type": "string"}, "bucket_ms": {"type": "integer", "format": "int64"}, "since": {"type": "integer", "format": "int64"},
                    "buckets": {"type": "array", "items": {"type": "object"}}}})), &["400", "401", "404"])}},
            "/api/v1/functions/{name}/logs": {"get": {"summary": "Live logs: the last calls, then (follow=true) each call as it ends, as server-sent events (`event: call`, data: one Invocation as JSON); a `: keep-alive` comment every 15 s",
                "parameters": [name_param.clone(), org_query.clone(),
                    {"name": "tail", "in": "query", "schema": {"type": "integer", "format": "int64", "minimum": 0, "maximum": 100, "default": 10}},
                    {"name": "follow", "in": "query", "schema": {"type": "boolean", "default": false}}],
                "responses": with_errors(json!({"200": {"description": "the event stream", "content": {"text/event-stream": {"schema": {"type": "string"}}}}}), &["400", "401", "404"])}},
            "/api/v1/invocations/{id}": {"get": {"summary": "One call; for an async call its state (queued, running, done, dead-letter, failed) and, once run, its response",
                "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}],
                "responses": with_errors(ok("200", json!({"type": "object"})), &["401", "404"])}},
            "/api/org/{org}/{name}": {"get": {"summary": "Call a function (any method; any path suffix after the name)",
                "description": "Needs a bearer token of the function's tenant unless the function is public. Body up to the configured limit (413 over it). 504 at the deadline, 502 when the function ran out of memory, 429 when all its instances are busy. With `X-Invoke-Type: async`: 202 {invocation_id} at once; read the result from /api/v1/invocations/{id}.",
                "responses": {"200": {"description": "the function's answer"}}}}
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Error": {"type": "object", "required": ["error"], "properties": {
                    "error": {"type": "string"},
                    "fields": {"type": "array", "items": {"type": "object", "properties": {"field": {"type": "string"}, "message": {"type": "string"}}}}}},
                "TokenRequest": {"type": "object", "additionalProperties": false, "properties": {
                    "org": {"type": "string", "minLength": 1}, "username": {"type": "string", "minLength": 1}, "password": {"type": "string", "minLength": 1},
                    "name": {"type": "string", "minLength": 1, "maxLength": 100, "pattern": "^[^\\u0000-\\u001f\\u007f-\\u009f]*$", "default": "api"},
                    "expires_in_days": {"type": "integer", "format": "int64", "minimum": 1, "description": "default VCD_FAAS_TOKEN_DAYS; at most VCD_FAAS_TOKEN_MAX_DAYS"},
                    "scope": {"type": "string", "enum": app::model::TokenScope::ALL, "default": "full",
                              "description": "read: GET only; invoke: GET and calling functions; full: everything the user's role allows"}},
                    "oneOf": [{"required": ["org", "username", "password"]},
                              {"not": {"anyOf": [{"required": ["org"]}, {"required": ["username"]}, {"required": ["password"]}]}}],
                    "description": "org, username and password together (a sign-in), or none of them with a full bearer token"},
                "Token": {"type": "object", "properties": {"token": {"type": "string", "description": "shown once"}, "id": {"type": "integer", "format": "int64"},
                    "name": {"type": "string"}, "org": {"type": "string"}, "scope": {"type": "string", "enum": app::model::TokenScope::ALL},
                    "expires_at": {"type": "integer", "format": "int64", "description": "unix ms"}}},
                "TokenInfo": {"type": "object", "properties": {"id": {"type": "integer", "format": "int64"}, "name": {"type": "string"},
                    "scope": {"type": "string", "enum": app::model::TokenScope::ALL}, "created_at": {"type": "integer", "format": "int64"},
                    "expires_at": {"type": "integer", "format": "int64", "nullable": true, "description": "unix ms; null: a token made before tokens expired"},
                    "last_used_at": {"type": "integer", "format": "int64", "nullable": true}}},
                "TenantInput": {"type": "object", "properties": {
                    "name": {"type": "string", "pattern": NAME_PATTERN, "not": {"enum": ["provider"]}},
                    "display_name": {"type": "string", "maxLength": 200, "pattern": "^[^\\u0000-\\u001f\\u007f-\\u009f]*$"},
                    "max_functions": {"type": "integer", "format": "int64", "minimum": 1, "maximum": 10000},
                    "max_memory_mb": {"type": "integer", "format": "int64", "minimum": 64, "description": "at most VCD_FAAS_MAX_MEMORY_MB"},
                    "max_timeout_ms": {"type": "integer", "format": "int64", "minimum": 100, "description": "at most VCD_FAAS_MAX_TIMEOUT_MS"},
                    "max_instances": {"type": "integer", "format": "int64", "minimum": 1, "maximum": 1000},
                    "egress": {"type": "array", "items": {"type": "string"}, "description": "host:port, *.domain:port or CIDR:port (port * for any)"},
                    "vcd_org_id": {"type": "string", "pattern": "^(urn:vcloud:org:[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})?$",
                                   "description": "empty clears it"},
                    "sandbox": {"type": "string", "enum": ["runc", "gvisor"], "description": "the container runtime of its functions (gvisor: runsc, registered with the engine)"}}},
                "Tenant": {"type": "object", "properties": {
                    "name": {"type": "string"}, "display_name": {"type": "string"}, "max_functions": {"type": "integer", "format": "int64"},
                    "max_memory_mb": {"type": "integer", "format": "int64"}, "max_timeout_ms": {"type": "integer", "format": "int64"}, "vcd_org_id": {"type": "string", "nullable": true},
                    "sandbox": {"type": "string", "enum": ["runc", "gvisor"]},
                    "function_count": {"type": "integer", "format": "int64"}, "user_count": {"type": "integer", "format": "int64"}}},
                "UserInput": {"type": "object", "required": ["username", "password", "role"], "properties": {
                    "username": {"type": "string", "pattern": "^[A-Za-z0-9._@-]{1,64}$"},
                    "password": {"type": "string", "minLength": 8, "maxLength": 256}, "role": {"type": "string", "enum": ["admin", "developer"]}}},
                "User": {"type": "object", "properties": {"username": {"type": "string"}, "org": {"type": "string"},
                    "role": {"type": "string", "enum": ["provider", "admin", "developer"]}, "created_at": {"type": "integer", "format": "int64"},
                    "disabled": {"type": "boolean"}}},
                "UserChange": {"type": "object", "additionalProperties": false, "properties": {
                    "role": {"type": "string", "enum": ["admin", "developer"]},
                    "disabled": {"type": "boolean", "description": "a disabled user cannot sign in; its tokens and sessions stop working"},
                    "password": {"type": "string", "minLength": 8, "maxLength": 256, "description": "a new password (a reset)"}}},
                "AuditEntry": {"type": "object", "properties": {"id": {"type": "integer", "format": "int64"}, "at": {"type": "integer", "format": "int64", "description": "unix ms"},
                    "actor": {"type": "string", "description": "org/username"}, "org": {"type": "string", "nullable": true},
                    "action": {"type": "string", "description": "e.g. function.update, user.disable, tenant.delete"},
                    "target": {"type": "string"}, "detail": {"type": "string"}}},
                "Trigger": {"oneOf": [
                    {"type": "object", "additionalProperties": false, "required": ["type"], "properties": {
                        "type": {"type": "string", "enum": ["http"]}}},
                    {"type": "object", "additionalProperties": false, "required": ["type", "event"], "properties": {
                        "type": {"type": "string", "enum": ["vcd-event"]},
                        "event": {"type": "string", "description": "vCD event type, e.g. com/vmware/vcloud/event/vm/create"},
                        "successful_only": {"type": "boolean", "default": true, "description": "run only for operations that succeeded"}}},
                    {"type": "object", "additionalProperties": false, "required": ["type", "cron"], "properties": {
                        "type": {"type": "string", "enum": ["schedule"]},
                        "cron": {"type": "string", "description": "5 fields (minute hour day-of-month month day-of-week), e.g. */5 * * * *"},
                        "timezone": {"type": "string", "default": "UTC", "description": "the IANA time zone the pattern is read in, e.g. Europe/Sofia"}}}]},
                "Registration": {"type": "object", "description": "the function's state in vCD", "properties": {
                    "state": {"type": "string", "enum": ["local", "pending", "registered", "failed"]},
                    "detail": {"type": "string"},
                    "next_retry_at": {"type": "integer", "format": "int64", "nullable": true, "description": "ms since the epoch"}}},
                "FileTree": {"type": "object", "additionalProperties": {"type": "string"}, "maxProperties": app::files::MAX_FILES,
                    "description": "relative path → text content; the entry file handler.js (Node.js) or handler.py (Python) at the root; \
                                    package.json / requirements.txt declare dependencies installed at build time"},
                "FunctionInput": {"type": "object", "required": ["name", "language"], "properties": {
                    "name": {"type": "string", "pattern": "^[a-z][a-z0-9-]{0,62}$"},
                    "language": {"type": "string", "enum": ["nodejs", "python"]},
                    "code": {"type": "string", "maxLength": app::model::MAX_CODE_BYTES, "description": "the entry file alone; give this or files"},
                    "files": schema("FileTree"),
                    "memory_mb": {"type": "integer", "format": "int64"}, "timeout_ms": {"type": "integer", "format": "int64"}, "public": {"type": "boolean"},
                    "trigger": schema("Trigger")}},
                "FunctionUpdate": {"type": "object", "properties": {
                    "language": {"type": "string", "enum": ["nodejs", "python"]},
                    "code": {"type": "string", "description": "replaces the entry file; the other files stay"},
                    "files": {"$ref": "#/components/schemas/FileTree", "description": "replaces the whole tree"},
                    "memory_mb": {"type": "integer", "format": "int64"}, "timeout_ms": {"type": "integer", "format": "int64"}, "public": {"type": "boolean"},
                    "trigger": schema("Trigger")}},
                "Function": {"type": "object", "properties": {
                    "name": {"type": "string"}, "org": {"type": "string"}, "language": {"type": "string"}, "route": {"type": "string"},
                    "status": {"type": "string", "enum": app::model::FunctionStatus::ALL},
                    "version": {"type": "integer", "format": "int64", "nullable": true, "description": "the serving version"},
                    "latest_version": {"type": "integer", "format": "int64"},
                    "build_status": {"type": "string", "enum": ["queued", "building", "ready", "failed"]},
                    "build_log": {"type": "string"}, "memory_mb": {"type": "integer", "format": "int64"}, "timeout_ms": {"type": "integer", "format": "int64"},
                    "public": {"type": "boolean"}, "trigger": schema("Trigger"), "registration": schema("Registration"),
                    "next_run": {"type": "string", "nullable": true, "description": "a scheduled function's next run, RFC 3339 in its time zone"},
                    "build_error": {"type": "string", "nullable": true, "description": "why the latest version did not build: the interpreter's or package manager's error, with file and line when it has them"},
                    "code": {"type": "string"}, "files": schema("FileTree"), "created_at": {"type": "integer", "format": "int64"}, "updated_at": {"type": "integer", "format": "int64"}}},
                "Version": {"type": "object", "properties": {
                    "version": {"type": "integer", "format": "int64"}, "language": {"type": "string"}, "build_status": {"type": "string"},
                    "memory_mb": {"type": "integer", "format": "int64"}, "timeout_ms": {"type": "integer", "format": "int64"}, "created_at": {"type": "integer", "format": "int64"},
                    "built_at": {"type": "integer", "format": "int64", "nullable": true}}},
                "Invocation": {"type": "object", "properties": {
                    "id": {"type": "string"}, "function": {"type": "string"}, "version": {"type": "integer", "format": "int64"},
                    "trigger": {"type": "string", "enum": ["http", "test", "event", "vcd", "async", "schedule"]}, "method": {"type": "string"}, "path": {"type": "string"},
                    "status_code": {"type": "integer", "format": "int64", "nullable": true}, "duration_ms": {"type": "number", "nullable": true},
                    "cold": {"type": "boolean"}, "logs": {"type": "string"}, "error": {"type": "string", "nullable": true},
                    "started_at": {"type": "integer", "format": "int64"},
                    "node": {"type": "string", "nullable": true, "description": "the worker node that ran the call (null: the server that took it)"}}}
            }
        }
    });
    for schema in ["FunctionInput", "FunctionUpdate", "Function"] {
        if let Some(properties) = doc["components"]["schemas"][schema]["properties"].as_object_mut() {
            properties.extend(pool_properties());
        }
    }
    for schema in CLOSED_INPUTS {
        let input = &mut doc["components"]["schemas"][schema];
        input["additionalProperties"] = json!(false);
        // A field that may be left out may also be null: the same to the API.
        let required: Vec<Value> = input["required"].as_array().cloned().unwrap_or_default();
        if let Some(properties) = input["properties"].as_object_mut() {
            for (name, property) in properties.iter_mut().filter(|(name, _)| !required.contains(&json!(name))) {
                if property.get("$ref").is_none() && name != "secrets" {
                    property["nullable"] = json!(true);
                }
            }
        }
    }
    doc["components"]["schemas"]["TokenRequest"]["properties"]["expires_in_days"]["maximum"] = json!(limits.token_max_days);
    let tenant = &mut doc["components"]["schemas"]["TenantInput"];
    tenant["properties"]["vcd_org_id"]["nullable"] = json!(true);
    tenant["properties"]["sandbox"] = json!({"type": "string", "nullable": true, "enum": ["runc", "gvisor", null],
        "description": "the container runtime of its functions (gvisor: runsc, registered with the engine); null keeps it"});
    tenant["properties"]["max_memory_mb"]["maximum"] = json!(limits.max_memory_mb);
    tenant["properties"]["max_timeout_ms"]["maximum"] = json!(limits.max_timeout_ms);
    tenant["properties"]["egress"]["items"] = json!({"type": "string", "pattern": EGRESS_PATTERN,
        "description": "host:port, *.domain:port or CIDR:port, port * for any (IPv6 too, in brackets)"});
    // An update names the tenant in its path; a name in the body is not read.
    let mut update = tenant.clone();
    tenant["required"] = json!(["name"]);
    update["properties"]["name"] = json!({"type": "string", "description": "ignored: the tenant is the one in the path"});
    doc["components"]["schemas"]["TenantUpdate"] = update;
    let env = json!({"type": "object", "additionalProperties": {"type": "string", "maxLength": app::env::MAX_VALUE_BYTES},
        "maxProperties": app::env::MAX_VARS, "description": "plain environment variables, names [A-Z_][A-Z0-9_]* not starting with VCD_FAAS_"});
    let secrets_in = json!({"type": "object", "additionalProperties": {"type": "string", "nullable": true},
        "description": "secrets to set (a value) or remove (null); write-only, left out: kept"});
    for schema in ["FunctionInput", "FunctionUpdate"] {
        doc["components"]["schemas"][schema]["properties"]["env"] = env.clone();
        doc["components"]["schemas"][schema]["properties"]["secrets"] = secrets_in.clone();
    }
    doc["components"]["schemas"]["Function"]["properties"]["env"] = env;
    doc["components"]["schemas"]["Function"]["properties"]["secrets"] =
        json!({"type": "array", "items": {"type": "string"}, "description": "the secrets' names; values are never shown"});
    doc["components"]["schemas"]["FunctionUpdate"]["properties"]["expected_version"] = json!({"type": "integer", "format": "int64",
        "description": "the latest version this change was made from; when the function has a newer one the update is refused with 409 \
                        instead of undoing it (left out: the version the fields left out are taken from)"});
    let version_param = json!({"name": "version", "in": "path", "required": true, "schema": {"type": "integer", "format": "int64"}});
    let version_detail = json!({"allOf": [{"$ref": "#/components/schemas/Version"}, {"type": "object", "properties": {
        "code": {"type": "string"}, "files": schema("FileTree"), "build_log": {"type": "string"}}}]});
    doc["paths"]["/api/v1/functions/{name}/versions/{version}"] = json!({"get": {"summary": "One version with its code and build log",
        "parameters": [name_param.clone(), version_param.clone(), org_query.clone()],
        "responses": with_errors(ok("200", version_detail), &["400", "401", "404"])}});
    doc["paths"]["/api/v1/functions/{name}/code"] = json!({"put": {
        "summary": "A new version from a zip archive of the function's files (other settings stay); a zip of one folder is read as its contents",
        "parameters": [name_param.clone(), org_query.clone()],
        "requestBody": {"required": true, "content": {"application/zip": {"schema": {"type": "string", "format": "binary"}}}},
        "responses": with_errors(ok("202", schema("Function")), &["400", "401", "404", "409", "413", "415", "422"])}});
    doc["paths"]["/api/v1/functions/{name}/versions/{version}/restore"] = json!({"post": {
        "summary": "Build a new version from an earlier one that built (its language, code and limits; other settings stay)",
        "parameters": [name_param, version_param, org_query],
        "responses": with_errors(ok("202", schema("Function")), &["400", "401", "404", "409", "422"])}});
    let link = json!({"type": "object", "properties": {
        "name": {"type": "string"}, "state": {"type": "string", "enum": ["up", "down", "off"]},
        "detail": {"type": "string", "description": "what it is, or why it is down or off"}}});
    doc["paths"]["/api/v1/links"] = json!({"get": {"summary": "The services the platform depends on (Docker, database, RabbitMQ) and whether each answers (provider)",
        "responses": with_errors(ok("200", json!({"type": "array", "items": link})), &["401", "403"])}});
    let node = json!({"type": "object", "properties": {
        "name": {"type": "string"}, "address": {"type": "string", "description": "where it takes forwarded calls"},
        "state": {"type": "string", "enum": ["up", "draining", "down"], "description": "down: no heartbeat for 3 s"},
        "memory_mb": {"type": "integer", "format": "int64"}, "used_memory_mb": {"type": "integer", "format": "int64"}, "cpus": {"type": "number"}, "used_cpus": {"type": "number"},
        "containers": {"type": "integer", "format": "int64"}, "calls_in_flight": {"type": "integer", "format": "int64"},
        "calls_per_sec": {"type": "number", "description": "over the last ten seconds"},
        "started_at": {"type": "integer", "format": "int64"}, "heartbeat_at": {"type": "integer", "format": "int64"}}});
    doc["paths"]["/api/v1/nodes"] = json!({"get": {"summary": "The cluster's worker nodes with their state, capacity and use (provider)",
        "responses": with_errors(ok("200", json!({"type": "array", "items": node.clone()})), &["401", "403"])}});
    let node_param = json!({"name": "name", "in": "path", "required": true, "schema": {"type": "string"}});
    doc["paths"]["/api/v1/nodes/{name}/drain"] = json!({"post": {"summary": "Place no new call on the node; its calls in flight end there (provider)",
        "parameters": [node_param.clone()], "responses": with_errors(ok("200", node.clone()), &["401", "403", "404"])}});
    doc["paths"]["/api/v1/nodes/{name}/undrain"] = json!({"post": {"summary": "Place calls on the node again (provider)",
        "parameters": [node_param], "responses": with_errors(ok("200", node), &["401", "403", "404"])}});
    administration_paths(&mut doc);
    document_bad_input(&mut doc);
    let invocation = &mut doc["paths"]["/api/v1/invocations/{id}"]["get"]["responses"]["200"]["content"]["application/json"]["schema"];
    *invocation = json!({"allOf": [{"$ref": "#/components/schemas/Invocation"}, {"type": "object", "properties": single_invocation_properties()}]});
    doc
}

/// Deleting tenants and users, changing users, revoking tokens, the audit log.
fn administration_paths(doc: &mut Value) {
    let org_path = json!({"name": "org", "in": "path", "required": true, "schema": {"type": "string"}});
    let username_path = json!({"name": "username", "in": "path", "required": true, "schema": {"type": "string"}});
    doc["paths"]["/api/v1/tokens/{id}"] = json!({"delete": {"summary": "Revoke one of the caller's tokens",
        "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "integer", "format": "int64"}}],
        "responses": with_errors(json!({"204": {"description": "revoked"}}), &["400", "401", "403", "404"])}});
    doc["paths"]["/api/v1/tenants/{org}"]["delete"] = json!({
        "summary": "Delete a tenant with its functions (containers, images, queues, vCD filters), users and tokens (provider)",
        "parameters": [org_path.clone()],
        "responses": with_errors(ok("200", json!({"type": "object", "properties": {
            "org": {"type": "string"}, "functions": {"type": "integer", "format": "int64"}, "users": {"type": "integer", "format": "int64"}}})), &["401", "403", "404", "503"])});
    doc["paths"]["/api/v1/tenants/{org}/users/{username}"] = json!({
        "patch": {"summary": "Change a user's role, disable or enable it, or set a new password (provider or tenant admin)",
                  "parameters": [org_path.clone(), username_path.clone()], "requestBody": body("UserChange"),
                  "responses": with_errors(ok("200", schema("User")), &["400", "401", "403", "404", "409"])},
        "delete": {"summary": "Delete a user and its tokens (provider or tenant admin)",
                   "parameters": [org_path, username_path],
                   "responses": with_errors(json!({"204": {"description": "deleted"}}), &["401", "403", "404", "409"])}});
    doc["paths"]["/api/v1/audit"] = json!({"get": {"summary": "Who changed what, newest first (provider: all; tenant admin: own tenant)",
        "parameters": [
            {"name": "org", "in": "query", "schema": {"type": "string"}, "description": "only this tenant's (provider)"},
            {"name": "before", "in": "query", "schema": {"type": "integer", "format": "int64"}, "description": "entries with a smaller id (the next page)"},
            {"name": "limit", "in": "query", "schema": {"type": "integer", "format": "int64", "minimum": 1, "maximum": 500, "default": 100}}],
        "responses": with_errors(ok("200", array("AuditEntry")), &["400", "401", "403", "404"])}});
}

/// An operation with path or query parameters answers 400 when one does not parse (a number
/// out of range, an unknown query parameter): said for every such operation.
fn document_bad_input(doc: &mut Value) {
    let Some(paths) = doc["paths"].as_object_mut() else { return };
    for (path, operations) in paths.iter_mut() {
        let Some(operations) = operations.as_object_mut() else { continue };
        for operation in operations.values_mut() {
            let has_parameters = path.contains('{') || operation["parameters"].as_array().is_some_and(|p| !p.is_empty());
            if has_parameters && path.starts_with("/api/v1/") && operation["responses"].get("400").is_none() {
                if let (Some(responses), Value::Object(errors)) = (operation["responses"].as_object_mut(), error_responses(&["400"])) {
                    responses.extend(errors);
                }
            }
        }
    }
}
