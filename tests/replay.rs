//! `glidepath replay`: a recorded bad canary decided again from the journal alone, with the
//! run's own SLO (nothing changes) and with a looser one (the promotion it would have
//! allowed), and the errors bad input gets.

use std::path::Path;
use std::process::{Command, Output, Stdio};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_glidepath");

fn glidepath(home: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env("GLIDEPATH_HOME", home)
        .env_remove("GLIDEPATH_JOURNAL")
        .current_dir(home)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// The release step's ending in a replay's JSON.
fn ending<'a>(doc: &'a Value, which: &str) -> &'a Value {
    let steps = doc["steps"].as_array().unwrap();
    let release = steps.iter().find(|s| s["step"] == "prod/release").unwrap();
    &release[which]
}

#[test]
fn a_recorded_bad_canary_with_a_looser_slo_shows_the_promotion_it_would_have_allowed() {
    let home = tempfile::tempdir().unwrap();
    // 2 s pauses: the bad canary reaches its last weight before it degrades, so its
    // judgement is recorded (it fails later, in the judgement or the bake).
    let demo = glidepath(
        home.path(),
        &[
            "demo",
            "--headless",
            "--scenario",
            "bad-canary",
            "--set",
            "pause=2s",
            "--set",
            "soak=3s",
            // The SLO's thresholds judge the canary: a replay re-decides those (the
            // statistical judge's own decisions are kept as recorded).
            "--set",
            "judge=thresholds",
        ],
    );
    assert_eq!(demo.status.code(), Some(1), "{}", text(&demo));

    // The run's own SLO: every decision as recorded, exit 0.
    let same = glidepath(home.path(), &["replay", "1", "--json"]);
    assert_eq!(same.status.code(), Some(0), "{}", text(&same));
    let doc: Value = serde_json::from_slice(&same.stdout).unwrap();
    assert_eq!(doc["changed"], 0, "{doc:#}");
    assert_eq!(ending(&doc, "recorded")["ending"], "stopped", "{doc:#}");
    assert_eq!(ending(&doc, "replayed"), ending(&doc, "recorded"));
    let decisions = doc["decisions"].as_array().unwrap();
    assert!(
        decisions.iter().any(|d| d["part"] == "judge"),
        "the judgement at 100% is journaled as such: {doc:#}"
    );

    // A looser SLO: the judgement would have passed and promoted.
    let slo = home.path().join("demo/config/demo/slo.yaml");
    let loose = std::fs::read_to_string(&slo)
        .unwrap()
        .replace("\"<=0.01\"", "\"<=0.9\"")
        .replace("\"<=0.02\"", "\"<=0.95\"")
        .replace("\"<300\"", "\"<60000\"")
        .replace("\"<400\"", "\"<90000\"");
    let loose_path = home.path().join("loose.yaml");
    std::fs::write(&loose_path, loose).unwrap();
    let replayed = glidepath(
        home.path(),
        &[
            "replay",
            "1",
            "--slo",
            loose_path.to_str().unwrap(),
            "--json",
        ],
    );
    assert_eq!(replayed.status.code(), Some(1), "{}", text(&replayed));
    let doc: Value = serde_json::from_slice(&replayed.stdout).unwrap();
    assert_eq!(ending(&doc, "recorded")["ending"], "stopped", "{doc:#}");
    let promoted = ending(&doc, "replayed");
    assert_eq!(promoted["ending"], "promoted", "{doc:#}");
    assert_eq!(promoted["on"], "pass", "{doc:#}");
    assert!(doc["changed"].as_u64().unwrap() >= 1, "{doc:#}");

    // The same, for a person.
    let shown = glidepath(
        home.path(),
        &["replay", "1", "--slo", loose_path.to_str().unwrap()],
    );
    let out = text(&shown);
    assert!(out.contains("recorded: rolled back at analysis"), "{out}");
    assert!(out.contains("replayed: promoted at analysis"), "{out}");
    assert!(
        out.contains("and the run would have gone otherwise"),
        "{out}"
    );
}

#[test]
fn bad_input_is_refused_with_exit_2() {
    let home = tempfile::tempdir().unwrap();
    let missing = glidepath(home.path(), &["replay", "7"]);
    assert_eq!(missing.status.code(), Some(2), "{}", text(&missing));
    assert!(text(&missing).contains('7'), "{}", text(&missing));

    let bad = home.path().join("bad.yaml");
    std::fs::write(&bad, "kind: SLO\nspec: [1, 2\n").unwrap();
    let refused = glidepath(
        home.path(),
        &["replay", "1", "--slo", bad.to_str().unwrap()],
    );
    assert_eq!(refused.status.code(), Some(2), "{}", text(&refused));
    assert!(text(&refused).contains("bad.yaml"), "{}", text(&refused));
}
