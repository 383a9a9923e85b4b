//! The sandbox's in-memory time series store: what its Prometheus API answers from.
//!
//! A series is its sorted label set (with `__name__`) and two parallel columns of
//! timestamps (milliseconds) and values. Samples arrive in time order (a late one is
//! dropped, as Prometheus drops out-of-order samples). [`Db::compact`] applies the retention
//! policy: samples past the horizon are dropped and older history is thinned to a coarser
//! step, which for counters loses resolution but never changes a value that is kept.

use std::collections::HashMap;

/// A label set, sorted by name; `__name__` is a label like any other.
pub type Labels = Vec<(String, String)>;

/// The metric name label.
pub const NAME: &str = "__name__";

/// Builds a sorted label set from a metric name and pairs.
pub fn labels(name: &str, pairs: &[(&str, &str)]) -> Labels {
    let mut l: Labels = pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    l.push((NAME.to_owned(), name.to_owned()));
    l.sort();
    l
}

/// The value of label `name`, or `""` (PromQL treats a missing label as empty).
pub fn label<'a>(l: &'a Labels, name: &str) -> &'a str {
    l.iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .unwrap_or("")
}

/// One series.
#[derive(Debug, Clone)]
pub struct Series {
    /// Sorted labels, `__name__` included.
    pub labels: Labels,
    /// Sample timestamps, milliseconds since the epoch, strictly increasing.
    pub t: Vec<i64>,
    /// Sample values.
    pub v: Vec<f64>,
}

impl Series {
    /// The samples with `from <= t <= to`.
    pub fn window(&self, from: i64, to: i64) -> (&[i64], &[f64]) {
        let a = self.t.partition_point(|&t| t < from);
        let b = self.t.partition_point(|&t| t <= to);
        if a >= b {
            return (&[], &[]);
        }
        (&self.t[a..b], &self.v[a..b])
    }

    /// The newest sample at or before `at`.
    pub fn at_or_before(&self, at: i64) -> Option<(i64, f64)> {
        let i = self.t.partition_point(|&t| t <= at);
        (i > 0).then(|| (self.t[i - 1], self.v[i - 1]))
    }
}

/// How long samples are kept, and at what spacing as they age.
#[derive(Debug, Clone)]
pub struct Retention {
    /// Samples older than this are dropped.
    pub horizon_ms: i64,
    /// `(age, spacing)`: samples older than `age` are kept at least `spacing` apart. Sorted
    /// by age.
    pub tiers: Vec<(i64, i64)>,
}

const MINUTE: i64 = 60_000;
const HOUR: i64 = 60 * MINUTE;
const DAY: i64 = 24 * HOUR;

impl Default for Retention {
    /// 31 days; full resolution for an hour, one sample a minute for a day, then one every
    /// five minutes.
    fn default() -> Self {
        Retention {
            horizon_ms: 31 * DAY,
            tiers: vec![(HOUR, MINUTE), (DAY, 5 * MINUTE)],
        }
    }
}

/// The store.
#[derive(Debug, Default)]
pub struct Db {
    series: Vec<Series>,
    index: HashMap<Labels, usize>,
    by_name: HashMap<String, Vec<usize>>,
}

impl Db {
    /// Appends a sample; a sample not newer than the series' last one is dropped (returns
    /// false), as Prometheus drops out-of-order samples.
    pub fn append(&mut self, labels: &Labels, t: i64, v: f64) -> bool {
        let i = match self.index.get(labels) {
            Some(&i) => i,
            None => {
                let i = self.series.len();
                self.series.push(Series {
                    labels: labels.clone(),
                    t: Vec::new(),
                    v: Vec::new(),
                });
                self.index.insert(labels.clone(), i);
                self.by_name
                    .entry(label(labels, NAME).to_owned())
                    .or_default()
                    .push(i);
                i
            }
        };
        let s = &mut self.series[i];
        if s.t.last().is_some_and(|&last| last >= t) {
            return false;
        }
        s.t.push(t);
        s.v.push(v);
        true
    }

    /// Puts a counter's older history in front of its series: points at or after the
    /// series' first sample are dropped, and the series' samples are raised by the last
    /// point kept, so the counter continues its history without a reset.
    pub fn prepend(&mut self, labels: &Labels, points: Vec<(i64, f64)>) {
        let Some(&i) = self.index.get(labels) else {
            // A new series: take the points as they are, sized exactly.
            let mut points = points;
            points.dedup_by(|b, a| b.0 <= a.0);
            if let Some((t, v)) = points.first().copied() {
                self.append(labels, t, v);
            }
            if let Some(&i) = self.index.get(labels) {
                let s = &mut self.series[i];
                s.t.reserve_exact(points.len().saturating_sub(1));
                s.v.reserve_exact(points.len().saturating_sub(1));
                for (t, v) in points.into_iter().skip(1) {
                    s.t.push(t);
                    s.v.push(v);
                }
            }
            return;
        };
        let s = &mut self.series[i];
        let first = s.t.first().copied().unwrap_or(i64::MAX);
        let kept: Vec<(i64, f64)> = points.into_iter().take_while(|(t, _)| *t < first).collect();
        let offset = kept.last().map_or(0.0, |(_, v)| *v);
        let mut t: Vec<i64> = kept.iter().map(|(t, _)| *t).collect();
        let mut v: Vec<f64> = kept.iter().map(|(_, v)| *v).collect();
        t.extend_from_slice(&s.t);
        v.extend(s.v.iter().map(|x| x + offset));
        s.t = t;
        s.v = v;
    }

    /// Series named `name` (every series when `None`) whose labels satisfy `keep`.
    pub fn select<'a>(
        &'a self,
        name: Option<&str>,
        keep: impl Fn(&Labels) -> bool + 'a,
    ) -> Box<dyn Iterator<Item = &'a Series> + 'a> {
        match name {
            Some(n) => Box::new(
                self.by_name
                    .get(n)
                    .into_iter()
                    .flatten()
                    .map(|&i| &self.series[i])
                    .filter(move |s| keep(&s.labels)),
            ),
            None => Box::new(self.series.iter().filter(move |s| keep(&s.labels))),
        }
    }

    /// Every series.
    pub fn series(&self) -> &[Series] {
        &self.series
    }

    /// How many samples are held.
    pub fn samples(&self) -> usize {
        self.series.iter().map(|s| s.t.len()).sum()
    }

    /// Bytes held by samples and labels (capacity, not length).
    pub fn memory_bytes(&self) -> usize {
        self.series
            .iter()
            .map(|s| {
                s.t.capacity() * 8
                    + s.v.capacity() * 8
                    + s.labels
                        .iter()
                        .map(|(k, v)| k.capacity() + v.capacity() + 48)
                        .sum::<usize>()
                        * 2
                    + std::mem::size_of::<Series>()
            })
            .sum()
    }

    /// Applies `policy` as of `now`: drops samples past the horizon and thins old ones.
    pub fn compact(&mut self, now: i64, policy: &Retention) {
        for s in &mut self.series {
            let (mut t, mut v) = (Vec::with_capacity(s.t.len()), Vec::with_capacity(s.t.len()));
            let mut last_kept = i64::MIN;
            for (&ts, &val) in s.t.iter().zip(&s.v) {
                let age = now - ts;
                if age > policy.horizon_ms {
                    continue;
                }
                let spacing = policy
                    .tiers
                    .iter()
                    .rev()
                    .find(|(tier_age, _)| age > *tier_age)
                    .map(|(_, spacing)| *spacing)
                    .unwrap_or(0);
                if spacing > 0 && last_kept != i64::MIN && ts - last_kept < spacing {
                    continue;
                }
                t.push(ts);
                v.push(val);
                last_kept = ts;
            }
            if t.len() != s.t.len() {
                t.shrink_to_fit();
                v.shrink_to_fit();
                s.t = t;
                s.v = v;
            }
        }
    }

    /// Loads OpenMetrics/Prometheus text with timestamps in seconds (what `promtool tsdb
    /// create-blocks-from openmetrics` reads). Returns how many samples were stored.
    pub fn load_openmetrics(&mut self, text: &str) -> Result<usize, String> {
        let mut n = 0;
        for (lineno, line) in text.lines().enumerate() {
            let line = line.trim_end();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (labels, rest) =
                parse_series(line).map_err(|e| format!("line {}: {e}", lineno + 1))?;
            let mut parts = rest.split_whitespace();
            let value = parts
                .next()
                .and_then(parse_value)
                .ok_or_else(|| format!("line {}: no value", lineno + 1))?;
            let t = parts
                .next()
                .and_then(|t| t.parse::<f64>().ok())
                .map(|s| (s * 1000.0).round() as i64)
                .ok_or_else(|| format!("line {}: no timestamp", lineno + 1))?;
            if self.append(&labels, t, value) {
                n += 1;
            }
        }
        Ok(n)
    }

    /// Writes every sample as OpenMetrics text (series grouped by name, samples in time
    /// order, timestamps in seconds, `# EOF` at the end).
    pub fn to_openmetrics(&self) -> String {
        let mut order: Vec<&Series> = self.series.iter().collect();
        order.sort_by(|a, b| {
            label(&a.labels, NAME)
                .cmp(label(&b.labels, NAME))
                .then(a.labels.cmp(&b.labels))
        });
        let mut out = String::new();
        for s in order {
            let head = exposition_series(&s.labels);
            for (&t, &v) in s.t.iter().zip(&s.v) {
                out.push_str(&format!(
                    "{head} {} {}.{:03}\n",
                    format_value(v),
                    t.div_euclid(1000),
                    t.rem_euclid(1000)
                ));
            }
        }
        out.push_str("# EOF\n");
        out
    }
}

/// `name{a="b",...}` for exposition; the name comes out of the labels.
pub fn exposition_series(labels: &Labels) -> String {
    let name = label(labels, NAME);
    let rest: Vec<String> = labels
        .iter()
        .filter(|(k, _)| k != NAME)
        .map(|(k, v)| format!("{k}=\"{}\"", escape_label(v)))
        .collect();
    if rest.is_empty() {
        name.to_owned()
    } else {
        format!("{name}{{{}}}", rest.join(","))
    }
}

fn escape_label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// A float as Prometheus writes it: shortest round-trip form, `NaN`, `+Inf`, `-Inf`.
pub fn format_value(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v == f64::INFINITY {
        "+Inf".into()
    } else if v == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        format!("{v}")
    }
}

/// Parses a float the way exposition formats write them.
pub fn parse_value(s: &str) -> Option<f64> {
    match s {
        "NaN" => Some(f64::NAN),
        "+Inf" | "Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        _ => s.parse().ok(),
    }
}

/// Splits `name{a="b"} rest` into sorted labels and the rest of the line.
fn parse_series(line: &str) -> Result<(Labels, &str), String> {
    let name_end = line
        .find(|c: char| c == '{' || c.is_whitespace())
        .ok_or("no value after the series")?;
    let name = &line[..name_end];
    if name.is_empty() {
        return Err("no metric name".into());
    }
    let mut labels: Labels = vec![(NAME.to_owned(), name.to_owned())];
    let mut rest = &line[name_end..];
    if let Some(body) = rest.strip_prefix('{') {
        let mut chars = body.char_indices().peekable();
        let end;
        loop {
            // Skip separators.
            while let Some(&(_, c)) = chars.peek() {
                if c == ',' || c == ' ' {
                    chars.next();
                } else {
                    break;
                }
            }
            let Some(&(start, c)) = chars.peek() else {
                return Err("unterminated label set".into());
            };
            if c == '}' {
                end = start + 1;
                break;
            }
            let eq = body[start..].find('=').ok_or("label without a value")? + start;
            let key = body[start..eq].trim().to_owned();
            while chars.peek().is_some_and(|&(i, _)| i <= eq) {
                chars.next();
            }
            if chars.next().map(|(_, c)| c) != Some('"') {
                return Err(format!("label {key}: value is not quoted"));
            }
            let mut value = String::new();
            loop {
                match chars.next() {
                    Some((_, '\\')) => match chars.next() {
                        Some((_, 'n')) => value.push('\n'),
                        Some((_, c)) => value.push(c),
                        None => return Err("unterminated escape".into()),
                    },
                    Some((_, '"')) => break,
                    Some((_, c)) => value.push(c),
                    None => return Err(format!("label {key}: unterminated value")),
                }
            }
            labels.push((key, value));
        }
        rest = &body[end..];
    }
    labels.sort();
    Ok((labels, rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openmetrics_round_trip() {
        let mut db = Db::default();
        let l = labels(
            "http_requests_total",
            &[("code", "200"), ("path", "a\"b\\c")],
        );
        db.append(&l, 1_000, 1.0);
        db.append(&l, 61_500, 2.5);
        assert!(!db.append(&l, 61_500, 3.0), "out of order is dropped");
        let text = db.to_openmetrics();
        assert!(text.ends_with("# EOF\n"));
        let mut back = Db::default();
        assert_eq!(back.load_openmetrics(&text).unwrap(), 2);
        let s = &back.series()[0];
        assert_eq!(s.labels, l);
        assert_eq!(s.t, vec![1_000, 61_500]);
        assert_eq!(s.v, vec![1.0, 2.5]);
    }

    #[test]
    fn compaction_thins_old_samples_and_drops_past_the_horizon() {
        let mut db = Db::default();
        let l = labels("x", &[]);
        let now = 40 * DAY;
        for m in 0..(40 * 24 * 60) {
            db.append(&l, m * MINUTE, m as f64);
        }
        db.compact(now, &Retention::default());
        let s = &db.series()[0];
        assert!(s.t[0] >= now - 31 * DAY);
        // The last hour and day stay at one a minute; older at one every five.
        let last_day = s.t.iter().filter(|&&t| t > now - DAY).count();
        assert_eq!(last_day, 24 * 60 - 1);
        let older = s.t.iter().filter(|&&t| t <= now - DAY).count();
        assert!((older as i64 - 30 * 24 * 12).abs() <= 2, "{older}");
        // Kept values are untouched.
        assert!(
            s.t.iter()
                .zip(&s.v)
                .all(|(t, v)| (*t / MINUTE) as f64 == *v)
        );
    }

    #[test]
    fn prepended_history_continues_into_live_samples() {
        let mut db = Db::default();
        let l = labels("c_total", &[]);
        db.append(&l, 100, 1.0);
        db.append(&l, 200, 3.0);
        db.prepend(&l, vec![(0, 0.0), (50, 40.0), (150, 60.0)]);
        let s = &db.series()[0];
        assert_eq!(s.t, vec![0, 50, 100, 200]);
        assert_eq!(s.v, vec![0.0, 40.0, 41.0, 43.0]);
    }

    #[test]
    fn window_is_closed_on_both_ends() {
        let mut db = Db::default();
        let l = labels("x", &[]);
        for t in [0, 10, 20, 30] {
            db.append(&l, t, t as f64);
        }
        let (t, _) = db.series()[0].window(10, 20);
        assert_eq!(t, &[10, 20]);
        assert_eq!(db.series()[0].at_or_before(25), Some((20, 20.0)));
    }
}
