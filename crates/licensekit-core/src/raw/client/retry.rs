//! When to try a request again, and how long to wait: a pure classification, table-tested.
//!
//! Rules (object_store's, plus `Retry-After`): throttling (429 or a vendor throttle code) is
//! always retried — the vendor refused the request, so nothing happened. Other transient
//! failures (408, 5xx, timeouts, dropped connections) are retried only when the request is
//! idempotent, because a mutation may have been applied before the failure; a request that never
//! left (connect error) is always safe to resend.

use std::time::{Duration, SystemTime};

use backon::{BackoffBuilder, ExponentialBuilder};
use http::{HeaderMap, StatusCode};

/// Limits on retrying one request.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct RetryConfig {
    /// Most attempts in total (the first one included).
    pub max_attempts: u32,
    /// Most time from the first attempt; no retry starts after it.
    pub max_elapsed: Duration,
    /// First backoff delay.
    pub initial_backoff: Duration,
    /// Largest backoff delay.
    pub max_backoff: Duration,
    /// Largest `Retry-After` honoured; a longer one gives up (the caller sees `RateLimited`).
    pub max_retry_after: Duration,
    /// Longest single wait a server may ask for (`Retry-After`, an exhausted rate-limit window)
    /// before the request gives up at once with `RateLimited { retry_after }`; a wait longer
    /// than the time left in `max_elapsed` gives up the same way. Default 60 s.
    pub max_wait: Duration,
    /// Seed for the backoff jitter; `None` = random. Tests set it for repeatable delays.
    pub jitter_seed: Option<u64>,
}

impl Default for RetryConfig {
    fn default() -> Self {
        RetryConfig {
            max_attempts: 6,
            max_elapsed: Duration::from_secs(120),
            initial_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(15),
            max_retry_after: Duration::from_secs(120),
            max_wait: Duration::from_secs(60),
            jitter_seed: None,
        }
    }
}

impl RetryConfig {
    /// Jittered exponential delays (backon), for the retries of one request.
    pub fn backoff(&self) -> impl Iterator<Item = Duration> + Send + use<> {
        let mut builder = ExponentialBuilder::new()
            .with_min_delay(self.initial_backoff)
            .with_max_delay(self.max_backoff)
            .with_factor(2.0)
            .without_max_times();
        builder = match self.jitter_seed {
            Some(seed) => builder.with_jitter_seed(seed),
            None => builder.with_jitter(),
        };
        builder.build()
    }

    /// No retries at all.
    pub fn none() -> Self {
        RetryConfig {
            max_attempts: 1,
            ..RetryConfig::default()
        }
    }

    /// Attempts in all, the first included (at least 1).
    pub fn with_max_attempts(mut self, n: u32) -> Self {
        self.max_attempts = n.max(1);
        self
    }

    /// Stops retrying once this much time has passed since the first attempt.
    pub fn with_max_elapsed(mut self, d: Duration) -> Self {
        self.max_elapsed = d;
        self
    }

    /// Backoff starts at `initial` and doubles up to `max`, jittered.
    pub fn with_backoff(mut self, initial: Duration, max: Duration) -> Self {
        self.initial_backoff = initial;
        self.max_backoff = max;
        self
    }

    /// Longest single server-requested wait (see [`RetryConfig::max_wait`]).
    pub fn with_max_wait(mut self, d: Duration) -> Self {
        self.max_wait = d;
        self
    }

    /// Makes the jitter reproducible (tests and simulations).
    pub fn with_jitter_seed(mut self, seed: u64) -> Self {
        self.jitter_seed = Some(seed);
        self
    }
}

/// What a failed attempt tells about retrying.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// The vendor answered with an error.
    Response {
        /// The HTTP status.
        status: StatusCode,
        /// The vendor signalled throttling (429, or a vendor code such as Apple's 9646).
        throttled: bool,
        /// The server's requested delay, already parsed.
        retry_after: Option<Duration>,
    },
    /// No response. `sent` is false when the request provably never left (connect failure).
    Transport {
        /// Whether the request may have reached the vendor.
        sent: bool,
    },
}

/// What to do after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryDecision {
    /// Give up; return the error.
    Stop,
    /// Wait what the server asked, then retry.
    RetryAfter(Duration),
    /// Wait the next backoff delay, then retry.
    Backoff,
}

/// Classifies a failed attempt. `attempt` counts from 1.
pub fn classify(
    config: &RetryConfig,
    failure: Failure,
    attempt: u32,
    idempotent: bool,
) -> RetryDecision {
    if attempt >= config.max_attempts {
        return RetryDecision::Stop;
    }
    match failure {
        Failure::Transport { sent: false } => RetryDecision::Backoff,
        Failure::Transport { sent: true } if idempotent => RetryDecision::Backoff,
        Failure::Transport { sent: true } => RetryDecision::Stop,
        Failure::Response {
            status,
            throttled,
            retry_after,
        } => {
            let throttled = throttled || status == StatusCode::TOO_MANY_REQUESTS;
            let transient = status == StatusCode::REQUEST_TIMEOUT || status.is_server_error();
            if !(throttled || (transient && idempotent)) {
                return RetryDecision::Stop;
            }
            match retry_after {
                Some(d) if d > config.max_retry_after.min(config.max_wait) => RetryDecision::Stop,
                Some(d) => RetryDecision::RetryAfter(d),
                None => RetryDecision::Backoff,
            }
        }
    }
}

/// Parses `Retry-After` in either form: delta-seconds or an HTTP-date (RFC 9110 §10.2.3).
/// A date in the past means "now". Unparseable values are ignored (`None`).
pub fn parse_retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let value = headers
        .get(http::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    const S: fn(u16) -> StatusCode = |c| StatusCode::from_u16(c).unwrap();

    fn response(status: u16, retry_after: Option<u64>) -> Failure {
        Failure::Response {
            status: S(status),
            throttled: false,
            retry_after: retry_after.map(Duration::from_secs),
        }
    }

    #[test]
    fn classification_table() {
        use RetryDecision::*;
        let config = RetryConfig::default().with_max_attempts(4);
        let secs = |s| RetryAfter(Duration::from_secs(s));
        #[rustfmt::skip]
        let table: Vec<(Failure, u32, bool, RetryDecision)> = vec![
            // 429: always, honouring Retry-After, even for non-idempotent requests.
            (response(429, None), 1, false, Backoff),
            (response(429, Some(7)), 1, false, secs(7)),
            (response(429, Some(7)), 4, true, Stop),                 // attempts used up
            (response(429, Some(1000)), 1, true, Stop),              // longer than max_retry_after
            (response(429, Some(61)), 1, true, Stop),                // longer than max_wait (60 s)
            (response(429, Some(u64::MAX)), 1, true, Stop),
            // vendor throttle code on a non-429 status (Apple 9646 may come with 200/500).
            (Failure::Response { status: S(200), throttled: true, retry_after: None }, 1, false, Backoff),
            // 5xx and 408: only when idempotent.
            (response(503, Some(2)), 1, true, secs(2)),
            (response(503, Some(2)), 1, false, Stop),
            (response(500, None), 2, true, Backoff),
            (response(500, None), 2, false, Stop),
            (response(502, None), 1, true, Backoff),
            (response(408, None), 1, true, Backoff),
            // 4xx other than 408/429: never.
            (response(400, None), 1, true, Stop),
            (response(401, None), 1, true, Stop),
            (response(404, Some(1)), 1, true, Stop),
            // Transport: never sent -> always; sent -> only idempotent.
            (Failure::Transport { sent: false }, 1, false, Backoff),
            (Failure::Transport { sent: true }, 1, true, Backoff),
            (Failure::Transport { sent: true }, 1, false, Stop),
            (Failure::Transport { sent: false }, 4, false, Stop),
        ];
        for (i, (failure, attempt, idempotent, expected)) in table.into_iter().enumerate() {
            assert_eq!(
                classify(&config, failure, attempt, idempotent),
                expected,
                "row {i}: {failure:?} attempt {attempt} idempotent {idempotent}"
            );
        }
    }

    #[test]
    fn retry_after_seconds_and_http_date() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let mut headers = HeaderMap::new();
        headers.insert("retry-after", HeaderValue::from_static("12"));
        assert_eq!(
            parse_retry_after(&headers, now),
            Some(Duration::from_secs(12))
        );

        let later = httpdate::fmt_http_date(now + Duration::from_secs(30));
        headers.insert("retry-after", HeaderValue::from_str(&later).unwrap());
        assert_eq!(
            parse_retry_after(&headers, now),
            Some(Duration::from_secs(30))
        );

        let earlier = httpdate::fmt_http_date(now - Duration::from_secs(30));
        headers.insert("retry-after", HeaderValue::from_str(&earlier).unwrap());
        assert_eq!(parse_retry_after(&headers, now), Some(Duration::ZERO));

        headers.insert("retry-after", HeaderValue::from_static("soon"));
        assert_eq!(parse_retry_after(&headers, now), None);
        assert_eq!(parse_retry_after(&HeaderMap::new(), now), None);
    }

    #[test]
    fn backoff_grows_and_is_capped_and_seedable() {
        let config = RetryConfig::default()
            .with_backoff(Duration::from_millis(100), Duration::from_secs(1))
            .with_jitter_seed(7);
        let a: Vec<_> = config.backoff().take(8).collect();
        let b: Vec<_> = config.backoff().take(8).collect();
        assert_eq!(a, b, "a seed makes the jitter repeatable");
        assert!(a[0] >= Duration::from_millis(100));
        // Capped at max_backoff (plus at most one unit of jitter).
        assert!(a.iter().all(|d| *d <= Duration::from_secs(2)), "{a:?}");
        assert!(a[3] > a[0], "delays grow: {a:?}");
    }
}
