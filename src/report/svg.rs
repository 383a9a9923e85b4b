//! An SVG chart per SLI a release analysed: the new version's values (a solid line,
//! each analysis a dot coloured by its verdict), the stable version's (dashed), the pass
//! and warning thresholds as horizontal lines, and the release's traffic steps as
//! vertical markers with their weights. Plain SVG 1.1, readable without a browser's
//! scripting and valid XML.

use std::fmt::Write as _;

use super::junit::escape;
use super::{Report, SliPoint, SliSeries, TrafficStep};
use crate::events::Verdict;
use crate::slo::threshold;

const W: f64 = 760.0;
const H: f64 = 340.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 20.0;
const TOP: f64 = 56.0;
const BOTTOM: f64 = 44.0;

const NEW: &str = "#9b59b6";
const STABLE: &str = "#2e86c1";
const PASS: &str = "#27ae60";
const WARNING: &str = "#d68910";
const FAIL: &str = "#c0392b";
const INK: &str = "#2c3e50";
const MUTED: &str = "#7f8c8d";
const GRID: &str = "#e5e8e8";

/// A file-system-safe piece of a name.
fn safe(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// The charts' file names, one per series: `slo-SLI.svg` (`slo-STAGE-STEP-SLI.svg` when
/// more than one release step was analysed), made unique even where names differ only
/// in characters a file name cannot carry, or in case.
pub fn file_names(series: &[SliSeries]) -> Vec<String> {
    let steps: std::collections::BTreeSet<&str> = series.iter().map(|s| s.step.as_str()).collect();
    let mut taken: std::collections::BTreeSet<String> = std::collections::BTreeSet::new();
    series
        .iter()
        .map(|s| {
            let base = if steps.len() > 1 {
                format!("slo-{}-{}", safe(&s.step), safe(&s.sli))
            } else {
                format!("slo-{}", safe(&s.sli))
            };
            let mut name = format!("{base}.svg");
            let mut n = 2;
            while !taken.insert(name.to_lowercase()) {
                name = format!("{base}-{n}.svg");
                n += 1;
            }
            name
        })
        .collect()
}

/// A number for an axis label, short.
fn label(v: f64) -> String {
    match v.abs() {
        0.0 => "0".into(),
        a if a >= 100.0 => format!("{v:.0}"),
        a if a >= 1.0 => format!("{v:.2}"),
        _ => format!("{v:.4}"),
    }
}

fn verdict_colour(v: Verdict) -> &'static str {
    match v {
        Verdict::Pass => PASS,
        Verdict::Warning => WARNING,
        Verdict::Fail | Verdict::Error => FAIL,
    }
}

/// The plot's scales: time from `t0` to `t1` across, values from 0 to `top` up.
struct Scale {
    t0: i64,
    t1: i64,
    top: f64,
}

/// The plot area's width and height.
const PLOT: (f64, f64) = (W - LEFT - RIGHT, H - TOP - BOTTOM);

impl Scale {
    /// Spans every analysis and traffic step of the series (a second at least), and every
    /// value and threshold with a fifth to spare.
    fn new(series: &SliSeries, steps: &[&TrafficStep], thresholds: [Option<f64>; 2]) -> Scale {
        let times = || {
            series
                .points
                .iter()
                .map(|p| p.at_ms)
                .chain(steps.iter().map(|t| t.at_ms))
        };
        let t0 = times().min().unwrap_or(0);
        let t1 = times().max().unwrap_or(0).max(t0 + 1_000);
        let values = series
            .points
            .iter()
            .flat_map(|p| [p.new, p.stable])
            .flatten()
            .filter(|v| v.is_finite());
        let top = values
            .chain(thresholds.into_iter().flatten())
            .fold(0.0_f64, f64::max)
            .max(f64::MIN_POSITIVE)
            * 1.2;
        Scale { t0, t1, top }
    }

    fn x(&self, ms: i64) -> f64 {
        LEFT + (ms - self.t0) as f64 / (self.t1 - self.t0) as f64 * PLOT.0
    }

    fn y(&self, v: f64) -> f64 {
        TOP + PLOT.1 - (v / self.top).clamp(0.0, 1.05) * PLOT.1
    }
}

/// The chart of one series of the report.
pub fn chart(r: &Report, series: &SliSeries) -> String {
    let pass = series.pass.as_deref().and_then(threshold);
    let warning = series.warning.as_deref().and_then(threshold);
    let steps: Vec<_> = r.traffic.iter().filter(|t| t.step == series.step).collect();
    let scale = Scale::new(series, &steps, [pass, warning]);
    let mut s = String::new();
    heading(&mut s, r, series);
    axes(&mut s, &scale);
    traffic_marks(&mut s, &scale, &steps);
    // Thresholds.
    for (name, v, colour) in [("pass", pass, PASS), ("warning", warning, WARNING)] {
        if let Some(v) = v {
            threshold_line(&mut s, &scale, name, v, colour);
        }
    }
    // The two versions: lines broken where an analysis had no data.
    polyline(
        &mut s,
        &scale,
        series,
        |p| p.stable,
        STABLE,
        " stroke-dasharray=\"5 3\"",
    );
    polyline(&mut s, &scale, series, |p| p.new, NEW, "");
    dots(&mut s, &scale, series);
    legend(&mut s);
    s.push_str("</svg>\n");
    s
}

/// The opening tag, the title, and two lines of text: the latest value, then the run.
fn heading(s: &mut String, r: &Report, series: &SliSeries) {
    let sli = series.sli.as_str();
    let _ = writeln!(
        s,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{W}\" height=\"{H}\" viewBox=\"0 0 {W} {H}\" font-family=\"Helvetica, Arial, sans-serif\" font-size=\"12\">"
    );
    let _ = writeln!(
        s,
        "<title>{}</title>\n<rect width=\"{W}\" height=\"{H}\" fill=\"#ffffff\"/>",
        escape(&format!("{sli} during {} (run {})", series.step, r.run))
    );
    let headline = match series.points.last() {
        Some(p) => format!(
            "{sli} · new {} · {} analyses · last verdict {}",
            p.new.map_or_else(|| "no data".into(), label),
            series.points.len(),
            p.verdict
        ),
        None => format!("{sli} · no analyses in this run"),
    };
    let _ = writeln!(
        s,
        "<text x=\"{LEFT}\" y=\"22\" font-size=\"15\" font-weight=\"bold\" fill=\"{INK}\">{}</text>",
        escape(&headline)
    );
    let _ = writeln!(
        s,
        "<text x=\"{LEFT}\" y=\"40\" fill=\"{MUTED}\">{}</text>",
        escape(&format!(
            "{} run {} · {} · pass {} · warning {}",
            r.pipeline,
            r.run,
            series.step,
            series.pass.as_deref().unwrap_or("none"),
            series.warning.as_deref().unwrap_or("none")
        ))
    );
}

/// Grid lines with value labels, time labels, and the time axis.
fn axes(s: &mut String, scale: &Scale) {
    let (t0, t1, top) = (scale.t0, scale.t1, scale.top);
    for i in 0..=4 {
        let v = top / 1.2 * f64::from(i) / 4.0 * 1.2;
        let yy = scale.y(v);
        let _ = writeln!(
            s,
            "<line x1=\"{LEFT}\" y1=\"{yy:.1}\" x2=\"{:.1}\" y2=\"{yy:.1}\" stroke=\"{GRID}\"/>\n<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\" fill=\"{MUTED}\">{}</text>",
            W - RIGHT,
            LEFT - 6.0,
            yy + 4.0,
            label(v)
        );
    }
    for i in 0..=4 {
        let ms = t0 + (t1 - t0) * i / 4;
        let _ = writeln!(
            s,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" fill=\"{MUTED}\">{}s</text>",
            scale.x(ms),
            H - BOTTOM + 18.0,
            (ms - t0) / 1000
        );
    }
    let _ = writeln!(
        s,
        "<line x1=\"{LEFT}\" y1=\"{:.1}\" x2=\"{:.1}\" y2=\"{:.1}\" stroke=\"{INK}\"/>",
        TOP + PLOT.1,
        W - RIGHT,
        TOP + PLOT.1
    );
}

/// A dotted vertical marker per traffic step, with its weight.
fn traffic_marks(s: &mut String, scale: &Scale, steps: &[&TrafficStep]) {
    for t in steps {
        let xx = scale.x(t.at_ms);
        let _ = writeln!(
            s,
            "<line x1=\"{xx:.1}\" y1=\"{TOP}\" x2=\"{xx:.1}\" y2=\"{:.1}\" stroke=\"{MUTED}\" stroke-dasharray=\"2 3\"/>\n<text x=\"{:.1}\" y=\"{:.1}\" fill=\"{MUTED}\" font-size=\"11\">{}%</text>",
            TOP + PLOT.1,
            xx + 3.0,
            TOP + 12.0,
            t.weight
        );
    }
}

/// A dashed horizontal line at a threshold, labelled at its right end.
fn threshold_line(s: &mut String, scale: &Scale, name: &str, v: f64, colour: &str) {
    let yy = scale.y(v);
    let _ = writeln!(
        s,
        "<line x1=\"{LEFT}\" y1=\"{yy:.1}\" x2=\"{:.1}\" y2=\"{yy:.1}\" stroke=\"{colour}\" stroke-width=\"1.5\" stroke-dasharray=\"6 4\"/>\n<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\" fill=\"{colour}\" font-size=\"11\">{name} {}</text>",
        W - RIGHT,
        W - RIGHT - 4.0,
        yy - 4.0,
        label(v)
    );
}

/// One version's values as lines, broken where an analysis had no data.
fn polyline(
    s: &mut String,
    scale: &Scale,
    series: &SliSeries,
    pick: impl Fn(&SliPoint) -> Option<f64>,
    colour: &str,
    dash: &str,
) {
    let mut run: Vec<String> = Vec::new();
    let flush = |run: &mut Vec<String>, s: &mut String| {
        if run.len() > 1 {
            let _ = writeln!(
                s,
                "<polyline fill=\"none\" stroke=\"{colour}\" stroke-width=\"2\"{dash} points=\"{}\"/>",
                run.join(" ")
            );
        }
        run.clear();
    };
    for p in &series.points {
        match pick(p).filter(|v| v.is_finite()) {
            Some(v) => run.push(format!("{:.1},{:.1}", scale.x(p.at_ms), scale.y(v))),
            None => flush(&mut run, s),
        }
    }
    flush(&mut run, s);
}

/// Each analysis of the new version as a dot coloured by its verdict.
fn dots(s: &mut String, scale: &Scale, series: &SliSeries) {
    for p in &series.points {
        if let Some(v) = p.new.filter(|v| v.is_finite()) {
            let _ = writeln!(
                s,
                "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"3.5\" fill=\"{}\"><title>{} at {}s: {}</title></circle>",
                scale.x(p.at_ms),
                scale.y(v),
                verdict_colour(p.verdict),
                p.verdict,
                (p.at_ms - scale.t0) / 1000,
                label(v)
            );
        }
    }
}

fn legend(s: &mut String) {
    let lx = W - RIGHT - 130.0;
    let _ = writeln!(
        s,
        "<line x1=\"{lx}\" y1=\"36\" x2=\"{}\" y2=\"36\" stroke=\"{NEW}\" stroke-width=\"2\"/><text x=\"{}\" y=\"40\" fill=\"{INK}\">new</text>\n<line x1=\"{}\" y1=\"36\" x2=\"{}\" y2=\"36\" stroke=\"{STABLE}\" stroke-width=\"2\" stroke-dasharray=\"5 3\"/><text x=\"{}\" y=\"40\" fill=\"{INK}\">stable</text>",
        lx + 22.0,
        lx + 26.0,
        lx + 70.0,
        lx + 92.0,
        lx + 96.0
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::SliSeries;

    fn series(step: &str, sli: &str) -> SliSeries {
        SliSeries {
            step: step.into(),
            sli: sli.into(),
            ..SliSeries::default()
        }
    }

    #[test]
    fn chart_names_are_unique_and_name_the_step_when_there_are_several() {
        let one = [
            series("prod/release", "error.ratio"),
            series("prod/release", "error_ratio"),
            series("prod/release", "Error_Ratio"),
        ];
        assert_eq!(
            file_names(&one),
            [
                "slo-error_ratio.svg",
                "slo-error_ratio-2.svg",
                "slo-Error_Ratio-3.svg"
            ]
        );
        let two = [
            series("staging/release", "error_ratio"),
            series("prod/release", "error_ratio"),
        ];
        assert_eq!(
            file_names(&two),
            [
                "slo-staging_release-error_ratio.svg",
                "slo-prod_release-error_ratio.svg"
            ]
        );
    }
}
