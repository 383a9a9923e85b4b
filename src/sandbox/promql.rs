//! PromQL over the sandbox's [`tsdb`](super::tsdb), parsed by `promql-parser` and evaluated
//! with Prometheus 2.x semantics for the subset SLI queries use: selectors with all four
//! matchers and `offset`, `rate`/`irate`/`increase`/`delta`, `*_over_time`, aggregations
//! (`sum`, `avg`, `min`, `max`, `count` with `by`/`without`), arithmetic, comparison and set
//! operators with `on`/`ignoring`, `histogram_quantile`, `clamp*`, `abs`, `vector`,
//! `scalar`, `time` and subqueries. Anything else is refused with a `bad_data` error that
//! names the construct, never answered wrongly.
//!
//! Semantics follow Prometheus 2.42 (the version tests compare against): range selectors
//! include both ends of `[t-range, t]`, instant selectors look back five minutes, counter
//! resets are corrected and rates extrapolated as `extrapolatedRate` does.

use std::collections::HashMap;

use promql_parser::label::Matchers;
use promql_parser::parser::{self, Expr, LabelModifier, Offset, VectorMatchCardinality};

use super::tsdb::{Db, Labels, NAME, label};

/// How far back an instant selector looks for a sample (Prometheus's default).
pub const LOOKBACK_MS: i64 = 5 * 60_000;
/// The step of a subquery that names none (Prometheus's default evaluation interval).
pub const DEFAULT_SUBQUERY_STEP_MS: i64 = 60_000;
/// Points per series a range query may return (Prometheus's limit).
pub const MAX_POINTS: i64 = 11_000;

/// Why a query failed, with the Prometheus error type it maps to.
#[derive(Debug, Clone, PartialEq)]
pub enum QueryError {
    /// The query (or a parameter) is malformed or outside the supported subset: HTTP 400.
    BadData(String),
    /// Evaluation failed (for example a many-to-many match): HTTP 422.
    Execution(String),
}

impl std::fmt::Display for QueryError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            QueryError::BadData(m) | QueryError::Execution(m) => f.write_str(m),
        }
    }
}

type Result<T> = std::result::Result<T, QueryError>;

/// A function of a range: its points, the window's start and end (ms), its length (s).
type RangeFn = dyn Fn(&[(i64, f64)], i64, i64, f64) -> Option<f64>;

fn unsupported(what: impl std::fmt::Display) -> QueryError {
    QueryError::BadData(format!(
        "{what} is not supported by the glidepath sandbox's PromQL subset"
    ))
}

fn exec(msg: impl Into<String>) -> QueryError {
    QueryError::Execution(msg.into())
}

/// One element of an instant vector.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Its labels (the name included unless an operation dropped it).
    pub labels: Labels,
    /// Its value.
    pub v: f64,
}

/// One series of a range vector.
#[derive(Debug, Clone, PartialEq)]
pub struct RangeSeries {
    /// Its labels.
    pub labels: Labels,
    /// `(timestamp ms, value)`, in time order.
    pub points: Vec<(i64, f64)>,
}

/// What an expression evaluates to.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A number.
    Scalar(f64),
    /// A string literal.
    Str(String),
    /// An instant vector.
    Vector(Vec<Sample>),
    /// A range vector (from a range selector or a subquery).
    Matrix(Vec<RangeSeries>),
}

impl Value {
    /// The type as Prometheus names it in errors and `resultType`.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Scalar(_) => "scalar",
            Value::Str(_) => "string",
            Value::Vector(_) => "vector",
            Value::Matrix(_) => "matrix",
        }
    }
}

/// Parses `query` and checks that every construct in it is supported.
pub fn parse(query: &str) -> Result<Expr> {
    super::query_limits::check(query).map_err(QueryError::BadData)?;
    let expr =
        parser::parse(query).map_err(|e| QueryError::BadData(format!("parse error: {e}")))?;
    check(&expr)?;
    Ok(expr)
}

const FUNCTIONS: &[&str] = &[
    "rate",
    "irate",
    "increase",
    "delta",
    "idelta",
    "avg_over_time",
    "sum_over_time",
    "min_over_time",
    "max_over_time",
    "count_over_time",
    "last_over_time",
    "histogram_quantile",
    "clamp",
    "clamp_min",
    "clamp_max",
    "abs",
    "ceil",
    "floor",
    "sqrt",
    "exp",
    "ln",
    "vector",
    "scalar",
    "time",
];

/// Refuses what the evaluator does not implement, before any evaluation.
fn check(e: &Expr) -> Result<()> {
    match e {
        Expr::Aggregate(a) => {
            let op = a.op.to_string();
            if !["sum", "avg", "min", "max", "count"].contains(&op.as_str()) {
                return Err(unsupported(format!("aggregation {op}")));
            }
            check(&a.expr)
        }
        Expr::Unary(u) => check(&u.expr),
        Expr::Binary(b) => {
            if let Some(m) = &b.modifier
                && matches!(
                    m.card,
                    VectorMatchCardinality::ManyToOne(_) | VectorMatchCardinality::OneToMany(_)
                )
            {
                return Err(unsupported("group_left/group_right"));
            }
            if b.modifier
                .as_ref()
                .is_some_and(|m| m.fill_values.lhs.is_some() || m.fill_values.rhs.is_some())
            {
                return Err(unsupported("fill values"));
            }
            if b.op.to_string() == "atan2" {
                return Err(unsupported("operator atan2"));
            }
            check(&b.lhs)?;
            check(&b.rhs)
        }
        Expr::Paren(p) => check(&p.expr),
        Expr::Subquery(s) => {
            if s.at.is_some() {
                return Err(unsupported("the @ modifier"));
            }
            check(&s.expr)
        }
        Expr::NumberLiteral(_) | Expr::StringLiteral(_) => Ok(()),
        Expr::VectorSelector(vs) => check_selector(vs),
        Expr::MatrixSelector(ms) => check_selector(&ms.vs),
        Expr::Call(c) => {
            if !FUNCTIONS.contains(&c.func.name) {
                return Err(unsupported(format!("function {}()", c.func.name)));
            }
            c.args.args.iter().try_for_each(|a| check(a))
        }
        Expr::Extension(_) => Err(unsupported("an extension expression")),
    }
}

fn check_selector(vs: &parser::VectorSelector) -> Result<()> {
    if vs.at.is_some() {
        return Err(unsupported("the @ modifier"));
    }
    if !vs.matchers.or_matchers.is_empty() {
        return Err(unsupported("`or` inside a selector"));
    }
    Ok(())
}

/// Evaluates instant and range queries over a store.
pub struct Evaluator<'a> {
    db: &'a Db,
}

fn offset_ms(o: &Option<Offset>) -> i64 {
    match o {
        Some(Offset::Pos(d)) => d.as_millis() as i64,
        Some(Offset::Neg(d)) => -(d.as_millis() as i64),
        None => 0,
    }
}

fn matches(m: &Matchers, l: &Labels) -> bool {
    m.matchers.iter().all(|m| m.is_match(label(l, &m.name)))
}

/// The functions of a range vector, by name.
fn range_function(name: &str) -> Option<&'static RangeFn> {
    Some(match name {
        "rate" => &|p, s, e, r| extrapolated_rate(p, s, e, r, true, true),
        "increase" => &|p, s, e, r| extrapolated_rate(p, s, e, r, true, false),
        "delta" => &|p, s, e, r| extrapolated_rate(p, s, e, r, false, false),
        "irate" => &|p, _, _, _| instant_value(p, true),
        "idelta" => &|p, _, _, _| instant_value(p, false),
        "avg_over_time" => &|p, _, _, _| {
            (!p.is_empty()).then(|| {
                let mut mean = 0.0;
                for (i, (_, v)) in p.iter().enumerate() {
                    mean += v / (i + 1) as f64 - mean / (i + 1) as f64;
                }
                mean
            })
        },
        "sum_over_time" => &|p, _, _, _| (!p.is_empty()).then(|| p.iter().map(|(_, v)| v).sum()),
        "count_over_time" => &|p, _, _, _| (!p.is_empty()).then_some(p.len() as f64),
        "last_over_time" => &|p, _, _, _| p.last().map(|(_, v)| *v),
        "min_over_time" => &|p, _, _, _| {
            p.iter()
                .map(|(_, v)| *v)
                .reduce(|a, b| if b < a || a.is_nan() { b } else { a })
        },
        "max_over_time" => &|p, _, _, _| {
            p.iter()
                .map(|(_, v)| *v)
                .reduce(|a, b| if b > a || a.is_nan() { b } else { a })
        },
        _ => return None,
    })
}

/// `histogram_quantile`: the buckets grouped by their labels but `le`, each group's
/// quantile `q`.
fn histogram_quantile(q: f64, input: Vec<Sample>) -> Result<Value> {
    let mut groups: Vec<(Labels, Vec<(f64, f64)>)> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    for s in input {
        let Some(le) = s
            .labels
            .iter()
            .find(|(k, _)| k == "le")
            .map(|(_, v)| v.clone())
        else {
            continue;
        };
        let Some(upper) = super::tsdb::parse_value(&le) else {
            continue;
        };
        let mut l = s.labels;
        l.retain(|(k, _)| k != "le");
        // The group is keyed with the name; the result drops it.
        let group_key = key(&l);
        let l = drop_name(l);
        let i = *index.entry(group_key).or_insert_with(|| {
            groups.push((l, Vec::new()));
            groups.len() - 1
        });
        groups[i].1.push((upper, s.v));
    }
    let out: Vec<Sample> = groups
        .into_iter()
        .map(|(labels, buckets)| Sample {
            labels,
            v: bucket_quantile(q, buckets),
        })
        .collect();
    check_unique(&out)?;
    Ok(Value::Vector(out))
}

fn drop_name(mut l: Labels) -> Labels {
    l.retain(|(k, _)| k != NAME);
    l
}

/// Labels as a map key.
fn key(l: &Labels) -> String {
    let mut s = String::new();
    for (k, v) in l {
        s.push_str(k);
        s.push('\u{1}');
        s.push_str(v);
        s.push('\u{2}');
    }
    s
}

fn check_unique(samples: &[Sample]) -> Result<()> {
    let mut seen = std::collections::HashSet::new();
    for s in samples {
        if !seen.insert(key(&s.labels)) {
            return Err(exec("vector cannot contain metrics with the same labelset"));
        }
    }
    Ok(())
}

impl<'a> Evaluator<'a> {
    /// An evaluator over `db`.
    pub fn new(db: &'a Db) -> Self {
        Evaluator { db }
    }

    /// Evaluates `expr` at `t` (milliseconds).
    pub fn instant(&self, expr: &Expr, t: i64) -> Result<Value> {
        self.eval(expr, t)
    }

    /// Evaluates `expr` at every step from `start` to `end` inclusive; the result is a
    /// matrix, as `/api/v1/query_range` returns.
    pub fn range(&self, expr: &Expr, start: i64, end: i64, step: i64) -> Result<Vec<RangeSeries>> {
        if step <= 0 {
            return Err(QueryError::BadData(
                "zero or negative query resolution step widths are not accepted. Try a positive integer".into(),
            ));
        }
        if end < start {
            return Err(QueryError::BadData(
                "end timestamp must not be before start time".into(),
            ));
        }
        if (end - start) / step > MAX_POINTS {
            return Err(QueryError::BadData(
                "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)".into(),
            ));
        }
        let mut out: Vec<RangeSeries> = Vec::new();
        let mut index: HashMap<String, usize> = HashMap::new();
        let mut t = start;
        while t <= end {
            let samples = match self.eval(expr, t)? {
                Value::Scalar(v) => vec![Sample {
                    labels: Vec::new(),
                    v,
                }],
                Value::Vector(v) => v,
                Value::Matrix(_) => {
                    return Err(QueryError::BadData(
                        "invalid expression type \"range vector\" for range query, must be Scalar or instant Vector".into(),
                    ));
                }
                Value::Str(_) => {
                    return Err(QueryError::BadData(
                        "invalid expression type \"string\" for range query, must be Scalar or instant Vector".into(),
                    ));
                }
            };
            for s in samples {
                let k = key(&s.labels);
                let i = *index.entry(k).or_insert_with(|| {
                    out.push(RangeSeries {
                        labels: s.labels.clone(),
                        points: Vec::new(),
                    });
                    out.len() - 1
                });
                out[i].points.push((t, s.v));
            }
            t += step;
        }
        out.sort_by(|a, b| a.labels.cmp(&b.labels));
        Ok(out)
    }

    fn eval(&self, e: &Expr, t: i64) -> Result<Value> {
        match e {
            Expr::NumberLiteral(n) => Ok(Value::Scalar(n.val)),
            Expr::StringLiteral(s) => Ok(Value::Str(s.val.clone())),
            Expr::Paren(p) => self.eval(&p.expr, t),
            Expr::Unary(u) => match self.eval(&u.expr, t)? {
                Value::Scalar(v) => Ok(Value::Scalar(-v)),
                Value::Vector(v) => Ok(Value::Vector(
                    v.into_iter()
                        .map(|s| Sample {
                            labels: drop_name(s.labels),
                            v: -s.v,
                        })
                        .collect(),
                )),
                _ => Err(QueryError::BadData(
                    "unary expression only allowed on expressions of type scalar or instant vector"
                        .into(),
                )),
            },
            Expr::VectorSelector(vs) => {
                let at = t - offset_ms(&vs.offset);
                let name = vs.name.as_deref();
                let out = self
                    .db
                    .select(name, |l| matches(&vs.matchers, l))
                    .filter_map(|s| {
                        let (ts, v) = s.at_or_before(at)?;
                        (ts >= at - LOOKBACK_MS).then(|| Sample {
                            labels: s.labels.clone(),
                            v,
                        })
                    })
                    .collect();
                Ok(Value::Vector(out))
            }
            Expr::MatrixSelector(ms) => {
                let end = t - offset_ms(&ms.vs.offset);
                let start = end - ms.range.as_millis() as i64;
                let out = self
                    .db
                    .select(ms.vs.name.as_deref(), |l| matches(&ms.vs.matchers, l))
                    .filter_map(|s| {
                        let (ts, vs) = s.window(start, end);
                        (!ts.is_empty()).then(|| RangeSeries {
                            labels: s.labels.clone(),
                            points: ts.iter().copied().zip(vs.iter().copied()).collect(),
                        })
                    })
                    .collect();
                Ok(Value::Matrix(out))
            }
            Expr::Subquery(sq) => {
                let end = t - offset_ms(&sq.offset);
                let range = sq.range.as_millis() as i64;
                let step = sq
                    .step
                    .map(|s| s.as_millis() as i64)
                    .filter(|&s| s > 0)
                    .unwrap_or(DEFAULT_SUBQUERY_STEP_MS);
                let from = end - range;
                let mut first = step * from.div_euclid(step);
                if first < from {
                    first += step;
                }
                if first > end {
                    return Ok(Value::Matrix(Vec::new()));
                }
                Ok(Value::Matrix(self.range(&sq.expr, first, end, step)?))
            }
            Expr::Call(c) => self.call(c, t),
            Expr::Aggregate(a) => {
                let input = match self.eval(&a.expr, t)? {
                    Value::Vector(v) => v,
                    other => {
                        return Err(QueryError::BadData(format!(
                            "expected type instant vector in aggregation expression, got {}",
                            other.type_name()
                        )));
                    }
                };
                Ok(Value::Vector(aggregate(
                    &a.op.to_string(),
                    a.modifier.as_ref(),
                    input,
                )))
            }
            Expr::Binary(b) => self.binary(b, t),
            Expr::Extension(_) => Err(unsupported("an extension expression")),
        }
    }

    /// The range argument of a function, with the window it was selected over.
    fn range_arg(&self, e: &Expr, t: i64) -> Result<(Vec<RangeSeries>, i64, i64, f64)> {
        let (offset, range) = match e {
            Expr::MatrixSelector(ms) => (offset_ms(&ms.vs.offset), ms.range),
            Expr::Subquery(sq) => (offset_ms(&sq.offset), sq.range),
            _ => {
                return Err(QueryError::BadData(
                    "expected type range vector in call to function".into(),
                ));
            }
        };
        let Value::Matrix(m) = self.eval(e, t)? else {
            return Err(QueryError::BadData(
                "expected type range vector in call to function".into(),
            ));
        };
        let end = t - offset;
        let start = end - range.as_millis() as i64;
        Ok((m, start, end, range.as_secs_f64()))
    }

    fn vector_arg(&self, e: &Expr, t: i64) -> Result<Vec<Sample>> {
        match self.eval(e, t)? {
            Value::Vector(v) => Ok(v),
            _ => Err(QueryError::BadData(
                "expected type instant vector in call to function".into(),
            )),
        }
    }

    fn scalar_arg(&self, e: &Expr, t: i64) -> Result<f64> {
        match self.eval(e, t)? {
            Value::Scalar(v) => Ok(v),
            _ => Err(QueryError::BadData(
                "expected type scalar in call to function".into(),
            )),
        }
    }

    fn call(&self, c: &parser::Call, t: i64) -> Result<Value> {
        let args = &c.args.args;
        let arg = |i: usize| -> Result<&Expr> {
            args.get(i).map(|b| b.as_ref()).ok_or_else(|| {
                QueryError::BadData(format!("{}(): missing argument {}", c.func.name, i + 1))
            })
        };
        let name = c.func.name;
        if let Some(f) = range_function(name) {
            return self.per_series(arg(0)?, t, f);
        }
        match name {
            "abs" => self.math(arg(0)?, t, &f64::abs),
            "ceil" => self.math(arg(0)?, t, &f64::ceil),
            "floor" => self.math(arg(0)?, t, &f64::floor),
            "sqrt" => self.math(arg(0)?, t, &f64::sqrt),
            "exp" => self.math(arg(0)?, t, &f64::exp),
            "ln" => self.math(arg(0)?, t, &f64::ln),
            "clamp_min" => {
                let min = self.scalar_arg(arg(1)?, t)?;
                self.math(arg(0)?, t, &|v| go_max(min, v))
            }
            "clamp_max" => {
                let max = self.scalar_arg(arg(1)?, t)?;
                self.math(arg(0)?, t, &|v| go_min(max, v))
            }
            "clamp" => {
                let (min, max) = (self.scalar_arg(arg(1)?, t)?, self.scalar_arg(arg(2)?, t)?);
                if max < min {
                    return Ok(Value::Vector(Vec::new()));
                }
                self.math(arg(0)?, t, &|v| go_min(max, go_max(min, v)))
            }
            "vector" => Ok(Value::Vector(vec![Sample {
                labels: Vec::new(),
                v: self.scalar_arg(arg(0)?, t)?,
            }])),
            "scalar" => {
                let v = self.vector_arg(arg(0)?, t)?;
                Ok(Value::Scalar(if v.len() == 1 { v[0].v } else { f64::NAN }))
            }
            "time" => Ok(Value::Scalar(t as f64 / 1000.0)),
            "histogram_quantile" => {
                let q = self.scalar_arg(arg(0)?, t)?;
                let input = self.vector_arg(arg(1)?, t)?;
                histogram_quantile(q, input)
            }
            other => Err(unsupported(format!("function {other}()"))),
        }
    }

    /// A `*_over_time` or rate function of a range vector, series by series.
    fn per_series(&self, e: &Expr, t: i64, f: &RangeFn) -> Result<Value> {
        let (m, start, end, secs) = self.range_arg(e, t)?;
        let out: Vec<Sample> = m
            .into_iter()
            .filter_map(|s| {
                f(&s.points, start, end, secs).map(|v| Sample {
                    labels: drop_name(s.labels),
                    v,
                })
            })
            .collect();
        check_unique(&out)?;
        Ok(Value::Vector(out))
    }

    /// A function of each sample's value of an instant vector.
    fn math(&self, e: &Expr, t: i64, f: &dyn Fn(f64) -> f64) -> Result<Value> {
        let out: Vec<Sample> = self
            .vector_arg(e, t)?
            .into_iter()
            .map(|s| Sample {
                labels: drop_name(s.labels),
                v: f(s.v),
            })
            .collect();
        check_unique(&out)?;
        Ok(Value::Vector(out))
    }

    fn binary(&self, b: &parser::BinaryExpr, t: i64) -> Result<Value> {
        let op = b.op.to_string();
        let return_bool = b.modifier.as_ref().is_some_and(|m| m.return_bool);
        let lhs = self.eval(&b.lhs, t)?;
        let rhs = self.eval(&b.rhs, t)?;
        let comparison = b.op.is_comparison_operator();
        match (lhs, rhs) {
            (Value::Scalar(l), Value::Scalar(r)) => {
                let (v, keep) = scalar_op(&op, l, r)?;
                Ok(Value::Scalar(if comparison {
                    if keep { 1.0 } else { 0.0 }
                } else {
                    v
                }))
            }
            (Value::Vector(v), Value::Scalar(s)) => {
                vector_scalar(&op, v, s, false, return_bool, comparison)
            }
            (Value::Scalar(s), Value::Vector(v)) => {
                vector_scalar(&op, v, s, true, return_bool, comparison)
            }
            (Value::Vector(l), Value::Vector(r)) => {
                let matching = b.modifier.as_ref().and_then(|m| m.matching.as_ref());
                if b.op.is_set_operator() {
                    return Ok(Value::Vector(set_op(&op, l, r, matching)));
                }
                vector_vector(&op, l, r, matching, return_bool)
            }
            _ => Err(QueryError::BadData(format!(
                "binary operator {op} is only defined between scalars and instant vectors"
            ))),
        }
    }
}

/// Go's `math.Max`: NaN wins.
fn go_max(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else {
        a.max(b)
    }
}

/// Go's `math.Min`: NaN wins.
fn go_min(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else {
        a.min(b)
    }
}

/// `(value, keep)` for one pair of operands, as Prometheus's `vectorElemBinop`.
fn scalar_op(op: &str, l: f64, r: f64) -> Result<(f64, bool)> {
    Ok(match op {
        "+" => (l + r, true),
        "-" => (l - r, true),
        "*" => (l * r, true),
        "/" => (l / r, true),
        "%" => (l % r, true),
        "^" => (l.powf(r), true),
        "==" => (l, l == r),
        "!=" => (l, l != r),
        ">" => (l, l > r),
        "<" => (l, l < r),
        ">=" => (l, l >= r),
        "<=" => (l, l <= r),
        other => return Err(unsupported(format!("operator {other}"))),
    })
}

fn arithmetic(op: &str) -> bool {
    matches!(op, "+" | "-" | "*" | "/" | "%" | "^")
}

fn vector_scalar(
    op: &str,
    v: Vec<Sample>,
    s: f64,
    swapped: bool,
    return_bool: bool,
    comparison: bool,
) -> Result<Value> {
    let mut out = Vec::with_capacity(v.len());
    for sample in v {
        let (l, r) = if swapped {
            (s, sample.v)
        } else {
            (sample.v, s)
        };
        let (mut value, keep) = scalar_op(op, l, r)?;
        // A comparison keeps the vector's value, whichever side it is on.
        if comparison && swapped {
            value = r;
        }
        if return_bool {
            value = if keep { 1.0 } else { 0.0 };
        } else if !keep {
            continue;
        }
        let labels = if arithmetic(op) || return_bool {
            drop_name(sample.labels)
        } else {
            sample.labels
        };
        out.push(Sample { labels, v: value });
    }
    if arithmetic(op) || return_bool {
        check_unique(&out)?;
    }
    Ok(Value::Vector(out))
}

/// The match signature of a series under `on`/`ignoring` (or the default: all labels but
/// the name).
fn signature(l: &Labels, matching: Option<&LabelModifier>) -> String {
    key(&matched(l, matching))
}

/// The labels a series is matched on under `on`/`ignoring` (default: all but the name).
fn matched(l: &Labels, matching: Option<&LabelModifier>) -> Labels {
    match matching {
        Some(LabelModifier::Include(on)) => l
            .iter()
            .filter(|(k, _)| on.labels.iter().any(|o| o == k))
            .cloned()
            .collect(),
        Some(LabelModifier::Exclude(ign)) => l
            .iter()
            .filter(|(k, _)| k != NAME && !ign.labels.iter().any(|o| o == k))
            .cloned()
            .collect(),
        None => l.iter().filter(|(k, _)| k != NAME).cloned().collect(),
    }
}

fn describe(l: &Labels) -> String {
    let inner: Vec<String> = l.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
    format!("{{{}}}", inner.join(", "))
}

fn vector_vector(
    op: &str,
    lhs: Vec<Sample>,
    rhs: Vec<Sample>,
    matching: Option<&LabelModifier>,
    return_bool: bool,
) -> Result<Value> {
    let mut right: HashMap<String, Sample> = HashMap::new();
    for s in rhs {
        let sig = signature(&s.labels, matching);
        if let Some(dup) = right.get(&sig) {
            let group = matched(&s.labels, matching);
            return Err(exec(format!(
                "found duplicate series for the match group {} on the right hand-side of the operation: [{}, {}];many-to-many matching not allowed: matching labels must be unique on one side",
                describe(&group),
                describe(&s.labels),
                describe(&dup.labels)
            )));
        }
        right.insert(sig, s);
    }
    let mut matched = std::collections::HashSet::new();
    let mut out = Vec::new();
    for l in lhs {
        let sig = signature(&l.labels, matching);
        let Some(r) = right.get(&sig) else {
            continue;
        };
        let (mut value, keep) = scalar_op(op, l.v, r.v)?;
        if return_bool {
            value = if keep { 1.0 } else { 0.0 };
        } else if !keep {
            continue;
        }
        if !matched.insert(sig) {
            return Err(exec(
                "multiple matches for labels: many-to-one matching must be explicit (group_left/group_right)",
            ));
        }
        let mut labels = l.labels;
        if arithmetic(op) || return_bool {
            labels = drop_name(labels);
        }
        match matching {
            Some(LabelModifier::Include(on)) => {
                labels.retain(|(k, _)| on.labels.iter().any(|o| o == k))
            }
            Some(LabelModifier::Exclude(ign)) => {
                labels.retain(|(k, _)| !ign.labels.iter().any(|o| o == k))
            }
            None => {}
        }
        out.push(Sample { labels, v: value });
    }
    check_unique(&out)?;
    Ok(Value::Vector(out))
}

fn set_op(
    op: &str,
    lhs: Vec<Sample>,
    rhs: Vec<Sample>,
    matching: Option<&LabelModifier>,
) -> Vec<Sample> {
    let right: std::collections::HashSet<String> =
        rhs.iter().map(|s| signature(&s.labels, matching)).collect();
    match op {
        "and" => lhs
            .into_iter()
            .filter(|s| right.contains(&signature(&s.labels, matching)))
            .collect(),
        "unless" => lhs
            .into_iter()
            .filter(|s| !right.contains(&signature(&s.labels, matching)))
            .collect(),
        _ => {
            let left: std::collections::HashSet<String> =
                lhs.iter().map(|s| signature(&s.labels, matching)).collect();
            let mut out = lhs;
            out.extend(
                rhs.into_iter()
                    .filter(|s| !left.contains(&signature(&s.labels, matching))),
            );
            out
        }
    }
}

fn aggregate(op: &str, modifier: Option<&LabelModifier>, input: Vec<Sample>) -> Vec<Sample> {
    struct Group {
        labels: Labels,
        value: f64,
        count: f64,
    }
    let mut groups: Vec<Group> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    for s in input {
        let labels: Labels = match modifier {
            Some(LabelModifier::Include(by)) => s
                .labels
                .into_iter()
                .filter(|(k, _)| by.labels.iter().any(|b| b == k))
                .collect(),
            Some(LabelModifier::Exclude(without)) => s
                .labels
                .into_iter()
                .filter(|(k, _)| k != NAME && !without.labels.iter().any(|w| w == k))
                .collect(),
            None => Vec::new(),
        };
        let k = key(&labels);
        match index.get(&k) {
            None => {
                index.insert(k, groups.len());
                groups.push(Group {
                    labels,
                    value: s.v,
                    count: 1.0,
                });
            }
            Some(&i) => {
                let g = &mut groups[i];
                g.count += 1.0;
                match op {
                    "sum" => g.value += s.v,
                    // Prometheus's incremental mean; an infinite mean absorbs finite values.
                    "avg" => {
                        if g.value.is_infinite()
                            && (s.v.is_infinite() && s.v.signum() == g.value.signum()
                                || s.v.is_finite())
                        {
                            continue;
                        }
                        g.value += s.v / g.count - g.value / g.count
                    }
                    "min" if g.value > s.v || g.value.is_nan() => g.value = s.v,
                    "max" if g.value < s.v || g.value.is_nan() => g.value = s.v,
                    _ => {}
                }
            }
        }
    }
    groups
        .into_iter()
        .map(|g| Sample {
            labels: g.labels,
            v: if op == "count" { g.count } else { g.value },
        })
        .collect()
}

/// `rate`, `increase` and `delta` as Prometheus 2.x's `extrapolatedRate`.
pub fn extrapolated_rate(
    points: &[(i64, f64)],
    range_start: i64,
    range_end: i64,
    range_secs: f64,
    is_counter: bool,
    is_rate: bool,
) -> Option<f64> {
    if points.len() < 2 {
        return None;
    }
    let (first_t, first_v) = points[0];
    let (last_t, last_v) = points[points.len() - 1];
    let mut result = last_v - first_v;
    if is_counter {
        let mut prev = 0.0;
        for &(_, v) in points {
            if v < prev {
                result += prev;
            }
            prev = v;
        }
    }
    let mut to_start = (first_t - range_start) as f64 / 1000.0;
    let to_end = (range_end - last_t) as f64 / 1000.0;
    let sampled = (last_t - first_t) as f64 / 1000.0;
    let average = sampled / (points.len() - 1) as f64;
    if is_counter && result > 0.0 && first_v >= 0.0 {
        let to_zero = sampled * (first_v / result);
        if to_zero < to_start {
            to_start = to_zero;
        }
    }
    let threshold = average * 1.1;
    let mut interval = sampled;
    interval += if to_start < threshold {
        to_start
    } else {
        average / 2.0
    };
    interval += if to_end < threshold {
        to_end
    } else {
        average / 2.0
    };
    result *= interval / sampled;
    if is_rate {
        result /= range_secs;
    }
    Some(result)
}

/// `irate` and `idelta`: from the last two samples.
fn instant_value(points: &[(i64, f64)], is_rate: bool) -> Option<f64> {
    if points.len() < 2 {
        return None;
    }
    let (prev_t, prev_v) = points[points.len() - 2];
    let (last_t, last_v) = points[points.len() - 1];
    let mut result = if is_rate && last_v < prev_v {
        last_v
    } else {
        last_v - prev_v
    };
    let interval = last_t - prev_t;
    if interval == 0 {
        return None;
    }
    if is_rate {
        result /= interval as f64 / 1000.0;
    }
    Some(result)
}

/// Quantile `q` of classic histogram buckets `(upper bound, cumulative count)`, as
/// Prometheus's `bucketQuantile`.
pub fn bucket_quantile(q: f64, mut buckets: Vec<(f64, f64)>) -> f64 {
    if q.is_nan() {
        return f64::NAN;
    }
    if q < 0.0 {
        return f64::NEG_INFINITY;
    }
    if q > 1.0 {
        return f64::INFINITY;
    }
    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    match buckets.last() {
        Some((upper, _)) if *upper == f64::INFINITY => {}
        _ => return f64::NAN,
    }
    // Coalesce buckets with the same bound.
    let mut merged: Vec<(f64, f64)> = Vec::with_capacity(buckets.len());
    for (upper, count) in buckets {
        match merged.last_mut() {
            Some(last) if last.0 == upper => last.1 += count,
            _ => merged.push((upper, count)),
        }
    }
    // Cumulative counts must not decrease.
    let mut max = f64::NEG_INFINITY;
    for b in &mut merged {
        if b.1 > max {
            max = b.1;
        } else if b.1 < max {
            b.1 = max;
        }
    }
    if merged.len() < 2 {
        return f64::NAN;
    }
    let observations = merged[merged.len() - 1].1;
    if observations == 0.0 {
        return f64::NAN;
    }
    let mut rank = q * observations;
    let n = merged.len() - 1;
    let b = (0..n).find(|&i| merged[i].1 >= rank).unwrap_or(n);
    if b == n {
        return merged[n - 1].0;
    }
    if b == 0 && merged[0].0 <= 0.0 {
        return merged[0].0;
    }
    let mut start = 0.0;
    let end = merged[b].0;
    let mut count = merged[b].1;
    if b > 0 {
        start = merged[b - 1].0;
        count -= merged[b - 1].1;
        rank -= merged[b - 1].1;
    }
    start + (end - start) * (rank / count)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sandbox::tsdb::labels;

    fn db() -> Db {
        let mut db = Db::default();
        for (code, per_min) in [("200", 98.0), ("500", 2.0)] {
            let l = labels(
                "http_requests_total",
                &[("service", "checkout"), ("code", code)],
            );
            for m in 0..=60 {
                db.append(&l, m * 60_000, per_min * m as f64);
            }
        }
        db
    }

    fn scalar_of(v: Value) -> f64 {
        match v {
            Value::Vector(v) if v.len() == 1 => v[0].v,
            Value::Scalar(s) => s,
            other => panic!("not one value: {other:?}"),
        }
    }

    #[test]
    fn error_ratio_over_a_window() {
        let db = db();
        let e = parse(r#"sum(rate(http_requests_total{code=~"5.."}[10m])) / sum(rate(http_requests_total[10m]))"#).unwrap();
        let v = scalar_of(Evaluator::new(&db).instant(&e, 3_600_000).unwrap());
        assert!((v - 0.02).abs() < 1e-12, "{v}");
    }

    #[test]
    fn rate_extrapolates_like_prometheus() {
        // Samples every 60 s exactly on the window's ends: no extrapolation needed.
        let db = db();
        let e = parse(r#"increase(http_requests_total{code="200"}[10m])"#).unwrap();
        let v = scalar_of(Evaluator::new(&db).instant(&e, 3_600_000).unwrap());
        assert!((v - 980.0).abs() < 1e-9, "{v}");
    }

    #[test]
    fn counter_resets_are_corrected() {
        let mut db = Db::default();
        let l = labels("c_total", &[]);
        for (t, v) in [(0, 10.0), (60_000, 20.0), (120_000, 5.0), (180_000, 15.0)] {
            db.append(&l, t, v);
        }
        let e = parse("increase(c_total[3m])").unwrap();
        let v = scalar_of(Evaluator::new(&db).instant(&e, 180_000).unwrap());
        // 10 + 5 (after the reset, counted from 0) + 10 = 25 over the sampled 3 minutes.
        assert!((v - 25.0).abs() < 1e-9, "{v}");
    }

    #[test]
    fn histogram_quantile_interpolates() {
        let buckets = vec![
            (0.1, 50.0),
            (0.5, 90.0),
            (1.0, 100.0),
            (f64::INFINITY, 100.0),
        ];
        assert!((bucket_quantile(0.5, buckets.clone()) - 0.1).abs() < 1e-12);
        assert!((bucket_quantile(0.7, buckets.clone()) - 0.3).abs() < 1e-12);
        assert!(bucket_quantile(0.99, buckets).is_finite());
        assert!(bucket_quantile(0.5, vec![(0.1, 1.0)]).is_nan());
    }

    #[test]
    fn unsupported_constructs_name_themselves() {
        for (q, what) in [
            ("topk(3, x)", "aggregation topk"),
            ("predict_linear(x[5m], 60)", "function predict_linear()"),
            ("a * on(x) group_left b", "group_left"),
            ("x @ 100", "@ modifier"),
        ] {
            match parse(q) {
                Err(QueryError::BadData(m)) => assert!(m.contains(what), "{q}: {m}"),
                other => panic!("{q}: {other:?}"),
            }
        }
        assert!(matches!(parse("sum(("), Err(QueryError::BadData(_))));
    }

    #[test]
    fn vector_matching_on_and_ignoring() {
        let db = db();
        let ev = Evaluator::new(&db);
        let e = parse(
            r#"http_requests_total{code="500"} / ignoring(code) http_requests_total{code="200"}"#,
        )
        .unwrap();
        let Value::Vector(v) = ev.instant(&e, 3_600_000).unwrap() else {
            panic!()
        };
        assert_eq!(v.len(), 1);
        assert_eq!(
            v[0].labels,
            vec![("service".to_owned(), "checkout".to_owned())]
        );
        let e = parse(r#"http_requests_total / on(service) http_requests_total"#).unwrap();
        assert!(matches!(
            ev.instant(&e, 3_600_000),
            Err(QueryError::Execution(_))
        ));
        let e = parse(r#"http_requests_total > 5000"#).unwrap();
        let Value::Vector(v) = ev.instant(&e, 3_600_000).unwrap() else {
            panic!()
        };
        assert_eq!(v.len(), 1, "comparison filters");
        assert_eq!(label(&v[0].labels, NAME), "http_requests_total");
    }

    #[test]
    fn subquery_steps_align_to_absolute_time() {
        let db = db();
        let e = parse(r#"max_over_time(sum(rate(http_requests_total[5m]))[30m:5m])"#).unwrap();
        let v = scalar_of(Evaluator::new(&db).instant(&e, 3_600_000).unwrap());
        assert!((v - 100.0 / 60.0).abs() < 1e-9, "{v}");
    }
}
