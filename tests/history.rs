//! The history store suite: the same tests on SQLite (a temp file) and on a real PostgreSQL
//! (`LICENSEKIT_TEST_POSTGRES_URL`, a server URL whose user may create databases; `.ci/postgres.sh`
//! starts a throwaway one). Without that variable the PostgreSQL half is skipped, except under
//! `CI=true`, where it fails.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use chrono::{DateTime, Duration, TimeZone, Utc};
use licensekit::history::{
    HistoryError, HistoryFilter, HistoryStore, HistoryStoreExt, HolderKind, HoldingState,
    ProductState, ProviderState, ProviderStatus, Snapshot, SnapshotRef, SqlStore, StoreOptions,
};
use licensekit::report::{ProviderFailure, Report, ReportOptions};
use licensekit::{
    HolderId, InMemoryProvider, LicenseProviderExt, MemoryConfig, MemoryProduct, MemoryUser,
    ProductId, ProviderKind,
};
use sqlx::Connection;

const PROVIDERS: [ProviderKind; 3] = [
    ProviderKind::from_static("apple-vpp"),
    ProviderKind::from_static("genesys"),
    ProviderKind::from_static("salesforce"),
];

fn at(minutes: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 1, 9, 0, 0).unwrap() + Duration::minutes(minutes)
}

fn ok(products: u64, assignments: u64) -> ProviderStatus {
    ProviderStatus::Ok {
        products,
        seats_total: 1000,
        seats_assigned: assignments,
        assignments,
        holders_in_directory: Some(assignments as usize as u64),
        changed_during_listing: false,
    }
}

/// A snapshot with `people` people holding product `p0` of each of the three vendors (so
/// 3 × people holdings), one device, and `total` seats per product.
fn snapshot(run: &str, minutes: i64, people: std::ops::Range<usize>, total: u64) -> Snapshot {
    let n = people.len() as u64;
    let mut holdings = Vec::new();
    let mut products = Vec::new();
    for provider in PROVIDERS {
        products.push(ProductState {
            provider,
            product_id: "p0".into(),
            name: format!("{provider} seat"),
            total: Some(total),
            unlimited: false,
            total_source: "vendor".into(),
            assigned: n,
            assigned_source: "counted".into(),
            changed_during_listing: false,
        });
        for i in people.clone() {
            holdings.push(HoldingState {
                provider,
                product_id: "p0".into(),
                holder_kind: HolderKind::Person,
                holder_key: format!("person{i:06}@example.com"),
                holder_ids: Some(format!("{provider}-{i}")),
                display_name: Some(format!("Person {i}")),
                active: Some(i % 7 != 0),
                // Half signed in a month before the first snapshot (2026-10-01), a quarter
                // 120 days before it, the rest never (unknown).
                last_activity: match i % 4 {
                    0 | 2 => Some("2026-10-01T00:00:00.000000Z".to_string()),
                    1 => Some("2026-07-04T09:00:00.000000Z".to_string()),
                    _ => None,
                },
            });
        }
    }
    holdings.push(HoldingState {
        provider: ProviderKind::from_static("apple-vpp"),
        product_id: "p0".into(),
        holder_kind: HolderKind::Device,
        holder_key: "SERIAL1".into(),
        holder_ids: Some("SERIAL1".into()),
        display_name: None,
        active: None,
        last_activity: None,
    });
    holdings.sort();
    Snapshot {
        run_id: run.into(),
        taken_at: at(minutes),
        label: None,
        report_schema_version: 1,
        providers: PROVIDERS
            .iter()
            .map(|p| ProviderState {
                provider: *p,
                identity: format!("{p}@test-org"),
                status: ok(1, n),
            })
            .collect(),
        products,
        holdings,
    }
}

/// The same snapshot with one provider failed: its products and holdings were never read.
fn failed(mut s: Snapshot, provider: ProviderKind) -> Snapshot {
    s.products.retain(|p| p.provider != provider);
    s.holdings.retain(|h| h.provider != provider);
    for p in &mut s.providers {
        if p.provider == provider {
            p.status = ProviderStatus::Failed {
                error: "401 Unauthorized: token expired".into(),
            };
        }
    }
    s
}

async fn raw_execute(location: &str, sql: &str) {
    if location.starts_with("postgres") {
        let mut conn = sqlx::PgConnection::connect(location).await.unwrap();
        sqlx::Executor::execute(&mut conn, sql).await.unwrap();
    } else {
        let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{location}"))
            .await
            .unwrap();
        sqlx::Executor::execute(&mut conn, sql).await.unwrap();
    }
}

// ---- the suite: one async fn per behaviour, over a database location ----

async fn migrations_run_once_and_record_the_version(location: &str) {
    let store = SqlStore::open(location).await.unwrap();
    assert_eq!(
        store.schema_version().await.unwrap(),
        licensekit::history::SCHEMA_VERSION
    );
    store.record(&snapshot("r1", 0, 0..3, 10)).await.unwrap();
    store.close().await;
    // Opening again migrates nothing and keeps the data.
    let store = SqlStore::open(location).await.unwrap();
    assert_eq!(
        store.schema_version().await.unwrap(),
        licensekit::history::SCHEMA_VERSION
    );
    assert_eq!(store.snapshots(None).await.unwrap().len(), 1);
}

async fn a_newer_schema_is_refused_and_left_untouched(location: &str) {
    let store = SqlStore::open(location).await.unwrap();
    store.record(&snapshot("r1", 0, 0..3, 10)).await.unwrap();
    store.close().await;
    raw_execute(
        location,
        "INSERT INTO licensekit_schema (version, applied_at) VALUES (99, 'the future')",
    )
    .await;
    let err = SqlStore::open(location).await.unwrap_err();
    assert!(
        matches!(
            err,
            HistoryError::NewerSchema {
                found: 99,
                supported: licensekit::history::SCHEMA_VERSION,
                ..
            }
        ),
        "{err:?}"
    );
    let message = err.to_string();
    assert!(
        message.contains("upgrade licensekit") && message.contains("99"),
        "{message}"
    );
    // Still there, once the future version row is gone.
    raw_execute(location, "DELETE FROM licensekit_schema WHERE version = 99").await;
    let store = SqlStore::open(location).await.unwrap();
    assert_eq!(store.snapshots(None).await.unwrap().len(), 1);
}

async fn a_snapshot_of_100k_assignments_round_trips(location: &str) {
    let store = SqlStore::open(location).await.unwrap();
    // 33,334 people × 3 vendors + one device = 100,003 holdings.
    let written = snapshot("big", 0, 0..33_334, 40_000);
    assert!(written.holdings.len() >= 100_000);
    let started = Instant::now();
    let recorded = store.record(&written).await.unwrap();
    let write = started.elapsed();
    assert!(recorded.created);
    let started = Instant::now();
    let read = store.holdings(recorded.id).await.unwrap();
    eprintln!(
        "[{}] wrote {} holdings in {write:?}, read them back in {:?}",
        store.backend(),
        written.holdings.len(),
        started.elapsed()
    );
    assert_eq!(read, written.holdings);
    let points = store
        .product_points(&HistoryFilter::default())
        .await
        .unwrap();
    let mut products: Vec<ProductState> = points.into_iter().map(|p| p.product).collect();
    products.sort_by_key(|p| p.provider);
    assert_eq!(products, written.products);
    let listed = store.snapshots(None).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].run_id, "big");
    assert_eq!(listed[0].taken_at, "2026-11-01T09:00:00.000000Z");
    assert_eq!(listed[0].providers, written.providers);
    // A diff of two such snapshots stays fast.
    store
        .record(&snapshot("big2", 5, 100..33_434, 40_000))
        .await
        .unwrap();
    let started = Instant::now();
    let diff = store.diff(None, None).await.unwrap();
    let took = started.elapsed();
    eprintln!("[{}] diff of two 100k snapshots: {took:?}", store.backend());
    assert_eq!(diff.people_appeared.len(), 100);
    assert_eq!(diff.people_disappeared.len(), 100);
}

async fn a_run_id_is_written_once(location: &str) {
    let store = SqlStore::open(location).await.unwrap();
    let first = store.record(&snapshot("run-1", 0, 0..5, 10)).await.unwrap();
    let again = store.record(&snapshot("run-1", 9, 0..9, 10)).await.unwrap();
    assert!(first.created);
    assert!(!again.created);
    assert_eq!(first.id, again.id);
    assert_eq!(store.snapshots(None).await.unwrap().len(), 1);
    assert_eq!(store.holdings(first.id).await.unwrap().len(), 3 * 5 + 1);
}

async fn history_shows_utilization_per_product_over_time(location: &str) {
    let store = SqlStore::open(location).await.unwrap();
    store.record(&snapshot("a", 0, 0..5, 10)).await.unwrap();
    store
        .record(&failed(
            snapshot("b", 10, 0..6, 10),
            ProviderKind::from_static("genesys"),
        ))
        .await
        .unwrap();
    store.record(&snapshot("c", 20, 0..8, 16)).await.unwrap();

    let rows = store
        .history(&HistoryFilter {
            provider: Some(ProviderKind::from_static("genesys")),
            ..Default::default()
        })
        .await
        .unwrap();
    let figures: Vec<_> = rows
        .iter()
        .map(|r| (r.status, r.total, r.assigned, r.free))
        .collect();
    assert_eq!(
        figures,
        vec![
            ("ok", Some(10), Some(5), Some(5)),
            ("failed", None, None, None),
            ("ok", Some(16), Some(8), Some(8)),
        ]
    );
    assert_eq!(rows[2].utilization_pct, Some(50.0));

    let by_name = store
        .history(&HistoryFilter {
            product: Some("salesforce seat".into()),
            since: Some(at(5)),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(by_name.len(), 2, "{by_name:?}");
    assert!(
        by_name
            .iter()
            .all(|r| r.provider == ProviderKind::from_static("salesforce"))
    );
    assert_eq!(by_name[0].assigned, Some(6));
}

async fn diff_names_holders_gained_and_lost(location: &str) {
    let store = SqlStore::open(location).await.unwrap();
    let err = store.diff(None, None).await.unwrap_err();
    assert!(err.to_string().contains("two snapshots"), "{err}");
    let a = store.record(&snapshot("a", 0, 0..5, 10)).await.unwrap();
    let mut b = snapshot("b", 10, 2..7, 12);
    // Someone who only Salesforce knows disappears with everyone else in 0..2.
    b.holdings.retain(|h| {
        !(h.provider == ProviderKind::from_static("salesforce")
            && h.holder_key == "person000006@example.com")
    });
    let b = store.record(&b).await.unwrap();

    let diff = store.diff(None, None).await.unwrap();
    assert_eq!((diff.from.id, diff.to.id), (a.id, b.id));
    let explicit = store
        .diff(
            Some(&SnapshotRef::RunId("a".into())),
            Some(&SnapshotRef::Id(b.id)),
        )
        .await
        .unwrap();
    assert_eq!(explicit, diff);
    let genesys = diff
        .products
        .iter()
        .find(|p| p.provider == ProviderKind::from_static("genesys"))
        .unwrap();
    assert_eq!(genesys.status, "changed");
    assert_eq!(
        (genesys.total_before, genesys.total_after),
        (Some(10), Some(12))
    );
    assert_eq!(
        genesys.holders_added,
        vec![
            "person:person000005@example.com",
            "person:person000006@example.com"
        ]
    );
    assert_eq!(
        genesys.holders_removed,
        vec![
            "person:person000000@example.com",
            "person:person000001@example.com"
        ]
    );
    let salesforce = diff
        .products
        .iter()
        .find(|p| p.provider == ProviderKind::from_static("salesforce"))
        .unwrap();
    assert_eq!(
        salesforce.holders_added,
        vec!["person:person000005@example.com"]
    );
    assert_eq!(
        diff.people_appeared,
        vec!["person000005@example.com", "person000006@example.com"]
    );
    assert_eq!(
        diff.people_disappeared,
        vec!["person000000@example.com", "person000001@example.com"]
    );
    assert!(diff.not_comparable.is_empty());

    // The same state again: nothing changed.
    store.record(&snapshot("c", 20, 2..7, 12)).await.unwrap();
    let d = store
        .diff(
            Some(&SnapshotRef::Latest(0)),
            Some(&SnapshotRef::RunId("c".into())),
        )
        .await
        .unwrap();
    assert!(d.is_empty(), "{d:?}");
    let missing = store
        .diff(Some(&SnapshotRef::RunId("nope".into())), None)
        .await
        .unwrap_err();
    assert!(
        matches!(missing, HistoryError::NoSuchSnapshot(_)),
        "{missing:?}"
    );
}

async fn a_failed_provider_is_stored_as_failed_not_as_zero(location: &str) {
    let store = SqlStore::open(location).await.unwrap();
    store.record(&snapshot("a", 0, 0..5, 10)).await.unwrap();
    store
        .record(&failed(
            snapshot("b", 10, 0..5, 10),
            ProviderKind::from_static("apple-vpp"),
        ))
        .await
        .unwrap();
    let listed = store.snapshots(None).await.unwrap();
    let apple = listed[1]
        .providers
        .iter()
        .find(|p| p.provider == ProviderKind::from_static("apple-vpp"))
        .unwrap();
    assert_eq!(
        apple.status,
        ProviderStatus::Failed {
            error: "401 Unauthorized: token expired".into()
        }
    );
    assert_eq!(apple.identity, "apple-vpp@test-org");
    let diff = store.diff(None, None).await.unwrap();
    assert_eq!(
        diff.not_comparable,
        vec![ProviderKind::from_static("apple-vpp")]
    );
    let p = diff
        .products
        .iter()
        .find(|p| p.provider == ProviderKind::from_static("apple-vpp"))
        .unwrap();
    assert_eq!(p.status, "not_comparable");
    assert!(p.holders_removed.is_empty(), "{p:?}");
    assert!(diff.people_disappeared.is_empty());
}

async fn retention_keeps_the_newest(location: &str) {
    let store = SqlStore::open(location).await.unwrap();
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(
            store
                .record(&snapshot(&format!("r{i}"), i, 0..3, 10))
                .await
                .unwrap()
                .id,
        );
    }
    let deleted = store.prune(2).await.unwrap();
    assert_eq!(deleted, vec![ids[2], ids[1], ids[0]]);
    let left: Vec<i64> = store
        .snapshots(None)
        .await
        .unwrap()
        .iter()
        .map(|s| s.id)
        .collect();
    assert_eq!(left, vec![ids[3], ids[4]]);
    assert!(store.holdings(ids[0]).await.unwrap().is_empty());
    assert_eq!(store.holdings(ids[4]).await.unwrap().len(), 10);
    let points = store
        .product_points(&HistoryFilter::default())
        .await
        .unwrap();
    assert!(points.iter().all(|p| p.snapshot_id >= ids[3]));
    assert!(store.prune(2).await.unwrap().is_empty());
    // A new snapshot never reuses a pruned id.
    let next = store.record(&snapshot("r5", 5, 0..3, 10)).await.unwrap();
    assert!(next.id > ids[4]);
}

async fn two_concurrent_writers_neither_corrupt_nor_interleave(location: &str) {
    // Two stores (two pools, as two machines would have) writing at once.
    let first = SqlStore::open(location).await.unwrap();
    let second = SqlStore::open(location).await.unwrap();
    let write = |store: SqlStore, who: &'static str| {
        tokio::spawn(async move {
            let mut ids = Vec::new();
            for i in 0..3 {
                let s = snapshot(&format!("{who}-{i}"), i, 0..(2_000 + i as usize), 5_000);
                ids.push(store.record(&s).await.unwrap());
            }
            // Both also write the same run.
            ids.push(
                store
                    .record(&snapshot("shared", 99, 0..1_500, 5_000))
                    .await
                    .unwrap(),
            );
            ids
        })
    };
    let (a, b) = tokio::join!(write(first.clone(), "a"), write(second, "b"));
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(
        a.last().unwrap().id,
        b.last().unwrap().id,
        "one shared snapshot"
    );
    assert_eq!(
        [a.last().unwrap().created, b.last().unwrap().created]
            .iter()
            .filter(|c| **c)
            .count(),
        1
    );
    let all = first.snapshots(None).await.unwrap();
    assert_eq!(all.len(), 7);
    for s in &all {
        let expected = if s.run_id == "shared" {
            1_500
        } else {
            2_000 + s.run_id[2..].parse::<usize>().unwrap()
        };
        assert_eq!(
            first.holdings(s.id).await.unwrap().len(),
            3 * expected + 1,
            "{}",
            s.run_id
        );
    }
}

async fn a_report_becomes_a_snapshot(location: &str) {
    let users = |prefix: &str| -> Vec<MemoryUser> {
        (0..4)
            .map(|i| MemoryUser {
                id: format!("{prefix}{i}"),
                email: (i != 3).then(|| format!("User{i}@Example.com")),
                name: Some(format!("User {i}")),
                active: i != 2,
                last_login: (i == 0).then(|| at(-3)),
            })
            .collect()
    };
    let memory = InMemoryProvider::new(MemoryConfig {
        products: vec![MemoryProduct {
            id: "app".into(),
            name: "App".into(),
            seats: Some(5),
            device_assignable: true,
        }],
        users: users("u"),
        ..MemoryConfig::default()
    })
    .unwrap();
    let holders = vec![
        HolderId::user("u0"),
        HolderId::user("u1"),
        HolderId::user("u3"),
        HolderId::device("IPAD1"),
    ];
    memory
        .assign(&ProductId::new("app"), &holders)
        .await
        .unwrap();
    let mut report = Report::collect(&[&memory], &ReportOptions::default(), &|_, _| {}).await;
    report.errors.push(ProviderFailure {
        provider: ProviderKind::from_static("genesys"),
        kind: licensekit::ErrorKind::Transport,
        error: "connection refused".into(),
    });
    let identities = HashMap::from([(
        licensekit::InMemoryProvider::KIND,
        "memory:test".to_string(),
    )]);
    let snap = Snapshot::from_report(&report, "run-r", &identities).with_label("test");
    let store = SqlStore::open(location).await.unwrap();
    let id = store.record(&snap).await.unwrap().id;
    let holdings = store.holdings(id).await.unwrap();
    let keys: Vec<(HolderKind, &str)> = holdings
        .iter()
        .map(|h| (h.holder_kind, h.holder_key.as_str()))
        .collect();
    assert_eq!(
        keys,
        vec![
            (HolderKind::Person, "user0@example.com"),
            (HolderKind::Person, "user1@example.com"),
            (HolderKind::User, "u3"),
            (HolderKind::Device, "IPAD1"),
        ]
    );
    assert_eq!(holdings[0].holder_ids.as_deref(), Some("u0"));
    // The vendor's last sign-in travels with the holding, in the store's timestamp form.
    assert_eq!(
        holdings[0].last_activity.as_deref(),
        Some("2026-11-01T08:57:00.000000Z")
    );
    assert_eq!(holdings[1].last_activity, None);
    let listed = &store.snapshots(None).await.unwrap()[0];
    assert_eq!(listed.label.as_deref(), Some("test"));
    assert_eq!(listed.providers.len(), 2);
    assert_eq!(listed.providers[0].identity, "genesys");
    assert!(!listed.providers[0].status.is_ok());
    assert_eq!(listed.providers[1].identity, "memory:test");
    let points = store
        .product_points(&HistoryFilter::default())
        .await
        .unwrap();
    assert_eq!(points.len(), 1);
    assert_eq!(
        (points[0].product.total, points[0].product.assigned),
        (Some(5), 4)
    );
}

async fn activity_over_time_counts_only_what_the_vendors_report(location: &str) {
    let store = SqlStore::open(location).await.unwrap();
    // 8 people: 4 signed in 2026-10-01, 2 on 2026-07-04 (exactly 120 days before 2026-11-01
    // 09:00), 2 never. The second snapshot holds the very same seats 60 days later and nobody
    // signed in again: the vendors' figures say who is idle, not the absence of change.
    store.record(&snapshot("a", 0, 0..8, 10)).await.unwrap();
    store
        .record(&snapshot("b", 60 * 24 * 60, 0..8, 10))
        .await
        .unwrap();
    // Another org's Genesys in a third snapshot: its rows are its own series.
    let mut c = snapshot("c", 61 * 24 * 60, 0..8, 10);
    for p in &mut c.providers {
        if p.provider == licensekit::genesys::KIND {
            p.identity = "genesys@other-org".into();
        }
    }
    store.record(&c).await.unwrap();
    let filter = HistoryFilter {
        provider: Some(licensekit::salesforce::KIND),
        ..Default::default()
    };
    let rows = store.activity(&filter, 90).await.unwrap();
    let figures: Vec<_> = rows
        .iter()
        .map(|r| (r.holders, r.active_recently, r.inactive, r.unknown))
        .collect();
    // 2026-11-01: only the July sign-ins are 90+ days old. 60 days later the October ones
    // (91 days) are too. Unknown sign-ins are never inactive.
    assert_eq!(figures, vec![(8, 4, 2, 2), (8, 0, 6, 2), (8, 0, 6, 2)]);
    // The threshold edge: exactly 120 days is inactive for 120, not for 121.
    let edge = store.activity(&filter, 120).await.unwrap();
    assert_eq!(edge[0].inactive, 2);
    let edge = store.activity(&filter, 121).await.unwrap();
    assert_eq!(edge[0].inactive, 0);
    assert_eq!(edge[0].active_recently, 6);
    // Genesys: one series per account.
    let genesys = store
        .activity(
            &HistoryFilter {
                provider: Some(licensekit::genesys::KIND),
                ..Default::default()
            },
            90,
        )
        .await
        .unwrap();
    let identities: Vec<&str> = genesys.iter().map(|r| r.identity.as_str()).collect();
    assert_eq!(
        identities,
        vec!["genesys@other-org", "genesys@test-org", "genesys@test-org"]
    );
}

async fn another_account_of_a_vendor_is_never_diffed_as_the_same(location: &str) {
    let store = SqlStore::open(location).await.unwrap();
    store.record(&snapshot("a", 0, 0..5, 10)).await.unwrap();
    // The same vendor, another org: the people differ, but they are another tenant's.
    let mut b = snapshot("b", 10, 100..105, 10);
    for p in &mut b.providers {
        if p.provider == licensekit::salesforce::KIND {
            p.identity = "org:00DOTHER".into();
        }
    }
    for h in &mut b.holdings {
        if h.provider != licensekit::salesforce::KIND {
            // The other vendors keep the same people.
            h.holder_key = h.holder_key.replace("person0001", "person0000");
        }
    }
    b.holdings.sort();
    store.record(&b).await.unwrap();
    let diff = store.diff(None, None).await.unwrap();
    assert_eq!(diff.not_comparable, vec![licensekit::salesforce::KIND]);
    assert_eq!(
        diff.identity_changed,
        vec![licensekit::history::IdentityChange {
            provider: licensekit::salesforce::KIND,
            before: "salesforce@test-org".into(),
            after: "org:00DOTHER".into(),
        }]
    );
    let salesforce = diff
        .products
        .iter()
        .find(|p| p.provider == licensekit::salesforce::KIND)
        .unwrap();
    assert_eq!(salesforce.status, "not_comparable");
    assert!(salesforce.holders_added.is_empty() && salesforce.holders_removed.is_empty());
    // Nobody appeared or disappeared: Salesforce's people are not compared.
    assert!(
        diff.people_appeared.is_empty(),
        "{:?}",
        diff.people_appeared
    );
    assert!(diff.people_disappeared.is_empty());
    // History keeps the two accounts apart.
    let rows = store
        .history(&HistoryFilter {
            provider: Some(licensekit::salesforce::KIND),
            ..Default::default()
        })
        .await
        .unwrap();
    let series: Vec<&str> = rows.iter().map(|r| r.identity.as_str()).collect();
    assert_eq!(series, vec!["org:00DOTHER", "salesforce@test-org"]);
}

// ---- SQLite-only: what a file can do to us ----

#[tokio::test]
async fn sqlite_a_file_that_is_not_a_database_is_refused_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("history.db");
    let garbage: Vec<u8> = (0..8192u32).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(&path, &garbage).unwrap();
    let err = SqlStore::open(path.to_str().unwrap()).await.unwrap_err();
    assert!(matches!(err, HistoryError::Unreadable { .. }), "{err:?}");
    let message = err.to_string();
    assert!(
        message.contains("not a readable licensekit history database")
            && message.contains("left untouched"),
        "{message}"
    );
    assert_eq!(std::fs::read(&path).unwrap(), garbage);
    let dir_err = SqlStore::open(dir.path().to_str().unwrap())
        .await
        .unwrap_err();
    assert!(
        matches!(dir_err, HistoryError::BadLocation { .. }),
        "{dir_err:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_a_locked_file_gives_a_clear_error_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("history.db");
    let location = path.to_str().unwrap();
    let store = SqlStore::open(location).await.unwrap();
    store
        .record(&snapshot("before", 0, 0..10, 20))
        .await
        .unwrap();
    let impatient = SqlStore::open_with(
        location,
        StoreOptions {
            busy_timeout: std::time::Duration::from_millis(200),
            ..StoreOptions::default()
        },
    )
    .await
    .unwrap();

    // Another process holds the write lock.
    let mut holder = sqlx::SqliteConnection::connect(&format!("sqlite://{location}"))
        .await
        .unwrap();
    sqlx::Executor::execute(&mut holder, "BEGIN EXCLUSIVE")
        .await
        .unwrap();
    let err = impatient
        .record(&snapshot("during", 1, 0..10, 20))
        .await
        .unwrap_err();
    assert!(matches!(err, HistoryError::Locked { .. }), "{err:?}");
    assert!(
        err.to_string().contains("locked by another process"),
        "{err}"
    );
    // Readers are not blocked by a writer.
    assert_eq!(impatient.snapshots(None).await.unwrap().len(), 1);
    sqlx::Executor::execute(&mut holder, "ROLLBACK")
        .await
        .unwrap();

    impatient
        .record(&snapshot("after", 2, 0..10, 20))
        .await
        .unwrap();
    let runs: Vec<String> = store
        .snapshots(None)
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.run_id)
        .collect();
    assert_eq!(runs, vec!["before", "after"]);
}

// ---- the suite on each backend ----

static DATABASES: AtomicUsize = AtomicUsize::new(0);

/// A fresh database on the test server, or `None` (skipped) outside CI when there is none.
async fn postgres_database() -> Option<String> {
    let Ok(url) = std::env::var("LICENSEKIT_TEST_POSTGRES_URL") else {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!(
                "CI=true but LICENSEKIT_TEST_POSTGRES_URL is not set: run the tests through \
                 .ci/postgres.sh (it starts a throwaway PostgreSQL)"
            );
        }
        eprintln!(
            "PostgreSQL tests skipped: set LICENSEKIT_TEST_POSTGRES_URL (see .ci/postgres.sh)"
        );
        return None;
    };
    let name = format!(
        "lk_test_{}_{}_{}",
        std::process::id(),
        DATABASES.fetch_add(1, Ordering::SeqCst),
        Utc::now().timestamp_micros()
    );
    let mut admin = sqlx::PgConnection::connect(&url).await.unwrap();
    sqlx::Executor::execute(&mut admin, format!("CREATE DATABASE {name}").as_str())
        .await
        .unwrap();
    let (base, _) = url.rsplit_once('/').expect("a URL with a database");
    Some(format!("{base}/{name}"))
}

macro_rules! suite {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let dir = tempfile::tempdir().unwrap();
                    let path = dir.path().join("history.db");
                    super::$name(path.to_str().unwrap()).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    if let Some(url) = super::postgres_database().await {
                        super::$name(&url).await;
                    }
                }
            )*
        }
    };
}

suite!(
    migrations_run_once_and_record_the_version,
    a_newer_schema_is_refused_and_left_untouched,
    a_snapshot_of_100k_assignments_round_trips,
    a_run_id_is_written_once,
    history_shows_utilization_per_product_over_time,
    diff_names_holders_gained_and_lost,
    a_failed_provider_is_stored_as_failed_not_as_zero,
    retention_keeps_the_newest,
    two_concurrent_writers_neither_corrupt_nor_interleave,
    a_report_becomes_a_snapshot,
    activity_over_time_counts_only_what_the_vendors_report,
    another_account_of_a_vendor_is_never_diffed_as_the_same,
);
