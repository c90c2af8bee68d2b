//! In-process simulators of the vendor license APIs, faithful to each vendor's documented wire
//! format (paths, query parameters, JSON field names, pagination, error bodies, auth). They serve
//! on `127.0.0.1:0`, keep state, count calls per route and can be seeded and inspected from tests.
//!
//! Each module is an independent reading of its vendor's contract (`shared/vendor-specs/`); none
//! imports an adapter's types.
#![warn(missing_docs)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::task::JoinHandle;

// Handlers return `Result<T, Response>` (axum's idiom for early error answers); the size of a
// `Response` in the error variant does not matter on a simulator's request path.
pub mod faults;

#[cfg(feature = "apple-vpp")]
#[allow(clippy::result_large_err)]
pub mod apple;
#[cfg(feature = "genesys")]
#[allow(clippy::result_large_err)]
pub mod genesys;
#[cfg(feature = "salesforce")]
#[allow(clippy::result_large_err)]
pub mod salesforce;

/// Requests served, by route template (e.g. `POST /api/v2/license/organization`).
#[derive(Debug, Clone, Default)]
pub struct CallCounter {
    counts: Arc<Mutex<BTreeMap<String, u64>>>,
}

impl CallCounter {
    /// Counts one request served on `route` (a route template, not a full path).
    pub fn record(&self, route: &str) {
        *self
            .counts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(route.to_owned())
            .or_default() += 1;
    }

    /// Calls of one route so far.
    pub fn get(&self, route: &str) -> u64 {
        self.snapshot().get(route).copied().unwrap_or(0)
    }

    /// Calls of every route so far.
    pub fn snapshot(&self) -> BTreeMap<String, u64> {
        self.counts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// All calls so far.
    pub fn total(&self) -> u64 {
        self.snapshot().values().sum()
    }

    /// Forgets every count.
    pub fn reset(&self) {
        self.counts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }
}

/// Where and how a simulator serves: the address to bind (port 0 picks a free one) and, with the
/// `tls` feature, HTTPS with a given certificate. The default is plain HTTP on `127.0.0.1:0`, what
/// the tests use.
#[derive(Debug, Clone)]
pub struct Listen {
    /// The address to bind; port 0 picks a free one.
    pub addr: SocketAddr,
    #[cfg(feature = "tls")]
    /// HTTPS with this certificate; `None` = plain HTTP.
    pub tls: Option<tls::Tls>,
}

impl Default for Listen {
    fn default() -> Self {
        Listen {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            #[cfg(feature = "tls")]
            tls: None,
        }
    }
}

impl Listen {
    /// Plain HTTP on `addr`.
    pub fn http(addr: SocketAddr) -> Self {
        Listen {
            addr,
            #[cfg(feature = "tls")]
            tls: None,
        }
    }

    fn scheme(&self) -> &'static str {
        #[cfg(feature = "tls")]
        if self.tls.is_some() {
            return "https";
        }
        "http"
    }
}

#[cfg(feature = "tls")]
pub mod tls;

/// A running simulator: its address and the task serving it (aborted on drop).
#[derive(Debug)]
pub struct Running {
    addr: SocketAddr,
    scheme: &'static str,
    task: JoinHandle<()>,
}

impl Running {
    /// Serves `router` on a fresh loopback port.
    pub async fn serve(router: axum::Router) -> std::io::Result<Running> {
        Running::serve_on(router, &Listen::default()).await
    }

    /// Serves `router` as `listen` says.
    pub async fn serve_on(router: axum::Router, listen: &Listen) -> std::io::Result<Running> {
        let listener = tokio::net::TcpListener::bind(listen.addr).await?;
        let addr = listener.local_addr()?;
        let scheme = listen.scheme();
        #[cfg(feature = "tls")]
        if let Some(tls) = &listen.tls {
            let listener = tls::TlsListener::new(listener, tls);
            let task = tokio::spawn(async move {
                if let Err(e) = axum::serve(listener, router).await {
                    tracing::error!(error = %e, "simulator stopped");
                }
            });
            return Ok(Running { addr, scheme, task });
        }
        let task = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, router).await {
                tracing::error!(error = %e, "simulator stopped");
            }
        });
        Ok(Running { addr, scheme, task })
    }

    /// The address the simulator listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT` (or `https://…` when serving TLS; `localhost` when bound to every
    /// interface, a name the generated certificate covers).
    pub fn base_url(&self) -> String {
        if self.addr.ip().is_unspecified() {
            format!("{}://localhost:{}", self.scheme, self.addr.port())
        } else {
            format!("{}://{}", self.scheme, self.addr)
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.task.abort();
    }
}
