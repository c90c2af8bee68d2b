//! The conformance suite every provider must pass (feature `testkit`).
//!
//! Public async functions over `&dyn LicenseProvider`, gated by the provider's
//! [`Capabilities`](crate::Capabilities). Each test leaves the provider as it found it (it
//! revokes what it assigned), so they can run one after another on one seeded backend. A failed
//! expectation panics with a message naming the provider and the rule broken.

use futures::TryStreamExt;

use crate::error::{Error, ErrorKind};
use crate::model::{AssignmentFilter, ChangeReport, HolderId, OutcomeStatus, ProductId};
use crate::provider::{LicenseProvider, LicenseProviderExt};

/// What the suite needs to know about a seeded provider.
#[derive(Debug, Clone)]
pub struct Fixture {
    /// A product with room for every user in `users` (and every device in `devices`), held by none
    /// of them at the start.
    pub product: ProductId,
    /// A product with exactly `scarce_free_seats` free seats, if the provider enforces seat limits.
    pub scarce_product: Option<(ProductId, usize)>,
    /// Existing, active users holding nothing of `product`/`scarce_product`. Enough for a batch
    /// larger than the provider's max batch (the suite says how many when there are too few).
    pub users: Vec<HolderId>,
    /// Device holders, if the provider supports devices.
    pub devices: Vec<HolderId>,
    /// A user id the vendor does not know, if the vendor rejects unknown users.
    pub unknown_user: Option<HolderId>,
    /// A product id the vendor does not know.
    pub unknown_product: ProductId,
}

/// Runs every test of the suite, in order.
pub async fn run_all(provider: &dyn LicenseProvider, fixture: &Fixture) {
    products_are_listed(provider, fixture).await;
    empty_batch_is_an_empty_report(provider, fixture).await;
    assign_then_list(provider, fixture).await;
    assign_twice_is_already_in_state(provider, fixture).await;
    revoke_then_revoke_again(provider, fixture).await;
    repeated_holders_each_get_an_outcome(provider, fixture).await;
    unknown_product_is_not_found(provider, fixture).await;
    unknown_user_fails_only_that_item(provider, fixture).await;
    seat_exhaustion_fails_per_item(provider, fixture).await;
    unsupported_holder_kind_is_refused(provider, fixture).await;
    devices_can_hold_licenses(provider, fixture).await;
    large_batch_beyond_max_batch_size(provider, fixture).await;
}

fn name(provider: &dyn LicenseProvider) -> String {
    provider.kind().to_string()
}

fn assert_report(
    provider: &dyn LicenseProvider,
    report: &ChangeReport,
    expected: &[OutcomeStatus],
) {
    let got: Vec<OutcomeStatus> = report.items.iter().map(|i| i.outcome.status()).collect();
    assert_eq!(
        got,
        expected,
        "[{}] unexpected outcomes for {} of {}: {:?}",
        name(provider),
        report.action,
        report.product,
        report
            .items
            .iter()
            .map(|i| (
                i.holder.to_string(),
                i.outcome.error().map(ToString::to_string)
            ))
            .collect::<Vec<_>>()
    );
    assert_eq!(report.counts().total(), report.items.len());
}

/// Outcomes that count as "done" for an assign/revoke that should succeed. A provider with
/// asynchronous completion may answer `Pending` only if it cannot observe completion.
fn ok(n: usize) -> Vec<OutcomeStatus> {
    vec![OutcomeStatus::Applied; n]
}

async fn holders_of(provider: &dyn LicenseProvider, product: &ProductId) -> Vec<HolderId> {
    let mut holders: Vec<HolderId> = provider
        .assignments(AssignmentFilter::product(product.clone()))
        .map_ok(|a| a.holder.id)
        .try_collect()
        .await
        .unwrap_or_else(|e| panic!("[{}] listing assignments failed: {e}", name(provider)));
    holders.sort();
    holders
}

fn users(provider: &dyn LicenseProvider, fixture: &Fixture, n: usize) -> Vec<HolderId> {
    assert!(
        fixture.users.len() >= n,
        "[{}] the fixture needs at least {n} users, it has {}",
        name(provider),
        fixture.users.len()
    );
    fixture.users[..n].to_vec()
}

async fn cleanup(provider: &dyn LicenseProvider, product: &ProductId, holders: &[HolderId]) {
    let report = provider
        .revoke(product, holders)
        .await
        .unwrap_or_else(|e| panic!("[{}] cleanup revoke failed: {e}", name(provider)));
    assert!(
        report.is_complete_success(),
        "[{}] cleanup revoke failed for some holders: {:?}",
        name(provider),
        report
            .failures()
            .map(|(h, e)| (h.to_string(), e.to_string()))
            .collect::<Vec<_>>()
    );
}

/// Products are listed, contain the fixture's product, have unique ids and coherent seats.
pub async fn products_are_listed(provider: &dyn LicenseProvider, fixture: &Fixture) {
    let products = provider
        .products()
        .await
        .unwrap_or_else(|e| panic!("[{}] products() failed: {e}", name(provider)));
    assert!(
        products.iter().any(|p| p.id == fixture.product),
        "[{}] product {} is not listed",
        name(provider),
        fixture.product
    );
    let mut ids: Vec<_> = products.iter().map(|p| &p.id).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(
        ids.len(),
        products.len(),
        "[{}] product ids repeat",
        name(provider)
    );
    for p in &products {
        assert_eq!(
            p.provider,
            provider.kind(),
            "[{}] product {} has the wrong provider",
            name(provider),
            p.id
        );
    }
}

/// An empty request is an empty report, not an error.
pub async fn empty_batch_is_an_empty_report(provider: &dyn LicenseProvider, fixture: &Fixture) {
    for report in [
        provider.assign(&fixture.product, &[]).await,
        provider.revoke(&fixture.product, &[]).await,
    ] {
        let report =
            report.unwrap_or_else(|e| panic!("[{}] empty batch failed: {e}", name(provider)));
        assert!(
            report.items.is_empty(),
            "[{}] empty batch produced outcomes",
            name(provider)
        );
    }
}

/// Assigned seats show up in the listing, by product and by holder.
pub async fn assign_then_list(provider: &dyn LicenseProvider, fixture: &Fixture) {
    let holders = users(provider, fixture, 3);
    let report = provider
        .assign(&fixture.product, &holders)
        .await
        .unwrap_or_else(|e| panic!("[{}] assign failed: {e}", name(provider)));
    assert_report(provider, &report, &ok(3));
    let listed = holders_of(provider, &fixture.product).await;
    for h in &holders {
        assert!(
            listed.contains(h),
            "[{}] {h} is not listed after assign",
            name(provider)
        );
    }
    let by_holder = provider
        .assignments_of(&holders[0])
        .await
        .unwrap_or_else(|e| panic!("[{}] listing by holder failed: {e}", name(provider)));
    assert!(
        by_holder.iter().all(|a| a.holder.id == holders[0]),
        "[{}] the holder filter returned other holders",
        name(provider)
    );
    assert!(
        by_holder.iter().any(|a| a.product == fixture.product),
        "[{}] the holder filter misses {}",
        name(provider),
        fixture.product
    );
    cleanup(provider, &fixture.product, &holders).await;
    let listed = holders_of(provider, &fixture.product).await;
    for h in &holders {
        assert!(
            !listed.contains(h),
            "[{}] {h} still listed after revoke",
            name(provider)
        );
    }
}

/// Assigning what is already assigned is `AlreadyInState`, never a second seat.
pub async fn assign_twice_is_already_in_state(provider: &dyn LicenseProvider, fixture: &Fixture) {
    let holders = users(provider, fixture, 2);
    let first = provider.assign(&fixture.product, &holders).await.unwrap();
    assert_report(provider, &first, &ok(2));
    let before = holders_of(provider, &fixture.product).await.len();
    let second = provider.assign(&fixture.product, &holders).await.unwrap();
    assert_report(provider, &second, &[OutcomeStatus::AlreadyInState; 2]);
    assert_eq!(
        holders_of(provider, &fixture.product).await.len(),
        before,
        "[{}] a repeated assign changed the number of seats held",
        name(provider)
    );
    cleanup(provider, &fixture.product, &holders).await;
}

/// Revoking frees the seat; revoking again is `AlreadyInState`.
pub async fn revoke_then_revoke_again(provider: &dyn LicenseProvider, fixture: &Fixture) {
    let holders = users(provider, fixture, 2);
    provider.assign(&fixture.product, &holders).await.unwrap();
    let first = provider.revoke(&fixture.product, &holders).await.unwrap();
    assert_report(provider, &first, &ok(2));
    let second = provider.revoke(&fixture.product, &holders).await.unwrap();
    assert_report(provider, &second, &[OutcomeStatus::AlreadyInState; 2]);
}

/// A holder named twice in one request gets an outcome for each mention.
pub async fn repeated_holders_each_get_an_outcome(
    provider: &dyn LicenseProvider,
    fixture: &Fixture,
) {
    let holders = users(provider, fixture, 2);
    let request = vec![holders[0].clone(), holders[1].clone(), holders[0].clone()];
    let report = provider.assign(&fixture.product, &request).await.unwrap();
    assert_eq!(
        report.items.len(),
        3,
        "[{}] a repeated holder lost its outcome",
        name(provider)
    );
    assert_eq!(report.items[2].holder, holders[0]);
    assert!(
        report.is_complete_success(),
        "[{}] repeated holder failed",
        name(provider)
    );
    cleanup(provider, &fixture.product, &holders).await;
}

/// An unknown product is `NotFound` for the whole call, before anything changes.
pub async fn unknown_product_is_not_found(provider: &dyn LicenseProvider, fixture: &Fixture) {
    let holders = users(provider, fixture, 1);
    for result in [
        provider.assign(&fixture.unknown_product, &holders).await,
        provider.revoke(&fixture.unknown_product, &holders).await,
    ] {
        let err = result.expect_err("an unknown product must be refused");
        assert_eq!(
            err.kind(),
            ErrorKind::NotFound,
            "[{}] {err}",
            name(provider)
        );
    }
}

/// An unknown user fails only its own item; the rest are applied.
pub async fn unknown_user_fails_only_that_item(provider: &dyn LicenseProvider, fixture: &Fixture) {
    let Some(unknown) = &fixture.unknown_user else {
        return;
    };
    let mut request = users(provider, fixture, 2);
    request.insert(1, unknown.clone());
    let report = provider.assign(&fixture.product, &request).await.unwrap();
    assert_report(
        provider,
        &report,
        &[
            OutcomeStatus::Applied,
            OutcomeStatus::Failed,
            OutcomeStatus::Applied,
        ],
    );
    let kind = report.items[1].outcome.error().map(Error::kind);
    assert!(
        matches!(kind, Some(ErrorKind::NotFound | ErrorKind::InvalidInput)),
        "[{}] unknown user failed as {kind:?}",
        name(provider)
    );
    cleanup(
        provider,
        &fixture.product,
        &[request[0].clone(), request[2].clone()],
    )
    .await;
}

/// Past the free seats, the surplus items fail with `InsufficientSeats` and the rest apply.
pub async fn seat_exhaustion_fails_per_item(provider: &dyn LicenseProvider, fixture: &Fixture) {
    if !provider.capabilities().seat_limits_enforced {
        return;
    }
    let Some((scarce, free)) = &fixture.scarce_product else {
        panic!(
            "[{}] enforces seat limits: the fixture needs a scarce product",
            name(provider)
        );
    };
    let request = users(provider, fixture, free + 2);
    let report = provider.assign(scarce, &request).await.unwrap();
    let counts = report.counts();
    assert_eq!(counts.total(), request.len());
    assert_eq!(
        counts.applied,
        *free,
        "[{}] seat exhaustion: {counts:?}",
        name(provider)
    );
    assert_eq!(
        counts.failed,
        2,
        "[{}] seat exhaustion: {counts:?}",
        name(provider)
    );
    for (_, err) in report.failures() {
        assert_eq!(
            err.kind(),
            ErrorKind::InsufficientSeats,
            "[{}] {err}",
            name(provider)
        );
    }
    let applied: Vec<HolderId> = report
        .items
        .iter()
        .filter(|i| i.outcome.status() == OutcomeStatus::Applied)
        .map(|i| i.holder.clone())
        .collect();
    cleanup(provider, scarce, &applied).await;
}

/// A holder kind the provider cannot serve is refused for the whole call, before any I/O.
pub async fn unsupported_holder_kind_is_refused(provider: &dyn LicenseProvider, fixture: &Fixture) {
    let caps = provider.capabilities();
    let mut probes = Vec::new();
    if !caps.device_holders {
        probes.push(HolderId::device("CONFORMANCE0001"));
    }
    if !caps.user_holders {
        probes.push(HolderId::user("conformance-user"));
    }
    for probe in probes {
        let err = provider
            .assign(&fixture.product, std::slice::from_ref(&probe))
            .await
            .expect_err("an unsupported holder kind must be refused");
        assert_eq!(
            err.kind(),
            ErrorKind::Unsupported,
            "[{}] {err}",
            name(provider)
        );
    }
}

/// Devices hold licenses like users do, where supported.
pub async fn devices_can_hold_licenses(provider: &dyn LicenseProvider, fixture: &Fixture) {
    if !provider.capabilities().device_holders || fixture.devices.is_empty() {
        return;
    }
    let devices = fixture.devices[..fixture.devices.len().min(3)].to_vec();
    let report = provider.assign(&fixture.product, &devices).await.unwrap();
    assert_report(provider, &report, &ok(devices.len()));
    let listed = holders_of(provider, &fixture.product).await;
    for d in &devices {
        assert!(listed.contains(d), "[{}] {d} not listed", name(provider));
    }
    cleanup(provider, &fixture.product, &devices).await;
}

/// A batch larger than the provider's maximum is split, fully applied, and streams back across
/// several listing pages.
pub async fn large_batch_beyond_max_batch_size(provider: &dyn LicenseProvider, fixture: &Fixture) {
    let caps = provider.capabilities();
    let max = caps
        .max_assign_batch
        .unwrap_or(100)
        .max(caps.max_revoke_batch.unwrap_or(0));
    let n = max + max / 2 + 1;
    let holders = users(provider, fixture, n);
    let report = provider.assign(&fixture.product, &holders).await.unwrap();
    assert_report(provider, &report, &ok(n));
    let listed = holders_of(provider, &fixture.product).await;
    assert_eq!(
        listed.iter().filter(|h| holders.contains(h)).count(),
        n,
        "[{}] the listing lost assignments of a large batch",
        name(provider)
    );
    let revoked = provider.revoke(&fixture.product, &holders).await.unwrap();
    assert_report(provider, &revoked, &ok(n));
    assert!(
        holders_of(provider, &fixture.product)
            .await
            .iter()
            .all(|h| !holders.contains(h)),
        "[{}] seats remain after revoking a large batch",
        name(provider)
    );
}

/// An [`InMemoryProvider`](crate::InMemoryProvider) seeded for the suite, with its fixture.
/// `page_size` is small so listings span many pages.
pub fn memory_fixture() -> (crate::InMemoryProvider, Fixture) {
    use crate::memory::{MemoryConfig, MemoryProduct, MemoryUser};
    let users: Vec<MemoryUser> = (0..400)
        .map(|i| MemoryUser {
            id: format!("user-{i:04}"),
            email: Some(format!("user{i}@example.com")),
            name: Some(format!("User {i}")),
            active: true,
            last_login: None,
        })
        .collect();
    let config = MemoryConfig {
        products: vec![
            MemoryProduct {
                id: "suite".into(),
                name: "Conformance suite product".into(),
                seats: Some(1_000),
                device_assignable: true,
            },
            MemoryProduct {
                id: "scarce".into(),
                name: "Scarce product".into(),
                seats: Some(5),
                device_assignable: false,
            },
        ],
        users: users.clone(),
        page_size: 17,
        assignments: vec![
            // Two seats of the scarce product are taken by users outside the fixture's list.
            crate::memory::MemoryAssignment {
                product: "scarce".into(),
                holder: HolderId::user("user-0398"),
            },
            crate::memory::MemoryAssignment {
                product: "scarce".into(),
                holder: HolderId::user("user-0399"),
            },
        ],
        ..MemoryConfig::default()
    };
    let provider = crate::InMemoryProvider::new(config).expect("valid seed");
    let fixture = Fixture {
        product: ProductId::new("suite"),
        scarce_product: Some((ProductId::new("scarce"), 3)),
        users: users[..398]
            .iter()
            .map(|u| HolderId::user(u.id.clone()))
            .collect(),
        devices: (0..5)
            .map(|i| HolderId::device(format!("C02XK{i:04}")))
            .collect(),
        unknown_user: Some(HolderId::user("no-such-user")),
        unknown_product: ProductId::new("no-such-product"),
    };
    (provider, fixture)
}
