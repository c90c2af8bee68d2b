//! Every LicenseApi operation, typed (spec §1). Paths are fixed; ids from callers go through
//! `ApiRequest::segment`, which percent-encodes them.

// Reached from outside only through the hidden `testing` module, which is not API.
#![cfg_attr(feature = "testing", allow(missing_docs))]
// Every operation of the vendor API is typed here; some are reached only by tests (through the
// `testing` feature).
#![cfg_attr(not(feature = "testing"), allow(dead_code))]

use std::sync::Arc;

use licensekit_core::raw::client::{
    ApiRequest, HttpClient, OAuth2ClientCredentials, RetryConfig, TokenCache, check_url,
};
use licensekit_core::{Error, ErrorKind, Result};

use crate::config::GenesysConfig;
use crate::error::GenesysErrors;
use crate::wire::{
    LicenseAssignmentRequest, LicenseBatchAssignmentRequest, LicenseDefinition, LicenseOrgToggle,
    LicenseOrganization, LicenseUpdateStatus, LicenseUser, UserEntityListing,
    UserLicensesEntityListing,
};

const DEFINITIONS: &str = "/api/v2/license/definitions";
const USERS: &str = "/api/v2/license/users";
const ORGANIZATION: &str = "/api/v2/license/organization";
const TOGGLES: &str = "/api/v2/license/toggles";
const INFER: &str = "/api/v2/license/infer";
const INFER_PERMISSIONS: &str = "/api/v2/license/infer/permissions";
const DIRECTORY: &str = "/api/v2/users";

/// The Genesys License API over the shared client layer.
#[derive(Debug, Clone)]
pub struct GenesysClient {
    http: HttpClient,
}

/// A route the live API may have retired answers 404/410: say which route, never return an
/// empty result.
fn retired(route: &'static str, note: &'static str) -> impl FnOnce(Error) -> Error {
    move |err| match err.kind() {
        ErrorKind::NotFound => Error::Unsupported {
            provider: crate::KIND,
            operation: format!("{route} ({note}; the API answered: {err})"),
        },
        _ => err,
    }
}

impl GenesysClient {
    /// Builds the client from a configuration (validated here): OAuth2 client credentials with
    /// a shared token cache, the rate limit and concurrency cap, the Genesys error reader.
    pub fn from_config(config: &GenesysConfig, retry: RetryConfig) -> Result<Self> {
        config.validate()?;
        let token_url = config.token_url();
        check_url(crate::KIND, &token_url, config.client.allow_http)?;
        let limiter = config.client.limiter(
            &crate::pacing::vendor_defaults(),
            Arc::new(crate::pacing::GenesysSignals),
        );
        let base = config
            .client
            .client_builder(crate::KIND, config.api_base_url())?
            .retry(retry)
            .limiter(limiter)
            .classifier(Arc::new(GenesysErrors))
            .build()?;
        let oauth = OAuth2ClientCredentials::new(
            crate::KIND,
            base.reqwest().clone(),
            token_url,
            config.client_id.clone(),
            config.client_secret.clone(),
        );
        Ok(GenesysClient::new(
            base.with_credentials(Arc::new(TokenCache::new(oauth))),
        ))
    }

    pub fn new(http: HttpClient) -> Self {
        GenesysClient { http }
    }

    pub fn http(&self) -> &HttpClient {
        &self.http
    }

    /// `GET /api/v2/license/definitions`: a bare array.
    pub async fn definitions(&self) -> Result<Vec<LicenseDefinition>> {
        self.http.json(ApiRequest::get(DEFINITIONS)).await
    }

    /// `GET /api/v2/license/definitions/{licenseId}`; unknown id -> `NotFound`.
    pub async fn definition(&self, license_id: &str) -> Result<LicenseDefinition> {
        self.http
            .json(ApiRequest::get(DEFINITIONS).segment(license_id)?)
            .await
    }

    /// `GET /api/v2/license/users?pageSize=&pageNumber=` (page numbers start at 1).
    pub async fn users_page(
        &self,
        page_size: u32,
        page_number: u32,
    ) -> Result<UserLicensesEntityListing> {
        self.http
            .json(
                ApiRequest::get(USERS)
                    .query("pageSize", page_size)
                    .query("pageNumber", page_number),
            )
            .await
    }

    /// `GET /api/v2/license/users/{userId}`: the user's licenses as full definitions.
    pub async fn user(&self, user_id: &str) -> Result<LicenseUser> {
        self.http
            .json(ApiRequest::get(USERS).segment(user_id)?)
            .await
    }

    /// `POST /api/v2/license/users`: fetch several users' licenses at once. The shape of the
    /// map's values is undocumented (spec §1 row 5), so they are returned as JSON.
    pub async fn users_by_id(
        &self,
        user_ids: &[String],
    ) -> Result<serde_json::Map<String, serde_json::Value>> {
        // A read: safe to repeat.
        let request = ApiRequest::post(USERS).json(user_ids)?.idempotent(true);
        self.http.json(request).await
    }

    /// `POST /api/v2/license/organization`: assign and unassign in one batch; one status per
    /// (user, license) touched. Not re-sent by the HTTP layer once it may have been delivered:
    /// a repeat would blur "applied" and "already so"; the bulk engine reads the state back
    /// instead and re-sends only what is missing.
    pub async fn update_assignments(
        &self,
        assignments: Vec<LicenseAssignmentRequest>,
    ) -> Result<Vec<LicenseUpdateStatus>> {
        let body = LicenseBatchAssignmentRequest { assignments };
        let request = ApiRequest::post(ORGANIZATION)
            .json(&body)?
            .idempotent(false);
        self.http.json(request).await
    }

    /// `GET /api/v2/license/organization`: removed by Genesys in 2019 (SDK 57); kept so old
    /// tooling gets a clear `Unsupported` naming the route instead of a silent empty answer.
    pub async fn organization(&self) -> Result<LicenseOrganization> {
        self.http
            .json(ApiRequest::get(ORGANIZATION))
            .await
            .map_err(retired(
                "GET /api/v2/license/organization",
                "removed by Genesys in 2019; list assignments instead",
            ))
    }

    /// `GET /api/v2/license/toggles/{featureName}`. Deprecated by Genesys: always answers enabled.
    pub async fn toggle(&self, feature_name: &str) -> Result<LicenseOrgToggle> {
        self.http
            .json(ApiRequest::get(TOGGLES).segment(feature_name)?)
            .await
            .map_err(retired(
                "GET /api/v2/license/toggles/{featureName}",
                "deprecated by Genesys",
            ))
    }

    /// `POST /api/v2/license/toggles/{featureName}` (no body). Deprecated by Genesys: no effect.
    pub async fn set_toggle(&self, feature_name: &str) -> Result<LicenseOrgToggle> {
        self.http
            .json(
                ApiRequest::post(TOGGLES)
                    .segment(feature_name)?
                    .idempotent(true),
            )
            .await
            .map_err(retired(
                "POST /api/v2/license/toggles/{featureName}",
                "deprecated by Genesys",
            ))
    }

    /// `POST /api/v2/license/infer`: the licenses a set of roles implies.
    pub async fn infer(&self, role_ids: &[String]) -> Result<Vec<String>> {
        let request = ApiRequest::post(INFER).json(role_ids)?.idempotent(true);
        self.http
            .json(request)
            .await
            .map_err(retired("POST /api/v2/license/infer", "not available"))
    }

    /// `POST /api/v2/license/infer/permissions` (preview): the licenses a set of permissions
    /// (`domain:entity:action`) implies.
    pub async fn infer_permissions(&self, permissions: &[String]) -> Result<Vec<String>> {
        let request = ApiRequest::post(INFER_PERMISSIONS)
            .json(permissions)?
            .idempotent(true);
        self.http.json(request).await.map_err(retired(
            "POST /api/v2/license/infer/permissions",
            "a preview route",
        ))
    }

    /// `GET /api/v2/users?state=any` (Users API, outside the LicenseApi): the directory with
    /// names, emails and states, so reports can match people and find inactive holders.
    pub async fn directory_page(
        &self,
        page_size: u32,
        page_number: u32,
    ) -> Result<UserEntityListing> {
        self.http
            .json(
                ApiRequest::get(DIRECTORY)
                    .query("pageSize", page_size)
                    .query("pageNumber", page_number)
                    .query("state", "any")
                    // Last login is an expand of the Users API (see `DirectoryUser`).
                    .query("expand", "dateLastLogin"),
            )
            .await
    }
}
