//! The benchmark: how far each call path is from the engine's own floor, on this machine.
//! Starts the real server binary (next to this one), creates hello functions in Node.js and
//! Python, and measures, side by side in one run:
//! - cold calls: `per-call` through the platform, and `warm` taking the container the pool
//!   made ahead (the spare: pre-started and paused within `BENCH_PRESTARTED_MB`, else only
//!   created), against `docker run --rm` of the same image and against `docker unpause` of a
//!   paused container of it answering its first request; and bursts of 16 first calls at once,
//!   to one function and to 16 functions (none may fail);
//! - warm calls: through the platform against a request sent straight to the same container;
//! - throughput at 1, 16 and 64 concurrent clients, platform against direct;
//! - the server's memory at rest and under load.
//! Prints a table and writes the figures as JSON (default `bench-results.json`).

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::{TcpStream, UnixStream};

const PASSWORD: &str = "bench-admin-password";
const NODE_HELLO: &str = "module.exports = async (event) => ({ message: `Hello, ${event.query.name || 'world'}!` });\n";
/// The benchmark's functions per language: name suffix and mode. `spare` is a warm function
/// whose cold calls start the container created ahead of them.
const FUNCTIONS: [(&str, &str); 3] = [("warm", "warm"), ("per-call", "per-call"), ("spare", "warm")];
/// Functions per language for the bursts of first calls: `burst-0` takes 16 at once, `burst-1`
/// to `burst-16` one each, all at once.
const BURST: usize = 16;
/// Calls one container of the throughput function serves at once.
const THROUGHPUT_CONCURRENCY: i64 = 16;
const PYTHON_HELLO: &str = "def handle(event, context):\n    return {'message': 'Hello, ' + event['query'].get('name', 'world') + '!'}\n";

struct Settings {
    cold_samples: usize,
    warm_samples: usize,
    load_secs: u64,
    instances: i64,
    output: PathBuf,
    /// The languages measured (`BENCH_LANGUAGES`, comma-separated; default all).
    languages: Vec<&'static Language>,
    /// The server's `VCD_FAAS_PRESTARTED_MB` (`BENCH_PRESTARTED_MB`; 0 measures spares that are
    /// only created).
    prestarted_mb: u64,
    /// The server's `VCD_FAAS_STEM_CELLS` (`BENCH_STEM_CELLS`): cells kept per language.
    stem_cells: u64,
}

fn settings() -> Settings {
    let env = |k: &str, d: u64| std::env::var(k).ok().and_then(|v| v.parse().ok()).unwrap_or(d);
    Settings {
        cold_samples: env("BENCH_COLD_SAMPLES", 20) as usize,
        warm_samples: env("BENCH_WARM_SAMPLES", 1000) as usize,
        load_secs: env("BENCH_LOAD_SECS", 5),
        instances: env("BENCH_INSTANCES", 4) as i64,
        // Room for a burst's worth of stem cells per language (128 MB each), and spares.
        prestarted_mb: env("BENCH_PRESTARTED_MB", 2 * BURST as u64 * 128 + 1024),
        stem_cells: env("BENCH_STEM_CELLS", BURST as u64),
        output: std::env::var("BENCH_OUTPUT").unwrap_or_else(|_| "bench-results.json".into()).into(),
        languages: match std::env::var("BENCH_LANGUAGES") {
            Ok(list) => {
                let chosen: Vec<&Language> = LANGUAGES.iter().filter(|l| list.split(',').any(|n| n.trim() == l.name)).collect();
                assert!(!chosen.is_empty(), "BENCH_LANGUAGES={list:?} names none of: nodejs, python");
                chosen
            }
            Err(_) => LANGUAGES.iter().collect(),
        },
    }
}

/// A keep-alive HTTP client for the platform.
struct Client {
    addr: String,
    sender: Option<hyper::client::conn::http1::SendRequest<Full<Bytes>>>,
    /// The `x-vcd-faas-path` of the last answer: which path served the call.
    last_path: Option<String>,
}

impl Client {
    fn new(addr: &str) -> Client {
        Client { addr: addr.to_string(), sender: None, last_path: None }
    }

    async fn send(&mut self, method: &str, path: &str, token: Option<&str>, body: Option<&Value>) -> Result<(u16, Bytes), String> {
        if self.sender.as_ref().map_or(true, |s| s.is_closed()) {
            let stream = TcpStream::connect(&self.addr).await.map_err(|e| e.to_string())?;
            stream.set_nodelay(true).ok();
            let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.map_err(|e| e.to_string())?;
            tokio::spawn(conn);
            self.sender = Some(sender);
        }
        let mut request = http::Request::builder().method(method).uri(path).header("host", &self.addr);
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        let payload = body.map(|b| Bytes::from(b.to_string())).unwrap_or_default();
        let request = request.header("content-type", "application/json").body(Full::new(payload)).map_err(|e| e.to_string())?;
        let sender = self.sender.as_mut().expect("connected");
        sender.ready().await.map_err(|e| e.to_string())?;
        let response = sender.send_request(request).await.map_err(|e| e.to_string())?;
        let status = response.status().as_u16();
        self.last_path = response.headers().get("x-vcd-faas-path").and_then(|v| v.to_str().ok()).map(str::to_string);
        let body = response.into_body().collect().await.map_err(|e| e.to_string())?.to_bytes();
        Ok((status, body))
    }

    async fn json(&mut self, method: &str, path: &str, token: Option<&str>, body: Option<Value>) -> Value {
        let (status, bytes) = self.send(method, path, token, body.as_ref()).await.expect("platform answers");
        let value: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        assert!(status < 400, "{method} {path}: {status} {value}");
        value
    }
}

/// What the gateway sends a runtime for `GET ?name=bench`.
fn envelope(function: &str) -> Bytes {
    Bytes::from(
        json!({
            "event": {"method": "GET", "path": "/", "query": {"name": "bench"}, "headers": {}, "body": "", "isBase64Encoded": false},
            "context": {"function": function, "version": 1, "tenant": "bench", "requestId": "direct", "deadline": 0}
        })
        .to_string(),
    )
}

/// A keep-alive client of one container's runtime, as the gateway itself talks to it: the
/// fastest a caller next to the container can get an answer.
struct Direct {
    socket: PathBuf,
    sender: Option<hyper::client::conn::http1::SendRequest<Full<Bytes>>>,
}

impl Direct {
    fn new(socket: &Path) -> Direct {
        Direct { socket: socket.to_path_buf(), sender: None }
    }

    async fn call(&mut self, envelope: Bytes) -> Result<(u16, Bytes), String> {
        if self.sender.as_ref().map_or(true, |s| s.is_closed()) {
            let stream = UnixStream::connect(&self.socket).await.map_err(|e| e.to_string())?;
            let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.map_err(|e| e.to_string())?;
            tokio::spawn(conn);
            self.sender = Some(sender);
        }
        let sender = self.sender.as_mut().expect("connected");
        sender.ready().await.map_err(|e| e.to_string())?;
        let request = http::Request::post("/invoke").header("host", "function").body(Full::new(envelope)).unwrap();
        let response = sender.send_request(request).await.map_err(|e| e.to_string())?;
        let status = response.status().as_u16();
        let body = response.into_body().collect().await.map_err(|e| e.to_string())?.to_bytes();
        Ok((status, body))
    }
}

fn percentile(samples: &mut [f64], p: f64) -> f64 {
    if samples.is_empty() {
        return f64::NAN;
    }
    samples.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let rank = ((p / 100.0) * (samples.len() - 1) as f64).round() as usize;
    samples[rank]
}

fn rss_mb(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map(|kb| kb / 1024.0)
        .unwrap_or(f64::NAN)
}

/// CPU seconds a process has used (user + system).
fn cpu_secs(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces) start at the state, field 3.
    let fields: Vec<&str> = stat.rsplit_once(')').map(|(_, rest)| rest.split_whitespace().collect()).unwrap_or_default();
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(f64::NAN);
    // utime and stime are fields 14 and 15, in clock ticks of 1/100 s on Linux.
    (ticks(11) + ticks(12)) / 100.0
}

/// Runs `clients` loops for `secs`; returns (calls per second, failed calls).
async fn throughput<F, Fut>(clients: usize, secs: u64, call: F) -> (f64, u64)
where
    F: Fn(usize) -> Fut + Send + Sync + Clone + 'static,
    Fut: std::future::Future<Output = bool> + Send,
{
    let stop = Arc::new(AtomicBool::new(false));
    let (done, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..clients {
        let (stop, done, failed, call) = (stop.clone(), done.clone(), failed.clone(), call.clone());
        tasks.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                if call(i).await {
                    done.fetch_add(1, Ordering::Relaxed);
                } else {
                    failed.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_secs(secs)).await;
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        let _ = t.await;
    }
    (done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64(), failed.load(Ordering::Relaxed))
}

/// Ids of the bench tenant's containers of `function` in a Docker state (`running`, `created`).
fn containers_in_state(function: &str, state: &str) -> Vec<String> {
    let out = Command::new("docker")
        .args(["ps", "-aq", "--filter", "label=vcd-faas.tenant=bench", "--filter"])
        .arg(format!("label=vcd-faas.function={function}"))
        .args(["--filter", &format!("status={state}")])
        .output()
        .expect("docker CLI");
    String::from_utf8_lossy(&out.stdout).split_whitespace().map(str::to_string).collect()
}

/// Paused containers on the engine (the benchmark runs alone on it): how many, and the memory
/// they use (MB, as `docker stats` reads it from their cgroups), not their limits.
fn paused_memory() -> (usize, f64) {
    let out = Command::new("docker").args(["ps", "-q", "--filter", "status=paused"]).output().expect("docker CLI");
    let ids: Vec<String> = String::from_utf8_lossy(&out.stdout).split_whitespace().map(str::to_string).collect();
    if ids.is_empty() {
        return (0, 0.0);
    }
    let out = Command::new("docker").args(["stats", "--no-stream", "--format", "{{.MemUsage}}"]).args(&ids).output().expect("docker CLI");
    let mb: f64 = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split('/').next())
        .filter_map(|used| {
            let used = used.trim();
            let (number, unit) = used.split_at(used.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(used.len()));
            let factor = match unit {
                "GiB" => 1024.0,
                "MiB" => 1.0,
                "KiB" => 1.0 / 1024.0,
                _ => 1.0 / (1024.0 * 1024.0),
            };
            number.parse::<f64>().ok().map(|n| n * factor)
        })
        .sum();
    (ids.len(), mb)
}

/// Names of the bench tenant's running containers of `function`.
fn running_names(function: &str) -> Vec<String> {
    let out = Command::new("docker")
        .args(["ps", "--filter", "label=vcd-faas.tenant=bench", "--filter", "status=running", "--format", "{{.Names}}", "--filter"])
        .arg(format!("label=vcd-faas.function={function}"))
        .output()
        .expect("docker CLI");
    String::from_utf8_lossy(&out.stdout).split_whitespace().map(str::to_string).collect()
}

/// Removes the warm container of a function, as the idle timeout would, and waits until the
/// pool has made the spare that the next (cold) call takes: `paused` (pre-started) or
/// `created`.
async fn make_next_call_cold(function: &str, spare_state: &str) {
    let running = containers_in_state(function, "running");
    if !running.is_empty() {
        let out = Command::new("docker").args(["rm", "-f"]).args(&running).output().expect("docker CLI");
        assert!(out.status.success(), "docker rm: {}", String::from_utf8_lossy(&out.stderr));
    }
    let start = Instant::now();
    while containers_in_state(function, spare_state).is_empty() {
        assert!(start.elapsed() < Duration::from_secs(30), "no spare container for {function}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Let the engine settle after the removal, so the sample measures the call alone.
    tokio::time::sleep(Duration::from_millis(300)).await;
}

/// `paths` called at once, each on a connection of its own: how long each took (ms), how many
/// failed, and how many calls each path (`x-vcd-faas-path`) served.
async fn burst(addr: &str, token: &str, paths: Vec<String>) -> (Vec<f64>, usize, std::collections::BTreeMap<String, usize>) {
    let calls = paths.into_iter().map(|path| {
        let (addr, token) = (addr.to_string(), token.to_string());
        async move {
            let mut client = Client::new(&addr);
            let t = Instant::now();
            let answered = client.send("GET", &path, Some(&token), None).await;
            (ms(t.elapsed()), matches!(answered, Ok((200, _))), client.last_path.unwrap_or_else(|| "none".into()))
        }
    });
    let (mut times, mut failed, mut served) = (Vec::new(), 0, std::collections::BTreeMap::new());
    for (took, ok, path) in futures_util::future::join_all(calls).await {
        times.push(took);
        failed += usize::from(!ok);
        *served.entry(path).or_insert(0) += 1;
    }
    (times, failed, served)
}

/// Waits (up to a minute) until the server keeps `per_language` stem cells of each language,
/// so a burst finds them all.
async fn wait_for_stem_cells(api: &mut Client, admin: &str, per_language: u64) {
    let wanted = format!("vcdfaas_pool_stem_cells {}", 2 * per_language);
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(60) {
        let (_, metrics) = api.send("GET", "/metrics", Some(admin), None).await.unwrap();
        if String::from_utf8_lossy(&metrics).lines().any(|l| l == wanted) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    eprintln!("not all stem cells were ready after a minute (wanted {wanted}); measuring anyway");
}

/// gVisor beside runc: a tenant on gVisor, per language a per-call function (cold calls: gVisor
/// has no stem cells, so each creates and starts a sandbox) and a warm one. A table line per
/// language and the figures; `Err` when the provider cannot choose gVisor here.
async fn gvisor(api: &mut Client, admin: &str, s: &Settings) -> Result<(Vec<(&'static str, String)>, Value), String> {
    let tenant = api.json("POST", "/api/v1/tenants", Some(admin), Some(json!({"name": "bench-gv", "max_instances": 16, "sandbox": "gvisor"}))).await;
    if tenant["name"] != "bench-gv" {
        return Err(format!("the tenant was refused: {tenant}"));
    }
    api.json("POST", "/api/v1/tenants/bench-gv/users", Some(admin), Some(json!({"username": "dev", "password": "bench-password", "role": "developer"}))).await;
    let token = api.json("POST", "/api/v1/tokens", None, Some(json!({"org": "bench-gv", "username": "dev", "password": "bench-password"}))).await;
    let token = token["token"].as_str().unwrap().to_string();
    let (mut lines, mut figures) = (Vec::new(), serde_json::Map::new());
    for lang in &s.languages {
        eprintln!("{}: gVisor", lang.name);
        for (suffix, mode) in [("per-call", "per-call"), ("warm", "warm")] {
            let spec = json!({"name": format!("{}-{suffix}", lang.name), "language": lang.name, "code": lang.code, "mode": mode, "timeout_ms": 10000});
            api.json("POST", "/api/v1/functions", Some(&token), Some(spec)).await;
        }
        for suffix in ["per-call", "warm"] {
            let name = format!("{}-{suffix}", lang.name);
            while api.json("GET", &format!("/api/v1/functions/{name}"), Some(&token), None).await["status"] != "ready" {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        let mut cold = Vec::new();
        for _ in 0..s.cold_samples {
            cold.push(timed(api, &format!("/api/org/bench-gv/{}-per-call?name=bench", lang.name), &token).await);
        }
        let mut warm = Vec::new();
        for _ in 0..s.warm_samples {
            warm.push(timed(api, &format!("/api/org/bench-gv/{}-warm?name=bench", lang.name), &token).await);
        }
        let (cold50, cold95, warm50, warm99) = (percentile(&mut cold, 50.0), percentile(&mut cold, 95.0), percentile(&mut warm, 50.0), percentile(&mut warm, 99.0));
        lines.push((lang.name, format!("{:<7} gVisor cold per-call p50 {cold50:>7.1} ms  p95 {cold95:>7.1} ms  warm p50 {warm50:>6.2} ms  p99 {warm99:>6.2} ms", lang.name)));
        figures.insert(lang.name.into(), json!({"cold_per_call_ms": {"p50": cold50, "p95": cold95}, "warm_ms": {"p50": warm50, "p99": warm99}}));
        for suffix in ["per-call", "warm"] {
            let _ = api.send("DELETE", &format!("/api/v1/functions/{}-{suffix}", lang.name), Some(&token), None).await;
        }
    }
    Ok((lines, Value::Object(figures)))
}

/// One call that must answer 200: how long it took (ms).
async fn timed(api: &mut Client, path: &str, token: &str) -> f64 {
    let t = Instant::now();
    let (status, _) = api.send("GET", path, Some(token), None).await.unwrap();
    assert_eq!(status, 200, "{path}");
    ms(t.elapsed())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

struct Language {
    name: &'static str,
    code: &'static str,
    /// The interpreter command that answers the hello once inside the function's image.
    once: &'static str,
}

const LANGUAGES: [Language; 2] = [
    Language {
        name: "nodejs",
        code: NODE_HELLO,
        once: "require('/app/handler.js')({query:{name:'bench'}}).then(r => console.log(JSON.stringify(r)))",
    },
    Language {
        name: "python",
        code: PYTHON_HELLO,
        once: "import json,sys; sys.path.insert(0,'/app'); import handler; print(json.dumps(handler.handle({'query':{'name':'bench'}},{})))",
    },
];

#[tokio::main]
async fn main() {
    let s = settings();
    let exe = std::env::current_exe().unwrap();
    let server_bin = exe.with_file_name("vcd-faas");
    let data = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let addr = format!("127.0.0.1:{port}");
    let server = Command::new(&server_bin)
        .env("VCD_FAAS_DATA_DIR", data.path())
        .env("LEPTOS_SITE_ADDR", &addr)
        .env("VCD_FAAS_ADMIN_PASSWORD", PASSWORD)
        .env("VCD_FAAS_PRESTARTED_MB", s.prestarted_mb.to_string())
        .env("VCD_FAAS_STEM_CELLS", s.stem_cells.to_string())
        .env("RUST_LOG", std::env::var("BENCH_SERVER_LOG").unwrap_or_else(|_| "warn".into()))
        .env_remove("DATABASE_URL")
        // The server's log, to read when a figure looks wrong.
        .stdout(std::fs::File::create(s.output.with_extension("server.log")).expect("server log file"))
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", server_bin.display()));
    let server = ServerProcess(server);
    let pid = server.0.id();
    let mut api = Client::new(&addr);
    let start = Instant::now();
    while api.send("GET", "/api/v1/openapi.json", None, None).await.is_err() {
        assert!(start.elapsed() < Duration::from_secs(60), "server did not start");
        api.sender = None;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!("server up (pid {pid}); setting up");
    let admin = api.json("POST", "/api/v1/tokens", None, Some(json!({"org": "provider", "username": "admin", "password": PASSWORD}))).await;
    let admin = admin["token"].as_str().unwrap().to_string();
    api.json("POST", "/api/v1/tenants", Some(&admin), Some(json!({"name": "bench", "max_instances": 64}))).await;
    api.json("POST", "/api/v1/tenants/bench/users", Some(&admin), Some(json!({"username": "dev", "password": "bench-password", "role": "developer"}))).await;
    let token = api.json("POST", "/api/v1/tokens", None, Some(json!({"org": "bench", "username": "dev", "password": "bench-password"}))).await;
    let token = token["token"].as_str().unwrap().to_string();
    // One function at a time, so each figure is one build: submit → `ready`.
    let mut submit_to_ready = serde_json::Map::new();
    for lang in &s.languages {
        for (suffix, mode) in FUNCTIONS {
            let name = format!("{}-{suffix}", lang.name);
            let mut spec = json!({"name": name, "language": lang.name, "code": lang.code,
                                  "mode": mode, "max_instances": s.instances, "timeout_ms": 10000});
            if suffix == "warm" {
                // The throughput runs compare the gateway with clients that send straight to
                // the same containers, many calls at once each: the function may take as many
                // (64 clients over its instances), and all its instances are up beforehand.
                spec["concurrency"] = json!(THROUGHPUT_CONCURRENCY);
                spec["min_instances"] = json!(s.instances);
            }
            let submitted = Instant::now();
            api.json("POST", "/api/v1/functions", Some(&token), Some(spec)).await;
            loop {
                let f = api.json("GET", &format!("/api/v1/functions/{name}"), Some(&token), None).await;
                if f["status"] == "ready" {
                    break;
                }
                assert_ne!(f["status"], "failed", "{name}: {}", f["build_log"]);
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            submit_to_ready.insert(name, json!(ms(submitted.elapsed())));
        }
    }
    let rss_rest = rss_mb(pid);
    let mut results = serde_json::Map::new();
    let mut table = Vec::new();

    for lang in &s.languages {
        eprintln!("{}: cold calls", lang.name);
        let per_call = format!("/api/org/bench/{}-per-call?name=bench", lang.name);
        let (mut cold, mut cold_paths) = (Vec::new(), std::collections::BTreeMap::new());
        for _ in 0..s.cold_samples {
            // Each sample finds the stem cells full, as a first call after a quiet moment does.
            wait_for_stem_cells(&mut api, &admin, s.stem_cells).await;
            let t = Instant::now();
            let (status, _) = api.send("GET", &per_call, Some(&token), None).await.unwrap();
            assert_eq!(status, 200);
            cold.push(ms(t.elapsed()));
            *cold_paths.entry(api.last_path.clone().unwrap_or_default()).or_insert(0) += 1;
        }
        let spare = format!("/api/org/bench/{}-spare?name=bench", lang.name);
        let (spare_state, spare_path) = if s.prestarted_mb > 0 { ("paused", "pre-started") } else { ("created", "started") };
        let mut cold_spare = Vec::new();
        for _ in 0..s.cold_samples {
            make_next_call_cold(&format!("{}-spare", lang.name), spare_state).await;
            let t = Instant::now();
            let (status, _) = api.send("GET", &spare, Some(&token), None).await.unwrap();
            assert_eq!((status, api.last_path.as_deref()), (200, Some(spare_path)), "the cold call's path");
            cold_spare.push(ms(t.elapsed()));
        }
        eprintln!("{}: bursts of {BURST} first calls", lang.name);
        // Made now and deleted after, so their spares take no part of the pre-started budget
        // from the measurements before.
        let bursting: Vec<String> = (0..=BURST).map(|i| format!("{}-burst-{i}", lang.name)).collect();
        for name in &bursting {
            let spec = json!({"name": name, "language": lang.name, "code": lang.code, "max_instances": BURST, "timeout_ms": 10000});
            api.json("POST", "/api/v1/functions", Some(&token), Some(spec)).await;
        }
        for name in &bursting {
            let started = Instant::now();
            // Ready, and its spare made (pre-started or created): a first call as any other.
            while containers_in_state(name, "paused").is_empty() && containers_in_state(name, "created").is_empty() {
                let f = api.json("GET", &format!("/api/v1/functions/{name}"), Some(&token), None).await;
                assert_ne!(f["status"], "failed", "{name}: {}", f["build_log"]);
                assert!(started.elapsed() < Duration::from_secs(120), "{name} not ready with a spare: {f}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        let one = format!("/api/org/bench/{}-burst-0?name=bench", lang.name);
        wait_for_stem_cells(&mut api, &admin, s.stem_cells).await;
        let (paused, paused_mb) = paused_memory();
        table.push(format!("{:<7} before the bursts: {paused} paused containers (stem cells and pre-started spares) use {paused_mb:.1} MB", lang.name));
        let (mut to_one, failed_one, paths_one) = burst(&addr, &token, vec![one; BURST]).await;
        let many = (1..=BURST).map(|i| format!("/api/org/bench/{}-burst-{i}?name=bench", lang.name)).collect();
        wait_for_stem_cells(&mut api, &admin, s.stem_cells).await;
        let (mut to_many, failed_many, paths_many) = burst(&addr, &token, many).await;
        for name in &bursting {
            api.send("DELETE", &format!("/api/v1/functions/{name}"), Some(&token), None).await.unwrap();
        }
        let image = format!("vcd-faas/bench/{}-warm:v1", lang.name);
        let interpreter = if lang.name == "nodejs" { vec!["node", "-e"] } else { vec!["python3", "-c"] };
        let mut floor = Vec::new();
        for _ in 0..s.cold_samples {
            let t = Instant::now();
            let out = Command::new("docker")
                // The same sandbox as the platform's containers (default limits), so both
                // start equally fast.
                .args(["run", "--rm", "--network", "none", "--read-only", "--user", "10001:10001"])
                .args(["--cpus", "0.5", "--memory", "128m", "--pids-limit", "64", &image])
                .args(&interpreter)
                .arg(lang.once)
                .output()
                .expect("docker CLI");
            assert!(String::from_utf8_lossy(&out.stdout).contains("Hello, bench!"), "{}", String::from_utf8_lossy(&out.stderr));
            floor.push(ms(t.elapsed()));
        }

        eprintln!("{}: warm calls", lang.name);
        let warm = format!("/api/org/bench/{}-warm?name=bench", lang.name);
        // Every instance the throughput runs use is up (min_instances) before they start.
        let socket_prefix = format!("vcd-faas-bench-{}-warm-", lang.name);
        // Of running containers only: a pre-started spare's socket is there too, paused.
        let listening = || -> Vec<PathBuf> {
            let running = running_names(&format!("{}-warm", lang.name));
            std::fs::read_dir(data.path().join("sockets"))
                .unwrap()
                .filter_map(|e| e.ok())
                .filter(|e| e.file_name().to_string_lossy().starts_with(&socket_prefix))
                .filter(|e| running.contains(&e.file_name().to_string_lossy().to_string()))
                .map(|e| e.path().join("sock"))
                .filter(|p| p.exists())
                .collect()
        };
        let waited = Instant::now();
        while listening().len() < s.instances as usize {
            assert!(waited.elapsed() < Duration::from_secs(60), "the warm function's instances did not start");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let mut platform = Vec::new();
        for _ in 0..s.warm_samples {
            let t = Instant::now();
            let (status, _) = api.send("GET", &warm, Some(&token), None).await.unwrap();
            assert_eq!(status, 200);
            platform.push(ms(t.elapsed()));
        }
        let sockets = listening();
        let body = envelope(&format!("{}-warm", lang.name));
        let mut direct = Vec::new();
        let mut one_direct = Direct::new(&sockets[0]);
        for _ in 0..s.warm_samples {
            let t = Instant::now();
            let (status, _) = one_direct.call(body.clone()).await.unwrap();
            assert_eq!(status, 200);
            direct.push(ms(t.elapsed()));
        }

        // The floor of a pre-started container: one of the warm function's, paused, then
        // `docker unpause` and its first request, on a new connection.
        let mut unpause_floor = Vec::new();
        for i in 0..s.cold_samples {
            let socket = &sockets[i % sockets.len()];
            let container = socket.parent().and_then(|d| d.file_name()).unwrap().to_string_lossy().to_string();
            let docker = |verb: &str| {
                let out = Command::new("docker").args([verb, &container]).output().expect("docker CLI");
                assert!(out.status.success(), "docker {verb}: {}", String::from_utf8_lossy(&out.stderr));
            };
            docker("pause");
            tokio::time::sleep(Duration::from_millis(200)).await;
            let t = Instant::now();
            docker("unpause");
            let (status, _) = Direct::new(socket).call(body.clone()).await.unwrap();
            assert_eq!(status, 200);
            unpause_floor.push(ms(t.elapsed()));
        }

        let mut loads = serde_json::Map::new();
        let mut rss_load = 0f64;
        for clients in [1usize, 16, 64] {
            eprintln!("{}: throughput at {clients} clients", lang.name);
            let (addr2, token2) = (addr.clone(), token.clone());
            let clients_of_platform: Arc<Vec<tokio::sync::Mutex<Client>>> =
                Arc::new((0..clients).map(|_| tokio::sync::Mutex::new(Client::new(&addr2))).collect());
            let ticks = s.load_secs * 4;
            let sampler = tokio::spawn(async move {
                let mut peak = 0f64;
                for _ in 0..ticks {
                    peak = peak.max(rss_mb(pid));
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
                peak
            });
            let cpu_before = cpu_secs(pid);
            let (via_platform, failed_platform) = throughput(clients, s.load_secs, {
                let (clients_of_platform, token2, warm2) = (clients_of_platform.clone(), token2.clone(), warm.clone());
                move |i| {
                    let (clients_of_platform, token2, warm2) = (clients_of_platform.clone(), token2.clone(), warm2.clone());
                    async move {
                        let mut c = clients_of_platform[i].lock().await;
                        matches!(c.send("GET", &warm2, Some(&token2), None).await, Ok((200, _)))
                    }
                }
            })
            .await;
            // The gateway's own cost: server CPU time per served call.
            let cpu_us_per_call = (cpu_secs(pid) - cpu_before) * 1e6 / (via_platform * s.load_secs as f64);
            rss_load = rss_load.max(sampler.await.unwrap_or(0.0)).max(rss_mb(pid));
            // Each client keeps its connection to one of the containers, spread evenly.
            let directs: Arc<Vec<tokio::sync::Mutex<Direct>>> =
                Arc::new((0..clients).map(|i| tokio::sync::Mutex::new(Direct::new(&sockets[i % sockets.len()]))).collect());
            let body2 = body.clone();
            let (straight, failed_direct) = throughput(clients, s.load_secs, move |i| {
                let (directs, body2) = (directs.clone(), body2.clone());
                async move { matches!(directs[i].lock().await.call(body2).await, Ok((200, _))) }
            })
            .await;
            loads.insert(
                clients.to_string(),
                json!({"platform_rps": via_platform, "direct_rps": straight, "ratio": via_platform / straight,
                       "failed_platform": failed_platform, "failed_direct": failed_direct,
                       "server_cpu_us_per_call": cpu_us_per_call}),
            );
            table.push(format!(
                "{:<7} throughput @{clients:>2} clients  platform {via_platform:>8.0}/s  direct {straight:>8.0}/s  ratio {:>5.1} %  failed {failed_platform}/{failed_direct}  server CPU {cpu_us_per_call:.0} µs/call",
                lang.name,
                100.0 * via_platform / straight
            ));
        }

        table.push(format!("{:<7} server memory under load (peak) {rss_load:.1} MB", lang.name));
        let (cold50, cold95) = (percentile(&mut cold, 50.0), percentile(&mut cold, 95.0));
        let (floor50, floor95) = (percentile(&mut floor, 50.0), percentile(&mut floor, 95.0));
        let (spare50, spare95) = (percentile(&mut cold_spare, 50.0), percentile(&mut cold_spare, 95.0));
        let (unpause50, unpause95) = (percentile(&mut unpause_floor, 50.0), percentile(&mut unpause_floor, 95.0));
        let burst_figures = |times: &mut Vec<f64>| (percentile(times, 50.0), percentile(times, 95.0), percentile(times, 100.0));
        let ((one50, one95, one_max), (many50, many95, many_max)) = (burst_figures(&mut to_one), burst_figures(&mut to_many));
        for (what, (p50, p95, max), failed, paths) in [
            (format!("{BURST} at once, 1 fn "), (one50, one95, one_max), failed_one, &paths_one),
            (format!("{BURST} at once, {BURST} fns"), (many50, many95, many_max), failed_many, &paths_many),
        ] {
            table.insert(
                table.len() - 4,
                format!(
                    "{:<7} cold {what} p50 {p50:>7.1} ms  p95 {p95:>7.1} ms  max {max:>7.1} ms  failed {failed}  paths {paths:?}  p95 {:.2}x docker run --rm",
                    lang.name,
                    p95 / floor95
                ),
            );
        }
        let (warm50, warm99) = (percentile(&mut platform, 50.0), percentile(&mut platform, 99.0));
        let (direct50, direct99) = (percentile(&mut direct, 50.0), percentile(&mut direct, 99.0));
        table.insert(
            table.len() - 4,
            format!(
                "{:<7} cold per-call   p50 {cold50:>7.1} ms  p95 {cold95:>7.1} ms   docker run --rm p50 {floor50:>7.1} ms  p95 {floor95:>7.1} ms  ratio p50 {:.2}x",
                lang.name,
                cold50 / floor50
            ),
        );
        table.insert(
            table.len() - 4,
            format!(
                "{:<7} cold {spare_path:<11} p50 {spare50:>7.1} ms  p95 {spare95:>7.1} ms   docker run --rm p50 {floor50:>7.1} ms  p95 {floor95:>7.1} ms  ratio p50 {:.2}x p95 {:.2}x",
                lang.name,
                spare50 / floor50,
                spare95 / floor95
            ),
        );
        table.insert(
            table.len() - 4,
            format!(
                "{:<7} cold {spare_path:<11} p50 {spare50:>7.1} ms  p95 {spare95:>7.1} ms   docker unpause  p50 {unpause50:>7.1} ms  p95 {unpause95:>7.1} ms  ratio p50 {:.2}x p95 {:.2}x",
                lang.name,
                spare50 / unpause50,
                spare95 / unpause95
            ),
        );
        table.insert(
            table.len() - 4,
            format!(
                "{:<7} warm            p50 {warm50:>7.2} ms  p99 {warm99:>7.2} ms   direct          p50 {direct50:>7.2} ms  p99 {direct99:>7.2} ms  overhead p50 {:.2} ms",
                lang.name,
                warm50 - direct50
            ),
        );
        results.insert(
            lang.name.to_string(),
            json!({
                "cold_per_call_ms": {"p50": cold50, "p95": cold95, "paths": cold_paths},
                "cold_warm_spare_ms": {"p50": spare50, "p95": spare95, "path": spare_path},
                "docker_unpause_first_request_ms": {"p50": unpause50, "p95": unpause95},
                "burst_one_function_ms": {"p50": one50, "p95": one95, "max": one_max, "failed": failed_one, "paths": paths_one},
                "burst_many_functions_ms": {"p50": many50, "p95": many95, "max": many_max, "failed": failed_many, "paths": paths_many},
                "docker_run_rm_ms": {"p50": floor50, "p95": floor95},
                "warm_platform_ms": {"p50": warm50, "p99": warm99},
                "warm_direct_ms": {"p50": direct50, "p99": direct99},
                "warm_overhead_p50_ms": warm50 - direct50,
                "throughput": loads,
                "server_rss_mb_under_load": rss_load,
            }),
        );
    }
    // Soak: 64 clients for a minute while the function is updated twice; no call may fail.
    let soak_secs = std::env::var("BENCH_SOAK_SECS").ok().and_then(|v| v.parse().ok()).unwrap_or(60u64);
    eprintln!("soak: 64 clients for {soak_secs} s with two updates");
    let soak_spec = json!({"name": "soak", "language": "nodejs", "code": NODE_HELLO, "max_instances": 16, "timeout_ms": 10000});
    api.json("POST", "/api/v1/functions", Some(&token), Some(soak_spec)).await;
    while api.json("GET", "/api/v1/functions/soak", Some(&token), None).await["status"] != "ready" {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let updater = {
        let (addr, token) = (addr.clone(), token.clone());
        tokio::spawn(async move {
            let mut c = Client::new(&addr);
            let mut versions = Vec::new();
            for n in 2..=3 {
                tokio::time::sleep(Duration::from_secs(soak_secs / 3)).await;
                let code = NODE_HELLO.replace("Hello", &format!("Hello v{n}"));
                let updated = Instant::now();
                c.json("PUT", "/api/v1/functions/soak", Some(&token), Some(json!({"code": code}))).await;
                while c.json("GET", "/api/v1/functions/soak", Some(&token), None).await["version"] != n {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                versions.push(ms(updated.elapsed()));
            }
            versions
        })
    };
    let soak_clients: Arc<Vec<tokio::sync::Mutex<Client>>> = Arc::new((0..64).map(|_| tokio::sync::Mutex::new(Client::new(&addr))).collect());
    let (soak_rps, soak_failed) = throughput(64, soak_secs, {
        let token = token.clone();
        move |i| {
            let (clients, token) = (soak_clients.clone(), token.clone());
            async move {
                let mut c = clients[i].lock().await;
                match c.send("GET", "/api/org/bench/soak?name=bench", Some(&token), None).await {
                    Ok((200, _)) => true,
                    // Say why, so a failed soak can be told from an overloaded machine.
                    Ok((status, body)) => {
                        eprintln!("soak: call failed with {status}: {}", String::from_utf8_lossy(&body));
                        false
                    }
                    Err(e) => {
                        eprintln!("soak: call failed: {e}");
                        false
                    }
                }
            }
        }
    })
    .await;
    let update_ms = updater.await.unwrap_or_default();
    table.push(format!(
        "soak    64 clients {soak_secs} s, 2 updates: {soak_rps:.0}/s, failed calls {soak_failed}, updates ready after {update_ms:.0?} ms"
    ));
    results.insert("soak".into(), json!({"clients": 64, "secs": soak_secs, "rps": soak_rps, "failed": soak_failed, "update_to_serving_ms": update_ms}));
    let _ = api.send("DELETE", "/api/v1/functions/soak", Some(&token), None).await;

    match gvisor(&mut api, &admin, &s).await {
        Ok((lines, figures)) => {
            for (lang, line) in lines {
                let runc = &results[lang];
                table.push(format!(
                    "{line}   runc: cold per-call p50 {:.1} ms {}, warm p50 {:.2} ms",
                    runc["cold_per_call_ms"]["p50"].as_f64().unwrap_or(f64::NAN),
                    runc["cold_per_call_ms"]["paths"],
                    runc["warm_platform_ms"]["p50"].as_f64().unwrap_or(f64::NAN)
                ));
            }
            results.insert("gvisor".into(), figures);
        }
        Err(why) => table.push(format!("gvisor  not measured: {why}")),
    }
    results.insert("server_rss_mb_at_rest".into(), json!(rss_rest));
    results.insert("submit_to_ready_ms".into(), Value::Object(submit_to_ready.clone()));
    results.insert(
        "machine".into(),
        json!({"cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
               "instances_per_function": s.instances, "warm_samples": s.warm_samples, "cold_samples": s.cold_samples,
               "load_secs": s.load_secs}),
    );
    println!("\nvcd-faas benchmark ({} cores, {} instances per function)", std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0), s.instances);
    for line in &table {
        println!("{line}");
    }
    println!("server memory: {rss_rest:.1} MB at rest");
    for (name, t) in &submit_to_ready {
        println!("submit → ready {name:<16} {:>7.0} ms", t.as_f64().unwrap_or(f64::NAN));
    }
    std::fs::write(&s.output, serde_json::to_string_pretty(&Value::Object(results)).unwrap()).unwrap();
    println!("figures written to {}", s.output.display());

    // Clean up the benchmark's functions, containers and images.
    for lang in &s.languages {
        for (suffix, _) in FUNCTIONS {
            let _ = api.send("DELETE", &format!("/api/v1/functions/{}-{suffix}", lang.name), Some(&token), None).await;
        }
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    drop(server);
}

/// The server under measurement, stopped with SIGTERM (it removes its containers) when the
/// benchmark ends, also when it fails half-way.
struct ServerProcess(std::process::Child);

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = Command::new("kill").arg(self.0.id().to_string()).status();
        let _ = self.0.wait();
    }
}
