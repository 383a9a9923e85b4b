//! `judge: statistical` under a release: each judged SLI range-queried for the canary and
//! for the baseline (their `version` labels) over the lookback, compared by the statistical
//! judge (`crate::judge`), error counts compared as two proportions, the verdicts scored.
//! The outcome, with every sample, becomes a [`Judgement`] for the journal and evidence
//! lines for the step's reports.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::judgement::{Counted, Sampled, decide, message};
use crate::events::{Evidence, Judgement};
use crate::judge::proportions::Counts;
use crate::metrics::{Client, QueryError};
use crate::pipeline::model::Statistical;
use crate::pipeline::statistical::{ERROR_COUNTS, JudgedMetric};
use crate::slo::Slo;
use crate::slo::live::fill;

/// Why a judgement could not be made.
#[derive(Debug, thiserror::Error)]
pub(super) enum JudgeError {
    /// A query failed.
    #[error("metric `{metric}`, query `{query}`: {source}")]
    Query {
        /// The metric.
        metric: String,
        /// The query as sent.
        query: String,
        /// Prometheus's answer.
        #[source]
        source: QueryError,
    },
    /// The settings cannot be used (the load checks them; a resumed run may carry older
    /// settings).
    #[error("the statistical judge's settings: {0}")]
    Settings(String),
}

/// The statistical judge of one analysis.
pub(super) struct StatisticalJudge {
    settings: Statistical,
    /// The query templates of the requests and errors SLIs, when error counts are judged.
    counts: Option<[String; 2]>,
    /// The `version` label the canary is compared with.
    baseline_version: String,
    /// SLI name → its query template and options, in order.
    metrics: Vec<(String, String, JudgedMetric)>,
    /// When canary and baseline began to take traffic in this run (seconds since the
    /// epoch): no sample's window reaches back before it.
    serving_since: Mutex<Option<f64>>,
}

/// One judgement, ready to report.
pub(super) struct Judged {
    /// The judgement with its samples.
    pub judgement: Judgement,
    /// One line per metric, then the total.
    pub evidence: Vec<Evidence>,
    /// The judgement could not tell (held, never passed).
    pub inconclusive: bool,
    /// One line for the log.
    pub message: String,
}

impl StatisticalJudge {
    /// The judge of `slo`'s SLIs under `settings`; a metric the SLO does not define is an
    /// error that ends the step before anything changes.
    pub fn new(slo: &Slo, settings: Statistical) -> Result<StatisticalJudge, String> {
        let names: Vec<String> = if settings.metrics.is_empty() {
            let mut seen = Vec::new();
            for o in &slo.objectives {
                if slo.slis.contains_key(&o.sli) && !seen.contains(&o.sli) {
                    seen.push(o.sli.clone());
                }
            }
            seen
        } else {
            settings.metrics.keys().cloned().collect()
        };
        let mut metrics = Vec::new();
        for name in names {
            let Some(template) = slo.slis.get(&name) else {
                let known: Vec<&str> = slo.slis.keys().map(String::as_str).collect();
                return Err(format!(
                    "statistical.metrics.{name}: the SLO defines no SLI `{name}` (it has {}); judge one of those",
                    known.join(", ")
                ));
            };
            let options = settings.metrics.get(&name).cloned().unwrap_or_default();
            metrics.push((name, template.clone(), options));
        }
        let counts = match &settings.errors {
            Some(e) => {
                let sli = |name: &str| {
                    slo.slis.get(name).cloned().ok_or_else(|| {
                        format!("statistical.errors: the SLO defines no SLI `{name}`; add one that counts requests (or errors) of ${{version}} over ${{window}}, such as sum(increase(http_requests_total{{version=\"${{version}}\"}}[${{window}}]))")
                    })
                };
                Some([sli(&e.requests)?, sli(&e.errors)?])
            }
            None => None,
        };
        if metrics.is_empty() && counts.is_none() {
            return Err("the statistical judge has nothing to compare: the SLO's objectives use no PromQL SLI and `statistical.errors` is not set".into());
        }
        Ok(StatisticalJudge {
            baseline_version: settings.baseline_version().to_owned(),
            counts,
            settings,
            metrics,
            serving_since: Mutex::new(None),
        })
    }

    /// Canary and baseline now take traffic (the first weight of this run; later calls
    /// change nothing). From here on, a judgement takes only samples whose rate windows
    /// lie wholly after this moment: a window that reaches back to when a side had no
    /// traffic (or no series) measures its first seconds, not how it behaves.
    pub fn serving_from_now(&self) {
        let mut since = self.serving_since.lock().unwrap_or_else(|e| e.into_inner());
        since.get_or_insert_with(epoch_now);
    }

    /// The judged range ending `end`: the samples' times (the lookback, shortened to
    /// windows wholly after canary and baseline began to serve; `None`: no window fits
    /// yet), and the span the error counts cover (the same requests, at least a second).
    fn range_ending(&self, end: f64) -> (Option<(f64, f64)>, Duration) {
        let lookback = self.settings.lookback().as_secs_f64();
        let mut start = end - lookback;
        let mut counted = lookback;
        let since = *self.serving_since.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(since) = since {
            start = start.max(since + self.settings.rate_window().as_secs_f64());
            counted = counted.min(end - since);
        }
        let counted = Duration::from_secs_f64(counted.max(1.0).ceil());
        ((start <= end).then_some((start, end)), counted)
    }

    /// The baseline's `version` label.
    pub fn baseline_version(&self) -> &str {
        &self.baseline_version
    }

    /// Compares with `version` instead of a baseline's pods (blue-green, whose new colour
    /// has no traffic of its own to share: it is compared with the stable version).
    pub fn compare_with(&mut self, version: String) {
        self.baseline_version = version;
    }

    /// Judges the canary (`vars["version"]`) against the baseline now. `warming_up`: the
    /// traffic is still moving, and a judgement that fails only for want of data (a side
    /// whose pods have not served yet) is inconclusive rather than a failure.
    pub async fn judge(
        &self,
        slo: &Slo,
        client: &Client,
        vars: &BTreeMap<String, String>,
        warming_up: bool,
    ) -> Result<Judged, JudgeError> {
        let end = epoch_now();
        let (range, counted) = self.range_ending(end);
        let (start, _) = range.unwrap_or((end, end));
        let mut base_vars = vars.clone();
        base_vars.insert("version".into(), self.baseline_version().to_owned());
        let sides = [vars, &base_vars];
        let mut sampled = Vec::new();
        for (name, template, options) in &self.metrics {
            let queries = sides.map(|v| fill(slo, template, v, self.settings.rate_window()));
            let mut samples: [Vec<Option<f64>>; 2] = Default::default();
            if let Some(range) = range {
                for (i, q) in queries.iter().enumerate() {
                    samples[i] = self.range(client, name, q, range).await?;
                }
            }
            sampled.push(Sampled {
                name: name.clone(),
                options: options.clone(),
                samples,
                queries: queries.map(Some),
            });
        }
        let counts = self.error_counts(slo, client, sides, counted).await?;
        // No window fits yet only right after the first weight: as good as warming up.
        let waiting = warming_up || range.is_none();
        let mut judgement =
            decide(&self.settings, &sampled, counts, waiting).map_err(JudgeError::Settings)?;
        let inconclusive = judgement.outcome == "inconclusive";
        judgement.versions = [
            vars.get("version").cloned().unwrap_or_default(),
            self.baseline_version().to_owned(),
        ];
        judgement.range_s = [start, end];
        judgement.step_s = self.settings.step().as_secs_f64();
        Ok(Judged {
            message: message(&judgement),
            evidence: evidence(&judgement),
            judgement,
            inconclusive,
        })
    }

    /// One side's samples of a metric over `(start, end)`; every series' points, in order.
    async fn range(
        &self,
        client: &Client,
        metric: &str,
        query: &str,
        (start, end): (f64, f64),
    ) -> Result<Vec<Option<f64>>, JudgeError> {
        let series = client
            .query_range(query, start, end, self.settings.step())
            .await
            .map_err(|source| JudgeError::Query {
                metric: metric.to_owned(),
                query: query.to_owned(),
                source,
            })?;
        Ok(series
            .into_iter()
            .flat_map(|s| s.points.into_iter().map(|(_, v)| v))
            .collect())
    }

    /// Errors among requests of each side over the last `window` (the judged span), to be
    /// compared as proportions.
    async fn error_counts(
        &self,
        slo: &Slo,
        client: &Client,
        sides: [&BTreeMap<String, String>; 2],
        window: Duration,
    ) -> Result<Option<Counted>, JudgeError> {
        let (Some(_), Some([requests, errors])) = (&self.settings.errors, &self.counts) else {
            return Ok(None);
        };
        let mut counts = [Counts {
            errors: 0,
            total: 0,
        }; 2];
        for (i, vars) in sides.iter().enumerate() {
            let total = self.count(slo, client, requests, vars, window).await?;
            let failed = self.count(slo, client, errors, vars, window).await?;
            counts[i] = Counts {
                errors: failed.min(total),
                total,
            };
        }
        Ok(Some(Counted {
            counts,
            queries: sides.map(|vars| Some(fill(slo, errors, vars, window))),
        }))
    }

    /// A count query's value now, rounded; no data is 0.
    async fn count(
        &self,
        slo: &Slo,
        client: &Client,
        template: &str,
        vars: &BTreeMap<String, String>,
        window: Duration,
    ) -> Result<u64, JudgeError> {
        let query = fill(slo, template, vars, window);
        let v = client
            .value(&query, None)
            .await
            .map_err(|source| JudgeError::Query {
                metric: ERROR_COUNTS.into(),
                query: query.clone(),
                source,
            })?;
        // Counts from `increase()` are extrapolated, so fractional; a bound keeps a wild
        // answer from overflowing.
        Ok(v.filter(|x| x.is_finite() && *x > 0.0)
            .map_or(0, |x| x.round().min(1e15) as u64))
    }
}

/// Now, in seconds since the epoch.
fn epoch_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// One evidence line per metric (with its comparison), then the score.
fn evidence(j: &Judgement) -> Vec<Evidence> {
    let mut out: Vec<Evidence> = j
        .metrics
        .iter()
        .map(|m| Evidence {
            query: m.query.clone(),
            comparison: Some(Box::new(m.clone())),
            ..Evidence::new(m.metric.clone(), m.verdict, m.value_line())
                .expected(m.threshold.clone())
                .detail(format!("{}; {}", m.test_line(), m.reason))
        })
        .collect();
    let groups: Vec<String> = j
        .groups
        .iter()
        .map(|g| format!("{} {}", g.name, crate::judge::show(g.score)))
        .collect();
    out.push(
        Evidence::new(
            "statistical judge",
            j.verdict,
            format!("{}: score {}", j.outcome, crate::judge::show(j.score)),
        )
        .expected(format!(
            "score >= {} passes, >= {} is marginal",
            crate::judge::show(j.pass),
            crate::judge::show(j.marginal)
        ))
        .detail(match &j.reason {
            Some(r) => format!("groups: {}; {r}", groups.join(", ")),
            None => format!("groups: {}", groups.join(", ")),
        }),
    );
    out
}

/// The metric options in force for an SLI (the defaults when the file names none).
#[cfg(test)]
fn config_of(s: &Statistical, name: &str) -> crate::judge::MetricConfig {
    s.metrics.get(name).cloned().unwrap_or_default().config()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_sli_the_file_does_not_list_is_judged_for_increases() {
        let s = Statistical::default();
        assert_eq!(
            config_of(&s, "latency").direction,
            crate::judge::Direction::Increase
        );
    }
}
