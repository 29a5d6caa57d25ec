//! Wires the platform together and serves it.

use crate::async_calls::AsyncCalls;
use crate::async_queue::BrokerQueue;
use crate::builder::Builder;
use crate::config::Config;
use crate::engine::Engine;
use crate::gateway::Gateway;
use crate::pool::Pool;
use crate::runner::Sandbox;
use crate::runtimes::Runtimes;
use crate::service::Service;
use crate::sessions::Sessions;
use crate::state::AppState;
use crate::store::Store;
use crate::{api, invoke, reconciler};
use app::model::Language;
use app::platform::SharedPlatform;
use app::{shell, App};
use axum::extract::DefaultBodyLimit;
use axum::{Router, ServiceExt as _};
use leptos::config::{Env, LeptosOptions};
use leptos::prelude::provide_context;
use leptos_axum::{generate_route_list, LeptosRoutes};
use std::sync::Arc;
use std::time::Duration;
use tower_http::trace::TraceLayer;
use tower_sessions::{cookie::SameSite, Expiry, SessionManagerLayer};

/// A platform ready to serve: its front (function calls, then the portal's router), the
/// service behind it, and the bound listener.
pub struct Ready {
    pub front: invoke::Front,
    pub service: Service,
    pub listener: tokio::net::TcpListener,
    /// The provider admin's password when it was generated at this start.
    pub generated_admin_password: Option<String>,
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

/// Connects everything, runs the start-up reconcile pass and binds the listener.
pub async fn build(config: Config) -> Result<Ready, String> {
    std::fs::create_dir_all(&config.data_dir)
        .map_err(|e| format!("cannot create data folder {}: {e}", config.data_dir.display()))?;
    let socket_root = std::fs::canonicalize(&config.data_dir)
        .map_err(|e| format!("data folder {}: {e}", config.data_dir.display()))?
        .join("sockets");
    std::fs::create_dir_all(&socket_root).map_err(|e| format!("cannot create {}: {e}", socket_root.display()))?;

    let url = config.database_url();
    let store = Store::connect(&url).await.map_err(|e| format!("database {}: {e}", redact(&url)))?;
    let installation = store.installation_id().await.map_err(|e| format!("database: {e}"))?;
    let engine = Engine::connect(config.docker_host.as_deref(), &installation).await.map_err(|e| {
        format!("cannot reach the Docker engine ({e}); start dockerd or set DOCKER_HOST")
    })?;

    let config = Arc::new(config);
    let runtimes = Arc::new(Runtimes::new(config.nodejs_base_image.clone(), config.python_base_image.clone()));
    let sandbox = Sandbox {
        nano_cpus: (config.cpus * 1e9) as i64,
        pids_limit: config.pids_limit,
        tmp_mb: config.tmp_mb,
        socket_root,
    };
    let pool = Arc::new(Pool::new(engine.clone(), sandbox, Duration::from_secs(config.idle_secs), config.queue_per_instance.max(1)));
    pool.spawn_reaper();
    let metrics = Arc::new(crate::metrics::Metrics::default());
    let gateway = Gateway::new(store.clone(), pool.clone(), metrics.clone());
    let lookups = Arc::new(crate::service::Lookups::default());
    let builder = Builder::start(store.clone(), engine.clone(), runtimes.clone(), metrics, pool, {
        let lookups = lookups.clone();
        Arc::new(move |v| {
            tracing::info!(function_id = v.function_id, version = v.version, "version ready");
            lookups.routes_changed();
        })
    });
    // With AMQP_URL, RabbitMQ queues asynchronous calls; without it, the database does.
    let broker_queue = config.vcd.amqp_url.as_ref().map(|url| BrokerQueue::new(url.0.clone(), &config.async_queue_prefix));
    let async_calls = AsyncCalls::start(store.clone(), gateway.clone(), broker_queue);
    let service = Service {
        store: store.clone(),
        config: config.clone(),
        builder,
        gateway,
        engine: engine.clone(),
        async_calls,
        lookups,
        vcd: Arc::default(),
    };

    let generated_admin_password = service.bootstrap_admin().await.map_err(|e| format!("cannot create admin: {e}"))?;
    let started = crate::store::now_ms();
    match reconciler::reconcile(&service, started, true).await {
        Ok(report) => tracing::info!(?report, "start-up reconcile done"),
        Err(e) => tracing::warn!(error = %e, "start-up reconcile failed; the timer will retry"),
    }
    reconciler::spawn(service.clone(), Duration::from_secs(config.reconcile_secs.max(1)));
    // After the start-up pass, so the containers it makes are never taken for orphans.
    service.gateway.pool().spawn_maintainer(store.clone(), Duration::from_secs(1));
    service.async_calls.start_consumers(&service.lookups);
    let vcd = crate::vcd::Vcd::start(&service)?;
    let _ = service.vcd.set(vcd);
    prepare_base_images(engine, runtimes);

    let sessions = Sessions::open(&store.native).await.map_err(|e| format!("session store: {e}"))?;
    sessions.spawn_cleanup();
    let session_layer = SessionManagerLayer::new(sessions)
        .with_name("vcd_faas_session")
        .with_http_only(true)
        .with_same_site(SameSite::Lax)
        .with_secure(config.secure_cookies)
        .with_expiry(Expiry::OnInactivity(time::Duration::hours(8)));

    let leptos_options = leptos_options(&config);
    let state = AppState { leptos_options: leptos_options.clone(), service: service.clone() };
    let platform: SharedPlatform = Arc::new(service.clone());
    let context = move || provide_context(platform.clone());
    let routes = generate_route_list(App);
    let router = Router::new()
        .merge(api::router())
        .leptos_routes_with_context(&state, routes, context.clone(), {
            let options = leptos_options.clone();
            move || shell(options.clone())
        })
        .fallback(leptos_axum::file_and_error_handler_with_context::<AppState, _>(context, shell))
        // The portal's forms are URL-encoded: a Test Function body as large as a route takes
        // grows by up to three times (the platform then checks its decoded size).
        .layer(DefaultBodyLimit::max(3 * config.max_body_bytes + 1024 * 1024))
        .layer(session_layer)
        .with_state(state)
        .layer(TraceLayer::new_for_http());
    let front = invoke::Front::new(service.clone(), router);

    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|e| format!("cannot listen on {} ({e}); set LEPTOS_SITE_ADDR to a free address", config.listen))?;
    Ok(Ready { front, service, listener, generated_admin_password })
}

/// Builds missing runtime base images in the background so the first function builds fast.
fn prepare_base_images(engine: Engine, runtimes: Arc<Runtimes>) {
    tokio::spawn(async move {
        for language in Language::ALL {
            let progress = |line: &str| tracing::info!(target: "vcd_faas::base_image", "{}", line.trim_end());
            if let Err(e) = runtimes.ensure_base(&engine, language, &progress).await {
                tracing::warn!(language = language.as_str(), error = %e, "base image not ready");
            }
        }
    });
}

/// Makes sure every language's base image exists, printing progress.
pub async fn prepare_images(config: &Config) -> Result<(), String> {
    let engine = Engine::connect(config.docker_host.as_deref(), "")
        .await
        .map_err(|e| format!("cannot reach the Docker engine ({e}); start dockerd or set DOCKER_HOST"))?;
    let runtimes = Runtimes::new(config.nodejs_base_image.clone(), config.python_base_image.clone());
    for language in Language::ALL {
        let progress = |line: &str| print!("  {line}");
        runtimes.ensure_base(&engine, language, &progress).await?;
        println!("{} base image: {}", language.label(), runtimes.base_image(language));
    }
    Ok(())
}

/// `vcd-faas vcd unregister`: disables and deletes the extension service in vCD.
pub async fn unregister_from_vcd(config: &Config) -> Result<(), String> {
    let extension = crate::vcd::registration::ExtensionService::new(config.vcd.clone())?;
    if extension.unregister().await? {
        println!("extension service {:?} disabled and deleted in vCD", config.vcd.vcd_service_name);
    } else {
        println!("vCD has no extension service {:?}; nothing to do", config.vcd.vcd_service_name);
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
    let served = axum::serve(ready.listener, ready.front.into_make_service()).with_graceful_shutdown(shutdown_signal()).await;
    // Warm containers do not outlive a clean stop (after a crash the reconciler removes them).
    ready.service.gateway.pool().drain().await;
    ready.service.gateway.flush_records().await;
    served.map_err(|e| e.to_string())
}

async fn shutdown_signal() {
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
