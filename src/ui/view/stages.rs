//! The stages pane (each stage and step with its state and time) and the pre-flight pane
//! (failing checks first).

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};

use super::{duration, pane};
use crate::events::{Status, Verdict};
use crate::ui::app::{App, Pane};
use crate::ui::state::{StageView, StepView};

/// Each stage with its steps, the selected step in view; what the engine waits for (or
/// how the run ended) on the bottom border.
pub(super) fn draw_stages(frame: &mut Frame, app: &App, area: Rect) {
    let t = &app.theme;
    let run = &app.run;
    let selected = app.selection();
    let mut lines: Vec<Line> = Vec::new();
    let mut selected_line = 0;
    let width = area.width.saturating_sub(2) as usize;
    for (i, stage) in run.stages.iter().enumerate() {
        lines.push(stage_line(app, stage, width));
        for (j, step) in stage.steps.iter().enumerate() {
            let mut line = step_line(app, step, width);
            if selected == Some((i, j)) {
                selected_line = lines.len();
                line = line.style(t.selected());
            }
            lines.push(line);
        }
    }
    // What the engine waits for (or how the run ended) sits on the frame, always in view.
    let mut block = pane(app, " Stages ", app.focus == Pane::Stages);
    if let Some(next) = run.waiting_for() {
        block = block.title_bottom(Line::from(Span::styled(
            format!(" next: {next} "),
            t.status(Status::Paused),
        )));
    } else if let (true, Some(reason)) = (run.ended(), &run.reason) {
        block = block.title_bottom(Line::from(Span::styled(
            format!(" {} {} ", run.status.glyph(), reason),
            t.status(run.status),
        )));
    }
    let inner = area.height.saturating_sub(2) as usize;
    let skip = (selected_line + 1).saturating_sub(inner);
    frame.render_widget(
        Paragraph::new(lines).block(block).scroll((skip as u16, 0)),
        area,
    );
}

/// How long something took, or has been running; nothing before it starts.
fn took(app: &App, started_ms: Option<i64>, finished_ms: Option<i64>) -> String {
    match (started_ms, finished_ms) {
        (Some(s), Some(f)) => duration(f - s),
        (Some(s), None) => duration(app.now_ms - s),
        _ => String::new(),
    }
}

fn stage_line<'a>(app: &App, stage: &StageView, width: usize) -> Line<'a> {
    let t = &app.theme;
    row(
        vec![
            Span::styled(format!("{} ", stage.status.glyph()), t.status(stage.status)),
            Span::styled(
                stage.name.clone(),
                t.fg("text").add_modifier(Modifier::BOLD),
            ),
        ],
        took(app, stage.started_ms, stage.finished_ms),
        width,
        t.fg("muted"),
    )
}

/// A step: its group mark, state, name (bold while it is active) and what it does or did.
fn step_line<'a>(app: &App, step: &StepView, width: usize) -> Line<'a> {
    let t = &app.theme;
    let group = if step.group.is_some() { "┃" } else { " " };
    let what = if step.text().is_empty() {
        step.description.clone()
    } else {
        step.text().to_owned()
    };
    let mut name_style = t.fg("text");
    if matches!(
        step.status,
        Status::Running | Status::WaitingForApproval | Status::Paused
    ) {
        name_style = name_style.add_modifier(Modifier::BOLD);
    }
    row(
        vec![
            Span::styled(format!(" {group}"), t.fg("muted")),
            Span::styled(format!("{} ", step.status.glyph()), t.status(step.status)),
            Span::styled(format!("{:<10} ", step.name), name_style),
            Span::styled(what, t.fg("muted")),
        ],
        took(app, step.started_ms, step.finished_ms),
        width,
        t.fg("muted"),
    )
}

/// A row with `right` flushed to the right edge, the left part cut to fit.
fn row<'a>(mut left: Vec<Span<'a>>, right: String, width: usize, style: Style) -> Line<'a> {
    let right_w = right.chars().count();
    let budget = width.saturating_sub(right_w + 1);
    let mut used = 0;
    for span in &mut left {
        let w = span.content.chars().count();
        if used + w > budget {
            let keep = budget.saturating_sub(used);
            let cut: String = span.content.chars().take(keep.saturating_sub(1)).collect();
            span.content = if keep > 0 {
                format!("{cut}…")
            } else {
                String::new()
            }
            .into();
            used = budget;
        } else {
            used += w;
        }
    }
    let pad = width.saturating_sub(used + right_w);
    left.push(Span::raw(" ".repeat(pad)));
    left.push(Span::styled(right, style));
    Line::from(left)
}

pub(super) fn draw_preflight(frame: &mut Frame, app: &App, area: Rect) {
    let t = &app.theme;
    let focused = app.focus == Pane::Preflight;
    let Some((_, step)) = app.run.preflight() else {
        let block = pane(app, " Pre-flight ", focused);
        frame.render_widget(
            Paragraph::new(Line::from(Span::styled(
                "no pre-flight in this run yet",
                t.fg("muted"),
            )))
            .block(block),
            area,
        );
        return;
    };
    let failed = step
        .evidence
        .iter()
        .filter(|e| e.verdict != Verdict::Pass)
        .count();
    let title = format!(
        " Pre-flight ─ {} {} checks, {failed} failing ",
        step.status.glyph(),
        step.evidence.len()
    );
    let mut lines: Vec<Line> = Vec::new();
    // Failures first: they are what the operator came to see.
    let mut evidence: Vec<_> = step.evidence.iter().collect();
    evidence.sort_by_key(|e| e.verdict == Verdict::Pass);
    for e in evidence {
        let mut spans = vec![
            Span::styled(
                format!("{} ", e.verdict.glyph()),
                t.status(e.verdict.status()),
            ),
            Span::styled(e.check.clone(), t.fg("text")),
        ];
        if let Some(v) = &e.value {
            spans.push(Span::styled(format!("  {v}"), t.fg("muted")));
        }
        if e.verdict != Verdict::Pass
            && let Some(x) = &e.expected
        {
            spans.push(Span::styled(format!(" (expected {x})"), t.fg("muted")));
        }
        lines.push(Line::from(spans));
    }
    if step.evidence.is_empty() {
        lines.push(Line::from(Span::styled(
            step.text().to_owned(),
            t.fg("muted"),
        )));
    }
    frame.render_widget(
        Paragraph::new(lines)
            .block(pane(app, title, focused))
            .wrap(Wrap { trim: false }),
        area,
    );
}
