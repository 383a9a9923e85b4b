//! The promotion rules of a release's analysis as pure decisions over a sequence of
//! verdicts: the release step applies them as its evaluations arrive, and `glidepath
//! replay` applies them again to a past run's evaluations decided with other SLOs.

use std::fmt;

use crate::events::Verdict;
use crate::pipeline::model::{Analysis, PromoteOn};

/// Evaluations a canary's judgement makes before it may promote.
pub const CANARY_FRESH: u32 = 1;
/// Evaluations a blue-green's judgement makes before it may switch.
pub const BLUE_GREEN_FRESH: u32 = 3;

/// What an analysis tolerates and what promotes, as the pipeline sets them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Rules {
    /// Failed evaluations tolerated (`failureLimit`).
    pub failure_limit: u32,
    /// Inconclusive evaluations tolerated (`inconclusiveLimit`).
    pub inconclusive_limit: u32,
    /// `promoteOn` lists `warning`.
    pub warning_promotes: bool,
}

impl Rules {
    /// The rules of a pipeline's analysis.
    pub fn of(a: &Analysis) -> Rules {
        Rules {
            failure_limit: a.failure_limit.unwrap_or(0),
            inconclusive_limit: a.inconclusive_limit.unwrap_or(0),
            warning_promotes: a.promote_on.contains(&PromoteOn::Warning),
        }
    }
}

/// A limit the evaluations went past: the release is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// More failed evaluations than `failureLimit`.
    Failures { count: u32, limit: u32 },
    /// More inconclusive evaluations than `inconclusiveLimit`.
    Inconclusive { count: u32, limit: u32 },
}

impl fmt::Display for Limit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Limit::Failures { count, limit } => {
                write!(f, "analysis failed {count} times (limit {limit})")
            }
            Limit::Inconclusive { count, limit } => {
                write!(f, "analysis inconclusive {count} times (limit {limit})")
            }
        }
    }
}

/// The evaluations so far, across every part of the release.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Tally {
    /// Evaluations made.
    pub made: u32,
    /// Of them, failed.
    pub failed: u32,
    /// Of them, inconclusive (no data, or Prometheus failed).
    pub inconclusive: u32,
    /// The verdict of the latest evaluation (`Error` when it could not measure).
    pub latest: Option<Verdict>,
}

impl Tally {
    /// The tally of these verdicts, in order.
    pub fn of(verdicts: impl IntoIterator<Item = Verdict>) -> Tally {
        let mut t = Tally::default();
        for v in verdicts {
            t.add(v);
        }
        t
    }

    /// Counts one evaluation's verdict.
    pub fn add(&mut self, verdict: Verdict) {
        self.made += 1;
        self.latest = Some(verdict);
        match verdict {
            Verdict::Fail => self.failed += 1,
            Verdict::Error => self.inconclusive += 1,
            Verdict::Pass | Verdict::Warning => {}
        }
    }

    /// The limit the latest evaluation took the release past, if any: a failure beyond
    /// `failureLimit`, or an inconclusive result beyond `inconclusiveLimit`. Only the
    /// evaluation that crosses a limit refuses; a pass after earlier failures does not.
    pub fn past_limit(&self, rules: &Rules) -> Option<Limit> {
        match self.latest? {
            Verdict::Fail if self.failed > rules.failure_limit => Some(Limit::Failures {
                count: self.failed,
                limit: rules.failure_limit,
            }),
            Verdict::Error if self.inconclusive > rules.inconclusive_limit => {
                Some(Limit::Inconclusive {
                    count: self.inconclusive,
                    limit: rules.inconclusive_limit,
                })
            }
            _ => None,
        }
    }

    /// The verdict that lets a judgement promote, when the latest evaluation does:
    /// `pass`, or `warning` when `promoteOn` lists it. A warning otherwise holds the
    /// release for the operator.
    pub fn clears(&self, rules: &Rules) -> Option<Verdict> {
        match self.latest? {
            Verdict::Pass => Some(Verdict::Pass),
            Verdict::Warning if rules.warning_promotes => Some(Verdict::Warning),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Verdict::{Error, Fail, Pass, Warning};

    #[test]
    fn only_the_evaluation_that_crosses_a_limit_refuses() {
        let rules = Rules {
            failure_limit: 1,
            inconclusive_limit: 2,
            warning_promotes: false,
        };
        let mut t = Tally::of([Fail]);
        assert_eq!(t.past_limit(&rules), None, "one failure is tolerated");
        t.add(Pass);
        assert_eq!(t.past_limit(&rules), None, "a pass never refuses");
        t.add(Fail);
        assert_eq!(
            t.past_limit(&rules),
            Some(Limit::Failures { count: 2, limit: 1 })
        );
        assert_eq!(
            t.past_limit(&rules).map(|l| l.to_string()).as_deref(),
            Some("analysis failed 2 times (limit 1)")
        );
        let t = Tally::of([Error, Error, Error]);
        assert_eq!(
            t.past_limit(&rules),
            Some(Limit::Inconclusive { count: 3, limit: 2 })
        );
    }

    #[test]
    fn a_warning_promotes_only_when_promote_on_lists_it() {
        let strict = Rules::default();
        let lenient = Rules {
            warning_promotes: true,
            ..strict
        };
        assert_eq!(Tally::of([Fail, Pass]).clears(&strict), Some(Pass));
        assert_eq!(Tally::of([Warning]).clears(&strict), None);
        assert_eq!(Tally::of([Warning]).clears(&lenient), Some(Warning));
        assert_eq!(Tally::of([Pass, Error]).clears(&lenient), None);
        assert_eq!(Tally::default().clears(&lenient), None);
    }
}
