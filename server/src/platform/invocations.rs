//! A function's calls as its owner sees them: Test Function (through the call pipeline, like
//! every call) and the call records.

use super::{Result, Service};
use crate::calls::dispatch::{Call, Credentials, Delivery};
use crate::calls::request::{CallRequest, CallTrigger, FunctionRef};
use app::model::*;
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

#[async_trait]
impl Invocations for Service {
    async fn list_invocations(&self, caller: &Caller, org: &str, name: &str, limit: i64, trigger: Option<&str>) -> Result<Vec<InvocationView>> {
        let f = self.function_for(caller, org, name).await?;
        self.calls.gateway().flush_records().await;
        let limit = limit.clamp(1, 500);
        let rows = match trigger {
            Some(trigger) => self.store.list_invocations_of_trigger(f.id, trigger, limit).await?,
            None => self.store.list_invocations(f.id, limit).await?,
        };
        Ok(rows
            .into_iter()
            .map(|i| InvocationView {
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
            })
            .collect())
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
