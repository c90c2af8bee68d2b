//! [`SalesforceClient`]: the Salesforce REST calls licensekit makes, typed, over core's HTTP
//! client — SOQL queries followed page by page, the package and license-row look-ups, and the
//! sObject Collections writes. Built once per provider from its configuration: a session is used
//! as given; a grant gets its token (and the instance URL) on the first call.

// Reached from outside only through the hidden `testing` module, which is not API.
#![cfg_attr(feature = "testing", allow(missing_docs))]

use std::sync::Arc;

use futures::stream::{self, BoxStream, StreamExt, TryStreamExt};
use http::Method;
use licensekit_core::raw::client::{
    ApiRequest, ClientOptions, Declared, HttpClient, PageGuard, RequestLimiter, RetryConfig,
    StaticToken, TokenCache, check_url, items, pages,
};
use licensekit_core::{Error, HolderId, ProductId, ProviderKind, Result};
use serde::de::DeserializeOwned;
use tokio::sync::OnceCell;

use crate::auth::{Grant, SalesforceTokenSource};
use crate::budget::{ApiUsage, SalesforceSignals};
use crate::config::{SalesforceAuth, SalesforceConfig};
use crate::error::SalesforceErrors;
use crate::ids::{PACKAGE_LICENSE_PREFIX, SalesforceId, USER_PACKAGE_LICENSE_PREFIX, USER_PREFIX};
use crate::soql;
use crate::wire::{
    CollectionResult, PackageLicenseRecord, QueryPage, UserPackageLicenseRecord, UserRecord,
};

const KIND: ProviderKind = crate::KIND;

/// (UserPackageLicense id, user id).
pub(crate) type Row = (SalesforceId, SalesforceId);
/// Records per query page (Salesforce's default batch size, spec §2.2).
pub(crate) const QUERY_PAGE: usize = 2000;
/// sObject Collections limit (spec §2.4).
pub const MAX_COLLECTION: usize = 200;
/// Ids per `IN (…)` lookup, keeping the URL well under 16,384 bytes (spec §2.2).
pub const MAX_IDS_PER_QUERY: usize = 300;
const PACKAGE_FIELDS: &str =
    "Id, NamespacePrefix, Status, AllowedLicenses, UsedLicenses, ExpirationDate";

#[derive(Debug)]
struct Inner {
    version: String,
    options: ClientOptions,
    max_concurrency: usize,
    /// Shared by the login and API clients: concurrency, and the usage `Sforce-Limit-Info` reports.
    limiter: RequestLimiter,
    retry: RetryConfig,
    /// Set at construction for a given session, or after the first token for a grant.
    http: OnceCell<HttpClient>,
    grant: Option<Arc<TokenCache<SalesforceTokenSource>>>,
}

/// The Salesforce REST API over the shared client layer. Cheap to clone.
#[derive(Debug, Clone)]
pub struct SalesforceClient {
    inner: Arc<Inner>,
}

impl SalesforceClient {
    /// Builds the client from a configuration (validated here). A session is ready at once; a
    /// grant gets its token, and with it the instance URL, on the first call.
    pub(crate) fn from_config(config: SalesforceConfig, retry: RetryConfig) -> Result<Self> {
        let version = config.validated_version()?.to_owned();
        config.validate()?;
        let vendor = crate::budget::vendor_defaults();
        let mut inner = Inner {
            version,
            max_concurrency: config.client.max_concurrency_for(&vendor),
            limiter: config.client.limiter(&vendor, Arc::new(SalesforceSignals)),
            options: config.client.clone(),
            retry,
            http: OnceCell::new(),
            grant: None,
        };
        let grant = match config.auth {
            SalesforceAuth::AccessToken {
                instance_url,
                access_token,
            } => {
                let http = build_http(&inner, &instance_url)?
                    .with_credentials(Arc::new(StaticToken::new(access_token)));
                inner.http.set(http).expect("fresh cell");
                None
            }
            SalesforceAuth::ClientCredentials {
                login_url,
                client_id,
                client_secret,
            } => Some((
                login_url.clone(),
                Grant::ClientCredentials {
                    token_url: token_url(&login_url),
                    client_id,
                    client_secret,
                },
            )),
            SalesforceAuth::JwtBearer {
                login_url,
                client_id,
                username,
                private_key_pem,
                audience,
            } => {
                let audience = audience.unwrap_or_else(|| jwt_audience(&login_url).into());
                Some((
                    login_url.clone(),
                    Grant::JwtBearer {
                        token_url: token_url(&login_url),
                        client_id,
                        username,
                        private_key_pem,
                        audience,
                    },
                ))
            }
        };
        if let Some((login_url, grant)) = grant {
            // The token host gets the same client rules (HTTPS unless allowed, no redirects).
            let login = build_http(&inner, &login_url)?;
            let source = SalesforceTokenSource::new(grant, login.reqwest().clone());
            inner.grant = Some(Arc::new(TokenCache::new(source)));
        }
        Ok(SalesforceClient {
            inner: Arc::new(inner),
        })
    }

    /// The API client, built once the instance URL is known (after the first token of a grant).
    pub(crate) async fn http(&self) -> Result<&HttpClient> {
        self.inner
            .http
            .get_or_try_init(|| async {
                let cache = self
                    .inner
                    .grant
                    .clone()
                    .expect("a grant when no session was given");
                // Transient token-endpoint failures are retried within the budget.
                licensekit_core::raw::client::token_with_retry(
                    KIND,
                    &self.inner.retry,
                    cache.as_ref(),
                )
                .await?;
                let instance = cache.source().instance_url().ok_or_else(|| {
                    Error::decode(
                        KIND,
                        "the token response had no instance_url",
                        "missing field",
                    )
                })?;
                Ok(build_http(&self.inner, &instance)?.with_credentials(cache))
            })
            .await
    }

    /// Which org this client reaches: `org:{org id}` from the token response's identity URL
    /// (grant flows; fetches a token if none was yet), else the instance URL's host.
    pub(crate) async fn identity(&self) -> Result<String> {
        let http = self.http().await?;
        if let Some(org) = self.inner.grant.as_ref().and_then(|g| g.source().org_id()) {
            return Ok(format!("org:{org}"));
        }
        let base = http.base_url();
        Ok(match (base.host_str(), base.port()) {
            (Some(host), Some(port)) => format!("{host}:{port}"),
            (Some(host), None) => host.to_owned(),
            (None, _) => base.as_str().to_owned(),
        })
    }

    /// Sends a request and decodes its JSON (`Sforce-Limit-Info` is read by the limiter's
    /// signal hook on every response).
    pub(crate) async fn call<T: DeserializeOwned>(&self, request: ApiRequest) -> Result<T> {
        self.http().await?.json(request).await
    }

    /// Requests in flight at once (`client.max_concurrency`, or Salesforce's default).
    pub(crate) fn max_concurrency(&self) -> usize {
        self.inner.max_concurrency
    }

    /// The org's API usage as last reported by Salesforce (`Sforce-Limit-Info`).
    pub fn api_usage(&self) -> Option<ApiUsage> {
        self.inner.limiter.quota().map(|q| ApiUsage {
            used: q.used,
            max: q.max,
        })
    }

    /// API calls this client has started so far (retries included).
    pub fn api_calls_made(&self) -> u64 {
        self.inner.limiter.requests_started()
    }

    /// Streams every record of a SOQL query, following `nextRecordsUrl` page by page.
    pub fn query<T: DeserializeOwned + Send + 'static>(
        &self,
        soql: String,
    ) -> BoxStream<'static, Result<T>> {
        let this = self.clone();
        // `totalSize` bounds the listing; cursors (nextRecordsUrl) may never repeat (issue 13,
        // item 2: an A→B→A cycle would burn the org's daily API allowance).
        let listing = pages(
            PageGuard::new(KIND, "GET query"),
            None,
            move |next: Option<String>| {
                let this = this.clone();
                let soql = soql.clone();
                async move {
                    let request = match next {
                        None => ApiRequest::get("query").query("q", &soql),
                        Some(path) => {
                            let url = this.http().await?.base_url().join(&path).map_err(|e| {
                                Error::decode(KIND, format!("bad nextRecordsUrl `{path}`"), e)
                            })?;
                            ApiRequest::absolute(Method::GET, url, "GET query/{locator}")
                        }
                    };
                    let page: QueryPage<T> = this.call(request).await?;
                    let next = match (page.done, page.next_records_url) {
                        (true, _) => None,
                        (false, Some(url)) => Some(url),
                        (false, None) => {
                            return Err(Error::decode(
                                KIND,
                                "a query page says not done but has no nextRecordsUrl",
                                "missing field",
                            ));
                        }
                    };
                    // A missing totalSize decodes as 0: only a positive one is a declaration.
                    let declared =
                        Declared::items((page.total_size > 0).then_some(page.total_size));
                    Ok((page.records, next, declared))
                }
            },
        );
        items(listing)
    }

    /// Every `PackageLicense` row.
    pub async fn package_licenses(&self) -> Result<Vec<PackageLicenseRecord>> {
        self.query(format!(
            "SELECT {PACKAGE_FIELDS} FROM PackageLicense ORDER BY NamespacePrefix"
        ))
        .try_collect()
        .await
    }

    /// The package a product id names: a `050…` id or a namespace prefix.
    pub async fn package(&self, product: &ProductId) -> Result<PackageLicenseRecord> {
        let condition = package_condition("", product)?;
        let rows: Vec<PackageLicenseRecord> = self
            .query(format!(
                "SELECT {PACKAGE_FIELDS} FROM PackageLicense WHERE {condition} LIMIT 1"
            ))
            .try_collect()
            .await?;
        rows.into_iter()
            .next()
            .ok_or_else(|| Error::not_found(KIND, format!("package license {product}")))
    }

    /// Active users whose profile is named `profile_name` (escaped into the query).
    pub async fn active_users_with_profile(&self, profile_name: &str) -> Result<Vec<HolderId>> {
        let soql = format!(
            "SELECT Id FROM User WHERE Profile.Name = {} AND IsActive = true",
            soql::quote(profile_name)?
        );
        self.query::<UserRecord>(soql)
            .try_filter_map(|u| async move { Ok(u.id.map(HolderId::User)) })
            .try_collect()
            .await
    }

    /// `(user, row)` of `package`'s UserPackageLicense rows, by one paged package-wide query or,
    /// with `users`, by `IN (…)` look-ups of 300 ids run concurrently.
    pub(crate) async fn license_rows(
        &self,
        package: &SalesforceId,
        users: Option<&[SalesforceId]>,
    ) -> Result<Vec<Row>> {
        let base = format!(
            "SELECT Id, UserId FROM UserPackageLicense WHERE PackageLicenseId = {}",
            soql::id(package)
        );
        let queries: Vec<String> = match users {
            None => vec![base],
            Some(users) => users
                .chunks(MAX_IDS_PER_QUERY)
                .map(|chunk| format!("{base} AND UserId IN {}", soql::id_list(chunk)))
                .collect(),
        };
        let answers: Vec<Result<Vec<UserPackageLicenseRecord>>> = stream::iter(queries)
            .map(|soql| self.query::<UserPackageLicenseRecord>(soql).try_collect())
            .buffer_unordered(self.inner.max_concurrency)
            .collect()
            .await;
        let mut rows = Vec::new();
        for answer in answers {
            for row in answer? {
                let user = SalesforceId::parse(
                    row.user_id.as_deref().unwrap_or_default(),
                    Some(USER_PREFIX),
                )?;
                rows.push((
                    SalesforceId::parse(&row.id, Some(USER_PACKAGE_LICENSE_PREFIX))?,
                    user,
                ));
            }
        }
        Ok(rows)
    }

    /// Creates one `UserPackageLicense` row per user in one sObject Collections call
    /// (`allOrNone=false`): one result per user, in order.
    pub(crate) async fn create_rows(
        &self,
        package: &SalesforceId,
        users: &[SalesforceId],
    ) -> Result<Vec<CollectionResult>> {
        let records: Vec<serde_json::Value> = users
            .iter()
            .map(|u| {
                serde_json::json!({
                    "attributes": {"type": "UserPackageLicense"},
                    "PackageLicenseId": package.as_str(),
                    "UserId": u.as_str(),
                })
            })
            .collect();
        let body = serde_json::json!({"allOrNone": false, "records": records});
        // Not re-sent by the HTTP layer once it may have been delivered: the engine
        // reads the rows back and re-sends only what is missing.
        let request = ApiRequest::post("composite/sobjects")
            .json(&body)?
            .idempotent(false);
        self.call::<Vec<CollectionResult>>(request).await
    }

    /// Deletes `UserPackageLicense` rows by id in one sObject Collections call
    /// (`allOrNone=false`): one result per id, in order.
    pub(crate) async fn delete_rows(&self, ids: &[&str]) -> Result<Vec<CollectionResult>> {
        let request = ApiRequest::delete("composite/sobjects")
            .query("ids", ids.join(","))
            .query("allOrNone", "false")
            .idempotent(false);
        self.call::<Vec<CollectionResult>>(request).await
    }
}

/// The JWT bearer `aud` for a login host (spec §3.3, Salesforce help "OAuth 2.0 JWT Bearer Flow":
/// `https://login.salesforce.com` for production, `https://test.salesforce.com` for a sandbox).
/// A sandbox is `test.salesforce.com` or a sandbox My Domain,
/// `{domain}--{sandbox}.sandbox.my.salesforce.com` (§3.1); every other host — production My
/// Domain, Developer Edition — is production. Decided on the parsed host, never on a substring
/// of the URL. An Experience Cloud site needs `audience` set explicitly.
fn jwt_audience(login_url: &str) -> &'static str {
    let host = url::Url::parse(login_url).ok().and_then(|u| {
        u.host_str()
            .map(|h| h.trim_end_matches('.').to_ascii_lowercase())
    });
    match host.as_deref() {
        Some(h) if h == "test.salesforce.com" || h.ends_with(".sandbox.my.salesforce.com") => {
            "https://test.salesforce.com"
        }
        _ => "https://login.salesforce.com",
    }
}

fn token_url(login_url: &str) -> String {
    format!("{}/services/oauth2/token", login_url.trim_end_matches('/'))
}

fn build_http(inner: &Inner, instance_url: &str) -> Result<HttpClient> {
    let instance = check_url(KIND, instance_url, inner.options.allow_http)?;
    let base = format!(
        "{}/services/data/v{}/",
        instance.as_str().trim_end_matches('/'),
        inner.version
    );
    inner
        .options
        .client_builder(KIND, base)?
        .retry(inner.retry)
        .limiter(inner.limiter.clone())
        .classifier(Arc::new(SalesforceErrors))
        .build()
}

/// `WHERE` condition naming a package by id or namespace; `rel` prefixes the field names
/// (`PackageLicense.` when filtering UserPackageLicense rows).
pub(crate) fn package_condition(rel: &str, product: &ProductId) -> Result<String> {
    let raw = product.as_str();
    if raw.len() == 15 || raw.len() == 18 {
        if let Ok(id) = SalesforceId::parse(raw, Some(PACKAGE_LICENSE_PREFIX)) {
            let field = if rel.is_empty() {
                "Id".to_owned()
            } else {
                format!("{rel}Id")
            };
            return Ok(format!("{field} = {}", soql::id(&id)));
        }
    }
    soql::validate_namespace(raw)?;
    Ok(format!("{rel}NamespacePrefix = {}", soql::quote(raw)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_jwt_audience_follows_the_login_host() {
        // Hosts of spec §3.1.
        for (login, aud) in [
            (
                "https://login.salesforce.com",
                "https://login.salesforce.com",
            ),
            ("https://test.salesforce.com", "https://test.salesforce.com"),
            (
                "https://test.salesforce.com/",
                "https://test.salesforce.com",
            ),
            (
                "https://acme.my.salesforce.com",
                "https://login.salesforce.com",
            ),
            (
                "https://acme--uat.sandbox.my.salesforce.com",
                "https://test.salesforce.com",
            ),
            (
                "https://ACME--UAT.Sandbox.My.Salesforce.com/",
                "https://test.salesforce.com",
            ),
            (
                "https://acme-dev-ed.develop.my.salesforce.com",
                "https://login.salesforce.com",
            ),
            // A substring is not a host.
            (
                "https://test.salesforce.com.evil.example",
                "https://login.salesforce.com",
            ),
        ] {
            assert_eq!(jwt_audience(login), aud, "{login}");
        }
    }

    #[test]
    fn package_conditions_validate_before_quoting() {
        assert_eq!(
            package_condition("", &ProductId::new("05070000000PHmC")).unwrap(),
            "Id = '05070000000PHmCAAW'"
        );
        assert_eq!(
            package_condition("PackageLicense.", &ProductId::new("acme_101")).unwrap(),
            "PackageLicense.NamespacePrefix = 'acme_101'"
        );
        assert!(package_condition("", &ProductId::new("x' OR Id != '")).is_err());
    }
}
