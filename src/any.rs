//! [`AnyProvider`]: static dispatch over the providers compiled into this build.

use licensekit_core::{InMemoryProvider, LicenseProvider};

/// Registers `LicenseProvider`'s signatures with enum_dispatch *in this crate*.
///
/// enum_dispatch keeps its trait registry inside one compiler process, so the
/// `#[enum_dispatch(LicenseProvider)]` below cannot see the trait declared in licensekit-core and
/// would silently generate no impl. This mirror is expanded from the same macro that defines the
/// real trait (one source for the signatures); it is never used as a trait. The generated impl
/// names `LicenseProvider`, which in this module resolves to the core trait imported above.
#[allow(dead_code, unreachable_pub)]
mod dispatch_registry {
    licensekit_core::__license_provider_trait!(#[enum_dispatch::enum_dispatch]);
}

/// One of the providers compiled into this build. Implements [`LicenseProvider`] by static
/// dispatch; `Memory` is always present, vendor variants follow the cargo features.
///
/// Against a local sandbox: a Genesys simulator on a loopback port (from the `licensekit-sim`
/// crate), reached over plain HTTP, which only `allow_http` permits.
///
/// ```
/// use licensekit::{AnyProvider, LicenseProvider, ProviderConfig};
/// use licensekit_sim::genesys::{GenesysSeed, GenesysSim, GenesysSimConfig};
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let sim = GenesysSim::start(GenesysSeed::demo(30), GenesysSimConfig::default()).await?;
/// let config: ProviderConfig = serde_json::from_value(serde_json::json!({
///     "provider": "genesys",
///     "base_url": sim.base_url(),
///     "client_id": "sim-client",
///     "client_secret": "sim-secret",
///     "client": {"allow_http": true, "rate": "off"},
/// }))?;
/// let provider = AnyProvider::from_config(config)?;
/// let products = provider.products().await?;
/// assert!(products.iter().any(|p| p.id.as_str() == "cloudCX2"));
/// # Ok(())
/// # }
/// ```
#[enum_dispatch::enum_dispatch(LicenseProvider)]
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum AnyProvider {
    /// The in-memory provider (always compiled; for tests and demos).
    Memory(InMemoryProvider),
    #[cfg(feature = "apple-vpp")]
    /// Apple Volume Purchase Program (feature `apple-vpp`).
    AppleVpp(licensekit_apple_vpp::AppleVppProvider),
    #[cfg(feature = "genesys")]
    /// Genesys Cloud (feature `genesys`).
    Genesys(licensekit_genesys::GenesysProvider),
    #[cfg(feature = "salesforce")]
    /// Salesforce (feature `salesforce`).
    Salesforce(licensekit_salesforce::SalesforceProvider),
    #[cfg(feature = "toy")]
    /// The toy vendor proving the registration checklist (feature `toy`; tests only).
    Toy(licensekit_toy::ToyProvider),
}

#[cfg(test)]
mod tests {
    use super::*;
    use licensekit_core::MemoryConfig;

    #[test]
    fn dispatches_to_the_variant() {
        let any = AnyProvider::from(InMemoryProvider::new(MemoryConfig::default()).unwrap());
        assert_eq!(any.kind(), InMemoryProvider::KIND);
        assert!(any.capabilities().user_holders);
    }
}
