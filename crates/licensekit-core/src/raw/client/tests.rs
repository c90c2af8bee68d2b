//! Client-layer tests against a local axum server.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Response};
use axum::routing::any;
use secrecy::{ExposeSecret, SecretString};

use super::*;
use crate::error::ErrorKind;

const CANARY: &str = "canary-secret-7f3a9c";

type Handler = Arc<dyn Fn(usize, &HeaderMap, &str) -> Response<Body> + Send + Sync>;

#[derive(Clone)]
struct Server {
    calls: Arc<AtomicUsize>,
    paths: Arc<Mutex<Vec<String>>>,
    handler: Handler,
}

async fn route(State(server): State<Server>, request: Request) -> Response<Body> {
    let n = server.calls.fetch_add(1, Ordering::SeqCst) + 1;
    let path = request
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_default();
    server.paths.lock().unwrap().push(path.clone());
    (server.handler)(n, request.headers(), &path)
}

async fn serve(
    handler: impl Fn(usize, &HeaderMap, &str) -> Response<Body> + Send + Sync + 'static,
) -> (String, Server) {
    let server = Server {
        calls: Arc::new(AtomicUsize::new(0)),
        paths: Arc::new(Mutex::new(Vec::new())),
        handler: Arc::new(handler),
    };
    let app = Router::new()
        .fallback(any(route))
        .with_state(server.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}"), server)
}

fn json(status: u16, body: &str) -> Response<Body> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Body::from(body.to_owned()))
        .unwrap()
}

fn fast_retry() -> RetryConfig {
    RetryConfig::default()
        .with_max_attempts(4)
        .with_backoff(Duration::from_millis(1), Duration::from_millis(5))
        .with_jitter_seed(1)
}

fn client(base: &str) -> HttpClient {
    HttpClient::builder(ProviderKind::from_static("genesys"), base)
        .allow_http(true)
        .retry(fast_retry())
        .credentials(Arc::new(StaticToken::new(SecretString::from(CANARY))))
        .build()
        .unwrap()
}

#[tokio::test]
async fn retries_idempotent_requests_on_503_until_success() {
    let (base, server) = serve(|n, _, _| {
        if n < 3 {
            json(503, r#"{"message":"busy"}"#)
        } else {
            json(200, r#"{"ok":true}"#)
        }
    })
    .await;
    let value: serde_json::Value = client(&base).json(ApiRequest::get("/x")).await.unwrap();
    assert_eq!(value["ok"], true);
    assert_eq!(server.calls.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn does_not_retry_a_non_idempotent_post_on_500() {
    let (base, server) = serve(|_, _, _| json(500, r#"{"message":"boom"}"#)).await;
    let err = client(&base)
        .send(ApiRequest::post("/x"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable);
    assert_eq!(
        server.calls.load(Ordering::SeqCst),
        1,
        "a POST that may have applied is not resent"
    );
}

#[tokio::test]
async fn retries_even_a_post_on_429_honouring_retry_after() {
    let (base, server) = serve(|n, _, _| {
        if n == 1 {
            Response::builder()
                .status(429)
                .header("retry-after", "1")
                .body(Body::empty())
                .unwrap()
        } else {
            json(200, "{}")
        }
    })
    .await;
    let started = std::time::Instant::now();
    client(&base).send(ApiRequest::post("/x")).await.unwrap();
    assert!(
        started.elapsed() >= Duration::from_millis(950),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(server.calls.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn gives_up_after_max_attempts_and_says_so() {
    let (base, server) = serve(|_, _, _| json(503, r#"{"message":"down"}"#)).await;
    let err = client(&base).send(ApiRequest::get("/x")).await.unwrap_err();
    assert_eq!(server.calls.load(Ordering::SeqCst), 4);
    assert!(
        matches!(err, Error::RetriesExhausted { attempts: 4, .. }),
        "{err:?}"
    );
    assert_eq!(err.kind(), ErrorKind::Unavailable);
    assert!(
        err.to_string().contains("gave up after 4 attempts"),
        "{err}"
    );
}

#[tokio::test]
async fn gives_up_when_the_total_time_budget_is_spent() {
    let (base, server) = serve(|_, _, _| {
        Response::builder()
            .status(503)
            .header("retry-after", "1")
            .body(Body::empty())
            .unwrap()
    })
    .await;
    let client = HttpClient::builder(ProviderKind::from_static("genesys"), &base)
        .allow_http(true)
        .retry(
            fast_retry()
                .with_max_attempts(10)
                .with_max_elapsed(Duration::from_millis(1500)),
        )
        .build()
        .unwrap();
    let err = client.send(ApiRequest::get("/x")).await.unwrap_err();
    // 1st at 0 s, 2nd at 1 s; a 3rd would start at 2 s > 1.5 s.
    assert_eq!(server.calls.load(Ordering::SeqCst), 2);
    assert!(
        matches!(err, Error::RetriesExhausted { attempts: 2, .. }),
        "{err:?}"
    );
}

#[derive(Debug, Default)]
struct Counting(AtomicUsize);

#[async_trait]
impl TokenSource for Counting {
    async fn fetch(&self) -> Result<AccessToken> {
        let n = self.0.fetch_add(1, Ordering::SeqCst) + 1;
        Ok(AccessToken::new(
            SecretString::from(format!("tok-{n}")),
            Some(Duration::from_secs(3600)),
        ))
    }
}

#[tokio::test]
async fn a_401_refetches_the_token_once() {
    let (base, server) =
        serve(
            |_, headers, _| match headers.get("authorization").and_then(|v| v.to_str().ok()) {
                Some("Bearer tok-2") => json(200, "{}"),
                _ => json(401, r#"{"message":"expired"}"#),
            },
        )
        .await;
    let cache = Arc::new(TokenCache::new(Counting::default()));
    let client = HttpClient::builder(ProviderKind::from_static("genesys"), &base)
        .allow_http(true)
        .retry(fast_retry())
        .credentials(cache.clone())
        .build()
        .unwrap();
    client.send(ApiRequest::get("/x")).await.unwrap();
    assert_eq!(cache.source().0.load(Ordering::SeqCst), 2);
    assert_eq!(server.calls.load(Ordering::SeqCst), 2);
    // Next call reuses the cached token: no new fetch.
    client.send(ApiRequest::get("/x")).await.unwrap();
    assert_eq!(cache.source().0.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_401_with_a_static_token_fails_at_once() {
    let (base, server) = serve(|_, _, _| json(401, r#"{"message":"bad token"}"#)).await;
    let err = client(&base).send(ApiRequest::get("/x")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unauthenticated);
    assert_eq!(server.calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn plain_http_is_refused_unless_allowed() {
    let err = HttpClient::builder(
        ProviderKind::from_static("salesforce"),
        "http://example.com",
    )
    .build()
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
    assert!(err.to_string().contains("refusing plain HTTP"), "{err}");
    assert!(
        HttpClient::builder(
            ProviderKind::from_static("salesforce"),
            "https://example.com"
        )
        .build()
        .is_ok()
    );
}

#[tokio::test]
async fn redirects_are_not_followed() {
    let (base, server) = serve(|_, _, path| {
        if path == "/x" {
            Response::builder()
                .status(302)
                .header("location", "/elsewhere")
                .body(Body::empty())
                .unwrap()
        } else {
            json(200, "{}")
        }
    })
    .await;
    let err = client(&base).send(ApiRequest::get("/x")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Vendor);
    assert_eq!(
        server.calls.load(Ordering::SeqCst),
        1,
        "the redirect target must not be requested"
    );
}

#[tokio::test]
async fn untrusted_segments_are_percent_encoded() {
    let (base, server) = serve(|_, _, _| json(200, "{}")).await;
    let c = client(&base);
    for id in ["../admin", "a/b?c#d", "user 1"] {
        c.send(
            ApiRequest::get("/api/v2/license/users")
                .segment(id)
                .unwrap(),
        )
        .await
        .unwrap();
    }
    let paths = server.paths.lock().unwrap().clone();
    assert_eq!(
        paths,
        vec![
            "/api/v2/license/users/..%2Fadmin",
            "/api/v2/license/users/a%2Fb%3Fc%23d",
            "/api/v2/license/users/user%201",
        ]
    );
    assert!(ApiRequest::get("/x").segment("..").is_err());
    assert!(ApiRequest::get("/x").segment("").is_err());
}

#[tokio::test]
async fn next_page_links_must_stay_on_the_same_origin() {
    let (base, server) = serve(|_, _, _| json(200, "{}")).await;
    let c = client(&base);
    let foreign = Url::parse("https://attacker.example/steal").unwrap();
    let err = c
        .send(ApiRequest::absolute(Method::GET, foreign, "GET next"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert_eq!(server.calls.load(Ordering::SeqCst), 0);
    let own = Url::parse(&format!("{base}/next?page=2")).unwrap();
    c.send(ApiRequest::absolute(Method::GET, own, "GET next"))
        .await
        .unwrap();
}

#[tokio::test]
async fn oversized_bodies_and_non_json_answers_are_decode_errors() {
    let (base, server) = serve(|_, _, path| {
        if path == "/big" {
            json(200, &format!("\"{}\"", "x".repeat(5000)))
        } else {
            Response::builder()
                .status(200)
                .header("content-type", "text/html")
                .body(Body::from("<html>maintenance</html>"))
                .unwrap()
        }
    })
    .await;
    let c = HttpClient::builder(ProviderKind::from_static("genesys"), &base)
        .allow_http(true)
        .retry(fast_retry())
        .max_body_bytes(1024)
        .build()
        .unwrap();
    let err = c.send(ApiRequest::get("/big")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Decode);
    assert!(err.to_string().contains("more than 1024 bytes"), "{err}");
    assert_eq!(
        server.calls.load(Ordering::SeqCst),
        1,
        "a size limit is not retried"
    );
    let err = c
        .json::<serde_json::Value>(ApiRequest::get("/html"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Decode);
    assert!(
        err.to_string().contains("text/html") && err.to_string().contains("genesys"),
        "{err}"
    );
    assert_eq!(
        server.calls.load(Ordering::SeqCst),
        5,
        "an undecodable answer to a GET is retried"
    );
}

#[tokio::test]
async fn a_truncated_answer_is_retried_only_when_idempotent() {
    let (base, server) = serve(|n, _, _| {
        if n % 2 == 1 {
            json(200, r#"{"ok": tr"#)
        } else {
            json(200, r#"{"ok": true}"#)
        }
    })
    .await;
    let c = client(&base);
    let v: serde_json::Value = c
        .json(ApiRequest::post("/x").idempotent(true))
        .await
        .unwrap();
    assert_eq!(v["ok"], true);
    assert_eq!(server.calls.load(Ordering::SeqCst), 2);
    // A non-idempotent mutation whose answer was cut may have been applied: not resent.
    let err = c
        .json::<serde_json::Value>(ApiRequest::post("/x"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Decode);
    assert_eq!(server.calls.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn oauth2_client_credentials_fetch_and_errors() {
    let (base, server) = serve(|_, headers, path| {
        assert_eq!(path, "/oauth/token");
        let auth = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        // Basic base64("id:" + CANARY)
        let good = format!("Basic {}", base64_encode(format!("id:{CANARY}").as_bytes()));
        if auth == good {
            json(
                200,
                r#"{"access_token":"at-1","token_type":"bearer","expires_in":86399}"#,
            )
        } else {
            json(
                401,
                r#"{"error":"invalid_client","description":"client not found"}"#,
            )
        }
    })
    .await;
    let http = client(&base).reqwest().clone();
    let good = OAuth2ClientCredentials::new(
        ProviderKind::from_static("genesys"),
        http.clone(),
        format!("{base}/oauth/token"),
        "id",
        SecretString::from(CANARY),
    );
    let token = good.fetch().await.unwrap();
    assert_eq!(token.secret().expose_secret(), "at-1");
    assert!(token.expires_at().is_some());
    let bad = OAuth2ClientCredentials::new(
        ProviderKind::from_static("genesys"),
        http,
        format!("{base}/oauth/token"),
        "id",
        SecretString::from("wrong"),
    );
    let err = bad.fetch().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unauthenticated);
    assert!(err.to_string().contains("invalid_client"), "{err}");
    assert!(!format!("{good:?}").contains(CANARY));
    assert_eq!(server.calls.load(Ordering::SeqCst), 2);
}

fn base64_encode(input: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
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

/// Collects everything tracing writes.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn the_canary_secret_never_appears_in_debug_errors_or_trace_logs() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let (base, _server) = serve(|n, _, _| match n {
        1 => json(503, r#"{"message":"retry me"}"#),
        2 => json(401, r#"{"message":"bad token"}"#),
        _ => json(200, "{}"),
    })
    .await;
    let c = client(&base);
    let err = c
        .send(ApiRequest::get("/x").query("q", "v"))
        .await
        .unwrap_err();
    let mut texts = vec![
        format!("{c:?}"),
        format!("{err}"),
        format!("{err:?}"),
        format!(
            "{:?}",
            HttpClient::builder(ProviderKind::from_static("genesys"), &base)
                .credentials(Arc::new(StaticToken::new(SecretString::from(CANARY))))
        ),
    ];
    texts.push(String::from_utf8(captured.0.lock().unwrap().clone()).unwrap());
    let logs = texts.last().unwrap();
    assert!(
        logs.contains("retrying") && logs.contains("route"),
        "tracing ran: {logs}"
    );
    for text in texts {
        assert!(!text.contains(CANARY), "the secret leaked: {text}");
    }
}

// ---- issue 12 item 2 / issue 13 items 1, 3, 4, 8: hostile answers end bounded ----

fn with_header(status: u16, name: &str, value: &str) -> Response<Body> {
    Response::builder()
        .status(status)
        .header(name, value)
        .header("content-type", "application/json")
        .body(Body::from("{}"))
        .unwrap()
}

/// A 429 carrying `name: value` on the first call, then 200. Returns the outcome, the calls
/// made and the time taken.
async fn first_429_with(
    name: &'static str,
    value: String,
) -> (Result<ApiResponse>, usize, Duration) {
    let (base, server) = serve(move |n, _, _| {
        if n == 1 {
            with_header(429, name, &value)
        } else {
            json(200, "{}")
        }
    })
    .await;
    let started = std::time::Instant::now();
    let result = client(&base).send(ApiRequest::get("/x")).await;
    (
        result,
        server.calls.load(Ordering::SeqCst),
        started.elapsed(),
    )
}

#[tokio::test]
async fn every_retry_after_value_ends_within_the_budget_without_panic() {
    let far = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(86_400));
    let past = httpdate::fmt_http_date(SystemTime::now() - Duration::from_secs(86_400));
    // (value, succeeds after a retry?)
    let cases: Vec<(String, bool)> = vec![
        ("0".into(), true),
        ("1".into(), true),
        ("999999".into(), false),
        (u64::MAX.to_string(), false),
        ("18446744073709551616".into(), true), // beyond u64: ignored, backoff
        ("-5".into(), true),
        ("soon".into(), true),
        (far, false),
        (past, true),
    ];
    for (value, succeeds) in cases {
        let (result, calls, took) = first_429_with("retry-after", value.clone()).await;
        assert!(took < Duration::from_secs(5), "{value}: took {took:?}");
        if succeeds {
            assert!(result.is_ok(), "{value}: {result:?}");
            assert_eq!(calls, 2, "{value}");
        } else {
            let err = result.unwrap_err();
            assert_eq!(err.kind(), ErrorKind::RateLimited, "{value}: {err}");
            assert!(
                err.retry_after()
                    .is_some_and(|d| d > Duration::from_secs(60)),
                "{value}: the server's wait is reported: {err:?}"
            );
            assert_eq!(calls, 1, "{value}: answered at once, no second call");
        }
    }
}

#[tokio::test]
async fn an_exhausted_rate_limit_window_longer_than_max_wait_fails_at_once() {
    for reset in ["100000", &u64::MAX.to_string()] {
        let reset = reset.to_owned();
        let (base, server) = serve(move |_, _, _| {
            Response::builder()
                .status(429)
                .header("inin-ratelimit-count", "300")
                .header("inin-ratelimit-allowed", "300")
                .header("inin-ratelimit-reset", reset.as_str())
                .body(Body::empty())
                .unwrap()
        })
        .await;
        let c = client(&base);
        let started = std::time::Instant::now();
        let err = c.send(ApiRequest::get("/x")).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::RateLimited, "{err}");
        assert!(
            err.retry_after().unwrap() > Duration::from_secs(60),
            "{err:?}"
        );
        // The next request of the same client is refused before it is sent.
        let err = c.send(ApiRequest::get("/y")).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::RateLimited, "{err}");
        assert!(started.elapsed() < Duration::from_secs(2));
        assert_eq!(server.calls.load(Ordering::SeqCst), 1);
    }
}

#[tokio::test]
async fn a_retry_after_longer_than_max_wait_is_rate_limited_at_once() {
    let (base, server) = serve(|_, _, _| with_header(503, "retry-after", "30")).await;
    let client = HttpClient::builder(ProviderKind::from_static("genesys"), &base)
        .allow_http(true)
        .retry(fast_retry().with_max_wait(Duration::from_secs(10)))
        .build()
        .unwrap();
    let started = std::time::Instant::now();
    let err = client.send(ApiRequest::get("/x")).await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(server.calls.load(Ordering::SeqCst), 1);
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
}

#[tokio::test]
async fn ids_that_would_change_the_path_are_refused_before_any_request() {
    let (base, server) = serve(|_, _, _| json(200, "{}")).await;
    let c = client(&base);
    for id in [
        "", ".", "..", ".\t.", "\t..", "..\n", "a\rb", "x\u{0}", "x\u{7f}", "x\u{85}", "\u{9b}",
    ] {
        let err = match ApiRequest::get("/api/v2/license/definitions").segment(id) {
            Err(e) => e,
            Ok(request) => c.send(request).await.unwrap_err(),
        };
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{id:?}: {err}");
    }
    assert_eq!(server.calls.load(Ordering::SeqCst), 0);
    // Odd but harmless ids are sent, percent-encoded, to the intended route.
    for id in ["a/b", "%2e%2e", "a b", "é", "?x=1", "#f"] {
        c.send(
            ApiRequest::get("/api/v2/license/definitions")
                .segment(id)
                .unwrap(),
        )
        .await
        .unwrap();
    }
    let paths = server.paths.lock().unwrap().clone();
    assert!(
        paths
            .iter()
            .all(|p| p.starts_with("/api/v2/license/definitions/") && p.matches('/').count() == 5),
        "{paths:?}"
    );
}

/// A body that never ends, 64 KiB a chunk.
fn endless_body() -> Body {
    let chunk = bytes::Bytes::from(vec![b'x'; 64 * 1024]);
    Body::from_stream(futures::stream::repeat_with(move || {
        Ok::<_, std::io::Error>(chunk.clone())
    }))
}

#[tokio::test]
async fn an_endless_token_answer_is_cut_at_the_limit() {
    let (base, _server) = serve(|_, _, _| {
        Response::builder()
            .status(200)
            .header("content-type", "application/json")
            .body(endless_body())
            .unwrap()
    })
    .await;
    let oauth = OAuth2ClientCredentials::new(
        ProviderKind::from_static("genesys"),
        client(&base).reqwest().clone(),
        format!("{base}/oauth/token"),
        "id",
        SecretString::from(CANARY),
    );
    let err = oauth.fetch().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Decode, "{err}");
    assert!(err.to_string().contains("65536 bytes"), "{err}");
}

#[tokio::test]
async fn an_endless_api_answer_is_cut_at_the_limit() {
    let (base, _server) = serve(|_, _, _| {
        Response::builder()
            .status(200)
            .body(endless_body())
            .unwrap()
    })
    .await;
    let c = HttpClient::builder(ProviderKind::from_static("genesys"), &base)
        .allow_http(true)
        .max_body_bytes(1024 * 1024)
        .build()
        .unwrap();
    let err = c.send(ApiRequest::get("/x")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Decode, "{err}");
    assert!(err.to_string().contains("1048576 bytes"), "{err}");
}

/// An API behind an OAuth2 token endpoint; `token` answers the token route.
async fn oauth_api(
    token: impl Fn(usize) -> Response<Body> + Send + Sync + 'static,
    api: impl Fn(usize, &HeaderMap) -> Response<Body> + Send + Sync + 'static,
) -> (HttpClient, Arc<AtomicUsize>, Arc<AtomicUsize>) {
    let token_calls = Arc::new(AtomicUsize::new(0));
    let api_calls = Arc::new(AtomicUsize::new(0));
    let (t, a) = (token_calls.clone(), api_calls.clone());
    let (base, _server) = serve(move |_, headers, path| {
        if path.starts_with("/oauth/token") {
            token(t.fetch_add(1, Ordering::SeqCst) + 1)
        } else {
            api(a.fetch_add(1, Ordering::SeqCst) + 1, headers)
        }
    })
    .await;
    let plain = client(&base);
    let oauth = OAuth2ClientCredentials::new(
        ProviderKind::from_static("genesys"),
        plain.reqwest().clone(),
        format!("{base}/oauth/token"),
        "id",
        SecretString::from(CANARY),
    );
    let c = HttpClient::builder(ProviderKind::from_static("genesys"), &base)
        .allow_http(true)
        .retry(fast_retry())
        .build()
        .unwrap()
        .with_credentials(Arc::new(TokenCache::new(oauth)));
    (c, token_calls, api_calls)
}

fn token_ok(n: usize, expires_in: &str) -> Response<Body> {
    json(
        200,
        &format!(
            r#"{{"access_token":"at-{n}-long-enough","token_type":"bearer","expires_in":{expires_in}}}"#
        ),
    )
}

#[tokio::test]
async fn token_endpoint_429_and_503_are_retried_then_reported_by_meaning() {
    // 429 once, then a token: the request succeeds.
    let (c, tokens, _) = oauth_api(
        |n| {
            if n == 1 {
                with_header(429, "retry-after", "0")
            } else {
                token_ok(n, "3600")
            }
        },
        |_, _| json(200, "{}"),
    )
    .await;
    c.send(ApiRequest::get("/x")).await.unwrap();
    assert_eq!(tokens.load(Ordering::SeqCst), 2);

    // Always 503: Unavailable after the attempts, never "check the credentials".
    let (c, tokens, api) = oauth_api(
        |_| json(503, r#"{"message":"down"}"#),
        |_, _| json(200, "{}"),
    )
    .await;
    let err = c.send(ApiRequest::post("/x")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    assert!(!err.to_string().contains("check the credentials"), "{err}");
    assert_eq!(
        tokens.load(Ordering::SeqCst),
        4,
        "retried within max_attempts"
    );
    assert_eq!(api.load(Ordering::SeqCst), 0);

    // Always 429: RateLimited.
    let (c, _, _) = oauth_api(
        |_| with_header(429, "retry-after", "0"),
        |_, _| json(200, "{}"),
    )
    .await;
    let err = c.send(ApiRequest::get("/x")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::RateLimited, "{err}");

    // 401 invalid_client: Unauthenticated at once, with the vendor's description.
    let (c, tokens, _) = oauth_api(
        |_| {
            json(
                401,
                r#"{"error":"invalid_client","description":"authentication failed"}"#,
            )
        },
        |_, _| json(200, "{}"),
    )
    .await;
    let err = c.send(ApiRequest::get("/x")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unauthenticated, "{err}");
    assert!(
        err.to_string()
            .contains("invalid_client: authentication failed"),
        "{err}"
    );
    assert_eq!(tokens.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_401_loop_on_fresh_tokens_is_bounded_and_not_blamed_on_the_credentials() {
    let (c, tokens, api) = oauth_api(
        |n| token_ok(n, "3600"),
        |_, _| json(401, r#"{"message":"no"}"#),
    )
    .await;
    let err = c.send(ApiRequest::get("/x")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    assert!(!err.to_string().contains("check the credentials"), "{err}");
    assert_eq!(api.load(Ordering::SeqCst), 4, "max_attempts bounds it");
    assert_eq!(tokens.load(Ordering::SeqCst), 4);
}

#[tokio::test]
async fn expires_in_zero_and_u64_max_neither_panic_nor_hang() {
    for expires_in in ["0", &u64::MAX.to_string()] {
        let expires_in = expires_in.to_owned();
        let (c, tokens, _) =
            oauth_api(move |n| token_ok(n, &expires_in), |_, _| json(200, "{}")).await;
        for _ in 0..3 {
            c.send(ApiRequest::get("/x")).await.unwrap();
        }
        assert!(tokens.load(Ordering::SeqCst) <= 3);
    }
}

#[tokio::test]
async fn a_token_the_vendor_echoes_back_is_redacted_from_errors() {
    let (c, _, _) = oauth_api(
        |n| token_ok(n, "3600"),
        |_, headers| {
            let auth = headers
                .get("authorization")
                .unwrap()
                .to_str()
                .unwrap()
                .to_owned();
            json(
                400,
                &format!(r#"{{"message":"bad request for {auth} with secret {CANARY}"}}"#),
            )
        },
    )
    .await;
    let err = c.send(ApiRequest::get("/x")).await.unwrap_err();
    let text = format!(
        "{err} {err:?} {}",
        err.vendor_error()
            .map(|v| v.to_string())
            .unwrap_or_default()
    );
    assert!(!text.contains("at-1-long-enough"), "{text}");
    assert!(!text.contains(CANARY), "{text}");
    assert!(text.contains("[REDACTED]"), "{text}");
    let excerpt = body_excerpt(format!("{}{CANARY}", "y".repeat(290)).as_bytes());
    assert!(!excerpt.contains(&CANARY[..8]), "{excerpt}");
}
