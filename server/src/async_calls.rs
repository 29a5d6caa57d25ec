//! Asynchronous calls (`X-Invoke-Type: async`): accepted at once with an invocation id, run by
//! workers in the background, their answer kept for `GET /api/v1/invocations/{id}`.
//! The database keeps every call and its outcome. What queues them: RabbitMQ when AMQP_URL is
//! set (`async_queue.rs`), otherwise the database itself, read by an in-process worker. Either
//! way a restart loses no accepted call: calls that were running go back to the queue. A call
//! answering 5xx is tried again after a growing pause (`retry_delay`), up to `MAX_ATTEMPTS`,
//! then it goes to the dead letters.

use crate::async_queue::BrokerQueue;
use crate::gateway::{CallRequest, Gateway};
use crate::store::Store;
use base64::Engine as _;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Notify, Semaphore};

pub const MAX_ATTEMPTS: i64 = 3;
/// Pause before the second attempt; each further one waits `RETRY_FACTOR` times longer.
const FIRST_RETRY_DELAY: Duration = Duration::from_secs(1);
const RETRY_FACTOR: u32 = 4;
/// Longest pause between two attempts.
const MAX_RETRY_DELAY: Duration = Duration::from_secs(300);

/// How long a call that failed its `attempt` (1 for the first) waits before the next one: a
/// function failing because a service it needs is down gets time to recover, instead of
/// spending its attempts within a second.
pub fn retry_delay(attempt: i64) -> Duration {
    let growth = RETRY_FACTOR.saturating_pow(attempt.clamp(1, 32) as u32 - 1);
    FIRST_RETRY_DELAY.saturating_mul(growth).min(MAX_RETRY_DELAY)
}
/// Asynchronous calls running at once.
const WORKERS: usize = 16;

/// A request as kept until it has run.
#[derive(Debug, Serialize, Deserialize)]
struct StoredRequest {
    method: String,
    path: String,
    query: String,
    headers: Vec<(String, String)>,
    body_base64: String,
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

pub struct AsyncCalls {
    pub(crate) store: Store,
    gateway: Gateway,
    wake: Notify,
    /// RabbitMQ as the queue, when AMQP_URL is set.
    pub(crate) broker: Option<BrokerQueue>,
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

impl AsyncCalls {
    /// Without a broker, the in-database worker starts at once; with one, nothing is consumed
    /// before `start_consumers` (after the start-up reconcile has requeued interrupted calls).
    pub fn start(store: Store, gateway: Gateway, broker: Option<BrokerQueue>) -> Arc<AsyncCalls> {
        let in_database = broker.is_none();
        let calls = Arc::new(AsyncCalls { store, gateway, wake: Notify::new(), broker });
        if in_database {
            let worker = calls.clone();
            tokio::spawn(async move { worker.work().await });
        }
        calls
    }

    /// Starts the per-function consumers and the sweeper when RabbitMQ is the queue.
    pub fn start_consumers(self: &Arc<Self>, lookups: &crate::service::Lookups) {
        if self.broker.is_some() {
            crate::async_queue::start(self.clone(), lookups.subscribe());
        }
    }

    /// Records the call as queued and returns its invocation id.
    pub async fn accept(&self, target: &crate::store::Target, request: &CallRequest) -> Result<String, sqlx::Error> {
        let id = crate::journal::new_call_id();
        self.enqueue(&id, target, "async", request).await?;
        Ok(id)
    }

    /// Queues a call under the given invocation id, recorded with `trigger`; false when a call
    /// with that id was queued before (a redelivered event runs once).
    pub async fn enqueue(
        &self,
        id: &str,
        target: &crate::store::Target,
        trigger: &str,
        request: &CallRequest,
    ) -> Result<bool, sqlx::Error> {
        let stored = StoredRequest {
            method: request.method.clone(),
            path: request.path.clone(),
            query: request.query.clone(),
            headers: request.headers.clone(),
            body_base64: base64::engine::general_purpose::STANDARD.encode(&request.body),
        };
        let json = serde_json::to_string(&stored).expect("request serializes");
        match self.store.queue_invocation(id, target, trigger, &request.method, &request.route_path(), &json).await {
            Ok(()) => {
                match &self.broker {
                    Some(broker) => broker.publish_accepted(&self.store, id, &target.function.org, &target.function.name).await,
                    None => self.wake.notify_one(),
                }
                Ok(true)
            }
            Err(e) if crate::store::is_unique_violation(&e) => Ok(false),
            Err(e) => Err(e),
        }
    }

    async fn work(self: Arc<Self>) {
        let slots = Arc::new(Semaphore::new(WORKERS));
        loop {
            let free = slots.available_permits().max(1) as i64;
            match self.store.claim_queued(free).await {
                Ok(claimed) if !claimed.is_empty() => {
                    for (id, function_id, request, attempt) in claimed {
                        let permit = slots.clone().acquire_owned().await.expect("semaphore open");
                        let this = self.clone();
                        tokio::spawn(async move {
                            this.run_and_store(&id, function_id, &request, attempt).await;
                            drop(permit);
                            this.wake.notify_one();
                        });
                    }
                    continue;
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "cannot read the async call queue"),
            }
            // New calls wake the worker; the timer catches retries and anything missed.
            let _ = tokio::time::timeout(Duration::from_secs(1), self.wake.notified()).await;
        }
    }

    /// Runs one claimed attempt and stores its outcome.
    pub(crate) async fn run_and_store(&self, id: &str, function_id: i64, request: &str, attempt: i64) -> Outcome {
        let (outcome, stored) = match self.run(id, function_id, request).await {
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
                        self.store.retry_async_call(id, &json, retry_at).await
                    }
                    Outcome::Done => self.store.set_async_outcome(id, Some(&json), "done").await,
                    _ => self.store.set_async_outcome(id, Some(&json), "dead-letter").await,
                };
                (outcome, stored)
            }
            Err(reason) => {
                tracing::warn!(invocation = id, reason, "async call cannot run");
                (Outcome::Failed, self.store.fail_invocation(id, &reason).await)
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

    /// Runs the call through the gateway; Err says why it could not run at all.
    async fn run(&self, id: &str, function_id: i64, request: &str) -> Result<crate::gateway::CallResponse, String> {
        let request: StoredRequest = serde_json::from_str(request).map_err(|e| format!("unreadable request: {e}"))?;
        let function = self.store.function_by_id(function_id).await.map_err(|e| e.to_string())?;
        let target = match function {
            Some(f) => self.store.routable(&f.org, &f.name).await.map_err(|e| e.to_string())?,
            None => None,
        };
        let Some(Ok(target)) = target else { return Err("the function was deleted or has no ready version".to_string()) };
        let call = CallRequest {
            method: request.method,
            path: request.path,
            query: request.query,
            headers: request.headers,
            body: Bytes::from(base64::engine::general_purpose::STANDARD.decode(request.body_base64).unwrap_or_default()),
            trigger: "async",
        };
        Ok(self.gateway.run(&target, &call, id.to_string()).await)
    }
}

fn stored_response(response: crate::gateway::CallResponse) -> StoredResponse {
    let (body, is_base64_encoded) = match std::str::from_utf8(&response.body) {
        Ok(text) => (text.to_string(), false),
        Err(_) => (base64::engine::general_purpose::STANDARD.encode(&response.body), true),
    };
    StoredResponse { status_code: response.status, headers: response.headers, body, is_base64_encoded }
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
