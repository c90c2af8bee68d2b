//! The Genesys adapter against the Genesys simulator.

use std::time::Duration;

use futures::TryStreamExt;
use licensekit_core::RetryConfig;
use licensekit_core::testkit::{Fixture, run_all};
use licensekit_core::{
    AssignmentFilter, ErrorKind, HolderId, LicenseProvider, LicenseProviderExt, OutcomeStatus,
    ProductId, Provenance, SeatTotal,
};
use licensekit_genesys::{GenesysConfig, GenesysProvider};
use licensekit_sim::genesys::{GenesysSeed, GenesysSim, GenesysSimConfig, user_id};
use secrecy::SecretString;

const ORGANIZATION: &str = "POST /api/v2/license/organization";
const USERS: &str = "GET /api/v2/license/users";

async fn setup(users: usize, page_size: u32) -> (GenesysSim, GenesysProvider) {
    let sim = GenesysSim::start(GenesysSeed::demo(users), GenesysSimConfig::default())
        .await
        .unwrap();
    let provider = provider_for(&sim, page_size, "sim-secret");
    (sim, provider)
}

fn provider_for(sim: &GenesysSim, page_size: u32, secret: &str) -> GenesysProvider {
    let config = GenesysConfig::new("sim-client", SecretString::from(secret))
        .with_base_url(sim.base_url())
        .with_client_options(
            licensekit_core::ClientOptions::default()
                .with_allow_http(true)
                .with_rate(licensekit_core::Rate::Off),
        )
        .with_page_size(page_size)
        .with_seat_total("cloudCX2", 150);
    let retry = RetryConfig::default()
        .with_backoff(Duration::from_millis(1), Duration::from_millis(10))
        .with_jitter_seed(3);
    GenesysProvider::with_retry(config, retry).unwrap()
}

#[tokio::test]
async fn passes_the_conformance_suite() {
    let (sim, provider) = setup(300, 40).await;
    let fixture = Fixture {
        product: ProductId::new("cloudCX1"),
        scarce_product: None,
        users: (0..300).map(|i| HolderId::user(user_id(i))).collect(),
        devices: vec![],
        unknown_user: Some(HolderId::user("00000000-0000-4000-8000-00000000dead")),
        unknown_product: ProductId::new("noSuchLicense"),
    };
    run_all(&provider, &fixture).await;
    assert!(
        sim.holders_of("cloudCX1").is_empty(),
        "the suite cleans up after itself"
    );
    assert_eq!(sim.tokens_issued(), 1, "one token for the whole suite");
}

#[tokio::test]
async fn products_count_assigned_seats_and_say_where_numbers_come_from() {
    let (_sim, provider) = setup(30, 7).await;
    let products = provider.products().await.unwrap();
    let cx2 = products
        .iter()
        .find(|p| p.id.as_str() == "cloudCX2")
        .unwrap();
    assert_eq!(cx2.name, "Genesys Cloud CX 2");
    assert_eq!(
        cx2.seats.assigned,
        Some(10),
        "users 0,3,..,27 hold cloudCX2"
    );
    assert_eq!(cx2.seats.assigned_source, Provenance::Counted);
    assert_eq!(cx2.seats.total, SeatTotal::Limited(150));
    assert_eq!(cx2.seats.total_source, Provenance::Configured);
    let cx3 = products
        .iter()
        .find(|p| p.id.as_str() == "cloudCX3")
        .unwrap();
    assert_eq!(cx3.seats.total, SeatTotal::Unknown, "never invented");
    let wem = products
        .iter()
        .find(|p| p.id.as_str() == "gc2WEMupgrade")
        .unwrap();
    assert_eq!(wem.vendor["prerequisites"], serde_json::json!(["cloudCX2"]));
    assert_eq!(
        wem.vendor["permissions"],
        serde_json::json!(["wfm:schedule:view"])
    );
}

#[tokio::test]
async fn listing_pages_through_every_user() {
    let (sim, provider) = setup(300, 100).await;
    let listed = provider
        .all_assignments(AssignmentFilter::product("cloudCX2"))
        .await
        .unwrap();
    assert_eq!(listed.len(), 100);
    assert_eq!(sim.calls().get(USERS), 3, "300 users at 100 per page");
    sim.calls().reset();
    let small_pages = provider_for(&sim, 7, "sim-secret");
    let all = small_pages
        .all_assignments(AssignmentFilter::all())
        .await
        .unwrap();
    assert_eq!(all.len(), 100);
    assert_eq!(sim.calls().get(USERS), 43, "ceil(300 / 7) pages");
    // By holder: one call to users/{id}.
    let one = provider
        .assignments_of(&HolderId::user(user_id(3)))
        .await
        .unwrap();
    assert_eq!(one.len(), 1);
    assert_eq!(one[0].product.as_str(), "cloudCX2");
    assert_eq!(sim.calls().get("GET /api/v2/license/users/{userId}"), 1);
}

#[tokio::test]
async fn batches_split_at_the_maximum_and_each_user_gets_its_result() {
    let (sim, provider) = setup(300, 100).await;
    let users: Vec<HolderId> = (0..250).map(|i| HolderId::user(user_id(i))).collect();
    let report = provider
        .assign(&ProductId::new("cloudCX3"), &users)
        .await
        .unwrap();
    assert_eq!(report.counts().applied, 250);
    assert_eq!(
        sim.calls().get(ORGANIZATION),
        3,
        "250 users at 100 per request"
    );
    assert_eq!(sim.holders_of("cloudCX3").len(), 250);
}

#[tokio::test]
async fn mixed_valid_and_invalid_users_in_one_batch() {
    let (sim, provider) = setup(10, 100).await;
    let unknown = "00000000-0000-4000-8000-00000000dead";
    let request = vec![
        HolderId::user(user_id(0)), // holds cloudCX2 already
        HolderId::user(user_id(1)), // gets it
        HolderId::user(unknown),    // unknown to Genesys
        HolderId::user("../admin"), // not a user id at all: refused before any call
        HolderId::user(user_id(1)), // repeated
    ];
    let report = provider
        .assign(&ProductId::new("cloudCX2"), &request)
        .await
        .unwrap();
    let statuses: Vec<_> = report.items.iter().map(|i| i.outcome.status()).collect();
    assert_eq!(
        statuses,
        vec![
            OutcomeStatus::AlreadyInState,
            OutcomeStatus::Applied,
            OutcomeStatus::Failed,
            OutcomeStatus::Failed,
            OutcomeStatus::Duplicate,
        ]
    );
    assert_eq!(
        report.items[2].outcome.error().unwrap().kind(),
        ErrorKind::NotFound
    );
    assert_eq!(
        report.items[3].outcome.error().unwrap().kind(),
        ErrorKind::InvalidInput
    );
    assert_eq!(sim.calls().get(ORGANIZATION), 1);
    assert!(sim.licenses_of(&user_id(1)).unwrap().contains("cloudCX2"));
    // Revoke: holder without the license is AlreadyInState.
    let report = provider
        .revoke(
            &ProductId::new("cloudCX2"),
            &[HolderId::user(user_id(1)), HolderId::user(user_id(2))],
        )
        .await
        .unwrap();
    let statuses: Vec<_> = report.items.iter().map(|i| i.outcome.status()).collect();
    assert_eq!(
        statuses,
        vec![OutcomeStatus::Applied, OutcomeStatus::AlreadyInState]
    );
}

#[tokio::test]
async fn an_unknown_license_is_not_found_before_any_change() {
    let (sim, provider) = setup(5, 100).await;
    let err = provider
        .assign(
            &ProductId::new("noSuchLicense"),
            &[HolderId::user(user_id(1))],
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert_eq!(sim.calls().get(ORGANIZATION), 0);
    // The correlation id reaches the error chain, for support tickets.
    let vendor = err.vendor_error().expect("vendor detail in the chain");
    assert!(
        vendor
            .correlation_id
            .as_deref()
            .is_some_and(|c| c.contains("sim0")),
        "{vendor:?}"
    );
}

#[tokio::test]
async fn devices_are_refused_before_any_call() {
    let (sim, provider) = setup(5, 100).await;
    let err = provider
        .assign(
            &ProductId::new("cloudCX1"),
            &[HolderId::device("C02XK0001")],
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unsupported);
    assert_eq!(sim.calls().total(), 0);
}

#[tokio::test]
async fn one_token_for_many_calls_and_a_new_one_after_expiry() {
    let (sim, provider) = setup(5, 100).await;
    for _ in 0..10 {
        licensekit_genesys::testing::client(&provider)
            .definitions()
            .await
            .unwrap();
    }
    assert_eq!(sim.tokens_issued(), 1);
    assert_eq!(sim.calls().get("POST /oauth/token"), 1);
    sim.expire_tokens();
    // The next call gets 401 bad.credentials, re-fetches once and succeeds.
    licensekit_genesys::testing::client(&provider)
        .definitions()
        .await
        .unwrap();
    assert_eq!(sim.tokens_issued(), 2);
    assert_eq!(sim.calls().get("GET /api/v2/license/definitions"), 12);
}

#[tokio::test]
async fn a_wrong_client_secret_is_unauthenticated() {
    let (sim, _) = setup(5, 100).await;
    let provider = provider_for(&sim, 100, "wrong-secret");
    let err = licensekit_genesys::testing::client(&provider)
        .definitions()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unauthenticated);
    assert!(err.to_string().contains("invalid_client"), "{err}");
    assert!(!format!("{err:?}{provider:?}").contains("wrong-secret"));
}

/// Issue 14, item 9: the token endpoint's description is kept, so a wrong client id and a wrong
/// secret read differently (genesys-payloads §4: 400 "client not found" vs 401 "authentication
/// failed", the latter with `description` only).
#[tokio::test]
async fn a_wrong_client_id_and_a_wrong_secret_are_told_apart() {
    let (sim, _) = setup(5, 100).await;
    let wrong_secret = provider_for(&sim, 100, "wrong-secret");
    let wrong_secret = licensekit_genesys::testing::client(&wrong_secret)
        .definitions()
        .await
        .unwrap_err();
    let config = GenesysConfig::new("no-such-client", SecretString::from("sim-secret"))
        .with_base_url(sim.base_url())
        .with_client_options(
            licensekit_core::ClientOptions::default()
                .with_allow_http(true)
                .with_rate(licensekit_core::Rate::Off),
        );
    let wrong_id = GenesysProvider::new(config).unwrap();
    let wrong_id = licensekit_genesys::testing::client(&wrong_id)
        .definitions()
        .await
        .unwrap_err();
    for err in [&wrong_secret, &wrong_id] {
        assert_eq!(err.kind(), ErrorKind::Unauthenticated, "{err}");
    }
    assert!(
        wrong_id.to_string().contains("client not found"),
        "{wrong_id}"
    );
    assert!(
        wrong_secret.to_string().contains("authentication failed"),
        "{wrong_secret}"
    );
}

#[tokio::test]
async fn every_license_api_route() {
    let (sim, provider) = setup(6, 100).await;
    let c = licensekit_genesys::testing::client(&provider);
    let defs = c.definitions().await.unwrap();
    assert_eq!(defs.len(), 4);
    let cx2 = c.definition("cloudCX2").await.unwrap();
    assert_eq!(cx2.permissions.unwrap().ids.len(), 2);
    assert_eq!(
        c.definition("nope").await.unwrap_err().kind(),
        ErrorKind::NotFound
    );
    let page = c.users_page(4, 2).await.unwrap();
    assert_eq!(
        (page.entities.len(), page.total, page.page_count),
        (2, Some(6), Some(2))
    );
    let user = c.user(&user_id(0)).await.unwrap();
    assert_eq!(user.licenses[0].id, "cloudCX2");
    let map = c.users_by_id(&[user_id(0), user_id(1)]).await.unwrap();
    assert_eq!(map.len(), 2);
    let err = c.organization().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unsupported);
    assert!(
        err.to_string().contains("GET /api/v2/license/organization"),
        "{err}"
    );
    let toggle = c.toggle("someFeature").await.unwrap();
    assert!(toggle.enabled && toggle.feature_name == "someFeature");
    assert!(
        c.set_toggle("some/feature").await.unwrap().enabled,
        "path segment encoded"
    );
    assert_eq!(
        c.infer(&["role-agent".into()]).await.unwrap(),
        vec!["cloudCX2"]
    );
    let by_permission = c
        .infer_permissions(&["wfm:schedule:view".into()])
        .await
        .unwrap();
    assert_eq!(by_permission, vec!["cloudCX3", "gc2WEMupgrade"]);
    let statuses = c
        .update_assignments(vec![
            licensekit_genesys::testing::wire::LicenseAssignmentRequest::new(
                "cloudCX1",
                vec![user_id(1)],
                vec![],
            ),
        ])
        .await
        .unwrap();
    assert_eq!(statuses[0].result, "Success");
    // Every route the adapter used was a known one.
    assert!(
        sim.calls()
            .snapshot()
            .keys()
            .all(|r| !r.contains("unmatched")),
        "{:?}",
        sim.calls().snapshot()
    );
}

#[tokio::test]
async fn listing_survives_token_expiry_midway() {
    let (sim, provider) = setup(50, 10).await;
    let mut stream = provider.assignments(AssignmentFilter::all());
    let mut n = 0;
    while let Some(_a) = stream.try_next().await.unwrap() {
        n += 1;
        if n == 3 {
            sim.expire_tokens();
        }
    }
    assert_eq!(n, 17, "users 0,3,..,48 hold cloudCX2");
    assert_eq!(sim.tokens_issued(), 2);
}

#[tokio::test]
async fn the_directory_lists_every_user_with_email_and_state() {
    let (sim, provider) = setup(30, 7).await;
    sim.set_user_state(&user_id(4), "inactive");
    let holders = provider.all_holders().await.unwrap();
    assert_eq!(holders.len(), 30);
    assert_eq!(
        sim.calls().get("GET /api/v2/users"),
        5,
        "ceil(30 / 7) pages"
    );
    let h4 = holders
        .iter()
        .find(|h| h.id == HolderId::user(user_id(4)))
        .unwrap();
    assert_eq!(h4.active, Some(false));
    assert_eq!(h4.email.as_deref(), Some("agent4@example.com"));
}

/// `result` words are undocumented (spec §9.2): answers in words the adapter has never seen, or
/// an empty answer, still end in exact outcomes, settled by reading the users back.
#[tokio::test]
async fn unseen_result_words_and_empty_answers_are_settled_from_state() {
    use licensekit_sim::genesys::ResultWords;
    const READ_BACK: &str = "POST /api/v2/license/users";
    for words in [ResultWords::Unseen, ResultWords::Empty] {
        let (sim, provider) = setup(300, 100).await;
        sim.set_result_words(words);
        let cx2 = ProductId::new("cloudCX2");
        let holds_cx2: Vec<bool> = (0..300)
            .map(|i| sim.licenses_of(&user_id(i)).unwrap().contains("cloudCX2"))
            .collect();
        let mut request: Vec<HolderId> = (0..250).map(|i| HolderId::user(user_id(i))).collect();
        request.push(HolderId::user("00000000-0000-4000-8000-00000000dead"));
        let report = provider.assign(&cx2, &request).await.unwrap();
        for (i, item) in report.items.iter().take(250).enumerate() {
            assert_eq!(
                item.outcome,
                licensekit_core::Outcome::Applied,
                "{words:?} user {i} (held before: {})",
                holds_cx2[i]
            );
            assert!(sim.licenses_of(&user_id(i)).unwrap().contains("cloudCX2"));
        }
        assert_eq!(
            report.items[250].outcome.status(),
            OutcomeStatus::Failed,
            "an unknown user is not in the state: {words:?}"
        );
        if words == ResultWords::Unseen {
            assert_eq!(
                report.items[0]
                    .vendor
                    .get("result")
                    .and_then(|r| r.as_str()),
                Some(if holds_cx2[0] { "Kept" } else { "Granted" }),
                "the vendor's word is kept verbatim"
            );
        }
        assert_eq!(
            sim.calls().get(READ_BACK),
            3,
            "one read per batch: {words:?}"
        );

        let report = provider.revoke(&cx2, &request[..250]).await.unwrap();
        assert!(
            report
                .items
                .iter()
                .all(|i| i.outcome == licensekit_core::Outcome::Applied),
            "{words:?}: {:?}",
            report.counts()
        );
        for i in 0..250 {
            assert!(!sim.licenses_of(&user_id(i)).unwrap().contains("cloudCX2"));
        }
    }
}

/// Last sign-in is an expand of the Users API (`dateLastLogin`): the adapter asks for it and
/// reads it; a user without one (never signed in, or the expand not resolved) has none.
#[tokio::test]
async fn the_directory_reads_last_login_through_the_expand() {
    use licensekit_sim::genesys::SimDirectoryUser;
    let mut seed = GenesysSeed::demo(0);
    for (i, login) in [Some("2026-05-04T03:02:01.123Z"), None]
        .into_iter()
        .enumerate()
    {
        seed.directory.push(SimDirectoryUser {
            id: user_id(i),
            name: format!("Agent {i}"),
            email: format!("agent{i}@example.com"),
            state: "active".into(),
            date_last_login: login.map(str::to_owned),
        });
    }
    let sim = GenesysSim::start(seed, GenesysSimConfig::default())
        .await
        .unwrap();
    let provider = provider_for(&sim, 25, "sim-secret");
    let holders = provider.all_holders().await.unwrap();
    let login = |i: usize| {
        holders
            .iter()
            .find(|h| h.id == HolderId::user(user_id(i)))
            .unwrap()
            .last_login
            .map(|d| d.to_rfc3339())
    };
    assert_eq!(login(0).as_deref(), Some("2026-05-04T03:02:01.123+00:00"));
    assert_eq!(login(1), None);
}
