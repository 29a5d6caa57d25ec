//! Asynchronous calls (`X-Invoke-Type: async`): accepted at once with an invocation id, run by
//! workers in the background, their answer kept for `GET /api/v1/invocations/{id}`.
//! The database is the queue, so a restart loses no accepted call: calls that were running
//! go back to the queue. A call answering 5xx is tried again, up to `MAX_ATTEMPTS`, then it
//! goes to the dead letters.

use crate::gateway::{CallRequest, Gateway};
use crate::store::Store;
use base64::Engine as _;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Notify, Semaphore};

pub const MAX_ATTEMPTS: i64 = 3;
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
    store: Store,
    gateway: Gateway,
    wake: Notify,
}

impl AsyncCalls {
    pub fn start(store: Store, gateway: Gateway) -> Arc<AsyncCalls> {
        let calls = Arc::new(AsyncCalls { store, gateway, wake: Notify::new() });
        let worker = calls.clone();
        tokio::spawn(async move { worker.work().await });
        calls
    }

    /// Records the call as queued and returns its invocation id.
    pub async fn accept(&self, target: &crate::store::Target, request: &CallRequest) -> Result<String, sqlx::Error> {
        let id = uuid::Uuid::new_v4().to_string();
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
                self.wake.notify_one();
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
                            this.run_one(&id, function_id, &request, attempt).await;
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

    async fn run_one(&self, id: &str, function_id: i64, request: &str, attempt: i64) {
        let outcome = async {
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
        .await;
        let result = match outcome {
            Ok(response) => {
                let state = if response.status < 500 {
                    "done"
                } else if attempt < MAX_ATTEMPTS {
                    "queued"
                } else {
                    "dead-letter"
                };
                let (body, is_base64_encoded) = match std::str::from_utf8(&response.body) {
                    Ok(text) => (text.to_string(), false),
                    Err(_) => (base64::engine::general_purpose::STANDARD.encode(&response.body), true),
                };
                let stored = StoredResponse { status_code: response.status, headers: response.headers, body, is_base64_encoded };
                let json = serde_json::to_string(&stored).expect("response serializes");
                self.store.set_async_outcome(id, Some(&json), state).await
            }
            Err(reason) => {
                tracing::warn!(invocation = id, reason, "async call cannot run");
                self.store.fail_invocation(id, &reason).await
            }
        };
        if let Err(e) = result {
            tracing::error!(invocation = id, error = %e, "cannot store async call result");
        }
    }
}
