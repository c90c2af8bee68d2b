//! Reads Salesforce REST error arrays into core meanings (spec §2.6, §2.7, §2.8).

use http::{HeaderMap, StatusCode};
use licensekit_core::client::{
    ErrorClassifier, FailureMeaning, VendorFailure, body_excerpt, meaning_of_status,
};
use licensekit_core::{ProviderKind, VendorError};

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
        _headers: &HeaderMap,
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
        let meaning = code
            .as_deref()
            .and_then(meaning_of_code)
            .unwrap_or_else(|| meaning_of_status(status));
        let mut error = VendorError::new(ProviderKind::Salesforce, Some(status.as_u16()), message);
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
        let malformed = f(
            400,
            r#"[{"message":"unexpected token","errorCode":"MALFORMED_QUERY"}]"#,
        );
        assert_eq!(malformed.meaning, FailureMeaning::InvalidInput);
        let html = f(503, "<html>down</html>");
        assert_eq!(html.meaning, FailureMeaning::Unavailable);
    }
}
