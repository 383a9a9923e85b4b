//! `evaluate` (an SLO quality gate fed by Prometheus) and `gate: { errorBudget }` (hold a
//! release while too little budget remains or it burns too fast). No data is an `error`.

use std::time::Duration;

use super::{StepCtx, StepResult};
use crate::events::{BudgetFacts, BurnFacts, EvaluationRecord, Evidence, Verdict};
use crate::metrics::Client;
use crate::pipeline::model::{ErrorBudgetGate, EvaluateStep, MonitoringStep};
use crate::slo::budget::{Budget, BurnCheck};
use crate::slo::{Slo, evaluate, live};
use crate::units::{Span, format_duration};

/// How many earlier evaluations are read for relative criteria (Keptn compares at most a few).
pub const HISTORY: usize = 50;

fn infra(summary: String) -> StepResult {
    StepResult {
        infra_error: true,
        ..StepResult::judged(Verdict::Error, summary, Vec::new())
    }
}

/// A failed SLI query, naming the SLI and the query: a query Prometheus calls bad is the
/// pipeline's own mistake (exit 2), anything else Prometheus does is the platform's (exit 4).
fn query_failed(what: String, err: &live::MeasureError) -> StepResult {
    if err.is_bad_query() {
        StepResult {
            bad_input: true,
            ..StepResult::judged(
                Verdict::Error,
                format!("{what}: {err}; fix the query in the SLO file"),
                Vec::new(),
            )
        }
    } else {
        infra(format!("{what}: {err}"))
    }
}

fn load_slo(ctx: &StepCtx, slo: &str, sli: Option<&str>) -> Result<Slo, StepResult> {
    let path = ctx.base_dir.join(slo);
    let sli = sli.map(|s| ctx.base_dir.join(s));
    Slo::load(&path, sli.as_deref())
        .map_err(|e| StepResult::judged(Verdict::Error, e.to_string(), Vec::new()))
}

fn prometheus(ctx: &StepCtx) -> Result<Client, StepResult> {
    let settings = ctx.prometheus.as_ref().ok_or_else(|| {
        StepResult::judged(
            Verdict::Error,
            format!("stage {} has no prometheus to query", ctx.stage),
            Vec::new(),
        )
    })?;
    Client::from_settings(settings).map_err(|e| infra(e.to_string()))
}

/// Runs an SLO evaluation and keeps it as history.
pub async fn run(e: &EvaluateStep, ctx: &mut StepCtx) -> StepResult {
    let slo = match load_slo(ctx, &e.slo.value, e.sli.as_ref().map(|s| s.value.as_str())) {
        Ok(x) => x,
        Err(r) => return r,
    };
    // An SLO of load-test SLIs only needs no Prometheus.
    let client = match slo
        .queries_prometheus()
        .then(|| prometheus(ctx))
        .transpose()
    {
        Ok(c) => c,
        Err(r) => return r,
    };
    let window = e
        .window
        .map(|w| w.get())
        .unwrap_or(Duration::from_secs(300));
    let history = match &ctx.journal {
        Some(path) => crate::store::Store::open(path)
            .and_then(|s| s.evaluations(&ctx.service, &ctx.stage, HISTORY))
            .unwrap_or_else(|err| {
                ctx.io.log(
                    "evaluate",
                    format!("cannot read earlier evaluations ({err}); comparing with none"),
                );
                Vec::new()
            }),
        None => Vec::new(),
    };
    let sources = live::Sources {
        prometheus: client.as_ref(),
        measured: &ctx.measured.snapshot(),
    };
    let values = match live::measure(&slo, sources, &ctx.vars, window, None).await {
        Ok(v) => v,
        Err(err) => return query_failed(format!("measuring {} failed", slo.name), &err),
    };
    let evaluation = evaluate(&slo, &values, &history);
    for o in &evaluation.objectives {
        ctx.io.log(
            "evaluate",
            format!(
                "{} = {} → {}",
                o.display_name,
                crate::slo::score::shown(o.value),
                format!("{:?}", o.status).to_lowercase()
            ),
        );
    }
    let summary = format!(
        "{} over {}: score {:.1}, {} ({})",
        slo.name,
        format_duration(window),
        evaluation.score,
        evaluation.result,
        evaluation.message
    );
    let mut result = StepResult::judged(evaluation.result, summary, evaluation.evidence());
    result.evaluation = Some(EvaluationRecord {
        service: ctx.service.clone(),
        result: evaluation.result,
        score: evaluation.score,
        sli_values: values,
    });
    result
}

/// Holds the release when the budget is too low or burns too fast.
pub async fn budget_gate(g: &ErrorBudgetGate, ctx: &mut StepCtx) -> StepResult {
    let (slo, client) =
        match load_slo(ctx, &g.slo.value, None).and_then(|slo| Ok((slo, prometheus(ctx)?))) {
            Ok(x) => x,
            Err(r) => return r,
        };
    let budget = match live::budget_at(&slo, &client, &ctx.vars, None).await {
        Ok(b) => b,
        Err(live::BudgetError::Query(err)) => {
            return query_failed(format!("error budget of {}", slo.name), &err);
        }
        Err(err) => {
            return StepResult::judged(
                Verdict::Error,
                format!("{}: {err}", g.slo.value),
                Vec::new(),
            );
        }
    };
    let mut evidence = vec![remaining_evidence(g, &budget)];
    evidence.extend(budget.burn_rates.iter().map(|b| burn_evidence(g, b)));
    let verdict = evidence
        .iter()
        .map(|e| e.verdict)
        .max()
        .unwrap_or(Verdict::Error);
    let summary = budget_summary(verdict, &budget, &evidence);
    StepResult::judged(verdict, summary, evidence)
}

fn percent(x: f64) -> String {
    format!("{:.1}%", x * 100.0)
}

/// The remaining budget against the gate's minimum, with the budget's figures.
fn remaining_evidence(g: &ErrorBudgetGate, budget: &Budget) -> Evidence {
    let remaining_verdict = match (budget.remaining, g.min_remaining) {
        (None, _) => Verdict::Error,
        (Some(r), Some(min)) if r < min.fraction() => Verdict::Fail,
        _ => Verdict::Pass,
    };
    let mut e = Evidence::new(
        "budget remaining",
        remaining_verdict,
        budget
            .remaining
            .map(percent)
            .unwrap_or_else(|| "no data".into()),
    );
    if let Some(min) = g.min_remaining {
        e = e.expected(format!(">= {min}"));
    }
    e.detail(budget.describe()).budget(BudgetFacts {
        remaining: budget.remaining,
        target: budget.target,
        window: Span(budget.window),
        exhaustion: budget.exhaustion.map(Span),
        min_remaining: g.min_remaining.map(|m| m.fraction()),
    })
}

/// One window pair's burn rate: over the gate's own limit fails; an alert firing warns.
fn burn_evidence(g: &ErrorBudgetGate, b: &BurnCheck) -> Evidence {
    let over_limit = g
        .max_burn_rate
        .is_some_and(|max| b.long_rate.is_some_and(|r| r > max));
    let verdict = if b.long_rate.is_none() {
        Verdict::Error
    } else if over_limit {
        Verdict::Fail
    } else if b.firing {
        Verdict::Warning
    } else {
        Verdict::Pass
    };
    let rate = |r: Option<f64>| {
        r.map(|v| format!("{v:.2}x"))
            .unwrap_or_else(|| "no data".into())
    };
    let mut line = Evidence::new(
        format!("burn rate {}", format_duration(b.pair.long)),
        verdict,
        rate(b.long_rate),
    )
    .detail(format!(
        "{} window {}; alert at {}x on both",
        format_duration(b.pair.short),
        rate(b.short_rate),
        b.pair.factor
    ))
    .burn(BurnFacts {
        long: Span(b.pair.long),
        short: Span(b.pair.short),
        long_rate: b.long_rate,
        short_rate: b.short_rate,
        threshold: b.pair.factor,
        max: g.max_burn_rate,
    });
    if let Some(max) = g.max_burn_rate {
        line = line.expected(format!("<= {max}x"));
    }
    line
}

/// A pair firing is a warning unless the gate set its own limit; failing is for limits.
fn budget_summary(verdict: Verdict, budget: &Budget, evidence: &[Evidence]) -> String {
    match verdict {
        Verdict::Pass => format!(
            "budget {} left, burning within limits",
            budget.remaining.map(percent).unwrap_or_default()
        ),
        Verdict::Warning => "burn-rate alert firing; within the gate's limits".to_owned(),
        Verdict::Fail => {
            let failing: Vec<String> = evidence
                .iter()
                .filter(|e| e.verdict == Verdict::Fail)
                .map(|e| format!("{} {}", e.check, e.value.clone().unwrap_or_default()))
                .collect();
            format!("release held: {}", failing.join(", "))
        }
        Verdict::Error => {
            "no data for the error budget: a gate never passes on missing data".to_owned()
        }
    }
}

/// `monitoring`: the SLO's recording and burn-rate alerting rules, written to `output`, or
/// applied as a PrometheusRule when the target's cluster serves that CRD.
pub async fn monitoring(m: &MonitoringStep, ctx: &mut StepCtx) -> StepResult {
    let model = match Slo::load(&ctx.base_dir.join(&m.slo.value), None) {
        Ok(s) => s,
        Err(e) => return StepResult::failed(e.to_string()),
    };
    let rules = match live::rules(&model, &ctx.vars) {
        Ok(r) => r,
        Err(e) => return StepResult::failed(format!("{}: {e}", m.slo.value)),
    };
    let count = rules["groups"][0]["rules"]
        .as_array()
        .map(Vec::len)
        .unwrap_or(0);
    if let Some(output) = &m.output {
        let path = ctx.base_dir.join(output);
        return match std::fs::write(&path, crate::yaml::to_yaml_string(&rules)) {
            Ok(()) => {
                ctx.io.log(
                    "monitoring",
                    format!("wrote {count} rules to {}", path.display()),
                );
                StepResult::passed(format!(
                    "{count} Prometheus rules for {} written to {output}",
                    model.name
                ))
            }
            Err(e) => StepResult::failed(format!("cannot write {}: {e}", path.display())),
        };
    }
    let client = match crate::kube::connect(ctx.target.as_ref()).await {
        Ok(c) => c,
        Err(e) => return infra(e.to_string()),
    };
    match crate::kube::serves(&client, "monitoring.coreos.com/v1", "prometheusrules").await {
        Ok(true) => {}
        Ok(false) => {
            return StepResult::failed(
                "the cluster does not serve PrometheusRule (monitoring.coreos.com/v1); install the Prometheus Operator CRDs, or set `output` to write a rules file",
            );
        }
        Err(e) => return infra(e.to_string()),
    }
    let namespace = crate::kube::namespace(ctx.target.as_ref());
    let name = format!("glidepath-slo-{}", model.name);
    let object = serde_json::json!({
        "apiVersion": "monitoring.coreos.com/v1", "kind": "PrometheusRule",
        "metadata": { "name": name, "namespace": namespace, "labels": { "app.kubernetes.io/managed-by": "glidepath" } },
        "spec": rules,
    });
    match crate::kube::apply_object(&client, &object, "prometheusrules", Some(&namespace)).await {
        Ok(()) => {
            ctx.io.log(
                "monitoring",
                format!("applied PrometheusRule {namespace}/{name} ({count} rules)"),
            );
            StepResult::passed(format!(
                "PrometheusRule {namespace}/{name} applied with {count} rules"
            ))
        }
        // A refusal reads with the server's reason and code, as this step has always said it.
        Err(crate::kube::Error::Forbidden { what, answer }) => infra(format!("{what}: {answer}")),
        Err(e) => infra(e.to_string()),
    }
}
