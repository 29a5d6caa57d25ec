//! The store's build and call bookkeeping, on SQLite and on PostgreSQL (the rest of the store
//! is exercised through the API in api.rs, on both as well).

mod common;

use common::{fresh_database, Db};
use server::calls::journal::{CallEnd, CallStart, Journal};
use app::model::{BuildStatus, EnvVars, FileTree, FunctionStatus, Language, Name, PoolMode, Trigger};
use server::store::{NewVersion, Recovered, Settings, Store, Target, TenantRow};

fn settings(public: bool, trigger: &Trigger) -> Settings<'_> {
    Settings { public, trigger, sealed_secrets: None, pool_mode: PoolMode::Warm, max_instances: 2, min_instances: 0, concurrency: 1 }
}

fn vm_created() -> Trigger {
    Trigger::VcdEvent { event: "com/vmware/vcloud/event/vm/create".into(), successful_only: true }
}

async fn store_on(db: Db, dir: &std::path::Path) -> Store {
    Store::connect(&fresh_database(db, dir).await).await.unwrap()
}

async fn function_with_version(store: &Store) -> (i64, i64) {
    let tenant = TenantRow {
        id: 0,
        slug: "acme".into(),
        display_name: "Acme".into(),
        max_functions: 5,
        max_memory_mb: 256,
        max_timeout_ms: 1000,
        max_instances: 3,
        vcd_org_id: None,
        egress: "[]".into(),
        sandbox: app::model::Sandbox::Runc,
    };
    let tenant_id = store.insert_tenant(&tenant).await.unwrap();
    let files = tree(&[("handler.js", "code v1"), ("lib/util.js", "exports.x = 1")]);
    let env = tree(&[("API_URL", "http://cmdb")]);
    let v = NewVersion { language: Language::Nodejs, files: &files, env: &env, secret_names: &[], egress: None, memory_mb: 128, timeout_ms: 500 };
    (tenant_id, store.insert_function(tenant_id, &Name::parse("name", "f").unwrap(), &settings(false, &Trigger::Http), &v).await.unwrap())
}

fn tree(entries: &[(&str, &str)]) -> FileTree {
    entries.iter().map(|(path, content)| (path.to_string(), content.to_string())).collect()
}

async fn builds_switch_versions_and_keep_logs(db: Db) {
    let dir = tempfile::tempdir().unwrap();
    let store = store_on(db, dir.path()).await;
    assert_eq!(store.installation_id().await.unwrap(), store.installation_id().await.unwrap(), "stable id");
    let (tenant_id, id) = function_with_version(&store).await;

    let v1 = store.version(id, 1).await.unwrap().unwrap();
    assert_eq!(v1.build_status, BuildStatus::Queued);
    assert_eq!((v1.code.as_str(), v1.files()), ("code v1", tree(&[("handler.js", "code v1"), ("lib/util.js", "exports.x = 1")])));
    assert_eq!((v1.env(), v1.secret_names()), (tree(&[("API_URL", "http://cmdb")]), vec![]));
    assert_eq!(store.unfinished_builds().await.unwrap().len(), 1);
    assert!(matches!(store.routable("acme", "f").await.unwrap(), Some(Err(_))), "not routable before a build");

    // Of two builders, the first claims the build; the second cannot while the first lives,
    // and can once it is gone (the log starts again).
    let live = |ids: &[&str]| ids.iter().map(|s| s.to_string()).collect::<std::collections::HashSet<String>>();
    assert!(store.claim_build(v1.id, id, "node-a", &live(&["node-b"])).await.unwrap());
    assert_eq!(store.function_by_id(id).await.unwrap().unwrap().status, FunctionStatus::Building);
    assert!(!store.claim_build(v1.id, id, "node-a", &live(&["node-b"])).await.unwrap(), "not twice by the same builder");
    assert!(!store.claim_build(v1.id, id, "node-b", &live(&["node-a"])).await.unwrap(), "not from a live builder");
    store.append_build_log(v1.id, "cut off\n").await.unwrap();
    assert!(store.claim_build(v1.id, id, "node-b", &live(&[])).await.unwrap(), "from a builder that is gone");
    assert_eq!(store.version(id, 1).await.unwrap().unwrap().build_log, "");
    store.append_build_log(v1.id, "step 1\n").await.unwrap();
    store.append_build_log(v1.id, "step 2\n").await.unwrap();
    store.finish_build_ok(&v1, "img:v1").await.unwrap();
    let f = store.function_by_id(id).await.unwrap().unwrap();
    assert_eq!((f.status.as_str(), f.current_version), ("ready", Some(1)));
    let v1 = store.version(id, 1).await.unwrap().unwrap();
    assert_eq!((v1.build_log.as_str(), v1.image.as_deref()), ("step 1\nstep 2\n", Some("img:v1")));
    assert!(store.unfinished_builds().await.unwrap().is_empty());

    // A failed v2 leaves v1 serving; a v3 that finishes takes over.
    let (no_env, names) = (EnvVars::new(), ["TOKEN".to_string()]);
    let (v2_files, stale, v3_files, v4_files) =
        (tree(&[("handler.py", "code v2")]), tree(&[("handler.py", "stale")]), tree(&[("handler.py", "code v3")]), tree(&[("handler.py", "code v4")]));
    let v = |files| NewVersion { language: Language::Python, files, env: &no_env, secret_names: &names, egress: None, memory_mb: 64, timeout_ms: 200 };
    assert_eq!(store.add_version(id, 1, &settings(true, &vm_created()), &v(&v2_files)).await.unwrap(), Some(2));
    // A change made from v1 after v2 replaced it adds nothing and changes nothing.
    assert_eq!(store.add_version(id, 1, &settings(false, &Trigger::Http), &v(&stale)).await.unwrap(), None);
    assert!(store.function_by_id(id).await.unwrap().unwrap().public);
    assert_eq!(store.add_version(id, 2, &Settings { pool_mode: PoolMode::PerCall, ..settings(true, &Trigger::Http) }, &v(&v3_files)).await.unwrap(), Some(3));
    let v2 = store.version(id, 2).await.unwrap().unwrap();
    assert_eq!(v2.secret_names(), ["TOKEN"], "a version keeps the names of its secrets");
    let v3 = store.version(id, 3).await.unwrap().unwrap();
    store.finish_build_failed(&v2, "SyntaxError: x (handler.py, line 1)").await.unwrap();
    assert_eq!(store.version(id, 2).await.unwrap().unwrap().build_error.as_deref(), Some("SyntaxError: x (handler.py, line 1)"));
    let f = store.function_by_id(id).await.unwrap().unwrap();
    assert_eq!((f.status.as_str(), f.current_version, f.public), ("ready", Some(1), true));
    store.finish_build_ok(&v3, "img:v3").await.unwrap();
    // An older build finishing late never replaces a newer serving version.
    store.finish_build_ok(&v1, "img:v1").await.unwrap();
    let Some(Ok(Target { function, version })) = store.routable("acme", "f").await.unwrap() else { panic!("routable") };
    assert_eq!((function.current_version, version.version, version.language.as_str()), (Some(3), 3, "python"));
    assert_eq!((function.pool_mode.as_str(), function.max_instances, function.trigger.clone()), ("per-call", 2, Trigger::Http));
    assert_eq!(store.tenant_by_id(tenant_id).await.unwrap().unwrap().max_instances, 3);
    let numbers: Vec<i64> = store.versions(id).await.unwrap().iter().map(|v| v.version).collect();
    assert_eq!(numbers, [3, 2, 1]);

    // The pool's maintainer sees warm functions with their serving version and capacity only.
    assert!(store.warm_targets().await.unwrap().is_empty(), "a per-call function keeps nothing ahead");
    let warm = Settings { min_instances: 1, concurrency: 5, ..settings(true, &Trigger::Http) };
    assert_eq!(store.add_version(id, 3, &warm, &v(&v4_files)).await.unwrap(), Some(4));
    store.finish_build_ok(&store.version(id, 4).await.unwrap().unwrap(), "img:v4").await.unwrap();
    let targets = store.warm_targets().await.unwrap();
    assert_eq!(targets.len(), 1);
    let (f, v) = (&targets[0].function, &targets[0].version);
    assert_eq!((f.min_instances, f.concurrency, v.version, v.image.as_deref()), (1, 5, 4, Some("img:v4")));

    // A first build that fails marks the function failed.
    let x = tree(&[("handler.js", "x")]);
    let v = NewVersion { language: Language::Nodejs, files: &x, env: &no_env, secret_names: &[], egress: None, memory_mb: 64, timeout_ms: 100 };
    let other = store.insert_function(tenant_id, &Name::parse("name", "g").unwrap(), &settings(false, &Trigger::Http), &v).await.unwrap();
    store.finish_build_failed(&store.version(other, 1).await.unwrap().unwrap(), "base image unavailable").await.unwrap();
    assert_eq!(store.function_by_id(other).await.unwrap().unwrap().status, FunctionStatus::Failed);

    // Deleting: hidden from routes at once, gone with its versions after the purge.
    store.set_function_status(id, FunctionStatus::Deleting).await.unwrap();
    assert!(store.routable("acme", "f").await.unwrap().is_none());
    assert_eq!(store.functions_with_status(FunctionStatus::Deleting).await.unwrap().len(), 1);
    store.delete_function_row(id).await.unwrap();
    assert!(store.function_by_id(id).await.unwrap().is_none());
    assert!(store.versions(id).await.unwrap().is_empty());
    assert_eq!(store.list_functions(Some(tenant_id)).await.unwrap().len(), 1);
}

/// A function whose version 1 is built and serves: its id and its route's target.
async fn serving_function(store: &Store) -> (i64, Target) {
    let (_, id) = function_with_version(store).await;
    let v1 = store.version(id, 1).await.unwrap().unwrap();
    store.finish_build_ok(&v1, "img").await.unwrap();
    let Some(Ok(target)) = store.routable("acme", "f").await.unwrap() else { panic!("routable") };
    (id, target)
}

fn ended(id: &str, status_code: u16, error: Option<&str>) -> CallEnd {
    CallEnd { id: id.into(), status_code, duration_us: 1500, cold: true, logs: "hello\n".into(), error: error.map(str::to_string), connections: None, node: None }
}

async fn invocations_are_recorded_and_interrupted_ones_failed(db: Db) {
    let dir = tempfile::tempdir().unwrap();
    let store = store_on(db, dir.path()).await;
    let (id, target) = serving_function(&store).await;

    // The journal writes a call's start and end as one row when they arrive together, and the
    // end as an update when the start was written earlier.
    let journal = Journal::start(store.clone(), "front-a".into());
    journal.started(CallStart::new("call-1".into(), &target, "http", "GET", "/a".into())).await;
    journal.ended(ended("call-1", 200, None)).await;
    journal.flush().await;
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    journal.started(CallStart::new("call-2".into(), &target, "test", "POST", "/b".into())).await;
    journal.flush().await;
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    journal.started(CallStart::new("call-3".into(), &target, "http", "GET", "/c".into())).await;
    journal.flush().await;
    journal.ended(ended("call-3", 502, Some("the function's container stopped"))).await;
    journal.flush().await;
    let late = store.invocation("call-3").await.unwrap().unwrap();
    assert_eq!((late.state.as_str(), late.status_code, late.error.as_deref()), ("failed", Some(502), Some("the function's container stopped")));

    // A call of a function deleted meanwhile cannot be written; the others of its batch are.
    let mut gone = target.clone();
    gone.function.id = 999_999;
    journal.started(CallStart::new("orphan".into(), &gone, "http", "GET", "/".into())).await;
    journal.started(CallStart::new("call-4".into(), &target, "http", "GET", "/d".into())).await;
    journal.flush().await;
    assert!(store.invocation("orphan").await.unwrap().is_none());
    assert_eq!(store.invocation("call-4").await.unwrap().unwrap().state, "running");
    sqlx::query("DELETE FROM invocations WHERE id IN ('call-3', 'call-4')").execute(&store.pool).await.unwrap();

    let calls = store.list_invocations(id, 10).await.unwrap();
    assert_eq!(calls.iter().map(|c| c.id.as_str()).collect::<Vec<_>>(), ["call-2", "call-1"]);
    let done = &calls[1];
    assert_eq!((done.state.as_str(), done.status_code, done.duration_us, done.cold), ("done", Some(200), Some(1500), 1));
    assert_eq!((done.logs.as_str(), done.function_name.as_str(), done.trigger_kind.as_str()), ("hello\n", "f", "http"));
    assert_eq!(store.list_invocations(id, 1).await.unwrap().len(), 1);

    // call-2 is still running on front-a: left alone while front-a lives, failed once it is gone.
    let live = |ids: &[&str]| ids.iter().map(|s| s.to_string()).collect::<std::collections::HashSet<String>>();
    assert_eq!(store.recover_calls_of_gone("front-b", &live(&["front-a"])).await.unwrap(), Recovered::default());
    assert_eq!(store.recover_calls_of_gone("front-a", &live(&[])).await.unwrap(), Recovered::default(), "never its own");
    assert_eq!(store.recover_calls_of_gone("front-b", &live(&[])).await.unwrap(), Recovered { requeued: 0, failed: 1 });
    let interrupted = store.invocation("call-2").await.unwrap().unwrap();
    assert_eq!(
        (interrupted.state.as_str(), interrupted.error.as_deref()),
        ("failed", Some("interrupted: the process that took the call stopped during it"))
    );

    // A server that starts alone fails what the last one left running.
    journal.started(CallStart::new("call-5".into(), &target, "http", "GET", "/e".into())).await;
    journal.flush().await;
    assert_eq!(store.fail_interrupted_invocations(server::store::now_ms() + 1).await.unwrap(), 1);
    let calls = store.list_invocations(id, 10).await.unwrap();
    assert_eq!((calls[0].id.as_str(), calls[0].state.as_str()), ("call-5", "failed"));
    assert!(calls[0].error.as_deref().unwrap().contains("interrupted"));
}

async fn a_batch_of_many_calls_is_written_whole_each_row_its_own(db: Db) {
    let dir = tempfile::tempdir().unwrap();
    let store = store_on(db, dir.path()).await;
    let (id, target) = serving_function(&store).await;
    let journal = Journal::start(store.clone(), "front-a".into());
    // More than two of SQLite's insert statements' worth (64 rows each), one flush.
    for n in 0..150i64 {
        let call = format!("batch-{n:03}");
        journal.started(CallStart::new(call.clone(), &target, "http", "POST", format!("/item/{n}"))).await;
        let error = (n % 5 == 0).then(|| format!("error {n}"));
        let node = (n % 2 == 1).then(|| format!("node-{}", n % 3));
        let end = CallEnd { id: call, status_code: 200 + (n % 3) as u16, duration_us: n, cold: n % 2 == 0, logs: format!("line {n}\n"), error, connections: None, node };
        journal.ended(end).await;
    }
    journal.flush().await;

    let calls = store.list_invocations(id, 1000).await.unwrap();
    assert_eq!(calls.len(), 150);
    for c in &calls {
        let n: i64 = c.id["batch-".len()..].parse().unwrap();
        let expected_state = if n % 5 == 0 { "failed" } else { "done" };
        assert_eq!((c.method.as_str(), c.path.as_str(), c.state.as_str()), ("POST", format!("/item/{n}").as_str(), expected_state));
        assert_eq!((c.status_code, c.duration_us, c.cold), (Some(200 + n % 3), Some(n), (n % 2 == 0) as i64), "{}", c.id);
        assert_eq!((c.logs.clone(), c.error.clone()), (format!("line {n}\n"), (n % 5 == 0).then(|| format!("error {n}"))));
        assert_eq!(c.node, (n % 2 == 1).then(|| format!("node-{}", n % 3)), "the node that ran {}", c.id);
    }
}

async fn old_call_records_are_pruned_and_unfinished_ones_kept(db: Db) {
    let dir = tempfile::tempdir().unwrap();
    let store = store_on(db, dir.path()).await;
    let (id, target) = serving_function(&store).await;
    let journal = Journal::start(store.clone(), "front-a".into());
    let day = 86_400_000;
    let now = server::store::now_ms();
    let call_at = |name: &str, started_at: i64| CallStart { started_at, ..CallStart::new(name.into(), &target, "http", "GET", "/".into()) };
    // Ten days old: three finished calls and one still running.
    for n in 0..3 {
        journal.started(call_at(&format!("old-{n}"), now - 10 * day + n)).await;
        journal.ended(ended(&format!("old-{n}"), 200, None)).await;
    }
    journal.started(call_at("old-running", now - 10 * day)).await;
    // Recent: six finished calls, a millisecond apart.
    for n in 0..6 {
        journal.started(call_at(&format!("new-{n}"), now - 6 + n)).await;
        journal.ended(ended(&format!("new-{n}"), 200, None)).await;
    }
    journal.flush().await;

    // Kept: a week of records, at most the newest four; the running call whatever its age.
    assert_eq!(store.prune_invocations(id, now - 7 * day, 4).await.unwrap(), 5);
    let left: Vec<String> = store.list_invocations(id, 100).await.unwrap().into_iter().map(|c| c.id).collect();
    assert_eq!(left, ["new-5", "new-4", "new-3", "new-2", "old-running"]);
    assert_eq!(store.prune_invocations(id, now - 7 * day, 4).await.unwrap(), 0, "nothing more to prune");
}

async fn the_sweeper_publishes_only_calls_no_request_is_publishing(db: Db) {
    let dir = tempfile::tempdir().unwrap();
    let store = store_on(db, dir.path()).await;
    let (_, target) = serving_function(&store).await;
    let listed = |calls: Vec<(String, String, String, i64)>| calls.into_iter().map(|c| (c.0, c.3)).collect::<Vec<_>>();

    store.queue_invocation("fresh", &target, "async", "POST", "/", "{}").await.unwrap();
    let accepted = server::store::now_ms();
    assert!(listed(store.unpublished_calls(accepted - 5000, 10).await.unwrap()).is_empty(), "its request is still publishing it");
    assert_eq!(listed(store.unpublished_calls(accepted + 1, 10).await.unwrap()), [("fresh".to_string(), 0)], "its request gave up");
    store.set_published("fresh", 0).await.unwrap();
    assert!(listed(store.unpublished_calls(accepted + 1, 10).await.unwrap()).is_empty(), "the broker confirmed it");

    // A failed attempt waits for its back-off, then only the sweeper publishes it, however new.
    assert!(store.claim_invocation("fresh", "front-a").await.unwrap().is_some());
    store.retry_async_call("fresh", "{}", server::store::now_ms() + 60_000).await.unwrap();
    assert!(listed(store.unpublished_calls(accepted + 1, 10).await.unwrap()).is_empty(), "not due yet");
    store.retry_async_call("fresh", "{}", server::store::now_ms() - 1).await.unwrap();
    assert_eq!(listed(store.unpublished_calls(accepted - 5000, 10).await.unwrap()), [("fresh".to_string(), 1)], "a due retry");

    // Claimed by front-a, which then dies: it stays running while front-a lives, and goes back
    // to the queue, to be published again, once it is gone.
    assert!(store.claim_invocation("fresh", "front-a").await.unwrap().is_some());
    assert!(store.claim_invocation("fresh", "front-b").await.unwrap().is_none(), "a running call is not claimed twice");
    let live = |ids: &[&str]| ids.iter().map(|s| s.to_string()).collect::<std::collections::HashSet<String>>();
    assert_eq!(store.recover_calls_of_gone("front-b", &live(&["front-a"])).await.unwrap(), Recovered::default());
    assert_eq!(store.recover_calls_of_gone("front-a", &live(&[])).await.unwrap(), Recovered::default(), "never its own");
    assert_eq!(store.recover_calls_of_gone("front-b", &live(&[])).await.unwrap(), Recovered { requeued: 1, failed: 0 });
    assert_eq!(listed(store.unpublished_calls(server::store::now_ms() + 1, 10).await.unwrap()), [("fresh".to_string(), 2)]);
    assert!(store.claim_invocation("fresh", "front-b").await.unwrap().is_some(), "front-b runs it now");
}

on_both_databases!(
    builds_switch_versions_and_keep_logs,
    invocations_are_recorded_and_interrupted_ones_failed,
    a_batch_of_many_calls_is_written_whole_each_row_its_own,
    old_call_records_are_pruned_and_unfinished_ones_kept,
    the_sweeper_publishes_only_calls_no_request_is_publishing
);

/// The cluster-wide count a node asks before it starts a container: the other nodes' containers
/// as their heartbeats list them, plus the starts they wrote since; nodes that are down do not
/// count. PostgreSQL only, as nodes are.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_starts_a_container_only_within_the_limit_across_nodes() {
    use server::store::{Admission, NodeBeat};
    let dir = tempfile::tempdir().unwrap();
    let store = store_on(Db::Postgres, dir.path()).await;
    const DOWN_AFTER_MS: i64 = 3_000;
    let (function, other_function) = (41, 42);
    for node in ["node-a", "node-b", "node-c", "node-down"] {
        store.register_node(node, &format!("process-{node}"), "127.0.0.1:1", 1024, 1000).await.unwrap();
    }
    let warm = |containers: usize| format!(r#"[{{"function_id":{function},"version":1,"containers":{containers}}},{{"function_id":{other_function},"version":3,"containers":5}}]"#);
    let beat = NodeBeat { warm: warm(1), ..NodeBeat::default() };
    assert!(store.node_heartbeat("node-b", "process-node-b", &beat).await.unwrap());
    let down = NodeBeat { warm: warm(4), ..NodeBeat::default() };
    assert!(store.node_heartbeat("node-down", "process-node-down", &down).await.unwrap());
    sqlx::query("UPDATE nodes SET heartbeat_at = heartbeat_at - 10000 WHERE name = 'node-down'").execute(&store.pool).await.unwrap();

    // node-b's heartbeat lists one container of the function, node-down's four do not count.
    assert_eq!(store.admit_container("node-a", function, 0, 2, DOWN_AFTER_MS).await.unwrap(), Admission::Admitted);
    // node-a's start is counted by the others before its heartbeat lists it.
    assert_eq!(
        store.admit_container("node-c", function, 0, 2, DOWN_AFTER_MS).await.unwrap(),
        Admission::Full(vec![("node-a".to_string(), 1), ("node-b".to_string(), 1)])
    );
    assert_eq!(store.admit_container("node-a", function, 1, 2, DOWN_AFTER_MS).await.unwrap(), Admission::Full(vec![("node-b".to_string(), 1)]));
    assert_eq!(store.admit_container("node-c", function, 0, 3, DOWN_AFTER_MS).await.unwrap(), Admission::Admitted);
    // Another function's containers are its own.
    assert_eq!(store.admit_container("node-a", other_function, 0, 6, DOWN_AFTER_MS).await.unwrap(), Admission::Admitted);

    // Once node-a's heartbeat lists its container (its start row older than the beat by more
    // than the margin), the container counts once, not twice.
    sqlx::query("UPDATE container_starts SET started_at = started_at - 5000 WHERE node = 'node-a'").execute(&store.pool).await.unwrap();
    assert!(store.node_heartbeat("node-a", "process-node-a", &NodeBeat { warm: warm(1), ..NodeBeat::default() }).await.unwrap());
    let elsewhere = match store.admit_container("node-b", function, 1, 4, DOWN_AFTER_MS).await.unwrap() {
        Admission::Admitted => "admitted".to_string(),
        Admission::Full(held) => format!("{held:?}"),
    };
    assert_eq!(elsewhere, "admitted", "node-a 1 + node-c 1 + node-b's own 1 = 3 < 4");
    assert_eq!(
        store.admit_container("node-down", function, 0, 4, DOWN_AFTER_MS).await.unwrap(),
        Admission::Full(vec![("node-a".to_string(), 1), ("node-b".to_string(), 2), ("node-c".to_string(), 1)])
    );
}
