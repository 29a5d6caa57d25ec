//! API calls that vCD forwards over AMQP: each message on the extension's queue is one HTTP
//! request to `/api/org/{org}/{name}[/…]`, answered with exactly one reply to the exchange and
//! routing key the message names. The message is acknowledged only after its reply is
//! published; a redelivered request whose `id` was already answered gets the same reply again
//! without running twice. Messages that cannot be answered go to the dead-letter queue.

use super::amqp_util::header_text;
use super::api_core::{Answers, VcdAnswer, VcdApiCall};
use super::messages::{parse_request, ApiReply};
use crate::amqp::{self as broker, LinkState};
use crate::calls::dispatch::Dispatcher;
use crate::config::VcdConfig;
use futures_util::StreamExt;
use lapin::options::*;
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Connection};
use std::sync::Arc;

pub struct ApiCalls {
    dispatcher: Dispatcher,
    settings: VcdConfig,
    answers: Answers,
    pub link: Arc<LinkState>,
}

impl ApiCalls {
    pub fn start(dispatcher: Dispatcher, settings: VcdConfig, url: String) -> Arc<ApiCalls> {
        let calls = Arc::new(ApiCalls { dispatcher, settings, answers: Answers::default(), link: Arc::default() });
        let consumer = calls.clone();
        broker::supervise(url, "vcd-faas api calls", calls.link.clone(), move |connection| {
            let consumer = consumer.clone();
            async move { consumer.session(connection).await }
        });
        calls
    }

    fn dead_letters(&self) -> String {
        format!("{}.dead-letter", self.settings.vcd_api_queue)
    }

    /// Declares the topology, then consumes until the connection fails.
    async fn session(self: Arc<Self>, connection: Connection) -> Result<(), String> {
        let s = &self.settings;
        let channel = connection.create_channel().await.map_err(broker::step("open a channel"))?;
        let dead = self.dead_letters();
        let topology = broker::DurableQueue {
            exchange: &s.vcd_exchange,
            routing_key: &s.vcd_routing_key,
            queue: &s.vcd_api_queue,
            dead_exchange: &dead,
            dead_queue: &dead,
        };
        broker::declare_with_dead_letters(&channel, &topology).await?;
        channel.basic_qos(s.amqp_prefetch.max(1), BasicQosOptions::default()).await.map_err(broker::step("set prefetch"))?;

        let replies = connection.create_channel().await.map_err(broker::step("open the reply channel"))?;
        replies.confirm_select(ConfirmSelectOptions::default()).await.map_err(broker::step("enable publisher confirms"))?;

        let mut consumer = channel
            .basic_consume(s.vcd_api_queue.as_str().into(), "".into(), BasicConsumeOptions::default(), FieldTable::default())
            .await
            .map_err(broker::step("consume API calls"))?;
        tracing::info!(queue = s.vcd_api_queue, exchange = s.vcd_exchange, "taking vCD API calls");
        while let Some(delivery) = consumer.next().await {
            let delivery = delivery.map_err(broker::step("receive"))?;
            let this = self.clone();
            let replies = replies.clone();
            tokio::spawn(async move { this.handle(delivery, replies).await });
        }
        Err("the API call consumer ended".into())
    }

    async fn handle(self: Arc<Self>, delivery: lapin::message::Delivery, replies: Channel) {
        let properties = &delivery.properties;
        let reply_exchange = header_text(properties, "replyToExchange");
        let reply_key = properties.reply_to().as_ref().map(|k| k.to_string());
        let correlation_id = properties.correlation_id().clone();

        let parsed = parse_request(&delivery.data);
        let (Some(reply_exchange), Some(reply_key)) = (reply_exchange, reply_key) else {
            let id = parsed.as_ref().map(|(r, _, _)| r.id.clone()).unwrap_or_else(|e| e.id.clone());
            tracing::warn!(id, "vCD message without a reply address (replyToExchange header, reply_to); dead-lettered");
            let _ = delivery.reject(BasicRejectOptions { requeue: false }).await;
            return;
        };
        let reply = match parsed {
            Err(unreadable) => {
                tracing::warn!(id = unreadable.id, reason = unreadable.reason, "unreadable vCD request");
                ApiReply::error(&unreadable.id, 400, &unreadable.reason)
            }
            Ok((request, context, body)) => {
                let id = request.id.clone();
                let call = VcdApiCall {
                    method: request.method.clone(),
                    request_uri: request.request_uri.clone(),
                    query: request.query_string.clone(),
                    headers: request.header_pairs(),
                    body,
                    org: context.org,
                    user: context.user,
                };
                // A redelivery gets the first arrival's answer again: its reply may be lost.
                let (answer, _first) = self.answers.answer_once(&id, &self.dispatcher, call, None).await;
                reply(&id, answer)
            }
        };
        let payload = serde_json::to_vec(&reply).expect("reply serializes");
        // Persistent: a reply waiting in a durable reply queue survives a broker restart.
        let mut reply_properties = BasicProperties::default().with_content_type("application/json".into()).with_delivery_mode(2);
        if let Some(correlation_id) = correlation_id {
            reply_properties = reply_properties.with_correlation_id(correlation_id);
        }
        let published = async {
            replies
                .basic_publish(reply_exchange.as_str().into(), reply_key.as_str().into(), BasicPublishOptions::default(), &payload, reply_properties)
                .await?
                .await
        }
        .await;
        match published {
            Ok(confirmation) if !confirmation.is_nack() => {
                if let Err(e) = delivery.ack(BasicAckOptions::default()).await {
                    tracing::warn!(id = reply.id, error = %e, "reply sent but the request could not be acknowledged; it will be redelivered and answered again");
                }
            }
            // Left unacknowledged: the broker redelivers it after the reconnect.
            Ok(_) => tracing::warn!(id = reply.id, "the broker refused the reply"),
            Err(e) => tracing::warn!(id = reply.id, error = %e, "cannot publish the reply; it is sent again on redelivery"),
        }
    }
}

/// A call's answer as vCD's reply message.
fn reply(id: &str, answer: VcdAnswer) -> ApiReply {
    let headers = answer.headers.into_iter().map(|(k, v)| (k, serde_json::Value::from(v))).collect();
    ApiReply::new(id, answer.status, headers, &answer.body)
}
