//! [`ProviderConfig`]: which provider to build, and how.

use chrono::NaiveDate;
use rust_decimal::Decimal;
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
/// Each vendor's HTTP client settings ([`ClientOptions`](licensekit_core::ClientOptions):
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
                if let Some(hint) = licensekit_core::raw::client::options::moved_key_hint(key, old)
                {
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
    ///
    /// ```
    /// use licensekit::{AnyProvider, LicenseProvider, ProviderConfig, ProviderKind};
    ///
    /// # let config: ProviderConfig = serde_json::from_value(serde_json::json!({
    /// #     "provider": "memory",
    /// #     "products": [{"id": "design-suite", "name": "Design Suite", "seats": 2}],
    /// #     "users": [{"id": "ada", "email": "ada@example.com"}],
    /// #     "assignments": [{"product": "design-suite", "holder": {"kind": "user", "id": "ada"}}]
    /// # })).unwrap();
    /// let provider = AnyProvider::from_config(config)?;
    /// assert_eq!(provider.kind(), ProviderKind::Memory);
    /// # Ok::<(), licensekit::Error>(())
    /// ```
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
    pub notes: Option<String>,
}

/// The period a seat price covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Period {
    Month,
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
    pub fn with_seats(mut self, seats: u64) -> Self {
        self.seats = Some(seats);
        self
    }
    pub fn with_price(mut self, price_per_seat: Decimal, currency: &str, period: Period) -> Self {
        self.price_per_seat = Some(price_per_seat);
        self.currency = Some(currency.to_ascii_uppercase());
        self.period = Some(period);
        self
    }
    pub fn with_renewal(mut self, renewal: NaiveDate) -> Self {
        self.renewal = Some(renewal);
        self
    }
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
