//! The traffic pane: the desired split against the one the router really sends, and each
//! version's ready replicas.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::{bar, pane};
use crate::ui::app::{App, Pane};
use crate::ui::state::TrafficView;

/// The desired split, the actual one judged against the plan, readiness and a note.
pub(super) fn draw_traffic(frame: &mut Frame, app: &App, t: &TrafficView, area: Rect) {
    let th = &app.theme;
    let width = area.width.saturating_sub(50).max(4) as usize;
    // The new version's share as a bar; the words say both sides, so no colour is needed.
    let row = |label: &str, pct: u8, style: Style| {
        let (on, off) = bar(width, f64::from(pct) / 100.0);
        vec![
            Span::styled(format!("{label:<8}"), th.fg("text")),
            Span::styled(on, th.fg("series-canary")),
            Span::styled(off, th.fg("series-stable")),
            Span::styled(
                format!(" new {pct:>3}% · stable {:>3}%", 100 - pct.min(100)),
                style,
            ),
        ]
    };
    let mut lines = vec![Line::from(row(
        "desired",
        t.weight,
        th.fg("text").add_modifier(Modifier::BOLD),
    ))];
    // With replicas as the router the split is as coarse as the replica counts; the
    // actual split is judged against what they plan.
    let planned = t.planned.unwrap_or(t.weight);
    lines.push(match t.actual {
        Some(a) if a == planned => Line::from(row("actual", a, th.fg("text"))),
        Some(a) => {
            let mut spans = row("actual", a, th.fg("warning").add_modifier(Modifier::BOLD));
            spans.push(Span::styled(
                if planned == t.weight {
                    " ≠ desired".to_owned()
                } else {
                    format!(" ≠ planned {planned}%")
                },
                th.fg("warning"),
            ));
            Line::from(spans)
        }
        None => Line::from(vec![
            Span::styled(format!("{:<8}", "actual"), th.fg("text")),
            Span::styled("not observed", th.fg("muted")),
        ]),
    });
    let ready = readiness(app, t);
    if !ready.is_empty() {
        lines.push(Line::from(ready));
    }
    lines.push(Line::from(Span::styled(t.note.clone(), th.fg("muted"))));
    let title = format!(" Traffic ─ {} ", t.step);
    frame.render_widget(
        Paragraph::new(lines).block(pane(app, title, app.focus == Pane::Traffic)),
        area,
    );
}

/// Each version's ready replicas as lit dots (at most eight, in proportion) and counts.
fn readiness<'a>(app: &App, t: &TrafficView) -> Vec<Span<'a>> {
    let th = &app.theme;
    let mut ready = Vec::new();
    for r in &t.replicas {
        let all = r.ready >= r.desired;
        let dots = r.desired.min(8) as usize;
        let lit = if r.desired == 0 {
            0
        } else {
            (f64::from(r.ready.min(r.desired)) / f64::from(r.desired) * dots as f64).round()
                as usize
        };
        ready.push(Span::styled(
            format!("{} {} ", r.role, r.version),
            th.fg("text"),
        ));
        ready.push(Span::styled(
            format!("{}{}", "●".repeat(lit), "○".repeat(dots - lit)),
            th.fg(if all { "ok" } else { "warning" }),
        ));
        ready.push(Span::styled(
            format!(
                " {}/{}{}  ",
                r.ready,
                r.desired,
                if all { "" } else { " ◌" }
            ),
            th.fg(if all { "muted" } else { "warning" }),
        ));
    }
    ready
}
