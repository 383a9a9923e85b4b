//! Drawing: one function from the cockpit's state to a frame. Layouts adapt to the size:
//! the wide layout (100x30 and up) shows stages and pre-flight beside the output; the
//! compact one stacks the focused pane over the output; anything smaller still draws.

mod budget;
mod charts;
mod confirm;
mod detail;
mod header;
mod help;
mod history;
mod output;
mod stages;
mod svg;
mod traffic;

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Modifier;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph};

pub use self::svg::svg;
use super::app::{App, Overlay, Pane};
use super::config::Optional;

/// Draws the whole cockpit.
pub fn draw(frame: &mut Frame, app: &App) {
    let area = frame.area();
    let [header, banner, body, footer] = rows(area, app.banner.is_some());
    header::draw_header(frame, app, header);
    if let Some(text) = &app.banner {
        frame.render_widget(
            Paragraph::new(Line::from(Span::styled(
                format!(" {text}"),
                app.theme.fg("accent").add_modifier(Modifier::ITALIC),
            ))),
            banner,
        );
    }
    draw_body(frame, app, body);
    header::draw_footer(frame, app, footer);
    draw_overlay(frame, app, area);
    if let Some(t) = &app.toast {
        confirm::draw_toast(frame, app, area, &t.text, t.error);
    }
}

/// The panes between the header and the hint bar, as the terminal's size allows.
fn draw_body(frame: &mut Frame, app: &App, body: Rect) {
    let area = frame.area();
    if app.layout.wide(area.width, area.height) {
        let [_, right, stages, preflight] = wide_areas(app, body);
        stages::draw_stages(frame, app, stages);
        if app.layout.shows(Optional::Preflight) {
            stages::draw_preflight(frame, app, preflight);
        }
        draw_right(frame, app, right);
    } else {
        let [top, bottom] =
            Layout::vertical([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(body);
        if app.focus == Pane::Preflight {
            stages::draw_preflight(frame, app, top);
        } else {
            stages::draw_stages(frame, app, top);
        }
        output::draw_output(frame, app, bottom);
    }
}

/// The open overlay, if any, over the whole frame.
fn draw_overlay(frame: &mut Frame, app: &App, area: Rect) {
    match &app.overlay {
        Some(Overlay::Help) => help::draw_help(frame, app, area),
        Some(Overlay::History) => history::draw_history(frame, app, area),
        Some(Overlay::AppLog) => draw_app_log(frame, app, area),
        Some(Overlay::Detail) => detail::draw_detail(frame, app, area),
        Some(Overlay::Confirm {
            command,
            typed,
            name,
        }) => confirm::draw_confirm(frame, app, area, *command, typed, name.as_deref()),
        None => {}
    }
}

/// glidepath's own log (tracing), over the whole frame but for a margin.
fn draw_app_log(frame: &mut Frame, app: &App, area: Rect) {
    let rect = centered(
        area,
        area.width.saturating_sub(6),
        area.height.saturating_sub(2),
    );
    frame.render_widget(Clear, rect);
    let t = &app.theme;
    frame.render_widget(
        tui_logger::TuiLoggerWidget::default()
            .block(pane(app, " glidepath's own log ─ Esc closes ", true))
            .style(t.fg("text"))
            .style_error(t.fg("fail"))
            .style_warn(t.fg("warning"))
            .style_info(t.fg("muted"))
            .output_file(false)
            .output_line(false),
        rect,
    );
}

/// The wide layout's right column: traffic, error budget and SLO charts when the run has
/// them, the output below.
fn draw_right(frame: &mut Frame, app: &App, area: Rect) {
    let budget = budget::budget_evidence(app).filter(|_| app.layout.shows(Optional::Budget));
    let traffic = app
        .run
        .traffic
        .as_ref()
        .filter(|_| app.layout.shows(Optional::Traffic));
    let charts = !app.run.series.is_empty() && app.layout.shows(Optional::Charts);
    let mut constraints = Vec::new();
    if traffic.is_some() {
        constraints.push(Constraint::Length(6));
    }
    if budget.is_some() {
        constraints.push(Constraint::Length(5));
    }
    if charts {
        constraints.push(Constraint::Percentage(45));
    }
    constraints.push(Constraint::Min(6));
    let areas = Layout::vertical(constraints).split(area);
    let mut i = 0;
    if let Some(t) = traffic {
        traffic::draw_traffic(frame, app, t, areas[i]);
        i += 1;
    }
    if let Some(b) = &budget {
        budget::draw_budget(frame, app, b, areas[i]);
        i += 1;
    }
    if charts {
        charts::draw_charts(frame, app, areas[i]);
        i += 1;
    }
    output::draw_output(frame, app, areas[i]);
}

/// A bar of `width` cells, `fraction` of them full: (full part, empty part).
fn bar(width: usize, fraction: f64) -> (String, String) {
    let full = ((fraction.clamp(0.0, 1.0)) * width as f64).round() as usize;
    ("█".repeat(full), "░".repeat(width.saturating_sub(full)))
}

/// The wide layout's left and right columns, and the left column's stages and
/// pre-flight (empty when the layout hides it).
fn wide_areas(app: &App, body: Rect) -> [Rect; 4] {
    let left = app.layout.left();
    let [l, r] = Layout::horizontal([
        Constraint::Percentage(left),
        Constraint::Percentage(100 - left),
    ])
    .areas(body);
    let preflight = if app.layout.shows(Optional::Preflight) {
        38
    } else {
        0
    };
    let [stages, pre] = Layout::vertical([
        Constraint::Percentage(100 - preflight),
        Constraint::Percentage(preflight),
    ])
    .areas(l);
    [l, r, stages, pre]
}

/// The frame's rows: header, banner (empty without one, or when the terminal is short),
/// the panes, the hint bar.
fn rows(area: Rect, banner: bool) -> [Rect; 4] {
    let banner = u16::from(banner && area.height >= 20);
    Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(banner),
        Constraint::Min(0),
        Constraint::Length(1),
    ])
    .areas(area)
}

/// The focusable pane under a terminal cell (for mouse clicks and wheel), as `draw` lays
/// them out.
pub fn pane_at(app: &App, width: u16, height: u16, column: u16, row: u16) -> Option<Pane> {
    let focus = app.focus;
    let area = Rect::new(0, 0, width, height);
    let [_, _, body, _] = rows(area, app.banner.is_some());
    let at = ratatui::layout::Position::new(column, row);
    if !body.contains(at) {
        return None;
    }
    if app.layout.wide(width, height) {
        let [left, _, stages, _] = wide_areas(app, body);
        Some(if stages.contains(at) {
            Pane::Stages
        } else if left.contains(at) {
            Pane::Preflight
        } else {
            Pane::Output
        })
    } else {
        let [top, _] =
            Layout::vertical([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(body);
        Some(if !top.contains(at) {
            Pane::Output
        } else if focus == Pane::Preflight {
            Pane::Preflight
        } else {
            Pane::Stages
        })
    }
}

/// `1h02m`, `4m12s`, `12s`.
fn duration(ms: i64) -> String {
    let s = ms.max(0) / 1000;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, s / 60 % 60),
    }
}

/// A bordered pane with a title, its border marking focus.
fn pane<'a>(app: &App, title: impl Into<Line<'a>>, focused: bool) -> Block<'a> {
    Block::default()
        .borders(Borders::ALL)
        .border_style(app.theme.border(focused))
        .title(title)
}

/// An overlay that takes the screen but for a margin (long lines wrap), titled `title`.
fn overlay(frame: &mut Frame, app: &App, area: Rect, title: &'static str, lines: Vec<Line<'_>>) {
    let rect = centered(
        area,
        area.width.saturating_sub(6),
        area.height.saturating_sub(2),
    );
    frame.render_widget(ratatui::widgets::Clear, rect);
    frame.render_widget(
        ratatui::widgets::Paragraph::new(lines)
            .block(pane(app, title, true))
            .wrap(ratatui::widgets::Wrap { trim: false }),
        rect,
    );
}

/// A rectangle of `w` x `h` (clamped) in the middle of `area`.
fn centered(area: Rect, w: u16, h: u16) -> Rect {
    let w = w.min(area.width);
    let h = h.min(area.height);
    Rect {
        x: area.x + (area.width - w) / 2,
        y: area.y + (area.height - h) / 2,
        width: w,
        height: h,
    }
}
