//! Genesys Cloud LicenseApi adapter for licensekit.
//!
//! [`GenesysProvider`] implements [`licensekit_core::LicenseProvider`] over the Platform API v2
//! License resources; [`GenesysClient`] exposes every LicenseApi operation typed. The vendor's
//! rules, with sources, are in `shared/vendor-specs/genesys.md`; this crate's README lists where
//! the contract is silent and what we assumed.

mod client;
mod config;
mod error;
mod pacing;
mod provider;
mod region;
mod wire;

pub use config::GenesysConfig;
pub use error::CORRELATION_HEADER;
pub use pacing::{DEFAULT_CONCURRENCY, DOCUMENTED_PER_MINUTE};
pub use provider::GenesysProvider;
pub use region::Region;

/// Internals for this workspace's tests and benches (feature `testing`): the wire types and the
/// typed client. Not part of the API; may change in any release.
#[cfg(feature = "testing")]
#[doc(hidden)]
pub mod testing {
    pub use crate::client::GenesysClient;

    /// Every wire type.
    pub mod wire {
        pub use crate::wire::*;
    }

    /// The provider's typed License API client.
    pub fn client(provider: &crate::GenesysProvider) -> &GenesysClient {
        provider.client()
    }
}
