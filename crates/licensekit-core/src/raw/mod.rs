//! The toolkit for writing a vendor adapter — **not** the API for using one.
//!
//! Users of licensekit need nothing from here: the model, the [`LicenseProvider`] trait, errors,
//! [`ChangeRequest`] and the client settings ([`ClientOptions`](crate::ClientOptions)) are at the
//! crate root. This module is what an adapter crate builds on, in the manner of OpenDAL's `raw`:
//!
//! - [`bulk`]: the engine every provider's assign and revoke run through (dedupe, validation,
//!   batching, concurrency, read-back and the rules that make each outcome true). An adapter
//!   implements [`bulk::BulkBackend`] and calls [`bulk::run`].
//! - `client` (feature `http`): the shared HTTP machinery — one reqwest client, retries with
//!   backoff and `Retry-After`, credentials and token caches, request limits, paged listings,
//!   error classification.
//!
//! It changes more often than the user API: expect breaking changes here in minor releases.
//!
//! [`LicenseProvider`]: crate::LicenseProvider
//! [`ChangeRequest`]: crate::ChangeRequest

pub mod bulk;

#[cfg(feature = "http")]
#[cfg_attr(docsrs, doc(cfg(feature = "http")))]
pub mod client;
