//! The one key table: the handlers, the `?` help overlay and the hint bar all read it.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

/// What a key does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Pause the run, or resume it (or end a pause step).
    PauseResume,
    /// Approve what waits for approval.
    Approve,
    /// Decline it.
    Decline,
    /// Skip the current pause.
    Promote,
    /// Roll the stage back (asks first).
    Rollback,
    /// Abort the run (asks first).
    Abort,
    /// A view by its number (1 stages ... 6 pre-flight).
    View,
    /// The next (`]`) or previous (`[`) page of SLO charts.
    ChartPage,
    /// Next pane.
    FocusNext,
    /// Previous pane.
    FocusPrev,
    /// Up a row or line.
    Up,
    /// Down a row or line.
    Down,
    /// Up a page.
    PageUp,
    /// Down a page.
    PageDown,
    /// To the top.
    Top,
    /// To the bottom (and follow the output).
    Bottom,
    /// Open the selected step's detail.
    Detail,
    /// Search the output.
    Search,
    /// Command mode.
    Command,
    /// Earlier runs and evaluations from the journal.
    History,
    /// The run selected in the history decided again from its journal.
    Replay,
    /// Cycle the output's source filter.
    Source,
    /// glidepath's own log (its tracing records).
    AppLog,
    /// Help.
    Help,
    /// Close the overlay, or quit.
    Back,
    /// Suspend to the shell (Ctrl-Z).
    Suspend,
}

/// One binding.
#[derive(Debug, Clone, Copy)]
pub struct Binding {
    /// The keys as the help shows them.
    pub keys: &'static str,
    /// The codes that trigger it.
    pub codes: &'static [KeyCode],
    /// Needs Ctrl.
    pub ctrl: bool,
    /// What it does.
    pub action: Action,
    /// The help line.
    pub help: &'static str,
    /// The hint bar's word, if it has one there.
    pub hint: Option<&'static str>,
    /// Changes the release (hidden by `--read-only`).
    pub acts: bool,
}

const fn bind(
    keys: &'static str,
    codes: &'static [KeyCode],
    action: Action,
    help: &'static str,
    hint: Option<&'static str>,
    acts: bool,
) -> Binding {
    Binding {
        keys,
        codes,
        ctrl: false,
        action,
        help,
        hint,
        acts,
    }
}

/// Every binding, in the order the help lists them.
pub const KEYS: &[Binding] = &[
    bind(
        "a",
        &[KeyCode::Char('a')],
        Action::Approve,
        "approve what waits for approval",
        Some("approve"),
        true,
    ),
    bind(
        "d",
        &[KeyCode::Char('d')],
        Action::Decline,
        "decline it",
        Some("decline"),
        true,
    ),
    bind(
        "P",
        &[KeyCode::Char('P')],
        Action::Promote,
        "promote: skip the current pause",
        Some("promote"),
        true,
    ),
    bind(
        "p",
        &[KeyCode::Char('p')],
        Action::PauseResume,
        "pause the run / resume it (or end a pause step)",
        Some("pause"),
        true,
    ),
    bind(
        "r",
        &[KeyCode::Char('r')],
        Action::Rollback,
        "roll the stage back (asks first)",
        Some("rollback"),
        true,
    ),
    bind(
        "x",
        &[KeyCode::Char('x')],
        Action::Abort,
        "abort the run (asks first)",
        Some("abort"),
        true,
    ),
    bind(
        "⏎",
        &[KeyCode::Enter],
        Action::Detail,
        "detail of the selected step: every check, query, value and target",
        Some("detail"),
        false,
    ),
    bind(
        "/",
        &[KeyCode::Char('/')],
        Action::Search,
        "search the output (Esc clears)",
        Some("search"),
        false,
    ),
    bind(
        ":",
        &[KeyCode::Char(':')],
        Action::Command,
        "command: :rollback :abort :history :theme NAME :quit",
        Some("cmd"),
        false,
    ),
    bind(
        "1-6",
        &[
            KeyCode::Char('1'),
            KeyCode::Char('2'),
            KeyCode::Char('3'),
            KeyCode::Char('4'),
            KeyCode::Char('5'),
            KeyCode::Char('6'),
        ],
        Action::View,
        "views: 1 stages, 2 output, 3 traffic, 4 budget, 5 charts, 6 pre-flight (a small terminal shows one at a time; a large one moves the focus)",
        Some("views"),
        false,
    ),
    bind(
        "Tab l →",
        &[KeyCode::Tab, KeyCode::Char('l'), KeyCode::Right],
        Action::FocusNext,
        "next view (or pane)",
        Some("next"),
        false,
    ),
    bind(
        "S-Tab h ←",
        &[KeyCode::BackTab, KeyCode::Char('h'), KeyCode::Left],
        Action::FocusPrev,
        "previous view (or pane)",
        None,
        false,
    ),
    bind(
        "] [",
        &[KeyCode::Char(']'), KeyCode::Char('[')],
        Action::ChartPage,
        "charts: next / previous page when they do not all fit (so do j k and 5 again)",
        Some("more charts"),
        false,
    ),
    bind(
        "k ↑",
        &[KeyCode::Char('k'), KeyCode::Up],
        Action::Up,
        "up",
        None,
        false,
    ),
    bind(
        "j ↓",
        &[KeyCode::Char('j'), KeyCode::Down],
        Action::Down,
        "down",
        None,
        false,
    ),
    bind(
        "PgUp",
        &[KeyCode::PageUp],
        Action::PageUp,
        "page up",
        None,
        false,
    ),
    bind(
        "PgDn",
        &[KeyCode::PageDown],
        Action::PageDown,
        "page down",
        None,
        false,
    ),
    bind(
        "g",
        &[KeyCode::Char('g'), KeyCode::Home],
        Action::Top,
        "top",
        None,
        false,
    ),
    bind(
        "G",
        &[KeyCode::Char('G'), KeyCode::End],
        Action::Bottom,
        "bottom; the output follows again",
        None,
        false,
    ),
    bind(
        "s",
        &[KeyCode::Char('s')],
        Action::Source,
        "output: one source only (cycles through them, then all)",
        None,
        false,
    ),
    bind(
        "L",
        &[KeyCode::Char('L')],
        Action::AppLog,
        "glidepath's own log (warnings and errors of the tool itself)",
        None,
        false,
    ),
    bind(
        "H",
        &[KeyCode::Char('H')],
        Action::History,
        "history: earlier runs and this stage's evaluations",
        None,
        false,
    ),
    bind(
        "R",
        &[KeyCode::Char('R')],
        Action::Replay,
        "in the history: replay the selected run (j k select it), each decision as recorded and as its journal decides it again",
        Some("replay"),
        false,
    ),
    bind(
        "?",
        &[KeyCode::Char('?')],
        Action::Help,
        "this help",
        Some("help"),
        false,
    ),
    bind(
        "q Esc",
        &[KeyCode::Char('q'), KeyCode::Esc],
        Action::Back,
        "close the overlay, or quit",
        Some("quit"),
        false,
    ),
    Binding {
        keys: "C-z",
        codes: &[KeyCode::Char('z')],
        ctrl: true,
        action: Action::Suspend,
        help: "suspend to the shell (fg returns)",
        hint: None,
        acts: false,
    },
];

/// The action of a key press under the default bindings, if any.
pub fn action(key: &KeyEvent) -> Option<Action> {
    Keymap::default().action(key)
}

/// The bindings in force: the table, with the keys the user's config gives some actions
/// instead of their defaults.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Keymap {
    overrides: Vec<(Action, KeyCode, String)>,
}

impl Action {
    /// The name a config file uses (`approve`, `rollback`, `focus-next`...).
    pub fn name(self) -> String {
        let debug = format!("{self:?}");
        let mut out = String::new();
        for (i, c) in debug.chars().enumerate() {
            if c.is_uppercase() && i > 0 {
                out.push('-');
            }
            out.push(c.to_ascii_lowercase());
        }
        out
    }
}

/// A key as a config file writes it: one character, or `enter`, `tab`, `esc`, `up`,
/// `down`, `left`, `right`, `pgup`, `pgdn`, `home`, `end`, `f1`..`f12`.
pub fn parse_key(text: &str) -> Result<KeyCode, String> {
    let mut chars = text.chars();
    if let (Some(c), None) = (chars.next(), chars.next()) {
        return Ok(KeyCode::Char(c));
    }
    Ok(match text.to_ascii_lowercase().as_str() {
        "enter" => KeyCode::Enter,
        "tab" => KeyCode::Tab,
        "esc" => KeyCode::Esc,
        "up" => KeyCode::Up,
        "down" => KeyCode::Down,
        "left" => KeyCode::Left,
        "right" => KeyCode::Right,
        "pgup" => KeyCode::PageUp,
        "pgdn" => KeyCode::PageDown,
        "home" => KeyCode::Home,
        "end" => KeyCode::End,
        f if f.starts_with('f') && f[1..].parse::<u8>().is_ok_and(|n| (1..=12).contains(&n)) => {
            KeyCode::F(f[1..].parse().unwrap_or(1))
        }
        _ => {
            return Err(format!(
                "`{text}` is not a key (one character, or enter, tab, esc, up, down, left, right, pgup, pgdn, home, end, f1..f12)"
            ));
        }
    })
}

impl Keymap {
    /// The table with `overrides` (action name → key); a key another action keeps is refused.
    pub fn new(overrides: &std::collections::BTreeMap<String, String>) -> Result<Keymap, String> {
        let (map, problems) = Keymap::lenient(overrides);
        match problems.into_iter().next() {
            Some((_, problem)) => Err(problem),
            None => Ok(map),
        }
    }

    /// The table with every override that holds, and each one that does not with its
    /// action's name and what was wrong (an unknown action, a key that is not one, a key
    /// another action keeps).
    pub fn lenient(
        overrides: &std::collections::BTreeMap<String, String>,
    ) -> (Keymap, Vec<(String, String)>) {
        let mut map = Keymap::default();
        let mut problems = Vec::new();
        for (name, key) in overrides {
            let Some(binding) = KEYS.iter().find(|b| b.action.name() == *name) else {
                let names: Vec<String> = KEYS.iter().map(|b| b.action.name()).collect();
                problems.push((
                    name.clone(),
                    format!("keys: no action `{name}` (actions: {})", names.join(", ")),
                ));
                continue;
            };
            match parse_key(key) {
                Ok(code) => map.overrides.push((binding.action, code, key.clone())),
                Err(e) => problems.push((name.clone(), format!("keys.{name}: {e}"))),
            }
        }
        let all = std::mem::take(&mut map.overrides);
        let probe = Keymap {
            overrides: all.clone(),
        };
        let mut kept = Vec::new();
        for (action, code, key) in all {
            let clash = KEYS
                .iter()
                .find(|b| b.action != action && !b.ctrl && probe.codes(b).contains(&code));
            match clash {
                Some(other) => problems.push((
                    action.name(),
                    format!(
                        "keys.{}: `{key}` is already {}'s key",
                        action.name(),
                        other.action.name()
                    ),
                )),
                None => kept.push((action, code, key)),
            }
        }
        map.overrides = kept;
        (map, problems)
    }

    fn codes(&self, b: &Binding) -> Vec<KeyCode> {
        let mine: Vec<KeyCode> = self
            .overrides
            .iter()
            .filter(|(a, _, _)| *a == b.action)
            .map(|(_, c, _)| *c)
            .collect();
        if mine.is_empty() {
            b.codes.to_vec()
        } else {
            mine
        }
    }

    /// The action of a key press, if any.
    pub fn action(&self, key: &KeyEvent) -> Option<Action> {
        // Alt-chords are the terminal's or the shell's, never ours.
        if key.modifiers.contains(KeyModifiers::ALT) {
            return None;
        }
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        KEYS.iter()
            .find(|b| b.ctrl == ctrl && self.codes(b).contains(&key.code))
            .map(|b| b.action)
    }

    /// The keys of a binding as help and the hint bar show them.
    pub fn label(&self, b: &Binding) -> String {
        let mine: Vec<&str> = self
            .overrides
            .iter()
            .filter(|(a, _, _)| *a == b.action)
            .map(|(_, _, k)| k.as_str())
            .collect();
        if mine.is_empty() {
            b.keys.to_owned()
        } else {
            mine.join(" ")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_triggers_one_action() {
        let mut seen = std::collections::HashSet::new();
        for b in KEYS {
            for c in b.codes {
                assert!(
                    seen.insert((format!("{c:?}"), b.ctrl)),
                    "{c:?} is bound twice"
                );
            }
        }
        let press = |c: char| KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE);
        assert_eq!(action(&press('a')), Some(Action::Approve));
        assert_eq!(action(&press('P')), Some(Action::Promote));
        assert_eq!(action(&press('p')), Some(Action::PauseResume));
        assert_eq!(
            action(&KeyEvent::new(KeyCode::Char('z'), KeyModifiers::CONTROL)),
            Some(Action::Suspend)
        );
        assert_eq!(action(&press('z')), None);
    }

    #[test]
    fn a_config_rebinds_keys_and_refuses_clashes() {
        let map = Keymap::new(&[("approve".to_owned(), "y".to_owned())].into()).unwrap();
        let press = |c: char| KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE);
        assert_eq!(map.action(&press('y')), Some(Action::Approve));
        assert_eq!(map.action(&press('a')), None);
        let approve = KEYS.iter().find(|b| b.action == Action::Approve).unwrap();
        assert_eq!(map.label(approve), "y");
        let e = Keymap::new(&[("approve".to_owned(), "r".to_owned())].into()).unwrap_err();
        assert_eq!(e, "keys.approve: `r` is already rollback's key");
        let e = Keymap::new(&[("aprove".to_owned(), "y".to_owned())].into()).unwrap_err();
        assert!(e.starts_with("keys: no action `aprove`"), "{e}");
        assert!(Keymap::new(&[("detail".to_owned(), "spacebar".to_owned())].into()).is_err());
        assert_eq!(Action::FocusNext.name(), "focus-next");
    }
}
