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
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures::stream::{self, BoxStream, StreamExt, TryStreamExt};
use licensekit_core::bulk::{
    self, BulkBackend, BulkOptions, ChangeRequest, ItemAnswer, Prepared, StateRead,
};
use licensekit_core::client::{
    HttpClient, RequestLimiter, RetryConfig, StaticToken, check_url, items, pages,
};
use licensekit_core::{
    Assignment, AssignmentFilter, Capabilities, ChangeAction, ChangeReport, Error, ErrorKind,
    Holder, HolderId, ItemOutcome, LicenseProvider, LicenseProviderExt, Outcome, Product,
    ProductId, ProviderKind, Result, SeatTotal, Seats, VendorError,
};
use tokio::sync::OnceCell;

use crate::client::{AppleClient, EventOutcome, Limits, UserAction};
use crate::config::AppleVppConfig;
use crate::error::{AppleResponses, Observed};
use crate::token::{self, TokenInfo, parse_apple_date};
use crate::wire::{
    AssetRef, MdmInfo, RequestUser, ResponseAsset, ResponseAssignment, StatusResponse,
};

const KIND: ProviderKind = ProviderKind::AppleVpp;
const UNLIMITED: i64 = 2_147_483_647;

#[derive(Debug)]
struct Inner {
    client: AppleClient,
    token: TokenInfo,
    mdm_info: Option<MdmInfo>,
    ready: OnceCell<()>,
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
    pub assignments: Vec<Assignment>,
    /// Pass it as `since` next time to get only what changed.
    pub version_id: Option<String>,
}

/// The legacy v1 "manage licenses" request (spec §9.2): on one asset, first disassociate one list,
/// then associate one list. At most one list of each kind: the legacy service calls more
/// undefined, so more is refused up front.
#[derive(Debug, Clone, Default)]
pub struct ManageLicensesRequest {
    pub disassociate_client_user_ids: Vec<String>,
    pub disassociate_serial_numbers: Vec<String>,
    /// v1 license ids: v2 has none, so a non-empty list is `Unsupported`.
    pub disassociate_license_ids: Vec<String>,
    pub associate_client_user_ids: Vec<String>,
    pub associate_serial_numbers: Vec<String>,
}

/// What a [`ManageLicensesRequest`] did: the disassociations, then the associations.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ManageLicensesReport {
    pub disassociations: Option<ChangeReport>,
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
    let pending = |why: &str| {
        holders
            .iter()
            .map(|h| {
                ItemAnswer::settled(
                    h.clone(),
                    Outcome::Pending {
                        reference: event_id.to_owned(),
                    },
                )
                .with_vendor_field("event_status", why)
            })
            .collect()
    };
    let status: StatusResponse = match polled {
        Err(e) => {
            tracing::debug!(event_id, error = %e, "event status unreadable; left pending");
            return pending("unknown: status poll failed");
        }
        Ok(EventOutcome::StillPending { .. }) => return pending("PENDING"),
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

    fn capabilities(&self) -> Capabilities {
        LicenseProvider::capabilities(self.provider)
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
        let asset_ref = parse_product(product)?;
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
    pub fn new(config: AppleVppConfig) -> Result<Self> {
        Self::with_retry(config, RetryConfig::default())
    }

    pub fn with_retry(config: AppleVppConfig, retry: RetryConfig) -> Result<Self> {
        let token = token::decode(&config.stoken)?;
        token::check_not_expired(&token, Utc::now())?;
        check_url(KIND, &config.base_url, config.allow_http)?;
        let observed = Arc::new(Mutex::new(Observed::default()));
        let pacer = licensekit_core::client::per_minute_pacer(KIND, config.requests_per_minute)?;
        let inspector = AppleResponses {
            our_mdm_id: config.mdm_info.as_ref().map(|m| m.id.clone()),
            observed: observed.clone(),
        };
        let http = HttpClient::builder(KIND, &config.base_url)
            .allow_http(config.allow_http)
            .timeout(std::time::Duration::from_secs(config.timeout_secs))
            .retry(retry)
            .limiter(RequestLimiter::new(config.max_concurrency.max(1), pacer))
            .classifier(Arc::new(inspector))
            .max_body_bytes(config.max_response_bytes)
            .credentials(Arc::new(StaticToken::new(config.stoken.clone())))
            .build()?;
        Ok(AppleVppProvider {
            inner: Arc::new(Inner {
                client: AppleClient::new(http, config.poll_interval(), config.poll_timeout()),
                token,
                mdm_info: config.mdm_info,
                ready: OnceCell::new(),
                observed,
                max_concurrency: config.max_concurrency.max(1),
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
    pub fn client(&self) -> &AppleClient {
        &self.inner.client
    }

    /// Once per provider: refuse a location another service owns, and claim it for ours.
    async fn ready(&self) -> Result<()> {
        self.inner
            .ready
            .get_or_try_init(|| async {
                // A conflicting owner is already refused by the response inspector.
                let config = self.inner.client.client_config().await?;
                if let (None, Some(ours)) = (&config.mdm_info, &self.inner.mdm_info) {
                    self.inner.client.set_mdm_info(ours).await?;
                }
                Ok(())
            })
            .await
            .map(|_| ())
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

    /// Streams a page-indexed listing, refusing to mix versions: if `versionId` changes between
    /// pages, the stream ends with an error saying so (spec §5).
    fn versioned_pages<T: serde::de::DeserializeOwned + Send + 'static>(
        &self,
        path: &'static str,
        query: Vec<(&'static str, String)>,
        version: Arc<Mutex<Option<String>>>,
    ) -> BoxStream<'static, Result<T>> {
        let this = self.clone();
        let listing = pages(KIND, None, move |page: Option<u32>| {
            let this = this.clone();
            let query = query.clone();
            let version = version.clone();
            async move {
                this.ready().await?;
                let index = page.unwrap_or(0);
                let page: crate::wire::Page<T> =
                    this.inner.client.page(path, &query, index).await?;
                {
                    let mut seen = version.lock().unwrap_or_else(|p| p.into_inner());
                    match (&*seen, &page.version_id) {
                        (Some(first), Some(now)) if first != now => {
                            return Err(Error::Unavailable {
                                provider: KIND,
                                message: format!(
                                    "the {path} changed while being listed (versionId {first} became {now}); list again"
                                ),
                                source: None,
                            });
                        }
                        (None, Some(now)) => *seen = Some(now.clone()),
                        _ => {}
                    }
                }
                Ok((page.items, page.next_page_index))
            }
        });
        items(listing)
    }

    fn assignment_stream(
        &self,
        filter: &AssignmentFilter,
        since: Option<String>,
        version: Arc<Mutex<Option<String>>>,
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
            .versioned_pages::<ResponseAssignment>("assignments", query, version)
            .try_filter_map(move |a| {
                let keep = wanted_pricing
                    .as_ref()
                    .is_none_or(|p| *p == a.pricing_param);
                let assignment = holder_of(&a).filter(|_| keep).map(|h| {
                    Assignment::new(
                        KIND,
                        product_id(&a.adam_id, &a.pricing_param),
                        Holder::new(h),
                    )
                });
                futures::future::ready(Ok(assignment))
            })
            .boxed())
    }

    /// Assignments with the `versionId` to resume from; with `since`, only what changed since that
    /// version (Apple lists additions; removals are not represented in deltas, spec §5).
    pub async fn assignments_since(
        &self,
        filter: AssignmentFilter,
        since: Option<String>,
    ) -> Result<VersionedAssignments> {
        let version = Arc::new(Mutex::new(None));
        let assignments = self
            .assignment_stream(&filter, since, version.clone())?
            .try_collect()
            .await?;
        let version_id = version.lock().unwrap_or_else(|p| p.into_inner()).clone();
        Ok(VersionedAssignments {
            assignments,
            version_id,
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
        bulk::run(&engine, BulkOptions::default(), request).await
    }

    /// `POST /assets/revoke`: takes every revocable asset from these users and devices (split at
    /// the revoke limits, 100 each). The report's product is `*`.
    pub async fn revoke_assets(&self, holders: &[HolderId]) -> Result<ChangeReport> {
        let request = ChangeRequest::revoke(ProductId::new("*"), holders.to_vec());
        self.run(Operation::RevokeAssets, request).await
    }

    /// Settles the `Pending` items of an earlier report (Apple event ids as references): each
    /// event is polled once; a finished event gives its items their outcomes as
    /// [`AppleVppProvider::assign`] would have (per-holder failures kept), an event still running
    /// or unreadable leaves them `Pending`. Other items are returned as they were.
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
                    let polled = match client.status(&event).await {
                        Ok(status) if status.event_status == "PENDING" => {
                            Ok(EventOutcome::StillPending {
                                event_id: event.clone(),
                            })
                        }
                        Ok(status) => Ok(EventOutcome::Finished(status)),
                        Err(e) => Err(e),
                    };
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
                licensekit_core::bulk::Answer::Settled(o) => o,
                // The event failed without naming holders: say so, do not guess.
                licensekit_core::bulk::Answer::Unclear(why) => Outcome::Unconfirmed {
                    reason: format!("{why}; list assignments to check"),
                    last_error: None,
                },
                licensekit_core::bulk::Answer::Refused(e) => Outcome::failed(e),
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
        let assets: Vec<ResponseAsset> = self
            .versioned_pages("assets", Vec::new(), Arc::default())
            .try_collect()
            .await?;
        Ok(assets
            .into_iter()
            .map(|a| {
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
        let users =
            self.versioned_pages::<crate::wire::ResponseUser>("users", Vec::new(), Arc::default());
        stream::once(async move {
            let all: Vec<crate::wire::ResponseUser> = users.try_collect().await?;
            let mut by_id: BTreeMap<String, Holder> = BTreeMap::new();
            for u in all {
                let retired = u.status.as_deref() == Some("Retired");
                if retired
                    && by_id
                        .get(&u.client_user_id)
                        .is_some_and(|h| h.active == Some(true))
                {
                    continue;
                }
                let mut h =
                    Holder::new(HolderId::User(u.client_user_id.clone())).with_active(!retired);
                h.email = u.email;
                if let Some(status) = u.status {
                    h.vendor.insert("status".into(), status.into());
                }
                by_id.insert(u.client_user_id, h);
            }
            Ok::<_, Error>(stream::iter(by_id.into_values().map(Ok)))
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
                    licensekit_core::bulk::Answer::Settled(o) => Some(o),
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
}
