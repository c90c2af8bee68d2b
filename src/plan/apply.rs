//! Applying a plan: drift check, guards, then revokes before assigns per product through the
//! bulk engine.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use futures::future::join_all;
use serde::{Deserialize, Serialize};

use licensekit_core::{
    AssignmentFilter, CancellationToken, ChangeAction, ChangeObserver, ChangeReport, ChangeRequest,
    Error, HolderId, ItemOutcome, LicenseProvider, Outcome, OutcomeCounts, ProductId, ProviderKind,
    Result,
};

use super::{Fingerprint, PLAN_VERSION, PendingChange, Plan};

/// Told before and after each change an apply sends (the CLI keeps a journal per step).
pub trait ApplyHooks: Send + Sync + fmt::Debug {
    /// Before `step` is sent: the observer to give its [`ChangeRequest`], if any. `Err` sends
    /// nothing more: this step and every later one are held back with the message.
    fn before(&self, step: &Step) -> std::result::Result<Option<Arc<dyn ChangeObserver>>, String>;
    /// After `step` ran: its report, or the error with which nothing was changed.
    fn after(&self, step: &Step, result: std::result::Result<&ChangeReport, &Error>);
}

/// How to apply a plan.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct ApplyOptions {
    /// Apply the fitting part of a product short of seats (adds in the plan's shortfall order,
    /// up to the free seats, and its removes). Without it such a product is not changed at all.
    pub partial: bool,
    /// Stops the apply: no new batch or step starts; batches in flight finish.
    pub cancel: Option<CancellationToken>,
    /// Called before each step is sent and after it settles (to confirm, journal, or refuse); `None` = no hooks.
    pub hooks: Option<Arc<dyn ApplyHooks>>,
}

impl ApplyOptions {
    /// Whether to apply the fitting part of a product short of seats (see the `partial` field).
    pub fn partial(mut self, partial: bool) -> Self {
        self.partial = partial;
        self
    }
    /// Lets `cancel` stop the apply between batches and steps.
    pub fn with_cancel(mut self, cancel: CancellationToken) -> Self {
        self.cancel = Some(cancel);
        self
    }
    /// Calls `hooks` around every step.
    pub fn with_hooks(mut self, hooks: Arc<dyn ApplyHooks>) -> Self {
        self.hooks = Some(hooks);
        self
    }
}

/// One change an apply sends: one action on one product for some holders.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    /// The vendor the step runs at.
    pub provider: ProviderKind,
    /// The product whose seats change.
    pub product_id: ProductId,
    /// Assign or revoke.
    pub action: ChangeAction,
    /// The policies whose changes these are.
    pub policies: Vec<String>,
    /// The holders changed, in the plan's order.
    pub holders: Vec<HolderId>,
}

/// A step and how it went: the bulk engine's per-item report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AppliedStep {
    /// The policies whose changes the step carried.
    pub policies: Vec<String>,
    /// The bulk engine's report: one outcome per holder.
    pub report: ChangeReport,
}

/// Planned changes not sent, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HeldBack {
    /// The vendor of the product.
    pub provider: ProviderKind,
    /// The product not changed.
    pub product_id: ProductId,
    /// Assign or revoke.
    pub action: ChangeAction,
    /// The policy whose changes these are (`None`: all of the product's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
    /// The holders not changed.
    pub holders: Vec<HolderId>,
    /// Why they were not changed.
    pub reason: HeldBackReason,
}

/// Why planned changes were not sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum HeldBackReason {
    /// The policy changes more holders than its `max_changes`.
    MaxChanges {
        /// The policy's limit.
        max_changes: usize,
        /// The changes it would have made.
        changes: usize,
    },
    /// The product is short of seats (without `partial`: nothing of it is changed; with it:
    /// these adds did not fit).
    CapacityShortfall {
        /// Seats missing for every add to fit.
        seats_short: u64,
    },
    /// The apply stopped before this step (a hook refused it).
    NotSent {
        /// Why, as the hook said it.
        message: String,
    },
}

impl fmt::Display for HeldBackReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HeldBackReason::MaxChanges {
                max_changes,
                changes,
            } => write!(
                f,
                "the policy changes {changes} holders, more than its max_changes of {max_changes}"
            ),
            HeldBackReason::CapacityShortfall { seats_short } => write!(
                f,
                "the product is {seats_short} seat{} short",
                if *seats_short == 1 { "" } else { "s" }
            ),
            HeldBackReason::NotSent { message } => write!(f, "not sent: {message}"),
        }
    }
}

/// What an apply did: every planned change is in exactly one step's report or in `held_back`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApplyReport {
    /// When the plan being applied was computed.
    pub plan_created_at: DateTime<Utc>,
    /// When the apply started (UTC).
    pub started_at: DateTime<Utc>,
    /// When the apply finished (UTC).
    pub finished_at: DateTime<Utc>,
    /// Per product in the plan's order: its revoke, then its assign.
    pub steps: Vec<AppliedStep>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    /// Planned changes not sent, with why.
    pub held_back: Vec<HeldBack>,
    /// Cancelled: steps not started have every item `Failed(Cancelled)`.
    pub interrupted: bool,
}

impl ApplyReport {
    /// Outcome counts over every step.
    pub fn counts(&self) -> OutcomeCounts {
        let mut counts = OutcomeCounts::default();
        for step in &self.steps {
            for item in &step.report.items {
                counts.add(item.outcome.status());
            }
        }
        counts
    }

    /// Planned changes held back.
    pub fn held_back_count(&self) -> usize {
        self.held_back.iter().map(|h| h.holders.len()).sum()
    }

    /// Every item sent ended in the requested state (or pending), and nothing was held back.
    pub fn is_complete_success(&self) -> bool {
        self.held_back.is_empty()
            && !self.interrupted
            && self.steps.iter().all(|s| s.report.is_complete_success())
    }

    /// Items the vendor completes asynchronously, with their references: pass them to the
    /// next plan ([`super::PlanOptions::pending`]).
    pub fn pending(&self) -> Vec<PendingChange> {
        self.steps
            .iter()
            .flat_map(|s| {
                s.report.items.iter().filter_map(|i| match &i.outcome {
                    Outcome::Pending { reference } => Some(PendingChange {
                        provider: s.report.provider,
                        product_id: s.report.product.clone(),
                        action: s.report.action,
                        holder: i.holder.clone(),
                        reference: reference.clone(),
                    }),
                    _ => None,
                })
            })
            .collect()
    }

    /// The report as pretty JSON (a stable form for journals and CI).
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("the apply report serializes")
    }
}

/// A product whose holders changed since the plan was made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Drift {
    /// The product's vendor.
    pub provider: ProviderKind,
    /// The product whose holders changed.
    pub product_id: ProductId,
    /// The holders as the plan observed them.
    pub planned: Fingerprint,
    /// The holders now.
    pub now: Fingerprint,
}

/// Why an apply sent nothing.
#[derive(Debug)]
#[non_exhaustive]
pub enum ApplyError {
    /// The holders of these products changed since the plan was made: re-plan.
    Drifted(Vec<Drift>),
    /// The plan cannot be applied here (a newer plan version, a provider not configured), or
    /// re-reading the state failed.
    Failed(Error),
}

impl fmt::Display for ApplyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ApplyError::Drifted(drifts) => {
                let named: Vec<String> = drifts
                    .iter()
                    .map(|d| {
                        format!(
                            "{} {} ({} holders planned, {} now)",
                            d.provider, d.product_id, d.planned.holders, d.now.holders
                        )
                    })
                    .collect();
                write!(
                    f,
                    "the state changed since the plan was made: {}; nothing was changed; plan again (or apply with --refresh)",
                    named.join(", ")
                )
            }
            ApplyError::Failed(e) => write!(f, "nothing was changed: {e}"),
        }
    }
}

impl std::error::Error for ApplyError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ApplyError::Failed(e) => Some(e),
            ApplyError::Drifted(_) => None,
        }
    }
}

impl From<Error> for ApplyError {
    fn from(e: Error) -> Self {
        ApplyError::Failed(e)
    }
}

/// The steps of one product, with what is held back.
struct ProductWork {
    provider: ProviderKind,
    product_id: ProductId,
    revoke: Step,
    assign: Step,
}

impl Plan {
    /// The work an apply does, with what it holds back (max_changes, shortfall).
    fn work(&self, partial: bool) -> (Vec<ProductWork>, Vec<HeldBack>) {
        let mut work = Vec::new();
        let mut held_back = Vec::new();
        for product in &self.products {
            let step = |action| Step {
                provider: product.provider,
                product_id: product.product_id.clone(),
                action,
                policies: Vec::new(),
                holders: Vec::new(),
            };
            let mut w = ProductWork {
                provider: product.provider,
                product_id: product.product_id.clone(),
                revoke: step(ChangeAction::Revoke),
                assign: step(ChangeAction::Assign),
            };
            let short = product.capacity.shortfall();
            let not_fitting: BTreeSet<(&str, &HolderId)> = product
                .capacity
                .not_fitting
                .iter()
                .map(|n| (n.policy.as_str(), &n.holder))
                .collect();
            let mut assigned: BTreeSet<&HolderId> = BTreeSet::new();
            let mut revoked: BTreeSet<&HolderId> = BTreeSet::new();
            for policy in self
                .policies
                .iter()
                .filter(|p| p.provider == product.provider && p.product_id == product.product_id)
            {
                let hold = |action, holders: Vec<HolderId>, reason: HeldBackReason| HeldBack {
                    provider: product.provider,
                    product_id: product.product_id.clone(),
                    action,
                    policy: Some(policy.name.clone()),
                    holders,
                    reason,
                };
                let ids = |changes: &[super::PlannedChange]| -> Vec<HolderId> {
                    changes.iter().map(|c| c.holder.clone()).collect()
                };
                if let Some(stopped) = policy.stopped {
                    let reason = HeldBackReason::MaxChanges {
                        max_changes: stopped.max_changes,
                        changes: stopped.changes,
                    };
                    for (action, changes) in [
                        (ChangeAction::Revoke, &policy.removes),
                        (ChangeAction::Assign, &policy.adds),
                    ] {
                        if !changes.is_empty() {
                            held_back.push(hold(action, ids(changes), reason.clone()));
                        }
                    }
                    continue;
                }
                if short > 0 && !partial {
                    let reason = HeldBackReason::CapacityShortfall { seats_short: short };
                    for (action, changes) in [
                        (ChangeAction::Revoke, &policy.removes),
                        (ChangeAction::Assign, &policy.adds),
                    ] {
                        if !changes.is_empty() {
                            held_back.push(hold(action, ids(changes), reason.clone()));
                        }
                    }
                    continue;
                }
                let mut took = false;
                for c in &policy.removes {
                    if revoked.insert(&c.holder) {
                        w.revoke.holders.push(c.holder.clone());
                        took = true;
                    }
                }
                if took {
                    w.revoke.policies.push(policy.name.clone());
                }
                let mut took = false;
                let mut left_out = Vec::new();
                for c in &policy.adds {
                    if not_fitting.contains(&(policy.name.as_str(), &c.holder)) {
                        left_out.push(c.holder.clone());
                    } else if assigned.insert(&c.holder) {
                        w.assign.holders.push(c.holder.clone());
                        took = true;
                    }
                }
                if took {
                    w.assign.policies.push(policy.name.clone());
                }
                if !left_out.is_empty() {
                    held_back.push(hold(
                        ChangeAction::Assign,
                        left_out,
                        HeldBackReason::CapacityShortfall { seats_short: short },
                    ));
                }
            }
            if !w.revoke.holders.is_empty() || !w.assign.holders.is_empty() {
                work.push(w);
            }
        }
        (work, held_back)
    }

    /// Applies the plan: re-reads the holders of every product it changes and refuses with
    /// [`ApplyError::Drifted`] if any changed; holds back what `max_changes` and the capacity
    /// check stop; then, product by product, revokes and then assigns through the provider's
    /// bulk engine. `Err` only when nothing was sent.
    pub async fn apply(
        &self,
        providers: &[&dyn LicenseProvider],
        options: &ApplyOptions,
    ) -> std::result::Result<ApplyReport, ApplyError> {
        if self.plan_version != PLAN_VERSION {
            return Err(Error::config(format!(
                "plan version {} is not one this licensekit applies (it applies {PLAN_VERSION})",
                self.plan_version
            ))
            .into());
        }
        let started_at = Utc::now();
        let (work, mut held_back) = self.work(options.partial);
        let provider_of = |kind: ProviderKind| -> Result<&dyn LicenseProvider> {
            let matching: Vec<&dyn LicenseProvider> = providers
                .iter()
                .copied()
                .filter(|p| p.kind() == kind)
                .collect();
            match matching.as_slice() {
                [one] => Ok(*one),
                [] => Err(Error::config(format!(
                    "the plan changes {kind}, which is not configured"
                ))),
                _ => Err(Error::config(format!(
                    "several {kind} providers are configured; a plan names providers by kind"
                ))),
            }
        };

        // Drift: the holders of every product to change, read again.
        let mut by_provider: BTreeMap<ProviderKind, Vec<&ProductId>> = BTreeMap::new();
        for w in &work {
            by_provider
                .entry(w.provider)
                .or_default()
                .push(&w.product_id);
        }
        let mut reads = Vec::new();
        for (kind, products) in &by_provider {
            reads.push(fingerprints(provider_of(*kind)?, products));
        }
        let mut now: HashMap<(ProviderKind, ProductId), Fingerprint> = HashMap::new();
        for (kind, read) in by_provider.keys().zip(join_all(reads).await) {
            for (product, fingerprint) in read? {
                now.insert((*kind, product), fingerprint);
            }
        }
        let drifted: Vec<Drift> = self
            .products
            .iter()
            .filter_map(|p| {
                let current = now.get(&(p.provider, p.product_id.clone()))?;
                (current != &p.fingerprint).then(|| Drift {
                    provider: p.provider,
                    product_id: p.product_id.clone(),
                    planned: p.fingerprint.clone(),
                    now: current.clone(),
                })
            })
            .collect();
        if !drifted.is_empty() {
            return Err(ApplyError::Drifted(drifted));
        }

        let cancel = options.cancel.clone().unwrap_or_default();
        let mut steps = Vec::new();
        let mut stopped: Option<String> = None;
        for w in work {
            let provider = provider_of(w.provider)?;
            for step in [w.revoke, w.assign] {
                if step.holders.is_empty() {
                    continue;
                }
                if let Some(message) = &stopped {
                    held_back.push(HeldBack {
                        provider: step.provider,
                        product_id: step.product_id.clone(),
                        action: step.action,
                        policy: None,
                        holders: step.holders,
                        reason: HeldBackReason::NotSent {
                            message: message.clone(),
                        },
                    });
                    continue;
                }
                if cancel.is_cancelled() {
                    steps.push(cancelled_step(step));
                    continue;
                }
                let observer = match &options.hooks {
                    None => None,
                    Some(hooks) => match hooks.before(&step) {
                        Ok(observer) => observer,
                        Err(message) => {
                            stopped = Some(message.clone());
                            held_back.push(HeldBack {
                                provider: step.provider,
                                product_id: step.product_id.clone(),
                                action: step.action,
                                policy: None,
                                holders: step.holders,
                                reason: HeldBackReason::NotSent { message },
                            });
                            continue;
                        }
                    },
                };
                let mut request =
                    ChangeRequest::new(step.action, step.product_id.clone(), step.holders.clone())
                        .with_cancel(cancel.clone());
                if let Some(observer) = observer {
                    request = request.with_observer(observer);
                }
                let result = provider.change(request).await;
                if let Some(hooks) = &options.hooks {
                    hooks.after(&step, result.as_ref());
                }
                let report = match result {
                    Ok(report) => report,
                    // Nothing of this step was changed: every item failed with the reason.
                    Err(e) => {
                        let e = Arc::new(e);
                        ChangeReport::new(
                            step.provider,
                            step.product_id.clone(),
                            step.action,
                            step.holders
                                .iter()
                                .map(|h| ItemOutcome::new(h.clone(), Outcome::Failed(e.clone())))
                                .collect(),
                        )
                    }
                };
                steps.push(AppliedStep {
                    policies: step.policies,
                    report,
                });
            }
        }
        Ok(ApplyReport {
            plan_created_at: self.created_at,
            started_at,
            finished_at: Utc::now(),
            steps,
            held_back,
            interrupted: cancel.is_cancelled(),
        })
    }
}

/// A step never started because the apply was cancelled: nothing sent.
fn cancelled_step(step: Step) -> AppliedStep {
    let error = Arc::new(Error::Cancelled {
        provider: step.provider,
    });
    let mut report = ChangeReport::new(
        step.provider,
        step.product_id,
        step.action,
        step.holders
            .into_iter()
            .map(|h| ItemOutcome::new(h, Outcome::Failed(error.clone())))
            .collect(),
    );
    report.interrupted = true;
    AppliedStep {
        policies: step.policies,
        report,
    }
}

/// The fingerprints of `products` at one provider: one listing filtered by the product when
/// there is one product, else one listing of everything (Genesys lists org-wide either way).
async fn fingerprints(
    provider: &dyn LicenseProvider,
    products: &[&ProductId],
) -> Result<Vec<(ProductId, Fingerprint)>> {
    let filter = match products {
        [one] => AssignmentFilter::product((*one).clone()),
        _ => AssignmentFilter::all(),
    };
    let wanted: BTreeSet<&ProductId> = products.iter().copied().collect();
    let mut held: BTreeMap<ProductId, BTreeSet<HolderId>> = BTreeMap::new();
    let mut stream = provider.assignments(filter);
    while let Some(a) = stream.try_next().await? {
        if wanted.contains(&a.product) {
            held.entry(a.product).or_default().insert(a.holder.id);
        }
    }
    Ok(products
        .iter()
        .map(|p| {
            (
                (*p).clone(),
                Fingerprint::of(held.get(*p).into_iter().flatten()),
            )
        })
        .collect())
}

/// Settles Apple pending changes by polling their events ([`AppleVppProvider::settle_pending`](crate::apple_vpp::AppleVppProvider::settle_pending)):
/// returns those still pending, and those that settled with their outcomes. Changes of other
/// providers, or of an Apple provider not among `providers`, stay pending.
#[cfg(feature = "apple-vpp")]
pub async fn settle_pending(
    providers: &[&crate::AnyProvider],
    pending: Vec<PendingChange>,
) -> (Vec<PendingChange>, Vec<(PendingChange, Outcome)>) {
    let apple = providers.iter().find_map(|p| match p {
        crate::AnyProvider::AppleVpp(a) => Some(a),
        _ => None,
    });
    let Some(apple) = apple else {
        return (pending, Vec::new());
    };
    let mut still = Vec::new();
    let mut settled = Vec::new();
    let mut groups: BTreeMap<(String, bool), Vec<PendingChange>> = BTreeMap::new();
    for p in pending {
        if p.provider == licensekit_apple_vpp::KIND {
            groups
                .entry((
                    p.product_id.as_str().to_owned(),
                    p.action == ChangeAction::Assign,
                ))
                .or_default()
                .push(p);
        } else {
            still.push(p);
        }
    }
    for ((product, _), group) in groups {
        let report = ChangeReport::new(
            licensekit_apple_vpp::KIND,
            ProductId::new(product),
            group[0].action,
            group
                .iter()
                .map(|p| {
                    ItemOutcome::new(
                        p.holder.clone(),
                        Outcome::Pending {
                            reference: p.reference.clone(),
                        },
                    )
                })
                .collect(),
        );
        match apple.settle_pending(report).await {
            Ok(report) => {
                for (p, item) in group.into_iter().zip(report.items) {
                    match item.outcome {
                        Outcome::Pending { .. } => still.push(p),
                        outcome => settled.push((p, outcome)),
                    }
                }
            }
            Err(_) => still.extend(group),
        }
    }
    (still, settled)
}
