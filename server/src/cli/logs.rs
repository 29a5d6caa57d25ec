//! `fn logs`: a function's recent calls with their logs, from the server's event stream
//! (`GET /api/v1/functions/{name}/logs`), and with `--follow` each call as it ends.

use super::args::LogsArgs;
use super::error::{CliError, CliResult};
use super::http::{refusal_of, segment, Api};
use super::session::{date_of, signed_in};
use super::sse::SseReader;
use reqwest::{Method, StatusCode};
use serde::Deserialize;
use std::collections::VecDeque;
use std::io::Write;
use std::time::Duration;

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

/// Keep-alives come every 15 s: this long without a byte, a followed stream is taken for lost
/// (a connection that died without a word never ends on its own).
const SILENCE_LIMIT: Duration = Duration::from_secs(45);
/// Attempts in a row that open no stream before `--follow` gives up (about half a minute).
const RECONNECT_ATTEMPTS: u32 = 15;
const RECONNECT_PAUSE: Duration = Duration::from_secs(2);
/// A stream open this long counts as working, however it ended.
const STREAM_LASTED: Duration = Duration::from_secs(10);
/// Calls asked for again on reconnecting, so those that ended meanwhile show; the ones
/// already shown are skipped.
const RECONNECT_TAIL: u32 = 50;
/// Ids of shown calls remembered to skip them on a reconnection.
const SEEN_KEPT: usize = 1000;

pub async fn logs(args: &LogsArgs) -> CliResult {
    let (_, api) = signed_in()?;
    let mut printer = Printer { json: args.json, seen: VecDeque::new() };
    if !args.follow {
        return stream(&api, args, args.tail, &mut printer, &mut false).await;
    }
    // The server ends a stream it cannot feed (a database hiccup) and expects the client to
    // come back, as a browser's EventSource does: so does `--follow`.
    let mut tail = args.tail;
    let mut failures = 0;
    let mut first = true;
    loop {
        let mut opened = false;
        let started = std::time::Instant::now();
        let lost = match stream(&api, args, tail, &mut printer, &mut opened).await {
            Ok(()) => CliError::Unreachable(format!("the server at {} keeps closing the log stream", api.base())),
            Err(e @ CliError::Unreachable(_)) => e,
            Err(e) => return Err(e),
        };
        // A stream that served a while was a good one: start counting again.
        failures = if opened && started.elapsed() >= STREAM_LASTED { 1 } else { failures + 1 };
        // No stream at all on the first attempt: a wrong address, not a hiccup.
        if failures > RECONNECT_ATTEMPTS || (!opened && first) {
            return Err(lost);
        }
        if failures == 1 {
            eprintln!("vcd-faas: the log stream ended; reconnecting…");
        }
        tokio::time::sleep(RECONNECT_PAUSE).await;
        tail = RECONNECT_TAIL;
        first = false;
    }
}

/// Reads one stream to its end, printing each call; `opened` tells whether the server
/// answered with the stream at all.
async fn stream(api: &Api, args: &LogsArgs, tail: u32, printer: &mut Printer, opened: &mut bool) -> CliResult {
    let path = format!("/api/v1/functions/{}/logs?tail={tail}&follow={}", segment(&args.name), args.follow);
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
    *opened = true;
    let mut reader = SseReader::default();
    loop {
        let piece = match tokio::time::timeout(SILENCE_LIMIT, response.chunk()).await {
            Ok(piece) => piece.map_err(|e| api.unreachable(e))?,
            Err(_) => return Err(CliError::Unreachable(format!("the log stream from {} went silent", api.base()))),
        };
        let Some(piece) = piece else { return Ok(()) };
        for event in reader.feed(&piece) {
            if event.name == "call" {
                printer.print(&event.data)?;
            }
        }
    }
}

struct Printer {
    json: bool,
    /// The ids of the calls shown last, oldest first.
    seen: VecDeque<String>,
}

impl Printer {
    /// Prints a call unless it was shown already (before a reconnection).
    fn print(&mut self, data: &str) -> CliResult {
        let id = serde_json::from_str::<Call>(data).map(|c| c.id).unwrap_or_default();
        if !id.is_empty() {
            if self.seen.contains(&id) {
                return Ok(());
            }
            if self.seen.len() == SEEN_KEPT {
                self.seen.pop_front();
            }
            self.seen.push_back(id);
        }
        let text = if self.json { format!("{data}\n") } else { show(data) };
        let mut stdout = std::io::stdout();
        stdout.write_all(text.as_bytes()).and_then(|()| stdout.flush()).map_err(|e| CliError::Failed(format!("cannot write to stdout: {e}")))
    }
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
