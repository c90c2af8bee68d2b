//! The location token (sToken): base64 of `{token, expDate, orgName}` (spec §2.1, P-01). The
//! whole outer string is the bearer credential; the decoded JSON tells when it expires and whose
//! it is, so an expired token is refused before any call.

// Reached from outside only through the hidden `testing` module, which is not API.
#![cfg_attr(feature = "testing", allow(missing_docs))]

use base64::Engine;
use chrono::{DateTime, Utc};
use licensekit_core::{Error, Result};
use secrecy::{ExposeSecret, SecretString};

/// What a location token says about itself (no secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenInfo {
    /// The organisation the token belongs to.
    pub org_name: String,
    /// When the token stops working (Apple's `expDate`).
    pub expires_at: DateTime<Utc>,
}

impl TokenInfo {
    /// Whether the token has expired at `now`.
    pub fn is_expired(&self, now: DateTime<Utc>) -> bool {
        self.expires_at <= now
    }
}

/// Parses Apple's date form `2030-11-08T22:33:22+0000` (and RFC 3339).
pub fn parse_apple_date(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%z")
        .or_else(|_| DateTime::parse_from_rfc3339(s))
        .ok()
        .map(|d| d.with_timezone(&Utc))
}

/// Decodes a location token without exposing it.
pub fn decode(stoken: &SecretString) -> Result<TokenInfo> {
    #[derive(serde::Deserialize)]
    struct Decoded {
        #[serde(default)]
        token: Option<String>,
        #[serde(rename = "expDate")]
        exp_date: String,
        #[serde(rename = "orgName", default)]
        org_name: String,
    }
    let unreadable = || {
        Error::Config {
        message: "apple-vpp: the location token is not a content token (base64 of {token, expDate, orgName}); \
                  download it again from Apple Business/School Manager"
            .into(),
        source: None,
    }
    };
    let raw = base64::engine::general_purpose::STANDARD
        .decode(stoken.expose_secret().trim())
        .map_err(|_| unreadable())?;
    let decoded: Decoded = serde_json::from_slice(&raw).map_err(|_| unreadable())?;
    if decoded.token.as_deref().is_none_or(str::is_empty) {
        return Err(unreadable());
    }
    let expires_at = parse_apple_date(&decoded.exp_date).ok_or_else(unreadable)?;
    Ok(TokenInfo {
        org_name: decoded.org_name,
        expires_at,
    })
}

/// Refuses an expired token with a message saying when and what to do.
pub fn check_not_expired(info: &TokenInfo, now: DateTime<Utc>) -> Result<()> {
    if info.is_expired(now) {
        return Err(Error::Unauthenticated {
            provider: crate::KIND,
            message: format!(
                "the location token of {} expired on {}; download a new one from Apple Business/School Manager",
                info.org_name,
                info.expires_at.format("%Y-%m-%d")
            ),
            source: None,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_the_documented_token() {
        // P-01, verbatim.
        let stoken = SecretString::from(
            "ewogICAgInRva2VuIjogIlZGZHdRbVZWTVZSUldGSktVbGRTTlZkc1pHcGpNR3hIVTI1Q2FrMXRhRzlhUjJ3eldqRkdkVk50ZUd0VFJrWjZVMVZhVDJGSFRuUlNiVGxOVVRCS1ExcEdhRTlOUjBaWVRrUXdQUT09IiwKICAgICJleHBEYXRlIjogIjIwMzAtMTEtMDhUMjI6MzM6MjIrMDAwMCIsCiAgICAib3JnTmFtZSI6ICJPUkcxMjM0NSIKfQ==",
        );
        let info = decode(&stoken).unwrap();
        assert_eq!(info.org_name, "ORG12345");
        assert_eq!(info.expires_at.to_rfc3339(), "2030-11-08T22:33:22+00:00");
        assert!(check_not_expired(&info, Utc::now()).is_ok());
        let later = parse_apple_date("2031-01-01T00:00:00+0000").unwrap();
        let err = check_not_expired(&info, later).unwrap_err();
        assert!(err.to_string().contains("expired on 2030-11-08"), "{err}");
    }

    #[test]
    fn garbage_is_a_config_error_without_the_secret() {
        let err = decode(&SecretString::from("not-base64-canary!")).unwrap_err();
        assert!(!err.to_string().contains("canary"));
    }
}
