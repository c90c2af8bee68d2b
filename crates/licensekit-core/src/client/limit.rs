//! Per-provider request limits: a cap on requests in flight and a request rate.

use std::fmt;
use std::num::NonZeroU32;
use std::sync::Arc;

use async_trait::async_trait;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Paces requests. Injectable so tests can use a limiter on tokio's (pausable) clock.
#[async_trait]
pub trait Pacer: Send + Sync + fmt::Debug {
    /// Waits until one more request may start.
    async fn until_ready(&self);

    /// Sees every response's headers, so a pacer can follow the vendor's rate-limit headers.
    fn observe(&self, _headers: &http::HeaderMap) {}
}

/// A token-bucket rate from a vendor's documented limit (governor).
pub struct RateLimit {
    limiter: DefaultDirectRateLimiter,
    description: String,
}

impl RateLimit {
    /// At most `n` requests per minute, with bursts of up to `burst`.
    pub fn per_minute(n: NonZeroU32, burst: NonZeroU32) -> Self {
        RateLimit {
            limiter: RateLimiter::direct(Quota::per_minute(n).allow_burst(burst)),
            description: format!("{n}/min (burst {burst})"),
        }
    }

    /// At most `n` requests per second, with bursts of up to `burst`.
    pub fn per_second(n: NonZeroU32, burst: NonZeroU32) -> Self {
        RateLimit {
            limiter: RateLimiter::direct(Quota::per_second(n).allow_burst(burst)),
            description: format!("{n}/s (burst {burst})"),
        }
    }
}

impl fmt::Debug for RateLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RateLimit({})", self.description)
    }
}

#[async_trait]
impl Pacer for RateLimit {
    async fn until_ready(&self) {
        self.limiter.until_ready().await;
    }
}

/// An even pace of `rpm` requests per minute without bursts (so a vendor's fixed one-minute
/// window never sees more than `rpm`), or none. `rpm = Some(0)` is a configuration error.
pub fn per_minute_pacer(
    provider: crate::ProviderKind,
    rpm: Option<u32>,
) -> crate::Result<Option<Arc<dyn Pacer>>> {
    let Some(rpm) = rpm else { return Ok(None) };
    let rpm = NonZeroU32::new(rpm).ok_or_else(|| {
        crate::Error::config(format!(
            "{provider}: requests_per_minute must be at least 1"
        ))
    })?;
    Ok(Some(Arc::new(RateLimit::per_minute(rpm, NonZeroU32::MIN))))
}

/// The limits of one provider's client: at most `max_in_flight` requests at once, paced by an
/// optional [`Pacer`].
#[derive(Debug, Clone)]
pub struct RequestLimiter {
    in_flight: Arc<Semaphore>,
    max_in_flight: usize,
    pacer: Option<Arc<dyn Pacer>>,
}

impl RequestLimiter {
    pub fn new(max_in_flight: usize, pacer: Option<Arc<dyn Pacer>>) -> Self {
        let max_in_flight = max_in_flight.max(1);
        RequestLimiter {
            in_flight: Arc::new(Semaphore::new(max_in_flight)),
            max_in_flight,
            pacer,
        }
    }

    /// No pacing, `max_in_flight` concurrent requests.
    pub fn unpaced(max_in_flight: usize) -> Self {
        Self::new(max_in_flight, None)
    }

    pub fn max_in_flight(&self) -> usize {
        self.max_in_flight
    }

    /// Passes a response's headers to the pacer.
    pub fn observe(&self, headers: &http::HeaderMap) {
        if let Some(pacer) = &self.pacer {
            pacer.observe(headers);
        }
    }

    /// Waits for a slot and the pacer; the slot is held until the permit drops.
    pub async fn acquire(&self) -> OwnedSemaphorePermit {
        let permit = self
            .in_flight
            .clone()
            .acquire_owned()
            .await
            .expect("the semaphore is never closed");
        if let Some(pacer) = &self.pacer {
            pacer.until_ready().await;
        }
        permit
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

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

    #[tokio::test]
    async fn rate_limit_paces_after_the_burst() {
        let limiter = RequestLimiter::new(
            10,
            Some(Arc::new(RateLimit::per_second(
                NonZeroU32::new(20).unwrap(),
                NonZeroU32::new(2).unwrap(),
            ))),
        );
        let start = std::time::Instant::now();
        for _ in 0..6 {
            drop(limiter.acquire().await);
        }
        // 2 at once, then 4 more at 50 ms each.
        let elapsed = start.elapsed();
        assert!(elapsed >= Duration::from_millis(180), "{elapsed:?}");
    }
}
