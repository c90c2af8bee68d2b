//! Access tokens: where they come from, and a cache that refreshes them once for everyone.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::{Mutex, RwLock};
use tokio::time::Instant;
use tracing::Instrument;

use crate::error::{Error, Result};
use crate::model::ProviderKind;

/// A bearer token and when it stops working. `Debug` never shows the secret.
#[derive(Clone)]
pub struct AccessToken {
    secret: SecretString,
    expires_at: Option<Instant>,
}

impl AccessToken {
    /// A token valid for `expires_in` (`None`: until the vendor rejects it). The secret is
    /// registered for redaction. Overflow-safe: an `expires_in` too large for the clock
    /// (`u64::MAX` seconds) counts as no expiry; 0 is a token already due for refresh.
    pub fn new(secret: SecretString, expires_in: Option<Duration>) -> Self {
        crate::error::redact::register(secret.expose_secret());
        AccessToken {
            secret,
            expires_at: expires_in.and_then(|d| Instant::now().checked_add(d)),
        }
    }

    /// The token itself; expose it only to put it in a request header.
    pub fn secret(&self) -> &SecretString {
        &self.secret
    }

    /// When the token stops being valid; `None` = the vendor gave no expiry.
    pub fn expires_at(&self) -> Option<Instant> {
        self.expires_at
    }

    /// Usable for at least `skew` more.
    fn is_fresh(&self, skew: Duration) -> bool {
        self.expires_at
            .is_none_or(|at| at.saturating_duration_since(Instant::now()) > skew)
    }

    /// Not yet expired (however soon it will).
    fn is_unexpired(&self) -> bool {
        self.expires_at.is_none_or(|at| at > Instant::now())
    }

    fn same_secret(&self, other: &AccessToken) -> bool {
        self.secret.expose_secret() == other.secret.expose_secret()
    }
}

impl fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccessToken")
            .field("secret", &"[REDACTED]")
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// Gives the client layer a token for each request.
#[async_trait]
pub trait CredentialProvider: Send + Sync + fmt::Debug {
    /// A token valid now.
    async fn token(&self) -> Result<AccessToken>;

    /// The vendor rejected `rejected` (HTTP 401). Returns whether a different token can be had:
    /// the client then re-fetches once; `false` (a static token) gives up at once.
    async fn invalidate(&self, rejected: &AccessToken) -> bool;
}

/// A token given by the caller (Apple location token, a Salesforce session id).
#[derive(Clone)]
pub struct StaticToken {
    token: AccessToken,
}

impl StaticToken {
    /// A token that never expires and is never refreshed (a personal access token, a VPP sToken).
    pub fn new(secret: SecretString) -> Self {
        StaticToken {
            token: AccessToken::new(secret, None),
        }
    }
}

impl fmt::Debug for StaticToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StaticToken([REDACTED])")
    }
}

#[async_trait]
impl CredentialProvider for StaticToken {
    async fn token(&self) -> Result<AccessToken> {
        Ok(self.token.clone())
    }
    async fn invalidate(&self, _rejected: &AccessToken) -> bool {
        false
    }
}

/// Fetches a new token (an OAuth2 grant, a JWT bearer exchange, …).
#[async_trait]
pub trait TokenSource: Send + Sync + fmt::Debug {
    /// Fetches a fresh token from the vendor; errors are classified like API calls.
    async fn fetch(&self) -> Result<AccessToken>;
}

/// Caches a [`TokenSource`]'s token: read-lock fast path; on expiry one caller refreshes while
/// the others wait for its result (no stampede on the token endpoint); refreshed `skew` before
/// it expires; dropped when the vendor rejects it.
#[derive(Debug)]
pub struct TokenCache<S> {
    source: S,
    cached: RwLock<Option<AccessToken>>,
    refreshing: Mutex<()>,
    skew: Duration,
}

impl<S: TokenSource> TokenCache<S> {
    /// A cache over `source` that refreshes 60 s before expiry.
    pub fn new(source: S) -> Self {
        TokenCache {
            source,
            cached: RwLock::new(None),
            refreshing: Mutex::new(()),
            skew: Duration::from_secs(60),
        }
    }

    /// Refresh this long before expiry (default 60 s).
    pub fn with_skew(mut self, skew: Duration) -> Self {
        self.skew = skew;
        self
    }

    /// The token source this cache refreshes from.
    pub fn source(&self) -> &S {
        &self.source
    }

    async fn fresh_cached(&self) -> Option<AccessToken> {
        self.cached
            .read()
            .await
            .as_ref()
            .filter(|t| t.is_fresh(self.skew))
            .cloned()
    }
}

#[async_trait]
impl<S: TokenSource> CredentialProvider for TokenCache<S> {
    async fn token(&self) -> Result<AccessToken> {
        if let Some(token) = self.fresh_cached().await {
            return Ok(token);
        }
        let before = self.cached.read().await.clone();
        let _refresh = self.refreshing.lock().await;
        // Another caller may have refreshed while we waited. A token that short-lived (an
        // `expires_in` under the skew, even 0) is still used by the callers that waited for it
        // rather than fetched again by each of them in turn.
        if let Some(token) = self.fresh_cached().await {
            return Ok(token);
        }
        if let Some(token) = self
            .cached
            .read()
            .await
            .clone()
            .filter(|t| t.is_unexpired() && before.as_ref().is_none_or(|b| !b.same_secret(t)))
        {
            return Ok(token);
        }
        let token = self.source.fetch().await?;
        *self.cached.write().await = Some(token.clone());
        Ok(token)
    }

    async fn invalidate(&self, rejected: &AccessToken) -> bool {
        let mut cached = self.cached.write().await;
        // Only drop the token that was rejected: if a concurrent caller already replaced it,
        // keep the new one (many 401s of one stale token cause one refresh).
        if cached.as_ref().is_some_and(|t| t.same_secret(rejected)) {
            *cached = None;
        }
        true
    }
}

#[async_trait]
impl<T: CredentialProvider + ?Sized> CredentialProvider for Arc<T> {
    async fn token(&self) -> Result<AccessToken> {
        (**self).token().await
    }
    async fn invalidate(&self, rejected: &AccessToken) -> bool {
        (**self).invalidate(rejected).await
    }
}

/// How the client id and secret travel to the token endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuthStyle {
    /// HTTP Basic header (Genesys).
    BasicHeader,
    /// Form fields `client_id` / `client_secret`.
    RequestBody,
}

/// OAuth2 client-credentials grant, through the `oauth2` crate driven by our reqwest client
/// (redirects off, so the secret never goes to another host). Wrap in a [`TokenCache`].
#[derive(Clone)]
pub struct OAuth2ClientCredentials {
    provider: ProviderKind,
    client_id: String,
    client_secret: SecretString,
    token_url: String,
    scopes: Vec<String>,
    auth_style: ClientAuthStyle,
    http: reqwest::Client,
}

impl fmt::Debug for OAuth2ClientCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OAuth2ClientCredentials")
            .field("provider", &self.provider)
            .field("client_id", &self.client_id)
            .field("client_secret", &"[REDACTED]")
            .field("token_url", &self.token_url)
            .field("scopes", &self.scopes)
            .finish()
    }
}

impl OAuth2ClientCredentials {
    /// A client-credentials grant at `token_url` for `provider`, sent through `http` (redirects off); the secret is registered for redaction.
    pub fn new(
        provider: ProviderKind,
        http: reqwest::Client,
        token_url: impl Into<String>,
        client_id: impl Into<String>,
        client_secret: SecretString,
    ) -> Self {
        crate::error::redact::register(client_secret.expose_secret());
        OAuth2ClientCredentials {
            provider,
            client_id: client_id.into(),
            client_secret,
            token_url: token_url.into(),
            scopes: Vec::new(),
            auth_style: ClientAuthStyle::BasicHeader,
            http,
        }
    }

    /// The scopes to request; empty = the vendor's default.
    pub fn with_scopes(mut self, scopes: Vec<String>) -> Self {
        self.scopes = scopes;
        self
    }

    /// How the client id and secret are sent (default: HTTP Basic header).
    pub fn with_auth_style(mut self, style: ClientAuthStyle) -> Self {
        self.auth_style = style;
        self
    }
}

/// Largest token-endpoint answer read (a token response is well under 10 KiB); a longer one
/// is cut off with a `Decode` error naming this limit (issue 13, item 1).
pub const MAX_TOKEN_RESPONSE_BYTES: usize = 64 * 1024;

/// Why a token-endpoint exchange produced no answer.
#[derive(Debug)]
pub enum TokenHttpError {
    /// The answer was longer than the limit.
    TooLarge {
        /// The limit in bytes ([`MAX_TOKEN_RESPONSE_BYTES`]).
        limit: usize,
    },
    /// No (complete) answer: connect error, timeout, broken body.
    Transport(reqwest::Error),
}

impl fmt::Display for TokenHttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TokenHttpError::TooLarge { limit } => {
                write!(f, "the token endpoint answered more than {limit} bytes")
            }
            TokenHttpError::Transport(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for TokenHttpError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            TokenHttpError::Transport(e) => Some(e),
            TokenHttpError::TooLarge { .. } => None,
        }
    }
}

/// What the token endpoint answered, kept so a failure can be classified by status and
/// headers (the `oauth2` crate's errors carry neither).
#[derive(Debug, Clone)]
pub struct TokenAnswer {
    /// The token endpoint's HTTP status.
    pub status: http::StatusCode,
    /// The token endpoint's headers (`Retry-After` among them).
    pub headers: http::HeaderMap,
    /// The body, at most [`MAX_TOKEN_RESPONSE_BYTES`].
    pub body: bytes::Bytes,
}

/// Runs one `oauth2` crate request through our reqwest client (redirects off), reading at most
/// [`MAX_TOKEN_RESPONSE_BYTES`].
pub async fn send_oauth_request(
    http: &reqwest::Client,
    request: oauth2::HttpRequest,
) -> std::result::Result<oauth2::HttpResponse, TokenHttpError> {
    let request = reqwest::Request::try_from(request).map_err(TokenHttpError::Transport)?;
    let answer = send_token_request(http, request).await?;
    let mut builder = http::Response::builder().status(answer.status);
    for (name, value) in &answer.headers {
        builder = builder.header(name, value);
    }
    Ok(builder
        .body(answer.body.to_vec())
        .expect("status and headers come from a valid response"))
}

/// Sends a token request and reads its answer within [`MAX_TOKEN_RESPONSE_BYTES`] (the client's
/// whole-request timeout bounds a slow or endless body).
pub async fn send_token_request(
    http: &reqwest::Client,
    request: reqwest::Request,
) -> std::result::Result<TokenAnswer, TokenHttpError> {
    let response = http
        .execute(request)
        .await
        .map_err(|e| TokenHttpError::Transport(e.without_url()))?;
    let status = response.status();
    let headers = response.headers().clone();
    let body = super::read_limited(response, MAX_TOKEN_RESPONSE_BYTES)
        .await
        .map_err(|e| match e {
            super::BodyError::TooLarge => TokenHttpError::TooLarge {
                limit: MAX_TOKEN_RESPONSE_BYTES,
            },
            super::BodyError::Transport(e) => TokenHttpError::Transport(e.without_url()),
        })?;
    Ok(TokenAnswer {
        status,
        headers,
        body,
    })
}

/// A token endpoint reached through the `oauth2` crate, remembering the last answer so its
/// failures are classified like API calls ([`token_error`]).
#[derive(Debug, Clone)]
pub struct TokenEndpoint {
    provider: ProviderKind,
    http: reqwest::Client,
    last: Arc<std::sync::Mutex<Option<TokenAnswer>>>,
}

impl TokenEndpoint {
    /// An endpoint for `provider` sending through `http`.
    pub fn new(provider: ProviderKind, http: reqwest::Client) -> Self {
        TokenEndpoint {
            provider,
            http,
            last: Arc::default(),
        }
    }

    /// The HTTP function to hand to `oauth2`'s `request_async`.
    pub fn sender(
        &self,
    ) -> impl Fn(
        oauth2::HttpRequest,
    ) -> futures::future::BoxFuture<
        'static,
        std::result::Result<oauth2::HttpResponse, TokenHttpError>,
    > + Send
    + Sync
    + 'static {
        let http = self.http.clone();
        let last = self.last.clone();
        move |request: oauth2::HttpRequest| {
            let http = http.clone();
            let last = last.clone();
            Box::pin(async move {
                let request =
                    reqwest::Request::try_from(request).map_err(TokenHttpError::Transport)?;
                let answer = send_token_request(&http, request).await?;
                *last.lock().unwrap_or_else(|p| p.into_inner()) = Some(answer.clone());
                let mut builder = http::Response::builder().status(answer.status);
                for (name, value) in &answer.headers {
                    builder = builder.header(name, value);
                }
                Ok(builder
                    .body(answer.body.to_vec())
                    .expect("status and headers come from a valid response"))
            })
        }
    }

    /// The core error for an `oauth2` request failure.
    pub fn error<TE: oauth2::ErrorResponse + 'static>(
        &self,
        error: oauth2::RequestTokenError<TokenHttpError, TE>,
    ) -> Error {
        use oauth2::RequestTokenError;
        let provider = self.provider;
        match error {
            RequestTokenError::Request(e) => request_error(provider, e),
            RequestTokenError::Parse(e, _) => {
                let answer = self.last.lock().unwrap_or_else(|p| p.into_inner()).clone();
                match answer {
                    Some(a) if !a.status.is_success() => token_error(provider, &a),
                    _ => Error::Decode {
                        provider,
                        message: "the token endpoint's answer is not an OAuth2 token response"
                            .into(),
                        source: Some(Box::new(e)),
                    },
                }
            }
            RequestTokenError::ServerResponse(_) | RequestTokenError::Other(_) => {
                let answer = self.last.lock().unwrap_or_else(|p| p.into_inner()).clone();
                match answer {
                    Some(a) => token_error(provider, &a),
                    None => Error::Unauthenticated {
                        provider,
                        message: "the token request failed".into(),
                        source: None,
                    },
                }
            }
        }
    }
}

/// The error for a token request that got no answer.
pub fn request_error(provider: ProviderKind, error: TokenHttpError) -> Error {
    match error {
        TokenHttpError::TooLarge { limit } => Error::Decode {
            provider,
            message: format!(
                "the token endpoint answered more than {limit} bytes; refusing to buffer it"
            ),
            source: None,
        },
        TokenHttpError::Transport(e) => Error::Transport {
            provider,
            message: if e.is_timeout() {
                "the token endpoint timed out".into()
            } else {
                "could not reach the token endpoint".into()
            },
            source: Some(Box::new(e)),
        },
    }
}

/// Classifies a token endpoint's failed answer like an API call (issue 13, item 4): 429 is
/// `RateLimited` (with its `Retry-After`), 408 and 5xx are `Unavailable` — both retried by the
/// request that needed the token, within its budget; only a 400/401 is `Unauthenticated`,
/// keeping the vendor's `error` and `error_description` (Genesys also sends `description`,
/// genesys-payloads §4). Vendor text is redacted of known secrets.
pub fn token_error(provider: ProviderKind, answer: &TokenAnswer) -> Error {
    #[derive(serde::Deserialize)]
    struct OAuthError {
        error: String,
        #[serde(default)]
        error_description: Option<String>,
        #[serde(default)]
        description: Option<String>,
    }
    let status = answer.status;
    let code = status.as_u16();
    let parsed: Option<OAuthError> = serde_json::from_slice(&answer.body).ok();
    let reason = match &parsed {
        Some(e) => {
            let description = e.error_description.as_ref().or(e.description.as_ref());
            format!(
                "{}{}",
                e.error,
                description.map(|d| format!(": {d}")).unwrap_or_default()
            )
        }
        None => super::body_excerpt(&answer.body),
    };
    let vendor = crate::VendorError::new(provider, Some(code), reason.clone());
    let reason = vendor.message.clone();
    let source = Some(Box::new(vendor) as crate::BoxError);
    match code {
        429 => Error::RateLimited {
            provider,
            retry_after: super::parse_retry_after(&answer.headers, std::time::SystemTime::now()),
            source,
        },
        408 | 500..=599 => Error::Unavailable {
            provider,
            message: format!("the token endpoint answered HTTP {code} ({reason})"),
            source,
        },
        400 if parsed.is_none() => Error::Vendor(crate::VendorError::new(
            provider,
            Some(code),
            format!("the token endpoint answered HTTP 400 ({reason})"),
        )),
        400 | 401 => Error::Unauthenticated {
            provider,
            message: format!("the token endpoint refused the credentials ({reason})"),
            source,
        },
        403 => Error::PermissionDenied {
            provider,
            message: format!("the token endpoint refused the grant ({reason})"),
            source,
        },
        _ => Error::Vendor(crate::VendorError::new(
            provider,
            Some(code),
            format!("the token endpoint answered HTTP {code} ({reason})"),
        )),
    }
}

#[async_trait]
impl TokenSource for OAuth2ClientCredentials {
    async fn fetch(&self) -> Result<AccessToken> {
        use oauth2::basic::BasicClient;
        use oauth2::{AuthType, ClientId, ClientSecret, Scope, TokenResponse, TokenUrl};
        let provider = self.provider;
        let token_url = TokenUrl::new(self.token_url.clone()).map_err(|e| Error::Config {
            message: format!("{provider}: invalid token URL `{}`", self.token_url),
            source: Some(Box::new(e)),
        })?;
        let client = BasicClient::new(ClientId::new(self.client_id.clone()))
            .set_client_secret(ClientSecret::new(
                self.client_secret.expose_secret().to_owned(),
            ))
            .set_token_uri(token_url)
            .set_auth_type(match self.auth_style {
                ClientAuthStyle::BasicHeader => AuthType::BasicAuth,
                ClientAuthStyle::RequestBody => AuthType::RequestBody,
            });
        let endpoint = TokenEndpoint::new(provider, self.http.clone());
        let send = endpoint.sender();
        let span = tracing::debug_span!("oauth2_token", %provider, route = "POST token");
        let response = client
            .exchange_client_credentials()
            .add_scopes(self.scopes.iter().cloned().map(Scope::new))
            .request_async(&send)
            .instrument(span)
            .await
            .map_err(|e| endpoint.error(e))?;
        Ok(AccessToken::new(
            SecretString::from(response.access_token().secret().to_owned()),
            response.expires_in(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[derive(Debug, Default)]
    struct CountingSource {
        fetches: AtomicUsize,
        lifetime: Option<Duration>,
    }

    #[async_trait]
    impl TokenSource for CountingSource {
        async fn fetch(&self) -> Result<AccessToken> {
            let n = self.fetches.fetch_add(1, Ordering::SeqCst) + 1;
            // Slow enough that concurrent callers pile up behind the refresh.
            tokio::time::sleep(Duration::from_millis(50)).await;
            Ok(AccessToken::new(
                SecretString::from(format!("token-{n}")),
                self.lifetime,
            ))
        }
    }

    #[tokio::test(start_paused = true)]
    async fn one_refresh_for_fifty_concurrent_callers() {
        let cache = Arc::new(TokenCache::new(CountingSource {
            lifetime: Some(Duration::from_secs(3600)),
            ..Default::default()
        }));
        let tasks: Vec<_> = (0..50)
            .map(|_| {
                let cache = cache.clone();
                tokio::spawn(async move { cache.token().await.unwrap() })
            })
            .collect();
        for task in tasks {
            let token = task.await.unwrap();
            assert_eq!(token.secret().expose_secret(), "token-1");
        }
        assert_eq!(cache.source().fetches.load(Ordering::SeqCst), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn refreshes_before_expiry() {
        let cache = TokenCache::new(CountingSource {
            lifetime: Some(Duration::from_secs(300)),
            ..Default::default()
        })
        .with_skew(Duration::from_secs(60));
        assert_eq!(
            cache.token().await.unwrap().secret().expose_secret(),
            "token-1"
        );
        tokio::time::advance(Duration::from_secs(200)).await;
        assert_eq!(
            cache.token().await.unwrap().secret().expose_secret(),
            "token-1"
        );
        // 250 s in: 50 s left, under the 60 s skew -> refresh.
        tokio::time::advance(Duration::from_secs(50)).await;
        assert_eq!(
            cache.token().await.unwrap().secret().expose_secret(),
            "token-2"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn invalidate_drops_only_the_rejected_token() {
        let cache = TokenCache::new(CountingSource::default());
        let first = cache.token().await.unwrap();
        assert!(cache.invalidate(&first).await);
        let second = cache.token().await.unwrap();
        assert_eq!(second.secret().expose_secret(), "token-2");
        // A late 401 for the old token must not throw away the new one.
        assert!(cache.invalidate(&first).await);
        assert_eq!(
            cache.token().await.unwrap().secret().expose_secret(),
            "token-2"
        );
        assert_eq!(cache.source().fetches.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn static_token_cannot_be_replaced_and_is_redacted() {
        let token = StaticToken::new(SecretString::from("canary-static-secret"));
        let t = token.token().await.unwrap();
        assert!(!token.invalidate(&t).await);
        for text in [format!("{token:?}"), format!("{t:?}")] {
            assert!(!text.contains("canary-static-secret"), "{text}");
        }
    }
}
