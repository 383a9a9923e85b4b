//! SLOs: three file formats (glidepath's own `kind: SLO`, Keptn's slo.yaml with its
//! sli.yaml, OpenSLO v1), one model; scoring with Keptn's semantics; error budgets by
//! occurrences or time slices over rolling or calendar windows, and multi-window burn rates.

pub mod budget;
pub mod calendar;
pub mod criteria;
mod formats;
#[cfg(test)]
mod keptn_tests;
pub mod level;
pub mod live;
mod openslo;
pub mod queries;
pub mod score;

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

pub use criteria::Criterion;
pub use formats::load_file;
pub use level::ServiceLevel;
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
    /// For error budgets: one per objective that has a target (OpenSLO), or the
    /// `serviceLevel` of glidepath's format.
    pub service_levels: Vec<ServiceLevel>,
}

impl Slo {
    /// Loads an SLO file; `sli` is Keptn's sli.yaml when `path` is a Keptn slo.yaml.
    pub fn load(path: &Path, sli: Option<&Path>) -> Result<Slo, crate::yaml::LoadError> {
        load_file(path, sli)
    }

    /// The first service level, if any.
    pub fn service_level(&self) -> Option<&ServiceLevel> {
        self.service_levels.first()
    }
}
