//! `glidepath demo` headless, every scenario: the exit code the README documents and where
//! the release ended. Pauses and soaks are shortened with `--set`; the bad canary (which
//! starts failing 10 s in) rolls back whether its pauses are shorter or longer than that.

use std::process::{Command, Stdio};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_glidepath");

/// A finished demo run.
struct Demo {
    code: i32,
    out: String,
    report: Value,
    /// `--report-dir`: every report format.
    reports: std::path::PathBuf,
    _home: tempfile::TempDir,
}

/// Runs the demo headless with `--report-dir`.
fn demo(scenario: &str, pause: &str) -> Demo {
    let home = tempfile::tempdir().unwrap();
    let reports = home.path().join("reports");
    let out = Command::new(BIN)
        .args(["demo", "--headless", "--scenario", scenario])
        .args(["--set", &format!("pause={pause}"), "--set", "soak=3s"])
        .arg("--report-dir")
        .arg(&reports)
        .env("GLIDEPATH_HOME", home.path())
        .env_remove("GLIDEPATH_JOURNAL")
        .current_dir(home.path())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let report: Value =
        serde_json::from_slice(&std::fs::read(reports.join("report.json")).unwrap_or_default())
            .unwrap_or_else(|e| panic!("no report ({e}): {stderr}"));
    Demo {
        code: out.status.code().unwrap_or(-1),
        out: stderr,
        report,
        reports,
        _home: home,
    }
}

/// `stage/step` → status, from the report.
fn status(report: &Value, stage: &str, step: &str) -> String {
    report["stages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == stage)
        .and_then(|s| s["steps"].as_array()?.iter().find(|x| x["name"] == step))
        .map(|s| s["status"].as_str().unwrap_or_default().to_owned())
        .unwrap_or_else(|| "absent".into())
}

#[test]
fn happy_releases_to_production_and_exits_0() {
    let Demo {
        code, out, report, ..
    } = demo("happy", "1s");
    assert_eq!(code, 0, "{out}");
    // The banner says what runs; headless, the demo approves its own approval.
    assert!(out.contains("demo · scenario happy"), "{out}");
    assert!(out.contains("approved by --auto-approve"), "{out}");
    assert!(out.contains("production runs checkout 1.0.0"), "{out}");
    assert_eq!(report["status"], "passed");
    for (stage, step) in [
        ("staging", "preflight"),
        ("staging", "database"),
        ("staging", "monitoring"),
        ("staging", "deploy"),
        ("staging", "smoke"),
        ("staging", "load"),
        ("staging", "chaos"),
        ("staging", "evaluate"),
        ("staging", "promote-to-prod"),
        ("prod", "error-budget"),
        ("prod", "release"),
        ("prod", "announce"),
    ] {
        assert_eq!(
            status(&report, stage, step),
            "passed",
            "{stage}/{step}: {out}"
        );
    }
    // The canary went through every traffic step against 1.0.0 in production, a baseline
    // of 1.0.0 beside it, judged by the statistical judge.
    for step in ["canary 10%", "canary 25%", "canary 50%"] {
        assert!(out.contains(step), "{step}: {out}");
    }
    assert!(out.contains("(stable/baseline/canary)"), "{out}");
    assert!(out.contains("statistical judge: pass"), "{out}");
    assert!(out.contains("baseline removed"), "{out}");
    assert!(
        out.contains("checkout 2.0.0 is live in production"),
        "{out}"
    );
}

#[test]
fn bad_canary_rolls_back_by_itself_and_exits_1() {
    // Pauses so short the canary reaches 50% before the new version degrades: it is
    // judged again there, and the bake after a promotion catches what comes later.
    let d = bad_canary_rolls_back_with_pauses_of("2s");
    // Every traffic step happened: the reports show them all.
    check_reports(&d);
}

#[test]
fn bad_canary_rolls_back_with_long_pauses_too() {
    bad_canary_rolls_back_with_pauses_of("30s");
}

fn bad_canary_rolls_back_with_pauses_of(pause: &str) -> Demo {
    let d = demo("bad-canary", pause);
    let Demo {
        code, out, report, ..
    } = &d;
    assert_eq!(*code, 1, "pause {pause}: {out}");
    assert_eq!(report["status"], "rolled-back", "{out}");
    // Staging is healthy (2.0.0 is the first version there); production's canary is not.
    assert_eq!(status(report, "staging", "promote-to-prod"), "passed");
    assert_eq!(status(report, "prod", "release"), "failed");
    assert_eq!(status(report, "prod", "announce"), "skipped");
    // The statistical judge (error counts against the baseline's) or, after a promotion,
    // the bake's thresholds.
    assert!(
        out.contains("error-counts") || out.contains("key SLI failed: error_ratio"),
        "{out}"
    );
    // Never promoted while an analysis failed; rolled back to 1.0.0 either way.
    assert!(
        out.contains("traffic back on stable") || out.contains("checkout is back on 1.0.0"),
        "{out}"
    );
    d
}

#[test]
fn slow_canary_fails_its_latency_objective_and_exits_1() {
    let Demo {
        code, out, report, ..
    } = demo("slow-canary", "4s");
    assert_eq!(code, 1, "{out}");
    assert_eq!(report["status"], "rolled-back", "{out}");
    assert_eq!(status(&report, "prod", "release"), "failed");
    assert!(out.contains("✗ latency_p95_ms"), "{out}");
}

#[test]
fn subtle_canary_is_caught_by_the_statistical_judge_and_exits_1() {
    let Demo {
        code, out, report, ..
    } = demo("subtle-canary", "15s");
    assert_eq!(code, 1, "{out}");
    assert_eq!(report["status"], "rolled-back", "{out}");
    assert_eq!(status(&report, "prod", "release"), "failed");
    assert!(
        out.contains("critical metric latency_mean_ms failed"),
        "{out}"
    );
    assert!(out.contains("canary and baseline removed"), "{out}");
}

#[test]
fn missing_infra_stops_at_pre_flight_and_exits_1() {
    let Demo {
        code, out, report, ..
    } = demo("missing-infra", "1s");
    assert_eq!(code, 1, "{out}");
    assert_eq!(report["status"], "failed");
    assert_eq!(status(&report, "staging", "preflight"), "failed");
    // Nothing was applied: the database step never ran.
    assert_eq!(status(&report, "staging", "database"), "skipped");
    assert!(
        out.contains("CRD prometheusrules.monitoring.coreos.com: missing"),
        "{out}"
    );
}

#[test]
fn budget_exhausted_holds_the_release_before_the_canary_and_exits_1() {
    let Demo {
        code, out, report, ..
    } = demo("budget-exhausted", "1s");
    assert_eq!(code, 1, "{out}");
    assert_eq!(report["status"], "failed");
    assert_eq!(status(&report, "prod", "error-budget"), "failed");
    assert_eq!(status(&report, "prod", "release"), "skipped");
    assert!(out.contains("budget remaining 5.0%"), "{out}");
}

/// The reports `--report-dir` writes, read as the tools that consume them would.
fn check_reports(d: &Demo) {
    let files: Vec<String> = std::fs::read_dir(&d.reports)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    for f in [
        "report.json",
        "junit.xml",
        "summary.md",
        "slo-error_ratio.svg",
        "slo-latency_p95_ms.svg",
    ] {
        assert!(files.contains(&f.to_owned()), "{f} missing from {files:?}");
    }

    // JUnit: the shape CI systems read, counts that add up, the gate's evidence in the
    // failure message.
    let junit = std::fs::read_to_string(d.reports.join("junit.xml")).unwrap();
    let doc = roxmltree::Document::parse(&junit).unwrap();
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "testsuites");
    let cases: Vec<_> = root
        .descendants()
        .filter(|n| n.has_tag_name("testcase"))
        .collect();
    let count = |tag: &str| {
        cases
            .iter()
            .filter(|c| c.children().any(|x| x.has_tag_name(tag)))
            .count()
    };
    assert_eq!(
        root.attribute("tests"),
        Some(cases.len().to_string().as_str())
    );
    assert_eq!(
        root.attribute("failures"),
        Some(count("failure").to_string().as_str())
    );
    let skipped: usize = root
        .children()
        .filter(|n| n.has_tag_name("testsuite"))
        .map(|s| s.attribute("skipped").unwrap().parse::<usize>().unwrap())
        .sum();
    assert_eq!(skipped, count("skipped"));
    assert_eq!(count("failure"), 1, "{junit}\n{}", d.out);
    for c in &cases {
        assert!(c.attribute("name").is_some() && c.attribute("classname").is_some());
        assert!(c.attribute("time").unwrap().parse::<f64>().unwrap() >= 0.0);
    }
    let release = cases
        .iter()
        .find(|c| c.attribute("name") == Some("release"))
        .unwrap();
    assert_eq!(release.attribute("classname"), Some("checkout.prod"));
    let failure = release
        .children()
        .find(|x| x.has_tag_name("failure"))
        .unwrap();
    // The statistical judge's errors, or after a promotion the bake's key SLI.
    let message = failure.attribute("message").unwrap();
    assert!(
        message.contains("key SLI failed: error_ratio") || message.contains("error-counts"),
        "{message}"
    );
    let text = failure.text().unwrap();
    assert!(
        text.contains("✗ error_ratio") || text.contains("✗ error-counts"),
        "{junit}"
    );
    // Against the JUnit schema the Jenkins xUnit plugin validates with (vendored, see
    // tests/fixtures/reports/README.md); xmllint is needed (`.ci/run` installs it).
    let schema = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/reports/jenkins-xunit-junit-10.xsd"
    );
    let o = Command::new("xmllint")
        .args(["--noout", "--schema", schema])
        .arg(d.reports.join("junit.xml"))
        .output()
        .unwrap_or_else(|e| panic!("xmllint is needed (apt-get install libxml2-utils): {e}"));
    assert!(
        o.status.success(),
        "{}\n{junit}",
        String::from_utf8_lossy(&o.stderr)
    );

    // SVG: XML with the chart's parts: both versions, thresholds, the traffic steps.
    let svg = std::fs::read_to_string(d.reports.join("slo-error_ratio.svg")).unwrap();
    let doc = roxmltree::Document::parse(&svg).unwrap();
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "svg");
    assert_eq!(
        root.tag_name().namespace(),
        Some("http://www.w3.org/2000/svg")
    );
    let texts: Vec<&str> = root.descendants().filter_map(|n| n.text()).collect();
    for want in [
        "pass 0.0100",
        "warning 0.0200",
        "10%",
        "25%",
        "new",
        "stable",
    ] {
        assert!(
            texts.iter().any(|t| t.contains(want)),
            "{want} not in {texts:?}"
        );
    }
    assert!(
        root.descendants()
            .filter(|n| n.has_tag_name("polyline"))
            .count()
            >= 2
    );

    // Markdown: the outcome, the step table, the failing gate's evidence.
    let md = std::fs::read_to_string(d.reports.join("summary.md")).unwrap();
    assert!(
        md.starts_with("## ↺ glidepath: checkout run 1 rolled-back"),
        "{md}"
    );
    assert!(
        md.contains("| prod | release | release | ✗ failed |"),
        "{md}"
    );
    assert!(md.contains("### ✗ prod/release"), "{md}");
    assert!(md.contains("![error_ratio](slo-error_ratio.svg)"), "{md}");
}
