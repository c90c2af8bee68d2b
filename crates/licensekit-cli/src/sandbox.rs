//! `--sandbox`: the simulators of every compiled-in vendor, started in-process and seeded with
//! one demo organisation, with the providers pointed at them. No network, no credentials.
//!
//! The demo org (deterministic, so tests can assert exact figures): 300 people
//! `person000@example.com` … `person299@example.com`.
//! - Genesys: people 0–239 as agents (every 15th from 7 inactive; every 20th under an alias email;
//!   emails in mixed case), plus 3 bots without email and one license holder that is no longer in
//!   the directory. cloudCX2 for even people (125 seats configured), cloudCX3 for every 6th from 1
//!   (36 seats configured: over-allocated), the WEM add-on for every 10th, cloudCX1 for the bots.
//! - Apple VPP: people 0–149 as managed users `person-000`… (every 40th from 11 retired); an app
//!   (120 seats) for odd people, a book (20 seats) for even people below 40, and a second app
//!   (40 seats) on 38 shared iPads (devices).
//! - Salesforce: people 100–299 as users (every 25th from 3 inactive); `acme` (110 seats) for even
//!   people, `crm_tools` (20 seats, full) for people 100–119, `sitewide` (site license).
//!
//! Contracts (see [`contracts`]): Genesys seats (125 cloudCX2, 36 cloudCX3 — over-allocated —,
//! 30 WEM add-on) and prices in EUR, one renewing in 45 days; Apple apps priced in USD; Salesforce
//! `acme` and `crm_tools` in USD, renewing in 30 and 75 days. cloudCX1 and `sitewide` have no
//! contract. Last sign-in: some Genesys agents and Salesforce users last signed in more than 90
//! days ago (see the seeds); Apple reports no sign-ins.
//!
//! Two environment variables, read only here, make the sandbox behave like a slow, real org for
//! tests and demos of interruption: `LICENSEKIT_SANDBOX_LATENCY_MS` adds that latency to every
//! simulator request, and `LICENSEKIT_SANDBOX_BATCH` caps the ids per Genesys batch request.

use std::collections::HashMap;
use std::time::Duration;

use licensekit::{AnyProvider, Contract, Decimal, Period, ProviderKind};

/// The people of the demo org (Salesforce's users run up to the last of them).
#[cfg_attr(not(feature = "salesforce"), allow(dead_code))]
pub const PEOPLE: usize = 300;

#[cfg_attr(
    not(any(feature = "apple-vpp", feature = "genesys", feature = "salesforce")),
    allow(dead_code)
)]
pub fn email(i: usize) -> String {
    format!("person{i:03}@example.com")
}

/// Running simulators and the providers pointed at them. Dropping it stops the simulators.
pub struct Sandbox {
    pub providers: Vec<AnyProvider>,
    pub aliases: HashMap<String, String>,
    /// The demo org's contracts (only those of compiled-in vendors matter).
    pub contracts: Vec<Contract>,
    #[cfg(feature = "apple-vpp")]
    _apple: licensekit_sim::apple::AppleSim,
    #[cfg(feature = "genesys")]
    _genesys: licensekit_sim::genesys::GenesysSim,
    #[cfg(feature = "salesforce")]
    _salesforce: licensekit_sim::salesforce::SalesforceSim,
}

/// A number from the environment (unset or unreadable: none).
fn knob(name: &str) -> Option<u64> {
    std::env::var(name).ok()?.trim().parse().ok()
}

#[cfg_attr(
    not(any(feature = "apple-vpp", feature = "genesys", feature = "salesforce")),
    allow(dead_code)
)]
fn latency() -> Duration {
    Duration::from_millis(knob("LICENSEKIT_SANDBOX_LATENCY_MS").unwrap_or(0))
}

pub async fn start() -> std::io::Result<Sandbox> {
    #[allow(unused_mut)]
    let mut providers: Vec<AnyProvider> = Vec::new();
    #[allow(unused_mut)]
    let mut aliases = HashMap::new();
    #[cfg(feature = "apple-vpp")]
    let apple = {
        let (sim, provider) = apple().await?;
        providers.push(provider);
        sim
    };
    #[cfg(feature = "genesys")]
    let genesys = {
        let (sim, provider) = genesys(&mut aliases).await?;
        providers.push(provider);
        sim
    };
    #[cfg(feature = "salesforce")]
    let salesforce = {
        let (sim, provider) = salesforce().await?;
        providers.push(provider);
        sim
    };
    Ok(Sandbox {
        providers,
        aliases,
        contracts: contracts(chrono::Utc::now().date_naive()),
        #[cfg(feature = "apple-vpp")]
        _apple: apple,
        #[cfg(feature = "genesys")]
        _genesys: genesys,
        #[cfg(feature = "salesforce")]
        _salesforce: salesforce,
    })
}

/// The demo org's contracts, renewals counted from `today`.
pub fn contracts(today: chrono::NaiveDate) -> Vec<Contract> {
    let price = |s: &str| s.parse::<Decimal>().expect("a decimal literal");
    let in_days = |n: u64| today + chrono::Days::new(n);
    vec![
        Contract::new(ProviderKind::Genesys, "cloudCX2")
            .with_seats(125)
            .with_price(price("75.00"), "EUR", Period::Month)
            .with_renewal(in_days(45))
            .with_notes("annual commit, 3-year term"),
        Contract::new(ProviderKind::Genesys, "cloudCX3")
            .with_seats(36)
            .with_price(price("155.00"), "EUR", Period::Month)
            .with_renewal(in_days(200)),
        Contract::new(ProviderKind::Genesys, "gc2WEMupgrade")
            .with_seats(30)
            .with_price(price("20.00"), "EUR", Period::Month),
        Contract::new(ProviderKind::AppleVpp, "361309726:STDQ").with_price(
            price("9.99"),
            "USD",
            Period::Year,
        ),
        Contract::new(ProviderKind::AppleVpp, "408709785:STDQ")
            .with_price(price("14.99"), "USD", Period::Year)
            .with_notes("shared iPads"),
        Contract::new(ProviderKind::Salesforce, "acme")
            .with_price(price("25.00"), "USD", Period::Month)
            .with_renewal(in_days(30)),
        Contract::new(ProviderKind::Salesforce, "crm_tools")
            .with_price(price("40.00"), "USD", Period::Month)
            .with_renewal(in_days(75))
            .with_notes("renews with acme's true-up"),
    ]
}

#[cfg_attr(
    not(any(feature = "apple-vpp", feature = "genesys", feature = "salesforce")),
    allow(dead_code)
)]
fn to_io(e: licensekit::Error) -> std::io::Error {
    std::io::Error::other(e.to_string())
}

#[cfg(feature = "apple-vpp")]
async fn apple() -> std::io::Result<(licensekit_sim::apple::AppleSim, AnyProvider)> {
    use licensekit::apple_vpp::{AppleVppConfig, AppleVppProvider};
    use licensekit_sim::apple::{
        AppleSeed, AppleSim, AppleSimConfig, SimAsset, SimHolder, SimVppUser,
    };

    let mut seed = AppleSeed {
        org_name: "Example Org".into(),
        location_name: "Headquarters".into(),
        assets: vec![
            SimAsset::app("361309726", 120),
            SimAsset::app("408709785", 40),
            SimAsset::book("1439786743", 20),
        ],
        users: Vec::new(),
        assignments: Vec::new(),
    };
    for i in 0..150 {
        let id = format!("person-{i:03}");
        seed.users.push(SimVppUser {
            client_user_id: id.clone(),
            email: Some(email(i)),
            status: if i % 40 == 11 {
                "Retired".into()
            } else {
                "Registered".into()
            },
        });
        if i % 2 == 1 {
            seed.assignments.push((
                "361309726".into(),
                "STDQ".into(),
                SimHolder::User(id.clone()),
            ));
        }
        if i % 2 == 0 && i < 40 {
            seed.assignments
                .push(("1439786743".into(), "STDQ".into(), SimHolder::User(id)));
        }
    }
    for ipad in 0..38 {
        seed.assignments.push((
            "408709785".into(),
            "STDQ".into(),
            SimHolder::Serial(format!("DMPSBX{ipad:04}")),
        ));
    }
    let sim = AppleSim::start(seed, AppleSimConfig::default()).await?;
    sim.network().set_latency(latency());
    let config = AppleVppConfig::new(secrecy::SecretString::from(sim.stoken()))
        .with_base_url(sim.base_url())
        .allow_http(true)
        .with_polling(
            std::time::Duration::from_millis(20),
            std::time::Duration::from_secs(30),
        );
    let provider = AppleVppProvider::new(config).map_err(to_io)?;
    Ok((sim, provider.into()))
}

#[cfg(feature = "genesys")]
async fn genesys(
    aliases: &mut HashMap<String, String>,
) -> std::io::Result<(licensekit_sim::genesys::GenesysSim, AnyProvider)> {
    use licensekit::genesys::{GenesysConfig, GenesysProvider};
    use licensekit_sim::genesys::{
        GenesysSeed, GenesysSim, GenesysSimConfig, SimDirectoryUser, user_id,
    };

    let now = chrono::Utc::now();
    let mut seed = GenesysSeed::demo(0);
    for i in 0..240 {
        let mut licenses = Vec::new();
        if i % 2 == 0 {
            licenses.push("cloudCX2".to_string());
        }
        if i % 6 == 1 {
            licenses.push("cloudCX3".to_string());
        }
        if i % 10 == 0 {
            licenses.push("gc2WEMupgrade".to_string());
        }
        let id = user_id(i);
        let address = if i % 20 == 0 {
            let alias = format!("agent.{i}@example.com");
            aliases.insert(alias.clone(), email(i));
            alias
        } else {
            // Mixed case and padding: identity matching folds both.
            format!(" Person{i:03}@Example.com")
        };
        seed.users.push((id.clone(), licenses));
        seed.directory.push(SimDirectoryUser {
            id,
            name: format!("Person {i}"),
            email: address,
            state: if i % 15 == 7 {
                "inactive".into()
            } else {
                "active".into()
            },
            // Every 9th agent (from 4) last logged in 100–190 days ago, the others within
            // the last 40 days; agents from 230 on never did (Genesys then omits the field).
            date_last_login: (i < 230).then(|| {
                let days = if i % 9 == 4 {
                    100 + (i % 10) * 10
                } else {
                    i % 40
                };
                (now - chrono::Duration::days(days as i64))
                    .format("%Y-%m-%dT%H:%M:%S%.3fZ")
                    .to_string()
            }),
        });
    }
    for bot in 0..3 {
        let id = user_id(900 + bot);
        seed.users.push((id.clone(), vec!["cloudCX1".to_string()]));
        seed.directory.push(SimDirectoryUser {
            id,
            name: format!("IVR bot {bot}"),
            email: String::new(),
            state: "active".into(),
            date_last_login: None,
        });
    }
    let departed = user_id(950);
    seed.users
        .push((departed.clone(), vec!["cloudCX2".to_string()]));
    let sim = GenesysSim::start(seed, GenesysSimConfig::default()).await?;
    sim.remove_directory_entry(&departed);
    sim.network().set_latency(latency());
    let mut config = GenesysConfig::new(
        GenesysSimConfig::default().client_id,
        secrecy::SecretString::from(GenesysSimConfig::default().client_secret),
    )
    .with_base_url(sim.base_url())
    .with_client_options(
        licensekit::client::ClientOptions::default()
            .with_allow_http(true)
            .with_rate(licensekit::client::Rate::Off),
    );
    // Purchased seats come from the contracts (see `contracts`), not `seat_totals`.
    if let Some(batch) = knob("LICENSEKIT_SANDBOX_BATCH").filter(|n| *n > 0) {
        config = config.with_max_batch(usize::try_from(batch).unwrap_or(usize::MAX));
    }
    let provider = GenesysProvider::new(config).map_err(to_io)?;
    Ok((sim, provider.into()))
}

#[cfg(feature = "salesforce")]
async fn salesforce() -> std::io::Result<(licensekit_sim::salesforce::SalesforceSim, AnyProvider)> {
    use licensekit::salesforce::{SalesforceProvider, session};
    use licensekit_sim::salesforce::{
        SalesforceSeed, SalesforceSim, SalesforceSimConfig, SimPackage, SimUser,
    };

    let package = |ns: &str, allowed: i64| SimPackage {
        namespace: ns.into(),
        allowed,
        status: "Active".into(),
        expiration: None,
    };
    let now = chrono::Utc::now();
    let mut seed = SalesforceSeed {
        packages: vec![
            package("acme", 110),
            package("crm_tools", 20),
            package("sitewide", -1),
        ],
        users: Vec::new(),
        assignments: Vec::new(),
    };
    for (index, person) in (100..PEOPLE).enumerate() {
        seed.users.push(SimUser {
            username: format!("{}.sandbox", email(person)),
            email: email(person),
            name: format!("Person {person}"),
            active: person % 25 != 3,
            profile: if person % 2 == 0 {
                "Sales User".into()
            } else {
                "Standard User".into()
            },
            // Every 7th user (from 2) last logged in 95–155 days ago, the others within the
            // last 60 days; every 50th never logged in (null).
            last_login: (person % 50 != 1).then(|| {
                let days = if person % 7 == 2 {
                    95 + (person % 4) * 20
                } else {
                    person % 60
                };
                (now - chrono::Duration::days(days as i64))
                    .format("%Y-%m-%dT%H:%M:%S%.3f+0000")
                    .to_string()
            }),
        });
        if person % 2 == 0 {
            seed.assignments.push(("acme".into(), index));
        }
        if person < 120 {
            seed.assignments.push(("crm_tools".into(), index));
        }
    }
    let sim = SalesforceSim::start(seed, SalesforceSimConfig::default()).await?;
    sim.network().set_latency(latency());
    let token = "00DSANDBOX!sandbox-session";
    sim.add_token(token);
    let provider =
        SalesforceProvider::new(session(&sim.base_url(), token).allow_http(true)).map_err(to_io)?;
    Ok((sim, provider.into()))
}
