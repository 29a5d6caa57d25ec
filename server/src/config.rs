//! Settings, read once at start-up from flags or the environment.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Parser, Clone, Debug)]
#[command(name = "vcd-faas", version, about = "Multi-tenant Functions-as-a-Service for VMware Cloud Director")]
pub struct Config {
    /// Address the portal, the REST API and the function routes listen on.
    #[arg(long, env = "LEPTOS_SITE_ADDR", default_value = "127.0.0.1:3000")]
    pub listen: SocketAddr,

    /// Folder for the SQLite database, container sockets and other state.
    #[arg(long, env = "VCD_FAAS_DATA_DIR", default_value = "data")]
    pub data_dir: PathBuf,

    /// `sqlite://…` or `postgres://…`; default: SQLite in the data folder.
    #[arg(long, env = "DATABASE_URL")]
    pub database_url: Option<String>,

    /// Docker engine to use (`unix:///var/run/docker.sock` when unset).
    #[arg(long, env = "DOCKER_HOST")]
    pub docker_host: Option<String>,

    /// Password of the provider admin `admin`, set on first start; generated and printed when unset.
    #[arg(long, env = "VCD_FAAS_ADMIN_PASSWORD", hide_env_values = true)]
    pub admin_password: Option<Secret>,

    /// Days an API token lasts when its maker does not say.
    #[arg(long, env = "VCD_FAAS_TOKEN_DAYS", default_value_t = 90, value_parser = clap::value_parser!(i64).range(1..=3650))]
    pub token_days: i64,
    /// Most days an API token may last.
    #[arg(long, env = "VCD_FAAS_TOKEN_MAX_DAYS", default_value_t = 365, value_parser = clap::value_parser!(i64).range(1..=3650))]
    pub token_max_days: i64,
    /// Failed sign-ins an account may have in 15 minutes before it must wait (an address may
    /// have four times as many). 0: no limit.
    #[arg(long, env = "VCD_FAAS_LOGIN_ATTEMPTS", default_value_t = 5)]
    pub login_attempts: usize,

    /// The key functions' secrets are sealed with: 32 bytes in base64. Unset: the key file
    /// `secret.key` in the data folder, made on the first start.
    #[arg(long, env = "VCD_FAAS_SECRET_KEY", hide_env_values = true)]
    pub secret_key: Option<Secret>,

    /// Folder with the compiled portal assets (written by scripts/build-site.sh).
    #[arg(long, env = "LEPTOS_SITE_ROOT", default_value = "target/site")]
    pub site_root: String,

    /// Memory a function gets when it does not ask (MB).
    #[arg(long, env = "VCD_FAAS_DEFAULT_MEMORY_MB", default_value_t = 128)]
    pub default_memory_mb: i64,
    /// Most memory any tenant may be given (MB); also the default tenant limit.
    #[arg(long, env = "VCD_FAAS_MAX_MEMORY_MB", default_value_t = 512)]
    pub max_memory_mb: i64,
    /// Deadline a call gets when the function does not ask (ms).
    #[arg(long, env = "VCD_FAAS_DEFAULT_TIMEOUT_MS", default_value_t = 10_000)]
    pub default_timeout_ms: i64,
    /// Longest deadline any tenant may be given (ms); also the default tenant limit.
    #[arg(long, env = "VCD_FAAS_MAX_TIMEOUT_MS", default_value_t = 60_000)]
    pub max_timeout_ms: i64,
    /// Functions a new tenant may have.
    #[arg(long, env = "VCD_FAAS_DEFAULT_MAX_FUNCTIONS", default_value_t = 50)]
    pub default_max_functions: i64,
    /// CPU share of one function container (1.0 = one core).
    #[arg(long, env = "VCD_FAAS_CPUS", default_value_t = 0.5)]
    pub cpus: f64,
    /// Most processes/threads inside one function container.
    #[arg(long, env = "VCD_FAAS_PIDS_LIMIT", default_value_t = 64)]
    pub pids_limit: i64,
    /// The Docker engine's name for gVisor's runtime (registered by `scripts/setup.sh`), used
    /// for tenants whose sandbox is `gvisor`.
    #[arg(long, env = "VCD_FAAS_GVISOR_RUNTIME", default_value = "runsc")]
    pub gvisor_runtime: String,
    /// Size of the writable /tmp of a function container (MB).
    #[arg(long, env = "VCD_FAAS_TMP_MB", default_value_t = 16)]
    pub tmp_mb: i64,
    /// Largest request body a function call accepts (bytes).
    #[arg(long, env = "VCD_FAAS_MAX_BODY_BYTES", default_value_t = 6 * 1024 * 1024)]
    pub max_body_bytes: usize,

    /// Most megabytes a function's files may have, unpacked (JSON or zip).
    #[arg(long, env = "VCD_FAAS_MAX_FILES_MB", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=1024))]
    pub max_files_mb: u64,

    /// npm registry dependencies are installed from (a mirror such as verdaccio, Nexus or
    /// Artifactory); unset: npm's own default. The install step may reach this host only.
    #[arg(long, env = "VCD_FAAS_NPM_REGISTRY")]
    pub npm_registry: Option<String>,

    /// Python package index (PEP 503 "simple" URL) requirements are installed from; unset:
    /// pip's own default. The install step may reach this host only.
    #[arg(long, env = "VCD_FAAS_PIP_INDEX_URL")]
    pub pip_index_url: Option<String>,

    /// Longest a dependency install may take, in seconds.
    #[arg(long, env = "VCD_FAAS_BUILD_TIMEOUT_SECS", default_value_t = 300, value_parser = clap::value_parser!(u64).range(10..))]
    pub build_timeout_secs: u64,

    /// Memory a dependency install may use, in MB.
    #[arg(long, env = "VCD_FAAS_BUILD_MEMORY_MB", default_value_t = 1024, value_parser = clap::value_parser!(i64).range(128..))]
    pub build_memory_mb: i64,

    /// Most megabytes a dependency install may write (its installed packages).
    #[arg(long, env = "VCD_FAAS_BUILD_OUTPUT_MB", default_value_t = 512, value_parser = clap::value_parser!(u64).range(1..))]
    pub build_output_mb: u64,

    /// Base image of Node.js functions; built locally from Debian packages when absent.
    #[arg(long, env = "VCD_FAAS_NODEJS_BASE_IMAGE", default_value = "vcd-faas/runtime-nodejs:bookworm")]
    pub nodejs_base_image: String,
    /// Base image of Python functions; built locally from Debian packages when absent.
    #[arg(long, env = "VCD_FAAS_PYTHON_BASE_IMAGE", default_value = "vcd-faas/runtime-python:bookworm")]
    pub python_base_image: String,

    /// Seconds a warm container waits for its next call before it is removed.
    #[arg(long, env = "VCD_FAAS_IDLE_SECS", default_value_t = 300)]
    pub idle_secs: u64,
    /// Memory (MB of container limits) that pre-started spares may hold, over all functions:
    /// a warm function called within the idle time keeps its next container started and
    /// paused, so its next cold start is an unpause. 0: spares are created, not started.
    #[arg(long, env = "VCD_FAAS_PRESTARTED_MB", default_value_t = 0)]
    pub prestarted_mb: i64,
    /// Stem cells kept per language: runtimes started ahead with no function in them, paused,
    /// each with `VCD_FAAS_DEFAULT_MEMORY_MB`, within `VCD_FAAS_PRESTARTED_MB` (which they
    /// share with the pre-started spares). A cold start with no spare of its own takes one, so
    /// a burst of first calls costs an unpause each. 0: none.
    #[arg(long, env = "VCD_FAAS_STEM_CELLS", default_value_t = 0)]
    pub stem_cells: usize,
    /// Calls that may queue per instance of a busy function; more get 429 at once.
    #[arg(long, env = "VCD_FAAS_QUEUE_PER_INSTANCE", default_value_t = 8)]
    pub queue_per_instance: usize,
    /// Containers a function of a new tenant may run at once (tenant limit).
    #[arg(long, env = "VCD_FAAS_DEFAULT_MAX_INSTANCES", default_value_t = 10)]
    pub default_max_instances: i64,

    /// Names of the RabbitMQ objects of asynchronous calls start with this: the exchange
    /// `<prefix>.async` and one durable queue per function, `<prefix>.async.<tenant>.<function>`.
    /// Used when AMQP_URL is set; without it the database is the queue.
    #[arg(long, env = "VCD_FAAS_ASYNC_QUEUE_PREFIX", default_value = "vcd-faas")]
    pub async_queue_prefix: String,

    /// Days a call's record (status, duration, logs) is kept; older ones are deleted.
    #[arg(long, env = "VCD_FAAS_RECORD_DAYS", default_value_t = 7, value_parser = clap::value_parser!(u64).range(1..))]
    pub record_days: u64,
    /// Most call records kept per function, the newest; a busy function's older ones go sooner.
    #[arg(long, env = "VCD_FAAS_RECORDS_PER_FUNCTION", default_value_t = 100_000, value_parser = clap::value_parser!(i64).range(1..))]
    pub records_per_function: i64,

    /// Seconds between two passes of the reconciler.
    #[arg(long, env = "VCD_FAAS_RECONCILE_SECS", default_value_t = 30)]
    pub reconcile_secs: u64,

    /// Threads that serve requests; 0: half the machine's cores (at least one). The function
    /// containers share the machine: each more gateway thread adds wake-ups and context
    /// switches for work a few threads batch well.
    #[arg(long, env = "VCD_FAAS_WORKER_THREADS", default_value_t = 0)]
    pub worker_threads: usize,

    /// The server's CPU priority next to the function containers it shares the machine with:
    /// `batch` (the default) runs its threads under Linux's SCHED_BATCH at nice 5, so a busy
    /// gateway is not woken ahead of the containers for each call and serves many calls per
    /// turn (on 2 cores about a third fewer CPU µs per call; see the README's Performance);
    /// `normal` leaves the ordinary policy.
    #[arg(long, env = "VCD_FAAS_CPU_PRIORITY", value_enum, default_value_t = CpuPriority::Batch)]
    pub cpu_priority: CpuPriority,

    /// Mark session cookies `Secure` (set when the portal is served over TLS by a proxy).
    #[arg(long, env = "VCD_FAAS_SECURE_COOKIES", default_value_t = false)]
    pub secure_cookies: bool,

    #[command(flatten)]
    pub vcd: VcdConfig,

    #[command(flatten)]
    pub cluster: ClusterConfig,

    #[command(subcommand)]
    pub command: Option<Command>,
}

/// How fronts and worker nodes of one installation find and trust each other.
#[derive(Args, Clone, Debug)]
pub struct ClusterConfig {
    /// Shared by every front and node of the installation: a node takes forwarded calls only
    /// from a caller that sends it. Needed by `vcd-faas node`, and by a front to use nodes.
    #[arg(long, env = "VCD_FAAS_CLUSTER_SECRET", hide_env_values = true)]
    pub cluster_secret: Option<Secret>,
    /// Where this node takes forwarded calls, an address every front reaches (e.g.
    /// `169.254.77.2:7070`); it registers this address.
    #[arg(long, env = "VCD_FAAS_NODE_ADDR")]
    pub node_addr: Option<SocketAddr>,
    /// This node's name in the Nodes list (letters, digits, `.`, `-`; default: the host name).
    /// It is kept across restarts, so a drained node stays drained.
    #[arg(long, env = "VCD_FAAS_NODE_NAME")]
    pub node_name: Option<String>,
    /// Memory this node offers function containers, in MB (default: the machine's memory).
    #[arg(long, env = "VCD_FAAS_NODE_MEMORY_MB")]
    pub node_memory_mb: Option<i64>,
    /// CPU cores this node offers function containers (default: the machine's cores).
    #[arg(long, env = "VCD_FAAS_NODE_CPUS")]
    pub node_cpus: Option<f64>,
    /// Run function calls in this server process as well (its local worker). `false`: a front
    /// only, which forwards every call to the nodes.
    #[arg(long, env = "VCD_FAAS_LOCAL_WORKER", default_value_t = true, action = clap::ArgAction::Set)]
    pub local_worker: bool,
    /// A node's certificate (PEM, naming the address it registers): it then takes forwarded
    /// calls over TLS only. Needs `VCD_FAAS_NODE_TLS_KEY`.
    #[arg(long, env = "VCD_FAAS_NODE_TLS_CERT")]
    pub node_tls_cert: Option<std::path::PathBuf>,
    /// The private key of `VCD_FAAS_NODE_TLS_CERT` (PEM).
    #[arg(long, env = "VCD_FAAS_NODE_TLS_KEY")]
    pub node_tls_key: Option<std::path::PathBuf>,
    /// The CA certificate (PEM) the nodes' certificates are signed with: a front then speaks
    /// only TLS to nodes and trusts no other CA for them.
    #[arg(long, env = "VCD_FAAS_CLUSTER_CA")]
    pub cluster_ca: Option<std::path::PathBuf>,
}

/// How the platform joins VMware Cloud Director: the broker it shares with vCD (API calls and
/// notifications arrive there) and vCD's REST API (where the extension service is registered).
#[derive(clap::Args, Clone, Debug)]
pub struct VcdConfig {
    /// How vCD's API calls and events reach the platform: `amqp` (an extension service on the
    /// RabbitMQ vCD uses), `mqtt` (an API extension on vCD's own MQTT broker, vCD 10.3.1+), or
    /// `auto` (MQTT when vCD's API version offers it, AMQP otherwise).
    #[arg(long, env = "VCD_TRANSPORT", value_enum, default_value_t = VcdTransport::Amqp)]
    pub vcd_transport: VcdTransport,
    /// vCD's MQTT broker; unset: `wss://<VCD_URL's host>/messaging/mqtt`.
    #[arg(long, env = "VCD_MQTT_URL")]
    pub vcd_mqtt_url: Option<String>,
    /// Vendor and version of the MQTT API extension (its name is VCD_SERVICE_NAME): together
    /// they name it in vCD, `urn:vcloud:extension-api:<vendor>:<name>:<version>`.
    #[arg(long, env = "VCD_EXTENSION_VENDOR", default_value = "vcd-faas")]
    pub vcd_extension_vendor: String,
    #[arg(long, env = "VCD_EXTENSION_VERSION", default_value = "1.0.0")]
    pub vcd_extension_version: String,
    /// vCD's `extensibility.timeout` (seconds it waits for an MQTT extension's answer): a call
    /// still running then is answered 504, just before, so the caller learns why.
    #[arg(long, env = "VCD_EXTENSIBILITY_TIMEOUT_SECS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    pub vcd_extensibility_timeout_secs: u64,
    /// RabbitMQ that vCD publishes to (`amqp://user:password@host:5672/%2f`); unset: no AMQP.
    #[arg(long, env = "AMQP_URL", hide_env_values = true)]
    pub amqp_url: Option<Secret>,
    /// vCD's address (`https://vcd.example.com`); unset: routes are served here only.
    #[arg(long, env = "VCD_URL")]
    pub vcd_url: Option<String>,
    /// A system administrator of vCD, as `user@System`.
    #[arg(long, env = "VCD_USER", default_value = "administrator@System")]
    pub vcd_user: String,
    #[arg(long, env = "VCD_PASSWORD", hide_env_values = true)]
    pub vcd_password: Option<Secret>,
    /// vCD API version to speak (e.g. `37.0`); unset: the highest one vCD offers.
    #[arg(long, env = "VCD_API_VERSION")]
    pub vcd_api_version: Option<String>,
    /// Accept vCD's TLS certificate without checking it (self-signed lab installations).
    #[arg(long, env = "VCD_INSECURE_TLS", default_value_t = false)]
    pub vcd_insecure_tls: bool,
    /// Name and namespace of the extension service registered in vCD.
    #[arg(long, env = "VCD_SERVICE_NAME", default_value = "vcd-faas")]
    pub vcd_service_name: String,
    #[arg(long, env = "VCD_SERVICE_NAMESPACE", default_value = "vcd-faas")]
    pub vcd_service_namespace: String,
    /// The extension's exchange (direct) and routing key: vCD publishes API calls there.
    #[arg(long, env = "VCD_EXCHANGE", default_value = "vcd-faas")]
    pub vcd_exchange: String,
    #[arg(long, env = "VCD_ROUTING_KEY", default_value = "vcd-faas")]
    pub vcd_routing_key: String,
    /// Durable queue of API calls, bound to the exchange with the routing key.
    #[arg(long, env = "VCD_API_QUEUE", default_value = "vcd-faas.api")]
    pub vcd_api_queue: String,
    /// vCD's AMQP prefix: notifications come from the topic exchange `<prefix>.notifications20`.
    #[arg(long, env = "VCD_AMQP_PREFIX", default_value = "vcd")]
    pub vcd_amqp_prefix: String,
    /// Durable queue of the notifications that event triggers need.
    #[arg(long, env = "VCD_EVENTS_QUEUE", default_value = "vcd-faas.events")]
    pub vcd_events_queue: String,
    /// API calls taken from the broker at once (unacknowledged messages).
    #[arg(long, env = "VCD_AMQP_PREFETCH", default_value_t = 64)]
    pub amqp_prefetch: u16,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum VcdTransport {
    Amqp,
    Mqtt,
    Auto,
}

impl Config {
    /// The number of request threads `worker_threads` stands for.
    pub fn request_threads(&self) -> usize {
        if self.worker_threads > 0 {
            return self.worker_threads;
        }
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        (cores / 2).max(1)
    }
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum CpuPriority {
    Batch,
    Normal,
}

#[derive(Subcommand, Clone, Debug)]
pub enum Command {
    /// Serve the portal, the API and the function routes (the default).
    Serve,
    /// Run as a worker node beside one Docker engine: build and run function containers for
    /// the calls the fronts forward (no portal). Needs PostgreSQL, VCD_FAAS_NODE_ADDR and
    /// VCD_FAAS_CLUSTER_SECRET.
    Node,
    /// Build (or pull) the runtime base images now, showing progress, then exit.
    PrepareImages,
    /// Manage the extension service in vCD.
    Vcd {
        #[command(subcommand)]
        action: VcdAction,
    },
    /// The developer CLI: sign in, init, deploy, invoke, logs, list, delete functions of a
    /// portal (`vcd-faas fn --help`). Reads none of the server's settings.
    #[command(after_help = crate::cli::args::EXIT_CODES_HELP)]
    Fn {
        #[command(subcommand)]
        command: crate::cli::args::FnCommand,
    },
}

#[derive(Subcommand, Clone, Debug)]
pub enum VcdAction {
    /// Disable and delete the extension service and the MQTT API extension (their API filters
    /// and tokens go with them).
    Unregister,
}

impl Config {
    pub fn database_url(&self) -> String {
        match &self.database_url {
            Some(url) => url.clone(),
            None => format!("sqlite://{}/vcd-faas.db", self.data_dir.display()),
        }
    }

    pub fn max_files_bytes(&self) -> usize {
        self.max_files_mb as usize * 1024 * 1024
    }

    pub fn socket_dir(&self) -> PathBuf {
        self.data_dir.join("sockets")
    }

    /// Settings for tests: everything local, under `data_dir`.
    pub fn for_tests(data_dir: PathBuf, database_url: String) -> Config {
        let mut config = Config::parse_from(["vcd-faas"]);
        config.data_dir = data_dir;
        config.database_url = Some(database_url);
        config.listen = "127.0.0.1:0".parse().unwrap();
        config.admin_password = Some(Secret("admin-password".into()));
        config
    }
}

/// A secret that never prints.
#[derive(Clone)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(…)")
    }
}

impl std::str::FromStr for Secret {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Secret(s.to_string()))
    }
}
