//! Replay: a past run's SLO gates and release analyses decided again from its journaled
//! measurements, with other SLOs, and where the run would have gone differently.
//!
//! Every release analysis journals the SLI values it measured and which part of the
//! release it served (watch, judge, bake); every `evaluate` gate journals its values. A
//! replay scores those values again with the SLOs it is given and runs the release's
//! promotion rules ([`crate::steps::release::tally`]) over the new verdicts, as the step
//! would have. Nothing is measured again: no cluster and no Prometheus are needed.
//!
//! What a replay cannot know is what happened after the run stopped: when the replayed
//! rules would have let a release go on past the point where the recorded one was rolled
//! back, the replay says so and where the records end.

use std::collections::BTreeMap;

use serde::Serialize;

pub mod judge;
pub mod words;

use crate::events::{AnalysisPart, Envelope, Event, Judgement, Verdict};
use crate::pipeline::model::{Analysis, PipelineFile, ReleaseStep, StepSpec};
use crate::slo::{HistoryEntry, Slo, evaluate};
use crate::steps::release::judgement::message;
use crate::steps::release::tally::{BLUE_GREEN_FRESH, CANARY_FRESH, Limit, Rules, Tally};
use crate::yaml::Spanned;
use judge::{JudgeFile, MetricChange};

/// One gate or analysis decided again.
#[derive(Debug, Clone, Serialize)]
pub struct Decision {
    /// When it was made (ms since the epoch).
    pub at_ms: i64,
    /// `stage/step`.
    pub step: String,
    /// `analysis 3` or `gate`.
    pub what: String,
    /// The release's part (analyses only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub part: Option<AnalysisPart>,
    /// Percent of traffic on the new version then (analyses only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub weight: Option<u8>,
    /// The SLI values measured then (None: no data).
    pub values: BTreeMap<String, Option<f64>>,
    /// What the run decided.
    pub recorded: Verdict,
    /// What the replayed SLO decides.
    pub replayed: Verdict,
    /// The replayed evaluation's reason.
    pub why: String,
    /// A judgement the statistical judge made again (`--judge`): per metric, its recorded
    /// and its new classification.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub metrics: Vec<MetricChange>,
    /// Journaled metrics the judge file leaves out of the new judgement.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub left_out: Vec<String>,
}

impl Decision {
    /// The two verdicts differ.
    pub fn changed(&self) -> bool {
        self.recorded != self.replayed
    }
}

/// Where a release's analysis took it, or would have.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "ending", rename_all = "kebab-case")]
pub enum Ending {
    /// A limit was passed: the release is rolled back.
    Stopped {
        /// The analysis that passed the limit (1-based).
        n: u32,
        /// When.
        at_ms: i64,
        /// Percent of traffic on the new version then.
        weight: Option<u8>,
        /// The limit, as the release says it.
        why: String,
        /// After the promotion (in the bake).
        in_bake: bool,
    },
    /// The judgement cleared the release (and its bake, if recorded, raised no limit).
    Promoted {
        /// The analysis that cleared it.
        n: u32,
        /// When.
        at_ms: i64,
        /// `pass`, or `warning` when `promoteOn` lists it.
        on: Verdict,
        /// Analyses recorded after it (its bake).
        baked: u32,
    },
    /// A warning held the release for the operator, and the records hold no later pass.
    Held {
        /// The analysis that first held it.
        n: u32,
        /// When.
        at_ms: i64,
    },
    /// Nothing was decided within the records: the run stopped (or was stopped) before.
    Open {
        /// Analyses recorded.
        analyses: u32,
        /// Percent of traffic on the new version at the last one.
        weight: Option<u8>,
    },
}

/// One release step or gate replayed.
#[derive(Debug, Clone, Serialize)]
pub struct StepReplay {
    /// `stage/step`.
    pub step: String,
    /// `canary`, `blue-green` or `evaluate`.
    pub kind: &'static str,
    /// The step's status and summary as the run ended it.
    pub recorded_outcome: Option<String>,
    /// A release's ending by its recorded verdicts (None for a gate).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recorded: Option<Ending>,
    /// A release's ending by the replayed verdicts (None for a gate).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replayed: Option<Ending>,
}

/// A whole run replayed.
#[derive(Debug, Clone, Serialize)]
pub struct Replay {
    /// Every decision, in the order the run made them.
    pub decisions: Vec<Decision>,
    /// Per release step and gate, how it ended and would have.
    pub steps: Vec<StepReplay>,
}

impl Replay {
    /// Decisions whose verdict the replay changes.
    pub fn changed(&self) -> usize {
        self.decisions.iter().filter(|d| d.changed()).count()
    }

    /// Whether any release or gate would have ended differently.
    pub fn outcome_changed(&self) -> bool {
        self.steps.iter().any(|s| s.recorded != s.replayed)
            || self
                .decisions
                .iter()
                .any(|d| d.what == "gate" && d.changed())
    }
}

/// Where a replay finds each step's SLO: the one the step names (`path` as the pipeline
/// writes it), or an override. Errors name the file and what is wrong with it.
pub trait SloSource {
    /// The SLO for a step that names `path` (and, for a Keptn SLO, `sli`).
    fn slo(&mut self, path: &str, sli: Option<&str>) -> Result<Slo, String>;
    /// Evaluations of `service` in `stage` before this run, oldest first (relative
    /// criteria compare with them).
    fn history(&mut self, service: &str, stage: &str) -> Vec<HistoryEntry>;
}

/// Replays `events` of a run of `service` by the pipeline `file` (as [`load_model`]
/// reads it: the run's journaled text, templated with its variables). Analyses the
/// statistical judge decided are judged again from their samples by `judge`, or kept as
/// recorded without one; the others are decided by the SLOs.
///
/// [`load_model`]: crate::pipeline::load_model
pub fn replay(
    file: &PipelineFile,
    service: &str,
    events: &[Envelope],
    slos: &mut dyn SloSource,
    judge: Option<&JudgeFile>,
) -> Result<Replay, String> {
    let mut out = Replay {
        decisions: Vec::new(),
        steps: Vec::new(),
    };
    for stage in &file.spec.stages.value {
        for step in flat(&stage.steps) {
            let at = (stage.name.value.as_str(), step_name(step));
            if let Some(r) = &step.release {
                if let Some((kind, a, fresh, last)) = analysed(r) {
                    let slo = slos.slo(&a.slo.value, None)?;
                    let walk = Walk {
                        rules: Rules::of(a),
                        fresh,
                        last_weight: last,
                        blue_green: kind == "blue-green",
                    };
                    let by = Deciders { slo: &slo, judge };
                    release(&mut out, events, at, kind, &by, &walk)?;
                }
            } else if let Some(e) = &step.evaluate {
                let slo = slos.slo(&e.slo.value, e.sli.as_ref().map(|s| s.value.as_str()))?;
                let history = slos.history(service, &stage.name.value);
                gate(&mut out, events, at, &slo, &history);
            }
        }
    }
    out.decisions.sort_by_key(|d| d.at_ms);
    Ok(out)
}

/// A stage's steps with `parallel` groups opened, in order.
fn flat(steps: &[Spanned<StepSpec>]) -> Vec<&StepSpec> {
    let mut out = Vec::new();
    for s in steps {
        match &s.value.parallel {
            Some(group) => out.extend(flat(group)),
            None => out.push(&s.value),
        }
    }
    out
}

/// A step's name as the run journals it: its own, else its kind's word (the two kinds
/// replay reads).
fn step_name(s: &StepSpec) -> &str {
    match (&s.name, &s.release) {
        (Some(n), _) => &n.value,
        (None, Some(_)) => "release",
        (None, None) => "evaluate",
    }
}

/// A release's strategy word, analysis, judgement size and last traffic weight.
fn analysed(r: &ReleaseStep) -> Option<(&'static str, &Analysis, u32, Option<u8>)> {
    if let Some(c) = &r.canary {
        let last = c.steps.iter().filter_map(|s| s.value.weight).max();
        return c
            .analysis
            .as_ref()
            .map(|a| ("canary", a, CANARY_FRESH, last));
    }
    let b = r.blue_green.as_ref()?;
    b.analysis
        .as_ref()
        .map(|a| ("blue-green", a, BLUE_GREEN_FRESH, None))
}

/// How a step's events end it: `failed: why`.
fn outcome(events: &[Envelope], (stage, step): (&str, &str)) -> Option<String> {
    events.iter().rev().find_map(|e| match &e.event {
        Event::StepFinished {
            stage: s,
            step: t,
            status,
            summary,
            ..
        } if s == stage && t == step => Some(format!("{status}: {summary}")),
        _ => None,
    })
}

/// The journaled judgements of a run (the statistical judge's, with their samples).
pub fn judgements(events: &[Envelope]) -> impl Iterator<Item = &Judgement> {
    events.iter().filter_map(|e| match &e.event {
        Event::Analysis {
            judgement: Some(j), ..
        } => Some(j.as_ref()),
        _ => None,
    })
}

/// Why an analysis the statistical judge decided keeps its recorded verdict.
const STATISTICAL: &str = "judged by the statistical judge against its baseline: kept as recorded (--judge FILE judges its samples again)";

/// What decides a release's analyses again.
struct Deciders<'a> {
    /// The thresholds' analyses.
    slo: &'a Slo,
    /// The statistical judge's, when given.
    judge: Option<&'a JudgeFile>,
}

/// One analysis decided again.
struct Redecided {
    verdict: Verdict,
    inconclusive: bool,
    why: String,
    metrics: Vec<MetricChange>,
    left_out: Vec<String>,
}

impl Deciders<'_> {
    fn decide(&self, p: &Point) -> Result<Redecided, String> {
        let decided = |verdict, inconclusive, why| Redecided {
            verdict,
            inconclusive,
            why,
            metrics: Vec::new(),
            left_out: Vec::new(),
        };
        Ok(match (p.judgement, self.judge) {
            (Some(j), Some(file)) => {
                let r = file.rejudge(j, p.part)?;
                Redecided {
                    verdict: r.judgement.verdict,
                    inconclusive: r.judgement.outcome == "inconclusive",
                    why: message(&r.judgement),
                    metrics: r.metrics,
                    left_out: r.left_out,
                }
            }
            // Another SLO's thresholds do not decide what the statistical judge decided.
            (Some(_), None) => decided(p.recorded, p.inconclusive, STATISTICAL.to_owned()),
            (None, _) => {
                let e = evaluate(self.slo, &p.values, &[]);
                decided(e.result, false, e.message)
            }
        })
    }
}

/// One analysis as journaled.
struct Point<'a> {
    at_ms: i64,
    part: AnalysisPart,
    weight: Option<u8>,
    values: BTreeMap<String, Option<f64>>,
    recorded: Verdict,
    /// The statistical judge's judgement, when it decided (against a baseline) rather than
    /// the SLO's thresholds.
    judgement: Option<&'a Judgement>,
    /// The judge could not tell (journaled as a warning): it holds, and never promotes by
    /// `promoteOn`.
    inconclusive: bool,
}

/// What the promotion rules need to know of a release.
struct Walk {
    rules: Rules,
    /// Evaluations a judgement makes before it may clear.
    fresh: u32,
    /// A canary's last traffic weight (an old journal's analyses at it were judgements).
    last_weight: Option<u8>,
    blue_green: bool,
}

impl Walk {
    /// The part an analysis served: journaled since replay exists, else inferred from the
    /// traffic (a canary at its last weight, a blue-green before its switch: judging).
    fn part(&self, journaled: Option<AnalysisPart>, weight: Option<u8>) -> AnalysisPart {
        journaled.unwrap_or(
            if self.blue_green || (weight.is_some() && weight == self.last_weight) {
                AnalysisPart::Judge
            } else {
                AnalysisPart::Watch
            },
        )
    }
}

/// Replays one release step's analyses.
fn release(
    out: &mut Replay,
    events: &[Envelope],
    at: (&str, &str),
    kind: &'static str,
    by: &Deciders,
    walk: &Walk,
) -> Result<(), String> {
    let mut weight = None;
    let mut points = Vec::new();
    for env in events {
        match &env.event {
            Event::Traffic {
                stage,
                step,
                weight: w,
                ..
            } if (stage.as_str(), step.as_str()) == at => weight = Some(*w),
            Event::Analysis {
                stage,
                step,
                values,
                verdict,
                part,
                judgement,
                ..
            } if (stage.as_str(), step.as_str()) == at => points.push(Point {
                at_ms: env.at_ms,
                part: walk.part(*part, weight),
                weight,
                values: values.clone(),
                recorded: *verdict,
                judgement: judgement.as_deref(),
                inconclusive: judgement
                    .as_ref()
                    .is_some_and(|j| j.outcome == "inconclusive"),
            }),
            _ => {}
        }
    }
    let name = format!("{}/{}", at.0, at.1);
    let mut replayed = Vec::with_capacity(points.len());
    for (i, p) in points.iter().enumerate() {
        let d = by.decide(p)?;
        replayed.push((d.verdict, d.inconclusive));
        out.decisions.push(Decision {
            at_ms: p.at_ms,
            step: name.clone(),
            what: format!("analysis {}", i + 1),
            part: Some(p.part),
            weight: p.weight,
            values: p.values.clone(),
            recorded: p.recorded,
            replayed: d.verdict,
            why: d.why,
            metrics: d.metrics,
            left_out: d.left_out,
        });
    }
    let recorded: Vec<(Verdict, bool)> = points
        .iter()
        .map(|p| (p.recorded, p.inconclusive))
        .collect();
    out.steps.push(StepReplay {
        step: name,
        kind,
        recorded_outcome: outcome(events, at),
        recorded: Some(ending(&points, &recorded, walk)),
        replayed: Some(ending(&points, &replayed, walk)),
    });
    Ok(())
}

/// Where the promotion rules take a release with these verdicts of its analyses (each with
/// whether the judge could not tell). After a promotion the later analyses are read as
/// its bake: they measured the same new version under all the traffic.
fn ending(points: &[Point], verdicts: &[(Verdict, bool)], walk: &Walk) -> Ending {
    let mut tally = Tally::default();
    let mut promoted: Option<(u32, i64, Verdict)> = None;
    let mut held = None;
    let mut judged = 0u32;
    for (i, (p, (v, inconclusive))) in points.iter().zip(verdicts).enumerate() {
        let n = i as u32 + 1;
        tally.add(*v);
        if let Some(limit) = tally.past_limit(&walk.rules) {
            return stopped(n, p, limit, promoted.is_some());
        }
        if promoted.is_some() || p.part != AnalysisPart::Judge {
            continue;
        }
        judged += 1;
        if judged < walk.fresh {
            continue;
        }
        match tally.clears(&walk.rules) {
            Some(on) if !(on == Verdict::Warning && *inconclusive) => {
                promoted = Some((n, p.at_ms, on));
            }
            _ if *v == Verdict::Warning => {
                held.get_or_insert((n, p.at_ms));
            }
            _ => {}
        }
    }
    match (promoted, held) {
        (Some((n, at_ms, on)), _) => Ending::Promoted {
            n,
            at_ms,
            on,
            baked: points.len() as u32 - n,
        },
        (None, Some((n, at_ms))) => Ending::Held { n, at_ms },
        (None, None) => Ending::Open {
            analyses: points.len() as u32,
            weight: points.last().and_then(|p| p.weight),
        },
    }
}

fn stopped(n: u32, p: &Point, limit: Limit, in_bake: bool) -> Ending {
    Ending::Stopped {
        n,
        at_ms: p.at_ms,
        weight: p.weight,
        why: limit.to_string(),
        in_bake,
    }
}

/// Replays one `evaluate` gate from the values its evaluation journaled.
fn gate(
    out: &mut Replay,
    events: &[Envelope],
    at: (&str, &str),
    slo: &Slo,
    history: &[HistoryEntry],
) {
    let name = format!("{}/{}", at.0, at.1);
    let mut found = false;
    for env in events {
        let Event::StepFinished {
            stage,
            step,
            evaluation: Some(record),
            ..
        } = &env.event
        else {
            continue;
        };
        if (stage.as_str(), step.as_str()) != at {
            continue;
        }
        found = true;
        let e = evaluate(slo, &record.sli_values, history);
        out.decisions.push(Decision {
            at_ms: env.at_ms,
            step: name.clone(),
            what: "gate".into(),
            part: None,
            weight: None,
            values: record.sli_values.clone(),
            recorded: record.result,
            replayed: e.result,
            why: e.message,
            metrics: Vec::new(),
            left_out: Vec::new(),
        });
    }
    if found {
        out.steps.push(StepReplay {
            step: name,
            kind: "evaluate",
            recorded_outcome: outcome(events, at),
            recorded: None,
            replayed: None,
        });
    }
}

#[cfg(test)]
#[path = "replay_tests.rs"]
mod tests;
