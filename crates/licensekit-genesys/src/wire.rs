//! Genesys License API models, as documented (spec §2; field names camelCase). Every field is
//! optional on decode (the API marks nearly all optional) and unknown fields are ignored, so a
//! new vendor field never breaks decoding.

// Reached from outside only through the hidden `testing` module, which is not API.
#![cfg_attr(feature = "testing", allow(missing_docs))]
// The vendor's documented shapes are decoded whole; some fields and types are read only by
// tests (through the `testing` feature).
#![cfg_attr(not(feature = "testing"), allow(dead_code))]

use serde::{Deserialize, Deserializer, Serialize};

/// Decodes an explicit `null` as the type's default (an empty list, an empty string): the API
/// marks nearly every field optional, and some answers carry `"licenses": null` or
/// `"prerequisites": null` where others leave the field out. Both mean "none"; neither may fail
/// the decode (a decode failure of an answer to a write would otherwise look like a lost answer).
fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

/// `LicenseDefinition`. There is no `name` field: `id` is a short name such as `cloudCX2`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct LicenseDefinition {
    #[serde(default, deserialize_with = "null_as_default")]
    pub id: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub permissions: Option<Permissions>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub prerequisites: Vec<AddressableLicenseDefinition>,
    /// Licenses a bundle contains (recursive).
    #[serde(default, deserialize_with = "null_as_default")]
    pub comprises: Vec<LicenseDefinition>,
    #[serde(default)]
    pub self_uri: Option<String>,
}

/// `Permissions`: permission ids such as `routing:queue:view`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Permissions {
    #[serde(default, deserialize_with = "null_as_default")]
    pub ids: Vec<String>,
}

/// `AddressableLicenseDefinition`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct AddressableLicenseDefinition {
    #[serde(default, deserialize_with = "null_as_default")]
    pub id: String,
    #[serde(default)]
    pub self_uri: Option<String>,
}

/// `LicenseUser` (GET /license/users/{userId}): licenses as full definitions.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct LicenseUser {
    #[serde(default, deserialize_with = "null_as_default")]
    pub id: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub licenses: Vec<LicenseDefinition>,
    #[serde(default)]
    pub self_uri: Option<String>,
}

/// `UserLicenses` (items of the listing): licenses as ids.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct UserLicenses {
    #[serde(default, deserialize_with = "null_as_default")]
    pub id: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub licenses: Vec<String>,
    #[serde(default)]
    pub self_uri: Option<String>,
}

/// `UserLicensesEntityListing`: only these five fields, no next/previous URIs (spec §2).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct UserLicensesEntityListing {
    #[serde(default, deserialize_with = "null_as_default")]
    pub entities: Vec<UserLicenses>,
    #[serde(default)]
    pub page_size: Option<u32>,
    #[serde(default)]
    pub page_number: Option<u32>,
    #[serde(default)]
    pub total: Option<u64>,
    #[serde(default)]
    pub page_count: Option<u32>,
}

/// `LicenseBatchAssignmentRequest` (body of POST /license/organization).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct LicenseBatchAssignmentRequest {
    pub assignments: Vec<LicenseAssignmentRequest>,
}

/// `LicenseAssignmentRequest`: all three fields are required, so unused lists are sent as `[]`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct LicenseAssignmentRequest {
    pub license_id: String,
    pub user_ids_add: Vec<String>,
    pub user_ids_remove: Vec<String>,
}

impl LicenseAssignmentRequest {
    pub fn new(license_id: impl Into<String>, add: Vec<String>, remove: Vec<String>) -> Self {
        LicenseAssignmentRequest {
            license_id: license_id.into(),
            user_ids_add: add,
            user_ids_remove: remove,
        }
    }
}

/// `LicenseUpdateStatus`: one per (user, license) touched. `result` is free text with no
/// documented values (spec §1, §9).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct LicenseUpdateStatus {
    #[serde(default, deserialize_with = "null_as_default")]
    pub user_id: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub license_id: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub result: String,
}

/// `LicenseOrgToggle` (deprecated endpoint).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct LicenseOrgToggle {
    #[serde(default, deserialize_with = "null_as_default")]
    pub feature_name: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub enabled: bool,
}

/// `LicenseOrganization` (GET /license/organization, removed in 2019): license id -> users.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct LicenseOrganization {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub licenses: std::collections::BTreeMap<String, Vec<AddressableEntity>>,
    #[serde(default)]
    pub self_uri: Option<String>,
}

/// `{id, selfUri}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct AddressableEntity {
    #[serde(default, deserialize_with = "null_as_default")]
    pub id: String,
    #[serde(default)]
    pub self_uri: Option<String>,
}

/// `ErrorBody` (spec §2), the body of every 4xx/5xx from the API host.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct ErrorBody {
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub code: Option<String>,
    #[serde(default)]
    pub status: Option<u16>,
    #[serde(default)]
    pub context_id: Option<String>,
    #[serde(default)]
    pub entity_id: Option<String>,
    #[serde(default)]
    pub entity_name: Option<String>,
}

/// A user of the Users API (`GET /api/v2/users`), as far as licensekit reads it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct DirectoryUser {
    #[serde(default, deserialize_with = "null_as_default")]
    pub id: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    /// `active`, `inactive` or `deleted`.
    #[serde(default)]
    pub state: Option<String>,
    /// "The last time the user logged in using username and password" (ISO-8601), returned only
    /// with `expand=dateLastLogin` (official SDK model `User.dateLastLogin`:
    /// MyPureCloud/platform-client-sdk-go `platformclientv2/user.go`; the expand value is listed
    /// for the Users API in platform-client-sdk-dotnet `build/docs/UsersApi.md`). Expands are
    /// "best effort", so its absence means unknown, not "never".
    #[serde(default)]
    pub date_last_login: Option<String>,
}

/// `UserEntityListing`: paged by number like the license listing.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct UserEntityListing {
    #[serde(default, deserialize_with = "null_as_default")]
    pub entities: Vec<DirectoryUser>,
    #[serde(default)]
    pub page_number: Option<u32>,
    #[serde(default)]
    pub page_count: Option<u32>,
    #[serde(default)]
    pub total: Option<u64>,
}
