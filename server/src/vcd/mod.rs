//! VMware Cloud Director integration: the extension in vCD and its API filters
//! (`registration`), and, over the transport chosen (`transport`), API calls (AMQP:
//! `api_calls`; MQTT: `mqtt_api`) and event triggers from vCD's notifications (AMQP: `events`;
//! MQTT: `mqtt_events`). What a call or an event means is shared (`api_core`, `event_runs`).
//! Each part runs when its settings are present; none of them is needed for functions to be
//! callable over the platform's own HTTP routes.

mod amqp_util;
pub mod api_core;
pub mod api_calls;
pub mod api_filters;
pub mod event_runs;
pub mod events;
pub mod messages;
pub mod mqtt_api;
pub mod mqtt_events;
pub mod mqtt_extension;
pub mod mqtt_link;
pub mod mqtt_messages;
pub mod registration;
pub mod rest;
pub mod transport;
pub mod xml;

use crate::amqp as broker;
use crate::amqp::LinkState;
use crate::calls::dispatch::Dispatcher;
use crate::config::VcdConfig;
use crate::ops::links::BrokerLink;
use crate::platform::{LocalOnly, VcdStatus};
use crate::store::{FunctionRow, Store};
use app::model::Registration;
use lapin::options::ExchangeDeclareOptions;
use lapin::types::FieldTable;
use lapin::ExchangeKind;
use registration::{Extension, Registrar};
use std::sync::Arc;
use transport::Transport;

pub struct Vcd {
    pub registrar: Option<Arc<Registrar>>,
    pub api_calls: Option<Arc<api_calls::ApiCalls>>,
    pub events: Option<Arc<events::Events>>,
    pub mqtt_api: Option<Arc<mqtt_api::MqttApi>>,
    pub mqtt_events: Option<Arc<mqtt_events::MqttEvents>>,
}

impl Vcd {
    /// Starts what the settings ask for, over the transport they choose.
    pub async fn start(settings: &VcdConfig, dispatcher: &Dispatcher, store: &Store) -> Result<Vcd, String> {
        match transport::choose(settings).await? {
            Transport::Amqp => Self::start_amqp(settings, dispatcher, store),
            Transport::Mqtt { url } => Self::start_mqtt(settings, dispatcher, store, &url),
        }
    }

    /// `VCD_URL` needs `AMQP_URL`: vCD would publish calls to a broker nobody consumes from.
    fn start_amqp(settings: &VcdConfig, dispatcher: &Dispatcher, store: &Store) -> Result<Vcd, String> {
        let amqp_url = settings.amqp_url.as_ref().map(|s| s.0.clone());
        if settings.vcd_url.is_some() && amqp_url.is_none() {
            return Err("VCD_URL is set but AMQP_URL is not: set AMQP_URL to the RabbitMQ that vCD uses, or VCD_TRANSPORT=mqtt".into());
        }
        let registrar = match settings.vcd_url {
            Some(_) => {
                let extension = Extension::Amqp(Box::new(registration::ExtensionService::new(settings.clone())?));
                Some(Self::keep_registered(Registrar::new(store.clone(), extension), dispatcher))
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
        Ok(Vcd { registrar, api_calls, events, mqtt_api: None, mqtt_events: None })
    }

    /// The API extension and the events on vCD's MQTT broker; `AMQP_URL`, if set, serves only
    /// the platform's asynchronous calls.
    fn start_mqtt(settings: &VcdConfig, dispatcher: &Dispatcher, store: &Store, url: &str) -> Result<Vcd, String> {
        let client = Arc::new(rest::VcdClient::new(settings)?);
        let extension = Arc::new(mqtt_extension::MqttExtension::with_client(client.clone(), settings)?);
        let registrar = Self::keep_registered(Registrar::new(store.clone(), Extension::Mqtt(extension.clone())), dispatcher);
        let insecure = settings.vcd_insecure_tls;
        let vcd_waits = std::time::Duration::from_secs(settings.vcd_extensibility_timeout_secs);
        let mqtt_api = mqtt_api::MqttApi::start(extension, dispatcher.clone(), store.clone(), url, insecure, vcd_waits)?;
        let mqtt_events = mqtt_events::MqttEvents::start(client, &settings.vcd_user, dispatcher.clone(), store.clone(), url, insecure)?;
        Ok(Vcd { registrar: Some(registrar), api_calls: None, events: None, mqtt_api: Some(mqtt_api), mqtt_events: Some(mqtt_events) })
    }

    fn keep_registered(registrar: Registrar, dispatcher: &Dispatcher) -> Arc<Registrar> {
        let registrar = Arc::new(registrar);
        registrar.clone().spawn(dispatcher.directory().subscribe());
        registrar
    }

    /// The broker links the provider's dashboard shows.
    pub fn broker_links(&self) -> Vec<BrokerLink> {
        if let Some(api) = &self.mqtt_api {
            let mut links = vec![BrokerLink { name: "MQTT: vCD API calls", state: Ok(api.link.state.clone()) }];
            if let Some(events) = &self.mqtt_events {
                links.push(BrokerLink { name: "MQTT: vCD events", state: Ok(events.link.state.clone()) });
            }
            return links;
        }
        let mut links = vec![BrokerLink {
            name: "RabbitMQ: vCD API calls",
            state: self.api_calls.as_ref().map(|c| c.link.clone()).ok_or("AMQP_URL is not set: functions are served on the platform's own routes"),
        }];
        if let Some(events) = &self.events {
            links.push(BrokerLink { name: "RabbitMQ: vCD events", state: Ok(events.link.clone()) });
        }
        links
    }

    /// Prometheus lines: whether each link to vCD's brokers is connected.
    pub fn render_metrics(&self) -> String {
        let gauge = |out: &mut String, name: &str, help: &str, label: &str, links: &[(&str, Option<&Arc<LinkState>>)]| {
            if links.iter().all(|(_, l)| l.is_none()) {
                return;
            }
            out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} gauge\n"));
            for (which, link) in links {
                if let Some(link) = link {
                    out.push_str(&format!("{name}{{{label}=\"{which}\"}} {}\n", link.connected() as u8));
                }
            }
        };
        let mut out = String::new();
        let amqp = [("api", self.api_calls.as_ref().map(|c| &c.link)), ("events", self.events.as_ref().map(|e| &e.link))];
        gauge(&mut out, "vcdfaas_amqp_connected", "Whether a consumer of vCD's broker is connected (1) or reconnecting (0).", "consumer", &amqp);
        let mqtt = [("api", self.mqtt_api.as_ref().map(|a| &a.link.state)), ("events", self.mqtt_events.as_ref().map(|e| &e.link.state))];
        gauge(&mut out, "vcdfaas_mqtt_connected", "Whether a link to vCD's MQTT broker is connected (1) or reconnecting (0).", "link", &mqtt);
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
