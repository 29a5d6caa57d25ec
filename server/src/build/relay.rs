//! The dependency install's only way out of its container: an HTTP proxy on a unix socket that
//! lets through only the package sources. The install container has no network; a forwarder
//! inside it (see `deps.rs`) carries its proxy connections to this socket. Names are resolved
//! here, on the host, so neither a literal address nor another port nor another name gets past.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UnixListener, UnixStream};

/// Longest request head a client may send before the proxy decides.
const MAX_HEAD: usize = 16 * 1024;

/// A destination the proxy lets through: a host name or address, and a port.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Source {
    pub host: String,
    pub port: u16,
}

impl Source {
    /// The host and port of an `http://` or `https://` URL.
    pub fn of_url(url: &str) -> Result<Source, String> {
        let (scheme, rest) = url.split_once("://").ok_or_else(|| format!("{url:?} is not a URL: give it as http://host:port/…"))?;
        let default_port = match scheme.to_ascii_lowercase().as_str() {
            "http" => 80,
            "https" => 443,
            other => return Err(format!("{url:?}: use http:// or https://, not {other}://")),
        };
        let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
        let host_port = authority.rsplit('@').next().unwrap_or_default();
        Source::of_authority(host_port, default_port).ok_or_else(|| format!("{url:?} has no host"))
    }

    /// `host:port`, `[v6]:port` or `host` (with the default port).
    fn of_authority(text: &str, default_port: u16) -> Option<Source> {
        let (host, port) = match text.strip_prefix('[') {
            Some(v6) => {
                let (host, after) = v6.split_once(']')?;
                (host, after.strip_prefix(':'))
            }
            None => match text.rsplit_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (text, None),
            },
        };
        let port = match port {
            Some(p) => p.parse().ok()?,
            None => default_port,
        };
        (!host.is_empty()).then(|| Source { host: host.to_ascii_lowercase(), port })
    }
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.host, self.port)
    }
}

/// A running proxy; it stops, and its socket goes, when this is dropped.
pub struct Relay {
    socket: PathBuf,
    task: tokio::task::JoinHandle<()>,
}

impl Relay {
    /// Serves the proxy at `socket`, letting through only `allowed`; refused attempts go to `refused`.
    pub fn open(socket: &Path, allowed: BTreeSet<Source>, refused: impl Fn(String) + Send + Sync + 'static) -> std::io::Result<Relay> {
        let _ = std::fs::remove_file(socket);
        let listener = UnixListener::bind(socket)?;
        // The install runs as an unprivileged user: it must be able to connect.
        std::fs::set_permissions(socket, std::os::unix::fs::PermissionsExt::from_mode(0o666))?;
        let allowed = std::sync::Arc::new(allowed);
        let refused = std::sync::Arc::new(refused);
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let (allowed, refused) = (allowed.clone(), refused.clone());
                tokio::spawn(async move {
                    if let Err(denied) = serve(client, &allowed).await {
                        refused(denied);
                    }
                });
            }
        });
        Ok(Relay { socket: socket.to_path_buf(), task })
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.task.abort();
        let _ = std::fs::remove_file(&self.socket);
    }
}

/// One proxied connection: `CONNECT host:port` (TLS passes end to end) or a plain-HTTP request
/// in absolute form. Returns the refusal, when it refused one.
async fn serve(mut client: UnixStream, allowed: &BTreeSet<Source>) -> Result<(), String> {
    let Some((head, rest)) = read_head(&mut client).await else { return Ok(()) };
    let request_line = head.lines().next().unwrap_or_default().to_string();
    let mut words = request_line.split(' ');
    let (method, target) = (words.next().unwrap_or_default(), words.next().unwrap_or_default());
    let (source, forward) = if method.eq_ignore_ascii_case("CONNECT") {
        (Source::of_authority(target, 443), None)
    } else {
        let source = Source::of_url(target).ok().filter(|_| target.starts_with("http://"));
        (source, Some(origin_form(&head, target)))
    };
    let Some(source) = source else {
        let _ = refuse(&mut client, 400, &format!("the package proxy cannot read {request_line:?}")).await;
        return Ok(());
    };
    if !allowed.contains(&source) {
        let sources: Vec<String> = allowed.iter().map(Source::to_string).collect();
        let why = format!("{source} is not a package source of this platform (allowed: {})", sources.join(", "));
        let _ = refuse(&mut client, 403, &why).await;
        return Err(why);
    }
    let mut upstream = match TcpStream::connect((source.host.as_str(), source.port)).await {
        Ok(stream) => stream,
        Err(e) => {
            let _ = refuse(&mut client, 502, &format!("cannot reach {source}: {e}")).await;
            return Ok(());
        }
    };
    let sent = match forward {
        None => client.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n").await,
        Some(head) => upstream.write_all(head.as_bytes()).await,
    };
    if sent.is_ok() && upstream.write_all(&rest).await.is_ok() {
        let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
    }
    Ok(())
}

/// The request head up to its blank line, and whatever came after it.
async fn read_head(client: &mut UnixStream) -> Option<(String, Vec<u8>)> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 4096];
    loop {
        let n = client.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let rest = buf.split_off(end + 4);
            return Some((String::from_utf8_lossy(&buf).into_owned(), rest));
        }
        if buf.len() > MAX_HEAD {
            return None;
        }
    }
}

/// The request as the origin server expects it: the path instead of the absolute URL, and one
/// request per connection, so every later request comes through the check again.
fn origin_form(head: &str, target: &str) -> String {
    let after_scheme = &target["http://".len()..];
    let path = after_scheme.find('/').map_or("/", |at| &after_scheme[at..]);
    let mut lines = head.trim_end_matches("\r\n").split("\r\n");
    let first = lines.next().unwrap_or_default().replacen(target, path, 1);
    let mut out = first + "\r\n";
    for line in lines {
        let name = line.split(':').next().unwrap_or_default().trim().to_ascii_lowercase();
        if !matches!(name.as_str(), "connection" | "proxy-connection" | "keep-alive" | "proxy-authorization") {
            out.push_str(line);
            out.push_str("\r\n");
        }
    }
    out.push_str("Connection: close\r\n\r\n");
    out
}

async fn refuse(client: &mut UnixStream, status: u16, why: &str) -> std::io::Result<()> {
    let reason = match status {
        403 => "Forbidden",
        502 => "Bad Gateway",
        _ => "Bad Request",
    };
    let body = format!("vcd-faas: {why}\n");
    let reply = format!(
        "HTTP/1.1 {status} {reason}\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    client.write_all(reply.as_bytes()).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_are_read_from_urls_and_authorities() {
        assert_eq!(Source::of_url("http://127.0.0.1:4873/").unwrap(), Source { host: "127.0.0.1".into(), port: 4873 });
        assert_eq!(Source::of_url("https://Mirror.Corp/simple").unwrap(), Source { host: "mirror.corp".into(), port: 443 });
        assert_eq!(Source::of_url("http://user:pw@[::1]:8080/x").unwrap(), Source { host: "::1".into(), port: 8080 });
        assert!(Source::of_url("ftp://x/").is_err());
        assert!(Source::of_url("mirror:80").is_err());
    }

    #[test]
    fn plain_requests_are_sent_in_origin_form_one_per_connection() {
        let head = "GET http://127.0.0.1:9/simple/pkg/ HTTP/1.1\r\nHost: 127.0.0.1:9\r\nProxy-Connection: keep-alive\r\n\r\n";
        assert_eq!(origin_form(head, "http://127.0.0.1:9/simple/pkg/"), "GET /simple/pkg/ HTTP/1.1\r\nHost: 127.0.0.1:9\r\nConnection: close\r\n\r\n");
    }
}
