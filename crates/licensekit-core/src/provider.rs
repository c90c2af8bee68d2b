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
            ///
            /// ```
            /// # use licensekit_core::*;
            /// # use futures::TryStreamExt;
            /// # #[tokio::main(flavor = "current_thread")]
            /// # async fn main() -> licensekit_core::Result<()> {
            /// # let provider = InMemoryProvider::new(serde_json::from_value(serde_json::json!({
            /// #     "products": [{"id": "design-suite", "name": "Design Suite", "seats": 2}],
            /// #     "users": [{"id": "ada", "email": "ada@example.com"}, {"id": "grace"}],
            /// #     "assignments": [{"product": "design-suite", "holder": {"kind": "user", "id": "ada"}}]
            /// # })).unwrap())?;
            /// assert_eq!(provider.kind(), InMemoryProvider::KIND);
            /// # Ok(())
            /// # }
            /// ```
            fn kind(&self) -> ::licensekit_core::ProviderKind;

            /// What this provider supports; checked before any I/O.
            ///
            /// ```
            /// # use licensekit_core::*;
            /// # use futures::TryStreamExt;
            /// # #[tokio::main(flavor = "current_thread")]
            /// # async fn main() -> licensekit_core::Result<()> {
            /// # let provider = InMemoryProvider::new(serde_json::from_value(serde_json::json!({
            /// #     "products": [{"id": "design-suite", "name": "Design Suite", "seats": 2}],
            /// #     "users": [{"id": "ada", "email": "ada@example.com"}, {"id": "grace"}],
            /// #     "assignments": [{"product": "design-suite", "holder": {"kind": "user", "id": "ada"}}]
            /// # })).unwrap())?;
            /// let caps = provider.capabilities();
            /// assert!(caps.user_holders);
            /// # Ok(())
            /// # }
            /// ```
            fn capabilities(&self) -> ::licensekit_core::Capabilities;

            /// Which account of its vendor this provider reads: a stable name that is never a
            /// secret (a Salesforce org id, a Genesys region and OAuth client, an Apple location
            /// id), so that history of two tenants of one vendor is never mixed. It may cost one
            /// cheap call the first time, and the adapters state it without inventing anything.
            ///
            /// The default, the provider's kind alone, is for providers with one account only
            /// (the in-memory provider); every vendor adapter states its own, and wrappers
            /// forward it.
            async fn identity(&self) -> ::licensekit_core::Result<::std::string::String> {
                ::std::result::Result::Ok(self.kind().as_str().to_owned())
            }

            /// Every product (seat pool) with its seat counts.
            ///
            /// ```
            /// # use licensekit_core::*;
            /// # use futures::TryStreamExt;
            /// # #[tokio::main(flavor = "current_thread")]
            /// # async fn main() -> licensekit_core::Result<()> {
            /// # let provider = InMemoryProvider::new(serde_json::from_value(serde_json::json!({
            /// #     "products": [{"id": "design-suite", "name": "Design Suite", "seats": 2}],
            /// #     "users": [{"id": "ada", "email": "ada@example.com"}, {"id": "grace"}],
            /// #     "assignments": [{"product": "design-suite", "holder": {"kind": "user", "id": "ada"}}]
            /// # })).unwrap())?;
            /// let products = provider.products().await?;
            /// assert_eq!(products[0].id, ProductId::new("design-suite"));
            /// # Ok(())
            /// # }
            /// ```
            async fn products(&self) -> ::licensekit_core::Result<::std::vec::Vec<::licensekit_core::Product>>;

            /// Assignments matching `filter`, streamed page by page with flat memory.
            ///
            /// ```
            /// # use licensekit_core::*;
            /// # use futures::TryStreamExt;
            /// # #[tokio::main(flavor = "current_thread")]
            /// # async fn main() -> licensekit_core::Result<()> {
            /// # let provider = InMemoryProvider::new(serde_json::from_value(serde_json::json!({
            /// #     "products": [{"id": "design-suite", "name": "Design Suite", "seats": 2}],
            /// #     "users": [{"id": "ada", "email": "ada@example.com"}, {"id": "grace"}],
            /// #     "assignments": [{"product": "design-suite", "holder": {"kind": "user", "id": "ada"}}]
            /// # })).unwrap())?;
            /// let held: Vec<Assignment> = provider
            ///     .assignments(AssignmentFilter::product(ProductId::new("design-suite")))
            ///     .try_collect()
            ///     .await?;
            /// assert_eq!(held.len(), 1);
            /// # Ok(())
            /// # }
            /// ```
            fn assignments(
                &self,
                filter: ::licensekit_core::AssignmentFilter,
            ) -> ::licensekit_core::__private::BoxStream<'static, ::licensekit_core::Result<::licensekit_core::Assignment>>;

            /// The vendor's user directory (needs `capabilities().holder_directory`), streamed.
            ///
            /// ```
            /// # use licensekit_core::*;
            /// # use futures::TryStreamExt;
            /// # #[tokio::main(flavor = "current_thread")]
            /// # async fn main() -> licensekit_core::Result<()> {
            /// # let provider = InMemoryProvider::new(serde_json::from_value(serde_json::json!({
            /// #     "products": [{"id": "design-suite", "name": "Design Suite", "seats": 2}],
            /// #     "users": [{"id": "ada", "email": "ada@example.com"}, {"id": "grace"}],
            /// #     "assignments": [{"product": "design-suite", "holder": {"kind": "user", "id": "ada"}}]
            /// # })).unwrap())?;
            /// let people: Vec<Holder> = provider.holders().try_collect().await?;
            /// assert_eq!(people.len(), 2);
            /// # Ok(())
            /// # }
            /// ```
            fn holders(&self) -> ::licensekit_core::__private::BoxStream<'static, ::licensekit_core::Result<::licensekit_core::Holder>>;

            /// Assigns or revokes `request.product` for every holder in `request.holders`, through
            /// the bulk engine ([`licensekit_core::raw::bulk`]): one outcome per requested item, in
            /// request order, each settled from what the vendor did. Callers usually use
            /// [`LicenseProviderExt::assign`](crate::LicenseProviderExt::assign) and
            /// [`revoke`](crate::LicenseProviderExt::revoke); this form adds an observer and
            /// cancellation.
            ///
            /// ```
            /// # use licensekit_core::*;
            /// # use futures::TryStreamExt;
            /// # #[tokio::main(flavor = "current_thread")]
            /// # async fn main() -> licensekit_core::Result<()> {
            /// # let provider = InMemoryProvider::new(serde_json::from_value(serde_json::json!({
            /// #     "products": [{"id": "design-suite", "name": "Design Suite", "seats": 2}],
            /// #     "users": [{"id": "ada", "email": "ada@example.com"}, {"id": "grace"}],
            /// #     "assignments": [{"product": "design-suite", "holder": {"kind": "user", "id": "ada"}}]
            /// # })).unwrap())?;
            /// let request = ChangeRequest::assign(ProductId::new("design-suite"), vec![HolderId::user("grace")]);
            /// let report = provider.change(request).await?;
            /// assert!(matches!(report.items[0].outcome, Outcome::Applied));
            /// # Ok(())
            /// # }
            /// ```
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
            async fn identity(&self) -> Result<String> {
                (**self).identity().await
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
    ///
    /// ```
    /// # use licensekit_core::*;
    /// # use futures::TryStreamExt;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> licensekit_core::Result<()> {
    /// # let provider = InMemoryProvider::new(serde_json::from_value(serde_json::json!({
    /// #     "products": [{"id": "design-suite", "name": "Design Suite", "seats": 2}],
    /// #     "users": [{"id": "ada", "email": "ada@example.com"}, {"id": "grace"}],
    /// #     "assignments": [{"product": "design-suite", "holder": {"kind": "user", "id": "ada"}}]
    /// # })).unwrap())?;
    /// let all = provider.all_assignments(AssignmentFilter::all()).await?;
    /// assert_eq!(all.len(), 1);
    /// # Ok(())
    /// # }
    /// ```
    async fn all_assignments(&self, filter: AssignmentFilter) -> Result<Vec<Assignment>> {
        self.assignments(filter).try_collect().await
    }

    /// Everything one holder holds at this provider.
    ///
    /// ```
    /// # use licensekit_core::*;
    /// # use futures::TryStreamExt;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> licensekit_core::Result<()> {
    /// # let provider = InMemoryProvider::new(serde_json::from_value(serde_json::json!({
    /// #     "products": [{"id": "design-suite", "name": "Design Suite", "seats": 2}],
    /// #     "users": [{"id": "ada", "email": "ada@example.com"}, {"id": "grace"}],
    /// #     "assignments": [{"product": "design-suite", "holder": {"kind": "user", "id": "ada"}}]
    /// # })).unwrap())?;
    /// let ada = provider.assignments_of(&HolderId::user("ada")).await?;
    /// assert_eq!(ada[0].product, ProductId::new("design-suite"));
    /// # Ok(())
    /// # }
    /// ```
    async fn assignments_of(&self, holder: &HolderId) -> Result<Vec<Assignment>> {
        self.all_assignments(AssignmentFilter::holder(holder.clone()))
            .await
    }

    /// Collects the user directory.
    ///
    /// ```
    /// # use licensekit_core::*;
    /// # use futures::TryStreamExt;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> licensekit_core::Result<()> {
    /// # let provider = InMemoryProvider::new(serde_json::from_value(serde_json::json!({
    /// #     "products": [{"id": "design-suite", "name": "Design Suite", "seats": 2}],
    /// #     "users": [{"id": "ada", "email": "ada@example.com"}, {"id": "grace"}],
    /// #     "assignments": [{"product": "design-suite", "holder": {"kind": "user", "id": "ada"}}]
    /// # })).unwrap())?;
    /// assert_eq!(provider.all_holders().await?.len(), 2);
    /// # Ok(())
    /// # }
    /// ```
    async fn all_holders(&self) -> Result<Vec<Holder>> {
        self.holders().try_collect().await
    }

    /// One product by id, or [`Error::NotFound`].
    ///
    /// ```
    /// # use licensekit_core::*;
    /// # use futures::TryStreamExt;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> licensekit_core::Result<()> {
    /// # let provider = InMemoryProvider::new(serde_json::from_value(serde_json::json!({
    /// #     "products": [{"id": "design-suite", "name": "Design Suite", "seats": 2}],
    /// #     "users": [{"id": "ada", "email": "ada@example.com"}, {"id": "grace"}],
    /// #     "assignments": [{"product": "design-suite", "holder": {"kind": "user", "id": "ada"}}]
    /// # })).unwrap())?;
    /// let product = provider.product(&ProductId::new("design-suite")).await?;
    /// assert_eq!(product.name, "Design Suite");
    /// let missing = provider.product(&ProductId::new("nope")).await.unwrap_err();
    /// assert_eq!(missing.kind(), ErrorKind::NotFound);
    /// # Ok(())
    /// # }
    /// ```
    async fn product(&self, id: &ProductId) -> Result<Product> {
        self.products()
            .await?
            .into_iter()
            .find(|p| &p.id == id)
            .ok_or_else(|| Error::not_found(self.kind(), format!("product {id}")))
    }

    /// Gives `product` to every holder; one outcome per requested item (see
    /// [`LicenseProvider::change`]).
    ///
    /// ```
    /// # use licensekit_core::*;
    /// # use futures::TryStreamExt;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> licensekit_core::Result<()> {
    /// # let provider = InMemoryProvider::new(serde_json::from_value(serde_json::json!({
    /// #     "products": [{"id": "design-suite", "name": "Design Suite", "seats": 2}],
    /// #     "users": [{"id": "ada", "email": "ada@example.com"}, {"id": "grace"}],
    /// #     "assignments": [{"product": "design-suite", "holder": {"kind": "user", "id": "ada"}}]
    /// # })).unwrap())?;
    /// let product = ProductId::new("design-suite");
    /// let report = provider
    ///     .assign(&product, &[HolderId::user("ada"), HolderId::user("grace")])
    ///     .await?;
    /// // One outcome per requested holder, in order: ada already had a seat.
    /// assert!(matches!(report.items[0].outcome, Outcome::AlreadyInState));
    /// assert!(matches!(report.items[1].outcome, Outcome::Applied));
    /// # Ok(())
    /// # }
    /// ```
    async fn assign(&self, product: &ProductId, holders: &[HolderId]) -> Result<ChangeReport> {
        self.change(ChangeRequest::assign(product.clone(), holders.to_vec()))
            .await
    }

    /// Takes `product` away from every holder; one outcome per requested item.
    ///
    /// ```
    /// # use licensekit_core::*;
    /// # use futures::TryStreamExt;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> licensekit_core::Result<()> {
    /// # let provider = InMemoryProvider::new(serde_json::from_value(serde_json::json!({
    /// #     "products": [{"id": "design-suite", "name": "Design Suite", "seats": 2}],
    /// #     "users": [{"id": "ada", "email": "ada@example.com"}, {"id": "grace"}],
    /// #     "assignments": [{"product": "design-suite", "holder": {"kind": "user", "id": "ada"}}]
    /// # })).unwrap())?;
    /// let report = provider
    ///     .revoke(&ProductId::new("design-suite"), &[HolderId::user("ada")])
    ///     .await?;
    /// assert_eq!(report.counts().applied, 1);
    /// # Ok(())
    /// # }
    /// ```
    async fn revoke(&self, product: &ProductId, holders: &[HolderId]) -> Result<ChangeReport> {
        self.change(ChangeRequest::revoke(product.clone(), holders.to_vec()))
            .await
    }

    /// Assigns one holder and returns its outcome.
    ///
    /// ```
    /// # use licensekit_core::*;
    /// # use futures::TryStreamExt;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> licensekit_core::Result<()> {
    /// # let provider = InMemoryProvider::new(serde_json::from_value(serde_json::json!({
    /// #     "products": [{"id": "design-suite", "name": "Design Suite", "seats": 2}],
    /// #     "users": [{"id": "ada", "email": "ada@example.com"}, {"id": "grace"}],
    /// #     "assignments": [{"product": "design-suite", "holder": {"kind": "user", "id": "ada"}}]
    /// # })).unwrap())?;
    /// let outcome = provider
    ///     .assign_one(&ProductId::new("design-suite"), HolderId::user("grace"))
    ///     .await?;
    /// assert!(matches!(outcome, Outcome::Applied));
    /// # Ok(())
    /// # }
    /// ```
    async fn assign_one(&self, product: &ProductId, holder: HolderId) -> Result<Outcome> {
        let report = self.assign(product, std::slice::from_ref(&holder)).await?;
        single_outcome(self.kind(), report)
    }

    /// Revokes from one holder and returns its outcome.
    ///
    /// ```
    /// # use licensekit_core::*;
    /// # use futures::TryStreamExt;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> licensekit_core::Result<()> {
    /// # let provider = InMemoryProvider::new(serde_json::from_value(serde_json::json!({
    /// #     "products": [{"id": "design-suite", "name": "Design Suite", "seats": 2}],
    /// #     "users": [{"id": "ada", "email": "ada@example.com"}, {"id": "grace"}],
    /// #     "assignments": [{"product": "design-suite", "holder": {"kind": "user", "id": "ada"}}]
    /// # })).unwrap())?;
    /// let outcome = provider
    ///     .revoke_one(&ProductId::new("design-suite"), HolderId::user("grace"))
    ///     .await?;
    /// assert!(matches!(outcome, Outcome::AlreadyInState));
    /// # Ok(())
    /// # }
    /// ```
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
