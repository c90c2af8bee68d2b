//! `licensekit-bench`: end-to-end benchmarks against the simulators (release build).
//!
//! 1. Bulk assign then revoke of N holders per vendor at default settings: API calls made vs
//!    the minimum the vendor's batch limits allow, wall time with simulated latency (Genesys: under
//!    the simulator's per-token sliding window) vs the floor, 429s seen, and the old figure.
//! 2. `window`: Genesys beyond one window (40,000 holders by default), in-process.
//! 3. `cli`: Genesys assign then revoke through the `licensekit` binary, two processes, as a user
//!    runs it.
//! 4. Listing M assignments per vendor through the item stream, from the standalone server
//!    (`licensekit sandbox serve --scale M`, another process): records per CPU-second and per
//!    wall second, pages vs the minimum, peak RSS of the measured process (`served.rs`).
//! 5. The cross-vendor report over P people × 3 vendors, cost and activity included, from the
//!    same server: CPU time, wall time and peak RSS of the measured process.
//!
//! The floor of a Genesys run, with a sliding window of W requests per window, C calls on one
//! token, per-call time t and k in flight: (⌈C / W⌉ − 1) × window + (the last window's calls ÷ k)
//! × t. The old pacer (one request every window / W, no burst) needed C × window / W.
//! 6. Desired state (`plan`): plan and apply of N holders × 3 vendors, API calls against the
//!    formula (listings + the re-read of the fingerprints + the engine's minimum per change).
//! 7. `history`: a snapshot of P people × 3 vendors written to SQLite (and PostgreSQL when a
//!    server is given), and `diff` of two such snapshots: wall time and peak RSS.
//!
//! `--smoke` runs small sizes in seconds (CI); the full sizes are run by hand and recorded in
//! `BENCHMARKS.md`.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use clap::Parser;
use licensekit::apple_vpp::{AppleVppConfig, AppleVppProvider};
use licensekit::genesys::DEFAULT_CONCURRENCY as GENESYS_CONCURRENCY;
use licensekit::genesys::{GenesysConfig, GenesysProvider};
use licensekit::salesforce::{SalesforceConfig, SalesforceProvider};
use licensekit::{ChangeReport, HolderId, LicenseProvider, LicenseProviderExt, ProductId};
use licensekit::{ClientOptions, Rate, RetryConfig};
use licensekit_sim::CallCounter;
use licensekit_sim::apple::{AppleSeed, AppleSim, AppleSimConfig, SimAsset};
use licensekit_sim::genesys::{GenesysSeed, GenesysSim, GenesysSimConfig, user_id};
use licensekit_sim::salesforce::{SalesforceSeed, SalesforceSim, SalesforceSimConfig};
use serde::Serialize;

mod faults;
mod history;
mod plan;
mod served;

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
    /// The Genesys simulator's per-token sliding window: requests allowed per window (Genesys
    /// documents 300 per minute)
    #[arg(long, default_value_t = 300)]
    rpm: u32,
    /// The length of that window, seconds
    #[arg(long, default_value_t = 60)]
    window_secs: u64,
    /// Holders of the `window` scenario (Genesys beyond one window)
    #[arg(long, value_delimiter = ',', default_value = "40000")]
    window_holders: Vec<usize>,
    /// The `licensekit` binary for the `cli` and `report` scenarios [default: next to this binary]
    #[arg(long)]
    cli: Option<std::path::PathBuf>,
    /// Assignments listed per vendor (`list`: from `licensekit sandbox serve --scale N`, in
    /// another process)
    #[arg(long, default_value_t = 1_000_000)]
    list: usize,
    /// People in the cross-vendor report (each present in all three vendors)
    #[arg(long, default_value_t = 100_000)]
    report_people: usize,
    /// People in the history store scenario (each holding a seat at all three vendors)
    #[arg(long, default_value_t = 100_000)]
    history_people: usize,
    /// A PostgreSQL server for the history scenario (a user who may create databases)
    /// [env: LICENSEKIT_TEST_POSTGRES_URL, which .ci/postgres.sh exports]
    #[arg(long, env = "LICENSEKIT_TEST_POSTGRES_URL")]
    postgres_url: Option<String>,
    /// Write the results as JSON here
    #[arg(long)]
    json: Option<std::path::PathBuf>,
    /// Only these scenarios (bulk, window, cli, list, report, plan, faults, history)
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Internal: be the measured process of `list` or `report` (see `served.rs`)
    #[arg(long, hide = true, requires = "info")]
    measure: Option<String>,
    /// Internal: the vendor `--measure list` lists
    #[arg(long, hide = true)]
    vendor: Option<String>,
    /// Internal: the `--write-info` file of the server `--measure` reads from
    #[arg(long, hide = true)]
    info: Option<std::path::PathBuf>,
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
    /// The least wall time the vendor's limits and the latency allow.
    floor_secs: Option<f64>,
    floor_formula: Option<String>,
    /// `wall_secs / floor_secs`.
    of_floor: Option<f64>,
    /// The figure before this change (computed for the old pacer, or measured at the old
    /// defaults), with how it was obtained.
    before_secs: Option<f64>,
    before: Option<String>,
    throttled_429: Option<u64>,
    records_per_sec: Option<f64>,
    peak_rss_mib: Option<f64>,
    /// CPU time (user + system) of the measured licensekit process (`list`, `report`: the
    /// simulators run in another process).
    cpu_secs: Option<f64>,
    records_per_cpu_sec: Option<f64>,
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
        "{} applied, {} already, {} pending, {} failed, {} unconfirmed",
        c.applied, c.already_in_state, c.pending, c.failed, c.unconfirmed
    )
}

struct BulkCase<'a> {
    vendor: String,
    provider: &'a dyn LicenseProvider,
    product: ProductId,
    holders: Vec<HolderId>,
    counter: &'a CallCounter,
    throttled: &'a dyn Fn() -> u64,
    /// Minimum calls for (assign, revoke), with the formula.
    minimum: [(u64, String); 2],
}

/// What one operation measured.
struct Measured {
    calls: u64,
    wall: f64,
    throttled: u64,
    outcome: String,
}

async fn measure(case: &BulkCase<'_>, assign: bool) -> Measured {
    let before = case.counter.snapshot();
    let throttled_before = (case.throttled)();
    let started = Instant::now();
    let report = if assign {
        case.provider.assign(&case.product, &case.holders).await
    } else {
        case.provider.revoke(&case.product, &case.holders).await
    };
    Measured {
        wall: started.elapsed().as_secs_f64(),
        calls: api_calls(&before, case.counter),
        throttled: (case.throttled)() - throttled_before,
        outcome: match report {
            Ok(r) => summary(&r),
            Err(e) => format!("error: {e}"),
        },
    }
}

fn bulk_row(case: &BulkCase<'_>, i: usize, m: Measured) -> Row {
    let (minimum, formula) = case.minimum[i].clone();
    Row {
        scenario: format!("bulk {}", ["assign", "revoke"][i]),
        vendor: case.vendor.clone(),
        size: case.holders.len(),
        calls: Some(m.calls),
        minimum_calls: Some(minimum),
        ratio: Some(m.calls as f64 / minimum as f64),
        formula: Some(formula),
        wall_secs: m.wall,
        floor_secs: None,
        floor_formula: None,
        of_floor: None,
        before_secs: None,
        before: None,
        throttled_429: Some(m.throttled),
        records_per_sec: None,
        peak_rss_mib: None,
        cpu_secs: None,
        records_per_cpu_sec: None,
        outcome: m.outcome,
    }
}

/// The sliding-window floor of `calls` on one token: full windows, then the last window's calls
/// at `k` in flight, `t` each.
fn window_floor(calls: u64, allowance: u64, window: f64, k: usize, t: f64) -> f64 {
    let windows = calls.div_ceil(allowance).max(1);
    let last = calls - (windows - 1) * allowance;
    (windows - 1) as f64 * window + last as f64 / k as f64 * t
}

fn window_formula(calls: u64, args: &Args, k: usize) -> String {
    format!(
        "(ceil({calls}/{w}) - 1) x {s} s + (last window's calls / {k}) x {t} ms",
        w = args.rpm,
        s = args.window_secs,
        t = args.latency_ms
    )
}

/// The old smooth pacer's figure: one request every window / W, no burst.
fn old_pacer(calls: u64, args: &Args) -> (f64, String) {
    (
        calls as f64 * args.window_secs as f64 / args.rpm as f64,
        format!(
            "old pacer, computed: {calls} calls x {}/{} s",
            args.window_secs, args.rpm
        ),
    )
}

/// Fills the floor and old-pacer columns of a Genesys row whose calls ran on one token.
fn genesys_figures(row: &mut Row, args: &Args, k: usize, floor_calls: u64, floor: f64) {
    let calls = row.calls.unwrap_or(0);
    row.floor_secs = Some(floor);
    row.floor_formula = Some(window_formula(floor_calls, args, k));
    row.of_floor = Some(row.wall_secs / floor);
    let (old, how) = old_pacer(calls, args);
    row.before_secs = Some(old);
    row.before = Some(how);
}

fn div_ceil(a: usize, b: usize) -> u64 {
    a.div_ceil(b) as u64
}

/// The Genesys simulator with the per-token sliding window and latency of `args`.
async fn genesys_sim(args: &Args, holders: usize) -> GenesysSim {
    let sim = GenesysSim::start(
        GenesysSeed::demo(holders),
        GenesysSimConfig {
            rate_limit_per_minute: Some(args.rpm as usize),
            rate_limit_window: Duration::from_secs(args.window_secs),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    sim.network()
        .set_latency(Duration::from_millis(args.latency_ms));
    sim
}

/// Default settings, except plain HTTP to reach the simulator (and, in a smoke run with a short
/// window, that window: the default is Genesys's 60 s).
fn genesys_options(args: &Args) -> ClientOptions {
    let options = ClientOptions::default().with_allow_http(true);
    if args.window_secs == 60 && args.rpm == 300 {
        options
    } else {
        options.with_rate(
            Rate::parse(&format!("{}/{}s", args.rpm, args.window_secs)).expect("a valid rate"),
        )
    }
}

/// Genesys assign then revoke of `n` holders in-process: one provider, one token, so the floor
/// is that of both operations' calls together.
async fn genesys_rows(args: &Args, n: usize, scenario: &str) -> Vec<Row> {
    let sim = genesys_sim(args, n).await;
    let config = GenesysConfig::new("sim-client", "sim-secret".to_string().into())
        .with_base_url(sim.base_url())
        .with_client_options(genesys_options(args));
    let provider = GenesysProvider::with_retry(config, retry()).unwrap();
    let formula = format!("1 definition check + ceil({n}/100) batches");
    let min = 1 + div_ceil(n, 100);
    let throttled = || sim.rate_limited();
    let case = BulkCase {
        vendor: "genesys".into(),
        provider: &provider,
        product: ProductId::new("cloudCX3"),
        holders: (0..n).map(|i| HolderId::user(user_id(i))).collect(),
        counter: sim.calls(),
        throttled: &throttled,
        minimum: [(min, formula.clone()), (min, formula)],
    };
    let t = args.latency_ms as f64 / 1000.0;
    let k = GENESYS_CONCURRENCY;
    let (w, win) = (args.rpm as u64, args.window_secs as f64);
    let mut rows = Vec::new();
    let mut calls_so_far = 0;
    let mut floor_so_far = 0.0;
    for (i, assign) in [true, false].into_iter().enumerate() {
        let mut row = bulk_row(&case, i, measure(&case, assign).await);
        // The floor of this operation: the whole token's floor so far, minus what came before.
        calls_so_far += row.calls.unwrap_or(0);
        let floor = window_floor(calls_so_far, w, win, k, t);
        genesys_figures(&mut row, args, k, calls_so_far, floor - floor_so_far);
        floor_so_far = floor;
        row.scenario = format!("{scenario} {}", ["assign", "revoke"][i]);
        rows.push(row);
    }
    // Both operations: the figure the check reads.
    let calls: u64 = rows.iter().filter_map(|r| r.calls).sum();
    let mut both = Row {
        scenario: format!("{scenario} both"),
        size: n,
        calls: Some(calls),
        minimum_calls: Some(2 * min),
        ratio: Some(calls as f64 / (2 * min) as f64),
        formula: None,
        wall_secs: rows.iter().map(|r| r.wall_secs).sum(),
        throttled_429: Some(rows.iter().filter_map(|r| r.throttled_429).sum()),
        outcome: rows
            .iter()
            .map(|r| r.outcome.clone())
            .collect::<Vec<_>>()
            .join(" / "),
        ..bulk_row(
            &case,
            0,
            Measured {
                calls,
                wall: 0.0,
                throttled: 0,
                outcome: String::new(),
            },
        )
    };
    genesys_figures(&mut both, args, k, calls, floor_so_far);
    rows.push(both);
    rows
}

async fn bulk_genesys(args: &Args, rows: &mut Vec<Row>) {
    rows.extend(genesys_rows(args, args.holders, "bulk").await);
}

async fn window(args: &Args, rows: &mut Vec<Row>) {
    for &n in &args.window_holders {
        rows.extend(genesys_rows(args, n, "window").await);
    }
}

/// The `licensekit` binary: `--cli`, else next to this binary, else the debug build beside it.
fn cli_binary(args: &Args) -> Option<std::path::PathBuf> {
    if let Some(path) = &args.cli {
        return Some(path.clone());
    }
    let exe = std::env::current_exe().ok()?;
    let dir = exe.parent()?;
    [dir.join("licensekit"), dir.join("../debug/licensekit")]
        .into_iter()
        .find(|p| p.is_file())
}

/// Genesys assign then revoke through the CLI: two processes (two tokens), default settings.
async fn cli(args: &Args, rows: &mut Vec<Row>) {
    let n = args.holders;
    let Some(binary) = cli_binary(args) else {
        println!(
            "cli scenario skipped: no licensekit binary (cargo build --release -p licensekit-cli, or --cli PATH)"
        );
        return;
    };
    let sim = genesys_sim(args, n).await;
    let dir = std::env::temp_dir().join(format!("licensekit-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut client = String::from("allow_http = true\n");
    if !(args.window_secs == 60 && args.rpm == 300) {
        client.push_str(&format!("rate = \"{}/{}s\"\n", args.rpm, args.window_secs));
    }
    let config = dir.join("licensekit.toml");
    std::fs::write(
        &config,
        format!(
            "[[providers]]\nprovider = \"genesys\"\nbase_url = \"{}\"\nclient_id = \"sim-client\"\nclient_secret = \"sim-secret\"\n\n[providers.client]\n{client}",
            sim.base_url()
        ),
    )
    .unwrap();
    let users = dir.join("users.txt");
    let ids: Vec<String> = (0..n).map(user_id).collect();
    std::fs::write(&users, ids.join("\n")).unwrap();
    let min = 1 + div_ceil(n, 100);
    let t = args.latency_ms as f64 / 1000.0;
    let k = GENESYS_CONCURRENCY;
    let mut total = Vec::new();
    for action in ["assign", "revoke"] {
        let before = sim.calls().snapshot();
        let throttled_before = sim.rate_limited();
        let started = Instant::now();
        let output = tokio::process::Command::new(&binary)
            .arg("--config")
            .arg(&config)
            .arg("--quiet")
            .arg(action)
            .args(["--product", "cloudCX3", "--format", "json", "--output"])
            .arg(dir.join(format!("{action}.json")))
            .arg("--users-file")
            .arg(&users)
            .output()
            .await
            .expect("run the licensekit binary");
        let wall = started.elapsed().as_secs_f64();
        let calls = api_calls(&before, sim.calls());
        let outcome = if output.status.success() {
            let report =
                std::fs::read_to_string(dir.join(format!("{action}.json"))).unwrap_or_default();
            let applied = report.matches("\"applied\"").count();
            format!("exit 0, {applied} applied")
        } else {
            format!(
                "error: exit {:?}: {}",
                output.status.code(),
                String::from_utf8_lossy(&output.stderr).trim()
            )
        };
        let floor = window_floor(calls, args.rpm as u64, args.window_secs as f64, k, t);
        let mut row = Row {
            scenario: format!("cli {action}"),
            vendor: "genesys (2 processes)".into(),
            size: n,
            calls: Some(calls),
            minimum_calls: Some(min),
            ratio: Some(calls as f64 / min as f64),
            formula: Some(format!("1 definition check + ceil({n}/100) batches")),
            wall_secs: wall,
            floor_secs: None,
            floor_formula: None,
            of_floor: None,
            before_secs: None,
            before: None,
            throttled_429: Some(sim.rate_limited() - throttled_before),
            records_per_sec: None,
            peak_rss_mib: None,
            cpu_secs: None,
            records_per_cpu_sec: None,
            outcome,
        };
        genesys_figures(&mut row, args, k, calls, floor);
        total.push(row);
    }
    let calls: u64 = total.iter().filter_map(|r| r.calls).sum();
    let floor: f64 = total.iter().filter_map(|r| r.floor_secs).sum();
    let wall: f64 = total.iter().map(|r| r.wall_secs).sum();
    let (old, how) = old_pacer(calls, args);
    let both = Row {
        scenario: "cli both".into(),
        vendor: "genesys (2 processes)".into(),
        size: n,
        calls: Some(calls),
        minimum_calls: Some(2 * min),
        ratio: Some(calls as f64 / (2 * min) as f64),
        formula: None,
        wall_secs: wall,
        floor_secs: Some(floor),
        floor_formula: Some("sum of the two processes' floors (one token each)".into()),
        of_floor: Some(wall / floor),
        before_secs: Some(old),
        before: Some(how),
        throttled_429: Some(total.iter().filter_map(|r| r.throttled_429).sum()),
        records_per_sec: None,
        peak_rss_mib: None,
        cpu_secs: None,
        records_per_cpu_sec: None,
        outcome: total
            .iter()
            .map(|r| r.outcome.clone())
            .collect::<Vec<_>>()
            .join(" / "),
    };
    rows.extend(total);
    rows.push(both);
    std::fs::remove_dir_all(&dir).ok();
}

/// Salesforce at default settings (no per-minute limit: bound by concurrency), with the same run
/// at the old default concurrency (4) measured beside it.
async fn bulk_salesforce(args: &Args, latency: Duration, rows: &mut Vec<Row>) {
    let n = args.holders;
    let users = n + n / 9 + 1;
    let mut measured = Vec::new();
    for concurrency in [None, Some(4)] {
        let sim = SalesforceSim::start(
            SalesforceSeed::demo(users, 2 * n as i64),
            SalesforceSimConfig::default(),
        )
        .await
        .unwrap();
        sim.add_token("bench");
        sim.network().set_latency(latency);
        let mut options = ClientOptions::default().with_allow_http(true);
        if let Some(k) = concurrency {
            options = options.with_max_concurrency(k);
        }
        let config =
            SalesforceConfig::session(&sim.base_url(), "bench").with_client_options(options);
        let provider = SalesforceProvider::with_retry(config, retry()).unwrap();
        let all = sim.user_ids();
        let holders: Vec<HolderId> = (0..users)
            .filter(|i| i % 10 != 9)
            .take(n)
            .map(|i| HolderId::user(all[i].clone()))
            .collect();
        // The adapter reads state the cheaper way: the package's rows (2,000 a page, sized from
        // UsedLicenses) or look-ups of 300 ids.
        let package = sim.package_id("acme").expect("the demo package");
        let used = sim
            .seats(&package)
            .map_or(0, |(_, used)| used.max(0) as usize);
        let minimum = |used: usize| {
            let reads = div_ceil(used, 2000).max(1).min(div_ceil(n, 300));
            (
                1 + reads + div_ceil(n, 200),
                format!(
                    "1 package query + min(ceil({used}/2000) row pages, ceil({n}/300) look-ups) + ceil({n}/200) collection calls"
                ),
            )
        };
        let network = sim.network().clone();
        let throttled = move || network.throttled();
        let case = BulkCase {
            vendor: "salesforce".into(),
            provider: &provider,
            product: ProductId::new("acme"),
            holders,
            counter: sim.calls(),
            throttled: &throttled,
            minimum: [minimum(used), minimum(used + n)],
        };
        let mut pair = Vec::new();
        for (i, assign) in [true, false].into_iter().enumerate() {
            pair.push(bulk_row(&case, i, measure(&case, assign).await));
        }
        measured.push(pair);
    }
    let old = measured.pop().expect("two runs");
    for (mut row, before) in measured.pop().expect("two runs").into_iter().zip(old) {
        row.before_secs = Some(before.wall_secs);
        row.before = Some("measured at the old default, 4 in flight".into());
        rows.push(row);
    }
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
    // Default settings: Apple publishes no rate (5 in flight, its documented maximum).
    let config = AppleVppConfig::new(sim.stoken().into())
        .with_base_url(sim.base_url())
        .allow_http(true)
        .with_polling(Duration::from_millis(10), Duration::from_secs(600));
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
    let case = BulkCase {
        vendor: if devices {
            "apple-vpp (devices)".into()
        } else {
            "apple-vpp (users)".into()
        },
        provider: &provider,
        product: ProductId::new("361309726:STDQ"),
        holders,
        counter: sim.calls(),
        throttled: &throttled,
        minimum: [assign, revoke],
    };
    for (i, assign) in [true, false].into_iter().enumerate() {
        rows.push(bulk_row(&case, i, measure(&case, assign).await));
    }
}

fn fmt(v: Option<f64>, digits: usize) -> String {
    v.map_or("-".into(), |v| format!("{v:.digits$}"))
}

fn print_table(rows: &[Row]) {
    println!(
        "{:<14} {:<22} {:>9} {:>7} {:>7} {:>6} {:>9} {:>8} {:>7} {:>9} {:>5} {:>10} {:>7} {:>10} {:>9}  outcome",
        "scenario",
        "vendor",
        "size",
        "calls",
        "min",
        "ratio",
        "wall s",
        "floor s",
        "/floor",
        "before s",
        "429s",
        "records/s",
        "CPU s",
        "rec/CPU-s",
        "RSS MiB"
    );
    for r in rows {
        println!(
            "{:<14} {:<22} {:>9} {:>7} {:>7} {:>6} {:>9.2} {:>8} {:>7} {:>9} {:>5} {:>10} {:>7} {:>10} {:>9}  {}",
            r.scenario,
            r.vendor,
            r.size,
            r.calls.map_or("-".into(), |c| c.to_string()),
            r.minimum_calls.map_or("-".into(), |c| c.to_string()),
            fmt(r.ratio, 2),
            r.wall_secs,
            fmt(r.floor_secs, 2),
            fmt(r.of_floor, 3),
            fmt(r.before_secs, 2),
            r.throttled_429.map_or("-".into(), |c| c.to_string()),
            fmt(r.records_per_sec, 0),
            fmt(r.cpu_secs, 2),
            fmt(r.records_per_cpu_sec, 0),
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
    for r in rows.iter().filter(|r| r.floor_formula.is_some()) {
        println!(
            "  floor for {} {} {}: {}; before: {}",
            r.scenario,
            r.vendor,
            r.size,
            r.floor_formula.as_deref().unwrap_or(""),
            r.before.as_deref().unwrap_or("-")
        );
    }
}

#[tokio::main]
async fn main() {
    let mut args = Args::parse();
    if let (Some(what), Some(info)) = (&args.measure, &args.info) {
        served::measure(what, args.vendor.as_deref(), info, args.cli.as_deref()).await;
        return;
    }
    if args.smoke {
        args.holders = 1_200;
        args.latency_ms = 2;
        // A short window, so crossing windows takes seconds: 20 requests per 1 s.
        args.rpm = 20;
        args.window_secs = 1;
        args.window_holders = vec![3_000];
        args.list = 20_000;
        args.report_people = 2_000;
        args.history_people = 5_000;
    }
    let latency = Duration::from_millis(args.latency_ms);
    let run = |name: &str| args.only.is_empty() || args.only.iter().any(|o| o == name);
    let mut rows = Vec::new();
    if run("bulk") {
        bulk_genesys(&args, &mut rows).await;
        bulk_salesforce(&args, latency, &mut rows).await;
        bulk_apple(&args, latency, false, &mut rows).await;
        bulk_apple(&args, latency, true, &mut rows).await;
    }
    if run("window") {
        window(&args, &mut rows).await;
    }
    if run("cli") {
        cli(&args, &mut rows).await;
    }
    if run("list") || run("report") {
        // The simulators run out of process: `licensekit sandbox serve --scale N`.
        match cli_binary(&args) {
            None => {
                eprintln!(
                    "list and report need the licensekit binary (cargo build --release -p licensekit-cli, or --cli PATH)"
                );
                std::process::exit(1);
            }
            Some(binary) => {
                if run("list") {
                    served::lists(&binary, &args, &mut rows);
                }
                if run("report") {
                    served::report(&binary, &args, &mut rows);
                }
            }
        }
    }
    if run("plan") {
        plan::plan_and_apply(args.holders, &mut rows).await;
    }
    if run("faults") {
        faults::at_half(args.holders / 5, &mut rows).await;
    }
    if run("history") {
        history::history(args.history_people, args.postgres_url.as_deref(), &mut rows).await;
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
                || r.outcome.contains("contradicted") && !r.outcome.ends_with("contradicted 0")
                || r.outcome.contains(" failed") && !r.outcome.contains(" 0 failed")
        })
        .collect();
    if !bad.is_empty() {
        eprintln!("{} scenario(s) did not complete", bad.len());
        std::process::exit(1);
    }
}
