//! Which broker carries vCD's API calls and events: `VCD_TRANSPORT`, with `auto` settled by
//! asking vCD its API version once at start-up.

use super::mqtt_extension::{parse_version, MQTT_FROM};
use super::rest::VcdClient;
use crate::config::{VcdConfig, VcdTransport};

#[derive(Debug, PartialEq, Eq)]
pub enum Transport {
    Amqp,
    /// vCD's MQTT broker at this address.
    Mqtt { url: String },
}

pub async fn choose(settings: &VcdConfig) -> Result<Transport, String> {
    match settings.vcd_transport {
        VcdTransport::Amqp => Ok(Transport::Amqp),
        VcdTransport::Mqtt => Ok(Transport::Mqtt { url: mqtt_url(settings)? }),
        VcdTransport::Auto => {
            if settings.vcd_url.is_none() {
                return Ok(Transport::Amqp);
            }
            let url = mqtt_url(settings)?;
            let version = VcdClient::new(settings)?
                .api_version()
                .await
                .map_err(|e| format!("VCD_TRANSPORT=auto asks vCD its API version at start-up, and could not: {e} (or set VCD_TRANSPORT=amqp or mqtt)"))?;
            let mqtt = parse_version(&version).is_some_and(|v| v >= MQTT_FROM);
            tracing::info!(version, transport = if mqtt { "mqtt" } else { "amqp" }, "vCD transport chosen");
            Ok(if mqtt { Transport::Mqtt { url } } else { Transport::Amqp })
        }
    }
}

/// `VCD_MQTT_URL`, else `wss://<VCD_URL's host and port>/messaging/mqtt`.
fn mqtt_url(settings: &VcdConfig) -> Result<String, String> {
    if let Some(url) = &settings.vcd_mqtt_url {
        return Ok(url.clone());
    }
    let vcd = settings.vcd_url.as_deref().ok_or("VCD_TRANSPORT=mqtt needs VCD_URL (and VCD_PASSWORD): the extension registers itself in vCD")?;
    let (scheme, rest) = vcd.split_once("://").ok_or_else(|| format!("VCD_URL {vcd:?} must start with https://"))?;
    let host = rest.split('/').next().unwrap_or(rest);
    let ws = if scheme == "http" { "ws" } else { "wss" };
    Ok(format!("{ws}://{host}/messaging/mqtt"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn settings(args: &[&str]) -> VcdConfig {
        crate::config::Config::parse_from(std::iter::once("vcd-faas").chain(args.iter().copied())).vcd
    }

    #[test]
    fn the_broker_address_follows_vcds() {
        assert_eq!(mqtt_url(&settings(&["--vcd-url", "https://vcd.example.com/"])).unwrap(), "wss://vcd.example.com/messaging/mqtt");
        assert_eq!(mqtt_url(&settings(&["--vcd-url", "http://127.0.0.1:8443"])).unwrap(), "ws://127.0.0.1:8443/messaging/mqtt");
        let own = settings(&["--vcd-url", "https://vcd", "--vcd-mqtt-url", "ws://127.0.0.1:9001/messaging/mqtt"]);
        assert_eq!(mqtt_url(&own).unwrap(), "ws://127.0.0.1:9001/messaging/mqtt");
        assert!(mqtt_url(&settings(&[])).unwrap_err().contains("VCD_URL"));
    }

    #[test]
    fn an_unknown_transport_names_the_allowed_ones() {
        let error = crate::config::Config::try_parse_from(["vcd-faas", "--vcd-transport", "foo"]).unwrap_err().to_string();
        assert!(error.contains("amqp") && error.contains("mqtt") && error.contains("auto"), "{error}");
    }
}
