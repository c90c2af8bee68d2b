//! The Salesforce adapter against the Salesforce simulator.

use std::time::Duration;

use licensekit_core::RetryConfig;
use licensekit_core::testkit::{Fixture, run_all};
use licensekit_core::{
    AssignmentFilter, ErrorKind, HolderId, LicenseProvider, LicenseProviderExt, OutcomeStatus,
    ProductId, SeatTotal,
};
use licensekit_salesforce::{SalesforceAuth, SalesforceConfig, SalesforceProvider};
use licensekit_sim::salesforce::{SalesforceSeed, SalesforceSim, SalesforceSimConfig, ids};
use secrecy::SecretString;

const CREATE: &str = "POST /services/data/vXX.X/composite/sobjects";
const DELETE: &str = "DELETE /services/data/vXX.X/composite/sobjects";
const QUERY: &str = "GET /services/data/vXX.X/query";
const QUERY_MORE: &str = "GET /services/data/vXX.X/query/{locator}";

fn retry() -> RetryConfig {
    RetryConfig::default()
        .with_backoff(Duration::from_millis(1), Duration::from_millis(10))
        .with_jitter_seed(5)
}

async fn start(
    users: usize,
    seats: i64,
    config: SalesforceSimConfig,
) -> (SalesforceSim, SalesforceProvider) {
    let sim = SalesforceSim::start(SalesforceSeed::demo(users, seats), config)
        .await
        .unwrap();
    sim.add_token("test-session-token");
    let provider = SalesforceProvider::with_retry(
        SalesforceConfig::session(&sim.base_url(), "test-session-token").allow_http(true),
        retry(),
    )
    .unwrap();
    (sim, provider)
}

fn users(sim: &SalesforceSim, range: std::ops::Range<usize>) -> Vec<HolderId> {
    let all = sim.user_ids();
    range.map(|i| HolderId::user(all[i].clone())).collect()
}

#[tokio::test]
async fn passes_the_conformance_suite() {
    let (sim, provider) = start(
        400,
        1000,
        SalesforceSimConfig {
            default_batch_size: 200,
            ..Default::default()
        },
    )
    .await;
    let all = sim.user_ids();
    // Active users holding nothing: not 0, 2, 4 (crm_tools) and not every 10th (inactive).
    let free_users: Vec<HolderId> = (0..400)
        .filter(|i| i % 10 != 9 && ![0, 2, 4].contains(i))
        .map(|i| HolderId::user(all[i].clone()))
        .collect();
    let fixture = Fixture {
        product: ProductId::new(sim.package_id("acme").unwrap()),
        scarce_product: Some((ProductId::new(sim.package_id("crm_tools").unwrap()), 2)),
        users: free_users,
        devices: vec![],
        unknown_user: Some(HolderId::user(ids::make("005", 987_654))),
        unknown_product: ProductId::new("nosuchpkg"),
    };
    run_all(&provider, &fixture).await;
    assert!(sim.holders_of(&sim.package_id("acme").unwrap()).is_empty());
    assert_eq!(
        sim.seats(&sim.package_id("crm_tools").unwrap()),
        Some((5, 3)),
        "seat counts restored"
    );
}

#[tokio::test]
async fn products_report_vendor_seats_and_site_licenses() {
    let (_sim, provider) = start(10, 25, SalesforceSimConfig::default()).await;
    let products = provider.products().await.unwrap();
    let names: Vec<&str> = products.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, vec!["acme", "crm_tools", "sitewide"]);
    assert_eq!(products[0].seats.total, SeatTotal::Limited(25));
    assert_eq!(products[1].seats.assigned, Some(3));
    assert_eq!(products[2].seats.total, SeatTotal::Unlimited);
    assert_eq!(products[1].vendor["status"], "Active");
    let usage = provider.api_usage().expect("Sforce-Limit-Info parsed");
    assert!(usage.used >= 1 && usage.max == 100_000, "{usage:?}");
}

#[tokio::test]
async fn a_450_user_assign_splits_into_three_calls_with_mixed_outcomes() {
    let (sim, provider) = start(600, 445, SalesforceSimConfig::default()).await;
    let acme = ProductId::new("acme"); // a namespace works as a product id
    // Five users (all active) already hold a seat: 440 of 445 seats stay free.
    let first = provider.assign(&acme, &users(&sim, 0..5)).await.unwrap();
    assert_eq!(first.counts().applied, 5);
    sim.calls().reset();

    let request = users(&sim, 0..450);
    let report = provider.assign(&acme, &request).await.unwrap();
    let counts = report.counts();
    assert_eq!(counts.total(), 450);
    assert_eq!(counts.already_in_state, 5, "duplicates: {counts:?}");
    // 445 new users, 440 free seats: the last 5 fail with InsufficientSeats before any request.
    let kinds = |kind| report.failures().filter(|(_, e)| e.kind() == kind).count();
    assert_eq!(kinds(ErrorKind::InsufficientSeats), 5);
    for item in &report.items[445..] {
        assert_eq!(
            item.outcome.error().map(|e| e.kind()),
            Some(ErrorKind::InsufficientSeats)
        );
    }
    // Sent: indexes 5..445; every 10th user is inactive and fails on its own.
    let inactive_sent = (5..445).filter(|i| i % 10 == 9).count();
    assert_eq!(inactive_sent, 44);
    assert_eq!(kinds(ErrorKind::InvalidInput), inactive_sent);
    assert_eq!(counts.applied, 440 - inactive_sent);
    assert_eq!(sim.calls().get(CREATE), 3, "440 rows at 200 per call");
    // One package lookup + one package-wide row query (5 rows on one page: cheaper than two
    // look-ups of 300 + 150 ids).
    assert_eq!(sim.calls().get(QUERY), 2);
    let used = sim.seats(&sim.package_id("acme").unwrap()).unwrap().1 as usize;
    assert_eq!(used, 5 + 440 - inactive_sent);
}
#[tokio::test]
async fn revoke_uses_one_lookup_query_and_collection_deletes() {
    let (sim, provider) = start(300, 1000, SalesforceSimConfig::default()).await;
    let acme = ProductId::new(sim.package_id("acme").unwrap());
    let active: Vec<HolderId> = users(&sim, 0..290)
        .into_iter()
        .enumerate()
        .filter(|(i, _)| i % 10 != 9)
        .map(|(_, h)| h)
        .collect();
    provider.assign(&acme, &active).await.unwrap();
    sim.calls().reset();
    let mut request = active.clone();
    request.push(users(&sim, 295..296)[0].clone()); // holds nothing
    let report = provider.revoke(&acme, &request).await.unwrap();
    assert_eq!(report.counts().applied, active.len());
    assert_eq!(report.counts().already_in_state, 1);
    assert_eq!(
        sim.calls().get(QUERY),
        2,
        "package lookup + one holder lookup for 262 users"
    );
    assert_eq!(sim.calls().get(DELETE), 2, "261 rows at 200 per call");
    assert!(sim.holders_of(acme.as_str()).is_empty());
}

#[tokio::test]
async fn listing_follows_next_records_url() {
    let (sim, provider) = start(
        500,
        1000,
        SalesforceSimConfig {
            default_batch_size: 200,
            ..Default::default()
        },
    )
    .await;
    let acme = ProductId::new(sim.package_id("acme").unwrap());
    let active: Vec<HolderId> = users(&sim, 0..500)
        .into_iter()
        .enumerate()
        .filter(|(i, _)| i % 10 != 9)
        .map(|(_, h)| h)
        .collect();
    provider.assign(&acme, &active).await.unwrap();
    sim.calls().reset();
    let listed = provider
        .all_assignments(AssignmentFilter::product(acme.clone()))
        .await
        .unwrap();
    assert_eq!(listed.len(), 450);
    assert_eq!(sim.calls().get(QUERY), 1);
    assert_eq!(sim.calls().get(QUERY_MORE), 2, "450 rows at 200 per page");
    let a = &listed[0];
    assert!(
        a.holder
            .email
            .as_deref()
            .is_some_and(|e| e.ends_with("@example.com"))
    );
    assert_eq!(a.holder.active, Some(true));
    assert!(a.assigned_at.is_some());
    // By holder, and by namespace.
    let one = provider.assignments_of(&active[3]).await.unwrap();
    assert_eq!(one.len(), 1);
    let by_ns = provider
        .all_assignments(AssignmentFilter::product("crm_tools"))
        .await
        .unwrap();
    assert_eq!(by_ns.len(), 3);
    // The directory includes inactive users.
    let holders = provider.all_holders().await.unwrap();
    assert_eq!(holders.len(), 500);
    assert!(
        holders.iter().all(|h| h.last_login.is_none()),
        "never logged in: null"
    );
    assert_eq!(
        holders.iter().filter(|h| h.active == Some(false)).count(),
        50
    );
}

#[tokio::test]
async fn assign_by_profile_and_hostile_profile_names() {
    let (sim, provider) = start(40, 1000, SalesforceSimConfig::default()).await;
    let acme = ProductId::new("acme");
    let report = provider
        .assign_by_profile(&acme, "Sales User")
        .await
        .unwrap();
    // Even indexes are "Sales User"; index 9, 19, … are odd, so all 20 are active.
    assert_eq!(report.counts().applied, 20);
    for hostile in [
        "x' OR Name != '",
        "Sales User' OR IsActive = false OR Name = '",
        "back\\slash'",
        "new\nline",
        "Ünïcødé \"quoted\"",
    ] {
        let report = provider.assign_by_profile(&acme, hostile).await.unwrap();
        assert!(
            report.items.is_empty(),
            "{hostile:?} matched users: the query's meaning changed"
        );
    }
    // The simulator parsed every query (none was rejected as malformed) and saw escaped literals.
    let queries = sim.queries();
    assert!(
        queries
            .iter()
            .any(|q| q.contains(r"Profile.Name = 'x\' OR Name != \''")),
        "{queries:#?}"
    );
    let err = provider
        .assign_by_profile(&acme, "nul\0")
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
}

#[tokio::test]
async fn invalid_ids_never_reach_a_query() {
    let (sim, provider) = start(5, 10, SalesforceSimConfig::default()).await;
    sim.calls().reset();
    let report = provider
        .assign(
            &ProductId::new("acme"),
            &[
                HolderId::user("005' OR Id != '"),
                HolderId::user("005D0000001QX8WIAX"),
            ],
        )
        .await
        .unwrap();
    assert!(
        report
            .failures()
            .all(|(_, e)| e.kind() == ErrorKind::InvalidInput)
    );
    assert_eq!(sim.calls().total(), 0);
    let err = provider
        .assign(
            &ProductId::new("acme' OR Id != '"),
            &[HolderId::user(sim.user_ids()[0].clone())],
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert_eq!(sim.calls().total(), 0);
}

#[tokio::test]
async fn site_licenses_need_no_seats_and_cannot_be_revoked() {
    let (sim, provider) = start(5, 10, SalesforceSimConfig::default()).await;
    let request = users(&sim, 0..3);
    let report = provider
        .assign(&ProductId::new("sitewide"), &request)
        .await
        .unwrap();
    assert!(
        report
            .items
            .iter()
            .all(|i| i.outcome.status() == OutcomeStatus::AlreadyInState)
    );
    assert_eq!(sim.calls().get(CREATE), 0);
    let err = provider
        .revoke(&ProductId::new("sitewide"), &request)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unsupported);
}

#[tokio::test]
async fn the_daily_limit_is_rate_limited_and_not_retried() {
    let (sim, provider) = start(5, 10, SalesforceSimConfig::default()).await;
    sim.set_api_used(100_000);
    sim.calls().reset();
    let err = provider.products().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::RateLimited);
    assert_eq!(
        err.vendor_error().unwrap().code.as_deref(),
        Some("REQUEST_LIMIT_EXCEEDED")
    );
    // The operator is told which limit, with the figures of Sforce-Limit-Info.
    let shown = err.to_string();
    assert!(
        shown.contains("daily API request allowance") && shown.contains("100001 of 100000"),
        "{shown}"
    );
    assert_eq!(
        sim.calls().get(QUERY),
        1,
        "a spent daily quota is not hammered"
    );
}

#[tokio::test]
async fn client_credentials_flow_and_401_refetch() {
    let config = SalesforceSimConfig {
        run_as_username: Some("user0@example.com.sim".into()),
        ..Default::default()
    };
    let sim = SalesforceSim::start(SalesforceSeed::demo(5, 10), config)
        .await
        .unwrap();
    let auth = |secret: &str| SalesforceAuth::ClientCredentials {
        login_url: sim.base_url(),
        client_id: "sim-consumer-key".into(),
        client_secret: SecretString::from(secret.to_owned()),
    };
    let provider = SalesforceProvider::with_retry(
        SalesforceConfig::new(auth("sim-consumer-secret")).allow_http(true),
        retry(),
    )
    .unwrap();
    assert_eq!(provider.products().await.unwrap().len(), 3);
    provider.products().await.unwrap();
    assert_eq!(sim.tokens_issued(), 1);
    sim.expire_tokens();
    provider.products().await.unwrap();
    assert_eq!(
        sim.tokens_issued(),
        2,
        "one re-fetch after INVALID_SESSION_ID"
    );

    let bad = SalesforceProvider::with_retry(
        SalesforceConfig::new(auth("canary-wrong-secret")).allow_http(true),
        retry(),
    )
    .unwrap();
    let err = bad.products().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unauthenticated);
    assert!(err.to_string().contains("invalid_client"), "{err}");
    assert!(!format!("{err} {err:?} {bad:?}").contains("canary-wrong-secret"));
}

#[tokio::test]
async fn jwt_bearer_flow_verifies_the_signature() {
    let config = SalesforceSimConfig {
        jwt_public_key_pem: Some(include_str!("keys/test-jwt-public.pem").into()),
        ..Default::default()
    };
    let sim = SalesforceSim::start(SalesforceSeed::demo(5, 10), config)
        .await
        .unwrap();
    let jwt = |key: &str, username: &str| {
        SalesforceConfig::new(SalesforceAuth::JwtBearer {
            login_url: sim.base_url(),
            client_id: "sim-consumer-key".into(),
            username: username.into(),
            private_key_pem: SecretString::from(key.to_owned()),
            audience: None,
        })
        .allow_http(true)
    };
    let good = SalesforceProvider::with_retry(
        jwt(
            include_str!("keys/test-jwt-private.pem"),
            "user1@example.com.sim",
        ),
        retry(),
    )
    .unwrap();
    assert_eq!(good.products().await.unwrap().len(), 3);
    assert!(
        !format!("{good:?}").contains("PRIVATE KEY"),
        "the key is redacted"
    );

    let wrong_key = SalesforceProvider::with_retry(
        jwt(
            include_str!("keys/other-private.pem"),
            "user1@example.com.sim",
        ),
        retry(),
    )
    .unwrap();
    let err = wrong_key.products().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unauthenticated);
    assert!(err.to_string().contains("invalid_grant"), "{err}");

    let inactive = SalesforceProvider::with_retry(
        jwt(
            include_str!("keys/test-jwt-private.pem"),
            "user9@example.com.sim",
        ),
        retry(),
    )
    .unwrap();
    assert_eq!(
        inactive.products().await.unwrap_err().kind(),
        ErrorKind::Unauthenticated
    );
}

/// A bulk change whose estimate would leave less than the reserve (5 % of the daily allocation)
/// is refused after the one package lookup, before any change; `check_api_budget` says the same
/// up front, and a lower reserve lets the change through.
#[tokio::test]
async fn a_change_that_would_eat_into_the_reserve_is_refused_before_it_starts() {
    let (sim, provider) = start(600, 600, SalesforceSimConfig::default()).await;
    let acme = ProductId::new("acme");
    // Active users only (the demo seed makes every tenth inactive).
    let holders: Vec<HolderId> = sim
        .user_ids()
        .iter()
        .enumerate()
        .filter(|(i, _)| i % 10 != 9)
        .take(450)
        .map(|(_, id)| HolderId::user(id.clone()))
        .collect();
    assert_eq!(SalesforceProvider::estimate_change_calls(450), 6);

    // Unknown usage: one small query learns it.
    sim.calls().reset();
    let budget = provider.check_api_budget(6).await.unwrap();
    assert_eq!(sim.calls().get(QUERY), 1);
    assert_eq!((budget.max, budget.reserve), (100_000, 5_000));
    assert!(budget.remaining_after() > budget.reserve);

    // After the lookup 94,997 are used: 5,003 left; 1 state read + 3 collection calls more
    // would leave 4,999, under the 5,000 kept.
    sim.set_api_used(94_996);
    sim.calls().reset();
    let err = provider.assign(&acme, &holders).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::RateLimited);
    let why = std::error::Error::source(&err).unwrap().to_string();
    assert!(why.contains("reserve") && why.contains("5003"), "{why}");
    assert_eq!(sim.calls().total(), 1, "only the package lookup was sent");
    assert_eq!(sim.calls().get(CREATE), 0);
    let usage = provider.api_usage().unwrap();
    assert_eq!((usage.used, usage.max), (94_997, 100_000));
    assert_eq!(
        provider.check_api_budget(6).await.unwrap_err().kind(),
        ErrorKind::RateLimited
    );

    // The same change with no reserve goes through.
    let lenient = SalesforceProvider::with_retry(
        SalesforceConfig::session(&sim.base_url(), "test-session-token")
            .allow_http(true)
            .with_api_reserve_percent(0.0),
        retry(),
    )
    .unwrap();
    let report = lenient.assign(&acme, &holders).await.unwrap();
    assert_eq!(report.counts().failed, 0, "{:?}", report.counts());
    // The estimate is an upper bound of what the change makes.
    let made = lenient.api_calls_made();
    assert!((4..=6).contains(&made), "{made} calls");
}

/// `User.LastLoginDate` is read from the directory query, in the API's `+0000` form.
#[tokio::test]
async fn the_directory_reads_last_login_date() {
    let mut seed = SalesforceSeed::demo(3, 10);
    seed.users[1].last_login = Some("2026-05-04T03:02:01.000+0000".into());
    let sim = SalesforceSim::start(seed, SalesforceSimConfig::default())
        .await
        .unwrap();
    sim.add_token("test-session-token");
    let provider = SalesforceProvider::with_retry(
        SalesforceConfig::session(&sim.base_url(), "test-session-token").allow_http(true),
        retry(),
    )
    .unwrap();
    let holders = provider.all_holders().await.unwrap();
    let logins: Vec<Option<String>> = holders
        .iter()
        .map(|h| h.last_login.map(|d| d.to_rfc3339()))
        .collect();
    assert_eq!(
        logins.iter().filter(|l| l.is_some()).collect::<Vec<_>>(),
        vec![&Some("2026-05-04T03:02:01+00:00".to_string())]
    );
}
