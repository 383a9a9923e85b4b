//! The statistical judge's decision over samples already taken: each metric's canary and
//! baseline samples compared, error counts compared as proportions, the verdicts scored
//! into a [`Judgement`]. Pure: the live judge calls it with what it just queried, and
//! `glidepath replay --judge` with what the journal kept.

use crate::events::{Judgement, MetricComparison, Verdict};
use crate::judge::evidence::{judgement_facts, metric_facts, proportion_facts};
use crate::judge::proportions::{Counts, compare_proportions};
use crate::judge::score::ScoredMetric;
use crate::judge::{Classification, judge_metric, score};
use crate::pipeline::model::Statistical;
use crate::pipeline::statistical::{ERROR_COUNTS, JudgedMetric};

/// The group of metrics the file puts in none.
pub const DEFAULT_GROUP: &str = "default";

/// One metric's samples of both sides.
#[derive(Debug, Clone)]
pub struct Sampled {
    /// The SLI's name.
    pub name: String,
    /// How it is judged.
    pub options: JudgedMetric,
    /// Canary's and baseline's samples, in time order (`None`: missing).
    pub samples: [Vec<Option<f64>>; 2],
    /// Canary's and baseline's queries as sent.
    pub queries: [Option<String>; 2],
}

/// Errors among requests of both sides.
#[derive(Debug, Clone)]
pub struct Counted {
    /// Canary's and baseline's counts.
    pub counts: [Counts; 2],
    /// Canary's and baseline's error queries as sent.
    pub queries: [Option<String>; 2],
}

/// Judges `metrics` and `counted` (compared when `settings` judge error counts) under
/// `settings`. `waiting`: the traffic still moves (or no sample fits yet), so a judgement
/// that fails only for want of data is inconclusive rather than a failure. Errors are
/// settings the judge cannot use.
pub fn decide(
    settings: &Statistical,
    metrics: &[Sampled],
    counted: Option<Counted>,
    waiting: bool,
) -> Result<Judgement, String> {
    let mut facts = Vec::new();
    let mut scored = Vec::new();
    for m in metrics {
        let config = m.options.config();
        let [canary, baseline] = &m.samples;
        let v = judge_metric(canary, baseline, &config)
            .map_err(|e| format!("metric {}: {e}", m.name))?;
        let mut f = metric_facts(
            &v,
            [canary, baseline],
            (config.nan_strategy, config.outliers),
        );
        f.metric.clone_from(&m.name);
        f.group = m
            .options
            .group
            .clone()
            .unwrap_or_else(|| DEFAULT_GROUP.into());
        [f.query, f.baseline_query] = m.queries.clone();
        scored.push(scored_metric(&f, v.classification, v.critical));
        facts.push(f);
    }
    if let (Some(c), Some(e), Some(config)) = (counted, &settings.errors, settings.proportions()) {
        let v =
            compare_proportions(c.counts[0], c.counts[1], &config).map_err(|e| e.to_string())?;
        let mut f = proportion_facts(&v, c.counts, config.allowed_increase);
        f.metric = ERROR_COUNTS.into();
        f.group = e.group.clone().unwrap_or_else(|| DEFAULT_GROUP.into());
        [f.query, f.baseline_query] = c.queries;
        scored.push(scored_metric(&f, v.classification, f.critical));
        facts.push(f);
    }
    let thresholds = settings.thresholds();
    let verdict = score(&scored, &settings.groups, thresholds).map_err(|e| e.to_string())?;
    let mut judgement = judgement_facts(&verdict, &settings.groups, thresholds, facts);
    // An empty side, or too few values or requests to tell, says nothing against the canary.
    let undecided = judgement.metrics.iter().all(|m| {
        m.verdict == Verdict::Pass
            || matches!(
                m.classification.as_str(),
                "nodata" | "nodata-fail" | "inconclusive"
            )
    });
    if waiting && judgement.verdict == Verdict::Fail && undecided {
        judgement.outcome = "inconclusive".into();
        judgement.verdict = Verdict::Warning;
        let why = "waiting for data: a side has no samples yet while traffic moves";
        judgement.reason = Some(match judgement.reason.take() {
            Some(r) => format!("{why} ({r})"),
            None => why.to_owned(),
        });
    }
    Ok(judgement)
}

/// A metric as the scorer takes it.
fn scored_metric(f: &MetricComparison, class: Classification, critical: bool) -> ScoredMetric {
    ScoredMetric {
        name: f.metric.clone(),
        groups: vec![f.group.clone()],
        classification: class,
        critical,
        muted: false,
        reason: f.reason.clone(),
    }
}

/// `statistical judge: pass, score 100 (pass 95, marginal 75)`, with the metrics that do
/// not pass and the reason.
pub fn message(j: &Judgement) -> String {
    let mut m = format!(
        "statistical judge: {}, score {} (pass {}, marginal {})",
        j.outcome,
        crate::judge::show(j.score),
        crate::judge::show(j.pass),
        crate::judge::show(j.marginal)
    );
    let failing: Vec<&str> = j
        .metrics
        .iter()
        .filter(|m| m.verdict != Verdict::Pass)
        .map(|m| m.metric.as_str())
        .collect();
    if !failing.is_empty() {
        m.push_str(&format!("; not passing: {}", failing.join(", ")));
    }
    if let Some(r) = &j.reason {
        m.push_str(&format!("; {r}"));
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sampled(name: &str, canary: f64, options: JudgedMetric) -> Sampled {
        let side = |base: f64| (0..30).map(|i| Some(base + f64::from(i % 7))).collect();
        Sampled {
            name: name.into(),
            options,
            samples: [side(canary), side(100.0)],
            queries: [None, None],
        }
    }

    #[test]
    fn a_slower_canary_fails_and_a_looser_allowance_passes_it() {
        let strict = JudgedMetric {
            allowed_increase: Some(1.1),
            critical: true,
            ..JudgedMetric::default()
        };
        let settings = Statistical::default();
        let j = decide(&settings, &[sampled("latency", 130.0, strict)], None, false).unwrap();
        assert_eq!((j.outcome.as_str(), j.verdict), ("fail", Verdict::Fail));
        assert_eq!(j.metrics[0].group, DEFAULT_GROUP);
        let loose = JudgedMetric {
            allowed_increase: Some(2.0),
            ..JudgedMetric::default()
        };
        let j = decide(&settings, &[sampled("latency", 130.0, loose)], None, false).unwrap();
        assert_eq!((j.outcome.as_str(), j.verdict), ("pass", Verdict::Pass));
        assert!(message(&j).starts_with("statistical judge: pass, score 100"));
    }

    #[test]
    fn only_missing_data_while_traffic_moves_is_inconclusive() {
        let options = JudgedMetric {
            must_have_data: true,
            ..JudgedMetric::default()
        };
        let empty = Sampled {
            samples: [Vec::new(), Vec::new()],
            ..sampled("latency", 100.0, options)
        };
        let settings = Statistical::default();
        let moving = decide(&settings, std::slice::from_ref(&empty), None, true).unwrap();
        assert_eq!(moving.outcome, "inconclusive");
        let still = decide(&settings, &[empty], None, false).unwrap();
        assert_eq!(still.verdict, Verdict::Fail);
    }

    /// Seen on a real control plane: the baseline's first requests not yet scraped, one
    /// error among the canary's first 39 requests. Neither says the canary is worse.
    #[test]
    fn missing_data_beside_error_counts_too_few_to_tell_is_inconclusive_while_traffic_moves() {
        let options = JudgedMetric {
            critical: true,
            ..JudgedMetric::default()
        };
        let no_baseline = Sampled {
            samples: [vec![Some(41.0), Some(44.0)], Vec::new()],
            ..sampled("latency_mean_ms", 100.0, options)
        };
        let settings: Statistical = serde_json::from_value(serde_json::json!({
            "metrics": { "latency_mean_ms": { "critical": true } },
            "errors": { "requests": "requests", "errors": "errors", "critical": true, "floor": "1%" },
        }))
        .unwrap();
        let counted = Counted {
            counts: [
                Counts {
                    errors: 1,
                    total: 39,
                },
                Counts {
                    errors: 0,
                    total: 5,
                },
            ],
            queries: [None, None],
        };
        let metrics = std::slice::from_ref(&no_baseline);
        let moving = decide(&settings, metrics, Some(counted.clone()), true).unwrap();
        let classes: Vec<&str> = moving
            .metrics
            .iter()
            .map(|m| m.classification.as_str())
            .collect();
        assert_eq!(classes, ["nodata", "inconclusive"], "{}", message(&moving));
        assert_eq!(moving.outcome, "inconclusive", "{}", message(&moving));
        assert!(message(&moving).contains("waiting for data"));
        // Once the traffic stands still, a critical metric without data fails as before.
        let still = decide(&settings, metrics, Some(counted), false).unwrap();
        assert_eq!(still.verdict, Verdict::Fail, "{}", message(&still));
    }
}
