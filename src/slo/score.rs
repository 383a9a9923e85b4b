//! Scoring an SLO against SLI values, with Keptn's lighthouse semantics: each criteria list
//! is ANDed, several lists are ORed; warning counts only when pass fails and scores half
//! the weight; objectives without pass criteria are `info`; a failed key SLI forces `fail`;
//! the total score is 100 * sum(score) / sum(weight of scored objectives).
//!
//! One deliberate difference, from DESIGN.md's rules: an objective with no value (missing,
//! NaN, ±Inf) is an `error`, and an evaluation with such an objective is `error`, never
//! `pass`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{Aggregate, CompareWith, IncludeResults, Objective, Slo};
use crate::events::{Evidence, ObjectiveFacts, Verdict};

/// An earlier evaluation, as relative criteria compare against it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryEntry {
    /// Its result.
    pub result: Verdict,
    /// The SLI values it measured.
    #[serde(default)]
    pub sli_values: BTreeMap<String, Option<f64>>,
    /// Marked invalid: left out of comparisons.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub invalid: bool,
}

/// One criterion of an objective, with the threshold it resolved to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TargetResult {
    /// The criterion as written.
    pub criteria: String,
    /// The threshold it set (for relative criteria, computed from earlier results).
    pub target_value: Option<f64>,
    /// Whether the value broke it.
    pub violated: bool,
}

/// The status of one objective.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ObjectiveStatus {
    /// Met its pass criteria.
    Pass,
    /// Met only its warning criteria.
    Warning,
    /// Met neither.
    Fail,
    /// No pass criteria: shown, not scored.
    Info,
    /// No value to judge.
    Error,
}

/// One objective's outcome.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ObjectiveResult {
    /// The SLI name.
    pub sli: String,
    /// Its display name.
    pub display_name: String,
    /// The value measured (None: no data).
    pub value: Option<f64>,
    /// The aggregate of earlier values that relative criteria used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compared_value: Option<f64>,
    /// Pass, warning, fail, info or error.
    pub status: ObjectiveStatus,
    /// Points earned.
    pub score: f64,
    /// Points possible.
    pub weight: f64,
    /// A failed key SLI fails the evaluation.
    pub key_sli: bool,
    /// The pass criteria, resolved.
    pub pass_targets: Vec<TargetResult>,
    /// The warning criteria, resolved.
    pub warning_targets: Vec<TargetResult>,
    /// The query, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
}

/// A whole evaluation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    /// pass, warning, fail or error.
    pub result: Verdict,
    /// 0 to 100.
    pub score: f64,
    /// Per objective.
    pub objectives: Vec<ObjectiveResult>,
    /// Why, in a sentence.
    pub message: String,
    /// The total score that passes.
    #[serde(default)]
    pub pass_score: f64,
    /// The total score that is a warning, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warning_score: Option<f64>,
}

/// A usable number, or no data.
fn usable(v: Option<f64>) -> Option<f64> {
    v.filter(|x| x.is_finite())
}

/// The earlier values relative criteria compare against, newest first, as Keptn selects them.
fn comparison_values(slo: &Slo, sli: &str, history: &[HistoryEntry]) -> Vec<f64> {
    let wanted = match slo.comparison.compare_with {
        CompareWith::SingleResult => 1,
        CompareWith::SeveralResults => slo.comparison.number_of_results,
    };
    history
        .iter()
        .rev()
        .filter(|h| !h.invalid)
        .filter(|h| match slo.comparison.include {
            IncludeResults::All => true,
            IncludeResults::Pass => h.result == Verdict::Pass,
            IncludeResults::PassOrWarn => matches!(h.result, Verdict::Pass | Verdict::Warning),
        })
        .take(wanted)
        .filter_map(|h| usable(h.sli_values.get(sli).copied().flatten()))
        .collect()
}

/// Keptn's percentile: position p*(n+1), linear between neighbours, clamped at the ends.
fn percentile(values: &[f64], p: f64) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    let pos = p * (n as f64 + 1.0);
    if pos < 1.0 {
        v[0]
    } else if pos >= n as f64 {
        v[n - 1]
    } else {
        let lower = v[pos as usize - 1];
        let upper = v[pos as usize];
        lower + (pos - pos.floor()) * (upper - lower)
    }
}

fn aggregate(values: &[f64], how: Aggregate) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    Some(match how {
        Aggregate::Avg => values.iter().sum::<f64>() / values.len() as f64,
        Aggregate::P50 => percentile(values, 0.5),
        Aggregate::P90 => percentile(values, 0.9),
        Aggregate::P95 => percentile(values, 0.95),
    })
}

/// ORs criteria sets; each set ANDs its criteria. Returns (satisfied, targets).
fn judge(
    sets: &[Vec<super::criteria::Criterion>],
    value: f64,
    compared: Option<f64>,
) -> (bool, Vec<TargetResult>) {
    let mut any = false;
    let mut targets = Vec::new();
    for set in sets {
        let mut all = true;
        for c in set {
            let target = c.target(compared);
            // A relative criterion with nothing to compare against is satisfied (Keptn).
            let ok = target.is_none_or(|t| c.op.holds(value, t));
            all &= ok;
            targets.push(TargetResult {
                criteria: c.text.clone(),
                target_value: target,
                violated: !ok,
            });
        }
        any |= all;
    }
    (any, targets)
}

fn objective(
    slo: &Slo,
    o: &Objective,
    value: Option<f64>,
    history: &[HistoryEntry],
) -> ObjectiveResult {
    let compared = aggregate(
        &comparison_values(slo, &o.sli, history),
        slo.comparison.aggregate,
    );
    let mut r = ObjectiveResult {
        sli: o.sli.clone(),
        display_name: o.display_name.clone().unwrap_or_else(|| o.sli.clone()),
        value,
        compared_value: compared,
        status: ObjectiveStatus::Info,
        score: 0.0,
        weight: o.weight,
        key_sli: o.key_sli,
        pass_targets: Vec::new(),
        warning_targets: Vec::new(),
        query: slo.slis.get(&o.sli).cloned(),
    };
    let Some(v) = value else {
        r.status = ObjectiveStatus::Error;
        return r;
    };
    let mut passed = true;
    if !o.pass.is_empty() {
        let (ok, targets) = judge(&o.pass, v, compared);
        passed = ok;
        r.pass_targets = targets;
        if ok {
            r.score = o.weight;
            r.status = ObjectiveStatus::Pass;
        }
    }
    let mut warned = false;
    if !o.warning.is_empty() {
        let (ok, targets) = judge(&o.warning, v, compared);
        warned = ok;
        r.warning_targets = targets;
        if !passed && ok {
            r.score = 0.5 * o.weight;
            r.status = ObjectiveStatus::Warning;
        }
    }
    if !passed && !warned {
        r.status = ObjectiveStatus::Fail;
        r.score = 0.0;
    }
    r
}

/// Evaluates `slo` for the given SLI values (None or non-finite: no data) against earlier
/// evaluations, oldest first.
pub fn evaluate(
    slo: &Slo,
    values: &BTreeMap<String, Option<f64>>,
    history: &[HistoryEntry],
) -> Evaluation {
    let mut results = Vec::new();
    let mut maximum = 0.0;
    let mut key_failed = false;
    let mut no_data = Vec::new();
    for o in &slo.objectives {
        if !o.pass.is_empty() {
            maximum += o.weight;
        }
        let value = usable(values.get(&o.sli).copied().flatten());
        let r = objective(slo, o, value, history);
        if r.status == ObjectiveStatus::Error && (!o.pass.is_empty() || o.key_sli) {
            no_data.push(o.sli.clone());
        }
        if r.status == ObjectiveStatus::Fail && o.key_sli {
            key_failed = true;
        }
        results.push(r);
    }
    let total: f64 = results.iter().map(|r| r.score).sum();
    let score = if maximum == 0.0 {
        100.0
    } else {
        100.0 * total / maximum
    };
    let (result, message) = if !no_data.is_empty() {
        (
            Verdict::Error,
            format!(
                "no data for {}: missing, empty or NaN values never pass",
                no_data.join(", ")
            ),
        )
    } else if maximum == 0.0 {
        (Verdict::Pass, "no objective has pass criteria".to_owned())
    } else if key_failed {
        let keys: Vec<&str> = results
            .iter()
            .filter(|r| r.key_sli && r.status == ObjectiveStatus::Fail)
            .map(|r| r.sli.as_str())
            .collect();
        (
            Verdict::Fail,
            format!("key SLI failed: {}", keys.join(", ")),
        )
    } else if score >= slo.total_score.pass {
        (
            Verdict::Pass,
            format!(
                "score {} ≥ pass {}",
                round(score),
                round(slo.total_score.pass)
            ),
        )
    } else if slo.total_score.warning.is_some_and(|w| score >= w) {
        (
            Verdict::Warning,
            format!(
                "score {} ≥ warning {}",
                round(score),
                round(slo.total_score.warning.unwrap_or_default())
            ),
        )
    } else {
        (
            Verdict::Fail,
            format!(
                "score {} below {}",
                round(score),
                round(slo.total_score.warning.unwrap_or(slo.total_score.pass))
            ),
        )
    };
    Evaluation {
        result,
        score,
        objectives: results,
        message,
        pass_score: slo.total_score.pass,
        warning_score: slo.total_score.warning,
    }
}

fn round(x: f64) -> String {
    let r = (x * 100.0).round() / 100.0;
    if r.fract() == 0.0 {
        format!("{r:.0}")
    } else {
        format!("{r}")
    }
}

/// The check name of an evaluation's total score in its evidence.
pub const TOTAL_SCORE: &str = "total score";

impl Evaluation {
    /// Each objective as a line of gate evidence, then the total score against its
    /// thresholds.
    pub fn evidence(&self) -> Vec<Evidence> {
        let mut out: Vec<Evidence> = self
            .objectives
            .iter()
            .map(|o| {
                let verdict = match o.status {
                    ObjectiveStatus::Pass | ObjectiveStatus::Info => Verdict::Pass,
                    ObjectiveStatus::Warning => Verdict::Warning,
                    ObjectiveStatus::Fail => Verdict::Fail,
                    ObjectiveStatus::Error => Verdict::Error,
                };
                let expected = |t: &[TargetResult]| {
                    t.iter()
                        .map(|t| t.criteria.as_str())
                        .collect::<Vec<_>>()
                        .join(" and ")
                };
                let mut e = Evidence::new(
                    &o.display_name,
                    verdict,
                    o.value
                        .map(|v| format!("{v}"))
                        .unwrap_or_else(|| "no data".into()),
                );
                if !o.pass_targets.is_empty() {
                    e = e.expected(format!("pass {}", expected(&o.pass_targets)));
                }
                e.query = o.query.clone();
                e.objective = Some(ObjectiveFacts {
                    warning: (!o.warning_targets.is_empty()).then(|| expected(&o.warning_targets)),
                    weight: o.weight,
                    score: o.score,
                    key: o.key_sli,
                });
                e.detail(format!(
                    "score {}/{}{}",
                    round(o.score),
                    round(o.weight),
                    if o.key_sli { ", key SLI" } else { "" }
                ))
            })
            .collect();
        let thresholds = match self.warning_score {
            Some(w) => format!("pass ≥ {} · warning ≥ {}", round(self.pass_score), round(w)),
            None => format!("pass ≥ {}", round(self.pass_score)),
        };
        out.push(
            Evidence::new(TOTAL_SCORE, self.result, round(self.score))
                .expected(thresholds)
                .detail(self.message.clone()),
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keptn_percentiles() {
        // Positions p*(n+1): for 4 values p90 sits at 4.5, past the end: the last value.
        assert_eq!(percentile(&[1.0, 2.0, 3.0, 4.0], 0.9), 4.0);
        // p50 at 2.5: halfway between the second and third.
        assert_eq!(percentile(&[4.0, 1.0, 3.0, 2.0], 0.5), 2.5);
        assert_eq!(percentile(&[10.0], 0.95), 10.0);
        assert_eq!(percentile(&[1.0, 2.0, 3.0], 0.1), 1.0);
    }
}
