//! Configuration of a [`SalesforceProvider`](crate::SalesforceProvider).

use secrecy::SecretString;
use serde::Deserialize;

/// How to authenticate. `Debug` never shows a secret.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "flow", rename_all = "snake_case", deny_unknown_fields)]
#[non_exhaustive]
pub enum SalesforceAuth {
    /// A session the caller already has.
    AccessToken {
        instance_url: String,
        access_token: SecretString,
    },
    /// OAuth2 client credentials against the org's My Domain host (the only host that accepts
    /// this flow, spec §3.1).
    ClientCredentials {
        /// `https://{domain}.my.salesforce.com`
        login_url: String,
        client_id: String,
        client_secret: SecretString,
    },
    /// JWT bearer: an assertion signed with the connected app's certificate key.
    JwtBearer {
        /// `https://login.salesforce.com`, `https://test.salesforce.com` or the My Domain host.
        login_url: String,
        client_id: String,
        username: String,
        /// The RSA private key, PEM.
        private_key_pem: SecretString,
        /// `aud` claim; default derived from `login_url`'s host: `https://test.salesforce.com`
        /// for a sandbox (`test.salesforce.com`, `*.sandbox.my.salesforce.com`), else
        /// `https://login.salesforce.com`.
        #[serde(default)]
        audience: Option<String>,
    },
}

/// The default API version: Spring '26 (66.0), generally available everywhere.
pub const DEFAULT_API_VERSION: &str = "66.0";

/// How to reach a Salesforce org.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct SalesforceConfig {
    pub auth: SalesforceAuth,
    /// REST API version, e.g. `66.0` (≥ 42.0, which sObject Collections need).
    #[serde(default = "default_version")]
    pub api_version: String,
    /// Allow plain `http://` (local simulators only).
    #[serde(default)]
    pub allow_http: bool,
    /// Requests in flight at once (default 4).
    #[serde(default = "default_concurrency")]
    pub max_concurrency: usize,
    /// Per-request timeout in seconds (default 60).
    #[serde(default = "default_timeout")]
    pub timeout_secs: u64,
    /// Largest response body accepted, in bytes (default 8 MiB); larger is a `Decode` error.
    #[serde(default = "default_max_response_bytes")]
    pub max_response_bytes: usize,
    /// Requests per minute, when the org's allocation should be spread (default: unpaced).
    #[serde(default)]
    pub requests_per_minute: Option<u32>,
}
fn default_max_response_bytes() -> usize {
    8 * 1024 * 1024
}

fn default_version() -> String {
    DEFAULT_API_VERSION.into()
}
fn default_concurrency() -> usize {
    4
}
fn default_timeout() -> u64 {
    60
}

impl SalesforceConfig {
    pub fn new(auth: SalesforceAuth) -> Self {
        SalesforceConfig {
            auth,
            api_version: default_version(),
            allow_http: false,
            max_concurrency: default_concurrency(),
            timeout_secs: default_timeout(),
            max_response_bytes: default_max_response_bytes(),
            requests_per_minute: None,
        }
    }

    pub fn allow_http(mut self, allow: bool) -> Self {
        self.allow_http = allow;
        self
    }

    pub fn with_api_version(mut self, version: impl Into<String>) -> Self {
        self.api_version = version.into();
        self
    }

    pub fn with_max_concurrency(mut self, n: usize) -> Self {
        self.max_concurrency = n;
        self
    }

    /// Checks the version is `NN.0` and at least 42.0.
    pub(crate) fn validated_version(&self) -> licensekit_core::Result<&str> {
        let v = self.api_version.trim_start_matches('v');
        let ok = v.split_once('.').is_some_and(|(major, minor)| {
            major.parse::<u32>().is_ok_and(|m| m >= 42) && minor == "0"
        });
        if ok {
            Ok(v)
        } else {
            Err(licensekit_core::Error::config(format!(
                "salesforce: api_version `{}` must look like `66.0` and be at least 42.0",
                self.api_version
            )))
        }
    }
}
