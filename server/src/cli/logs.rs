//! `fn logs`: a function's recent calls with their logs, from the server's event stream
//! (`GET /api/v1/functions/{name}/logs`), and with `--follow` each call as it ends.

use super::args::LogsArgs;
use super::error::{CliError, CliResult};
use super::http::{refusal_of, segment};
use super::session::{date_of, signed_in};
use super::sse::SseReader;
use reqwest::{Method, StatusCode};
use serde::Deserialize;
use std::io::Write;

/// One call as the stream sends it (an element of `GET …/invocations`); fields the CLI does
/// not show are ignored.
#[derive(Deserialize)]
struct Call {
    #[serde(default)]
    id: String,
    #[serde(default)]
    version: Option<i64>,
    #[serde(default)]
    trigger: String,
    #[serde(default)]
    method: String,
    #[serde(default)]
    path: String,
    status_code: Option<i64>,
    duration_ms: Option<f64>,
    #[serde(default)]
    cold: bool,
    #[serde(default)]
    logs: String,
    error: Option<String>,
    #[serde(default)]
    started_at: i64,
    #[serde(default)]
    node: Option<String>,
}

pub async fn logs(args: &LogsArgs) -> CliResult {
    let (_, api) = signed_in()?;
    let path = format!("/api/v1/functions/{}/logs?tail={}&follow={}", segment(&args.name), args.tail, args.follow);
    let request = if args.follow { api.request_without_deadline(Method::GET, &path) } else { api.request(Method::GET, &path) };
    let mut response = api.send(request.header("accept", "text/event-stream")).await?;
    let status = response.status();
    if !status.is_success() {
        let text = response.text().await.unwrap_or_default();
        // The API's catch-all: the server predates the log stream.
        if status == StatusCode::NOT_FOUND && text.contains("no such API endpoint") {
            return Err(CliError::Failed(format!("the server at {} has no log stream (GET /api/v1/functions/…/logs): it is older than this CLI", api.base())));
        }
        return Err(refusal_of(status, &text));
    }
    let mut reader = SseReader::default();
    let mut stdout = std::io::stdout();
    while let Some(piece) = response.chunk().await.map_err(|e| api.unreachable(e))? {
        for event in reader.feed(&piece) {
            if event.name != "call" {
                continue;
            }
            let text = if args.json { format!("{}\n", event.data) } else { show(&event.data) };
            stdout.write_all(text.as_bytes()).and_then(|()| stdout.flush()).map_err(|e| CliError::Failed(format!("cannot write to stdout: {e}")))?;
        }
    }
    if args.follow {
        return Err(CliError::Unreachable(format!("the server at {} closed the log stream", api.base())));
    }
    Ok(())
}

/// A call as a header line, then its log lines and its error, indented.
fn show(data: &str) -> String {
    let Ok(call) = serde_json::from_str::<Call>(data) else {
        return format!("{data}\n");
    };
    let status = call.status_code.map_or("running".to_string(), |s| s.to_string());
    let duration = call.duration_ms.map(|ms| format!("  {ms:.0} ms")).unwrap_or_default();
    let mut facts = Vec::new();
    if let Some(version) = call.version {
        facts.push(format!("v{version}"));
    }
    if call.cold {
        facts.push("cold".into());
    }
    if !call.trigger.is_empty() && call.trigger != "http" {
        facts.push(call.trigger.clone());
    }
    if let Some(node) = &call.node {
        facts.push(format!("node {node}"));
    }
    let path = if call.path.is_empty() { "/" } else { &call.path };
    let header = [date_of(call.started_at), format!("{} {path}", call.method), format!("{status}{duration}"), facts.join(" "), call.id];
    let mut text = header.iter().filter(|part| !part.is_empty()).cloned().collect::<Vec<_>>().join("  ");
    text.push('\n');
    for line in call.logs.lines() {
        text.push_str(&format!("  | {line}\n"));
    }
    if let Some(error) = call.error.filter(|e| !e.is_empty()) {
        for line in error.lines() {
            text.push_str(&format!("  ! {line}\n"));
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_call_shows_as_a_header_line_with_its_log_and_error_below() {
        let data = r#"{"id": "c1", "function": "echo", "version": 3, "trigger": "schedule", "method": "POST", "path": "/items",
                       "status_code": 500, "duration_ms": 12.4, "cold": true, "logs": "one\ntwo\n", "error": "boom",
                       "started_at": 1765110000000, "node": "n1", "connections": []}"#;
        assert_eq!(
            show(data),
            "2025-12-07 12:20:00 UTC  POST /items  500  12 ms  v3 cold schedule node n1  c1\n  | one\n  | two\n  ! boom\n"
        );
        let running = r#"{"id": "c2", "method": "GET", "path": "", "status_code": null, "duration_ms": null, "error": null, "started_at": 0}"#;
        assert_eq!(show(running), "1970-01-01 00:00:00 UTC  GET /  running  c2\n");
        assert_eq!(show("not json"), "not json\n", "what the CLI cannot read is shown as it came");
    }
}
