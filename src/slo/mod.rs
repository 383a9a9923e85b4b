//! SLOs: three file formats (glidepath's own `kind: SLO`, Keptn's slo.yaml with its
//! sli.yaml, OpenSLO v1), one model; scoring with Keptn's semantics; error budgets and
//! multi-window burn rates.

pub mod budget;
pub mod criteria;
mod formats;
#[cfg(test)]
mod keptn_tests;
pub mod live;
pub mod score;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use criteria::Criterion;
pub use formats::load_file;
pub use score::{Evaluation, HistoryEntry, evaluate};

/// Which file format an SLO came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// `apiVersion: glidepath/v1`, `kind: SLO`.
    Glidepath,
    /// Keptn's `slo.yaml` (+ `sli.yaml`).
    Keptn,
    /// OpenSLO v1 `SLO` (+ `SLI`) documents.
    OpenSlo,
}

/// One objective: an SLI with pass and warning criteria.
#[derive(Debug, Clone, PartialEq)]
pub struct Objective {
    /// The SLI name.
    pub sli: String,
    /// A name for people.
    pub display_name: Option<String>,
    /// Criteria sets, ORed; the criteria of a set are ANDed. Empty: info only.
    pub pass: Vec<Vec<Criterion>>,
    /// The same for warning.
    pub warning: Vec<Vec<Criterion>>,
    /// Points (default 1).
    pub weight: f64,
    /// A failure fails the whole evaluation.
    pub key_sli: bool,
}

/// What relative criteria compare against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompareWith {
    /// The latest earlier result.
    SingleResult,
    /// The latest `number_of_results` earlier results.
    SeveralResults,
}

/// Which earlier results count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IncludeResults {
    /// Every result.
    All,
    /// Passed ones.
    Pass,
    /// Passed or warning.
    PassOrWarn,
}

/// How earlier values combine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Aggregate {
    /// Mean.
    Avg,
    /// Median.
    P50,
    /// 90th percentile.
    P90,
    /// 95th percentile.
    P95,
}

/// Comparison with earlier results.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Comparison {
    /// One or several earlier results.
    pub compare_with: CompareWith,
    /// How many, for several.
    pub number_of_results: usize,
    /// Which results count.
    pub include: IncludeResults,
    /// How they combine.
    pub aggregate: Aggregate,
}

impl Default for Comparison {
    /// Keptn's default when `comparison` is absent.
    fn default() -> Self {
        Comparison {
            compare_with: CompareWith::SingleResult,
            number_of_results: 1,
            include: IncludeResults::All,
            aggregate: Aggregate::Avg,
        }
    }
}

/// The number of an absolute criterion (`<=0.01` → 0.01), for drawing it as a line;
/// relative ones (`<=+10%`) have none.
pub fn threshold(criterion: &str) -> Option<f64> {
    let n = criterion.trim().trim_start_matches(['<', '>', '=']);
    if n.starts_with(['+', '-']) || n.ends_with('%') {
        return None;
    }
    n.parse().ok()
}

/// Total score thresholds, in percent.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TotalScore {
    /// At least this passes.
    pub pass: f64,
    /// At least this is a warning.
    pub warning: Option<f64>,
}

/// A service level for error budgets: a ratio SLI, a target and a rolling window.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceLevel {
    /// Good events (PromQL), if the ratio is good/total.
    pub good: Option<String>,
    /// Bad events (PromQL), if the ratio is bad/total.
    pub bad: Option<String>,
    /// All events (PromQL).
    pub total: String,
    /// The target as a fraction (0.999).
    pub target: f64,
    /// The rolling window (30 days).
    pub window: Duration,
}

impl ServiceLevel {
    /// The error budget: 1 - target.
    pub fn budget(&self) -> f64 {
        // Rounded so 1 - 0.999 is 0.001, not 0.0010000000000000009, in rules and output.
        ((1.0 - self.target) * 1e12).round() / 1e12
    }

    /// The PromQL error ratio over `range` (a Prometheus duration such as `1h`), from the
    /// good or bad query with `${window}` set to the range.
    pub fn error_ratio_query(&self, range: &str) -> String {
        let fill = |q: &str| q.replace("${window}", range);
        let total = fill(&self.total);
        match (&self.bad, &self.good) {
            (Some(bad), _) => format!("({}) / ({total})", fill(bad)),
            (None, Some(good)) => format!("1 - (({}) / ({total}))", fill(good)),
            (None, None) => format!("({total}) * 0"),
        }
    }
}

/// An SLO, whatever file it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Slo {
    /// Its name.
    pub name: String,
    /// The file format.
    pub format: Format,
    /// SLI name → PromQL template (`${service}`, `${namespace}`, `${version}`, `${window}`).
    pub slis: BTreeMap<String, String>,
    /// Objectives in order.
    pub objectives: Vec<Objective>,
    /// Total score thresholds.
    pub total_score: TotalScore,
    /// Comparison with earlier results.
    pub comparison: Comparison,
    /// For error budgets.
    pub service_level: Option<ServiceLevel>,
}

impl Slo {
    /// Loads an SLO file; `sli` is Keptn's sli.yaml when `path` is a Keptn slo.yaml.
    pub fn load(path: &Path, sli: Option<&Path>) -> Result<Slo, crate::yaml::LoadError> {
        load_file(path, sli)
    }
}
