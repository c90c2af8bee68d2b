//! The HTTP machinery every vendor adapter shares, written once: one reqwest client (rustls,
//! redirects off, HTTPS unless explicitly allowed), retries with backoff and `Retry-After`,
//! credentials with a single-flight token cache and one re-fetch on 401, request limits, paged
//! listings, size-limited bodies, and a tracing span per attempt that never shows a secret.
//!
//! An adapter supplies only what is vendor-specific: an [`ErrorClassifier`] that reads its error
//! bodies, its credentials, and its limits.

pub mod credential;
pub mod limit;
pub mod options;
pub mod pagination;
pub mod retry;

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::header::{AUTHORIZATION, CONTENT_TYPE};
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use secrecy::ExposeSecret;
use serde::de::DeserializeOwned;
use tracing::Instrument;
use url::Url;

use crate::error::{Error, Result, VendorError};
use crate::model::ProviderKind;

pub use credential::{
    AccessToken, ClientAuthStyle, CredentialProvider, OAuth2ClientCredentials, StaticToken,
    TokenCache, TokenSource, send_oauth_request,
};
pub use limit::{
    LimitPermit, PacingPolicy, QuotaUsage, RateSignals, RequestLimiter, SignalReader,
    StandardSignals, WaitTooLong, WindowLimit, WindowUsage,
};
pub use options::{ClientConfigKey, ClientOptions, Rate, RetryOptions, VendorDefaults};
pub use pagination::{Declared, Page, PageGuard, PageTracker, Totals, items, pages};
pub use retry::{Failure, RetryConfig, RetryDecision, classify, parse_retry_after};

/// What a vendor's error response means, as decided by the adapter's [`ErrorClassifier`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FailureMeaning {
    /// The route or object does not exist: `Error::NotFound`.
    NotFound,
    /// The vendor rejected the request's input: `Error::InvalidInput`.
    InvalidInput,
    /// Triggers one credential re-fetch, then `Error::Unauthenticated`.
    Unauthenticated,
    /// Authenticated but not allowed: `Error::PermissionDenied`, not retried.
    PermissionDenied,
    /// Throttled: always retried, honouring `Retry-After`.
    RateLimited,
    /// Transient vendor failure: retried when the request is idempotent.
    Unavailable,
    /// A quota that will not reset within a retry budget (a daily or monthly API allocation):
    /// reported as `RateLimited` but never retried.
    QuotaExhausted,
    /// Anything else: returned as `Error::Vendor`.
    Other,
}

/// A vendor error response, classified.
#[derive(Debug, Clone)]
pub struct VendorFailure {
    /// What the response means.
    pub meaning: FailureMeaning,
    /// The vendor's status, code, message and correlation id.
    pub error: VendorError,
}

/// Reads a vendor's responses for errors. Called on *every* response, because some vendors
/// (Apple) report errors inside HTTP 200 bodies.
pub trait ErrorClassifier: Send + Sync + fmt::Debug {
    /// `Some` when this response is an error.
    fn classify(
        &self,
        status: StatusCode,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Option<VendorFailure>;
}

/// Classifies by HTTP status alone; the body (truncated) becomes the message.
#[derive(Debug, Clone, Copy)]
pub struct StatusClassifier(pub ProviderKind);

impl ErrorClassifier for StatusClassifier {
    fn classify(
        &self,
        status: StatusCode,
        _headers: &HeaderMap,
        body: &[u8],
    ) -> Option<VendorFailure> {
        if status.is_success() {
            return None;
        }
        Some(VendorFailure {
            meaning: meaning_of_status(status),
            error: VendorError::new(self.0, Some(status.as_u16()), body_excerpt(body)),
        })
    }
}

/// The usual meaning of an HTTP error status.
pub fn meaning_of_status(status: StatusCode) -> FailureMeaning {
    match status.as_u16() {
        400 | 422 => FailureMeaning::InvalidInput,
        401 => FailureMeaning::Unauthenticated,
        403 => FailureMeaning::PermissionDenied,
        404 | 410 => FailureMeaning::NotFound,
        408 | 429 => FailureMeaning::RateLimited,
        500..=599 => FailureMeaning::Unavailable,
        _ => FailureMeaning::Other,
    }
}

/// The start of a body as text, for error messages (never the whole of a large page), cleaned
/// of every secret this process knows ([`crate::error::redact`]). The window read is wide
/// enough that a secret straddling the cut is still seen whole and removed.
pub fn body_excerpt(body: &[u8]) -> String {
    const MAX: usize = 300;
    let window = MAX.saturating_add(crate::error::redact::longest());
    let text = String::from_utf8_lossy(&body[..body.len().min(window)]);
    let text: String = text.chars().filter(|c| !c.is_control()).collect();
    let text = crate::error::redact::redact(&text);
    let mut excerpt: String = text.chars().take(MAX).collect();
    if text.chars().count() > MAX || body.len() > window {
        excerpt.push('…');
    }
    if excerpt.trim().is_empty() {
        "(empty body)".into()
    } else {
        excerpt
    }
}

/// Turns a classified vendor failure into the core error of that meaning.
pub fn failure_to_error(failure: VendorFailure, retry_after: Option<Duration>) -> Error {
    let provider = failure.error.provider;
    let message = failure.error.message.clone();
    let source = Some(Box::new(failure.error.clone()) as crate::BoxError);
    match failure.meaning {
        FailureMeaning::NotFound => Error::NotFound {
            provider,
            what: message,
            source,
        },
        FailureMeaning::InvalidInput => Error::InvalidInput { message, source },
        FailureMeaning::Unauthenticated => Error::Unauthenticated {
            provider,
            message,
            source,
        },
        FailureMeaning::PermissionDenied => Error::PermissionDenied {
            provider,
            message,
            source,
        },
        FailureMeaning::RateLimited => Error::RateLimited {
            provider,
            retry_after,
            source,
        },
        FailureMeaning::QuotaExhausted => Error::RateLimited {
            provider,
            retry_after: None,
            source,
        },
        FailureMeaning::Unavailable => Error::Unavailable {
            provider,
            message,
            source,
        },
        FailureMeaning::Other => Error::Vendor(failure.error),
    }
}

/// One API request. Paths are trusted (from the adapter); [`ApiRequest::segment`] adds
/// untrusted values percent-encoded, so an id can never reach another route.
#[derive(Debug, Clone)]
pub struct ApiRequest {
    method: Method,
    path: &'static str,
    segments: Vec<String>,
    absolute: Option<Url>,
    query: Vec<(String, String)>,
    body: Option<Bytes>,
    content_type: Option<&'static str>,
    idempotent: bool,
    authenticated: bool,
    route: String,
}

impl ApiRequest {
    /// A request to `path` (relative to the base URL, e.g. `/api/v2/license/users`).
    pub fn new(method: Method, path: &'static str) -> Self {
        let idempotent = matches!(
            method,
            Method::GET | Method::HEAD | Method::PUT | Method::DELETE
        );
        ApiRequest {
            route: format!("{method} {path}"),
            method,
            path,
            segments: Vec::new(),
            absolute: None,
            query: Vec::new(),
            body: None,
            content_type: None,
            idempotent,
            authenticated: true,
        }
    }

    /// An idempotent `GET` of `path` (relative to the client's base URL).
    pub fn get(path: &'static str) -> Self {
        Self::new(Method::GET, path)
    }

    /// A `POST` of `path`; not idempotent, so never retried once it may have been delivered.
    pub fn post(path: &'static str) -> Self {
        Self::new(Method::POST, path)
    }

    /// A `DELETE` of `path`; idempotent.
    pub fn delete(path: &'static str) -> Self {
        Self::new(Method::DELETE, path)
    }

    /// A request to a URL the vendor handed us (a next-page link). It must be on the client's
    /// own origin, so credentials never travel to another host.
    pub fn absolute(method: Method, url: Url, route: &'static str) -> Self {
        let mut request = Self::new(method, route);
        request.absolute = Some(url);
        request
    }

    /// Appends one path segment from untrusted input, percent-encoded, after
    /// [`validate_path_id`]. Per-vendor id rules (UUID shapes, checksums) stay in the adapters.
    pub fn segment(mut self, value: &str) -> Result<Self> {
        validate_path_id(value)?;
        self.segments.push(value.to_owned());
        self.route.push_str("/{}");
        Ok(self)
    }

    /// Appends a query parameter (percent-encoded by the URL builder).
    pub fn query(mut self, key: &str, value: impl ToString) -> Self {
        self.query.push((key.to_owned(), value.to_string()));
        self
    }

    /// Appends a query parameter when `value` is `Some`; `None` adds nothing.
    pub fn query_opt(self, key: &str, value: Option<impl ToString>) -> Self {
        match value {
            Some(v) => self.query(key, v),
            None => self,
        }
    }

    /// A JSON body.
    pub fn json<T: serde::Serialize + ?Sized>(mut self, body: &T) -> Result<Self> {
        let bytes = serde_json::to_vec(body).map_err(|e| Error::InvalidInput {
            message: "the request body could not be encoded as JSON".into(),
            source: Some(Box::new(e)),
        })?;
        self.body = Some(Bytes::from(bytes));
        self.content_type = Some("application/json");
        Ok(self)
    }

    /// A form body (`application/x-www-form-urlencoded`).
    pub fn form(mut self, fields: &[(&str, &str)]) -> Self {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(fields)
            .finish();
        self.body = Some(Bytes::from(body));
        self.content_type = Some("application/x-www-form-urlencoded");
        self
    }

    /// Declares the request safe to repeat: the adapter guarantees a repeat cannot duplicate a
    /// side effect (e.g. the vendor answers "already assigned" to a repeated assign).
    pub fn idempotent(mut self, idempotent: bool) -> Self {
        self.idempotent = idempotent;
        self
    }

    /// Sends no credentials (public endpoints such as a service configuration).
    pub fn unauthenticated(mut self) -> Self {
        self.authenticated = false;
        self
    }

    /// The route template used in logs and call counts (`GET /path/{}`), never a full URL.
    pub fn route(&self) -> &str {
        &self.route
    }

    /// Whether the request may be retried after it may have reached the vendor.
    pub fn is_idempotent(&self) -> bool {
        self.idempotent
    }
}

/// Checks an id that will become a URL path segment, before any URL is built: refuses empty
/// ids, `.` and `..`, and any control character (C0, DEL, C1). The url crate strips tab, CR and
/// LF while parsing, *after* dot-segment checks, so `.\t.` would otherwise become `..` and
/// `GET /definitions/.\t.` would reach `GET /api/v2/license/` (issue 13, item 3).
pub fn validate_path_id(value: &str) -> Result<()> {
    let shown = value.escape_debug();
    if value.is_empty() {
        return Err(Error::invalid_input(
            "an empty id cannot be used in a URL path",
        ));
    }
    if value.chars().any(char::is_control) {
        return Err(Error::invalid_input(format!(
            "the id \"{shown}\" contains a control character; refusing to put it in a URL path"
        )));
    }
    if value == "." || value == ".." {
        return Err(Error::invalid_input(format!(
            "`{value}` cannot be used as an id in a URL path"
        )));
    }
    Ok(())
}

/// A successful response, with its body read in full (within the size limit).
#[derive(Debug, Clone)]
pub struct ApiResponse {
    provider: ProviderKind,
    /// The HTTP status (2xx, or one the classifier let through).
    pub status: StatusCode,
    /// The response headers.
    pub headers: HeaderMap,
    /// The body, read in full.
    pub body: Bytes,
}

impl ApiResponse {
    /// Decodes the body as JSON; a non-JSON content type or a malformed body is a `Decode`
    /// error naming the provider and status.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T> {
        check_json_content_type(self.provider, self.status, &self.headers)?;
        serde_json::from_slice(&self.body).map_err(|e| Error::Decode {
            provider: self.provider,
            message: format!(
                "HTTP {} body is not the documented JSON: {e}",
                self.status.as_u16()
            ),
            source: Some(Box::new(e)),
        })
    }

    /// A header's value, when present and valid text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

fn check_json_content_type(
    provider: ProviderKind,
    status: StatusCode,
    headers: &HeaderMap,
) -> Result<()> {
    let Some(ct) = headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()) else {
        return Ok(());
    };
    let essence = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if essence == "application/json" || essence.ends_with("+json") {
        Ok(())
    } else {
        Err(Error::Decode {
            provider,
            message: format!(
                "HTTP {} answered with content type `{essence}`, expected JSON",
                status.as_u16()
            ),
            source: None,
        })
    }
}

/// Builds an [`HttpClient`].
pub struct HttpClientBuilder {
    provider: ProviderKind,
    base_url: String,
    allow_http: bool,
    timeout: Duration,
    connect_timeout: Duration,
    user_agent: String,
    retry: RetryConfig,
    limiter: RequestLimiter,
    credentials: Option<Arc<dyn CredentialProvider>>,
    classifier: Arc<dyn ErrorClassifier>,
    max_body_bytes: usize,
    auth_scheme: &'static str,
    root_certificates: Vec<reqwest::Certificate>,
}

impl fmt::Debug for HttpClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpClientBuilder")
            .field("provider", &self.provider)
            .field("base_url", &self.base_url)
            .field("allow_http", &self.allow_http)
            .field("credentials", &self.credentials)
            .finish_non_exhaustive()
    }
}

impl HttpClientBuilder {
    /// A builder for `provider` at `base_url`: HTTPS only, 30 s timeout, 10 s connect timeout, default retries, 8 requests in flight, no credentials, status-only error classification.
    pub fn new(provider: ProviderKind, base_url: impl Into<String>) -> Self {
        HttpClientBuilder {
            provider,
            base_url: base_url.into(),
            allow_http: false,
            timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
            user_agent: concat!("licensekit/", env!("CARGO_PKG_VERSION")).into(),
            retry: RetryConfig::default(),
            limiter: RequestLimiter::unpaced(8),
            credentials: None,
            classifier: Arc::new(StatusClassifier(provider)),
            max_body_bytes: 8 * 1024 * 1024,
            auth_scheme: "Bearer",
            root_certificates: Vec::new(),
        }
    }

    /// Allows plain `http://` (local simulators only). HTTPS is required otherwise.
    pub fn allow_http(mut self, allow: bool) -> Self {
        self.allow_http = allow;
        self
    }

    /// Whole-request timeout.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Timeout for establishing a connection (default 10 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// The `User-Agent` header (default `licensekit/<version>`).
    pub fn user_agent(mut self, ua: impl Into<String>) -> Self {
        self.user_agent = ua.into();
        self
    }

    /// The retry policy (default [`RetryConfig::default`]).
    pub fn retry(mut self, retry: RetryConfig) -> Self {
        self.retry = retry;
        self
    }

    /// The pacing and concurrency limiter (default: unpaced, 8 in flight).
    pub fn limiter(mut self, limiter: RequestLimiter) -> Self {
        self.limiter = limiter;
        self
    }

    /// Extra trusted CA certificates, on top of the system's roots
    /// ([`ClientOptions::ca_file`]).
    pub fn root_certificates(mut self, certs: Vec<reqwest::Certificate>) -> Self {
        self.root_certificates = certs;
        self
    }

    /// Where access tokens come from; without credentials requests are sent unauthenticated.
    pub fn credentials(mut self, credentials: Arc<dyn CredentialProvider>) -> Self {
        self.credentials = Some(credentials);
        self
    }

    /// How the vendor's error responses are read (default: by HTTP status only).
    pub fn classifier(mut self, classifier: Arc<dyn ErrorClassifier>) -> Self {
        self.classifier = classifier;
        self
    }

    /// Largest response body accepted (default 8 MiB); larger is a `Decode` error.
    pub fn max_body_bytes(mut self, max: usize) -> Self {
        self.max_body_bytes = max;
        self
    }

    /// Builds the client; fails with `Error::Config` on a malformed or non-HTTPS base URL.
    pub fn build(self) -> Result<HttpClient> {
        let provider = self.provider;
        let mut base_url = check_url(provider, &self.base_url, self.allow_http)?;
        // Joining relative paths keeps the base's own path only if it ends with '/'.
        if !base_url.path().ends_with('/') {
            let path = format!("{}/", base_url.path());
            base_url.set_path(&path);
        }
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .https_only(!self.allow_http)
            .timeout(self.timeout)
            .connect_timeout(self.connect_timeout)
            .user_agent(self.user_agent)
            .tls_certs_merge(self.root_certificates)
            .build()
            .map_err(|e| Error::Config {
                message: format!("{provider}: could not build the HTTP client"),
                source: Some(Box::new(e)),
            })?;
        Ok(HttpClient {
            inner: Arc::new(ClientInner {
                provider,
                base_url,
                allow_http: self.allow_http,
                http,
                retry: self.retry,
                limiter: self.limiter,
                credentials: self.credentials,
                classifier: self.classifier,
                max_body_bytes: self.max_body_bytes,
                auth_scheme: self.auth_scheme,
                hold: Arc::default(),
            }),
        })
    }
}

/// Parses a URL and refuses plain HTTP unless allowed.
pub fn check_url(provider: ProviderKind, url: &str, allow_http: bool) -> Result<Url> {
    let parsed = Url::parse(url).map_err(|e| Error::Config {
        message: format!("{provider}: `{url}` is not a valid URL"),
        source: Some(Box::new(e)),
    })?;
    match parsed.scheme() {
        "https" => Ok(parsed),
        "http" if allow_http => Ok(parsed),
        "http" => Err(Error::config(format!(
            "{provider}: refusing plain HTTP to `{url}`: credentials would travel unencrypted; \
             use https, or set allow_http only for a local simulator"
        ))),
        other => Err(Error::config(format!(
            "{provider}: unsupported URL scheme `{other}` in `{url}`"
        ))),
    }
}

#[derive(Debug, Clone)]
struct ClientInner {
    provider: ProviderKind,
    base_url: Url,
    allow_http: bool,
    http: reqwest::Client,
    retry: RetryConfig,
    limiter: RequestLimiter,
    credentials: Option<Arc<dyn CredentialProvider>>,
    classifier: Arc<dyn ErrorClassifier>,
    max_body_bytes: usize,
    auth_scheme: &'static str,
    hold: Arc<ServerHold>,
}

/// A vendor API client: cheap to clone, shares limits and the token cache.
#[derive(Debug, Clone)]
pub struct HttpClient {
    inner: Arc<ClientInner>,
}

/// What one attempt ended with.
enum Attempt {
    Done(ApiResponse),
    Failed {
        error: Error,
        failure: Failure,
        rejected_token: Option<AccessToken>,
    },
}

impl HttpClient {
    /// A builder for a client of `provider` at `base_url` (see [`HttpClientBuilder::new`]).
    pub fn builder(provider: ProviderKind, base_url: impl Into<String>) -> HttpClientBuilder {
        HttpClientBuilder::new(provider, base_url)
    }

    /// The vendor this client talks to.
    pub fn provider(&self) -> ProviderKind {
        self.inner.provider
    }

    /// The base URL every relative path is joined to (always ending in `/`).
    pub fn base_url(&self) -> &Url {
        &self.inner.base_url
    }

    /// Whether plain `http://` was allowed (simulators only).
    pub fn allows_http(&self) -> bool {
        self.inner.allow_http
    }

    /// The underlying reqwest client (redirects off), for token endpoints.
    pub fn reqwest(&self) -> &reqwest::Client {
        &self.inner.http
    }

    /// The limiter pacing this client's requests.
    pub fn limiter(&self) -> &RequestLimiter {
        &self.inner.limiter
    }

    /// The same client (connection pool, limits, retry policy) sending `credentials`. Lets an
    /// adapter build its token source over [`HttpClient::reqwest`] first.
    pub fn with_credentials(&self, credentials: Arc<dyn CredentialProvider>) -> HttpClient {
        let mut inner = (*self.inner).clone();
        inner.credentials = Some(credentials);
        HttpClient {
            inner: Arc::new(inner),
        }
    }

    /// Sends `request` and decodes the JSON answer (see [`HttpClient::send_with`]).
    pub async fn json<T: DeserializeOwned>(&self, request: ApiRequest) -> Result<T> {
        self.send_with(request, |response| response.json()).await
    }

    /// Sends `request` and returns the response undecoded.
    pub async fn send(&self, request: ApiRequest) -> Result<ApiResponse> {
        self.send_with(request, Ok).await
    }

    /// Sends `request`, retrying as [`classify`] decides within the [`RetryConfig`] budget, with
    /// one credential re-fetch on 401, and hands the response to `finish` (usually a decoder).
    /// A response `finish` cannot decode — truncated JSON, an HTML page from a proxy — is treated
    /// like a broken connection: the request may have been applied, so it is retried only when
    /// idempotent. Returns `finish`'s value, or the error of the last attempt (wrapped in
    /// `RetriesExhausted` when it was retried).
    pub async fn send_with<T>(
        &self,
        request: ApiRequest,
        mut finish: impl FnMut(ApiResponse) -> Result<T>,
    ) -> Result<T> {
        let inner = &self.inner;
        let url = self.url_for(&request)?;
        let budget = Budget::start(&inner.retry);
        let mut backoff = inner.retry.backoff();
        let mut attempt: u32 = 0;
        let mut auth = AuthRetries::default();
        loop {
            attempt += 1;
            let span = tracing::debug_span!(
                "http",
                provider = %inner.provider,
                method = %request.method,
                route = %request.route,
                attempt,
                status = tracing::field::Empty,
            );
            let outcome = self
                .attempt(&request, &url, &budget)
                .instrument(span.clone())
                .await;
            let outcome = match outcome {
                Ok(outcome) => outcome,
                Err(error) => return Err(give_up(inner.provider, error, attempt, &budget)),
            };
            let (error, failure, rejected_token) = match outcome {
                Attempt::Done(response) => match finish(response) {
                    Ok(value) => return Ok(value),
                    Err(e) if e.kind() == crate::ErrorKind::Decode => {
                        (e, Failure::Transport { sent: true }, None)
                    }
                    Err(e) => return Err(e),
                },
                Attempt::Failed {
                    error,
                    failure,
                    rejected_token,
                } => (error, failure, rejected_token),
            };
            let (error, failure) = match rejected_token {
                None => (error, failure),
                Some(token) => {
                    let credentials = inner
                        .credentials
                        .as_ref()
                        .expect("a token came from credentials");
                    if !credentials.invalidate(&token).await {
                        // A static token: nothing else to try.
                        return Err(give_up(inner.provider, error, attempt, &budget));
                    }
                    auth.rejected += 1;
                    if auth.rejected == 1 {
                        // The token may simply have expired: fetch a new one at once.
                        span.in_scope(|| {
                            tracing::debug!("credentials rejected; fetching new ones")
                        });
                        continue;
                    }
                    // A token the token endpoint has just issued was rejected too: the
                    // credentials themselves work (the endpoint accepted them), so this is not
                    // "check the credentials". Keep trying within the budget, with backoff.
                    (
                        auth.fresh_tokens_rejected(inner.provider, error),
                        Failure::Transport { sent: false },
                    )
                }
            };
            let decision = classify(&inner.retry, failure, attempt, request.idempotent);
            let wait = match decision {
                RetryDecision::Stop => {
                    return Err(give_up(inner.provider, error, attempt, &budget));
                }
                RetryDecision::RetryAfter(d) => d,
                RetryDecision::Backoff => backoff.next().unwrap_or(inner.retry.max_backoff),
            };
            if wait > budget.allowed_wait() {
                // The server asked for (or the backoff reached) a wait the budget cannot pay:
                // answer now rather than sleep and fail anyway.
                return Err(give_up(inner.provider, error, attempt, &budget));
            }
            span.in_scope(
                || tracing::debug!(wait_ms = saturating_millis(wait), %error, "retrying"),
            );
            tokio::time::sleep(wait).await;
        }
    }

    fn url_for(&self, request: &ApiRequest) -> Result<Url> {
        let provider = self.inner.provider;
        let mut url = match &request.absolute {
            Some(url) => {
                if url.origin() != self.inner.base_url.origin() {
                    return Err(Error::InvalidInput {
                        message: format!(
                            "{provider}: refusing to send credentials to another origin ({})",
                            url.origin().ascii_serialization()
                        ),
                        source: None,
                    });
                }
                url.clone()
            }
            None => self
                .inner
                .base_url
                .join(request.path.trim_start_matches('/'))
                .map_err(|e| Error::Config {
                    message: format!("{provider}: invalid request path `{}`", request.path),
                    source: Some(Box::new(e)),
                })?,
        };
        if !request.segments.is_empty() {
            url.path_segments_mut()
                .map_err(|()| Error::config(format!("{provider}: base URL cannot have a path")))?
                .pop_if_empty()
                .extend(&request.segments);
            check_segments_kept(&url, &request.segments)?;
        }
        if !request.query.is_empty() {
            url.query_pairs_mut().extend_pairs(&request.query);
        }
        Ok(url)
    }

    /// One attempt. `Err` only for errors no retry can fix (bad credentials config).
    async fn attempt(&self, request: &ApiRequest, url: &Url, budget: &Budget) -> Result<Attempt> {
        let inner = &self.inner;
        let provider = inner.provider;
        let token = match (&inner.credentials, request.authenticated) {
            (Some(credentials), true) => match credentials.token().await {
                Ok(token) => Some(token),
                Err(error) => return token_failure(error),
            },
            _ => None,
        };
        let mut builder = inner.http.request(request.method.clone(), url.clone());
        if let Some(token) = &token {
            let mut value = HeaderValue::from_str(&format!(
                "{} {}",
                inner.auth_scheme,
                token.secret().expose_secret()
            ))
            .map_err(|_| Error::Unauthenticated {
                provider,
                message: "the access token contains characters not allowed in a header".into(),
                source: None,
            })?;
            value.set_sensitive(true);
            builder = builder.header(AUTHORIZATION, value);
        }
        if let Some(body) = &request.body {
            builder = builder.body(body.clone());
        }
        if let Some(ct) = request.content_type {
            builder = builder.header(CONTENT_TYPE, ct);
        }
        let _permit = self.acquire(budget).await?;
        let response = match builder.send().await {
            Ok(r) => r,
            Err(e) => {
                let sent = !e.is_connect();
                tracing::debug!(sent, error = %e, "transport error");
                return Ok(Attempt::Failed {
                    error: Error::Transport {
                        provider,
                        message: if e.is_timeout() {
                            format!("{} timed out", request.route)
                        } else {
                            format!("{} failed before a response arrived", request.route)
                        },
                        source: Some(Box::new(e.without_url())),
                    },
                    failure: Failure::Transport { sent },
                    rejected_token: None,
                });
            }
        };
        let status = response.status();
        tracing::Span::current().record("status", status.as_u16());
        let headers = response.headers().clone();
        inner.limiter.observe(status, &headers);
        inner.hold.observe(status, &headers, budget);
        let body = match read_limited(response, inner.max_body_bytes).await {
            Ok(body) => body,
            Err(BodyError::TooLarge) => {
                return Err(Error::Decode {
                    provider,
                    message: format!(
                        "{} answered more than {} bytes; refusing to buffer it",
                        request.route, inner.max_body_bytes
                    ),
                    source: None,
                });
            }
            Err(BodyError::Transport(e)) => {
                return Ok(Attempt::Failed {
                    error: Error::Transport {
                        provider,
                        message: if e.is_timeout() {
                            format!("{} timed out while reading the response", request.route)
                        } else {
                            format!("{} broke off while reading the response", request.route)
                        },
                        source: Some(Box::new(e.without_url())),
                    },
                    failure: Failure::Transport { sent: true },
                    rejected_token: None,
                });
            }
        };
        let Some(vendor_failure) = inner.classifier.classify(status, &headers, &body) else {
            if !status.is_success() {
                // A classifier that lets an HTTP error through would make it look like data.
                let failure = StatusClassifier(provider)
                    .classify(status, &headers, &body)
                    .expect("non-success status");
                return Ok(self.failed(failure, status, &headers, None));
            }
            return Ok(Attempt::Done(ApiResponse {
                provider,
                status,
                headers,
                body,
            }));
        };
        let rejected = (vendor_failure.meaning == FailureMeaning::Unauthenticated)
            .then_some(token)
            .flatten();
        Ok(self.failed(vendor_failure, status, &headers, rejected))
    }

    /// Waits for the server's announced hold (a `Retry-After` or an exhausted
    /// `inin-ratelimit-*` window seen on any response), then for a slot and the pacer — all
    /// inside the request's budget. A wait the budget cannot pay is answered at once with
    /// `RateLimited { retry_after }` instead of a silent hang (issue 12, item 2).
    async fn acquire(&self, budget: &Budget) -> Result<LimitPermit> {
        let inner = &self.inner;
        let provider = inner.provider;
        if let Some(hold) = inner.hold.remaining() {
            if hold > budget.allowed_wait() {
                return Err(Error::RateLimited {
                    provider,
                    retry_after: Some(hold),
                    source: Some(
                        format!(
                            "the server asked to wait {:.1?}, more than this request may still wait ({:.1?})",
                            hold,
                            budget.allowed_wait()
                        )
                        .into(),
                    ),
                });
            }
            tokio::time::sleep(hold).await;
        }
        // Queueing for a slot and the rate window is local, not a server's request: bounded by
        // the time left in the budget (not by `max_wait`). A wait that cannot fit is refused at
        // once, saying how long it would have been.
        let deadline = tokio::time::Instant::now() + budget.remaining();
        inner
            .limiter
            .acquire_within(deadline)
            .await
            .map_err(|too_long| too_long.into_error(provider))
    }

    fn failed(
        &self,
        failure: VendorFailure,
        status: StatusCode,
        headers: &HeaderMap,
        rejected_token: Option<AccessToken>,
    ) -> Attempt {
        // The server's own figure, unclamped: a `Retry-After` longer than the budget is
        // reported as it was asked, and `classify` stops on it.
        let throttled = failure.meaning == FailureMeaning::RateLimited;
        let retry_after = parse_retry_after(headers, SystemTime::now());
        // A throttled answer without `Retry-After` may still announce its window's reset
        // (`inin-ratelimit-reset`): the longer of the two is the server's wait.
        let retry_after = if throttled {
            retry_after.max(self.inner.hold.remaining())
        } else {
            retry_after
        };
        let transient = failure.meaning == FailureMeaning::Unavailable;
        // A vendor reporting a transient failure inside a 200 still deserves a retry.
        let status = if transient && !status.is_server_error() {
            StatusCode::SERVICE_UNAVAILABLE
        } else {
            status
        };
        Attempt::Failed {
            error: failure_to_error(failure, retry_after),
            failure: Failure::Response {
                status,
                throttled,
                retry_after,
            },
            rejected_token,
        }
    }
}

/// Fetches a token outside any API request (an adapter that needs a token's side data — the
/// Salesforce `instance_url` — before it can build its client), retrying a transient
/// token-endpoint failure (429, 5xx, timeout) within `retry`'s budget exactly as a request
/// would. Bad credentials stop at once.
pub async fn token_with_retry(
    provider: ProviderKind,
    retry: &RetryConfig,
    credentials: &dyn CredentialProvider,
) -> Result<AccessToken> {
    let budget = Budget::start(retry);
    let mut backoff = retry.backoff();
    let mut attempt: u32 = 0;
    loop {
        attempt += 1;
        let error = match credentials.token().await {
            Ok(token) => return Ok(token),
            Err(error) => error,
        };
        let (error, failure) = match token_failure(error) {
            Err(error) => return Err(give_up(provider, error, attempt, &budget)),
            Ok(Attempt::Failed { error, failure, .. }) => (error, failure),
            Ok(Attempt::Done(_)) => unreachable!("token_failure never succeeds"),
        };
        let wait = match classify(retry, failure, attempt, true) {
            RetryDecision::Stop => return Err(give_up(provider, error, attempt, &budget)),
            RetryDecision::RetryAfter(d) => d,
            RetryDecision::Backoff => backoff.next().unwrap_or(retry.max_backoff),
        };
        if wait > budget.allowed_wait() {
            return Err(give_up(provider, error, attempt, &budget));
        }
        tracing::debug!(%provider, wait_ms = saturating_millis(wait), %error, "token fetch failed; retrying");
        tokio::time::sleep(wait).await;
    }
}

/// After the URL is built and normalised, its last path segments must decode to exactly the
/// ids given: anything the URL parser dropped, merged or reinterpreted would send the request
/// to another route.
fn check_segments_kept(url: &Url, segments: &[String]) -> Result<()> {
    let built: Vec<String> = url
        .path_segments()
        .map(|s| s.map(percent_encoding_decode).collect())
        .unwrap_or_default();
    let kept = built.len() >= segments.len()
        && built[built.len() - segments.len()..]
            .iter()
            .zip(segments)
            .all(|(b, s)| b == s);
    if kept {
        Ok(())
    } else {
        Err(Error::invalid_input(format!(
            "the id {:?} would change the request path; refusing to send it",
            segments.last().map(String::as_str).unwrap_or("")
        )))
    }
}

fn percent_encoding_decode(segment: &str) -> String {
    url::form_urlencoded::parse(format!("x={}", segment.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

fn give_up(provider: ProviderKind, error: Error, attempts: u32, budget: &Budget) -> Error {
    if attempts <= 1 {
        return error;
    }
    Error::RetriesExhausted {
        provider,
        attempts,
        elapsed: budget.started.elapsed(),
        last: Box::new(error),
    }
}

fn saturating_millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// One request's retry budget: total time from the first attempt, and the longest single wait
/// (`RetryConfig::max_wait`). Every wait — backoff, `Retry-After`, the pacer, a server hold —
/// is drawn from it.
struct Budget {
    started: tokio::time::Instant,
    max_elapsed: Duration,
    max_wait: Duration,
}

impl Budget {
    fn start(retry: &RetryConfig) -> Self {
        Budget {
            started: tokio::time::Instant::now(),
            max_elapsed: retry.max_elapsed,
            max_wait: retry.max_wait,
        }
    }

    /// Time left before no retry may start.
    fn remaining(&self) -> Duration {
        self.max_elapsed.saturating_sub(self.started.elapsed())
    }

    /// The longest wait this request may still take.
    fn allowed_wait(&self) -> Duration {
        self.remaining().min(self.max_wait)
    }

    /// The longest hold remembered from a header: a year. Longer ones are reported as a year
    /// (they fail at once either way), and the deadline arithmetic cannot overflow.
    fn cap(&self) -> Duration {
        Duration::from_secs(365 * 24 * 3600)
    }
}

/// 401s seen within one request.
#[derive(Default)]
struct AuthRetries {
    rejected: u32,
}

impl AuthRetries {
    /// The error for a 401 on a token fetched after an earlier 401 of the same request: the
    /// token endpoint issued it, so the credentials are good; the vendor is rejecting its own
    /// fresh tokens (propagation delay, an outage). Reported as `Unavailable`, the vendor's
    /// answer kept as the source.
    fn fresh_tokens_rejected(&self, provider: ProviderKind, error: Error) -> Error {
        Error::Unavailable {
            provider,
            message: format!(
                "the API rejected {} access tokens in a row (HTTP 401) although the token endpoint \
                 had just issued them; the credentials are accepted, so this is on the vendor's side",
                self.rejected
            ),
            source: Some(Box::new(error)),
        }
    }
}

/// A credential failure met while preparing an attempt. The API request never left, so a
/// transient token-endpoint failure (429, 5xx, timeout) is retried like any request that was
/// never sent; bad credentials, config and decode errors stop at once.
fn token_failure(error: Error) -> Result<Attempt> {
    let failure = match &error {
        Error::RateLimited { retry_after, .. } => Failure::Response {
            status: StatusCode::TOO_MANY_REQUESTS,
            throttled: true,
            retry_after: *retry_after,
        },
        Error::Unavailable { .. } => Failure::Transport { sent: false },
        Error::Transport { .. } => Failure::Transport { sent: false },
        _ => return Err(error),
    };
    Ok(Attempt::Failed {
        error,
        failure,
        rejected_token: None,
    })
}

/// The longest hold the server announced for every request of this client: `Retry-After`, or
/// a Genesys window reported used up (`inin-ratelimit-count >= inin-ratelimit-allowed`, then
/// `inin-ratelimit-reset` seconds; genesys spec §6). On an error answer every such hold counts;
/// on a success it counts only when longer than `max_wait` — ordinary pacing by these headers
/// is the pacer's job (and an adapter may switch it off), but a wait no request may take must
/// fail the next requests at once rather than stall them in the pacer. Parsed overflow-safe:
/// negative, garbage or absurd values never panic, and a hold is capped so the deadline
/// arithmetic cannot overflow.
#[derive(Debug, Default)]
struct ServerHold {
    until: std::sync::Mutex<Option<tokio::time::Instant>>,
}

impl ServerHold {
    fn observe(&self, status: StatusCode, headers: &HeaderMap, budget: &Budget) {
        let cap = budget.cap();
        let number =
            |name: &str| -> Option<u64> { headers.get(name)?.to_str().ok()?.trim().parse().ok() };
        let mut wait = parse_retry_after(headers, SystemTime::now());
        if let (Some(count), Some(allowed), Some(reset)) = (
            number("inin-ratelimit-count"),
            number("inin-ratelimit-allowed"),
            number("inin-ratelimit-reset"),
        ) && count >= allowed
        {
            wait = wait.max(Some(Duration::from_secs(reset)));
        }
        let Some(wait) = wait.filter(|w| !w.is_zero()) else {
            return;
        };
        if status.is_success() && wait <= budget.max_wait {
            return;
        }
        // Capped so the deadline cannot overflow; anything near the cap fails at once anyway.
        let wait = wait.min(cap);
        let Some(until) = tokio::time::Instant::now().checked_add(wait) else {
            return;
        };
        let mut held = self.until.lock().unwrap_or_else(|p| p.into_inner());
        if held.is_none_or(|h| h < until) {
            *held = Some(until);
        }
    }

    fn remaining(&self) -> Option<Duration> {
        let mut held = self.until.lock().unwrap_or_else(|p| p.into_inner());
        let left = (*held)?.saturating_duration_since(tokio::time::Instant::now());
        if left.is_zero() {
            *held = None;
            return None;
        }
        Some(left)
    }
}

enum BodyError {
    TooLarge,
    Transport(reqwest::Error),
}

/// The most reserved for a body before it arrives (it still grows to `max_body_bytes`).
const PREALLOCATED_BODY_MAX: usize = 8 << 20;

async fn read_limited(mut response: reqwest::Response, max: usize) -> Result<Bytes, BodyError> {
    if response
        .content_length()
        .is_some_and(|len| len > max as u64)
    {
        return Err(BodyError::TooLarge);
    }
    // Room for the declared length up front (bounded: a declared length is only a claim), so a
    // large page is not copied at every doubling while it arrives.
    let declared = response.content_length().unwrap_or(0);
    let reserve = usize::try_from(declared)
        .unwrap_or(usize::MAX)
        .min(PREALLOCATED_BODY_MAX);
    let mut body = bytes::BytesMut::with_capacity(reserve);
    while let Some(chunk) = response.chunk().await.map_err(BodyError::Transport)? {
        if body.len() + chunk.len() > max {
            return Err(BodyError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

#[cfg(test)]
mod tests;
