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
        "command: :rollback :abort :theme NAME :quit",
        Some("cmd"),
        false,
    ),
    bind(
        "Tab l →",
        &[KeyCode::Tab, KeyCode::Char('l'), KeyCode::Right],
        Action::FocusNext,
        "next pane",
        None,
        false,
    ),
    bind(
        "S-Tab h ←",
        &[KeyCode::BackTab, KeyCode::Char('h'), KeyCode::Left],
        Action::FocusPrev,
        "previous pane",
        None,
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

/// The action of a key press, if any.
pub fn action(key: &KeyEvent) -> Option<Action> {
    let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
    KEYS.iter()
        .find(|b| b.ctrl == ctrl && b.codes.contains(&key.code))
        .map(|b| b.action)
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
}
