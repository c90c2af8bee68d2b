//! `sandbox serve --scale N`: an org of N people present in every compiled-in vendor, each
//! holding one license there, for benchmarks (the bench's `list` and `report` scenarios serve
//! it) and for trying licensekit at size.
//!
//! Person `i` is `person{i:03}@example.com` everywhere (so a report matches every person across
//! the vendors): Genesys agent `user_id(i)` holding cloudCX2, Salesforce user holding `acme`,
//! Apple managed user `person-{i:03}` holding the app 361309726. Every 10th person (from 9) is
//! inactive at Genesys and Salesforce (a reclaim candidate); every 7th (from 3) last signed in
//! 120 days ago, the others 10 days ago. Seats: N + N/10 everywhere (Genesys: told through the
//! printed `seat_totals`). Contracts (printed in the `licensekit.toml`): the demo org's prices.

use std::collections::HashMap;

use licensekit::{Contract, Decimal, Period, ProviderKind};

use crate::sandbox::{self, Listens, Sims};

/// Seats of each product: every person's plus a tenth unassigned.
fn seats(n: usize) -> u64 {
    (n + n / 10) as u64
}

#[cfg_attr(
    not(any(feature = "genesys", feature = "salesforce")),
    allow(dead_code)
)]
fn days_since_login(i: usize) -> i64 {
    if i % 7 == 3 { 120 } else { 10 }
}

#[cfg_attr(
    not(any(feature = "genesys", feature = "salesforce")),
    allow(dead_code)
)]
fn inactive(i: usize) -> bool {
    i % 10 == 9
}

/// The contracts of a scaled org, renewals counted from `today`.
pub fn contracts(n: usize, today: chrono::NaiveDate) -> Vec<Contract> {
    let price = |s: &str| s.parse::<Decimal>().expect("a decimal literal");
    vec![
        Contract::new(ProviderKind::from_static("genesys"), "cloudCX2")
            .with_seats(seats(n))
            .with_price(price("75.00"), "EUR", Period::Month)
            .with_renewal(today + chrono::Days::new(45)),
        Contract::new(ProviderKind::from_static("apple-vpp"), "361309726:STDQ").with_price(
            price("9.99"),
            "USD",
            Period::Year,
        ),
        Contract::new(ProviderKind::from_static("salesforce"), "acme")
            .with_price(price("25.00"), "USD", Period::Month)
            .with_renewal(today + chrono::Days::new(30)),
    ]
}

/// Starts the simulators of every compiled-in vendor with `n` people, where `listens` says.
pub async fn start_sims(
    #[allow(unused_variables)] listens: &Listens,
    n: usize,
) -> std::io::Result<Sims> {
    #[allow(unused_variables)]
    let now = chrono::Utc::now()
        .date_naive()
        .and_time(chrono::NaiveTime::MIN)
        .and_utc();
    #[allow(unused_variables)]
    let login = |i: usize, format: &str| {
        (now - chrono::Duration::days(days_since_login(i)))
            .format(format)
            .to_string()
    };
    Ok(Sims {
        aliases: HashMap::new(),
        genesys_seat_totals: vec![("cloudCX2".into(), seats(n))],
        #[cfg(feature = "apple-vpp")]
        apple: {
            use licensekit_sim::apple::{
                AppleSeed, AppleSim, AppleSimConfig, SimAsset, SimHolder, SimVppUser,
            };
            let mut seed = AppleSeed {
                org_name: "Example Org".into(),
                location_name: "Headquarters".into(),
                assets: vec![SimAsset::app("361309726", seats(n) as i64)],
                users: Vec::with_capacity(n),
                assignments: Vec::with_capacity(n),
            };
            for i in 0..n {
                let id = format!("person-{i:03}");
                seed.assignments.push((
                    "361309726".into(),
                    "STDQ".into(),
                    SimHolder::User(id.clone()),
                ));
                seed.users.push(SimVppUser {
                    client_user_id: id,
                    email: Some(sandbox::email(i)),
                    status: "Registered".into(),
                });
            }
            // Pages of 1,000: the largest Apple was seen to serve (it chooses 549–1,000).
            let config = AppleSimConfig {
                page_size: 1000,
                ..AppleSimConfig::default()
            };
            AppleSim::start_on(seed, config, &listens.apple).await?
        },
        #[cfg(feature = "genesys")]
        genesys: {
            use licensekit_sim::genesys::{
                GenesysSeed, GenesysSim, GenesysSimConfig, SimDirectoryUser, user_id,
            };
            let mut seed = GenesysSeed::demo(0);
            for i in 0..n {
                let id = user_id(i);
                seed.users.push((id.clone(), vec!["cloudCX2".to_string()]));
                seed.directory.push(SimDirectoryUser {
                    id,
                    name: format!("Person {i}"),
                    email: sandbox::email(i),
                    state: if inactive(i) { "inactive" } else { "active" }.into(),
                    date_last_login: Some(login(i, "%Y-%m-%dT%H:%M:%S%.3fZ")),
                });
            }
            GenesysSim::start_on(seed, GenesysSimConfig::default(), &listens.genesys).await?
        },
        #[cfg(feature = "salesforce")]
        salesforce: {
            use licensekit_sim::salesforce::{
                SalesforceSeed, SalesforceSim, SalesforceSimConfig, SimPackage, SimUser,
            };
            let mut seed = SalesforceSeed {
                packages: vec![SimPackage {
                    namespace: "acme".into(),
                    allowed: seats(n) as i64,
                    status: "Active".into(),
                    expiration: None,
                }],
                users: Vec::with_capacity(n),
                assignments: Vec::with_capacity(n),
            };
            for i in 0..n {
                seed.users.push(SimUser {
                    username: format!("{}.sandbox", sandbox::email(i)),
                    email: sandbox::email(i),
                    name: format!("Person {i}"),
                    active: !inactive(i),
                    profile: "Standard User".into(),
                    last_login: Some(login(i, "%Y-%m-%dT%H:%M:%S%.3f+0000")),
                });
                seed.assignments.push(("acme".into(), i));
            }
            // Client credentials run as person 100, as in the demo org (N ≤ 100: use the
            // session id instead).
            let config = SalesforceSimConfig {
                run_as_username: Some(sandbox::salesforce_run_as()),
                ..SalesforceSimConfig::default()
            };
            let sim = SalesforceSim::start_on(seed, config, &listens.salesforce).await?;
            sim.add_token(sandbox::SALESFORCE_TOKEN);
            sim
        },
    })
}
