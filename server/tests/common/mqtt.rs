//! A private Mosquitto per test: vCD's MQTT broker, behind vcd-sim, which lets the platform in
//! through its own `/messaging/mqtt` (WebSocket, logins checked as vCD does) and relays to this
//! broker's plain MQTT listener on loopback (anonymous: only vcd-sim and the test use it). It
//! can be stopped and started again on the same port; its persistence file keeps the sessions
//! of clients that asked for one across the restart.
#![allow(dead_code)]

use super::binary::free_port;
use rumqttc::{AsyncClient, Event, EventLoop, MqttOptions, Packet, QoS};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const MOSQUITTO: &str = "/usr/sbin/mosquitto";

pub struct Broker {
    dir: tempfile::TempDir,
    pub tcp_port: u16,
    child: Option<Child>,
}

impl Broker {
    pub fn start() -> Broker {
        let dir = tempfile::tempdir().unwrap();
        let tcp_port = free_port();
        let config = format!(
            "allow_anonymous true\nset_tcp_nodelay true\npersistence true\npersistence_location {}/\nlog_dest file {}\nlog_type all\n\
             listener {tcp_port} 127.0.0.1\nprotocol mqtt\n",
            dir.path().display(),
            dir.path().join("mosquitto.log").display(),
        );
        // Started as root, Mosquitto would become the user `mosquitto`, who cannot write here.
        let config = if unsafe { libc::getuid() } == 0 { format!("user root\n{config}") } else { config };
        std::fs::write(dir.path().join("mosquitto.conf"), config).unwrap();
        let mut broker = Broker { dir, tcp_port, child: None };
        broker.run();
        broker
    }

    fn run(&mut self) {
        let child = Command::new(MOSQUITTO)
            .arg("-c")
            .arg(self.dir.path().join("mosquitto.conf"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("mosquitto starts");
        self.child = Some(child);
        let start = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", self.tcp_port)).is_err() {
            assert!(start.elapsed() < Duration::from_secs(10), "mosquitto did not listen: {}", self.log());
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops the broker as a service stop would (SIGTERM: it saves its sessions) and waits.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
            let _ = child.wait();
        }
    }

    /// Stops and starts the broker on the same ports.
    pub fn restart(&mut self, down_for: Duration) {
        self.stop();
        std::thread::sleep(down_for);
        self.run();
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("mosquitto.log")).unwrap_or_default()
    }

    /// vcd-sim's flags for this broker.
    pub fn sim_flags(&self) -> Vec<String> {
        vec!["--mqtt-url".into(), format!("mqtt://127.0.0.1:{}", self.tcp_port)]
    }

    pub fn dir(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The test on the broker, beside vcd-sim: publishes what vCD would and reads what comes back.
pub struct Watcher {
    pub client: AsyncClient,
    messages: tokio::sync::Mutex<tokio::sync::mpsc::UnboundedReceiver<(String, serde_json::Value)>>,
}

impl Watcher {
    /// Connected and subscribed to `topics` (the subscriptions confirmed).
    pub async fn connect(broker: &Broker, topics: &[&str]) -> Watcher {
        let mut options = MqttOptions::new(format!("test-{}", uuid::Uuid::new_v4().simple()), "127.0.0.1", broker.tcp_port);
        options.set_max_packet_size(1 << 24, 1 << 24);
        let (client, mut events): (AsyncClient, EventLoop) = AsyncClient::new(options, 64);
        for topic in topics {
            client.subscribe(*topic, QoS::AtLeastOnce).await.unwrap();
        }
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let (subscribed_tx, mut subscribed) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            loop {
                match events.poll().await {
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        let value = serde_json::from_slice(&p.payload).unwrap_or(serde_json::Value::Null);
                        if tx.send((p.topic, value)).is_err() {
                            return;
                        }
                    }
                    Ok(Event::Incoming(Packet::SubAck(_))) => {
                        let _ = subscribed_tx.send(());
                    }
                    Ok(_) => {}
                    Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
                }
            }
        });
        for _ in topics {
            tokio::time::timeout(Duration::from_secs(10), subscribed.recv()).await.expect("the broker confirms the subscription");
        }
        Watcher { client, messages: tokio::sync::Mutex::new(rx) }
    }

    pub async fn publish(&self, topic: &str, payload: impl Into<Vec<u8>>) {
        self.client.publish(topic, QoS::AtLeastOnce, false, payload.into()).await.unwrap();
    }

    /// The next message, if one arrives in time.
    pub async fn next(&self, within: Duration) -> Option<(String, serde_json::Value)> {
        tokio::time::timeout(within, self.messages.lock().await.recv()).await.ok().flatten()
    }
}
