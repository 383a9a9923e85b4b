//! SLOs against a live Prometheus: measure every SLI, compute the error budget, and write
//! the recording and burn-rate alerting rules that watch it.

use std::collections::BTreeMap;
use std::time::Duration;

use super::budget::{self, Budget, Severity};
use super::{Format, Slo};
use crate::metrics::{Client, QueryError, render};
use crate::units::format_duration;

/// Template variables for queries: `${service}`, `${namespace}`, `${version}`, `${window}`
/// and pipeline variables; Keptn's `$SERVICE`, `$STAGE`, `$PROJECT`, `$DEPLOYMENT` and
/// `$DURATION_SECONDS` for Keptn files.
pub fn fill(
    slo: &Slo,
    template: &str,
    vars: &BTreeMap<String, String>,
    window: Duration,
) -> String {
    let mut all = vars.clone();
    all.insert("window".into(), format_duration(window));
    let mut q = render(template, &all);
    if slo.format == Format::Keptn {
        let get = |k: &str| vars.get(k).cloned().unwrap_or_default();
        for (placeholder, value) in [
            ("$DURATION_SECONDS", format!("{}s", window.as_secs())),
            ("$SERVICE", get("service")),
            ("$STAGE", get("stage")),
            ("$PROJECT", get("project")),
            ("$DEPLOYMENT", get("deployment")),
        ] {
            q = q.replace(placeholder, &value);
        }
    }
    q
}

/// Where SLI values come from: PromQL queries to Prometheus, and the figures the run
/// measured itself (a load test's `load.*` SLIs, used when the SLO defines no query of
/// that name).
#[derive(Clone, Copy)]
pub struct Sources<'a> {
    /// Prometheus, when the stage has one.
    pub prometheus: Option<&'a Client>,
    /// The run's own measurements.
    pub measured: &'a BTreeMap<String, f64>,
}

impl<'a> Sources<'a> {
    /// Prometheus alone.
    pub fn only(client: &'a Client) -> Self {
        static NONE: BTreeMap<String, f64> = BTreeMap::new();
        Sources {
            prometheus: Some(client),
            measured: &NONE,
        }
    }
}

impl Slo {
    /// Whether some objective's SLI is a PromQL query (so Prometheus is needed).
    pub fn queries_prometheus(&self) -> bool {
        self.objectives
            .iter()
            .any(|o| self.slis.contains_key(&o.sli))
    }
}

/// A query for one SLI failed: the SLI, and Prometheus's answer.
#[derive(Debug, thiserror::Error)]
#[error("SLI `{sli}`: {source}")]
pub struct MeasureError {
    /// The SLI whose query failed.
    pub sli: String,
    /// Why.
    #[source]
    pub source: QueryError,
}

/// Measures every SLI the objectives use. An SLI without a query or a measurement, or a
/// query without Prometheus, is no data; so are an empty result, NaN and ±Inf (a stale
/// series is an empty result). A failed query stops the measurement, naming its SLI.
pub async fn measure(
    slo: &Slo,
    sources: Sources<'_>,
    vars: &BTreeMap<String, String>,
    window: Duration,
    at: Option<f64>,
) -> Result<BTreeMap<String, Option<f64>>, MeasureError> {
    let mut out = BTreeMap::new();
    for o in &slo.objectives {
        let value = match (slo.slis.get(&o.sli), sources.prometheus) {
            (Some(template), Some(client)) => client
                .value(&fill(slo, template, vars, window), at)
                .await
                .map_err(|source| MeasureError {
                    sli: o.sli.clone(),
                    source,
                })?,
            (Some(_), None) => None,
            (None, _) => sources
                .measured
                .get(&o.sli)
                .copied()
                .filter(|v| v.is_finite()),
        };
        out.insert(o.sli.clone(), value);
    }
    Ok(out)
}

/// One SLI measured for the canary and for stable (the `${version}` variable).
#[derive(Debug, Clone, PartialEq)]
pub struct VersionComparison {
    /// The SLI.
    pub sli: String,
    /// The canary's value.
    pub canary: Option<f64>,
    /// Stable's value.
    pub stable: Option<f64>,
}

/// Measures every SLI for two versions, so a gate can say "canary 4.1% vs stable 0.1%".
pub async fn compare_versions(
    slo: &Slo,
    client: &Client,
    vars: &BTreeMap<String, String>,
    window: Duration,
    canary: &str,
    stable: &str,
    at: Option<f64>,
) -> Result<Vec<VersionComparison>, MeasureError> {
    let with = |version: &str| {
        let mut v = vars.clone();
        v.insert("version".into(), version.to_owned());
        v
    };
    let sources = Sources::only(client);
    let (c, s) = (
        measure(slo, sources, &with(canary), window, at).await?,
        measure(slo, sources, &with(stable), window, at).await?,
    );
    Ok(slo
        .objectives
        .iter()
        .map(|o| VersionComparison {
            sli: o.sli.clone(),
            canary: c.get(&o.sli).copied().flatten(),
            stable: s.get(&o.sli).copied().flatten(),
        })
        .collect())
}

/// The error budget now (or at `at`), from the service level's ratio queries.
pub async fn budget_at(
    slo: &Slo,
    client: &Client,
    vars: &BTreeMap<String, String>,
    at: Option<f64>,
) -> Result<Budget, BudgetError> {
    let level = slo
        .service_level
        .as_ref()
        .ok_or(BudgetError::NoServiceLevel)?;
    let ratio = |w: Duration| fill(slo, &level.error_ratio_query(&format_duration(w)), vars, w);
    let over_window = client.value(&ratio(level.window), at).await?;
    let mut ratios = BTreeMap::new();
    for pair in budget::window_pairs(level.window) {
        for w in [pair.long, pair.short] {
            if let std::collections::btree_map::Entry::Vacant(e) = ratios.entry(w) {
                e.insert(client.value(&ratio(w), at).await?);
            }
        }
    }
    Ok(budget::compute(level, over_window, |w| {
        ratios.get(&w).copied().flatten()
    }))
}

/// Why a budget cannot be computed.
#[derive(Debug, thiserror::Error)]
pub enum BudgetError {
    /// The SLO has no service level.
    #[error(
        "the SLO has no service level (a ratio SLI, a target and a window); add spec.serviceLevel"
    )]
    NoServiceLevel,
    /// Prometheus failed.
    #[error(transparent)]
    Query(#[from] QueryError),
}

fn camel(name: &str) -> String {
    name.split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|p| !p.is_empty())
        .map(|p| {
            let mut c = p.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect()
}

/// Prometheus rules for an SLO's service level: one recording rule per burn-rate window and
/// the multi-window, multi-burn-rate alerts (page and ticket), as a rules file.
pub fn rules(slo: &Slo, vars: &BTreeMap<String, String>) -> Result<serde_json::Value, BudgetError> {
    let level = slo
        .service_level
        .as_ref()
        .ok_or(BudgetError::NoServiceLevel)?;
    let pairs = budget::window_pairs(level.window);
    let mut windows: Vec<Duration> = pairs.iter().flat_map(|p| [p.long, p.short]).collect();
    windows.sort();
    windows.dedup();
    let record = |w: Duration| format!("slo:error_ratio:rate{}", format_duration(w));
    let selector = format!("{{slo=\"{}\"}}", slo.name);
    let mut rules: Vec<serde_json::Value> = windows
        .iter()
        .map(|w| {
            serde_json::json!({
                "record": record(*w),
                "expr": fill(slo, &level.error_ratio_query(&format_duration(*w)), vars, *w),
                "labels": { "slo": slo.name },
            })
        })
        .collect();
    for severity in [Severity::Page, Severity::Ticket] {
        let clauses: Vec<String> = pairs
            .iter()
            .filter(|p| p.severity == severity)
            .map(|p| {
                let threshold = ((p.factor * level.budget()) * 1e12).round() / 1e12;
                format!(
                    "({long}{selector} > {threshold} and {short}{selector} > {threshold})",
                    long = record(p.long),
                    short = record(p.short)
                )
            })
            .collect();
        let word = match severity {
            Severity::Page => "page",
            Severity::Ticket => "ticket",
        };
        rules.push(serde_json::json!({
            "alert": format!("{}ErrorBudgetBurn{}", camel(&slo.name), camel(word)),
            "expr": clauses.join(" or "),
            "labels": { "severity": word, "slo": slo.name },
            "annotations": {
                "summary": format!("{} is burning its error budget too fast", slo.name),
                "description": format!("Target {:.3}% over {}: the burn rate is above the {word} threshold on a long and a short window.", level.target * 100.0, format_duration(level.window)),
            },
        }));
    }
    Ok(
        serde_json::json!({ "groups": [{ "name": format!("glidepath-slo-{}", slo.name), "rules": rules }] }),
    )
}

/// Parses `--at`: unix seconds or RFC 3339.
pub fn parse_time(text: &str) -> Result<f64, String> {
    if let Ok(secs) = text.parse::<f64>() {
        return Ok(secs);
    }
    time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .map(|t| t.unix_timestamp() as f64)
        .map_err(|_| format!("invalid time `{text}`; expected unix seconds or RFC 3339 such as 2026-11-27T12:00:00Z"))
}
