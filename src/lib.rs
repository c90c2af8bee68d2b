//! # licensekit
//!
//! Manage software licenses across vendors through one model: pick providers with cargo features,
//! then assign, revoke and list licenses without caring whose API sits behind.
//!
//! - [`LicenseProvider`]: the trait every provider implements (see `licensekit-core`).
//! - [`AnyProvider`]: one enum over the providers compiled into this build.
//! - [`ProviderConfig`]: serde configuration that builds an [`AnyProvider`].
//! - [`InMemoryProvider`]: always available, behaves like a vendor; for tests and demos.
//! - [`report`]: the cross-vendor report; [`plan`]: desired state, plan and apply.

// The user API only, named item by item: the adapter-authoring toolkit stays in
// `licensekit_core::raw` and is not re-exported here.
pub use licensekit_core::{
    Assignment, AssignmentFilter, BoxError, CancellationToken, Capabilities, ChangeAction,
    ChangeObserver, ChangeReport, ChangeRequest, Error, ErrorKind, Holder, HolderId, HolderKind,
    InMemoryProvider, ItemOutcome, LicenseProvider, LicenseProviderExt, MemoryConfig,
    MemoryProduct, MemoryUser, Outcome, OutcomeCounts, OutcomeStatus, Product, ProductId,
    Provenance, ProviderKind, Result, SeatTotal, Seats, VendorError, VendorFields,
};
/// The HTTP client settings every vendor adapter takes (with any vendor feature).
#[cfg(any(feature = "apple-vpp", feature = "genesys", feature = "salesforce"))]
#[cfg_attr(
    docsrs,
    doc(cfg(any(feature = "apple-vpp", feature = "genesys", feature = "salesforce")))
)]
pub use licensekit_core::{ClientOptions, Rate, RetryConfig, RetryOptions};

mod any;
mod config;
pub mod plan;
pub mod report;

/// License history: snapshots of reports in SQLite or PostgreSQL (feature `history`).
#[cfg(feature = "history")]
pub mod history;

pub use any::AnyProvider;

pub use config::{Contract, Period, ProviderConfig};
/// The Apple VPP adapter (feature `apple-vpp`).
#[cfg(feature = "apple-vpp")]
pub use licensekit_apple_vpp as apple_vpp;
/// The decimal type of every money figure (exact; never a float).
pub use rust_decimal::Decimal;

/// The Genesys Cloud adapter (feature `genesys`).
#[cfg(feature = "genesys")]
pub use licensekit_genesys as genesys;

/// The Salesforce adapter (feature `salesforce`).
#[cfg(feature = "salesforce")]
pub use licensekit_salesforce as salesforce;
