//! The normalized model every provider maps its vendor's objects into.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{Error, ErrorKind};

/// Vendor-specific fields kept alongside the normalized ones, so nothing the vendor said is lost.
pub type VendorFields = serde_json::Map<String, serde_json::Value>;

/// Which provider an object came from. Never feature-gated: reports and configs name providers
/// even when their adapter is compiled out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ProviderKind {
    AppleVpp,
    Genesys,
    Salesforce,
    Memory,
}

impl ProviderKind {
    pub const ALL: [ProviderKind; 4] = [
        ProviderKind::AppleVpp,
        ProviderKind::Genesys,
        ProviderKind::Salesforce,
        ProviderKind::Memory,
    ];

    /// The stable lowercase name used in configs, reports and the CLI.
    pub fn as_str(self) -> &'static str {
        match self {
            ProviderKind::AppleVpp => "apple-vpp",
            ProviderKind::Genesys => "genesys",
            ProviderKind::Salesforce => "salesforce",
            ProviderKind::Memory => "memory",
        }
    }

    /// The cargo feature of the `licensekit` facade that compiles this provider in.
    pub fn feature_name(self) -> &'static str {
        self.as_str()
    }
}

impl fmt::Display for ProviderKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

impl std::str::FromStr for ProviderKind {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ProviderKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| {
                Error::invalid_input(format!(
                    "unknown provider `{s}`; expected one of apple-vpp, genesys, salesforce, memory"
                ))
            })
    }
}

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
            vendor: VendorFields::new(),
        }
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

/// How one item of a bulk change ended. Every item ends in exactly one of these.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// The change was made (observed, not assumed).
    Applied,
    /// Nothing to do: already assigned (assign) or not assigned (revoke).
    AlreadyInState,
    /// The vendor accepted the change and completes it asynchronously; `reference` lets the
    /// caller check later (e.g. an Apple event id). Neither success nor failure was observed.
    Pending { reference: String },
    /// The change was not made, with the reason.
    Failed(Arc<Error>),
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
        }
    }
    pub fn error(&self) -> Option<&Error> {
        match self {
            Outcome::Failed(e) => Some(e),
            _ => None,
        }
    }
    /// Whether the holder is now in the requested state (or will be, for `Pending`).
    pub fn is_ok(&self) -> bool {
        !matches!(self, Outcome::Failed(_))
    }
}

impl PartialEq for Outcome {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Outcome::Pending { reference: a }, Outcome::Pending { reference: b }) => a == b,
            (Outcome::Failed(a), Outcome::Failed(b)) => {
                a.kind() == b.kind() && a.to_string() == b.to_string()
            }
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
}

/// Serializable form of an outcome: status, plus reference or error kind and message.
#[derive(Debug, Serialize, Deserialize)]
struct OutcomeRepr {
    status: OutcomeStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    reference: Option<String>,
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
            error_kind: self.error().map(Error::kind),
            error: self.error().map(ToString::to_string),
        };
        repr.serialize(serializer)
    }
}

/// One item of a bulk change and how it ended.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct ItemOutcome {
    pub holder: HolderId,
    pub outcome: Outcome,
}

impl ItemOutcome {
    pub fn new(holder: HolderId, outcome: Outcome) -> Self {
        ItemOutcome { holder, outcome }
    }
}

/// Counts of a [`ChangeReport`] by status; they add up to the number of requested items.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutcomeCounts {
    pub applied: usize,
    pub already_in_state: usize,
    pub pending: usize,
    pub failed: usize,
}

impl OutcomeCounts {
    pub fn total(&self) -> usize {
        self.applied + self.already_in_state + self.pending + self.failed
    }
}

/// The result of a bulk assign or revoke: one outcome per requested item, in request order.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct ChangeReport {
    pub provider: ProviderKind,
    pub product: ProductId,
    pub action: ChangeAction,
    pub items: Vec<ItemOutcome>,
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
        }
    }

    pub fn counts(&self) -> OutcomeCounts {
        let mut counts = OutcomeCounts::default();
        for item in &self.items {
            match item.outcome {
                Outcome::Applied => counts.applied += 1,
                Outcome::AlreadyInState => counts.already_in_state += 1,
                Outcome::Pending { .. } => counts.pending += 1,
                Outcome::Failed(_) => counts.failed += 1,
            }
        }
        counts
    }

    pub fn outcome_of(&self, holder: &HolderId) -> Option<&Outcome> {
        self.items
            .iter()
            .find(|i| &i.holder == holder)
            .map(|i| &i.outcome)
    }

    pub fn failures(&self) -> impl Iterator<Item = (&HolderId, &Error)> {
        self.items
            .iter()
            .filter_map(|i| i.outcome.error().map(|e| (&i.holder, e)))
    }

    pub fn is_complete_success(&self) -> bool {
        self.items.iter().all(|i| i.outcome.is_ok())
    }
}

/// A bulk request with repeated holders folded: adapters send each holder once and
/// [`UniqueHolders::into_report`] gives every requested item (repeats included) its outcome, so
/// the report always has exactly one outcome per input item, in input order.
#[derive(Debug)]
pub struct UniqueHolders {
    requested: Vec<HolderId>,
    unique: Vec<HolderId>,
}

impl UniqueHolders {
    pub fn new(requested: &[HolderId]) -> Self {
        let mut seen = std::collections::HashSet::with_capacity(requested.len());
        let unique = requested
            .iter()
            .filter(|h| seen.insert(*h))
            .cloned()
            .collect();
        UniqueHolders {
            requested: requested.to_vec(),
            unique,
        }
    }

    /// Each holder once, in first-seen order.
    pub fn unique(&self) -> &[HolderId] {
        &self.unique
    }

    /// Builds the report from the outcomes of the unique holders. A holder the adapter gave no
    /// outcome is reported as failed — a bug in the adapter must never look like success.
    pub fn into_report(
        self,
        provider: ProviderKind,
        product: ProductId,
        action: ChangeAction,
        mut outcomes: HashMap<HolderId, Outcome>,
    ) -> ChangeReport {
        let items = self
            .requested
            .into_iter()
            .map(|holder| {
                let outcome = outcomes.get(&holder).cloned().unwrap_or_else(|| {
                    Outcome::failed(Error::Vendor(crate::error::VendorError::new(
                        provider,
                        None,
                        format!("no outcome was reported for {holder}; its state is unknown, list assignments to check"),
                    )))
                });
                ItemOutcome::new(holder, outcome)
            })
            .collect();
        outcomes.clear();
        ChangeReport::new(provider, product, action, items)
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
    fn unique_holders_gives_every_input_item_an_outcome() {
        let a = HolderId::user("a");
        let b = HolderId::user("b");
        let c = HolderId::device("C");
        let plan = UniqueHolders::new(&[a.clone(), b.clone(), a.clone(), c.clone()]);
        assert_eq!(plan.unique(), &[a.clone(), b.clone(), c.clone()]);
        let mut outcomes = HashMap::new();
        outcomes.insert(a.clone(), Outcome::Applied);
        outcomes.insert(b.clone(), Outcome::AlreadyInState);
        // c deliberately missing: must come back as Failed, not dropped.
        let report = plan.into_report(
            ProviderKind::Memory,
            "p".into(),
            ChangeAction::Assign,
            outcomes,
        );
        assert_eq!(report.items.len(), 4);
        assert_eq!(report.items[2].outcome, Outcome::Applied);
        let counts = report.counts();
        assert_eq!(counts.total(), 4);
        assert_eq!(counts.failed, 1);
        assert_eq!(
            report.outcome_of(&c).unwrap().status(),
            OutcomeStatus::Failed
        );
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

    #[test]
    fn provider_kind_round_trips_through_its_name() {
        for kind in ProviderKind::ALL {
            assert_eq!(kind.as_str().parse::<ProviderKind>().unwrap(), kind);
            assert_eq!(
                serde_json::to_value(kind).unwrap(),
                serde_json::Value::String(kind.as_str().into())
            );
        }
        assert!("vpp".parse::<ProviderKind>().is_err());
    }
}
