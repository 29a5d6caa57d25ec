//! One function container: create it sandboxed, start it, talk to its runtime over a unix
//! socket in a host folder (containers have no network), and remove it.

use app::model::EnvVars;
use crate::run::egress::{EgressGate, EgressPolicy, GateOwner};
use crate::run::engine::{ContainerSpec, Engine, EngineError, LABEL_PROCESS};
use crate::build::runtimes::FUNCTION_UID;
use crate::store::Target;
use crate::run::shim_connection::{ExchangeError, ShimConnection};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;
use tokio::net::UnixStream;
use tokio::time::Instant;

/// Limits every container gets, set by the provider.
#[derive(Clone, Debug)]
pub struct Sandbox {
    pub nano_cpus: i64,
    pub pids_limit: i64,
    pub tmp_mb: i64,
    /// Absolute host folder holding one socket folder per container.
    pub socket_root: PathBuf,
    /// What each container's outbound gate allows.
    pub egress: EgressPolicy,
    /// The engine's name for gVisor's runtime, for tenants whose sandbox is gVisor.
    pub gvisor_runtime: String,
}

/// How one container is run under its tenant's sandbox.
struct RuntimeLimits<'a> {
    /// The engine's runtime; `None`: its default (runc).
    runtime: Option<&'a str>,
    /// The engine's pids limit (host processes and threads of the container).
    pids_limit: i64,
    /// `RLIMIT_NPROC` inside the container, where the container has a kernel of its own.
    nproc: Option<i64>,
}

/// Host threads a gVisor sandbox runs besides its tasks (~53 idle here).
const GVISOR_BASE_THREADS: i64 = 256;
/// Host threads each of its tasks may take with the ptrace platform (~7.5 seen here).
const GVISOR_THREADS_PER_TASK: i64 = 8;

impl Sandbox {
    /// Under runc the engine's pids limit counts the function's processes and threads. Under
    /// gVisor it counts the sandbox's host threads, and forking past it crashed the whole
    /// sandbox here instead of failing the fork: the function's own tasks are limited by its
    /// kernel (`RLIMIT_NPROC`, per sandbox, so EAGAIN as under runc), and the engine's limit is
    /// set above what those tasks can take.
    fn runtime_limits(&self, kind: app::model::Sandbox) -> RuntimeLimits<'_> {
        match kind {
            app::model::Sandbox::Runc => RuntimeLimits { runtime: None, pids_limit: self.pids_limit, nproc: None },
            app::model::Sandbox::Gvisor => RuntimeLimits {
                runtime: Some(self.gvisor_runtime.as_str()),
                pids_limit: GVISOR_BASE_THREADS + self.pids_limit * GVISOR_THREADS_PER_TASK,
                nproc: Some(self.pids_limit),
            },
        }
    }
}

/// A container of one function version (created, then started).
#[derive(Debug)]
pub struct Instance {
    pub id: String,
    pub name: String,
    pub socket: PathBuf,
    dir: PathBuf,
    /// A specialized stem cell's host folder of the function's files (mounted at `/app`).
    app_dir: Option<PathBuf>,
    /// Its only way out (see `egress.rs`).
    pub egress: EgressGate,
    /// Open connections to its runtime that no call uses now: a warm call takes one instead
    /// of connecting again.
    idle: Mutex<Vec<ShimConnection>>,
}

/// Most idle connections kept per container (one per call it may serve at once).
const MAX_IDLE_CONNECTIONS: usize = 128;

impl Instance {
    fn take_connection(&self) -> Option<ShimConnection> {
        self.idle.lock().unwrap().pop()
    }

    fn keep_connection(&self, connection: ShimConnection) {
        let mut idle = self.idle.lock().unwrap();
        if connection.reusable() && idle.len() < MAX_IDLE_CONNECTIONS {
            idle.push(connection);
        }
    }
}

/// Why a call did not get an answer from the function.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    #[error("the function did not answer within its {0} ms deadline")]
    Deadline(i64),
    #[error("the function exceeded its memory limit of {0} MB")]
    OutOfMemory(i64),
    #[error("the function's container stopped (exit code {0})")]
    Crashed(i64),
    #[error("the function runtime sent a malformed answer: {0}")]
    Protocol(String),
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error("the function runtime cannot be reached: {0}")]
    Io(String),
    #[error("the function is busy: all {0} of its instances are serving; retry shortly")]
    AtCapacity(usize),
    /// Other worker nodes hold the function's `max_instances` (each node's name and count):
    /// this node may start none, and the call belongs in the line of one of them.
    #[error("the function is busy: its max_instances are all running on other worker nodes; retry shortly")]
    HeldElsewhere(Vec<(String, usize)>),
    /// A warm container that no longer answers; the gateway replaces it.
    #[error("the warm container is gone")]
    Stale,
}

/// What the runtime shim answers.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ShimReply {
    pub status_code: u16,
    #[serde(default)]
    pub headers: HashMap<String, String>,
    #[serde(default)]
    pub body: String,
    #[serde(default)]
    pub is_base64_encoded: bool,
    #[serde(default)]
    pub logs: String,
    pub error: Option<String>,
}

/// What the runtime shim is sent.
#[derive(Debug, Serialize)]
pub struct Envelope<'a> {
    pub event: Event<'a>,
    pub context: Context<'a>,
    /// The function's variables and secrets, for runtimes told so (`FAAS_ENV_BY_CALL`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub env: Option<&'a EnvVars>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Event<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub query: HashMap<String, String>,
    pub headers: HashMap<Cow<'a, str>, &'a str>,
    pub body: Cow<'a, str>,
    pub is_base64_encoded: bool,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Context<'a> {
    pub function: &'a str,
    pub version: i64,
    pub tenant: &'a str,
    pub request_id: &'a str,
    /// Unix time in ms by which the call must answer.
    pub deadline: i64,
}

pub fn image_tag(org: &str, function: &str, version: i64) -> String {
    format!("vcd-faas/{org}/{function}:v{version}")
}

/// Creates a sandboxed container of the target's version without starting it: the slow half
/// of a cold start, which the pool does ahead of calls.
pub async fn create(engine: &Engine, sandbox: &Sandbox, target: &Target) -> Result<Instance, CallError> {
    let f = &target.function;
    let v = &target.version;
    let suffix = &uuid::Uuid::new_v4().simple().to_string()[..12];
    let name = format!("vcd-faas-{}-{}-v{}-{suffix}", f.org, f.name, v.version);
    let dir = sandbox.socket_root.join(&name);
    let folder_error = |e: std::io::Error| CallError::Io(format!("socket folder {}: {e}", dir.display()));
    prepare_socket_dir(&dir).map_err(folder_error)?;
    let owner = GateOwner {
        org: f.org.clone(),
        function: f.name.clone(),
        narrowing: v.egress().map(|list| app::egress::parse_list("egress", &list).unwrap_or_default()),
    };
    let egress = EgressGate::open(&sandbox.egress, &dir, owner).map_err(folder_error)?;
    let image = v.image.clone().unwrap_or_else(|| image_tag(&f.org, &f.name, v.version));
    let limits = sandbox.runtime_limits(f.sandbox);
    let spec = ContainerSpec {
        name: &name,
        image: &image,
        labels: {
            let mut labels = engine.labels(&f.org, &f.name, v.version);
            labels.insert(LABEL_PROCESS.to_string(), engine.process().to_string());
            labels
        },
        // The configuration comes with each call, never as container environment (where
        // `docker inspect` would show the secrets); this only tells the runtime to wait for it.
        env: if v.has_configuration() { vec!["FAAS_ENV_BY_CALL=1".into()] } else { vec![] },
        socket_dir: dir.to_str().unwrap_or_default(),
        memory_mb: v.memory_mb,
        nano_cpus: sandbox.nano_cpus,
        pids_limit: limits.pids_limit,
        nproc: limits.nproc,
        tmp_mb: sandbox.tmp_mb,
        runtime: limits.runtime,
        app_dir: None,
    };
    let id = match engine.create_container(&spec).await {
        Ok(id) => id,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&dir);
            return Err(e.into());
        }
    };
    Ok(Instance { id, name, socket: dir.join("sock"), dir, app_dir: None, egress, idle: Mutex::default() })
}

/// Starts a created container; one that cannot start is removed.
pub async fn start_created(engine: &Engine, instance: &Instance) -> Result<(), CallError> {
    if let Err(e) = engine.start_container(&instance.id).await {
        destroy(engine, instance).await;
        return Err(e.into());
    }
    Ok(())
}

/// Starts a created container, waits until its runtime listens (the connection kept for the
/// first call) and pauses it: a pre-started spare, whose cold start is an unpause. One that
/// cannot be made so is removed.
pub async fn prestart(engine: &Engine, instance: &Instance, deadline: Instant) -> Result<(), CallError> {
    start_created(engine, instance).await?;
    let ready = match wait_ready(engine, instance, deadline).await {
        Ok(()) => engine.pause_container(&instance.id).await.map_err(CallError::from),
        Err(e) => Err(e),
    };
    if ready.is_err() {
        destroy(engine, instance).await;
    }
    ready
}

/// A stem cell: a container of a language's runtime with no function yet, started with its
/// runtime listening (the connection kept) and paused. Its `/app` is an empty host folder,
/// mounted read-only; `specialize` fills it with one version's files and makes it that
/// version's container for the rest of its life.
pub struct Stem {
    pub id: String,
    pub name: String,
    pub memory_mb: i64,
    socket: PathBuf,
    dir: PathBuf,
    app_dir: PathBuf,
    connection: ShimConnection,
}

/// Labels a stem cell with its language, until a function makes it its own.
pub const LABEL_STEM: &str = "vcd-faas.stem";

/// Creates, starts and pauses a stem cell of `image` (a language's runtime and shim, no
/// function), sandboxed exactly as a function's container (runc). One that cannot be made so
/// is removed.
pub async fn create_stem(engine: &Engine, sandbox: &Sandbox, image: &str, language: app::model::Language, memory_mb: i64) -> Result<Stem, CallError> {
    let suffix = &uuid::Uuid::new_v4().simple().to_string()[..12];
    let name = format!("vcd-faas-stem-{}-{suffix}", language.as_str());
    let dir = sandbox.socket_root.join(&name);
    let app_dir = sandbox.socket_root.join(format!("{name}.app"));
    let folders = prepare_socket_dir(&dir).and_then(|()| std::fs::create_dir_all(&app_dir));
    folders.map_err(|e| CallError::Io(format!("stem cell folders {}: {e}", dir.display())))?;
    let labels = [(LABEL_STEM, language.as_str()), (LABEL_PROCESS, engine.process()), (crate::run::engine::LABEL_INSTALLATION, engine.installation())];
    let spec = ContainerSpec {
        name: &name,
        image,
        labels: labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        // The runtime loads the function at its first call, after `specialize` placed it.
        env: vec!["FAAS_ENV_BY_CALL=1".into()],
        socket_dir: dir.to_str().unwrap_or_default(),
        memory_mb,
        nano_cpus: sandbox.nano_cpus,
        pids_limit: sandbox.pids_limit,
        nproc: None,
        tmp_mb: sandbox.tmp_mb,
        runtime: None,
        app_dir: app_dir.to_str(),
    };
    let remove_folders = || {
        let _ = std::fs::remove_dir_all(&dir);
        let _ = std::fs::remove_dir_all(&app_dir);
    };
    let id = match engine.create_container(&spec).await {
        Ok(id) => id,
        Err(e) => {
            remove_folders();
            return Err(e.into());
        }
    };
    let socket = dir.join("sock");
    let ready = async {
        engine.start_container(&id).await?;
        let stream = connect_by(engine, &id, &socket, Instant::now() + START_LIMIT).await?;
        engine.pause_container(&id).await?;
        Ok::<_, CallError>(stream)
    };
    match ready.await {
        Ok(stream) => Ok(Stem { id, name, memory_mb, socket, dir, app_dir, connection: ShimConnection::new(stream) }),
        Err(e) => {
            let _ = engine.remove_container(&id).await;
            remove_folders();
            Err(e)
        }
    }
}

/// Makes a stem cell the target version's container: its files in the cell's `/app`, its
/// outbound gate, then the unpause. From here it is that version's container like any other,
/// and is removed like one. A cell that cannot be specialized is removed.
pub async fn specialize(engine: &Engine, sandbox: &Sandbox, stem: Stem, target: &Target) -> Result<Instance, CallError> {
    let Stem { id, name, socket, dir, app_dir, connection, .. } = stem;
    let v = &target.version;
    let owner = GateOwner {
        org: target.function.org.clone(),
        function: target.function.name.clone(),
        narrowing: v.egress().map(|list| app::egress::parse_list("egress", &list).unwrap_or_default()),
    };
    let placed = place_files(&app_dir, &v.files()).and_then(|()| EgressGate::open(&sandbox.egress, &dir, owner));
    let egress = match placed {
        Ok(gate) => gate,
        Err(e) => {
            let _ = engine.remove_container(&id).await;
            let _ = std::fs::remove_dir_all(&dir);
            let _ = std::fs::remove_dir_all(&app_dir);
            return Err(CallError::Io(format!("specializing stem cell {name}: {e}")));
        }
    };
    let instance = Instance { id, name, socket, dir, app_dir: Some(app_dir), egress, idle: Mutex::new(vec![connection]) };
    unpause(engine, &instance).await?;
    Ok(instance)
}

/// Writes a version's files under `root` (folders 0755, files 0644, owned by the platform):
/// the function reads them and cannot change them.
fn place_files(root: &Path, files: &app::model::FileTree) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    for (path, content) in files.iter() {
        // Paths were checked when the version was stored (relative, no `..`); checked again.
        if path.split('/').any(|part| part.is_empty() || part == "." || part == "..") {
            return Err(std::io::Error::other(format!("refusing the file path {path:?}")));
        }
        let file = root.join(path);
        if let Some(parent) = file.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&file, content)?;
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644))?;
    }
    Ok(())
}

/// Removes a stem cell that was never specialized.
pub async fn destroy_stem(engine: &Engine, stem: &Stem) {
    if let Err(e) = engine.remove_container(&stem.id).await {
        tracing::warn!(container = %stem.name, error = %e, "could not remove stem cell; the reconciler will retry");
    }
    let _ = std::fs::remove_dir_all(&stem.dir);
    let _ = std::fs::remove_dir_all(&stem.app_dir);
}

/// Unpauses a pre-started container; one that cannot be unpaused is removed.
pub async fn unpause(engine: &Engine, instance: &Instance) -> Result<(), CallError> {
    if let Err(e) = engine.unpause_container(&instance.id).await {
        destroy(engine, instance).await;
        return Err(e.into());
    }
    Ok(())
}

/// How long a started container's runtime may take to listen. Apart from the function's own
/// timeout, which counts from when the call is sent to the ready runtime.
pub const START_LIMIT: Duration = Duration::from_secs(30);

/// Waits until a started container's runtime listens, until `deadline`. The connection that
/// found it listening is kept for the first call.
pub async fn wait_ready(engine: &Engine, instance: &Instance, deadline: Instant) -> Result<(), CallError> {
    let stream = connect_by(engine, &instance.id, &instance.socket, deadline).await?;
    instance.keep_connection(ShimConnection::new(stream));
    Ok(())
}

/// A connection to the runtime of a started container once it listens, until `deadline`.
async fn connect_by(engine: &Engine, id: &str, socket: &Path, deadline: Instant) -> Result<UnixStream, CallError> {
    match tokio::time::timeout_at(deadline, connect_when_ready(engine, id, socket)).await {
        Ok(result) => result,
        Err(_) => Err(CallError::Io(format!("the function's runtime did not get ready within {} s", START_LIMIT.as_secs()))),
    }
}

/// Whether a started container's runtime still accepts connections: a dead container leaves
/// its socket file behind, but nothing listens on it.
pub async fn is_listening(instance: &Instance) -> bool {
    UnixStream::connect(&instance.socket).await.is_ok()
}

fn prepare_socket_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    std::os::unix::fs::chown(dir, Some(FUNCTION_UID), Some(FUNCTION_UID))?;
    Ok(())
}

/// Removes the container and its socket folder.
pub async fn destroy(engine: &Engine, instance: &Instance) {
    if let Err(e) = engine.remove_container(&instance.id).await {
        tracing::warn!(container = %instance.name, error = %e, "could not remove container; the reconciler will retry");
    }
    let _ = std::fs::remove_dir_all(&instance.dir);
    if let Some(app_dir) = &instance.app_dir {
        let _ = std::fs::remove_dir_all(app_dir);
    }
}

/// Sends one call to the ready runtime of the instance (see `wait_ready`) and waits for its
/// answer until `deadline`.
pub async fn call(
    engine: &Engine,
    instance: &Instance,
    envelope: &[u8],
    deadline: Instant,
    timeout_ms: i64,
    memory_mb: i64,
) -> Result<ShimReply, CallError> {
    let exchange = async {
        // An open connection first; one the runtime closed gets none of the request.
        while let Some(mut connection) = instance.take_connection() {
            match connection.exchange(envelope).await {
                Err(ExchangeError::Unsent) => continue,
                result => return finish_exchange(instance, connection, result),
            }
        }
        // A ready container listens; one that does not is dead.
        let stream = UnixStream::connect(&instance.socket).await.map_err(|_| CallError::Stale)?;
        let mut connection = ShimConnection::new(stream);
        let result = connection.exchange(envelope).await;
        finish_exchange(instance, connection, result)
    };
    match tokio::time::timeout_at(deadline, exchange).await {
        Ok(Ok(reply)) => Ok(reply),
        Ok(Err(CallError::Io(cause))) => Err(explain_failure(engine, instance, memory_mb, cause).await),
        Ok(Err(other)) => Err(other),
        Err(_) => Err(CallError::Deadline(timeout_ms)),
    }
}

/// Waits until the runtime listens on its socket, noticing a container that died first.
async fn connect_when_ready(engine: &Engine, id: &str, socket: &Path) -> Result<UnixStream, CallError> {
    let mut attempts = 0u32;
    loop {
        match UnixStream::connect(socket).await {
            Ok(stream) => return Ok(stream),
            Err(_) => {
                attempts += 1;
                if attempts % 40 == 0 {
                    let end = engine.container_end(id).await?;
                    if !end.running {
                        return Err(CallError::Io("the container stopped before its runtime was ready".into()));
                    }
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    }
}

/// Keeps a connection that answered for the container's next call.
fn finish_exchange(
    instance: &Instance,
    connection: ShimConnection,
    result: Result<ShimReply, ExchangeError>,
) -> Result<ShimReply, CallError> {
    match result {
        Ok(reply) => {
            instance.keep_connection(connection);
            Ok(reply)
        }
        Err(ExchangeError::Unsent) => Err(CallError::Io("the runtime closed the connection".into())),
        Err(ExchangeError::Io(cause)) => Err(CallError::Io(cause)),
        Err(ExchangeError::Protocol(cause)) => Err(CallError::Protocol(cause)),
    }
}

/// Turns a broken connection into the reason a user can act on.
async fn explain_failure(engine: &Engine, instance: &Instance, memory_mb: i64, cause: String) -> CallError {
    // The engine records the end of a container a moment after its process dies.
    for _ in 0..20 {
        match engine.container_end(&instance.id).await {
            Ok(end) if end.oom_killed => return CallError::OutOfMemory(memory_mb),
            Ok(end) if !end.running => return CallError::Crashed(end.exit_code.unwrap_or(-1)),
            Ok(_) => tokio::time::sleep(Duration::from_millis(25)).await,
            Err(e) => return e.into(),
        }
    }
    CallError::Io(cause)
}
