#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

// The user API only, named item by item: the adapter-authoring toolkit stays in
// `licensekit_core::raw` and is not re-exported here.
pub use licensekit_core::{
    Assignment, AssignmentFilter, BoxError, CancellationToken, Capabilities, ChangeAction,
    ChangeObserver, ChangeReport, ChangeRequest, Error, ErrorKind, Holder, HolderId, HolderKind,
    InMemoryProvider, InvalidProviderName, ItemOutcome, LicenseProvider, LicenseProviderExt,
    Memory, MemoryConfig, MemoryConfigKey, MemoryProduct, MemoryUser, Outcome, OutcomeCounts,
    OutcomeStatus, Product, ProductId, Provenance, ProviderKind, Result, SeatTotal, Seats, Vendor,
    VendorConfig, VendorError, VendorFields,
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
pub mod registry;
pub mod report;

// License history: snapshots of reports in SQLite or PostgreSQL (feature `history`). Its docs
// are the module's own (an outer doc here would resolve its links in the wrong scope).
#[cfg(feature = "history")]
#[cfg_attr(docsrs, doc(cfg(feature = "history")))]
pub mod history;

pub use any::AnyProvider;

pub use config::{Contract, Period, ProviderConfig};
/// The Apple VPP adapter (feature `apple-vpp`).
#[cfg(feature = "apple-vpp")]
#[cfg_attr(docsrs, doc(cfg(feature = "apple-vpp")))]
pub use licensekit_apple_vpp as apple_vpp;
/// The decimal type of every money figure (exact; never a float).
pub use rust_decimal::Decimal;

/// The Genesys Cloud adapter (feature `genesys`).
#[cfg(feature = "genesys")]
#[cfg_attr(docsrs, doc(cfg(feature = "genesys")))]
pub use licensekit_genesys as genesys;

/// The Salesforce adapter (feature `salesforce`).
#[cfg(feature = "salesforce")]
#[cfg_attr(docsrs, doc(cfg(feature = "salesforce")))]
pub use licensekit_salesforce as salesforce;
