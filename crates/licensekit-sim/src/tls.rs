//! HTTPS for the simulators: a private CA and a server certificate for `localhost`, `127.0.0.1`
//! and `::1`, generated at start (rcgen), served with rustls. Clients trust the CA's PEM file
//! (`REQUESTS_CA_BUNDLE`, `NODE_EXTRA_CA_CERTS`, `SSL_CERT_FILE`, licensekit's `ca_file`).
//!
//! A CA signs the server certificate rather than the server presenting a self-signed one because
//! WebPKI verifiers (rustls-webpki, used by reqwest) refuse an end-entity certificate as its own
//! trust anchor.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

/// A generated CA (its PEM, for clients to trust) and the server configuration it signs.
#[derive(Clone)]
pub struct Tls {
    /// The CA certificate, PEM: what clients must trust.
    pub ca_pem: String,
    /// The server certificate, PEM (signed by the CA; also sent in the handshake).
    pub cert_pem: String,
    config: Arc<rustls::ServerConfig>,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls").finish_non_exhaustive()
    }
}

fn to_io(e: impl std::fmt::Display) -> std::io::Error {
    std::io::Error::other(e.to_string())
}

impl Tls {
    /// A fresh CA and a server certificate for `localhost`, `127.0.0.1`, `::1` and `extra_names`.
    pub fn generate(extra_names: &[String]) -> std::io::Result<Tls> {
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(to_io)?;
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "licensekit sandbox CA");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca_key = KeyPair::generate().map_err(to_io)?;
        let ca_cert = ca_params.self_signed(&ca_key).map_err(to_io)?;
        let issuer = rcgen::Issuer::new(ca_params, ca_key);

        let mut names = vec!["localhost".to_owned(), "127.0.0.1".into(), "::1".into()];
        names.extend(extra_names.iter().cloned());
        let mut params = CertificateParams::new(names).map_err(to_io)?;
        params
            .distinguished_name
            .push(DnType::CommonName, "licensekit sandbox");
        let key = KeyPair::generate().map_err(to_io)?;
        let cert = params.signed_by(&key, &issuer).map_err(to_io)?;

        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(to_io)?
            .with_no_client_auth()
            .with_single_cert(
                vec![cert.der().clone(), ca_cert.der().clone()],
                rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
            )
            .map_err(to_io)?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Tls {
            ca_pem: ca_cert.pem(),
            cert_pem: cert.pem(),
            config: Arc::new(config),
        })
    }
}

/// Accepts TCP connections and completes TLS handshakes in their own tasks, so a client that
/// stalls its handshake never holds up the others; finished streams go to axum.
pub(crate) struct TlsListener {
    local: SocketAddr,
    ready: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    _acceptor: tokio::task::JoinHandle<()>,
}

impl TlsListener {
    pub(crate) fn new(listener: TcpListener, tls: &Tls) -> TlsListener {
        let local = listener
            .local_addr()
            .unwrap_or(SocketAddr::from(([0; 4], 0)));
        let acceptor = TlsAcceptor::from(tls.config.clone());
        let (tx, ready) = mpsc::channel(64);
        let task = tokio::spawn(async move {
            loop {
                let (tcp, peer) = match listener.accept().await {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        tracing::debug!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        continue;
                    }
                };
                let acceptor = acceptor.clone();
                let tx = tx.clone();
                tokio::spawn(async move {
                    match tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp)).await
                    {
                        Ok(Ok(stream)) => {
                            let _ = tx.send((stream, peer)).await;
                        }
                        Ok(Err(e)) => tracing::debug!(error = %e, "TLS handshake failed"),
                        Err(_) => tracing::debug!("TLS handshake timed out"),
                    }
                });
            }
        });
        TlsListener {
            local,
            ready,
            _acceptor: task,
        }
    }
}

impl Drop for TlsListener {
    fn drop(&mut self) {
        self._acceptor.abort();
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(accepted) => accepted,
            // The acceptor stopped: serve nothing more.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local)
    }
}
