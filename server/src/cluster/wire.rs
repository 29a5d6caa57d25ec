//! What a front and a node say to each other: one HTTP request per call, `POST /cluster/v1/calls`
//! with the cluster secret as its bearer token. Request and reply bodies are framed alike: a
//! JSON head (which never holds a raw newline), a newline, then the body's bytes untouched.

use crate::run::pool::ServedBy;
use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

pub const CALLS_PATH: &str = "/cluster/v1/calls";

/// A call forwarded to a node: the route the front resolved and the request as the gateway got it.
#[derive(Debug, Serialize, Deserialize)]
pub struct CallHead {
    /// The call's record id (the front writes the record).
    pub id: String,
    pub org: String,
    pub name: String,
    /// The version the front resolved; the node serves it, or its newer serving version.
    pub version: i64,
    pub trigger: String,
    pub method: String,
    pub path: String,
    pub query: String,
    pub headers: Vec<(String, String)>,
    /// The most containers of the function the node may run for this call: its share of the
    /// function's cluster-wide `max_instances`.
    #[serde(default)]
    pub instances_here: Option<i64>,
    /// When the front worked `instances_here` out (its clock, µs since the epoch).
    #[serde(default)]
    pub placed_at_us: i64,
}

/// How the call ended on the node: the function's answer and what its record needs.
#[derive(Debug, Serialize, Deserialize)]
pub struct ReplyHead {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub cold: bool,
    /// Which path gave the call its container there.
    #[serde(default)]
    pub served_by: Option<ServedBy>,
    pub duration_us: i64,
    pub logs: String,
    pub connections: Option<String>,
    /// The version that ran.
    pub version: i64,
    /// What the node holds of the function as the call ended, fresher than its last heartbeat.
    #[serde(default)]
    pub held: Option<Held>,
    /// The call did not run: the function's `max_instances` are all on these other nodes
    /// (name, containers), so the front places it again, in the line of one of them.
    #[serde(default)]
    pub held_elsewhere: Option<Vec<(String, usize)>>,
}

/// A node's containers of a function at a moment (its clock, as its heartbeats'), so a front
/// counts a container started since the last heartbeat against the function's limit.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
pub struct Held {
    pub at_ms: i64,
    pub version: i64,
    pub of_function: usize,
    pub of_version: usize,
}

/// `head` as JSON, a newline, then `body`.
pub fn frame(head: &impl Serialize, body: &[u8]) -> Vec<u8> {
    let mut framed = serde_json::to_vec(head).expect("a head serializes");
    framed.reserve(body.len() + 1);
    framed.push(b'\n');
    framed.extend_from_slice(body);
    framed
}

/// The head and the body of a framed message.
pub fn unframe<T: DeserializeOwned>(framed: Bytes) -> Result<(T, Bytes), String> {
    let end = framed.iter().position(|&b| b == b'\n').ok_or("no head: a framed message starts with a JSON line")?;
    let head = serde_json::from_slice(&framed[..end]).map_err(|e| format!("malformed head: {e}"))?;
    Ok((head, framed.slice(end + 1..)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_body_with_newlines_and_any_bytes_comes_back_whole() {
        let head = ReplyHead { status: 201, headers: vec![("x".into(), "a\nb".into())], cold: true, served_by: Some(ServedBy::Prestarted), duration_us: 7, logs: "l1\nl2".into(), connections: None, version: 3, held: Some(Held { at_ms: 5, version: 3, of_function: 2, of_version: 1 }), held_elsewhere: None };
        let body = b"line 1\nline 2\n\xff\x00";
        let (back, rest): (ReplyHead, Bytes) = unframe(Bytes::from(frame(&head, body))).unwrap();
        assert_eq!((back.status, back.logs.as_str(), back.headers[0].1.as_str()), (201, "l1\nl2", "a\nb"));
        assert_eq!(back.held.map(|h| (h.of_function, h.of_version)), Some((2, 1)));
        assert_eq!(&rest[..], body);
        assert!(unframe::<ReplyHead>(Bytes::from_static(b"{\"status\": 1}")).unwrap_err().contains("no head"));
        assert!(unframe::<ReplyHead>(Bytes::from_static(b"not json\nbody")).unwrap_err().contains("malformed head"));
    }
}
