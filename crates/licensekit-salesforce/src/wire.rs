//! Salesforce REST shapes (spec §2): query pages, the records this adapter selects, sObject
//! Collections results, error arrays, token responses. Unknown fields are ignored.

// Reached from outside only through the hidden `testing` module, which is not API.
#![cfg_attr(feature = "testing", allow(missing_docs))]
// The vendor's documented shapes are decoded whole; some fields and types are read only by
// tests (through the `testing` feature).
#![cfg_attr(not(feature = "testing"), allow(dead_code))]

use serde::{Deserialize, Serialize};

/// A query page (§2.2, P-1).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct QueryPage<T> {
    #[serde(default)]
    pub total_size: u64,
    #[serde(default)]
    pub done: bool,
    #[serde(default)]
    pub next_records_url: Option<String>,
    #[serde(default = "Vec::new")]
    pub records: Vec<T>,
}

/// `PackageLicense` as selected by this adapter.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase")]
#[non_exhaustive]
pub struct PackageLicenseRecord {
    pub id: String,
    #[serde(default)]
    pub namespace_prefix: Option<String>,
    #[serde(default)]
    pub status: Option<String>,
    /// `-1` = site license (unlimited).
    #[serde(default)]
    pub allowed_licenses: Option<i64>,
    #[serde(default)]
    pub used_licenses: Option<i64>,
    #[serde(default)]
    pub expiration_date: Option<String>,
}

impl PackageLicenseRecord {
    /// Whether Salesforce licenses every user of the org for this package and lets no one
    /// manage its licenses: a site license (`AllowedLicenses = -1`) or a package that is not
    /// licensed (`Status = Free`). Help "Manage/Assign Licenses for Installed Packages": "if the
    /// org bought a site license, or the package is not licensed, Salesforce assigns licenses to
    /// all users and the licenses cannot be managed" (vendor spec §1.4, §1.6).
    pub fn licenses_every_user(&self) -> bool {
        self.allowed_licenses.is_some_and(|n| n < 0) || self.status.as_deref() == Some("Free")
    }
}

/// `User` fields reached through a relationship or selected directly.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase")]
#[non_exhaustive]
pub struct UserRecord {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub is_active: Option<bool>,
    #[serde(default)]
    pub profile: Option<ProfileRecord>,
    /// `User.LastLoginDate` (dateTime, null when the user never logged in).
    #[serde(default)]
    pub last_login_date: Option<String>,
}

/// `Profile` reached through `User.Profile`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase")]
#[non_exhaustive]
pub struct ProfileRecord {
    #[serde(default)]
    pub name: Option<String>,
}

/// `UserPackageLicense` with its user.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase")]
#[non_exhaustive]
pub struct UserPackageLicenseRecord {
    pub id: String,
    #[serde(default)]
    pub package_license_id: Option<String>,
    #[serde(default)]
    pub user_id: Option<String>,
    #[serde(default)]
    pub created_date: Option<String>,
    #[serde(default)]
    pub user: Option<UserRecord>,
}

/// One row of an sObject Collections answer (§2.4): note `statusCode`, not `errorCode`.
#[derive(Debug, Clone, Deserialize)]
#[non_exhaustive]
pub struct CollectionResult {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub success: bool,
    #[serde(default)]
    pub errors: Vec<RowError>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct RowError {
    #[serde(default)]
    pub status_code: String,
    #[serde(default)]
    pub message: String,
    #[serde(default)]
    pub fields: Vec<String>,
}

/// One element of a top-level REST error array (§2.6).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct RestError {
    #[serde(default)]
    pub message: String,
    #[serde(default)]
    pub error_code: String,
}

/// The token endpoint's answer (§3.5).
#[derive(Debug, Clone, Deserialize)]
#[non_exhaustive]
pub struct TokenResponse {
    pub access_token: String,
    pub instance_url: String,
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub token_type: Option<String>,
    #[serde(default)]
    pub issued_at: Option<String>,
}

/// An OAuth error (§3.5): an object, not an array.
#[derive(Debug, Clone, Deserialize)]
#[non_exhaustive]
pub struct OAuthError {
    #[serde(default)]
    pub error: String,
    #[serde(default)]
    pub error_description: Option<String>,
}
