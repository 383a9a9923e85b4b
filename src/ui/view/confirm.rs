//! The confirmation dialog for destructive commands, and the toast for short notices.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Modifier;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Wrap};

use super::centered;
use crate::events::CommandKind;
use crate::ui::app::App;

pub(super) fn draw_confirm(
    frame: &mut Frame,
    app: &App,
    area: Rect,
    command: CommandKind,
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
        CommandKind::Rollback => {
            format!("Roll back stage {stage} of {}?", app.run.service)
        }
        _ => format!("Abort run {} of {}?", app.run.run, app.run.pipeline),
    };
    // A train's says what will be rolled back, member by member, in order.
    let text = super::train::confirm_lines(app, command).unwrap_or_else(|| vec![what]);
    let mut lines: Vec<Line> = text
        .into_iter()
        .enumerate()
        .map(|(i, l)| match i {
            0 => Line::from(Span::styled(l, t.fg("fail").add_modifier(Modifier::BOLD))),
            _ => Line::from(Span::styled(l, t.fg("text"))),
        })
        .collect();
    lines.push(Line::default());
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
    // A train's longer lines get more room; word wrapping may take a few columns more.
    let (width, slack) = if app.train.is_some() {
        (66, 6)
    } else {
        (60, 0)
    };
    let width = width.min(area.width);
    let inner = usize::from(width.saturating_sub(2 + slack)).max(1);
    let rows: usize = lines.iter().map(|l| l.width().max(1).div_ceil(inner)).sum();
    let rect = centered(area, width, rows as u16 + 2);
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

pub(super) fn draw_toast(frame: &mut Frame, app: &App, area: Rect, text: &str, error: bool) {
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
