//! Genesys's limits for the shared limiter: the documented 300 requests per 60 s per token
//! (spec §4), modelled as a sliding window, and the `inin-ratelimit-count/allowed/reset`
//! headers (§6) that correct it — the announced allowance replaces the documented one, a count
//! above ours adds the requests another client made on the same token, a full window holds every
//! request until its reset. Genesys documents no concurrency limit.

use std::num::NonZeroU32;

use http::{HeaderMap, StatusCode};
use licensekit_core::raw::client::limit::{header_number, seconds_capped, standard_signals};
use licensekit_core::raw::client::{
    RateSignals, SignalReader, VendorDefaults, WindowLimit, WindowUsage,
};

/// The documented per-token allowance (spec §4: `client.credentials.token.rate.per.minute`).
pub const DOCUMENTED_PER_MINUTE: u32 = 300;

/// Requests in flight by default. Genesys documents none besides the per-minute allowance; 16
/// lets a job inside one window (10,000 users = ~200 batch calls) run at network speed — at
/// 50 ms per call that is ~0.7 s — while the window, not concurrency, bounds anything larger.
pub const DEFAULT_CONCURRENCY: usize = 16;

/// What Genesys documents, for options left at their defaults.
pub fn vendor_defaults() -> VendorDefaults {
    VendorDefaults::concurrency(DEFAULT_CONCURRENCY).with_window(WindowLimit::per_minute(
        NonZeroU32::new(DOCUMENTED_PER_MINUTE).expect("non-zero"),
    ))
}

/// Reads `Retry-After` and `inin-ratelimit-*`. A 429 without `Retry-After` waits for the
/// window's announced reset.
#[derive(Debug, Clone, Copy, Default)]
pub struct GenesysSignals;

impl SignalReader for GenesysSignals {
    fn read(&self, status: StatusCode, headers: &HeaderMap) -> RateSignals {
        let mut signals = standard_signals(status, headers);
        let reset = headers
            .get("inin-ratelimit-reset")
            .and_then(|v| v.to_str().ok())
            .and_then(seconds_capped);
        if let (Some(count), Some(allowed), Some(reset)) = (
            header_number(headers, "inin-ratelimit-count"),
            header_number(headers, "inin-ratelimit-allowed"),
            reset,
        ) {
            signals.window = Some(WindowUsage {
                count,
                allowed,
                reset,
            });
        }
        if signals.throttled && signals.retry_after.is_none() {
            signals.retry_after = reset;
        }
        signals
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;
    use licensekit_core::raw::client::limit::MAX_ANNOUNCED_WAIT;
    use std::time::Duration;

    fn read(status: u16, pairs: &[(&'static str, &str)]) -> RateSignals {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        GenesysSignals.read(StatusCode::from_u16(status).unwrap(), &h)
    }

    #[test]
    fn rate_headers_of_any_value_never_panic() {
        let ok = read(
            200,
            &[
                ("inin-ratelimit-count", "12"),
                ("inin-ratelimit-allowed", "300"),
                ("inin-ratelimit-reset", "41"),
            ],
        );
        assert_eq!(
            ok.window,
            Some(WindowUsage {
                count: 12,
                allowed: 300,
                reset: Duration::from_secs(41)
            })
        );
        assert_eq!(ok.retry_after, None, "a success holds nothing by itself");
        for reset in [
            "0",
            "1",
            "999999",
            "18446744073709551615",
            "99999999999999999999999",
            "-1",
            "garbage",
            "Wed, 21 Oct 2015 07:28:00 GMT",
        ] {
            let s = read(
                429,
                &[
                    ("inin-ratelimit-count", "300"),
                    ("inin-ratelimit-allowed", "300"),
                    ("inin-ratelimit-reset", reset),
                ],
            );
            assert!(s.throttled);
            assert!(
                s.retry_after.is_none_or(|d| d <= MAX_ANNOUNCED_WAIT),
                "{reset}: {s:?}"
            );
        }
        // A 429's Retry-After wins over the window's reset.
        let s = read(
            429,
            &[
                ("retry-after", "3"),
                ("inin-ratelimit-count", "300"),
                ("inin-ratelimit-allowed", "300"),
                ("inin-ratelimit-reset", "40"),
            ],
        );
        assert_eq!(s.retry_after, Some(Duration::from_secs(3)));
    }
}
