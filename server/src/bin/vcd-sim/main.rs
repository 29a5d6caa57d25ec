//! vcd-sim: an emulated VMware Cloud Director cell for developing and testing vcd-faas without a
//! real vCD. It speaks the REST subset and the AMQP and MQTT formats described in
//! docs/vcd-protocol.md and vcd-mqtt.md, written from those documents alone (it shares no code with the platform),
//! so a misreading on either side shows up when the two talk.

mod amqp;
mod cloudapi;
mod forwarded;
mod front_door;
mod mqtt;
mod mqtt_front_door;
mod mqtt_gateway;
mod notifications;
mod page;
mod rest;
mod state;
mod xml;

use std::io::Write;
use std::net::SocketAddr;
use std::time::Duration;

use clap::Parser;

use crate::state::{SimState, Settings, SYSTEM_ORG};

#[derive(Parser, Debug)]
#[command(name = "vcd-sim", about = "An emulated VMware Cloud Director: REST login, extension services, API front door over AMQP and MQTT, notifications")]
struct Cli {
    /// Address to listen on (port 0 picks a free port; the bound address is printed).
    #[arg(long, env = "VCD_SIM_LISTEN", default_value = "127.0.0.1:8443")]
    listen: SocketAddr,
    /// The AMQP broker vCD and the extensions share.
    #[arg(long, env = "VCD_SIM_AMQP_URL", default_value = "amqp://guest:guest@127.0.0.1:5672/%2f")]
    amqp_url: String,
    /// vCD's AmqpPrefix: notifications go to the topic exchange `<prefix>.notifications20`.
    #[arg(long, env = "VCD_SIM_PREFIX", default_value = "vcd")]
    prefix: String,
    /// The reply exchange vCD creates for all extension services (direct, durable).
    #[arg(long, env = "VCD_SIM_REPLY_EXCHANGE", default_value = "vcd-sim.reply")]
    reply_exchange: String,
    /// How long the front door waits for an extension's reply before answering 504.
    #[arg(long, env = "VCD_SIM_REPLY_TIMEOUT_SECS", default_value_t = 30)]
    reply_timeout_secs: u64,
    #[arg(long, env = "VCD_SIM_ADMIN_USER", default_value = "administrator")]
    admin_user: String,
    #[arg(long, env = "VCD_SIM_ADMIN_PASSWORD", default_value = "vmware", hide_env_values = true)]
    admin_password: String,
    /// Idle time after which a session expires.
    #[arg(long, env = "VCD_SIM_SESSION_TTL_SECS", default_value_t = 1800)]
    session_ttl_secs: u64,
    /// Supported API versions, comma separated [default: 33.0,34.0,35.0,36.0,37.0, or 31.0,32.0
    /// with --legacy-only].
    #[arg(long, env = "VCD_SIM_API_VERSIONS", value_delimiter = ',')]
    api_versions: Vec<String>,
    /// Behave like a vCD before API 33.0: no /cloudapi login, only POST /api/sessions (versions
    /// must all be below 33.0).
    #[arg(long, env = "VCD_SIM_LEGACY_ONLY")]
    legacy_only: bool,
    /// The MQTT broker behind the sim's `/messaging/mqtt` (a Mosquitto taking anonymous
    /// connections on loopback, `mqtt://127.0.0.1:1883`): the sim checks logins itself, as vCD
    /// does. Unset: no MQTT extensions or MQTT notifications.
    #[arg(long, env = "VCD_SIM_MQTT_URL")]
    mqtt_url: Option<String>,
    /// Lifetime of extension tokens in seconds; 0: long-lived (`expirationTimeUtc: null`).
    #[arg(long, env = "VCD_SIM_TOKEN_TTL_SECS", default_value_t = 0)]
    token_ttl_secs: u64,
    /// A tenant org that exists at start (repeatable; the System org always exists).
    #[arg(long = "org", env = "VCD_SIM_ORG", value_delimiter = ',')]
    orgs: Vec<String>,
}

fn major(version: &str) -> Option<u32> {
    version.split('.').next()?.parse().ok()
}

fn validate(cli: &Cli) -> Result<(), String> {
    if cli.api_versions.is_empty() || cli.api_versions.iter().any(|v| major(v).is_none()) {
        return Err(format!("--api-versions must be numbers like 37.0, got {:?}", cli.api_versions));
    }
    if cli.legacy_only && cli.api_versions.iter().any(|v| major(v).is_some_and(|m| m >= 33)) {
        return Err("--legacy-only emulates a vCD before API 33.0: give --api-versions below 33.0, e.g. 31.0,32.0".into());
    }
    if let Some(bad) = cli.orgs.iter().find(|o| o.is_empty() || o.contains(['@', ':', '/']) || o.as_str() == SYSTEM_ORG) {
        return Err(format!("--org '{bad}' is not a usable tenant org name"));
    }
    if cli.reply_timeout_secs == 0 {
        return Err("--reply-timeout-secs must be at least 1".into());
    }
    Ok(())
}

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .init();
    let mut cli = Cli::parse();
    if cli.api_versions.is_empty() {
        let defaults: &[&str] = if cli.legacy_only { &["31.0", "32.0"] } else { &["33.0", "34.0", "35.0", "36.0", "37.0"] };
        cli.api_versions = defaults.iter().map(|v| v.to_string()).collect();
    }
    if let Err(e) = validate(&cli) {
        eprintln!("vcd-sim: {e}");
        std::process::exit(2);
    }

    let listener = match tokio::net::TcpListener::bind(cli.listen).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("vcd-sim: cannot listen on {}: {e}", cli.listen);
            std::process::exit(1);
        }
    };
    let addr = listener.local_addr().expect("a bound listener has an address");

    let amqp = amqp::Amqp::new(cli.amqp_url.clone(), cli.reply_exchange.clone(), &cli.prefix);
    amqp.spawn();
    let mqtt = match &cli.mqtt_url {
        Some(url) => match mqtt::Mqtt::start(url) {
            Ok(m) => Some(m),
            Err(e) => {
                eprintln!("vcd-sim: {e}");
                std::process::exit(2);
            }
        },
        None => None,
    };
    let settings = Settings {
        api_versions: cli.api_versions.clone(),
        legacy_only: cli.legacy_only,
        admin_user: cli.admin_user.clone(),
        admin_password: cli.admin_password.clone(),
        session_ttl: Duration::from_secs(cli.session_ttl_secs),
        reply_timeout: Duration::from_secs(cli.reply_timeout_secs),
        token_ttl: (cli.token_ttl_secs > 0).then(|| Duration::from_secs(cli.token_ttl_secs)),
    };
    let state = SimState::new(settings, &cli.orgs, amqp, mqtt, addr);
    cloudapi::spawn_token_expiry(state.clone());
    for org in state.orgs() {
        tracing::info!(name = %org.name, id = %org.id, "org");
    }

    let app = rest::router()
        .merge(cloudapi::router())
        .merge(mqtt_gateway::router())
        .merge(page::router())
        .fallback(front_door::fallback)
        .with_state(state);

    // Tests and scripts read this one line to learn the bound address.
    println!("vcd-sim listening on http://{addr}");
    let _ = std::io::stdout().flush();

    let shutdown = async {
        let ctrl_c = tokio::signal::ctrl_c();
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    };
    // No Nagle delay on the small messages of `/messaging/mqtt`.
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        let _ = tcp.set_nodelay(true);
    });
    if let Err(e) = axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
        .with_graceful_shutdown(shutdown)
        .await
    {
        eprintln!("vcd-sim: server error: {e}");
        std::process::exit(1);
    }
}
