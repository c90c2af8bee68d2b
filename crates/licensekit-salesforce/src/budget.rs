//! Salesforce's limits for the shared limiter (spec §2.7): no per-minute rate — requests are
//! bound by concurrency only — and a rolling 24-hour API allocation, read from
//! `Sforce-Limit-Info` on every response, that a bulk change must not drain: a change whose call
//! estimate would leave less than the reserve (default 5 % of the allocation) is refused before
//! it starts. A 403 `REQUEST_LIMIT_EXCEEDED` is never retried (the classifier reads it as a
//! quota, not a throttle).

use http::{HeaderMap, StatusCode};
use licensekit_core::raw::client::limit::standard_signals;
use licensekit_core::raw::client::{QuotaUsage, RateSignals, SignalReader, VendorDefaults};
use licensekit_core::{Error, Result};

/// The org's rolling 24-hour API usage from `Sforce-Limit-Info: api-usage=USED/MAX` (§2.7, P-8).
/// USED may exceed MAX (P-8: `api-usage=110018/100000`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApiUsage {
    /// Calls used so far (the first number).
    pub used: u64,
    /// The allocation (the second number).
    pub max: u64,
}

impl ApiUsage {
    /// Parses the header value; `None` when it has no `api-usage` part. The REST guide's "Limit
    /// Info Header" separates parts with `;` (`api-usage=25/5000;
    /// per-app-api-usage=17/250(appName=sample-connected-app)`, P-8); `,` is accepted too.
    pub fn parse(header: &str) -> Option<ApiUsage> {
        let part = header
            .split([';', ','])
            .find_map(|p| p.trim().strip_prefix("api-usage="))?;
        let (used, max) = part.split_once('/')?;
        Some(ApiUsage {
            used: used.trim().parse().ok()?,
            max: max.trim().parse().ok()?,
        })
    }
}

/// Requests in flight by default. Salesforce limits only long-running requests (≥ 20 s) — 25 at
/// once in production and sandboxes, 5 in Developer Edition and trials (spec §2.7) — so 5 stays
/// within every edition's limit even if requests turn slow; raise it for production orgs.
pub const DEFAULT_CONCURRENCY: usize = 5;

/// The default reserve: this share of the daily allocation is never spent by a bulk change.
pub const DEFAULT_RESERVE_PERCENT: f64 = 5.0;

/// What Salesforce documents, for options left at their defaults.
pub fn vendor_defaults() -> VendorDefaults {
    VendorDefaults::concurrency(DEFAULT_CONCURRENCY)
}

/// Reads `Sforce-Limit-Info: api-usage=USED/MAX` (and the standard throttle signals).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct SalesforceSignals;

impl SignalReader for SalesforceSignals {
    fn read(&self, status: StatusCode, headers: &HeaderMap) -> RateSignals {
        let mut signals = standard_signals(status, headers);
        signals.quota = headers
            .get("sforce-limit-info")
            .and_then(|v| v.to_str().ok())
            .and_then(ApiUsage::parse)
            .map(|u| QuotaUsage {
                used: u.used,
                max: u.max,
            });
        signals
    }
}

/// The org's daily API allocation against a planned change.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ApiBudget {
    /// Calls used in the rolling 24 hours, as Salesforce last reported.
    pub used: u64,
    /// The daily allocation.
    pub max: u64,
    /// Calls the change is estimated to make.
    pub estimated: u64,
    /// Calls never to be spent by a change (`api_reserve_percent` of `max`, rounded up).
    pub reserve: u64,
}

impl ApiBudget {
    /// The budget of a change estimated at `estimated` calls, given the org's usage and the
    /// reserve to keep (percent of the allocation).
    ///
    /// ```
    /// use licensekit_salesforce::{ApiBudget, ApiUsage};
    ///
    /// let budget = ApiBudget::new(ApiUsage { used: 10_000, max: 100_000 }, 85, 5.0);
    /// assert_eq!(budget.reserve, 5_000);
    /// assert!(budget.check().is_ok());
    /// ```
    pub fn new(usage: ApiUsage, estimated: u64, reserve_percent: f64) -> Self {
        let share = (reserve_percent.clamp(0.0, 100.0) / 100.0) * usage.max as f64;
        ApiBudget {
            used: usage.used,
            max: usage.max,
            estimated,
            reserve: share.ceil() as u64,
        }
    }

    /// Calls left today.
    pub fn remaining(&self) -> u64 {
        self.max.saturating_sub(self.used)
    }

    /// Calls left after the change, if it makes the estimated number.
    pub fn remaining_after(&self) -> u64 {
        self.remaining().saturating_sub(self.estimated)
    }

    /// `Ok` when the change leaves at least the reserve; else a `RateLimited` error saying why.
    pub fn check(&self) -> Result<()> {
        if self.remaining() >= self.estimated.saturating_add(self.reserve) {
            return Ok(());
        }
        Err(Error::RateLimited {
            provider: crate::KIND,
            retry_after: None,
            source: Some(
                format!(
                    "refusing to start: the change needs about {} API calls, the org has {} of \
                     its {} daily calls left, and {} are kept in reserve; wait for the rolling \
                     24-hour usage to fall, split the change, or lower api_reserve_percent",
                    self.estimated,
                    self.remaining(),
                    self.max,
                    self.reserve
                )
                .into(),
            ),
        })
    }
}

/// API calls a change of `holders` users makes at most: the package lookup, one holder query
/// per 300 users, one sObject Collections call per 200.
pub fn estimate_change_calls(holders: usize) -> u64 {
    let n = holders as u64;
    1 + n.div_ceil(crate::MAX_IDS_PER_QUERY as u64) + n.div_ceil(crate::MAX_COLLECTION as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;
    use licensekit_core::ErrorKind;

    #[test]
    fn reads_the_daily_usage() {
        let mut h = HeaderMap::new();
        h.insert(
            "sforce-limit-info",
            HeaderValue::from_static("api-usage=25/5000"),
        );
        let s = SalesforceSignals.read(StatusCode::OK, &h);
        assert_eq!(
            s.quota,
            Some(QuotaUsage {
                used: 25,
                max: 5000
            })
        );
        assert!(!s.throttled);
        // A 403 REQUEST_LIMIT_EXCEEDED is a quota, not a throttle: nothing is held or retried.
        let s = SalesforceSignals.read(StatusCode::FORBIDDEN, &h);
        assert!(!s.throttled && s.retry_after.is_none());
    }

    #[test]
    fn limit_info_header() {
        assert_eq!(
            ApiUsage::parse("api-usage=10018/100000"),
            Some(ApiUsage {
                used: 10018,
                max: 100000
            })
        );
        // P-8, the documented `;` forms.
        assert_eq!(
            ApiUsage::parse(
                "api-usage=25/5000; per-app-api-usage=17/250(appName=sample-connected-app)"
            ),
            Some(ApiUsage {
                used: 25,
                max: 5000
            })
        );
        assert_eq!(
            ApiUsage::parse("api-usage=110018/100000; api-bursts=1/750"),
            Some(ApiUsage {
                used: 110018,
                max: 100000
            })
        );
        assert_eq!(
            ApiUsage::parse("per-app-api-usage=17/250(appName=x);api-usage=18/5000"),
            Some(ApiUsage {
                used: 18,
                max: 5000
            })
        );
        assert_eq!(
            ApiUsage::parse("api-usage=25/5000, per-app-api-usage=17/250(appName=sample)"),
            Some(ApiUsage {
                used: 25,
                max: 5000
            })
        );
        assert_eq!(ApiUsage::parse("per-app-api-usage=1/2"), None);
    }

    #[test]
    fn the_reserve_is_kept() {
        let usage = |used| ApiUsage { used, max: 100_000 };
        let ok = ApiBudget::new(usage(10_000), 85, DEFAULT_RESERVE_PERCENT);
        assert_eq!(ok.reserve, 5_000);
        assert_eq!(ok.remaining_after(), 89_915);
        ok.check().unwrap();
        // 94,916 used: 5,084 left, 85 needed, 5,000 kept: 1 short.
        let short = ApiBudget::new(usage(94_916), 85, DEFAULT_RESERVE_PERCENT);
        let err = short.check().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::RateLimited);
        let why = std::error::Error::source(&err).unwrap().to_string();
        assert!(
            why.contains("85 API calls") && why.contains("5000"),
            "{why}"
        );
        ApiBudget::new(usage(94_915), 85, DEFAULT_RESERVE_PERCENT)
            .check()
            .unwrap();
        // No reserve: the whole allocation may be spent, not more.
        ApiBudget::new(usage(99_915), 85, 0.0).check().unwrap();
        assert!(ApiBudget::new(usage(99_916), 85, 0.0).check().is_err());
        assert_eq!(estimate_change_calls(10_000), 85);
    }
}
