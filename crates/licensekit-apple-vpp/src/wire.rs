//! Apple v2 shapes (spec §3, §4). Unknown fields are ignored; every field the docs call optional
//! is optional here.

// Reached from outside only through the hidden `testing` module, which is not API.
#![cfg_attr(feature = "testing", allow(missing_docs))]
// The vendor's documented shapes are decoded whole; some fields and types are read only by
// tests (through the `testing` feature).
#![cfg_attr(not(feature = "testing"), allow(dead_code))]

use serde::{Deserialize, Serialize};

/// `MdmInfo`: which management service owns the location.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct MdmInfo {
    /// The MDM's own identifier (stable across renames).
    pub id: String,
    /// A name people recognise, shown to other MDMs that find the location claimed.
    pub name: String,
    /// Free text the MDM keeps with its claim.
    #[serde(default)]
    pub metadata: String,
}

impl MdmInfo {
    /// An MDM identity.
    ///
    /// ```
    /// let ours = licensekit_apple_vpp::MdmInfo::new("mdm-42", "Example MDM", "");
    /// assert_eq!(ours.id, "mdm-42");
    /// ```
    pub fn new(
        id: impl Into<String>,
        name: impl Into<String>,
        metadata: impl Into<String>,
    ) -> Self {
        MdmInfo {
            id: id.into(),
            name: name.into(),
            metadata: metadata.into(),
        }
    }
}

/// `Asset` in requests.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AssetRef {
    pub adam_id: String,
    pub pricing_param: String,
}

/// `ResponseAsset`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct ResponseAsset {
    pub adam_id: String,
    #[serde(default = "stdq")]
    pub pricing_param: String,
    #[serde(default)]
    pub product_type: Option<String>,
    #[serde(default)]
    pub assigned_count: Option<i64>,
    #[serde(default)]
    pub available_count: Option<i64>,
    #[serde(default)]
    pub retired_count: Option<i64>,
    #[serde(default)]
    pub total_count: Option<i64>,
    #[serde(default)]
    pub device_assignable: Option<bool>,
    #[serde(default)]
    pub revocable: Option<bool>,
    #[serde(default)]
    pub supported_platforms: Vec<String>,
}

fn stdq() -> String {
    "STDQ".into()
}

/// `Assignment`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct ResponseAssignment {
    pub adam_id: String,
    #[serde(default = "stdq")]
    pub pricing_param: String,
    #[serde(default)]
    pub client_user_id: Option<String>,
    #[serde(default)]
    pub serial_number: Option<String>,
}

/// A page of a page-indexed listing (§5).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct Page<T> {
    #[serde(
        default = "Vec::new",
        alias = "assets",
        alias = "assignments",
        alias = "users"
    )]
    pub items: Vec<T>,
    #[serde(default)]
    pub current_page_index: Option<u32>,
    #[serde(default)]
    pub next_page_index: Option<u32>,
    #[serde(default)]
    pub total_pages: Option<u32>,
    #[serde(default)]
    pub version_id: Option<String>,
}

/// `ResponseUser`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct ResponseUser {
    pub client_user_id: String,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub invite_code: Option<String>,
    #[serde(default)]
    pub id_hash: Option<String>,
}

/// `RequestUser`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct RequestUser {
    /// The MDM's own id for the user (Apple's `clientUserId`).
    pub client_user_id: String,
    /// The user's email, if known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// The user's Managed Apple ID, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub managed_apple_id: Option<String>,
}

impl RequestUser {
    /// A user to register, by client user id and optional email.
    ///
    /// ```
    /// let user = licensekit_apple_vpp::RequestUser::new("ada", Some("ada@example.org".into()));
    /// assert_eq!(user.client_user_id, "ada");
    /// ```
    pub fn new(client_user_id: impl Into<String>, email: Option<String>) -> Self {
        RequestUser {
            client_user_id: client_user_id.into(),
            email,
            managed_apple_id: None,
        }
    }
}

/// `EventResponse`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct EventResponse {
    pub event_id: String,
}

/// `StatusResponse` (§3.9).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct StatusResponse {
    /// `PENDING`, `COMPLETE` or `FAILED` (a failed event may still have partly succeeded).
    pub event_status: String,
    /// The kind of operation the event tracks.
    #[serde(default)]
    pub event_type: Option<String>,
    /// Items the event was asked to change.
    #[serde(default)]
    pub num_requested: Option<u64>,
    /// Items changed so far.
    #[serde(default)]
    pub num_completed: Option<u64>,
    /// Per-item failures, each naming the users or devices it concerns.
    #[serde(default)]
    pub failures: Vec<ErrorResponse>,
}

/// `ErrorResponse`: synchronous error bodies and event failures.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct ErrorResponse {
    /// Apple's error number (e.g. 9632 for a location another MDM manages).
    pub error_number: i64,
    /// Apple's message.
    #[serde(default)]
    pub error_message: String,
    /// Which assets, users and devices the error concerns, when Apple says.
    #[serde(default)]
    pub error_info: Option<ErrorInfo>,
}

/// `ResponseErrorInfo`: which entities a failure concerns.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct ErrorInfo {
    /// The assets concerned.
    #[serde(default)]
    pub assets: Vec<AssetRef>,
    /// The users (client user ids) concerned.
    #[serde(default)]
    pub client_user_ids: Vec<String>,
    /// The devices (serial numbers) concerned.
    #[serde(default)]
    pub serial_numbers: Vec<String>,
}

/// `ClientConfigResponse` (the fields licensekit reads).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct ClientConfig {
    #[serde(default)]
    pub location_name: Option<String>,
    #[serde(default)]
    pub country_iso2a_code: Option<String>,
    #[serde(default)]
    pub default_platform: Option<String>,
    #[serde(default)]
    pub mdm_info: Option<MdmInfo>,
    #[serde(default)]
    pub token_expiration_date: Option<String>,
    #[serde(default)]
    pub u_id: Option<String>,
}

/// `ServiceConfigResponse` (the limits).
#[derive(Debug, Clone, Deserialize)]
#[non_exhaustive]
pub struct ServiceConfig {
    #[serde(default)]
    pub limits: std::collections::BTreeMap<String, i64>,
    #[serde(default)]
    pub urls: std::collections::BTreeMap<String, String>,
}
