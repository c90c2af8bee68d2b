//! The Apple VPP adapter against the Apple simulator.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use chrono::Utc;
use futures::TryStreamExt;
use licensekit_apple_vpp::{
    AppleVppConfig, AppleVppProvider, ManageLicensesRequest, is_mdm_conflict,
};
use licensekit_apple_vpp::{MdmInfo, RequestUser};
use licensekit_core::RetryConfig;
use licensekit_core::testkit::{Fixture, run_all};
use licensekit_core::{
    AssignmentFilter, ErrorKind, HolderId, LicenseProvider, LicenseProviderExt, Outcome,
    OutcomeStatus, ProductId, SeatTotal,
};
use licensekit_sim::apple::{
    AppleSeed, AppleSim, AppleSimConfig, SimAsset, SimEdit, SimHolder, make_stoken,
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
async fn mdm_info_is_claimed_and_another_owner_stops_changes_but_not_reads() {
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
    p.products().await.expect("reading is always allowed");
    let before = sim.calls().get(ASSOCIATE);
    let report = p
        .assign(&ProductId::new("361309726"), &[HolderId::user("user-0001")])
        .await;
    // Taken over after our one-time check: the response before the write names the new owner,
    // and the write is refused (per item, or as a whole).
    let refused = match &report {
        Err(e) => e,
        Ok(r) => r.items[0].outcome.error().expect("refused"),
    };
    assert!(is_mdm_conflict(refused), "{refused}");
    assert!(refused.to_string().contains("Other MDM"), "{refused}");
    assert_eq!(sim.calls().get(ASSOCIATE), before, "nothing was sent");
}

/// P-11: the location belongs to Apple Configurator 2; licensekit has no `mdm_info`.
async fn owned_by_configurator() -> (AppleSim, AppleVppProvider) {
    let (sim, p) = start(5, AppleSimConfig::default()).await;
    sim.assign_directly("361309726", "STDQ", SimHolder::User("user-0002".into()));
    sim.set_mdm_info(
        "522d5c43-44ca-4f7e-ba7a-53570cf60765",
        "Apple Configurator 2",
    );
    (sim, p)
}

#[tokio::test]
async fn a_location_another_mdm_owns_is_listed_but_never_changed() {
    let (sim, p) = owned_by_configurator().await;
    assert!(!p.products().await.unwrap().is_empty());
    let listed: Vec<_> = p
        .assignments(AssignmentFilter::all())
        .try_collect()
        .await
        .unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(p.holders().try_collect::<Vec<_>>().await.unwrap().len(), 5);

    let product = ProductId::new("361309726");
    let assign = p
        .assign(&product, &[HolderId::user("user-0000")])
        .await
        .unwrap_err();
    let revoke = p
        .revoke(&product, &[HolderId::user("user-0002")])
        .await
        .unwrap_err();
    let revoke_all = p
        .revoke_assets(&[HolderId::user("user-0002")])
        .await
        .unwrap_err();
    let users = p
        .create_users(vec![RequestUser::new("new-user", None)])
        .await
        .unwrap_err();
    for err in [&assign, &revoke, &revoke_all, &users] {
        assert_eq!(err.kind(), ErrorKind::PermissionDenied, "{err}");
        assert!(is_mdm_conflict(err), "{err}");
        assert!(err.to_string().contains("Apple Configurator 2"), "{err}");
    }
    for route in [
        ASSOCIATE,
        "POST /mdm/v2/assets/disassociate",
        "POST /mdm/v2/assets/revoke",
        "POST /mdm/v2/users/create",
        "POST /mdm/v2/client/config",
    ] {
        assert_eq!(sim.calls().get(route), 0, "{route}");
    }
    assert_eq!(
        sim.holders_of("361309726", "STDQ"),
        vec![SimHolder::User("user-0002".into())]
    );
    assert_eq!(
        sim.mdm_info().unwrap()["name"],
        "Apple Configurator 2",
        "not claimed"
    );
}

#[tokio::test]
async fn take_over_claims_a_location_another_mdm_owns() {
    let (sim, _) = owned_by_configurator().await;
    let ours = MdmInfo::new("licensekit-test", "licensekit", "0.1");
    let err = AppleVppProvider::new(config(&sim).take_over(true)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config, "take_over needs mdm_info");
    let p = provider(config(&sim).with_mdm_info(ours).take_over(true));
    let report = p
        .assign(&ProductId::new("361309726"), &[HolderId::user("user-0000")])
        .await
        .unwrap();
    assert_eq!(report.items[0].outcome, Outcome::Applied);
    assert_eq!(sim.mdm_info().unwrap()["id"], "licensekit-test");
}

#[tokio::test]
async fn an_stoken_with_a_trailing_newline_is_sent_trimmed() {
    let (sim, _) = start(5, AppleSimConfig::default()).await;
    // What `echo "$TOKEN" > file` and most secret stores hand over.
    let p = provider_from(&sim, &format!("{}\n", sim.stoken()));
    p.products().await.unwrap();
    let p = provider_from(&sim, &format!("  {}\r\n", sim.stoken()));
    p.products().await.unwrap();
}

/// Spec §5 ("Using paginated endpoints"): keep going to the last page when `versionId` changes.
/// Here another tool writes after every page: two records sorting before everything else are
/// added (pushing what was read onto the next page), then removed (pulling unread records back
/// onto the page already read), and so on; every page is served at a new version.
#[tokio::test]
async fn a_listing_whose_version_changes_on_every_page_lists_each_unchanged_record_once() {
    let (sim, provider) = start(
        400,
        AppleSimConfig {
            page_size: 100,
            ..Default::default()
        },
    )
    .await;
    let users = active_users(350);
    provider
        .assign(&ProductId::new("361309726"), &users)
        .await
        .unwrap();
    let start_version = sim.current_version_id();
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    sim.between_assignment_pages(Some(Box::new(move |_page| {
        let n = counter.fetch_add(1, Ordering::SeqCst);
        // "284882215" sorts before "361309726": these shift every record of the listing.
        let churn = |k: usize| {
            ["a", "b"].map(|x| {
                (
                    "284882215".to_string(),
                    "STDQ".to_string(),
                    SimHolder::Serial(format!("CHURN{k:03}{x}")),
                )
            })
        };
        if n % 2 == 0 {
            churn(n)
                .into_iter()
                .map(|(a, p, h)| SimEdit::Assign(a, p, h))
                .collect()
        } else {
            churn(n - 1)
                .into_iter()
                .map(|(a, p, h)| SimEdit::Revoke(a, p, h))
                .collect()
        }
    })));

    let listed = provider
        .assignments_since(AssignmentFilter::all(), None)
        .await
        .expect("the listing goes on to the last page");
    assert!(calls.load(Ordering::SeqCst) >= 4, "4 pages at least");
    assert_eq!(
        listed.versions.first.as_deref(),
        Some(start_version.as_str())
    );
    assert_eq!(
        listed.version_id, listed.versions.first,
        "resume from the first"
    );
    assert!(listed.versions.changed(), "{:?}", listed.versions);
    let mut seen: HashMap<HolderId, usize> = HashMap::new();
    for a in &listed.assignments {
        if a.product.as_str() == "361309726:STDQ" {
            *seen.entry(a.holder.id.clone()).or_default() += 1;
        } else {
            assert!(a.holder.id.as_str().starts_with("CHURN"), "{a:?}");
        }
    }
    for u in &users {
        assert_eq!(seen.get(u), Some(&1), "{u} listed exactly once");
    }
    assert_eq!(seen.len(), users.len());

    // The trait's listing says the same on its last record, for generic consumers (the report).
    let all: Vec<_> = provider
        .assignments(AssignmentFilter::all())
        .try_collect()
        .await
        .unwrap();
    let last = all.last().unwrap();
    assert_ne!(
        last.vendor["listing_first_version_id"],
        last.vendor["listing_last_version_id"]
    );
    let products = provider.products().await.unwrap();
    assert!(products[0].vendor.contains_key("listing_last_version_id"));

    // Assign and revoke proceed while the location keeps changing.
    let more = vec![HolderId::user("user-0398"), HolderId::user("user-0397")];
    let report = provider
        .assign(&ProductId::new("361309726"), &more)
        .await
        .unwrap();
    assert_eq!(report.counts().applied, 2, "{report:?}");
    let report = provider
        .revoke(&ProductId::new("361309726"), &users[..120])
        .await
        .unwrap();
    assert_eq!(report.counts().applied, 120, "{report:?}");
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

/// Apple accepted the work: when every status poll fails, the items stay `Pending` with their
/// event id (never `Failed`), and polling later settles them.
#[tokio::test]
async fn failed_status_polls_leave_items_pending_and_settle_later() {
    use licensekit_sim::faults::{Fault, Faults};
    let (sim, provider) = start(100, AppleSimConfig::default()).await;
    let product = ProductId::new("361309726:STDQ");
    let mut holders = active_users(30);
    holders.push(HolderId::device("DMPF000001"));
    sim.set_faults(Some(
        Faults::new(7, 1.0, &[Fault::ServerError]).only_path_suffix("/status"),
    ));
    let report = provider.assign(&product, &holders).await.unwrap();
    let references: std::collections::BTreeSet<String> = report
        .items
        .iter()
        .map(|i| match &i.outcome {
            Outcome::Pending { reference } => reference.clone(),
            other => panic!("{}: {other:?}", i.holder),
        })
        .collect();
    assert_eq!(references.len(), 1, "one event for 30 users and a device");
    assert_eq!(
        sim.holders_of("361309726", "STDQ").len(),
        31,
        "Apple did it"
    );

    sim.set_faults(None);
    let settled = provider.settle_pending(report).await.unwrap();
    assert!(
        settled.items.iter().all(|i| i.outcome == Outcome::Applied),
        "{:?} {:?}",
        settled.counts(),
        settled.items[0].vendor
    );
    let status = provider
        .event_status(references.iter().next().unwrap())
        .await
        .unwrap();
    assert_eq!(status.event_status, "COMPLETE");
}
