//! Salesforce managed-package licenses (`PackageLicense` / `UserPackageLicense`) behind
//! licensekit's [`LicenseProvider`](licensekit_core::LicenseProvider). The vendor's rules, with
//! sources, are in `shared/vendor-specs/salesforce.md`; the crate README lists what we assumed
//! where the contract is silent.

mod auth;
pub mod budget;
mod client;
mod config;
mod error;
pub mod ids;
mod provider;
pub mod soql;
pub mod wire;

pub use budget::{ApiBudget, ApiUsage};
pub use client::{MAX_COLLECTION, MAX_IDS_PER_QUERY, SalesforceClient};
pub use config::{DEFAULT_API_VERSION, SalesforceAuth, SalesforceConfig};
pub use provider::{SalesforceProvider, session};
