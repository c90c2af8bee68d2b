//! `licensekit-bench`: end-to-end benchmarks against the simulators (release build).
//!
//! 1. Bulk assign then revoke of N holders per vendor: API calls made vs the minimum the vendor's
//!    batch limits allow, wall time with simulated latency and a rate limit vs the ceiling
//!    calls / rate, and 429s seen.
//! 2. Listing M assignments through the item stream: records/s, pages vs the minimum, peak RSS
//!    above the simulator's own data.
//! 3. The cross-vendor report over P people × 3 vendors: wall time and peak RSS.
//!
//! `--smoke` runs small sizes in seconds (CI); the full sizes are run by hand and recorded in
//! `BENCHMARKS.md`.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use clap::Parser;
use futures::TryStreamExt;
use licensekit::apple_vpp::{AppleVppConfig, AppleVppProvider};
use licensekit::client::RetryConfig;
use licensekit::genesys::{GenesysConfig, GenesysProvider};
use licensekit::report::{Report, ReportOptions};
use licensekit::salesforce::{SalesforceProvider, session};
use licensekit::{
    AssignmentFilter, ChangeReport, HolderId, LicenseProvider, LicenseProviderExt, ProductId,
};
use licensekit_sim::CallCounter;
use licensekit_sim::apple::{AppleSeed, AppleSim, AppleSimConfig, SimAsset, SimHolder};
use licensekit_sim::genesys::{GenesysSeed, GenesysSim, GenesysSimConfig, user_id};
use licensekit_sim::salesforce::{SalesforceSeed, SalesforceSim, SalesforceSimConfig};
use serde::Serialize;

#[derive(Parser, Debug)]
#[command(about = "licensekit end-to-end benchmarks against the simulators")]
struct Args {
    /// Small sizes, fast rates: a CI check that every scenario runs
    #[arg(long)]
    smoke: bool,
    /// Holders per bulk assign/revoke
    #[arg(long, default_value_t = 10_000)]
    holders: usize,
    /// Simulated latency per request, milliseconds
    #[arg(long, default_value_t = 50)]
    latency_ms: u64,
    /// Rate limit per vendor, requests per minute (Genesys documents 300; used for all three)
    #[arg(long, default_value_t = 300)]
    rpm: u32,
    /// Assignments listed (Genesys and Apple)
    #[arg(long, default_value_t = 1_000_000)]
    list: usize,
    /// Assignments listed from Salesforce (its simulator keeps full records, so smaller)
    #[arg(long, default_value_t = 200_000)]
    list_salesforce: usize,
    /// People in the cross-vendor report (each present in all three vendors)
    #[arg(long, default_value_t = 100_000)]
    report_people: usize,
    /// Write the results as JSON here
    #[arg(long)]
    json: Option<std::path::PathBuf>,
    /// Only these scenarios (bulk, list, report)
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
}

#[derive(Debug, Serialize)]
struct Row {
    scenario: String,
    vendor: String,
    size: usize,
    calls: Option<u64>,
    minimum_calls: Option<u64>,
    ratio: Option<f64>,
    formula: Option<String>,
    wall_secs: f64,
    ceiling_secs: Option<f64>,
    fraction_of_ceiling: Option<f64>,
    throttled_429: Option<u64>,
    records_per_sec: Option<f64>,
    peak_rss_mib: Option<f64>,
    outcome: String,
}

fn retry() -> RetryConfig {
    RetryConfig::default().with_backoff(Duration::from_millis(20), Duration::from_secs(2))
}

/// Calls per route made during `f`, API routes only (token endpoints excluded: one per run).
fn api_calls(before: &BTreeMap<String, u64>, counter: &CallCounter) -> u64 {
    counter
        .snapshot()
        .into_iter()
        .filter(|(route, _)| !route.contains("oauth"))
        .map(|(route, n)| n - before.get(&route).copied().unwrap_or(0))
        .sum()
}

fn summary(report: &ChangeReport) -> String {
    let c = report.counts();
    format!(
        "{} applied, {} already, {} pending, {} failed",
        c.applied, c.already_in_state, c.pending, c.failed
    )
}

fn kib(field: &str) -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse::<f64>().ok()
}

/// Resets the peak-RSS mark (Linux), returning the current RSS in MiB.
fn reset_peak() -> Option<f64> {
    std::fs::write("/proc/self/clear_refs", "5").ok()?;
    Some(kib("VmRSS:")? / 1024.0)
}

fn peak_above(baseline: Option<f64>) -> Option<f64> {
    Some(kib("VmHWM:")? / 1024.0 - baseline?)
}

struct BulkCase<'a> {
    vendor: &'static str,
    provider: &'a dyn LicenseProvider,
    product: ProductId,
    holders: Vec<HolderId>,
    counter: &'a CallCounter,
    throttled: &'a dyn Fn() -> u64,
    /// Minimum calls for (assign, revoke), with the formula.
    minimum: [(u64, String); 2],
}

async fn bulk(case: BulkCase<'_>, rpm: u32, rows: &mut Vec<Row>) {
    for (i, action) in ["assign", "revoke"].iter().enumerate() {
        let before = case.counter.snapshot();
        let throttled_before = (case.throttled)();
        let started = Instant::now();
        let report = if i == 0 {
            case.provider.assign(&case.product, &case.holders).await
        } else {
            case.provider.revoke(&case.product, &case.holders).await
        };
        let wall = started.elapsed().as_secs_f64();
        let calls = api_calls(&before, case.counter);
        let (minimum, formula) = case.minimum[i].clone();
        let ceiling = calls as f64 / (rpm as f64 / 60.0);
        rows.push(Row {
            scenario: format!("bulk {action}"),
            vendor: case.vendor.into(),
            size: case.holders.len(),
            calls: Some(calls),
            minimum_calls: Some(minimum),
            ratio: Some(calls as f64 / minimum as f64),
            formula: Some(formula),
            wall_secs: wall,
            ceiling_secs: Some(ceiling),
            fraction_of_ceiling: Some(ceiling / wall),
            throttled_429: Some((case.throttled)() - throttled_before),
            records_per_sec: None,
            peak_rss_mib: None,
            outcome: match report {
                Ok(r) => summary(&r),
                Err(e) => format!("error: {e}"),
            },
        });
    }
}

fn div_ceil(a: usize, b: usize) -> u64 {
    a.div_ceil(b) as u64
}

async fn bulk_genesys(args: &Args, latency: Duration, rows: &mut Vec<Row>) {
    let n = args.holders;
    let sim = GenesysSim::start(
        GenesysSeed::demo(n),
        GenesysSimConfig {
            rate_limit_per_minute: Some(args.rpm as usize),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    sim.network().set_latency(latency);
    let config = GenesysConfig::new("sim-client", "sim-secret".to_string().into())
        .with_base_url(sim.base_url())
        .allow_http(true)
        .with_requests_per_minute(Some(args.rpm));
    let provider = GenesysProvider::with_retry(config, retry()).unwrap();
    let holders: Vec<HolderId> = (0..n).map(|i| HolderId::user(user_id(i))).collect();
    let formula = format!("1 definition check + ceil({n}/100) batches");
    let min = 1 + div_ceil(n, 100);
    let throttled = || sim.rate_limited();
    bulk(
        BulkCase {
            vendor: "genesys",
            provider: &provider,
            product: ProductId::new("cloudCX3"),
            holders,
            counter: sim.calls(),
            throttled: &throttled,
            minimum: [(min, formula.clone()), (min, formula)],
        },
        args.rpm,
        rows,
    )
    .await;
}

async fn bulk_salesforce(args: &Args, latency: Duration, rows: &mut Vec<Row>) {
    let n = args.holders;
    let users = n + n / 9 + 1;
    let sim = SalesforceSim::start(
        SalesforceSeed::demo(users, 2 * n as i64),
        SalesforceSimConfig::default(),
    )
    .await
    .unwrap();
    sim.add_token("bench");
    sim.network().set_latency(latency);
    sim.network()
        .set_rate_limit(Some((args.rpm as usize, Duration::from_secs(60))));
    let mut config = session(&sim.base_url(), "bench").allow_http(true);
    config.requests_per_minute = Some(args.rpm);
    let provider = SalesforceProvider::with_retry(config, retry()).unwrap();
    let all = sim.user_ids();
    let holders: Vec<HolderId> = (0..users)
        .filter(|i| i % 10 != 9)
        .take(n)
        .map(|i| HolderId::user(all[i].clone()))
        .collect();
    let formula =
        format!("1 package query + ceil({n}/300) holder queries + ceil({n}/200) collection calls");
    let min = 1 + div_ceil(n, 300) + div_ceil(n, 200);
    let network = sim.network().clone();
    let throttled = move || network.throttled();
    bulk(
        BulkCase {
            vendor: "salesforce",
            provider: &provider,
            product: ProductId::new("acme"),
            holders,
            counter: sim.calls(),
            throttled: &throttled,
            minimum: [(min, formula.clone()), (min, formula)],
        },
        args.rpm,
        rows,
    )
    .await;
}

async fn bulk_apple(args: &Args, latency: Duration, devices: bool, rows: &mut Vec<Row>) {
    let n = args.holders;
    let users = if devices { 0 } else { n + n / 9 + 1 };
    let page = 1000;
    let seed = AppleSeed {
        assets: vec![SimAsset::app("361309726", 2 * n as i64)],
        ..AppleSeed::demo(users)
    };
    let sim = AppleSim::start(
        seed,
        AppleSimConfig {
            page_size: page,
            polls_until_complete: 0,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    sim.network().set_latency(latency);
    sim.network()
        .set_rate_limit(Some((args.rpm as usize, Duration::from_secs(60))));
    let mut config = AppleVppConfig::new(sim.stoken().into())
        .with_base_url(sim.base_url())
        .allow_http(true)
        .with_polling(Duration::from_millis(10), Duration::from_secs(600));
    config.requests_per_minute = Some(args.rpm);
    let provider = AppleVppProvider::with_retry(config, retry()).unwrap();
    let holders: Vec<HolderId> = if devices {
        (0..n)
            .map(|i| HolderId::device(format!("DMPB{i:07}")))
            .collect()
    } else {
        (0..users)
            .filter(|i| i % 10 != 9)
            .take(n)
            .map(|i| HolderId::user(format!("user-{i:04}")))
            .collect()
    };
    let events = div_ceil(n, 1000);
    let listing_revoke = div_ceil(n, page);
    let assign = (
        3 + 1 + 2 * events,
        format!(
            "client+service config + asset + 1 holder page + ceil({n}/1000) events × (submit + 1 status poll)"
        ),
    );
    let revoke = (
        1 + listing_revoke + 2 * events,
        format!(
            "asset + ceil({n}/{page}) holder pages + ceil({n}/1000) events × (submit + 1 status poll)"
        ),
    );
    let network = sim.network().clone();
    let throttled = move || network.throttled();
    bulk(
        BulkCase {
            vendor: if devices {
                "apple-vpp (devices)"
            } else {
                "apple-vpp (users)"
            },
            provider: &provider,
            product: ProductId::new("361309726:STDQ"),
            holders,
            counter: sim.calls(),
            throttled: &throttled,
            minimum: [assign, revoke],
        },
        args.rpm,
        rows,
    )
    .await;
}

async fn list_case(
    vendor: &str,
    provider: &dyn LicenseProvider,
    counter: &CallCounter,
    size: usize,
    min_pages: u64,
    formula: String,
    rows: &mut Vec<Row>,
) {
    let before = counter.snapshot();
    let baseline = reset_peak();
    let started = Instant::now();
    let mut stream = provider.assignments(AssignmentFilter::all());
    let mut n = 0usize;
    let mut outcome = String::from("ok");
    loop {
        match stream.try_next().await {
            Ok(Some(_)) => n += 1,
            Ok(None) => break,
            Err(e) => {
                outcome = format!("error: {e}");
                break;
            }
        }
    }
    let wall = started.elapsed().as_secs_f64();
    let pages = api_calls(&before, counter);
    if n != size {
        outcome = format!("{outcome}; listed {n} of {size}");
    }
    rows.push(Row {
        scenario: "list".into(),
        vendor: vendor.into(),
        size,
        calls: Some(pages),
        minimum_calls: Some(min_pages),
        ratio: Some(pages as f64 / min_pages as f64),
        formula: Some(formula),
        wall_secs: wall,
        ceiling_secs: None,
        fraction_of_ceiling: None,
        throttled_429: None,
        records_per_sec: Some(n as f64 / wall),
        peak_rss_mib: peak_above(baseline),
        outcome,
    });
}

async fn lists(args: &Args, rows: &mut Vec<Row>) {
    let m = args.list;
    {
        let mut seed = GenesysSeed::demo(0);
        seed.users = (0..m)
            .map(|i| (user_id(i), vec!["cloudCX1".to_string()]))
            .collect();
        let sim = GenesysSim::start(seed, GenesysSimConfig::default())
            .await
            .unwrap();
        let config = GenesysConfig::new("sim-client", "sim-secret".to_string().into())
            .with_base_url(sim.base_url())
            .allow_http(true)
            .with_requests_per_minute(None);
        let provider = GenesysProvider::new(config).unwrap();
        list_case(
            "genesys",
            &provider,
            sim.calls(),
            m,
            div_ceil(m, 100),
            format!("ceil({m}/100) pages"),
            rows,
        )
        .await;
    }
    {
        let mut seed = AppleSeed {
            assets: vec![SimAsset::app("361309726", 2 * m as i64)],
            ..AppleSeed::demo(1)
        };
        seed.assignments = (0..m)
            .map(|i| {
                (
                    "361309726".into(),
                    "STDQ".into(),
                    SimHolder::Serial(format!("DMPL{i:08}")),
                )
            })
            .collect();
        let sim = AppleSim::start(
            seed,
            AppleSimConfig {
                page_size: 1000,
                ..Default::default()
            },
        )
        .await
        .unwrap();
        let provider = AppleVppProvider::new(
            AppleVppConfig::new(sim.stoken().into())
                .with_base_url(sim.base_url())
                .allow_http(true),
        )
        .unwrap();
        // + 1: the one-time client/config ownership check.
        list_case(
            "apple-vpp",
            &provider,
            sim.calls(),
            m,
            1 + div_ceil(m, 1000),
            format!("1 client config + ceil({m}/1000) pages"),
            rows,
        )
        .await;
    }
    {
        let s = args.list_salesforce;
        let mut seed = SalesforceSeed::demo(s, s as i64 + 10);
        seed.assignments = (0..s).map(|i| ("acme".to_string(), i)).collect();
        // Inactive seeded users may hold seats (seeding bypasses the insert rules).
        let sim = SalesforceSim::start(seed, SalesforceSimConfig::default())
            .await
            .unwrap();
        sim.add_token("bench");
        let provider =
            SalesforceProvider::new(session(&sim.base_url(), "bench").allow_http(true)).unwrap();
        list_case(
            "salesforce",
            &provider,
            sim.calls(),
            s,
            div_ceil(s, 2000),
            format!("ceil({s}/2000) pages"),
            rows,
        )
        .await;
    }
}

async fn report(args: &Args, rows: &mut Vec<Row>) {
    let p = args.report_people;
    // Every person has the same email in all three vendors, so the report matches them.
    let email = |i: usize| format!("person{i}@example.com");
    let mut g_seed = GenesysSeed::demo(0);
    g_seed.users = (0..p)
        .map(|i| (user_id(i), vec!["cloudCX2".to_string()]))
        .collect();
    g_seed.directory = (0..p)
        .map(|i| licensekit_sim::genesys::SimDirectoryUser {
            id: user_id(i),
            name: format!("Person {i}"),
            email: email(i),
            state: "active".into(),
            date_last_login: Some("2026-10-01T09:00:00.000Z".into()),
        })
        .collect();
    let g = GenesysSim::start(g_seed, GenesysSimConfig::default())
        .await
        .unwrap();
    let mut s_seed = SalesforceSeed::demo(p, p as i64);
    s_seed.assignments = (0..p).map(|i| ("acme".to_string(), i)).collect();
    for (i, u) in s_seed.users.iter_mut().enumerate() {
        u.email = email(i);
        u.last_login = Some("2026-10-01T09:00:00.000+0000".into());
    }
    let s = SalesforceSim::start(s_seed, SalesforceSimConfig::default())
        .await
        .unwrap();
    s.add_token("bench");
    let mut a_seed = AppleSeed {
        assets: vec![SimAsset::app("361309726", p as i64)],
        ..AppleSeed::demo(p)
    };
    for (i, u) in a_seed.users.iter_mut().enumerate() {
        u.email = Some(email(i));
    }
    a_seed.assignments = (0..p)
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
            page_size: 1000,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let genesys = GenesysProvider::new(
        GenesysConfig::new("sim-client", "sim-secret".to_string().into())
            .with_base_url(g.base_url())
            .allow_http(true)
            .with_requests_per_minute(None),
    )
    .unwrap();
    let salesforce =
        SalesforceProvider::new(session(&s.base_url(), "bench").allow_http(true)).unwrap();
    let apple = AppleVppProvider::new(
        AppleVppConfig::new(a.stoken().into())
            .with_base_url(a.base_url())
            .allow_http(true),
    )
    .unwrap();
    let providers: Vec<&dyn LicenseProvider> = vec![&genesys, &salesforce, &apple];
    let baseline = reset_peak();
    let started = Instant::now();
    let report = Report::collect(&providers, &ReportOptions::default(), &|_, _| {}).await;
    let wall = started.elapsed().as_secs_f64();
    let assignments: u64 = report.providers.iter().map(|t| t.assignments).sum();
    rows.push(Row {
        scenario: "report".into(),
        vendor: "all three".into(),
        size: p,
        calls: None,
        minimum_calls: None,
        ratio: None,
        formula: None,
        wall_secs: wall,
        ceiling_secs: None,
        fraction_of_ceiling: None,
        throttled_429: None,
        records_per_sec: Some(assignments as f64 / wall),
        peak_rss_mib: peak_above(baseline),
        outcome: format!(
            "{} people, {} assignments, {} errors",
            report.people.len(),
            assignments,
            report.errors.len()
        ),
    });
}

fn fmt(v: Option<f64>, digits: usize) -> String {
    v.map_or("-".into(), |v| format!("{v:.digits$}"))
}

fn print_table(rows: &[Row]) {
    println!(
        "{:<12} {:<20} {:>9} {:>7} {:>7} {:>6} {:>9} {:>9} {:>6} {:>5} {:>10} {:>9}  outcome",
        "scenario",
        "vendor",
        "size",
        "calls",
        "min",
        "ratio",
        "wall s",
        "ceiling s",
        "ceil%",
        "429s",
        "records/s",
        "RSS MiB"
    );
    for r in rows {
        println!(
            "{:<12} {:<20} {:>9} {:>7} {:>7} {:>6} {:>9.2} {:>9} {:>6} {:>5} {:>10} {:>9}  {}",
            r.scenario,
            r.vendor,
            r.size,
            r.calls.map_or("-".into(), |c| c.to_string()),
            r.minimum_calls.map_or("-".into(), |c| c.to_string()),
            fmt(r.ratio, 2),
            r.wall_secs,
            fmt(r.ceiling_secs, 1),
            fmt(r.fraction_of_ceiling.map(|f| f * 100.0), 0),
            r.throttled_429.map_or("-".into(), |c| c.to_string()),
            fmt(r.records_per_sec, 0),
            fmt(r.peak_rss_mib, 1),
            r.outcome
        );
    }
    for r in rows.iter().filter(|r| r.formula.is_some()) {
        println!(
            "  minimum for {} {}: {}",
            r.scenario,
            r.vendor,
            r.formula.as_deref().unwrap_or("")
        );
    }
}

#[tokio::main]
async fn main() {
    let mut args = Args::parse();
    if args.smoke {
        args.holders = 1_200;
        args.latency_ms = 2;
        args.rpm = 60_000;
        args.list = 20_000;
        args.list_salesforce = 5_000;
        args.report_people = 2_000;
    }
    let latency = Duration::from_millis(args.latency_ms);
    let run = |name: &str| args.only.is_empty() || args.only.iter().any(|o| o == name);
    let mut rows = Vec::new();
    if run("bulk") {
        bulk_genesys(&args, latency, &mut rows).await;
        bulk_salesforce(&args, latency, &mut rows).await;
        bulk_apple(&args, latency, false, &mut rows).await;
        bulk_apple(&args, latency, true, &mut rows).await;
    }
    if run("list") {
        lists(&args, &mut rows).await;
    }
    if run("report") {
        report(&args, &mut rows).await;
    }
    print_table(&rows);
    if let Some(path) = &args.json {
        std::fs::write(
            path,
            serde_json::to_string_pretty(&rows).expect("rows serialize"),
        )
        .expect("write the JSON results");
        println!("wrote {}", path.display());
    }
    let bad: Vec<&Row> = rows
        .iter()
        .filter(|r| {
            r.outcome.starts_with("error")
                || r.outcome.contains("; listed")
                || r.outcome.contains(" failed") && !r.outcome.contains(" 0 failed")
        })
        .collect();
    if !bad.is_empty() {
        eprintln!("{} scenario(s) did not complete", bad.len());
        std::process::exit(1);
    }
}
