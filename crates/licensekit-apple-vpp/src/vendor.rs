//! What the `licensekit` registry needs from this adapter ([`AppleVpp`], the [`Vendor`]
//! descriptor), the string config keys ([`AppleVppConfigKey`]) and
//! `AppleVppConfig::from_env` ([`VendorConfig`]).

use licensekit_core::vendor::{VendorConfig, bad_value, parse_bool};
use licensekit_core::{ProviderKind, Result, Vendor};
use secrecy::SecretString;

use crate::wire::MdmInfo;
use crate::{AppleVppConfig, AppleVppProvider};

/// This vendor's kind: `apple-vpp`.
pub const KIND: ProviderKind = ProviderKind::from_static("apple-vpp");

/// The Apple VPP descriptor for registries (`licensekit::registry`).
#[derive(Debug, Clone, Copy)]
pub struct AppleVpp;

licensekit_core::config_keys! {
    /// The string keys of [`AppleVppConfig`] (and of its `LICENSEKIT_APPLE_VPP_*` variables),
    /// plus the shared client keys.
    pub enum AppleVppConfigKey {
        /// `stoken`: the location's content token.
        Stoken = "stoken",
        /// `base_url`: Apple's service URL override.
        BaseUrl = "base_url",
        /// `mdm_info_id`: this service's MDM id (with `mdm_info_name`).
        MdmInfoId = "mdm_info_id",
        /// `mdm_info_name`: this service's MDM name.
        MdmInfoName = "mdm_info_name",
        /// `mdm_info_metadata`: free text Apple keeps with the MDM info.
        MdmInfoMetadata = "mdm_info_metadata",
        /// `take_over`: claim a location another service owns.
        TakeOver = "take_over",
        /// `poll_interval_secs`: seconds between event polls.
        PollIntervalSecs = "poll_interval_secs",
        /// `poll_timeout_secs`: seconds to wait for an event.
        PollTimeoutSecs = "poll_timeout_secs",
    }
    client
}

/// String keys and `from_env` (`LICENSEKIT_APPLE_VPP_STOKEN`, `LICENSEKIT_APPLE_VPP_BASE_URL`,
/// `LICENSEKIT_APPLE_VPP_MDM_INFO_ID`, …: one variable per [`AppleVppConfigKey`]). A missing
/// token is reported when the provider is built.
///
/// ```
/// use licensekit_apple_vpp::{AppleVppConfig, AppleVppConfigKey};
/// use licensekit_core::vendor::VendorConfig;
///
/// let env = [
///     ("LICENSEKIT_APPLE_VPP_STOKEN", "eyJ0b2tlbiI6..."),
///     ("LICENSEKIT_APPLE_VPP_TAKE_OVER", "false"),
/// ];
/// let config = AppleVppConfig::from_env_vars(env.map(|(k, v)| (k.into(), v.into()))).unwrap();
/// assert!(!config.take_over);
/// assert!(!format!("{config:?}").contains("eyJ0b2tlbiI6"));
/// let config = config.with_config(AppleVppConfigKey::TakeOver, "true").unwrap();
/// assert!(config.take_over);
/// ```
impl VendorConfig for AppleVppConfig {
    type Key = AppleVppConfigKey;
    const KIND: ProviderKind = KIND;

    fn blank() -> Self {
        AppleVppConfig::new(SecretString::from(""))
    }

    fn set(&mut self, key: AppleVppConfigKey, value: &str) -> Result<()> {
        let seconds = || {
            value
                .trim()
                .parse::<f64>()
                .ok()
                .filter(|s| s.is_finite() && *s >= 0.0)
                .ok_or_else(|| bad_value(key, "a number of seconds"))
        };
        match key {
            AppleVppConfigKey::Stoken => self.stoken = SecretString::from(value),
            AppleVppConfigKey::BaseUrl => self.base_url = value.to_owned(),
            AppleVppConfigKey::MdmInfoId => self.mdm_info_mut().id = value.to_owned(),
            AppleVppConfigKey::MdmInfoName => self.mdm_info_mut().name = value.to_owned(),
            AppleVppConfigKey::MdmInfoMetadata => self.mdm_info_mut().metadata = value.to_owned(),
            AppleVppConfigKey::TakeOver => self.take_over = parse_bool(key, value)?,
            AppleVppConfigKey::PollIntervalSecs => self.poll_interval_secs = seconds()?,
            AppleVppConfigKey::PollTimeoutSecs => self.poll_timeout_secs = seconds()?,
            AppleVppConfigKey::Client(key) => self.client.set(key, value)?,
        }
        Ok(())
    }
}

impl AppleVppConfig {
    fn mdm_info_mut(&mut self) -> &mut MdmInfo {
        self.mdm_info
            .get_or_insert_with(|| MdmInfo::new(String::new(), String::new(), String::new()))
    }
}

impl Vendor for AppleVpp {
    const KIND: ProviderKind = KIND;
    type Config = AppleVppConfig;
    type Provider = AppleVppProvider;

    fn build(config: AppleVppConfig) -> Result<AppleVppProvider> {
        AppleVppProvider::new(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    #[test]
    fn from_env_reads_every_key() {
        let env = [
            ("LICENSEKIT_APPLE_VPP_STOKEN", "canary-stoken"),
            ("LICENSEKIT_APPLE_VPP_BASE_URL", "http://127.0.0.1:9/mdm/v2"),
            ("LICENSEKIT_APPLE_VPP_MDM_INFO_ID", "3f1c"),
            ("LICENSEKIT_APPLE_VPP_MDM_INFO_NAME", "Our IT tooling"),
            ("LICENSEKIT_APPLE_VPP_TAKE_OVER", "yes"),
            ("LICENSEKIT_APPLE_VPP_POLL_INTERVAL_SECS", "0.5"),
            ("LICENSEKIT_APPLE_VPP_MAX_CONCURRENCY", "2"),
            ("LICENSEKIT_APPLE_STOKEN", "another tool's variable"),
        ];
        let config = AppleVppConfig::from_env_vars(env.map(|(k, v)| (k.into(), v.into()))).unwrap();
        assert_eq!(config.stoken.expose_secret(), "canary-stoken");
        assert_eq!(config.base_url, "http://127.0.0.1:9/mdm/v2");
        let info = config.mdm_info.clone().unwrap();
        assert_eq!(
            (info.id.as_str(), info.name.as_str()),
            ("3f1c", "Our IT tooling")
        );
        assert!(config.take_over);
        assert_eq!(config.poll_interval_secs, 0.5);
        assert_eq!(config.client.max_concurrency, Some(2));
        assert!(!format!("{config:?}").contains("canary-stoken"));
        let err = AppleVppConfig::from_env_vars([(
            "LICENSEKIT_APPLE_VPP_POLL_TIMEOUT_SECS".to_string(),
            "-1".to_string(),
        )])
        .unwrap_err();
        assert!(
            err.to_string()
                .contains("LICENSEKIT_APPLE_VPP_POLL_TIMEOUT_SECS"),
            "{err}"
        );
    }
}
