//! The SLO charts: each SLI a release analyses, new version against stable, with its pass
//! and warning thresholds and the traffic steps.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Modifier;
use ratatui::symbols::Marker;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Axis, Chart, Dataset, GraphType};

use super::pane;
use crate::events::Status;
use crate::slo::threshold;
use crate::ui::app::App;
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

/// Up to six charts stacked, all on the same time axis from the first analysis.
pub(super) fn draw_charts(frame: &mut Frame, app: &App, area: Rect) {
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
        let plot = Plot::new(app, s, start);
        let title = title(&app.theme, sli, s, verdict(s, plot.limit));
        frame.render_widget(chart(app, &plot, title), *rect);
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
    y_max: f64,
}

impl Plot {
    fn new(app: &App, s: &Series, start: i64) -> Plot {
        let at = |ms: i64| (ms - start) as f64 / 1000.0;
        let points: Vec<(f64, f64)> = s.points.iter().map(|(t, v)| (at(*t), *v)).collect();
        let stable: Vec<(f64, f64)> = s.stable_points.iter().map(|(t, v)| (at(*t), *v)).collect();
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
        let level = |l: Option<f64>| l.map(|l| vec![(0.0, l), (x_max, l)]).unwrap_or_default();
        let steps = app
            .run
            .weight_changes
            .iter()
            .filter(|t| t.at_ms >= start)
            .map(|t| (at(t.at_ms), y_max * 0.98))
            .collect();
        Plot {
            line: level(limit),
            warn_line: level(warn_limit),
            points,
            stable,
            steps,
            limit,
            x_max,
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

fn chart<'a>(app: &App, plot: &'a Plot, title: Line<'a>) -> Chart<'a> {
    let t = &app.theme;
    Chart::new(plot.datasets(t))
        .block(pane(app, title, false))
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
                .bounds([0.0, plot.y_max])
                .labels(vec![
                    Span::styled("0", t.fg("muted")),
                    Span::styled(figure(plot.y_max), t.fg("muted")),
                ])
                .style(t.fg("border")),
        )
        .hidden_legend_constraints((Constraint::Ratio(1, 2), Constraint::Ratio(1, 2)))
}
