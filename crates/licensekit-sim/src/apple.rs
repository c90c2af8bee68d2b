//! Apple Apps and Books for Organizations (VPP) web service, v2 (`shared/vendor-specs/apple-vpp.md`).
//!
//! Routes under `/mdm/v2`: `service/config` (no auth), `client/config` (GET, POST with `mdmInfo`),
//! `assets`, `assignments` (page-indexed, `versionId`, `sinceVersionId`), `assets/associate`,
//! `assets/disassociate`, `assets/revoke` (asynchronous: an `eventId`), `status?eventId=`,
//! `users`, `users/create|update|retire` (asynchronous). Auth: `Authorization: Bearer <sToken>`
//! where the sToken is base64 of `{token, expDate, orgName}` (§2.1); a malformed header is 9722,
//! an unknown token 9622 (HTTP 200 with the error body by default, as clients observe; §2.2), a
//! revoked one 9625, an expired one 9621. Errors are `{errorNumber, errorMessage}` with the HTTP
//! status of §7.1; a POST that is not `application/json` is 9727 / 415 and a wrong method 9726 /
//! 405 (§3). Responses carry `uId`, `tokenExpirationDate` (always, by default: the object
//! reference lists it on every response) and `mdmInfo` once set (§2.3); `client/config` adds
//! `websiteURL` and the notification settings, and `POST client/config` echoes them (§3.2, §3.3,
//! P-11, P-12). `service/config` lists every documented URL and error number, the API's URLs
//! pointing at this server (§3.1, P-10). Associated users carry `idHash` (§4). Assets,
//! assignments and users each have their own `versionId` (§5), which changes only when that data
//! set does (a new assignment changes the assets' counts too). Notifications (§6.2): setting a
//! `notificationUrl` is validated (9710, 9711, 9712) and a `TEST_NOTIFICATION` must be accepted
//! (else 9728, nothing stored); asset and user events are then delivered to subscribers with
//! `Authorization: Bearer <notificationAuthToken>`, at most 100 items each, three attempts.
//!
//! Assumptions where the spec is unsure (listed in the adapter README): events are processed when
//! submitted and report `PENDING` for a configurable number of status polls; re-associating an
//! existing pair and disassociating a missing one are completed no-ops; an unknown asset in a
//! manage request is a synchronous 9602; `sinceVersionId` deltas list assignments created since
//! that version (removals are not represented, §5: undocumented); `numRequested` = assets ×
//! (users + serials) (§3.9 inference). User records in `Retired` or `Deleted` state are not current
//! (`activeOnly` leaves both out). Tests can make the location change while it is listed
//! ([`AppleSim::between_assignment_pages`]): pages are offsets, so they shift as Apple's do.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use axum::body::Bytes;
use axum::extract::{MatchedPath, Query, Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::faults::{Fault, FaultInjector, Faults, VendorFaults};
use crate::{CallCounter, Listen, Running};

/// Apple's own fault answers (§7.1, §7.3).
struct AppleFaultBodies;

impl VendorFaults for AppleFaultBodies {
    fn throttled(&self, retry_after: axum::http::HeaderValue) -> Response {
        let mut r = apple_error(
            StatusCode::TOO_MANY_REQUESTS,
            9646,
            "There are too many requests for this organization.",
        );
        r.headers_mut().insert("Retry-After", retry_after);
        r
    }
    fn server_error(&self) -> Response {
        apple_error(StatusCode::INTERNAL_SERVER_ERROR, 9603, "Internal error")
    }
    fn unavailable(&self) -> Response {
        apple_error(
            StatusCode::SERVICE_UNAVAILABLE,
            9729,
            "The service is temporarily unavailable.",
        )
    }
    fn token_expired(&self) -> Response {
        apple_error(StatusCode::UNAUTHORIZED, 9621, "The sToken has expired.")
    }
}

/// Unlimited (free) assets report this total (§3.4).
pub const UNLIMITED: i64 = 2_147_483_647;

/// An asset owned by the location.
#[derive(Debug, Clone)]
pub struct SimAsset {
    /// The asset's Apple id (`adamId`).
    pub adam_id: String,
    /// Its `pricingParam`: `STDQ` (standard quality) or `PLUS` (high quality).
    pub pricing_param: String,
    /// `App` or `Book`.
    pub product_type: String,
    /// Licenses owned (`totalCount`).
    pub total: i64,
    /// Whether devices may hold it (`deviceAssignable`; apps yes, books no).
    pub device_assignable: bool,
    /// Whether an assignment can be revoked (`revocable`; books cannot).
    pub revocable: bool,
    /// Platforms served (`supportedPlatforms`).
    pub platforms: Vec<String>,
}

impl SimAsset {
    /// An iOS/macOS app, `STDQ` pricing, device-assignable and revocable, with `total` licenses.
    pub fn app(adam_id: &str, total: i64) -> Self {
        SimAsset {
            adam_id: adam_id.into(),
            pricing_param: "STDQ".into(),
            product_type: "App".into(),
            total,
            device_assignable: true,
            revocable: true,
            platforms: vec!["iOS".into(), "macOS".into()],
        }
    }

    /// A book: users only, not revocable, iOS only.
    pub fn book(adam_id: &str, total: i64) -> Self {
        SimAsset {
            product_type: "Book".into(),
            device_assignable: false,
            revocable: false,
            platforms: vec!["iOS".into()],
            ..SimAsset::app(adam_id, total)
        }
    }
}

/// A registered user of the location.
#[derive(Debug, Clone)]
pub struct SimVppUser {
    /// The user's `clientUserId` (the MDM's id for them).
    pub client_user_id: String,
    /// The user's email, if registered with one.
    pub email: Option<String>,
    /// `Registered`, `Associated`, `Retired` or `Deleted`.
    pub status: String,
}

impl SimVppUser {
    /// A user in `Registered` status with `email`.
    pub fn registered(client_user_id: &str, email: &str) -> Self {
        SimVppUser {
            client_user_id: client_user_id.into(),
            email: Some(email.into()),
            status: "Registered".into(),
        }
    }
}

/// (adamId, pricingParam, holder): one assignment.
type AssignmentKey = (String, String, SimHolder);

/// A holder of an Apple assignment.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SimHolder {
    /// A user, by `clientUserId`.
    User(String),
    /// A device, by serial number.
    Serial(String),
}

/// What the location holds at start.
#[derive(Debug, Clone, Default)]
pub struct AppleSeed {
    /// The organization in the sToken and `GET /client/config`.
    pub org_name: String,
    /// The location the sToken is for.
    pub location_name: String,
    /// Assets on offer.
    pub assets: Vec<SimAsset>,
    /// Users registered at the location.
    pub users: Vec<SimVppUser>,
    /// (adamId, pricingParam, holder).
    pub assignments: Vec<(String, String, SimHolder)>,
}

impl AppleSeed {
    /// Three apps (1000, 50 and unlimited seats), one book (20 seats), `users` registered users
    /// `user-0000`… (every 10th retired).
    pub fn demo(users: usize) -> Self {
        AppleSeed {
            org_name: "Example School".into(),
            location_name: "Main Campus".into(),
            assets: vec![
                SimAsset::app("361309726", 1000),
                SimAsset::app("408709785", 50),
                SimAsset::app("284882215", UNLIMITED),
                SimAsset::book("1439786743", 20),
            ],
            users: (0..users)
                .map(|i| SimVppUser {
                    client_user_id: format!("user-{i:04}"),
                    email: Some(format!("user{i}@school.example")),
                    status: if i % 10 == 9 {
                        "Retired".into()
                    } else {
                        "Registered".into()
                    },
                })
                .collect(),
            assignments: Vec::new(),
        }
    }
}

/// Knobs of the simulator.
#[derive(Debug, Clone)]
pub struct AppleSimConfig {
    /// Items per page (Apple's is server-chosen: 549–1000 seen, §5).
    pub page_size: usize,
    /// Status polls answering `PENDING` before an event's final status.
    pub polls_until_complete: u32,
    /// When the location token expires.
    pub token_expires: DateTime<Utc>,
    /// Answer an unknown token (9622) with HTTP 200 and the error body (default: what Apple's
    /// clients observe, §2.2) instead of 401.
    pub invalid_token_http_200: bool,
    /// Send `tokenExpirationDate` on every response (default: Apple's object reference lists it
    /// on every response, §3), not only within 15 days of expiry.
    pub always_send_expiration: bool,
}

impl Default for AppleSimConfig {
    fn default() -> Self {
        AppleSimConfig {
            page_size: 549,
            polls_until_complete: 1,
            token_expires: Utc::now() + Duration::days(300),
            invalid_token_http_200: true,
            always_send_expiration: true,
        }
    }
}

#[derive(Debug, Clone)]
struct Event {
    event_type: &'static str,
    polls_left: u32,
    requested: u64,
    completed: u64,
    /// errorNumber -> (message, info)
    failures: BTreeMap<i64, (String, Value)>,
}

#[derive(Debug)]
struct Location {
    token: String,
    revoked: BTreeSet<String>,
    expires: DateTime<Utc>,
    org_name: String,
    location_name: String,
    uid: String,
    mdm_info: Option<Value>,
    client_config: Map<String, Value>,
    assets: BTreeMap<(String, String), SimAsset>,
    users: Vec<(SimVppUser, u64)>,
    /// (adamId, pricingParam, holder) -> version when assigned
    assignments: BTreeMap<(String, String, SimHolder), u64>,
    /// A clock stamped on every change (records keep the stamp of their last change).
    version: u64,
    /// The clock at the last change of each data set: its `versionId` (spec §5: one per data
    /// set; a user change does not change the assignments' version).
    assets_version: u64,
    assignments_version: u64,
    users_version: u64,
    events: HashMap<String, Event>,
    /// All assignment keys in listing order at `.0` (a version), for unfiltered listings.
    order: Mutex<Option<(u64, Arc<Vec<AssignmentKey>>)>>,
}

impl Clone for Location {
    fn clone(&self) -> Self {
        Location {
            token: self.token.clone(),
            revoked: self.revoked.clone(),
            expires: self.expires,
            org_name: self.org_name.clone(),
            location_name: self.location_name.clone(),
            uid: self.uid.clone(),
            mdm_info: self.mdm_info.clone(),
            client_config: self.client_config.clone(),
            assets: self.assets.clone(),
            users: self.users.clone(),
            assignments: self.assignments.clone(),
            version: self.version,
            assets_version: self.assets_version,
            assignments_version: self.assignments_version,
            users_version: self.users_version,
            events: self.events.clone(),
            // A cache, rebuilt on demand.
            order: Mutex::new(None),
        }
    }
}

impl Location {
    fn assigned_count(&self, adam_id: &str, pricing: &str) -> i64 {
        self.assignments
            .keys()
            .filter(|(a, p, _)| a == adam_id && p == pricing)
            .count() as i64
    }

    /// A change of assignments (which also changes the assets' counts).
    fn bump(&mut self) -> u64 {
        self.version += 1;
        self.assignments_version = self.version;
        self.assets_version = self.version;
        self.version
    }

    /// A change of users.
    fn bump_users(&mut self) -> u64 {
        self.version += 1;
        self.users_version = self.version;
        self.version
    }

    fn user_active(&self, id: &str) -> bool {
        self.users
            .iter()
            .any(|(u, _)| u.client_user_id == id && is_current(&u.status))
    }
}

/// A user record is current when `Registered` or `Associated`; `Retired` and `Deleted` (legacy:
/// retired, its Apple Account re-associated to a new user with the same clientUserId) are not
/// (spec §4, "Managing users").
fn is_current(status: &str) -> bool {
    !matches!(status, "Retired" | "Deleted")
}

/// Which data set a `versionId` belongs to: a users versionId is no good for assignments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DataSet {
    Assets,
    Assignments,
    Users,
}

fn set_version_id(set: DataSet, v: u64) -> String {
    let tag = match set {
        DataSet::Assets => "5a7a",
        DataSet::Assignments => "5a7b",
        DataSet::Users => "5a7c",
    };
    format!("{v:08x}-{tag}-11eb-b9e4-{v:012x}")
}

fn parse_set_version(set: DataSet, s: &str) -> Option<u64> {
    let (head, tail) = s.split_once('-')?;
    let v = u64::from_str_radix(head, 16).ok()?;
    (set_version_id(set, v) == s && !tail.is_empty()).then_some(v)
}

fn version_id(v: u64) -> String {
    set_version_id(DataSet::Assignments, v)
}

#[cfg(test)]
fn parse_version(s: &str) -> Option<u64> {
    parse_set_version(DataSet::Assignments, s)
}

#[derive(Debug)]
struct Inner {
    config: AppleSimConfig,
    location: Mutex<Location>,
    calls: CallCounter,
    events: AtomicU64,
    faults: FaultInjector,
    listing_hook: Mutex<Option<ListingHook>>,
    /// This server's own `…/mdm/v2` URL, for `service/config`.
    base_url: std::sync::OnceLock<String>,
    /// Sends notifications to the MDM's `notificationUrl` (§6.2).
    notifier: reqwest::Client,
    /// Notifications delivered (a 2xx answer), by type.
    delivered: Mutex<BTreeMap<String, u64>>,
    /// The location [`AppleSim::reset`] returns to.
    checkpoint: Mutex<Option<Location>>,
}

/// A change another tool makes to the location (see [`AppleSim::between_assignment_pages`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SimEdit {
    /// (adamId, pricingParam, holder) gains a license.
    Assign(String, String, SimHolder),
    /// (adamId, pricingParam, holder) loses its license.
    Revoke(String, String, SimHolder),
}

/// Called after each `/assignments` page is served with the page index; its edits are applied
/// before the next request, as another tool writing during a listing would.
#[derive(Clone)]
struct ListingHook(Arc<dyn Fn(usize) -> Vec<SimEdit> + Send + Sync>);

impl std::fmt::Debug for ListingHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ListingHook")
    }
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, Location> {
        self.location.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A running Apple VPP simulator. Dropping it stops the server.
#[derive(Debug)]
pub struct AppleSim {
    inner: Arc<Inner>,
    running: Running,
}

/// The outer base64 sToken for a location token and expiry (§2.1, P-01).
pub fn make_stoken(token: &str, expires: DateTime<Utc>, org_name: &str) -> String {
    let json = json!({
        "token": token,
        "expDate": expires.format("%Y-%m-%dT%H:%M:%S%z").to_string(),
        "orgName": org_name,
    });
    base64::engine::general_purpose::STANDARD.encode(json.to_string())
}

impl AppleSim {
    /// Starts a simulator seeded with `seed` on a fresh loopback port (plain HTTP); it serves until dropped.
    pub async fn start(seed: AppleSeed, config: AppleSimConfig) -> std::io::Result<Self> {
        AppleSim::start_on(seed, config, &Listen::default()).await
    }

    /// Starts serving as `listen` says (a port, HTTPS).
    pub async fn start_on(
        seed: AppleSeed,
        config: AppleSimConfig,
        listen: &Listen,
    ) -> std::io::Result<Self> {
        let mut location = Location {
            token: "c2ltdWxhdGVkLWxvY2F0aW9uLXRva2Vu".into(),
            revoked: BTreeSet::new(),
            expires: config.token_expires,
            org_name: seed.org_name,
            location_name: seed.location_name,
            uid: "2049025000431439".into(),
            mdm_info: None,
            client_config: Map::new(),
            assets: seed
                .assets
                .into_iter()
                .map(|a| ((a.adam_id.clone(), a.pricing_param.clone()), a))
                .collect(),
            users: seed.users.into_iter().map(|u| (u, 1)).collect(),
            assignments: BTreeMap::new(),
            version: 1,
            assets_version: 1,
            assignments_version: 1,
            users_version: 1,
            events: HashMap::new(),
            order: Mutex::new(None),
        };
        for (adam, pricing, holder) in seed.assignments {
            location.assignments.insert((adam, pricing, holder), 1);
        }
        let inner = Arc::new(Inner {
            config,
            location: Mutex::new(location),
            calls: CallCounter::default(),
            events: AtomicU64::new(1),
            faults: FaultInjector::new(AppleFaultBodies),
            listing_hook: Mutex::new(None),
            base_url: std::sync::OnceLock::new(),
            notifier: reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(5))
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .map_err(std::io::Error::other)?,
            delivered: Mutex::new(BTreeMap::new()),
            checkpoint: Mutex::new(None),
        });
        let running = Running::serve_on(router(inner.clone()), listen).await?;
        inner
            .base_url
            .set(format!("{}/mdm/v2", running.base_url()))
            .expect("set once");
        let sim = AppleSim { inner, running };
        sim.checkpoint();
        Ok(sim)
    }

    /// Remembers the current location (assets, users, assignments) as what [`AppleSim::reset`]
    /// returns to (one is taken at start).
    pub fn checkpoint(&self) {
        let location = self.inner.lock().clone();
        *self
            .inner
            .checkpoint
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = Some(location);
    }

    /// Returns to the last checkpoint (the current token stays valid) and clears the call counts.
    pub fn reset(&self) {
        let saved = self
            .inner
            .checkpoint
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        if let Some(mut saved) = saved {
            let mut location = self.inner.lock();
            saved.token = location.token.clone();
            saved.revoked = std::mem::take(&mut location.revoked);
            *location = saved;
        }
        self.inner.calls.reset();
    }

    /// Per asset (`adamId/pricingParam`): seats and assigned; the number of users.
    pub fn state_summary(&self) -> Value {
        let location = self.inner.lock();
        let mut assets = Map::new();
        for ((adam, pricing), asset) in &location.assets {
            assets.insert(
                format!("{adam}/{pricing}"),
                json!({"total": asset.total, "assigned": location.assigned_count(adam, pricing)}),
            );
        }
        json!({
            "assets": assets,
            "users": location.users.len(),
            "versions": {
                "assets": set_version_id(DataSet::Assets, location.assets_version),
                "assignments": version_id(location.assignments_version),
                "users": set_version_id(DataSet::Users, location.users_version),
            },
        })
    }

    /// The v2 base URL, `http://127.0.0.1:PORT/mdm/v2`.
    pub fn base_url(&self) -> String {
        format!("{}/mdm/v2", self.running.base_url())
    }

    /// Requests served, by route.
    pub fn calls(&self) -> &CallCounter {
        &self.inner.calls
    }

    /// Injects faults into authenticated requests (`None` turns them off).
    pub fn set_faults(&self, faults: Option<Faults>) {
        self.inner.faults.set(faults);
    }

    /// The fault, latency and rate-limit layer of this simulator's API.
    pub fn network(&self) -> &FaultInjector {
        &self.inner.faults
    }

    /// Faults injected so far.
    pub fn faults_injected(&self) -> BTreeMap<Fault, u64> {
        self.inner.faults.injected()
    }

    /// The location's valid sToken.
    pub fn stoken(&self) -> String {
        let l = self.inner.lock();
        make_stoken(&l.token, l.expires, &l.org_name)
    }

    /// Revokes the current token (as downloading a new one does, §2.2) and returns the new one.
    pub fn rotate_token(&self) -> String {
        let mut l = self.inner.lock();
        let rotated = format!("{}-rotated", l.token);
        let old = std::mem::replace(&mut l.token, rotated);
        l.revoked.insert(old);
        make_stoken(&l.token, l.expires, &l.org_name)
    }

    /// Sets mdmInfo as another MDM would (to test ownership conflicts).
    pub fn set_mdm_info(&self, id: &str, name: &str) {
        let mut l = self.inner.lock();
        l.mdm_info = Some(json!({"id": id, "name": name, "metadata": "other"}));
    }

    /// The location's `mdmInfo` (the MDM it is bound to), if one was set.
    pub fn mdm_info(&self) -> Option<Value> {
        self.inner.lock().mdm_info.clone()
    }

    /// Holders of an asset.
    pub fn holders_of(&self, adam_id: &str, pricing: &str) -> Vec<SimHolder> {
        self.inner
            .lock()
            .assignments
            .keys()
            .filter(|(a, p, _)| a == adam_id && p == pricing)
            .map(|(_, _, h)| h.clone())
            .collect()
    }

    /// `(total, assigned)` of an asset.
    pub fn counts(&self, adam_id: &str, pricing: &str) -> Option<(i64, i64)> {
        let l = self.inner.lock();
        let asset = l.assets.get(&(adam_id.to_owned(), pricing.to_owned()))?;
        Some((asset.total, l.assigned_count(adam_id, pricing)))
    }

    /// Status of a registered user (latest record).
    pub fn user_status(&self, client_user_id: &str) -> Option<String> {
        self.inner
            .lock()
            .users
            .iter()
            .rev()
            .find(|(u, _)| u.client_user_id == client_user_id)
            .map(|(u, _)| u.status.clone())
    }

    /// Adds an assignment directly (a change made by another tool).
    pub fn assign_directly(&self, adam_id: &str, pricing: &str, holder: SimHolder) {
        let mut l = self.inner.lock();
        let v = l.bump();
        l.assignments
            .insert((adam_id.into(), pricing.into(), holder), v);
    }

    /// Removes an assignment directly (a change made by another tool).
    pub fn revoke_directly(&self, adam_id: &str, pricing: &str, holder: SimHolder) {
        let mut l = self.inner.lock();
        if l.assignments
            .remove(&(adam_id.into(), pricing.into(), holder))
            .is_some()
        {
            l.bump();
        }
    }

    /// After each `/assignments` page is served, applies the edits `hook(page_index)` returns:
    /// a location that changes while it is listed, as a busy one does (every edit changes the
    /// `versionId`, spec §5). `None` stops it.
    pub fn between_assignment_pages(
        &self,
        hook: Option<Box<dyn Fn(usize) -> Vec<SimEdit> + Send + Sync>>,
    ) {
        *self
            .inner
            .listing_hook
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = hook.map(|h| ListingHook(Arc::from(h)));
    }

    /// Notifications delivered so far (answered 2xx), by `notificationType`.
    pub fn notifications_delivered(&self) -> BTreeMap<String, u64> {
        self.inner
            .delivered
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The `versionId` the assignments listing serves now (it changes with every assignment change).
    pub fn current_version_id(&self) -> String {
        version_id(self.inner.lock().assignments_version)
    }
}

impl Inner {
    /// Runs the listing hook for a page just served.
    fn after_assignment_page(&self, index: usize) {
        let hook = self
            .listing_hook
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let Some(ListingHook(hook)) = hook else {
            return;
        };
        let edits = hook(index);
        let mut l = self.lock();
        for edit in edits {
            let changed = match edit {
                SimEdit::Assign(a, p, h) => {
                    let v = l.version + 1;
                    l.assignments.insert((a, p, h), v).is_none()
                }
                SimEdit::Revoke(a, p, h) => l.assignments.remove(&(a, p, h)).is_some(),
            };
            if changed {
                l.bump();
            }
        }
    }
}

fn router(inner: Arc<Inner>) -> Router {
    let authed = Router::new()
        .route(
            "/mdm/v2/client/config",
            get(get_client_config).post(post_client_config),
        )
        .route("/mdm/v2/assets", get(get_assets))
        .route("/mdm/v2/assignments", get(get_assignments))
        .route("/mdm/v2/assets/associate", post(associate))
        .route("/mdm/v2/assets/disassociate", post(disassociate))
        .route("/mdm/v2/assets/revoke", post(revoke))
        .route("/mdm/v2/status", get(status))
        .route("/mdm/v2/users", get(get_users))
        .route("/mdm/v2/users/create", post(create_users))
        .route("/mdm/v2/users/update", post(update_users))
        .route("/mdm/v2/users/retire", post(retire_users))
        .route_layer(middleware::from_fn_with_state(inner.clone(), require_token))
        .route_layer(middleware::from_fn_with_state(
            inner.faults.clone(),
            crate::faults::inject,
        ));
    Router::new()
        .route("/mdm/v2/service/config", get(service_config))
        .merge(authed)
        .fallback(unexpected)
        // A known path with the wrong method: 9726 / 405 (§3, §7.1).
        .method_not_allowed_fallback(wrong_method)
        .layer(middleware::from_fn_with_state(inner.clone(), count))
        .with_state(inner)
}

fn apple_error(status: StatusCode, number: i64, message: &str) -> Response {
    (
        status,
        Json(json!({"errorNumber": number, "errorMessage": message})),
    )
        .into_response()
}

fn bad(number: i64, message: &str) -> Response {
    apple_error(StatusCode::BAD_REQUEST, number, message)
}

async fn count(State(inner): State<Arc<Inner>>, request: Request, next: Next) -> Response {
    let route = match request.extensions().get::<MatchedPath>() {
        Some(p) => format!("{} {}", request.method(), p.as_str()),
        None => format!("{} {} (unmatched)", request.method(), request.uri().path()),
    };
    inner.calls.record(&route);
    next.run(request).await
}

async fn wrong_method(method: axum::http::Method) -> Response {
    apple_error(
        StatusCode::METHOD_NOT_ALLOWED,
        9726,
        &format!("The HTTP method {method} is not supported."),
    )
}

async fn unexpected(method: axum::http::Method, uri: axum::http::Uri) -> Response {
    apple_error(
        StatusCode::NOT_FOUND,
        9634,
        &format!(
            "The requested service is no longer available (simulator: no route for {method} {})",
            uri.path()
        ),
    )
}

async fn require_token(State(inner): State<Arc<Inner>>, request: Request, next: Next) -> Response {
    let header = request
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let Some(outer) = header.strip_prefix("Bearer ").filter(|t| !t.is_empty()) else {
        return apple_error(
            StatusCode::UNAUTHORIZED,
            9722,
            "The Authorization header is not in the format Bearer {sToken}.",
        );
    };
    #[derive(Deserialize)]
    struct Decoded {
        token: String,
        #[serde(rename = "expDate")]
        exp_date: String,
    }
    let decoded: Option<Decoded> = base64::engine::general_purpose::STANDARD
        .decode(outer.trim())
        .ok()
        .and_then(|raw| serde_json::from_slice(&raw).ok());
    let invalid = || {
        let status = if inner.config.invalid_token_http_200 {
            StatusCode::OK
        } else {
            StatusCode::UNAUTHORIZED
        };
        apple_error(status, 9622, "Invalid authentication token")
    };
    let Some(decoded) = decoded else {
        return invalid();
    };
    {
        let l = inner.lock();
        if l.revoked.contains(&decoded.token) {
            return apple_error(
                StatusCode::UNAUTHORIZED,
                9625,
                "The server has revoked the sToken.",
            );
        }
        if decoded.token != l.token {
            return invalid();
        }
        let expired = DateTime::parse_from_str(&decoded.exp_date, "%Y-%m-%dT%H:%M:%S%z")
            .map(|d| d <= Utc::now())
            .unwrap_or(true)
            || l.expires <= Utc::now();
        if expired {
            return apple_error(StatusCode::UNAUTHORIZED, 9621, "The sToken has expired.");
        }
    }
    // POST bodies must be `Content-Type: application/json`: else 9727 / 415 (§3, §7.1).
    if request.method() == axum::http::Method::POST {
        let json = request
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"));
        if !json {
            return apple_error(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                9727,
                "The Content-Type must be application/json.",
            );
        }
    }
    next.run(request).await
}

/// Adds the fields every v2 response carries (§3).
fn envelope(inner: &Inner, l: &Location, mut body: Value) -> Response {
    if let Value::Object(m) = &mut body {
        envelope_fields(inner, l, m);
    }
    Json(body).into_response()
}

fn envelope_fields(inner: &Inner, l: &Location, m: &mut Map<String, Value>) {
    m.insert("uId".into(), json!(l.uid));
    if inner.config.always_send_expiration || l.expires - Utc::now() <= Duration::days(15) {
        m.insert(
            "tokenExpirationDate".into(),
            json!(l.expires.format("%Y-%m-%dT%H:%M:%S%z").to_string()),
        );
    }
    if let Some(info) = &l.mdm_info {
        m.insert("mdmInfo".into(), info.clone());
    }
}

const LIMITS: &[(&str, i64)] = &[
    ("maxAssets", 25),
    ("maxUsers", 100),
    ("maxNotificationLength", 512),
    ("maxRevokeClientUserIds", 100),
    ("maxClientUserIds", 1000),
    ("maxSerialNumbers", 1000),
    ("maxRevokeSerialNumbers", 100),
    ("maxSubscriptions", 25),
    ("maxSubscriptionClientUserIds", 1000),
    ("maxMdmNameLength", 100),
    ("maxMdmMetadataLength", 255),
    ("maxMdmIdLength", 100),
];

fn limit(name: &str) -> usize {
    LIMITS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, v)| *v as usize)
        .unwrap_or(0)
}

/// Every documented error number (§7.1, §7.2) with its message.
const ERROR_CODES: &[(i64, &str)] = &[
    (9601, "Login required."),
    (9602, "Invalid argument."),
    (9603, "Internal error."),
    (9609, "Unable to find the registered user."),
    (9610, "The license was not found."),
    (9616, "The user has already been retired."),
    (9618, "The user has already been associated."),
    (
        9621,
        "The token has expired. You need to generate a new token online using your organization's account at either school.apple.com or business.apple.com.",
    ),
    (9622, "Invalid authentication token."),
    (9625, "The server has revoked the sToken."),
    (9632, "The request exceeds the maximum number of items."),
    (9634, "The requested service is no longer available."),
    (9635, "Unable to associate the Apple Account."),
    (
        9637,
        "This operation isn't allowed for facilitator accounts.",
    ),
    (9641, "The Apple Account is already associated."),
    (9644, "The service is in maintenance mode."),
    (9646, "There are too many requests for this organization."),
    (9647, "This operation isn't supported for legacy tokens."),
    (
        9650,
        "The page index must be greater than 0 and less than the total number of pages.",
    ),
    (9700, "Too many assets."),
    (9701, "Too many clientUserIds."),
    (9702, "Too many serialNumbers."),
    (9703, "Duplicate assets."),
    (9704, "Duplicate clientUserIds."),
    (9705, "Duplicate serialNumbers."),
    (9706, "The asset isn't revocable."),
    (9707, "The asset isn't device-assignable."),
    (9708, "The eventId wasn't found."),
    (9709, "There are not enough licenses available."),
    (
        9710,
        "The notification URL and authentication token must both be given.",
    ),
    (
        9711,
        "The notification URL or authentication token is too long.",
    ),
    (9712, "The notification URL isn't a valid HTTPS URL."),
    (9713, "The mdmInfo metadata is too long."),
    (9714, "Too many users."),
    (9715, "Duplicate users."),
    (
        9716,
        "A registered user with that clientUserId already exists.",
    ),
    (9717, "The email is invalid."),
    (9718, "The request must include an asset."),
    (
        9719,
        "The request must include clientUserIds or serialNumbers.",
    ),
    (9720, "The request must include users."),
    (9721, "The versionId is invalid."),
    (
        9722,
        "The Authorization header is not in the format Bearer {sToken}.",
    ),
    (9723, "The mdmInfo must include id, name and metadata."),
    (9724, "The mdmInfo id is too long."),
    (9725, "The mdmInfo name is too long."),
    (9726, "The HTTP method is not supported."),
    (9727, "The Content-Type must be application/json."),
    (9728, "The provided notification URL is unreachable."),
    (9729, "The service is temporarily unavailable."),
];

/// `GET service/config` (§3.1, P-10): the API's URLs point at this server; the invitation and
/// content-metadata URLs, which it does not serve, stay Apple's.
async fn service_config(State(inner): State<Arc<Inner>>) -> Response {
    let base = inner.base_url.get().cloned().unwrap_or_default();
    let limits: Map<String, Value> = LIMITS
        .iter()
        .map(|(k, v)| ((*k).into(), json!(v)))
        .collect();
    let error_codes: Vec<Value> = ERROR_CODES
        .iter()
        .map(|(n, m)| json!({"errorNumber": n, "errorMessage": m}))
        .collect();
    Json(json!({
        "errorCodes": error_codes,
        "limits": limits,
        "notificationTypes": ["ASSET_MANAGEMENT", "USER_MANAGEMENT", "USER_ASSOCIATED", "ASSET_COUNT"],
        "urls": {
            "invitationEmail": "https://buy.itunes.apple.com/WebObjects/MZFinance.woa/wa/associateVPPUserWithITSAccount?inviteCode=%25inviteCode%25&mt=8",
            "contentMetadataLookup": "https://uclient-api.itunes.apple.com/WebObjects/MZStorePlatform.woa/wa/lookup",
            "clientConfig": format!("{base}/client/config"),
            "getAssets": format!("{base}/assets"),
            "getAssignments": format!("{base}/assignments"),
            "associateAssets": format!("{base}/assets/associate"),
            "disassociateAssets": format!("{base}/assets/disassociate"),
            "revokeAssets": format!("{base}/assets/revoke"),
            "eventStatus": format!("{base}/status"),
            "getUsers": format!("{base}/users"),
            "createUsers": format!("{base}/users/create"),
            "updateUsers": format!("{base}/users/update"),
            "retireUsers": format!("{base}/users/retire"),
        },
    }))
    .into_response()
}

/// The stored notification settings as `ClientConfigResponse` names them (§3.2): the request's
/// `notificationTypes` are answered as `subscribedNotificationTypes`.
fn notification_fields(l: &Location, body: &mut Value) {
    for (k, v) in &l.client_config {
        let key = if k == "notificationTypes" {
            "subscribedNotificationTypes"
        } else {
            k.as_str()
        };
        body[key] = v.clone();
    }
}

async fn get_client_config(State(inner): State<Arc<Inner>>) -> Response {
    let l = inner.lock();
    let mut body = json!({
        "countryISO2ACode": "US",
        "defaultPlatform": "volumestore",
        "locationName": l.location_name,
        "subscribedNotificationTypes": [],
        "websiteURL": "https://business.apple.com",
    });
    notification_fields(&l, &mut body);
    envelope(&inner, &l, body)
}

async fn post_client_config(State(inner): State<Arc<Inner>>, body: Bytes) -> Response {
    let Ok(request) = serde_json::from_slice::<Value>(&body) else {
        return bad(9602, "Invalid argument");
    };
    // Everything is checked before anything is stored: a rejected request changes nothing.
    let mut mdm_info = None;
    if let Some(info) = request.get("mdmInfo") {
        let field = |k: &str| info.get(k).and_then(Value::as_str).map(str::to_owned);
        let (Some(id), Some(name), Some(metadata)) =
            (field("id"), field("name"), field("metadata"))
        else {
            return bad(9723, "The mdmInfo must include id, name and metadata.");
        };
        if id.chars().count() > limit("maxMdmIdLength") {
            return bad(9724, "The mdmInfo id is too long.");
        }
        if name.chars().count() > limit("maxMdmNameLength") {
            return bad(9725, "The mdmInfo name is too long.");
        }
        if metadata.chars().count() > limit("maxMdmMetadataLength") {
            return bad(9713, "The mdmInfo metadata is too long.");
        }
        mdm_info = Some(json!({"id": id, "name": name, "metadata": metadata}));
    }
    // Notifications (§3.3): URL and token together (9710), within maxNotificationLength (9711),
    // HTTPS (9712), and reachable: a TEST_NOTIFICATION must be accepted (9728).
    let url = request.get("notificationUrl").and_then(Value::as_str);
    let token = request.get("notificationAuthToken").and_then(Value::as_str);
    match (url, token) {
        (None, None) => {}
        (Some(url), Some(token)) => {
            let max = limit("maxNotificationLength");
            if url.chars().count() > max || token.chars().count() > max {
                return bad(
                    9711,
                    "The notification URL or authentication token is too long.",
                );
            }
            if !notification_url_allowed(url) {
                return bad(9712, "The notification URL isn't a valid HTTPS URL.");
            }
            let uid = inner.lock().uid.clone();
            let test = json!({
                "notification": {},
                "notificationId": notification_id(&inner),
                "notificationType": "TEST_NOTIFICATION",
                "uId": uid,
            });
            if !deliver(&inner, url, token, &test).await {
                return bad(9728, "The provided notification URL is unreachable.");
            }
        }
        _ => {
            return bad(
                9710,
                "The notification URL and authentication token must both be given.",
            );
        }
    }
    let mut l = inner.lock();
    if let Some(info) = mdm_info {
        l.mdm_info = Some(info);
    }
    for key in [
        "notificationUrl",
        "notificationAuthToken",
        "notificationTypes",
    ] {
        if let Some(v) = request.get(key) {
            l.client_config.insert(key.into(), v.clone());
        }
    }
    // The response echoes the configuration (§3.3, P-12); the auth token is not repeated.
    let mut body = json!({"subscribedNotificationTypes": []});
    notification_fields(&l, &mut body);
    if let Value::Object(m) = &mut body {
        m.remove("notificationAuthToken");
    }
    envelope(&inner, &l, body)
}

/// Apple takes HTTPS only (9712). The simulator also takes `http://` on a loopback address, so a
/// test's receiver needs no certificate (a deviation: nothing outside the machine is reached).
fn notification_url_allowed(url: &str) -> bool {
    let Ok(parsed) = url.parse::<axum::http::Uri>() else {
        return false;
    };
    let host = parsed.host().unwrap_or_default();
    match parsed.scheme_str() {
        Some("https") => !host.is_empty(),
        Some("http") => {
            host == "localhost"
                || host
                    .trim_start_matches('[')
                    .trim_end_matches(']')
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback())
        }
        _ => false,
    }
}

fn notification_id(inner: &Inner) -> String {
    let n = inner.events.fetch_add(1, Ordering::SeqCst);
    format!("{n:08x}-5e1f-4c3f-9aec-{n:012x}")
}

/// POSTs one notification with `Authorization: Bearer <notificationAuthToken>`; a 2xx answer is
/// delivered (§6.2).
async fn deliver(inner: &Inner, url: &str, token: &str, body: &Value) -> bool {
    let ok = inner
        .notifier
        .post(url)
        .bearer_auth(token)
        .json(body)
        .send()
        .await
        .is_ok_and(|r| r.status().is_success());
    if ok {
        let kind = body["notificationType"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        *inner
            .delivered
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(kind)
            .or_default() += 1;
    }
    ok
}

/// Sends an event's notifications if the MDM subscribed to their type: at most 100 items each,
/// best effort, three attempts (Apple: over 1–5 minutes; here a fraction of a second), in the
/// background (§6.2).
fn notify_event(
    inner: &Arc<Inner>,
    l: &Location,
    event_id: &str,
    event_type: &str,
    failed: bool,
    items: Vec<Value>,
) {
    let (kind, key) = match event_type {
        "ASSOCIATE" | "DISASSOCIATE" | "REVOKE" => ("ASSET_MANAGEMENT", "assignments"),
        _ => ("USER_MANAGEMENT", "users"),
    };
    let subscribed = l
        .client_config
        .get("notificationTypes")
        .and_then(Value::as_array)
        .is_some_and(|types| types.iter().any(|t| t == kind));
    let (Some(url), Some(token)) = (
        l.client_config
            .get("notificationUrl")
            .and_then(Value::as_str),
        l.client_config
            .get("notificationAuthToken")
            .and_then(Value::as_str),
    ) else {
        return;
    };
    if !subscribed {
        return;
    }
    let chunks: Vec<Vec<Value>> = if items.is_empty() {
        vec![Vec::new()]
    } else {
        items.chunks(100).map(<[Value]>::to_vec).collect()
    };
    for chunk in chunks {
        let body = json!({
            "notification": {
                "eventId": event_id,
                "result": if failed { "FAILURE" } else { "SUCCESS" },
                "type": event_type,
                key: chunk,
            },
            "notificationId": notification_id(inner),
            "notificationType": kind,
            "uId": l.uid,
        });
        let (inner, url, token) = (inner.clone(), url.to_owned(), token.to_owned());
        tokio::spawn(async move {
            for attempt in 0..3u64 {
                if deliver(&inner, &url, &token, &body).await {
                    return;
                }
                tokio::time::sleep(std::time::Duration::from_millis(200 * (attempt + 1))).await;
            }
        });
    }
}

fn page_of<T: Clone>(
    items: &[T],
    page_index: usize,
    page_size: usize,
) -> Result<(Vec<T>, usize), Response> {
    let total_pages = items.len().div_ceil(page_size);
    if page_index > 0 && page_index >= total_pages {
        return Err(bad(
            9650,
            "The page index must be greater than 0 and less than the total number of pages.",
        ));
    }
    Ok((
        items
            .iter()
            .skip(page_index * page_size)
            .take(page_size)
            .cloned()
            .collect(),
        total_pages,
    ))
}

/// A listing page (§3, §4): its items, typed (no `serde_json::Value` per record), under `key`,
/// and the page's other fields (paging, version, the envelope) as a JSON object. Serialized as
/// one object with sorted keys, byte for byte what a `json!` body built with the items in it
/// serializes to (`tests::listing_pages_match_the_json_built_ones`).
struct Page<T> {
    key: &'static str,
    items: Vec<T>,
    rest: Map<String, Value>,
}

impl<T: Serialize> Serialize for Page<T> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(Some(self.rest.len() + 1))?;
        let mut items = Some(&self.items);
        for (k, v) in &self.rest {
            if items.is_some() && self.key < k.as_str() {
                map.serialize_entry(self.key, items.take().expect("checked"))?;
            }
            map.serialize_entry(k, v)?;
        }
        if let Some(items) = items {
            map.serialize_entry(self.key, items)?;
        }
        map.end()
    }
}

/// A listing page with the envelope's fields.
fn paged<T: Serialize>(
    inner: &Inner,
    l: &Location,
    key: &'static str,
    items: Vec<T>,
    page_index: usize,
    total_pages: usize,
    version_id: String,
) -> Response {
    let mut rest = Map::new();
    rest.insert("currentPageIndex".into(), json!(page_index));
    rest.insert("size".into(), json!(items.len()));
    rest.insert("totalPages".into(), json!(total_pages));
    rest.insert("versionId".into(), json!(version_id));
    if page_index + 1 < total_pages {
        rest.insert("nextPageIndex".into(), json!(page_index + 1));
    }
    envelope_fields(inner, l, &mut rest);
    Json(Page { key, items, rest }).into_response()
}

fn param<'a>(q: &'a HashMap<String, String>, key: &str) -> Option<&'a str> {
    q.get(key).map(String::as_str)
}

fn page_index(q: &HashMap<String, String>) -> Result<usize, Response> {
    match param(q, "pageIndex") {
        None => Ok(0),
        Some(s) => s.parse::<usize>().map_err(|_| {
            bad(
                9650,
                "The page index must be greater than 0 and less than the total number of pages.",
            )
        }),
    }
}

fn asset_json(a: &SimAsset, assigned: i64) -> Value {
    json!({
        "adamId": a.adam_id,
        "pricingParam": a.pricing_param,
        "productType": a.product_type,
        "assignedCount": assigned,
        "availableCount": (a.total - assigned).max(0),
        "retiredCount": 0,
        "totalCount": a.total,
        "deviceAssignable": a.device_assignable,
        "revocable": a.revocable,
        "supportedPlatforms": a.platforms,
    })
}

async fn get_assets(
    State(inner): State<Arc<Inner>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let index = match page_index(&q) {
        Ok(i) => i,
        Err(r) => return r,
    };
    let l = inner.lock();
    let bool_param = |k: &str| param(&q, k).map(|v| v == "true");
    let int_param = |k: &str| param(&q, k).and_then(|v| v.parse::<i64>().ok());
    let matching: Vec<Value> = l
        .assets
        .values()
        .filter(|a| param(&q, "adamId").is_none_or(|v| v == a.adam_id))
        .filter(|a| param(&q, "pricingParam").is_none_or(|v| v == a.pricing_param))
        .filter(|a| param(&q, "productType").is_none_or(|v| v == a.product_type))
        .filter(|a| bool_param("deviceAssignable").is_none_or(|v| v == a.device_assignable))
        .filter(|a| bool_param("revocable").is_none_or(|v| v == a.revocable))
        .filter(|a| {
            let assigned = l.assigned_count(&a.adam_id, &a.pricing_param);
            let available = a.total - assigned;
            int_param("minAvailableCount").is_none_or(|m| available >= m)
                && int_param("maxAvailableCount").is_none_or(|m| available <= m)
                && int_param("minAssignedCount").is_none_or(|m| assigned >= m)
                && int_param("maxAssignedCount").is_none_or(|m| assigned <= m)
        })
        .map(|a| asset_json(a, l.assigned_count(&a.adam_id, &a.pricing_param)))
        .collect();
    let (items, total_pages) = match page_of(&matching, index, inner.config.page_size) {
        Ok(p) => p,
        Err(r) => return r,
    };
    paged(
        &inner,
        &l,
        "assets",
        items,
        index,
        total_pages,
        set_version_id(DataSet::Assets, l.assets_version),
    )
}

async fn get_assignments(
    State(inner): State<Arc<Inner>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let response = assignments_page(&inner, &q);
    if response.status().is_success() {
        inner.after_assignment_page(page_index(&q).unwrap_or(0));
    }
    response
}

fn assignments_page(inner: &Inner, q: &HashMap<String, String>) -> Response {
    let index = match page_index(q) {
        Ok(i) => i,
        Err(r) => return r,
    };
    let l = inner.lock();
    let since = match param(q, "sinceVersionId") {
        None => None,
        Some(s) => match parse_set_version(DataSet::Assignments, s).filter(|v| *v <= l.version) {
            Some(v) => Some(v),
            None => return bad(9721, "The versionId is invalid."),
        },
    };
    let unfiltered = [
        "adamId",
        "pricingParam",
        "clientUserId",
        "serialNumber",
        "sinceVersionId",
    ]
    .iter()
    .all(|k| param(q, k).is_none());
    if unfiltered {
        // A page of an unfiltered listing is a slice of the cached order (rebuilt on change).
        let order = {
            let mut cache = l.order.lock().unwrap_or_else(|p| p.into_inner());
            match &*cache {
                Some((v, order))
                    if *v == l.assignments_version && order.len() == l.assignments.len() =>
                {
                    order.clone()
                }
                _ => {
                    let order = Arc::new(l.assignments.keys().cloned().collect::<Vec<_>>());
                    *cache = Some((l.assignments_version, order.clone()));
                    order
                }
            }
        };
        let (keys, total_pages) = match page_of(&order, index, inner.config.page_size) {
            Ok(p) => p,
            Err(r) => return r,
        };
        let items: Vec<AssignmentItem<'_>> = keys.iter().map(AssignmentItem::of).collect();
        return paged(
            inner,
            &l,
            "assignments",
            items,
            index,
            total_pages,
            version_id(l.assignments_version),
        );
    }
    // References first; only the requested page is rendered as JSON.
    let matching: Vec<&(String, String, SimHolder)> = l
        .assignments
        .iter()
        .filter(|((a, p, h), v)| {
            param(q, "adamId").is_none_or(|x| x == a)
                && param(q, "pricingParam").is_none_or(|x| x == p)
                && param(q, "clientUserId").is_none_or(|x| *h == SimHolder::User(x.to_owned()))
                && param(q, "serialNumber").is_none_or(|x| *h == SimHolder::Serial(x.to_owned()))
                && since.is_none_or(|s| **v > s)
        })
        .map(|(key, _)| key)
        .collect();
    let (keys, total_pages) = match page_of(&matching, index, inner.config.page_size) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let items: Vec<AssignmentItem<'_>> = keys.into_iter().map(AssignmentItem::of).collect();
    paged(
        inner,
        &l,
        "assignments",
        items,
        index,
        total_pages,
        version_id(l.assignments_version),
    )
}

/// A `ResponseUser` (§4).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct UserItem<'a> {
    client_user_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    email: Option<&'a str>,
    /// An associated user carries the hash of its Apple Account (§4, ResponseUser).
    #[serde(skip_serializing_if = "Option::is_none")]
    id_hash: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    invite_code: Option<String>,
    status: &'a str,
}

impl<'a> UserItem<'a> {
    fn of(u: &'a SimVppUser) -> Self {
        UserItem {
            client_user_id: &u.client_user_id,
            email: u.email.as_deref(),
            id_hash: (u.status == "Associated").then(|| id_hash(&u.client_user_id)),
            invite_code: (u.status == "Registered")
                .then(|| format!("{:032x}", u.client_user_id.len() * 7919)),
            status: &u.status,
        }
    }
}

fn user_json(u: &SimVppUser) -> Value {
    serde_json::to_value(UserItem::of(u)).expect("serializable")
}

/// A stable stand-in for the hash of a user's Apple Account (base64 of 20 bytes, like Apple's).
fn id_hash(client_user_id: &str) -> String {
    use std::hash::{Hash, Hasher};
    let mut bytes = Vec::with_capacity(24);
    for salt in 0u8..3 {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        (salt, client_user_id).hash(&mut h);
        bytes.extend_from_slice(&h.finish().to_be_bytes());
    }
    bytes.truncate(20);
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// An assignment (§4): the holder is a user or a device.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct AssignmentItem<'a> {
    adam_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_user_id: Option<&'a str>,
    pricing_param: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    serial_number: Option<&'a str>,
}

impl<'a> AssignmentItem<'a> {
    fn of((a, p, h): &'a (String, String, SimHolder)) -> Self {
        let (client_user_id, serial_number) = match h {
            SimHolder::User(u) => (Some(u.as_str()), None),
            SimHolder::Serial(s) => (None, Some(s.as_str())),
        };
        AssignmentItem {
            adam_id: a,
            client_user_id,
            pricing_param: p,
            serial_number,
        }
    }
}

fn assignment_json(key: &(String, String, SimHolder)) -> Value {
    serde_json::to_value(AssignmentItem::of(key)).expect("serializable")
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ManageRequest {
    #[serde(default)]
    assets: Vec<AssetRef>,
    #[serde(default)]
    client_user_ids: Vec<String>,
    #[serde(default)]
    serial_numbers: Vec<String>,
}

#[derive(Deserialize, Clone, PartialEq, Eq, Hash)]
#[serde(rename_all = "camelCase")]
struct AssetRef {
    adam_id: String,
    #[serde(default)]
    pricing_param: Option<String>,
}

fn has_duplicates<T: std::hash::Hash + Eq>(v: &[T]) -> bool {
    let mut seen = std::collections::HashSet::new();
    !v.iter().all(|x| seen.insert(x))
}

/// Synchronous checks of associate/disassociate (§3.6): nothing is processed when one fails.
fn validate_manage(
    body: &[u8],
    l: &Location,
    associate: bool,
) -> Result<(ManageRequest, Vec<(String, String)>), Response> {
    let request: ManageRequest =
        serde_json::from_slice(body).map_err(|_| bad(9602, "Invalid argument"))?;
    if request.assets.is_empty() {
        return Err(bad(9718, "The request must include at least one asset."));
    }
    if request.client_user_ids.is_empty() && request.serial_numbers.is_empty() {
        return Err(bad(
            9719,
            "The request must include clientUserIds or serialNumbers.",
        ));
    }
    if request.assets.len() > limit("maxAssets") {
        return Err(bad(9700, "Too many assets."));
    }
    if request.client_user_ids.len() > limit("maxClientUserIds") {
        return Err(bad(9701, "Too many clientUserIds."));
    }
    if request.serial_numbers.len() > limit("maxSerialNumbers") {
        return Err(bad(9702, "Too many serialNumbers."));
    }
    if has_duplicates(&request.assets) {
        return Err(bad(9703, "Duplicate assets."));
    }
    if has_duplicates(&request.client_user_ids) {
        return Err(bad(9704, "Duplicate clientUserIds."));
    }
    if has_duplicates(&request.serial_numbers) {
        return Err(bad(9705, "Duplicate serialNumbers."));
    }
    let mut keys = Vec::new();
    for a in &request.assets {
        let key = (
            a.adam_id.clone(),
            a.pricing_param.clone().unwrap_or_else(|| "STDQ".into()),
        );
        let Some(asset) = l.assets.get(&key) else {
            return Err(bad(
                9602,
                &format!("Invalid argument: unknown asset {}", a.adam_id),
            ));
        };
        if associate && !request.serial_numbers.is_empty() && !asset.device_assignable {
            return Err(bad(9707, "The asset can't be assigned to a device."));
        }
        if !associate && !asset.revocable {
            return Err(bad(9706, "The asset isn't revocable."));
        }
        keys.push(key);
    }
    Ok((request, keys))
}

fn new_event(
    inner: &Arc<Inner>,
    l: &mut Location,
    event_type: &'static str,
    requested: u64,
    failures: BTreeMap<i64, (String, Value)>,
    items: Vec<Value>,
) -> Response {
    let failed: u64 = failures
        .values()
        .map(|(_, info)| info["count"].as_u64().unwrap_or(0))
        .sum();
    let id = format!(
        "{:08x}-8b2e-4c3f-91d9-{:012x}",
        inner.events.fetch_add(1, Ordering::SeqCst),
        l.version
    );
    l.events.insert(
        id.clone(),
        Event {
            event_type,
            polls_left: inner.config.polls_until_complete,
            requested,
            completed: requested - failed,
            failures,
        },
    );
    notify_event(inner, l, &id, event_type, failed > 0, items);
    envelope(inner, l, json!({"eventId": id}))
}

/// Records a failed (asset, holder) pair under its error number.
fn fail(
    failures: &mut BTreeMap<i64, (String, Value)>,
    number: i64,
    message: &str,
    asset: &(String, String),
    holder: &SimHolder,
) {
    let entry = failures.entry(number).or_insert_with(|| {
        (
            message.to_owned(),
            json!({"assets": [], "clientUserIds": [], "serialNumbers": [], "count": 0}),
        )
    });
    let info = &mut entry.1;
    let asset_json = json!({"adamId": asset.0, "pricingParam": asset.1});
    if !info["assets"]
        .as_array()
        .is_some_and(|a| a.contains(&asset_json))
    {
        info["assets"]
            .as_array_mut()
            .expect("array")
            .push(asset_json);
    }
    let (key, id) = match holder {
        SimHolder::User(u) => ("clientUserIds", u),
        SimHolder::Serial(s) => ("serialNumbers", s),
    };
    if !info[key].as_array().is_some_and(|a| a.contains(&json!(id))) {
        info[key].as_array_mut().expect("array").push(json!(id));
    }
    info["count"] = json!(info["count"].as_u64().unwrap_or(0) + 1);
}

fn holders_of(request: &ManageRequest) -> Vec<SimHolder> {
    request
        .client_user_ids
        .iter()
        .map(|u| SimHolder::User(u.clone()))
        .chain(
            request
                .serial_numbers
                .iter()
                .map(|s| SimHolder::Serial(s.clone())),
        )
        .collect()
}

async fn associate(State(inner): State<Arc<Inner>>, body: Bytes) -> Response {
    let mut l = inner.lock();
    let (request, assets) = match validate_manage(&body, &l, true) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let holders = holders_of(&request);
    let mut failures = BTreeMap::new();
    let mut done = Vec::new();
    for asset in &assets {
        for holder in &holders {
            if let SimHolder::User(u) = holder {
                if !l.user_active(u) {
                    fail(
                        &mut failures,
                        9609,
                        "Registered user not found",
                        asset,
                        holder,
                    );
                    continue;
                }
            }
            let key = (asset.0.clone(), asset.1.clone(), holder.clone());
            if l.assignments.contains_key(&key) {
                done.push(assignment_json(&key));
                continue; // Already assigned: a completed no-op (assumption).
            }
            let total = l.assets[asset].total;
            if l.assigned_count(&asset.0, &asset.1) >= total {
                fail(
                    &mut failures,
                    9709,
                    "There are not enough licenses available.",
                    asset,
                    holder,
                );
                continue;
            }
            let v = l.bump();
            done.push(assignment_json(&key));
            l.assignments.insert(key, v);
        }
    }
    let requested = (assets.len() * holders.len()) as u64;
    new_event(&inner, &mut l, "ASSOCIATE", requested, failures, done)
}

async fn disassociate(State(inner): State<Arc<Inner>>, body: Bytes) -> Response {
    let mut l = inner.lock();
    let (request, assets) = match validate_manage(&body, &l, false) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let holders = holders_of(&request);
    let mut done = Vec::new();
    for asset in &assets {
        for holder in &holders {
            let key = (asset.0.clone(), asset.1.clone(), holder.clone());
            done.push(assignment_json(&key));
            if l.assignments.remove(&key).is_some() {
                l.bump();
            }
        }
    }
    let requested = (assets.len() * holders.len()) as u64;
    new_event(
        &inner,
        &mut l,
        "DISASSOCIATE",
        requested,
        BTreeMap::new(),
        done,
    )
}

async fn revoke(State(inner): State<Arc<Inner>>, body: Bytes) -> Response {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct RevokeRequest {
        #[serde(default)]
        client_user_ids: Vec<String>,
        #[serde(default)]
        serial_numbers: Vec<String>,
    }
    let Ok(request) = serde_json::from_slice::<RevokeRequest>(&body) else {
        return bad(9602, "Invalid argument");
    };
    if request.client_user_ids.is_empty() && request.serial_numbers.is_empty() {
        return bad(
            9719,
            "The request must include clientUserIds or serialNumbers.",
        );
    }
    if request.client_user_ids.len() > limit("maxRevokeClientUserIds") {
        return bad(9701, "Too many clientUserIds.");
    }
    if request.serial_numbers.len() > limit("maxRevokeSerialNumbers") {
        return bad(9702, "Too many serialNumbers.");
    }
    let mut l = inner.lock();
    let holders: BTreeSet<SimHolder> = request
        .client_user_ids
        .into_iter()
        .map(SimHolder::User)
        .chain(request.serial_numbers.into_iter().map(SimHolder::Serial))
        .collect();
    let revocable: BTreeSet<(String, String)> = l
        .assets
        .iter()
        .filter(|(_, a)| a.revocable)
        .map(|(k, _)| k.clone())
        .collect();
    let mut done = Vec::new();
    l.assignments.retain(|key, _| {
        let (a, p, h) = key;
        let gone = holders.contains(h) && revocable.contains(&(a.clone(), p.clone()));
        if gone {
            done.push(assignment_json(key));
        }
        !gone
    });
    if !done.is_empty() {
        l.bump();
    }
    let requested = holders.len() as u64;
    new_event(&inner, &mut l, "REVOKE", requested, BTreeMap::new(), done)
}

async fn status(
    State(inner): State<Arc<Inner>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let mut l = inner.lock();
    let Some(event) = param(&q, "eventId").and_then(|id| l.events.get_mut(id)) else {
        return bad(9708, "The eventId wasn't found.");
    };
    let mut body = json!({"eventType": event.event_type, "numRequested": event.requested});
    if event.polls_left > 0 {
        event.polls_left -= 1;
        body["eventStatus"] = json!("PENDING");
        body["numCompleted"] = json!(0);
    } else {
        body["numCompleted"] = json!(event.completed);
        if event.failures.is_empty() {
            body["eventStatus"] = json!("COMPLETE");
        } else {
            body["eventStatus"] = json!("FAILED");
            let failures: Vec<Value> = event
                .failures
                .iter()
                .map(|(number, (message, info))| {
                    let mut error_info = Map::new();
                    for key in ["assets", "clientUserIds", "serialNumbers"] {
                        if info[key].as_array().is_some_and(|a| !a.is_empty()) {
                            error_info.insert(key.into(), info[key].clone());
                        }
                    }
                    json!({"errorNumber": number, "errorMessage": message, "errorInfo": error_info})
                })
                .collect();
            body["failures"] = json!(failures);
        }
    }
    let l = &*l;
    envelope(&inner, l, body)
}

async fn get_users(
    State(inner): State<Arc<Inner>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let index = match page_index(&q) {
        Ok(i) => i,
        Err(r) => return r,
    };
    let l = inner.lock();
    let since = match param(&q, "sinceVersionId") {
        None => None,
        Some(s) => match parse_set_version(DataSet::Users, s).filter(|v| *v <= l.version) {
            Some(v) => Some(v),
            None => return bad(9721, "The versionId is invalid."),
        },
    };
    // References first; only the requested page is rendered.
    let matching: Vec<&SimVppUser> = l
        .users
        .iter()
        .filter(|(u, v)| {
            (param(&q, "activeOnly") != Some("true") || is_current(&u.status))
                && (param(&q, "retiredOnly") != Some("true") || !is_current(&u.status))
                && param(&q, "clientUserId").is_none_or(|x| x == u.client_user_id)
                && since.is_none_or(|s| *v > s)
        })
        .map(|(u, _)| u)
        .collect();
    let (users, total_pages) = match page_of(&matching, index, inner.config.page_size) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let items: Vec<UserItem<'_>> = users.into_iter().map(UserItem::of).collect();
    paged(
        &inner,
        &l,
        "users",
        items,
        index,
        total_pages,
        set_version_id(DataSet::Users, l.users_version),
    )
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct UsersRequest {
    #[serde(default)]
    users: Vec<RequestUser>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RequestUser {
    client_user_id: String,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    managed_apple_id: Option<String>,
}

fn validate_users(body: &[u8]) -> Result<UsersRequest, Response> {
    let request: UsersRequest =
        serde_json::from_slice(body).map_err(|_| bad(9602, "Invalid argument"))?;
    if request.users.is_empty() {
        return Err(bad(9720, "The request must include users."));
    }
    if request.users.len() > limit("maxUsers") {
        return Err(bad(9714, "Too many users."));
    }
    let ids: Vec<&str> = request
        .users
        .iter()
        .map(|u| u.client_user_id.as_str())
        .collect();
    if has_duplicates(&ids) {
        return Err(bad(9715, "Duplicate users."));
    }
    if request
        .users
        .iter()
        .any(|u| u.email.as_deref().is_some_and(|e| !e.contains('@')))
    {
        return Err(bad(9717, "Invalid email."));
    }
    Ok(request)
}

fn user_failure(
    failures: &mut BTreeMap<i64, (String, Value)>,
    number: i64,
    message: &str,
    id: &str,
) {
    let entry = failures.entry(number).or_insert_with(|| {
        (
            message.to_owned(),
            json!({"assets": [], "clientUserIds": [], "serialNumbers": [], "count": 0}),
        )
    });
    entry.1["clientUserIds"]
        .as_array_mut()
        .expect("array")
        .push(json!(id));
    entry.1["count"] = json!(entry.1["count"].as_u64().unwrap_or(0) + 1);
}

async fn create_users(State(inner): State<Arc<Inner>>, body: Bytes) -> Response {
    let request = match validate_users(&body) {
        Ok(r) => r,
        Err(r) => return r,
    };
    let mut l = inner.lock();
    let mut failures = BTreeMap::new();
    let requested = request.users.len() as u64;
    let mut done = Vec::new();
    for u in request.users {
        if l.user_active(&u.client_user_id) {
            user_failure(
                &mut failures,
                9716,
                "A registered user with that clientUserId already exists.",
                &u.client_user_id,
            );
            continue;
        }
        let v = l.bump_users();
        let status = if u.managed_apple_id.is_some() {
            "Associated"
        } else {
            "Registered"
        };
        let user = SimVppUser {
            client_user_id: u.client_user_id,
            email: u.email,
            status: status.into(),
        };
        done.push(user_json(&user));
        l.users.push((user, v));
    }
    new_event(&inner, &mut l, "CREATE", requested, failures, done)
}

async fn update_users(State(inner): State<Arc<Inner>>, body: Bytes) -> Response {
    let request = match validate_users(&body) {
        Ok(r) => r,
        Err(r) => return r,
    };
    let mut l = inner.lock();
    let mut failures = BTreeMap::new();
    let requested = request.users.len() as u64;
    let mut done = Vec::new();
    for u in request.users {
        let v = l.bump_users();
        match l
            .users
            .iter_mut()
            .rev()
            .find(|(x, _)| x.client_user_id == u.client_user_id && is_current(&x.status))
        {
            Some((user, version)) => {
                if u.email.is_some() {
                    user.email = u.email;
                }
                if u.managed_apple_id.is_some() {
                    user.status = "Associated".into();
                }
                *version = v;
                done.push(user_json(user));
            }
            None => user_failure(
                &mut failures,
                9609,
                "Registered user not found",
                &u.client_user_id,
            ),
        }
    }
    new_event(&inner, &mut l, "UPDATE", requested, failures, done)
}

async fn retire_users(State(inner): State<Arc<Inner>>, body: Bytes) -> Response {
    let request = match validate_users(&body) {
        Ok(r) => r,
        Err(r) => return r,
    };
    let mut l = inner.lock();
    let mut failures = BTreeMap::new();
    let requested = request.users.len() as u64;
    let mut done = Vec::new();
    let revocable: BTreeSet<(String, String)> = l
        .assets
        .iter()
        .filter(|(_, a)| a.revocable)
        .map(|(k, _)| k.clone())
        .collect();
    for u in request.users {
        let v = l.bump_users();
        match l
            .users
            .iter_mut()
            .rev()
            .find(|(x, _)| x.client_user_id == u.client_user_id && is_current(&x.status))
        {
            Some((user, version)) => {
                user.status = "Retired".into();
                *version = v;
                done.push(user_json(user));
                // Retiring releases the user's revocable licenses (§9.3).
                let holder = SimHolder::User(u.client_user_id.clone());
                let before = l.assignments.len();
                l.assignments.retain(|(a, p, h), _| {
                    !(h == &holder && revocable.contains(&(a.clone(), p.clone())))
                });
                if l.assignments.len() != before {
                    l.bump();
                }
            }
            None => user_failure(
                &mut failures,
                9609,
                "Registered user not found",
                &u.client_user_id,
            ),
        }
    }
    new_event(&inner, &mut l, "RETIRE", requested, failures, done)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A listing page with typed items serializes to the same bytes as the `json!` body it
    /// replaced (the old item builders, copied here as they were).
    #[test]
    fn listing_pages_match_the_json_built_ones() {
        fn old_user(u: &SimVppUser) -> Value {
            let mut j = json!({"clientUserId": u.client_user_id, "status": u.status});
            if let Some(e) = &u.email {
                j["email"] = json!(e);
            }
            if u.status == "Registered" {
                j["inviteCode"] = json!(format!("{:032x}", u.client_user_id.len() * 7919));
            }
            if u.status == "Associated" {
                j["idHash"] = json!(id_hash(&u.client_user_id));
            }
            j
        }
        fn old_assignment((a, p, h): &(String, String, SimHolder)) -> Value {
            let mut j = json!({"adamId": a, "pricingParam": p});
            match h {
                SimHolder::User(u) => j["clientUserId"] = json!(u),
                SimHolder::Serial(s) => j["serialNumber"] = json!(s),
            }
            j
        }
        fn check<T: Serialize>(key: &'static str, typed: Vec<T>, old: Vec<Value>, next: bool) {
            let mut body = json!({
                key: old,
                "currentPageIndex": 2,
                "size": typed.len(),
                "totalPages": 4,
                "versionId": "v7",
            });
            let mut rest = Map::new();
            rest.insert("currentPageIndex".into(), json!(2));
            rest.insert("size".into(), json!(typed.len()));
            rest.insert("totalPages".into(), json!(4));
            rest.insert("versionId".into(), json!("v7"));
            if next {
                body["nextPageIndex"] = json!(3);
                rest.insert("nextPageIndex".into(), json!(3));
            }
            for (k, v) in [
                ("uId", json!("4711")),
                ("tokenExpirationDate", json!("2027-01-01T00:00:00+0000")),
                ("mdmInfo", json!({"id": "m", "name": "MDM"})),
            ] {
                body[k] = v.clone();
                rest.insert(k.into(), v);
            }
            let page = Page {
                key,
                items: typed,
                rest,
            };
            assert_eq!(
                serde_json::to_string(&page).unwrap(),
                serde_json::to_string(&body).unwrap()
            );
        }
        let users = [
            SimVppUser::registered("ada", "ada@example.com"),
            SimVppUser {
                client_user_id: "bo".into(),
                email: None,
                status: "Associated".into(),
            },
            SimVppUser {
                client_user_id: "cy \"q\"".into(),
                email: Some("cy@example.com".into()),
                status: "Retired".into(),
            },
        ];
        let assignments = [
            (
                "361309726".to_string(),
                "STDQ".to_string(),
                SimHolder::User("ada".into()),
            ),
            (
                "361309726".to_string(),
                "PLUS".to_string(),
                SimHolder::Serial("DMP1".into()),
            ),
        ];
        for next in [false, true] {
            check(
                "users",
                users.iter().map(UserItem::of).collect(),
                users.iter().map(old_user).collect(),
                next,
            );
            check(
                "assignments",
                assignments.iter().map(AssignmentItem::of).collect(),
                assignments.iter().map(old_assignment).collect(),
                next,
            );
            check::<Value>(
                "assets",
                vec![json!({"adamId": "1"})],
                vec![json!({"adamId": "1"})],
                next,
            );
            check::<Value>("users", Vec::new(), Vec::new(), next);
        }
        for u in &users {
            assert_eq!(user_json(u), old_user(u));
        }
        for a in &assignments {
            assert_eq!(assignment_json(a), old_assignment(a));
        }
    }

    #[test]
    fn version_ids_round_trip() {
        for v in [1, 42, 123_456] {
            assert_eq!(parse_version(&version_id(v)), Some(v));
        }
        assert_eq!(parse_version("658a45d0-5a7b-11eb-b9e4-d782eaed4cfb"), None);
    }

    #[test]
    fn stoken_decodes_like_the_documented_one() {
        let t = make_stoken(
            "abc",
            DateTime::parse_from_rfc3339("2030-11-08T22:33:22Z")
                .unwrap()
                .with_timezone(&Utc),
            "ORG12345",
        );
        let raw = base64::engine::general_purpose::STANDARD.decode(t).unwrap();
        let v: Value = serde_json::from_slice(&raw).unwrap();
        assert_eq!(v["expDate"], "2030-11-08T22:33:22+0000");
        assert_eq!(v["orgName"], "ORG12345");
    }
}
