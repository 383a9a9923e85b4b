//! The cockpit's settings file: `config.yaml` in the user's config directory
//! (`~/.config/glidepath/` on Linux), or the file `GLIDEPATH_CONFIG` names.
//!
//! ```yaml
//! theme: light          # as --theme (which wins)
//! mouse: true           # as --mouse
//! refresh: 100ms        # the shortest time between two frames (default 33ms)
//! layout:
//!   mode: auto          # auto (compact under 100x30), wide or compact
//!   stagesWidth: 42     # percent of the width for stages and pre-flight (wide)
//!   hide: [preflight]   # panes left out: preflight, traffic, budget, charts
//! keys:                 # action → key, replacing that action's default keys
//!   approve: y
//!   decline: n
//! ```

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use crate::units::Span;

/// What the file sets.
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The theme's name.
    #[serde(default)]
    pub theme: Option<String>,
    /// Mouse support.
    #[serde(default)]
    pub mouse: bool,
    /// The shortest time between two frames.
    #[serde(default)]
    pub refresh: Option<Span>,
    /// How the panes are laid out.
    #[serde(default)]
    pub layout: PaneLayout,
    /// Action → key.
    #[serde(default)]
    pub keys: BTreeMap<String, String>,
    /// Where each of `keys` was written, for problems with it.
    #[serde(skip)]
    pub key_places: BTreeMap<String, crate::yaml::Pos>,
}

impl Config {
    /// The shortest time between two frames: `refresh`, kept within 16 ms and 2 s.
    pub fn frame_interval(&self) -> Duration {
        self.refresh.map_or(Duration::from_millis(33), |r| {
            r.get()
                .clamp(Duration::from_millis(16), Duration::from_secs(2))
        })
    }
}

/// Which layout the cockpit uses.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LayoutMode {
    /// Wide from 100x30 up, compact below.
    #[default]
    Auto,
    /// Stages and pre-flight beside traffic, budget, charts and output, on any size.
    Wide,
    /// One column: stages (or pre-flight) over the output.
    Compact,
}

/// A pane the layout may leave out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Optional {
    /// Pre-flight checks (the stages take the whole left column).
    Preflight,
    /// The traffic split.
    Traffic,
    /// The error budget.
    Budget,
    /// The SLO charts.
    Charts,
}

/// The panes' layout.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PaneLayout {
    /// Wide, compact, or by the terminal's size.
    #[serde(default)]
    pub mode: LayoutMode,
    /// Percent of the width for the left column (wide layout), 20 to 80.
    #[serde(default = "default_stages_width")]
    pub stages_width: u16,
    /// Panes left out.
    #[serde(default)]
    pub hide: Vec<Optional>,
}

fn default_stages_width() -> u16 {
    42
}

impl Default for PaneLayout {
    fn default() -> Self {
        PaneLayout {
            mode: LayoutMode::Auto,
            stages_width: default_stages_width(),
            hide: Vec::new(),
        }
    }
}

impl PaneLayout {
    /// Whether a `width` x `height` terminal gets the wide layout.
    pub fn wide(&self, width: u16, height: u16) -> bool {
        match self.mode {
            LayoutMode::Auto => width >= 100 && height >= 30,
            LayoutMode::Wide => true,
            LayoutMode::Compact => false,
        }
    }

    /// Whether `pane` is shown.
    pub fn shows(&self, pane: Optional) -> bool {
        !self.hide.contains(&pane)
    }

    /// The left column's percent of the width.
    pub fn left(&self) -> u16 {
        self.stages_width.clamp(20, 80)
    }
}

/// Where the file is looked for.
pub fn path() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("GLIDEPATH_CONFIG") {
        return Some(PathBuf::from(p));
    }
    directories::ProjectDirs::from("dev", "glidepath", "glidepath")
        .map(|d| d.config_dir().join("config.yaml"))
}

/// Reads the file; none is the defaults. Every problem in it is reported
/// (`file:line:col: what`), and each field that has one keeps its default while the rest
/// of the file applies.
pub fn load(path: Option<&std::path::Path>) -> (Config, Vec<String>) {
    let Some(path) = path else {
        return (Config::default(), Vec::new());
    };
    let text = match crate::input::read_text(path) {
        Ok(text) => text,
        Err(crate::input::ReadError::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => {
            return (Config::default(), Vec::new());
        }
        Err(e) => return (Config::default(), vec![format!("{}: {e}", path.display())]),
    };
    let mut problems = Vec::new();
    let config = match crate::yaml::parse_one(&text) {
        Ok(node) => fields(&node, path, &mut problems),
        Err(e) => {
            problems.push(e.in_file(path));
            Config::default()
        }
    };
    // In the order of the file.
    problems.sort_by_key(|p| p.pos.map(|p| (p.line, p.col)));
    (config, problems.iter().map(ToString::to_string).collect())
}

type Problems = Vec<crate::yaml::LoadError>;

const FIELDS: &[&str] = &["theme", "mouse", "refresh", "layout", "keys"];
const LAYOUT_FIELDS: &[&str] = &["mode", "stagesWidth", "hide"];

/// Each entry of a mapping whose key is one of `known`; an unknown key is a problem.
fn entries<'n>(
    node: &'n crate::yaml::Node,
    known: &[&str],
    what: &str,
    path: &std::path::Path,
    problems: &mut Problems,
) -> Vec<(&'n str, &'n crate::yaml::Node)> {
    let crate::yaml::Value::Map(map) = &node.value else {
        if !node.is_null() {
            let e = crate::yaml::Error::at(node.pos, format!("{what}: expected a mapping"));
            problems.push(e.in_file(path));
        }
        return Vec::new();
    };
    let mut out = Vec::new();
    for (k, v) in map {
        let name = k.as_str().unwrap_or_default();
        if known.contains(&name) {
            out.push((name, v));
        } else {
            let hint = crate::yaml::closest(name, known)
                .map(|s| format!(" (did you mean `{s}`?)"))
                .unwrap_or_default();
            let message = format!(
                "{what}: no field `{name}`{hint}; expected one of {}",
                known.join(", ")
            );
            problems.push(crate::yaml::Error::at(k.pos, message).in_file(path));
        }
    }
    out
}

/// One field's value, or its problem (at the value when the error has no place of its
/// own) and `None`.
fn field<T: serde::de::DeserializeOwned>(
    what: &str,
    node: &crate::yaml::Node,
    path: &std::path::Path,
    problems: &mut Problems,
) -> Option<T> {
    crate::yaml::from_node::<T>(node)
        .map_err(|e| {
            let pos = e.pos.unwrap_or(node.pos);
            let message = format!("{what}: {}", e.message);
            problems.push(crate::yaml::Error::at(pos, message).in_file(path));
        })
        .ok()
}

/// The settings, field by field.
fn fields(node: &crate::yaml::Node, path: &std::path::Path, problems: &mut Problems) -> Config {
    let mut config = Config::default();
    for (name, value) in entries(node, FIELDS, "settings", path, problems) {
        match name {
            "theme" => config.theme = field(name, value, path, problems),
            "mouse" => config.mouse = field(name, value, path, problems).unwrap_or_default(),
            "refresh" => config.refresh = field(name, value, path, problems),
            "layout" => config.layout = layout(value, path, problems),
            _ => match &value.value {
                crate::yaml::Value::Map(map) => {
                    for (k, v) in map {
                        let action = k.as_str().unwrap_or_default().to_owned();
                        let what = format!("keys.{action}");
                        let Some(key) = field::<String>(&what, v, path, problems) else {
                            continue;
                        };
                        config.key_places.insert(action.clone(), v.pos);
                        config.keys.insert(action, key);
                    }
                }
                // Not a mapping: said as the whole field's problem.
                _ => {
                    let _ = field::<BTreeMap<String, String>>(name, value, path, problems);
                }
            },
        }
    }
    config
}

/// The `layout` mapping, field by field (each `hide` entry on its own).
fn layout(node: &crate::yaml::Node, path: &std::path::Path, problems: &mut Problems) -> PaneLayout {
    let mut layout = PaneLayout::default();
    for (name, value) in entries(node, LAYOUT_FIELDS, "layout", path, problems) {
        match name {
            "mode" => layout.mode = field("layout.mode", value, path, problems).unwrap_or_default(),
            "stagesWidth" => {
                layout.stages_width = field("layout.stagesWidth", value, path, problems)
                    .unwrap_or(layout.stages_width)
            }
            _ => match &value.value {
                crate::yaml::Value::Seq(items) => {
                    layout.hide = items
                        .iter()
                        .filter_map(|i| field("layout.hide", i, path, problems))
                        .collect()
                }
                _ => layout.hide = field("layout.hide", value, path, problems).unwrap_or_default(),
            },
        }
    }
    layout
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_file_sets_theme_mouse_and_keys_and_a_bad_one_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("config.yaml");
        assert_eq!(load(Some(&p)), (Config::default(), vec![]));
        std::fs::write(&p, "theme: light\nmouse: true\nkeys: { approve: y }\n").unwrap();
        let (c, problems) = load(Some(&p));
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(c.theme.as_deref(), Some("light"));
        assert!(c.mouse);
        assert_eq!(c.keys["approve"], "y");
        assert_eq!(
            c.key_places["approve"],
            crate::yaml::Pos { line: 3, col: 18 }
        );
        assert_eq!(c.frame_interval(), Duration::from_millis(33));
        assert_eq!(c.layout, PaneLayout::default());
        std::fs::write(
            &p,
            "refresh: 1ms\nlayout: { mode: compact, stagesWidth: 95, hide: [budget, charts] }\n",
        )
        .unwrap();
        let (c, problems) = load(Some(&p));
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(c.frame_interval(), Duration::from_millis(16), "kept sane");
        assert!(!c.layout.wide(200, 60));
        assert_eq!(c.layout.left(), 80);
        assert!(!c.layout.shows(Optional::Budget) && c.layout.shows(Optional::Traffic));
    }

    #[test]
    fn every_problem_of_the_file_is_named_with_its_place_and_the_rest_applies() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("config.yaml");
        std::fs::write(
            &p,
            "colour: red\ntheme: light\nrefresh: soon\nlayout:\n  mode: tiny\n  hide: [budget, output]\n  stagesWdth: 30\nmouse: true\n",
        )
        .unwrap();
        let (c, problems) = load(Some(&p));
        let file = p.display().to_string();
        assert_eq!(problems.len(), 5, "{problems:#?}");
        assert!(problems[0].starts_with(&format!("{file}:1:1: settings: no field `colour`")));
        assert!(
            problems[1].starts_with(&format!("{file}:3:10: refresh: invalid duration `soon`")),
            "{problems:#?}"
        );
        assert!(
            problems[2].starts_with(&format!("{file}:5:9: layout.mode: unknown value `tiny`")),
            "{problems:#?}"
        );
        assert!(
            problems[3].starts_with(&format!("{file}:6:18: layout.hide: unknown value `output`")),
            "{problems:#?}"
        );
        assert!(
            problems[4]
                .contains("7:3: layout: no field `stagesWdth` (did you mean `stagesWidth`?)"),
            "{problems:#?}"
        );
        // What was right still applies.
        assert_eq!(c.theme.as_deref(), Some("light"));
        assert!(c.mouse);
        assert_eq!(c.layout.hide, vec![Optional::Budget]);
        std::fs::write(&p, "[not, a, mapping]\n").unwrap();
        assert_eq!(load(Some(&p)).1.len(), 1);
        std::fs::write(&p, "theme: [unclosed\n").unwrap();
        let (c, problems) = load(Some(&p));
        assert_eq!(c, Config::default());
        assert!(problems[0].starts_with(&file), "{problems:?}");
    }
}
