//! The services the platform depends on, and whether each answers now: what the provider
//! dashboard and `GET /api/v1/links` show.

use crate::amqp::LinkState;
use crate::run::engine::Engine;
use crate::store::{Dialect, Store};
use app::model::ServiceLink;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

/// Longest wait for the engine or the database to answer.
const ANSWER_WITHIN: Duration = Duration::from_secs(2);

/// A broker link the platform keeps, or why it keeps none.
pub struct BrokerLink {
    pub name: &'static str,
    pub state: Result<Arc<LinkState>, &'static str>,
}

/// Everything the platform depends on, to be checked when asked.
pub struct Links {
    /// `None` in a front without a worker: it runs no containers.
    pub engine: Option<Engine>,
    pub store: Store,
    pub brokers: Vec<BrokerLink>,
}

impl Links {
    pub async fn check(&self) -> Vec<ServiceLink> {
        let database = answers(self.store.ping()).await;
        let database_name = match self.store.dialect {
            Dialect::Sqlite => "SQLite",
            Dialect::Postgres => "PostgreSQL",
        };
        let engine = match &self.engine {
            Some(engine) => link("Docker engine", answers(engine.ping()).await, "runs the function containers"),
            None => off("Docker engine", "this front runs no containers (VCD_FAAS_LOCAL_WORKER=false): the nodes' engines do"),
        };
        let mut links = vec![engine, link(&format!("Database ({database_name})"), database, "functions, versions, call records, async calls")];
        for broker in &self.brokers {
            links.push(match &broker.state {
                Ok(state) => broker_link(broker.name, state),
                Err(why) => off(broker.name, why),
            });
        }
        links
    }
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
