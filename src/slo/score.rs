//! Scoring an SLO against SLI values, exactly as Keptn's lighthouse scores a slo.yaml: each
//! criteria list is ANDed, several lists are ORed; warning counts only when pass fails and
//! scores half the weight; objectives without pass criteria are `info` (whatever their
//! value, key or not); a failed key SLI forces `fail`; the total score is
//! 100 * sum(score of objectives with pass targets) / sum(weight of objectives with pass
//! criteria), compared unrounded; an SLO without objectives fails.
//!
//! One deliberate difference, from DESIGN.md's rules: where lighthouse fails an objective
//! whose SLI has no value (missing, failed, NaN) and scores on, glidepath scores the
//! same but its verdict is `error` (no data), never `pass`, `warning` or `fail`. An SLI of
//! ±Inf is a value, shown as `+Inf`, that never passes: its objective fails, and so does
//! the evaluation.

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
    /// The value measured (None: no data; ±Inf is written `"+Inf"` / `"-Inf"`).
    #[serde(with = "sli_value")]
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

/// An SLI value for people: a number, `+Inf`, `-Inf`, or `no data`.
pub fn shown(value: Option<f64>) -> String {
    match value {
        None => "no data".into(),
        Some(v) if v == f64::INFINITY => "+Inf".into(),
        Some(v) if v == f64::NEG_INFINITY => "-Inf".into(),
        Some(v) => format!("{v}"),
    }
}

/// An SLI value in JSON: a number, null for no data, or Prometheus's `"+Inf"` / `"-Inf"`
/// (JSON has no infinity).
mod sli_value {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(value: &Option<f64>, s: S) -> Result<S::Ok, S::Error> {
        match value {
            Some(v) if v.is_infinite() => s.serialize_str(&super::shown(Some(*v))),
            Some(v) => s.serialize_f64(*v),
            None => s.serialize_none(),
        }
    }

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Written {
        Number(f64),
        Text(String),
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
        match Option::<Written>::deserialize(d)? {
            None => Ok(None),
            Some(Written::Number(v)) => Ok(Some(v)),
            Some(Written::Text(t)) => match t.as_str() {
                "+Inf" | "Inf" => Ok(Some(f64::INFINITY)),
                "-Inf" => Ok(Some(f64::NEG_INFINITY)),
                other => Err(serde::de::Error::custom(format!(
                    "an SLI value is a number, null, \"+Inf\" or \"-Inf\", not {other:?}"
                ))),
            },
        }
    }
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

/// Every criterion of `sets` with its threshold and marked violated: what lighthouse shows
/// for an objective it did not judge (info, or no value).
fn unjudged(sets: &[Vec<super::criteria::Criterion>], compared: Option<f64>) -> Vec<TargetResult> {
    sets.iter()
        .flatten()
        .map(|c| TargetResult {
            criteria: c.text.clone(),
            target_value: c.target(compared),
            violated: true,
        })
        .collect()
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
    // Lighthouse decides `info` before it looks at the value: warning-only objectives and
    // key SLIs without pass criteria are info too.
    let v = match value {
        Some(v) if !o.pass.is_empty() => v,
        _ => {
            if !o.pass.is_empty() {
                r.status = ObjectiveStatus::Error;
            }
            r.pass_targets = unjudged(&o.pass, compared);
            r.warning_targets = unjudged(&o.warning, compared);
            return r;
        }
    };
    // An infinite value is a value, but no criterion can trust it: it never passes.
    if v.is_infinite() {
        r.status = ObjectiveStatus::Fail;
        r.pass_targets = unjudged(&o.pass, compared);
        r.warning_targets = unjudged(&o.warning, compared);
        return r;
    }
    let (passed, targets) = judge(&o.pass, v, compared);
    r.pass_targets = targets;
    if passed {
        r.score = o.weight;
        r.status = ObjectiveStatus::Pass;
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

/// Lighthouse's verdict from the total score and key SLIs.
fn keptn_verdict(slo: &Slo, score: f64, results: &[ObjectiveResult]) -> (Verdict, String) {
    let failed_keys: Vec<&str> = results
        .iter()
        .filter(|r| r.key_sli && matches!(r.status, ObjectiveStatus::Fail | ObjectiveStatus::Error))
        .map(|r| r.display_name.as_str())
        .collect();
    let pass = slo.total_score.pass;
    if score >= pass && failed_keys.is_empty() {
        return (
            Verdict::Pass,
            format!("score {} ≥ pass {}", round(score), round(pass)),
        );
    }
    if !failed_keys.is_empty() {
        return (
            Verdict::Fail,
            format!("key SLI failed: {}", failed_keys.join(", ")),
        );
    }
    match slo.total_score.warning {
        Some(w) if score >= w => (
            Verdict::Warning,
            format!("score {} ≥ warning {}", round(score), round(w)),
        ),
        w => (
            Verdict::Fail,
            format!("score {} below {}", round(score), round(w.unwrap_or(pass))),
        ),
    }
}

/// Evaluates `slo` for the given SLI values (None or non-finite: no data) against earlier
/// evaluations, oldest first.
pub fn evaluate(
    slo: &Slo,
    values: &BTreeMap<String, Option<f64>>,
    history: &[HistoryEntry],
) -> Evaluation {
    let results: Vec<ObjectiveResult> = slo
        .objectives
        .iter()
        .map(|o| {
            let value = values
                .get(&o.sli)
                .copied()
                .flatten()
                .filter(|v| !v.is_nan());
            objective(slo, o, value, history)
        })
        .collect();
    let maximum: f64 = slo
        .objectives
        .iter()
        .filter(|o| !o.pass.is_empty())
        .map(|o| o.weight)
        .sum();
    // Lighthouse sums only objectives that show pass targets: `pass: [{criteria: []}]`
    // counts in the maximum and passes, but adds nothing.
    let total: f64 = results
        .iter()
        .filter(|r| !r.pass_targets.is_empty())
        .map(|r| r.score)
        .sum();
    let no_data: Vec<&str> = results
        .iter()
        .filter(|r| r.status == ObjectiveStatus::Error)
        .map(|r| r.sli.as_str())
        .collect();
    let (score, (result, message)) = if slo.objectives.is_empty() {
        (
            0.0,
            (
                Verdict::Fail,
                "no SLO objective was provided: an SLO without objectives fails".to_owned(),
            ),
        )
    } else if maximum == 0.0 {
        (
            100.0,
            (Verdict::Pass, "no objective has pass criteria".to_owned()),
        )
    } else {
        let score = 100.0 * total / maximum;
        (score, keptn_verdict(slo, score, &results))
    };
    let infinite: Vec<String> = results
        .iter()
        .filter(|r| !r.pass_targets.is_empty() && r.value.is_some_and(f64::is_infinite))
        .map(|r| format!("{} is {}", r.sli, shown(r.value)))
        .collect();
    let (result, message) = if no_data.is_empty() && infinite.is_empty() {
        (result, message)
    } else if no_data.is_empty() {
        (
            Verdict::Fail,
            format!(
                "{}: an infinite value never passes (scored without it: {}, {message})",
                infinite.join(", "),
                result.word()
            ),
        )
    } else {
        (
            Verdict::Error,
            format!(
                "no data for {}: missing, failed, empty or NaN values never pass (scored without them: {}, {message})",
                no_data.join(", "),
                result.word()
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
                let mut e = Evidence::new(&o.display_name, verdict, shown(o.value));
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
