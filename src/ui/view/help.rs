//! The help overlay: every key binding and the glyph legend, wrapped to the terminal's
//! width and scrolled (j k PgUp PgDn g G) when taller than the terminal.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, Paragraph};

use super::{centered, pane};
use crate::ui::app::App;
use crate::ui::keys::{Action, KEYS};

const LEGEND: &str = "glyphs: ✓ passed · ⚠ warning · ✗ failed · ▶ running · ⏸ paused · ? waits for approval · ○ pending · ↺ rolled back · ■ aborted";

/// The help's widest frame.
const WIDEST: u16 = 96;

/// A scrolling overlay's frame for a terminal of `area`: at most `widest` columns, as
/// tall as its `lines` (and the terminal).
fn frame_for(area: Rect, widest: u16, lines: usize) -> Rect {
    let width = area
        .width
        .saturating_sub(4)
        .clamp(area.width.min(20), widest);
    let height = (lines as u16).saturating_add(2);
    centered(area, width, height)
}

/// The columns a scrolling overlay's text has on a terminal of `area`.
pub(super) fn text_width(area: Rect, widest: u16) -> usize {
    usize::from(frame_for(area, widest, 0).width.saturating_sub(2))
}

/// Lines above the last page of `lines` in a scrolling overlay on a terminal of `area`.
pub(super) fn limit_of(area: Rect, widest: u16, lines: usize) -> usize {
    let rect = frame_for(area, widest, lines);
    lines.saturating_sub(usize::from(rect.height.saturating_sub(2)))
}

/// Lines above the last page: how far the help scrolls on a terminal of `area`.
pub(super) fn scroll_limit(app: &App, area: Rect) -> usize {
    limit_of(area, WIDEST, lines(app, text_width(area, WIDEST)).len())
}

pub(super) fn draw_help(frame: &mut Frame, app: &App, area: Rect) {
    let lines = lines(app, text_width(area, WIDEST));
    let title = " Keys ─ Esc closes ".to_owned();
    draw_scrolled(frame, app, (area, WIDEST), title, lines, app.help_scroll);
}

/// Draws `lines` in an overlay of at most `widest` columns over `area`, scrolled down
/// `scroll` lines, with the position at the bottom when they do not all fit.
pub(super) fn draw_scrolled(
    frame: &mut Frame,
    app: &App,
    (area, widest): (Rect, u16),
    title: String,
    lines: Vec<Line<'static>>,
    scroll: usize,
) {
    let rect = frame_for(area, widest, lines.len());
    let visible = usize::from(rect.height.saturating_sub(2));
    let limit = lines.len().saturating_sub(visible);
    let scroll = scroll.min(limit);
    let mut block = pane(app, title, true);
    if limit > 0 {
        let last = (scroll + visible).min(lines.len());
        block = block.title_bottom(
            Line::from(Span::styled(
                format!(" {}–{last} of {} · j k scroll ", scroll + 1, lines.len()),
                app.theme.fg("accent"),
            ))
            .right_aligned(),
        );
    }
    frame.render_widget(Clear, rect);
    frame.render_widget(
        Paragraph::new(lines)
            .block(block)
            .scroll((scroll as u16, 0)),
        rect,
    );
}

/// Every binding (those that change the release left out when read-only) and the legend,
/// wrapped to `width` columns: keys in a column of their own with the descriptions beside
/// them, or, when that leaves too little room, each description under its keys.
fn lines(app: &App, width: usize) -> Vec<Line<'static>> {
    let t = &app.theme;
    let bindings: Vec<_> = KEYS
        .iter()
        .filter(|b| !(app.read_only && b.acts))
        .map(|b| (app.keymap.label(b), b.help))
        .collect();
    let key_width = bindings
        .iter()
        .map(|(k, _)| k.chars().count())
        .max()
        .unwrap_or(0)
        + 2;
    let beside = width >= key_width + 24;
    let indent = if beside { key_width } else { 4 };
    let key_style = t.fg("accent").add_modifier(Modifier::BOLD);
    let mut out = Vec::new();
    for (keys, help) in bindings {
        let wrapped = wrap(help, width.saturating_sub(indent).max(8));
        if beside {
            for (i, part) in wrapped.into_iter().enumerate() {
                let left = if i == 0 { keys.clone() } else { String::new() };
                out.push(Line::from(vec![
                    Span::styled(format!("{left:>w$}  ", w = key_width - 2), key_style),
                    Span::styled(part, t.fg("text")),
                ]));
            }
        } else {
            out.push(Line::from(Span::styled(format!(" {keys}"), key_style)));
            out.extend(
                wrapped
                    .into_iter()
                    .map(|part| indented(part, indent, t.fg("text"))),
            );
        }
    }
    if app.train.is_some() {
        out.extend(train_lines(app, width));
    }
    out.push(Line::default());
    out.extend(
        wrap(LEGEND, width.max(8))
            .into_iter()
            .map(|part| Line::from(Span::styled(part, t.fg("muted")))),
    );
    out
}

/// What the keys do in a release train's cockpit: on the grid they act on the whole
/// train, in a member opened from it on that member.
const TRAIN_KEYS: &[(Action, &str)] = &[
    (Action::Up, "choose a member in the train's grid"),
    (
        Action::Detail,
        "open the member: its stages, output, traffic, budget and charts (1-6)",
    ),
    (Action::Back, "from a member, back to the train's grid"),
    (
        Action::Approve,
        "approve the train's approval between stages: the whole train moves on",
    ),
    (
        Action::PauseResume,
        "on the grid: pause (or resume) every running member; in a member: that member",
    ),
    (
        Action::Rollback,
        "on the grid: roll back the train's stage (running members, then those it promoted, later waves first); in a member: roll it back, and the train rolls back the stage; asks first, naming each member",
    ),
    (
        Action::Abort,
        "abort the train (on the grid) or the member open (asks first)",
    ),
];

/// The train's section of the help: each key as the key table labels it.
fn train_lines(app: &App, width: usize) -> Vec<Line<'static>> {
    let t = &app.theme;
    let mut out = vec![
        Line::default(),
        Line::from(Span::styled(
            "Release train",
            t.fg("accent").add_modifier(Modifier::BOLD),
        )),
    ];
    for (action, help) in TRAIN_KEYS {
        if app.read_only && KEYS.iter().any(|b| b.action == *action && b.acts) {
            continue;
        }
        let Some(b) = KEYS.iter().find(|b| b.action == *action) else {
            continue;
        };
        out.push(Line::from(Span::styled(
            format!(" {}", app.keymap.label(b)),
            t.fg("accent").add_modifier(Modifier::BOLD),
        )));
        out.extend(
            wrap(help, width.saturating_sub(4).max(8))
                .into_iter()
                .map(|part| indented(part, 4, t.fg("text"))),
        );
    }
    out
}

fn indented(text: String, indent: usize, style: Style) -> Line<'static> {
    Line::from(vec![
        Span::raw(" ".repeat(indent)),
        Span::styled(text, style),
    ])
}

/// `text` in lines of at most `width` characters, broken between words (a word longer
/// than a line is cut).
pub(super) fn wrap(text: &str, width: usize) -> Vec<String> {
    let width = width.max(1);
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        let mut word = word.to_owned();
        while word.chars().count() > width {
            if !line.is_empty() {
                lines.push(std::mem::take(&mut line));
            }
            let head: String = word.chars().take(width).collect();
            word = word.chars().skip(width).collect();
            lines.push(head);
        }
        let needed = line.chars().count() + usize::from(!line.is_empty()) + word.chars().count();
        if needed > width && !line.is_empty() {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(&word);
    }
    if !line.is_empty() || lines.is_empty() {
        lines.push(line);
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::wrap;

    #[test]
    fn wrapping_breaks_between_words_and_cuts_only_words_too_long() {
        assert_eq!(
            wrap("pause the run / resume it", 12),
            ["pause the", "run / resume", "it"]
        );
        assert_eq!(wrap("abcdefghij", 4), ["abcd", "efgh", "ij"]);
        assert_eq!(wrap("", 10), [""]);
        for w in 1..30 {
            for l in wrap("views: 1 stages, 2 output, 3 traffic (a small terminal)", w) {
                assert!(l.chars().count() <= w, "{l:?} is wider than {w}");
            }
        }
    }
}
