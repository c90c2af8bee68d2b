//! [`SalesforceProvider`]: PackageLicense / UserPackageLicense normalized into licensekit's model.
//!
//! - Products are `PackageLicense` rows (id `050…`; a namespace prefix is accepted wherever a
//!   product id is), named by namespace; `AllowedLicenses = -1` is a site license: unlimited,
//!   every user is licensed, and seats cannot be managed per user (spec §1.4). Such a package,
//!   and a free one (`Status = Free`), is marked [`Product::assigned_to_all_users`]: assign
//!   answers `AlreadyInState` without a call, revoke is `Unsupported`.
//! - Assignments are `UserPackageLicense` rows with the user's Username, Email, Name, IsActive,
//!   read in one paged query (never one per user).
//! - Assign/revoke go through core's bulk engine. Who already holds a seat is read once, by the
//!   cheaper of one package-wide paged query (sized from `UsedLicenses`) and look-ups of 300 ids
//!   (run concurrently); free seats are checked so the shortfall is reported per item without
//!   sending doomed requests; rows are created or deleted through sObject Collections (≤ 200 per
//!   call, `allOrNone=false`). 10,000 users assigned then revoked: 108 calls.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use futures::stream::{self, BoxStream, StreamExt, TryStreamExt};
use licensekit_core::raw::bulk::{
    self, BulkBackend, BulkOptions, ChangeRequest, ItemAnswer, Prepared, StateRead,
};
use licensekit_core::raw::client::RetryConfig;
use licensekit_core::{
    Assignment, AssignmentFilter, Capabilities, ChangeAction, ChangeReport, Error, Holder,
    HolderId, LicenseProvider, LicenseProviderExt, Outcome, Product, ProductId, ProviderKind,
    Result, SeatTotal, Seats, VendorError,
};
use serde::de::DeserializeOwned;

use crate::budget::{ApiBudget, ApiUsage, estimate_change_calls};
use crate::client::{
    MAX_COLLECTION, MAX_IDS_PER_QUERY, QUERY_PAGE, SalesforceClient, package_condition,
};
use crate::config::SalesforceConfig;
use crate::ids::{PACKAGE_LICENSE_PREFIX, SalesforceId, USER_PREFIX};
use crate::soql;
use crate::wire::{CollectionResult, PackageLicenseRecord, UserPackageLicenseRecord, UserRecord};

const KIND: ProviderKind = crate::KIND;

const ASSIGNMENT_FIELDS: &str = "Id, PackageLicenseId, UserId, CreatedDate, User.Username, User.Email, User.Name, User.IsActive";

/// The Salesforce provider. Cheap to clone.
#[derive(Debug, Clone)]
pub struct SalesforceProvider {
    client: SalesforceClient,
    /// Share of the daily API allocation a bulk change never spends.
    reserve_percent: f64,
}

impl SalesforceProvider {
    /// Builds the provider; retries as `config.client.retry` says.
    pub fn new(config: SalesforceConfig) -> Result<Self> {
        let retry = config.client.retry_config();
        Self::with_retry(config, retry)
    }

    /// Builds the provider with a retry policy other than `config.client.retry`.
    pub fn with_retry(config: SalesforceConfig, retry: RetryConfig) -> Result<Self> {
        let reserve_percent = config.api_reserve_percent;
        Ok(SalesforceProvider {
            client: SalesforceClient::from_config(config, retry)?,
            reserve_percent,
        })
    }

    /// The typed REST calls (SOQL queries, package look-ups).
    #[cfg_attr(not(feature = "testing"), allow(dead_code))]
    pub(crate) fn client(&self) -> &SalesforceClient {
        &self.client
    }

    /// The org's API usage as last reported by Salesforce (`Sforce-Limit-Info`).
    pub fn api_usage(&self) -> Option<ApiUsage> {
        self.client.api_usage()
    }

    /// API calls this provider has started so far (retries included).
    pub fn api_calls_made(&self) -> u64 {
        self.client.api_calls_made()
    }

    /// Streams every record of a SOQL query, following `nextRecordsUrl` page by page.
    pub fn query<T: DeserializeOwned + Send + 'static>(
        &self,
        soql: String,
    ) -> BoxStream<'static, Result<T>> {
        self.client.query(soql)
    }

    /// Every `PackageLicense` row.
    pub(crate) async fn package_licenses(&self) -> Result<Vec<PackageLicenseRecord>> {
        self.client.package_licenses().await
    }

    /// The package a product id names: a `050…` id or a namespace prefix.
    pub(crate) async fn package(&self, product: &ProductId) -> Result<PackageLicenseRecord> {
        self.client.package(product).await
    }

    /// Active users whose profile is named `profile_name` (escaped into the query).
    pub async fn active_users_with_profile(&self, profile_name: &str) -> Result<Vec<HolderId>> {
        self.client.active_users_with_profile(profile_name).await
    }

    /// API calls an assign or revoke of `holders` users makes at most.
    pub fn estimate_change_calls(holders: usize) -> u64 {
        estimate_change_calls(holders)
    }

    /// Pre-flight check of a bulk change: `Ok` with the budget when `estimated_calls` leave at
    /// least the reserve (`api_reserve_percent` of the daily allocation) unspent; a
    /// `RateLimited` error saying why otherwise. Makes one small query when the usage is not
    /// known yet. Assign and revoke run it themselves before sending any change.
    pub async fn check_api_budget(&self, estimated_calls: u64) -> Result<ApiBudget> {
        if self.api_usage().is_none() {
            let probe = "SELECT Id FROM PackageLicense LIMIT 1".to_owned();
            self.query::<PackageLicenseRecord>(probe)
                .try_collect::<Vec<_>>()
                .await?;
        }
        let Some(usage) = self.api_usage() else {
            return Err(Error::decode(
                KIND,
                "Salesforce sent no Sforce-Limit-Info header, so the API budget is unknown",
                "missing header",
            ));
        };
        let budget = ApiBudget::new(usage, estimated_calls, self.reserve_percent);
        budget.check()?;
        Ok(budget)
    }

    /// The budget check of a change whose package lookup has just reported the usage.
    fn check_budget_known(&self, estimated_calls: u64) -> Result<()> {
        match self.api_usage() {
            Some(usage) => ApiBudget::new(usage, estimated_calls, self.reserve_percent).check(),
            None => {
                tracing::debug!("no Sforce-Limit-Info seen; the API budget is not checked");
                Ok(())
            }
        }
    }

    /// Assigns `product` to every active user of a profile, in one step (the help article's
    /// "all salespeople by profile").
    pub async fn assign_by_profile(
        &self,
        product: &ProductId,
        profile_name: &str,
    ) -> Result<ChangeReport> {
        let users = self.active_users_with_profile(profile_name).await?;
        self.assign(product, &users).await
    }

    /// Revokes `product` from every active user of a profile.
    pub async fn revoke_by_profile(
        &self,
        product: &ProductId,
        profile_name: &str,
    ) -> Result<ChangeReport> {
        let users = self.active_users_with_profile(profile_name).await?;
        self.revoke(product, &users).await
    }
}

/// The provider as the bulk engine's backend (kept private: users call `change`).
#[derive(Debug)]
struct Engine<'a>(&'a SalesforceProvider);

/// One run: the package, and who holds it (user -> UserPackageLicense row), kept current by
/// every read so a revoke can name the rows to delete.
#[derive(Debug)]
struct Run {
    package: SalesforceId,
    rows: Mutex<HashMap<SalesforceId, SalesforceId>>,
}

impl Run {
    fn rows(&self) -> std::sync::MutexGuard<'_, HashMap<SalesforceId, SalesforceId>> {
        self.rows.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn user_of(holder: &HolderId) -> Result<SalesforceId> {
    SalesforceId::parse(holder.as_str(), Some(USER_PREFIX))
}

/// Salesforce through the bulk engine. One package query, then the cheaper of two state reads
/// (package-wide, sized from `UsedLicenses`, or 300 ids per look-up), free seats checked before
/// sending, then sObject Collections of ≤ 200 (`allOrNone=false`).
#[async_trait]
impl BulkBackend for Engine<'_> {
    type Context = Run;

    fn provider(&self) -> ProviderKind {
        KIND
    }

    /// 15- and 18-character forms of one user are one holder.
    fn canonical(&self, holder: &HolderId) -> Result<HolderId> {
        Ok(HolderId::User(user_of(holder)?.as_str().to_owned()))
    }

    async fn prepare(
        &self,
        action: ChangeAction,
        product: &ProductId,
        holders: &[HolderId],
    ) -> Result<Prepared<Run>> {
        let provider = self.0;
        let package = provider.package(product).await?;
        let package_id = SalesforceId::parse(&package.id, Some(PACKAGE_LICENSE_PREFIX))?;
        let allowed = package.allowed_licenses.unwrap_or(0);
        let used = package.used_licenses.unwrap_or(0).max(0);
        let concurrency = provider.client.max_concurrency();
        if package.licenses_every_user() {
            // Site license or free package: Salesforce licenses every user and seats cannot be
            // managed (§1.4).
            if action == ChangeAction::Revoke {
                return Err(Error::unsupported(
                    KIND,
                    format!(
                        "revoking seats of {product}: it has a site license (or is free), which licenses every user"
                    ),
                ));
            }
            let run = Run {
                package: package_id,
                rows: Mutex::default(),
            };
            let mut prepared = Prepared::new(run, MAX_COLLECTION, concurrency);
            for h in holders {
                prepared.settle(h.clone(), Outcome::AlreadyInState);
            }
            return Ok(prepared);
        }
        // The cheaper read: pages of the package's rows (2,000 a page) or look-ups of 300 ids.
        let package_pages = (used as usize).div_ceil(QUERY_PAGE).max(1);
        let lookups = holders.len().div_ceil(MAX_IDS_PER_QUERY);
        // The lookup reported the org's API usage: refuse a change whose reads and sends would
        // eat into the reserve, before anything else is sent.
        provider.check_budget_known(
            (package_pages.min(lookups) + holders.len().div_ceil(MAX_COLLECTION)) as u64,
        )?;
        let users: Vec<SalesforceId> = holders.iter().map(user_of).collect::<Result<_>>()?;
        let wanted: HashSet<&SalesforceId> = users.iter().collect();
        let rows = if package_pages <= lookups {
            provider.client.license_rows(&package_id, None).await?
        } else {
            provider
                .client
                .license_rows(&package_id, Some(&users))
                .await?
        };
        let held: HashMap<SalesforceId, SalesforceId> = rows
            .into_iter()
            .filter(|(_, user)| wanted.contains(user))
            .map(|(row, user)| (user, row))
            .collect();
        let mut new = Vec::new();
        let mut settled = Vec::new();
        for (holder, user) in holders.iter().zip(&users) {
            let holds = held.contains_key(user);
            match (action, holds) {
                (ChangeAction::Assign, true) | (ChangeAction::Revoke, false) => {
                    settled.push((holder.clone(), Outcome::AlreadyInState));
                }
                (ChangeAction::Assign, false) => new.push(holder.clone()),
                (ChangeAction::Revoke, true) => {}
            }
        }
        if action == ChangeAction::Assign {
            // Seats are checked before sending: the shortfall fails per item, nothing doomed
            // is sent.
            let free = (allowed - used).max(0) as usize;
            if new.len() > free {
                let shortfall = Arc::new(Error::InsufficientSeats {
                    provider: KIND,
                    product: package_id.to_string(),
                    requested: new.len() as u64,
                    available: free as u64,
                    source: None,
                });
                for holder in new.split_off(free) {
                    settled.push((holder, Outcome::Failed(shortfall.clone())));
                }
            }
        }
        let run = Run {
            package: package_id,
            rows: Mutex::new(held),
        };
        let mut prepared = Prepared::new(run, MAX_COLLECTION, concurrency);
        for (holder, outcome) in settled {
            prepared.settle(holder, outcome);
        }
        Ok(prepared)
    }

    async fn send(
        &self,
        run: &Run,
        action: ChangeAction,
        batch: &[HolderId],
    ) -> Result<Vec<ItemAnswer>> {
        let users: Vec<SalesforceId> = batch.iter().map(user_of).collect::<Result<_>>()?;
        match action {
            ChangeAction::Assign => {
                let answers = self.0.client.create_rows(&run.package, &users).await?;
                Ok(batch
                    .iter()
                    .zip(&users)
                    .zip(answers)
                    .map(|((holder, user), row)| {
                        ItemAnswer::settled(
                            holder.clone(),
                            create_outcome(&run.package, user, &row),
                        )
                    })
                    .collect())
            }
            ChangeAction::Revoke => {
                let rows: Vec<(HolderId, SalesforceId, SalesforceId)> = {
                    let known = run.rows();
                    batch
                        .iter()
                        .zip(&users)
                        .filter_map(|(h, u)| {
                            known.get(u).map(|r| (h.clone(), r.clone(), u.clone()))
                        })
                        .collect()
                };
                // A holder whose row the last read did not find holds no seat.
                let mut answers: Vec<ItemAnswer> = batch
                    .iter()
                    .filter(|h| !rows.iter().any(|(r, _, _)| r == *h))
                    .map(|h| ItemAnswer::settled(h.clone(), Outcome::AlreadyInState))
                    .collect();
                if rows.is_empty() {
                    return Ok(answers);
                }
                let ids: Vec<&str> = rows.iter().map(|(_, row, _)| row.as_str()).collect();
                let results = self.0.client.delete_rows(&ids).await?;
                answers.extend(rows.iter().zip(results).map(|((holder, _, user), row)| {
                    ItemAnswer::settled(holder.clone(), delete_outcome(user, &row))
                }));
                Ok(answers)
            }
        }
    }

    async fn read_state(&self, run: &Run, holders: &[HolderId]) -> Result<StateRead> {
        let users: Vec<SalesforceId> = holders.iter().map(user_of).collect::<Result<_>>()?;
        let found = self
            .0
            .client
            .license_rows(&run.package, Some(&users))
            .await?;
        let mut rows = run.rows();
        for user in &users {
            rows.remove(user);
        }
        let mut held = HashSet::new();
        for (row, user) in found {
            held.insert(HolderId::User(user.as_str().to_owned()));
            rows.insert(user, row);
        }
        Ok(StateRead::held(held))
    }
}

fn row_vendor_error(row: &CollectionResult) -> (String, VendorError) {
    let first = row.errors.first();
    let code = first.map(|e| e.status_code.clone()).unwrap_or_default();
    let message = first
        .map(|e| e.message.clone())
        .unwrap_or_else(|| "failed without an error".into());
    (
        code.clone(),
        VendorError::new(KIND, Some(200), message).with_code(code),
    )
}

/// One created row's result (status codes: spec §1.6).
fn create_outcome(package: &SalesforceId, user: &SalesforceId, row: &CollectionResult) -> Outcome {
    if row.success {
        return Outcome::Applied;
    }
    let (code, vendor) = row_vendor_error(row);
    let source = Some(Box::new(vendor.clone()) as licensekit_core::BoxError);
    Outcome::failed(match code.as_str() {
        "DUPLICATE_VALUE" => return Outcome::AlreadyInState,
        "LICENSE_LIMIT_EXCEEDED" => Error::InsufficientSeats {
            provider: KIND,
            product: package.to_string(),
            requested: 1,
            available: 0,
            source,
        },
        "INVALID_CROSS_REFERENCE_KEY" => Error::NotFound {
            provider: KIND,
            what: format!("user {user}"),
            source,
        },
        "INACTIVE_OWNER_OR_USER" => Error::InvalidInput {
            message: format!("user {user} is inactive and cannot hold a license"),
            source,
        },
        "MALFORMED_ID" | "REQUIRED_FIELD_MISSING" | "FIELD_INTEGRITY_EXCEPTION" => {
            Error::InvalidInput {
                message: format!(
                    "Salesforce refused the license row for user {user}: {}",
                    vendor.message
                ),
                source,
            }
        }
        _ => Error::Vendor(vendor),
    })
}

/// One deleted row's result: a row already gone means the user is already without a seat.
fn delete_outcome(user: &SalesforceId, row: &CollectionResult) -> Outcome {
    if row.success {
        return Outcome::Applied;
    }
    let (code, vendor) = row_vendor_error(row);
    match code.as_str() {
        "ENTITY_IS_DELETED" | "INVALID_CROSS_REFERENCE_KEY" => Outcome::AlreadyInState,
        _ => Outcome::failed(Error::Vendor(
            VendorError::new(
                KIND,
                vendor.status,
                format!("revoking from user {user}: {}", vendor.message),
            )
            .with_code(code),
        )),
    }
}

fn product_of(row: PackageLicenseRecord) -> Product {
    let every_user = row.licenses_every_user();
    let seats = match row.allowed_licenses {
        // Every user is licensed (a site license is -1; a free package may say 0).
        _ if every_user => Seats::reported(
            SeatTotal::Unlimited,
            row.used_licenses.unwrap_or(0).max(0) as u64,
        ),
        Some(n) => Seats::reported(
            SeatTotal::Limited(n.max(0) as u64),
            row.used_licenses.unwrap_or(0).max(0) as u64,
        ),
        None => Seats::unknown(),
    };
    let name = row
        .namespace_prefix
        .clone()
        .unwrap_or_else(|| row.id.clone());
    let mut product = Product::new(KIND, row.id.clone(), name, seats);
    if let Some(status) = row.status {
        product.vendor.insert("status".into(), status.into());
    }
    product
        .vendor
        .insert("expiration_date".into(), row.expiration_date.into());
    if let Some(ns) = row.namespace_prefix {
        product.vendor.insert("namespace_prefix".into(), ns.into());
    }
    // Its UserPackageLicense rows are not who holds it, and cannot be managed (§1.4): the plan
    // leaves it alone.
    if every_user {
        product = product.assigned_to_all_users();
    }
    product
}

/// Salesforce's dateTime format (`2026-11-01T10:00:00.000+0000`), read once: parsing the format
/// string again for every value was a tenth of a listing's CPU time.
static DATETIME_FORMAT: std::sync::LazyLock<Vec<chrono::format::Item<'static>>> =
    std::sync::LazyLock::new(|| {
        chrono::format::StrftimeItems::new("%Y-%m-%dT%H:%M:%S%.f%z")
            .parse_to_owned()
            .expect("a valid format")
    });

fn parse_datetime(s: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    let mut parsed = chrono::format::Parsed::new();
    chrono::format::parse(&mut parsed, s, DATETIME_FORMAT.iter()).ok()?;
    parsed
        .to_datetime()
        .ok()
        .map(|d| d.with_timezone(&chrono::Utc))
}

fn holder_of(id: String, user: Option<UserRecord>) -> Holder {
    let mut holder = Holder::new(HolderId::User(id));
    if let Some(u) = user {
        holder.email = u.email;
        holder.display_name = u.name;
        holder.active = u.is_active;
        holder.last_login = u.last_login_date.as_deref().and_then(parse_datetime);
        if let Some(username) = u.username {
            holder.vendor.insert("username".into(), username.into());
        }
        if let Some(profile) = u.profile.and_then(|p| p.name) {
            holder.vendor.insert("profile".into(), profile.into());
        }
    }
    holder
}

#[async_trait]
impl LicenseProvider for SalesforceProvider {
    fn kind(&self) -> ProviderKind {
        KIND
    }

    /// `org:{org id}` from the token response's identity URL (the grant flows: known once a
    /// token was fetched, which this does if needed: one call, usually already made); with a
    /// given session, which has no such response, the instance URL's host (the org's My Domain).
    async fn identity(&self) -> Result<String> {
        self.client.identity().await
    }

    fn capabilities(&self) -> Capabilities {
        let mut caps = Capabilities::NONE;
        caps.user_holders = true;
        caps.seat_totals_reported = true;
        caps.seat_limits_enforced = true;
        caps.max_assign_batch = Some(MAX_COLLECTION);
        caps.max_revoke_batch = Some(MAX_COLLECTION);
        caps.list_page_size = Some(2000);
        caps.holder_directory = true;
        caps.filter_by_holder = true;
        caps
    }

    #[tracing::instrument(skip_all, fields(provider = "salesforce"))]
    async fn products(&self) -> Result<Vec<Product>> {
        Ok(self
            .package_licenses()
            .await?
            .into_iter()
            .map(product_of)
            .collect())
    }

    fn assignments(&self, filter: AssignmentFilter) -> BoxStream<'static, Result<Assignment>> {
        let mut conditions = Vec::new();
        if let Some(product) = &filter.product {
            match package_condition("PackageLicense.", product) {
                Ok(c) => conditions.push(c.replace("PackageLicense.Id =", "PackageLicenseId =")),
                Err(e) => return stream::once(async { Err(e) }).boxed(),
            }
        }
        match &filter.holder {
            Some(HolderId::Device(_)) => {
                return stream::once(async { Err(Error::unsupported(KIND, "device holders")) })
                    .boxed();
            }
            Some(HolderId::User(user)) => match SalesforceId::parse(user, Some(USER_PREFIX)) {
                Ok(id) => conditions.push(format!("UserId = {}", soql::id(&id))),
                Err(e) => return stream::once(async { Err(e) }).boxed(),
            },
            None => {}
        }
        let mut soql = format!("SELECT {ASSIGNMENT_FIELDS} FROM UserPackageLicense");
        if !conditions.is_empty() {
            soql.push_str(" WHERE ");
            soql.push_str(&conditions.join(" AND "));
        }
        self.query::<UserPackageLicenseRecord>(soql)
            .map_ok(|row| {
                let product = ProductId::new(row.package_license_id.clone().unwrap_or_default());
                let user = row.user_id.clone().unwrap_or_default();
                let mut a = Assignment::new(KIND, product, holder_of(user, row.user))
                    .with_assigned_at(row.created_date.as_deref().and_then(parse_datetime));
                a.vendor
                    .insert("user_package_license_id".into(), row.id.into());
                a
            })
            .boxed()
    }

    fn holders(&self) -> BoxStream<'static, Result<Holder>> {
        self.query::<UserRecord>(
            // `LastLoginDate` is a standard User field (docs/vendor-contract.md §1.3; license
            // transfer services order by it to find idle holders, §"Reclaiming from idle users").
            "SELECT Id, Username, Email, Name, IsActive, Profile.Name, LastLoginDate FROM User"
                .into(),
        )
        .map_ok(|u| {
            let id = u.id.clone().unwrap_or_default();
            holder_of(id, Some(u))
        })
        .boxed()
    }

    #[tracing::instrument(skip_all, fields(provider = "salesforce", action = %request.action, product = %request.product, holders = request.holders.len()))]
    async fn change(&self, request: ChangeRequest) -> Result<ChangeReport> {
        let action = request.action;
        let calls_before = self.api_calls_made();
        let report = bulk::run(
            &Engine(self),
            &self.capabilities(),
            BulkOptions::default(),
            request,
        )
        .await;
        if let Some(usage) = self.api_usage() {
            tracing::info!(
                calls = self.api_calls_made() - calls_before,
                remaining = usage.max.saturating_sub(usage.used),
                daily_limit = usage.max,
                "salesforce: the {action} used API calls"
            );
        }
        report
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn site_licensed_and_free_packages_are_assigned_to_all_users() {
        let product = |allowed: i64, status: &str| {
            product_of(
                serde_json::from_value(serde_json::json!({
                    "Id": "05070000000PHmCAAW", "NamespacePrefix": "acme",
                    "Status": status, "AllowedLicenses": allowed, "UsedLicenses": 3,
                }))
                .unwrap(),
            )
        };
        let site = product(-1, "Active");
        assert!(site.is_assigned_to_all_users());
        assert_eq!(site.seats.total, SeatTotal::Unlimited);
        let free = product(0, "Free");
        assert!(free.is_assigned_to_all_users());
        assert_eq!(
            free.seats.total,
            SeatTotal::Unlimited,
            "every user holds it: never over-allocated"
        );
        let limited = product(10, "Active");
        assert!(!limited.is_assigned_to_all_users());
        assert!(!limited.vendor.contains_key(Product::ASSIGNED_TO_ALL_USERS));
        assert!(!product(10, "Trial").is_assigned_to_all_users());
    }

    #[test]
    fn row_results_map_to_outcomes() {
        use licensekit_core::{ErrorKind, OutcomeStatus};
        let package = SalesforceId::parse("05070000000PHmC", None).unwrap();
        let user = SalesforceId::parse("005D0000001QX8W", None).unwrap();
        let row = |code: &str| -> CollectionResult {
            serde_json::from_value(serde_json::json!({
                "success": false, "errors": [{"statusCode": code, "message": "m", "fields": []}]
            }))
            .unwrap()
        };
        let ok: CollectionResult = serde_json::from_value(
            serde_json::json!({"id": "0510m00000008psAAA", "success": true, "errors": []}),
        )
        .unwrap();
        assert_eq!(
            create_outcome(&package, &user, &ok).status(),
            OutcomeStatus::Applied
        );
        assert_eq!(
            create_outcome(&package, &user, &row("DUPLICATE_VALUE")).status(),
            OutcomeStatus::AlreadyInState,
            "a retried insert the vendor answers duplicate is not a failure"
        );
        let kind = |code: &str| {
            create_outcome(&package, &user, &row(code))
                .error()
                .map(Error::kind)
        };
        assert_eq!(
            kind("LICENSE_LIMIT_EXCEEDED"),
            Some(ErrorKind::InsufficientSeats)
        );
        assert_eq!(
            kind("INVALID_CROSS_REFERENCE_KEY"),
            Some(ErrorKind::NotFound)
        );
        assert_eq!(
            kind("INACTIVE_OWNER_OR_USER"),
            Some(ErrorKind::InvalidInput)
        );
        assert_eq!(kind("SOMETHING_NEW"), Some(ErrorKind::Vendor));
        assert_eq!(
            delete_outcome(&user, &row("ENTITY_IS_DELETED")).status(),
            OutcomeStatus::AlreadyInState
        );
        assert_eq!(
            delete_outcome(&user, &row("INSUFFICIENT_ACCESS")).status(),
            OutcomeStatus::Failed
        );
    }
}
