//! `licensekit snapshot | history | diff | prune`: license history in SQLite or PostgreSQL
//! (feature `history`, on by default). The store is `licensekit::history`; this file only turns
//! arguments into calls and results into tables, CSV and JSON.
//!
//! The database: `--db PATH|postgres://…`, else `$LICENSEKIT_DB`, else `history.sqlite` in
//! licensekit's home (see `home.rs`).

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, Utc};
use clap::{Args, Subcommand};
use comfy_table::{Table, presets::UTF8_BORDERS_ONLY};
use futures::TryStreamExt;
use licensekit::history::{
    ActivityRow, DB_VAR, Diff, HistoryFilter, HistoryRow, HistoryStore, HistoryStoreExt, Snapshot,
    SnapshotRef, SqlStore,
};
use licensekit::report::{Report, ReportOptions};
use licensekit::{
    AnyProvider, AssignmentFilter, HolderId, LicenseProvider, LicenseProviderExt, ProductId,
    ProviderKind, SeatTotal,
};
use serde::Serialize;

use crate::{Failure, Format, OutputArgs, emit, open_output, usage};

#[derive(Subcommand)]
pub enum HistoryCommand {
    /// Collect the report and store it as a snapshot in the history database
    Snapshot(SnapshotArgs),
    /// Utilization per product over time, from the stored snapshots
    History(HistoryArgs),
    /// What changed between two snapshots (default: the last two): holders gained and lost
    Diff(DiffArgs),
    /// Delete all but the newest N snapshots
    Prune(PruneArgs),
}

#[derive(Args)]
pub struct DbArgs {
    /// The history database: a SQLite file or a postgres:// URL [env: LICENSEKIT_DB]
    /// [default: history.sqlite in licensekit's home]
    #[arg(long, value_name = "PATH|URL")]
    db: Option<String>,
}

#[derive(Args)]
pub struct SnapshotArgs {
    #[command(flatten)]
    db: DbArgs,
    /// The run's id: a second snapshot with the same id writes nothing (for retried schedules)
    /// [default: a new id]
    #[arg(long)]
    run_id: Option<String>,
    /// Then keep only the newest N snapshots
    #[arg(long, value_name = "N")]
    keep: Option<usize>,
    /// With --sandbox: advance the demo org by this seeded step first (0 = as seeded)
    /// [default: the number of sandbox snapshots already stored, so each run changes something]
    #[arg(long, value_name = "N")]
    step: Option<u64>,
}

#[derive(Args)]
pub struct HistoryArgs {
    #[command(flatten)]
    db: DbArgs,
    /// Only this provider
    #[arg(long)]
    provider: Option<ProviderKind>,
    /// Only this product (id or name)
    #[arg(long)]
    product: Option<String>,
    /// Only snapshots taken since this date (YYYY-MM-DD) or moment (RFC 3339)
    #[arg(long, value_parser = parse_since)]
    since: Option<DateTime<Utc>>,
    /// List the snapshots instead of the products' figures
    #[arg(long)]
    snapshots: bool,
    /// Sign-in activity per product and snapshot instead of seat figures: holdings whose
    /// holder last signed in --inactive-days or more days before the snapshot, more recently,
    /// or never reported (only the vendors' own last-login figures are read)
    #[arg(long, conflicts_with = "snapshots")]
    activity: bool,
    /// With --activity: the threshold in days
    #[arg(long, value_name = "DAYS", default_value_t = 90, requires = "activity")]
    inactive_days: u32,
    #[command(flatten)]
    out: OutputArgs,
}

#[derive(Args)]
pub struct DiffArgs {
    #[command(flatten)]
    db: DbArgs,
    /// From: a snapshot id, run id, `latest` or `latest~N` [default: latest~1]
    from: Option<String>,
    /// To [default: latest]
    to: Option<String>,
    #[command(flatten)]
    out: OutputArgs,
}

#[derive(Args)]
pub struct PruneArgs {
    #[command(flatten)]
    db: DbArgs,
    /// How many of the newest snapshots to keep
    #[arg(long, value_name = "N")]
    keep: usize,
}

fn parse_since(s: &str) -> Result<DateTime<Utc>, String> {
    if let Ok(at) = DateTime::parse_from_rfc3339(s) {
        return Ok(at.with_timezone(&Utc));
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .map(|d| d.and_hms_opt(0, 0, 0).expect("midnight exists").and_utc())
        .map_err(|_| format!("`{s}` is neither YYYY-MM-DD nor an RFC 3339 moment"))
}

impl HistoryCommand {
    /// Only `snapshot` reads the vendors; the others read the database alone.
    pub fn needs_providers(&self) -> bool {
        matches!(self, HistoryCommand::Snapshot(_))
    }
}

fn failure(e: licensekit::history::HistoryError) -> Failure {
    use licensekit::history::HistoryError as E;
    let code = match e {
        E::NewerSchema { .. }
        | E::BadLocation { .. }
        | E::NoSuchSnapshot(_)
        | E::NotEnoughSnapshots(_) => 2,
        _ => 1,
    };
    Failure {
        code,
        message: e.to_string(),
    }
}

async fn open(db: &DbArgs) -> Result<SqlStore, Failure> {
    let location = match db
        .db
        .clone()
        .or_else(|| std::env::var(DB_VAR).ok().filter(|v| !v.trim().is_empty()))
    {
        Some(location) => location,
        None => crate::home::licensekit_home()
            .ok_or_else(|| {
                usage(
                    "no home directory to keep the history in: pass --db PATH or set LICENSEKIT_DB",
                )
            })?
            .join("history.sqlite")
            .display()
            .to_string(),
    };
    SqlStore::open(&location).await.map_err(failure)
}

/// `history`, `diff` and `prune`: no vendor is read.
pub async fn offline(cmd: &HistoryCommand) -> Result<u8, Failure> {
    match cmd {
        HistoryCommand::Snapshot(_) => unreachable!("snapshot needs providers"),
        HistoryCommand::History(args) => {
            let output = open_output(&args.out)?;
            let store = open(&args.db).await?;
            let text = if args.snapshots {
                let list = store.snapshots(args.since).await.map_err(failure)?;
                match args.out.format {
                    Format::Json => serde_json::to_string_pretty(&list).expect("serializable"),
                    Format::Csv | Format::Table => {
                        let rows: Vec<SnapshotLine> = list
                            .iter()
                            .map(|s| SnapshotLine {
                                id: s.id,
                                run_id: s.run_id.clone(),
                                taken_at: s.taken_at.clone(),
                                label: s.label.clone().unwrap_or_default(),
                                providers: s
                                    .providers
                                    .iter()
                                    .map(|p| {
                                        let state = if p.status.is_ok() { "ok" } else { "failed" };
                                        format!("{}={state} [{}]", p.provider, p.identity)
                                    })
                                    .collect::<Vec<_>>()
                                    .join(" "),
                            })
                            .collect();
                        if args.out.format == Format::Csv {
                            csv_of(&rows)?
                        } else {
                            let mut t = table(&["id", "run id", "taken at", "label", "providers"]);
                            for r in &rows {
                                t.add_row(vec![
                                    r.id.to_string(),
                                    r.run_id.clone(),
                                    r.taken_at.clone(),
                                    r.label.clone(),
                                    r.providers.clone(),
                                ]);
                            }
                            format!("{t}\n")
                        }
                    }
                }
            } else {
                let filter = HistoryFilter {
                    provider: args.provider,
                    product: args.product.clone(),
                    since: args.since,
                };
                let (json, csv, table, empty) = if args.activity {
                    let rows = store
                        .activity(&filter, args.inactive_days)
                        .await
                        .map_err(failure)?;
                    let json = serde_json::to_string_pretty(&rows).expect("serializable");
                    let (csv, table) = (csv_of(&rows)?, activity_table(&rows, args.inactive_days));
                    (json, csv, table, rows.is_empty())
                } else {
                    let rows = store.history(&filter).await.map_err(failure)?;
                    let json = serde_json::to_string_pretty(&rows).expect("serializable");
                    (json, csv_of(&rows)?, history_table(&rows), rows.is_empty())
                };
                if empty {
                    say!("no snapshot matches (take one with `licensekit snapshot`)");
                }
                match args.out.format {
                    Format::Json => json,
                    Format::Csv => csv,
                    Format::Table => table,
                }
            };
            emit(&text, output)?;
            Ok(0)
        }
        HistoryCommand::Diff(args) => {
            let output = open_output(&args.out)?;
            let store = open(&args.db).await?;
            let from = args.from.as_deref().map(parse_ref);
            let to = args.to.as_deref().map(parse_ref);
            let diff = store
                .diff(from.as_ref(), to.as_ref())
                .await
                .map_err(failure)?;
            let text = match args.out.format {
                Format::Json => serde_json::to_string_pretty(&diff).expect("serializable"),
                Format::Csv => csv_of(&diff_lines(&diff))?,
                Format::Table => diff_table(&diff),
            };
            emit(&text, output)?;
            for p in &diff.not_comparable {
                match diff.identity_changed.iter().find(|c| c.provider == *p) {
                    Some(c) => say!(
                        "warning: {p} read another account in each snapshot ({} then {}): not compared",
                        c.before,
                        c.after
                    ),
                    None => say!(
                        "warning: {p} failed in one of the two snapshots: its changes are unknown"
                    ),
                }
            }
            Ok(0)
        }
        HistoryCommand::Prune(args) => {
            let store = open(&args.db).await?;
            let deleted = store.prune(args.keep).await.map_err(failure)?;
            say!(
                "pruned {} snapshot(s) from {}, kept the newest {}",
                deleted.len(),
                store.location(),
                args.keep
            );
            Ok(0)
        }
    }
}

fn parse_ref(s: &str) -> SnapshotRef {
    match s.parse() {
        Ok(r) => r,
        Err(never) => match never {},
    }
}

/// `snapshot`: collect the report from `providers` and store it.
pub async fn snapshot(
    cmd: HistoryCommand,
    providers: &[AnyProvider],
    aliases: HashMap<String, String>,
    sandbox: bool,
    progress: &crate::output::Progress,
) -> Result<u8, Failure> {
    let HistoryCommand::Snapshot(args) = cmd else {
        unreachable!("only snapshot reads the vendors")
    };
    // The database first: a bad --db fails before any vendor is read.
    let store = open(&args.db).await?;
    if sandbox {
        let step = match args.step {
            Some(step) => step,
            None => store
                .snapshots(None)
                .await
                .map_err(failure)?
                .iter()
                .filter(|s| s.label.as_deref() == Some("sandbox"))
                .count() as u64,
        };
        advance_sandbox(providers, step).await;
    }
    let refs: Vec<&dyn LicenseProvider> = providers
        .iter()
        .map(|p| p as &dyn LicenseProvider)
        .collect();
    // Other fields of the options (added by other features) keep their defaults.
    #[allow(clippy::needless_update)]
    let options = ReportOptions {
        aliases,
        ..ReportOptions::default()
    };
    let report = Report::collect(&refs, &options, &|kind, n| progress.update(kind, n)).await;
    progress.finish();
    let run_id = args.run_id.clone().unwrap_or_else(|| {
        format!(
            "{}-{}",
            report.generated_at.format("%Y%m%dT%H%M%S%.6fZ"),
            std::process::id()
        )
    });
    let identities = identities(providers, sandbox, &report).await;
    let mut snap = Snapshot::from_report(&report, run_id, &identities);
    if sandbox {
        snap = snap.with_label("sandbox");
    }
    let recorded = store.record(&snap).await.map_err(failure)?;
    if recorded.created {
        say!(
            "snapshot {} written to {} ({} products, {} holdings{})",
            recorded.id,
            store.location(),
            snap.products.len(),
            snap.holdings.len(),
            if report.errors.is_empty() {
                String::new()
            } else {
                format!("; {} provider(s) stored as failed", report.errors.len())
            }
        );
    } else {
        say!(
            "run id `{}` is already snapshot {}: nothing written",
            snap.run_id,
            recorded.id
        );
    }
    for e in &report.errors {
        say!("error: {}: {}", e.provider, crate::redact(&e.error));
    }
    if let Some(keep) = args.keep {
        let deleted = store.prune(keep).await.map_err(failure)?;
        if !deleted.is_empty() {
            say!("pruned {} old snapshot(s), kept {keep}", deleted.len());
        }
    }
    emit(&format!("{}\n", recorded.id), None)?;
    Ok(if report.errors.is_empty() { 0 } else { 1 })
}

/// Which account of each vendor was read, so two tenants never mix in history or diff. The
/// sandbox's simulators listen on a new port each run, which some vendors' identities name: its
/// demo org is one fixed account instead.
async fn identities(
    providers: &[AnyProvider],
    sandbox: bool,
    report: &Report,
) -> HashMap<ProviderKind, String> {
    if sandbox {
        return providers
            .iter()
            .map(|p| (p.kind(), format!("{}@sandbox", p.kind())))
            .collect();
    }
    let failed: Vec<ProviderKind> = report.errors.iter().map(|e| e.provider).collect();
    let asked = futures::future::join_all(
        providers
            .iter()
            .map(|p| async move { (p.kind(), p.identity().await) }),
    )
    .await;
    asked
        .into_iter()
        .filter_map(|(kind, identity)| match identity {
            Ok(identity) => Some((kind, identity)),
            Err(e) => {
                // A provider that failed already said why; another one is worth a warning.
                if !failed.contains(&kind) {
                    say!(
                        "warning: {kind}: which account it reads is unknown ({}); stored as `{kind}`",
                        crate::redact(&e.to_string())
                    );
                }
                None
            }
        })
        .collect()
}

/// The HTML report's "utilization over time": the snapshots of the accounts this report read,
/// from `--db`, else `$LICENSEKIT_DB`, else the default database when it exists (none is ever
/// created here). A history that cannot be read is a warning; the report goes on without it.
pub async fn report_trends(
    db: Option<&str>,
    providers: &[AnyProvider],
    sandbox: bool,
    report: &Report,
) -> Vec<licensekit::report::html::TrendPoint> {
    let explicit = db
        .map(str::to_owned)
        .or_else(|| std::env::var(DB_VAR).ok().filter(|v| !v.trim().is_empty()));
    let location = match explicit {
        Some(location) => location,
        None => match crate::home::licensekit_home().map(|h| h.join("history.sqlite")) {
            Some(path) if path.is_file() => path.display().to_string(),
            _ => return Vec::new(),
        },
    };
    let is_url = location.contains("://") || location.starts_with("sqlite:");
    if !is_url && !std::path::Path::new(&location).is_file() {
        say!("warning: no history database at {location}: the report has no utilization over time");
        return Vec::new();
    }
    let identities = identities(providers, sandbox, report).await;
    let read = async {
        let store = SqlStore::open(&location).await?;
        let points = store.trends(&identities).await;
        store.close().await;
        points
    };
    match read.await {
        Ok(points) => points,
        Err(e) => {
            say!(
                "warning: the history could not be read ({}); the report has no utilization over time",
                crate::redact(&e.to_string())
            );
            Vec::new()
        }
    }
}

/// The sandbox's demo org, moved on by a seeded step: in each provider's busiest product, three
/// holders lose it and two directory users without it gain it (step 0 changes nothing). Done
/// through the providers' own assign and revoke, as a real org changes.
async fn advance_sandbox(providers: &[AnyProvider], step: u64) {
    if step == 0 {
        return;
    }
    for provider in providers {
        if let Err(e) = advance_one(provider, step).await {
            say!("warning: sandbox step {step} on {}: {e}", provider.kind());
        }
    }
}

async fn advance_one(provider: &AnyProvider, step: u64) -> licensekit::Result<()> {
    let products = provider.products().await?;
    let Some(product) = products
        .iter()
        .filter(|p| matches!(p.seats.total, SeatTotal::Limited(_)))
        .max_by_key(|p| (p.seats.assigned, p.id.clone()))
    else {
        return Ok(());
    };
    let mut holders: Vec<HolderId> = provider
        .assignments(AssignmentFilter::product(product.id.as_str()))
        .map_ok(|a| a.holder.id)
        .try_collect()
        .await?;
    holders.retain(|h| matches!(h, HolderId::User(_)));
    holders.sort();
    let mut others: Vec<HolderId> = if provider.capabilities().holder_directory {
        provider
            .holders()
            .try_filter(|h| futures::future::ready(h.active != Some(false)))
            .map_ok(|h| h.id)
            .try_collect()
            .await?
    } else {
        Vec::new()
    };
    others.retain(|h| matches!(h, HolderId::User(_)) && !holders.contains(h));
    others.sort();
    let pick = |list: &[HolderId], salt: u64, count: u64| -> Vec<HolderId> {
        if list.is_empty() {
            return Vec::new();
        }
        let mut chosen: Vec<HolderId> = (0..count)
            .map(|j| {
                list[((step * 7919 + salt + j * 104_729) % list.len() as u64) as usize].clone()
            })
            .collect();
        chosen.sort();
        chosen.dedup();
        chosen
    };
    let id = ProductId::new(product.id.as_str());
    let revoked = pick(&holders, 0, 3);
    if !revoked.is_empty() {
        provider.revoke(&id, &revoked).await?;
    }
    let assigned = pick(&others, 31, 2);
    if !assigned.is_empty() {
        provider.assign(&id, &assigned).await?;
    }
    Ok(())
}

#[derive(Serialize)]
struct SnapshotLine {
    id: i64,
    run_id: String,
    taken_at: String,
    label: String,
    providers: String,
}

fn csv_of<T: Serialize>(rows: &[T]) -> Result<String, Failure> {
    let mut w = csv::Writer::from_writer(Vec::new());
    for r in rows {
        w.serialize(r).map_err(|e| Failure {
            code: 1,
            message: e.to_string(),
        })?;
    }
    let bytes = w.into_inner().map_err(|e| Failure {
        code: 1,
        message: e.to_string(),
    })?;
    Ok(String::from_utf8(bytes).expect("csv writes UTF-8"))
}

fn table(header: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_preset(UTF8_BORDERS_ONLY)
        .set_header(header.iter().copied());
    t
}

fn opt(n: Option<u64>) -> String {
    n.map_or_else(|| "-".into(), |n| n.to_string())
}

fn short_time(at: &str) -> String {
    at.get(..19).unwrap_or(at).replace('T', " ")
}

fn activity_table(rows: &[ActivityRow], days: u32) -> String {
    let mut t = table(&[
        "taken at",
        "provider",
        "account",
        "product",
        "holders",
        "signed in recently",
        &format!("no sign-in for {days}+ days"),
        "sign-in unknown",
    ]);
    for r in rows {
        t.add_row(vec![
            short_time(&r.taken_at),
            r.provider.to_string(),
            r.identity.clone(),
            r.name.clone(),
            r.holders.to_string(),
            r.active_recently.to_string(),
            r.inactive.to_string(),
            r.unknown.to_string(),
        ]);
    }
    format!("{t}\n")
}

fn history_table(rows: &[HistoryRow]) -> String {
    let mut t = table(&[
        "taken at", "provider", "account", "product", "total", "assigned", "free", "used", "",
    ]);
    for r in rows {
        t.add_row(vec![
            short_time(&r.taken_at),
            r.provider.to_string(),
            r.identity.clone(),
            r.name.clone(),
            if r.unlimited {
                "unlimited".into()
            } else {
                opt(r.total)
            },
            opt(r.assigned),
            opt(r.free),
            r.utilization_pct
                .map_or_else(|| "-".into(), |u| format!("{u:.0}%")),
            if r.status == "failed" {
                "provider failed: figures unknown".into()
            } else {
                String::new()
            },
        ]);
    }
    format!("{t}\n")
}

/// One change per CSV row.
#[derive(Serialize)]
struct DiffLine<'a> {
    provider: String,
    product_id: &'a str,
    product_name: &'a str,
    change: &'static str,
    holder: Option<&'a str>,
    before: Option<u64>,
    after: Option<u64>,
}

fn diff_lines(diff: &Diff) -> Vec<DiffLine<'_>> {
    let mut lines = Vec::new();
    for p in &diff.products {
        let line = |change, holder, before, after| DiffLine {
            provider: p.provider.to_string(),
            product_id: &p.product_id,
            product_name: &p.name,
            change,
            holder,
            before,
            after,
        };
        match p.status {
            "not_comparable" => lines.push(line("not_comparable", None, None, None)),
            "added" => lines.push(line("product_added", None, None, p.total_after)),
            "removed" => lines.push(line("product_removed", None, p.total_before, None)),
            _ => {}
        }
        if p.total_before != p.total_after && p.status == "changed" {
            lines.push(line("total", None, p.total_before, p.total_after));
        }
        if p.assigned_before != p.assigned_after && p.status == "changed" {
            lines.push(line("assigned", None, p.assigned_before, p.assigned_after));
        }
        for h in &p.holders_added {
            lines.push(line("holder_added", Some(h), None, None));
        }
        for h in &p.holders_removed {
            lines.push(line("holder_removed", Some(h), None, None));
        }
    }
    for (change, people) in [
        ("person_appeared", &diff.people_appeared),
        ("person_disappeared", &diff.people_disappeared),
    ] {
        for person in people {
            lines.push(DiffLine {
                provider: String::new(),
                product_id: "",
                product_name: "",
                change,
                holder: Some(person),
                before: None,
                after: None,
            });
        }
    }
    lines
}

fn diff_table(diff: &Diff) -> String {
    let mut out = format!(
        "From snapshot {} ({}) to snapshot {} ({})\n",
        diff.from.id, diff.from.taken_at, diff.to.id, diff.to.taken_at
    );
    if diff.is_empty() && diff.not_comparable.is_empty() {
        out.push_str("No change.\n");
        return out;
    }
    let mut t = table(&[
        "provider", "product", "change", "total", "assigned", "gained", "lost",
    ]);
    let list = |names: &[String]| {
        let shown: Vec<&str> = names
            .iter()
            .take(5)
            .map(|n| n.strip_prefix("person:").unwrap_or(n))
            .collect();
        let more = names.len().saturating_sub(shown.len());
        let mut text = format!("{} {}", names.len(), shown.join(" "));
        if more > 0 {
            text.push_str(&format!(" … (+{more})"));
        }
        text.trim().to_owned()
    };
    for p in &diff.products {
        t.add_row(vec![
            p.provider.to_string(),
            p.name.clone(),
            p.status.replace('_', " "),
            format!("{} → {}", opt(p.total_before), opt(p.total_after)),
            format!("{} → {}", opt(p.assigned_before), opt(p.assigned_after)),
            list(&p.holders_added),
            list(&p.holders_removed),
        ]);
    }
    out.push_str(&format!("{t}\n"));
    out.push_str(&format!(
        "People who appeared: {}\nPeople who disappeared: {}\n",
        list(&diff.people_appeared),
        list(&diff.people_disappeared)
    ));
    out
}
