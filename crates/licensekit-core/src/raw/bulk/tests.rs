//! The engine's rules against a scripted backend: what the vendor did is known exactly, so every
//! outcome can be checked against it.

use std::collections::{BTreeSet, VecDeque};
use std::sync::Mutex;

use super::*;
use crate::model::OutcomeStatus;

/// What a scripted send does.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Script {
    /// Applies and answers each item clearly.
    Clear,
    /// Applies, then the answer is lost.
    LostAfterApplied,
    /// The connection breaks after sending; nothing is applied.
    LostBeforeApplied,
    /// Fails before doing anything, with an answer that says so.
    Refused,
    /// Applies and answers with words the adapter does not know.
    UnknownWords,
    /// Applies and answers with an empty list.
    EmptyAnswer,
}

#[derive(Debug, Default)]
struct Fake {
    held: Mutex<BTreeSet<String>>,
    sends: Mutex<VecDeque<Script>>,
    read_fails: Mutex<u32>,
    reads: Mutex<u32>,
    sent: Mutex<Vec<Vec<HolderId>>>,
}

impl Fake {
    fn holding(ids: &[&str]) -> Self {
        let fake = Fake::default();
        fake.held
            .lock()
            .unwrap()
            .extend(ids.iter().map(|s| s.to_string()));
        fake
    }
    fn script(self, scripts: &[Script]) -> Self {
        self.sends.lock().unwrap().extend(scripts);
        self
    }
    fn failing_reads(self, n: u32) -> Self {
        *self.read_fails.lock().unwrap() = n;
        self
    }
}

#[async_trait]
impl BulkBackend for Fake {
    type Context = ();
    fn provider(&self) -> ProviderKind {
        crate::InMemoryProvider::KIND
    }
    fn canonical(&self, holder: &HolderId) -> Result<HolderId> {
        let id = holder.as_str().trim();
        if id.is_empty() || id.contains('!') {
            return Err(Error::invalid_input(format!("bad id {id}")));
        }
        Ok(HolderId::user(id.to_ascii_lowercase()))
    }
    async fn prepare(
        &self,
        _: ChangeAction,
        _: &ProductId,
        _: &[HolderId],
    ) -> Result<Prepared<()>> {
        Ok(Prepared::new((), 2, 2))
    }
    async fn send(
        &self,
        _: &(),
        action: ChangeAction,
        batch: &[HolderId],
    ) -> Result<Vec<ItemAnswer>> {
        self.sent.lock().unwrap().push(batch.to_vec());
        let script = self
            .sends
            .lock()
            .unwrap()
            .pop_front()
            .unwrap_or(Script::Clear);
        match script {
            Script::Refused => return Err(Error::invalid_input("refused")),
            Script::LostBeforeApplied => {
                return Err(Error::Transport {
                    provider: crate::InMemoryProvider::KIND,
                    message: "connection reset".into(),
                    source: None,
                });
            }
            _ => {}
        }
        let mut held = self.held.lock().unwrap();
        let answers = batch
            .iter()
            .map(|h| {
                let changed = match action {
                    ChangeAction::Assign => held.insert(h.as_str().to_owned()),
                    ChangeAction::Revoke => held.remove(h.as_str()),
                };
                match script {
                    Script::UnknownWords => ItemAnswer::unclear(h.clone(), "result `Zut`")
                        .with_vendor_field("result", "Zut"),
                    _ if changed => ItemAnswer::settled(h.clone(), Outcome::Applied),
                    _ => ItemAnswer::settled(h.clone(), Outcome::AlreadyInState),
                }
            })
            .collect();
        match script {
            Script::LostAfterApplied => Err(Error::Transport {
                provider: crate::InMemoryProvider::KIND,
                message: "timed out".into(),
                source: None,
            }),
            Script::EmptyAnswer => Ok(Vec::new()),
            _ => Ok(answers),
        }
    }
    async fn read_state(&self, _: &(), holders: &[HolderId]) -> Result<StateRead> {
        *self.reads.lock().unwrap() += 1;
        let mut fails = self.read_fails.lock().unwrap();
        if *fails > 0 {
            *fails -= 1;
            return Err(Error::Unavailable {
                provider: crate::InMemoryProvider::KIND,
                message: "read failed".into(),
                source: None,
            });
        }
        let held = self.held.lock().unwrap();
        Ok(StateRead::held(
            holders
                .iter()
                .filter(|h| held.contains(h.as_str()))
                .cloned()
                .collect(),
        ))
    }
}

fn users_only() -> Capabilities {
    let mut caps = Capabilities::NONE;
    caps.user_holders = true;
    caps
}

fn users(ids: &[&str]) -> Vec<HolderId> {
    ids.iter().map(|i| HolderId::user(*i)).collect()
}

async fn assign(fake: &Fake, ids: &[&str]) -> ChangeReport {
    run(
        fake,
        &users_only(),
        BulkOptions::default(),
        ChangeRequest::assign("p".into(), users(ids)),
    )
    .await
    .unwrap()
}

fn statuses(report: &ChangeReport) -> Vec<OutcomeStatus> {
    report.items.iter().map(|i| i.outcome.status()).collect()
}

#[tokio::test]
async fn duplicates_are_changed_once_and_counted_apart() {
    let fake = Fake::default();
    let report = assign(&fake, &["a", "b", "A", "a", "bad!"]).await;
    use OutcomeStatus::*;
    assert_eq!(
        statuses(&report),
        [Applied, Applied, Duplicate, Duplicate, Failed]
    );
    assert_eq!(report.items[2].outcome, Outcome::Duplicate { of: 0 });
    assert_eq!(report.items[2].holder, HolderId::user("A"), "as requested");
    let counts = report.counts();
    assert_eq!(
        (counts.applied, counts.duplicate, counts.total()),
        (2, 2, 5)
    );
    let sent: usize = fake.sent.lock().unwrap().iter().map(Vec::len).sum();
    assert_eq!(sent, 2, "each holder sent once");
}

#[tokio::test]
async fn a_lost_answer_is_settled_from_state_as_applied() {
    // b already held: known "already" only if we had asked before sending. We had not, and our
    // send may have done it, so both are Applied after the read-back.
    let fake = Fake::holding(&["b"]).script(&[Script::LostAfterApplied]);
    let report = assign(&fake, &["a", "b"]).await;
    assert_eq!(
        statuses(&report),
        [OutcomeStatus::Applied, OutcomeStatus::Applied]
    );
    assert_eq!(*fake.reads.lock().unwrap(), 1);
    assert_eq!(
        fake.sent.lock().unwrap().len(),
        1,
        "nothing re-sent blindly"
    );
}

#[tokio::test]
async fn unknown_words_and_empty_answers_are_read_back() {
    let fake = Fake::default().script(&[Script::UnknownWords, Script::EmptyAnswer]);
    let report = assign(&fake, &["a", "b", "c", "d"]).await;
    assert!(
        report.items.iter().all(|i| i.outcome == Outcome::Applied),
        "{report:?}"
    );
    let with_words = report
        .items
        .iter()
        .filter(|i| i.vendor.get("result").is_some_and(|r| r == "Zut"))
        .count();
    assert_eq!(with_words, 2, "the vendor's words are kept on the item");
    assert_eq!(*fake.reads.lock().unwrap(), 1, "one read for the round");
}

#[tokio::test]
async fn an_unreadable_state_is_unconfirmed_never_failed() {
    let fake = Fake::default()
        .script(&[Script::LostAfterApplied])
        .failing_reads(1);
    let report = assign(&fake, &["a", "b"]).await;
    assert_eq!(
        statuses(&report),
        [OutcomeStatus::Unconfirmed, OutcomeStatus::Unconfirmed]
    );
    assert_eq!(report.counts().unconfirmed, 2);
    assert!(!report.is_complete_success());
    // A second run settles them: the state says they are held, and nothing was sent for them
    // before this run asked, so the vendor's own "already" answer stands.
    let again = assign(&fake, &["a", "b"]).await;
    assert_eq!(
        statuses(&again),
        [OutcomeStatus::AlreadyInState, OutcomeStatus::AlreadyInState]
    );
}

#[tokio::test]
async fn a_change_missing_after_a_lost_answer_is_sent_again() {
    let fake = Fake::default().script(&[Script::LostBeforeApplied]);
    let report = assign(&fake, &["a"]).await;
    assert_eq!(statuses(&report), [OutcomeStatus::Applied]);
    assert_eq!(fake.sent.lock().unwrap().len(), 2, "re-sent after the read");
    assert_eq!(*fake.reads.lock().unwrap(), 1);

    // A vendor that loses every send: Failed after max_sends with the last error, each send
    // after the first following a read that showed the change missing.
    let fake = Fake::default().script(&[Script::LostBeforeApplied; 5]);
    let report = run(
        &fake,
        &users_only(),
        BulkOptions { max_sends: 3 },
        ChangeRequest::assign("p".into(), users(&["x"])),
    )
    .await
    .unwrap();
    assert_eq!(statuses(&report), [OutcomeStatus::Failed]);
    let error = report.items[0].outcome.error().unwrap().to_string();
    assert!(error.contains("connection reset"), "{error}");
    assert_eq!(fake.sent.lock().unwrap().len(), 3);
    assert_eq!(*fake.reads.lock().unwrap(), 3);
}

#[tokio::test]
async fn a_refusal_fails_the_batch_without_a_read() {
    let fake = Fake::default().script(&[Script::Refused]);
    let report = assign(&fake, &["a", "b", "c"]).await;
    use OutcomeStatus::*;
    // Batches of two: the first refused, the second applied.
    assert_eq!(statuses(&report), [Failed, Failed, Applied]);
    assert_eq!(*fake.reads.lock().unwrap(), 0);
}

#[tokio::test]
async fn cancellation_stops_new_batches_and_reports_every_item() {
    #[derive(Debug, Default)]
    struct Recorder {
        settled: Mutex<Vec<usize>>,
        cancel: CancellationToken,
    }
    impl ChangeObserver for Recorder {
        fn settled(&self, index: usize, _: &ItemOutcome) {
            self.settled.lock().unwrap().push(index);
            // Interrupt as soon as the first item settles.
            self.cancel.cancel();
        }
    }
    let fake = Fake::default();
    let recorder = Arc::new(Recorder::default());
    let request = ChangeRequest::assign("p".into(), users(&["a", "b", "c", "d", "e", "f", "a"]))
        .with_observer(recorder.clone())
        .with_cancel(recorder.cancel.clone());
    let report = run(&fake, &users_only(), BulkOptions::default(), request)
        .await
        .unwrap();
    assert!(report.interrupted);
    assert_eq!(report.items.len(), 7);
    let counts = report.counts();
    assert_eq!(counts.total(), 7);
    assert!(
        counts.applied >= 2,
        "the batch in flight finished: {counts:?}"
    );
    assert!(
        counts.failed >= 2,
        "later batches never started: {counts:?}"
    );
    for item in report.failures() {
        assert_eq!(item.1.kind(), crate::ErrorKind::Cancelled);
    }
    let held = fake.held.lock().unwrap().len();
    assert_eq!(
        held, counts.applied,
        "applied means done, and nothing else was done"
    );
    let mut seen = recorder.settled.lock().unwrap().clone();
    seen.sort_unstable();
    assert_eq!(seen, (0..7).collect::<Vec<_>>(), "every item settled once");
}
