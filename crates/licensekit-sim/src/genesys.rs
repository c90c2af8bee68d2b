//! Genesys Cloud Platform API v2, License resources (`shared/vendor-specs/genesys.md`).
//!
//! Routes: `POST /oauth/token` (client credentials, Basic auth — SDKs send the token request to
//! the API host when it has no `api.` label, spec §5), and under `/api/v2/license`: `definitions`
//! (bare array), `definitions/{licenseId}`, `users` (GET paged by pageNumber, POST batch fetch),
//! `users/{userId}`, `organization` (POST batch assign; GET removed in 2019 → 404),
//! `toggles/{featureName}` (deprecated: always enabled, no effect), `infer`,
//! `infer/permissions`; and `GET /api/v2/users` (the Users API's `UserEntityListing`, with the
//! `selfUri/firstUri/nextUri/previousUri/lastUri` links and the required `User.version` of the
//! SDKs' models). Every error, faults included, uses `ErrorBody` with `contextId` equal to the
//! response's `ININ-Correlation-Id` header (§2, §6). 429s use the normalized body with
//! `Retry-After` in whole seconds (§6), rounded up like `inin-ratelimit-reset`, so a client that
//! waits exactly as told gets through.
//!
//! Where the contract is silent, this simulator assumes (and the adapter README lists):
//! - `LicenseUpdateStatus.result` values: `Success`, `AlreadyAssigned`, `NotAssigned`,
//!   `UserNotFound`, `LicenseNotFound` (real values are undocumented, §1).
//! - `GET /license/users` accepts `pageSize` ≤ 100 (400 `invalid.value` above, §4) and lists every
//!   user, licensed or not.
//! - `POST /license/organization` accepts at most `max_batch_user_ids` user ids in total (400
//!   `invalid.value` above; undocumented, §4).
//! - `POST /license/users` answers `{userId: {"id", "licenses": [licenseId]}}` for known ids.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{MatchedPath, Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::faults::{Fault, FaultInjector, Faults, VendorFaults};
use crate::{CallCounter, Listen, Running};

/// Genesys's own fault answers (spec §2, §6).
struct GenesysFaultBodies;

impl VendorFaults for GenesysFaultBodies {
    fn throttled(&self, retry_after: HeaderValue) -> Response {
        // Genesys documents `Retry-After` in whole seconds only (§6): an HTTP-date from the
        // shared fault layer becomes the seconds until then, rounded up.
        let seconds = retry_after
            .to_str()
            .ok()
            .and_then(|v| {
                v.trim().parse::<u64>().ok().or_else(|| {
                    let at = httpdate::parse_http_date(v).ok()?;
                    let left = at
                        .duration_since(std::time::SystemTime::now())
                        .unwrap_or_default();
                    Some(ceil_secs(left))
                })
            })
            .unwrap_or(1)
            .max(1);
        let mut r = pending(
            StatusCode::TOO_MANY_REQUESTS,
            "too.many.requests.retry.after",
            format!("Rate limit exceeded the maximum. Retry the request in [{seconds}] seconds"),
        );
        r.headers_mut()
            .insert("Retry-After", HeaderValue::from(seconds));
        r
    }
    fn server_error(&self) -> Response {
        pending(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal.server.error",
            "The server encountered an unexpected condition.".into(),
        )
    }
    fn unavailable(&self) -> Response {
        pending(
            StatusCode::SERVICE_UNAVAILABLE,
            "service.unavailable",
            "Service Unavailable".into(),
        )
    }
    fn token_expired(&self) -> Response {
        pending(
            StatusCode::UNAUTHORIZED,
            "bad.credentials",
            "Invalid login credentials.".into(),
        )
    }
}

/// A license definition as seeded.
#[derive(Debug, Clone)]
pub struct SimLicense {
    /// The license id (`cloudCX2`).
    pub id: String,
    /// Its description as `GET /license/definitions` shows it.
    pub description: String,
    /// The permissions it grants.
    pub permissions: Vec<String>,
    /// License ids a holder must already hold (an add-on's base license).
    pub prerequisites: Vec<String>,
}

impl SimLicense {
    /// A license with no prerequisites.
    pub fn new(id: &str, description: &str, permissions: &[&str]) -> Self {
        SimLicense {
            id: id.into(),
            description: description.into(),
            permissions: permissions.iter().map(|p| p.to_string()).collect(),
            prerequisites: Vec::new(),
        }
    }
}

/// What the simulated org holds at start.
#[derive(Debug, Clone, Default)]
pub struct GenesysSeed {
    /// The license definitions on offer.
    pub licenses: Vec<SimLicense>,
    /// User ids, with the licenses each holds.
    pub users: Vec<(String, Vec<String>)>,
    /// Directory entries (Users API) by user id; users without one get a generated entry.
    pub directory: Vec<SimDirectoryUser>,
    /// Role id -> license ids it implies (for `/license/infer`).
    pub roles: Vec<(String, Vec<String>)>,
}

impl GenesysSeed {
    /// A small org: CX1/CX2/CX3 and a WEM add-on, `users` users (ids are UUID-shaped), the
    /// first third holding cloudCX2.
    pub fn demo(users: usize) -> Self {
        let licenses = vec![
            SimLicense::new("cloudCX1", "Genesys Cloud CX 1", &["routing:queue:view"]),
            SimLicense::new(
                "cloudCX2",
                "Genesys Cloud CX 2",
                &["routing:queue:view", "conversation:communication:accept"],
            ),
            SimLicense::new(
                "cloudCX3",
                "Genesys Cloud CX 3",
                &[
                    "routing:queue:view",
                    "wfm:schedule:view",
                    "quality:evaluation:view",
                ],
            ),
            SimLicense {
                prerequisites: vec!["cloudCX2".into()],
                ..SimLicense::new(
                    "gc2WEMupgrade",
                    "Genesys Cloud CX 2 WEM Add-on",
                    &["wfm:schedule:view"],
                )
            },
        ];
        let users = (0..users)
            .map(|i| {
                let held = if i % 3 == 0 {
                    vec!["cloudCX2".to_string()]
                } else {
                    vec![]
                };
                (user_id(i), held)
            })
            .collect();
        GenesysSeed {
            licenses,
            users,
            directory: Vec::new(),
            roles: vec![
                ("role-agent".into(), vec!["cloudCX2".into()]),
                ("role-supervisor".into(), vec!["cloudCX3".into()]),
            ],
        }
    }
}

/// A UUID-shaped user id for index `i` (Genesys user ids are UUIDs).
pub fn user_id(i: usize) -> String {
    format!("{:08x}-0000-4000-8000-{:012x}", 0x5e0_0000 + i, i)
}

/// A user as the Users API (`GET /api/v2/users`) shows it.
#[derive(Debug, Clone)]
pub struct SimDirectoryUser {
    /// The user's id (UUID-shaped, see [`user_id`]).
    pub id: String,
    /// The user's display name.
    pub name: String,
    /// The user's email.
    pub email: String,
    /// `active`, `inactive` or `deleted`.
    pub state: String,
    /// `dateLastLogin` (ISO-8601), served only with `expand=dateLastLogin` as the Users API
    /// does; `None` = never logged in.
    pub date_last_login: Option<String>,
}

/// Knobs of the simulator.
#[derive(Debug, Clone)]
pub struct GenesysSimConfig {
    /// The OAuth client id the token endpoint accepts (default `sim-client`).
    pub client_id: String,
    /// The OAuth client secret it accepts (default `sim-secret`).
    pub client_secret: String,
    /// `expires_in` of issued tokens.
    pub token_lifetime: Duration,
    /// The largest `pageSize` accepted; larger is a 400.
    pub max_page_size: usize,
    /// The most user ids one `POST /license/organization` request may carry in total; more is a 400.
    pub max_batch_user_ids: usize,
    /// Requests per `rate_limit_window` per token; `None` = unlimited (the real limit is 300 per
    /// minute, §4). When set, successful responses carry `inin-ratelimit-count/allowed/reset`.
    pub rate_limit_per_minute: Option<usize>,
    /// The window of `rate_limit_per_minute` (60 s unless a test shortens it).
    pub rate_limit_window: Duration,
}

impl Default for GenesysSimConfig {
    fn default() -> Self {
        GenesysSimConfig {
            client_id: "sim-client".into(),
            client_secret: "sim-secret".into(),
            token_lifetime: Duration::from_secs(86_400),
            max_page_size: 100,
            max_batch_user_ids: 100,
            rate_limit_per_minute: None,
            rate_limit_window: Duration::from_secs(60),
        }
    }
}

#[derive(Debug, Clone)]
struct Token {
    expires_at: Instant,
    recent: VecDeque<Instant>,
}

#[derive(Debug, Default, Clone)]
struct OrgState {
    licenses: BTreeMap<String, SimLicense>,
    users: BTreeMap<String, BTreeSet<String>>,
    /// User ids in listing order, so a page is a slice (rebuilt when users are added).
    user_order: Option<Arc<Vec<String>>>,
    directory: BTreeMap<String, SimDirectoryUser>,
    roles: BTreeMap<String, Vec<String>>,
    tokens: HashMap<String, Token>,
    tokens_issued: u64,
}

/// The words `POST /license/organization` answers with. Genesys documents none (spec §1, §9.2:
/// `result` is a free-form string), so clients must not depend on ours: the other modes let a
/// test check that an adapter settles unknown words and empty answers from state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum ResultWords {
    /// `Success`, `AlreadyAssigned`, `NotAssigned`, `UserNotFound`, `LicenseNotFound`.
    #[default]
    Plain,
    /// Words no client has been told about (`Granted`, `Kept`, `Withdrawn`, `Gone?`, …).
    Unseen,
    /// An empty array, whatever was done.
    Empty,
}

#[derive(Debug)]
struct Inner {
    config: GenesysSimConfig,
    result_words: Mutex<ResultWords>,
    state: Mutex<OrgState>,
    calls: CallCounter,
    correlation: AtomicU64,
    rate_limited: AtomicU64,
    faults: FaultInjector,
    /// The state [`GenesysSim::reset`] returns to.
    checkpoint: Mutex<Option<OrgState>>,
}

/// A running Genesys simulator. Dropping it stops the server.
#[derive(Debug)]
pub struct GenesysSim {
    inner: Arc<Inner>,
    running: Running,
}

#[derive(Clone, Debug)]
struct CorrelationId(String);

impl GenesysSim {
    /// Starts a simulator seeded with `seed` on a fresh loopback port (plain HTTP); it serves until
    /// dropped. Its OAuth endpoint accepts the client id and secret of `config` (by default
    /// `sim-client` / `sim-secret`).
    ///
    /// ```
    /// use licensekit_sim::genesys::{GenesysSeed, GenesysSim, GenesysSimConfig};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> std::io::Result<()> {
    /// let sim = GenesysSim::start(GenesysSeed::demo(9), GenesysSimConfig::default()).await?;
    /// assert!(sim.base_url().starts_with("http://127.0.0.1:"));
    /// // The demo org: four licenses, the first third of the users holding cloudCX2.
    /// assert_eq!(sim.state_summary()["licenses"]["cloudCX2"], 3);
    /// assert_eq!(sim.calls().total(), 0);
    /// # Ok(())
    /// # }
    /// ```
    pub async fn start(seed: GenesysSeed, config: GenesysSimConfig) -> std::io::Result<Self> {
        GenesysSim::start_on(seed, config, &Listen::default()).await
    }

    /// Starts serving as `listen` says (a port, HTTPS).
    pub async fn start_on(
        seed: GenesysSeed,
        config: GenesysSimConfig,
        listen: &Listen,
    ) -> std::io::Result<Self> {
        let mut state = OrgState::default();
        for l in seed.licenses {
            state.licenses.insert(l.id.clone(), l);
        }
        for (i, (user, held)) in seed.users.into_iter().enumerate() {
            state.directory.insert(
                user.clone(),
                SimDirectoryUser {
                    id: user.clone(),
                    name: format!("Agent {i}"),
                    email: format!("agent{i}@example.com"),
                    state: "active".into(),
                    date_last_login: None,
                },
            );
            state.users.insert(user, held.into_iter().collect());
        }
        for entry in seed.directory {
            state.users.entry(entry.id.clone()).or_default();
            state.directory.insert(entry.id.clone(), entry);
        }
        state.roles = seed.roles.into_iter().collect();
        let inner = Arc::new(Inner {
            config,
            result_words: Mutex::new(ResultWords::default()),
            state: Mutex::new(state),
            calls: CallCounter::default(),
            correlation: AtomicU64::new(1),
            rate_limited: AtomicU64::new(0),
            faults: FaultInjector::new(GenesysFaultBodies),
            checkpoint: Mutex::new(None),
        });
        let running = Running::serve_on(router(inner.clone()), listen).await?;
        let sim = GenesysSim { inner, running };
        sim.checkpoint();
        Ok(sim)
    }

    /// Base URL for both the API and the token endpoint (`http://127.0.0.1:PORT`).
    pub fn base_url(&self) -> String {
        self.running.base_url()
    }

    /// Requests served, by route.
    pub fn calls(&self) -> &CallCounter {
        &self.inner.calls
    }

    /// Remembers the current state (users, licenses, directory) as what [`GenesysSim::reset`]
    /// returns to (one is taken at start; the serving sandbox takes another once its org is set up).
    pub fn checkpoint(&self) {
        let state = self
            .inner
            .state
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        *self
            .inner
            .checkpoint
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = Some(state);
    }

    /// Returns to the last checkpoint (issued tokens stay valid) and clears the call counts.
    pub fn reset(&self) {
        let saved = self
            .inner
            .checkpoint
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        if let Some(mut saved) = saved {
            let mut state = self.inner.state.lock().unwrap_or_else(|p| p.into_inner());
            saved.tokens = std::mem::take(&mut state.tokens);
            saved.tokens_issued = state.tokens_issued;
            *state = saved;
        }
        self.inner.calls.reset();
    }

    /// Holders per license, and how many users and directory entries there are.
    pub fn state_summary(&self) -> Value {
        let state = self.inner.state.lock().unwrap_or_else(|p| p.into_inner());
        let mut holders: BTreeMap<&str, u64> =
            state.licenses.keys().map(|l| (l.as_str(), 0)).collect();
        for held in state.users.values() {
            for license in held {
                *holders.entry(license.as_str()).or_default() += 1;
            }
        }
        json!({
            "licenses": holders,
            "users": state.users.len(),
            "directory": state.directory.len(),
        })
    }

    /// The configuration it was started with.
    pub fn config(&self) -> &GenesysSimConfig {
        &self.inner.config
    }

    /// Injects faults into API requests (`None` turns them off).
    pub fn set_faults(&self, faults: Option<Faults>) {
        self.inner.faults.set(faults);
    }

    /// Which words batch changes answer with (see [`ResultWords`]).
    pub fn set_result_words(&self, words: ResultWords) {
        *self
            .inner
            .result_words
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = words;
    }

    /// The fault, latency and rate-limit layer of this simulator's API.
    pub fn network(&self) -> &FaultInjector {
        &self.inner.faults
    }

    /// Faults injected so far.
    pub fn faults_injected(&self) -> BTreeMap<Fault, u64> {
        self.inner.faults.injected()
    }

    /// Tokens issued so far.
    pub fn tokens_issued(&self) -> u64 {
        self.inner.lock().tokens_issued
    }

    /// 429s answered so far.
    pub fn rate_limited(&self) -> u64 {
        self.inner.rate_limited.load(Ordering::SeqCst)
    }

    /// Makes every issued token expire now (the next API call answers 401 `bad.credentials`).
    pub fn expire_tokens(&self) {
        let now = Instant::now();
        for t in self.inner.lock().tokens.values_mut() {
            t.expires_at = now;
        }
    }

    /// Licenses a user holds (`None` for an unknown user).
    pub fn licenses_of(&self, user: &str) -> Option<BTreeSet<String>> {
        self.inner.lock().users.get(user).cloned()
    }

    /// Users holding a license.
    pub fn holders_of(&self, license: &str) -> BTreeSet<String> {
        self.inner
            .lock()
            .users
            .iter()
            .filter(|(_, held)| held.contains(license))
            .map(|(u, _)| u.clone())
            .collect()
    }

    /// Adds a user (with no licenses).
    pub fn add_user(&self, user: &str) {
        let mut state = self.inner.lock();
        state.users.entry(user.to_owned()).or_default();
        state.user_order = None;
    }

    /// Removes a user from the Users API directory while keeping their licenses (a holder the
    /// directory no longer knows).
    pub fn remove_directory_entry(&self, user: &str) {
        self.inner.lock().directory.remove(user);
    }

    /// Sets a directory user's state (`active`, `inactive`, `deleted`).
    pub fn set_user_state(&self, user: &str, new_state: &str) {
        if let Some(u) = self.inner.lock().directory.get_mut(user) {
            u.state = new_state.to_owned();
        }
    }
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, OrgState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn router(inner: Arc<Inner>) -> Router {
    let api = Router::new()
        .route("/api/v2/license/definitions", get(get_definitions))
        .route(
            "/api/v2/license/definitions/{licenseId}",
            get(get_definition),
        )
        .route("/api/v2/license/users", get(get_users).post(post_users))
        .route("/api/v2/license/users/{userId}", get(get_user))
        .route(
            "/api/v2/license/organization",
            get(get_organization_removed).post(post_organization),
        )
        .route(
            "/api/v2/license/toggles/{featureName}",
            get(toggle).post(toggle),
        )
        .route("/api/v2/license/infer", post(post_infer))
        .route("/api/v2/users", get(get_directory))
        .route(
            "/api/v2/license/infer/permissions",
            post(post_infer_permissions),
        )
        .route_layer(middleware::from_fn_with_state(
            inner.clone(),
            require_bearer,
        ))
        // Outermost: faults strike before authentication, as a gateway's would.
        .route_layer(middleware::from_fn_with_state(
            inner.faults.clone(),
            crate::faults::inject,
        ));
    Router::new()
        .route("/oauth/token", post(post_token))
        .merge(api)
        .fallback(unexpected)
        .layer(middleware::from_fn_with_state(
            inner.clone(),
            correlate_and_count,
        ))
        .with_state(inner)
}

/// Whole seconds, rounded up, at least 1.
fn ceil_secs(d: Duration) -> u64 {
    u64::try_from(d.as_millis().div_ceil(1000))
        .unwrap_or(u64::MAX)
        .max(1)
}

/// An error body whose `contextId` is filled in by `correlate_and_count` with the response's
/// `ININ-Correlation-Id` (fault answers are built before the request's id is known).
#[derive(Clone, Debug)]
struct PendingError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

fn pending(status: StatusCode, code: &'static str, message: String) -> Response {
    let mut r = status.into_response();
    r.extensions_mut().insert(PendingError {
        status,
        code,
        message,
    });
    r
}

/// `ErrorBody` (spec §2).
fn error(status: StatusCode, code: &str, message: &str, ctx: &CorrelationId) -> Response {
    let body = json!({
        "message": message,
        "code": code,
        "status": status.as_u16(),
        "contextId": ctx.0,
        "details": [],
        "errors": [],
    });
    (status, Json(body)).into_response()
}

async fn correlate_and_count(
    State(inner): State<Arc<Inner>>,
    mut request: Request,
    next: Next,
) -> Response {
    let n = inner.correlation.fetch_add(1, Ordering::SeqCst);
    let id = CorrelationId(format!("{:08x}-sim0-4000-8000-{n:012x}", n));
    let route = match request.extensions().get::<MatchedPath>() {
        Some(p) => format!("{} {}", request.method(), p.as_str()),
        None => format!("{} {} (unmatched)", request.method(), request.uri().path()),
    };
    inner.calls.record(&route);
    request.extensions_mut().insert(id.clone());
    let mut response = next.run(request).await;
    if let Some(e) = response.extensions_mut().remove::<PendingError>() {
        // Every error body names the response's own correlation id (spec §2, FORUM-429).
        let headers = std::mem::take(response.headers_mut());
        response = error(e.status, e.code, &e.message, &id);
        for (name, value) in headers.iter() {
            if name != axum::http::header::CONTENT_LENGTH
                && name != axum::http::header::CONTENT_TYPE
            {
                response.headers_mut().insert(name.clone(), value.clone());
            }
        }
    }
    if let Ok(v) = HeaderValue::from_str(&id.0) {
        response.headers_mut().insert("ININ-Correlation-Id", v);
    }
    response
}

async fn require_bearer(State(inner): State<Arc<Inner>>, request: Request, next: Next) -> Response {
    let ctx = request
        .extensions()
        .get::<CorrelationId>()
        .cloned()
        .unwrap_or(CorrelationId("none".into()));
    let header = request
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let token = match header.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") && !token.is_empty() => {
            token
        }
        _ => {
            return error(
                StatusCode::UNAUTHORIZED,
                "authentication.required",
                "No authentication bearer token specified in authorization header.",
                &ctx,
            );
        }
    };
    let now = Instant::now();
    let mut usage: Option<(usize, usize, u64)> = None;
    let retry_after = {
        let mut state = inner.lock();
        let Some(t) = state.tokens.get_mut(token).filter(|t| t.expires_at > now) else {
            return error(
                StatusCode::UNAUTHORIZED,
                "bad.credentials",
                "Invalid login credentials.",
                &ctx,
            );
        };
        match inner.config.rate_limit_per_minute {
            None => None,
            Some(limit) => {
                let window = inner.config.rate_limit_window;
                while t
                    .recent
                    .front()
                    .is_some_and(|at| now.duration_since(*at) >= window)
                {
                    t.recent.pop_front();
                }
                // Whole seconds rounded *up*: a client that waits exactly as told must find the
                // window open (rounding down would refuse it again).
                if t.recent.len() >= limit {
                    let oldest = *t.recent.front().expect("limit >= 1");
                    Some(ceil_secs(window - now.duration_since(oldest)))
                } else {
                    t.recent.push_back(now);
                    let oldest = *t.recent.front().expect("just pushed");
                    let reset = ceil_secs(window.saturating_sub(now.duration_since(oldest)));
                    usage = Some((t.recent.len(), limit, reset));
                    None
                }
            }
        }
    };
    if let Some(seconds) = retry_after {
        inner.rate_limited.fetch_add(1, Ordering::SeqCst);
        let mut response = error(
            StatusCode::TOO_MANY_REQUESTS,
            "too.many.requests.retry.after",
            &format!("Rate limit exceeded the maximum. Retry the request in [{seconds}] seconds"),
            &ctx,
        );
        response
            .headers_mut()
            .insert("Retry-After", HeaderValue::from(seconds));
        return response;
    }
    let mut response = next.run(request).await;
    if let Some((count, allowed, reset)) = usage {
        // Rate-limit headers of successful calls (spec §6; whether still sent live is uncertain).
        let headers = response.headers_mut();
        headers.insert("inin-ratelimit-count", HeaderValue::from(count as u64));
        headers.insert("inin-ratelimit-allowed", HeaderValue::from(allowed as u64));
        headers.insert("inin-ratelimit-reset", HeaderValue::from(reset));
    }
    response
}

async fn unexpected(
    method: Method,
    uri: axum::http::Uri,
    ctx: Option<axum::Extension<CorrelationId>>,
) -> Response {
    let ctx = ctx.map(|c| c.0).unwrap_or(CorrelationId("none".into()));
    error(
        StatusCode::NOT_FOUND,
        "not.found",
        &format!(
            "The requested resource was not found. (simulator: no route for {method} {})",
            uri.path()
        ),
        &ctx,
    )
}

async fn post_token(State(inner): State<Arc<Inner>>, headers: HeaderMap, body: Bytes) -> Response {
    let oauth_error = |status: StatusCode, code: &str, description: &str| {
        (
            status,
            Json(json!({"error": code, "description": description, "error_description": description})),
        )
            .into_response()
    };
    let form: HashMap<String, String> = form_urlencoded::parse(&body).into_owned().collect();
    if form.get("grant_type").map(String::as_str) != Some("client_credentials") {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "grant type not supported",
        );
    }
    let credentials = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b64| base64::engine::general_purpose::STANDARD.decode(b64).ok())
        .and_then(|raw| String::from_utf8(raw).ok());
    let Some((id, secret)) = credentials.as_deref().and_then(|c| c.split_once(':')) else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_client",
            "client not found",
        );
    };
    // Unknown client -> 400, wrong secret -> 401 (GCX live tests, spec §5).
    if id != inner.config.client_id {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_client",
            "client not found",
        );
    }
    if secret != inner.config.client_secret {
        // As observed live (genesys-payloads §4): `description` only, no `error_description`.
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": "invalid_client", "description": "authentication failed"})),
        )
            .into_response();
    }
    let mut state = inner.lock();
    state.tokens_issued += 1;
    let token = format!(
        "sim-genesys-token-{}-{:x}",
        state.tokens_issued,
        inner.correlation.load(Ordering::SeqCst) * 7919
    );
    state.tokens.insert(
        token.clone(),
        Token {
            expires_at: Instant::now() + inner.config.token_lifetime,
            recent: VecDeque::new(),
        },
    );
    Json(json!({
        "access_token": token,
        "token_type": "bearer",
        "expires_in": inner.config.token_lifetime.as_secs(),
    }))
    .into_response()
}

fn definition_json(l: &SimLicense) -> Value {
    json!({
        "id": l.id,
        "description": l.description,
        "permissions": {"ids": l.permissions},
        "prerequisites": l.prerequisites.iter().map(|p| json!({
            "id": p, "selfUri": format!("/api/v2/license/definitions/{p}")
        })).collect::<Vec<_>>(),
        "comprises": [],
        "selfUri": format!("/api/v2/license/definitions/{}", l.id),
    })
}

async fn get_definitions(State(inner): State<Arc<Inner>>) -> Response {
    let state = inner.lock();
    Json(Value::Array(
        state.licenses.values().map(definition_json).collect(),
    ))
    .into_response()
}

async fn get_definition(
    State(inner): State<Arc<Inner>>,
    Path(license_id): Path<String>,
    axum::Extension(ctx): axum::Extension<CorrelationId>,
) -> Response {
    match inner.lock().licenses.get(&license_id) {
        Some(l) => Json(definition_json(l)).into_response(),
        None => error(
            StatusCode::NOT_FOUND,
            "not.found",
            "The requested resource was not found.",
            &ctx,
        ),
    }
}

#[derive(Deserialize)]
struct PageQuery {
    #[serde(rename = "pageSize")]
    page_size: Option<String>,
    #[serde(rename = "pageNumber")]
    page_number: Option<String>,
    /// Users API only: `active` (default), `inactive`, `deleted`, `any`.
    state: Option<String>,
    /// Users API only: fields to expand, comma-separated (`dateLastLogin`).
    expand: Option<String>,
}

/// `GET /api/v2/users` (Users API, outside the LicenseApi): the org's directory, paged by
/// number like the license listing, filtered by `state` (default `active`).
async fn get_directory(
    State(inner): State<Arc<Inner>>,
    Query(q): Query<PageQuery>,
    axum::Extension(ctx): axum::Extension<CorrelationId>,
) -> Response {
    let page_size = q
        .page_size
        .as_deref()
        .map_or(Some(25), |s| s.parse::<usize>().ok());
    let page_number = q
        .page_number
        .as_deref()
        .map_or(Some(1), |s| s.parse::<usize>().ok());
    let (Some(page_size @ 1..=500), Some(page_number @ 1..)) = (page_size, page_number) else {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid.value",
            "Invalid paging parameters.",
            &ctx,
        );
    };
    let asked_state = q.state.clone();
    let wanted = q.state.unwrap_or_else(|| "active".into());
    if !["active", "inactive", "deleted", "any"].contains(&wanted.as_str()) {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid.value",
            &format!("Invalid state [{wanted}]."),
            &ctx,
        );
    }
    let expand_last_login = q
        .expand
        .as_deref()
        .is_some_and(|e| e.split(',').any(|x| x.trim() == "dateLastLogin"));
    let state = inner.lock();
    let matching: Vec<&SimDirectoryUser> = state
        .directory
        .values()
        .filter(|u| wanted == "any" || u.state == wanted)
        .collect();
    let total = matching.len();
    let entities: Vec<DirectoryEntity<'_>> = matching
        .into_iter()
        .skip((page_number - 1) * page_size)
        .take(page_size)
        .map(|u| DirectoryEntity::of(u, expand_last_login))
        .collect();
    // UserEntityListing (the SDKs' model) links its pages: an SDK-style `while next_uri` loop
    // must see every user.
    let page_count = total.div_ceil(page_size);
    let state_param = asked_state
        .map(|s| format!("&state={s}"))
        .unwrap_or_default();
    let uri = |n: usize| format!("/api/v2/users?pageSize={page_size}&pageNumber={n}{state_param}");
    let body = DirectoryPage {
        entities,
        first_uri: uri(1),
        last_uri: uri(page_count.max(1)),
        next_uri: (page_number < page_count).then(|| uri(page_number + 1)),
        page_count,
        page_number,
        page_size,
        previous_uri: (page_number > 1).then(|| uri((page_number - 1).min(page_count.max(1)))),
        self_uri: uri(page_number),
        total,
    };
    Json(body).into_response()
}

// Listing pages are serialized from typed views of the state (no `serde_json::Value` per
// record): the fields in the order a JSON object with sorted keys has them, as the earlier
// `json!` bodies were written (`tests::listing_bodies_match_the_json_built_ones`).

/// One user of `GET /api/v2/users` (the SDKs' `User`; `version` is required there).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct DirectoryEntity<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    date_last_login: Option<&'a str>,
    email: &'a str,
    id: &'a str,
    name: &'a str,
    self_uri: String,
    state: &'a str,
    version: u32,
}

impl<'a> DirectoryEntity<'a> {
    /// `dateLastLogin` only when expanded, as the Users API serves it.
    fn of(u: &'a SimDirectoryUser, expand_last_login: bool) -> Self {
        DirectoryEntity {
            date_last_login: u.date_last_login.as_deref().filter(|_| expand_last_login),
            email: &u.email,
            id: &u.id,
            name: &u.name,
            self_uri: format!("/api/v2/users/{}", u.id),
            state: &u.state,
            version: 1,
        }
    }
}

/// `UserEntityListing`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct DirectoryPage<'a> {
    entities: Vec<DirectoryEntity<'a>>,
    first_uri: String,
    last_uri: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_uri: Option<String>,
    page_count: usize,
    page_number: usize,
    page_size: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    previous_uri: Option<String>,
    self_uri: String,
    total: usize,
}

/// One entity of `GET /api/v2/license/users`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct LicenseUserEntity<'a> {
    id: &'a str,
    licenses: &'a BTreeSet<String>,
    self_uri: String,
}

/// `UserLicensesEntityListing`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct LicenseUsersPage<'a> {
    entities: Vec<LicenseUserEntity<'a>>,
    page_count: usize,
    page_number: usize,
    page_size: usize,
    total: usize,
}

async fn get_users(
    State(inner): State<Arc<Inner>>,
    Query(q): Query<PageQuery>,
    axum::Extension(ctx): axum::Extension<CorrelationId>,
) -> Response {
    let parse = |v: Option<String>, default: usize, name: &str| -> Result<usize, Response> {
        match v {
            None => Ok(default),
            Some(s) => s.parse::<usize>().ok().filter(|n| *n >= 1).ok_or_else(|| {
                error(
                    StatusCode::BAD_REQUEST,
                    "invalid.value",
                    &format!("Value [{s}] is not valid for field type [{name}]."),
                    &ctx,
                )
            }),
        }
    };
    let page_size = match parse(q.page_size, 25, "pageSize") {
        Ok(n) => n,
        Err(r) => return r,
    };
    let page_number = match parse(q.page_number, 1, "pageNumber") {
        Ok(n) => n,
        Err(r) => return r,
    };
    if page_size > inner.config.max_page_size {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid.value",
            &format!(
                "Value [{page_size}] is not valid for field type [pageSize]. Allowable values are: 1 to {}",
                inner.config.max_page_size
            ),
            &ctx,
        );
    }
    let mut state = inner.lock();
    let total = state.users.len();
    let order = match &state.user_order {
        Some(order) => order.clone(),
        None => {
            let order = Arc::new(state.users.keys().cloned().collect::<Vec<_>>());
            state.user_order = Some(order.clone());
            order
        }
    };
    let start = (page_number - 1).saturating_mul(page_size).min(order.len());
    let end = (start + page_size).min(order.len());
    let none = BTreeSet::new();
    let entities: Vec<LicenseUserEntity<'_>> = order[start..end]
        .iter()
        .map(|id| LicenseUserEntity {
            id,
            licenses: state.users.get(id).unwrap_or(&none),
            self_uri: format!("/api/v2/license/users/{id}"),
        })
        .collect();
    Json(LicenseUsersPage {
        entities,
        page_count: total.div_ceil(page_size),
        page_number,
        page_size,
        total,
    })
    .into_response()
}

async fn get_user(
    State(inner): State<Arc<Inner>>,
    Path(user): Path<String>,
    axum::Extension(ctx): axum::Extension<CorrelationId>,
) -> Response {
    let state = inner.lock();
    match state.users.get(&user) {
        Some(held) => Json(json!({
            "id": user,
            "licenses": held.iter().filter_map(|l| state.licenses.get(l)).map(definition_json).collect::<Vec<_>>(),
            "selfUri": format!("/api/v2/license/users/{user}"),
        }))
        .into_response(),
        None => error(StatusCode::NOT_FOUND, "not.found", "The requested resource was not found.", &ctx),
    }
}

fn parse_json<T: serde::de::DeserializeOwned>(
    body: &[u8],
    ctx: &CorrelationId,
) -> Result<T, Response> {
    serde_json::from_slice(body).map_err(|e| {
        error(
            StatusCode::BAD_REQUEST,
            "bad.request",
            &format!(
                "The request could not be understood by the server due to malformed syntax. ({e})"
            ),
            ctx,
        )
    })
}

async fn post_users(
    State(inner): State<Arc<Inner>>,
    axum::Extension(ctx): axum::Extension<CorrelationId>,
    body: Bytes,
) -> Response {
    let ids: Vec<String> = match parse_json(&body, &ctx) {
        Ok(ids) => ids,
        Err(r) => return r,
    };
    if ids.len() > inner.config.max_batch_user_ids {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid.value",
            "Too many user ids",
            &ctx,
        );
    }
    let state = inner.lock();
    let map: serde_json::Map<String, Value> = ids
        .into_iter()
        .filter_map(|id| {
            let held = state.users.get(&id)?;
            Some((id.clone(), json!({"id": id, "licenses": held})))
        })
        .collect();
    Json(Value::Object(map)).into_response()
}

async fn get_organization_removed(
    axum::Extension(ctx): axum::Extension<CorrelationId>,
) -> Response {
    // Removed in SDK 57 (2019-06), spec §1 row 7.
    error(
        StatusCode::NOT_FOUND,
        "not.found",
        "The requested resource was not found.",
        &ctx,
    )
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct BatchRequest {
    assignments: Vec<AssignmentRequest>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AssignmentRequest {
    license_id: String,
    user_ids_add: Vec<String>,
    user_ids_remove: Vec<String>,
}

async fn post_organization(
    State(inner): State<Arc<Inner>>,
    axum::Extension(ctx): axum::Extension<CorrelationId>,
    body: Bytes,
) -> Response {
    // All three fields of each assignment are required (spec §2): serde rejects a missing one.
    let request: BatchRequest = match parse_json(&body, &ctx) {
        Ok(r) => r,
        Err(r) => return r,
    };
    let total: usize = request
        .assignments
        .iter()
        .map(|a| a.user_ids_add.len() + a.user_ids_remove.len())
        .sum();
    if total > inner.config.max_batch_user_ids {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid.value",
            &format!(
                "A batch may name at most {} user ids; this one names {total}.",
                inner.config.max_batch_user_ids
            ),
            &ctx,
        );
    }
    let words = *inner.result_words.lock().unwrap_or_else(|p| p.into_inner());
    let mut state = inner.lock();
    let mut statuses = Vec::with_capacity(total);
    for a in request.assignments {
        let known_license = state.licenses.contains_key(&a.license_id);
        for (user, add) in a
            .user_ids_add
            .iter()
            .map(|u| (u, true))
            .chain(a.user_ids_remove.iter().map(|u| (u, false)))
        {
            let result = if !known_license {
                "LicenseNotFound"
            } else {
                match state.users.get_mut(user) {
                    None => "UserNotFound",
                    Some(held) if add => {
                        if held.insert(a.license_id.clone()) {
                            "Success"
                        } else {
                            "AlreadyAssigned"
                        }
                    }
                    Some(held) => {
                        if held.remove(&a.license_id) {
                            "Success"
                        } else {
                            "NotAssigned"
                        }
                    }
                }
            };
            let result = match (words, result) {
                (ResultWords::Unseen, "Success") if add => "Granted",
                (ResultWords::Unseen, "Success") => "Withdrawn",
                (ResultWords::Unseen, "AlreadyAssigned") => "Kept",
                (ResultWords::Unseen, "NotAssigned") => "Absent",
                (ResultWords::Unseen, _) => "Gone?",
                (_, result) => result,
            };
            statuses.push(json!({"userId": user, "licenseId": a.license_id, "result": result}));
        }
    }
    if words == ResultWords::Empty {
        statuses.clear();
    }
    Json(Value::Array(statuses)).into_response()
}

async fn toggle(Path(feature): Path<String>) -> Response {
    // Deprecated: always enabled, changes nothing (spec §1).
    Json(json!({"featureName": feature, "enabled": true})).into_response()
}

async fn post_infer(
    State(inner): State<Arc<Inner>>,
    axum::Extension(ctx): axum::Extension<CorrelationId>,
    body: Bytes,
) -> Response {
    let roles: Vec<String> = match parse_json(&body, &ctx) {
        Ok(r) => r,
        Err(r) => return r,
    };
    let state = inner.lock();
    let licenses: BTreeSet<&String> = roles
        .iter()
        .filter_map(|r| state.roles.get(r))
        .flatten()
        .collect();
    Json(json!(licenses)).into_response()
}

async fn post_infer_permissions(
    State(inner): State<Arc<Inner>>,
    axum::Extension(ctx): axum::Extension<CorrelationId>,
    body: Bytes,
) -> Response {
    let permissions: Vec<String> = match parse_json(&body, &ctx) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let state = inner.lock();
    let licenses: Vec<&String> = state
        .licenses
        .values()
        .filter(|l| permissions.iter().any(|p| l.permissions.contains(p)))
        .map(|l| &l.id)
        .collect();
    Json(json!(licenses)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The typed listing bodies serialize to the same bytes as the `json!` bodies they replaced
    /// (the old builders, copied here as they were).
    #[test]
    fn listing_bodies_match_the_json_built_ones() {
        let users = [
            SimDirectoryUser {
                id: "u-1".into(),
                name: "Ada \"L\"".into(),
                email: "ada@example.com".into(),
                state: "active".into(),
                date_last_login: Some("2026-10-01T09:00:00.000Z".into()),
            },
            SimDirectoryUser {
                id: "u-2".into(),
                name: "Bo".into(),
                email: String::new(),
                state: "inactive".into(),
                date_last_login: None,
            },
        ];
        for expand in [false, true] {
            for (page_number, page_count) in [(1, 1), (1, 3), (2, 3), (3, 3), (4, 3)] {
                let uri = |n: usize| format!("/api/v2/users?pageSize=2&pageNumber={n}&state=any");
                let old_entities: Vec<Value> = users
                    .iter()
                    .map(|u| {
                        let mut entity = json!({"id": u.id, "name": u.name, "email": u.email, "state": u.state, "version": 1, "selfUri": format!("/api/v2/users/{}", u.id)});
                        match &u.date_last_login {
                            Some(at) if expand => entity["dateLastLogin"] = json!(at),
                            _ => {}
                        }
                        entity
                    })
                    .collect();
                let mut old = json!({
                    "entities": old_entities,
                    "pageSize": 2,
                    "pageNumber": page_number,
                    "total": 5,
                    "pageCount": page_count,
                    "selfUri": uri(page_number),
                    "firstUri": uri(1),
                    "lastUri": uri(page_count),
                });
                if page_number < page_count {
                    old["nextUri"] = json!(uri(page_number + 1));
                }
                if page_number > 1 {
                    old["previousUri"] = json!(uri((page_number - 1).min(page_count)));
                }
                let new = DirectoryPage {
                    entities: users
                        .iter()
                        .map(|u| DirectoryEntity::of(u, expand))
                        .collect(),
                    first_uri: uri(1),
                    last_uri: uri(page_count),
                    next_uri: (page_number < page_count).then(|| uri(page_number + 1)),
                    page_count,
                    page_number,
                    page_size: 2,
                    previous_uri: (page_number > 1).then(|| uri((page_number - 1).min(page_count))),
                    self_uri: uri(page_number),
                    total: 5,
                };
                assert_eq!(
                    serde_json::to_string(&new).unwrap(),
                    serde_json::to_string(&old).unwrap()
                );
            }
        }

        let held: BTreeSet<String> = ["cloudCX2".to_string(), "cloudCX1".to_string()].into();
        let none = BTreeSet::new();
        let rows = [("u-1", &held), ("u-2", &none)];
        let old = json!({
            "entities": rows.iter().map(|(id, held)| json!({"id": id, "licenses": held, "selfUri": format!("/api/v2/license/users/{id}")})).collect::<Vec<_>>(),
            "pageSize": 100,
            "pageNumber": 3,
            "total": 202,
            "pageCount": 3,
        });
        let new = LicenseUsersPage {
            entities: rows
                .iter()
                .map(|(id, held)| LicenseUserEntity {
                    id,
                    licenses: held,
                    self_uri: format!("/api/v2/license/users/{id}"),
                })
                .collect(),
            page_count: 3,
            page_number: 3,
            page_size: 100,
            total: 202,
        };
        assert_eq!(
            serde_json::to_string(&new).unwrap(),
            serde_json::to_string(&old).unwrap()
        );
    }
}
