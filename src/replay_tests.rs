//! Unit tests of `replay.rs`: the promotion rules walked over journaled analyses.

use super::*;
use crate::events::EvaluationRecord;
use crate::pipeline::Variables;

const PIPELINE: &str = r#"
apiVersion: glidepath/v1
kind: Pipeline
metadata: { name: shop }
spec:
  service: shop
  stages:
    - name: prod
      target: { sandbox: true, namespace: shop }
      steps:
        - evaluate: { slo: slo.yaml }
        - release:
            manifests: [app/]
            canary:
              analysis: { slo: slo.yaml, interval: 3s, failureLimit: 1 }
              steps:
                - weight: 10
                - pause: 1s
                - weight: 50
                - pause: 1s
                - weight: 100
"#;

fn slo_text(pass: &str, warning: &str) -> String {
    format!(
        "apiVersion: glidepath/v1\nkind: SLO\nmetadata: {{ name: shop }}\nspec:\n  slis:\n    error_ratio: sum(rate(errors[1m]))\n  objectives:\n    - sli: error_ratio\n      pass: [\"{pass}\"]\n      warning: [\"{warning}\"]\n      key: true\n  totalScore: {{ pass: 90%, warning: 50% }}\n"
    )
}

/// SLOs from files written into a folder, every step getting `file`.
struct Files {
    dir: tempfile::TempDir,
    file: &'static str,
}

impl Files {
    fn new(slos: &[(&'static str, String)], file: &'static str) -> Files {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("slo.yaml"), slo_text("<=0.01", "<=0.02")).unwrap();
        std::fs::create_dir(dir.path().join("app")).unwrap();
        for (name, text) in slos {
            std::fs::write(dir.path().join(name), text).unwrap();
        }
        Files { dir, file }
    }
}

impl SloSource for Files {
    fn slo(&mut self, _path: &str, _sli: Option<&str>) -> Result<Slo, String> {
        Slo::load(&self.dir.path().join(self.file), None).map_err(|e| e.to_string())
    }
    fn history(&mut self, _service: &str, _stage: &str) -> Vec<HistoryEntry> {
        Vec::new()
    }
}

fn at(ms: i64, event: Event) -> Envelope {
    Envelope {
        run: 1,
        seq: ms as u64,
        at_ms: ms,
        event,
    }
}

fn traffic(ms: i64, weight: u8) -> Envelope {
    at(
        ms,
        Event::Traffic {
            stage: "prod".into(),
            step: "release".into(),
            weight,
            note: String::new(),
            actual: None,
            planned: None,
            replicas: Vec::new(),
        },
    )
}

fn analysis(ms: i64, errors: f64, verdict: Verdict, part: Option<AnalysisPart>) -> Envelope {
    at(
        ms,
        Event::Analysis {
            stage: "prod".into(),
            step: "release".into(),
            values: [("error_ratio".to_owned(), Some(errors))].into(),
            stable: BTreeMap::new(),
            targets: BTreeMap::new(),
            warnings: BTreeMap::new(),
            verdict,
            part,
            judgement: None,
        },
    )
}

impl Files {
    /// The pipeline, as if written beside the SLOs.
    fn pipeline(&self) -> PipelineFile {
        let path = self.dir.path().join("pipeline.yaml");
        crate::pipeline::load_model(PIPELINE, &path, &Variables::default()).unwrap()
    }
}

/// A bad canary's run: fine at 10%, failing twice at 50%, rolled back.
fn bad_canary(part: bool) -> Vec<Envelope> {
    let p = |x| part.then_some(x);
    vec![
        traffic(1_000, 10),
        analysis(4_000, 0.001, Verdict::Pass, p(AnalysisPart::Watch)),
        traffic(5_000, 50),
        analysis(7_000, 0.04, Verdict::Fail, p(AnalysisPart::Watch)),
        analysis(10_000, 0.06, Verdict::Fail, p(AnalysisPart::Watch)),
    ]
}

#[test]
fn a_looser_slo_lets_the_bad_canary_go_on_where_the_records_end() {
    let mut files = Files::new(&[("loose.yaml", slo_text("<=0.1", "<=0.2"))], "loose.yaml");
    let r = replay(
        &files.pipeline(),
        "shop",
        &bad_canary(true),
        &mut files,
        None,
    )
    .unwrap();
    assert_eq!(r.changed(), 2);
    let step = &r.steps[0];
    assert_eq!(step.step, "prod/release");
    assert_eq!(
        step.recorded,
        Some(Ending::Stopped {
            n: 3,
            at_ms: 10_000,
            weight: Some(50),
            why: "analysis failed 2 times (limit 1)".into(),
            in_bake: false
        })
    );
    assert_eq!(
        step.replayed,
        Some(Ending::Open {
            analyses: 3,
            weight: Some(50)
        })
    );
    assert!(r.outcome_changed());
}

#[test]
fn a_judgement_that_now_passes_promotes_and_the_rest_is_its_bake() {
    let mut events = bad_canary(true);
    events.truncate(3);
    events.push(traffic(11_000, 100));
    events.push(analysis(
        14_000,
        0.015,
        Verdict::Warning,
        Some(AnalysisPart::Judge),
    ));
    events.push(analysis(
        17_000,
        0.03,
        Verdict::Fail,
        Some(AnalysisPart::Judge),
    ));
    events.push(analysis(
        20_000,
        0.05,
        Verdict::Fail,
        Some(AnalysisPart::Judge),
    ));
    let mut strict = Files::new(&[("slo.yaml", slo_text("<=0.01", "<=0.02"))], "slo.yaml");
    let same = replay(&strict.pipeline(), "shop", &events, &mut strict, None).unwrap();
    assert_eq!(
        same.changed(),
        0,
        "the run's own SLO decides as the run did"
    );
    assert_eq!(
        same.steps[0].recorded,
        Some(Ending::Stopped {
            n: 4,
            at_ms: 20_000,
            weight: Some(100),
            why: "analysis failed 2 times (limit 1)".into(),
            in_bake: false
        })
    );
    assert!(!same.outcome_changed());
    let mut loose = Files::new(&[("loose.yaml", slo_text("<=0.02", "<=0.1"))], "loose.yaml");
    let r = replay(&loose.pipeline(), "shop", &events, &mut loose, None).unwrap();
    assert_eq!(
        r.steps[0].replayed,
        Some(Ending::Promoted {
            n: 2,
            at_ms: 14_000,
            on: Verdict::Pass,
            baked: 2
        })
    );
}

#[test]
fn a_stricter_slo_stops_the_release_earlier() {
    let events = vec![
        traffic(1_000, 10),
        analysis(4_000, 0.004, Verdict::Pass, Some(AnalysisPart::Watch)),
        analysis(7_000, 0.005, Verdict::Pass, Some(AnalysisPart::Watch)),
        traffic(8_000, 100),
        analysis(11_000, 0.004, Verdict::Pass, Some(AnalysisPart::Judge)),
    ];
    let mut strict = Files::new(&[("s.yaml", slo_text("<=0.001", "<=0.002"))], "s.yaml");
    let r = replay(&strict.pipeline(), "shop", &events, &mut strict, None).unwrap();
    assert_eq!(
        r.steps[0].recorded,
        Some(Ending::Promoted {
            n: 3,
            at_ms: 11_000,
            on: Verdict::Pass,
            baked: 0
        })
    );
    assert_eq!(
        r.steps[0].replayed,
        Some(Ending::Stopped {
            n: 2,
            at_ms: 7_000,
            weight: Some(10),
            why: "analysis failed 2 times (limit 1)".into(),
            in_bake: false
        })
    );
}

#[test]
fn old_journals_without_parts_judge_at_the_last_weight() {
    let events = vec![
        traffic(1_000, 10),
        analysis(4_000, 0.001, Verdict::Pass, None),
        traffic(8_000, 100),
        analysis(11_000, 0.015, Verdict::Warning, None),
    ];
    let mut loose = Files::new(&[("l.yaml", slo_text("<=0.02", "<=0.1"))], "l.yaml");
    let r = replay(&loose.pipeline(), "shop", &events, &mut loose, None).unwrap();
    assert_eq!(r.decisions[1].part, Some(AnalysisPart::Judge));
    assert_eq!(r.decisions[0].part, Some(AnalysisPart::Watch));
    assert_eq!(
        r.steps[0].recorded,
        Some(Ending::Held {
            n: 2,
            at_ms: 11_000
        })
    );
    assert!(matches!(
        r.steps[0].replayed,
        Some(Ending::Promoted { n: 2, .. })
    ));
}

#[test]
fn a_gate_is_decided_again_from_its_journaled_values() {
    let gate = at(
        500,
        Event::StepFinished {
            stage: "prod".into(),
            step: "evaluate".into(),
            status: crate::events::Status::Passed,
            verdict: Some(Verdict::Pass),
            summary: "ok".into(),
            evidence: Vec::new(),
            evaluation: Some(EvaluationRecord {
                service: "shop".into(),
                result: Verdict::Pass,
                score: 100.0,
                sli_values: [("error_ratio".to_owned(), Some(0.005))].into(),
            }),
        },
    );
    let mut strict = Files::new(&[("s.yaml", slo_text("<=0.001", "<=0.002"))], "s.yaml");
    let r = replay(&strict.pipeline(), "shop", &[gate], &mut strict, None).unwrap();
    assert_eq!(r.decisions.len(), 1);
    assert_eq!(r.decisions[0].what, "gate");
    assert_eq!(r.decisions[0].replayed, Verdict::Fail);
    assert!(r.outcome_changed());
    assert_eq!(r.steps[0].recorded_outcome.as_deref(), Some("passed: ok"));
}

#[test]
fn an_sli_the_run_never_measured_is_no_data_and_never_passes() {
    let other = "apiVersion: glidepath/v1\nkind: SLO\nmetadata: { name: shop }\nspec:\n  slis:\n    saturation: sum(rate(cpu[1m]))\n  objectives:\n    - sli: saturation\n      pass: [\"<0.8\"]\n".to_owned();
    let mut files = Files::new(&[("o.yaml", other)], "o.yaml");
    let r = replay(
        &files.pipeline(),
        "shop",
        &bad_canary(true),
        &mut files,
        None,
    )
    .unwrap();
    assert!(
        r.decisions.iter().all(|d| d.replayed != Verdict::Pass),
        "{r:#?}"
    );
}

#[test]
fn a_statistical_judgement_keeps_its_verdict_under_other_thresholds() {
    let judgement: crate::events::Judgement =
        serde_json::from_value(serde_json::json!({"outcome": "fail", "verdict": "fail"})).unwrap();
    let mut judged = analysis(7_000, 0.001, Verdict::Fail, Some(AnalysisPart::Watch));
    if let Event::Analysis { judgement: j, .. } = &mut judged.event {
        *j = Some(Box::new(judgement));
    }
    let events = vec![
        traffic(1_000, 10),
        analysis(4_000, 0.001, Verdict::Pass, Some(AnalysisPart::Watch)),
        judged,
    ];
    let mut loose = Files::new(&[("l.yaml", slo_text("<=0.5", "<=0.9"))], "l.yaml");
    let r = replay(&loose.pipeline(), "shop", &events, &mut loose, None).unwrap();
    assert_eq!(r.changed(), 0, "{r:#?}");
    assert_eq!(r.decisions[1].replayed, Verdict::Fail);
    assert!(r.decisions[1].why.contains("statistical judge"), "{r:#?}");
}

#[test]
fn an_inconclusive_judgement_holds_even_where_warnings_promote() {
    let pipeline = PIPELINE.replace(
        "failureLimit: 1 }",
        "failureLimit: 1, promoteOn: [pass, warning] }",
    );
    let judgement: crate::events::Judgement = serde_json::from_value(
        serde_json::json!({"outcome": "inconclusive", "verdict": "warning"}),
    )
    .unwrap();
    let mut held = analysis(11_000, 0.001, Verdict::Warning, Some(AnalysisPart::Judge));
    if let Event::Analysis { judgement: j, .. } = &mut held.event {
        *j = Some(Box::new(judgement));
    }
    let events = vec![traffic(8_000, 100), held];
    let mut files = Files::new(&[], "slo.yaml");
    let path = files.dir.path().join("pipeline.yaml");
    let file = crate::pipeline::load_model(&pipeline, &path, &Variables::default()).unwrap();
    let r = replay(&file, "shop", &events, &mut files, None).unwrap();
    assert_eq!(
        r.steps[0].replayed,
        Some(Ending::Held {
            n: 1,
            at_ms: 11_000
        }),
        "{r:#?}"
    );
}

/// A judgement of the statistical judge over a canary 30% slower than its baseline, as
/// `settings` decide it.
fn slower_canary(settings: &str, ms: i64, part: AnalysisPart) -> Envelope {
    use crate::steps::release::judgement::{Sampled, decide};
    let settings: crate::pipeline::model::Statistical = crate::yaml::from_str(settings).unwrap();
    let side = |base: f64| (0..30).map(|i| Some(base + f64::from(i % 7))).collect();
    let latency = Sampled {
        name: "latency".into(),
        options: settings.metrics["latency"].clone(),
        samples: [side(130.0), side(100.0)],
        queries: [None, None],
    };
    let judgement = decide(&settings, &[latency], None, false).unwrap();
    let mut judged = analysis(ms, 0.001, judgement.verdict, Some(part));
    if let Event::Analysis { judgement: j, .. } = &mut judged.event {
        *j = Some(Box::new(judgement));
    }
    judged
}

#[test]
fn another_judge_decides_the_judgements_and_the_slo_the_bake() {
    let strict = "metrics: { latency: { allowedIncrease: 1.1, critical: true } }\n";
    let events = vec![
        traffic(1_000, 100),
        slower_canary(strict, 4_000, AnalysisPart::Judge),
        slower_canary(strict, 7_000, AnalysisPart::Judge),
        analysis(10_000, 0.015, Verdict::Warning, Some(AnalysisPart::Bake)),
    ];
    let mut files = Files::new(&[("loose.yaml", slo_text("<=0.02", "<=0.1"))], "loose.yaml");
    let dir = files.dir.path().to_owned();
    let judge = |text: &str| {
        std::fs::write(dir.join("judge.yaml"), text).unwrap();
        judge::JudgeFile::load(&dir.join("judge.yaml")).unwrap()
    };
    let same = judge(strict);
    let r = replay(&files.pipeline(), "shop", &events, &mut files, Some(&same)).unwrap();
    let judged: Vec<&Decision> = r
        .decisions
        .iter()
        .filter(|d| !d.metrics.is_empty())
        .collect();
    assert_eq!(judged.len(), 2, "{r:#?}");
    assert!(judged.iter().all(|d| !d.changed()), "{r:#?}");
    assert!(matches!(
        r.steps[0].replayed,
        Some(Ending::Stopped { n: 2, .. })
    ));
    let loose = judge("metrics: { latency: { allowedIncrease: 1.5, critical: true } }\n");
    let r = replay(&files.pipeline(), "shop", &events, &mut files, Some(&loose)).unwrap();
    assert_eq!(
        r.decisions[0].metrics[0],
        judge::MetricChange {
            metric: "latency".into(),
            recorded: "high".into(),
            replayed: "pass".into(),
            effect_size: r.decisions[0].metrics[0].effect_size,
            threshold: "allowed 1-1.5".into(),
        }
    );
    // The judgement promotes; the bake, judged by the SLO's thresholds, passes under it.
    assert_eq!(r.decisions[2].replayed, Verdict::Pass);
    assert_eq!(
        r.steps[0].replayed,
        Some(Ending::Promoted {
            n: 1,
            at_ms: 4_000,
            on: Verdict::Pass,
            baked: 2
        }),
        "{r:#?}"
    );
}
