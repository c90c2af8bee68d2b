//! Configuration of a [`GenesysProvider`](crate::GenesysProvider): the serde config and its
//! builder methods. The HTTP client is built from it in `client.rs`.

use std::collections::BTreeMap;

use licensekit_core::raw::client::ClientOptions;
use licensekit_core::{Error, Result};
use secrecy::SecretString;
use serde::Deserialize;

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
    /// OAuth client secret (never printed by `Debug`).
    pub client_secret: SecretString,
    /// Users per page when listing (default 100; the simulator and third-party clients use 100).
    #[serde(default = "default_page_size")]
    pub page_size: u32,
    /// User ids per batch request (default 100; Genesys documents no maximum).
    #[serde(default = "default_max_batch")]
    pub max_batch: usize,
    /// Purchased seats per license id, which the API does not report. Deprecated: give seats
    /// in a contract (`licensekit::Contract`, `[[contracts]]` in `licensekit.toml`), which also
    /// carries price and renewal; still honoured (provenance `configured`).
    #[serde(default)]
    pub seat_totals: BTreeMap<String, u64>,
    /// The HTTP client settings shared by every vendor (`[providers.client]`): timeouts,
    /// concurrency (default 16), rate (default: the documented 300 per 60 s, corrected by the
    /// `inin-ratelimit-*` headers), retries, extra CA, plain HTTP.
    #[serde(default)]
    pub client: ClientOptions,
}

fn default_page_size() -> u32 {
    100
}
fn default_max_batch() -> usize {
    100
}

impl GenesysConfig {
    /// A configuration for an OAuth client (client-credentials grant) in the default region.
    ///
    /// ```
    /// use licensekit_genesys::{GenesysConfig, Region};
    /// use secrecy::SecretString;
    ///
    /// let config = GenesysConfig::new("client-id", SecretString::from("secret".to_owned()))
    ///     .with_region(Region::EuWest1)
    ///     .with_page_size(200);
    /// assert_eq!(config.api_base_url(), "https://api.mypurecloud.ie");
    /// assert_eq!(config.token_url(), "https://login.mypurecloud.ie/oauth/token");
    /// ```
    pub fn new(client_id: impl Into<String>, client_secret: SecretString) -> Self {
        GenesysConfig {
            region: Region::default(),
            base_url: None,
            login_url: None,
            client_id: client_id.into(),
            client_secret,
            page_size: default_page_size(),
            max_batch: default_max_batch(),
            seat_totals: BTreeMap::new(),
            client: ClientOptions::default(),
        }
    }

    /// The org's region (API and login hosts follow from it).
    pub fn with_region(mut self, region: Region) -> Self {
        self.region = region;
        self
    }

    /// Points at a custom base URL (a simulator): the token endpoint is derived from it.
    pub fn with_base_url(mut self, url: impl Into<String>) -> Self {
        self.base_url = Some(url.into());
        self
    }

    /// The shared client settings (timeouts, concurrency, rate, retries, CA, plain HTTP).
    pub fn with_client_options(mut self, client: ClientOptions) -> Self {
        self.client = client;
        self
    }

    /// Shorthand for `client.allow_http`: plain `http://` (local simulators only).
    pub fn allow_http(mut self, allow: bool) -> Self {
        self.client.allow_http = allow;
        self
    }

    /// Users per page when listing (1–500).
    pub fn with_page_size(mut self, n: u32) -> Self {
        self.page_size = n;
        self
    }

    /// User ids per batch request.
    pub fn with_max_batch(mut self, n: usize) -> Self {
        self.max_batch = n;
        self
    }

    /// Purchased seats of a license id (deprecated: give seats in a contract instead).
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

    pub(crate) fn validate(&self) -> Result<()> {
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
        self.client.validate(crate::KIND)
    }

    /// Requests in flight at once: `client.max_concurrency`, or the default 16.
    pub fn max_concurrency(&self) -> usize {
        self.client
            .max_concurrency_for(&crate::pacing::vendor_defaults())
    }
}
