//! OpenSLO v1 read as the spec means it: `SLO` documents with inline or referenced `SLI`s,
//! `ratioMetric` (counters counted with increase/rate, gauges averaged) and
//! `thresholdMetric` indicators, every objective, Occurrences, Timeslices and
//! RatioTimeslices budgeting, rolling and calendar-aligned windows.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use promql_parser::parser::{self, Expr};

use super::calendar::{Calendar, Period};
use super::level::{Budgeting, Counting, Indicator, Op};
use super::{Comparison, Format, Objective, ServiceLevel, Slo, TotalScore, criteria};
use crate::yaml::{LoadError, Node, Pos, Value};

/// An error at `pos` of the file.
fn located(path: &Path, pos: Pos, message: impl Into<String>) -> LoadError {
    LoadError {
        file: path.to_owned(),
        pos: Some(pos),
        message: message.into(),
    }
}

fn doc_kind(d: &Node) -> &str {
    d.get("kind").and_then(Node::as_str).unwrap_or_default()
}

fn doc_name(d: &Node) -> Option<&str> {
    d.get("metadata")
        .and_then(|m| m.get("name"))
        .and_then(Node::as_str)
}

fn items(node: &Node) -> &[Node] {
    match &node.value {
        Value::Seq(items) => items,
        _ => &[],
    }
}

/// A number field, range-checked.
fn number(
    path: &Path,
    node: &Node,
    what: &str,
    ok: impl Fn(f64) -> bool,
) -> Result<f64, LoadError> {
    node.as_str()
        .and_then(|t| t.trim().parse::<f64>().ok())
        .filter(|v| v.is_finite() && ok(*v))
        .ok_or_else(|| {
            located(
                path,
                node.pos,
                format!("{what} `{}` is out of range", node.as_str().unwrap_or("?")),
            )
        })
}

/// Loads the file's first `kind: SLO` document, with the `SLI` documents it references.
pub(super) fn load(path: &Path, docs: &[Node]) -> Result<Slo, LoadError> {
    let err = |pos: Pos, message: &str| located(path, pos, message);
    let first = docs
        .first()
        .map(|d| d.pos)
        .unwrap_or(Pos { line: 1, col: 1 });
    let slo = docs
        .iter()
        .find(|d| doc_kind(d) == "SLO")
        .ok_or_else(|| err(first, "no OpenSLO `kind: SLO` document in the file"))?;
    let name = doc_name(slo).unwrap_or("slo").to_owned();
    let spec = slo
        .get("spec")
        .ok_or_else(|| err(slo.pos, "the SLO has no spec"))?;
    let method = budgeting_method(path, spec)?;
    let (window, calendar) = time_window(path, spec)?;
    let objectives = spec.get("objectives").map(items).unwrap_or_default();
    if objectives.is_empty() {
        return Err(err(
            spec.pos,
            "the SLO needs at least one objective with a target or targetPercent",
        ));
    }
    let mut out = Slo {
        name: name.clone(),
        format: Format::OpenSlo,
        slis: BTreeMap::new(),
        objectives: Vec::new(),
        total_score: TotalScore {
            pass: 100.0,
            warning: None,
        },
        comparison: Comparison::default(),
        service_levels: Vec::new(),
    };
    for (i, o) in objectives.iter().enumerate() {
        // An objective may carry its own indicator (a composite SLO); else the SLO's.
        let indicator_node = match indicator_of(path, docs, o)? {
            Some(n) => n,
            None => indicator_of(path, docs, spec)?.ok_or_else(|| {
                err(
                    spec.pos,
                    "the SLO needs an `indicator` or an `indicatorRef`",
                )
            })?,
        };
        let key = if objectives.len() == 1 {
            name.clone()
        } else {
            format!("{name}[{i}]")
        };
        let (level, pass) = objective(path, o, indicator_node, method)?;
        let level = ServiceLevel {
            name: o
                .get("displayName")
                .and_then(Node::as_str)
                .unwrap_or(&key)
                .to_owned(),
            window,
            calendar: calendar.clone(),
            ..level
        };
        out.slis.insert(key.clone(), level.sli_query("${window}"));
        let weight = match o.get("compositeWeight") {
            Some(w) => number(path, w, "compositeWeight", |w| w > 0.0)?,
            None => 1.0,
        };
        out.objectives.push(Objective {
            sli: key,
            display_name: o
                .get("displayName")
                .and_then(Node::as_str)
                .map(str::to_owned),
            pass: vec![vec![pass]],
            warning: Vec::new(),
            weight,
            key_sli: true,
        });
        out.service_levels.push(level);
    }
    Ok(out)
}

/// What an objective's budgeting method needs from it, before the objective is read.
#[derive(Clone, Copy)]
enum Method {
    Occurrences,
    Timeslices,
    RatioTimeslices,
}

fn budgeting_method(path: &Path, spec: &Node) -> Result<Method, LoadError> {
    let Some(node) = spec.get("budgetingMethod") else {
        return Ok(Method::Occurrences);
    };
    match node.as_str() {
        Some("Occurrences") => Ok(Method::Occurrences),
        Some("Timeslices") => Ok(Method::Timeslices),
        Some("RatioTimeslices") => Ok(Method::RatioTimeslices),
        other => Err(located(
            path,
            node.pos,
            format!(
                "budgetingMethod `{}` is not supported; use Occurrences, Timeslices or RatioTimeslices",
                other.unwrap_or("?")
            ),
        )),
    }
}

/// `timeWindow`: exactly one rolling or calendar-aligned window.
fn time_window(path: &Path, spec: &Node) -> Result<(Duration, Option<Calendar>), LoadError> {
    let windows = spec.get("timeWindow").map(items).unwrap_or_default();
    let [w] = windows else {
        return Err(located(
            path,
            spec.get("timeWindow").map(|n| n.pos).unwrap_or(spec.pos),
            "the SLO needs exactly one timeWindow, such as [{duration: 28d, isRolling: true}]",
        ));
    };
    let duration = w
        .get("duration")
        .ok_or_else(|| located(path, w.pos, "the timeWindow needs a duration, such as 28d"))?;
    let text = duration.as_str().unwrap_or_default();
    let rolling = w.get("isRolling").and_then(Node::as_str);
    match (w.get("calendar"), rolling) {
        (Some(c), Some("true")) => Err(located(
            path,
            c.pos,
            "a timeWindow is rolling or has a calendar, not both: remove isRolling or calendar",
        )),
        (Some(c), _) => {
            let period = Period::parse(text).map_err(|m| located(path, duration.pos, m))?;
            let field = |k: &str| {
                c.get(k).and_then(Node::as_str).ok_or_else(|| {
                    located(path, c.pos, format!("the calendar needs {k}, such as startTime: 2024-01-01 00:00:00 and timeZone: UTC"))
                })
            };
            let calendar = Calendar::new(field("startTime")?, field("timeZone")?, period)
                .map_err(|m| located(path, c.pos, m))?;
            Ok((period.nominal(), Some(calendar)))
        }
        (None, Some("false")) => Err(located(
            path,
            w.pos,
            "a window that is not rolling needs a calendar with startTime and timeZone",
        )),
        (None, _) => {
            if text.ends_with(['M', 'Q', 'Y']) {
                return Err(located(
                    path,
                    duration.pos,
                    format!(
                        "a rolling window of `{text}` has no fixed length; use days or weeks (30d, 4w), or a calendar window"
                    ),
                ));
            }
            let d = crate::units::parse_duration(text)
                .ok()
                .filter(|d| {
                    *d >= Duration::from_secs(60) && *d <= Duration::from_secs(400 * 86_400)
                })
                .ok_or_else(|| {
                    located(
                        path,
                        duration.pos,
                        format!(
                            "timeWindow duration `{text}` must be from 1m to 400d, such as 28d"
                        ),
                    )
                })?;
            Ok((d, None))
        }
    }
}

/// A node's `indicator`, or the SLI document its `indicatorRef` names.
fn indicator_of<'a>(
    path: &Path,
    docs: &'a [Node],
    node: &'a Node,
) -> Result<Option<&'a Node>, LoadError> {
    if let Some(inline) = node.get("indicator") {
        return Ok(Some(inline));
    }
    let Some(reference) = node.get("indicatorRef") else {
        return Ok(None);
    };
    let name = reference.as_str().unwrap_or_default();
    docs.iter()
        .find(|d| doc_kind(d) == "SLI" && doc_name(d) == Some(name))
        .map(Some)
        .ok_or_else(|| {
            located(
                path,
                reference.pos,
                format!("indicatorRef `{name}` names no SLI document in this file"),
            )
        })
}

/// One objective: its service level (window and name set by the caller) and the criterion
/// `slo eval` judges its SLI by.
fn objective(
    path: &Path,
    o: &Node,
    indicator_node: &Node,
    method: Method,
) -> Result<(ServiceLevel, criteria::Criterion), LoadError> {
    let indicator = threshold_of(path, o, indicator(path, indicator_node)?)?;
    let target = objective_target(path, o)?;
    let slice = || -> Result<Duration, LoadError> {
        let node = o.get("timeSliceWindow").ok_or_else(|| {
            located(
                path,
                o.pos,
                "this budgeting method needs timeSliceWindow on every objective, such as 1m",
            )
        })?;
        slice_window(path, node)
    };
    let threshold = matches!(indicator, Indicator::Threshold { .. });
    let budgeting = match method {
        Method::Occurrences => Budgeting::Occurrences,
        _ if threshold => {
            return Err(located(
                path,
                o.pos,
                "a thresholdMetric is budgeted by Occurrences only (each minute is an occurrence); Timeslices and RatioTimeslices need a ratioMetric",
            ));
        }
        Method::Timeslices => {
            let node = o.get("timeSliceTarget").ok_or_else(|| {
                located(path, o.pos, "Timeslices needs timeSliceTarget on every objective: the good ratio a slice needs, such as 0.95")
            })?;
            let slice_target = number(path, node, "timeSliceTarget (0 to 1]", |t| {
                t > 0.0 && t <= 1.0
            })?;
            Budgeting::Timeslices {
                slice: slice()?,
                slice_target,
            }
        }
        Method::RatioTimeslices => Budgeting::RatioTimeslices { slice: slice()? },
    };
    let criterion = match (&indicator, budgeting) {
        (Indicator::Threshold { op, value, .. }, _) => format!("{}{value}", op.promql()),
        (_, Budgeting::Timeslices { slice_target, .. }) => format!(">={slice_target}"),
        _ => format!(">={target}"),
    };
    let pass = criteria::parse(&criterion).map_err(|m| located(path, o.pos, m))?;
    let level = ServiceLevel {
        name: String::new(),
        indicator,
        target,
        window: Duration::ZERO,
        calendar: None,
        budgeting,
    };
    Ok((level, pass))
}

/// `timeSliceWindow`: a duration, or a number of minutes.
fn slice_window(path: &Path, node: &Node) -> Result<Duration, LoadError> {
    let text = node.as_str().unwrap_or_default().trim();
    let parsed = match text.parse::<f64>() {
        Ok(minutes) => Ok(Duration::from_secs_f64((minutes * 60.0).clamp(0.0, 1e9))),
        Err(_) => crate::units::parse_duration(text),
    };
    parsed
        .ok()
        .filter(|d| *d >= Duration::from_secs(10) && *d <= Duration::from_secs(86_400))
        .filter(|d| d.subsec_nanos() == 0)
        .ok_or_else(|| located(path, node.pos, format!("timeSliceWindow `{text}` must be whole seconds from 10s to 1d, such as 1m or 5 (minutes)")))
}

/// An objective's target as a fraction: `target` below 1, or `targetPercent` below 100.
fn objective_target(path: &Path, o: &Node) -> Result<f64, LoadError> {
    match (o.get("target"), o.get("targetPercent")) {
        (Some(_), Some(p)) => Err(located(
            path,
            p.pos,
            "give target or targetPercent, not both",
        )),
        (Some(t), None) => number(path, t, "target [0, 1)", |t| (0.0..1.0).contains(&t)),
        // Rounded so 99.9 is 0.999, not 0.9990000000000001, in criteria and output.
        (None, Some(p)) => Ok((number(path, p, "targetPercent [0, 100)", |p| {
            (0.0..100.0).contains(&p)
        })? * 1e10)
            .round()
            / 1e12),
        (None, None) => Err(located(
            path,
            o.pos,
            "the objective needs a target (0.999) or a targetPercent (99.9)",
        )),
    }
}

/// The query of `node.metricSource.spec.query`.
fn query_of(node: &Node) -> Option<&Node> {
    node.get("metricSource")?.get("spec")?.get("query")
}

/// A ratioMetric or thresholdMetric indicator (an SLI document or an inline indicator).
fn indicator(path: &Path, node: &Node) -> Result<Indicator, LoadError> {
    let spec = node
        .get("spec")
        .ok_or_else(|| located(path, node.pos, "the indicator has no spec"))?;
    if let Some(t) = spec.get("thresholdMetric") {
        let q = query_of(t)
            .and_then(Node::as_str)
            .ok_or_else(|| located(path, t.pos, "thresholdMetric needs metricSource.spec.query"))?;
        // op and value come from the objective; filled in by `threshold_of`.
        return Ok(Indicator::Threshold {
            query: q.to_owned(),
            op: Op::Lt,
            value: f64::NAN,
        });
    }
    let ratio = spec.get("ratioMetric").ok_or_else(|| {
        located(
            path,
            spec.pos,
            "the indicator needs a ratioMetric or a thresholdMetric",
        )
    })?;
    if let Some(raw) = ratio.get("raw") {
        return Err(located(
            path,
            raw.pos,
            "precomputed `raw` ratios are not supported; give good or bad with total",
        ));
    }
    let counter = ratio.get("counter").and_then(Node::as_str) == Some("true");
    let query = |which: &str| {
        ratio
            .get(which)
            .map(|n| {
                query_of(n).and_then(Node::as_str).ok_or_else(|| {
                    located(
                        path,
                        n.pos,
                        format!("{which} needs metricSource.spec.query"),
                    )
                })
            })
            .transpose()
    };
    let total = query("total")?.ok_or_else(|| {
        located(
            path,
            ratio.pos,
            "ratioMetric needs total.metricSource.spec.query",
        )
    })?;
    let (good, bad) = (query("good")?, query("bad")?);
    if good.is_some() == bad.is_some() {
        return Err(located(
            path,
            ratio.pos,
            "ratioMetric needs exactly one of good or bad",
        ));
    }
    let queries: Vec<&str> = [good, bad, Some(total)].into_iter().flatten().collect();
    let windowed = queries.iter().filter(|q| q.contains("${window}")).count();
    let counting = if windowed == queries.len() {
        Counting::Windowed
    } else if windowed > 0 {
        return Err(located(
            path,
            ratio.pos,
            "either every query of the ratio uses ${window} (and is used as written) or none does",
        ));
    } else if counter {
        Counting::Counter
    } else {
        Counting::Gauge
    };
    let read = |q: Option<&str>, which: &str| -> Result<Option<String>, LoadError> {
        let pos = ratio
            .get(which)
            .and_then(query_of)
            .map_or(ratio.pos, |n| n.pos);
        match (q, counting) {
            (None, _) => Ok(None),
            (Some(q), Counting::Windowed) => Ok(Some(q.to_owned())),
            (Some(q), _) => series_selector(q)
                .map(Some)
                .map_err(|m| located(path, pos, m)),
        }
    };
    Ok(Indicator::Ratio {
        good: read(good, "good")?,
        bad: read(bad, "bad")?,
        total: read(Some(total), "total")?.unwrap_or_default(),
        counting,
    })
}

/// The series selector of a counter or gauge query: the query itself, or what a `sum`
/// aggregates (the ratio sums anyway, so its grouping does not matter).
fn series_selector(query: &str) -> Result<String, String> {
    let refuse = |why: &str| {
        format!(
            "query `{query}` {why}: a counter or gauge query is a series selector such as http_requests_total{{code=~\"5..\"}} (or a sum of one); glidepath applies increase/rate/avg_over_time itself. To write the window yourself, use [${{window}}] in every query of the ratio"
        )
    };
    let mut expr = parser::parse(query).map_err(|e| refuse(&format!("is not PromQL ({e})")))?;
    loop {
        expr = match expr {
            Expr::Paren(p) => *p.expr,
            Expr::Aggregate(a) if a.op.to_string() == "sum" => *a.expr,
            Expr::VectorSelector(v) if v.offset.is_none() && v.at.is_none() => {
                return Ok(v.to_string());
            }
            Expr::VectorSelector(_) => return Err(refuse("has an offset or @")),
            _ => return Err(refuse("is not a selector")),
        };
    }
}

/// Sets a threshold indicator's `op` and `value` from its objective.
fn threshold_of(path: &Path, o: &Node, indicator: Indicator) -> Result<Indicator, LoadError> {
    let Indicator::Threshold { query, .. } = indicator else {
        return Ok(indicator);
    };
    let op_node = o.get("op").ok_or_else(|| {
        located(
            path,
            o.pos,
            "an objective of a thresholdMetric needs op (lt, lte, gt, gte) and value",
        )
    })?;
    let op = match op_node.as_str() {
        Some("lt") => Op::Lt,
        Some("lte") => Op::Lte,
        Some("gt") => Op::Gt,
        Some("gte") => Op::Gte,
        other => {
            return Err(located(
                path,
                op_node.pos,
                format!("op `{}` is not lt, lte, gt or gte", other.unwrap_or("?")),
            ));
        }
    };
    let value_node = o.get("value").ok_or_else(|| {
        located(
            path,
            o.pos,
            "an objective of a thresholdMetric needs a value to compare with",
        )
    })?;
    let value = number(path, value_node, "value", |_| true)?;
    Ok(Indicator::Threshold { query, op, value })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_text(text: &str) -> Result<Slo, String> {
        let docs = crate::yaml::parse_documents(text).unwrap();
        load(Path::new("slo.yaml"), &docs).map_err(|e| e.to_string())
    }

    /// An SLO with a counter ratio; `window`, `method` and `objectives` replace the
    /// defaults (indented as under `spec`).
    fn slo(window: &str, method: &str, objectives: &str) -> String {
        format!(
            "apiVersion: openslo/v1\nkind: SLO\nmetadata: {{ name: s }}\nspec:\n  indicator:\n    metadata: {{ name: i }}\n    spec:\n      ratioMetric:\n        counter: true\n        bad: {{ metricSource: {{ spec: {{ query: 'errors_total' }} }} }}\n        total: {{ metricSource: {{ spec: {{ query: 'requests_total' }} }} }}\n  timeWindow:\n{window}\n  budgetingMethod: {method}\n  objectives:\n{objectives}\n"
        )
    }

    const ROLLING: &str = "    - { duration: 28d, isRolling: true }";
    const ONE: &str = "    - { target: 0.99 }";

    #[test]
    fn a_composite_slo_keeps_each_objectives_own_indicator() {
        let objectives = "    - displayName: fast\n      op: lte\n      value: 0.3\n      target: 0.9\n      indicator:\n        metadata: { name: latency }\n        spec:\n          thresholdMetric: { metricSource: { spec: { query: p95_seconds } } }\n    - { displayName: available, targetPercent: 99.9 }";
        let s = load_text(&slo(ROLLING, "Occurrences", objectives)).unwrap();
        assert_eq!(s.slis.keys().collect::<Vec<_>>(), vec!["s[0]", "s[1]"]);
        assert_eq!(s.slis["s[0]"], "p95_seconds");
        assert!(matches!(
            s.service_levels[0].indicator,
            Indicator::Threshold { op: Op::Lte, value, .. } if value == 0.3
        ));
        assert!(matches!(
            s.service_levels[1].indicator,
            Indicator::Ratio {
                counting: Counting::Counter,
                ..
            }
        ));
        assert_eq!(s.objectives[0].pass[0][0].text, "<=0.3");
        assert_eq!(s.objectives[1].pass[0][0].text, ">=0.999");
    }

    #[test]
    fn what_is_refused_says_where_and_what_to_write() {
        let cases = [
            (
                slo(
                    "    - { duration: 1M, isRolling: true }",
                    "Occurrences",
                    ONE,
                ),
                "slo.yaml:13:19: a rolling window of `1M` has no fixed length",
            ),
            (
                slo(
                    "    - { duration: 1M, isRolling: true, calendar: { startTime: '2024-01-01 00:00:00', timeZone: UTC } }",
                    "Occurrences",
                    ONE,
                ),
                "a timeWindow is rolling or has a calendar, not both",
            ),
            (
                slo(
                    "    - { duration: 1M, isRolling: false }",
                    "Occurrences",
                    ONE,
                ),
                "slo.yaml:13:7: a window that is not rolling needs a calendar",
            ),
            (
                slo(
                    ROLLING,
                    "Occurrences",
                    "    - { target: 0.99, targetPercent: 99 }",
                ),
                "slo.yaml:16:38: give target or targetPercent, not both",
            ),
            (
                slo(ROLLING, "Occurrences", "    - { target: 1.5 }"),
                "slo.yaml:16:17: target [0, 1) `1.5` is out of range",
            ),
            (
                slo(
                    ROLLING,
                    "Timeslices",
                    "    - { target: 0.99, timeSliceWindow: 1m }",
                ),
                "slo.yaml:16:7: Timeslices needs timeSliceTarget",
            ),
            (
                slo(ROLLING, "RatioTimeslices", ONE),
                "this budgeting method needs timeSliceWindow",
            ),
            (
                slo(ROLLING, "Occurrences", "    - []")
                    .replace("  objectives:\n    - []", "  objectives: []"),
                "the SLO needs at least one objective",
            ),
            (
                slo(ROLLING, "Occurrences", ONE).replace(
                    "counter: true",
                    "counter: true\n        raw: { metricSource: { spec: { query: x } } }",
                ),
                "precomputed `raw` ratios are not supported",
            ),
            (
                slo(ROLLING, "Occurrences", ONE)
                    .replace("'errors_total'", "'rate(errors_total[${window}])'"),
                "either every query of the ratio uses ${window}",
            ),
            (
                slo(ROLLING, "Occurrences", ONE)
                    .replace("'errors_total'", "'errors_total offset 1h'"),
                "has an offset or @",
            ),
        ];
        for (text, expected) in cases {
            let err = load_text(&text).unwrap_err();
            assert!(err.contains(expected), "{err}\nexpected: {expected}");
        }
    }

    #[test]
    fn threshold_objectives_need_a_known_op_and_a_value() {
        let text = |objective: &str| {
            format!(
                "apiVersion: openslo/v1\nkind: SLO\nmetadata: {{ name: s }}\nspec:\n  indicator:\n    spec:\n      thresholdMetric: {{ metricSource: {{ spec: {{ query: q }} }} }}\n  timeWindow: [{{ duration: 1d, isRolling: true }}]\n  objectives:\n    - {objective}\n"
            )
        };
        let err = load_text(&text("{ op: below, value: 1, target: 0.9 }")).unwrap_err();
        assert!(
            err.contains("slo.yaml:10:13: op `below` is not lt, lte, gt or gte"),
            "{err}"
        );
        let err = load_text(&text("{ op: lt, target: 0.9 }")).unwrap_err();
        assert!(err.contains("needs a value to compare with"), "{err}");
        let ok = load_text(&text("{ op: gt, value: 5, target: 0.9 }")).unwrap();
        assert_eq!(ok.objectives[0].pass[0][0].text, ">5");
    }
}
