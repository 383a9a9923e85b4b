//! The header line (pipeline, run, stage, release state, target, elapsed time) and the
//! hint bar at the bottom (keys, or the search or command being typed).

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Modifier;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::duration;
use crate::ui::app::{App, Input};
use crate::ui::keys::{Action, KEYS};

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
            // Keys that steer the run leave the bar once nothing can be steered.
            let steerable = !app.read_only && !app.run.ended();
            let mut keys: Vec<_> = KEYS.iter().filter(|b| steerable || !b.acts).collect();
            if area.width < 100 {
                // Narrow: help and quit first, so they are never cut off.
                keys.sort_by_key(|b| !matches!(b.action, Action::Help | Action::Back));
            }
            for b in keys {
                if let Some(hint) = b.hint {
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
