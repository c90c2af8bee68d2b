//! `faults`: bulk assign then revoke with half of all API requests failing (every fault kind the
//! simulators inject, on writes and reads alike), at the default retry policy. Reports the calls
//! it took against the no-fault minimum, and checks every outcome against the simulator's state
//! before and after: `contradicted` must be 0.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use licensekit::apple_vpp::{AppleVppConfig, AppleVppProvider};
use licensekit::genesys::{GenesysConfig, GenesysProvider};
use licensekit::salesforce::{SalesforceConfig, SalesforceProvider};
use licensekit::{
    ChangeAction, ChangeReport, HolderId, LicenseProvider, LicenseProviderExt, Outcome, ProductId,
};
use licensekit::{ClientOptions, Rate};
use licensekit_sim::CallCounter;
use licensekit_sim::apple::{AppleSeed, AppleSim, AppleSimConfig, SimAsset, SimHolder};
use licensekit_sim::faults::{Fault, Faults};
use licensekit_sim::genesys::{GenesysSeed, GenesysSim, GenesysSimConfig, user_id};
use licensekit_sim::salesforce::{SalesforceSeed, SalesforceSim, SalesforceSimConfig};

use crate::{Row, api_calls, div_ceil};

const RATE: f64 = 0.5;

fn faults(kinds: &[Fault]) -> Faults {
    Faults {
        lost_response_delay: Duration::from_millis(1500),
        ..Faults::new(0x5EED, RATE, kinds)
    }
}

/// Default client settings, but no pacing (no latency here) and a 1 s request timeout so lost
/// answers are noticed quickly.
fn options() -> ClientOptions {
    ClientOptions::default()
        .with_allow_http(true)
        .with_rate(Rate::Off)
        .with_timeout(Duration::from_secs(1))
}

/// Outcomes that contradict the state change (`before` -> `after`) the run caused.
fn contradicted(
    report: &ChangeReport,
    before: &BTreeSet<HolderId>,
    after: &BTreeSet<HolderId>,
) -> usize {
    let wanted = report.action == ChangeAction::Assign;
    report
        .items
        .iter()
        .filter(|i| {
            let in_state = after.contains(&i.holder) == wanted;
            let changed = before.contains(&i.holder) != after.contains(&i.holder);
            match i.outcome {
                Outcome::Applied => !in_state,
                Outcome::AlreadyInState => changed || !in_state,
                Outcome::Failed(_) => in_state,
                _ => false,
            }
        })
        .count()
}

struct Case<'a> {
    vendor: &'static str,
    provider: &'a dyn LicenseProvider,
    product: ProductId,
    holders: Vec<HolderId>,
    counter: &'a CallCounter,
    state: &'a dyn Fn() -> BTreeSet<HolderId>,
    set_faults: &'a dyn Fn(Option<Faults>),
    minimum: [(u64, String); 2],
}

async fn run(case: Case<'_>, rows: &mut Vec<Row>) {
    for (i, action) in [ChangeAction::Assign, ChangeAction::Revoke]
        .into_iter()
        .enumerate()
    {
        let before_state = (case.state)();
        let before = case.counter.snapshot();
        (case.set_faults)(Some(faults(&kinds(case.vendor))));
        let started = Instant::now();
        let report = match action {
            ChangeAction::Assign => case.provider.assign(&case.product, &case.holders).await,
            ChangeAction::Revoke => case.provider.revoke(&case.product, &case.holders).await,
        };
        let wall = started.elapsed().as_secs_f64();
        (case.set_faults)(None);
        let calls = api_calls(&before, case.counter);
        let outcome = match report {
            Ok(r) => {
                let c = r.counts();
                let lies = contradicted(&r, &before_state, &(case.state)());
                format!(
                    "settled: {} applied, {} already, {} pending, {} not done, {} unconfirmed; contradicted {lies}",
                    c.applied, c.already_in_state, c.pending, c.failed, c.unconfirmed
                )
            }
            Err(e) => format!("error: {e}"),
        };
        let (minimum, formula) = case.minimum[i].clone();
        rows.push(Row {
            scenario: format!("bulk {action}, 50 % faults"),
            vendor: case.vendor.into(),
            size: case.holders.len(),
            calls: Some(calls),
            minimum_calls: Some(minimum),
            ratio: Some(calls as f64 / minimum as f64),
            formula: Some(format!("no-fault minimum: {formula}")),
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
        });
    }
}

/// Apple's token and the Salesforce session used here are static: an expired one stops a run by
/// design (tested elsewhere), so for them that fault is left out.
fn kinds(vendor: &str) -> Vec<Fault> {
    Fault::ALL
        .into_iter()
        .filter(|f| vendor == "genesys" || *f != Fault::TokenExpired)
        .collect()
}

pub async fn at_half(n: usize, rows: &mut Vec<Row>) {
    // Genesys.
    let g = GenesysSim::start(GenesysSeed::demo(n), GenesysSimConfig::default())
        .await
        .unwrap();
    let genesys = GenesysProvider::new(
        GenesysConfig::new("sim-client", "sim-secret".to_string().into())
            .with_base_url(g.base_url())
            .with_client_options(options()),
    )
    .unwrap();
    let min = 1 + div_ceil(n, 100);
    let formula = format!("1 definition check + ceil({n}/100) batches");
    run(
        Case {
            vendor: "genesys",
            provider: &genesys,
            product: ProductId::new("cloudCX3"),
            holders: (0..n).map(|i| HolderId::user(user_id(i))).collect(),
            counter: g.calls(),
            state: &|| {
                g.holders_of("cloudCX3")
                    .into_iter()
                    .map(HolderId::User)
                    .collect()
            },
            set_faults: &|f| g.set_faults(f),
            minimum: [(min, formula.clone()), (min, formula)],
        },
        rows,
    )
    .await;

    // Salesforce.
    let users = n + n / 9 + 1;
    let s = SalesforceSim::start(
        SalesforceSeed::demo(users, 2 * n as i64),
        SalesforceSimConfig::default(),
    )
    .await
    .unwrap();
    s.add_token("bench");
    let salesforce = SalesforceProvider::new(
        SalesforceConfig::session(&s.base_url(), "bench").with_client_options(options()),
    )
    .unwrap();
    let all = s.user_ids();
    let package = s.package_id("acme").unwrap();
    let pages = |rows: usize| div_ceil(rows, 2000).max(1);
    run(
        Case {
            vendor: "salesforce",
            provider: &salesforce,
            product: ProductId::new(package.clone()),
            holders: (0..users)
                .filter(|i| i % 10 != 9)
                .take(n)
                .map(|i| HolderId::user(all[i].clone()))
                .collect(),
            counter: s.calls(),
            state: &|| {
                s.holders_of(&package)
                    .into_iter()
                    .map(HolderId::User)
                    .collect()
            },
            set_faults: &|f| s.set_faults(f),
            minimum: [
                (
                    1 + pages(0) + div_ceil(n, 200),
                    format!("1 package query + 1 row page + ceil({n}/200) collections"),
                ),
                (
                    1 + pages(n) + div_ceil(n, 200),
                    format!(
                        "1 package query + ceil({n}/2000) row pages + ceil({n}/200) collections"
                    ),
                ),
            ],
        },
        rows,
    )
    .await;

    // Apple, users and devices half and half.
    let a = AppleSim::start(
        AppleSeed {
            assets: vec![SimAsset::app("361309726", 2 * n as i64)],
            ..AppleSeed::demo(n / 2 + n / 18 + 1)
        },
        AppleSimConfig {
            page_size: 1000,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let mut config = AppleVppConfig::new(a.stoken().into())
        .with_base_url(a.base_url())
        .with_polling(Duration::from_millis(10), Duration::from_secs(60));
    config.client = options();
    let apple = AppleVppProvider::new(config).unwrap();
    let mut holders: Vec<HolderId> = (0..)
        .filter(|i| i % 10 != 9)
        .take(n / 2)
        .map(|i| HolderId::user(format!("user-{i:04}")))
        .collect();
    holders.extend((0..n - n / 2).map(|i| HolderId::device(format!("DMPF{i:06}"))));
    let events = div_ceil(n / 2, 1000);
    run(
        Case {
            vendor: "apple-vpp",
            provider: &apple,
            product: ProductId::new("361309726:STDQ"),
            holders,
            counter: a.calls(),
            state: &|| {
                a.holders_of("361309726", "STDQ")
                    .into_iter()
                    .map(|h| match h {
                        SimHolder::User(u) => HolderId::User(u),
                        SimHolder::Serial(s) => HolderId::Device(s),
                    })
                    .collect()
            },
            set_faults: &|f| a.set_faults(f),
            minimum: [
                (
                    4 + 2 * events,
                    "client+service config + asset + 1 holder page + events × (submit + 1 poll)"
                        .into(),
                ),
                (
                    1 + div_ceil(n, 1000) + 2 * events,
                    "asset + holder pages + events × (submit + 1 poll)".into(),
                ),
            ],
        },
        rows,
    )
    .await;
}
