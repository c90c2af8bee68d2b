#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

mod client;
mod config;
mod error;
mod pacing;
mod provider;
mod region;
mod vendor;
mod wire;

pub use config::GenesysConfig;
pub use error::CORRELATION_HEADER;
pub use pacing::{DEFAULT_CONCURRENCY, DOCUMENTED_PER_MINUTE};
pub use provider::GenesysProvider;
pub use region::Region;
pub use vendor::{Genesys, GenesysConfigKey, KIND};

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
