//! Desired state, plan and apply: on the in-memory provider, then on all three simulators
//! (plan → apply → the vendors' state is the desired one; a second plan is empty; drift refused;
//! a capacity shortfall named before any change; `max_changes`; 20 % injected faults; Apple's
//! pending events; a cross-vendor rule through aliases).

// Simulator tests are gated on the three providers; helpers serve whichever are compiled in.
#![allow(unused_imports, dead_code)]

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use licensekit::plan::{
    ApplyError, ApplyHooks, ApplyOptions, ApplyReport, ChangeReason, DesiredState, HeldBackReason,
    PendingChange, Plan, PlanOptions, PlannedAdd, PlannedChange, Step, UnmatchedReason,
};
use licensekit::report::ReportOptions;
use licensekit::{
    CancellationToken, ChangeAction, ChangeObserver, ChangeReport, ErrorKind, HolderId,
    InMemoryProvider, LicenseProvider, LicenseProviderExt, MemoryConfig, MemoryProduct, MemoryUser,
    OutcomeStatus, ProductId, ProviderKind,
};

fn desired(text: &str) -> DesiredState {
    DesiredState::from_toml(text, "test.toml").unwrap()
}

fn u(id: &str) -> HolderId {
    HolderId::user(id)
}

fn users<const N: usize>(ids: [&str; N]) -> BTreeSet<HolderId> {
    ids.into_iter().map(u).collect()
}

fn holders(changes: &[PlannedChange]) -> Vec<&str> {
    changes.iter().map(|c| c.holder.as_str()).collect()
}

/// A memory org: products (id, seats), users (id, email, active), assignments (made while
/// every user is active; then the inactive ones are marked so).
async fn memory(
    products: &[(&str, Option<u64>)],
    people: &[(&str, &str, bool)],
    held: &[(&str, &str)],
) -> InMemoryProvider {
    let p = InMemoryProvider::new(MemoryConfig {
        products: products
            .iter()
            .map(|(id, seats)| MemoryProduct {
                id: id.to_string(),
                name: id.to_uppercase(),
                seats: *seats,
                device_assignable: true,
            })
            .collect(),
        users: people
            .iter()
            .map(|(id, email, _)| MemoryUser {
                id: id.to_string(),
                email: (!email.is_empty()).then(|| email.to_string()),
                name: Some(id.to_uppercase()),
                active: true,
                last_login: None,
            })
            .collect(),
        page_size: 3,
        ..MemoryConfig::default()
    })
    .unwrap();
    for (product, holder) in held {
        let report = p
            .assign(&ProductId::new(*product), &[u(holder)])
            .await
            .unwrap();
        assert!(report.is_complete_success(), "{report:?}");
    }
    for (id, _, active) in people {
        p.set_user_active(id, *active).unwrap();
    }
    p
}

async fn memory_org() -> InMemoryProvider {
    memory(
        &[("app", Some(10)), ("book", Some(3)), ("tool", None)],
        &[
            ("ada", "Ada@Example.com", true),
            ("bob", "bob@example.com", true),
            ("cy", "cy@example.com", false),
            ("dee", "dee@other.org", true),
            ("eve", "eve@example.com", true),
        ],
        &[
            ("app", "cy"),
            ("app", "dee"),
            ("book", "ada"),
            ("book", "bob"),
            ("tool", "eve"),
        ],
    )
    .await
}

const MEMORY_DESIRED: &str = r#"
version = 1

[[policy]]
name = "app-for-staff"
provider = "memory"
product = "app"
mode = "exact"
who.all_active = true
who.email_domains = ["example.com"]

[[policy]]
name = "book-for-eve"
provider = "memory"
product = "book"
mode = "ensure"
who.users = ["eve"]

[[policy]]
name = "no-tool-for-eve"
provider = "memory"
product = "tool"
mode = "absent"
who.emails = [" EVE@example.com "]
"#;

async fn compute_err(providers: &[&dyn LicenseProvider], text: &str) -> String {
    Plan::compute(providers, &desired(text), &PlanOptions::default())
        .await
        .unwrap_err()
        .to_string()
}

async fn plan_of(providers: &[&dyn LicenseProvider], d: &DesiredState) -> Plan {
    Plan::compute(providers, d, &PlanOptions::default())
        .await
        .unwrap()
}

/// Records the steps an apply runs, in order.
#[derive(Debug, Default)]
struct Recorder(Mutex<Vec<String>>);

impl ApplyHooks for Recorder {
    fn before(&self, step: &Step) -> Result<Option<Arc<dyn ChangeObserver>>, String> {
        self.0.lock().unwrap().push(format!(
            "before {} {} {}",
            step.action,
            step.product_id,
            step.holders.len()
        ));
        Ok(None)
    }
    fn after(&self, step: &Step, result: Result<&ChangeReport, &licensekit::Error>) {
        self.0.lock().unwrap().push(format!(
            "after {} {} {}",
            step.action,
            step.product_id,
            result.is_ok()
        ));
    }
}

#[tokio::test]
async fn memory_plan_then_apply_reaches_the_desired_state_and_the_next_plan_is_empty() {
    let m = memory_org().await;
    let providers: [&dyn LicenseProvider; 1] = [&m];
    let d = desired(MEMORY_DESIRED);
    let plan = plan_of(&providers, &d).await;

    let app = &plan.policies[0];
    assert_eq!(holders(&app.adds), ["ada", "bob", "eve"]);
    assert_eq!(
        holders(&app.removes),
        ["cy", "dee"],
        "inactive, other domain"
    );
    assert!(
        app.removes
            .iter()
            .all(|c| c.reason == ChangeReason::NotSelected)
    );
    assert_eq!(app.adds[0].email.as_deref(), Some("Ada@Example.com"));
    assert_eq!(holders(&plan.policies[1].adds), ["eve"]);
    assert_eq!(plan.policies[1].unchanged, 0);
    assert_eq!(holders(&plan.policies[2].removes), ["eve"]);
    assert_eq!(plan.policies[2].removes[0].reason, ChangeReason::Listed);
    let book = &plan.products[1];
    assert_eq!(
        (
            book.capacity.total,
            book.capacity.assigned,
            book.capacity.free_after
        ),
        (Some(3), 2, Some(0))
    );
    assert!(book.capacity.not_fitting.is_empty());
    assert!(plan.products[2].capacity.unlimited);
    assert_eq!(plan.summary().adds, 4);
    assert_eq!(plan.summary().removes, 3);

    let recorder = Arc::new(Recorder::default());
    let report = plan
        .apply(
            &providers,
            &ApplyOptions::default().with_hooks(recorder.clone()),
        )
        .await
        .unwrap();
    assert!(report.is_complete_success(), "{report:?}");
    assert_eq!(
        *recorder.0.lock().unwrap(),
        [
            "before revoke app 2",
            "after revoke app true",
            "before assign app 3",
            "after assign app true",
            "before assign book 1",
            "after assign book true",
            "before revoke tool 1",
            "after revoke tool true",
        ],
        "revokes before assigns on one product, products in plan order"
    );
    assert_eq!(
        m.holders_of(&ProductId::new("app")),
        users(["ada", "bob", "eve"])
    );
    assert_eq!(
        m.holders_of(&ProductId::new("book")),
        users(["ada", "bob", "eve"])
    );
    assert!(m.holders_of(&ProductId::new("tool")).is_empty());

    let again = plan_of(&providers, &d).await;
    assert!(again.is_empty(), "{:#?}", again.policies);
    assert_eq!(again.policies[0].unchanged, 3);
    let report = again
        .apply(&providers, &ApplyOptions::default())
        .await
        .unwrap();
    assert!(report.steps.is_empty() && report.held_back.is_empty());
}

#[tokio::test]
async fn a_drifted_state_is_refused_naming_the_product_and_a_new_plan_applies() {
    let m = memory_org().await;
    let providers: [&dyn LicenseProvider; 1] = [&m];
    let d = desired(MEMORY_DESIRED);
    let plan = plan_of(&providers, &d).await;
    // Someone else gives the book to dee after the plan was made.
    m.assign(&ProductId::new("book"), &[u("dee")])
        .await
        .unwrap();
    let before: Vec<_> = ["app", "book", "tool"]
        .iter()
        .map(|p| m.holders_of(&ProductId::new(*p)))
        .collect();
    let err = plan
        .apply(&providers, &ApplyOptions::default())
        .await
        .unwrap_err();
    let ApplyError::Drifted(drifts) = &err else {
        panic!("{err}")
    };
    assert_eq!(drifts.len(), 1, "{drifts:?}");
    assert_eq!(drifts[0].product_id.as_str(), "book");
    assert_eq!((drifts[0].planned.holders, drifts[0].now.holders), (2, 3));
    let text = err.to_string();
    assert!(
        text.contains("memory book (2 holders planned, 3 now)"),
        "{text}"
    );
    let after: Vec<_> = ["app", "book", "tool"]
        .iter()
        .map(|p| m.holders_of(&ProductId::new(*p)))
        .collect();
    assert_eq!(before, after, "nothing was changed");

    // Re-planning (what `apply --refresh` does) sees the book full and says who does not fit.
    let fresh = plan_of(&providers, &d).await;
    let book = &fresh.products[1];
    assert_eq!(
        book.capacity.not_fitting,
        [PlannedAdd {
            policy: "book-for-eve".into(),
            holder: u("eve")
        }]
    );
    let report = fresh
        .apply(&providers, &ApplyOptions::default())
        .await
        .unwrap();
    assert_eq!(report.held_back.len(), 1);
    assert_eq!(
        m.holders_of(&ProductId::new("app")),
        users(["ada", "bob", "eve"])
    );
}

#[tokio::test]
async fn a_capacity_shortfall_is_named_before_any_change_and_partial_applies_what_fits() {
    let people: Vec<(String, String)> = (1..=9)
        .map(|i| (format!("u{i}"), format!("u{i}@example.com")))
        .collect();
    let people: Vec<(&str, &str, bool)> = people
        .iter()
        .map(|(id, email)| (id.as_str(), email.as_str(), true))
        .collect();
    let m = memory(
        &[("app", Some(4)), ("other", None)],
        &people,
        &[("app", "u1"), ("app", "u2"), ("app", "u3")],
    )
    .await;
    let providers: [&dyn LicenseProvider; 1] = [&m];
    // Room: 4 seats - 3 held + 1 removed = 2, for the 4 adds of two policies.
    let d = desired(
        r#"
version = 1
[[policy]]
name = "first"
provider = "memory"
product = "app"
mode = "ensure"
who.users = ["u9"]
reclaim = []
[[policy]]
name = "second"
provider = "memory"
product = "app"
mode = "ensure"
who.users = ["u6", "u4", "u5", "u2"]
[[policy]]
name = "third"
provider = "memory"
product = "app"
mode = "absent"
who.users = ["u1"]
[[policy]]
name = "elsewhere"
provider = "memory"
product = "other"
mode = "ensure"
who.users = ["u7"]
"#,
    );
    let plan = plan_of(&providers, &d).await;
    let app = &plan.products[0];
    assert_eq!(app.capacity.adds, 4);
    assert_eq!(app.capacity.removes, 1);
    assert_eq!(app.capacity.free_after, Some(-2));
    assert_eq!(app.capacity.shortfall(), 2);
    let named: Vec<(&str, &str)> = app
        .capacity
        .not_fitting
        .iter()
        .map(|n| (n.policy.as_str(), n.holder.as_str()))
        .collect();
    assert_eq!(
        named,
        [("second", "u5"), ("second", "u6")],
        "policy order, then holder id: u9 (first policy) and u4 fit"
    );
    assert!(plan.to_csv().unwrap().contains("does_not_fit"));

    let report = plan
        .apply(&providers, &ApplyOptions::default())
        .await
        .unwrap();
    assert_eq!(
        m.holders_of(&ProductId::new("app")),
        users(["u1", "u2", "u3"]),
        "nothing of the short product changed, not even its removes"
    );
    assert_eq!(m.holders_of(&ProductId::new("other")), users(["u7"]));
    assert!(report.held_back.iter().all(|h| matches!(
        h.reason,
        HeldBackReason::CapacityShortfall { seats_short: 2 }
    )));
    assert_eq!(report.held_back_count(), 5, "4 adds and 1 remove");

    let plan = plan_of(&providers, &d).await;
    let report = plan
        .apply(&providers, &ApplyOptions::default().partial(true))
        .await
        .unwrap();
    assert_eq!(
        m.holders_of(&ProductId::new("app")),
        users(["u2", "u3", "u4", "u9"])
    );
    assert_eq!(report.held_back.len(), 1);
    assert_eq!(report.held_back[0].holders, [u("u5"), u("u6")]);
    assert_eq!(report.counts().applied, 3, "one revoke, two assigns");
}

#[tokio::test]
async fn max_changes_stops_a_policy_and_nothing_of_it_is_applied() {
    let m = memory_org().await;
    let providers: [&dyn LicenseProvider; 1] = [&m];
    let mut d = desired(MEMORY_DESIRED);
    d.max_changes = Some(4);
    d.policies[0].max_changes = Some(5);
    let plan = plan_of(&providers, &d).await;
    assert!(
        plan.policies[0].stopped.is_none(),
        "3 adds + 2 removes = 5 changes, not more than 5"
    );
    d.policies[0].max_changes = Some(3);
    let plan = plan_of(&providers, &d).await;
    let stopped = plan.policies[0].stopped.expect("5 changes > 3");
    assert_eq!((stopped.max_changes, stopped.changes), (3, 5));
    assert!(
        plan.policies[1].stopped.is_none(),
        "the default of 4 lets 1 change through"
    );
    let report = plan
        .apply(&providers, &ApplyOptions::default())
        .await
        .unwrap();
    assert_eq!(
        m.holders_of(&ProductId::new("app")),
        users(["cy", "dee"]),
        "the stopped policy changed nothing"
    );
    assert_eq!(
        m.holders_of(&ProductId::new("book")),
        users(["ada", "bob", "eve"])
    );
    assert_eq!(report.held_back.len(), 2);
    assert!(
        report
            .held_back
            .iter()
            .all(|h| h.policy.as_deref() == Some("app-for-staff")
                && h.reason
                    == HeldBackReason::MaxChanges {
                        max_changes: 3,
                        changes: 5
                    })
    );
}

#[tokio::test]
async fn conflicting_policies_are_an_error_naming_both() {
    let m = memory_org().await;
    let providers: [&dyn LicenseProvider; 1] = [&m];
    let err = Plan::compute(
        &providers,
        &desired(
            r#"
version = 1
[[policy]]
name = "only-ada"
provider = "memory"
product = "app"
mode = "exact"
who.users = ["ada"]
[[policy]]
name = "bob-too"
provider = "memory"
product = "app"
mode = "ensure"
who.users = ["bob"]
"#,
        ),
        &PlanOptions::default(),
    )
    .await
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
    let text = err.to_string();
    assert!(
        text.contains("`only-ada`") && text.contains("`bob-too`") && text.contains("user bob"),
        "{text}"
    );

    let err = Plan::compute(
        &providers,
        &desired(
            r#"
version = 1
[[policy]]
name = "give"
provider = "memory"
product = "book"
mode = "ensure"
who.users = ["eve", "dee"]
[[policy]]
name = "take"
provider = "memory"
product = "book"
mode = "absent"
who.users = ["eve", "dee"]
"#,
        ),
        &PlanOptions::default(),
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("(1 more holders alike)"), "{err}");

    // Policies that agree are fine: an exact set and an ensure inside it.
    let ok = Plan::compute(
        &providers,
        &desired(
            r#"
version = 1
[[policy]]
name = "both"
provider = "memory"
product = "app"
mode = "exact"
who.users = ["ada", "bob"]
[[policy]]
name = "ada"
provider = "memory"
product = "app"
mode = "ensure"
who.users = ["ada"]
"#,
        ),
        &PlanOptions::default(),
    )
    .await
    .unwrap();
    assert_eq!(ok.products[0].capacity.adds, 2, "ada counted once");
}

#[tokio::test]
async fn unknown_products_providers_and_holders_are_named_never_guessed() {
    let m = memory_org().await;
    let providers: [&dyn LicenseProvider; 1] = [&m];
    let e = compute_err(&providers, "version = 1\n[[policy]]\nname = \"p\"\nprovider = \"memory\"\nproduct = \"ap\"\nmode = \"ensure\"\nwho.users = [\"ada\"]\n").await;
    assert!(
        e.contains("policy `p`: memory has no product `ap` (products: app, book, tool)"),
        "{e}"
    );
    let e = compute_err(&providers, "version = 1\n[[policy]]\nname = \"p\"\nprovider = \"genesys\"\nproduct = \"cx\"\nmode = \"ensure\"\nwho.users = [\"ada\"]\n").await;
    assert!(
        e.contains("names provider genesys, which is not configured"),
        "{e}"
    );

    let plan = plan_of(
        &providers,
        &desired(
            r#"
version = 1
[[policy]]
provider = "memory"
product = "app"
mode = "ensure"
who.users = ["ghost", "cy"]
who.emails = ["nobody@example.com", "not-an-email"]
"#,
        ),
    )
    .await;
    let p = &plan.policies[0];
    assert_eq!(p.name, "memory/app");
    assert!(p.adds.is_empty(), "{:?}", p.adds);
    let reasons: Vec<(UnmatchedReason, Option<&str>, Option<&str>)> = p
        .unmatched
        .iter()
        .map(|x| (x.reason, x.holder_id.as_deref(), x.email.as_deref()))
        .collect();
    assert_eq!(
        reasons,
        [
            (UnmatchedReason::NoAccount, None, Some("nobody@example.com")),
            (UnmatchedReason::NotInDirectory, Some("ghost"), None),
            (UnmatchedReason::InvalidEmail, None, Some("not-an-email")),
        ],
        "cy (inactive) already holds the app: wanted and kept, nothing to add"
    );
}

#[tokio::test]
async fn a_rule_over_a_managed_product_reads_it_as_the_plan_leaves_it() {
    let m = memory_org().await;
    let providers: [&dyn LicenseProvider; 1] = [&m];
    // The tool follows the app, which the first policy changes: planned in one go.
    let d = desired(
        r#"
version = 1
[[policy]]
name = "tool-follows-app"
provider = "memory"
product = "tool"
mode = "exact"
who.holders_of = [{ provider = "memory", product = "app" }]
[[policy]]
name = "app"
provider = "memory"
product = "app"
mode = "exact"
who.users = ["ada", "bob"]
"#,
    );
    let plan = plan_of(&providers, &d).await;
    assert_eq!(holders(&plan.policies[0].adds), ["ada", "bob"]);
    assert_eq!(holders(&plan.policies[0].removes), ["eve"]);
    plan.apply(&providers, &ApplyOptions::default())
        .await
        .unwrap();
    assert!(plan_of(&providers, &d).await.is_empty());
    assert_eq!(m.holders_of(&ProductId::new("tool")), users(["ada", "bob"]));

    let cyclic = desired(
        r#"
version = 1
[[policy]]
provider = "memory"
product = "tool"
mode = "exact"
who.holders_of = [{ provider = "memory", product = "app" }]
[[policy]]
provider = "memory"
product = "app"
mode = "exact"
who.holders_of = [{ provider = "memory", product = "tool" }]
"#,
    );
    let e = Plan::compute(&providers, &cyclic, &PlanOptions::default())
        .await
        .unwrap_err();
    assert!(e.to_string().contains("in a cycle"), "{e}");
}

#[tokio::test]
async fn pending_changes_are_listed_with_their_references_not_planned_again() {
    let m = memory_org().await;
    let providers: [&dyn LicenseProvider; 1] = [&m];
    let d = desired(MEMORY_DESIRED);
    let pending = vec![PendingChange {
        provider: licensekit::InMemoryProvider::KIND,
        product_id: ProductId::new("book"),
        action: ChangeAction::Assign,
        holder: u("eve"),
        reference: "event-42".into(),
    }];
    let plan = Plan::compute(
        &providers,
        &d,
        &PlanOptions::default().with_pending(pending.clone()),
    )
    .await
    .unwrap();
    assert!(plan.policies[1].adds.is_empty());
    assert_eq!(plan.policies[1].pending, pending);
    assert_eq!(plan.products[1].pending, pending);
    assert_eq!(plan.summary().pending, 1);
    let csv = plan.to_csv().unwrap();
    assert!(
        csv.contains("pending_add,user,eve,,,,,pending,event-42"),
        "{csv}"
    );
}

#[tokio::test]
async fn a_cancelled_apply_sends_nothing_and_accounts_for_every_item() {
    let m = memory_org().await;
    let providers: [&dyn LicenseProvider; 1] = [&m];
    let plan = plan_of(&providers, &desired(MEMORY_DESIRED)).await;
    let cancel = CancellationToken::new();
    cancel.cancel();
    let report = plan
        .apply(&providers, &ApplyOptions::default().with_cancel(cancel))
        .await
        .unwrap();
    assert!(report.interrupted);
    assert_eq!(report.counts().failed, 7);
    assert_eq!(
        report.counts().total(),
        7,
        "every planned change has an outcome"
    );
    assert!(report.steps.iter().all(|s| s.report.items.iter().all(|i| {
        i.outcome
            .error()
            .is_some_and(|e| e.kind() == ErrorKind::Cancelled)
    })));
    assert_eq!(m.holders_of(&ProductId::new("app")), users(["cy", "dee"]));
}

#[tokio::test]
async fn a_hook_that_refuses_a_step_holds_back_the_rest() {
    #[derive(Debug)]
    struct RefuseSecond(Mutex<u32>);
    impl ApplyHooks for RefuseSecond {
        fn before(&self, _: &Step) -> Result<Option<Arc<dyn ChangeObserver>>, String> {
            let mut n = self.0.lock().unwrap();
            *n += 1;
            if *n == 2 {
                Err("journal full".into())
            } else {
                Ok(None)
            }
        }
        fn after(&self, _: &Step, _: Result<&ChangeReport, &licensekit::Error>) {}
    }
    let m = memory_org().await;
    let providers: [&dyn LicenseProvider; 1] = [&m];
    let plan = plan_of(&providers, &desired(MEMORY_DESIRED)).await;
    let report = plan
        .apply(
            &providers,
            &ApplyOptions::default().with_hooks(Arc::new(RefuseSecond(Mutex::new(0)))),
        )
        .await
        .unwrap();
    assert_eq!(report.steps.len(), 1);
    assert_eq!(report.counts().total() + report.held_back_count(), 7);
    assert!(report.held_back.iter().all(|h| h.reason
        == HeldBackReason::NotSent {
            message: "journal full".into()
        }));
}

#[tokio::test]
async fn the_plan_json_is_stable_and_reads_back() {
    let m = memory_org().await;
    let providers: [&dyn LicenseProvider; 1] = [&m];
    let d = desired(MEMORY_DESIRED);
    let a = plan_of(&providers, &d).await;
    let mut b = plan_of(&providers, &d).await;
    b.created_at = a.created_at;
    assert_eq!(a.to_json(), b.to_json(), "same state, same plan");
    let back = Plan::from_json(&a.to_json()).unwrap();
    assert_eq!(back, a);
    let json: serde_json::Value = serde_json::from_str(&a.to_json()).unwrap();
    assert_eq!(json["plan_version"], 1);
    assert_eq!(json["products"][0]["fingerprint"]["holders"], 2);
    assert!(
        json["products"][0]["fingerprint"]["digest"]
            .as_str()
            .unwrap()
            .starts_with("fnv1a64:")
    );
    let newer = a
        .to_json()
        .replace("\"plan_version\": 1", "\"plan_version\": 2");
    let e = Plan::from_json(&newer).unwrap_err().to_string();
    assert!(e.contains("plan version 2"), "{e}");
    let csv = a.to_csv().unwrap();
    assert_eq!(
        csv.lines().next().unwrap(),
        "policy,provider,product_id,row,holder_kind,holder_id,email,name,reason,reclaim,status,reference"
    );
}

#[tokio::test]
async fn reclaim_removes_exactly_the_named_reasons() {
    let m = memory(
        &[("app", Some(3)), ("old", Some(3))],
        &[
            ("ada", "ada@example.com", true),
            ("bo", "bo@example.com", true),
            ("cy", "cy@example.com", false),
        ],
        &[
            ("app", "ada"),
            ("app", "cy"),
            ("old", "ada"),
            ("old", "bo"),
            ("old", "cy"),
        ],
    )
    .await;
    // The old product now owns one seat: over-allocated by two.
    m.add_product(MemoryProduct {
        id: "old".into(),
        name: "OLD".into(),
        seats: Some(1),
        device_assignable: true,
    });
    let providers: [&dyn LicenseProvider; 1] = [&m];
    let reclaim = |product: &str, reasons: &str| {
        desired(&format!(
            "version = 1\n[[policy]]\nprovider = \"memory\"\nproduct = \"{product}\"\nmode = \"ensure\"\nreclaim = [{reasons}]\n"
        ))
    };
    let plan = plan_of(&providers, &reclaim("app", "\"holder_inactive\"")).await;
    assert_eq!(holders(&plan.policies[0].removes), ["cy"]);
    assert_eq!(plan.policies[0].removes[0].reason, ChangeReason::Reclaim);
    assert_eq!(
        plan.policies[0].removes[0].reclaim,
        Some(licensekit::report::ReclaimReason::HolderInactive)
    );
    let plan = plan_of(&providers, &reclaim("old", "\"product_over_allocated\"")).await;
    let removes = &plan.policies[0].removes;
    assert_eq!(
        removes.len(),
        1,
        "over by two, one of which the report gives as inactive: {removes:?}"
    );
    assert_ne!(removes[0].holder, u("cy"));
    assert_eq!(
        removes[0].reclaim,
        Some(licensekit::report::ReclaimReason::ProductOverAllocated)
    );
    let plan = plan_of(
        &providers,
        &reclaim("old", "\"product_over_allocated\", \"holder_inactive\""),
    )
    .await;
    assert_eq!(plan.policies[0].removes.len(), 2);
    assert_eq!(plan.products[0].capacity.free_after, Some(0));
}

// ---- The three simulators -------------------------------------------------------------------

#[cfg(all(feature = "apple-vpp", feature = "genesys", feature = "salesforce"))]
mod simulators {
    use super::*;
    use std::collections::BTreeMap;
    use std::time::Duration;

    use licensekit::RetryConfig;
    use licensekit::apple_vpp::{AppleVppConfig, AppleVppProvider};
    use licensekit::genesys::{GenesysConfig, GenesysProvider};
    use licensekit::salesforce::{SalesforceAuth, SalesforceConfig, SalesforceProvider};
    use licensekit::{AnyProvider, Outcome};
    use licensekit_sim::apple::{
        AppleSeed, AppleSim, AppleSimConfig, SimAsset, SimHolder, SimVppUser,
    };
    use licensekit_sim::faults::{Fault, Faults};
    use licensekit_sim::genesys::{
        GenesysSeed, GenesysSim, GenesysSimConfig, SimDirectoryUser, user_id,
    };
    use licensekit_sim::salesforce::{
        SalesforceSeed, SalesforceSim, SalesforceSimConfig, SimPackage, SimUser,
    };

    /// A client of a Salesforce simulator (its consumer key, plain HTTP).
    pub(super) fn salesforce_config(base_url: String, timeout: Duration) -> SalesforceConfig {
        let mut config = SalesforceConfig::new(SalesforceAuth::ClientCredentials {
            login_url: base_url,
            client_id: "sim-consumer-key".into(),
            client_secret: "sim-consumer-secret".to_string().into(),
        })
        .allow_http(true);
        config.client.timeout = timeout;
        config
    }

    const APP: &str = "361309726";
    const IPAD_APP: &str = "408709785";

    fn email(i: usize) -> String {
        format!("person{i:03}@example.com")
    }

    /// Who is who in the test org of `n` people (n ≥ 60):
    /// - Genesys: people 0..4n/5 (every 12th from 9 inactive; every 8th from 4 under an alias
    ///   email), cloudCX3 for every 3rd, cloudCX2 for the even; two bots without email holding
    ///   cloudCX3.
    /// - Salesforce: people n/3..n (every 10th from 3 inactive); crm_tools (n/6 seats) for the
    ///   first 7 of them.
    /// - Apple: people 0..2n/3 as `person-NNN` (every 13th from 11 retired); the app for the
    ///   odd; the iPad app on 6 devices.
    struct Org {
        n: usize,
        genesys: GenesysSim,
        salesforce: SalesforceSim,
        apple: AppleSim,
        g: GenesysProvider,
        s: SalesforceProvider,
        a: AppleVppProvider,
        aliases: HashMap<String, String>,
    }

    fn retry() -> RetryConfig {
        RetryConfig::default()
            .with_max_attempts(8)
            .with_max_elapsed(Duration::from_secs(120))
            .with_backoff(Duration::from_millis(2), Duration::from_millis(50))
            .with_jitter_seed(7)
    }

    impl Org {
        /// `genesys_batch`: user ids per Genesys write (small batches: more requests to fail).
        async fn start(
            n: usize,
            apple_config: AppleSimConfig,
            polling: Duration,
            genesys_batch: usize,
        ) -> Org {
            let mut aliases = HashMap::new();
            let mut gseed = GenesysSeed::demo(0);
            for i in 0..n * 4 / 5 {
                let mut licenses = Vec::new();
                if i % 3 == 0 {
                    licenses.push("cloudCX3".to_string());
                }
                if i % 2 == 0 {
                    licenses.push("cloudCX2".to_string());
                }
                let address = if i % 8 == 4 {
                    let alias = format!("agent.{i}@example.com");
                    aliases.insert(alias.clone(), email(i));
                    alias
                } else {
                    format!(" {}", email(i).to_uppercase())
                };
                gseed.users.push((user_id(i), licenses));
                gseed.directory.push(SimDirectoryUser {
                    id: user_id(i),
                    name: format!("Person {i}"),
                    email: address,
                    state: if i % 12 == 9 { "inactive" } else { "active" }.into(),
                    date_last_login: None,
                });
            }
            for bot in 0..2 {
                gseed
                    .users
                    .push((user_id(900 + bot), vec!["cloudCX3".to_string()]));
                gseed.directory.push(SimDirectoryUser {
                    id: user_id(900 + bot),
                    name: format!("bot {bot}"),
                    email: String::new(),
                    state: "active".into(),
                    date_last_login: None,
                });
            }
            let genesys = GenesysSim::start(gseed, GenesysSimConfig::default())
                .await
                .unwrap();

            let package = |ns: &str, allowed: i64| SimPackage {
                namespace: ns.into(),
                allowed,
                status: "Active".into(),
                expiration: None,
            };
            let mut sseed = SalesforceSeed {
                packages: vec![
                    package("acme", n as i64),
                    package("crm_tools", (n / 6) as i64),
                ],
                users: Vec::new(),
                assignments: Vec::new(),
            };
            for (index, i) in (n / 3..n).enumerate() {
                sseed.users.push(SimUser {
                    username: format!("{}.sim", email(i)),
                    email: email(i),
                    name: format!("Person {i}"),
                    active: i % 10 != 3,
                    profile: "Standard User".into(),
                    last_login: None,
                });
                if index < 7 {
                    sseed.assignments.push(("crm_tools".into(), index));
                }
            }
            let salesforce = SalesforceSim::start(
                sseed,
                SalesforceSimConfig {
                    run_as_username: Some(format!("{}.sim", email(n / 3))),
                    ..Default::default()
                },
            )
            .await
            .unwrap();

            let mut aseed = AppleSeed {
                assets: vec![
                    SimAsset::app(APP, n as i64 * 2),
                    SimAsset::app(IPAD_APP, 10),
                ],
                users: Vec::new(),
                ..AppleSeed::demo(0)
            };
            for i in 0..n * 2 / 3 {
                let id = format!("person-{i:03}");
                aseed.users.push(SimVppUser {
                    client_user_id: id.clone(),
                    email: Some(email(i)),
                    status: if i % 13 == 11 {
                        "Retired"
                    } else {
                        "Registered"
                    }
                    .into(),
                });
                if i % 2 == 1 {
                    aseed
                        .assignments
                        .push((APP.into(), "STDQ".into(), SimHolder::User(id)));
                }
            }
            for d in 0..6 {
                aseed.assignments.push((
                    IPAD_APP.into(),
                    "STDQ".into(),
                    SimHolder::Serial(format!("IPAD{d:02}")),
                ));
            }
            let apple = AppleSim::start(aseed, apple_config).await.unwrap();

            let g = GenesysProvider::with_retry(
                GenesysConfig::new("sim-client", "sim-secret".to_string().into())
                    .with_base_url(genesys.base_url())
                    .with_client_options(
                        licensekit::ClientOptions::default()
                            .with_allow_http(true)
                            .with_rate(licensekit::Rate::Off)
                            .with_timeout(Duration::from_secs(1)),
                    )
                    .with_page_size(25)
                    .with_max_batch(genesys_batch)
                    .with_seat_total("cloudCX3", n as u64),
                retry(),
            )
            .unwrap();
            let sconfig = salesforce_config(salesforce.base_url(), Duration::from_secs(1));
            let s = SalesforceProvider::with_retry(sconfig, retry()).unwrap();
            let mut aconfig = AppleVppConfig::new(apple.stoken().into())
                .with_base_url(apple.base_url())
                .allow_http(true)
                .with_polling(Duration::from_millis(2), polling);
            aconfig.client.timeout = Duration::from_secs(1);
            let a = AppleVppProvider::with_retry(aconfig, retry()).unwrap();
            Org {
                n,
                genesys,
                salesforce,
                apple,
                g,
                s,
                a,
                aliases,
            }
        }

        async fn default(n: usize) -> Org {
            Org::start(n, AppleSimConfig::default(), Duration::from_secs(30), 100).await
        }

        fn providers(&self) -> [&dyn LicenseProvider; 3] {
            [&self.g, &self.s, &self.a]
        }

        fn options(&self) -> PlanOptions {
            PlanOptions::new(ReportOptions {
                aliases: self.aliases.clone(),
                ..ReportOptions::default()
            })
        }

        async fn plan(&self, d: &DesiredState) -> Plan {
            Plan::compute(&self.providers(), d, &self.options())
                .await
                .unwrap()
        }

        fn sf_user(&self, i: usize) -> String {
            self.salesforce
                .user_id(&format!("{}.sim", email(i)))
                .unwrap()
        }

        fn cx3(&self) -> BTreeSet<String> {
            self.genesys.holders_of("cloudCX3")
        }

        fn crm(&self) -> BTreeSet<String> {
            let id = self.salesforce.package_id("crm_tools").unwrap();
            self.salesforce.holders_of(&id).into_iter().collect()
        }

        fn apple_holders(&self, adam: &str) -> BTreeSet<SimHolder> {
            self.apple.holders_of(adam, "STDQ").into_iter().collect()
        }

        fn set_faults(&self, faults: Option<Faults>) {
            let apple_kinds: Vec<Fault> = Fault::ALL
                .into_iter()
                .filter(|f| *f != Fault::TokenExpired)
                .collect();
            self.genesys.set_faults(faults.clone());
            self.salesforce.set_faults(faults.clone());
            self.apple.set_faults(faults.map(|f| Faults {
                kinds: apple_kinds,
                ..f
            }));
        }

        fn faults_injected(&self) -> u64 {
            [
                self.genesys.faults_injected(),
                self.salesforce.faults_injected(),
                self.apple.faults_injected(),
            ]
            .iter()
            .flat_map(BTreeMap::values)
            .sum()
        }

        /// What the main desired state leaves: (cloudCX3, crm_tools, app, iPad app).
        fn expected(
            &self,
        ) -> (
            BTreeSet<String>,
            BTreeSet<String>,
            BTreeSet<SimHolder>,
            BTreeSet<SimHolder>,
        ) {
            let n = self.n;
            let genesys_people = 0..n * 4 / 5;
            let mut cx3: BTreeSet<String> = genesys_people
                .clone()
                .filter(|i| (i % 3 == 0 && i % 12 != 9) || [1, 2].contains(i))
                .map(user_id)
                .collect();
            cx3.extend([user_id(900), user_id(901)]);
            let crm: BTreeSet<String> = genesys_people
                .filter(|i| (i % 3 == 0 && i % 12 != 9) || [1, 2].contains(i))
                // A Salesforce account, and an active one (an inactive one is listed unmatched).
                .filter(|i| *i >= n / 3 && i % 10 != 3)
                .map(|i| self.sf_user(i))
                .collect();
            let app: BTreeSet<SimHolder> = (0..n * 2 / 3)
                .filter(|i| i % 13 != 11)
                .map(|i| SimHolder::User(format!("person-{i:03}")))
                .collect();
            let ipads: BTreeSet<SimHolder> = ["IPAD00", "IPAD02", "IPAD06", "IPAD07"]
                .into_iter()
                .map(|s| SimHolder::Serial(s.into()))
                .collect();
            (cx3, crm, app, ipads)
        }
    }

    /// CX3 reclaims its inactive agents and adds two; the CRM package follows CX3 across vendors
    /// (through the aliases); the app goes to every active managed user; the iPad app to four
    /// listed devices.
    fn main_desired(crm_max: usize) -> DesiredState {
        desired(&format!(
            r#"
version = 1
[[policy]]
name = "cx3"
provider = "genesys"
product = "cloudCX3"
mode = "ensure"
reclaim = ["holder_inactive"]
who.users = ["{}", "{}"]

[[policy]]
name = "crm"
provider = "salesforce"
product = "crm_tools"
mode = "exact"
max_changes = {crm_max}
who.holders_of = [{{ provider = "genesys", product = "cloudCX3" }}]

[[policy]]
name = "app"
provider = "apple-vpp"
product = "{APP}"
mode = "exact"
who.all_active = true
who.email_domains = ["Example.COM"]

[[policy]]
name = "ipads"
provider = "apple-vpp"
product = "{IPAD_APP}:STDQ"
mode = "exact"
who.devices = ["IPAD00", "IPAD02", "IPAD06", "IPAD07"]
"#,
            user_id(1),
            user_id(2)
        ))
    }

    fn assert_desired(org: &Org) {
        let (cx3, crm, app, ipads) = org.expected();
        assert_eq!(org.cx3(), cx3, "genesys cloudCX3");
        assert_eq!(org.crm(), crm, "salesforce crm_tools");
        assert_eq!(org.apple_holders(APP), app, "apple app");
        assert_eq!(org.apple_holders(IPAD_APP), ipads, "apple iPad app");
    }

    /// Every planned change is in exactly one step's report or held back.
    fn assert_accounted(plan: &Plan, report: &ApplyReport) {
        let mut planned: Vec<(ProductId, ChangeAction, HolderId)> = Vec::new();
        for p in &plan.policies {
            for (action, list) in [
                (ChangeAction::Assign, &p.adds),
                (ChangeAction::Revoke, &p.removes),
            ] {
                planned.extend(
                    list.iter()
                        .map(|c| (p.product_id.clone(), action, c.holder.clone())),
                );
            }
        }
        let mut accounted: Vec<(ProductId, ChangeAction, HolderId)> = Vec::new();
        for s in &report.steps {
            accounted.extend(
                s.report
                    .items
                    .iter()
                    .map(|i| (s.report.product.clone(), s.report.action, i.holder.clone())),
            );
        }
        for h in &report.held_back {
            accounted.extend(
                h.holders
                    .iter()
                    .map(|x| (h.product_id.clone(), h.action, x.clone())),
            );
        }
        let key = |v: &(ProductId, ChangeAction, HolderId)| {
            (v.0.clone(), v.1 == ChangeAction::Assign, v.2.clone())
        };
        planned.sort_by_key(key);
        accounted.sort_by_key(key);
        assert_eq!(planned, accounted, "every planned item accounted for, once");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn plan_then_apply_reaches_the_desired_state_and_the_next_plan_is_empty() {
        let org = Org::default(60).await;
        let d = main_desired(100);
        let plan = org.plan(&d).await;
        assert!(!plan.is_empty());
        let summary = plan.summary();
        assert_eq!(
            summary.policies_stopped + summary.products_short,
            0,
            "{summary:?}"
        );
        let report = plan
            .apply(&org.providers(), &ApplyOptions::default())
            .await
            .unwrap();
        assert!(report.is_complete_success(), "{report:#?}");
        assert_accounted(&plan, &report);
        assert_desired(&org);
        // Revokes ran before assigns on every product.
        let order: Vec<(String, ChangeAction)> = report
            .steps
            .iter()
            .map(|s| (s.report.product.to_string(), s.report.action))
            .collect();
        for (i, (product, action)) in order.iter().enumerate() {
            if *action == ChangeAction::Revoke {
                assert!(
                    !order[..i].contains(&(product.clone(), ChangeAction::Assign)),
                    "{order:?}"
                );
            }
        }

        let again = org.plan(&d).await;
        assert!(again.is_empty(), "{:#?}", again.policies);
        let report = again
            .apply(&org.providers(), &ApplyOptions::default())
            .await
            .unwrap();
        assert!(report.steps.is_empty());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_cross_vendor_rule_resolves_through_aliases_and_lists_unmatched_people() {
        let org = Org::default(60).await;
        let d = main_desired(100);
        let plan = org.plan(&d).await;
        let crm = &plan.policies[1];
        // Person 36's Genesys email is the alias agent.36@example.com.
        let aliased = org.sf_user(36);
        assert!(
            crm.adds.iter().any(|c| c.holder == u(&aliased)),
            "{:?}",
            crm.adds
        );
        let unmatched: BTreeSet<(UnmatchedReason, Option<String>)> = crm
            .unmatched
            .iter()
            .map(|x| (x.reason, x.email.clone()))
            .collect();
        // Planned CX3 holders without a Salesforce account (people below 20), and the bots.
        for i in [0, 1, 2, 3, 6, 12, 15, 18] {
            assert!(
                unmatched.contains(&(UnmatchedReason::NoAccount, Some(email(i)))),
                "person {i}: {unmatched:?}"
            );
        }
        let bots: Vec<_> = crm
            .unmatched
            .iter()
            .filter(|x| x.reason == UnmatchedReason::NoUsableEmail)
            .map(|x| x.holder_id.clone().unwrap())
            .collect();
        assert_eq!(bots, [user_id(900), user_id(901)]);
        assert!(
            crm.unmatched
                .iter()
                .all(|x| x.provider == ProviderKind::from_static("genesys"))
        );
        assert_eq!(crm.unmatched.len(), 10);

        // Without the alias map, person 36 is not guessed: listed under the alias email.
        let plain = Plan::compute(&org.providers(), &d, &PlanOptions::default())
            .await
            .unwrap();
        let crm = &plain.policies[1];
        assert!(!crm.adds.iter().any(|c| c.holder == u(&aliased)));
        assert!(
            crm.unmatched
                .iter()
                .any(|x| x.reason == UnmatchedReason::NoAccount
                    && x.email.as_deref() == Some("agent.36@example.com"))
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_drifted_state_is_refused_and_nothing_changes() {
        let org = Org::default(60).await;
        let d = main_desired(100);
        let plan = org.plan(&d).await;
        let cx3_before = org.cx3();
        let crm_before = org.crm();
        // Another tool gives the iPad app to a new device meanwhile.
        org.apple
            .assign_directly(IPAD_APP, "STDQ", SimHolder::Serial("IPAD09".into()));
        let err = plan
            .apply(&org.providers(), &ApplyOptions::default())
            .await
            .unwrap_err();
        let ApplyError::Drifted(drifts) = &err else {
            panic!("{err}")
        };
        let named: Vec<String> = drifts
            .iter()
            .map(|d| format!("{} {}", d.provider, d.product_id))
            .collect();
        assert_eq!(named, [format!("apple-vpp {IPAD_APP}:STDQ")]);
        assert_eq!(org.cx3(), cx3_before, "nothing changed anywhere");
        assert_eq!(org.crm(), crm_before);

        let fresh = org.plan(&d).await;
        let report = fresh
            .apply(&org.providers(), &ApplyOptions::default())
            .await
            .unwrap();
        assert!(report.is_complete_success());
        assert_desired(&org);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_capacity_shortfall_is_reported_before_any_change_and_max_changes_stops_a_policy() {
        let org = Org::default(60).await;
        // crm_tools: 10 seats, 7 held; every active Salesforce user wanted.
        let d = desired(&format!(
            r#"
version = 1
[[policy]]
name = "crm-for-all"
provider = "salesforce"
product = "crm_tools"
mode = "ensure"
who.all_active = true

[[policy]]
name = "ipads"
provider = "apple-vpp"
product = "{IPAD_APP}"
mode = "exact"
max_changes = 5
who.devices = ["IPAD00", "IPAD02", "IPAD06", "IPAD07"]

[[policy]]
name = "cx3"
provider = "genesys"
product = "cloudCX3"
mode = "ensure"
reclaim = ["holder_inactive"]
"#
        ));
        let plan = org.plan(&d).await;
        let crm = &plan.products[0];
        let adds = &plan.policies[0].adds;
        assert_eq!(crm.capacity.free_after, Some(3 - adds.len() as i64));
        let fitting: Vec<HolderId> = adds[..3].iter().map(|c| c.holder.clone()).collect();
        let not_fitting: Vec<HolderId> = adds[3..].iter().map(|c| c.holder.clone()).collect();
        assert_eq!(
            crm.capacity
                .not_fitting
                .iter()
                .map(|n| n.holder.clone())
                .collect::<Vec<_>>(),
            not_fitting,
            "the last adds in holder order do not fit"
        );
        let ipads = plan.policies[1].stopped.expect("6 changes > 5");
        assert_eq!(ipads.changes, 6);

        let crm_before = org.crm();
        let ipads_before = org.apple_holders(IPAD_APP);
        let report = plan
            .apply(&org.providers(), &ApplyOptions::default())
            .await
            .unwrap();
        assert_accounted(&plan, &report);
        assert_eq!(org.crm(), crm_before, "the short product is not changed");
        assert_eq!(
            org.apple_holders(IPAD_APP),
            ipads_before,
            "the stopped policy"
        );
        assert_eq!(
            org.cx3().len(),
            16 + 2 - 4,
            "the other policy applied: 4 inactive agents lost CX3"
        );

        let plan = org.plan(&d).await;
        let report = plan
            .apply(&org.providers(), &ApplyOptions::default().partial(true))
            .await
            .unwrap();
        assert_accounted(&plan, &report);
        let mut expected = crm_before;
        expected.extend(fitting.iter().map(|h| h.as_str().to_owned()));
        assert_eq!(org.crm(), expected, "the fitting part, in the stated order");
        assert_eq!(org.crm().len(), 10);
    }

    /// Genesys does not report purchased seats: unchecked unless the provider's configuration
    /// or the policy's `seats` gives a total (the configuration wins).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn capacity_is_checked_against_configured_seats_where_the_vendor_reports_none() {
        let org = Org::default(60).await;
        let policy = |product: &str, seats: &str| {
            desired(&format!(
                "version = 1\n[[policy]]\nprovider = \"genesys\"\nproduct = \"{product}\"\nmode = \"ensure\"\nwho.users = [\"{}\", \"{}\", \"{}\"]\n{seats}",
                user_id(1),
                user_id(2),
                user_id(4)
            ))
        };
        let plan = org.plan(&policy("cloudCX1", "")).await;
        let c = &plan.products[0].capacity;
        assert!(
            !c.checked && c.total.is_none() && c.free_after.is_none(),
            "{c:?}"
        );
        let plan = org.plan(&policy("cloudCX1", "seats = 2\n")).await;
        let c = &plan.products[0].capacity;
        assert_eq!(
            (c.total, c.total_source, c.free_after),
            (Some(2), licensekit::Provenance::Configured, Some(-1))
        );
        assert_eq!(c.not_fitting.len(), 1);
        assert_eq!(c.not_fitting[0].holder, u(&user_id(4)));
        // cloudCX3's total is in the provider's configuration (60): that figure is used.
        let plan = org.plan(&policy("cloudCX3", "seats = 2\n")).await;
        assert_eq!(plan.products[0].capacity.total, Some(60));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_apply_under_a_fifth_failing_ends_in_the_desired_state_with_every_item_accounted_for()
     {
        let org = Org::start(
            600,
            AppleSimConfig {
                page_size: 50,
                ..Default::default()
            },
            Duration::from_secs(60),
            5,
        )
        .await;
        let d = main_desired(1000);
        let plan = org.plan(&d).await;
        assert!(plan.summary().adds + plan.summary().removes > 300);
        org.set_faults(Some(Faults {
            lost_response_delay: Duration::from_millis(1500),
            ..Faults::new(0x5EED, 0.2, &Fault::ALL)
        }));
        let report = plan
            .apply(&org.providers(), &ApplyOptions::default())
            .await
            .unwrap();
        org.set_faults(None);
        eprintln!(
            "apply under 20 % faults: {:?}; faults injected: genesys {:?}, salesforce {:?}, apple {:?}",
            report.counts(),
            org.genesys.faults_injected(),
            org.salesforce.faults_injected(),
            org.apple.faults_injected()
        );
        assert_accounted(&plan, &report);
        let bad: Vec<String> = report
            .steps
            .iter()
            .flat_map(|s| &s.report.items)
            .filter(|i| {
                !matches!(
                    i.outcome.status(),
                    OutcomeStatus::Applied | OutcomeStatus::AlreadyInState
                )
            })
            .take(5)
            .map(|i| format!("{}: {:?}", i.holder, i.outcome))
            .collect();
        assert!(bad.is_empty(), "{:?}: {bad:?}", report.counts());
        assert!(report.held_back.is_empty());
        assert!(
            org.faults_injected() >= 10,
            "faults were injected: {}",
            org.faults_injected()
        );
        let lost: u64 = [
            org.genesys.faults_injected(),
            org.salesforce.faults_injected(),
            org.apple.faults_injected(),
        ]
        .iter()
        .flat_map(|f| [f.get(&Fault::LostResponse), f.get(&Fault::TruncatedJson)])
        .flatten()
        .sum();
        assert!(lost > 0, "a change applied lost its answer at least once");
        assert_desired(&org);
        assert!(org.plan(&d).await.is_empty());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn apple_changes_still_pending_are_listed_with_their_events_never_as_new_adds() {
        // Events stay PENDING far longer than the adapter waits.
        let org = Org::start(
            60,
            AppleSimConfig {
                polls_until_complete: 10_000,
                ..Default::default()
            },
            Duration::from_millis(30),
            100,
        )
        .await;
        let d = desired(&format!(
            r#"
version = 1
[[policy]]
name = "ipads"
provider = "apple-vpp"
product = "{IPAD_APP}"
mode = "ensure"
who.devices = ["IPAD06", "IPAD07"]
"#
        ));
        let plan = org.plan(&d).await;
        assert_eq!(plan.policies[0].adds.len(), 2);
        let report = plan
            .apply(&org.providers(), &ApplyOptions::default())
            .await
            .unwrap();
        let pending = report.pending();
        assert_eq!(pending.len(), 2, "{report:?}");
        assert!(pending.iter().all(|p| !p.reference.is_empty()));
        // At a real location the assignment may not be listed until the event completes.
        for p in &pending {
            org.apple.revoke_directly(
                IPAD_APP,
                "STDQ",
                SimHolder::Serial(p.holder.as_str().into()),
            );
        }
        let control = org.plan(&d).await;
        assert_eq!(
            control.policies[0].adds.len(),
            2,
            "without the pending list: adds"
        );

        // The CLI's way: poll the events; still running, so still pending.
        let any = AnyProvider::from(org.a.clone());
        let (still, settled) = licensekit::plan::settle_pending(&[&any], pending.clone()).await;
        assert!(settled.is_empty());
        assert_eq!(still, pending);
        let again = Plan::compute(&org.providers(), &d, &org.options().with_pending(still))
            .await
            .unwrap();
        assert!(again.is_empty(), "{:?}", again.policies[0]);
        assert_eq!(again.policies[0].pending, pending);
        let events: BTreeSet<&str> = again.products[0]
            .pending
            .iter()
            .map(|p| p.reference.as_str())
            .collect();
        assert!(!events.is_empty());
        assert!(again.to_csv().unwrap().contains(",pending,"));
    }
}

/// A Salesforce site license (`AllowedLicenses = -1`): Salesforce gives the package to every
/// user and its licenses cannot be managed (vendor spec §1.4), so no mode plans a change of it.
#[cfg(feature = "salesforce")]
mod site_license {
    use super::*;
    use std::time::Duration;

    use licensekit::plan::Unmanaged;
    use licensekit::salesforce::SalesforceProvider;
    use licensekit_sim::salesforce::{
        SalesforceSeed, SalesforceSim, SalesforceSimConfig, SiteLicenseInserts,
    };

    /// The demo org of 20 users (9 and 19 inactive; 0, 2, 4 hold crm_tools of 5 seats), with
    /// UserPackageLicense rows on `sitewide` for users 1 and 3, as orgs that had them before
    /// the site license keep them (§1.6). The simulator accepts site-license inserts, so
    /// anything sent would show in its rows.
    async fn org() -> (SalesforceSim, SalesforceProvider) {
        let mut seed = SalesforceSeed::demo(20, 10);
        seed.assignments
            .extend([("sitewide".to_string(), 1), ("sitewide".to_string(), 3)]);
        let sim = SalesforceSim::start(
            seed,
            SalesforceSimConfig {
                site_license_inserts: SiteLicenseInserts::Accept,
                run_as_username: Some("user0@example.com.sim".into()),
                ..SalesforceSimConfig::default()
            },
        )
        .await
        .unwrap();
        let config = super::simulators::salesforce_config(sim.base_url(), Duration::from_secs(5));
        let provider = SalesforceProvider::new(config).unwrap();
        (sim, provider)
    }

    fn user(sim: &SalesforceSim, i: usize) -> String {
        sim.user_id(&format!("user{i}@example.com.sim")).unwrap()
    }

    fn sitewide(mode: &str, who: &str) -> DesiredState {
        desired(&format!(
            "version = 1\n[[policy]]\nname = \"site\"\nprovider = \"salesforce\"\nproduct = \"sitewide\"\nmode = \"{mode}\"\n{who}\n"
        ))
    }

    #[tokio::test]
    async fn holders_of_a_site_license_is_refused_naming_the_policy() {
        let (_sim, s) = org().await;
        let providers: [&dyn LicenseProvider; 1] = [&s];
        let d = desired(
            "version = 1\n[[policy]]\nname = \"crm-for-site\"\nprovider = \"salesforce\"\nproduct = \"crm_tools\"\nmode = \"ensure\"\nwho.holders_of = [{ provider = \"salesforce\", product = \"sitewide\" }]\n",
        );
        let error = Plan::compute(&providers, &d, &PlanOptions::default())
            .await
            .expect_err("the rows of a site license are no list of holders");
        assert_eq!(error.kind(), ErrorKind::Config);
        let message = error.to_string();
        assert!(
            message.contains("policy `crm-for-site`")
                && message.contains("`sitewide`")
                && message.contains("every user"),
            "{message}"
        );
    }

    #[tokio::test]
    async fn ensure_exact_and_absent_plan_no_changes_of_a_site_license_and_say_why() {
        let (sim, s) = org().await;
        let providers: [&dyn LicenseProvider; 1] = [&s];
        let cases = [
            // 18 active users, 2 of them with a row: 16 adds not needed.
            (
                sitewide("ensure", "who.all_active = true"),
                Unmanaged {
                    not_added: 16,
                    not_removed: 0,
                },
            ),
            // user0 has no row; users 1 and 3 have one the vendor does not let us remove.
            (
                sitewide("exact", &format!("who.users = [\"{}\"]", user(&sim, 0))),
                Unmanaged {
                    not_added: 1,
                    not_removed: 2,
                },
            ),
            (
                sitewide("absent", &format!("who.users = [\"{}\"]", user(&sim, 1))),
                Unmanaged {
                    not_added: 0,
                    not_removed: 1,
                },
            ),
        ];
        for (d, expected) in cases {
            let plan = plan_of(&providers, &d).await;
            let policy = &plan.policies[0];
            assert!(
                policy.adds.is_empty() && policy.removes.is_empty(),
                "{} plans changes of a site license: {policy:#?}",
                policy.mode.as_str()
            );
            assert!(plan.is_empty());
            assert_eq!(policy.unmanaged, Some(expected), "{}", policy.mode.as_str());
            if policy.mode.as_str() != "absent" {
                // Every user holds it: everyone the policy wants is unchanged.
                assert_eq!(
                    policy.unchanged,
                    match policy.mode.as_str() {
                        "ensure" => 18,
                        _ => 1,
                    },
                    "{}",
                    policy.mode.as_str()
                );
            }
            assert!(policy.stopped.is_none());
            let product = &plan.products[0];
            assert!(product.assigned_to_all_users && product.capacity.unlimited);
            assert_eq!((product.capacity.adds, product.capacity.removes), (0, 0));
            assert_eq!(plan.summary().policies_unmanaged, 1);

            let warning = plan
                .warnings
                .iter()
                .find(|w| w.starts_with("policy `site`: salesforce sitewide"))
                .expect("the plan warns about the policy");
            assert!(
                warning.contains("gives this product to every user and does not allow managing it"),
                "{warning}"
            );
            assert_eq!(
                warning.contains("removes not allowed by the vendor"),
                expected.not_removed > 0,
                "{warning}"
            );
            let csv = plan.to_csv().unwrap();
            let status = if expected.not_removed > 0 {
                "removes_not_allowed"
            } else {
                "not_planned"
            };
            assert!(
                csv.contains(&format!(",unmanaged,,,,,assigned_to_all_users,,{status},")),
                "{csv}"
            );
            let json = plan.to_json();
            assert!(json.contains("\"assigned_to_all_users\": true"), "{json}");
            assert_eq!(Plan::from_json(&json).unwrap().policies, plan.policies);
        }
    }

    #[tokio::test]
    async fn an_apply_sends_nothing_for_a_site_license_and_the_next_plan_is_the_same() {
        let (sim, s) = org().await;
        let providers: [&dyn LicenseProvider; 1] = [&s];
        let site_id = sim.package_id("sitewide").unwrap();
        let rows_before = sim.holders_of(&site_id);
        let d = desired(&format!(
            r#"
version = 1
[[policy]]
name = "site"
provider = "salesforce"
product = "sitewide"
mode = "exact"
who.all_active = true

[[policy]]
name = "crm"
provider = "salesforce"
product = "crm_tools"
mode = "ensure"
who.users = ["{}"]
"#,
            user(&sim, 6)
        ));
        let plan = plan_of(&providers, &d).await;
        let again_before_apply = plan_of(&providers, &d).await;
        assert_eq!(
            plan.policies, again_before_apply.policies,
            "planning is stable"
        );
        assert_eq!(plan.policies[1].adds.len(), 1, "{:#?}", plan.policies[1]);

        let report = plan
            .apply(&providers, &ApplyOptions::default())
            .await
            .unwrap();
        assert!(report.is_complete_success(), "{report:#?}");
        let changed: Vec<&str> = report
            .steps
            .iter()
            .map(|step| step.report.product.as_str())
            .collect();
        let crm_id = sim.package_id("crm_tools").unwrap();
        assert_eq!(changed, [crm_id.as_str()], "only crm_tools is changed");
        assert_eq!(
            sim.holders_of(&site_id),
            rows_before,
            "nothing sent for sitewide"
        );
        assert!(sim.holders_of(&crm_id).contains(&user(&sim, 6)));

        let next = plan_of(&providers, &d).await;
        assert!(next.is_empty(), "{:#?}", next.policies);
        assert_eq!(
            next.policies[0], plan.policies[0],
            "the site policy plans the same"
        );
        assert!(next.policies[0].unmanaged.is_some());
    }
}
