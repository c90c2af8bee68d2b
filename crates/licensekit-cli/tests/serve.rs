//! `licensekit sandbox serve` in one process, `licensekit report` with the printed
//! `licensekit.toml` in another: the same figures as `report --sandbox`, over HTTP and HTTPS; and
//! the control server's calls, state and reset.
#![cfg(feature = "sandbox")]

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_licensekit");

/// A `sandbox serve` child, killed on drop.
struct Server {
    child: Child,
    config: PathBuf,
    stdout: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    fn start(dir: &Path, extra: &[&str]) -> Server {
        let config = dir.join("licensekit.toml");
        let stdout = dir.join("serve.out");
        let child = Command::new(BIN)
            .args(["sandbox", "serve", "--write-config"])
            .arg(&config)
            .args(extra)
            .current_dir(dir)
            .stdout(std::fs::File::create(&stdout).unwrap())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let server = Server {
            child,
            config,
            stdout,
        };
        let started = Instant::now();
        while !server.config.exists() {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "sandbox serve wrote no config"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        server
    }

    fn printed(&self) -> String {
        std::fs::read_to_string(&self.stdout).unwrap()
    }

    /// `host:port` of the control server, from what it printed.
    fn control(&self) -> String {
        let text = self.printed();
        let line = text.lines().find(|l| l.starts_with("control: ")).unwrap();
        let url = line.split_whitespace().nth(1).unwrap();
        url.trim_start_matches("http://").to_owned()
    }
}

/// A report as JSON without its timestamp.
fn report(args: &[&str], envs: &[(&str, &Path)], dir: &Path) -> serde_json::Value {
    let out = Command::new(BIN)
        .args(["report", "-q", "--format", "json"])
        .args(args)
        .envs(envs.iter().map(|(k, v)| (*k, *v)))
        .env("LICENSEKIT_HOME", dir)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "report failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let fields = json.as_object_mut().unwrap();
    fields.remove("generated_at");
    // The moment the report is "as of" (activity and renewals are counted from it).
    fields.remove("as_of");
    json
}

/// One plain HTTP/1.1 request; the body of the answer.
fn http(addr: &str, method: &str, path: &str) -> serde_json::Value {
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nhost: {addr}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    let (head, body) = answer.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    serde_json::from_str(body).unwrap()
}

#[test]
fn report_against_the_served_sandbox_matches_the_embedded_one() {
    let dir = tempfile::tempdir().unwrap();
    let expected = report(&["--sandbox"], &[], dir.path());
    let server = Server::start(dir.path(), &[]);
    let printed = server.printed();
    assert!(printed.contains("client_id sim-client / client_secret sim-secret"));
    assert!(printed.contains("http://127.0.0.1:"));
    let config = server.config.to_str().unwrap().to_owned();
    let served = report(&["--config", &config], &[], dir.path());
    assert_eq!(served, expected);
    assert_eq!(served["providers"].as_array().unwrap().len(), 3);

    // The control server saw the report's requests, says the state, and resets.
    let control = server.control();
    let calls = http(&control, "GET", "/calls");
    assert!(
        calls["genesys"]["GET /api/v2/license/users"]
            .as_u64()
            .unwrap()
            >= 1
    );
    assert_eq!(calls["salesforce"]["POST /services/oauth2/token"], 1);
    let state = http(&control, "GET", "/state");
    assert_eq!(state["salesforce"]["packages"]["acme"]["allowed"], 110);
    assert_eq!(state["genesys"]["licenses"]["cloudCX3"], 40);
    assert_eq!(
        state["apple-vpp"]["assets"]["1439786743/STDQ"]["assigned"],
        20
    );

    // A change, then reset: back to the seeded org, counts cleared.
    let out = Command::new(BIN)
        .args(["--config", &config, "-q", "revoke", "--product", "cloudCX3"])
        .args(["--provider", "genesys"])
        .arg(licensekit_sim::genesys::user_id(1))
        .env("LICENSEKIT_HOME", dir.path())
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        http(&control, "GET", "/state")["genesys"]["licenses"]["cloudCX3"],
        39
    );
    http(&control, "POST", "/reset");
    assert_eq!(
        http(&control, "GET", "/calls")["genesys"],
        serde_json::json!({})
    );
    assert_eq!(
        http(&control, "GET", "/state")["genesys"]["licenses"]["cloudCX3"],
        40
    );
    assert_eq!(report(&["--config", &config], &[], dir.path()), expected);
}

/// HTTPS with the generated CA, trusted through the printed config's `ca_file`: the same figures;
/// without it the certificate is refused.
#[test]
fn report_over_tls_trusting_the_printed_ca() {
    let dir = tempfile::tempdir().unwrap();
    let expected = report(&["--sandbox"], &[], dir.path());
    let ca = dir.path().join("ca.pem");
    let server = Server::start(dir.path(), &["--tls", "--ca-file", ca.to_str().unwrap()]);
    let printed = server.printed();
    assert!(printed.contains("https://127.0.0.1:"), "{printed}");
    assert!(printed.contains(ca.to_str().unwrap()));
    let toml = std::fs::read_to_string(&server.config).unwrap();
    assert!(!toml.contains("http://"), "{toml}");
    assert!(!toml.contains("allow_http"), "{toml}");
    assert_eq!(toml.matches("ca_file = ").count(), 3, "{toml}");
    let config = server.config.to_str().unwrap().to_owned();
    // The machine's own trust store is pointed elsewhere: only `ca_file` can make this work.
    let elsewhere = dir.path().join("empty.pem");
    std::fs::write(&elsewhere, "").unwrap();
    let env = [("SSL_CERT_FILE", elsewhere.as_path())];
    let served = report(&["--config", &config], &env, dir.path());
    assert_eq!(served, expected);

    let untrusting = dir.path().join("untrusting.toml");
    let without: String = toml
        .lines()
        .filter(|l| !l.starts_with("ca_file"))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(&untrusting, without).unwrap();
    let out = Command::new(BIN)
        .args(["report", "-q", "--format", "json", "--config"])
        .arg(&untrusting)
        .envs(env)
        .env("LICENSEKIT_HOME", dir.path())
        .output()
        .unwrap();
    assert!(
        !out.status.success(),
        "an untrusted certificate must be refused"
    );
}

/// `--seed-file`: the file's org is served (and its Genesys seat totals and aliases printed in
/// the config); `licensekit report` sees exactly it.
#[test]
fn a_seed_file_replaces_the_demo_org() {
    let dir = tempfile::tempdir().unwrap();
    let seed = dir.path().join("seed.toml");
    std::fs::write(
        &seed,
        r#"
[identity.aliases]
"ada.l@example.com" = "ada@example.com"

[genesys]
seat_totals = { cloudCX2 = 10 }
users = [
  { name = "Ada", email = "ada.l@example.com", licenses = ["cloudCX2"] },
  { name = "Grace", email = "grace@example.com", licenses = ["cloudCX2", "cloudCX3"] },
]

[salesforce]
packages = [{ namespace = "acme", allowed = 5 }]
users = [{ username = "ada@example.com.test", email = "ada@example.com", packages = ["acme"] }]

[apple]
assets = [{ adam_id = "361309726", total = 3 }, { adam_id = "1439786743", total = 2, kind = "book" }]
users = [{ client_user_id = "ada", email = "ada@example.com", assets = ["1439786743"] }]
devices = [{ serial = "DMP0001", assets = ["361309726"] }]
"#,
    )
    .unwrap();
    let server = Server::start(dir.path(), &["--seed-file", seed.to_str().unwrap()]);
    let toml = std::fs::read_to_string(&server.config).unwrap();
    assert!(toml.contains("\"cloudCX2\" = 10"), "{toml}");
    assert!(
        toml.contains("\"ada.l@example.com\" = \"ada@example.com\""),
        "{toml}"
    );
    let config = server.config.to_str().unwrap().to_owned();
    let report = report(&["--config", &config], &[], dir.path());
    let providers = report["providers"].as_array().unwrap();
    let figures: Vec<(String, u64)> = providers
        .iter()
        .map(|p| {
            (
                p["provider"].as_str().unwrap().to_owned(),
                p["assignments"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        figures,
        [
            ("apple-vpp".to_owned(), 2),
            ("genesys".to_owned(), 3),
            ("salesforce".to_owned(), 1)
        ]
    );
    // Ada is one person across the three vendors, through the alias.
    let ada = report["people"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["email"] == "ada@example.com")
        .unwrap();
    assert_eq!(ada["accounts"].as_array().unwrap().len(), 3, "{ada}");
}
