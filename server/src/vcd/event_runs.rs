//! What a vCD event means, whichever broker carried it (AMQP notifications or MQTT): one run
//! of each function of the event's tenant whose trigger is that event type, queued on the
//! durable async queue under an id made from the event's id, so an event delivered twice runs
//! nothing twice.

use super::messages::{org_uuid, Notification};
use crate::calls::dispatch::{Call, Credentials, Delivery, Dispatched, Dispatcher};
use crate::calls::request::{CallRequest, CallTrigger, FunctionRef};
use crate::store::Store;
use app::model::Trigger;

/// Queues one run per matching function of the tenant whose vCD org is `org` (a URN or a
/// bare uuid); returns how many runs were new.
pub async fn queue_runs(dispatcher: &Dispatcher, store: &Store, notification: &Notification, org: &str, body: &[u8]) -> Result<usize, String> {
    if org.is_empty() {
        return Ok(0);
    }
    let Some(tenant) = store.tenant_by_vcd_org(&org_uuid(org)).await.map_err(|e| e.to_string())? else {
        return Ok(0);
    };
    let succeeded = notification.operation_success.unwrap_or(true);
    let event_id = if notification.event_id.is_empty() { uuid::Uuid::new_v4().to_string() } else { notification.event_id.clone() };
    let mut queued = 0;
    for function in store.event_functions(Some(tenant.id)).await.map_err(|e| e.to_string())? {
        let Trigger::VcdEvent { event, successful_only } = &function.trigger else { continue };
        if event.trim_matches('/') != notification.kind.trim_matches('/') || (*successful_only && !succeeded) {
            continue;
        }
        let id = uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_OID, format!("{event_id}/{}", function.id).as_bytes()).to_string();
        let call = Call {
            function: FunctionRef::new(function.org.clone(), function.name.clone()),
            request: CallRequest {
                method: "POST".into(),
                headers: vec![
                    ("content-type".into(), "application/json".into()),
                    ("x-vcd-event-type".into(), notification.kind.clone()),
                ],
                body: bytes::Bytes::copy_from_slice(body),
                trigger: CallTrigger::Event,
                ..Default::default()
            },
            // The function is of the tenant whose org the event names.
            credentials: Credentials::Platform,
            delivery: Delivery::Deferred(id),
        };
        match dispatcher.dispatch(call).await {
            Ok(Dispatched::Queued { new, .. }) => queued += new as usize,
            Ok(Dispatched::Answered(_)) => {}
            Err(rejection) if !rejection.platform_fault => {
                tracing::info!(function = function.name, org = function.org, reason = rejection.message, "event for a function that cannot run skipped");
            }
            Err(rejection) => return Err(rejection.message),
        }
    }
    Ok(queued)
}
