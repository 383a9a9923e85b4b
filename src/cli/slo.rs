//! `slo eval`, `slo budget` and `slo rules`: SLO quality gates and error budgets.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::args::{SloBudgetArgs, SloEvalArgs};
use super::{Exit, bad_input, infra};
use crate::events::{Verdict, exit};
use crate::metrics::QueryError;
use crate::slo::live::{BudgetError, MeasureError};
use crate::slo::queries::{Fills, Part};
use crate::slo::{Evaluation, HistoryEntry, Slo, evaluate};

/// Where `slo eval` gets its SLI values.
enum SliSource {
    File(PathBuf),
    Prometheus {
        url: String,
        at: Option<String>,
        window: String,
        sets: BTreeMap<String, String>,
        timeout: Duration,
    },
}

/// A Prometheus client that waits `timeout` for each answer and does not retry: a
/// command line that asked for a deadline gets it.
fn client(url: &str, timeout: Duration) -> Result<crate::metrics::Client, Exit> {
    let settings = serde_json::json!({
        "url": url,
        "timeout": crate::units::Span(timeout),
        "retries": 0,
    });
    let settings = serde_json::from_value(settings).map_err(|e| {
        bad_input(format!(
            "--prometheus {}: {e}",
            crate::metrics::redact_url(url)
        ))
    })?;
    crate::metrics::Client::from_settings(&settings).map_err(|e| bad_input(e.to_string()))
}

/// A failed SLI query, naming the SLI and the query: a query Prometheus calls bad is bad
/// input (exit 2); a Prometheus that is unreachable, silent or answers 4xx/5xx otherwise is
/// an infrastructure failure (exit 4).
fn measure_error(e: MeasureError, timeout: Duration) -> Exit {
    if e.is_bad_query() {
        return bad_input(format!("{e}; fix the query in the SLO file"));
    }
    let hint = match &e.source {
        QueryError::Config(_) => return bad_input(e.to_string()),
        QueryError::Unreachable { .. } => format!(
            "; check that Prometheus is up and reachable from here, or wait longer with --timeout (now {})",
            crate::units::format_duration(timeout)
        ),
        QueryError::Api { .. } | QueryError::BadResponse { .. } => {
            "; check the --prometheus URL and Prometheus's own log".to_owned()
        }
        // These say what to check themselves.
        QueryError::Refused { .. } | QueryError::Tls { .. } => String::new(),
    };
    infra(format!("{e}{hint}"))
}

/// `slo eval`: the SLO file scored against SLI values (Keptn's semantics), as a table or
/// JSON; `--fail-on` turns a bad enough result into exit 1.
pub(super) async fn eval(args: SloEvalArgs) -> Result<i32, Exit> {
    let SloEvalArgs {
        slo,
        sli,
        values,
        prometheus,
        at,
        window,
        sets,
        history,
        json,
        fail_on,
        timeout,
    } = args;
    let source = match (values, prometheus) {
        (Some(v), _) => SliSource::File(v),
        (None, Some(url)) => SliSource::Prometheus {
            url,
            at,
            window,
            sets: sets.into_iter().collect(),
            timeout,
        },
        (None, None) => return Err(bad_input("give --values FILE or --prometheus URL")),
    };
    let fills = match &source {
        SliSource::Prometheus { sets, .. } => Some(sets),
        SliSource::File(_) => None,
    };
    let model = load_slo(&slo, sli.as_deref(), fills, Part::Sli)?;
    let sli_values = match source {
        SliSource::Prometheus {
            url,
            at,
            window,
            sets,
            timeout,
        } => measure(&model, &url, at.as_deref(), &window, &sets, timeout).await?,
        SliSource::File(values) => read_values(&model, &values)?,
    };
    let history: Vec<HistoryEntry> = match history.as_deref() {
        Some(path) => serde_json::from_value(read_json(path, "history file")?)
            .map_err(|e| bad_input(format!("{}: expected [{{\"result\": \"pass\", \"sli_values\": {{...}}}}], oldest first: {e}", path.display())))?,
        None => Vec::new(),
    };
    let evaluation = evaluate(&model, &sli_values, &history);
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&evaluation).map_err(infra)?
        );
    } else {
        print_evaluation(&evaluation);
    }
    let failing = match fail_on.as_deref() {
        Some("warning") => evaluation.result != Verdict::Pass,
        Some("fail") => matches!(evaluation.result, Verdict::Fail | Verdict::Error),
        _ => false,
    };
    Ok(if failing { exit::FAILED } else { exit::OK })
}

/// Loads an SLO file and parses every query in it. `sets` fills the variables of the
/// `used` part's queries (with `${window}`); any other `${name}` there is refused, since
/// the query would match nothing.
/// Without `sets` no query is sent, so only the syntax is checked.
fn load_slo(
    slo: &Path,
    sli: Option<&Path>,
    sets: Option<&BTreeMap<String, String>>,
    used: Part,
) -> Result<Slo, Exit> {
    let model = Slo::load(slo, sli).map_err(|e| bad_input(e.to_string()))?;
    let names: std::collections::BTreeSet<String> =
        sets.iter().flat_map(|s| s.keys().cloned()).collect();
    let fills = match sets {
        Some(_) => Fills::Only {
            names: &names,
            hint: "pass --set NAME=VALUE",
        },
        None => Fills::Any,
    };
    crate::slo::queries::check_file(slo, sli, fills, used).map_err(|e| bad_input(e.to_string()))?;
    Ok(model)
}

/// A JSON file `slo eval` reads; `what` names it in errors.
fn read_json(path: &Path, what: &str) -> Result<serde_json::Value, Exit> {
    let text = crate::input::read_text(path)
        .map_err(|e| bad_input(format!("{}: cannot read the {what}: {e}", path.display())))?;
    serde_json::from_str(&text).map_err(|e| {
        bad_input(format!(
            "{}:{}:{}: the {what} is not valid JSON: {e}",
            path.display(),
            e.line(),
            e.column()
        ))
    })
}

/// `--prometheus`: every SLI measured over `--window`, at `--at` or now.
async fn measure(
    model: &Slo,
    url: &str,
    at: Option<&str>,
    window: &str,
    sets: &BTreeMap<String, String>,
    timeout: Duration,
) -> Result<BTreeMap<String, Option<f64>>, Exit> {
    let at = at
        .map(crate::slo::live::parse_time)
        .transpose()
        .map_err(bad_input)?;
    let window =
        crate::units::parse_duration(window).map_err(|e| bad_input(format!("--window: {e}")))?;
    let client = client(url, timeout)?;
    crate::slo::live::measure(
        model,
        crate::slo::live::Sources::only(&client),
        sets,
        window,
        at,
    )
    .await
    .map_err(|e| measure_error(e, timeout))
}

/// `--values FILE`: a number (or null, no data) for every SLI the SLO file names.
fn read_values(model: &Slo, values: &Path) -> Result<BTreeMap<String, Option<f64>>, Exit> {
    let raw = read_json(values, "values file")?;
    let object = raw.as_object().ok_or_else(|| {
        bad_input(format!(
            "{}: expected an object such as {{\"error_ratio\": 0.01}}",
            values.display()
        ))
    })?;
    let mut sli_values = BTreeMap::new();
    for (k, v) in object {
        let value = match v {
            serde_json::Value::Null => None,
            serde_json::Value::Number(n) => n.as_f64(),
            other => {
                return Err(bad_input(format!(
                    "{}: value of `{k}` must be a number or null, found {other}",
                    values.display()
                )));
            }
        };
        sli_values.insert(k.clone(), value);
    }
    for o in &model.objectives {
        if !sli_values.contains_key(&o.sli) {
            let known: Vec<&str> = sli_values.keys().map(String::as_str).collect();
            let hint = crate::yaml::closest(&o.sli, &known)
                .map(|k| format!(" (the values file has `{k}`)"))
                .unwrap_or_default();
            return Err(bad_input(format!(
                "{}: no value for SLI `{}`{hint}; give it a number, or null for no data",
                values.display(),
                o.sli
            )));
        }
    }
    Ok(sli_values)
}

/// The evaluation as a table, one objective a line, then the result.
fn print_evaluation(evaluation: &Evaluation) {
    println!(
        "{:<28} {:>12} {:>8} {:>7}  PASS CRITERIA",
        "OBJECTIVE", "VALUE", "STATUS", "SCORE"
    );
    for o in &evaluation.objectives {
        let value = crate::slo::score::shown(o.value);
        let criteria: Vec<String> = o
            .pass_targets
            .iter()
            .map(|t| format!("{}{}", t.criteria, if t.violated { " ✗" } else { "" }))
            .collect();
        println!(
            "{:<28} {:>12} {:>8} {:>7}  {}{}",
            o.display_name,
            value,
            format!("{:?}", o.status).to_lowercase(),
            format!("{}/{}", o.score, o.weight),
            criteria.join(", "),
            if o.key_sli { "  (key)" } else { "" }
        );
    }
    println!(
        "result: {} (score {:.2}): {}",
        evaluation.result, evaluation.score, evaluation.message
    );
}

/// `slo budget`: the error budget and burn rates of an SLO's service level, from Prometheus.
pub(super) async fn budget(args: SloBudgetArgs) -> Result<i32, Exit> {
    let SloBudgetArgs {
        slo,
        prometheus: url,
        at,
        sets,
        json,
        timeout,
    } = args;
    let sets: BTreeMap<String, String> = sets.into_iter().collect();
    let model = load_slo(&slo, None, Some(&sets), Part::ServiceLevel)?;
    let at = at
        .as_deref()
        .map(crate::slo::live::parse_time)
        .transpose()
        .map_err(bad_input)?;
    let client = client(&url, timeout)?;
    let budgets = match crate::slo::live::budgets_at(&model, &client, &sets, at).await {
        Ok(b) => b,
        Err(BudgetError::Query(e)) => return Err(measure_error(e, timeout)),
        Err(e) => return Err(bad_input(format!("{}: {e}", slo.display()))),
    };
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&budget_json(&budgets)).map_err(infra)?
        );
    } else {
        for budget in &budgets {
            print_budget(budget);
        }
    }
    // No data never passes: a budget nobody can compute is not a healthy one.
    let blind: Vec<String> = budgets
        .iter()
        .filter(|b| b.remaining.is_none())
        .map(|b| b.describe())
        .collect();
    if blind.is_empty() {
        return Ok(exit::OK);
    }
    eprintln!(
        "error: no data for the error budget ({}): Prometheus has no samples for the SLI over the window; no data never passes",
        blind.join("; ")
    );
    Ok(exit::FAILED)
}

/// The objective closest to running out (the one a gate judges) at the top level, and
/// every objective under `objectives`.
fn budget_json(budgets: &[crate::slo::budget::Budget]) -> serde_json::Value {
    let tightest = crate::slo::budget::tightest(budgets);
    let mut doc = serde_json::to_value(tightest).unwrap_or_default();
    if let Some(map) = doc.as_object_mut() {
        map.insert(
            "objectives".into(),
            serde_json::to_value(budgets).unwrap_or_default(),
        );
    }
    doc
}

/// The budget, then one line per burn-rate window pair.
fn print_budget(budget: &crate::slo::budget::Budget) {
    println!("{}", budget.describe());
    println!(
        "{:<12} {:<8} {:>10} {:>10}  {:>7}  ALERT",
        "WINDOWS", "SEVERITY", "LONG", "SHORT", "FACTOR"
    );
    let rate = |r: Option<f64>| {
        r.map(|v| format!("{v:.2}x"))
            .unwrap_or_else(|| "no data".into())
    };
    for b in &budget.burn_rates {
        println!(
            "{:<12} {:<8} {:>10} {:>10}  {:>6}x  {}",
            format!(
                "{}/{}",
                crate::units::format_duration(b.pair.long),
                crate::units::format_duration(b.pair.short)
            ),
            format!("{:?}", b.pair.severity).to_lowercase(),
            rate(b.long_rate),
            rate(b.short_rate),
            b.pair.factor,
            if b.firing { "FIRING" } else { "-" }
        );
    }
}

/// `slo rules`: Prometheus recording and burn-rate alerting rules, as YAML.
pub(super) fn rules(slo: &Path, sets: Vec<(String, String)>) -> Result<i32, Exit> {
    let sets: BTreeMap<String, String> = sets.into_iter().collect();
    let model = load_slo(slo, None, Some(&sets), Part::ServiceLevel)?;
    let rules = crate::slo::live::rules(&model, &sets)
        .map_err(|e| bad_input(format!("{}: {e}", slo.display())))?;
    print!("{}", crate::yaml::to_yaml_string(&rules));
    Ok(exit::OK)
}
