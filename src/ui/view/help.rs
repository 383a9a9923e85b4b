//! The help overlay: every key binding and the glyph legend.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Modifier;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, Paragraph};

use super::{centered, pane};
use crate::ui::app::App;
use crate::ui::keys::KEYS;

pub(super) fn draw_help(frame: &mut Frame, app: &App, area: Rect) {
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
