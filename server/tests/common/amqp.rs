//! Playing vCD's side of the broker in tests: publishing API requests the way vCD does
//! (vcd-protocol.md §2.3) and reading the replies, publishing notifications (§3).
#![allow(dead_code)]

use base64::Engine as _;
use futures_util::StreamExt;
use lapin::options::*;
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties, ExchangeKind};
use serde_json::{json, Value};
use server::config::{Config, Secret};
use std::time::Duration;

pub const AMQP_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

/// Broker names of one test, so tests running at once never share a queue.
#[derive(Clone, Debug)]
pub struct Names {
    pub exchange: String,
    pub routing_key: String,
    pub api_queue: String,
    pub prefix: String,
    pub events_queue: String,
    /// Prefix of the asynchronous calls' exchange and queues.
    pub async_prefix: String,
}

/// Broker objects of tests start with this, followed by the test process's id.
const TEST_PREFIX: &str = "test-";

impl Names {
    pub fn new() -> Names {
        let id = format!("p{}-{}", std::process::id(), &uuid::Uuid::new_v4().simple().to_string()[..8]);
        Names {
            exchange: format!("test-ext-{id}"),
            routing_key: format!("test-rk-{id}"),
            api_queue: format!("test-api-{id}"),
            prefix: format!("test-vcd-{id}"),
            events_queue: format!("test-events-{id}"),
            async_prefix: format!("test-async-{id}"),
        }
    }

    /// Points the platform at the local broker under these names.
    pub fn apply(&self, config: &mut Config) {
        config.vcd.amqp_url = Some(Secret(AMQP_URL.into()));
        config.vcd.vcd_exchange = self.exchange.clone();
        config.vcd.vcd_routing_key = self.routing_key.clone();
        config.vcd.vcd_api_queue = self.api_queue.clone();
        config.vcd.vcd_amqp_prefix = self.prefix.clone();
        config.vcd.vcd_events_queue = self.events_queue.clone();
        config.async_queue_prefix = self.async_prefix.clone();
    }

    /// The same settings as environment variables, for the server binary.
    pub fn env(&self) -> Vec<(String, String)> {
        vec![
            ("AMQP_URL".to_string(), AMQP_URL.to_string()),
            ("VCD_EXCHANGE".to_string(), self.exchange.clone()),
            ("VCD_ROUTING_KEY".to_string(), self.routing_key.clone()),
            ("VCD_API_QUEUE".to_string(), self.api_queue.clone()),
            ("VCD_AMQP_PREFIX".to_string(), self.prefix.clone()),
            ("VCD_EVENTS_QUEUE".to_string(), self.events_queue.clone()),
            ("VCD_FAAS_ASYNC_QUEUE_PREFIX".to_string(), self.async_prefix.clone()),
        ]
    }

    /// The durable queue of a function's asynchronous calls.
    pub fn async_queue(&self, org: &str, function: &str) -> String {
        format!("{}.async.{org}.{function}", self.async_prefix)
    }

    pub fn async_dead_letter_queue(&self, org: &str, function: &str) -> String {
        format!("{}.dead-letter", self.async_queue(org, function))
    }

    pub fn notifications_exchange(&self) -> String {
        format!("{}.notifications20", self.prefix)
    }
}

/// A stand-in for vCD's cell on the broker: a reply exchange and this cell's reply queue.
pub struct FakeCell {
    pub connection: Connection,
    pub channel: Channel,
    pub reply_exchange: String,
    pub reply_key: String,
    replies: tokio::sync::Mutex<lapin::Consumer>,
}

pub fn org_urn() -> String {
    format!("urn:vcloud:org:{}", uuid::Uuid::new_v4())
}

/// vCD's request array for a call from `org`.
pub fn request(id: &str, method: &str, uri: &str, query: Option<&str>, body: &[u8], org: &str) -> Value {
    json!([
        {"id": id, "method": method, "scheme": "https", "protocol": "HTTP/1.1",
         "headers": {"Accept": "application/json", "Content-Type": "application/json",
                     "Authorization": "Bearer secret-vcd-session"},
         "queryString": query, "requestUri": uri,
         "body": base64::engine::general_purpose::STANDARD.encode(body),
         "localPort": 443, "remoteAddr": "10.0.0.9", "remotePort": 50000, "localAddr": "10.0.0.1", "request": true},
        {"user": "urn:vcloud:user:6d1b0e5a-5f43-4c59-9d36-1e0d3e7e2b11", "org": org, "rights": []}
    ])
}

impl FakeCell {
    pub async fn connect() -> FakeCell {
        let connection = Connection::connect(AMQP_URL, ConnectionProperties::default()).await.expect("RabbitMQ at 127.0.0.1:5672");
        let channel = connection.create_channel().await.unwrap();
        let id = uuid::Uuid::new_v4().simple().to_string();
        let reply_exchange = format!("test-reply-{}", &id[..10]);
        let reply_key = format!("cell-{}", &id[..10]);
        channel
            .exchange_declare(reply_exchange.as_str().into(), ExchangeKind::Direct, ExchangeDeclareOptions { auto_delete: true, ..Default::default() }, FieldTable::default())
            .await
            .unwrap();
        let queue = channel
            .queue_declare("".into(), QueueDeclareOptions { exclusive: true, auto_delete: true, ..Default::default() }, FieldTable::default())
            .await
            .unwrap();
        channel
            .queue_bind(queue.name().clone(), reply_exchange.as_str().into(), reply_key.as_str().into(), QueueBindOptions::default(), FieldTable::default())
            .await
            .unwrap();
        let replies = channel
            .basic_consume(queue.name().clone(), "".into(), BasicConsumeOptions { no_ack: true, ..Default::default() }, FieldTable::default())
            .await
            .unwrap();
        FakeCell { connection, channel, reply_exchange, reply_key, replies: tokio::sync::Mutex::new(replies) }
    }

    /// Publishes raw bytes as vCD would, with or without a reply address.
    pub async fn publish_raw(&self, exchange: &str, routing_key: &str, payload: &[u8], correlation_id: &str, with_reply_address: bool) {
        let mut properties = BasicProperties::default()
            .with_correlation_id(correlation_id.into())
            .with_content_type("application/json".into())
            .with_delivery_mode(2);
        if with_reply_address {
            let mut headers = FieldTable::default();
            headers.insert("replyToExchange".into(), AMQPValue::LongString(self.reply_exchange.as_str().into()));
            headers.insert("messageType".into(), AMQPValue::LongString("ProcessHttpRequest".into()));
            properties = properties.with_reply_to(self.reply_key.as_str().into()).with_headers(headers);
        }
        self.channel
            .basic_publish(exchange.into(), routing_key.into(), BasicPublishOptions::default(), payload, properties)
            .await
            .unwrap()
            .await
            .unwrap();
    }

    /// The next reply: (correlation id, reply JSON).
    pub async fn next_reply(&self, within: Duration) -> Option<(String, Value)> {
        let mut replies = self.replies.lock().await;
        let delivery = tokio::time::timeout(within, replies.next()).await.ok()??.ok()?;
        let correlation = delivery.properties.correlation_id().as_ref().map(|c| c.to_string()).unwrap_or_default();
        Some((correlation, serde_json::from_slice(&delivery.data).expect("reply is JSON")))
    }

    /// Sends a request and waits for its reply.
    pub async fn call(&self, names: &Names, message: &Value) -> Value {
        let correlation = uuid::Uuid::new_v4().to_string();
        self.publish_raw(&names.exchange, &names.routing_key, message.to_string().as_bytes(), &correlation, true).await;
        loop {
            let (got, reply) = self.next_reply(Duration::from_secs(60)).await.expect("a reply within 60 s");
            if got == correlation {
                return reply;
            }
        }
    }

    /// Publishes a vCD JSON notification to the notifications exchange.
    pub async fn notify(&self, names: &Names, event_type: &str, org_urn: &str, success: bool, event_id: &str) {
        let org = org_urn.rsplit(':').next().unwrap();
        let entity = uuid::Uuid::new_v4();
        let user = uuid::Uuid::new_v4();
        let key = format!("{success}.{entity}.{org}.{user}.{}", event_type.replace('/', "."));
        let body = json!({"eventId": event_id, "type": event_type, "timestamp": "2026-11-28T10:00:00.000+00:00",
            "operationSuccess": success, "user": format!("urn:vcloud:user:{user}"), "org": org_urn,
            "entity": format!("urn:vcloud:vm:{entity}")});
        self.channel
            .exchange_declare(names.notifications_exchange().as_str().into(), ExchangeKind::Topic, ExchangeDeclareOptions { durable: true, ..Default::default() }, FieldTable::default())
            .await
            .unwrap();
        self.channel
            .basic_publish(
                names.notifications_exchange().as_str().into(),
                key.as_str().into(),
                BasicPublishOptions::default(),
                body.to_string().as_bytes(),
                BasicProperties::default().with_content_type("application/json".into()).with_delivery_mode(2),
            )
            .await
            .unwrap()
            .await
            .unwrap();
    }
}

/// The decoded body of a reply.
pub fn reply_body(reply: &Value) -> String {
    let bytes = base64::engine::general_purpose::STANDARD.decode(reply["body"].as_str().unwrap()).unwrap();
    String::from_utf8(bytes).unwrap()
}

/// Waits until the platform's consumer has declared and bound its queue.
pub async fn wait_for_queue(queue: &str) {
    let connection = Connection::connect(AMQP_URL, ConnectionProperties::default()).await.unwrap();
    for _ in 0..200 {
        let channel = connection.create_channel().await.unwrap();
        let found = channel.queue_declare(queue.into(), QueueDeclareOptions { passive: true, ..Default::default() }, FieldTable::default()).await;
        if let Ok(q) = found {
            if q.consumer_count() > 0 {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the platform never consumed from {queue}");
}

/// (ready messages, consumers) of a queue; None when it does not exist.
pub async fn queue_counts(queue: &str) -> Option<(u32, u32)> {
    let connection = Connection::connect(AMQP_URL, ConnectionProperties::default()).await.expect("RabbitMQ");
    let channel = connection.create_channel().await.unwrap();
    let passive = QueueDeclareOptions { passive: true, ..Default::default() };
    let found = channel.queue_declare(queue.into(), passive, FieldTable::default()).await.ok();
    let _ = connection.close(200, "done".into()).await;
    found.map(|q| (q.message_count(), q.consumer_count()))
}

/// Waits until a queue holds `count` ready messages; panics with what it holds after a minute.
pub async fn wait_for_messages(queue: &str, count: u32) {
    let start = std::time::Instant::now();
    loop {
        let counts = queue_counts(queue).await;
        if counts.is_some_and(|(messages, _)| messages == count) {
            return;
        }
        assert!(start.elapsed() < Duration::from_secs(60), "{queue} never held {count} messages: {counts:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Takes the next message of a queue: its body as text.
pub async fn take_message(queue: &str) -> Option<String> {
    let connection = Connection::connect(AMQP_URL, ConnectionProperties::default()).await.expect("RabbitMQ");
    let channel = connection.create_channel().await.unwrap();
    let message = channel.basic_get(queue.into(), BasicGetOptions { no_ack: true }).await.unwrap();
    let _ = connection.close(200, "done".into()).await;
    message.map(|m| String::from_utf8_lossy(&m.delivery.data).to_string())
}

/// Removes the durable queues and exchanges that earlier test processes left on the broker
/// (the platform's consumers re-declare theirs while a test runs, so tests cannot clean up
/// after themselves). Objects of the running process are kept.
pub async fn sweep_earlier_test_objects() {
    static SWEPT: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();
    SWEPT.get_or_init(sweep).await;
}

async fn sweep() {
    let own = format!("p{}-", std::process::id());
    let list = |what: &str| {
        let out = std::process::Command::new("rabbitmqctl").args(["-q", what, "name"]).output();
        out.map(|o| String::from_utf8_lossy(&o.stdout).lines().map(str::trim).map(str::to_string).collect::<Vec<_>>())
            .unwrap_or_default()
    };
    let stale = |name: &String| name.contains(TEST_PREFIX) && !name.contains(&own) && name.contains("-p");
    let connection = Connection::connect(AMQP_URL, ConnectionProperties::default()).await.expect("RabbitMQ");
    let channel = connection.create_channel().await.unwrap();
    for queue in list("list_queues").iter().filter(|n| stale(n)) {
        let _ = channel.queue_delete(queue.as_str().into(), QueueDeleteOptions::default()).await;
    }
    for exchange in list("list_exchanges").iter().filter(|n| stale(n)) {
        let _ = channel.exchange_delete(exchange.as_str().into(), ExchangeDeleteOptions::default()).await;
    }
}
