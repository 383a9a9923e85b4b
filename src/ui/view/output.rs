//! The test output pane: log lines of every step, following the end unless scrolled.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::pane;
use crate::events::clock;
use crate::ui::app::{App, Pane};

pub(super) fn draw_output(frame: &mut Frame, app: &App, area: Rect) {
    let t = &app.theme;
    let logs = app.visible_logs();
    let inner = area.height.saturating_sub(2) as usize;
    // Never scrolled past the first page.
    let end = logs
        .len()
        .saturating_sub(app.scroll)
        .max(inner.min(logs.len()));
    let start = end.saturating_sub(inner);
    let mode = if app.scroll == 0 {
        "follow".to_owned()
    } else {
        format!("scrolled ↑{}", app.scroll)
    };
    let mut title = format!(" Test output ─ {mode} ");
    if let Some(source) = &app.source {
        title.push_str(&format!("─ source {source} (s: next) "));
    }
    if let Some(s) = &app.search {
        title.push_str(&format!("─ /{s} ({} lines) ", logs.len()));
    }
    let lines: Vec<Line> = logs[start..end]
        .iter()
        .map(|l| {
            let source_style = match l.source.as_str() {
                "stderr" => t.fg("warning"),
                "engine" => t.fg("accent"),
                _ => t.fg("muted"),
            };
            Line::from(vec![
                Span::styled(format!("{} ", clock(l.at_ms)), t.fg("muted")),
                Span::styled(format!("{} ", l.step), t.fg("text")),
                Span::styled(format!("{} ", l.source), source_style),
                Span::styled(l.line.clone(), t.fg("text")),
            ])
        })
        .collect();
    frame.render_widget(
        Paragraph::new(lines).block(pane(app, title, app.focus == Pane::Output)),
        area,
    );
}
