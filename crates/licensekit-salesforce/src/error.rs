//! Reads Salesforce REST error arrays into core meanings (spec §2.6, §2.7, §2.8).

use http::{HeaderMap, StatusCode};
use licensekit_core::VendorError;
use licensekit_core::raw::client::{
    ErrorClassifier, FailureMeaning, VendorFailure, body_excerpt, meaning_of_status,
};

use crate::budget::ApiUsage;
use crate::wire::RestError;

#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct SalesforceErrors;

fn meaning_of_code(code: &str) -> Option<FailureMeaning> {
    Some(match code {
        "INVALID_SESSION_ID" => FailureMeaning::Unauthenticated,
        // The daily allocation: waiting seconds will not help (§2.7).
        "REQUEST_LIMIT_EXCEEDED" => FailureMeaning::QuotaExhausted,
        "MALFORMED_QUERY"
        | "INVALID_FIELD"
        | "INVALID_TYPE"
        | "MALFORMED_ID"
        | "INVALID_QUERY_FILTER_OPERATOR"
        | "JSON_PARSER_ERROR"
        | "EXCEEDED_ID_LIMIT"
        | "INVALID_QUERY_LOCATOR" => FailureMeaning::InvalidInput,
        "NOT_FOUND" => FailureMeaning::NotFound,
        "INSUFFICIENT_ACCESS" | "INSUFFICIENT_ACCESS_OR_READONLY" | "API_DISABLED_FOR_ORG" => {
            FailureMeaning::PermissionDenied
        }
        "SERVER_UNAVAILABLE" | "UNABLE_TO_LOCK_ROW" => FailureMeaning::Unavailable,
        _ => return None,
    })
}

impl ErrorClassifier for SalesforceErrors {
    fn classify(
        &self,
        status: StatusCode,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Option<VendorFailure> {
        if status.is_success() {
            return None;
        }
        let first = serde_json::from_slice::<Vec<RestError>>(body)
            .ok()
            .and_then(|v| v.into_iter().next());
        let (code, message) = match first {
            Some(e) => (Some(e.error_code), e.message),
            None => (None, body_excerpt(body)),
        };
        let mut meaning = code
            .as_deref()
            .and_then(meaning_of_code)
            .unwrap_or_else(|| meaning_of_status(status));
        let message = if code.as_deref() == Some("REQUEST_LIMIT_EXCEEDED") {
            let (m, explained) = request_limit(&message, headers);
            meaning = m;
            explained
        } else {
            message
        };
        let mut error = VendorError::new(crate::KIND, Some(status.as_u16()), message);
        if let Some(code) = code {
            error = error.with_code(code);
        }
        Some(VendorFailure { meaning, error })
    }
}

/// `REQUEST_LIMIT_EXCEEDED` covers two limits (§2.7): the org's rolling 24-hour API allowance
/// ("TotalRequests Limit exceeded.") — shared by every integration of the org, refilled only as
/// the day rolls on, so not retried — and the org's concurrent long-running requests
/// ("ConcurrentPerOrgLongTxn Limit exceeded.") — throttling, retried with backoff. The message
/// says which, with the used/max figures of `Sforce-Limit-Info` (sent on every response, §2.7).
fn request_limit(vendor_message: &str, headers: &HeaderMap) -> (FailureMeaning, String) {
    if vendor_message.contains("ConcurrentPerOrgLongTxn") {
        return (
            FailureMeaning::RateLimited,
            format!(
                "too many long-running requests (20 s or more) at once in the org; \
                 Salesforce said: {vendor_message}"
            ),
        );
    }
    let usage = headers
        .get("sforce-limit-info")
        .and_then(|v| v.to_str().ok())
        .and_then(ApiUsage::parse)
        .map(|u| format!(" ({} of {} calls used", u.used, u.max))
        .unwrap_or_else(|| " (usage not reported".into());
    (
        FailureMeaning::QuotaExhausted,
        format!(
            "the org's daily API request allowance is used up{usage} over the rolling 24 hours, \
             per Sforce-Limit-Info); every integration of the org is refused until usage falls \
             below the allowance. Salesforce said: {vendor_message}"
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documented_error_bodies() {
        let f = |status: u16, body: &str| {
            SalesforceErrors
                .classify(
                    StatusCode::from_u16(status).unwrap(),
                    &HeaderMap::new(),
                    body.as_bytes(),
                )
                .unwrap()
        };
        let expired = f(
            401,
            r#"[{"message":"Session expired or invalid","errorCode":"INVALID_SESSION_ID"}]"#,
        );
        assert_eq!(expired.meaning, FailureMeaning::Unauthenticated);
        let quota = f(
            403,
            r#"[{"message":"TotalRequests Limit exceeded.","errorCode":"REQUEST_LIMIT_EXCEEDED"}]"#,
        );
        assert_eq!(quota.meaning, FailureMeaning::QuotaExhausted);
        assert_eq!(quota.error.code.as_deref(), Some("REQUEST_LIMIT_EXCEEDED"));
        assert!(
            quota.error.message.contains("usage not reported"),
            "{}",
            quota.error.message
        );
        let malformed = f(
            400,
            r#"[{"message":"unexpected token","errorCode":"MALFORMED_QUERY"}]"#,
        );
        assert_eq!(malformed.meaning, FailureMeaning::InvalidInput);
        let html = f(503, "<html>down</html>");
        assert_eq!(html.meaning, FailureMeaning::Unavailable);
    }

    #[test]
    fn the_daily_allowance_is_named_with_its_figures() {
        // P-8's header and the documented 403 body.
        let mut headers = HeaderMap::new();
        headers.insert(
            "Sforce-Limit-Info",
            "api-usage=110018/100000; api-bursts=1/750".parse().unwrap(),
        );
        let f = SalesforceErrors
            .classify(
                StatusCode::FORBIDDEN,
                &headers,
                br#"[{"message":"TotalRequests Limit exceeded.","errorCode":"REQUEST_LIMIT_EXCEEDED"}]"#,
            )
            .unwrap();
        assert_eq!(f.meaning, FailureMeaning::QuotaExhausted);
        let err = licensekit_core::raw::client::failure_to_error(f, None);
        assert_eq!(err.kind(), licensekit_core::ErrorKind::RateLimited);
        let shown = err.to_string();
        for needle in [
            "daily API request allowance",
            "110018 of 100000",
            "TotalRequests Limit exceeded.",
        ] {
            assert!(shown.contains(needle), "{needle}: {shown}");
        }

        let f = SalesforceErrors
            .classify(
                StatusCode::FORBIDDEN,
                &headers,
                br#"[{"message":"ConcurrentPerOrgLongTxn Limit exceeded.","errorCode":"REQUEST_LIMIT_EXCEEDED"}]"#,
            )
            .unwrap();
        assert_eq!(
            f.meaning,
            FailureMeaning::RateLimited,
            "concurrency: wait and retry"
        );
        assert!(
            f.error.message.contains("long-running"),
            "{}",
            f.error.message
        );
    }
}
