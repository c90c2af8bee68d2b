//! What the CLI prints: tables for people, JSON and CSV for tools, progress on stderr.
//!
//! Data goes to stdout (or `--output`) in exactly the requested format, through [`data`]; talk
//! (summaries, progress, warnings) goes to stderr through [`crate::say!`]. A reader that goes away
//! (`licensekit … | head -1`) ends the output quietly: never a panic, never a message.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{Seek, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use comfy_table::{Table, presets::UTF8_BORDERS_ONLY};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use licensekit::report::Report;
use licensekit::{Assignment, ChangeReport, Outcome, Product, ProviderKind, SeatTotal};
use serde::Serialize;

/// A spinner on stderr with items read per provider. Hidden with `--quiet` and when stderr is
/// not a terminal (indicatif draws only to terminals).
pub struct Progress {
    bar: ProgressBar,
    counts: Mutex<BTreeMap<ProviderKind, u64>>,
}

impl Progress {
    pub fn new(quiet: bool) -> Self {
        let target = if quiet {
            ProgressDrawTarget::hidden()
        } else {
            ProgressDrawTarget::stderr()
        };
        let bar = ProgressBar::with_draw_target(None, target);
        bar.set_style(ProgressStyle::with_template("{spinner} {msg}").expect("valid template"));
        bar.enable_steady_tick(Duration::from_millis(120));
        Progress {
            bar,
            counts: Mutex::new(BTreeMap::new()),
        }
    }

    pub fn update(&self, provider: ProviderKind, items: u64) {
        let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        counts.insert(provider, items);
        let message: Vec<String> = counts
            .iter()
            .map(|(p, n)| format!("{p}: {n} assignments"))
            .collect();
        self.bar.set_message(message.join(", "));
    }

    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

fn table(header: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_preset(UTF8_BORDERS_ONLY)
        .set_header(header.iter().copied());
    t
}

fn total_text(total: Option<u64>, unlimited: bool) -> String {
    match (total, unlimited) {
        (Some(n), _) => n.to_string(),
        (None, true) => "unlimited".into(),
        (None, false) => "unknown".into(),
    }
}

/// Rows of a per-holder table shown in the terminal; the rest are counted, and the CSV and JSON
/// formats list every one (a table of 45,000 candidates is read by no one, and would hold the
/// whole rendering in memory).
const TABLE_ROWS: usize = 200;

/// The line after a per-holder table cut at [`TABLE_ROWS`]; empty when nothing was left out.
fn more_rows(total: usize, section: &str) -> String {
    match total.checked_sub(TABLE_ROWS) {
        Some(more) if more > 0 => format!(
            "… and {more} more; `licensekit report --format csv --section {section}` lists every one\n"
        ),
        _ => String::new(),
    }
}

/// The report for people: totals, products, matching, reclaim candidates.
pub fn report_table(report: &Report) -> String {
    let mut out = String::new();
    let mut totals = table(&[
        "provider",
        "products",
        "seats owned",
        "seats assigned",
        "assignments",
        "directory",
    ]);
    for p in &report.providers {
        let mut owned = p.seats_total.to_string();
        if p.products_unlimited > 0 {
            owned.push_str(&format!(" + {} unlimited", p.products_unlimited));
        }
        if p.products_total_unknown > 0 {
            owned.push_str(&format!(" + {} unknown", p.products_total_unknown));
        }
        totals.add_row(vec![
            p.provider.to_string(),
            p.products.to_string(),
            owned,
            p.seats_assigned.to_string(),
            p.assignments.to_string(),
            p.holders_in_directory
                .map_or("-".into(), |n| format!("{n} users")),
        ]);
    }
    out.push_str(&format!("Vendors\n{totals}\n"));
    for p in &report.providers {
        for change in &p.changed_during_listing {
            out.push_str(&format!(
                "note: {} changed while its {} were listed (versionId {} -> {}); its figures mix both states\n",
                p.provider, change.listing, change.first_version_id, change.last_version_id
            ));
        }
    }
    out.push('\n');

    let mut products = table(&[
        "provider", "product", "total", "assigned", "free", "used %", "note",
    ]);
    for p in &report.products {
        let mut note = Vec::new();
        if let Some(over) = p.over_allocated_by {
            note.push(format!("OVER-ALLOCATED by {over}"));
        } else if p.utilization_pct.is_some_and(|u| u >= 90.0) {
            note.push("near capacity".to_string());
        }
        if p.changed_during_listing {
            note.push("changed during listing".to_string());
        }
        note.push(
            format!(
                "total: {:?}, assigned: {:?}",
                p.total_source, p.assigned_source
            )
            .to_lowercase(),
        );
        products.add_row(vec![
            p.provider.to_string(),
            format!("{} ({})", p.name, p.product_id),
            total_text(p.total, p.unlimited),
            p.assigned.to_string(),
            p.available.map_or("-".into(), |n| n.to_string()),
            p.utilization_pct.map_or("-".into(), |u| format!("{u:.1}")),
            note.join("; "),
        ]);
    }
    out.push_str(&format!("Products\n{products}\n\n"));

    let multi = report.people.iter().filter(|p| {
        let mut vendors: Vec<ProviderKind> = p.accounts.iter().map(|a| a.provider).collect();
        vendors.sort();
        vendors.dedup();
        vendors.len() > 1
    });
    out.push_str(&format!(
        "People: {} matched by email ({} in more than one vendor); {} holders unmatched; {} devices\n",
        report.people.len(),
        multi.count(),
        report.unmatched.len(),
        report.devices.len()
    ));
    if !report.unmatched.is_empty() {
        let mut unmatched = table(&["provider", "holder", "name", "products"]);
        for u in report.unmatched.iter().take(TABLE_ROWS) {
            unmatched.add_row(vec![
                u.provider.to_string(),
                u.holder_id.clone(),
                u.display_name.clone().unwrap_or_default(),
                u.products
                    .iter()
                    .map(|p| p.to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
            ]);
        }
        out.push_str(&format!(
            "Unmatched holders (no usable email)\n{unmatched}\n"
        ));
        out.push_str(&more_rows(report.unmatched.len(), "unmatched"));
    }
    out.push('\n');

    if !report.costs.is_empty() {
        let mut costs = table(&[
            "scope",
            "currency",
            "priced products",
            "annual cost",
            "unassigned seats cost",
            "reclaimable seats cost",
        ]);
        let per_vendor = report
            .providers
            .iter()
            .flat_map(|p| p.costs.iter().map(move |c| (p.provider.to_string(), c)));
        let overall = report.costs.iter().map(|c| ("all vendors".to_string(), c));
        for (scope, c) in per_vendor.chain(overall) {
            costs.add_row(vec![
                scope,
                c.currency.clone(),
                c.products.to_string(),
                c.annual_cost.to_string(),
                c.unassigned_cost.to_string(),
                c.reclaimable_cost.to_string(),
            ]);
        }
        out.push_str(&format!(
            "Cost per year (from the configured contracts; never summed across currencies)\n{costs}\n\n"
        ));
    }
    let mut renewals = table(&[
        "renews",
        "in days",
        "provider",
        "product",
        "seats",
        "annual cost",
        "notes",
    ]);
    for r in &report.renewals {
        renewals.add_row(vec![
            r.date.to_string(),
            r.days_left.to_string(),
            r.provider.to_string(),
            r.product_name.clone(),
            r.seats.map_or("-".into(), |n| n.to_string()),
            match (&r.annual_cost, &r.currency) {
                (Some(cost), Some(currency)) => format!("{cost} {currency}"),
                _ => "-".into(),
            },
            r.notes.clone().unwrap_or_default(),
        ]);
    }
    out.push_str(&format!(
        "Renewals within {} days: {}\n{renewals}\n\n",
        report.renewal_days,
        report.renewals.len()
    ));

    let mut reclaim = table(&["provider", "product", "holder", "name / email", "reason"]);
    for r in report.reclaim.iter().take(TABLE_ROWS) {
        reclaim.add_row(vec![
            r.provider.to_string(),
            r.product_name.to_string(),
            r.holder.as_str().to_owned(),
            r.holder_name
                .clone()
                .or_else(|| r.email.clone())
                .unwrap_or_default(),
            match (r.reason, r.idle_days) {
                (licensekit::report::ReclaimReason::InactiveForDays, Some(days)) => {
                    format!("InactiveForDays ({days} days)")
                }
                (reason, _) => format!("{reason:?}"),
            },
        ]);
    }
    out.push_str(&format!(
        "Reclaim candidates: {}\n{reclaim}\n",
        report.reclaim.len()
    ));
    out.push_str(&more_rows(report.reclaim.len(), "reclaim"));
    for w in &report.warnings {
        out.push_str(&format!("\nWARNING: {w}\n"));
    }
    for e in &report.errors {
        out.push_str(&format!("\nERROR {}: {}\n", e.provider, e.error));
    }
    out
}

fn seats_text(p: &Product) -> (String, String) {
    let total = match p.seats.total {
        SeatTotal::Limited(n) => n.to_string(),
        SeatTotal::Unlimited => "unlimited".into(),
        SeatTotal::Unknown => "unknown".into(),
    };
    (
        total,
        p.seats.assigned.map_or("-".into(), |n| n.to_string()),
    )
}

pub fn products_table(rows: &[Product]) -> String {
    let mut t = table(&[
        "provider",
        "product id",
        "name",
        "total",
        "assigned",
        "free",
    ]);
    for p in rows {
        let (total, assigned) = seats_text(p);
        t.add_row(vec![
            p.provider.to_string(),
            p.id.to_string(),
            p.name.clone(),
            total,
            assigned,
            p.seats.available().map_or("-".into(), |n| n.to_string()),
        ]);
    }
    t.to_string()
}

#[derive(Serialize)]
struct ProductLine<'a> {
    provider: ProviderKind,
    product_id: &'a str,
    name: &'a str,
    total: String,
    assigned: String,
}

pub fn products_csv(rows: &[Product]) -> String {
    csv_of(rows.iter().map(|p| {
        let (total, assigned) = seats_text(p);
        ProductLine {
            provider: p.provider,
            product_id: p.id.as_str(),
            name: &p.name,
            total,
            assigned,
        }
    }))
}

#[derive(Serialize)]
struct AssignmentLine<'a> {
    provider: ProviderKind,
    product_id: &'a str,
    holder_kind: licensekit::HolderKind,
    holder_id: &'a str,
    email: Option<&'a str>,
    name: Option<&'a str>,
    active: Option<bool>,
    assigned_at: Option<String>,
}

fn assignment_line(a: &Assignment) -> AssignmentLine<'_> {
    AssignmentLine {
        provider: a.provider,
        product_id: a.product.as_str(),
        holder_kind: a.holder.id.kind(),
        holder_id: a.holder.id.as_str(),
        email: a.holder.email.as_deref(),
        name: a.holder.display_name.as_deref(),
        active: a.holder.active,
        assigned_at: a.assigned_at.map(|t| t.to_rfc3339()),
    }
}

pub fn assignments_table(rows: &[Assignment]) -> String {
    let mut t = table(&["provider", "product", "holder", "email", "name", "active"]);
    for a in rows {
        let l = assignment_line(a);
        t.add_row(vec![
            l.provider.to_string(),
            l.product_id.to_owned(),
            a.holder.id.to_string(),
            l.email.unwrap_or("").to_owned(),
            l.name.unwrap_or("").to_owned(),
            l.active.map_or("-".into(), |b| b.to_string()),
        ]);
    }
    format!("{t}\n{} assignments", rows.len())
}

pub fn assignments_csv(rows: &[Assignment]) -> String {
    csv_of(rows.iter().map(assignment_line))
}

#[derive(Serialize)]
struct OutcomeLine<'a> {
    index: usize,
    holder_kind: licensekit::HolderKind,
    holder_id: &'a str,
    status: &'static str,
    reference: Option<&'a str>,
    duplicate_of: Option<usize>,
    reason: Option<&'a str>,
    error_kind: Option<licensekit::ErrorKind>,
    error: Option<String>,
}

fn outcome_lines(report: &ChangeReport) -> impl Iterator<Item = OutcomeLine<'_>> {
    report
        .items
        .iter()
        .enumerate()
        .map(|(index, i)| OutcomeLine {
            index,
            holder_kind: i.holder.kind(),
            holder_id: i.holder.as_str(),
            status: i.outcome.status().as_str(),
            reference: match &i.outcome {
                Outcome::Pending { reference } => Some(reference.as_str()),
                _ => None,
            },
            duplicate_of: match &i.outcome {
                Outcome::Duplicate { of } => Some(*of),
                _ => None,
            },
            reason: match &i.outcome {
                Outcome::Unconfirmed { reason, .. } => Some(reason.as_str()),
                _ => None,
            },
            error_kind: i.outcome.error().map(|e| e.kind()),
            error: i.outcome.error().map(ToString::to_string),
        })
}

/// The one-line summary of a change, for stderr. Unconfirmed items say what to do about them.
pub fn change_summary(report: &ChangeReport) -> String {
    let counts = report.counts();
    let mut parts = vec![
        format!("{} applied", counts.applied),
        format!("{} already so", counts.already_in_state),
        format!("{} pending", counts.pending),
        format!("{} failed", counts.failed),
    ];
    if counts.duplicate > 0 {
        parts.push(format!("{} duplicate", counts.duplicate));
    }
    if counts.unconfirmed > 0 {
        parts.push(format!(
            "{} unconfirmed: state unknown, re-run to settle",
            counts.unconfirmed
        ));
    }
    let mut line = format!(
        "{} {} at {}: {} (of {})",
        report.action,
        report.product,
        report.provider,
        parts.join(", "),
        counts.total()
    );
    if report.interrupted {
        let not_sent = report
            .items
            .iter()
            .filter(|i| {
                i.outcome
                    .error()
                    .is_some_and(|e| e.kind() == licensekit::ErrorKind::Cancelled)
            })
            .count();
        line.push_str(&format!("; interrupted: {not_sent} not sent"));
    }
    line
}

pub fn change_csv(report: &ChangeReport) -> String {
    csv_of(outcome_lines(report))
}

pub fn change_table(report: &ChangeReport) -> String {
    let mut t = table(&["#", "holder", "outcome", "detail"]);
    for l in outcome_lines(report) {
        let detail = match (&l.error, l.reference, l.duplicate_of, l.reason) {
            (_, Some(r), _, _) => format!("reference {r}"),
            (_, _, Some(of), _) => format!("duplicate of #{of}"),
            (Some(e), _, _, Some(why)) => format!("{why}; last error: {e}"),
            (None, _, _, Some(why)) => why.to_owned(),
            (Some(e), _, _, None) => e.clone(),
            (None, None, None, None) => String::new(),
        };
        t.add_row(vec![
            l.index.to_string(),
            l.holder_id.to_owned(),
            l.status.to_owned(),
            detail,
        ]);
    }
    format!("{t}\n")
}

fn csv_of<T: Serialize>(rows: impl Iterator<Item = T>) -> String {
    let mut w = csv::Writer::from_writer(Vec::new());
    for row in rows {
        w.serialize(row).expect("rows serialize to CSV");
    }
    String::from_utf8(w.into_inner().expect("in-memory writer")).expect("UTF-8")
}

/// Set once stdout's reader has gone away: later data is dropped quietly.
static STDOUT_CLOSED: AtomicBool = AtomicBool::new(false);

/// Writes data to stdout as `write` produces it (a large report is never one string in memory),
/// ending it with a newline. A closed pipe is not an error: the reader took what it wanted
/// (`| head`), so the rest is dropped and the command ends as it would have.
pub fn data_with(write: impl FnOnce(&mut dyn Write) -> std::io::Result<()>) -> std::io::Result<()> {
    if STDOUT_CLOSED.load(Ordering::Relaxed) {
        return Ok(());
    }
    let mut out = EndsWithNewline::new(std::io::BufWriter::new(std::io::stdout().lock()));
    let result = write(&mut out).and_then(|()| out.finish());
    match result {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {
            STDOUT_CLOSED.store(true, Ordering::Relaxed);
            Ok(())
        }
        other => other,
    }
}

/// The I/O error inside a CSV error, kept as it is (csv's own conversion turns a closed pipe
/// into an `Other` error, which would make `| head` fail loudly).
pub fn csv_io_error(error: csv::Error) -> std::io::Error {
    if !error.is_io_error() {
        return std::io::Error::other(error);
    }
    match error.into_kind() {
        csv::ErrorKind::Io(io) => io,
        other => std::io::Error::other(format!("{other:?}")),
    }
}

/// A writer that ends what was written with a newline when it does not end with one.
struct EndsWithNewline<W: Write> {
    inner: W,
    last: Option<u8>,
}

impl<W: Write> EndsWithNewline<W> {
    fn new(inner: W) -> Self {
        EndsWithNewline { inner, last: None }
    }

    /// Adds the final newline if needed, and flushes.
    fn finish(&mut self) -> std::io::Result<()> {
        if self.last.is_some_and(|b| b != b'\n') {
            self.inner.write_all(b"\n")?;
        }
        self.inner.flush()
    }
}

impl<W: Write> Write for EndsWithNewline<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        if n > 0 {
            self.last = Some(buf[n - 1]);
        }
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// `--output FILE`, opened (or created) before any work so that an unwritable path is a usage
/// error before anything is read or changed. The content is replaced only when written; a file
/// this run created and never wrote (the command failed first) is removed again.
#[derive(Debug)]
pub struct OutputFile {
    path: PathBuf,
    file: Option<File>,
    created: bool,
}

impl OutputFile {
    pub fn open(path: &Path) -> Result<OutputFile, String> {
        let existed = path.exists();
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(|e| format!("cannot write --output {}: {e}", path.display()))?;
        Ok(OutputFile {
            path: path.to_owned(),
            file: Some(file),
            created: !existed,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Replaces the file's content with what `write` writes, ending it with a newline.
    pub fn write_with(
        mut self,
        write: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
    ) -> std::io::Result<()> {
        let Some(mut file) = self.file.take() else {
            return Ok(());
        };
        file.set_len(0)?;
        file.rewind()?;
        let mut out = EndsWithNewline::new(std::io::BufWriter::new(&file));
        write(&mut out)?;
        out.finish()?;
        drop(out);
        file.sync_all()
    }
}

impl Drop for OutputFile {
    fn drop(&mut self) {
        if self.created && self.file.take().is_some() {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}
