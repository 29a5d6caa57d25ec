//! The services the platform depends on, and whether each answers now: what the provider
//! dashboard and `GET /api/v1/links` show.

use crate::amqp::LinkState;
use crate::service::Service;
use crate::store::Dialect;
use app::model::ServiceLink;
use std::future::Future;
use std::time::Duration;

/// Longest wait for the engine or the database to answer.
const ANSWER_WITHIN: Duration = Duration::from_secs(2);

pub async fn service_links(service: &Service) -> Vec<ServiceLink> {
    let engine = answers(service.engine.ping()).await;
    let database = answers(service.store.ping()).await;
    let database_name = match service.store.dialect {
        Dialect::Sqlite => "SQLite",
        Dialect::Postgres => "PostgreSQL",
    };
    let mut links = vec![
        link("Docker engine", engine, "runs the function containers"),
        link(&format!("Database ({database_name})"), database, "functions, versions, call records, async calls"),
    ];
    links.push(match &service.async_calls.broker {
        Some(broker) => broker_link("RabbitMQ: async calls", &broker.link),
        None => off("RabbitMQ: async calls", "AMQP_URL is not set: async calls queue in the database"),
    });
    let vcd = service.vcd.get();
    match vcd.and_then(|v| v.api_calls.as_ref()) {
        Some(api_calls) => links.push(broker_link("RabbitMQ: vCD API calls", &api_calls.link)),
        None => links.push(off("RabbitMQ: vCD API calls", "AMQP_URL is not set: functions are served on the platform's own routes")),
    }
    if let Some(events) = vcd.and_then(|v| v.events.as_ref()) {
        links.push(broker_link("RabbitMQ: vCD events", &events.link));
    }
    links
}

/// Ok, or why it did not answer in time.
async fn answers<E: std::fmt::Display>(check: impl Future<Output = Result<(), E>>) -> Result<(), String> {
    match tokio::time::timeout(ANSWER_WITHIN, check).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("no answer within {} s", ANSWER_WITHIN.as_secs())),
    }
}

fn link(name: &str, answered: Result<(), String>, what: &str) -> ServiceLink {
    match answered {
        Ok(()) => ServiceLink { name: name.into(), state: "up".into(), detail: what.into() },
        Err(why) => ServiceLink { name: name.into(), state: "down".into(), detail: why },
    }
}

fn broker_link(name: &str, state: &LinkState) -> ServiceLink {
    if state.connected() {
        return ServiceLink { name: name.into(), state: "up".into(), detail: "consuming".into() };
    }
    let detail = match state.last_error() {
        Some(error) => format!("reconnecting: {error}"),
        None => "connecting".into(),
    };
    ServiceLink { name: name.into(), state: "down".into(), detail }
}

fn off(name: &str, why: &str) -> ServiceLink {
    ServiceLink { name: name.into(), state: "off".into(), detail: why.into() }
}
