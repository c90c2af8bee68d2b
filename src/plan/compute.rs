//! Computing a plan: reading the providers, selecting holders, changes per policy, capacity
//! per product.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::Utc;
use futures::future::join_all;

use licensekit_core::{
    Capabilities, ChangeAction, Error, HolderId, LicenseProvider, Product, ProductId, Provenance,
    ProviderKind, Result,
};

use super::{
    Capacity, ChangeReason, DesiredState, Fingerprint, Mode, PLAN_VERSION, PendingChange, Plan,
    PlanOptions, PlannedAdd, PlannedChange, Policy, PolicyPlan, ProductPlan, Stopped, Unmanaged,
    Unmatched, UnmatchedReason,
};
use crate::report::{Collected, PersonKeys, ReclaimReason, Report, collect_one, normalize_email};

/// What one provider's data looks like to the planner.
struct View<'a> {
    collected: &'a Collected,
    capabilities: Capabilities,
    /// Holders per product.
    held: HashMap<&'a ProductId, BTreeSet<HolderId>>,
    /// Person key (the report's) -> user accounts with that email, sorted.
    persons: HashMap<String, Vec<HolderId>>,
}

impl<'a> View<'a> {
    fn new(
        collected: &'a Collected,
        capabilities: Capabilities,
        identity: &PersonKeys,
    ) -> View<'a> {
        let mut held: HashMap<&ProductId, BTreeSet<HolderId>> = HashMap::new();
        for seat in &collected.seats {
            held.entry(collected.product_id(seat.product))
                .or_default()
                .insert(collected.holders.at(seat.holder).id());
        }
        let mut persons: HashMap<String, Vec<HolderId>> = HashMap::new();
        for holder in collected.holders.iter().filter(|h| !h.is_device()) {
            if let Some(key) = holder.email().and_then(|e| identity.key(e)) {
                persons.entry(key).or_default().push(holder.id());
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
        self.collected.holders.get(holder)?.email()
    }

    fn inactive(&self, holder: &HolderId) -> bool {
        self.collected
            .holders
            .get(holder)
            .is_some_and(|h| h.active() == Some(false))
    }

    fn not_in_directory(&self, holder: &HolderId) -> bool {
        matches!(holder, HolderId::User(_))
            && self.collected.has_directory
            && !self
                .collected
                .holders
                .get(holder)
                .is_some_and(|h| h.in_directory())
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
            email: known.and_then(|h| h.email()).map(str::to_owned),
            display_name: known.and_then(|h| h.display_name()).map(str::to_owned),
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
            email: known.and_then(|h| h.email()).map(str::to_owned),
            display_name: known.and_then(|h| h.display_name()).map(str::to_owned),
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
    identity: &PersonKeys,
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
        match identity.key(email) {
            None => {
                sel.unmatched
                    .insert(unmatched(UnmatchedReason::InvalidEmail));
            }
            Some(person) => match target.persons.get(&person).map(Vec::as_slice) {
                None | Some([]) => {
                    sel.unmatched.insert(unmatched(UnmatchedReason::NoAccount));
                }
                Some([one]) => sel.want(one.clone(), target),
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
        if !(target.collected.has_directory && caps.holder_directory) {
            return Err(Error::config(format!(
                "policy `{name}`: {kind} has no user directory to take `who.all_active` from"
            )));
        }
        ruled.extend(
            target
                .collected
                .holders
                .iter()
                .filter(|h| h.in_directory() && h.active() != Some(false))
                .map(|h| h.id()),
        );
    }
    for source in &who.holders_of {
        let view = views
            .get(&source.provider)
            .expect("every provider a rule names was read");
        let product = view.product(&source.product, name)?;
        if product.is_assigned_to_all_users() {
            // Its assignment rows are leftovers, not who holds it (vendor spec §1.6): selecting
            // by them would pick an arbitrary few of the people who all hold it.
            return Err(Error::config(format!(
                "policy `{name}`: `holders_of` {} `{}`: the vendor gives that product to every user, so its assignments do not say who holds it; select with `all_active` or `users` instead",
                source.provider, source.product
            )));
        }
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
            let Some(person) = view.email_of(holder).and_then(|e| identity.key(e)) else {
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
                    ruled.insert(one.clone());
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

/// A product at a provider.
type ProductKey = (ProviderKind, ProductId);

/// The one provider of each kind the desired state names (policies and rules).
fn providers_named<'p>(
    providers: &[&'p dyn LicenseProvider],
    desired: &DesiredState,
) -> Result<Vec<&'p dyn LicenseProvider>> {
    let mut chosen: Vec<&dyn LicenseProvider> = Vec::new();
    for policy in &desired.policies {
        let kinds = std::iter::once(policy.provider)
            .chain(policy.who.holders_of.iter().map(|r| r.provider));
        for kind in kinds {
            if chosen.iter().any(|p| p.kind() == kind) {
                continue;
            }
            let matching: Vec<&dyn LicenseProvider> = providers
                .iter()
                .copied()
                .filter(|p| p.kind() == kind)
                .collect();
            match matching.as_slice() {
                [] => {
                    return Err(Error::config(format!(
                        "policy `{}` names provider {kind}, which is not configured",
                        policy.display_name()
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
    }
    Ok(chosen)
}

/// The products in the order they are planned: a rule reading a product another policy manages
/// reads it as the plan leaves it, so a product comes after the products its rules read (a
/// cycle is an error). Otherwise in the order of the first policy naming each.
fn planning_order(
    desired: &DesiredState,
    names: &[String],
    targets: &[ProductKey],
    views: &HashMap<ProviderKind, View<'_>>,
) -> Result<Vec<ProductKey>> {
    let mut products: Vec<&ProductKey> = Vec::new();
    for t in targets {
        if !products.contains(&t) {
            products.push(t);
        }
    }
    let managed: BTreeSet<&ProductKey> = targets.iter().collect();
    let mut reads: BTreeMap<&ProductKey, BTreeSet<ProductKey>> = BTreeMap::new();
    for ((policy, name), target) in desired.policies.iter().zip(names).zip(targets) {
        for r in &policy.who.holders_of {
            let source = (
                r.provider,
                views[&r.provider].product(&r.product, name)?.id.clone(),
            );
            if &source != target && managed.contains(&source) {
                reads.entry(target).or_default().insert(source);
            }
        }
    }
    let mut order: Vec<ProductKey> = Vec::new();
    while order.len() < products.len() {
        let before = order.len();
        for k in &products {
            if !order.contains(k)
                && reads
                    .get(k)
                    .is_none_or(|r| r.iter().all(|x| order.contains(x)))
            {
                order.push((*k).clone());
            }
        }
        if order.len() == before {
            let cycle: Vec<String> = products
                .iter()
                .filter(|k| !order.contains(k))
                .map(|(kind, id)| format!("{kind} {id}"))
                .collect();
            return Err(Error::config(format!(
                "the rules of the policies on {} read each other's products in a cycle",
                cycle.join(", ")
            )));
        }
    }
    Ok(order)
}

/// One policy's changes from who it selects and who holds the product, with its claims for the
/// conflict check. Changes still pending at the vendor are listed, not planned again.
#[allow(clippy::too_many_arguments)]
fn plan_policy<'n>(
    policy: &Policy,
    name: &'n str,
    product: &Product,
    target: &View<'_>,
    sel: Selection,
    report: &Report,
    pending: &[PendingChange],
    default_max_changes: Option<usize>,
) -> (PolicyPlan, Claims<'n>) {
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
    let mut unmatched = sel.unmatched;
    let mut unchanged;
    let mut claim = Claims {
        name,
        wanted: BTreeSet::new(),
        exclusive: policy.mode == Mode::Exact,
        unwanted: flagged.keys().map(|h| (*h).clone()).collect(),
    };
    let reclaim = |h: &HolderId| {
        flagged
            .get(h)
            .map(|reason| target.change(h, ChangeReason::Reclaim, Some(*reason)))
    };
    match policy.mode {
        Mode::Exact | Mode::Ensure => {
            let wanted: BTreeSet<&HolderId> = sel
                .wanted
                .iter()
                .filter(|h| !flagged.contains_key(h))
                .collect();
            for h in wanted.iter().filter(|h| !held.contains(**h)) {
                match sel.blocked.get(*h) {
                    Some(reason) => {
                        unmatched.insert(target.unmatched(h, *reason));
                    }
                    None => adds.push(target.change(h, ChangeReason::Selected, None)),
                }
            }
            for h in &held {
                if let Some(change) = reclaim(h) {
                    removes.push(change);
                } else if policy.mode == Mode::Exact && !wanted.contains(h) {
                    removes.push(target.change(h, ChangeReason::NotSelected, None));
                }
            }
            unchanged = wanted.iter().filter(|h| held.contains(**h)).count() as u64;
            claim.wanted = wanted.into_iter().cloned().collect();
        }
        Mode::Absent => {
            for h in &held {
                if let Some(change) = reclaim(h) {
                    removes.push(change);
                } else if sel.wanted.contains(h) {
                    removes.push(target.change(h, ChangeReason::Listed, None));
                }
            }
            unchanged = sel.wanted.iter().filter(|h| !held.contains(*h)).count() as u64;
            claim.unwanted.extend(sel.wanted.iter().cloned());
        }
    }

    let pending_of = |action: ChangeAction, holder: &HolderId| {
        pending.iter().find(|p| {
            p.provider == policy.provider
                && p.product_id == product.id
                && p.action == action
                && &p.holder == holder
        })
    };
    let mut still_pending = Vec::new();
    for (action, changes) in [
        (ChangeAction::Assign, &mut adds),
        (ChangeAction::Revoke, &mut removes),
    ] {
        changes.retain(|c| match pending_of(action, &c.holder) {
            Some(p) => {
                still_pending.push(p.clone());
                false
            }
            None => true,
        });
    }
    // The vendor gives the product to every user and refuses or ignores per-holder changes (a
    // Salesforce site license, vendor spec §1.4): its listing is no roster, so planning against
    // it would add the same people on every run. Nothing is planned; what would have been is said.
    let unmanaged = product.is_assigned_to_all_users().then(|| {
        let unmanaged = Unmanaged {
            not_added: adds.len(),
            not_removed: removes.len(),
        };
        // Every user holds it: the holders it would have added already have it.
        unchanged += adds.len() as u64;
        adds.clear();
        removes.clear();
        unmanaged
    });
    let max_changes = policy.max_changes.or(default_max_changes);
    let changes = adds.len() + removes.len();
    let plan = PolicyPlan {
        name: name.to_owned(),
        provider: policy.provider,
        product_id: product.id.clone(),
        product_name: product.name.clone(),
        mode: policy.mode,
        adds,
        removes,
        unchanged,
        unmatched: unmatched.into_iter().collect(),
        pending: still_pending,
        max_changes,
        stopped: max_changes
            .filter(|limit| changes > *limit)
            .map(|limit| Stopped {
                max_changes: limit,
                changes,
            }),
        unmanaged,
    };
    (plan, claim)
}

/// One product: its fingerprint, and the capacity check over the changes of its policies that
/// are not stopped.
fn plan_product(
    kind: ProviderKind,
    product: &Product,
    view: &View<'_>,
    mine: &[(&PolicyPlan, &Policy)],
    report: &Report,
    pending: &[PendingChange],
) -> Result<ProductPlan> {
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
    let free_after = total.map(|t| t as i64 - row.assigned as i64 + removes as i64 - adds as i64);
    let not_fitting = match free_after {
        Some(free) if free < 0 => {
            let fit = add_order.len() - (free.unsigned_abs() as usize).min(add_order.len());
            add_order.split_off(fit)
        }
        _ => Vec::new(),
    };
    Ok(ProductPlan {
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
        pending: pending
            .iter()
            .filter(|p| p.provider == kind && p.product_id == product.id)
            .cloned()
            .collect(),
        assigned_to_all_users: product.is_assigned_to_all_users(),
    })
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
        let chosen = providers_named(providers, desired)?;
        let read = join_all(chosen.iter().map(|p| collect_one(*p, progress))).await;
        let collected: Vec<Collected> = read.into_iter().collect::<Result<_>>()?;
        let report = Report::build(&collected, Vec::new(), &options.identity);
        let keys = PersonKeys::new(&options.identity);
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
            .map(|(c, p)| (c.provider, View::new(c, p.capabilities(), &keys)))
            .collect();

        let names: Vec<String> = desired.policies.iter().map(Policy::display_name).collect();
        let mut targets: Vec<ProductKey> = Vec::new();
        let mut products_in_order: Vec<(ProviderKind, &Product)> = Vec::new();
        for (policy, name) in desired.policies.iter().zip(&names) {
            let product = views[&policy.provider].product(&policy.product, name)?;
            targets.push((policy.provider, product.id.clone()));
            if !products_in_order
                .iter()
                .any(|(k, p)| *k == policy.provider && p.id == product.id)
            {
                products_in_order.push((policy.provider, product));
            }
        }
        let order = planning_order(desired, &names, &targets, &views)?;

        let mut plans: Vec<Option<PolicyPlan>> = desired.policies.iter().map(|_| None).collect();
        let mut planned: HashMap<ProductKey, BTreeSet<HolderId>> = HashMap::new();
        let mut claims: BTreeMap<ProductKey, Vec<Claims<'_>>> = BTreeMap::new();
        for k in &order {
            for (i, (policy, name)) in desired.policies.iter().zip(&names).enumerate() {
                if targets[i] != *k {
                    continue;
                }
                let target = &views[&policy.provider];
                let product = target.product(&policy.product, name)?;
                let source_holders = |source: ProviderKind, id: &ProductId| {
                    let wanted = (source, id.clone());
                    match planned.get(&wanted) {
                        Some(holders) if wanted != *k => holders.clone(),
                        _ => views[&source].holders_of(id),
                    }
                };
                let sel = select(policy, name, target, &views, &keys, &source_holders)?;
                let (plan, claim) = plan_policy(
                    policy,
                    name,
                    product,
                    target,
                    sel,
                    &report,
                    &options.pending,
                    desired.max_changes,
                );
                plans[i] = Some(plan);
                claims.entry(k.clone()).or_default().push(claim);
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
        for p in &policies {
            if let Some(unmanaged) = &p.unmanaged {
                warnings.push(format!(
                    "policy `{}`: {} {} ({}): {unmanaged}",
                    p.name, p.provider, p.product_name, p.product_id
                ));
            }
        }

        let mut products = Vec::new();
        for (kind, product) in products_in_order {
            let mine: Vec<(&PolicyPlan, &Policy)> = policies
                .iter()
                .zip(&desired.policies)
                .filter(|(p, _)| p.provider == kind && p.product_id == product.id)
                .collect();
            products.push(plan_product(
                kind,
                product,
                &views[&kind],
                &mine,
                &report,
                &options.pending,
            )?);
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
}
