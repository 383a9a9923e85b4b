//! The error-budget pane: the remaining budget as a gauge and each burn-rate window, read
//! from the latest budget gate's typed evidence.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Modifier;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::{bar, pane};
use crate::events::Verdict;
use crate::ui::app::{App, Pane};

/// The latest error-budget gate's evidence: remaining (fraction, text, detail) and the
/// burn-rate lines, read from the evidence's budget and burn-rate figures.
pub(super) struct BudgetView {
    remaining: Option<f64>,
    /// The remaining budget in words (`62.0%`, `no data`).
    pub(super) text: String,
    detail: String,
    /// The gate's verdict on it.
    pub(super) verdict: Verdict,
    burns: Vec<(String, String, Verdict)>,
}

pub(super) fn budget_evidence(app: &App) -> Option<BudgetView> {
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

pub(super) fn draw_budget(frame: &mut Frame, app: &App, b: &BudgetView, area: Rect) {
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
        Paragraph::new(lines).block(pane(app, " Error budget ", app.focus == Pane::Budget)),
        area,
    );
}
