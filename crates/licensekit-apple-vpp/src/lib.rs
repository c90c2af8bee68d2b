#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

mod client;
mod config;
mod error;
mod provider;
mod token;
mod vendor;
mod wire;

pub use config::{AppleVppConfig, DEFAULT_BASE_URL, DEFAULT_CONCURRENCY};
pub use provider::{
    AppleVppProvider, ListingVersions, ManageLicensesReport, ManageLicensesRequest,
    VersionedAssignments, is_mdm_conflict,
};
pub use token::TokenInfo;
pub use vendor::{AppleVpp, AppleVppConfigKey, KIND};
/// Apple's own shapes that the Apple-specific operations take or return: the MDM identity
/// ([`AppleVppConfig::with_mdm_info`]), a user to register
/// ([`AppleVppProvider::create_users`]) and an event's status
/// ([`AppleVppProvider::event_status`]). Every other wire type is private.
pub use wire::{ErrorInfo, ErrorResponse, MdmInfo, RequestUser, StatusResponse};

/// Internals for this workspace's tests and benches (feature `testing`): the wire types, the
/// typed client and the decoders. Not part of the API; may change in any release.
#[cfg(feature = "testing")]
#[doc(hidden)]
pub mod testing {
    pub use crate::client::{AppleClient, EventOutcome, Limits, UserAction};
    pub use crate::provider::parse_product;
    pub use crate::token::{decode, parse_apple_date};

    /// Every wire type.
    pub mod wire {
        pub use crate::wire::*;
    }

    /// The provider's typed v2 client.
    pub fn client(provider: &crate::AppleVppProvider) -> &AppleClient {
        provider.client()
    }
}
