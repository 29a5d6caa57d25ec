//! Optional TLS between fronts and nodes. A node given a certificate and key takes forwarded
//! calls over TLS only; a front given the cluster's CA certificate speaks only TLS to nodes and
//! trusts no other CA for them. A node's certificate names the address it registers (an IP
//! address or a DNS name in its subjectAltName). The cluster secret is sent either way.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

/// A client that does not finish its handshake within this is dropped.
const HANDSHAKE_WITHIN: Duration = Duration::from_secs(5);
/// Handshaken connections waiting for the server to take them.
const READY_BACKLOG: usize = 64;

/// The node's TLS settings from its certificate chain and key files.
pub fn node_acceptor(cert: &Path, key: &Path) -> Result<TlsAcceptor, String> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<_, _>>())
        .map_err(|e| format!("VCD_FAAS_NODE_TLS_CERT {}: {e}", cert.display()))?;
    if chain.is_empty() {
        return Err(format!("VCD_FAAS_NODE_TLS_CERT {} holds no certificate", cert.display()));
    }
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| format!("VCD_FAAS_NODE_TLS_KEY {}: {e}", key.display()))?;
    let config = ServerConfig::builder_with_provider(Arc::new(tokio_rustls::rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .and_then(|b| b.with_no_client_auth().with_single_cert(chain, key))
        .map_err(|e| format!("the node's certificate and key do not go together: {e}"))?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Connections accepted on a TCP listener and handshaken, each in its own task (a slow client
/// holds up no other), for `axum::serve`.
pub struct TlsListener {
    ready: tokio::sync::mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local: SocketAddr,
}

impl TlsListener {
    pub fn new(tcp: TcpListener, acceptor: TlsAcceptor) -> std::io::Result<TlsListener> {
        let local = tcp.local_addr()?;
        let (handshaken, ready) = tokio::sync::mpsc::channel(READY_BACKLOG);
        tokio::spawn(async move {
            loop {
                let (stream, peer) = match tcp.accept().await {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot accept a connection");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                let (acceptor, handshaken) = (acceptor.clone(), handshaken.clone());
                tokio::spawn(async move {
                    match tokio::time::timeout(HANDSHAKE_WITHIN, acceptor.accept(stream)).await {
                        Ok(Ok(tls)) => drop(handshaken.send((tls, peer)).await),
                        Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                        Err(_) => tracing::debug!(%peer, "TLS handshake not finished in time"),
                    }
                });
            }
        });
        Ok(TlsListener { ready, local })
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(connection) => connection,
            // The accepting task never ends while the listener lives.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local)
    }
}

/// A front's client for nodes that trusts only the cluster's CA.
pub fn trusting_only(builder: reqwest::ClientBuilder, ca: &Path) -> Result<reqwest::ClientBuilder, String> {
    let pem = std::fs::read(ca).map_err(|e| format!("VCD_FAAS_CLUSTER_CA {}: {e}", ca.display()))?;
    let certificate = reqwest::Certificate::from_pem(&pem).map_err(|e| format!("VCD_FAAS_CLUSTER_CA {}: {e}", ca.display()))?;
    Ok(builder.tls_built_in_root_certs(false).add_root_certificate(certificate).https_only(true))
}
