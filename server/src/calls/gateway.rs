//! The gateway: the last step of the pipeline, one call of a function that was resolved and
//! let in. Takes a container from the pool, forwards the request with the call's deadline,
//! returns the function's answer and records the invocation.

use crate::secrets::SecretKey;
use app::model::{Connection, EnvVars};
use super::body;
use super::journal::{CallEnd, CallStart, Journal};
use super::request::{CallRequest, CallResponse};
use super::run_to_end::RunToEnd;
use crate::metrics::Metrics;
use crate::run::pool::{Pool, ServedBy, ShareOfLimit};
use crate::run::runner::{self, CallError, Context, Envelope, Event, Instance};
use crate::store::{now_ms, Store, Target};
use bytes::Bytes;
use futures_util::FutureExt as _;
use std::borrow::Cow;
use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// Most bytes of a call's logs kept in its record: the runtimes keep 64 Ki characters and say
/// what they left out, so a log they cut is kept whole here unless its characters are wide.
const LOG_KEPT_BYTES: usize = 65 * 1024;

#[derive(Clone)]
pub struct Gateway {
    store: Store,
    journal: Journal,
    pool: Arc<Pool>,
    metrics: Arc<Metrics>,
    /// Opens the functions' secrets, which go to the runtime with each call.
    secret_key: SecretKey,
    /// Places calls on the worker nodes; `None`: every call runs in this process.
    cluster: Option<Arc<dyn Placement>>,
}

/// Where calls run when several hosts serve them (`cluster::forward::Cluster`): it runs the
/// call on a node, or here through `run_here`.
#[async_trait::async_trait]
pub trait Placement: Send + Sync {
    async fn run(&self, gateway: &Gateway, target: &Target, request: &CallRequest, id: &str) -> Ran;
}

/// Headers that describe one hop, never forwarded.
const HOP_HEADERS: [&str; 9] = [
    "connection",
    "keep-alive",
    "transfer-encoding",
    "content-length",
    "upgrade",
    "te",
    "trailer",
    "proxy-authorization",
    "proxy-authenticate",
];

impl Gateway {
    pub fn new(store: Store, pool: Arc<Pool>, metrics: Arc<Metrics>, secret_key: SecretKey, cluster: Option<Arc<dyn Placement>>) -> Gateway {
        let journal = Journal::start(store.clone(), pool.engine().process().to_string());
        Gateway { store, journal, pool, metrics, secret_key, cluster }
    }

    /// What the function sees as its environment: the version's variables and the function's
    /// secrets; `None` when it has neither.
    fn configuration_of(&self, target: &Target) -> Result<Option<EnvVars>, CallError> {
        // Most functions have neither: their calls parse and open nothing.
        let no_env = target.version.env_json.as_deref().is_none_or(|json| json == "{}");
        if no_env && target.function.sealed_secrets.is_none() {
            return Ok(None);
        }
        let mut env = target.version.env();
        if let Some(sealed) = &target.function.sealed_secrets {
            let opened = self.secret_key.open(sealed, &target.function.secrets_context()).map_err(CallError::Io)?;
            let secrets: EnvVars = serde_json::from_slice(&opened).map_err(|e| CallError::Io(format!("sealed secrets: {e}")))?;
            env.extend(secrets);
        }
        Ok((!env.is_empty()).then_some(env))
    }

    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    pub fn pool(&self) -> &Arc<Pool> {
        &self.pool
    }

    /// Runs a call and records it through the journal: the caller does not wait for the
    /// database. A caller that goes away (a closed connection) neither cuts the call off in the
    /// middle nor leaves its container's place taken: it runs on to its end, frees its place
    /// and is recorded like any other (`RunToEnd`).
    pub async fn invoke(&self, target: Arc<Target>, request: CallRequest) -> CallResponse {
        let gateway = self.clone();
        let call = RunToEnd::new(async move {
            let id = crate::calls::journal::new_call_id();
            let start = CallStart::new(id.clone(), &target, request.trigger.as_str(), &request.method, request.route_path());
            gateway.journal.started(start).await;
            let (response, end) = gateway.execute(&target, &request, id).await;
            gateway.journal.ended(end).await;
            response
        });
        match AssertUnwindSafe(call).catch_unwind().await {
            Ok(response) => response,
            Err(_) => {
                tracing::error!("a call panicked");
                CallResponse::json(500, serde_json::json!({"error": "internal error"}), String::new())
            }
        }
    }

    /// Runs an asynchronous call already stored as invocation `id`, writing how it ended before
    /// returning (its worker stores the answer next, and a reader must find both).
    pub async fn run(&self, target: &Target, request: &CallRequest, id: String) -> CallResponse {
        let (response, end) = self.execute(target, request, id).await;
        if let Err(e) = self.store.finish_invocation(&end).await {
            tracing::error!(error = %e, "cannot record invocation result");
        }
        response
    }

    /// Everything readers of the call record may need written is written.
    pub async fn flush_records(&self) {
        self.journal.flush().await;
    }

    async fn execute(&self, target: &Target, request: &CallRequest, id: String) -> (CallResponse, CallEnd) {
        let started = Instant::now();
        let f = &target.function;
        let Ran { mut response, connections, node, version, .. } = match &self.cluster {
            Some(cluster) => cluster.run(self, target, request, &id).await,
            None => self.run_here(target, request, &id, None).await,
        };
        response.duration = started.elapsed();
        self.metrics.record_call(&f.org, &f.name, response.status, response.cold, response.duration);
        let end = CallEnd {
            id: id.clone(),
            status_code: response.status,
            duration_us: response.duration.as_micros() as i64,
            cold: response.cold,
            logs: clip_log(&response.logs, LOG_KEPT_BYTES),
            error: (response.status >= 500).then(|| error_text(&response)),
            connections,
            node,
        };
        response.headers.push(("x-vcd-faas-request-id".into(), id));
        response.headers.push(("x-vcd-faas-version".into(), version.to_string()));
        response.headers.push(("x-vcd-faas-cold".into(), response.cold.to_string()));
        if let Some(served_by) = response.served_by {
            response.headers.push(("x-vcd-faas-path".into(), served_by.as_str().into()));
        }
        if let Some(node) = &end.node {
            response.headers.push(("x-vcd-faas-node".into(), node.clone()));
        }
        (response, end)
    }

    /// Runs the call in this process's pool: the function's answer (or the platform's error)
    /// with its outbound connections, not yet recorded. A node runs forwarded calls here too,
    /// with `instances_here`, its share of the function's cluster-wide `max_instances`.
    pub async fn run_here(&self, target: &Target, request: &CallRequest, id: &str, instances_here: Option<ShareOfLimit>) -> Ran {
        let started = Instant::now();
        let (outcome, served_by, connections) = self.call_in_container(target, request, id, (started, now_ms()), instances_here).await;
        let held_elsewhere = match &outcome {
            Err((CallError::HeldElsewhere(held), _)) => Some(held.clone()),
            _ => None,
        };
        let mut response = match outcome {
            Ok(reply) => from_reply(reply, id),
            Err((error, logs)) => from_error(&error, logs, id, target.function.name.as_str()),
        };
        (response.cold, response.served_by) = (served_by != Some(ServedBy::Warm), served_by);
        response.duration = started.elapsed();
        let connections = (!connections.is_empty()).then(|| serde_json::to_string(&connections).expect("connections serialize"));
        Ran { response, connections, node: None, version: target.version.version, held_elsewhere }
    }
}

/// How a call ended where it ran, before it is recorded.
pub struct Ran {
    pub response: CallResponse,
    /// The outbound connections it opened, a JSON array; `None` when it opened none.
    pub connections: Option<String>,
    /// The node that ran it; `None` for this process.
    pub node: Option<String>,
    /// The version that ran.
    pub version: i64,
    /// It did not run: other nodes hold the function's `max_instances` (see
    /// `CallError::HeldElsewhere`).
    pub held_elsewhere: Option<Vec<(String, usize)>>,
}

impl Gateway {
    /// Runs the call in a container from the pool; a dead warm container is replaced once.
    /// The function's timeout bounds the wait for a free place and, apart, the run itself:
    /// a cold start is not taken from the function's time (it has its own limit).
    async fn call_in_container(
        &self,
        target: &Target,
        request: &CallRequest,
        id: &str,
        (started, started_ms): (Instant, i64),
        instances_here: Option<ShareOfLimit>,
    ) -> (Result<runner::ShimReply, (CallError, String)>, Option<ServedBy>, Vec<Connection>) {
        // A call the runtime did not answer has only the container's output for a log: the
        // part written since the call began (with calls running beside it, theirs too).
        let engine = self.pool.engine();
        let output_since_start = |instance: Arc<Instance>| async move { engine.logs_since(&instance.id, started_ms, 50).await };
        let v = &target.version;
        let timeout = Duration::from_millis(v.timeout_ms as u64);
        let env = match self.configuration_of(target) {
            Ok(env) => env,
            Err(e) => return (Err((e, String::new())), None, Vec::new()),
        };
        for _ in 0..2 {
            let lease = match self.pool.acquire(target, started + timeout, request.trigger.waits_when_full(), instances_here).await {
                Ok(lease) => lease,
                Err(e) => return (Err((e, String::new())), None, Vec::new()),
            };
            let served_by = Some(lease.served_by);
            if lease.is_cold() {
                if let Err(error) = runner::wait_ready(engine, &lease.instance, Instant::now() + runner::START_LIMIT).await {
                    let logs = output_since_start(lease.instance.clone()).await;
                    self.pool.release(lease, false);
                    return (Err((error, logs)), served_by, Vec::new());
                }
            }
            let deadline = Instant::now() + timeout;
            let envelope = envelope(target, request, id, env.as_ref());
            lease.instance.egress.begin(id);
            let result = runner::call(engine, &lease.instance, &envelope, deadline, v.timeout_ms, v.memory_mb).await;
            let connections = lease.instance.egress.take(id);
            match result {
                Err(CallError::Stale) => {
                    tracing::info!(container = %lease.instance.name, "warm container gone; replacing it");
                    self.pool.replace(lease);
                    continue;
                }
                Ok(reply) => {
                    self.pool.release(lease, true);
                    return (Ok(reply), served_by, connections);
                }
                Err(error) => {
                    let broken = matches!(
                        error,
                        CallError::OutOfMemory(_) | CallError::Crashed(_) | CallError::Deadline(_) | CallError::Io(_)
                    );
                    let logs = if broken { output_since_start(lease.instance.clone()).await } else { String::new() };
                    self.pool.release(lease, !broken);
                    return (Err((error, logs)), served_by, connections);
                }
            }
        }
        (Err((CallError::Io("no container could be started".into()), String::new())), None, Vec::new())
    }
}

/// What the runtime gets, made when the call is sent: its deadline starts then.
fn envelope(target: &Target, request: &CallRequest, id: &str, env: Option<&EnvVars>) -> Bytes {
    let path = request.route_path();
    let (body, is_base64_encoded) = body::text_or_base64(&request.body);
    let headers: HashMap<Cow<str>, &str> = request
        .headers
        .iter()
        .map(|(k, v)| (lowercase(k), v.as_str()))
        // The caller's platform credentials are not the function's business.
        .filter(|(k, _)| k != "authorization" && k != "cookie" && !HOP_HEADERS.contains(&k.as_ref()))
        .collect();
    let envelope = Envelope {
        event: Event {
            method: &request.method,
            path: &path,
            query: parse_query(&request.query),
            headers,
            body,
            is_base64_encoded,
        },
        context: Context {
            function: &target.function.name,
            version: target.version.version,
            tenant: &target.function.org,
            request_id: id,
            deadline: now_ms() + target.version.timeout_ms,
        },
        env,
    };
    Bytes::from(serde_json::to_vec(&envelope).expect("envelope serializes"))
}

/// HTTP header names arrive in lower case already; others are copied once.
fn lowercase(name: &str) -> Cow<'_, str> {
    if name.bytes().any(|b| b.is_ascii_uppercase()) { Cow::Owned(name.to_ascii_lowercase()) } else { Cow::Borrowed(name) }
}

pub fn parse_query(query: &str) -> HashMap<String, String> {
    form_urlencoded::parse(query.trim_start_matches('?').as_bytes()).into_owned().collect()
}

fn from_reply(reply: runner::ShimReply, id: &str) -> CallResponse {
    if let Some(error) = reply.error {
        let body = serde_json::json!({
            "error": format!("the function raised an exception: {error}"),
            "requestId": id,
        });
        return CallResponse::json(500, body, reply.logs);
    }
    let body = if reply.is_base64_encoded {
        match body::decode(&reply.body) {
            Ok(bytes) => Bytes::from(bytes),
            Err(_) => {
                let body = serde_json::json!({"error": "the function returned a body marked base64 that is not base64"});
                return CallResponse::json(502, body, reply.logs);
            }
        }
    } else {
        Bytes::from(reply.body)
    };
    let status = if (100..=599).contains(&reply.status_code) { reply.status_code } else { 502 };
    let headers = reply
        .headers
        .into_iter()
        .filter(|(k, _)| {
            let k = lowercase(k);
            !HOP_HEADERS.contains(&k.as_ref()) && !k.starts_with("x-vcd-faas-")
        })
        .collect();
    CallResponse { status, headers, body, cold: false, served_by: None, duration: Duration::ZERO, logs: reply.logs }
}

fn from_error(error: &CallError, logs: String, id: &str, function: &str) -> CallResponse {
    let status = match error {
        CallError::Deadline(_) => 504,
        CallError::OutOfMemory(_) | CallError::Crashed(_) | CallError::Protocol(_) => 502,
        CallError::AtCapacity(_) | CallError::HeldElsewhere(_) => 429,
        CallError::Engine(_) | CallError::Io(_) | CallError::Stale => 503,
    };
    let message = match error {
        CallError::Engine(e) => {
            tracing::error!(function, error = %e, "container engine failed");
            "the function runtime is unavailable; try again shortly".to_string()
        }
        CallError::Io(cause) => {
            tracing::warn!(function, cause, "function runtime unreachable");
            error.to_string()
        }
        other => other.to_string(),
    };
    let mut response = CallResponse::json(status, serde_json::json!({"error": message, "requestId": id}), logs);
    if status == 429 || status == 503 {
        response.headers.push(("retry-after".into(), "1".into()));
    }
    response
}

fn error_text(response: &CallResponse) -> String {
    serde_json::from_slice::<serde_json::Value>(&response.body)
        .ok()
        .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_string))
        .unwrap_or_else(|| format!("status {}", response.status))
}

/// A log of at most about `max` bytes: a longer one keeps its first and last halves, cut at
/// character boundaries, with what was left out said between them.
pub fn clip_log(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut head = max / 2;
    while !text.is_char_boundary(head) {
        head -= 1;
    }
    let mut tail = text.len() - max / 2;
    while !text.is_char_boundary(tail) {
        tail += 1;
    }
    format!("{}\n[vcd-faas: {} bytes of log left out here]\n{}", &text[..head], tail - head, &text[tail..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_log_keeps_its_head_and_tail_and_says_what_is_left_out() {
        assert_eq!(clip_log("hello", 10), "hello");
        assert_eq!(clip_log("0123456789", 4), "01\n[vcd-faas: 6 bytes of log left out here]\n89");
        // "é" is two bytes: neither half cuts through it.
        assert_eq!(clip_log("aébcdeé", 4), "a\n[vcd-faas: 6 bytes of log left out here]\né");
    }

    #[test]
    fn query_is_decoded() {
        let q = parse_query("name=J%C3%BCrgen&x=1&x=2");
        assert_eq!(q["name"], "Jürgen");
        assert_eq!(q["x"], "2");
    }

    #[test]
    fn a_function_cannot_set_the_platforms_own_headers_in_any_case() {
        let headers = [("X-Vcd-Faas-Cold", "no"), ("x-vcd-faas-version", "99"), ("Connection", "close"), ("X-Mine", "1")];
        let reply = runner::ShimReply {
            status_code: 200,
            headers: headers.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            body: "ok".into(),
            is_base64_encoded: false,
            logs: String::new(),
            error: None,
        };
        let response = from_reply(reply, "id-1");
        assert_eq!(response.headers, [("X-Mine".to_string(), "1".to_string())]);
    }

    #[test]
    fn exceptions_become_500_without_host_detail() {
        let reply = runner::ShimReply {
            status_code: 500,
            headers: HashMap::new(),
            body: String::new(),
            is_base64_encoded: false,
            logs: "Error: boom\n    at /app/handler.js:2:9".into(),
            error: Some("Error: boom".into()),
        };
        let response = from_reply(reply, "id-1");
        assert_eq!(response.status, 500);
        let body = String::from_utf8(response.body.to_vec()).unwrap();
        assert!(body.contains("Error: boom"));
        assert!(!body.contains("/app/handler.js"));
        assert!(response.logs.contains("/app/handler.js"));
    }
}
