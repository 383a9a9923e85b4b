//! `replay --judge FILE`: another statistical judge's settings (the fields of an analysis's
//! `statistical:` block), checked as the pipeline checks them, and each journaled
//! judgement decided again from its samples with them.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::events::{AnalysisPart, Judgement, MetricComparison};
use crate::judge::proportions::Counts;
use crate::pipeline::model::Statistical;
use crate::pipeline::statistical::{ERROR_COUNTS, JudgedMetric};
use crate::steps::release::judgement::{Counted, Sampled, decide};
use crate::yaml::{self, LoadError, Node, Pos, Value};

/// Keys that change how samples were taken: a replay has only the samples the run took.
const UNREPLAYABLE: [(&str, &str); 4] = [
    ("lookback", "how far back each judgement sampled"),
    ("step", "the time between two samples"),
    ("rateWindow", "the span each sample measured"),
    ("baselineVersion", "which pods were the baseline"),
];

/// A judge file, loaded and checked.
#[derive(Debug, Clone)]
pub struct JudgeFile {
    /// Where it was read.
    pub path: PathBuf,
    /// Its settings.
    pub settings: Statistical,
    /// Where each metric it names is written.
    metrics_at: BTreeMap<String, Pos>,
    /// Where `errors` is written.
    errors_at: Option<Pos>,
}

/// One journaled judgement decided again.
#[derive(Debug, Clone)]
pub struct Rejudged {
    /// The new judgement.
    pub judgement: Judgement,
    /// Per metric judged, its recorded and its new classification.
    pub metrics: Vec<MetricChange>,
    /// Journaled metrics the file leaves out.
    pub left_out: Vec<String>,
}

/// One metric's classification, recorded and replayed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MetricChange {
    /// The metric (an SLI's name, or `error-counts`).
    pub metric: String,
    /// Its recorded classification (`high`, `pass`...).
    pub recorded: String,
    /// Its classification by the file's settings.
    pub replayed: String,
    /// The effect size now measured against the file's threshold.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub effect_size: Option<f64>,
    /// The threshold that decided (`allowed increase 2`).
    pub threshold: String,
}

impl MetricChange {
    /// The classification differs.
    pub fn changed(&self) -> bool {
        self.recorded != self.replayed
    }
}

impl JudgeFile {
    /// Reads and checks `path`: YAML errors, settings that cannot work and keys that
    /// change how samples were taken are `file:line:col` errors.
    pub fn load(path: &Path) -> Result<JudgeFile, LoadError> {
        let at = |e: yaml::Error| e.in_file(path);
        let text = crate::input::read_text(path).map_err(|e| LoadError {
            file: path.to_owned(),
            pos: None,
            message: format!("cannot read the judge file: {e}"),
        })?;
        let node = yaml::parse_one(&text).map_err(at)?;
        for (key, why) in UNREPLAYABLE {
            if let Some((pos, _)) = entry(&node, key) {
                return Err(at(yaml::Error::at(
                    pos,
                    format!(
                        "`{key}` changes {why}, and a replay has only the samples the run took: remove it (it cannot be replayed)"
                    ),
                )));
            }
        }
        let settings: Statistical = yaml::from_node(&node).map_err(at)?;
        settings.check().map_err(|(field, why)| {
            // The file is the `statistical:` block itself.
            let key = field.strip_prefix("statistical.").unwrap_or(&field);
            at(yaml::Error::at(
                position(&node, &field),
                format!("{key}: {why}"),
            ))
        })?;
        let metrics_at = match entry(&node, "metrics").map(|(_, n)| &n.value) {
            Some(Value::Map(entries)) => entries
                .iter()
                .filter_map(|(k, _)| Some((k.as_str()?.to_owned(), k.pos)))
                .collect(),
            _ => BTreeMap::new(),
        };
        Ok(JudgeFile {
            path: path.to_owned(),
            settings,
            metrics_at,
            errors_at: entry(&node, "errors").map(|(pos, _)| pos),
        })
    }

    /// Refuses settings the run's judgements cannot answer: a metric it never sampled,
    /// error counts it never compared (or journaled without their requests).
    pub fn fits<'a>(
        &self,
        run: i64,
        judgements: impl IntoIterator<Item = &'a Judgement>,
    ) -> Result<(), LoadError> {
        let mut sampled = BTreeSet::new();
        let mut counts = Vec::new();
        for j in judgements {
            for m in &j.metrics {
                if m.metric == ERROR_COUNTS {
                    counts.push(m);
                } else {
                    sampled.insert(m.metric.as_str());
                }
            }
        }
        let err = |pos: Option<Pos>, message: String| LoadError {
            file: self.path.clone(),
            pos,
            message,
        };
        for name in self.settings.metrics.keys() {
            if !sampled.contains(name.as_str()) {
                let known: Vec<&str> = sampled.iter().copied().collect();
                return Err(err(
                    self.metrics_at.get(name).copied(),
                    format!(
                        "metrics.{name}: run {run} never sampled `{name}` (it sampled {}); judge those, or leave `{name}` out",
                        if known.is_empty() {
                            "none".into()
                        } else {
                            known.join(", ")
                        }
                    ),
                ));
            }
        }
        if self.settings.errors.is_some() {
            if counts.is_empty() {
                return Err(err(
                    self.errors_at,
                    format!(
                        "errors: run {run} compared no error counts (its analysis set no `errors`), so there are none to compare again: remove `errors`"
                    ),
                ));
            }
            if counts.iter().any(|m| counts_of(m).is_none()) {
                return Err(err(
                    self.errors_at,
                    format!(
                        "errors: run {run}'s journal keeps its error counts without the requests they were counted among (it predates replaying them): remove `errors` to judge the other metrics"
                    ),
                ));
            }
        }
        Ok(())
    }

    /// `recorded` decided again with this file's settings from its samples; `part` is the
    /// part of the release it served (while traffic moves, missing data is inconclusive,
    /// as the live judge has it).
    pub fn rejudge(&self, recorded: &Judgement, part: AnalysisPart) -> Result<Rejudged, String> {
        let listed = !self.settings.metrics.is_empty();
        let mut sampled = Vec::new();
        let mut left_out = Vec::new();
        let mut counted = None;
        for m in &recorded.metrics {
            if m.metric == ERROR_COUNTS {
                match (&self.settings.errors, counts_of(m)) {
                    (Some(_), Some(counts)) => {
                        counted = Some(Counted {
                            counts,
                            queries: [m.query.clone(), m.baseline_query.clone()],
                        });
                    }
                    _ => left_out.push(m.metric.clone()),
                }
                continue;
            }
            let options = match self.settings.metrics.get(&m.metric) {
                Some(o) => o.clone(),
                None if !listed => JudgedMetric::default(),
                None => {
                    left_out.push(m.metric.clone());
                    continue;
                }
            };
            sampled.push(Sampled {
                name: m.metric.clone(),
                options,
                samples: [m.canary.values.clone(), m.baseline.values.clone()],
                queries: [m.query.clone(), m.baseline_query.clone()],
            });
        }
        // As live: no window fitted yet when the range is empty.
        let waiting = part == AnalysisPart::Watch || recorded.range_s[0] >= recorded.range_s[1];
        let mut judgement = decide(&self.settings, &sampled, counted, waiting)?;
        judgement.versions.clone_from(&recorded.versions);
        judgement.range_s = recorded.range_s;
        judgement.step_s = recorded.step_s;
        let metrics = judgement
            .metrics
            .iter()
            .map(|now| MetricChange {
                metric: now.metric.clone(),
                recorded: recorded
                    .metrics
                    .iter()
                    .find(|m| m.metric == now.metric)
                    .map(|m| m.classification.clone())
                    .unwrap_or_default(),
                replayed: now.classification.clone(),
                effect_size: now.effect_size,
                threshold: now.threshold.clone(),
            })
            .collect();
        Ok(Rejudged {
            judgement,
            metrics,
            left_out,
        })
    }
}

/// The journaled error counts of both sides, when the journal kept their requests.
fn counts_of(m: &MetricComparison) -> Option<[Counts; 2]> {
    let side = |s: &crate::judge::evidence::SampleFacts| {
        let errors = s.values.first().copied().flatten()?;
        let total = s.requests?;
        // Journaled from whole counts; a hand-edited journal is bounded, never trusted.
        (errors.is_finite() && errors >= 0.0).then(|| Counts {
            errors: (errors.round() as u64).min(total),
            total,
        })
    };
    Some([side(&m.canary)?, side(&m.baseline)?])
}

/// A mapping's entry: its key's position and its value.
fn entry<'a>(node: &'a Node, key: &str) -> Option<(Pos, &'a Node)> {
    match &node.value {
        Value::Map(entries) => entries
            .iter()
            .find(|(k, _)| k.as_str() == Some(key))
            .map(|(k, v)| (k.pos, v)),
        _ => None,
    }
}

/// Where a field path of [`Statistical::check`] (`statistical.metrics.latency`) is
/// written: the deepest of its keys found, else the document.
fn position(node: &Node, field: &str) -> Pos {
    let mut at = node;
    let mut pos = node.pos;
    for key in field.split('.').skip(1) {
        match entry(at, key) {
            Some((p, next)) => {
                pos = p;
                at = next;
            }
            None => break,
        }
    }
    pos
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Result<JudgeFile, String> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("judge.yaml");
        std::fs::write(&path, text).unwrap();
        JudgeFile::load(&path).map_err(|e| {
            let shown = e.to_string();
            shown[shown.find("judge.yaml").unwrap()..].to_owned()
        })
    }

    #[test]
    fn keys_that_change_the_sampling_and_settings_that_cannot_work_point_at_their_line() {
        let e = load("metrics:\n  latency: { allowedIncrease: 2 }\nstep: 5s\n").unwrap_err();
        assert!(e.starts_with("judge.yaml:3:1: `step` changes"), "{e}");
        let e = load("baselineVersion: old\n").unwrap_err();
        assert!(e.starts_with("judge.yaml:1:1: `baselineVersion`"), "{e}");
        let e = load("metrics:\n  latency:\n    allowedIncrease: 2\n    criticalIncrease: 1.5\n")
            .unwrap_err();
        assert!(e.starts_with("judge.yaml:2:3: metrics.latency:"), "{e}");
        let e = load("errors: { requests: r, errors: e, allowedIncrease: 0.5 }\n").unwrap_err();
        assert!(
            e.starts_with("judge.yaml:1:35: errors.allowedIncrease: 0.5: a rate ratio"),
            "{e}"
        );
        let e = load("metrics: { latency: { allowedIncrese: 2 } }\n").unwrap_err();
        assert!(
            e.starts_with("judge.yaml:1:23: unknown field `allowedIncrese`"),
            "{e}"
        );
        assert!(load("metrics: { latency: { allowedIncrease: 2 } }\n").is_ok());
    }

    #[test]
    fn a_metric_the_run_never_sampled_is_named_with_those_it_sampled() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("judge.yaml");
        std::fs::write(&path, "metrics:\n  latency: {}\n  cpu: {}\n").unwrap();
        let file = JudgeFile::load(&path).unwrap();
        let judgement = Judgement {
            metrics: vec![MetricComparison {
                metric: "latency".into(),
                ..MetricComparison::default()
            }],
            ..crate::judge::evidence::judgement_facts(
                &crate::judge::score(&[], &BTreeMap::new(), Statistical::default().thresholds())
                    .unwrap(),
                &BTreeMap::new(),
                Statistical::default().thresholds(),
                Vec::new(),
            )
        };
        let e = file.fits(3, [&judgement]).unwrap_err().to_string();
        assert!(
            e.contains(
                "judge.yaml:3:3: metrics.cpu: run 3 never sampled `cpu` (it sampled latency)"
            ),
            "{e}"
        );
    }
}
