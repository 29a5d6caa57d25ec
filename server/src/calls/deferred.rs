//! Calls accepted now and run later (`X-Invoke-Type: async`, vCD events): each is stored
//! `queued` with its request, then handed to its queue — RabbitMQ when AMQP_URL is set
//! (`async_broker.rs`), otherwise the database itself, read by the in-process worker
//! (`async_worker.rs`). Either way a restart loses no accepted call.

use super::async_broker::BrokerQueue;
use super::body;
use super::request::CallRequest;
use crate::store::{Store, StoreError, Target, Unique};
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

/// A request as kept until it has run.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct StoredRequest {
    pub method: String,
    pub path: String,
    pub query: String,
    pub headers: Vec<(String, String)>,
    pub body_base64: String,
}

pub struct AsyncCalls {
    pub(crate) store: Store,
    /// Wakes the in-database worker when a call is queued.
    pub(crate) wake: Notify,
    /// RabbitMQ as the queue, when AMQP_URL is set.
    pub(crate) broker: Option<BrokerQueue>,
}

impl AsyncCalls {
    pub fn new(store: Store, broker: Option<BrokerQueue>) -> AsyncCalls {
        AsyncCalls { store, wake: Notify::new(), broker }
    }

    /// Queues a call under the given invocation id, recorded with the request's trigger;
    /// false when a call with that id was queued before (a redelivered event runs once).
    pub async fn enqueue(&self, id: &str, target: &Target, request: &CallRequest) -> Result<bool, StoreError> {
        let stored = StoredRequest {
            method: request.method.clone(),
            path: request.path.clone(),
            query: request.query.clone(),
            headers: request.headers.clone(),
            body_base64: body::encode(&request.body),
        };
        let json = serde_json::to_string(&stored).expect("request serializes");
        let trigger = request.trigger.as_str();
        match self.store.queue_invocation(id, target, trigger, &request.method, &request.route_path(), &json).await {
            Ok(()) => {
                match &self.broker {
                    Some(broker) => broker.publish_accepted(&self.store, id, &target.function.org, &target.function.name).await,
                    None => self.wake.notify_one(),
                }
                Ok(true)
            }
            Err(StoreError::Duplicate(Unique::InvocationId)) => Ok(false),
            Err(e) => Err(e),
        }
    }
}
