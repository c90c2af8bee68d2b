//! Cross-vendor reporting: seats per product, who holds what across vendors, and licenses that
//! could be reclaimed. Pure over `&[&dyn LicenseProvider]`: any mix of providers, simulated or
//! real.
//!
//! The report schema (serde) is stable and versioned by [`Report::schema_version`]; JSON and CSV
//! are derived from the same structs.

use std::borrow::Borrow;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::BuildHasher;
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use futures::future::join_all;
use hashbrown::HashTable;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use licensekit_core::{
    HolderId, LicenseProvider, Product, ProductId, Provenance, ProviderKind, SeatTotal,
};

use crate::config::{Contract, Period};

mod collect;
pub mod html;

pub(crate) use collect::{Collected, Seat, collect_one};

/// The report schema version; bumped on any incompatible change.
pub const SCHEMA_VERSION: u32 = 1;

/// How to match people across vendors, what was bought, and the thresholds of the report.
#[derive(Debug, Clone)]
pub struct ReportOptions {
    /// Alias email -> canonical email (both normalized on use).
    pub aliases: HashMap<String, String>,
    /// Seats, prices and renewals per product (see [`Contract`]).
    pub contracts: Vec<Contract>,
    /// A seat whose holder last signed in this many days ago or longer is a reclaim candidate
    /// (`inactive_for_days`); 0 turns the check off. Default 90.
    pub inactive_days: u32,
    /// Renewals within this many days are listed. Default 90.
    pub renewal_days: u32,
    /// The moment the report is "as of" (activity and renewals are measured from it); default
    /// now. Set it for reproducible reports and tests.
    pub as_of: Option<DateTime<Utc>>,
}

impl Default for ReportOptions {
    fn default() -> Self {
        ReportOptions {
            aliases: HashMap::new(),
            contracts: Vec::new(),
            inactive_days: 90,
            renewal_days: 90,
            as_of: None,
        }
    }
}

/// Trimmed, case-folded email.
pub fn normalize_email(email: &str) -> String {
    email.trim().to_lowercase()
}

impl ReportOptions {
    /// The person key of an email: normalized, then mapped through the aliases.
    pub fn person_of(&self, email: &str) -> Option<String> {
        PersonKeys::new(self).key(email)
    }
}

/// The whole report.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The report format's version ([`SCHEMA_VERSION`]); bumped on any incompatible change.
    pub schema_version: u32,
    /// When the report was built (UTC).
    pub generated_at: DateTime<Utc>,
    /// Activity and renewals are measured from this moment (usually `generated_at`).
    pub as_of: DateTime<Utc>,
    /// The thresholds used: `inactive_for_days` candidates and the renewal window.
    pub inactive_days: u32,
    /// Days before `as_of` within which a contract renewal is listed in `renewals`.
    pub renewal_days: u32,
    /// Totals per provider.
    pub providers: Vec<ProviderTotals>,
    /// Providers whose data could not be collected, with the reason.
    pub errors: Vec<ProviderFailure>,
    /// Every product of every provider read, one row each, in provider order.
    pub products: Vec<ProductRow>,
    /// People matched across vendors by email.
    pub people: Vec<Person>,
    /// User holders that could not be matched to a person (no usable email).
    pub unmatched: Vec<UnmatchedHolder>,
    /// Devices and what they hold.
    pub devices: Vec<DeviceHoldings>,
    /// Seats that could be given back, with why (see [`ReclaimReason`]).
    pub reclaim: Vec<ReclaimCandidate>,
    /// Money over every vendor, one entry per currency (never summed across currencies).
    pub costs: Vec<CostTotals>,
    /// Contracts renewing within `renewal_days` of `as_of`, soonest first.
    pub renewals: Vec<Renewal>,
    /// Things the reader should know about the input, e.g. a contract matching no product.
    pub warnings: Vec<String>,
}

/// Annual money of a set of products in one currency. Every figure comes from configured
/// contracts (provenance `configured`) applied to the seat figures of the products.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CostTotals {
    /// ISO 4217 code.
    pub currency: String,
    /// Priced products counted in these sums.
    pub products: usize,
    /// Seats owned × annual seat price, over the products whose seat total is known.
    pub annual_cost: Decimal,
    /// Seats owned but assigned to nobody × annual seat price.
    pub unassigned_cost: Decimal,
    /// Seats held by reclaim candidates (inactive, unknown or idle holders) × annual seat
    /// price.
    pub reclaimable_cost: Decimal,
}

/// Money of one product, from its contract.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProductCost {
    /// ISO 4217 code of the contract's price.
    pub currency: String,
    /// The contract's price of one seat per `period`.
    pub price_per_seat: Decimal,
    /// What `price_per_seat` pays for: a month or a year.
    pub period: Period,
    /// `price_per_seat` for one year (×12 for a monthly price).
    pub annual_price_per_seat: Decimal,
    /// `None` when the seat total is unknown or unlimited (nothing to multiply).
    pub annual_cost: Option<Decimal>,
    /// Seats owned but assigned to nobody; `None` when the total is unknown or unlimited.
    pub unassigned_seats: Option<u64>,
    /// `unassigned_seats` × annual seat price; `None` when that count is.
    pub unassigned_cost: Option<Decimal>,
    /// Seats held by reclaim candidates other than over-allocation (those seats are extra, not
    /// paid-for seats gone idle).
    pub reclaimable_seats: u64,
    /// `reclaimable_seats` × annual seat price.
    pub reclaimable_cost: Decimal,
    /// Always `configured`: prices come from contracts, never from a vendor.
    pub source: Provenance,
}

/// A contract renewing soon.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Renewal {
    /// The vendor of the contract's product.
    pub provider: ProviderKind,
    /// The product id as the vendor names it.
    pub product_id: ProductId,
    /// The vendor's display name of the product.
    pub product_name: String,
    /// The renewal (or end) date in the contract.
    pub date: NaiveDate,
    /// Days from `as_of` to the renewal (0 = today).
    pub days_left: i64,
    /// Seats the contract covers, if it says.
    pub seats: Option<u64>,
    /// The contract's currency, if priced.
    pub currency: Option<String>,
    /// Annual cost of the contract's seats, when price and seats are known.
    pub annual_cost: Option<Decimal>,
    /// The contract's notes.
    pub notes: Option<String>,
}

/// One provider's totals over its products.
#[derive(Debug, Clone, Serialize)]
pub struct ProviderTotals {
    /// The vendor these totals are for.
    pub provider: ProviderKind,
    /// Products listed.
    pub products: usize,
    /// Sum of limited totals; products with unknown or unlimited totals are counted apart.
    pub seats_total: u64,
    /// Products whose vendor grants unlimited seats (left out of `seats_total`).
    pub products_unlimited: usize,
    /// Products whose total nobody knows (left out of `seats_total`).
    pub products_total_unknown: usize,
    /// Seats assigned over all products.
    pub seats_assigned: u64,
    /// Assignments listed (one per product and holder).
    pub assignments: u64,
    /// Users in the vendor's directory; `None` when the vendor has no directory listing.
    pub holders_in_directory: Option<usize>,
    /// Money of this vendor's priced products, one entry per currency.
    pub costs: Vec<CostTotals>,
    /// Products without a price (their cost is unknown and in no sum).
    pub products_unpriced: usize,
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
    /// The version id on the listing's first page.
    pub first_version_id: String,
    /// The version id on its last page.
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
    /// The vendor that could not be read.
    pub provider: ProviderKind,
    /// The error's meaning (a configuration or credential problem is the caller's to fix).
    pub kind: licensekit_core::ErrorKind,
    /// The error's message (never a secret).
    pub error: String,
}

/// Seats of one product, each figure with where it came from.
#[derive(Debug, Clone, Serialize)]
pub struct ProductRow {
    /// The product's vendor.
    pub provider: ProviderKind,
    /// The product id as the vendor names it.
    pub product_id: ProductId,
    /// The vendor's display name of the product.
    pub name: String,
    /// `None` when unlimited or unknown (see `unlimited` and `total_source`).
    pub total: Option<u64>,
    /// Whether the vendor grants unlimited seats (a Salesforce site license).
    pub unlimited: bool,
    /// Where `total` came from: the vendor, a count, a contract, or unknown.
    pub total_source: Provenance,
    /// Seats assigned.
    pub assigned: u64,
    /// Where `assigned` came from.
    pub assigned_source: Provenance,
    /// Free seats (`total - assigned`, 0 when over-allocated); `None` when the total is unlimited or unknown.
    pub available: Option<u64>,
    /// Assigned as a percentage of a limited total (may exceed 100); `None` without one.
    pub utilization_pct: Option<f64>,
    /// Seats assigned beyond the total.
    pub over_allocated_by: Option<u64>,
    /// The vendor's own total when a contract's seats replaced it (`total_source` is then
    /// `configured`); `None` otherwise or when the vendor reports none.
    pub vendor_total: Option<u64>,
    /// Seats held by reclaim candidates (any reason).
    pub reclaimable: u64,
    /// Cost and waste, when a contract prices the product.
    pub cost: Option<ProductCost>,
    /// The contract's renewal date and notes, if any.
    pub renewal: Option<NaiveDate>,
    /// The contract's notes, if any.
    pub notes: Option<String>,
    /// The provider's data changed while it was listed (see [`ProviderTotals::changed_during_listing`]):
    /// these figures mix two states.
    pub changed_during_listing: bool,
}

/// A person matched across vendors by email, with their accounts and what they hold.
#[derive(Debug, Clone, Serialize)]
pub struct Person {
    /// The canonical (normalized, alias-resolved) email.
    pub email: String,
    /// The person's accounts, one per vendor account matched.
    pub accounts: Vec<Account>,
    /// What the person holds over every vendor.
    pub holdings: Vec<Holding>,
}

/// One vendor account of a person.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Account {
    /// The vendor of the account.
    pub provider: ProviderKind,
    /// The vendor's id of the account.
    pub holder_id: String,
    /// The vendor's display name, when it gives one.
    pub display_name: Option<String>,
    /// Whether the vendor marks the account active; `None` when it does not say.
    pub active: Option<bool>,
    /// Last sign-in as the vendor reports it (Salesforce, Genesys), never estimated.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_login: Option<DateTime<Utc>>,
}

/// One product a person holds.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Holding {
    /// The product's vendor.
    pub provider: ProviderKind,
    /// The product id as the vendor names it.
    pub product_id: ProductId,
    /// The vendor's display name of the product (shared by every holding of the product).
    pub product_name: Arc<str>,
}

/// A user holder matched to no person (no usable email), with what it holds.
#[derive(Debug, Clone, Serialize)]
pub struct UnmatchedHolder {
    /// The vendor of the holder.
    pub provider: ProviderKind,
    /// The vendor's user id.
    pub holder_id: String,
    /// The vendor's display name, when it gives one.
    pub display_name: Option<String>,
    /// The products it holds.
    pub products: Vec<ProductId>,
    /// Last sign-in as the vendor reports it, never estimated.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_login: Option<DateTime<Utc>>,
}

/// A device (Apple VPP, by serial) and what it holds.
#[derive(Debug, Clone, Serialize)]
pub struct DeviceHoldings {
    /// The vendor the device holds seats at.
    pub provider: ProviderKind,
    /// The device's serial number.
    pub serial: String,
    /// The products it holds.
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
    /// The holder last signed in `inactive_days` or more days ago (the vendor's last-login
    /// figure: Salesforce `LastLoginDate`, Genesys `dateLastLogin`; never estimated).
    InactiveForDays,
    /// The product has more seats assigned than owned; this holder is among the most recent.
    ProductOverAllocated,
}

/// A seat that could be revoked, naming everything a revoke needs.
#[derive(Debug, Clone, Serialize)]
pub struct ReclaimCandidate {
    /// The vendor to revoke at.
    pub provider: ProviderKind,
    /// The product whose seat could be given back.
    pub product_id: ProductId,
    /// The vendor's display name of the product (shared by every candidate of the product).
    pub product_name: Arc<str>,
    /// The holder to revoke from.
    pub holder: HolderId,
    /// The holder's display name, when the vendor gives one.
    pub holder_name: Option<String>,
    /// The holder's email, when the vendor gives one.
    pub email: Option<String>,
    /// Why the seat could be given back.
    pub reason: ReclaimReason,
    /// The holder's last sign-in as the vendor reports it (provenance `vendor`), if it does.
    pub last_login: Option<DateTime<Utc>>,
    /// Whole days from `last_login` to the report's `as_of`.
    pub idle_days: Option<i64>,
}

/// Where a holder's seats go in the report (an index into people, unmatched or devices),
/// decided at its first seat.
#[derive(Clone, Copy)]
enum Slot {
    Unseen,
    Person(usize),
    Unmatched(usize),
    Device(usize),
}

/// People by person key, in first-seen order, each key stored once (in [`Person::email`]).
#[derive(Default)]
struct People {
    people: Vec<Person>,
    index: HashTable<usize>,
    hasher: hashbrown::DefaultHashBuilder,
}

impl People {
    fn entry(&mut self, key: String) -> usize {
        let People {
            people,
            index,
            hasher,
        } = self;
        let hash = hasher.hash_one(key.as_str());
        match index.entry(
            hash,
            |&i| people[i].email == key,
            |&i| hasher.hash_one(people[i].email.as_str()),
        ) {
            hashbrown::hash_table::Entry::Occupied(e) => *e.get(),
            hashbrown::hash_table::Entry::Vacant(e) => {
                e.insert(people.len());
                people.push(Person {
                    email: key,
                    accounts: Vec::new(),
                    holdings: Vec::new(),
                });
                people.len() - 1
            }
        }
    }
}

/// Email to person key, with the aliases normalized once (the report and the plan look up a key
/// per holder).
pub(crate) struct PersonKeys {
    aliases: HashMap<String, String>,
}

impl PersonKeys {
    pub(crate) fn new(options: &ReportOptions) -> Self {
        PersonKeys {
            aliases: options
                .aliases
                .iter()
                .map(|(alias, canonical)| (normalize_email(alias), normalize_email(canonical)))
                .collect(),
        }
    }

    /// The person key of an email (see [`ReportOptions::person_of`]).
    pub(crate) fn key(&self, email: &str) -> Option<String> {
        let normalized = normalize_email(email);
        if normalized.is_empty() || !normalized.contains('@') {
            return None;
        }
        Some(match self.aliases.get(&normalized) {
            Some(canonical) => canonical.clone(),
            None => normalized,
        })
    }
}

impl Report {
    /// Collects from every provider concurrently and builds the report. A provider that fails
    /// is listed in `errors`; the others are still reported. `progress` gets (provider,
    /// assignments read so far).
    ///
    /// ```
    /// use licensekit::report::{Report, ReportOptions};
    /// use licensekit::{AnyProvider, LicenseProvider};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> licensekit::Result<()> {
    /// # let config: licensekit::ProviderConfig = serde_json::from_value(serde_json::json!({
    /// #     "provider": "memory",
    /// #     "products": [{"id": "design-suite", "name": "Design Suite", "seats": 2}],
    /// #     "users": [{"id": "ada", "email": "ada@example.com"}],
    /// #     "assignments": [{"product": "design-suite", "holder": {"kind": "user", "id": "ada"}}]
    /// # })).unwrap();
    /// let provider = AnyProvider::from_config(config)?;
    /// let providers: [&dyn LicenseProvider; 1] = [&provider];
    /// let report = Report::collect(&providers, &ReportOptions::default(), &|_, _| {}).await;
    /// assert!(report.errors.is_empty());
    /// assert!(report.to_json().contains("design-suite"));
    /// # Ok(())
    /// # }
    /// ```
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
        // Each provider's data is dropped as soon as it is folded into the report.
        Report::build(collected, errors, options)
    }

    /// Builds the report one provider at a time. Given the collected data by value, each
    /// provider's is freed once folded in: the report grows as the collected data shrinks.
    pub(crate) fn build<C: Borrow<Collected>>(
        collected: impl IntoIterator<Item = C>,
        errors: Vec<ProviderFailure>,
        options: &ReportOptions,
    ) -> Report {
        let generated_at = Utc::now();
        let as_of = options.as_of.unwrap_or(generated_at);
        let keys = PersonKeys::new(options);
        let inactive_after = (options.inactive_days > 0)
            .then(|| chrono::Duration::days(i64::from(options.inactive_days)));
        let mut providers = Vec::new();
        let mut products = Vec::new();
        let mut people = People::default();
        let mut unmatched: Vec<UnmatchedHolder> = Vec::new();
        let mut devices: Vec<DeviceHoldings> = Vec::new();
        // By (vendor, id), across providers: two tenants of one vendor may list the same one.
        let mut unmatched_index: HashMap<(ProviderKind, String), usize> = HashMap::new();
        let mut device_index: HashMap<(ProviderKind, String), usize> = HashMap::new();
        let mut reclaim = Vec::new();
        let mut warnings = Vec::new();
        let mut contract_used = vec![false; options.contracts.len()];
        let mut listed = Vec::new();

        for c in collected {
            let c: &Collected = c.borrow();
            listed.push(c.provider);
            // Seats point at the first product row of an id (a listing may repeat one).
            let mut first_row: HashMap<&ProductId, usize> = HashMap::new();
            let product_of_row: Vec<usize> = (c.products.iter().enumerate())
                .map(|(i, p)| *first_row.entry(&p.id).or_insert(i))
                .collect();
            // Product display names, shared by every holding and candidate that names them.
            let names: Vec<Arc<str>> = (0..c.product_count())
                .map(|i| match c.products.get(i) {
                    Some(p) => Arc::from(p.name.as_str()),
                    None => Arc::from(c.product_id(i as u32).as_str()),
                })
                .collect();
            // The vendor gives these to every user and refuses revokes (a Salesforce site
            // license): no seat of them is a reclaim candidate.
            let revocable: Vec<bool> = (0..c.product_count())
                .map(|i| {
                    c.products
                        .get(i)
                        .is_none_or(|p| !p.is_assigned_to_all_users())
                })
                .collect();
            let mut counted = vec![0u64; c.product_count()];
            for seat in &c.seats {
                counted[seat.product as usize] += 1;
            }
            let mut totals = ProviderTotals {
                provider: c.provider,
                products: c.products.len(),
                seats_total: 0,
                products_unlimited: 0,
                products_total_unknown: 0,
                seats_assigned: 0,
                assignments: c.seats.len() as u64,
                holders_in_directory: c.directory_len(),
                costs: Vec::new(),
                products_unpriced: 0,
                changed_during_listing: c.changed_during_listing.clone(),
            };
            let mut over_allocated: Vec<(u32, u64)> = Vec::new();
            let mut rows = Vec::new();
            let mut contracts: Vec<(usize, Option<&Contract>)> = Vec::new();
            for (i, p) in c.products.iter().enumerate() {
                let product = product_of_row[i];
                let contract = contract_for(options, &mut contract_used, c.provider, p);
                let mut row = product_row(p, counted[product], contract);
                row.changed_during_listing = !c.changed_during_listing.is_empty();
                match (row.total, row.unlimited) {
                    (Some(n), _) => totals.seats_total += n,
                    (None, true) => totals.products_unlimited += 1,
                    (None, false) => totals.products_total_unknown += 1,
                }
                totals.seats_assigned += row.assigned;
                if let Some(over) = row.over_allocated_by
                    && product == i
                    && revocable[product]
                {
                    over_allocated.push((product as u32, over));
                }
                rows.push(row);
                contracts.push((product, contract));
            }

            // (all candidates, candidates whose seat is paid for) per product.
            let mut reclaimable = vec![(0u64, 0u64); c.product_count()];
            let mut flagged: HashSet<(u32, u32)> = HashSet::new();
            let mut slots = vec![Slot::Unseen; c.holders.len()];
            for seat in &c.seats {
                let holder = c.holders.at(seat.holder);
                let product_id = c.product_id(seat.product);
                let slot = &mut slots[seat.holder as usize];
                if let Slot::Unseen = slot {
                    *slot = if holder.is_device() {
                        let key = (c.provider, holder.id_str().to_owned());
                        Slot::Device(*device_index.entry(key).or_insert_with(|| {
                            devices.push(DeviceHoldings {
                                provider: c.provider,
                                serial: holder.id_str().to_owned(),
                                products: Vec::new(),
                            });
                            devices.len() - 1
                        }))
                    } else if let Some(key) = holder.email().and_then(|e| keys.key(e)) {
                        let person = people.entry(key);
                        let account = Account {
                            provider: c.provider,
                            holder_id: holder.id_str().to_owned(),
                            display_name: holder.display_name().map(str::to_owned),
                            active: holder.active(),
                            last_login: holder.last_login(),
                        };
                        // Two tenants of one vendor may name the same account.
                        let accounts = &mut people.people[person].accounts;
                        if !accounts.contains(&account) {
                            push_snug(accounts, account);
                        }
                        Slot::Person(person)
                    } else {
                        let key = (c.provider, holder.id_str().to_owned());
                        Slot::Unmatched(*unmatched_index.entry(key).or_insert_with(|| {
                            unmatched.push(UnmatchedHolder {
                                provider: c.provider,
                                holder_id: holder.id_str().to_owned(),
                                display_name: holder.display_name().map(str::to_owned),
                                products: Vec::new(),
                                last_login: holder.last_login(),
                            });
                            unmatched.len() - 1
                        }))
                    };
                }
                match *slot {
                    Slot::Person(i) => push_snug(
                        &mut people.people[i].holdings,
                        Holding {
                            provider: c.provider,
                            product_id: product_id.clone(),
                            product_name: names[seat.product as usize].clone(),
                        },
                    ),
                    Slot::Unmatched(i) => unmatched[i].products.push(product_id.clone()),
                    Slot::Device(i) => devices[i].products.push(product_id.clone()),
                    Slot::Unseen => {}
                }
                if !revocable[seat.product as usize] {
                    continue;
                }
                let last_login = holder.last_login();
                let idle = last_login.map(|at| as_of.signed_duration_since(at));
                // One reason per seat, the strongest first.
                let reason = if holder.active() == Some(false) {
                    Some(ReclaimReason::HolderInactive)
                } else if c.unknown_to_directory(&holder) {
                    Some(ReclaimReason::HolderUnknownToDirectory)
                } else if matches!((idle, inactive_after), (Some(idle), Some(limit)) if idle >= limit)
                {
                    Some(ReclaimReason::InactiveForDays)
                } else {
                    None
                };
                if let Some(reason) = reason {
                    flagged.insert((seat.product, seat.holder));
                    let count = &mut reclaimable[seat.product as usize];
                    count.0 += 1;
                    count.1 += 1;
                    reclaim.push(candidate(c, seat, &names, reason, as_of));
                }
            }
            // Over-allocation: the most recently assigned holders not already flagged. The
            // seats of every over-allocated product are gathered in one pass over the listing.
            let mut unflagged: HashMap<u32, (u64, Vec<&Seat>)> = (over_allocated.iter())
                .map(|(product, _)| (*product, (0, Vec::new())))
                .collect();
            for (product, _) in &flagged {
                if let Some((already, _)) = unflagged.get_mut(product) {
                    *already += 1;
                }
            }
            for seat in &c.seats {
                if let Some((_, seats)) = unflagged.get_mut(&seat.product)
                    && !flagged.contains(&(seat.product, seat.holder))
                {
                    seats.push(seat);
                }
            }
            for (product, over) in over_allocated {
                let (already, mut seats) = unflagged.remove(&product).unwrap_or_default();
                seats.sort_by_key(|s| std::cmp::Reverse(s.assigned_at));
                for seat in seats
                    .into_iter()
                    .take(over.saturating_sub(already) as usize)
                {
                    flagged.insert((seat.product, seat.holder));
                    // The seat is beyond what was bought: reclaiming it saves nothing paid.
                    reclaimable[seat.product as usize].0 += 1;
                    let reason = ReclaimReason::ProductOverAllocated;
                    reclaim.push(candidate(c, seat, &names, reason, as_of));
                }
            }

            // Money: per product from its contract, then per currency for the vendor.
            let mut costs: BTreeMap<String, CostTotals> = BTreeMap::new();
            for (row, (product, contract)) in rows.iter_mut().zip(contracts) {
                let (all, paid) = reclaimable[product];
                row.reclaimable = all;
                row.cost = contract.and_then(|k| product_cost(row, k, paid));
                match &row.cost {
                    Some(cost) => add_cost(&mut costs, cost),
                    None => totals.products_unpriced += 1,
                }
            }
            totals.costs = costs.into_values().collect();
            providers.push(totals);
            products.extend(rows);
        }
        for (contract, used) in options.contracts.iter().zip(&contract_used) {
            if !used && listed.contains(&contract.provider) {
                warnings.push(format!(
                    "contract for {} product `{}` matches no product the vendor lists",
                    contract.provider, contract.product
                ));
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
        let mut people = people.people;
        people.sort_unstable_by(|a, b| a.email.cmp(&b.email));
        unmatched
            .sort_unstable_by(|a, b| (a.provider, &a.holder_id).cmp(&(b.provider, &b.holder_id)));
        devices.sort_unstable_by(|a, b| (a.provider, &a.serial).cmp(&(b.provider, &b.serial)));
        let mut costs: BTreeMap<String, CostTotals> = BTreeMap::new();
        for p in &products {
            if let Some(cost) = &p.cost {
                add_cost(&mut costs, cost);
            }
        }
        let today = as_of.date_naive();
        let mut renewals: Vec<Renewal> = products
            .iter()
            .filter_map(|p| {
                let date = p.renewal?;
                let days_left = (date - today).num_days();
                (0..=i64::from(options.renewal_days))
                    .contains(&days_left)
                    .then(|| Renewal {
                        provider: p.provider,
                        product_id: p.product_id.clone(),
                        product_name: p.name.clone(),
                        date,
                        days_left,
                        seats: p.total,
                        currency: p.cost.as_ref().map(|c| c.currency.clone()),
                        annual_cost: p.cost.as_ref().and_then(|c| c.annual_cost),
                        notes: p.notes.clone(),
                    })
            })
            .collect();
        renewals.sort_by(|a, b| {
            (a.date, a.provider, &a.product_id).cmp(&(b.date, b.provider, &b.product_id))
        });
        Report {
            schema_version: SCHEMA_VERSION,
            generated_at,
            as_of,
            inactive_days: options.inactive_days,
            renewal_days: options.renewal_days,
            providers,
            errors,
            products,
            people,
            unmatched,
            devices,
            reclaim,
            costs: costs.into_values().collect(),
            renewals,
            warnings,
        }
    }

    /// Writes the pretty JSON of [`Report::to_json`] to `writer` as it is produced, so a
    /// report of 100,000s of people is never one string in memory.
    pub fn write_json<W: std::io::Write>(&self, writer: W) -> std::io::Result<()> {
        serde_json::to_writer_pretty(writer, self).map_err(std::io::Error::from)
    }

    /// Pretty JSON of the whole report.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("the report serializes")
    }

    /// CSV of one section (one row per product, holding, reclaim candidate or unmatched holder).
    ///
    /// ```
    /// use licensekit::report::{CsvSection, Report, ReportOptions};
    /// use licensekit::{AnyProvider, LicenseProvider};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let config: licensekit::ProviderConfig = serde_json::from_value(serde_json::json!({
    /// #     "provider": "memory",
    /// #     "products": [{"id": "design-suite", "name": "Design Suite", "seats": 2}],
    /// #     "users": [{"id": "ada", "email": "ada@example.com"}],
    /// #     "assignments": [{"product": "design-suite", "holder": {"kind": "user", "id": "ada"}}]
    /// # })).unwrap();
    /// let provider = AnyProvider::from_config(config)?;
    /// let providers: [&dyn LicenseProvider; 1] = [&provider];
    /// let report = Report::collect(&providers, &ReportOptions::default(), &|_, _| {}).await;
    ///
    /// let products = report.to_csv(CsvSection::Products)?;
    /// let mut lines = products.lines();
    /// assert!(lines.next().unwrap().starts_with("provider,"));
    /// assert!(lines.next().unwrap().starts_with("memory,design-suite,"));
    ///
    /// let json: serde_json::Value = serde_json::from_str(&report.to_json())?;
    /// assert_eq!(json["products"][0]["assigned"], 1);
    /// # Ok(())
    /// # }
    /// ```
    pub fn to_csv(&self, section: CsvSection) -> std::result::Result<String, csv::Error> {
        let mut bytes = Vec::new();
        self.write_csv(section, &mut bytes)?;
        Ok(String::from_utf8(bytes).expect("csv writes UTF-8"))
    }

    /// Writes the CSV of [`Report::to_csv`] to `writer` as it is produced (a holdings section
    /// has a row per seat: 100,000s of rows are never one string in memory).
    pub fn write_csv<W: std::io::Write>(
        &self,
        section: CsvSection,
        writer: W,
    ) -> std::result::Result<(), csv::Error> {
        let mut w = csv::Writer::from_writer(writer);
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
                        last_login: r.last_login.map(|d| d.to_rfc3339()),
                        idle_days: r.idle_days,
                    })?;
                }
            }
            CsvSection::Renewals => {
                for r in &self.renewals {
                    w.serialize(RenewalCsv {
                        provider: r.provider,
                        product_id: r.product_id.as_str(),
                        product_name: &r.product_name,
                        date: r.date,
                        days_left: r.days_left,
                        seats: r.seats,
                        currency: r.currency.as_deref(),
                        annual_cost: r.annual_cost,
                        notes: r.notes.as_deref(),
                    })?;
                }
            }
            CsvSection::Costs => {
                let per_vendor = self
                    .providers
                    .iter()
                    .flat_map(|p| p.costs.iter().map(move |c| (p.provider.to_string(), c)));
                let overall = self.costs.iter().map(|c| ("all".to_string(), c));
                for (scope, c) in per_vendor.chain(overall) {
                    w.serialize(CostCsv {
                        scope: &scope,
                        currency: &c.currency,
                        products: c.products,
                        annual_cost: c.annual_cost,
                        unassigned_cost: c.unassigned_cost,
                        reclaimable_cost: c.reclaimable_cost,
                        source: Provenance::Configured,
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
        w.flush()?;
        Ok(())
    }
}

/// Which part of the report a CSV holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CsvSection {
    /// One row per product (the `products` section).
    Products,
    /// One row per product a matched person holds (their email, the provider, the product).
    Holdings,
    /// One row per reclaim candidate.
    Reclaim,
    /// One row per user holder matched to no person.
    Unmatched,
    /// Contracts renewing within the window.
    Renewals,
    /// Money per vendor and currency, then over all vendors (`scope` = `all`).
    Costs,
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
    vendor_total: Option<u64>,
    reclaimable: u64,
    currency: Option<&'a str>,
    price_per_seat: Option<Decimal>,
    period: Option<Period>,
    annual_cost: Option<Decimal>,
    unassigned_cost: Option<Decimal>,
    reclaimable_cost: Option<Decimal>,
    renewal: Option<NaiveDate>,
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
            vendor_total: p.vendor_total,
            reclaimable: p.reclaimable,
            currency: p.cost.as_ref().map(|c| c.currency.as_str()),
            price_per_seat: p.cost.as_ref().map(|c| c.price_per_seat),
            period: p.cost.as_ref().map(|c| c.period),
            annual_cost: p.cost.as_ref().and_then(|c| c.annual_cost),
            unassigned_cost: p.cost.as_ref().and_then(|c| c.unassigned_cost),
            reclaimable_cost: p.cost.as_ref().map(|c| c.reclaimable_cost),
            renewal: p.renewal,
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
    last_login: Option<String>,
    idle_days: Option<i64>,
}

#[derive(Serialize)]
struct RenewalCsv<'a> {
    provider: ProviderKind,
    product_id: &'a str,
    product_name: &'a str,
    date: NaiveDate,
    days_left: i64,
    seats: Option<u64>,
    currency: Option<&'a str>,
    annual_cost: Option<Decimal>,
    notes: Option<&'a str>,
}

#[derive(Serialize)]
struct CostCsv<'a> {
    scope: &'a str,
    currency: &'a str,
    products: usize,
    annual_cost: Decimal,
    unassigned_cost: Decimal,
    reclaimable_cost: Decimal,
    source: Provenance,
}

#[derive(Serialize)]
struct UnmatchedCsv<'a> {
    provider: ProviderKind,
    holder_id: &'a str,
    display_name: Option<&'a str>,
    products: String,
}

/// The contract of a product: matched by provider and product id, else by product name (a
/// Salesforce namespace). A contract applies to one product only.
/// Pushes growing the capacity by one while the vector is short: a person has a few accounts
/// and holdings, and doubling would leave 100,000s of people each holding unused capacity.
fn push_snug<T>(items: &mut Vec<T>, item: T) {
    if items.len() < 8 {
        items.reserve_exact(1);
    }
    items.push(item);
}

/// A reclaim candidate for one seat.
fn candidate(
    c: &Collected,
    seat: &Seat,
    names: &[Arc<str>],
    reason: ReclaimReason,
    as_of: DateTime<Utc>,
) -> ReclaimCandidate {
    let holder = c.holders.at(seat.holder);
    let last_login = holder.last_login();
    ReclaimCandidate {
        provider: c.provider,
        product_id: c.product_id(seat.product).clone(),
        product_name: names[seat.product as usize].clone(),
        holder: holder.id(),
        holder_name: holder.display_name().map(str::to_owned),
        email: holder.email().map(str::to_owned),
        reason,
        last_login,
        idle_days: last_login.map(|at| as_of.signed_duration_since(at).num_days()),
    }
}

fn contract_for<'a>(
    options: &'a ReportOptions,
    used: &mut [bool],
    provider: ProviderKind,
    product: &Product,
) -> Option<&'a Contract> {
    let candidates = || {
        options
            .contracts
            .iter()
            .enumerate()
            .filter(|(i, c)| c.provider == provider && !used[*i])
    };
    let found = candidates()
        .find(|(_, c)| c.product == product.id.as_str())
        .or_else(|| candidates().find(|(_, c)| c.product == product.name));
    let (i, contract) = found?;
    used[i] = true;
    Some(contract)
}

/// The money of one product row. `paid_reclaimable` = seats held by candidates other than
/// over-allocation.
fn product_cost(
    row: &ProductRow,
    contract: &Contract,
    paid_reclaimable: u64,
) -> Option<ProductCost> {
    let annual = contract.annual_price_per_seat()?;
    let times = |n: u64| annual.checked_mul(Decimal::from(n));
    Some(ProductCost {
        currency: contract.currency.clone()?,
        price_per_seat: contract.price_per_seat?,
        period: contract.period?,
        annual_price_per_seat: annual,
        annual_cost: row.total.and_then(times),
        unassigned_seats: row.available,
        unassigned_cost: row.available.and_then(times),
        reclaimable_seats: paid_reclaimable,
        reclaimable_cost: times(paid_reclaimable).unwrap_or(Decimal::MAX),
        source: Provenance::Configured,
    })
}

/// Adds a product's money to the totals of its currency.
fn add_cost(totals: &mut BTreeMap<String, CostTotals>, cost: &ProductCost) {
    let t = totals
        .entry(cost.currency.clone())
        .or_insert_with(|| CostTotals {
            currency: cost.currency.clone(),
            products: 0,
            annual_cost: Decimal::ZERO,
            unassigned_cost: Decimal::ZERO,
            reclaimable_cost: Decimal::ZERO,
        });
    t.products += 1;
    let add = |a: Decimal, b: Option<Decimal>| a.saturating_add(b.unwrap_or(Decimal::ZERO));
    t.annual_cost = add(t.annual_cost, cost.annual_cost);
    t.unassigned_cost = add(t.unassigned_cost, cost.unassigned_cost);
    t.reclaimable_cost = add(t.reclaimable_cost, Some(cost.reclaimable_cost));
}

fn product_row(p: &Product, counted: u64, contract: Option<&Contract>) -> ProductRow {
    // The vendor's own assigned figure wins; otherwise count from the listing.
    let (assigned, assigned_source) = match (p.seats.assigned, p.seats.assigned_source) {
        (Some(n), Provenance::Vendor) => (n, Provenance::Vendor),
        _ => (counted, Provenance::Counted),
    };
    let (vendor_total, unlimited) = match p.seats.total {
        SeatTotal::Limited(n) => (Some(n), false),
        SeatTotal::Unlimited => (None, true),
        SeatTotal::Unknown => (None, false),
    };
    // Contract seats override or fill the vendor's figure.
    let (total, unlimited, total_source, vendor_total) = match contract.and_then(|c| c.seats) {
        Some(seats) => (
            Some(seats),
            false,
            Provenance::Configured,
            vendor_total.filter(|_| p.seats.total_source == Provenance::Vendor),
        ),
        None => (vendor_total, unlimited, p.seats.total_source, None),
    };
    ProductRow {
        provider: p.provider,
        product_id: p.id.clone(),
        name: p.name.clone(),
        total,
        unlimited,
        total_source,
        assigned,
        assigned_source,
        available: total.map(|t| t.saturating_sub(assigned)),
        utilization_pct: total
            .filter(|t| *t > 0)
            .map(|t| assigned as f64 * 100.0 / t as f64),
        over_allocated_by: total.filter(|t| assigned > *t).map(|t| assigned - t),
        changed_during_listing: false,
        vendor_total,
        reclaimable: 0,
        cost: None,
        renewal: contract.and_then(|c| c.renewal),
        notes: contract.and_then(|c| c.notes.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use licensekit_core::{
        InMemoryProvider, LicenseProviderExt, MemoryConfig, MemoryProduct, MemoryUser,
    };
    use std::collections::BTreeSet;

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
                    last_login: None,
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
            ..ReportOptions::default()
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
            "provider,product_id,name,total,total_source,assigned,assigned_source,available,utilization_pct,over_allocated_by,vendor_total,reclaimable,currency,price_per_seat,period,annual_cost,unassigned_cost,reclaimable_cost,renewal"
        );
        assert!(
            csv.contains("memory,app,App,3,vendor,3,vendor,0,100.0,,,1,,,,,,,"),
            "{csv}"
        );
    }

    /// A provider whose product listing is rewritten (a repeated page, a vendor's marker).
    #[derive(Debug)]
    struct Relisted {
        inner: InMemoryProvider,
        relist: fn(Vec<Product>) -> Vec<Product>,
    }

    #[async_trait::async_trait]
    impl LicenseProvider for Relisted {
        fn kind(&self) -> ProviderKind {
            self.inner.kind()
        }
        fn capabilities(&self) -> licensekit_core::Capabilities {
            self.inner.capabilities()
        }
        async fn products(&self) -> licensekit_core::Result<Vec<Product>> {
            Ok((self.relist)(self.inner.products().await?))
        }
        fn assignments(
            &self,
            filter: licensekit_core::AssignmentFilter,
        ) -> futures::stream::BoxStream<'static, licensekit_core::Result<licensekit_core::Assignment>>
        {
            self.inner.assignments(filter)
        }
        fn holders(
            &self,
        ) -> futures::stream::BoxStream<'static, licensekit_core::Result<licensekit_core::Holder>>
        {
            self.inner.holders()
        }
        async fn change(
            &self,
            request: licensekit_core::ChangeRequest,
        ) -> licensekit_core::Result<licensekit_core::ChangeReport> {
            self.inner.change(request).await
        }
    }

    /// u1..u3 hold `app` (10 seats at the vendor).
    async fn three_holders() -> InMemoryProvider {
        let p = provider(
            &[
                ("u1", "u1@x.io", true),
                ("u2", "u2@x.io", true),
                ("u3", "u3@x.io", true),
            ],
            10,
        );
        let holders = ["u1", "u2", "u3"].map(HolderId::user);
        p.assign(&ProductId::new("app"), &holders).await.unwrap();
        p
    }

    #[tokio::test]
    async fn a_product_listed_twice_is_over_allocated_once() {
        // The vendor now owns 1 seat of `app`, 3 assigned, and lists it twice (a repeated
        // page): the 2 most recent holders are candidates, once each.
        let p = Relisted {
            inner: three_holders().await,
            relist: |products| {
                let one_seat = products.into_iter().map(|mut p| {
                    p.seats.total = SeatTotal::Limited(1);
                    p
                });
                one_seat.flat_map(|p| [p.clone(), p]).collect()
            },
        };
        let report = Report::collect(&[&p], &ReportOptions::default(), &|_, _| {}).await;
        assert_eq!(report.products.len(), 2, "both rows are shown");
        let mut holders: Vec<&str> = report.reclaim.iter().map(|r| r.holder.as_str()).collect();
        holders.sort();
        assert_eq!(holders.len(), 2, "{holders:?}");
        assert_ne!(holders[0], holders[1]);
        assert!(report.products.iter().all(|row| row.reclaimable == 2));
    }

    #[tokio::test]
    async fn a_product_the_vendor_gives_everyone_has_no_reclaim_candidates() {
        let p = Relisted {
            inner: three_holders().await,
            relist: |products| {
                products
                    .into_iter()
                    .map(Product::assigned_to_all_users)
                    .collect()
            },
        };
        p.inner.set_user_active("u2", false).unwrap();
        let options = ReportOptions {
            contracts: vec![Contract {
                seats: Some(1),
                ..Contract::new(p.kind(), "app")
            }],
            ..ReportOptions::default()
        };
        let report = Report::collect(&[&p], &options, &|_, _| {}).await;
        assert!(report.reclaim.is_empty(), "{:?}", report.reclaim);
        assert_eq!(report.products[0].reclaimable, 0);
    }

    #[tokio::test]
    async fn two_tenants_of_one_vendor_share_unmatched_and_device_rows() {
        let tenant = |product: &'static str| async move {
            let p = InMemoryProvider::new(MemoryConfig {
                products: vec![MemoryProduct {
                    id: product.into(),
                    name: product.into(),
                    seats: Some(5),
                    device_assignable: true,
                }],
                users: vec![MemoryUser {
                    id: "u0".into(),
                    email: None,
                    name: Some("U0".into()),
                    active: true,
                    last_login: None,
                }],
                ..MemoryConfig::default()
            })
            .unwrap();
            let holders = [HolderId::user("u0"), HolderId::device("SER1")];
            p.assign(&ProductId::new(product), &holders).await.unwrap();
            p
        };
        let (a, b) = (tenant("one").await, tenant("two").await);
        let report = Report::collect(&[&a, &b], &ReportOptions::default(), &|_, _| {}).await;
        let unmatched: Vec<(&str, Vec<&str>)> = (report.unmatched.iter())
            .map(|u| {
                (
                    u.holder_id.as_str(),
                    u.products.iter().map(ProductId::as_str).collect(),
                )
            })
            .collect();
        assert_eq!(unmatched, vec![("u0", vec!["one", "two"])]);
        let devices: Vec<(&str, Vec<&str>)> = (report.devices.iter())
            .map(|d| {
                (
                    d.serial.as_str(),
                    d.products.iter().map(ProductId::as_str).collect(),
                )
            })
            .collect();
        assert_eq!(devices, vec![("SER1", vec!["one", "two"])]);
    }

    fn dec(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    /// Products `app` (10 seats), `suite` (5), `free` (4), `site` (unlimited); users u0..u5,
    /// u5 inactive; u0..u3 hold `app`, u4 and u5 hold `suite`.
    async fn priced_org() -> InMemoryProvider {
        let product = |id: &str, seats: Option<u64>| MemoryProduct {
            id: id.into(),
            name: id.to_uppercase(),
            seats,
            device_assignable: true,
        };
        let p = InMemoryProvider::new(MemoryConfig {
            products: vec![
                product("app", Some(10)),
                product("suite", Some(5)),
                product("free", Some(4)),
                product("site", None),
            ],
            users: (0..6)
                .map(|i| MemoryUser {
                    id: format!("u{i}"),
                    email: Some(format!("u{i}@x.io")),
                    name: None,
                    active: true,
                    last_login: None,
                })
                .collect(),
            ..MemoryConfig::default()
        })
        .unwrap();
        let users = |ids: &[&str]| ids.iter().map(|i| HolderId::user(*i)).collect::<Vec<_>>();
        p.assign(&ProductId::new("app"), &users(&["u0", "u1", "u2", "u3"]))
            .await
            .unwrap();
        p.assign(&ProductId::new("suite"), &users(&["u4", "u5"]))
            .await
            .unwrap();
        p.set_user_active("u5", false).unwrap();
        p
    }

    #[tokio::test]
    async fn contracts_price_products_per_currency_and_override_or_fill_seats() {
        let p = priced_org().await;
        let options = ReportOptions {
            contracts: vec![
                // Overrides the vendor's 10 seats; 0.10 a month is exact in decimal (3 × 12 ×
                // 0.10 would not be in f64).
                Contract::new(crate::InMemoryProvider::KIND, "app")
                    .with_seats(20)
                    .with_price(dec("0.10"), "eur", Period::Month),
                Contract::new(crate::InMemoryProvider::KIND, "SUITE") // matched by name
                    .with_price(dec("120"), "USD", Period::Year),
                // Fills an unlimited (site) figure with purchased seats; price in EUR.
                Contract::new(crate::InMemoryProvider::KIND, "site")
                    .with_seats(3)
                    .with_price(dec("1.05"), "EUR", Period::Year),
                // Seats but no price: `free` stays out of every sum.
                Contract::new(crate::InMemoryProvider::KIND, "free").with_notes("bundled"),
                Contract::new(crate::InMemoryProvider::KIND, "gone").with_seats(1),
            ],
            ..ReportOptions::default()
        };
        let report = Report::collect(&[&p], &options, &|_, _| {}).await;
        let row = |id: &str| {
            report
                .products
                .iter()
                .find(|r| r.product_id.as_str() == id)
                .unwrap()
        };

        let app = row("app");
        assert_eq!(
            (app.total, app.total_source, app.vendor_total),
            (Some(20), Provenance::Configured, Some(10))
        );
        assert_eq!(app.available, Some(16));
        let cost = app.cost.as_ref().unwrap();
        assert_eq!(cost.currency, "EUR");
        assert_eq!(cost.annual_price_per_seat, dec("1.20"));
        assert_eq!(cost.annual_cost, Some(dec("24.00")));
        assert_eq!(cost.unassigned_cost, Some(dec("19.20")));
        assert_eq!(
            (cost.reclaimable_seats, cost.reclaimable_cost),
            (0, dec("0"))
        );
        assert_eq!(cost.source, Provenance::Configured);

        let suite = row("suite");
        assert_eq!(
            (suite.total, suite.total_source, suite.vendor_total),
            (Some(5), Provenance::Vendor, None)
        );
        let cost = suite.cost.as_ref().unwrap();
        assert_eq!(cost.annual_cost, Some(dec("600")));
        assert_eq!(
            (cost.reclaimable_seats, cost.reclaimable_cost),
            (1, dec("120")),
            "u5 is inactive"
        );

        let site = row("site");
        assert_eq!(
            (site.total, site.unlimited, site.total_source),
            (Some(3), false, Provenance::Configured)
        );
        assert_eq!(row("free").cost, None, "no price, no cost");
        assert_eq!(row("free").notes.as_deref(), Some("bundled"));

        // Never a sum across currencies.
        let totals: Vec<(&str, usize, Decimal, Decimal, Decimal)> = report
            .costs
            .iter()
            .map(|c| {
                (
                    c.currency.as_str(),
                    c.products,
                    c.annual_cost,
                    c.unassigned_cost,
                    c.reclaimable_cost,
                )
            })
            .collect();
        assert_eq!(
            totals,
            vec![
                ("EUR", 2, dec("27.15"), dec("22.35"), dec("0")),
                ("USD", 1, dec("600"), dec("360"), dec("120")),
            ]
        );
        assert_eq!(report.providers[0].costs, report.costs);
        assert_eq!(report.providers[0].products_unpriced, 1);
        assert_eq!(
            report.warnings,
            vec![
                "contract for memory product `gone` matches no product the vendor lists"
                    .to_string()
            ]
        );

        let json: serde_json::Value = serde_json::from_str(&report.to_json()).unwrap();
        assert_eq!(
            json["costs"][0]["annual_cost"], "27.15",
            "money is exact text in JSON"
        );
        let csv = report.to_csv(CsvSection::Costs).unwrap();
        assert!(
            csv.starts_with(
                "scope,currency,products,annual_cost,unassigned_cost,reclaimable_cost,source\n"
            ),
            "{csv}"
        );
        assert!(
            csv.contains("memory,USD,1,600,360,120,configured\n"),
            "{csv}"
        );
        assert!(
            csv.contains("all,EUR,2,27.15,22.35,0,configured\n"),
            "{csv}"
        );
        let csv = report.to_csv(CsvSection::Products).unwrap();
        assert!(
            csv.contains(
                "memory,app,APP,20,configured,4,vendor,16,20.0,,10,0,EUR,0.10,month,24.00,19.20,0,"
            ),
            "{csv}"
        );
    }

    #[test]
    fn a_price_needs_currency_and_period_and_a_currency_is_iso() {
        let c = Contract::new(ProviderKind::from_static("genesys"), "cloudCX2");
        assert_eq!(c.check(), Ok(()));
        let mut priced = c.clone();
        priced.price_per_seat = Some(dec("1"));
        assert!(priced.check().unwrap_err().contains("currency"));
        priced.currency = Some("EUR".into());
        assert!(priced.check().unwrap_err().contains("period"));
        priced.period = Some(Period::Year);
        assert_eq!(priced.check(), Ok(()));
        priced.price_per_seat = Some(dec("-1"));
        assert!(priced.check().unwrap_err().contains("negative"));
        let bad: std::result::Result<Contract, _> = serde_json::from_value(serde_json::json!({
            "provider": "genesys", "product": "x", "currency": "euro"
        }));
        assert!(bad.unwrap_err().to_string().contains("ISO 4217"));
        let unknown: std::result::Result<Contract, _> = serde_json::from_value(serde_json::json!({
            "provider": "genesys", "product": "x", "sets": 3
        }));
        assert!(unknown.is_err(), "a typo is an error, not a silent default");
    }

    #[tokio::test]
    async fn inactive_for_days_at_the_threshold_and_one_reason_per_seat() {
        let as_of = at("2026-06-30T12:00:00Z");
        let logins = [
            ("edge", Some("2026-04-01T12:00:00Z")), // exactly 90 days: candidate
            ("almost", Some("2026-04-01T12:00:01Z")), // 1 s short of 90 days: not
            ("never", None),                        // unknown: never guessed
            ("old", Some("2025-01-01T00:00:00Z")),  // inactive too: one reason, the stronger
        ];
        let p = InMemoryProvider::new(MemoryConfig {
            products: vec![MemoryProduct {
                id: "app".into(),
                name: "App".into(),
                seats: Some(10),
                device_assignable: false,
            }],
            users: logins
                .iter()
                .map(|(id, login)| MemoryUser {
                    id: id.to_string(),
                    email: Some(format!("{id}@x.io")),
                    name: None,
                    active: true,
                    last_login: login.map(at),
                })
                .collect(),
            ..MemoryConfig::default()
        })
        .unwrap();
        let holders: Vec<HolderId> = logins.iter().map(|(id, _)| HolderId::user(*id)).collect();
        p.assign(&ProductId::new("app"), &holders).await.unwrap();
        p.set_user_active("old", false).unwrap();
        let reasons = |days: u32| {
            let p = &p;
            async move {
                let options = ReportOptions {
                    inactive_days: days,
                    as_of: Some(as_of),
                    ..ReportOptions::default()
                };
                let report = Report::collect(&[p], &options, &|_, _| {}).await;
                report
                    .reclaim
                    .iter()
                    .map(|r| (r.holder.as_str().to_owned(), r.reason, r.idle_days))
                    .collect::<Vec<_>>()
            }
        };
        assert_eq!(
            reasons(90).await,
            vec![
                ("edge".to_owned(), ReclaimReason::InactiveForDays, Some(90)),
                ("old".to_owned(), ReclaimReason::HolderInactive, Some(545)),
            ]
        );
        assert_eq!(reasons(91).await.len(), 1, "edge is 90 days idle, under 91");
        assert_eq!(reasons(0).await.len(), 1, "0 turns the check off");
        let options = ReportOptions {
            as_of: Some(as_of),
            ..ReportOptions::default()
        };
        let report = Report::collect(&[&p], &options, &|_, _| {}).await;
        let csv = report.to_csv(CsvSection::Reclaim).unwrap();
        assert!(
            csv.contains("memory,app,App,user,edge,,edge@x.io,inactive_for_days,2026-04-01T12:00:00+00:00,90\n"),
            "{csv}"
        );
    }

    #[tokio::test]
    async fn renewals_within_the_window_soonest_first() {
        let p = priced_org().await;
        let as_of = at("2026-12-01T23:30:00Z");
        let date = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        let options = ReportOptions {
            contracts: vec![
                Contract::new(crate::InMemoryProvider::KIND, "app")
                    .with_price(dec("2"), "EUR", Period::Month)
                    .with_renewal(date("2027-03-01")), // day 90: in
                Contract::new(crate::InMemoryProvider::KIND, "suite")
                    .with_renewal(date("2026-12-01")), // today: in
                Contract::new(crate::InMemoryProvider::KIND, "free")
                    .with_renewal(date("2027-03-02")), // day 91: out
                Contract::new(crate::InMemoryProvider::KIND, "site")
                    .with_renewal(date("2026-11-30")), // past: out
            ],
            as_of: Some(as_of),
            ..ReportOptions::default()
        };
        let report = Report::collect(&[&p], &options, &|_, _| {}).await;
        let got: Vec<(&str, i64, Option<Decimal>)> = report
            .renewals
            .iter()
            .map(|r| (r.product_id.as_str(), r.days_left, r.annual_cost))
            .collect();
        assert_eq!(got, vec![("suite", 0, None), ("app", 90, Some(dec("240")))]);
        let narrow = ReportOptions {
            renewal_days: 30,
            ..options
        };
        let report = Report::collect(&[&p], &narrow, &|_, _| {}).await;
        assert_eq!(report.renewals.len(), 1);
        let csv = report.to_csv(CsvSection::Renewals).unwrap();
        assert_eq!(
            csv,
            "provider,product_id,product_name,date,days_left,seats,currency,annual_cost,notes\nmemory,suite,SUITE,2026-12-01,0,5,,,\n"
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
