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
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ProductId(String);

impl ProductId {
    pub fn new(id: impl Into<String>) -> Self {
        ProductId(id.into())
    }
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
        ProductId(s.to_owned())
    }
}

impl From<String> for ProductId {
    fn from(s: String) -> Self {
        ProductId(s)
    }
}

/// How many seats a product has in total.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "value", rename_all = "snake_case")]
pub enum SeatTotal {
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
    pub total: SeatTotal,
    pub total_source: Provenance,
    pub assigned: Option<u64>,
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

    pub fn with_total(mut self, total: SeatTotal, source: Provenance) -> Self {
        self.total = total;
        self.total_source = source;
        self
    }

    pub fn with_assigned(mut self, assigned: u64, source: Provenance) -> Self {
        self.assigned = Some(assigned);
        self.assigned_source = source;
        self
    }

    /// Free seats when both figures are known; `None` for unlimited or unknown totals.
    /// Saturates at zero (an over-allocated product has no free seats, see [`Seats::over_allocated_by`]).
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
    pub provider: ProviderKind,
    pub id: ProductId,
    pub name: String,
    pub seats: Seats,
    /// Vendor-specific fields (Apple productType, Salesforce Status/ExpirationDate, …).
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub vendor: VendorFields,
}

impl Product {
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

    pub fn with_vendor_field(mut self, key: &str, value: impl Into<serde_json::Value>) -> Self {
        self.vendor.insert(key.to_owned(), value.into());
        self
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
    pub fn user(id: impl Into<String>) -> Self {
        HolderId::User(id.into())
    }
    pub fn device(serial: impl Into<String>) -> Self {
        HolderId::Device(serial.into())
    }
    pub fn kind(&self) -> HolderKind {
        match self {
            HolderId::User(_) => HolderKind::User,
            HolderId::Device(_) => HolderKind::Device,
        }
    }
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
    User,
    Device,
}

/// A holder with what the vendor tells about it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Holder {
    pub id: HolderId,
    pub email: Option<String>,
    pub display_name: Option<String>,
    /// `Some(false)` when the vendor marks the user inactive/deactivated/retired.
    pub active: Option<bool>,
    /// When the holder last signed in, where the vendor exposes it (Salesforce
    /// `User.LastLoginDate`, Genesys `dateLastLogin`); `None` when the vendor does not say or the
    /// holder never signed in. Never estimated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_login: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub vendor: VendorFields,
}

impl Holder {
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
    pub fn with_last_login(mut self, at: DateTime<Utc>) -> Self {
        self.last_login = Some(at);
        self
    }
    pub fn with_email(mut self, email: impl Into<String>) -> Self {
        self.email = Some(email.into());
        self
    }
    pub fn with_display_name(mut self, name: impl Into<String>) -> Self {
        self.display_name = Some(name.into());
        self
    }
    pub fn with_active(mut self, active: bool) -> Self {
        self.active = Some(active);
        self
    }
}

/// A seat of a product held by a holder.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Assignment {
    pub provider: ProviderKind,
    pub product: ProductId,
    pub holder: Holder,
    /// When the seat was given, where the vendor says.
    pub assigned_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub vendor: VendorFields,
}

impl Assignment {
    pub fn new(provider: ProviderKind, product: ProductId, holder: Holder) -> Self {
        Assignment {
            provider,
            product,
            holder,
            assigned_at: None,
            vendor: VendorFields::new(),
        }
    }
    pub fn with_assigned_at(mut self, at: Option<DateTime<Utc>>) -> Self {
        self.assigned_at = at;
        self
    }
}

/// Which assignments to list. Empty = all.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct AssignmentFilter {
    pub product: Option<ProductId>,
    pub holder: Option<HolderId>,
}

impl AssignmentFilter {
    pub fn all() -> Self {
        Self::default()
    }
    pub fn product(product: impl Into<ProductId>) -> Self {
        AssignmentFilter {
            product: Some(product.into()),
            holder: None,
        }
    }
    pub fn holder(holder: HolderId) -> Self {
        AssignmentFilter {
            product: None,
            holder: Some(holder),
        }
    }
    pub fn with_product(mut self, product: impl Into<ProductId>) -> Self {
        self.product = Some(product.into());
        self
    }
    pub fn with_holder(mut self, holder: HolderId) -> Self {
        self.holder = Some(holder);
        self
    }
    pub fn matches(&self, product: &ProductId, holder: &HolderId) -> bool {
        self.product.as_ref().is_none_or(|p| p == product)
            && self.holder.as_ref().is_none_or(|h| h == holder)
    }
}

/// Assign or revoke.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeAction {
    Assign,
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
    Pending { reference: String },
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
    Duplicate { of: usize },
}

impl Outcome {
    pub fn failed(error: Error) -> Self {
        Outcome::Failed(Arc::new(error))
    }
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
    Applied,
    AlreadyInState,
    Pending,
    Failed,
    Unconfirmed,
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
    pub holder: HolderId,
    pub outcome: Outcome,
    /// What the vendor said about this item beyond the outcome (e.g. Genesys's undocumented
    /// `result` text, kept verbatim so its real vocabulary can be reported).
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub vendor: VendorFields,
}

impl ItemOutcome {
    pub fn new(holder: HolderId, outcome: Outcome) -> Self {
        ItemOutcome {
            holder,
            outcome,
            vendor: VendorFields::new(),
        }
    }
    pub fn with_vendor(mut self, vendor: VendorFields) -> Self {
        self.vendor = vendor;
        self
    }
}

/// Counts of a [`ChangeReport`] by status; they add up to the number of requested items.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct OutcomeCounts {
    pub applied: usize,
    pub already_in_state: usize,
    pub pending: usize,
    pub failed: usize,
    #[serde(default)]
    pub unconfirmed: usize,
    #[serde(default)]
    pub duplicate: usize,
}

impl OutcomeCounts {
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
    pub provider: ProviderKind,
    pub product: ProductId,
    pub action: ChangeAction,
    pub items: Vec<ItemOutcome>,
    /// The run was cancelled: items never sent are `Failed` with [`Error::Cancelled`].
    #[serde(default)]
    pub interrupted: bool,
}

impl ChangeReport {
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
