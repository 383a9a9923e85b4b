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

/// A theme file, as checked.
#[derive(Debug, Default)]
struct ThemeFile {
    name: Option<String>,
    inherits: Option<String>,
    monochrome: bool,
    colors: BTreeMap<String, Color>,
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

/// Loads a theme by name, following `inherits`; `user` is the directory of the user's
/// own. Every problem of every file in the chain is reported (`file:line:col: what`), not
/// only the first.
pub fn load(name: &str, user: Option<&PathBuf>) -> Result<Theme, Vec<String>> {
    let mut chain: Vec<(String, ThemeFile)> = Vec::new();
    let mut problems = Vec::new();
    let mut next = Some(name.to_owned());
    while let Some(n) = next.take() {
        if chain.iter().any(|(c, _)| *c == n) {
            problems.push(format!("theme `{n}` inherits from itself"));
            break;
        }
        let (origin, text) = source(&n, user).map_err(|e| vec![e])?;
        match check(&origin, &text) {
            Ok(file) => {
                next = file.inherits.clone();
                chain.push((n, file));
            }
            Err(mut found) => {
                problems.append(&mut found);
                break;
            }
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    let mut colors = BTreeMap::new();
    let mut monochrome = false;
    for (_, file) in chain.iter().rev() {
        monochrome = file.monochrome;
        colors.extend(file.colors.iter().map(|(k, v)| (k.clone(), *v)));
    }
    Ok(Theme {
        name: chain
            .first()
            .and_then(|(_, f)| f.name.clone())
            .unwrap_or_else(|| name.to_owned()),
        monochrome,
        colors,
    })
}

/// One theme file, checked whole: every unknown field, unknown slot and bad colour, each
/// with its place.
fn check(origin: &str, text: &str) -> Result<ThemeFile, Vec<String>> {
    use crate::yaml::{Error, Value, closest, parse_one};
    let at = |pos, message: String| Error::at(pos, message).in_file(origin).to_string();
    let node = parse_one(text).map_err(|e| vec![e.in_file(origin).to_string()])?;
    let Value::Map(entries) = &node.value else {
        return Err(vec![at(
            node.pos,
            "a theme is a mapping: name, inherits, monochrome, colors".into(),
        )]);
    };
    let mut problems = Vec::new();
    let mut file = ThemeFile::default();
    for (key, value) in entries {
        let field = key.as_str().unwrap_or_default();
        let scalar = || value.as_str().map(str::to_owned);
        match field {
            "name" => file.name = scalar(),
            "inherits" => file.inherits = scalar(),
            "monochrome" => match value.as_str() {
                Some("true") => file.monochrome = true,
                Some("false") => file.monochrome = false,
                _ => problems.push(at(value.pos, "monochrome: expected true or false".into())),
            },
            "colors" => check_colors(value, &mut file, &mut problems, &at),
            other => {
                let hint = closest(other, &["name", "inherits", "monochrome", "colors"])
                    .map(|s| format!(" (did you mean `{s}`?)"))
                    .unwrap_or_default();
                problems.push(at(key.pos, format!("no field `{other}` in a theme{hint}")));
            }
        }
        if matches!(field, "name" | "inherits") && value.as_str().is_none() {
            problems.push(at(value.pos, format!("{field}: expected a name")));
        }
    }
    if problems.is_empty() {
        Ok(file)
    } else {
        Err(problems)
    }
}

/// The `colors` mapping: each slot known, each colour one.
fn check_colors(
    node: &crate::yaml::Node,
    file: &mut ThemeFile,
    problems: &mut Vec<String>,
    at: &dyn Fn(crate::yaml::Pos, String) -> String,
) {
    let crate::yaml::Value::Map(entries) = &node.value else {
        problems.push(at(
            node.pos,
            "colors: expected a mapping of slot: colour".into(),
        ));
        return;
    };
    for (key, value) in entries {
        let slot = key.as_str().unwrap_or_default();
        if !SLOTS.contains(&slot) {
            let hint = crate::yaml::closest(slot, SLOTS)
                .map(|s| format!(" (did you mean `{s}`?)"))
                .unwrap_or_default();
            problems.push(at(key.pos, format!("no colour slot `{slot}`{hint}")));
            continue;
        }
        match value.as_str().map(parse_color) {
            Some(Ok(c)) => {
                file.colors.insert(slot.to_owned(), c);
            }
            Some(Err(e)) => problems.push(at(value.pos, format!("{slot}: {e}"))),
            None => problems.push(at(value.pos, format!("{slot}: expected a colour"))),
        }
    }
}

/// The theme to start with: `--theme`, else `mono` under `NO_COLOR`, else `default`. A
/// theme that cannot be loaded gives its problems and the default.
pub fn choose(explicit: Option<&str>, no_color: bool) -> (Theme, Vec<String>) {
    let user = user_dir();
    let name = explicit.unwrap_or(if no_color { "mono" } else { "default" });
    match load(name, user.as_ref()) {
        Ok(t) => (t, Vec::new()),
        Err(problems) => {
            let fallback = load("default", None).unwrap_or_else(|_| Theme {
                name: "default".into(),
                monochrome: false,
                colors: BTreeMap::new(),
            });
            let mut problems = problems;
            problems.push(format!(
                "theme `{name}` not loaded; using the default theme"
            ));
            (fallback, problems)
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
        let e = load("loud", Some(&user)).unwrap_err().join("\n");
        assert!(
            e.contains("loud.yaml:2:11: no colour slot `fial` (did you mean `fail`?)"),
            "{e}"
        );
        let e = load("odd", Some(&user)).unwrap_err().join("\n");
        assert!(
            e.contains("odd.yaml:1:15: ok: `chartreuse` is not a colour"),
            "{e}"
        );
        assert!(load("loop", Some(&user)).unwrap_err()[0].contains("inherits from itself"));
        assert!(load("nope", Some(&user)).unwrap_err()[0].contains("no theme called `nope`"));
        // Every problem of a file, each with its place, not only the first.
        std::fs::write(
            user.join("many.yaml"),
            "inherits: default\nshade: dark\ncolors:\n  fial: red\n  ok: chartreuse\n  muted: '#12'\n",
        )
        .unwrap();
        let e = load("many", Some(&user)).unwrap_err();
        assert_eq!(e.len(), 4, "{e:?}");
        assert!(
            e[0].ends_with("many.yaml:2:1: no field `shade` in a theme"),
            "{e:?}"
        );
        assert!(
            e[1].contains("many.yaml:4:3: no colour slot `fial`"),
            "{e:?}"
        );
        assert!(e[2].contains("many.yaml:5:7: ok: `chartreuse`"), "{e:?}");
        assert!(
            e[3].contains("many.yaml:6:10: muted: `#12` is not a #rrggbb colour"),
            "{e:?}"
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
    fn themes_readme_describes_every_slot_and_no_other() {
        let readme = include_str!("../../themes/README.md");
        let documented: Vec<&str> = readme
            .lines()
            .filter_map(|l| l.strip_prefix("| `")?.split('`').next())
            .filter(|name| !BUILT_IN.iter().any(|(n, _)| n == name))
            .collect();
        assert_eq!(documented, SLOTS, "themes/README.md's slot table");
    }

    #[test]
    fn no_color_means_mono_unless_a_theme_is_named() {
        assert_eq!(choose(None, true).0.name, "mono");
        assert_eq!(choose(Some("light"), true).0.name, "light");
        let (t, problems) = choose(Some("missing-theme"), false);
        assert_eq!(t.name, "default");
        assert!(problems.last().unwrap().contains("using the default theme"));
    }
}
