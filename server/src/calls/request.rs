//! What every source of a call hands to the dispatcher, and the one shape of its answer.

use crate::run::pool::ServedBy;
use bytes::Bytes;
use std::borrow::Cow;
use std::time::Duration;

/// What brought a call; the invocation record keeps it as `trigger`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum CallTrigger {
    /// The tenant route `/api/org/{org}/{name}`.
    #[default]
    Http,
    /// The portal's Test Function.
    Test,
    /// An API request that vCD forwarded.
    Vcd,
    /// A vCD notification matching the function's event trigger.
    Event,
    /// A call accepted with `X-Invoke-Type: async`, run later.
    Async,
    /// A tick of the function's schedule.
    Schedule,
}

impl CallTrigger {
    pub fn as_str(self) -> &'static str {
        match self {
            CallTrigger::Http => "http",
            CallTrigger::Test => "test",
            CallTrigger::Vcd => "vcd",
            CallTrigger::Event => "event",
            CallTrigger::Async => "async",
            CallTrigger::Schedule => "schedule",
        }
    }

    /// vCD hands over its broker's backlog, bounded by the prefetch: those calls wait in the
    /// function's line for a place rather than being refused when the line is full.
    pub fn parse(name: &str) -> Option<CallTrigger> {
        [CallTrigger::Http, CallTrigger::Test, CallTrigger::Vcd, CallTrigger::Event, CallTrigger::Async, CallTrigger::Schedule]
            .into_iter()
            .find(|t| t.as_str() == name)
    }

    pub fn waits_when_full(self) -> bool {
        self == CallTrigger::Vcd
    }
}

/// A function by its route: tenant (org) and name, decoded.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct FunctionRef {
    pub org: String,
    pub name: String,
}

impl FunctionRef {
    pub fn new(org: impl Into<String>, name: impl Into<String>) -> FunctionRef {
        FunctionRef { org: org.into(), name: name.into() }
    }
}

/// `/api/org/{org}/{name}[/{rest…}]` split into org, name and what follows the name (from its
/// `/`, or empty), still percent-encoded; `None` for any other path.
pub fn split_route(path: &str) -> Option<(&str, &str, &str)> {
    let route = path.strip_prefix("/api/org/")?;
    let (org, route) = route.split_once('/')?;
    let (name, rest) = route.find('/').map_or((route, ""), |end| route.split_at(end));
    let rest = if rest == "/" { "" } else { rest };
    (!org.is_empty() && !name.is_empty()).then_some((org, name, rest))
}

/// A tenant route decoded once, for every source alike: the function and the path after its
/// route. `None` for a path that is not a tenant route.
pub fn parse_route(path: &str) -> Option<Result<(FunctionRef, String), Rejection>> {
    let (org, name, rest) = split_route(path)?;
    let decoded = || -> Result<(FunctionRef, String), Rejection> {
        Ok((FunctionRef::new(decode(org)?, decode(name)?), decode(rest)?.into_owned()))
    };
    Some(decoded())
}

fn decode(part: &str) -> Result<Cow<'_, str>, Rejection> {
    percent_encoding::percent_decode_str(part)
        .decode_utf8()
        .map_err(|_| Rejection::new(400, format!("the path part {part:?} is not UTF-8 once decoded")))
}

/// One call as the function will see it.
#[derive(Clone, Debug, Default)]
pub struct CallRequest {
    pub method: String,
    /// What follows the function's route, starting with `/` (or empty), decoded.
    pub path: String,
    pub query: String,
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
    pub trigger: CallTrigger,
}

impl CallRequest {
    /// The path as recorded and passed to the function: `/` when empty.
    pub fn route_path(&self) -> String {
        if self.path.is_empty() { "/".to_string() } else { self.path.clone() }
    }

    /// `X-Invoke-Type: async`: the caller wants an invocation id now and the answer later.
    pub fn asks_async(&self) -> bool {
        self.headers.iter().any(|(k, v)| k.eq_ignore_ascii_case("x-invoke-type") && v.eq_ignore_ascii_case("async"))
    }
}

/// A call's answer, whatever its source; each adapter writes it in its own wire format.
#[derive(Clone, Debug)]
pub struct CallResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
    pub cold: bool,
    /// Which path gave the call its container (`None`: it got none).
    pub served_by: Option<ServedBy>,
    pub duration: Duration,
    pub logs: String,
}

impl CallResponse {
    /// An answer of the platform's own, `{"error": …}` or another JSON body.
    pub fn json(status: u16, body: serde_json::Value, logs: String) -> CallResponse {
        CallResponse {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: Bytes::from(body.to_string()),
            cold: false,
            served_by: None,
            duration: Duration::ZERO,
            logs,
        }
    }

    /// The 202 answer to a call accepted for later: where to read its outcome.
    pub fn accepted(invocation_id: &str) -> CallResponse {
        let location = format!("/api/v1/invocations/{invocation_id}");
        let mut response = CallResponse::json(202, serde_json::json!({"invocation_id": invocation_id, "status": location}), String::new());
        response.headers.push(("location".into(), location));
        response
    }
}

/// Why a call was not run: its status and what the caller should do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejection {
    pub status: u16,
    pub message: String,
    /// The platform failed (its database, its queue), not the call: worth trying again.
    pub platform_fault: bool,
}

impl Rejection {
    pub fn new(status: u16, message: impl Into<String>) -> Rejection {
        Rejection { status, message: message.into(), platform_fault: false }
    }

    /// A failure of the platform's own: logged here, never detailed to the caller.
    pub fn internal(cause: impl std::fmt::Display) -> Rejection {
        tracing::error!(error = %cause, "call rejected on an internal error");
        Rejection { platform_fault: true, ..Rejection::new(500, "internal error") }
    }

    pub fn into_response(self) -> CallResponse {
        let mut response = CallResponse::json(self.status, serde_json::json!({"error": self.message}), String::new());
        if self.status == 429 || self.status == 503 {
            response.headers.push(("retry-after".into(), "1".into()));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_function_routes_are_calls() {
        assert_eq!(split_route("/api/org/acme/hello"), Some(("acme", "hello", "")));
        assert_eq!(split_route("/api/org/acme/hello/"), Some(("acme", "hello", "")));
        assert_eq!(split_route("/api/org/acme/hello/a/b%20c"), Some(("acme", "hello", "/a/b%20c")));
        for other in ["/api/org/acme", "/api/org/acme/", "/api/org//hello", "/api/v1/functions", "/", "/api/orgs/acme/hello"] {
            assert_eq!(split_route(other), None, "{other}");
        }
    }

    #[test]
    fn every_part_of_a_route_is_decoded_once() {
        let (function, path) = parse_route("/api/org/ac%6De/h%65llo/a/b%20c%2Fd").unwrap().unwrap();
        assert_eq!(function, FunctionRef::new("acme", "hello"));
        assert_eq!(path, "/a/b c/d");
        let bad = parse_route("/api/org/acme/hello/%FF").unwrap().unwrap_err();
        assert_eq!(bad.status, 400);
        assert!(parse_route("/api/v1/functions").is_none());
    }

    #[test]
    fn an_async_request_is_told_by_its_header_in_any_case() {
        let mut request = CallRequest { headers: vec![("X-Invoke-Type".into(), "ASYNC".into())], ..Default::default() };
        assert!(request.asks_async());
        request.headers[0].1 = "sync".into();
        assert!(!request.asks_async());
    }
}
