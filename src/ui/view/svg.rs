//! A drawn buffer as an SVG picture (the README's screenshot).

use ratatui::buffer::{Buffer, Cell};
use ratatui::style::{Color, Modifier};

/// DejaVu Sans Mono's advance at 14 px, and the line height.
const CELL: (f64, f64) = (8.43, 17.0);

/// A drawn buffer as an SVG picture (the README's screenshot): one text run per stretch of
/// cells with the same colour and weight, on a dark terminal background.
pub fn svg(buffer: &Buffer) -> String {
    let (w, h) = (buffer.area.width, buffer.area.height);
    let (cw, ch) = CELL;
    let mut out = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{:.0}\" height=\"{:.0}\" font-family=\"DejaVu Sans Mono, Menlo, Consolas, monospace\" font-size=\"14\">\n<rect width=\"100%\" height=\"100%\" fill=\"#16181c\"/>\n",
        f64::from(w) * cw + 16.0,
        f64::from(h) * ch + 16.0
    );
    backgrounds(buffer, &mut out);
    for y in 0..h {
        text_runs(buffer, y, &mut out);
    }
    out.push_str("</svg>\n");
    out
}

/// A terminal colour as the picture's hex colour (`fallback` for the default).
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

/// One rectangle per cell with a background colour of its own.
fn backgrounds(buffer: &Buffer, out: &mut String) {
    let (cw, ch) = CELL;
    for y in 0..buffer.area.height {
        for x in 0..buffer.area.width {
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
}

/// Box-drawing cells go one by one: some renderers (librsvg) drop runs of them.
fn boxy(c: &Cell) -> bool {
    c.symbol()
        .chars()
        .next()
        .is_some_and(|ch| ('\u{2500}'..='\u{257f}').contains(&ch))
}

/// Row `y` as text elements, one per run of cells in the same foreground and weight.
fn text_runs(buffer: &Buffer, y: u16, out: &mut String) {
    let (cw, ch) = CELL;
    let w = buffer.area.width;
    let mut x = 0;
    while x < w {
        let style = buffer[(x, y)].style();
        let start = x;
        let mut text = String::new();
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
