//! `licensekit snapshot | history | diff | prune` end to end, on the sandbox and a SQLite file.
#![cfg(all(
    feature = "history",
    feature = "apple-vpp",
    feature = "genesys",
    feature = "salesforce"
))]

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

fn licensekit(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_licensekit"))
        .args(args)
        .current_dir(dir)
        .env("LICENSEKIT_HOME", dir.join("home"))
        .env_remove("LICENSEKIT_DB")
        .env_remove("LICENSEKIT_SANDBOX_LATENCY_MS")
        .env_remove("LICENSEKIT_SANDBOX_BATCH")
        .output()
        .expect("the binary runs")
}

fn ok(o: &Output) -> String {
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{:?}: {err}", o.status);
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn two_sandbox_snapshots_with_a_step_between_show_a_meaningful_diff() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    assert_eq!(
        ok(&licensekit(&["snapshot", "--sandbox", "--quiet"], d)).trim(),
        "1"
    );
    // The second run advances the demo org by one seeded step (the stored sandbox snapshots).
    assert_eq!(
        ok(&licensekit(&["snapshot", "--sandbox", "--quiet"], d)).trim(),
        "2"
    );
    assert!(d.join("home/history.sqlite").exists());

    let diff: Value =
        serde_json::from_str(&ok(&licensekit(&["diff", "--format", "json"], d))).unwrap();
    assert_eq!(diff["from"]["id"], 1);
    assert_eq!(diff["to"]["id"], 2);
    let products = diff["products"].as_array().unwrap();
    assert_eq!(
        products.len(),
        3,
        "one busiest product per vendor: {products:?}"
    );
    for p in products {
        assert_eq!(p["status"], "changed");
        assert_eq!(p["holders_removed"].as_array().unwrap().len(), 3, "{p}");
        assert_eq!(p["holders_added"].as_array().unwrap().len(), 2, "{p}");
        let (before, after) = (p["assigned_before"].as_u64(), p["assigned_after"].as_u64());
        assert_eq!(after.unwrap() + 1, before.unwrap(), "{p}");
    }
    assert!(diff["not_comparable"].as_array().unwrap().is_empty());

    let table = ok(&licensekit(&["diff"], d));
    assert!(table.contains("From snapshot 1"), "{table}");
    assert!(table.contains("People who appeared"), "{table}");
    let csv = ok(&licensekit(&["diff", "1", "2", "--format", "csv"], d));
    assert_eq!(csv.matches(",holder_removed,").count(), 9, "{csv}");

    let history = ok(&licensekit(
        &[
            "history",
            "--provider",
            "salesforce",
            "--product",
            "acme",
            "--format",
            "csv",
        ],
        d,
    ));
    let lines: Vec<&str> = history.lines().collect();
    assert_eq!(lines.len(), 3, "{history}");
    assert!(
        lines[0].starts_with("snapshot_id,taken_at,provider,identity,product_id"),
        "{history}"
    );
    assert!(
        lines[1].contains(",salesforce,salesforce@sandbox,"),
        "{history}"
    );
    assert!(lines[1].contains(",acme,ok,110,false,100,10,"), "{history}");
    assert!(lines[2].contains(",acme,ok,110,false,99,11,"), "{history}");

    // Sign-in activity per snapshot, from the vendor's last-login figures.
    let activity = |days: &str| -> Vec<Value> {
        let out = ok(&licensekit(
            &[
                "history",
                "--activity",
                "--inactive-days",
                days,
                "--provider",
                "salesforce",
                "--product",
                "acme",
                "--format",
                "json",
            ],
            d,
        ));
        serde_json::from_str::<Value>(&out)
            .unwrap()
            .as_array()
            .unwrap()
            .clone()
    };
    let (at_90, at_0) = (activity("90"), activity("0"));
    assert_eq!(at_90.len(), 2);
    let n = |r: &Value, k: &str| r[k].as_u64().unwrap();
    for (a, z) in at_90.iter().zip(&at_0) {
        assert_eq!(
            n(a, "holders"),
            n(a, "active_recently") + n(a, "inactive") + n(a, "unknown")
        );
        assert!(n(a, "inactive") > 0, "the demo org has old sign-ins: {a}");
        assert!(n(a, "active_recently") > 0, "{a}");
        // A threshold of 0 days: every reported sign-in is in the past.
        assert_eq!(n(z, "inactive") + n(z, "unknown"), n(z, "holders"), "{z}");
    }
    assert_eq!(n(&at_90[0], "holders"), 100);
    assert_eq!(n(&at_90[1], "holders"), 99);
}

#[test]
fn run_ids_retention_and_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let db = d.join("lk.db");
    let db = db.to_str().unwrap();
    let once = [
        "snapshot",
        "--sandbox",
        "--quiet",
        "--db",
        db,
        "--run-id",
        "nightly-1",
    ];
    assert_eq!(ok(&licensekit(&once, d)).trim(), "1");
    let again = licensekit(&once, d);
    assert_eq!(ok(&again).trim(), "1");
    assert!(String::from_utf8_lossy(&again.stderr).contains("nothing written"));

    let one = licensekit(&["diff", "--db", db], d);
    assert_eq!(one.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&one.stderr).contains("two snapshots"));

    for _ in 0..3 {
        ok(&licensekit(
            &[
                "snapshot",
                "--sandbox",
                "--quiet",
                "--db",
                db,
                "--keep",
                "3",
            ],
            d,
        ));
    }
    let listed: Value = serde_json::from_str(&ok(&licensekit(
        &["history", "--snapshots", "--format", "json", "--db", db],
        d,
    )))
    .unwrap();
    let ids: Vec<u64> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_u64().unwrap())
        .collect();
    assert_eq!(ids, vec![2, 3, 4]);
    ok(&licensekit(&["prune", "--keep", "1", "--db", db], d));
    let listed = ok(&licensekit(
        &["history", "--snapshots", "--format", "csv", "--db", db],
        d,
    ));
    assert_eq!(listed.lines().count(), 2, "{listed}");

    // A file that is not a database: exit 1, a clear message, the file untouched.
    let bad = d.join("notes.txt");
    std::fs::write(&bad, "my notes, not a database\n".repeat(300)).unwrap();
    let before = std::fs::read(&bad).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_licensekit"))
        .args(["history"])
        .current_dir(d)
        .env("LICENSEKIT_DB", &bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("not a readable licensekit history database"),
        "{err}"
    );
    assert_eq!(std::fs::read(&bad).unwrap(), before);
}
