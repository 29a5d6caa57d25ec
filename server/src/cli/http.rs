//! Requests to the platform's REST API, with its answers turned into the CLI's errors: the
//! server's `{"error", "fields"}` message, a refused token, or no answer at all.

use super::error::{CliError, CliResult};
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde::de::DeserializeOwned;
use std::time::Duration;

/// Time to connect; a slow answer is bounded per request (a build wait polls, a call waits
/// for its function).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);

pub struct Api {
    base: String,
    token: Option<String>,
    http: reqwest::Client,
}

impl Api {
    pub fn new(base: &str, token: Option<String>) -> CliResult<Api> {
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .user_agent(concat!("vcd-faas-cli/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| CliError::Failed(format!("cannot set up HTTP: {e}")))?;
        Ok(Api { base: base.trim_end_matches('/').to_string(), token, http })
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A request to `path` (from `/`), with the token when there is one and the default
    /// timeout (`RequestBuilder::timeout` overrides it).
    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.request_without_deadline(method, path).timeout(REQUEST_TIMEOUT)
    }

    /// A request that may last as long as the server keeps it open (a followed log stream).
    pub fn request_without_deadline(&self, method: Method, path: &str) -> RequestBuilder {
        let request = self.http.request(method, self.url(path));
        match &self.token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    }

    /// Sends; no answer at all is `Unreachable`.
    pub async fn send(&self, request: RequestBuilder) -> CliResult<Response> {
        request.send().await.map_err(|e| self.unreachable(e))
    }

    pub fn unreachable(&self, e: reqwest::Error) -> CliError {
        let what = if e.is_timeout() { "no answer in time from" } else { "cannot reach" };
        CliError::Unreachable(format!("{what} the server at {} ({}): check the address (`vcd-faas fn login --url …`) and the network", self.base, causes(&e)))
    }

    /// Sends and reads a successful answer as JSON; any other answer is the server's error.
    pub async fn json<T: DeserializeOwned>(&self, request: RequestBuilder) -> CliResult<T> {
        let response = self.checked(request).await?;
        let text = response.text().await.map_err(|e| self.unreachable(e))?;
        serde_json::from_str(&text).map_err(|e| {
            CliError::Failed(format!("the answer from {} is not what the vcd-faas API sends ({e}); is the address a vcd-faas portal?", self.base))
        })
    }

    /// Sends; an answer below 400 is returned, any other becomes the server's error.
    pub async fn checked(&self, request: RequestBuilder) -> CliResult<Response> {
        let response = self.send(request).await?;
        if response.status().is_success() || response.status().is_redirection() {
            return Ok(response);
        }
        Err(refusal(response).await)
    }
}

/// The error a non-successful API answer stands for.
pub async fn refusal(response: Response) -> CliError {
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    refusal_of(status, &text)
}

/// The error an answer of `status` with `text` stands for.
pub fn refusal_of(status: StatusCode, text: &str) -> CliError {
    let message = server_message(status, text);
    if status == StatusCode::UNAUTHORIZED {
        return CliError::NotSignedIn(format!("the server refused the saved token: {message}; sign in again with `vcd-faas fn login`"));
    }
    CliError::Failed(message)
}

/// What the server said: its `error` and each field's message on a line of its own, or, from
/// something that is not the API, the status and the start of the body.
pub fn server_message(status: StatusCode, body: &str) -> String {
    let Ok(value) = serde_json::from_str::<serde_json::Value>(body) else {
        let start: String = body.trim().chars().take(200).collect();
        let hint = if status == StatusCode::NOT_FOUND { " (is the address a vcd-faas portal?)" } else { "" };
        return format!("the server answered {status}{hint}{}", if start.is_empty() { String::new() } else { format!(": {start}") });
    };
    let mut message = match value.get("error").and_then(|e| e.as_str()) {
        Some(error) => error.to_string(),
        None => format!("the server answered {status}: {body}"),
    };
    for field in value.get("fields").and_then(|f| f.as_array()).into_iter().flatten() {
        let name = field.get("field").and_then(|f| f.as_str()).unwrap_or("?");
        let text = field.get("message").and_then(|m| m.as_str()).unwrap_or("");
        message.push_str(&format!("\n  {name}: {text}"));
    }
    message
}

/// The innermost cause of an error (`Connection refused (os error 111)`): reqwest's own
/// outer messages repeat the address and the layers it went through.
fn causes(e: &dyn std::error::Error) -> String {
    let mut innermost = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        innermost = cause.to_string();
        source = cause.source();
    }
    innermost
}

/// A path segment with everything but unreserved characters escaped.
pub fn segment(text: &str) -> String {
    const ESCAPED: &percent_encoding::AsciiSet =
        &percent_encoding::NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');
    percent_encoding::utf8_percent_encode(text, ESCAPED).to_string()
}
