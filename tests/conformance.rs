//! The conformance suite against every provider available without a network: the in-memory
//! provider directly, and through `AnyProvider` (proving the enum dispatch forwards everything).

use licensekit::testkit::{memory_fixture, run_all};
use licensekit::{AnyProvider, LicenseProvider};
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
