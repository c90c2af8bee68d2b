//! 4. Desired state: plan and apply of N holders × 3 vendors, API calls per vendor against the
//!    formula: the plan's listings + apply's re-read of the fingerprints + the engine's minimum
//!    for each product's changes.
//!
//! The org: N people, the same email at every vendor, every 10th inactive everywhere.
//! - Genesys: cloudCX2 held by the first half; policy `exact`, everyone active → adds the active
//!   second half, removes the inactive first half.
//! - Salesforce: acme held by nobody; policy `ensure`, the people who will hold cloudCX2 at
//!   Genesys (a cross-vendor rule over the plan's own Genesys result) → adds every active person.
//! - Apple: the app held by the odd users; policy `exact`, everyone active → adds the active even,
//!   removes the retired odd.
//!
//! `LICENSEKIT_BENCH_ROUTES=1` prints the calls per route of each phase and vendor.

use licensekit::{ClientOptions, Rate};
use std::collections::BTreeMap;
use std::time::Instant;

use licensekit::apple_vpp::{AppleVppConfig, AppleVppProvider};
use licensekit::genesys::{GenesysConfig, GenesysProvider};
use licensekit::plan::{ApplyOptions, DesiredState, Plan, PlanOptions};
use licensekit::salesforce::{SalesforceConfig, SalesforceProvider};
use licensekit::{ChangeAction, LicenseProvider};
use licensekit_sim::CallCounter;
use licensekit_sim::apple::{AppleSeed, AppleSim, AppleSimConfig, SimAsset, SimHolder};
use licensekit_sim::genesys::{
    GenesysSeed, GenesysSim, GenesysSimConfig, SimDirectoryUser, user_id,
};
use licensekit_sim::salesforce::{SalesforceSeed, SalesforceSim, SalesforceSimConfig};

use crate::{Row, api_calls, div_ceil};

const DESIRED: &str = r#"
version = 1

[[policy]]
name = "genesys-cx2"
provider = "genesys"
product = "cloudCX2"
mode = "exact"
who.all_active = true

[[policy]]
name = "salesforce-acme"
provider = "salesforce"
product = "acme"
mode = "ensure"
who.holders_of = [{ provider = "genesys", product = "cloudCX2" }]

[[policy]]
name = "apple-app"
provider = "apple-vpp"
product = "361309726"
mode = "exact"
who.all_active = true
"#;

/// Calls of one vendor in one phase, against its formula.
fn row(
    phase: &str,
    vendor: &str,
    n: usize,
    calls: u64,
    minimum: (u64, String),
    wall: f64,
    outcome: String,
) -> Row {
    Row {
        scenario: phase.into(),
        vendor: vendor.into(),
        size: n,
        calls: Some(calls),
        minimum_calls: Some(minimum.0),
        ratio: Some(calls as f64 / minimum.0 as f64),
        formula: Some(minimum.1),
        wall_secs: wall,
        floor_secs: None,
        floor_formula: None,
        of_floor: None,
        before_secs: None,
        before: None,
        throttled_429: None,
        records_per_sec: None,
        peak_rss_mib: None,
        cpu_secs: None,
        records_per_cpu_sec: None,
        outcome,
    }
}

pub async fn plan_and_apply(n: usize, rows: &mut Vec<Row>) {
    let email = |i: usize| format!("person{i}@example.com");
    let inactive = |i: usize| i % 10 == 9;

    let mut g_seed = GenesysSeed::demo(0);
    g_seed.users = (0..n)
        .map(|i| {
            let held = if i < n / 2 {
                vec!["cloudCX2".to_string()]
            } else {
                vec![]
            };
            (user_id(i), held)
        })
        .collect();
    g_seed.directory = (0..n)
        .map(|i| SimDirectoryUser {
            id: user_id(i),
            name: format!("Person {i}"),
            email: email(i),
            state: if inactive(i) { "inactive" } else { "active" }.into(),
            date_last_login: None,
        })
        .collect();
    let g = GenesysSim::start(g_seed, GenesysSimConfig::default())
        .await
        .unwrap();

    // SalesforceSeed::demo: every 10th user inactive, as here.
    let mut s_seed = SalesforceSeed::demo(n, 2 * n as i64);
    s_seed.assignments.clear();
    for (i, u) in s_seed.users.iter_mut().enumerate() {
        u.email = email(i);
    }
    let s = SalesforceSim::start(s_seed, SalesforceSimConfig::default())
        .await
        .unwrap();
    s.add_token("bench");

    // AppleSeed::demo: every 10th user retired, as here.
    let page = 1000;
    let mut a_seed = AppleSeed {
        assets: vec![SimAsset::app("361309726", 2 * n as i64)],
        ..AppleSeed::demo(n)
    };
    for (i, u) in a_seed.users.iter_mut().enumerate() {
        u.email = Some(email(i));
    }
    a_seed.assignments = (0..n)
        .filter(|i| i % 2 == 1)
        .map(|i| {
            (
                "361309726".into(),
                "STDQ".into(),
                SimHolder::User(format!("user-{i:04}")),
            )
        })
        .collect();
    let a = AppleSim::start(
        a_seed,
        AppleSimConfig {
            page_size: page,
            polls_until_complete: 0,
            ..Default::default()
        },
    )
    .await
    .unwrap();

    let genesys = GenesysProvider::new(
        GenesysConfig::new("sim-client", "sim-secret".to_string().into())
            .with_base_url(g.base_url())
            .with_client_options(
                ClientOptions::default()
                    .with_allow_http(true)
                    .with_rate(Rate::Off),
            ),
    )
    .unwrap();
    let salesforce =
        SalesforceProvider::new(SalesforceConfig::session(&s.base_url(), "bench").allow_http(true))
            .unwrap();
    let mut apple_config = AppleVppConfig::new(a.stoken().into())
        .with_base_url(a.base_url())
        .allow_http(true)
        .with_polling(
            std::time::Duration::from_millis(10),
            std::time::Duration::from_secs(600),
        );
    apple_config.client.rate = Rate::Off;
    let apple = AppleVppProvider::new(apple_config).unwrap();
    let providers: [&dyn LicenseProvider; 3] = [&genesys, &salesforce, &apple];
    let counters: [(&str, &CallCounter); 3] = [
        ("genesys", g.calls()),
        ("salesforce", s.calls()),
        ("apple-vpp", a.calls()),
    ];
    let snapshot =
        || -> Vec<BTreeMap<String, u64>> { counters.iter().map(|(_, c)| c.snapshot()).collect() };

    let desired = DesiredState::from_toml(DESIRED, "bench").expect("the bench's desired state");
    let before = snapshot();
    let started = Instant::now();
    let plan = Plan::compute(&providers, &desired, &PlanOptions::default()).await;
    let plan_wall = started.elapsed().as_secs_f64();
    let plan = match plan {
        Ok(plan) => plan,
        Err(e) => {
            rows.push(row(
                "plan",
                "all three",
                n,
                0,
                (1, String::new()),
                plan_wall,
                format!("error: {e}"),
            ));
            return;
        }
    };
    if std::env::var_os("LICENSEKIT_BENCH_ROUTES").is_some() {
        for ((v, c), b) in counters.iter().zip(&before) {
            eprintln!("plan {v}: {:?}", diff(b, &c.snapshot()));
        }
    }
    let plan_calls: Vec<u64> = counters
        .iter()
        .zip(&before)
        .map(|((_, c), b)| api_calls(b, c))
        .collect();

    let before = snapshot();
    let started = Instant::now();
    let applied = plan.apply(&providers, &ApplyOptions::default()).await;
    let apply_wall = started.elapsed().as_secs_f64();
    if std::env::var_os("LICENSEKIT_BENCH_ROUTES").is_some() {
        for ((v, c), b) in counters.iter().zip(&before) {
            eprintln!("apply {v}: {:?}", diff(b, &c.snapshot()));
        }
    }
    let apply_calls: Vec<u64> = counters
        .iter()
        .zip(&before)
        .map(|((_, c), b)| api_calls(b, c))
        .collect();
    let outcome_of = |vendor: &str| match &applied {
        Err(e) => format!("error: {e}"),
        Ok(report) => {
            let mut counts = licensekit::OutcomeCounts::default();
            for step in report
                .steps
                .iter()
                .filter(|s| s.report.provider.as_str() == vendor)
            {
                for item in &step.report.items {
                    counts.add(item.outcome.status());
                }
            }
            format!(
                "{} applied, {} already, {} pending, {} failed",
                counts.applied, counts.already_in_state, counts.pending, counts.failed
            )
        }
    };
    let changes = |provider: &str, action: ChangeAction| -> usize {
        plan.policies
            .iter()
            .filter(|p| p.provider.as_str() == provider)
            .map(|p| match action {
                ChangeAction::Assign => p.adds.len(),
                ChangeAction::Revoke => p.removes.len(),
            })
            .sum()
    };

    // Formulas (API routes; token requests are not counted).
    let g_pages = div_ceil(n, 100);
    let (g_add, g_remove) = (
        changes("genesys", ChangeAction::Assign),
        changes("genesys", ChangeAction::Revoke),
    );
    let g_plan = (
        1 + 3 * g_pages,
        format!(
            "plan: 1 definitions + ⌈{n}/100⌉ license pages for the seat counts + ⌈{n}/100⌉ license pages listed + ⌈{n}/100⌉ directory pages"
        ),
    );
    let g_apply = (
        g_pages + (1 + div_ceil(g_remove, 100)) + (1 + div_ceil(g_add, 100)),
        format!(
            "apply: ⌈{n}/100⌉ license pages re-read (org-wide) + revoke {g_remove} (1 + ⌈{g_remove}/100⌉) + assign {g_add} (1 + ⌈{g_add}/100⌉)"
        ),
    );
    // Salesforce: nobody holds acme, so its license listing is one (empty) page, and that page
    // is the cheaper read before an assign (the adapter takes the smaller of ⌈used/2000⌉ pages
    // and ⌈k/300⌉ look-ups).
    let s_add = changes("salesforce", ChangeAction::Assign);
    let s_plan = (
        1 + div_ceil(n, 2000) + 1,
        format!("plan: 1 package query + ⌈{n}/2000⌉ user pages + 1 license page"),
    );
    let s_apply = (
        1 + 1 + 1.min(div_ceil(s_add, 300)) + div_ceil(s_add, 200),
        format!(
            "apply: 1 license page re-read + assign {s_add} (1 package query + min(1 license page, ⌈{s_add}/300⌉ look-ups) + ⌈{s_add}/200⌉ collections)"
        ),
    );
    // Apple: the re-read is the asset's listing (filtered by product); the service config is
    // read once, on the first change.
    let held_apple = n / 2;
    let (a_add, a_remove) = (
        changes("apple-vpp", ChangeAction::Assign),
        changes("apple-vpp", ChangeAction::Revoke),
    );
    let holder_pages = |held: usize| div_ceil(held, page).max(1);
    let a_plan = (
        1 + 1 + holder_pages(held_apple) + div_ceil(n, page),
        format!(
            "plan: client config + 1 asset page + ⌈{held_apple}/{page}⌉ assignment pages + ⌈{n}/{page}⌉ user pages"
        ),
    );
    let a_apply = (
        holder_pages(held_apple)
            + 1
            + (1 + holder_pages(held_apple) + 2 * div_ceil(a_remove, 1000))
            + (1 + holder_pages(held_apple - a_remove) + 2 * div_ceil(a_add, 1000)),
        format!(
            "apply: ⌈{held_apple}/{page}⌉ assignment pages re-read + service config + revoke {a_remove} (asset + ⌈{held_apple}/{page}⌉ holder pages + ⌈{a_remove}/1000⌉ × (submit + 1 poll)) + assign {a_add} (asset + ⌈{}/{page}⌉ holder pages + ⌈{a_add}/1000⌉ × (submit + 1 poll))",
            held_apple - a_remove
        ),
    );
    for (i, (vendor, (p, a))) in [
        ("genesys", (g_plan, g_apply)),
        ("salesforce", (s_plan, s_apply)),
        ("apple-vpp", (a_plan, a_apply)),
    ]
    .into_iter()
    .enumerate()
    {
        rows.push(row(
            "plan",
            vendor,
            n,
            plan_calls[i],
            p,
            plan_wall,
            format!(
                "{} adds, {} removes",
                changes(vendor, ChangeAction::Assign),
                changes(vendor, ChangeAction::Revoke)
            ),
        ));
        rows.push(row(
            "apply",
            vendor,
            n,
            apply_calls[i],
            a,
            apply_wall,
            outcome_of(vendor),
        ));
    }
    let again = Plan::compute(&providers, &desired, &PlanOptions::default()).await;
    if !again.as_ref().is_ok_and(Plan::is_empty) {
        rows.push(row(
            "plan again",
            "all three",
            n,
            0,
            (1, "empty".into()),
            0.0,
            "error: the second plan is not empty".into(),
        ));
    }
}

fn diff(before: &BTreeMap<String, u64>, after: &BTreeMap<String, u64>) -> BTreeMap<String, u64> {
    after
        .iter()
        .map(|(k, v)| (k.clone(), v - before.get(k).copied().unwrap_or(0)))
        .filter(|(_, v)| *v > 0)
        .collect()
}
