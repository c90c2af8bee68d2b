//! Fault injection shared by every simulator: a seeded fraction of API requests fail in the ways
//! real vendor APIs do, so tests can prove nothing is lost or doubled under faults.
//!
//! Each simulator supplies its vendor's own bodies for throttling, server errors and expired
//! tokens ([`VendorFaults`]); the kinds that are vendor-neutral (dropped connections, lost
//! responses, truncated JSON, HTML pages from a proxy) are built here.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// One kind of fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Fault {
    /// 429 with `Retry-After` in seconds (1); nothing applied.
    ThrottleSeconds,
    /// 429 with `Retry-After` as an HTTP-date one second ahead; nothing applied.
    ThrottleHttpDate,
    /// 503; nothing applied.
    Unavailable,
    /// 500 with the vendor's error body; nothing applied.
    ServerError,
    /// The connection breaks before a response body arrives; nothing applied.
    DropConnection,
    /// The request is applied, then the response is delayed past the client's timeout.
    LostResponse,
    /// 401 as for an expired access token; nothing applied.
    TokenExpired,
    /// The request is applied and the JSON answer truncated.
    TruncatedJson,
    /// An HTML error page with status 200 (a captive proxy); nothing applied.
    HtmlPage200,
    /// An HTML error page with status 502 (a gateway); nothing applied.
    HtmlPage502,
}

impl Fault {
    /// Every fault kind, for tests that inject all of them.
    pub const ALL: [Fault; 10] = [
        Fault::ThrottleSeconds,
        Fault::ThrottleHttpDate,
        Fault::Unavailable,
        Fault::ServerError,
        Fault::DropConnection,
        Fault::LostResponse,
        Fault::TokenExpired,
        Fault::TruncatedJson,
        Fault::HtmlPage200,
        Fault::HtmlPage502,
    ];
}

/// Which faults, how often, deterministic under `seed`.
#[derive(Debug, Clone)]
pub struct Faults {
    /// Seed of the fault schedule: the same seed fails the same requests.
    pub seed: u64,
    /// Fraction of requests that fail (0.0–1.0).
    pub rate: f64,
    /// The fault kinds to draw from (uniformly).
    pub kinds: Vec<Fault>,
    /// How long a lost response is held (longer than the client's timeout).
    pub lost_response_delay: Duration,
    /// Only requests whose path ends with this are hit (`None`: every API request), e.g.
    /// `Some("/status")` to fail Apple's event polls alone.
    pub only_path_suffix: Option<String>,
}

impl Faults {
    /// Faults hitting `rate` of the requests (0.0–1.0), drawn from `kinds`, scheduled by `seed`; lost responses are held 800 ms.
    pub fn new(seed: u64, rate: f64, kinds: &[Fault]) -> Self {
        Faults {
            seed,
            rate,
            kinds: kinds.to_vec(),
            lost_response_delay: Duration::from_millis(800),
            only_path_suffix: None,
        }
    }

    /// Hits only requests whose path ends with `suffix`.
    pub fn only_path_suffix(mut self, suffix: &str) -> Self {
        self.only_path_suffix = Some(suffix.to_owned());
        self
    }
}

/// The vendor-specific fault answers.
pub trait VendorFaults: Send + Sync + 'static {
    /// The vendor's throttle answer (429 or its own code), with this `Retry-After`.
    fn throttled(&self, retry_after: HeaderValue) -> Response;
    /// The vendor's 500 answer.
    fn server_error(&self) -> Response;
    /// The vendor's 503 (maintenance) answer.
    fn unavailable(&self) -> Response;
    /// The vendor's answer to an expired access token.
    fn token_expired(&self) -> Response;
}

/// Shared state of a simulator's fault layer.
#[derive(Clone)]
pub struct FaultInjector {
    inner: Arc<InjectorInner>,
}

struct InjectorInner {
    faults: Mutex<Option<Faults>>,
    /// Per request (method, path, query, body): attempts seen and the last fault given, so the
    /// rolls do not depend on how concurrent requests interleave.
    attempts: Mutex<std::collections::HashMap<u64, (u64, Option<Fault>)>>,
    injected: Mutex<BTreeMap<Fault, u64>>,
    vendor: Box<dyn VendorFaults>,
    /// Added to every API request, like a network round trip.
    latency: Mutex<Duration>,
    /// At most `limit` requests per `window` (all callers together); excess answered 429.
    rate: Mutex<Option<RateWindow>>,
    throttled: AtomicU64,
}

struct RateWindow {
    limit: usize,
    window: Duration,
    recent: std::collections::VecDeque<tokio::time::Instant>,
}

impl std::fmt::Debug for FaultInjector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FaultInjector")
            .field("injected", &self.injected())
            .finish_non_exhaustive()
    }
}

/// splitmix64: a well-mixed hash of the seed and the request number.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

impl FaultInjector {
    /// A fault layer answering in `vendor`'s terms; no faults until some are set.
    pub fn new(vendor: impl VendorFaults) -> Self {
        FaultInjector {
            inner: Arc::new(InjectorInner {
                faults: Mutex::new(None),
                attempts: Mutex::new(std::collections::HashMap::new()),
                injected: Mutex::new(BTreeMap::new()),
                vendor: Box::new(vendor),
                latency: Mutex::new(Duration::ZERO),
                rate: Mutex::new(None),
                throttled: AtomicU64::new(0),
            }),
        }
    }

    /// Turns faults on (or off with `None`); attempt counts restart, so a seed replays.
    pub fn set(&self, faults: Option<Faults>) {
        *self.inner.faults.lock().unwrap_or_else(|p| p.into_inner()) = faults;
        self.inner
            .attempts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }

    /// Adds `latency` to every API request (benchmarks: a realistic round trip).
    pub fn set_latency(&self, latency: Duration) {
        *self.inner.latency.lock().unwrap_or_else(|p| p.into_inner()) = latency;
    }

    /// Allows at most `limit` API requests per `window`, answering the excess 429 with
    /// `Retry-After` (for vendors whose own simulator has no rate limit).
    pub fn set_rate_limit(&self, limit: Option<(usize, Duration)>) {
        *self.inner.rate.lock().unwrap_or_else(|p| p.into_inner()) =
            limit.map(|(limit, window)| RateWindow {
                limit: limit.max(1),
                window,
                recent: Default::default(),
            });
    }

    /// 429s answered by the rate limit so far.
    pub fn throttled(&self) -> u64 {
        self.inner.throttled.load(Ordering::SeqCst)
    }

    /// Seconds until a request may pass, if the rate limit is full now; records it otherwise.
    fn admit(&self) -> Option<u64> {
        let mut rate = self.inner.rate.lock().unwrap_or_else(|p| p.into_inner());
        let rate = rate.as_mut()?;
        let now = tokio::time::Instant::now();
        while rate
            .recent
            .front()
            .is_some_and(|t| now.duration_since(*t) >= rate.window)
        {
            rate.recent.pop_front();
        }
        if rate.recent.len() >= rate.limit {
            let oldest = *rate.recent.front().expect("limit >= 1");
            return Some(
                (rate.window - now.duration_since(oldest))
                    .as_secs_f64()
                    .ceil()
                    .max(1.0) as u64,
            );
        }
        rate.recent.push_back(now);
        None
    }

    /// Faults injected so far, by kind.
    pub fn injected(&self) -> BTreeMap<Fault, u64> {
        self.inner
            .injected
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Whether faults are on (the request body is only read when they are).
    fn active(&self) -> bool {
        self.inner
            .faults
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_some()
    }

    /// Whether the current faults apply to a request for `path`.
    fn targets(&self, path: &str) -> bool {
        self.inner
            .faults
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .is_some_and(|f| {
                f.only_path_suffix
                    .as_deref()
                    .is_none_or(|s| path.ends_with(s))
            })
    }

    /// Rolls for the n-th attempt of the request identified by `key`.
    fn pick(&self, key: u64) -> Option<(Fault, Duration)> {
        let faults = self
            .inner
            .faults
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()?;
        if faults.kinds.is_empty() {
            return None;
        }
        let mut attempts = self
            .inner
            .attempts
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let entry = attempts.entry(key).or_insert((0, None));
        let n = entry.0;
        entry.0 += 1;
        let roll = mix(faults.seed ^ mix(key ^ mix(n)));
        let kind = faults.kinds[(mix(roll) % faults.kinds.len() as u64) as usize];
        // A token fetched for the retry cannot have expired already: no expiry twice in a row.
        let hit = ((roll >> 11) as f64 / (1u64 << 53) as f64) < faults.rate
            && !(kind == Fault::TokenExpired && entry.1 == Some(Fault::TokenExpired));
        entry.1 = hit.then_some(kind);
        if !hit {
            return None;
        }
        *self
            .inner
            .injected
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(kind)
            .or_default() += 1;
        Some((kind, faults.lost_response_delay))
    }
}

fn html(status: StatusCode) -> Response {
    (
        status,
        [("content-type", "text/html")],
        "<html><body><h1>Service error</h1></body></html>",
    )
        .into_response()
}

/// The axum middleware: `middleware::from_fn_with_state(injector, inject)` on a simulator's API
/// routes.
pub async fn inject(
    State(injector): State<FaultInjector>,
    request: Request,
    next: Next,
) -> Response {
    let latency = *injector
        .inner
        .latency
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    if let Some(seconds) = injector.admit() {
        injector.inner.throttled.fetch_add(1, Ordering::SeqCst);
        return injector.inner.vendor.throttled(HeaderValue::from(seconds));
    }
    if !injector.active() {
        return next.run(request).await;
    }
    // Identify the request by what it asks, not by when it arrives.
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap_or_default();
    let key = {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        parts.method.as_str().hash(&mut h);
        parts.uri.path().hash(&mut h);
        parts.uri.query().hash(&mut h);
        body.hash(&mut h);
        h.finish()
    };
    let targeted = injector.targets(parts.uri.path());
    let request = Request::from_parts(parts, Body::from(body));
    if !targeted {
        return next.run(request).await;
    }
    let Some((fault, delay)) = injector.pick(key) else {
        return next.run(request).await;
    };
    let vendor = &injector.inner.vendor;
    match fault {
        Fault::ThrottleSeconds => vendor.throttled(HeaderValue::from_static("1")),
        Fault::ThrottleHttpDate => {
            let at = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(1));
            vendor.throttled(HeaderValue::from_str(&at).expect("an HTTP-date is a valid header"))
        }
        Fault::Unavailable => vendor.unavailable(),
        Fault::ServerError => vendor.server_error(),
        Fault::TokenExpired => vendor.token_expired(),
        Fault::HtmlPage200 => html(StatusCode::OK),
        Fault::HtmlPage502 => html(StatusCode::BAD_GATEWAY),
        Fault::DropConnection => {
            let broken = futures::stream::once(async {
                Err::<axum::body::Bytes, std::io::Error>(std::io::Error::other(
                    "injected: connection dropped",
                ))
            });
            (
                StatusCode::OK,
                [("content-type", "application/json")],
                Body::from_stream(broken),
            )
                .into_response()
        }
        Fault::LostResponse => {
            let response = next.run(request).await;
            tokio::time::sleep(delay).await;
            response
        }
        Fault::TruncatedJson => {
            let response = next.run(request).await;
            let (parts, body) = response.into_parts();
            let bytes = axum::body::to_bytes(body, usize::MAX)
                .await
                .unwrap_or_default();
            let cut = bytes.slice(..bytes.len() / 2);
            let mut response = Response::from_parts(parts, Body::from(cut));
            response.headers_mut().remove("content-length");
            response
        }
    }
}
