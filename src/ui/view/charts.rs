//! The SLO charts: each SLI a release analyses, new version against stable, with its pass
//! and warning thresholds and the traffic steps.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Modifier;
use ratatui::symbols::Marker;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Axis, Block, Chart, Dataset, GraphType, Paragraph, Wrap};

use super::pane;
use crate::events::Status;
use crate::slo::threshold;
use crate::ui::app::{App, Pane};
use crate::ui::state::Series;
use crate::ui::theme::Theme;

/// A value with as many digits as its size needs: `182.4`, `3.25`, `0.0014`.
fn figure(v: f64) -> String {
    match v.abs() {
        a if a >= 100.0 => format!("{v:.1}"),
        a if a >= 1.0 => format!("{v:.2}"),
        _ => format!("{v:.4}"),
    }
}

/// The fewest rows a chart is drawn in: its borders, the time axis and its labels, and
/// four rows of plot (sixteen braille dots), enough to tell the pass line, the new
/// version and the stable one apart.
pub(super) const MIN_ROWS: u16 = 8;

/// Pages needed for `charts` charts in `height` rows, each chart at least [`MIN_ROWS`].
pub(super) fn pages(charts: usize, height: u16) -> usize {
    let per_page = usize::from(height / MIN_ROWS).max(1);
    charts.div_ceil(per_page).max(1)
}

/// As many charts as fit at a readable height, stacked on one time axis from the first
/// analysis; the rest on further pages (`]`, `[`, or `5` again).
pub(super) fn draw_charts(frame: &mut Frame, app: &App, area: Rect) {
    let all: Vec<_> = app.run.series.iter().collect();
    if all.is_empty() {
        frame.render_widget(
            Paragraph::new(Line::from(Span::styled(
                "No SLO analysis yet. A release's analysis charts each SLI here, the new \
                 version against the stable one, with the pass and warning lines.",
                app.theme.fg("muted"),
            )))
            .wrap(Wrap { trim: true })
            .block(pane(app, " SLO charts ", app.focus == Pane::Charts)),
            area,
        );
        return;
    }
    let per_page = usize::from(area.height / MIN_ROWS).max(1);
    let pages = all.len().div_ceil(per_page);
    let page = app.chart_page.min(pages - 1);
    let shown = &all[page * per_page..((page + 1) * per_page).min(all.len())];
    let areas = Layout::vertical(vec![Constraint::Fill(1); shown.len()]).split(area);
    let start = all
        .iter()
        .filter_map(|(_, s)| s.points.first().map(|p| p.0))
        .min()
        .unwrap_or(app.now_ms);
    for (i, ((sli, s), rect)) in shown.iter().zip(areas.iter()).enumerate() {
        let plot = Plot::new(app, s, start);
        let title = title(&app.theme, sli, s, verdict(s, plot.limit));
        let mut block = pane(app, title, app.focus == Pane::Charts);
        if pages > 1 && i + 1 == shown.len() {
            let first = page * per_page + 1;
            let last = first + shown.len() - 1;
            let which = if first == last {
                format!("chart {first}")
            } else {
                format!("charts {first}–{last}")
            };
            block = block.title_bottom(
                Line::from(Span::styled(
                    format!(" {which} of {} · ] next ", all.len()),
                    app.theme.fg("accent"),
                ))
                .right_aligned(),
            );
        }
        frame.render_widget(chart(app, &plot, block), *rect);
    }
}

/// One SLI's points and lines in chart coordinates (seconds from `start`, value).
struct Plot {
    points: Vec<(f64, f64)>,
    stable: Vec<(f64, f64)>,
    line: Vec<(f64, f64)>,
    warn_line: Vec<(f64, f64)>,
    steps: Vec<(f64, f64)>,
    limit: Option<f64>,
    x_max: f64,
    y_min: f64,
    y_max: f64,
}

/// The value axis for `values`: from zero when they are all near it in proportion (an
/// error ratio against its limit), else around them (an availability of 0.9995 against
/// 0.999), with a margin, so that the lines and the thresholds stay apart.
fn y_bounds(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) = values
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
    if !lo.is_finite() {
        return (0.0, 1.0);
    }
    let span = hi - lo;
    if lo >= 0.0 && span >= lo {
        return (0.0, (hi * 1.2).max(f64::MIN_POSITIVE));
    }
    let margin = if span > 0.0 {
        span * 0.2
    } else {
        (hi.abs() * 0.1).max(f64::MIN_POSITIVE)
    };
    (lo - margin, hi + margin)
}

impl Plot {
    fn new(app: &App, s: &Series, start: i64) -> Plot {
        let at = |ms: i64| (ms - start) as f64 / 1000.0;
        let points: Vec<(f64, f64)> = s.points.iter().map(|(t, v)| (at(*t), *v)).collect();
        let stable: Vec<(f64, f64)> = s.stable_points.iter().map(|(t, v)| (at(*t), *v)).collect();
        let x_max = points.last().map(|p| p.0).unwrap_or(0.0).max(1.0);
        let limit = s.target.as_deref().and_then(threshold);
        let warn_limit = s.warning.as_deref().and_then(threshold);
        let (y_min, y_max) = y_bounds(
            points
                .iter()
                .map(|p| p.1)
                .chain(stable.iter().map(|p| p.1))
                .chain(limit)
                .chain(warn_limit),
        );
        let level = |l: Option<f64>| l.map(|l| vec![(0.0, l), (x_max, l)]).unwrap_or_default();
        let steps = app
            .run
            .weight_changes
            .iter()
            .filter(|t| t.at_ms >= start)
            .map(|t| (at(t.at_ms), y_max - (y_max - y_min) * 0.02))
            .collect();
        Plot {
            line: level(limit),
            warn_line: level(warn_limit),
            points,
            stable,
            steps,
            limit,
            x_max,
            y_min,
            y_max,
        }
    }

    /// Series and lines in drawing order; empty ones are left out.
    fn datasets<'a>(&'a self, t: &Theme) -> Vec<Dataset<'a>> {
        [
            (
                "new version",
                Marker::Braille,
                GraphType::Line,
                "series-canary",
                &self.points,
            ),
            (
                "stable",
                Marker::Braille,
                GraphType::Line,
                "series-stable",
                &self.stable,
            ),
            (
                "pass",
                Marker::Dot,
                GraphType::Line,
                "threshold-pass",
                &self.line,
            ),
            (
                "warning",
                Marker::Dot,
                GraphType::Line,
                "threshold-warning",
                &self.warn_line,
            ),
            (
                "traffic step",
                Marker::Dot,
                GraphType::Scatter,
                "muted",
                &self.steps,
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
        .collect()
    }
}

/// Whether the latest value meets the pass criterion (no data never passes).
fn verdict(s: &Series, limit: Option<f64>) -> Status {
    match (s.last, limit) {
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
    }
}

/// The chart's title: the SLI, its latest value and verdict, the stable value, the targets.
fn title<'a>(t: &Theme, sli: &str, s: &Series, passes: Status) -> Line<'a> {
    Line::from(vec![
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
    ])
}

fn chart<'a>(app: &App, plot: &'a Plot, block: Block<'a>) -> Chart<'a> {
    let t = &app.theme;
    Chart::new(plot.datasets(t))
        .block(block)
        .x_axis(
            Axis::default()
                .bounds([0.0, plot.x_max])
                .labels(vec![
                    Span::styled("0s", t.fg("muted")),
                    Span::styled(format!("{:.0}s", plot.x_max), t.fg("muted")),
                ])
                .style(t.fg("border")),
        )
        .y_axis(
            Axis::default()
                .bounds([plot.y_min, plot.y_max])
                .labels(vec![
                    Span::styled(
                        if plot.y_min == 0.0 {
                            "0".to_owned()
                        } else {
                            figure(plot.y_min)
                        },
                        t.fg("muted"),
                    ),
                    Span::styled(figure(plot.y_max), t.fg("muted")),
                ])
                .style(t.fg("border")),
        )
        .hidden_legend_constraints((Constraint::Ratio(1, 2), Constraint::Ratio(1, 2)))
}
