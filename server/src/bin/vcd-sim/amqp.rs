//! The sim's side of the broker, as a vCD cell would have it: one reply exchange (direct, durable),
//! this cell's own reply queue bound to it, the notifications exchange, and publishing with checks
//! so a missing extension exchange becomes a clear error instead of a silent drop.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, ConfirmSelectOptions, ExchangeDeclareOptions,
    QueueBindOptions, QueueDeclareOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties, ExchangeKind};
use tokio::sync::oneshot;
use uuid::Uuid;

#[derive(Clone)]
pub struct Amqp {
    inner: Arc<Inner>,
}

struct Inner {
    url: String,
    reply_exchange: String,
    notifications_exchange: String,
    /// The routing key (and queue name) of this cell's reply queue: what `reply_to` says.
    reply_key: String,
    conn: Mutex<Option<Arc<Connection>>>,
    /// Front-door requests waiting for their reply, by correlation id.
    pending: Mutex<HashMap<String, oneshot::Sender<Vec<u8>>>>,
}

/// Why a message could not be handed to the broker.
#[derive(Debug)]
pub enum PublishError {
    /// Not connected (yet): the front door answers 503.
    NoBroker,
    /// The target exchange does not exist (vCD cannot deliver either): 502.
    NoExchange(String),
    /// The exchange exists but no queue is bound with the routing key: 502.
    Unroutable { exchange: String, routing_key: String },
    Other(String),
}

impl std::fmt::Display for PublishError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PublishError::NoBroker => write!(f, "vcd-sim is not connected to the AMQP broker (yet)"),
            PublishError::NoExchange(x) => write!(f, "the AMQP exchange '{x}' does not exist on the broker"),
            PublishError::Unroutable { exchange, routing_key } => {
                write!(f, "no queue is bound to the AMQP exchange '{exchange}' with routing key '{routing_key}'")
            }
            PublishError::Other(e) => write!(f, "AMQP error: {e}"),
        }
    }
}

impl Amqp {
    pub fn new(url: String, reply_exchange: String, prefix: &str) -> Self {
        Amqp {
            inner: Arc::new(Inner {
                url,
                reply_exchange,
                notifications_exchange: format!("{prefix}.notifications20"),
                reply_key: format!("vcd-sim.cell.{}", Uuid::new_v4().simple()),
                conn: Mutex::new(None),
                pending: Mutex::new(HashMap::new()),
            }),
        }
    }

    pub fn reply_key(&self) -> &str {
        &self.inner.reply_key
    }

    pub fn reply_exchange(&self) -> &str {
        &self.inner.reply_exchange
    }

    pub fn notifications_exchange(&self) -> &str {
        &self.inner.notifications_exchange
    }

    pub fn connected(&self) -> bool {
        self.connection().is_some_and(|c| c.status().connected())
    }

    fn connection(&self) -> Option<Arc<Connection>> {
        self.inner.conn.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn set_connection(&self, conn: Option<Arc<Connection>>) {
        *self.inner.conn.lock().unwrap_or_else(|e| e.into_inner()) = conn;
    }

    fn pending(&self) -> std::sync::MutexGuard<'_, HashMap<String, oneshot::Sender<Vec<u8>>>> {
        self.inner.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Keeps a connection up for the life of the process: connect with back-off, set up the
    /// topology, consume replies until the connection drops, then start again. The REST side
    /// works meanwhile.
    pub fn spawn(&self) {
        let amqp = self.clone();
        tokio::spawn(async move {
            let mut backoff = Duration::from_millis(500);
            loop {
                match amqp.connect_and_consume().await {
                    Ok(()) => {
                        tracing::warn!("AMQP connection lost; reconnecting");
                        backoff = Duration::from_millis(500);
                    }
                    Err(e) => tracing::warn!("AMQP broker not available ({e}); retrying in {backoff:?}"),
                }
                amqp.set_connection(None);
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(15));
            }
        });
    }

    async fn connect_and_consume(&self) -> Result<(), lapin::Error> {
        let conn = Arc::new(Connection::connect(&self.inner.url, ConnectionProperties::default()).await?);
        let channel = conn.create_channel().await?;
        let durable = ExchangeDeclareOptions { durable: true, ..Default::default() };
        channel
            .exchange_declare(self.inner.notifications_exchange.as_str().into(), ExchangeKind::Topic, durable, FieldTable::default())
            .await?;
        channel
            .exchange_declare(self.inner.reply_exchange.as_str().into(), ExchangeKind::Direct, durable, FieldTable::default())
            .await?;
        let queue_opts = QueueDeclareOptions { exclusive: true, auto_delete: true, ..Default::default() };
        channel.queue_declare(self.inner.reply_key.as_str().into(), queue_opts, FieldTable::default()).await?;
        channel
            .queue_bind(
                self.inner.reply_key.as_str().into(),
                self.inner.reply_exchange.as_str().into(),
                self.inner.reply_key.as_str().into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await?;
        let mut consumer = channel
            .basic_consume(self.inner.reply_key.as_str().into(), "vcd-sim-replies".into(), BasicConsumeOptions::default(), FieldTable::default())
            .await?;
        tracing::info!(
            reply_exchange = %self.inner.reply_exchange,
            reply_key = %self.inner.reply_key,
            notifications = %self.inner.notifications_exchange,
            "connected to the AMQP broker"
        );
        self.set_connection(Some(conn.clone()));
        while let Some(delivery) = consumer.next().await {
            let delivery = match delivery {
                Ok(d) => d,
                Err(e) => {
                    tracing::warn!("reply consumer failed: {e}");
                    break;
                }
            };
            let _ = delivery.ack(BasicAckOptions::default()).await;
            let correlation = delivery.properties.correlation_id().as_ref().map(|c| c.to_string());
            let waiter = correlation.as_ref().and_then(|c| self.pending().remove(c));
            match waiter {
                Some(tx) => {
                    let _ = tx.send(delivery.data);
                }
                None => tracing::warn!(
                    correlation_id = ?correlation,
                    "dropping a reply for an unknown or timed-out request (late reply?)"
                ),
            }
        }
        Ok(())
    }

    /// A fresh channel per publication: a failed passive declare closes its channel, and this
    /// keeps one failure from affecting other requests.
    async fn channel(&self) -> Result<Channel, PublishError> {
        let conn = self.connection().ok_or(PublishError::NoBroker)?;
        conn.create_channel().await.map_err(|_| PublishError::NoBroker)
    }

    async fn publish_checked(
        &self,
        exchange: &str,
        routing_key: &str,
        mandatory: bool,
        body: &[u8],
        props: BasicProperties,
    ) -> Result<(), PublishError> {
        let channel = self.channel().await?;
        let passive = ExchangeDeclareOptions { passive: true, ..Default::default() };
        // The kind is ignored by a passive declare.
        if channel.exchange_declare(exchange.into(), ExchangeKind::Direct, passive, FieldTable::default()).await.is_err() {
            return Err(PublishError::NoExchange(exchange.to_string()));
        }
        let other = |e: lapin::Error| PublishError::Other(e.to_string());
        channel.confirm_select(ConfirmSelectOptions::default()).await.map_err(other)?;
        let confirm = channel
            .basic_publish(exchange.into(), routing_key.into(), BasicPublishOptions { mandatory, ..Default::default() }, body, props)
            .await
            .map_err(other)?
            .await
            .map_err(other)?;
        let _ = channel.close(200, "done".into()).await;
        if confirm.take_message().is_some() {
            return Err(PublishError::Unroutable { exchange: exchange.to_string(), routing_key: routing_key.to_string() });
        }
        Ok(())
    }

    /// Publishes a front-door request and returns where its reply will arrive.
    pub async fn send_request(
        &self,
        exchange: &str,
        routing_key: &str,
        correlation_id: &str,
        body: &[u8],
        props: BasicProperties,
    ) -> Result<oneshot::Receiver<Vec<u8>>, PublishError> {
        let (tx, rx) = oneshot::channel();
        // Register before publishing: a fast extension may answer before publish returns.
        self.pending().insert(correlation_id.to_string(), tx);
        if let Err(e) = self.publish_checked(exchange, routing_key, true, body, props).await {
            self.forget(correlation_id);
            return Err(e);
        }
        Ok(rx)
    }

    /// Stops waiting for a reply (timeout); a reply arriving later is logged and dropped.
    pub fn forget(&self, correlation_id: &str) {
        self.pending().remove(correlation_id);
    }

    /// Publishes to the notifications topic exchange; nobody listening is fine, as in vCD.
    pub async fn publish_notification(&self, routing_key: &str, body: &[u8], props: BasicProperties) -> Result<(), PublishError> {
        let exchange = self.inner.notifications_exchange.clone();
        self.publish_checked(&exchange, routing_key, false, body, props).await
    }
}
