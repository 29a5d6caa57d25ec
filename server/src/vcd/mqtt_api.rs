//! API calls that vCD forwards over MQTT (vcd-mqtt.md §M1.5–§M1.7): every `API_REQUEST` on
//! the extension's monitor topic gets one `API_RESPONSE` on its respond topic: the function's
//! answer, a 400 saying what is wrong with a message that cannot be read, a 500 when the call
//! failed inside the platform. A request id that arrives again (QoS 1 may deliver twice) runs
//! nothing and is not answered twice: the first answer is sent until the broker confirms it.
//! The link logs in with the extension's token, which is renewed before it expires. Only one
//! front of an installation consumes (it holds a database lock; the others stand by and take
//! over when it stops): every subscriber of the monitor topic gets every request.

use super::api_core::{Answers, VcdAnswer};
use super::mqtt_extension::{ExtensionRecord, ExtensionToken, MqttExtension};
use super::mqtt_link::{LinkOwner, Login, MqttLink};
use super::mqtt_messages::{api_response, parse_monitored, Monitored};
use crate::calls::dispatch::Dispatcher;
use crate::store::{HeldLock, Store};
use bytes::Bytes;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use time::OffsetDateTime;
use tokio::sync::Notify;

/// Pause before trying again to renew a token.
const RENEW_RETRY: Duration = Duration::from_secs(5);
/// How often a long-lived token's state is looked at again.
const RECHECK: Duration = Duration::from_secs(60);
/// An answer made this long before vCD stops waiting still reaches it.
const ANSWER_MARGIN: Duration = Duration::from_millis(500);
/// How often the holder checks that it still holds the consumer's lock.
const LOCK_CHECK: Duration = Duration::from_secs(5);

pub struct MqttApi {
    extension: Arc<MqttExtension>,
    dispatcher: Dispatcher,
    answers: Answers,
    pub link: Arc<MqttLink>,
    /// The extension as last registered: its topics.
    record: Mutex<Option<ExtensionRecord>>,
    /// The token the link logs in with, and when it was made.
    token: Mutex<Option<(ExtensionToken, OffsetDateTime)>>,
    /// A new token was made: its renewal is to be planned.
    token_made: Notify,
    /// How long a call may run before it is answered 504: a little less than vCD waits.
    answer_within: Duration,
    store: Store,
    /// The lock that makes this front the extension's one consumer, while held.
    lock: tokio::sync::Mutex<Option<HeldLock>>,
}

impl MqttApi {
    /// `vcd_waits`: vCD's `extensibility.timeout`.
    pub fn start(
        extension: Arc<MqttExtension>,
        dispatcher: Dispatcher,
        store: Store,
        url: &str,
        insecure_tls: bool,
        vcd_waits: Duration,
    ) -> Result<Arc<MqttApi>, String> {
        let link = MqttLink::new("vCD API calls", url, insecure_tls)?;
        let api = Arc::new(MqttApi {
            extension,
            dispatcher,
            answers: Answers::default(),
            link: link.clone(),
            record: Mutex::default(),
            token: Mutex::default(),
            token_made: Notify::new(),
            answer_within: vcd_waits.saturating_sub(ANSWER_MARGIN).max(ANSWER_MARGIN),
            store,
            lock: tokio::sync::Mutex::default(),
        });
        link.run(api.clone());
        api.clone().spawn_renewals();
        api.clone().spawn_lock_checks();
        Ok(api)
    }

    /// The database lock key of this extension's consumer.
    fn lock_key(&self) -> i64 {
        // FNV-1a: stable across processes and builds, unlike the standard hasher.
        let text = format!("vcd-faas mqtt api {}", self.extension.triple());
        text.bytes().fold(0xcbf29ce484222325u64, |hash, byte| (hash ^ byte as u64).wrapping_mul(0x100000001b3)) as i64
    }

    /// Makes this front the consumer, or says that another one is.
    async fn hold_lock(&self) -> Result<(), String> {
        let mut held = self.lock.lock().await;
        if let Some(lock) = held.as_mut() {
            if lock.alive().await {
                return Ok(());
            }
            *held = None;
        }
        match self.store.try_lock(self.lock_key()).await {
            Ok(Some(lock)) => {
                *held = Some(lock);
                Ok(())
            }
            Ok(None) => Err("standing by: another front of this installation answers vCD's API calls, and this one takes over when it stops".into()),
            Err(e) => Err(format!("database: {e}")),
        }
    }

    /// A lost lock (its database connection failed) ends the connection: another front may
    /// have taken over.
    fn spawn_lock_checks(self: Arc<Self>) {
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(LOCK_CHECK).await;
                let mut held = self.lock.lock().await;
                if let Some(lock) = held.as_mut() {
                    if !lock.alive().await {
                        *held = None;
                        tracing::warn!("lost the database lock of vCD's API calls; reconnecting when it is held again");
                        self.link.disconnect();
                    }
                }
            }
        });
    }

    /// The extension's record, registering it first if needed; the link follows its monitor topic.
    async fn record(&self) -> Result<ExtensionRecord, String> {
        let record = self.extension.ensure().await?;
        self.link.set_topics([record.monitor.clone()].into());
        *self.record.lock().unwrap() = Some(record.clone());
        Ok(record)
    }

    /// A new token; `keep_current`: the current one stays valid for the connection using it.
    async fn renew(&self, keep_current: bool) -> Result<String, String> {
        let record = self.record().await?;
        let current = self.token.lock().unwrap().as_ref().map(|(t, _)| t.id.clone()).filter(|_| keep_current);
        let token = self.extension.new_token(&record, current.as_deref()).await?;
        tracing::info!(expires_at = ?token.expires_at, "extension token made in vCD");
        let value = token.token.clone();
        *self.token.lock().unwrap() = Some((token, OffsetDateTime::now_utc()));
        self.token_made.notify_one();
        Ok(value)
    }

    /// Makes a new token when three quarters of the current one's life have passed, and moves
    /// the link to it before the old one expires.
    fn spawn_renewals(self: Arc<Self>) {
        tokio::spawn(async move {
            loop {
                let due = self.token.lock().unwrap().as_ref().and_then(|(token, made)| {
                    let expires = token.expires_at?;
                    Some(*made + (expires - *made) * 0.75)
                });
                let wait = match due {
                    Some(due) => Duration::try_from(due - OffsetDateTime::now_utc()).unwrap_or_default().min(RECHECK),
                    None => RECHECK,
                };
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = self.token_made.notified() => continue,
                }
                let renew_now = matches!(due, Some(due) if due <= OffsetDateTime::now_utc());
                if renew_now {
                    match self.renew(true).await {
                        Ok(_) => self.link.replace_connection(),
                        Err(e) => {
                            tracing::warn!(error = e, "cannot renew the extension token; trying again");
                            tokio::time::sleep(RENEW_RETRY).await;
                        }
                    }
                }
            }
        });
    }

    async fn handle(self: Arc<Self>, payload: Bytes) {
        let Some(respond) = self.record.lock().unwrap().as_ref().map(|r| r.respond.clone()) else { return };
        let (request_id, answer, first) = match parse_monitored(&payload) {
            Ok(Monitored::ApiRequest { request_id, call }) => {
                let (answer, first) = self.answers.answer_once(&request_id, &self.dispatcher, call, Some(self.answer_within)).await;
                (request_id, answer, first)
            }
            Ok(Monitored::Other(kind)) => {
                tracing::warn!(kind, "vCD message of a type the platform does not serve ignored");
                return;
            }
            Err(unreadable) => {
                let Some(request_id) = unreadable.request_id else {
                    tracing::warn!(reason = unreadable.reason, "unreadable vCD message without a request id: nobody to answer");
                    return;
                };
                tracing::warn!(request_id, reason = unreadable.reason, "unreadable vCD request");
                let (answer, first) = self.answers.once(&request_id, async { VcdAnswer::error(400, &unreadable.reason) }).await;
                (request_id, answer, first)
            }
        };
        if first {
            self.link.publish(&respond, api_response(&request_id, &answer));
        } else {
            tracing::info!(request_id, "vCD request delivered again; it was answered once");
        }
    }
}

#[async_trait::async_trait]
impl LinkOwner for MqttApi {
    async fn login(&self, refused: bool) -> Result<Login, String> {
        self.hold_lock().await?;
        let current = self.token.lock().unwrap().as_ref().map(|(t, _)| t.token.clone());
        let token = match current {
            // A refused token may have been deleted in vCD: make a new one.
            Some(token) if !refused => {
                self.record().await?;
                token
            }
            _ => self.renew(false).await?,
        };
        Ok(Login { username: self.extension.triple(), password: token })
    }

    async fn receive(self: Arc<Self>, topic: String, payload: Bytes) {
        let monitor = self.record.lock().unwrap().as_ref().map(|r| r.monitor.clone());
        if monitor.as_deref() == Some(topic.as_str()) {
            // Calls run side by side; the link's loop goes on.
            tokio::spawn(self.handle(payload));
        }
    }
}
