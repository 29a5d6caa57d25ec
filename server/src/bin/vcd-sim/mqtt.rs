//! The sim's own client of vCD's MQTT broker (docs vcd-mqtt.md §M1, §M3), a Mosquitto behind the
//! sim (`mqtt_gateway` lets extensions in): it publishes API requests to extensions' monitor
//! topics and notifications to `publish/{org}/{user}`, and reads the answers on every respond
//! topic. Its session is persistent (clean session off), so an answer sent while the sim
//! reconnects waits for it in the broker, as inside a vCD cell.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use serde_json::Value;
use tokio::sync::oneshot;
use uuid::Uuid;

const RESPONDS: &str = "topic/extension/+/+/+/vcd";

#[derive(Clone)]
pub struct Mqtt {
    inner: Arc<Inner>,
    address: String,
}

struct Inner {
    client: AsyncClient,
    connected: AtomicBool,
    /// Front-door requests waiting for their API_RESPONSE, by request id.
    pending: Mutex<HashMap<String, oneshot::Sender<Value>>>,
    /// Answers that matched a waiting request, and those that matched none (late or repeated).
    answers: AtomicU64,
    unmatched: AtomicU64,
}

impl Mqtt {
    /// Connects to `mqtt://host:port` and stays connected.
    pub fn start(url: &str) -> Result<Mqtt, String> {
        let address = url.strip_prefix("mqtt://").ok_or_else(|| format!("--mqtt-url must be mqtt://host:port, not {url:?}"))?;
        let (host, port) = address.trim_end_matches('/').rsplit_once(':').ok_or_else(|| format!("--mqtt-url {url:?} has no port"))?;
        let port: u16 = port.parse().map_err(|_| format!("--mqtt-url {url:?} has no port number"))?;
        let mut options = MqttOptions::new(format!("vcd-sim-{}", Uuid::new_v4().simple()), host, port);
        options
            .set_clean_session(false)
            .set_keep_alive(Duration::from_secs(10))
            .set_max_packet_size(64 << 20, 64 << 20);
        let (client, mut events) = AsyncClient::new(options, 256);
        events.network_options.set_tcp_nodelay(true);
        let mqtt = Mqtt {
            address: format!("{host}:{port}"),
            inner: Arc::new(Inner {
                client,
                connected: AtomicBool::new(false),
                pending: Mutex::default(),
                answers: AtomicU64::new(0),
                unmatched: AtomicU64::new(0),
            }),
        };
        let this = mqtt.clone();
        tokio::spawn(async move {
            loop {
                match events.poll().await {
                    Ok(Event::Incoming(Packet::ConnAck(_))) => {
                        this.inner.connected.store(true, Ordering::Relaxed);
                        tracing::info!("connected to the MQTT broker");
                        let _ = this.inner.client.try_subscribe(RESPONDS, QoS::AtLeastOnce);
                    }
                    Ok(Event::Incoming(Packet::Publish(p))) => this.received(&p.topic, &p.payload),
                    Ok(_) => {}
                    Err(e) => {
                        if this.inner.connected.swap(false, Ordering::Relaxed) {
                            tracing::warn!("lost the MQTT broker: {e}");
                        }
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                }
            }
        });
        Ok(mqtt)
    }

    pub fn connected(&self) -> bool {
        self.inner.connected.load(Ordering::Relaxed)
    }

    /// (answers that found their request, answers that found none).
    pub fn answer_counts(&self) -> (u64, u64) {
        (self.inner.answers.load(Ordering::Relaxed), self.inner.unmatched.load(Ordering::Relaxed))
    }

    fn received(&self, topic: &str, payload: &[u8]) {
        let Ok(message) = serde_json::from_slice::<Value>(payload) else {
            tracing::warn!(topic, "unreadable message on a respond topic");
            return;
        };
        let request_id = message.pointer("/headers/requestId").and_then(Value::as_str).unwrap_or_default().to_string();
        match self.inner.pending.lock().unwrap().remove(&request_id) {
            Some(waiter) => {
                self.inner.answers.fetch_add(1, Ordering::Relaxed);
                let _ = waiter.send(message);
            }
            None => {
                self.inner.unmatched.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(topic, request_id, "dropping an answer for an unknown, answered or timed-out request");
            }
        }
    }

    /// Publishes an API request and returns where its answer will arrive.
    pub async fn request(&self, monitor: &str, request_id: &str, message: Vec<u8>) -> Result<oneshot::Receiver<Value>, String> {
        if !self.connected() {
            return Err("vcd-sim is not connected to the MQTT broker".into());
        }
        let (tx, rx) = oneshot::channel();
        // Register before publishing: a fast extension may answer first.
        self.inner.pending.lock().unwrap().insert(request_id.to_string(), tx);
        if let Err(e) = self.inner.client.publish(monitor, QoS::AtLeastOnce, false, message).await {
            self.forget(request_id);
            return Err(format!("cannot publish to the MQTT broker: {e}"));
        }
        Ok(rx)
    }

    /// Stops waiting for an answer (timeout); one arriving later is counted and dropped.
    pub fn forget(&self, request_id: &str) {
        self.inner.pending.lock().unwrap().remove(request_id);
    }

    /// `host:port` of the broker, for the gateway's connections.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// Publishes a notification; nobody listening is fine, as in vCD.
    pub async fn publish(&self, topic: &str, message: Vec<u8>) -> Result<(), String> {
        if !self.connected() {
            return Err("vcd-sim is not connected to the MQTT broker".into());
        }
        self.inner.client.publish(topic, QoS::AtLeastOnce, false, message).await.map_err(|e| e.to_string())
    }
}
