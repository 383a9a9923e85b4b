//! The cockpit's settings file: `config.yaml` in the user's config directory
//! (`~/.config/glidepath/` on Linux), or the file `GLIDEPATH_CONFIG` names.
//!
//! ```yaml
//! theme: light          # as --theme (which wins)
//! mouse: true           # as --mouse
//! keys:                 # action → key, replacing that action's default keys
//!   approve: y
//!   decline: n
//! ```

use std::collections::BTreeMap;
use std::path::PathBuf;

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
    /// Action → key.
    #[serde(default)]
    pub keys: BTreeMap<String, String>,
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
    match std::fs::read_to_string(path) {
        Ok(text) => crate::yaml::from_str(&text).map_err(|e| format!("{}: {e}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Config::default()),
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
        std::fs::write(&p, "colour: red\n").unwrap();
        let e = load(Some(&p)).unwrap_err();
        assert!(e.contains("config.yaml") && e.contains("colour"), "{e}");
    }
}
