//! Wires the platform together and serves it.

use crate::build::builder::Builder;
use crate::build::deps::{InstallSettings, Installer};
use crate::build::runtimes::Runtimes;
use crate::calls::async_broker::BrokerQueue;
use crate::calls::async_worker::Worker;
use crate::calls::deferred::AsyncCalls;
use crate::calls::directory::Directory;
use crate::calls::dispatch::Dispatcher;
use crate::calls::gateway::Gateway;
use crate::cluster::forward::{Capacity, Cluster};
use crate::config::Config;
use crate::http::sessions::Sessions;
use crate::http::state::AppState;
use crate::ops::links::{BrokerLink, Links};
use crate::ops::reconciler::{self, Reconciler};
use crate::platform::{LocalOnly, Service, VcdStatus};
use crate::run::egress::EgressPolicy;
use crate::run::engine::Engine;
use crate::run::pool::Pool;
use crate::run::runner::Sandbox;
use crate::schedules::scheduler::SchedulerHandle;
use crate::secrets::{KeySource, SecretKey};
use crate::store::Store;
use crate::vcd::Vcd;
use app::model::Language;
use axum::ServiceExt as _;
use leptos::config::{Env, LeptosOptions};
use std::sync::Arc;
use std::time::Duration;

/// A platform ready to serve: its HTTP front, its state, and the bound listener.
pub struct Ready {
    pub front: crate::http::front::Front,
    pub state: AppState,
    pub listener: tokio::net::TcpListener,
    /// The provider admin's password when it was generated at this start.
    pub generated_admin_password: Option<String>,
    /// Runs scheduled functions' ticks; stopped before the pool drains.
    pub scheduler: SchedulerHandle,
}

/// How `assemble` reaches Docker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Docker {
    /// Connect and agree on the API version (serving).
    Connect,
    /// Do not talk to the engine until a call needs it (tests of the rules, without an engine).
    Unconnected,
    /// No engine at all: a front without a worker.
    Absent,
}

/// The platform's parts wired together, and what `build` starts after its start-up pass.
pub struct Assembled {
    pub state: AppState,
    reconciler: Reconciler,
    async_calls: Arc<AsyncCalls>,
    runtimes: Arc<Runtimes>,
}

pub fn leptos_options(config: &Config) -> LeptosOptions {
    let env = match std::env::var("LEPTOS_ENV").as_deref() {
        Ok("DEV") | Ok("dev") | Ok("development") => Env::DEV,
        _ => Env::PROD,
    };
    LeptosOptions::builder()
        .output_name(std::env::var("LEPTOS_OUTPUT_NAME").unwrap_or_else(|_| "vcd-faas".into()))
        .site_root(config.site_root.clone())
        .site_pkg_dir(std::env::var("LEPTOS_SITE_PKG_DIR").unwrap_or_else(|_| "pkg".into()))
        .site_addr(config.listen)
        .env(env)
        .build()
}

/// What runs function containers, in a front's local worker and in a node alike.
pub struct WorkerParts {
    pub store: Store,
    pub engine: Engine,
    pub secret_key: SecretKey,
    pub runtimes: Arc<Runtimes>,
    pub metrics: Arc<crate::metrics::Metrics>,
    pub pool: Arc<Pool>,
}

/// Connects the database and Docker (when asked), registers this process among those sharing
/// the database, and makes the warm pool (its idle containers reaped).
pub async fn open_worker(config: &Config, docker: Docker) -> Result<WorkerParts, String> {
    std::fs::create_dir_all(&config.data_dir)
        .map_err(|e| format!("cannot create data folder {}: {e}", config.data_dir.display()))?;
    let socket_root = std::fs::canonicalize(&config.data_dir)
        .map_err(|e| format!("data folder {}: {e}", config.data_dir.display()))?
        .join("sockets");
    std::fs::create_dir_all(&socket_root).map_err(|e| format!("cannot create {}: {e}", socket_root.display()))?;

    let url = config.database_url();
    let store = Store::connect(&url).await.map_err(|e| format!("database {}: {e}", redact(&url)))?;
    let installation = store.installation_id().await.map_err(|e| format!("database: {e}"))?;
    let secret_key = secret_key(config, &store).await?;
    let docker_host = config.docker_host.as_deref();
    let engine = match docker {
        Docker::Connect => Engine::connect(docker_host, &installation).await,
        Docker::Unconnected => Engine::unconnected(docker_host, &installation),
        Docker::Absent => Ok(Engine::absent(&installation)),
    }
    .map_err(|e| format!("cannot reach the Docker engine ({e}); start dockerd or set DOCKER_HOST"))?;
    crate::ops::processes::join(&store, engine.process()).await?;

    let runtimes = Arc::new(Runtimes::new(config.nodejs_base_image.clone(), config.python_base_image.clone()));
    let metrics = Arc::new(crate::metrics::Metrics::default());
    let sandbox = Sandbox {
        nano_cpus: (config.cpus * 1e9) as i64,
        pids_limit: config.pids_limit,
        tmp_mb: config.tmp_mb,
        socket_root,
        egress: EgressPolicy::new(store.clone(), metrics.clone()),
        gvisor_runtime: config.gvisor_runtime.clone(),
    };
    // Only a process that runs calls with a real engine keeps cells.
    let stems = (config.stem_cells > 0 && matches!(docker, Docker::Connect))
        .then(|| crate::run::stems::Stems::new(engine.clone(), sandbox.clone(), runtimes.clone(), config.stem_cells, config.default_memory_mb));
    let pool = Arc::new(Pool::new(engine.clone(), sandbox, Duration::from_secs(config.idle_secs), config.queue_per_instance.max(1)));
    pool.keep_prestarted_within(config.prestarted_mb);
    if let Some(stems) = stems {
        pool.keep_stem_cells(stems);
    }
    pool.spawn_reaper();
    Ok(WorkerParts { store, engine, secret_key, runtimes, metrics, pool })
}

/// Connects the database (and Docker, when asked), wires every part, and starts what serves
/// calls: the pool, the builder, the vCD consumers. Nothing here needs a running engine.
pub async fn assemble(config: Config, docker: Docker) -> Result<Assembled, String> {
    // A front without a worker never talks to an engine; its host need not run one.
    let docker = if config.cluster.local_worker { docker } else { Docker::Absent };
    let WorkerParts { store, engine, secret_key, runtimes, metrics, pool } = open_worker(&config, docker).await?;
    let config = Arc::new(config);
    let local = config.cluster.local_worker.then(|| Capacity::of(&config.cluster));
    let cluster = Cluster::start(store.clone(), &config.cluster, local).await?.map(|c| c as Arc<dyn crate::calls::gateway::Placement>);
    let gateway = Gateway::new(store.clone(), pool.clone(), metrics.clone(), secret_key.clone(), cluster);
    let directory = Arc::new(Directory::new(store.clone()));
    let installer = Arc::new(Installer::new(install_settings(&config), runtimes.clone()));
    directory.spawn_follower();
    let builder = if config.cluster.local_worker {
        Builder::start(store.clone(), engine.clone(), runtimes.clone(), installer, metrics, pool, "the front".into(), {
            let directory = directory.clone();
            Arc::new(move |v| {
                tracing::info!(function_id = v.function_id, version = v.version, "version ready");
                directory.routes_changed();
            })
        })
    } else {
        Builder::elsewhere(installer)
    };
    // With AMQP_URL, RabbitMQ queues asynchronous calls; without it, the database does.
    let broker_queue = config.vcd.amqp_url.as_ref().map(|url| BrokerQueue::new(url.0.clone(), &config.async_queue_prefix));
    let async_calls = Arc::new(AsyncCalls::new(store.clone(), broker_queue));
    let dispatcher = Dispatcher::new(directory.clone(), store.clone(), gateway.clone(), async_calls.clone(), config.max_body_bytes);

    let vcd_configured = config.vcd.vcd_url.is_some() || config.vcd.amqp_url.is_some();
    let vcd = if vcd_configured { Some(Arc::new(Vcd::start(&config.vcd, &dispatcher, &store).await?)) } else { None };
    let mut brokers = vec![BrokerLink {
        name: "RabbitMQ: async calls",
        state: async_calls.broker.as_ref().map(|b| b.link.clone()).ok_or("AMQP_URL is not set: async calls queue in the database"),
    }];
    match &vcd {
        Some(vcd) => brokers.extend(vcd.broker_links()),
        None => brokers.push(BrokerLink {
            name: "RabbitMQ: vCD API calls",
            state: Err("AMQP_URL is not set: functions are served on the platform's own routes"),
        }),
    }
    let links = Arc::new(Links { engine: config.cluster.local_worker.then(|| engine.clone()), store: store.clone(), brokers });
    let vcd_status: Arc<dyn VcdStatus> = match &vcd {
        Some(vcd) => vcd.clone(),
        None => Arc::new(LocalOnly),
    };
    let service = Service::new(store.clone(), config.clone(), builder.clone(), dispatcher, links, vcd_status, secret_key);
    let reconciler = service.reconciler();
    let sessions = Sessions::open(&store.native).await.map_err(|e| format!("session store: {e}"))?;
    let state = AppState { leptos_options: leptos_options(&config), service, sessions, async_calls: async_calls.clone(), vcd };
    Ok(Assembled { state, reconciler, async_calls, runtimes })
}

/// Connects everything, runs the start-up reconcile pass, starts the background work and
/// binds the listener.
pub async fn build(config: Config) -> Result<Ready, String> {
    let Assembled { state, reconciler, async_calls, runtimes } = assemble(config, Docker::Connect).await?;
    let service = &state.service;
    let config = service.config().clone();
    let generated_admin_password = service.bootstrap_admin().await.map_err(|e| format!("cannot create admin: {e}"))?;
    let started = crate::store::now_ms();
    match reconciler::reconcile(&reconciler, started, true).await {
        Ok(report) => tracing::info!(?report, "start-up reconcile done"),
        Err(e) => tracing::warn!(error = %e, "start-up reconcile failed; the timer will retry"),
    }
    let gateway = reconciler.gateway.clone();
    let builder = reconciler.builder.clone();
    reconciler::spawn(reconciler, Duration::from_secs(config.reconcile_secs.max(1)));
    // After the start-up pass, so the containers it makes are never taken for orphans. A
    // front without a local worker keeps no containers.
    if config.cluster.local_worker {
        gateway.pool().spawn_maintainer(service.store().clone(), Duration::from_secs(1));
    }
    builder.spawn_poller(service.store().clone(), gateway.pool().engine().process().to_string(), Duration::from_secs(1));
    // After it too: it requeued the calls a stop interrupted.
    let worker = Worker::new(async_calls.clone(), service.calls().clone(), gateway.pool().engine().process().to_string());
    worker.spawn_recovery();
    match async_calls.broker {
        Some(_) => crate::calls::async_consumers::start(worker, service.calls().directory().subscribe()),
        None => drop(tokio::spawn(worker.work())),
    }
    // Every process runs one: the database lets one of them claim each tick.
    let scheduler = crate::schedules::scheduler::start(service.store().clone(), service.calls().clone());
    if config.cluster.local_worker {
        prepare_base_images(gateway.pool().engine().clone(), runtimes);
    }
    state.sessions.spawn_cleanup();

    let front = crate::http::front(state.clone());
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|e| format!("cannot listen on {} ({e}); set LEPTOS_SITE_ADDR to a free address", config.listen))?;
    if let Ok(addr) = listener.local_addr() {
        gateway.pool().sandbox().egress.platform_listens_on(addr);
    }
    Ok(Ready { front, state, listener, generated_admin_password, scheduler })
}

/// Builds missing runtime base images in the background so the first function builds fast.
fn prepare_base_images(engine: Engine, runtimes: Arc<Runtimes>) {
    tokio::spawn(async move {
        for &language in Language::ALL {
            let progress = |line: &str| tracing::info!(target: "vcd_faas::base_image", "{}", line.trim_end());
            if let Err(e) = runtimes.ensure_base(&engine, language, &progress).await {
                tracing::warn!(language = language.as_str(), error = %e, "base image not ready");
            }
        }
    });
}

/// The key of functions' secrets, checked against the database's check value (made now when
/// the database has none).
async fn secret_key(config: &Config, store: &Store) -> Result<SecretKey, String> {
    let check = store.secret_key_check().await.map_err(|e| format!("database: {e}"))?;
    let setting = config.secret_key.as_ref().map(|s| s.0.as_str());
    let (key, source) = SecretKey::load(setting, &config.data_dir, check.is_none())?;
    match check {
        Some(check) => key.verify(&check)?,
        None => store.set_secret_key_check(&key.check_value()).await.map_err(|e| format!("database: {e}"))?,
    }
    if let KeySource::Created(path) = source {
        tracing::info!(path = %path.display(), "made the key functions' secrets are sealed with: back it up with the database");
    }
    Ok(key)
}

pub fn install_settings(config: &Config) -> InstallSettings {
    InstallSettings {
        npm_registry: config.npm_registry.clone(),
        pip_index_url: config.pip_index_url.clone(),
        timeout: Duration::from_secs(config.build_timeout_secs),
        memory_mb: config.build_memory_mb,
        output_bytes: config.build_output_mb * 1024 * 1024,
        work_root: config.data_dir.join("installs"),
    }
}

/// Makes sure every language's base image, and the image its dependency installs run in,
/// exists, printing progress.
pub async fn prepare_images(config: &Config) -> Result<(), String> {
    let engine = Engine::connect(config.docker_host.as_deref(), "")
        .await
        .map_err(|e| format!("cannot reach the Docker engine ({e}); start dockerd or set DOCKER_HOST"))?;
    let runtimes = Runtimes::new(config.nodejs_base_image.clone(), config.python_base_image.clone());
    for &language in Language::ALL {
        let progress = |line: &str| print!("  {line}");
        runtimes.ensure_base(&engine, language, &progress).await?;
        runtimes.ensure_builder(&engine, language, &progress).await?;
        println!("{} base image: {}, install image: {}", language.label(), runtimes.base_image(language), runtimes.builder_image(language));
    }
    Ok(())
}

/// `vcd-faas vcd unregister`: disables and deletes the AMQP extension service and the MQTT
/// API extension in vCD, whichever exist (a platform may have switched transports).
pub async fn unregister_from_vcd(config: &Config) -> Result<(), String> {
    let service = crate::vcd::registration::ExtensionService::new(config.vcd.clone())?;
    if service.unregister().await? {
        println!("extension service {:?} disabled and deleted in vCD", config.vcd.vcd_service_name);
    } else {
        println!("vCD has no extension service {:?}; nothing to do", config.vcd.vcd_service_name);
    }
    let extension = crate::vcd::mqtt_extension::MqttExtension::new(&config.vcd)?;
    match extension.unregister().await {
        Ok(true) => println!("MQTT API extension {} disabled and deleted in vCD", extension.urn()),
        Ok(false) => println!("vCD has no MQTT API extension {}; nothing to do", extension.urn()),
        // A vCD before 10.2 has no cloudapi extensions at all.
        Err(e) => println!("the MQTT API extension {} could not be removed: {e}", extension.urn()),
    }
    Ok(())
}

fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => format!("{}://…@{}", &url[..scheme], &url[at + 1..]),
        _ => url.to_string(),
    }
}

pub async fn serve(config: Config) -> Result<(), String> {
    let ready = build(config).await?;
    let addr = ready.listener.local_addr().map_err(|e| e.to_string())?;
    if let Some(password) = &ready.generated_admin_password {
        println!("\n  Provider admin created — sign in at http://{addr}/login");
        println!("    org: provider   username: admin   password: {password}");
        println!("  (shown once; set VCD_FAAS_ADMIN_PASSWORD to choose it)\n");
    }
    println!("vcd-faas listening on http://{addr}");
    let served = axum::serve(ready.listener, ready.front.into_make_service_with_connect_info::<std::net::SocketAddr>()).with_graceful_shutdown(shutdown_signal()).await;
    // No tick is claimed from here on; the calls of those claimed end before the pool drains.
    ready.scheduler.stop().await;
    // Warm containers do not outlive a clean stop (after a crash the reconciler removes them).
    let gateway = ready.state.service.calls().gateway();
    gateway.pool().drain().await;
    gateway.flush_records().await;
    crate::ops::processes::leave(ready.state.service.store(), gateway.pool().engine().process()).await;
    served.map_err(|e| e.to_string())
}

pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let terminate = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            s.recv().await;
        }
    };
    tokio::select! { _ = ctrl_c => {}, _ = terminate => {} }
}
