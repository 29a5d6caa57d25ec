//! Outbound network for function containers, which have none of their own (`network_mode:
//! none`). Each container's socket folder holds a gate, `egress`, a unix socket the platform
//! listens on. The runtime shim asks it for a destination with one line,
//! `CONNECT <host> <port> <request-id>`; the gate checks the tenant's allowlist (and the
//! version's narrowing of it), resolves the name itself, connects, and answers either
//! `OK <ticket>` — a one-use unix socket in the same folder that is the connection from then
//! on, bytes relayed both ways untouched (TLS stays end to end) — or `ERR <reason>`, which the
//! shim raises in the function as it is. Each connection is recorded for the call that asked.

use crate::metrics::Metrics;
use crate::store::Store;
use app::egress::Rule;
use app::model::Connection;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU16, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::{TcpStream, UnixListener, UnixStream};

/// The gate's socket, in the container's socket folder (`/run/faas/egress` inside).
pub const GATE_SOCKET: &str = "egress";
/// Longest request line the gate reads.
const MAX_LINE: u64 = 600;
/// How long resolving and connecting to a destination may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a ticket waits for the runtime to connect to it.
const TICKET_TIMEOUT: Duration = Duration::from_secs(10);
/// Most connections one call keeps records of.
const MAX_RECORDS_PER_CALL: usize = 200;

/// What every gate shares: where tenants' allowlists are, and what is never reachable.
#[derive(Clone)]
pub struct EgressPolicy {
    store: Store,
    metrics: Arc<Metrics>,
    /// The port the platform serves on (0 until it listens): never reachable on a local address.
    own_port: Arc<AtomicU16>,
}

impl std::fmt::Debug for EgressPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EgressPolicy").field("own_port", &self.own_port).finish()
    }
}

impl EgressPolicy {
    pub fn new(store: Store, metrics: Arc<Metrics>) -> EgressPolicy {
        EgressPolicy { store, metrics, own_port: Arc::default() }
    }

    /// Tells the gates the platform's own port once it listens.
    pub fn platform_listens_on(&self, addr: SocketAddr) {
        self.own_port.store(addr.port(), Ordering::Relaxed);
    }

    /// The tenant's allowlist as it is now: a change reaches running containers at once.
    async fn tenant_rules(&self, org: &str) -> Vec<Rule> {
        match self.store.tenant_by_slug(org).await {
            Ok(Some(t)) => app::egress::parse_list("egress", &t.egress_entries()).unwrap_or_default(),
            Ok(None) => Vec::new(),
            Err(e) => {
                tracing::warn!(org, error = %e, "cannot read the tenant's allowlist; refusing outbound connections");
                Vec::new()
            }
        }
    }
}

/// One connection a call asked for, its byte counts live while it is open.
struct Record {
    host: String,
    port: u16,
    error: Option<String>,
    allowed: bool,
    sent: AtomicU64,
    received: AtomicU64,
}

impl Record {
    fn view(&self) -> Connection {
        Connection {
            host: self.host.clone(),
            port: self.port,
            allowed: self.allowed,
            error: self.error.clone(),
            sent: self.sent.load(Ordering::Relaxed),
            received: self.received.load(Ordering::Relaxed),
        }
    }
}

/// The connections of the calls a container is serving now, by request id.
#[derive(Default)]
struct CallRecords(Mutex<HashMap<String, Vec<Arc<Record>>>>);

impl CallRecords {
    /// Keeps `record` with its call's; a request id the container is not serving (the shim
    /// lost track, or made one up) keeps none.
    fn add(&self, request_id: &str, record: &Arc<Record>) {
        if let Some(list) = self.0.lock().unwrap().get_mut(request_id) {
            if list.len() < MAX_RECORDS_PER_CALL {
                list.push(record.clone());
            }
        }
    }
}

/// Who a gate serves.
#[derive(Clone, Debug)]
pub struct GateOwner {
    pub org: String,
    pub function: String,
    /// The version's own narrowing of the tenant's list.
    pub narrowing: Option<Vec<Rule>>,
}

/// The gate of one container; it stops listening when dropped.
pub struct EgressGate {
    calls: Arc<CallRecords>,
    task: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for EgressGate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EgressGate")
    }
}

impl Drop for EgressGate {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl EgressGate {
    /// Listens on `dir/egress` for the container that gets `dir` as its socket folder.
    pub fn open(policy: &EgressPolicy, dir: &Path, owner: GateOwner) -> std::io::Result<EgressGate> {
        let path = dir.join(GATE_SOCKET);
        let _ = std::fs::remove_file(&path);
        let listener = UnixListener::bind(&path)?;
        // The function's user connects to it; the folder is this container's alone.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666))?;
        let calls = Arc::new(CallRecords::default());
        let gate = Gate { policy: policy.clone(), dir: dir.to_path_buf(), owner: Arc::new(owner), calls: calls.clone() };
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let gate = gate.clone();
                tokio::spawn(async move { gate.serve(stream).await });
            }
        });
        Ok(EgressGate { calls, task })
    }

    /// Starts keeping the connections of call `request_id`.
    pub fn begin(&self, request_id: &str) {
        self.calls.0.lock().unwrap().insert(request_id.to_string(), Vec::new());
    }

    /// The connections call `request_id` asked for, with their bytes so far; stops keeping them.
    pub fn take(&self, request_id: &str) -> Vec<Connection> {
        let list = self.calls.0.lock().unwrap().remove(request_id).unwrap_or_default();
        list.iter().map(|r| r.view()).collect()
    }
}

#[derive(Clone)]
struct Gate {
    policy: EgressPolicy,
    dir: PathBuf,
    owner: Arc<GateOwner>,
    calls: Arc<CallRecords>,
}

/// A destination the function asked for, as the shim wrote it.
struct Ask {
    host: String,
    port: u16,
    request_id: String,
}

fn parse_ask(line: &str) -> Option<Ask> {
    let mut words = line.split_ascii_whitespace();
    if words.next()? != "CONNECT" {
        return None;
    }
    let host = words.next()?.trim_start_matches('[').trim_end_matches(']').to_ascii_lowercase();
    let port = words.next()?.parse::<u16>().ok().filter(|p| *p > 0)?;
    let request_id = words.next().unwrap_or("-").to_string();
    Some(Ask { host, port, request_id })
}

impl Gate {
    async fn serve(self, stream: UnixStream) {
        let mut reader = BufReader::new(stream);
        let mut line = String::new();
        let read = tokio::time::timeout(CONNECT_TIMEOUT, (&mut reader).take(MAX_LINE).read_line(&mut line)).await;
        let mut control = reader.into_inner();
        let Some(ask) = read.ok().and_then(Result::ok).and_then(|_| parse_ask(&line)) else {
            let _ = control.write_all(b"ERR the runtime sent a malformed request to the platform's egress gate\n").await;
            return;
        };
        let (upstream, record) = match self.connect(&ask).await {
            Ok(upstream) => (Some(upstream), self.record(&ask, None)),
            Err(refusal) => (None, self.record(&ask, Some(refusal))),
        };
        let Some(upstream) = upstream else {
            let reason = record.error.clone().unwrap_or_default();
            tracing::info!(org = %self.owner.org, function = %self.owner.function, host = %ask.host, port = ask.port, %reason, "outbound connection refused");
            let _ = control.write_all(format!("ERR {reason}\n").as_bytes()).await;
            self.policy.metrics.record_egress(&self.owner.org, &self.owner.function, record.allowed, 0, 0);
            return;
        };
        // Short: a unix socket's path has at most 107 bytes, and the folder's takes most of it.
        // Guessing it gains nothing: only this container sees the folder, for ten seconds.
        let ticket = format!("e{}", &uuid::Uuid::new_v4().simple().to_string()[..11]);
        let path = self.dir.join(&ticket);
        let listener = match UnixListener::bind(&path) {
            Ok(listener) => listener,
            Err(e) => {
                let _ = control.write_all(format!("ERR the platform cannot open the connection ({e})\n").as_bytes()).await;
                return;
            }
        };
        let _ = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666));
        let _ = control.write_all(format!("OK {ticket}\n").as_bytes()).await;
        drop(control);
        let accepted = tokio::time::timeout(TICKET_TIMEOUT, listener.accept()).await;
        drop(listener);
        let _ = std::fs::remove_file(&path);
        if let Ok(Ok((runtime, _))) = accepted {
            relay(runtime, upstream, &record).await;
        }
        let (sent, received) = (record.sent.load(Ordering::Relaxed), record.received.load(Ordering::Relaxed));
        self.policy.metrics.record_egress(&self.owner.org, &self.owner.function, true, sent, received);
    }

    fn record(&self, ask: &Ask, refusal: Option<Refusal>) -> Arc<Record> {
        let (allowed, error) = match refusal {
            None => (true, None),
            Some(Refusal::NotAllowed(reason)) => (false, Some(reason)),
            Some(Refusal::Failed(reason)) => (true, Some(reason)),
        };
        let record = Arc::new(Record {
            host: ask.host.clone(),
            port: ask.port,
            allowed,
            error,
            sent: AtomicU64::new(0),
            received: AtomicU64::new(0),
        });
        self.calls.add(&ask.request_id, &record);
        record
    }

    /// Checks the destination against the lists and connects to it.
    async fn connect(&self, ask: &Ask) -> Result<TcpStream, Refusal> {
        let (host, port, org) = (ask.host.as_str(), ask.port, self.owner.org.as_str());
        let refused = |why: String| Refusal::NotAllowed(format!("egress to {host}:{port} refused: {why}"));
        let tenant = self.policy.tenant_rules(org).await;
        if tenant.is_empty() {
            return Err(refused(format!("tenant {org} allows no outbound network (the provider sets its allowlist)")));
        }
        // An IPv4 address written as IPv6 (::ffff:127.0.0.1) is checked as the IPv4 one.
        let literal = host.parse::<IpAddr>().ok().map(|ip| ip.to_canonical());
        let allows = |rules: &[Rule]| match literal {
            Some(ip) => rules.iter().any(|r| r.allows_address(ip, port)),
            None => rules.iter().any(|r| r.allows_name(host, port)),
        };
        let what = if literal.is_some() { "the address" } else { "the name" };
        if !allows(&tenant) {
            return Err(refused(format!("{what} and port are not on tenant {org}'s allowlist")));
        }
        if let Some(own) = &self.owner.narrowing {
            if !allows(own) {
                return Err(refused(format!("{what} and port are not on function {}'s own allowlist", self.owner.function)));
            }
        }
        // Names are resolved here, never by the function, so what it reaches is what the
        // list names.
        let addresses: Vec<SocketAddr> = match literal {
            Some(ip) => vec![SocketAddr::new(ip, port)],
            None => match tokio::time::timeout(CONNECT_TIMEOUT, tokio::net::lookup_host((host, port))).await {
                Ok(Ok(found)) => found.collect(),
                Ok(Err(e)) => return Err(Refusal::Failed(format!("egress to {host}:{port}: the name does not resolve ({e})"))),
                Err(_) => return Err(Refusal::Failed(format!("egress to {host}:{port}: resolving the name timed out"))),
            },
        };
        let own_port = self.policy.own_port.load(Ordering::Relaxed);
        let local = |ip: IpAddr| ip.is_loopback() || ip.is_unspecified();
        if addresses.iter().any(|a| a.port() == own_port && local(a.ip().to_canonical())) {
            return Err(refused("the platform's own port is never reachable from a function".into()));
        }
        let mut last = String::from("no address");
        for address in addresses {
            match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(address)).await {
                Ok(Ok(stream)) => return Ok(stream),
                Ok(Err(e)) => last = e.to_string(),
                Err(_) => last = format!("no answer within {} s", CONNECT_TIMEOUT.as_secs()),
            }
        }
        Err(Refusal::Failed(format!("egress to {host}:{port}: cannot connect ({last})")))
    }
}

enum Refusal {
    /// The lists do not allow it.
    NotAllowed(String),
    /// Allowed, but the destination cannot be reached.
    Failed(String),
}

/// Copies both ways until both sides are done, counting the bytes.
async fn relay(runtime: UnixStream, upstream: TcpStream, record: &Record) {
    let (from_runtime, to_runtime) = runtime.into_split();
    let (from_upstream, to_upstream) = upstream.into_split();
    tokio::join!(pump(from_runtime, to_upstream, &record.sent), pump(from_upstream, to_runtime, &record.received));
}

async fn pump(mut from: impl AsyncRead + Unpin, mut to: impl AsyncWrite + Unpin, counted: &AtomicU64) {
    let mut buffer = vec![0u8; 16 * 1024];
    loop {
        match from.read(&mut buffer).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                // Counted before it is passed on: the runtime may end its call (and the call's
                // record be taken) the moment it has the bytes.
                counted.fetch_add(n as u64, Ordering::Relaxed);
                if to.write_all(&buffer[..n]).await.is_err() {
                    break;
                }
            }
        }
    }
    let _ = to.shutdown().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_read_strictly() {
        let ask = parse_ask("CONNECT API.example.com 443 0190-abc\n").unwrap();
        assert_eq!((ask.host.as_str(), ask.port, ask.request_id.as_str()), ("api.example.com", 443, "0190-abc"));
        assert_eq!(parse_ask("CONNECT [::1] 80").unwrap().host, "::1");
        assert_eq!(parse_ask("CONNECT a.b 80").unwrap().request_id, "-");
        for bad in ["", "GET / HTTP/1.1", "CONNECT a.b", "CONNECT a.b 0", "CONNECT a.b 70000", "CONNECT a.b http"] {
            assert!(parse_ask(bad).is_none(), "{bad:?}");
        }
    }
}
