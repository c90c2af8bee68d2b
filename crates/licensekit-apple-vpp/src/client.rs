//! Every v2 operation licensekit uses, typed (spec §3), plus event polling (§6.1) and the
//! service-config limits (§3.1, re-read every 5 minutes).

// Reached from outside only through the hidden `testing` module, which is not API.
#![cfg_attr(feature = "testing", allow(missing_docs))]
// Every operation of the vendor API is typed here; some are reached only by tests (through the
// `testing` feature).
#![cfg_attr(not(feature = "testing"), allow(dead_code))]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use licensekit_core::raw::client::{
    ApiRequest, HttpClient, RetryConfig, StandardSignals, StaticToken,
};
use licensekit_core::{Error, Result};
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::time::Instant;

use crate::config::AppleVppConfig;
use crate::error::{AppleResponses, Observed, Ownership};
use crate::wire::{
    AssetRef, ClientConfig, EventResponse, MdmInfo, Page, RequestUser, ResponseAsset,
    ResponseAssignment, ResponseUser, ServiceConfig, StatusResponse,
};

/// Request limits from `service/config` (documented defaults until read).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_assets: usize,
    pub max_client_user_ids: usize,
    pub max_serial_numbers: usize,
    pub max_revoke_client_user_ids: usize,
    pub max_revoke_serial_numbers: usize,
    pub max_users: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_assets: 25,
            max_client_user_ids: 1000,
            max_serial_numbers: 1000,
            max_revoke_client_user_ids: 100,
            max_revoke_serial_numbers: 100,
            max_users: 100,
        }
    }
}

impl Limits {
    fn from_config(config: &ServiceConfig) -> Limits {
        let d = Limits::default();
        let get = |key: &str, default: usize| {
            config
                .limits
                .get(key)
                .and_then(|v| usize::try_from(*v).ok())
                .filter(|v| *v > 0)
                .unwrap_or(default)
        };
        Limits {
            max_assets: get("maxAssets", d.max_assets),
            max_client_user_ids: get("maxClientUserIds", d.max_client_user_ids),
            max_serial_numbers: get("maxSerialNumbers", d.max_serial_numbers),
            max_revoke_client_user_ids: get("maxRevokeClientUserIds", d.max_revoke_client_user_ids),
            max_revoke_serial_numbers: get("maxRevokeSerialNumbers", d.max_revoke_serial_numbers),
            max_users: get("maxUsers", d.max_users),
        }
    }
}

/// How an event ended, as observed.
#[derive(Debug, Clone)]
pub enum EventOutcome {
    /// `COMPLETE` or `FAILED` (which may still be a partial success).
    Finished(StatusResponse),
    /// Still `PENDING` when the wait ran out.
    StillPending { event_id: String },
}

/// Apple's v2 service over the shared client layer.
#[derive(Debug)]
pub struct AppleClient {
    http: HttpClient,
    limits: Mutex<Option<(Instant, Limits)>>,
    poll_interval: Duration,
    poll_timeout: Duration,
    ownership: Ownership,
}

/// The body of associate, disassociate (`ManageAssetsRequest`) and revoke
/// (`RevokeAssetsRequest`, no assets). An empty list is left out, as in every documented example
/// (P-22, P-24: a user-only associate has no `serialNumbers` key), rather than sent as `[]`.
pub(crate) fn manage_body(
    assets: Option<&[AssetRef]>,
    client_user_ids: &[String],
    serial_numbers: &[String],
) -> serde_json::Value {
    let mut body = serde_json::Map::new();
    if let Some(assets) = assets {
        body.insert("assets".into(), serde_json::json!(assets));
    }
    if !client_user_ids.is_empty() {
        body.insert("clientUserIds".into(), serde_json::json!(client_user_ids));
    }
    if !serial_numbers.is_empty() {
        body.insert("serialNumbers".into(), serde_json::json!(serial_numbers));
    }
    serde_json::Value::Object(body)
}

/// Apple says limits are dynamic and to re-read them every 5 minutes (§3.1).
const LIMITS_TTL: Duration = Duration::from_secs(300);

impl AppleClient {
    /// Builds the client from a validated configuration: the shared HTTP client with Apple's
    /// limits, the response inspector (errors inside 200 bodies, `mdmInfo`, token expiry) and
    /// the location token as bearer.
    pub(crate) fn from_config(
        config: &AppleVppConfig,
        retry: RetryConfig,
        observed: Arc<Mutex<Observed>>,
        ownership: Ownership,
    ) -> Result<Self> {
        // The token as downloaded, or from `echo` or a secret store, often ends in a newline:
        // decoding trims it, so the bearer value must be trimmed the same way (spec §2.1).
        let stoken = SecretString::from(config.stoken.expose_secret().trim().to_owned());
        let limiter = config
            .client
            .limiter(&crate::config::vendor_defaults(), Arc::new(StandardSignals));
        let http = config
            .client
            .client_builder(crate::KIND, &config.base_url)?
            .retry(retry)
            .limiter(limiter)
            .classifier(Arc::new(AppleResponses { observed }))
            .credentials(Arc::new(StaticToken::new(stoken)))
            .build()?;
        Ok(AppleClient::new(
            http,
            config.poll_interval(),
            config.poll_timeout(),
            ownership,
        ))
    }

    pub(crate) fn new(
        http: HttpClient,
        poll_interval: Duration,
        poll_timeout: Duration,
        ownership: Ownership,
    ) -> Self {
        AppleClient {
            http,
            limits: Mutex::new(None),
            poll_interval,
            poll_timeout,
            ownership,
        }
    }

    pub fn http(&self) -> &HttpClient {
        &self.http
    }

    /// `GET /service/config` (no auth).
    pub async fn service_config(&self) -> Result<ServiceConfig> {
        self.http
            .json(ApiRequest::get("service/config").unauthenticated())
            .await
    }

    /// The current limits, from `service/config` read at most every 5 minutes.
    pub async fn limits(&self) -> Result<Limits> {
        if let Some((at, limits)) = *self.limits.lock().unwrap_or_else(|p| p.into_inner()) {
            if at.elapsed() < LIMITS_TTL {
                return Ok(limits);
            }
        }
        let limits = Limits::from_config(&self.service_config().await?);
        *self.limits.lock().unwrap_or_else(|p| p.into_inner()) = Some((Instant::now(), limits));
        Ok(limits)
    }

    /// `GET /client/config`.
    pub async fn client_config(&self) -> Result<ClientConfig> {
        self.http.json(ApiRequest::get("client/config")).await
    }

    /// `POST /client/config` with `mdmInfo` (claims the location for this service).
    pub async fn set_mdm_info(&self, info: &MdmInfo) -> Result<ClientConfig> {
        let body = serde_json::json!({"mdmInfo": info});
        // Setting the same value twice is harmless.
        self.http
            .json(
                ApiRequest::post("client/config")
                    .json(&body)?
                    .idempotent(true),
            )
            .await
    }

    /// One page of a page-indexed listing (`assets`, `assignments`, `users`).
    pub(crate) async fn page<T: DeserializeOwned>(
        &self,
        path: &'static str,
        query: &[(&str, String)],
        page_index: u32,
    ) -> Result<Page<T>> {
        let mut request = ApiRequest::get(path).query("pageIndex", page_index);
        for (k, v) in query {
            request = request.query(k, v);
        }
        self.http.json(request).await
    }

    /// `GET /assets` (one page), with the documented filters as query pairs.
    pub async fn assets_page(
        &self,
        query: &[(&str, String)],
        page_index: u32,
    ) -> Result<Page<ResponseAsset>> {
        self.page("assets", query, page_index).await
    }

    /// `GET /assignments` (one page): filters `adamId`, `pricingParam`, `clientUserId`,
    /// `serialNumber`, `sinceVersionId`.
    pub async fn assignments_page(
        &self,
        query: &[(&str, String)],
        page_index: u32,
    ) -> Result<Page<ResponseAssignment>> {
        self.page("assignments", query, page_index).await
    }

    /// `GET /users` (one page): filters `activeOnly`, `retiredOnly`, `clientUserId`, `sinceVersionId`.
    pub async fn users_page(
        &self,
        query: &[(&str, String)],
        page_index: u32,
    ) -> Result<Page<ResponseUser>> {
        self.page("users", query, page_index).await
    }

    async fn event<B: Serialize>(
        &self,
        path: &'static str,
        body: &B,
        idempotent: bool,
    ) -> Result<String> {
        // Every change is an event request: none goes to a location another service owns.
        self.ownership.check_writable()?;
        let request = ApiRequest::post(path).json(body)?.idempotent(idempotent);
        let response: EventResponse = self.http.json(request).await?;
        Ok(response.event_id)
    }

    /// `POST /assets/associate`: returns the event id.
    pub async fn associate(
        &self,
        assets: &[AssetRef],
        client_user_ids: &[String],
        serial_numbers: &[String],
    ) -> Result<String> {
        let body = manage_body(Some(assets), client_user_ids, serial_numbers);
        // Not re-sent by the HTTP layer after a possible delivery: the bulk engine reads the
        // assignments back and re-sends only what is missing.
        self.event("assets/associate", &body, false).await
    }

    /// `POST /assets/disassociate`: returns the event id.
    pub async fn disassociate(
        &self,
        assets: &[AssetRef],
        client_user_ids: &[String],
        serial_numbers: &[String],
    ) -> Result<String> {
        let body = manage_body(Some(assets), client_user_ids, serial_numbers);
        // Not re-sent blindly either (see associate).
        self.event("assets/disassociate", &body, false).await
    }

    /// `POST /assets/revoke`: every revocable asset of these users/devices; returns the event id.
    pub async fn revoke_assets(
        &self,
        client_user_ids: &[String],
        serial_numbers: &[String],
    ) -> Result<String> {
        let body = manage_body(None, client_user_ids, serial_numbers);
        self.event("assets/revoke", &body, false).await
    }

    /// `POST /users/create|update|retire`: returns the event id.
    pub async fn manage_users(&self, action: UserAction, users: &[RequestUser]) -> Result<String> {
        let path = match action {
            UserAction::Create => "users/create",
            UserAction::Update => "users/update",
            UserAction::Retire => "users/retire",
        };
        // Not repeated on an unknown outcome: a retried retire would answer "user not found".
        self.event(path, &serde_json::json!({"users": users}), false)
            .await
    }

    /// `GET /status?eventId=`.
    pub async fn status(&self, event_id: &str) -> Result<StatusResponse> {
        self.http
            .json(ApiRequest::get("status").query("eventId", event_id))
            .await
    }

    /// Polls an event every `poll_interval` until it finishes or `poll_timeout` passes.
    pub async fn wait(&self, event_id: &str) -> Result<EventOutcome> {
        let started = Instant::now();
        loop {
            let status = self.status(event_id).await?;
            match status.event_status.as_str() {
                "COMPLETE" | "FAILED" => return Ok(EventOutcome::Finished(status)),
                "PENDING" => {}
                other => {
                    return Err(Error::Decode {
                        provider: crate::KIND,
                        message: format!("event {event_id} has an unknown eventStatus `{other}`"),
                        source: None,
                    });
                }
            }
            if started.elapsed() + self.poll_interval > self.poll_timeout {
                return Ok(EventOutcome::StillPending {
                    event_id: event_id.to_owned(),
                });
            }
            tokio::time::sleep(self.poll_interval).await;
        }
    }
}

/// Which user operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserAction {
    Create,
    Update,
    Retire,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manage_bodies_leave_out_the_unused_list_as_the_examples_do() {
        let asset = AssetRef {
            adam_id: "361309726".into(),
            pricing_param: "STDQ".into(),
        };
        // P-24, verbatim: a user-only associate has no `serialNumbers` key.
        let p24: serde_json::Value = serde_json::from_str(
            r#"{"assets": [{"adamId": "361309726", "pricingParam": "STDQ"}], "clientUserIds": ["user-1"]}"#,
        )
        .unwrap();
        assert_eq!(
            manage_body(Some(std::slice::from_ref(&asset)), &["user-1".into()], &[]),
            p24
        );
        let devices = manage_body(
            Some(std::slice::from_ref(&asset)),
            &[],
            &["serial-1".into()],
        );
        assert!(devices.get("clientUserIds").is_none(), "{devices}");
        // P-22 (revoke): both lists when both are used, no assets key.
        let p22: serde_json::Value = serde_json::from_str(
            r#"{"clientUserIds": ["client-1", "client-2"], "serialNumbers": ["serial-1", "serial-2"]}"#,
        )
        .unwrap();
        assert_eq!(
            manage_body(
                None,
                &["client-1".into(), "client-2".into()],
                &["serial-1".into(), "serial-2".into()]
            ),
            p22
        );
    }
}
