//! Values a file can hold that serde accepts but a run cannot use: durations that must be
//! above zero (a `0s` analysis interval queries Prometheus in a busy loop, a `0s` timeout
//! fails a step before it starts) and canary weights that must rise.
//!
//! Duration rules are rows of [`DURATION_RULES`], matched against where a value sits in the
//! templated YAML tree, so a new field gets its check by adding a row. Pauses and delays
//! are not listed: waiting zero is harmless.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use super::model::CanaryStep;
use crate::slo::queries::{self, Fills, Part};
use crate::units::{format_duration, parse_duration};
use crate::yaml::{self, LoadError, Node, Pos, Spanned, Value};

/// A duration field and the least value a run can use.
struct DurationRule {
    /// Where the field sits: the end of its path, keys joined by `.`, `[]` for any item
    /// of a list (`analysis.interval` matches under canary and blue-green alike).
    path: &'static str,
    /// The least value accepted.
    min: Duration,
    /// What a smaller value would do, for the message.
    why: &'static str,
    /// A value to suggest.
    example: &'static str,
}

const ABOVE_ZERO: Duration = Duration::from_millis(1);

/// Every duration with a floor. Durations are never negative: the parser refuses a sign.
const DURATION_RULES: &[DurationRule] = &[
    DurationRule {
        path: "steps.[].timeout",
        min: ABOVE_ZERO,
        why: "the step would fail before it starts; leave `timeout` out for no limit",
        example: "10m",
    },
    DurationRule {
        path: "parallel.[].timeout",
        min: ABOVE_ZERO,
        why: "the step would fail before it starts; leave `timeout` out for no limit",
        example: "10m",
    },
    DurationRule {
        path: "stages.[].timeout",
        min: ABOVE_ZERO,
        why: "the stage would fail before it starts; leave `timeout` out for no limit",
        example: "1h",
    },
    DurationRule {
        path: "spec.timeout",
        min: ABOVE_ZERO,
        why: "the run would fail before it starts; leave `timeout` out for no limit",
        example: "2h",
    },
    DurationRule {
        path: "waitFor.timeout",
        min: ABOVE_ZERO,
        why: "nothing becomes ready in no time, so the step would always fail",
        example: "5m",
    },
    DurationRule {
        path: "analysis.interval",
        min: Duration::from_secs(1),
        why: "analysis would query Prometheus in a busy loop, faster than it scrapes",
        example: "30s",
    },
    DurationRule {
        path: "evaluate.window",
        min: ABOVE_ZERO,
        why: "a range of zero selects no samples, so every SLI would be no data",
        example: "5m",
    },
    DurationRule {
        path: "chaos.interval",
        min: ABOVE_ZERO,
        why: "pods would be deleted in a busy loop",
        example: "30s",
    },
    DurationRule {
        path: "chaos.duration",
        min: ABOVE_ZERO,
        why: "chaos that lasts no time kills nothing",
        example: "2m",
    },
    DurationRule {
        path: "load.duration",
        min: ABOVE_ZERO,
        why: "a load test that lasts no time measures nothing",
        example: "1m",
    },
    DurationRule {
        path: "load.timeout",
        min: ABOVE_ZERO,
        why: "every request would time out",
        example: "10s",
    },
    DurationRule {
        path: "notify.[].timeout",
        min: ABOVE_ZERO,
        why: "every webhook call would time out",
        example: "5s",
    },
    DurationRule {
        path: "prometheus.timeout",
        min: ABOVE_ZERO,
        why: "every query would time out",
        example: "10s",
    },
    DurationRule {
        path: "defaults.timeout",
        min: ABOVE_ZERO,
        why: "every request would time out",
        example: "10s",
    },
    DurationRule {
        path: "checks.[].timeout",
        min: ABOVE_ZERO,
        why: "the request would time out",
        example: "10s",
    },
    DurationRule {
        path: "expect.maxLatency",
        min: ABOVE_ZERO,
        why: "no answer arrives in no time, so the check would always fail",
        example: "500ms",
    },
];

/// Checks every duration of a templated tree (a pipeline or a smoke suite) against
/// [`DURATION_RULES`]. Values that are not durations are left to serde, which says so.
pub fn durations(root: &Node) -> Result<(), yaml::Error> {
    let mut path = Vec::new();
    walk(root, &mut path)
}

fn walk<'a>(node: &'a Node, path: &mut Vec<&'a str>) -> Result<(), yaml::Error> {
    match &node.value {
        Value::Scalar { text, .. } => duration_at(path, text, node.pos),
        Value::Seq(items) => items.iter().try_for_each(|item| {
            path.push("[]");
            let r = walk(item, path);
            path.pop();
            r
        }),
        Value::Map(entries) => entries.iter().try_for_each(|(k, v)| {
            path.push(k.as_str().unwrap_or_default());
            let r = walk(v, path);
            path.pop();
            r
        }),
    }
}

fn duration_at(path: &[&str], text: &str, pos: Pos) -> Result<(), yaml::Error> {
    let Some(rule) = DURATION_RULES.iter().find(|r| ends_with(path, r.path)) else {
        return Ok(());
    };
    let Ok(value) = parse_duration(text) else {
        return Ok(());
    };
    if value >= rule.min {
        return Ok(());
    }
    let key = path.last().copied().unwrap_or_default();
    let problem = if value.is_zero() {
        "is zero".to_owned()
    } else {
        format!("is shorter than {}", format_duration(rule.min))
    };
    Err(yaml::Error::at(
        pos,
        format!(
            "`{key}: {}` {problem}: {}; give a duration such as `{}`",
            text.trim(),
            rule.why,
            rule.example
        ),
    ))
}

/// Whether `path` ends with the segments of `pattern`.
fn ends_with(path: &[&str], pattern: &str) -> bool {
    let want: Vec<&str> = pattern.split('.').collect();
    path.len() >= want.len() && path[path.len() - want.len()..] == want[..]
}

/// With a baseline (the statistical judge), the baseline takes as much traffic as the
/// canary, from stable: a canary weight above 50 leaves the baseline less than the canary.
pub fn baseline_weights(steps: &[Spanned<CanaryStep>]) -> Result<(), (Pos, String)> {
    match steps
        .iter()
        .find(|s| s.value.weight.is_some_and(|w| w > 50))
    {
        Some(s) => Err((
            s.pos,
            format!(
                "weight {} is over 50: with `judge: statistical` a baseline of the stable version takes as much traffic as the canary; end the canary at 50 or below (it is promoted after the judgement there)",
                s.value.weight.unwrap_or_default()
            ),
        )),
        None => Ok(()),
    }
}

/// Canary weights: each from 1 to 100, each above the one before. After the last step the
/// canary is promoted to all traffic, so the last weight need not be 100.
pub fn canary_weights(steps: &[Spanned<CanaryStep>]) -> Result<(), (Pos, String)> {
    let mut previous: Option<u8> = None;
    for step in steps {
        let Some(w) = step.value.weight else {
            continue;
        };
        if !(1..=100).contains(&w) {
            let zero = if w == 0 {
                " (a canary starts with no traffic; a rollback, not a weight of 0, takes it back)"
            } else {
                ""
            };
            return Err((
                step.pos,
                format!("weight {w} is out of range; expected 1 to 100{zero}"),
            ));
        }
        if let Some(p) = previous
            && w <= p
        {
            return Err((
                step.pos,
                format!(
                    "weight {w} does not rise from the step before ({p}); canary weights go up, and a rollback (not a smaller weight) takes traffic back"
                ),
            ));
        }
        previous = Some(w);
    }
    Ok(())
}

/// The variables a stage fills in SLO queries besides the pipeline's own and `--set`:
/// see [`super::Pipeline::query_vars`]; `window` is always filled.
pub const STAGE_VARIABLES: [&str; 3] = ["service", "stage", "namespace"];

/// Parses every query of an SLO file a step uses (`slo`, with Keptn's `sli`), with `names`
/// the variables that will be filled in the `used` part; an error is in the SLO file and says which step of
/// `pipeline` uses it.
pub fn slo_queries(
    pipeline: &Path,
    base_dir: &Path,
    slo: &Spanned<String>,
    sli: Option<&Spanned<String>>,
    names: &BTreeSet<String>,
    used: Part,
) -> Result<(), LoadError> {
    let sli = sli.map(|s| base_dir.join(&s.value));
    let fills = Fills::Only {
        names,
        hint: "define NAME under spec.variables, or pass --set NAME=VALUE",
    };
    queries::check_file(&base_dir.join(&slo.value), sli.as_deref(), fills, used).map_err(|mut e| {
        e.message = format!("{} (used at {}:{})", e.message, pipeline.display(), slo.pos);
        e
    })
}

/// Every `${name}` in the manifests a step applies (files, or folders of `.yaml`, `.yml`
/// and `.json`) is one the stage fills, `names`; `$${` is a literal `${`. The error is in
/// the manifest and says where the pipeline names it.
pub fn manifest_templates(
    pipeline: &Path,
    base_dir: &Path,
    manifests: &[Spanned<String>],
    names: &BTreeSet<String>,
) -> Result<(), LoadError> {
    for m in manifests {
        let full = base_dir.join(&m.value);
        let files: Vec<std::path::PathBuf> = if full.is_dir() {
            let mut found: Vec<_> = std::fs::read_dir(&full)
                .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
                .unwrap_or_default();
            found.retain(|p: &std::path::PathBuf| {
                matches!(
                    p.extension().and_then(|e| e.to_str()),
                    Some("yaml" | "yml" | "json")
                )
            });
            found.sort();
            found
        } else {
            vec![full]
        };
        for file in files {
            // Unreadable files are the apply step's to report, with its own words.
            let Ok(text) = crate::input::read_text(&file) else {
                continue;
            };
            if let Some((pos, name)) = unknown_template(&text, names) {
                return Err(LoadError {
                    file,
                    pos: Some(pos),
                    message: format!(
                        "`${{{name}}}` is filled by nothing, so it would be applied as written; known: {}; define {name} under spec.variables or pass --set {name}=VALUE, or write `$${{` for a literal `${{` (used at {}:{})",
                        names
                            .iter()
                            .map(String::as_str)
                            .collect::<Vec<_>>()
                            .join(", "),
                        pipeline.display(),
                        m.pos
                    ),
                });
            }
        }
    }
    Ok(())
}

/// The first `${name}` of `text` whose name is not in `names`, with its line and column.
fn unknown_template(text: &str, names: &BTreeSet<String>) -> Option<(Pos, String)> {
    for (n, line) in text.lines().enumerate() {
        let mut from = 0;
        while let Some(i) = line[from..].find("${").map(|i| i + from) {
            from = i + 2;
            if line[..i].ends_with('$') {
                continue;
            }
            let rest = &line[i + 2..];
            let name = rest.find('}').map_or(rest, |end| &rest[..end]).trim();
            if !names.contains(name) {
                let col = line[..i].chars().count() + 1;
                return Some((Pos { line: n + 1, col }, name.to_owned()));
            }
        }
    }
    None
}

/// The most distinct approvers a step may ask for.
const MAX_APPROVERS: u32 = 50;

/// Approval rules (of a step or a stage): entries are names or `group:NAME`, and
/// `minApprovers` is between 1 and 50 and no more than the names listed when no group is
/// listed.
pub fn approval_rules(
    approvers: &[Spanned<String>],
    min: Option<&Spanned<u32>>,
) -> Result<(), (Pos, String)> {
    for e in approvers {
        let name = e.value.strip_prefix("group:").unwrap_or(&e.value);
        if name.trim().is_empty() || name.trim() != name {
            return Err((
                e.pos,
                format!(
                    "approver `{}` is empty or has spaces around it; write a user name or `group:NAME`",
                    e.value
                ),
            ));
        }
    }
    let Some(min) = min else {
        return Ok(());
    };
    if !(1..=MAX_APPROVERS).contains(&min.value) {
        return Err((
            min.pos,
            format!(
                "minApprovers is {}; it must be between 1 and {MAX_APPROVERS}",
                min.value
            ),
        ));
    }
    let groups = approvers.iter().any(|e| e.value.starts_with("group:"));
    let names: BTreeSet<&str> = approvers.iter().map(|e| e.value.as_str()).collect();
    if !approvers.is_empty() && !groups && names.len() < min.value as usize {
        return Err((
            min.pos,
            format!(
                "minApprovers is {} but only {} approver(s) are listed, so it could never be met; list more approvers or a `group:`",
                min.value,
                names.len()
            ),
        ));
    }
    Ok(())
}

/// `spec.groups`: every member is a non-empty name.
pub fn approver_groups(
    groups: &std::collections::BTreeMap<String, Vec<Spanned<String>>>,
) -> Result<(), (Pos, String)> {
    for (group, members) in groups {
        for m in members {
            if m.value.trim().is_empty() || m.value.starts_with("group:") {
                return Err((
                    m.pos,
                    format!("a member of group `{group}` must be a user name (groups do not nest)"),
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str) -> Result<(), String> {
        let node = yaml::parse_one(text).unwrap();
        durations(&node).map_err(|e| e.to_string())
    }

    #[test]
    fn zero_timeouts_and_intervals_are_refused_where_they_are_written() {
        let e = check("spec:\n  stages:\n    - steps:\n        - timeout: 0s\n").unwrap_err();
        assert_eq!(
            e,
            "4:20: `timeout: 0s` is zero: the step would fail before it starts; leave `timeout` out for no limit; give a duration such as `10m`"
        );
        let e = check("release:\n  canary:\n    analysis: { slo: s.yaml, interval: 0s }\n")
            .unwrap_err();
        assert!(
            e.starts_with("3:40: `interval: 0s` is zero: analysis"),
            "{e}"
        );
        let e = check("blueGreen:\n  analysis: { interval: 500ms }\n").unwrap_err();
        assert!(e.contains("`interval: 500ms` is shorter than 1s"), "{e}");
        let e = check("infra: { waitFor: { timeout: 0ms } }\n").unwrap_err();
        assert!(e.starts_with("1:30: `timeout: 0ms` is zero"), "{e}");
        let e = check("test: { load: { url: \"http://x/\", duration: 0s } }\n").unwrap_err();
        assert!(
            e.starts_with("1:45: `duration: 0s` is zero: a load test"),
            "{e}"
        );
        let e = check("parallel:\n  - timeout: 0s\n").unwrap_err();
        assert!(e.starts_with("2:14:"), "{e}");
    }

    #[test]
    fn zero_pauses_and_good_durations_pass() {
        check("steps:\n  - pause: 0s\n  - timeout: 1ms\n").unwrap();
        check("canary: { steps: [ { pause: 0s } ], analysis: { interval: 1s } }\n").unwrap();
        check("blueGreen: { scaleDownDelay: 0s }\ndefaults: { backoff: 0s }\n").unwrap();
        // Not a duration: serde's message, not this one, explains it.
        check("steps:\n  - timeout: soon\n").unwrap();
        // A key named like a rule's last segment elsewhere is not that field.
        check("headers: { timeout: 0s }\n").unwrap();
    }

    #[test]
    fn unknown_templates_in_manifests_are_found_with_their_position() {
        let names = BTreeSet::from(["version".to_owned(), "namespace".to_owned()]);
        let text =
            "kind: Deployment\nimage: shop:${version}\nargs: [\"$${HOME}\", \"${versoin}\"]\n";
        assert_eq!(
            unknown_template(text, &names),
            Some((Pos { line: 3, col: 21 }, "versoin".to_owned()))
        );
        assert_eq!(unknown_template("a: ${version} $${x}\n", &names), None);
    }

    fn weights(ws: &[u8]) -> Result<(), (Pos, String)> {
        let steps: Vec<Spanned<CanaryStep>> = ws
            .iter()
            .enumerate()
            .map(|(i, w)| Spanned {
                pos: Pos {
                    line: i + 1,
                    col: 7,
                },
                value: CanaryStep {
                    weight: Some(*w),
                    pause: None,
                },
            })
            .collect();
        canary_weights(&steps)
    }

    #[test]
    fn canary_weights_rise_from_1_to_100() {
        weights(&[10, 50, 100]).unwrap();
        weights(&[5, 20]).unwrap();
        let (pos, m) = weights(&[50, 20, 0]).unwrap_err();
        assert_eq!(pos.line, 2);
        assert!(
            m.starts_with("weight 20 does not rise from the step before (50)"),
            "{m}"
        );
        let (pos, m) = weights(&[0, 10]).unwrap_err();
        assert_eq!(pos.line, 1);
        assert!(
            m.starts_with("weight 0 is out of range; expected 1 to 100"),
            "{m}"
        );
        let (_, m) = weights(&[10, 10]).unwrap_err();
        assert!(m.starts_with("weight 10 does not rise"), "{m}");
        let (pos, _) = weights(&[10, 101]).unwrap_err();
        assert_eq!(pos.line, 2);
    }
}
