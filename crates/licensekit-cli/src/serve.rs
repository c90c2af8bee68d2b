//! `licensekit sandbox serve`: the demo org's simulators as standalone servers, one port per
//! vendor, for your own scripts, the official SDKs and `licensekit` itself in another shell.
//!
//! It prints each base URL, the credentials the simulators accept and a ready-to-use
//! `licensekit.toml` (also written to `--write-config`), then serves until Ctrl-C. A control
//! server answers `GET /calls` (requests per route, per vendor), `GET /state` (seats and holders
//! per product) and `POST /reset` (back to the seeded org, call counts cleared; issued tokens stay
//! valid). `--tls` serves HTTPS with a CA and certificate generated at start; the CA's PEM file
//! is written and its path printed, for clients to trust.

use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::routing::{get, post};
use clap::{Args, Subcommand};
use licensekit_sim::faults::{Fault, Faults};
use licensekit_sim::{Listen, Running};
use serde_json::{Map, Value, json};

use crate::sandbox::{self, Listens, Sims};

#[derive(Subcommand)]
pub enum SandboxCommand {
    /// Serve the simulators of every compiled-in vendor, seeded with the demo org, each on its
    /// own port, until Ctrl-C
    Serve(ServeArgs),
}

#[derive(Args, Debug, Clone)]
pub struct ServeArgs {
    /// Address to listen on
    #[arg(long, default_value = "127.0.0.1")]
    bind: IpAddr,
    /// Port of the Apple VPP simulator (0: any free port)
    #[arg(long, default_value_t = 0)]
    apple_port: u16,
    /// Port of the Genesys Cloud simulator (0: any free port)
    #[arg(long, default_value_t = 0)]
    genesys_port: u16,
    /// Port of the Salesforce simulator (0: any free port)
    #[arg(long, default_value_t = 0)]
    salesforce_port: u16,
    /// Port of the control server (/calls, /state, /reset; 0: any free port)
    #[arg(long, default_value_t = 0)]
    control_port: u16,
    /// Serve HTTPS with a certificate (for localhost, 127.0.0.1, ::1) signed by a CA generated
    /// at start; the CA's PEM file is written to --ca-file
    #[arg(long)]
    tls: bool,
    /// Where to write the CA certificate with --tls [default: licensekit-sandbox-ca.pem in the
    /// system's temporary directory]
    #[arg(long, value_name = "PATH", requires = "tls")]
    ca_file: Option<PathBuf>,
    /// Also write the printed licensekit.toml to PATH (written once every server is up, so a
    /// script can wait for it)
    #[arg(long, value_name = "PATH")]
    write_config: Option<PathBuf>,
    /// Also write the base URLs and credentials as JSON to PATH, for scripts (written, like
    /// --write-config, once every server is up)
    #[arg(long, value_name = "PATH")]
    write_info: Option<PathBuf>,
    /// Serve this org instead of the demo org (TOML, or JSON when the name ends in .json; a vendor
    /// the file leaves out serves the demo org's part): see the README
    #[arg(long, value_name = "PATH", conflicts_with = "scale")]
    seed_file: Option<PathBuf>,
    /// Serve an org of N people instead of the demo org, each in every vendor with one license
    /// there (cloudCX2, acme, the app 361309726), for benchmarks: the bench's `list` and
    /// `report` scenarios run against it
    #[arg(long, value_name = "N")]
    scale: Option<usize>,
    /// Added to every API request, in milliseconds
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
    /// At most this many API requests per minute per vendor; the excess is answered 429 with the
    /// vendor's Retry-After
    #[arg(long, value_name = "N")]
    rate_limit: Option<usize>,
    /// Fraction of API requests (0.0–1.0) that fail with one of --fault-kinds
    #[arg(long, default_value_t = 0.0)]
    fault_rate: f64,
    /// Faults to inject: throttle, throttle-date, unavailable, server-error, drop, lost,
    /// token-expired, truncated, html-200, html-502
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "throttle,unavailable,server-error"
    )]
    fault_kinds: Vec<String>,
    /// Seed of the fault rolls (the same seed and requests give the same faults)
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

fn fault_kind(name: &str) -> Result<Fault, String> {
    Ok(match name.trim() {
        "throttle" => Fault::ThrottleSeconds,
        "throttle-date" => Fault::ThrottleHttpDate,
        "unavailable" => Fault::Unavailable,
        "server-error" => Fault::ServerError,
        "drop" => Fault::DropConnection,
        "lost" => Fault::LostResponse,
        "token-expired" => Fault::TokenExpired,
        "truncated" => Fault::TruncatedJson,
        "html-200" => Fault::HtmlPage200,
        "html-502" => Fault::HtmlPage502,
        other => return Err(format!("--fault-kinds: unknown fault `{other}`")),
    })
}

/// What a failed start says and its exit code.
pub struct ServeError {
    pub code: u8,
    pub message: String,
}

fn usage(message: String) -> ServeError {
    ServeError { code: 2, message }
}

fn io(what: &str) -> impl Fn(std::io::Error) -> ServeError + '_ {
    move |e| ServeError {
        code: 1,
        message: format!("{what}: {e}"),
    }
}

pub async fn run(command: SandboxCommand) -> Result<u8, ServeError> {
    match command {
        SandboxCommand::Serve(args) => serve(args).await,
    }
}

async fn serve(args: ServeArgs) -> Result<u8, ServeError> {
    if !(0.0..=1.0).contains(&args.fault_rate) {
        return Err(usage("--fault-rate must be between 0.0 and 1.0".into()));
    }
    let kinds = args
        .fault_kinds
        .iter()
        .filter(|k| !k.trim().is_empty())
        .map(|k| fault_kind(k))
        .collect::<Result<Vec<_>, _>>()
        .map_err(usage)?;
    let seed_file = args
        .seed_file
        .as_deref()
        .map(sandbox::seed_file::SeedFile::load)
        .transpose()
        .map_err(usage)?;
    #[allow(unused_mut)]
    let mut base = Listen::http(SocketAddr::new(args.bind, 0));
    let mut ca_path = None;
    if args.tls {
        let tls = licensekit_sim::tls::Tls::generate(&[args.bind.to_string()])
            .map_err(io("cannot generate the TLS certificate"))?;
        let path = args
            .ca_file
            .clone()
            .unwrap_or_else(|| std::env::temp_dir().join("licensekit-sandbox-ca.pem"));
        std::fs::write(&path, &tls.ca_pem)
            .map_err(io(&format!("cannot write {}", path.display())))?;
        ca_path = Some(std::path::absolute(&path).unwrap_or(path));
        base.tls = Some(tls);
    }
    let on = |port: u16| Listen {
        addr: SocketAddr::new(args.bind, port),
        ..base.clone()
    };
    let listens = Listens {
        apple: on(args.apple_port),
        genesys: on(args.genesys_port),
        salesforce: on(args.salesforce_port),
    };
    let sims = match args.scale {
        Some(n) => crate::scale::start_sims(&listens, n).await,
        None => sandbox::start_sims(&listens, seed_file.as_ref()).await,
    };
    let sims = Arc::new(sims.map_err(io("the simulators could not start"))?);
    for_each_network(&sims, |network| {
        network.set_latency(Duration::from_millis(args.latency_ms));
        network.set_rate_limit(args.rate_limit.map(|n| (n, Duration::from_secs(60))));
    });
    if args.fault_rate > 0.0 && !kinds.is_empty() {
        let faults = Faults::new(args.seed, args.fault_rate, &kinds);
        set_faults(&sims, &faults);
    }
    let control = Running::serve_on(control_router(sims.clone()), &on(args.control_port))
        .await
        .map_err(io("the control server could not start"))?;

    let mut toml = licensekit_toml(&sims, ca_path.as_deref(), args.rate_limit);
    let today = chrono::Utc::now().date_naive();
    if let Some(n) = args.scale {
        toml.push_str(&contracts_toml(&crate::scale::contracts(n, today)));
    } else if seed_file.is_none() {
        // The demo org's contracts, so a report through this file prices seats as
        // `report --sandbox` does.
        toml.push_str(&contracts_toml(&sandbox::contracts(today)));
    }
    let mut text = String::new();
    let _ = writeln!(
        text,
        "licensekit sandbox: serving {} until Ctrl-C\n",
        match (args.scale, &args.seed_file) {
            (Some(n), _) => format!("an org of {n} people"),
            (None, Some(path)) => format!("the org of {}", path.display()),
            (None, None) => "the demo org".to_owned(),
        }
    );
    describe(&mut text, &sims);
    let _ = writeln!(
        text,
        "control: {0}  (GET {0}/calls, GET {0}/state, POST {0}/reset)",
        control.base_url()
    );
    if let Some(path) = &ca_path {
        let _ = writeln!(
            text,
            "TLS: trust the CA {0} (the licensekit.toml below does, with ca_file; REQUESTS_CA_BUNDLE={0}, NODE_EXTRA_CA_CERTS={0}, SSL_CERT_FILE={0})",
            path.display()
        );
    }
    let _ = writeln!(text, "\n# licensekit.toml\n{toml}");
    print!("{text}");
    use std::io::Write as _;
    let _ = std::io::stdout().flush();
    let info = info_json(&sims, &control.base_url(), ca_path.as_deref());
    for (path, content) in [(&args.write_info, info), (&args.write_config, toml)] {
        let Some(path) = path else { continue };
        // Written whole under another name, then renamed: a watcher never reads half a file.
        let partial = path.with_extension("partial");
        std::fs::write(&partial, content)
            .and_then(|()| std::fs::rename(&partial, path))
            .map_err(io(&format!("cannot write {}", path.display())))?;
    }
    let _ = tokio::signal::ctrl_c().await;
    say!("licensekit sandbox: stopped");
    drop(control);
    Ok(0)
}

fn for_each_network(
    #[allow(unused_variables)] sims: &Sims,
    #[allow(unused_variables)] f: impl Fn(&licensekit_sim::faults::FaultInjector),
) {
    #[cfg(feature = "apple-vpp")]
    f(sims.apple.network());
    #[cfg(feature = "genesys")]
    f(sims.genesys.network());
    #[cfg(feature = "salesforce")]
    f(sims.salesforce.network());
}

fn set_faults(#[allow(unused_variables)] sims: &Sims, #[allow(unused_variables)] faults: &Faults) {
    #[cfg(feature = "apple-vpp")]
    sims.apple.set_faults(Some(faults.clone()));
    #[cfg(feature = "genesys")]
    sims.genesys.set_faults(Some(faults.clone()));
    #[cfg(feature = "salesforce")]
    sims.salesforce.set_faults(Some(faults.clone()));
}

/// Base URLs and credentials, for people and for SDKs.
fn describe(#[allow(unused_variables)] text: &mut String, #[allow(unused_variables)] sims: &Sims) {
    #[cfg(feature = "apple-vpp")]
    {
        let _ = writeln!(text, "apple-vpp:  {}", sims.apple.base_url());
        let _ = writeln!(
            text,
            "  sToken (Authorization: Bearer …): {}",
            sims.apple.stoken()
        );
    }
    #[cfg(feature = "genesys")]
    {
        let config = sims.genesys.config();
        let _ = writeln!(
            text,
            "genesys:    {0}  (API and OAuth: POST {0}/oauth/token)",
            sims.genesys.base_url()
        );
        let _ = writeln!(
            text,
            "  client credentials: client_id {} / client_secret {}",
            config.client_id, config.client_secret
        );
    }
    #[cfg(feature = "salesforce")]
    {
        let config = licensekit_sim::salesforce::SalesforceSimConfig::default();
        let _ = writeln!(
            text,
            "salesforce: {0}  (instance and login URL; OAuth: POST {0}/services/oauth2/token)",
            sims.salesforce.base_url()
        );
        let _ = writeln!(
            text,
            "  client credentials: client_id {} / client_secret {} (runs as {})",
            config.client_id,
            config.client_secret,
            sandbox::salesforce_run_as()
        );
        let _ = writeln!(
            text,
            "  session id (Authorization: Bearer …): {}",
            sandbox::SALESFORCE_TOKEN
        );
    }
    let _ = writeln!(text);
}

/// Base URLs and credentials, as JSON (`--write-info`).
fn info_json(
    #[allow(unused_variables)] sims: &Sims,
    control: &str,
    ca_file: Option<&std::path::Path>,
) -> String {
    #[allow(unused_mut)]
    let mut info = serde_json::json!({
        "control": control,
        "ca_file": ca_file.map(|p| p.display().to_string()),
    });
    #[cfg(feature = "apple-vpp")]
    {
        info["apple-vpp"] = serde_json::json!({
            "base_url": sims.apple.base_url(),
            "stoken": sims.apple.stoken(),
        });
    }
    #[cfg(feature = "genesys")]
    {
        let config = sims.genesys.config();
        info["genesys"] = serde_json::json!({
            "base_url": sims.genesys.base_url(),
            "client_id": config.client_id,
            "client_secret": config.client_secret,
        });
    }
    #[cfg(feature = "salesforce")]
    {
        let config = licensekit_sim::salesforce::SalesforceSimConfig::default();
        info["salesforce"] = serde_json::json!({
            "instance_url": sims.salesforce.base_url(),
            "client_id": config.client_id,
            "client_secret": config.client_secret,
            "session_id": sandbox::SALESFORCE_TOKEN,
            "username": sandbox::salesforce_run_as(),
        });
    }
    serde_json::to_string_pretty(&info).expect("serializable")
}

/// A TOML string literal.
/// `[[contracts]]` tables for `contracts`, in the form `licensekit.toml` reads.
fn contracts_toml(contracts: &[licensekit::Contract]) -> String {
    let mut t = String::new();
    for c in contracts {
        let _ = writeln!(t, "\n[[contracts]]");
        let _ = writeln!(t, "provider = {}", quoted(c.provider.as_str()));
        let _ = writeln!(t, "product = {}", quoted(&c.product));
        if let Some(seats) = c.seats {
            let _ = writeln!(t, "seats = {seats}");
        }
        if let Some(price) = c.price_per_seat {
            let _ = writeln!(t, "price_per_seat = {}", quoted(&price.to_string()));
        }
        if let Some(currency) = &c.currency {
            let _ = writeln!(t, "currency = {}", quoted(currency));
        }
        if let Some(period) = c.period {
            let period = match period {
                licensekit::Period::Month => "month",
                licensekit::Period::Year => "year",
            };
            let _ = writeln!(t, "period = {}", quoted(period));
        }
        if let Some(renewal) = c.renewal {
            let _ = writeln!(t, "renewal = {renewal}");
        }
        if let Some(notes) = &c.notes {
            let _ = writeln!(t, "notes = {}", quoted(notes));
        }
    }
    t
}

fn quoted(s: &str) -> String {
    toml::Value::String(s.to_owned()).to_string()
}

/// The `licensekit.toml` that points `licensekit` at these servers, configured as `--sandbox`
/// configures its providers (the same figures from `licensekit report`).
fn licensekit_toml(
    #[allow(unused_variables)] sims: &Sims,
    ca_file: Option<&std::path::Path>,
    #[allow(unused_variables)] rate_limit: Option<usize>,
) -> String {
    // Each provider's `[providers.client]` table: plain HTTP allowed explicitly (the adapters
    // require HTTPS otherwise), or the generated CA trusted.
    #[allow(unused_variables)]
    let client = |extra: &str| -> String {
        let trust = match ca_file {
            None => "allow_http = true\n".to_owned(),
            Some(path) => format!("ca_file = {}\n", quoted(&path.display().to_string())),
        };
        format!("[providers.client]\n{trust}{extra}")
    };
    let mut t = String::new();
    let _ = writeln!(t, "# written by `licensekit sandbox serve`");
    if !sims.aliases.is_empty() {
        let _ = writeln!(t, "\n[identity.aliases]");
        let mut aliases: Vec<_> = sims.aliases.iter().collect();
        aliases.sort();
        for (alias, canonical) in aliases {
            let _ = writeln!(t, "{} = {}", quoted(alias), quoted(canonical));
        }
    }
    #[cfg(feature = "apple-vpp")]
    {
        let _ = writeln!(t, "\n[[providers]]\nprovider = \"apple-vpp\"");
        let _ = writeln!(t, "base_url = {}", quoted(&sims.apple.base_url()));
        let _ = writeln!(t, "stoken = {}", quoted(&sims.apple.stoken()));
        let _ = writeln!(t, "poll_interval_secs = 0.05");
        let _ = write!(t, "{}", client(""));
    }
    #[cfg(feature = "genesys")]
    {
        let config = sims.genesys.config();
        let _ = writeln!(t, "\n[[providers]]\nprovider = \"genesys\"");
        let _ = writeln!(t, "base_url = {}", quoted(&sims.genesys.base_url()));
        let _ = writeln!(t, "login_url = {}", quoted(&sims.genesys.base_url()));
        let _ = writeln!(t, "client_id = {}", quoted(&config.client_id));
        let _ = writeln!(t, "client_secret = {}", quoted(&config.client_secret));
        let totals: Vec<String> = sims
            .genesys_seat_totals
            .iter()
            .map(|(license, seats)| format!("{} = {seats}", quoted(license)))
            .collect();
        let _ = writeln!(t, "seat_totals = {{ {} }}", totals.join(", "));
        // Pace to the sandbox's own limit, not Genesys's 300 a minute (which made a report here
        // take 2.2 s instead of 0.4 s).
        let rate = match rate_limit {
            Some(n) => format!("rate = {n}\n"),
            None => "rate = \"off\"\n".to_owned(),
        };
        let _ = write!(t, "{}", client(&rate));
    }
    #[cfg(feature = "salesforce")]
    {
        let config = licensekit_sim::salesforce::SalesforceSimConfig::default();
        let _ = writeln!(t, "\n[[providers]]\nprovider = \"salesforce\"");
        let _ = writeln!(t, "[providers.auth]\nflow = \"client_credentials\"");
        let _ = writeln!(t, "login_url = {}", quoted(&sims.salesforce.base_url()));
        let _ = writeln!(t, "client_id = {}", quoted(&config.client_id));
        let _ = writeln!(t, "client_secret = {}", quoted(&config.client_secret));
        let _ = write!(t, "{}", client(""));
    }
    t
}

fn control_router(sims: Arc<Sims>) -> axum::Router {
    axum::Router::new()
        .route("/calls", get(calls))
        .route("/state", get(state))
        .route("/reset", post(reset))
        .with_state(sims)
}

/// Requests served per route template, per vendor.
async fn calls(State(sims): State<Arc<Sims>>) -> Json<Value> {
    #[allow(unused_mut)]
    let mut out = Map::new();
    #[cfg(feature = "apple-vpp")]
    out.insert("apple-vpp".into(), json!(sims.apple.calls().snapshot()));
    #[cfg(feature = "genesys")]
    out.insert("genesys".into(), json!(sims.genesys.calls().snapshot()));
    #[cfg(feature = "salesforce")]
    out.insert(
        "salesforce".into(),
        json!(sims.salesforce.calls().snapshot()),
    );
    let _ = &sims;
    Json(Value::Object(out))
}

/// Seats and holders per product, per vendor.
async fn state(State(sims): State<Arc<Sims>>) -> Json<Value> {
    #[allow(unused_mut)]
    let mut out = Map::new();
    #[cfg(feature = "apple-vpp")]
    out.insert("apple-vpp".into(), sims.apple.state_summary());
    #[cfg(feature = "genesys")]
    out.insert("genesys".into(), sims.genesys.state_summary());
    #[cfg(feature = "salesforce")]
    out.insert("salesforce".into(), sims.salesforce.state_summary());
    let _ = &sims;
    Json(Value::Object(out))
}

/// Back to the seeded org; call counts cleared.
async fn reset(State(sims): State<Arc<Sims>>) -> Json<Value> {
    #[cfg(feature = "apple-vpp")]
    sims.apple.reset();
    #[cfg(feature = "genesys")]
    sims.genesys.reset();
    #[cfg(feature = "salesforce")]
    sims.salesforce.reset();
    let _ = &sims;
    Json(json!({"reset": true}))
}
