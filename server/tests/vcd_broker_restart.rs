//! RabbitMQ restarts under steady traffic: every API call vCD's side got confirmed by the
//! broker is answered after recovery, and HTTP calls keep flowing meanwhile. Alone in its test
//! binary because it restarts the broker every test shares (test binaries run one at a time).

mod common;

use common::amqp::{org_urn, reply_body, request, wait_for_queue, Names, AMQP_URL};
use common::{Db, TestApp};
use futures_util::StreamExt;
use lapin::options::*;
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties, ExchangeKind};
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn rabbitmqctl(args: &[&str]) {
    let status = std::process::Command::new("rabbitmqctl").args(args).stdout(std::process::Stdio::null()).status().unwrap();
    assert!(status.success(), "rabbitmqctl {args:?} failed");
}

/// A channel on a new connection, retried while the broker is away.
/// A broker that is starting or stopping may take a connection and never finish its
/// handshake or confirm a message: every wait on it here is bounded, then tried again.
const BROKER_WAIT: Duration = Duration::from_secs(5);

async fn channel() -> (Connection, Channel) {
    let open = || async {
        let connection = Connection::connect(AMQP_URL, ConnectionProperties::default()).await.ok()?;
        let channel = connection.create_channel().await.ok()?;
        channel.confirm_select(ConfirmSelectOptions::default()).await.ok()?;
        Some((connection, channel))
    };
    loop {
        if let Ok(Some(opened)) = tokio::time::timeout(BROKER_WAIT, open()).await {
            return opened;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Publishes one persistent request; true once the broker confirmed it.
async fn publish(channel: &Channel, names: &Names, reply: (&str, &str), id: &str, payload: &[u8]) -> bool {
    let mut headers = FieldTable::default();
    headers.insert("replyToExchange".into(), AMQPValue::LongString(reply.0.into()));
    let properties = BasicProperties::default()
        .with_correlation_id(id.into())
        .with_reply_to(reply.1.into())
        .with_headers(headers)
        .with_delivery_mode(2);
    let confirmed = async {
        let confirm = channel.basic_publish(names.exchange.as_str().into(), names.routing_key.as_str().into(), BasicPublishOptions::default(), payload, properties).await;
        confirm.ok()?.await.ok().map(|c| c.is_ack())
    };
    matches!(tokio::time::timeout(BROKER_WAIT, confirmed).await, Ok(Some(true)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_restart_under_traffic_loses_no_call() {
    common::amqp::sweep_earlier_test_objects().await;
    let names = Names::new();
    let app = TestApp::spawn_with(Db::Sqlite, |config| names.apply(config)).await;
    wait_for_queue(&names.api_queue).await;
    let org = org_urn();
    let t = app.tenant_with(json!({"vcd_org_id": org})).await;
    app.deploy(&t.dev, "steady", "nodejs", "module.exports = async (e) => 'ok ' + (e.query.n || '');").await;

    // vCD's side, with a durable reply queue so replies wait out the restart.
    let (reply_exchange, reply_queue) = (format!("{}-reply", names.exchange), format!("{}-replies", names.api_queue));
    let (_c, ch) = channel().await;
    let durable = ExchangeDeclareOptions { durable: true, ..Default::default() };
    ch.exchange_declare(reply_exchange.as_str().into(), ExchangeKind::Direct, durable, FieldTable::default()).await.unwrap();
    ch.queue_declare(reply_queue.as_str().into(), QueueDeclareOptions { durable: true, ..Default::default() }, FieldTable::default()).await.unwrap();
    ch.queue_bind(reply_queue.as_str().into(), reply_exchange.as_str().into(), "cell".into(), QueueBindOptions::default(), FieldTable::default())
        .await
        .unwrap();

    // HTTP callers keep going through the outage.
    let stop = Arc::new(AtomicBool::new(false));
    let (http_ok, http_failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let http = {
        let (stop, ok, failed) = (stop.clone(), http_ok.clone(), http_failed.clone());
        let (client, url, token) = (app.client.clone(), app.url(&format!("/api/org/{}/steady", t.org)), t.dev.clone());
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let r = client.get(&url).bearer_auth(&token).send().await;
                let passed = matches!(&r, Ok(r) if r.status() == 200);
                if !passed {
                    match r {
                        Ok(r) => eprintln!("an HTTP call failed during the restart: {} {}", r.status(), r.text().await.unwrap_or_default()),
                        Err(e) => eprintln!("an HTTP call failed during the restart: {e}"),
                    }
                }
                let counter = if passed { &ok } else { &failed };
                counter.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };

    let restart = tokio::spawn(async {
        tokio::time::sleep(Duration::from_secs(3)).await;
        tokio::task::spawn_blocking(|| {
            rabbitmqctl(&["stop_app"]);
            std::thread::sleep(Duration::from_secs(3));
            rabbitmqctl(&["start_app"]);
            rabbitmqctl(&["await_startup"]);
        })
        .await
        .unwrap();
    });

    // Requests for 12 s; each counts once the broker confirmed it, and is sent again if not.
    let mut confirmed = BTreeMap::new();
    let (mut connection, mut ch) = channel().await;
    let started = Instant::now();
    let mut n = 0;
    while started.elapsed() < Duration::from_secs(12) {
        let id = format!("call-{n}");
        let message = request(&id, "GET", &format!("/api/org/{}/steady", t.org), Some(&format!("n={n}")), b"", &org);
        if publish(&ch, &names, (&reply_exchange, "cell"), &id, message.to_string().as_bytes()).await {
            confirmed.insert(id, format!("ok {n}"));
            n += 1;
            tokio::time::sleep(Duration::from_millis(25)).await;
        } else {
            (connection, ch) = channel().await;
        }
    }
    restart.await.unwrap();
    stop.store(true, Ordering::Relaxed);
    http.await.unwrap();
    drop(connection);

    // Every confirmed request is answered, with its own answer.
    let (_c, ch) = channel().await;
    let mut replies = ch.basic_consume(reply_queue.as_str().into(), "".into(), BasicConsumeOptions { no_ack: true, ..Default::default() }, FieldTable::default()).await.unwrap();
    let mut answered = BTreeMap::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    while answered.len() < confirmed.len() && Instant::now() < deadline {
        let Ok(Some(Ok(delivery))) = tokio::time::timeout(Duration::from_secs(5), replies.next()).await else { continue };
        let reply: serde_json::Value = serde_json::from_slice(&delivery.data).unwrap();
        assert_eq!(reply["statusCode"], 200, "{reply}");
        answered.insert(reply["id"].as_str().unwrap().to_string(), reply_body(&reply));
    }
    let missing: Vec<_> = confirmed.keys().filter(|id| !answered.contains_key(*id)).collect();
    assert!(missing.is_empty(), "{} of {} confirmed calls never answered: {missing:?}", missing.len(), confirmed.len());
    for (id, body) in &confirmed {
        assert_eq!(&answered[id], body, "{id} got another call's answer");
    }
    assert!(confirmed.len() > 50, "too little traffic to mean anything: {}", confirmed.len());
    assert_eq!(http_failed.load(Ordering::Relaxed), 0, "HTTP calls failed during the broker restart");
    assert!(http_ok.load(Ordering::Relaxed) > 50);
    println!("broker restart: {} AMQP calls confirmed and answered, {} HTTP calls meanwhile", confirmed.len(), http_ok.load(Ordering::Relaxed));
    let _ = ch.queue_delete(reply_queue.as_str().into(), QueueDeleteOptions::default()).await;
    let _ = ch.exchange_delete(reply_exchange.as_str().into(), ExchangeDeleteOptions::default()).await;
    app.finish().await;
}
