//! `fn deploy`, `fn list`, `fn delete`: functions through `/api/v1/functions`.

use super::args::{DeleteArgs, DeployArgs, ListArgs};
use super::error::{CliError, CliResult};
use super::folder::{self, Deployment};
use super::http::{refusal, segment, Api};
use super::session::signed_in;
use reqwest::{Method, StatusCode};
use serde::Deserialize;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

const POLL_EVERY: Duration = Duration::from_millis(400);

/// The parts of the API's function view the CLI shows; others are ignored, so a newer server
/// with more fields still reads.
#[derive(Deserialize, Debug)]
pub struct FunctionSummary {
    pub name: String,
    pub language: String,
    pub route: String,
    pub status: String,
    /// The serving version.
    pub version: Option<i64>,
    pub latest_version: i64,
    pub build_status: String,
    #[serde(default)]
    pub build_error: Option<String>,
    #[serde(default)]
    pub build_log: String,
    #[serde(default)]
    pub memory_mb: Option<i64>,
    #[serde(default)]
    pub timeout_ms: Option<i64>,
    #[serde(default)]
    pub public: Option<bool>,
    #[serde(default)]
    pub trigger: Value,
    #[serde(default)]
    pub updated_at: Option<i64>,
}

fn function_path(name: &str) -> String {
    format!("/api/v1/functions/{}", segment(name))
}

pub async fn deploy(args: &DeployArgs) -> CliResult {
    let (_, api) = signed_in()?;
    let deployment = folder::read(&args.folder, args.name.as_deref())?;
    let name = deployment.name.clone();
    let existing = current(&api, &name).await?;
    let mut body = request_body(&deployment);
    let request = match &existing {
        None => {
            body["name"] = json!(name);
            eprintln!("creating {name} ({}, {})", deployment.language.label(), count(deployment.files.len(), "file"));
            api.request(Method::POST, "/api/v1/functions")
        }
        Some(f) if f.status == "deleting" => {
            return Err(CliError::Failed(format!("{name} is being deleted: deploy again once `vcd-faas fn list` no longer shows it")));
        }
        Some(f) => {
            // Refused (409) when someone saved a newer version since it was read.
            body["expected_version"] = json!(f.latest_version);
            eprintln!("updating {name} ({}, {})", deployment.language.label(), count(deployment.files.len(), "file"));
            api.request(Method::PUT, &function_path(&name))
        }
    };
    let saved: FunctionSummary = api.json(request.json(&body)).await?;
    let version = saved.latest_version;
    let url = api.url(&saved.route);
    if args.no_wait {
        eprintln!("version {version} saved; its build runs on the server");
        println!("{url}");
        return Ok(());
    }
    eprintln!("version {version} saved; building…");
    let built = wait_for_build(&api, &name, version, Duration::from_secs(args.wait_secs)).await?;
    if built.build_status == "failed" && built.latest_version == version {
        let serving = match built.version {
            Some(v) => format!("\nversion {v} keeps serving"),
            None => String::new(),
        };
        return Err(CliError::Failed(format!("the build of {name} version {version} failed:\n{}{serving}", build_failure(&built))));
    }
    eprintln!("{name} version {version} is ready");
    println!("{url}");
    Ok(())
}

/// The function as the server has it, or `None` when it has none of that name.
async fn current(api: &Api, name: &str) -> CliResult<Option<FunctionSummary>> {
    let response = api.send(api.request(Method::GET, &function_path(name))).await?;
    match response.status() {
        StatusCode::NOT_FOUND => Ok(None),
        status if status.is_success() => {
            response.json().await.map(Some).map_err(|e| CliError::Failed(format!("the server's answer about {name} is not a function ({e})")))
        }
        _ => Err(refusal(response).await),
    }
}

/// The manifest's settings with the folder's language and files, as the API takes them.
fn request_body(deployment: &Deployment) -> Value {
    let mut body = serde_json::to_value(&deployment.settings).expect("settings serialize");
    body["language"] = json!(deployment.language.as_str());
    body["files"] = json!(deployment.files);
    body
}

/// Polls until `version` serves or its build failed; shows each new build state on stderr.
async fn wait_for_build(api: &Api, name: &str, version: i64, patience: Duration) -> CliResult<FunctionSummary> {
    let start = Instant::now();
    let mut shown = String::new();
    loop {
        let f: FunctionSummary = api.json(api.request(Method::GET, &function_path(name))).await?;
        if f.latest_version > version {
            return Err(CliError::Failed(format!(
                "version {} of {name} was saved while version {version} built (someone else deployed?): see `vcd-faas fn list`",
                f.latest_version
            )));
        }
        if f.version == Some(version) || f.build_status == "failed" {
            return Ok(f);
        }
        if f.build_status != shown {
            eprintln!("  build: {}", f.build_status);
            shown = f.build_status.clone();
        }
        if start.elapsed() > patience {
            return Err(CliError::Failed(format!(
                "version {version} of {name} did not become ready within {} s (build: {}); it goes on on the server: see `vcd-faas fn list`",
                patience.as_secs(),
                f.build_status
            )));
        }
        tokio::time::sleep(POLL_EVERY).await;
    }
}

/// What made a build fail: the server's summary (the interpreter's or package manager's error
/// and its place), else the end of the build log.
fn build_failure(f: &FunctionSummary) -> String {
    if let Some(error) = f.build_error.as_deref().filter(|e| !e.trim().is_empty()) {
        return error.trim_end().to_string();
    }
    let lines: Vec<&str> = f.build_log.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}

fn count(n: usize, what: &str) -> String {
    format!("{n} {what}{}", if n == 1 { "" } else { "s" })
}

pub async fn list(args: &ListArgs) -> CliResult {
    let (_, api) = signed_in()?;
    let functions: Vec<FunctionSummary> = api.json(api.request(Method::GET, "/api/v1/functions")).await?;
    if args.json {
        let rows: Vec<Value> = functions.iter().map(|f| as_json(&api, f)).collect();
        println!("{}", serde_json::to_string_pretty(&rows).expect("JSON serializes"));
        return Ok(());
    }
    if functions.is_empty() {
        eprintln!("no functions yet: `vcd-faas fn init` and `vcd-faas fn deploy` make one");
        return Ok(());
    }
    let rows: Vec<[String; 5]> = functions
        .iter()
        .map(|f| [f.name.clone(), f.language.clone(), f.status.clone(), version_cell(f), api.url(&f.route)])
        .collect();
    print!("{}", table(["NAME", "LANGUAGE", "STATUS", "VERSION", "URL"], &rows));
    Ok(())
}

/// The serving version, and the latest when it is not (yet) the one serving: `1 (2 building)`.
fn version_cell(f: &FunctionSummary) -> String {
    let serving = f.version.map_or("-".to_string(), |v| v.to_string());
    if f.version == Some(f.latest_version) {
        serving
    } else {
        format!("{serving} ({} {})", f.latest_version, f.build_status)
    }
}

fn as_json(api: &Api, f: &FunctionSummary) -> Value {
    json!({
        "name": f.name, "language": f.language, "status": f.status, "version": f.version,
        "latest_version": f.latest_version, "build_status": f.build_status, "url": api.url(&f.route),
        "memory_mb": f.memory_mb, "timeout_ms": f.timeout_ms, "public": f.public, "trigger": f.trigger,
        "updated_at": f.updated_at,
    })
}

/// Columns padded to their widest cell, two spaces apart; the last one unpadded.
fn table<const N: usize>(header: [&str; N], rows: &[[String; N]]) -> String {
    let mut widths = header.map(|h| h.chars().count());
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut text = String::new();
        for (i, cell) in cells.iter().enumerate() {
            if i + 1 == N {
                text.push_str(cell);
            } else {
                text.push_str(&format!("{cell:<width$}  ", width = widths[i]));
            }
        }
        text.push('\n');
        text
    };
    let mut out = line(header.to_vec());
    for row in rows {
        out.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    out
}

pub async fn delete(args: &DeleteArgs) -> CliResult {
    let (_, api) = signed_in()?;
    api.checked(api.request(Method::DELETE, &function_path(&args.name))).await?;
    eprintln!("deleted {}: its route answers 404 now; its containers and images are removed in the background", args.name);
    Ok(())
}
