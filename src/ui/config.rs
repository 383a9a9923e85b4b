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

/// Reads the file; none is the defaults. A bad file is an error naming it.
pub fn load(path: Option<&std::path::Path>) -> Result<Config, String> {
    let Some(path) = path else {
        return Ok(Config::default());
    };
    match crate::input::read_text(path) {
        Ok(text) => crate::yaml::from_str(&text)
            .map_err(|e: crate::yaml::Error| e.in_file(path).to_string()),
        Err(crate::input::ReadError::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => {
            Ok(Config::default())
        }
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_file_sets_theme_mouse_and_keys_and_a_bad_one_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("config.yaml");
        assert_eq!(load(Some(&p)).unwrap(), Config::default());
        std::fs::write(&p, "theme: light\nmouse: true\nkeys: { approve: y }\n").unwrap();
        let c = load(Some(&p)).unwrap();
        assert_eq!(c.theme.as_deref(), Some("light"));
        assert!(c.mouse);
        assert_eq!(c.keys["approve"], "y");
        assert_eq!(c.frame_interval(), Duration::from_millis(33));
        assert_eq!(c.layout, PaneLayout::default());
        std::fs::write(
            &p,
            "refresh: 1ms\nlayout: { mode: compact, stagesWidth: 95, hide: [budget, charts] }\n",
        )
        .unwrap();
        let c = load(Some(&p)).unwrap();
        assert_eq!(c.frame_interval(), Duration::from_millis(16), "kept sane");
        assert!(!c.layout.wide(200, 60));
        assert_eq!(c.layout.left(), 80);
        assert!(!c.layout.shows(Optional::Budget) && c.layout.shows(Optional::Traffic));
        std::fs::write(&p, "layout: { hide: [output] }\n").unwrap();
        let e = load(Some(&p)).unwrap_err();
        assert!(e.contains("output"), "the output cannot be hidden: {e}");
        std::fs::write(&p, "colour: red\n").unwrap();
        let e = load(Some(&p)).unwrap_err();
        assert!(e.contains("config.yaml") && e.contains("colour"), "{e}");
    }
}
