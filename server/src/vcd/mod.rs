//! VMware Cloud Director integration: the extension service and its API filters in vCD
//! (`registration`), API calls arriving over AMQP (`api_calls`), and event triggers from vCD's
//! notifications (`events`). Each part runs when its settings are present; none of them is
//! needed for functions to be callable over the platform's own HTTP routes.

mod amqp_util;
pub mod api_core;
pub mod api_calls;
pub mod event_runs;
pub mod events;
pub mod messages;
pub mod registration;
pub mod rest;
pub mod xml;

use crate::amqp as broker;
use crate::calls::dispatch::Dispatcher;
use crate::config::VcdConfig;
use crate::ops::links::BrokerLink;
use crate::platform::{LocalOnly, VcdStatus};
use crate::store::{FunctionRow, Store};
use app::model::Registration;
use lapin::options::ExchangeDeclareOptions;
use lapin::types::FieldTable;
use lapin::ExchangeKind;
use std::sync::Arc;

pub struct Vcd {
    pub registrar: Option<Arc<registration::Registrar>>,
    pub api_calls: Option<Arc<api_calls::ApiCalls>>,
    pub events: Option<Arc<events::Events>>,
}

impl Vcd {
    /// Starts what the settings ask for. `VCD_URL` needs `AMQP_URL`: vCD would publish calls
    /// to a broker nobody consumes from.
    pub fn start(settings: &VcdConfig, dispatcher: &Dispatcher, store: &Store) -> Result<Vcd, String> {
        let amqp_url = settings.amqp_url.as_ref().map(|s| s.0.clone());
        if settings.vcd_url.is_some() && amqp_url.is_none() {
            return Err("VCD_URL is set but AMQP_URL is not: set AMQP_URL to the RabbitMQ that vCD uses".into());
        }
        let registrar = match settings.vcd_url {
            Some(_) => {
                let registrar = Arc::new(registration::Registrar::new(store.clone(), settings.clone())?);
                registrar.clone().spawn(dispatcher.directory().subscribe());
                Some(registrar)
            }
            None => None,
        };
        let (api_calls, events) = match amqp_url {
            Some(url) => (
                Some(api_calls::ApiCalls::start(dispatcher.clone(), settings.clone(), url.clone())),
                Some(events::Events::start(dispatcher.clone(), store.clone(), settings.clone(), url)),
            ),
            None => (None, None),
        };
        Ok(Vcd { registrar, api_calls, events })
    }

    /// The broker links the provider's dashboard shows.
    pub fn broker_links(&self) -> Vec<BrokerLink> {
        let mut links = vec![BrokerLink {
            name: "RabbitMQ: vCD API calls",
            state: self.api_calls.as_ref().map(|c| c.link.clone()).ok_or("AMQP_URL is not set: functions are served on the platform's own routes"),
        }];
        if let Some(events) = &self.events {
            links.push(BrokerLink { name: "RabbitMQ: vCD events", state: Ok(events.link.clone()) });
        }
        links
    }

    /// Prometheus lines: whether each AMQP consumer is connected to the broker.
    pub fn render_metrics(&self) -> String {
        let mut out = String::from(
            "# HELP vcdfaas_amqp_connected Whether a consumer of vCD's broker is connected (1) or reconnecting (0).\n\
             # TYPE vcdfaas_amqp_connected gauge\n",
        );
        let links = [("api", self.api_calls.as_ref().map(|c| &c.link)), ("events", self.events.as_ref().map(|e| &e.link))];
        for (consumer, link) in links {
            if let Some(link) = link {
                out.push_str(&format!("vcdfaas_amqp_connected{{consumer=\"{consumer}\"}} {}\n", link.connected() as u8));
            }
        }
        out
    }

}

impl VcdStatus for Vcd {
    /// A function's state in vCD, for the portal and the API.
    fn registration(&self, f: &FunctionRow) -> Registration {
        match &self.registrar {
            Some(registrar) => registrar.state_of(f),
            None => LocalOnly.registration(f),
        }
    }
}

/// Declares the extension's exchange (direct, durable): vCD publishes API calls to it and
/// expects the extension to have made it (vcd-protocol.md §1.2).
pub async fn declare_extension_exchange(settings: &VcdConfig) -> Result<(), String> {
    let url = settings.amqp_url.as_ref().ok_or("AMQP_URL is not set")?;
    let connection = broker::connect(&url.0, "vcd-faas registration").await?;
    let channel = connection.create_channel().await.map_err(broker::step("open a channel"))?;
    let options = ExchangeDeclareOptions { durable: true, ..Default::default() };
    let declared = channel
        .exchange_declare(settings.vcd_exchange.as_str().into(), ExchangeKind::Direct, options, FieldTable::default())
        .await
        .map_err(broker::step("declare the extension's exchange"));
    let _ = connection.close(200, "done".into()).await;
    declared
}
