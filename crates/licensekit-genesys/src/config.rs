//! Configuration and construction of a [`GenesysProvider`](crate::GenesysProvider).

use std::collections::BTreeMap;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use licensekit_core::client::{
    HttpClient, OAuth2ClientCredentials, RateLimit, RequestLimiter, RetryConfig, TokenCache,
    check_url,
};
use licensekit_core::{Error, ProviderKind, Result};
use secrecy::SecretString;
use serde::Deserialize;

use crate::error::GenesysErrors;
use crate::region::{Region, login_base_for};

/// How to reach and authenticate against a Genesys Cloud org. `Debug` never shows the secret.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct GenesysConfig {
    /// The org's region (default `us_east_1`). Ignored when `base_url` is set.
    #[serde(default)]
    pub region: Region,
    /// API base URL override (a simulator, a future region).
    #[serde(default)]
    pub base_url: Option<String>,
    /// Login base URL override; by default derived from the API URL as the SDKs do.
    #[serde(default)]
    pub login_url: Option<String>,
    /// OAuth client id (client-credentials grant).
    pub client_id: String,
    pub client_secret: SecretString,
    /// Allow plain `http://` (local simulators only).
    #[serde(default)]
    pub allow_http: bool,
    /// Users per page when listing (default 100; the simulator and third-party clients use 100).
    #[serde(default = "default_page_size")]
    pub page_size: u32,
    /// User ids per batch request (default 100; Genesys documents no maximum).
    #[serde(default = "default_max_batch")]
    pub max_batch: usize,
    /// Requests per minute (default 300, the per-token limit); `null` disables pacing.
    #[serde(default = "default_rpm")]
    pub requests_per_minute: Option<u32>,
    /// Requests in flight at once (default 4).
    #[serde(default = "default_concurrency")]
    pub max_concurrency: usize,
    /// Purchased seats per license id, which the API does not report. Deprecated: give seats
    /// in a contract (`licensekit::Contract`, `[[contracts]]` in `licensekit.toml`), which also
    /// carries price and renewal; still honoured (provenance `configured`).
    #[serde(default)]
    pub seat_totals: BTreeMap<String, u64>,
    /// Per-request timeout in seconds (default 30).
    #[serde(default = "default_timeout")]
    pub timeout_secs: u64,
    /// Pause when `inin-ratelimit-count` reaches `inin-ratelimit-allowed`, until
    /// `inin-ratelimit-reset` (default true).
    #[serde(default = "default_true")]
    pub honor_rate_limit_headers: bool,
    /// Largest response body accepted, in bytes (default 8 MiB); larger is a `Decode` error.
    #[serde(default = "default_max_response_bytes")]
    pub max_response_bytes: usize,
}
fn default_max_response_bytes() -> usize {
    8 * 1024 * 1024
}

fn default_true() -> bool {
    true
}

fn default_page_size() -> u32 {
    100
}
fn default_max_batch() -> usize {
    100
}
fn default_rpm() -> Option<u32> {
    Some(300)
}
fn default_concurrency() -> usize {
    4
}
fn default_timeout() -> u64 {
    30
}

impl GenesysConfig {
    pub fn new(client_id: impl Into<String>, client_secret: SecretString) -> Self {
        GenesysConfig {
            region: Region::default(),
            base_url: None,
            login_url: None,
            client_id: client_id.into(),
            client_secret,
            allow_http: false,
            page_size: default_page_size(),
            max_batch: default_max_batch(),
            requests_per_minute: default_rpm(),
            max_concurrency: default_concurrency(),
            seat_totals: BTreeMap::new(),
            timeout_secs: default_timeout(),
            honor_rate_limit_headers: true,
            max_response_bytes: default_max_response_bytes(),
        }
    }

    pub fn with_region(mut self, region: Region) -> Self {
        self.region = region;
        self
    }

    /// Points at a custom base URL (a simulator): the token endpoint is derived from it.
    pub fn with_base_url(mut self, url: impl Into<String>) -> Self {
        self.base_url = Some(url.into());
        self
    }

    pub fn allow_http(mut self, allow: bool) -> Self {
        self.allow_http = allow;
        self
    }

    pub fn with_page_size(mut self, n: u32) -> Self {
        self.page_size = n;
        self
    }

    pub fn with_max_batch(mut self, n: usize) -> Self {
        self.max_batch = n;
        self
    }

    pub fn with_requests_per_minute(mut self, rpm: Option<u32>) -> Self {
        self.requests_per_minute = rpm;
        self
    }

    /// Per-request timeout.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout_secs = timeout.as_secs().max(1);
        self
    }

    pub fn with_rate_limit_headers(mut self, honor: bool) -> Self {
        self.honor_rate_limit_headers = honor;
        self
    }

    pub fn with_seat_total(mut self, license_id: impl Into<String>, seats: u64) -> Self {
        self.seat_totals.insert(license_id.into(), seats);
        self
    }

    /// The API base URL in use.
    pub fn api_base_url(&self) -> String {
        self.base_url
            .clone()
            .unwrap_or_else(|| self.region.api_base_url())
    }

    /// The token endpoint in use: `{login}/oauth/token`.
    pub fn token_url(&self) -> String {
        let login = match (&self.login_url, &self.base_url) {
            (Some(login), _) => login.trim_end_matches('/').to_owned(),
            (None, Some(base)) => login_base_for(base).trim_end_matches('/').to_owned(),
            (None, None) => self.region.login_base_url(),
        };
        format!("{login}/oauth/token")
    }

    fn validate(&self) -> Result<()> {
        let bad = |what: &str| Err(Error::config(format!("genesys: {what}")));
        if self.client_id.trim().is_empty() {
            return bad("client_id is empty");
        }
        if self.page_size == 0 || self.page_size > 500 {
            return bad("page_size must be between 1 and 500");
        }
        if self.max_batch == 0 {
            return bad("max_batch must be at least 1");
        }
        if self.requests_per_minute == Some(0) {
            return bad("requests_per_minute must be at least 1 (or null for no pacing)");
        }
        Ok(())
    }

    /// Builds the HTTP client: OAuth2 client credentials with a shared token cache, the rate
    /// limit and concurrency cap, the Genesys error reader.
    pub(crate) fn http_client(&self, retry: RetryConfig) -> Result<HttpClient> {
        self.validate()?;
        let token_url = self.token_url();
        check_url(ProviderKind::Genesys, &token_url, self.allow_http)?;
        let rate = self.requests_per_minute.map(|rpm| {
            let rpm = NonZeroU32::new(rpm).expect("validated");
            // No burst: a fixed 60 s window on the vendor side must never see more than `rpm`.
            RateLimit::per_minute(rpm, NonZeroU32::MIN)
        });
        let pacer: Option<Arc<dyn licensekit_core::client::Pacer>> =
            if rate.is_none() && !self.honor_rate_limit_headers {
                None
            } else {
                Some(Arc::new(crate::pacing::GenesysPacer::new(
                    rate,
                    self.honor_rate_limit_headers,
                )))
            };
        let base = HttpClient::builder(ProviderKind::Genesys, self.api_base_url())
            .allow_http(self.allow_http)
            .timeout(Duration::from_secs(self.timeout_secs))
            .retry(retry)
            .limiter(RequestLimiter::new(self.max_concurrency, pacer))
            .classifier(Arc::new(GenesysErrors))
            .max_body_bytes(self.max_response_bytes)
            .build()?;
        let oauth = OAuth2ClientCredentials::new(
            ProviderKind::Genesys,
            base.reqwest().clone(),
            token_url,
            self.client_id.clone(),
            self.client_secret.clone(),
        );
        Ok(base.with_credentials(Arc::new(TokenCache::new(oauth))))
    }
}
