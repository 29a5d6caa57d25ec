//! One keep-alive HTTP/1.1 connection to a runtime shim, driven by the call that holds it.
//!
//! A call writes its request in one write and reads the answer straight from the socket.
//! hyper's client connection needs a task of its own per connection and a channel each way
//! between it and the call; on the warm path those task switches cost more than the exchange.
//! The runtimes are ours and answer every request with a `content-length`, so the little of
//! HTTP this needs is written here, with `httparse` reading the answer's head.

use bytes::{Buf, BytesMut};
use serde::de::DeserializeOwned;
use std::io::Write as _;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

/// Most header lines an answer may have (the shims send five).
const MAX_HEADERS: usize = 32;
/// Buffers grown past this by a large call are dropped rather than kept with an idle connection.
const KEPT_BUFFER_BYTES: usize = 64 * 1024;

#[derive(Debug)]
pub struct ShimConnection {
    stream: UnixStream,
    request: Vec<u8>,
    answer: BytesMut,
    /// The runtime said it closes the connection after this answer.
    closing: bool,
}

/// Why an exchange did not give an answer.
#[derive(Debug)]
pub enum ExchangeError {
    /// The runtime had closed the connection before it got any of the request: the call may
    /// go over another connection.
    Unsent,
    /// The connection broke midway.
    Io(String),
    /// The runtime answered something that is not an HTTP answer we can read.
    Protocol(String),
}

impl ShimConnection {
    pub fn new(stream: UnixStream) -> ShimConnection {
        ShimConnection { stream, request: Vec::new(), answer: BytesMut::with_capacity(4096), closing: false }
    }

    /// Whether the connection may serve another call.
    pub fn reusable(&self) -> bool {
        !self.closing && self.answer.is_empty()
    }

    /// POSTs `envelope` to `/invoke` and decodes the JSON answer.
    pub async fn exchange<T: DeserializeOwned>(&mut self, envelope: &[u8]) -> Result<T, ExchangeError> {
        self.send(envelope).await?;
        let (head, length) = self.read_head().await?;
        while self.answer.len() < head + length {
            self.fill().await?;
        }
        let decoded = serde_json::from_slice(&self.answer[head..head + length]);
        self.answer.advance(head + length);
        self.trim_buffers();
        decoded.map_err(|e| ExchangeError::Protocol(e.to_string()))
    }

    async fn send(&mut self, envelope: &[u8]) -> Result<(), ExchangeError> {
        self.request.clear();
        write!(
            self.request,
            // No more header lines than the runtimes read: Python's parses each one slowly.
            "POST /invoke HTTP/1.1\r\nhost: function\r\ncontent-length: {}\r\n\r\n",
            envelope.len()
        )
        .expect("writing to a Vec does not fail");
        self.request.extend_from_slice(envelope);
        let mut sent = 0;
        while sent < self.request.len() {
            match self.stream.write(&self.request[sent..]).await {
                Ok(0) => return Err(ExchangeError::Io("the runtime stopped reading the request".into())),
                Ok(n) => sent += n,
                // A peer that closed its end makes the first write fail (EPIPE): nothing went.
                Err(_) if sent == 0 => return Err(ExchangeError::Unsent),
                Err(e) => return Err(ExchangeError::Io(e.to_string())),
            }
        }
        Ok(())
    }

    /// Reads until the answer's head is complete; returns its length and the body's.
    async fn read_head(&mut self) -> Result<(usize, usize), ExchangeError> {
        loop {
            let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
            let mut response = httparse::Response::new(&mut headers);
            let parsed = response.parse(&self.answer).map_err(|e| ExchangeError::Protocol(format!("answer head: {e}")))?;
            if let httparse::Status::Complete(head) = parsed {
                if response.code != Some(200) {
                    return Err(ExchangeError::Protocol(format!("the runtime answered HTTP {}", response.code.unwrap_or(0))));
                }
                let mut length = None;
                for header in response.headers.iter() {
                    if header.name.eq_ignore_ascii_case("content-length") {
                        let value = std::str::from_utf8(header.value).ok().and_then(|v| v.trim().parse::<usize>().ok());
                        length = Some(value.ok_or_else(|| ExchangeError::Protocol("a content-length that is not a number".into()))?);
                    } else if header.name.eq_ignore_ascii_case("connection") {
                        self.closing = header.value.eq_ignore_ascii_case(b"close");
                    }
                }
                let length = length.ok_or_else(|| ExchangeError::Protocol("an answer without content-length".into()))?;
                return Ok((head, length));
            }
            self.fill().await?;
        }
    }

    async fn fill(&mut self) -> Result<(), ExchangeError> {
        self.answer.reserve(4096);
        match self.stream.read_buf(&mut self.answer).await {
            Ok(0) => Err(ExchangeError::Io("the runtime closed the connection before it answered".into())),
            Ok(_) => Ok(()),
            Err(e) => Err(ExchangeError::Io(e.to_string())),
        }
    }

    /// A connection kept idle holds small buffers only.
    fn trim_buffers(&mut self) {
        if self.request.capacity() > KEPT_BUFFER_BYTES {
            self.request = Vec::new();
        }
        if self.answer.is_empty() && self.answer.capacity() > KEPT_BUFFER_BYTES {
            self.answer = BytesMut::with_capacity(4096);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;
    use tokio::net::UnixListener;

    /// A runtime stand-in on a real socket: reads one request head and body, then writes
    /// `answer` in pieces of `piece` bytes; returns what it read.
    async fn runtime_answering(answer: &'static [u8], piece: usize) -> (ShimConnection, tokio::task::JoinHandle<Vec<u8>>) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sock");
        let listener = UnixListener::bind(&path).unwrap();
        let client = UnixStream::connect(&path).await.unwrap();
        let (mut server, _) = listener.accept().await.unwrap();
        let runtime = tokio::spawn(async move {
            let _dir = dir;
            let mut request = Vec::new();
            let mut buffer = [0u8; 4096];
            while !request.ends_with(b"}") {
                let n = server.read(&mut buffer).await.unwrap();
                request.extend_from_slice(&buffer[..n]);
            }
            for chunk in answer.chunks(piece) {
                server.write_all(chunk).await.unwrap();
                server.flush().await.unwrap();
                tokio::time::sleep(std::time::Duration::from_millis(2)).await;
            }
            request
        });
        (ShimConnection::new(client), runtime)
    }

    #[tokio::test]
    async fn an_answer_arriving_in_pieces_is_read_whole_and_the_connection_kept() {
        let answer = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 16\r\n\r\n{\"statusCode\":7}";
        let (mut connection, runtime) = runtime_answering(answer, 5).await;
        let reply: Value = connection.exchange(br#"{"event":{}}"#).await.unwrap();
        assert_eq!(reply["statusCode"], 7);
        assert!(connection.reusable());
        let request = String::from_utf8(runtime.await.unwrap()).unwrap();
        assert!(request.starts_with("POST /invoke HTTP/1.1\r\n"), "{request}");
        assert!(request.contains("content-length: 12\r\n"), "{request}");
        assert!(request.ends_with("\r\n\r\n{\"event\":{}}"), "{request}");
    }

    #[tokio::test]
    async fn an_answer_without_length_or_with_another_status_is_a_protocol_error() {
        let chunked = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n";
        let (mut connection, _runtime) = runtime_answering(chunked, 1000).await;
        match connection.exchange::<Value>(b"{}").await {
            Err(ExchangeError::Protocol(why)) => assert!(why.contains("content-length"), "{why}"),
            other => panic!("{other:?}"),
        }
        let refused = b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n";
        let (mut connection, _runtime) = runtime_answering(refused, 1000).await;
        match connection.exchange::<Value>(b"{}").await {
            Err(ExchangeError::Protocol(why)) => assert!(why.contains("HTTP 400"), "{why}"),
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn a_runtime_that_closes_is_told_apart_before_and_after_the_request() {
        // Closes after reading the request: the call went, the answer did not come.
        let (mut connection, runtime) = runtime_answering(b"", 1).await;
        match connection.exchange::<Value>(b"{}").await {
            Err(ExchangeError::Io(why)) => assert!(why.contains("closed"), "{why}"),
            other => panic!("{other:?}"),
        }
        runtime.await.unwrap();
        // Its end was closed before the next call: nothing of that call went.
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        match connection.exchange::<Value>(b"{}").await {
            Err(ExchangeError::Unsent) => {}
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn a_runtime_that_says_close_leaves_a_connection_not_kept() {
        let answer = b"HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 2\r\n\r\n{}";
        let (mut connection, _runtime) = runtime_answering(answer, 1000).await;
        let _: Value = connection.exchange(b"{}").await.unwrap();
        assert!(!connection.reusable());
    }
}
