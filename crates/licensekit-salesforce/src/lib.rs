#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

mod auth;
mod budget;
mod client;
mod config;
mod error;
mod ids;
mod provider;
mod soql;
mod vendor;
mod wire;

pub use budget::{ApiBudget, ApiUsage, DEFAULT_CONCURRENCY, DEFAULT_RESERVE_PERCENT};
pub use client::{MAX_COLLECTION, MAX_IDS_PER_QUERY};
pub use config::{DEFAULT_API_VERSION, SalesforceAuth, SalesforceConfig};
pub use provider::SalesforceProvider;
pub use vendor::{KIND, Salesforce, SalesforceConfigKey};

/// Internals for this workspace's tests and benches (feature `testing`): the wire types, the
/// typed client, ids and SOQL quoting. Not part of the API; may change in any release.
#[cfg(feature = "testing")]
#[doc(hidden)]
pub mod testing {
    pub use crate::client::SalesforceClient;
    pub use crate::ids::SalesforceId;

    /// Every wire type.
    pub mod wire {
        pub use crate::wire::*;
    }

    /// SOQL literals.
    pub mod soql {
        pub use crate::soql::*;
    }

    /// The provider's typed REST client.
    pub fn client(provider: &crate::SalesforceProvider) -> &SalesforceClient {
        provider.client()
    }
}
