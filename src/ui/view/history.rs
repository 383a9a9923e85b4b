//! The history overlay: recent runs and the service's evaluations in this stage.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Modifier;
use ratatui::text::{Line, Span};

use super::{duration, overlay};
use crate::ui::app::App;

/// `2026-11-27 12:40`.
fn date_time(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(ms / 1000)
        .map(|t| {
            format!(
                "{:04}-{:02}-{:02} {:02}:{:02}",
                t.year(),
                u8::from(t.month()),
                t.day(),
                t.hour(),
                t.minute()
            )
        })
        .unwrap_or_default()
}

pub(super) fn draw_history(frame: &mut Frame, app: &App, area: Rect) {
    let t = &app.theme;
    let Some(h) = &app.history else {
        return;
    };
    let mut lines = vec![Line::from(Span::styled(
        "runs (newest first)",
        t.fg("accent").add_modifier(Modifier::BOLD),
    ))];
    for (i, r) in h.runs.iter().enumerate() {
        let (id, pipeline, status, code) = (r.id, &r.pipeline, &r.status, r.exit_code);
        // The selected run, which the replay key decides again.
        let (mark, name) = if i == app.history_selected {
            (
                "▸",
                t.fg("accent")
                    .add_modifier(Modifier::BOLD | Modifier::REVERSED),
            )
        } else {
            (" ", t.fg("text").add_modifier(Modifier::BOLD))
        };
        let took = r
            .finished_ms
            .map(|f| duration(f - r.started_ms))
            .unwrap_or_default();
        lines.push(Line::from(vec![
            Span::styled(mark, t.fg("accent")),
            Span::styled(format!("{} ", status.glyph()), t.status(*status)),
            Span::styled(format!("run {id:<5}"), name),
            Span::raw(" "),
            Span::styled(format!("{pipeline:<16} "), t.fg("text")),
            Span::styled(format!("{:<12} ", status.to_string()), t.status(*status)),
            Span::styled(format!("{} ", date_time(r.started_ms)), t.fg("muted")),
            Span::styled(format!("{took:>7} "), t.fg("muted")),
            Span::styled(
                code.map(|c| format!("exit {c:<3} ")).unwrap_or_default(),
                t.fg("muted"),
            ),
            // Who drives it and from where: on a shared journal, runs of other machines.
            Span::styled(
                r.driver
                    .as_deref()
                    .map(|d| format!("by {d}"))
                    .unwrap_or_default(),
                t.fg("muted"),
            ),
        ]));
        if let Some(hint) = &r.interrupted {
            lines.push(Line::from(Span::styled(
                format!("  {hint}"),
                t.status(*status),
            )));
        }
    }
    if h.runs.is_empty() {
        lines.push(Line::from(Span::styled(
            "no runs in the journal",
            t.fg("muted"),
        )));
    }
    lines.push(Line::default());
    lines.push(Line::from(Span::styled(
        format!(
            "evaluations of {} in stage {} (newest first)",
            app.run.service, h.stage
        ),
        t.fg("accent").add_modifier(Modifier::BOLD),
    )));
    for (verdict, values) in &h.evaluations {
        lines.push(Line::from(vec![
            Span::styled(
                format!("{} {:<8} ", verdict.glyph(), verdict.to_string()),
                t.status(verdict.status()),
            ),
            Span::styled(values.clone(), t.fg("text")),
        ]));
    }
    if h.evaluations.is_empty() {
        lines.push(Line::from(Span::styled("none yet", t.fg("muted"))));
    }
    overlay(
        frame,
        app,
        area,
        " History ─ j k select a run · Esc closes ",
        lines,
    );
}
