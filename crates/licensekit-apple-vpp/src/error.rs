//! Reads every Apple response (spec §7): errors come as `{errorNumber, errorMessage}` — sometimes
//! inside an HTTP 200 (§2.2) — so the body is always checked. The same pass notices another
//! management service's `mdmInfo` (§2.3) and records `tokenExpirationDate` (§2.2).

use std::sync::{Arc, Mutex};

use http::{HeaderMap, StatusCode};
use licensekit_core::client::{
    ErrorClassifier, FailureMeaning, VendorFailure, body_excerpt, meaning_of_status,
};
use licensekit_core::{ProviderKind, VendorError};
use serde::Deserialize;

use crate::wire::MdmInfo;

/// What licensekit needs from any response body; everything else is skipped.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Envelope {
    #[serde(default)]
    error_number: Option<i64>,
    #[serde(default)]
    error_message: Option<String>,
    #[serde(default)]
    mdm_info: Option<MdmInfo>,
    #[serde(default)]
    token_expiration_date: Option<String>,
}

/// Meaning of an Apple error number (§7.1, §7.2).
pub fn meaning_of_number(number: i64) -> FailureMeaning {
    match number {
        9601 | 9621 | 9622 | 9625 | 9722 => FailureMeaning::Unauthenticated,
        9646 => FailureMeaning::RateLimited,
        9603 | 9644 | 9729 => FailureMeaning::Unavailable,
        9637 | 9645 | 9647 => FailureMeaning::PermissionDenied,
        9634 | 9708 => FailureMeaning::NotFound,
        9602 | 9609 | 9650 | 9700..=9728 => FailureMeaning::InvalidInput,
        _ => FailureMeaning::Other,
    }
}

/// Shared between the classifier and the provider.
#[derive(Debug, Default)]
pub(crate) struct Observed {
    pub(crate) token_expiration_date: Option<String>,
}

#[derive(Debug, Clone)]
pub(crate) struct AppleResponses {
    /// Our own mdmInfo id: a response naming another owner is refused.
    pub(crate) our_mdm_id: Option<String>,
    pub(crate) observed: Arc<Mutex<Observed>>,
}

impl ErrorClassifier for AppleResponses {
    fn classify(
        &self,
        status: StatusCode,
        _headers: &HeaderMap,
        body: &[u8],
    ) -> Option<VendorFailure> {
        let envelope: Option<Envelope> = serde_json::from_slice(body).ok();
        let status_code = Some(status.as_u16());
        if let Some(env) = &envelope {
            if let Some(date) = &env.token_expiration_date {
                self.observed
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .token_expiration_date = Some(date.clone());
            }
            if let Some(number) = env.error_number {
                let message = env
                    .error_message
                    .clone()
                    .unwrap_or_else(|| format!("error {number}"));
                return Some(VendorFailure {
                    meaning: meaning_of_number(number),
                    error: VendorError::new(ProviderKind::AppleVpp, status_code, message)
                        .with_code(number.to_string()),
                });
            }
            if let (Some(ours), Some(theirs)) = (&self.our_mdm_id, &env.mdm_info) {
                if &theirs.id != ours {
                    return Some(VendorFailure {
                        meaning: FailureMeaning::PermissionDenied,
                        error: VendorError::new(
                            ProviderKind::AppleVpp,
                            status_code,
                            format!(
                                "the location is managed by another service ({} , mdmInfo id {}); Apple allows one \
                                 MDM per location: stop here and ask an administrator which service owns it",
                                theirs.name, theirs.id
                            ),
                        )
                        .with_code("mdmInfo-conflict"),
                    });
                }
            }
        }
        if status.is_success() {
            return None;
        }
        Some(VendorFailure {
            meaning: meaning_of_status(status),
            error: VendorError::new(ProviderKind::AppleVpp, status_code, body_excerpt(body)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inspector(ours: Option<&str>) -> AppleResponses {
        AppleResponses {
            our_mdm_id: ours.map(str::to_owned),
            observed: Arc::default(),
        }
    }

    #[test]
    fn errors_inside_http_200_are_errors() {
        // Fleet's observation: an invalid token answered with HTTP 200 (P-91 family).
        let f = inspector(None)
            .classify(
                StatusCode::OK,
                &HeaderMap::new(),
                br#"{"errorNumber": 9622, "errorMessage": "Invalid authentication token"}"#,
            )
            .unwrap();
        assert_eq!(f.meaning, FailureMeaning::Unauthenticated);
        assert_eq!(f.error.code.as_deref(), Some("9622"));
        // P-75.
        let f = inspector(None)
            .classify(StatusCode::METHOD_NOT_ALLOWED, &HeaderMap::new(), br#"{"errorNumber": 9726, "errorMessage": "This request contains an unsupported HTTP method for the requested endpoint."}"#)
            .unwrap();
        assert_eq!(f.meaning, FailureMeaning::InvalidInput);
        let throttled = inspector(None)
            .classify(
                StatusCode::TOO_MANY_REQUESTS,
                &HeaderMap::new(),
                br#"{"errorNumber": 9646, "errorMessage": "Too many requests"}"#,
            )
            .unwrap();
        assert_eq!(throttled.meaning, FailureMeaning::RateLimited);
    }

    #[test]
    fn another_owner_and_expiry_are_noticed() {
        let i = inspector(Some("ours"));
        let body = br#"{"uId": "1", "tokenExpirationDate": "2030-11-08T22:33:22+0000", "mdmInfo": {"id": "theirs", "name": "Other MDM", "metadata": "1"}}"#;
        let f = i.classify(StatusCode::OK, &HeaderMap::new(), body).unwrap();
        assert_eq!(f.meaning, FailureMeaning::PermissionDenied);
        assert!(f.error.message.contains("Other MDM"));
        assert_eq!(
            i.observed.lock().unwrap().token_expiration_date.as_deref(),
            Some("2030-11-08T22:33:22+0000")
        );
        let ok = br#"{"mdmInfo": {"id": "ours", "name": "licensekit", "metadata": ""}}"#;
        assert!(i.classify(StatusCode::OK, &HeaderMap::new(), ok).is_none());
    }
}
