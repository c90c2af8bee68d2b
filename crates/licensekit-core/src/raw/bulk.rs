//! The bulk-change engine: every provider's assign and revoke run through [`run`].
//!
//! The engine owns everything a bulk change promises, in one place (OpenDAL's `BatchDeleter` is
//! the model: the framework owns batching and result accounting, a backend supplies one batch
//! call). An adapter implements [`BulkBackend`] — validate one holder, prepare the run (check the
//! product, pre-read what it needs), send one batch, read the current state of some holders — and
//! the engine does the rest:
//!
//! - **exactly one outcome per requested item, in request order**; a holder requested again is
//!   [`Outcome::Duplicate`] pointing at its first occurrence and is changed once;
//! - validation before anything is sent; chunking at the backend's batch size; bounded
//!   concurrency; a batch error fanned out to its items;
//! - **outcomes settled from state, never guessed**: when a batch's answer is lost or unclear
//!   (transport failure after sending, undecodable answer, 5xx, an item missing from the answer
//!   or answered in words the adapter does not know), the engine reads those holders' state back
//!   and settles each item:
//!   * in the requested state → [`Outcome::Applied`] (this run sent a change that may have done
//!     it; [`Outcome::AlreadyInState`] is only reported when known before anything was sent);
//!   * not in the requested state → sent again, up to [`BulkOptions::max_sends`] times in all,
//!     then [`Outcome::Failed`] with the last error;
//!   * state unreadable → [`Outcome::Unconfirmed`], never `Failed`.
//!
//!   Writes are therefore never re-sent blindly by the HTTP layer (adapters mark them
//!   non-idempotent): a re-send only follows a read that showed the change missing.
//! - an observer told as batches go out and as each item settles (the CLI's journal), and
//!   cancellation: no batch starts after it, in-flight batches finish, unsent items end
//!   `Failed(Cancelled)` and the report says `interrupted`.
//!
//! Read-back costs one state read per round that had unclear answers (the backend batches it as
//! its vendor requires); a run whose answers are all clear costs nothing extra.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use futures::stream::{self, StreamExt};

use crate::capabilities::Capabilities;
use crate::error::{Error, Result};
use crate::model::{
    ChangeAction, ChangeReport, HolderId, ItemOutcome, Outcome, ProductId, ProviderKind,
    VendorFields,
};

pub use tokio_util::sync::CancellationToken;

/// Told about a bulk change as it happens. Both methods default to doing nothing.
///
/// Calls come from the engine's tasks, possibly concurrently; keep them quick (append a line,
/// bump a counter).
pub trait ChangeObserver: Send + Sync + fmt::Debug {
    /// A batch with these holders is about to be sent (again, on a re-send).
    fn sent(&self, _holders: &[HolderId]) {}
    /// Item `index` (0-based, in request order) has its final outcome.
    fn settled(&self, _index: usize, _item: &ItemOutcome) {}
}

/// One bulk assign or revoke: what to change, for whom, and how to follow and stop it.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ChangeRequest {
    /// Assign or revoke.
    pub action: ChangeAction,
    /// The product whose seats change.
    pub product: ProductId,
    /// Who gets or loses a seat, in request order; a repeated holder ends as [`Outcome::Duplicate`].
    pub holders: Vec<HolderId>,
    /// Told of each batch sent and each item settled; `None` = nobody listens.
    pub observer: Option<Arc<dyn ChangeObserver>>,
    /// Stops the run between batches when cancelled; items not yet sent end `Failed` with [`Error::Cancelled`].
    pub cancel: Option<CancellationToken>,
}

impl ChangeRequest {
    /// A request with no observer and no cancellation.
    pub fn new(action: ChangeAction, product: ProductId, holders: Vec<HolderId>) -> Self {
        ChangeRequest {
            action,
            product,
            holders,
            observer: None,
            cancel: None,
        }
    }
    /// Assigns seats of `product` to `holders`.
    pub fn assign(product: ProductId, holders: Vec<HolderId>) -> Self {
        Self::new(ChangeAction::Assign, product, holders)
    }
    /// Revokes `holders`' seats of `product`.
    pub fn revoke(product: ProductId, holders: Vec<HolderId>) -> Self {
        Self::new(ChangeAction::Revoke, product, holders)
    }
    /// Follows the run with `observer` (e.g. to journal each item as it settles).
    pub fn with_observer(mut self, observer: Arc<dyn ChangeObserver>) -> Self {
        self.observer = Some(observer);
        self
    }
    /// Lets `cancel` stop the run before the next batch is sent.
    pub fn with_cancel(mut self, cancel: CancellationToken) -> Self {
        self.cancel = Some(cancel);
        self
    }
}

/// Engine settings an adapter may tune.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct BulkOptions {
    /// How many times one holder's change may be sent in all, each re-send following a read
    /// that showed the change missing. Six, like the attempts of one request under the default
    /// retry policy: a write is never retried by the HTTP layer once it may have been delivered,
    /// so these rounds are its retries.
    pub max_sends: u32,
}

impl Default for BulkOptions {
    fn default() -> Self {
        BulkOptions { max_sends: 6 }
    }
}

/// What [`BulkBackend::prepare`] found before anything is sent.
#[derive(Debug)]
#[non_exhaustive]
pub struct Prepared<C> {
    /// Whatever the backend's `send` and `read_state` need (ids resolved, limits, row ids).
    pub context: C,
    /// Holders per batch (the vendor's limit).
    pub batch_size: usize,
    /// Where a vendor limits users and devices separately in one request (Apple: 1,000 of each),
    /// `(users, devices)` per batch; overrides `batch_size`.
    pub per_kind: Option<(usize, usize)>,
    /// Batches in flight at once.
    pub concurrency: usize,
    /// Outcomes known before sending: holders already in the requested state (a pre-read),
    /// holders refused up front (no free seat, not device-assignable). These are not sent.
    pub settled: Vec<(HolderId, Outcome)>,
}

impl<C> Prepared<C> {
    /// A context with no pre-settled outcomes; `batch_size` and `concurrency` are raised to at least 1.
    pub fn new(context: C, batch_size: usize, concurrency: usize) -> Self {
        Prepared {
            context,
            batch_size: batch_size.max(1),
            per_kind: None,
            concurrency: concurrency.max(1),
            settled: Vec::new(),
        }
    }
    /// Batches carry up to `users` users and `devices` devices each.
    pub fn with_per_kind_limits(mut self, users: usize, devices: usize) -> Self {
        self.per_kind = Some((users.max(1), devices.max(1)));
        self
    }
    /// Cuts `holders` into batches at the limits.
    fn batches(&self, holders: Vec<HolderId>) -> Vec<Vec<HolderId>> {
        let Some((max_users, max_devices)) = self.per_kind else {
            return holders
                .chunks(self.batch_size)
                .map(<[HolderId]>::to_vec)
                .collect();
        };
        let (users, devices): (Vec<HolderId>, Vec<HolderId>) = holders
            .into_iter()
            .partition(|h| h.kind() == crate::model::HolderKind::User);
        let mut users = users.chunks(max_users);
        let mut devices = devices.chunks(max_devices);
        let mut batches = Vec::new();
        loop {
            let (u, d) = (users.next(), devices.next());
            if u.is_none() && d.is_none() {
                return batches;
            }
            let mut batch = u.map(<[HolderId]>::to_vec).unwrap_or_default();
            batch.extend(d.into_iter().flatten().cloned());
            batches.push(batch);
        }
    }
    /// Records an outcome known before sending; the holder is then not sent.
    pub fn settle(&mut self, holder: HolderId, outcome: Outcome) {
        self.settled.push((holder, outcome));
    }
}

/// The vendor's answer for one holder of a batch.
#[derive(Debug)]
#[non_exhaustive]
pub enum Answer {
    /// The answer settles the item (applied, already so, pending with a reference, failed).
    Settled(Outcome),
    /// The answer does not say (words the adapter does not know, a shape it cannot read): the
    /// engine reads the state back. The text says why.
    Unclear(String),
    /// The vendor's words say it refused, but the words are not a documented contract: the
    /// engine reads the state back; in the requested state → `Applied`, otherwise `Failed`
    /// with this error (no re-send: the vendor said why).
    Refused(Error),
}

/// One holder's answer, with anything the vendor said about it.
#[derive(Debug)]
#[non_exhaustive]
pub struct ItemAnswer {
    /// The holder the answer is for (as sent).
    pub holder: HolderId,
    /// What the vendor's answer means for this holder.
    pub answer: Answer,
    /// What the vendor said about the item beyond the outcome, kept verbatim in the report.
    pub vendor: VendorFields,
}

impl ItemAnswer {
    /// An answer that settles the item with `outcome`.
    pub fn settled(holder: HolderId, outcome: Outcome) -> Self {
        ItemAnswer {
            holder,
            answer: Answer::Settled(outcome),
            vendor: VendorFields::new(),
        }
    }
    /// An answer that does not say; the engine reads the state back. `why` is kept as the reason.
    pub fn unclear(holder: HolderId, why: impl Into<String>) -> Self {
        ItemAnswer {
            holder,
            answer: Answer::Unclear(why.into()),
            vendor: VendorFields::new(),
        }
    }
    /// A refusal in undocumented words; the engine reads the state back before trusting it.
    pub fn refused(holder: HolderId, error: Error) -> Self {
        ItemAnswer {
            holder,
            answer: Answer::Refused(error),
            vendor: VendorFields::new(),
        }
    }
    /// Adds one vendor field to the item (copied to [`ItemOutcome::vendor`](crate::ItemOutcome::vendor)).
    pub fn with_vendor_field(mut self, key: &str, value: impl Into<serde_json::Value>) -> Self {
        self.vendor.insert(key.to_owned(), value.into());
        self
    }
}

/// What a state read found: who holds the product, and who does not exist at the vendor at
/// all (their change can never happen: failed with that error, not sent again).
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct StateRead {
    /// Holders that hold the product now.
    pub held: HashSet<HolderId>,
    /// Holders the vendor does not know at all, with the error their item fails with.
    pub unknown_holders: HashMap<HolderId, Error>,
}

impl StateRead {
    /// A read that found `held` holding the product and no unknown holders.
    pub fn held(held: HashSet<HolderId>) -> Self {
        StateRead {
            held,
            unknown_holders: HashMap::new(),
        }
    }
    /// Marks `holder` as unknown to the vendor, failing its item with `error`.
    pub fn with_unknown_holder(mut self, holder: HolderId, error: Error) -> Self {
        self.unknown_holders.insert(holder, error);
        self
    }
}

/// What an adapter supplies to the engine (the adapter-authoring side; users call
/// [`LicenseProvider::change`](crate::LicenseProvider::change)).
///
/// Holder ids reaching `send` and `read_state` are the canonical forms returned by
/// [`BulkBackend::canonical`].
#[async_trait]
pub trait BulkBackend: Send + Sync {
    /// Per-run state from [`BulkBackend::prepare`].
    type Context: Send + Sync;

    /// The vendor this backend talks to (stamped on reports and errors).
    fn provider(&self) -> ProviderKind;

    /// Validates one holder and returns its canonical id (two spellings of one holder must give
    /// the same id, so the engine treats them as duplicates). `Err` fails the item; nothing sent.
    fn canonical(&self, holder: &HolderId) -> Result<HolderId>;

    /// Before anything is sent: checks the product and reads what the run needs. `Err` aborts
    /// the run with nothing changed.
    async fn prepare(
        &self,
        action: ChangeAction,
        product: &ProductId,
        holders: &[HolderId],
    ) -> Result<Prepared<Self::Context>>;

    /// Sends one batch. `Err` fails the batch as a whole; the engine decides from
    /// [`Error::may_have_been_applied`] whether to read the state back. Holders missing from
    /// the answer are read back too. Must not be retried blindly by the HTTP layer after a
    /// possible delivery (mark the request non-idempotent).
    async fn send(
        &self,
        context: &Self::Context,
        action: ChangeAction,
        batch: &[HolderId],
    ) -> Result<Vec<ItemAnswer>>;

    /// Which of `holders` hold the product now, with the vendor's cheapest batch read (and,
    /// where the read says so, which of them do not exist). `holders` are every unclear holder
    /// of a round, possibly thousands: chunk them as the vendor requires.
    async fn read_state(&self, context: &Self::Context, holders: &[HolderId]) -> Result<StateRead>;
}

/// Collects outcomes as they settle and tells the observer.
struct Ledger<'a> {
    requested: &'a [HolderId],
    observer: Option<&'a dyn ChangeObserver>,
    /// Canonical id -> index of its first occurrence.
    first: HashMap<HolderId, usize>,
    items: Mutex<Vec<Option<ItemOutcome>>>,
}

impl Ledger<'_> {
    fn settle_index(&self, index: usize, outcome: Outcome, vendor: VendorFields) {
        let item = ItemOutcome::new(self.requested[index].clone(), outcome).with_vendor(vendor);
        if let Some(observer) = self.observer {
            observer.settled(index, &item);
        }
        let mut items = self.items.lock().unwrap_or_else(|p| p.into_inner());
        items[index] = Some(item);
    }

    fn settle(&self, canonical: &HolderId, outcome: Outcome, vendor: VendorFields) {
        if let Some(&index) = self.first.get(canonical) {
            self.settle_index(index, outcome, vendor);
        }
    }

    fn sent(&self, canonical: &[HolderId]) {
        if let Some(observer) = self.observer {
            let requested: Vec<HolderId> = canonical
                .iter()
                .filter_map(|h| self.first.get(h).map(|&i| self.requested[i].clone()))
                .collect();
            observer.sent(&requested);
        }
    }
}

/// Runs one bulk change through `backend`. See the module docs for the rules.
///
/// `Err` only when nothing was changed: a holder kind `capabilities` does not allow, or a
/// failed [`BulkBackend::prepare`] (unknown product, authentication).
pub async fn run<B: BulkBackend + ?Sized>(
    backend: &B,
    capabilities: &Capabilities,
    options: BulkOptions,
    request: ChangeRequest,
) -> Result<ChangeReport> {
    let provider = backend.provider();
    capabilities.check_holders(provider, &request.holders)?;
    let ChangeRequest {
        action,
        product,
        holders,
        observer,
        cancel,
    } = request;
    let cancel = cancel.unwrap_or_default();
    let mut ledger = Ledger {
        requested: &holders,
        observer: observer.as_deref(),
        first: HashMap::with_capacity(holders.len()),
        items: Mutex::new(vec![None; holders.len()]),
    };

    // Validate and fold repeats, in request order.
    let mut unique: Vec<HolderId> = Vec::with_capacity(holders.len());
    let mut early: Vec<(usize, Outcome)> = Vec::new();
    for (index, holder) in holders.iter().enumerate() {
        match backend.canonical(holder) {
            Err(e) => early.push((index, Outcome::failed(e))),
            Ok(id) => match ledger.first.get(&id) {
                Some(&of) => early.push((index, Outcome::Duplicate { of })),
                None => {
                    ledger.first.insert(id.clone(), index);
                    unique.push(id);
                }
            },
        }
    }

    if !unique.is_empty() {
        if cancel.is_cancelled() {
            for id in &unique {
                ledger.settle(id, cancelled(provider), VendorFields::new());
            }
        } else {
            let mut prepared = backend.prepare(action, &product, &unique).await?;
            let ledger = &ledger;
            let mut known: HashSet<HolderId> = HashSet::with_capacity(prepared.settled.len());
            for (id, outcome) in std::mem::take(&mut prepared.settled) {
                if known.insert(id.clone()) {
                    ledger.settle(&id, outcome, VendorFields::new());
                }
            }
            let to_send: Vec<HolderId> =
                unique.into_iter().filter(|h| !known.contains(h)).collect();
            run_rounds(
                backend, options, &prepared, action, to_send, ledger, &cancel,
            )
            .await;
        }
    }

    for (index, outcome) in early {
        ledger.settle_index(index, outcome, VendorFields::new());
    }
    let interrupted = cancel.is_cancelled();
    let items = ledger
        .items
        .into_inner()
        .unwrap_or_else(|p| p.into_inner())
        .into_iter()
        .zip(&holders)
        .map(|(item, holder)| {
            // Unreachable by construction; if a path were missed, the truth is "unknown".
            item.unwrap_or_else(|| {
                ItemOutcome::new(
                    holder.clone(),
                    Outcome::Unconfirmed {
                        reason:
                            "no outcome was recorded for this holder; list assignments to check"
                                .into(),
                        last_error: None,
                    },
                )
            })
        })
        .collect();
    let mut report = ChangeReport::new(provider, product, action, items);
    report.interrupted = interrupted;
    Ok(report)
}

fn cancelled(provider: ProviderKind) -> Outcome {
    Outcome::failed(Error::Cancelled { provider })
}

/// A holder whose answer did not settle it, waiting for the state read.
struct Unclear {
    holder: HolderId,
    vendor: VendorFields,
    /// The vendor said it refused (in words that need confirming by the state).
    refusal: Option<Arc<Error>>,
    /// The batch's error when the whole answer was lost.
    error: Option<Arc<Error>>,
}

/// Sends in rounds: every batch of a round, then one state read of every holder whose answer
/// was unclear, then a round re-sending what the read shows missing. Reading after the whole
/// round (not per batch) means a vendor-wide read (Apple's listing) is made once, and never
/// while this run's own writes are still landing.
async fn run_rounds<B: BulkBackend + ?Sized>(
    backend: &B,
    options: BulkOptions,
    prepared: &Prepared<B::Context>,
    action: ChangeAction,
    mut pending: Vec<HolderId>,
    ledger: &Ledger<'_>,
    cancel: &CancellationToken,
) {
    let provider = backend.provider();
    let context = &prepared.context;
    let max_sends = options.max_sends.max(1);
    // The last error each holder's change met, for the Failed it may end in.
    let mut last_errors: HashMap<HolderId, Arc<Error>> = HashMap::new();
    for send in 1..=max_sends {
        if pending.is_empty() {
            return;
        }
        let resent = send > 1;
        let unclear: Vec<Vec<Unclear>> = stream::iter(prepared.batches(pending))
            .map(|batch: Vec<HolderId>| async move {
                if cancel.is_cancelled() {
                    for id in &batch {
                        ledger.settle(id, cancelled(provider), VendorFields::new());
                    }
                    return Vec::new();
                }
                send_batch(backend, context, action, batch, resent, ledger).await
            })
            .buffer_unordered(prepared.concurrency)
            .collect()
            .await;
        let unclear: Vec<Unclear> = unclear.into_iter().flatten().collect();
        if unclear.is_empty() {
            return;
        }
        for u in &unclear {
            if let Some(e) = &u.error {
                last_errors.insert(u.holder.clone(), e.clone());
            }
        }
        let holders: Vec<HolderId> = unclear.iter().map(|u| u.holder.clone()).collect();
        tracing::debug!(%provider, holders = holders.len(), send, "reading state back");
        let StateRead {
            held,
            mut unknown_holders,
        } = match backend.read_state(context, &holders).await {
            Ok(read) => read,
            Err(read_error) => {
                let reason = format!(
                    "the change may have reached {provider}, and reading the state back failed: {read_error}; re-run to settle"
                );
                let read_error = Arc::new(read_error);
                for u in unclear {
                    ledger.settle(
                        &u.holder,
                        Outcome::Unconfirmed {
                            reason: reason.clone(),
                            last_error: Some(read_error.clone()),
                        },
                        u.vendor,
                    );
                }
                return;
            }
        };
        let last_round = send == max_sends || cancel.is_cancelled();
        let mut missing = Vec::new();
        for u in unclear {
            let holds = held.contains(&u.holder);
            if holds == (action == ChangeAction::Assign) {
                ledger.settle(&u.holder, Outcome::Applied, u.vendor);
            } else if let Some(error) = unknown_holders.remove(&u.holder) {
                ledger.settle(&u.holder, Outcome::failed(error), u.vendor);
            } else if let Some(error) = u.refusal {
                ledger.settle(&u.holder, Outcome::Failed(error), u.vendor);
            } else if last_round {
                let outcome = if cancel.is_cancelled() && send < max_sends {
                    cancelled(provider)
                } else {
                    let error = last_errors.get(&u.holder).cloned().unwrap_or_else(|| {
                        Arc::new(Error::Vendor(crate::error::VendorError::new(
                            provider,
                            None,
                            format!(
                                "the answer did not confirm the change and the state read back shows {} {}",
                                u.holder,
                                if holds { "still holding the license" } else { "without the license" }
                            ),
                        )))
                    });
                    Outcome::Failed(error)
                };
                ledger.settle(&u.holder, outcome, u.vendor);
            } else {
                missing.push(u.holder);
            }
        }
        pending = missing;
    }
}

/// Sends one batch; settles the holders its answer settles and returns the others.
async fn send_batch<B: BulkBackend + ?Sized>(
    backend: &B,
    context: &B::Context,
    action: ChangeAction,
    batch: Vec<HolderId>,
    resent: bool,
    ledger: &Ledger<'_>,
) -> Vec<Unclear> {
    let provider = backend.provider();
    ledger.sent(&batch);
    let unclear = |holder: &HolderId, vendor, refusal, error| Unclear {
        holder: holder.clone(),
        vendor,
        refusal,
        error,
    };
    match backend.send(context, action, &batch).await {
        Ok(answers) => {
            let mut by_holder: HashMap<HolderId, ItemAnswer> =
                answers.into_iter().map(|a| (a.holder.clone(), a)).collect();
            let mut left = Vec::new();
            for holder in &batch {
                match by_holder.remove(holder) {
                    Some(ItemAnswer {
                        answer: Answer::Settled(outcome),
                        vendor,
                        ..
                    }) => {
                        // "Already so" after an earlier send of ours may be our own doing.
                        let outcome = match outcome {
                            Outcome::AlreadyInState if resent => Outcome::Applied,
                            other => other,
                        };
                        ledger.settle(holder, outcome, vendor);
                    }
                    Some(ItemAnswer {
                        answer: Answer::Refused(error),
                        vendor,
                        ..
                    }) => left.push(unclear(holder, vendor, Some(Arc::new(error)), None)),
                    Some(ItemAnswer {
                        answer: Answer::Unclear(why),
                        vendor,
                        ..
                    }) => {
                        tracing::debug!(%provider, %holder, why, "unclear answer");
                        left.push(unclear(holder, vendor, None, None));
                    }
                    None => left.push(unclear(holder, VendorFields::new(), None, None)),
                }
            }
            left
        }
        // The answer was lost: the change may or may not have happened. (After a re-send even
        // a refusal says nothing about the earlier send.)
        Err(error) if error.may_have_been_applied() || resent => {
            tracing::debug!(%provider, %error, holders = batch.len(), "outcome unknown");
            let error = Arc::new(error);
            batch
                .iter()
                .map(|h| unclear(h, VendorFields::new(), None, Some(error.clone())))
                .collect()
        }
        Err(error) => {
            let error = Arc::new(error);
            for holder in &batch {
                ledger.settle(holder, Outcome::Failed(error.clone()), VendorFields::new());
            }
            Vec::new()
        }
    }
}

#[cfg(test)]
mod tests;
