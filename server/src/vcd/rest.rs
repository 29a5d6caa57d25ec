//! A client of vCD's REST API as system administrator: negotiates the API version, logs in
//! (cloudapi provider session from API 33, the legacy `/api/sessions` before), and logs in
//! again when vCD answers 401 because the session expired.

use super::xml;
use crate::config::VcdConfig;
use base64::Engine as _;
use reqwest::{Method, StatusCode};
use tokio::sync::Mutex;

/// API version from which `/cloudapi/1.0.0/sessions/provider` exists (vCD 10.0).
const CLOUDAPI_LOGIN_FROM: f64 = 33.0;

#[derive(Clone)]
enum Token {
    Bearer(String),
    Legacy(String),
}

pub struct VcdClient {
    http: reqwest::Client,
    base: String,
    user: String,
    password: String,
    wanted_version: Option<String>,
    /// (API version, session token), made on first use.
    session: Mutex<Option<(String, Token)>>,
}

/// A vCD answer: status, `Location` and `Link` headers, and body.
pub struct Answer {
    pub status: StatusCode,
    pub location: Option<String>,
    pub links: Vec<String>,
    pub body: String,
}

/// A cloudapi answer: its `Link` headers and JSON body.
pub struct JsonAnswer {
    pub links: Vec<String>,
    pub body: serde_json::Value,
}

impl VcdClient {
    pub fn new(settings: &VcdConfig) -> Result<VcdClient, String> {
        let base = settings.vcd_url.clone().ok_or("VCD_URL is not set")?.trim_end_matches('/').to_string();
        let password = settings.vcd_password.clone().ok_or("VCD_URL is set but VCD_PASSWORD is not")?.0;
        if !settings.vcd_user.contains('@') {
            return Err(format!("VCD_USER must be user@org, e.g. administrator@System (got {:?})", settings.vcd_user));
        }
        let http = reqwest::Client::builder()
            .danger_accept_invalid_certs(settings.vcd_insecure_tls)
            .timeout(std::time::Duration::from_secs(30))
            .build()
            .map_err(|e| format!("HTTP client: {e}"))?;
        Ok(VcdClient {
            http,
            base,
            user: settings.vcd_user.clone(),
            password,
            wanted_version: settings.vcd_api_version.clone(),
            session: Mutex::new(None),
        })
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    /// A path of vCD (`/api/…`) or an absolute `href` vCD gave.
    fn url(&self, path_or_href: &str) -> String {
        if path_or_href.starts_with("http://") || path_or_href.starts_with("https://") {
            path_or_href.to_string()
        } else {
            format!("{}{}", self.base, path_or_href)
        }
    }

    /// The configured version, else the highest one vCD offers.
    async fn negotiate_version(&self) -> Result<String, String> {
        if let Some(version) = &self.wanted_version {
            return Ok(version.clone());
        }
        let url = self.url("/api/versions");
        let response = self.http.get(&url).send().await.map_err(|e| format!("cannot reach vCD at {url}: {e}"))?;
        let status = response.status();
        let body = response.text().await.map_err(|e| format!("vCD {url}: {e}"))?;
        if !status.is_success() {
            return Err(format!("GET {url} answered {status}"));
        }
        xml::texts(&body, "Version")?
            .into_iter()
            .filter_map(|v| v.parse::<f64>().ok().map(|n| (n, v)))
            .max_by(|a, b| a.0.total_cmp(&b.0))
            .map(|(_, v)| v)
            .ok_or_else(|| format!("GET {url} listed no API version"))
    }

    async fn login(&self) -> Result<(String, Token), String> {
        let version = self.negotiate_version().await?;
        let basic = base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", self.user, self.password));
        let modern = version.parse::<f64>().is_ok_and(|v| v >= CLOUDAPI_LOGIN_FROM);
        let (path, accept) = if modern {
            ("/cloudapi/1.0.0/sessions/provider", format!("application/json;version={version}"))
        } else {
            ("/api/sessions", format!("application/*+xml;version={version}"))
        };
        let url = self.url(path);
        let response = self
            .http
            .post(&url)
            .header("Authorization", format!("Basic {basic}"))
            .header("Accept", accept)
            .send()
            .await
            .map_err(|e| format!("cannot reach vCD at {url}: {e}"))?;
        let status = response.status();
        let header = |name: &str| response.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
        let token = if modern {
            header("x-vmware-vcloud-access-token").map(Token::Bearer)
        } else {
            header("x-vmware-vcloud-access-token").map(Token::Bearer).or_else(|| header("x-vcloud-authorization").map(Token::Legacy))
        };
        match (status, token) {
            (s, Some(token)) if s.is_success() => {
                tracing::info!(version, user = self.user, "logged in to vCD");
                Ok((version, token))
            }
            (StatusCode::UNAUTHORIZED, _) => Err(format!("vCD refused the login of {} (check VCD_USER and VCD_PASSWORD)", self.user)),
            (s, _) => Err(format!("vCD login at {url} answered {s} without a session token")),
        }
    }

    /// Sends a request of the XML API with the session, logging in first or again after a 401.
    pub async fn send(&self, method: Method, path: &str, body: Option<(&str, String)>) -> Result<Answer, String> {
        self.request(method, path, "application/*+xml", body).await
    }

    /// Sends a request of the cloudapi (JSON) and reads the JSON answer (`null` when empty).
    pub async fn send_json(&self, method: Method, path: &str, body: Option<&serde_json::Value>) -> Result<JsonAnswer, String> {
        let body = body.map(|b| ("application/json", b.to_string()));
        let answer = self.request(method.clone(), path, "application/json", body).await?;
        let json = if answer.body.trim().is_empty() {
            serde_json::Value::Null
        } else {
            serde_json::from_str(&answer.body).map_err(|e| format!("{method} {path}: vCD's answer is not JSON: {e}"))?
        };
        Ok(JsonAnswer { links: answer.links, body: json })
    }

    /// Every item of a paged cloudapi list (`{values, pageCount}`), page after page. No
    /// `filter=`: which attributes vCD filters on differs by endpoint and version, so callers
    /// pick what they need themselves.
    pub async fn list_all(&self, path: &str) -> Result<Vec<serde_json::Value>, String> {
        const PAGE_SIZE: usize = 128;
        let mut all = Vec::new();
        for page in 1.. {
            let answer = self.send_json(Method::GET, &format!("{path}?page={page}&pageSize={PAGE_SIZE}"), None).await?;
            let values = answer.body["values"].as_array().cloned().unwrap_or_default();
            let count = values.len();
            all.extend(values);
            let pages = answer.body["pageCount"].as_u64().unwrap_or(1);
            if count < PAGE_SIZE || page >= pages {
                break;
            }
        }
        Ok(all)
    }

    /// The API version spoken, logging in first if needed.
    pub async fn api_version(&self) -> Result<String, String> {
        Ok(self.session().await?.0)
    }

    /// The session's bearer token (a JWT on vCD 10), logging in first if needed; `fresh` logs
    /// in again (the old session was refused).
    pub async fn bearer_token(&self, fresh: bool) -> Result<String, String> {
        if fresh {
            *self.session.lock().await = None;
        }
        match self.session().await?.1 {
            Token::Bearer(token) => Ok(token),
            Token::Legacy(_) => Err("vCD gave a legacy session token, not a bearer token: MQTT needs vCD 10 (API 33.0 or later)".into()),
        }
    }

    async fn session(&self) -> Result<(String, Token), String> {
        let mut session = self.session.lock().await;
        if session.is_none() {
            *session = Some(self.login().await?);
        }
        Ok(session.clone().expect("logged in"))
    }

    async fn request(&self, method: Method, path: &str, accept: &str, body: Option<(&str, String)>) -> Result<Answer, String> {
        for attempt in 0..2 {
            let (version, token) = {
                let mut session = self.session.lock().await;
                if session.is_none() || attempt > 0 {
                    *session = Some(self.login().await?);
                }
                session.clone().expect("logged in")
            };
            let url = self.url(path);
            let mut request = self.http.request(method.clone(), &url).header("Accept", format!("{accept};version={version}"));
            request = match token {
                Token::Bearer(t) => request.header("Authorization", format!("Bearer {t}")),
                Token::Legacy(t) => request.header("x-vcloud-authorization", t),
            };
            if let Some((content_type, body)) = &body {
                request = request.header("Content-Type", *content_type).body(body.clone());
            }
            let response = request.send().await.map_err(|e| format!("{method} {url}: {e}"))?;
            let status = response.status();
            if status == StatusCode::UNAUTHORIZED && attempt == 0 {
                tracing::info!("vCD session expired; logging in again");
                continue;
            }
            let location = response.headers().get("location").and_then(|v| v.to_str().ok()).map(str::to_string);
            let links = response.headers().get_all("link").iter().filter_map(|v| v.to_str().ok()).map(str::to_string).collect();
            let body = response.text().await.map_err(|e| format!("{method} {url}: {e}"))?;
            if !status.is_success() {
                let reason = xml::error_message(&body)
                    .or_else(|| serde_json::from_str::<serde_json::Value>(&body).ok()?.get("message")?.as_str().map(str::to_string))
                    .unwrap_or_else(|| body.chars().take(300).collect());
                return Err(format!("{method} {path} answered {status}: {reason}"));
            }
            return Ok(Answer { status, location, links, body });
        }
        Err(format!("{method} {path}: vCD refused the new session too"))
    }
}
