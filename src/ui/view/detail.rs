//! The detail overlay: a step's evidence; for an SLO gate, its objectives as a table.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Modifier;
use ratatui::text::{Line, Span};

use super::overlay;
use crate::events::{Evidence, ObjectiveFacts};
use crate::slo::score::TOTAL_SCORE;
use crate::ui::app::App;
use crate::ui::state::StepView;

/// A step's checks over the whole frame but for a margin: for an SLO gate its objectives
/// as a table first, then whatever else it checked.
pub(super) fn draw_detail(frame: &mut Frame, app: &App, area: Rect) {
    let Some((i, j)) = app.selection() else {
        return;
    };
    let stage = &app.run.stages[i];
    let step = &stage.steps[j];
    let mut lines = heading(app, &stage.name, step);
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
        check_lines(app, e, &mut lines);
    }
    // Long queries wrap: the detail takes the screen but for a margin.
    overlay(frame, app, area, " Detail ─ Esc closes ", lines);
}

/// The step's name, kind, state, description and latest text.
fn heading(app: &App, stage: &str, step: &StepView) -> Vec<Line<'static>> {
    let t = &app.theme;
    let mut lines = vec![
        Line::from(vec![
            Span::styled(format!("{} ", step.status.glyph()), t.status(step.status)),
            Span::styled(
                format!("{stage}/{}", step.name),
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
    lines
}

/// One check: verdict, value against its target, then its detail and query.
fn check_lines(app: &App, e: &Evidence, lines: &mut Vec<Line<'static>>) {
    let t = &app.theme;
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
    if let Some(c) = &e.comparison {
        comparison_lines(app, c, lines);
    }
}

/// The most samples a sparkline shows (the latest).
const SPARK_MAX: usize = 40;

/// Baseline and canary side by side: a sparkline of each sample on one scale, and its
/// summary.
fn comparison_lines(
    app: &App,
    c: &crate::events::MetricComparison,
    lines: &mut Vec<Line<'static>>,
) {
    let t = &app.theme;
    let latest = |v: &[Option<f64>]| v[v.len().saturating_sub(SPARK_MAX)..].to_vec();
    let (b, k) = (latest(&c.baseline.values), latest(&c.canary.values));
    let finite = b
        .iter()
        .chain(&k)
        .flatten()
        .copied()
        .filter(|x| x.is_finite());
    let (lo, hi) = finite.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), x| {
        (lo.min(x), hi.max(x))
    });
    for (side, values, s, style) in [
        ("baseline", &b, &c.baseline, t.fg("muted")),
        ("canary  ", &k, &c.canary, t.fg("text")),
    ] {
        lines.push(Line::from(vec![
            Span::styled(format!("    {side} "), t.fg("muted")),
            Span::styled(
                format!("{:<width$}", sparkline(values, lo, hi), width = SPARK_MAX),
                style,
            ),
            Span::styled(
                format!("  {}", crate::report::markdown::sample_cell(s)),
                t.fg("muted"),
            ),
        ]));
    }
}

/// Values as block characters scaled from `lo` to `hi`; a missing value is a space.
fn sparkline(values: &[Option<f64>], lo: f64, hi: f64) -> String {
    const BLOCKS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    let span = hi - lo;
    values
        .iter()
        .map(|v| match v {
            Some(x) if x.is_finite() => {
                let level = if span > 0.0 {
                    (x - lo) / span * 7.0
                } else {
                    0.0
                };
                BLOCKS[(level.round().clamp(0.0, 7.0)) as usize]
            }
            _ => ' ',
        })
        .collect()
}

/// The objective table's column heads.
const HEAD: [&str; 7] = [
    "objective",
    "value",
    "pass",
    "warning",
    "weight",
    "score",
    "key",
];

/// The longest a cell is shown.
const CELL_MAX: usize = 28;

/// An objective's cells, in the order of [`HEAD`].
fn cells(e: &Evidence, o: &ObjectiveFacts) -> [String; 7] {
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
}

/// A cell cut to [`CELL_MAX`] and padded to its column's width.
fn pad(text: &str, w: usize) -> String {
    let text: String = text.chars().take(CELL_MAX).collect();
    format!("{text:<w$}  ")
}

/// An SLO gate's objectives as a table (value, pass and warning targets, weight, score,
/// key flag, verdict; the query under each), then the total score against its thresholds:
/// the answer to "why did it fail?".
fn objective_table(app: &App, evidence: &[Evidence], lines: &mut Vec<Line<'static>>) {
    let t = &app.theme;
    let rows: Vec<(&Evidence, &ObjectiveFacts)> = evidence
        .iter()
        .filter_map(|e| Some((e, e.objective.as_ref()?)))
        .collect();
    let mut widths: Vec<usize> = HEAD.iter().map(|h| h.chars().count()).collect();
    for (e, o) in &rows {
        for (w, c) in widths.iter_mut().zip(cells(e, o)) {
            *w = (*w).max(c.chars().count().min(CELL_MAX));
        }
    }
    let mut header = vec![Span::raw("  ")];
    for (h, w) in HEAD.iter().zip(&widths) {
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
        objective_row(app, e, o, &widths, lines);
    }
    if let Some(total) = evidence.iter().find(|e| e.check == TOTAL_SCORE) {
        total_lines(app, total, lines);
    }
    lines.push(Line::default());
}

/// One objective's row, and its query under it.
fn objective_row(
    app: &App,
    e: &Evidence,
    o: &ObjectiveFacts,
    widths: &[usize],
    lines: &mut Vec<Line<'static>>,
) {
    let t = &app.theme;
    let status = t.status(e.verdict.status());
    let mut row = vec![Span::styled(format!("{} ", e.verdict.glyph()), status)];
    for (i, (c, w)) in cells(e, o).iter().zip(widths).enumerate() {
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

/// The total score against its thresholds, with how it was reached.
fn total_lines(app: &App, total: &Evidence, lines: &mut Vec<Line<'static>>) {
    let t = &app.theme;
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

/// A weight or score without needless decimals.
fn format_number(x: f64) -> String {
    if x.fract() == 0.0 {
        format!("{x:.0}")
    } else {
        format!("{x:.2}")
    }
}

#[cfg(test)]
mod tests {
    use super::sparkline;

    #[test]
    fn a_sparkline_scales_both_sides_alike_and_leaves_gaps_for_missing_samples() {
        assert_eq!(sparkline(&[Some(1.0), None, Some(8.0)], 1.0, 8.0), "▁ █");
        assert_eq!(sparkline(&[Some(5.0), Some(5.0)], 5.0, 5.0), "▁▁");
        assert_eq!(sparkline(&[Some(f64::NAN)], 0.0, 1.0), " ");
    }
}
