//! JUnit XML, as Jenkins, GitLab, GitHub Actions test reporters and most CI systems read
//! it: `<testsuites>` with one `<testsuite>` per stage and one `<testcase>` per step. A
//! failed gate is a `<failure>` whose message is the step's summary and whose text is its
//! evidence; a step whose check could not be made (verdict `error`: Prometheus
//! unreachable, no data) or that was aborted is an `<error>`; a step that did not run is
//! `<skipped>`.

use std::fmt::Write as _;

use super::{Report, StepReport};
use crate::events::{Evidence, Status};

/// Escapes text for XML attributes and content; characters XML 1.0 cannot carry (most
/// control characters) are dropped.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => {}
            c => out.push(c),
        }
    }
    out
}

/// What a step counts as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Passed,
    Failed,
    Error,
    Skipped,
}

fn outcome(step: &StepReport) -> Outcome {
    // A verdict of `error` is a check that could not be made (Prometheus unreachable,
    // no data): an error, not a failure of the service.
    if step.verdict == Some(crate::events::Verdict::Error) {
        return Outcome::Error;
    }
    match step.status {
        Status::Passed | Status::Warning => Outcome::Passed,
        Status::Failed | Status::RolledBack => Outcome::Failed,
        Status::Aborted => Outcome::Error,
        // Never finished: the run stopped before it, or is still going.
        Status::Pending
        | Status::Skipped
        | Status::Running
        | Status::WaitingForApproval
        | Status::Paused
        | Status::Refused
        | Status::Interrupted => Outcome::Skipped,
    }
}

fn seconds(ms: Option<i64>) -> String {
    format!("{:.3}", ms.unwrap_or(0).max(0) as f64 / 1000.0)
}

/// An ISO 8601 timestamp (UTC, no offset, as the JUnit schema writes it).
fn timestamp(ms: Option<i64>) -> Option<String> {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms?) * 1_000_000).ok()?;
    let f = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]");
    t.format(&f).ok()
}

/// One line per piece of evidence: `✗ check: value (expected …) [query]`.
pub fn evidence_text(evidence: &[Evidence]) -> String {
    let mut out = String::new();
    for e in evidence {
        let _ = write!(
            out,
            "{} {}: {}",
            e.verdict.glyph(),
            e.check,
            e.value.as_deref().unwrap_or("no value")
        );
        if let Some(x) = &e.expected {
            let _ = write!(out, " (expected {x})");
        }
        if let Some(d) = &e.detail {
            let _ = write!(out, "; {d}");
        }
        if let Some(q) = &e.query {
            let _ = write!(out, "\n    query: {q}");
        }
        if let Some(c) = &e.comparison {
            let _ = write!(
                out,
                "\n    baseline: {}\n    canary:   {}",
                crate::report::markdown::sample_cell(&c.baseline),
                crate::report::markdown::sample_cell(&c.canary)
            );
        }
        out.push('\n');
    }
    out
}

/// The report as JUnit XML.
pub fn render(r: &Report) -> String {
    let count = |steps: &mut dyn Iterator<Item = &StepReport>| {
        let mut n = [0usize; 4];
        for s in steps {
            n[outcome(s) as usize] += 1;
        }
        n
    };
    let all = count(&mut r.steps().map(|(_, s)| s));
    let total: usize = all.iter().sum();
    let mut x = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    // No `skipped` on <testsuites>: the JUnit schema Jenkins validates with refuses it; each
    // <testsuite> carries its own.
    let _ = writeln!(
        x,
        "<testsuites name=\"{}\" tests=\"{total}\" failures=\"{}\" errors=\"{}\" time=\"{}\">",
        escape(&format!("{} run {}", r.pipeline, r.run)),
        all[Outcome::Failed as usize],
        all[Outcome::Error as usize],
        seconds(r.finished_ms.zip(r.started_ms).map(|(f, s)| f - s)),
    );
    for (i, stage) in r.stages.iter().enumerate() {
        let n = count(&mut stage.steps.iter());
        let _ = write!(
            x,
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" errors=\"{}\" skipped=\"{}\" time=\"{}\"",
            escape(&stage.name),
            stage.steps.len(),
            n[Outcome::Failed as usize],
            n[Outcome::Error as usize],
            n[Outcome::Skipped as usize],
            seconds(stage.finished_ms.zip(stage.started_ms).map(|(f, s)| f - s)),
        );
        if let Some(t) = timestamp(stage.started_ms) {
            let _ = write!(x, " timestamp=\"{t}\"");
        }
        x.push_str(">\n");
        if i == 0 {
            operator_properties(&mut x, r);
        }
        for step in &stage.steps {
            let _ = write!(
                x,
                "    <testcase name=\"{}\" classname=\"{}\" time=\"{}\"",
                escape(&step.name),
                escape(&format!("{}.{}", r.service, stage.name)),
                seconds(step.duration_ms),
            );
            let summary = step.summary.as_deref().unwrap_or_default();
            let evidence = evidence_text(&step.evidence);
            match outcome(step) {
                Outcome::Passed if summary.is_empty() && evidence.is_empty() => {
                    x.push_str("/>\n");
                    continue;
                }
                Outcome::Passed => x.push_str(">\n"),
                Outcome::Failed | Outcome::Error => {
                    let tag = if outcome(step) == Outcome::Failed {
                        "failure"
                    } else {
                        "error"
                    };
                    let _ = writeln!(
                        x,
                        ">\n      <{tag} message=\"{}\" type=\"{}\">{}</{tag}>",
                        escape(summary),
                        escape(&step.kind),
                        escape(&evidence),
                    );
                }
                Outcome::Skipped => {
                    let why = match step.status {
                        Status::Skipped | Status::Pending => "not run: the run stopped before it",
                        _ => "not finished when the report was written",
                    };
                    let _ = writeln!(x, ">\n      <skipped message=\"{why}\"/>");
                }
            }
            let out = match (summary.is_empty(), evidence.is_empty()) {
                (false, false) => format!("{summary}\n{evidence}"),
                (false, true) => summary.to_owned(),
                _ => evidence,
            };
            if !out.is_empty() {
                let _ = writeln!(x, "      <system-out>{}</system-out>", escape(&out));
            }
            x.push_str("    </testcase>\n");
        }
        x.push_str("  </testsuite>\n");
    }
    x.push_str("</testsuites>\n");
    x
}

/// The run's operator actions (who approved, paused, promoted, rolled back, and when), as
/// `<properties>` of the first suite: JUnit has no run-level place, and readers show these.
fn operator_properties(x: &mut String, r: &Report) {
    if r.operator_actions.is_empty() {
        return;
    }
    x.push_str("    <properties>\n");
    for (n, a) in r.operator_actions.iter().enumerate() {
        let outcome = match (a.accepted, &a.reason) {
            (true, None) => "accepted".to_owned(),
            (true, Some(note)) => format!("accepted: {note}"),
            (false, reason) => format!("refused: {}", reason.as_deref().unwrap_or("")),
        };
        let _ = writeln!(
            x,
            "      <property name=\"operator.{}\" value=\"{}\"/>",
            n + 1,
            escape(&format!(
                "{} {} by {} ({outcome})",
                timestamp(Some(a.at_ms)).unwrap_or_default(),
                a.command.word(),
                a.who
            )),
        );
    }
    x.push_str("    </properties>\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::{Envelope, Event, StagePlan, StepPlan, Verdict};

    fn at(seq: u64, at_ms: i64, event: Event) -> Envelope {
        Envelope {
            run: 7,
            seq,
            at_ms,
            event,
        }
    }

    #[test]
    fn outcomes_map_to_failure_error_and_skipped_and_text_is_escaped() {
        let plan = |name: &str| StepPlan {
            name: name.into(),
            kind: "command".into(),
            description: String::new(),
            group: None,
        };
        let finished = |seq, step: &str, status, summary: &str| {
            at(
                seq,
                seq as i64 * 1000,
                Event::StepFinished {
                    stage: "build".into(),
                    step: step.into(),
                    status,
                    verdict: Some(Verdict::Fail),
                    summary: summary.into(),
                    evidence: vec![
                        Evidence::new("exit <code> & \"status\"", Verdict::Fail, "1\u{1b}[31m")
                            .expected("0"),
                    ],
                    evaluation: None,
                },
            )
        };
        let events = vec![
            at(
                1,
                0,
                Event::RunStarted {
                    pipeline: "p".into(),
                    service: "svc".into(),
                    stages: vec![StagePlan {
                        name: "build".into(),
                        steps: vec![plan("a"), plan("b"), plan("c")],
                    }],
                    resumed: false,
                },
            ),
            finished(2, "a", Status::Failed, "a <failed>"),
            finished(3, "b", Status::Aborted, "cluster unreachable"),
        ];
        let r = Report::from_events(7, &events);
        let x = render(&r);
        assert!(
            x.contains(r#"tests="3" failures="1" errors="1" skipped="1""#),
            "{x}"
        );
        assert!(
            x.contains(r#"<failure message="a &lt;failed&gt;" type="command">"#),
            "{x}"
        );
        assert!(x.contains(r#"<error message="cluster unreachable""#), "{x}");
        assert!(
            x.contains("exit &lt;code&gt; &amp; &quot;status&quot;"),
            "{x}"
        );
        assert!(!x.contains('\u{1b}'), "control characters cannot be in XML");
        assert!(
            x.contains(r#"<testcase name="c" classname="svc.build" time="0.000">"#),
            "{x}"
        );
        assert!(
            x.contains("<skipped message=\"not run: the run stopped before it\"/>"),
            "{x}"
        );
    }
}
