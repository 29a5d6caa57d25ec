//! vCD's MQTT broker stops under steady traffic and starts again on the same port: the
//! extension reconnects, no call that ran lost its answer (answers made while the broker was
//! away are sent after the reconnect), no caller got another call's answer, and calls flow
//! again after the restart. vCD's broker keeps nothing for a client with a clean session, so
//! requests published while the extension is away are lost: their callers get vCD's timeout
//! or "broker unavailable", as with a real vCD; they never ran. Alone in its test binary: it
//! is heavy, not shared.

mod common;

use common::amqp::Names;
use common::mqtt::Broker;
use common::sim::Sim;
use common::{Db, TestApp};
use reqwest::Method;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_restart_under_load_loses_no_answer() {
    let names = Names::new();
    let mut broker = Broker::start();
    let flags = broker.sim_flags();
    let sim = Arc::new(Sim::start_with(&names, &["acme"], &flags.iter().map(String::as_str).collect::<Vec<_>>()).await);
    let app = TestApp::spawn_with(Db::Sqlite, |config| sim.apply_mqtt(config)).await;
    let t = app.tenant_with(json!({"vcd_org_id": sim.org_id("acme").await})).await;
    // Slow enough that calls are running when the broker stops.
    let code = "module.exports = async (e) => { await new Promise(r => setTimeout(r, 400)); return 'ok ' + e.query.n; };";
    app.deploy(&t.dev, "steady", "nodejs", code).await;
    let path = format!("/api/org/{}/steady", t.org);
    let start = Instant::now();
    while sim.call("dev@acme", Method::GET, &format!("{path}?n=warm"), "").await.status() != 200 {
        assert!(start.elapsed() < Duration::from_secs(60), "the extension never answered");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Four callers for 14 s; the broker is away from second 4 for 2 s.
    let stop = Arc::new(AtomicBool::new(false));
    // (n, status, body, sent, answered)
    let outcomes: Arc<Mutex<Vec<(u64, u16, String, Instant, Instant)>>> = Arc::default();
    let mut callers = Vec::new();
    for caller in 0..4u64 {
        let (sim, stop, outcomes, path) = (sim.clone(), stop.clone(), outcomes.clone(), path.clone());
        callers.push(tokio::spawn(async move {
            let mut k = 0;
            while !stop.load(Ordering::Relaxed) {
                let n = caller * 100_000 + k;
                let sent = Instant::now();
                let r = sim.call("dev@acme", Method::GET, &format!("{path}?n={n}"), "").await;
                let status = r.status().as_u16();
                let body = r.text().await.unwrap_or_default();
                outcomes.lock().unwrap().push((n, status, body, sent, Instant::now()));
                k += 1;
            }
        }));
    }
    tokio::time::sleep(Duration::from_secs(4)).await;
    let stopped_at = Instant::now();
    tokio::task::block_in_place(|| broker.restart(Duration::from_secs(2)));
    let restarted_at = Instant::now();
    tokio::time::sleep(Duration::from_secs(10)).await;
    stop.store(true, Ordering::Relaxed);
    for caller in callers {
        caller.await.unwrap();
    }

    let outcomes = outcomes.lock().unwrap().clone();
    let answered: Vec<_> = outcomes.iter().filter(|o| o.1 == 200).collect();
    // Each answer is the caller's own.
    for (n, _, body, _, _) in &answered {
        assert_eq!(body, &format!("ok {n}"), "call {n} got another call's answer");
    }
    // Calls that failed did so at vCD's side (broker away, or no answer in time), never with a wrong answer.
    let failed: Vec<_> = outcomes.iter().filter(|o| o.1 != 200).collect();
    assert!(failed.iter().all(|o| [502, 503, 504].contains(&o.1)), "{:?}", failed.iter().map(|o| (o.1, &o.2)).collect::<Vec<_>>());
    // Every call the function ran was answered: none of the answers made around the outage was lost.
    let runs: Value = app.get(&t.dev, "/api/v1/functions/steady/invocations?trigger=vcd&limit=500").await.json().await.unwrap();
    let runs = runs.as_array().unwrap().len();
    assert_eq!(runs, answered.len() + 1, "{runs} calls ran (with the warm-up), {} were answered", answered.len());
    // The extension is back: calls made well after the restart are answered.
    let late: Vec<_> = outcomes.iter().filter(|o| o.3 > restarted_at + Duration::from_secs(5)).collect();
    assert!(!late.is_empty() && late.iter().all(|o| o.1 == 200), "after the restart: {:?}", late.iter().map(|o| o.1).collect::<Vec<_>>());
    let before = outcomes.iter().filter(|o| o.4 < stopped_at && o.1 == 200).count();
    // Calls sent before the stop and answered after the restart: they waited out the outage.
    let across = answered.iter().filter(|o| o.3 < stopped_at && o.4 > restarted_at).count();
    let unmatched = sim.state().await["mqttAnswers"]["unmatched"].clone();
    println!(
        "MQTT broker restart: {} calls, {} answered ({before} before the stop, {across} across the outage), {} failed at vCD's side, {unmatched} answers sent again",
        outcomes.len(),
        answered.len(),
        failed.len()
    );
    assert!(before > 20, "too little traffic to mean anything: {before}");
    assert!(across > 0, "no call was under way while the broker was away: the test proved nothing");
    app.finish().await;
}
