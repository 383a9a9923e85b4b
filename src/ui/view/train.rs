//! A release train's grid: members (grouped by dependency wave) x stages, each cell the
//! member's state there, the approval between stages under them; the selected member's
//! line; the train's own output below. Also the banner of a member opened from the grid
//! and the words of the train's confirmations.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Modifier;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::{output, pane};
use crate::events::{CommandKind, Status};
use crate::ui::app::App;
use crate::ui::train::TrainView;

/// The banner over an opened member's views: whose run it is and the way back.
pub(super) fn banner(app: &App) -> Option<String> {
    let t = app.train.as_ref()?;
    let o = t.open.as_ref()?;
    let train = &t.train(&app.run).pipeline;
    Some(format!(
        "train {train} › {} in {} (run {}) · Esc: back to the train",
        o.member, o.stage, o.run
    ))
}

/// Columns of the members' names.
fn name_width(app: &App, t: &TrainView) -> usize {
    t.members(&app.run)
        .iter()
        .map(|m| t.named(&m.name).chars().count() + 4)
        .max()
        .unwrap_or(10)
        .clamp(10, 28)
}

/// `text` cut or padded to `width` columns.
fn fit(text: &str, width: usize) -> String {
    let cut: String = text.chars().take(width.saturating_sub(1)).collect();
    format!("{cut:<width$}")
}

/// The grid, the selected member's line, and the train's output when there is room.
pub(super) fn draw_grid(frame: &mut Frame, app: &App, area: Rect) {
    let Some(t) = app.train.as_ref() else {
        return;
    };
    let lines = grid_lines(app, t, area.width.saturating_sub(2));
    let height = (lines.len() as u16 + 2).min(area.height);
    let [grid, rest] =
        Layout::vertical([Constraint::Length(height), Constraint::Min(0)]).areas(area);
    let title = format!(" Train {} ─ members × stages ", t.train(&app.run).pipeline);
    frame.render_widget(Paragraph::new(lines).block(pane(app, title, true)), grid);
    if rest.height >= 4 {
        output::draw_output(frame, app, rest);
    }
}

/// The grid's rows: stages over the columns, each wave's members, the approvals, then
/// the selected member and what the train waits for.
fn grid_lines<'a>(app: &'a App, t: &'a TrainView, width: u16) -> Vec<Line<'a>> {
    let th = &app.theme;
    let train = t.train(&app.run);
    let stages: Vec<&crate::report::StageReport> = train.stages.iter().collect();
    let name_w = name_width(app, t);
    let cell_w = (usize::from(width).saturating_sub(name_w) / stages.len().max(1)).max(8);
    let mut head = vec![Span::styled(fit("member", name_w), th.fg("muted"))];
    for s in &stages {
        let text = format!("{} {}", s.status.glyph(), s.name);
        head.push(Span::styled(
            fit(&text, cell_w),
            th.status(s.status).add_modifier(Modifier::BOLD),
        ));
    }
    let mut lines = vec![Line::from(head)];
    let members = t.members(&app.run);
    let selected = t.selected(&app.run).map(|m| m.name);
    let mut wave = 0;
    for m in &members {
        if m.wave != wave {
            wave = m.wave;
            lines.push(Line::from(Span::styled(
                format!("wave {wave}"),
                th.fg("accent"),
            )));
        }
        let chosen = selected.as_deref() == Some(m.name.as_str());
        let marker = if chosen { "› " } else { "  " };
        let name = fit(&format!("{marker}{}", t.named(&m.name)), name_w);
        let mut row = vec![Span::styled(
            name,
            if chosen { th.selected() } else { th.fg("text") },
        )];
        for s in &stages {
            let cell = t.cell(&app.run, &s.name, &m.name);
            let text = format!("{} {}", cell.status.glyph(), cell.word);
            row.push(Span::styled(fit(&text, cell_w), th.status(cell.status)));
        }
        lines.push(Line::from(row));
    }
    let mut approvals = vec![Span::styled(fit("approval", name_w), th.fg("muted"))];
    for s in &stages {
        let (status, text) = match t.approval(&app.run, &s.name) {
            None => (Status::Skipped, "—".to_owned()),
            Some(a) if a.status == Status::WaitingForApproval => {
                (a.status, "? waits · a approves".to_owned())
            }
            Some(a) if a.status == Status::Passed => (a.status, "✓ approved".to_owned()),
            Some(a) => (
                a.status,
                format!("{} {}", a.status.glyph(), a.status.word()),
            ),
        };
        approvals.push(Span::styled(fit(&text, cell_w), th.status(status)));
    }
    lines.push(Line::from(approvals));
    lines.push(status_line(app, t));
    lines
}

/// What the train waits for, how it ended, or how to open the selected member.
fn status_line<'a>(app: &'a App, t: &TrainView) -> Line<'a> {
    let th = &app.theme;
    let train = t.train(&app.run);
    if let Some(reason) = &train.reason {
        return Line::from(Span::styled(
            format!("{} {reason}", train.status.glyph()),
            th.status(train.status),
        ));
    }
    if train.paused {
        return Line::from(Span::styled(
            "the train is paused · p resumes every member",
            th.status(Status::Paused),
        ));
    }
    let open = match t.selected(&app.run) {
        Some(m) => format!(
            "Enter opens {}: its stages, traffic, budget, charts",
            m.name
        ),
        None => String::new(),
    };
    Line::from(Span::styled(open, th.fg("muted")))
}

/// The confirmation's lines for a train: exactly what a rollback (or abort) of the train,
/// or of the member open, would do, in the order it would.
pub(super) fn confirm_lines(app: &App, command: CommandKind) -> Option<Vec<String>> {
    let t = app.train.as_ref()?;
    let train = t.train(&app.run);
    let member = t.open.as_ref().map(|o| o.member.as_str());
    let plan = t.rollback_plan(&app.run, member);
    let mut lines = Vec::new();
    if command == CommandKind::Abort {
        lines.push(match member {
            Some(m) => format!("Abort member {m} of train {}?", train.pipeline),
            None => format!("Abort train {} (run {})?", train.pipeline, train.run),
        });
        lines.push(match member {
            Some(_) => "The train counts it as failed: its partners stop, and the members this stage promoted roll back as onFailure says.".into(),
            None => "Members running stop where they are; nothing is rolled back.".into(),
        });
        return Some(lines);
    }
    lines.push(match member {
        Some(m) => format!("Roll back member {} in {}?", t.named(m), plan.stage),
        None => format!("Roll back train {} in {}?", train.pipeline, plan.stage),
    });
    if plan.running.is_empty() && plan.promoted.is_empty() {
        lines.push(format!(
            "No member runs or is promoted in {}: the train stops.",
            plan.stage
        ));
        return Some(lines);
    }
    lines.push("In this order:".into());
    let mut n = 0;
    for m in &plan.running {
        n += 1;
        lines.push(format!(" {n}. {m}: rolls its own {} back", plan.stage));
    }
    for m in &plan.promoted {
        n += 1;
        lines.push(format!(
            " {n}. {m}: promoted in {}, rolled back",
            plan.stage
        ));
    }
    if !plan.promoted.is_empty() {
        lines.push(format!(
            "What {} created stays: it has no earlier version.",
            plan.stage
        ));
    }
    if member.is_some() && t.options.stop_on_failure {
        lines.push("onFailure: stop: what the stage promoted stays.".into());
    }
    lines.push("Earlier stages stay as they are.".into());
    Some(lines)
}
