//! What the `licensekit` registry needs from this adapter ([`Salesforce`], the [`Vendor`]
//! descriptor), the string config keys ([`SalesforceConfigKey`]) and
//! `SalesforceConfig::from_env` ([`VendorConfig`]).

use licensekit_core::vendor::{VendorConfig, apply_env, bad_value, parse_number};
use licensekit_core::{Error, ProviderKind, Result, Vendor};
use secrecy::SecretString;

use crate::{SalesforceAuth, SalesforceConfig, SalesforceProvider};

/// This vendor's kind: `salesforce`.
pub const KIND: ProviderKind = ProviderKind::from_static("salesforce");

/// The Salesforce descriptor for registries (`licensekit::registry`).
#[derive(Debug, Clone, Copy)]
pub struct Salesforce;

licensekit_core::config_keys! {
    /// The string keys of [`SalesforceConfig`] (and of its `LICENSEKIT_SALESFORCE_*`
    /// variables), plus the shared client keys. The `auth` table's keys are flat here: `flow`
    /// picks the variant of [`SalesforceAuth`], the others set its fields.
    pub enum SalesforceConfigKey {
        /// `flow`: `access_token`, `client_credentials` or `jwt_bearer`.
        Flow = "flow",
        /// `instance_url` (flow `access_token`).
        InstanceUrl = "instance_url",
        /// `access_token` (flow `access_token`).
        AccessToken = "access_token",
        /// `login_url` (flows `client_credentials`, `jwt_bearer`).
        LoginUrl = "login_url",
        /// `client_id` (flows `client_credentials`, `jwt_bearer`).
        ClientId = "client_id",
        /// `client_secret` (flow `client_credentials`).
        ClientSecret = "client_secret",
        /// `username` (flow `jwt_bearer`).
        Username = "username",
        /// `private_key_pem` (flow `jwt_bearer`).
        PrivateKeyPem = "private_key_pem",
        /// `audience` (flow `jwt_bearer`).
        Audience = "audience",
        /// `api_version`: REST API version (`66.0`).
        ApiVersion = "api_version",
        /// `api_reserve_percent`: share of the daily allocation to leave unspent.
        ApiReservePercent = "api_reserve_percent",
    }
    client
}

/// String keys and `from_env` (`LICENSEKIT_SALESFORCE_LOGIN_URL`, `LICENSEKIT_SALESFORCE_CLIENT_ID`,
/// `LICENSEKIT_SALESFORCE_CLIENT_SECRET`, …: one variable per [`SalesforceConfigKey`]). Without
/// `LICENSEKIT_SALESFORCE_FLOW` the flow follows from the secret given: a private key is
/// `jwt_bearer`, a client secret `client_credentials`, otherwise `access_token`. `flow` changes
/// the authentication flow, keeping `login_url` and `client_id` where both flows have them; a
/// key the current flow does not have is an error naming the flow.
///
/// ```
/// use licensekit_core::vendor::VendorConfig;
/// use licensekit_salesforce::{SalesforceAuth, SalesforceConfig, SalesforceConfigKey};
///
/// let env = [
///     ("LICENSEKIT_SALESFORCE_LOGIN_URL", "https://acme.my.salesforce.com"),
///     ("LICENSEKIT_SALESFORCE_CLIENT_ID", "3MVG9"),
///     ("LICENSEKIT_SALESFORCE_CLIENT_SECRET", "s3cret"),
/// ];
/// let config = SalesforceConfig::from_env_vars(env.map(|(k, v)| (k.into(), v.into()))).unwrap();
/// assert!(matches!(config.auth, SalesforceAuth::ClientCredentials { .. }));
/// assert!(!format!("{config:?}").contains("s3cret"));
/// let config = config.with_config(SalesforceConfigKey::ApiVersion, "62.0").unwrap();
/// assert_eq!(config.api_version, "62.0");
/// ```
impl VendorConfig for SalesforceConfig {
    type Key = SalesforceConfigKey;
    const KIND: ProviderKind = KIND;

    fn blank() -> Self {
        SalesforceConfig::new(access_token(String::new()))
    }

    fn from_env_vars<I>(vars: I) -> Result<Self>
    where
        I: IntoIterator<Item = (String, String)>,
    {
        let vars: Vec<(String, String)> = vars.into_iter().collect();
        let prefix = KIND.env_prefix();
        let given = |key: SalesforceConfigKey| {
            vars.iter()
                .find(|(name, _)| {
                    name.strip_prefix(&prefix)
                        .is_some_and(|k| k.eq_ignore_ascii_case(key.as_ref()))
                })
                .map(|(_, value)| value.as_str())
        };
        let flow = match given(SalesforceConfigKey::Flow) {
            Some(flow) => flow,
            None if given(SalesforceConfigKey::PrivateKeyPem).is_some() => "jwt_bearer",
            None if given(SalesforceConfigKey::ClientSecret).is_some() => "client_credentials",
            None => "access_token",
        };
        let mut config = Self::blank();
        config
            .set(SalesforceConfigKey::Flow, flow)
            .map_err(|e| Error::config(format!("{prefix}FLOW: {e}")))?;
        apply_env(KIND, &mut config, vars, SalesforceConfig::set)?;
        Ok(config)
    }

    fn set(&mut self, key: SalesforceConfigKey, value: &str) -> Result<()> {
        use SalesforceAuth as A;
        use SalesforceConfigKey as K;
        let text = || value.to_owned();
        let secret = || SecretString::from(value);
        match (key, &mut self.auth) {
            (K::Flow, auth) => *auth = switch_flow(auth, value)?,
            (K::InstanceUrl, A::AccessToken { instance_url, .. }) => *instance_url = text(),
            (K::AccessToken, A::AccessToken { access_token, .. }) => *access_token = secret(),
            (K::LoginUrl, A::ClientCredentials { login_url, .. })
            | (K::LoginUrl, A::JwtBearer { login_url, .. }) => *login_url = text(),
            (K::ClientId, A::ClientCredentials { client_id, .. })
            | (K::ClientId, A::JwtBearer { client_id, .. }) => *client_id = text(),
            (K::ClientSecret, A::ClientCredentials { client_secret, .. }) => {
                *client_secret = secret()
            }
            (K::Username, A::JwtBearer { username, .. }) => *username = text(),
            (
                K::PrivateKeyPem,
                A::JwtBearer {
                    private_key_pem, ..
                },
            ) => *private_key_pem = secret(),
            (K::Audience, A::JwtBearer { audience, .. }) => *audience = Some(text()),
            (K::ApiVersion, _) => self.api_version = text(),
            (K::ApiReservePercent, _) => self.api_reserve_percent = parse_number(key, value)?,
            (K::Client(key), _) => self.client.set(key, value)?,
            (key, auth) => {
                return Err(Error::config(format!(
                    "`{key}` does not apply to flow `{}`",
                    flow_name(auth)
                )));
            }
        }
        Ok(())
    }
}

fn access_token(instance_url: String) -> SalesforceAuth {
    SalesforceAuth::AccessToken {
        instance_url,
        access_token: SecretString::from(""),
    }
}

fn flow_name(auth: &SalesforceAuth) -> &'static str {
    match auth {
        SalesforceAuth::AccessToken { .. } => "access_token",
        SalesforceAuth::ClientCredentials { .. } => "client_credentials",
        SalesforceAuth::JwtBearer { .. } => "jwt_bearer",
    }
}

/// `auth` as flow `flow`, keeping what both flows have.
fn switch_flow(auth: &SalesforceAuth, flow: &str) -> Result<SalesforceAuth> {
    if flow_name(auth) == flow {
        return Ok(auth.clone());
    }
    let (login_url, client_id) = match auth {
        SalesforceAuth::ClientCredentials {
            login_url,
            client_id,
            ..
        }
        | SalesforceAuth::JwtBearer {
            login_url,
            client_id,
            ..
        } => (login_url.clone(), client_id.clone()),
        SalesforceAuth::AccessToken { .. } => (String::new(), String::new()),
    };
    Ok(match flow {
        "access_token" => access_token(String::new()),
        "client_credentials" => SalesforceAuth::ClientCredentials {
            login_url,
            client_id,
            client_secret: SecretString::from(""),
        },
        "jwt_bearer" => SalesforceAuth::JwtBearer {
            login_url,
            client_id,
            username: String::new(),
            private_key_pem: SecretString::from(""),
            audience: None,
        },
        _ => {
            return Err(bad_value(
                SalesforceConfigKey::Flow,
                "access_token, client_credentials or jwt_bearer",
            ));
        }
    })
}

impl Vendor for Salesforce {
    const KIND: ProviderKind = KIND;
    type Config = SalesforceConfig;
    type Provider = SalesforceProvider;

    fn build(config: SalesforceConfig) -> Result<SalesforceProvider> {
        SalesforceProvider::new(config)
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
    fn the_flow_is_explicit_or_follows_from_the_secret() {
        let jwt = SalesforceConfig::from_env_vars(env(&[
            (
                "LICENSEKIT_SALESFORCE_LOGIN_URL",
                "https://test.salesforce.com",
            ),
            ("LICENSEKIT_SALESFORCE_CLIENT_ID", "3MVG9"),
            ("LICENSEKIT_SALESFORCE_USERNAME", "ada@example.com"),
            ("LICENSEKIT_SALESFORCE_PRIVATE_KEY_PEM", "canary-pem"),
            ("LICENSEKIT_SALESFORCE_API_VERSION", "62.0"),
            ("LICENSEKIT_SALESFORCE_API_RESERVE_PERCENT", "10"),
            ("LICENSEKIT_SALESFORCE_TIMEOUT", "5s"),
        ]))
        .unwrap();
        let SalesforceAuth::JwtBearer {
            login_url,
            client_id,
            username,
            private_key_pem,
            ..
        } = &jwt.auth
        else {
            panic!("{:?}", jwt.auth)
        };
        assert_eq!(login_url, "https://test.salesforce.com");
        assert_eq!(
            (client_id.as_str(), username.as_str()),
            ("3MVG9", "ada@example.com")
        );
        assert_eq!(private_key_pem.expose_secret(), "canary-pem");
        assert_eq!(jwt.api_version, "62.0");
        assert_eq!(jwt.api_reserve_percent, 10.0);
        assert_eq!(jwt.client.timeout, std::time::Duration::from_secs(5));
        assert!(!format!("{jwt:?}").contains("canary-pem"));

        let token = SalesforceConfig::from_env_vars(env(&[
            (
                "LICENSEKIT_SALESFORCE_INSTANCE_URL",
                "https://acme.my.salesforce.com",
            ),
            ("LICENSEKIT_SALESFORCE_ACCESS_TOKEN", "00D!x"),
        ]))
        .unwrap();
        assert!(matches!(token.auth, SalesforceAuth::AccessToken { .. }));

        let explicit = SalesforceConfig::from_env_vars(env(&[
            ("LICENSEKIT_SALESFORCE_FLOW", "client_credentials"),
            ("LICENSEKIT_SALESFORCE_CLIENT_ID", "3MVG9"),
        ]))
        .unwrap();
        assert!(matches!(
            explicit.auth,
            SalesforceAuth::ClientCredentials { .. }
        ));

        let err = SalesforceConfig::from_env_vars(env(&[
            ("LICENSEKIT_SALESFORCE_INSTANCE_URL", "https://x"),
            ("LICENSEKIT_SALESFORCE_CLIENT_SECRET", "canary-secret"),
        ]))
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("LICENSEKIT_SALESFORCE_INSTANCE_URL")
                && err.contains("client_credentials"),
            "{err}"
        );
        assert!(!err.contains("canary-secret"), "{err}");
    }

    #[test]
    fn switching_flows_keeps_what_both_have() {
        let config = SalesforceConfig::new(access_token("https://x".into()))
            .with_config(SalesforceConfigKey::Flow, "client_credentials")
            .unwrap()
            .with_config(
                SalesforceConfigKey::LoginUrl,
                "https://acme.my.salesforce.com",
            )
            .unwrap()
            .with_config("client_id".parse().unwrap(), "3MVG9")
            .unwrap()
            .with_config(SalesforceConfigKey::Flow, "jwt_bearer")
            .unwrap();
        let SalesforceAuth::JwtBearer {
            login_url,
            client_id,
            ..
        } = &config.auth
        else {
            panic!("{:?}", config.auth)
        };
        assert_eq!(login_url, "https://acme.my.salesforce.com");
        assert_eq!(client_id, "3MVG9");
        assert!(
            config
                .with_config(SalesforceConfigKey::Flow, "password")
                .is_err()
        );
    }
}
