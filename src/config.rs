//! [`ProviderConfig`]: which provider to build, and how.

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::{Deserialize, Deserializer};

use licensekit_core::{InMemoryProvider, ProviderKind, Result, Vendor};

use crate::AnyProvider;
use crate::registry::{DynConfig, Registration, Typed};

/// Configuration of one provider, tagged by `provider`. Every registered vendor's tag is always
/// accepted (see [`registry`](crate::registry)); a vendor whose cargo feature is off yields
/// [`Error::FeatureNotEnabled`](licensekit_core::Error::FeatureNotEnabled) from [`AnyProvider::from_config`] rather than a parse error, so
/// one config file serves every build. An unknown tag is an error listing the known ones.
///
/// ```
/// # use licensekit::{AnyProvider, InMemoryProvider, ProviderConfig, LicenseProvider};
/// let config: ProviderConfig = serde_json::from_value(serde_json::json!({
///     "provider": "memory",
///     "products": [{"id": "app", "name": "App", "seats": 10}],
/// })).unwrap();
/// let provider = AnyProvider::from_config(config).unwrap();
/// assert_eq!(provider.kind(), InMemoryProvider::KIND);
/// ```
///
/// Each vendor's HTTP client settings ([`ClientOptions`](licensekit_core::ClientOptions):
/// `allow_http`, `ca_file`, `timeout`, `connect_timeout`, `max_concurrency`,
/// `max_response_bytes`, `rate`, `max_wait`, `retry`) sit in a nested `client` object —
/// `[providers.client]` in `licensekit.toml`. The keys that used to sit at the top level
/// (`allow_http`, `timeout_secs`, `max_concurrency`, `max_response_bytes`,
/// `requests_per_minute`, `honor_rate_limit_headers`) are refused with what to write instead.
///
/// A configuration can also come from the environment ([`ProviderConfig::from_env`]) and be
/// adjusted with string keys ([`ProviderConfig::with_config`]); the typed configuration is
/// reached with [`ProviderConfig::vendor_config`]. `Debug` prints no secret.
#[derive(Debug, Clone)]
pub struct ProviderConfig {
    registration: &'static Registration,
    settings: Settings,
}

#[derive(Debug)]
enum Settings {
    /// The vendor's typed configuration.
    Typed(Box<dyn DynConfig>),
    /// The vendor is compiled out; what was written is kept only as a sign it was an object.
    CompiledOut,
}

impl Clone for Settings {
    fn clone(&self) -> Self {
        match self {
            Settings::Typed(c) => Settings::Typed(c.clone_box()),
            Settings::CompiledOut => Settings::CompiledOut,
        }
    }
}

impl<'de> Deserialize<'de> for ProviderConfig {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        use serde::de::Error as _;
        let value = serde_json::Value::deserialize(deserializer)?;
        let serde_json::Value::Object(mut map) = value else {
            return Err(D::Error::custom("a provider configuration must be a table"));
        };
        let name = match map.remove("provider") {
            Some(serde_json::Value::String(name)) => name,
            Some(_) => return Err(D::Error::custom("`provider` must be a string")),
            None => return Err(D::Error::missing_field("provider")),
        };
        let registration = crate::registry::find(&name).map_err(D::Error::custom)?;
        if registration.kind() != InMemoryProvider::KIND {
            for (key, old) in &map {
                if let Some(hint) = licensekit_core::vendor::moved_key_hint(key, old) {
                    return Err(D::Error::custom(hint));
                }
            }
        }
        let settings = match registration
            .parse(serde_json::Value::Object(map))
            .map_err(D::Error::custom)?
        {
            Some(typed) => Settings::Typed(typed),
            None => Settings::CompiledOut,
        };
        Ok(ProviderConfig {
            registration,
            settings,
        })
    }
}

impl ProviderConfig {
    /// The configuration of vendor `V` (its descriptor, such as `licensekit::genesys::Genesys`).
    ///
    /// ```
    /// # use licensekit::{AnyProvider, LicenseProvider, Memory, MemoryConfig, ProviderConfig};
    /// let config = ProviderConfig::new::<Memory>(MemoryConfig::default());
    /// assert_eq!(AnyProvider::from_config(config).unwrap().kind().as_str(), "memory");
    /// ```
    pub fn new<V: Vendor>(config: V::Config) -> ProviderConfig
    where
        V::Provider: Into<AnyProvider>,
    {
        let registration = crate::registry::vendors()
            .iter()
            .find(|r| r.kind() == V::KIND && r.is_compiled_in())
            .expect("every compiled-in vendor is registered");
        ProviderConfig {
            registration,
            settings: Settings::Typed(Box::new(Typed::<V>(config))),
        }
    }

    /// The configuration of the vendor named `provider` from its `LICENSEKIT_<VENDOR>_*`
    /// environment variables (each vendor's README lists them; `LICENSEKIT_GENESYS_CLIENT_ID`,
    /// `LICENSEKIT_GENESYS_CLIENT_SECRET`, `LICENSEKIT_GENESYS_REGION`, …).
    pub fn from_env(provider: &str) -> Result<ProviderConfig> {
        Self::from_env_vars(provider, std::env::vars())
    }

    /// [`from_env`](Self::from_env) over the given variables instead of the process's (a map in
    /// tests; the CLI's own lookup).
    ///
    /// ```
    /// # use licensekit::{AnyProvider, LicenseProvider, MemoryConfig, ProviderConfig};
    /// let env = [("LICENSEKIT_MEMORY_PAGE_SIZE".to_string(), "7".to_string())];
    /// let config = ProviderConfig::from_env_vars("memory", env).unwrap();
    /// assert_eq!(config.vendor_config::<MemoryConfig>().unwrap().page_size, 7);
    /// assert!(ProviderConfig::from_env_vars("no-such-vendor", []).is_err());
    /// ```
    pub fn from_env_vars<I>(provider: &str, vars: I) -> Result<ProviderConfig>
    where
        I: IntoIterator<Item = (String, String)>,
    {
        let registration = crate::registry::find(provider)?;
        let typed = registration.config_from_env(vars.into_iter().collect())?;
        Ok(ProviderConfig {
            registration,
            settings: Settings::Typed(typed),
        })
    }

    /// Sets one key from its string form (`"page_size"`, `"50"`): the vendor's config keys, the
    /// same names as its environment variables without the prefix.
    ///
    /// ```
    /// # use licensekit::{MemoryConfig, ProviderConfig};
    /// let config = ProviderConfig::new::<licensekit::Memory>(MemoryConfig::default())
    ///     .with_config("page_size", "3").unwrap();
    /// assert_eq!(config.vendor_config::<MemoryConfig>().unwrap().page_size, 3);
    /// assert!(config.with_config("page_sise", "3").is_err());
    /// ```
    pub fn with_config(mut self, key: &str, value: &str) -> Result<ProviderConfig> {
        match &mut self.settings {
            Settings::Typed(typed) => typed.set(key, value)?,
            Settings::CompiledOut => return Err(self.registration.feature_not_enabled()),
        }
        Ok(self)
    }

    /// Which provider this configures.
    pub fn kind(&self) -> ProviderKind {
        self.registration.kind()
    }

    /// The vendor's typed configuration (`GenesysConfig`, `MemoryConfig`, …), if it is a `C`
    /// (and the vendor is compiled in).
    pub fn vendor_config<C: 'static>(&self) -> Option<&C> {
        match &self.settings {
            Settings::Typed(typed) => typed.as_any().downcast_ref(),
            Settings::CompiledOut => None,
        }
    }
}

impl AnyProvider {
    /// Builds the configured provider (no I/O); a vendor compiled out of this build is
    /// [`Error::FeatureNotEnabled`](licensekit_core::Error::FeatureNotEnabled) naming the feature to enable.
    ///
    /// ```
    /// # use licensekit::{AnyProvider, LicenseProvider, ProviderConfig};
    /// let config: ProviderConfig =
    ///     serde_json::from_value(serde_json::json!({"provider": "memory"})).unwrap();
    /// let provider = AnyProvider::from_config(config).unwrap();
    /// assert_eq!(provider.kind().as_str(), "memory");
    /// ```
    pub fn from_config(config: ProviderConfig) -> Result<AnyProvider> {
        match config.settings {
            Settings::Typed(typed) => typed.build(),
            Settings::CompiledOut => Err(config.registration.feature_not_enabled()),
        }
    }
}

/// What an organisation bought of one product: seats, price, renewal. Vendors' APIs report none
/// of this except (sometimes) seats; a contract's figures are reported with provenance
/// `configured`, and contract seats take the place of the vendor's figure.
///
/// ```
/// # use licensekit::{Contract, Period};
/// let c: Contract = serde_json::from_value(serde_json::json!({
///     "provider": "genesys", "product": "cloudCX2", "seats": 250,
///     "price_per_seat": "75.00", "currency": "eur", "period": "month",
///     "renewal": "2027-03-31",
/// })).unwrap();
/// assert_eq!(c.currency.as_deref(), Some("EUR"));
/// assert_eq!(c.annual_price_per_seat().unwrap().to_string(), "900.00");
/// assert_eq!(c.period, Some(Period::Month));
/// ```
#[derive(Debug, Clone, PartialEq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct Contract {
    /// The vendor the contract is with.
    pub provider: ProviderKind,
    /// The product id as the vendor names it (Genesys license id, Salesforce PackageLicense id,
    /// Apple adamId).
    pub product: String,
    /// Seats purchased.
    #[serde(default)]
    pub seats: Option<u64>,
    /// Price of one seat for one `period`, exact (a string such as `"75.00"` keeps every digit;
    /// a TOML number is read through its decimal text).
    #[serde(default)]
    pub price_per_seat: Option<Decimal>,
    /// ISO 4217 code (`EUR`, `USD`); required with a price. Sums never mix currencies.
    #[serde(default, deserialize_with = "currency")]
    pub currency: Option<String>,
    /// What the price pays for: a `month` or a `year` (required with a price).
    #[serde(default)]
    pub period: Option<Period>,
    /// The date the contract renews (or ends).
    #[serde(default)]
    pub renewal: Option<NaiveDate>,
    #[serde(default)]
    /// Free text kept with the contract (a PO number, a contact); never interpreted.
    pub notes: Option<String>,
}

/// The period a seat price covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Period {
    /// The price is per seat per month (a year is 12 of them).
    Month,
    /// The price is per seat per year.
    Year,
}

fn currency<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> std::result::Result<Option<String>, D::Error> {
    let code = Option::<String>::deserialize(d)?;
    match code {
        None => Ok(None),
        Some(code) => {
            let upper = code.trim().to_ascii_uppercase();
            if upper.len() == 3 && upper.bytes().all(|b| b.is_ascii_uppercase()) {
                Ok(Some(upper))
            } else {
                Err(serde::de::Error::custom(format!(
                    "currency `{code}` is not an ISO 4217 code such as EUR or USD"
                )))
            }
        }
    }
}

impl Contract {
    /// A contract for `product` at `provider` with nothing filled in.
    pub fn new(provider: ProviderKind, product: impl Into<String>) -> Self {
        Contract {
            provider,
            product: product.into(),
            seats: None,
            price_per_seat: None,
            currency: None,
            period: None,
            renewal: None,
            notes: None,
        }
    }
    /// Sets the seats purchased.
    pub fn with_seats(mut self, seats: u64) -> Self {
        self.seats = Some(seats);
        self
    }
    /// Sets the price of one seat per `period`, in `currency` (an ISO 4217 code, upper-cased here).
    pub fn with_price(mut self, price_per_seat: Decimal, currency: &str, period: Period) -> Self {
        self.price_per_seat = Some(price_per_seat);
        self.currency = Some(currency.to_ascii_uppercase());
        self.period = Some(period);
        self
    }
    /// Sets the renewal (or end) date.
    pub fn with_renewal(mut self, renewal: NaiveDate) -> Self {
        self.renewal = Some(renewal);
        self
    }
    /// Sets the free-text notes.
    pub fn with_notes(mut self, notes: impl Into<String>) -> Self {
        self.notes = Some(notes.into());
        self
    }

    /// The price of one seat for a year, when price, currency and period are all given.
    pub fn annual_price_per_seat(&self) -> Option<Decimal> {
        self.currency.as_ref()?;
        let price = self.price_per_seat?;
        match self.period? {
            Period::Month => price.checked_mul(Decimal::from(12)),
            Period::Year => Some(price),
        }
    }

    /// What is wrong with this contract, if anything: a price without currency or period, a
    /// negative price.
    pub fn check(&self) -> std::result::Result<(), String> {
        let what = format!("contract {} {}", self.provider, self.product);
        if self.product.trim().is_empty() {
            return Err(format!("{what}: `product` is empty"));
        }
        if let Some(price) = self.price_per_seat {
            if price.is_sign_negative() {
                return Err(format!("{what}: `price_per_seat` is negative"));
            }
            if self.currency.is_none() {
                return Err(format!("{what}: `price_per_seat` needs a `currency`"));
            }
            if self.period.is_none() {
                return Err(format!(
                    "{what}: `price_per_seat` needs a `period` (month or year)"
                ));
            }
        }
        Ok(())
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
        for registration in crate::registry::vendors() {
            if registration.is_compiled_in() {
                continue;
            }
            let value = serde_json::json!({"provider": registration.name(), "any": "thing"});
            let config: ProviderConfig = serde_json::from_value(value).unwrap();
            assert_eq!(config.kind(), registration.kind());
            let err = AnyProvider::from_config(config).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::FeatureNotEnabled);
            let feature = registration.feature().unwrap();
            assert!(err.to_string().contains(feature), "{err}");
        }
        let unknown: std::result::Result<ProviderConfig, _> =
            serde_json::from_value(serde_json::json!({"provider": "vpp"}));
        let err = unknown.unwrap_err().to_string();
        assert!(
            err.contains("unknown provider `vpp`") && err.contains("memory"),
            "{err}"
        );
    }

    #[test]
    fn unknown_memory_fields_are_rejected() {
        let result: std::result::Result<ProviderConfig, _> =
            serde_json::from_value(serde_json::json!({"provider": "memory", "prodcts": []}));
        assert!(result.is_err());
    }
}
