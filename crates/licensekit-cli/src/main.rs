//! `licensekit`: cross-vendor license reports, listings, assign and revoke from the command line.
//!
//! Data goes to stdout in exactly the requested format (or to `--output`); everything said to
//! people (summaries, progress, warnings, errors) goes to stderr.
//!
//! Exit codes: 0 success; 1 partial failure (some items failed or are unconfirmed, or a provider
//! could not be read; the per-item report says which); 2 usage or configuration error (also
//! when found late, e.g. credentials refused); 130 interrupted (Ctrl-C); 70 an internal error (a
//! bug: please report it). A panic never reaches the user as Rust's exit 101.

/// Says something to the user on stderr. Never panics: a closed stderr drops the message.
#[macro_export]
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

mod config;
mod contracts;
#[cfg(feature = "history")]
mod history_cmd;
mod home;
mod journal;
mod output;
mod plan_cmd;
#[cfg(feature = "sandbox")]
mod sandbox;
#[cfg(feature = "sandbox")]
mod scale;
#[cfg(feature = "sandbox")]
mod serve;
mod users;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use clap::{Args, Parser, Subcommand, ValueEnum};
use futures::TryStreamExt;
use licensekit::CancellationToken;
use licensekit::report::{CsvSection, Report, ReportOptions};
use licensekit::{
    AnyProvider, AssignmentFilter, ChangeAction, ChangeRequest, ErrorKind, HolderId,
    LicenseProvider, ProductId, ProviderKind,
};

use output::OutputFile;

#[derive(Parser)]
#[command(
    name = "licensekit",
    version,
    about = "Software licenses across vendors, through one model",
    after_help = "Data goes to stdout in the requested format (or to --output); summaries, progress and \
errors go to stderr.\n\
Every assign, revoke and apply step keeps a journal, one JSON line per item as it settles, under \
$LICENSEKIT_HOME/journal (default: the platform's state directory + licensekit/); its path is \
printed at start and `licensekit journal show PATH` prints it as a report. Ctrl-C stops sending, \
finishes the batches in flight and writes the report; a second Ctrl-C quits at once.\n\
Exit codes: 0 success, 1 partial (an item failed or is unconfirmed, a provider could not be \
read), 2 usage or configuration error, 130 interrupted, 70 internal error (a bug)."
)]
struct Cli {
    /// Configuration file [default: ./licensekit.toml]
    #[arg(long, global = true, value_name = "PATH")]
    config: Option<PathBuf>,
    /// Run against the embedded sandbox: every compiled-in vendor's simulator, seeded with a demo
    /// organisation (no network, no credentials)
    #[arg(long, global = true)]
    sandbox: bool,
    /// No progress output on stderr
    #[arg(long, short, global = true)]
    quiet: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Seats per product, who holds what across vendors, seats that could be reclaimed, cost and
    /// renewals (from the configured contracts)
    Report(ReportArgs),
    /// Products (seat pools) with their seat counts
    Products(ListArgs),
    /// Who holds what
    Assignments(AssignmentArgs),
    /// Give a product to holders
    Assign(ChangeArgs),
    /// Take a product away from holders
    Revoke(ChangeArgs),
    /// Change journals: the per-item record every assign and revoke keeps as it goes
    #[command(subcommand)]
    Journal(JournalCommand),
    /// Apple events: poll event ids, or settle the pending items of a saved report or journal
    Events(EventsArgs),
    /// Plan a desired state: what would change, per policy, with a capacity check per product
    Plan(plan_cmd::PlanArgs),
    /// Apply a saved plan, or plan a desired state and apply it once confirmed
    Apply(plan_cmd::ApplyArgs),
    /// The simulators as standalone servers, for your own scripts and SDKs
    #[cfg(feature = "sandbox")]
    #[command(subcommand)]
    Sandbox(serve::SandboxCommand),
    #[cfg(feature = "history")]
    #[command(flatten)]
    History(history_cmd::HistoryCommand),
}

#[derive(Args)]
struct EventsArgs {
    /// The provider whose events these are (only apple-vpp completes changes asynchronously)
    #[arg(long, default_value = "apple-vpp")]
    provider: ProviderKind,
    /// Event ids to poll (the `reference` of pending items)
    event_ids: Vec<String>,
    /// A report written by `assign/revoke --output`, or a journal: its pending items are settled
    /// by polling their events, and the settled report is printed
    #[arg(long, value_name = "FILE", conflicts_with = "event_ids")]
    settle: Option<PathBuf>,
    #[command(flatten)]
    out: OutputArgs,
}

#[derive(Subcommand)]
enum JournalCommand {
    /// Print a journal as the usual change report (items sent but never settled are unconfirmed)
    Show(JournalShowArgs),
}

#[derive(Args)]
struct JournalShowArgs {
    /// The journal file (its path is printed when an assign or revoke starts)
    path: PathBuf,
    #[command(flatten)]
    out: OutputArgs,
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
enum Format {
    Table,
    Json,
    Csv,
}

#[derive(Clone, Copy, ValueEnum)]
enum Section {
    Products,
    Holdings,
    Reclaim,
    Unmatched,
    Renewals,
    Costs,
}

#[derive(Args)]
struct OutputArgs {
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
    /// Write the output (for assign/revoke: the full per-item report) to FILE
    #[arg(long, short, value_name = "FILE")]
    output: Option<PathBuf>,
}

#[derive(Args)]
struct ReportArgs {
    /// Output format (html: one self-contained page, no script, nothing fetched)
    #[arg(long, value_enum, default_value_t = ReportFormat::Table)]
    format: ReportFormat,
    /// Write the report to FILE
    #[arg(long, short, value_name = "FILE")]
    output: Option<PathBuf>,
    /// Which section a CSV holds
    #[arg(long, value_enum, default_value_t = Section::Products)]
    section: Section,
    /// A seat whose holder last signed in this many days ago or longer is a reclaim candidate
    /// (where the vendor reports last sign-in; 0 turns the check off)
    #[arg(long, value_name = "DAYS", default_value_t = 90)]
    inactive_days: u32,
    /// List contract renewals within this many days
    #[arg(long, value_name = "DAYS", default_value_t = 90)]
    renewal_days: u32,
    /// html: chart utilization over time from this history database [env: LICENSEKIT_DB]
    /// [default: history.sqlite in licensekit's home, when it exists]
    #[cfg(feature = "history")]
    #[arg(long, value_name = "PATH|URL")]
    db: Option<String>,
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
enum ReportFormat {
    Table,
    Json,
    Csv,
    Html,
}

/// `--provider`: one of the vendors compiled into this build, as the facade's registry lists
/// them (clap prints them as the possible values).
fn provider_arg() -> impl clap::builder::TypedValueParser<Value = ProviderKind> {
    use clap::builder::TypedValueParser;
    let names = licensekit::registry::vendors()
        .iter()
        .filter(|r| r.is_compiled_in())
        .map(|r| r.name());
    clap::builder::PossibleValuesParser::new(names)
        .map(|name| ProviderKind::new(&name).expect("registered names are valid"))
}

#[derive(Args)]
struct ListArgs {
    /// Only this provider
    #[arg(long, value_parser = provider_arg())]
    provider: Option<ProviderKind>,
    #[command(flatten)]
    out: OutputArgs,
}

#[derive(Args)]
struct AssignmentArgs {
    /// Only this provider
    #[arg(long, value_parser = provider_arg())]
    provider: Option<ProviderKind>,
    /// Only this product
    #[arg(long)]
    product: Option<String>,
    #[command(flatten)]
    out: OutputArgs,
}

#[derive(Args)]
struct ChangeArgs {
    /// The provider (needed when several are configured)
    #[arg(long, value_parser = provider_arg())]
    provider: Option<ProviderKind>,
    /// The product id (Salesforce also takes a namespace)
    #[arg(long)]
    product: String,
    /// Holder ids (user ids; serial numbers with --devices)
    holders: Vec<String>,
    /// A file of holder ids: one per line, or CSV with the ids in the first column or in the
    /// column a header row names (id, user_id, serial, …); `#` starts a comment line
    #[arg(long, value_name = "FILE")]
    users_file: Option<PathBuf>,
    /// The holders are devices (serial numbers)
    #[arg(long)]
    devices: bool,
    #[command(flatten)]
    out: OutputArgs,
}

/// Why the command failed, with its exit code.
struct Failure {
    code: u8,
    message: String,
}

fn usage(message: impl Into<String>) -> Failure {
    Failure {
        code: 2,
        message: message.into(),
    }
}

/// Redacts the values of the config's `*_env` variables (set once the config is loaded).
static REDACT: std::sync::OnceLock<Redactor> = std::sync::OnceLock::new();
type Redactor = Box<dyn Fn(&str) -> String + Send + Sync>;

/// `text` with every `*_env` value of the config replaced by its variable's name: a second line
/// of defence for messages built from vendor answers.
fn redact(text: &str) -> String {
    REDACT.get().map_or_else(|| text.to_owned(), |r| r(text))
}

/// Exit code of an internal error (EX_SOFTWARE).
const BUG: u8 = 70;
/// Exit code after Ctrl-C (128 + SIGINT).
const INTERRUPTED: u8 = 130;

fn main() -> ExitCode {
    std::panic::set_hook(Box::new(|info| {
        let journal = journal::abandon_active("internal error");
        say!(
            "error: internal error in licensekit (a bug; please report it): {}",
            redact(&info.to_string())
        );
        if let Some(path) = journal {
            say!(
                "every item settled so far is in the journal {}",
                path.display()
            );
        }
        std::process::exit(i32::from(BUG));
    }));
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            say!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let code = match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(f) => {
            say!("error: {}", redact(&f.message));
            f.code
        }
    };
    // Do not wait for in-flight work of a cancelled run or the signal watcher.
    runtime.shutdown_background();
    ExitCode::from(code)
}

/// Ctrl-C handling. Before a change starts, or for read-only commands, the first Ctrl-C quits at
/// once (nothing to protect). During a change it cancels through the engine: no new batches go
/// out, those in flight finish, the report is written, exit 130. A second Ctrl-C quits at once;
/// the journal already holds every settled item.
#[derive(Clone)]
struct Interrupts {
    cancel: CancellationToken,
    changing: Arc<AtomicBool>,
}

impl Interrupts {
    fn watch() -> Interrupts {
        let interrupts = Interrupts {
            cancel: CancellationToken::new(),
            changing: Arc::new(AtomicBool::new(false)),
        };
        let mut signals = match Signals::new() {
            Ok(signals) => signals,
            Err(e) => {
                say!("warning: cannot watch for Ctrl-C: {e}");
                return interrupts;
            }
        };
        let watcher = interrupts.clone();
        tokio::spawn(async move {
            if !signals.next().await {
                return;
            }
            if !watcher.changing.load(Ordering::SeqCst) {
                say!("interrupted");
                std::process::exit(i32::from(INTERRUPTED));
            }
            say!(
                "interrupted: sending nothing more; finishing the batches in flight, then writing the report (Ctrl-C again to quit at once)"
            );
            watcher.cancel.cancel();
            if !signals.next().await {
                return;
            }
            match journal::abandon_active("interrupted twice") {
                Some(path) => say!(
                    "interrupted again: quitting now; every item settled so far is in the journal {}",
                    path.display()
                ),
                None => say!("interrupted again: quitting now"),
            }
            std::process::exit(i32::from(INTERRUPTED));
        });
        interrupts
    }
}

/// SIGINT as a stream (registered once, so a second signal is never missed).
#[cfg(unix)]
struct Signals(tokio::signal::unix::Signal);

#[cfg(unix)]
impl Signals {
    fn new() -> std::io::Result<Signals> {
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt()).map(Signals)
    }
    async fn next(&mut self) -> bool {
        self.0.recv().await.is_some()
    }
}

#[cfg(not(unix))]
struct Signals;

#[cfg(not(unix))]
impl Signals {
    fn new() -> std::io::Result<Signals> {
        Ok(Signals)
    }
    async fn next(&mut self) -> bool {
        tokio::signal::ctrl_c().await.is_ok()
    }
}

/// Opens `--output` up front (exit 2 if it cannot be written).
fn open_output(args: &OutputArgs) -> Result<Option<OutputFile>, Failure> {
    args.output
        .as_deref()
        .map(OutputFile::open)
        .transpose()
        .map_err(usage)
}

async fn run(cli: Cli) -> Result<u8, Failure> {
    // The server stops on Ctrl-C itself (before the change-protecting watcher exists).
    #[cfg(feature = "sandbox")]
    if let Command::Sandbox(command) = cli.command {
        return serve::run(command).await.map_err(|e| Failure {
            code: e.code,
            message: e.message,
        });
    }
    let interrupts = Interrupts::watch();
    if let Command::Journal(JournalCommand::Show(args)) = &cli.command {
        let output = open_output(&args.out)?;
        return show_journal(args, output);
    }
    #[cfg(not(feature = "sandbox"))]
    if cli.sandbox {
        return Err(usage(
            "this build has no sandbox; rebuild with the cargo feature `sandbox`",
        ));
    }
    #[cfg(feature = "history")]
    if let Command::History(cmd) = &cli.command {
        if !cmd.needs_providers() {
            return history_cmd::offline(cmd).await;
        }
    }
    // Keep the sandbox alive for the whole command.
    #[cfg(feature = "sandbox")]
    let _sandbox = if cli.sandbox {
        let sandbox = sandbox::start().await.map_err(|e| Failure {
            code: 1,
            message: format!("the sandbox could not start: {e}"),
        })?;
        if sandbox.providers.is_empty() {
            return Err(usage(
                "this build has no vendor compiled in; enable a provider feature",
            ));
        }
        Some(sandbox)
    } else {
        None
    };
    #[cfg(feature = "sandbox")]
    let from_sandbox = _sandbox
        .as_ref()
        .map(|s| (s.providers.clone(), s.aliases.clone(), s.contracts.clone()));
    #[cfg(not(feature = "sandbox"))]
    let from_sandbox: Option<(
        Vec<AnyProvider>,
        std::collections::HashMap<String, String>,
        Vec<licensekit::Contract>,
    )> = None;
    let (providers, aliases, contracts) = if let Some(sandboxed) = from_sandbox {
        sandboxed
    } else {
        let path = cli.config.clone().unwrap_or_else(config::default_path);
        let mut config = config::load(&path, &config::process_env()).map_err(|e| usage(e.0))?;
        let _ = REDACT.set(Box::new(config.redactor()));
        let mut providers = Vec::new();
        for (i, p) in std::mem::take(&mut config.providers)
            .into_iter()
            .enumerate()
        {
            let provider = AnyProvider::from_config(p).map_err(|e| {
                usage(format!(
                    "{}: providers[{i}]: {}",
                    path.display(),
                    config.redact(&e.to_string())
                ))
            })?;
            providers.push(provider);
        }
        for warning in &config.contracts.warnings {
            say!("warning: {warning}");
        }
        (providers, config.aliases, config.contracts.contracts)
    };
    let progress = output::Progress::new(cli.quiet);
    match cli.command {
        Command::Report(args) => {
            let output = args
                .output
                .as_deref()
                .map(OutputFile::open)
                .transpose()
                .map_err(usage)?;
            let refs: Vec<&dyn LicenseProvider> = providers
                .iter()
                .map(|p| p as &dyn LicenseProvider)
                .collect();
            let options = ReportOptions {
                aliases,
                contracts,
                inactive_days: args.inactive_days,
                renewal_days: args.renewal_days,
                ..ReportOptions::default()
            };
            let report =
                Report::collect(&refs, &options, &|kind, n| progress.update(kind, n)).await;
            progress.finish();
            // JSON and CSV are written as they are produced: a large org's is never one string.
            match args.format {
                ReportFormat::Table => emit(&output::report_table(&report), output)?,
                ReportFormat::Json => emit_with(output, |w| report.write_json(w))?,
                ReportFormat::Csv => emit_with(output, |w| {
                    report
                        .write_csv(section(args.section), w)
                        .map_err(output::csv_io_error)
                })?,
                ReportFormat::Html => {
                    #[cfg(feature = "history")]
                    let trends = history_cmd::report_trends(
                        args.db.as_deref(),
                        &providers,
                        cli.sandbox,
                        &report,
                    )
                    .await;
                    #[cfg(not(feature = "history"))]
                    let trends = Vec::new();
                    let html = licensekit::report::html::render_with_history(&report, &trends);
                    emit(&html, output)?
                }
            }
            for w in &report.warnings {
                say!("warning: {w}");
            }
            for e in &report.errors {
                say!("error: {}: {}", e.provider, redact(&e.error));
            }
            // A provider that could not be read is a partial report (1); a configuration or
            // credential problem found on first use is the caller's to fix (2).
            Ok(report
                .errors
                .iter()
                .map(|e| error_code(e.kind))
                .max()
                .unwrap_or(0))
        }
        Command::Products(args) => {
            let output = open_output(&args.out)?;
            let mut rows = Vec::new();
            for p in select(&providers, args.provider)? {
                rows.extend(p.products().await.map_err(provider_failure)?);
            }
            let text = match args.out.format {
                Format::Table => output::products_table(&rows),
                Format::Json => serde_json::to_string_pretty(&rows).expect("serializable"),
                Format::Csv => output::products_csv(&rows),
            };
            emit(&text, output)?;
            Ok(0)
        }
        Command::Assignments(args) => {
            let output = open_output(&args.out)?;
            let mut rows = Vec::new();
            for p in select(&providers, args.provider)? {
                let filter = match &args.product {
                    Some(product) => AssignmentFilter::product(product.as_str()),
                    None => AssignmentFilter::all(),
                };
                let mut stream = p.assignments(filter);
                while let Some(a) = stream.try_next().await.map_err(provider_failure)? {
                    rows.push(a);
                    if rows.len() % 500 == 0 {
                        progress.update(p.kind(), rows.len() as u64);
                    }
                }
            }
            progress.finish();
            let text = match args.out.format {
                Format::Table => output::assignments_table(&rows),
                Format::Json => serde_json::to_string_pretty(&rows).expect("serializable"),
                Format::Csv => output::assignments_csv(&rows),
            };
            emit(&text, output)?;
            Ok(0)
        }
        Command::Assign(args) => change(&providers, args, ChangeAction::Assign, &interrupts).await,
        Command::Revoke(args) => change(&providers, args, ChangeAction::Revoke, &interrupts).await,
        Command::Journal(_) => unreachable!("handled before the providers are built"),
        Command::Events(args) => events(&providers, args).await,
        Command::Plan(args) => {
            // The aliases and contracts (configured seats) the report would use.
            let report = ReportOptions {
                aliases,
                contracts,
                ..ReportOptions::default()
            };
            plan_cmd::plan(&providers, report, cli.sandbox, args, &progress).await
        }
        Command::Apply(args) => {
            let report = ReportOptions {
                aliases,
                contracts,
                ..ReportOptions::default()
            };
            plan_cmd::apply(
                &providers,
                report,
                cli.sandbox,
                args,
                &progress,
                &interrupts,
            )
            .await
        }
        #[cfg(feature = "sandbox")]
        Command::Sandbox(_) => unreachable!("handled before the providers are built"),
        #[cfg(feature = "history")]
        Command::History(cmd) => {
            history_cmd::snapshot(cmd, &providers, aliases, cli.sandbox, &progress).await
        }
    }
}

/// `events`: polls Apple events, or settles a saved report's pending items.
async fn events(providers: &[AnyProvider], args: EventsArgs) -> Result<u8, Failure> {
    let output = open_output(&args.out)?;
    // Read the saved report before anything is asked of the vendor.
    let saved = match &args.settle {
        Some(path) => Some(saved_report(path)?),
        None if args.event_ids.is_empty() => {
            return Err(usage(
                "pass event ids, or --settle FILE with a saved report",
            ));
        }
        None => None,
    };
    let chosen = select(providers, Some(args.provider))?;
    let Some(provider) = chosen.first() else {
        return Err(usage(format!(
            "provider {} is not configured",
            args.provider
        )));
    };
    #[cfg(feature = "apple-vpp")]
    if let AnyProvider::AppleVpp(apple) = provider {
        if let Some(report) = saved {
            let before = report.counts().pending;
            let report = apple
                .settle_pending(report)
                .await
                .map_err(provider_failure)?;
            say!(
                "{} of {before} pending items settled",
                before - report.counts().pending
            );
            print_change(&report, args.out.format, output)?;
            return Ok(change_code(&report));
        }
        let mut rows = Vec::new();
        let mut code = 0;
        for id in &args.event_ids {
            match apple.event_status(id).await {
                Ok(status) => {
                    if status.event_status == "FAILED" {
                        code = 1;
                    }
                    rows.push(serde_json::json!({
                        "event_id": id,
                        "status": status.event_status,
                        "type": status.event_type,
                        "completed": status.num_completed,
                        "requested": status.num_requested,
                        "failures": status.failures.iter().map(|f| serde_json::json!({
                            "error_number": f.error_number,
                            "error_message": f.error_message,
                            "client_user_ids": f.error_info.as_ref().map(|i| i.client_user_ids.clone()).unwrap_or_default(),
                            "serial_numbers": f.error_info.as_ref().map(|i| i.serial_numbers.clone()).unwrap_or_default(),
                        })).collect::<Vec<_>>(),
                    }));
                }
                Err(e) => {
                    code = code.max(error_code(e.kind()).max(1));
                    say!("error: event {id}: {}", redact(&e.to_string()));
                }
            }
        }
        let text = match args.out.format {
            Format::Json => serde_json::to_string_pretty(&rows).expect("serializable"),
            Format::Table | Format::Csv => {
                let sep = if args.out.format == Format::Csv {
                    ","
                } else {
                    "  "
                };
                let mut text =
                    ["event_id", "status", "completed", "requested", "failures"].join(sep);
                text.push('\n');
                for r in &rows {
                    let cell = |k: &str| match &r[k] {
                        serde_json::Value::Null => String::new(),
                        serde_json::Value::String(s) => s.clone(),
                        v => v.to_string(),
                    };
                    let failures = r["failures"].as_array().map_or(0, Vec::len);
                    text.push_str(
                        &[
                            cell("event_id"),
                            cell("status"),
                            cell("completed"),
                            cell("requested"),
                            failures.to_string(),
                        ]
                        .join(sep),
                    );
                    text.push('\n');
                }
                text
            }
        };
        emit(&text, output)?;
        return Ok(code);
    }
    let _ = (provider, saved, output);
    Err(usage(format!(
        "{} completes changes synchronously: it has no events to poll",
        args.provider
    )))
}

/// A change report saved by `--output` (JSON), or a journal.
fn saved_report(path: &std::path::Path) -> Result<licensekit::ChangeReport, Failure> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| usage(format!("cannot read {}: {e}", path.display())))?;
    if let Ok(report) = serde_json::from_str::<licensekit::ChangeReport>(&text) {
        return Ok(report);
    }
    let recorded = journal::parse(&text, &path.display().to_string()).map_err(usage)?;
    Ok(recorded.report)
}

fn section(s: Section) -> CsvSection {
    match s {
        Section::Products => CsvSection::Products,
        Section::Holdings => CsvSection::Holdings,
        Section::Reclaim => CsvSection::Reclaim,
        Section::Unmatched => CsvSection::Unmatched,
        Section::Renewals => CsvSection::Renewals,
        Section::Costs => CsvSection::Costs,
    }
}

/// The exit code of a provider error: usage and configuration problems (an id the vendor cannot
/// take; found when the provider was first used: bad settings, credentials refused, a vendor not
/// compiled in) are 2, the rest 1.
fn error_code(kind: ErrorKind) -> u8 {
    match kind {
        ErrorKind::InvalidInput
        | ErrorKind::Config
        | ErrorKind::Unauthenticated
        | ErrorKind::PermissionDenied
        | ErrorKind::FeatureNotEnabled => 2,
        _ => 1,
    }
}

fn provider_failure(e: licensekit::Error) -> Failure {
    Failure {
        code: error_code(e.kind()),
        message: e.to_string(),
    }
}

fn select(
    providers: &[AnyProvider],
    kind: Option<ProviderKind>,
) -> Result<Vec<&AnyProvider>, Failure> {
    let chosen: Vec<&AnyProvider> = providers
        .iter()
        .filter(|p| kind.is_none_or(|k| p.kind() == k))
        .collect();
    if chosen.is_empty() {
        let configured: Vec<String> = providers.iter().map(|p| p.kind().to_string()).collect();
        return Err(usage(format!(
            "provider {} is not configured (configured: {})",
            kind.map_or("?".into(), |k| k.to_string()),
            configured.join(", ")
        )));
    }
    Ok(chosen)
}

/// Assign or revoke. Everything is validated first (holders, the users file, `--output`, the
/// journal): a problem with any of them is exit 2 before anything is sent.
async fn change(
    providers: &[AnyProvider],
    args: ChangeArgs,
    action: ChangeAction,
    interrupts: &Interrupts,
) -> Result<u8, Failure> {
    let chosen = select(providers, args.provider)?;
    let [provider] = chosen.as_slice() else {
        return Err(usage(
            "several providers are configured: choose one with --provider",
        ));
    };
    let mut ids = args.holders.clone();
    if let Some(file) = &args.users_file {
        ids.extend(users::read(file).map_err(|e| usage(e.0))?);
    }
    if ids.is_empty() {
        return Err(usage(
            "no holders given: pass ids as arguments or --users-file FILE",
        ));
    }
    let holders: Vec<HolderId> = ids
        .into_iter()
        .map(|id| {
            if args.devices {
                HolderId::device(id)
            } else {
                HolderId::user(id)
            }
        })
        .collect();
    let product = ProductId::new(args.product.clone());
    let output = open_output(&args.out)?;
    let journal = begin_journal(provider.kind(), &product, action, &holders, interrupts)?;
    let request = ChangeRequest::new(action, product, holders)
        .with_observer(journal.clone())
        .with_cancel(interrupts.cancel.clone());
    let result = provider.change(request).await;
    end_journal(&journal, result.as_ref());
    let report = match result {
        Ok(report) => report,
        Err(e) => {
            let code = match e.kind() {
                ErrorKind::NotFound | ErrorKind::Unsupported => 2,
                kind => error_code(kind),
            };
            return Err(Failure {
                code,
                message: format!("nothing was changed: {e}"),
            });
        }
    };
    print_change(&report, args.out.format, output)?;
    Ok(if report.interrupted {
        INTERRUPTED
    } else {
        change_code(&report)
    })
}

/// Opens the journal of one change (printing its path) and makes it the active one, for Ctrl-C
/// and the panic hook; from here a Ctrl-C cancels through the engine. Fails (exit 2) before
/// anything is sent. Every assign, revoke and apply step goes through here and [`end_journal`].
fn begin_journal(
    provider: ProviderKind,
    product: &ProductId,
    action: ChangeAction,
    holders: &[HolderId],
    interrupts: &Interrupts,
) -> Result<Arc<journal::Journal>, Failure> {
    let home = home::licensekit_home().ok_or_else(|| {
        usage(format!(
            "cannot find a home directory for the change journal; set {}",
            home::HOME_VAR
        ))
    })?;
    let journal_dir = home.join("journal");
    let journal = journal::Journal::create(&journal_dir, provider, product, action, holders)
        .map(Arc::new)
        .map_err(|e| {
            usage(format!(
                "cannot create the change journal in {}: {e} (set {} to a writable directory)",
                journal_dir.display(),
                home::HOME_VAR
            ))
        })?;
    say!("journal: {}", journal.path().display());
    journal::set_active(Some(journal.clone()));
    interrupts.changing.store(true, Ordering::SeqCst);
    // Debug builds only: lets the tests prove what a bug looks like to the user.
    if cfg!(debug_assertions) && std::env::var_os("LICENSEKIT_DEBUG_PANIC").is_some() {
        panic!("LICENSEKIT_DEBUG_PANIC is set");
    }
    Ok(journal)
}

/// Records how a change begun with [`begin_journal`] ended, and clears the active journal.
fn end_journal(
    journal: &journal::Journal,
    result: Result<&licensekit::ChangeReport, &licensekit::Error>,
) {
    match result {
        Ok(report) => journal.finished(report.interrupted, report.counts()),
        Err(e) => journal.failed(&e.to_string()),
    }
    journal::set_active(None);
}

/// 1 when any item failed or is unconfirmed, else 0.
fn change_code(report: &licensekit::ChangeReport) -> u8 {
    let counts = report.counts();
    u8::from(counts.failed + counts.unconfirmed > 0)
}

/// The summary on stderr; the per-item report in `format` on stdout or in `--output` (where a
/// table is written as JSON, the full report).
fn print_change(
    report: &licensekit::ChangeReport,
    format: Format,
    output: Option<OutputFile>,
) -> Result<(), Failure> {
    say!("{}", output::change_summary(report));
    let full = match format {
        Format::Csv => output::change_csv(report),
        _ => serde_json::to_string_pretty(report).expect("serializable"),
    };
    match (output, format) {
        (Some(file), _) => write_output(&full, file),
        (None, Format::Table) => stdout(&output::change_table(report)),
        (None, _) => stdout(&full),
    }
}

/// `journal show`: the report of a recorded run; exit 1 if any item failed or is unconfirmed.
fn show_journal(args: &JournalShowArgs, output: Option<OutputFile>) -> Result<u8, Failure> {
    let recorded = journal::read(&args.path).map_err(usage)?;
    for warning in &recorded.warnings {
        say!("warning: {warning}");
    }
    if let Some(error) = &recorded.error {
        return Err(Failure {
            code: 1,
            message: format!("the recorded run changed nothing: {error}"),
        });
    }
    print_change(&recorded.report, args.out.format, output)?;
    Ok(change_code(&recorded.report))
}

fn stdout(text: &str) -> Result<(), Failure> {
    emit(text, None)
}

fn write_output(text: &str, file: OutputFile) -> Result<(), Failure> {
    emit(text, Some(file))
}

fn emit(text: &str, output: Option<OutputFile>) -> Result<(), Failure> {
    emit_with(output, |w| w.write_all(text.as_bytes()))
}

/// Data to `--output` or stdout, written piece by piece by `write`.
fn emit_with(
    output: Option<OutputFile>,
    write: impl FnOnce(&mut dyn std::io::Write) -> std::io::Result<()>,
) -> Result<(), Failure> {
    match output {
        Some(file) => {
            let path = file.path().to_owned();
            file.write_with(write).map_err(|e| Failure {
                code: 1,
                message: format!("cannot write {}: {e}", path.display()),
            })?;
            say!("wrote {}", path.display());
            Ok(())
        }
        None => output::data_with(write).map_err(|e| Failure {
            code: 1,
            message: format!("cannot write to stdout: {e}"),
        }),
    }
}
