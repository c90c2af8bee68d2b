//! Hostile servers (issue 13, item 9; issue 12, item 2): the real `licensekit` binary against a
//! small axum server on 127.0.0.1 that answers badly on purpose — endless bodies on API and
//! token routes, slow headers, endless trickling bodies, redirects to another origin, page cycles,
//! lying totals, absurd rate-limit headers, 401 loops, token 429/503, tokens echoed back.
//!
//! Every case runs the CLI in its own process, so its peak memory is its own: the test polls
//! the child's `VmHWM` (peak resident set) in /proc every 5 ms until it exits. Every case must end within [`MAX_WALL`] and
//! [`MAX_RSS_KIB`], with a clear error (or success) and no panic (exit 101) or signal.
//! Run with `--nocapture` to see each case's figures.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::Response;
use axum::routing::any;

/// Longest a case may take (the default retry budget is 120 s; every case here must end far
/// sooner: the point is that nothing waits for a server's absurd request).
const MAX_WALL: Duration = Duration::from_secs(45);
/// Largest peak RSS of one CLI run (the API body limit is 8 MiB, the token limit 64 KiB).
const MAX_RSS_KIB: i64 = 96 * 1024;
/// A run is killed (and the case fails) after this long.
const KILL_AFTER: Duration = Duration::from_secs(120);

const CLIENT_SECRET: &str = "hostile-client-secret-canary-0042";
const ACCESS_TOKEN: &str = "hostile-access-token-canary-0042";

/// What a route hit looks like to a scenario.
#[derive(Debug, Clone)]
struct Hit {
    /// Path and query.
    uri: String,
    /// Hits of this path (without query) so far, from 1.
    n: usize,
    authorization: Option<String>,
    base: String,
}

impl Hit {
    fn path(&self) -> &str {
        self.uri.split('?').next().unwrap_or("")
    }

    fn query(&self, key: &str) -> Option<String> {
        let q = self.uri.split_once('?')?.1;
        q.split('&').find_map(|pair| {
            let (k, v) = pair.split_once('=')?;
            (k == key).then(|| v.to_owned())
        })
    }
}

/// How to answer.
enum Reply {
    Json(u16, String, Vec<(&'static str, String)>),
    /// 200 with a body that never ends, as fast as the client reads.
    Endless,
    /// 200 with a body that never ends, one byte every 100 ms.
    Trickle,
    /// Headers never come.
    SlowHeaders,
    Redirect(String),
}

fn ok(body: impl Into<String>) -> Reply {
    Reply::Json(200, body.into(), Vec::new())
}

fn status(code: u16, body: impl Into<String>) -> Reply {
    Reply::Json(code, body.into(), Vec::new())
}

fn with_headers(code: u16, body: impl Into<String>, headers: &[(&'static str, &str)]) -> Reply {
    Reply::Json(
        code,
        body.into(),
        headers.iter().map(|(k, v)| (*k, (*v).to_owned())).collect(),
    )
}

type Scenario = Arc<dyn Fn(&Hit) -> Reply + Send + Sync>;

#[derive(Clone)]
struct Server {
    scenario: Scenario,
    counts: Arc<Mutex<BTreeMap<String, usize>>>,
    hits: Arc<Mutex<Vec<String>>>,
    base: String,
}

async fn handle(State(server): State<Server>, request: Request) -> Response<Body> {
    let uri = request
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_default();
    let path = request.uri().path().to_owned();
    let n = {
        let mut counts = server.counts.lock().unwrap();
        let c = counts.entry(path).or_default();
        *c += 1;
        *c
    };
    server.hits.lock().unwrap().push(uri.clone());
    let hit = Hit {
        uri,
        n,
        authorization: request
            .headers()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        base: server.base.clone(),
    };
    match (server.scenario)(&hit) {
        Reply::Json(code, body, headers) => {
            let mut response = Response::builder()
                .status(code)
                .header("content-type", "application/json");
            for (k, v) in headers {
                response = response.header(k, v);
            }
            response.body(Body::from(body)).unwrap()
        }
        Reply::Endless => {
            let chunk = axum::body::Bytes::from(vec![b' '; 64 * 1024]);
            Response::builder()
                .status(200)
                .header("content-type", "application/json")
                .body(Body::from_stream(futures::stream::repeat_with(move || {
                    Ok::<_, std::io::Error>(chunk.clone())
                })))
                .unwrap()
        }
        Reply::Trickle => {
            let stream = futures::stream::unfold((), |()| async {
                tokio::time::sleep(Duration::from_millis(100)).await;
                Some((
                    Ok::<_, std::io::Error>(axum::body::Bytes::from_static(b" ")),
                    (),
                ))
            });
            Response::builder()
                .status(200)
                .header("content-type", "application/json")
                .body(Body::from_stream(stream))
                .unwrap()
        }
        Reply::SlowHeaders => {
            tokio::time::sleep(Duration::from_secs(600)).await;
            Response::new(Body::empty())
        }
        Reply::Redirect(to) => Response::builder()
            .status(302)
            .header("location", to)
            .body(Body::empty())
            .unwrap(),
    }
}

/// A running hostile server (its runtime lives as long as this value).
struct Hostile {
    _runtime: tokio::runtime::Runtime,
    base: String,
    hits: Arc<Mutex<Vec<String>>>,
}

fn serve(scenario: impl Fn(&Hit) -> Reply + Send + Sync + 'static) -> Hostile {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let server = Server {
        scenario: Arc::new(scenario),
        counts: Arc::default(),
        hits: Arc::default(),
        base: base.clone(),
    };
    let hits = server.hits.clone();
    let app = Router::new().fallback(any(handle)).with_state(server);
    runtime.spawn(async move { axum::serve(listener, app).await.unwrap() });
    Hostile {
        _runtime: runtime,
        base,
        hits,
    }
}

#[derive(Clone, Copy)]
enum Vendor {
    Genesys,
    Salesforce,
    Apple,
}

fn config(vendor: Vendor, base: &str) -> String {
    match vendor {
        Vendor::Genesys => format!(
            r#"[[providers]]
provider = "genesys"
base_url = "{base}"
login_url = "{base}"
client_id = "hostile-client"
client_secret = "{CLIENT_SECRET}"
[providers.client]
allow_http = true
timeout = "2s"
"#
        ),
        Vendor::Salesforce => format!(
            r#"[[providers]]
provider = "salesforce"
[providers.auth]
flow = "client_credentials"
login_url = "{base}"
client_id = "hostile-client"
client_secret = "{CLIENT_SECRET}"
[providers.client]
allow_http = true
timeout = "2s"
"#
        ),
        Vendor::Apple => format!(
            r#"[[providers]]
provider = "apple-vpp"
base_url = "{base}/mdm/v2"
stoken = "{}"
[providers.client]
allow_http = true
timeout = "2s"
"#,
            apple_stoken()
        ),
    }
}

/// A content token of the documented shape (base64 of {token, expDate, orgName}).
fn apple_stoken() -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let json = format!(
        r#"{{"token":"{ACCESS_TOKEN}","expDate":"2099-01-01T00:00:00+0000","orgName":"Hostile"}}"#
    );
    let input = json.as_bytes();
    let mut out = String::new();
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32;
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(T[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// One CLI run, measured.
struct Run {
    name: &'static str,
    code: Option<i32>,
    signal: Option<i32>,
    wall: Duration,
    peak_rss_kib: i64,
    stdout: String,
    stderr: String,
    hits: Vec<String>,
}

impl Run {
    fn text(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }

    /// The promises every case keeps: bounded time and memory, no panic, no signal.
    fn bounded(&self) -> &Self {
        eprintln!(
            "HOSTILE {:<32} exit {:>4} wall {:>6.2}s peak RSS {:>6.1} MiB requests {:>4}",
            self.name,
            self.code.map_or("sig".into(), |c| c.to_string()),
            self.wall.as_secs_f64(),
            self.peak_rss_kib as f64 / 1024.0,
            self.hits.len()
        );
        assert_eq!(
            self.signal, None,
            "{}: killed by a signal\n{}",
            self.name, self.stderr
        );
        assert_ne!(
            self.code,
            Some(101),
            "{}: panicked\n{}",
            self.name,
            self.stderr
        );
        assert!(
            !self.stderr.contains("panicked"),
            "{}: panicked\n{}",
            self.name,
            self.stderr
        );
        assert!(
            self.wall < MAX_WALL,
            "{}: took {:?}\n{}",
            self.name,
            self.wall,
            self.stderr
        );
        assert!(
            self.peak_rss_kib < MAX_RSS_KIB,
            "{}: peak RSS {} KiB",
            self.name,
            self.peak_rss_kib
        );
        for secret in [CLIENT_SECRET, ACCESS_TOKEN] {
            assert!(
                !self.text().contains(secret),
                "{}: a secret leaked into the output\n{}",
                self.name,
                self.text()
            );
        }
        self
    }

    fn fails_with(&self, needles: &[&str]) -> &Self {
        assert!(
            matches!(self.code, Some(c) if c != 0),
            "{}: expected a failure, got {:?}\n{}",
            self.name,
            self.code,
            self.text()
        );
        let text = self.text();
        for needle in needles {
            assert!(
                text.contains(needle),
                "{}: expected {needle:?} in\n{text}",
                self.name
            );
        }
        self
    }

    fn succeeds(&self) -> &Self {
        assert_eq!(self.code, Some(0), "{}: {}", self.name, self.text());
        self
    }

    fn never_says(&self, needle: &str) -> &Self {
        assert!(
            !self.text().contains(needle),
            "{}: should not say {needle:?}\n{}",
            self.name,
            self.text()
        );
        self
    }
}

/// Runs `licensekit` with `args` against `server` configured as `vendor`, reaping it with
/// `wait4` for its own peak RSS.
fn run(name: &'static str, vendor: Vendor, server: &Hostile, args: &[&str]) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let config_path = dir.path().join("licensekit.toml");
    std::fs::write(&config_path, config(vendor, &server.base)).unwrap();
    run_in(name, dir.path(), server, args)
}

/// `VmHWM:   12345 kB` from /proc/<pid>/status.
fn vm_hwm_kib(status: &str) -> Option<i64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

fn run_in(name: &'static str, dir: &Path, server: &Hostile, args: &[&str]) -> Run {
    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_licensekit"))
        .args(["--config", "licensekit.toml", "--quiet"])
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary runs");
    let status_file = format!("/proc/{}/status", child.id());
    let mut out_pipe = child.stdout.take().unwrap();
    let mut err_pipe = child.stderr.take().unwrap();
    let out_reader = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = out_pipe.read_to_end(&mut s);
        s
    });
    let err_reader = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = err_pipe.read_to_end(&mut s);
        s
    });
    // VmHWM is the kernel's high-water mark of the process's resident set: it only grows, so
    // the last value read before the process exits is its peak (to within the poll interval,
    // after which the mapping is gone). Unsafe code is forbidden here, so no wait4/getrusage.
    let mut peak_rss_kib = 0;
    let status = loop {
        if let Some(kib) = std::fs::read_to_string(&status_file)
            .ok()
            .and_then(|s| vm_hwm_kib(&s))
        {
            peak_rss_kib = peak_rss_kib.max(kib);
        }
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > KILL_AFTER {
            let _ = child.kill();
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let wall = started.elapsed();
    use std::os::unix::process::ExitStatusExt;
    let (code, signal) = (status.code(), status.signal());
    Run {
        name,
        code,
        signal,
        wall,
        peak_rss_kib,
        stdout: String::from_utf8_lossy(&out_reader.join().unwrap()).into_owned(),
        stderr: String::from_utf8_lossy(&err_reader.join().unwrap()).into_owned(),
        hits: server.hits.lock().unwrap().clone(),
    }
}

// ---------------------------------------------------------------------------------------------
// Genesys

fn genesys_token() -> Reply {
    ok(format!(
        r#"{{"access_token":"{ACCESS_TOKEN}","token_type":"bearer","expires_in":86400}}"#
    ))
}

/// A users page: `pageNumber` echoed, `page_count` pages.
fn genesys_page(hit: &Hit, page_count: u64) -> Reply {
    let number: u64 = hit
        .query("pageNumber")
        .and_then(|n| n.parse().ok())
        .unwrap_or(1);
    ok(format!(
        r#"{{"entities":[],"pageSize":25,"pageNumber":{number},"total":0,"pageCount":{page_count}}}"#
    ))
}

/// The Genesys token route answers `token`, every other route `api`.
fn genesys(
    token: impl Fn(&Hit) -> Reply + Send + Sync + 'static,
    api: impl Fn(&Hit) -> Reply + Send + Sync + 'static,
) -> Hostile {
    serve(move |hit| {
        if hit.path() == "/oauth/token" {
            token(hit)
        } else {
            api(hit)
        }
    })
}

const LIST_GENESYS: &[&str] = &["assignments", "--provider", "genesys", "--format", "json"];

#[test]
fn genesys_endless_token_body() {
    let server = genesys(|_| Reply::Endless, |h| genesys_page(h, 1));
    run(
        "genesys token endless body",
        Vendor::Genesys,
        &server,
        LIST_GENESYS,
    )
    .bounded()
    .fails_with(&["65536 bytes"]);
}

#[test]
fn genesys_token_trickle_and_slow_headers() {
    let server = genesys(|_| Reply::Trickle, |h| genesys_page(h, 1));
    run(
        "genesys token trickle",
        Vendor::Genesys,
        &server,
        LIST_GENESYS,
    )
    .bounded()
    .fails_with(&["timed out"]);
    let server = genesys(|_| Reply::SlowHeaders, |h| genesys_page(h, 1));
    run(
        "genesys token slow headers",
        Vendor::Genesys,
        &server,
        LIST_GENESYS,
    )
    .bounded()
    .fails_with(&["timed out"]);
}

#[test]
fn genesys_token_429_and_503() {
    let server = genesys(
        |_| with_headers(429, "{}", &[("retry-after", "1")]),
        |h| genesys_page(h, 1),
    );
    run("genesys token 429", Vendor::Genesys, &server, LIST_GENESYS)
        .bounded()
        .fails_with(&["rate limited"])
        .never_says("check the credentials");
    let server = genesys(
        |_| status(503, r#"{"message":"down"}"#),
        |h| genesys_page(h, 1),
    );
    run("genesys token 503", Vendor::Genesys, &server, LIST_GENESYS)
        .bounded()
        .fails_with(&["unavailable", "HTTP 503"])
        .never_says("check the credentials");
    // One 429, then a token: the listing succeeds.
    let server = genesys(
        |h| {
            if h.n == 1 {
                with_headers(429, "{}", &[("retry-after", "1")])
            } else {
                genesys_token()
            }
        },
        |h| genesys_page(h, 1),
    );
    run(
        "genesys token 429 once",
        Vendor::Genesys,
        &server,
        LIST_GENESYS,
    )
    .bounded()
    .succeeds();
}

#[test]
fn genesys_token_invalid_client_keeps_the_description() {
    let server = genesys(
        |_| {
            status(
                401,
                r#"{"error":"invalid_client","description":"authentication failed"}"#,
            )
        },
        |h| genesys_page(h, 1),
    );
    run(
        "genesys token invalid_client",
        Vendor::Genesys,
        &server,
        LIST_GENESYS,
    )
    .bounded()
    .fails_with(&[
        "invalid_client: authentication failed",
        "check the credentials",
    ]);
}

#[test]
fn genesys_endless_api_bodies() {
    let server = genesys(|_| genesys_token(), |_| Reply::Endless);
    run(
        "genesys api endless body",
        Vendor::Genesys,
        &server,
        LIST_GENESYS,
    )
    .bounded()
    .fails_with(&["8388608 bytes"]);
    let server = genesys(|_| genesys_token(), |_| Reply::Trickle);
    run(
        "genesys api trickle body",
        Vendor::Genesys,
        &server,
        LIST_GENESYS,
    )
    .bounded()
    .fails_with(&["timed out"]);
    let server = genesys(|_| genesys_token(), |_| Reply::SlowHeaders);
    run(
        "genesys api slow headers",
        Vendor::Genesys,
        &server,
        LIST_GENESYS,
    )
    .bounded()
    .fails_with(&["timed out"]);
}

#[test]
fn genesys_redirect_to_another_origin_is_not_followed() {
    let other = serve(|_| ok("{}"));
    let target = format!("{}/api/v2/license/users", other.base);
    let server = genesys(
        |_| genesys_token(),
        move |_| Reply::Redirect(target.clone()),
    );
    run(
        "genesys api redirect",
        Vendor::Genesys,
        &server,
        LIST_GENESYS,
    )
    .bounded()
    .fails_with(&["302"]);
    assert!(
        other.hits.lock().unwrap().is_empty(),
        "the other origin was contacted"
    );
}

#[test]
fn genesys_lying_page_counts() {
    // Every page claims one more page than its number: the first page's figures (2 pages,
    // total 0 users) plus slack bound the listing to 3 pages.
    let server = genesys(
        |_| genesys_token(),
        |h| {
            let n: u64 = h
                .query("pageNumber")
                .and_then(|n| n.parse().ok())
                .unwrap_or(1);
            genesys_page(h, n + 1)
        },
    );
    let run = run(
        "genesys growing pageCount",
        Vendor::Genesys,
        &server,
        LIST_GENESYS,
    );
    run.bounded()
        .fails_with(&["GET /api/v2/license/users", "listing stopped at page 3"]);
    assert_eq!(run.hits.len(), 4, "token + 3 pages: {:?}", run.hits);
}

/// The users route answers 429 with `name: value` first, then an empty last page.
fn genesys_429_once(name: &'static str, value: String) -> Hostile {
    genesys(
        |_| genesys_token(),
        move |h| {
            if h.n == 1 {
                with_headers(429, "{}", &[(name, value.as_str())])
            } else {
                genesys_page(h, 1)
            }
        },
    )
}

#[test]
fn genesys_retry_after_values() {
    let far = "Fri, 01 Jan 2100 00:00:00 GMT".to_owned();
    let past = "Thu, 01 Jan 1970 00:00:00 GMT".to_owned();
    let succeed = ["0", "1", "-1", "garbage", "1e3", "18446744073709551616"];
    for value in succeed.iter().map(|s| s.to_string()).chain([past]) {
        let server = genesys_429_once("retry-after", value.clone());
        let name: &'static str = Box::leak(format!("genesys Retry-After {value}").into_boxed_str());
        run(name, Vendor::Genesys, &server, LIST_GENESYS)
            .bounded()
            .succeeds();
    }
    for value in ["999999".to_owned(), u64::MAX.to_string(), far] {
        let server = genesys_429_once("retry-after", value.clone());
        let name: &'static str = Box::leak(format!("genesys Retry-After {value}").into_boxed_str());
        run(name, Vendor::Genesys, &server, LIST_GENESYS)
            .bounded()
            .fails_with(&["rate limited; retry after"]);
    }
}

#[test]
fn genesys_huge_headers() {
    // A 300 KiB Retry-After of digits (beyond any integer), and a 1 MiB header hyper refuses.
    let huge_number = "9".repeat(300 * 1024);
    let server = genesys_429_once("retry-after", huge_number);
    run(
        "genesys 300 KiB Retry-After",
        Vendor::Genesys,
        &server,
        LIST_GENESYS,
    )
    .bounded();
    let huge = "x".repeat(1024 * 1024);
    let server = genesys(
        |_| genesys_token(),
        move |_| with_headers(200, "{}", &[("x-huge", huge.as_str())]),
    );
    run(
        "genesys 1 MiB header",
        Vendor::Genesys,
        &server,
        LIST_GENESYS,
    )
    .bounded()
    .fails_with(&["genesys"]);
}

#[test]
fn genesys_rate_limit_reset_values() {
    for reset in [
        "100000".to_owned(),
        u64::MAX.to_string(),
        "-1".into(),
        "x".into(),
    ] {
        // The first page reports the window used up; the second page must not wait for it.
        let value = reset.clone();
        let server = genesys(
            |_| genesys_token(),
            move |h| {
                let n: u64 = h
                    .query("pageNumber")
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(1);
                let page = format!(
                    r#"{{"entities":[],"pageSize":25,"pageNumber":{n},"total":0,"pageCount":2}}"#
                );
                with_headers(
                    200,
                    page,
                    &[
                        ("inin-ratelimit-count", "300"),
                        ("inin-ratelimit-allowed", "300"),
                        ("inin-ratelimit-reset", value.as_str()),
                    ],
                )
            },
        );
        let name: &'static str =
            Box::leak(format!("genesys inin-ratelimit-reset {reset}").into_boxed_str());
        let run = run(name, Vendor::Genesys, &server, LIST_GENESYS);
        run.bounded();
        if reset.parse::<u64>().is_ok() {
            run.fails_with(&["rate limited; retry after"]);
        } else {
            run.succeeds();
        }
    }
}

#[test]
fn genesys_401_loop_is_bounded_and_not_blamed_on_the_credentials() {
    let server = genesys(
        |_| genesys_token(),
        |_| {
            status(
                401,
                r#"{"message":"no","code":"bad.credentials","status":401}"#,
            )
        },
    );
    run(
        "genesys api 401 loop",
        Vendor::Genesys,
        &server,
        LIST_GENESYS,
    )
    .bounded()
    .fails_with(&["rejected"])
    .never_says("check the credentials");
}

#[test]
fn genesys_expires_in_extremes() {
    for expires_in in ["0".to_owned(), u64::MAX.to_string()] {
        let value = expires_in.clone();
        let server = genesys(
            move |_| {
                ok(format!(
                    r#"{{"access_token":"{ACCESS_TOKEN}","token_type":"bearer","expires_in":{value}}}"#
                ))
            },
            |h| genesys_page(h, 1),
        );
        let name: &'static str =
            Box::leak(format!("genesys expires_in {expires_in}").into_boxed_str());
        run(name, Vendor::Genesys, &server, LIST_GENESYS)
            .bounded()
            .succeeds();
    }
}

#[test]
fn genesys_control_characters_in_ids_never_reach_a_url() {
    let server = genesys(|_| genesys_token(), |h| genesys_page(h, 1));
    let user = "6a3c1b4e-8f57-4d2a-9c1e-0b7d5e2f4a13";
    for product in [".\t.", "\t..", "..\n", ".\r.", "a\u{85}"] {
        let run = run(
            "genesys control-character product id",
            Vendor::Genesys,
            &server,
            &[
                "assign",
                "--provider",
                "genesys",
                "--product",
                product,
                user,
            ],
        );
        run.bounded().fails_with(&["invalid input"]);
        for hit in &run.hits {
            assert!(
                !hit.starts_with("/api/v2/license/definitions/") && hit != "/api/v2/license/",
                "{product:?} reached {hit}"
            );
        }
    }
}

#[test]
fn genesys_echoed_token_and_secret_are_redacted() {
    let server = genesys(
        |_| genesys_token(),
        |h| {
            let auth = h.authorization.clone().unwrap_or_default();
            status(
                400,
                format!(
                    r#"{{"message":"bad request from {auth} using {CLIENT_SECRET}","code":"bad.request","status":400}}"#
                ),
            )
        },
    );
    // `bounded` asserts neither secret appears in stdout or stderr.
    run(
        "genesys echoed token",
        Vendor::Genesys,
        &server,
        LIST_GENESYS,
    )
    .bounded()
    .fails_with(&["[REDACTED]"]);
}

#[test]
fn genesys_echoed_token_never_reaches_the_output_report() {
    // The definition exists; the assignment call answers 400 echoing the bearer token and the
    // client secret. The per-item report (--output) and the terminal must show neither.
    let server = genesys(
        |_| genesys_token(),
        |h| {
            if h.path().starts_with("/api/v2/license/definitions") {
                return ok(r#"{"id":"cloudCX2","name":"Genesys Cloud CX 2","permissions":[]}"#);
            }
            if h.path() == "/api/v2/license/users" && h.uri.contains("pageNumber") {
                return genesys_page(h, 1);
            }
            let auth = h.authorization.clone().unwrap_or_default();
            status(
                400,
                format!(
                    r#"{{"message":"rejected {auth} (secret {CLIENT_SECRET})","code":"bad.request","status":400}}"#
                ),
            )
        },
    );
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("licensekit.toml"),
        config(Vendor::Genesys, &server.base),
    )
    .unwrap();
    let user = "6a3c1b4e-8f57-4d2a-9c1e-0b7d5e2f4a13";
    let run = run_in(
        "genesys echoed token in report",
        dir.path(),
        &server,
        &[
            "assign",
            "--provider",
            "genesys",
            "--product",
            "cloudCX2",
            user,
            "--output",
            "report.json",
            "--format",
            "json",
        ],
    );
    run.bounded();
    let report = std::fs::read_to_string(dir.path().join("report.json")).unwrap_or_default();
    for secret in [CLIENT_SECRET, ACCESS_TOKEN] {
        assert!(!report.contains(secret), "leaked into --output: {report}");
    }
    // The vendor's text still reaches the report, with the secrets cut out.
    assert!(
        report.contains("rejected Bearer [REDACTED] (secret [REDACTED])"),
        "{report}"
    );
}

// ---------------------------------------------------------------------------------------------
// Salesforce

fn salesforce_token(hit: &Hit) -> Reply {
    ok(format!(
        r#"{{"access_token":"{ACCESS_TOKEN}","instance_url":"{}","id":"x","token_type":"Bearer","issued_at":"1"}}"#,
        hit.base
    ))
}

fn salesforce(
    token: impl Fn(&Hit) -> Reply + Send + Sync + 'static,
    api: impl Fn(&Hit) -> Reply + Send + Sync + 'static,
) -> Hostile {
    serve(move |hit| {
        if hit.path() == "/services/oauth2/token" {
            token(hit)
        } else {
            api(hit)
        }
    })
}

const LIST_SALESFORCE: &[&str] = &[
    "assignments",
    "--provider",
    "salesforce",
    "--format",
    "json",
];

/// Query pages whose `nextRecordsUrl` runs through `cycle` forever.
fn query_cycle(cycle: &'static [&'static str]) -> impl Fn(&Hit) -> Reply + Send + Sync {
    let served = AtomicUsize::new(0);
    move |hit| {
        if !hit.path().contains("/query") {
            return status(404, "[]");
        }
        let i = served.fetch_add(1, Ordering::SeqCst);
        let next = cycle[i % cycle.len()];
        ok(format!(
            r#"{{"totalSize":100000,"done":false,"nextRecordsUrl":"/services/data/v66.0/query/{next}","records":[]}}"#
        ))
    }
}

#[test]
fn salesforce_next_records_url_cycles() {
    for (cycle, name) in [
        (&["01gA-2000"][..], "salesforce cycle of 1"),
        (&["01gA-2000", "01gB-4000"][..], "salesforce cycle of 2"),
        (
            &["01gA-2000", "01gB-4000", "01gC-6000"][..],
            "salesforce cycle of 3",
        ),
    ] {
        let server = salesforce(salesforce_token, query_cycle(cycle));
        let run = run(name, Vendor::Salesforce, &server, LIST_SALESFORCE);
        run.bounded().fails_with(&["GET query", "cycle"]);
        let queries = run.hits.iter().filter(|h| h.contains("/query")).count();
        assert_eq!(queries, cycle.len() + 1, "{name}: {:?}", run.hits);
    }
}

#[test]
fn salesforce_lying_total_size() {
    // totalSize 5, then empty pages with ever-new locators.
    let served = AtomicUsize::new(0);
    let server = salesforce(salesforce_token, move |hit| {
        if !hit.path().contains("/query") {
            return status(404, "[]");
        }
        let i = served.fetch_add(1, Ordering::SeqCst);
        ok(format!(
            r#"{{"totalSize":5,"done":false,"nextRecordsUrl":"/services/data/v66.0/query/01g-{i}","records":[]}}"#
        ))
    });
    let run = run(
        "salesforce lying totalSize",
        Vendor::Salesforce,
        &server,
        LIST_SALESFORCE,
    );
    run.bounded().fails_with(&["GET query", "declared totals"]);
    assert!(run.hits.len() < 20, "{:?}", run.hits);
}

#[test]
fn salesforce_token_endless_and_503() {
    let server = salesforce(|_| Reply::Endless, |_| status(404, "[]"));
    run(
        "salesforce token endless body",
        Vendor::Salesforce,
        &server,
        LIST_SALESFORCE,
    )
    .bounded()
    .fails_with(&["65536 bytes"]);
    let server = salesforce(|_| status(503, "{}"), |_| status(404, "[]"));
    let run = run(
        "salesforce token 503",
        Vendor::Salesforce,
        &server,
        LIST_SALESFORCE,
    );
    run.bounded()
        .fails_with(&["unavailable"])
        .never_says("check the credentials");
    assert!(run.hits.len() > 1, "retried: {:?}", run.hits);
}

#[test]
fn salesforce_endless_api_body() {
    let server = salesforce(salesforce_token, |_| Reply::Endless);
    run(
        "salesforce api endless body",
        Vendor::Salesforce,
        &server,
        LIST_SALESFORCE,
    )
    .bounded()
    .fails_with(&["bytes"]);
}

// ---------------------------------------------------------------------------------------------
// Apple

const LIST_APPLE: &[&str] = &["assignments", "--provider", "apple-vpp", "--format", "json"];

/// Assignment pages answering `next(index)` as `nextPageIndex` and `total(index)` pages.
fn apple(
    next: impl Fn(u64) -> Option<u64> + Send + Sync + 'static,
    total: impl Fn(u64) -> u64 + Send + Sync + 'static,
) -> Hostile {
    serve(move |hit| {
        if !hit.path().ends_with("/assignments") {
            return ok("{}");
        }
        let index: u64 = hit
            .query("pageIndex")
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        let next = next(index).map_or(String::new(), |n| format!(r#","nextPageIndex":{n}"#));
        ok(format!(
            r#"{{"assignments":[],"currentPageIndex":{index},"totalPages":{},"versionId":"v1"{next}}}"#,
            total(index)
        ))
    })
}

#[test]
fn apple_page_cycles() {
    let server = apple(|_| Some(0), |_| 5);
    run("apple cycle of 1", Vendor::Apple, &server, LIST_APPLE)
        .bounded()
        .fails_with(&["assignments", "cycle"]);
    let server = apple(|i| Some(if i == 0 { 1 } else { 0 }), |_| 5);
    run("apple cycle of 2", Vendor::Apple, &server, LIST_APPLE)
        .bounded()
        .fails_with(&["assignments", "cycle"]);
    let server = apple(|i| Some((i + 1) % 3), |_| 5);
    run("apple cycle of 3", Vendor::Apple, &server, LIST_APPLE)
        .bounded()
        .fails_with(&["assignments", "cycle"]);
}

#[test]
fn apple_pages_beyond_the_declared_total() {
    // totalPages 3, but the pages go on.
    let server = apple(|i| Some(i + 1), |_| 3);
    run(
        "apple beyond totalPages",
        Vendor::Apple,
        &server,
        LIST_APPLE,
    )
    .bounded()
    .fails_with(&["assignments", "declared totals"]);
}

#[test]
fn apple_endless_body() {
    let server = serve(|hit| {
        if hit.path().ends_with("/assignments") {
            Reply::Endless
        } else {
            ok("{}")
        }
    });
    run("apple api endless body", Vendor::Apple, &server, LIST_APPLE)
        .bounded()
        .fails_with(&["bytes"]);
}
