//! What the `licensekit` registry needs from this adapter ([`Genesys`], the [`Vendor`]
//! descriptor), the string config keys ([`GenesysConfigKey`]) and
//! `GenesysConfig::from_env` ([`VendorConfig`]).

use licensekit_core::vendor::{VendorConfig, bad_value, parse_number};
use licensekit_core::{ProviderKind, Result, Vendor};
use secrecy::SecretString;

use crate::{GenesysConfig, GenesysProvider, Region};

/// This vendor's kind: `genesys`.
pub const KIND: ProviderKind = ProviderKind::from_static("genesys");

/// The Genesys Cloud descriptor for registries (`licensekit::registry`).
#[derive(Debug, Clone, Copy)]
pub struct Genesys;

licensekit_core::config_keys! {
    /// The string keys of [`GenesysConfig`] (and of its `LICENSEKIT_GENESYS_*` variables), plus
    /// the shared client keys. `seat_totals` is a table: give it in a config file or a contract.
    pub enum GenesysConfigKey {
        /// `region`: the SDK region key (`eu_west_1`).
        Region = "region",
        /// `base_url`: API base URL override.
        BaseUrl = "base_url",
        /// `login_url`: login base URL override.
        LoginUrl = "login_url",
        /// `client_id`: OAuth client id.
        ClientId = "client_id",
        /// `client_secret`: OAuth client secret.
        ClientSecret = "client_secret",
        /// `page_size`: users per listing page.
        PageSize = "page_size",
        /// `max_batch`: user ids per batch request.
        MaxBatch = "max_batch",
    }
    client
}

/// String keys and `from_env` (`LICENSEKIT_GENESYS_CLIENT_ID`, `LICENSEKIT_GENESYS_CLIENT_SECRET`,
/// `LICENSEKIT_GENESYS_REGION`, `LICENSEKIT_GENESYS_TIMEOUT`, …: one variable per
/// [`GenesysConfigKey`]). A missing client id is reported when the provider is built.
///
/// ```
/// use licensekit_core::vendor::VendorConfig;
/// use licensekit_genesys::{GenesysConfig, GenesysConfigKey, Region};
///
/// let env = [
///     ("LICENSEKIT_GENESYS_CLIENT_ID", "0f3c"),
///     ("LICENSEKIT_GENESYS_CLIENT_SECRET", "s3cret"),
///     ("LICENSEKIT_GENESYS_REGION", "eu_west_1"),
///     ("LICENSEKIT_GENESYS_TIMEOUT", "30s"),
///     ("HOME", "/root"),
/// ];
/// let config = GenesysConfig::from_env_vars(env.map(|(k, v)| (k.into(), v.into()))).unwrap();
/// assert_eq!(config.client_id, "0f3c");
/// assert_eq!(config.region, Region::EuWest1);
/// assert_eq!(config.client.timeout, std::time::Duration::from_secs(30));
/// assert!(!format!("{config:?}").contains("s3cret"));
///
/// let config = config
///     .with_config(GenesysConfigKey::PageSize, "50").unwrap()
///     .with_config("rate".parse().unwrap(), "off").unwrap();
/// assert_eq!(config.page_size, 50);
/// assert_eq!(GenesysConfigKey::PageSize.as_ref(), "page_size");
/// ```
impl VendorConfig for GenesysConfig {
    type Key = GenesysConfigKey;
    const KIND: ProviderKind = KIND;

    fn blank() -> Self {
        GenesysConfig::new("", SecretString::from(""))
    }

    fn set(&mut self, key: GenesysConfigKey, value: &str) -> Result<()> {
        match key {
            GenesysConfigKey::Region => {
                self.region = Region::ALL
                    .iter()
                    .copied()
                    .find(|r| r.key() == value.trim())
                    .ok_or_else(|| bad_value(key, "a region key such as eu_west_1"))?;
            }
            GenesysConfigKey::BaseUrl => self.base_url = Some(value.to_owned()),
            GenesysConfigKey::LoginUrl => self.login_url = Some(value.to_owned()),
            GenesysConfigKey::ClientId => self.client_id = value.to_owned(),
            GenesysConfigKey::ClientSecret => self.client_secret = SecretString::from(value),
            GenesysConfigKey::PageSize => self.page_size = parse_number(key, value)?,
            GenesysConfigKey::MaxBatch => self.max_batch = parse_number(key, value)?,
            GenesysConfigKey::Client(key) => self.client.set(key, value)?,
        }
        Ok(())
    }
}

impl Vendor for Genesys {
    const KIND: ProviderKind = KIND;
    type Config = GenesysConfig;
    type Provider = GenesysProvider;

    fn build(config: GenesysConfig) -> Result<GenesysProvider> {
        GenesysProvider::new(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn from_env_reads_every_key_and_ignores_other_variables() {
        let config = GenesysConfig::from_env_vars(env(&[
            ("LICENSEKIT_GENESYS_BASE_URL", "http://127.0.0.1:9"),
            ("LICENSEKIT_GENESYS_LOGIN_URL", "http://127.0.0.1:8"),
            ("LICENSEKIT_GENESYS_CLIENT_ID", "id-1"),
            ("LICENSEKIT_GENESYS_CLIENT_SECRET", "canary-env-secret"),
            ("LICENSEKIT_GENESYS_PAGE_SIZE", "25"),
            ("LICENSEKIT_GENESYS_MAX_BATCH", "7"),
            ("LICENSEKIT_GENESYS_ALLOW_HTTP", "true"),
            ("LICENSEKIT_GENESYS_RETRY_ATTEMPTS", "2"),
            ("LICENSEKIT_GENESYS_SOMETHING_ELSE", "x"),
            ("LICENSEKIT_SALESFORCE_CLIENT_ID", "not-ours"),
        ]))
        .unwrap();
        assert_eq!(config.base_url.as_deref(), Some("http://127.0.0.1:9"));
        assert_eq!(config.token_url(), "http://127.0.0.1:8/oauth/token");
        assert_eq!(config.client_id, "id-1");
        assert_eq!(config.client_secret.expose_secret(), "canary-env-secret");
        assert_eq!((config.page_size, config.max_batch), (25, 7));
        assert!(config.client.allow_http);
        assert_eq!(config.client.retry.attempts, 2);
        assert!(!format!("{config:?}").contains("canary-env-secret"));
        GenesysProvider::new(config).unwrap();
    }

    #[test]
    fn bad_values_name_the_variable_not_the_value() {
        let err = GenesysConfig::from_env_vars(env(&[(
            "LICENSEKIT_GENESYS_PAGE_SIZE",
            "canary-not-a-number",
        )]))
        .unwrap_err()
        .to_string();
        assert!(err.contains("LICENSEKIT_GENESYS_PAGE_SIZE"), "{err}");
        assert!(!err.contains("canary-not-a-number"), "{err}");
        let err = GenesysConfig::from_env_vars(env(&[("LICENSEKIT_GENESYS_REGION", "mars")]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("LICENSEKIT_GENESYS_REGION"), "{err}");
        // Nothing set: the missing client id is reported when building.
        let empty = GenesysConfig::from_env_vars(Vec::new()).unwrap();
        assert!(GenesysProvider::new(empty).is_err());
    }

    #[test]
    fn keys_round_trip_through_their_names() {
        for name in GenesysConfigKey::KEYS {
            let key: GenesysConfigKey = name.parse().unwrap();
            assert_eq!(key.as_ref(), *name);
        }
        let key: GenesysConfigKey = "connect_timeout".parse().unwrap();
        assert_eq!(key.to_string(), "connect_timeout");
        let err = "client_secrt".parse::<GenesysConfigKey>().unwrap_err();
        assert!(err.to_string().contains("client_secret") && err.to_string().contains("timeout"));
    }
}
