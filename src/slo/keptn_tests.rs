//! Keptn's lighthouse behaviours, one test each, named after the Keptn test they mirror
//! (keptn/keptn lighthouse-service/event_handler/evaluate_sli_handler_test.go). The SLOs
//! are written as slo.yaml files and read by glidepath's Keptn reader.

use std::collections::BTreeMap;

use super::score::{ObjectiveStatus, TargetResult};
use super::{Aggregate, CompareWith, HistoryEntry, IncludeResults, Slo, evaluate};
use crate::events::Verdict;

fn keptn(yaml: &str) -> Slo {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("slo.yaml");
    std::fs::write(&path, yaml).unwrap();
    Slo::load(&path, None).unwrap()
}

fn keptn_error(yaml: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("slo.yaml");
    std::fs::write(&path, yaml).unwrap();
    Slo::load(&path, None).unwrap_err().to_string()
}

fn values(v: &[(&str, Option<f64>)]) -> BTreeMap<String, Option<f64>> {
    v.iter().map(|(k, x)| ((*k).to_owned(), *x)).collect()
}

fn earlier(result: Verdict, v: &[(&str, Option<f64>)]) -> HistoryEntry {
    HistoryEntry {
        result,
        sli_values: values(v),
        invalid: false,
    }
}

fn target(criteria: &str, target_value: Option<f64>, violated: bool) -> TargetResult {
    TargetResult {
        criteria: criteria.to_owned(),
        target_value,
        violated,
    }
}

/// The SLO most of Keptn's objective tests use: several_results, pass only, 2, avg.
const SIMPLE: &str = r#"
spec_version: "1.0"
comparison:
  compare_with: several_results
  include_result_with_score: pass
  number_of_comparison_results: 2
  aggregate_function: avg
objectives:
  - sli: my-test-metric-1
    pass:
      - criteria: ["<=15.0"]
      - criteria: ["<=+10%"]
    warning:
      - criteria: ["<=20.0"]
      - criteria: ["<=+15%"]
    weight: 1
total_score: { pass: "90%", warning: "75%" }
"#;

// Keptn: TestEvaluateObjectives "Simple comparison evaluation".
#[test]
fn test_evaluate_objectives_simple_comparison_evaluation() {
    let slo = keptn(SIMPLE);
    let history = [earlier(Verdict::Pass, &[("my-test-metric-1", Some(10.0))])];
    let e = evaluate(&slo, &values(&[("my-test-metric-1", Some(10.0))]), &history);
    let o = &e.objectives[0];
    assert_eq!(
        (o.status, o.score, o.compared_value),
        (ObjectiveStatus::Pass, 1.0, Some(10.0))
    );
    assert_eq!(
        o.pass_targets,
        [
            target("<=15.0", Some(15.0), false),
            target("<=+10%", Some(11.0), false)
        ]
    );
    assert_eq!(
        o.warning_targets,
        [
            target("<=20.0", Some(20.0), false),
            target("<=+15%", Some(11.5), false)
        ]
    );
    assert_eq!((e.result, e.score), (Verdict::Pass, 100.0));
}

// Keptn: TestEvaluateObjectives "Expect Warning": 16 misses both pass sets, meets <=20.
#[test]
fn test_evaluate_objectives_expect_warning() {
    let slo = keptn(SIMPLE);
    let history = [earlier(Verdict::Pass, &[("my-test-metric-1", Some(10.0))])];
    let e = evaluate(&slo, &values(&[("my-test-metric-1", Some(16.0))]), &history);
    let o = &e.objectives[0];
    assert_eq!((o.status, o.score), (ObjectiveStatus::Warning, 0.5));
    assert!(o.pass_targets.iter().all(|t| t.violated));
    assert_eq!(o.warning_targets[0], target("<=20.0", Some(20.0), false));
    assert_eq!((e.result, e.score), (Verdict::Fail, 50.0));
}

/// SIMPLE with a logging objective; `pass` as written.
fn with_logging(pass: &str) -> Slo {
    keptn(&SIMPLE.replace(
        "total_score:",
        &format!("  - sli: my-log-metric\n    {pass}\ntotal_score:"),
    ))
}

// Keptn: TestEvaluateObjectives "Logging SLI with no pass criteria should not affect score".
#[test]
fn test_evaluate_objectives_logging_sli_with_no_pass_criteria_should_not_affect_score() {
    let slo = with_logging("weight: 1");
    let history = [earlier(Verdict::Pass, &[("my-test-metric-1", Some(10.0))])];
    let v = values(&[
        ("my-test-metric-1", Some(10.0)),
        ("my-log-metric", Some(30.0)),
    ]);
    let e = evaluate(&slo, &v, &history);
    let log = &e.objectives[1];
    assert_eq!(
        (log.status, log.score, log.value),
        (ObjectiveStatus::Info, 0.0, Some(30.0))
    );
    assert!(log.pass_targets.is_empty() && log.warning_targets.is_empty());
    assert_eq!((e.result, e.score), (Verdict::Pass, 100.0));
}

// Keptn: TestEvaluateObjectives "Logging SLI with empty pass criteria array should not affect
// score and have status 'info' - BUG 2231".
#[test]
fn test_evaluate_objectives_logging_sli_with_empty_pass_criteria_array_bug_2231() {
    let slo = with_logging("pass: []\n    warning: []");
    let history = [earlier(Verdict::Pass, &[("my-test-metric-1", Some(10.0))])];
    let v = values(&[
        ("my-test-metric-1", Some(10.0)),
        ("my-log-metric", Some(30.0)),
    ]);
    let e = evaluate(&slo, &v, &history);
    assert_eq!(e.objectives[1].status, ObjectiveStatus::Info);
    assert_eq!((e.result, e.score), (Verdict::Pass, 100.0));
}

// Keptn: TestEvaluateObjectives "BUG 1125": no previous results, so the relative criterion
// holds; the fixed one in the same set does not.
#[test]
fn test_evaluate_objectives_bug_1125_no_previous_results() {
    let slo = keptn(
        r#"
comparison: { compare_with: several_results, include_result_with_score: pass, number_of_comparison_results: 2, aggregate_function: avg }
objectives:
  - sli: response_time_p50
    pass: [ { criteria: ["<=+20%", "<500"] } ]
total_score: { pass: "90%", warning: "75%" }
"#,
    );
    let e = evaluate(
        &slo,
        &values(&[("response_time_p50", Some(1011.0745528937252))]),
        &[],
    );
    let o = &e.objectives[0];
    assert_eq!((o.status, o.compared_value), (ObjectiveStatus::Fail, None));
    assert_eq!(
        o.pass_targets,
        [
            target("<=+20%", None, false),
            target("<500", Some(500.0), true)
        ]
    );
    assert_eq!((e.result, e.score), (Verdict::Fail, 0.0));
}

// Keptn: TestEvaluateObjectives "BUG 1263": the only earlier value is a failed retrieval;
// with nothing to compare against the relative criterion holds.
#[test]
fn test_evaluate_objectives_bug_1263_previous_sli_failed() {
    let slo = keptn(
        r#"
comparison: { compare_with: single_result, include_result_with_score: pass, number_of_comparison_results: 1, aggregate_function: avg }
objectives:
  - sli: response_time_p50
    pass: [ { criteria: ["<=+20%"] } ]
total_score: { pass: "90%", warning: "75%" }
"#,
    );
    let history = [earlier(Verdict::Pass, &[("response_time_p50", None)])];
    let e = evaluate(
        &slo,
        &values(&[("response_time_p50", Some(100.0))]),
        &history,
    );
    assert_eq!(e.objectives[0].status, ObjectiveStatus::Pass);
    assert_eq!(
        e.objectives[0].pass_targets,
        [target("<=+20%", None, false)]
    );
    assert_eq!((e.result, e.score), (Verdict::Pass, 100.0));
}

// Keptn: TestEvaluateObjectives "6096 if SLI does not have objective have a message": the
// objective's SLI got no value. Lighthouse fails the objective with score 0; glidepath
// scores the same and says `error`, naming the SLI.
#[test]
fn test_evaluate_objectives_6096_sli_without_value() {
    let slo = keptn(&SIMPLE.replace("sli: my-test-metric-1", "sli: a_different_metric"));
    let history = [
        earlier(
            Verdict::Pass,
            &[
                ("my-test-metric-1", Some(10.0)),
                ("a_different_metric", Some(5.0)),
            ],
        ),
        earlier(Verdict::Pass, &[("my-test-metric-1", Some(10.0))]),
    ];
    let e = evaluate(&slo, &values(&[("my-test-metric-1", Some(10.0))]), &history);
    let o = &e.objectives[0];
    assert_eq!(
        (o.status, o.score, o.value),
        (ObjectiveStatus::Error, 0.0, None)
    );
    assert!(
        o.pass_targets
            .iter()
            .chain(&o.warning_targets)
            .all(|t| t.violated)
    );
    assert_eq!(o.compared_value, Some(5.0));
    assert_eq!((e.result, e.score), (Verdict::Error, 0.0));
    assert!(
        e.message.starts_with("no data for a_different_metric"),
        "{}",
        e.message
    );
}

// Keptn: TestEvaluateObjectives "9198 SLO file does not have objectives": fail, score 0.
#[test]
fn test_evaluate_objectives_9198_slo_file_does_not_have_objectives() {
    let slo = keptn("objectives: []\ntotal_score: { pass: \"90%\", warning: \"75%\" }\n");
    let e = evaluate(&slo, &values(&[("no metric", None)]), &[]);
    assert_eq!((e.result, e.score), (Verdict::Fail, 0.0));
    assert!(e.message.contains("no SLO objective"), "{}", e.message);
    // Keptn skips empty items: a list of only `~` has no objectives either.
    let slo = keptn("objectives:\n  - ~\n  -\ntotal_score: { pass: \"90%\" }\n");
    assert!(slo.objectives.is_empty());
    assert_eq!(evaluate(&slo, &BTreeMap::new(), &[]).result, Verdict::Fail);
}

// Keptn: TestEvaluateObjectives "Fail with result equal to nil" and "Fail with result
// success = false": no value (never measured, or its retrieval failed) scores 0 against a
// maximum of 1; the relative targets still show the compared value.
#[test]
fn test_evaluate_objectives_fail_with_result_equal_to_nil_or_success_false() {
    let slo = keptn(SIMPLE);
    let history = [earlier(Verdict::Pass, &[("my-test-metric-1", Some(10.0))])];
    for v in [values(&[]), values(&[("my-test-metric-1", None)])] {
        let e = evaluate(&slo, &v, &history);
        let o = &e.objectives[0];
        assert_eq!((o.status, o.score), (ObjectiveStatus::Error, 0.0));
        assert_eq!(o.pass_targets[0], target("<=15.0", Some(15.0), true));
        assert!(o.pass_targets[1].violated);
        assert_eq!((e.result, e.score), (Verdict::Error, 0.0));
    }
}

/// Two objectives, `b` possibly key, with the given values.
fn two(key: bool) -> Slo {
    keptn(&format!(
        r#"
comparison: {{ compare_with: single_result }}
objectives:
  - sli: a
    pass: [ {{ criteria: ["<=8.0"] }} ]
    warning: [ {{ criteria: ["<=13.0"] }} ]
  - sli: b
    key_sli: {key}
    displayName: cpu time
    pass: [ {{ criteria: ["<=8.0"] }} ]
    warning: [ {{ criteria: ["<=12.0"] }} ]
total_score: {{ pass: "90%", warning: "75%" }}
"#
    ))
}

// Keptn: TestCalculateScore "Simple comparison": one objective met, 100%, pass.
#[test]
fn test_calculate_score_simple_comparison() {
    let e = evaluate(
        &two(false),
        &values(&[("a", Some(1.0)), ("b", Some(2.0))]),
        &[],
    );
    assert_eq!((e.result, e.score), (Verdict::Pass, 100.0));
}

// Keptn: TestCalculateScore "Key SLI failed": 50%, and the key SLI fails the evaluation
// whatever the score; a key SLI with no value fails it in lighthouse too.
#[test]
fn test_calculate_score_key_sli_failed() {
    let e = evaluate(
        &two(true),
        &values(&[("a", Some(1.0)), ("b", Some(20.0))]),
        &[],
    );
    assert_eq!((e.result, e.score), (Verdict::Fail, 50.0));
    assert_eq!(e.message, "key SLI failed: cpu time");
    // A key SLI in warning is not a failed key SLI: (1 + 0.5) / 2 = 75% is a warning.
    let e = evaluate(
        &two(true),
        &values(&[("a", Some(1.0)), ("b", Some(10.0))]),
        &[],
    );
    assert_eq!((e.result, e.score), (Verdict::Warning, 75.0));
    let e = evaluate(&two(true), &values(&[("a", Some(1.0)), ("b", None)]), &[]);
    assert_eq!((e.result, e.score), (Verdict::Error, 50.0));
    assert!(
        e.message
            .contains("scored without them: fail, key SLI failed: cpu time"),
        "{}",
        e.message
    );
}

// Keptn: TestCalculateScore "Non-Key SLI warning": a score at the warning target is a warning.
#[test]
fn test_calculate_score_non_key_sli_warning() {
    let e = evaluate(
        &two(false),
        &values(&[("a", Some(1.0)), ("b", Some(10.0))]),
        &[],
    );
    assert_eq!((e.result, e.score), (Verdict::Warning, 75.0));
    assert_eq!(e.message, "score 75 ≥ warning 75");
}

// Keptn: TestCalculateScore "Non-Key SLI fail": below the warning target fails.
#[test]
fn test_calculate_score_non_key_sli_fail() {
    let e = evaluate(
        &two(false),
        &values(&[("a", Some(1.0)), ("b", Some(20.0))]),
        &[],
    );
    assert_eq!((e.result, e.score), (Verdict::Fail, 50.0));
}

// Keptn: TestCalculateScore "Only Info SLIs": nothing to score is a pass at 100, even for
// an info objective without a value, and even for a key SLI without pass criteria.
#[test]
fn test_calculate_score_only_info_slis() {
    let slo = keptn(
        "objectives:\n  - sli: a\n  - sli: b\n    key_sli: true\n    warning: [ { criteria: [\"<=1\"] } ]\ntotal_score: { pass: \"90%\" }\n",
    );
    let e = evaluate(&slo, &values(&[("a", Some(1.0))]), &[]);
    assert_eq!((e.result, e.score), (Verdict::Pass, 100.0));
    assert_eq!(e.objectives[1].status, ObjectiveStatus::Info);
    // Warning-only objectives are info: their criteria are shown, never judged.
    assert_eq!(
        e.objectives[1].warning_targets,
        [target("<=1", Some(1.0), true)]
    );
}

// Keptn: TestCalculateScore "Info objectives should not be part of score".
#[test]
fn test_calculate_score_info_objectives_should_not_be_part_of_score() {
    let slo = keptn(
        "objectives:\n  - sli: a\n    pass: [ { criteria: [\"<=1\"] } ]\n    weight: 2\n  - sli: log\n    weight: 5\ntotal_score: { pass: \"90%\" }\n",
    );
    let e = evaluate(&slo, &values(&[("a", Some(1.0)), ("log", Some(99.0))]), &[]);
    assert_eq!((e.result, e.score), (Verdict::Pass, 100.0));
}

// Lighthouse's calculateScore sums only objectives that show pass targets: a pass set with
// an empty criteria list passes, counts in the maximum, and adds nothing.
#[test]
fn test_calculate_score_empty_criteria_list_scores_nothing() {
    let slo = keptn(
        "objectives:\n  - sli: a\n    pass: [ { criteria: [\"<=1\"] } ]\n  - sli: b\n    pass: [ { criteria: [] } ]\ntotal_score: { pass: \"50%\" }\n",
    );
    let e = evaluate(&slo, &values(&[("a", Some(1.0)), ("b", Some(7.0))]), &[]);
    assert_eq!(e.objectives[1].status, ObjectiveStatus::Pass);
    assert_eq!((e.result, e.score), (Verdict::Pass, 50.0));
}

// Lighthouse compares the unrounded score: 2 of 3 is 66.666…, below a pass of 66.67%.
#[test]
fn test_calculate_score_compares_the_unrounded_score() {
    let slo = keptn(
        "objectives:\n  - sli: a\n    pass: [ { criteria: [\"<=1\"] } ]\n  - sli: b\n    pass: [ { criteria: [\"<=1\"] } ]\n  - sli: c\n    pass: [ { criteria: [\"<=1\"] } ]\ntotal_score: { pass: \"66.67\" }\n",
    );
    let v = values(&[("a", Some(1.0)), ("b", Some(1.0)), ("c", Some(2.0))]);
    let e = evaluate(&slo, &v, &[]);
    assert_eq!(e.result, Verdict::Fail);
    assert!((e.score - 200.0 / 3.0).abs() < 1e-12);
    assert_eq!(e.message, "score 66.67 below 66.67");
}

// Keptn: TestCalculatePercentile: positions p*(n+1) over 0..=10.
#[test]
fn test_calculate_percentile() {
    let slo = |f: &str| {
        keptn(&format!(
            "comparison: {{ compare_with: several_results, number_of_comparison_results: 11, aggregate_function: {f} }}\nobjectives:\n  - sli: a\n    pass: [ {{ criteria: [\"<=+0%\"] }} ]\ntotal_score: {{ pass: \"90%\" }}\n"
        ))
    };
    let history: Vec<HistoryEntry> = (0..=10)
        .map(|i| earlier(Verdict::Pass, &[("a", Some(f64::from(i)))]))
        .collect();
    for (f, expected) in [("p50", 5.0), ("p90", 9.8), ("p95", 10.0), ("avg", 5.0)] {
        let e = evaluate(&slo(f), &values(&[("a", Some(1.0))]), &history);
        let got = e.objectives[0].compared_value.unwrap();
        assert!((got - expected).abs() < 1e-9, "{f}: {got}");
    }
}

// Keptn: TestEvaluateComparison (and TestEvaluateSingleCriteria, which runs the same cases
// through the criteria parser): each relative form against avg([10, 10]) or p50.
#[test]
fn test_evaluate_comparison() {
    let cases = [
        (10.0, "<=+10%", "avg", true),
        (11.01, "<=+10%", "avg", false),
        (10.0, "<+0%", "avg", false),
        (10.0, ">+0%", "avg", false),
        (11.0, "=+1.0", "avg", true),
        (9.0, "=-1.0", "avg", true),
        (10.0, ">=-10.0%", "p50", true),
        (10.0, "<=10.0", "avg", true),
    ];
    let history = [
        earlier(Verdict::Pass, &[("m", Some(10.0))]),
        earlier(Verdict::Pass, &[("m", Some(10.0))]),
    ];
    for (value, criterion, f, expected) in cases {
        let slo = keptn(&format!(
            "comparison: {{ compare_with: several_results, include_result_with_score: pass, number_of_comparison_results: 2, aggregate_function: {f} }}\nobjectives:\n  - sli: m\n    pass: [ {{ criteria: [\"{criterion}\"] }} ]\ntotal_score: {{ pass: \"90%\" }}\n"
        ));
        let e = evaluate(&slo, &values(&[("m", Some(value))]), &history);
        assert_eq!(
            e.result == Verdict::Pass,
            expected,
            "{value} {criterion} {f}"
        );
    }
}

// Keptn: TestEvaluateCriteriaSet and TestEvaluateOrCombinedCriteria: a set ANDs its
// criteria, sets are ORed, and every set is evaluated for its violations.
#[test]
fn test_evaluate_criteria_set_and_or_combined_criteria() {
    let history = [
        earlier(Verdict::Pass, &[("m", Some(10.0))]),
        earlier(Verdict::Pass, &[("m", Some(10.0))]),
    ];
    let judge = |pass: &str, value: f64| {
        let slo = keptn(&format!(
            "comparison: {{ compare_with: several_results, number_of_comparison_results: 2 }}\nobjectives:\n  - sli: m\n    pass: {pass}\ntotal_score: {{ pass: \"90%\" }}\n"
        ));
        evaluate(&slo, &values(&[("m", Some(value))]), &history)
    };
    let and = r#"[ { criteria: ["<=+10%", "<=10.0"] } ]"#;
    let or = r#"[ { criteria: ["<=+10%"] }, { criteria: ["<=10.0"] } ]"#;
    assert_eq!(judge(and, 10.0).result, Verdict::Pass);
    assert_eq!(judge(and, 11.0).result, Verdict::Fail);
    assert_eq!(judge(or, 10.0).result, Verdict::Pass);
    let e = judge(or, 11.0);
    assert_eq!(e.result, Verdict::Pass);
    assert_eq!(
        e.objectives[0].pass_targets[1],
        target("<=10.0", Some(10.0), true)
    );
    assert_eq!(judge(or, 20.0).result, Verdict::Fail);
}

// Keptn: Test_aggregateValues "Skip because of no previous results" and "Skip because of no
// previous success"; and include_result_with_score picking which earlier results count.
#[test]
fn test_aggregate_values_skip_and_include_result_with_score() {
    let slo = |include: &str| {
        keptn(&format!(
            "comparison: {{ compare_with: several_results, number_of_comparison_results: 2, include_result_with_score: {include} }}\nobjectives:\n  - sli: m\n    pass: [ {{ criteria: [\"<=+0%\"] }} ]\ntotal_score: {{ pass: \"90%\" }}\n"
        ))
    };
    let compared = |s: &Slo, h: &[HistoryEntry]| {
        evaluate(s, &values(&[("m", Some(1.0))]), h).objectives[0].compared_value
    };
    assert_eq!(compared(&slo("all"), &[]), None);
    assert_eq!(
        compared(&slo("all"), &[earlier(Verdict::Pass, &[("m", None)])]),
        None
    );
    let h = [
        earlier(Verdict::Pass, &[("m", Some(2.0))]),
        earlier(Verdict::Warning, &[("m", Some(4.0))]),
        earlier(Verdict::Fail, &[("m", Some(8.0))]),
    ];
    assert_eq!(compared(&slo("all"), &h), Some(6.0));
    assert_eq!(compared(&slo("pass_or_warn"), &h), Some(3.0));
    assert_eq!(compared(&slo("PASS"), &h), Some(2.0));
    // Invalidated evaluations are left out, as the datastore's excludeInvalidated does.
    let mut h = h.to_vec();
    h[2].invalid = true;
    assert_eq!(compared(&slo("all"), &h), Some(3.0));
}

// Keptn: parseSLO (common.go): the defaults lighthouse applies to a slo.yaml.
#[test]
fn test_parse_slo_defaults() {
    let slo = keptn("objectives:\n  - sli: a\n    weight: 0\ntotal_score: { pass: \"90\" }\n");
    let c = slo.comparison;
    assert_eq!(
        (c.compare_with, c.number_of_results, c.include, c.aggregate),
        (
            CompareWith::SingleResult,
            1,
            IncludeResults::All,
            Aggregate::Avg
        )
    );
    assert_eq!(
        (slo.objectives[0].weight, slo.total_score.pass),
        (1.0, 90.0)
    );
    // A comparison block without compare_with compares with 3 results, whatever the number.
    let slo = keptn(
        "comparison: { number_of_comparison_results: 5 }\nobjectives: []\ntotal_score: { pass: \"90%\" }\n",
    );
    assert_eq!(slo.comparison.number_of_results, 3);
    let slo = keptn(
        "comparison: { compare_with: several_results, number_of_comparison_results: 0 }\nobjectives: []\ntotal_score: { pass: \"90%\" }\n",
    );
    assert_eq!(
        (
            slo.comparison.compare_with,
            slo.comparison.number_of_results
        ),
        (CompareWith::SeveralResults, 3)
    );
    let slo = keptn(
        "comparison: { compare_with: single_result, number_of_comparison_results: 5 }\nobjectives: []\ntotal_score: { pass: \"90%\" }\n",
    );
    assert_eq!(slo.comparison.number_of_results, 1);
}

// What lighthouse cannot score (it errors, fails, or silently compares with 0) is refused
// with the place to fix.
#[test]
fn keptn_files_lighthouse_cannot_score_are_refused() {
    let cases = [
        ("objectives: []\n", "no target score defined"),
        (
            "objectives: []\ntotal_score: { warning: \"75%\" }\n",
            "no target score defined",
        ),
        (
            "objectives: []\ntotal_score: { pass: \"ninety\" }\n",
            "total_score.pass `ninety`",
        ),
        (
            "objectives: []\ntotal_score: { pass: \"90%\", warning: \"x\" }\n",
            "total_score.warning",
        ),
        (
            "comparison: { aggregate_function: max }\nobjectives: []\ntotal_score: { pass: \"90%\" }\n",
            "comparison.aggregate_function `max`",
        ),
        (
            "comparison: { compare_with: several }\nobjectives: []\ntotal_score: { pass: \"90%\" }\n",
            "comparison.compare_with `several` is not one of",
        ),
        (
            "objectives:\n  - sli: a\n    weight: -1\ntotal_score: { pass: \"90%\" }\n",
            "weight -1 is negative",
        ),
        (
            "objectives:\n  - sli: a\n    weight: 1.5\ntotal_score: { pass: \"90%\" }\n",
            "slo.yaml:3",
        ),
        (
            "objectives:\n  - sli: a\n    pass:\n      - ~\ntotal_score: { pass: \"90%\" }\n",
            "an empty item in `pass`",
        ),
        (
            "objectives:\n  - sli: a\n    pass: [ { criteria: [\"<=nan\"] } ]\ntotal_score: { pass: \"90%\" }\n",
            "invalid criterion `<=nan`",
        ),
    ];
    for (yaml, expected) in cases {
        let err = keptn_error(yaml);
        assert!(err.contains(expected), "{yaml}: {err}");
    }
}
