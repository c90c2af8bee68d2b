//! Salesforce REST API for managed-package licenses (`shared/vendor-specs/salesforce.md`).
//!
//! Routes: `POST /services/oauth2/token` (client credentials, Basic or body; JWT bearer with an
//! RS256 assertion verified against a configured public key: iss/sub/aud/exp, §3),
//! `GET /services/data/` (the versions, 31.0–67.0; older ones answer 410, §2.1), and under
//! `/services/data/vXX.X/`, each also with a trailing slash (what simple-salesforce sends, P-14):
//! `query?q=` and `queryAll?q=` (deleted rows too, `IsDeleted = true`) with `nextRecordsUrl`
//! paging and `Sforce-Query-Options: batchSize` (§2.2), `query/{locator}`, `limits` (P-7),
//! `sobjects/{object}` (info; POST creates), `sobjects/{object}/{id}` (GET, DELETE) and
//! `sobjects/{object}/describe` for PackageLicense, UserPackageLicense, User and Profile (§2.3),
//! `composite/sobjects` POST (create ≤ 200) and DELETE (`?ids=` ≤ 200) with per-record results
//! and `allOrNone` rollback on both (§2.4, P-4, P-5; collections from 42.0), and
//! `composite/sobjects/{object}?ids=&fields=` (collections retrieve). Every data response carries
//! `Sforce-Limit-Info: api-usage=USED/MAX; per-app-api-usage=…` (§2.7, P-8); past the daily limit: 403
//! `REQUEST_LIMIT_EXCEEDED`. Errors are JSON arrays of `{message, errorCode}` (§2.6).
//!
//! Business rules (§1.6): `LICENSE_LIMIT_EXCEEDED` past `AllowedLicenses`, `UsedLicenses` kept in
//! step. Assumed where the spec is uncertain (listed in the adapter README): a duplicate
//! (user, package) is `DUPLICATE_VALUE`; an inactive user is `INACTIVE_OWNER_OR_USER`; an unknown
//! user or package is `INVALID_CROSS_REFERENCE_KEY`; a site license (`-1`) rejects inserts with
//! `FIELD_INTEGRITY_EXCEPTION` (configurable); deleting a deleted row is `ENTITY_IS_DELETED`;
//! more than 200 records is 400 `EXCEEDED_ID_LIMIT`.

pub mod ids;
pub mod soql;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use axum::body::Bytes;
use axum::extract::{MatchedPath, Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::faults::{Fault, FaultInjector, Faults, VendorFaults};
use crate::{CallCounter, Listen, Running};

/// Salesforce's own fault answers (§2.6, §2.8). Salesforce documents no 429; an edge answering
/// 429 is modelled with an error code the daily-quota meaning does not use.
struct SalesforceFaultBodies;

impl VendorFaults for SalesforceFaultBodies {
    fn throttled(&self, retry_after: HeaderValue) -> Response {
        let mut r = rest_error(
            StatusCode::TOO_MANY_REQUESTS,
            "TOO_MANY_REQUESTS",
            "Too many requests; retry later",
        );
        r.headers_mut().insert("Retry-After", retry_after);
        r
    }
    fn server_error(&self) -> Response {
        rest_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "UNKNOWN_EXCEPTION",
            "An unexpected error occurred. Please include this ErrorId if you contact support.",
        )
    }
    fn unavailable(&self) -> Response {
        rest_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "SERVER_UNAVAILABLE",
            "Server is temporarily unavailable",
        )
    }
    fn token_expired(&self) -> Response {
        rest_error(
            StatusCode::UNAUTHORIZED,
            "INVALID_SESSION_ID",
            "Session expired or invalid",
        )
    }
}
use soql::{Cond, Literal, Op, SoqlError};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FieldType {
    Id,
    Ref {
        target: &'static str,
        rel: &'static str,
    },
    Str,
    Bool,
    Int,
    DateTime,
}

type Schema = &'static [(&'static str, FieldType)];

const PACKAGE_LICENSE: Schema = &[
    ("Id", FieldType::Id),
    ("NamespacePrefix", FieldType::Str),
    ("Status", FieldType::Str),
    ("AllowedLicenses", FieldType::Int),
    ("UsedLicenses", FieldType::Int),
    ("ExpirationDate", FieldType::DateTime),
    ("IsProvisioned", FieldType::Bool),
    ("CreatedDate", FieldType::DateTime),
    ("IsDeleted", FieldType::Bool),
];
const USER_PACKAGE_LICENSE: Schema = &[
    ("Id", FieldType::Id),
    (
        "PackageLicenseId",
        FieldType::Ref {
            target: "PackageLicense",
            rel: "PackageLicense",
        },
    ),
    (
        "UserId",
        FieldType::Ref {
            target: "User",
            rel: "User",
        },
    ),
    ("IsRevoked", FieldType::Bool),
    ("CreatedDate", FieldType::DateTime),
    ("IsDeleted", FieldType::Bool),
];
const USER: Schema = &[
    ("Id", FieldType::Id),
    ("Username", FieldType::Str),
    ("Email", FieldType::Str),
    ("Name", FieldType::Str),
    ("IsActive", FieldType::Bool),
    (
        "ProfileId",
        FieldType::Ref {
            target: "Profile",
            rel: "Profile",
        },
    ),
    ("LastLoginDate", FieldType::DateTime),
    ("IsDeleted", FieldType::Bool),
];
const PROFILE: Schema = &[
    ("Id", FieldType::Id),
    ("Name", FieldType::Str),
    ("IsDeleted", FieldType::Bool),
];

const OBJECTS: &[(&str, &str, Schema)] = &[
    ("PackageLicense", "050", PACKAGE_LICENSE),
    ("UserPackageLicense", "051", USER_PACKAGE_LICENSE),
    ("User", "005", USER),
    ("Profile", "00e", PROFILE),
];

fn object(name: &str) -> Option<(&'static str, &'static str, Schema)> {
    OBJECTS
        .iter()
        .copied()
        .find(|(n, _, _)| n.eq_ignore_ascii_case(name))
}

/// A managed package installed in the org.
#[derive(Debug, Clone)]
pub struct SimPackage {
    /// The package's namespace prefix (`NamespacePrefix`).
    pub namespace: String,
    /// `-1` = site license.
    pub allowed: i64,
    /// `Status` (`Active`, or e.g. `Trial`).
    pub status: String,
    /// `ExpirationDate`; `None` = does not expire.
    pub expiration: Option<String>,
}

/// A user of the org.
#[derive(Debug, Clone)]
pub struct SimUser {
    /// `Username` (the login, email-shaped).
    pub username: String,
    /// `Email`.
    pub email: String,
    /// `Name`.
    pub name: String,
    /// `IsActive`.
    pub active: bool,
    /// The profile's name; one `Profile` record per distinct name.
    pub profile: String,
    /// `LastLoginDate` as the API serves it (`2026-01-05T10:00:00.000+0000`); `None` = never.
    pub last_login: Option<String>,
}

/// What the simulated org holds at start.
#[derive(Debug, Clone, Default)]
pub struct SalesforceSeed {
    /// Installed managed packages.
    pub packages: Vec<SimPackage>,
    /// Users of the org.
    pub users: Vec<SimUser>,
    /// (namespace, index into `users`).
    pub assignments: Vec<(String, usize)>,
}

impl SalesforceSeed {
    /// A demo org: packages `acme` (`seats` seats), `crm_tools` (5 seats, 3 used), `sitewide`
    /// (site license), and `users` users, every 10th inactive, profiles "Sales User" / "Standard
    /// User" alternating.
    pub fn demo(users: usize, seats: i64) -> Self {
        let package = |ns: &str, allowed: i64| SimPackage {
            namespace: ns.into(),
            allowed,
            status: "Active".into(),
            expiration: None,
        };
        SalesforceSeed {
            packages: vec![
                package("acme", seats),
                package("crm_tools", 5),
                package("sitewide", -1),
            ],
            users: (0..users)
                .map(|i| SimUser {
                    username: format!("user{i}@example.com.sim"),
                    email: format!("user{i}@example.com"),
                    name: format!("User {i}"),
                    active: i % 10 != 9,
                    profile: if i % 2 == 0 {
                        "Sales User".into()
                    } else {
                        "Standard User".into()
                    },
                    last_login: None,
                })
                .collect(),
            // Users 0, 2 and 4 hold crm_tools, when the org has them.
            assignments: [0, 2, 4]
                .into_iter()
                .filter(|i| *i < users)
                .map(|i| ("crm_tools".into(), i))
                .collect(),
        }
    }
}

/// What a site license does with an insert (§1.6: uncertain; configurable).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SiteLicenseInserts {
    /// Refused with `FIELD_INTEGRITY_EXCEPTION`.
    Reject,
    /// Accepted (the seat is counted like any other).
    Accept,
}

/// Knobs of the simulator.
#[derive(Debug, Clone)]
pub struct SalesforceSimConfig {
    /// The connected app's client id the token endpoint accepts.
    pub client_id: String,
    /// The connected app's client secret it accepts.
    pub client_secret: String,
    /// PEM public key that verifies JWT bearer assertions; `None` disables the flow.
    pub jwt_public_key_pem: Option<String>,
    /// Accepted `aud` values.
    pub jwt_audiences: Vec<String>,
    /// The username client-credentials tokens run as.
    pub run_as_username: Option<String>,
    /// Records per query page unless `Sforce-Query-Options: batchSize` says otherwise.
    pub default_batch_size: usize,
    /// The org's daily API request allowance, reported in `Sforce-Limit-Info: api-usage=USED/MAX`.
    pub daily_api_limit: u64,
    /// Also report the connected app's own usage, `per-app-api-usage=USED/MAX(appName=NAME)`
    /// (REST guide "Limit Info Header", P-8), as a second `;`-separated part.
    pub per_app_api_limit: Option<(String, u64)>,
    /// What a site license does with an insert (default [`SiteLicenseInserts::Reject`]).
    pub site_license_inserts: SiteLicenseInserts,
}

impl Default for SalesforceSimConfig {
    fn default() -> Self {
        SalesforceSimConfig {
            client_id: "sim-consumer-key".into(),
            client_secret: "sim-consumer-secret".into(),
            jwt_public_key_pem: None,
            jwt_audiences: vec![
                "https://login.salesforce.com".into(),
                "https://test.salesforce.com".into(),
            ],
            run_as_username: None,
            default_batch_size: 2000,
            daily_api_limit: 100_000,
            per_app_api_limit: Some(("licensekit-sim".into(), 50_000)),
            site_license_inserts: SiteLicenseInserts::Reject,
        }
    }
}

type Record = Map<String, Value>;

#[derive(Debug, Default, Clone)]
struct Org {
    records: BTreeMap<&'static str, BTreeMap<String, Record>>,
    next_id: u64,
    tokens: HashSet<String>,
    tokens_issued: u64,
    api_used: u64,
    /// Query locator -> the whole result; pages are read by offset, so a locator can be read
    /// again (a client retrying a lost page). The oldest results are dropped past a cap.
    cursors: BTreeMap<String, Arc<Rows>>,
    deleted: HashSet<String>,
    /// Deleted UserPackageLicense rows (IsDeleted = true), which `queryAll` still returns.
    recycled: BTreeMap<String, Record>,
    /// (PackageLicenseId, UserId) -> UserPackageLicense id: the uniqueness Salesforce enforces.
    upl_by_pair: HashMap<(String, String), String>,
    duplicate_attempts: u64,
    queries: Vec<String>,
}

impl Org {
    fn insert(&mut self, object: &'static str, mut record: Record) -> String {
        let prefix = OBJECTS
            .iter()
            .find(|(n, _, _)| *n == object)
            .map(|o| o.1)
            .expect("known object");
        self.next_id += 1;
        let id = ids::make(prefix, self.next_id);
        record.insert("Id".into(), json!(id));
        // Every object has IsDeleted; queryAll shows deleted rows with `true` (REST "QueryAll").
        record.insert("IsDeleted".into(), json!(false));
        self.records
            .entry(object)
            .or_default()
            .insert(id.clone(), record);
        id
    }

    fn table(&self, object: &str) -> impl Iterator<Item = (&String, &Record)> {
        self.records.get(object).into_iter().flatten()
    }

    fn get(&self, object: &str, id: &str) -> Option<&Record> {
        self.records.get(object)?.get(id)
    }
}

#[derive(Debug)]
struct Inner {
    config: SalesforceSimConfig,
    org: Mutex<Org>,
    calls: CallCounter,
    base_url: OnceLock<String>,
    cursor_seq: AtomicU64,
    faults: FaultInjector,
    /// The records [`SalesforceSim::reset`] returns to.
    checkpoint: Mutex<Option<Org>>,
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, Org> {
        self.org.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A running Salesforce simulator. Dropping it stops the server.
#[derive(Debug)]
pub struct SalesforceSim {
    inner: Arc<Inner>,
    running: Running,
}

impl SalesforceSim {
    /// Starts a simulator seeded with `seed` on a fresh loopback port (plain HTTP); it serves until dropped.
    pub async fn start(seed: SalesforceSeed, config: SalesforceSimConfig) -> std::io::Result<Self> {
        SalesforceSim::start_on(seed, config, &Listen::default()).await
    }

    /// Starts serving as `listen` says (a port, HTTPS: `instance_url` then says `https`).
    pub async fn start_on(
        seed: SalesforceSeed,
        config: SalesforceSimConfig,
        listen: &Listen,
    ) -> std::io::Result<Self> {
        let mut org = Org::default();
        let mut profiles: HashMap<String, String> = HashMap::new();
        let mut user_ids = Vec::new();
        for u in &seed.users {
            let profile_id = match profiles.get(&u.profile) {
                Some(id) => id.clone(),
                None => {
                    let mut r = Record::new();
                    r.insert("Name".into(), json!(u.profile));
                    let id = org.insert("Profile", r);
                    profiles.insert(u.profile.clone(), id.clone());
                    id
                }
            };
            let mut r = Record::new();
            r.insert("Username".into(), json!(u.username));
            r.insert("Email".into(), json!(u.email));
            r.insert("Name".into(), json!(u.name));
            r.insert("IsActive".into(), json!(u.active));
            r.insert("ProfileId".into(), json!(profile_id));
            r.insert("LastLoginDate".into(), json!(u.last_login));
            user_ids.push(org.insert("User", r));
        }
        let mut packages = HashMap::new();
        for p in &seed.packages {
            let mut r = Record::new();
            r.insert("NamespacePrefix".into(), json!(p.namespace));
            r.insert("Status".into(), json!(p.status));
            r.insert("AllowedLicenses".into(), json!(p.allowed));
            r.insert("UsedLicenses".into(), json!(0));
            r.insert("ExpirationDate".into(), json!(p.expiration));
            r.insert("IsProvisioned".into(), json!(true));
            r.insert("CreatedDate".into(), json!("2026-01-05T10:00:00.000+0000"));
            packages.insert(p.namespace.clone(), org.insert("PackageLicense", r));
        }
        for (ns, user) in &seed.assignments {
            let package = packages[ns].clone();
            // Seeds may give seats to users deactivated since (deactivation keeps the seat, §1.4).
            create_upl(
                &mut org,
                &package,
                &user_ids[*user],
                SiteLicenseInserts::Accept,
                false,
            )
            .map_err(|(code, msg)| std::io::Error::other(format!("bad seed: {code} {msg}")))?;
        }
        let inner = Arc::new(Inner {
            config,
            org: Mutex::new(org),
            calls: CallCounter::default(),
            base_url: OnceLock::new(),
            cursor_seq: AtomicU64::new(1),
            faults: FaultInjector::new(SalesforceFaultBodies),
            checkpoint: Mutex::new(None),
        });
        let running = Running::serve_on(router(inner.clone()), listen).await?;
        inner.base_url.set(running.base_url()).expect("set once");
        let sim = SalesforceSim { inner, running };
        sim.checkpoint();
        Ok(sim)
    }

    /// Remembers the current records as what [`SalesforceSim::reset`] returns to (one is taken
    /// at start).
    pub fn checkpoint(&self) {
        let org = self.inner.lock().clone();
        *self
            .inner
            .checkpoint
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = Some(org);
    }

    /// Returns to the last checkpoint (sessions stay valid) and clears the call counts.
    pub fn reset(&self) {
        let saved = self
            .inner
            .checkpoint
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        if let Some(mut saved) = saved {
            let mut org = self.inner.lock();
            saved.tokens = std::mem::take(&mut org.tokens);
            saved.tokens_issued = org.tokens_issued;
            *org = saved;
        }
        self.inner.calls.reset();
    }

    /// Seats per package namespace (allowed, used) and the number of users.
    pub fn state_summary(&self) -> Value {
        let org = self.inner.lock();
        let mut packages = Map::new();
        for record in org
            .records
            .get("PackageLicense")
            .into_iter()
            .flat_map(|t| t.values())
        {
            let ns = record["NamespacePrefix"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            packages.insert(
                ns,
                json!({"allowed": record["AllowedLicenses"], "used": record["UsedLicenses"]}),
            );
        }
        let users = org.records.get("User").map_or(0, |t| t.len());
        json!({"packages": packages, "users": users})
    }

    /// The instance URL (also the token host).
    pub fn base_url(&self) -> String {
        self.running.base_url()
    }

    /// Requests served, by route.
    pub fn calls(&self) -> &CallCounter {
        &self.inner.calls
    }

    /// Injects faults into API requests (`None` turns them off).
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

    /// The 18-char id of the package with this namespace.
    pub fn package_id(&self, namespace: &str) -> Option<String> {
        self.find("PackageLicense", "NamespacePrefix", namespace)
    }

    /// The 18-char id of the user with this username.
    pub fn user_id(&self, username: &str) -> Option<String> {
        self.find("User", "Username", username)
    }

    /// Every user id, in seed order.
    pub fn user_ids(&self) -> Vec<String> {
        self.inner
            .lock()
            .table("User")
            .map(|(id, _)| id.clone())
            .collect()
    }

    fn find(&self, object: &str, field: &str, value: &str) -> Option<String> {
        self.inner
            .lock()
            .table(object)
            .find(|(_, r)| r.get(field).and_then(Value::as_str) == Some(value))
            .map(|(id, _)| id.clone())
    }

    /// User ids holding the package.
    pub fn holders_of(&self, package_id: &str) -> Vec<String> {
        let org = self.inner.lock();
        let mut v: Vec<String> = org
            .table("UserPackageLicense")
            .filter(|(_, r)| r["PackageLicenseId"] == json!(package_id))
            .map(|(_, r)| r["UserId"].as_str().unwrap_or_default().to_owned())
            .collect();
        v.sort();
        v
    }

    /// `(AllowedLicenses, UsedLicenses)` of a package.
    pub fn seats(&self, package_id: &str) -> Option<(i64, i64)> {
        let org = self.inner.lock();
        let r = org.get("PackageLicense", package_id)?;
        Some((r["AllowedLicenses"].as_i64()?, r["UsedLicenses"].as_i64()?))
    }

    /// Insert attempts answered `DUPLICATE_VALUE`.
    pub fn duplicate_attempts(&self) -> u64 {
        self.inner.lock().duplicate_attempts
    }

    /// The SOQL text of every query received, in order.
    pub fn queries(&self) -> Vec<String> {
        self.inner.lock().queries.clone()
    }

    /// Access tokens issued so far (by every grant).
    pub fn tokens_issued(&self) -> u64 {
        self.inner.lock().tokens_issued
    }

    /// Invalidates every issued token (the next call answers 401 `INVALID_SESSION_ID`).
    pub fn expire_tokens(&self) {
        self.inner.lock().tokens.clear();
    }

    /// Adds a valid access token (for callers that bring their own session).
    pub fn add_token(&self, token: &str) {
        self.inner.lock().tokens.insert(token.to_owned());
    }

    /// API calls counted against the daily limit so far.
    pub fn api_used(&self) -> u64 {
        self.inner.lock().api_used
    }

    /// Sets the daily usage counter (to test the limit).
    pub fn set_api_used(&self, used: u64) {
        self.inner.lock().api_used = used;
    }
}

fn router(inner: Arc<Inner>) -> Router {
    // Each resource also answers with a trailing slash, which simple-salesforce sends
    // (`…/query/?q=`, `…/sobjects/UserPackageLicense/`; spec P-14).
    let mut data = Router::new();
    for slash in ["", "/"] {
        data = data
            .route(
                &format!("/services/data/{{version}}/query{slash}"),
                get(query),
            )
            .route(
                &format!("/services/data/{{version}}/queryAll{slash}"),
                get(query_all),
            )
            .route(
                &format!("/services/data/{{version}}/limits{slash}"),
                get(limits),
            )
            .route(
                &format!("/services/data/{{version}}/composite/sobjects{slash}"),
                post(collection_create).delete(collection_delete),
            )
            .route(
                &format!("/services/data/{{version}}/sobjects/{{object}}{slash}"),
                get(sobject_info).post(sobject_create),
            )
            .route(
                &format!("/services/data/{{version}}/sobjects/{{object}}/describe{slash}"),
                get(sobject_describe),
            )
            .route(
                &format!("/services/data/{{version}}/sobjects/{{object}}/{{id}}{slash}"),
                get(sobject_get).delete(sobject_delete),
            );
    }
    let data = data
        .route(
            "/services/data/{version}/composite/sobjects/{object}",
            get(collection_retrieve),
        )
        .route("/services/data/{version}/query/{locator}", get(query_more))
        // A locator is read back under queryAll too (§2.2).
        .route(
            "/services/data/{version}/queryAll/{locator}",
            get(query_more),
        )
        .route_layer(middleware::from_fn_with_state(
            inner.clone(),
            require_session,
        ))
        // Outermost: faults strike before authentication, as a gateway's would.
        .route_layer(middleware::from_fn_with_state(
            inner.faults.clone(),
            crate::faults::inject,
        ));
    Router::new()
        .route("/services/oauth2/token", post(token))
        .route("/services/data", get(versions))
        .route("/services/data/", get(versions))
        .merge(data)
        .fallback(unexpected)
        .layer(middleware::from_fn_with_state(inner.clone(), count))
        .with_state(inner)
}

/// A REST error body: an array of `{message, errorCode}` (§2.6).
fn rest_error(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        Json(json!([{"message": message, "errorCode": code}])),
    )
        .into_response()
}

fn oauth_error(status: StatusCode, code: &str, description: &str) -> Response {
    (
        status,
        Json(json!({"error": code, "error_description": description})),
    )
        .into_response()
}

async fn count(State(inner): State<Arc<Inner>>, request: Request, next: Next) -> Response {
    let route = match request.extensions().get::<MatchedPath>() {
        Some(p) => format!(
            "{} {}",
            request.method(),
            p.as_str().replace("{version}", "vXX.X")
        ),
        None => format!("{} {} (unmatched)", request.method(), request.uri().path()),
    };
    inner.calls.record(&route);
    next.run(request).await
}

async fn require_session(
    State(inner): State<Arc<Inner>>,
    request: Request,
    next: Next,
) -> Response {
    let token = request
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("OAuth "))
        })
        .map(str::to_owned);
    let (used, max) = {
        let mut org = inner.lock();
        if !token.is_some_and(|t| org.tokens.contains(&t)) {
            return rest_error(
                StatusCode::UNAUTHORIZED,
                "INVALID_SESSION_ID",
                "Session expired or invalid",
            );
        }
        org.api_used += 1;
        (org.api_used, inner.config.daily_api_limit)
    };
    let mut response = if used > max {
        rest_error(
            StatusCode::FORBIDDEN,
            "REQUEST_LIMIT_EXCEEDED",
            "TotalRequests Limit exceeded.",
        )
    } else {
        next.run(request).await
    };
    // The REST guide's "Limit Info Header" (P-8): parts separated by `;`, usage may pass the
    // allowance (`api-usage=110018/100000`).
    let mut limit_info = format!("api-usage={used}/{max}");
    if let Some((app, app_max)) = &inner.config.per_app_api_limit {
        limit_info.push_str(&format!(
            "; per-app-api-usage={used}/{app_max}(appName={app})"
        ));
    }
    if let Ok(v) = HeaderValue::from_str(&limit_info) {
        response.headers_mut().insert("Sforce-Limit-Info", v);
    }
    response
}

async fn unexpected(method: axum::http::Method, uri: axum::http::Uri) -> Response {
    rest_error(
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
        &format!(
            "The requested resource does not exist (simulator: no route for {method} {})",
            uri.path()
        ),
    )
}

async fn token(State(inner): State<Arc<Inner>>, headers: HeaderMap, body: Bytes) -> Response {
    let form: HashMap<String, String> = form_urlencoded::parse(&body).into_owned().collect();
    let config = &inner.config;
    let username = match form.get("grant_type").map(String::as_str) {
        Some("client_credentials") => {
            let basic = headers
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Basic "))
                .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
                .and_then(|raw| String::from_utf8(raw).ok())
                .and_then(|s| s.split_once(':').map(|(a, b)| (a.to_owned(), b.to_owned())));
            let (id, secret) = basic.unwrap_or_else(|| {
                (
                    form.get("client_id").cloned().unwrap_or_default(),
                    form.get("client_secret").cloned().unwrap_or_default(),
                )
            });
            if id != config.client_id {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_client_id",
                    "client identifier invalid",
                );
            }
            if secret != config.client_secret {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_client",
                    "invalid client credentials",
                );
            }
            match &config.run_as_username {
                Some(u) => u.clone(),
                None => {
                    return oauth_error(
                        StatusCode::BAD_REQUEST,
                        "invalid_grant",
                        "no client credentials user enabled",
                    );
                }
            }
        }
        Some("urn:ietf:params:oauth:grant-type:jwt-bearer") => {
            match verify_assertion(
                &inner,
                form.get("assertion").map(String::as_str).unwrap_or(""),
            ) {
                Ok(username) => username,
                Err(description) => {
                    return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", &description);
                }
            }
        }
        _ => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                "grant type not supported",
            );
        }
    };
    let mut org = inner.lock();
    let Some(user_id) = org
        .table("User")
        .find(|(_, r)| r["Username"] == json!(username) && r["IsActive"] == json!(true))
        .map(|(id, _)| id.clone())
    else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "user is inactive or unknown",
        );
    };
    org.tokens_issued += 1;
    let token = format!(
        "00DSIM0000000001!AQ{}x{:08}",
        org.tokens_issued, org.next_id
    );
    org.tokens.insert(token.clone());
    let base = inner.base_url.get().cloned().unwrap_or_default();
    Json(json!({
        "access_token": token,
        "signature": "c2ltdWxhdGVkLXNpZ25hdHVyZQ==",
        "scope": "api",
        "instance_url": base,
        "id": format!("{base}/id/00DSIM0000000001AAA/{user_id}"),
        "token_type": "Bearer",
        "issued_at": "1767225600000",
    }))
    .into_response()
}

/// Verifies a JWT bearer assertion (§3.3): RS256 only, signed by the configured key, `iss` =
/// consumer key, `aud` accepted, `exp` in the future and at most 3 minutes ahead, `sub` a user.
fn verify_assertion(inner: &Inner, assertion: &str) -> Result<String, String> {
    use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode};
    #[derive(serde::Deserialize)]
    struct Claims {
        sub: String,
        exp: u64,
    }
    let config = &inner.config;
    let pem = config
        .jwt_public_key_pem
        .as_deref()
        .ok_or("JWT bearer flow not enabled")?;
    let key =
        DecodingKey::from_rsa_pem(pem.as_bytes()).map_err(|e| format!("bad simulator key: {e}"))?;
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_issuer(&[&config.client_id]);
    validation.set_audience(&config.jwt_audiences);
    validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    validation.leeway = 0;
    let data = decode::<Claims>(assertion, &key, &validation)
        .map_err(|e| format!("invalid assertion: {e}"))?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    if data.claims.exp > now + 180 + 5 {
        return Err("expiration time must be within 3 minutes".into());
    }
    Ok(data.claims.sub)
}

/// A resolved field path: the relationship hops (reference field, relationship name), the
/// field, and its type.
type Resolved = (Vec<(&'static str, &'static str)>, &'static str, FieldType);

/// Resolves a field path on an object: relationship names, then a field.
fn resolve(object: &'static str, path: &[String]) -> Result<Resolved, SoqlError> {
    let mut current = object;
    let mut hops = Vec::new();
    for (i, part) in path.iter().enumerate() {
        let (_, _, schema) = object_schema(current);
        if i + 1 == path.len() {
            let (name, ty) = schema
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(part))
                .ok_or_else(|| no_such_column(part, current))?;
            return Ok((hops, name, *ty));
        }
        let (field, target) = schema
            .iter()
            .find_map(|(n, t)| match t {
                FieldType::Ref { target, rel } if rel.eq_ignore_ascii_case(part) => {
                    Some((*n, *target))
                }
                _ => None,
            })
            .ok_or_else(|| no_such_column(part, current))?;
        hops.push((field, rel_name(current, field)));
        current = target;
    }
    Err(SoqlError {
        code: "MALFORMED_QUERY",
        message: "empty field".into(),
    })
}

fn rel_name(object: &str, field: &str) -> &'static str {
    object_schema(object)
        .2
        .iter()
        .find_map(|(n, t)| match t {
            FieldType::Ref { rel, .. } if *n == field => Some(*rel),
            _ => None,
        })
        .unwrap_or("")
}

fn object_schema(name: &str) -> (&'static str, &'static str, Schema) {
    object(name).expect("resolved objects are known")
}

fn no_such_column(part: &str, object: &str) -> SoqlError {
    SoqlError {
        code: "INVALID_FIELD",
        message: format!(
            "No such column '{part}' on entity '{object}'. If you are attempting to use a custom field, be sure to append the '__c' after the custom field name."
        ),
    }
}

fn target_of(object: &str, field: &str) -> &'static str {
    object_schema(object)
        .2
        .iter()
        .find_map(|(n, t)| match t {
            FieldType::Ref { target, .. } if *n == field => Some(*target),
            _ => None,
        })
        .unwrap_or("")
}

/// The value of `path` for a record (following relationships), or null.
fn value_at(org: &Org, object: &'static str, record: &Record, path: &[String]) -> Value {
    let (hops, field, _) = match resolve(object, path) {
        Ok(r) => r,
        Err(_) => return Value::Null,
    };
    let mut current_object = object;
    let mut current = record;
    for (ref_field, _) in hops {
        let target = target_of(current_object, ref_field);
        let Some(id) = current.get(ref_field).and_then(Value::as_str) else {
            return Value::Null;
        };
        let Some(next) = org.get(target, id) else {
            return Value::Null;
        };
        current = next;
        current_object = target;
    }
    current.get(field).cloned().unwrap_or(Value::Null)
}

/// Checks a literal against a field type; ids are normalised to 18 characters.
fn coerce(ty: FieldType, literal: &Literal) -> Result<Value, SoqlError> {
    let mismatch = || SoqlError {
        code: "MALFORMED_QUERY",
        message: format!("value {literal:?} does not fit the field type"),
    };
    Ok(match (ty, literal) {
        (_, Literal::Null) => Value::Null,
        (FieldType::Id | FieldType::Ref { .. }, Literal::Str(s)) => {
            json!(ids::to_18(s).ok_or_else(|| SoqlError {
                code: "INVALID_QUERY_FILTER_OPERATOR",
                message: format!("invalid ID field: {s}"),
            })?)
        }
        (FieldType::Str | FieldType::DateTime, Literal::Str(s)) => json!(s),
        (FieldType::Bool, Literal::Bool(b)) => json!(b),
        (FieldType::Int, Literal::Int(n)) => json!(n),
        _ => return Err(mismatch()),
    })
}

fn compare(a: &Value, b: &Value) -> Option<std::cmp::Ordering> {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_i64()?.partial_cmp(&y.as_i64()?),
        (Value::String(x), Value::String(y)) => Some(x.cmp(y)),
        (Value::Bool(x), Value::Bool(y)) => Some(x.cmp(y)),
        _ => None,
    }
}

/// A checked condition with its literals coerced once (ids normalised, `IN` lists hashed,
/// semi-joins run, dates turned into instants).
enum Compiled {
    And(Box<Compiled>, Box<Compiled>),
    Or(Box<Compiled>, Box<Compiled>),
    Not(Box<Compiled>),
    Cmp(Vec<String>, Op, Value),
    In(Vec<String>, HashSet<String>, bool),
    Like(Vec<String>, String),
    /// A datetime field against `[start, end)` in epoch milliseconds: a date literal's span, a
    /// date's day, or a datetime's millisecond.
    Span(Vec<String>, Op, i64, i64),
}

/// Epoch milliseconds of a stored datetime (`2026-11-24T10:00:00.000+0000`) or date.
fn instant(value: &str) -> Option<i64> {
    use chrono::{DateTime, NaiveDate};
    DateTime::parse_from_str(value, "%Y-%m-%dT%H:%M:%S%.f%z")
        .or_else(|_| DateTime::parse_from_rfc3339(value))
        .map(|t| t.timestamp_millis())
        .ok()
        .or_else(|| {
            NaiveDate::parse_from_str(value, "%Y-%m-%d")
                .ok()
                .and_then(|d| d.and_hms_opt(0, 0, 0))
                .map(|t| t.and_utc().timestamp_millis())
        })
}

const DAY_MS: i64 = 86_400_000;

/// `[start, end)` of a date or datetime literal (SOQL reference, "Date Formats and Date
/// Literals"): a date is its whole day (UTC), a datetime its millisecond.
fn literal_span(text: &str) -> Option<(i64, i64)> {
    let start = instant(text)?;
    Some(if text.contains('T') {
        (start, start + 1)
    } else {
        (start, start + DAY_MS)
    })
}

/// `[start, end)` of a date literal relative to `today` (UTC; weeks start on Sunday, the en_US
/// locale's first day).
fn date_literal_span(name: &str, n: Option<i64>, today: chrono::NaiveDate) -> Option<(i64, i64)> {
    use chrono::{Datelike, Days, Months, NaiveDate};
    let ms = |d: NaiveDate| {
        d.and_hms_opt(0, 0, 0)
            .map(|t| t.and_utc().timestamp_millis())
    };
    let days = |d: NaiveDate, k: i64| {
        if k >= 0 {
            d.checked_add_days(Days::new(k as u64))
        } else {
            d.checked_sub_days(Days::new(k.unsigned_abs()))
        }
    };
    let months = |d: NaiveDate, k: i64| {
        if k >= 0 {
            d.checked_add_months(Months::new(u32::try_from(k).ok()?))
        } else {
            d.checked_sub_months(Months::new(u32::try_from(k.unsigned_abs()).ok()?))
        }
    };
    let n = n.unwrap_or(0);
    let week = days(today, -i64::from(today.weekday().num_days_from_sunday()))?;
    let month = today.with_day(1)?;
    let year = NaiveDate::from_ymd_opt(today.year(), 1, 1)?;
    let (from, to) = match name {
        "TODAY" => (today, days(today, 1)?),
        "YESTERDAY" => (days(today, -1)?, today),
        "TOMORROW" => (days(today, 1)?, days(today, 2)?),
        "THIS_WEEK" => (week, days(week, 7)?),
        "LAST_WEEK" => (days(week, -7)?, week),
        "NEXT_WEEK" => (days(week, 7)?, days(week, 14)?),
        "THIS_MONTH" => (month, months(month, 1)?),
        "LAST_MONTH" => (months(month, -1)?, month),
        "NEXT_MONTH" => (months(month, 1)?, months(month, 2)?),
        "LAST_90_DAYS" => (days(today, -90)?, days(today, 1)?),
        "NEXT_90_DAYS" => (days(today, 1)?, days(today, 91)?),
        "THIS_YEAR" => (year, months(year, 12)?),
        "LAST_YEAR" => (months(year, -12)?, year),
        "NEXT_YEAR" => (months(year, 12)?, months(year, 24)?),
        // "Starts 00:00:00 of the current day and continues for the past n days": today included.
        "LAST_N_DAYS" => (days(today, -n)?, days(today, 1)?),
        "NEXT_N_DAYS" => (days(today, 1)?, days(today, 1 + n)?),
        "N_DAYS_AGO" => (days(today, -n)?, days(today, 1 - n)?),
        "LAST_N_WEEKS" => (days(week, -7 * n)?, week),
        "NEXT_N_WEEKS" => (days(week, 7)?, days(week, 7 + 7 * n)?),
        "LAST_N_MONTHS" => (months(month, -n)?, month),
        "NEXT_N_MONTHS" => (months(month, 1)?, months(month, 1 + n)?),
        "LAST_N_YEARS" => (months(year, -12 * n)?, year),
        "NEXT_N_YEARS" => (months(year, 12)?, months(year, 12 + 12 * n)?),
        _ => return None,
    };
    Some((ms(from)?, ms(to)?))
}

fn compile(org: &Org, object: &'static str, cond: &Cond) -> Result<Compiled, SoqlError> {
    Ok(match cond {
        Cond::And(a, b) => Compiled::And(
            Box::new(compile(org, object, a)?),
            Box::new(compile(org, object, b)?),
        ),
        Cond::Or(a, b) => Compiled::Or(
            Box::new(compile(org, object, a)?),
            Box::new(compile(org, object, b)?),
        ),
        Cond::Not(c) => Compiled::Not(Box::new(compile(org, object, c)?)),
        Cond::Cmp(path, op, lit) => {
            let (_, _, ty) = resolve(object, path)?;
            let bad_date = || SoqlError {
                code: "MALFORMED_QUERY",
                message: format!(
                    "value of filter criterion for field '{}' must be of type dateTime",
                    path.join(".")
                ),
            };
            match (ty, lit) {
                (FieldType::DateTime, Literal::DateTime(text)) => {
                    let (start, end) = literal_span(text).ok_or_else(bad_date)?;
                    Compiled::Span(path.clone(), *op, start, end)
                }
                (FieldType::DateTime, Literal::DateLiteral(name, n)) => {
                    let today = chrono::Utc::now().date_naive();
                    let (start, end) = date_literal_span(name, *n, today).ok_or_else(bad_date)?;
                    Compiled::Span(path.clone(), *op, start, end)
                }
                (_, Literal::DateTime(_) | Literal::DateLiteral(..)) => {
                    return Err(SoqlError {
                        code: "INVALID_FIELD",
                        message: format!(
                            "a date can only be compared with a date field, not '{}'",
                            path.join(".")
                        ),
                    });
                }
                _ => Compiled::Cmp(path.clone(), *op, coerce(ty, lit)?),
            }
        }
        Cond::In(path, lits, negated) => {
            let (_, _, ty) = resolve(object, path)?;
            let set = lits
                .iter()
                .map(|l| coerce(ty, l).map(|v| v.to_string()))
                .collect::<Result<_, _>>()?;
            Compiled::In(path.clone(), set, *negated)
        }
        Cond::Like(path, pattern) => {
            let (_, _, ty) = resolve(object, path)?;
            if ty != FieldType::Str {
                return Err(SoqlError {
                    code: "INVALID_QUERY_FILTER_OPERATOR",
                    message: format!(
                        "invalid operator on {}: LIKE needs a string field",
                        path.join(".")
                    ),
                });
            }
            Compiled::Like(path.clone(), pattern.clone())
        }
        Cond::SemiJoin(path, sub, negated) => {
            // The subquery's values, as the `IN` list's would be.
            let (_, _, ty) = resolve(object, path)?;
            if !matches!(ty, FieldType::Id | FieldType::Ref { .. }) {
                return Err(SoqlError {
                    code: "MALFORMED_QUERY",
                    message: "a semi-join compares an Id or reference field".into(),
                });
            }
            let rows = select_records(org, sub, false)?;
            let (sub_object, _, _) = object_named(&sub.object)?;
            let set = rows
                .iter()
                .map(|r| value_at(org, sub_object, r, &sub.fields[0]).to_string())
                .collect();
            Compiled::In(path.clone(), set, *negated)
        }
    })
}

fn eval(org: &Org, object: &'static str, record: &Record, cond: &Compiled) -> bool {
    match cond {
        Compiled::And(a, b) => eval(org, object, record, a) && eval(org, object, record, b),
        Compiled::Or(a, b) => eval(org, object, record, a) || eval(org, object, record, b),
        Compiled::Not(c) => !eval(org, object, record, c),
        Compiled::Cmp(path, op, want) => {
            let have = value_at(org, object, record, path);
            let ordering = compare(&have, want);
            match op {
                Op::Eq => &have == want,
                Op::Ne => &have != want,
                Op::Lt => ordering == Some(std::cmp::Ordering::Less),
                Op::Gt => ordering == Some(std::cmp::Ordering::Greater),
                Op::Le => matches!(
                    ordering,
                    Some(std::cmp::Ordering::Less | std::cmp::Ordering::Equal)
                ),
                Op::Ge => matches!(
                    ordering,
                    Some(std::cmp::Ordering::Greater | std::cmp::Ordering::Equal)
                ),
            }
        }
        Compiled::In(path, set, negated) => {
            set.contains(&value_at(org, object, record, path).to_string()) != *negated
        }
        Compiled::Like(path, pattern) => value_at(org, object, record, path)
            .as_str()
            .is_some_and(|v| soql::like(v, pattern)),
        Compiled::Span(path, op, start, end) => {
            let Some(t) = value_at(org, object, record, path)
                .as_str()
                .and_then(instant)
            else {
                return *op == Op::Ne;
            };
            match op {
                Op::Eq => *start <= t && t < *end,
                Op::Ne => !(*start <= t && t < *end),
                Op::Lt => t < *start,
                Op::Le => t < *end,
                Op::Gt => t >= *end,
                Op::Ge => t >= *start,
            }
        }
    }
}

fn object_named(name: &str) -> Result<(&'static str, &'static str, Schema), SoqlError> {
    object(name).ok_or_else(|| SoqlError {
        code: "INVALID_TYPE",
        message: format!("sObject type '{name}' is not supported."),
    })
}

/// The records a query selects, filtered, ordered and limited (`all`: deleted rows too, as
/// `queryAll` returns them).
fn select_records<'a>(
    org: &'a Org,
    parsed: &soql::Query,
    all: bool,
) -> Result<Vec<&'a Record>, SoqlError> {
    let (object, _, _) = object_named(&parsed.object)?;
    for f in &parsed.fields {
        resolve(object, f)?;
    }
    if let Some(soql::Count::Field(f, _)) = &parsed.count {
        resolve(object, f)?;
    }
    let filter = parsed
        .filter
        .as_ref()
        .map(|c| compile(org, object, c))
        .transpose()?;
    for key in &parsed.order_by {
        resolve(object, &key.field)?;
    }
    let recycled = (all && object == "UserPackageLicense")
        .then(|| org.recycled.values())
        .into_iter()
        .flatten();
    let mut matched: Vec<&Record> = org
        .table(object)
        .map(|(_, r)| r)
        .chain(recycled)
        .filter(|r| filter.as_ref().is_none_or(|c| eval(org, object, r, c)))
        .collect();
    if !parsed.order_by.is_empty() {
        matched.sort_by(|a, b| {
            for key in &parsed.order_by {
                let (x, y) = (
                    value_at(org, object, a, &key.field),
                    value_at(org, object, b, &key.field),
                );
                let o = match (x.is_null(), y.is_null()) {
                    (true, true) => std::cmp::Ordering::Equal,
                    (true, false) if key.nulls_first => std::cmp::Ordering::Less,
                    (true, false) => std::cmp::Ordering::Greater,
                    (false, true) if key.nulls_first => std::cmp::Ordering::Greater,
                    (false, true) => std::cmp::Ordering::Less,
                    (false, false) => {
                        // "Sorting is case insensitive" (SOQL reference, ORDER BY).
                        let o = match (&x, &y) {
                            (Value::String(s), Value::String(t)) => {
                                s.to_lowercase().cmp(&t.to_lowercase())
                            }
                            _ => compare(&x, &y).unwrap_or(std::cmp::Ordering::Equal),
                        };
                        if key.ascending { o } else { o.reverse() }
                    }
                };
                if o != std::cmp::Ordering::Equal {
                    return o;
                }
            }
            std::cmp::Ordering::Equal
        });
    }
    if let Some(limit) = parsed.limit {
        matched.truncate(limit);
    }
    Ok(matched)
}

/// What a query writes for each selected record, built once per query: the output keys in the
/// order a JSON object with sorted keys has them (`serde_json::Map`'s order, in which records
/// were written when they were built as `Value`s), each the record's `attributes`, a field, or
/// a relationship with its own fields (§2.2, P-1).
#[derive(Debug)]
struct Projection(BTreeMap<&'static str, Out>);

#[derive(Debug)]
enum Out {
    Attributes,
    Field(&'static str),
    /// A parent record through `ref_field`, or null when there is none.
    Rel {
        ref_field: &'static str,
        target: &'static str,
        fields: Projection,
    },
}

impl Projection {
    /// The projection of `fields` (already resolved by the query; an unresolvable path is
    /// left out).
    fn new(object: &'static str, fields: &[Vec<String>]) -> Projection {
        let mut p = Projection(BTreeMap::from([("attributes", Out::Attributes)]));
        for path in fields {
            p.add(object, path);
        }
        p
    }

    fn add(&mut self, object: &'static str, path: &[String]) {
        let Ok((hops, field, _)) = resolve(object, path) else {
            return;
        };
        let Some(&(ref_field, rel)) = hops.first() else {
            self.0.insert(field, Out::Field(field));
            return;
        };
        let target = target_of(object, ref_field);
        if let Out::Rel { fields, .. } = self.0.entry(rel).or_insert_with(|| Out::Rel {
            ref_field,
            target,
            fields: Projection(BTreeMap::from([("attributes", Out::Attributes)])),
        }) {
            fields.add(target, &path[1..]);
        }
    }
}

/// A record projected for a query answer, serialized straight from the org's state.
struct Projected<'a> {
    org: &'a Org,
    object: &'static str,
    id: &'a str,
    record: &'a Record,
    projection: &'a Projection,
    version: &'a str,
}

impl<'a> Projected<'a> {
    fn of(
        org: &'a Org,
        object: &'static str,
        record: &'a Record,
        projection: &'a Projection,
        version: &'a str,
    ) -> Self {
        Projected {
            org,
            object,
            id: record.get("Id").and_then(Value::as_str).unwrap_or_default(),
            record,
            projection,
            version,
        }
    }
}

#[derive(Serialize)]
struct Attributes<'a> {
    #[serde(rename = "type")]
    object: &'a str,
    url: String,
}

impl Serialize for Projected<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(Some(self.projection.0.len()))?;
        for (key, out) in &self.projection.0 {
            match out {
                Out::Attributes => map.serialize_entry(
                    key,
                    &Attributes {
                        object: self.object,
                        url: format!(
                            "/services/data/{}/sobjects/{}/{}",
                            self.version, self.object, self.id
                        ),
                    },
                )?,
                Out::Field(field) => {
                    map.serialize_entry(key, self.record.get(*field).unwrap_or(&Value::Null))?
                }
                Out::Rel {
                    ref_field,
                    target,
                    fields,
                } => {
                    let parent = self
                        .record
                        .get(*ref_field)
                        .and_then(Value::as_str)
                        .and_then(|id| self.org.get(target, id).map(|r| (id, r)));
                    match parent {
                        None => map.serialize_entry(key, &Value::Null)?,
                        Some((id, record)) => map.serialize_entry(
                            key,
                            &Projected {
                                org: self.org,
                                object: target,
                                id,
                                record,
                                projection: fields,
                                version: self.version,
                            },
                        )?,
                    }
                }
            }
        }
        map.end()
    }
}

/// A query result, each record already written as JSON: a later page is a copy of bytes, and
/// the result stays what it was when the query ran (as a Salesforce cursor does), however the
/// org changes after.
#[derive(Debug, Default)]
struct Rows {
    json: Vec<u8>,
    /// Where each record's JSON ends in `json`.
    ends: Vec<usize>,
}

impl Rows {
    fn len(&self) -> usize {
        self.ends.len()
    }

    fn push(&mut self, record: &impl Serialize) {
        serde_json::to_writer(&mut self.json, record).expect("records serialize");
        self.ends.push(self.json.len());
    }

    /// Appends records `from..to` to `out` as a JSON array.
    fn write_array(&self, from: usize, to: usize, out: &mut Vec<u8>) {
        let start = |i: usize| if i == 0 { 0 } else { self.ends[i - 1] };
        out.push(b'[');
        for i in from..to {
            if i > from {
                out.push(b',');
            }
            out.extend_from_slice(&self.json[start(i)..self.ends[i]]);
        }
        out.push(b']');
    }
}

/// A record projected onto the selected fields, as a JSON value (single-record answers).
fn project(
    org: &Org,
    object: &'static str,
    record: &Record,
    fields: &[Vec<String>],
    version: &str,
) -> Value {
    let projection = Projection::new(object, fields);
    serde_json::to_value(Projected::of(org, object, record, &projection, version))
        .expect("records serialize")
}

fn batch_size(headers: &HeaderMap, default: usize) -> usize {
    headers
        .get("sforce-query-options")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.split(',')
                .find_map(|kv| kv.trim().strip_prefix("batchSize="))
        })
        .and_then(|n| n.trim().parse::<usize>().ok())
        .map(|n| n.clamp(200, 2000))
        .unwrap_or(default)
}

/// Where a page starts in a query result, and the result's locator once one was handed out.
struct Slice {
    rows: Arc<Rows>,
    offset: usize,
    locator: Option<String>,
}

/// Serves rows `offset..offset + size` of a query result, keeping the result under a locator
/// while pages remain (§2.2).
fn page(inner: &Inner, org: &mut Org, slice: Slice, size: usize, version: &str) -> Response {
    let Slice {
        rows,
        offset,
        locator,
    } = slice;
    let total = rows.len();
    let end = (offset + size).min(total);
    let done = end >= total;
    // The keys in sorted order, as the `json!` body this replaced wrote them.
    let mut body = Vec::with_capacity(64 + rows.ends.get(end.max(1) - 1).copied().unwrap_or(0));
    body.extend_from_slice(format!("{{\"done\":{done},").as_bytes());
    if !done {
        let base = locator.unwrap_or_else(|| {
            format!(
                "01gSIM{:012}",
                inner.cursor_seq.fetch_add(1, Ordering::SeqCst)
            )
        });
        let next = format!("/services/data/{version}/query/{base}-{end}");
        body.extend_from_slice(b"\"nextRecordsUrl\":");
        serde_json::to_writer(&mut body, &next).expect("a string serializes");
        body.push(b',');
        org.cursors.insert(base, rows.clone());
        while org.cursors.len() > 256 {
            org.cursors.pop_first();
        }
    }
    body.extend_from_slice(b"\"records\":");
    rows.write_array(offset.min(end), end, &mut body);
    body.extend_from_slice(format!(",\"totalSize\":{total}}}").as_bytes());
    (
        [(
            axum::http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response()
}

/// The oldest API version still served (§2.1: 21.0–30.0 retired Summer '25) and the latest
/// (Summer '26).
const OLDEST_VERSION: u32 = 31;
const LATEST_VERSION: u32 = 67;

/// The major number of `vNN.0`, if it is one.
fn api_version(version: &str) -> Option<u32> {
    let (major, minor) = version.strip_prefix('v')?.split_once('.')?;
    (minor == "0").then(|| major.parse().ok()).flatten()
}

/// The answer to a request under an unserved version: 410 GONE for a retired one (§2.1), 404
/// for one that does not exist.
fn refuse_version(version: &str) -> Option<Response> {
    match api_version(version) {
        Some(v) if (OLDEST_VERSION..=LATEST_VERSION).contains(&v) => None,
        Some(v) if v < OLDEST_VERSION => Some(rest_error(
            StatusCode::GONE,
            "GONE",
            &format!("API version {v}.0 is retired and no longer available"),
        )),
        _ => Some(rest_error(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            "The requested resource does not exist",
        )),
    }
}

/// sObject Collections exist from 42.0 (§2.1; jsforce checks `_ensureVersion(42)`).
fn refuse_collections_version(version: &str) -> Option<Response> {
    refuse_version(version).or_else(|| {
        (api_version(version).unwrap_or(0) < 42).then(|| {
            rest_error(
                StatusCode::NOT_FOUND,
                "NOT_FOUND",
                "The requested resource does not exist",
            )
        })
    })
}

/// The release name of API version `v`: three releases a year, 60.0 being Spring '24.
fn release_label(v: u32) -> String {
    let k = i64::from(v) - 60;
    let (cycle, r) = (k.div_euclid(3), k.rem_euclid(3));
    let (season, year) = match r {
        0 => ("Spring", 24 + cycle),
        1 => ("Summer", 24 + cycle),
        _ => ("Winter", 25 + cycle),
    };
    format!("{season} '{year:02}")
}

/// `GET /services/data/`: every served version (§2.1, P-12), no session needed.
async fn versions() -> Response {
    let list: Vec<Value> = (OLDEST_VERSION..=LATEST_VERSION)
        .map(|v| {
            json!({"label": release_label(v), "url": format!("/services/data/v{v}.0"), "version": format!("{v}.0")})
        })
        .collect();
    Json(Value::Array(list)).into_response()
}

/// `GET …/limits/` (REST guide "Limits", P-7): the daily API allowance as the Limit Info header
/// counts it, and a few fixed others.
async fn limits(State(inner): State<Arc<Inner>>, Path(version): Path<String>) -> Response {
    if let Some(refused) = refuse_version(&version) {
        return refused;
    }
    let max = inner.config.daily_api_limit;
    let used = inner.lock().api_used;
    let fixed = |n: u64| json!({"Max": n, "Remaining": n});
    Json(json!({
        "DailyApiRequests": {"Max": max, "Remaining": max.saturating_sub(used)},
        "DailyAsyncApexExecutions": fixed(250_000),
        "DailyBulkApiRequests": fixed(5_000),
        "DataStorageMB": fixed(5),
        "FileStorageMB": fixed(20),
        "SingleEmail": fixed(15),
    }))
    .into_response()
}

async fn query(
    State(inner): State<Arc<Inner>>,
    Path(version): Path<String>,
    Query(params): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    run_query(&inner, &version, &params, &headers, false)
}

/// `queryAll`: the same, with deleted rows (`IsDeleted = true`) included (REST guide "QueryAll").
async fn query_all(
    State(inner): State<Arc<Inner>>,
    Path(version): Path<String>,
    Query(params): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    run_query(&inner, &version, &params, &headers, true)
}

fn run_query(
    inner: &Inner,
    version: &str,
    params: &HashMap<String, String>,
    headers: &HeaderMap,
    all: bool,
) -> Response {
    if let Some(refused) = refuse_version(version) {
        return refused;
    }
    let Some(q) = params.get("q") else {
        return rest_error(
            StatusCode::BAD_REQUEST,
            "MALFORMED_QUERY",
            "A query string has to be specified",
        );
    };
    let mut org = inner.lock();
    org.queries.push(q.clone());
    let parsed = match soql::parse(q) {
        Ok(p) => p,
        Err(e) => return rest_error(StatusCode::BAD_REQUEST, e.code, &e.message),
    };
    let rows: Rows = {
        let matched = match select_records(&org, &parsed, all) {
            Ok(m) => m,
            Err(e) => return rest_error(StatusCode::BAD_REQUEST, e.code, &e.message),
        };
        let object = object_schema(&parsed.object).0;
        match &parsed.count {
            // COUNT(): the number in totalSize, no records (SOQL reference "COUNT()").
            Some(soql::Count::Rows) => {
                return Json(json!({"totalSize": matched.len(), "done": true, "records": []}))
                    .into_response();
            }
            // COUNT(field): one AggregateResult, named by its alias or `expr0`.
            Some(soql::Count::Field(field, alias)) => {
                let n = matched
                    .iter()
                    .filter(|r| !value_at(&org, object, r, field).is_null())
                    .count();
                let name = alias.clone().unwrap_or_else(|| "expr0".into());
                let mut record = Map::new();
                record.insert("attributes".into(), json!({"type": "AggregateResult"}));
                record.insert(name, json!(n));
                return Json(json!({"totalSize": 1, "done": true, "records": [record]}))
                    .into_response();
            }
            None => {
                let projection = Projection::new(object, &parsed.fields);
                let mut rows = Rows::default();
                for record in &matched {
                    rows.push(&Projected::of(&org, object, record, &projection, version));
                }
                rows
            }
        }
    };
    let size = batch_size(headers, inner.config.default_batch_size);
    let slice = Slice {
        rows: Arc::new(rows),
        offset: 0,
        locator: None,
    };
    page(inner, &mut org, slice, size, version)
}

async fn query_more(
    State(inner): State<Arc<Inner>>,
    Path((version, locator)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let Some((base, offset)) = locator
        .rsplit_once('-')
        .and_then(|(b, o)| Some((b.to_owned(), o.parse::<usize>().ok()?)))
    else {
        return rest_error(
            StatusCode::BAD_REQUEST,
            "INVALID_QUERY_LOCATOR",
            "invalid query locator",
        );
    };
    let mut org = inner.lock();
    let Some(rows) = org.cursors.get(&base).cloned() else {
        return rest_error(
            StatusCode::BAD_REQUEST,
            "INVALID_QUERY_LOCATOR",
            "invalid query locator",
        );
    };
    let size = batch_size(&headers, inner.config.default_batch_size);
    let slice = Slice {
        rows,
        offset,
        locator: Some(base),
    };
    page(&inner, &mut org, slice, size, &version)
}

/// Inserts one UserPackageLicense, enforcing the business rules; `Err((statusCode, message))`.
fn create_upl(
    org: &mut Org,
    package_id: &str,
    user_id: &str,
    site: SiteLicenseInserts,
    require_active: bool,
) -> Result<String, (&'static str, String)> {
    let package_id = ids::to_18(package_id).ok_or((
        "MALFORMED_ID",
        format!("PackageLicenseId: id value of incorrect type: {package_id}"),
    ))?;
    let user_id = ids::to_18(user_id).ok_or((
        "MALFORMED_ID",
        format!("UserId: id value of incorrect type: {user_id}"),
    ))?;
    let Some(package) = org.get("PackageLicense", &package_id).cloned() else {
        return Err((
            "INVALID_CROSS_REFERENCE_KEY",
            "invalid cross reference id".into(),
        ));
    };
    let Some(user) = org.get("User", &user_id).cloned() else {
        return Err((
            "INVALID_CROSS_REFERENCE_KEY",
            "invalid cross reference id".into(),
        ));
    };
    if require_active && user["IsActive"] != json!(true) {
        return Err((
            "INACTIVE_OWNER_OR_USER",
            "operation performed with inactive user".into(),
        ));
    }
    if org
        .upl_by_pair
        .contains_key(&(package_id.clone(), user_id.clone()))
    {
        org.duplicate_attempts += 1;
        return Err((
            "DUPLICATE_VALUE",
            "duplicate value found: UserId duplicates value on record with id".into(),
        ));
    }
    let allowed = package["AllowedLicenses"].as_i64().unwrap_or(0);
    let used = package["UsedLicenses"].as_i64().unwrap_or(0);
    if allowed < 0 && site == SiteLicenseInserts::Reject {
        return Err((
            "FIELD_INTEGRITY_EXCEPTION",
            "licenses of a site-licensed package cannot be assigned".into(),
        ));
    }
    if allowed >= 0 && used >= allowed {
        return Err((
            "LICENSE_LIMIT_EXCEEDED",
            format!("License Limit Exceeded: {allowed} allowed, {used} used"),
        ));
    }
    let mut r = Record::new();
    r.insert("PackageLicenseId".into(), json!(package_id));
    r.insert("UserId".into(), json!(user_id));
    r.insert("IsRevoked".into(), json!(false));
    // When it happened, so date literals (`CreatedDate = LAST_N_DAYS:7`) mean what they say.
    r.insert(
        "CreatedDate".into(),
        json!(
            chrono::Utc::now()
                .format("%Y-%m-%dT%H:%M:%S%.3f+0000")
                .to_string()
        ),
    );
    let id = org.insert("UserPackageLicense", r);
    org.upl_by_pair
        .insert((package_id.clone(), user_id.clone()), id.clone());
    if let Some(p) = org
        .records
        .get_mut("PackageLicense")
        .and_then(|t| t.get_mut(&package_id))
    {
        p.insert("UsedLicenses".into(), json!(used + 1));
    }
    Ok(id)
}

fn row_error(code: &str, message: &str) -> Value {
    json!({"success": false, "errors": [{"statusCode": code, "message": message, "fields": []}]})
}

async fn collection_create(
    State(inner): State<Arc<Inner>>,
    Path(version): Path<String>,
    body: Bytes,
) -> Response {
    if let Some(refused) = refuse_collections_version(&version) {
        return refused;
    }
    let Ok(body) = serde_json::from_slice::<Value>(&body) else {
        return rest_error(
            StatusCode::BAD_REQUEST,
            "JSON_PARSER_ERROR",
            "Unexpected character in the request body",
        );
    };
    let all_or_none = body
        .get("allOrNone")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let Some(records) = body.get("records").and_then(Value::as_array) else {
        return rest_error(
            StatusCode::BAD_REQUEST,
            "INVALID_FIELD",
            "records is required",
        );
    };
    if records.len() > 200 {
        return rest_error(
            StatusCode::BAD_REQUEST,
            "EXCEEDED_ID_LIMIT",
            "record limit reached. cannot submit more than 200 records into this call",
        );
    }
    let mut org = inner.lock();
    let mut results = Vec::with_capacity(records.len());
    let mut created = Vec::new();
    for record in records {
        let ty = record.pointer("/attributes/type").and_then(Value::as_str);
        let result = match ty {
            None => Err((
                "INVALID_TYPE",
                "Must send a concrete entity type.".to_owned(),
            )),
            Some(t) if t != "UserPackageLicense" => Err((
                "INVALID_TYPE_FOR_OPERATION",
                format!("entity type {t} does not support create in the simulator"),
            )),
            Some(_) if record.get("Id").is_some() => {
                Err(("INVALID_FIELD", "Id not allowed on create".to_owned()))
            }
            Some(_) => match (
                record.get("PackageLicenseId").and_then(Value::as_str),
                record.get("UserId").and_then(Value::as_str),
            ) {
                (Some(p), Some(u)) => {
                    create_upl(&mut org, p, u, inner.config.site_license_inserts, true)
                }
                _ => Err((
                    "REQUIRED_FIELD_MISSING",
                    "Required fields are missing: [PackageLicenseId, UserId]".to_owned(),
                )),
            },
        };
        match result {
            Ok(id) => {
                created.push(id.clone());
                results.push(json!({"id": id, "success": true, "errors": []}));
            }
            Err((code, message)) => results.push(row_error(code, &message)),
        }
    }
    if all_or_none && created.len() < records.len() {
        // Roll back and mark the would-be successes (P-4).
        for id in &created {
            undo_create(&mut org, id);
        }
        for r in results.iter_mut().filter(|r| r["success"] == json!(true)) {
            *r = row_error("ALL_OR_NONE_OPERATION_ROLLED_BACK", ROLLED_BACK);
        }
    }
    Json(Value::Array(results)).into_response()
}

/// Removes a UserPackageLicense row and frees its seat; the row is kept for `queryAll`
/// (`IsDeleted = true`). Returns the row as it was.
fn delete_upl(org: &mut Org, id: &str) -> Result<Record, (&'static str, String)> {
    let id = ids::to_18(id).ok_or(("MALFORMED_ID", format!("malformed id {id}")))?;
    if org.deleted.contains(&id) {
        return Err(("ENTITY_IS_DELETED", "entity is deleted".into()));
    }
    let Some(record) = org
        .records
        .get_mut("UserPackageLicense")
        .and_then(|t| t.remove(&id))
    else {
        return Err((
            "INVALID_CROSS_REFERENCE_KEY",
            "invalid cross reference id".into(),
        ));
    };
    org.deleted.insert(id.clone());
    let mut gone = record.clone();
    gone.insert("IsDeleted".into(), json!(true));
    org.recycled.insert(id, gone);
    let package = record["PackageLicenseId"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let user = record["UserId"].as_str().unwrap_or_default().to_owned();
    org.upl_by_pair.remove(&(package.clone(), user));
    adjust_used(org, &package, -1);
    Ok(record)
}

fn adjust_used(org: &mut Org, package: &str, by: i64) {
    if let Some(p) = org
        .records
        .get_mut("PackageLicense")
        .and_then(|t| t.get_mut(package))
    {
        let used = p["UsedLicenses"].as_i64().unwrap_or(0);
        p.insert("UsedLicenses".into(), json!((used + by).max(0)));
    }
}

/// Puts back a row `delete_upl` removed (an `allOrNone` rollback): as if never deleted.
fn restore_upl(org: &mut Org, record: Record) {
    let id = record["Id"].as_str().unwrap_or_default().to_owned();
    let package = record["PackageLicenseId"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let user = record["UserId"].as_str().unwrap_or_default().to_owned();
    org.deleted.remove(&id);
    org.recycled.remove(&id);
    org.upl_by_pair.insert((package.clone(), user), id.clone());
    adjust_used(org, &package, 1);
    org.records
        .entry("UserPackageLicense")
        .or_default()
        .insert(id, record);
}

/// Takes back a row created in this request (an `allOrNone` rollback): no trace, not even in
/// `queryAll`.
fn undo_create(org: &mut Org, id: &str) {
    let Some(record) = org
        .records
        .get_mut("UserPackageLicense")
        .and_then(|t| t.remove(id))
    else {
        return;
    };
    let package = record["PackageLicenseId"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let user = record["UserId"].as_str().unwrap_or_default().to_owned();
    org.upl_by_pair.remove(&(package.clone(), user));
    adjust_used(org, &package, -1);
}

const ROLLED_BACK: &str = "Record rolled back because not all records were valid and the request was using AllOrNone header";

async fn collection_delete(
    State(inner): State<Arc<Inner>>,
    Path(version): Path<String>,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    if let Some(refused) = refuse_collections_version(&version) {
        return refused;
    }
    let ids: Vec<&str> = params
        .get("ids")
        .map(|s| s.split(',').filter(|s| !s.is_empty()).collect())
        .unwrap_or_default();
    if ids.is_empty() {
        return rest_error(StatusCode::BAD_REQUEST, "MALFORMED_ID", "ids is required");
    }
    if ids.len() > 200 {
        return rest_error(
            StatusCode::BAD_REQUEST,
            "EXCEEDED_ID_LIMIT",
            "record limit reached. cannot submit more than 200 records into this call",
        );
    }
    // `allOrNone=true`: if any row fails, none is deleted; the rows that would have been carry
    // ALL_OR_NONE_OPERATION_ROLLED_BACK with their id (§2.4, P-5).
    let all_or_none = params
        .get("allOrNone")
        .is_some_and(|v| v.eq_ignore_ascii_case("true"));
    let mut org = inner.lock();
    let mut removed = Vec::new();
    let mut results: Vec<Value> = ids
        .into_iter()
        .map(|id| match delete_upl(&mut org, id) {
            Ok(record) => {
                removed.push(record);
                json!({"id": id, "success": true, "errors": []})
            }
            Err((code, message)) => {
                let mut r = row_error(code, &message);
                r["id"] = json!(id);
                r
            }
        })
        .collect();
    if all_or_none && removed.len() < results.len() {
        for record in removed {
            restore_upl(&mut org, record);
        }
        for r in results.iter_mut().filter(|r| r["success"] == json!(true)) {
            let id = r["id"].clone();
            *r = row_error("ALL_OR_NONE_OPERATION_ROLLED_BACK", ROLLED_BACK);
            r["id"] = id;
        }
    }
    Json(Value::Array(results)).into_response()
}

// ---- Single-record sObject resources (§2.3, P-3): create, retrieve, delete, describe. ----

/// What each object allows, as its describe says: (createable, deletable). Only
/// UserPackageLicense rows are created and deleted through the API (§1.2, §1.4); PackageLicense
/// is read-only; users and profiles are managed elsewhere (and not simulated).
fn capabilities(object: &str) -> (bool, bool) {
    match object {
        "UserPackageLicense" => (true, true),
        _ => (false, false),
    }
}

fn not_found() -> Response {
    rest_error(
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
        "The requested resource does not exist",
    )
}

fn type_name(ty: FieldType) -> &'static str {
    match ty {
        FieldType::Id => "id",
        FieldType::Ref { .. } => "reference",
        FieldType::Str => "string",
        FieldType::Bool => "boolean",
        FieldType::Int => "int",
        FieldType::DateTime => "datetime",
    }
}

fn object_summary(name: &str, prefix: &str, version: &str) -> Value {
    let (createable, deletable) = capabilities(name);
    let base = format!("/services/data/{version}/sobjects/{name}");
    json!({
        "name": name,
        "label": name,
        "keyPrefix": prefix,
        "createable": createable,
        "deletable": deletable,
        "updateable": false,
        "queryable": true,
        "retrieveable": true,
        "custom": false,
        "urls": {
            "sobject": base,
            "describe": format!("{base}/describe"),
            "rowTemplate": format!("{base}/{{ID}}"),
        },
    })
}

/// `GET …/sobjects/{object}`: basic information.
async fn sobject_info(
    State(_inner): State<Arc<Inner>>,
    Path((version, name)): Path<(String, String)>,
) -> Response {
    if let Some(refused) = refuse_version(&version) {
        return refused;
    }
    let Some((name, prefix, _)) = object(&name) else {
        return not_found();
    };
    Json(json!({"objectDescribe": object_summary(name, prefix, &version), "recentItems": []}))
        .into_response()
}

/// `GET …/sobjects/{object}/describe`: the object and its fields.
async fn sobject_describe(
    State(_inner): State<Arc<Inner>>,
    Path((version, name)): Path<(String, String)>,
) -> Response {
    if let Some(refused) = refuse_version(&version) {
        return refused;
    }
    let Some((name, prefix, schema)) = object(&name) else {
        return not_found();
    };
    let createable_fields = ["PackageLicenseId", "UserId"];
    let fields: Vec<Value> = schema
        .iter()
        .map(|(field, ty)| {
            let mut f = json!({
                "name": field,
                "label": field,
                "type": type_name(*ty),
                "nillable": !matches!(ty, FieldType::Id | FieldType::Bool),
                "createable": name == "UserPackageLicense" && createable_fields.contains(field),
                "updateable": false,
                "referenceTo": [],
                "relationshipName": Value::Null,
            });
            if let FieldType::Ref { target, rel } = ty {
                f["referenceTo"] = json!([target]);
                f["relationshipName"] = json!(rel);
            }
            f
        })
        .collect();
    let mut describe = object_summary(name, prefix, &version);
    describe["fields"] = Value::Array(fields);
    Json(describe).into_response()
}

/// `GET …/sobjects/{object}/{id}[?fields=a,b]`: one record, every field unless `fields` says.
async fn sobject_get(
    State(inner): State<Arc<Inner>>,
    Path((version, name, id)): Path<(String, String, String)>,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    if let Some(refused) = refuse_version(&version) {
        return refused;
    }
    let Some((name, _, schema)) = object(&name) else {
        return not_found();
    };
    let Some(id18) = ids::to_18(&id) else {
        return rest_error(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            &format!("Provided external ID field does not exist or is not accessible: {id}"),
        );
    };
    let org = inner.lock();
    let Some(record) = org.get(name, &id18) else {
        return not_found();
    };
    let fields: Vec<Vec<String>> = match params.get("fields") {
        Some(list) => {
            let mut out = Vec::new();
            for f in list.split(',').map(str::trim).filter(|f| !f.is_empty()) {
                let path: Vec<String> = f.split('.').map(str::to_owned).collect();
                if let Err(e) = resolve(name, &path) {
                    return rest_error(StatusCode::BAD_REQUEST, e.code, &e.message);
                }
                out.push(path);
            }
            out
        }
        None => schema.iter().map(|(f, _)| vec![f.to_string()]).collect(),
    };
    Json(project(&org, name, record, &fields, &version)).into_response()
}

/// `POST …/sobjects/{object}/`: 201 `{id, success, errors}`; a refusal is the usual error array
/// with `fields` (§2.3).
async fn sobject_create(
    State(inner): State<Arc<Inner>>,
    Path((version, name)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    if let Some(refused) = refuse_version(&version) {
        return refused;
    }
    let Some((name, _, _)) = object(&name) else {
        return not_found();
    };
    let Ok(body) = serde_json::from_slice::<Value>(&body) else {
        return rest_error(
            StatusCode::BAD_REQUEST,
            "JSON_PARSER_ERROR",
            "Unexpected character in the request body",
        );
    };
    if !capabilities(name).0 {
        return rest_error(
            StatusCode::BAD_REQUEST,
            "INVALID_TYPE_FOR_OPERATION",
            &format!("entity type {name} does not support insert"),
        );
    }
    let refusal = |code: &str, message: &str, fields: &[&str]| {
        (
            StatusCode::BAD_REQUEST,
            Json(json!([{"message": message, "errorCode": code, "fields": fields}])),
        )
            .into_response()
    };
    let (Some(package), Some(user)) = (
        body.get("PackageLicenseId").and_then(Value::as_str),
        body.get("UserId").and_then(Value::as_str),
    ) else {
        return refusal(
            "REQUIRED_FIELD_MISSING",
            "Required fields are missing: [PackageLicenseId, UserId]",
            &["PackageLicenseId", "UserId"],
        );
    };
    let mut org = inner.lock();
    match create_upl(
        &mut org,
        package,
        user,
        inner.config.site_license_inserts,
        true,
    ) {
        Ok(id) => (
            StatusCode::CREATED,
            Json(json!({"id": id, "success": true, "errors": []})),
        )
            .into_response(),
        Err((code, message)) => refusal(code, &message, &[]),
    }
}

/// `DELETE …/sobjects/{object}/{id}`: 204, no body (P-3).
async fn sobject_delete(
    State(inner): State<Arc<Inner>>,
    Path((version, name, id)): Path<(String, String, String)>,
) -> Response {
    if let Some(refused) = refuse_version(&version) {
        return refused;
    }
    let Some((name, _, _)) = object(&name) else {
        return not_found();
    };
    if !capabilities(name).1 {
        return rest_error(
            StatusCode::BAD_REQUEST,
            "INVALID_TYPE_FOR_OPERATION",
            &format!("entity type {name} does not support delete"),
        );
    }
    let mut org = inner.lock();
    match delete_upl(&mut org, &id) {
        Ok(_) => StatusCode::NO_CONTENT.into_response(),
        Err(("ENTITY_IS_DELETED", message)) => {
            rest_error(StatusCode::NOT_FOUND, "ENTITY_IS_DELETED", &message)
        }
        Err(("MALFORMED_ID", _)) => rest_error(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            &format!("Provided external ID field does not exist or is not accessible: {id}"),
        ),
        Err(_) => not_found(),
    }
}

/// `GET …/composite/sobjects/{object}?ids=…&fields=…` (REST guide "Get Records Using sObject
/// Collections"): the records in id order, `null` for an id that matches none; ≤ 200 ids.
async fn collection_retrieve(
    State(inner): State<Arc<Inner>>,
    Path((version, name)): Path<(String, String)>,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    if let Some(refused) = refuse_collections_version(&version) {
        return refused;
    }
    let Some((name, _, _)) = object(&name) else {
        return not_found();
    };
    let split = |key: &str| -> Vec<String> {
        params
            .get(key)
            .map(|v| {
                v.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    };
    let (ids, fields) = (split("ids"), split("fields"));
    if ids.is_empty() || fields.is_empty() {
        return rest_error(
            StatusCode::BAD_REQUEST,
            "INVALID_FIELD",
            "ids and fields are required",
        );
    }
    if ids.len() > 200 {
        return rest_error(
            StatusCode::BAD_REQUEST,
            "EXCEEDED_ID_LIMIT",
            "record limit reached. cannot submit more than 200 records into this call",
        );
    }
    let mut paths = Vec::new();
    for f in &fields {
        let path: Vec<String> = f.split('.').map(str::to_owned).collect();
        if let Err(e) = resolve(name, &path) {
            return rest_error(StatusCode::BAD_REQUEST, e.code, &e.message);
        }
        paths.push(path);
    }
    let org = inner.lock();
    let records: Vec<Value> = ids
        .iter()
        .map(|id| {
            ids::to_18(id)
                .and_then(|id| org.get(name, &id))
                .map_or(Value::Null, |r| project(&org, name, r, &paths, &version))
        })
        .collect();
    Json(Value::Array(records)).into_response()
}

#[cfg(test)]
mod projection_tests {
    use super::*;

    /// The projection as it was written before records were serialized straight from the
    /// state: a `Value` per record (copied here as it was).
    fn old_project(
        org: &Org,
        object: &'static str,
        record: &Record,
        fields: &[Vec<String>],
        version: &str,
    ) -> Value {
        fn insert_path(
            org: &Org,
            object: &'static str,
            record: &Record,
            path: &[String],
            out: &mut Map<String, Value>,
            version: &str,
        ) {
            let Ok((hops, field, _)) = resolve(object, path) else {
                return;
            };
            if hops.is_empty() {
                out.insert(
                    field.into(),
                    record.get(field).cloned().unwrap_or(Value::Null),
                );
                return;
            }
            let (ref_field, rel) = hops[0];
            let target = target_of(object, ref_field);
            let parent = record
                .get(ref_field)
                .and_then(Value::as_str)
                .and_then(|id| org.get(target, id).map(|r| (id, r)));
            match parent {
                None => {
                    out.insert(rel.into(), Value::Null);
                }
                Some((id, parent_record)) => {
                    let entry = out.entry(rel.to_owned()).or_insert_with(|| {
                        let mut m = Map::new();
                        m.insert("attributes".into(), attributes(target, id, version));
                        Value::Object(m)
                    });
                    if let Value::Object(m) = entry {
                        insert_path(org, target, parent_record, &path[1..], m, version);
                    }
                }
            }
        }
        let id = record.get("Id").and_then(Value::as_str).unwrap_or_default();
        let mut out = Map::new();
        out.insert("attributes".into(), attributes(object, id, version));
        for path in fields {
            insert_path(org, object, record, path, &mut out, version);
        }
        Value::Object(out)
    }

    fn attributes(object: &str, id: &str, version: &str) -> Value {
        json!({"type": object, "url": format!("/services/data/{version}/sobjects/{object}/{id}")})
    }

    fn org() -> Org {
        let mut org = Org::default();
        let mut profile = Record::new();
        profile.insert("Name".into(), json!("Standard \"User\""));
        let profile = org.insert("Profile", profile);
        let mut users = Vec::new();
        for (i, login) in [Some("2026-10-01T09:00:00.000+0000"), None]
            .into_iter()
            .enumerate()
        {
            let mut r = Record::new();
            r.insert("Username".into(), json!(format!("u{i}@example.com.sim")));
            r.insert("Email".into(), json!(format!("u{i}@example.com")));
            r.insert("Name".into(), json!(format!("User {i}")));
            r.insert("IsActive".into(), json!(i == 0));
            // The second user's profile is gone: a null relationship.
            let profile = if i == 0 {
                profile.clone()
            } else {
                "00eX".into()
            };
            r.insert("ProfileId".into(), json!(profile));
            r.insert("LastLoginDate".into(), json!(login));
            users.push(org.insert("User", r));
        }
        let mut package = Record::new();
        package.insert("NamespacePrefix".into(), json!("acme"));
        package.insert("AllowedLicenses".into(), json!(10));
        let package = org.insert("PackageLicense", package);
        for user in &users {
            let mut r = Record::new();
            r.insert("PackageLicenseId".into(), json!(package));
            r.insert("UserId".into(), json!(user));
            r.insert("IsRevoked".into(), json!(false));
            org.insert("UserPackageLicense", r);
        }
        org
    }

    /// Every record of a query answer, and a whole page, serialize to the bytes the `Value`
    /// records did.
    #[test]
    fn projected_records_and_pages_match_the_value_built_ones() {
        let org = org();
        let queries = [
            "SELECT Id, UserId, PackageLicenseId, User.Email, User.Username, User.Name, User.IsActive, User.Profile.Name, User.LastLoginDate, PackageLicense.NamespacePrefix, CreatedDate FROM UserPackageLicense",
            "SELECT user.email, USER.Email, Id, id, User.Profile.Name, User.ProfileId FROM UserPackageLicense",
            "SELECT Id, Username, Email, Name, IsActive, Profile.Name, LastLoginDate FROM User",
            "SELECT Id FROM PackageLicense",
            "SELECT Name FROM Profile",
        ];
        for q in queries {
            let parsed = soql::parse(q).unwrap();
            let records = select_records(&org, &parsed, false).unwrap();
            let object = object_schema(&parsed.object).0;
            assert!(!records.is_empty(), "{q}");
            let projection = Projection::new(object, &parsed.fields);
            let mut rows = Rows::default();
            let mut old = Vec::new();
            for record in &records {
                let new = Projected::of(&org, object, record, &projection, "v62.0");
                let was = old_project(&org, object, record, &parsed.fields, "v62.0");
                assert_eq!(
                    serde_json::to_string(&new).unwrap(),
                    serde_json::to_string(&was).unwrap(),
                    "{q}"
                );
                assert_eq!(project(&org, object, record, &parsed.fields, "v62.0"), was);
                rows.push(&new);
                old.push(was);
            }
            let mut array = Vec::new();
            rows.write_array(0, rows.len(), &mut array);
            assert_eq!(
                String::from_utf8(array).unwrap(),
                serde_json::to_string(&old).unwrap()
            );
            let mut tail = Vec::new();
            rows.write_array(1, rows.len(), &mut tail);
            assert_eq!(
                String::from_utf8(tail).unwrap(),
                serde_json::to_string(&old[1..]).unwrap()
            );
        }
    }
}
