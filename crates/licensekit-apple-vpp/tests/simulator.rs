//! The Apple VPP adapter against the Apple simulator.

use std::time::Duration;

use chrono::Utc;
use futures::TryStreamExt;
use licensekit_apple_vpp::wire::{MdmInfo, RequestUser};
use licensekit_apple_vpp::{
    AppleVppConfig, AppleVppProvider, ManageLicensesRequest, is_mdm_conflict,
};
use licensekit_core::client::RetryConfig;
use licensekit_core::testkit::{Fixture, run_all};
use licensekit_core::{
    AssignmentFilter, ErrorKind, HolderId, LicenseProvider, LicenseProviderExt, Outcome,
    OutcomeStatus, ProductId, SeatTotal,
};
use licensekit_sim::apple::{
    AppleSeed, AppleSim, AppleSimConfig, SimAsset, SimHolder, make_stoken,
};
use secrecy::SecretString;

const ASSOCIATE: &str = "POST /mdm/v2/assets/associate";

fn seed(users: usize) -> AppleSeed {
    AppleSeed {
        assets: vec![
            SimAsset::app("361309726", 5000),
            SimAsset::app("408709785", 50),
            SimAsset::app("284882215", licensekit_sim::apple::UNLIMITED),
            SimAsset::book("1439786743", 20),
        ],
        ..AppleSeed::demo(users)
    }
}

fn config(sim: &AppleSim) -> AppleVppConfig {
    AppleVppConfig::new(SecretString::from(sim.stoken()))
        .with_base_url(sim.base_url())
        .allow_http(true)
        .with_polling(Duration::from_millis(1), Duration::from_secs(5))
}

fn provider(config: AppleVppConfig) -> AppleVppProvider {
    let retry = RetryConfig::default()
        .with_backoff(Duration::from_millis(1), Duration::from_millis(5))
        .with_jitter_seed(9);
    AppleVppProvider::with_retry(config, retry).unwrap()
}

async fn start(users: usize, sim_config: AppleSimConfig) -> (AppleSim, AppleVppProvider) {
    let sim = AppleSim::start(seed(users), sim_config).await.unwrap();
    let p = provider(config(&sim));
    (sim, p)
}

fn active_users(n: usize) -> Vec<HolderId> {
    (0..)
        .filter(|i| i % 10 != 9)
        .take(n)
        .map(|i| HolderId::user(format!("user-{i:04}")))
        .collect()
}

#[tokio::test]
async fn passes_the_conformance_suite() {
    let (sim, provider) = start(
        1700,
        AppleSimConfig {
            page_size: 200,
            ..Default::default()
        },
    )
    .await;
    let fixture = Fixture {
        product: ProductId::new("361309726:STDQ"),
        scarce_product: Some((ProductId::new("408709785:STDQ"), 50)),
        users: active_users(1530),
        devices: (0..5)
            .map(|i| HolderId::device(format!("C02XK{i:04}")))
            .collect(),
        unknown_user: Some(HolderId::user("no-such-user")),
        unknown_product: ProductId::new("999999999:STDQ"),
    };
    run_all(&provider, &fixture).await;
    assert!(
        sim.holders_of("361309726", "STDQ").is_empty(),
        "the suite cleans up"
    );
}

#[tokio::test]
async fn products_are_assets_with_counts() {
    let (_sim, provider) = start(10, AppleSimConfig::default()).await;
    let products = provider.products().await.unwrap();
    let find = |id: &str| products.iter().find(|p| p.id.as_str() == id).unwrap();
    assert_eq!(find("361309726:STDQ").seats.total, SeatTotal::Limited(5000));
    assert_eq!(find("284882215:STDQ").seats.total, SeatTotal::Unlimited);
    let book = find("1439786743:STDQ");
    assert_eq!(book.vendor["product_type"], "Book");
    assert_eq!(book.vendor["device_assignable"], false);
}

#[tokio::test]
async fn an_expired_token_is_refused_before_any_call_and_expiry_is_exposed() {
    let sim = AppleSim::start(
        seed(5),
        AppleSimConfig {
            token_expires: Utc::now() + chrono::Duration::days(5),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let p = provider(config(&sim));
    assert_eq!(p.token_info().org_name, "Example School");
    assert!(p.token_expiration_warning().is_none());
    p.products().await.unwrap();
    let warning = p
        .token_expiration_warning()
        .expect("tokenExpirationDate within 15 days");
    assert!(warning > Utc::now() && warning < Utc::now() + chrono::Duration::days(6));

    let expired = make_stoken(
        "whatever",
        Utc::now() - chrono::Duration::days(1),
        "Example School",
    );
    let err = AppleVppProvider::new(
        AppleVppConfig::new(SecretString::from(expired))
            .with_base_url(sim.base_url())
            .allow_http(true),
    )
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unauthenticated);
    assert!(err.to_string().contains("expired on"), "{err}");
    // client/config (the one-time ownership check) + one assets page; nothing from the refused provider.
    assert_eq!(sim.calls().total(), 2);
}

#[tokio::test]
async fn a_revoked_token_and_errors_inside_http_200() {
    let (sim, provider) = start(
        5,
        AppleSimConfig {
            invalid_token_http_200: true,
            ..Default::default()
        },
    )
    .await;
    provider.products().await.unwrap();
    let _new = sim.rotate_token();
    let err = provider.products().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unauthenticated);
    assert_eq!(err.vendor_error().unwrap().code.as_deref(), Some("9625"));
    // An unknown token answered with HTTP 200 and an error body is still an error.
    let forged = make_stoken("forged", Utc::now() + chrono::Duration::days(30), "Someone");
    let p = provider_from(&sim, &forged);
    let err = p.products().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unauthenticated);
    let vendor = err.vendor_error().unwrap();
    assert_eq!(
        (vendor.status, vendor.code.as_deref()),
        (Some(200), Some("9622"))
    );
}

fn provider_from(sim: &AppleSim, stoken: &str) -> AppleVppProvider {
    let c = AppleVppConfig::new(SecretString::from(stoken.to_owned()))
        .with_base_url(sim.base_url())
        .allow_http(true)
        .with_polling(Duration::from_millis(1), Duration::from_secs(5));
    provider(c)
}

#[tokio::test]
async fn mdm_info_is_claimed_and_another_owner_is_refused() {
    let (sim, _) = start(5, AppleSimConfig::default()).await;
    let ours = MdmInfo::new("licensekit-test", "licensekit", "0.1");
    let p = provider(config(&sim).with_mdm_info(ours.clone()));
    p.assign(&ProductId::new("361309726"), &[HolderId::user("user-0000")])
        .await
        .unwrap();
    assert_eq!(
        sim.mdm_info().unwrap()["id"],
        "licensekit-test",
        "claimed on first use"
    );

    sim.set_mdm_info("other-mdm", "Other MDM");
    let err = p.products().await.unwrap_err();
    assert!(is_mdm_conflict(&err), "{err}");
    assert!(err.to_string().contains("Other MDM"), "{err}");
}

#[tokio::test]
async fn a_listing_during_which_the_version_changes_is_reported() {
    let (sim, provider) = start(
        400,
        AppleSimConfig {
            page_size: 100,
            ..Default::default()
        },
    )
    .await;
    provider
        .assign(&ProductId::new("361309726"), &active_users(300))
        .await
        .unwrap();
    let mut stream = provider.assignments(AssignmentFilter::all());
    let mut seen = 0;
    let err = loop {
        match stream.try_next().await {
            Ok(Some(_)) => {
                seen += 1;
                if seen == 1 {
                    sim.assign_directly("408709785", "STDQ", SimHolder::Serial("SNEW1".into()));
                }
            }
            Ok(None) => panic!("the listing mixed two versions without saying so"),
            Err(e) => break e,
        }
    };
    assert_eq!(err.kind(), ErrorKind::Unavailable);
    assert!(
        err.to_string().contains("changed while being listed"),
        "{err}"
    );
    assert_eq!(seen, 100, "the first page was served");
}

#[tokio::test]
async fn since_version_id_lists_only_what_changed() {
    let (sim, provider) = start(50, AppleSimConfig::default()).await;
    provider
        .assign(&ProductId::new("361309726"), &active_users(10))
        .await
        .unwrap();
    let all = provider
        .assignments_since(AssignmentFilter::all(), None)
        .await
        .unwrap();
    assert_eq!(all.assignments.len(), 10);
    let version = all.version_id.clone().expect("a versionId");
    sim.assign_directly("408709785", "STDQ", SimHolder::Serial("SERIAL9".into()));
    let delta = provider
        .assignments_since(AssignmentFilter::all(), Some(version))
        .await
        .unwrap();
    assert_eq!(delta.assignments.len(), 1);
    assert_eq!(delta.assignments[0].holder.id, HolderId::device("SERIAL9"));
    assert_ne!(delta.version_id, all.version_id);
    let err = provider
        .assignments_since(AssignmentFilter::all(), Some("not-a-version".into()))
        .await
        .unwrap_err();
    assert_eq!(err.vendor_error().unwrap().code.as_deref(), Some("9721"));
}

#[tokio::test]
async fn an_associate_event_with_partial_failures_reports_exactly_the_failed_holders() {
    let (sim, provider) = start(20, AppleSimConfig::default()).await;
    let request = vec![
        HolderId::user("user-0001"),
        HolderId::user("not-registered"),
        HolderId::user("user-0009"), // retired
        HolderId::device("C02SERIAL1"),
    ];
    let report = provider
        .assign(&ProductId::new("408709785"), &request)
        .await
        .unwrap();
    let statuses: Vec<_> = report.items.iter().map(|i| i.outcome.status()).collect();
    assert_eq!(
        statuses,
        vec![
            OutcomeStatus::Applied,
            OutcomeStatus::Failed,
            OutcomeStatus::Failed,
            OutcomeStatus::Applied
        ]
    );
    assert_eq!(
        report.items[1].outcome.error().unwrap().kind(),
        ErrorKind::NotFound
    );
    assert_eq!(sim.holders_of("408709785", "STDQ").len(), 2);
}

#[tokio::test]
async fn an_event_that_does_not_complete_in_time_is_pending_with_its_event_id() {
    let sim = AppleSim::start(
        seed(10),
        AppleSimConfig {
            polls_until_complete: 1_000,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let p =
        provider(config(&sim).with_polling(Duration::from_millis(5), Duration::from_millis(40)));
    let report = p
        .assign(
            &ProductId::new("361309726"),
            &[HolderId::user("user-0000"), HolderId::user("user-0001")],
        )
        .await
        .unwrap();
    for item in &report.items {
        match &item.outcome {
            Outcome::Pending { reference } => assert!(!reference.is_empty()),
            other => panic!("expected Pending, got {other:?}"),
        }
    }
    assert_eq!(report.counts().pending, 2);
}

#[tokio::test]
async fn requests_split_at_the_service_config_maximum() {
    let (sim, provider) = start(
        2600,
        AppleSimConfig {
            page_size: 1000,
            ..Default::default()
        },
    )
    .await;
    let mut request = active_users(2300);
    request.extend((0..1500).map(|i| HolderId::device(format!("SER{i:05}"))));
    let report = provider
        .assign(&ProductId::new("361309726"), &request)
        .await
        .unwrap();
    assert_eq!(report.counts().applied, 3800);
    assert_eq!(
        sim.calls().get(ASSOCIATE),
        3,
        "1000 users and 1000 serials per request"
    );
    let revoked = provider
        .revoke(&ProductId::new("361309726"), &request)
        .await
        .unwrap();
    assert_eq!(revoked.counts().applied, 3800);
    assert_eq!(sim.calls().get("POST /mdm/v2/assets/disassociate"), 3);
}

#[tokio::test]
async fn seats_devices_and_books() {
    let (sim, provider) = start(100, AppleSimConfig::default()).await;
    // 50 seats, 52 holders: 2 fail before any request.
    let report = provider
        .assign(&ProductId::new("408709785"), &active_users(52))
        .await
        .unwrap();
    assert_eq!(report.counts().applied, 50);
    assert_eq!(
        report
            .failures()
            .filter(|(_, e)| e.kind() == ErrorKind::InsufficientSeats)
            .count(),
        2
    );
    // A book: users yes, devices no; and it cannot be revoked.
    let book = ProductId::new("1439786743");
    let report = provider
        .assign(
            &book,
            &[HolderId::user("user-0000"), HolderId::device("C02BOOK1")],
        )
        .await
        .unwrap();
    assert_eq!(report.items[0].outcome.status(), OutcomeStatus::Applied);
    assert_eq!(
        report.items[1].outcome.error().unwrap().kind(),
        ErrorKind::InvalidInput
    );
    assert_eq!(
        provider
            .revoke(&book, &[HolderId::user("user-0000")])
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::Unsupported
    );
    assert_eq!(sim.holders_of("1439786743", "STDQ").len(), 1);
}

#[tokio::test]
async fn the_legacy_manage_licenses_semantics() {
    let (sim, provider) = start(30, AppleSimConfig::default()).await;
    let app = ProductId::new("361309726");
    provider
        .assign(
            &app,
            &[HolderId::user("user-0001"), HolderId::user("user-0002")],
        )
        .await
        .unwrap();
    let request = ManageLicensesRequest {
        disassociate_client_user_ids: vec!["user-0001".into(), "user-0002".into()],
        associate_serial_numbers: vec!["C02MANAGE1".into()],
        ..Default::default()
    };
    let report = provider.manage_licenses(&app, request).await.unwrap();
    assert_eq!(report.disassociations.unwrap().counts().applied, 2);
    assert_eq!(report.associations.unwrap().counts().applied, 1);
    assert_eq!(
        sim.holders_of("361309726", "STDQ"),
        vec![SimHolder::Serial("C02MANAGE1".into())]
    );

    let two_associate_lists = ManageLicensesRequest {
        associate_client_user_ids: vec!["user-0003".into()],
        associate_serial_numbers: vec!["C02X".into()],
        ..Default::default()
    };
    let err = provider
        .manage_licenses(&app, two_associate_lists)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    let license_ids = ManageLicensesRequest {
        disassociate_license_ids: vec!["123".into()],
        ..Default::default()
    };
    assert_eq!(
        provider
            .manage_licenses(&app, license_ids)
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::Unsupported
    );
    assert_eq!(
        sim.holders_of("361309726", "STDQ").len(),
        1,
        "refused requests changed nothing"
    );
}

#[tokio::test]
async fn users_revoke_all_and_the_directory() {
    let (sim, provider) = start(20, AppleSimConfig::default()).await;
    let created = provider
        .create_users(vec![
            RequestUser::new("new-user", Some("new@school.example".into())),
            RequestUser::new("user-0000", None),
        ])
        .await
        .unwrap();
    assert_eq!(created[0].outcome.status(), OutcomeStatus::Applied);
    assert_eq!(
        created[1].outcome.status(),
        OutcomeStatus::AlreadyInState,
        "already registered"
    );
    let holders = [HolderId::user("new-user"), HolderId::device("C02REVOKE")];
    provider
        .assign(&ProductId::new("361309726"), &holders)
        .await
        .unwrap();
    provider
        .assign(&ProductId::new("408709785"), &holders)
        .await
        .unwrap();
    let report = provider.revoke_assets(&holders).await.unwrap();
    assert!(report.is_complete_success());
    assert!(
        sim.holders_of("361309726", "STDQ").is_empty()
            && sim.holders_of("408709785", "STDQ").is_empty()
    );

    let retired = provider.retire_users(&["user-0001".into()]).await.unwrap();
    assert_eq!(retired[0].outcome.status(), OutcomeStatus::Applied);
    assert_eq!(sim.user_status("user-0001").as_deref(), Some("Retired"));
    let directory = provider.all_holders().await.unwrap();
    assert_eq!(directory.len(), 21);
    let inactive = directory.iter().filter(|h| h.active == Some(false)).count();
    assert_eq!(
        inactive, 3,
        "user-0009, user-0019 and the newly retired user-0001"
    );
    assert!(
        directory
            .iter()
            .any(|h| h.email.as_deref() == Some("new@school.example"))
    );
}
