//! `licensekit`: cross-vendor license reports, listings, assign and revoke from the command line.
//!
//! Exit codes: 0 success; 1 partial failure (some items failed, or a provider could not be read;
//! the per-item report says which); 2 usage or configuration error.

mod config;
mod output;
mod sandbox;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};
use futures::TryStreamExt;
use licensekit::report::{CsvSection, Report, ReportOptions};
use licensekit::{
    AnyProvider, AssignmentFilter, HolderId, LicenseProvider, LicenseProviderExt, ProductId,
    ProviderKind,
};

#[derive(Parser)]
#[command(
    name = "licensekit",
    version,
    about = "Software licenses across vendors, through one model"
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
    /// Seats per product, who holds what across vendors, and seats that could be reclaimed
    Report(ReportArgs),
    /// Products (seat pools) with their seat counts
    Products(ListArgs),
    /// Who holds what
    Assignments(AssignmentArgs),
    /// Give a product to holders
    Assign(ChangeArgs),
    /// Take a product away from holders
    Revoke(ChangeArgs),
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
    #[command(flatten)]
    out: OutputArgs,
    /// Which section a CSV holds
    #[arg(long, value_enum, default_value_t = Section::Products)]
    section: Section,
}

#[derive(Args)]
struct ListArgs {
    /// Only this provider (apple-vpp, genesys, salesforce, memory)
    #[arg(long)]
    provider: Option<ProviderKind>,
    #[command(flatten)]
    out: OutputArgs,
}

#[derive(Args)]
struct AssignmentArgs {
    #[arg(long)]
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
    #[arg(long)]
    provider: Option<ProviderKind>,
    /// The product id (Salesforce also takes a namespace)
    #[arg(long)]
    product: String,
    /// Holder ids (user ids; serial numbers with --devices)
    holders: Vec<String>,
    /// A file of holder ids: one per line, or CSV whose first column is the id
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

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime");
    match runtime.block_on(run(cli)) {
        Ok(code) => ExitCode::from(code),
        Err(f) => {
            eprintln!("error: {}", f.message);
            ExitCode::from(f.code)
        }
    }
}

async fn run(cli: Cli) -> Result<u8, Failure> {
    // Keep the sandbox alive for the whole command.
    let (_sandbox, providers, aliases) = if cli.sandbox {
        let sandbox = sandbox::start().await.map_err(|e| Failure {
            code: 1,
            message: format!("the sandbox could not start: {e}"),
        })?;
        if sandbox.providers.is_empty() {
            return Err(usage(
                "this build has no vendor compiled in; enable a provider feature",
            ));
        }
        let providers = sandbox.providers.clone();
        let aliases = sandbox.aliases.clone();
        (Some(sandbox), providers, aliases)
    } else {
        let path = cli.config.clone().unwrap_or_else(config::default_path);
        let config = config::load(&path, &|k| std::env::var(k).ok()).map_err(|e| usage(e.0))?;
        let mut providers = Vec::new();
        for (i, p) in config.providers.into_iter().enumerate() {
            let provider = AnyProvider::from_config(p)
                .map_err(|e| usage(format!("{}: providers[{i}]: {e}", path.display())))?;
            providers.push(provider);
        }
        (None, providers, config.aliases)
    };
    let progress = output::Progress::new(cli.quiet);
    match cli.command {
        Command::Report(args) => {
            let refs: Vec<&dyn LicenseProvider> = providers
                .iter()
                .map(|p| p as &dyn LicenseProvider)
                .collect();
            let options = ReportOptions { aliases };
            let report =
                Report::collect(&refs, &options, &|kind, n| progress.update(kind, n)).await;
            progress.finish();
            let text = match args.out.format {
                Format::Table => output::report_table(&report),
                Format::Json => report.to_json(),
                Format::Csv => report.to_csv(section(args.section)).map_err(|e| Failure {
                    code: 1,
                    message: e.to_string(),
                })?,
            };
            emit(&text, args.out.output.as_deref())?;
            for e in &report.errors {
                eprintln!("error: {}: {}", e.provider, e.error);
            }
            Ok(if report.errors.is_empty() { 0 } else { 1 })
        }
        Command::Products(args) => {
            let mut rows = Vec::new();
            for p in select(&providers, args.provider)? {
                rows.extend(p.products().await.map_err(provider_failure)?);
            }
            let text = match args.out.format {
                Format::Table => output::products_table(&rows),
                Format::Json => serde_json::to_string_pretty(&rows).expect("serializable"),
                Format::Csv => output::products_csv(&rows),
            };
            emit(&text, args.out.output.as_deref())?;
            Ok(0)
        }
        Command::Assignments(args) => {
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
            emit(&text, args.out.output.as_deref())?;
            Ok(0)
        }
        Command::Assign(args) => change(&providers, args, true).await,
        Command::Revoke(args) => change(&providers, args, false).await,
    }
}

fn section(s: Section) -> CsvSection {
    match s {
        Section::Products => CsvSection::Products,
        Section::Holdings => CsvSection::Holdings,
        Section::Reclaim => CsvSection::Reclaim,
        Section::Unmatched => CsvSection::Unmatched,
    }
}

fn provider_failure(e: licensekit::Error) -> Failure {
    Failure {
        code: 1,
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

async fn change(providers: &[AnyProvider], args: ChangeArgs, assign: bool) -> Result<u8, Failure> {
    let chosen = select(providers, args.provider)?;
    let [provider] = chosen.as_slice() else {
        return Err(usage(
            "several providers are configured: choose one with --provider",
        ));
    };
    let mut ids = args.holders.clone();
    if let Some(file) = &args.users_file {
        ids.extend(read_holders_file(file)?);
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
    let result = if assign {
        provider.assign(&product, &holders).await
    } else {
        provider.revoke(&product, &holders).await
    };
    let report = result.map_err(|e| {
        let code = match e.kind() {
            licensekit::ErrorKind::InvalidInput
            | licensekit::ErrorKind::NotFound
            | licensekit::ErrorKind::Unsupported => 2,
            _ => 1,
        };
        Failure {
            code,
            message: format!("nothing was changed: {e}"),
        }
    })?;
    let counts = report.counts();
    println!(
        "{} {} at {}: {} applied, {} already so, {} pending, {} failed (of {})",
        report.action,
        report.product,
        report.provider,
        counts.applied,
        counts.already_in_state,
        counts.pending,
        counts.failed,
        counts.total()
    );
    let full = match args.out.format {
        Format::Csv => output::change_csv(&report),
        _ => serde_json::to_string_pretty(&report).expect("serializable"),
    };
    match (&args.out.output, args.out.format) {
        (Some(path), _) => emit(&full, Some(path))?,
        (None, Format::Table) => print!("{}", output::change_table(&report)),
        (None, _) => println!("{full}"),
    }
    Ok(if counts.failed > 0 { 1 } else { 0 })
}

/// One id per line, or CSV with the id in the first column; blank lines, `#` comments and a
/// header row (`id`, `user_id`, `serial`, …) are skipped.
fn read_holders_file(path: &Path) -> Result<Vec<String>, Failure> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| usage(format!("cannot read {}: {e}", path.display())))?;
    let mut ids = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let first = line
            .split(',')
            .next()
            .unwrap_or("")
            .trim()
            .trim_matches('"');
        if first.is_empty() || first.starts_with('#') {
            continue;
        }
        let header = [
            "id",
            "user_id",
            "userid",
            "holder",
            "holder_id",
            "serial",
            "serial_number",
        ];
        if n == 0 && header.contains(&first.to_ascii_lowercase().as_str()) {
            continue;
        }
        ids.push(first.to_owned());
    }
    Ok(ids)
}

fn emit(text: &str, path: Option<&Path>) -> Result<(), Failure> {
    match path {
        Some(path) => {
            std::fs::write(path, text).map_err(|e| Failure {
                code: 1,
                message: format!("cannot write {}: {e}", path.display()),
            })?;
            eprintln!("wrote {}", path.display());
            Ok(())
        }
        None => {
            let mut out = std::io::stdout().lock();
            out.write_all(text.as_bytes())
                .and_then(|()| {
                    if text.ends_with('\n') {
                        Ok(())
                    } else {
                        out.write_all(b"\n")
                    }
                })
                .map_err(|e| Failure {
                    code: 1,
                    message: format!("cannot write to stdout: {e}"),
                })
        }
    }
}
