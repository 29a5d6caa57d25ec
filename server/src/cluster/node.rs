//! `vcd-faas node`: a worker beside one Docker engine. It registers its address, beats every
//! second with what it holds, and runs the calls fronts forward to it in its own warm pool.
//! It builds the versions it claims first (see `Builder`); a version whose image it lacks it
//! rebuilds from the stored files before its first call here (once, whatever the calls waiting
//! for it). At start it removes what a predecessor on its engine left.

use super::forward::{cluster_needs_postgres, Capacity};
use super::placement::warm_share;
use crate::run::pool::{ClusterLimit, ShareOfLimit, WarmShare};
use crate::run::runner::CallError;
use super::wire::{self, CallHead, Held, ReplyHead, CALLS_PATH};
use crate::build::builder::{make_image, Builder, ImageTools};
use crate::build::deps::Installer;
use crate::calls::directory::Directory;
use crate::calls::gateway::Gateway;
use crate::calls::request::{CallRequest, CallTrigger};
use crate::config::Config;
use crate::ops::reconciler::Leftovers;
use crate::startup::{open_worker, Docker, WorkerParts};
use crate::store::{now_ms, Admission, NodeBeat, Store, Target};
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const HEARTBEAT: Duration = Duration::from_secs(1);
/// How often the node starts what its share of the functions' `min_instances` lacks.
const KEEP_WARM_EVERY: Duration = Duration::from_secs(1);
/// How often the node looks at the functions it holds containers of.
const FOLLOW_EVERY: Duration = Duration::from_secs(2);
/// How often the node looks for versions to build.
const BUILD_POLL: Duration = Duration::from_secs(1);
/// How often the node removes what no version owns any more on its engine.
const CLEAN_EVERY: Duration = Duration::from_secs(30);

struct Node {
    name: String,
    bearer: String,
    store: Store,
    gateway: Gateway,
    directory: Arc<Directory>,
    images: Arc<Images>,
    calls_in_flight: AtomicI64,
    calls_total: AtomicU64,
}

/// Checks what a node needs and serves as one until SIGTERM.
pub async fn run(config: Config) -> Result<(), String> {
    let cluster = &config.cluster;
    let secret = cluster.cluster_secret.clone().ok_or("`vcd-faas node` needs VCD_FAAS_CLUSTER_SECRET, the secret the fronts send")?;
    let address = cluster.node_addr.ok_or("`vcd-faas node` needs VCD_FAAS_NODE_ADDR, the address the fronts forward calls to (e.g. 169.254.77.2:7070)")?;
    if config.database_url().starts_with("sqlite:") {
        return Err(cluster_needs_postgres("`vcd-faas node`"));
    }
    let name = node_name(cluster.node_name.as_deref())?;
    let tls = match (&cluster.node_tls_cert, &cluster.node_tls_key) {
        (Some(cert), Some(key)) => Some(super::tls::node_acceptor(cert, key)?),
        (None, None) => None,
        _ => return Err("VCD_FAAS_NODE_TLS_CERT and VCD_FAAS_NODE_TLS_KEY go together: set both, or neither".into()),
    };
    let tls_on = tls.is_some();
    let WorkerParts { store, engine, secret_key, runtimes, metrics, pool } = open_worker(&config, Docker::Connect).await?;
    let installer = Arc::new(Installer::new(crate::startup::install_settings(&config), runtimes.clone()));

    let leftovers = Leftovers { store: &store, pool: &pool, installer: &installer, socket_dir: config.socket_dir() };
    let others = crate::ops::processes::live_others(&store, engine.process()).await?;
    let (containers, images) = leftovers.remove(&others, now_ms(), true).await?;
    tracing::info!(containers, images, "removed what an earlier process left on this engine");

    // Listening first: a node that cannot take calls is never listed as up.
    let listener = tokio::net::TcpListener::bind(address).await.map_err(|e| format!("cannot listen on {address} ({e}); set VCD_FAAS_NODE_ADDR to an address of this host"))?;
    let capacity = Capacity::of(cluster);
    store.register_node(&name, engine.process(), &address.to_string(), capacity.memory_mb, capacity.millicpus).await.map_err(|e| format!("database: {e}"))?;
    // A function's outbound connections never reach the node's own port.
    pool.sandbox().egress.platform_listens_on(address);
    let gateway = Gateway::new(store.clone(), pool.clone(), metrics.clone(), secret_key, None);
    let directory = Arc::new(Directory::new(store.clone()));
    let builder = Builder::start(store.clone(), engine.clone(), runtimes.clone(), installer.clone(), metrics, pool.clone(), format!("node {name}"), {
        let directory = directory.clone();
        Arc::new(move |v| {
            tracing::info!(function_id = v.function_id, version = v.version, "version built here");
            directory.routes_changed();
        })
    });
    builder.spawn_poller(store.clone(), engine.process().to_string(), BUILD_POLL);
    let node = Arc::new(Node {
        name: name.clone(),
        bearer: format!("Bearer {}", secret.0),
        store: store.clone(),
        gateway,
        directory,
        images: Arc::new(Images { engine: engine.clone(), runtimes, installer, ready: Mutex::default() }),
        calls_in_flight: AtomicI64::new(0),
        calls_total: AtomicU64::new(0),
    });
    let members = super::members::Members::start(store.clone()).await;
    pool.keep_share_of_warm_minimum(Arc::new(WarmShareHere { name: name.clone(), members, images: node.images.clone() }));
    pool.limit_cluster_wide(Arc::new(LimitAcrossNodes { name: name.clone(), store: store.clone() }));
    pool.spawn_maintainer(store.clone(), KEEP_WARM_EVERY);
    let beating = tokio::spawn(beat(node.clone()));
    tokio::spawn(clean(node.clone(), config.socket_dir()));
    tokio::spawn(follow_functions(node.clone()));
    let over = if tls_on { "TLS" } else { "plain HTTP" };
    tracing::info!(node = %name, %address, memory_mb = capacity.memory_mb, millicpus = capacity.millicpus, over, "node up");
    println!("vcd-faas node {name} takes calls on {address} ({over})");

    let app = axum::Router::new()
        .route(CALLS_PATH, axum::routing::post(take_call))
        .route("/cluster/v1/health", axum::routing::get(|| async { "ok" }))
        // A call's body is checked by the front; the head and framing come on top.
        .layer(DefaultBodyLimit::max(config.max_body_bytes + 1024 * 1024))
        .with_state(node.clone());
    let stopped = crate::startup::shutdown_signal();
    let served = match tls {
        Some(acceptor) => {
            let listener = super::tls::TlsListener::new(listener, acceptor).map_err(|e| e.to_string())?;
            axum::serve(listener, app).with_graceful_shutdown(stopped).await
        }
        None => axum::serve(listener, app).with_graceful_shutdown(stopped).await,
    };
    beating.abort();
    let _ = store.node_left(&name, engine.process()).await;
    pool.drain().await;
    crate::ops::processes::leave(&store, engine.process()).await;
    served.map_err(|e| e.to_string())
}

/// The configured name, else the host's; letters, digits, `.` and `-`, up to 63.
fn node_name(configured: Option<&str>) -> Result<String, String> {
    let name = match configured {
        Some(name) => name.to_string(),
        None => std::fs::read_to_string("/proc/sys/kernel/hostname").map(|h| h.trim().to_string()).unwrap_or_default(),
    };
    let fits = !name.is_empty() && name.len() <= 63 && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-');
    if fits {
        Ok(name)
    } else {
        Err(format!("VCD_FAAS_NODE_NAME {name:?} is not a node name: use 1–63 letters, digits, '.' or '-'"))
    }
}

async fn take_call(State(node): State<Arc<Node>>, headers: HeaderMap, framed: Bytes) -> Response {
    let authorized = headers.get("authorization").is_some_and(|v| constant_time_eq(v.as_bytes(), node.bearer.as_bytes()));
    if !authorized {
        return (StatusCode::UNAUTHORIZED, "a forwarded call needs the cluster secret").into_response();
    }
    let (head, body): (CallHead, Bytes) = match wire::unframe(framed) {
        Ok(parts) => parts,
        Err(e) => return (StatusCode::BAD_REQUEST, e).into_response(),
    };
    // A front that stops waiting (its caller went away) neither cuts the call off nor leaves
    // its container's place taken.
    crate::calls::run_to_end::RunToEnd::new(async move {
        node.calls_in_flight.fetch_add(1, Ordering::Relaxed);
        let reply = node.run(head, body).await;
        node.calls_in_flight.fetch_sub(1, Ordering::Relaxed);
        node.calls_total.fetch_add(1, Ordering::Relaxed);
        reply
    })
    .await
}

impl Node {
    async fn run(&self, head: CallHead, body: Bytes) -> Response {
        let target = match self.target(&head).await {
            Ok(target) => target,
            Err(message) => return reply_error(503, message, head.version),
        };
        if let Err(e) = self.images.ensure(&target).await {
            tracing::error!(node = %self.name, function = %head.name, version = target.version.version, error = %e, "cannot make the image here");
            return reply_error(503, format!("worker node {:?} could not make the function's image: {e}", self.name), target.version.version);
        }
        let request = CallRequest {
            method: head.method,
            path: head.path,
            query: head.query,
            headers: head.headers,
            body,
            trigger: CallTrigger::parse(&head.trigger).unwrap_or_default(),
        };
        let share = head.instances_here.map(|instances| ShareOfLimit { instances, as_of_us: head.placed_at_us });
        let ran = self.gateway.run_here(&target, &request, &head.id, share).await;
        tracing::debug!(node = %self.name, call = %head.id, function = %head.name, status = ran.response.status, "call ran here");
        let r = ran.response;
        let held = self.gateway.pool().load_for(target.function.id, ran.version);
        let reply = ReplyHead {
            status: r.status,
            headers: r.headers,
            cold: r.cold,
            served_by: r.served_by,
            duration_us: r.duration.as_micros() as i64,
            logs: r.logs,
            connections: ran.connections,
            version: ran.version,
            held: Some(Held { at_ms: now_ms(), version: ran.version, of_function: held.of_function, of_version: held.of_version }),
            held_elsewhere: ran.held_elsewhere,
        };
        wire::frame(&reply, &r.body).into_response()
    }

    /// The function's serving version, as the front resolved it or newer: a cached route a
    /// version older than the front's is read again.
    async fn target(&self, head: &CallHead) -> Result<Arc<Target>, String> {
        for _ in 0..2 {
            let found = self.directory.routable(&head.org, &head.name).await.map_err(|e| format!("database: {e}"))?;
            match found {
                Some(Ok(target)) if target.version.version >= head.version => return Ok(target),
                Some(Ok(_)) => self.directory.routes_changed(),
                Some(Err(f)) => return Err(crate::calls::dispatch::not_servable(&f)),
                None => return Err(format!("no function {:?} in org {:?}", head.name, head.org)),
            }
        }
        Err(format!("version {} of {:?} is not served yet on this node's view; try again", head.version, head.name))
    }
}

fn reply_error(status: u16, message: String, version: i64) -> Response {
    let body = serde_json::json!({ "error": message }).to_string();
    let head = ReplyHead {
        status,
        headers: vec![("content-type".into(), "application/json".into()), ("retry-after".into(), "1".into())],
        cold: false,
        served_by: None,
        duration_us: 0,
        logs: String::new(),
        connections: None,
        version,
        held: None,
        held_elsewhere: None,
    };
    wire::frame(&head, body.as_bytes()).into_response()
}

/// A function's `max_instances` across the nodes, kept in the database: before a call starts a
/// container here, the others' containers of the function are counted (`Store::admit_container`),
/// so fronts placing calls at the same moment cannot take the function past its limit.
struct LimitAcrossNodes {
    name: String,
    store: Store,
}

impl ClusterLimit for LimitAcrossNodes {
    fn admit<'a>(&'a self, target: &'a Target, here: usize) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), CallError>> + Send + 'a>> {
        Box::pin(async move {
            let max = target.function.max_instances.max(1) as usize;
            match self.store.admit_container(&self.name, target.function.id, here, max, super::members::DOWN_AFTER_MS).await {
                Ok(Admission::Admitted) => Ok(()),
                Ok(Admission::Full(elsewhere)) => Err(CallError::HeldElsewhere(elsewhere)),
                // The fronts' count still bounds the function; a call is not refused for it.
                Err(e) => {
                    tracing::warn!(node = %self.name, error = %e, "cannot count the function's containers across nodes; starting one");
                    Ok(())
                }
            }
        })
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Writes the node's row every second: what its pool holds and the calls it runs.
async fn beat(node: Arc<Node>) {
    let process = node.gateway.pool().engine().process().to_string();
    // Calls counted at each of the last ten beats, for the rate over ten seconds.
    let mut totals: VecDeque<u64> = VecDeque::new();
    loop {
        let load = node.gateway.pool().load();
        let total = node.calls_total.load(Ordering::Relaxed);
        totals.push_back(total);
        if totals.len() > 11 {
            totals.pop_front();
        }
        let beat = NodeBeat {
            used_memory_mb: load.memory_mb,
            used_millicpus: load.millicpus,
            containers: load.containers as i64,
            calls_in_flight: node.calls_in_flight.load(Ordering::Relaxed),
            calls_last_10s: (total - totals.front().copied().unwrap_or(total)) as i64,
            warm: serde_json::to_string(&load.warm).expect("warm versions serialize"),
        };
        match node.store.node_heartbeat(&node.name, &process, &beat).await {
            Ok(true) => {}
            Ok(false) => tracing::error!(node = %node.name, "another process has registered under this node's name; stop one of them"),
            Err(e) => tracing::warn!(error = %e, "cannot write the node's heartbeat"),
        }
        tokio::time::sleep(HEARTBEAT).await;
    }
}

/// Follows the functions this node holds containers of, every few seconds: a new version's
/// image is made here as soon as it is ready elsewhere (so calls after the switch find it),
/// and the containers of a function deleted at a front (which has no say over this engine)
/// go; its images go with the next cleaning.
async fn follow_functions(node: Arc<Node>) {
    loop {
        tokio::time::sleep(FOLLOW_EVERY).await;
        let pool = node.gateway.pool();
        for function_id in pool.function_ids() {
            match node.store.function_by_id(function_id).await {
                Ok(Some(f)) if !f.is_deleting() => {
                    if let Ok(Some(Ok(target))) = node.directory.routable(&f.org, &f.name).await {
                        let images = node.images.clone();
                        tokio::spawn(async move { images.ensure(&target).await });
                    }
                }
                Ok(_) => {
                    tracing::info!(function_id, "function deleted: its containers here go");
                    pool.forget(function_id);
                }
                Err(e) => tracing::debug!(error = %e, "cannot look the function up"),
            }
        }
    }
}

/// Removes, now and then, the images of versions no longer served and orphan containers.
async fn clean(node: Arc<Node>, socket_dir: std::path::PathBuf) {
    let started = now_ms();
    loop {
        tokio::time::sleep(CLEAN_EVERY).await;
        let pool = node.gateway.pool();
        let leftovers = Leftovers { store: &node.store, pool, installer: &node.images.installer, socket_dir: socket_dir.clone() };
        let cleaned = async {
            let others = crate::ops::processes::live_others(&node.store, pool.engine().process()).await?;
            leftovers.remove(&others, started, false).await
        };
        match cleaned.await {
            Ok((0, 0)) => {}
            Ok((containers, images)) => tracing::info!(containers, images, "removed what no version owns"),
            Err(e) => tracing::warn!(error = %e, "cleaning the engine failed; retrying later"),
        }
        node.images.forget_removed().await;
    }
}

/// This node's share of the warm functions' `min_instances`, dealt out over the nodes that
/// take calls now (see `warm_share`): a node lost or drained is covered by the others within
/// a few seconds.
struct WarmShareHere {
    name: String,
    members: Arc<super::members::Members>,
    images: Arc<Images>,
}

impl WarmShare for WarmShareHere {
    /// Of the warm functions, those with a share here (their image made first) and those whose
    /// image is here already (a call ran here): the pool keeps a spare container for each.
    fn keep_here(&self, targets: Vec<Target>) -> std::pin::Pin<Box<dyn std::future::Future<Output = Vec<Target>> + Send + '_>> {
        Box::pin(async move {
            let placeable = self.members.placeable();
            let nodes: Vec<&str> = placeable.iter().map(|m| m.row.name.as_str()).collect();
            let mut kept = Vec::new();
            for mut target in targets {
                let min = target.function.min_instances.max(0) as usize;
                let mut share = warm_share(target.function.id, min, &nodes, &self.name);
                if share > 0 {
                    if let Err(e) = self.images.ensure(&target).await {
                        tracing::warn!(function = %target.function.name, error = %e, "cannot keep containers warm here");
                        share = 0;
                    }
                }
                if share > 0 || target.version.image.as_deref().is_some_and(|image| self.images.is_here(image)) {
                    target.function.min_instances = share as i64;
                    kept.push(target);
                }
            }
            kept
        })
    }
}

/// The function images on this node's engine, made when a call needs one that is missing.
struct Images {
    engine: crate::run::engine::Engine,
    runtimes: Arc<crate::build::runtimes::Runtimes>,
    installer: Arc<Installer>,
    /// Per image, whether it is known to be here; its lock is held while it is being made.
    ready: Mutex<HashMap<String, Arc<tokio::sync::Mutex<bool>>>>,
}

impl Images {
    /// Forgets the images the cleaning removed, so the next call makes them again.
    async fn forget_removed(&self) {
        let known: Vec<String> = self.ready.lock().unwrap().keys().cloned().collect();
        for image in known {
            if !self.engine.image_exists(&image).await.unwrap_or(true) {
                self.ready.lock().unwrap().remove(&image);
            }
        }
    }

    /// Whether the image is known to be on this engine (made or found by an earlier `ensure`).
    fn is_here(&self, image: &str) -> bool {
        let gate = self.ready.lock().unwrap().get(image).cloned();
        gate.is_some_and(|gate| gate.try_lock().is_ok_and(|present| *present))
    }

    /// Makes sure the version's image is on this engine; the first call that finds it missing
    /// makes it, the others wait for that.
    async fn ensure(&self, target: &Target) -> Result<(), String> {
        let image = target.version.image.clone().ok_or("the version has no image yet")?;
        let gate = self.ready.lock().unwrap().entry(image.clone()).or_default().clone();
        let mut present = gate.lock().await;
        if *present {
            return Ok(());
        }
        if !self.engine.image_exists(&image).await.map_err(|e| e.to_string())? {
            let started = std::time::Instant::now();
            let log = Mutex::new(String::new());
            let append = |text: &str| log.lock().unwrap().push_str(text);
            let tools = ImageTools { engine: &self.engine, runtimes: &self.runtimes, installer: &self.installer };
            if let Err(failure) = make_image(tools, &target.function, &target.version, &image, &append).await {
                let log = log.into_inner().unwrap();
                tracing::warn!(image, log = %crate::calls::gateway::clip_log(&log, 4096), "image build failed here");
                return Err(failure.reason);
            }
            tracing::info!(image, ms = started.elapsed().as_millis() as u64, "made the image from the stored files");
        }
        *present = true;
        Ok(())
    }
}
