//! Drawing: one function from the cockpit's state to a frame. Layouts adapt to the size:
//! the wide layout (100x30 and up) shows stages and pre-flight beside the output; the
//! compact one stacks the focused pane over the output; anything smaller still draws.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Wrap};

use super::app::{App, Input, Overlay, Pane};
use super::config::Optional;
use super::keys::{Action, KEYS};
use crate::events::{Evidence, Status, Verdict, clock};
use crate::slo::score::TOTAL_SCORE;
use crate::slo::threshold;

/// Draws the whole cockpit.
pub fn draw(frame: &mut Frame, app: &App) {
    let area = frame.area();
    let [header, banner, body, footer] = rows(area, app.banner.is_some());
    draw_header(frame, app, header);
    if let Some(text) = &app.banner {
        frame.render_widget(
            Paragraph::new(Line::from(Span::styled(
                format!(" {text}"),
                app.theme.fg("accent").add_modifier(Modifier::ITALIC),
            ))),
            banner,
        );
    }
    if app.layout.wide(area.width, area.height) {
        let [_, right, stages, preflight] = wide_areas(app, body);
        draw_stages(frame, app, stages);
        if app.layout.shows(Optional::Preflight) {
            draw_preflight(frame, app, preflight);
        }
        draw_right(frame, app, right);
    } else {
        let [top, bottom] =
            Layout::vertical([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(body);
        if app.focus == Pane::Preflight {
            draw_preflight(frame, app, top);
        } else {
            draw_stages(frame, app, top);
        }
        draw_output(frame, app, bottom);
    }
    draw_footer(frame, app, footer);
    match &app.overlay {
        Some(Overlay::Help) => draw_help(frame, app, area),
        Some(Overlay::History) => draw_history(frame, app, area),
        Some(Overlay::AppLog) => {
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
        Some(Overlay::Detail) => draw_detail(frame, app, area),
        Some(Overlay::Confirm {
            command,
            typed,
            name,
        }) => draw_confirm(frame, app, area, *command, typed, name.as_deref()),
        None => {}
    }
    if let Some(t) = &app.toast {
        draw_toast(frame, app, area, &t.text, t.error);
    }
}

/// The wide layout's right column: traffic, error budget and SLO charts when the run has
/// them, the output below.
fn draw_right(frame: &mut Frame, app: &App, area: Rect) {
    let budget = budget_evidence(app).filter(|_| app.layout.shows(Optional::Budget));
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
        draw_traffic(frame, app, t, areas[i]);
        i += 1;
    }
    if let Some(b) = &budget {
        draw_budget(frame, app, b, areas[i]);
        i += 1;
    }
    if charts {
        draw_charts(frame, app, areas[i]);
        i += 1;
    }
    draw_output(frame, app, areas[i]);
}

fn bar(width: usize, fraction: f64) -> (String, String) {
    let full = ((fraction.clamp(0.0, 1.0)) * width as f64).round() as usize;
    ("█".repeat(full), "░".repeat(width.saturating_sub(full)))
}

fn draw_traffic(frame: &mut Frame, app: &App, t: &super::state::TrafficView, area: Rect) {
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
    let mut ready = Vec::new();
    for r in &t.replicas {
        let all = r.ready >= r.desired;
        // At most eight dots, lit in proportion.
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
            th.fg(if all { "pass" } else { "warning" }),
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
    if !ready.is_empty() {
        lines.push(Line::from(ready));
    }
    lines.push(Line::from(Span::styled(t.note.clone(), th.fg("muted"))));
    let title = format!(" Traffic ─ {} ", t.step);
    frame.render_widget(Paragraph::new(lines).block(pane(app, title, false)), area);
}

/// The latest error-budget gate's evidence: remaining (fraction, text, detail) and the
/// burn-rate lines, read from the evidence's budget and burn-rate figures.
struct BudgetView {
    remaining: Option<f64>,
    text: String,
    detail: String,
    verdict: Verdict,
    burns: Vec<(String, String, Verdict)>,
}

fn budget_evidence(app: &App) -> Option<BudgetView> {
    let step = app
        .run
        .stages
        .iter()
        .flat_map(|s| s.steps.iter())
        .rfind(|st| st.evidence.iter().any(|e| e.budget.is_some()))?;
    let (remaining, facts) = step
        .evidence
        .iter()
        .find_map(|e| Some((e, e.budget.as_ref()?)))?;
    Some(BudgetView {
        // At the precision shown beside the gauge, so the two always agree.
        remaining: facts.remaining.map(|r| (r * 1000.0).round() / 1000.0),
        text: remaining.value.clone().unwrap_or_else(|| "no data".into()),
        detail: remaining.detail.clone().unwrap_or_default(),
        verdict: remaining.verdict,
        burns: step
            .evidence
            .iter()
            .filter_map(|e| {
                let burn = e.burn.as_ref()?;
                Some((
                    burn.long.to_string(),
                    e.value.clone().unwrap_or_else(|| "no data".into()),
                    e.verdict,
                ))
            })
            .collect(),
    })
}

fn draw_budget(frame: &mut Frame, app: &App, b: &BudgetView, area: Rect) {
    let t = &app.theme;
    let slot = match b.remaining {
        Some(r) if r >= 0.5 => "gauge-good",
        Some(r) if r >= 0.2 => "gauge-low",
        _ => "gauge-critical",
    };
    let width = area.width.saturating_sub(26).max(4) as usize;
    let (on, off) = bar(width, b.remaining.unwrap_or(0.0));
    let mut burns = vec![Span::styled("burn ", t.fg("muted"))];
    for (window, value, verdict) in &b.burns {
        burns.push(Span::styled(format!("{window} {value} "), t.fg("text")));
        burns.push(Span::styled(
            format!("{}  ", verdict.glyph()),
            t.status(verdict.status()),
        ));
    }
    let lines = vec![
        Line::from(vec![
            Span::styled("remaining ", t.fg("text")),
            Span::styled(on, t.fg(slot)),
            Span::styled(off, t.fg("border")),
            Span::styled(
                format!(" {} ", b.text),
                t.fg("text").add_modifier(Modifier::BOLD),
            ),
            Span::styled(b.verdict.glyph(), t.status(b.verdict.status())),
        ]),
        Line::from(burns),
        Line::from(Span::styled(b.detail.clone(), t.fg("muted"))),
    ];
    frame.render_widget(
        Paragraph::new(lines).block(pane(app, " Error budget ", false)),
        area,
    );
}

/// A value with as many digits as its size needs: `182.4`, `3.25`, `0.0014`.
fn figure(v: f64) -> String {
    match v.abs() {
        a if a >= 100.0 => format!("{v:.1}"),
        a if a >= 1.0 => format!("{v:.2}"),
        _ => format!("{v:.4}"),
    }
}

fn draw_charts(frame: &mut Frame, app: &App, area: Rect) {
    use ratatui::symbols::Marker;
    use ratatui::widgets::{Axis, Chart, Dataset, GraphType};
    let t = &app.theme;
    let series: Vec<_> = app.run.series.iter().take(6).collect();
    let areas = Layout::vertical(vec![
        Constraint::Ratio(1, series.len() as u32);
        series.len()
    ])
    .split(area);
    let start = series
        .iter()
        .filter_map(|(_, s)| s.points.first().map(|p| p.0))
        .min()
        .unwrap_or(app.now_ms);
    for ((sli, s), rect) in series.iter().zip(areas.iter()) {
        let points: Vec<(f64, f64)> = s
            .points
            .iter()
            .map(|(at, v)| ((at - start) as f64 / 1000.0, *v))
            .collect();
        let stable: Vec<(f64, f64)> = s
            .stable_points
            .iter()
            .map(|(at, v)| ((at - start) as f64 / 1000.0, *v))
            .collect();
        let x_max = points.last().map(|p| p.0).unwrap_or(0.0).max(1.0);
        let limit = s.target.as_deref().and_then(threshold);
        let warn_limit = s.warning.as_deref().and_then(threshold);
        let y_max = points
            .iter()
            .map(|p| p.1)
            .chain(stable.iter().map(|p| p.1))
            .chain(limit)
            .chain(warn_limit)
            .fold(0.0_f64, f64::max)
            .max(f64::MIN_POSITIVE)
            * 1.2;
        let line = limit
            .map(|l| vec![(0.0, l), (x_max, l)])
            .unwrap_or_default();
        let warn_line = warn_limit
            .map(|l| vec![(0.0, l), (x_max, l)])
            .unwrap_or_default();
        let steps: Vec<(f64, f64)> = app
            .run
            .weight_changes
            .iter()
            .filter(|t| t.at_ms >= start)
            .map(|t| ((t.at_ms - start) as f64 / 1000.0, y_max * 0.98))
            .collect();
        // Series and lines in drawing order; empty ones are left out.
        let datasets: Vec<Dataset> = [
            (
                "new version",
                Marker::Braille,
                GraphType::Line,
                "series-canary",
                &points,
            ),
            (
                "stable",
                Marker::Braille,
                GraphType::Line,
                "series-stable",
                &stable,
            ),
            (
                "pass",
                Marker::Dot,
                GraphType::Line,
                "threshold-pass",
                &line,
            ),
            (
                "warning",
                Marker::Dot,
                GraphType::Line,
                "threshold-warning",
                &warn_line,
            ),
            (
                "traffic step",
                Marker::Dot,
                GraphType::Scatter,
                "muted",
                &steps,
            ),
        ]
        .into_iter()
        .filter(|(name, .., data)| *name == "new version" || !data.is_empty())
        .map(|(name, marker, graph, slot, data)| {
            Dataset::default()
                .name(name)
                .marker(marker)
                .graph_type(graph)
                .style(t.fg(slot))
                .data(data)
        })
        .collect();
        let passes = match (s.last, limit) {
            (None, _) => Status::Failed,
            (Some(v), Some(_)) => {
                if s.target.as_deref().is_some_and(|c| {
                    crate::slo::criteria::parse(c)
                        .map(|c| c.op.holds(v, c.value))
                        .unwrap_or(false)
                }) {
                    Status::Passed
                } else {
                    Status::Failed
                }
            }
            (Some(_), None) => Status::Passed,
        };
        let title = Line::from(vec![
            Span::styled(
                format!(" {sli} "),
                t.fg("text").add_modifier(Modifier::BOLD),
            ),
            Span::styled(
                s.last
                    .map(|v| format!("{} ", figure(v)))
                    .unwrap_or_else(|| "no data ".into()),
                t.fg("text"),
            ),
            Span::styled(format!("{} ", passes.glyph()), t.status(passes)),
            Span::styled(
                s.stable_last
                    .map(|v| format!("· stable {} ", figure(v)))
                    .unwrap_or_default(),
                t.fg("series-stable"),
            ),
            Span::styled(
                s.target
                    .as_ref()
                    .map(|c| format!("pass {c} "))
                    .unwrap_or_default(),
                t.fg("threshold-pass"),
            ),
            Span::styled(
                s.warning
                    .as_ref()
                    .map(|c| format!("warning {c} "))
                    .unwrap_or_default(),
                t.fg("threshold-warning"),
            ),
        ]);
        let chart = Chart::new(datasets)
            .block(pane(app, title, false))
            .x_axis(
                Axis::default()
                    .bounds([0.0, x_max])
                    .labels(vec![
                        Span::styled("0s", t.fg("muted")),
                        Span::styled(format!("{x_max:.0}s"), t.fg("muted")),
                    ])
                    .style(t.fg("border")),
            )
            .y_axis(
                Axis::default()
                    .bounds([0.0, y_max])
                    .labels(vec![
                        Span::styled("0", t.fg("muted")),
                        Span::styled(figure(y_max), t.fg("muted")),
                    ])
                    .style(t.fg("border")),
            )
            .hidden_legend_constraints((Constraint::Ratio(1, 2), Constraint::Ratio(1, 2)));
        frame.render_widget(chart, *rect);
    }
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

fn pane<'a>(app: &App, title: impl Into<Line<'a>>, focused: bool) -> Block<'a> {
    Block::default()
        .borders(Borders::ALL)
        .border_style(app.theme.border(focused))
        .title(title)
}

fn draw_header(frame: &mut Frame, app: &App, area: Rect) {
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

fn draw_stages(frame: &mut Frame, app: &App, area: Rect) {
    let t = &app.theme;
    let run = &app.run;
    let selected = app.selection();
    let mut lines: Vec<Line> = Vec::new();
    let mut selected_line = 0;
    let width = area.width.saturating_sub(2) as usize;
    for (i, stage) in run.stages.iter().enumerate() {
        let took = match (stage.started_ms, stage.finished_ms) {
            (Some(s), Some(f)) => duration(f - s),
            (Some(s), None) => duration(app.now_ms - s),
            _ => String::new(),
        };
        lines.push(row(
            vec![
                Span::styled(format!("{} ", stage.status.glyph()), t.status(stage.status)),
                Span::styled(
                    stage.name.clone(),
                    t.fg("text").add_modifier(Modifier::BOLD),
                ),
            ],
            took,
            width,
            t.fg("muted"),
        ));
        for (j, step) in stage.steps.iter().enumerate() {
            let group = if step.group.is_some() { "┃" } else { " " };
            let what = if step.text().is_empty() {
                step.description.clone()
            } else {
                step.text().to_owned()
            };
            let took = match (step.started_ms, step.finished_ms) {
                (Some(s), Some(f)) => duration(f - s),
                (Some(s), None) => duration(app.now_ms - s),
                _ => String::new(),
            };
            let mut name_style = t.fg("text");
            if matches!(
                step.status,
                Status::Running | Status::WaitingForApproval | Status::Paused
            ) {
                name_style = name_style.add_modifier(Modifier::BOLD);
            }
            let mut line = row(
                vec![
                    Span::styled(format!(" {group}"), t.fg("muted")),
                    Span::styled(format!("{} ", step.status.glyph()), t.status(step.status)),
                    Span::styled(format!("{:<10} ", step.name), name_style),
                    Span::styled(what, t.fg("muted")),
                ],
                took,
                width,
                t.fg("muted"),
            );
            if selected == Some((i, j)) {
                selected_line = lines.len();
                line = line.style(t.selected());
            }
            lines.push(line);
        }
    }
    // What the engine waits for (or how the run ended) sits on the frame, always in view.
    let mut block = pane(app, " Stages ", app.focus == Pane::Stages);
    if let Some(next) = run.waiting_for() {
        block = block.title_bottom(Line::from(Span::styled(
            format!(" next: {next} "),
            t.status(Status::Paused),
        )));
    } else if let (true, Some(reason)) = (run.ended(), &run.reason) {
        block = block.title_bottom(Line::from(Span::styled(
            format!(" {} {} ", run.status.glyph(), reason),
            t.status(run.status),
        )));
    }
    let inner = area.height.saturating_sub(2) as usize;
    let skip = (selected_line + 1).saturating_sub(inner);
    frame.render_widget(
        Paragraph::new(lines).block(block).scroll((skip as u16, 0)),
        area,
    );
}

/// A row with `right` flushed to the right edge, the left part cut to fit.
fn row<'a>(mut left: Vec<Span<'a>>, right: String, width: usize, style: Style) -> Line<'a> {
    let right_w = right.chars().count();
    let budget = width.saturating_sub(right_w + 1);
    let mut used = 0;
    for span in &mut left {
        let w = span.content.chars().count();
        if used + w > budget {
            let keep = budget.saturating_sub(used);
            let cut: String = span.content.chars().take(keep.saturating_sub(1)).collect();
            span.content = if keep > 0 {
                format!("{cut}…")
            } else {
                String::new()
            }
            .into();
            used = budget;
        } else {
            used += w;
        }
    }
    let pad = width.saturating_sub(used + right_w);
    left.push(Span::raw(" ".repeat(pad)));
    left.push(Span::styled(right, style));
    Line::from(left)
}

fn draw_preflight(frame: &mut Frame, app: &App, area: Rect) {
    let t = &app.theme;
    let focused = app.focus == Pane::Preflight;
    let Some((_, step)) = app.run.preflight() else {
        let block = pane(app, " Pre-flight ", focused);
        frame.render_widget(
            Paragraph::new(Line::from(Span::styled(
                "no pre-flight in this run yet",
                t.fg("muted"),
            )))
            .block(block),
            area,
        );
        return;
    };
    let failed = step
        .evidence
        .iter()
        .filter(|e| e.verdict != Verdict::Pass)
        .count();
    let title = format!(
        " Pre-flight ─ {} {} checks, {failed} failing ",
        step.status.glyph(),
        step.evidence.len()
    );
    let mut lines: Vec<Line> = Vec::new();
    // Failures first: they are what the operator came to see.
    let mut evidence: Vec<_> = step.evidence.iter().collect();
    evidence.sort_by_key(|e| e.verdict == Verdict::Pass);
    for e in evidence {
        let mut spans = vec![
            Span::styled(
                format!("{} ", e.verdict.glyph()),
                t.status(e.verdict.status()),
            ),
            Span::styled(e.check.clone(), t.fg("text")),
        ];
        if let Some(v) = &e.value {
            spans.push(Span::styled(format!("  {v}"), t.fg("muted")));
        }
        if e.verdict != Verdict::Pass
            && let Some(x) = &e.expected
        {
            spans.push(Span::styled(format!(" (expected {x})"), t.fg("muted")));
        }
        lines.push(Line::from(spans));
    }
    if step.evidence.is_empty() {
        lines.push(Line::from(Span::styled(
            step.text().to_owned(),
            t.fg("muted"),
        )));
    }
    frame.render_widget(
        Paragraph::new(lines)
            .block(pane(app, title, focused))
            .wrap(Wrap { trim: false }),
        area,
    );
}

fn draw_output(frame: &mut Frame, app: &App, area: Rect) {
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

fn draw_footer(frame: &mut Frame, app: &App, area: Rect) {
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

fn draw_history(frame: &mut Frame, app: &App, area: Rect) {
    let t = &app.theme;
    let Some(h) = &app.history else {
        return;
    };
    let mut lines = vec![Line::from(Span::styled(
        "runs (newest first)",
        t.fg("accent").add_modifier(Modifier::BOLD),
    ))];
    for r in &h.runs {
        let (id, pipeline, status, code) = (r.id, &r.pipeline, &r.status, r.exit_code);
        let took = r
            .finished_ms
            .map(|f| duration(f - r.started_ms))
            .unwrap_or_default();
        lines.push(Line::from(vec![
            Span::styled(format!("{} ", status.glyph()), t.status(*status)),
            Span::styled(
                format!("run {id:<5} "),
                t.fg("text").add_modifier(Modifier::BOLD),
            ),
            Span::styled(format!("{pipeline:<16} "), t.fg("text")),
            Span::styled(format!("{:<12} ", status.to_string()), t.status(*status)),
            Span::styled(format!("{} ", date_time(r.started_ms)), t.fg("muted")),
            Span::styled(format!("{took:>7} "), t.fg("muted")),
            Span::styled(
                code.map(|c| format!("exit {c}")).unwrap_or_default(),
                t.fg("muted"),
            ),
        ]));
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
    let rect = centered(
        area,
        area.width.saturating_sub(6),
        area.height.saturating_sub(2),
    );
    frame.render_widget(Clear, rect);
    frame.render_widget(
        Paragraph::new(lines)
            .block(pane(app, " History ─ Esc closes ", true))
            .wrap(Wrap { trim: false }),
        rect,
    );
}

fn draw_help(frame: &mut Frame, app: &App, area: Rect) {
    let t = &app.theme;
    let keys: Vec<Line> = KEYS
        .iter()
        .filter(|b| !(app.read_only && b.acts))
        .map(|b| {
            Line::from(vec![
                Span::styled(
                    format!("{:>10}  ", app.keymap.label(b)),
                    t.fg("accent").add_modifier(Modifier::BOLD),
                ),
                Span::styled(b.help, t.fg("text")),
            ])
        })
        .collect();
    let legend = Line::from(Span::styled(
        "glyphs: ✓ passed  ⚠ warning  ✗ failed  ▶ running  ⏸ paused  ? approval  ○ pending  ↺ rolled back  ■ aborted",
        t.fg("muted"),
    ));
    // A short terminal gets the keys in two columns rather than a cut list.
    let two_columns = keys.len() as u16 + 4 > area.height;
    let rows = if two_columns {
        keys.len().div_ceil(2)
    } else {
        keys.len()
    };
    let width = if two_columns { 160 } else { 86 };
    let rect = centered(area, width, rows as u16 + 4);
    frame.render_widget(Clear, rect);
    let block = pane(app, " Keys ─ Esc closes ", true);
    let inner = block.inner(rect);
    frame.render_widget(block, rect);
    let [body, _, foot] = Layout::vertical([
        Constraint::Min(0),
        Constraint::Length(1),
        Constraint::Length(1),
    ])
    .areas(inner);
    if two_columns {
        let (left, right) = keys.split_at(rows);
        let [l, r] = Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)])
            .areas(body);
        frame.render_widget(Paragraph::new(left.to_vec()), l);
        frame.render_widget(Paragraph::new(right.to_vec()), r);
    } else {
        frame.render_widget(Paragraph::new(keys), body);
    }
    frame.render_widget(Paragraph::new(legend), foot);
}

fn draw_detail(frame: &mut Frame, app: &App, area: Rect) {
    let t = &app.theme;
    let Some((i, j)) = app.selection() else {
        return;
    };
    let stage = &app.run.stages[i];
    let step = &stage.steps[j];
    let mut lines = vec![
        Line::from(vec![
            Span::styled(format!("{} ", step.status.glyph()), t.status(step.status)),
            Span::styled(
                format!("{}/{}", stage.name, step.name),
                t.fg("text").add_modifier(Modifier::BOLD),
            ),
            Span::styled(format!("  {} · {}", step.kind, step.status), t.fg("muted")),
        ]),
        Line::from(Span::styled(step.description.clone(), t.fg("muted"))),
    ];
    if !step.text().is_empty() {
        lines.push(Line::from(Span::styled(
            step.text().to_owned(),
            t.fg("text"),
        )));
    }
    lines.push(Line::default());
    if step.evidence.is_empty() {
        lines.push(Line::from(Span::styled(
            "no checks recorded for this step",
            t.fg("muted"),
        )));
    }
    let objectives: Vec<&Evidence> = step
        .evidence
        .iter()
        .filter(|e| e.objective.is_some())
        .collect();
    if !objectives.is_empty() {
        objective_table(app, &step.evidence, &mut lines);
    }
    for e in step
        .evidence
        .iter()
        .filter(|e| objectives.is_empty() || (e.objective.is_none() && e.check != TOTAL_SCORE))
    {
        let mut head = vec![
            Span::styled(
                format!("{} ", e.verdict.glyph()),
                t.status(e.verdict.status()),
            ),
            Span::styled(e.check.clone(), t.fg("text").add_modifier(Modifier::BOLD)),
            Span::styled(
                format!("  = {}", e.value.as_deref().unwrap_or("no value")),
                t.fg("text"),
            ),
        ];
        if let Some(x) = &e.expected {
            head.push(Span::styled(format!("   target {x}"), t.fg("muted")));
        }
        head.push(Span::styled(
            format!("   {}", e.verdict),
            t.status(e.verdict.status()),
        ));
        lines.push(Line::from(head));
        if let Some(d) = &e.detail {
            lines.push(Line::from(Span::styled(format!("    {d}"), t.fg("muted"))));
        }
        if let Some(q) = &e.query {
            lines.push(Line::from(Span::styled(
                format!("    query: {q}"),
                t.fg("muted"),
            )));
        }
    }
    // Long queries wrap: the detail takes the screen but for a margin.
    let rect = centered(
        area,
        area.width.saturating_sub(6),
        area.height.saturating_sub(2),
    );
    frame.render_widget(Clear, rect);
    frame.render_widget(
        Paragraph::new(lines)
            .block(pane(app, " Detail ─ Esc closes ", true))
            .wrap(Wrap { trim: false }),
        rect,
    );
}

/// An SLO gate's objectives as a table (value, pass and warning targets, weight, score,
/// key flag, verdict; the query under each), then the total score against its thresholds:
/// the answer to "why did it fail?".
fn objective_table(app: &App, evidence: &[Evidence], lines: &mut Vec<Line<'static>>) {
    let t = &app.theme;
    let rows: Vec<(&Evidence, &crate::events::ObjectiveFacts)> = evidence
        .iter()
        .filter_map(|e| Some((e, e.objective.as_ref()?)))
        .collect();
    let cells = |e: &Evidence, o: &crate::events::ObjectiveFacts| {
        [
            e.check.clone(),
            e.value.clone().unwrap_or_else(|| "no data".into()),
            e.expected
                .as_deref()
                .map(|x| x.trim_start_matches("pass ").to_owned())
                .unwrap_or_else(|| "(info)".into()),
            o.warning.clone().unwrap_or_else(|| "·".into()),
            format_number(o.weight),
            format_number(o.score),
            if o.key { "key" } else { "·" }.to_owned(),
        ]
    };
    let head = [
        "objective",
        "value",
        "pass",
        "warning",
        "weight",
        "score",
        "key",
    ];
    let mut widths: Vec<usize> = head.iter().map(|h| h.chars().count()).collect();
    for (e, o) in &rows {
        for (w, c) in widths.iter_mut().zip(cells(e, o)) {
            *w = (*w).max(c.chars().count().min(28));
        }
    }
    let pad = |text: &str, w: usize| {
        let text: String = text.chars().take(28).collect();
        format!("{text:<w$}  ")
    };
    let mut header = vec![Span::raw("  ")];
    for (h, w) in head.iter().zip(&widths) {
        header.push(Span::styled(
            pad(h, *w),
            t.fg("muted").add_modifier(Modifier::BOLD),
        ));
    }
    header.push(Span::styled(
        "verdict",
        t.fg("muted").add_modifier(Modifier::BOLD),
    ));
    lines.push(Line::from(header));
    for (e, o) in &rows {
        let status = t.status(e.verdict.status());
        let mut row = vec![Span::styled(format!("{} ", e.verdict.glyph()), status)];
        for (i, (c, w)) in cells(e, o).iter().zip(&widths).enumerate() {
            let style = match i {
                0 => t.fg("text").add_modifier(Modifier::BOLD),
                1 => status,
                6 if o.key => t.fg("accent").add_modifier(Modifier::BOLD),
                _ => t.fg("text"),
            };
            row.push(Span::styled(pad(c, *w), style));
        }
        row.push(Span::styled(e.verdict.to_string(), status));
        lines.push(Line::from(row));
        if let Some(q) = &e.query {
            lines.push(Line::from(Span::styled(format!("    {q}"), t.fg("muted"))));
        }
    }
    if let Some(total) = evidence.iter().find(|e| e.check == TOTAL_SCORE) {
        let status = t.status(total.verdict.status());
        lines.push(Line::default());
        lines.push(Line::from(vec![
            Span::styled(format!("{} ", total.verdict.glyph()), status),
            Span::styled("total score ", t.fg("text").add_modifier(Modifier::BOLD)),
            Span::styled(
                total.value.clone().unwrap_or_default(),
                status.add_modifier(Modifier::BOLD),
            ),
            Span::styled(
                format!("   {}", total.expected.as_deref().unwrap_or_default()),
                t.fg("muted"),
            ),
            Span::styled(format!("   {}", total.verdict), status),
        ]));
        if let Some(d) = &total.detail {
            lines.push(Line::from(Span::styled(format!("  {d}"), t.fg("text"))));
        }
    }
    lines.push(Line::default());
}

/// A weight or score without needless decimals.
fn format_number(x: f64) -> String {
    if x.fract() == 0.0 {
        format!("{x:.0}")
    } else {
        format!("{x:.2}")
    }
}

fn draw_confirm(
    frame: &mut Frame,
    app: &App,
    area: Rect,
    command: crate::events::CommandKind,
    typed: &str,
    name: Option<&str>,
) {
    let t = &app.theme;
    let stage = app
        .run
        .current_stage()
        .map(|s| s.name.clone())
        .unwrap_or_default();
    let what = match command {
        crate::events::CommandKind::Rollback => {
            format!("Roll back stage {stage} of {}?", app.run.service)
        }
        _ => format!("Abort run {} of {}?", app.run.run, app.run.pipeline),
    };
    let mut lines = vec![
        Line::from(Span::styled(
            what,
            t.fg("fail").add_modifier(Modifier::BOLD),
        )),
        Line::default(),
    ];
    match name {
        Some(n) => {
            lines.push(Line::from(Span::styled(
                format!("Stage {stage} is protected: type {n} and press Enter."),
                t.fg("text"),
            )));
            lines.push(Line::from(vec![
                Span::styled("> ", t.fg("accent")),
                Span::styled(typed.to_owned(), t.fg("text").add_modifier(Modifier::BOLD)),
                Span::styled("▏", t.fg("accent")),
            ]));
        }
        None => lines.push(Line::from(vec![
            Span::styled(" y ", t.fg("fail").add_modifier(Modifier::BOLD)),
            Span::styled("confirm   ", t.fg("text")),
            Span::styled(" n Esc ", t.fg("accent").add_modifier(Modifier::BOLD)),
            Span::styled("cancel", t.fg("text")),
        ])),
    }
    let rect = centered(area, 60, lines.len() as u16 + 2);
    frame.render_widget(Clear, rect);
    frame.render_widget(
        Paragraph::new(lines)
            .block(
                Block::default()
                    .borders(Borders::ALL)
                    .border_style(t.fg("fail").add_modifier(Modifier::BOLD))
                    .title(" Confirm "),
            )
            .wrap(Wrap { trim: false }),
        rect,
    );
}

fn draw_toast(frame: &mut Frame, app: &App, area: Rect, text: &str, error: bool) {
    let t = &app.theme;
    let w = u16::try_from(text.chars().count())
        .unwrap_or(u16::MAX)
        .saturating_add(4)
        .min(area.width);
    let rect = Rect {
        x: area.x + area.width - w,
        y: area.y + area.height.saturating_sub(5),
        width: w,
        height: 3.min(area.height),
    };
    let style = if error { t.fg("fail") } else { t.fg("ok") };
    frame.render_widget(Clear, rect);
    frame.render_widget(
        Paragraph::new(Line::from(Span::styled(text.to_owned(), style))).block(
            Block::default()
                .borders(Borders::ALL)
                .border_style(style.add_modifier(Modifier::BOLD)),
        ),
        rect,
    );
}

/// A drawn buffer as an SVG picture (the README's screenshot): one text run per stretch of
/// cells with the same colour and weight, on a dark terminal background.
pub fn svg(buffer: &ratatui::buffer::Buffer) -> String {
    use ratatui::style::Color;
    fn hex(c: Color, fallback: &str) -> String {
        match c {
            Color::Reset => fallback.to_owned(),
            Color::Black => "#1d1f21".into(),
            Color::Red => "#cc6666".into(),
            Color::Green => "#8abf6a".into(),
            Color::Yellow => "#e0c060".into(),
            Color::Blue => "#6f98c9".into(),
            Color::Magenta => "#c58fd8".into(),
            Color::Cyan => "#6ec6c6".into(),
            Color::Gray => "#a0a4a8".into(),
            Color::DarkGray => "#5c6166".into(),
            Color::LightRed => "#ff7b7b".into(),
            Color::LightGreen => "#a8e890".into(),
            Color::LightYellow => "#f6e38c".into(),
            Color::LightBlue => "#8fb8ff".into(),
            Color::LightMagenta => "#e3a8f5".into(),
            Color::LightCyan => "#9ee7e7".into(),
            Color::White => "#f0f0f0".into(),
            Color::Rgb(r, g, b) => format!("#{r:02x}{g:02x}{b:02x}"),
            Color::Indexed(_) => fallback.to_owned(),
        }
    }
    fn escape(s: &str) -> String {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
    }
    let (w, h) = (buffer.area.width, buffer.area.height);
    // DejaVu Sans Mono's advance at 14 px.
    let (cw, ch) = (8.43_f64, 17.0_f64);
    let mut out = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{:.0}\" height=\"{:.0}\" font-family=\"DejaVu Sans Mono, Menlo, Consolas, monospace\" font-size=\"14\">\n<rect width=\"100%\" height=\"100%\" fill=\"#16181c\"/>\n",
        f64::from(w) * cw + 16.0,
        f64::from(h) * ch + 16.0
    );
    for y in 0..h {
        for x in 0..w {
            let bg = buffer[(x, y)].style().bg.unwrap_or(Color::Reset);
            if bg != Color::Reset {
                out.push_str(&format!(
                    "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{ch}\" fill=\"{}\"/>\n",
                    8.0 + f64::from(x) * cw,
                    8.0 + f64::from(y) * ch,
                    cw + 0.5,
                    hex(bg, "#16181c")
                ));
            }
        }
    }
    for y in 0..h {
        let mut x = 0;
        while x < w {
            let style = buffer[(x, y)].style();
            // A run of cells in the same foreground and weight.
            let start = x;
            let mut text = String::new();
            // Box-drawing cells one by one: some renderers (librsvg) drop runs of them.
            let boxy = |c: &ratatui::buffer::Cell| {
                c.symbol()
                    .chars()
                    .next()
                    .is_some_and(|ch| ('\u{2500}'..='\u{257f}').contains(&ch))
            };
            let first_boxy = boxy(&buffer[(x, y)]);
            while x < w {
                let c = &buffer[(x, y)];
                if c.style().fg != style.fg
                    || c.style().add_modifier != style.add_modifier
                    || (x > start && (first_boxy || boxy(c)))
                {
                    break;
                }
                text.push_str(c.symbol());
                x += 1;
            }
            if text.trim().is_empty() {
                continue;
            }
            let bold = if style.add_modifier.contains(Modifier::BOLD) {
                " font-weight=\"bold\""
            } else {
                ""
            };
            out.push_str(&format!(
                "<text x=\"{:.1}\" y=\"{:.1}\" fill=\"{}\"{bold} xml:space=\"preserve\">{}</text>\n",
                8.0 + f64::from(start) * cw,
                8.0 + f64::from(y) * ch + 13.0,
                hex(style.fg.unwrap_or(Color::Reset), "#d8dadd"),
                escape(&text)
            ));
        }
    }
    out.push_str("</svg>\n");
    out
}
