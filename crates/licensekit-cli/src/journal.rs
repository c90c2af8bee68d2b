//! The change journal: one JSON line per event of an assign or revoke, appended as it happens, so
//! a crash, a kill or Ctrl-C leaves a complete record of what was sent and how each item settled.
//!
//! Journals live in `<licensekit home>/journal/` (see [`crate::home`]), one file per run, named
//! `<UTC time>-<action>-<provider>-<pid>.jsonl`. Lines, each an object with a `type`:
//! - `start`: the request (provider, product, action, every holder in request order);
//! - `sent`: the holders of one batch, as it goes out;
//! - `settled`: one item's outcome with its index in the request (as in the report's `items`);
//! - `end`: the run finished (`interrupted` if cancelled), or `error` when nothing was changed;
//! - `abandoned`: the process quit at once (second Ctrl-C, internal error).
//!
//! Each line is written with one `write` call on an unbuffered file, so what the process has
//! recorded is in the file whatever happens to the process afterwards; a line cut short by a
//! power cut is skipped on reading. `licensekit journal show` turns a journal back into the usual
//! report: an item that was sent but never settled is unconfirmed, one never sent failed.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use licensekit::{
    ChangeAction, ChangeObserver, ChangeReport, Error, HolderId, ItemOutcome, Outcome,
    OutcomeCounts, ProductId, ProviderKind,
};
use serde::{Deserialize, Serialize};

/// The journal format's version, in every `start` line.
pub const VERSION: u32 = 1;

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Line<'a> {
    Start {
        journal: u32,
        at: String,
        provider: ProviderKind,
        product: &'a ProductId,
        action: ChangeAction,
        holders: &'a [HolderId],
    },
    Sent {
        at: String,
        holders: &'a [HolderId],
    },
    Settled {
        at: String,
        index: usize,
        #[serde(flatten)]
        item: &'a ItemOutcome,
    },
    End {
        at: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        interrupted: Option<bool>,
        #[serde(skip_serializing_if = "Option::is_none")]
        counts: Option<OutcomeCounts>,
        #[serde(skip_serializing_if = "Option::is_none")]
        error: Option<&'a str>,
    },
    Abandoned {
        at: String,
        reason: &'a str,
    },
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// An open journal, appended to from any thread.
#[derive(Debug)]
pub struct Journal {
    path: PathBuf,
    file: Mutex<File>,
    broken: AtomicBool,
}

impl Journal {
    /// Creates a new journal in `dir` (created if missing) and writes its `start` line. Fails
    /// if the directory or file cannot be created or written: the caller stops before any change.
    pub fn create(
        dir: &Path,
        provider: ProviderKind,
        product: &ProductId,
        action: ChangeAction,
        holders: &[HolderId],
    ) -> std::io::Result<Journal> {
        std::fs::create_dir_all(dir)?;
        let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%S%.3fZ");
        let pid = std::process::id();
        let mut options = OpenOptions::new();
        options.append(true).create_new(true);
        #[cfg(unix)]
        {
            // Error excerpts from vendors land here: readable by the owner only.
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut attempt = 0;
        let (path, file) = loop {
            let suffix = if attempt == 0 {
                String::new()
            } else {
                format!("-{attempt}")
            };
            let path = dir.join(format!("{stamp}-{action}-{provider}-{pid}{suffix}.jsonl"));
            match options.open(&path) {
                Ok(file) => break (path, file),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && attempt < 100 => {
                    attempt += 1;
                }
                Err(e) => return Err(e),
            }
        };
        let journal = Journal {
            path,
            file: Mutex::new(file),
            broken: AtomicBool::new(false),
        };
        journal.write(&Line::Start {
            journal: VERSION,
            at: now(),
            provider,
            product,
            action,
            holders,
        })?;
        Ok(journal)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn write(&self, line: &Line<'_>) -> std::io::Result<()> {
        let mut bytes = serde_json::to_vec(line).map_err(std::io::Error::other)?;
        bytes.push(b'\n');
        let mut file = self.file.lock().unwrap_or_else(|p| p.into_inner());
        file.write_all(&bytes)
    }

    /// Appends a line; a failure is reported once on stderr and the run goes on (stopping
    /// mid-change would leave more unknown than a journal with a gap).
    fn append(&self, line: &Line<'_>) {
        if let Err(e) = self.write(line)
            && !self.broken.swap(true, Ordering::Relaxed)
        {
            crate::say!(
                "warning: cannot write the journal {}: {e}; the report will still be written at the end",
                self.path.display()
            );
        }
    }

    /// The run finished with a report.
    pub fn finished(&self, interrupted: bool, counts: OutcomeCounts) {
        self.append(&Line::End {
            at: now(),
            interrupted: Some(interrupted),
            counts: Some(counts),
            error: None,
        });
    }

    /// The run stopped with an error before changing anything.
    pub fn failed(&self, error: &str) {
        self.append(&Line::End {
            at: now(),
            interrupted: None,
            counts: None,
            error: Some(error),
        });
    }

    /// The process is quitting at once. Never blocks: if another thread is mid-line (or this
    /// thread panicked while writing), the line is skipped; everything settled is already there.
    pub fn abandoned(&self, reason: &str) {
        let Ok(line) = serde_json::to_vec(&Line::Abandoned { at: now(), reason }) else {
            return;
        };
        if let Ok(mut file) = self.file.try_lock() {
            let _ = file.write_all(&[line.as_slice(), b"\n"].concat());
        }
    }
}

/// The engine tells the journal as batches go out and items settle.
impl ChangeObserver for Journal {
    fn sent(&self, holders: &[HolderId]) {
        self.append(&Line::Sent { at: now(), holders });
    }

    fn settled(&self, index: usize, item: &ItemOutcome) {
        self.append(&Line::Settled {
            at: now(),
            index,
            item,
        });
    }
}

/// A journal line as read back (fields a reader does not need are ignored).
#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ReadLine {
    Start {
        journal: u32,
        provider: ProviderKind,
        product: ProductId,
        action: ChangeAction,
        holders: Vec<HolderId>,
    },
    Sent {
        holders: Vec<HolderId>,
    },
    Settled {
        index: usize,
        #[serde(flatten)]
        item: ItemOutcome,
    },
    End {
        #[serde(default)]
        interrupted: Option<bool>,
        #[serde(default)]
        error: Option<String>,
    },
    Abandoned {},
}

/// A journal read back as the report of its run. Items with no `settled` line get the truth as
/// far as the journal knows it: sent but never settled → `Unconfirmed`; a repeat of an earlier
/// holder → `Duplicate`; never sent → `Failed` (cancelled, nothing changed). A run with no `end`
/// line (killed, second Ctrl-C, crash) is `interrupted`.
#[derive(Debug)]
pub struct Recorded {
    pub report: ChangeReport,
    /// The run's error when it stopped before changing anything.
    pub error: Option<String>,
    /// Warnings about the file (a last line cut short).
    pub warnings: Vec<String>,
}

pub fn read(path: &Path) -> Result<Recorded, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read the journal {}: {e}", path.display()))?;
    parse(&text, &path.display().to_string())
}

pub fn parse(text: &str, name: &str) -> Result<Recorded, String> {
    let mut warnings = Vec::new();
    let mut start = None;
    let mut sent: std::collections::HashSet<HolderId> = std::collections::HashSet::new();
    let mut settled: std::collections::BTreeMap<usize, ItemOutcome> = Default::default();
    let mut ended = None;
    let mut error = None;
    let count = text.lines().count();
    for (n, raw) in text.lines().enumerate() {
        if raw.trim().is_empty() {
            continue;
        }
        let line: ReadLine = match serde_json::from_str(raw) {
            Ok(line) => line,
            // The last line of a journal whose writer died mid-write (power cut) is cut short.
            Err(e) if n + 1 == count && !text.ends_with('\n') => {
                warnings.push(format!("{name}: line {}: cut short, skipped ({e})", n + 1));
                continue;
            }
            Err(e) => return Err(format!("{name}: line {}: not a journal line: {e}", n + 1)),
        };
        match line {
            ReadLine::Start {
                journal,
                provider,
                product,
                action,
                holders,
            } => {
                if journal > VERSION {
                    return Err(format!(
                        "{name}: journal version {journal} is newer than this licensekit reads ({VERSION})"
                    ));
                }
                if start.is_some() {
                    return Err(format!("{name}: line {}: a second start line", n + 1));
                }
                start = Some((provider, product, action, holders));
            }
            _ if start.is_none() => {
                return Err(format!(
                    "{name}: line {}: the journal does not begin with its start line",
                    n + 1
                ));
            }
            ReadLine::Sent { holders } => sent.extend(holders),
            ReadLine::Settled { index, item } => {
                settled.insert(index, item);
            }
            ReadLine::End {
                interrupted,
                error: e,
            } => {
                ended = Some(interrupted.unwrap_or(false));
                error = e;
            }
            ReadLine::Abandoned {} => ended = Some(true),
        }
    }
    let Some((provider, product, action, holders)) = start else {
        return Err(format!("{name}: empty, or not a licensekit journal"));
    };
    if let Some(&index) = settled.keys().find(|&&i| i >= holders.len()) {
        return Err(format!(
            "{name}: item {index} settled, but the request has {} items",
            holders.len()
        ));
    }
    let mut first: std::collections::HashMap<&HolderId, usize> = Default::default();
    let items = holders
        .iter()
        .enumerate()
        .map(|(index, holder)| {
            let of = *first.entry(holder).or_insert(index);
            if let Some(item) = settled.remove(&index) {
                return item;
            }
            let outcome = if of != index {
                Outcome::Duplicate { of }
            } else if sent.contains(holder) {
                Outcome::Unconfirmed {
                    reason: "sent, but the run ended before its outcome was recorded".into(),
                    last_error: None,
                }
            } else {
                Outcome::failed(Error::Cancelled { provider })
            };
            ItemOutcome::new(holder.clone(), outcome)
        })
        .collect();
    let mut report = ChangeReport::new(provider, product, action, items);
    report.interrupted = error.is_none() && ended.unwrap_or(true);
    Ok(Recorded {
        report,
        error,
        warnings,
    })
}

/// The journal of the change in progress, for the panic hook and the second Ctrl-C.
static ACTIVE: Mutex<Option<Arc<Journal>>> = Mutex::new(None);

pub fn set_active(journal: Option<Arc<Journal>>) {
    *ACTIVE.lock().unwrap_or_else(|p| p.into_inner()) = journal;
}

/// Marks the active journal abandoned and returns its path. Never blocks.
pub fn abandon_active(reason: &str) -> Option<PathBuf> {
    let active = ACTIVE.try_lock().ok()?.clone()?;
    active.abandoned(reason);
    Some(active.path.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use licensekit::{Error, Outcome};

    fn lines(path: &Path) -> Vec<serde_json::Value> {
        std::fs::read_to_string(path)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    #[test]
    fn every_event_is_one_json_line_on_disk_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let holders = [HolderId::user("ada"), HolderId::user("bob")];
        let product = ProductId::new("app");
        let journal = Journal::create(
            &dir.path().join("journal"),
            licensekit::InMemoryProvider::KIND,
            &product,
            ChangeAction::Assign,
            &holders,
        )
        .unwrap();
        let name = journal.path().file_name().unwrap().to_string_lossy();
        assert!(
            name.ends_with(
                "-assign-memory-{}.jsonl"
                    .replace("{}", &std::process::id().to_string())
                    .as_str()
            ),
            "{name}"
        );
        let start = &lines(journal.path())[0];
        assert_eq!(start["type"], "start");
        assert_eq!(start["journal"], VERSION);
        assert_eq!(start["holders"][1]["id"], "bob");

        journal.sent(&holders);
        journal.settled(1, &ItemOutcome::new(holders[1].clone(), Outcome::Applied));
        // Read while the journal is still open: nothing waits in a buffer.
        let read = lines(journal.path());
        assert_eq!(read.len(), 3);
        assert_eq!(read[1]["type"], "sent");
        assert_eq!(read[2]["type"], "settled");
        assert_eq!(read[2]["index"], 1);
        assert_eq!(read[2]["holder"]["id"], "bob");
        assert_eq!(read[2]["outcome"]["status"], "applied");

        journal.settled(
            0,
            &ItemOutcome::new(
                holders[0].clone(),
                Outcome::failed(Error::invalid_input("bad id")),
            ),
        );
        journal.finished(false, OutcomeCounts::default());
        journal.abandoned("test");
        let read = lines(journal.path());
        assert_eq!(read[3]["outcome"]["error_kind"], "invalid_input");
        assert_eq!(read[4]["type"], "end");
        assert_eq!(read[4]["interrupted"], false);
        assert_eq!(read[5]["type"], "abandoned");
    }

    #[test]
    fn a_journal_reads_back_as_the_report_of_its_run() {
        let dir = tempfile::tempdir().unwrap();
        let h = |id: &str| HolderId::user(id);
        let holders = [h("ada"), h("bob"), h("ada"), h("carol"), h("dan")];
        let journal = Journal::create(
            dir.path(),
            ProviderKind::from_static("genesys"),
            &ProductId::new("cx"),
            ChangeAction::Assign,
            &holders,
        )
        .unwrap();
        journal.sent(&[h("ada"), h("bob")]);
        journal.settled(0, &ItemOutcome::new(h("ada"), Outcome::Applied));
        journal.sent(&[h("carol")]);
        // Killed here: bob and carol were sent but never settled, dan never sent, and the
        // writer died in the middle of a line.
        let mut text = std::fs::read_to_string(journal.path()).unwrap();
        text.push_str("{\"type\":\"settled\",\"ind");
        let recorded = parse(&text, "j.jsonl").unwrap();
        assert_eq!(recorded.warnings.len(), 1, "{:?}", recorded.warnings);
        let report = recorded.report;
        assert!(report.interrupted, "no end line: the run did not finish");
        let statuses: Vec<&str> = report
            .items
            .iter()
            .map(|i| i.outcome.status().as_str())
            .collect();
        assert_eq!(
            statuses,
            [
                "applied",
                "unconfirmed",
                "duplicate",
                "unconfirmed",
                "failed"
            ]
        );
        assert_eq!(report.items[2].outcome, Outcome::Duplicate { of: 0 });
        assert_eq!(
            report.items[4].outcome.error().unwrap().kind(),
            licensekit::ErrorKind::Cancelled
        );

        // A finished run reads back as it ended.
        journal.settled(1, &ItemOutcome::new(h("bob"), Outcome::AlreadyInState));
        journal.settled(2, &ItemOutcome::new(h("ada"), Outcome::Duplicate { of: 0 }));
        journal.settled(3, &ItemOutcome::new(h("carol"), Outcome::Applied));
        journal.settled(
            4,
            &ItemOutcome::new(h("dan"), Outcome::failed(Error::invalid_input("bad id"))),
        );
        journal.finished(false, OutcomeCounts::default());
        let report = read(journal.path()).unwrap().report;
        assert!(!report.interrupted);
        assert_eq!(report.items[1].outcome, Outcome::AlreadyInState);
        assert_eq!(
            report.items[4].outcome.error().unwrap().to_string(),
            Error::invalid_input("bad id").to_string()
        );

        let err = parse("{\"type\":\"sent\",\"holders\":[]}\n", "j.jsonl").unwrap_err();
        assert!(
            err.contains("j.jsonl: line 1: the journal does not begin"),
            "{err}"
        );
        let err = parse("not json\n{}\n", "j.jsonl").unwrap_err();
        assert!(
            err.starts_with("j.jsonl: line 1: not a journal line"),
            "{err}"
        );
    }

    #[test]
    fn a_journal_directory_that_cannot_be_created_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("not-a-dir");
        std::fs::write(&file, "").unwrap();
        let err = Journal::create(
            &file.join("journal"),
            licensekit::InMemoryProvider::KIND,
            &ProductId::new("app"),
            ChangeAction::Revoke,
            &[],
        );
        assert!(err.is_err());
    }

    #[test]
    fn two_journals_in_one_instant_get_two_files() {
        let dir = tempfile::tempdir().unwrap();
        let open = || {
            Journal::create(
                dir.path(),
                licensekit::InMemoryProvider::KIND,
                &ProductId::new("app"),
                ChangeAction::Assign,
                &[],
            )
            .unwrap()
        };
        let (a, b) = (open(), open());
        assert_ne!(a.path(), b.path());
    }
}
