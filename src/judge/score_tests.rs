//! Cases from Kayenta's scorer tests (spinnaker/kayenta at a69573b,
//! `kayenta-judge/src/test/scala/com/netflix/kayenta/judge/ScorerSuite.scala`; each test's
//! name is given beside it), then the inconclusive outcome Kayenta lacks.

use super::*;
use Classification::{High, Inconclusive, Low, Nodata, Pass};

fn metric(name: &str, group: &str, classification: Classification, critical: bool) -> ScoredMetric {
    ScoredMetric {
        name: name.to_owned(),
        groups: vec![group.to_owned()],
        classification,
        critical,
        muted: false,
        reason: format!("{name} was {}", classification.name()),
    }
}

fn weights(w: &[(&str, f64)]) -> BTreeMap<String, f64> {
    w.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect()
}

const KAYENTA: ScoreThresholds = ScoreThresholds {
    pass: 95.0,
    marginal: 75.0,
};

fn summary(metrics: &[ScoredMetric], w: &[(&str, f64)]) -> f64 {
    score(metrics, &weights(w), KAYENTA).unwrap().score
}

#[test]
fn kayenta_weighted_sum_scores() {
    let m = metric;
    // "Weighted Sum Group Scorer: Single Metric Pass"
    assert_eq!(summary(&[m("a", "g", Pass, false)], &[]), 100.0);
    // "Weighted Sum Group Scorer: Single Metric Fail"
    assert_eq!(summary(&[m("a", "g", High, false)], &[]), 0.0);
    // "Weighted Sum Group Scorer: Single group Nodata"
    let v = score(&[m("a", "n", Nodata, false)], &weights(&[]), KAYENTA).unwrap();
    assert_eq!((v.score, v.groups.len(), v.groups[0].score), (0.0, 1, 0.0));
    // "Weighted Sum Group Scorer: Two Groups, one Pass, one Nodata"
    let two = [
        m("a", "p", Pass, false),
        m("b", "p", Pass, false),
        m("c", "n", Nodata, false),
    ];
    let v = score(&two, &weights(&[]), KAYENTA).unwrap();
    let mut groups: Vec<f64> = v.groups.iter().map(|g| g.score).collect();
    groups.sort_by(f64::total_cmp);
    assert_eq!((groups, v.score), (vec![0.0, 100.0], 100.0));
    // "Weighted Sum Group Scorer: One Group, Two Metrics"
    assert_eq!(
        summary(&[m("a", "g", Pass, false), m("b", "g", High, false)], &[]),
        50.0
    );
    // "Weighted Sum Group Scorer: One Group, Three Metrics"
    let three = [
        m("a", "g", Pass, false),
        m("b", "g", High, false),
        m("c", "g", Low, false),
    ];
    assert_eq!(summary(&three, &[]), 33.33);
    // "Weighted Sum Group Scorer: Two Groups, Three Metrics"
    let g = [
        m("a", "group-1", Pass, false),
        m("b", "group-1", Pass, false),
        m("c", "group-2", High, false),
    ];
    assert_eq!(summary(&g, &[("group-1", 75.0), ("group-2", 25.0)]), 75.0);
    // "Weighted Sum Group Scorer: Two Groups, Three Metrics (Equal Weight)"
    let g = [
        m("a", "group-1", Pass, false),
        m("b", "group-1", High, false),
        m("c", "group-2", High, false),
    ];
    assert_eq!(summary(&g, &[("group-1", 50.0), ("group-2", 50.0)]), 25.0);
    // "Weighted Sum Group Scorer: Two Groups, Three Metrics (Equal Weight), one NoData"
    let g = [
        m("a", "group-1", Pass, false),
        m("b", "group-1", Nodata, false),
        m("c", "group-2", High, false),
    ];
    assert_eq!(summary(&g, &[("group-1", 50.0), ("group-2", 50.0)]), 50.0);
    // "Weighted Sum Group Scorer: Two Metrics, one good (normal), one fail (critical)"
    let v = score(
        &[m("a", "g", Pass, false), m("b", "g", High, true)],
        &weights(&[]),
        KAYENTA,
    )
    .unwrap();
    assert_eq!((v.score, v.outcome), (0.0, Outcome::Fail));
    assert!(v.reason.unwrap().starts_with("critical metric b failed"));
    // "Weighted Sum Group Scorer: Two Metrics, one low (normal), one good (critical)"
    assert_eq!(
        summary(&[m("a", "g", Low, false), m("b", "g", Pass, true)], &[]),
        50.0
    );
    // "Weighted Sum Group Scorer: Two Metrics, one good (normal), one nodata (critical)"
    assert_eq!(
        summary(&[m("a", "g", Pass, false), m("b", "g", Nodata, true)], &[]),
        0.0
    );
    // "Weighted Sum Group Scorer: Two Groups (Unequal Weight), Four Metrics"
    let g = [
        m("a", "group1", High, false),
        m("b", "group1", Low, false),
        m("c", "group1", Pass, false),
        m("d", "group2", High, false),
    ];
    assert_eq!(summary(&g, &[("group1", 15.0), ("group2", 85.0)]), 5.0);
}

#[test]
fn thresholds_classify_the_score() {
    let m = metric;
    let four = |fails: usize| -> Vec<ScoredMetric> {
        (0..4)
            .map(|i| {
                m(
                    &format!("m{i}"),
                    "g",
                    if i < fails { High } else { Pass },
                    false,
                )
            })
            .collect()
    };
    let t = ScoreThresholds {
        pass: 90.0,
        marginal: 70.0,
    };
    let outcome = |fails| score(&four(fails), &weights(&[]), t).unwrap().outcome;
    assert_eq!(outcome(0), Outcome::Pass);
    assert_eq!(outcome(1), Outcome::Marginal); // 75
    assert_eq!(outcome(2), Outcome::Fail); // 50
    let muted = ScoredMetric {
        muted: true,
        ..m("x", "g", High, true)
    };
    assert_eq!(
        score(&[m("a", "g", Pass, false), muted], &weights(&[]), t)
            .unwrap()
            .outcome,
        Outcome::Pass
    );
}

#[test]
fn inconclusive_metrics_hold_the_judgement_only_when_they_could_change_it() {
    let m = metric;
    let t = ScoreThresholds {
        pass: 90.0,
        marginal: 70.0,
    };
    // 9 of 10 pass: the tenth decides between 100 (pass) and 90 (pass): pass either way.
    let mut ten: Vec<ScoredMetric> = (0..9)
        .map(|i| m(&format!("m{i}"), "g", Pass, false))
        .collect();
    ten.push(m("latency", "g", Inconclusive, false));
    let v = score(&ten, &weights(&[]), t).unwrap();
    assert_eq!((v.outcome, v.range), (Outcome::Pass, Some([90.0, 100.0])));
    assert!(
        v.reason
            .unwrap()
            .contains("whatever latency turns out to be")
    );
    // 4 of 5: 80 (marginal) or 100 (pass): inconclusive.
    let five = [
        m("a", "g", Pass, false),
        m("b", "g", Pass, false),
        m("c", "g", Pass, false),
        m("d", "g", Pass, false),
        m("e", "g", Inconclusive, false),
    ];
    let v = score(&five, &weights(&[]), t).unwrap();
    assert_eq!(
        (v.outcome, v.range, v.score),
        (Outcome::Inconclusive, Some([80.0, 100.0]), 100.0)
    );
    assert!(
        v.reason.unwrap().contains(
            "e inconclusive: the outcome could be pass (score 100) or marginal (score 80)"
        )
    );
    // A critical inconclusive metric could fail the whole judgement.
    let v = score(
        &[m("a", "g", Pass, false), m("b", "g", Inconclusive, true)],
        &weights(&[]),
        t,
    )
    .unwrap();
    assert_eq!(
        (v.outcome, v.range),
        (Outcome::Inconclusive, Some([0.0, 100.0]))
    );
    // A failure elsewhere decides whatever the undecided metric is.
    let v = score(
        &[m("a", "g", High, true), m("b", "g", Inconclusive, false)],
        &weights(&[]),
        t,
    )
    .unwrap();
    assert_eq!(v.outcome, Outcome::Fail);
}

#[test]
fn bad_options_are_refused() {
    let m = [metric("a", "g", Pass, false)];
    let bad = ScoreThresholds {
        pass: 70.0,
        marginal: 90.0,
    };
    assert!(matches!(
        score(&m, &weights(&[]), bad),
        Err(ScoreError::Thresholds { .. })
    ));
    assert!(matches!(
        score(&m, &weights(&[("g", 120.0)]), KAYENTA),
        Err(ScoreError::Weights(_))
    ));
    assert!(matches!(
        score(&m, &weights(&[("g", -1.0)]), KAYENTA),
        Err(ScoreError::Weights(_))
    ));
}
