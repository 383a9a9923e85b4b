//! A service level for error budgets: what is measured (a ratio of events or a metric
//! against a threshold), how the budget is counted (events or time slices), over which
//! window (rolling or a calendar period), and the PromQL that measures its error ratio.

use std::time::Duration;

use crate::units::format_duration;

/// How a ratio's queries are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counting {
    /// The queries already cover the window through `${window}` (glidepath's format).
    Windowed,
    /// Each query is a counter selector: counted with `increase` (or `rate` for burn
    /// windows) and summed.
    Counter,
    /// Each query is a gauge: averaged over the window (`avg_over_time`) and summed.
    Gauge,
}

/// A comparison of a threshold metric with its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `<`
    Lt,
    /// `<=`
    Lte,
    /// `>`
    Gt,
    /// `>=`
    Gte,
}

impl Op {
    /// The PromQL operator.
    pub fn promql(self) -> &'static str {
        match self {
            Op::Lt => "<",
            Op::Lte => "<=",
            Op::Gt => ">",
            Op::Gte => ">=",
        }
    }

    /// The operator that holds exactly when this one does not (NaN aside).
    pub fn negated(self) -> Op {
        match self {
            Op::Lt => Op::Gte,
            Op::Lte => Op::Gt,
            Op::Gt => Op::Lte,
            Op::Gte => Op::Lt,
        }
    }
}

/// What a service level measures.
#[derive(Debug, Clone, PartialEq)]
pub enum Indicator {
    /// Good or bad events among all events.
    Ratio {
        /// Good events, if the ratio is good/total.
        good: Option<String>,
        /// Bad events, if the ratio is bad/total.
        bad: Option<String>,
        /// All events.
        total: String,
        /// How the queries are read.
        counting: Counting,
    },
    /// One metric, good when `query op value` holds.
    Threshold {
        /// The metric (PromQL, `${window}` set to the sampling interval).
        query: String,
        /// The comparison.
        op: Op,
        /// The threshold.
        value: f64,
    },
}

/// How the budget is counted.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Budgeting {
    /// Events: the error ratio is bad events over all events.
    Occurrences,
    /// Time slices: a slice is bad when its good ratio is below `slice_target`; the
    /// error ratio is bad slices over slices with data.
    Timeslices {
        /// The slice length.
        slice: Duration,
        /// The good ratio a slice needs.
        slice_target: f64,
    },
    /// Time slices: the error ratio is one minus the mean of the slices' good ratios.
    RatioTimeslices {
        /// The slice length.
        slice: Duration,
    },
}

/// How often a threshold metric is sampled when each sample counts as an occurrence.
pub const THRESHOLD_SAMPLE: Duration = Duration::from_secs(60);

/// A service level for error budgets.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceLevel {
    /// The objective, for people; empty when the SLO has a single unnamed one.
    pub name: String,
    /// What is measured.
    pub indicator: Indicator,
    /// The target as a fraction (0.999).
    pub target: f64,
    /// The rolling window (30 days), or the nominal length of a calendar period.
    pub window: Duration,
    /// A calendar-aligned window, when the window is not rolling.
    pub calendar: Option<super::calendar::Calendar>,
    /// Events or time slices.
    pub budgeting: Budgeting,
}

/// Which PromQL function counts a counter over a range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Count {
    /// `increase`: events in the range (the budget window).
    Increase,
    /// `rate`: events per second (burn-rate windows).
    Rate,
}

impl ServiceLevel {
    /// A rolling-window, Occurrences service level of a windowed ratio (glidepath's format).
    pub fn windowed_ratio(
        good: Option<String>,
        bad: Option<String>,
        total: String,
        target: f64,
        window: Duration,
    ) -> ServiceLevel {
        ServiceLevel {
            name: String::new(),
            indicator: Indicator::Ratio {
                good,
                bad,
                total,
                counting: Counting::Windowed,
            },
            target,
            window,
            calendar: None,
            budgeting: Budgeting::Occurrences,
        }
    }

    /// The shortest window worth measuring: a time slice, a threshold's sampling minute,
    /// or a minute.
    pub fn shortest_window(&self) -> Duration {
        match (&self.indicator, self.budgeting) {
            (_, Budgeting::Timeslices { slice, .. } | Budgeting::RatioTimeslices { slice }) => {
                slice
            }
            _ => THRESHOLD_SAMPLE,
        }
    }

    /// The error budget: 1 - target.
    pub fn budget(&self) -> f64 {
        // Rounded so 1 - 0.999 is 0.001, not 0.0010000000000000009, in rules and output.
        ((1.0 - self.target) * 1e12).round() / 1e12
    }

    /// The PromQL error ratio over `range` (a Prometheus duration such as `1h`, or the
    /// literal `${window}`), counting counters with `increase`.
    pub fn error_ratio_query(&self, range: &str) -> String {
        self.error_ratio_query_with(range, Count::Increase)
    }

    /// The PromQL error ratio over `range`, counting counters with `count`.
    pub fn error_ratio_query_with(&self, range: &str, count: Count) -> String {
        match (&self.indicator, self.budgeting) {
            (Indicator::Ratio { .. }, Budgeting::Occurrences) => {
                self.ratio_error(range, count).unwrap_or_default()
            }
            (
                Indicator::Ratio { .. },
                Budgeting::Timeslices {
                    slice,
                    slice_target,
                },
            ) => {
                let s = format_duration(slice);
                let good = self.good_ratio(&s, Count::Increase).unwrap_or_default();
                bad_share(&format!("({good}) < {slice_target}"), &good, range, &s)
            }
            (Indicator::Ratio { .. }, Budgeting::RatioTimeslices { slice }) => {
                let s = format_duration(slice);
                let good = self.good_ratio(&s, Count::Increase).unwrap_or_default();
                format!("1 - avg_over_time((({good}) >= -Inf)[{range}:{s}])")
            }
            (Indicator::Threshold { query, op, value }, _) => {
                let s = format_duration(THRESHOLD_SAMPLE);
                let q = query.replace("${window}", &s);
                let bad = format!("({q}) {} {value}", op.negated().promql());
                bad_share(&bad, &q, range, &s)
            }
        }
    }

    /// The SLI a gate measures once over `range`: the good ratio for ratios, the metric
    /// itself for thresholds.
    pub fn sli_query(&self, range: &str) -> String {
        match &self.indicator {
            Indicator::Ratio { .. } => self.good_ratio(range, Count::Increase).unwrap_or_default(),
            Indicator::Threshold { query, .. } => query.replace("${window}", range),
        }
    }

    /// A ratio's queries over `range`, each reduced to one number.
    fn events(&self, query: &str, range: &str, count: Count) -> String {
        let Indicator::Ratio { counting, .. } = &self.indicator else {
            return query.to_owned();
        };
        match counting {
            Counting::Windowed => query.replace("${window}", range),
            Counting::Counter => {
                let f = match count {
                    Count::Increase => "increase",
                    Count::Rate => "rate",
                };
                format!("sum({f}({query}[{range}]))")
            }
            Counting::Gauge => format!("sum(avg_over_time({query}[{range}]))"),
        }
    }

    /// A numerator: counted like [`Self::events`], and 0 when no series matches (a
    /// counter of errors that never happened does not exist yet).
    fn counted(&self, query: &str, range: &str, count: Count) -> String {
        let events = self.events(query, range, count);
        match &self.indicator {
            Indicator::Ratio {
                counting: Counting::Counter | Counting::Gauge,
                ..
            } => format!("{events} or vector(0)"),
            _ => events,
        }
    }

    /// bad/total, or 1 - good/total.
    fn ratio_error(&self, range: &str, count: Count) -> Option<String> {
        let Indicator::Ratio {
            good, bad, total, ..
        } = &self.indicator
        else {
            return None;
        };
        let total = self.events(total, range, count);
        Some(match (bad, good) {
            (Some(bad), _) => format!("({}) / ({total})", self.counted(bad, range, count)),
            (None, Some(good)) => {
                format!("1 - (({}) / ({total}))", self.counted(good, range, count))
            }
            (None, None) => format!("({total}) * 0"),
        })
    }

    /// good/total, or 1 - bad/total.
    fn good_ratio(&self, range: &str, count: Count) -> Option<String> {
        let Indicator::Ratio {
            good, bad, total, ..
        } = &self.indicator
        else {
            return None;
        };
        let total = self.events(total, range, count);
        Some(match (good, bad) {
            (Some(good), _) => format!("({}) / ({total})", self.counted(good, range, count)),
            (None, Some(bad)) => format!("1 - (({}) / ({total}))", self.counted(bad, range, count)),
            (None, None) => format!("({total}) * 0 + 1"),
        })
    }
}

/// The share of samples of `value` (taken every `step` over `range`) for which `bad`
/// holds, among the samples with a value (not NaN). No bad sample is 0, not no data.
fn bad_share(bad: &str, value: &str, range: &str, step: &str) -> String {
    format!(
        "(sum(count_over_time(({bad})[{range}:{step}])) or vector(0)) / sum(count_over_time((({value}) >= -Inf)[{range}:{step}]))"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counter(budgeting: Budgeting) -> ServiceLevel {
        ServiceLevel {
            name: String::new(),
            indicator: Indicator::Ratio {
                good: None,
                bad: Some("errors_total".into()),
                total: "requests_total".into(),
                counting: Counting::Counter,
            },
            target: 0.99,
            window: Duration::from_secs(86_400),
            calendar: None,
            budgeting,
        }
    }

    #[test]
    fn counters_are_counted_with_increase_and_rate_and_summed() {
        let l = counter(Budgeting::Occurrences);
        assert_eq!(
            l.error_ratio_query("1d"),
            "(sum(increase(errors_total[1d])) or vector(0)) / (sum(increase(requests_total[1d])))"
        );
        assert_eq!(
            l.error_ratio_query_with("5m", Count::Rate),
            "(sum(rate(errors_total[5m])) or vector(0)) / (sum(rate(requests_total[5m])))"
        );
    }

    #[test]
    fn timeslices_count_bad_slices_among_slices_with_data() {
        let l = counter(Budgeting::Timeslices {
            slice: Duration::from_secs(60),
            slice_target: 0.95,
        });
        let good = "1 - ((sum(increase(errors_total[1m])) or vector(0)) / (sum(increase(requests_total[1m]))))";
        assert_eq!(
            l.error_ratio_query("1h"),
            format!(
                "(sum(count_over_time((({good}) < 0.95)[1h:1m])) or vector(0)) / sum(count_over_time((({good}) >= -Inf)[1h:1m]))"
            )
        );
    }

    #[test]
    fn thresholds_count_minutes_that_break_the_threshold() {
        let l = ServiceLevel {
            indicator: Indicator::Threshold {
                query: "latency_p95".into(),
                op: Op::Lt,
                value: 0.5,
            },
            ..counter(Budgeting::Occurrences)
        };
        assert_eq!(
            l.error_ratio_query("1d"),
            "(sum(count_over_time(((latency_p95) >= 0.5)[1d:1m])) or vector(0)) / sum(count_over_time(((latency_p95) >= -Inf)[1d:1m]))"
        );
    }
}
