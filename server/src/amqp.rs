//! Links to RabbitMQ, kept up, for every consumer (vCD API calls and events, asynchronous
//! calls): a session runs on a fresh connection and, when the broker goes away, runs again on
//! the next one, after a growing pause. Messages left unacknowledged by a lost connection are
//! redelivered by the broker; consumers deduplicate.

use lapin::types::{AMQPValue, FieldTable};
use lapin::{Connection, ConnectionProperties};
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const FIRST_PAUSE: Duration = Duration::from_millis(250);
const LONGEST_PAUSE: Duration = Duration::from_secs(15);

/// What the portal and `/metrics` show about one consumer's link to the broker.
#[derive(Default)]
pub struct LinkState {
    connected: AtomicBool,
    last_error: Mutex<Option<String>>,
}

impl LinkState {
    pub fn connected(&self) -> bool {
        self.connected.load(Ordering::Relaxed)
    }

    pub fn last_error(&self) -> Option<String> {
        self.last_error.lock().unwrap().clone()
    }

    /// Connected now (any earlier error is over).
    pub fn mark_up(&self) {
        self.connected.store(true, Ordering::Relaxed);
        *self.last_error.lock().unwrap() = None;
    }

    /// Not connected, for this reason.
    pub fn mark_down(&self, error: &str) {
        self.connected.store(false, Ordering::Relaxed);
        *self.last_error.lock().unwrap() = Some(error.to_string());
    }
}

pub async fn connect(url: &str, name: &str) -> Result<Connection, String> {
    let properties = ConnectionProperties::default().with_connection_name(name.into());
    Connection::connect(url, properties).await.map_err(|e| format!("cannot connect to RabbitMQ: {e}"))
}

/// Runs `session` for as long as the process lives, reconnecting after every failure.
/// A session returns only when its connection or channel failed.
pub fn supervise<F, Fut>(url: String, name: &'static str, state: Arc<LinkState>, mut session: F)
where
    F: FnMut(Connection) -> Fut + Send + 'static,
    Fut: Future<Output = Result<(), String>> + Send,
{
    tokio::spawn(async move {
        let mut pause = FIRST_PAUSE;
        loop {
            match connect(&url, name).await {
                Ok(connection) => {
                    tracing::info!(consumer = name, "connected to RabbitMQ");
                    state.mark_up();
                    pause = FIRST_PAUSE;
                    let error = match session(connection).await {
                        Ok(()) => "the consumer was cancelled by the broker".to_string(),
                        Err(e) => e,
                    };
                    state.mark_down(&error);
                    tracing::warn!(consumer = name, error, "lost RabbitMQ; reconnecting");
                }
                Err(e) => {
                    tracing::warn!(consumer = name, error = e, retry_in_ms = pause.as_millis() as u64, "RabbitMQ unreachable");
                    *state.last_error.lock().unwrap() = Some(e);
                }
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(LONGEST_PAUSE);
        }
    });
}

/// lapin's errors as text, saying which step failed.
pub fn step(what: &'static str) -> impl Fn(lapin::Error) -> String {
    move |e| format!("{what}: {e}")
}

/// A durable queue bound to a durable direct exchange; messages it rejects go, with their
/// routing key, through `dead_exchange` into the durable `dead_queue`.
pub struct DurableQueue<'a> {
    pub exchange: &'a str,
    pub routing_key: &'a str,
    pub queue: &'a str,
    pub dead_exchange: &'a str,
    pub dead_queue: &'a str,
}

/// Declares the queue, its exchange and its dead letters, with their bindings (idempotent).
pub async fn declare_with_dead_letters(channel: &lapin::Channel, q: &DurableQueue<'_>) -> Result<(), String> {
    use lapin::options::{ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions};
    let durable = ExchangeDeclareOptions { durable: true, ..Default::default() };
    let durable_queue = QueueDeclareOptions { durable: true, ..Default::default() };
    for exchange in [q.exchange, q.dead_exchange] {
        channel
            .exchange_declare(exchange.into(), lapin::ExchangeKind::Direct, durable, FieldTable::default())
            .await
            .map_err(step("declare an exchange"))?;
    }
    channel.queue_declare(q.dead_queue.into(), durable_queue, FieldTable::default()).await.map_err(step("declare a dead-letter queue"))?;
    channel
        .queue_bind(q.dead_queue.into(), q.dead_exchange.into(), q.routing_key.into(), QueueBindOptions::default(), FieldTable::default())
        .await
        .map_err(step("bind a dead-letter queue"))?;
    channel
        .queue_declare(q.queue.into(), durable_queue, dead_letter_arguments(q.dead_exchange))
        .await
        .map_err(step("declare a queue"))?;
    channel
        .queue_bind(q.queue.into(), q.exchange.into(), q.routing_key.into(), QueueBindOptions::default(), FieldTable::default())
        .await
        .map_err(step("bind a queue"))?;
    Ok(())
}

/// Queue arguments that send rejected messages to `dead_letter_exchange`.
pub fn dead_letter_arguments(dead_letter_exchange: &str) -> FieldTable {
    let mut arguments = FieldTable::default();
    arguments.insert("x-dead-letter-exchange".into(), AMQPValue::LongString(dead_letter_exchange.into()));
    arguments
}
