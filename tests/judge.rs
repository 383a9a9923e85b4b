//! `glidepath judge` through the binary: Kayenta's public test vectors give Kayenta's
//! verdicts and intervals (the rest are unit tests in `src/judge/`), bad input exits 2 with
//! the file and position, and degenerate samples get their documented outcomes.
//!
//! Vectors: spinnaker/kayenta at a69573b, `kayenta-mannwhitney/src/test/scala/com/netflix/
//! kayenta/mannwhitney/MannWhitneySuite.scala` and `kayenta-judge/src/test/scala/com/netflix/
//! kayenta/judge/ClassifierSuite.scala`; samples in `tests/fixtures/judge/kayenta/`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_glidepath");

fn fixture(kind: &str, case: &str, side: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/judge/kayenta")
        .join(kind)
        .join(case)
        .join(format!("{side}.json"))
}

fn judge(canary: &Path, baseline: &Path, flags: &[&str]) -> Output {
    Command::new(BIN)
        .arg("judge")
        .arg("--canary")
        .arg(canary)
        .arg("--baseline")
        .arg(baseline)
        .args(flags)
        .output()
        .unwrap()
}

fn json(kind: &str, case: &str, flags: &[&str]) -> (i32, serde_json::Value) {
    let mut all = vec!["--json"];
    all.extend_from_slice(flags);
    let out = judge(
        &fixture(kind, case, "canary"),
        &fixture(kind, case, "baseline"),
        &all,
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    let v = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {stderr}"));
    (out.status.code().unwrap(), v)
}

#[track_caller]
fn close(actual: &serde_json::Value, expected: f64) {
    let actual = actual.as_f64().unwrap();
    assert!(
        (actual - expected).abs() <= 1e-3 * expected.abs(),
        "{actual} is not within 1e-3 relative of {expected}"
    );
}

// MannWhitneySuite, test "Mann-Whitney Confidence Interval & Estimate".
#[test]
fn kayentas_interval_and_estimate_of_a_clear_shift() {
    let (code, v) = json("mannwhitney", "ci", &["--confidence", "0.95"]);
    close(&v["interval"][0], 6.0);
    close(&v["interval"][1], 39.0);
    close(&v["estimate"], 22.5);
    assert_eq!((code, v["classification"].as_str()), (1, Some("high")));
}

// MannWhitneySuite, test "Mann-Whitney Confidence Interval & Estimate: Problem Case" (850
// samples a side, confidence 0.98, the default).
#[test]
fn kayentas_problem_case_interval() {
    let (_, v) = json("mannwhitney", "ci-problem-case", &[]);
    close(&v["interval"][0], -1.4808028936386108E-5);
    close(&v["interval"][1], 1.808255910873413E-5);
    close(&v["estimate"], 1.808255910873413E-5);
    assert_eq!(v["classification"], "pass");
}

// MannWhitneySuite, test "Mann-Whitney Confidence Interval & Estimate: Tie out with R Version".
#[test]
fn kayentas_tie_out_with_r_interval() {
    let (_, v) = json(
        "mannwhitney",
        "ci-tie-out-with-r-version",
        &["--confidence", "0.95"],
    );
    close(&v["interval"][0], -0.500002521696696);
    close(&v["interval"][1], -3.486287505871302E-5);
    close(&v["estimate"], -0.4999393907180323);
}

// ClassifierSuite, tests "Mann-Whitney Classifier Test: High Metric", "...: Low Metric" and
// "Mann-Whitney Classifier Directional Test: Increase" (tolerance 0.1, confidence 0.95).
#[test]
fn kayentas_classifier_verdicts_through_the_binary() {
    let kayenta = ["--tolerance", "0.1", "--confidence", "0.95"];
    let (code, v) = json("classifier", "high-metric", &kayenta);
    assert_eq!((code, v["classification"].as_str()), (1, Some("high")));
    assert_eq!(v["critical"], false);
    let (code, v) = json("classifier", "low-metric", &kayenta);
    assert_eq!((code, v["classification"].as_str()), (1, Some("low")));
    let mut increase = kayenta.to_vec();
    increase.extend(["--direction", "increase"]);
    let (code, v) = json("classifier", "directional-increase", &increase);
    assert_eq!((code, v["classification"].as_str()), (0, Some("pass")));
    assert!(
        v["reason"]
            .as_str()
            .unwrap()
            .contains("the direction (increase) allows"),
        "{v}"
    );
}

// ClassifierSuite, test "Mann-Whitney Classifier Test - Critical Effect Size: Critical High".
#[test]
fn kayentas_critical_high() {
    let flags = [
        "--tolerance",
        "0.1",
        "--confidence",
        "0.95",
        "--critical",
        "--critical-increase",
        "1.2",
    ];
    let (code, v) = json("classifier", "critical-effect-size-critical-high", &flags);
    assert_eq!(
        (code, v["classification"].as_str(), v["critical"].as_bool()),
        (1, Some("high"), Some(true))
    );
    assert!(v["effect_size"].as_f64().unwrap() > 1.2, "{v}");
}

// ClassifierSuite, test "Mann-Whitney Classifier Test - CLES Effect Size: High".
#[test]
fn kayentas_cles_high() {
    let flags = [
        "--tolerance",
        "0.2",
        "--effect-size",
        "cles",
        "--allowed-decrease",
        "0.2",
        "--allowed-increase",
        "0.8",
    ];
    let (code, v) = json("classifier", "cles-effect-size-high", &flags);
    assert_eq!((code, v["classification"].as_str()), (1, Some("high")));
    assert_eq!(v["effect_size_measure"], "cles");
}

#[test]
fn the_text_output_names_every_piece_of_evidence() {
    let case = "ci";
    let out = judge(
        &fixture("mannwhitney", case, "canary"),
        &fixture("mannwhitney", case, "baseline"),
        &["--confidence", "0.95"],
    );
    let text = String::from_utf8(out.stdout).unwrap();
    for label in [
        "classification  high",
        "interval        [6, 39] (95% confidence",
        "estimate        22.5",
        "effect size     ",
        "test            Mann-Whitney U = 16",
        "canary          4 values",
        "reason          the canary is higher",
    ] {
        assert!(text.contains(label), "{label:?} missing from:\n{text}");
    }
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn bad_files_exit_2_with_the_file_and_position() {
    let dir = tempfile::tempdir().unwrap();
    let good = write(dir.path(), "good.json", "[1, 2, 3]");
    let cases = [
        (
            "object.json",
            "{\"a\": 1}",
            ":1:1: invalid type: map, expected a sequence",
        ),
        (
            "string.json",
            "[1, 2,\n \"x\"]",
            ":2:4: invalid type: string \"x\", expected f64",
        ),
        (
            "empty.json",
            "  \n",
            ": the file is empty; a sample file is a JSON array of numbers",
        ),
        ("truncated.json", "[1, 2", ":1:5: EOF while parsing a list"),
        ("huge.json", "[1e400]", ":1:6: number out of range"),
    ];
    for (name, text, expected) in cases {
        let bad = write(dir.path(), name, text);
        let out = judge(&bad, &good, &[]);
        assert_eq!(out.status.code(), Some(2), "{name}: {}", stderr(&out));
        let err = stderr(&out);
        assert!(
            err.contains(&format!("{}{expected}", bad.display())),
            "{name}: {err}"
        );
    }
    let out = judge(&dir.path().join("missing.json"), &good, &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--canary"), "{}", stderr(&out));
}

#[test]
fn mismatched_options_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let good = write(dir.path(), "good.json", "[1, 2, 3]");
    let cases: [(&[&str], &str); 5] = [
        (
            &["--allowed-increase", "1.5", "--critical-increase", "1.2"],
            "--critical-increase 1.2 is below --allowed-increase 1.5",
        ),
        (
            &["--allowed-decrease", "0.8", "--critical-decrease", "0.9"],
            "--critical-decrease 0.9 is above --allowed-decrease 0.8",
        ),
        (
            &["--confidence", "1"],
            "--confidence 1: must be between 0 and 1",
        ),
        (
            &["--confidence", "0"],
            "--confidence 0: must be between 0 and 1",
        ),
        (
            &["--tolerance", "-0.5"],
            "--tolerance -0.5: must be a number of at least 0",
        ),
    ];
    for (flags, expected) in cases {
        let out = judge(&good, &good, flags);
        assert_eq!(out.status.code(), Some(2), "{flags:?}");
        assert!(
            stderr(&out).contains(expected),
            "{flags:?}: {}",
            stderr(&out)
        );
    }
}

#[test]
fn degenerate_samples_get_their_documented_outcomes() {
    let dir = tempfile::tempdir().unwrap();
    let run = |canary: &str, baseline: &str, flags: &[&str]| {
        let c = write(dir.path(), "c.json", canary);
        let b = write(dir.path(), "b.json", baseline);
        let mut all = vec!["--json"];
        all.extend_from_slice(flags);
        let out = judge(&c, &b, &all);
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        (
            out.status.code().unwrap(),
            v["classification"].as_str().unwrap().to_owned(),
            v["reason"].as_str().unwrap().to_owned(),
        )
    };
    let (code, class, reason) = run("[2, 2, 2]", "[2, 2, 2, 2]", &[]);
    assert_eq!((code, class.as_str()), (0, "pass"));
    assert!(reason.contains("every value is 2"), "{reason}");
    let (code, class, _) = run("[null, null]", "[1, 2]", &[]);
    assert_eq!((code, class.as_str()), (5, "nodata"));
    let (code, class, _) = run("[null, null]", "[1, 2]", &["--must-have-data"]);
    assert_eq!((code, class.as_str()), (1, "nodata-fail"));
    let (code, class, _) = run("[null, null]", "[1, 2]", &["--critical"]);
    assert_eq!((code, class.as_str()), (1, "nodata"));
    let (code, class, reason) = run("[7]", "[3]", &[]);
    assert_eq!((code, class.as_str()), (5, "inconclusive"));
    assert!(reason.starts_with("too few samples to tell"), "{reason}");
    let (code, class, _) = run("[]", "[3, 4]", &[]);
    assert_eq!((code, class.as_str()), (5, "nodata"));
}

#[test]
fn values_near_the_largest_floats_are_judged_without_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let c = write(
        dir.path(),
        "c.json",
        "[1e308, -1e308, 5, 7, 1e308, 3, 2, 9, 4]",
    );
    let b = write(dir.path(), "b.json", "[0, 1e308, 3, -1e308, 2, 2, 8, 1, 6]");
    let out = judge(&c, &b, &["--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (out.status.code(), v["classification"].as_str()),
        (Some(5), Some("inconclusive")),
        "{}",
        stderr(&out)
    );
    assert!(
        v["reason"]
            .as_str()
            .unwrap()
            .contains("too large to compare"),
        "{v}"
    );
}
