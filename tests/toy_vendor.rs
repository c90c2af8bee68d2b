//! The toy vendor (`crates/licensekit-toy`), registered as CONTRIBUTING.md says a new vendor is,
//! passes the conformance suite through `ProviderConfig` (parsed from TOML) and `AnyProvider` —
//! with no change to licensekit-core for it. Needs the facade feature `toy`.

use licensekit::{
    AnyProvider, HolderId, LicenseProvider, LicenseProviderExt, ProductId, ProviderConfig, registry,
};
use licensekit_core::testkit::{Fixture, run_all};

const USERS: usize = 40;

fn toml_config() -> String {
    let users: Vec<String> = (0..USERS).map(|i| format!("\"user-{i:02}\"")).collect();
    format!(
        "provider = \"toy\"\nproducts = [\"app\", \"suite\"]\nusers = [{}]\nmax_batch = 7\n",
        users.join(", ")
    )
}

fn fixture() -> Fixture {
    Fixture {
        product: ProductId::new("app"),
        scarce_product: None,
        users: (0..USERS)
            .map(|i| HolderId::user(format!("user-{i:02}")))
            .collect(),
        devices: vec![],
        unknown_user: Some(HolderId::user("nobody")),
        unknown_product: ProductId::new("no-such-product"),
    }
}

#[tokio::test]
async fn the_toy_vendor_passes_the_suite_through_any_provider() {
    let config: ProviderConfig = toml::from_str(&toml_config()).unwrap();
    assert_eq!(config.kind().as_str(), "toy");
    let any = AnyProvider::from_config(config).unwrap();
    assert!(matches!(any, AnyProvider::Toy(_)), "{any:?}");
    assert_eq!(any.kind(), licensekit_toy::KIND);
    assert_eq!(any.capabilities().max_assign_batch, Some(7));
    run_all(&any, &fixture()).await;
}

#[tokio::test]
async fn the_toy_vendor_is_registered_and_configurable_from_the_environment() {
    let toy = registry::find("toy").unwrap();
    assert!(toy.is_compiled_in());
    assert_eq!(toy.feature(), Some("licensekit/toy"));

    let env = [
        ("LICENSEKIT_TOY_PRODUCTS", "app,suite"),
        ("LICENSEKIT_TOY_USERS", "ada, grace"),
        ("LICENSEKIT_TOY_MAX_BATCH", "3"),
        ("LICENSEKIT_GENESYS_CLIENT_ID", "not the toy's"),
    ]
    .map(|(k, v)| (k.to_string(), v.to_string()));
    let config = ProviderConfig::from_env_vars("toy", env)
        .unwrap()
        .with_config("max_batch", "2")
        .unwrap();
    let typed = config.vendor_config::<licensekit_toy::ToyConfig>().unwrap();
    assert_eq!(typed.users, ["ada", "grace"]);
    assert_eq!(typed.max_batch, Some(2));
    let err = config.clone().with_config("max_btach", "2").unwrap_err();
    assert!(err.to_string().contains("max_batch"), "{err}");

    let any = AnyProvider::from_config(config).unwrap();
    let report = any
        .assign(
            &ProductId::new("suite"),
            &[
                HolderId::user("ada"),
                HolderId::user("grace"),
                HolderId::user("x"),
            ],
        )
        .await
        .unwrap();
    assert_eq!(report.counts().applied, 2);
    assert_eq!(report.counts().failed, 1);
}
