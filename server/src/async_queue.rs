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
use crate::async_calls::{AsyncCalls, Outcome};
use crate::store::{FunctionRow, Store};
use futures_util::StreamExt;
use lapin::message::Delivery;
use lapin::options::*;
use lapin::Confirmation;
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Connection};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinSet;

/// Longest wait for the broker's confirmation before an accepted call is left to the sweeper.
const PUBLISH_WAIT: Duration = Duration::from_secs(5);
/// Pause between two passes of the sweeper.
const SWEEP_EVERY: Duration = Duration::from_secs(2);
/// Pause between two looks at the functions, besides the change notices.
const RESYNC_EVERY: Duration = Duration::from_secs(30);

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
async fn declare_function_queue(channel: &Channel, names: &QueueNames, queue: &str) -> Result<(), String> {
    let (exchange, dead_exchange, dead_queue) = (names.exchange(), names.dead_letter_exchange(), QueueNames::dead_letter_queue(queue));
    // The function's queue name is also its routing key.
    let topology = broker::DurableQueue { exchange: &exchange, routing_key: queue, queue, dead_exchange: &dead_exchange, dead_queue: &dead_queue };
    broker::declare_with_dead_letters(channel, &topology).await
}

/// RabbitMQ's side of the asynchronous calls: where they are published, and the link state.
pub struct BrokerQueue {
    url: String,
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
    async fn publish_and_record(&self, store: &Store, id: &str, org: &str, function: &str, attempts: i64) -> Result<(), String> {
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

/// Starts the consumers (kept up across reconnects) and the sweeper.
pub fn start(calls: Arc<AsyncCalls>, changes: watch::Receiver<u64>) {
    let queue = calls.broker.as_ref().expect("a broker queue");
    let consumers = calls.clone();
    broker::supervise(queue.url.clone(), "vcd-faas async calls", queue.link.clone(), move |connection| {
        let (calls, changes) = (consumers.clone(), changes.clone());
        async move {
            let ended = session(&calls, &connection, changes).await;
            // Nothing may keep consuming on a connection the session gave up on.
            let _ = connection.close(200, "reconnecting".into()).await;
            ended
        }
    });
    tokio::spawn(sweep(calls));
}

/// Publishes, every few seconds, the queued calls the broker did not confirm in time and the
/// retries that are due. A call published twice runs once: the second message finds it claimed.
async fn sweep(calls: Arc<AsyncCalls>) {
    let queue = calls.broker.as_ref().expect("a broker queue");
    loop {
        tokio::time::sleep(SWEEP_EVERY).await;
        // A call accepted less than a publish wait ago (and a pass to spare for recording it)
        // is still its request's to publish.
        let accepted_before = crate::store::now_ms() - (PUBLISH_WAIT + SWEEP_EVERY).as_millis() as i64;
        let unpublished = match calls.store.unpublished_calls(accepted_before, 100).await {
            Ok(rows) => rows,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read unpublished async calls");
                continue;
            }
        };
        for (id, org, function, attempts) in unpublished {
            match queue.publish_and_record(&calls.store, &id, &org, &function, attempts).await {
                Ok(()) => tracing::info!(invocation = id, "async call published by the sweeper"),
                Err(_) => break, // still away; the next pass tries again
            }
        }
    }
}

/// A running consumer of one function's queue.
struct Consumer {
    function_id: i64,
    prefetch: u16,
    stop: oneshot::Sender<()>,
}

/// Consumes every function's queue on one connection, following changes to functions, until
/// a consumer fails.
async fn session(calls: &Arc<AsyncCalls>, connection: &Connection, mut changes: watch::Receiver<u64>) -> Result<(), String> {
    let mut consumers: HashMap<String, Consumer> = HashMap::new();
    let mut running = JoinSet::new();
    changes.mark_unchanged();
    loop {
        sync_consumers(calls, connection, &mut consumers, &mut running).await?;
        tokio::select! {
            _ = changes.changed() => {}
            _ = tokio::time::sleep(RESYNC_EVERY) => {}
            Some(ended) = running.join_next() => match ended {
                Ok(Ok(())) => {} // stopped on purpose
                Ok(Err(e)) => return Err(e),
                Err(e) => return Err(format!("a consumer task ended: {e}")),
            },
        }
    }
}

/// Calls of a function running at once: its instances times the calls each takes.
fn prefetch_of(f: &FunctionRow) -> u16 {
    (f.max_instances.max(1) * f.concurrency.max(1)).clamp(1, u16::MAX as i64) as u16
}

/// Starts consumers for functions that have a ready version, restarts those whose capacity
/// changed, and stops those of deleted functions (deleting their queues).
async fn sync_consumers(
    calls: &Arc<AsyncCalls>,
    connection: &Connection,
    consumers: &mut HashMap<String, Consumer>,
    running: &mut JoinSet<Result<(), String>>,
) -> Result<(), String> {
    let names = &calls.broker.as_ref().expect("a broker queue").names;
    let functions = match calls.store.list_functions(None).await {
        Ok(functions) => functions,
        Err(e) => {
            tracing::warn!(error = %e, "cannot list functions for the async consumers");
            return Ok(());
        }
    };
    let wanted: HashMap<String, (i64, u16)> = functions
        .iter()
        .filter(|f| f.status != "deleting" && f.current_version.is_some())
        .map(|f| (names.queue(&f.org, &f.name), (f.id, prefetch_of(f))))
        .collect();
    let outdated: Vec<String> =
        consumers.iter().filter(|(queue, c)| wanted.get(*queue).map(|w| w.1) != Some(c.prefetch)).map(|(q, _)| q.clone()).collect();
    for queue in outdated {
        let consumer = consumers.remove(&queue).expect("listed above");
        let _ = consumer.stop.send(());
        if !wanted.contains_key(&queue) {
            delete_function_queues(calls, connection, &queue, consumer.function_id).await?;
        }
    }
    for (queue, (function_id, prefetch)) in wanted {
        if consumers.contains_key(&queue) {
            continue;
        }
        let channel = connection.create_channel().await.map_err(broker::step("open a consumer channel"))?;
        declare_function_queue(&channel, names, &queue).await?;
        channel.basic_qos(prefetch, BasicQosOptions::default()).await.map_err(broker::step("set prefetch"))?;
        let deliveries = channel
            .basic_consume(queue.as_str().into(), "".into(), BasicConsumeOptions::default(), FieldTable::default())
            .await
            .map_err(broker::step("consume a function's queue"))?;
        let (stop, stopped) = oneshot::channel();
        running.spawn(consume(calls.clone(), channel, deliveries, stopped));
        tracing::info!(queue, prefetch, "consuming async calls");
        consumers.insert(queue, Consumer { function_id, prefetch, stop });
    }
    Ok(())
}

async fn delete_function_queues(calls: &AsyncCalls, connection: &Connection, queue: &str, function_id: i64) -> Result<(), String> {
    let channel = connection.create_channel().await.map_err(broker::step("open a channel"))?;
    for name in [queue.to_string(), QueueNames::dead_letter_queue(queue)] {
        channel
            .queue_delete(name.as_str().into(), QueueDeleteOptions::default())
            .await
            .map_err(broker::step("delete a deleted function's queue"))?;
    }
    let _ = channel.close(200, "done".into()).await;
    match calls.store.fail_queued_of_function(function_id).await {
        Ok(failed) => tracing::info!(queue, failed, "queue of a deleted function removed"),
        Err(e) => tracing::warn!(queue, error = %e, "cannot fail the queued calls of a deleted function"),
    }
    Ok(())
}

/// Hands each delivery to its own task (prefetch bounds how many) until stopped or failed.
async fn consume(calls: Arc<AsyncCalls>, channel: Channel, mut deliveries: lapin::Consumer, mut stop: oneshot::Receiver<()>) -> Result<(), String> {
    loop {
        tokio::select! {
            _ = &mut stop => {
                // Unsettled messages go back to the queue; their calls, still running here,
                // are skipped by whoever receives them.
                let _ = channel.close(200, "consumer stopped".into()).await;
                return Ok(());
            }
            delivery = deliveries.next() => {
                let Some(delivery) = delivery else { return Err("the broker cancelled an async consumer".into()) };
                let delivery = delivery.map_err(broker::step("receive an async call"))?;
                tokio::spawn(handle(calls.clone(), delivery));
            }
        }
    }
}

/// Runs the call a message names, stores the outcome, then settles the message.
async fn handle(calls: Arc<AsyncCalls>, delivery: Delivery) {
    let Ok(id) = String::from_utf8(delivery.data.clone()) else {
        tracing::warn!("async call message without a readable invocation id; dead-lettered");
        let _ = delivery.reject(BasicRejectOptions { requeue: false }).await;
        return;
    };
    let claimed = match calls.store.claim_invocation(&id).await {
        Ok(claimed) => claimed,
        Err(e) => {
            // The database is away: try again shortly rather than lose the call.
            tracing::error!(invocation = id, error = %e, "cannot claim an async call; it will be redelivered");
            tokio::time::sleep(Duration::from_secs(1)).await;
            let _ = delivery.nack(BasicNackOptions { requeue: true, ..Default::default() }).await;
            return;
        }
    };
    let Some((function_id, request, attempt)) = claimed else {
        // Done, running or unknown: a redelivery or a duplicate.
        let _ = delivery.ack(BasicAckOptions::default()).await;
        return;
    };
    let outcome = calls.run_and_store(&id, function_id, &request, attempt).await;
    let settled = match outcome {
        Outcome::DeadLetter => delivery.reject(BasicRejectOptions { requeue: false }).await,
        Outcome::Done | Outcome::Retry | Outcome::Failed | Outcome::Unrecorded => delivery.ack(BasicAckOptions::default()).await,
    };
    if let Err(e) = settled {
        // Redelivered, the message finds its call settled (or a retry not yet due) and is skipped.
        tracing::warn!(invocation = id, error = %e, ?outcome, "cannot settle an async call's message");
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
