//! Metric verdicts into one judgement: groups scored by the share of their metrics that pass,
//! weighted into 0-100, then pass / marginal / fail by two thresholds (Kayenta's weighted-sum
//! scorer), with an inconclusive outcome when undecided metrics could change the result.

use std::collections::BTreeMap;

use serde::Serialize;

use super::classifier::Classification;
use super::show;

/// Half or more of the metrics without data fails the judgement (Kayenta's rule).
pub const NODATA_SHARE_THAT_FAILS: f64 = 50.0;

/// One metric's verdict as the scorer needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct ScoredMetric {
    /// The metric's name.
    pub name: String,
    /// The groups it counts in (none: the group `default`).
    pub groups: Vec<String>,
    /// Its verdict.
    pub classification: Classification,
    /// Whether its verdict fails (or, when inconclusive, holds) the whole judgement.
    pub critical: bool,
    /// Shown but not counted.
    pub muted: bool,
    /// Its verdict's reason.
    pub reason: String,
}

/// The score thresholds: at least `pass` passes, at least `marginal` is marginal.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ScoreThresholds {
    /// Lowest passing score.
    pub pass: f64,
    /// Lowest marginal score.
    pub marginal: f64,
}

/// The judgement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// Promote.
    Pass,
    /// Between the thresholds: an operator decides.
    Marginal,
    /// Roll back.
    Fail,
    /// Undecided metrics could turn the outcome either way: hold for an operator.
    Inconclusive,
}

/// One group's score.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GroupScore {
    /// The group.
    pub name: String,
    /// Share of its counted metrics that pass, 0-100.
    pub score: f64,
    /// No metric of the group was counted (all without data): scored as 100 in the sum.
    pub no_data: bool,
    /// Metrics of the group by verdict.
    pub counts: BTreeMap<&'static str, usize>,
}

/// The judgement with its evidence.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScoreVerdict {
    /// The judgement.
    pub outcome: Outcome,
    /// The score with undecided metrics left out, 0-100, rounded to two decimals.
    pub score: f64,
    /// The lowest and highest score the undecided metrics allow, when there are any.
    pub range: Option<[f64; 2]>,
    /// Per group.
    pub groups: Vec<GroupScore>,
    /// Why, when something other than the score decided (a critical metric, missing data,
    /// undecided metrics).
    pub reason: Option<String>,
}

/// Scoring options that cannot work.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ScoreError {
    /// Thresholds out of order or range.
    #[error(
        "score thresholds pass {pass} and marginal {marginal}: need 0 <= marginal <= pass <= 100"
    )]
    Thresholds {
        /// The pass threshold.
        pass: f64,
        /// The marginal threshold.
        marginal: f64,
    },
    /// A weight below 0 or weights above 100 in all.
    #[error("group weights {0}: each must be at least 0 and together at most 100")]
    Weights(String),
}

/// Scores metric verdicts with group `weights` (percent; groups without one share what is
/// left equally).
pub fn score(
    metrics: &[ScoredMetric],
    weights: &BTreeMap<String, f64>,
    thresholds: ScoreThresholds,
) -> Result<ScoreVerdict, ScoreError> {
    let ScoreThresholds { pass, marginal } = thresholds;
    if !(0.0 <= marginal && marginal <= pass && pass <= 100.0) {
        return Err(ScoreError::Thresholds { pass, marginal });
    }
    let total: f64 = weights.values().sum();
    let valid = |w: f64| w.is_finite() && w >= 0.0;
    if !weights.values().all(|w| valid(*w)) || !valid(total) || total > 100.0 {
        return Err(ScoreError::Weights(format!("{weights:?}")));
    }
    let counted: Vec<&ScoredMetric> = metrics.iter().filter(|m| !m.muted).collect();
    let known = decide(&counted, weights, None, thresholds);
    if !counted
        .iter()
        .any(|m| m.classification == Classification::Inconclusive)
    {
        return Ok(known);
    }
    let best = decide(&counted, weights, Some(Classification::Pass), thresholds);
    let worst = decide(&counted, weights, Some(Classification::High), thresholds);
    let range = Some([worst.score, best.score]);
    let undecided: Vec<&str> = counted
        .iter()
        .filter(|m| m.classification == Classification::Inconclusive)
        .map(|m| m.name.as_str())
        .collect();
    let list = undecided.join(", ");
    if best.outcome == worst.outcome {
        let note = format!("whatever {list} turns out to be");
        let reason = Some(
            known
                .reason
                .map_or(note.clone(), |r| format!("{r}; {note}")),
        );
        return Ok(ScoreVerdict {
            outcome: best.outcome,
            range,
            reason,
            ..known
        });
    }
    let reason = format!(
        "{list} inconclusive: the outcome could be {} (score {}) or {} (score {}); gather more samples or decide",
        name(best.outcome),
        show(best.score),
        name(worst.outcome),
        show(worst.score)
    );
    Ok(ScoreVerdict {
        outcome: Outcome::Inconclusive,
        range,
        reason: Some(reason),
        ..known
    })
}

fn name(o: Outcome) -> &'static str {
    match o {
        Outcome::Pass => "pass",
        Outcome::Marginal => "marginal",
        Outcome::Fail => "fail",
        Outcome::Inconclusive => "inconclusive",
    }
}

/// Kayenta's scorer, with inconclusive metrics taken `as_if` the given verdict (a critical
/// one failing the judgement when taken as `High`), or left out.
fn decide(
    metrics: &[&ScoredMetric],
    weights: &BTreeMap<String, f64>,
    as_if: Option<Classification>,
    thresholds: ScoreThresholds,
) -> ScoreVerdict {
    let label = |m: &ScoredMetric| match (m.classification, as_if) {
        (Classification::Inconclusive, Some(c)) => c,
        (c, _) => c,
    };
    let groups = group_scores(metrics, &label);
    let failure = metrics.iter().find(|m| {
        m.critical && label(m) != Classification::Pass && label(m) != Classification::Inconclusive
    });
    let nodata = metrics
        .iter()
        .filter(|m| m.classification == Classification::Nodata)
        .count();
    let (score, reason) = if let Some(m) = failure {
        (
            0.0,
            Some(format!("critical metric {} failed: {}", m.name, m.reason)),
        )
    } else if !metrics.is_empty()
        && nodata as f64 / metrics.len() as f64 * 100.0 >= NODATA_SHARE_THAT_FAILS
    {
        (
            0.0,
            Some(format!(
                "{nodata} of {} metrics have no data ({}% or more fails)",
                metrics.len(),
                NODATA_SHARE_THAT_FAILS
            )),
        )
    } else {
        (weighted_sum(&groups, weights), None)
    };
    let outcome = if score >= thresholds.pass {
        Outcome::Pass
    } else if score >= thresholds.marginal {
        Outcome::Marginal
    } else {
        Outcome::Fail
    };
    ScoreVerdict {
        outcome,
        score,
        range: None,
        groups,
        reason,
    }
}

fn group_scores(
    metrics: &[&ScoredMetric],
    label: &dyn Fn(&ScoredMetric) -> Classification,
) -> Vec<GroupScore> {
    let mut by_group: BTreeMap<&str, Vec<Classification>> = BTreeMap::new();
    for m in metrics {
        if m.groups.is_empty() {
            by_group.entry("default").or_default().push(label(m));
        }
        for g in &m.groups {
            by_group.entry(g).or_default().push(label(m));
        }
    }
    by_group
        .into_iter()
        .map(|(name, labels)| {
            let mut counts = BTreeMap::new();
            for l in &labels {
                *counts.entry(l.name()).or_insert(0) += 1;
            }
            let passed = labels
                .iter()
                .filter(|l| **l == Classification::Pass)
                .count();
            let counted = labels
                .iter()
                .filter(|l| {
                    matches!(
                        l,
                        Classification::Pass
                            | Classification::High
                            | Classification::Low
                            | Classification::NodataFail
                    )
                })
                .count();
            let score = if counted == 0 {
                0.0
            } else {
                passed as f64 / counted as f64 * 100.0
            };
            GroupScore {
                name: name.to_owned(),
                score,
                no_data: counted == 0,
                counts,
            }
        })
        .collect()
}

fn weighted_sum(groups: &[GroupScore], weights: &BTreeMap<String, f64>) -> f64 {
    let unweighted = groups
        .iter()
        .filter(|g| !weights.contains_key(&g.name))
        .count();
    let share = if unweighted == 0 {
        0.0
    } else {
        (100.0 - weights.values().sum::<f64>()) / unweighted as f64
    };
    let sum: f64 = groups
        .iter()
        .map(|g| {
            let effective = if g.no_data { 100.0 } else { g.score };
            effective * weights.get(&g.name).copied().unwrap_or(share) / 100.0
        })
        .sum();
    (sum * 100.0).round() / 100.0
}

#[cfg(test)]
#[path = "score_tests.rs"]
mod tests;
