//! Secrets never leak, untrusted input cannot change a request's meaning.

// Each test is gated on the providers it needs; imports and helpers serve whichever are compiled in.
#![allow(unused_imports, dead_code)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use licensekit::{HolderId, LicenseProvider, LicenseProviderExt, ProductId};

/// Collects everything tracing writes, at TRACE.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

fn assert_absent(texts: &[String], secrets: &[&str]) {
    for text in texts {
        for secret in secrets {
            assert!(
                !text.contains(secret),
                "secret {secret:?} leaked in: {}",
                &text[..text.len().min(2000)]
            );
        }
    }
}

#[cfg(all(feature = "apple-vpp", feature = "genesys", feature = "salesforce"))]
#[tokio::test]
async fn canary_secrets_never_appear_in_debug_errors_or_trace_logs() {
    use licensekit::apple_vpp::{AppleVppConfig, AppleVppProvider};
    use licensekit::genesys::{GenesysConfig, GenesysProvider};
    use licensekit::salesforce::{SalesforceAuth, SalesforceConfig, SalesforceProvider};
    use licensekit_sim::apple::{AppleSeed, AppleSim, AppleSimConfig};
    use licensekit_sim::genesys::{GenesysSeed, GenesysSim, GenesysSimConfig, user_id};
    use licensekit_sim::salesforce::{SalesforceSeed, SalesforceSim, SalesforceSimConfig};

    const GENESYS_SECRET: &str = "canary-genesys-secret-1f4e";
    const SF_SECRET: &str = "canary-salesforce-secret-77aa";
    let private_key =
        include_str!("../crates/licensekit-salesforce/tests/keys/test-jwt-private.pem");
    let key_body: &str = private_key.lines().nth(3).unwrap();

    let captured = Captured::default();
    let writer = captured.clone();
    // Span events too, so every span's fields (route, attempt, status, …) are printed and checked.
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_span_events(tracing_subscriber::fmt::format::FmtSpan::FULL)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let mut texts: Vec<String> = Vec::new();

    // Genesys: client credentials.
    let g = GenesysSim::start(
        GenesysSeed::demo(20),
        GenesysSimConfig {
            client_secret: GENESYS_SECRET.into(),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let g_config = GenesysConfig::new("sim-client", GENESYS_SECRET.to_string().into())
        .with_base_url(g.base_url())
        .with_client_options(
            licensekit::ClientOptions::default()
                .with_allow_http(true)
                .with_rate(licensekit::Rate::Off),
        );
    texts.push(format!("{g_config:?}"));
    let genesys = GenesysProvider::new(g_config.clone()).unwrap();
    genesys.products().await.unwrap();
    genesys
        .assign(
            &ProductId::new("cloudCX1"),
            &[HolderId::user(user_id(1)), HolderId::user("bad/id")],
        )
        .await
        .unwrap();
    g.expire_tokens();
    genesys
        .revoke(&ProductId::new("cloudCX1"), &[HolderId::user(user_id(1))])
        .await
        .unwrap();
    texts.push(format!("{genesys:?}"));
    let wrong = GenesysProvider::new(
        GenesysConfig::new("sim-client", "canary-wrong-genesys".to_string().into())
            .with_base_url(g.base_url())
            .allow_http(true),
    )
    .unwrap();
    let err = wrong.products().await.unwrap_err();
    texts.extend([format!("{err}"), format!("{err:?}")]);

    // Salesforce: client credentials and JWT bearer.
    let s = SalesforceSim::start(
        SalesforceSeed::demo(10, 10),
        SalesforceSimConfig {
            client_secret: SF_SECRET.into(),
            run_as_username: Some("user0@example.com.sim".into()),
            jwt_public_key_pem: Some(
                include_str!("../crates/licensekit-salesforce/tests/keys/test-jwt-public.pem")
                    .into(),
            ),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let cc = SalesforceConfig::new(SalesforceAuth::ClientCredentials {
        login_url: s.base_url(),
        client_id: "sim-consumer-key".into(),
        client_secret: SF_SECRET.to_string().into(),
    })
    .allow_http(true);
    texts.push(format!("{cc:?}"));
    let salesforce = SalesforceProvider::new(cc).unwrap();
    salesforce.products().await.unwrap();
    let user = HolderId::user(s.user_ids()[1].clone());
    salesforce
        .assign(&ProductId::new("acme"), std::slice::from_ref(&user))
        .await
        .unwrap();
    s.expire_tokens();
    salesforce
        .revoke(&ProductId::new("acme"), &[user])
        .await
        .unwrap();
    texts.push(format!("{salesforce:?}"));
    let jwt = SalesforceConfig::new(SalesforceAuth::JwtBearer {
        login_url: s.base_url(),
        client_id: "sim-consumer-key".into(),
        username: "user1@example.com.sim".into(),
        private_key_pem: private_key.to_string().into(),
        audience: None,
    })
    .allow_http(true);
    texts.push(format!("{jwt:?}"));
    let jwt_provider = SalesforceProvider::new(jwt).unwrap();
    jwt_provider.all_holders().await.unwrap();
    texts.push(format!("{jwt_provider:?}"));

    // Apple: the location token.
    let a = AppleSim::start(AppleSeed::demo(10), AppleSimConfig::default())
        .await
        .unwrap();
    let stoken = a.stoken();
    let a_config = AppleVppConfig::new(stoken.clone().into())
        .with_base_url(a.base_url())
        .allow_http(true)
        .with_polling(Duration::from_millis(1), Duration::from_secs(5));
    texts.push(format!("{a_config:?}"));
    let apple = AppleVppProvider::new(a_config).unwrap();
    apple
        .assign(
            &ProductId::new("361309726"),
            &[HolderId::user("user-0001"), HolderId::device("C02CANARY")],
        )
        .await
        .unwrap();
    let _rotated = a.rotate_token();
    let err = apple.products().await.unwrap_err();
    texts.extend([format!("{err}"), format!("{err:?}"), format!("{apple:?}")]);

    let logs = captured.text();
    assert!(
        logs.contains("route") && logs.contains("genesys") && logs.contains("apple-vpp"),
        "TRACE logging ran"
    );
    texts.push(logs);
    assert_absent(
        &texts,
        &[
            GENESYS_SECRET,
            "canary-wrong-genesys",
            SF_SECRET,
            key_body,
            &stoken,
            // Access tokens the simulators issue.
            "sim-genesys-token-",
            "00DSIM0000000001!",
        ],
    );
}

/// Ids with `/`, `..`, `?` or `#` cannot reach another route.
#[cfg(feature = "genesys")]
#[tokio::test]
async fn path_segments_cannot_reach_another_route() {
    use licensekit::genesys::{GenesysConfig, GenesysProvider};
    use licensekit_sim::genesys::{GenesysSeed, GenesysSim, GenesysSimConfig};

    let g = GenesysSim::start(GenesysSeed::demo(3), GenesysSimConfig::default())
        .await
        .unwrap();
    let p = GenesysProvider::new(
        GenesysConfig::new("sim-client", "sim-secret".to_string().into())
            .with_base_url(g.base_url())
            .with_client_options(
                licensekit::ClientOptions::default()
                    .with_allow_http(true)
                    .with_rate(licensekit::Rate::Off),
            ),
    )
    .unwrap();
    for hostile in [
        "../definitions",
        "..",
        "x?pageSize=1",
        "x#frag",
        "a/b",
        "%2e%2e",
        // Control characters (issue 13, item 3): the url crate strips tab/CR/LF after its
        // dot-segment check, so `.\t.` used to become `..` and reach `GET /api/v2/license/`.
        ".\t.",
        "\t..",
        "..\n",
        ".\r.",
        "\u{0}",
        "a\u{7f}",
        "\u{85}..",
        "",
        ".",
    ] {
        if let Ok(d) = licensekit_genesys::testing::client(&p)
            .definition(hostile)
            .await
        {
            panic!("{hostile:?} reached something: {d:?}");
        }
        let result = licensekit_genesys::testing::client(&p).user(hostile).await;
        match result {
            Err(e) => assert!(
                matches!(
                    e.kind(),
                    licensekit::ErrorKind::NotFound | licensekit::ErrorKind::InvalidInput
                ),
                "{hostile}: {e}"
            ),
            Ok(u) => panic!("{hostile} reached something: {u:?}"),
        }
        assert!(
            licensekit_genesys::testing::client(&p)
                .toggle(hostile)
                .await
                .map(|t| t.feature_name == hostile)
                .unwrap_or(true),
            "{hostile}"
        );
    }
    let routes = g.calls().snapshot();
    assert!(
        routes.keys().all(|r| r.contains("/license/users/{userId}")
            || r.contains("/toggles/{featureName}")
            || r.contains("/definitions/{licenseId}")
            || r.contains("oauth")),
        "a hostile id reached another route: {routes:?}"
    );
}

/// An adversarial corpus meets SOQL: every value is rejected or escaped, and the simulator's real
/// parser shows the query kept its meaning (it matched nobody, and nothing was malformed).
#[cfg(feature = "salesforce")]
#[tokio::test]
async fn soql_injection_corpus_never_changes_a_query() {
    use licensekit::salesforce::{SalesforceConfig, SalesforceProvider};
    use licensekit_sim::salesforce::{SalesforceSeed, SalesforceSim, SalesforceSimConfig};

    let s = SalesforceSim::start(
        SalesforceSeed::demo(30, 100),
        SalesforceSimConfig::default(),
    )
    .await
    .unwrap();
    s.add_token("t");
    let p = SalesforceProvider::new(SalesforceConfig::session(&s.base_url(), "t").allow_http(true))
        .unwrap();
    let long = "x".repeat(10_000);
    let corpus: Vec<&str> = vec![
        "' OR Id != '",
        "\\' OR Id != \\'",
        "Sales User' OR Name != '",
        "x'; DELETE FROM User; '",
        "\\",
        "\\\\'",
        "line\nbreak",
        "tab\there",
        "quote\"double",
        "Ünïcødé ✓ 漢字",
        "%_wild%",
        "\u{0}",
        "\u{1b}[31m",
        &long,
    ];
    for hostile in corpus {
        match p.active_users_with_profile(hostile).await {
            Ok(users) => assert!(
                users.is_empty(),
                "{hostile:?} matched users: the query's meaning changed"
            ),
            Err(e) => assert_eq!(
                e.kind(),
                licensekit::ErrorKind::InvalidInput,
                "{hostile:?}: {e}"
            ),
        }
        let as_product = p
            .assign(
                &ProductId::new(hostile),
                &[HolderId::user(s.user_ids()[0].clone())],
            )
            .await;
        assert!(as_product.is_err(), "{hostile:?} accepted as a product");
        let as_user = p
            .assign(&ProductId::new("acme"), &[HolderId::user(hostile)])
            .await
            .unwrap();
        assert_eq!(
            as_user.items[0].outcome.error().map(|e| e.kind()),
            Some(licensekit::ErrorKind::InvalidInput),
            "{hostile:?}"
        );
    }
    // Every query that reached the simulator parsed: escaping never produced malformed SOQL.
    assert!(
        s.calls()
            .snapshot()
            .keys()
            .all(|r| !r.contains("unmatched"))
    );
    for q in s.queries() {
        assert!(licensekit_sim::salesforce::soql::parse(&q).is_ok(), "{q}");
    }
}

/// Response bodies are size-limited per provider: an oversized page is a `Decode` error naming
/// the provider, not an unbounded buffer.
#[cfg(all(feature = "apple-vpp", feature = "genesys", feature = "salesforce"))]
#[tokio::test]
async fn oversized_responses_are_refused() {
    use licensekit::apple_vpp::{AppleVppConfig, AppleVppProvider};
    use licensekit::genesys::{GenesysConfig, GenesysProvider};
    use licensekit::salesforce::{SalesforceConfig, SalesforceProvider};
    use licensekit_sim::apple::{AppleSeed, AppleSim, AppleSimConfig};
    use licensekit_sim::genesys::{GenesysSeed, GenesysSim, GenesysSimConfig};
    use licensekit_sim::salesforce::{SalesforceSeed, SalesforceSim, SalesforceSimConfig};

    let g = GenesysSim::start(GenesysSeed::demo(50), GenesysSimConfig::default())
        .await
        .unwrap();
    let mut gc = GenesysConfig::new("sim-client", "sim-secret".to_string().into())
        .with_base_url(g.base_url())
        .allow_http(true);
    gc.client.max_response_bytes = 300;
    let s = SalesforceSim::start(SalesforceSeed::demo(50, 10), SalesforceSimConfig::default())
        .await
        .unwrap();
    s.add_token("t");
    let mut sc = SalesforceConfig::session(&s.base_url(), "t").allow_http(true);
    sc.client.max_response_bytes = 300;
    let a = AppleSim::start(AppleSeed::demo(50), AppleSimConfig::default())
        .await
        .unwrap();
    let mut ac = AppleVppConfig::new(a.stoken().into())
        .with_base_url(a.base_url())
        .allow_http(true);
    ac.client.max_response_bytes = 300;
    let providers: Vec<Box<dyn LicenseProvider>> = vec![
        Box::new(GenesysProvider::new(gc).unwrap()),
        Box::new(SalesforceProvider::new(sc).unwrap()),
        Box::new(AppleVppProvider::new(ac).unwrap()),
    ];
    for p in providers {
        let err = p.all_holders().await.unwrap_err();
        assert_eq!(
            err.kind(),
            licensekit::ErrorKind::Decode,
            "{}: {err}",
            p.kind()
        );
        assert!(err.to_string().contains("more than 300 bytes"), "{err}");
        assert!(err.to_string().contains(p.kind().as_str()), "{err}");
    }
}
