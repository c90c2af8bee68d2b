//! [`ProviderConfig`]: which provider to build, and how.

use serde::{Deserialize, Deserializer};

use licensekit_core::{Error, InMemoryProvider, MemoryConfig, ProviderKind, Result};

use crate::AnyProvider;

/// Configuration of one provider, tagged by `provider`. Every vendor's tag is always accepted; a
/// vendor whose cargo feature is off yields [`Error::FeatureNotEnabled`] from
/// [`AnyProvider::from_config`] rather than a parse error, so one config file serves every build.
///
/// ```
/// # use licensekit::{AnyProvider, ProviderConfig, LicenseProvider, ProviderKind};
/// let config: ProviderConfig = serde_json::from_value(serde_json::json!({
///     "provider": "memory",
///     "products": [{"id": "app", "name": "App", "seats": 10}],
/// })).unwrap();
/// let provider = AnyProvider::from_config(config).unwrap();
/// assert_eq!(provider.kind(), ProviderKind::Memory);
/// ```
///
/// Each vendor's HTTP client settings ([`ClientOptions`](licensekit_core::client::ClientOptions):
/// `allow_http`, `ca_file`, `timeout`, `connect_timeout`, `max_concurrency`,
/// `max_response_bytes`, `rate`, `max_wait`, `retry`) sit in a nested `client` object —
/// `[providers.client]` in `licensekit.toml`. The keys that used to sit at the top level
/// (`allow_http`, `timeout_secs`, `max_concurrency`, `max_response_bytes`,
/// `requests_per_minute`, `honor_rate_limit_headers`) are refused with what to write instead.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum ProviderConfig {
    Memory(MemoryConfig),
    /// Apple VPP ([`licensekit_apple_vpp::AppleVppConfig`]).
    #[cfg(feature = "apple-vpp")]
    AppleVpp(licensekit_apple_vpp::AppleVppConfig),
    /// Apple VPP, compiled out: building it gives `FeatureNotEnabled`.
    #[cfg(not(feature = "apple-vpp"))]
    AppleVpp(serde_json::Map<String, serde_json::Value>),
    /// Genesys Cloud ([`licensekit_genesys::GenesysConfig`]).
    #[cfg(feature = "genesys")]
    Genesys(licensekit_genesys::GenesysConfig),
    /// Genesys Cloud, compiled out: building it gives `FeatureNotEnabled`.
    #[cfg(not(feature = "genesys"))]
    Genesys(serde_json::Map<String, serde_json::Value>),
    /// Salesforce ([`licensekit_salesforce::SalesforceConfig`]).
    #[cfg(feature = "salesforce")]
    Salesforce(licensekit_salesforce::SalesforceConfig),
    /// Salesforce, compiled out: building it gives `FeatureNotEnabled`.
    #[cfg(not(feature = "salesforce"))]
    Salesforce(serde_json::Map<String, serde_json::Value>),
}

/// The derived, tagged form of [`ProviderConfig`].
#[derive(Deserialize)]
#[serde(tag = "provider", rename_all = "kebab-case")]
enum Tagged {
    Memory(MemoryConfig),
    /// Apple VPP ([`licensekit_apple_vpp::AppleVppConfig`]).
    #[cfg(feature = "apple-vpp")]
    AppleVpp(licensekit_apple_vpp::AppleVppConfig),
    /// Apple VPP, compiled out: building it gives `FeatureNotEnabled`.
    #[cfg(not(feature = "apple-vpp"))]
    AppleVpp(serde_json::Map<String, serde_json::Value>),
    /// Genesys Cloud ([`licensekit_genesys::GenesysConfig`]).
    #[cfg(feature = "genesys")]
    Genesys(licensekit_genesys::GenesysConfig),
    /// Genesys Cloud, compiled out: building it gives `FeatureNotEnabled`.
    #[cfg(not(feature = "genesys"))]
    Genesys(serde_json::Map<String, serde_json::Value>),
    /// Salesforce ([`licensekit_salesforce::SalesforceConfig`]).
    #[cfg(feature = "salesforce")]
    Salesforce(licensekit_salesforce::SalesforceConfig),
    /// Salesforce, compiled out: building it gives `FeatureNotEnabled`.
    #[cfg(not(feature = "salesforce"))]
    Salesforce(serde_json::Map<String, serde_json::Value>),
}

impl<'de> Deserialize<'de> for ProviderConfig {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        use serde::de::Error as _;
        let value = serde_json::Value::deserialize(deserializer)?;
        let is_vendor = value
            .get("provider")
            .and_then(serde_json::Value::as_str)
            .is_some_and(|p| p != "memory");
        if let (true, Some(map)) = (is_vendor, value.as_object()) {
            #[cfg(any(feature = "apple-vpp", feature = "genesys", feature = "salesforce"))]
            for (key, old) in map {
                if let Some(hint) = licensekit_core::client::options::moved_key_hint(key, old) {
                    return Err(D::Error::custom(hint));
                }
            }
            #[cfg(not(any(feature = "apple-vpp", feature = "genesys", feature = "salesforce")))]
            let _ = map;
        }
        let tagged: Tagged = serde_json::from_value(value).map_err(D::Error::custom)?;
        Ok(match tagged {
            Tagged::Memory(c) => ProviderConfig::Memory(c),
            Tagged::AppleVpp(c) => ProviderConfig::AppleVpp(c),
            Tagged::Genesys(c) => ProviderConfig::Genesys(c),
            Tagged::Salesforce(c) => ProviderConfig::Salesforce(c),
        })
    }
}

impl ProviderConfig {
    pub fn kind(&self) -> ProviderKind {
        match self {
            ProviderConfig::Memory(_) => ProviderKind::Memory,
            ProviderConfig::AppleVpp(_) => ProviderKind::AppleVpp,
            ProviderConfig::Genesys(_) => ProviderKind::Genesys,
            ProviderConfig::Salesforce(_) => ProviderKind::Salesforce,
        }
    }
}

impl AnyProvider {
    /// Builds the configured provider.
    pub fn from_config(config: ProviderConfig) -> Result<AnyProvider> {
        match config {
            ProviderConfig::Memory(memory) => Ok(InMemoryProvider::new(memory)?.into()),
            #[cfg(feature = "apple-vpp")]
            ProviderConfig::AppleVpp(apple) => {
                Ok(licensekit_apple_vpp::AppleVppProvider::new(apple)?.into())
            }
            #[cfg(feature = "genesys")]
            ProviderConfig::Genesys(genesys) => {
                Ok(licensekit_genesys::GenesysProvider::new(genesys)?.into())
            }
            #[cfg(feature = "salesforce")]
            ProviderConfig::Salesforce(salesforce) => {
                Ok(licensekit_salesforce::SalesforceProvider::new(salesforce)?.into())
            }
            // Reachable whenever a vendor's feature is off.
            #[allow(unreachable_patterns)]
            other => Err(Error::FeatureNotEnabled(other.kind())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use licensekit_core::ErrorKind;

    /// Every vendor tag parses in every build; a compiled-out vendor is `FeatureNotEnabled`.
    /// (CI runs this with `--no-default-features`, where all three are compiled out.)
    #[test]
    fn a_provider_not_compiled_in_is_feature_not_enabled() {
        #[allow(unused_mut)]
        let mut compiled_out: Vec<serde_json::Value> = Vec::new();
        #[cfg(not(feature = "apple-vpp"))]
        compiled_out.push(serde_json::json!({"provider": "apple-vpp", "stoken": "x"}));
        #[cfg(not(feature = "genesys"))]
        compiled_out.push(serde_json::json!({"provider": "genesys", "region": "x"}));
        #[cfg(not(feature = "salesforce"))]
        compiled_out.push(serde_json::json!({"provider": "salesforce", "auth": {}}));
        for value in compiled_out {
            let config: ProviderConfig = serde_json::from_value(value).unwrap();
            let err = AnyProvider::from_config(config).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::FeatureNotEnabled);
        }
    }

    #[test]
    fn unknown_memory_fields_are_rejected() {
        let result: std::result::Result<ProviderConfig, _> =
            serde_json::from_value(serde_json::json!({"provider": "memory", "prodcts": []}));
        assert!(result.is_err());
    }
}
