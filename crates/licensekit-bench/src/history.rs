//! `history`: the history store at scale. A snapshot of P people × 3 vendors (each person holds
//! a seat at every vendor: 3P holdings, half with a last sign-in) written to SQLite and, when a
//! server is given, to PostgreSQL; then a second snapshot with 1 % of the people replaced, and
//! `diff` of the two. Wall time and peak RSS above the snapshot already built in memory.
//!
//! PostgreSQL runs only with `--postgres-url` or `LICENSEKIT_TEST_POSTGRES_URL` (what
//! `.ci/postgres.sh` exports): `.ci/postgres.sh cargo run --release -p licensekit-bench --
//! --only history`. A fresh database is created on that server and dropped afterwards.

use std::time::Instant;

use chrono::{Duration, TimeZone, Utc};
use licensekit::ProviderKind;
use licensekit::history::{
    HistoryFilter, HistoryStore, HistoryStoreExt, HolderKind, HoldingState, ProductState,
    ProviderState, ProviderStatus, Snapshot, SqlStore,
};
use sqlx::Connection;

use crate::Row;

const VENDORS: [ProviderKind; 3] = [
    licensekit::apple_vpp::KIND,
    licensekit::genesys::KIND,
    licensekit::salesforce::KIND,
];

/// People `from..from + people`, each holding one of 4 products at every vendor.
fn snapshot(run: &str, minutes: i64, from: usize, people: usize) -> Snapshot {
    let taken_at = Utc.with_ymd_and_hms(2026, 11, 1, 9, 0, 0).unwrap() + Duration::minutes(minutes);
    let mut products = Vec::new();
    let mut holdings = Vec::with_capacity(3 * people);
    let mut providers = Vec::new();
    for vendor in VENDORS {
        for p in 0..4 {
            products.push(ProductState {
                provider: vendor,
                product_id: format!("product-{p}"),
                name: format!("{vendor} product {p}"),
                total: Some(people as u64 / 4 + 100),
                unlimited: false,
                total_source: "vendor".into(),
                assigned: people as u64 / 4,
                assigned_source: "counted".into(),
                changed_during_listing: false,
            });
        }
        for i in from..from + people {
            holdings.push(HoldingState {
                provider: vendor,
                product_id: format!("product-{}", i % 4),
                holder_kind: HolderKind::Person,
                holder_key: format!("person{i:07}@example.com"),
                holder_ids: Some(format!("{vendor}-{i:07}")),
                display_name: Some(format!("Person {i}")),
                active: Some(i % 17 != 0),
                last_activity: (i % 2 == 0 && vendor != licensekit::apple_vpp::KIND)
                    .then(|| format!("2026-{:02}-15T08:00:00.000000Z", 1 + i % 10)),
            });
        }
        providers.push(ProviderState {
            provider: vendor,
            identity: format!("{vendor}@bench"),
            status: ProviderStatus::Ok {
                products: 4,
                seats_total: 4 * (people as u64 / 4 + 100),
                seats_assigned: people as u64,
                assignments: people as u64,
                holders_in_directory: Some(people as u64),
                changed_during_listing: false,
            },
        });
    }
    Snapshot {
        run_id: run.into(),
        taken_at,
        label: Some("bench".into()),
        report_schema_version: 1,
        providers,
        products,
        holdings,
    }
}

fn row(
    scenario: &str,
    backend: &str,
    people: usize,
    wall: f64,
    peak: Option<f64>,
    outcome: String,
) -> Row {
    Row {
        scenario: scenario.into(),
        vendor: backend.into(),
        size: people,
        calls: None,
        minimum_calls: None,
        ratio: None,
        formula: None,
        wall_secs: wall,
        floor_secs: None,
        floor_formula: None,
        of_floor: None,
        before_secs: None,
        before: None,
        throttled_429: None,
        cpu_secs: None,
        records_per_cpu_sec: None,
        records_per_sec: None,
        peak_rss_mib: peak,
        outcome,
    }
}

async fn run_on(location: &str, backend: &str, people: usize, rows: &mut Vec<Row>) {
    let store = match SqlStore::open(location).await {
        Ok(store) => store,
        Err(e) => {
            rows.push(row(
                "history open",
                backend,
                people,
                0.0,
                None,
                format!("error: {e}"),
            ));
            return;
        }
    };
    let a = snapshot("bench-a", 0, 0, people);
    let holdings = a.holdings.len();
    let baseline = reset_peak();
    let started = Instant::now();
    let written = store.record(&a).await;
    let wall = started.elapsed().as_secs_f64();
    rows.push(row(
        "history write",
        backend,
        people,
        wall,
        peak_above(baseline),
        match written {
            Ok(_) => format!("{holdings} holdings in one transaction"),
            Err(e) => format!("error: {e}"),
        },
    ));
    drop(a);
    // 1 % of the people replaced.
    let churn = people / 100;
    let b = snapshot("bench-b", 60, churn, people);
    if let Err(e) = store.record(&b).await {
        rows.push(row(
            "history write",
            backend,
            people,
            0.0,
            None,
            format!("error: {e}"),
        ));
        return;
    }
    drop(b);
    let baseline = reset_peak();
    let started = Instant::now();
    let diff = store.diff(None, None).await;
    let wall = started.elapsed().as_secs_f64();
    rows.push(row(
        "history diff",
        backend,
        people,
        wall,
        peak_above(baseline),
        match diff {
            Ok(d) if d.people_appeared.len() == churn && d.people_disappeared.len() == churn => {
                format!(
                    "{} products changed, {churn} people appeared, {churn} disappeared",
                    d.products.len()
                )
            }
            Ok(d) => format!(
                "error: {} appeared, {} disappeared, expected {churn}",
                d.people_appeared.len(),
                d.people_disappeared.len()
            ),
            Err(e) => format!("error: {e}"),
        },
    ));
    let started = Instant::now();
    let read = async {
        let h = store.history(&HistoryFilter::default()).await?;
        let a = store.activity(&HistoryFilter::default(), 90).await?;
        Ok::<_, licensekit::history::HistoryError>((h.len(), a.len()))
    }
    .await;
    rows.push(row(
        "history read",
        backend,
        people,
        started.elapsed().as_secs_f64(),
        None,
        match read {
            Ok((h, a)) => format!("history {h} rows, activity {a} rows"),
            Err(e) => format!("error: {e}"),
        },
    ));
    store.close().await;
}

pub async fn history(people: usize, postgres_url: Option<&str>, rows: &mut Vec<Row>) {
    let dir = std::env::temp_dir().join(format!("licensekit-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let path = dir.join("history.sqlite");
    run_on(&path.display().to_string(), "sqlite", people, rows).await;
    let _ = std::fs::remove_dir_all(&dir);

    let Some(url) = postgres_url else {
        println!("history on PostgreSQL skipped: no --postgres-url (see .ci/postgres.sh)");
        return;
    };
    let name = format!("lk_bench_{}", std::process::id());
    let admin = async {
        let mut conn = sqlx::PgConnection::connect(url).await?;
        sqlx::Executor::execute(&mut conn, format!("CREATE DATABASE {name}").as_str()).await?;
        Ok::<_, sqlx::Error>(conn)
    }
    .await;
    let mut admin = match admin {
        Ok(conn) => conn,
        Err(e) => {
            rows.push(row(
                "history open",
                "postgres",
                people,
                0.0,
                None,
                format!("error: {e}"),
            ));
            return;
        }
    };
    let base = url.rsplit_once('/').map_or(url, |(base, _)| base);
    run_on(&format!("{base}/{name}"), "postgres", people, rows).await;
    let _ = sqlx::Executor::execute(&mut admin, format!("DROP DATABASE {name}").as_str()).await;
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

/// Peak RSS since `reset_peak`, above its baseline, in MiB.
fn peak_above(baseline: Option<f64>) -> Option<f64> {
    Some(kib("VmHWM:")? / 1024.0 - baseline?)
}
