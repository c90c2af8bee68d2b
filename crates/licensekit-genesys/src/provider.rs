//! [`GenesysProvider`]: the License API normalized into licensekit's model.
//!
//! - Products are license definitions (`cloudCX2`, …). Genesys reports no purchased seats, so a
//!   total is `Unknown` unless configured (`Configured`), and `assigned` is counted from the user
//!   listing (`Counted`).
//! - Holders are users (Genesys user ids); devices are not supported.
//! - Assign/revoke go through the batch endpoint, split at `max_batch` user ids per request; each
//!   user's `result` becomes its outcome.
//! - Licenses can also follow roles automatically: a revoked license may come back when a role
//!   implies it. Use [`GenesysProvider::client`]`().infer(..)` to see what roles imply.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use futures::stream::{self, BoxStream, StreamExt, TryStreamExt};
use licensekit_core::client::{Declared, PageGuard, RetryConfig, items, pages};
use licensekit_core::{
    Assignment, AssignmentFilter, Capabilities, ChangeAction, ChangeReport, Error, ErrorKind,
    Holder, HolderId, LicenseProvider, Outcome, Product, ProductId, Provenance, ProviderKind,
    Result, SeatTotal, Seats, UniqueHolders, VendorError,
};

use crate::client::GenesysClient;
use crate::config::GenesysConfig;
use crate::wire::{LicenseAssignmentRequest, LicenseDefinition, LicenseUpdateStatus};

const KIND: ProviderKind = ProviderKind::Genesys;

/// The Genesys Cloud provider.
#[derive(Debug, Clone)]
pub struct GenesysProvider {
    client: GenesysClient,
    page_size: u32,
    max_batch: usize,
    max_concurrency: usize,
    seat_totals: Arc<std::collections::BTreeMap<String, u64>>,
}

impl GenesysProvider {
    /// Builds the provider with the default retry policy.
    pub fn new(config: GenesysConfig) -> Result<Self> {
        Self::with_retry(config, RetryConfig::default())
    }

    /// Builds the provider with a custom retry policy.
    pub fn with_retry(config: GenesysConfig, retry: RetryConfig) -> Result<Self> {
        let http = config.http_client(retry)?;
        Ok(GenesysProvider {
            client: GenesysClient::new(http),
            page_size: config.page_size,
            max_batch: config.max_batch,
            max_concurrency: config.max_concurrency.max(1),
            seat_totals: Arc::new(config.seat_totals),
        })
    }

    /// The typed License API, for Genesys-specific operations (definitions with permissions,
    /// license inference, deprecated toggles).
    pub fn client(&self) -> &GenesysClient {
        &self.client
    }

    fn product_of(&self, def: LicenseDefinition, assigned: u64) -> Product {
        let seats = match self.seat_totals.get(&def.id) {
            Some(total) => {
                Seats::unknown().with_total(SeatTotal::Limited(*total), Provenance::Configured)
            }
            None => Seats::unknown(),
        }
        .with_assigned(assigned, Provenance::Counted);
        let name = def
            .description
            .clone()
            .filter(|d| !d.trim().is_empty())
            .unwrap_or_else(|| def.id.clone());
        let mut product = Product::new(KIND, def.id.clone(), name, seats);
        if let Some(p) = &def.permissions {
            product
                .vendor
                .insert("permissions".into(), serde_json::json!(p.ids));
        }
        let ids = |defs: Vec<String>| serde_json::json!(defs);
        product.vendor.insert(
            "prerequisites".into(),
            ids(def.prerequisites.iter().map(|p| p.id.clone()).collect()),
        );
        product.vendor.insert(
            "comprises".into(),
            ids(def.comprises.iter().map(|c| c.id.clone()).collect()),
        );
        product
    }

    /// `Err(NotFound)` when the license id is unknown, before any change is sent.
    async fn check_license(&self, product: &ProductId) -> Result<()> {
        match self.client.definition(product.as_str()).await {
            Ok(_) => Ok(()),
            Err(e) if e.kind() == ErrorKind::NotFound => Err(Error::NotFound {
                provider: KIND,
                what: format!("license {product}"),
                source: Some(Box::new(e)),
            }),
            Err(e) => Err(e),
        }
    }

    async fn change(
        &self,
        action: ChangeAction,
        product: &ProductId,
        holders: &[HolderId],
    ) -> Result<ChangeReport> {
        self.capabilities().check_holders(KIND, holders)?;
        let plan = UniqueHolders::new(holders);
        let mut outcomes: HashMap<HolderId, Outcome> = HashMap::with_capacity(plan.unique().len());
        let mut valid = Vec::with_capacity(plan.unique().len());
        for holder in plan.unique() {
            match validate_user_id(holder.as_str()) {
                Ok(()) => valid.push(holder.as_str().to_owned()),
                Err(e) => {
                    outcomes.insert(holder.clone(), Outcome::failed(e));
                }
            }
        }
        if !valid.is_empty() {
            self.check_license(product).await?;
        }
        let batches: Vec<Vec<String>> = valid
            .chunks(self.max_batch)
            .map(<[String]>::to_vec)
            .collect();
        let results: Vec<(Vec<String>, Result<Vec<LicenseUpdateStatus>>)> = stream::iter(batches)
            .map(|batch| async move {
                let request = match action {
                    ChangeAction::Assign => {
                        LicenseAssignmentRequest::new(product.as_str(), batch.clone(), vec![])
                    }
                    ChangeAction::Revoke => {
                        LicenseAssignmentRequest::new(product.as_str(), vec![], batch.clone())
                    }
                };
                let result = self.client.update_assignments(vec![request]).await;
                (batch, result)
            })
            .buffer_unordered(self.max_concurrency)
            .collect()
            .await;
        for (batch, result) in results {
            match result {
                Ok(statuses) => {
                    for status in statuses {
                        if status.license_id != product.as_str() {
                            continue;
                        }
                        let outcome = outcome_of_result(&status, action);
                        outcomes.insert(HolderId::User(status.user_id), outcome);
                    }
                }
                Err(error) => {
                    // The whole request failed: every user in it shares the reason. After
                    // retries of an idempotent batch this means "state unknown", which the
                    // error says; nothing is reported as applied that was not observed.
                    let error = Arc::new(error);
                    for user in batch {
                        outcomes.insert(HolderId::User(user), Outcome::Failed(error.clone()));
                    }
                }
            }
        }
        Ok(plan.into_report(KIND, product.clone(), action, outcomes))
    }
}

/// Genesys's page-number paging (spec §2): pages 1, 2, … while `pageNumber < pageCount`.
/// `fetch(n)` returns page n's items with the `pageCount` and `total` it reported; the core
/// page guard holds the listing to the first page's figures plus slack, so a server whose
/// `pageCount` keeps growing cannot run it forever (issue 13, item 2).
fn numbered_pages<T, F, Fut>(route: &'static str, mut fetch: F) -> BoxStream<'static, Result<T>>
where
    T: Send + 'static,
    F: FnMut(u32) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = Result<(Vec<T>, Option<u32>, Option<u64>)>> + Send + 'static,
{
    items(pages(
        PageGuard::new(KIND, route),
        None,
        move |page: Option<u32>| {
            let number = page.unwrap_or(1);
            let call = fetch(number);
            async move {
                let (entities, page_count, total) = call.await?;
                Ok((
                    entities,
                    page_count
                        .filter(|count| number < *count)
                        .and_then(|_| number.checked_add(1)),
                    Declared::pages(page_count).with_items(total),
                ))
            }
        },
    ))
}

/// Genesys user ids are UUIDs; anything that cannot be one is refused before any call.
fn validate_user_id(id: &str) -> Result<()> {
    let ok = !id.is_empty()
        && id.len() <= 64
        && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    if ok {
        Ok(())
    } else {
        Err(Error::invalid_input(format!(
            "`{}` is not a Genesys user id (expected a UUID)",
            id.escape_debug()
        )))
    }
}

/// Maps a `LicenseUpdateStatus.result`. The values are undocumented (spec §1, §9); these are the
/// assumptions listed in the crate README, matched loosely (case and punctuation ignored). A
/// value we do not recognise is a failure carrying the text, never a guessed success.
pub(crate) fn outcome_of_result(status: &LicenseUpdateStatus, action: ChangeAction) -> Outcome {
    let key: String = status
        .result
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .collect::<String>()
        .to_ascii_lowercase();
    match key.as_str() {
        "success" | "ok" | "succeeded" | "applied" => Outcome::Applied,
        "assigned" | "added" if action == ChangeAction::Assign => Outcome::Applied,
        "unassigned" | "removed" if action == ChangeAction::Revoke => Outcome::Applied,
        "alreadyassigned" | "alreadylicensed" | "nochange" | "unchanged" => Outcome::AlreadyInState,
        "notassigned" | "notlicensed" | "alreadyunassigned" if action == ChangeAction::Revoke => {
            Outcome::AlreadyInState
        }
        "usernotfound" | "invaliduser" | "notfound" => Outcome::failed(Error::NotFound {
            provider: KIND,
            what: format!("user {}", status.user_id),
            source: None,
        }),
        "licensenotfound" => Outcome::failed(Error::not_found(
            KIND,
            format!("license {}", status.license_id),
        )),
        _ => Outcome::failed(Error::Vendor(
            VendorError::new(
                KIND,
                Some(200),
                format!(
                    "unrecognised result `{}` for user {}",
                    status.result, status.user_id
                ),
            )
            .with_code(status.result.clone()),
        )),
    }
}

#[async_trait]
impl LicenseProvider for GenesysProvider {
    fn kind(&self) -> ProviderKind {
        KIND
    }

    fn capabilities(&self) -> Capabilities {
        let mut caps = Capabilities::NONE;
        caps.user_holders = true;
        caps.max_assign_batch = Some(self.max_batch);
        caps.max_revoke_batch = Some(self.max_batch);
        caps.list_page_size = Some(self.page_size as usize);
        caps.filter_by_holder = true;
        caps.holder_directory = true;
        caps
    }

    #[tracing::instrument(skip_all, fields(provider = "genesys"))]
    async fn products(&self) -> Result<Vec<Product>> {
        let definitions = self.client.definitions().await?;
        // Assigned seats are counted from the full user listing (the API reports no counts).
        let mut counts: HashMap<String, u64> = HashMap::new();
        let mut listing = self.assignments(AssignmentFilter::all());
        while let Some(a) = listing.try_next().await? {
            *counts.entry(a.product.as_str().to_owned()).or_default() += 1;
        }
        Ok(definitions
            .into_iter()
            .map(|def| {
                let assigned = counts.get(&def.id).copied().unwrap_or(0);
                self.product_of(def, assigned)
            })
            .collect())
    }

    fn assignments(&self, filter: AssignmentFilter) -> BoxStream<'static, Result<Assignment>> {
        match filter.holder.clone() {
            Some(HolderId::Device(_)) => {
                stream::once(async { Err(Error::unsupported(KIND, "device holders")) }).boxed()
            }
            Some(HolderId::User(user_id)) => {
                // One user: GET /license/users/{userId}. An unknown user holds nothing.
                let client = self.client.clone();
                stream::once(async move {
                    match client.user(&user_id).await {
                        Ok(user) => Ok(user
                            .licenses
                            .into_iter()
                            .map(|l| ProductId::new(l.id))
                            .filter(|p| filter.product.as_ref().is_none_or(|f| f == p))
                            .map(|p| {
                                Ok(Assignment::new(
                                    KIND,
                                    p,
                                    Holder::new(HolderId::User(user.id.clone())),
                                ))
                            })
                            .collect::<Vec<_>>()),
                        Err(e) if e.kind() == ErrorKind::NotFound => Ok(Vec::new()),
                        Err(e) => Err(e),
                    }
                })
                .map_ok(stream::iter)
                .try_flatten()
                .boxed()
            }
            None => {
                let client = self.client.clone();
                let page_size = self.page_size;
                numbered_pages("GET /api/v2/license/users", move |number| {
                    let client = client.clone();
                    async move {
                        let listing = client.users_page(page_size, number).await?;
                        Ok((listing.entities, listing.page_count, listing.total))
                    }
                })
                .map_ok(move |user| {
                    let product_filter = filter.product.clone();
                    stream::iter(
                        user.licenses
                            .into_iter()
                            .map(ProductId::new)
                            .filter(move |p| product_filter.as_ref().is_none_or(|f| f == p))
                            .map(move |p| {
                                Ok(Assignment::new(
                                    KIND,
                                    p,
                                    Holder::new(HolderId::User(user.id.clone())),
                                ))
                            })
                            .collect::<Vec<_>>(),
                    )
                })
                .try_flatten()
                .boxed()
            }
        }
    }

    fn holders(&self) -> BoxStream<'static, Result<Holder>> {
        let client = self.client.clone();
        let page_size = self.page_size;
        numbered_pages("GET /api/v2/users", move |number| {
            let client = client.clone();
            async move {
                let listing = client.directory_page(page_size, number).await?;
                Ok((listing.entities, listing.page_count, listing.total))
            }
        })
        .map_ok(|u| {
            let mut holder = Holder::new(HolderId::User(u.id));
            holder.email = u.email;
            holder.display_name = u.name;
            holder.active = u.state.as_deref().map(|s| s == "active");
            if let Some(state) = u.state {
                holder.vendor.insert("state".into(), state.into());
            }
            holder
        })
        .boxed()
    }

    #[tracing::instrument(skip_all, fields(provider = "genesys", product = %product, holders = holders.len()))]
    async fn assign(&self, product: &ProductId, holders: &[HolderId]) -> Result<ChangeReport> {
        self.change(ChangeAction::Assign, product, holders).await
    }

    #[tracing::instrument(skip_all, fields(provider = "genesys", product = %product, holders = holders.len()))]
    async fn revoke(&self, product: &ProductId, holders: &[HolderId]) -> Result<ChangeReport> {
        self.change(ChangeAction::Revoke, product, holders).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use licensekit_core::OutcomeStatus;

    fn status(result: &str) -> LicenseUpdateStatus {
        serde_json::from_value(
            serde_json::json!({"userId": "u1", "licenseId": "cloudCX2", "result": result}),
        )
        .unwrap()
    }

    #[test]
    fn result_strings_map_to_outcomes() {
        use ChangeAction::*;
        use OutcomeStatus::*;
        let cases = [
            ("Success", Assign, Applied),
            ("SUCCESS", Revoke, Applied),
            ("AlreadyAssigned", Assign, AlreadyInState),
            ("already_assigned", Assign, AlreadyInState),
            ("NotAssigned", Revoke, AlreadyInState),
            ("NotAssigned", Assign, Failed),
            ("UserNotFound", Assign, Failed),
            ("something new", Assign, Failed),
        ];
        for (result, action, expected) in cases {
            assert_eq!(
                outcome_of_result(&status(result), action).status(),
                expected,
                "{result} {action}"
            );
        }
        let unknown = outcome_of_result(&status("QuotaWeird"), Assign);
        assert!(unknown.error().unwrap().to_string().contains("QuotaWeird"));
    }

    #[test]
    fn user_ids_are_validated() {
        assert!(validate_user_id("3b9d1c6e-0d6a-4b5e-9a51-6f0c2f2f9a01").is_ok());
        for bad in ["", "../x", "a/b", "a b", "id?x", &"a".repeat(65)] {
            assert!(validate_user_id(bad).is_err(), "{bad}");
        }
    }
}
