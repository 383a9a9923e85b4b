//! SLO scoring with Keptn's lighthouse semantics, written from its documented behaviour,
//! the three file formats, and `glidepath slo eval` as scripts use it.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use glidepath::events::Verdict;
use glidepath::slo::score::ObjectiveStatus;
use glidepath::slo::{CompareWith, Format, HistoryEntry, IncludeResults, Slo, evaluate};

fn fixture(name: &str) -> std::path::PathBuf {
    Path::new("tests/fixtures/slo").join(name)
}

fn values(pairs: &[(&str, Option<f64>)]) -> BTreeMap<String, Option<f64>> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect()
}

fn history(entries: &[(Verdict, f64)], sli: &str) -> Vec<HistoryEntry> {
    entries
        .iter()
        .map(|(result, v)| HistoryEntry {
            result: *result,
            sli_values: values(&[(sli, Some(*v))]),
            invalid: false,
        })
        .collect()
}

/// An SLO from a Keptn slo.yaml written inline.
fn keptn(text: &str) -> Slo {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("slo.yaml");
    std::fs::write(&path, text).unwrap();
    Slo::load(&path, None).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn keptn_file_loads_with_its_comparison_and_queries() {
    let slo = Slo::load(&fixture("keptn-slo.yaml"), Some(&fixture("keptn-sli.yaml"))).unwrap();
    assert_eq!(slo.format, Format::Keptn);
    assert_eq!(slo.comparison.compare_with, CompareWith::SeveralResults);
    assert_eq!(slo.comparison.number_of_results, 2);
    assert_eq!(slo.comparison.include, IncludeResults::Pass);
    assert_eq!(slo.objectives.len(), 3);
    assert!(slo.slis["throughput"].starts_with("sum(rate(http_requests_total"));
    assert_eq!(slo.objectives[1].weight, 2.0);
    assert_eq!(slo.objectives[2].weight, 1.0, "weight defaults to 1");
    assert_eq!(
        (slo.total_score.pass, slo.total_score.warning),
        (90.0, Some(75.0))
    );
}

#[test]
fn warning_scores_half_and_info_is_not_scored() {
    let slo = Slo::load(&fixture("keptn-slo.yaml"), None).unwrap();
    // p95 700: fails "<600", meets warning "<=800" (0.5 of 1); errors 0.5 pass (2 of 2).
    let e = evaluate(
        &slo,
        &values(&[
            ("response_time_p95", Some(700.0)),
            ("error_rate", Some(0.5)),
            ("throughput", Some(42.0)),
        ]),
        &[],
    );
    let status: Vec<ObjectiveStatus> = e.objectives.iter().map(|o| o.status).collect();
    assert_eq!(
        status,
        vec![
            ObjectiveStatus::Warning,
            ObjectiveStatus::Pass,
            ObjectiveStatus::Info
        ]
    );
    assert_eq!(e.objectives[0].score, 0.5);
    // 2.5 of 3 = 83.33%: at least 75, below 90.
    assert!((e.score - 250.0 / 3.0).abs() < 1e-9);
    assert_eq!(e.result, Verdict::Warning);
    let violated: Vec<(String, bool)> = e.objectives[0]
        .pass_targets
        .iter()
        .map(|t| (t.criteria.clone(), t.violated))
        .collect();
    assert_eq!(
        violated,
        vec![("<=+10%".to_owned(), false), ("<600".to_owned(), true)]
    );
}

#[test]
fn a_failed_key_sli_fails_the_evaluation_whatever_the_score() {
    let slo = keptn(
        "objectives:\n  - sli: a\n    weight: 10\n    pass: [{criteria: [\"<1\"]}]\n  - sli: b\n    key_sli: true\n    pass: [{criteria: [\"<1\"]}]\ntotal_score: {pass: \"50%\"}\n",
    );
    let e = evaluate(&slo, &values(&[("a", Some(0.0)), ("b", Some(5.0))]), &[]);
    assert!((e.score - 100.0 * 10.0 / 11.0).abs() < 1e-9);
    assert_eq!(e.result, Verdict::Fail);
    assert_eq!(e.message, "key SLI failed: b");
    // A key SLI in warning does not force a failure.
    let slo = keptn(
        "objectives:\n  - sli: b\n    key_sli: true\n    pass: [{criteria: [\"<1\"]}]\n    warning: [{criteria: [\"<10\"]}]\ntotal_score: {pass: \"90%\", warning: \"40%\"}\n",
    );
    assert_eq!(
        evaluate(&slo, &values(&[("b", Some(5.0))]), &[]).result,
        Verdict::Warning
    );
}

#[test]
fn criteria_lists_are_anded_and_several_lists_ored() {
    let slo = keptn(
        "objectives:\n  - sli: x\n    pass:\n      - criteria: [\"<100\"]\n      - criteria: [\"<200\", \">150\"]\ntotal_score: {pass: \"100%\"}\n",
    );
    let verdict = |v: f64| evaluate(&slo, &values(&[("x", Some(v))]), &[]).result;
    assert_eq!(verdict(50.0), Verdict::Pass);
    assert_eq!(verdict(170.0), Verdict::Pass, "the second list holds");
    assert_eq!(verdict(120.0), Verdict::Fail, "neither list holds entirely");
}

#[test]
fn relative_criteria_compare_with_selected_history() {
    let slo = Slo::load(&fixture("keptn-slo.yaml"), None).unwrap();
    // several_results, 2, pass only: newest first 120 (pass), 1000 (fail: left out), 100.
    let h = history(
        &[
            (Verdict::Pass, 100.0),
            (Verdict::Fail, 1000.0),
            (Verdict::Pass, 120.0),
        ],
        "response_time_p95",
    );
    let run = |p95: f64| {
        evaluate(
            &slo,
            &values(&[
                ("response_time_p95", Some(p95)),
                ("error_rate", Some(0.0)),
                ("throughput", None),
            ]),
            &h,
        )
    };
    let e = run(121.0);
    assert_eq!(e.objectives[0].compared_value, Some(110.0));
    assert_eq!(e.objectives[0].pass_targets[0].target_value, Some(121.0));
    assert_eq!(e.objectives[0].status, ObjectiveStatus::Pass);
    assert_eq!(
        run(121.5).objectives[0].status,
        ObjectiveStatus::Warning,
        "above +10% of 110, still <=800"
    );
}

#[test]
fn invalid_and_unwanted_history_is_left_out() {
    let slo = keptn(
        "comparison:\n  compare_with: several_results\n  number_of_comparison_results: 3\n  include_result_with_score: pass_or_warn\n  aggregate_function: p90\nobjectives:\n  - sli: x\n    pass: [{criteria: [\"<=+0%\"]}]\ntotal_score: {pass: \"100%\"}\n",
    );
    let mut h = history(
        &[
            (Verdict::Pass, 1.0),
            (Verdict::Warning, 2.0),
            (Verdict::Fail, 50.0),
            (Verdict::Pass, 3.0),
            (Verdict::Pass, 99.0),
        ],
        "x",
    );
    h[4].invalid = true;
    // Newest first, valid, pass or warning: 3, 2, 1. Keptn's p90 of three values is the last.
    let e = evaluate(&slo, &values(&[("x", Some(3.0))]), &h);
    assert_eq!(e.objectives[0].compared_value, Some(3.0));
    assert_eq!(e.result, Verdict::Pass);
}

#[test]
fn relative_criteria_pass_without_history() {
    let slo = keptn(
        "objectives:\n  - sli: x\n    pass: [{criteria: [\"<+5%\"]}]\ntotal_score: {pass: \"90%\"}\n",
    );
    let e = evaluate(&slo, &values(&[("x", Some(1e9))]), &[]);
    assert_eq!(e.result, Verdict::Pass);
    assert_eq!(e.objectives[0].pass_targets[0].target_value, None);
}

#[test]
fn keptn_defaults_apply_when_fields_are_missing() {
    // No comparison block: single_result, all, avg.
    let slo = keptn(
        "objectives:\n  - sli: x\n    weight: 0\n    pass: [{criteria: [\"<=+0%\"]}]\ntotal_score: {pass: \"90%\"}\n",
    );
    assert_eq!(slo.comparison.compare_with, CompareWith::SingleResult);
    assert_eq!(slo.comparison.include, IncludeResults::All);
    assert_eq!(slo.objectives[0].weight, 1.0, "weight 0 counts as 1");
    let h = history(&[(Verdict::Fail, 5.0), (Verdict::Fail, 10.0)], "x");
    let e = evaluate(&slo, &values(&[("x", Some(10.0))]), &h);
    assert_eq!(
        e.objectives[0].compared_value,
        Some(10.0),
        "the latest result only, failures included"
    );
    // A comparison block with fields missing: several results default to 3.
    let slo = keptn(
        "comparison:\n  compare_with: several_results\nobjectives: []\ntotal_score: {pass: \"90%\"}\n",
    );
    assert_eq!(slo.comparison.number_of_results, 3);
    // No objectives at all fails with 0, as lighthouse decides (Keptn issue 9198).
    let e = evaluate(&slo, &BTreeMap::new(), &[]);
    assert_eq!((e.result, e.score), (Verdict::Fail, 0.0));
}

#[test]
fn no_data_is_an_error_never_a_pass() {
    let slo = Slo::load(&fixture("keptn-slo.yaml"), None).unwrap();
    for bad in [None, Some(f64::NAN)] {
        let e = evaluate(
            &slo,
            &values(&[
                ("response_time_p95", Some(100.0)),
                ("error_rate", bad),
                ("throughput", Some(1.0)),
            ]),
            &[],
        );
        assert_eq!(e.result, Verdict::Error, "{bad:?}");
        assert_eq!(e.objectives[1].status, ObjectiveStatus::Error);
        assert!(
            e.message.starts_with(
                "no data for error_rate: missing, failed, empty or NaN values never pass"
            ),
            "{}",
            e.message
        );
    }
    // Infinity is a value, and it fails: `<=+10%` or `>=` criteria cannot pass it either.
    for inf in [f64::INFINITY, f64::NEG_INFINITY] {
        let e = evaluate(
            &slo,
            &values(&[
                ("response_time_p95", Some(100.0)),
                ("error_rate", Some(inf)),
                ("throughput", Some(1.0)),
            ]),
            &[],
        );
        assert_eq!(e.result, Verdict::Fail, "{inf}");
        assert_eq!(e.objectives[1].status, ObjectiveStatus::Fail);
        assert_eq!(e.objectives[1].value, Some(inf));
        assert!(
            e.message.contains("an infinite value never passes"),
            "{}",
            e.message
        );
    }
}

#[test]
fn bad_slo_files_name_file_line_and_problem() {
    let err = Slo::load(&fixture("keptn-no-total.yaml"), None).unwrap_err();
    assert!(err.to_string().ends_with("no target score defined: add total_score with pass (and warning), such as pass: \"90%\""), "{err}");
    let err = Slo::load(&fixture("keptn-bad-criteria.yaml"), None).unwrap_err();
    assert!(
        err.to_string()
            .contains("keptn-bad-criteria.yaml:4:9: invalid criterion `less than 1`"),
        "{err}"
    );
    let err = Slo::load(&fixture("openslo-bad.yaml"), None).unwrap_err();
    assert!(
        err.to_string()
            .contains("openslo-bad.yaml:6:20: budgetingMethod `Timeslice` is not supported; use Occurrences, Timeslices or RatioTimeslices"),
        "{err}"
    );
    let err = Slo::load(&fixture("native-unknown-sli.yaml"), None).unwrap_err();
    assert!(
        err.to_string().contains(
            "native-unknown-sli.yaml:8:12: unknown SLI `eror_ratio` (did you mean `error_ratio`?)"
        ),
        "{err}"
    );
}

#[test]
fn glidepath_and_openslo_files_carry_service_levels() {
    let slo = Slo::load(&fixture("checkout-slo.yaml"), None).unwrap();
    assert_eq!(slo.format, Format::Glidepath);
    assert_eq!(slo.objectives[1].pass.len(), 2, "two ORed sets");
    let level = slo.service_level().unwrap();
    assert!((level.target - 0.999).abs() < 1e-12);
    assert_eq!(level.window.as_secs(), 30 * 86_400);
    assert!(
        level.error_ratio_query("1h").starts_with(
            "(sum(rate(http_requests_total{service=\"${service}\",code=~\"5..\"}[1h])))"
        )
    );

    let open = Slo::load(&fixture("openslo.yaml"), None).unwrap();
    assert_eq!(open.format, Format::OpenSlo);
    let level = open.service_level().unwrap();
    assert_eq!((level.target, level.window.as_secs()), (0.995, 28 * 86_400));
    assert!(level.error_ratio_query("5m").starts_with(
        "1 - ((sum(rate(http_requests_total{service=\"checkout\",code!~\"5..\"}[5m])))"
    ));
    let e = evaluate(
        &open,
        &values(&[("checkout-availability", Some(0.9991))]),
        &[],
    );
    assert_eq!(e.result, Verdict::Pass);
    let e = evaluate(
        &open,
        &values(&[("checkout-availability", Some(0.99))]),
        &[],
    );
    assert_eq!(e.result, Verdict::Fail);
}

fn glidepath(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_glidepath"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

#[test]
fn slo_eval_cli_prints_json_and_keeps_its_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let values = dir.path().join("values.json");
    std::fs::write(
        &values,
        r#"{"response_time_p95": 700, "error_rate": 0.5, "throughput": null}"#,
    )
    .unwrap();
    let history = dir.path().join("history.json");
    std::fs::write(
        &history,
        r#"[{"result": "pass", "sli_values": {"response_time_p95": 650}}]"#,
    )
    .unwrap();
    let slo = fixture("keptn-slo.yaml");
    let (slo, values, history) = (
        slo.to_str().unwrap(),
        values.to_str().unwrap(),
        history.to_str().unwrap(),
    );
    let (code, out, err) = glidepath(&[
        "slo",
        "eval",
        "--slo",
        slo,
        "--values",
        values,
        "--history",
        history,
        "--json",
    ]);
    assert_eq!(code, 0, "{err}");
    let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(doc["result"], "warning");
    let first = &doc["objectives"][0];
    for key in [
        "sli",
        "value",
        "status",
        "score",
        "weight",
        "key_sli",
        "pass_targets",
        "warning_targets",
    ] {
        assert!(first.get(key).is_some(), "objective lacks {key}: {first}");
    }
    assert_eq!(first["pass_targets"][0]["target_value"], 715.0);
    let (code, _, _) = glidepath(&[
        "slo",
        "eval",
        "--slo",
        slo,
        "--values",
        values,
        "--fail-on",
        "warning",
    ]);
    assert_eq!(code, 1);
    let (code, _, _) = glidepath(&[
        "slo",
        "eval",
        "--slo",
        slo,
        "--values",
        values,
        "--fail-on",
        "fail",
    ]);
    assert_eq!(code, 0);
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, r#"{"response_time_p95": "fast"}"#).unwrap();
    let (code, _, err) = glidepath(&[
        "slo",
        "eval",
        "--slo",
        slo,
        "--values",
        bad.to_str().unwrap(),
    ]);
    assert_eq!(code, 2);
    assert!(
        err.contains("value of `response_time_p95` must be a number or null"),
        "{err}"
    );
    let (code, _, err) = glidepath(&[
        "slo",
        "eval",
        "--slo",
        "tests/fixtures/slo/keptn-no-total.yaml",
        "--values",
        values,
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("no target score defined"), "{err}");
}

#[test]
fn openslo_files_keep_every_objective_and_count_counters() {
    let slo = Slo::load(&fixture("openslo-counters.yaml"), None).unwrap();
    let targets: Vec<(String, f64)> = slo
        .service_levels
        .iter()
        .map(|l| (l.name.clone(), l.target))
        .collect();
    assert_eq!(
        targets,
        vec![
            ("three nines".to_owned(), 0.999),
            ("two nines".to_owned(), 0.99)
        ]
    );
    assert_eq!(
        slo.service_levels[0].error_ratio_query("1h"),
        "1 - ((sum(increase(http_requests_total{code!~\"5..\",service=\"checkout\"}[1h])) or vector(0)) / (sum(increase(http_requests_total{service=\"checkout\"}[1h]))))"
    );
    // Each objective is scored on its own: 99.5% good meets 99% only.
    let e = evaluate(
        &slo,
        &values(&[
            ("checkout-availability[0]", Some(0.995)),
            ("checkout-availability[1]", Some(0.995)),
        ]),
        &[],
    );
    let statuses: Vec<String> = e
        .objectives
        .iter()
        .map(|o| format!("{}={:?}", o.display_name, o.status))
        .collect();
    assert_eq!(statuses, vec!["three nines=Fail", "two nines=Pass"]);
    assert_eq!(e.result, Verdict::Fail);

    let threshold = Slo::load(&fixture("openslo-threshold.yaml"), None).unwrap();
    assert_eq!(threshold.objectives[0].pass[0][0].text, "<0.5");
    let e = evaluate(&threshold, &values(&[("checkout-latency", Some(0.3))]), &[]);
    assert_eq!(e.result, Verdict::Pass);

    // A time slice is judged by timeSliceTarget, a window of events by the target.
    let slices = Slo::load(&fixture("openslo-timeslices.yaml"), None).unwrap();
    assert_eq!(slices.objectives[0].pass[0][0].text, ">=0.95");

    let calendar = Slo::load(&fixture("openslo-calendar.yaml"), None).unwrap();
    assert!(calendar.service_levels[0].calendar.is_some());
    assert!((calendar.service_levels[0].target - 0.995).abs() < 1e-12);
}

#[test]
fn what_openslo_still_refuses_is_named_with_its_place() {
    let err = Slo::load(&fixture("openslo-threshold-timeslices.yaml"), None).unwrap_err();
    assert!(
        err.to_string().contains("openslo-threshold-timeslices.yaml:19:7: a thresholdMetric is budgeted by Occurrences only"),
        "{err}"
    );
    let err = Slo::load(&fixture("openslo-counter-expression.yaml"), None).unwrap_err();
    assert!(
        err.to_string().contains("openslo-counter-expression.yaml:15:22: query `rate(http_requests_total{code=~\"5..\"}[5m])` is not a selector"),
        "{err}"
    );
}

#[test]
fn slo_commands_parse_every_query_before_using_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let values = dir.path().join("values.json");
    std::fs::write(&values, r#"{"error_ratio": 0.001, "latency_p95_ms": 100}"#).unwrap();
    // Offline: no query is sent, but a query that would not parse is still an error.
    let (code, _, err) = glidepath(&[
        "slo",
        "eval",
        "--slo",
        "tests/fixtures/slo/invalid-promql.yaml",
        "--values",
        values.to_str().unwrap(),
    ]);
    assert_eq!(code, 2, "{err}");
    assert_eq!(
        err,
        "error: tests/fixtures/slo/invalid-promql.yaml:7:21: SLI `latency_p95_ms`: the query is not valid PromQL: unclosed left parenthesis\n"
    );
    let (code, _, err) = glidepath(&["slo", "rules", "tests/fixtures/slo/invalid-promql.yaml"]);
    assert_eq!(code, 2, "{err}");
}

#[test]
fn slo_rules_refuse_templates_nothing_fills_and_promtool_accepts_filled_ones() {
    let (code, out, err) = glidepath(&["slo", "rules", "config/demo/slo.yaml"]);
    assert_eq!(code, 2, "{out}");
    assert_eq!(
        err,
        "error: config/demo/slo.yaml:34:50: SLI `serviceLevel.bad`: `${namespace}` is filled by nothing here, so the query would match nothing; known: window; pass --set namespace=VALUE\n"
    );
    let (code, out, err) = glidepath(&[
        "slo",
        "rules",
        "config/demo/slo.yaml",
        "--set",
        "namespace=shop",
        "--set",
        "service=checkout",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(!out.contains("${"), "{out}");
    assert!(
        out.contains("namespace=\\\"shop\\\"") || out.contains("namespace=\"shop\""),
        "{out}"
    );
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules.yaml");
    std::fs::write(&rules, &out).unwrap();
    let check = Command::new("promtool")
        .args(["check", "rules"])
        .arg(&rules)
        .output()
        .expect("promtool must be installed for this test");
    assert!(
        check.status.success(),
        "{}{}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );
}
