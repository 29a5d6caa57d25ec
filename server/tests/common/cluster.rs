//! Several "hosts" for one test: each a real Docker engine (Debian's `dockerd`) in its own
//! network namespace, joined to the root namespace by a veth pair on link-local addresses.
//!
//! Host `i` (the caller picks `i`, 0..=63; two `Host`s alive in one process need different
//! indexes, and another process using the same index at the same time is refused) gets:
//! - the network namespace `vfh<pid%100000>-<i>` with `lo` and the veth end `vf<pid%10000>n<i>`
//!   holding `169.254.77.(4i+2)/30` (`node_addr`);
//! - the veth end `vf<pid%10000>h<i>` in the root namespace holding `169.254.77.(4i+1)/30`
//!   (`host_addr`), with the alias `vfh-<pid>-<i>` so a later run can tell a dead run's leftovers;
//! - its engine's files under `/tmp/vfh-<pid>-<i>/` (socket, data root, exec root, log) and its
//!   containers under the cgroup parent `/vfh-<pid>-<i>`.
//!
//! The engine is started with `setsid` (a signal to the test's process group does not reach it)
//! and `nsenter --net=` (not `ip netns exec`, which remounts `/sys` and hides the cgroup v1
//! mounts). Dropping the `Host` removes everything; `start` also removes what a crashed earlier
//! run with the same index left behind (its engine keeps running after the test process dies).
//! Needs root. The main engine (`/var/run/docker.sock`) is only ever read from.
#![allow(dead_code)]

use bollard::query_parameters::ImportImageOptions;
use bollard::Docker;
use futures_util::{StreamExt, TryStreamExt};
use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The socket of the machine's own engine, which the other tests use and which is never changed.
pub const MAIN_SOCKET: &str = "/var/run/docker.sock";

/// How long a Docker call may wait for its answer (image loads of a few hundred MB included).
const DOCKER_TIMEOUT_SECS: u64 = 600;

/// How long `start` waits for the engine to answer.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// Indexes of the `Host`s alive in this process, to refuse a second one with the same index.
static LIVE: Mutex<BTreeSet<u8>> = Mutex::new(BTreeSet::new());

/// One simulated host: a Docker engine in its own network namespace.
pub struct Host {
    /// The caller's index, which fixes the addresses and names (see the module comment).
    pub index: u8,
    /// Name of the network namespace (`/var/run/netns/<netns>`).
    pub netns: String,
    /// The root namespace's end of the veth pair: what a process in the namespace dials to reach
    /// the root namespace (forwarded ports, see `forward`).
    pub host_addr: Ipv4Addr,
    /// The namespace's end of the veth pair: where the root namespace reaches a node process.
    pub node_addr: Ipv4Addr,
    /// This host's engine, as `DOCKER_HOST` wants it: `unix:///tmp/vfh-<pid>-<i>/docker.sock`.
    pub docker_host: String,
    /// Folder holding everything of the engine (`daemon.json`, `data/`, `exec/`, `dockerd.log`).
    pub dir: PathBuf,
    /// Name of the veth end in the root namespace (holds `host_addr`).
    pub link: String,
    names: Names,
    child: Option<Child>,
    engine_pid: Option<i32>,
    forwarders: Option<tokio::runtime::Runtime>,
    forwarded: Vec<u16>,
}

/// Everything named after one (process, index): what `Drop` and the leftover sweep remove.
#[derive(Clone, Debug)]
struct Names {
    pid: u32,
    index: u8,
}

impl Names {
    fn tag(&self) -> String {
        format!("vfh-{}-{}", self.pid, self.index)
    }
    fn netns(&self) -> String {
        format!("vfh{}-{}", self.pid % 100_000, self.index)
    }
    fn link(&self) -> String {
        format!("vf{}h{}", self.pid % 10_000, self.index)
    }
    fn peer(&self) -> String {
        format!("vf{}n{}", self.pid % 10_000, self.index)
    }
    fn dir(&self) -> PathBuf {
        PathBuf::from(format!("/tmp/{}", self.tag()))
    }
    fn cgroup_parent(&self) -> String {
        format!("/{}", self.tag())
    }
}

/// The root namespace's address of host `index`.
pub fn host_addr(index: u8) -> Ipv4Addr {
    Ipv4Addr::new(169, 254, 77, 4 * index + 1)
}

/// The namespace's address of host `index`.
pub fn node_addr(index: u8) -> Ipv4Addr {
    Ipv4Addr::new(169, 254, 77, 4 * index + 2)
}

/// A client of the machine's main engine (`/var/run/docker.sock`), API version agreed.
pub async fn main_engine() -> Docker {
    connect(MAIN_SOCKET).await.unwrap_or_else(|e| panic!("the main engine at {MAIN_SOCKET}: {e}"))
}

/// A client of the engine behind a unix socket path (with or without `unix://`), version agreed.
pub async fn connect(socket: &str) -> Result<Docker, bollard::errors::Error> {
    Docker::connect_with_unix(socket, DOCKER_TIMEOUT_SECS, bollard::API_DEFAULT_VERSION)?.negotiate_version().await
}

impl Host {
    /// Makes netns + veth pair (host end in the root namespace with host_addr/30, node end in the
    /// namespace with node_addr/30, lo up), starts dockerd inside it (`setsid nsenter --net=…
    /// dockerd …`, no iptables, no bridge, own key.json, cgroup parent `/vfh-<pid>-<i>`), waits
    /// until it answers (≤ 60 s; panics with the tail of its log otherwise) and returns.
    pub async fn start(index: u8) -> Host {
        assert!(index < 64, "host index {index}: 169.254.77.(4i+2) must stay below 256");
        assert_eq!(unsafe { libc::geteuid() }, 0, "Host::start needs root (network namespaces, dockerd)");
        assert!(
            LIVE.lock().unwrap().insert(index),
            "a Host with index {index} is already alive in this process: give each Host its own index"
        );
        let names = Names { pid: std::process::id(), index };
        let dir = names.dir();
        let mut host = Host {
            index,
            netns: names.netns(),
            host_addr: host_addr(index),
            node_addr: node_addr(index),
            docker_host: format!("unix://{}/docker.sock", dir.display()),
            dir,
            link: names.link(),
            names,
            child: None,
            engine_pid: None,
            forwarders: None,
            forwarded: Vec::new(),
        };
        // From here a panic drops `host`, which removes whatever was made so far.
        sweep_leftovers(index);
        refuse_address_in_use(index);
        host.make_network();
        host.start_engine().await;
        host
    }

    fn make_network(&self) {
        let (ns, link, peer) = (&self.netns, &self.link, &self.names.peer());
        std::fs::create_dir_all(&self.dir).unwrap();
        run("ip", &["netns", "add", ns]);
        run("ip", &["link", "add", link, "type", "veth", "peer", "name", peer]);
        run("ip", &["link", "set", link, "alias", &self.names.tag()]);
        run("ip", &["link", "set", peer, "netns", ns]);
        run("ip", &["addr", "add", &format!("{}/30", self.host_addr), "dev", link]);
        run("ip", &["link", "set", link, "up"]);
        run("ip", &["-n", ns, "addr", "add", &format!("{}/30", self.node_addr), "dev", peer]);
        run("ip", &["-n", ns, "link", "set", peer, "up"]);
        run("ip", &["-n", ns, "link", "set", "lo", "up"]);
    }

    async fn start_engine(&mut self) {
        let dir = self.dir.display().to_string();
        let config = serde_json::json!({ "deprecated-key-path": format!("{dir}/key.json") });
        std::fs::write(self.dir.join("daemon.json"), config.to_string()).unwrap();
        let log = std::fs::File::create(self.dir.join("dockerd.log")).unwrap();
        let netns = format!("--net=/var/run/netns/{}", self.netns);
        let cgroup_parent = format!("--cgroup-parent={}", self.names.cgroup_parent());
        let args = [
            "nsenter",
            &netns,
            "dockerd",
            "--config-file",
            &format!("{dir}/daemon.json"),
            "--data-root",
            &format!("{dir}/data"),
            "--exec-root",
            &format!("{dir}/exec"),
            "--pidfile",
            &format!("{dir}/docker.pid"),
            "-H",
            &self.docker_host,
            "--iptables=false",
            "--ip-forward=false",
            "--ip-masq=false",
            "--bridge=none",
            "--userland-proxy=false",
            &cgroup_parent,
        ];
        let child = Command::new("setsid")
            .args(args)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("setsid nsenter dockerd");
        self.child = Some(child);

        let deadline = Instant::now() + START_TIMEOUT;
        let socket = self.dir.join("docker.sock");
        let mut last = String::from("no socket yet");
        loop {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                self.child = None;
                panic!("dockerd of host {} exited ({status}) before answering:\n{}", self.index, self.log_tail(40));
            }
            if socket.exists() {
                match connect(&self.docker_host).await {
                    Ok(docker) => match docker.ping().await {
                        Ok(_) => break,
                        Err(e) => last = e.to_string(),
                    },
                    Err(e) => last = e.to_string(),
                }
            }
            if Instant::now() > deadline {
                panic!(
                    "dockerd of host {} did not answer within {:?} ({last}); its log ends with:\n{}",
                    self.index,
                    START_TIMEOUT,
                    self.log_tail(40)
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let from_file = std::fs::read_to_string(self.dir.join("docker.pid")).ok().and_then(|s| s.trim().parse().ok());
        self.engine_pid = from_file.or(self.child.as_ref().map(|c| c.id() as i32));
    }

    /// A client of this host's engine, API version agreed.
    pub async fn docker(&self) -> Docker {
        connect(&self.docker_host).await.unwrap_or_else(|e| panic!("engine of host {}: {e}", self.index))
    }

    /// The pid of this host's dockerd (`None` once `kill_engine` ran).
    pub fn engine_pid(&self) -> Option<i32> {
        self.engine_pid
    }

    /// The last `lines` lines of this host's `dockerd.log`, for failure messages.
    pub fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(self.dir.join("dockerd.log")).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// Copies images from the main engine into this host's engine (bollard export_image from the
    /// main engine streamed into import_image of this one; keeps repo:tag names). An image already
    /// there with the same ID is skipped (a load costs the full copy again: ~6 s per 200 MB).
    /// Panics when an image is missing on the main engine or did not arrive.
    pub async fn seed_images(&self, images: &[&str]) {
        let main = main_engine().await;
        let here = self.docker().await;
        for &image in images {
            let source = main
                .inspect_image(image)
                .await
                .unwrap_or_else(|e| panic!("{image} is not on the main engine, so it cannot be seeded: {e}"));
            if here.inspect_image(image).await.is_ok_and(|present| present.id == source.id) {
                continue;
            }
            let export = main.export_image(image).map_err(std::io::Error::other);
            let options = ImportImageOptions { quiet: true, ..Default::default() };
            let mut load = here.import_image(options, bollard::body_try_stream(export), None);
            while let Some(item) = load.next().await {
                match item {
                    Ok(info) => {
                        if let Some(detail) = info.error_detail {
                            panic!("loading {image} into host {}: {:?}", self.index, detail.message);
                        }
                    }
                    Err(e) => panic!("copying {image} from the main engine into host {}: {e}", self.index),
                }
            }
            if let Err(e) = here.inspect_image(image).await {
                panic!("{image} is not on host {} after loading it: {e}", self.index);
            }
        }
    }

    /// Makes `127.0.0.1:<port>` of the root namespace reachable from inside the namespace at
    /// `host_addr:<port>` (a tokio TCP relay bound on host_addr:port → 127.0.0.1:port, on a
    /// runtime of its own so a blocked test runtime does not stall it; kept while the Host lives).
    /// Used for PostgreSQL, RabbitMQ and the front.
    pub fn forward(&mut self, port: u16) {
        let listener = std::net::TcpListener::bind((self.host_addr, port))
            .unwrap_or_else(|e| panic!("forwarder of host {} on {}:{port}: {e}", self.index, self.host_addr));
        listener.set_nonblocking(true).unwrap();
        let runtime = self.forwarders.get_or_insert_with(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .thread_name("host-forwarder")
                .enable_all()
                .build()
                .unwrap()
        });
        runtime.spawn(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                };
                tokio::spawn(async move {
                    let Ok(mut outbound) = tokio::net::TcpStream::connect((Ipv4Addr::LOCALHOST, port)).await else {
                        return;
                    };
                    let _ = inbound.set_nodelay(true);
                    let _ = outbound.set_nodelay(true);
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                });
            }
        });
        self.forwarded.push(port);
    }

    /// The ports `forward` made reachable from the namespace.
    pub fn forwarded(&self) -> &[u16] {
        &self.forwarded
    }

    /// A std::process::Command that runs `program` inside the namespace (`nsenter
    /// --net=/var/run/netns/<ns> program`), to start a node process in it; add its arguments.
    pub fn command_in(&self, program: &Path) -> Command {
        let mut command = Command::new("nsenter");
        command.arg(format!("--net=/var/run/netns/{}", self.netns)).arg(program);
        command
    }

    /// Kills this host's dockerd with SIGKILL, and its containerd, shims and container processes
    /// (everything the engine runs) — simulates losing the host. The namespace stays until drop.
    pub fn kill_engine(&mut self) {
        if let Some(pid) = self.engine_pid.take() {
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        kill_processes(&self.names, Scope::All, Duration::from_secs(10));
    }
}

impl Drop for Host {
    /// Stops dockerd (SIGTERM, up to 10 s, then SIGKILL), kills what is left of the engine,
    /// unmounts everything under `dir`, removes the namespace, the veth pair, the cgroups and
    /// `dir`. Never panics (it also runs while a failed test unwinds).
    fn drop(&mut self) {
        if let Some(runtime) = self.forwarders.take() {
            runtime.shutdown_background();
        }
        if let Some(pid) = self.engine_pid.take() {
            // Containers first: dockerd would give each 10 s to stop, and a container's PID 1
            // ignores SIGTERM unless it handles it.
            kill_processes(&self.names, Scope::Containers, Duration::from_secs(5));
            unsafe { libc::kill(pid, libc::SIGTERM) };
            let deadline = Instant::now() + Duration::from_secs(10);
            while alive(pid) && Instant::now() < deadline {
                if let Some(child) = self.child.as_mut() {
                    if child.id() as i32 == pid && !matches!(child.try_wait(), Ok(None)) {
                        break;
                    }
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            if alive(pid) {
                eprintln!("host {}: dockerd {pid} still running 10 s after SIGTERM, killing it", self.index);
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        }
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        remove_all(&self.names);
        LIVE.lock().unwrap_or_else(|e| e.into_inner()).remove(&self.index);
    }
}

/// Kills the processes of a host, removes its mounts, namespace, links, cgroups and folder.
/// Idempotent and silent about what is already gone.
fn remove_all(names: &Names) {
    kill_processes(names, Scope::All, Duration::from_secs(10));
    let dir = names.dir();
    unmount_under(&dir);
    // The link first: deleting it removes both ends at once, while a namespace's interfaces
    // go away asynchronously after `ip netns del`.
    quiet("ip", &["link", "del", &names.link()]);
    quiet("ip", &["netns", "del", &names.netns()]);
    remove_cgroups(&names.tag());
    if dir.exists() {
        if let Err(e) = std::fs::remove_dir_all(&dir) {
            eprintln!("could not remove {}: {e}", dir.display());
        }
    }
}

/// Removes what crashed earlier runs left for this index (their engines outlive them): folders
/// `/tmp/vfh-<pid>-<index>` and links with the alias `vfh-<pid>-<index>` whose process is gone,
/// and this process's own names for the index.
fn sweep_leftovers(index: u8) {
    let me = std::process::id();
    let mut pids = BTreeSet::from([me]);
    let parse = |name: &str| -> Option<u32> {
        let rest = name.strip_prefix("vfh-")?;
        let (pid, i) = rest.split_once('-')?;
        (i.parse::<u8>().ok()? == index).then_some(())?;
        pid.parse().ok()
    };
    if let Ok(entries) = std::fs::read_dir("/tmp") {
        pids.extend(entries.flatten().filter_map(|e| parse(&e.file_name().to_string_lossy())));
    }
    if let Ok(entries) = std::fs::read_dir("/sys/class/net") {
        for entry in entries.flatten() {
            if let Ok(alias) = std::fs::read_to_string(entry.path().join("ifalias")) {
                pids.extend(parse(alias.trim()));
            }
        }
    }
    for pid in pids {
        if pid == me || !alive(pid as i32) {
            remove_all(&Names { pid, index });
        }
    }
}

/// Panics when some interface of the root namespace already holds an address of host `index`'s
/// /30 (another process using the same index, or something else on these addresses).
fn refuse_address_in_use(index: u8) {
    let out = Command::new("ip").args(["-o", "-4", "addr", "show"]).output().expect("ip addr show");
    let base = u32::from(host_addr(index)) & !3;
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let mut words = line.split_whitespace();
        while let Some(word) = words.next() {
            if word != "inet" {
                continue;
            }
            let addr = words.next().and_then(|a| a.split('/').next()).and_then(|a| a.parse::<Ipv4Addr>().ok());
            if addr.is_some_and(|a| u32::from(a) & !3 == base) {
                panic!("host index {index}: its addresses are already in use, by a live process or something else: {line}");
            }
        }
    }
}

/// Whether a process exists and is not a zombie.
fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat.rsplit_once(')').map(|(_, rest)| !rest.trim_start().starts_with('Z')).unwrap_or(true),
        Err(_) => false,
    }
}

/// Which processes of a host `host_processes` finds.
#[derive(Clone, Copy, PartialEq)]
enum Scope {
    /// Those in its cgroup parent: the containers' processes.
    Containers,
    /// Those too naming its folder on their command line: dockerd, containerd, the shims.
    All,
}

/// The live processes of a host (see `Scope`).
fn host_processes(names: &Names, scope: Scope) -> Vec<i32> {
    let me = std::process::id() as i32;
    let marker = format!("{}/", names.dir().display());
    let cgroup = names.cgroup_parent();
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else { return found };
    for entry in entries.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else { continue };
        if pid == me || !alive(pid) {
            continue;
        }
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        let in_cgroup = std::fs::read_to_string(entry.path().join("cgroup")).unwrap_or_default().lines().any(|line| {
            let path = line.splitn(3, ':').nth(2).unwrap_or("");
            path == cgroup || path.starts_with(&format!("{cgroup}/"))
        });
        if in_cgroup || (scope == Scope::All && cmdline.contains(&marker)) {
            found.push(pid);
        }
    }
    found
}

/// SIGKILLs a host's processes until none is left (or `patience` ran out).
fn kill_processes(names: &Names, scope: Scope, patience: Duration) {
    let deadline = Instant::now() + patience;
    loop {
        let pids = host_processes(names, scope);
        if pids.is_empty() {
            return;
        }
        if Instant::now() > deadline {
            eprintln!("host {} ({}): processes still alive: {pids:?}", names.index, names.tag());
            return;
        }
        for pid in pids {
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Lazily unmounts every mount at or under `dir`, deepest first (overlay mounts of the data
/// root, the engine's `exec/netns/default`, containerd's shm…), until none is left.
fn unmount_under(dir: &Path) {
    let dir = dir.display().to_string();
    for _ in 0..5 {
        let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
        let mut points: Vec<String> = mounts
            .lines()
            .filter_map(|line| line.split(' ').nth(1))
            .map(unescape_mount_path)
            .filter(|p| *p == dir || p.starts_with(&format!("{dir}/")))
            .collect();
        if points.is_empty() {
            return;
        }
        points.sort_by_key(|p| std::cmp::Reverse(p.len()));
        points.dedup();
        for point in points {
            let c = std::ffi::CString::new(point).unwrap();
            unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
        }
    }
}

/// `/proc/mounts` writes space, tab, newline and backslash as octal escapes (`\040`).
fn unescape_mount_path(raw: &str) -> String {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && i + 3 < bytes.len() && bytes[i + 1..i + 4].iter().all(|b| (b'0'..=b'7').contains(b)) {
            out.push(u8::from_str_radix(&raw[i + 1..i + 4], 8).unwrap_or(b'?'));
            i += 4;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Removes the cgroup parent `/<tag>` (and its children) from every hierarchy that has it.
fn remove_cgroups(tag: &str) {
    let mut roots = vec![PathBuf::from("/sys/fs/cgroup")];
    if let Ok(entries) = std::fs::read_dir("/sys/fs/cgroup") {
        roots.extend(entries.flatten().map(|e| e.path()));
    }
    for root in roots {
        let top = root.join(tag);
        if !top.is_dir() {
            continue;
        }
        let mut dirs = vec![top.clone()];
        let mut i = 0;
        while i < dirs.len() {
            if let Ok(entries) = std::fs::read_dir(&dirs[i]) {
                dirs.extend(entries.flatten().map(|e| e.path()).filter(|p| p.is_dir()));
            }
            i += 1;
        }
        dirs.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
        for attempt in 0..20 {
            dirs.retain(|d| std::fs::remove_dir(d).is_err() && d.exists());
            if dirs.is_empty() {
                break;
            }
            if attempt == 19 {
                eprintln!("could not remove cgroups {dirs:?}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Runs a setup command; panics with its output when it fails.
fn run(program: &str, args: &[&str]) {
    let out = Command::new(program).args(args).output().unwrap_or_else(|e| panic!("{program}: {e}"));
    if !out.status.success() {
        panic!("{program} {} failed ({}): {}", args.join(" "), out.status, String::from_utf8_lossy(&out.stderr).trim());
    }
}

/// Runs a cleanup command, ignoring its failure (what it removes may already be gone).
fn quiet(program: &str, args: &[&str]) {
    let _ = Command::new(program).args(args).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null()).status();
}

/// The cluster secret the tests' fronts and nodes share.
pub const SECRET: &str = "cluster-secret-for-tests";
/// Where the tests' nodes take forwarded calls, on their host's address.
pub const NODE_PORT: u16 = 7070;

/// Settings of a front that runs nothing itself and forwards every call to the nodes: no
/// local worker, and its `DOCKER_HOST` points nowhere (its host needs no engine).
pub fn front_settings(database: &str) -> Vec<(String, String)> {
    let mut envs = super::binary::shared_settings(database);
    envs.push(("VCD_FAAS_CLUSTER_SECRET".into(), SECRET.into()));
    envs.push(("VCD_FAAS_LOCAL_WORKER".into(), "false".into()));
    envs.push(("DOCKER_HOST".into(), "unix:///nonexistent/docker.sock".into()));
    envs
}

/// Starts a front (data in `root/<name>`, log in `root/<name>.log`) and signs the provider's
/// admin in: the server and the admin's token.
pub async fn start_front(root: &Path, name: &str, envs: &[(String, String)]) -> (super::binary::Server, String) {
    let dir = root.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    let front = super::binary::start_logging_to(&dir, super::binary::free_port(), envs, &root.join(format!("{name}.log"))).await;
    let body = serde_json::json!({"org": "provider", "username": "admin", "password": super::ADMIN_PASSWORD});
    let admin = super::binary::post(&reqwest::Client::new(), format!("{}/api/v1/tokens", front.base), None, body).await;
    let token = admin["token"].as_str().expect("the admin's token").to_string();
    (front, token)
}

/// A `vcd-faas node` process inside a host's namespace.
pub struct NodeProcess {
    child: Child,
}

impl NodeProcess {
    pub fn start(host: &Host, name: &str, database: &str, log: &Path) -> NodeProcess {
        NodeProcess::start_with(host, name, database, log, &[])
    }

    /// With settings of its own on top (`extra`).
    pub fn start_with(host: &Host, name: &str, database: &str, log: &Path, extra: &[(&str, String)]) -> NodeProcess {
        let data = host.dir.join("data");
        std::fs::create_dir_all(&data).unwrap();
        let out = std::fs::OpenOptions::new().create(true).append(true).open(log).unwrap();
        // The database as the namespace reaches it: through the host end of its veth.
        let database = database.replace("127.0.0.1", &host.host_addr.to_string());
        let mut command = host.command_in(Path::new(env!("CARGO_BIN_EXE_vcd-faas")));
        command
            .arg("node")
            .envs(super::binary::shared_settings(&database))
            .env("DOCKER_HOST", &host.docker_host)
            .env("VCD_FAAS_DATA_DIR", &data)
            .env("VCD_FAAS_NODE_NAME", name)
            .env("VCD_FAAS_NODE_ADDR", format!("{}:{NODE_PORT}", host.node_addr))
            .env("VCD_FAAS_CLUSTER_SECRET", SECRET)
            .env("VCD_FAAS_NODE_MEMORY_MB", "2048")
            .env("VCD_FAAS_NODE_CPUS", "2")
            .env("RUST_LOG", "info,server=debug")
            .envs(extra.iter().map(|(k, v)| (*k, v.as_str())))
            .stdout(out.try_clone().unwrap())
            .stderr(out);
        NodeProcess { child: command.spawn().expect("node starts") }
    }

    pub fn kill9(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
