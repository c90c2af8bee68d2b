//! [`AppleVppProvider`]: Apple's v2 service normalized into licensekit's model.
//!
//! - Products are assets, id `adamId:pricingParam` (`361309726:STDQ`; a bare adamId means
//!   `STDQ`); seats are `totalCount`/`assignedCount` (2147483647 = unlimited, §3.4).
//! - Holders are users (clientUserId; they must be registered first, see [`AppleVppProvider::create_users`])
//!   and devices (serial numbers).
//! - Assign/revoke are asynchronous at Apple: the adapter lists the asset's current holders
//!   once, checks free seats, sends associate/disassociate requests split at the service-config
//!   limits, polls each event and maps per-holder failures; an event still pending when the wait
//!   runs out is reported `Pending` with its event id — never a guessed success or failure.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::BuildHasher;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures::stream::{self, BoxStream, StreamExt, TryStreamExt};
use hashbrown::HashTable;
use licensekit_core::raw::bulk::{
    self, BulkBackend, BulkOptions, ChangeRequest, ItemAnswer, Prepared, StateRead,
};
use licensekit_core::raw::client::{
    Declared, PageGuard, PageTracker, RetryConfig, Totals, check_url,
};
use licensekit_core::{
    Assignment, AssignmentFilter, Capabilities, ChangeAction, ChangeReport, Error, ErrorKind,
    Holder, HolderId, ItemOutcome, LicenseProvider, LicenseProviderExt, Outcome, Product,
    ProductId, ProviderKind, Result, SeatTotal, Seats, VendorError,
};
use tokio::sync::OnceCell;

use crate::client::{AppleClient, EventOutcome, Limits, UserAction};
use crate::config::AppleVppConfig;
use crate::error::{Observed, Ownership};
use crate::token::{self, TokenInfo, parse_apple_date};
use crate::wire::{
    AssetRef, MdmInfo, RequestUser, ResponseAsset, ResponseAssignment, ResponseUser, StatusResponse,
};

const KIND: ProviderKind = crate::KIND;
const UNLIMITED: i64 = 2_147_483_647;

#[derive(Debug)]
struct Inner {
    client: AppleClient,
    token: TokenInfo,
    mdm_info: Option<MdmInfo>,
    take_over: bool,
    ownership: Ownership,
    /// Set once `client/config` was read (and the location claimed): the location's `uId`.
    ready: OnceCell<Option<String>>,
    observed: Arc<Mutex<Observed>>,
    max_concurrency: usize,
}

/// The Apple VPP provider. Cheap to clone.
#[derive(Debug, Clone)]
pub struct AppleVppProvider {
    inner: Arc<Inner>,
}

/// Assignments listed with the `versionId` to resume from (spec §5).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct VersionedAssignments {
    /// The assignments listed, normalized.
    pub assignments: Vec<Assignment>,
    /// The `versionId` of the first page: pass it as `since` next time to get what changed
    /// since the listing began (additions only: Apple's deltas do not show removals, §5).
    pub version_id: Option<String>,
    /// The `versionId` of the first and the last page. When they differ the location changed
    /// while it was listed: records unchanged during the listing are each listed exactly once,
    /// records changed during it may be listed or not; catch up with `since = version_id`.
    pub versions: ListingVersions,
}

/// The `versionId` Apple reported on the first and on the last page of one listing (spec §5).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ListingVersions {
    /// `versionId` of the first page read.
    pub first: Option<String>,
    /// `versionId` of the last page read: pass it back to list only what changed since.
    pub last: Option<String>,
}

impl ListingVersions {
    /// Whether the data changed while it was being listed.
    pub fn changed(&self) -> bool {
        matches!((&self.first, &self.last), (Some(a), Some(b)) if a != b)
    }

    /// Writes the versions into a record's vendor fields, where generic consumers (the facade
    /// report) find them: `listing_first_version_id`, `listing_last_version_id`.
    fn stamp(&self, vendor: &mut licensekit_core::VendorFields) {
        vendor.insert("listing_first_version_id".into(), self.first.clone().into());
        vendor.insert("listing_last_version_id".into(), self.last.clone().into());
    }
}

/// The identity of a listed record, to list each record once while pages shift (spec §5).
trait Keyed {
    type Key: Eq + std::hash::Hash + Send + 'static;
    fn key(&self) -> Self::Key;
}

impl Keyed for ResponseAsset {
    type Key = (String, String);
    fn key(&self) -> Self::Key {
        (self.adam_id.clone(), self.pricing_param.clone())
    }
}

impl Keyed for ResponseAssignment {
    type Key = (String, String, Option<String>, Option<String>);
    fn key(&self) -> Self::Key {
        (
            self.adam_id.clone(),
            self.pricing_param.clone(),
            self.client_user_id.clone(),
            self.serial_number.clone(),
        )
    }
}

impl Keyed for ResponseUser {
    // One clientUserId may have a retired record and a current one (§3.10).
    type Key = (String, Option<String>, Option<String>);
    fn key(&self) -> Self::Key {
        (
            self.client_user_id.clone(),
            self.status.clone(),
            self.id_hash.clone(),
        )
    }
}

/// One record of a versioned listing; the last record carries the listing's versions.
struct Listed<T> {
    item: T,
    versions: Option<ListingVersions>,
}

/// Whether a user record is no longer current: `Retired`, or `Deleted` (legacy: retired, and the
/// Apple Account re-associated to a new user with the same clientUserId; spec §4, managing users).
fn user_inactive(status: Option<&str>) -> bool {
    matches!(status, Some("Retired" | "Deleted"))
}

/// The user directory as it is read: one record per clientUserId, the current record winning
/// over retired and deleted ones (§3.10). Only what a holder needs is kept per user, so a
/// directory of 100,000s costs a few MiB while the rest of it is still being paged.
#[derive(Default)]
struct Directory(BTreeMap<String, DirectoryUser>);

struct DirectoryUser {
    email: Option<String>,
    status: Option<String>,
    inactive: bool,
}

impl Directory {
    fn add(&mut self, user: ResponseUser) {
        let inactive = user_inactive(user.status.as_deref());
        if inactive
            && self
                .0
                .get(&user.client_user_id)
                .is_some_and(|u| !u.inactive)
        {
            return;
        }
        let entry = DirectoryUser {
            email: user.email,
            status: user.status,
            inactive,
        };
        self.0.insert(user.client_user_id, entry);
    }

    /// One holder per user, by clientUserId; the status is kept as a vendor field.
    fn into_holders(self) -> impl Iterator<Item = Holder> {
        self.0.into_iter().map(|(id, user)| {
            let mut h = Holder::new(HolderId::User(id)).with_active(!user.inactive);
            h.email = user.email;
            if let Some(status) = user.status {
                h.vendor.insert("status".into(), status.into());
            }
            h
        })
    }
}

/// The legacy v1 "manage licenses" request (spec §9.2): on one asset, first disassociate one list,
/// then associate one list. At most one list of each kind: the legacy service calls more
/// undefined, so more is refused up front.
#[derive(Debug, Clone, Default)]
pub struct ManageLicensesRequest {
    /// Users (`clientUserId`) to take the license from.
    pub disassociate_client_user_ids: Vec<String>,
    /// Devices (serial numbers) to take the license from.
    pub disassociate_serial_numbers: Vec<String>,
    /// v1 license ids: v2 has none, so a non-empty list is `Unsupported`.
    pub disassociate_license_ids: Vec<String>,
    /// Users (`clientUserId`) to give the license to.
    pub associate_client_user_ids: Vec<String>,
    /// Devices (serial numbers) to give the license to.
    pub associate_serial_numbers: Vec<String>,
}

/// What a [`ManageLicensesRequest`] did: the disassociations, then the associations.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ManageLicensesReport {
    /// What the disassociations did, when there were any.
    pub disassociations: Option<ChangeReport>,
    /// What the associations did, when there were any.
    pub associations: Option<ChangeReport>,
}

/// `adamId[:pricingParam]` -> the asset reference.
pub fn parse_product(product: &ProductId) -> Result<AssetRef> {
    let (adam, pricing) = product
        .as_str()
        .split_once(':')
        .unwrap_or((product.as_str(), "STDQ"));
    let adam_ok = !adam.is_empty() && adam.len() <= 20 && adam.bytes().all(|b| b.is_ascii_digit());
    if !adam_ok || !matches!(pricing, "STDQ" | "PLUS") {
        return Err(Error::invalid_input(format!(
            "`{}` is not an Apple asset id (adamId digits, optionally `:STDQ` or `:PLUS`)",
            product.as_str().escape_debug()
        )));
    }
    Ok(AssetRef {
        adam_id: adam.to_owned(),
        pricing_param: pricing.to_owned(),
    })
}

fn product_id(adam_id: &str, pricing: &str) -> ProductId {
    ProductId::new(format!("{adam_id}:{pricing}"))
}

/// clientUserIds are the MDM's own ids; serials are alphanumeric. Anything else is refused.
fn validate_holder(holder: &HolderId) -> Result<()> {
    let ok = match holder {
        HolderId::User(id) => {
            !id.trim().is_empty() && id.chars().count() <= 256 && !id.chars().any(char::is_control)
        }
        HolderId::Device(serial) => {
            !serial.is_empty()
                && serial.len() <= 64
                && serial
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        }
    };
    if ok {
        Ok(())
    } else {
        Err(Error::invalid_input(format!(
            "`{}` is not a valid {}",
            holder.as_str().escape_debug(),
            match holder {
                HolderId::User(_) => "clientUserId",
                HolderId::Device(_) => "serial number",
            }
        )))
    }
}

fn holder_of(a: &ResponseAssignment) -> Option<HolderId> {
    match (&a.client_user_id, &a.serial_number) {
        (Some(u), _) => Some(HolderId::User(u.clone())),
        (None, Some(s)) => Some(HolderId::Device(s.clone())),
        _ => None,
    }
}

/// Per-holder error of an event failure (spec §7.2).
fn event_error(number: i64, message: &str, holder: &HolderId, product: &ProductId) -> Error {
    let vendor = VendorError::new(KIND, None, message).with_code(number.to_string());
    let source = Some(Box::new(vendor.clone()) as licensekit_core::BoxError);
    match number {
        9609 => Error::NotFound {
            provider: KIND,
            what: format!("registered {holder} (create the user at Apple first)"),
            source,
        },
        9709 => Error::InsufficientSeats {
            provider: KIND,
            product: product.to_string(),
            requested: 1,
            available: 0,
            source,
        },
        9716 => Error::AlreadyInState {
            provider: KIND,
            what: format!("{holder}"),
            source,
        },
        _ => Error::Vendor(vendor),
    }
}

/// Answers for the holders one accepted event carried, as far as the event says. An event
/// whose status could not be polled, or that is still running, leaves its holders `Pending`
/// with the event id: Apple accepted the work, so it is never reported as failed.
fn answers_of_event(
    event_id: &str,
    polled: Result<EventOutcome>,
    holders: &[HolderId],
    product: &ProductId,
) -> Vec<ItemAnswer> {
    let pending = |why: String| {
        holders
            .iter()
            .map(|h| {
                ItemAnswer::settled(
                    h.clone(),
                    Outcome::Pending {
                        reference: event_id.to_owned(),
                    },
                )
                .with_vendor_field("event_status", why.clone())
            })
            .collect()
    };
    let status: StatusResponse = match polled {
        Err(e) => {
            tracing::debug!(event_id, error = %e, "event status unreadable; left pending");
            return pending(format!("unknown: the status poll failed: {e}"));
        }
        Ok(EventOutcome::StillPending { .. }) => return pending("PENDING".into()),
        Ok(EventOutcome::Finished(status)) => status,
    };
    let mut failed: HashMap<HolderId, Outcome> = HashMap::new();
    let mut unattributed = Vec::new();
    for failure in &status.failures {
        let info = failure.error_info.clone().unwrap_or_default();
        let named: Vec<HolderId> = info
            .client_user_ids
            .iter()
            .map(|u| HolderId::User(u.clone()))
            .chain(
                info.serial_numbers
                    .iter()
                    .map(|s| HolderId::Device(s.clone())),
            )
            .collect();
        if named.is_empty() {
            unattributed.push(format!(
                "{} {}",
                failure.error_number, failure.error_message
            ));
        }
        for h in named {
            let outcome = match failure.error_number {
                9716 => Outcome::AlreadyInState,
                n => Outcome::failed(event_error(n, &failure.error_message, &h, product)),
            };
            failed.insert(h, outcome);
        }
    }
    holders
        .iter()
        .map(|h| {
            let answer = match failed.remove(h) {
                Some(o) => ItemAnswer::settled(h.clone(), o),
                // A FAILED event is often a partial success: holders it does not name completed.
                None if unattributed.is_empty() => ItemAnswer::settled(h.clone(), Outcome::Applied),
                // It failed without naming holders: the engine reads the state back.
                None => ItemAnswer::unclear(
                    h.clone(),
                    format!(
                        "event {event_id} failed without naming holders ({}; {} of {} completed)",
                        unattributed.join(", "),
                        status.num_completed.unwrap_or(0),
                        status.num_requested.unwrap_or(0)
                    ),
                ),
            };
            answer
                .with_vendor_field("event_id", event_id)
                .with_vendor_field("event_status", status.event_status.clone())
        })
        .collect()
}

/// Users and serials of a batch, in the request's two lists.
fn lists_of(holders: &[HolderId]) -> (Vec<String>, Vec<String>) {
    let mut users = Vec::new();
    let mut serials = Vec::new();
    for h in holders {
        match h {
            HolderId::User(u) => users.push(u.clone()),
            HolderId::Device(s) => serials.push(s.clone()),
        }
    }
    (users, serials)
}

/// What a bulk run through the engine does at Apple.
#[derive(Debug, Clone)]
enum Operation {
    /// Associate or disassociate one asset.
    Asset,
    /// `POST /assets/revoke`: every revocable asset of the holders.
    RevokeAssets,
    /// `POST /users/create|update|retire`, with each user's request.
    Users(UserAction, Arc<HashMap<String, RequestUser>>),
}

/// The provider as the bulk engine's backend for one operation (private: users call `change`
/// and the Apple-specific methods).
#[derive(Debug)]
struct Engine<'a> {
    provider: &'a AppleVppProvider,
    operation: Operation,
}

/// One run: the asset (for asset operations) and the product id it reports under.
#[derive(Debug)]
struct Run {
    asset: Option<AssetRef>,
    product: ProductId,
}

#[async_trait]
impl BulkBackend for Engine<'_> {
    type Context = Run;

    fn provider(&self) -> ProviderKind {
        KIND
    }

    fn canonical(&self, holder: &HolderId) -> Result<HolderId> {
        validate_holder(holder)?;
        Ok(holder.clone())
    }

    async fn prepare(
        &self,
        action: ChangeAction,
        product: &ProductId,
        holders: &[HolderId],
    ) -> Result<Prepared<Run>> {
        let provider = self.provider;
        let concurrency = provider.inner.max_concurrency;
        // A malformed product id is refused before any call.
        let asset_ref = match self.operation {
            Operation::Asset => Some(parse_product(product)?),
            _ => None,
        };
        provider.ready().await?;
        let limits = provider.inner.client.limits().await?;
        match &self.operation {
            Operation::RevokeAssets => {
                let run = Run {
                    asset: None,
                    product: product.clone(),
                };
                return Ok(
                    Prepared::new(run, limits.max_revoke_client_user_ids, concurrency)
                        .with_per_kind_limits(
                            limits.max_revoke_client_user_ids,
                            limits.max_revoke_serial_numbers,
                        ),
                );
            }
            Operation::Users(..) => {
                let run = Run {
                    asset: None,
                    product: product.clone(),
                };
                return Ok(Prepared::new(run, limits.max_users, concurrency));
            }
            Operation::Asset => {}
        }
        let Some(asset_ref) = asset_ref else {
            return Err(Error::invalid_input("an asset operation needs an asset"));
        };
        let asset = provider.asset(&asset_ref).await?;
        if action == ChangeAction::Revoke && asset.revocable == Some(false) {
            return Err(Error::unsupported(
                KIND,
                format!(
                    "revoking {product}: Apple marks it irrevocable (books cannot be taken back)"
                ),
            ));
        }
        let current = provider.current_holders(&asset_ref).await?;
        let run = Run {
            asset: Some(asset_ref),
            product: product.clone(),
        };
        // One request carries up to the user limit and the serial limit, each (§7.1).
        let mut prepared = Prepared::new(run, limits.max_client_user_ids, concurrency)
            .with_per_kind_limits(limits.max_client_user_ids, limits.max_serial_numbers);
        let mut to_send = Vec::new();
        for h in holders {
            match (action, current.contains(h)) {
                (ChangeAction::Assign, true) | (ChangeAction::Revoke, false) => {
                    prepared.settle(h.clone(), Outcome::AlreadyInState);
                }
                (ChangeAction::Assign, false)
                    if matches!(h, HolderId::Device(_))
                        && asset.device_assignable == Some(false) =>
                {
                    prepared.settle(
                        h.clone(),
                        Outcome::failed(Error::invalid_input(format!(
                            "{product} cannot be assigned to devices (Apple: not device-assignable)"
                        ))),
                    );
                }
                _ => to_send.push(h.clone()),
            }
        }
        if action == ChangeAction::Assign {
            let total = asset.total_count.unwrap_or(0);
            let free = if total >= UNLIMITED {
                usize::MAX
            } else {
                asset.available_count.unwrap_or(0).max(0) as usize
            };
            if to_send.len() > free {
                let shortfall = Arc::new(Error::InsufficientSeats {
                    provider: KIND,
                    product: product.to_string(),
                    requested: to_send.len() as u64,
                    available: free as u64,
                    source: None,
                });
                for h in to_send.split_off(free) {
                    prepared.settle(h, Outcome::Failed(shortfall.clone()));
                }
            }
        }
        Ok(prepared)
    }

    async fn send(
        &self,
        run: &Run,
        action: ChangeAction,
        batch: &[HolderId],
    ) -> Result<Vec<ItemAnswer>> {
        let client = &self.provider.inner.client;
        let (users, serials) = lists_of(batch);
        let event = match (&self.operation, &run.asset) {
            (Operation::Asset, Some(asset)) => {
                let assets = std::slice::from_ref(asset);
                match action {
                    ChangeAction::Assign => client.associate(assets, &users, &serials).await?,
                    ChangeAction::Revoke => client.disassociate(assets, &users, &serials).await?,
                }
            }
            (Operation::RevokeAssets, _) => client.revoke_assets(&users, &serials).await?,
            (Operation::Users(user_action, requests), _) => {
                let chunk: Vec<RequestUser> = users
                    .iter()
                    .filter_map(|u| requests.get(u).cloned())
                    .collect();
                client.manage_users(*user_action, &chunk).await?
            }
            (Operation::Asset, None) => {
                return Err(Error::invalid_input("an asset operation needs an asset"));
            }
        };
        let polled = client.wait(&event).await;
        Ok(answers_of_event(&event, polled, batch, &run.product))
    }

    async fn read_state(&self, run: &Run, holders: &[HolderId]) -> Result<StateRead> {
        match (&self.operation, &run.asset) {
            (Operation::Asset, Some(asset)) => {
                let current = self.provider.current_holders(asset).await?;
                let held = holders.iter().filter(|h| current.contains(*h)).cloned();
                Ok(StateRead::held(held.collect()))
            }
            (Operation::RevokeAssets, _) => {
                // Holders with any assignment left still hold something.
                let provider = self.provider;
                let held: Vec<Result<Option<HolderId>>> = stream::iter(holders.to_vec())
                    .map(|h| async move {
                        let mut listing = provider.assignment_stream(
                            &AssignmentFilter::holder(h.clone()),
                            None,
                            Arc::default(),
                        )?;
                        Ok(listing.try_next().await?.map(|_| h))
                    })
                    .buffer_unordered(provider.inner.max_concurrency)
                    .collect()
                    .await;
                let held: HashSet<HolderId> = held
                    .into_iter()
                    .filter_map(Result::transpose)
                    .collect::<Result<_>>()?;
                Ok(StateRead::held(held))
            }
            _ => Err(Error::unsupported(
                KIND,
                "reading user registrations back after a lost answer (list the users to check)",
            )),
        }
    }
}

impl AppleVppProvider {
    /// Builds the provider; retries as `config.client.retry` says.
    pub fn new(config: AppleVppConfig) -> Result<Self> {
        let retry = config.client.retry_config();
        Self::with_retry(config, retry)
    }

    /// Builds the provider with a retry policy other than `config.client.retry`.
    pub fn with_retry(config: AppleVppConfig, retry: RetryConfig) -> Result<Self> {
        let token = token::decode(&config.stoken)?;
        token::check_not_expired(&token, Utc::now())?;
        check_url(KIND, &config.base_url, config.client.allow_http)?;
        if config.take_over && config.mdm_info.is_none() {
            return Err(Error::config(
                "apple-vpp: `take_over = true` claims the location for `mdm_info`, which is not set",
            ));
        }
        let observed = Arc::new(Mutex::new(Observed::default()));
        let max_concurrency = config.max_concurrency();
        let ownership = Ownership {
            ours: config.mdm_info.clone(),
            observed: observed.clone(),
        };
        let client = AppleClient::from_config(&config, retry, observed.clone(), ownership.clone())?;
        Ok(AppleVppProvider {
            inner: Arc::new(Inner {
                client,
                token,
                mdm_info: config.mdm_info,
                take_over: config.take_over,
                ownership,
                ready: OnceCell::new(),
                observed,
                max_concurrency,
            }),
        })
    }

    /// What the location token says: organisation and expiry.
    pub fn token_info(&self) -> &TokenInfo {
        &self.inner.token
    }

    /// The `tokenExpirationDate` Apple last sent (it does within 15 days of expiry): warn on it.
    pub fn token_expiration_warning(&self) -> Option<DateTime<Utc>> {
        let observed = self
            .inner
            .observed
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        observed
            .token_expiration_date
            .as_deref()
            .and_then(parse_apple_date)
    }

    /// The typed v2 API.
    #[cfg_attr(not(feature = "testing"), allow(dead_code))]
    pub(crate) fn client(&self) -> &AppleClient {
        &self.inner.client
    }

    /// Once per provider: read who owns the location, and claim it for ours when it is unowned
    /// (or, with `take_over`, owned by another service). Never refuses: reading is always allowed.
    async fn claim(&self) -> Result<()> {
        self.inner
            .ready
            .get_or_try_init(|| async {
                let config = self.inner.client.client_config().await?;
                match (&config.mdm_info, &self.inner.mdm_info) {
                    (None, Some(ours)) => {
                        self.inner.client.set_mdm_info(ours).await?;
                    }
                    (Some(theirs), Some(ours)) if theirs.id != ours.id && self.inner.take_over => {
                        tracing::warn!(
                            owner = %theirs.name,
                            owner_id = %theirs.id,
                            "apple-vpp: taking over a location another MDM managed (take_over = true)"
                        );
                        self.inner.client.set_mdm_info(ours).await?;
                    }
                    _ => {}
                }
                Ok(config.u_id)
            })
            .await
            .map(|_| ())
    }

    /// Before any change: the location must be ours or no one's (spec §2.3). Another service's
    /// `mdmInfo` — in `client/config` or in any later response — refuses the change with
    /// `PermissionDenied` naming the owner ([`is_mdm_conflict`]), whether or not `mdm_info` is
    /// configured; `take_over = true` claims the location instead.
    async fn ready(&self) -> Result<()> {
        self.claim().await?;
        self.inner.ownership.check_writable()
    }

    async fn asset(&self, asset: &AssetRef) -> Result<ResponseAsset> {
        let query = [
            ("adamId", asset.adam_id.clone()),
            ("pricingParam", asset.pricing_param.clone()),
        ];
        let page = self.inner.client.assets_page(&query, 0).await?;
        page.items
            .into_iter()
            .find(|a| a.adam_id == asset.adam_id && a.pricing_param == asset.pricing_param)
            .ok_or_else(|| {
                Error::not_found(
                    KIND,
                    format!("asset {}:{}", asset.adam_id, asset.pricing_param),
                )
            })
    }

    /// Streams a page-indexed listing to its last page, as Apple asks, even when `versionId`
    /// changes between pages ("Using paginated endpoints", spec §5); `versions` ends up holding
    /// the first and the last `versionId`, and the last record carries them too.
    ///
    /// Pages are offsets into data that may change while it is read. Records inserted before the
    /// cursor push records already read onto the next page: those are dropped by key (the keys of
    /// the last pages are kept). Records removed before the cursor pull unread records back onto
    /// the page already read: so when the version changed between two pages the previous page is
    /// read once more at the new version. Every record unchanged during the listing is thus
    /// listed exactly once, as long as fewer than a page of records change between two page
    /// requests (Apple's pages hold several hundred); records changed during the listing may be
    /// listed or not, and the differing versions say so.
    fn versioned_pages<T>(
        &self,
        path: &'static str,
        query: Vec<(&'static str, String)>,
        versions: Arc<Mutex<ListingVersions>>,
    ) -> BoxStream<'static, Result<Listed<T>>>
    where
        T: Keyed + serde::de::DeserializeOwned + Send + 'static,
    {
        struct State<T: Keyed> {
            next: Option<u32>,
            /// Index and versionId of the page read last.
            previous: Option<(u32, Option<String>)>,
            /// Keys of the last pages read, newest last; a key is hashed once and looked up
            /// in each (SipHash per page and key was a seventh of a listing's CPU time).
            recent: std::collections::VecDeque<HashTable<T::Key>>,
            hasher: hashbrown::DefaultHashBuilder,
            /// Records of the page read last, yielded once the next page is known.
            held: Vec<T>,
            finished: bool,
            /// Cycles, and a page budget from the largest `totalPages` seen (Apple: it "can
            /// change mid-traversal", spec §pagination) plus slack, and a hard cap (issue 13).
            guard: PageTracker<u32>,
        }
        const KEPT_PAGES: usize = 3;
        let this = self.clone();
        let start = State::<T> {
            next: Some(0),
            previous: None,
            recent: Default::default(),
            hasher: Default::default(),
            held: Vec::new(),
            finished: false,
            guard: PageTracker::new(PageGuard::new(KIND, path).totals(Totals::Largest), Some(&0)),
        };
        stream::try_unfold(start, move |mut st| {
            let this = this.clone();
            let query = query.clone();
            let versions = versions.clone();
            async move {
                loop {
                    let Some(index) = st.next else {
                        if st.finished {
                            return Ok(None);
                        }
                        st.finished = true;
                        let last_versions =
                            versions.lock().unwrap_or_else(|p| p.into_inner()).clone();
                        let mut out: Vec<Listed<T>> = st
                            .held
                            .drain(..)
                            .map(|item| Listed {
                                item,
                                versions: None,
                            })
                            .collect();
                        if let Some(last) = out.last_mut() {
                            last.versions = Some(last_versions);
                        }
                        return Ok(Some((out, st)));
                    };
                    this.claim().await?;
                    let page: crate::wire::Page<T> =
                        this.inner.client.page(path, &query, index).await?;
                    st.guard.check(
                        page.items.len(),
                        page.next_page_index.as_ref(),
                        Declared::pages(page.total_pages),
                    )?;
                    if page.next_page_index.is_some_and(|next| next <= index) {
                        return Err(Error::Decode {
                            provider: KIND,
                            message: format!(
                                "the {path} listing did not advance: page {index} names page {:?} as next",
                                page.next_page_index
                            ),
                            source: None,
                        });
                    }
                    let mut batches = vec![(index, page)];
                    let changed = matches!(&st.previous, Some((_, v)) if *v != batches[0].1.version_id);
                    if changed {
                        // Records pulled back by removals now sit on the previous page.
                        let (previous, _) = st.previous.clone().expect("a previous page");
                        let again: crate::wire::Page<T> =
                            this.inner.client.page(path, &query, previous).await?;
                        batches.push((previous, again));
                    }
                    st.next = batches[0].1.next_page_index;
                    // The next page is compared with this page's version, not the re-read's: what
                    // changed after this page was read is caught when the next page is read.
                    st.previous = Some((index, batches[0].1.version_id.clone()));
                    let mut keys = HashTable::new();
                    let mut fresh = Vec::new();
                    for (_, page) in batches {
                        {
                            let mut v = versions.lock().unwrap_or_else(|p| p.into_inner());
                            if v.first.is_none() {
                                v.first = page.version_id.clone();
                            }
                            if page.version_id.is_some() {
                                v.last = page.version_id.clone();
                            }
                        }
                        for item in page.items {
                            let key = item.key();
                            let hash = st.hasher.hash_one(&key);
                            let seen = |page: &HashTable<T::Key>| {
                                page.find(hash, |k| *k == key).is_some()
                            };
                            if st.recent.iter().any(seen) || seen(&keys) {
                                continue;
                            }
                            keys.insert_unique(hash, key, |k| st.hasher.hash_one(k));
                            fresh.push(item);
                        }
                    }
                    st.recent.push_back(keys);
                    while st.recent.len() > KEPT_PAGES {
                        st.recent.pop_front();
                    }
                    let out = std::mem::replace(&mut st.held, fresh);
                    if out.is_empty() {
                        continue;
                    }
                    let out = out
                        .into_iter()
                        .map(|item| Listed {
                            item,
                            versions: None,
                        })
                        .collect();
                    return Ok(Some((out, st)));
                }
            }
        })
        .map_ok(|batch: Vec<Listed<T>>| stream::iter(batch.into_iter().map(Ok)))
        .try_flatten()
        .boxed()
    }

    fn assignment_stream(
        &self,
        filter: &AssignmentFilter,
        since: Option<String>,
        versions: Arc<Mutex<ListingVersions>>,
    ) -> Result<BoxStream<'static, Result<Assignment>>> {
        let mut query = Vec::new();
        let mut wanted_pricing = None;
        if let Some(product) = &filter.product {
            let asset = parse_product(product)?;
            query.push(("adamId", asset.adam_id.clone()));
            wanted_pricing = Some(asset.pricing_param);
        }
        match &filter.holder {
            Some(h @ HolderId::User(id)) => {
                validate_holder(h)?;
                query.push(("clientUserId", id.clone()));
            }
            Some(h @ HolderId::Device(serial)) => {
                validate_holder(h)?;
                query.push(("serialNumber", serial.clone()));
            }
            None => {}
        }
        if let Some(v) = since {
            query.push(("sinceVersionId", v));
        }
        Ok(self
            .versioned_pages::<ResponseAssignment>("assignments", query, versions)
            .try_filter_map(move |Listed { item: a, versions }| {
                // (A last record dropped here takes the versions with it; `assignments_since`
                // reads them from the listing itself.)
                let keep = wanted_pricing
                    .as_ref()
                    .is_none_or(|p| *p == a.pricing_param);
                let assignment = holder_of(&a).filter(|_| keep).map(|h| {
                    let mut assignment = Assignment::new(
                        KIND,
                        product_id(&a.adam_id, &a.pricing_param),
                        Holder::new(h),
                    );
                    if let Some(v) = versions {
                        v.stamp(&mut assignment.vendor);
                    }
                    assignment
                });
                futures::future::ready(Ok(assignment))
            })
            .boxed())
    }

    /// Assignments with the `versionId` to resume from; with `since`, only what changed since that
    /// version. Apple's deltas list additions only — a revocation does not appear in them (§5:
    /// how removals appear is undocumented) — so only a full listing shows what was taken away.
    /// A listing during which the location changed reports two different versions
    /// (`versions.changed()`); catch up with `since = version_id` (the first page's, as Apple
    /// asks).
    pub async fn assignments_since(
        &self,
        filter: AssignmentFilter,
        since: Option<String>,
    ) -> Result<VersionedAssignments> {
        let versions = Arc::new(Mutex::new(ListingVersions::default()));
        let assignments = self
            .assignment_stream(&filter, since, versions.clone())?
            .try_collect()
            .await?;
        let versions = versions.lock().unwrap_or_else(|p| p.into_inner()).clone();
        Ok(VersionedAssignments {
            assignments,
            version_id: versions.first.clone(),
            versions,
        })
    }

    async fn current_holders(&self, asset: &AssetRef) -> Result<HashSet<HolderId>> {
        let filter = AssignmentFilter::product(product_id(&asset.adam_id, &asset.pricing_param));
        self.assignment_stream(&filter, None, Arc::default())?
            .map_ok(|a| a.holder.id)
            .try_collect()
            .await
    }

    /// Runs one operation through the bulk engine.
    async fn run(&self, operation: Operation, request: ChangeRequest) -> Result<ChangeReport> {
        let engine = Engine {
            provider: self,
            operation,
        };
        bulk::run(
            &engine,
            &self.capabilities(),
            BulkOptions::default(),
            request,
        )
        .await
    }

    /// `POST /assets/revoke`: takes every revocable asset from these users and devices (split at
    /// the revoke limits, 100 each). The report's product is `*`.
    pub async fn revoke_assets(&self, holders: &[HolderId]) -> Result<ChangeReport> {
        let request = ChangeRequest::revoke(ProductId::new("*"), holders.to_vec());
        self.run(Operation::RevokeAssets, request).await
    }

    /// Settles the `Pending` items of an earlier report (Apple event ids as references): each
    /// event is polled as after a change; a finished event gives its items their outcomes as
    /// [`assign`](licensekit_core::LicenseProviderExt::assign) would have (per-holder failures kept), an event still running
    /// after the configured poll timeout, or unreadable, leaves them `Pending`. Other items are
    /// returned as they were.
    pub async fn settle_pending(&self, report: ChangeReport) -> Result<ChangeReport> {
        let mut by_event: BTreeMap<String, Vec<HolderId>> = BTreeMap::new();
        for item in &report.items {
            if let Outcome::Pending { reference } = &item.outcome {
                by_event
                    .entry(reference.clone())
                    .or_default()
                    .push(item.holder.clone());
            }
        }
        let client = &self.inner.client;
        let product = report.product.clone();
        let settled: Vec<Vec<ItemAnswer>> = stream::iter(by_event)
            .map(|(event, holders)| {
                let product = product.clone();
                async move {
                    let polled = client.wait(&event).await;
                    answers_of_event(&event, polled, &holders, &product)
                }
            })
            .buffer_unordered(self.inner.max_concurrency)
            .collect()
            .await;
        let mut outcomes: HashMap<HolderId, (Outcome, licensekit_core::VendorFields)> =
            HashMap::new();
        for answer in settled.into_iter().flatten() {
            let outcome = match answer.answer {
                licensekit_core::raw::bulk::Answer::Settled(o) => o,
                // The event failed without naming holders: say so, do not guess.
                licensekit_core::raw::bulk::Answer::Unclear(why) => Outcome::Unconfirmed {
                    reason: format!("{why}; list assignments to check"),
                    last_error: None,
                },
                licensekit_core::raw::bulk::Answer::Refused(e) => Outcome::failed(e),
                _ => continue,
            };
            outcomes.insert(answer.holder, (outcome, answer.vendor));
        }
        let mut report = report;
        for item in &mut report.items {
            if matches!(item.outcome, Outcome::Pending { .. }) {
                if let Some((outcome, vendor)) = outcomes.get(&item.holder) {
                    item.outcome = outcome.clone();
                    item.vendor = vendor.clone();
                }
            }
        }
        Ok(report)
    }

    /// One event's state now (`GET /status`), for `licensekit events`.
    pub async fn event_status(&self, event_id: &str) -> Result<StatusResponse> {
        if event_id.trim().is_empty() || event_id.chars().any(char::is_control) {
            return Err(Error::invalid_input(format!(
                "`{}` is not an Apple event id",
                event_id.escape_debug()
            )));
        }
        self.inner.client.status(event_id).await
    }

    /// The legacy single-asset "manage licenses" (spec §9.2) on top of v2: disassociate one list,
    /// then associate one list.
    pub async fn manage_licenses(
        &self,
        product: &ProductId,
        request: ManageLicensesRequest,
    ) -> Result<ManageLicensesReport> {
        let lists = |v: [&Vec<String>; 3]| v.iter().filter(|l| !l.is_empty()).count();
        let r = &request;
        if lists([
            &r.disassociate_client_user_ids,
            &r.disassociate_serial_numbers,
            &r.disassociate_license_ids,
        ]) > 1
        {
            return Err(Error::invalid_input(
                "manage licenses takes at most one disassociate list (the legacy service calls more undefined behaviour)",
            ));
        }
        if lists([
            &r.associate_client_user_ids,
            &r.associate_serial_numbers,
            &Vec::new(),
        ]) > 1
        {
            return Err(Error::invalid_input(
                "manage licenses takes at most one associate list (the legacy service calls more undefined behaviour)",
            ));
        }
        if !r.disassociate_license_ids.is_empty() {
            return Err(Error::unsupported(
                KIND,
                "disassociating by license id (the v2 service has no license ids)",
            ));
        }
        let to_holders = |users: &[String], serials: &[String]| -> Vec<HolderId> {
            users
                .iter()
                .cloned()
                .map(HolderId::User)
                .chain(serials.iter().cloned().map(HolderId::Device))
                .collect()
        };
        let off = to_holders(
            &r.disassociate_client_user_ids,
            &r.disassociate_serial_numbers,
        );
        let on = to_holders(&r.associate_client_user_ids, &r.associate_serial_numbers);
        if off.is_empty() && on.is_empty() {
            return Err(Error::invalid_input(
                "manage licenses needs a disassociate or an associate list",
            ));
        }
        let disassociations = if off.is_empty() {
            None
        } else {
            Some(self.revoke(product, &off).await?)
        };
        let associations = if on.is_empty() {
            None
        } else {
            Some(self.assign(product, &on).await?)
        };
        Ok(ManageLicensesReport {
            disassociations,
            associations,
        })
    }

    /// User registrations through the engine. A lost answer cannot be read back cheaply, so
    /// such users come back `Unconfirmed` (list the users to check) rather than guessed.
    async fn manage_users(
        &self,
        action: UserAction,
        users: Vec<RequestUser>,
    ) -> Result<Vec<ItemOutcome>> {
        let holders: Vec<HolderId> = users
            .iter()
            .map(|u| HolderId::User(u.client_user_id.clone()))
            .collect();
        let mut requests = HashMap::with_capacity(users.len());
        for u in users {
            requests.entry(u.client_user_id.clone()).or_insert(u);
        }
        let change = match action {
            UserAction::Retire => ChangeAction::Revoke,
            UserAction::Create | UserAction::Update => ChangeAction::Assign,
        };
        let request = ChangeRequest::new(change, ProductId::new("users"), holders);
        let report = self
            .run(Operation::Users(action, Arc::new(requests)), request)
            .await?;
        Ok(report.items)
    }

    /// `POST /users/create` (≤ 100 per request): users must be registered before they can hold
    /// user licenses. An existing registered user is `AlreadyInState`.
    pub async fn create_users(&self, users: Vec<RequestUser>) -> Result<Vec<ItemOutcome>> {
        self.manage_users(UserAction::Create, users).await
    }

    /// `POST /users/update`: change email or managed Apple Account.
    pub async fn update_users(&self, users: Vec<RequestUser>) -> Result<Vec<ItemOutcome>> {
        self.manage_users(UserAction::Update, users).await
    }

    /// `POST /users/retire`: retires users; Apple releases their revocable licenses.
    pub async fn retire_users(&self, client_user_ids: &[String]) -> Result<Vec<ItemOutcome>> {
        self.manage_users(
            UserAction::Retire,
            client_user_ids
                .iter()
                .map(|id| RequestUser::new(id.clone(), None))
                .collect(),
        )
        .await
    }
}

#[async_trait]
impl LicenseProvider for AppleVppProvider {
    fn kind(&self) -> ProviderKind {
        KIND
    }

    /// `location:{uId}`, the location's id from `client/config` (read once per provider, as the
    /// ownership check does anyway); `org:{orgName}` from the token when Apple sent no uId.
    async fn identity(&self) -> Result<String> {
        self.claim().await?;
        match self.inner.ready.get().cloned().flatten() {
            Some(uid) if !uid.is_empty() => Ok(format!("location:{uid}")),
            _ => Ok(format!("org:{}", self.inner.token.org_name)),
        }
    }

    fn capabilities(&self) -> Capabilities {
        let defaults = Limits::default();
        let mut caps = Capabilities::NONE;
        caps.user_holders = true;
        caps.device_holders = true;
        caps.seat_totals_reported = true;
        caps.seat_limits_enforced = true;
        caps.async_completion = true;
        caps.max_assign_batch = Some(defaults.max_client_user_ids);
        caps.max_revoke_batch = Some(defaults.max_client_user_ids);
        caps.incremental_listing = true;
        caps.holder_directory = true;
        caps.filter_by_holder = true;
        caps
    }

    #[tracing::instrument(skip_all, fields(provider = "apple-vpp"))]
    async fn products(&self) -> Result<Vec<Product>> {
        let versions = Arc::new(Mutex::new(ListingVersions::default()));
        let assets: Vec<Listed<ResponseAsset>> = self
            .versioned_pages("assets", Vec::new(), versions.clone())
            .try_collect()
            .await?;
        let versions = versions.lock().unwrap_or_else(|p| p.into_inner()).clone();
        Ok(assets
            .into_iter()
            .map(|Listed { item: a, .. }| {
                let total = a.total_count.unwrap_or(0);
                let seats = Seats::reported(
                    if total >= UNLIMITED {
                        SeatTotal::Unlimited
                    } else {
                        SeatTotal::Limited(total.max(0) as u64)
                    },
                    a.assigned_count.unwrap_or(0).max(0) as u64,
                );
                let kind = a.product_type.clone().unwrap_or_else(|| "Asset".into());
                let mut p = Product::new(
                    KIND,
                    product_id(&a.adam_id, &a.pricing_param),
                    format!("{kind} {} ({})", a.adam_id, a.pricing_param),
                    seats,
                );
                p.vendor.insert("product_type".into(), kind.into());
                p.vendor
                    .insert("device_assignable".into(), a.device_assignable.into());
                p.vendor.insert("revocable".into(), a.revocable.into());
                p.vendor
                    .insert("retired_count".into(), a.retired_count.into());
                p.vendor
                    .insert("supported_platforms".into(), a.supported_platforms.into());
                // Every product, so any one tells whether the figures moved while listed.
                versions.stamp(&mut p.vendor);
                p
            })
            .collect())
    }

    fn assignments(&self, filter: AssignmentFilter) -> BoxStream<'static, Result<Assignment>> {
        match self.assignment_stream(&filter, None, Arc::default()) {
            Ok(s) => s,
            Err(e) => stream::once(async { Err(e) }).boxed(),
        }
    }

    fn holders(&self) -> BoxStream<'static, Result<Holder>> {
        // One clientUserId may have several records (retired ones plus one current, §3.10): the
        // current record wins, so the whole directory is read before anything is yielded.
        let users = self.versioned_pages::<ResponseUser>("users", Vec::new(), Arc::default());
        stream::once(async move {
            let directory = users
                .try_fold(Directory::default(), |mut directory, listed| async move {
                    directory.add(listed.item);
                    Ok(directory)
                })
                .await?;
            Ok::<_, Error>(stream::iter(directory.into_holders().map(Ok)))
        })
        .try_flatten()
        .boxed()
    }

    #[tracing::instrument(skip_all, fields(provider = "apple-vpp", action = %request.action, product = %request.product, holders = request.holders.len()))]
    async fn change(&self, request: ChangeRequest) -> Result<ChangeReport> {
        self.run(Operation::Asset, request).await
    }
}

/// Whether an error means the location belongs to another service (for callers that alert).
pub fn is_mdm_conflict(error: &Error) -> bool {
    error.kind() == ErrorKind::PermissionDenied
        && error.vendor_error().and_then(|v| v.code.as_deref()) == Some("mdmInfo-conflict")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::ErrorResponse;

    #[test]
    fn product_ids() {
        assert_eq!(
            parse_product(&ProductId::new("361309726"))
                .unwrap()
                .pricing_param,
            "STDQ"
        );
        assert_eq!(
            parse_product(&ProductId::new("361309726:PLUS"))
                .unwrap()
                .pricing_param,
            "PLUS"
        );
        for bad in ["", "abc", "1:XYZ", "1/2", "12&adamId=3"] {
            assert!(parse_product(&ProductId::new(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_failed_event_is_a_partial_success() {
        // P-31: FAILED, 14 of 16 completed, client-4 not found.
        let status: StatusResponse = serde_json::from_str(r#"{
            "eventStatus": "FAILED", "eventType": "ASSOCIATE",
            "failures": [{"errorInfo": {"clientUserIds": ["client-4"]}, "errorNumber": 9609, "errorMessage": "Registered user not found"}],
            "numCompleted": 14, "numRequested": 16, "uId": "2049025000431439"}"#).unwrap();
        let holders = vec![
            HolderId::user("client-3"),
            HolderId::user("client-4"),
            HolderId::device("serial-1"),
        ];
        let p = ProductId::new("408709785:STDQ");
        let settled = |answers: Vec<ItemAnswer>| -> Vec<Option<Outcome>> {
            answers
                .into_iter()
                .map(|a| match a.answer {
                    licensekit_core::raw::bulk::Answer::Settled(o) => Some(o),
                    _ => None,
                })
                .collect()
        };
        let outcomes = settled(answers_of_event(
            "ev-0",
            Ok(EventOutcome::Finished(status)),
            &holders,
            &p,
        ));
        assert_eq!(outcomes[0], Some(Outcome::Applied));
        assert_eq!(
            outcomes[1]
                .as_ref()
                .and_then(|o| o.error())
                .map(Error::kind),
            Some(ErrorKind::NotFound)
        );
        assert_eq!(outcomes[2], Some(Outcome::Applied));
        let ev1 = Some(Outcome::Pending {
            reference: "ev-1".into(),
        });
        let pending = settled(answers_of_event(
            "ev-1",
            Ok(EventOutcome::StillPending {
                event_id: "ev-1".into(),
            }),
            &holders,
            &p,
        ));
        assert!(pending.iter().all(|o| *o == ev1));
        // Apple accepted the work: a status poll that fails leaves it pending, never failed.
        let unpolled = settled(answers_of_event(
            "ev-1",
            Err(Error::invalid_input("poll failed")),
            &holders,
            &p,
        ));
        assert!(unpolled.iter().all(|o| *o == ev1));
        // A failure naming nobody: the unnamed holders are not guessed; the engine reads back.
        let vague = StatusResponse {
            failures: vec![
                serde_json::from_str::<ErrorResponse>(
                    r#"{"errorNumber": 9603, "errorMessage": "internal"}"#,
                )
                .unwrap(),
            ],
            ..serde_json::from_str(r#"{"eventStatus": "FAILED"}"#).unwrap()
        };
        let outcomes = settled(answers_of_event(
            "ev-2",
            Ok(EventOutcome::Finished(vague)),
            &holders,
            &p,
        ));
        assert!(outcomes.iter().all(Option::is_none));
    }

    #[test]
    fn deleted_and_retired_users_are_inactive_and_a_current_record_wins() {
        // P-40's shape, with the documented `Deleted` state (managing users: retired, and the
        // Apple Account re-associated to a new user with the same clientUserId).
        let page: crate::wire::Page<ResponseUser> = serde_json::from_str(
            r#"{
    "currentPageIndex": 0, "size": 5, "tokenExpirationDate": "2030-11-08T22:33:22+0000",
    "totalPages": 1, "uId": "2049025000431439",
    "users": [
        {"clientUserId": "client-101", "email": "client-101@apple.com", "inviteCode": "46bc93ea3acd41e0a4919c02db0d7d3a", "status": "Registered"},
        {"clientUserId": "client-102", "email": "client-102@apple.com", "status": "Deleted"},
        {"clientUserId": "client-103", "email": "client-1031@apple.com", "status": "Retired"},
        {"clientUserId": "client-104", "email": "client-104@apple.com", "status": "Deleted"},
        {"clientUserId": "client-104", "email": "client-104@apple.com", "idHash": "nBRrA1sNbP6WcF3xhpLx2EsCm1g=", "status": "Associated"}
    ],
    "versionId": "021f10a0-7035-11eb-9f67-bd1df52e1e13"
}"#,
        )
        .unwrap();
        let mut directory = Directory::default();
        for user in page.items {
            directory.add(user);
        }
        let holders: Vec<Holder> = directory.into_holders().collect();
        let active: Vec<(&str, Option<bool>)> =
            holders.iter().map(|h| (h.id.as_str(), h.active)).collect();
        assert_eq!(
            active,
            vec![
                ("client-101", Some(true)),
                ("client-102", Some(false)),
                ("client-103", Some(false)),
                ("client-104", Some(true)),
            ]
        );
        assert_eq!(holders[1].vendor["status"], "Deleted");
    }
}
