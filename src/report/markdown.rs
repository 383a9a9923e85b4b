//! A Markdown summary of a run, written for a CI step summary (GitHub's
//! `$GITHUB_STEP_SUMMARY`, GitLab's and Buildkite's annotations): the outcome first, a
//! table of stages and steps, the evidence of every gate that did not pass, the release's
//! traffic steps and each SLI's last values, and the operator's actions.

use std::fmt::Write as _;

use super::Report;
use crate::events::Status;

/// Escapes text for a table cell: pipes and line breaks would end it, and HTML (an
/// error page in a summary, `<!--`) would be rendered or hide the rest.
fn cell(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('|', "\\|")
        .replace(['\n', '\r'], " ")
}

fn duration(ms: Option<i64>) -> String {
    match ms {
        None => "·".into(),
        Some(ms) if ms < 1_000 => format!("{ms} ms"),
        Some(ms) if ms < 60_000 => format!("{:.1} s", ms as f64 / 1000.0),
        Some(ms) => format!("{}m{:02}s", ms / 60_000, ms % 60_000 / 1000),
    }
}

/// The summary; `charts` are (SLI, file name) of the SVG charts written beside it.
pub fn render(r: &Report, charts: &[(String, String)]) -> String {
    let mut m = String::new();
    outcome(&mut m, r);
    steps(&mut m, r);
    evidence(&mut m, r);
    judgements(&mut m, r);
    if !r.traffic.is_empty() {
        traffic(&mut m, r);
    }
    if !r.analysis.is_empty() {
        if r.traffic.is_empty() {
            m.push('\n');
        }
        analysis(&mut m, r, charts);
    }
    if !r.operator_actions.is_empty() {
        operator_actions(&mut m, r);
    }
    m
}

/// The heading with the status, the reason, and the service, exit code and time.
fn outcome(m: &mut String, r: &Report) {
    let _ = writeln!(
        m,
        "## {} glidepath: {} run {} {}\n",
        r.status.glyph(),
        r.pipeline,
        r.run,
        r.status
    );
    if let Some(reason) = &r.reason {
        let _ = writeln!(m, "**{}**\n", cell(reason));
    }
    let _ = writeln!(
        m,
        "Service `{}` · exit code {} · {}{}\n",
        r.service,
        r.exit_code
            .map_or_else(|| "none yet".to_owned(), |c| c.to_string()),
        duration(r.finished_ms.zip(r.started_ms).map(|(f, s)| f - s)),
        if r.resumed > 0 {
            format!(" · resumed {} time(s)", r.resumed)
        } else {
            String::new()
        }
    );
}

/// Every step in a table.
fn steps(m: &mut String, r: &Report) {
    m.push_str("| Stage | Step | Kind | Status | Time | Summary |\n");
    m.push_str("|---|---|---|---|---|---|\n");
    for (stage, step) in r.steps() {
        let _ = writeln!(
            m,
            "| {} | {} | {} | {} {} | {} | {} |",
            cell(&stage.name),
            cell(&step.name),
            cell(&step.kind),
            step.status.glyph(),
            step.status,
            duration(step.duration_ms),
            cell(step.summary.as_deref().unwrap_or("")),
        );
    }
}

/// The checks of every step that failed, warned or was rolled back.
fn evidence(m: &mut String, r: &Report) {
    let judged = r.steps().filter(|(_, s)| {
        matches!(
            s.status,
            Status::Failed | Status::Warning | Status::RolledBack
        ) && !s.evidence.is_empty()
    });
    for (stage, step) in judged {
        let _ = writeln!(
            m,
            "\n### {} {}/{}\n",
            step.status.glyph(),
            stage.name,
            step.name
        );
        m.push_str("| Check | Value | Expected | Verdict |\n|---|---|---|---|\n");
        for e in &step.evidence {
            let _ = writeln!(
                m,
                "| {} | {} | {} | {} {} |",
                cell(&e.check),
                cell(e.value.as_deref().unwrap_or("no value")),
                cell(e.expected.as_deref().unwrap_or("")),
                e.verdict.glyph(),
                e.verdict
            );
        }
    }
}

/// The statistical judge's comparisons behind each step's verdict: baseline and canary side
/// by side, the test, and the threshold that decided.
fn judgements(m: &mut String, r: &Report) {
    for (stage, step) in r.steps() {
        let compared: Vec<_> = step
            .evidence
            .iter()
            .filter_map(|e| e.comparison.as_deref())
            .collect();
        if compared.is_empty() {
            continue;
        }
        let _ = writeln!(
            m,
            "\n### Statistical judgement of {}/{}\n",
            stage.name, step.name
        );
        m.push_str("| Metric | Baseline (n, mean, median, p95) | Canary (n, mean, median, p95) | Test | Threshold | Verdict |\n|---|---|---|---|---|---|\n");
        for c in compared {
            let _ = writeln!(
                m,
                "| {} | {} | {} | {} | {} | {} {} |",
                cell(&c.metric),
                cell(&sample_cell(&c.baseline)),
                cell(&sample_cell(&c.canary)),
                cell(&c.test_line()),
                cell(&c.threshold),
                c.verdict.glyph(),
                cell(&c.classification)
            );
        }
    }
}

/// `n 30, mean 81.2, median 80, p95 97.5` of one side's sample.
pub fn sample_cell(s: &crate::events::SampleFacts) -> String {
    let v = |x: Option<f64>| x.map_or("-".to_owned(), crate::judge::show);
    format!(
        "n {}, mean {}, median {}, p95 {}",
        s.count,
        v(s.mean),
        v(s.median),
        v(s.p95)
    )
}

/// Each release's traffic steps, in order.
fn traffic(m: &mut String, r: &Report) {
    m.push_str("\n### Release\n\n");
    let mut releases: Vec<&str> = r.traffic.iter().map(|t| t.step.as_str()).collect();
    releases.dedup();
    for release in releases {
        let steps: Vec<String> = r
            .traffic
            .iter()
            .filter(|t| t.step == release)
            .map(|t| format!("{}%", t.weight))
            .collect();
        let _ = writeln!(
            m,
            "Traffic on the new version ({}): {}\n",
            cell(release),
            steps.join(" → ")
        );
    }
}

/// Each analysed SLI's last values against its criteria, then the charts.
fn analysis(m: &mut String, r: &Report, charts: &[(String, String)]) {
    m.push_str("| Release | SLI | Last (new) | Last (stable) | Pass | Warning | Analyses |\n");
    m.push_str("|---|---|---|---|---|---|---|\n");
    let show = |v: Option<f64>| v.map_or_else(|| "no data".to_owned(), |v| format!("{v:.4}"));
    for s in &r.analysis {
        let last = s.points.last();
        let _ = writeln!(
            m,
            "| {} | {} | {} | {} | {} | {} | {} |",
            cell(&s.step),
            cell(&s.sli),
            show(last.and_then(|p| p.new)),
            show(last.and_then(|p| p.stable)),
            cell(s.pass.as_deref().unwrap_or("")),
            cell(s.warning.as_deref().unwrap_or("")),
            s.points.len()
        );
    }
    if !charts.is_empty() {
        m.push('\n');
        for (sli, file) in charts {
            let alt = sli.replace(['[', ']'], "");
            let _ = writeln!(m, "![{alt}]({file})");
        }
    }
}

/// Operator commands, with why a refused one was refused.
fn operator_actions(m: &mut String, r: &Report) {
    m.push_str("\n### Operator actions\n\n");
    for a in &r.operator_actions {
        let _ = writeln!(
            m,
            "- {} UTC: {} by {}{}",
            crate::events::clock(a.at_ms),
            a.command.word(),
            cell(&a.who),
            match (&a.accepted, &a.reason) {
                (true, Some(note)) => format!(" ({})", cell(note)),
                (true, None) => String::new(),
                (false, Some(why)) => format!(" (refused: {})", cell(why)),
                (false, None) => " (refused)".into(),
            }
        );
    }
}
