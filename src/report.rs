//! Cross-vendor reporting: seats per product, who holds what across vendors, and licenses that
//! could be reclaimed. Pure over `&[&dyn LicenseProvider]`: any mix of providers, simulated or
//! real.
//!
//! The report schema (serde) is stable and versioned by [`Report::schema_version`]; JSON and CSV
//! are derived from the same structs.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use futures::future::join_all;
use serde::{Deserialize, Serialize};

use licensekit_core::{
    AssignmentFilter, Holder, HolderId, LicenseProvider, Product, ProductId, Provenance,
    ProviderKind, Result, SeatTotal,
};

/// The report schema version; bumped on any incompatible change.
pub const SCHEMA_VERSION: u32 = 1;

/// How to match people across vendors.
#[derive(Debug, Clone, Default)]
pub struct ReportOptions {
    /// Alias email -> canonical email (both normalized on use).
    pub aliases: HashMap<String, String>,
}

/// Trimmed, case-folded email.
pub fn normalize_email(email: &str) -> String {
    email.trim().to_lowercase()
}

impl ReportOptions {
    /// The person key of an email: normalized, then mapped through the aliases.
    pub fn person_of(&self, email: &str) -> Option<String> {
        let normalized = normalize_email(email);
        if normalized.is_empty() || !normalized.contains('@') {
            return None;
        }
        let canonical = self
            .aliases
            .iter()
            .find(|(alias, _)| normalize_email(alias) == normalized)
            .map(|(_, canonical)| normalize_email(canonical));
        Some(canonical.unwrap_or(normalized))
    }
}

/// The whole report.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub schema_version: u32,
    pub generated_at: DateTime<Utc>,
    /// Totals per provider.
    pub providers: Vec<ProviderTotals>,
    /// Providers whose data could not be collected, with the reason.
    pub errors: Vec<ProviderFailure>,
    pub products: Vec<ProductRow>,
    /// People matched across vendors by email.
    pub people: Vec<Person>,
    /// User holders that could not be matched to a person (no usable email).
    pub unmatched: Vec<UnmatchedHolder>,
    /// Devices and what they hold.
    pub devices: Vec<DeviceHoldings>,
    pub reclaim: Vec<ReclaimCandidate>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ProviderTotals {
    pub provider: ProviderKind,
    pub products: usize,
    /// Sum of limited totals; products with unknown or unlimited totals are counted apart.
    pub seats_total: u64,
    pub products_unlimited: usize,
    pub products_total_unknown: usize,
    pub seats_assigned: u64,
    pub assignments: u64,
    pub holders_in_directory: Option<usize>,
    /// Listings during which the vendor's data changed (empty when none did, or the vendor does
    /// not say): the figures of this provider then mix two states and are marked so.
    pub changed_during_listing: Vec<ListingChange>,
}

/// A listing whose data changed while it was read: the version seen on its first and last page.
/// Records unchanged during the listing are counted once; records changed during it may be
/// counted or not. Only vendors that version their data say so (Apple VPP's `versionId`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ListingChange {
    /// `products` or `assignments`.
    pub listing: &'static str,
    pub first_version_id: String,
    pub last_version_id: String,
}

/// Vendor fields in which an adapter reports the versions a listing saw (the Apple VPP adapter
/// sets them on every product and on the last assignment; see its README).
const FIRST_VERSION: &str = "listing_first_version_id";
const LAST_VERSION: &str = "listing_last_version_id";

/// The change a record's vendor fields report, if its listing's first and last versions differ.
fn listing_change(
    listing: &'static str,
    vendor: &licensekit_core::VendorFields,
) -> Option<ListingChange> {
    let first = vendor.get(FIRST_VERSION)?.as_str()?;
    let last = vendor.get(LAST_VERSION)?.as_str()?;
    (first != last).then(|| ListingChange {
        listing,
        first_version_id: first.to_owned(),
        last_version_id: last.to_owned(),
    })
}

/// A provider that could not be read, with what went wrong.
#[derive(Debug, Clone, Serialize)]
pub struct ProviderFailure {
    pub provider: ProviderKind,
    /// The error's meaning (a configuration or credential problem is the caller's to fix).
    pub kind: licensekit_core::ErrorKind,
    pub error: String,
}

/// Seats of one product, each figure with where it came from.
#[derive(Debug, Clone, Serialize)]
pub struct ProductRow {
    pub provider: ProviderKind,
    pub product_id: ProductId,
    pub name: String,
    /// `None` when unlimited or unknown (see `unlimited` and `total_source`).
    pub total: Option<u64>,
    pub unlimited: bool,
    pub total_source: Provenance,
    pub assigned: u64,
    pub assigned_source: Provenance,
    pub available: Option<u64>,
    pub utilization_pct: Option<f64>,
    /// Seats assigned beyond the total.
    pub over_allocated_by: Option<u64>,
    /// The provider's data changed while it was listed (see [`ProviderTotals::changed_during_listing`]):
    /// these figures mix two states.
    pub changed_during_listing: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct Person {
    /// The canonical (normalized, alias-resolved) email.
    pub email: String,
    pub accounts: Vec<Account>,
    pub holdings: Vec<Holding>,
}

/// One vendor account of a person.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Account {
    pub provider: ProviderKind,
    pub holder_id: String,
    pub display_name: Option<String>,
    pub active: Option<bool>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Holding {
    pub provider: ProviderKind,
    pub product_id: ProductId,
    pub product_name: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct UnmatchedHolder {
    pub provider: ProviderKind,
    pub holder_id: String,
    pub display_name: Option<String>,
    pub products: Vec<ProductId>,
}

#[derive(Debug, Clone, Serialize)]
pub struct DeviceHoldings {
    pub provider: ProviderKind,
    pub serial: String,
    pub products: Vec<ProductId>,
}

/// Why a seat could be given back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReclaimReason {
    /// The vendor marks the holder inactive, deactivated or retired.
    HolderInactive,
    /// The vendor's user directory does not know the holder.
    HolderUnknownToDirectory,
    /// The product has more seats assigned than owned; this holder is among the most recent.
    ProductOverAllocated,
}

/// A seat that could be revoked, naming everything a revoke needs.
#[derive(Debug, Clone, Serialize)]
pub struct ReclaimCandidate {
    pub provider: ProviderKind,
    pub product_id: ProductId,
    pub product_name: String,
    pub holder: HolderId,
    pub holder_name: Option<String>,
    pub email: Option<String>,
    pub reason: ReclaimReason,
}

/// Everything collected from one provider (also read by [`crate::plan`]).
pub(crate) struct Collected {
    pub(crate) provider: ProviderKind,
    pub(crate) products: Vec<Product>,
    /// (product, holder, assigned_at) in listing order.
    pub(crate) assignments: Vec<(ProductId, HolderId, Option<DateTime<Utc>>)>,
    /// What is known of each holder: the directory entry, else the assignment's holder.
    pub(crate) holders: HashMap<HolderId, Holder>,
    pub(crate) directory: Option<BTreeSet<HolderId>>,
    pub(crate) changed_during_listing: Vec<ListingChange>,
}

pub(crate) async fn collect_one(
    provider: &dyn LicenseProvider,
    progress: &(dyn Fn(ProviderKind, u64) + Sync),
) -> Result<Collected> {
    let kind = provider.kind();
    let products = provider.products().await?;
    let mut changed_during_listing: Vec<ListingChange> = products
        .iter()
        .find_map(|p| listing_change("products", &p.vendor))
        .into_iter()
        .collect();
    let mut holders: HashMap<HolderId, Holder> = HashMap::new();
    let mut assignments = Vec::new();
    let mut stream = provider.assignments(AssignmentFilter::all());
    let mut assignments_changed = None;
    while let Some(a) = stream.try_next().await? {
        if let Some(change) = listing_change("assignments", &a.vendor) {
            assignments_changed = Some(change);
        }
        assignments.push((a.product, a.holder.id.clone(), a.assigned_at));
        holders.entry(a.holder.id.clone()).or_insert(a.holder);
        if assignments.len() % 500 == 0 {
            progress(kind, assignments.len() as u64);
        }
    }
    progress(kind, assignments.len() as u64);
    changed_during_listing.extend(assignments_changed);
    let directory = if provider.capabilities().holder_directory {
        let mut ids = BTreeSet::new();
        let mut stream = provider.holders();
        while let Some(h) = stream.try_next().await? {
            ids.insert(h.id.clone());
            // The directory knows more (email, state) than an assignment row may carry.
            let listed = holders.remove(&h.id);
            holders.insert(h.id.clone(), merge(h, listed));
        }
        Some(ids)
    } else {
        None
    };
    Ok(Collected {
        provider: kind,
        products,
        assignments,
        holders,
        directory,
        changed_during_listing,
    })
}

/// Directory data wins; gaps are filled from what the assignment said.
fn merge(mut directory: Holder, listed: Option<Holder>) -> Holder {
    if let Some(listed) = listed {
        directory.email = directory.email.or(listed.email);
        directory.display_name = directory.display_name.or(listed.display_name);
        directory.active = directory.active.or(listed.active);
    }
    directory
}

impl Report {
    /// Collects from every provider concurrently and builds the report. A provider that fails
    /// is listed in `errors`; the others are still reported. `progress` gets (provider,
    /// assignments read so far).
    pub async fn collect(
        providers: &[&dyn LicenseProvider],
        options: &ReportOptions,
        progress: &(dyn Fn(ProviderKind, u64) + Sync),
    ) -> Report {
        let results = join_all(providers.iter().map(|p| collect_one(*p, progress))).await;
        let mut collected = Vec::new();
        let mut errors = Vec::new();
        for (provider, result) in providers.iter().zip(results) {
            match result {
                Ok(c) => collected.push(c),
                Err(e) => errors.push(ProviderFailure {
                    provider: provider.kind(),
                    kind: e.kind(),
                    error: e.to_string(),
                }),
            }
        }
        Report::build(&collected, errors, options)
    }

    pub(crate) fn build(
        collected: &[Collected],
        errors: Vec<ProviderFailure>,
        options: &ReportOptions,
    ) -> Report {
        let mut providers = Vec::new();
        let mut products = Vec::new();
        let mut people: BTreeMap<String, Person> = BTreeMap::new();
        let mut unmatched: BTreeMap<(ProviderKind, String), UnmatchedHolder> = BTreeMap::new();
        let mut devices: BTreeMap<(ProviderKind, String), DeviceHoldings> = BTreeMap::new();
        let mut reclaim = Vec::new();

        for c in collected {
            let names: HashMap<&ProductId, &str> = c
                .products
                .iter()
                .map(|p| (&p.id, p.name.as_str()))
                .collect();
            let mut counted: HashMap<&ProductId, u64> = HashMap::new();
            for (product, _, _) in &c.assignments {
                *counted.entry(product).or_default() += 1;
            }
            let mut totals = ProviderTotals {
                provider: c.provider,
                products: c.products.len(),
                seats_total: 0,
                products_unlimited: 0,
                products_total_unknown: 0,
                seats_assigned: 0,
                assignments: c.assignments.len() as u64,
                holders_in_directory: c.directory.as_ref().map(BTreeSet::len),
                changed_during_listing: c.changed_during_listing.clone(),
            };
            let mut over_allocated: HashMap<&ProductId, u64> = HashMap::new();
            for p in &c.products {
                let mut row = product_row(p, counted.get(&p.id).copied().unwrap_or(0));
                row.changed_during_listing = !c.changed_during_listing.is_empty();
                match p.seats.total {
                    SeatTotal::Limited(n) => totals.seats_total += n,
                    SeatTotal::Unlimited => totals.products_unlimited += 1,
                    SeatTotal::Unknown => totals.products_total_unknown += 1,
                }
                totals.seats_assigned += row.assigned;
                if let Some(over) = row.over_allocated_by {
                    over_allocated.insert(&p.id, over);
                }
                products.push(row);
            }
            providers.push(totals);

            let name_of = |id: &ProductId| {
                names
                    .get(id)
                    .map(|s| s.to_string())
                    .unwrap_or_else(|| id.to_string())
            };
            let mut flagged: BTreeSet<(ProductId, HolderId)> = BTreeSet::new();
            for (product, holder_id, _) in &c.assignments {
                let holder = c.holders.get(holder_id);
                let email = holder.and_then(|h| h.email.clone());
                match holder_id {
                    HolderId::Device(serial) => {
                        devices
                            .entry((c.provider, serial.clone()))
                            .or_insert_with(|| DeviceHoldings {
                                provider: c.provider,
                                serial: serial.clone(),
                                products: Vec::new(),
                            })
                            .products
                            .push(product.clone());
                    }
                    HolderId::User(id) => match email.as_deref().and_then(|e| options.person_of(e))
                    {
                        Some(key) => {
                            let person = people.entry(key.clone()).or_insert_with(|| Person {
                                email: key,
                                accounts: Vec::new(),
                                holdings: Vec::new(),
                            });
                            let account = Account {
                                provider: c.provider,
                                holder_id: id.clone(),
                                display_name: holder.and_then(|h| h.display_name.clone()),
                                active: holder.and_then(|h| h.active),
                            };
                            if !person.accounts.contains(&account) {
                                person.accounts.push(account);
                            }
                            person.holdings.push(Holding {
                                provider: c.provider,
                                product_id: product.clone(),
                                product_name: name_of(product),
                            });
                        }
                        None => {
                            unmatched
                                .entry((c.provider, id.clone()))
                                .or_insert_with(|| UnmatchedHolder {
                                    provider: c.provider,
                                    holder_id: id.clone(),
                                    display_name: holder.and_then(|h| h.display_name.clone()),
                                    products: Vec::new(),
                                })
                                .products
                                .push(product.clone());
                        }
                    },
                }
                let reason = if holder.and_then(|h| h.active) == Some(false) {
                    Some(ReclaimReason::HolderInactive)
                } else if matches!(holder_id, HolderId::User(_))
                    && c.directory.as_ref().is_some_and(|d| !d.contains(holder_id))
                {
                    Some(ReclaimReason::HolderUnknownToDirectory)
                } else {
                    None
                };
                if let Some(reason) = reason {
                    flagged.insert((product.clone(), holder_id.clone()));
                    reclaim.push(ReclaimCandidate {
                        provider: c.provider,
                        product_id: product.clone(),
                        product_name: name_of(product),
                        holder: holder_id.clone(),
                        holder_name: holder.and_then(|h| h.display_name.clone()),
                        email,
                        reason,
                    });
                }
            }
            // Over-allocation: the most recently assigned holders not already flagged.
            for (product, over) in over_allocated {
                let already = flagged.iter().filter(|(p, _)| p == product).count() as u64;
                let mut rows: Vec<&(ProductId, HolderId, Option<DateTime<Utc>>)> = c
                    .assignments
                    .iter()
                    .filter(|(p, h, _)| p == product && !flagged.contains(&(p.clone(), h.clone())))
                    .collect();
                rows.sort_by_key(|row| std::cmp::Reverse(row.2));
                for (p, h, _) in rows.into_iter().take(over.saturating_sub(already) as usize) {
                    let holder = c.holders.get(h);
                    reclaim.push(ReclaimCandidate {
                        provider: c.provider,
                        product_id: p.clone(),
                        product_name: name_of(p),
                        holder: h.clone(),
                        holder_name: holder.and_then(|x| x.display_name.clone()),
                        email: holder.and_then(|x| x.email.clone()),
                        reason: ReclaimReason::ProductOverAllocated,
                    });
                }
            }
        }
        products.sort_by(|a, b| {
            (a.provider, &a.name, &a.product_id).cmp(&(b.provider, &b.name, &b.product_id))
        });
        reclaim.sort_by(|a, b| {
            (a.provider, &a.product_id, &a.holder, a.reason).cmp(&(
                b.provider,
                &b.product_id,
                &b.holder,
                b.reason,
            ))
        });
        Report {
            schema_version: SCHEMA_VERSION,
            generated_at: Utc::now(),
            providers,
            errors,
            products,
            people: people.into_values().collect(),
            unmatched: unmatched.into_values().collect(),
            devices: devices.into_values().collect(),
            reclaim,
        }
    }

    /// Pretty JSON of the whole report.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("the report serializes")
    }

    /// CSV of one section (one row per product, holding, reclaim candidate or unmatched holder).
    pub fn to_csv(&self, section: CsvSection) -> std::result::Result<String, csv::Error> {
        let mut w = csv::Writer::from_writer(Vec::new());
        match section {
            CsvSection::Products => {
                for p in &self.products {
                    w.serialize(ProductCsv::from(p))?;
                }
            }
            CsvSection::Holdings => {
                for person in &self.people {
                    for h in &person.holdings {
                        w.serialize(HoldingCsv {
                            email: &person.email,
                            provider: h.provider,
                            product_id: h.product_id.as_str(),
                            product_name: &h.product_name,
                        })?;
                    }
                }
            }
            CsvSection::Reclaim => {
                for r in &self.reclaim {
                    w.serialize(ReclaimCsv {
                        provider: r.provider,
                        product_id: r.product_id.as_str(),
                        product_name: &r.product_name,
                        holder_kind: r.holder.kind(),
                        holder_id: r.holder.as_str(),
                        holder_name: r.holder_name.as_deref(),
                        email: r.email.as_deref(),
                        reason: r.reason,
                    })?;
                }
            }
            CsvSection::Unmatched => {
                for u in &self.unmatched {
                    w.serialize(UnmatchedCsv {
                        provider: u.provider,
                        holder_id: &u.holder_id,
                        display_name: u.display_name.as_deref(),
                        products: u
                            .products
                            .iter()
                            .map(ProductId::as_str)
                            .collect::<Vec<_>>()
                            .join(";"),
                    })?;
                }
            }
        }
        let bytes = w.into_inner().map_err(|e| e.into_error())?;
        Ok(String::from_utf8(bytes).expect("csv writes UTF-8"))
    }
}

/// Which part of the report a CSV holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CsvSection {
    Products,
    Holdings,
    Reclaim,
    Unmatched,
}

#[derive(Serialize)]
struct ProductCsv<'a> {
    provider: ProviderKind,
    product_id: &'a str,
    name: &'a str,
    total: String,
    total_source: Provenance,
    assigned: u64,
    assigned_source: Provenance,
    available: Option<u64>,
    utilization_pct: Option<String>,
    over_allocated_by: Option<u64>,
}

impl<'a> From<&'a ProductRow> for ProductCsv<'a> {
    fn from(p: &'a ProductRow) -> Self {
        ProductCsv {
            provider: p.provider,
            product_id: p.product_id.as_str(),
            name: &p.name,
            total: match (p.total, p.unlimited) {
                (Some(n), _) => n.to_string(),
                (None, true) => "unlimited".into(),
                (None, false) => "unknown".into(),
            },
            total_source: p.total_source,
            assigned: p.assigned,
            assigned_source: p.assigned_source,
            available: p.available,
            utilization_pct: p.utilization_pct.map(|u| format!("{u:.1}")),
            over_allocated_by: p.over_allocated_by,
        }
    }
}

#[derive(Serialize)]
struct HoldingCsv<'a> {
    email: &'a str,
    provider: ProviderKind,
    product_id: &'a str,
    product_name: &'a str,
}

#[derive(Serialize)]
struct ReclaimCsv<'a> {
    provider: ProviderKind,
    product_id: &'a str,
    product_name: &'a str,
    holder_kind: licensekit_core::HolderKind,
    holder_id: &'a str,
    holder_name: Option<&'a str>,
    email: Option<&'a str>,
    reason: ReclaimReason,
}

#[derive(Serialize)]
struct UnmatchedCsv<'a> {
    provider: ProviderKind,
    holder_id: &'a str,
    display_name: Option<&'a str>,
    products: String,
}

fn product_row(p: &Product, counted: u64) -> ProductRow {
    // The vendor's own assigned figure wins; otherwise count from the listing.
    let (assigned, assigned_source) = match (p.seats.assigned, p.seats.assigned_source) {
        (Some(n), Provenance::Vendor) => (n, Provenance::Vendor),
        _ => (counted, Provenance::Counted),
    };
    let (total, unlimited) = match p.seats.total {
        SeatTotal::Limited(n) => (Some(n), false),
        SeatTotal::Unlimited => (None, true),
        SeatTotal::Unknown => (None, false),
    };
    ProductRow {
        provider: p.provider,
        product_id: p.id.clone(),
        name: p.name.clone(),
        total,
        unlimited,
        total_source: p.seats.total_source,
        assigned,
        assigned_source,
        available: total.map(|t| t.saturating_sub(assigned)),
        utilization_pct: total
            .filter(|t| *t > 0)
            .map(|t| assigned as f64 * 100.0 / t as f64),
        over_allocated_by: total.filter(|t| assigned > *t).map(|t| assigned - t),
        changed_during_listing: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use licensekit_core::{
        InMemoryProvider, LicenseProviderExt, MemoryConfig, MemoryProduct, MemoryUser,
    };

    fn provider(users: &[(&str, &str, bool)], seats: u64) -> InMemoryProvider {
        InMemoryProvider::new(MemoryConfig {
            products: vec![MemoryProduct {
                id: "app".into(),
                name: "App".into(),
                seats: Some(seats),
                device_assignable: true,
            }],
            users: users
                .iter()
                .map(|(id, email, active)| MemoryUser {
                    id: id.to_string(),
                    email: (!email.is_empty()).then(|| email.to_string()),
                    name: Some(id.to_uppercase()),
                    active: *active,
                })
                .collect(),
            ..MemoryConfig::default()
        })
        .unwrap()
    }

    #[tokio::test]
    async fn identity_matching_with_aliases_and_unmatched_holders() {
        let a = provider(
            &[
                ("a1", " Ada@Example.com ", true),
                ("a2", "", true),
                ("a3", "grace@example.com", true),
            ],
            10,
        );
        let b = provider(
            &[
                ("b1", "ada.lovelace@example.com", true),
                ("b2", "GRACE@example.com", true),
            ],
            10,
        );
        for (p, ids) in [(&a, vec!["a1", "a2", "a3"]), (&b, vec!["b1", "b2"])] {
            let holders: Vec<HolderId> = ids.into_iter().map(HolderId::user).collect();
            p.assign(&ProductId::new("app"), &holders).await.unwrap();
        }
        let options = ReportOptions {
            aliases: HashMap::from([(
                "Ada.Lovelace@example.com".to_string(),
                "ada@example.com".to_string(),
            )]),
        };
        let report = Report::collect(&[&a, &b], &options, &|_, _| {}).await;
        let emails: Vec<&str> = report.people.iter().map(|p| p.email.as_str()).collect();
        assert_eq!(emails, vec!["ada@example.com", "grace@example.com"]);
        let ada = &report.people[0];
        let ids: BTreeSet<&str> = ada.accounts.iter().map(|a| a.holder_id.as_str()).collect();
        assert_eq!(
            ids,
            BTreeSet::from(["a1", "b1"]),
            "case, spaces and the alias resolve to one person"
        );
        assert_eq!(report.people[1].accounts.len(), 2);
        assert_eq!(report.unmatched.len(), 1, "no email: listed, never guessed");
        assert_eq!(report.unmatched[0].holder_id, "a2");
    }

    #[tokio::test]
    async fn seats_utilization_and_reclaim_reasons() {
        let p = provider(
            &[
                ("u1", "u1@x.io", true),
                ("u2", "u2@x.io", true),
                ("u3", "u3@x.io", true),
            ],
            3,
        );
        let app = ProductId::new("app");
        p.assign(
            &app,
            &[
                HolderId::user("u1"),
                HolderId::user("u2"),
                HolderId::user("u3"),
                HolderId::device("SER1"),
            ],
        )
        .await
        .unwrap();
        p.set_user_active("u2", false).unwrap();
        let report = Report::collect(&[&p], &ReportOptions::default(), &|_, _| {}).await;
        let row = &report.products[0];
        assert_eq!(
            (row.total, row.assigned, row.available),
            (Some(3), 3, Some(0))
        );
        assert_eq!(row.utilization_pct, Some(100.0));
        assert_eq!(row.assigned_source, Provenance::Vendor);
        let reasons: Vec<(&str, ReclaimReason)> = report
            .reclaim
            .iter()
            .map(|r| (r.holder.as_str(), r.reason))
            .collect();
        assert_eq!(reasons, vec![("u2", ReclaimReason::HolderInactive)]);
        assert_eq!(
            report.devices.len(),
            0,
            "the seat limit kept the device out"
        );
        assert_eq!(report.providers[0].seats_total, 3);
        let csv = report.to_csv(CsvSection::Products).unwrap();
        assert_eq!(
            csv.lines().next().unwrap(),
            "provider,product_id,name,total,total_source,assigned,assigned_source,available,utilization_pct,over_allocated_by"
        );
        assert!(
            csv.contains("memory,app,App,3,vendor,3,vendor,0,100.0,"),
            "{csv}"
        );
    }

    #[test]
    fn a_listing_change_is_read_from_the_vendor_fields() {
        let mut vendor = licensekit_core::VendorFields::new();
        assert_eq!(listing_change("products", &vendor), None);
        vendor.insert(FIRST_VERSION.into(), "v1".into());
        vendor.insert(LAST_VERSION.into(), "v1".into());
        assert_eq!(listing_change("products", &vendor), None, "unchanged");
        vendor.insert(LAST_VERSION.into(), "v2".into());
        assert_eq!(
            listing_change("products", &vendor),
            Some(ListingChange {
                listing: "products",
                first_version_id: "v1".into(),
                last_version_id: "v2".into(),
            })
        );
    }

    /// Apple VPP whose location changes while the report lists it (issue 14): the figures are
    /// reported, marked "changed during listing" with both versions.
    #[cfg(feature = "apple-vpp")]
    #[tokio::test]
    async fn apple_figures_are_marked_when_the_location_changed_during_listing() {
        use licensekit_apple_vpp::{AppleVppConfig, AppleVppProvider};
        use licensekit_sim::apple::{AppleSeed, AppleSim, AppleSimConfig, SimEdit, SimHolder};
        use std::sync::atomic::{AtomicUsize, Ordering};

        let mut seed = AppleSeed::demo(0);
        seed.assignments = (0..250)
            .map(|i| {
                (
                    "361309726".to_string(),
                    "STDQ".to_string(),
                    SimHolder::Serial(format!("SER{i:04}")),
                )
            })
            .collect();
        let sim = AppleSim::start(
            seed,
            AppleSimConfig {
                page_size: 100,
                ..Default::default()
            },
        )
        .await
        .unwrap();
        let apple = AppleVppProvider::new(
            AppleVppConfig::new(secrecy::SecretString::from(sim.stoken()))
                .with_base_url(sim.base_url())
                .allow_http(true),
        )
        .unwrap();
        let quiet = Report::collect(&[&apple], &ReportOptions::default(), &|_, _| {}).await;
        assert!(quiet.errors.is_empty(), "{:?}", quiet.errors);
        assert!(quiet.providers[0].changed_during_listing.is_empty());
        assert!(!quiet.products[0].changed_during_listing);

        let n = AtomicUsize::new(0);
        sim.between_assignment_pages(Some(Box::new(move |_| {
            let k = n.fetch_add(1, Ordering::SeqCst);
            vec![SimEdit::Assign(
                "408709785".into(),
                "STDQ".into(),
                SimHolder::Serial(format!("NEW{k:03}")),
            )]
        })));
        let report = Report::collect(&[&apple], &ReportOptions::default(), &|_, _| {}).await;
        assert!(
            report.errors.is_empty(),
            "listed to the end: {:?}",
            report.errors
        );
        let totals = &report.providers[0];
        assert!(totals.assignments >= 250, "{totals:?}");
        let change = &totals.changed_during_listing;
        assert_eq!(change.len(), 1, "{change:?}");
        assert_eq!(change[0].listing, "assignments");
        assert_ne!(change[0].first_version_id, change[0].last_version_id);
        assert!(report.products.iter().all(|p| p.changed_during_listing));
        assert!(report.to_json().contains("\"changed_during_listing\""));
    }
}
