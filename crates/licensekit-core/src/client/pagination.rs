//! Continuation-token pagination as streams of pages and of items.

use std::fmt::Debug;
use std::future::Future;

use futures::stream::{self, BoxStream, StreamExt, TryStreamExt};

use crate::error::{Error, Result};
use crate::model::ProviderKind;

/// One page of a listing.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T, C> {
    /// The cursor this page was fetched with (`None` for the first page): resume from here.
    pub cursor: Option<C>,
    pub items: Vec<T>,
    /// The cursor of the next page; `None` on the last page. The only end signal: an empty page
    /// with a next cursor is not the end.
    pub next: Option<C>,
}

/// Streams pages: `fetch(None)` first, then `fetch(Some(next))` while the vendor gives a next
/// cursor. A vendor that hands back the cursor it was just given would loop forever; that is
/// reported as an error instead.
pub fn pages<T, C, F, Fut>(
    provider: ProviderKind,
    start: Option<C>,
    mut fetch: F,
) -> BoxStream<'static, Result<Page<T, C>>>
where
    T: Send + 'static,
    C: Clone + PartialEq + Debug + Send + 'static,
    F: FnMut(Option<C>) -> Fut + Send + 'static,
    Fut: Future<Output = Result<(Vec<T>, Option<C>)>> + Send + 'static,
{
    enum State<C> {
        Next(Option<C>),
        Done,
    }
    stream::try_unfold(State::Next(start), move |state| {
        let call = match state {
            State::Done => None,
            State::Next(cursor) => Some((cursor.clone(), fetch(cursor))),
        };
        async move {
            let Some((cursor, call)) = call else {
                return Ok(None);
            };
            let (items, next) = call.await?;
            if next.is_some() && next == cursor {
                return Err(Error::Decode {
                    provider,
                    message: format!(
                        "pagination did not advance: the next-page cursor {next:?} equals the current one"
                    ),
                    source: None,
                });
            }
            let state = match &next {
                Some(n) => State::Next(Some(n.clone())),
                None => State::Done,
            };
            Ok(Some((Page { cursor, items, next }, state)))
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

    #[tokio::test]
    async fn an_empty_middle_page_does_not_end_the_listing() {
        // Pages: [1,2] -> [] -> [3] (end).
        let calls = Arc::new(AtomicUsize::new(0));
        let counter = calls.clone();
        let stream = pages(ProviderKind::Memory, None, move |cursor: Option<u32>| {
            counter.fetch_add(1, Ordering::SeqCst);
            async move {
                Ok(match cursor {
                    None => (vec![1, 2], Some(1)),
                    Some(1) => (vec![], Some(2)),
                    Some(2) => (vec![3], None),
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
        let stream = pages(
            ProviderKind::Memory,
            Some(5u32),
            |cursor: Option<u32>| async move {
                let c = cursor.unwrap();
                Ok((vec![c], (c < 6).then_some(c + 1)))
            },
        );
        let got: Vec<_> = stream.try_collect().await.unwrap();
        assert_eq!(got[0].cursor, Some(5));
        assert_eq!(got[1].cursor, Some(6));
        assert_eq!(got.len(), 2);
    }

    #[tokio::test]
    async fn a_cursor_that_does_not_advance_is_an_error() {
        let stream = pages(
            ProviderKind::Genesys,
            None,
            |_cursor: Option<u32>| async move { Ok((vec![1], Some(7))) },
        );
        let result: Result<Vec<i32>> = items(stream).try_collect().await;
        let err = result.unwrap_err();
        assert!(err.to_string().contains("did not advance"), "{err}");
    }

    #[tokio::test]
    async fn an_error_ends_the_stream() {
        let stream = pages(
            ProviderKind::Genesys,
            None,
            |cursor: Option<u32>| async move {
                match cursor {
                    None => Ok((vec![1], Some(1))),
                    Some(_) => Err(Error::not_found(ProviderKind::Genesys, "page")),
                }
            },
        );
        let collected: Vec<Result<i32>> = items(stream).collect().await;
        assert_eq!(collected.len(), 2);
        assert!(collected[1].is_err());
    }
}
