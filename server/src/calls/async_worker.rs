//! Runs the calls `deferred.rs` queued: the in-process worker reading the database's queue,
//! or — with RabbitMQ — the broker's consumers (`async_consumers.rs`), both through
//! [`Worker::run_and_store`]. Calls that were running at a restart go back to the queue. A call
//! answering 5xx is tried again after a growing pause (`retry_delay`), up to `MAX_ATTEMPTS`,
//! then it goes to the dead letters.

use super::deferred::{AsyncCalls, StoredRequest};
use super::dispatch::{Call, Credentials, Delivery, Dispatched, Dispatcher};
use super::request::{CallRequest, CallResponse, CallTrigger, FunctionRef};
use super::body;
use crate::store::{Claimed, Recovered};
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;

pub const MAX_ATTEMPTS: i64 = 3;
/// Pause before the second attempt; each further one waits `RETRY_FACTOR` times longer.
const FIRST_RETRY_DELAY: Duration = Duration::from_secs(1);
const RETRY_FACTOR: u32 = 4;
/// Longest pause between two attempts.
const MAX_RETRY_DELAY: Duration = Duration::from_secs(300);
/// Asynchronous calls the in-database worker runs at once.
const WORKERS: usize = 16;

/// How long a call that failed its `attempt` (1 for the first) waits before the next one: a
/// function failing because a service it needs is down gets time to recover, instead of
/// spending its attempts within a second.
pub fn retry_delay(attempt: i64) -> Duration {
    let growth = RETRY_FACTOR.saturating_pow(attempt.clamp(1, 32) as u32 - 1);
    FIRST_RETRY_DELAY.saturating_mul(growth).min(MAX_RETRY_DELAY)
}

/// An answer as kept until it is read.
#[derive(Debug, Serialize, Deserialize)]
pub struct StoredResponse {
    #[serde(rename = "statusCode")]
    pub status_code: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
    #[serde(rename = "isBase64Encoded")]
    pub is_base64_encoded: bool,
}

/// What became of one attempt, as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Done,
    /// A 5xx with attempts left: the call is `queued` again, due after `retry_delay`.
    Retry,
    DeadLetter,
    /// The call could not run at all (function deleted, request unreadable).
    Failed,
    /// The database did not take the outcome; the call stays `running`.
    Unrecorded,
}

pub struct Worker {
    pub(crate) queue: Arc<AsyncCalls>,
    dispatcher: Dispatcher,
    /// This process, as the calls it claims name it.
    pub(crate) process: String,
}

/// How often a front looks for asynchronous calls left running by a process that is gone.
const RECOVER_EVERY: Duration = Duration::from_secs(5);

impl Worker {
    pub fn new(queue: Arc<AsyncCalls>, dispatcher: Dispatcher, process: String) -> Arc<Worker> {
        Arc::new(Worker { queue, dispatcher, process })
    }

    /// Puts the asynchronous calls a dead front left running back in the queue now and then,
    /// so another front runs them: none is lost with the process that took it.
    pub fn spawn_recovery(self: &Arc<Self>) {
        let worker = self.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(RECOVER_EVERY).await;
                let store = &worker.queue.store;
                let recovered = match crate::ops::processes::live_others(store, &worker.process).await {
                    Ok(live) => store.recover_calls_of_gone(&worker.process, &live).await.map_err(|e| e.to_string()),
                    Err(e) => Err(e),
                };
                match recovered {
                    Ok(Recovered { requeued, failed }) => {
                        if failed > 0 {
                            tracing::info!(calls = failed, "sync calls a stopped process left running are failed as interrupted");
                        }
                        if requeued > 0 {
                            tracing::info!(calls = requeued, "async calls a stopped process left running are queued again");
                            worker.queue.wake.notify_one();
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "cannot look for calls of stopped processes"),
                }
            }
        });
    }

    /// Runs the calls queued in the database (no broker), until the process ends.
    pub async fn work(self: Arc<Self>) {
        let slots = Arc::new(Semaphore::new(WORKERS));
        loop {
            let free = slots.available_permits().max(1) as i64;
            match self.queue.store.claim_queued(free, &self.process).await {
                Ok(claimed) if !claimed.is_empty() => {
                    for call in claimed {
                        let permit = slots.clone().acquire_owned().await.expect("semaphore open");
                        let this = self.clone();
                        tokio::spawn(async move {
                            this.run_and_store(call).await;
                            drop(permit);
                            this.queue.wake.notify_one();
                        });
                    }
                    continue;
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "cannot read the async call queue"),
            }
            // New calls wake the worker; the timer catches retries and anything missed.
            let _ = tokio::time::timeout(Duration::from_secs(1), self.queue.wake.notified()).await;
        }
    }

    /// Runs one claimed attempt and stores its outcome.
    pub(crate) async fn run_and_store(&self, call: Claimed) -> Outcome {
        let store = &self.queue.store;
        let id = call.id.clone();
        let attempt = call.attempt;
        let (outcome, stored) = match self.run(call).await {
            Ok(response) => {
                let outcome = if response.status < 500 {
                    Outcome::Done
                } else if attempt < MAX_ATTEMPTS {
                    Outcome::Retry
                } else {
                    Outcome::DeadLetter
                };
                let json = serde_json::to_string(&stored_response(response)).expect("response serializes");
                let stored = match outcome {
                    Outcome::Retry => {
                        let retry_at = crate::store::now_ms() + retry_delay(attempt).as_millis() as i64;
                        store.retry_async_call(&id, &json, retry_at).await
                    }
                    Outcome::Done => store.set_async_outcome(&id, Some(&json), "done").await,
                    _ => store.set_async_outcome(&id, Some(&json), "dead-letter").await,
                };
                (outcome, stored)
            }
            Err(reason) => {
                tracing::warn!(invocation = id, reason, "async call cannot run");
                (Outcome::Failed, store.fail_invocation(&id, &reason).await)
            }
        };
        match stored {
            Ok(()) => outcome,
            Err(e) => {
                tracing::error!(invocation = id, error = %e, "cannot store async call result");
                Outcome::Unrecorded
            }
        }
    }

    /// Runs the call through the pipeline under its record; Err says why it could not run.
    async fn run(&self, call: Claimed) -> Result<CallResponse, String> {
        let request: StoredRequest = serde_json::from_str(&call.request).map_err(|e| format!("unreadable request: {e}"))?;
        let request = CallRequest {
            method: request.method,
            path: request.path,
            query: request.query,
            headers: request.headers,
            body: Bytes::from(body::decode(&request.body_base64).unwrap_or_default()),
            trigger: CallTrigger::Async,
        };
        let call = Call {
            function: FunctionRef::new(call.org, call.name),
            request,
            // Its caller was let in when the call was accepted.
            credentials: Credentials::Platform,
            delivery: Delivery::Recorded(call.id),
        };
        match self.dispatcher.dispatch(call).await {
            Ok(Dispatched::Answered(response)) => Ok(response),
            Ok(Dispatched::Queued { .. }) => Err("the call was queued again instead of run".into()),
            Err(rejection) if !rejection.platform_fault => {
                Err("the function was deleted or has no ready version".to_string())
            }
            Err(rejection) => Err(rejection.message),
        }
    }
}

fn stored_response(response: CallResponse) -> StoredResponse {
    let (body, is_base64_encoded) = body::text_or_base64(&response.body);
    StoredResponse { status_code: response.status, body: body.into_owned(), headers: response.headers, is_base64_encoded }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_wait_longer_each_time_up_to_a_cap() {
        assert_eq!(retry_delay(1), Duration::from_secs(1));
        assert_eq!(retry_delay(2), Duration::from_secs(4));
        assert_eq!(retry_delay(3), Duration::from_secs(16));
        assert_eq!(retry_delay(10), MAX_RETRY_DELAY);
        assert_eq!(retry_delay(i64::MAX), MAX_RETRY_DELAY);
    }
}
