//! The compact layout's status strip: the release's state in one line (the new version's
//! weight, the latest analysis verdict, the error budget left) so that nothing critical is
//! out of sight whichever view is shown, and the views with their number keys.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Modifier;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::budget;
use crate::events::Status;
use crate::ui::app::{App, Pane};

pub(super) fn draw_strip(frame: &mut Frame, app: &App, area: Rect) {
    let state = state(app);
    let tabs = tabs(app, usize::from(area.width).saturating_sub(state.width()));
    let [l, r] = Layout::horizontal([Constraint::Min(0), Constraint::Length(tabs.width() as u16)])
        .areas(area);
    frame.render_widget(Paragraph::new(state), l);
    frame.render_widget(Paragraph::new(tabs), r);
}

/// Weight, verdict, budget, and a pause or the end of the run.
fn state(app: &App) -> Line<'static> {
    let t = &app.theme;
    let run = &app.run;
    let sep = || Span::styled(" · ", t.fg("muted"));
    let mut spans = vec![Span::raw(" ")];
    let release = run
        .stages
        .iter()
        .flat_map(|s| &s.steps)
        .rfind(|st| st.kind == "release" && st.status != Status::Pending);
    match (&run.traffic, release) {
        (Some(traffic), Some(step)) => {
            spans.push(Span::styled(
                format!("{} ", step.status.glyph()),
                t.status(step.status),
            ));
            spans.push(Span::styled(
                format!("new {}%", traffic.weight),
                t.fg("text").add_modifier(Modifier::BOLD),
            ));
            match traffic.actual {
                Some(a) if a != traffic.planned.unwrap_or(traffic.weight) => {
                    spans.push(Span::styled(format!(" (router {a}%)"), t.fg("warning")))
                }
                _ => {}
            }
        }
        // Held or ended before any traffic moved.
        (None, Some(step)) => spans.push(Span::styled(
            format!("{} release {}", step.status.glyph(), step.status),
            t.status(step.status),
        )),
        _ => spans.push(Span::styled("no release yet", t.fg("muted"))),
    }
    if let Some(v) = run.analysis_verdict {
        spans.push(sep());
        spans.push(Span::styled("analysis ", t.fg("muted")));
        spans.push(Span::styled(
            format!("{} {}", v.glyph(), v.word()),
            t.status(v.status()),
        ));
    }
    if let Some(b) = budget::budget_evidence(app) {
        spans.push(sep());
        spans.push(Span::styled("budget ", t.fg("muted")));
        spans.push(Span::styled(
            format!("{} {}", b.verdict.glyph(), b.text),
            t.status(b.verdict.status()),
        ));
    }
    if run.ended() {
        spans.push(sep());
        spans.push(Span::styled(
            format!("{} {}", run.status.glyph(), run.status),
            t.status(run.status),
        ));
    } else if run.paused {
        spans.push(sep());
        spans.push(Span::styled("⏸ paused", t.status(Status::Paused)));
    }
    Line::from(spans)
}

/// The views and their keys in `room` columns: every name when they fit, else the numbers
/// with the current view named. Views with nothing to show yet are dimmed; hidden ones
/// left out.
fn tabs(app: &App, room: usize) -> Line<'static> {
    let t = &app.theme;
    let views: Vec<Pane> = Pane::ALL.into_iter().filter(|p| app.allows(*p)).collect();
    let full: usize = views.iter().map(|p| p.name().len() + 3).sum::<usize>() + 1;
    let named = |p: Pane| full <= room || p == app.focus;
    let mut spans = Vec::new();
    for p in views {
        let style = if p == app.focus {
            t.fg("focus")
                .add_modifier(Modifier::BOLD | Modifier::REVERSED)
        } else if app.has(p) {
            t.fg("text")
        } else {
            t.fg("muted")
        };
        let text = if named(p) {
            format!("{} {}", p.number(), p.name())
        } else {
            p.number().to_string()
        };
        spans.push(Span::raw(" "));
        spans.push(Span::styled(text, style));
    }
    spans.push(Span::raw(" "));
    Line::from(spans)
}
