//! Configuration of an [`AppleVppProvider`](crate::AppleVppProvider).

use std::time::Duration;

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
    #[serde(default)]
    pub allow_http: bool,
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
    /// Requests in flight at once (Apple: at most 5 parallel page requests).
    #[serde(default = "default_concurrency")]
    pub max_concurrency: usize,
    #[serde(default = "default_timeout")]
    pub timeout_secs: u64,
    /// Largest response body accepted, in bytes (default 8 MiB); larger is a `Decode` error.
    #[serde(default = "default_max_response_bytes")]
    pub max_response_bytes: usize,
    /// Requests per minute (Apple publishes no rate; 9646 answers excess). Default: unpaced.
    #[serde(default)]
    pub requests_per_minute: Option<u32>,
}
fn default_max_response_bytes() -> usize {
    8 * 1024 * 1024
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
fn default_concurrency() -> usize {
    5
}
fn default_timeout() -> u64 {
    60
}

impl AppleVppConfig {
    pub fn new(stoken: SecretString) -> Self {
        AppleVppConfig {
            stoken,
            base_url: default_base_url(),
            allow_http: false,
            mdm_info: None,
            take_over: false,
            poll_interval_secs: default_poll_interval(),
            poll_timeout_secs: default_poll_timeout(),
            max_concurrency: default_concurrency(),
            timeout_secs: default_timeout(),
            max_response_bytes: default_max_response_bytes(),
            requests_per_minute: None,
        }
    }

    pub fn with_base_url(mut self, url: impl Into<String>) -> Self {
        self.base_url = url.into();
        self
    }

    pub fn allow_http(mut self, allow: bool) -> Self {
        self.allow_http = allow;
        self
    }

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
