//! The normalized model every provider maps its vendor's objects into.

use std::fmt;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{Error, ErrorKind};

/// Vendor-specific fields kept alongside the normalized ones, so nothing the vendor said is lost.
pub type VendorFields = serde_json::Map<String, serde_json::Value>;

pub use crate::kind::ProviderKind;

/// A product's id in its provider's own terms (VPP `adamId` + pricing, Genesys license id,
/// Salesforce PackageLicense id). Opaque to callers; each adapter documents its format.
///
/// Cloning is cheap (a shared string): a report names the same few products once per seat.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ProductId(Arc<str>);

impl ProductId {
    /// Wraps the vendor's id as the adapter formats it.
    pub fn new(id: impl Into<String>) -> Self {
        ProductId(Arc::from(id.into()))
    }
    /// The id as text, exactly as the adapter formatted it.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ProductId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&self.0)
    }
}

impl From<&str> for ProductId {
    fn from(s: &str) -> Self {
        ProductId(Arc::from(s))
    }
}

impl From<String> for ProductId {
    fn from(s: String) -> Self {
        ProductId(Arc::from(s))
    }
}

impl Serialize for ProductId {
    fn serialize<S: serde::Serializer>(
        &self,
        serializer: S,
    ) -> std::result::Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for ProductId {
    fn deserialize<D: serde::Deserializer<'de>>(
        deserializer: D,
    ) -> std::result::Result<Self, D::Error> {
        String::deserialize(deserializer).map(ProductId::from)
    }
}

/// How many seats a product has in total.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "value", rename_all = "snake_case")]
pub enum SeatTotal {
    /// A fixed number of seats (purchased, allowed or granted).
    Limited(u64),
    /// e.g. a Salesforce site license (`AllowedLicenses = -1`).
    Unlimited,
    /// The vendor's API does not say (e.g. Genesys purchased seats).
    Unknown,
}

/// Where a seat figure came from, so a report never presents a guess as a fact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Provenance {
    /// The vendor reported the number.
    Vendor,
    /// Counted by us from the vendor's assignment listing.
    Counted,
    /// Set in our configuration (e.g. a purchased-seat figure the API does not expose).
    Configured,
    /// Nobody knows.
    Unknown,
}

/// Seat counts of a product, each with its provenance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Seats {
    /// Seats owned in total.
    pub total: SeatTotal,
    /// Where [`Seats::total`] came from.
    pub total_source: Provenance,
    /// Seats in use; `None` when neither the vendor nor a listing said.
    pub assigned: Option<u64>,
    /// Where [`Seats::assigned`] came from.
    pub assigned_source: Provenance,
}

impl Seats {
    /// Both figures reported by the vendor.
    pub fn reported(total: SeatTotal, assigned: u64) -> Self {
        Seats {
            total,
            total_source: Provenance::Vendor,
            assigned: Some(assigned),
            assigned_source: Provenance::Vendor,
        }
    }

    /// Nothing known yet.
    pub fn unknown() -> Self {
        Seats {
            total: SeatTotal::Unknown,
            total_source: Provenance::Unknown,
            assigned: None,
            assigned_source: Provenance::Unknown,
        }
    }

    /// Replaces the total and its provenance.
    pub fn with_total(mut self, total: SeatTotal, source: Provenance) -> Self {
        self.total = total;
        self.total_source = source;
        self
    }

    /// Sets the assigned count and its provenance.
    pub fn with_assigned(mut self, assigned: u64, source: Provenance) -> Self {
        self.assigned = Some(assigned);
        self.assigned_source = source;
        self
    }

    /// Free seats when both figures are known; `None` for unlimited or unknown totals.
    /// Saturates at zero (an over-allocated product has no free seats, see [`Seats::over_allocated_by`]).
    ///
    /// ```
    /// use licensekit_core::{Provenance, SeatTotal, Seats};
    ///
    /// assert_eq!(Seats::reported(SeatTotal::Limited(10), 7).available(), Some(3));
    /// assert_eq!(Seats::reported(SeatTotal::Limited(10), 12).available(), Some(0));
    /// assert_eq!(Seats::reported(SeatTotal::Limited(10), 12).over_allocated_by(), Some(2));
    /// assert_eq!(Seats::reported(SeatTotal::Unlimited, 7).available(), None);
    /// // Genesys does not report purchased seats: a configured figure fills the gap.
    /// let seats = Seats::unknown()
    ///     .with_assigned(4, Provenance::Counted)
    ///     .with_total(SeatTotal::Limited(5), Provenance::Configured);
    /// assert_eq!(seats.available(), Some(1));
    /// ```
    pub fn available(&self) -> Option<u64> {
        match (self.total, self.assigned) {
            (SeatTotal::Limited(total), Some(assigned)) => Some(total.saturating_sub(assigned)),
            _ => None,
        }
    }

    /// How many seats more are assigned than owned, if any.
    pub fn over_allocated_by(&self) -> Option<u64> {
        match (self.total, self.assigned) {
            (SeatTotal::Limited(total), Some(assigned)) if assigned > total => {
                Some(assigned - total)
            }
            _ => None,
        }
    }
}

/// A pool of seats: what licenses are counted for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Product {
    /// The vendor this product belongs to.
    pub provider: ProviderKind,
    /// The product's id at its vendor.
    pub id: ProductId,
    /// The vendor's display name for the product (an app name, a license definition, a package).
    pub name: String,
    /// How many seats it has and how many are in use.
    pub seats: Seats,
    /// Vendor-specific fields (Apple productType, Salesforce Status/ExpirationDate, …).
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub vendor: VendorFields,
}

impl Product {
    /// A product with no vendor fields.
    ///
    /// ```
    /// use licensekit_core::{Product, ProviderKind, SeatTotal, Seats};
    ///
    /// let p = Product::new(ProviderKind::from_static("memory"), "app-1", "Keynote", Seats::reported(SeatTotal::Limited(10), 7));
    /// assert_eq!(p.id.as_str(), "app-1");
    /// assert_eq!(p.seats.available(), Some(3));
    /// ```
    pub fn new(
        provider: ProviderKind,
        id: impl Into<ProductId>,
        name: impl Into<String>,
        seats: Seats,
    ) -> Self {
        Product {
            provider,
            id: id.into(),
            name: name.into(),
            seats,
            vendor: VendorFields::new(),
        }
    }

    /// Adds one vendor-specific field (kept in [`Product::vendor`]; not interpreted, except the
    /// field [`Product::ASSIGNED_TO_ALL_USERS`]).
    pub fn with_vendor_field(mut self, key: &str, value: impl Into<serde_json::Value>) -> Self {
        self.vendor.insert(key.to_owned(), value.into());
        self
    }

    /// The [`Product::vendor`] field (`true`) saying the vendor gives the product to every user
    /// and lets no one assign or revoke it per holder — a Salesforce site license or free
    /// package. Its listed assignments are then not a roster of who holds it, and changing them
    /// is refused or ignored by the vendor, so the desired-state plan changes nothing of it.
    pub const ASSIGNED_TO_ALL_USERS: &'static str = "assigned_to_all_users";

    /// Marks the product as given to every user by the vendor and not manageable per holder
    /// (sets [`Product::ASSIGNED_TO_ALL_USERS`]); adapters call it where their vendor says so.
    pub fn assigned_to_all_users(self) -> Self {
        self.with_vendor_field(Self::ASSIGNED_TO_ALL_USERS, true)
    }

    /// Whether the vendor gives the product to every user and does not let it be managed per
    /// holder (see [`Product::ASSIGNED_TO_ALL_USERS`]).
    ///
    /// ```
    /// use licensekit_core::{Product, ProviderKind, SeatTotal, Seats};
    ///
    /// let site = Product::new(ProviderKind::from_static("memory"), "p", "P", Seats::reported(SeatTotal::Unlimited, 0));
    /// assert!(!site.is_assigned_to_all_users(), "unlimited seats alone do not say it");
    /// assert!(site.assigned_to_all_users().is_assigned_to_all_users());
    /// ```
    pub fn is_assigned_to_all_users(&self) -> bool {
        self.vendor
            .get(Self::ASSIGNED_TO_ALL_USERS)
            .and_then(serde_json::Value::as_bool)
            == Some(true)
    }
}

/// Who a license is (or is to be) given to, in the provider's own id space.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "kind", content = "id", rename_all = "snake_case")]
pub enum HolderId {
    /// A user, by the vendor's id (Apple clientUserId, Genesys user id, Salesforce User Id).
    User(String),
    /// A device, by serial number (Apple).
    Device(String),
}

impl HolderId {
    /// A user holder, by the vendor's user id.
    pub fn user(id: impl Into<String>) -> Self {
        HolderId::User(id.into())
    }
    /// A device holder, by serial number (Apple VPP).
    pub fn device(serial: impl Into<String>) -> Self {
        HolderId::Device(serial.into())
    }
    /// Whether this is a user or a device.
    pub fn kind(&self) -> HolderKind {
        match self {
            HolderId::User(_) => HolderKind::User,
            HolderId::Device(_) => HolderKind::Device,
        }
    }
    /// The id or serial, without the kind.
    pub fn as_str(&self) -> &str {
        match self {
            HolderId::User(id) | HolderId::Device(id) => id,
        }
    }
}

impl fmt::Display for HolderId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HolderId::User(id) => write!(f, "user {id}"),
            HolderId::Device(serial) => write!(f, "device {serial}"),
        }
    }
}

/// Users or devices: providers support one or both (see [`crate::Capabilities`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HolderKind {
    /// A person, by the vendor's user id.
    User,
    /// A device, by serial number (Apple VPP only).
    Device,
}

/// A holder with what the vendor tells about it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Holder {
    /// The holder's id at the vendor.
    pub id: HolderId,
    /// The holder's email, when the vendor exposes it.
    pub email: Option<String>,
    /// The holder's display name, when the vendor exposes it.
    pub display_name: Option<String>,
    /// `Some(false)` when the vendor marks the user inactive/deactivated/retired.
    pub active: Option<bool>,
    /// When the holder last signed in, where the vendor exposes it (Salesforce
    /// `User.LastLoginDate`, Genesys `dateLastLogin`); `None` when the vendor does not say or the
    /// holder never signed in. Never estimated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_login: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    /// Vendor-specific fields about the holder, kept verbatim.
    pub vendor: VendorFields,
}

impl Holder {
    /// A holder with only its id known.
    pub fn new(id: HolderId) -> Self {
        Holder {
            id,
            email: None,
            display_name: None,
            active: None,
            last_login: None,
            vendor: VendorFields::new(),
        }
    }
    /// Sets when the holder last signed in (as the vendor reported it).
    pub fn with_last_login(mut self, at: DateTime<Utc>) -> Self {
        self.last_login = Some(at);
        self
    }
    /// Sets the holder's email.
    pub fn with_email(mut self, email: impl Into<String>) -> Self {
        self.email = Some(email.into());
        self
    }
    /// Sets the holder's display name.
    pub fn with_display_name(mut self, name: impl Into<String>) -> Self {
        self.display_name = Some(name.into());
        self
    }
    /// Sets whether the vendor marks the holder active.
    pub fn with_active(mut self, active: bool) -> Self {
        self.active = Some(active);
        self
    }
}

/// A seat of a product held by a holder.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Assignment {
    /// The vendor the seat is held at.
    pub provider: ProviderKind,
    /// The product whose seat is held.
    pub product: ProductId,
    /// Who holds it.
    pub holder: Holder,
    /// When the seat was given, where the vendor says.
    pub assigned_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    /// Vendor-specific fields about the assignment, kept verbatim.
    pub vendor: VendorFields,
}

impl Assignment {
    /// A seat of `product` held by `holder`, with no date and no vendor fields.
    pub fn new(provider: ProviderKind, product: ProductId, holder: Holder) -> Self {
        Assignment {
            provider,
            product,
            holder,
            assigned_at: None,
            vendor: VendorFields::new(),
        }
    }
    /// Sets when the seat was given; `None` when the vendor does not say.
    pub fn with_assigned_at(mut self, at: Option<DateTime<Utc>>) -> Self {
        self.assigned_at = at;
        self
    }
}

/// Which assignments to list. Empty = all.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct AssignmentFilter {
    /// Only this product; `None` = every product.
    pub product: Option<ProductId>,
    /// Only this holder; `None` = every holder.
    pub holder: Option<HolderId>,
}

impl AssignmentFilter {
    /// Every assignment (no filter).
    pub fn all() -> Self {
        Self::default()
    }
    /// Only `product`'s assignments.
    pub fn product(product: impl Into<ProductId>) -> Self {
        AssignmentFilter {
            product: Some(product.into()),
            holder: None,
        }
    }
    /// Only `holder`'s assignments.
    pub fn holder(holder: HolderId) -> Self {
        AssignmentFilter {
            product: None,
            holder: Some(holder),
        }
    }
    /// Narrows to `product` as well.
    pub fn with_product(mut self, product: impl Into<ProductId>) -> Self {
        self.product = Some(product.into());
        self
    }
    /// Narrows to `holder` as well.
    pub fn with_holder(mut self, holder: HolderId) -> Self {
        self.holder = Some(holder);
        self
    }
    /// Whether an assignment of `product` to `holder` passes this filter.
    ///
    /// ```
    /// use licensekit_core::{AssignmentFilter, HolderId, ProductId};
    ///
    /// let f = AssignmentFilter::product("p1");
    /// assert!(f.matches(&ProductId::new("p1"), &HolderId::user("u1")));
    /// assert!(!f.matches(&ProductId::new("p2"), &HolderId::user("u1")));
    /// ```
    pub fn matches(&self, product: &ProductId, holder: &HolderId) -> bool {
        self.product.as_ref().is_none_or(|p| p == product)
            && self.holder.as_ref().is_none_or(|h| h == holder)
    }
}

/// Assign or revoke.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeAction {
    /// Give the holder a seat.
    Assign,
    /// Take the holder's seat away.
    Revoke,
}

impl fmt::Display for ChangeAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ChangeAction::Assign => "assign",
            ChangeAction::Revoke => "revoke",
        })
    }
}

/// How one item of a bulk change ended. Every item ends in exactly one of these, and it is true:
/// the bulk engine ([`crate::bulk`]) settles an unclear answer from the vendor's state.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// This run made the change (observed, or read back from the vendor's state after sending).
    Applied,
    /// Nothing to do: already assigned (assign) or not assigned (revoke), known before this run
    /// sent anything for the holder.
    AlreadyInState,
    /// The vendor accepted the change and completes it asynchronously; `reference` lets the
    /// caller check later (e.g. an Apple event id). Neither success nor failure was observed.
    Pending {
        /// The vendor's reference for the pending change.
        reference: String,
    },
    /// The change was not made, with the reason.
    Failed(Arc<Error>),
    /// The change may or may not have been made: the answer was lost and the vendor's state could
    /// not be read back. Re-running the same change settles it.
    Unconfirmed {
        /// Why the state is unknown.
        reason: String,
        /// The last error seen (the write's or the read-back's).
        last_error: Option<Arc<Error>>,
    },
    /// The holder was requested more than once; item `of` (0-based, in request order) carries
    /// its outcome, so each holder is changed and counted once.
    Duplicate {
        /// Index of the first occurrence, in request order.
        of: usize,
    },
}

impl Outcome {
    /// A [`Outcome::Failed`] with `error`.
    pub fn failed(error: Error) -> Self {
        Outcome::Failed(Arc::new(error))
    }
    /// The outcome's status, without its payload.
    pub fn status(&self) -> OutcomeStatus {
        match self {
            Outcome::Applied => OutcomeStatus::Applied,
            Outcome::AlreadyInState => OutcomeStatus::AlreadyInState,
            Outcome::Pending { .. } => OutcomeStatus::Pending,
            Outcome::Failed(_) => OutcomeStatus::Failed,
            Outcome::Unconfirmed { .. } => OutcomeStatus::Unconfirmed,
            Outcome::Duplicate { .. } => OutcomeStatus::Duplicate,
        }
    }
    /// The failure, or the last error behind an unconfirmed outcome.
    pub fn error(&self) -> Option<&Error> {
        match self {
            Outcome::Failed(e) => Some(e),
            Outcome::Unconfirmed {
                last_error: Some(e),
                ..
            } => Some(e),
            _ => None,
        }
    }
    /// Whether the holder is now in the requested state (or will be, for `Pending`; or shares
    /// the outcome of its first occurrence, for `Duplicate`). False for failed and unconfirmed.
    pub fn is_ok(&self) -> bool {
        !matches!(self, Outcome::Failed(_) | Outcome::Unconfirmed { .. })
    }
}

impl PartialEq for Outcome {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Outcome::Pending { reference: a }, Outcome::Pending { reference: b }) => a == b,
            (Outcome::Failed(a), Outcome::Failed(b)) => {
                a.kind() == b.kind() && a.to_string() == b.to_string()
            }
            (Outcome::Unconfirmed { reason: a, .. }, Outcome::Unconfirmed { reason: b, .. }) => {
                a == b
            }
            (Outcome::Duplicate { of: a }, Outcome::Duplicate { of: b }) => a == b,
            (a, b) => a.status() == b.status(),
        }
    }
}

/// The status part of an [`Outcome`], for counting and serializing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutcomeStatus {
    /// See [`Outcome::Applied`].
    Applied,
    /// See [`Outcome::AlreadyInState`].
    AlreadyInState,
    /// See [`Outcome::Pending`].
    Pending,
    /// See [`Outcome::Failed`].
    Failed,
    /// See [`Outcome::Unconfirmed`].
    Unconfirmed,
    /// See [`Outcome::Duplicate`].
    Duplicate,
}

impl OutcomeStatus {
    /// The stable snake_case name used in JSON and CSV.
    pub fn as_str(self) -> &'static str {
        match self {
            OutcomeStatus::Applied => "applied",
            OutcomeStatus::AlreadyInState => "already_in_state",
            OutcomeStatus::Pending => "pending",
            OutcomeStatus::Failed => "failed",
            OutcomeStatus::Unconfirmed => "unconfirmed",
            OutcomeStatus::Duplicate => "duplicate",
        }
    }
}

/// Serializable form of an outcome: status, plus reference, duplicate index, reason, or error
/// kind and message.
#[derive(Debug, Serialize, Deserialize)]
struct OutcomeRepr {
    status: OutcomeStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    reference: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    duplicate_of: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    error_kind: Option<ErrorKind>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

impl Serialize for Outcome {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let repr = OutcomeRepr {
            status: self.status(),
            reference: match self {
                Outcome::Pending { reference } => Some(reference.clone()),
                _ => None,
            },
            duplicate_of: match self {
                Outcome::Duplicate { of } => Some(*of),
                _ => None,
            },
            reason: match self {
                Outcome::Unconfirmed { reason, .. } => Some(reason.clone()),
                _ => None,
            },
            error_kind: self.error().map(Error::kind),
            error: self.error().map(ToString::to_string),
        };
        repr.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Outcome {
    /// Reads what [`Serialize`] wrote (a saved report or a journal line). Errors come back as
    /// [`Error::Recorded`]: their kind and message, not the original value.
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let repr = OutcomeRepr::deserialize(deserializer)?;
        let recorded = || {
            repr.error.clone().map(|message| {
                Arc::new(Error::Recorded {
                    kind: repr.error_kind.unwrap_or(ErrorKind::Vendor),
                    message,
                })
            })
        };
        Ok(match repr.status {
            OutcomeStatus::Applied => Outcome::Applied,
            OutcomeStatus::AlreadyInState => Outcome::AlreadyInState,
            OutcomeStatus::Pending => Outcome::Pending {
                reference: repr.reference.clone().unwrap_or_default(),
            },
            OutcomeStatus::Failed => Outcome::Failed(recorded().unwrap_or_else(|| {
                Arc::new(Error::Recorded {
                    kind: ErrorKind::Vendor,
                    message: "failed (no reason recorded)".into(),
                })
            })),
            OutcomeStatus::Unconfirmed => Outcome::Unconfirmed {
                reason: repr.reason.clone().unwrap_or_default(),
                last_error: recorded(),
            },
            OutcomeStatus::Duplicate => Outcome::Duplicate {
                of: repr.duplicate_of.unwrap_or_default(),
            },
        })
    }
}

/// One item of a bulk change and how it ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ItemOutcome {
    /// The holder the item was for.
    pub holder: HolderId,
    /// How the item ended.
    pub outcome: Outcome,
    /// What the vendor said about this item beyond the outcome (e.g. Genesys's undocumented
    /// `result` text, kept verbatim so its real vocabulary can be reported).
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub vendor: VendorFields,
}

impl ItemOutcome {
    /// An item outcome with no vendor fields.
    pub fn new(holder: HolderId, outcome: Outcome) -> Self {
        ItemOutcome {
            holder,
            outcome,
            vendor: VendorFields::new(),
        }
    }
    /// Replaces the vendor fields.
    pub fn with_vendor(mut self, vendor: VendorFields) -> Self {
        self.vendor = vendor;
        self
    }
}

/// Counts of a [`ChangeReport`] by status; they add up to the number of requested items.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct OutcomeCounts {
    /// Items this run changed.
    pub applied: usize,
    /// Items already in the requested state.
    pub already_in_state: usize,
    /// Items the vendor completes asynchronously.
    pub pending: usize,
    /// Items that were not changed.
    pub failed: usize,
    #[serde(default)]
    /// Items whose state is unknown (re-run to settle).
    pub unconfirmed: usize,
    #[serde(default)]
    /// Repeated holders, counted once through their first occurrence.
    pub duplicate: usize,
}

impl OutcomeCounts {
    /// The number of items counted.
    pub fn total(&self) -> usize {
        self.applied
            + self.already_in_state
            + self.pending
            + self.failed
            + self.unconfirmed
            + self.duplicate
    }

    /// Adds one outcome.
    pub fn add(&mut self, status: OutcomeStatus) {
        match status {
            OutcomeStatus::Applied => self.applied += 1,
            OutcomeStatus::AlreadyInState => self.already_in_state += 1,
            OutcomeStatus::Pending => self.pending += 1,
            OutcomeStatus::Failed => self.failed += 1,
            OutcomeStatus::Unconfirmed => self.unconfirmed += 1,
            OutcomeStatus::Duplicate => self.duplicate += 1,
        }
    }
}

/// The result of a bulk assign or revoke: one outcome per requested item, in request order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ChangeReport {
    /// The vendor the change ran at.
    pub provider: ProviderKind,
    /// The product whose seats were assigned or revoked.
    pub product: ProductId,
    /// Assign or revoke.
    pub action: ChangeAction,
    /// One outcome per requested holder, in request order.
    pub items: Vec<ItemOutcome>,
    /// The run was cancelled: items never sent are `Failed` with [`Error::Cancelled`].
    #[serde(default)]
    pub interrupted: bool,
}

impl ChangeReport {
    /// A report of a run that was not interrupted.
    pub fn new(
        provider: ProviderKind,
        product: ProductId,
        action: ChangeAction,
        items: Vec<ItemOutcome>,
    ) -> Self {
        ChangeReport {
            provider,
            product,
            action,
            items,
            interrupted: false,
        }
    }

    /// The items counted by status.
    ///
    /// ```
    /// use licensekit_core::{ChangeAction, ChangeReport, HolderId, ItemOutcome, Outcome, ProductId, ProviderKind};
    ///
    /// let report = ChangeReport::new(
    ///     ProviderKind::from_static("memory"),
    ///     ProductId::new("p1"),
    ///     ChangeAction::Assign,
    ///     vec![
    ///         ItemOutcome::new(HolderId::user("u1"), Outcome::Applied),
    ///         ItemOutcome::new(HolderId::user("u2"), Outcome::AlreadyInState),
    ///     ],
    /// );
    /// let counts = report.counts();
    /// assert_eq!((counts.applied, counts.already_in_state, counts.total()), (1, 1, 2));
    /// assert!(report.is_complete_success());
    /// ```
    pub fn counts(&self) -> OutcomeCounts {
        let mut counts = OutcomeCounts::default();
        for item in &self.items {
            counts.add(item.outcome.status());
        }
        counts
    }

    /// The outcome of `holder`'s first occurrence.
    pub fn outcome_of(&self, holder: &HolderId) -> Option<&Outcome> {
        self.items
            .iter()
            .find(|i| &i.holder == holder)
            .map(|i| &i.outcome)
    }

    /// Failed items with their errors (unconfirmed ones are not failures: see
    /// [`ChangeReport::unconfirmed`]).
    pub fn failures(&self) -> impl Iterator<Item = (&HolderId, &Error)> {
        self.items.iter().filter_map(|i| match &i.outcome {
            Outcome::Failed(e) => Some((&i.holder, e.as_ref())),
            _ => None,
        })
    }

    /// Items whose state is unknown; re-running the change settles them.
    pub fn unconfirmed(&self) -> impl Iterator<Item = &ItemOutcome> {
        self.items
            .iter()
            .filter(|i| matches!(i.outcome, Outcome::Unconfirmed { .. }))
    }

    /// Whether every item ended well (see [`Outcome::is_ok`]): no failed and no unconfirmed items.
    pub fn is_complete_success(&self) -> bool {
        self.items.iter().all(|i| i.outcome.is_ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seats_available_and_over_allocation() {
        let s = Seats::reported(SeatTotal::Limited(10), 7);
        assert_eq!(s.available(), Some(3));
        assert_eq!(s.over_allocated_by(), None);
        let over = Seats::reported(SeatTotal::Limited(10), 12);
        assert_eq!(over.available(), Some(0));
        assert_eq!(over.over_allocated_by(), Some(2));
        assert_eq!(
            Seats::reported(SeatTotal::Unlimited, 5).available(),
            None,
            "unlimited has no finite free count"
        );
    }

    #[test]
    fn outcomes_round_trip_through_json() {
        let outcomes = [
            Outcome::Applied,
            Outcome::AlreadyInState,
            Outcome::Pending {
                reference: "ev1".into(),
            },
            Outcome::failed(Error::invalid_input("bad id")),
            Outcome::Unconfirmed {
                reason: "answer lost".into(),
                last_error: Some(Arc::new(Error::invalid_input("x"))),
            },
            Outcome::Duplicate { of: 3 },
        ];
        for outcome in outcomes {
            let json = serde_json::to_value(&outcome).unwrap();
            let back: Outcome = serde_json::from_value(json.clone()).unwrap();
            assert_eq!(back.status(), outcome.status(), "{json}");
            assert_eq!(serde_json::to_value(&back).unwrap(), json);
        }
    }

    #[test]
    fn outcome_serializes_with_status_and_error() {
        let failed = Outcome::failed(Error::invalid_input("bad id"));
        let json = serde_json::to_value(&failed).unwrap();
        assert_eq!(json["status"], "failed");
        assert_eq!(json["error_kind"], "invalid_input");
        assert_eq!(json["error"], "invalid input: bad id");
        let pending = serde_json::to_value(Outcome::Pending {
            reference: "ev1".into(),
        })
        .unwrap();
        assert_eq!(
            pending,
            serde_json::json!({"status": "pending", "reference": "ev1"})
        );
    }
}
