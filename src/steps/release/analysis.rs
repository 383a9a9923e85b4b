//! The analysis under a release: the SLO evaluated at an interval against the new version.
//! One tally of evaluations serves the release from its first traffic step to the end of
//! its bake:
//!
//! - [`Analyst::watch`] while traffic moves: failures and inconclusive results beyond
//!   their limits abort early (Argo Rollouts' `failureLimit` and `inconclusiveLimit`);
//! - [`Analyst::judge`] before a promotion and at the end of a bake: fresh evaluations
//!   until the latest one says `pass` (or `warning`, when `promoteOn` lists it). A
//!   `warning` otherwise holds the release for the operator while the evaluations go on;
//!   a limit passed, or the operator's reject, refuses. A failing measurement never
//!   promotes, however the failures were tolerated on the way.
//! - [`Analyst::bake`] after a promotion: the watch again, for the bake's duration.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::time::Instant;

use super::statistical::StatisticalJudge;
use super::tally::{Rules, Tally};
use super::{fail, infra_failure};
use crate::events::{Evidence, Verdict};
use crate::metrics::Client;
use crate::pipeline::model::Analysis;
use crate::slo::live::MeasureError;
use crate::slo::{Evaluation, Slo, evaluate, live};
use crate::steps::{
    Measurements, Phase, Signal, StepCtx, StepIo, StepResult, StepResume, next_signal,
};
use crate::units::format_duration;

/// Why the analysis refused the release, with the evidence behind it.
pub(super) type Refusal = (String, Vec<Evidence>);

/// The tally a resumed release goes on from: its analyses journaled so far.
fn resumed(resumed: Option<&StepResume>) -> Tally {
    Tally::of(
        resumed
            .map(|r| r.analyses.as_slice())
            .unwrap_or_default()
            .iter()
            .copied(),
    )
}

/// The SLO's verdicts over `window` for the canary's version, at an interval.
pub(super) struct Analyst {
    slo: Slo,
    /// Prometheus, unless every SLI is the stage's own measurement (`load.*`).
    client: Option<Client>,
    measured: Measurements,
    vars: BTreeMap<String, String>,
    window: Duration,
    interval: Duration,
    rules: Rules,
    tally: Mutex<Tally>,
    /// The stable version's `version` label, measured beside the canary for the cockpit.
    pub stable_version: Option<String>,
    /// `judge: statistical`: the canary against a baseline while traffic moves and before
    /// the promotion (the bake, with no baseline left, judges by the SLO's thresholds).
    statistical: Option<StatisticalJudge>,
    /// The latest statistical judgement could not tell: it holds, and never promotes.
    undecided: AtomicBool,
    /// The latest judgement's evidence, for the promotion's.
    latest_evidence: Mutex<Vec<Evidence>>,
}

/// Which part of the release an evaluation serves: it names the evaluation's lines and
/// refusals, and is journaled with each analysis for `glidepath replay`.
pub(super) use crate::events::AnalysisPart as Part;

/// How a line about evaluation `n` of `part` begins.
fn label(part: Part, n: u32) -> String {
    match part {
        Part::Watch => format!("analysis {n}"),
        Part::Judge => format!("analysis {n} before promotion"),
        Part::Bake => format!("analysis {n} in the bake"),
    }
}

/// How a judgement let the release go on.
pub(super) struct Cleared {
    /// Why, for the step's summary and evidence.
    pub why: String,
    /// The verdict that cleared it (`Warning` when a warning promoted or was approved).
    pub verdict: Verdict,
    /// The evidence of the judgement that cleared it (the statistical judge's table).
    pub evidence: Vec<Evidence>,
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
        let statistical = match a.statistical() {
            Some(_) if client.is_none() => {
                return Err(fail(format!(
                    "`judge: statistical` compares Prometheus samples, but the SLO {} defines no PromQL SLI that its objectives use",
                    a.slo.value
                )));
            }
            Some(settings) => Some(StatisticalJudge::new(&slo, settings).map_err(fail)?),
            None => None,
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
            rules: Rules::of(a),
            tally: Mutex::new(resumed(ctx.resumed.as_ref())),
            statistical,
            undecided: AtomicBool::new(false),
            latest_evidence: Mutex::new(Vec::new()),
            stable_version: None,
        })
    }

    /// The stable version is known, and no baseline runs beside the new version: the
    /// statistical judge compares it with the stable version's own series.
    pub fn compare_with_stable(&mut self) {
        if let (Some(judge), Some(v)) = (self.statistical.as_mut(), &self.stable_version) {
            judge.compare_with(v.clone());
        }
    }

    /// Canary and baseline took their weight: the statistical judge's samples start after
    /// this (the first call of a run counts).
    pub fn traffic_moved(&self) {
        if let Some(judge) = &self.statistical {
            judge.serving_from_now();
        }
    }

    /// Runs while traffic moves, until the failures or inconclusive results pass their
    /// limits; returns why (watching never ends otherwise).
    pub async fn watch(&self, io: &StepIo) -> Refusal {
        loop {
            tokio::time::sleep(self.interval).await;
            if let Err(refusal) = self.evaluate_once(io, Part::Watch).await {
                return refusal;
            }
        }
    }

    /// After a promotion: evaluations for `bake`, then a judgement of the latest.
    pub async fn bake(&self, ctx: &mut StepCtx, bake: Duration) -> Result<Cleared, Refusal> {
        let end = Instant::now() + bake;
        ctx.io.log(
            "analysis",
            format!(
                "bake {}: the analysis goes on; a failure rolls back to the previous version",
                format_duration(bake)
            ),
        );
        loop {
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            ctx.io.set_phase(
                Phase::Running,
                format!("baking: {} left", format_duration(round_up(left))),
            );
            tokio::time::sleep(self.interval.min(left)).await;
            self.evaluate_once(&ctx.io, Part::Bake).await?;
        }
        self.judge(ctx, 0, Part::Bake).await
    }

    /// Fresh evaluations (at least `fresh` of them) until the latest clears the release:
    /// `pass`, or `warning` when `promoteOn` lists it, or the operator's approval while a
    /// warning holds it. Failures and inconclusive results within their limits only mean
    /// more evaluations; past them, or on the operator's reject, the release is refused.
    /// A run the operator holds is not cleared until the hold ends.
    pub async fn judge(
        &self,
        ctx: &mut StepCtx,
        fresh: u32,
        part: Part,
    ) -> Result<Cleared, Refusal> {
        let mut made = 0u32;
        let mut holding = false;
        let cleared = loop {
            let latest = self.tally().latest;
            let undecided = self.undecided.load(Ordering::SeqCst);
            if made >= fresh {
                match latest {
                    Some(Verdict::Pass) => {
                        break Cleared {
                            why: "the latest analysis passed".into(),
                            verdict: Verdict::Pass,
                            evidence: self.latest_evidence(),
                        };
                    }
                    Some(Verdict::Warning) if self.rules.warning_promotes && !undecided => {
                        break Cleared {
                            why: "the latest analysis warned, and promoteOn lists warning".into(),
                            verdict: Verdict::Warning,
                            evidence: self.latest_evidence(),
                        };
                    }
                    Some(Verdict::Warning) if !holding => {
                        holding = true;
                        let line = if undecided {
                            "the statistical judge cannot tell yet (inconclusive): held for the operator (approve promotes, reject rolls back); the analysis goes on"
                        } else {
                            "the latest analysis warned: held for the operator (approve promotes, reject rolls back); the analysis goes on"
                        };
                        ctx.io.log("analysis", line);
                        ctx.io.set_phase(Phase::WaitingForApproval, line);
                    }
                    _ => {}
                }
            }
            if holding && latest != Some(Verdict::Warning) {
                holding = false;
                let said = latest.map_or("nothing", Verdict::word);
                let line = format!("judging: the latest analysis said {said}");
                ctx.io.set_phase(Phase::Running, line);
            }
            tokio::select! {
                () = tokio::time::sleep(self.interval) => {
                    self.evaluate_once(&ctx.io, part).await?;
                    made += 1;
                }
                signal = next_signal(&mut ctx.signals), if holding => match signal {
                    Signal::Approve(who) => break Cleared {
                        why: if self.undecided.load(Ordering::SeqCst) {
                            format!("the statistical judge was inconclusive; approved by {who}")
                        } else {
                            format!("the latest analysis warned; approved by {who}")
                        },
                        verdict: Verdict::Warning,
                        evidence: self.latest_evidence(),
                    },
                    Signal::Reject(who) => {
                        let why = format!("the latest analysis warned; rejected by {who}");
                        return Err((why, vec![Evidence::new("analysis", Verdict::Warning, "rejected by the operator")]));
                    }
                    Signal::Continue(_) => {}
                },
            }
        };
        ctx.io.set_phase(Phase::Running, cleared.why.clone());
        // The operator's hold (`p`) stops a promotion too.
        while *ctx.paused.borrow_and_update() {
            if ctx.paused.changed().await.is_err() {
                break;
            }
        }
        Ok(cleared)
    }

    /// The tally so far.
    fn tally(&self) -> Tally {
        // A poisoned lock only means an evaluation panicked; its tally is still whole.
        *self.tally.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The latest judgement's evidence.
    fn latest_evidence(&self) -> Vec<Evidence> {
        self.latest_evidence
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Records one evaluation's verdict and returns the tally after it.
    fn record(&self, verdict: Verdict) -> Tally {
        let mut t = self.tally.lock().unwrap_or_else(|e| e.into_inner());
        t.add(verdict);
        *t
    }

    /// One evaluation, logged and reported; refuses when it takes the failures or the
    /// inconclusive results past their limits.
    async fn evaluate_once(&self, io: &StepIo, part: Part) -> Result<Verdict, Refusal> {
        let n = self.tally().made + 1;
        if let (Some(judge), Some(client), false) =
            (&self.statistical, &self.client, part == Part::Bake)
        {
            return self.judge_statistically(io, part, n, (judge, client)).await;
        }
        self.undecided.store(false, Ordering::SeqCst);
        let verdict = match self.measure().await {
            Ok(values) => evaluate(&self.slo, &values, &[]),
            Err(e) => {
                io.log(
                    "analysis",
                    format!("{}: Prometheus failed: {e}", label(part, n)),
                );
                if let Some(limit) = self.record(Verdict::Error).past_limit(&self.rules) {
                    return Err((format!("{limit}: {e}"), Vec::new()));
                }
                return Ok(Verdict::Error);
            }
        };
        // Journaled before its line is shown: a driver killed in between resumes with this
        // evaluation counted, so no number is shown twice.
        self.report(io, &verdict, part).await;
        io.log(
            "analysis",
            format!(
                "{}: score {:.1}, {} ({})",
                label(part, n),
                verdict.score,
                verdict.result,
                verdict.message
            ),
        );
        let t = self.record(verdict.result);
        *self
            .latest_evidence
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = verdict.evidence();
        if let Some(limit) = t.past_limit(&self.rules) {
            return Err((format!("{limit}: {}", verdict.message), verdict.evidence()));
        }
        Ok(verdict.result)
    }

    /// One statistical judgement, journaled (with its samples) before its line is shown;
    /// refuses when it takes the failures or the failed queries past their limits. An
    /// inconclusive judgement counts as neither: it holds the promotion.
    async fn judge_statistically(
        &self,
        io: &StepIo,
        part: Part,
        n: u32,
        (judge, client): (&StatisticalJudge, &Client),
    ) -> Result<Verdict, Refusal> {
        let warming_up = part == Part::Watch;
        let judged = match judge.judge(&self.slo, client, &self.vars, warming_up).await {
            Ok(j) => j,
            Err(e) => {
                io.log("analysis", format!("{}: {e}", label(part, n)));
                self.undecided.store(false, Ordering::SeqCst);
                if let Some(limit) = self.record(Verdict::Error).past_limit(&self.rules) {
                    return Err((format!("{limit}: {e}"), Vec::new()));
                }
                return Ok(Verdict::Error);
            }
        };
        let verdict = judged.judgement.verdict;
        let (targets, warnings) = self.criteria();
        io.judgement(targets, warnings, judged.judgement, part);
        io.log(
            "analysis",
            format!("{}: {}", label(part, n), judged.message),
        );
        self.undecided.store(judged.inconclusive, Ordering::SeqCst);
        *self
            .latest_evidence
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = judged.evidence.clone();
        if let Some(limit) = self.record(verdict).past_limit(&self.rules) {
            return Err((format!("{limit}: {}", judged.message), judged.evidence));
        }
        Ok(verdict)
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
    async fn report(&self, io: &StepIo, verdict: &Evaluation, part: Part) {
        let values = verdict
            .objectives
            .iter()
            .map(|o| (o.sli.clone(), o.value))
            .collect();
        let (targets, warnings) = self.criteria();
        io.analysis(
            values,
            self.stable_values().await,
            targets,
            warnings,
            verdict.result,
            part,
        );
    }

    /// Each SLI's first pass and first warning criterion, for the charts' lines.
    fn criteria(&self) -> (BTreeMap<String, String>, BTreeMap<String, String>) {
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
        (targets, warnings)
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

/// `d` rounded up to whole seconds, for a countdown.
fn round_up(d: Duration) -> Duration {
    Duration::from_secs(d.as_secs() + u64::from(d.subsec_nanos() > 0))
}
