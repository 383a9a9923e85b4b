//! The header line (pipeline, run, stage, release state, target, elapsed time) and the
//! hint bar at the bottom (keys, or the search or command being typed).

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Modifier;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::duration;
use crate::events::Status;
use crate::ui::app::{App, Input, Overlay, Pane};
use crate::ui::keys::{Action, Binding, KEYS};

pub(super) fn draw_header(frame: &mut Frame, app: &App, area: Rect) {
    let run = &app.run;
    let t = &app.theme;
    let mut spans = vec![
        Span::styled(" glidepath ", t.fg("accent").add_modifier(Modifier::BOLD)),
        Span::styled(
            if run.pipeline.is_empty() {
                "waiting for the run…".to_owned()
            } else {
                format!("{} · run {}", run.pipeline, run.run)
            },
            t.fg("text").add_modifier(Modifier::BOLD),
        ),
    ];
    if let Some(stage) = run.current_stage() {
        spans.push(Span::styled(
            format!(" · stage {}", stage.name),
            t.fg("text"),
        ));
    }
    if let Some(release) = run.release_state().filter(|_| !run.ended()) {
        spans.push(Span::styled(format!(" · {release}"), t.fg("paused")));
    }
    let state = if run.ended() {
        format!(" · {} {}", run.status.glyph(), run.status)
    } else if run.paused {
        " · ⏸ paused".to_owned()
    } else {
        String::new()
    };
    spans.push(Span::styled(state, t.status(run.status)));
    // Least urgent last: a narrow header cuts it first.
    if !app.target.is_empty() {
        spans.push(Span::styled(format!(" · {}", app.target), t.fg("muted")));
    }
    if let Some(lease) = &run.lease {
        spans.push(Span::styled(format!(" · lease {lease}"), t.fg("muted")));
    }
    let elapsed = run
        .started_ms
        .map(|s| duration(run.finished_ms.unwrap_or(app.now_ms) - s))
        .unwrap_or_default();
    let left = Line::from(spans);
    let right = Line::from(Span::styled(format!(" {elapsed} "), t.fg("muted")));
    let [l, r] = Layout::horizontal([Constraint::Min(0), Constraint::Length(right.width() as u16)])
        .areas(area);
    frame.render_widget(Paragraph::new(left), l);
    frame.render_widget(Paragraph::new(right), r);
}

pub(super) fn draw_footer(frame: &mut Frame, app: &App, area: Rect) {
    let t = &app.theme;
    let line = match &app.input {
        Some(Input::Search(s)) => Line::from(vec![
            Span::styled("/", t.fg("accent")),
            Span::styled(s.clone(), t.fg("text")),
            Span::styled("▏", t.fg("accent")),
        ]),
        Some(Input::Command(s)) => Line::from(vec![
            Span::styled(":", t.fg("accent")),
            Span::styled(s.clone(), t.fg("text")),
            Span::styled("▏", t.fg("accent")),
        ]),
        None => {
            let mut spans = Vec::new();
            let mut keys: Vec<_> = KEYS.iter().filter(|b| applies(app, b)).collect();
            if area.width < 100 {
                // Narrow: help and quit first, so they are never cut off, then what the
                // moment asks for (an approval, more charts).
                keys.sort_by_key(|b| match b.action {
                    Action::Help | Action::Back => 0,
                    Action::Approve | Action::Decline | Action::ChartPage => 1,
                    Action::Detail if app.train_grid() => 1,
                    _ => 2,
                });
            }
            for b in keys {
                if let Some(hint) = b.hint {
                    let hint = match b.action {
                        Action::PauseResume if resumes(app) => "resume",
                        // A train's grid: keys for the whole train, Enter opens a member.
                        Action::PauseResume if app.train_grid() => "pause all",
                        Action::Detail if app.train_grid() => "open member",
                        Action::Back if app.command_member().is_some() => "back to train",
                        _ => hint,
                    };
                    spans.push(Span::styled(
                        format!(
                            " {} ",
                            app.keymap.label(b).split(' ').next().unwrap_or_default()
                        ),
                        t.fg("accent").add_modifier(Modifier::BOLD),
                    ));
                    spans.push(Span::styled(format!("{hint} "), t.fg("muted")));
                }
            }
            if app.read_only {
                spans.push(Span::styled(" read-only", t.fg("warning")));
            } else if app.run.ended() {
                spans.push(Span::styled(" run ended", t.fg("muted")));
            }
            Line::from(spans)
        }
    };
    frame.render_widget(Paragraph::new(line), area);
}

/// Whether a key's hint belongs on the bar now: the keys that steer the release only while
/// they would act (approve and decline while something waits for approval, promote while
/// a release runs or a pause holds), the views' keys where they help; the rest under `?`.
fn applies(app: &App, b: &Binding) -> bool {
    let run = &app.run;
    let live = !app.read_only && !run.ended();
    let active = run.active_steps();
    let any = |status: Status| active.iter().any(|(_, s)| s.status == status);
    match b.action {
        Action::Approve | Action::Decline => live && any(Status::WaitingForApproval),
        Action::Promote => live && (app.releasing() || any(Status::Paused)),
        Action::PauseResume | Action::Rollback | Action::Abort => live,
        Action::View | Action::FocusNext | Action::Source if app.train_grid() => false,
        Action::FocusNext => app.compact(),
        Action::Replay => app.overlay == Some(Overlay::History),
        Action::ChartPage => app.focus == Pane::Charts && super::chart_pages(app) > 1,
        _ => !b.acts,
    }
}

/// `p` would resume: the run or one of its steps is paused.
fn resumes(app: &App) -> bool {
    app.run.paused
        || app
            .run
            .active_steps()
            .iter()
            .any(|(_, s)| s.status == Status::Paused)
}
