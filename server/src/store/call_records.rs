//! A call's record as the journal writes it: how it started and how it ended.

use super::{now_ms, Target};

/// A call as it starts.
#[derive(Clone, Debug)]
pub struct CallStart {
    pub id: String,
    pub function_id: i64,
    pub tenant_id: i64,
    pub version: i64,
    pub trigger: &'static str,
    pub method: String,
    pub path: String,
    pub started_at: i64,
}

impl CallStart {
    pub fn new(id: String, target: &Target, trigger: &'static str, method: &str, path: String) -> CallStart {
        CallStart {
            id,
            function_id: target.function.id,
            tenant_id: target.function.tenant_id,
            version: target.version.version,
            trigger,
            method: method.to_string(),
            path,
            started_at: now_ms(),
        }
    }
}

/// How a call ended.
#[derive(Clone, Debug)]
pub struct CallEnd {
    pub id: String,
    pub status_code: u16,
    pub duration_us: i64,
    pub cold: bool,
    pub logs: String,
    pub error: Option<String>,
    /// The outbound connections it opened, a JSON array; `None` when it opened none.
    pub connections: Option<String>,
    /// The worker node that ran it; `None` when the process that recorded it did.
    pub node: Option<String>,
}

impl CallEnd {
    /// The record's state once the call ended.
    pub fn state(&self) -> &'static str {
        if self.error.is_some() { "failed" } else { "done" }
    }
}

