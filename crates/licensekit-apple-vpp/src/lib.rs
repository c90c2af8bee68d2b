//! Apple Apps and Books for Organizations (VPP) v2 behind licensekit's
//! [`LicenseProvider`](licensekit_core::LicenseProvider), plus Apple-specific operations (users,
//! revoke-all, the legacy single-asset "manage licenses", incremental listing). The vendor's
//! rules, with sources, are in `shared/vendor-specs/apple-vpp.md`; the crate README lists what we
//! assumed where the contract is unsure.

mod client;
mod config;
mod error;
mod provider;
pub mod token;
mod vendor;
pub mod wire;

pub use client::{AppleClient, EventOutcome, Limits, UserAction};
pub use config::{AppleVppConfig, DEFAULT_BASE_URL};
pub use provider::{
    AppleVppProvider, ListingVersions, ManageLicensesReport, ManageLicensesRequest,
    VersionedAssignments, is_mdm_conflict, parse_product,
};
pub use token::TokenInfo;
pub use vendor::{AppleVpp, AppleVppConfigKey, KIND};
