CREATE TABLE tenants (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    slug TEXT NOT NULL UNIQUE,
    display_name TEXT NOT NULL,
    max_functions BIGINT NOT NULL,
    max_memory_mb BIGINT NOT NULL,
    max_timeout_ms BIGINT NOT NULL,
    vcd_org_id TEXT UNIQUE,
    created_at BIGINT NOT NULL
);

CREATE TABLE users (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id BIGINT REFERENCES tenants(id) ON DELETE CASCADE,
    username TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    role TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX users_org_username ON users (COALESCE(tenant_id, 0), username);

CREATE TABLE api_tokens (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL,
    last_used_at BIGINT
);

CREATE TABLE functions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id BIGINT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    status TEXT NOT NULL,
    public BIGINT NOT NULL DEFAULT 0,
    trigger_type TEXT NOT NULL DEFAULT 'http',
    trigger_event TEXT,
    current_version BIGINT,
    latest_version BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    CONSTRAINT functions_tenant_name UNIQUE (tenant_id, name)
);

CREATE TABLE function_versions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    function_id BIGINT NOT NULL REFERENCES functions(id) ON DELETE CASCADE,
    version BIGINT NOT NULL,
    language TEXT NOT NULL,
    code TEXT NOT NULL,
    memory_mb BIGINT NOT NULL,
    timeout_ms BIGINT NOT NULL,
    build_status TEXT NOT NULL,
    build_log TEXT NOT NULL DEFAULT '',
    image TEXT,
    created_at BIGINT NOT NULL,
    built_at BIGINT,
    UNIQUE (function_id, version)
);

CREATE TABLE invocations (
    id TEXT PRIMARY KEY,
    function_id BIGINT NOT NULL REFERENCES functions(id) ON DELETE CASCADE,
    tenant_id BIGINT NOT NULL,
    version BIGINT NOT NULL,
    trigger_kind TEXT NOT NULL,
    method TEXT NOT NULL,
    path TEXT NOT NULL,
    state TEXT NOT NULL,
    status_code BIGINT,
    duration_us BIGINT,
    cold BIGINT NOT NULL DEFAULT 0,
    logs TEXT NOT NULL DEFAULT '',
    error TEXT,
    started_at BIGINT NOT NULL
);
CREATE INDEX invocations_function_started ON invocations (function_id, started_at);
