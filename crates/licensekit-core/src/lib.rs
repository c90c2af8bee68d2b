#![warn(missing_docs)]
//! licensekit-core: the normalized license model, the [`LicenseProvider`] trait, errors,
//! capabilities, the in-memory provider and (feature `http`) the HTTP client layer every vendor
//! adapter shares. Feature `testkit` adds the conformance suite.

// Lets the exported trait macro use `::licensekit_core::` paths inside this crate too.
extern crate self as licensekit_core;

pub mod capabilities;
pub mod error;
mod kind;
pub mod memory;
pub mod model;
pub mod provider;
pub mod raw;
pub mod vendor;

// Inside this crate the toolkit keeps its short paths.
pub(crate) use raw::bulk;
#[cfg(feature = "http")]
pub(crate) use raw::client;

#[cfg(feature = "testkit")]
pub mod testkit;

pub use bulk::{CancellationToken, ChangeObserver, ChangeRequest};
pub use capabilities::Capabilities;
#[cfg(feature = "http")]
#[cfg_attr(docsrs, doc(cfg(feature = "http")))]
pub use client::{ClientOptions, Rate, RetryConfig, RetryOptions};
pub use error::{BoxError, Error, ErrorKind, Result, VendorError};
pub use kind::InvalidProviderName;
pub use memory::{
    InMemoryProvider, Memory, MemoryConfig, MemoryConfigKey, MemoryProduct, MemoryUser,
};
pub use model::{
    Assignment, AssignmentFilter, ChangeAction, ChangeReport, Holder, HolderId, HolderKind,
    ItemOutcome, Outcome, OutcomeCounts, OutcomeStatus, Product, ProductId, Provenance,
    ProviderKind, SeatTotal, Seats, VendorFields,
};
pub use provider::{LicenseProvider, LicenseProviderExt};
pub use vendor::{Vendor, VendorConfig};

/// Re-exports used by exported macros; not part of the public API.
#[doc(hidden)]
pub mod __private {
    pub use async_trait::async_trait;
    pub use futures::stream::BoxStream;
}
