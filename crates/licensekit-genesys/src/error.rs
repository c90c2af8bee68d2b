//! Reads Genesys `ErrorBody` responses into core error meanings (spec §2, §3, §6).

use http::{HeaderMap, StatusCode};
use licensekit_core::VendorError;
use licensekit_core::raw::client::{
    ErrorClassifier, FailureMeaning, VendorFailure, body_excerpt, meaning_of_status,
};

use crate::wire::ErrorBody;

/// The correlation id every response carries (spec §6).
pub const CORRELATION_HEADER: &str = "ININ-Correlation-Id";

#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct GenesysErrors;

/// Meaning of a Genesys error code (spec §3). `None` leaves it to the HTTP status.
fn meaning_of_code(code: &str) -> Option<FailureMeaning> {
    Some(match code {
        "not.found" => FailureMeaning::NotFound,
        "bad.request"
        | "invalid.value"
        | "invalid.date"
        | "request.entity.too.large"
        | "unsupported.media.type" => FailureMeaning::InvalidInput,
        "authentication.required"
        | "bad.credentials"
        | "credentials.expired"
        | "unauthorized"
        | "ip.not.authorized" => FailureMeaning::Unauthenticated,
        "missing.permissions" | "missing.any.permissions" | "not.authorized" => {
            FailureMeaning::PermissionDenied
        }
        "too.many.requests.retry.after" | "too.many.requests" => FailureMeaning::RateLimited,
        "service.unavailable"
        | "request.timeout"
        | "authentication.request.timeout"
        | "client.timeout" => FailureMeaning::Unavailable,
        // Genesys: treat 500 as not retryable (spec §6, resiliency guidance).
        "internal.server.error" => FailureMeaning::Other,
        _ => return None,
    })
}

impl ErrorClassifier for GenesysErrors {
    fn classify(
        &self,
        status: StatusCode,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Option<VendorFailure> {
        if status.is_success() {
            return None;
        }
        let parsed: Option<ErrorBody> = serde_json::from_slice(body).ok();
        let correlation = headers
            .get(CORRELATION_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
            .or_else(|| parsed.as_ref().and_then(|b| b.context_id.clone()));
        let code = parsed.as_ref().and_then(|b| b.code.clone());
        let message = parsed
            .as_ref()
            .and_then(|b| b.message.clone())
            .unwrap_or_else(|| body_excerpt(body));
        let meaning = code
            .as_deref()
            .and_then(meaning_of_code)
            .unwrap_or_else(|| match status.as_u16() {
                500 | 501 => FailureMeaning::Other,
                _ => meaning_of_status(status),
            });
        let mut error = VendorError::new(crate::KIND, Some(status.as_u16()), message)
            .with_correlation_id(correlation);
        if let Some(code) = code {
            error = error.with_code(code);
        }
        Some(VendorFailure { meaning, error })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalized_429_is_rate_limited_with_correlation() {
        // Verbatim body from genesys-payloads.md §1.
        let body = br#"{
  "message": "Rate limit exceeded the maximum. Retry the request in [42] seconds",
  "code": "too.many.requests.retry.after",
  "status": 429,
  "contextId": "abc-123",
  "details": [],
  "errors": []
}"#;
        let failure = GenesysErrors
            .classify(StatusCode::TOO_MANY_REQUESTS, &HeaderMap::new(), body)
            .unwrap();
        assert_eq!(failure.meaning, FailureMeaning::RateLimited);
        assert_eq!(failure.error.correlation_id.as_deref(), Some("abc-123"));
        assert_eq!(
            failure.error.code.as_deref(),
            Some("too.many.requests.retry.after")
        );
    }

    #[test]
    fn codes_map_by_meaning_and_500_is_not_transient() {
        let cases = [
            (
                403,
                "missing.any.permissions",
                FailureMeaning::PermissionDenied,
            ),
            (401, "bad.credentials", FailureMeaning::Unauthenticated),
            (404, "not.found", FailureMeaning::NotFound),
            (400, "invalid.value", FailureMeaning::InvalidInput),
            (503, "service.unavailable", FailureMeaning::Unavailable),
            (500, "internal.server.error", FailureMeaning::Other),
        ];
        for (status, code, meaning) in cases {
            let body = format!(r#"{{"message":"m","code":"{code}","status":{status}}}"#);
            let mut headers = HeaderMap::new();
            headers.insert(CORRELATION_HEADER, "corr-1".parse().unwrap());
            let f = GenesysErrors
                .classify(
                    StatusCode::from_u16(status).unwrap(),
                    &headers,
                    body.as_bytes(),
                )
                .unwrap();
            assert_eq!(f.meaning, meaning, "{code}");
            assert_eq!(f.error.correlation_id.as_deref(), Some("corr-1"));
        }
        // An HTML gateway page still classifies by status.
        let f = GenesysErrors
            .classify(
                StatusCode::BAD_GATEWAY,
                &HeaderMap::new(),
                b"<html>bad gateway</html>",
            )
            .unwrap();
        assert_eq!(f.meaning, FailureMeaning::Unavailable);
        assert!(
            GenesysErrors
                .classify(StatusCode::OK, &HeaderMap::new(), b"{}")
                .is_none()
        );
    }
}
