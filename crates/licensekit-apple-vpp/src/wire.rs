//! Apple v2 shapes (spec §3, §4). Unknown fields are ignored; every field the docs call optional
//! is optional here.

// The vendor's documented shapes are decoded whole; some fields and types are read only by
// tests (through the `testing` feature).
#![cfg_attr(not(feature = "testing"), allow(dead_code))]

use serde::{Deserialize, Serialize};

/// `MdmInfo`: which management service owns the location.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct MdmInfo {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub metadata: String,
}

impl MdmInfo {
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
    pub client_user_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub managed_apple_id: Option<String>,
}

impl RequestUser {
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
    pub event_status: String,
    #[serde(default)]
    pub event_type: Option<String>,
    #[serde(default)]
    pub num_requested: Option<u64>,
    #[serde(default)]
    pub num_completed: Option<u64>,
    #[serde(default)]
    pub failures: Vec<ErrorResponse>,
}

/// `ErrorResponse`: synchronous error bodies and event failures.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct ErrorResponse {
    pub error_number: i64,
    #[serde(default)]
    pub error_message: String,
    #[serde(default)]
    pub error_info: Option<ErrorInfo>,
}

/// `ResponseErrorInfo`: which entities a failure concerns.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct ErrorInfo {
    #[serde(default)]
    pub assets: Vec<AssetRef>,
    #[serde(default)]
    pub client_user_ids: Vec<String>,
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
