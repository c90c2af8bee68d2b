//! Continuation-token pagination as streams of pages and of items, with a guard every adapter
//! shares (issue 13, item 2): a listing must never run forever, whatever the server answers.
//!
//! - **Cycles**: every cursor seen is remembered; a next cursor seen before (A→A, A→B→A,
//!   A→B→C→A) ends the listing with an error.
//! - **Budget**: each page passes the totals the vendor declared ([`Declared`]: Genesys
//!   `pageCount`/`total`, Salesforce `totalSize`, Apple `totalPages`); the listing may fetch
//!   that many pages plus slack. A vendor whose totals may grow while listing (Apple: "totalPages
//!   can change mid-traversal", apple-vpp spec §pagination) follows the largest total seen
//!   ([`Totals::Largest`]); the others keep the first ([`Totals::First`]), so a server that
//!   raises its count on every page is caught.
//! - **Hard cap**: [`PageGuard::hard_cap`] pages at most, declared totals or not.
//!
//! Exceeding any of these is [`Error::Pagination`], naming vendor, route and page.

use std::collections::HashSet;
use std::fmt::Debug;
use std::future::Future;
use std::hash::Hash;

use futures::stream::{self, BoxStream, StreamExt, TryStreamExt};

use crate::error::{Error, Result};
use crate::model::ProviderKind;

/// One page of a listing.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T, C> {
    /// The cursor this page was fetched with (`None` for the first page): resume from here.
    pub cursor: Option<C>,
    /// The page's items, in the vendor's order.
    pub items: Vec<T>,
    /// The cursor of the next page; `None` on the last page. The only end signal: an empty page
    /// with a next cursor is not the end.
    pub next: Option<C>,
}

/// What one page says about the whole listing; `None` where the vendor says nothing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Declared {
    /// Pages in the listing (Genesys `pageCount`, Apple `totalPages`).
    pub pages: Option<u64>,
    /// Items in the listing (Genesys `total`, Salesforce `totalSize`).
    pub items: Option<u64>,
}

impl Declared {
    /// Totals declaring only a page count.
    pub fn pages(pages: Option<impl Into<u64>>) -> Self {
        Declared {
            pages: pages.map(Into::into),
            items: None,
        }
    }

    /// Totals declaring only an item count.
    pub fn items(items: Option<u64>) -> Self {
        Declared { pages: None, items }
    }

    /// Adds the item count.
    pub fn with_items(mut self, items: Option<u64>) -> Self {
        self.items = items;
        self
    }
}

/// Which declared totals bound the listing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Totals {
    /// The first page's totals (the listing may drift by the slack).
    First,
    /// The largest totals seen on any page (a vendor documents that they grow while listing).
    Largest,
}

/// The limits of one listing.
#[derive(Debug, Clone, Copy)]
pub struct PageGuard {
    /// The vendor listed, named in errors.
    pub provider: ProviderKind,
    /// The route in errors (`GET /api/v2/license/users`), never a full URL.
    pub route: &'static str,
    /// Which declared totals bound the listing (default [`Totals::First`]).
    pub totals: Totals,
    /// Most pages in any case.
    pub hard_cap: u64,
}

impl PageGuard {
    /// Most pages of any listing unless an adapter sets another cap.
    pub const DEFAULT_HARD_CAP: u64 = 10_000;

    /// A guard for `route` at `provider`: first page's totals, [`PageGuard::DEFAULT_HARD_CAP`] pages at most.
    pub fn new(provider: ProviderKind, route: &'static str) -> Self {
        PageGuard {
            provider,
            route,
            totals: Totals::First,
            hard_cap: Self::DEFAULT_HARD_CAP,
        }
    }

    /// Which declared totals bound the listing.
    pub fn totals(mut self, totals: Totals) -> Self {
        self.totals = totals;
        self
    }

    /// Most pages in any case (at least 1).
    pub fn hard_cap(mut self, pages: u64) -> Self {
        self.hard_cap = pages.max(1);
        self
    }

    /// Room for a listing that changes while it is read: 10 % plus 2.
    fn slack(n: u64) -> u64 {
        (n / 10).saturating_add(2)
    }

    /// Most pages allowed by what was declared. With only an item count, every page but the
    /// last must carry at least one item.
    fn page_budget(&self, declared: Declared) -> u64 {
        let by_pages = declared.pages.map(|p| p.saturating_add(Self::slack(p)));
        let by_items = declared
            .items
            .map(|i| i.saturating_add(Self::slack(i)).saturating_add(1));
        let budget = match (by_pages, by_items) {
            (Some(p), Some(i)) => p.min(i),
            (Some(p), None) => p,
            (None, Some(i)) => i,
            (None, None) => u64::MAX,
        };
        budget.min(self.hard_cap)
    }

    fn error(&self, page: u64, message: String) -> Error {
        Error::Pagination {
            provider: self.provider,
            route: self.route.to_owned(),
            page,
            message,
        }
    }
}

/// The state of a guarded listing, for adapters that drive their own page loop (Apple's
/// version-aware listing): call [`PageTracker::check`] after every page fetched.
#[derive(Debug)]
pub struct PageTracker<C> {
    guard: PageGuard,
    seen: HashSet<C>,
    declared: Option<Declared>,
    pages: u64,
    items: u64,
}

impl<C: Hash + Eq + Clone + Debug> PageTracker<C> {
    /// A listing starting at `start` (remembered as seen, so a page naming it as next is a
    /// cycle).
    pub fn new(guard: PageGuard, start: Option<&C>) -> Self {
        PageTracker {
            guard,
            seen: start.cloned().into_iter().collect(),
            declared: None,
            pages: 0,
            items: 0,
        }
    }

    fn merge(&mut self, now: Declared) {
        let merged = match (self.declared, self.guard.totals) {
            (None, _) => now,
            (Some(first), Totals::First) => Declared {
                pages: first.pages.or(now.pages),
                items: first.items.or(now.items),
            },
            (Some(before), Totals::Largest) => Declared {
                pages: before.pages.max(now.pages),
                items: before.items.max(now.items),
            },
        };
        self.declared = Some(merged);
    }

    /// Checks a fetched page (with `items` items, naming `next`, declaring `declared`) and
    /// whether its next cursor may be followed.
    pub fn check(&mut self, items: usize, next: Option<&C>, declared: Declared) -> Result<()> {
        self.pages += 1;
        self.items = self.items.saturating_add(items as u64);
        self.merge(declared);
        let declared = self.declared.unwrap_or_default();
        let page = self.pages;
        if let Some(total) = declared.items {
            let allowed = total.saturating_add(PageGuard::slack(total));
            if self.items > allowed {
                return Err(self.guard.error(
                    page,
                    format!(
                        "{} items received although the listing declared {total}; the server's paging is broken",
                        self.items
                    ),
                ));
            }
        }
        let Some(next) = next else { return Ok(()) };
        if !self.seen.insert(next.clone()) {
            return Err(self.guard.error(
                page,
                format!(
                    "the next-page cursor {next:?} was already visited; the pages form a cycle"
                ),
            ));
        }
        let budget = self.guard.page_budget(declared);
        if page >= budget {
            let why = if budget >= self.guard.hard_cap {
                format!("the hard cap of {} pages", self.guard.hard_cap)
            } else {
                format!(
                    "the {budget} pages the declared totals allow (pages {:?}, items {:?}, plus slack)",
                    declared.pages, declared.items
                )
            };
            return Err(self.guard.error(
                page,
                format!("the server offers yet another page, beyond {why}"),
            ));
        }
        Ok(())
    }
}

/// Streams pages under a [`PageGuard`]: `fetch(None)` first, then `fetch(Some(next))` while
/// the vendor gives a next cursor. `fetch` returns the page's items, its next cursor and what
/// it declared about the listing's size.
pub fn pages<T, C, F, Fut>(
    guard: PageGuard,
    start: Option<C>,
    mut fetch: F,
) -> BoxStream<'static, Result<Page<T, C>>>
where
    T: Send + 'static,
    C: Clone + Hash + Eq + Debug + Send + 'static,
    F: FnMut(Option<C>) -> Fut + Send + 'static,
    Fut: Future<Output = Result<(Vec<T>, Option<C>, Declared)>> + Send + 'static,
{
    enum State<C> {
        Next(Option<C>, Box<PageTracker<C>>),
        Done,
    }
    let tracker = Box::new(PageTracker::new(guard, start.as_ref()));
    stream::try_unfold(State::Next(start, tracker), move |state| {
        let call = match state {
            State::Done => None,
            State::Next(cursor, tracker) => Some((cursor.clone(), fetch(cursor), tracker)),
        };
        async move {
            let Some((cursor, call, mut tracker)) = call else {
                return Ok(None);
            };
            let (items, next, declared) = call.await?;
            tracker.check(items.len(), next.as_ref(), declared)?;
            let state = match &next {
                Some(n) => State::Next(Some(n.clone()), tracker),
                None => State::Done,
            };
            Ok(Some((
                Page {
                    cursor,
                    items,
                    next,
                },
                state,
            )))
        }
    })
    .boxed()
}

/// Flattens a page stream into items, holding one page at a time.
pub fn items<T, C>(pages: BoxStream<'static, Result<Page<T, C>>>) -> BoxStream<'static, Result<T>>
where
    T: Send + 'static,
    C: Send + 'static,
{
    pages
        .map_ok(|page| stream::iter(page.items.into_iter().map(Ok)))
        .try_flatten()
        .boxed()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    const NONE: Declared = Declared {
        pages: None,
        items: None,
    };

    fn guard() -> PageGuard {
        PageGuard::new(ProviderKind::from_static("genesys"), "GET /things")
    }

    #[tokio::test]
    async fn an_empty_middle_page_does_not_end_the_listing() {
        // Pages: [1,2] -> [] -> [3] (end).
        let calls = Arc::new(AtomicUsize::new(0));
        let counter = calls.clone();
        let stream = pages(guard(), None, move |cursor: Option<u32>| {
            counter.fetch_add(1, Ordering::SeqCst);
            async move {
                Ok(match cursor {
                    None => (vec![1, 2], Some(1), NONE),
                    Some(1) => (vec![], Some(2), NONE),
                    Some(2) => (vec![3], None, NONE),
                    Some(_) => unreachable!(),
                })
            }
        });
        let all: Vec<i32> = items(stream).try_collect().await.unwrap();
        assert_eq!(all, vec![1, 2, 3]);
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn pages_carry_their_cursor_for_resume() {
        let stream = pages(guard(), Some(5u32), |cursor: Option<u32>| async move {
            let c = cursor.unwrap();
            Ok((vec![c], (c < 6).then_some(c + 1), NONE))
        });
        let got: Vec<_> = stream.try_collect().await.unwrap();
        assert_eq!(got[0].cursor, Some(5));
        assert_eq!(got[1].cursor, Some(6));
        assert_eq!(got.len(), 2);
    }

    /// A server whose next cursors are `cycle` in a loop, after a first page.
    async fn run_cycle(cycle: &'static [&'static str]) -> (Error, usize) {
        let calls = Arc::new(AtomicUsize::new(0));
        let counter = calls.clone();
        let stream = pages(guard(), None, move |_cursor: Option<String>| {
            let n = counter.fetch_add(1, Ordering::SeqCst);
            async move {
                let next = cycle[n % cycle.len()].to_owned();
                Ok((vec![n], Some(next), NONE))
            }
        });
        let err = items(stream)
            .try_collect::<Vec<_>>()
            .await
            .expect_err("a cycle must end the listing");
        (err, calls.load(Ordering::SeqCst))
    }

    #[tokio::test]
    async fn cycles_of_length_one_to_three_are_errors_naming_route_and_page() {
        for (cycle, expected_calls) in [
            (&["A"][..], 2),
            (&["A", "B"][..], 3),
            (&["A", "B", "C"][..], 4),
        ] {
            let (err, calls) = run_cycle(cycle).await;
            assert_eq!(calls, expected_calls, "{cycle:?}");
            let text = err.to_string();
            assert!(text.contains("cycle"), "{text}");
            assert!(text.contains("GET /things"), "{text}");
            assert!(text.contains(&format!("page {expected_calls}")), "{text}");
            assert!(text.contains("genesys"), "{text}");
        }
    }

    #[tokio::test]
    async fn a_page_count_that_grows_on_every_page_is_held_to_the_first() {
        // Each page n claims n + 1 pages: never the last.
        let calls = Arc::new(AtomicUsize::new(0));
        let counter = calls.clone();
        let stream = pages(guard(), None, move |page: Option<u64>| {
            counter.fetch_add(1, Ordering::SeqCst);
            async move {
                let n = page.unwrap_or(1);
                Ok((vec![n], Some(n + 1), Declared::pages(Some(n + 1))))
            }
        });
        let err = items(stream).try_collect::<Vec<_>>().await.unwrap_err();
        // First page declared 2 pages; slack 2 -> at most 4 pages.
        assert_eq!(calls.load(Ordering::SeqCst), 4);
        assert!(err.to_string().contains("declared totals"), "{err}");
    }

    #[tokio::test]
    async fn largest_totals_follow_growth_but_the_hard_cap_holds() {
        let calls = Arc::new(AtomicUsize::new(0));
        let counter = calls.clone();
        let stream = pages(
            guard().totals(Totals::Largest).hard_cap(50),
            None,
            move |page: Option<u64>| {
                counter.fetch_add(1, Ordering::SeqCst);
                async move {
                    let n = page.unwrap_or(0);
                    Ok((vec![n], Some(n + 1), Declared::pages(Some(n + 2))))
                }
            },
        );
        let err = items(stream).try_collect::<Vec<_>>().await.unwrap_err();
        assert_eq!(calls.load(Ordering::SeqCst), 50);
        assert!(err.to_string().contains("hard cap of 50"), "{err}");
    }

    #[tokio::test]
    async fn empty_pages_beyond_a_declared_item_count_end() {
        // totalSize 5, then endless empty pages with fresh cursors.
        let stream = pages(guard(), None, move |page: Option<u64>| async move {
            let n = page.unwrap_or(0);
            Ok((Vec::<u8>::new(), Some(n + 1), Declared::items(Some(5))))
        });
        let got: Vec<Result<u8>> = items(stream).collect().await;
        assert!(got.last().unwrap().is_err());
    }

    #[tokio::test]
    async fn more_items_than_declared_end() {
        let stream = pages(guard(), None, move |page: Option<u64>| async move {
            let n = page.unwrap_or(0);
            Ok((vec![0u8; 100], Some(n + 1), Declared::items(Some(5))))
        });
        let err = items(stream).try_collect::<Vec<_>>().await.unwrap_err();
        assert!(err.to_string().contains("items received"), "{err}");
    }

    #[tokio::test]
    async fn honest_totals_list_everything() {
        let stream = pages(guard(), None, move |page: Option<u64>| async move {
            let n = page.unwrap_or(1);
            Ok((
                vec![n],
                (n < 30).then_some(n + 1),
                Declared::pages(Some(30u64)).with_items(Some(30)),
            ))
        });
        let all: Vec<u64> = items(stream).try_collect().await.unwrap();
        assert_eq!(all.len(), 30);
    }

    #[tokio::test]
    async fn an_error_ends_the_stream() {
        let stream = pages(guard(), None, |cursor: Option<u32>| async move {
            match cursor {
                None => Ok((vec![1], Some(1), NONE)),
                Some(_) => Err(Error::not_found(
                    ProviderKind::from_static("genesys"),
                    "page",
                )),
            }
        });
        let collected: Vec<Result<i32>> = items(stream).collect().await;
        assert_eq!(collected.len(), 2);
        assert!(collected[1].is_err());
    }
}
