//! Configuration of a [`SalesforceProvider`](crate::SalesforceProvider).

use licensekit_core::ClientOptions;
use secrecy::SecretString;
use serde::Deserialize;

/// How to authenticate. `Debug` never shows a secret.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "flow", rename_all = "snake_case", deny_unknown_fields)]
#[non_exhaustive]
pub enum SalesforceAuth {
    /// A session the caller already has.
    AccessToken {
        /// The org's instance URL (`https://{domain}.my.salesforce.com`).
        instance_url: String,
        /// The session id.
        access_token: SecretString,
    },
    /// OAuth2 client credentials against the org's My Domain host (the only host that accepts
    /// this flow, spec §3.1).
    ClientCredentials {
        /// `https://{domain}.my.salesforce.com`
        login_url: String,
        /// The connected app's consumer key.
        client_id: String,
        /// The connected app's consumer secret.
        client_secret: SecretString,
    },
    /// JWT bearer: an assertion signed with the connected app's certificate key.
    JwtBearer {
        /// `https://login.salesforce.com`, `https://test.salesforce.com` or the My Domain host.
        login_url: String,
        /// The connected app's consumer key.
        client_id: String,
        /// The Salesforce user the token is issued for.
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
    /// How to authenticate.
    pub auth: SalesforceAuth,
    /// REST API version, e.g. `66.0` (≥ 42.0, which sObject Collections need).
    #[serde(default = "default_version")]
    pub api_version: String,
    /// Share of the org's daily API allocation a bulk change must leave unspent, in percent
    /// (default 5): a change whose call estimate would dip into it is refused before it starts.
    #[serde(default = "default_reserve")]
    pub api_reserve_percent: f64,
    /// The HTTP client settings shared by every vendor (`[providers.client]`): timeouts,
    /// concurrency (default 5), rate (default: none — Salesforce has no per-minute limit),
    /// retries, extra CA, plain HTTP.
    #[serde(default)]
    pub client: ClientOptions,
}

fn default_reserve() -> f64 {
    crate::budget::DEFAULT_RESERVE_PERCENT
}

fn default_version() -> String {
    DEFAULT_API_VERSION.into()
}

impl SalesforceConfig {
    /// A configuration with the given authentication, everything else at its default.
    ///
    /// ```
    /// use licensekit_salesforce::{SalesforceAuth, SalesforceConfig};
    /// use secrecy::SecretString;
    ///
    /// let config = SalesforceConfig::new(SalesforceAuth::ClientCredentials {
    ///     login_url: "https://acme.my.salesforce.com".into(),
    ///     client_id: "consumer-key".into(),
    ///     client_secret: SecretString::from("consumer-secret".to_owned()),
    /// })
    /// .with_api_version("62.0");
    /// assert_eq!(config.api_version, "62.0");
    /// ```
    pub fn new(auth: SalesforceAuth) -> Self {
        SalesforceConfig {
            auth,
            api_version: default_version(),
            api_reserve_percent: default_reserve(),
            client: ClientOptions::default(),
        }
    }

    /// A configuration for an existing session: the org's instance URL and an access token
    /// (session id) obtained elsewhere — the Salesforce CLI, a simulator, another OAuth flow.
    pub fn session(instance_url: &str, access_token: &str) -> Self {
        SalesforceConfig::new(SalesforceAuth::AccessToken {
            instance_url: instance_url.to_owned(),
            access_token: SecretString::from(access_token.to_owned()),
        })
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

    /// The share of the daily API allocation a bulk change must leave, in percent (0–100).
    pub fn with_api_reserve_percent(mut self, percent: f64) -> Self {
        self.api_reserve_percent = percent;
        self
    }

    /// The REST API version (`NN.0`; default [`DEFAULT_API_VERSION`](crate::DEFAULT_API_VERSION)).
    pub fn with_api_version(mut self, version: impl Into<String>) -> Self {
        self.api_version = version.into();
        self
    }

    pub(crate) fn validate(&self) -> licensekit_core::Result<()> {
        if !(0.0..=100.0).contains(&self.api_reserve_percent) {
            return Err(licensekit_core::Error::config(format!(
                "salesforce: api_reserve_percent must be between 0 and 100, not {}",
                self.api_reserve_percent
            )));
        }
        self.client.validate(crate::KIND)
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
