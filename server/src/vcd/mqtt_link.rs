//! A link to vCD's MQTT broker (vcd-mqtt.md §M1.3, §M3): MQTT 3.1.1 over WebSocket
//! (`wss://<vcd>/messaging/mqtt`), clean session (vCD's broker keeps no session state), a new
//! client id per connection. It is kept up: after a broker restart or a refused login it
//! connects again after a growing pause, with credentials its owner gives anew, and subscribes
//! again, since a clean session forgets subscriptions. What is published through it goes at
//! QoS 1 and is sent again on the next connection until the broker confirmed it, so an answer
//! made while the broker was away is not lost.

use crate::amqp::LinkState;
use bytes::Bytes;
use rumqttc::tokio_rustls::rustls;
use rumqttc::{AsyncClient, ConnectionError, Event, MqttOptions, Outgoing, Packet, QoS, SubscribeFilter, SubscribeReasonCode, TlsConfiguration, Transport};
use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;

const FIRST_PAUSE: Duration = Duration::from_millis(250);
const LONGEST_PAUSE: Duration = Duration::from_secs(15);
const CONNECT_WITHIN: Duration = Duration::from_secs(15);
const KEEP_ALIVE: Duration = Duration::from_secs(30);
/// Largest message either way: API bodies travel base64 inside base64.
const MAX_PACKET: usize = 64 * 1024 * 1024;

/// How the link logs in: the MQTT user name and password.
pub struct Login {
    pub username: String,
    pub password: String,
}

/// What a link serves: it gives the credentials and takes the messages.
#[async_trait::async_trait]
pub trait LinkOwner: Send + Sync + 'static {
    /// Credentials for the next connection; `refused`: the broker refused the last ones.
    async fn login(&self, refused: bool) -> Result<Login, String>;
    /// A message of a subscribed topic. Runs on the link's loop: hand long work to a task.
    async fn receive(self: Arc<Self>, topic: String, payload: Bytes);
}

struct Message {
    topic: String,
    payload: Bytes,
}

pub struct MqttLink {
    name: &'static str,
    url: String,
    tls: Option<Arc<rustls::ClientConfig>>,
    pub state: Arc<LinkState>,
    /// Messages to send, oldest first.
    outbox: Mutex<VecDeque<Message>>,
    /// The topics to be subscribed to.
    topics: Mutex<BTreeSet<String>>,
    /// Something to send, or the topics changed.
    wake: Notify,
    /// A new connection is wanted (new credentials).
    replace: Notify,
    /// The current connection is to end now (its owner may no longer serve).
    end: Notify,
}

/// Why a connection ended.
enum Ended {
    Refused(String),
    Lost(String),
}

/// How serving a connection ended.
enum Served {
    HandedOver(Box<Connection>),
    Ended(Ended),
}

/// A connection up and subscribed.
struct Connection {
    client: AsyncClient,
    events: rumqttc::EventLoop,
    subscribed: BTreeSet<String>,
}

impl MqttLink {
    /// A link to `url` (`ws://` or `wss://…/messaging/mqtt`); `insecure_tls` accepts any certificate.
    pub fn new(name: &'static str, url: &str, insecure_tls: bool) -> Result<Arc<MqttLink>, String> {
        let tls = match url.split_once("://").map(|(scheme, _)| scheme) {
            Some("wss") => Some(tls_config(insecure_tls)?),
            Some("ws") => None,
            _ => return Err(format!("the MQTT address {url:?} must start with wss:// (or ws:// without TLS)")),
        };
        Ok(Arc::new(MqttLink {
            name,
            url: url.to_string(),
            tls,
            state: Arc::default(),
            outbox: Mutex::default(),
            topics: Mutex::default(),
            wake: Notify::new(),
            replace: Notify::new(),
            end: Notify::new(),
        }))
    }

    /// Sends `payload` to `topic` once connected, again after a reconnect until confirmed.
    pub fn publish(&self, topic: &str, payload: Vec<u8>) {
        self.outbox.lock().unwrap().push_back(Message { topic: topic.to_string(), payload: payload.into() });
        self.wake.notify_one();
    }

    /// The topics to be subscribed to from now on (also after every reconnect).
    pub fn set_topics(&self, topics: BTreeSet<String>) {
        *self.topics.lock().unwrap() = topics;
        self.wake.notify_one();
    }

    /// Connects anew with fresh credentials, the old connection serving until the new one is
    /// subscribed (a renewed token takes over without a gap in which requests go unheard).
    pub fn replace_connection(&self) {
        self.replace.notify_one();
    }

    /// Ends the current connection; the next one is made when the owner gives credentials again.
    pub fn disconnect(&self) {
        self.end.notify_one();
    }

    /// Keeps the link up for the life of the process.
    pub fn run(self: &Arc<Self>, owner: Arc<dyn LinkOwner>) {
        let link = self.clone();
        tokio::spawn(async move {
            let (mut pause, mut refused) = (FIRST_PAUSE, false);
            loop {
                let mut connection = match link.connect(&owner, refused).await {
                    Ok(connection) => connection,
                    Err(ended) => {
                        refused = matches!(ended, Ended::Refused(_));
                        link.down(ended, &mut pause).await;
                        continue;
                    }
                };
                pause = FIRST_PAUSE;
                // Served until it fails, or until a replacement took over.
                let ended = loop {
                    match link.serve(&owner, connection).await {
                        Served::HandedOver(next) => connection = *next,
                        Served::Ended(ended) => break ended,
                    }
                };
                refused = matches!(ended, Ended::Refused(_));
                link.down(ended, &mut pause).await;
            }
        });
    }

    async fn down(&self, ended: Ended, pause: &mut Duration) {
        let error = match ended {
            Ended::Refused(e) => format!("the broker refused the login: {e}"),
            Ended::Lost(e) => e,
        };
        self.state.mark_down(&error);
        tracing::warn!(link = self.name, error, retry_in_ms = pause.as_millis() as u64, "MQTT link to vCD down");
        tokio::time::sleep(*pause).await;
        *pause = (*pause * 2).min(LONGEST_PAUSE);
    }

    fn options(&self, login: Login) -> MqttOptions {
        // One id per connection: MQTT 3.1.1 drops the older connection of a reused id.
        let id = format!("vcd-faas-{}", uuid::Uuid::new_v4().simple());
        let port = if self.tls.is_some() { 443 } else { 80 }; // the URL's own port wins
        let mut options = MqttOptions::new(id, self.url.clone(), port);
        options
            .set_transport(match &self.tls {
                Some(config) => Transport::Wss(TlsConfiguration::Rustls(config.clone())),
                None => Transport::Ws,
            })
            .set_credentials(login.username, login.password)
            .set_clean_session(true)
            .set_keep_alive(KEEP_ALIVE)
            .set_max_packet_size(MAX_PACKET, MAX_PACKET);
        options
    }

    /// A new connection, logged in and subscribed to the current topics.
    async fn connect(&self, owner: &Arc<dyn LinkOwner>, refused: bool) -> Result<Connection, Ended> {
        let login = owner.login(refused).await.map_err(Ended::Lost)?;
        let (client, mut events) = AsyncClient::new(self.options(login), 64);
        // Small messages that someone waits for: no Nagle delay.
        events.network_options.set_tcp_nodelay(true);
        let within = |what: String| Ended::Lost(format!("no answer from {} within {} s ({what})", self.url, CONNECT_WITHIN.as_secs()));
        match tokio::time::timeout(CONNECT_WITHIN, events.poll()).await {
            Ok(Ok(Event::Incoming(Packet::ConnAck(_)))) => {}
            Ok(Err(ConnectionError::ConnectionRefused(code))) => return Err(Ended::Refused(format!("{code:?}"))),
            Ok(Err(e)) => return Err(Ended::Lost(format!("cannot connect to {}: {e}", self.url))),
            Ok(Ok(other)) => return Err(Ended::Lost(format!("the broker answered the connect with {other:?}"))),
            Err(_) => return Err(within("connect".into())),
        }
        // Subscribed (confirmed) before serving: a replacement must hear what the old one did.
        let topics = self.topics.lock().unwrap().clone();
        if !topics.is_empty() {
            let filters = topics.iter().map(|t| SubscribeFilter::new(t.clone(), QoS::AtLeastOnce));
            client.subscribe_many(filters).await.map_err(|e| Ended::Lost(e.to_string()))?;
            loop {
                match tokio::time::timeout(CONNECT_WITHIN, events.poll()).await {
                    Ok(Ok(Event::Incoming(Packet::SubAck(ack)))) => {
                        if ack.return_codes.contains(&SubscribeReasonCode::Failure) {
                            tracing::warn!(link = self.name, "the broker refused a subscription");
                        }
                        break;
                    }
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => return Err(Ended::Lost(format!("lost the broker while subscribing: {e}"))),
                    Err(_) => return Err(within("subscribe".into())),
                }
            }
        }
        tracing::info!(link = self.name, url = self.url, "MQTT link to vCD up");
        self.state.mark_up();
        Ok(Connection { client, events, subscribed: topics })
    }

    /// Serves a connection until it fails or a replacement is up.
    async fn serve(self: &Arc<Self>, owner: &Arc<dyn LinkOwner>, connection: Connection) -> Served {
        let Connection { client, mut events, mut subscribed } = connection;
        // Handed to the client, then (with the packet id the client gave) waiting for the broker.
        let (mut handed, mut unconfirmed) = (VecDeque::<Message>::new(), HashMap::<u16, Message>::new());
        let mut replacement: Option<tokio::task::JoinHandle<Result<Connection, Ended>>> = None;
        let served = loop {
            self.sync_topics(&client, &mut subscribed);
            self.hand_over(&client, &mut handed);
            tokio::select! {
                event = events.poll() => match event {
                    Ok(Event::Incoming(Packet::Publish(p))) => owner.clone().receive(p.topic, p.payload).await,
                    Ok(Event::Outgoing(Outgoing::Publish(pkid))) => {
                        if let Some(message) = handed.pop_front() {
                            unconfirmed.insert(pkid, message);
                        }
                    }
                    Ok(Event::Incoming(Packet::PubAck(ack))) => {
                        unconfirmed.remove(&ack.pkid);
                    }
                    Ok(Event::Incoming(Packet::SubAck(ack))) if ack.return_codes.contains(&SubscribeReasonCode::Failure) => {
                        tracing::warn!(link = self.name, "the broker refused a subscription");
                    }
                    Ok(_) => {}
                    Err(e) => break Served::Ended(Ended::Lost(format!("lost the broker: {e}"))),
                },
                _ = self.wake.notified() => {}
                _ = self.end.notified() => {
                    let _ = client.try_disconnect();
                    break Served::Ended(Ended::Lost("ended by its owner".into()));
                }
                _ = self.replace.notified(), if replacement.is_none() => {
                    let (link, owner) = (self.clone(), owner.clone());
                    replacement = Some(tokio::spawn(async move { link.connect(&owner, false).await }));
                }
                next = async { replacement.as_mut().expect("guarded").await }, if replacement.is_some() => {
                    replacement = None;
                    match next {
                        Ok(Ok(next)) => {
                            let _ = client.try_disconnect();
                            break Served::HandedOver(Box::new(next));
                        }
                        Ok(Err(Ended::Refused(e) | Ended::Lost(e))) => tracing::warn!(link = self.name, error = e, "the replacement connection failed; the current one goes on"),
                        Err(e) => tracing::warn!(link = self.name, error = %e, "the replacement connection failed; the current one goes on"),
                    }
                }
            }
        };
        if let Some(pending) = replacement {
            pending.abort();
        }
        // Unconfirmed first, in the order they were sent, then the rest: the next connection sends them.
        let mut pending: Vec<(u16, Message)> = unconfirmed.into_iter().collect();
        pending.sort_by_key(|(pkid, _)| *pkid);
        let mut outbox = self.outbox.lock().unwrap();
        for message in pending.into_iter().map(|(_, m)| m).chain(handed).collect::<Vec<_>>().into_iter().rev() {
            outbox.push_front(message);
        }
        if matches!(served, Served::HandedOver(_)) {
            self.wake.notify_one();
        }
        served
    }

    /// Subscribes to new topics and leaves old ones; what the client cannot take now waits.
    fn sync_topics(&self, client: &AsyncClient, subscribed: &mut BTreeSet<String>) {
        let wanted = self.topics.lock().unwrap().clone();
        for topic in wanted.difference(&subscribed.clone()) {
            if client.try_subscribe(topic.as_str(), QoS::AtLeastOnce).is_ok() {
                subscribed.insert(topic.clone());
            }
        }
        for topic in subscribed.clone().difference(&wanted) {
            if client.try_unsubscribe(topic.as_str()).is_ok() {
                subscribed.remove(topic);
            }
        }
    }

    /// Hands queued messages to the client while it takes them.
    fn hand_over(&self, client: &AsyncClient, handed: &mut VecDeque<Message>) {
        let mut outbox = self.outbox.lock().unwrap();
        while let Some(message) = outbox.pop_front() {
            if client.try_publish(message.topic.as_str(), QoS::AtLeastOnce, false, message.payload.to_vec()).is_err() {
                outbox.push_front(message);
                break;
            }
            handed.push_back(message);
        }
    }
}

/// TLS for `wss://`: the system's trusted certificates, or none checked at all.
fn tls_config(insecure: bool) -> Result<Arc<rustls::ClientConfig>, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?;
    let config = if insecure {
        builder.dangerous().with_custom_certificate_verifier(Arc::new(AnyCertificate(provider))).with_no_client_auth()
    } else {
        let mut roots = rustls::RootCertStore::empty();
        for certificate in rustls_native_certs::load_native_certs().certs {
            let _ = roots.add(certificate);
        }
        builder.with_root_certificates(roots).with_no_client_auth()
    };
    Ok(Arc::new(config))
}

/// `VCD_INSECURE_TLS`: any certificate is accepted (its signatures are still checked).
#[derive(Debug)]
struct AnyCertificate(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _: &rustls::pki_types::CertificateDer<'_>,
        _: &[rustls::pki_types::CertificateDer<'_>],
        _: &rustls::pki_types::ServerName<'_>,
        _: &[u8],
        _: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
