//! The cockpit's own state (focus, selection, overlays, input) and what keys do to it. A
//! key that acts on the release returns the command to send; nothing here talks to the
//! engine or the terminal.

use crossterm::event::{KeyCode, KeyEvent};

use super::keys::{self, Action};
use super::state::{RunView, Toast};
use super::theme::Theme;
use crate::events::{CommandKind, Envelope, Status};

/// A pane: one of the cockpit's views. On a small terminal the body shows one at a time;
/// on a large one the focused pane takes the keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pane {
    /// Stages and steps (view 1).
    Stages,
    /// Test output (view 2).
    Output,
    /// The release's traffic split (view 3).
    Traffic,
    /// The error budget (view 4).
    Budget,
    /// The SLO charts (view 5).
    Charts,
    /// Pre-flight checks (view 6).
    Preflight,
}

impl Pane {
    /// Every view, in the order of its number key.
    pub const ALL: [Pane; 6] = [
        Pane::Stages,
        Pane::Output,
        Pane::Traffic,
        Pane::Budget,
        Pane::Charts,
        Pane::Preflight,
    ];

    /// Its number key, 1 to 6.
    pub fn number(self) -> usize {
        Pane::ALL.iter().position(|p| *p == self).unwrap_or(0) + 1
    }

    /// Its name, as the view tabs and the help show it.
    pub fn name(self) -> &'static str {
        match self {
            Pane::Stages => "stages",
            Pane::Output => "output",
            Pane::Traffic => "traffic",
            Pane::Budget => "budget",
            Pane::Charts => "charts",
            Pane::Preflight => "pre-flight",
        }
    }

    /// The `layout.hide` entry that leaves it out, if it can be left out.
    pub fn optional(self) -> Option<super::config::Optional> {
        use super::config::Optional;
        match self {
            Pane::Stages | Pane::Output => None,
            Pane::Traffic => Some(Optional::Traffic),
            Pane::Budget => Some(Optional::Budget),
            Pane::Charts => Some(Optional::Charts),
            Pane::Preflight => Some(Optional::Preflight),
        }
    }
}

/// What covers the panes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Overlay {
    /// The key table.
    Help,
    /// The selected step's evidence.
    Detail,
    /// Earlier runs and evaluations.
    History,
    /// The run selected in the history decided again from its journal.
    Replay,
    /// glidepath's own log.
    AppLog,
    /// A destructive command waiting for `y` (or the service name, on a protected stage).
    Confirm {
        /// What will be sent.
        command: CommandKind,
        /// What the operator typed so far, when a name is required.
        typed: String,
        /// The name to type, on a protected stage.
        name: Option<String>,
    },
}

/// A line being typed at the bottom.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// `/` search of the output.
    Search(String),
    /// `:` command.
    Command(String),
}

/// Everything the cockpit draws from.
#[derive(Debug, Clone)]
pub struct App {
    /// The run, from its events.
    pub run: RunView,
    /// A line under the header (the demo's scenario and what to try).
    pub banner: Option<String>,
    /// How the panes are laid out (config.yaml's `layout`).
    pub layout: super::config::PaneLayout,
    /// Colours.
    pub theme: Theme,
    /// Where the keys go.
    pub focus: Pane,
    /// The selected step (index into [`RunView::step_indices`]).
    pub selected: usize,
    /// The operator moved the selection; otherwise it follows the running step.
    pub pinned: bool,
    /// Output lines scrolled up from the bottom (0: following).
    pub scroll: usize,
    /// The output filter.
    pub search: Option<String>,
    /// A line being typed.
    pub input: Option<Input>,
    /// The overlay shown.
    pub overlay: Option<Overlay>,
    /// A message for a few seconds.
    pub toast: Option<Toast>,
    /// Destructive and release-changing keys are hidden and refused.
    pub read_only: bool,
    /// Stages whose rollback or abort needs the service name typed.
    pub protected: Vec<String>,
    /// The clock, ms since the epoch.
    pub now_ms: i64,
    /// Where the run delivers, for the header.
    pub target: String,
    /// The operator asked to leave.
    pub quit: bool,
    /// The theme changed by `:theme`, to be loaded by the loop.
    pub theme_request: Option<String>,
    /// The history overlay asked for, to be read from the journal by the loop.
    pub history_request: bool,
    /// What the history overlay shows, once read.
    pub history: Option<History>,
    /// The run selected in the history overlay (index into its runs).
    pub history_selected: usize,
    /// A replay of this run asked for, to be read from the journal by the loop.
    pub replay_request: Option<i64>,
    /// What the replay overlay shows, once read.
    pub replay: Option<ReplayView>,
    /// Lines the replay overlay is scrolled down.
    pub replay_scroll: usize,
    /// Only output lines from this source.
    pub source: Option<String>,
    /// The key bindings in force.
    pub keymap: keys::Keymap,
    /// The terminal's size (columns, rows), as the loop last saw it.
    pub size: (u16, u16),
    /// The operator chose the view (a number key, Tab, a click); until then a small
    /// terminal shows the traffic while a release runs, and the stages otherwise.
    pub view_chosen: bool,
    /// The page of SLO charts shown when they do not all fit.
    pub chart_page: usize,
    /// Lines the help overlay is scrolled down.
    pub help_scroll: usize,
    /// Problems with the theme or settings file, for the `L` log and stderr after exit.
    pub problems: Vec<String>,
    /// A release train: its grid, its members' runs and the member open in the views.
    pub train: Option<super::train::TrainView>,
}

/// A past run decided again from its journal with its own SLOs (`glidepath replay RUN`).
#[derive(Debug, Clone)]
pub struct ReplayView {
    /// The run.
    pub run: i64,
    /// Its status as it ended (or stands).
    pub status: String,
    /// The SLO files it was decided with.
    pub slos: Vec<String>,
    /// Every decision, recorded and re-decided, and each step's ending.
    pub replay: crate::replay::Replay,
}

/// Earlier runs and evaluations, read from the journal.
#[derive(Debug, Clone, Default)]
pub struct History {
    /// Runs, newest first.
    pub runs: Vec<HistoryRun>,
    /// The current stage's evaluations of the service, newest first: (verdict, SLI values).
    pub evaluations: Vec<(crate::events::Verdict, String)>,
    /// The stage they belong to.
    pub stage: String,
}

/// One earlier run, as the history overlay lists it.
#[derive(Debug, Clone)]
pub struct HistoryRun {
    /// Run id.
    pub id: i64,
    /// Pipeline name.
    pub pipeline: String,
    /// Current or final status.
    pub status: crate::events::Status,
    /// Start, ms since the epoch.
    pub started_ms: i64,
    /// End, when finished.
    pub finished_ms: Option<i64>,
    /// Exit code, when finished.
    pub exit_code: Option<i32>,
    /// For a run whose driver is gone: that it was interrupted, and the command that
    /// continues it (or why it cannot be continued).
    pub interrupted: Option<String>,
    /// Who drives (or drove) the run and from where, and whether that driver lives:
    /// `ann@ci-7 (alive 3 s ago)`, `ann@ci-7 (gone, last heard 95 s ago)`.
    pub driver: Option<String>,
}

impl App {
    /// A cockpit on an empty run.
    pub fn new(theme: Theme, target: String, read_only: bool, protected: Vec<String>) -> Self {
        App {
            run: RunView::default(),
            banner: None,
            layout: super::config::PaneLayout::default(),
            theme,
            focus: Pane::Stages,
            selected: 0,
            pinned: false,
            scroll: 0,
            search: None,
            input: None,
            overlay: None,
            toast: None,
            read_only,
            protected,
            now_ms: 0,
            target,
            quit: false,
            theme_request: None,
            history_request: false,
            history: None,
            history_selected: 0,
            replay_request: None,
            replay: None,
            replay_scroll: 0,
            source: None,
            keymap: keys::Keymap::default(),
            size: (120, 40),
            view_chosen: false,
            chart_page: 0,
            help_scroll: 0,
            problems: Vec::new(),
            train: None,
        }
    }

    /// The terminal is `width` x `height` now.
    pub fn resize(&mut self, width: u16, height: u16) {
        self.size = (width, height);
        self.choose_view();
    }

    /// Whether the body shows one view at a time (the terminal is below the wide
    /// layout's size, or the settings ask for it).
    pub fn compact(&self) -> bool {
        !self.layout.wide(self.size.0, self.size.1)
    }

    /// Whether a view can be shown: the settings' `layout.hide` leaves it out.
    pub fn allows(&self, pane: Pane) -> bool {
        pane.optional().is_none_or(|o| self.layout.shows(o))
    }

    /// Whether a view has something to show yet (stages and output always do).
    pub fn has(&self, pane: Pane) -> bool {
        match pane {
            Pane::Stages | Pane::Output => true,
            Pane::Traffic => self.run.traffic.is_some(),
            Pane::Budget => self
                .run
                .stages
                .iter()
                .flat_map(|s| &s.steps)
                .any(|st| st.evidence.iter().any(|e| e.budget.is_some())),
            Pane::Charts => !self.run.series.is_empty(),
            Pane::Preflight => self.run.preflight().is_some(),
        }
    }

    /// A release step is running (or holding) now.
    pub fn releasing(&self) -> bool {
        self.run
            .active_steps()
            .iter()
            .any(|(_, s)| s.kind == "release")
    }

    /// Until the operator picks a view, a small terminal shows the traffic while a
    /// release runs (the pane an operator watches during a canary) and the stages
    /// otherwise; a large one keeps the focus on the stages.
    fn choose_view(&mut self) {
        if self.view_chosen {
            return;
        }
        self.focus = if self.compact() && self.releasing() && self.allows(Pane::Traffic) {
            Pane::Traffic
        } else {
            Pane::Stages
        };
    }

    /// Shows (or focuses) a view by its number; a view the settings hide is refused.
    pub fn show(&mut self, pane: Pane) {
        if !self.allows(pane) {
            self.toast(
                format!(
                    "the {} view is hidden by the settings' layout.hide",
                    pane.name()
                ),
                true,
            );
            return;
        }
        if self.focus == pane && pane == Pane::Charts {
            // Asking again for the charts shows the next ones.
            self.page_charts(false);
        }
        self.focus = pane;
        self.view_chosen = true;
    }

    /// Folds an engine event in; a refused command becomes a toast.
    pub fn apply(&mut self, env: &Envelope) {
        let stage_before = self.run.current_stage().map(|s| s.name.clone());
        self.fold(env);
        self.now_ms = self.now_ms.max(env.at_ms);
        match &env.event {
            // Every answer to a command is shown, a repeated refusal too.
            crate::events::Event::Operator {
                command,
                accepted,
                reason,
                ..
            } => {
                let text = match (accepted, reason) {
                    (false, reason) => format!(
                        "{command} refused: {}",
                        reason.as_deref().unwrap_or("not now")
                    ),
                    (true, Some(note)) => format!("{command}: {note}"),
                    (true, None) => format!("{command} accepted"),
                };
                self.toast(text, !accepted);
            }
            // Scrolled up: the view stays on the same lines while new ones arrive (a line
            // the filters hide does not move it).
            crate::events::Event::Log { .. }
                if self.scroll > 0
                    && self
                        .visible_logs()
                        .last()
                        .is_some_and(|l| l.at_ms == env.at_ms) =>
            {
                self.scroll += 1;
            }
            _ => {}
        }
        // A confirmation asked about the stage that was current then: if another stage
        // took over, the question no longer holds.
        if matches!(self.overlay, Some(Overlay::Confirm { .. }))
            && self.run.current_stage().map(|s| s.name.clone()) != stage_before
        {
            self.overlay = None;
            self.toast("the stage changed; ask again".into(), true);
        }
        if !self.pinned {
            self.follow_active();
        }
        self.choose_view();
    }

    /// Folds events from before the cockpit started (a resumed or attached run's
    /// journal) without toasts. When that run was `interrupted`, steps that were in flight
    /// are shown as pending until they run again.
    pub fn replay(&mut self, events: &[Envelope], interrupted: bool) {
        for env in events {
            self.fold(env);
            self.now_ms = self.now_ms.max(env.at_ms);
        }
        if interrupted {
            self.run.settle();
            // A train's member runs stopped with it.
            if let Some(t) = &mut self.train {
                t.views.values_mut().for_each(RunView::settle);
            }
        }
        if !self.pinned {
            self.follow_active();
        }
        self.choose_view();
    }

    /// Folds an event into its run's view (a train's member runs have their own).
    fn fold(&mut self, env: &Envelope) {
        match &mut self.train {
            Some(t) => t.apply(&mut self.run, env),
            None => self.run.apply(env),
        }
    }

    /// The train's grid is on screen (a train, no member open).
    pub fn train_grid(&self) -> bool {
        self.train.as_ref().is_some_and(|t| t.open.is_none())
    }

    /// The member the cockpit's commands go to: the one open, if any.
    pub fn command_member(&self) -> Option<String> {
        self.train
            .as_ref()
            .and_then(|t| t.open.as_ref())
            .map(|o| o.member.clone())
    }

    /// A key on a train's grid, or Esc in a member opened from it; None when the key
    /// does what it does for a pipeline (then it acts on the member open, or the train).
    fn train_act(&mut self, action: Action) -> Option<Option<CommandKind>> {
        let quiet = self.overlay.is_none() && self.search.is_none();
        let train = self.train.as_mut()?;
        if train.open.is_some() {
            if action == Action::Back && quiet {
                train.close(&mut self.run);
                self.pinned = false;
                self.follow_active();
                return Some(None);
            }
            return None;
        }
        match action {
            Action::Up | Action::Down => train.move_cursor(&self.run, action == Action::Up),
            Action::Detail if quiet => {
                if train.open_selected(&mut self.run) {
                    self.pinned = false;
                    self.view_chosen = false;
                    self.follow_active();
                    self.choose_view();
                } else {
                    self.toast("this member has not started yet".into(), true);
                }
            }
            Action::View | Action::FocusNext | Action::FocusPrev => self.toast(
                "the train's grid: Enter opens the member's stages, traffic, budget and charts"
                    .into(),
                false,
            ),
            _ => return None,
        }
        Some(None)
    }

    /// Shows a message for four seconds.
    pub fn toast(&mut self, text: String, error: bool) {
        self.toast = Some(Toast {
            text,
            error,
            until_ms: self.now_ms + 4_000,
        });
    }

    /// Drops an expired toast; true when something changed.
    pub fn tick(&mut self, now_ms: i64) -> bool {
        self.now_ms = now_ms;
        if self.toast.as_ref().is_some_and(|t| t.until_ms <= now_ms) {
            self.toast = None;
            return true;
        }
        false
    }

    fn follow_active(&mut self) {
        let indices = self.run.step_indices();
        let active = indices.iter().position(|&(i, j)| {
            let s = &self.run.stages[i].steps[j];
            matches!(
                s.status,
                Status::Running | Status::WaitingForApproval | Status::Paused
            )
        });
        let last_done = indices
            .iter()
            .rposition(|&(i, j)| self.run.stages[i].steps[j].status != Status::Pending);
        if let Some(i) = active.or(last_done) {
            self.selected = i;
        }
    }

    /// The selected step, as (stage index, step index).
    pub fn selection(&self) -> Option<(usize, usize)> {
        self.run.step_indices().get(self.selected).copied()
    }

    /// The output lines that pass the search filter.
    pub fn visible_logs(&self) -> Vec<&super::state::LogLine> {
        let needle = self.search.as_ref().map(|s| s.to_lowercase());
        self.run
            .logs
            .iter()
            .filter(|l| self.source.as_ref().is_none_or(|s| &l.source == s))
            .filter(|l| {
                needle.as_ref().is_none_or(|n| {
                    l.line.to_lowercase().contains(n)
                        || l.source.to_lowercase().contains(n)
                        || l.step.to_lowercase().contains(n)
                })
            })
            .collect()
    }

    /// The stage a rollback or abort would concern.
    fn current_stage_name(&self) -> Option<String> {
        self.run.current_stage().map(|s| s.name.clone())
    }

    fn ask(&mut self, command: CommandKind) {
        let name = self
            .current_stage_name()
            .filter(|s| self.protected.contains(s))
            .map(|_| self.run.service.clone());
        self.overlay = Some(Overlay::Confirm {
            command,
            typed: String::new(),
            name,
        });
    }

    /// Handles a key; returns a command for the engine when the operator gave one.
    pub fn key(&mut self, key: KeyEvent) -> Option<CommandKind> {
        if let Some(input) = self.input.take() {
            return self.type_into(input, key);
        }
        if let Some(Overlay::Confirm {
            command,
            mut typed,
            name,
        }) = self.overlay.clone()
        {
            return self.confirm(command, &mut typed, name, key);
        }
        let action = self.keymap.action(&key)?;
        let acts = keys::KEYS.iter().any(|b| b.action == action && b.acts);
        if acts && self.read_only {
            self.toast(
                "read-only: this cockpit does not change the release".into(),
                true,
            );
            return None;
        }
        if acts && self.run.ended() {
            self.toast("the run has ended".into(), true);
            return None;
        }
        if self.move_in_overlay(action) {
            return None;
        }
        self.act(action, &key)
    }

    /// A movement key in an overlay that scrolls (help, replay) or selects (history);
    /// false for any other key or overlay.
    fn move_in_overlay(&mut self, action: Action) -> bool {
        let page = usize::from(self.size.1.saturating_sub(4)).max(1);
        match self.overlay {
            Some(Overlay::Help) => {
                let limit = super::view::help_scroll_limit(self);
                moved(&mut self.help_scroll, action, page, limit)
            }
            Some(Overlay::Replay) => {
                let limit = super::view::replay_scroll_limit(self);
                moved(&mut self.replay_scroll, action, page, limit)
            }
            Some(Overlay::History) => {
                let last = self
                    .history
                    .as_ref()
                    .map_or(0, |h| h.runs.len())
                    .saturating_sub(1);
                moved(&mut self.history_selected, action, 10, last)
            }
            _ => false,
        }
    }

    /// Opens a replay of the run selected in the history overlay (the loop reads it).
    fn open_replay(&mut self) {
        let selected = self
            .history
            .as_ref()
            .filter(|_| self.overlay == Some(Overlay::History))
            .and_then(|h| h.runs.get(self.history_selected));
        match selected {
            Some(r) => self.replay_request = Some(r.id),
            None => self.toast(
                "replay: open the history (H), select a run (j k), then press this key again"
                    .into(),
                true,
            ),
        }
    }

    /// Does what a bound key asks; a command for the engine when it is one.
    fn act(&mut self, action: Action, key: &KeyEvent) -> Option<CommandKind> {
        if let Some(done) = self.train_act(action) {
            return done;
        }
        match action {
            Action::Approve => return Some(CommandKind::Approve),
            Action::Decline => return Some(CommandKind::Reject),
            Action::Promote => return Some(CommandKind::Promote),
            Action::PauseResume => return Some(self.pause_or_resume()),
            Action::Rollback => self.ask(CommandKind::Rollback),
            Action::Abort => self.ask(CommandKind::Abort),
            Action::Help => {
                self.help_scroll = 0;
                self.overlay = Some(Overlay::Help);
            }
            Action::View => match key.code {
                KeyCode::Char(c @ '1'..='6') => {
                    let n = c as usize - '1' as usize;
                    self.show(Pane::ALL[n]);
                }
                // A key of the settings' own: the next view, as Tab.
                _ => self.cycle_focus(true),
            },
            Action::ChartPage => {
                let back = key.code == KeyCode::Char('[');
                self.page_charts(back);
            }
            Action::History => self.history_request = true,
            Action::Replay => self.open_replay(),
            Action::AppLog => self.overlay = Some(Overlay::AppLog),
            Action::Source => self.next_source(),
            Action::Detail => {
                if self.selection().is_some() {
                    // The detail stays on this step while others start.
                    self.pinned = true;
                    self.overlay = Some(Overlay::Detail);
                }
            }
            Action::Search => self.input = Some(Input::Search(String::new())),
            Action::Command => self.input = Some(Input::Command(String::new())),
            // The replay goes back to the history it was opened from.
            Action::Back if self.overlay == Some(Overlay::Replay) => {
                self.overlay = Some(Overlay::History);
            }
            Action::Back => {
                if self.overlay.take().is_none() && self.search.take().is_none() {
                    self.quit = true;
                }
            }
            Action::FocusNext | Action::FocusPrev => self.cycle_focus(action == Action::FocusNext),
            Action::Up | Action::Down | Action::PageUp | Action::PageDown => {
                let step = match action {
                    Action::PageUp | Action::PageDown => 10,
                    _ => 1,
                };
                let up = matches!(action, Action::Up | Action::PageUp);
                if self.focus == Pane::Charts {
                    self.page_charts(up);
                } else {
                    self.move_by(step, up);
                }
            }
            Action::Top => match self.focus {
                Pane::Output => self.scroll = self.visible_logs().len().saturating_sub(1),
                _ => {
                    self.selected = 0;
                    self.pinned = true;
                }
            },
            Action::Bottom => match self.focus {
                Pane::Output => self.scroll = 0,
                _ => {
                    self.selected = self.run.step_indices().len().saturating_sub(1);
                    self.pinned = false;
                }
            },
            Action::Suspend => {}
        }
        None
    }

    /// Resume when the run or an active step is paused, else pause.
    fn pause_or_resume(&self) -> CommandKind {
        let paused_step = self
            .run
            .active_steps()
            .iter()
            .any(|(_, s)| s.status == Status::Paused);
        if self.run.paused || paused_step {
            CommandKind::Resume
        } else {
            CommandKind::Pause
        }
    }

    /// Filters the output to the next log source in name order, then to none.
    fn next_source(&mut self) {
        let mut sources: Vec<&str> = self.run.logs.iter().map(|l| l.source.as_str()).collect();
        sources.sort_unstable();
        sources.dedup();
        let next = match &self.source {
            None => sources.first().map(|s| s.to_string()),
            Some(cur) => sources
                .iter()
                .position(|s| s == cur)
                .and_then(|i| sources.get(i + 1))
                .map(|s| s.to_string()),
        };
        self.source = next;
        self.scroll = 0;
    }

    /// The next (or previous) page of SLO charts.
    fn page_charts(&mut self, back: bool) {
        // Round and round: past the last page is the first again.
        let pages = super::view::chart_pages(self).max(1);
        let page = self.chart_page.min(pages - 1);
        self.chart_page = if back {
            (page + pages - 1) % pages
        } else {
            (page + 1) % pages
        };
    }

    /// Moves the focus to the next (or previous) view that has something to show; a
    /// view the settings hide takes none.
    fn cycle_focus(&mut self, forward: bool) {
        self.view_chosen = true;
        let panes: Vec<Pane> = Pane::ALL
            .into_iter()
            .filter(|p| *p == self.focus || (self.allows(*p) && self.has(*p)))
            .collect();
        let i = panes.iter().position(|p| *p == self.focus).unwrap_or(0);
        let n = panes.len();
        let next = if forward {
            (i + 1) % n
        } else {
            (i + n - 1) % n
        };
        self.focus = panes[next];
    }

    fn move_by(&mut self, n: usize, up: bool) {
        match self.focus {
            Pane::Output => {
                let max = self.visible_logs().len().saturating_sub(1);
                self.scroll = if up {
                    (self.scroll + n).min(max)
                } else {
                    self.scroll.saturating_sub(n)
                };
            }
            _ => {
                let last = self.run.step_indices().len().saturating_sub(1);
                self.selected = if up {
                    self.selected.saturating_sub(n)
                } else {
                    (self.selected + n).min(last)
                };
                self.pinned = true;
            }
        }
    }

    fn confirm(
        &mut self,
        command: CommandKind,
        typed: &mut String,
        name: Option<String>,
        key: KeyEvent,
    ) -> Option<CommandKind> {
        match (&name, key.code) {
            (_, KeyCode::Esc) | (None, KeyCode::Char('n')) => {
                self.overlay = None;
                None
            }
            (None, KeyCode::Char('y')) => {
                self.overlay = None;
                self.unless_ended(command)
            }
            (Some(want), KeyCode::Enter) => {
                if typed == want {
                    self.overlay = None;
                    self.unless_ended(command)
                } else {
                    self.toast(format!("type `{want}` to confirm, or Esc"), true);
                    None
                }
            }
            (Some(_), KeyCode::Backspace) => {
                typed.pop();
                self.overlay = Some(Overlay::Confirm {
                    command,
                    typed: typed.clone(),
                    name,
                });
                None
            }
            (Some(_), KeyCode::Char(c)) => {
                typed.push(c);
                self.overlay = Some(Overlay::Confirm {
                    command,
                    typed: typed.clone(),
                    name,
                });
                None
            }
            _ => None,
        }
    }

    fn unless_ended(&mut self, command: CommandKind) -> Option<CommandKind> {
        if self.run.ended() {
            self.toast("the run has ended".into(), true);
            None
        } else {
            Some(command)
        }
    }

    fn type_into(&mut self, input: Input, key: KeyEvent) -> Option<CommandKind> {
        let (mut text, search) = match input {
            Input::Search(t) => (t, true),
            Input::Command(t) => (t, false),
        };
        match key.code {
            KeyCode::Esc => {
                if search {
                    self.search = None;
                }
                return None;
            }
            KeyCode::Enter => {
                if search {
                    self.search = (!text.is_empty()).then_some(text);
                    self.scroll = 0;
                    return None;
                }
                return self.command(text.trim());
            }
            KeyCode::Backspace => {
                text.pop();
            }
            KeyCode::Char(c) => text.push(c),
            _ => {}
        }
        if search {
            // The filter applies while typing.
            self.search = (!text.is_empty()).then(|| text.clone());
        }
        self.input = Some(if search {
            Input::Search(text)
        } else {
            Input::Command(text)
        });
        None
    }

    /// A `:` command.
    fn command(&mut self, text: &str) -> Option<CommandKind> {
        let (word, arg) = text.split_once(' ').unwrap_or((text, ""));
        match word {
            "q" | "quit" => self.quit = true,
            "rollback" | "abort" if self.read_only => self.toast(
                "read-only: this cockpit does not change the release".into(),
                true,
            ),
            "rollback" => self.ask(CommandKind::Rollback),
            "abort" => self.ask(CommandKind::Abort),
            "theme" if !arg.trim().is_empty() => self.theme_request = Some(arg.trim().to_owned()),
            "help" => self.overlay = Some(Overlay::Help),
            "history" => self.history_request = true,
            "" => {}
            other => self.toast(
                format!("no command `{other}`: :rollback :abort :history :theme NAME :help :quit"),
                true,
            ),
        }
        None
    }
}

/// `at` moved by a movement key within `0..=limit` (a page is `page` lines); false for any
/// other key.
fn moved(at: &mut usize, action: Action, page: usize, limit: usize) -> bool {
    *at = match action {
        Action::Up => at.saturating_sub(1),
        Action::Down => *at + 1,
        Action::PageUp => at.saturating_sub(page),
        Action::PageDown => *at + page,
        Action::Top => 0,
        Action::Bottom => limit,
        _ => return false,
    }
    .min(limit);
    true
}
