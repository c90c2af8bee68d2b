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
    _sims: Sims,
}

/// The demo org's simulators, running (in this process, or served by `sandbox serve`).
#[derive(Debug)]
pub struct Sims {
    /// Alias email -> canonical email, for identity matching.
    pub aliases: HashMap<String, String>,
    /// Purchased seats the Genesys provider is told (Genesys does not report them).
    #[cfg_attr(not(feature = "genesys"), allow(dead_code))]
    pub genesys_seat_totals: Vec<(String, u64)>,
    #[cfg(feature = "apple-vpp")]
    pub apple: licensekit_sim::apple::AppleSim,
    #[cfg(feature = "genesys")]
    pub genesys: licensekit_sim::genesys::GenesysSim,
    #[cfg(feature = "salesforce")]
    pub salesforce: licensekit_sim::salesforce::SalesforceSim,
}

/// Where each simulator listens.
#[derive(Debug, Clone, Default)]
pub struct Listens {
    #[cfg_attr(not(feature = "apple-vpp"), allow(dead_code))]
    pub apple: licensekit_sim::Listen,
    #[cfg_attr(not(feature = "genesys"), allow(dead_code))]
    pub genesys: licensekit_sim::Listen,
    #[cfg_attr(not(feature = "salesforce"), allow(dead_code))]
    pub salesforce: licensekit_sim::Listen,
}

/// Purchased seats the demo org's Genesys provider is told (Genesys does not report them).
const GENESYS_SEAT_TOTALS: [(&str, u64); 3] =
    [("cloudCX2", 125), ("cloudCX3", 36), ("gc2WEMupgrade", 30)];

/// The session token the Salesforce simulator accepts from the start.
#[cfg_attr(not(feature = "salesforce"), allow(dead_code))]
pub const SALESFORCE_TOKEN: &str = "00DSANDBOX!sandbox-session";

/// The Salesforce user client-credentials tokens run as.
#[cfg_attr(not(feature = "salesforce"), allow(dead_code))]
pub fn salesforce_run_as() -> String {
    format!("{}.sandbox", email(100))
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

/// The simulators of every compiled-in vendor, seeded with the demo org, in this process.
pub async fn start() -> std::io::Result<Sandbox> {
    let sims = start_sims(&Listens::default(), None).await?;
    let providers = providers(&sims)?;
    Ok(Sandbox {
        providers,
        aliases: sims.aliases.clone(),
        contracts: contracts(chrono::Utc::now().date_naive()),
        _sims: sims,
    })
}

/// The demo org's contracts, renewals counted from `today`.
pub fn contracts(today: chrono::NaiveDate) -> Vec<Contract> {
    let price = |s: &str| s.parse::<Decimal>().expect("a decimal literal");
    let in_days = |n: u64| today + chrono::Days::new(n);
    vec![
        Contract::new(ProviderKind::from_static("genesys"), "cloudCX2")
            .with_seats(125)
            .with_price(price("75.00"), "EUR", Period::Month)
            .with_renewal(in_days(45))
            .with_notes("annual commit, 3-year term"),
        Contract::new(ProviderKind::from_static("genesys"), "cloudCX3")
            .with_seats(36)
            .with_price(price("155.00"), "EUR", Period::Month)
            .with_renewal(in_days(200)),
        Contract::new(ProviderKind::from_static("genesys"), "gc2WEMupgrade")
            .with_seats(30)
            .with_price(price("20.00"), "EUR", Period::Month),
        Contract::new(ProviderKind::from_static("apple-vpp"), "361309726:STDQ").with_price(
            price("9.99"),
            "USD",
            Period::Year,
        ),
        Contract::new(ProviderKind::from_static("apple-vpp"), "408709785:STDQ")
            .with_price(price("14.99"), "USD", Period::Year)
            .with_notes("shared iPads"),
        Contract::new(ProviderKind::from_static("salesforce"), "acme")
            .with_price(price("25.00"), "USD", Period::Month)
            .with_renewal(in_days(30)),
        Contract::new(ProviderKind::from_static("salesforce"), "crm_tools")
            .with_price(price("40.00"), "USD", Period::Month)
            .with_renewal(in_days(75))
            .with_notes("renews with acme's true-up"),
    ]
}

/// Starts the demo org's simulators where `listens` says, with the latency knob applied.
pub async fn start_sims(
    #[allow(unused_variables)] listens: &Listens,
    #[allow(unused_variables)] file: Option<&seed_file::SeedFile>,
) -> std::io::Result<Sims> {
    #[allow(unused_mut)]
    let mut aliases = HashMap::new();
    #[allow(unused_mut)]
    let mut genesys_seat_totals: Vec<(String, u64)> = GENESYS_SEAT_TOTALS
        .iter()
        .map(|(l, n)| (l.to_string(), *n))
        .collect();
    #[cfg(feature = "apple-vpp")]
    let apple = apple(&listens.apple, file.and_then(|f| f.apple.as_ref())).await?;
    #[cfg(feature = "genesys")]
    let genesys = {
        let part = file.and_then(|f| f.genesys.as_ref());
        if let Some(part) = part {
            genesys_seat_totals = part.seat_totals.clone().into_iter().collect();
        }
        genesys(&listens.genesys, &mut aliases, part).await?
    };
    #[cfg(feature = "salesforce")]
    let salesforce = salesforce(
        &listens.salesforce,
        file.and_then(|f| f.salesforce.as_ref()),
    )
    .await?;
    if let Some(file) = file {
        aliases.extend(file.aliases.clone());
    }
    Ok(Sims {
        aliases,
        genesys_seat_totals,
        #[cfg(feature = "apple-vpp")]
        apple,
        #[cfg(feature = "genesys")]
        genesys,
        #[cfg(feature = "salesforce")]
        salesforce,
    })
}

/// Providers pointed at `sims`, configured as the printed `licensekit.toml` of `sandbox serve`
/// configures them.
pub fn providers(#[allow(unused_variables)] sims: &Sims) -> std::io::Result<Vec<AnyProvider>> {
    #[allow(unused_mut)]
    let mut providers: Vec<AnyProvider> = Vec::new();
    #[cfg(feature = "apple-vpp")]
    {
        use licensekit::apple_vpp::{AppleVppConfig, AppleVppProvider};
        let config = AppleVppConfig::new(secrecy::SecretString::from(sims.apple.stoken()))
            .with_base_url(sims.apple.base_url())
            .allow_http(true)
            .with_polling(Duration::from_millis(20), Duration::from_secs(30));
        providers.push(AppleVppProvider::new(config).map_err(to_io)?.into());
    }
    #[cfg(feature = "genesys")]
    {
        use licensekit::genesys::{GenesysConfig, GenesysProvider};
        let sim_config = sims.genesys.config();
        let mut config = GenesysConfig::new(
            sim_config.client_id.clone(),
            secrecy::SecretString::from(sim_config.client_secret.clone()),
        )
        .with_base_url(sims.genesys.base_url())
        .with_client_options(
            licensekit::ClientOptions::default()
                .with_allow_http(true)
                .with_rate(licensekit::Rate::Off),
        );
        for (license, seats) in &sims.genesys_seat_totals {
            config = config.with_seat_total(license, *seats);
        }
        if let Some(batch) = knob("LICENSEKIT_SANDBOX_BATCH").filter(|n| *n > 0) {
            config = config.with_max_batch(usize::try_from(batch).unwrap_or(usize::MAX));
        }
        providers.push(GenesysProvider::new(config).map_err(to_io)?.into());
    }
    #[cfg(feature = "salesforce")]
    {
        use licensekit::salesforce::{SalesforceConfig, SalesforceProvider};
        let provider = SalesforceProvider::new(
            SalesforceConfig::session(&sims.salesforce.base_url(), SALESFORCE_TOKEN)
                .allow_http(true),
        )
        .map_err(to_io)?;
        providers.push(provider.into());
    }
    Ok(providers)
}

#[cfg_attr(
    not(any(feature = "apple-vpp", feature = "genesys", feature = "salesforce")),
    allow(dead_code)
)]
fn to_io(e: licensekit::Error) -> std::io::Error {
    std::io::Error::other(e.to_string())
}

#[cfg(feature = "apple-vpp")]
async fn apple(
    listen: &licensekit_sim::Listen,
    file: Option<&seed_file::Apple>,
) -> std::io::Result<licensekit_sim::apple::AppleSim> {
    use licensekit_sim::apple::{AppleSim, AppleSimConfig};
    let seed = match file {
        Some(file) => file.seed(),
        None => apple_demo(),
    };
    let sim = AppleSim::start_on(seed, AppleSimConfig::default(), listen).await?;
    sim.network().set_latency(latency());
    Ok(sim)
}

/// The demo org's Apple location.
#[cfg(feature = "apple-vpp")]
fn apple_demo() -> licensekit_sim::apple::AppleSeed {
    use licensekit_sim::apple::{AppleSeed, SimAsset, SimHolder, SimVppUser};

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
    seed
}

#[cfg(feature = "genesys")]
async fn genesys(
    listen: &licensekit_sim::Listen,
    aliases: &mut HashMap<String, String>,
    file: Option<&seed_file::Genesys>,
) -> std::io::Result<licensekit_sim::genesys::GenesysSim> {
    use licensekit_sim::genesys::{
        GenesysSeed, GenesysSim, GenesysSimConfig, SimDirectoryUser, user_id,
    };

    if let Some(file) = file {
        let sim = GenesysSim::start_on(file.seed(), GenesysSimConfig::default(), listen).await?;
        sim.network().set_latency(latency());
        return Ok(sim);
    }

    let now = seed_clock();
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
    let sim = GenesysSim::start_on(seed, GenesysSimConfig::default(), listen).await?;
    sim.remove_directory_entry(&departed);
    sim.checkpoint();
    sim.network().set_latency(latency());
    Ok(sim)
}

#[cfg(feature = "salesforce")]
async fn salesforce(
    listen: &licensekit_sim::Listen,
    file: Option<&seed_file::Salesforce>,
) -> std::io::Result<licensekit_sim::salesforce::SalesforceSim> {
    use licensekit_sim::salesforce::{SalesforceSim, SalesforceSimConfig};
    let (seed, run_as) = match file {
        Some(file) => file.seed()?,
        None => (salesforce_demo(), salesforce_run_as()),
    };
    let config = SalesforceSimConfig {
        run_as_username: Some(run_as),
        ..SalesforceSimConfig::default()
    };
    let sim = SalesforceSim::start_on(seed, config, listen).await?;
    sim.network().set_latency(latency());
    sim.add_token(SALESFORCE_TOKEN);
    Ok(sim)
}

/// The demo org's Salesforce packages and users.
#[cfg(feature = "salesforce")]
fn salesforce_demo() -> licensekit_sim::salesforce::SalesforceSeed {
    use licensekit_sim::salesforce::{SalesforceSeed, SimPackage, SimUser};

    let package = |ns: &str, allowed: i64| SimPackage {
        namespace: ns.into(),
        allowed,
        status: "Active".into(),
        expiration: None,
    };
    let now = seed_clock();
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
    seed
}

/// `sandbox serve --seed-file`: the org to serve instead of the demo org, per vendor (a vendor
/// the file leaves out serves its part of the demo org). TOML, or JSON when the name ends in
/// `.json`:
///
/// ```toml
/// [identity.aliases]                 # optional, copied into the printed licensekit.toml
/// "ada.l@example.com" = "ada@example.com"
///
/// [genesys]                          # licenses: the simulator's catalogue (cloudCX1-3, gc2WEMupgrade)
/// seat_totals = { cloudCX2 = 10 }
/// users = [{ name = "Ada", email = "ada@example.com", licenses = ["cloudCX2"] }]  # id, state optional
///
/// [salesforce]                       # allowed = -1: a site license
/// packages = [{ namespace = "acme", allowed = 10 }]
/// users = [{ username = "ada@example.com.test", email = "ada@example.com", packages = ["acme"] }]
///
/// [apple]                            # kind: app or book
/// assets = [{ adam_id = "361309726", total = 10 }]
/// users = [{ client_user_id = "ada", email = "ada@example.com", assets = ["361309726"] }]
/// devices = [{ serial = "DMP0001", assets = ["361309726"] }]
/// ```
// A vendor compiled out still has its section parsed (one seed file serves every build), so its
// fields go unread.
#[cfg_attr(
    not(all(feature = "apple-vpp", feature = "genesys", feature = "salesforce")),
    allow(dead_code)
)]
pub mod seed_file {
    use std::collections::{BTreeMap, HashMap};
    use std::path::Path;

    use serde::Deserialize;

    #[derive(Debug, Default, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct SeedFile {
        #[serde(default)]
        identity: Identity,
        pub apple: Option<Apple>,
        pub genesys: Option<Genesys>,
        pub salesforce: Option<Salesforce>,
        #[serde(skip)]
        pub aliases: HashMap<String, String>,
    }

    #[derive(Debug, Default, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Identity {
        #[serde(default)]
        aliases: HashMap<String, String>,
    }

    impl SeedFile {
        pub fn load(path: &Path) -> Result<SeedFile, String> {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            let mut file: SeedFile = if path.extension().is_some_and(|e| e == "json") {
                serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?
            } else {
                toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?
            };
            file.aliases = std::mem::take(&mut file.identity.aliases);
            Ok(file)
        }
    }

    fn yes() -> bool {
        true
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Genesys {
        #[serde(default)]
        pub seat_totals: BTreeMap<String, u64>,
        #[serde(default)]
        users: Vec<GenesysUser>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct GenesysUser {
        id: Option<String>,
        name: String,
        #[serde(default)]
        email: String,
        #[serde(default = "active")]
        state: String,
        #[serde(default)]
        licenses: Vec<String>,
    }

    fn active() -> String {
        "active".into()
    }

    #[cfg(feature = "genesys")]
    impl Genesys {
        pub fn seed(&self) -> licensekit_sim::genesys::GenesysSeed {
            use licensekit_sim::genesys::{GenesysSeed, SimDirectoryUser, user_id};
            let mut seed = GenesysSeed::demo(0);
            for (i, u) in self.users.iter().enumerate() {
                let id = u.id.clone().unwrap_or_else(|| user_id(i));
                seed.users.push((id.clone(), u.licenses.clone()));
                seed.directory.push(SimDirectoryUser {
                    id,
                    name: u.name.clone(),
                    email: u.email.clone(),
                    state: u.state.clone(),
                    date_last_login: None,
                });
            }
            seed
        }
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Salesforce {
        #[serde(default)]
        packages: Vec<Package>,
        #[serde(default)]
        users: Vec<SalesforceUser>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Package {
        namespace: String,
        allowed: i64,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct SalesforceUser {
        username: String,
        email: String,
        name: Option<String>,
        #[serde(default = "yes")]
        active: bool,
        profile: Option<String>,
        #[serde(default)]
        packages: Vec<String>,
    }

    #[cfg(feature = "salesforce")]
    impl Salesforce {
        /// The seed and the user client-credentials tokens run as (the first user).
        pub fn seed(
            &self,
        ) -> std::io::Result<(licensekit_sim::salesforce::SalesforceSeed, String)> {
            use licensekit_sim::salesforce::{SalesforceSeed, SimPackage, SimUser};
            let mut seed = SalesforceSeed {
                packages: self
                    .packages
                    .iter()
                    .map(|p| SimPackage {
                        namespace: p.namespace.clone(),
                        allowed: p.allowed,
                        status: "Active".into(),
                        expiration: None,
                    })
                    .collect(),
                ..SalesforceSeed::default()
            };
            for (index, u) in self.users.iter().enumerate() {
                seed.users.push(SimUser {
                    username: u.username.clone(),
                    email: u.email.clone(),
                    name: u.name.clone().unwrap_or_else(|| u.email.clone()),
                    active: u.active,
                    profile: u.profile.clone().unwrap_or_else(|| "Standard User".into()),
                    last_login: None,
                });
                for ns in &u.packages {
                    if !self.packages.iter().any(|p| &p.namespace == ns) {
                        return Err(std::io::Error::other(format!(
                            "seed file: user {} holds unknown package `{ns}`",
                            u.username
                        )));
                    }
                    seed.assignments.push((ns.clone(), index));
                }
            }
            let run_as = self
                .users
                .first()
                .map(|u| u.username.clone())
                .unwrap_or_else(super::salesforce_run_as);
            Ok((seed, run_as))
        }
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Apple {
        #[serde(default)]
        assets: Vec<Asset>,
        #[serde(default)]
        users: Vec<AppleUser>,
        #[serde(default)]
        devices: Vec<Device>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Asset {
        adam_id: String,
        total: i64,
        #[serde(default)]
        kind: AssetKind,
    }

    #[derive(Debug, Default, Deserialize)]
    #[serde(rename_all = "lowercase")]
    enum AssetKind {
        #[default]
        App,
        Book,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct AppleUser {
        client_user_id: String,
        email: Option<String>,
        #[serde(default = "registered")]
        status: String,
        #[serde(default)]
        assets: Vec<String>,
    }

    fn registered() -> String {
        "Registered".into()
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Device {
        serial: String,
        #[serde(default)]
        assets: Vec<String>,
    }

    #[cfg(feature = "apple-vpp")]
    impl Apple {
        pub fn seed(&self) -> licensekit_sim::apple::AppleSeed {
            use licensekit_sim::apple::{AppleSeed, SimAsset, SimHolder, SimVppUser};
            let mut seed = AppleSeed {
                org_name: "Example Org".into(),
                location_name: "Headquarters".into(),
                assets: self
                    .assets
                    .iter()
                    .map(|a| match a.kind {
                        AssetKind::App => SimAsset::app(&a.adam_id, a.total),
                        AssetKind::Book => SimAsset::book(&a.adam_id, a.total),
                    })
                    .collect(),
                ..AppleSeed::default()
            };
            for u in &self.users {
                seed.users.push(SimVppUser {
                    client_user_id: u.client_user_id.clone(),
                    email: u.email.clone(),
                    status: u.status.clone(),
                });
                for adam in &u.assets {
                    seed.assignments.push((
                        adam.clone(),
                        "STDQ".into(),
                        SimHolder::User(u.client_user_id.clone()),
                    ));
                }
            }
            for d in &self.devices {
                for adam in &d.assets {
                    seed.assignments.push((
                        adam.clone(),
                        "STDQ".into(),
                        SimHolder::Serial(d.serial.clone()),
                    ));
                }
            }
            seed
        }
    }
}

/// The moment sign-in dates are seeded from: the start of today (UTC), so two sandboxes started
/// the same day (one embedded, one served) seed the same dates.
#[cfg_attr(
    not(any(feature = "genesys", feature = "salesforce")),
    allow(dead_code)
)]
fn seed_clock() -> chrono::DateTime<chrono::Utc> {
    chrono::Utc::now()
        .date_naive()
        .and_time(chrono::NaiveTime::MIN)
        .and_utc()
}
