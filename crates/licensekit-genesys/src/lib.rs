//! Genesys Cloud LicenseApi adapter for licensekit.
//!
//! [`GenesysProvider`] implements [`licensekit_core::LicenseProvider`] over the Platform API v2
//! License resources; [`GenesysClient`] exposes every LicenseApi operation typed. The vendor's
//! rules, with sources, are in `shared/vendor-specs/genesys.md`; this crate's README lists where
//! the contract is silent and what we assumed.

mod client;
mod config;
mod error;
pub mod pacing;
mod provider;
pub mod region;
mod vendor;
pub mod wire;

pub use client::GenesysClient;
pub use config::GenesysConfig;
pub use error::CORRELATION_HEADER;
pub use provider::GenesysProvider;
pub use region::Region;
pub use vendor::{Genesys, GenesysConfigKey, KIND};
