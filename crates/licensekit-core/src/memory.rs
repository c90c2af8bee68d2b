//! An in-memory provider that behaves like a vendor: seat limits, registered users, inactive
//! users, device-assignable products, idempotent changes and paged listings. Always compiled, so
//! users can embed it in their own tests.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::Bound;
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures::stream::{self, BoxStream, StreamExt};
use serde::{Deserialize, Serialize};

use crate::bulk::{self, BulkBackend, BulkOptions, ChangeRequest, ItemAnswer, Prepared, StateRead};
use crate::capabilities::Capabilities;
use crate::error::{Error, Result};
use crate::model::{
    Assignment, AssignmentFilter, ChangeAction, ChangeReport, Holder, HolderId, Outcome, Product,
    ProductId, ProviderKind, SeatTotal, Seats,
};
use crate::provider::LicenseProvider;

const KIND: ProviderKind = InMemoryProvider::KIND;

/// A product of the in-memory provider.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemoryProduct {
    /// The product's id, unique in the config; becomes its [`ProductId`].
    pub id: String,
    /// The product's display name.
    pub name: String,
    /// Seats owned; `None` = unlimited.
    #[serde(default)]
    pub seats: Option<u64>,
    /// Whether devices may hold it (like Apple's `deviceAssignable`).
    #[serde(default = "default_true")]
    pub device_assignable: bool,
}

fn default_true() -> bool {
    true
}

/// A user of the in-memory provider's directory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemoryUser {
    /// The user's id, unique in the config; a [`HolderId::User`] names it.
    pub id: String,
    #[serde(default)]
    /// The user's email, if known.
    pub email: Option<String>,
    #[serde(default)]
    /// The user's display name, if known.
    pub name: Option<String>,
    #[serde(default = "default_true")]
    /// Whether the user is active (default `true`); inactive users are refused seats, as vendors do.
    pub active: bool,
    /// When the user last signed in (RFC 3339), if known.
    #[serde(default)]
    pub last_login: Option<chrono::DateTime<chrono::Utc>>,
}

/// Configuration of an [`InMemoryProvider`]: also its seed. Serde, so a config file can hold it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemoryConfig {
    #[serde(default)]
    /// The products on offer.
    pub products: Vec<MemoryProduct>,
    #[serde(default)]
    /// The user directory; assigning to a user not listed here fails with not found.
    pub users: Vec<MemoryUser>,
    /// Whether devices (serial numbers) can hold licenses.
    #[serde(default = "default_true")]
    pub device_holders: bool,
    /// Items per page of listings (emulates a vendor's paging).
    #[serde(default = "default_page_size")]
    pub page_size: usize,
    /// Initial assignments.
    #[serde(default)]
    pub assignments: Vec<MemoryAssignment>,
}

/// A seeded assignment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemoryAssignment {
    /// The product's id (a [`MemoryProduct::id`]).
    pub product: String,
    /// Who holds the seat.
    pub holder: HolderId,
}

fn default_page_size() -> usize {
    100
}

impl Default for MemoryConfig {
    fn default() -> Self {
        MemoryConfig {
            products: Vec::new(),
            users: Vec::new(),
            device_holders: true,
            page_size: default_page_size(),
            assignments: Vec::new(),
        }
    }
}

/// The in-memory provider's descriptor for registries (see [`Vendor`](crate::Vendor)); its
/// products and users are configured in a file, the environment sets only
/// `LICENSEKIT_MEMORY_PAGE_SIZE` and `LICENSEKIT_MEMORY_DEVICE_HOLDERS`.
#[derive(Debug, Clone, Copy)]
pub struct Memory;

crate::config_keys! {
    /// The string keys of [`MemoryConfig`] (products, users and assignments are lists: give
    /// them in a config file).
    pub enum MemoryConfigKey {
        /// `page_size`: items per page of listings.
        PageSize = "page_size",
        /// `device_holders`: whether devices can hold licenses.
        DeviceHolders = "device_holders",
    }
}

/// String keys and `from_env`: `LICENSEKIT_MEMORY_PAGE_SIZE`, `LICENSEKIT_MEMORY_DEVICE_HOLDERS`.
impl crate::vendor::VendorConfig for MemoryConfig {
    type Key = MemoryConfigKey;
    const KIND: ProviderKind = KIND;

    fn blank() -> Self {
        MemoryConfig::default()
    }

    fn set(&mut self, key: MemoryConfigKey, value: &str) -> Result<()> {
        match key {
            MemoryConfigKey::PageSize => self.page_size = crate::vendor::parse_number(key, value)?,
            MemoryConfigKey::DeviceHolders => {
                self.device_holders = crate::vendor::parse_bool(key, value)?
            }
        }
        Ok(())
    }
}

impl crate::Vendor for Memory {
    const KIND: ProviderKind = InMemoryProvider::KIND;
    type Config = MemoryConfig;
    type Provider = InMemoryProvider;

    fn build(config: MemoryConfig) -> Result<InMemoryProvider> {
        InMemoryProvider::new(config)
    }
}

#[derive(Debug)]
struct State {
    products: BTreeMap<ProductId, MemoryProduct>,
    users: BTreeMap<String, MemoryUser>,
    /// (product, holder) -> when assigned.
    assignments: BTreeMap<(ProductId, HolderId), DateTime<Utc>>,
    pages_served: u64,
}

#[derive(Debug)]
struct Shared {
    state: Mutex<State>,
    device_holders: bool,
    page_size: usize,
}

/// The in-memory provider. Cheap to clone; clones share state.
#[derive(Debug, Clone)]
pub struct InMemoryProvider {
    shared: Arc<Shared>,
}

impl Default for InMemoryProvider {
    fn default() -> Self {
        Self::new(MemoryConfig::default()).expect("the default config is valid")
    }
}

impl InMemoryProvider {
    /// The in-memory provider's kind: `memory`.
    pub const KIND: ProviderKind = ProviderKind::from_static("memory");

    /// Builds the provider from its config, validating it.
    pub fn new(config: MemoryConfig) -> Result<Self> {
        if config.page_size == 0 {
            return Err(Error::config(
                "memory provider: page_size must be at least 1",
            ));
        }
        let mut products = BTreeMap::new();
        for p in config.products {
            if p.id.is_empty() {
                return Err(Error::config("memory provider: a product has an empty id"));
            }
            let id = ProductId::new(p.id.clone());
            if products.insert(id, p.clone()).is_some() {
                return Err(Error::config(format!(
                    "memory provider: product `{}` is listed twice",
                    p.id
                )));
            }
        }
        let mut users = BTreeMap::new();
        for u in config.users {
            if users.insert(u.id.clone(), u.clone()).is_some() {
                return Err(Error::config(format!(
                    "memory provider: user `{}` is listed twice",
                    u.id
                )));
            }
        }
        let provider = InMemoryProvider {
            shared: Arc::new(Shared {
                state: Mutex::new(State {
                    products,
                    users,
                    assignments: BTreeMap::new(),
                    pages_served: 0,
                }),
                device_holders: config.device_holders,
                page_size: config.page_size,
            }),
        };
        {
            let mut state = provider.lock();
            for a in config.assignments {
                let product = ProductId::new(a.product);
                let outcome = apply_assign(
                    &mut state,
                    provider.shared.device_holders,
                    &product,
                    &a.holder,
                )?;
                if let Outcome::Failed(e) = outcome {
                    return Err(Error::Config {
                        message: format!(
                            "memory provider: seeded assignment of {product} to {} is invalid",
                            a.holder
                        ),
                        source: Some(Box::new(ArcError(e))),
                    });
                }
            }
        }
        Ok(provider)
    }

    /// Adds or replaces a product.
    pub fn add_product(&self, product: MemoryProduct) {
        self.lock()
            .products
            .insert(ProductId::new(product.id.clone()), product);
    }

    /// Adds or replaces a user of the directory.
    pub fn add_user(&self, user: MemoryUser) {
        self.lock().users.insert(user.id.clone(), user);
    }

    /// Marks a user active or inactive.
    pub fn set_user_active(&self, id: &str, active: bool) -> Result<()> {
        let mut state = self.lock();
        let user = state
            .users
            .get_mut(id)
            .ok_or_else(|| Error::not_found(KIND, format!("user {id}")))?;
        user.active = active;
        Ok(())
    }

    /// Listing pages served so far (for tests of streaming).
    pub fn pages_served(&self) -> u64 {
        self.lock().pages_served
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves consistent state (every mutation is one insert
        // or remove), so a poisoned lock is safe to keep using.
        self.shared
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn check_product(&self, product: &ProductId) -> Result<()> {
        if self.lock().products.contains_key(product) {
            Ok(())
        } else {
            Err(Error::not_found(KIND, format!("product {product}")))
        }
    }

    fn holder_of(state: &State, id: &HolderId) -> Holder {
        match id {
            HolderId::User(user_id) => match state.users.get(user_id) {
                Some(u) => user_holder(u),
                None => Holder::new(id.clone()),
            },
            HolderId::Device(_) => Holder::new(id.clone()),
        }
    }
}

fn user_holder(u: &MemoryUser) -> Holder {
    let mut h = Holder::new(HolderId::User(u.id.clone())).with_active(u.active);
    h.email = u.email.clone();
    h.display_name = u.name.clone();
    h.last_login = u.last_login;
    h
}

/// Wraps a shared error so it can be a source.
#[derive(Debug)]
struct ArcError(Arc<Error>);

impl std::fmt::Display for ArcError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for ArcError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
    }
}

/// Assigns one holder, enforcing what a vendor enforces. `Err` only for an unknown product.
fn apply_assign(
    state: &mut State,
    device_holders: bool,
    product: &ProductId,
    holder: &HolderId,
) -> Result<Outcome> {
    let p = state
        .products
        .get(product)
        .ok_or_else(|| Error::not_found(KIND, format!("product {product}")))?;
    let key = (product.clone(), holder.clone());
    if state.assignments.contains_key(&key) {
        return Ok(Outcome::AlreadyInState);
    }
    match holder {
        HolderId::User(id) => match state.users.get(id) {
            None => {
                return Ok(Outcome::failed(Error::not_found(
                    KIND,
                    format!("user {id}"),
                )));
            }
            Some(u) if !u.active => {
                return Ok(Outcome::failed(Error::invalid_input(format!(
                    "user {id} is inactive and cannot hold a license"
                ))));
            }
            Some(_) => {}
        },
        HolderId::Device(serial) => {
            if !device_holders {
                return Ok(Outcome::failed(Error::unsupported(KIND, "device holders")));
            }
            if serial.trim().is_empty() {
                return Ok(Outcome::failed(Error::invalid_input("empty serial number")));
            }
            if !p.device_assignable {
                return Ok(Outcome::failed(Error::invalid_input(format!(
                    "product {product} cannot be assigned to devices"
                ))));
            }
        }
    }
    if let Some(total) = p.seats {
        let used = state
            .assignments
            .range((product.clone(), HolderId::User(String::new()))..)
            .take_while(|((p, _), _)| p == product)
            .count() as u64;
        if used >= total {
            return Ok(Outcome::failed(Error::InsufficientSeats {
                provider: KIND,
                product: product.to_string(),
                requested: 1,
                available: 0,
                source: None,
            }));
        }
    }
    state.assignments.insert(key, Utc::now());
    Ok(Outcome::Applied)
}

#[async_trait]
impl LicenseProvider for InMemoryProvider {
    fn kind(&self) -> ProviderKind {
        KIND
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            user_holders: true,
            device_holders: self.shared.device_holders,
            seat_totals_reported: true,
            seat_limits_enforced: true,
            async_completion: false,
            max_assign_batch: None,
            max_revoke_batch: None,
            list_page_size: Some(self.shared.page_size),
            incremental_listing: false,
            holder_directory: true,
            filter_by_holder: true,
        }
    }

    async fn products(&self) -> Result<Vec<Product>> {
        let state = self.lock();
        let mut counts: HashMap<&ProductId, u64> = HashMap::new();
        for (product, _) in state.assignments.keys() {
            *counts.entry(product).or_default() += 1;
        }
        Ok(state
            .products
            .iter()
            .map(|(id, p)| {
                let total = p.seats.map_or(SeatTotal::Unlimited, SeatTotal::Limited);
                let seats = Seats::reported(total, counts.get(id).copied().unwrap_or(0));
                Product::new(KIND, id.clone(), p.name.clone(), seats)
                    .with_vendor_field("device_assignable", p.device_assignable)
            })
            .collect())
    }

    fn assignments(&self, filter: AssignmentFilter) -> BoxStream<'static, Result<Assignment>> {
        // Pages are cut with a cursor (the last key served), like a vendor's continuation
        // token: state changes between pages never repeat or skip an unchanged assignment.
        let provider = self.clone();
        let page_size = self.shared.page_size;
        let pages = stream::unfold(Some(None::<(ProductId, HolderId)>), move |cursor| {
            let provider = provider.clone();
            let filter = filter.clone();
            async move {
                let after = cursor?;
                let mut state = provider.lock();
                state.pages_served += 1;
                let lower = match &after {
                    Some(key) => Bound::Excluded(key.clone()),
                    None => Bound::Unbounded,
                };
                let mut page = Vec::with_capacity(page_size);
                let mut last = None;
                for ((product, holder), at) in state.assignments.range((lower, Bound::Unbounded)) {
                    if page.len() == page_size {
                        break;
                    }
                    last = Some((product.clone(), holder.clone()));
                    if filter.matches(product, holder) {
                        page.push(Ok(Assignment::new(
                            KIND,
                            product.clone(),
                            InMemoryProvider::holder_of(&state, holder),
                        )
                        .with_assigned_at(Some(*at))));
                    }
                }
                let next = match last {
                    Some(key)
                        if state
                            .assignments
                            .range((Bound::Excluded(key.clone()), Bound::Unbounded))
                            .next()
                            .is_some() =>
                    {
                        Some(Some(key))
                    }
                    _ => None,
                };
                Some((stream::iter(page), next))
            }
        });
        pages.flatten().boxed()
    }

    fn holders(&self) -> BoxStream<'static, Result<Holder>> {
        let state = self.lock();
        let users: Vec<Result<Holder>> = state.users.values().map(|u| Ok(user_holder(u))).collect();
        stream::iter(users).boxed()
    }

    async fn change(&self, request: ChangeRequest) -> Result<ChangeReport> {
        bulk::run(self, &self.capabilities(), BulkOptions::default(), request).await
    }
}

/// The in-memory provider through the same bulk engine as every vendor: one batch is one lock
/// of the state, and answers are always clear.
#[async_trait]
impl BulkBackend for InMemoryProvider {
    type Context = ProductId;

    fn provider(&self) -> ProviderKind {
        KIND
    }

    fn canonical(&self, holder: &HolderId) -> Result<HolderId> {
        if holder.as_str().trim().is_empty() {
            return Err(Error::invalid_input(format!(
                "empty {} id",
                match holder {
                    HolderId::User(_) => "user",
                    HolderId::Device(_) => "device",
                }
            )));
        }
        Ok(holder.clone())
    }

    async fn prepare(
        &self,
        _action: ChangeAction,
        product: &ProductId,
        _holders: &[HolderId],
    ) -> Result<Prepared<ProductId>> {
        self.check_product(product)?;
        Ok(Prepared::new(product.clone(), 1000, 1))
    }

    async fn send(
        &self,
        product: &ProductId,
        action: ChangeAction,
        batch: &[HolderId],
    ) -> Result<Vec<ItemAnswer>> {
        let device_holders = self.shared.device_holders;
        let mut state = self.lock();
        batch
            .iter()
            .map(|holder| {
                let outcome = match action {
                    ChangeAction::Assign => {
                        apply_assign(&mut state, device_holders, product, holder)?
                    }
                    ChangeAction::Revoke => {
                        if state
                            .assignments
                            .remove(&(product.clone(), holder.clone()))
                            .is_some()
                        {
                            Outcome::Applied
                        } else {
                            Outcome::AlreadyInState
                        }
                    }
                };
                Ok(ItemAnswer::settled(holder.clone(), outcome))
            })
            .collect()
    }

    async fn read_state(&self, product: &ProductId, holders: &[HolderId]) -> Result<StateRead> {
        let state = self.lock();
        let key = |h: &HolderId| (product.clone(), h.clone());
        Ok(StateRead::held(
            holders
                .iter()
                .filter(|h| state.assignments.contains_key(&key(h)))
                .cloned()
                .collect(),
        ))
    }
}

/// Distinct holders currently holding `product` (for tests).
impl InMemoryProvider {
    /// Every holder currently holding a seat of `product`, for assertions in tests.
    pub fn holders_of(&self, product: &ProductId) -> BTreeSet<HolderId> {
        self.lock()
            .assignments
            .keys()
            .filter(|(p, _)| p == product)
            .map(|(_, h)| h.clone())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;
    use crate::provider::LicenseProviderExt;
    use futures::TryStreamExt;

    fn provider() -> InMemoryProvider {
        InMemoryProvider::new(MemoryConfig {
            products: vec![
                MemoryProduct {
                    id: "app".into(),
                    name: "App".into(),
                    seats: Some(2),
                    device_assignable: false,
                },
                MemoryProduct {
                    id: "site".into(),
                    name: "Site".into(),
                    seats: None,
                    device_assignable: true,
                },
            ],
            users: (0..5)
                .map(|i| MemoryUser {
                    id: format!("u{i}"),
                    email: Some(format!("u{i}@example.com")),
                    name: None,
                    active: i != 4,
                    last_login: None,
                })
                .collect(),
            page_size: 2,
            ..MemoryConfig::default()
        })
        .unwrap()
    }

    #[tokio::test]
    async fn enforces_seats_users_and_device_assignability() {
        let p = provider();
        let app = ProductId::new("app");
        let report = p
            .assign(
                &app,
                &[
                    HolderId::user("u0"),
                    HolderId::user("u1"),
                    HolderId::user("u2"),
                    HolderId::user("ghost"),
                    HolderId::user("u4"),
                    HolderId::device("SER1"),
                ],
            )
            .await
            .unwrap();
        let kinds: Vec<_> = report
            .items
            .iter()
            .map(|i| i.outcome.error().map(Error::kind))
            .collect();
        assert_eq!(
            kinds,
            vec![
                None,
                None,
                Some(ErrorKind::InsufficientSeats),
                Some(ErrorKind::NotFound),
                Some(ErrorKind::InvalidInput),
                Some(ErrorKind::InvalidInput),
            ]
        );
        let products = p.products().await.unwrap();
        let app_seats = products.iter().find(|x| x.id == app).unwrap().seats;
        assert_eq!(app_seats.available(), Some(0));
    }

    #[tokio::test]
    async fn listing_pages_with_a_cursor() {
        let p = provider();
        let site = ProductId::new("site");
        let holders: Vec<_> = (0..7).map(|i| HolderId::device(format!("S{i}"))).collect();
        p.assign(&site, &holders).await.unwrap();
        let before = p.pages_served();
        let listed: Vec<_> = p
            .assignments(AssignmentFilter::all())
            .try_collect()
            .await
            .unwrap();
        assert_eq!(listed.len(), 7);
        assert_eq!(p.pages_served() - before, 4, "7 items at 2 per page");
        let one = p.assignments_of(&HolderId::device("S3")).await.unwrap();
        assert_eq!(one.len(), 1);
    }

    #[test]
    fn invalid_seed_is_a_config_error() {
        let err = InMemoryProvider::new(MemoryConfig {
            assignments: vec![MemoryAssignment {
                product: "nope".into(),
                holder: HolderId::user("u"),
            }],
            ..MemoryConfig::default()
        })
        .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotFound);
        let err = InMemoryProvider::new(MemoryConfig {
            page_size: 0,
            ..MemoryConfig::default()
        })
        .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Config);
    }
}
