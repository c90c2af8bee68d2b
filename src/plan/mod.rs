//! Desired state across vendors: say *who should hold what*, read a [`Plan`] of exactly what
//! would change, then [`Plan::apply`] it — refused if the vendors' state drifted since the plan
//! was made.
//!
//! - [`DesiredState`] (TOML, versioned): policies of provider + product + who + [`Mode`].
//! - [`Plan::compute`] reads every provider a policy names concurrently (listings streamed, as
//!   the report reads them), resolves rules through the report's identity matching (normalized
//!   email through the alias map, [`ReportOptions::person_of`]) and its reclaim reasons, and
//!   gives per policy the adds, removes, unchanged count and holders that could not be matched;
//!   per product a capacity check and a fingerprint of the observed holders. Two policies that
//!   want opposite things for one holder are an error naming both.
//! - [`Plan::apply`] re-reads the fingerprints (refusing with [`ApplyError::Drifted`] if they
//!   changed), holds back policies over `max_changes` and products short of seats (unless
//!   [`ApplyOptions::partial`]), then runs revokes before assigns per product through each
//!   provider's bulk engine ([`LicenseProvider::change`]), with an observer and cancellation per
//!   step. Every planned item ends with an outcome or a reason it was held back.
//!
//! ```
//! use licensekit::plan::{DesiredState, Plan, PlanOptions, ApplyOptions};
//! use licensekit::{InMemoryProvider, LicenseProvider, MemoryConfig, MemoryProduct, MemoryUser};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> licensekit::Result<()> {
//! let memory = InMemoryProvider::new(MemoryConfig {
//!     products: vec![MemoryProduct { id: "app".into(), name: "App".into(), seats: Some(5), device_assignable: false }],
//!     users: ["ada", "bob"].iter().map(|id| MemoryUser {
//!         id: id.to_string(), email: Some(format!("{id}@example.com")), name: None, active: true,
//!     }).collect(),
//!     ..MemoryConfig::default()
//! })?;
//! let desired = DesiredState::from_toml(r#"
//!     version = 1
//!     [[policy]]
//!     provider = "memory"
//!     product = "app"
//!     mode = "exact"
//!     who.all_active = true
//! "#, "desired.toml")?;
//! let providers: [&dyn LicenseProvider; 1] = [&memory];
//! let plan = Plan::compute(&providers, &desired, &PlanOptions::default()).await?;
//! assert_eq!(plan.policies[0].adds.len(), 2);
//! let applied = plan.apply(&providers, &ApplyOptions::default()).await.expect("no drift");
//! assert!(applied.is_complete_success());
//! let again = Plan::compute(&providers, &desired, &PlanOptions::default()).await?;
//! assert!(again.is_empty());
//! # Ok(())
//! # }
//! ```

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, Utc};
use futures::future::join_all;
use serde::{Deserialize, Serialize};

use licensekit_core::{
    Capabilities, ChangeAction, Error, HolderId, LicenseProvider, Product, ProductId, Provenance,
    ProviderKind, Result,
};

use crate::report::{
    Collected, ReclaimReason, Report, ReportOptions, collect_one, normalize_email,
};

mod apply;
mod desired;

#[cfg(feature = "apple-vpp")]
pub use apply::settle_pending;
pub use apply::{
    AppliedStep, ApplyError, ApplyHooks, ApplyOptions, ApplyReport, Drift, HeldBack,
    HeldBackReason, Step,
};
pub use desired::{DESIRED_STATE_VERSION, DesiredState, Mode, Policy, ProductRef, Who};

/// The plan schema version, in every saved plan.
pub const PLAN_VERSION: u32 = 1;

/// How a plan reads the world.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct PlanOptions {
    /// How people are matched across vendors: the report's options (the alias map).
    pub identity: ReportOptions,
    /// Changes an earlier apply left `Pending` at the vendor (Apple events) and still pending
    /// now: the plan lists them as pending with their references, never as new changes.
    pub pending: Vec<PendingChange>,
}

impl PlanOptions {
    pub fn new(identity: ReportOptions) -> Self {
        PlanOptions {
            identity,
            pending: Vec::new(),
        }
    }
    pub fn with_pending(mut self, pending: Vec<PendingChange>) -> Self {
        self.pending = pending;
        self
    }
}

/// A change the vendor accepted and completes asynchronously (an Apple event), as an apply
/// left it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PendingChange {
    pub provider: ProviderKind,
    pub product_id: ProductId,
    pub action: ChangeAction,
    pub holder: HolderId,
    /// The vendor's reference (the Apple event id).
    pub reference: String,
}

/// The holders of one product as observed, in a form that changes when they do: their number
/// and an FNV-1a digest of their sorted ids. Not a security measure: it detects drift.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fingerprint {
    pub holders: u64,
    pub digest: String,
}

impl Fingerprint {
    pub(crate) fn of<'a>(holders: impl IntoIterator<Item = &'a HolderId>) -> Fingerprint {
        let sorted: BTreeSet<&HolderId> = holders.into_iter().collect();
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for h in &sorted {
            let kind = match h {
                HolderId::User(_) => "user",
                HolderId::Device(_) => "device",
            };
            for byte in kind
                .bytes()
                .chain([b':'])
                .chain(h.as_str().bytes())
                .chain([b'\n'])
            {
                hash ^= u64::from(byte);
                hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
            }
        }
        Fingerprint {
            holders: sorted.len() as u64,
            digest: format!("fnv1a64:{hash:016x}"),
        }
    }
}

/// A plan: per policy what would change, per product its capacity and observed state. Serde,
/// with a stable JSON form ([`Plan::to_json`]) that [`Plan::from_json`] reads back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub plan_version: u32,
    pub created_at: DateTime<Utc>,
    /// The desired state this plan was computed from (files read into it), so the plan can be
    /// computed again (`apply --refresh`).
    pub desired: DesiredState,
    /// Every product a policy names, in the order of the first policy naming it.
    pub products: Vec<ProductPlan>,
    /// Every policy, in the desired state's order.
    pub policies: Vec<PolicyPlan>,
    /// Things worth knowing that do not stop the plan (a listing that changed while read).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// One product as planned: what was observed, what the plan does to its seats.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProductPlan {
    pub provider: ProviderKind,
    pub product_id: ProductId,
    pub product_name: String,
    /// The policies that manage it.
    pub policies: Vec<String>,
    /// The holders observed when the plan was made.
    pub fingerprint: Fingerprint,
    pub capacity: Capacity,
    /// Changes an earlier apply left pending at the vendor, with their references.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pending: Vec<PendingChange>,
}

/// The order in which adds get free seats when a product is short of them.
pub const SHORTFALL_ORDER: &str = "policies in the desired state's order, then holders by kind (users before devices) and id; the first adds in this order get the free seats";

/// Seats of a product before and after the plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Capacity {
    /// Seats owned; `None` when unlimited or unknown.
    pub total: Option<u64>,
    pub unlimited: bool,
    pub total_source: Provenance,
    pub assigned: u64,
    pub assigned_source: Provenance,
    /// Distinct holders the plan adds and removes (policies stopped by `max_changes` left out).
    pub adds: u64,
    pub removes: u64,
    /// Free seats once the plan is applied (negative: short); `None` when not known.
    pub free_after: Option<i64>,
    /// Whether a total was known to check against.
    pub checked: bool,
    /// Adds that will not fit, in [`SHORTFALL_ORDER`].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_fitting: Vec<PlannedAdd>,
}

impl Capacity {
    /// Seats missing for every add to fit.
    pub fn shortfall(&self) -> u64 {
        self.not_fitting.len() as u64
    }
}

/// An add of one policy, as the capacity check names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedAdd {
    pub policy: String,
    pub holder: HolderId,
}

/// One policy as planned.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PolicyPlan {
    pub name: String,
    pub provider: ProviderKind,
    pub product_id: ProductId,
    pub product_name: String,
    pub mode: Mode,
    /// Holders to give the product, by kind and id.
    pub adds: Vec<PlannedChange>,
    /// Holders to take it from, by kind and id.
    pub removes: Vec<PlannedChange>,
    /// Holders the policy covers that are already as wanted.
    pub unchanged: u64,
    /// People and holders a rule or list named that could not be matched to an account the
    /// product can be given to (never guessed).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unmatched: Vec<Unmatched>,
    /// Changes of this policy still pending at the vendor from an earlier apply (not planned
    /// again).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pending: Vec<PendingChange>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_changes: Option<usize>,
    /// Set when the policy changes more than `max_changes`: nothing of it is applied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped: Option<Stopped>,
}

impl PolicyPlan {
    pub fn changes(&self) -> usize {
        self.adds.len() + self.removes.len()
    }
}

/// A policy held back by its blast-radius guard.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stopped {
    pub max_changes: usize,
    pub changes: usize,
}

/// One holder to add or remove, with what is known of it and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedChange {
    pub holder: HolderId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    pub reason: ChangeReason,
    /// For `reason = reclaim`: the report's reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reclaim: Option<ReclaimReason>,
}

/// Why a holder is added or removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeReason {
    /// Selected by the policy and missing the product.
    Selected,
    /// Holds the product, and an `exact` policy does not select it.
    NotSelected,
    /// Selected by an `absent` policy and holding the product.
    Listed,
    /// The report gives a reclaim reason the policy names.
    Reclaim,
}

impl ChangeReason {
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeReason::Selected => "selected",
            ChangeReason::NotSelected => "not_selected",
            ChangeReason::Listed => "listed",
            ChangeReason::Reclaim => "reclaim",
        }
    }
}

/// Someone a policy named who could not be given the product.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Unmatched {
    pub reason: UnmatchedReason,
    /// Where the holder was seen: the rule's source provider, or the policy's own.
    pub provider: ProviderKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub holder_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
}

/// Why someone a policy named could not be given the product.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UnmatchedReason {
    /// The holder at the rule's source has no usable email: it cannot be matched to a person.
    NoUsableEmail,
    /// A device at another provider: devices are not matched across vendors.
    Device,
    /// The person has no account at the policy's provider.
    NoAccount,
    /// The person has several accounts at the policy's provider: which one is not guessed.
    SeveralAccounts,
    /// The account is inactive at the policy's provider.
    AccountInactive,
    /// The user id is not in the provider's directory.
    NotInDirectory,
    /// The email in the policy is not an email address.
    InvalidEmail,
}

impl UnmatchedReason {
    pub fn as_str(self) -> &'static str {
        match self {
            UnmatchedReason::NoUsableEmail => "no_usable_email",
            UnmatchedReason::Device => "device",
            UnmatchedReason::NoAccount => "no_account",
            UnmatchedReason::SeveralAccounts => "several_accounts",
            UnmatchedReason::AccountInactive => "account_inactive",
            UnmatchedReason::NotInDirectory => "not_in_directory",
            UnmatchedReason::InvalidEmail => "invalid_email",
        }
    }
}

/// Counts of a plan, for a summary line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct PlanSummary {
    pub adds: usize,
    pub removes: usize,
    pub unchanged: u64,
    pub pending: usize,
    pub unmatched: usize,
    pub policies_stopped: usize,
    pub products_short: usize,
    /// Adds that will not fit (in products short of seats).
    pub not_fitting: usize,
}

/// What one provider's data looks like to the planner.
struct View<'a> {
    collected: &'a Collected,
    capabilities: Capabilities,
    /// Holders per product.
    held: HashMap<&'a ProductId, BTreeSet<HolderId>>,
    /// Person key (the report's) -> user accounts with that email, sorted.
    persons: HashMap<String, Vec<&'a HolderId>>,
}

impl<'a> View<'a> {
    fn new(
        collected: &'a Collected,
        capabilities: Capabilities,
        identity: &ReportOptions,
    ) -> View<'a> {
        let mut held: HashMap<&ProductId, BTreeSet<HolderId>> = HashMap::new();
        for (product, holder, _) in &collected.assignments {
            held.entry(product).or_default().insert(holder.clone());
        }
        let mut persons: HashMap<String, Vec<&HolderId>> = HashMap::new();
        for (id, holder) in &collected.holders {
            if let (HolderId::User(_), Some(email)) = (id, &holder.email)
                && let Some(key) = identity.person_of(email)
            {
                persons.entry(key).or_default().push(id);
            }
        }
        for ids in persons.values_mut() {
            ids.sort();
        }
        View {
            collected,
            capabilities,
            held,
            persons,
        }
    }

    fn kind(&self) -> ProviderKind {
        self.collected.provider
    }

    fn holders_of(&self, product: &ProductId) -> BTreeSet<HolderId> {
        self.held.get(product).cloned().unwrap_or_default()
    }

    fn email_of(&self, holder: &HolderId) -> Option<&str> {
        self.collected.holders.get(holder)?.email.as_deref()
    }

    fn inactive(&self, holder: &HolderId) -> bool {
        self.collected
            .holders
            .get(holder)
            .is_some_and(|h| h.active == Some(false))
    }

    fn not_in_directory(&self, holder: &HolderId) -> bool {
        matches!(holder, HolderId::User(_))
            && self
                .collected
                .directory
                .as_ref()
                .is_some_and(|d| !d.contains(holder))
    }

    fn change(
        &self,
        holder: &HolderId,
        reason: ChangeReason,
        reclaim: Option<ReclaimReason>,
    ) -> PlannedChange {
        let known = self.collected.holders.get(holder);
        PlannedChange {
            holder: holder.clone(),
            email: known.and_then(|h| h.email.clone()),
            display_name: known.and_then(|h| h.display_name.clone()),
            reason,
            reclaim,
        }
    }

    fn unmatched(&self, holder: &HolderId, reason: UnmatchedReason) -> Unmatched {
        let known = self.collected.holders.get(holder);
        Unmatched {
            reason,
            provider: self.kind(),
            holder_id: Some(holder.as_str().to_owned()),
            email: known.and_then(|h| h.email.clone()),
            display_name: known.and_then(|h| h.display_name.clone()),
        }
    }

    /// The product `given` names: its id, a Salesforce namespace prefix, or an id's part
    /// before `:` (an Apple adamId without pricing) when exactly one product has it.
    fn product(&self, given: &str, policy: &str) -> Result<&'a Product> {
        let products = &self.collected.products;
        if let Some(p) = products.iter().find(|p| p.id.as_str() == given) {
            return Ok(p);
        }
        let unique = |matches: Vec<&'a Product>| (matches.len() == 1).then(|| matches[0]);
        let by_namespace = products
            .iter()
            .filter(|p| {
                p.vendor
                    .get("namespace_prefix")
                    .and_then(serde_json::Value::as_str)
                    == Some(given)
            })
            .collect();
        if let Some(p) = unique(by_namespace) {
            return Ok(p);
        }
        let by_head = products
            .iter()
            .filter(|p| {
                p.id.as_str()
                    .split_once(':')
                    .is_some_and(|(head, _)| head == given)
            })
            .collect();
        if let Some(p) = unique(by_head) {
            return Ok(p);
        }
        let mut known: Vec<&str> = products.iter().map(|p| p.id.as_str()).collect();
        known.sort_unstable();
        let shown = known.len().min(12);
        Err(Error::config(format!(
            "policy `{policy}`: {} has no product `{given}` (products: {}{})",
            self.kind(),
            known[..shown].join(", "),
            if known.len() > shown { ", …" } else { "" }
        )))
    }
}

/// Who a policy selects at its provider.
#[derive(Default)]
struct Selection {
    wanted: BTreeSet<HolderId>,
    /// Wanted, but not to be given the product (inactive, unknown to the directory).
    blocked: BTreeMap<HolderId, UnmatchedReason>,
    unmatched: BTreeSet<Unmatched>,
}

impl Selection {
    fn want(&mut self, holder: HolderId, view: &View<'_>) {
        if view.not_in_directory(&holder) {
            self.blocked
                .insert(holder.clone(), UnmatchedReason::NotInDirectory);
        } else if view.inactive(&holder) {
            self.blocked
                .insert(holder.clone(), UnmatchedReason::AccountInactive);
        }
        self.wanted.insert(holder);
    }
}

/// Lowercased domain of an email, if it has one.
fn domain_of(email: &str) -> Option<String> {
    let email = normalize_email(email);
    let (_, domain) = email.rsplit_once('@')?;
    (!domain.is_empty()).then(|| domain.to_owned())
}

/// The holders of a product a rule reads: as the plan leaves it when a policy manages it (and
/// it is not the rule's own product), else as observed.
type SourceHolders<'s> = dyn Fn(ProviderKind, &ProductId) -> BTreeSet<HolderId> + 's;

fn select(
    policy: &Policy,
    name: &str,
    target: &View<'_>,
    views: &HashMap<ProviderKind, View<'_>>,
    identity: &ReportOptions,
    source_holders: &SourceHolders<'_>,
) -> Result<Selection> {
    let who = &policy.who;
    let mut sel = Selection::default();
    let kind = target.kind();
    let caps = target.capabilities;
    if (!who.users.is_empty() || !who.emails.is_empty() || who.all_active) && !caps.user_holders {
        return Err(Error::config(format!(
            "policy `{name}`: {kind} does not give licenses to users"
        )));
    }
    if !who.devices.is_empty() && !caps.device_holders {
        return Err(Error::config(format!(
            "policy `{name}`: {kind} does not give licenses to devices"
        )));
    }
    if who.users_file.is_some() || who.devices_file.is_some() {
        return Err(Error::config(format!(
            "policy `{name}`: its users or devices file was not read (DesiredState::read_files)"
        )));
    }
    for id in &who.users {
        if id.trim().is_empty() {
            return Err(Error::config(format!(
                "policy `{name}`: `who.users` holds an empty id"
            )));
        }
        sel.want(HolderId::user(id.clone()), target);
    }
    for serial in &who.devices {
        if serial.trim().is_empty() {
            return Err(Error::config(format!(
                "policy `{name}`: `who.devices` holds an empty serial number"
            )));
        }
        sel.want(HolderId::device(serial.clone()), target);
    }
    for email in &who.emails {
        let unmatched = |reason| Unmatched {
            reason,
            provider: kind,
            holder_id: None,
            email: Some(email.clone()),
            display_name: None,
        };
        match identity.person_of(email) {
            None => {
                sel.unmatched
                    .insert(unmatched(UnmatchedReason::InvalidEmail));
            }
            Some(person) => match target.persons.get(&person).map(Vec::as_slice) {
                None | Some([]) => {
                    sel.unmatched.insert(unmatched(UnmatchedReason::NoAccount));
                }
                Some([one]) => sel.want((*one).clone(), target),
                Some(_) => {
                    sel.unmatched
                        .insert(unmatched(UnmatchedReason::SeveralAccounts));
                }
            },
        }
    }

    // Rules, then the domain filter over what they selected.
    let mut ruled: BTreeSet<HolderId> = BTreeSet::new();
    if who.all_active {
        let directory = target
            .collected
            .directory
            .as_ref()
            .filter(|_| caps.holder_directory)
            .ok_or_else(|| {
                Error::config(format!(
                    "policy `{name}`: {kind} has no user directory to take `who.all_active` from"
                ))
            })?;
        ruled.extend(directory.iter().filter(|h| !target.inactive(h)).cloned());
    }
    for source in &who.holders_of {
        let view = views
            .get(&source.provider)
            .expect("every provider a rule names was read");
        let product = view.product(&source.product, name)?;
        let holders = source_holders(source.provider, &product.id);
        if source.provider == kind {
            ruled.extend(holders);
            continue;
        }
        for holder in &holders {
            if matches!(holder, HolderId::Device(_)) {
                sel.unmatched
                    .insert(view.unmatched(holder, UnmatchedReason::Device));
                continue;
            }
            let Some(person) = view.email_of(holder).and_then(|e| identity.person_of(e)) else {
                sel.unmatched
                    .insert(view.unmatched(holder, UnmatchedReason::NoUsableEmail));
                continue;
            };
            match target.persons.get(&person).map(Vec::as_slice) {
                None | Some([]) => {
                    let mut u = view.unmatched(holder, UnmatchedReason::NoAccount);
                    u.email = Some(person);
                    sel.unmatched.insert(u);
                }
                Some([one]) => {
                    ruled.insert((*one).clone());
                }
                Some(_) => {
                    let mut u = view.unmatched(holder, UnmatchedReason::SeveralAccounts);
                    u.email = Some(person);
                    sel.unmatched.insert(u);
                }
            }
        }
    }
    if !who.email_domains.is_empty() {
        let domains: BTreeSet<String> = who
            .email_domains
            .iter()
            .map(|d| d.trim().trim_start_matches('@').to_lowercase())
            .collect();
        ruled.retain(|h| {
            target
                .email_of(h)
                .and_then(domain_of)
                .is_some_and(|d| domains.contains(&d))
        });
    }
    for holder in ruled {
        sel.want(holder, target);
    }
    Ok(sel)
}

/// What one policy wants for each holder, for the conflict check.
struct Claims<'a> {
    name: &'a str,
    wanted: BTreeSet<HolderId>,
    /// `exact`: everyone not wanted is unwanted.
    exclusive: bool,
    unwanted: BTreeSet<HolderId>,
}

impl Claims<'_> {
    fn unwants(&self, holder: &HolderId) -> bool {
        if self.exclusive {
            !self.wanted.contains(holder)
        } else {
            self.unwanted.contains(holder)
        }
    }
}

fn check_conflicts(kind: ProviderKind, product: &ProductId, claims: &[Claims<'_>]) -> Result<()> {
    for a in claims {
        for b in claims {
            if std::ptr::eq(a, b) {
                continue;
            }
            let clashing: Vec<&HolderId> = a.wanted.iter().filter(|h| b.unwants(h)).collect();
            if let Some(first) = clashing.first() {
                let more = clashing.len() - 1;
                return Err(Error::config(format!(
                    "policies `{}` and `{}` conflict on {kind} {product}: `{}` wants {first} to hold it and `{}` wants it taken away{}",
                    a.name,
                    b.name,
                    a.name,
                    b.name,
                    if more > 0 {
                        format!(" ({more} more holders alike)")
                    } else {
                        String::new()
                    }
                )));
            }
        }
    }
    Ok(())
}

impl Plan {
    /// Reads the providers the desired state names (concurrently, listings streamed), and
    /// plans every policy. `Err` for an invalid desired state (a provider not configured, an
    /// unknown product, conflicting policies: [`ErrorKind::Config`](licensekit_core::ErrorKind))
    /// or a provider that could not be read (its error).
    pub async fn compute(
        providers: &[&dyn LicenseProvider],
        desired: &DesiredState,
        options: &PlanOptions,
    ) -> Result<Plan> {
        Self::compute_with_progress(providers, desired, options, &|_, _| {}).await
    }

    /// [`Plan::compute`], telling `progress` (provider, assignments read so far) as it reads.
    pub async fn compute_with_progress(
        providers: &[&dyn LicenseProvider],
        desired: &DesiredState,
        options: &PlanOptions,
        progress: &(dyn Fn(ProviderKind, u64) + Sync),
    ) -> Result<Plan> {
        desired.validate()?;
        let mut needed: Vec<(ProviderKind, String)> = Vec::new();
        for p in &desired.policies {
            needed.push((p.provider, p.display_name()));
            for r in &p.who.holders_of {
                needed.push((r.provider, p.display_name()));
            }
        }
        let mut chosen: Vec<&dyn LicenseProvider> = Vec::new();
        for (kind, policy) in &needed {
            if chosen.iter().any(|p| p.kind() == *kind) {
                continue;
            }
            let matching: Vec<&dyn LicenseProvider> = providers
                .iter()
                .copied()
                .filter(|p| p.kind() == *kind)
                .collect();
            match matching.as_slice() {
                [] => {
                    return Err(Error::config(format!(
                        "policy `{policy}` names provider {kind}, which is not configured"
                    )));
                }
                [one] => chosen.push(*one),
                _ => {
                    return Err(Error::config(format!(
                        "several {kind} providers are configured; a desired state names providers by kind"
                    )));
                }
            }
        }
        let read = join_all(chosen.iter().map(|p| collect_one(*p, progress))).await;
        let collected: Vec<Collected> = read.into_iter().collect::<Result<_>>()?;
        let report = Report::build(&collected, Vec::new(), &options.identity);
        let mut warnings = Vec::new();
        for c in &collected {
            for change in &c.changed_during_listing {
                warnings.push(format!(
                    "{}: its {} changed while they were read (version {} to {}); apply will refuse if the state moved",
                    c.provider, change.listing, change.first_version_id, change.last_version_id
                ));
            }
        }
        let views: HashMap<ProviderKind, View<'_>> = collected
            .iter()
            .zip(&chosen)
            .map(|(c, p)| {
                (
                    c.provider,
                    View::new(c, p.capabilities(), &options.identity),
                )
            })
            .collect();

        let names: Vec<String> = desired.policies.iter().map(Policy::display_name).collect();
        let key = |kind: ProviderKind, product: &Product| (kind, product.id.clone());
        let mut targets: Vec<(ProviderKind, &Product)> = Vec::new();
        let mut product_order: Vec<(ProviderKind, &Product)> = Vec::new();
        for (policy, name) in desired.policies.iter().zip(&names) {
            let product = views[&policy.provider].product(&policy.product, name)?;
            targets.push((policy.provider, product));
            if !product_order
                .iter()
                .any(|(k, p)| *k == policy.provider && p.id == product.id)
            {
                product_order.push((policy.provider, product));
            }
        }
        // A rule reading a product another policy manages reads it as the plan leaves it, so
        // products are planned after the products their rules read.
        let managed: BTreeSet<(ProviderKind, ProductId)> =
            targets.iter().map(|(k, p)| key(*k, p)).collect();
        let mut reads: BTreeMap<(ProviderKind, ProductId), BTreeSet<(ProviderKind, ProductId)>> =
            BTreeMap::new();
        for ((policy, name), (kind, product)) in desired.policies.iter().zip(&names).zip(&targets) {
            for r in &policy.who.holders_of {
                let source = views[&r.provider].product(&r.product, name)?;
                let source = key(r.provider, source);
                if source != key(*kind, product) && managed.contains(&source) {
                    reads.entry(key(*kind, product)).or_default().insert(source);
                }
            }
        }
        let mut order: Vec<(ProviderKind, ProductId)> = Vec::new();
        while order.len() < product_order.len() {
            let before = order.len();
            for (kind, product) in &product_order {
                let k = key(*kind, product);
                if !order.contains(&k)
                    && reads
                        .get(&k)
                        .is_none_or(|r| r.iter().all(|x| order.contains(x)))
                {
                    order.push(k);
                }
            }
            if order.len() == before {
                let cycle: Vec<String> = product_order
                    .iter()
                    .filter(|(k, p)| !order.contains(&key(*k, p)))
                    .map(|(k, p)| format!("{k} {}", p.id))
                    .collect();
                return Err(Error::config(format!(
                    "the rules of the policies on {} read each other's products in a cycle",
                    cycle.join(", ")
                )));
            }
        }

        let mut plans: Vec<Option<PolicyPlan>> = desired.policies.iter().map(|_| None).collect();
        let mut planned: HashMap<(ProviderKind, ProductId), BTreeSet<HolderId>> = HashMap::new();
        let mut claims: BTreeMap<(ProviderKind, ProductId), Vec<Claims<'_>>> = BTreeMap::new();
        for k in &order {
            for (i, (policy, name)) in desired.policies.iter().zip(&names).enumerate() {
                let (kind, product) = targets[i];
                if key(kind, product) != *k {
                    continue;
                }
                let target = &views[&policy.provider];
                let source_holders = |source: ProviderKind, id: &ProductId| {
                    let wanted = (source, id.clone());
                    match planned.get(&wanted) {
                        Some(holders) if wanted != *k => holders.clone(),
                        _ => views[&source].holders_of(id),
                    }
                };
                let sel = select(
                    policy,
                    name,
                    target,
                    &views,
                    &options.identity,
                    &source_holders,
                )?;
                let held = target.holders_of(&product.id);
                let flagged: BTreeMap<&HolderId, ReclaimReason> = report
                    .reclaim
                    .iter()
                    .filter(|r| {
                        r.provider == policy.provider
                            && r.product_id == product.id
                            && policy.reclaim.contains(&r.reason)
                    })
                    .fold(BTreeMap::new(), |mut m, r| {
                        m.entry(&r.holder).or_insert(r.reason);
                        m
                    });
                let mut adds = Vec::new();
                let mut removes = Vec::new();
                let mut unmatched = sel.unmatched.clone();
                let unchanged;
                let mut claim = Claims {
                    name,
                    wanted: BTreeSet::new(),
                    exclusive: policy.mode == Mode::Exact,
                    unwanted: flagged.keys().map(|h| (*h).clone()).collect(),
                };
                match policy.mode {
                    Mode::Exact | Mode::Ensure => {
                        let wanted: BTreeSet<&HolderId> = sel
                            .wanted
                            .iter()
                            .filter(|h| !flagged.contains_key(h))
                            .collect();
                        for h in &wanted {
                            if held.contains(*h) {
                                continue;
                            }
                            match sel.blocked.get(*h) {
                                Some(reason) => {
                                    unmatched.insert(target.unmatched(h, *reason));
                                }
                                None => adds.push(target.change(h, ChangeReason::Selected, None)),
                            }
                        }
                        for h in &held {
                            if let Some(reason) = flagged.get(h) {
                                removes.push(target.change(
                                    h,
                                    ChangeReason::Reclaim,
                                    Some(*reason),
                                ));
                            } else if policy.mode == Mode::Exact && !wanted.contains(h) {
                                removes.push(target.change(h, ChangeReason::NotSelected, None));
                            }
                        }
                        unchanged = wanted.iter().filter(|h| held.contains(**h)).count() as u64;
                        claim.wanted = wanted.into_iter().cloned().collect();
                    }
                    Mode::Absent => {
                        for h in &held {
                            if let Some(reason) = flagged.get(h) {
                                removes.push(target.change(
                                    h,
                                    ChangeReason::Reclaim,
                                    Some(*reason),
                                ));
                            } else if sel.wanted.contains(h) {
                                removes.push(target.change(h, ChangeReason::Listed, None));
                            }
                        }
                        unchanged = sel.wanted.iter().filter(|h| !held.contains(*h)).count() as u64;
                        claim.unwanted.extend(sel.wanted.iter().cloned());
                    }
                }
                claims
                    .entry((policy.provider, product.id.clone()))
                    .or_default()
                    .push(claim);

                // Changes still pending at the vendor are listed, not planned again.
                let pending_of = |action: ChangeAction, holder: &HolderId| {
                    options.pending.iter().find(|p| {
                        p.provider == policy.provider
                            && p.product_id == product.id
                            && p.action == action
                            && &p.holder == holder
                    })
                };
                let mut pending = Vec::new();
                adds.retain(|c| match pending_of(ChangeAction::Assign, &c.holder) {
                    Some(p) => {
                        pending.push(p.clone());
                        false
                    }
                    None => true,
                });
                removes.retain(|c| match pending_of(ChangeAction::Revoke, &c.holder) {
                    Some(p) => {
                        pending.push(p.clone());
                        false
                    }
                    None => true,
                });
                let max_changes = policy.max_changes.or(desired.max_changes);
                let changes = adds.len() + removes.len();
                plans[i] = Some(PolicyPlan {
                    name: name.clone(),
                    provider: policy.provider,
                    product_id: product.id.clone(),
                    product_name: product.name.clone(),
                    mode: policy.mode,
                    adds,
                    removes,
                    unchanged,
                    unmatched: unmatched.into_iter().collect(),
                    pending,
                    max_changes,
                    stopped: max_changes
                        .filter(|limit| changes > *limit)
                        .map(|limit| Stopped {
                            max_changes: limit,
                            changes,
                        }),
                });
            }
            // The product as the plan leaves it, for the rules that read it.
            let mut state = views[&k.0].holders_of(&k.1);
            for p in plans
                .iter()
                .flatten()
                .filter(|p| p.provider == k.0 && p.product_id == k.1 && p.stopped.is_none())
            {
                for c in &p.removes {
                    state.remove(&c.holder);
                }
                state.extend(p.adds.iter().map(|c| c.holder.clone()));
                for x in &p.pending {
                    match x.action {
                        ChangeAction::Assign => state.insert(x.holder.clone()),
                        ChangeAction::Revoke => state.remove(&x.holder),
                    };
                }
            }
            planned.insert(k.clone(), state);
        }
        let policies: Vec<PolicyPlan> = plans
            .into_iter()
            .map(|p| p.expect("every policy's product is in the order"))
            .collect();
        for ((kind, product), claims) in &claims {
            check_conflicts(*kind, product, claims)?;
        }

        let mut products = Vec::new();
        for (kind, product) in product_order {
            let view = &views[&kind];
            let mine: Vec<(&PolicyPlan, &Policy)> = policies
                .iter()
                .zip(&desired.policies)
                .filter(|(p, _)| p.provider == kind && p.product_id == product.id)
                .collect();
            let configured: BTreeSet<u64> = mine.iter().filter_map(|(_, p)| p.seats).collect();
            if configured.len() > 1 {
                let names: Vec<&str> = mine.iter().map(|(p, _)| p.name.as_str()).collect();
                return Err(Error::config(format!(
                    "policies {} configure different `seats` for {kind} {}",
                    names.join(", "),
                    product.id
                )));
            }
            let row = report
                .products
                .iter()
                .find(|r| r.provider == kind && r.product_id == product.id)
                .expect("every listed product has a report row");
            let (total, total_source) = match (row.total, row.unlimited, configured.first()) {
                (Some(n), _, _) => (Some(n), row.total_source),
                (None, false, Some(n)) => (Some(*n), Provenance::Configured),
                (None, _, _) => (None, row.total_source),
            };
            let mut add_order: Vec<PlannedAdd> = Vec::new();
            let mut seen: BTreeSet<&HolderId> = BTreeSet::new();
            let mut removed: BTreeSet<&HolderId> = BTreeSet::new();
            for (plan, _) in mine.iter().filter(|(p, _)| p.stopped.is_none()) {
                for c in &plan.adds {
                    if seen.insert(&c.holder) {
                        add_order.push(PlannedAdd {
                            policy: plan.name.clone(),
                            holder: c.holder.clone(),
                        });
                    }
                }
                removed.extend(plan.removes.iter().map(|c| &c.holder));
            }
            let adds = add_order.len() as u64;
            let removes = removed.len() as u64;
            let free_after =
                total.map(|t| t as i64 - row.assigned as i64 + removes as i64 - adds as i64);
            let not_fitting = match free_after {
                Some(free) if free < 0 => {
                    let fit = add_order.len() - (free.unsigned_abs() as usize).min(add_order.len());
                    add_order.split_off(fit)
                }
                _ => Vec::new(),
            };
            let pending: Vec<PendingChange> = options
                .pending
                .iter()
                .filter(|p| p.provider == kind && p.product_id == product.id)
                .cloned()
                .collect();
            products.push(ProductPlan {
                provider: kind,
                product_id: product.id.clone(),
                product_name: product.name.clone(),
                policies: mine.iter().map(|(p, _)| p.name.clone()).collect(),
                fingerprint: Fingerprint::of(view.held.get(&product.id).into_iter().flatten()),
                capacity: Capacity {
                    total,
                    unlimited: row.unlimited,
                    total_source,
                    assigned: row.assigned,
                    assigned_source: row.assigned_source,
                    adds,
                    removes,
                    free_after,
                    checked: total.is_some() || row.unlimited,
                    not_fitting,
                },
                pending,
            });
        }
        Ok(Plan {
            plan_version: PLAN_VERSION,
            created_at: Utc::now(),
            desired: desired.clone(),
            products,
            policies,
            warnings,
        })
    }

    /// Whether applying the plan would change nothing (pending items are listed, not changes).
    pub fn is_empty(&self) -> bool {
        self.policies.iter().all(|p| p.changes() == 0)
    }

    /// Counts for a summary line.
    pub fn summary(&self) -> PlanSummary {
        let mut s = PlanSummary::default();
        for p in &self.policies {
            s.adds += p.adds.len();
            s.removes += p.removes.len();
            s.unchanged += p.unchanged;
            s.unmatched += p.unmatched.len();
            s.policies_stopped += usize::from(p.stopped.is_some());
        }
        for p in &self.products {
            s.pending += p.pending.len();
            s.products_short += usize::from(!p.capacity.not_fitting.is_empty());
            s.not_fitting += p.capacity.not_fitting.len();
        }
        s
    }

    /// The plan as pretty JSON: fields in a fixed order, lists sorted, so two plans of the same
    /// state differ only in `created_at`.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("the plan serializes")
    }

    /// Reads a plan saved with [`Plan::to_json`]; refuses a newer plan version.
    pub fn from_json(text: &str) -> Result<Plan> {
        let value: serde_json::Value = serde_json::from_str(text)
            .map_err(|e| Error::config(format!("not a licensekit plan: {e}")))?;
        match value
            .get("plan_version")
            .and_then(serde_json::Value::as_u64)
        {
            Some(v) if v == u64::from(PLAN_VERSION) => {}
            Some(v) => {
                return Err(Error::config(format!(
                    "plan version {v} is not one this licensekit reads (it reads {PLAN_VERSION})"
                )));
            }
            None => {
                return Err(Error::config(
                    "not a licensekit plan: no `plan_version` (a plan is written by `licensekit plan --out`)",
                ));
            }
        }
        let plan: Plan = serde_json::from_value(value)
            .map_err(|e| Error::config(format!("not a licensekit plan: {e}")))?;
        plan.desired.validate()?;
        Ok(plan)
    }

    /// One CSV row per planned add and remove, pending change and unmatched holder.
    pub fn to_csv(&self) -> std::result::Result<String, csv::Error> {
        #[derive(Serialize)]
        struct Row<'a> {
            policy: &'a str,
            provider: ProviderKind,
            product_id: &'a str,
            row: &'static str,
            holder_kind: Option<licensekit_core::HolderKind>,
            holder_id: Option<&'a str>,
            email: Option<&'a str>,
            name: Option<&'a str>,
            reason: Option<&'static str>,
            reclaim: Option<ReclaimReason>,
            status: &'static str,
            reference: Option<&'a str>,
        }
        let mut w = csv::Writer::from_writer(Vec::new());
        for p in &self.policies {
            let product = self
                .products
                .iter()
                .find(|x| x.provider == p.provider && x.product_id == p.product_id);
            let fits = |h: &HolderId| {
                !product.is_some_and(|x| {
                    x.capacity
                        .not_fitting
                        .iter()
                        .any(|n| n.policy == p.name && &n.holder == h)
                })
            };
            let status = |h: &HolderId, add: bool| match (&p.stopped, add && !fits(h)) {
                (Some(_), _) => "stopped_by_max_changes",
                (None, true) => "does_not_fit",
                (None, false) => "planned",
            };
            for (row, changes) in [("add", &p.adds), ("remove", &p.removes)] {
                for c in changes {
                    w.serialize(Row {
                        policy: &p.name,
                        provider: p.provider,
                        product_id: p.product_id.as_str(),
                        row,
                        holder_kind: Some(c.holder.kind()),
                        holder_id: Some(c.holder.as_str()),
                        email: c.email.as_deref(),
                        name: c.display_name.as_deref(),
                        reason: Some(c.reason.as_str()),
                        reclaim: c.reclaim,
                        status: status(&c.holder, row == "add"),
                        reference: None,
                    })?;
                }
            }
            for x in &p.pending {
                w.serialize(Row {
                    policy: &p.name,
                    provider: p.provider,
                    product_id: p.product_id.as_str(),
                    row: match x.action {
                        ChangeAction::Assign => "pending_add",
                        ChangeAction::Revoke => "pending_remove",
                    },
                    holder_kind: Some(x.holder.kind()),
                    holder_id: Some(x.holder.as_str()),
                    email: None,
                    name: None,
                    reason: None,
                    reclaim: None,
                    status: "pending",
                    reference: Some(&x.reference),
                })?;
            }
            for u in &p.unmatched {
                w.serialize(Row {
                    policy: &p.name,
                    provider: u.provider,
                    product_id: p.product_id.as_str(),
                    row: "unmatched",
                    holder_kind: None,
                    holder_id: u.holder_id.as_deref(),
                    email: u.email.as_deref(),
                    name: u.display_name.as_deref(),
                    reason: Some(u.reason.as_str()),
                    reclaim: None,
                    status: "not_planned",
                    reference: None,
                })?;
            }
        }
        let bytes = w.into_inner().map_err(|e| e.into_error())?;
        Ok(String::from_utf8(bytes).expect("csv writes UTF-8"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fingerprint_depends_on_the_set_only() {
        let a = [HolderId::user("ada"), HolderId::device("S1")];
        let b = [
            HolderId::device("S1"),
            HolderId::user("ada"),
            HolderId::user("ada"),
        ];
        assert_eq!(Fingerprint::of(&a), Fingerprint::of(&b));
        assert_eq!(Fingerprint::of(&a).holders, 2);
        let c = [HolderId::user("S1"), HolderId::user("ada")];
        assert_ne!(Fingerprint::of(&a), Fingerprint::of(&c), "kind counts");
        assert_eq!(
            Fingerprint::of(&[]).digest,
            "fnv1a64:cbf29ce484222325",
            "stable across runs and platforms"
        );
    }
}
