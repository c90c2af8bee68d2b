//! The `licensekit` binary end to end, against the sandbox's simulators.

use std::path::Path;
use std::process::{Command, Output};

#[cfg(feature = "genesys")]
use licensekit_sim::genesys::user_id;
use serde_json::Value;

/// The binary, run in `dir` with its home (journals) in `dir/home`.
fn command(args: &[&str], dir: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_licensekit"));
    command
        .args(args)
        .current_dir(dir)
        .env("LICENSEKIT_HOME", dir.join("home"))
        .env_remove("LICENSEKIT_TEST_SECRET")
        .env_remove("LICENSEKIT_SANDBOX_LATENCY_MS")
        .env_remove("LICENSEKIT_SANDBOX_BATCH");
    command
}

fn licensekit(args: &[&str], dir: &Path) -> Output {
    command(args, dir).output().expect("the binary runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[cfg(all(feature = "apple-vpp", feature = "genesys", feature = "salesforce"))]
#[test]
fn report_json_has_the_exact_figures_of_the_demo_org() {
    let dir = tempfile::tempdir().unwrap();
    let out = licensekit(
        &["report", "--sandbox", "--quiet", "--format", "json"],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let report: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(report["schema_version"], 1);
    let totals = |provider: &str| {
        report["providers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["provider"] == provider)
            .unwrap()
            .clone()
    };
    let genesys = totals("genesys");
    assert_eq!(
        (
            genesys["seats_total"].as_u64(),
            genesys["seats_assigned"].as_u64()
        ),
        (Some(191), Some(188))
    );
    assert_eq!(genesys["products_total_unknown"], 1);
    assert_eq!(genesys["holders_in_directory"], 243);
    let salesforce = totals("salesforce");
    assert_eq!(
        (
            salesforce["seats_total"].as_u64(),
            salesforce["seats_assigned"].as_u64()
        ),
        (Some(130), Some(120))
    );
    assert_eq!(salesforce["products_unlimited"], 1);

    let product = |name: &str| {
        report["products"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .unwrap()
            .clone()
    };
    let cx3 = product("Genesys Cloud CX 3");
    assert_eq!(
        (
            cx3["total"].as_u64(),
            cx3["assigned"].as_u64(),
            cx3["over_allocated_by"].as_u64()
        ),
        (Some(36), Some(40), Some(4))
    );
    assert_eq!(
        (
            cx3["total_source"].as_str(),
            cx3["assigned_source"].as_str()
        ),
        (Some("configured"), Some("counted"))
    );
    let cx1 = product("Genesys Cloud CX 1");
    assert_eq!(
        (cx1["total"].is_null(), cx1["total_source"].as_str()),
        (true, Some("unknown"))
    );
    let acme = product("acme");
    assert_eq!(
        (
            acme["total"].as_u64(),
            acme["assigned"].as_u64(),
            acme["available"].as_u64()
        ),
        (Some(110), Some(100), Some(10))
    );
    assert_eq!(acme["assigned_source"], "vendor");
    assert_eq!(product("sitewide")["unlimited"], true);

    let apple = totals("apple-vpp");
    assert_eq!(
        (
            apple["seats_total"].as_u64(),
            apple["seats_assigned"].as_u64()
        ),
        (Some(180), Some(133))
    );
    assert_eq!(apple["holders_in_directory"], 150);
    assert_eq!(
        report["devices"].as_array().unwrap().len(),
        38,
        "shared iPads are devices, not people"
    );

    // Holders: 160 in Genesys, 110 in Salesforce, 95 in Apple; 240 people, 73 in both Genesys and
    // Salesforce, 122 in at least two vendors.
    let people = report["people"].as_array().unwrap();
    assert_eq!(people.len(), 240);
    let in_two_or_more = people.iter().filter(|p| {
        let mut vendors: Vec<&str> = p["accounts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["provider"].as_str().unwrap())
            .collect();
        vendors.sort();
        vendors.dedup();
        vendors.len() >= 2
    });
    assert_eq!(in_two_or_more.count(), 122);
    let multi = people.iter().filter(|p| {
        let accounts = p["accounts"].as_array().unwrap();
        accounts.iter().any(|a| a["provider"] == "genesys")
            && accounts.iter().any(|a| a["provider"] == "salesforce")
    });
    assert_eq!(multi.count(), 73);
    // Person 100 is in Genesys under an alias ("agent.100@…") and in Salesforce by their email.
    let p100 = people
        .iter()
        .find(|p| p["email"] == "person100@example.com")
        .unwrap();
    assert_eq!(p100["accounts"].as_array().unwrap().len(), 2, "{p100}");
    // Bots without email and a holder missing from the directory: unmatched, never guessed.
    assert_eq!(report["unmatched"].as_array().unwrap().len(), 4);

    let reclaim = report["reclaim"].as_array().unwrap();
    assert_eq!(reclaim.len(), 67);
    let by_reason = |r: &str| reclaim.iter().filter(|c| c["reason"] == r).count();
    assert_eq!(
        by_reason("holder_inactive"),
        25,
        "17 Genesys, 5 Salesforce, 4 retired Apple users"
    );
    assert_eq!(by_reason("holder_unknown_to_directory"), 1);
    assert_eq!(
        by_reason("inactive_for_days"),
        41,
        "24 Genesys and 17 Salesforce seats idle 90+ days; Apple reports no sign-ins"
    );
    let idle = reclaim
        .iter()
        .find(|c| c["reason"] == "inactive_for_days")
        .unwrap();
    assert!(
        idle["last_login"].is_string() && idle["idle_days"].as_i64() >= Some(90),
        "{idle}"
    );

    // Money from the demo contracts, per currency, never mixed: EUR = 125 × 900 + 36 × 1860
    // + 30 × 240 (Genesys); USD = 120 × 9.99 + 40 × 14.99 (Apple) + 110 × 300 + 20 × 480
    // (Salesforce).
    let costs: Vec<(&str, &str, &str)> = report["costs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["currency"].as_str().unwrap(),
                c["annual_cost"].as_str().unwrap(),
                c["unassigned_cost"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        costs,
        vec![
            ("EUR", "186660.00", "5040.00"),
            ("USD", "44398.40", "3479.53")
        ]
    );
    let cx2 = product("Genesys Cloud CX 2");
    assert_eq!(
        (
            cx2["total_source"].as_str(),
            cx2["cost"]["annual_cost"].as_str(),
            cx2["cost"]["source"].as_str()
        ),
        (Some("configured"), Some("112500.00"), Some("configured"))
    );
    let renewals: Vec<(&str, i64)> = report["renewals"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["product_name"].as_str().unwrap(),
                r["days_left"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        renewals,
        vec![("acme", 30), ("Genesys Cloud CX 2", 45), ("crm_tools", 75)]
    );
    assert!(
        reclaim
            .iter()
            .all(|c| c["holder"]["id"].is_string() && c["product_id"].is_string())
    );
}

#[cfg(all(feature = "apple-vpp", feature = "genesys", feature = "salesforce"))]
#[test]
fn report_csv_and_table() {
    let dir = tempfile::tempdir().unwrap();
    let out = licensekit(
        &["report", "--sandbox", "-q", "--format", "csv"],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(0));
    let csv = stdout(&out);
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines[0],
        "provider,product_id,name,total,total_source,assigned,assigned_source,available,utilization_pct,over_allocated_by,vendor_total,reclaimable,currency,price_per_seat,period,annual_cost,unassigned_cost,reclaimable_cost,renewal"
    );
    assert_eq!(lines.len(), 11, "10 products");
    assert!(
        lines.iter().any(|l| l.starts_with(
            "genesys,cloudCX3,Genesys Cloud CX 3,36,configured,40,counted,0,111.1,4,,19,EUR,155.00,month,66960.00,0,35340.00,"
        )),
        "{csv}"
    );

    let out = licensekit(
        &[
            "report",
            "--sandbox",
            "-q",
            "--format",
            "csv",
            "--section",
            "reclaim",
            "--output",
            "reclaim.csv",
        ],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(0));
    let written = std::fs::read_to_string(dir.path().join("reclaim.csv")).unwrap();
    assert_eq!(written.lines().count(), 68, "header + 67 candidates");
    let out = licensekit(
        &[
            "report",
            "--sandbox",
            "-q",
            "--format",
            "csv",
            "--section",
            "reclaim",
            "--inactive-days",
            "0",
        ],
        dir.path(),
    );
    assert_eq!(
        stdout(&out).lines().count(),
        27,
        "header + 26 candidates: 0 turns the sign-in check off"
    );
    let out = licensekit(
        &[
            "report",
            "--sandbox",
            "-q",
            "--format",
            "csv",
            "--section",
            "renewals",
            "--renewal-days",
            "44",
        ],
        dir.path(),
    );
    let renewals = stdout(&out);
    assert_eq!(
        renewals.lines().count(),
        2,
        "only acme renews within 44 days: {renewals}"
    );
    assert!(
        renewals.lines().nth(1).unwrap().contains(",acme,"),
        "{renewals}"
    );

    let out = licensekit(&["report", "--sandbox", "-q"], dir.path());
    let table = stdout(&out);
    assert!(table.contains("OVER-ALLOCATED by 4"), "{table}");
    assert!(table.contains("Reclaim candidates: 67"), "{table}");
    assert!(
        table.contains("EUR") && table.contains("186660.00") && table.contains("44398.40"),
        "{table}"
    );
    assert!(table.contains("Renewals within 90 days: 3"), "{table}");
    assert!(
        table.contains(
            "240 matched by email (122 in more than one vendor); 4 holders unmatched; 38 devices"
        ),
        "{table}"
    );
}

#[cfg(feature = "genesys")]
#[test]
fn assign_with_valid_duplicate_and_unknown_holders_exits_1_with_a_full_report() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("users.csv"),
        format!("user_id,comment\n{},holds cloudCX3 already\n00000000-0000-4000-8000-00000000dead,unknown\n", user_id(1)),
    )
    .unwrap();
    let out = licensekit(
        &[
            "assign",
            "--sandbox",
            "-q",
            "--provider",
            "genesys",
            "--product",
            "cloudCX3",
            &user_id(3),
            "bad/id",
            "--users-file",
            "users.csv",
            "--output",
            "outcomes.json",
        ],
        dir.path(),
    );
    assert_eq!(
        out.status.code(),
        Some(1),
        "partial failure: {}",
        stderr(&out)
    );
    assert!(
        stderr(&out).contains(
            "assign cloudCX3 at genesys: 1 applied, 1 already so, 0 pending, 2 failed (of 4)"
        ),
        "{}",
        stderr(&out)
    );
    assert!(stdout(&out).is_empty(), "the report went to --output");
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("outcomes.json")).unwrap())
            .unwrap();
    let items = report["items"].as_array().unwrap();
    let statuses: Vec<&str> = items
        .iter()
        .map(|i| i["outcome"]["status"].as_str().unwrap())
        .collect();
    assert_eq!(
        statuses,
        vec!["applied", "failed", "already_in_state", "failed"]
    );
    assert_eq!(items[1]["outcome"]["error_kind"], "invalid_input");
    assert_eq!(items[3]["outcome"]["error_kind"], "not_found");

    let out = licensekit(
        &[
            "revoke",
            "--sandbox",
            "-q",
            "--provider",
            "genesys",
            "--product",
            "cloudCX3",
            &user_id(1),
        ],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(0));
    assert!(stderr(&out).contains("1 applied"), "{}", stderr(&out));
}

#[test]
fn config_errors_exit_2_naming_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let out = licensekit(&["products"], dir.path());
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("cannot read licensekit.toml"),
        "{}",
        stderr(&out)
    );

    std::fs::write(
        dir.path().join("licensekit.toml"),
        "[[providers]]\nprovider = \"memory\"\nprodcts = []\n",
    )
    .unwrap();
    let out = licensekit(&["products"], dir.path());
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("licensekit.toml: providers[0] (memory)")
            && stderr(&out).contains("prodcts"),
        "{}",
        stderr(&out)
    );

    std::fs::write(
        dir.path().join("other.toml"),
        "[[providers]]\nprovider = \"genesys\"\nclient_id = \"x\"\nclient_secret_env = \"LICENSEKIT_TEST_SECRET\"\n",
    )
    .unwrap();
    let out = licensekit(&["--config", "other.toml", "report"], dir.path());
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("other.toml: providers[0].client_secret_env names the environment variable LICENSEKIT_TEST_SECRET, which is not set"),
        "{}",
        stderr(&out)
    );

    let out = licensekit(&["assign", "--product", "x"], dir.path());
    assert_eq!(out.status.code(), Some(2), "usage errors exit 2");
}

#[test]
fn a_memory_provider_from_the_config_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("licensekit.toml"),
        r#"
[identity.aliases]
"ada.l@example.com" = "ada@example.com"

[[providers]]
provider = "memory"
products = [{ id = "app", name = "App", seats = 2 }]
users = [{ id = "ada", email = "ada.l@example.com" }, { id = "bob", email = "bob@example.com" }]
assignments = [{ product = "app", holder = { kind = "user", id = "ada" } }]
"#,
    )
    .unwrap();
    let out = licensekit(
        &["report", "-q", "--format", "csv", "--section", "holdings"],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "email,provider,product_id,product_name\nada@example.com,memory,app,App\n"
    );
    let out = licensekit(
        &["assign", "-q", "--product", "app", "bob", "carol"],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("1 applied, 0 already so, 0 pending, 1 failed (of 2)"),
        "{}",
        stderr(&out)
    );
}

/// A config with one memory provider: product `app` (unlimited seats), users `u0000`…, the first
/// `assigned` of them holding `app`.
fn memory_config(dir: &Path, users: usize, assigned: usize) {
    let mut text = String::from(
        "[[providers]]\nprovider = \"memory\"\nproducts = [{ id = \"app\", name = \"App\" }]\nusers = [\n",
    );
    for i in 0..users {
        text.push_str(&format!(
            "  {{ id = \"u{i:04}\", email = \"u{i:04}@example.com\" }},\n"
        ));
    }
    text.push_str("]\nassignments = [\n");
    for i in 0..assigned {
        text.push_str(&format!(
            "  {{ product = \"app\", holder = {{ kind = \"user\", id = \"u{i:04}\" }} }},\n"
        ));
    }
    text.push_str("]\n");
    std::fs::write(dir.join("licensekit.toml"), text).unwrap();
}

/// The journals written under `dir/home`.
fn journals(dir: &Path) -> Vec<std::path::PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir.join("home").join("journal")) else {
        return Vec::new();
    };
    let mut paths: Vec<_> = entries.map(|e| e.unwrap().path()).collect();
    paths.sort();
    paths
}

fn journal_lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn assign_format_json_prints_only_json_and_journal_show_prints_the_same_report() {
    let dir = tempfile::tempdir().unwrap();
    memory_config(dir.path(), 3, 1);
    let out = licensekit(
        &[
            "assign",
            "--product",
            "app",
            "--format",
            "json",
            "u0000",
            "u0001",
            "u0001",
            "nobody",
        ],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let report: Value = serde_json::from_str(&stdout(&out)).expect("stdout is one JSON document");
    let statuses: Vec<&str> = report["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["outcome"]["status"].as_str().unwrap())
        .collect();
    assert_eq!(
        statuses,
        ["already_in_state", "applied", "duplicate", "failed"]
    );
    assert_eq!(report["items"][2]["outcome"]["duplicate_of"], 1);
    let talk = stderr(&out);
    assert!(
        talk.contains(
            "assign app at memory: 1 applied, 1 already so, 0 pending, 1 failed, 1 duplicate (of 4)"
        ),
        "{talk}"
    );
    let [journal] = journals(dir.path()).try_into().expect("one journal");
    assert!(
        talk.contains(&format!("journal: {}", journal.display())),
        "{talk}"
    );
    let lines = journal_lines(&journal);
    assert_eq!(lines[0]["type"], "start");
    assert_eq!(lines.last().unwrap()["type"], "end");
    let settled = lines.iter().filter(|l| l["type"] == "settled").count();
    assert_eq!(settled, 4, "one line per item");

    let shown = licensekit(
        &[
            "journal",
            "show",
            journal.to_str().unwrap(),
            "--format",
            "json",
        ],
        dir.path(),
    );
    assert_eq!(shown.status.code(), Some(1), "{}", stderr(&shown));
    let again: Value = serde_json::from_str(&stdout(&shown)).unwrap();
    assert_eq!(again, report, "journal show gives the run's report");
    assert!(stderr(&shown).contains("1 applied, 1 already so"));
}

#[test]
fn an_unwritable_output_or_a_bad_users_file_stops_before_the_change() {
    let dir = tempfile::tempdir().unwrap();
    memory_config(dir.path(), 2, 0);
    std::fs::create_dir(dir.path().join("a-directory")).unwrap();
    for output in ["a-directory", "missing/dir/out.json"] {
        let out = licensekit(
            &[
                "assign",
                "-q",
                "--product",
                "app",
                "u0000",
                "--output",
                output,
            ],
            dir.path(),
        );
        assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
        assert!(
            stderr(&out).contains(&format!("cannot write --output {output}")),
            "{}",
            stderr(&out)
        );
        assert!(journals(dir.path()).is_empty(), "stopped before the change");
    }

    std::fs::write(
        dir.path().join("users.csv"),
        "user_id\r\nu0000\r\n,oops\r\n",
    )
    .unwrap();
    let out = licensekit(
        &[
            "assign",
            "--product",
            "app",
            "--users-file",
            "users.csv",
            "--output",
            "new.json",
        ],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("users.csv: line 3: no holder id"),
        "{}",
        stderr(&out)
    );
    assert!(journals(dir.path()).is_empty(), "stopped before the change");
    assert!(!dir.path().join("new.json").exists(), "nothing written");
}

#[test]
fn users_files_with_bom_crlf_quotes_comments_and_duplicates() {
    let dir = tempfile::tempdir().unwrap();
    memory_config(dir.path(), 4, 0);
    std::fs::write(
        dir.path().join("users.csv"),
        "\u{feff}\"name, full\",User ID\r\n# a comment\r\n\r\n\"Doe, Jane\",u0001\r\nRoe,\"u0002\"\r\n\"x\",u0001\r\n",
    )
    .unwrap();
    let out = licensekit(
        &[
            "assign",
            "--product",
            "app",
            "--users-file",
            "users.csv",
            "--format",
            "csv",
        ],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let csv = stdout(&out);
    let rows: Vec<&str> = csv.lines().collect();
    assert_eq!(
        rows,
        [
            "index,holder_kind,holder_id,status,reference,duplicate_of,reason,error_kind,error",
            "0,user,u0001,applied,,,,,",
            "1,user,u0002,applied,,,,,",
            "2,user,u0001,duplicate,,0,,,",
        ],
        "the header row, the BOM and the quotes are not ids; the repeat is a duplicate"
    );
}

/// `licensekit … | head -1` with more output than a pipe holds: the writer meets a closed pipe.
#[cfg(unix)]
#[test]
fn a_closed_pipe_ends_quietly() {
    let dir = tempfile::tempdir().unwrap();
    memory_config(dir.path(), 3000, 2000);
    let holders: Vec<String> = (1000..3000).map(|i| format!("u{i:04}")).collect();
    for args in [
        "assignments --format json".to_string(),
        "assignments --format csv".to_string(),
        // Streamed as they are written (never one string in memory).
        "report --format json".to_string(),
        "report --format csv --section holdings".to_string(),
        format!("assign --product app --format json {}", holders.join(" ")),
        format!("assign --product app {}", holders.join(" ")),
    ] {
        let script = format!(
            "\"$0\" -q {args} 2>err.txt | head -1 >first.txt; echo \"${{PIPESTATUS[0]}}\" >status.txt"
        );
        let status = Command::new("bash")
            .args(["-c", &script, env!("CARGO_BIN_EXE_licensekit")])
            .current_dir(dir.path())
            .env("LICENSEKIT_HOME", dir.path().join("home"))
            .status()
            .unwrap();
        assert!(status.success());
        let read = |f: &str| std::fs::read_to_string(dir.path().join(f)).unwrap();
        let code = read("status.txt");
        let err = read("err.txt");
        assert!(
            !err.contains("panicked") && !err.contains("rror"),
            "{args}: {err}"
        );
        assert_eq!(code.trim(), "0", "{args}: {err}");
        assert_eq!(read("first.txt").lines().count(), 1);
    }
}

#[test]
fn a_canary_env_value_never_appears_in_a_config_error() {
    let dir = tempfile::tempdir().unwrap();
    let canary = "canary-0f9e8d7c";
    std::fs::write(
        dir.path().join("licensekit.toml"),
        "[[providers]]\nprovider = \"memory\"\npage_size_env = \"LICENSEKIT_TEST_SECRET\"\n",
    )
    .unwrap();
    let out = command(&["products"], dir.path())
        .env("LICENSEKIT_TEST_SECRET", canary)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let all = format!("{}{}", stdout(&out), stderr(&out));
    assert!(!all.contains(canary), "{all}");
    assert!(all.contains("$LICENSEKIT_TEST_SECRET"), "{all}");
}

/// A panic is reported as a bug, exit 70, with the journal marked; never Rust's 101.
#[test]
fn a_panic_exits_70_after_marking_the_journal() {
    let dir = tempfile::tempdir().unwrap();
    memory_config(dir.path(), 2, 0);
    let out = command(&["assign", "--product", "app", "u0000"], dir.path())
        .env("LICENSEKIT_DEBUG_PANIC", "1")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(70), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("internal error in licensekit (a bug; please report it)"),
        "{}",
        stderr(&out)
    );
    let [journal] = journals(dir.path()).try_into().expect("one journal");
    assert_eq!(journal_lines(&journal).last().unwrap()["type"], "abandoned");
}

/// Waits up to `limit` for `ready`, polling.
#[cfg(feature = "genesys")]
fn wait_for(limit: std::time::Duration, mut ready: impl FnMut() -> bool) -> bool {
    let start = std::time::Instant::now();
    while start.elapsed() < limit {
        if ready() {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    false
}

/// Sends a real SIGINT to the process, as a terminal's Ctrl-C does.
#[cfg(all(unix, feature = "genesys"))]
fn sigint(pid: u32) {
    let status = Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// A slow sandbox assign of cloudCX3 to the 240 Genesys agents (200 to change, 5 per batch),
/// writing the report to `report.json`; returns once the first batch has been applied.
#[cfg(all(unix, feature = "genesys"))]
fn slow_assign(dir: &Path, latency_ms: u32) -> (std::process::Child, std::path::PathBuf) {
    let ids: Vec<String> = (0..240).map(user_id).collect();
    let mut args = vec![
        "assign",
        "--sandbox",
        "-q",
        "--provider",
        "genesys",
        "--product",
        "cloudCX3",
        "--format",
        "json",
        "--output",
        "report.json",
    ];
    args.extend(ids.iter().map(String::as_str));
    let child = command(&args, dir)
        .env("LICENSEKIT_SANDBOX_LATENCY_MS", latency_ms.to_string())
        .env("LICENSEKIT_SANDBOX_BATCH", "5")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut journal = None;
    let applied = wait_for(std::time::Duration::from_secs(60), || {
        journal = journals(dir).into_iter().next();
        journal.as_ref().is_some_and(|j| {
            std::fs::read_to_string(j).is_ok_and(|t| t.contains("\"status\":\"applied\""))
        })
    });
    assert!(applied, "no batch was applied within a minute");
    (child, journal.unwrap())
}

#[cfg(all(unix, feature = "genesys"))]
#[test]
fn sigint_mid_assign_finishes_in_flight_batches_writes_the_report_and_exits_130() {
    let dir = tempfile::tempdir().unwrap();
    let (child, journal) = slow_assign(dir.path(), 300);
    sigint(child.id());
    let out = child.wait_with_output().unwrap();
    let talk = stderr(&out);
    assert_eq!(out.status.code(), Some(130), "{talk}");
    assert!(talk.contains("interrupted: sending nothing more"), "{talk}");
    assert!(!talk.contains("panicked"), "{talk}");

    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("report.json")).unwrap())
            .unwrap();
    assert_eq!(report["interrupted"], true);
    let items = report["items"].as_array().unwrap();
    assert_eq!(items.len(), 240, "one outcome per requested item");
    let count = |status: &str, kind: Option<&str>| {
        items
            .iter()
            .filter(|i| {
                i["outcome"]["status"] == status
                    && kind.is_none_or(|k| i["outcome"]["error_kind"] == k)
            })
            .count()
    };
    let (applied, already, cancelled) = (
        count("applied", None),
        count("already_in_state", None),
        count("failed", Some("cancelled")),
    );
    assert!(
        applied > 0 && cancelled > 0,
        "stopped mid-run: {applied} applied, {cancelled} cancelled"
    );
    assert_eq!(
        applied + already + cancelled,
        240,
        "in-flight batches finished; nothing is unknown"
    );
    assert!(
        talk.contains(&format!("; interrupted: {cancelled} not sent")),
        "{talk}"
    );

    // The journal has every settled item, as the report has it, and the end of the run.
    let lines = journal_lines(&journal);
    let mut settled = std::collections::BTreeMap::new();
    for line in lines.iter().filter(|l| l["type"] == "settled") {
        settled.insert(
            line["index"].as_u64().unwrap() as usize,
            line["outcome"].clone(),
        );
    }
    assert_eq!(settled.len(), 240);
    for (index, outcome) in &settled {
        assert_eq!(outcome, &items[*index]["outcome"], "item {index}");
    }
    // Sent items settled from the vendor's answer; cancelled ones were never sent.
    let sent: std::collections::HashSet<&str> = lines
        .iter()
        .filter(|l| l["type"] == "sent")
        .flat_map(|l| l["holders"].as_array().unwrap())
        .map(|h| h["id"].as_str().unwrap())
        .collect();
    assert!(!sent.is_empty());
    for item in items {
        let id = item["holder"]["id"].as_str().unwrap();
        let status = item["outcome"]["status"].as_str().unwrap();
        if sent.contains(id) {
            assert!(["applied", "already_in_state"].contains(&status), "{item}");
        } else {
            assert_ne!(status, "applied", "{item}");
        }
    }
    let end = lines.last().unwrap();
    assert_eq!(
        (&end["type"], &end["interrupted"]),
        (&"end".into(), &true.into())
    );

    let shown = licensekit(
        &[
            "journal",
            "show",
            journal.to_str().unwrap(),
            "--format",
            "json",
        ],
        dir.path(),
    );
    let again: Value = serde_json::from_str(&stdout(&shown)).unwrap();
    assert_eq!(again, report);
}

#[cfg(all(unix, feature = "genesys"))]
#[test]
fn a_second_sigint_quits_at_once_leaving_the_journal() {
    let dir = tempfile::tempdir().unwrap();
    let (child, journal) = slow_assign(dir.path(), 1500);
    sigint(child.id());
    std::thread::sleep(std::time::Duration::from_millis(150));
    let second = std::time::Instant::now();
    sigint(child.id());
    let out = child.wait_with_output().unwrap();
    assert!(
        second.elapsed() < std::time::Duration::from_millis(1000),
        "quit at once, not after the in-flight batches (1.5 s each)"
    );
    let talk = stderr(&out);
    assert_eq!(out.status.code(), Some(130), "{talk}");
    assert!(
        talk.contains(&format!(
            "interrupted again: quitting now; every item settled so far is in the journal {}",
            journal.display()
        )),
        "{talk}"
    );
    let lines = journal_lines(&journal);
    assert_eq!(lines.last().unwrap()["type"], "abandoned");
    // Read back, the batches in flight are unconfirmed, never guessed.
    let shown = licensekit(
        &[
            "journal",
            "show",
            journal.to_str().unwrap(),
            "--format",
            "json",
        ],
        dir.path(),
    );
    assert_eq!(shown.status.code(), Some(1));
    let report: Value = serde_json::from_str(&stdout(&shown)).unwrap();
    assert_eq!(report["interrupted"], true);
    let unconfirmed = report["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["outcome"]["status"] == "unconfirmed")
        .count();
    assert!(unconfirmed > 0, "{report}");
    assert!(
        stderr(&shown).contains("unconfirmed: state unknown, re-run to settle"),
        "{}",
        stderr(&shown)
    );
}

/// Against a Genesys simulator whose client secret is a canary, read from `*_env`.
#[cfg(feature = "genesys")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn output_checked_before_any_request_and_the_secret_never_written() {
    use licensekit_sim::genesys::{GenesysSeed, GenesysSim, GenesysSimConfig};

    let canary = "canary-3b1d9e77f0";
    let sim = GenesysSim::start(
        GenesysSeed::demo(10),
        GenesysSimConfig {
            client_secret: canary.into(),
            ..GenesysSimConfig::default()
        },
    )
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("licensekit.toml"),
        format!(
            "[[providers]]\nprovider = \"genesys\"\nbase_url = \"{}\"\nclient_id = \"sim-client\"\nclient_secret_env = \"LICENSEKIT_TEST_SECRET\"\n[providers.client]\nallow_http = true\n",
            sim.base_url()
        ),
    )
    .unwrap();
    let run = |args: &[&str], secret: &str| {
        let mut cmd = command(args, dir.path());
        cmd.env("LICENSEKIT_TEST_SECRET", secret);
        tokio::task::spawn_blocking(move || cmd.output().unwrap())
    };
    let (one, two) = (user_id(1), user_id(2));

    std::fs::create_dir(dir.path().join("out")).unwrap();
    let out = run(
        &["assign", "--product", "cloudCX3", &one, "--output", "out"],
        canary,
    )
    .await
    .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert_eq!(
        sim.calls().total(),
        0,
        "no request before --output was checked"
    );
    assert_eq!(sim.tokens_issued(), 0);

    let out = run(
        &[
            "assign",
            "--product",
            "cloudCX3",
            &one,
            &two,
            "00000000-0000-4000-8000-00000000dead",
            "--output",
            "report.json",
        ],
        canary,
    )
    .await
    .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(sim.calls().total() > 0);
    // A wrong secret: refused, a configuration problem (exit 2), the value never shown.
    let wrong = "canary-wrong-5e6f7a";
    let refused = run(&["products"], wrong).await.unwrap();
    assert_eq!(refused.status.code(), Some(2), "{}", stderr(&refused));
    // The report finds it only when it reads the provider: still a configuration problem.
    let report_refused = run(&["report", "--format", "json"], wrong).await.unwrap();
    assert_eq!(
        report_refused.status.code(),
        Some(2),
        "{}",
        stderr(&report_refused)
    );
    assert!(!stderr(&report_refused).contains(wrong));

    let mut everything = vec![
        stdout(&out),
        stderr(&out),
        stdout(&refused),
        stderr(&refused),
        std::fs::read_to_string(dir.path().join("report.json")).unwrap(),
    ];
    for journal in journals(dir.path()) {
        everything.push(std::fs::read_to_string(journal).unwrap());
    }
    for text in everything {
        assert!(!text.contains(canary) && !text.contains(wrong), "{text}");
    }
}

#[cfg(feature = "apple-vpp")]
#[test]
fn an_id_the_vendor_cannot_take_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = licensekit(
        &[
            "assignments",
            "--sandbox",
            "-q",
            "--provider",
            "apple-vpp",
            "--product",
            "%",
        ],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stdout(&out).is_empty());
}

/// `events`: a saved report's pending items are polled and printed as a report; an event that
/// cannot be read leaves its item pending (Apple accepted it), and a vendor without events is a
/// usage error.
#[cfg(feature = "apple-vpp")]
#[test]
fn events_settle_a_saved_report_and_never_fail_an_accepted_event() {
    let dir = tempfile::tempdir().unwrap();
    let saved = serde_json::json!({
        "provider": "apple-vpp",
        "product": "361309726:STDQ",
        "action": "assign",
        "items": [
            {"holder": {"kind": "user", "id": "user-0001"}, "outcome": {"status": "pending", "reference": "no-such-event"}},
            {"holder": {"kind": "user", "id": "user-0002"}, "outcome": {"status": "already_in_state"}}
        ]
    });
    std::fs::write(dir.path().join("saved.json"), saved.to_string()).unwrap();
    let out = licensekit(
        &[
            "events",
            "--sandbox",
            "-q",
            "--settle",
            "saved.json",
            "--format",
            "json",
        ],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let report: Value = serde_json::from_str(&stdout(&out)).expect("only JSON on stdout");
    assert_eq!(report["items"][0]["outcome"]["status"], "pending");
    assert_eq!(report["items"][0]["outcome"]["reference"], "no-such-event");
    assert_eq!(report["items"][1]["outcome"]["status"], "already_in_state");

    let out = licensekit(&["events", "--sandbox", "-q"], dir.path());
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    #[cfg(feature = "genesys")]
    {
        let out = licensekit(
            &["events", "--sandbox", "-q", "--provider", "genesys", "x"],
            dir.path(),
        );
        assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
        assert!(stderr(&out).contains("no events"), "{}", stderr(&out));
    }
}

/// `[[contracts]]` from the config file: seats override the vendor's, prices give cost per
/// currency, the deprecated Genesys `seat_totals` is read with a warning, a contract for a
/// product nobody lists is a warning, and a bad contract is exit 2 naming it.
#[test]
fn contracts_from_the_config_file_price_the_report() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("licensekit.toml"),
        r#"
[[providers]]
provider = "memory"
products = [{ id = "app", name = "App", seats = 2 }, { id = "suite", name = "Suite", seats = 3 }]
users = [{ id = "ada", email = "ada@example.com" }]
assignments = [{ product = "app", holder = { kind = "user", id = "ada" } }]

[[contracts]]
provider = "memory"
product = "app"
seats = 4
price_per_seat = "12.50"
currency = "EUR"
period = "month"
renewal = 2099-01-01

[[contracts]]
provider = "memory"
product = "suite"
price_per_seat = 100
currency = "USD"
period = "year"

[[contracts]]
provider = "memory"
product = "retired-product"
seats = 1
"#,
    )
    .unwrap();
    let out = licensekit(&["report", "--format", "json"], dir.path());
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let app = &report["products"][0];
    assert_eq!(
        (
            app["total"].as_u64(),
            app["total_source"].as_str(),
            app["vendor_total"].as_u64()
        ),
        (Some(4), Some("configured"), Some(2))
    );
    assert_eq!(app["cost"]["annual_cost"], "600.00");
    assert_eq!(app["cost"]["unassigned_cost"], "450.00");
    assert_eq!(app["renewal"], "2099-01-01");
    let costs: Vec<(&str, &str)> = report["costs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["currency"].as_str().unwrap(),
                c["annual_cost"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(costs, vec![("EUR", "600.00"), ("USD", "300")]);
    assert!(
        stderr(&out).contains("contract for memory product `retired-product` matches no product"),
        "{}",
        stderr(&out)
    );

    let out = licensekit(&["report", "--format", "html", "-o", "r.html"], dir.path());
    assert_eq!(out.status.code(), Some(0));
    let html = std::fs::read_to_string(dir.path().join("r.html")).unwrap();
    assert!(html.contains(r#"data-value="600.00">600.00 EUR"#), "{html}");

    std::fs::write(
        dir.path().join("bad.toml"),
        "[[providers]]\nprovider = \"memory\"\n[[contracts]]\nprovider = \"memory\"\nproduct = \"app\"\nprice_per_seat = 1\ncurrency = \"EUR\"\n",
    )
    .unwrap();
    let out = licensekit(&["--config", "bad.toml", "report"], dir.path());
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains(
            "bad.toml: contracts[0]: contract memory app: `price_per_seat` needs a `period`"
        ),
        "{}",
        stderr(&out)
    );

    std::fs::write(
        dir.path().join("old.toml"),
        "[[providers]]\nprovider = \"memory\"\n[[providers]]\nprovider = \"genesys\"\nclient_id = \"x\"\nclient_secret = \"y\"\nbase_url = \"http://127.0.0.1:9\"\nseat_totals = { cloudCX2 = 5 }\n[providers.client]\nallow_http = true\n",
    )
    .unwrap();
    let out = licensekit(
        &["--config", "old.toml", "products", "--provider", "memory"],
        dir.path(),
    );
    assert!(
        stderr(&out).contains("old.toml: providers[1].seat_totals is deprecated"),
        "{}",
        stderr(&out)
    );
}

/// The terminal table shows the first 200 holders of a per-holder section and says how many
/// more there are and where they are all listed; the CSV lists every one.
#[test]
fn the_report_table_cuts_long_holder_lists_and_names_the_csv_that_has_them_all() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = String::from(
        "[[providers]]\nprovider = \"memory\"\nproducts = [{ id = \"app\", name = \"App\" }]\nusers = [\n",
    );
    // No email: every holder is unmatched.
    for i in 0..250 {
        text.push_str(&format!("  {{ id = \"u{i:04}\" }},\n"));
    }
    text.push_str("]\nassignments = [\n");
    for i in 0..250 {
        text.push_str(&format!(
            "  {{ product = \"app\", holder = {{ kind = \"user\", id = \"u{i:04}\" }} }},\n"
        ));
    }
    text.push_str("]\n");
    std::fs::write(dir.path().join("licensekit.toml"), text).unwrap();

    let table = command(&["-q", "report"], dir.path()).output().unwrap();
    assert_eq!(table.status.code(), Some(0), "{}", stderr(&table));
    let table = stdout(&table);
    assert!(table.contains("250 holders unmatched"), "{table}");
    assert!(
        table.contains("u0199") && !table.contains("u0200"),
        "{table}"
    );
    assert!(
        table.contains(
            "… and 50 more; `licensekit report --format csv --section unmatched` lists every one"
        ),
        "{table}"
    );

    let csv = command(
        &["-q", "report", "--format", "csv", "--section", "unmatched"],
        dir.path(),
    )
    .output()
    .unwrap();
    assert_eq!(stdout(&csv).lines().count(), 251, "header + every holder");
}
