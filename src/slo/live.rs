//! SLOs against a live Prometheus: measure every SLI, compute the error budget, and write
//! the recording and burn-rate alerting rules that watch it.

use std::collections::BTreeMap;
use std::time::Duration;

use super::budget::{self, Budget, Severity};
use super::level::Count;
use super::{Format, ServiceLevel, Slo};
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

/// A query for one SLI failed: the SLI, the query, and Prometheus's answer.
#[derive(Debug, thiserror::Error)]
#[error("SLI `{sli}`, query `{query}`: {source}")]
pub struct MeasureError {
    /// The SLI whose query failed.
    pub sli: String,
    /// The query as sent (variables filled in).
    pub query: String,
    /// Why.
    #[source]
    pub source: QueryError,
}

impl MeasureError {
    /// Whether the query itself is wrong (Prometheus answered 400 or 422, `bad_data`):
    /// bad input, where anything else Prometheus does is an infrastructure failure.
    pub fn is_bad_query(&self) -> bool {
        matches!(
            &self.source,
            QueryError::Api {
                status: 400 | 422,
                ..
            }
        ) || matches!(&self.source, QueryError::Api { error_type, .. } if error_type == "bad_data")
    }
}

/// One query for `sli`: its value, or the failure naming the SLI and the query.
async fn value_of(
    client: &Client,
    sli: &str,
    query: String,
    at: Option<f64>,
) -> Result<Option<f64>, MeasureError> {
    client
        .value(&query, at)
        .await
        .map_err(|source| MeasureError {
            sli: sli.to_owned(),
            query,
            source,
        })
}

/// Measures every SLI the objectives use. An SLI without a query or a measurement, or a
/// query without Prometheus, is no data; so are an empty result and NaN (a stale series
/// is an empty result); ±Inf is kept, and never passes. A failed query stops the
/// measurement, naming its SLI and query.
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
            (Some(template), Some(client)) => {
                value_of(client, &o.sli, fill(slo, template, vars, window), at).await?
            }
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

/// The error budget now (or at `at`) of the objective closest to running out: the one a
/// gate holds a release for. An objective with no data counts as closest.
pub async fn budget_at(
    slo: &Slo,
    client: &Client,
    vars: &BTreeMap<String, String>,
    at: Option<f64>,
) -> Result<Budget, BudgetError> {
    let all = budgets_at(slo, client, vars, at).await?;
    budget::tightest(&all)
        .cloned()
        .ok_or(BudgetError::NoServiceLevel)
}

/// The error budget now (or at `at`) of every objective, in file order.
pub async fn budgets_at(
    slo: &Slo,
    client: &Client,
    vars: &BTreeMap<String, String>,
    at: Option<f64>,
) -> Result<Vec<Budget>, BudgetError> {
    if slo.service_levels.is_empty() {
        return Err(BudgetError::NoServiceLevel);
    }
    let mut out = Vec::new();
    for level in &slo.service_levels {
        out.push(level_budget(slo, level, client, vars, at).await?);
    }
    Ok(out)
}

/// One service level's budget. A calendar window covers its current period up to `at`.
async fn level_budget(
    slo: &Slo,
    level: &ServiceLevel,
    client: &Client,
    vars: &BTreeMap<String, String>,
    at: Option<f64>,
) -> Result<Budget, BudgetError> {
    let mut level = level.clone();
    let (mut at, mut range, mut period_start) = (at, level.window, None);
    if let Some(calendar) = &level.calendar {
        let now = at.unwrap_or_else(unix_now);
        let current = calendar.current(now).map_err(BudgetError::Calendar)?;
        level.window = Duration::from_secs_f64((current.end - current.start).max(1.0));
        range = Duration::from_secs_f64((now - current.start).floor().max(1.0));
        period_start = Some(rfc3339(current.start));
        at = Some(now);
    }
    let query = |w: Duration, count: Count| {
        fill(
            slo,
            &level.error_ratio_query_with(&format_duration(w), count),
            vars,
            w,
        )
    };
    let sli = if level.name.is_empty() {
        "error ratio of the service level".to_owned()
    } else {
        level.name.clone()
    };
    let over_window = value_of(client, &sli, query(range, Count::Increase), at).await?;
    let mut ratios = BTreeMap::new();
    for pair in budget::pairs_for(&level) {
        for w in [pair.long, pair.short] {
            if let std::collections::btree_map::Entry::Vacant(e) = ratios.entry(w) {
                e.insert(value_of(client, &sli, query(w, Count::Rate), at).await?);
            }
        }
    }
    let mut budget = budget::compute(&level, over_window, |w| ratios.get(&w).copied().flatten());
    budget.period_start = period_start;
    Ok(budget)
}

fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or_default()
}

fn rfc3339(secs: f64) -> String {
    time::OffsetDateTime::from_unix_timestamp(secs as i64)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| format!("{secs}"))
}

/// Why a budget cannot be computed.
#[derive(Debug, thiserror::Error)]
pub enum BudgetError {
    /// The SLO has no service level.
    #[error(
        "the SLO has no service level (a ratio SLI, a target and a window); add spec.serviceLevel"
    )]
    NoServiceLevel,
    /// A calendar window's period cannot be placed.
    #[error("{0}")]
    Calendar(String),
    /// Prometheus failed, on the query named.
    #[error(transparent)]
    Query(#[from] MeasureError),
    /// Rules would keep `${name}` templates that nothing filled, and match nothing.
    #[error(
        "the rules would keep {}, which nothing fills, and match nothing; pass --set NAME=VALUE for each",
        .0.iter().map(|n| format!("`${{{n}}}`")).collect::<Vec<_>>().join(", ")
    )]
    Unfilled(Vec<String>),
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

/// Prometheus rules for an SLO's service levels: one recording rule per burn-rate window
/// and the multi-window, multi-burn-rate alerts (page and ticket), as a rules file. With
/// several objectives, each rule carries an `objective` label (its index).
pub fn rules(slo: &Slo, vars: &BTreeMap<String, String>) -> Result<serde_json::Value, BudgetError> {
    if slo.service_levels.is_empty() {
        return Err(BudgetError::NoServiceLevel);
    }
    let several = slo.service_levels.len() > 1;
    let rules: Vec<serde_json::Value> = slo
        .service_levels
        .iter()
        .enumerate()
        .flat_map(|(i, level)| level_rules(slo, level, several.then_some(i), vars))
        .collect();
    let unfilled = unfilled(&rules);
    if !unfilled.is_empty() {
        return Err(BudgetError::Unfilled(unfilled));
    }
    Ok(
        serde_json::json!({ "groups": [{ "name": format!("glidepath-slo-{}", slo.name), "rules": rules }] }),
    )
}

/// The recording rules and alerts of one service level.
fn level_rules(
    slo: &Slo,
    level: &ServiceLevel,
    objective: Option<usize>,
    vars: &BTreeMap<String, String>,
) -> Vec<serde_json::Value> {
    let pairs = budget::pairs_for(level);
    let mut windows: Vec<Duration> = pairs.iter().flat_map(|p| [p.long, p.short]).collect();
    windows.sort();
    windows.dedup();
    let record = |w: Duration| format!("slo:error_ratio:rate{}", format_duration(w));
    let mut labels = serde_json::json!({ "slo": slo.name });
    let mut selector = format!("slo=\"{}\"", slo.name);
    if let Some(i) = objective {
        labels["objective"] = serde_json::json!(i.to_string());
        selector.push_str(&format!(",objective=\"{i}\""));
    }
    let mut rules: Vec<serde_json::Value> = windows
        .iter()
        .map(|w| {
            let expr = level.error_ratio_query_with(&format_duration(*w), Count::Rate);
            serde_json::json!({
                "record": record(*w),
                "expr": fill(slo, &expr, vars, *w),
                "labels": labels,
            })
        })
        .collect();
    let about = if level.name.is_empty() {
        slo.name.clone()
    } else {
        format!("{} ({})", slo.name, level.name)
    };
    for (severity, word) in [(Severity::Page, "page"), (Severity::Ticket, "ticket")] {
        let clauses: Vec<String> = pairs
            .iter()
            .filter(|p| p.severity == severity)
            .map(|p| {
                let threshold = ((p.factor * level.budget()) * 1e12).round() / 1e12;
                format!(
                    "({long}{{{selector}}} > {threshold} and {short}{{{selector}}} > {threshold})",
                    long = record(p.long),
                    short = record(p.short)
                )
            })
            .collect();
        let mut alert_labels = labels.clone();
        alert_labels["severity"] = serde_json::json!(word);
        rules.push(serde_json::json!({
            "alert": format!("{}ErrorBudgetBurn{}", camel(&slo.name), camel(word)),
            "expr": clauses.join(" or "),
            "labels": alert_labels,
            "annotations": {
                "summary": format!("{about} is burning its error budget too fast"),
                "description": format!("Target {:.3}% over {}: the burn rate is above the {word} threshold on a long and a short window.", level.target * 100.0, format_duration(level.window)),
            },
        }));
    }
    rules
}

/// The `${name}` templates left in the rules' expressions, each once, in order.
fn unfilled(rules: &[serde_json::Value]) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for expr in rules.iter().filter_map(|r| r["expr"].as_str()) {
        let mut rest = expr;
        while let Some(i) = rest.find("${") {
            let tail = &rest[i + 2..];
            let end = tail.find('}').unwrap_or(tail.len());
            let name = tail[..end].to_owned();
            if !names.contains(&name) {
                names.push(name);
            }
            rest = &tail[end..];
        }
    }
    names
}

/// Parses `--at`: unix seconds or RFC 3339.
pub fn parse_time(text: &str) -> Result<f64, String> {
    // 9999-12-31T23:59:59Z, the last time RFC 3339 can write.
    const LATEST: f64 = 253_402_300_799.0;
    if let Ok(secs) = text.parse::<f64>() {
        return if (0.0..=LATEST).contains(&secs) {
            Ok(secs)
        } else {
            Err(format!(
                "time `{text}` is out of range; expected unix seconds from 0 to {LATEST} (year 9999)"
            ))
        };
    }
    time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .map(|t| t.unix_timestamp() as f64)
        .map_err(|_| format!("invalid time `{text}`; expected unix seconds or RFC 3339 such as 2026-11-27T12:00:00Z"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_are_refused_while_a_template_is_unfilled() {
        let slo = Slo::load(
            std::path::Path::new("tests/fixtures/slo/checkout-slo.yaml"),
            None,
        )
        .unwrap();
        let e = rules(&slo, &BTreeMap::new()).unwrap_err();
        assert!(
            matches!(&e, BudgetError::Unfilled(n) if n == &["service"]),
            "{e}"
        );
        assert_eq!(
            e.to_string(),
            "the rules would keep `${service}`, which nothing fills, and match nothing; pass --set NAME=VALUE for each"
        );
        let vars = BTreeMap::from([("service".to_owned(), "checkout".to_owned())]);
        let out = rules(&slo, &vars).unwrap().to_string();
        assert!(!out.contains("${"), "{out}");
        assert!(out.contains("service=\\\"checkout\\\""), "{out}");
    }
}
