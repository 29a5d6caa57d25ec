//! API calls that vCD forwards over AMQP: each message on the extension's queue is one HTTP
//! request to `/api/org/{org}/{name}[/…]`, answered with exactly one reply to the exchange and
//! routing key the message names. The message is acknowledged only after its reply is
//! published; a redelivered request whose `id` was already answered gets the same reply again
//! without running twice. Messages that cannot be answered go to the dead-letter queue.

use super::amqp_util::header_text;
use crate::amqp::{self as broker, LinkState};
use super::messages::{org_uuid, parse_request, ApiReply, ApiRequest, SecurityContext};
use crate::calls::dispatch::{Call, Credentials, Delivery, Dispatcher};
use crate::calls::request::{parse_route, CallRequest, CallResponse, CallTrigger};
use crate::config::VcdConfig;
use futures_util::StreamExt;
use lapin::options::*;
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Connection};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use tokio::sync::OnceCell;

/// Answers remembered for redeliveries.
const REMEMBERED_ANSWERS: usize = 10_000;

/// Headers of vCD's request that the function does not get.
const DROPPED_HEADERS: [&str; 4] = ["authorization", "x-vcloud-authorization", "cookie", "content-length"];

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
                let this = self.clone();
                let answer = self.answers.once(&id, async move {
                    // A panic in a call becomes a 500, never a request left unanswered.
                    let id = request.id.clone();
                    tokio::spawn(async move { this.answer(request, context, body).await })
                        .await
                        .unwrap_or_else(|_| ApiReply::error(&id, 500, "internal error"))
                });
                answer.await
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

    /// Runs the call the request asks for and says how it went.
    async fn answer(&self, request: ApiRequest, context: SecurityContext, body: Vec<u8>) -> ApiReply {
        let id = request.id.as_str();
        let (function, path) = match parse_route(&request.request_uri) {
            Some(Ok(route)) => route,
            Some(Err(rejection)) => return reply(id, rejection.into_response()),
            None => return ApiReply::error(id, 404, &format!("no function at {}: routes are /api/org/{{org}}/{{name}}", request.request_uri)),
        };
        let mut headers: Vec<(String, String)> = request
            .header_pairs()
            .into_iter()
            .filter(|(k, _)| !DROPPED_HEADERS.contains(&k.to_ascii_lowercase().as_str()))
            .collect();
        // The function may want to know who called; vCD vouches for both.
        headers.push(("x-vcd-org".into(), context.org.clone()));
        headers.push(("x-vcd-user".into(), context.user.clone()));
        let call = Call {
            function,
            request: CallRequest {
                method: request.method.to_ascii_uppercase(),
                path,
                query: request.query_string.clone().unwrap_or_default(),
                headers,
                body: body.into(),
                trigger: CallTrigger::Vcd,
            },
            credentials: Credentials::VcdOrg(org_uuid(&context.org)),
            delivery: Delivery::AsAsked,
        };
        let answer = match self.dispatcher.dispatch(call).await {
            Ok(dispatched) => dispatched.into_response(),
            Err(rejection) => rejection.into_response(),
        };
        reply(id, answer)
    }
}

/// A call's answer as vCD's reply message.
fn reply(id: &str, answer: CallResponse) -> ApiReply {
    let headers = answer
        .headers
        .iter()
        .filter(|(k, _)| !k.eq_ignore_ascii_case("content-length") && !k.eq_ignore_ascii_case("transfer-encoding"))
        .map(|(k, v)| (k.clone(), serde_json::Value::from(v.as_str())))
        .collect();
    ApiReply::new(id, answer.status, headers, &answer.body)
}

/// The replies of recent requests by `id`: a request runs once, however often it arrives.
#[derive(Default)]
struct Answers {
    inner: Mutex<(HashMap<String, Arc<OnceCell<ApiReply>>>, VecDeque<String>)>,
}

impl Answers {
    /// The reply to request `id`: computed by `run` the first time, the same reply after.
    async fn once(&self, id: &str, run: impl std::future::Future<Output = ApiReply>) -> ApiReply {
        let cell = {
            let mut guard = self.inner.lock().unwrap();
            let (cells, order) = &mut *guard;
            if let Some(cell) = cells.get(id) {
                cell.clone()
            } else {
                let cell = Arc::new(OnceCell::new());
                cells.insert(id.to_string(), cell.clone());
                order.push_back(id.to_string());
                if order.len() > REMEMBERED_ANSWERS {
                    if let Some(oldest) = order.pop_front() {
                        cells.remove(&oldest);
                    }
                }
                cell
            }
        };
        cell.get_or_init(|| run).await.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_request_id_runs_once() {
        let answers = Answers::default();
        let runs = std::sync::atomic::AtomicUsize::new(0);
        for _ in 0..3 {
            let reply = answers
                .once("r1", async {
                    runs.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    ApiReply::error("r1", 418, "x")
                })
                .await;
            assert_eq!(reply.status_code, 418);
        }
        assert_eq!(runs.load(std::sync::atomic::Ordering::SeqCst), 1);
    }
}
