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
//!   want opposite things for one holder are an error naming both. A product the vendor gives
//!   to every user and does not let anyone manage (a Salesforce site license,
//!   [`Product::is_assigned_to_all_users`](crate::Product::is_assigned_to_all_users)) gets no
//!   adds and no removes: its policies say why in [`PolicyPlan::unmanaged`], and the plan warns.
//! - [`Plan::apply`] re-reads the fingerprints (refusing with [`ApplyError::Drifted`] if they
//!   changed), holds back policies over `max_changes` and products short of seats (unless
//!   [`ApplyOptions::partial`]), then runs revokes before assigns per product through each
//!   provider's bulk engine ([`LicenseProvider::change`](crate::LicenseProvider::change)), with an observer and cancellation per
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
//!         id: id.to_string(), email: Some(format!("{id}@example.com")), name: None, active: true, last_login: None,
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

use std::collections::BTreeSet;
use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use licensekit_core::{ChangeAction, Error, HolderId, ProductId, Provenance, ProviderKind, Result};

use crate::report::{ReclaimReason, ReportOptions};

mod apply;
mod compute;
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
    /// Options that match holders to people as `identity` says (the same options as the report's), with no pending changes.
    pub fn new(identity: ReportOptions) -> Self {
        PlanOptions {
            identity,
            pending: Vec::new(),
        }
    }
    /// The changes an earlier apply left pending (from its journal), so they are not planned again.
    pub fn with_pending(mut self, pending: Vec<PendingChange>) -> Self {
        self.pending = pending;
        self
    }
}

/// A change the vendor accepted and completes asynchronously (an Apple event), as an apply
/// left it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PendingChange {
    /// The vendor the change is at.
    pub provider: ProviderKind,
    /// The product changed.
    pub product_id: ProductId,
    /// Assign or revoke.
    pub action: ChangeAction,
    /// The holder changed.
    pub holder: HolderId,
    /// The vendor's reference (the Apple event id).
    pub reference: String,
}

/// The holders of one product as observed, in a form that changes when they do: their number
/// and an FNV-1a digest of their sorted ids. Not a security measure: it detects drift.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fingerprint {
    /// Distinct holders observed.
    pub holders: u64,
    /// `fnv1a64:` and 16 hex digits over the sorted holder ids.
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
    /// The plan format's version; apply refuses a plan of another version.
    pub plan_version: u32,
    /// When the plan was computed (UTC).
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
    /// The product's vendor.
    pub provider: ProviderKind,
    /// The product id as the vendor names it.
    pub product_id: ProductId,
    /// The vendor's display name of the product.
    pub product_name: String,
    /// The policies that manage it.
    pub policies: Vec<String>,
    /// The holders observed when the plan was made.
    pub fingerprint: Fingerprint,
    /// Seats before and after the plan, and which adds do not fit.
    pub capacity: Capacity,
    /// Changes an earlier apply left pending at the vendor, with their references.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pending: Vec<PendingChange>,
    /// The vendor gives the product to every user and does not let it be managed per holder
    /// (a Salesforce site license): the plan changes nothing of it (see [`PolicyPlan::unmanaged`]).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub assigned_to_all_users: bool,
}

/// The order in which adds get free seats when a product is short of them.
pub const SHORTFALL_ORDER: &str = "policies in the desired state's order, then holders by kind (users before devices) and id; the first adds in this order get the free seats";

/// Seats of a product before and after the plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Capacity {
    /// Seats owned; `None` when unlimited or unknown.
    pub total: Option<u64>,
    /// Whether the vendor grants unlimited seats (a Salesforce site license).
    pub unlimited: bool,
    /// Where the total came from (the vendor, our configuration, a policy's `seats`, or unknown).
    pub total_source: Provenance,
    /// Seats assigned when the plan was made.
    pub assigned: u64,
    /// Where the assigned figure came from.
    pub assigned_source: Provenance,
    /// Distinct holders the plan adds and removes (policies stopped by `max_changes` left out).
    pub adds: u64,
    /// (See `adds`.) Distinct holders the plan removes.
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
    /// The policy's name.
    pub policy: String,
    /// The holder the add is for.
    pub holder: HolderId,
}

/// One policy as planned.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PolicyPlan {
    /// The policy's name (default `provider/product`).
    pub name: String,
    /// The vendor of the policy's product.
    pub provider: ProviderKind,
    /// The product id as the vendor names it.
    pub product_id: ProductId,
    /// The vendor's display name of the product.
    pub product_name: String,
    /// Exact, ensure or absent.
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
    /// The policy's blast-radius guard, as given; `None` = no limit.
    pub max_changes: Option<usize>,
    /// Set when the policy changes more than `max_changes`: nothing of it is applied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped: Option<Stopped>,
    /// Set when the vendor gives the product to every user and does not let it be managed (a
    /// Salesforce site license, [`ProductPlan::assigned_to_all_users`]): the policy plans no
    /// adds and no removes, whatever its mode, and this says what it would have changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unmanaged: Option<Unmanaged>,
}

impl PolicyPlan {
    /// Holders added plus holders removed.
    pub fn changes(&self) -> usize {
        self.adds.len() + self.removes.len()
    }
}

/// A policy held back by its blast-radius guard.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stopped {
    /// The policy's limit.
    pub max_changes: usize,
    /// The changes it would have made.
    pub changes: usize,
}

/// A policy whose product the vendor gives to every user and does not let be managed: what it
/// would have changed, none of which is planned. Adds are not needed (every user holds the
/// product, whatever the vendor's assignment listing shows); removes are not allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unmanaged {
    /// Selected holders the listing shows without the product: not added, every user has it.
    pub not_added: usize,
    /// Holders the policy would have taken the product from: not removed, the vendor does not
    /// allow it.
    pub not_removed: usize,
}

impl Unmanaged {
    /// The stable snake_case name of why nothing is planned, used in CSV: the product's vendor
    /// field ([`Product::ASSIGNED_TO_ALL_USERS`](crate::Product::ASSIGNED_TO_ALL_USERS)).
    pub const REASON: &'static str = licensekit_core::Product::ASSIGNED_TO_ALL_USERS;
}

impl fmt::Display for Unmanaged {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the vendor gives this product to every user and does not allow managing it, so nothing is planned")?;
        if self.not_added > 0 {
            write!(
                f,
                "; {} adds not needed (every user holds it)",
                self.not_added
            )?;
        }
        if self.not_removed > 0 {
            write!(
                f,
                "; {} removes not allowed by the vendor",
                self.not_removed
            )?;
        }
        Ok(())
    }
}

/// One holder to add or remove, with what is known of it and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedChange {
    /// The holder to add or remove.
    pub holder: HolderId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    /// The holder's email, when the vendor gave one.
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    /// The holder's display name, when the vendor gave one.
    pub display_name: Option<String>,
    /// Why the holder is added or removed.
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
    /// The stable snake_case name used in JSON, CSV and the CLI.
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
    /// Why the product could not be given.
    pub reason: UnmatchedReason,
    /// Where the holder was seen: the rule's source provider, or the policy's own.
    pub provider: ProviderKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    /// The vendor's id of the holder, when there is one.
    pub holder_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    /// The email as seen (or as the policy listed it).
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    /// The display name, when the vendor gave one.
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
    /// The stable snake_case name used in JSON, CSV and the CLI.
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
    /// Holders to be given a product, over all policies.
    pub adds: usize,
    /// Holders to lose a product, over all policies.
    pub removes: usize,
    /// Holders already as wanted.
    pub unchanged: u64,
    /// Changes still pending at the vendor from an earlier apply.
    pub pending: usize,
    /// People and holders that could not be matched.
    pub unmatched: usize,
    /// Policies held back by `max_changes`.
    pub policies_stopped: usize,
    /// Policies whose product the vendor gives to every user (nothing planned).
    pub policies_unmanaged: usize,
    /// Products without free seats for every add.
    pub products_short: usize,
    /// Adds that will not fit (in products short of seats).
    pub not_fitting: usize,
}

impl Plan {
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
            s.policies_unmanaged += usize::from(p.unmanaged.is_some());
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

    /// One CSV row per planned add and remove, pending change and unmatched holder, and one
    /// `unmanaged` row per policy whose product the vendor gives to every user (status
    /// `not_planned`, or `removes_not_allowed` when it would have removed holders).
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
            if let Some(unmanaged) = &p.unmanaged {
                w.serialize(Row {
                    policy: &p.name,
                    provider: p.provider,
                    product_id: p.product_id.as_str(),
                    row: "unmanaged",
                    holder_kind: None,
                    holder_id: None,
                    email: None,
                    name: None,
                    reason: Some(Unmanaged::REASON),
                    reclaim: None,
                    status: if unmanaged.not_removed > 0 {
                        "removes_not_allowed"
                    } else {
                        "not_planned"
                    },
                    reference: None,
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
