//! Pacing for Genesys: the documented 300 requests/minute per token (spec §4), and the
//! `inin-ratelimit-count/allowed/reset` headers where the API sends them (§6): when the count
//! reaches the allowance, requests wait for the window to reset instead of collecting 429s.

use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use licensekit_core::client::{Pacer, RateLimit};
use tokio::time::Instant;

#[derive(Debug)]
pub(crate) struct GenesysPacer {
    rate: Option<RateLimit>,
    follow_headers: bool,
    blocked_until: Mutex<Option<Instant>>,
}

impl GenesysPacer {
    pub(crate) fn new(rate: Option<RateLimit>, follow_headers: bool) -> Self {
        GenesysPacer {
            rate,
            follow_headers,
            blocked_until: Mutex::new(None),
        }
    }
}

fn number(headers: &http::HeaderMap, name: &str) -> Option<u64> {
    headers.get(name)?.to_str().ok()?.trim().parse().ok()
}

#[async_trait]
impl Pacer for GenesysPacer {
    async fn until_ready(&self) {
        if let Some(rate) = &self.rate {
            rate.until_ready().await;
        }
        let until = *self.blocked_until.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(until) = until {
            tokio::time::sleep_until(until).await;
        }
    }

    fn observe(&self, headers: &http::HeaderMap) {
        if !self.follow_headers {
            return;
        }
        // A 429's Retry-After holds every request, not only the one being retried: a burst of
        // concurrent calls would otherwise each collect its own 429.
        if let Some(seconds) = number(headers, "retry-after") {
            self.block_for(Duration::from_secs(seconds.min(180)));
        }
        let (Some(count), Some(allowed), Some(reset)) = (
            number(headers, "inin-ratelimit-count"),
            number(headers, "inin-ratelimit-allowed"),
            number(headers, "inin-ratelimit-reset"),
        ) else {
            return;
        };
        if count >= allowed {
            self.block_for(Duration::from_secs(reset));
        }
    }
}

impl GenesysPacer {
    fn block_for(&self, wait: Duration) {
        // Overflow-safe: `inin-ratelimit-reset: 18446744073709551615` must not panic. A hold
        // that long is left to the client's budget check, which fails the request at once.
        let Some(until) = Instant::now().checked_add(wait) else {
            return;
        };
        let mut blocked = self.blocked_until.lock().unwrap_or_else(|p| p.into_inner());
        if blocked.is_none_or(|b| b < until) {
            *blocked = Some(until);
        }
    }
}
