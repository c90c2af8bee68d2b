//! License history: snapshots of [`Report`]s kept in a real database, read back as utilization
//! over time and as diffs between two snapshots.
//!
//! - [`HistoryStore`]: the one small trait a store implements (write a snapshot, list, read
//!   figures and holdings back, prune). [`HistoryStoreExt`] builds `history` and `diff` on it.
//! - [`SqlStore`]: the store, through sqlx's `Any` driver, so one query layer and one set of
//!   migrations serve **SQLite** (embedded, a file) and **PostgreSQL** (shared between machines).
//!   Migrations run on open; the schema version is recorded; a database written by a newer
//!   licensekit is refused with [`HistoryError::NewerSchema`].
//!
//! A snapshot is written in one transaction and is idempotent per run id. A provider that could
//! not be read is stored as failed, with its error: its products are then "unknown" in the
//! history and "not comparable" in a diff, never zero seats or everyone removed.

mod sql;

use std::collections::{BTreeMap, BTreeSet, HashMap};

use async_trait::async_trait;
use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;

use crate::report::Report;
use licensekit_core::ProviderKind;

pub use sql::{SqlStore, StoreOptions};

/// The newest schema this build reads and writes.
pub const SCHEMA_VERSION: i64 = 2;

/// The variable naming the database when `--db` is not given.
pub const DB_VAR: &str = "LICENSEKIT_DB";

/// `Result` with [`HistoryError`] as the default error.
pub type Result<T, E = HistoryError> = std::result::Result<T, E>;

/// What can go wrong with a history store. Every message says what to do.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HistoryError {
    /// The database was written by a newer licensekit; it is left untouched.
    #[error(
        "the history database {location} has schema version {found}, newer than this licensekit \
         understands ({supported}); upgrade licensekit (the database was not changed)"
    )]
    NewerSchema {
        /// The database's path or URL (credentials removed).
        location: String,
        /// The schema version the database holds.
        found: i64,
        /// The newest version this build understands ([`SCHEMA_VERSION`]).
        supported: i64,
    },
    /// The file is not a SQLite database (or is corrupt); it is left untouched.
    #[error(
        "{location} is not a readable licensekit history database (corrupt, or not SQLite): \
         {source}; the file was left untouched, move it away or point --db elsewhere"
    )]
    Unreadable {
        /// The database's path or URL (credentials removed).
        location: String,
        #[source]
        /// The driver's error.
        source: sqlx::Error,
    },
    /// Another process holds the database's write lock longer than the busy timeout.
    #[error(
        "the history database {location} is locked by another process (waited {waited_ms} ms); \
         nothing was written, try again when it is done"
    )]
    Locked {
        /// The database's path or URL (credentials removed).
        location: String,
        /// How long this process waited for the lock, in milliseconds.
        waited_ms: u64,
        #[source]
        /// The driver's error.
        source: sqlx::Error,
    },
    /// No such snapshot.
    #[error("no snapshot {0} in the history (see `licensekit history --snapshots`)")]
    NoSuchSnapshot(String),
    /// The operation needs more snapshots than the store has.
    #[error("{0}")]
    NotEnoughSnapshots(String),
    /// The database location cannot be used.
    #[error("history database `{location}`: {reason}")]
    BadLocation {
        /// The location as given (credentials removed).
        location: String,
        /// Why it cannot be used.
        reason: String,
    },
    /// Stored data this build cannot read (a value it does not know).
    #[error("the history database holds data this licensekit cannot read: {0}")]
    BadData(String),
    /// Any other database error, with where it happened.
    #[error("history database {location}: {source}")]
    Database {
        /// The database's path or URL (credentials removed).
        location: String,
        #[source]
        /// The driver's error.
        source: sqlx::Error,
    },
}

/// One snapshot as written: what the report said, per provider, product and holding.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Snapshot {
    /// Idempotency key: writing a run id that is already stored changes nothing.
    pub run_id: String,
    /// When the report was taken (UTC).
    pub taken_at: DateTime<Utc>,
    /// A free label (the CLI writes `sandbox` for sandbox snapshots).
    pub label: Option<String>,
    /// The report format's schema version ([`crate::report::Report::schema_version`]).
    pub report_schema_version: u32,
    /// One entry per provider in the report, read or failed.
    pub providers: Vec<ProviderState>,
    /// Every product of every provider that could be read.
    pub products: Vec<ProductState>,
    /// Every seat held, one row per product and holder.
    pub holdings: Vec<HoldingState>,
}

/// A provider in a snapshot: who it is, and whether it could be read.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProviderState {
    /// The provider's vendor.
    pub provider: ProviderKind,
    /// Which account of the vendor (an org, a region, a token's location): so snapshots from
    /// different orgs are never mistaken for each other.
    pub identity: String,
    /// Whether the provider could be read, with its totals when it could.
    pub status: ProviderStatus,
}

/// Whether a provider could be read in a snapshot, with its totals when it could.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum ProviderStatus {
    /// The provider was read; its totals over all products.
    Ok {
        /// Products listed.
        products: u64,
        /// Seats owned over products with a limited total (unlimited and unknown totals count 0).
        seats_total: u64,
        /// Seats assigned over all products.
        seats_assigned: u64,
        /// Assignments listed.
        assignments: u64,
        /// Users in the vendor's directory; `None` when the vendor has no directory listing.
        holders_in_directory: Option<u64>,
        /// Whether the vendor's data changed while it was being listed (figures may be off by those changes).
        changed_during_listing: bool,
    },
    /// The provider could not be read: none of its figures are known.
    Failed {
        /// The error's message, as the report recorded it.
        error: String,
    },
}

impl ProviderStatus {
    /// Whether the provider was read.
    pub fn is_ok(&self) -> bool {
        matches!(self, ProviderStatus::Ok { .. })
    }
}

/// A product's seat figures in a snapshot.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProductState {
    /// The product's vendor.
    pub provider: ProviderKind,
    /// The product id as the vendor names it.
    pub product_id: String,
    /// The vendor's display name of the product.
    pub name: String,
    /// `None` when unlimited or unknown.
    pub total: Option<u64>,
    /// Whether the vendor grants unlimited seats (a Salesforce site license).
    pub unlimited: bool,
    /// Where the total came from (`vendor`, `counted`, `configured`, `unknown`).
    pub total_source: String,
    /// Seats assigned.
    pub assigned: u64,
    /// Where the assigned figure came from.
    pub assigned_source: String,
    /// Whether the product's assignments changed while being listed.
    pub changed_during_listing: bool,
}

impl ProductState {
    /// Seats free (`total - assigned`, 0 when over-allocated); `None` when the total is unlimited or unknown.
    pub fn free(&self) -> Option<u64> {
        self.total.map(|t| t.saturating_sub(self.assigned))
    }
}

/// What kind of holder a holding names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HolderKind {
    /// A person matched across vendors by email; the key is the canonical email.
    Person,
    /// A vendor user without a usable email; the key is the vendor's id.
    User,
    /// A device; the key is its serial.
    Device,
}

impl HolderKind {
    /// The stored name (`person`, `user`, `device`).
    pub fn as_str(self) -> &'static str {
        match self {
            HolderKind::Person => "person",
            HolderKind::User => "user",
            HolderKind::Device => "device",
        }
    }

    fn parse(s: &str) -> Result<Self> {
        match s {
            "person" => Ok(HolderKind::Person),
            "user" => Ok(HolderKind::User),
            "device" => Ok(HolderKind::Device),
            other => Err(HistoryError::BadData(format!("holder kind `{other}`"))),
        }
    }
}

/// One product held by one holder in a snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct HoldingState {
    /// The product's vendor.
    pub provider: ProviderKind,
    /// The product id as the vendor names it.
    pub product_id: String,
    /// Person, user or device.
    pub holder_kind: HolderKind,
    /// The canonical email (person), vendor user id (user) or serial (device).
    pub holder_key: String,
    /// The vendor account ids behind a person (`;`-separated), or none.
    pub holder_ids: Option<String>,
    /// The holder's display name, when a vendor gave one.
    pub display_name: Option<String>,
    /// Whether the vendor marks the holder active; `None` when it does not say.
    pub active: Option<bool>,
    /// The holder's last activity as the vendor reports it (Salesforce `LastLoginDate`, Genesys
    /// `dateLastLogin`), when it does, in the store's timestamp form ([`timestamp`]); never
    /// estimated, and never inferred from the holding being unchanged.
    pub last_activity: Option<String>,
}

/// Builds a snapshot from a report. `identities` names each provider's account (default: the
/// provider's name); `run_id` makes the write idempotent.
impl Snapshot {
    /// Builds a snapshot of `report` (see above); no label.
    pub fn from_report(
        report: &Report,
        run_id: impl Into<String>,
        identities: &HashMap<ProviderKind, String>,
    ) -> Snapshot {
        let identity = |kind: ProviderKind| {
            identities
                .get(&kind)
                .cloned()
                .unwrap_or_else(|| kind.as_str().to_owned())
        };
        let mut providers: Vec<ProviderState> = report
            .providers
            .iter()
            .map(|p| ProviderState {
                provider: p.provider,
                identity: identity(p.provider),
                status: ProviderStatus::Ok {
                    products: p.products as u64,
                    seats_total: p.seats_total,
                    seats_assigned: p.seats_assigned,
                    assignments: p.assignments,
                    holders_in_directory: p.holders_in_directory.map(|n| n as u64),
                    changed_during_listing: !p.changed_during_listing.is_empty(),
                },
            })
            .collect();
        providers.extend(report.errors.iter().map(|e| ProviderState {
            provider: e.provider,
            identity: identity(e.provider),
            status: ProviderStatus::Failed {
                error: e.error.clone(),
            },
        }));
        let products = report
            .products
            .iter()
            .map(|p| ProductState {
                provider: p.provider,
                product_id: p.product_id.as_str().to_owned(),
                name: p.name.clone(),
                total: p.total,
                unlimited: p.unlimited,
                total_source: enum_name(&p.total_source),
                assigned: p.assigned,
                assigned_source: enum_name(&p.assigned_source),
                changed_during_listing: p.changed_during_listing,
            })
            .collect();

        let mut holdings = Vec::new();
        for person in &report.people {
            for h in &person.holdings {
                let accounts: Vec<_> = person
                    .accounts
                    .iter()
                    .filter(|a| a.provider == h.provider)
                    .collect();
                let ids = accounts
                    .iter()
                    .map(|a| a.holder_id.as_str())
                    .collect::<Vec<_>>()
                    .join(";");
                holdings.push(HoldingState {
                    provider: h.provider,
                    product_id: h.product_id.as_str().to_owned(),
                    holder_kind: HolderKind::Person,
                    holder_key: person.email.clone(),
                    holder_ids: (!ids.is_empty()).then_some(ids),
                    display_name: accounts.iter().find_map(|a| a.display_name.clone()),
                    active: accounts.iter().find_map(|a| a.active),
                    // The most recent sign-in of the person's accounts at this vendor.
                    last_activity: accounts
                        .iter()
                        .filter_map(|a| a.last_login)
                        .max()
                        .map(timestamp),
                });
            }
        }
        for u in &report.unmatched {
            for product in &u.products {
                holdings.push(HoldingState {
                    provider: u.provider,
                    product_id: product.as_str().to_owned(),
                    holder_kind: HolderKind::User,
                    holder_key: u.holder_id.clone(),
                    holder_ids: Some(u.holder_id.clone()),
                    display_name: u.display_name.clone(),
                    active: None,
                    last_activity: u.last_login.map(timestamp),
                });
            }
        }
        for d in &report.devices {
            for product in &d.products {
                holdings.push(HoldingState {
                    provider: d.provider,
                    product_id: product.as_str().to_owned(),
                    holder_kind: HolderKind::Device,
                    holder_key: d.serial.clone(),
                    holder_ids: Some(d.serial.clone()),
                    display_name: None,
                    active: None,
                    last_activity: None,
                });
            }
        }
        Snapshot {
            run_id: run_id.into(),
            taken_at: report.generated_at,
            label: None,
            report_schema_version: report.schema_version,
            providers,
            products,
            holdings,
        }
    }

    /// Sets the snapshot's label.
    pub fn with_label(mut self, label: impl Into<String>) -> Self {
        self.label = Some(label.into());
        self
    }
}

/// The serde name of a unit enum value (`reported`, `counted`, …).
fn enum_name<T: Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(s)) => s,
        Ok(other) => other.to_string(),
        Err(_) => "unknown".into(),
    }
}

/// The fixed, sortable text form of timestamps in the store.
pub fn timestamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// A stored snapshot, as listed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SnapshotInfo {
    /// The store's id of the snapshot (ascending in write order).
    pub id: i64,
    /// The run id it was written with.
    pub run_id: String,
    /// When the report was taken, in [`timestamp`] form.
    pub taken_at: String,
    /// The snapshot's label, if any.
    pub label: Option<String>,
    /// Each provider's state in the snapshot.
    pub providers: Vec<ProviderState>,
}

/// What a write did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Recorded {
    /// The snapshot's id in the store (the existing one when nothing was written).
    pub id: i64,
    /// False when the run id was already stored (nothing was written).
    pub created: bool,
}

/// Which product figures to read back.
#[derive(Debug, Clone, Default)]
pub struct HistoryFilter {
    /// Only this provider; `None` = all.
    pub provider: Option<ProviderKind>,
    /// Product id or name (exact).
    pub product: Option<String>,
    /// Snapshots taken at or after this moment.
    pub since: Option<DateTime<Utc>>,
}

/// One product's figures in one snapshot, as the store returns them.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProductPoint {
    /// The snapshot's id.
    pub snapshot_id: i64,
    /// When the snapshot was taken, in [`timestamp`] form.
    pub taken_at: String,
    /// The product's provider's identity in that snapshot (which account of the vendor).
    pub identity: String,
    #[serde(flatten)]
    /// The product's figures.
    pub product: ProductState,
}

/// The one small trait a history store implements. Conveniences (history over time, diffs) are
/// in [`HistoryStoreExt`], built on these methods for every store alike.
#[async_trait]
pub trait HistoryStore: Send + Sync + std::fmt::Debug {
    /// The schema version the database is at.
    async fn schema_version(&self) -> Result<i64>;
    /// Writes a snapshot in one transaction; a run id already stored writes nothing.
    async fn record(&self, snapshot: &Snapshot) -> Result<Recorded>;
    /// Every snapshot (optionally since a moment), oldest first, with its providers' states.
    async fn snapshots(&self, since: Option<DateTime<Utc>>) -> Result<Vec<SnapshotInfo>>;
    /// Product figures per snapshot, oldest first.
    async fn product_points(&self, filter: &HistoryFilter) -> Result<Vec<ProductPoint>>;
    /// Every holding of one snapshot.
    async fn holdings(&self, snapshot_id: i64) -> Result<Vec<HoldingState>>;
    /// What changed between two snapshots' holdings, on `providers` only: holdings in `to` and
    /// not in `from` and the reverse, and people (canonical emails) holding something in one and
    /// nothing in the other. Computed where the data is, so a diff does not read two snapshots.
    async fn holding_changes(
        &self,
        from: i64,
        to: i64,
        providers: &[ProviderKind],
    ) -> Result<HoldingChanges>;
    /// Per product of one snapshot: holdings, those without a reported last activity, and
    /// those whose last activity is at or before `inactive_since`.
    async fn activity_counts(
        &self,
        snapshot_id: i64,
        inactive_since: DateTime<Utc>,
    ) -> Result<Vec<ActivityCount>>;
    /// Keeps the `keep` newest snapshots and deletes the others; returns the deleted ids.
    async fn prune(&self, keep: usize) -> Result<Vec<i64>>;
}

#[async_trait]
impl<T: HistoryStore + ?Sized> HistoryStore for Box<T> {
    async fn schema_version(&self) -> Result<i64> {
        (**self).schema_version().await
    }
    async fn record(&self, snapshot: &Snapshot) -> Result<Recorded> {
        (**self).record(snapshot).await
    }
    async fn snapshots(&self, since: Option<DateTime<Utc>>) -> Result<Vec<SnapshotInfo>> {
        (**self).snapshots(since).await
    }
    async fn product_points(&self, filter: &HistoryFilter) -> Result<Vec<ProductPoint>> {
        (**self).product_points(filter).await
    }
    async fn holdings(&self, snapshot_id: i64) -> Result<Vec<HoldingState>> {
        (**self).holdings(snapshot_id).await
    }
    async fn holding_changes(
        &self,
        from: i64,
        to: i64,
        providers: &[ProviderKind],
    ) -> Result<HoldingChanges> {
        (**self).holding_changes(from, to, providers).await
    }
    async fn activity_counts(
        &self,
        snapshot_id: i64,
        inactive_since: DateTime<Utc>,
    ) -> Result<Vec<ActivityCount>> {
        (**self).activity_counts(snapshot_id, inactive_since).await
    }
    async fn prune(&self, keep: usize) -> Result<Vec<i64>> {
        (**self).prune(keep).await
    }
}

/// A product's figures over time: one row per snapshot.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HistoryRow {
    /// The snapshot's id.
    pub snapshot_id: i64,
    /// When the snapshot was taken, in [`timestamp`] form.
    pub taken_at: String,
    /// The product's vendor.
    pub provider: ProviderKind,
    /// Which account of the vendor (see [`ProviderState::identity`]): figures of two accounts
    /// are two series, never one.
    pub identity: String,
    /// The product id as the vendor names it.
    pub product_id: String,
    /// The product's display name in that snapshot.
    pub name: String,
    /// `ok`, or `failed` when the provider could not be read in that snapshot (figures unknown).
    pub status: &'static str,
    /// Seats owned; `None` when unlimited, unknown, or the provider failed.
    pub total: Option<u64>,
    /// Whether the vendor grants unlimited seats.
    pub unlimited: bool,
    /// Seats assigned; `None` when the provider failed.
    pub assigned: Option<u64>,
    /// Seats free; `None` when the total is unlimited or unknown.
    pub free: Option<u64>,
    /// Assigned as a percentage of a limited, non-zero total (may exceed 100); `None` otherwise.
    pub utilization_pct: Option<f64>,
}

/// One holding, by its key (what a diff compares).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct HoldingKey {
    /// The product's vendor.
    pub provider: ProviderKind,
    /// The product id as the vendor names it.
    pub product_id: String,
    /// Person, user or device.
    pub holder_kind: HolderKind,
    /// The holder's key (see [`HoldingState::holder_key`]).
    pub holder_key: String,
}

/// What changed between two snapshots' holdings (see [`HistoryStore::holding_changes`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct HoldingChanges {
    /// Holdings in the second snapshot, not the first.
    pub added: Vec<HoldingKey>,
    /// Holdings in the first snapshot, not the second.
    pub removed: Vec<HoldingKey>,
    /// People (canonical emails) holding something only in the second snapshot.
    pub people_appeared: Vec<String>,
    /// People holding something only in the first snapshot.
    pub people_disappeared: Vec<String>,
}

/// One product's sign-in figures in one snapshot, as the store counts them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ActivityCount {
    /// The product's vendor.
    pub provider: ProviderKind,
    /// The product id as the vendor names it.
    pub product_id: String,
    /// Holdings of the product.
    pub holders: u64,
    /// Holdings whose holder has no reported last activity (devices, Apple, never signed in).
    pub unknown: u64,
    /// Holdings whose holder's last activity is at or before the cut-off.
    pub inactive: u64,
}

/// Sign-in activity of one product in one snapshot (see [`HistoryStoreExt::activity`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ActivityRow {
    /// The snapshot's id.
    pub snapshot_id: i64,
    /// When the snapshot was taken, in [`timestamp`] form.
    pub taken_at: String,
    /// The product's vendor.
    pub provider: ProviderKind,
    /// Which account of the vendor (see [`ProviderState::identity`]).
    pub identity: String,
    /// The product id as the vendor names it.
    pub product_id: String,
    /// The product's display name in that snapshot.
    pub name: String,
    /// The threshold: inactive means no sign-in for this many days before the snapshot.
    pub inactive_days: u32,
    /// Holdings of the product.
    pub holders: u64,
    /// Signed in within the threshold.
    pub active_recently: u64,
    /// Last signed in `inactive_days` or more days before the snapshot.
    pub inactive: u64,
    /// No sign-in reported by the vendor: neither active nor inactive.
    pub unknown: u64,
}

/// Which snapshot: by id, by run id, or counted from the newest.
///
/// Parsed from text, as the CLI reads its snapshot arguments:
///
/// ```
/// use licensekit::history::SnapshotRef;
///
/// assert_eq!("42".parse(), Ok(SnapshotRef::Id(42)));
/// assert_eq!("latest".parse(), Ok(SnapshotRef::Latest(0)));
/// assert_eq!("latest~2".parse(), Ok(SnapshotRef::Latest(2)));
/// assert_eq!("nightly-2026-11-30".parse(), Ok(SnapshotRef::RunId("nightly-2026-11-30".into())));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SnapshotRef {
    /// The store's snapshot id.
    Id(i64),
    /// The run id the snapshot was written with.
    RunId(String),
    /// 0 is the newest, 1 the one before.
    Latest(usize),
}

impl std::str::FromStr for SnapshotRef {
    type Err = std::convert::Infallible;
    /// A number is an id; `latest`, `latest~N` count back from the newest; anything else is a run id.
    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        if let Ok(id) = s.parse::<i64>() {
            return Ok(SnapshotRef::Id(id));
        }
        if s == "latest" {
            return Ok(SnapshotRef::Latest(0));
        }
        if let Some(n) = s.strip_prefix("latest~").and_then(|n| n.parse().ok()) {
            return Ok(SnapshotRef::Latest(n));
        }
        Ok(SnapshotRef::RunId(s.to_owned()))
    }
}

/// Holders gained and lost by one product between two snapshots.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProductDiff {
    /// The product's vendor.
    pub provider: ProviderKind,
    /// The product id as the vendor names it.
    pub product_id: String,
    /// The product's display name (from the later snapshot when it has it).
    pub name: String,
    /// `changed`, `added` (not in A), `removed` (not in B), or `not_comparable` when the
    /// provider failed in either snapshot.
    pub status: &'static str,
    /// Seats owned in the first snapshot; `None` when unknown or absent.
    pub total_before: Option<u64>,
    /// Seats owned in the second snapshot; `None` when unknown or absent.
    pub total_after: Option<u64>,
    /// Seats assigned in the first snapshot; `None` when absent.
    pub assigned_before: Option<u64>,
    /// Seats assigned in the second snapshot; `None` when absent.
    pub assigned_after: Option<u64>,
    /// Holder keys holding it only in the second snapshot.
    pub holders_added: Vec<String>,
    /// Holder keys holding it only in the first snapshot.
    pub holders_removed: Vec<String>,
}

/// What changed between two snapshots.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Diff {
    /// The first (older) snapshot compared.
    pub from: SnapshotInfo,
    /// The second snapshot compared.
    pub to: SnapshotInfo,
    /// Products whose figures or holders changed (unchanged products are left out).
    pub products: Vec<ProductDiff>,
    /// People (canonical emails) holding something in B and nothing in A, across vendors.
    pub people_appeared: Vec<String>,
    /// People holding something in A and nothing in B, across vendors.
    pub people_disappeared: Vec<String>,
    /// Providers failed in either snapshot, or read from another account of the vendor in each
    /// (see `identity_changed`): their changes are unknown, not "everything removed".
    pub not_comparable: Vec<ProviderKind>,
    /// Providers whose identity differs between the two snapshots (another org, location or
    /// client): two tenants, never compared holder by holder.
    pub identity_changed: Vec<IdentityChange>,
}

/// A provider read from another account of its vendor in the second snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IdentityChange {
    /// The provider's vendor.
    pub provider: ProviderKind,
    /// Its identity in the first snapshot.
    pub before: String,
    /// Its identity in the second snapshot.
    pub after: String,
}

impl Diff {
    /// Whether nothing changed: no product diffs and no people appeared or disappeared.
    pub fn is_empty(&self) -> bool {
        self.products.is_empty()
            && self.people_appeared.is_empty()
            && self.people_disappeared.is_empty()
    }
}

/// `history` and `diff`, for every [`HistoryStore`].
#[async_trait]
pub trait HistoryStoreExt: HistoryStore {
    /// Utilization per product over time. Snapshots in which the product's provider failed give
    /// a `failed` row with unknown figures.
    async fn history(&self, filter: &HistoryFilter) -> Result<Vec<HistoryRow>> {
        let points = self.product_points(filter).await?;
        let snapshots = self.snapshots(filter.since).await?;
        let mut rows: Vec<HistoryRow> = points
            .into_iter()
            .map(|p| {
                let s = &p.product;
                HistoryRow {
                    snapshot_id: p.snapshot_id,
                    taken_at: p.taken_at.clone(),
                    provider: s.provider,
                    identity: p.identity.clone(),
                    product_id: s.product_id.clone(),
                    name: s.name.clone(),
                    status: "ok",
                    total: s.total,
                    unlimited: s.unlimited,
                    assigned: Some(s.assigned),
                    free: s.free(),
                    utilization_pct: s
                        .total
                        .filter(|t| *t > 0)
                        .map(|t| s.assigned as f64 * 100.0 / t as f64),
                }
            })
            .collect();
        let mut known: BTreeMap<(ProviderKind, String, String), String> = BTreeMap::new();
        for r in &rows {
            known.insert(
                (r.provider, r.identity.clone(), r.product_id.clone()),
                r.name.clone(),
            );
        }
        for s in &snapshots {
            for p in &s.providers {
                if p.status.is_ok() {
                    continue;
                }
                for ((provider, identity, product_id), name) in &known {
                    if *provider == p.provider && *identity == p.identity {
                        rows.push(HistoryRow {
                            snapshot_id: s.id,
                            taken_at: s.taken_at.clone(),
                            provider: *provider,
                            identity: identity.clone(),
                            product_id: product_id.clone(),
                            name: name.clone(),
                            status: "failed",
                            total: None,
                            unlimited: false,
                            assigned: None,
                            free: None,
                            utilization_pct: None,
                        });
                    }
                }
            }
        }
        rows.sort_by(|a, b| {
            (
                a.provider,
                &a.identity,
                &a.product_id,
                &a.taken_at,
                a.snapshot_id,
            )
                .cmp(&(
                    b.provider,
                    &b.identity,
                    &b.product_id,
                    &b.taken_at,
                    b.snapshot_id,
                ))
        });
        Ok(rows)
    }

    /// The points of the HTML report's "utilization over time" charts: every product's figures
    /// per snapshot, for the accounts named in `identities` only (the ones the report read),
    /// so another tenant's history never shows as this one's.
    async fn trends(
        &self,
        identities: &HashMap<ProviderKind, String>,
    ) -> Result<Vec<crate::report::html::TrendPoint>> {
        let rows = self.history(&HistoryFilter::default()).await?;
        let mut points = Vec::new();
        for r in rows {
            if identities.get(&r.provider) != Some(&r.identity) {
                continue;
            }
            let taken_at = DateTime::parse_from_rfc3339(&r.taken_at)
                .map_err(|e| HistoryError::BadData(format!("taken_at `{}`: {e}", r.taken_at)))?
                .with_timezone(&Utc);
            points.push(crate::report::html::TrendPoint {
                provider: r.provider,
                product_id: r.product_id,
                name: r.name,
                taken_at,
                assigned: r.assigned,
                total: r.total,
            });
        }
        points.sort_by_key(|p| p.taken_at);
        Ok(points)
    }

    /// Sign-in activity per product over time: in each snapshot, how many holdings' holders
    /// last signed in `inactive_days` or more days before the snapshot was taken, how many
    /// signed in more recently, and how many the vendor reports no sign-in for (unknown: never
    /// counted as inactive). Only the vendors' own last-activity figures are read: a holding
    /// that merely stayed the same across snapshots is never taken for inactivity.
    async fn activity(
        &self,
        filter: &HistoryFilter,
        inactive_days: u32,
    ) -> Result<Vec<ActivityRow>> {
        let points = self.product_points(filter).await?;
        let mut snapshots: BTreeMap<i64, &str> = BTreeMap::new();
        for p in &points {
            snapshots.insert(p.snapshot_id, p.taken_at.as_str());
        }
        let mut rows = Vec::new();
        for (id, taken_at) in snapshots {
            let at = DateTime::parse_from_rfc3339(taken_at)
                .map_err(|e| HistoryError::BadData(format!("taken_at `{taken_at}`: {e}")))?
                .with_timezone(&Utc);
            let cutoff = at - chrono::Duration::days(i64::from(inactive_days));
            let counts: HashMap<(ProviderKind, String), ActivityCount> = self
                .activity_counts(id, cutoff)
                .await?
                .into_iter()
                .map(|c| ((c.provider, c.product_id.clone()), c))
                .collect();
            for p in points.iter().filter(|p| p.snapshot_id == id) {
                let c = counts.get(&(p.product.provider, p.product.product_id.clone()));
                let (holders, unknown, inactive) =
                    c.map_or((0, 0, 0), |c| (c.holders, c.unknown, c.inactive));
                rows.push(ActivityRow {
                    snapshot_id: id,
                    taken_at: p.taken_at.clone(),
                    provider: p.product.provider,
                    identity: p.identity.clone(),
                    product_id: p.product.product_id.clone(),
                    name: p.product.name.clone(),
                    inactive_days,
                    holders,
                    active_recently: holders - unknown - inactive,
                    inactive,
                    unknown,
                });
            }
        }
        rows.sort_by(|a, b| {
            (a.provider, &a.identity, &a.product_id, &a.taken_at).cmp(&(
                b.provider,
                &b.identity,
                &b.product_id,
                &b.taken_at,
            ))
        });
        Ok(rows)
    }

    /// Finds one snapshot.
    async fn resolve(&self, which: &SnapshotRef) -> Result<SnapshotInfo> {
        let all = self.snapshots(None).await?;
        let found = match which {
            SnapshotRef::Id(id) => all.into_iter().find(|s| s.id == *id),
            SnapshotRef::RunId(run) => all.into_iter().find(|s| &s.run_id == run),
            SnapshotRef::Latest(n) => all.into_iter().rev().nth(*n),
        };
        found.ok_or_else(|| {
            HistoryError::NoSuchSnapshot(match which {
                SnapshotRef::Id(id) => id.to_string(),
                SnapshotRef::RunId(run) => format!("`{run}`"),
                SnapshotRef::Latest(n) => format!("latest~{n}"),
            })
        })
    }

    /// What changed from `a` to `b` (default: the two newest snapshots).
    async fn diff(&self, a: Option<&SnapshotRef>, b: Option<&SnapshotRef>) -> Result<Diff> {
        let count = self.snapshots(None).await?.len();
        if a.is_none() && count < 2 {
            return Err(HistoryError::NotEnoughSnapshots(format!(
                "a diff needs two snapshots and the history has {count}; take another with \
                 `licensekit snapshot`"
            )));
        }
        let from = self.resolve(a.unwrap_or(&SnapshotRef::Latest(1))).await?;
        let to = self.resolve(b.unwrap_or(&SnapshotRef::Latest(0))).await?;
        let (comparable, not_comparable, identity_changed) = comparability(&from, &to);
        let providers: Vec<ProviderKind> = comparable.iter().copied().collect();
        // Computed by the database: only what changed comes back, not two snapshots' rows.
        let changes = self.holding_changes(from.id, to.id, &providers).await?;
        let points = self.product_points(&HistoryFilter::default()).await?;
        Ok(compute_diff(
            from,
            to,
            &points,
            changes,
            &comparable,
            not_comparable,
            identity_changed,
        ))
    }
}

impl<T: HistoryStore + ?Sized> HistoryStoreExt for T {}

fn ok_providers(s: &SnapshotInfo) -> BTreeSet<ProviderKind> {
    s.providers
        .iter()
        .filter(|p| p.status.is_ok())
        .map(|p| p.provider)
        .collect()
}

/// Which providers two snapshots can be compared on: read in both, from the same account.
fn comparability(
    from: &SnapshotInfo,
    to: &SnapshotInfo,
) -> (
    BTreeSet<ProviderKind>,
    Vec<ProviderKind>,
    Vec<IdentityChange>,
) {
    let (ok_a, ok_b) = (ok_providers(from), ok_providers(to));
    let all: BTreeSet<ProviderKind> = from
        .providers
        .iter()
        .chain(&to.providers)
        .map(|p| p.provider)
        .collect();
    // Another account of the same vendor is another tenant: its holders are not compared.
    let identity_of = |s: &SnapshotInfo, kind: ProviderKind| {
        s.providers
            .iter()
            .find(|p| p.provider == kind)
            .map(|p| p.identity.clone())
    };
    let mut identity_changed = Vec::new();
    for kind in ok_a.intersection(&ok_b) {
        let (before, after) = (identity_of(from, *kind), identity_of(to, *kind));
        if before != after {
            identity_changed.push(IdentityChange {
                provider: *kind,
                before: before.unwrap_or_default(),
                after: after.unwrap_or_default(),
            });
        }
    }
    let comparable: BTreeSet<ProviderKind> = ok_a
        .intersection(&ok_b)
        .copied()
        .filter(|k| identity_changed.iter().all(|c| c.provider != *k))
        .collect();
    let not_comparable = all.difference(&comparable).copied().collect();
    (comparable, not_comparable, identity_changed)
}

fn compute_diff(
    from: SnapshotInfo,
    to: SnapshotInfo,
    points: &[ProductPoint],
    changes: HoldingChanges,
    comparable: &BTreeSet<ProviderKind>,
    not_comparable: Vec<ProviderKind>,
    identity_changed: Vec<IdentityChange>,
) -> Diff {
    type Key = (ProviderKind, String);
    let products_in = |id: i64| -> BTreeMap<Key, &ProductState> {
        points
            .iter()
            .filter(|p| p.snapshot_id == id && comparable.contains(&p.product.provider))
            .map(|p| {
                (
                    (p.product.provider, p.product.product_id.clone()),
                    &p.product,
                )
            })
            .collect()
    };
    let (pa, pb) = (products_in(from.id), products_in(to.id));
    let mut added: BTreeMap<Key, Vec<String>> = BTreeMap::new();
    let mut removed: BTreeMap<Key, Vec<String>> = BTreeMap::new();
    let name = |h: &HoldingKey| format!("{}:{}", h.holder_kind.as_str(), h.holder_key);
    for h in &changes.added {
        added
            .entry((h.provider, h.product_id.clone()))
            .or_default()
            .push(name(h));
    }
    for h in &changes.removed {
        removed
            .entry((h.provider, h.product_id.clone()))
            .or_default()
            .push(name(h));
    }
    let keys: BTreeSet<Key> = pa
        .keys()
        .chain(pb.keys())
        .chain(added.keys())
        .chain(removed.keys())
        .cloned()
        .collect();
    let mut products = Vec::new();
    for key in &keys {
        let (a, b) = (pa.get(key), pb.get(key));
        let mut holders_added = added.remove(key).unwrap_or_default();
        let mut holders_removed = removed.remove(key).unwrap_or_default();
        holders_added.sort();
        holders_removed.sort();
        let status = match (a, b) {
            (None, Some(_)) => "added",
            (Some(_), None) => "removed",
            _ => "changed",
        };
        let same_figures = a.map(|p| (p.total, p.assigned)) == b.map(|p| (p.total, p.assigned));
        if status == "changed"
            && same_figures
            && holders_added.is_empty()
            && holders_removed.is_empty()
        {
            continue;
        }
        products.push(ProductDiff {
            provider: key.0,
            product_id: key.1.clone(),
            name: b
                .or(a)
                .map(|p| p.name.clone())
                .unwrap_or_else(|| key.1.clone()),
            status,
            total_before: a.and_then(|p| p.total),
            total_after: b.and_then(|p| p.total),
            assigned_before: a.map(|p| p.assigned),
            assigned_after: b.map(|p| p.assigned),
            holders_added,
            holders_removed,
        });
    }
    for provider in &not_comparable {
        for p in points.iter().filter(|p| {
            (p.snapshot_id == from.id || p.snapshot_id == to.id) && p.product.provider == *provider
        }) {
            if products.iter().any(|d: &ProductDiff| {
                d.provider == *provider && d.product_id == p.product.product_id
            }) {
                continue;
            }
            products.push(ProductDiff {
                provider: *provider,
                product_id: p.product.product_id.clone(),
                name: p.product.name.clone(),
                status: "not_comparable",
                total_before: None,
                total_after: None,
                assigned_before: None,
                assigned_after: None,
                holders_added: Vec::new(),
                holders_removed: Vec::new(),
            });
        }
    }
    let mut people_appeared = changes.people_appeared;
    let mut people_disappeared = changes.people_disappeared;
    people_appeared.sort();
    people_disappeared.sort();
    Diff {
        people_appeared,
        people_disappeared,
        from,
        to,
        products,
        not_comparable,
        identity_changed,
    }
}
