//! Drawing: one function from the cockpit's state to a frame. Layouts adapt to the size:
//! the wide layout (100x30 and up) shows stages and pre-flight beside traffic, budget,
//! charts and output; the compact one shows one view at a time (keys 1 to 6, Tab) under a
//! status strip that always says the release's weight, verdict and budget; anything
//! smaller still draws.

mod budget;
mod charts;
mod confirm;
mod detail;
mod header;
mod help;
mod history;
mod output;
mod replay;
mod stages;
mod strip;
mod svg;
mod traffic;
mod train;

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Modifier;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph};

pub use self::svg::svg;
use super::app::{App, Overlay, Pane};

/// Draws the whole cockpit.
pub fn draw(frame: &mut Frame, app: &App) {
    let area = frame.area();
    let text = train::banner(app).or_else(|| app.banner.clone());
    let [header, banner, body, footer] = rows(area, text.is_some());
    header::draw_header(frame, app, header);
    if let Some(text) = &text {
        frame.render_widget(
            Paragraph::new(Line::from(Span::styled(
                format!(" {text}"),
                app.theme.fg("accent").add_modifier(Modifier::ITALIC),
            ))),
            banner,
        );
    }
    if app.train_grid() {
        train::draw_grid(frame, app, body);
    } else {
        draw_body(frame, app, body);
    }
    header::draw_footer(frame, app, footer);
    draw_overlay(frame, app, area);
    if let Some(t) = &app.toast {
        confirm::draw_toast(frame, app, area, &t.text, t.error);
    }
}

/// Where the body's panes go: the wide layout's columns, or one view under the status
/// strip.
struct Arrangement {
    /// The one-line release state over a single view (compact).
    strip: Option<Rect>,
    /// Each pane drawn, with its place.
    panes: Vec<(Pane, Rect)>,
}

/// The panes between the header and the hint bar, as the terminal's size allows.
fn draw_body(frame: &mut Frame, app: &App, body: Rect) {
    let arrangement = arrange(app, frame.area(), body, app.focus);
    if let Some(strip) = arrangement.strip {
        strip::draw_strip(frame, app, strip);
    }
    let single = arrangement.strip.is_some();
    for (p, rect) in arrangement.panes {
        draw_pane(frame, app, p, rect, single);
    }
}

/// One pane; `single` when it is the only one in view (then an empty one says what will
/// show there).
fn draw_pane(frame: &mut Frame, app: &App, p: Pane, rect: Rect, single: bool) {
    match p {
        Pane::Stages => stages::draw_stages(frame, app, rect),
        Pane::Output => output::draw_output(frame, app, rect),
        Pane::Preflight => stages::draw_preflight(frame, app, rect),
        Pane::Charts => charts::draw_charts(frame, app, rect),
        Pane::Traffic => match &app.run.traffic {
            Some(t) => traffic::draw_traffic(frame, app, t, rect),
            None => empty(frame, app, rect, " Traffic ", EMPTY_TRAFFIC),
        },
        Pane::Budget => match budget::budget_evidence(app) {
            Some(b) => budget::draw_budget(frame, app, &b, rect),
            None if single => empty(frame, app, rect, " Error budget ", EMPTY_BUDGET),
            None => {}
        },
    }
}

const EMPTY_TRAFFIC: &str = "No traffic split yet. A canary or blue-green release step shows \
here the split it asks for, the split the router really sends, and each version's ready \
replicas.";
const EMPTY_BUDGET: &str = "No error budget yet. An error-budget gate shows here the budget \
that remains and each burn-rate window.";

/// A pane with nothing to show yet: its title and what will appear there.
fn empty(frame: &mut Frame, app: &App, rect: Rect, title: &'static str, text: &'static str) {
    frame.render_widget(
        Paragraph::new(Line::from(Span::styled(text, app.theme.fg("muted"))))
            .wrap(ratatui::widgets::Wrap { trim: true })
            .block(pane(app, title, true)),
        rect,
    );
}

/// The body's panes for a frame of `area` with `focus` focused: the wide layout when the
/// terminal (or the settings) allow it and it shows the focused pane, else the focused
/// view alone under the status strip.
fn arrange(app: &App, area: Rect, body: Rect, focus: Pane) -> Arrangement {
    if app.layout.wide(area.width, area.height) {
        let panes = wide_panes(app, body);
        if panes.iter().any(|(p, _)| *p == focus) {
            return Arrangement { strip: None, panes };
        }
    }
    let [strip, view] = Layout::vertical([Constraint::Length(1), Constraint::Min(0)]).areas(body);
    Arrangement {
        strip: Some(strip),
        panes: vec![(focus, view)],
    }
}

/// How many pages the SLO charts take in the charts view at the app's terminal size.
pub fn chart_pages(app: &App) -> usize {
    let area = Rect::new(0, 0, app.size.0, app.size.1);
    let [_, _, body, _] = rows(area, has_banner(app));
    let arrangement = arrange(app, area, body, Pane::Charts);
    let rect = arrangement
        .panes
        .iter()
        .find(|(p, _)| *p == Pane::Charts)
        .map_or(body, |(_, r)| *r);
    charts::pages(app.run.series.len(), rect.height)
}

/// How far the help overlay scrolls at the app's terminal size.
pub fn help_scroll_limit(app: &App) -> usize {
    help::scroll_limit(app, Rect::new(0, 0, app.size.0, app.size.1))
}

/// How far the replay overlay scrolls at the app's terminal size.
pub fn replay_scroll_limit(app: &App) -> usize {
    replay::scroll_limit(app, Rect::new(0, 0, app.size.0, app.size.1))
}

/// The open overlay, if any, over the whole frame.
fn draw_overlay(frame: &mut Frame, app: &App, area: Rect) {
    match &app.overlay {
        Some(Overlay::Help) => help::draw_help(frame, app, area),
        Some(Overlay::History) => history::draw_history(frame, app, area),
        Some(Overlay::Replay) => replay::draw_replay(frame, app, area),
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

/// A bar of `width` cells, `fraction` of them full: (full part, empty part).
fn bar(width: usize, fraction: f64) -> (String, String) {
    let full = ((fraction.clamp(0.0, 1.0)) * width as f64).round() as usize;
    ("█".repeat(full), "░".repeat(width.saturating_sub(full)))
}

/// Rows of output kept below the charts in the wide layout.
const OUTPUT_MIN: u16 = 6;

/// The wide layout: stages over pre-flight on the left; traffic, error budget and SLO
/// charts (each when the run has it and the settings show it) over the output on the
/// right. Charts get the rows they need to be read, or stay out (5 shows them alone).
fn wide_panes(app: &App, body: Rect) -> Vec<(Pane, Rect)> {
    let left = app.layout.left();
    let [l, r] = Layout::horizontal([
        Constraint::Percentage(left),
        Constraint::Percentage(100 - left),
    ])
    .areas(body);
    let mut panes = Vec::new();
    if app.allows(Pane::Preflight) {
        let [stages, pre] =
            Layout::vertical([Constraint::Percentage(62), Constraint::Percentage(38)]).areas(l);
        panes.push((Pane::Stages, stages));
        panes.push((Pane::Preflight, pre));
    } else {
        panes.push((Pane::Stages, l));
    }
    let shown = |p: Pane| app.allows(p) && app.has(p);
    let mut column = Vec::new();
    if shown(Pane::Traffic) {
        column.push((Pane::Traffic, 6));
    }
    if shown(Pane::Budget) {
        column.push((Pane::Budget, 5));
    }
    let fixed: u16 = column.iter().map(|(_, h)| *h).sum();
    let room = r.height.saturating_sub(fixed);
    if shown(Pane::Charts) && room >= charts::MIN_ROWS + OUTPUT_MIN {
        let charts = (room * 55 / 100)
            .max(charts::MIN_ROWS)
            .min(room - OUTPUT_MIN);
        column.push((Pane::Charts, charts));
    }
    let mut constraints: Vec<Constraint> =
        column.iter().map(|(_, h)| Constraint::Length(*h)).collect();
    constraints.push(Constraint::Min(0));
    let areas = Layout::vertical(constraints).split(r);
    for (i, (p, _)) in column.iter().enumerate() {
        panes.push((*p, areas[i]));
    }
    panes.push((Pane::Output, areas[column.len()]));
    panes
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

/// The pane under a terminal cell (for mouse clicks and wheel), as `draw` lays them out.
pub fn pane_at(app: &App, width: u16, height: u16, column: u16, row: u16) -> Option<Pane> {
    let area = Rect::new(0, 0, width, height);
    let [_, _, body, _] = rows(area, has_banner(app));
    let at = ratatui::layout::Position::new(column, row);
    arrange(app, area, body, app.focus)
        .panes
        .into_iter()
        .find(|(_, r)| r.contains(at))
        .map(|(p, _)| p)
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

/// Whether the frame has a banner row: the demo's, or the open train member's.
fn has_banner(app: &App) -> bool {
    app.banner.is_some() || train::banner(app).is_some()
}
