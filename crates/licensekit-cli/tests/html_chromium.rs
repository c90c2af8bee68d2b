//! The sandbox's HTML report in a real browser (headless Chromium): it renders (a screenshot of
//! the expected size), its DOM carries the same key figures as the JSON report, and it fetches
//! nothing — checked in Chromium's net log and console, with a control page proving both checks
//! see a fetch when there is one.
//!
//! Chromium is found as `$LICENSEKIT_CHROMIUM`, `chromium`, `chromium-browser` or
//! `google-chrome`. Without it the test is skipped with a message, except under `CI=true`, where
//! a missing Chromium fails (`.ci/run` installs it). As root Chromium needs `--no-sandbox`;
//! background networking, component updates and first-run tasks are turned off so the net log
//! holds only what the page asked for.

#![cfg(all(feature = "apple-vpp", feature = "genesys", feature = "salesforce"))]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use serde_json::Value;

fn chromium() -> Option<PathBuf> {
    let candidates = std::env::var_os("LICENSEKIT_CHROMIUM")
        .map(PathBuf::from)
        .into_iter()
        .chain(
            ["chromium", "chromium-browser", "google-chrome"]
                .iter()
                .map(PathBuf::from),
        );
    for candidate in candidates {
        let works = Command::new(&candidate)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success());
        if works {
            return Some(candidate);
        }
    }
    None
}

fn require_chromium() -> Option<PathBuf> {
    let found = chromium();
    if found.is_none() {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!(
                "CI=true and no Chromium found (set LICENSEKIT_CHROMIUM or install the `chromium` package; .ci/run does)"
            );
        }
        eprintln!("SKIPPED: no Chromium found (install `chromium` or set LICENSEKIT_CHROMIUM)");
    }
    found
}

/// Headless Chromium on `page` with `extra` flags, in its own profile under `dir`. Killed after
/// 60 s: a hung browser fails the test instead of the CI run.
fn run_chromium(chromium: &Path, dir: &Path, page: &Path, extra: &[String]) -> Output {
    // A fresh profile per run: a second browser on the same profile hands its work to the
    // first and exits.
    static RUNS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let run = RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let profile = dir.join(format!("profile-{run}"));
    let mut child = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-default-apps",
            "--disable-extensions",
            "--no-first-run",
            "--no-default-browser-check",
            "--hide-scrollbars",
            // Console messages (CSP violations among them) go to stderr as `INFO:CONSOLE`.
            "--enable-logging=stderr",
            "--log-level=0",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(extra)
        .arg(format!("file://{}", page.display()))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("chromium starts");
    let started = std::time::Instant::now();
    loop {
        if child.try_wait().expect("wait").is_some() {
            break;
        }
        if started.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            panic!("chromium did not finish within 60 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().expect("chromium output")
}

fn licensekit(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_licensekit"))
        .args(args)
        .current_dir(dir)
        .env("LICENSEKIT_HOME", dir.join("home"))
        .env_remove("LICENSEKIT_SANDBOX_LATENCY_MS")
        .env_remove("LICENSEKIT_SANDBOX_BATCH")
        .output()
        .expect("the binary runs")
}

/// Width and height from a PNG's IHDR chunk.
fn png_size(bytes: &[u8]) -> (u32, u32) {
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "a PNG");
    assert_eq!(&bytes[12..16], b"IHDR");
    let be = |b: &[u8]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
    (be(&bytes[16..20]), be(&bytes[20..24]))
}

/// Requests a document made for anything but the page itself, from a Chromium net log (JSON).
/// The browser's own background requests (update checks, network time, the spelling
/// dictionary) are told apart by their initiator, `not an origin`; a page's requests carry its
/// origin (`null` for a `file://` page).
fn foreign_requests(net_log: &Path, page: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(net_log).expect("net log written");
    // A log cut short by the browser's exit lacks its closing brackets.
    let log: Value = serde_json::from_str(&text)
        .or_else(|_| serde_json::from_str(&format!("{}]}}", text.trim_end().trim_end_matches(','))))
        .expect("net log is JSON");
    let start_job = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
        .as_u64()
        .expect("the net log names its event types");
    let page_url = format!("file://{}", page.display());
    let mut urls = Vec::new();
    for event in log["events"].as_array().into_iter().flatten() {
        if event["type"].as_u64() != Some(start_job) {
            continue;
        }
        let params = &event["params"];
        let (Some(url), Some(initiator)) = (params["url"].as_str(), params["initiator"].as_str())
        else {
            continue;
        };
        let by_a_document = initiator != "not an origin";
        if by_a_document
            && url != page_url
            && !url.starts_with("data:")
            && !urls.iter().any(|u| u == url)
        {
            urls.push(url.to_owned());
        }
    }
    urls
}

/// `data-value` of the element with `id` in the DOM dump.
fn value_by_id<'a>(dom: &'a str, id: &str) -> &'a str {
    let at = dom
        .find(&format!(r#"id="{id}""#))
        .unwrap_or_else(|| panic!("#{id} in the DOM"));
    let rest = &dom[at..];
    let start = rest.find(r#"data-value=""#).expect("data-value") + 12;
    let end = rest[start..].find('"').expect("closing quote");
    &rest[start..start + end]
}

#[test]
fn the_sandbox_html_report_renders_in_chromium_with_the_json_figures_and_fetches_nothing() {
    let Some(chromium) = require_chromium() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    // Two snapshots of the sandbox in the home's history database: the page then charts
    // utilization over time.
    for _ in 0..2 {
        let out = licensekit(&["snapshot", "--sandbox", "-q"], dir.path());
        assert_eq!(out.status.code(), Some(0), "{out:?}");
    }
    let out = licensekit(&["history", "--format", "json"], dir.path());
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let history: Value = serde_json::from_slice(&out.stdout).unwrap();
    let out = licensekit(
        &[
            "report",
            "--sandbox",
            "-q",
            "--format",
            "html",
            "--output",
            "report.html",
        ],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let out = licensekit(
        &["report", "--sandbox", "-q", "--format", "json"],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(0));
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    let page = dir.path().join("report.html");

    // A screenshot of the expected size, and not a blank page.
    let shot = dir.path().join("report.png");
    let out = run_chromium(
        &chromium,
        dir.path(),
        &page,
        &[
            "--window-size=1200,2000".into(),
            format!("--screenshot={}", shot.display()),
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let png = std::fs::read(&shot).expect("screenshot written");
    assert_eq!(png_size(&png), (1200, 2000));
    assert!(
        png.len() > 40_000,
        "a page with content, not blank: {} bytes",
        png.len()
    );

    // The DOM as Chromium built it, with the net log of the same load.
    let net_log = dir.path().join("net-log.json");
    let out = run_chromium(
        &chromium,
        dir.path(),
        &page,
        &[
            "--dump-dom".into(),
            format!("--log-net-log={}", net_log.display()),
            "--net-log-capture-mode=Everything".into(),
        ],
    );
    assert!(out.status.success());
    let dom = String::from_utf8_lossy(&out.stdout).into_owned();
    let console = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(dom.contains("License report"), "{dom}");

    // Key figures equal the JSON report's.
    let sum = |key: &str| -> u64 {
        json["providers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p[key].as_u64().unwrap())
            .sum()
    };
    assert_eq!(
        value_by_id(&dom, "seats-owned"),
        sum("seats_total").to_string()
    );
    assert_eq!(
        value_by_id(&dom, "seats-assigned"),
        sum("seats_assigned").to_string()
    );
    assert_eq!(
        value_by_id(&dom, "reclaim-count"),
        json["reclaim"].as_array().unwrap().len().to_string()
    );
    for cost in json["costs"].as_array().unwrap() {
        let currency = cost["currency"].as_str().unwrap();
        let annual = cost["annual_cost"].as_str().unwrap();
        assert!(
            dom.contains(&format!(
                r#"data-currency="{currency}" data-kind="annual" data-value="{annual}""#
            )),
            "annual {currency} {annual} in the page"
        );
    }
    for product in json["products"].as_array().unwrap() {
        let id = product["product_id"].as_str().unwrap();
        let row = format!(r#"data-product="{id}""#);
        assert!(dom.contains(&row), "product {id} in the page");
    }
    let candidate = json["reclaim"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["reason"] == "inactive_for_days")
        .expect("an inactive_for_days candidate");
    assert!(
        dom.contains(&format!(
            r#"data-reason="inactive_for_days" data-holder="{}""#,
            candidate["holder"]["id"].as_str().unwrap()
        )),
        "the reclaim row of {candidate}"
    );
    // Utilization over time: a chart per product (an SVG image with a title), and a table
    // whose figures are the stored history's.
    let rows = history.as_array().unwrap();
    assert_eq!(rows.len(), 2 * json["products"].as_array().unwrap().len());
    assert!(dom.contains(r#"<h2 id="over-time">Utilization over time</h2>"#));
    assert_eq!(
        dom.matches(r#"<svg class="trend""#).count(),
        json["products"].as_array().unwrap().len()
    );
    let table = &dom[dom
        .find(r#"<table id="trend-table">"#)
        .expect("the trend table")..];
    for row in rows {
        let start = format!(
            r#"<tr data-provider="{}" data-product="{}">"#,
            row["provider"].as_str().unwrap(),
            row["product_id"].as_str().unwrap()
        );
        let at = table
            .find(&start)
            .unwrap_or_else(|| panic!("{start} in the trend table"));
        let line = &table[at..at + table[at..].find("</tr>").unwrap()];
        let cell = format!(
            r#"data-taken="{}" data-value="{}">"#,
            row["taken_at"].as_str().unwrap(),
            row["assigned"].as_u64().unwrap()
        );
        assert!(line.contains(&cell), "{line} shows {cell}");
    }
    assert!(dom.contains("default-src 'none'"), "the CSP is in the page");
    assert!(!dom.to_lowercase().contains("<script"), "no script");

    // Nothing fetched, nothing refused.
    assert_eq!(foreign_requests(&net_log, &page), Vec::<String>::new());
    assert!(
        !console.contains(":CONSOLE"),
        "the page says nothing on the console: {console}"
    );

    // Control: the same checks see a fetch when a page makes one, and the CSP stops it.
    let probe = "http://127.0.0.1:9/licensekit-probe.png";
    for (name, head) in [
        ("open.html", String::new()),
        (
            "guarded.html",
            format!(
                r#"<meta http-equiv="Content-Security-Policy" content="{}">"#,
                licensekit::report::html::CONTENT_SECURITY_POLICY
            ),
        ),
    ] {
        let control = dir.path().join(name);
        std::fs::write(
            &control,
            format!(r#"<!DOCTYPE html><html><head>{head}</head><body><img src="{probe}" alt=""></body></html>"#),
        )
        .unwrap();
        let log = dir.path().join(format!("{name}.net-log.json"));
        let out = run_chromium(
            &chromium,
            dir.path(),
            &control,
            &[
                "--dump-dom".into(),
                format!("--log-net-log={}", log.display()),
                "--net-log-capture-mode=Everything".into(),
            ],
        );
        let requests = foreign_requests(&log, &control);
        let console = String::from_utf8_lossy(&out.stderr);
        if head.is_empty() {
            assert_eq!(
                requests,
                vec![probe.to_string()],
                "the net log shows a fetch"
            );
        } else {
            assert_eq!(requests, Vec::<String>::new(), "the CSP blocks the fetch");
            assert!(
                console.contains("violates the following Content Security Policy directive"),
                "the console reports it: {console}"
            );
        }
    }
}
