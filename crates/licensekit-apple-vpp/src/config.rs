//! Configuration of an [`AppleVppProvider`](crate::AppleVppProvider).

use std::time::Duration;

use licensekit_core::raw::client::{ClientOptions, VendorDefaults};
use secrecy::SecretString;
use serde::Deserialize;

use crate::wire::MdmInfo;

/// Apple's v2 service.
pub const DEFAULT_BASE_URL: &str = "https://vpp.itunes.apple.com/mdm/v2";

/// How to reach a location. `Debug` never shows the token.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct AppleVppConfig {
    /// The location's content token (sToken), as downloaded.
    pub stoken: SecretString,
    /// Base URL (default Apple's; a simulator's for tests).
    #[serde(default = "default_base_url")]
    pub base_url: String,
    /// This service's identity; claimed for the location if unowned, and checked on every
    /// response so another service's ownership is noticed (spec §2.3).
    #[serde(default)]
    pub mdm_info: Option<MdmInfo>,
    /// Claim a location another service owns (`POST /client/config` with `mdm_info`, which it
    /// then requires). Default `false`: such a location is read but never changed.
    #[serde(default)]
    pub take_over: bool,
    /// Seconds between event status polls (Apple asks for at least 30).
    #[serde(default = "default_poll_interval")]
    pub poll_interval_secs: f64,
    /// Seconds to wait for an event before reporting it `Pending` (Apple: retry after 10 minutes).
    #[serde(default = "default_poll_timeout")]
    pub poll_timeout_secs: f64,
    /// The HTTP client settings shared by every vendor (`[providers.client]`): timeouts,
    /// concurrency (default 5, Apple's documented maximum), rate (default: none — Apple
    /// publishes no rate and answers excess with 9646), retries, extra CA, plain HTTP.
    #[serde(default)]
    pub client: ClientOptions,
}

/// Requests in flight by default: Apple allows at most 5 parallel requests (spec §8).
pub const DEFAULT_CONCURRENCY: usize = 5;

/// What Apple documents, for options left at their defaults: 5 requests in flight, no rate, and
/// on a 9646 throttle with no `Retry-After` every request holds for a cool-down of 1 s, doubling
/// per consecutive throttle up to 30 s (Apple: "back off incrementally/exponentially", §7.3).
pub fn vendor_defaults() -> VendorDefaults {
    VendorDefaults::concurrency(DEFAULT_CONCURRENCY)
        .with_throttle_cooldown(Duration::from_secs(1), Duration::from_secs(30))
}

fn default_base_url() -> String {
    DEFAULT_BASE_URL.into()
}
fn default_poll_interval() -> f64 {
    30.0
}
fn default_poll_timeout() -> f64 {
    600.0
}

impl AppleVppConfig {
    /// A configuration for the location whose content token (sToken, as downloaded from Apple
    /// Business or School Manager) is `stoken`; everything else at its default.
    ///
    /// ```
    /// use licensekit_apple_vpp::AppleVppConfig;
    /// use secrecy::SecretString;
    ///
    /// let config = AppleVppConfig::new(SecretString::from("eyJ0b2tlbiI6…".to_owned()))
    ///     .with_base_url("http://127.0.0.1:8080/mdm/v2")
    ///     .allow_http(true);
    /// assert_eq!(config.base_url, "http://127.0.0.1:8080/mdm/v2");
    /// ```
    pub fn new(stoken: SecretString) -> Self {
        AppleVppConfig {
            stoken,
            base_url: default_base_url(),
            mdm_info: None,
            take_over: false,
            poll_interval_secs: default_poll_interval(),
            poll_timeout_secs: default_poll_timeout(),
            client: ClientOptions::default(),
        }
    }

    /// Points at another base URL (a simulator); the default is [`DEFAULT_BASE_URL`](crate::DEFAULT_BASE_URL).
    pub fn with_base_url(mut self, url: impl Into<String>) -> Self {
        self.base_url = url.into();
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

    /// Requests in flight at once: `client.max_concurrency`, or Apple's 5.
    pub fn max_concurrency(&self) -> usize {
        self.client.max_concurrency_for(&vendor_defaults())
    }

    /// The MDM identity to claim the location for before any change (Apple's `mdmInfo`).
    pub fn with_mdm_info(mut self, info: MdmInfo) -> Self {
        self.mdm_info = Some(info);
        self
    }

    /// Claim the location even if another service owns it (needs `mdm_info`).
    pub fn take_over(mut self, take_over: bool) -> Self {
        self.take_over = take_over;
        self
    }

    /// How often and how long to poll events.
    pub fn with_polling(mut self, interval: Duration, timeout: Duration) -> Self {
        self.poll_interval_secs = interval.as_secs_f64();
        self.poll_timeout_secs = timeout.as_secs_f64();
        self
    }

    pub(crate) fn poll_interval(&self) -> Duration {
        Duration::from_secs_f64(self.poll_interval_secs.max(0.0))
    }

    pub(crate) fn poll_timeout(&self) -> Duration {
        Duration::from_secs_f64(self.poll_timeout_secs.max(0.0))
    }
}
