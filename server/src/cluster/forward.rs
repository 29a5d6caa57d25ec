//! A front's side of the cluster: places each call (see `placement.rs`) on the local worker or
//! a node, and forwards it to the node over a keep-alive HTTP connection. A call that could
//! not be sent (no connection) goes to the next place; a call lost after it was sent fails
//! with a 502 that says so, since it may have run.

use super::members::Members;
use super::placement::{self, Candidate, Need};
use super::wire::{self, CallHead, Held, ReplyHead, CALLS_PATH};
use crate::run::pool::ShareOfLimit;
use crate::calls::gateway::{Gateway, Placement, Ran};
use crate::calls::request::{CallRequest, CallResponse};
use crate::config::ClusterConfig;
use crate::store::{now_ms, now_us, Store, Target};
use bytes::Bytes;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Places a call is offered before it fails for want of one.
const TRIES: usize = 3;
/// Margin over a call's own limits (its run, a container start) for the reply to come back.
const REPLY_MARGIN: Duration = Duration::from_secs(5);
/// A node that lacks a version's image builds it before the call runs.
const IMAGE_BUILD_ALLOWANCE: Duration = Duration::from_secs(300);

pub struct Cluster {
    members: Arc<Members>,
    client: reqwest::Client,
    /// `https` when the cluster has a CA (then only TLS), else `http`.
    scheme: &'static str,
    bearer: String,
    /// This process runs calls too, with this capacity.
    local: Option<Capacity>,
    /// Calls this front has sent and not yet had answered, per node name.
    in_flight: Mutex<HashMap<String, InFlight>>,
    /// What the last reply from a node said it holds of a function, per node and function:
    /// counted instead of the node's heartbeat while it is the newer of the two.
    held: Mutex<HashMap<(String, i64), Held>>,
}

#[derive(Clone, Copy, Debug)]
pub struct Capacity {
    pub memory_mb: i64,
    pub millicpus: i64,
}

impl Capacity {
    /// The configured memory and CPU, else the machine's.
    pub fn of(config: &ClusterConfig) -> Capacity {
        let memory_mb = config.node_memory_mb.unwrap_or_else(machine_memory_mb);
        let cpus = config.node_cpus.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()) as f64);
        Capacity { memory_mb, millicpus: (cpus * 1000.0) as i64 }
    }
}

fn machine_memory_mb() -> i64 {
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let kb = meminfo.lines().find_map(|l| l.strip_prefix("MemTotal:")).and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<i64>().ok());
    kb.map_or(1024, |kb| kb / 1024)
}

#[derive(Default)]
struct InFlight {
    total: usize,
    per_version: HashMap<(i64, i64), usize>,
}

/// Where a call goes, and how many containers of the function it may run there.
enum Place<'a> {
    Local,
    Node { name: String, address: String, share: ShareOfLimit, counted: Counted<'a> },
}

/// Why a forwarded call has no answer.
enum Failed {
    /// Nothing reached the node: the call can go elsewhere.
    NotSent(String),
    /// The node took the call and then was lost: it may have run.
    Lost(String),
    /// The node may start no container of the function: other nodes hold its `max_instances`
    /// (what they hold is noted in `held`). The call can go to one of them.
    AtLimitElsewhere,
}

impl Cluster {
    /// A front that places calls on nodes: with the cluster secret set. `local`: the capacity
    /// of this process's own worker, `None` when it has none.
    pub async fn start(store: Store, config: &ClusterConfig, local: Option<Capacity>) -> Result<Option<Arc<Cluster>>, String> {
        let Some(secret) = &config.cluster_secret else {
            if !config.local_worker {
                return Err("VCD_FAAS_LOCAL_WORKER=false needs VCD_FAAS_CLUSTER_SECRET: without it no node takes this front's calls".into());
            }
            return Ok(None);
        };
        if store.dialect == crate::store::Dialect::Sqlite {
            return Err(cluster_needs_postgres("a front that uses nodes"));
        }
        let mut client = reqwest::Client::builder().connect_timeout(Duration::from_secs(1)).tcp_nodelay(true).pool_idle_timeout(Duration::from_secs(60));
        let mut scheme = "http";
        if let Some(ca) = &config.cluster_ca {
            client = super::tls::trusting_only(client, ca)?;
            scheme = "https";
        }
        let client = client.build().map_err(|e| format!("cluster client: {e}"))?;
        let members = Members::start(store).await;
        let bearer = format!("Bearer {}", secret.0);
        Ok(Some(Arc::new(Cluster { members, client, scheme, bearer, local, in_flight: Mutex::default(), held: Mutex::default() })))
    }

}

#[async_trait::async_trait]
impl Placement for Cluster {
    /// Runs the call where the placement says, trying the next place when one cannot be reached.
    async fn run(&self, gateway: &Gateway, target: &Target, request: &CallRequest, id: &str) -> Ran {
        // Nodes this call is not offered again: unreachable ones, and those that may start no
        // container of the function.
        let (mut passed_over, mut unreachable) = (Vec::new(), 0);
        for _ in 0..TRIES {
            match self.place(gateway, target, &passed_over) {
                None => break,
                Some(Place::Local) => return gateway.run_here(target, request, id, None).await,
                Some(Place::Node { name, address, share, counted }) => match self.forward(&address, share, target, request, id, counted).await {
                    Ok(ran) => return ran,
                    Err(Failed::NotSent(cause)) => {
                        tracing::warn!(node = %name, cause, "node unreachable; placing the call elsewhere");
                        self.members.unreachable(&name);
                        passed_over.push(name);
                        unreachable += 1;
                    }
                    Err(Failed::AtLimitElsewhere) => {
                        tracing::debug!(node = %name, call = id, "node at the function's limit across nodes; placing the call again");
                        passed_over.push(name);
                    }
                    Err(Failed::Lost(cause)) => {
                        tracing::warn!(node = %name, cause, call = id, "node lost during a call");
                        let message = format!("worker node {name:?} was lost while it ran the call (it may have run); try again");
                        return failed(502, message, target, Some(name));
                    }
                },
            }
        }
        if passed_over.len() > unreachable {
            let limit = target.function.max_instances.max(1);
            return failed(429, format!("the function is busy: its {limit} instance(s) are all serving on other worker nodes; retry shortly"), target, None);
        }
        let message = match (self.members.known(), unreachable) {
            (0, _) => "no worker node is registered to run the call; start `vcd-faas node`".to_string(),
            (known, 0) => format!("none of the {known} worker node(s) takes calls now (down or drained); try again shortly"),
            (_, n) => format!("the call could not reach a worker node ({n} tried); try again shortly"),
        };
        failed(503, message, target, None)
    }

}

impl Cluster {
    /// Where the call goes. A node's count of this front's calls in flight takes the call
    /// before the lock is let go, so the next call's placement sees it.
    fn place(&self, gateway: &Gateway, target: &Target, passed_over: &[String]) -> Option<Place<'_>> {
        let (function_id, version) = (target.function.id, target.version.version);
        let nodes: Vec<_> = self.members.placeable().into_iter().filter(|m| !passed_over.contains(&m.row.name)).collect();
        let mut in_flight = self.in_flight.lock().unwrap();
        let mine = |name: &str| in_flight.get(name).map_or((0, 0), |f| (f.total, f.per_version.get(&(function_id, version)).copied().unwrap_or(0)));
        let held = self.held.lock().unwrap();
        let mut candidates: Vec<Candidate> = nodes
            .iter()
            .map(|m| {
                let (mine, mine_for_version) = mine(&m.row.name);
                let (mut warm, mut containers) = (m.warm(function_id, version), m.containers_of(function_id));
                if let Some(h) = held.get(&(m.row.name.clone(), function_id)).filter(|h| h.at_ms > m.row.heartbeat_at) {
                    containers = h.of_function;
                    if h.version == version {
                        warm = h.of_version;
                    }
                }
                Candidate {
                    memory_mb: m.row.memory_mb,
                    millicpus: m.row.millicpus,
                    used_memory_mb: m.row.beat.used_memory_mb,
                    used_millicpus: m.row.beat.used_millicpus,
                    warm,
                    mine_for_version,
                    mine,
                    containers,
                }
            })
            .collect();
        drop(held);
        if let Some(capacity) = self.local {
            // The local pool is read now: its in-flight calls are in its containers already.
            let load = gateway.pool().load_for(function_id, version);
            candidates.push(Candidate {
                memory_mb: capacity.memory_mb,
                millicpus: capacity.millicpus,
                used_memory_mb: load.memory_mb,
                used_millicpus: load.millicpus,
                warm: load.of_version,
                mine_for_version: 0,
                mine: 0,
                containers: load.of_function,
            });
        }
        let need = Need {
            memory_mb: target.version.memory_mb,
            millicpus: gateway.pool().sandbox().nano_cpus / 1_000_000,
            concurrency: target.function.concurrency.max(1) as usize,
            max_instances: target.function.max_instances.max(1) as usize,
        };
        let chosen = placement::choose(&candidates, need)?;
        tracing::debug!(function = %target.function.name, chosen = nodes.get(chosen).map(|m| m.row.name.as_str()), ?candidates, "placed");
        Some(match nodes.get(chosen) {
            Some(m) => Place::Node {
                name: m.row.name.clone(),
                address: m.row.address.clone(),
                share: ShareOfLimit { instances: placement::instances_here(&candidates, chosen, need) as i64, as_of_us: now_us() },
                counted: Counted::new(self, &mut in_flight, &m.row.name, (function_id, version)),
            },
            None => Place::Local,
        })
    }

    async fn forward(&self, address: &str, share: ShareOfLimit, target: &Target, request: &CallRequest, id: &str, counted: Counted<'_>) -> Result<Ran, Failed> {
        let name = counted.node.as_str();
        let head = CallHead {
            id: id.to_string(),
            org: target.function.org.clone(),
            name: target.function.name.as_str().to_string(),
            version: target.version.version,
            trigger: request.trigger.as_str().to_string(),
            method: request.method.clone(),
            path: request.path.clone(),
            query: request.query.clone(),
            headers: request.headers.clone(),
            instances_here: Some(share.instances),
            placed_at_us: share.as_of_us,
        };
        let limit = Duration::from_millis(target.version.timeout_ms as u64) + crate::run::runner::START_LIMIT + IMAGE_BUILD_ALLOWANCE + REPLY_MARGIN;
        let sent = self
            .client
            .post(format!("{}://{address}{CALLS_PATH}", self.scheme))
            .header("authorization", &self.bearer)
            .body(wire::frame(&head, &request.body))
            .timeout(limit)
            .send()
            .await;
        let reply = match sent {
            Ok(reply) => reply,
            Err(e) if e.is_connect() => return Err(Failed::NotSent(e.to_string())),
            Err(e) => return Err(Failed::Lost(e.to_string())),
        };
        let status = reply.status();
        let body = reply.bytes().await.map_err(|e| Failed::Lost(e.to_string()))?;
        if !status.is_success() {
            // The node refused the call itself (a wrong secret, a malformed request): a platform fault.
            let cause = String::from_utf8_lossy(&body).chars().take(300).collect::<String>();
            tracing::error!(node = name, %status, cause, "node refused a forwarded call");
            return Err(Failed::NotSent(format!("node answered {status}: {cause}")));
        }
        let (head, body): (ReplyHead, Bytes) = wire::unframe(body).map_err(Failed::Lost)?;
        if let Some(held) = head.held {
            self.held.lock().unwrap().insert((name.to_string(), target.function.id), held);
        }
        if let Some(elsewhere) = head.held_elsewhere {
            // Counted until those nodes' next heartbeats: the call goes to the line of one.
            let mut held = self.held.lock().unwrap();
            for (node, containers) in elsewhere {
                let version_unknown = Held { at_ms: now_ms(), version: 0, of_function: containers, of_version: 0 };
                held.insert((node, target.function.id), version_unknown);
            }
            return Err(Failed::AtLimitElsewhere);
        }
        let response = CallResponse { status: head.status, headers: head.headers, body, cold: head.cold, served_by: head.served_by, duration: Duration::from_micros(head.duration_us as u64), logs: head.logs };
        Ok(Ran { response, connections: head.connections, node: Some(name.to_string()), version: head.version, held_elsewhere: None })
    }
}

/// Counts a call in flight to a node while it lives.
struct Counted<'a> {
    cluster: &'a Cluster,
    node: String,
    key: (i64, i64),
}

impl<'a> Counted<'a> {
    fn new(cluster: &'a Cluster, in_flight: &mut HashMap<String, InFlight>, node: &str, key: (i64, i64)) -> Counted<'a> {
        let entry = in_flight.entry(node.to_string()).or_default();
        entry.total += 1;
        *entry.per_version.entry(key).or_default() += 1;
        Counted { cluster, node: node.to_string(), key }
    }
}

impl Drop for Counted<'_> {
    fn drop(&mut self) {
        let mut in_flight = self.cluster.in_flight.lock().unwrap();
        if let Some(entry) = in_flight.get_mut(&self.node) {
            entry.total -= 1;
            if let Some(n) = entry.per_version.get_mut(&self.key) {
                *n -= 1;
                if *n == 0 {
                    entry.per_version.remove(&self.key);
                }
            }
        }
    }
}

fn failed(status: u16, message: String, target: &Target, node: Option<String>) -> Ran {
    let mut response = CallResponse::json(status, serde_json::json!({"error": message}), String::new());
    response.headers.push(("retry-after".into(), "1".into()));
    Ran { response, connections: None, node, version: target.version.version, held_elsewhere: None }
}

/// Why SQLite will not do for `what`.
pub fn cluster_needs_postgres(what: &str) -> String {
    format!(
        "{what} needs the installation's PostgreSQL database (DATABASE_URL=postgres://…): SQLite is one host's \
         database, which other hosts cannot share; run the single-host `vcd-faas` without a cluster secret instead"
    )
}
