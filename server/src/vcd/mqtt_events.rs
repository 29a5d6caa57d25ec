//! Event triggers over MQTT (vcd-mqtt.md §M3): vCD publishes each org's events on
//! `publish/{org}/{user}`. The link subscribes to `publish/{org}/+` of every tenant whose
//! functions have event triggers, kept in step with the functions, and logs in as vCD's system
//! administrator (`user@System`, the session's JWT as password; a refused login logs in to
//! vCD again). The org is read from the topic vCD published on, so an event runs only the
//! functions of that org's tenant, through the durable async queue as AMQP events do.
//!
//! vCD's broker keeps nothing for a disconnected client: events published while the link is
//! down are lost (there is no reconcile; see the README).

use super::event_runs::queue_runs;
use super::mqtt_link::{LinkOwner, Login, MqttLink};
use super::mqtt_messages::{parse_notification, topic_org};
use super::rest::VcdClient;
use crate::calls::dispatch::Dispatcher;
use crate::store::Store;
use bytes::Bytes;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

/// How often the subscriptions are checked when no function changed (a tenant's vCD org may).
const RECHECK: Duration = Duration::from_secs(30);

pub struct MqttEvents {
    client: Arc<VcdClient>,
    user: String,
    dispatcher: Dispatcher,
    store: Store,
    pub link: Arc<MqttLink>,
}

impl MqttEvents {
    pub fn start(client: Arc<VcdClient>, user: &str, dispatcher: Dispatcher, store: Store, url: &str, insecure_tls: bool) -> Result<Arc<MqttEvents>, String> {
        let link = MqttLink::new("vCD events", url, insecure_tls)?;
        let events = Arc::new(MqttEvents { client, user: user.to_string(), dispatcher, store, link: link.clone() });
        link.run(events.clone());
        events.clone().spawn_topic_sync();
        Ok(events)
    }

    /// `publish/{org}/+` of each tenant with event-triggered functions.
    async fn topics(&self) -> Result<BTreeSet<String>, String> {
        let functions = self.store.event_functions(None).await.map_err(|e| format!("database: {e}"))?;
        let tenants: BTreeSet<i64> = functions.iter().map(|f| f.tenant_id).collect();
        let mut topics = BTreeSet::new();
        for id in tenants {
            let tenant = self.store.tenant_by_id(id).await.map_err(|e| format!("database: {e}"))?;
            if let Some(org) = tenant.and_then(|t| t.vcd_org_id) {
                topics.insert(format!("publish/{}/+", super::messages::org_uuid(&org)));
            }
        }
        Ok(topics)
    }

    fn spawn_topic_sync(self: Arc<Self>) {
        let mut changes = self.dispatcher.directory().subscribe();
        tokio::spawn(async move {
            loop {
                match self.topics().await {
                    Ok(topics) => self.link.set_topics(topics),
                    Err(e) => tracing::warn!(error = e, "cannot work out the event topics"),
                }
                tokio::select! {
                    _ = changes.changed() => {}
                    _ = tokio::time::sleep(RECHECK) => {}
                }
            }
        });
    }
}

#[async_trait::async_trait]
impl LinkOwner for MqttEvents {
    async fn login(&self, refused: bool) -> Result<Login, String> {
        let jwt = self.client.bearer_token(refused).await?;
        Ok(Login { username: self.user.clone(), password: jwt })
    }

    async fn receive(self: Arc<Self>, topic: String, payload: Bytes) {
        let Some(org) = topic_org(&topic).map(str::to_string) else { return };
        let (notification, body) = match parse_notification(&payload) {
            Ok(Some(event)) => event,
            Ok(None) => return,
            Err(e) => {
                tracing::warn!(topic, error = e, "unreadable vCD event dropped");
                return;
            }
        };
        tokio::spawn(async move {
            match queue_runs(&self.dispatcher, &self.store, &notification, &org, &body).await {
                Ok(0) => {}
                Ok(queued) => tracing::info!(event = notification.kind, org, queued, "vCD event queued for its functions"),
                Err(e) => tracing::error!(event = notification.kind, org, error = e, "cannot queue a vCD event; it is lost"),
            }
        });
    }
}
