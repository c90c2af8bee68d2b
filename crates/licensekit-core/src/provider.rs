//! The trait every provider implements, and the conveniences built on it.

use std::sync::Arc;

use async_trait::async_trait;
use futures::TryStreamExt;

use crate::bulk::ChangeRequest;
use crate::error::{Error, Result};
use crate::model::{
    Assignment, AssignmentFilter, ChangeReport, Holder, HolderId, Outcome, Product, ProductId,
};

/// Defines `LicenseProvider`. One definition, expanded twice: here, as the real trait, and in the
/// `licensekit` facade, as a never-used mirror carrying `#[enum_dispatch]`. enum_dispatch keeps its
/// trait registry inside one compiler process, so an enum in the facade cannot see a trait
/// declared in this crate; the mirror registers the exact same signatures there, and the generated
/// `impl LicenseProvider for AnyProvider` then resolves to this crate's trait. Keeping the
/// signatures in one macro means the two can never drift apart.
///
/// Attributes passed in are placed *below* `#[async_trait]` (enum_dispatch must see the trait
/// after async_trait has rewritten it). Paths are absolute (`::licensekit_core::…`) rather than
/// `$crate::…` because enum_dispatch stores the trait as text, where `$crate` cannot be parsed.
#[doc(hidden)]
#[macro_export]
macro_rules! __license_provider_trait {
    ($(#[$attr:meta])*) => {
        /// A source of software licenses: products with seats, and who holds them.
        ///
        /// Minimal on purpose and without default methods, so a wrapper can never silently fall
        /// back to a default; conveniences live in [`LicenseProviderExt`](crate::LicenseProviderExt).
        ///
        /// Contract for `change` (and so `assign` and `revoke`): `Err` only when nothing was
        /// changed (unknown product, unsupported holder kind, authentication failure before any
        /// change). Once any change may have reached the vendor it returns `Ok` with exactly one
        /// [`Outcome`](crate::Outcome) per requested item, in request order; a repeated holder is
        /// `Duplicate` of its first occurrence. Safe to retry: a holder already in the requested
        /// state comes back as `AlreadyInState`, and `Unconfirmed` items settle on a re-run.
        #[::licensekit_core::__private::async_trait]
        $(#[$attr])*
        pub trait LicenseProvider: ::std::marker::Send + ::std::marker::Sync + ::std::fmt::Debug {
            /// Which provider this is.
            fn kind(&self) -> ::licensekit_core::ProviderKind;

            /// What this provider supports; checked before any I/O.
            fn capabilities(&self) -> ::licensekit_core::Capabilities;

            /// Every product (seat pool) with its seat counts.
            async fn products(&self) -> ::licensekit_core::Result<::std::vec::Vec<::licensekit_core::Product>>;

            /// Assignments matching `filter`, streamed page by page with flat memory.
            fn assignments(
                &self,
                filter: ::licensekit_core::AssignmentFilter,
            ) -> ::licensekit_core::__private::BoxStream<'static, ::licensekit_core::Result<::licensekit_core::Assignment>>;

            /// The vendor's user directory (needs `capabilities().holder_directory`), streamed.
            fn holders(&self) -> ::licensekit_core::__private::BoxStream<'static, ::licensekit_core::Result<::licensekit_core::Holder>>;

            /// Assigns or revokes `request.product` for every holder in `request.holders`, through
            /// the bulk engine ([`licensekit_core::bulk`]): one outcome per requested item, in
            /// request order, each settled from what the vendor did. Callers usually use
            /// [`LicenseProviderExt::assign`](crate::LicenseProviderExt::assign) and
            /// [`revoke`](crate::LicenseProviderExt::revoke); this form adds an observer and
            /// cancellation.
            async fn change(
                &self,
                request: ::licensekit_core::ChangeRequest,
            ) -> ::licensekit_core::Result<::licensekit_core::ChangeReport>;
        }
    };
}

__license_provider_trait!();

macro_rules! forward_license_provider {
    ($($wrapper:ident),*) => {$(
        #[async_trait]
        impl<T: LicenseProvider + ?Sized> LicenseProvider for $wrapper<T> {
            fn kind(&self) -> crate::ProviderKind {
                (**self).kind()
            }
            fn capabilities(&self) -> crate::Capabilities {
                (**self).capabilities()
            }
            async fn products(&self) -> Result<Vec<Product>> {
                (**self).products().await
            }
            fn assignments(
                &self,
                filter: AssignmentFilter,
            ) -> futures::stream::BoxStream<'static, Result<Assignment>> {
                (**self).assignments(filter)
            }
            fn holders(&self) -> futures::stream::BoxStream<'static, Result<Holder>> {
                (**self).holders()
            }
            async fn change(
                &self,
                request: crate::bulk::ChangeRequest,
            ) -> Result<crate::ChangeReport> {
                (**self).change(request).await
            }
        }
    )*};
}

forward_license_provider!(Arc, Box);

/// Conveniences over [`LicenseProvider`], implemented for every provider.
#[async_trait]
pub trait LicenseProviderExt: LicenseProvider {
    /// Collects every assignment matching `filter` (prefer streaming for large listings).
    async fn all_assignments(&self, filter: AssignmentFilter) -> Result<Vec<Assignment>> {
        self.assignments(filter).try_collect().await
    }

    /// Everything one holder holds at this provider.
    async fn assignments_of(&self, holder: &HolderId) -> Result<Vec<Assignment>> {
        self.all_assignments(AssignmentFilter::holder(holder.clone()))
            .await
    }

    /// Collects the user directory.
    async fn all_holders(&self) -> Result<Vec<Holder>> {
        self.holders().try_collect().await
    }

    /// One product by id, or [`Error::NotFound`].
    async fn product(&self, id: &ProductId) -> Result<Product> {
        self.products()
            .await?
            .into_iter()
            .find(|p| &p.id == id)
            .ok_or_else(|| Error::not_found(self.kind(), format!("product {id}")))
    }

    /// Gives `product` to every holder; one outcome per requested item (see
    /// [`LicenseProvider::change`]).
    async fn assign(&self, product: &ProductId, holders: &[HolderId]) -> Result<ChangeReport> {
        self.change(ChangeRequest::assign(product.clone(), holders.to_vec()))
            .await
    }

    /// Takes `product` away from every holder; one outcome per requested item.
    async fn revoke(&self, product: &ProductId, holders: &[HolderId]) -> Result<ChangeReport> {
        self.change(ChangeRequest::revoke(product.clone(), holders.to_vec()))
            .await
    }

    /// Assigns one holder and returns its outcome.
    async fn assign_one(&self, product: &ProductId, holder: HolderId) -> Result<Outcome> {
        let report = self.assign(product, std::slice::from_ref(&holder)).await?;
        single_outcome(self.kind(), report)
    }

    /// Revokes from one holder and returns its outcome.
    async fn revoke_one(&self, product: &ProductId, holder: HolderId) -> Result<Outcome> {
        let report = self.revoke(product, std::slice::from_ref(&holder)).await?;
        single_outcome(self.kind(), report)
    }
}

impl<T: LicenseProvider + ?Sized> LicenseProviderExt for T {}

fn single_outcome(provider: crate::ProviderKind, report: crate::ChangeReport) -> Result<Outcome> {
    report
        .items
        .into_iter()
        .next()
        .map(|item| item.outcome)
        .ok_or_else(|| {
            Error::Vendor(crate::VendorError::new(
                provider,
                None,
                "the provider returned no outcome for the requested holder",
            ))
        })
}
