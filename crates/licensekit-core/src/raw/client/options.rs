//! [`ClientOptions`]: the HTTP client settings every vendor shares, one type for builders,
//! `ProviderConfig` and `licensekit.toml` (a nested `client` table: `[providers.client]`).
//!
//! ```toml
//! [[providers]]
//! provider = "genesys"
//! client_id = "…"
//! client_secret_env = "GENESYS_SECRET"
//!
//! [providers.client]
//! timeout = "30s"          # humantime durations: "500ms", "2m", "1h 30m"
//! max_concurrency = 16
//! rate = "off"             # or 300 (per minute), or "10/1s"; absent: the vendor's documented limit
//! max_wait = "60s"
//!
//! [providers.client.retry]
//! attempts = 6
//! total_time = "2m"
//! ```
//!
//! Options left out take the same defaults for every vendor, except `max_concurrency` and `rate`,
//! which default to what each vendor documents ([`VendorDefaults`]; each adapter's README says
//! where it is documented).

use std::fmt;
use std::num::NonZeroU32;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::limit::{PacingPolicy, RequestLimiter, SignalReader, WindowLimit};
use super::retry::RetryConfig;
use super::{HttpClient, HttpClientBuilder};
use crate::error::{Error, Result};
use crate::model::ProviderKind;
use crate::vendor::{bad_value, parse_bool, parse_number};

crate::config_keys! {
    /// The string keys of [`ClientOptions`], for [`ClientOptions::with_config`] and every
    /// adapter's `from_env` (`LICENSEKIT_GENESYS_TIMEOUT=30s`): the config file's
    /// `[providers.client]` keys, with `retry.x` written `retry_x`.
    pub enum ClientConfigKey {
        /// `allow_http`: plain `http://` (local simulators only).
        AllowHttp = "allow_http",
        /// `ca_file`: an extra trusted CA certificate (PEM).
        CaFile = "ca_file",
        /// `timeout`: whole-request timeout (`"30s"`).
        Timeout = "timeout",
        /// `connect_timeout`: connection timeout.
        ConnectTimeout = "connect_timeout",
        /// `max_concurrency`: requests in flight at once.
        MaxConcurrency = "max_concurrency",
        /// `max_response_bytes`: largest response body accepted.
        MaxResponseBytes = "max_response_bytes",
        /// `rate`: requests per minute, `"N/DURATION"` or `"off"`.
        Rate = "rate",
        /// `max_wait`: the longest single wait.
        MaxWait = "max_wait",
        /// `retry_attempts`: attempts of one request.
        RetryAttempts = "retry_attempts",
        /// `retry_total_time`: time budget of one request's retries.
        RetryTotalTime = "retry_total_time",
        /// `retry_initial_backoff`: the first backoff.
        RetryInitialBackoff = "retry_initial_backoff",
        /// `retry_max_backoff`: the longest backoff.
        RetryMaxBackoff = "retry_max_backoff",
    }
}

/// The client settings shared by every vendor. `Default` is the same for all of them; fields
/// that are `None` (or [`Rate::VendorDefault`]) take the vendor's documented value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct ClientOptions {
    /// Allow plain `http://` (local simulators only; credentials would travel unencrypted).
    pub allow_http: bool,
    /// An extra trusted CA certificate (PEM, one or more certificates), on top of the system's
    /// roots: a sandbox's self-signed TLS, a corporate proxy.
    pub ca_file: Option<PathBuf>,
    /// Whole-request timeout (default 60 s).
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// Connection timeout (default 10 s).
    #[serde(with = "humantime_serde")]
    pub connect_timeout: Duration,
    /// Requests in flight at once; `None`: the vendor's default.
    pub max_concurrency: Option<usize>,
    /// Largest response body accepted, in bytes (default 8 MiB); larger is a `Decode` error.
    pub max_response_bytes: usize,
    /// The request rate: a number of requests per minute, `"N/DURATION"` (`"10/1s"`),
    /// `"off"`, or absent for the vendor's documented limit.
    #[serde(alias = "requests_per_minute")]
    pub rate: Rate,
    /// The longest any single wait may be — for the rate limit, a server's `Retry-After`, a
    /// backoff (default 60 s). A server asking for more gets `RateLimited` at once.
    #[serde(with = "humantime_serde")]
    pub max_wait: Duration,
    /// Retries of one request.
    pub retry: RetryOptions,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            allow_http: false,
            ca_file: None,
            timeout: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(10),
            max_concurrency: None,
            max_response_bytes: 8 * 1024 * 1024,
            rate: Rate::VendorDefault,
            max_wait: Duration::from_secs(60),
            retry: RetryOptions::default(),
        }
    }
}

/// Retries of one request: every attempt and wait inside `attempts` and `total_time`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct RetryOptions {
    /// Most attempts in total, the first included (default 6; 1 = no retries).
    pub attempts: u32,
    /// Most time from the first attempt (default 2 min); no wait may run past it.
    #[serde(with = "humantime_serde")]
    pub total_time: Duration,
    /// First backoff delay (default 200 ms), doubling per retry with jitter.
    #[serde(with = "humantime_serde")]
    pub initial_backoff: Duration,
    /// Largest backoff delay (default 15 s).
    #[serde(with = "humantime_serde")]
    pub max_backoff: Duration,
}

impl Default for RetryOptions {
    fn default() -> Self {
        let d = RetryConfig::default();
        RetryOptions {
            attempts: d.max_attempts,
            total_time: d.max_elapsed,
            initial_backoff: d.initial_backoff,
            max_backoff: d.max_backoff,
        }
    }
}

impl RetryOptions {
    /// Attempts per request in all, the first included.
    pub fn with_attempts(mut self, attempts: u32) -> Self {
        self.attempts = attempts;
        self
    }

    /// Gives up retrying once this much time has passed since the first attempt.
    pub fn with_total_time(mut self, total: Duration) -> Self {
        self.total_time = total;
        self
    }

    /// Backoff starts at `initial` and doubles up to `max` between attempts (jittered).
    pub fn with_backoff(mut self, initial: Duration, max: Duration) -> Self {
        self.initial_backoff = initial;
        self.max_backoff = max;
        self
    }
}

/// A request rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Rate {
    /// The vendor's documented limit (Genesys: 300 per 60 s per token), corrected by what the
    /// server announces.
    #[default]
    VendorDefault,
    /// No client-side limit. The server's explicit holds (`Retry-After`, a window it reports
    /// full) are still obeyed: ignoring them would only collect 429s.
    Off,
    /// At most this many requests in any window of this length; the server can lower it.
    Limit(WindowLimit),
}

impl Rate {
    /// At most `n` requests per minute; `0` is `Off`.
    pub fn per_minute(n: u32) -> Rate {
        NonZeroU32::new(n).map_or(Rate::Off, |n| Rate::Limit(WindowLimit::per_minute(n)))
    }

    /// Parses `off`, `default`, `N` (per minute) or `N/DURATION` (`10/1s`, `300/1m`).
    pub fn parse(text: &str) -> std::result::Result<Rate, String> {
        let text = text.trim();
        match text.to_ascii_lowercase().as_str() {
            "off" | "none" | "unlimited" => return Ok(Rate::Off),
            "default" => return Ok(Rate::VendorDefault),
            _ => {}
        }
        let (count, per) = text.split_once('/').unwrap_or((text, "1m"));
        let count: u32 = count.trim().parse().map_err(|_| {
            format!(
                "`{text}` is not a rate: write a number of requests per minute (300), \
                 requests per duration (\"10/1s\"), or \"off\""
            )
        })?;
        let count = NonZeroU32::new(count).ok_or_else(|| {
            "a rate must allow at least 1 request; write \"off\" for none".to_owned()
        })?;
        let per = per.trim();
        let window = humantime::parse_duration(per)
            .or_else(|_| humantime::parse_duration(&format!("1{per}")))
            .map_err(|e| format!("`{per}` in rate `{text}` is not a duration: {e}"))?;
        if window.is_zero() {
            return Err(format!(
                "the window of rate `{text}` must be longer than zero"
            ));
        }
        Ok(Rate::Limit(WindowLimit::new(count, window)))
    }
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rate::VendorDefault => f.write_str("default"),
            Rate::Off => f.write_str("off"),
            Rate::Limit(limit) if limit.window == Duration::from_secs(60) => {
                write!(f, "{}", limit.allowance)
            }
            Rate::Limit(limit) => write!(
                f,
                "{}/{}",
                limit.allowance,
                humantime::format_duration(limit.window)
            ),
        }
    }
}

impl Serialize for Rate {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        match self {
            Rate::Limit(limit) if limit.window == Duration::from_secs(60) => {
                serializer.serialize_u32(limit.allowance.get())
            }
            other => serializer.serialize_str(&other.to_string()),
        }
    }
}

impl<'de> Deserialize<'de> for Rate {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Rate, D::Error> {
        struct RateVisitor;
        impl Visitor<'_> for RateVisitor {
            type Value = Rate;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(
                    "requests per minute (300), requests per duration (\"10/1s\"), or \"off\"",
                )
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> std::result::Result<Rate, E> {
                match u32::try_from(n).ok().and_then(NonZeroU32::new) {
                    Some(n) => Ok(Rate::Limit(WindowLimit::per_minute(n))),
                    None if n == 0 => Err(E::custom(
                        "rate = 0 would allow no request; write rate = \"off\" for no pacing",
                    )),
                    None => Err(E::custom(format!("rate = {n} is too large"))),
                }
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> std::result::Result<Rate, E> {
                let n = u64::try_from(n).map_err(|_| {
                    E::custom(format!(
                        "rate = {n} is negative; write a number of requests per minute or \"off\""
                    ))
                })?;
                self.visit_u64(n)
            }
            fn visit_str<E: de::Error>(self, s: &str) -> std::result::Result<Rate, E> {
                Rate::parse(s).map_err(E::custom)
            }
            fn visit_unit<E: de::Error>(self) -> std::result::Result<Rate, E> {
                Err(E::custom(
                    "rate cannot be null; write rate = \"off\" for no pacing",
                ))
            }
            fn visit_none<E: de::Error>(self) -> std::result::Result<Rate, E> {
                self.visit_unit()
            }
        }
        deserializer.deserialize_any(RateVisitor)
    }
}

/// What a vendor documents, for the options left at their defaults.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct VendorDefaults {
    /// Requests in flight at once, as the vendor documents or advises.
    pub max_concurrency: usize,
    /// The documented rate window, if the vendor has one.
    pub window: Option<WindowLimit>,
    /// Hold every request after a throttle that names no delay: (initial, max).
    pub throttle_cooldown: Option<(Duration, Duration)>,
}

impl VendorDefaults {
    /// `max_concurrency` in flight, no documented rate.
    pub fn concurrency(max_concurrency: usize) -> Self {
        VendorDefaults {
            max_concurrency,
            window: None,
            throttle_cooldown: None,
        }
    }

    /// Adds the vendor's documented rate window.
    pub fn with_window(mut self, window: WindowLimit) -> Self {
        self.window = Some(window);
        self
    }

    /// Adds a cooldown after throttles that name no delay: `initial`, doubling up to `max`.
    pub fn with_throttle_cooldown(mut self, initial: Duration, max: Duration) -> Self {
        self.throttle_cooldown = Some((initial, max));
        self
    }
}

impl ClientOptions {
    /// Allows plain `http://` base URLs (local simulators only).
    pub fn with_allow_http(mut self, allow: bool) -> Self {
        self.allow_http = allow;
        self
    }

    /// Trusts the CA certificates in this PEM file on top of the system's roots.
    pub fn with_ca_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.ca_file = Some(path.into());
        self
    }

    /// Whole-request timeout.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Timeout for establishing a connection.
    pub fn with_connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Requests in flight at once; `None` (the default) takes the vendor's documented figure.
    pub fn with_max_concurrency(mut self, n: usize) -> Self {
        self.max_concurrency = Some(n);
        self
    }

    /// Largest response body accepted, in bytes; larger is a decode error.
    pub fn with_max_response_bytes(mut self, n: usize) -> Self {
        self.max_response_bytes = n;
        self
    }

    /// Client-side pacing (requests per time); the server's signals still hold.
    pub fn with_rate(mut self, rate: Rate) -> Self {
        self.rate = rate;
        self
    }

    /// The longest a request waits for a pacing slot before failing.
    pub fn with_max_wait(mut self, max_wait: Duration) -> Self {
        self.max_wait = max_wait;
        self
    }

    /// The retry policy.
    pub fn with_retry(mut self, retry: RetryOptions) -> Self {
        self.retry = retry;
        self
    }

    /// Sets one option from its string form, as `from_env` and string config keys do:
    /// durations in humantime form (`"30s"`), `rate` as in the config file (`"120"`, `"10/1s"`,
    /// `"off"`), booleans as `true`/`false` (or `1`/`0`).
    ///
    /// ```
    /// use licensekit_core::raw::client::{ClientConfigKey, ClientOptions, Rate};
    /// use std::time::Duration;
    ///
    /// let options = ClientOptions::default()
    ///     .with_config(ClientConfigKey::Timeout, "30s").unwrap()
    ///     .with_config("rate".parse().unwrap(), "off").unwrap();
    /// assert_eq!(options.timeout, Duration::from_secs(30));
    /// assert_eq!(options.rate, Rate::Off);
    /// assert!(ClientOptions::default().with_config(ClientConfigKey::Timeout, "soon").is_err());
    /// ```
    pub fn with_config(mut self, key: ClientConfigKey, value: &str) -> Result<Self> {
        self.set(key, value)?;
        Ok(self)
    }

    /// [`with_config`](Self::with_config) in place.
    pub fn set(&mut self, key: ClientConfigKey, value: &str) -> Result<()> {
        let duration = || {
            humantime::parse_duration(value.trim())
                .map_err(|_| bad_value(key, "a duration such as \"30s\", \"500ms\" or \"2m\""))
        };
        match key {
            ClientConfigKey::AllowHttp => self.allow_http = parse_bool(key, value)?,
            ClientConfigKey::CaFile => self.ca_file = Some(PathBuf::from(value)),
            ClientConfigKey::Timeout => self.timeout = duration()?,
            ClientConfigKey::ConnectTimeout => self.connect_timeout = duration()?,
            ClientConfigKey::MaxConcurrency => {
                self.max_concurrency = Some(parse_number(key, value)?)
            }
            ClientConfigKey::MaxResponseBytes => {
                self.max_response_bytes = parse_number(key, value)?
            }
            ClientConfigKey::Rate => {
                self.rate =
                    Rate::parse(value).map_err(|e| Error::config(format!("`{key}`: {e}")))?
            }
            ClientConfigKey::MaxWait => self.max_wait = duration()?,
            ClientConfigKey::RetryAttempts => self.retry.attempts = parse_number(key, value)?,
            ClientConfigKey::RetryTotalTime => self.retry.total_time = duration()?,
            ClientConfigKey::RetryInitialBackoff => self.retry.initial_backoff = duration()?,
            ClientConfigKey::RetryMaxBackoff => self.retry.max_backoff = duration()?,
        }
        Ok(())
    }

    /// Refuses settings that cannot work, naming the provider and the option.
    pub fn validate(&self, provider: ProviderKind) -> Result<()> {
        let bad = |what: String| Err(Error::config(format!("{provider}: client.{what}")));
        if self.max_concurrency == Some(0) {
            return bad("max_concurrency must be at least 1".into());
        }
        if self.timeout.is_zero() {
            return bad("timeout must be longer than zero".into());
        }
        if self.connect_timeout.is_zero() {
            return bad("connect_timeout must be longer than zero".into());
        }
        if self.max_response_bytes == 0 {
            return bad("max_response_bytes must be at least 1".into());
        }
        if self.retry.attempts == 0 {
            return bad("retry.attempts must be at least 1 (1 = no retries)".into());
        }
        if self.retry.initial_backoff > self.retry.max_backoff {
            return bad("retry.initial_backoff must not exceed retry.max_backoff".into());
        }
        Ok(())
    }

    /// Requests in flight at once for a vendor with these defaults.
    pub fn max_concurrency_for(&self, vendor: &VendorDefaults) -> usize {
        self.max_concurrency
            .unwrap_or(vendor.max_concurrency)
            .max(1)
    }

    /// The pacing these options ask for, over the vendor's defaults.
    pub fn pacing(&self, vendor: &VendorDefaults) -> PacingPolicy {
        let policy = match self.rate {
            Rate::VendorDefault => match vendor.window {
                Some(window) => PacingPolicy::documented(window),
                None => PacingPolicy::unpaced(),
            },
            Rate::Off => PacingPolicy::unpaced(),
            Rate::Limit(limit) => PacingPolicy::window(limit),
        };
        let policy = policy.with_max_wait(self.max_wait);
        match vendor.throttle_cooldown {
            Some((initial, max)) => {
                policy.with_throttle_cooldown(initial.min(self.max_wait), max.min(self.max_wait))
            }
            None => policy,
        }
    }

    /// The limiter for a vendor with these defaults, reading its signals with `reader`.
    pub fn limiter(
        &self,
        vendor: &VendorDefaults,
        reader: Arc<dyn SignalReader>,
    ) -> RequestLimiter {
        RequestLimiter::new(
            self.max_concurrency_for(vendor),
            self.pacing(vendor),
            reader,
        )
    }

    /// The retry policy: `retry`, with `max_wait` as the longest single wait (a `Retry-After`,
    /// a server hold) a request takes before giving up with `RateLimited`.
    pub fn retry_config(&self) -> RetryConfig {
        let mut config = RetryConfig::default()
            .with_max_attempts(self.retry.attempts)
            .with_max_elapsed(self.retry.total_time)
            .with_backoff(self.retry.initial_backoff, self.retry.max_backoff);
        config.max_retry_after = self.max_wait;
        config.max_wait = self.max_wait;
        config
    }

    /// The extra trusted certificates of `ca_file`, if set; an unreadable file or one with no
    /// PEM certificate is a configuration error naming the file.
    pub fn root_certificates(&self, provider: ProviderKind) -> Result<Vec<reqwest::Certificate>> {
        let Some(path) = &self.ca_file else {
            return Ok(Vec::new());
        };
        let shown = path.display();
        let pem = std::fs::read(path).map_err(|e| Error::Config {
            message: format!("{provider}: cannot read client.ca_file `{shown}`"),
            source: Some(Box::new(e)),
        })?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| Error::Config {
            message: format!("{provider}: client.ca_file `{shown}` is not a PEM certificate"),
            source: Some(Box::new(e)),
        })?;
        if certs.is_empty() {
            return Err(Error::config(format!(
                "{provider}: client.ca_file `{shown}` holds no PEM certificate \
                 (expected -----BEGIN CERTIFICATE-----)"
            )));
        }
        Ok(certs)
    }

    /// An [`HttpClient`] builder for `base_url` with these options applied (HTTPS rule, extra
    /// CA, timeouts, body limit, retry policy). The caller adds the limiter, classifier and
    /// credentials.
    pub fn client_builder(
        &self,
        provider: ProviderKind,
        base_url: impl Into<String>,
    ) -> Result<HttpClientBuilder> {
        self.validate(provider)?;
        Ok(HttpClient::builder(provider, base_url)
            .allow_http(self.allow_http)
            .root_certificates(self.root_certificates(provider)?)
            .timeout(self.timeout)
            .connect_timeout(self.connect_timeout)
            .max_body_bytes(self.max_response_bytes)
            .retry(self.retry_config()))
    }
}

pub use crate::vendor::moved_key_hint;

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: serde_json::Value) -> std::result::Result<ClientOptions, String> {
        serde_json::from_value(json).map_err(|e| e.to_string())
    }

    #[test]
    fn durations_rates_and_defaults() {
        let o = parse(serde_json::json!({
            "timeout": "30s",
            "connect_timeout": "500ms",
            "rate": "off",
            "max_wait": "2m",
            "retry": {"attempts": 3, "total_time": "1m 30s", "initial_backoff": "100ms"},
        }))
        .unwrap();
        assert_eq!(o.timeout, Duration::from_secs(30));
        assert_eq!(o.connect_timeout, Duration::from_millis(500));
        assert_eq!(o.rate, Rate::Off);
        assert_eq!(o.max_wait, Duration::from_secs(120));
        assert_eq!(o.retry.attempts, 3);
        assert_eq!(o.retry.total_time, Duration::from_secs(90));
        assert_eq!(o.retry.max_backoff, Duration::from_secs(15), "default kept");
        assert_eq!(
            parse(serde_json::json!({})).unwrap(),
            ClientOptions::default()
        );

        let rate = |v| parse(serde_json::json!({ "rate": v })).map(|o| o.rate);
        assert_eq!(rate(serde_json::json!(300)).unwrap(), Rate::per_minute(300));
        assert_eq!(
            rate(serde_json::json!("10/1s")).unwrap(),
            Rate::Limit(WindowLimit::new(
                NonZeroU32::new(10).unwrap(),
                Duration::from_secs(1)
            ))
        );
        assert_eq!(
            rate(serde_json::json!("300/min")).unwrap(),
            Rate::per_minute(300)
        );
        assert_eq!(
            rate(serde_json::json!("default")).unwrap(),
            Rate::VendorDefault
        );
        assert!(rate(serde_json::json!(0)).unwrap_err().contains("\"off\""));
        assert!(
            rate(serde_json::json!(null))
                .unwrap_err()
                .contains("\"off\"")
        );
        assert!(
            rate(serde_json::json!(-1))
                .unwrap_err()
                .contains("negative")
        );
        assert!(rate(serde_json::json!("fast")).is_err());
        // The old key name is accepted inside the table.
        let o = parse(serde_json::json!({"requests_per_minute": 120})).unwrap();
        assert_eq!(o.rate, Rate::per_minute(120));
        // Round trip.
        for r in [
            Rate::Off,
            Rate::per_minute(300),
            Rate::parse("10/1s").unwrap(),
        ] {
            let o = ClientOptions::default().with_rate(r);
            let back: ClientOptions =
                serde_json::from_value(serde_json::to_value(&o).unwrap()).unwrap();
            assert_eq!(back, o);
        }
    }

    #[test]
    fn unknown_keys_are_named() {
        let err = parse(serde_json::json!({"timout": "30s"})).unwrap_err();
        assert!(err.contains("timout"), "{err}");
        let err = parse(serde_json::json!({"retry": {"tries": 3}})).unwrap_err();
        assert!(err.contains("tries"), "{err}");
        let err = parse(serde_json::json!({"timeout": 30})).unwrap_err();
        assert!(err.contains("duration") || err.contains("string"), "{err}");
    }

    #[test]
    fn pacing_follows_the_vendor_unless_told_otherwise() {
        let genesys = VendorDefaults::concurrency(16)
            .with_window(WindowLimit::per_minute(NonZeroU32::new(300).unwrap()));
        let o = ClientOptions::default();
        assert_eq!(o.max_concurrency_for(&genesys), 16);
        let p = o.pacing(&genesys);
        assert!(p.adopt_announced);
        assert_eq!(p.window.unwrap().allowance.get(), 300);
        let p = o.clone().with_rate(Rate::Off).pacing(&genesys);
        assert_eq!(p.window, None);
        let p = o.clone().with_rate(Rate::per_minute(100)).pacing(&genesys);
        assert!(!p.adopt_announced);
        assert_eq!(p.window.unwrap().allowance.get(), 100);
        let r = o.with_max_wait(Duration::from_secs(5)).retry_config();
        assert_eq!(r.max_retry_after, Duration::from_secs(5));
        assert_eq!(r.max_wait, Duration::from_secs(5));
    }

    #[test]
    fn validation_and_ca_file_errors_name_the_option() {
        let e = ClientOptions::default()
            .with_max_concurrency(0)
            .validate(ProviderKind::from_static("genesys"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("client.max_concurrency"), "{e}");
        let e = ClientOptions::default()
            .with_ca_file("/nonexistent/ca.pem")
            .root_certificates(ProviderKind::from_static("genesys"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("/nonexistent/ca.pem"), "{e}");
        let dir = std::env::temp_dir().join(format!("lk-ca-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let empty = dir.join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let e = ClientOptions::default()
            .with_ca_file(&empty)
            .root_certificates(ProviderKind::from_static("genesys"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("no PEM certificate"), "{e}");
        let good = dir.join("ca.pem");
        std::fs::write(&good, TEST_CA).unwrap();
        let options = ClientOptions::default().with_ca_file(&good);
        assert_eq!(
            options
                .root_certificates(ProviderKind::from_static("genesys"))
                .unwrap()
                .len(),
            1
        );
        options
            .client_builder(
                ProviderKind::from_static("genesys"),
                "https://example.invalid",
            )
            .unwrap()
            .build()
            .expect("a client trusting the extra CA builds");
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn moved_keys_say_what_to_write() {
        use serde_json::json;
        let hint = |k, v| moved_key_hint(k, &v).unwrap();
        assert!(hint("timeout_secs", json!(45)).contains("timeout = \"45s\""));
        assert!(hint("requests_per_minute", json!(null)).contains("rate = \"off\""));
        assert!(hint("requests_per_minute", json!(120)).contains("rate = 120"));
        assert!(hint("allow_http", json!(true)).contains("[providers.client]"));
        assert!(hint("honor_rate_limit_headers", json!(false)).contains("rate = \"off\""));
        assert_eq!(moved_key_hint("page_size", &json!(100)), None);
    }

    /// A self-signed CA certificate (test only; its key was thrown away).
    const TEST_CA: &str = include_str!("testdata/test-ca.pem");
}
