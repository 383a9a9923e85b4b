//! Themes: colours for semantic slots, from files in `themes/` (built in) or the user's
//! config directory (`themes/NAME.yaml`, which win). A theme may inherit another and
//! override what it names. `NO_COLOR` selects `mono` unless a theme is named explicitly.

use std::collections::BTreeMap;
use std::path::PathBuf;

use ratatui::style::{Color, Modifier, Style};

use crate::events::Status;

/// The themes shipped in the binary.
const BUILT_IN: &[(&str, &str)] = &[
    ("default", include_str!("../../themes/default.yaml")),
    ("light", include_str!("../../themes/light.yaml")),
    (
        "high-contrast",
        include_str!("../../themes/high-contrast.yaml"),
    ),
    ("mono", include_str!("../../themes/mono.yaml")),
];

/// Every slot a theme sets.
pub const SLOTS: &[&str] = &[
    "text",
    "muted",
    "accent",
    "border",
    "focus",
    "selection",
    "ok",
    "warning",
    "fail",
    "running",
    "paused",
    "series-canary",
    "series-stable",
    "threshold-pass",
    "threshold-warning",
    "gauge-good",
    "gauge-low",
    "gauge-critical",
];

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ThemeFile {
    name: Option<String>,
    inherits: Option<String>,
    #[serde(default)]
    monochrome: bool,
    #[serde(default)]
    colors: BTreeMap<String, String>,
}

/// A theme ready to draw with.
#[derive(Debug, Clone, PartialEq)]
pub struct Theme {
    /// Its name.
    pub name: String,
    /// No colour: emphasis by modifiers only.
    pub monochrome: bool,
    colors: BTreeMap<String, Color>,
}

impl Theme {
    /// A slot's colour (`reset` for one no theme set).
    pub fn color(&self, slot: &str) -> Color {
        self.colors.get(slot).copied().unwrap_or(Color::Reset)
    }

    /// Plain text in a slot's colour.
    pub fn fg(&self, slot: &str) -> Style {
        Style::default().fg(self.color(slot))
    }

    /// The style of a status glyph: its colour, and in `mono` a modifier that marks the
    /// states an operator must not miss.
    pub fn status(&self, status: Status) -> Style {
        let slot = match status {
            Status::Passed => "ok",
            Status::Warning => "warning",
            Status::Failed | Status::Aborted | Status::RolledBack => "fail",
            Status::Running => "running",
            Status::Paused | Status::WaitingForApproval | Status::Interrupted => "paused",
            Status::Pending | Status::Skipped | Status::Refused => "muted",
        };
        let style = self.fg(slot);
        match status {
            Status::Failed | Status::Aborted | Status::RolledBack => {
                style.add_modifier(Modifier::BOLD)
            }
            Status::WaitingForApproval | Status::Paused | Status::Interrupted
                if self.monochrome =>
            {
                style.add_modifier(Modifier::BOLD | Modifier::UNDERLINED)
            }
            _ => style,
        }
    }

    /// The selected row.
    pub fn selected(&self) -> Style {
        if self.monochrome {
            Style::default().add_modifier(Modifier::REVERSED)
        } else {
            Style::default()
                .bg(self.color("selection"))
                .add_modifier(Modifier::BOLD)
        }
    }

    /// A pane's border: the accent when focused.
    pub fn border(&self, focused: bool) -> Style {
        if focused {
            self.fg("focus").add_modifier(Modifier::BOLD)
        } else {
            self.fg("border")
        }
    }
}

/// Where the user's own themes live.
pub fn user_dir() -> Option<PathBuf> {
    directories::ProjectDirs::from("dev", "glidepath", "glidepath")
        .map(|d| d.config_dir().join("themes"))
}

/// Parses a colour: a name or `#rrggbb`.
pub fn parse_color(text: &str) -> Result<Color, String> {
    let t = text.trim().to_ascii_lowercase();
    if let Some(hex) = t.strip_prefix('#') {
        if hex.len() == 6
            && let Ok(v) = u32::from_str_radix(hex, 16)
        {
            return Ok(Color::Rgb((v >> 16) as u8, (v >> 8) as u8, v as u8));
        }
        return Err(format!("`{text}` is not a #rrggbb colour"));
    }
    Ok(match t.replace('_', "-").as_str() {
        "reset" | "default" => Color::Reset,
        "black" => Color::Black,
        "red" => Color::Red,
        "green" => Color::Green,
        "yellow" => Color::Yellow,
        "blue" => Color::Blue,
        "magenta" => Color::Magenta,
        "cyan" => Color::Cyan,
        "gray" | "grey" => Color::Gray,
        "dark-gray" | "dark-grey" => Color::DarkGray,
        "light-red" => Color::LightRed,
        "light-green" => Color::LightGreen,
        "light-yellow" => Color::LightYellow,
        "light-blue" => Color::LightBlue,
        "light-magenta" => Color::LightMagenta,
        "light-cyan" => Color::LightCyan,
        "white" => Color::White,
        _ => return Err(format!("`{text}` is not a colour name or #rrggbb")),
    })
}

/// The text of a theme: the user's file first, then the built-in one.
fn source(name: &str, user: Option<&PathBuf>) -> Result<(String, String), String> {
    if let Some(dir) = user {
        let path = dir.join(format!("{name}.yaml"));
        if path.exists() {
            return crate::input::read_text(&path)
                .map(|t| (path.display().to_string(), t))
                .map_err(|e| format!("{}: {e}", path.display()));
        }
    }
    BUILT_IN
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(n, t)| (format!("themes/{n}.yaml"), (*t).to_owned()))
        .ok_or_else(|| {
            let known: Vec<&str> = BUILT_IN.iter().map(|(n, _)| *n).collect();
            format!(
                "no theme called `{name}` (built in: {}; your own go in {})",
                known.join(", "),
                user.map(|d| d.display().to_string())
                    .unwrap_or_else(|| "the config directory".into())
            )
        })
}

/// Loads a theme by name, following `inherits`; `user` is the directory of the user's own.
pub fn load(name: &str, user: Option<&PathBuf>) -> Result<Theme, String> {
    let mut chain = Vec::new();
    let mut next = Some(name.to_owned());
    while let Some(n) = next {
        if chain
            .iter()
            .any(|(c, _, _): &(String, String, ThemeFile)| *c == n)
        {
            return Err(format!("theme `{n}` inherits from itself"));
        }
        let (origin, text) = source(&n, user)?;
        let file: ThemeFile = crate::yaml::from_str(&text)
            .map_err(|e: crate::yaml::Error| e.in_file(&origin).to_string())?;
        next = file.inherits.clone();
        chain.push((n, origin, file));
    }
    let mut colors = BTreeMap::new();
    let mut monochrome = false;
    for (_, origin, file) in chain.iter().rev() {
        monochrome = file.monochrome;
        for (slot, value) in &file.colors {
            if !SLOTS.contains(&slot.as_str()) {
                let hint = crate::yaml::closest(slot, SLOTS)
                    .map(|s| format!(" (did you mean `{s}`?)"))
                    .unwrap_or_default();
                return Err(format!("{origin}: no colour slot `{slot}`{hint}"));
            }
            colors.insert(
                slot.clone(),
                parse_color(value).map_err(|e| format!("{origin}: {slot}: {e}"))?,
            );
        }
    }
    Ok(Theme {
        name: chain
            .first()
            .and_then(|(_, _, f)| f.name.clone())
            .unwrap_or_else(|| name.to_owned()),
        monochrome,
        colors,
    })
}

/// The theme to start with: `--theme`, else `mono` under `NO_COLOR`, else `default`. A
/// theme that cannot be loaded gives a warning and the default.
pub fn choose(explicit: Option<&str>, no_color: bool) -> (Theme, Option<String>) {
    let user = user_dir();
    let name = explicit.unwrap_or(if no_color { "mono" } else { "default" });
    match load(name, user.as_ref()) {
        Ok(t) => (t, None),
        Err(e) => {
            let fallback = load("default", None).unwrap_or_else(|_| Theme {
                name: "default".into(),
                monochrome: false,
                colors: BTreeMap::new(),
            });
            (fallback, Some(format!("{e}; using the default theme")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_in_themes_load_and_inherit() {
        for (name, _) in BUILT_IN {
            let t = load(name, None).unwrap();
            for slot in SLOTS {
                // Every slot is set by the theme or what it inherits.
                assert!(t.colors.contains_key(*slot), "{name} lacks {slot}");
            }
        }
        let light = load("light", None).unwrap();
        // Overridden...
        assert_eq!(light.color("ok"), Color::Rgb(0x1a, 0x7f, 0x37));
        // ...and inherited.
        assert_eq!(light.color("threshold-pass"), Color::Green);
        assert!(load("mono", None).unwrap().monochrome);
    }

    #[test]
    fn a_bad_theme_is_named_and_the_default_used() {
        let dir = tempfile::tempdir().unwrap();
        let user = dir.path().to_owned();
        std::fs::write(
            user.join("loud.yaml"),
            "inherits: default\ncolors: { fial: red }\n",
        )
        .unwrap();
        std::fs::write(user.join("odd.yaml"), "colors: { ok: chartreuse }\n").unwrap();
        std::fs::write(user.join("loop.yaml"), "inherits: loop\n").unwrap();
        let e = load("loud", Some(&user)).unwrap_err();
        assert!(
            e.contains("no colour slot `fial` (did you mean `fail`?)"),
            "{e}"
        );
        let e = load("odd", Some(&user)).unwrap_err();
        assert!(e.contains("`chartreuse` is not a colour"), "{e}");
        assert!(
            load("loop", Some(&user))
                .unwrap_err()
                .contains("inherits from itself")
        );
        assert!(
            load("nope", Some(&user))
                .unwrap_err()
                .contains("no theme called `nope`")
        );
        // A user's theme may inherit a built-in one and override it.
        std::fs::write(
            user.join("mine.yaml"),
            "inherits: light\ncolors: { ok: '#00ff00' }\n",
        )
        .unwrap();
        let mine = load("mine", Some(&user)).unwrap();
        assert_eq!(mine.color("ok"), Color::Rgb(0, 255, 0));
        assert_eq!(mine.color("fail"), Color::Rgb(0xcf, 0x22, 0x2e));
    }

    #[test]
    fn no_color_means_mono_unless_a_theme_is_named() {
        assert_eq!(choose(None, true).0.name, "mono");
        assert_eq!(choose(Some("light"), true).0.name, "light");
        let (t, warning) = choose(Some("missing-theme"), false);
        assert_eq!(t.name, "default");
        assert!(warning.unwrap().contains("using the default theme"));
    }
}
