//! The broker's side of running async calls: one consumer per function with a ready
//! version (prefetch = its capacity, `max_instances` × `concurrency`), kept in step with the
//! functions, and the sweeper that publishes what the broker did not confirm. A message claims
//! its call (queued → running), so a redelivery or a duplicate never runs a call twice; it is
//! settled after the outcome is stored.

use super::async_broker::{declare_function_queue, QueueNames, PUBLISH_WAIT};
use super::async_worker::{Outcome, Worker};
use crate::amqp as broker;
use crate::store::FunctionRow;
use futures_util::StreamExt;
use lapin::message::Delivery;
use lapin::options::*;
use lapin::types::FieldTable;
use lapin::{Channel, Connection};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinSet;

/// Pause between two passes of the sweeper.
const SWEEP_EVERY: Duration = Duration::from_secs(2);
/// Pause between two looks at the functions, besides the change notices.
const RESYNC_EVERY: Duration = Duration::from_secs(30);

/// Starts the consumers (kept up across reconnects) and the sweeper.
pub(crate) fn start(worker: Arc<Worker>, changes: watch::Receiver<u64>) {
    let queue = worker.queue.broker.as_ref().expect("a broker queue");
    let consumers = worker.clone();
    broker::supervise(queue.url.clone(), "vcd-faas async calls", queue.link.clone(), move |connection| {
        let (worker, changes) = (consumers.clone(), changes.clone());
        async move {
            let ended = session(&worker, &connection, changes).await;
            // Nothing may keep consuming on a connection the session gave up on.
            let _ = connection.close(200, "reconnecting".into()).await;
            ended
        }
    });
    tokio::spawn(sweep(worker));
}

/// Publishes, every few seconds, the queued calls the broker did not confirm in time and the
/// retries that are due. A call published twice runs once: the second message finds it claimed.
async fn sweep(worker: Arc<Worker>) {
    let queue = worker.queue.broker.as_ref().expect("a broker queue");
    loop {
        tokio::time::sleep(SWEEP_EVERY).await;
        // A call accepted less than a publish wait ago (and a pass to spare for recording it)
        // is still its request's to publish.
        let accepted_before = crate::store::now_ms() - (PUBLISH_WAIT + SWEEP_EVERY).as_millis() as i64;
        let unpublished = match worker.queue.store.unpublished_calls(accepted_before, 100).await {
            Ok(rows) => rows,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read unpublished async calls");
                continue;
            }
        };
        for (id, org, function, attempts) in unpublished {
            match queue.publish_and_record(&worker.queue.store, &id, &org, &function, attempts).await {
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
async fn session(worker: &Arc<Worker>, connection: &Connection, mut changes: watch::Receiver<u64>) -> Result<(), String> {
    let mut consumers: HashMap<String, Consumer> = HashMap::new();
    let mut running = JoinSet::new();
    changes.mark_unchanged();
    loop {
        sync_consumers(worker, connection, &mut consumers, &mut running).await?;
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
    worker: &Arc<Worker>,
    connection: &Connection,
    consumers: &mut HashMap<String, Consumer>,
    running: &mut JoinSet<Result<(), String>>,
) -> Result<(), String> {
    let names = &worker.queue.broker.as_ref().expect("a broker queue").names;
    let functions = match worker.queue.store.list_functions(None).await {
        Ok(functions) => functions,
        Err(e) => {
            tracing::warn!(error = %e, "cannot list functions for the async consumers");
            return Ok(());
        }
    };
    let wanted: HashMap<String, (i64, u16)> = functions
        .iter()
        .filter(|f| !f.is_deleting() && f.current_version.is_some())
        .map(|f| (names.queue(&f.org, &f.name), (f.id, prefetch_of(f))))
        .collect();
    let outdated: Vec<String> =
        consumers.iter().filter(|(queue, c)| wanted.get(*queue).map(|w| w.1) != Some(c.prefetch)).map(|(q, _)| q.clone()).collect();
    for queue in outdated {
        let consumer = consumers.remove(&queue).expect("listed above");
        let _ = consumer.stop.send(());
        if !wanted.contains_key(&queue) {
            delete_function_queues(worker, connection, &queue, consumer.function_id).await?;
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
        running.spawn(consume(worker.clone(), channel, deliveries, stopped));
        tracing::info!(queue, prefetch, "consuming async calls");
        consumers.insert(queue, Consumer { function_id, prefetch, stop });
    }
    Ok(())
}

async fn delete_function_queues(worker: &Worker, connection: &Connection, queue: &str, function_id: i64) -> Result<(), String> {
    let channel = connection.create_channel().await.map_err(broker::step("open a channel"))?;
    for name in [queue.to_string(), QueueNames::dead_letter_queue(queue)] {
        channel
            .queue_delete(name.as_str().into(), QueueDeleteOptions::default())
            .await
            .map_err(broker::step("delete a deleted function's queue"))?;
    }
    let _ = channel.close(200, "done".into()).await;
    match worker.queue.store.fail_queued_of_function(function_id).await {
        Ok(failed) => tracing::info!(queue, failed, "queue of a deleted function removed"),
        Err(e) => tracing::warn!(queue, error = %e, "cannot fail the queued calls of a deleted function"),
    }
    Ok(())
}

/// Hands each delivery to its own task (prefetch bounds how many) until stopped or failed.
async fn consume(worker: Arc<Worker>, channel: Channel, mut deliveries: lapin::Consumer, mut stop: oneshot::Receiver<()>) -> Result<(), String> {
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
                tokio::spawn(handle(worker.clone(), delivery));
            }
        }
    }
}

/// Runs the call a message names, stores the outcome, then settles the message.
async fn handle(worker: Arc<Worker>, delivery: Delivery) {
    let Ok(id) = String::from_utf8(delivery.data.clone()) else {
        tracing::warn!("async call message without a readable invocation id; dead-lettered");
        let _ = delivery.reject(BasicRejectOptions { requeue: false }).await;
        return;
    };
    let claimed = match worker.queue.store.claim_invocation(&id, &worker.process).await {
        Ok(claimed) => claimed,
        Err(e) => {
            // The database is away: try again shortly rather than lose the call.
            tracing::error!(invocation = id, error = %e, "cannot claim an async call; it will be redelivered");
            tokio::time::sleep(Duration::from_secs(1)).await;
            let _ = delivery.nack(BasicNackOptions { requeue: true, ..Default::default() }).await;
            return;
        }
    };
    let Some(call) = claimed else {
        // Done, running or unknown: a redelivery or a duplicate.
        let _ = delivery.ack(BasicAckOptions::default()).await;
        return;
    };
    let outcome = worker.run_and_store(call).await;
    let settled = match outcome {
        Outcome::DeadLetter => delivery.reject(BasicRejectOptions { requeue: false }).await,
        Outcome::Done | Outcome::Retry | Outcome::Failed | Outcome::Unrecorded => delivery.ack(BasicAckOptions::default()).await,
    };
    if let Err(e) = settled {
        // Redelivered, the message finds its call settled (or a retry not yet due) and is skipped.
        tracing::warn!(invocation = id, error = %e, ?outcome, "cannot settle an async call's message");
    }
}

