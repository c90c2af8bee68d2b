//! `licensekit plan` and `licensekit apply`: a desired state across vendors (see
//! [`licensekit::plan`]).
//!
//! - `plan FILE [--out plan.json] [--format table|json|csv]`: reads the desired-state file
//!   (TOML; users and devices files read with the `--users-file` reader), plans it, prints the
//!   plan on stdout and, with `--out`, saves it as JSON for `apply`.
//! - `apply plan.json`: applies a saved plan as it is — refused (exit 2, naming the products) if
//!   the state drifted since, unless `--refresh` plans again (and asks again).
//! - `apply FILE`: plans the desired state, shows the plan on stderr and applies it once
//!   confirmed; `--yes` skips the question, and without a terminal to ask on `--yes` is
//!   required (exit 2 otherwise).
//!
//! Every step of an apply (one revoke or assign of one product) keeps a journal and stops on
//! Ctrl-C exactly as `assign`/`revoke` do ([`crate::begin_journal`], [`crate::end_journal`]).
//! Changes Apple leaves pending are remembered in `$LICENSEKIT_HOME/pending.json` (not with
//! `--sandbox`, whose simulators do not outlive the command); the next plan polls their events
//! and lists those still running as pending, never as new changes.

use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use clap::Args;
use comfy_table::{Table, presets::UTF8_BORDERS_ONLY};
use licensekit::plan::{
    ApplyError, ApplyHooks, ApplyOptions, ApplyReport, DesiredState, PendingChange, Plan,
    PlanOptions, Step,
};
use licensekit::report::ReportOptions;
use licensekit::{
    AnyProvider, ChangeAction, ChangeObserver, ChangeReport, LicenseProvider, Outcome,
};
use serde::{Deserialize, Serialize};

use crate::journal::Journal;
use crate::output::{OutputFile, Progress};
use crate::{Failure, Format, Interrupts, OutputArgs, usage};

#[derive(Args)]
pub struct PlanArgs {
    /// The desired-state file (TOML, see examples/desired-state.toml)
    file: PathBuf,
    /// Also save the plan as JSON to FILE, for `licensekit apply FILE`
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
}

#[derive(Args)]
pub struct ApplyArgs {
    /// A plan saved with `plan --out` (applied as it is), or a desired-state file (planned,
    /// shown on stderr, and applied once confirmed)
    file: PathBuf,
    /// Apply without asking (required when there is no terminal to ask on)
    #[arg(long, short)]
    yes: bool,
    /// When the state drifted since the plan was made, plan again (and ask again) instead of
    /// refusing
    #[arg(long)]
    refresh: bool,
    /// Of a product short of seats, apply the removes and the adds that fit (in the plan's
    /// stated order); without it such a product is not changed at all
    #[arg(long)]
    partial: bool,
    #[command(flatten)]
    out: OutputArgs,
}

/// What the file given to `plan` or `apply` holds.
enum Input {
    Plan(Box<Plan>),
    Desired(DesiredState),
}

/// A saved plan (JSON) or a desired-state file (TOML), read whole before anything is asked of a
/// vendor. Problems are exit 2, naming the file.
fn read_input(path: &Path) -> Result<Input, Failure> {
    let name = path.display().to_string();
    let text =
        std::fs::read_to_string(path).map_err(|e| usage(format!("cannot read {name}: {e}")))?;
    if text.trim_start().starts_with('{') {
        let plan = Plan::from_json(&text).map_err(|e| usage(format!("{name}: {e}")))?;
        return Ok(Input::Plan(Box::new(plan)));
    }
    let mut desired = DesiredState::from_toml(&text, &name).map_err(|e| usage(e.to_string()))?;
    let base = path.parent().unwrap_or(Path::new("."));
    desired
        .read_files(base, &|file| crate::users::read(file).map_err(|e| e.0))
        .map_err(|e| usage(format!("{name}: {e}")))?;
    Ok(Input::Desired(desired))
}

/// The pending store: changes an apply left pending at the vendor.
#[derive(Serialize, Deserialize)]
struct PendingFile {
    version: u32,
    pending: Vec<PendingChange>,
}

fn pending_path(sandbox: bool) -> Option<PathBuf> {
    if sandbox {
        return None;
    }
    crate::home::licensekit_home().map(|home| home.join("pending.json"))
}

fn load_pending(sandbox: bool) -> Result<Vec<PendingChange>, Failure> {
    let Some(path) = pending_path(sandbox) else {
        return Ok(Vec::new());
    };
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(usage(format!("cannot read {}: {e}", path.display()))),
    };
    serde_json::from_str::<PendingFile>(&text)
        .map(|f| f.pending)
        .map_err(|e| {
            usage(format!(
                "{}: {e}; it lists changes still pending at Apple (remove it only if they are settled)",
                path.display()
            ))
        })
}

fn save_pending(sandbox: bool, pending: &[PendingChange]) {
    let Some(path) = pending_path(sandbox) else {
        return;
    };
    let file = PendingFile {
        version: 1,
        pending: pending.to_vec(),
    };
    let text = serde_json::to_string_pretty(&file).expect("serializable");
    let tmp = path.with_extension("json.tmp");
    let written = path
        .parent()
        .map_or(Ok(()), std::fs::create_dir_all)
        .and_then(|()| std::fs::write(&tmp, text))
        .and_then(|()| std::fs::rename(&tmp, &path));
    if let Err(e) = written {
        say!(
            "warning: cannot write {}: {e}; the pending changes are in the report",
            path.display()
        );
    }
}

/// The pending changes of earlier applies, with Apple's events polled: those that finished are
/// dropped from the store.
async fn still_pending(
    providers: &[AnyProvider],
    sandbox: bool,
) -> Result<Vec<PendingChange>, Failure> {
    let pending = load_pending(sandbox)?;
    if pending.is_empty() {
        return Ok(pending);
    }
    settle(providers, sandbox, pending).await
}

#[cfg(feature = "apple-vpp")]
async fn settle(
    providers: &[AnyProvider],
    sandbox: bool,
    pending: Vec<PendingChange>,
) -> Result<Vec<PendingChange>, Failure> {
    let refs: Vec<&AnyProvider> = providers.iter().collect();
    let before = pending.len();
    let (still, settled) = licensekit::plan::settle_pending(&refs, pending).await;
    if !settled.is_empty() {
        say!(
            "{} of {before} changes pending at the vendor have settled",
            settled.len()
        );
        for (change, outcome) in &settled {
            if let Some(e) = outcome.error() {
                say!(
                    "warning: the pending {} of {} for {} ended {}: {}",
                    change.action,
                    change.product_id,
                    change.holder,
                    outcome.status().as_str(),
                    crate::redact(&e.to_string())
                );
            }
        }
        save_pending(sandbox, &still);
    }
    Ok(still)
}

#[cfg(not(feature = "apple-vpp"))]
async fn settle(
    _providers: &[AnyProvider],
    _sandbox: bool,
    pending: Vec<PendingChange>,
) -> Result<Vec<PendingChange>, Failure> {
    Ok(pending)
}

fn refs(providers: &[AnyProvider]) -> Vec<&dyn LicenseProvider> {
    providers
        .iter()
        .map(|p| p as &dyn LicenseProvider)
        .collect()
}

async fn compute(
    providers: &[AnyProvider],
    desired: &DesiredState,
    report: &ReportOptions,
    sandbox: bool,
    progress: &Progress,
) -> Result<Plan, Failure> {
    let pending = still_pending(providers, sandbox).await?;
    let options = PlanOptions::new(report.clone()).with_pending(pending);
    let plan = Plan::compute_with_progress(&refs(providers), desired, &options, &|kind, n| {
        progress.update(kind, n)
    })
    .await;
    progress.finish();
    let plan = plan.map_err(|e| Failure {
        code: crate::error_code(e.kind()),
        message: e.to_string(),
    })?;
    for w in &plan.warnings {
        say!("warning: {}", crate::redact(w));
    }
    Ok(plan)
}

/// `plan`: the plan on stdout in `--format`, saved as JSON with `--out`, a summary on stderr.
pub async fn plan(
    providers: &[AnyProvider],
    report: ReportOptions,
    sandbox: bool,
    args: PlanArgs,
    progress: &Progress,
) -> Result<u8, Failure> {
    let desired = match read_input(&args.file)? {
        Input::Desired(desired) => desired,
        Input::Plan(_) => {
            return Err(usage(format!(
                "{} is a saved plan; `licensekit plan` reads a desired-state file (apply a saved plan with `licensekit apply`)",
                args.file.display()
            )));
        }
    };
    let out = args
        .out
        .as_deref()
        .map(OutputFile::open)
        .transpose()
        .map_err(usage)?;
    let plan = compute(providers, &desired, &report, sandbox, progress).await?;
    let text = match args.format {
        Format::Table => plan_table(&plan),
        Format::Json => plan.to_json(),
        Format::Csv => plan.to_csv().map_err(|e| Failure {
            code: 1,
            message: e.to_string(),
        })?,
    };
    crate::stdout(&text)?;
    if let Some(out) = out {
        crate::write_output(&plan.to_json(), out)?;
    }
    say!("{}", summary_line(&plan));
    Ok(0)
}

/// `apply`: a saved plan as it is, or a desired state planned and confirmed.
pub async fn apply(
    providers: &[AnyProvider],
    report: ReportOptions,
    sandbox: bool,
    args: ApplyArgs,
    progress: &Progress,
    interrupts: &Interrupts,
) -> Result<u8, Failure> {
    let input = read_input(&args.file)?;
    let file = args.file.display().to_string();
    if matches!(input, Input::Desired(_)) && !args.yes && !std::io::stdin().is_terminal() {
        return Err(usage(format!(
            "apply {file}: a desired state is planned, shown and confirmed before it is applied, and there is no terminal to ask on; pass --yes, or apply a plan saved with `licensekit plan --out`"
        )));
    }
    let output = crate::open_output(&args.out)?;
    let mut plan = match input {
        Input::Plan(plan) => {
            say!(
                "applying the plan of {} ({})",
                plan.created_at
                    .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                summary_line(&plan)
            );
            *plan
        }
        Input::Desired(desired) => {
            let plan = compute(providers, &desired, &report, sandbox, progress).await?;
            if let Some(declined) = show_and_confirm(&plan, args.yes)? {
                return Ok(declined);
            }
            plan
        }
    };
    let hooks = Arc::new(JournalHooks {
        interrupts: interrupts.clone(),
        current: Mutex::new(None),
    });
    let options = ApplyOptions::default()
        .partial(args.partial)
        .with_cancel(interrupts.cancel.clone())
        .with_hooks(hooks);
    let refs = refs(providers);
    let mut first = true;
    let report = loop {
        if plan.is_empty() {
            say!("nothing to change");
            for p in plan.products.iter().flat_map(|p| &p.pending) {
                say!(
                    "pending at {}: {} {} for {} (event {})",
                    p.provider,
                    p.action,
                    p.product_id,
                    p.holder,
                    p.reference
                );
            }
            return Ok(0);
        }
        match plan.apply(&refs, &options).await {
            Ok(report) => break report,
            Err(e @ ApplyError::Drifted(_)) if args.refresh && first => {
                first = false;
                say!("{}", crate::redact(&e.to_string()));
                say!("planning again (--refresh)");
                if !args.yes && !std::io::stdin().is_terminal() {
                    return Err(usage(
                        "the new plan must be confirmed and there is no terminal to ask on; pass --yes",
                    ));
                }
                plan = compute(providers, &plan.desired, &report, sandbox, progress).await?;
                if let Some(declined) = show_and_confirm(&plan, args.yes)? {
                    return Ok(declined);
                }
            }
            Err(e) => return Err(apply_failure(e)),
        }
    };
    remember_pending(sandbox, &report);
    print_apply(&report, args.out.format, output)?;
    Ok(apply_code(&report))
}

/// Shows the plan on stderr and asks; `Some(exit code)` when the answer is no.
fn show_and_confirm(plan: &Plan, yes: bool) -> Result<Option<u8>, Failure> {
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "{}", plan_table(plan));
    let _ = writeln!(err, "{}", summary_line(plan));
    if plan.is_empty() || yes {
        return Ok(None);
    }
    let summary = plan.summary();
    let _ = write!(
        err,
        "Apply {} adds and {} removes? Only `yes` applies: ",
        summary.adds, summary.removes
    );
    let _ = err.flush();
    drop(err);
    let mut answer = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut answer)
        .map_err(|e| usage(format!("cannot read the answer: {e}")))?;
    if answer.trim() == "yes" {
        Ok(None)
    } else {
        say!("not applied: nothing was changed");
        Ok(Some(1))
    }
}

fn apply_failure(e: ApplyError) -> Failure {
    let code = match &e {
        ApplyError::Drifted(_) => 2,
        ApplyError::Failed(e) => crate::error_code(e.kind()),
        _ => 1,
    };
    Failure {
        code,
        message: e.to_string(),
    }
}

/// 130 interrupted; 2 when everything was held back before sending; 1 when an item failed, is
/// unconfirmed, or was held back; else 0.
fn apply_code(report: &ApplyReport) -> u8 {
    let counts = report.counts();
    if report.interrupted {
        crate::INTERRUPTED
    } else if report.steps.is_empty() && !report.held_back.is_empty() {
        2
    } else if counts.failed + counts.unconfirmed > 0 || !report.held_back.is_empty() {
        1
    } else {
        0
    }
}

/// Updates the pending store: what this apply settled leaves it, what it left pending joins.
/// Never fails the apply (its report is still to be printed): a problem is a warning.
fn remember_pending(sandbox: bool, report: &ApplyReport) {
    if pending_path(sandbox).is_none() {
        return;
    }
    let mut store = match load_pending(sandbox) {
        Ok(store) => store,
        Err(f) => {
            say!(
                "warning: {}; the changes left pending are in the report",
                f.message
            );
            return;
        }
    };
    let before = store.clone();
    for step in &report.steps {
        let r = &step.report;
        store.retain(|p| {
            !(p.provider == r.provider
                && p.product_id == r.product
                && r.items
                    .iter()
                    .any(|i| i.holder == p.holder && !matches!(i.outcome, Outcome::Pending { .. })))
        });
    }
    for p in report.pending() {
        if !store.contains(&p) {
            store.push(p);
        }
    }
    if store != before {
        save_pending(sandbox, &store);
    }
}

/// One journal per step, opened and closed by the same functions `assign` and `revoke` use.
struct JournalHooks {
    interrupts: Interrupts,
    current: Mutex<Option<Arc<Journal>>>,
}

impl std::fmt::Debug for JournalHooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JournalHooks").finish_non_exhaustive()
    }
}

impl ApplyHooks for JournalHooks {
    fn before(&self, step: &Step) -> Result<Option<Arc<dyn ChangeObserver>>, String> {
        say!(
            "{} {} at {} for {} holders (policies: {})",
            step.action,
            step.product_id,
            step.provider,
            step.holders.len(),
            step.policies.join(", ")
        );
        let journal = crate::begin_journal(
            step.provider,
            &step.product_id,
            step.action,
            &step.holders,
            &self.interrupts,
        )
        .map_err(|f| f.message)?;
        *self.current.lock().unwrap_or_else(|p| p.into_inner()) = Some(journal.clone());
        Ok(Some(journal))
    }

    fn after(&self, _step: &Step, result: Result<&ChangeReport, &licensekit::Error>) {
        if let Some(journal) = self
            .current
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
        {
            crate::end_journal(&journal, result);
        }
    }
}

/// A summary per step and per held-back group on stderr; the report on stdout in `format`, or
/// in full (JSON, or CSV) to `--output`.
fn print_apply(
    report: &ApplyReport,
    format: Format,
    output: Option<OutputFile>,
) -> Result<(), Failure> {
    for step in &report.steps {
        say!("{}", crate::output::change_summary(&step.report));
    }
    for held in &report.held_back {
        say!(
            "held back: {} {} at {} for {} holders{}: {}",
            held.action,
            held.product_id,
            held.provider,
            held.holders.len(),
            held.policy
                .as_ref()
                .map_or(String::new(), |p| format!(" (policy {p})")),
            held.reason
        );
    }
    let pending = report.pending().len();
    if pending > 0 {
        say!("{pending} changes pending at the vendor; the next plan lists them with their events");
    }
    let full = match format {
        Format::Csv => apply_csv(report),
        _ => report.to_json(),
    };
    match (output, format) {
        (Some(file), _) => crate::write_output(&full, file),
        (None, Format::Table) => crate::stdout(&apply_table(report)),
        (None, _) => crate::stdout(&full),
    }
}

fn table(header: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_preset(UTF8_BORDERS_ONLY)
        .set_header(header.iter().copied());
    t
}

fn apply_table(report: &ApplyReport) -> String {
    let mut out = String::new();
    for step in &report.steps {
        let r = &step.report;
        out.push_str(&format!(
            "{} {} at {} (policies: {})\n",
            r.action,
            r.product,
            r.provider,
            step.policies.join(", ")
        ));
        out.push_str(&crate::output::change_table(r));
        out.push('\n');
    }
    if !report.held_back.is_empty() {
        let mut t = table(&["provider", "product", "action", "policy", "holders", "why"]);
        for h in &report.held_back {
            t.add_row(vec![
                h.provider.to_string(),
                h.product_id.to_string(),
                h.action.to_string(),
                h.policy.clone().unwrap_or_default(),
                h.holders.len().to_string(),
                h.reason.to_string(),
            ]);
        }
        out.push_str(&format!("Held back\n{t}\n"));
    }
    out
}

fn apply_csv(report: &ApplyReport) -> String {
    #[derive(Serialize)]
    struct Row<'a> {
        provider: licensekit::ProviderKind,
        product_id: &'a str,
        action: ChangeAction,
        holder_kind: licensekit::HolderKind,
        holder_id: &'a str,
        status: &'static str,
        reference: Option<&'a str>,
        error_kind: Option<licensekit::ErrorKind>,
        error: Option<String>,
    }
    let mut w = csv::Writer::from_writer(Vec::new());
    for step in &report.steps {
        let r = &step.report;
        for item in &r.items {
            w.serialize(Row {
                provider: r.provider,
                product_id: r.product.as_str(),
                action: r.action,
                holder_kind: item.holder.kind(),
                holder_id: item.holder.as_str(),
                status: item.outcome.status().as_str(),
                reference: match &item.outcome {
                    Outcome::Pending { reference } => Some(reference.as_str()),
                    _ => None,
                },
                error_kind: item.outcome.error().map(|e| e.kind()),
                error: item.outcome.error().map(|e| crate::redact(&e.to_string())),
            })
            .expect("rows serialize to CSV");
        }
    }
    for h in &report.held_back {
        for holder in &h.holders {
            w.serialize(Row {
                provider: h.provider,
                product_id: h.product_id.as_str(),
                action: h.action,
                holder_kind: holder.kind(),
                holder_id: holder.as_str(),
                status: "held_back",
                reference: None,
                error_kind: None,
                error: Some(h.reason.to_string()),
            })
            .expect("rows serialize to CSV");
        }
    }
    String::from_utf8(w.into_inner().expect("in-memory writer")).expect("UTF-8")
}

/// One line: what the plan does, and what it will not.
fn summary_line(plan: &Plan) -> String {
    let s = plan.summary();
    let mut line = format!(
        "plan: {} to add, {} to remove, {} unchanged, across {} products",
        s.adds,
        s.removes,
        s.unchanged,
        plan.products.len()
    );
    if s.pending > 0 {
        line.push_str(&format!("; {} pending at the vendor", s.pending));
    }
    if s.unmatched > 0 {
        line.push_str(&format!("; {} unmatched", s.unmatched));
    }
    for p in plan.products.iter().filter(|p| p.capacity.shortfall() > 0) {
        line.push_str(&format!(
            "; {} ({}) at {} is {} seats short (not applied without --partial)",
            p.product_name,
            p.product_id,
            p.provider,
            p.capacity.shortfall()
        ));
    }
    for p in plan.policies.iter().filter(|p| p.stopped.is_some()) {
        line.push_str(&format!("; policy {} stopped by max_changes", p.name));
    }
    for p in plan.policies.iter().filter(|p| p.unmanaged.is_some()) {
        line.push_str(&format!(
            "; policy {} not managed: the vendor gives {} to every user",
            p.name, p.product_name
        ));
    }
    line
}

/// The plan for people: policies, products with their capacity, every change, pending and
/// unmatched holders.
pub fn plan_table(plan: &Plan) -> String {
    let mut out = String::new();
    let mut policies = table(&[
        "policy",
        "provider",
        "product",
        "mode",
        "add",
        "remove",
        "unchanged",
        "unmatched",
        "note",
    ]);
    for p in &plan.policies {
        let mut note = Vec::new();
        if let Some(s) = p.stopped {
            note.push(format!(
                "STOPPED: {} changes > max_changes {}",
                s.changes, s.max_changes
            ));
        }
        if !p.pending.is_empty() {
            note.push(format!("{} pending", p.pending.len()));
        }
        if let Some(u) = p.unmanaged {
            note.push(format!("NOT MANAGED: {u}"));
        }
        policies.add_row(vec![
            p.name.clone(),
            p.provider.to_string(),
            format!("{} ({})", p.product_name, p.product_id),
            p.mode.as_str().to_owned(),
            p.adds.len().to_string(),
            p.removes.len().to_string(),
            p.unchanged.to_string(),
            p.unmatched.len().to_string(),
            note.join("; "),
        ]);
    }
    out.push_str(&format!("Policies\n{policies}\n\n"));

    let mut products = table(&[
        "provider",
        "product",
        "total",
        "assigned",
        "add",
        "remove",
        "free after",
        "note",
    ]);
    for p in &plan.products {
        let c = &p.capacity;
        let total = match (c.total, c.unlimited) {
            (Some(n), _) => format!("{n} ({})", format!("{:?}", c.total_source).to_lowercase()),
            (None, true) => "unlimited".into(),
            (None, false) => "unknown".into(),
        };
        let note = if !c.not_fitting.is_empty() {
            format!(
                "SHORT by {} seats: {} adds will not fit (marked in Changes)",
                c.shortfall(),
                c.not_fitting.len()
            )
        } else if p.assigned_to_all_users {
            "every user holds it (vendor-assigned): not managed".into()
        } else if !c.checked {
            "capacity unknown: not checked".into()
        } else {
            String::new()
        };
        products.add_row(vec![
            p.provider.to_string(),
            format!("{} ({})", p.product_name, p.product_id),
            total,
            c.assigned.to_string(),
            c.adds.to_string(),
            c.removes.to_string(),
            c.free_after.map_or("-".into(), |n| n.to_string()),
            note,
        ]);
    }
    out.push_str(&format!("Products\n{products}\n"));
    if plan.products.iter().any(|p| p.capacity.shortfall() > 0) {
        out.push_str(&format!(
            "A product short of seats is not changed unless applied with --partial; adds get seats in this order: {}.\n",
            licensekit::plan::SHORTFALL_ORDER
        ));
    }
    out.push('\n');

    let mut changes = table(&["policy", "change", "holder", "email / name", "why"]);
    let mut any = false;
    for p in &plan.policies {
        let fits = |holder: &licensekit::HolderId| {
            !plan.products.iter().any(|x| {
                x.capacity
                    .not_fitting
                    .iter()
                    .any(|n| n.policy == p.name && &n.holder == holder)
            })
        };
        for (what, list) in [("add", &p.adds), ("remove", &p.removes)] {
            for c in list {
                any = true;
                let why = match c.reclaim {
                    Some(r) => format!("reclaim: {}", serde_plain(&r)),
                    None => c.reason.as_str().replace('_', " "),
                };
                changes.add_row(vec![
                    p.name.clone(),
                    if p.stopped.is_some() {
                        format!("{what} (stopped: max_changes)")
                    } else if what == "add" && !fits(&c.holder) {
                        "add (DOES NOT FIT)".to_owned()
                    } else {
                        what.to_owned()
                    },
                    c.holder.to_string(),
                    c.email
                        .clone()
                        .or_else(|| c.display_name.clone())
                        .unwrap_or_default(),
                    why,
                ]);
            }
        }
    }
    if any {
        out.push_str(&format!("Changes\n{changes}\n\n"));
    } else {
        out.push_str("Changes: none\n\n");
    }

    let pending: Vec<&PendingChange> = plan.products.iter().flat_map(|p| &p.pending).collect();
    if !pending.is_empty() {
        let mut t = table(&["provider", "product", "change", "holder", "event"]);
        for p in pending {
            t.add_row(vec![
                p.provider.to_string(),
                p.product_id.to_string(),
                p.action.to_string(),
                p.holder.to_string(),
                p.reference.clone(),
            ]);
        }
        out.push_str(&format!(
            "Pending at the vendor (not planned again)\n{t}\n\n"
        ));
    }
    let unmatched: Vec<(&str, &licensekit::plan::Unmatched)> = plan
        .policies
        .iter()
        .flat_map(|p| p.unmatched.iter().map(move |u| (p.name.as_str(), u)))
        .collect();
    if !unmatched.is_empty() {
        let mut t = table(&["policy", "seen at", "holder", "email / name", "why not"]);
        for (policy, u) in unmatched {
            t.add_row(vec![
                policy.to_owned(),
                u.provider.to_string(),
                u.holder_id.clone().unwrap_or_default(),
                u.email
                    .clone()
                    .or_else(|| u.display_name.clone())
                    .unwrap_or_default(),
                u.reason.as_str().replace('_', " "),
            ]);
        }
        out.push_str(&format!("Unmatched (never guessed)\n{t}\n\n"));
    }
    for w in &plan.warnings {
        out.push_str(&format!("WARNING: {w}\n"));
    }
    out
}

/// The snake_case name serde gives a unit enum value.
fn serde_plain<T: Serialize>(value: &T) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}
