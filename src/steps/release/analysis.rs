//! The analysis under a release: the SLO evaluated at an interval against the new version,
//! as one loop that serves both of its uses: watching while traffic moves, and the
//! evidence a promotion needs.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use super::{fail, infra_failure};
use crate::events::{Evidence, Verdict};
use crate::metrics::Client;
use crate::pipeline::model::Analysis;
use crate::slo::live::MeasureError;
use crate::slo::{Slo, evaluate, live};
use crate::steps::{Measurements, StepCtx, StepIo, StepResult};

/// Why the analysis refused the release, with the evidence behind it.
pub(super) type Refusal = (String, Vec<Evidence>);

/// One analysis run: the SLO's verdict over `window` for the canary's version.
pub(super) struct Analyst {
    slo: Slo,
    /// Prometheus, unless every SLI is the stage's own measurement (`load.*`).
    client: Option<Client>,
    measured: Measurements,
    vars: BTreeMap<String, String>,
    window: Duration,
    interval: Duration,
    failure_limit: u32,
    inconclusive_limit: u32,
    /// Evaluations that passed (or warned) so far.
    passed: AtomicU32,
    /// The stable version's `version` label, measured beside the canary for the cockpit.
    pub stable_version: Option<String>,
}

/// What a series of evaluations is for: it decides when the series ends and how its lines
/// and refusals read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Purpose {
    /// While traffic moves: runs until failures or inconclusive results pass their limits.
    Watch,
    /// No promotion without evidence: runs until one evaluation passes (or one passed
    /// already); a failure, or more inconclusive results than the limit, refuses.
    BeforePromotion,
}

impl Purpose {
    /// How a line about evaluation `n` begins.
    fn label(self, n: u32) -> String {
        match self {
            Purpose::Watch => format!("analysis {n}"),
            Purpose::BeforePromotion => "analysis before promotion".into(),
        }
    }

    /// The line logged when evaluation `n` could not measure (none before a promotion:
    /// its refusal says it).
    fn unmeasured_line(self, n: u32, e: &MeasureError) -> Option<String> {
        match self {
            Purpose::Watch => Some(format!("analysis {n}: Prometheus failed: {e}")),
            Purpose::BeforePromotion => None,
        }
    }

    /// The refusal after `count` measurements failed, over the `limit`.
    fn unmeasured(self, count: u32, limit: u32, e: &MeasureError) -> String {
        match self {
            Purpose::Watch => format!("analysis inconclusive {count} times (limit {limit}): {e}"),
            Purpose::BeforePromotion => {
                format!("the analysis before promotion could not run: {e}")
            }
        }
    }

    /// The refusal after `count` failed evaluations, over the `limit`.
    fn failed(self, count: u32, limit: u32, message: &str) -> String {
        match self {
            Purpose::Watch => format!("analysis failed {count} times (limit {limit}): {message}"),
            Purpose::BeforePromotion => format!("analysis before promotion: {message}"),
        }
    }

    /// The refusal after `count` inconclusive evaluations, over the `limit`.
    fn inconclusive(self, count: u32, limit: u32, message: &str) -> String {
        match self {
            Purpose::Watch => {
                format!("analysis inconclusive {count} times (limit {limit}): {message}")
            }
            Purpose::BeforePromotion => {
                format!("analysis before promotion inconclusive: {message}")
            }
        }
    }
}

impl Analyst {
    /// The analysis a release step asks for; a bad SLO file or a missing Prometheus ends
    /// the step before anything changes.
    pub fn new(a: &Analysis, ctx: &StepCtx) -> Result<Analyst, StepResult> {
        let slo =
            Slo::load(&ctx.base_dir.join(&a.slo.value), None).map_err(|e| fail(e.to_string()))?;
        let client = match (&ctx.prometheus, slo.queries_prometheus()) {
            (_, false) => None,
            (Some(settings), true) => {
                Some(Client::from_settings(settings).map_err(|e| infra_failure(e.to_string()))?)
            }
            (None, true) => {
                return Err(fail(format!(
                    "stage {} has no prometheus for the analysis",
                    ctx.stage
                )));
            }
        };
        let interval = a
            .interval
            .map(|i| i.get())
            .unwrap_or(Duration::from_secs(30));
        Ok(Analyst {
            slo,
            client,
            measured: ctx.measured.clone(),
            vars: ctx.vars.clone(),
            window: interval.max(Duration::from_secs(30)),
            interval,
            failure_limit: a.failure_limit.unwrap_or(0),
            inconclusive_limit: a.inconclusive_limit.unwrap_or(0),
            passed: AtomicU32::new(0),
            stable_version: None,
        })
    }

    /// Runs until the failures or inconclusive results pass their limits; returns why
    /// (watching never ends otherwise).
    pub async fn watch(&self, io: &StepIo) -> Result<(), Refusal> {
        self.evaluations(io, Purpose::Watch).await
    }

    /// When no evaluation has passed yet, evaluations at the interval until one passes (no
    /// promotion without evidence): a failure, or more inconclusive results than the limit,
    /// refuses the promotion.
    pub async fn at_least_once(&self, io: &StepIo) -> Result<(), Refusal> {
        self.evaluations(io, Purpose::BeforePromotion).await
    }

    /// Before a blue-green switch: three evaluations at the interval; too many failures or
    /// inconclusive results refuse the switch.
    pub async fn pre_promotion(&self, io: &StepIo) -> Result<(), Refusal> {
        let watch = self.watch(io);
        match tokio::time::timeout(self.interval * 3 + self.interval / 2, watch).await {
            Ok(refused) => refused,
            Err(_) => Ok(()),
        }
    }

    /// Evaluations at the interval, each logged and reported, until `purpose` is served
    /// (`Ok`) or refused.
    async fn evaluations(&self, io: &StepIo, purpose: Purpose) -> Result<(), Refusal> {
        // Before a promotion one failure is enough to refuse.
        let failure_limit = match purpose {
            Purpose::Watch => self.failure_limit,
            Purpose::BeforePromotion => 0,
        };
        let (mut failed, mut inconclusive, mut n) = (0u32, 0u32, 0u32);
        loop {
            if purpose == Purpose::BeforePromotion && self.passed.load(Ordering::SeqCst) > 0 {
                return Ok(());
            }
            tokio::time::sleep(self.interval).await;
            n += 1;
            let verdict = match self.measure().await {
                Ok(values) => evaluate(&self.slo, &values, &[]),
                Err(e) => {
                    inconclusive += 1;
                    if let Some(line) = purpose.unmeasured_line(n, &e) {
                        io.log("analysis", line);
                    }
                    if inconclusive > self.inconclusive_limit {
                        let why = purpose.unmeasured(inconclusive, self.inconclusive_limit, &e);
                        return Err((why, Vec::new()));
                    }
                    continue;
                }
            };
            io.log(
                "analysis",
                format!(
                    "{}: score {:.1}, {} ({})",
                    purpose.label(n),
                    verdict.score,
                    verdict.result,
                    verdict.message
                ),
            );
            self.report(io, &verdict).await;
            match verdict.result {
                Verdict::Pass | Verdict::Warning => {
                    self.passed.fetch_add(1, Ordering::SeqCst);
                }
                Verdict::Fail => failed += 1,
                Verdict::Error => inconclusive += 1,
            }
            if failed > failure_limit {
                let why = purpose.failed(failed, failure_limit, &verdict.message);
                return Err((why, verdict.evidence()));
            }
            if inconclusive > self.inconclusive_limit {
                let why =
                    purpose.inconclusive(inconclusive, self.inconclusive_limit, &verdict.message);
                return Err((why, verdict.evidence()));
            }
        }
    }

    /// The SLIs now, from Prometheus and the stage's own measurements.
    async fn measure(&self) -> Result<BTreeMap<String, Option<f64>>, MeasureError> {
        // Load figures count while the load test beside the release keeps them current;
        // a test that ended leaves the analysis without data, which never passes.
        let fresh = (self.interval * 2).max(Duration::from_secs(3));
        let sources = live::Sources {
            prometheus: self.client.as_ref(),
            measured: &self.measured.fresh(fresh),
        };
        live::measure(&self.slo, sources, &self.vars, self.window, None).await
    }

    /// Tells the cockpit what this analysis measured, against which targets.
    async fn report(&self, io: &StepIo, verdict: &crate::slo::Evaluation) {
        let values = verdict
            .objectives
            .iter()
            .map(|o| (o.sli.clone(), o.value))
            .collect();
        let first = |sets: &[Vec<crate::slo::criteria::Criterion>]| {
            sets.iter().flatten().next().map(|c| c.to_string())
        };
        let targets = self
            .slo
            .objectives
            .iter()
            .filter_map(|o| first(&o.pass).map(|c| (o.sli.clone(), c)))
            .collect();
        let warnings = self
            .slo
            .objectives
            .iter()
            .filter_map(|o| first(&o.warning).map(|c| (o.sli.clone(), c)))
            .collect();
        io.analysis(
            values,
            self.stable_values().await,
            targets,
            warnings,
            verdict.result,
        );
    }

    /// The same SLIs for the stable version, when there is one to compare with: a chart's
    /// second series. Failures here only leave the series empty.
    async fn stable_values(&self) -> BTreeMap<String, Option<f64>> {
        match (&self.stable_version, &self.client) {
            (Some(v), Some(client)) => {
                let mut vars = self.vars.clone();
                vars.insert("version".into(), v.clone());
                live::measure(
                    &self.slo,
                    live::Sources::only(client),
                    &vars,
                    self.window,
                    None,
                )
                .await
                .unwrap_or_default()
            }
            _ => Default::default(),
        }
    }
}
