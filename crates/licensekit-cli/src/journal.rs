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

use licensekit::{ChangeAction, HolderId, ItemOutcome, OutcomeCounts, ProductId, ProviderKind};
use serde::Serialize;

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

    /// One batch is going out.
    pub fn sent(&self, holders: &[HolderId]) {
        self.append(&Line::Sent { at: now(), holders });
    }

    /// Item `index` of the request settled.
    pub fn settled(&self, index: usize, item: &ItemOutcome) {
        self.append(&Line::Settled {
            at: now(),
            index,
            item,
        });
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
            ProviderKind::Memory,
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
    fn a_journal_directory_that_cannot_be_created_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("not-a-dir");
        std::fs::write(&file, "").unwrap();
        let err = Journal::create(
            &file.join("journal"),
            ProviderKind::Memory,
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
                ProviderKind::Memory,
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
