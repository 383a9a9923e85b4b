//! The replay overlay: a past run's gates and analyses as recorded and as its journal
//! decides them again with its own SLOs, which changed, and where each release would have
//! ended; wrapped to the terminal's width and scrolled (j k PgUp PgDn g G) like the help.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Modifier;
use ratatui::text::{Line, Span};

use super::help::{draw_scrolled, limit_of, text_width, wrap};
use crate::events::clock;
use crate::replay::words::{ending_lines, reason, summary};
use crate::ui::app::{App, ReplayView};

/// The overlay's widest frame.
const WIDEST: u16 = 110;

/// Lines above the last page: how far the replay scrolls on a terminal of `area`.
pub(super) fn scroll_limit(app: &App, area: Rect) -> usize {
    limit_of(area, WIDEST, lines(app, text_width(area, WIDEST)).len())
}

pub(super) fn draw_replay(frame: &mut Frame, app: &App, area: Rect) {
    let lines = lines(app, text_width(area, WIDEST));
    let title = match &app.replay {
        Some(r) => format!(" Replay of run {} ─ Esc back to the history ", r.run),
        None => " Replay ─ Esc closes ".into(),
    };
    draw_scrolled(frame, app, (area, WIDEST), title, lines, app.replay_scroll);
}

/// The replay in lines of at most `width` columns: what it decided with, each decision
/// (recorded → replayed, and why when it changed), each step's ending, the summary.
fn lines(app: &App, width: usize) -> Vec<Line<'static>> {
    let t = &app.theme;
    let Some(view) = &app.replay else {
        return vec![Line::from("no replay")];
    };
    let r = &view.replay;
    let text = |s: String, style| -> Vec<Line<'static>> {
        wrap(&s, width.max(8))
            .into_iter()
            .map(|part| Line::from(Span::styled(part, style)))
            .collect()
    };
    let mut out = text(heading(view), t.fg("muted"));
    out.push(Line::default());
    for d in &r.decisions {
        let changed = d.changed();
        let what = match d.part {
            Some(part) => format!("{} ({})", d.what, part.word()),
            None => d.what.clone(),
        };
        let weight = d.weight.map(|w| format!(" at {w}%")).unwrap_or_default();
        let row = format!("{} {} {what}{weight} ", clock(d.at_ms), d.step);
        out.push(Line::from(vec![
            Span::styled(if changed { "≠ " } else { "  " }, t.fg("warning")),
            Span::styled(row, t.fg("text")),
            Span::styled(
                format!("{} {}", d.recorded.glyph(), d.recorded.word()),
                t.status(d.recorded.status()),
            ),
            Span::styled(" → ", t.fg("muted")),
            Span::styled(
                format!("{} {}", d.replayed.glyph(), d.replayed.word()),
                t.status(d.replayed.status()),
            ),
        ]));
        if changed {
            out.extend(
                wrap(&reason(d), width.saturating_sub(4).max(8))
                    .into_iter()
                    .map(|part| {
                        Line::from(vec![Span::raw("    "), Span::styled(part, t.fg("warning"))])
                    }),
            );
        }
    }
    out.push(Line::default());
    for s in &r.steps {
        let moved = s.recorded != s.replayed;
        // The step, its recorded ending, then the replayed one (and a note on it).
        for (i, line) in ending_lines(s).into_iter().enumerate() {
            let style = if moved && i >= 2 {
                t.fg("warning").add_modifier(Modifier::BOLD)
            } else {
                t.fg("text")
            };
            out.extend(text(line, style));
        }
    }
    out.push(Line::default());
    let style = if r.outcome_changed() {
        t.fg("warning")
    } else {
        t.fg("accent")
    };
    out.extend(text(summary(r), style.add_modifier(Modifier::BOLD)));
    out
}

/// `run 7 (failed) decided again from its journal with config/slo.yaml`.
fn heading(view: &ReplayView) -> String {
    format!(
        "run {} ({}) decided again from its journal with {}; `glidepath replay {}` prints it, with --slo or --judge to try others",
        view.run,
        view.status,
        view.slos.join(", "),
        view.run
    )
}
