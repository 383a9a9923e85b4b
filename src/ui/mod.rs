//! The cockpit: an interactive terminal UI over a run's events (ratatui + crossterm).
//!
//! It subscribes to the engine's events and sends operator commands; it never reaches
//! into the engine. One loop feeds it: terminal input, engine events (batched per frame)
//! and a one-second tick while a clock is on screen. It draws only when something
//! changed, and restores the terminal on every exit path (panics included: ratatui's
//! panic hook).

pub mod app;
pub mod config;
pub mod keys;
pub mod state;
pub mod theme;
pub mod train;
pub mod view;

use std::time::Duration;

use crossterm::event::{Event as TermEvent, EventStream, KeyCode, KeyEventKind, KeyModifiers};
use futures_util::StreamExt;
use tokio::sync::{broadcast, mpsc};

use crate::events::{Command, Envelope};
use app::App;

/// How the cockpit starts.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// `--theme NAME`.
    pub theme: Option<String>,
    /// Hide and refuse every key that changes the release.
    pub read_only: bool,
    /// Where the run delivers, for the header.
    pub target: String,
    /// Stages whose rollback or abort asks for the service name.
    pub protected: Vec<String>,
    /// Where the history view's rows come from (the journal, read by the caller).
    pub history: Option<HistorySource>,
    /// Mouse support: the wheel scrolls, a click selects (off by default, so the terminal
    /// keeps its own text selection).
    pub mouse: bool,
    /// Shown when the cockpit opens (attached to a run nobody drives, say).
    pub notice: Option<String>,
    /// Who holds the run's leases, for the header.
    pub lease: Option<String>,
    /// A line under the header for the whole run (the demo says what to try).
    pub banner: Option<String>,
    /// The earlier events are of a run that was interrupted (resumed now, or nobody drives
    /// it): what was in flight then shows as pending.
    pub interrupted: bool,
    /// The run is a release train's: the grid of members x stages, members' runs within.
    pub train: Option<train::TrainOptions>,
}

/// Reads the history overlay's rows for a service and stage, and a replay of a run (the
/// CLI reads them from the journal; the cockpit never opens it itself).
#[derive(Clone)]
pub struct HistorySource {
    read: std::sync::Arc<HistoryReader>,
    replay: Option<std::sync::Arc<ReplayReader>>,
}

type HistoryReader = dyn Fn(&str, &str) -> Result<app::History, String> + Send + Sync;
type ReplayReader = dyn Fn(i64) -> Result<app::ReplayView, String> + Send + Sync;

impl HistorySource {
    /// Rows from `read(service, stage)`.
    pub fn new(
        read: impl Fn(&str, &str) -> Result<app::History, String> + Send + Sync + 'static,
    ) -> Self {
        HistorySource {
            read: std::sync::Arc::new(read),
            replay: None,
        }
    }

    /// Replays of a run from `replay(run)`.
    pub fn with_replay(
        mut self,
        replay: impl Fn(i64) -> Result<app::ReplayView, String> + Send + Sync + 'static,
    ) -> Self {
        self.replay = Some(std::sync::Arc::new(replay));
        self
    }

    /// The rows for `service` in `stage`.
    pub fn read(&self, service: &str, stage: &str) -> Result<app::History, String> {
        (self.read)(service, stage)
    }

    /// Run `run` decided again from its journal.
    pub fn replay(&self, run: i64) -> Result<app::ReplayView, String> {
        match &self.replay {
            Some(replay) => replay(run),
            None => Err("this cockpit cannot replay runs".into()),
        }
    }
}

impl std::fmt::Debug for HistorySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HistorySource")
    }
}

static ACTIVE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// True while the cockpit owns the terminal (the stderr log stays quiet then).
pub fn active() -> bool {
    ACTIVE.load(std::sync::atomic::Ordering::Relaxed)
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Who the cockpit's commands come from in the journal.
fn operator() -> String {
    std::env::var("USER")
        .ok()
        .filter(|u| !u.is_empty())
        .map(|u| format!("{u} (cockpit)"))
        .unwrap_or_else(|| "cockpit".into())
}

/// Restores the terminal however the cockpit ends (errors, panics unwinding through it):
/// mouse capture off, raw mode and the alternate screen left, stderr logging back on.
struct TerminalGuard {
    mouse: bool,
}

impl TerminalGuard {
    fn enter(mouse: bool) -> std::io::Result<(Self, ratatui::DefaultTerminal)> {
        let terminal = ratatui::init();
        ACTIVE.store(true, std::sync::atomic::Ordering::Relaxed);
        let guard = TerminalGuard { mouse };
        if mouse {
            crossterm::execute!(std::io::stdout(), crossterm::event::EnableMouseCapture)?;
        }
        Ok((guard, terminal))
    }
}

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        restore_terminal(self.mouse);
    }
}

/// Leaves the cockpit's terminal state (also from a signal handler's last resort).
pub fn restore_terminal(mouse: bool) {
    if mouse {
        let _ = crossterm::execute!(std::io::stdout(), crossterm::event::DisableMouseCapture);
    }
    ratatui::restore();
    ACTIVE.store(false, std::sync::atomic::Ordering::Relaxed);
}

/// Events folded per frame at most, so a flood cannot starve the screen.
const BATCH: usize = 4_096;

/// How the cockpit ended.
pub struct Ended {
    /// The run had ended when the operator left.
    pub run_ended: bool,
    /// When it had not: what it waits for and the command that answers it.
    pub left_behind: Option<String>,
    /// The cockpit's own event stream, with whatever it had not read yet, for a headless
    /// printer to carry on from.
    pub events: broadcast::Receiver<Envelope>,
}

/// Runs the cockpit until the operator leaves (or SIGTERM). `earlier` are events that
/// happened before it started (a resumed or attached run's journal): folded in first,
/// without toasts.
pub async fn run(
    mut events: broadcast::Receiver<Envelope>,
    commands: mpsc::UnboundedSender<Command>,
    options: Options,
    earlier: &[Envelope],
) -> std::io::Result<Ended> {
    let (app, mouse, frame) = prepare(&options, earlier);
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let (guard, terminal) = TerminalGuard::enter(mouse)?;
    let mut app = app;
    if let Ok(size) = terminal.size() {
        app.resize(size.width, size.height);
    }
    log_problems(&app.problems);
    let mut cockpit = Cockpit {
        app,
        terminal,
        mouse,
        commands,
        who: operator(),
        history: options.history.clone(),
        leaving: false,
        dirty: true,
        events_open: true,
    };
    let mut input = EventStream::new();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut last_draw = tokio::time::Instant::now() - frame;
    loop {
        if cockpit.dirty && last_draw.elapsed() >= frame {
            let app = &cockpit.app;
            cockpit.terminal.draw(|f| view::draw(f, app))?;
            cockpit.dirty = false;
            last_draw = tokio::time::Instant::now();
        }
        let next_frame = last_draw + frame;
        tokio::select! {
            // A frame owed but held back by the rate cap.
            _ = tokio::time::sleep_until(next_frame), if cockpit.dirty => {}
            key = input.next() => match key {
                Some(Ok(TermEvent::Key(k))) if k.kind != KeyEventKind::Release => cockpit.key(k)?,
                Some(Ok(TermEvent::Resize(width, height))) => {
                    cockpit.app.resize(width, height);
                    cockpit.dirty = true;
                }
                Some(Ok(TermEvent::Mouse(m))) => cockpit.mouse(m)?,
                Some(Ok(_)) => {}
                Some(Err(_)) | None => break,
            },
            event = events.recv(), if cockpit.events_open => cockpit.events(event, &mut events),
            _ = tick.tick() => cockpit.tick(),
            // SIGTERM: leave now; the driver's own handler aborts the run.
            _ = term.recv() => break,
        }
        if cockpit.app.quit && cockpit.leave() {
            break;
        }
    }
    drop(guard);
    // Said again where they last: the terminal the cockpit gave back.
    for p in &cockpit.app.problems {
        eprintln!("glidepath: {p}");
    }
    Ok(Ended {
        run_ended: cockpit.app.run.ended(),
        left_behind: cockpit.app.run.left_behind(),
        events,
    })
}

/// The cockpit's state from its settings file, its options and the earlier events, with
/// whether the mouse is on and the shortest time between frames. Problems with the
/// settings or the theme are kept in `app.problems`: the `L` log and stderr after the
/// cockpit closes say every one of them.
fn prepare(options: &Options, earlier: &[Envelope]) -> (App, bool, Duration) {
    let settings_path = config::path();
    let (settings, mut problems) = config::load(settings_path.as_deref());
    let (keymap, key_problems) = keys::Keymap::lenient(&settings.keys);
    for (action, problem) in key_problems {
        let place = match (&settings_path, settings.key_places.get(&action)) {
            (Some(path), Some(pos)) => format!("{}:{pos}: ", path.display()),
            _ => String::new(),
        };
        problems.push(format!("{place}{problem}; that key keeps its default"));
    }
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    let chosen = options.theme.as_deref().or(settings.theme.as_deref());
    let (theme, theme_problems) = theme::choose(chosen, no_color);
    problems.extend(theme_problems);
    let mouse = options.mouse || settings.mouse;
    let mut app = App::new(
        theme,
        options.target.clone(),
        options.read_only,
        options.protected.clone(),
    );
    app.keymap = keymap;
    app.layout = settings.layout.clone();
    app.train = options.train.clone().map(train::TrainView::new);
    app.replay(earlier, options.interrupted);
    app.run.lease = options.lease.clone();
    app.banner = options.banner.clone();
    let frame = settings.frame_interval();
    app.now_ms = now_ms();
    let mut toast: Vec<String> = problems.first().cloned().into_iter().collect();
    if problems.len() > 1 {
        toast.push(format!(
            "{} more problems: L lists them",
            problems.len() - 1
        ));
    }
    app.problems = problems;
    toast.extend(options.notice.clone());
    if !toast.is_empty() {
        app.toast(toast.join("; "), true);
    }
    (app, mouse, frame)
}

/// Says each problem in glidepath's own log (`L`).
fn log_problems(problems: &[String]) {
    for p in problems {
        tracing::warn!(target: "glidepath::settings", "{p}");
    }
}

/// The running cockpit: its state, its terminal and what its loop needs between turns.
struct Cockpit {
    app: App,
    terminal: ratatui::DefaultTerminal,
    mouse: bool,
    commands: mpsc::UnboundedSender<Command>,
    /// Who the commands come from.
    who: String,
    history: Option<HistorySource>,
    /// The operator asked once to leave a live run.
    leaving: bool,
    /// Something changed since the last frame.
    dirty: bool,
    events_open: bool,
}

impl Cockpit {
    /// A key press: Ctrl-C quits, the suspend key stops the process, any other key goes to
    /// the app; then whatever the key asked for (history, a theme) is fetched.
    fn key(&mut self, k: crossterm::event::KeyEvent) -> std::io::Result<()> {
        self.dirty = true;
        let ctrl = k.modifiers.contains(KeyModifiers::CONTROL);
        let action = self.app.keymap.action(&k);
        if ctrl && k.code == KeyCode::Char('c') {
            self.app.quit = true;
        } else if action == Some(keys::Action::Suspend) {
            self.suspend()?;
        } else if let Some(kind) = self.app.key(k) {
            let member = self.app.command_member();
            let command = Command::new(kind, self.who.clone()).for_member(member);
            let _ = self.commands.send(command);
        }
        if !self.app.quit && action != Some(keys::Action::Back) {
            // Only a second quit in a row leaves a live run.
            self.leaving = false;
        }
        if self.app.overlay == Some(app::Overlay::AppLog) {
            tui_logger::move_events();
        }
        if std::mem::take(&mut self.app.history_request) {
            self.open_history();
        }
        if let Some(run) = self.app.replay_request.take() {
            self.open_replay(run);
        }
        if let Some(name) = self.app.theme_request.take() {
            match theme::load(&name, theme::user_dir().as_ref()) {
                Ok(t) => {
                    self.app.theme = t;
                    self.app.toast(format!("theme {name}"), false);
                }
                Err(problems) => {
                    log_problems(&problems);
                    let more = match problems.len() {
                        0 | 1 => String::new(),
                        n => format!(" ({} more: L lists them)", n - 1),
                    };
                    let first = problems.first().cloned().unwrap_or_default();
                    self.app.toast(format!("{first}{more}"), true);
                    self.app.problems.extend(problems);
                }
            }
        }
        Ok(())
    }

    /// Gives the terminal back and stops the process (Ctrl-Z); takes it again after `fg`.
    fn suspend(&mut self) -> std::io::Result<()> {
        restore_terminal(self.mouse);
        // SAFETY: raising a signal for this process has no memory effects.
        unsafe {
            libc::raise(libc::SIGTSTP);
        }
        // Back from `fg`.
        self.terminal = ratatui::init();
        ACTIVE.store(true, std::sync::atomic::Ordering::Relaxed);
        if self.mouse {
            crossterm::execute!(std::io::stdout(), crossterm::event::EnableMouseCapture)?;
        }
        self.terminal.clear()?;
        Ok(())
    }

    fn open_history(&mut self) {
        let stage = self
            .app
            .run
            .current_stage()
            .map(|s| s.name.clone())
            .unwrap_or_default();
        match self
            .history
            .as_ref()
            .map(|source| source.read(&self.app.run.service, &stage))
        {
            Some(Ok(h)) => {
                self.app.history = Some(h);
                self.app.history_selected = 0;
                self.app.overlay = Some(app::Overlay::History);
            }
            Some(Err(e)) => self.app.toast(format!("history: {e}"), true),
            None => self.app.toast("history: no journal".into(), true),
        }
    }

    fn open_replay(&mut self, run: i64) {
        match self.history.as_ref().map(|source| source.replay(run)) {
            Some(Ok(r)) => {
                self.app.replay = Some(r);
                self.app.replay_scroll = 0;
                self.app.overlay = Some(app::Overlay::Replay);
            }
            Some(Err(e)) => self.app.toast(format!("replay of run {run}: {e}"), true),
            None => self.app.toast("replay: no journal".into(), true),
        }
    }

    /// The wheel scrolls the pane under the pointer; a click focuses it.
    fn mouse(&mut self, m: crossterm::event::MouseEvent) -> std::io::Result<()> {
        use crossterm::event::MouseEventKind;
        let key = |c| crossterm::event::KeyEvent::new(c, KeyModifiers::NONE);
        let size = self.terminal.size()?;
        let pane = view::pane_at(&self.app, size.width, size.height, m.column, m.row);
        match m.kind {
            MouseEventKind::ScrollUp | MouseEventKind::ScrollDown => {
                if let Some(p) = pane {
                    self.app.focus = p;
                    self.app.view_chosen = true;
                }
                let up = m.kind == MouseEventKind::ScrollUp;
                self.app
                    .key(key(if up { KeyCode::Up } else { KeyCode::Down }));
                self.dirty = true;
            }
            MouseEventKind::Down(_) => {
                if let Some(p) = pane {
                    self.app.focus = p;
                    self.app.view_chosen = true;
                    self.dirty = true;
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// Folds `first` and everything already waiting (up to a batch) into the same frame.
    fn events(
        &mut self,
        first: Result<Envelope, broadcast::error::RecvError>,
        events: &mut broadcast::Receiver<Envelope>,
    ) {
        let mut next = Some(first);
        let mut folded = 0;
        while let Some(event) = next.take() {
            match event {
                Ok(env) => self.app.apply(&env),
                Err(broadcast::error::RecvError::Lagged(n)) => self.app.toast(
                    format!("{n} events came too fast to show; the journal has them"),
                    true,
                ),
                Err(broadcast::error::RecvError::Closed) => self.events_open = false,
            }
            folded += 1;
            if folded < BATCH && self.events_open {
                next = match events.try_recv() {
                    Ok(env) => Some(Ok(env)),
                    Err(broadcast::error::TryRecvError::Lagged(n)) => {
                        Some(Err(broadcast::error::RecvError::Lagged(n)))
                    }
                    Err(_) => None,
                };
            }
        }
        self.dirty = true;
    }

    fn tick(&mut self) {
        // The header's clock moves only while the run goes on.
        let expired = self.app.tick(now_ms());
        tui_logger::move_events();
        self.dirty |=
            expired || !self.app.run.ended() || self.app.overlay == Some(app::Overlay::AppLog);
    }

    /// The operator asked to quit: true to leave now. Leaving a live run takes a second
    /// quit, so the first only says that the run goes on without the cockpit.
    fn leave(&mut self) -> bool {
        if self.app.run.ended() || self.leaving {
            return true;
        }
        self.leaving = true;
        self.app.quit = false;
        let abort = if self.app.read_only {
            String::new()
        } else {
            ", x aborts".to_owned()
        };
        self.app.toast(
            format!("the run goes on without the cockpit: q again leaves it running{abort}"),
            false,
        );
        self.dirty = true;
        false
    }
}
