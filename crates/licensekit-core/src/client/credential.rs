//! Access tokens: where they come from, and a cache that refreshes them once for everyone.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::{Mutex, RwLock};
use tokio::time::Instant;

use crate::error::{Error, Result};
use crate::model::ProviderKind;

/// A bearer token and when it stops working. `Debug` never shows the secret.
#[derive(Clone)]
pub struct AccessToken {
    secret: SecretString,
    expires_at: Option<Instant>,
}

impl AccessToken {
    pub fn new(secret: SecretString, expires_in: Option<Duration>) -> Self {
        AccessToken {
            secret,
            expires_at: expires_in.map(|d| Instant::now() + d),
        }
    }

    pub fn secret(&self) -> &SecretString {
        &self.secret
    }

    pub fn expires_at(&self) -> Option<Instant> {
        self.expires_at
    }

    /// Usable for at least `skew` more.
    fn is_fresh(&self, skew: Duration) -> bool {
        self.expires_at
            .is_none_or(|at| at.saturating_duration_since(Instant::now()) > skew)
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
        let _refresh = self.refreshing.lock().await;
        // Another caller may have refreshed while we waited.
        if let Some(token) = self.fresh_cached().await {
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
    pub fn new(
        provider: ProviderKind,
        http: reqwest::Client,
        token_url: impl Into<String>,
        client_id: impl Into<String>,
        client_secret: SecretString,
    ) -> Self {
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

    pub fn with_scopes(mut self, scopes: Vec<String>) -> Self {
        self.scopes = scopes;
        self
    }

    pub fn with_auth_style(mut self, style: ClientAuthStyle) -> Self {
        self.auth_style = style;
        self
    }
}

/// Runs one `oauth2` crate request through our reqwest client (redirects off), for adapters
/// whose grant needs a custom token response type.
pub async fn send_oauth_request(
    http: &reqwest::Client,
    request: oauth2::HttpRequest,
) -> std::result::Result<oauth2::HttpResponse, reqwest::Error> {
    let request = reqwest::Request::try_from(request)?;
    let response = http.execute(request).await?;
    let mut builder = http::Response::builder().status(response.status());
    for (name, value) in response.headers() {
        builder = builder.header(name, value);
    }
    let body = response.bytes().await?.to_vec();
    Ok(builder
        .body(body)
        .expect("status and headers come from a valid response"))
}

#[async_trait]
impl TokenSource for OAuth2ClientCredentials {
    async fn fetch(&self) -> Result<AccessToken> {
        use oauth2::basic::BasicClient;
        use oauth2::{
            AuthType, ClientId, ClientSecret, RequestTokenError, Scope, TokenResponse, TokenUrl,
        };
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
        let http = self.http.clone();
        let send = move |req: oauth2::HttpRequest| {
            let http = http.clone();
            async move { send_oauth_request(&http, req).await }
        };
        let span = tracing::debug_span!("oauth2_token", %provider, route = "POST token");
        let _guard = span.enter();
        let response = client
            .exchange_client_credentials()
            .add_scopes(self.scopes.iter().cloned().map(Scope::new))
            .request_async(&send)
            .await
            .map_err(|e| match e {
                RequestTokenError::ServerResponse(body) => Error::Unauthenticated {
                    provider,
                    message: format!(
                        "the token endpoint refused the client credentials ({})",
                        body.error()
                    ),
                    source: None,
                },
                RequestTokenError::Request(e) => Error::Transport {
                    provider,
                    message: "could not reach the token endpoint".into(),
                    source: Some(Box::new(e)),
                },
                RequestTokenError::Parse(e, _) => Error::Decode {
                    provider,
                    message: "the token endpoint's answer is not an OAuth2 token response".into(),
                    source: Some(Box::new(e)),
                },
                RequestTokenError::Other(message) => Error::Unauthenticated {
                    provider,
                    message: format!("token request failed: {message}"),
                    source: None,
                },
            })?;
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
