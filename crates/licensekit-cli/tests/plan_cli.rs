//! `licensekit plan` and `licensekit apply` end to end: the sandbox example, a memory provider
//! whose seeded state drifts between plan and apply, confirmation without a terminal.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;

/// The binary, run in `dir` with its home (journals, pending store) in `dir/home`; stdin is not
/// a terminal.
fn licensekit(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_licensekit"))
        .args(args)
        .current_dir(dir)
        .env("LICENSEKIT_HOME", dir.join("home"))
        .env_remove("LICENSEKIT_SANDBOX_LATENCY_MS")
        .env_remove("LICENSEKIT_SANDBOX_BATCH")
        .stdin(Stdio::null())
        .output()
        .expect("the binary runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn journals(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir.join("home").join("journal"))
        .map(|d| d.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default()
}

#[cfg(all(feature = "apple-vpp", feature = "genesys", feature = "salesforce"))]
#[test]
fn the_example_plans_on_the_sandbox_and_a_saved_plan_applies() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/desired-state.toml");
    let example = example.to_str().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = licensekit(
        &[
            "plan",
            "--sandbox",
            "-q",
            example,
            "--format",
            "json",
            "--out",
            "plan.json",
        ],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let plan: Value = serde_json::from_str(&stdout(&out)).unwrap();
    let saved: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("plan.json")).unwrap())
            .unwrap();
    assert_eq!(
        plan["products"], saved["products"],
        "stdout and --out agree"
    );
    assert_eq!(plan["plan_version"], 1);
    let crm = &plan["products"][0];
    assert_eq!(crm["product_name"], "crm_tools");
    assert_eq!(crm["capacity"]["not_fitting"].as_array().unwrap().len(), 3);
    let summary = stderr(&out);
    assert!(
        summary.contains("plan: 20 to add, 32 to remove")
            && summary.contains("crm_tools (")
            && summary.contains("3 seats short"),
        "{summary}"
    );

    let table = licensekit(&["plan", "--sandbox", "-q", example], dir.path());
    assert_eq!(table.status.code(), Some(0));
    let text = stdout(&table);
    assert!(text.contains("add (DOES NOT FIT)"), "{text}");
    assert!(text.contains("Unmatched (never guessed)"), "{text}");
    assert!(journals(dir.path()).is_empty(), "a plan changes nothing");

    // A saved plan applies without a question; the short product is held back (exit 1).
    let out = licensekit(&["apply", "--sandbox", "-q", "plan.json"], dir.path());
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("held back: assign") && err.contains("the product is 3 seats short"),
        "{err}"
    );
    assert!(
        err.contains("revoke cloudCX2 at genesys: 9 applied, 0 already so"),
        "{err}"
    );
    assert_eq!(journals(dir.path()).len(), 3, "one journal per step");

    // --partial gives the fitting part: 17 removes, then 17 adds.
    let out = licensekit(
        &[
            "apply",
            "--sandbox",
            "-q",
            "plan.json",
            "--partial",
            "--format",
            "json",
        ],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let report: Value = serde_json::from_str(&stdout(&out)).unwrap();
    let steps = report["steps"].as_array().unwrap();
    assert_eq!(steps[0]["report"]["action"], "revoke");
    assert_eq!(steps[0]["report"]["items"].as_array().unwrap().len(), 17);
    assert_eq!(steps[1]["report"]["action"], "assign");
    assert_eq!(steps[1]["report"]["items"].as_array().unwrap().len(), 17);
    assert_eq!(
        report["held_back"][0]["holders"].as_array().unwrap().len(),
        3
    );
}

/// A memory provider: `app` with `seats`, users ada, bob, cy, and the seeded holders.
fn memory_config(dir: &Path, seats: u32, holders: &[&str]) {
    let held: Vec<String> = holders
        .iter()
        .map(|h| format!("{{ product = \"app\", holder = {{ kind = \"user\", id = \"{h}\" }} }}"))
        .collect();
    std::fs::write(
        dir.join("licensekit.toml"),
        format!(
            r#"
[[providers]]
provider = "memory"
products = [{{ id = "app", name = "App", seats = {seats} }}]
users = [{{ id = "ada", email = "ada@example.com" }}, {{ id = "bob", email = "bob@example.com" }}, {{ id = "cy", email = "cy@example.com" }}]
assignments = [{}]
"#,
            held.join(", ")
        ),
    )
    .unwrap();
    std::fs::write(
        dir.join("desired.toml"),
        "version = 1\n[[policy]]\nprovider = \"memory\"\nproduct = \"app\"\nmode = \"exact\"\nwho.users = [\"ada\", \"bob\"]\n",
    )
    .unwrap();
}

#[test]
fn a_drifted_state_is_refused_with_exit_2_unless_refreshed() {
    let dir = tempfile::tempdir().unwrap();
    memory_config(dir.path(), 5, &["cy"]);
    let out = licensekit(
        &["plan", "-q", "desired.toml", "--out", "plan.json"],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("plan: 2 to add, 1 to remove"),
        "{}",
        stderr(&out)
    );

    // The org as the plan saw it: applies.
    let out = licensekit(&["apply", "-q", "plan.json"], dir.path());
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("revoke app at memory: 1 applied"),
        "{}",
        stderr(&out)
    );

    // Someone gave bob the app meanwhile: refused, naming the product; nothing sent.
    memory_config(dir.path(), 5, &["cy", "bob"]);
    let before = journals(dir.path()).len();
    let out = licensekit(&["apply", "-q", "plan.json"], dir.path());
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("memory app (1 holders planned, 2 now)") && err.contains("--refresh"),
        "{err}"
    );
    assert_eq!(journals(dir.path()).len(), before, "nothing was sent");

    // --refresh plans again; the new plan must be confirmed, and there is no terminal.
    let out = licensekit(&["apply", "-q", "plan.json", "--refresh"], dir.path());
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("pass --yes"), "{}", stderr(&out));
    let out = licensekit(
        &["apply", "-q", "plan.json", "--refresh", "--yes"],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("planning again") && err.contains("plan: 1 to add, 1 to remove"),
        "{err}"
    );
}

#[test]
fn apply_of_a_desired_state_asks_first_and_needs_yes_without_a_terminal() {
    let dir = tempfile::tempdir().unwrap();
    memory_config(dir.path(), 5, &["cy"]);
    let out = licensekit(&["apply", "-q", "desired.toml"], dir.path());
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("no terminal to ask on; pass --yes"),
        "{}",
        stderr(&out)
    );
    assert!(journals(dir.path()).is_empty());

    let out = licensekit(
        &["apply", "-q", "desired.toml", "--yes", "--format", "csv"],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let csv = stdout(&out);
    assert!(csv.starts_with("provider,product_id,action,holder_kind,holder_id,status"));
    assert!(csv.contains("memory,app,revoke,user,cy,applied"), "{csv}");
    assert!(csv.contains("memory,app,assign,user,bob,applied"), "{csv}");
    let err = stderr(&out);
    assert!(
        err.contains("Policies") && err.contains("journal: "),
        "{err}"
    );

    // A capacity shortfall, everything held back: exit 2, nothing sent.
    memory_config(dir.path(), 1, &[]);
    let before = journals(dir.path()).len();
    let out = licensekit(&["apply", "-q", "desired.toml", "--yes"], dir.path());
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("1 seat short"), "{}", stderr(&out));
    assert_eq!(journals(dir.path()).len(), before);
}

#[test]
fn a_bad_desired_state_is_exit_2_naming_the_file_and_key() {
    let dir = tempfile::tempdir().unwrap();
    memory_config(dir.path(), 5, &[]);
    std::fs::write(
        dir.path().join("bad.toml"),
        "version = 1\n[[policy]]\nprovider = \"memory\"\nproduct = \"app\"\nmode = \"exact\"\nwho.user = [\"ada\"]\n",
    )
    .unwrap();
    let out = licensekit(&["plan", "bad.toml"], dir.path());
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains("bad.toml") && err.contains("user"), "{err}");

    std::fs::write(
        dir.path().join("file.toml"),
        "version = 1\n[[policy]]\nprovider = \"memory\"\nproduct = \"app\"\nmode = \"ensure\"\nwho.users_file = \"people.csv\"\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("people.csv"), "id\nada\n,oops\n").unwrap();
    let out = licensekit(&["plan", "file.toml"], dir.path());
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("people.csv: line 3"),
        "{}",
        stderr(&out)
    );

    std::fs::write(dir.path().join("people.csv"), "id\nada\n").unwrap();
    let out = licensekit(&["plan", "file.toml", "--format", "csv"], dir.path());
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("memory/app,memory,app,add,user,ada,ada@example.com"),
        "{}",
        stdout(&out)
    );

    let out = licensekit(&["plan", "-q", "missing.toml"], dir.path());
    assert_eq!(out.status.code(), Some(2));
}

/// Ctrl-C during an apply: the step in flight finishes its batches and stops, later steps are
/// never sent, the report accounts for every item, exit 130 — as `assign` does.
#[cfg(all(unix, feature = "genesys", feature = "salesforce"))]
#[test]
fn sigint_mid_apply_stops_sending_and_reports_every_item() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("desired.toml"),
        r#"
version = 1
[[policy]]
name = "cx1-for-everyone"
provider = "genesys"
product = "cloudCX1"
mode = "ensure"
who.all_active = true

[[policy]]
name = "acme-not-for-two"
provider = "salesforce"
product = "acme"
mode = "absent"
who.emails = ["person296@example.com", "person298@example.com"]
"#,
    )
    .unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_licensekit"))
        .args([
            "apply",
            "--sandbox",
            "-q",
            "--yes",
            "desired.toml",
            "--format",
            "json",
            "--output",
            "report.json",
        ])
        .current_dir(dir.path())
        .env("LICENSEKIT_HOME", dir.path().join("home"))
        .env("LICENSEKIT_SANDBOX_LATENCY_MS", "300")
        .env("LICENSEKIT_SANDBOX_BATCH", "5")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = std::time::Instant::now();
    let applied = loop {
        let done = journals(dir.path()).iter().any(|j| {
            std::fs::read_to_string(j).is_ok_and(|t| t.contains("\"status\":\"applied\""))
        });
        if done || start.elapsed() > std::time::Duration::from_secs(90) {
            break done;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    assert!(applied, "no batch was applied in time");
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = child.wait_with_output().unwrap();
    let talk = stderr(&out);
    assert_eq!(out.status.code(), Some(130), "{talk}");
    assert!(talk.contains("interrupted: sending nothing more"), "{talk}");

    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("report.json")).unwrap())
            .unwrap();
    assert_eq!(report["interrupted"], true);
    let steps = report["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 2, "{report}");
    let statuses = |step: &Value| -> Vec<String> {
        step["report"]["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| {
                format!(
                    "{}{}",
                    i["outcome"]["status"].as_str().unwrap(),
                    i["outcome"]["error_kind"]
                        .as_str()
                        .map_or(String::new(), |k| format!(":{k}"))
                )
            })
            .collect()
    };
    let first = statuses(&steps[0]);
    assert!(first.iter().any(|s| s == "applied"), "{first:?}");
    assert!(first.iter().any(|s| s == "failed:cancelled"), "{first:?}");
    assert!(
        first
            .iter()
            .all(|s| ["applied", "already_in_state", "failed:cancelled"].contains(&s.as_str())),
        "{first:?}"
    );
    assert_eq!(
        statuses(&steps[1]),
        ["failed:cancelled", "failed:cancelled"],
        "the next step was never sent"
    );
    assert_eq!(
        journals(dir.path()).len(),
        1,
        "no journal for a step never started"
    );
}

/// Changes Apple leaves pending are kept in `$LICENSEKIT_HOME/pending.json`; the next plan polls
/// their events and lists those still running as pending, with their event ids — never as new
/// adds, even while the location does not list them yet.
#[cfg(feature = "apple-vpp")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apple_changes_left_pending_are_remembered_and_planned_as_pending() {
    use licensekit_sim::apple::{AppleSeed, AppleSim, AppleSimConfig, SimHolder};

    let sim = AppleSim::start(
        AppleSeed::demo(0),
        AppleSimConfig {
            polls_until_complete: 100_000,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("licensekit.toml"),
        format!(
            "[[providers]]\nprovider = \"apple-vpp\"\nstoken = \"{}\"\nbase_url = \"{}\"\npoll_interval_secs = 0.001\npoll_timeout_secs = 0.05\n[providers.client]\nallow_http = true\n",
            sim.stoken(),
            sim.base_url()
        ),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("desired.toml"),
        "version = 1\n[[policy]]\nprovider = \"apple-vpp\"\nproduct = \"408709785\"\nmode = \"ensure\"\nwho.devices = [\"IPADX1\", \"IPADX2\"]\n",
    )
    .unwrap();
    let path = dir.path().to_owned();
    let out = tokio::task::spawn_blocking(move || {
        licensekit(
            &["apply", "-q", "--yes", "desired.toml", "--format", "json"],
            &path,
        )
    })
    .await
    .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("2 changes pending at the vendor"),
        "{}",
        stderr(&out)
    );
    let store: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("home").join("pending.json")).unwrap(),
    )
    .unwrap();
    let pending = store["pending"].as_array().unwrap().clone();
    assert_eq!(pending.len(), 2, "{store}");
    let events: Vec<String> = pending
        .iter()
        .map(|p| p["reference"].as_str().unwrap().to_owned())
        .collect();
    assert!(events.iter().all(|e| !e.is_empty()));

    // At a real location the assignments may not be listed before the event completes.
    for serial in ["IPADX1", "IPADX2"] {
        sim.revoke_directly("408709785", "STDQ", SimHolder::Serial(serial.into()));
    }
    let path = dir.path().to_owned();
    let out = tokio::task::spawn_blocking(move || {
        licensekit(&["plan", "-q", "desired.toml", "--format", "json"], &path)
    })
    .await
    .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let plan: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(
        plan["policies"][0]["adds"].as_array().unwrap().len(),
        0,
        "{plan}"
    );
    let listed: Vec<&str> = plan["products"][0]["pending"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["reference"].as_str().unwrap())
        .collect();
    assert_eq!(listed, events);
    assert!(
        stderr(&out).contains("2 pending at the vendor"),
        "{}",
        stderr(&out)
    );
}
