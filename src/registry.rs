//! The vendors this facade knows: one [`Registration`] per vendor, listed once (this module's
//! `vendors!` table) and read through [`vendors()`].
//!
//! Parsing a [`ProviderConfig`](crate::ProviderConfig) and building an
//! [`AnyProvider`] go through this list, so adding a vendor touches no `match`
//! anywhere: its adapter crate exports a [`Vendor`] descriptor, and the facade gains a feature, a
//! dependency, an `AnyProvider` variant and one line below (`CONTRIBUTING.md` has the full list).
//! A vendor whose feature is off keeps its registration: its configs still parse, and building
//! one is [`Error::FeatureNotEnabled`] naming the feature.
//!
//! ```
//! use licensekit::registry;
//!
//! let names: Vec<&str> = registry::vendors().iter().map(|r| r.name()).collect();
//! assert!(names.contains(&"memory"));
//! let memory = registry::find("memory").unwrap();
//! assert!(memory.is_compiled_in() && memory.feature().is_none());
//! assert!(registry::find("no-such-vendor").is_err());
//! ```

use std::any::Any;
use std::fmt;

use licensekit_core::vendor::VendorConfig;
use licensekit_core::{Error, ProviderKind, Result, Vendor};

use crate::AnyProvider;

/// One vendor known to this build: its name, the cargo feature that compiles it in, and — when
/// compiled in — how to read its configuration and build it.
#[derive(Clone, Copy)]
pub struct Registration {
    name: &'static str,
    feature: Option<&'static str>,
    hooks: Option<Hooks>,
}

/// A vendor's configuration, type-erased.
type Erased = Box<dyn DynConfig>;

/// What a compiled-in vendor's registration can do, as plain functions over its [`Vendor`].
#[derive(Clone, Copy)]
struct Hooks {
    parse: fn(serde_json::Value) -> std::result::Result<Erased, serde_json::Error>,
    from_env: fn(Vec<(String, String)>) -> Result<Erased>,
}

impl Registration {
    /// A compiled-in vendor `V`, registered as `name` (which must be `V::KIND`: checked at
    /// compile time) behind the facade's cargo feature `feature` (`None`: always compiled).
    pub const fn compiled<V: Vendor>(name: &'static str, feature: Option<&'static str>) -> Self
    where
        V::Provider: Into<AnyProvider>,
    {
        assert!(
            same(name, V::KIND.as_str()),
            "a registration's name must be its vendor's KIND"
        );
        Registration {
            name,
            feature,
            hooks: Some(Hooks {
                parse: parse::<V>,
                from_env: from_env::<V>,
            }),
        }
    }

    /// A vendor whose feature is off in this build: its configs parse, and building one is
    /// [`Error::FeatureNotEnabled`] naming `feature`.
    pub const fn compiled_out(name: &'static str, feature: &'static str) -> Self {
        Registration {
            name,
            feature: Some(feature),
            hooks: None,
        }
    }

    /// The vendor's name: its `provider` tag in configs and its name in reports.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The vendor's kind.
    pub fn kind(&self) -> ProviderKind {
        ProviderKind::from_static(self.name)
    }

    /// The cargo feature that compiles it in (`licensekit/genesys`); `None` for the in-memory
    /// provider, which is always there.
    pub fn feature(&self) -> Option<&'static str> {
        self.feature
    }

    /// Whether this build contains the vendor's adapter.
    pub fn is_compiled_in(&self) -> bool {
        self.hooks.is_some()
    }

    fn not_enabled(&self) -> Error {
        Error::FeatureNotEnabled {
            provider: self.kind(),
            feature: self.feature.unwrap_or(""),
        }
    }

    /// Reads this vendor's configuration (a JSON object without its `provider` tag).
    pub(crate) fn parse(
        &self,
        value: serde_json::Value,
    ) -> std::result::Result<Option<Box<dyn DynConfig>>, serde_json::Error> {
        self.hooks.map(|h| (h.parse)(value)).transpose()
    }

    /// A configuration from this vendor's `LICENSEKIT_<VENDOR>_*` variables among `vars`.
    pub(crate) fn config_from_env(&self, vars: Vec<(String, String)>) -> Result<Erased> {
        match self.hooks {
            Some(h) => (h.from_env)(vars),
            None => Err(self.not_enabled()),
        }
    }

    pub(crate) fn feature_not_enabled(&self) -> Error {
        self.not_enabled()
    }
}

impl fmt::Debug for Registration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registration")
            .field("name", &self.name)
            .field("feature", &self.feature)
            .field("compiled_in", &self.is_compiled_in())
            .finish()
    }
}

const fn same(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// A vendor's typed configuration behind a trait object, so one [`ProviderConfig`] type holds
/// any vendor's.
///
/// [`ProviderConfig`]: crate::ProviderConfig
pub(crate) trait DynConfig: fmt::Debug + Send + Sync {
    fn clone_box(&self) -> Box<dyn DynConfig>;
    fn set(&mut self, key: &str, value: &str) -> Result<()>;
    fn build(self: Box<Self>) -> Result<AnyProvider>;
    fn as_any(&self) -> &dyn Any;
}

/// `V`'s configuration.
pub(crate) struct Typed<V: Vendor>(pub(crate) V::Config);

impl<V: Vendor> fmt::Debug for Typed<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The vendor's own Debug, which prints no secret.
        self.0.fmt(f)
    }
}

impl<V: Vendor> DynConfig for Typed<V>
where
    V::Provider: Into<AnyProvider>,
{
    fn clone_box(&self) -> Box<dyn DynConfig> {
        Box::new(Typed::<V>(self.0.clone()))
    }
    fn set(&mut self, key: &str, value: &str) -> Result<()> {
        self.0.set(key.parse()?, value)
    }
    fn build(self: Box<Self>) -> Result<AnyProvider> {
        V::build(self.0).map(Into::into)
    }
    fn as_any(&self) -> &dyn Any {
        &self.0
    }
}

fn parse<V: Vendor>(
    value: serde_json::Value,
) -> std::result::Result<Box<dyn DynConfig>, serde_json::Error>
where
    V::Provider: Into<AnyProvider>,
{
    Ok(Box::new(Typed::<V>(serde_json::from_value(value)?)))
}

fn from_env<V: Vendor>(vars: Vec<(String, String)>) -> Result<Box<dyn DynConfig>>
where
    V::Provider: Into<AnyProvider>,
{
    Ok(Box::new(Typed::<V>(V::Config::from_env_vars(vars)?)))
}

/// Declares the registry: one line per vendor, `IDENT = "name", feature "feature" =>
/// path::to::Descriptor;`. A vendor whose feature is off is registered as compiled out.
macro_rules! vendors {
    ($( $ident:ident = $name:literal, feature $feature:literal => $vendor:path; )*) => {
        $(
            #[cfg(feature = $feature)]
            const $ident: Registration =
                Registration::compiled::<$vendor>($name, Some(concat!("licensekit/", $feature)));
            #[cfg(not(feature = $feature))]
            const $ident: Registration =
                Registration::compiled_out($name, concat!("licensekit/", $feature));
        )*
        static VENDORS: &[Registration] = &[
            Registration::compiled::<licensekit_core::Memory>("memory", None),
            $( $ident, )*
        ];
    };
}

// The registry. A new vendor adds one line here (see CONTRIBUTING.md).
vendors! {
    APPLE_VPP = "apple-vpp", feature "apple-vpp" => licensekit_apple_vpp::AppleVpp;
    GENESYS = "genesys", feature "genesys" => licensekit_genesys::Genesys;
    SALESFORCE = "salesforce", feature "salesforce" => licensekit_salesforce::Salesforce;
    TOY = "toy", feature "toy" => licensekit_toy::Toy;
}

/// Every vendor this build knows, compiled in or not; the in-memory provider first.
pub fn vendors() -> &'static [Registration] {
    VENDORS
}

/// The registration named `name`; an unknown name is [`Error::InvalidInput`] listing the known
/// ones.
pub fn find(name: &str) -> Result<&'static Registration> {
    VENDORS.iter().find(|r| r.name == name).ok_or_else(|| {
        Error::invalid_input(format!(
            "unknown provider `{}`; expected one of {}",
            name.chars().take(60).collect::<String>(),
            names().join(", ")
        ))
    })
}

/// The names of every registered vendor, for help texts and messages.
pub fn names() -> Vec<&'static str> {
    VENDORS.iter().map(|r| r.name).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_valid() {
        let mut names = names();
        for name in &names {
            assert!(ProviderKind::new(name).is_ok(), "{name}");
        }
        let count = names.len();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), count, "a vendor is registered twice");
    }
}
