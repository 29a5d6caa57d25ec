//! Event triggers: vCD's JSON notifications from the topic exchange `<prefix>.notifications20`.
//! The events queue is bound only to the routing keys that current triggers need; bindings no
//! longer needed are removed (the keys bound are remembered in the database, since the broker
//! cannot list them over AMQP). Notifications are provider-wide, so each one runs only the
//! functions of the tenant whose vCD org it names. Runs go through the durable async queue,
//! under an id made from the event's id, so a redelivered notification runs nothing twice.

use super::amqp_util::header_text;
use crate::amqp::{self as broker, LinkState};
use super::messages::{binding_key, Notification};
use crate::calls::dispatch::Dispatcher;
use crate::config::VcdConfig;
use crate::store::Store;
use app::model::Trigger;
use futures_util::StreamExt;
use lapin::options::*;
use lapin::types::FieldTable;
use lapin::{Channel, Connection, ExchangeKind};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

pub struct Events {
    dispatcher: Dispatcher,
    store: Store,
    settings: VcdConfig,
    pub link: Arc<LinkState>,
}

impl Events {
    pub fn start(dispatcher: Dispatcher, store: Store, settings: VcdConfig, url: String) -> Arc<Events> {
        let events = Arc::new(Events { dispatcher, store, settings, link: Arc::default() });
        let consumer = events.clone();
        broker::supervise(url, "vcd-faas events", events.link.clone(), move |connection| {
            let consumer = consumer.clone();
            async move { consumer.session(connection).await }
        });
        events
    }

    fn exchange(&self) -> String {
        format!("{}.notifications20", self.settings.vcd_amqp_prefix)
    }

    fn bindings_setting(&self) -> String {
        format!("vcd_event_bindings:{}", self.settings.vcd_events_queue)
    }

    async fn session(self: Arc<Self>, connection: Connection) -> Result<(), String> {
        let queue = self.settings.vcd_events_queue.as_str();
        // Functions changed: their event triggers may need other bindings.
        let mut triggers_changed = self.dispatcher.directory().subscribe();
        let channel = connection.create_channel().await.map_err(broker::step("open a channel"))?;
        // vCD declares this exchange; declaring it the same way lets the platform start first.
        let durable = ExchangeDeclareOptions { durable: true, ..Default::default() };
        channel
            .exchange_declare(self.exchange().as_str().into(), ExchangeKind::Topic, durable, FieldTable::default())
            .await
            .map_err(broker::step("declare the notifications exchange"))?;
        channel
            .queue_declare(queue.into(), QueueDeclareOptions { durable: true, ..Default::default() }, FieldTable::default())
            .await
            .map_err(broker::step("declare the events queue"))?;
        self.sync_bindings(&channel).await?;
        channel.basic_qos(16, BasicQosOptions::default()).await.map_err(broker::step("set prefetch"))?;
        let mut consumer = channel
            .basic_consume(queue.into(), "".into(), BasicConsumeOptions::default(), FieldTable::default())
            .await
            .map_err(broker::step("consume notifications"))?;
        tracing::info!(queue, exchange = self.exchange(), "taking vCD notifications");
        loop {
            tokio::select! {
                delivery = consumer.next() => {
                    let Some(delivery) = delivery else { return Err("the events consumer ended".into()) };
                    let delivery = delivery.map_err(broker::step("receive"))?;
                    self.handle(delivery).await;
                }
                _ = triggers_changed.changed() => self.sync_bindings(&channel).await?,
            }
        }
    }

    /// Binds the keys that current triggers need and unbinds those bound before and no longer needed.
    async fn sync_bindings(&self, channel: &Channel) -> Result<(), String> {
        let functions = self.store.event_functions(None).await.map_err(|e| format!("database: {e}"))?;
        let wanted: BTreeSet<String> = functions
            .iter()
            .filter_map(|f| match &f.trigger {
                Trigger::VcdEvent { event, successful_only } => Some(binding_key(event, *successful_only)),
                Trigger::Http | Trigger::Schedule { .. } => None,
            })
            .collect();
        let key = self.bindings_setting();
        let bound: BTreeSet<String> = match self.store.setting(&key).await {
            Ok(Some(json)) => serde_json::from_str(&json).unwrap_or_default(),
            Ok(None) => BTreeSet::new(),
            Err(e) => return Err(format!("database: {e}")),
        };
        let (queue, exchange) = (self.settings.vcd_events_queue.as_str(), self.exchange());
        for routing_key in wanted.difference(&bound).chain(wanted.intersection(&bound)) {
            // Binding is idempotent; binding kept keys again heals a queue that was recreated.
            channel
                .queue_bind(queue.into(), exchange.as_str().into(), routing_key.as_str().into(), QueueBindOptions::default(), FieldTable::default())
                .await
                .map_err(broker::step("bind the events queue"))?;
        }
        for routing_key in bound.difference(&wanted) {
            channel
                .queue_unbind(queue.into(), exchange.as_str().into(), routing_key.as_str().into(), FieldTable::default())
                .await
                .map_err(broker::step("unbind the events queue"))?;
        }
        if wanted != bound {
            let json = serde_json::to_string(&wanted).expect("json");
            self.store.set_setting(&key, &json).await.map_err(|e| format!("database: {e}"))?;
            tracing::info!(bindings = ?wanted, "event bindings updated");
        }
        Ok(())
    }

    async fn handle(&self, delivery: lapin::message::Delivery) {
        let notification: Notification = match serde_json::from_slice(&delivery.data) {
            Ok(n) => n,
            Err(e) => {
                tracing::warn!(error = %e, routing_key = %delivery.routing_key, "unreadable vCD notification dropped");
                let _ = delivery.reject(BasicRejectOptions { requeue: false }).await;
                return;
            }
        };
        let org = if notification.org.is_empty() {
            header_text(&delivery.properties, "notification.orgUUID").unwrap_or_default()
        } else {
            notification.org.clone()
        };
        match super::event_runs::queue_runs(&self.dispatcher, &self.store, &notification, &org, &delivery.data).await {
            Ok(queued) => {
                if queued > 0 {
                    tracing::info!(event = notification.kind, org, queued, "vCD event queued for its functions");
                }
                let _ = delivery.ack(BasicAckOptions::default()).await;
            }
            Err(e) => {
                // The database is away: try again shortly rather than lose the event.
                tracing::error!(error = e, "cannot queue a vCD event; it will be redelivered");
                tokio::time::sleep(Duration::from_secs(1)).await;
                let _ = delivery.nack(BasicNackOptions { requeue: true, ..Default::default() }).await;
            }
        }
    }
}
