//! A toy vendor adapter for licensekit (test-only, not published): the smallest adapter that
//! registers with the `licensekit` facade as `CONTRIBUTING.md` describes, written against
//! `licensekit-core`'s public API alone. Its state lives in the process: a catalogue of products
//! with unlimited seats and a directory of users.
//!
//! ```
//! use licensekit_core::Vendor;
//! use licensekit_core::vendor::VendorConfig;
//! use licensekit_toy::{Toy, ToyConfig};
//!
//! let env = [
//!     ("LICENSEKIT_TOY_PRODUCTS".to_string(), "app, suite".to_string()),
//!     ("LICENSEKIT_TOY_USERS".to_string(), "ada,grace".to_string()),
//! ];
//! let config = ToyConfig::from_env_vars(env).unwrap();
//! assert_eq!(config.products, ["app", "suite"]);
//! let provider = Toy::build(config).unwrap();
//! # let _ = provider;
//! ```
#![warn(missing_docs)]

use std::collections::{BTreeSet, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use futures::stream::{self, BoxStream, StreamExt};
use licensekit_core::raw::bulk::{self, BulkBackend, BulkOptions, ItemAnswer, Prepared, StateRead};
use licensekit_core::vendor::{VendorConfig, parse_number};
use licensekit_core::{
    Assignment, AssignmentFilter, Capabilities, ChangeAction, ChangeReport, ChangeRequest, Error,
    Holder, HolderId, Outcome, Product, ProductId, ProviderKind, Result, SeatTotal, Seats, Vendor,
};
use serde::Deserialize;

/// The toy vendor's kind: `toy`.
pub const KIND: ProviderKind = ProviderKind::from_static("toy");

/// The toy vendor's descriptor, registered in the `licensekit` facade.
#[derive(Debug, Clone, Copy)]
pub struct Toy;

/// The toy vendor's configuration (a `[[providers]]` table with `provider = "toy"`).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct ToyConfig {
    /// Product ids of the catalogue.
    #[serde(default)]
    pub products: Vec<String>,
    /// User ids of the directory.
    #[serde(default)]
    pub users: Vec<String>,
    /// Holders per call (default 10).
    #[serde(default)]
    pub max_batch: Option<usize>,
}

licensekit_core::config_keys! {
    /// The string keys of [`ToyConfig`].
    pub enum ToyConfigKey {
        /// `products`: comma-separated product ids.
        Products = "products",
        /// `users`: comma-separated user ids.
        Users = "users",
        /// `max_batch`: holders per call.
        MaxBatch = "max_batch",
    }
}

/// String keys and `from_env`: `LICENSEKIT_TOY_PRODUCTS`, `LICENSEKIT_TOY_USERS` (lists are
/// comma-separated), `LICENSEKIT_TOY_MAX_BATCH`.
impl VendorConfig for ToyConfig {
    type Key = ToyConfigKey;
    const KIND: ProviderKind = KIND;

    fn blank() -> Self {
        ToyConfig::default()
    }

    fn set(&mut self, key: ToyConfigKey, value: &str) -> Result<()> {
        let list = || {
            value
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect()
        };
        match key {
            ToyConfigKey::Products => self.products = list(),
            ToyConfigKey::Users => self.users = list(),
            ToyConfigKey::MaxBatch => self.max_batch = Some(parse_number(key, value)?),
        }
        Ok(())
    }
}

impl Vendor for Toy {
    const KIND: ProviderKind = KIND;
    type Config = ToyConfig;
    type Provider = ToyProvider;

    fn build(config: ToyConfig) -> Result<ToyProvider> {
        ToyProvider::new(config)
    }
}

#[derive(Debug)]
struct State {
    products: BTreeSet<ProductId>,
    users: BTreeSet<String>,
    held: BTreeSet<(ProductId, HolderId)>,
}

/// The toy provider. Clones share state.
#[derive(Debug, Clone)]
pub struct ToyProvider {
    state: Arc<Mutex<State>>,
    max_batch: usize,
}

impl ToyProvider {
    /// Builds the provider; `max_batch` must be at least 1.
    pub fn new(config: ToyConfig) -> Result<Self> {
        let max_batch = config.max_batch.unwrap_or(10);
        if max_batch == 0 {
            return Err(Error::config("toy: max_batch must be at least 1"));
        }
        Ok(ToyProvider {
            state: Arc::new(Mutex::new(State {
                products: config.products.into_iter().map(ProductId::new).collect(),
                users: config.users.into_iter().collect(),
                held: BTreeSet::new(),
            })),
            max_batch,
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Every mutation is one insert or remove: a poisoned state is still consistent.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[async_trait]
impl licensekit_core::LicenseProvider for ToyProvider {
    fn kind(&self) -> ProviderKind {
        KIND
    }

    fn capabilities(&self) -> Capabilities {
        let mut caps = Capabilities::NONE;
        caps.user_holders = true;
        caps.seat_totals_reported = true;
        caps.max_assign_batch = Some(self.max_batch);
        caps.max_revoke_batch = Some(self.max_batch);
        caps.holder_directory = true;
        caps
    }

    async fn products(&self) -> Result<Vec<Product>> {
        let state = self.lock();
        Ok(state
            .products
            .iter()
            .map(|id| {
                let assigned = state.held.iter().filter(|(p, _)| p == id).count() as u64;
                let seats = Seats::reported(SeatTotal::Unlimited, assigned);
                Product::new(KIND, id.clone(), id.to_string(), seats)
            })
            .collect())
    }

    fn assignments(&self, filter: AssignmentFilter) -> BoxStream<'static, Result<Assignment>> {
        let items: Vec<Result<Assignment>> = self
            .lock()
            .held
            .iter()
            .filter(|(p, h)| filter.matches(p, h))
            .map(|(p, h)| Ok(Assignment::new(KIND, p.clone(), Holder::new(h.clone()))))
            .collect();
        stream::iter(items).boxed()
    }

    fn holders(&self) -> BoxStream<'static, Result<Holder>> {
        let users: Vec<Result<Holder>> = self
            .lock()
            .users
            .iter()
            .map(|u| Ok(Holder::new(HolderId::user(u.clone()))))
            .collect();
        stream::iter(users).boxed()
    }

    async fn change(&self, request: ChangeRequest) -> Result<ChangeReport> {
        bulk::run(self, &self.capabilities(), BulkOptions::default(), request).await
    }
}

#[async_trait]
impl BulkBackend for ToyProvider {
    type Context = ProductId;

    fn provider(&self) -> ProviderKind {
        KIND
    }

    fn canonical(&self, holder: &HolderId) -> Result<HolderId> {
        if holder.as_str().trim().is_empty() {
            return Err(Error::invalid_input("empty holder id"));
        }
        Ok(holder.clone())
    }

    async fn prepare(
        &self,
        _action: ChangeAction,
        product: &ProductId,
        _holders: &[HolderId],
    ) -> Result<Prepared<ProductId>> {
        if !self.lock().products.contains(product) {
            return Err(Error::not_found(KIND, format!("product {product}")));
        }
        Ok(Prepared::new(product.clone(), self.max_batch, 1))
    }

    async fn send(
        &self,
        product: &ProductId,
        action: ChangeAction,
        batch: &[HolderId],
    ) -> Result<Vec<ItemAnswer>> {
        let mut state = self.lock();
        Ok(batch
            .iter()
            .map(|holder| {
                let key = (product.clone(), holder.clone());
                let outcome = match action {
                    ChangeAction::Assign if !state.users.contains(holder.as_str()) => {
                        Outcome::failed(Error::not_found(KIND, format!("user {holder}")))
                    }
                    ChangeAction::Assign if state.held.insert(key.clone()) => Outcome::Applied,
                    ChangeAction::Revoke if state.held.remove(&key) => Outcome::Applied,
                    _ => Outcome::AlreadyInState,
                };
                ItemAnswer::settled(holder.clone(), outcome)
            })
            .collect())
    }

    async fn read_state(&self, product: &ProductId, holders: &[HolderId]) -> Result<StateRead> {
        let state = self.lock();
        let held: HashSet<HolderId> = holders
            .iter()
            .filter(|h| state.held.contains(&((*product).clone(), (*h).clone())))
            .cloned()
            .collect();
        Ok(StateRead::held(held))
    }
}
