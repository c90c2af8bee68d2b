//! Reads every Apple response (spec §7): errors come as `{errorNumber, errorMessage}` — sometimes
//! inside an HTTP 200 (§2.2) — so the body is always checked. The same pass notices another
//! management service's `mdmInfo` (§2.3) and records `tokenExpirationDate` (§2.2).

use std::sync::{Arc, Mutex};

use http::{HeaderMap, StatusCode};
use licensekit_core::VendorError;
use licensekit_core::raw::client::{
    ErrorClassifier, FailureMeaning, VendorFailure, body_excerpt, meaning_of_status,
};
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
    /// The owner named by the latest response that named one.
    pub(crate) mdm_info: Option<MdmInfo>,
}

#[derive(Debug, Clone)]
pub(crate) struct AppleResponses {
    pub(crate) observed: Arc<Mutex<Observed>>,
}

/// Who may change the location (spec §2.3: one MDM per location; clients check `mdmInfo` on
/// every response). Safe by default: a location another service owns is never changed, whether
/// or not we configured an identity of our own. Reading is always allowed.
#[derive(Debug, Clone)]
pub(crate) struct Ownership {
    /// Our identity, if configured.
    pub(crate) ours: Option<MdmInfo>,
    pub(crate) observed: Arc<Mutex<Observed>>,
}

impl Ownership {
    /// The owner last seen, if it is not us.
    pub(crate) fn foreign_owner(&self) -> Option<MdmInfo> {
        let observed = self.observed.lock().unwrap_or_else(|p| p.into_inner());
        let theirs = observed.mdm_info.as_ref()?;
        match &self.ours {
            Some(ours) if ours.id == theirs.id => None,
            _ => Some(theirs.clone()),
        }
    }

    /// Refuses a write while the latest response names another owner. Costs no request: every
    /// Apple response carries the owner once set, and every write is preceded by a read.
    pub(crate) fn check_writable(&self) -> licensekit_core::Result<()> {
        match self.foreign_owner() {
            None => Ok(()),
            Some(theirs) => Err(owner_conflict(&theirs, self.ours.is_some())),
        }
    }
}

/// `PermissionDenied` naming the owner; `is_mdm_conflict` recognises it by its code.
pub(crate) fn owner_conflict(theirs: &MdmInfo, configured: bool) -> licensekit_core::Error {
    let remedy = if configured {
        "set `take_over = true` to claim it"
    } else {
        "configure `mdm_info` and `take_over = true` to claim it"
    };
    let vendor = VendorError::new(
        crate::KIND,
        None,
        format!(
            "the location is managed by another MDM, \"{}\" (mdmInfo id {}); Apple allows one MDM per \
             location, so licensekit changes nothing there. If its administrator agrees, {remedy}",
            theirs.name, theirs.id
        ),
    )
    .with_code("mdmInfo-conflict");
    licensekit_core::Error::PermissionDenied {
        provider: crate::KIND,
        message: vendor.message.clone(),
        source: Some(Box::new(vendor)),
    }
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
            {
                let mut observed = self.observed.lock().unwrap_or_else(|p| p.into_inner());
                if let Some(date) = &env.token_expiration_date {
                    observed.token_expiration_date = Some(date.clone());
                }
                // Apple echoes the owner on every response once it is set (§2.3): the latest one
                // seen is the owner now. Reading is never refused on it; writes check it
                // (`Ownership::check_writable`).
                if let Some(info) = &env.mdm_info {
                    observed.mdm_info = Some(info.clone());
                }
            }
            if let Some(number) = env.error_number {
                let message = env
                    .error_message
                    .clone()
                    .unwrap_or_else(|| format!("error {number}"));
                return Some(VendorFailure {
                    meaning: meaning_of_number(number),
                    error: VendorError::new(crate::KIND, status_code, message)
                        .with_code(number.to_string()),
                });
            }
        }
        if status.is_success() {
            return None;
        }
        Some(VendorFailure {
            meaning: meaning_of_status(status),
            error: VendorError::new(crate::KIND, status_code, body_excerpt(body)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inspector() -> AppleResponses {
        AppleResponses {
            observed: Arc::default(),
        }
    }

    #[test]
    fn errors_inside_http_200_are_errors() {
        // Fleet's observation: an invalid token answered with HTTP 200 (P-91 family).
        let f = inspector()
            .classify(
                StatusCode::OK,
                &HeaderMap::new(),
                br#"{"errorNumber": 9622, "errorMessage": "Invalid authentication token"}"#,
            )
            .unwrap();
        assert_eq!(f.meaning, FailureMeaning::Unauthenticated);
        assert_eq!(f.error.code.as_deref(), Some("9622"));
        // P-75.
        let f = inspector()
            .classify(StatusCode::METHOD_NOT_ALLOWED, &HeaderMap::new(), br#"{"errorNumber": 9726, "errorMessage": "This request contains an unsupported HTTP method for the requested endpoint."}"#)
            .unwrap();
        assert_eq!(f.meaning, FailureMeaning::InvalidInput);
        let throttled = inspector()
            .classify(
                StatusCode::TOO_MANY_REQUESTS,
                &HeaderMap::new(),
                br#"{"errorNumber": 9646, "errorMessage": "Too many requests"}"#,
            )
            .unwrap();
        assert_eq!(throttled.meaning, FailureMeaning::RateLimited);
    }

    #[test]
    fn another_owner_is_noticed_without_refusing_the_read_and_refuses_writes() {
        // P-11: a location Apple Configurator 2 owns, read by a licensekit with no mdm_info.
        let i = inspector();
        let body = br#"{"countryISO2ACode": "US", "defaultPlatform": "volumestore", "locationName": "PS01",
            "mdmInfo": {"id": "522d5c43-44ca-4f7e-ba7a-53570cf60765", "name": "Apple Configurator 2", "metadata": "2.13.3"},
            "tokenExpirationDate": "2030-11-08T22:33:22+0000", "uId": "2049025000431439"}"#;
        assert!(
            i.classify(StatusCode::OK, &HeaderMap::new(), body)
                .is_none(),
            "reading is always allowed"
        );
        assert_eq!(
            i.observed.lock().unwrap().token_expiration_date.as_deref(),
            Some("2030-11-08T22:33:22+0000")
        );
        let unconfigured = Ownership {
            ours: None,
            observed: i.observed.clone(),
        };
        let err = unconfigured.check_writable().unwrap_err();
        assert_eq!(err.kind(), licensekit_core::ErrorKind::PermissionDenied);
        assert!(err.to_string().contains("Apple Configurator 2"), "{err}");
        assert_eq!(
            err.vendor_error().and_then(|v| v.code.as_deref()),
            Some("mdmInfo-conflict")
        );
        let someone_else = Ownership {
            ours: Some(MdmInfo::new("ours", "licensekit", "")),
            observed: i.observed.clone(),
        };
        assert!(someone_else.check_writable().is_err());
        let owner = Ownership {
            ours: Some(MdmInfo::new(
                "522d5c43-44ca-4f7e-ba7a-53570cf60765",
                "licensekit",
                "",
            )),
            observed: i.observed.clone(),
        };
        assert!(
            owner.check_writable().is_ok(),
            "our own id is not a conflict"
        );
        // A response without mdmInfo (service/config) does not forget the owner.
        i.classify(StatusCode::OK, &HeaderMap::new(), br#"{"limits": {}}"#);
        assert!(unconfigured.check_writable().is_err());
        // Unowned: anyone may write.
        let fresh = Ownership {
            ours: None,
            observed: Arc::default(),
        };
        assert!(fresh.check_writable().is_ok());
    }
}
