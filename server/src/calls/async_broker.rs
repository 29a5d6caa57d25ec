//! RabbitMQ as the queue of asynchronous calls (when AMQP_URL is set). The database stays the
//! record users read; messages carry only invocation ids.
//!
//! - Accept: the call is stored `queued`, then its id is published (persistent, confirmed) to
//!   the function's durable queue `<prefix>.async.<tenant>.<function>`. A call the broker did
//!   not confirm keeps `published = 0`, and the sweeper publishes it once the broker is back.
//! - Consume: one consumer per function with a ready version, prefetch = its capacity
//!   (`max_instances` × `concurrency`).
//!   A message claims its call (queued → running); a call already done or running is only
//!   acknowledged, so a redelivery or a duplicate never runs a call twice. The message is
//!   settled after the outcome is stored: acknowledged, or rejected into `<queue>.dead-letter`
//!   after `MAX_ATTEMPTS`. A 5xx with attempts left is stored queued, unpublished and due after
//!   its back-off; its message is acknowledged and the sweeper publishes it again when it is due
//!   (the database keeps the wait, so a restart neither loses nor hurries it).
//! - A deleted function: its consumer stops, its queues go, its queued calls fail.

use crate::amqp::{self as broker, LinkState};
use crate::store::Store;
use lapin::options::*;
use lapin::Confirmation;
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Connection};
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

/// Longest wait for the broker's confirmation before an accepted call is left to the sweeper.
pub(crate) const PUBLISH_WAIT: Duration = Duration::from_secs(5);

/// Names of the broker objects, all under one prefix.
#[derive(Clone, Debug)]
pub struct QueueNames {
    prefix: String,
}

impl QueueNames {
    pub fn new(prefix: &str) -> QueueNames {
        QueueNames { prefix: prefix.to_string() }
    }

    /// The direct exchange every call is published to, routed by queue name.
    pub fn exchange(&self) -> String {
        format!("{}.async", self.prefix)
    }

    pub fn dead_letter_exchange(&self) -> String {
        format!("{}.async.dead-letter", self.prefix)
    }

    pub fn queue(&self, org: &str, function: &str) -> String {
        format!("{}.async.{org}.{function}", self.prefix)
    }

    pub fn dead_letter_queue(queue: &str) -> String {
        format!("{queue}.dead-letter")
    }
}

/// Declares a function's queue and its dead-letter queue, with their bindings (idempotent).
pub(crate) async fn declare_function_queue(channel: &Channel, names: &QueueNames, queue: &str) -> Result<(), String> {
    let (exchange, dead_exchange, dead_queue) = (names.exchange(), names.dead_letter_exchange(), QueueNames::dead_letter_queue(queue));
    // The function's queue name is also its routing key.
    let topology = broker::DurableQueue { exchange: &exchange, routing_key: queue, queue, dead_exchange: &dead_exchange, dead_queue: &dead_queue };
    broker::declare_with_dead_letters(channel, &topology).await
}

/// RabbitMQ's side of the asynchronous calls: where they are published, and the link state.
pub struct BrokerQueue {
    pub(crate) url: String,
    pub names: QueueNames,
    publisher: Publisher,
    /// The consumers' link, for whoever shows it.
    pub link: Arc<LinkState>,
}

impl BrokerQueue {
    pub fn new(url: String, prefix: &str) -> BrokerQueue {
        let names = QueueNames::new(prefix);
        let publisher = Publisher { url: url.clone(), names: names.clone(), link: tokio::sync::Mutex::new(None) };
        BrokerQueue { url, names, publisher, link: Arc::default() }
    }

    /// Publishes an accepted call. The call is stored already: when the broker does not
    /// confirm in time, it is the sweeper's.
    pub async fn publish_accepted(&self, store: &Store, id: &str, org: &str, function: &str) {
        if let Err(e) = self.publish_and_record(store, id, org, function, 0).await {
            tracing::warn!(invocation = id, error = e, "async call stored but not yet on the broker; the sweeper will publish it");
        }
    }

    /// Publishes the call's next attempt, after `attempts` made, and records that it went.
    pub(crate) async fn publish_and_record(&self, store: &Store, id: &str, org: &str, function: &str, attempts: i64) -> Result<(), String> {
        let queue = self.names.queue(org, function);
        tokio::time::timeout(PUBLISH_WAIT, self.publisher.publish(id, &queue))
            .await
            .map_err(|_| "the broker did not confirm in time".to_string())??;
        store.set_published(id, attempts).await.map_err(|e| format!("database: {e}"))
    }
}

impl BrokerQueue {
    /// Calls waiting on the broker, per function: (org, function, ready messages). Functions
    /// without a queue are left out; nothing when the broker does not answer at once.
    pub async fn depths(&self, functions: &[(String, String)]) -> Vec<(String, String, u32)> {
        let read = async {
            let connection = broker::connect(&self.url, "vcd-faas metrics").await?;
            let mut depths = Vec::new();
            for (org, function) in functions {
                // A passive declare of a missing queue closes its channel: one channel each.
                let channel = connection.create_channel().await.map_err(broker::step("open a channel"))?;
                let passive = QueueDeclareOptions { passive: true, ..Default::default() };
                let queue = self.names.queue(org, function);
                if let Ok(found) = channel.queue_declare(queue.as_str().into(), passive, FieldTable::default()).await {
                    depths.push((org.clone(), function.clone(), found.message_count()));
                    let _ = channel.close(200, "done".into()).await;
                }
            }
            let _ = connection.close(200, "done".into()).await;
            Ok::<_, String>(depths)
        };
        match tokio::time::timeout(Duration::from_secs(2), read).await {
            Ok(Ok(depths)) => depths,
            Ok(Err(e)) => {
                tracing::warn!(error = e, "cannot read the async queue depths");
                Vec::new()
            }
            Err(_) => Vec::new(),
        }
    }
}

/// One connection and confirming channel for publishing, opened when first needed and
/// opened again after a failure.
struct Publisher {
    url: String,
    names: QueueNames,
    link: tokio::sync::Mutex<Option<PublishLink>>,
}

struct PublishLink {
    connection: Connection,
    channel: Channel,
    /// Queues declared on this connection.
    declared: HashSet<String>,
}

impl Publisher {
    async fn publish(&self, id: &str, queue: &str) -> Result<(), String> {
        let mut slot = self.link.lock().await;
        if slot.is_none() {
            *slot = Some(self.open().await?);
        }
        let link = slot.as_mut().expect("opened above");
        let published = link.publish(&self.names, id, queue).await;
        if published.is_err() {
            if let Some(broken) = slot.take() {
                let _ = tokio::time::timeout(Duration::from_secs(1), broken.connection.close(200, "reopening".into())).await;
            }
        }
        published
    }

    async fn open(&self) -> Result<PublishLink, String> {
        let connection = broker::connect(&self.url, "vcd-faas async publisher").await?;
        let channel = connection.create_channel().await.map_err(broker::step("open the publishing channel"))?;
        channel.confirm_select(ConfirmSelectOptions::default()).await.map_err(broker::step("enable publisher confirms"))?;
        Ok(PublishLink { connection, channel, declared: HashSet::new() })
    }
}

impl PublishLink {
    async fn publish(&mut self, names: &QueueNames, id: &str, queue: &str) -> Result<(), String> {
        if !self.declared.contains(queue) {
            declare_function_queue(&self.channel, names, queue).await?;
            self.declared.insert(queue.to_string());
        }
        let persistent = BasicProperties::default().with_delivery_mode(2).with_content_type("text/plain".into());
        // Mandatory: a queue deleted since it was declared returns the message instead of dropping it.
        let mandatory = BasicPublishOptions { mandatory: true, ..Default::default() };
        let confirmation = self
            .channel
            .basic_publish(names.exchange().as_str().into(), queue.into(), mandatory, id.as_bytes(), persistent)
            .await
            .map_err(broker::step("publish an async call"))?
            .await
            .map_err(broker::step("confirm an async call"))?;
        match confirmation {
            Confirmation::Ack(None) => Ok(()),
            Confirmation::Ack(Some(_)) => Err(format!("no queue {queue} took the call")),
            _ => Err("the broker refused the call".into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_share_the_prefix() {
        let names = QueueNames::new("vcd-faas");
        assert_eq!(names.exchange(), "vcd-faas.async");
        assert_eq!(names.queue("acme", "hello"), "vcd-faas.async.acme.hello");
        assert_eq!(QueueNames::dead_letter_queue(&names.queue("acme", "hello")), "vcd-faas.async.acme.hello.dead-letter");
    }
}
