//! Per-provider request limits, modelled the way the vendor enforces them.
//!
//! - **Concurrency:** at most `max_in_flight` requests at once.
//! - **A sliding window** (Genesys: 300 requests in any 60 s per token): requests go out at once
//!   while the window has room — no smooth spacing, so a job inside one window's allowance runs
//!   at network speed — and wait only when the window is full, until its oldest request ages
//!   out. A request occupies its slot from the moment it starts until `window` after its answer
//!   arrived (the latest moment the server can have counted it), so the client's count is never
//!   below the server's and the limit is never tripped.
//! - **What the server announces** corrects the model ([`RateSignals`], read from each response
//!   by the adapter's [`SignalReader`], one hook next to the classifier): the announced allowance
//!   replaces a documented default (or lowers a configured rate), a server count above ours
//!   (another client on the same token) adds the missing requests, a full window holds every
//!   request until its reset, and `Retry-After` holds every request, not only the one retried.
//! - **Throttles without `Retry-After`** (Apple's 9646) can hold every request for a cool-down
//!   that grows with each consecutive throttle.
//! - **A quota** (Salesforce's daily allocation) is recorded for the adapter to report and check.
//!
//! Every wait can be asked about ([`RequestLimiter::wait_estimate`]) or bounded
//! ([`RequestLimiter::acquire_within`]), so it can be drawn from a retry budget. Time comes from
//! tokio's clock (`tokio::time::pause` works), and the window model itself
//! ([`SlidingWindow`]) is a pure function of the `now` it is given.

use std::collections::VecDeque;
use std::fmt;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use http::{HeaderMap, StatusCode};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

/// The longest delay any header may announce; longer values (up to `u64::MAX` seconds) are
/// capped here, so no arithmetic on them can overflow. Far beyond any wait a client accepts.
pub const MAX_ANNOUNCED_WAIT: Duration = Duration::from_secs(24 * 60 * 60);

/// A vendor's rate limit: at most `allowance` requests in any `window`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowLimit {
    /// Requests allowed per window (at least 1).
    pub allowance: NonZeroU32,
    /// The window's length, between 1 ms and [`MAX_ANNOUNCED_WAIT`].
    pub window: Duration,
}

impl WindowLimit {
    /// At most `allowance` requests in any `window` (the window is clamped to 1 ms ..= 24 h).
    pub fn new(allowance: NonZeroU32, window: Duration) -> Self {
        WindowLimit {
            allowance,
            window: window.clamp(Duration::from_millis(1), MAX_ANNOUNCED_WAIT),
        }
    }

    /// At most `n` requests in any 60 s.
    pub fn per_minute(n: NonZeroU32) -> Self {
        Self::new(n, Duration::from_secs(60))
    }
}

impl fmt::Display for WindowLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} per {}",
            self.allowance,
            humantime::format_duration(self.window)
        )
    }
}

/// A window's usage as the server counts it (Genesys `inin-ratelimit-count/allowed/reset`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowUsage {
    /// Requests counted in the current window, this one included.
    pub count: u64,
    /// The allowance of the window.
    pub allowed: u64,
    /// Until the window (or its oldest request) resets; capped at [`MAX_ANNOUNCED_WAIT`].
    pub reset: Duration,
}

/// A long-term quota's usage (Salesforce `Sforce-Limit-Info: api-usage=USED/MAX`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuotaUsage {
    /// Calls used so far in the quota's period.
    pub used: u64,
    /// Calls the quota allows per period.
    pub max: u64,
}

impl QuotaUsage {
    /// Calls left in the period (0 when over).
    pub fn remaining(&self) -> u64 {
        self.max.saturating_sub(self.used)
    }
}

/// What one response says about the vendor's limits. Pure data, read by a [`SignalReader`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RateSignals {
    /// The server refused the request for its rate (429, or a vendor throttle code).
    pub throttled: bool,
    /// The server asked every request to wait this long (`Retry-After`, capped).
    pub retry_after: Option<Duration>,
    /// The server's count of its rate window.
    pub window: Option<WindowUsage>,
    /// A long-term quota's usage.
    pub quota: Option<QuotaUsage>,
}

/// Reads a vendor's rate-limit signals from a response: a pure function of status and headers,
/// the one place an adapter looks at rate headers. Must not panic on any header value.
pub trait SignalReader: Send + Sync + fmt::Debug {
    /// The signals in one response; must not panic on any header value.
    fn read(&self, status: StatusCode, headers: &HeaderMap) -> RateSignals;
}

/// The standard signals: 429 is a throttle; `Retry-After` (seconds or HTTP-date) on a 429 or 503.
#[derive(Debug, Clone, Copy, Default)]
pub struct StandardSignals;

impl SignalReader for StandardSignals {
    fn read(&self, status: StatusCode, headers: &HeaderMap) -> RateSignals {
        standard_signals(status, headers)
    }
}

/// [`StandardSignals`] as a function, for readers that add vendor headers to it.
pub fn standard_signals(status: StatusCode, headers: &HeaderMap) -> RateSignals {
    let throttled = status == StatusCode::TOO_MANY_REQUESTS;
    let retry_after = if throttled || status == StatusCode::SERVICE_UNAVAILABLE {
        retry_after_capped(headers, SystemTime::now())
    } else {
        None
    };
    RateSignals {
        throttled,
        retry_after,
        ..RateSignals::default()
    }
}

/// `Retry-After` as delta-seconds or an HTTP-date, capped at [`MAX_ANNOUNCED_WAIT`]; anything
/// else (negative, garbage, empty) is ignored. Never panics.
pub fn retry_after_capped(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let value = headers
        .get(http::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    if let Some(d) = seconds_capped(value) {
        return Some(d);
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(
        at.duration_since(now)
            .unwrap_or(Duration::ZERO)
            .min(MAX_ANNOUNCED_WAIT),
    )
}

/// A header holding a non-negative integer (at most `u64::MAX`); `None` for anything else.
pub fn header_number(headers: &HeaderMap, name: &str) -> Option<u64> {
    headers.get(name)?.to_str().ok()?.trim().parse::<u64>().ok()
}

/// Delta-seconds in a header value (digits only, RFC 9110 §10.2.3), capped at
/// [`MAX_ANNOUNCED_WAIT`]. Anything else — signs, decimals, exponents, words, more than
/// `u64::MAX` — is `None`.
/// Never panics.
pub fn seconds_capped(value: &str) -> Option<Duration> {
    let value = value.trim();
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // Beyond u64 is not a number the server meant: ignored, like any garbage.
    let secs = value.parse::<u64>().ok()?;
    Some(Duration::from_secs(secs).min(MAX_ANNOUNCED_WAIT))
}

/// How a provider's requests are paced.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct PacingPolicy {
    /// The sliding window the client keeps; `None` keeps none (`rate = "off"`). The server's
    /// explicit holds (a full window, `Retry-After`) are obeyed either way.
    pub window: Option<WindowLimit>,
    /// The window is only the vendor's documented default: an allowance the server announces
    /// replaces it (up or down). When false (a configured rate) the server can only lower it.
    pub adopt_announced: bool,
    /// After a throttle that names no delay, hold every request this long, doubling with each
    /// consecutive throttle up to the second value (Apple's 9646: "back off incrementally").
    pub throttle_cooldown: Option<(Duration, Duration)>,
    /// The longest [`RequestLimiter::acquire`] waits for pacing; past it the request goes and
    /// the server decides (bounded callers use [`RequestLimiter::acquire_within`]).
    pub max_wait: Duration,
}

impl Default for PacingPolicy {
    fn default() -> Self {
        PacingPolicy {
            window: None,
            adopt_announced: false,
            throttle_cooldown: None,
            max_wait: Duration::from_secs(60),
        }
    }
}

impl PacingPolicy {
    /// No client-side window; only the server's holds.
    pub fn unpaced() -> Self {
        Self::default()
    }

    /// A configured window (the server may lower it).
    pub fn window(limit: WindowLimit) -> Self {
        PacingPolicy {
            window: Some(limit),
            ..Self::default()
        }
    }

    /// A vendor's documented window (the server's announcement replaces it).
    pub fn documented(limit: WindowLimit) -> Self {
        PacingPolicy {
            window: Some(limit),
            adopt_announced: true,
            ..Self::default()
        }
    }

    /// After a throttle, waits `initial`, doubling per consecutive throttle up to `max`.
    pub fn with_throttle_cooldown(mut self, initial: Duration, max: Duration) -> Self {
        self.throttle_cooldown = Some((initial, max.max(initial)));
        self
    }

    /// The longest a request waits for a slot before failing (rather than waiting unboundedly).
    pub fn with_max_wait(mut self, max_wait: Duration) -> Self {
        self.max_wait = max_wait;
        self
    }
}

/// The sliding-window model: a pure state machine over the `now` it is given.
///
/// A request holds a slot from [`start`](Self::start) until `window` after its
/// [`finish`](Self::finish).
#[derive(Debug, Clone)]
pub struct SlidingWindow {
    window: Duration,
    configured: u32,
    announced: Option<u32>,
    adopt_announced: bool,
    in_flight: usize,
    /// When each finished request's slot was last possibly counted, ascending.
    finished: VecDeque<Instant>,
}

impl SlidingWindow {
    /// A window at `limit`; `adopt_announced` lets a server's announced allowance raise it, not only lower it.
    pub fn new(limit: WindowLimit, adopt_announced: bool) -> Self {
        SlidingWindow {
            window: limit.window,
            configured: limit.allowance.get(),
            announced: None,
            adopt_announced,
            in_flight: 0,
            finished: VecDeque::new(),
        }
    }

    /// The allowance in force: the configured one, corrected by the server's announcement.
    pub fn allowance(&self) -> u32 {
        match (self.announced, self.adopt_announced) {
            (Some(announced), true) => announced,
            (Some(announced), false) => announced.min(self.configured),
            (None, _) => self.configured,
        }
        .max(1)
    }

    /// The window in force: [`SlidingWindow::allowance`] per the configured window length.
    pub fn limit(&self) -> WindowLimit {
        WindowLimit::new(
            NonZeroU32::new(self.allowance()).unwrap_or(NonZeroU32::MIN),
            self.window,
        )
    }

    fn expire(&mut self, now: Instant) {
        while self
            .finished
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) >= self.window)
        {
            self.finished.pop_front();
        }
    }

    /// Slots held now (requests in flight and finished within the window).
    pub fn used(&mut self, now: Instant) -> usize {
        self.expire(now);
        self.in_flight + self.finished.len()
    }

    /// Zero when a request may start now; otherwise the least time until one may.
    pub fn wait(&mut self, now: Instant) -> Duration {
        let used = self.used(now);
        let allowance = self.allowance() as usize;
        if used < allowance {
            return Duration::ZERO;
        }
        // The (used - allowance + 1)-th finished slot to expire frees the room needed; slots
        // still in flight expire no earlier than a full window from now.
        let need = used - allowance + 1;
        match self.finished.get(need - 1) {
            Some(t) => (*t + self.window).saturating_duration_since(now),
            None => self.window,
        }
    }

    /// Takes a slot (whether or not the window has room: the caller decided).
    pub fn start(&mut self) {
        self.in_flight += 1;
    }

    /// A started request has its answer (or failed): its slot ages out `window` from `now`.
    pub fn finish(&mut self, now: Instant) {
        self.in_flight = self.in_flight.saturating_sub(1);
        self.insert(now);
    }

    fn insert(&mut self, at: Instant) {
        let i = self.finished.partition_point(|t| *t <= at);
        self.finished.insert(i, at);
    }

    /// Corrects the model with the server's count at `now` (the answer to a request still
    /// counted in flight here).
    pub fn correct(&mut self, usage: WindowUsage, now: Instant) {
        if usage.allowed > 0 {
            self.announced = Some(u32::try_from(usage.allowed).unwrap_or(u32::MAX));
        }
        let allowance = self.allowance() as usize;
        let counted = usize::try_from(usage.count)
            .unwrap_or(usize::MAX)
            .min(allowance);
        let used = self.used(now);
        if counted <= used {
            return;
        }
        // Requests we never saw (another client on the same token): the oldest ages out at
        // the announced reset, the others no earlier than a full window from now.
        let reset = usage.reset.min(self.window);
        let oldest = now.checked_sub(self.window - reset).unwrap_or(now);
        self.insert(oldest);
        for _ in used + 1..counted {
            self.insert(now);
        }
    }
}

/// A request waited longer than its caller allows ([`RequestLimiter::acquire_within`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WaitTooLong {
    /// The least wait the limiter would have imposed.
    pub wait: Duration,
    /// The wait is the server's (`Retry-After`, a full window's reset), not the client's model.
    pub server_hold: bool,
}

impl WaitTooLong {
    /// The error callers see: `RateLimited` with the wait as `retry_after`.
    pub fn into_error(self, provider: crate::ProviderKind) -> crate::Error {
        crate::Error::RateLimited {
            provider,
            retry_after: Some(self.wait),
            source: Some(
                format!(
                    "the request would wait {} for the rate limit, longer than its budget allows",
                    humantime::format_duration(round_ms(self.wait))
                )
                .into(),
            ),
        }
    }
}

fn round_ms(d: Duration) -> Duration {
    Duration::from_millis(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

#[derive(Debug)]
struct State {
    window: Option<SlidingWindow>,
    /// The server asked every request to wait until then.
    held_until: Option<Instant>,
    /// The next throttle cool-down.
    cooldown: Option<Duration>,
    quota: Option<QuotaUsage>,
    started: u64,
}

impl State {
    /// Zero when a request may start now; else the wait and whether the server imposed it.
    fn wait(&mut self, now: Instant) -> (Duration, bool) {
        let held = self
            .held_until
            .map_or(Duration::ZERO, |t| t.saturating_duration_since(now));
        let window = self.window.as_mut().map_or(Duration::ZERO, |w| w.wait(now));
        (held.max(window), held > window)
    }

    fn start(&mut self) {
        self.started += 1;
        if let Some(w) = &mut self.window {
            w.start();
        }
    }

    fn hold(&mut self, wait: Duration, now: Instant) {
        let until = now + wait.min(MAX_ANNOUNCED_WAIT);
        if self.held_until.is_none_or(|t| t < until) {
            self.held_until = Some(until);
        }
    }
}

struct Shared {
    in_flight: Arc<Semaphore>,
    max_in_flight: usize,
    policy: PacingPolicy,
    reader: Arc<dyn SignalReader>,
    state: Mutex<State>,
}

impl Shared {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The limits of one provider's client, shared by its clones: concurrency, the vendor's rate
/// window, the server's holds and quota. See the [module docs](self).
#[derive(Clone)]
pub struct RequestLimiter {
    shared: Arc<Shared>,
}

impl fmt::Debug for RequestLimiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequestLimiter")
            .field("max_in_flight", &self.shared.max_in_flight)
            .field("policy", &self.shared.policy)
            .field("reader", &self.shared.reader)
            .finish_non_exhaustive()
    }
}

/// A request's place: a concurrency slot and a window slot, released when dropped (the
/// window slot then ages out a window later).
#[derive(Debug)]
pub struct LimitPermit {
    _slot: OwnedSemaphorePermit,
    limiter: RequestLimiter,
}

impl Drop for LimitPermit {
    fn drop(&mut self) {
        let now = Instant::now();
        if let Some(w) = &mut self.limiter.shared.state().window {
            w.finish(now);
        }
    }
}

impl RequestLimiter {
    /// At most `max_in_flight` requests at once, paced by `policy`, reading the server's
    /// signals with `reader`.
    pub fn new(max_in_flight: usize, policy: PacingPolicy, reader: Arc<dyn SignalReader>) -> Self {
        let max_in_flight = max_in_flight.max(1);
        let window = policy
            .window
            .map(|limit| SlidingWindow::new(limit, policy.adopt_announced));
        let cooldown = policy.throttle_cooldown.map(|(initial, _)| initial);
        RequestLimiter {
            shared: Arc::new(Shared {
                in_flight: Arc::new(Semaphore::new(max_in_flight)),
                max_in_flight,
                policy,
                reader,
                state: Mutex::new(State {
                    window,
                    held_until: None,
                    cooldown,
                    quota: None,
                    started: 0,
                }),
            }),
        }
    }

    /// No client-side window, `max_in_flight` concurrent requests, standard signals.
    pub fn unpaced(max_in_flight: usize) -> Self {
        Self::new(
            max_in_flight,
            PacingPolicy::unpaced(),
            Arc::new(StandardSignals),
        )
    }

    /// Requests allowed in flight at once.
    pub fn max_in_flight(&self) -> usize {
        self.shared.max_in_flight
    }

    /// The pacing policy this limiter applies.
    pub fn policy(&self) -> &PacingPolicy {
        &self.shared.policy
    }

    /// The window in force (the configured one as corrected by the server), if any.
    pub fn window(&self) -> Option<WindowLimit> {
        self.shared.state().window.as_ref().map(|w| w.limit())
    }

    /// The last quota usage the server reported.
    pub fn quota(&self) -> Option<QuotaUsage> {
        self.shared.state().quota
    }

    /// Requests started through this limiter so far (every attempt counts).
    pub fn requests_started(&self) -> u64 {
        self.shared.state().started
    }

    /// How long a request starting now would wait for the window and the server's holds (not
    /// counting concurrency).
    pub fn wait_estimate(&self) -> Duration {
        self.shared.state().wait(Instant::now()).0
    }

    /// Reads a response's signals and applies them: the one hook every response passes
    /// through. Returns them, so the retry logic can use the same reading.
    pub fn observe(&self, status: StatusCode, headers: &HeaderMap) -> RateSignals {
        let signals = self.shared.reader.read(status, headers);
        self.apply(&signals, Instant::now());
        signals
    }

    /// Applies signals read elsewhere.
    pub fn apply(&self, signals: &RateSignals, now: Instant) {
        let policy = &self.shared.policy;
        let mut state = self.shared.state();
        if let Some(usage) = signals.window {
            if let Some(w) = &mut state.window {
                w.correct(usage, now);
            }
            if usage.allowed > 0 && usage.count >= usage.allowed {
                state.hold(usage.reset, now);
            }
        }
        if let Some(wait) = signals.retry_after {
            state.hold(wait, now);
        }
        if let Some((initial, max)) = policy.throttle_cooldown {
            if signals.throttled && signals.retry_after.is_none() {
                let wait = state.cooldown.unwrap_or(initial);
                state.hold(wait, now);
                state.cooldown = Some(wait.saturating_mul(2).min(max));
            } else if !signals.throttled {
                state.cooldown = Some(initial);
            }
        }
        if let Some(quota) = signals.quota {
            state.quota = Some(quota);
        }
    }

    fn permit(&self, slot: OwnedSemaphorePermit) -> LimitPermit {
        LimitPermit {
            _slot: slot,
            limiter: self.clone(),
        }
    }

    async fn slot(&self) -> OwnedSemaphorePermit {
        self.shared
            .in_flight
            .clone()
            .acquire_owned()
            .await
            .expect("the semaphore is never closed")
    }

    /// Waits for a concurrency slot and room in the window. A pacing wait longer than the
    /// policy's `max_wait` is cut short — the request goes and the server decides — so this
    /// never hangs on a server's long hold; callers with a budget use
    /// [`acquire_within`](Self::acquire_within) instead.
    pub async fn acquire(&self) -> LimitPermit {
        let slot = self.slot().await;
        let give_up_at = Instant::now() + self.shared.policy.max_wait.min(MAX_ANNOUNCED_WAIT);
        loop {
            let now = Instant::now();
            let (wait, _) = {
                let mut state = self.shared.state();
                let (wait, server) = state.wait(now);
                if wait.is_zero() || now + wait > give_up_at {
                    state.start();
                }
                (wait, server)
            };
            if wait.is_zero() {
                return self.permit(slot);
            }
            if now + wait > give_up_at {
                tracing::debug!(
                    wait_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
                    "pacing wait longer than max_wait; sending anyway"
                );
                return self.permit(slot);
            }
            tokio::time::sleep(wait).await;
        }
    }

    /// Like [`acquire`](Self::acquire), but refuses at once (with the wait it would impose)
    /// when the request could not start by `deadline`.
    pub async fn acquire_within(&self, deadline: Instant) -> Result<LimitPermit, WaitTooLong> {
        let now = Instant::now();
        let (wait, server_hold) = self.shared.state().wait(now);
        if now + wait > deadline {
            return Err(WaitTooLong { wait, server_hold });
        }
        let slot = match tokio::time::timeout_at(deadline, self.slot()).await {
            Ok(slot) => slot,
            Err(_) => {
                return Err(WaitTooLong {
                    wait: deadline.saturating_duration_since(now),
                    server_hold: false,
                });
            }
        };
        loop {
            let now = Instant::now();
            let (wait, server_hold) = {
                let mut state = self.shared.state();
                let found = state.wait(now);
                if found.0.is_zero() {
                    state.start();
                }
                found
            };
            if wait.is_zero() {
                return Ok(self.permit(slot));
            }
            if now + wait > deadline {
                return Err(WaitTooLong { wait, server_hold });
            }
            tokio::time::sleep(wait).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn nz(n: u32) -> NonZeroU32 {
        NonZeroU32::new(n).unwrap()
    }

    fn limiter(max: usize, policy: PacingPolicy) -> RequestLimiter {
        RequestLimiter::new(max, policy, Arc::new(StandardSignals))
    }

    #[tokio::test(start_paused = true)]
    async fn caps_requests_in_flight() {
        let limiter = RequestLimiter::unpaced(3);
        let current = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let tasks: Vec<_> = (0..20)
            .map(|_| {
                let (limiter, current, peak) = (limiter.clone(), current.clone(), peak.clone());
                tokio::spawn(async move {
                    let _permit = limiter.acquire().await;
                    let now = current.fetch_add(1, Ordering::SeqCst) + 1;
                    peak.fetch_max(now, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    current.fetch_sub(1, Ordering::SeqCst);
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(peak.load(Ordering::SeqCst), 3);
    }

    /// The pure model: room goes at once, a full window waits for its oldest slot.
    #[test]
    fn sliding_window_model() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let mut w = SlidingWindow::new(WindowLimit::new(nz(3), s(60)), false);
        for i in 0..3 {
            assert_eq!(w.wait(t0), Duration::ZERO, "request {i} goes at once");
            w.start();
        }
        // All three in flight: nothing frees before a full window.
        assert_eq!(w.wait(t0), s(60));
        w.finish(t0 + s(1));
        w.finish(t0 + s(2));
        w.finish(t0 + s(3));
        assert_eq!(w.wait(t0 + s(10)), s(51), "the oldest ages out at 61 s");
        assert_eq!(w.wait(t0 + s(61)), Duration::ZERO);
        w.start();
        assert_eq!(w.wait(t0 + s(61)), s(1), "then the second, at 62 s");
        assert_eq!(w.used(t0 + s(63)), 1);
    }

    #[test]
    fn the_servers_count_and_allowance_correct_the_model() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        // Documented default 300/min; the server announces 5.
        let mut w = SlidingWindow::new(WindowLimit::per_minute(nz(300)), true);
        w.start();
        w.correct(
            WindowUsage {
                count: 4,
                allowed: 5,
                reset: s(20),
            },
            t0,
        );
        assert_eq!(w.allowance(), 5);
        // The server counted 3 requests we never sent: 4 slots used, 1 left.
        assert_eq!(w.used(t0), 4);
        assert_eq!(w.wait(t0), Duration::ZERO);
        w.start();
        // Full: the unknown oldest ages out at the announced reset.
        assert_eq!(w.wait(t0), s(20));

        // A configured rate is only ever lowered by the server.
        let mut c = SlidingWindow::new(WindowLimit::per_minute(nz(10)), false);
        let big = WindowUsage {
            count: 1,
            allowed: u64::MAX,
            reset: MAX_ANNOUNCED_WAIT,
        };
        c.start();
        c.correct(big, t0);
        assert_eq!(c.allowance(), 10);
        c.correct(
            WindowUsage {
                count: 1,
                allowed: 2,
                reset: s(1),
            },
            t0,
        );
        assert_eq!(c.allowance(), 2);
        // An announced allowance of 0 is nonsense: the model keeps at least 1.
        let mut z = SlidingWindow::new(WindowLimit::per_minute(nz(10)), true);
        z.correct(
            WindowUsage {
                count: 0,
                allowed: 0,
                reset: s(0),
            },
            t0,
        );
        assert_eq!(z.allowance(), 10);
    }

    /// 7 requests under 3 per second, each taking 100 ms: three at once, three more when the
    /// first ones age out (1.1 s), the last at 2.2 s — no smooth spacing.
    #[tokio::test(start_paused = true)]
    async fn bursts_while_the_window_has_room() {
        let limiter = limiter(
            10,
            PacingPolicy::window(WindowLimit::new(nz(3), Duration::from_secs(1))),
        );
        let start = Instant::now();
        let tasks: Vec<_> = (0..7)
            .map(|_| {
                let limiter = limiter.clone();
                tokio::spawn(async move {
                    let permit = limiter.acquire().await;
                    let at = start.elapsed();
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    drop(permit);
                    at
                })
            })
            .collect();
        let mut starts = Vec::new();
        for t in tasks {
            starts.push(t.await.unwrap().as_millis());
        }
        starts.sort_unstable();
        assert_eq!(starts, [0, 0, 0, 1100, 1100, 1100, 2200]);
    }

    #[tokio::test(start_paused = true)]
    async fn acquire_within_refuses_at_once_and_says_how_long() {
        let limiter = limiter(
            4,
            PacingPolicy::window(WindowLimit::new(nz(1), Duration::from_secs(60))),
        );
        drop(limiter.acquire().await);
        let wait = limiter.wait_estimate();
        assert_eq!(wait, Duration::from_secs(60));
        let before = Instant::now();
        let err = limiter
            .acquire_within(Instant::now() + Duration::from_secs(5))
            .await
            .unwrap_err();
        assert_eq!(before.elapsed(), Duration::ZERO, "refused without waiting");
        assert_eq!(err.wait, Duration::from_secs(60));
        assert!(!err.server_hold);
        let e = err.into_error(crate::ProviderKind::from_static("genesys"));
        assert_eq!(e.kind(), crate::ErrorKind::RateLimited);
        // With enough budget it waits and goes.
        let permit = limiter
            .acquire_within(Instant::now() + Duration::from_secs(61))
            .await
            .unwrap();
        assert_eq!(before.elapsed(), Duration::from_secs(60));
        drop(permit);
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    /// A server's `Retry-After` holds every request, bounded: `acquire` never waits past
    /// `max_wait`, `acquire_within` refuses with the server's wait.
    #[tokio::test(start_paused = true)]
    async fn retry_after_holds_everyone_within_bounds() {
        let limiter = limiter(
            4,
            PacingPolicy::unpaced().with_max_wait(Duration::from_secs(30)),
        );
        for value in ["0", "1", "999999", "18446744073709551615", "-5", "soon", ""] {
            let signals = limiter.observe(
                StatusCode::TOO_MANY_REQUESTS,
                &headers(&[("retry-after", value)]),
            );
            assert!(signals.throttled);
            assert!(
                signals.retry_after.is_none_or(|d| d <= MAX_ANNOUNCED_WAIT),
                "{value}"
            );
        }
        let err = limiter
            .acquire_within(Instant::now() + Duration::from_secs(10))
            .await
            .unwrap_err();
        assert!(err.server_hold);
        assert_eq!(
            err.wait,
            Duration::from_secs(999_999).min(MAX_ANNOUNCED_WAIT)
        );
        let before = Instant::now();
        drop(limiter.acquire().await);
        assert_eq!(
            before.elapsed(),
            Duration::ZERO,
            "beyond max_wait: sent at once"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_full_window_announced_by_the_server_holds_until_its_reset() {
        let limiter = limiter(4, PacingPolicy::unpaced());
        let full = headers(&[
            ("inin-ratelimit-count", "300"),
            ("inin-ratelimit-allowed", "300"),
            ("inin-ratelimit-reset", "7"),
        ]);
        let reader = |h: &HeaderMap| RateSignals {
            window: Some(WindowUsage {
                count: header_number(h, "inin-ratelimit-count").unwrap(),
                allowed: header_number(h, "inin-ratelimit-allowed").unwrap(),
                reset: seconds_capped(h["inin-ratelimit-reset"].to_str().unwrap()).unwrap(),
            }),
            ..RateSignals::default()
        };
        limiter.apply(&reader(&full), Instant::now());
        let before = Instant::now();
        drop(limiter.acquire().await);
        assert_eq!(before.elapsed(), Duration::from_secs(7));
    }

    #[tokio::test(start_paused = true)]
    async fn throttles_without_a_delay_cool_down_everyone_incrementally() {
        let limiter = limiter(
            5,
            PacingPolicy::unpaced()
                .with_throttle_cooldown(Duration::from_secs(1), Duration::from_secs(4)),
        );
        let throttled = RateSignals {
            throttled: true,
            ..RateSignals::default()
        };
        let mut holds = Vec::new();
        for _ in 0..4 {
            limiter.apply(&throttled, Instant::now());
            holds.push(limiter.wait_estimate().as_secs());
            tokio::time::advance(Duration::from_secs(10)).await;
        }
        assert_eq!(holds, [1, 2, 4, 4]);
        limiter.apply(&RateSignals::default(), Instant::now());
        limiter.apply(&throttled, Instant::now());
        assert_eq!(
            limiter.wait_estimate(),
            Duration::from_secs(1),
            "reset by a success"
        );
    }

    #[test]
    fn header_numbers_never_panic() {
        let h = headers(&[
            ("a", "12"),
            ("b", "99999999999999999999999"),
            ("c", "-1"),
            ("d", "1e400"),
            ("e", "x"),
        ]);
        assert_eq!(header_number(&h, "a"), Some(12));
        assert_eq!(header_number(&h, "b"), None);
        assert_eq!(header_number(&h, "c"), None);
        assert_eq!(header_number(&h, "e"), None);
        assert_eq!(header_number(&h, "missing"), None);
        assert_eq!(seconds_capped(" 7 "), Some(Duration::from_secs(7)));
        assert_eq!(seconds_capped("1.5"), None);
        assert_eq!(seconds_capped("1e3"), None);
        assert_eq!(seconds_capped("1e400"), None);
        assert_eq!(seconds_capped("NaN"), None);
        assert_eq!(seconds_capped("inf"), None);
        assert_eq!(seconds_capped("-0"), None);
        assert_eq!(seconds_capped("99999999999999999999999"), None);
        assert_eq!(
            seconds_capped("18446744073709551615"),
            Some(MAX_ANNOUNCED_WAIT)
        );
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let later = httpdate::fmt_http_date(now + Duration::from_secs(30));
        let h = headers(&[("retry-after", &later)]);
        assert_eq!(retry_after_capped(&h, now), Some(Duration::from_secs(30)));
    }
}
