//! A function's calls as its owner sees them: Test Function (through the call pipeline, like
//! every call) and the call records.

use super::{Result, Service};
use crate::calls::dispatch::{Call, Credentials, Delivery};
use crate::calls::request::{CallRequest, CallTrigger, FunctionRef};
use app::model::*;
use crate::store::{InvocationFilter, InvocationRow, StatusFilter};
use app::platform::{Invocations, PlatformError};
use async_trait::async_trait;
use bytes::Bytes;

impl Service {
    /// An invocation of the caller's tenant, with its answer when it has one.
    pub async fn invocation_for(&self, caller: &Caller, id: &str) -> Result<serde_json::Value> {
        self.calls.gateway().flush_records().await;
        let row = self.store.invocation(id).await?;
        let row = row
            .filter(|r| caller.is_provider() || caller.tenant_id == Some(r.tenant_id))
            .ok_or_else(|| PlatformError::not_found(format!("no invocation {id:?}")))?;
        let response: Option<serde_json::Value> = row.response.as_deref().and_then(|r| serde_json::from_str(r).ok());
        Ok(serde_json::json!({
            "id": row.id,
            "function": row.function_name,
            "version": row.version,
            "trigger": row.trigger_kind,
            "state": row.state,
            "status_code": row.status_code,
            "response": response,
            "duration_ms": row.duration_us.map(|us| us as f64 / 1000.0),
            "cold": row.cold != 0,
            "logs": row.logs,
            "error": row.error,
            "attempts": row.attempts,
            // The worker node that ran it (null: the process that took it).
            "node": row.node,
            // A queued retry says when it runs.
            "next_attempt_at": (row.state == "queued" && row.retry_at > 0).then_some(row.retry_at),
            "started_at": row.started_at,
        }))
    }
}

/// A call record as its owner sees it.
fn invocation_view(i: InvocationRow) -> InvocationView {
    InvocationView {
        id: i.id,
        function: i.function_name,
        version: i.version,
        trigger: i.trigger_kind,
        method: i.method,
        path: i.path,
        status_code: i.status_code,
        duration_ms: i.duration_us.map(|us| us as f64 / 1000.0),
        cold: i.cold != 0,
        logs: i.logs,
        error: i.error.or_else(|| (i.state == "running").then(|| "running".to_string())),
        started_at: i.started_at,
        connections: i.connections.as_deref().and_then(|json| serde_json::from_str(json).ok()).unwrap_or_default(),
        node: i.node,
    }
}

/// The status filter a search names (see `InvocationQuery::status`).
fn status_filter(text: &str) -> Result<StatusFilter> {
    let class = text.strip_suffix("xx").and_then(|d| d.parse::<i64>().ok()).filter(|d| (1..=5).contains(d));
    match (text, class) {
        (_, Some(class)) => Ok(StatusFilter::Class(class)),
        ("success", _) => Ok(StatusFilter::Success),
        ("error", _) => Ok(StatusFilter::Errors),
        ("running", _) => Ok(StatusFilter::Unfinished),
        _ => match text.parse::<i64>() {
            Ok(code) if (100..=599).contains(&code) => Ok(StatusFilter::Code(code)),
            _ => Err(PlatformError::invalid(
                "status",
                format!("status {text:?} is not one of: a status code (404), a class (2xx, 4xx, 5xx), success, error, running"),
            )),
        },
    }
}

/// A page's last call as the next page's cursor: `<started_at>.<id>`.
fn cursor_of(view: &InvocationView) -> String {
    format!("{}.{}", view.started_at, view.id)
}

fn after_cursor(cursor: &str) -> Result<(i64, String)> {
    let parsed = cursor.split_once('.').and_then(|(at, id)| Some((at.parse::<i64>().ok()?, id)));
    match parsed {
        Some((at, id)) if !id.is_empty() && id.len() <= 64 => Ok((at, id.to_string())),
        _ => Err(PlatformError::invalid("cursor", format!("cursor {cursor:?} is not one this API gave: pass a page's next_cursor as it is"))),
    }
}

#[async_trait]
impl Invocations for Service {
    async fn list_invocations(&self, caller: &Caller, org: &str, name: &str, limit: i64, trigger: Option<&str>) -> Result<Vec<InvocationView>> {
        let query = InvocationQuery { trigger: trigger.map(str::to_string), limit: Some(limit.clamp(1, 500)), ..Default::default() };
        Ok(self.search_invocations(caller, org, name, query).await?.invocations)
    }

    async fn search_invocations(&self, caller: &Caller, org: &str, name: &str, query: InvocationQuery) -> Result<InvocationPage> {
        let f = self.function_for(caller, org, name).await?;
        let limit = query.limit.unwrap_or(50);
        if !(1..=500).contains(&limit) {
            return Err(PlatformError::invalid("limit", format!("limit must be between 1 and 500 (got {limit})")));
        }
        if let (Some(since), Some(until)) = (query.since, query.until) {
            if since >= until {
                return Err(PlatformError::invalid("until", format!("until ({until}) must be after since ({since}); both are unix ms")));
            }
        }
        let filter = InvocationFilter {
            status: query.status.as_deref().map(status_filter).transpose()?,
            trigger: query.trigger.as_deref(),
            version: query.version,
            since: query.since,
            until: query.until,
            request_id: query.request_id.as_deref(),
            after: query.cursor.as_deref().map(after_cursor).transpose()?,
        };
        self.calls.gateway().flush_records().await;
        // One more than the page: whether a next page exists.
        let mut rows = self.store.search_invocations(f.id, &filter, limit + 1).await?;
        let more = rows.len() as i64 > limit;
        rows.truncate(limit as usize);
        let invocations: Vec<InvocationView> = rows.into_iter().map(invocation_view).collect();
        let next_cursor = if more { invocations.last().map(cursor_of) } else { None };
        Ok(InvocationPage { invocations, next_cursor })
    }

    async fn function_metrics(&self, caller: &Caller, org: &str, name: &str, window: &str) -> Result<MetricsView> {
        let f = self.function_for(caller, org, name).await?;
        let span = super::monitor::window(window)
            .ok_or_else(|| PlatformError::invalid("window", format!("window must be 1h, 24h or 7d (got {window:?})")))?;
        self.calls.gateway().flush_records().await;
        let since = super::monitor::start_of(crate::store::now_ms(), span);
        let calls = self.store.call_figures(f.id, since).await?;
        Ok(super::monitor::figures(window, span, since, &calls))
    }

    async fn test_function(&self, caller: &Caller, org: &str, name: &str, request: TestRequest) -> Result<TestResponse> {
        let f = self.function_for(caller, org, name).await?;
        let method = request.method.trim().to_ascii_uppercase();
        let method = if method.is_empty() { "GET".to_string() } else { method };
        if http::Method::from_bytes(method.as_bytes()).is_err() {
            return Err(PlatformError::invalid("method", format!("{method:?} is not an HTTP method")));
        }
        if request.body.len() > self.config.max_body_bytes {
            return Err(PlatformError::invalid("body", format!("the body is over {} bytes", self.config.max_body_bytes)));
        }
        let mut headers = Vec::new();
        for line in request.headers.lines().map(str::trim).filter(|l| !l.is_empty()) {
            match line.split_once(':') {
                Some((k, v)) if !k.trim().is_empty() => headers.push((k.trim().to_string(), v.trim().to_string())),
                _ => return Err(PlatformError::invalid("headers", format!("{line:?} is not a `Name: value` header"))),
            }
        }
        let path = request.path.trim();
        let path = if path.is_empty() || path.starts_with('/') { path.to_string() } else { format!("/{path}") };
        let call = Call {
            function: FunctionRef::new(f.org, f.name),
            request: CallRequest {
                method,
                path,
                query: request.query.trim().trim_start_matches('?').to_string(),
                headers,
                body: Bytes::from(request.body),
                trigger: CallTrigger::Test,
            },
            credentials: Credentials::User(caller.clone()),
            // The panel shows the answer: the test runs now whatever its headers ask.
            delivery: Delivery::Now,
        };
        let response = match self.calls.dispatch(call).await {
            Ok(dispatched) => dispatched.into_response(),
            Err(rejection) if rejection.status == 404 => return Err(PlatformError::not_found(rejection.message)),
            Err(rejection) if rejection.status == 503 && !rejection.platform_fault => return Err(PlatformError::Unavailable(rejection.message)),
            Err(rejection) => rejection.into_response(),
        };
        // The panel shows text; binary answers are described rather than shown garbled.
        let body = match String::from_utf8(response.body.to_vec()) {
            Ok(text) => text,
            Err(_) => format!("({} bytes of binary data; call the route to get them)", response.body.len()),
        };
        Ok(TestResponse {
            status: response.status,
            headers: response.headers,
            body,
            duration_ms: response.duration.as_secs_f64() * 1000.0,
            cold: response.cold,
            logs: response.logs,
        })
    }
}

/// A function's calls as they end, for live logs: each poll gives the calls that ended since
/// the last, oldest first. Reads the call records, so it sees calls that other fronts and the
/// worker nodes ran as well as this server's.
pub struct CallFeed {
    service: Service,
    function_id: i64,
    /// Calls already given, by id, with their start (to forget them once out of the window).
    given: std::collections::HashMap<String, i64>,
    /// How far back a call may have started and still be ending now: the longest deadline,
    /// and the seconds the call records may wait before they are written.
    window_ms: i64,
}

/// Most calls one poll gives: a live view of a busy function shows the newest.
const FEED_BATCH: i64 = 200;

impl Service {
    /// The last `tail` calls of a function that ended (oldest first) and a feed of the next.
    pub async fn call_feed(&self, caller: &Caller, org: &str, name: &str, tail: i64) -> Result<(Vec<InvocationView>, CallFeed)> {
        if !(0..=100).contains(&tail) {
            return Err(PlatformError::invalid("tail", format!("tail must be between 0 and 100 (got {tail})")));
        }
        let f = self.function_for(caller, org, name).await?;
        let window_ms = self.config.max_timeout_ms + 30_000;
        let mut feed = CallFeed { service: self.clone(), function_id: f.id, given: Default::default(), window_ms };
        self.calls.gateway().flush_records().await;
        let mut ended: Vec<InvocationRow> = self
            .store
            .search_invocations(f.id, &InvocationFilter::default(), FEED_BATCH)
            .await?
            .into_iter()
            .filter(|i| !matches!(i.state.as_str(), "queued" | "running"))
            .collect();
        // What ended before the feed began is not given again, shown in the tail or not.
        for i in &ended {
            feed.given.insert(i.id.clone(), i.started_at);
        }
        ended.truncate(tail as usize);
        ended.reverse();
        Ok((ended.into_iter().map(invocation_view).collect(), feed))
    }
}

impl CallFeed {
    pub async fn next(&mut self) -> Result<Vec<InvocationView>> {
        self.service.calls.gateway().flush_records().await;
        let since = crate::store::now_ms() - self.window_ms;
        let filter = InvocationFilter { since: Some(since), ..Default::default() };
        let rows = self.service.store.search_invocations(self.function_id, &filter, FEED_BATCH).await?;
        self.given.retain(|_, started| *started >= since);
        let mut new: Vec<InvocationRow> = rows
            .into_iter()
            .filter(|i| !matches!(i.state.as_str(), "queued" | "running") && !self.given.contains_key(&i.id))
            .collect();
        for i in &new {
            self.given.insert(i.id.clone(), i.started_at);
        }
        new.reverse();
        Ok(new.into_iter().map(invocation_view).collect())
    }
}
