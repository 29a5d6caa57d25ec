//! Schedule triggers against the real binary, the real Docker engine and real databases: the
//! pattern and the zone are checked at their fields; a one-minute schedule runs each minute
//! exactly once with two server processes on one PostgreSQL database, across a restart of both;
//! after a downtime the missed ticks run once, not once each.

mod common;

use common::binary::{self, free_port, post};
use common::{fresh_database, json_of, Db, TestApp};
use reqwest::{Client, StatusCode};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Logs the tick it was called for, so each call record says which tick it ran.
const TICKER: &str = "module.exports = async (event) => { const tick = JSON.parse(event.body); \
     console.log(`tick ${tick.scheduledTime} ${event.method} ${event.headers['x-vcd-faas-scheduled-time']}`); return 'ticked'; };";

fn schedule(cron: &str, timezone: &str) -> Value {
    json!({"type": "schedule", "cron": cron, "timezone": timezone})
}

// ---- the fields, on both databases ----

async fn schedule_fields_are_checked_at_their_field(db: Db) {
    let app = TestApp::spawn(db).await;
    let t = app.tenant().await;
    let refused = [
        ("every minute", "UTC", "trigger.cron", "has 2 fields"),
        ("0 */5 * * * *", "UTC", "trigger.cron", "seconds and years are not supported"),
        ("61 * * * *", "UTC", "trigger.cron", "is not valid"),
        ("0 0 30 2 *", "UTC", "trigger.cron", "never matches"),
        ("*/5 * * * *", "Mars/Olympus", "trigger.timezone", "unknown time zone \"Mars/Olympus\""),
        ("", "", "trigger.cron", "cron is empty"),
    ];
    for (cron, timezone, field, words) in refused {
        let spec = json!({"name": "ticker", "language": "nodejs", "code": TICKER, "trigger": schedule(cron, timezone)});
        let (status, body) = json_of(app.post(&t.dev, "/api/v1/functions", spec).await).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{cron:?} {timezone:?}: {body}");
        let first = &body["fields"][0];
        assert_eq!(first["field"], field, "{cron:?} {timezone:?}: {body}");
        assert!(first["message"].as_str().unwrap().contains(words), "{cron:?} {timezone:?}: {body}");
    }

    // A good one: the function shows its schedule and the next run in its zone's offset.
    let spec = json!({"name": "ticker", "language": "nodejs", "code": TICKER, "trigger": schedule("*/5 * * * *", "Europe/Sofia")});
    let f = app.create_with(&t.dev, spec).await;
    assert_eq!(f["trigger"], schedule("*/5 * * * *", "Europe/Sofia"));
    let next_run = f["next_run"].as_str().unwrap();
    let at = chrono::DateTime::parse_from_rfc3339(next_run).unwrap();
    assert!(next_run.ends_with("+02:00") || next_run.ends_with("+03:00"), "Sofia's offset: {next_run}");
    assert_eq!((at.timestamp() % 300, at.timestamp() > now_ms() / 1000), (0, true), "a five-minute tick ahead: {next_run}");
    // The time zone left out is UTC.
    let r = app.put(&t.dev, "/api/v1/functions/ticker", json!({"trigger": {"type": "schedule", "cron": "0 9 * * 1-5"}})).await;
    let (status, f) = json_of(r).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{f}");
    assert_eq!(f["trigger"], schedule("0 9 * * 1-5", "UTC"));
    assert!(f["next_run"].as_str().unwrap().ends_with("T09:00:00Z"), "{f}");

    // An update is checked the same way and changes nothing when refused.
    let r = app.put(&t.dev, "/api/v1/functions/ticker", json!({"trigger": schedule("* * * * *", "europe/sofia")})).await;
    let (status, body) = json_of(r).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["fields"][0]["field"], "trigger.timezone", "{body}");
    assert_eq!(app.function(&t.dev, "ticker").await["trigger"], schedule("0 9 * * 1-5", "UTC"));

    // Back to HTTP only: no next run.
    let r = app.put(&t.dev, "/api/v1/functions/ticker", json!({"trigger": {"type": "http"}})).await;
    let (status, f) = json_of(r).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{f}");
    assert_eq!(f["next_run"], Value::Null);
    app.finish().await;
}

on_both_databases!(schedule_fields_are_checked_at_their_field);

// ---- ticks, with real server processes and the wall clock ----

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as i64
}

/// The first minute boundary after `ms`.
fn next_minute(ms: i64) -> i64 {
    (ms / 60_000 + 1) * 60_000
}

async fn sleep_until(ms: i64) {
    let left = ms - now_ms();
    if left > 0 {
        tokio::time::sleep(Duration::from_millis(left as u64)).await;
    }
}

/// Creates the one-minute ticker and waits until it is ready.
async fn deploy_ticker(client: &Client, base: &str, dev: &str, timezone: &str) {
    let spec = json!({"name": "ticker", "language": "nodejs", "code": TICKER, "trigger": schedule("* * * * *", timezone)});
    post(client, format!("{base}/api/v1/functions"), Some(dev), spec).await;
    let start = Instant::now();
    loop {
        let f: Value = client.get(format!("{base}/api/v1/functions/ticker")).bearer_auth(dev).send().await.unwrap().json().await.unwrap();
        match f["status"].as_str() {
            Some("ready") => return,
            Some("failed") => panic!("ticker did not build: {}", f["build_log"]),
            _ => {}
        }
        assert!(start.elapsed() < Duration::from_secs(240), "ticker not ready: {f}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The ticker's runs by the tick they ran for (Unix ms), each with its calls' status codes;
/// once none is still running.
async fn runs(client: &Client, base: &str, dev: &str) -> BTreeMap<i64, Vec<i64>> {
    let url = format!("{base}/api/v1/functions/ticker/invocations?trigger=schedule&limit=500");
    let start = Instant::now();
    let list = loop {
        let list: Vec<Value> = client.get(&url).bearer_auth(dev).send().await.unwrap().json().await.unwrap();
        if list.iter().all(|call| call["status_code"].is_i64()) {
            break list;
        }
        assert!(start.elapsed() < Duration::from_secs(60), "a scheduled call did not end: {list:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let mut by_tick: BTreeMap<i64, Vec<i64>> = BTreeMap::new();
    for call in list {
        assert_eq!(call["trigger"], "schedule");
        let logs = call["logs"].as_str().unwrap_or_default();
        let line = logs.lines().find(|l| l.starts_with("tick ")).unwrap_or_else(|| panic!("a run without its tick: {call}"));
        let words: Vec<&str> = line.split(' ').collect();
        assert_eq!((words[2], words[3]), ("POST", words[1]), "the body and the header name the same tick: {line}");
        let tick = chrono::DateTime::parse_from_rfc3339(words[1]).unwrap().timestamp_millis();
        by_tick.entry(tick).or_default().push(call["status_code"].as_i64().unwrap_or(0));
    }
    by_tick
}

/// Deletes the ticker and waits until it is gone, its containers and image with it.
async fn delete_ticker(client: &Client, base: &str, dev: &str) {
    let url = format!("{base}/api/v1/functions/ticker");
    assert_eq!(client.delete(&url).bearer_auth(dev).send().await.unwrap().status(), StatusCode::NO_CONTENT);
    let start = Instant::now();
    while client.get(&url).bearer_auth(dev).send().await.unwrap().status() != StatusCode::NOT_FOUND {
        assert!(start.elapsed() < Duration::from_secs(30), "ticker not deleted");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn minute(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms).unwrap().format("%H:%M").to_string()
}

/// Two processes share a PostgreSQL database; both are stopped just after a tick (one killed,
/// one stopped cleanly) and two new ones started in the same minute. Every minute runs exactly
/// once, the one of the restart included.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_run_each_minute_once_and_a_restart_runs_no_tick_twice() {
    let root = tempfile::tempdir().unwrap();
    let envs = binary::shared_settings(&fresh_database(Db::Postgres, root.path()).await);
    let client = Client::builder().timeout(Duration::from_secs(60)).build().unwrap();
    // The second process starts once the first has built the base image.
    let a = binary::start_in(root.path(), "a", &envs).await;
    let (_, dev) = binary::setup_tenant(&client, &a.base, json!({})).await;
    deploy_ticker(&client, &a.base, &dev, "Europe/Sofia").await;
    let b = binary::start_in(root.path(), "b", &envs).await;

    let first = next_minute(now_ms());
    let second = first + 60_000;
    sleep_until(second + 4_000).await;
    a.kill9();
    b.terminate();
    let c = binary::start_in(root.path(), "c", &envs).await;
    let d = binary::start_in(root.path(), "d", &envs).await;
    assert!(now_ms() < second + 60_000, "the new processes started within the minute of the last tick");
    let third = second + 60_000;
    sleep_until(third + 4_000).await;

    let by_tick = runs(&client, &d.base, &dev).await;
    let shown: Vec<String> = by_tick.iter().map(|(tick, calls)| format!("{} ×{}", minute(*tick), calls.len())).collect();
    for tick in [first, second, third] {
        assert_eq!(by_tick.get(&tick).map(Vec::len), Some(1), "the {} tick ran once: {shown:?}", minute(tick));
    }
    assert!(by_tick.values().all(|calls| calls.len() == 1), "no tick ran twice: {shown:?}");
    assert!(by_tick.keys().all(|tick| *tick <= third), "no tick ran early: {shown:?}");
    assert!(by_tick.values().flatten().all(|status| *status == 200), "every run answered: {by_tick:?}");
    delete_ticker(&client, &c.base, &dev).await;
    c.terminate();
    d.terminate();
}

/// The only process is down for two ticks: on its start it runs the latest missed tick, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missed_tick_runs_once_after_a_downtime() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("data");
    let envs = binary::shared_settings(&format!("sqlite://{}/vcd-faas.db", dir.display()));
    let client = Client::builder().timeout(Duration::from_secs(60)).build().unwrap();
    std::fs::create_dir_all(&dir).unwrap();
    let server = binary::start(&dir, free_port(), &envs).await;
    let (_, dev) = binary::setup_tenant(&client, &server.base, json!({})).await;
    deploy_ticker(&client, &server.base, &dev, "UTC").await;
    let before = runs(&client, &server.base, &dev).await;
    server.terminate();

    // Down from here: two ticks go by.
    let missed = next_minute(now_ms());
    let latest = missed + 60_000;
    sleep_until(latest + 3_000).await;
    let server = binary::start(&dir, free_port(), &envs).await;
    let start = Instant::now();
    let after = loop {
        let now = runs(&client, &server.base, &dev).await;
        if now.len() > before.len() || start.elapsed() > Duration::from_secs(20) {
            break now;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    // Nothing more comes for the missed ticks (the next tick is a minute away).
    tokio::time::sleep(Duration::from_secs(5)).await;
    let settled = runs(&client, &server.base, &dev).await;
    assert_eq!(after, settled);
    let new: Vec<(String, usize)> =
        settled.iter().filter(|(tick, _)| !before.contains_key(tick)).map(|(tick, calls)| (minute(*tick), calls.len())).collect();
    assert_eq!(new, vec![(minute(latest), 1)], "one run, for the latest missed tick");
    assert_eq!(settled[&latest], vec![200]);
    delete_ticker(&client, &server.base, &dev).await;
    server.terminate();
}
