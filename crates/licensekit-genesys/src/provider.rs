//! [`GenesysProvider`]: the License API normalized into licensekit's model.
//!
//! - Products are license definitions (`cloudCX2`, …). Genesys reports no purchased seats, so a
//!   total is `Unknown` unless configured (`Configured`), and `assigned` is counted from the user
//!   listing (`Counted`).
//! - Holders are users (Genesys user ids); devices are not supported.
//! - Assign/revoke go through core's bulk engine: the batch endpoint, split at `max_batch` user
//!   ids per request. A user's `result` settles it only when it is an unambiguous success (or
//!   "already") word; anything else, a user missing from the answer, or an empty answer is
//!   settled by reading the users' licenses back (`POST /license/users`).
//! - Licenses can also follow roles automatically: a revoked license may come back when a role
//!   implies it. Use [`GenesysProvider::client`]`().infer(..)` to see what roles imply.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use async_trait::async_trait;
use futures::stream::{self, BoxStream, StreamExt, TryStreamExt};
use licensekit_core::raw::bulk::{
    self, BulkBackend, BulkOptions, ChangeRequest, ItemAnswer, Prepared, StateRead,
};
use licensekit_core::raw::client::{Declared, PageGuard, RetryConfig, items, pages};
use licensekit_core::{
    Assignment, AssignmentFilter, Capabilities, ChangeAction, ChangeReport, Error, ErrorKind,
    Holder, HolderId, LicenseProvider, Outcome, Product, ProductId, Provenance, ProviderKind,
    Result, SeatTotal, Seats, VendorError,
};

use crate::client::GenesysClient;
use crate::config::GenesysConfig;
use crate::wire::{LicenseAssignmentRequest, LicenseDefinition};

const KIND: ProviderKind = crate::KIND;

/// The Genesys Cloud provider.
#[derive(Debug, Clone)]
pub struct GenesysProvider {
    client: GenesysClient,
    page_size: u32,
    max_batch: usize,
    max_concurrency: usize,
    seat_totals: Arc<std::collections::BTreeMap<String, u64>>,
    /// `{api host}/client:{client_id}`: an OAuth client belongs to exactly one org.
    identity: Arc<str>,
}

impl GenesysProvider {
    /// Builds the provider; retries as `config.client.retry` says.
    pub fn new(config: GenesysConfig) -> Result<Self> {
        let retry = config.client.retry_config();
        Self::with_retry(config, retry)
    }

    /// Builds the provider with a retry policy other than `config.client.retry` (e.g. a fixed
    /// jitter seed in tests).
    pub fn with_retry(config: GenesysConfig, retry: RetryConfig) -> Result<Self> {
        let api = config.api_base_url();
        let host = api
            .split_once("://")
            .map_or(api.as_str(), |(_, rest)| rest)
            .trim_end_matches('/');
        let identity = format!("{host}/client:{}", config.client_id.trim()).into();
        Ok(GenesysProvider {
            identity,
            client: GenesysClient::from_config(&config, retry)?,
            page_size: config.page_size,
            max_batch: config.max_batch,
            max_concurrency: config.max_concurrency(),
            seat_totals: Arc::new(config.seat_totals),
        })
    }

    /// The typed License API, for Genesys-specific operations (definitions with permissions,
    /// license inference, deprecated toggles).
    #[cfg_attr(not(feature = "testing"), allow(dead_code))]
    pub(crate) fn client(&self) -> &GenesysClient {
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
}

/// The provider as the bulk engine's backend (kept private: users call `change`).
#[derive(Debug)]
struct Engine<'a>(&'a GenesysProvider);

impl std::ops::Deref for Engine<'_> {
    type Target = GenesysProvider;
    fn deref(&self) -> &GenesysProvider {
        self.0
    }
}

/// What one run needs: the license id and the concurrency limit.
#[derive(Debug)]
struct Run {
    license: String,
    concurrency: usize,
}

/// Genesys through the bulk engine: no pre-read (it would add calls), one
/// `POST /license/organization` per batch, `result` strings as hints (spec §9.2: undocumented),
/// and `POST /license/users` to read state back when a hint is missing or unknown.
#[async_trait]
impl BulkBackend for Engine<'_> {
    type Context = Run;

    fn provider(&self) -> ProviderKind {
        KIND
    }

    fn canonical(&self, holder: &HolderId) -> Result<HolderId> {
        validate_user_id(holder.as_str())?;
        Ok(holder.clone())
    }

    async fn prepare(
        &self,
        _action: ChangeAction,
        product: &ProductId,
        _holders: &[HolderId],
    ) -> Result<Prepared<Run>> {
        self.check_license(product).await?;
        let run = Run {
            license: product.as_str().to_owned(),
            concurrency: self.max_concurrency,
        };
        Ok(Prepared::new(run, self.max_batch, self.max_concurrency))
    }

    async fn send(
        &self,
        run: &Run,
        action: ChangeAction,
        batch: &[HolderId],
    ) -> Result<Vec<ItemAnswer>> {
        let users: Vec<String> = batch.iter().map(|h| h.as_str().to_owned()).collect();
        let request = match action {
            ChangeAction::Assign => LicenseAssignmentRequest::new(&run.license, users, vec![]),
            ChangeAction::Revoke => LicenseAssignmentRequest::new(&run.license, vec![], users),
        };
        let statuses = self.client.update_assignments(vec![request]).await?;
        Ok(statuses
            .into_iter()
            .filter(|s| s.license_id == run.license)
            .map(|status| {
                let holder = HolderId::User(status.user_id.clone());
                let answer = match hint_of_result(&status.result, action) {
                    Some(outcome) => ItemAnswer::settled(holder, outcome),
                    None => match refusal_of_result(&status) {
                        Some(error) => ItemAnswer::refused(holder, error),
                        None => ItemAnswer::unclear(
                            holder,
                            format!("result `{}` is not a known word", status.result),
                        ),
                    },
                };
                answer.with_vendor_field("result", status.result)
            })
            .collect())
    }

    async fn read_state(&self, run: &Run, holders: &[HolderId]) -> Result<StateRead> {
        // One `POST /license/users` per batch of ids, concurrently.
        let batches: Vec<Vec<String>> = holders
            .chunks(self.max_batch)
            .map(|chunk| chunk.iter().map(|h| h.as_str().to_owned()).collect())
            .collect();
        let answers: Vec<Result<serde_json::Map<String, serde_json::Value>>> =
            stream::iter(batches)
                .map(|ids: Vec<String>| async move { self.client.users_by_id(&ids).await })
                .buffer_unordered(run.concurrency)
                .collect()
                .await;
        let mut answer = serde_json::Map::new();
        for part in answers {
            answer.extend(part?);
        }
        let mut held = HashSet::new();
        let mut unread = Vec::new();
        for holder in holders {
            match answer.get(holder.as_str()).and_then(license_ids_in) {
                Some(licenses) => {
                    if licenses.contains(&run.license) {
                        held.insert(holder.clone());
                    }
                }
                None => unread.push(holder.clone()),
            }
        }
        // The batch read's shape is undocumented (spec §1 row 5): whoever it did not answer
        // in a shape we understand is read with the documented single-user call.
        let singles: Vec<(HolderId, Result<bool>)> = stream::iter(unread)
            .map(|holder| async move {
                let holds = self
                    .client
                    .user(holder.as_str())
                    .await
                    .map(|user| user.licenses.iter().any(|l| l.id == run.license));
                (holder, holds)
            })
            .buffer_unordered(run.concurrency)
            .collect()
            .await;
        let mut read = StateRead::default();
        for (holder, holds) in singles {
            match holds {
                Ok(true) => {
                    held.insert(holder);
                }
                Ok(false) => {}
                // The documented read says the user does not exist: nothing to re-send.
                Err(e) if e.kind() == ErrorKind::NotFound => {
                    read = read.with_unknown_holder(
                        holder.clone(),
                        Error::NotFound {
                            provider: KIND,
                            what: format!("user {}", holder.as_str()),
                            source: Some(Box::new(e)),
                        },
                    );
                }
                Err(e) => return Err(e),
            }
        }
        read.held = held;
        Ok(read)
    }
}

/// License ids in one value of the `POST /license/users` map, read tolerantly: `{licenses:
/// [...]}` or a bare array, of ids or of objects with an `id`. `None` when not understood.
fn license_ids_in(value: &serde_json::Value) -> Option<Vec<String>> {
    let list = match value {
        serde_json::Value::Array(list) => list,
        serde_json::Value::Object(fields) => fields.get("licenses")?.as_array()?,
        _ => return None,
    };
    list.iter()
        .map(|l| match l {
            serde_json::Value::String(id) => Some(id.clone()),
            serde_json::Value::Object(o) => o.get("id")?.as_str().map(str::to_owned),
            _ => None,
        })
        .collect()
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

/// What a `LicenseUpdateStatus.result` settles. The values are undocumented (spec §1, §9.2), so
/// only words that cannot mean anything else settle an item (case and punctuation ignored);
/// anything else — failures included — is `None`, and the engine reads the state back.
pub(crate) fn hint_of_result(result: &str, action: ChangeAction) -> Option<Outcome> {
    let key: String = result
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .collect::<String>()
        .to_ascii_lowercase();
    match key.as_str() {
        "success" | "ok" | "succeeded" | "applied" => Some(Outcome::Applied),
        "assigned" | "added" if action == ChangeAction::Assign => Some(Outcome::Applied),
        "unassigned" | "removed" if action == ChangeAction::Revoke => Some(Outcome::Applied),
        "alreadyassigned" | "alreadylicensed" if action == ChangeAction::Assign => {
            Some(Outcome::AlreadyInState)
        }
        "notassigned" | "notlicensed" | "alreadyunassigned" if action == ChangeAction::Revoke => {
            Some(Outcome::AlreadyInState)
        }
        _ => None,
    }
}

/// The reason a `result` that reads like a refusal gives, for when the state read back confirms
/// the change did not happen (the words are undocumented, so they never settle on their own).
fn refusal_of_result(status: &crate::wire::LicenseUpdateStatus) -> Option<Error> {
    let key: String = status
        .result
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .collect::<String>()
        .to_ascii_lowercase();
    let vendor = || {
        Some(Box::new(
            VendorError::new(KIND, Some(200), format!("result `{}`", status.result))
                .with_code(status.result.clone()),
        ) as licensekit_core::BoxError)
    };
    match key.as_str() {
        "usernotfound" | "invaliduser" | "notfound" => Some(Error::NotFound {
            provider: KIND,
            what: format!("user {}", status.user_id),
            source: vendor(),
        }),
        "licensenotfound" | "invalidlicense" => Some(Error::NotFound {
            provider: KIND,
            what: format!("license {}", status.license_id),
            source: vendor(),
        }),
        _ => None,
    }
}

#[async_trait]
impl LicenseProvider for GenesysProvider {
    fn kind(&self) -> ProviderKind {
        KIND
    }

    /// The API host (the org's region) and the OAuth client id, without a call: a client
    /// belongs to exactly one org. (Two clients of one org therefore read as two identities:
    /// their histories are kept apart rather than mixed.)
    async fn identity(&self) -> Result<String> {
        Ok(self.identity.to_string())
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
            holder.last_login = u
                .date_last_login
                .as_deref()
                .and_then(|d| chrono::DateTime::parse_from_rfc3339(d).ok())
                .map(|d| d.with_timezone(&chrono::Utc));
            if let Some(state) = u.state {
                holder.vendor.insert("state".into(), state.into());
            }
            holder
        })
        .boxed()
    }

    #[tracing::instrument(skip_all, fields(provider = "genesys", action = %request.action, product = %request.product, holders = request.holders.len()))]
    async fn change(&self, request: ChangeRequest) -> Result<ChangeReport> {
        bulk::run(
            &Engine(self),
            &self.capabilities(),
            BulkOptions::default(),
            request,
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use licensekit_core::OutcomeStatus;

    #[test]
    fn result_strings_are_hints() {
        use ChangeAction::*;
        let status = |o: Option<Outcome>| o.map(|o| o.status());
        let cases = [
            ("Success", Assign, Some(OutcomeStatus::Applied)),
            ("SUCCESS", Revoke, Some(OutcomeStatus::Applied)),
            (
                "AlreadyAssigned",
                Assign,
                Some(OutcomeStatus::AlreadyInState),
            ),
            (
                "already_assigned",
                Assign,
                Some(OutcomeStatus::AlreadyInState),
            ),
            ("NotAssigned", Revoke, Some(OutcomeStatus::AlreadyInState)),
            ("NotAssigned", Assign, None),
            ("UserNotFound", Assign, None),
            ("something new", Assign, None),
            ("", Revoke, None),
        ];
        for (result, action, expected) in cases {
            assert_eq!(
                status(hint_of_result(result, action)),
                expected,
                "{result} {action}"
            );
        }
    }

    #[test]
    fn batch_read_values_are_read_tolerantly() {
        use serde_json::json;
        let ids = |v| license_ids_in(&v);
        let both = Some(vec!["a".to_string(), "b".to_string()]);
        assert_eq!(ids(json!({"id": "u", "licenses": ["a", "b"]})), both);
        assert_eq!(
            ids(json!({"licenses": [{"id": "a"}, {"id": "b", "selfUri": "/x"}]})),
            both
        );
        assert_eq!(ids(json!(["a", "b"])), both);
        assert_eq!(ids(json!({"licenses": []})), Some(vec![]));
        assert_eq!(ids(json!({"id": "u"})), None);
        assert_eq!(ids(json!("cloudCX2")), None);
        assert_eq!(ids(json!({"licenses": [1]})), None);
    }

    #[test]
    fn user_ids_are_validated() {
        assert!(validate_user_id("3b9d1c6e-0d6a-4b5e-9a51-6f0c2f2f9a01").is_ok());
        for bad in ["", "../x", "a/b", "a b", "id?x", &"a".repeat(65)] {
            assert!(validate_user_id(bad).is_err(), "{bad}");
        }
    }
}
