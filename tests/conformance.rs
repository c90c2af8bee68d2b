//! The conformance suite against every provider available without a network: the in-memory
//! provider directly, and through `AnyProvider` (proving the enum dispatch forwards everything).

use licensekit::{AnyProvider, LicenseProvider};
use licensekit_core::testkit::{memory_fixture, run_all};
use std::sync::Arc;

#[tokio::test]
async fn in_memory_provider_passes_the_suite() {
    let (provider, fixture) = memory_fixture();
    run_all(&provider, &fixture).await;
    assert!(
        provider.pages_served() > 10,
        "listings must have spanned many pages"
    );
}

#[tokio::test]
async fn any_provider_passes_the_suite() {
    let (provider, fixture) = memory_fixture();
    let any = AnyProvider::from(provider.clone());
    run_all(&any, &fixture).await;
    // One account only: the kind names it.
    assert_eq!(any.identity().await.unwrap(), "memory");
    // Same backend: the dispatch really reached it.
    assert!(provider.pages_served() > 10);
}

#[tokio::test]
async fn arc_and_box_forwarding_pass_the_suite() {
    let (provider, fixture) = memory_fixture();
    let shared: Arc<dyn LicenseProvider> = Arc::new(provider.clone());
    run_all(&shared, &fixture).await;
    let boxed: Box<dyn LicenseProvider> = Box::new(provider);
    run_all(&boxed, &fixture).await;
}

/// Genesys, configured from JSON as a tool would, dispatched through `AnyProvider`.
#[cfg(feature = "genesys")]
#[tokio::test]
async fn genesys_through_any_provider_passes_the_suite() {
    use licensekit::{HolderId, ProductId, ProviderConfig};
    use licensekit_core::testkit::Fixture;
    use licensekit_sim::genesys::{GenesysSeed, GenesysSim, GenesysSimConfig, user_id};

    let sim = GenesysSim::start(GenesysSeed::demo(200), GenesysSimConfig::default())
        .await
        .unwrap();
    let config: ProviderConfig = serde_json::from_value(serde_json::json!({
        "provider": "genesys",
        "base_url": sim.base_url(),
        "client_id": "sim-client",
        "client_secret": "sim-secret",
        "client": {"allow_http": true, "rate": "off"},
        "page_size": 50,
    }))
    .unwrap();
    let any = AnyProvider::from_config(config).unwrap();
    assert_eq!(any.kind(), licensekit::genesys::KIND);
    let fixture = Fixture {
        product: ProductId::new("cloudCX1"),
        scarce_product: None,
        users: (0..200).map(|i| HolderId::user(user_id(i))).collect(),
        devices: vec![],
        unknown_user: Some(HolderId::user("00000000-0000-4000-8000-00000000beef")),
        unknown_product: ProductId::new("noSuchLicense"),
    };
    run_all(&any, &fixture).await;
    assert!(sim.calls().get("POST /api/v2/license/organization") > 0);
    // The API host and the OAuth client: no call, and no secret.
    let host = sim.base_url().trim_start_matches("http://").to_owned();
    let identity = any.identity().await.unwrap();
    assert_eq!(identity, format!("{host}/client:sim-client"));
    let shared: Arc<dyn LicenseProvider> = Arc::new(any);
    assert_eq!(shared.identity().await.unwrap(), identity, "Arc forwards");
}

#[cfg(feature = "genesys")]
#[test]
fn genesys_config_refuses_plain_http_without_the_flag() {
    use licensekit::{ErrorKind, ProviderConfig};
    let config: ProviderConfig = serde_json::from_value(serde_json::json!({
        "provider": "genesys",
        "base_url": "http://127.0.0.1:9",
        "client_id": "id",
        "client_secret": "canary-client-secret",
    }))
    .unwrap();
    assert!(!format!("{config:?}").contains("canary-client-secret"));
    let err = AnyProvider::from_config(config).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
    assert!(!err.to_string().contains("canary-client-secret"));
}

/// Salesforce, configured from JSON with an existing session, through `AnyProvider`.
#[cfg(feature = "salesforce")]
#[tokio::test]
async fn salesforce_through_any_provider_passes_the_suite() {
    use licensekit::{HolderId, ProductId, ProviderConfig};
    use licensekit_core::testkit::Fixture;
    use licensekit_sim::salesforce::{SalesforceSeed, SalesforceSim, SalesforceSimConfig, ids};

    let sim = SalesforceSim::start(
        SalesforceSeed::demo(400, 1000),
        SalesforceSimConfig {
            // The client-credentials flow runs as this user (the identity check below).
            run_as_username: Some("user0@example.com.sim".into()),
            ..SalesforceSimConfig::default()
        },
    )
    .await
    .unwrap();
    sim.add_token("any-provider-session");
    let config: ProviderConfig = serde_json::from_value(serde_json::json!({
        "provider": "salesforce",
        "client": {"allow_http": true},
        "auth": {"flow": "access_token", "instance_url": sim.base_url(), "access_token": "any-provider-session"},
    }))
    .unwrap();
    let any = AnyProvider::from_config(config).unwrap();
    assert_eq!(any.kind(), licensekit::salesforce::KIND);
    let all = sim.user_ids();
    let fixture = Fixture {
        // Canonical ids as listed (a namespace is accepted as an alias, but listings use ids).
        product: ProductId::new(sim.package_id("acme").unwrap()),
        scarce_product: Some((ProductId::new(sim.package_id("crm_tools").unwrap()), 2)),
        users: (0..400)
            .filter(|i| i % 10 != 9 && ![0, 2, 4].contains(i))
            .map(|i| HolderId::user(all[i].clone()))
            .collect(),
        devices: vec![],
        unknown_user: Some(HolderId::user(ids::make("005", 424_242))),
        unknown_product: ProductId::new("nosuchpkg"),
    };
    run_all(&any, &fixture).await;
    // A given session has no identity URL: the instance's host names the org.
    let host = sim.base_url().trim_start_matches("http://").to_owned();
    assert_eq!(any.identity().await.unwrap(), host);
    // A grant's token response names the org id.
    let granted: ProviderConfig = serde_json::from_value(serde_json::json!({
        "provider": "salesforce",
        "client": {"allow_http": true},
        "auth": {"flow": "client_credentials", "login_url": sim.base_url(),
                 "client_id": "sim-consumer-key", "client_secret": "sim-consumer-secret"},
    }))
    .unwrap();
    let granted = AnyProvider::from_config(granted).unwrap();
    let identity = granted.identity().await.unwrap();
    assert_eq!(identity, "org:00DSIM0000000001AAA");
    assert!(!identity.contains("sim-consumer-secret"));
}

/// Apple VPP, configured from JSON, through `AnyProvider` (events polled every millisecond).
#[cfg(feature = "apple-vpp")]
#[tokio::test]
async fn apple_vpp_through_any_provider_passes_the_suite() {
    use licensekit::{HolderId, ProductId, ProviderConfig};
    use licensekit_core::testkit::Fixture;
    use licensekit_sim::apple::{AppleSeed, AppleSim, AppleSimConfig, SimAsset};

    let seed = AppleSeed {
        assets: vec![
            SimAsset::app("361309726", 5000),
            SimAsset::app("408709785", 30),
        ],
        ..AppleSeed::demo(1700)
    };
    let sim = AppleSim::start(
        seed,
        AppleSimConfig {
            page_size: 300,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let config: ProviderConfig = serde_json::from_value(serde_json::json!({
        "provider": "apple-vpp",
        "stoken": sim.stoken(),
        "base_url": sim.base_url(),
        "client": {"allow_http": true},
        "poll_interval_secs": 0.001,
        "poll_timeout_secs": 5,
        "mdm_info": {"id": "licensekit-conformance", "name": "licensekit", "metadata": "test"},
    }))
    .unwrap();
    let any = AnyProvider::from_config(config).unwrap();
    assert_eq!(any.kind(), licensekit::apple_vpp::KIND);
    let fixture = Fixture {
        product: ProductId::new("361309726:STDQ"),
        scarce_product: Some((ProductId::new("408709785:STDQ"), 30)),
        users: (0..1700)
            .filter(|i| i % 10 != 9)
            .map(|i| HolderId::user(format!("user-{i:04}")))
            .collect(),
        devices: (0..4)
            .map(|i| HolderId::device(format!("DMPX{i:04}")))
            .collect(),
        unknown_user: Some(HolderId::user("nobody-here")),
        unknown_product: ProductId::new("123:STDQ"),
    };
    run_all(&any, &fixture).await;
    // The location's uId from client/config (the token's own secret never shows).
    let identity = any.identity().await.unwrap();
    assert_eq!(identity, "location:2049025000431439");
    let boxed: Box<dyn LicenseProvider> = Box::new(any);
    assert_eq!(boxed.identity().await.unwrap(), identity, "Box forwards");
}
