//! `/messaging/mqtt`, vCD's MQTT over WebSocket (docs vcd-mqtt.md §M1.3, §M3): the sim reads
//! the client's CONNECT and checks its login as vCD does: an extension as `vendor/name/version`
//! with one of its unexpired tokens, a user as `user@org` with a live session's token (or with
//! `Authorization: Bearer <token>` on the upgrade and no MQTT login). The connection is then
//! relayed to the broker behind the sim, and closed when its token or session is gone.

use std::sync::Arc;

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use bytes::BytesMut;
use futures_util::{SinkExt, StreamExt};
use rumqttc::mqttbytes::v4::{ConnAck, Connect, Packet};
use rumqttc::mqttbytes::Error as PacketError;
use rumqttc::ConnectReturnCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::Notify;

use crate::rest::session_token;
use crate::state::{MqttLogin, SimState};

const MAX_PACKET: usize = 64 << 20;

pub fn router() -> Router<SimState> {
    Router::new().route("/messaging/mqtt", get(upgrade))
}

async fn upgrade(State(state): State<SimState>, headers: HeaderMap, ws: WebSocketUpgrade) -> Response {
    if state.mqtt.is_none() {
        return (StatusCode::NOT_FOUND, "vcd-sim runs without --mqtt-url: no /messaging/mqtt").into_response();
    }
    let bearer = session_token(&headers);
    ws.protocols(["mqtt"]).on_upgrade(move |socket| relay(state, socket, bearer))
}

/// Who may log in: `None` answers the CONNECT with a refusal.
fn check_login(state: &SimState, connect: &Connect, bearer: Option<String>) -> Option<MqttLogin> {
    let (username, password) = match &connect.login {
        Some(login) if !login.username.is_empty() => (login.username.clone(), login.password.clone()),
        _ => (String::new(), bearer?),
    };
    if username.matches('/').count() == 2 {
        return state.check_token(&username, &password).map(|token| MqttLogin::Extension { token });
    }
    let caller = state.touch_session(&password).ok()?;
    let matches = username.is_empty() || username == format!("{}@{}", caller.user, caller.org);
    matches.then_some(MqttLogin::Session { token: password })
}

async fn refuse(socket: &mut WebSocket, code: ConnectReturnCode) {
    let mut out = BytesMut::new();
    if ConnAck::new(code, false).write(&mut out).is_ok() {
        let _ = socket.send(Message::Binary(out.freeze())).await;
    }
    let _ = socket.send(Message::Close(None)).await;
}

async fn relay(state: SimState, mut socket: WebSocket, bearer: Option<String>) {
    // The first packet must be the CONNECT.
    let mut buffer = BytesMut::new();
    let connect = loop {
        match Packet::read(&mut buffer, MAX_PACKET) {
            Ok(Packet::Connect(connect)) => break connect,
            Ok(other) => {
                tracing::warn!("an MQTT client began with {other:?}, not CONNECT");
                return;
            }
            Err(PacketError::InsufficientBytes(_)) => match socket.recv().await {
                Some(Ok(Message::Binary(bytes))) => buffer.extend_from_slice(&bytes),
                Some(Ok(_)) => {}
                _ => return,
            },
            Err(e) => {
                tracing::warn!("unreadable MQTT CONNECT: {e:?}");
                return;
            }
        }
    };
    let Some(login) = check_login(&state, &connect, bearer) else {
        tracing::info!(client = connect.client_id, user = ?connect.login.as_ref().map(|l| &l.username), "MQTT login refused");
        return refuse(&mut socket, ConnectReturnCode::BadUserNamePassword).await;
    };
    let address = state.mqtt.as_ref().expect("checked at the upgrade").address().to_string();
    let Ok(mut broker) = tokio::net::TcpStream::connect(&address).await else {
        return refuse(&mut socket, ConnectReturnCode::ServiceUnavailable).await;
    };
    let _ = broker.set_nodelay(true);
    // The broker behind takes the sim's word for the login.
    let mut out = BytesMut::new();
    let relayed = Connect { login: None, ..connect };
    if Packet::Connect(relayed).write(&mut out, MAX_PACKET).is_err() {
        return;
    }
    out.extend_from_slice(&buffer);
    if broker.write_all(&out).await.is_err() {
        return refuse(&mut socket, ConnectReturnCode::ServiceUnavailable).await;
    }
    let end = Arc::new(Notify::new());
    let id = state.add_mqtt_link(login, end.clone());
    let (mut from_broker, mut to_broker) = broker.into_split();
    let (mut to_client, mut from_client) = socket.split();
    let upstream = async {
        while let Some(Ok(message)) = from_client.next().await {
            match message {
                Message::Binary(bytes) => {
                    if to_broker.write_all(&bytes).await.is_err() {
                        break;
                    }
                }
                Message::Close(_) => break,
                _ => {}
            }
        }
    };
    let downstream = async {
        let mut chunk = vec![0u8; 64 * 1024];
        loop {
            match from_broker.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if to_client.send(Message::Binary(bytes::Bytes::copy_from_slice(&chunk[..n]))).await.is_err() {
                        break;
                    }
                }
            }
        }
        let _ = to_client.send(Message::Close(None)).await;
    };
    tokio::select! {
        _ = upstream => {}
        _ = downstream => {}
        _ = end.notified() => tracing::info!("an MQTT connection whose login is gone closed"),
    }
    state.remove_mqtt_link(id);
}
