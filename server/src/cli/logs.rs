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
    let mut text = format!("{}  {} {path}  {status}{duration}  {}  {}\n", date_of(call.started_at), call.method, facts.join(" "), call.id);
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
