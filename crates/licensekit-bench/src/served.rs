//! The `list` and `report` scenarios with the simulators out of the measured process, so the
//! figures are licensekit's own: the standalone server `licensekit sandbox serve --scale N` runs
//! as one child process, and the measured work runs in another — this binary re-executed with
//! `--measure` — which reports its own CPU time and peak RSS (`getrusage(RUSAGE_SELF)`) on
//! its last line of output.

use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures::TryStreamExt;
use licensekit::apple_vpp::{AppleVppConfig, AppleVppProvider};
use licensekit::genesys::{GenesysConfig, GenesysProvider};
use licensekit::report::{Report, ReportOptions};
use licensekit::salesforce::{SalesforceConfig, SalesforceProvider};
use licensekit::{AssignmentFilter, ClientOptions, Contract, LicenseProvider, Rate};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{Args, Row, div_ceil};

/// A running `licensekit sandbox serve --scale N`; killed when dropped.
pub struct Server {
    child: Child,
    info_path: PathBuf,
    info: Value,
}

impl Server {
    pub fn start(binary: &Path, people: usize) -> Result<Server, String> {
        let dir = std::env::temp_dir().join(format!("licensekit-bench-{}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        let info_path = dir.join(format!("serve-{people}.json"));
        let _ = std::fs::remove_file(&info_path);
        let _ = std::fs::remove_file(info_path.with_extension("toml"));
        let child = Command::new(binary)
            .args(["sandbox", "serve", "--scale", &people.to_string()])
            .arg("--write-info")
            .arg(&info_path)
            .arg("--write-config")
            .arg(info_path.with_extension("toml"))
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("cannot run {}: {e}", binary.display()))?;
        let mut server = Server {
            child,
            info_path,
            info: Value::Null,
        };
        // The info file is written (renamed into place) once every simulator listens.
        let started = Instant::now();
        while !(server.info_path.exists() && server.info_path.with_extension("toml").exists()) {
            if let Ok(Some(status)) = server.child.try_wait() {
                return Err(format!("sandbox serve exited: {status}"));
            }
            if started.elapsed() > Duration::from_secs(900) {
                return Err("sandbox serve did not start within 15 minutes".into());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let text = std::fs::read_to_string(&server.info_path).map_err(|e| e.to_string())?;
        server.info = serde_json::from_str(&text).map_err(|e| e.to_string())?;
        Ok(server)
    }

    /// API requests served so far per vendor (token endpoints excluded), from the control server.
    pub fn api_calls(&self, vendor: &str) -> u64 {
        let control = self.info["control"].as_str().unwrap_or_default();
        let calls = http_get_json(control, "/calls").unwrap_or(Value::Null);
        calls[vendor]
            .as_object()
            .into_iter()
            .flatten()
            .filter(|(route, _)| !route.contains("oauth"))
            .filter_map(|(_, n)| n.as_u64())
            .sum()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.info_path);
        let _ = std::fs::remove_file(self.info_path.with_extension("toml"));
    }
}

/// `GET base + path` over plain HTTP/1.1, the body as JSON (the control server's answers are
/// small and have a length).
fn http_get_json(base: &str, path: &str) -> Option<Value> {
    let host = base.strip_prefix("http://")?.trim_end_matches('/');
    let mut stream = std::net::TcpStream::connect(host).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let (_, body) = response.split_once("\r\n\r\n")?;
    serde_json::from_str(body).ok()
}

/// What a `--measure` process reports on its last line.
#[derive(Debug, Serialize, Deserialize)]
pub struct Measurement {
    pub records: u64,
    /// Wall time of the work (listing, or collecting the report and writing it as JSON).
    pub wall_secs: f64,
    /// User + system CPU time of the whole process.
    pub cpu_secs: f64,
    /// Peak resident set of the whole process.
    pub peak_rss_mib: f64,
    pub outcome: String,
}

/// CPU seconds (user + system) and peak RSS in MiB of this process so far.
fn rusage(who: nix::sys::resource::UsageWho) -> (f64, f64) {
    use nix::sys::time::TimeValLike;
    let usage = nix::sys::resource::getrusage(who).expect("getrusage");
    let secs = |t: nix::sys::time::TimeVal| t.num_microseconds() as f64 / 1e6;
    // ru_maxrss is in KiB on Linux.
    (
        secs(usage.user_time()) + secs(usage.system_time()),
        usage.max_rss() as f64 / 1024.0,
    )
}

/// A vendor's name and its provider.
type Named = (&'static str, Box<dyn LicenseProvider>);

fn providers(info: &Value) -> Result<Vec<Named>, String> {
    let s = |v: &Value| v.as_str().unwrap_or_default().to_owned();
    let g = &info["genesys"];
    let genesys = GenesysProvider::new(
        GenesysConfig::new(s(&g["client_id"]), s(&g["client_secret"]).into())
            .with_base_url(s(&g["base_url"]))
            .with_client_options(
                ClientOptions::default()
                    .with_allow_http(true)
                    .with_rate(Rate::Off),
            ),
    )
    .map_err(|e| e.to_string())?;
    let sf = &info["salesforce"];
    let salesforce = SalesforceProvider::new(
        SalesforceConfig::session(&s(&sf["instance_url"]), &s(&sf["session_id"])).allow_http(true),
    )
    .map_err(|e| e.to_string())?;
    let a = &info["apple-vpp"];
    let apple = AppleVppProvider::new(
        AppleVppConfig::new(s(&a["stoken"]).into())
            .with_base_url(s(&a["base_url"]))
            .allow_http(true),
    )
    .map_err(|e| e.to_string())?;
    Ok(vec![
        ("genesys", Box::new(genesys)),
        ("salesforce", Box::new(salesforce)),
        ("apple-vpp", Box::new(apple)),
    ])
}

/// The contracts in the `licensekit.toml` the server wrote (`--write-config`, next to the info
/// file): the scaled org's prices and seats.
fn contracts(info: &Path) -> Vec<Contract> {
    #[derive(Deserialize)]
    struct Config {
        #[serde(default)]
        contracts: Vec<Contract>,
    }
    /// TOML dates (`renewal = 2027-01-15`) become strings, as the CLI reads them.
    fn dates_as_strings(value: &mut toml::Value) {
        match value {
            toml::Value::Datetime(d) => *value = toml::Value::String(d.to_string()),
            toml::Value::Array(items) => items.iter_mut().for_each(dates_as_strings),
            toml::Value::Table(table) => table.iter_mut().for_each(|(_, v)| dates_as_strings(v)),
            _ => {}
        }
    }
    let text = std::fs::read_to_string(info.with_extension("toml")).expect("the config file");
    let mut value: toml::Value = toml::from_str(&text).expect("the config file is TOML");
    dates_as_strings(&mut value);
    value
        .try_into::<Config>()
        .expect("the config file's contracts")
        .contracts
}

/// `--measure list|report|cli-report`: the measured process. Prints a [`Measurement`] as its
/// last line.
pub async fn measure(what: &str, vendor: Option<&str>, info_path: &Path, cli: Option<&Path>) {
    if what == "cli-report" {
        let m = measure_cli_report(cli.expect("--cli"), info_path);
        println!("{}", serde_json::to_string(&m).expect("serializable"));
        return;
    }
    let info: Value =
        serde_json::from_str(&std::fs::read_to_string(info_path).expect("the info file"))
            .expect("the info file is JSON");
    let providers = providers(&info).expect("providers");
    let started = Instant::now();
    let (records, outcome) = match what {
        "list" => {
            let vendor = vendor.expect("--vendor");
            let (_, provider) = providers
                .iter()
                .find(|(name, _)| *name == vendor)
                .expect("a known vendor");
            let mut stream = provider.assignments(AssignmentFilter::all());
            let mut n = 0u64;
            let mut outcome = String::from("ok");
            loop {
                match stream.try_next().await {
                    Ok(Some(_)) => n += 1,
                    Ok(None) => break,
                    Err(e) => {
                        outcome = format!("error: {e}");
                        break;
                    }
                }
            }
            (n, outcome)
        }
        "report" => {
            let providers: Vec<&dyn LicenseProvider> =
                providers.iter().map(|(_, p)| p.as_ref()).collect();
            let options = ReportOptions {
                contracts: contracts(info_path),
                ..ReportOptions::default()
            };
            let report = Report::collect(&providers, &options, &|_, _| {}).await;
            // Written as `licensekit report --format json` writes it, to a sink.
            serde_json::to_writer(std::io::sink(), &report).expect("the report serializes");
            let assignments: u64 = report.providers.iter().map(|t| t.assignments).sum();
            let reclaim = report.reclaim.len();
            (
                assignments,
                format!(
                    "{} people, {assignments} assignments, {reclaim} reclaim candidates, {} cost currencies, {} errors",
                    report.people.len(),
                    report.costs.len(),
                    report.errors.len()
                ),
            )
        }
        other => panic!("--measure {other}: list, report or cli-report"),
    };
    let wall_secs = started.elapsed().as_secs_f64();
    let (cpu_secs, peak_rss_mib) = rusage(nix::sys::resource::UsageWho::RUSAGE_SELF);
    let m = Measurement {
        records,
        wall_secs,
        cpu_secs,
        peak_rss_mib,
        outcome,
    };
    println!("{}", serde_json::to_string(&m).expect("serializable"));
}

/// `licensekit report --format json --output FILE` against the server, as a user runs it: the
/// CLI is this process's only child, so `RUSAGE_CHILDREN` is exactly its CPU time and peak RSS.
fn measure_cli_report(cli: &Path, info_path: &Path) -> Measurement {
    #[derive(Deserialize)]
    struct Counts {
        people: Vec<serde::de::IgnoredAny>,
        reclaim: Vec<serde::de::IgnoredAny>,
        errors: Vec<serde::de::IgnoredAny>,
    }
    let json = info_path.with_extension("report.json");
    let started = Instant::now();
    let status = Command::new(cli)
        .arg("--config")
        .arg(info_path.with_extension("toml"))
        .args(["--quiet", "report", "--format", "json", "--output"])
        .arg(&json)
        .stdout(Stdio::null())
        .status()
        .expect("the licensekit binary runs");
    let wall_secs = started.elapsed().as_secs_f64();
    let (cpu_secs, peak_rss_mib) = rusage(nix::sys::resource::UsageWho::RUSAGE_CHILDREN);
    let written = std::fs::File::open(&json)
        .ok()
        .and_then(|f| serde_json::from_reader::<_, Counts>(std::io::BufReader::new(f)).ok());
    let _ = std::fs::remove_file(&json);
    let outcome = match written {
        Some(c) if status.success() && c.errors.is_empty() => format!(
            "exit 0, {} people, {} reclaim candidates, 0 errors",
            c.people.len(),
            c.reclaim.len(),
        ),
        _ => format!("error: licensekit report ({status}) wrote no complete report"),
    };
    Measurement {
        records: 0,
        wall_secs,
        cpu_secs,
        peak_rss_mib,
        outcome,
    }
}

/// Runs `--measure` in a fresh process of this binary and reads its figures.
fn run_measured(
    what: &str,
    vendor: Option<&str>,
    cli: Option<&Path>,
    server: &Server,
) -> Result<Measurement, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut command = Command::new(exe);
    command
        .args(["--measure", what, "--info"])
        .arg(&server.info_path);
    if let Some(vendor) = vendor {
        command.args(["--vendor", vendor]);
    }
    if let Some(cli) = cli {
        command.arg("--cli").arg(cli);
    }
    let output = command.output().map_err(|e| e.to_string())?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let last = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(last).map_err(|_| {
        format!(
            "the measured process failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        )
    })
}

/// A row of figures; `expected` records, else the outcome says how many were listed.
fn row(
    scenario: &str,
    vendor: &str,
    size: usize,
    expected: u64,
    m: Result<Measurement, String>,
) -> Row {
    let (m, error) = match m {
        Ok(m) => (m, None),
        Err(e) => (
            Measurement {
                records: 0,
                wall_secs: 0.0,
                cpu_secs: 0.0,
                peak_rss_mib: 0.0,
                outcome: String::new(),
            },
            Some(e),
        ),
    };
    Row {
        scenario: scenario.into(),
        vendor: vendor.into(),
        size,
        calls: None,
        minimum_calls: None,
        ratio: None,
        formula: None,
        wall_secs: m.wall_secs,
        floor_secs: None,
        floor_formula: None,
        of_floor: None,
        before_secs: None,
        before: None,
        throttled_429: None,
        records_per_sec: Some(m.records as f64 / m.wall_secs),
        peak_rss_mib: Some(m.peak_rss_mib),
        cpu_secs: Some(m.cpu_secs),
        records_per_cpu_sec: Some(m.records as f64 / m.cpu_secs),
        outcome: match error {
            Some(e) => format!("error: {e}"),
            None if m.records != expected => {
                format!("{}; listed {} of {expected}", m.outcome, m.records)
            }
            None => m.outcome,
        },
    }
}

/// Listing `args.list` assignments per vendor from the standalone server.
pub fn lists(binary: &Path, args: &Args, rows: &mut Vec<Row>) {
    let m = args.list;
    let server = match Server::start(binary, m) {
        Ok(s) => s,
        Err(e) => {
            rows.push(row("list", "all three", m, m as u64, Err(e)));
            return;
        }
    };
    // Pages: Genesys 100 users a page; Salesforce 2,000 rows a page; Apple 1,000 assignments a
    // page + the one-time client/config ownership check.
    for (vendor, min_pages, formula) in [
        ("genesys", div_ceil(m, 100), format!("ceil({m}/100) pages")),
        (
            "apple-vpp",
            1 + div_ceil(m, 1000),
            format!("1 client config + ceil({m}/1000) pages"),
        ),
        (
            "salesforce",
            div_ceil(m, 2000),
            format!("ceil({m}/2000) pages"),
        ),
    ] {
        let before = server.api_calls(vendor);
        let measured = run_measured("list", Some(vendor), None, &server);
        let pages = server.api_calls(vendor) - before;
        let mut r = row("list", vendor, m, m as u64, measured);
        r.calls = Some(pages);
        r.minimum_calls = Some(min_pages);
        r.ratio = Some(pages as f64 / min_pages as f64);
        r.formula = Some(formula);
        rows.push(r);
    }
}

/// The cross-vendor report over `args.report_people` people from the standalone server.
pub fn report(binary: &Path, args: &Args, rows: &mut Vec<Row>) {
    let p = args.report_people;
    let server = Server::start(binary, p);
    let measured = server
        .as_ref()
        .map_err(Clone::clone)
        .and_then(|server| run_measured("report", None, None, server));
    // Each person holds one license at each vendor.
    rows.push(row("report", "all three", p, 3 * p as u64, measured));
    // The same report through the CLI, written as pretty JSON to a file.
    let cli = server
        .as_ref()
        .map_err(Clone::clone)
        .and_then(|server| run_measured("cli-report", None, Some(binary), server));
    let mut cli_row = row("report", "cli, json", p, 0, cli);
    cli_row.records_per_sec = None;
    cli_row.records_per_cpu_sec = None;
    rows.push(cli_row);
}
