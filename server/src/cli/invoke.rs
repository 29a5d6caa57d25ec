//! `fn invoke`: one call to a function's route, as any HTTP client makes it. The body goes to
//! stdout untouched (pipe it on), the status and the platform's headers to stderr.

use super::args::InvokeArgs;
use super::error::{CliError, CliResult};
use super::http::{segment, server_message};
use super::session::signed_in;
use reqwest::header::{HeaderName, HeaderValue};
use reqwest::{Method, StatusCode};
use std::io::{Read, Write};
use std::time::{Duration, Instant};

pub async fn invoke(args: &InvokeArgs) -> CliResult {
    let body = request_body(args.data.as_deref())?;
    let method = match &args.method {
        Some(m) => Method::from_bytes(m.to_ascii_uppercase().as_bytes()).map_err(|_| CliError::Usage(format!("--method {m:?} is not an HTTP method")))?,
        None if body.is_some() => Method::POST,
        None => Method::GET,
    };
    let (login, api) = signed_in()?;
    let mut request = api
        .request(method, &format!("/api/org/{}/{}{}", segment(&login.org), segment(&args.name), route_rest(&args.path)))
        .timeout(Duration::from_secs(args.timeout));
    for header in &args.headers {
        let (name, value) = parse_header(header)?;
        request = request.header(name, value);
    }
    if args.run_async {
        request = request.header("x-invoke-type", "async");
    }
    if let Some(body) = body {
        request = request.body(body);
    }
    let started = Instant::now();
    let response = api.send(request).await?;
    let status = response.status();
    let headers = response.headers().clone();
    let answer = response.bytes().await.map_err(|e| api.unreachable(e))?;
    let elapsed = started.elapsed();

    let mut stdout = std::io::stdout().lock();
    let written = stdout.write_all(&answer).and_then(|()| {
        // A terminal gets its prompt back on a line of its own; a pipe gets the bytes as sent.
        let to_terminal = unsafe { libc::isatty(libc::STDOUT_FILENO) } == 1;
        if to_terminal && !answer.is_empty() && !answer.ends_with(b"\n") {
            stdout.write_all(b"\n")?;
        }
        stdout.flush()
    });
    written.map_err(|e| CliError::Failed(format!("cannot write the answer to stdout: {e}")))?;

    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
    let request_id = header("x-vcd-faas-request-id");
    let mut facts = vec![format!("{} ms", elapsed.as_millis())];
    if let Some(version) = header("x-vcd-faas-version") {
        facts.push(format!("version {version}"));
    }
    if header("x-vcd-faas-cold").as_deref() == Some("true") {
        facts.push("cold".into());
    }
    if let Some(id) = &request_id {
        facts.push(format!("request {id}"));
    }
    eprintln!("{status} ({})", facts.join(", "));

    if status.as_u16() < 400 {
        return Ok(());
    }
    // The function ran and chose this status (or failed in its run): the status line says it.
    if request_id.is_some() {
        return Err(CliError::Reported);
    }
    // The platform answered before any function ran: say why.
    let message = server_message(status, &String::from_utf8_lossy(&answer));
    if status == StatusCode::UNAUTHORIZED {
        return Err(CliError::NotSignedIn(format!("{message}; sign in again with `vcd-faas fn login`")));
    }
    Err(CliError::Failed(message))
}

/// `--data`: text as given, `@file` a file's bytes, `@-` all of stdin.
fn request_body(data: Option<&str>) -> CliResult<Option<Vec<u8>>> {
    let Some(data) = data else { return Ok(None) };
    match data.strip_prefix('@') {
        Some("-") => {
            let mut bytes = Vec::new();
            std::io::stdin().read_to_end(&mut bytes).map_err(|e| CliError::Failed(format!("cannot read the body from stdin: {e}")))?;
            Ok(Some(bytes))
        }
        Some(file) => std::fs::read(file).map(Some).map_err(|e| CliError::Usage(format!("--data @{file}: cannot read {file}: {e}"))),
        None => Ok(Some(data.as_bytes().to_vec())),
    }
}

/// What follows the route: `items/1` and `/items/1` alike, a query as it is.
fn route_rest(path: &str) -> String {
    if path.is_empty() || path.starts_with('/') || path.starts_with('?') {
        path.to_string()
    } else {
        format!("/{path}")
    }
}

fn parse_header(text: &str) -> CliResult<(HeaderName, HeaderValue)> {
    let wrong = || CliError::Usage(format!("--header {text:?}: write it as \"Name: value\""));
    let (name, value) = text.split_once(':').ok_or_else(wrong)?;
    let name = HeaderName::from_bytes(name.trim().as_bytes()).map_err(|_| wrong())?;
    let value = HeaderValue::from_str(value.trim()).map_err(|_| wrong())?;
    Ok((name, value))
}
