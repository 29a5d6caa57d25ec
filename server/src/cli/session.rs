//! `fn login`, `fn logout`, `fn whoami`: the saved login and its token.

use super::args::LoginArgs;
use super::config::{self, SavedLogin};
use super::error::{CliError, CliResult};
use super::http::{server_message, Api};
use super::password;
use reqwest::{Method, StatusCode};
use serde::Deserialize;
use serde_json::json;

#[derive(Deserialize)]
struct NewToken {
    token: String,
    id: i64,
    org: String,
    #[serde(default)]
    expires_at: Option<i64>,
}

pub async fn login(args: &LoginArgs) -> CliResult {
    let url = portal_url(&args.url)?;
    let password = if args.password_stdin {
        password::from_stdin()?
    } else {
        password::prompt(&format!("Password for {} in {}: ", args.user, args.org))?
    };
    let api = Api::new(&url, None)?;
    let body = json!({
        "org": args.org, "username": args.user, "password": password,
        "name": token_name(), "expires_in_days": args.expires_in_days,
    });
    let response = api.send(api.request(Method::POST, "/api/v1/tokens").json(&body)).await?;
    let status = response.status();
    let text = response.text().await.map_err(|e| api.unreachable(e))?;
    if status == StatusCode::UNAUTHORIZED {
        return Err(CliError::NotSignedIn(format!("sign-in refused: {}", server_message(status, &text))));
    }
    if !status.is_success() {
        return Err(CliError::Failed(format!("sign-in failed: {}", server_message(status, &text))));
    }
    let answer: NewToken = serde_json::from_str(&text).map_err(|_| {
        CliError::Failed(format!("{url} answered the sign-in with something else than a vcd-faas token ({status}): is it the portal's address?"))
    })?;
    let login = SavedLogin { url: url.clone(), org: answer.org, username: args.user.clone(), token: answer.token, token_id: answer.id, expires_at: answer.expires_at };
    let path = config::save(&login)?;
    eprintln!(
        "signed in to {url} as {} in org {}{}; the login is kept in {}",
        login.username,
        login.org,
        login.expires_at.map(|at| format!(" until {}", date_of(at))).unwrap_or_default(),
        path.display()
    );
    Ok(())
}

pub async fn logout() -> CliResult {
    let login = match config::load() {
        Ok(login) => login,
        Err(CliError::NotSignedIn(_)) => {
            eprintln!("not signed in: nothing to do");
            return Ok(());
        }
        Err(e) => return Err(e),
    };
    let api = Api::new(&login.url, Some(login.token.clone()))?;
    let revoked = api.checked(api.request(Method::DELETE, &format!("/api/v1/tokens/{}", login.token_id))).await;
    config::remove()?;
    match revoked {
        Ok(_) => eprintln!("signed out of {}: the token is revoked and the login forgotten", login.url),
        // Revoked, expired or its user gone: nothing left to revoke.
        Err(CliError::NotSignedIn(_)) => eprintln!("signed out of {}: the login is forgotten (the server no longer accepted its token)", login.url),
        Err(e) => {
            let why = e.message().unwrap_or_default().to_string();
            let kept = format!("the login is forgotten, but its token could not be revoked and stays valid until it expires: {why}");
            return Err(match e {
                CliError::Unreachable(_) => CliError::Unreachable(kept),
                _ => CliError::Failed(kept),
            });
        }
    }
    Ok(())
}

/// The saved login and a client that sends its token.
pub fn signed_in() -> CliResult<(SavedLogin, Api)> {
    let login = config::load()?;
    let api = Api::new(&login.url, Some(login.token.clone()))?;
    Ok((login, api))
}

pub async fn whoami() -> CliResult {
    let (login, api) = signed_in()?;
    // Any read that needs the token says whether the server still takes it.
    let _: serde_json::Value = api.json(api.request(Method::GET, "/api/v1/tokens")).await?;
    println!("{} in org {} at {}", login.username, login.org, login.url);
    if let Some(at) = login.expires_at {
        eprintln!("the token expires {}", date_of(at));
    }
    Ok(())
}

/// The address as given, checked to be one the CLI can use, without a trailing `/`.
fn portal_url(given: &str) -> CliResult<String> {
    let url = given.trim().trim_end_matches('/');
    let parsed = reqwest::Url::parse(url)
        .map_err(|e| CliError::Usage(format!("--url {given:?} is not an address ({e}): give it with http:// or https://, e.g. https://faas.example.com")))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
        return Err(CliError::Usage(format!("--url {given:?} must be an http:// or https:// address, e.g. https://faas.example.com")));
    }
    Ok(url.to_string())
}

/// The token's name in the portal's token list: which machine signed in.
fn token_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").map(|h| h.trim().to_string()).unwrap_or_default();
    if host.is_empty() {
        "vcd-faas fn login".into()
    } else {
        format!("vcd-faas fn login on {host}")
    }
}

/// A unix-ms instant as a UTC date and time (`2027-03-07 12:21:05 UTC`).
pub fn date_of(ms: i64) -> String {
    match time::OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000)) {
        Ok(t) => format!("{} {:02}:{:02}:{:02} UTC", t.date(), t.hour(), t.minute(), t.second()),
        Err(_) => ms.to_string(),
    }
}
